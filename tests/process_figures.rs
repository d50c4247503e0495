//! Whole-process figures of vigil's three function binaries for BENCHMARKS.md ("Whole
//! process"): start-up (spawn to the first `next` poll), peak resident memory over typical
//! invocations, binary size, and how much of an invocation's wall time is the process's own
//! CPU when realistic AWS and Slack latencies are injected into the local stand-ins.
//!
//! An example, not a test: timings on a shared machine are figures to read, not pass/fail, and
//! a run takes minutes. What it does check is that every measured invocation did its job (the
//! alert reached Slack and SNS, the event was journaled, the click was answered), so no figure
//! comes from a run that failed early.
//!
//! `make bench-process` builds the debug and the release binaries and runs
//! `target/debug/examples/process_figures debug release`. Arguments: profile folders under the
//! target folder; `--runs N` start-ups per function and configuration (default 20); `--warm N`
//! warm invocations per function (default 10); `--startups-only`; `--env KEY=VALUE` added to
//! every function's environment (to try a setting, e.g. where the trust store is read from).
//!
//! CPU time per invocation is read from `/proc/PID/task/*/schedstat` (nanoseconds, per thread)
//! because `/proc/PID/stat`'s utime+stime count 10 ms clock ticks, coarser than a warm
//! invocation; the tick totals are printed next to it as a cross-check.

// Measurement scaffolding fails loudly on purpose: a broken setup must not print figures.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use serde_json::{Value, json};
use vigil_core::slack_request::{ButtonValue, sign};
use vigil_testkit::lambda::{FUNCTIONS, LambdaRuntime, target_dir};
use vigil_testkit::{ACCOUNT_ID, LocalAws, repo_root};

const REGION: &str = "us-east-1";
/// One table serves all three functions: journal, noise-control state, ledger, replay guard.
const TABLE: &str = "vigil-state";
/// `vigil_adapters::state::CORRELATION_INDEX` (slack-actions finds ledger rows through it).
const CORRELATION_INDEX: &str = "by-correlation";
const WEBHOOK_SECRET: &str = "vigil/slack/default";
const WEBHOOK_PATH: &str = "/services/T/B/X";
const SIGNING_SECRET_NAME: &str = "vigil/slack-signing";
/// Slack's documented example signing secret (the shape of a real one).
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DEFAULT_TOPIC: &str = "vigil-alerts";
const ALARM_EVENT: &str = "examples/demo/agent-tool-access-denied/event.json";
const ALARM_TRAIL: &str = "examples/demo/agent-tool-access-denied/trail";
const STOP_LOGGING: &str =
    "tests/fixtures/aws-events/cloudtrail-api-call-eventbridge/stratus-cloudtrail-stoplogging.json";

/// Latencies injected into the local AWS for the own-work split: (signing name, operation,
/// seconds). In-Region round trips to Secrets Manager, STS, SNS and SSM take tens of
/// milliseconds, DynamoDB single digits plus the trip; LookupEvents is the slow one (a search
/// over the account's event history, typically a few hundred milliseconds).
const AWS_LATENCY: [(&str, Option<&str>, f64); 8] = [
    ("cloudtrail", Some("LookupEvents"), 0.200),
    ("secretsmanager", None, 0.020),
    ("sts", None, 0.020),
    ("sns", None, 0.020),
    ("ssm", None, 0.020),
    ("dynamodb", None, 0.010),
    ("monitoring", None, 0.030),
    ("bedrock", None, 0.030),
];
/// Slack's webhook and Web API answer in about 100-300 ms from an AWS Region.
const SLACK_LATENCY: f64 = 0.150;
/// More injected answers than a run can use up (each request consumes one).
const INJECTED: u32 = 100_000;
/// Between measured invocations: the LookupEvents quota (2 a second) refills, and background
/// work of the last invocation has finished.
const PAUSE: Duration = Duration::from_millis(1_100);
/// After an invocation answered: lets the runtime post its answer and poll again before its
/// CPU time is read.
const SETTLE: Duration = Duration::from_millis(100);

