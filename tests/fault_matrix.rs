//! The fault matrix: every dependency of `handle-alarm` (CloudTrail, Bedrock, CloudWatch,
//! DynamoDB, SNS, Slack, Secrets Manager) failing each way (timeout, 5xx, throttling, malformed
//! answer), one cell at a time, against the built binary under the local Lambda runtime
//! (`cargo lambda watch`), the local AWS and the Slack stand-in over real HTTP.
//!
//! Each cell starts from nothing (a fresh execution environment, so a Secrets Manager fault
//! hits the cold start as it would in Lambda), injects its fault for every call to that
//! dependency (an outage, not a blip: the SDK's and vigil's retries cannot absorb it), invokes
//! the function with the demo Bedrock throttling alarm, and then checks the invariant:
//!
//! - the alert reached Slack or SNS, **or** the invocation failed (so Lambda retries it and
//!   then hands it to the on-failure destination: dead-lettered, never lost); and
//! - the ledger row of that alert names what failed. When DynamoDB itself is down the ledger
//!   cannot be written; then the function's log line "ledger entry not written" must carry
//!   the whole entry (CloudWatch Logs is the record of last resort).
//!
//! `make faults` runs it and prints the matrix (`RELIABILITY.md` holds a run); `make test`
//! calls `make faults`, so CI runs it. The test is ignored by plain `cargo test` (its attribute
//! says why) only so that `cargo test --workspace` inside `make test` does not run it twice.
//!
//! Timeouts are injected as `hang` (localaws: hold the request, then answer 504 without
//! touching moto), so a request the function gave up on cannot change state after the cell.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::fmt::Write as _;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::{Value, json};
use vigil_testkit::lambda::{Invocation, LambdaRuntime};
use vigil_testkit::{LocalAws, repo_root};

const REGION: &str = "us-east-1";
const TABLE: &str = "vigil-state";
const SLACK_SECRET: &str = "vigil/slack/default";
const WEBHOOK_PATH: &str = "/services/T/B/X";
const DEFAULT_TOPIC: &str = "vigil-alerts";
/// The alarm every cell handles: Bedrock throttling, so enrichment asks CloudTrail
/// (LookupEvents), Bedrock (invocation logging) and CloudWatch (metric history, tags), and
/// the route delivers to Slack and SNS.
const EVENT: &str = "examples/demo/bedrock-throttling-capacity/event.json";
const TRAIL: &str = "examples/demo/bedrock-throttling-capacity/trail";
/// The budgets the function runs with in the matrix (production defaults are larger; smaller
/// ones keep the 29 cells short and show that the budgets, not the faults, bound the time).
const ENRICH_BUDGET_MS: &str = "3000";
const DELIVERY_BUDGET_MS: &str = "6000";
/// How long a hung request is held: longer than every client timeout the function sets.
const HANG_SECS: u64 = 12;
/// Faults per cell: enough that every call (and every retry) meets one.
const FAULT_COUNT: u32 = 1000;

/// A dependency and how to break it.
#[derive(Debug, Clone, Copy)]
struct Dependency {
    name: &'static str,
    /// The SigV4 signing name localaws matches faults on; `None` for Slack (the stand-in).
    service: Option<&'static str>,
    /// Words that must appear in the ledger entry (any of them) when it failed.
    named_by: &'static [&'static str],
    /// Slack fails too (the one cell where no channel can deliver).
    with_slack: bool,
}

const DEPENDENCIES: [Dependency; 7] = [
    Dependency {
        name: "CloudTrail",
        service: Some("cloudtrail"),
        named_by: &["LookupEvents"],
        with_slack: false,
    },
    Dependency {
        name: "Bedrock",
        service: Some("bedrock"),
        named_by: &["Bedrock Get"],
        with_slack: false,
    },
    Dependency {
        name: "CloudWatch",
        service: Some("monitoring"),
        named_by: &["CloudWatch"],
        with_slack: false,
    },
    Dependency {
        name: "DynamoDB",
        service: Some("dynamodb"),
        named_by: &["DynamoDB"],
        with_slack: false,
    },
    Dependency {
        name: "SNS",
        service: Some("sns"),
        named_by: &["sns:arn"],
        with_slack: false,
    },
    Dependency {
        name: "Slack",
        service: None,
        named_by: &["slack:webhook failed"],
        with_slack: false,
    },
    Dependency {
        name: "Secrets Manager",
        service: Some("secretsmanager"),
        named_by: &["Slack credentials not loaded"],
        with_slack: false,
    },
];

