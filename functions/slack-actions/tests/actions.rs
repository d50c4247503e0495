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
use vigil_core::noise::{MatchField, Outcome};
use vigil_testkit::LocalAws;

struct Stack {
    aws: LocalAws,
    deps: Deps,
    state: DynamoState,
}

async fn stack() -> Stack {
    let aws = LocalAws::start().await;
    prepare(&aws).await;
    let sdk = aws.sdk_config().await;
    let slack = aws.slack_url().to_owned();
    let config = Config::from_lookup(|name| {
        Ok(match name {
            n if n == SECRET_VAR => Some(format!("secretsmanager:{SECRET_NAME}")),
            n if n == TABLE_NAME => Some(TABLE.to_owned()),
            n if n == SLACK_API_BASE => Some(format!("{slack}/api")),
            _ => None,
        })
    })
    .expect("config");
    let deps = build(&config, &sdk).await.expect("deps");
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    Stack { aws, deps, state }
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
        assert_eq!(silence.reason, "from Slack");
        let shown: Vec<String> = silence.matchers.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            shown,
            [
                "name=agent-tool-errors",
                "account=111122223333",
                "region=us-east-1"
            ]
        );
        assert_eq!(silence.matchers[0].field, MatchField::Name);
    }
    let entries = ledger(&s).await;
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
    assert_eq!(ledger(&s).await.len(), 1, "one ledger row for one click");
    assert_eq!(s.state.silences(true, t).await.unwrap().len(), 1);
    assert_eq!(responses(&s.aws).await.len(), 1);
}