struct Args {
    profiles: Vec<String>,
    runs: usize,
    warm: usize,
    startups_only: bool,
    envs: Vec<(String, String)>,
}

fn args() -> Args {
    let mut out = Args {
        profiles: Vec::new(),
        runs: 20,
        warm: 10,
        startups_only: false,
        envs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--runs" => out.runs = number("--runs"),
            "--warm" => out.warm = number("--warm"),
            "--startups-only" => out.startups_only = true,
            "--env" => {
                let kv = it.next().unwrap_or_default();
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("--env needs KEY=VALUE, not {kv:?}"));
                out.envs.push((k.to_owned(), v.to_owned()));
            }
            "-h" | "--help" => {
                println!(
                    "process_figures [--runs N] [--warm N] [--startups-only] [--env KEY=VALUE]... PROFILE... (e.g. debug release)"
                );
                std::process::exit(0);
            }
            p => out.profiles.push(p.to_owned()),
        }
    }
    if out.profiles.is_empty() {
        out.profiles.push("debug".to_owned());
    }
    out
}

// ------------------------------------------------------------------------------------------
// /proc
// ------------------------------------------------------------------------------------------

/// CPU time of every live thread of `pid`, in nanoseconds (first field of each
/// `task/TID/schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    let dir = format!("/proc/{pid}/task");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// utime + stime of `pid` (dead threads included), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Fields after the command name, which may itself hold spaces: state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields[n - 3].parse::<u64>().unwrap_or(0);
    field(14) + field(15)
}

