//! A flood must not bury a critical alert (issue 12, item 4), against the local AWS (moto's
//! DynamoDB, SNS and Secrets Manager, through vigil's extension) and the Slack stand-in in
//! bot-token mode, with the event function wired exactly as its Lambda binary wires it
//! (`build_aws` from a `Config`).
//!
//! Anyone in the account, even a principal with no permissions, can make denied calls. The
//! attack: 500 denied CloudTrail calls, each on a resource of its own (mostly by one IAM user,
//! some by a second one, some by an assumed role that picks a new session name every call),
//! and in the middle of them one `StopLogging` that worked. Grouped by resource, every denied
//! call would open a group, fill the channel's rate limit and fold the rest into the digest,
//! where the `StopLogging` would be one of "… and N more".
//!
//! The test prints how long after its invocation the `StopLogging` reached Slack
//! (`cargo test -p handle-event --test flood -- --nocapture`); it asserts no time: what is
//! guaranteed is that it took the priority lane, was posted as its own message and was never
//! rate-limited or folded.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use chrono::Utc;
use handle_alarm::config::ConfigError;
use handle_event::{AwsDeps, Config, build_aws, handle};
use serde_json::{Value, json};
use vigil_adapters::state::DynamoState;
use vigil_core::model::Kind;
use vigil_core::noise::Outcome;
use vigil_testkit::LocalAws;

mod support;
use support::{ACCOUNT, ACTORS, denied, stop_logging};

const TABLE: &str = "vigil-state";
const TOKEN: &str = "xoxb-000000000000-0000000000000-StandInTokenForTests";
const CHANNEL: &str = "#sec-alerts";

/// Denied calls in the flood.
const DENIED: usize = 500;
/// Where the `StopLogging` goes among them.
const STOP_AT: usize = DENIED / 2;
/// At most this many invocations at once (Lambda would run more; moto is one process).
const CONCURRENCY: usize = 16;
/// A short Slack interval keeps the run short; the limiter's other settings are the defaults.
const INTERVAL_MS: u64 = 1_000;

async fn create_table(aws: &LocalAws) {
    let ddb = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attr")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("key")
    };
    ddb.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("cid"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(vigil_adapters::state::CORRELATION_INDEX)
                .key_schema(key("cid", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi"),
        )
        .send()
        .await
        .expect("state table");
}

struct Stack {
    aws: LocalAws,
    deps: AwsDeps,
    state: DynamoState,
}

async fn stack() -> Stack {
    let aws = LocalAws::start().await;
    let sdk = aws.sdk_config().await;
    create_table(&aws).await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("vigil/slack")
        .secret_string(json!({ "bot_token": TOKEN }).to_string())
        .send()
        .await
        .expect("Slack secret");
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("security")
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let env: HashMap<&'static str, String> = HashMap::from([
        (
            "VIGIL_SLACK_SECRET",
            "secretsmanager:vigil/slack".to_string(),
        ),
        ("VIGIL_SLACK_API_BASE", format!("{}/api", aws.slack_url())),
        ("VIGIL_SLACK_CHANNEL", CHANNEL.to_string()),
        ("VIGIL_DEFAULT_TEAM", "security".to_string()),
        ("VIGIL_SNS_TOPIC_ARN", topic),
        ("VIGIL_TABLE_NAME", TABLE.to_string()),
        // Context is not what this test is about: a short budget keeps LookupEvents'
        // 2 requests a second from dominating the run.
        ("VIGIL_ENRICH_BUDGET_MS", "300".to_string()),
        ("VIGIL_DELIVERY_BUDGET_MS", "10000".to_string()),
        ("VIGIL_SLACK_INTERVAL_MS", INTERVAL_MS.to_string()),
    ]);
    let config =
        Config::from_lookup(|name| Ok::<_, ConfigError>(env.get(name).cloned())).expect("config");
    let deps = build_aws(&config, &sdk).await.expect("deps");
    assert!(deps.base.threads, "bot-token mode");
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    Stack { aws, deps, state }
}

/// The alert id vigil gives an event.
fn alert_id(event: &Value) -> String {
    vigil_core::intake::parse_value(event).expect("parse")[0]
        .id
        .clone()
}

