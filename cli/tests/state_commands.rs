//! `vigil silence`, `vigil ledger` and `vigil redrive` as a user runs them, against the local
//! AWS (DynamoDB, SQS) and, for `redrive --send`, the real `handle-alarm` binary under
//! `cargo lambda watch` posting to the Slack stand-in.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_adapters::state::DynamoState;
use vigil_core::model::{Kind, Severity};
use vigil_core::noise::{ChannelResult, LedgerEntry, Outcome};
use vigil_core::ports::StateStore as _;
use vigil_testkit::LocalAws;
use vigil_testkit::lambda::LambdaRuntime;

const REGION: &str = "us-east-1";
const TABLE: &str = "vigil-state";
const LEDGER_TTL: Duration = Duration::from_secs(30 * 24 * 3_600);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_json(rel: &str) -> Value {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the built `vigil` with the AWS environment pointed at the local AWS, nothing inherited
/// that could point it elsewhere, and `extra` on top.
async fn vigil(aws: &LocalAws, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(root())
        .args(args)
        .env_remove("VIGIL_TABLE_NAME")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_LAMBDA")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_ENDPOINT_URL", aws.aws_url())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().await.expect("vigil runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The noise-control table as the SAM template makes it: keys `pk`/`sk`, the `by-correlation`
/// index on `cid`/`sk`, TTL on `expires_at` (a local copy of the adapters' test helper).
async fn create_table(aws: &LocalAws) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(TABLE)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("cid"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-correlation")
                .key_schema(key("cid", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("table created");
    client
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TTL enabled");
    client
}

// ---------------------------------------------------------------------------------------------
// silence
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn silence_add_list_expire_round_trip_and_refusals() {
    let aws = LocalAws::start().await;
    create_table(&aws).await;
    let table = [("VIGIL_TABLE_NAME", TABLE)];

    // Refusals: exit 2, the reason names what was wrong, nothing stored.
    let no_match = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--duration",
            "2h",
            "--author",
            "ana",
            "--reason",
            "r",
        ],
        &table,
    )
    .await;
    assert_exit(&no_match, 2);
    assert!(
        stderr(&no_match).contains("--match"),
        "{}",
        stderr(&no_match)
    );

    let bad_matcher = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "colour=blue",
            "--duration",
            "2h",
            "--author",
            "ana",
            "--reason",
            "r",
        ],
        &table,
    )
    .await;
    assert_exit(&bad_matcher, 2);
    assert!(
        stderr(&bad_matcher).contains("colour=blue"),
        "{}",
        stderr(&bad_matcher)
    );

    let backwards = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "name=x",
            "--starts",
            "2099-01-02T10:00:00Z",
            "--until",
            "2099-01-02T09:00:00Z",
            "--author",
            "ana",
            "--reason",
            "r",
        ],
        &table,
    )
    .await;
    assert_exit(&backwards, 2);
    assert!(
        stderr(&backwards).contains("before it starts"),
        "{}",
        stderr(&backwards)
    );

    let too_long = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "name=x",
            "--duration",
            "31d",
            "--author",
            "ana",
            "--reason",
            "r",
        ],
        &table,
    )
    .await;
    assert_exit(&too_long, 2);
    assert!(
        stderr(&too_long).contains("30 days"),
        "{}",
        stderr(&too_long)
    );

    let no_reason = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "name=x",
            "--duration",
            "1h",
            "--author",
            "ana",
            "--reason",
            "  ",
        ],
        &table,
    )
    .await;
    assert_exit(&no_reason, 2);
    assert!(
        stderr(&no_reason).contains("--reason"),
        "{}",
        stderr(&no_reason)
    );

    let no_table = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "name=x",
            "--duration",
            "1h",
            "--author",
            "ana",
            "--reason",
            "r",
            "--allow-critical",
        ],
        &[],
    )
    .await;
    assert_exit(&no_table, 2);
    let err = stderr(&no_table);
    assert!(
        err.contains("--table") && err.contains("VIGIL_TABLE_NAME"),
        "{err}"
    );

    // A silence that could hide a critical or audit_tampering alert must say so.
    for matchers in [
        &["--match", "name=x"][..],
        &["--match", "name=x", "--match", "severity!=critical"][..],
        &["--match", "kind=throttle_spike"][..],
    ] {
        let mut args = vec!["silence", "add"];
        args.extend_from_slice(matchers);
        args.extend_from_slice(&["--duration", "1h", "--author", "ana", "--reason", "r"]);
        let unprotected = vigil(&aws, &args, &table).await;
        assert_exit(&unprotected, 2);
        let err = stderr(&unprotected);
        assert!(
            err.contains("--allow-critical") && err.contains("audit_tampering"),
            "{matchers:?}: {err}"
        );
    }

    let listed = vigil(
        &aws,
        &["silence", "list", "--all", "--format", "json"],
        &table,
    )
    .await;
    assert_exit(&listed, 0);
    assert_eq!(json_out(&listed), json!([]), "a refusal stores nothing");

    // An active silence (JSON out), then a future one (text out, table from --table).
    let active = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--match",
            "name=agent-tool-*",
            "--match",
            "severity!=critical",
            "--match",
            "kind!=audit_tampering",
            "--duration",
            "2h",
            "--author",
            "ana",
            "--reason",
            "planned IAM change",
            "--format",
            "json",
        ],
        &table,
    )
    .await;
    assert_exit(&active, 0);
    let active = json_out(&active);
    let active_id = active["id"].as_str().expect("id").to_owned();
    assert!(
        active_id.len() == 16
            && active_id.starts_with("sil-")
            && active_id[4..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{active_id}"
    );
    assert_eq!(active["author"], "ana");
    assert_eq!(active["reason"], "planned IAM change");
    assert_eq!(active["matchers"].as_array().map(Vec::len), Some(3));
    let starts: DateTime<Utc> = active["starts_at"].as_str().unwrap().parse().unwrap();
    let ends: DateTime<Utc> = active["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends - starts, chrono::Duration::hours(2));

    let tomorrow = Utc::now() + chrono::Duration::days(1);
    let future = vigil(
        &aws,
        &[
            "silence",
            "add",
            "--table",
            TABLE,
            "--match",
            "kind=throttle_spike",
            "--starts",
            &rfc3339(tomorrow),
            "--duration",
            "90m",
            "--author",
            "bo",
            "--reason",
            "capacity migration",
            "--allow-critical",
        ],
        &[],
    )
    .await;
    assert_exit(&future, 0);
    let text = stdout(&future);
    assert!(text.starts_with("sil-"), "{text}");
    let future_id = text.split_whitespace().next().unwrap().to_owned();
    for want in [
        "future",
        "kind=throttle_spike",
        "1h 30m",
        "bo",
        "capacity migration",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }

    // Both are listed by default (active and future), in text and JSON.
    let listed = vigil(&aws, &["silence", "list"], &table).await;
    assert_exit(&listed, 0);
    let text = stdout(&listed);
    assert!(
        text.contains(&active_id) && text.contains(&future_id),
        "{text}"
    );
    assert!(text.contains("name=agent-tool-*"), "{text}");
    assert!(text.contains("severity!=critical"), "{text}");
    let listed = vigil(&aws, &["silence", "list", "--format", "json"], &table).await;
    assert_exit(&listed, 0);
    assert_eq!(json_out(&listed).as_array().map(Vec::len), Some(2));

    // Expire the active one: it leaves the default list, stays in --all.
    let bad_id = vigil(
        &aws,
        &["silence", "expire", "not-an-id", "--author", "bo"],
        &table,
    )
    .await;
    assert_exit(&bad_id, 2);
    assert!(stderr(&bad_id).contains("not-an-id"), "{}", stderr(&bad_id));

    let unknown = vigil(
        &aws,
        &["silence", "expire", "sil-000000000000", "--author", "bo"],
        &table,
    )
    .await;
    assert_exit(&unknown, 2);
    assert!(
        stderr(&unknown).contains("no silence sil-000000000000"),
        "{}",
        stderr(&unknown)
    );

    let expired = vigil(
        &aws,
        &[
            "silence", "expire", &active_id, "--author", "bo", "--format", "json",
        ],
        &table,
    )
    .await;
    assert_exit(&expired, 0);
    let expired = json_out(&expired);
    assert_eq!(expired["id"], active_id.as_str());
    assert_eq!(expired["expired_by"], "bo");
    let ended: DateTime<Utc> = expired["ends_at"].as_str().unwrap().parse().unwrap();
    assert!(ended <= Utc::now(), "ends now: {ended}");

    let listed = vigil(&aws, &["silence", "list", "--format", "json"], &table).await;
    assert_exit(&listed, 0);
    let ids: Vec<String> = json_out(&listed)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![future_id.clone()]);

    let all = vigil(&aws, &["silence", "list", "--all"], &table).await;
    assert_exit(&all, 0);
    let text = stdout(&all);
    let line = text
        .lines()
        .find(|l| l.starts_with(&active_id))
        .unwrap_or_else(|| panic!("{active_id} in --all:\n{text}"));
    assert!(line.contains("expired by bo"), "{line}");
    assert!(text.contains(&future_id), "{text}");
}