/// A `Vm*` line of `/proc/PID/status`, in kB.
fn vm_kb(pid: u32, key: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {path}"))
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

// ------------------------------------------------------------------------------------------
// The local AWS
// ------------------------------------------------------------------------------------------

fn read_json(rel: &str) -> Value {
    let path = repo_root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

/// The local AWS with the secrets, topics and table the functions use, and the functions'
/// environments: `typical` as deployed (Slack, owners file, table), `minimal` for handle-alarm
/// with nothing that needs a cold-start call (no Slack secret, no table, the default route).
struct Setup {
    aws: LocalAws,
    typical: Vec<(String, String)>,
    minimal: Vec<(String, String)>,
}

async fn setup() -> Setup {
    let aws = LocalAws::start().await;
    let config = aws.sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let webhook = json!({ "webhook_url": format!("{}{WEBHOOK_PATH}", aws.slack_url()) });
    let signing = json!({ "signing_secret": SIGNING_SECRET });
    for (name, value) in [(WEBHOOK_SECRET, webhook), (SIGNING_SECRET_NAME, signing)] {
        secrets
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("secret {name}: {e:?}"));
    }
    let owners = repo_root().join("examples/owners.yaml");
    let sns = aws_sdk_sns::Client::new(&config);
    let mut default_topic = String::new();
    let names = std::iter::once(DEFAULT_TOPIC.to_owned()).chain(
        owners_topics(&owners)
            .into_iter()
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
        if name == DEFAULT_TOPIC {
            default_topic = arn;
        }
    }
    create_table(&aws).await;

    let owners = owners.canonicalize().expect("owners path");
    let base = [
        ("AWS_ENDPOINT_URL", aws.aws_url().to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("VIGIL_SNS_TOPIC_ARN", default_topic),
        ("RUST_LOG", "info".to_owned()),
    ];
    let typical = [
        (
            "VIGIL_SLACK_SECRET",
            format!("secretsmanager:{WEBHOOK_SECRET}"),
        ),
        (
            "VIGIL_SLACK_SIGNING_SECRET",
            format!("secretsmanager:{SIGNING_SECRET_NAME}"),
        ),
        ("VIGIL_SLACK_API_BASE", aws.slack_url().to_owned()),
        ("VIGIL_OWNERS_FILE", owners.display().to_string()),
        ("VIGIL_DEFAULT_TEAM", "platform".to_owned()),
        ("VIGIL_CONTENT_POLICY", "redacted".to_owned()),
        ("VIGIL_LOOKBACK_MINUTES", "60".to_owned()),
        ("VIGIL_LOOKUP_RPS", "2".to_owned()),
        ("VIGIL_TABLE_NAME", TABLE.to_owned()),
        ("VIGIL_JOURNAL_TTL_HOURS", "24".to_owned()),
        ("VIGIL_EVENT_MIN_SEVERITY", "high".to_owned()),
    ];
    let owned = |v: &[(&str, String)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let minimal = owned(&base);
    let mut all = owned(&base);
    all.extend(owned(&typical));
    Setup {
        aws,
        typical: all,
        minimal,
    }
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
                .index_name(CORRELATION_INDEX)
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

/// Empties the table, so each measured invocation is a first alert (no group to join, no
/// rate-limit slot taken, no used signature) and does the whole work.
async fn clear_table(aws: &LocalAws) {
    let ddb = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let items = ddb
        .scan()
        .table_name(TABLE)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    for item in items {
        let key: std::collections::HashMap<String, AttributeValue> = item
            .into_iter()
            .filter(|(k, _)| k == "pk" || k == "sk")
            .collect();
        ddb.delete_item()
            .table_name(TABLE)
            .set_key(Some(key))
            .send()
            .await
            .expect("delete item");
    }
}

async fn seed_trail(aws: &LocalAws, dir: &str) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("trail file")).expect("JSON");
        aws.seed_cloudtrail(doc).await;
    }
}

async fn last_seq(aws: &LocalAws) -> u64 {
    aws.requests("")
        .await
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// The local AWS requests after `since`, as the server saw them.
struct Calls {
    /// `service:Operation` → count.
    counts: BTreeMap<String, usize>,
    /// Server-side time, summed over the requests.
    ms: f64,
    /// Each request's server-side `(start, end)` on the monotonic clock, in ms.
    spans: Vec<(f64, f64)>,
}

async fn calls_since(aws: &LocalAws, since: u64) -> Calls {
    let mut calls = Calls {
        counts: BTreeMap::new(),
        ms: 0.0,
        spans: Vec::new(),
    };
    for r in aws.requests(&format!("since={since}")).await {
        let key = format!(
            "{}:{}",
            r["service"].as_str().unwrap_or("?"),
            r["operation"].as_str().unwrap_or("?")
        );
        *calls.counts.entry(key).or_insert(0) += 1;
        let ms = r["duration_ms"].as_f64().unwrap_or(0.0);
        calls.ms += ms;
        if let Some(start) = r["mono_ms"].as_f64() {
            calls.spans.push((start, start + ms));
        }
    }
    calls
}

/// How long at least one of `spans` was open: the time spent waiting on some outside call,
/// however many ran at once.
fn union_ms(mut spans: Vec<(f64, f64)>) -> f64 {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut open: Option<(f64, f64)> = None;
    for (start, end) in spans {
        open = match open {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + open.map_or(0.0, |(s, e)| e - s)
}

fn count_line(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, n)| {
            if *n == 1 {
                k.clone()
            } else {
                format!("{k}×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------------------
// Start-up
// ------------------------------------------------------------------------------------------

struct Startup {
    raw_ms: f64,
    /// Server-side time of the local AWS calls made meanwhile.
    aws_ms: f64,
    /// The process's CPU time when it first polled.
    cpu_ms: f64,
    calls: BTreeMap<String, usize>,
}

/// `runs` start-ups of each of `functions`, interleaved so that a busy moment of the machine
/// does not fall on one function's runs only.
async fn startups(
    s: &Setup,
    binaries: &Path,
    envs: &[(String, String)],
    functions: &[&str],
    runs: usize,
) -> BTreeMap<String, Vec<Startup>> {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Never invoked: a stopped process's pending poll may stay with watch.
    let rt = LambdaRuntime::start_with_binaries(&envs, binaries).await;
    let mut out: BTreeMap<String, Vec<Startup>> = BTreeMap::new();
    for _ in 0..runs {
        for f in functions {
            let since = last_seq(&s.aws).await;
            let raw = rt.start_function(f).await;
            let pid = rt.pid(f).await.expect("pid");
            let cpu = cpu_ns(pid);
            let calls = calls_since(&s.aws, since).await;
            rt.stop_function(f).await;
            out.entry((*f).to_owned()).or_default().push(Startup {
                raw_ms: raw.as_secs_f64() * 1000.0,
                // Cold-start calls are made one after another: their sum is the wait.
                aws_ms: calls.ms,
                cpu_ms: cpu as f64 / 1e6,
                calls: calls.counts,
            });
        }
    }
    rt.stop().await;
    out
}

// ------------------------------------------------------------------------------------------
// Invocations
// ------------------------------------------------------------------------------------------

struct Sample {
    cold: bool,
    wall_ms: f64,
    cpu_ms: f64,
    ticks: u64,
    /// While at least one AWS or Slack call was open (server-side).
    outside_ms: f64,
    /// `service:Operation` (and `slack`) → count.
    calls: BTreeMap<String, usize>,
}

struct Invocations {
    samples: Vec<Sample>,
    /// VmHWM after the first (cold) invocation, and after all of them.
    hwm_cold_kb: u64,
    hwm_all_kb: u64,
    rss_end_kb: u64,
}

async fn slack_requests_after(aws: &LocalAws, seen: usize) -> Vec<Value> {
    aws.slack_requests().await.into_iter().skip(seen).collect()
}

/// One typical piece of work for `function`, checked; returns its wall time.
async fn typical(rt: &LambdaRuntime, s: &Setup, function: &str, n: usize) -> Duration {
    let slack_seen = s.aws.slack_requests().await.len();
    let since = last_seq(&s.aws).await;
    let started = Instant::now();
    let wall = match function {
        "handle-alarm" => {
            let inv = rt.invoke(function, &alarm(n)).await;
            assert!(inv.is_ok(), "{function}: {:?} {}", inv.error_type, inv.body);
            inv.duration
        }
        "handle-event" => {
            let inv = rt.invoke(function, &stop_logging(n)).await;
            assert!(inv.is_ok(), "{function}: {:?} {}", inv.error_type, inv.body);
            inv.duration
        }
        "slack-actions" => {
            let response_url = format!("{}/actions/T0001/1/abc{n}", s.aws.slack_url());
            let body = click_body(&response_url, n);
            let ts = chrono::Utc::now().timestamp().to_string();
            let sig = sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes()).expect("sign");
            let headers = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-slack-request-timestamp", ts.as_str()),
                ("x-slack-signature", sig.as_str()),
            ];
            let (status, text) = rt.post_function_url(function, "/", &headers, &body).await;
            assert_eq!(status, 200, "{function}: {text}\n{}", rt.log_tail(40));
            started.elapsed()
        }
        other => panic!("no typical work for {other}"),
    };
    // Did its job: the alert reached Slack (and SNS), the event was journaled, the click's
    // message was updated.
    let slack = slack_requests_after(&s.aws, slack_seen).await;
    let calls = calls_since(&s.aws, since).await.counts;
    let posted = |path: &str, needle: &str| {
        slack.iter().any(|r| {
            r["path"].as_str().is_some_and(|p| p.starts_with(path))
                && r["body"].as_str().is_some_and(|b| b.contains(needle))
        })
    };
    match function {
        "handle-alarm" => {
            assert!(
                posted(WEBHOOK_PATH, "DetachRolePolicy"),
                "a Slack post naming the cause: {slack:#?}"
            );
            assert!(calls.contains_key("sns:Publish"), "published: {calls:?}");
        }
        "handle-event" => {
            assert!(
                posted(WEBHOOK_PATH, "StopLogging"),
                "a Slack post: {slack:#?}"
            );
            assert!(
                calls.contains_key("dynamodb:PutItem"),
                "journaled: {calls:?}"
            );
        }
        _ => assert!(posted("/actions/", ""), "the message updated: {slack:#?}"),
    }
    wall
}

/// The demo alarm, `n` minutes later: each `n` is a new alert whose CloudTrail window (rounded
/// to the minute) misses the lookup cache, and the seeded trail stays inside the look-back.
fn alarm(n: usize) -> Value {
    assert!(
        n < 40,
        "the demo alarm fires at 09:14; its trail is at 09:10"
    );
    let text = std::fs::read_to_string(repo_root().join(ALARM_EVENT)).expect("alarm event");
    let shifted = text.replace("T09:14:", &format!("T09:{:02}:", 14 + n));
    serde_json::from_str(&shifted).expect("alarm JSON")
}

/// The StopLogging call as EventBridge delivers it, made `2n` minutes ago: a new event, and a
/// CloudTrail window (rounded to the minute) the lookup cache has not seen, for each `n`. One
/// minute per `n` is not enough: the seconds between two invocations can put both windows in
/// the same minute.
fn stop_logging(n: usize) -> Value {
    let mut record = read_json(STOP_LOGGING);
    let back = chrono::Duration::minutes(2 * i64::try_from(n).unwrap_or(0));
    let at = chrono::Utc::now() - back;
    let now = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = format!("bench-stop-{n}-{}", chrono::Utc::now().timestamp_millis());
    record["tlsDetails"]["clientProvidedHostHeader"] =
        json!(format!("cloudtrail.{REGION}.amazonaws.com"));
    record["requestParameters"]["name"] = json!(format!(
        "arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/management-events"
    ));
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
    json!({
        "version": "0",
        "id": format!("{id}-eb"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudtrail",
        "account": ACCOUNT_ID,
        "time": now,
        "region": REGION,
        "resources": [],
        "detail": record,
    })
}

/// A signed Acknowledge click on an alert's message, as Slack posts it (form-encoded).
fn click_body(response_url: &str, n: usize) -> String {
    let value = ButtonValue {
        correlation_id: format!("evt-bench{n}"),
        name: "agent-tool-order-lookup-errors".into(),
        kind: Some("access_denied".into()),
        severity: Some("medium".into()),
        account: Some(ACCOUNT_ID.into()),
        region: Some(REGION.into()),
        step: None,
        step_title: None,
    }
    .encode();
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U024BE7LH", "username": "ada", "name": "ada", "team_id": "T0001"},
        "api_app_id": "A0001",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0001", "is_ephemeral": false},
        "trigger_id": "1.2.3",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C0001", "name": "agents-alerts"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "HIGH agent-tool-order-lookup-errors", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "agent-tool-order-lookup-errors"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Access denied* for the agent's tool"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("alert id `evt-bench{n}`")}]},
            {"type": "actions", "block_id": "vigil_actions", "elements": [
                {"type": "button", "action_id": "vigil_ack", "text": {"type": "plain_text", "text": "Acknowledge"}, "value": value}
            ]}
        ]},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": "vigil_ack", "block_id": "vigil_actions", "value": value, "action_ts": format!("1700000100.{n:06}")}]
    });
    format!("payload={}", form_encode(&payload.to_string()))
}