/// Both channels down at once: the alert cannot be delivered, so the invocation must fail
/// (Lambda retries it, then the on-failure destination keeps it) and the ledger says so.
const BOTH_CHANNELS: Dependency = Dependency {
    name: "SNS and Slack",
    service: Some("sns"),
    named_by: &["sns:arn"],
    with_slack: true,
};

/// (column label, localaws fault mode)
const FAULTS: [(&str, &str); 4] = [
    ("timeout", "hang"),
    ("5xx", "error500"),
    ("throttling", "throttle"),
    ("malformed", "malformed"),
];

/// What one cell observed.
#[derive(Debug)]
struct Cell {
    dependency: &'static str,
    fault: &'static str,
    invocation: Invocation,
    slack_delivered: bool,
    sns_delivered: bool,
    /// The ledger row's outcome and reason, or what the log says instead.
    record: String,
    /// Whether the record names the failed dependency.
    recorded: bool,
}

impl Cell {
    fn delivered_or_dead_lettered(&self) -> bool {
        self.slack_delivered || self.sns_delivered || self.invocation.error_type.is_some()
    }

    fn passed(&self) -> bool {
        self.delivered_or_dead_lettered() && self.recorded
    }

    fn result(&self) -> String {
        let channels: Vec<&str> = [
            self.slack_delivered.then_some("Slack"),
            self.sns_delivered.then_some("SNS"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match (&self.invocation.error_type, channels.is_empty()) {
            (Some(e), true) => format!("dead-lettered ({e}, Lambda retries)"),
            (Some(e), false) => format!("{} + failed ({e})", channels.join(" + ")),
            (None, true) => "nothing delivered".to_string(),
            (None, false) => format!("delivered: {}", channels.join(" + ")),
        }
    }
}

fn read_json(rel: &str) -> Value {
    let path = repo_root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The SNS topics `examples/owners.yaml` routes to, plus the default one.
fn topic_names() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("examples/owners.yaml")).expect("owners");
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sns_topic_arn:"))
        .filter_map(|arn| arn.trim().trim_matches('"').rsplit(':').next())
        .map(str::to_owned)
        .chain(std::iter::once(DEFAULT_TOPIC.to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A fresh local AWS: the Slack secret, the topics, the state table, the trail for
/// LookupEvents. Returns the default topic's ARN.
async fn provision(aws: &LocalAws) -> String {
    aws.reset().await;
    let config = aws.sdk_config().await;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(SLACK_SECRET)
        .secret_string(
            json!({ "webhook_url": format!("{}{WEBHOOK_PATH}", aws.slack_url()) }).to_string(),
        )
        .send()
        .await
        .expect("Slack secret");
    let sns = aws_sdk_sns::Client::new(&config);
    let mut default_arn = String::new();
    for name in topic_names() {
        let arn = sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("topic arn");
        if name == DEFAULT_TOPIC {
            default_arn = arn;
        }
    }
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    aws_sdk_dynamodb::Client::new(&config)
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("state table");
    seed_metric(&aws_sdk_cloudwatch::Client::new(&config)).await;
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join(TRAIL))
        .expect("trail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("trail")).expect("JSON");
        aws.seed_cloudtrail(doc).await;
    }
    default_arn
}

/// The alarm's metric over the 3 hours before it (one datapoint a minute, rising at the end),
/// so that without faults enrichment finds everything and the ledger notes nothing missing.
async fn seed_metric(cw: &aws_sdk_cloudwatch::Client) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let event = read_json(EVENT);
    let message: Value = serde_json::from_str(
        event["Records"][0]["Sns"]["Message"]
            .as_str()
            .expect("SNS message"),
    )
    .expect("alarm JSON");
    let changed = chrono::DateTime::parse_from_str(
        message["StateChangeTime"].as_str().expect("state time"),
        "%Y-%m-%dT%H:%M:%S%.3f%z",
    )
    .expect("state time parses")
    .timestamp();
    let trigger = &message["Trigger"];
    let dimensions: Vec<Dimension> = trigger["Dimensions"]
        .as_array()
        .expect("dimensions")
        .iter()
        .map(|d| {
            Dimension::builder()
                .name(d["name"].as_str().expect("name"))
                .value(d["value"].as_str().expect("value"))
                .build()
        })
        .collect();
    let minutes: Vec<i64> = (1..=180).collect();
    for chunk in minutes.chunks(60) {
        let mut put = cw
            .put_metric_data()
            .namespace(trigger["Namespace"].as_str().expect("namespace"));
        for m in chunk {
            let value = if *m <= 10 { 30.0 } else { 2.0 };
            put = put.metric_data(
                MetricDatum::builder()
                    .metric_name(trigger["MetricName"].as_str().expect("metric"))
                    .set_dimensions(Some(dimensions.clone()))
                    .timestamp(DateTime::from_secs(changed - m * 60))
                    .value(value)
                    .unit(StandardUnit::Count)
                    .build(),
            );
        }
        put.send().await.expect("PutMetricData");
    }
}

async fn inject(aws: &LocalAws, dependency: Dependency, mode: &str) {
    if dependency.with_slack {
        inject_slack(aws, mode).await;
    }
    match dependency.service {
        Some(service) => {
            aws.faults(json!({
                "service": service,
                "mode": mode,
                "count": FAULT_COUNT,
                "delay": HANG_SECS,
            }))
            .await;
        }
        None => inject_slack(aws, mode).await,
    }
}

async fn inject_slack(aws: &LocalAws, mode: &str) {
    let answer = match mode {
        "hang" => json!({"status": 200, "delay": HANG_SECS}),
        "error500" => json!({"status": 500}),
        "throttle" => json!({"status": 429, "retry_after": 1}),
        _ => json!({"malformed": true}),
    };
    aws.slack_script(Value::Array(vec![answer; 50])).await;
}

/// Ledger rows (`pk` = `ledger#...`) as their JSON entries.
async fn ledger(aws: &LocalAws) -> Vec<Value> {
    let config = aws.sdk_config().await;
    let out = aws_sdk_dynamodb::Client::new(&config)
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("scan the state table");
    out.items
        .unwrap_or_default()
        .into_iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with("ledger#"))
        })
        .filter_map(|i| {
            let text = i.get("entry")?.as_s().ok()?.clone();
            serde_json::from_str(&text).ok()
        })
        .collect()
}