// ---------------------------------------------------------------------------------------------
// ledger
// ---------------------------------------------------------------------------------------------

fn entry(
    at: DateTime<Utc>,
    cid: &str,
    function: &str,
    outcome: Outcome,
    reason: Option<&str>,
    channels: &[(&str, bool)],
) -> LedgerEntry {
    LedgerEntry {
        at,
        correlation_id: cid.to_owned(),
        function: function.to_owned(),
        outcome,
        reason: reason.map(str::to_owned),
        kind: Some(Kind::ThrottleSpike),
        severity: Some(Severity::High),
        name: "bedrock-claude-sonnet-throttles".to_owned(),
        group_key: None,
        channels: channels
            .iter()
            .map(|(c, ok)| ChannelResult {
                channel: (*c).to_owned(),
                ok: *ok,
                detail: None,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_by_correlation_id_and_since_in_both_formats() {
    let aws = LocalAws::start().await;
    let client = create_table(&aws).await;
    let state = DynamoState::new(client, TABLE);
    let now = Utc::now();
    let cid = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:bedrock-claude-sonnet-throttles@2026-11-20T09:31:00+00:00";
    let other = "evt-0b7c";
    let entries = [
        entry(
            now - chrono::Duration::hours(3),
            other,
            "handle-event",
            Outcome::Suppressed,
            Some("silenced by sil-0123456789ab (planned change)"),
            &[],
        ),
        entry(
            now - chrono::Duration::minutes(10),
            cid,
            "handle-alarm",
            Outcome::Sent,
            None,
            &[("slack:#ai-platform", true), ("sns:vigil-alerts", false)],
        ),
        entry(
            now - chrono::Duration::minutes(4),
            cid,
            "handle-alarm",
            Outcome::Folded,
            Some("fold: repeat"),
            &[],
        ),
    ];
    for e in &entries {
        state.record(e, LEDGER_TTL).await.expect("recorded");
    }
    let table = [("VIGIL_TABLE_NAME", TABLE)];

    // One alert's entries, JSON: exactly the two, oldest first, as LedgerEntry.
    let out = vigil(
        &aws,
        &["ledger", "--correlation-id", cid, "--format", "json"],
        &table,
    )
    .await;
    assert_exit(&out, 0);
    let got: Vec<LedgerEntry> = serde_json::from_slice(&out.stdout).expect("LedgerEntry array");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().all(|e| e.correlation_id == cid));
    assert_eq!(got[0].outcome, Outcome::Sent);
    assert_eq!(got[1].outcome, Outcome::Folded);

    // Text: one line per entry with time, outcome, function, kind/severity, name, id, reason,
    // channels.
    let out = vigil(&aws, &["ledger", "--correlation-id", cid], &table).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for want in [
        "sent",
        "handle-alarm",
        "throttle_spike/high",
        "bedrock-claude-sonnet-throttles",
        cid,
        "slack:#ai-platform:ok",
        "sns:vigil-alerts:failed",
    ] {
        assert!(lines[0].contains(want), "{want} in {}", lines[0]);
    }
    assert!(
        lines[1].contains("folded") && lines[1].contains("fold: repeat"),
        "{}",
        lines[1]
    );

    // Since 30 minutes ago (relative): the two recent entries, not the 3-hour-old one.
    let out = vigil(
        &aws,
        &[
            "ledger", "--since", "30m", "--format", "json", "--table", TABLE,
        ],
        &[],
    )
    .await;
    assert_exit(&out, 0);
    let got: Vec<LedgerEntry> = serde_json::from_slice(&out.stdout).expect("LedgerEntry array");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().all(|e| e.correlation_id == cid));

    // Since an absolute time, text: all three; --limit caps it.
    let since = rfc3339(now - chrono::Duration::hours(4));
    let out = vigil(&aws, &["ledger", "--since", &since], &table).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("suppressed") && text.contains("silenced by sil-0123456789ab"));
    let out = vigil(
        &aws,
        &[
            "ledger", "--since", &since, "--limit", "1", "--format", "json",
        ],
        &table,
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(json_out(&out).as_array().map(Vec::len), Some(1));

    // Nothing found: exit 0, an empty array, or a word on stderr in text mode.
    let out = vigil(
        &aws,
        &["ledger", "--correlation-id", "no-such-alert"],
        &table,
    )
    .await;
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("no ledger entries"),
        "{}",
        stderr(&out)
    );
    let out = vigil(
        &aws,
        &[
            "ledger",
            "--correlation-id",
            "no-such-alert",
            "--format",
            "json",
        ],
        &table,
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(json_out(&out), json!([]));

    // Neither --correlation-id nor --since: refused.
    let out = vigil(&aws, &["ledger"], &table).await;
    assert_exit(&out, 2);
    let out = vigil(&aws, &["ledger", "--since", "yesterday"], &table).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("yesterday"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// redrive
// ---------------------------------------------------------------------------------------------

const HANDLE_ALARM_ARN: &str = "arn:aws:lambda:us-east-1:111122223333:function:handle-alarm";
const DEMO_EVENT: &str = "examples/demo/agent-tool-access-denied/event.json";
const EB_EVENT: &str = "tests/fixtures/aws-events/eventbridge-alarm-state-change/awsdocs-single-metric-ok-to-alarm.json";
const GARBAGE: &str = "this is not an event {";

/// A queue holding (a) an on-failure destination record, (b) an EventBridge target dead
/// letter, (c) garbage. Returns the queue URL and the three message ids.
async fn dead_letter_queue(aws: &LocalAws) -> (aws_sdk_sqs::Client, String, [String; 3]) {
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk_config().await);
    let url = sqs
        .create_queue()
        .queue_name("vigil-dead-letters")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let record = json!({
        "version": "1.0",
        "timestamp": "2026-11-20T09:15:10.442Z",
        "requestContext": {
            "requestId": "6b1f3c1e-0c52-4b0e-9a1c-2f0e9c8d7a11",
            "functionArn": format!("{HANDLE_ALARM_ARN}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": read_json(DEMO_EVENT),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "responsePayload": {
            "errorType": "DeliveryFailed",
            "errorMessage": "no channel delivered alert(s) x: slack: HTTP 503"
        }
    });
    let string_attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    let a = sqs
        .send_message()
        .queue_url(&url)
        .message_body(record.to_string())
        .send()
        .await
        .expect("record sent");
    let b = sqs
        .send_message()
        .queue_url(&url)
        .message_body(read_json(EB_EVENT).to_string())
        .message_attributes("ERROR_CODE", string_attr("SDK_CLIENT_ERROR"))
        .message_attributes(
            "ERROR_MESSAGE",
            string_attr("Unable to invoke Lambda function: Rate exceeded"),
        )
        .message_attributes(
            "RULE_ARN",
            string_attr("arn:aws:events:us-east-1:111122223333:rule/vigil-alarm-state-change"),
        )
        .message_attributes("TARGET_ARN", string_attr(HANDLE_ALARM_ARN))
        .message_attributes("RETRY_ATTEMPTS", string_attr("185"))
        .send()
        .await
        .expect("EventBridge dead letter sent");
    let c = sqs
        .send_message()
        .queue_url(&url)
        .message_body(GARBAGE)
        .send()
        .await
        .expect("garbage sent");
    let ids = [a, b, c].map(|m| m.message_id.expect("message id"));
    (sqs, url, ids)
}

/// Visible messages in the queue.
async fn visible(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attrs
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|n| n.parse().ok())
        .expect("ApproximateNumberOfMessages")
}

/// The bodies of the messages left (received, then made visible again).
async fn bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> HashMap<String, String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    out.messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.message_id.unwrap(), m.body.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_dry_run_shows_every_message_and_changes_nothing() {
    let aws = LocalAws::start().await;
    create_table(&aws).await;
    let (sqs, url, [record_id, eb_id, garbage_id]) = dead_letter_queue(&aws).await;
    assert_eq!(visible(&sqs, &url).await, 3);

    let out = vigil(&aws, &["redrive", "--queue-url", &url], &[]).await;
    // The garbage is not understood: exit 1.
    assert_exit(&out, 1);
    let text = stdout(&out);
    for want in [
        // (a): the function, the condition, the recorded error, what it would send.
        record_id.as_str(),
        "Lambda on-failure destination",
        "function:handle-alarm:$LATEST (RetriesExhausted, 3 attempts)",
        "DeliveryFailed: no channel delivered alert(s) x: slack: HTTP 503",
        "agent-tool-order-lookup-errors",
        "error_spike/",
        // (b): the rule and the target, the recorded error.
        eb_id.as_str(),
        "EventBridge target dead letter",
        "rule/vigil-alarm-state-change → target arn:aws:lambda:us-east-1:111122223333:function:handle-alarm",
        "SDK_CLIENT_ERROR: Unable to invoke Lambda function: Rate exceeded",
        "ServerCpuTooHigh",
        "would re-invoke arn:aws:lambda:us-east-1:111122223333:function:handle-alarm",
        "routes: default → unrouted #alerts",
        // (c): named, with the reason.
        garbage_id.as_str(),
        "not understood",
        "not JSON",
        "3 read: 2 understood, 1 not understood",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    // A dry run changes nothing: every message is visible again at once.
    assert_eq!(visible(&sqs, &url).await, 3);

    // JSON, with --owners for real routes and --table for ledger rows.
    let out = vigil(
        &aws,
        &[
            "redrive",
            "--queue-url",
            &url,
            "--format",
            "json",
            "--owners",
            "examples/owners.yaml",
            "--table",
            TABLE,
        ],
        &[],
    )
    .await;
    assert_exit(&out, 1);
    let doc = json_out(&out);
    assert_eq!(doc["mode"], "dry_run");
    assert_eq!(
        doc["summary"],
        json!({"read": 3, "understood": 2, "not_understood": 1, "redriven": 0, "failed": 0, "left_in_queue": 3, "ledger_failures": 0})
    );
    let messages = doc["messages"].as_array().expect("messages");
    let by_id = |id: &str| {
        messages
            .iter()
            .find(|m| m["message_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {doc:#}"))
    };
    let record = by_id(&record_id);
    assert_eq!(record["source"]["shape"], "lambda_on_failure");
    let alert_id = record["would_send"][0]["alert_id"]
        .as_str()
        .expect("alert id")
        .to_owned();
    assert_eq!(record["correlation_id"], alert_id.as_str());
    assert!(
        record["would_send"][0]["routes"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["team"] != "unrouted")),
        "{record:#}"
    );
    assert_eq!(record["ledger"], "recorded dead_lettered");
    let eb = by_id(&eb_id);
    assert_eq!(eb["source"]["shape"], "eventbridge_target");
    assert_eq!(eb["function"], HANDLE_ALARM_ARN);
    let garbage = by_id(&garbage_id);
    assert_eq!(garbage["understood"], false);
    assert!(
        garbage["not_understood"]
            .as_str()
            .is_some_and(|r| r.contains("not JSON")),
        "{garbage:#}"
    );
    assert_eq!(garbage["correlation_id"], garbage_id.as_str());
    assert_eq!(visible(&sqs, &url).await, 3);

    // The ledger now says the alert was dead-lettered, and by whom.
    let out = vigil(
        &aws,
        &[
            "ledger",
            "--correlation-id",
            &alert_id,
            "--format",
            "json",
            "--table",
            TABLE,
        ],
        &[],
    )
    .await;
    assert_exit(&out, 0);
    let got: Vec<LedgerEntry> = serde_json::from_slice(&out.stdout).expect("entries");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].outcome, Outcome::DeadLettered);
    assert_eq!(got[0].function, "vigil");
    assert!(
        got[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("DeliveryFailed")),
        "{got:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_send_reinvokes_the_function_and_deletes_what_succeeded() {
    // Fail fast, before starting anything, if the function binary is missing or stale.
    vigil_testkit::lambda::assert_functions_built();
    let aws = LocalAws::start().await;
    create_table(&aws).await;
    let (sqs, url, [record_id, eb_id, garbage_id]) = dead_letter_queue(&aws).await;

    // What handle-alarm needs to post to Slack: the webhook in Secrets Manager. No table: the
    // function's own noise control stays out of this test.
    let config = aws.sdk_config().await;
    let clients = vigil_adapters::config::AwsClients::from_sdk_config(&config);
    clients
        .secrets
        .create_secret()
        .name("vigil/slack/default")
        .secret_string(
            json!({ "webhook_url": format!("{}/services/T/B/X", aws.slack_url()) }).to_string(),
        )
        .send()
        .await
        .expect("Slack secret");
    let lambda = LambdaRuntime::start(&[
        ("AWS_ENDPOINT_URL", aws.aws_url()),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("VIGIL_SLACK_SECRET", "secretsmanager:vigil/slack/default"),
        ("VIGIL_SLACK_API_BASE", aws.slack_url()),
        ("VIGIL_DEFAULT_TEAM", "platform"),
        ("VIGIL_ENRICH_BUDGET_MS", "3000"),
        ("RUST_LOG", "info"),
    ])
    .await;
    // The harness starts the function process on its first invocation; later invocations
    // (the CLI's, through watch's Invoke API) reach the same process. An event intake refuses
    // starts it without sending anything.
    let warm = lambda.invoke("handle-alarm", &json!({"warm": "up"})).await;
    assert_eq!(
        warm.error_type.as_deref(),
        Some("Refused"),
        "{warm:?}\n{}",
        lambda.log_tail(40)
    );
    assert!(lambda.is_running("handle-alarm").await);

    let out = vigil(
        &aws,
        &[
            "redrive",
            "--queue-url",
            &url,
            "--send",
            "--function",
            "handle-alarm",
            "--table",
            TABLE,
            "--format",
            "json",
        ],
        &[("AWS_ENDPOINT_URL_LAMBDA", lambda.url())],
    )
    .await;
    // The garbage is still not understood: exit 1, but both understood messages went out.
    assert_exit(&out, 1);
    let doc = json_out(&out);
    assert_eq!(doc["mode"], "send");
    assert_eq!(
        doc["summary"]["redriven"],
        2,
        "{doc:#}\n{}",
        lambda.log_tail(60)
    );
    assert_eq!(doc["summary"]["failed"], 0, "{doc:#}");
    assert_eq!(doc["summary"]["not_understood"], 1, "{doc:#}");
    for id in [&record_id, &eb_id] {
        let m = doc["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| &m["message_id"] == id)
            .unwrap();
        assert_eq!(m["resend"]["ok"], true, "{m:#}");
        assert_eq!(m["resend"]["function"], "handle-alarm");
        assert_eq!(m["deleted"], true, "{m:#}");
        assert_eq!(m["ledger"], "recorded redriven", "{m:#}");
    }

    // The Slack stand-in received both alerts.
    let posts: Vec<String> = aws
        .slack_requests()
        .await
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/services/"))
        })
        .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        posts
            .iter()
            .any(|b| b.contains("agent-tool-order-lookup-errors")),
        "{posts:#?}"
    );
    assert!(
        posts.iter().any(|b| b.contains("ServerCpuTooHigh")),
        "{posts:#?}"
    );

    // Only the garbage is left.
    let left = bodies(&sqs, &url).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left.get(&garbage_id).map(String::as_str), Some(GARBAGE));

    // The ledger says which were redriven.
    let alert_id = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == record_id.as_str())
        .unwrap()["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = vigil(
        &aws,
        &["ledger", "--correlation-id", &alert_id, "--table", TABLE],
        &[],
    )
    .await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("redriven") && text.contains("lambda:handle-alarm:ok"),
        "{text}"
    );
    lambda.stop().await;
}