/// `application/x-www-form-urlencoded` value encoding (what Slack sends).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Latencies on: every AWS call of the services above waits its delay, and every Slack call.
async fn inject_latency(aws: &LocalAws) {
    let faults: Vec<Value> = AWS_LATENCY
        .iter()
        .map(|(service, operation, delay)| {
            let mut f =
                json!({"service": service, "mode": "timeout", "delay": delay, "count": INJECTED});
            if let Some(op) = operation {
                f["operation"] = json!(op);
            }
            f
        })
        .collect();
    aws.faults(Value::Array(faults)).await;
    let slack: Vec<Value> = (0..INJECTED / 10)
        .map(|_| json!({"delay": SLACK_LATENCY}))
        .collect();
    aws.slack_script(Value::Array(slack)).await;
}

/// A cold invocation and `warm` warm ones of each function, each on an empty table.
async fn invocations(s: &Setup, binaries: &Path, warm: usize) -> BTreeMap<String, Invocations> {
    let envs: Vec<(&str, &str)> = s
        .typical
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rt = LambdaRuntime::start_with_binaries(&envs, binaries).await;
    let mut out = BTreeMap::new();
    for function in FUNCTIONS {
        let mut samples = Vec::new();
        let mut hwm_cold_kb = 0;
        let mut pid = None;
        for n in 0..=warm {
            clear_table(&s.aws).await;
            tokio::time::sleep(PAUSE).await;
            let (cpu0, ticks0) = pid.map(|p| (cpu_ns(p), cpu_ticks(p))).unwrap_or((0, 0));
            let since = last_seq(&s.aws).await;
            let slack_seen = s.aws.slack_requests().await.len();
            let wall = typical(&rt, s, function, n).await;
            tokio::time::sleep(SETTLE).await;
            let p = rt.pid(function).await.expect("pid");
            assert!(pid.is_none_or(|old| old == p), "{function} was restarted");
            pid = Some(p);
            let (cpu1, ticks1) = (cpu_ns(p), cpu_ticks(p));
            if n == 0 {
                hwm_cold_kb = vm_kb(p, "VmHWM");
            }
            let Calls {
                mut counts,
                mut spans,
                ..
            } = calls_since(&s.aws, since).await;
            // The stand-in logs when a request arrived; it answers after the injected delay.
            let slack = slack_requests_after(&s.aws, slack_seen).await;
            spans.extend(
                slack
                    .iter()
                    .filter_map(|r| r["mono_ms"].as_f64())
                    .map(|start| (start, start + SLACK_LATENCY * 1000.0)),
            );
            if !slack.is_empty() {
                counts.insert("slack".to_owned(), slack.len());
            }
            samples.push(Sample {
                cold: n == 0,
                wall_ms: wall.as_secs_f64() * 1000.0,
                cpu_ms: (cpu1 - cpu0) as f64 / 1e6,
                ticks: ticks1 - ticks0,
                outside_ms: union_ms(spans),
                calls: counts,
            });
        }
        let p = pid.expect("pid");
        out.insert(
            function.to_owned(),
            Invocations {
                samples,
                hwm_cold_kb,
                hwm_all_kb: vm_kb(p, "VmHWM"),
                rss_end_kb: vm_kb(p, "VmRSS"),
            },
        );
    }
    rt.stop().await;
    out
}

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn print_startups(title: &str, runs: &BTreeMap<String, Vec<Startup>>) {
    println!("\n{title}\n");
    println!(
        "| function | runs | raw median ms | raw max ms | local AWS (server-side) median ms | excluding network median ms | excluding network max ms | CPU at first poll median ms | cold-start calls |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (f, v) in runs {
        let raw: Vec<f64> = v.iter().map(|s| s.raw_ms).collect();
        let aws: Vec<f64> = v.iter().map(|s| s.aws_ms).collect();
        let net: Vec<f64> = v.iter().map(|s| s.raw_ms - s.aws_ms).collect();
        let cpu: Vec<f64> = v.iter().map(|s| s.cpu_ms).collect();
        let mut calls: BTreeMap<String, usize> = BTreeMap::new();
        for s in v {
            for (k, n) in &s.calls {
                *calls.entry(k.clone()).or_default() += n;
            }
        }
        for n in calls.values_mut() {
            *n /= v.len().max(1);
        }
        println!(
            "| {f} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            v.len(),
            median(&raw),
            max(&raw),
            median(&aws),
            median(&net),
            max(&net),
            median(&cpu),
            count_line(&calls)
        );
    }
}

