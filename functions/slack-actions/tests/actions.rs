//! The slack-actions handler against the local AWS (DynamoDB and Secrets Manager in moto) and
//! the Slack stand-in, wired as the Lambda binary wires it (`build` from a `Config`): each
//! button end to end, then the attacks: unsigned, expired, from the future, tampered, signed
//! with the wrong secret, replayed. Every refused request must answer 401 and leave the table
//! exactly as it was.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::http::HeaderValue;
use base64::Engine;
use chrono::{DateTime, Utc};
use handle_alarm::config::{SLACK_API_BASE, TABLE_NAME};
use serde_json::Value;
use slack_actions::config::SIGNING_SECRET as SECRET_VAR;
use slack_actions::{Answer, Config, Deps, build, handle};
use support::*;
use vigil_adapters::state::DynamoState;
use vigil_core::noise::{MatchField, MatchOp, Outcome};
use vigil_testkit::LocalAws;

struct Stack {
    aws: LocalAws,
    deps: Deps,
    state: DynamoState,
}

async fn stack() -> Stack {
    stack_with(&[]).await
}

/// The stack with more settings (`VIGIL_SLACK_TEAM_ID`, ...).
async fn stack_with(more: &[(&'static str, &str)]) -> Stack {
    let aws = LocalAws::start().await;
    prepare(&aws).await;
    let sdk = aws.sdk_config().await;
    let deps = deps_with(&aws, more).await;
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    Stack { aws, deps, state }
}

async fn deps_with(aws: &LocalAws, more: &[(&'static str, &str)]) -> Deps {
    let sdk = aws.sdk_config().await;
    let slack = aws.slack_url().to_owned();
    let config = Config::from_lookup(|name| {
        if let Some((_, v)) = more.iter().find(|(k, _)| *k == name) {
            return Ok(Some((*v).to_owned()));
        }
        Ok(match name {
            n if n == SECRET_VAR => Some(format!("secretsmanager:{SECRET_NAME}")),
            n if n == TABLE_NAME => Some(TABLE.to_owned()),
            n if n == SLACK_API_BASE => Some(format!("{slack}/api")),
            _ => None,
        })
    })
    .expect("config");
    build(&config, &sdk).await.expect("deps")
}

/// A Function URL request as Lambda hands it over: lower-case headers, the form body as text.
fn request(body: &str, ts: Option<&str>, sig: Option<&str>) -> LambdaFunctionUrlRequest {
    let mut r = LambdaFunctionUrlRequest::default();
    r.headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(ts) = ts {
        r.headers.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_str(ts).unwrap(),
        );
    }
    if let Some(sig) = sig {
        r.headers
            .insert("x-slack-signature", HeaderValue::from_str(sig).unwrap());
    }
    r.body = Some(body.to_owned());
    r.is_base64_encoded = false;
    r
}

fn signed_request(body: &str, at: i64) -> LambdaFunctionUrlRequest {
    let (ts, sig) = signed(SIGNING_SECRET, at, body);
    request(body, Some(&ts), Some(&sig))
}

fn response_url(aws: &LocalAws) -> String {
    format!("{}/actions/T0001/1700000100/abcDEF", aws.slack_url())
}

async fn ledger(s: &Stack) -> Vec<vigil_core::noise::LedgerEntry> {
    s.state
        .ledger_by_correlation(CORRELATION)
        .await
        .expect("ledger")
}

/// The stand-in's requests to response_urls.
async fn responses(aws: &LocalAws) -> Vec<Value> {
    aws.slack_requests()
        .await
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/actions/"))
        })
        .collect()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[tokio::test]
async fn acknowledge_writes_the_ledger_and_updates_the_message() {
    let s = stack().await;
    let t = now();
    let body = click_body("vigil_ack", &button_value(None), &response_url(&s.aws));
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            what: "acknowledged".into()
        }
    );

    let entries = ledger(&s).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e.outcome, Outcome::Acknowledged);
    assert_eq!(e.function, "slack-actions");
    assert_eq!(e.name, "agent-tool-errors");
    let reason = e.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("acknowledged by ada (U024BE7LH) at "),
        "{reason}"
    );

    let posts = responses(&s.aws).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    let update = &posts[0]["json"];
    assert_eq!(update["replace_original"], true);
    let blocks = update["blocks"].as_array().unwrap();
    let text = serde_json::to_string(blocks).unwrap();
    assert!(
        !text.contains("\"vigil_ack\""),
        "the ack button stays: {text}"
    );
    assert!(text.contains("vigil_silence_1h"), "{text}");
    let note = format!("Acknowledged by <@U024BE7LH> at {} UTC", t.format("%H:%M"));
    assert!(text.contains(&note), "{text}");
    // The buttons stay last; the note sits just before them.
    assert_eq!(blocks.last().unwrap()["type"], "actions");
    assert_eq!(blocks[blocks.len() - 2]["type"], "actions");
    assert_eq!(blocks[blocks.len() - 3]["type"], "context");
}

