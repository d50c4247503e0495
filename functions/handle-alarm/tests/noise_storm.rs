//! Noise control against the local AWS (moto's DynamoDB, SNS and Secrets Manager, through
//! vigil's extension) and the Slack stand-in in bot-token mode, with the handler wired exactly
//! as the Lambda binary wires it (`deps::build` from a `Config`): the same event three times
//! and eight times at once, a storm of 1,000 alarm events across 5 alarms, and a silence.
//!
//! The storm prints its figures (`cargo test --workspace --test noise_storm -- --nocapture`):
//! events in, Slack calls out, ledger rows, and the most Slack calls to one channel in any
//! one-second window, by the stand-in's own clock.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use chrono::{DateTime, Utc};
use handle_alarm::handler::Decision;
use handle_alarm::{AwsDeps, Config, ConfigError, deps, handle};
use serde_json::{Value, json};
use vigil_adapters::state::DynamoState;
use vigil_core::noise::{Matcher, Outcome, Silence};
use vigil_testkit::LocalAws;

const TABLE: &str = "vigil-state";
const TOKEN: &str = "xoxb-000000000000-0000000000000-StandInTokenForTests";
const CHANNEL: &str = "#agents-alerts";

/// One Slack call per channel per this interval at most. The production default is 1.2 s;
/// the test leaves more room because the stand-in measures arrival, and on a loaded CI machine
/// one request can take a few hundred milliseconds longer than the next to arrive.
const INTERVAL_MS: u64 = 1_500;

/// The demo alarm event as `name`, in `state`, changed at `time`.
fn alarm(name: &str, state: &str, time: DateTime<Utc>) -> Value {
    let text = include_str!("../../../examples/demo/agent-tool-access-denied/event.json");
    let mut e: Value = serde_json::from_str(text).expect("demo event");
    let stamp = time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    e["alarmArn"] = format!("arn:aws:cloudwatch:us-east-1:111122223333:alarm:{name}").into();
    e["alarmData"]["alarmName"] = name.into();
    e["alarmData"]["state"]["value"] = state.into();
    e["alarmData"]["state"]["timestamp"] = stamp.clone().into();
    e["time"] = stamp.into();
    e["alarmData"]["previousState"]["value"] = if state == "OK" { "ALARM" } else { "OK" }.into();
    e
}

struct Stack {
    aws: LocalAws,
    deps: AwsDeps,
    state: DynamoState,
}

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

async fn stack(extra: &[(&'static str, &str)]) -> Stack {
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
        .name("agents")
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let slack_api = format!("{}/api", aws.slack_url());
    let mut env: HashMap<&'static str, String> = HashMap::from([
        (
            "VIGIL_SLACK_SECRET",
            "secretsmanager:vigil/slack".to_string(),
        ),
        ("VIGIL_SLACK_API_BASE", slack_api),
        ("VIGIL_SLACK_CHANNEL", CHANNEL.to_string()),
        ("VIGIL_DEFAULT_TEAM", "agents".to_string()),
        ("VIGIL_SNS_TOPIC_ARN", topic),
        ("VIGIL_TABLE_NAME", TABLE.to_string()),
        // Context is not what these tests are about: a short budget keeps LookupEvents'
        // 2 requests a second from dominating the run.
        ("VIGIL_ENRICH_BUDGET_MS", "300".to_string()),
        ("VIGIL_DELIVERY_BUDGET_MS", "10000".to_string()),
        ("VIGIL_SLACK_INTERVAL_MS", INTERVAL_MS.to_string()),
    ]);
    for (k, v) in extra {
        env.insert(k, (*v).to_string());
    }
    let config =
        Config::from_lookup(|name| Ok::<_, ConfigError>(env.get(name).cloned())).expect("config");
    let deps = deps::build(&config, &sdk).await.expect("deps");
    assert!(deps.threads, "bot-token mode");
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    Stack { aws, deps, state }
}