/// A Slack request's visible content (`text` and blocks) as one string.
fn content(request: &Value) -> String {
    let j = &request["json"];
    format!("{} {}", j["text"], j["blocks"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_logging_amid_500_denied_calls_is_posted_on_its_own_and_everything_is_ledgered() {
    let s = stack().await;
    let t0 = Utc::now();
    let max_replies = s.deps.base.noise.max_replies as usize;

    let mut events: Vec<Value> = (0..DENIED)
        .map(|i| denied(i, t0 + chrono::Duration::milliseconds(i as i64 * 100)))
        .collect();
    let stop = stop_logging(t0 + chrono::Duration::milliseconds(STOP_AT as i64 * 100));
    let stop_id = alert_id(&stop);
    events.insert(STOP_AT, stop);
    let ids: BTreeSet<String> = events.iter().map(alert_id).collect();
    assert_eq!(ids.len(), DENIED + 1, "501 distinct events");

    let started = std::time::Instant::now();
    let deps = Arc::new(s.deps);
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let runs = events.into_iter().map(|event| {
        let deps = Arc::clone(&deps);
        let sem = Arc::clone(&sem);
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let invoked = Utc::now();
            let out = handle(event, &deps, invoked).await;
            (invoked, out)
        })
    });
    let mut by_decision: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut stop_invoked = None;
    for r in futures::future::join_all(runs).await {
        let (invoked, out) = r.expect("task");
        let out = out.expect("every event handled, none failed");
        let alert = &out.alerts[0];
        if alert.id == stop_id {
            assert_eq!(alert.kind, Kind::AuditTampering);
            stop_invoked = Some(invoked);
        }
        *by_decision.entry(alert.outcome.as_str()).or_default() += 1;
    }
    let took = started.elapsed();
    let stop_invoked = stop_invoked.expect("the StopLogging was handled");

    // What reached Slack.
    let requests: Vec<Value> = s
        .aws
        .slack_requests()
        .await
        .into_iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap_or_default();
            p.ends_with("chat.postMessage") || p.ends_with("chat.update")
        })
        .collect();
    let roots: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .ends_with("chat.postMessage")
                && r["json"]["thread_ts"].is_null()
        })
        .collect();
    let stop_posts: Vec<&Value> = requests
        .iter()
        .filter(|r| content(r).contains("StopLogging"))
        .collect();
    let arrived_after_ms = stop_posts
        .first()
        .and_then(|r| r["wall_ms"].as_f64())
        .map(|ms| ms - stop_invoked.timestamp_millis() as f64);

    // The ledger.
    let ledger = s
        .state
        .ledger_since(
            t0 - chrono::Duration::minutes(1),
            Utc::now() + chrono::Duration::minutes(1),
            10_000,
        )
        .await
        .expect("ledger");
    let ledgered: BTreeSet<&str> = ledger.iter().map(|e| e.correlation_id.as_str()).collect();
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &ledger {
        *by_outcome.entry(e.outcome.as_str()).or_default() += 1;
    }
    let denied_rows: Vec<_> = ledger
        .iter()
        .filter(|e| e.correlation_id != stop_id)
        .collect();
    let denied_groups: BTreeSet<&str> = denied_rows
        .iter()
        .filter_map(|e| e.group_key.as_deref())
        .collect();
    let stop_rows = s
        .state
        .ledger_by_correlation(&stop_id)
        .await
        .expect("ledger by correlation id");
    println!(
        "flood: events_in={} concurrency={CONCURRENCY} took_s={:.1} slack_calls={} slack_roots={} stoplogging_posts={} stoplogging_arrived_after_invocation_ms={} ledger_rows={} ledgered_events={} denied_groups={} decisions={by_decision:?} ledger_outcomes={by_outcome:?}",
        DENIED + 1,
        took.as_secs_f64(),
        requests.len(),
        roots.len(),
        stop_posts.len(),
        arrived_after_ms.map_or_else(|| "never".to_string(), |ms| format!("{ms:.0}")),
        ledger.len(),
        ledgered.len(),
        denied_groups.len(),
    );

    // The StopLogging: one ledger row, sent through the priority lane, never held back.
    assert_eq!(stop_rows.len(), 1, "{stop_rows:#?}");
    let row = &stop_rows[0];
    assert_eq!(row.kind, Some(Kind::AuditTampering));
    assert_eq!(
        row.outcome,
        Outcome::Sent,
        "the StopLogging was posted, not rate-limited or folded: {row:#?}"
    );
    let reason = row.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("priority lane"), "{reason}");
    assert!(!reason.contains("held back"), "{reason}");
    assert!(
        row.channels
            .iter()
            .any(|c| c.channel.starts_with("slack") && c.ok),
        "Slack took it: {row:#?}"
    );
    // ... and in Slack, its own first message: not a reply, not a digest line.
    assert_eq!(
        stop_posts.len(),
        1,
        "the StopLogging is in exactly one Slack message: {stop_posts:#?}"
    );
    let post = stop_posts[0];
    assert!(
        post["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("chat.postMessage")
    );
    assert!(post["json"]["thread_ts"].is_null(), "a message of its own");
    assert!(
        !content(post).contains("Held back by the rate limit"),
        "it carries no digest: {post:#}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| content(r).contains("Held back by the rate limit"))
            .all(|r| !content(r).contains("StopLogging")),
        "no digest names it"
    );

    // The denied calls fold by actor: one group per principal, whatever the resource or the
    // session name, so they need a handful of Slack messages, not 500.
    assert_eq!(
        denied_groups.len(),
        ACTORS,
        "one group per actor: {denied_groups:#?}"
    );
    assert!(
        denied_groups
            .iter()
            .all(|k| k.starts_with(&format!("{ACCOUNT}|us-east-1|access_denied|actor:"))),
        "{denied_groups:#?}"
    );
    let denied_sent = denied_rows
        .iter()
        .filter(|e| e.outcome == Outcome::Sent)
        .count();
    assert!(
        denied_sent <= ACTORS,
        "at most one first message per actor, {denied_sent} sent"
    );
    let bound = ACTORS * (1 + max_replies) + 1;
    assert!(
        requests.len() <= bound,
        "{} Slack calls, bound {bound}",
        requests.len()
    );

    // Every one of the 501 events is in the ledger, once.
    assert_eq!(ledger.len(), DENIED + 1, "one ledger row per event");
    assert_eq!(ledgered.len(), DENIED + 1);
    assert!(ids.iter().all(|id| ledgered.contains(id.as_str())));
}