#[tokio::test]
async fn a_table_slower_than_slacks_deadline_is_given_up_on_and_nothing_is_done() {
    let s = stack().await;
    // Every DynamoDB call is held 4 s and then answered: longer than Slack waits for an
    // answer to a click (3 s). Without client timeouts the replay claim would succeed late and
    // the acknowledgement go ahead after Slack had shown the person an error.
    s.aws
        .faults(serde_json::json!([{"service": "dynamodb", "mode": "timeout", "delay": 4, "count": 100}]))
        .await;
    let t = now();
    let body = click_body("vigil_ack", &button_value(None), &response_url(&s.aws));
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(
        a,
        Answer {
            status: 503,
            what: "state_error".into()
        }
    );
    s.aws.clear_faults().await;
    assert!(
        responses(&s.aws).await.is_empty(),
        "the message was not touched"
    );
    assert!(ledger(&s).await.is_empty(), "no ledger row");
}

#[tokio::test]
async fn each_silence_button_creates_a_silence_of_its_length() {
    let s = stack().await;
    seed_default(&s.state).await;
    let t = now();
    for (action, hours) in [
        ("vigil_silence_1h", 1),
        ("vigil_silence_4h", 4),
        ("vigil_silence_24h", 24),
    ] {
        let body = click_body(action, &button_value(None), &response_url(&s.aws));
        let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
        assert_eq!(a.status, 200, "{action}: {a:?}");
        let id = a.what.strip_prefix("silenced:").expect("a silence id");
        let silences = s.state.silences(true, t).await.unwrap();
        let silence = silences.iter().find(|x| x.id == id).expect("stored");
        assert_eq!(silence.starts_at, t);
        assert_eq!(
            silence.ends_at - silence.starts_at,
            chrono::Duration::hours(hours)
        );
        assert!(silence.is_active(t));
        assert_eq!(silence.author, "slack:ada (U024BE7LH)");
        assert_eq!(
            silence.reason,
            format!("from Slack (user U024BE7LH, team T0001, channel C0001), alert {CORRELATION}")
        );
        // Exact, and as narrow as the alert's group (kind, resource, account, Region).
        let shown: Vec<String> = silence.matchers.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            shown,
            [
                "name==agent-tool-errors",
                "kind==access_denied",
                "resource==arn:aws:lambda:us-east-1:111122223333:function:agent-tool",
                "account==111122223333",
                "region==us-east-1"
            ]
        );
        assert_eq!(silence.matchers[0].field, MatchField::Name);
        assert!(silence.matchers.iter().all(|m| m.op == MatchOp::Equals));
    }
    let entries: Vec<_> = ledger(&s)
        .await
        .into_iter()
        .filter(|e| e.function == "slack-actions")
        .collect();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.outcome == Outcome::Silenced));
    let posts = responses(&s.aws).await;
    assert_eq!(posts.len(), 3);
    for p in &posts {
        assert_eq!(p["json"]["replace_original"], false);
        assert_eq!(p["json"]["response_type"], "ephemeral");
        assert!(p["json"]["text"].as_str().unwrap().contains("Silenced"));
    }
    // The silences are what handle-alarm reads.
    use vigil_core::ports::StateStore;
    assert_eq!(s.state.active_silences(t).await.unwrap().len(), 3);
}