fn names(text: &str, dependency: Dependency) -> bool {
    let lower = text.to_ascii_lowercase();
    dependency
        .named_by
        .iter()
        .any(|w| lower.contains(&w.to_ascii_lowercase()))
}

/// A ledger entry in one line: outcome, reason, and the channels that failed.
fn summarize(entry: &Value) -> String {
    let mut out = format!(
        "{}: {}",
        entry["outcome"].as_str().unwrap_or("?"),
        entry["reason"].as_str().unwrap_or("")
    );
    for c in entry["channels"].as_array().into_iter().flatten() {
        if c["ok"].as_bool() == Some(false) {
            let _ = write!(
                out,
                "; {} failed: {}",
                c["channel"].as_str().unwrap_or("?"),
                c["detail"].as_str().unwrap_or("")
            );
        }
    }
    out
}

async fn run_cell(
    aws: &LocalAws,
    dependency: Option<Dependency>,
    fault: (&'static str, &'static str),
) -> Cell {
    let default_topic = provision(aws).await;
    let owners = repo_root()
        .join("examples/owners.yaml")
        .canonicalize()
        .expect("owners path");
    let secret_ref = format!("secretsmanager:{SLACK_SECRET}");
    let envs: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", aws.aws_url()),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("VIGIL_SLACK_SECRET", &secret_ref),
        ("VIGIL_SLACK_API_BASE", aws.slack_url()),
        ("VIGIL_OWNERS_FILE", owners.to_str().expect("utf-8")),
        ("VIGIL_SNS_TOPIC_ARN", &default_topic),
        ("VIGIL_TABLE_NAME", TABLE),
        ("VIGIL_ENRICH_BUDGET_MS", ENRICH_BUDGET_MS),
        ("VIGIL_DELIVERY_BUDGET_MS", DELIVERY_BUDGET_MS),
        ("RUST_LOG", "info"),
    ];
    let lambda = LambdaRuntime::start(&envs).await;
    if let Some(d) = dependency {
        inject(aws, d, fault.1).await;
    }
    let invocation = lambda.invoke("handle-alarm", &read_json(EVENT)).await;
    aws.clear_faults().await;

    let slack_delivered = aws.slack_requests().await.iter().any(|r| {
        r["path"].as_str() == Some(WEBHOOK_PATH)
            && r["status"].as_u64() == Some(200)
            && r["response"].as_str() == Some("ok")
    });
    let sns_delivered = !aws.sns_notifications().await.is_empty();
    let rows = ledger(aws).await;
    let log = lambda.log_tail(400);
    lambda.stop().await;

    let (record, recorded) = match rows.first() {
        Some(entry) => {
            // Only the reason and the failed channels count: the alarm's own name and kind
            // (`bedrock-...`, `throttle_spike`) must not pass for a named failure.
            let line = summarize(entry);
            let named = dependency.is_none_or(|d| names(&line, d));
            (line, named && rows.len() == 1)
        }
        None => {
            // No ledger row: only acceptable when the table itself is what failed, and then
            // the log must hold the entry.
            let logged = log
                .lines()
                .find(|l| l.contains("ledger entry not written") && l.contains("\"entry\""));
            match (dependency, logged) {
                (Some(d), Some(line)) if d.name == "DynamoDB" => {
                    let entry: Option<Value> = serde_json::from_str::<Value>(line)
                        .ok()
                        .and_then(|l| l["entry"].as_str().map(str::to_owned))
                        .and_then(|e| serde_json::from_str(&e).ok());
                    match entry {
                        Some(e) => (format!("log only: {}", summarize(&e)), true),
                        None => ("log only (entry unreadable)".to_string(), false),
                    }
                }
                _ => ("no ledger row".to_string(), false),
            }
        }
    };
    Cell {
        dependency: dependency.map_or("none", |d| d.name),
        fault: fault.0,
        invocation,
        slack_delivered,
        sns_delivered,
        record,
        recorded,
    }
}

