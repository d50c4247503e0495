//! vigil's two Lambda functions end to end, as Lambda runs them: the built binaries
//! (`target/debug/handle-alarm`, `target/debug/handle-event`) polling the Runtime API of
//! `cargo lambda watch` (the Lambda emulator; `vigil_testkit::lambda` says why the harness, not
//! watch, starts them), invoked over HTTP with real event payloads, talking over real
//! HTTP to the local AWS (moto + vigil's extension: SNS, Secrets Manager, DynamoDB,
//! CloudTrail `LookupEvents`) and the Slack stand-in. Nothing is mocked inside the process.
//!
//! Needs the binaries built first (`cargo test --workspace --locked`, i.e. `make test`, builds them
//! before running any test; `make build-dev` does too)
//! and the venv (`make venv`). Each invocation's duration is printed (`-- --nocapture`); those
//! numbers are the measured durations in docs/COST.md.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::{Value, json};
use vigil_testkit::lambda::{Invocation, LambdaRuntime};
use vigil_testkit::{ACCOUNT_ID, LocalAws, repo_root};

const REGION: &str = "us-east-1";
const TABLE: &str = "vigil-journal";
/// `VIGIL_SLACK_SECRET`: the workspace-wide webhook.
const DEFAULT_SLACK_SECRET: &str = "vigil/slack/default";
/// `VIGIL_SNS_TOPIC_ARN`'s topic.
const DEFAULT_TOPIC: &str = "vigil-alerts";
/// The webhook (on the Slack stand-in) that secret holds.
const WEBHOOK_PATH: &str = "/services/T/B/X";
const JOURNAL_TTL_HOURS: i64 = 24;

/// One `cargo lambda watch` and one local AWS at a time: on two cores, concurrent cold starts
/// would make the measured durations (docs/COST.md) say more about the machine than the code.
static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The local AWS with what the functions need, and the functions running under watch.
struct Stack {
    aws: LocalAws,
    lambda: LambdaRuntime,
    /// Topic name → ARN, every topic the functions may publish to.
    topics: BTreeMap<String, String>,
    /// Per invocation: the AWS calls the function made meanwhile (`service:Operation` → count),
    /// from the local AWS's own request log.
    calls: std::sync::Mutex<Vec<BTreeMap<String, usize>>>,
}

fn read_json(rel: &str) -> Value {
    let path = repo_root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn seed_trail(aws: &LocalAws, dir: &str) -> u64 {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut stored = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).expect("trail file");
        let doc: Value = serde_json::from_str(&text).expect("trail JSON");
        stored += aws.seed_cloudtrail(doc).await["stored"]
            .as_u64()
            .expect("stored count");
    }
    stored
}