#[tokio::test]
async fn step_done_writes_the_ledger_and_notes_it_on_the_message() {
    let s = stack().await;
    let t = now();
    let body = click_body("vigil_step_done", &step_value(), &response_url(&s.aws));
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            what: "step_done:1".into()
        }
    );
    let entries = ledger(&s).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, Outcome::StepDone);
    let reason = entries[0].reason.as_deref().unwrap();
    assert!(
        reason.starts_with("step 1 done by ada (U024BE7LH) at "),
        "{reason}"
    );
    assert!(reason.ends_with(": Check the role"), "{reason}");
    let posts = responses(&s.aws).await;
    assert_eq!(posts.len(), 1);
    let text = posts[0]["json"]["blocks"].to_string();
    assert!(text.contains("Step 1 done by <@U024BE7LH>"), "{text}");
    assert!(
        !text.contains("✓ Step 1"),
        "the step's button stays: {text}"
    );
    assert!(
        text.contains("✓ Step 2"),
        "the other step's button went: {text}"
    );
    assert!(text.contains("vigil_ack"), "{text}");
}

#[tokio::test]
async fn a_base64_body_is_decoded_before_it_is_verified() {
    let s = stack().await;
    let t = now();
    let body = click_body("vigil_ack", &button_value(None), &response_url(&s.aws));
    let mut r = signed_request(&body, t.timestamp());
    r.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
    r.is_base64_encoded = true;
    assert_eq!(handle(&r, &s.deps, t).await.status, 200);
    // Flagged base64 but not: refused, nothing stored.
    let before = keys(&s.aws).await;
    let mut r = signed_request(&body, t.timestamp() + 1);
    r.is_base64_encoded = true;
    let a = handle(&r, &s.deps, t).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(keys(&s.aws).await, before);
}