fn cut(s: &str, max: usize) -> String {
    let one_line = s.replace('|', "/").replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}...", one_line.chars().take(max).collect::<String>())
    }
}

fn table(cells: &[Cell]) -> String {
    let mut out = String::from(
        "| dependency | fault | result | ms | ledger says | verdict |\n|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            c.dependency,
            c.fault,
            c.result(),
            c.invocation.duration.as_millis(),
            cut(&c.record, 220),
            if c.passed() { "ok" } else { "FAIL" }
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the fault matrix, about 3 minutes: `make faults` runs it and `make test` calls that"]
async fn every_dependency_failing_every_way_still_delivers_or_dead_letters_and_is_recorded() {
    vigil_testkit::lambda::assert_functions_built();
    let aws = LocalAws::start().await;
    let mut cells = vec![run_cell(&aws, None, ("none", "none")).await];
    let baseline = &cells[0];
    assert!(
        baseline.slack_delivered && baseline.sns_delivered && baseline.passed(),
        "without faults the alarm reaches both channels: {baseline:?}"
    );
    assert_eq!(
        baseline.record, "sent: post (notified)",
        "without faults the ledger notes nothing missing or failed"
    );
    for d in DEPENDENCIES {
        for f in FAULTS {
            let cell = run_cell(&aws, Some(d), f).await;
            println!(
                "fault-cell\t{}\t{}\t{}\t{} ms\t{}",
                cell.dependency,
                cell.fault,
                cell.result(),
                cell.invocation.duration.as_millis(),
                if cell.passed() { "ok" } else { "FAIL" }
            );
            cells.push(cell);
        }
    }
    let both = run_cell(&aws, Some(BOTH_CHANNELS), FAULTS[1]).await;
    assert_eq!(
        both.invocation.error_type.as_deref(),
        Some("DeliveryFailed"),
        "with no channel left the invocation fails, so Lambda retries and then dead-letters it: {both:?}"
    );
    assert!(
        both.record.starts_with("failed:") && both.record.contains("slack:webhook failed"),
        "the ledger says both channels failed: {}",
        both.record
    );
    cells.push(both);
    aws.stop().await;

    let matrix = table(&cells);
    println!("\n{matrix}");
    let out = repo_root().join("target/fault-matrix.md");
    let _ = std::fs::write(&out, &matrix);
    let failed: Vec<String> = cells
        .iter()
        .filter(|c| !c.passed())
        .map(|c| {
            format!(
                "{} × {}: {} / {}",
                c.dependency,
                c.fault,
                c.result(),
                c.record
            )
        })
        .collect();
    assert!(failed.is_empty(), "cells failed:\n{}", failed.join("\n"));
    // The outage of a channel must not cost the other one.
    for c in &cells {
        match c.dependency {
            "SNS and Slack" => {}
            "Slack" | "Secrets Manager" => assert!(c.sns_delivered, "{c:?}"),
            "SNS" => assert!(c.slack_delivered, "{c:?}"),
            _ => assert!(c.slack_delivered && c.sns_delivered, "{c:?}"),
        }
    }
}