/// The `sns_topic_arn`s the shipped owners file routes to.
fn owners_topics(owners: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(owners).expect("owners file");
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sns_topic_arn:"))
        .map(|rest| rest.trim().trim_matches('"').to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

async fn stack() -> Stack {
    // Fail fast, before starting anything, if the binaries under test are missing or stale.
    vigil_testkit::lambda::assert_functions_built();
    let aws = LocalAws::start().await;
    let config = aws.sdk_config().await;
    let owners = repo_root().join("examples/owners.yaml");
    let topic_arns = owners_topics(&owners);

    // The Slack webhook in Secrets Manager, as in production (`VIGIL_SLACK_SECRET`; one
    // credential serves every route).
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    secrets
        .create_secret()
        .name(DEFAULT_SLACK_SECRET)
        .secret_string(
            json!({ "webhook_url": format!("{}{WEBHOOK_PATH}", aws.slack_url()) }).to_string(),
        )
        .send()
        .await
        .expect("Slack secret");

    // SNS topics: the default one (`VIGIL_SNS_TOPIC_ARN`) and every one the owners file names.
    let sns = aws_sdk_sns::Client::new(&config);
    let mut topics = BTreeMap::new();
    let names = std::iter::once(DEFAULT_TOPIC.to_owned()).chain(
        topic_arns
            .iter()
            .map(|arn| arn.rsplit(':').next().expect("topic name").to_owned()),
    );
    for name in names {
        let arn = sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("topic {name}: {e:?}"))
            .topic_arn
            .expect("topic arn");
        topics.insert(name, arn);
    }
    for arn in &topic_arns {
        assert!(
            topics.values().any(|a| a == arn),
            "{arn} from examples/owners.yaml exists locally (account {ACCOUNT_ID})"
        );
    }

    // The change journal: keys pk/sk (strings), TTL on expires_at.
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("journal table");
    ddb.update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("journal TTL");

    let slack_secret_ref = format!("secretsmanager:{DEFAULT_SLACK_SECRET}");
    let owners_path = owners.canonicalize().expect("owners path");
    let owners_path = owners_path.to_str().expect("utf-8 path");
    let ttl = JOURNAL_TTL_HOURS.to_string();
    let envs: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", aws.aws_url()),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("VIGIL_SLACK_SECRET", &slack_secret_ref),
        ("VIGIL_SLACK_API_BASE", aws.slack_url()),
        ("VIGIL_OWNERS_FILE", owners_path),
        ("VIGIL_SNS_TOPIC_ARN", &topics[DEFAULT_TOPIC]),
        ("VIGIL_DEFAULT_TEAM", "platform"),
        ("VIGIL_CONTENT_POLICY", "redacted"),
        ("VIGIL_LOOKBACK_MINUTES", "60"),
        ("VIGIL_ENRICH_BUDGET_MS", "10000"),
        ("VIGIL_DELIVERY_BUDGET_MS", "10000"),
        ("VIGIL_LOOKUP_RPS", "2"),
        ("VIGIL_TABLE_NAME", TABLE),
        ("VIGIL_JOURNAL_TTL_HOURS", &ttl),
        ("VIGIL_EVENT_MIN_SEVERITY", "high"),
        ("RUST_LOG", "info"),
    ];
    let lambda = LambdaRuntime::start(&envs).await;
    Stack {
        aws,
        lambda,
        topics,
        calls: std::sync::Mutex::new(Vec::new()),
    }
}

impl Stack {
    /// Invoke, and record the AWS calls made while the function ran (the test makes none then).
    async fn invoke(&self, function: &str, payload: &Value) -> Invocation {
        let since = self
            .aws
            .requests("")
            .await
            .iter()
            .filter_map(|r| r["seq"].as_u64())
            .max()
            .unwrap_or(0);
        let inv = self.lambda.invoke(function, payload).await;
        let mut counts = BTreeMap::new();
        for r in self.aws.requests(&format!("since={since}")).await {
            let key = format!(
                "{}:{}",
                r["service"].as_str().unwrap_or("?"),
                r["operation"].as_str().unwrap_or("?")
            );
            *counts.entry(key).or_insert(0) += 1;
        }
        self.calls.lock().expect("calls").push(counts);
        inv
    }

    /// Invoke and require success, with the function's output in the failure message.
    async fn invoke_ok(&self, function: &str, payload: &Value) -> Invocation {
        let inv = self.invoke(function, payload).await;
        assert!(
            inv.is_ok(),
            "{function} failed: HTTP {} {:?} {}\n--- watch output ---\n{}",
            inv.status,
            inv.error_type,
            inv.body,
            self.lambda.log_tail(60)
        );
        inv
    }

    /// Bodies of the webhook posts the Slack stand-in received.
    async fn slack_posts(&self) -> Vec<(String, String)> {
        self.aws
            .slack_requests()
            .await
            .into_iter()
            .filter_map(|r| {
                let path = r["path"].as_str()?.to_owned();
                path.starts_with("/services/")
                    .then(|| (path, r["body"].as_str().unwrap_or_default().to_owned()))
            })
            .collect()
    }

    /// Every SNS notification moto holds: (topic name, message, subject, attributes).
    async fn sns_messages(&self) -> Vec<(String, String, String, Value)> {
        self.aws.sns_notifications().await
    }