#[tokio::test]
async fn verified_but_unreadable_or_unknown_requests() {
    let s = stack().await;
    let t = now();
    // A valid signature over a payload that is not block_actions: 400.
    let a = handle(
        &signed_request("payload=%7B%22type%22%3A%22x%22%7D", t.timestamp()),
        &s.deps,
        t,
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    // A vigil button with a value that is not vigil's: 400.
    let body = click_body("vigil_ack", "not json", &response_url(&s.aws));
    assert_eq!(
        handle(&signed_request(&body, t.timestamp()), &s.deps, t)
            .await
            .status,
        400
    );
    // Someone else's button: 200, nothing done.
    let body = click_body("other_app_button", "x", &response_url(&s.aws));
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(
        a,
        Answer {
            status: 200,
            what: "ignored:other_app_button".into()
        }
    );
    assert!(ledger(&s).await.is_empty());
    assert!(responses(&s.aws).await.is_empty());
    // A response_url elsewhere than Slack or the configured base: the action is recorded,
    // nothing is posted there.
    let body = click_body(
        "vigil_ack",
        &button_value(None),
        "http://127.0.0.1:9/actions/x",
    );
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(a.status, 200);
    assert!(responses(&s.aws).await.is_empty());
}

/// The attacks. Prints one line per case (`--nocapture`).
#[tokio::test]
async fn unverifiable_requests_get_401_and_change_nothing() {
    let s = stack().await;
    let t = now();
    let at = t.timestamp();
    let body = click_body(
        "vigil_silence_24h",
        &button_value(None),
        &response_url(&s.aws),
    );
    let (ts, sig) = signed(SIGNING_SECRET, at, &body);
    let (old_ts, old_sig) = signed(SIGNING_SECRET, at - 360, &body);
    let (future_ts, future_sig) = signed(SIGNING_SECRET, at + 360, &body);
    let (_, wrong_sig) = signed("0123456789abcdef0123456789abcdef", at, &body);
    let tampered = body.replace("vigil_silence_24h", "vigil_silence_1h");
    let other_user = body.replace("U024BE7LH", "U0ATTACKER");
    seed_default(&s.state).await;
    let before = keys(&s.aws).await;
    let cases: Vec<(&str, LambdaFunctionUrlRequest)> = vec![
        ("unsigned (no headers)", request(&body, None, None)),
        ("no signature", request(&body, Some(&ts), None)),
        ("no timestamp", request(&body, None, Some(&sig))),
        (
            "expired (signed 6 min ago)",
            request(&body, Some(&old_ts), Some(&old_sig)),
        ),
        (
            "future (signed 6 min ahead)",
            request(&body, Some(&future_ts), Some(&future_sig)),
        ),
        (
            "old signature with a fresh timestamp",
            request(&body, Some(&ts), Some(&old_sig)),
        ),
        (
            "tampered body (action changed)",
            request(&tampered, Some(&ts), Some(&sig)),
        ),
        (
            "tampered body (user changed)",
            request(&other_user, Some(&ts), Some(&sig)),
        ),
        ("wrong secret", request(&body, Some(&ts), Some(&wrong_sig))),
        (
            "signature without v0=",
            request(&body, Some(&ts), Some(sig.trim_start_matches("v0="))),
        ),
        (
            "not hex",
            request(&body, Some(&ts), Some(&format!("v0={}", "z".repeat(64)))),
        ),
        ("empty body", request("", Some(&ts), Some(&sig))),
    ];
    for (name, r) in &cases {
        let a = handle(r, &s.deps, t).await;
        println!("attack: {name:<40} -> {} {}", a.status, a.what);
        assert_eq!(a.status, 401, "{name}: {a:?}");
        assert!(a.what.starts_with("rejected:"), "{name}: {a:?}");
    }
    assert_eq!(
        keys(&s.aws).await,
        before,
        "a refused request changed the table"
    );
    assert!(responses(&s.aws).await.is_empty());

    // A valid request works once; the same request again is a replay (also upper-cased).
    let valid = request(&body, Some(&ts), Some(&sig));
    let first = handle(&valid, &s.deps, t).await;
    println!(
        "valid request                                  -> {} {}",
        first.status, first.what
    );
    assert_eq!(first.status, 200, "{first:?}");
    let after_first = keys(&s.aws).await;
    let ledger_rows = ledger_keys(&s.aws).await.len();
    let hex_upper = format!("v0={}", sig.trim_start_matches("v0=").to_uppercase());
    let later = t + chrono::Duration::seconds(30);
    for (name, r, when) in [
        ("replay (same request, same second)", valid.clone(), t),
        ("replay (same request, 30 s later)", valid.clone(), later),
        (
            "replay (signature hex upper-cased)",
            request(&body, Some(&ts), Some(&hex_upper)),
            later,
        ),
    ] {
        let a = handle(&r, &s.deps, when).await;
        println!("attack: {name:<40} -> {} {}", a.status, a.what);
        assert_eq!(
            a,
            Answer {
                status: 401,
                what: "rejected:replayed".into()
            },
            "{name}"
        );
    }
    assert_eq!(
        keys(&s.aws).await,
        after_first,
        "a replay changed the table"
    );
    assert_eq!(ledger_keys(&s.aws).await.len(), ledger_rows);
    assert_eq!(
        ledger(&s)
            .await
            .iter()
            .filter(|e| e.function == "slack-actions")
            .count(),
        1,
        "one ledger row for one click"
    );
    assert_eq!(s.state.silences(true, t).await.unwrap().len(), 1);
    assert_eq!(responses(&s.aws).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Silences that cannot be abused
// ---------------------------------------------------------------------------------------------

use vigil_core::model::{Alert, Kind, Severity};
use vigil_core::noise::{SilenceSubject, group_key, silenced_by};
use vigil_core::ports::StateStore;

/// One alert from an event, as the functions read it.
fn parsed(event: &Value) -> Alert {
    let mut alerts = vigil_core::intake::parse_value(event).expect("an alert");
    alerts.remove(0)
}

/// A CloudWatch alarm (EventBridge) named `name`.
fn alarm_named(name: &str) -> Alert {
    parsed(&serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": "111122223333", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:111122223333:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-01-01T00:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2025-12-31T23:00:00.000+0000"},
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": "AWS/Lambda", "name": "Errors", "dimensions": {}}, "period": 60, "stat": "Sum"}, "returnData": true}]}
        }
    }))
}

/// A denied CloudTrail call `event_name` on `bucket`.
fn denied_call(event_name: &str, bucket: &str) -> Alert {
    denied_call_by(event_name, bucket, "mallory")
}