fn print_invocations(inv: &BTreeMap<String, Invocations>, ticks_per_s: u64) {
    println!("\nPeak resident memory (VmHWM), typical invocations\n");
    println!(
        "| function | VmHWM after the cold invocation MB | VmHWM after all MB | VmRSS at the end MB |"
    );
    println!("| --- | ---: | ---: | ---: |");
    for (f, i) in inv {
        println!(
            "| {f} | {} | {} | {} |",
            mb(i.hwm_cold_kb),
            mb(i.hwm_all_kb),
            mb(i.rss_end_kb)
        );
    }
    println!(
        "\nOwn CPU versus wall time per invocation, latencies injected (schedstat; ticks at {ticks_per_s}/s as a cross-check)\n"
    );
    println!(
        "| function | invocation | n | wall median ms | own CPU median ms | own CPU max ms | own share median | waiting on AWS and Slack median ms | other median ms | own CPU by ticks ms (mean) | calls per invocation |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (f, i) in inv {
        for cold in [true, false] {
            let v: Vec<&Sample> = i.samples.iter().filter(|s| s.cold == cold).collect();
            let Some(last) = v.last() else {
                continue;
            };
            let wall: Vec<f64> = v.iter().map(|s| s.wall_ms).collect();
            let cpu: Vec<f64> = v.iter().map(|s| s.cpu_ms).collect();
            let share: Vec<f64> = v.iter().map(|s| 100.0 * s.cpu_ms / s.wall_ms).collect();
            let outside: Vec<f64> = v.iter().map(|s| s.outside_ms).collect();
            let other: Vec<f64> = v
                .iter()
                .map(|s| s.wall_ms - s.cpu_ms - s.outside_ms)
                .collect();
            let ticks: u64 = v.iter().map(|s| s.ticks).sum();
            let tick_ms = ticks as f64 * 1000.0 / ticks_per_s as f64 / v.len() as f64;
            println!(
                "| {f} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} % | {:.1} | {:.1} | {:.1} | {} |",
                if cold {
                    "cold (start-up included)"
                } else {
                    "warm"
                },
                v.len(),
                median(&wall),
                median(&cpu),
                max(&cpu),
                median(&share),
                median(&outside),
                median(&other),
                tick_ms,
                count_line(&last.calls)
            );
        }
    }
    println!();
    for (f, i) in inv {
        for s in &i.samples {
            println!(
                "invocation\tfunction={f}\tcold={}\twall_ms={:.1}\tcpu_ms={:.1}\toutside_ms={:.1}\tticks={}\tcalls={}",
                s.cold,
                s.wall_ms,
                s.cpu_ms,
                s.outside_ms,
                s.ticks,
                s.calls.values().sum::<usize>()
            );
        }
    }
}