    /// Every item in the journal table (a Scan: the table holds only this test's items).
    async fn journal(&self) -> Vec<BTreeMap<String, AttributeValue>> {
        let config = self.aws.sdk_config().await;
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let out = ddb
            .scan()
            .table_name(TABLE)
            .send()
            .await
            .expect("scan journal");
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.into_iter().collect())
            .collect()
    }

    /// One line per invocation: its duration (docs/COST.md) and the AWS calls it made.
    fn report(&self, test: &str) {
        let calls = self.calls.lock().expect("calls").clone();
        for (i, inv) in self.lambda.invocations().iter().enumerate() {
            let made = calls
                .get(i)
                .map(|c| {
                    c.iter()
                        .map(|(k, n)| format!("{k}={n}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            println!(
                "e2e-invocation\ttest={test}\tfunction={}\tcold={}\tresult={}\tms={:.1}\taws_calls={made}",
                inv.function,
                inv.cold,
                inv.error_type.as_deref().unwrap_or("ok"),
                inv.duration.as_secs_f64() * 1000.0
            );
        }
        for f in vigil_testkit::lambda::FUNCTIONS {
            let n = self
                .lambda
                .invocations()
                .iter()
                .filter(|i| i.function == f)
                .count();
            if n > 0 {
                println!(
                    "e2e-logs\ttest={test}\tfunction={f}\tinvocations={n}\tbytes={}",
                    self.lambda.log_bytes(f)
                );
            }
        }
    }
}

/// A SNS notification carries the kind (and a severity) as message attributes.
fn attribute<'a>(attrs: &'a Value, name: &str) -> Option<&'a str> {
    let a = attrs.get(name)?;
    a.as_str()
        .or_else(|| a.get("Value").and_then(Value::as_str))
        .or_else(|| a.get("StringValue").and_then(Value::as_str))
}