fn denied_call_by(event_name: &str, bucket: &str, user: &str) -> Alert {
    parsed(&serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/{user}"), "accountId": "111122223333", "userName": user},
        "eventTime": "2026-01-01T00:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": event_name,
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "errorCode": "AccessDenied",
        "requestParameters": null, "responseElements": null,
        "resources": [{"ARN": format!("arn:aws:s3:::{bucket}")}],
        "eventID": format!("ev-{bucket}"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333"
    }))
}

fn value_for(correlation_id: &str, name: &str, kind: &str, severity: &str) -> String {
    vigil_core::slack_request::ButtonValue {
        correlation_id: correlation_id.into(),
        name: name.into(),
        kind: Some(kind.into()),
        severity: Some(severity.into()),
        account: Some("111122223333".into()),
        region: Some("us-east-1".into()),
        ..Default::default()
    }
    .encode()
}

/// Sends the alert to the ledger as `handle-alarm` would, then clicks Silence 1 h on it.
async fn silence_via_button(s: &Stack, alert: &Alert, kind: Kind, cid: &str, at: DateTime<Utc>) {
    seed(
        &s.state,
        &sent_row(
            cid,
            kind,
            Severity::High,
            alert.name(),
            &group_key(alert, kind),
        ),
    )
    .await;
    let body = click_body(
        "vigil_silence_1h",
        &value_for(cid, alert.name(), kind.as_str(), "high"),
        &response_url(&s.aws),
    );
    let a = handle(&signed_request(&body, at.timestamp()), &s.deps, at).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.what.starts_with("silenced:"), "{a:?}");
}

fn subject(alert: &Alert, kind: Kind) -> SilenceSubject<'_> {
    SilenceSubject {
        alert,
        kind,
        severity: Severity::High,
        teams: &[],
    }
}

#[tokio::test]
async fn a_silence_button_matches_exactly_and_only_the_alerts_group() {
    let s = stack().await;
    let t = now();

    // An alarm named `*`: its silence must not silence every other alarm.
    let star = alarm_named("*");
    let other = alarm_named("payments-latency");
    silence_via_button(&s, &star, Kind::ErrorSpike, "evt-star", t).await;
    // A denied GetObject by mallory: denied calls are grouped by caller, so the button silences
    // mallory's denied GetObject calls (one Slack thread), not everyone's.
    let on_a = denied_call("GetObject", "bucket-a");
    let on_b = denied_call("GetObject", "bucket-b");
    let by_eve = denied_call_by("GetObject", "bucket-a", "eve");
    silence_via_button(&s, &on_a, Kind::AccessDenied, "evt-ct-a", t).await;

    // Through the stored silences, as handle-alarm and handle-event read them.
    let stored = s.state.active_silences(t).await.expect("silences");
    assert_eq!(stored.len(), 2);
    for silence in &stored {
        assert!(
            silence.matchers.iter().all(|m| m.op == MatchOp::Equals),
            "{:?}",
            silence.matchers
        );
    }
    let hit = |alert: &Alert, kind| silenced_by(&stored, &subject(alert, kind), t).is_some();
    assert!(hit(&star, Kind::ErrorSpike), "the alarm itself is silenced");
    assert!(
        !hit(&other, Kind::ErrorSpike),
        "an alarm named `*` silenced another alarm"
    );
    assert!(
        hit(&on_a, Kind::AccessDenied),
        "the call itself is silenced"
    );
    assert!(
        hit(&on_b, Kind::AccessDenied),
        "the same caller's same call on another bucket is in the same group"
    );
    assert!(
        !hit(&by_eve, Kind::AccessDenied),
        "another caller's denied call was silenced"
    );
    // Same resource, another event name: another alert, not silenced either.
    assert!(!hit(
        &denied_call("PutObject", "bucket-a"),
        Kind::AccessDenied
    ));
}