/// Slack Web API calls (posts and edits) the stand-in received: (path, channel, wall ms,
/// thread_ts).
async fn slack_calls(aws: &LocalAws) -> Vec<(String, String, f64, Option<String>)> {
    aws.slack_requests()
        .await
        .iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap_or_default();
            p.ends_with("chat.postMessage") || p.ends_with("chat.update")
        })
        .map(|r| {
            (
                r["path"].as_str().unwrap_or_default().to_string(),
                r["json"]["channel"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["wall_ms"].as_f64().unwrap_or_default(),
                r["json"]["thread_ts"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The most calls to one channel inside any window of `window_ms`.
fn max_in_window(calls: &[(String, String, f64, Option<String>)], window_ms: f64) -> usize {
    let mut by_channel: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (_, channel, ms, _) in calls {
        by_channel.entry(channel.as_str()).or_default().push(*ms);
    }
    let mut most = 0;
    for times in by_channel.values_mut() {
        times.sort_by(f64::total_cmp);
        for (i, start) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|t| **t < start + window_ms)
                .count();
            most = most.max(n);
        }
    }
    most
}

/// SNS messages moto holds (every `sent_notifications` list in its data dump).
async fn sns_count(aws: &LocalAws) -> usize {
    fn walk(v: &Value) -> usize {
        match v {
            Value::Object(map) => map
                .iter()
                .map(|(k, child)| match (k.as_str(), child) {
                    ("sent_notifications", Value::Array(sent)) => sent.len(),
                    _ => walk(child),
                })
                .sum(),
            Value::Array(items) => items.iter().map(walk).sum(),
            _ => 0,
        }
    }
    walk(&aws.moto_data().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_three_times_then_eight_at_once_sends_one_message_each() {
    let s = stack(&[]).await;
    let now = Utc::now();
    let event = alarm("tool-errors", "ALARM", now);
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let out = handle(event.clone(), &s.deps, Utc::now())
            .await
            .expect("handled");
        decisions.push(out.alerts[0].outcome);
    }
    assert_eq!(
        decisions,
        [
            Decision::Notified,
            Decision::Suppressed,
            Decision::Suppressed
        ]
    );
    assert_eq!(slack_calls(&s.aws).await.len(), 1, "one Slack message");
    assert_eq!(sns_count(&s.aws).await, 1, "one SNS message");

    // Eight concurrent invocations of one new event.
    let deps = Arc::new(s.deps);
    let other = alarm("model-throttles", "ALARM", now);
    let runs = (0..8).map(|_| {
        let deps = Arc::clone(&deps);
        let event = other.clone();
        tokio::spawn(async move { handle(event, &deps, Utc::now()).await })
    });
    let mut notified = 0;
    for r in futures::future::join_all(runs).await {
        let out = r.expect("task").expect("handled");
        match out.alerts[0].outcome {
            Decision::Notified => notified += 1,
            Decision::Suppressed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(notified, 1, "exactly one invocation owned the event");
    assert_eq!(slack_calls(&s.aws).await.len(), 2);
    assert_eq!(sns_count(&s.aws).await, 2);
    let alert_id = format!(
        "arn:aws:cloudwatch:us-east-1:111122223333:alarm:model-throttles@{}",
        vigil_core::intake::parse_value(&other).expect("parse")[0]
            .time
            .to_rfc3339()
    );
    let rows = s
        .state
        .ledger_by_correlation(&alert_id)
        .await
        .expect("ledger");
    assert_eq!(
        rows.len(),
        8,
        "every invocation is in the ledger: {rows:#?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.outcome == Outcome::Sent).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silence_suppresses_what_it_matches_and_lets_the_resolve_through() {
    let s = stack(&[]).await;
    let t0 = Utc::now();
    let first = handle(alarm("tool-errors", "ALARM", t0), &s.deps, Utc::now())
        .await
        .expect("first");
    assert_eq!(first.alerts[0].outcome, Decision::Notified);
    s.state
        .put_silence(
            &Silence {
                id: "sil-00000000abcd".into(),
                matchers: vec![Matcher::parse("name=tool-*").expect("matcher")],
                starts_at: t0 - chrono::Duration::minutes(1),
                ends_at: t0 + chrono::Duration::hours(1),
                author: "oncall@example.com".into(),
                reason: "deploying a fix".into(),
                created_at: t0,
                expired_by: None,
            },
            Duration::from_secs(3_600),
        )
        .await
        .expect("silence");
    let repeat = handle(
        alarm("tool-errors", "ALARM", t0 + chrono::Duration::seconds(60)),
        &s.deps,
        Utc::now(),
    )
    .await
    .expect("repeat");
    assert_eq!(repeat.alerts[0].outcome, Decision::Suppressed);
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS)).await;
    let resolve = handle(
        alarm("tool-errors", "OK", t0 + chrono::Duration::seconds(120)),
        &s.deps,
        Utc::now(),
    )
    .await
    .expect("resolve");
    assert_eq!(resolve.alerts[0].outcome, Decision::Resolved, "{resolve:?}");
    let calls = slack_calls(&s.aws).await;
    let paths: Vec<&str> = calls
        .iter()
        .map(|c| c.0.rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        ["chat.postMessage", "chat.update", "chat.postMessage"],
        "first post, then the resolve edits it and replies in its thread"
    );
    assert!(calls[2].3.is_some(), "the resolve reply is in the thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_1000_alarm_events_across_5_alarms_stays_bounded_and_fully_ledgered() {
    const EVENTS: usize = 1_000;
    const ALARMS: usize = 5;
    /// At most this many invocations at once (Lambda would run more; moto is one process).
    const CONCURRENCY: usize = 16;
    let s = stack(&[]).await;
    let t0 = Utc::now();
    let max_replies = s.deps.noise.max_replies as usize;

    // 200 events per alarm inside one minute: mostly re-evaluations in ALARM, with the state
    // flipping to OK and back every 20 events (flapping).
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            let alarm_no = i % ALARMS;
            let n = i / ALARMS;
            let state = if (n / 20) % 2 == 1 { "OK" } else { "ALARM" };
            let at = t0 + chrono::Duration::milliseconds((n as i64) * 300 + alarm_no as i64);
            alarm(&format!("storm-{alarm_no}"), state, at)
        })
        .collect();
    let ids: BTreeSet<String> = events
        .iter()
        .map(|e| {
            vigil_core::intake::parse_value(e).expect("parse")[0]
                .id
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), EVENTS, "1,000 distinct events");

    let started = std::time::Instant::now();
    let deps = Arc::new(s.deps);
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let runs = events.into_iter().map(|event| {
        let deps = Arc::clone(&deps);
        let sem = Arc::clone(&sem);
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            handle(event, &deps, Utc::now()).await
        })
    });
    let mut by_decision: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in futures::future::join_all(runs).await {
        let out = r.expect("task").expect("every event handled, none failed");
        *by_decision
            .entry(out.alerts[0].outcome.as_str())
            .or_default() += 1;
    }
    let took = started.elapsed();

    let calls = slack_calls(&s.aws).await;
    let posts = calls
        .iter()
        .filter(|c| c.0.ends_with("chat.postMessage"))
        .count();
    let edits = calls.len() - posts;
    let most_per_second = max_in_window(&calls, 1_000.0);
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
    println!(
        "storm: events_in={EVENTS} alarms={ALARMS} concurrency={CONCURRENCY} took_s={:.1} slack_posts={posts} slack_edits={edits} sns_messages={} ledger_rows={} ledgered_events={} max_slack_calls_per_channel_per_second={most_per_second} decisions={by_decision:?} ledger_outcomes={by_outcome:?}",
        took.as_secs_f64(),
        sns_count(&s.aws).await,
        ledger.len(),
        ledgered.len(),
    );

    // The bound: per alarm, one first message, at most `max_replies` thread replies (the
    // flapping notice among them), and a resolve's edit and reply: 5 × (1 + 5 + 2) = 40.
    let bound = ALARMS * (1 + max_replies + 2);
    assert!(
        calls.len() <= bound,
        "{} Slack calls, bound {bound}",
        calls.len()
    );
    assert!(posts >= ALARMS, "every alarm was posted at least once");
    assert_eq!(
        most_per_second, 1,
        "never two Slack calls to one channel within a second"
    );
    assert_eq!(ledger.len(), EVENTS, "one ledger row per event");
    assert_eq!(
        ledgered.len(),
        EVENTS,
        "every event's correlation id is in the ledger"
    );
    assert!(ids.iter().all(|id| ledgered.contains(id.as_str())));
}