/// A CloudTrail record as EventBridge delivers it ("AWS API Call via CloudTrail"), dated now,
/// in the local account and Region.
fn eventbridge_api_call(mut record: Value, id: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    record["eventTime"] = json!(now);
    record["eventID"] = json!(id);
    record["awsRegion"] = json!(REGION);
    record["recipientAccountId"] = json!(ACCOUNT_ID);
    if record["userIdentity"]["accountId"].is_string() {
        record["userIdentity"]["accountId"] = json!(ACCOUNT_ID);
    }
    if let Some(arn) = record["userIdentity"]["arn"].as_str() {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() == 6 {
            record["userIdentity"]["arn"] =
                json!(format!("arn:aws:iam::{ACCOUNT_ID}:{}", parts[5]));
        }
    }
    let service = record["eventSource"]
        .as_str()
        .and_then(|s| s.strip_suffix(".amazonaws.com"))
        .unwrap_or("cloudtrail")
        .to_owned();
    json!({
        "version": "0",
        "id": format!("{id}-eb"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": ACCOUNT_ID,
        "time": now,
        "region": REGION,
        "resources": [],
        "detail": record,
    })
}

fn unique_id(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("e2e{tag}-{nanos:x}")
}

/// An item's size as DynamoDB bills it (attribute names + values; numbers about one byte per
/// two digits; lists and maps 3 bytes + 1 per element), for the write units in docs/COST.md.
fn item_bytes(item: &BTreeMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => 1 + n.trim_start_matches('-').len().div_ceil(2),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| 1 + n.len().div_ceil(2)).sum(),
            AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value(e)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, e)| 1 + k.len() + value(e)).sum::<usize>()
            }
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The DetachRolePolicy record from the agent-tool demo's trail.
fn detach_role_policy_record() -> Value {
    let log = read_json(
        "examples/demo/agent-tool-access-denied/trail/111122223333_CloudTrail_us-east-1_20261120T0910Z_mSkMQyocPmboHpk6.json",
    );
    log["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .find(|r| r["eventName"] == "DetachRolePolicy")
        .expect("a DetachRolePolicy record")
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_yields_slack_and_sns_messages_carrying_the_seeded_cloudtrail_context() {
    let _turn = ONE_AT_A_TIME.acquire().await.expect("semaphore");
    let s = stack().await;
    assert!(seed_trail(&s.aws, "examples/demo/agent-tool-access-denied/trail").await > 0);
    assert!(seed_trail(&s.aws, "examples/demo/bedrock-throttling-capacity/trail").await > 0);

    // 1. A direct CloudWatch alarm action: the agent's tool Lambda fails after a policy detach.
    let event = read_json("examples/demo/agent-tool-access-denied/event.json");
    s.invoke_ok("handle-alarm", &event).await;

    let posts = s.slack_posts().await;
    let post = posts
        .iter()
        .find(|(_, body)| body.contains("access_denied"))
        .unwrap_or_else(|| panic!("a Slack post about access_denied: {posts:#?}"));
    assert!(
        post.1.contains("DetachRolePolicy"),
        "the post names the probable cause from the seeded CloudTrail: {}",
        post.1
    );
    assert_eq!(
        post.0, WEBHOOK_PATH,
        "posted to the webhook read from Secrets Manager"
    );
    let sns = s.sns_messages().await;
    let note = sns
        .iter()
        .find(|(_, _, _, attrs)| attribute(attrs, "kind") == Some("access_denied"))
        .unwrap_or_else(|| panic!("an SNS message with kind=access_denied: {sns:#?}"));
    assert!(
        attribute(&note.3, "severity").is_some_and(|v| !v.is_empty()),
        "severity attribute: {:?}",
        note.3
    );
    assert!(
        note.1.contains("DetachRolePolicy"),
        "the SNS message carries the CloudTrail context: {}",
        note.1
    );
    assert!(
        s.aws
            .requests("service=cloudtrail&operation=LookupEvents")
            .await
            .iter()
            .any(|r| r["status"] == 200),
        "the function asked CloudTrail"
    );
    println!(
        "access_denied: Slack webhooks {:?}; SNS topics {:?}",
        posts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        sns.iter().map(|(t, ..)| t.as_str()).collect::<Vec<_>>()
    );

    // 2. The same through SNS (CloudWatch → SNS → Lambda): Bedrock throttling after a
    //    provisioned-throughput deletion.
    let event = read_json("examples/demo/bedrock-throttling-capacity/event.json");
    s.invoke_ok("handle-alarm", &event).await;
    let posts = s.slack_posts().await;
    let post = posts
        .iter()
        .find(|(_, body)| body.contains("throttle_spike"))
        .unwrap_or_else(|| panic!("a Slack post about throttle_spike: {posts:#?}"));
    assert!(
        post.1.contains("DeleteProvisionedModelThroughput"),
        "{}",
        post.1
    );
    let sns = s.sns_messages().await;
    let note = sns
        .iter()
        .find(|(_, _, _, attrs)| attribute(attrs, "kind") == Some("throttle_spike"))
        .unwrap_or_else(|| panic!("an SNS message with kind=throttle_spike: {sns:#?}"));
    assert!(attribute(&note.3, "severity").is_some(), "{:?}", note.3);
    assert!(s.topics.contains_key(&note.0), "published to a known topic");
    for (topic, message, subject, attrs) in &s.sns_messages().await {
        println!(
            "sns message: topic={topic} bytes={} (message {} + subject {} + attributes {})",
            message.len() + subject.len() + attrs.to_string().len(),
            message.len(),
            subject.len(),
            attrs.to_string().len()
        );
    }
    for (path, body) in &s.slack_posts().await {
        println!("slack post: {path} bytes={}", body.len());
    }

    s.report("alarm");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloudtrail_api_event_is_journaled_and_a_critical_one_alerts_at_once() {
    let _turn = ONE_AT_A_TIME.acquire().await.expect("semaphore");
    let s = stack().await;
    let journal_pk = format!("change#{ACCOUNT_ID}#{REGION}");

    // StopLogging: audit tampering, critical → journaled and alerted immediately.
    let mut stop = read_json(
        "tests/fixtures/aws-events/cloudtrail-api-call-eventbridge/stratus-cloudtrail-stoplogging.json",
    );
    stop["tlsDetails"]["clientProvidedHostHeader"] =
        json!(format!("cloudtrail.{REGION}.amazonaws.com"));
    stop["requestParameters"]["name"] = json!(format!(
        "arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/management-events"
    ));
    let stop_id = unique_id("stop");
    let before = chrono::Utc::now().timestamp();
    s.invoke_ok("handle-event", &eventbridge_api_call(stop, &stop_id))
        .await;

    let items = s.journal().await;
    let item = items
        .iter()
        .find(|i| format!("{i:?}").contains("StopLogging"))
        .unwrap_or_else(|| panic!("a journal item for StopLogging: {items:#?}"));
    assert_eq!(
        item.get("pk").and_then(|v| v.as_s().ok()),
        Some(&journal_pk),
        "{item:?}"
    );
    assert!(
        item.get("sk").and_then(|v| v.as_s().ok()).is_some(),
        "{item:?}"
    );
    let expires: i64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expires_at (epoch seconds, a number): {item:?}"));
    let ttl = JOURNAL_TTL_HOURS * 3600;
    assert!(
        expires >= before + ttl - 120 && expires <= chrono::Utc::now().timestamp() + ttl + 120,
        "expires_at {expires} is about {JOURNAL_TTL_HOURS} h from now"
    );
    let posts = s.slack_posts().await;
    let post = posts
        .iter()
        .find(|(_, body)| body.contains("audit_tampering"))
        .unwrap_or_else(|| panic!("an immediate Slack post about audit_tampering: {posts:#?}"));
    assert!(post.1.contains("StopLogging"), "{}", post.1);

    // DetachRolePolicy: a permission change, journaled for later alarms to correlate with.
    let detach_id = unique_id("detach");
    s.invoke_ok(
        "handle-event",
        &eventbridge_api_call(detach_role_policy_record(), &detach_id),
    )
    .await;
    let items = s.journal().await;
    let item = items
        .iter()
        .find(|i| format!("{i:?}").contains("DetachRolePolicy"))
        .unwrap_or_else(|| panic!("a journal item for DetachRolePolicy: {items:#?}"));
    assert_eq!(
        item.get("pk").and_then(|v| v.as_s().ok()),
        Some(&journal_pk)
    );
    assert!(item.contains_key("expires_at"), "{item:?}");
    for i in &items {
        let bytes = item_bytes(i);
        println!(
            "journal item: {} bytes ({} write unit(s)) sk={:?}",
            bytes,
            bytes.div_ceil(1024),
            i.get("sk").and_then(|v| v.as_s().ok())
        );
    }
    println!(
        "journal: {} items; Slack webhooks {:?}",
        items.len(),
        posts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>()
    );

    s.report("event");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_event_is_refused_and_the_function_keeps_serving() {
    let _turn = ONE_AT_A_TIME.acquire().await.expect("semaphore");
    let s = stack().await;
    let malformed =
        read_json("tests/fixtures/aws-events/malformed/notify-slack-sns-plain-text-message.json");

    for (function, good) in [
        (
            "handle-alarm",
            read_json("examples/demo/agent-tool-access-denied/event.json"),
        ),
        (
            "handle-event",
            eventbridge_api_call(detach_role_policy_record(), &unique_id("after")),
        ),
    ] {
        let refused = s.invoke(function, &malformed).await;
        assert_eq!(
            refused.error_type.as_deref(),
            Some("Refused"),
            "{function}: HTTP {} {}\n{}",
            refused.status,
            refused.body,
            s.lambda.log_tail(40)
        );
        let message = refused.body["errorMessage"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "the refusal says why: {}",
            refused.body
        );

        // The same process serves the next event: a refusal is an answer, not a crash.
        assert!(
            s.lambda.is_running(function).await,
            "{function} exited after a refusal"
        );
        let again = s.invoke_ok(function, &good).await;
        assert!(
            again.is_ok() && !again.cold,
            "served warm by the same process"
        );
        assert!(s.lambda.is_running(function).await);
    }

    s.report("malformed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misconfigured_function_refuses_every_event_with_a_config_error_and_stays_up() {
    let _turn = ONE_AT_A_TIME.acquire().await.expect("semaphore");
    // No AWS is needed to read the configuration: the endpoint is a closed port.
    let envs: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("VIGIL_SLACK_SECRET", "secretsmanager:vigil/slack"),
        ("VIGIL_OWNERS_FILE", "examples/owners.yaml"),
        (
            "VIGIL_SNS_TOPIC_ARN",
            "arn:aws:sns:us-east-1:111122223333:vigil",
        ),
        ("VIGIL_TABLE_NAME", TABLE),
        ("VIGIL_CONTENT_POLICY", "loud"),
        ("RUST_LOG", "info"),
    ];
    let lambda = LambdaRuntime::start(&envs).await;
    let event = read_json("examples/demo/agent-tool-access-denied/event.json");
    for function in ["handle-alarm", "handle-event"] {
        for attempt in 0..2 {
            let got = lambda.invoke(function, &event).await;
            assert_eq!(
                got.error_type.as_deref(),
                Some("Config"),
                "{function} attempt {attempt}: HTTP {} {}\n{}",
                got.status,
                got.body,
                lambda.log_tail(40)
            );
            let message = got.body["errorMessage"].as_str().unwrap_or_default();
            assert!(
                message.contains("VIGIL_CONTENT_POLICY"),
                "the error names the setting: {message}"
            );
            assert!(
                lambda.is_running(function).await,
                "{function} stays up to answer the next event (and Lambda dead-letters each one)"
            );
        }
    }
    lambda.stop().await;
}