#[tokio::test]
async fn critical_and_audit_tampering_alerts_cannot_be_silenced_from_slack() {
    let s = stack().await;
    let t = now();
    let stop_logging = "111122223333|us-east-1|audit_tampering|arn:aws:cloudtrail:us-east-1:111122223333:trail/org";
    // (correlation id, what the ledger recorded, the button's value, the answer)
    type Case<'a> = (&'a str, Option<(Kind, Severity)>, String, &'a str);
    let cases: Vec<Case> = vec![
        // What a protected alert's message would say, had it a Silence button.
        (
            "evt-p1",
            Some((Kind::ThrottleSpike, Severity::Critical)),
            value_for("evt-p1", "quota", "throttle_spike", "critical"),
            "refused:protected",
        ),
        // A forged button: the value claims a medium access_denied, the record says
        // audit_tampering (a StopLogging).
        (
            "evt-p2",
            Some((Kind::AuditTampering, Severity::High)),
            value_for("evt-p2", "StopLogging", "access_denied", "medium"),
            "refused:protected",
        ),
        // Forged again, the record says critical.
        (
            "evt-p3",
            Some((Kind::PublicExposure, Severity::Critical)),
            value_for("evt-p3", "PutBucketPolicy", "access_denied", "low"),
            "refused:protected",
        ),
        // No record of the alert at all: nothing to take the group from.
        (
            "evt-p4",
            None,
            value_for("evt-p4", "anything", "access_denied", "low"),
            "refused:unknown_alert",
        ),
    ];
    for (cid, record, value, want) in &cases {
        if let Some((kind, severity)) = record {
            let key = stop_logging.replace("audit_tampering", kind.as_str());
            seed(&s.state, &sent_row(cid, *kind, *severity, "x", &key)).await;
        }
        let body = click_body("vigil_silence_24h", value, &response_url(&s.aws));
        let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
        println!("attack: silence {cid} -> {} {}", a.status, a.what);
        assert_eq!((a.status, a.what.as_str()), (403, *want), "{cid}");
        let rows = s.state.ledger_by_correlation(cid).await.unwrap();
        let refused = rows
            .iter()
            .find(|e| e.outcome == Outcome::Refused)
            .expect("a refusal row");
        let reason = refused.reason.as_deref().unwrap();
        assert!(
            reason.contains("U024BE7LH") && reason.contains("vigil_silence_24h"),
            "{reason}"
        );
    }
    assert!(
        s.state.silences(true, t).await.unwrap().is_empty(),
        "nothing silenced"
    );
    // The person is told why.
    let posts = responses(&s.aws).await;
    assert_eq!(posts.len(), cases.len());
    assert!(posts.iter().all(|p| {
        p["json"]["text"]
            .as_str()
            .unwrap()
            .starts_with("🚫 Not done")
    }));
}