fn print_sizes(binaries: &Path) {
    println!("\nBinary sizes ({})\n", binaries.display());
    println!("| function | bytes | MB |");
    println!("| --- | ---: | ---: |");
    for f in FUNCTIONS {
        let len = std::fs::metadata(binaries.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("| {f} | {len} | {:.2} |", len as f64 / 1024.0 / 1024.0);
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let ticks_per_s = clock_ticks_per_second();
    let mut s = setup().await;
    for kv in &args.envs {
        println!("extra environment: {}={}", kv.0, kv.1);
        s.typical.push(kv.clone());
        s.minimal.push(kv.clone());
    }
    seed_trail(&s.aws, ALARM_TRAIL).await;
    println!(
        "process_figures: {} start-ups per function and configuration, {} warm invocations per function",
        args.runs, args.warm
    );
    println!(
        "latencies injected for the invocations: {}; Slack {:.0} ms",
        AWS_LATENCY
            .iter()
            .map(|(s, o, d)| format!(
                "{}{} {:.0} ms",
                s,
                o.map(|o| format!(":{o}")).unwrap_or_default(),
                d * 1000.0
            ))
            .collect::<Vec<_>>()
            .join(", "),
        SLACK_LATENCY * 1000.0
    );
    // Start-ups first, on the local AWS as it is: the latencies injected afterwards stay on.
    for profile in &args.profiles {
        let binaries = target_dir().join(profile);
        println!("\n## {profile} binaries: start-up");
        let typical = startups(&s, &binaries, &s.typical, &FUNCTIONS, args.runs).await;
        print_startups(
            "Start-up, typical configuration (Slack secret, owners file, table), local AWS without injected latency",
            &typical,
        );
        let minimal = startups(&s, &binaries, &s.minimal, &["handle-alarm"], args.runs).await;
        print_startups(
            "Start-up, minimal configuration (no Slack secret, no table, default route)",
            &minimal,
        );
    }
    if args.startups_only {
        s.aws.stop().await;
        return;
    }
    inject_latency(&s.aws).await;
    for profile in &args.profiles {
        let binaries = target_dir().join(profile);
        println!("\n## {profile} binaries: typical invocations");
        let inv = invocations(&s, &binaries, args.warm).await;
        print_invocations(&inv, ticks_per_s);
        print_sizes(&binaries);
    }
    s.aws.stop().await;
}