#[tokio::test]
async fn another_workspace_or_channel_is_refused() {
    let s = stack_with(&[
        (slack_actions::config::TEAM_ID, "T0001"),
        (slack_actions::config::ALLOWED_CHANNELS, "C0001,C0002"),
    ])
    .await;
    seed_default(&s.state).await;
    let t = now();
    let url = response_url(&s.aws);
    for (action, team, channel, want) in [
        ("vigil_silence_1h", "T0EVIL", "C0001", "refused:team"),
        ("vigil_silence_1h", "T0001", "C0RANDOM", "refused:channel"),
        ("vigil_ack", "T0001", "C0RANDOM", "refused:channel"),
    ] {
        let body = click_body_from(
            action,
            &button_value(None),
            &url,
            team,
            channel,
            "U024BE7LH",
        );
        let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
        println!(
            "attack: {action} from {team}/{channel} -> {} {}",
            a.status, a.what
        );
        assert_eq!((a.status, a.what.as_str()), (403, want), "{team} {channel}");
    }
    assert!(s.state.silences(true, t).await.unwrap().is_empty());
    let refusals: Vec<_> = ledger(&s)
        .await
        .into_iter()
        .filter(|e| e.outcome == Outcome::Refused)
        .collect();
    assert_eq!(refusals.len(), 3);
    let first = refusals
        .iter()
        .map(|e| e.reason.clone().unwrap())
        .find(|r| r.contains("T0EVIL"))
        .expect("the team refusal names the team");
    assert!(first.contains("not the configured T0001"), "{first}");
    // The configured workspace and channel still work.
    let body = click_body_from(
        "vigil_silence_1h",
        &button_value(None),
        &url,
        "T0001",
        "C0002",
        "U024BE7LH",
    );
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn only_the_silencer_group_may_silence() {
    let s = stack_with(&[
        (slack_actions::config::SILENCER_GROUP, "S0SILENCE"),
        (
            handle_alarm::config::SLACK_SECRET,
            &format!("secretsmanager:{SECRET_NAME}"),
        ),
    ])
    .await;
    seed_default(&s.state).await;
    reqwest::Client::new()
        .post(format!("{}/_stand-in/usergroups", s.aws.slack_url()))
        .json(&serde_json::json!({"S0SILENCE": ["U024BE7LH"]}))
        .send()
        .await
        .unwrap();
    let t = now();
    let url = response_url(&s.aws);
    let as_user = |user: &str, action: &str| {
        click_body_from(action, &button_value(None), &url, "T0001", "C0001", user)
    };
    let a = handle(
        &signed_request(&as_user("U0MALLORY", "vigil_silence_4h"), t.timestamp()),
        &s.deps,
        t,
    )
    .await;
    println!(
        "attack: silence by a user outside the group -> {} {}",
        a.status, a.what
    );
    assert_eq!((a.status, a.what.as_str()), (403, "refused:not_a_silencer"));
    assert!(s.state.silences(true, t).await.unwrap().is_empty());
    let refusal = ledger(&s)
        .await
        .into_iter()
        .find(|e| e.outcome == Outcome::Refused)
        .expect("a refusal row");
    assert!(
        refusal
            .reason
            .as_deref()
            .unwrap()
            .contains("U0MALLORY is not in the silencer group S0SILENCE"),
        "{refusal:?}"
    );
    // Acknowledge stays open to everyone in the channel.
    let a = handle(
        &signed_request(&as_user("U0MALLORY", "vigil_ack"), t.timestamp()),
        &s.deps,
        t,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // A member may.
    let a = handle(
        &signed_request(&as_user("U024BE7LH", "vigil_silence_4h"), t.timestamp()),
        &s.deps,
        t,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // The group was read once (then cached), with the bot token.
    let lookups: Vec<Value> = s
        .aws
        .slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/usergroups.users.list")
        .collect();
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert!(
        lookups[0]["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer xoxb-")
    );

    // A group Slack does not know: fail closed.
    let other = deps_with(
        &s.aws,
        &[
            (slack_actions::config::SILENCER_GROUP, "S0UNKNOWN"),
            (
                handle_alarm::config::SLACK_SECRET,
                &format!("secretsmanager:{SECRET_NAME}"),
            ),
        ],
    )
    .await;
    let a = handle(
        &signed_request(&as_user("U024BE7LH", "vigil_silence_1h"), t.timestamp()),
        &other,
        t,
    )
    .await;
    assert_eq!(
        (a.status, a.what.as_str()),
        (403, "refused:group_unavailable")
    );
    assert_eq!(s.state.silences(true, t).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_ledger_row_names_who_silenced_what_for_how_long() {
    let s = stack().await;
    seed_default(&s.state).await;
    let t = now();
    let body = click_body(
        "vigil_silence_24h",
        &button_value(None),
        &response_url(&s.aws),
    );
    let a = handle(&signed_request(&body, t.timestamp()), &s.deps, t).await;
    let id = a
        .what
        .strip_prefix("silenced:")
        .expect("silenced")
        .to_owned();
    let row = ledger(&s)
        .await
        .into_iter()
        .find(|e| e.outcome == Outcome::Silenced)
        .expect("a silenced row");
    let reason = row.reason.as_deref().unwrap();
    for needle in [
        "silenced for 24 h by ada (U024BE7LH)",
        "user U024BE7LH, team T0001, channel C0001",
        &id,
        "name==agent-tool-errors kind==access_denied resource==arn:aws:lambda:us-east-1:111122223333:function:agent-tool account==111122223333 region==us-east-1",
        "until ",
    ] {
        assert!(reason.contains(needle), "missing {needle:?} in {reason}");
    }
    // Kind, severity and group are the record's, not the button's.
    assert_eq!(row.kind, Some(Kind::AccessDenied));
    assert_eq!(row.severity, Some(Severity::Medium));
    assert_eq!(row.group_key.as_deref(), Some(GROUP_KEY));
}
