//! The alarm handler against in-memory ports: what it accepts and refuses, when it fails the
//! invocation (so Lambda retries and dead-letters) and when one failed channel is enough to
//! succeed, and that the demo alarm comes out classified with its cause.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use handle_alarm::deps::{Budgets, Deps};
use handle_alarm::fakes::{
    FailingNotifier, FixedChangeSource, MemoryState, QuietServices, RecordingNotifier,
};
use handle_alarm::handler::{Decision, HandlerError, handle};
use serde_json::{Value, json};
use vigil_adapters::delivery::Channels;
use vigil_adapters::enrichment::Enricher;
use vigil_core::enrich::MissingContext;
use vigil_core::intake::RefusalCode;
use vigil_core::model::Kind;
use vigil_core::pipeline::Settings;
use vigil_core::ports::{ChangeBatch, Notifier, Outgoing};
use vigil_core::route::{Destination, Owners};
use vigil_testkit::repo_root;

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:agents-alerts";

fn demo_event() -> Value {
    let path = repo_root().join("examples/demo/agent-tool-access-denied/event.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("demo event")).expect("json")
}

fn fixture(rel: &str) -> Value {
    let path = repo_root().join("tests/fixtures/aws-events").join(rel);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// Every change of the demo's CloudTrail files (the detach, the denied reads, the noise).
fn demo_trail() -> ChangeBatch {
    let dir = repo_root().join("examples/demo/agent-tool-access-denied/trail");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("trail")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut changes = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).expect("trail file");
        changes.extend(
            vigil_core::cloudtrail::parse_trail(&text)
                .expect("trail")
                .changes,
        );
    }
    ChangeBatch {
        changes,
        sources: vec!["iam.amazonaws.com".into()],
        missing: Vec::new(),
    }
}

/// A few minutes after the demo alarm.
fn now() -> DateTime<Utc> {
    "2026-11-20T09:17:00Z".parse().expect("time")
}

fn destination() -> Destination {
    Destination {
        team: "agents".into(),
        slack_channel: Some("#agents-alerts".into()),
        sns_topic_arn: Some(TOPIC.into()),
        ..Destination::default()
    }
}

fn deps<S: Notifier, N: Notifier>(
    batch: ChangeBatch,
    slack: S,
    sns: N,
    destination: Destination,
) -> Deps<FixedChangeSource, QuietServices, QuietServices, S, N, MemoryState> {
    Deps::new(
        Enricher::new(FixedChangeSource::new(batch), QuietServices, QuietServices),
        Channels {
            slack: Some(slack),
            sns: Some(sns),
        },
        Settings::with_defaults(Owners::single(destination)),
        Budgets {
            lookback: chrono::Duration::minutes(60),
            enrich: Duration::from_secs(2),
            delivery: Duration::from_secs(2),
        },
    )
}

fn recording() -> (RecordingNotifier, RecordingNotifier) {
    (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
    )
}

#[tokio::test]
async fn the_demo_alarm_is_delivered_to_both_channels_with_the_detach_as_its_cause() {
    let (slack, sns) = recording();
    let deps = deps(demo_trail(), slack.clone(), sns.clone(), destination());
    let out = handle(demo_event(), &deps, now()).await.expect("handled");

    let [alert] = out.alerts.as_slice() else {
        panic!("one alert: {out:?}")
    };
    assert_eq!(alert.kind, Kind::AccessDenied);
    assert_eq!(alert.outcome, Decision::Notified);
    assert_eq!(alert.routes, ["default"]);
    assert!(!alert.context_partial);
    assert!(alert.deliveries.iter().all(|d| d.ok), "{out:?}");
    assert_eq!(alert.deliveries.len(), 2);

    let sent = slack.sent();
    let [
        Outgoing::Slack {
            message, channel, ..
        },
    ] = sent.as_slice()
    else {
        panic!("one Slack message")
    };
    assert_eq!(channel.as_deref(), Some("#agents-alerts"));
    let body = serde_json::to_string(&message.blocks).expect("blocks");
    assert!(body.contains("DetachRolePolicy"), "{body}");
    let sent = sns.sent();
    let [Outgoing::Sns { topic_arn, .. }] = sent.as_slice() else {
        panic!("one SNS message")
    };
    assert_eq!(topic_arn, TOPIC);

    // The output is the invocation's JSON response.
    let json = serde_json::to_value(&out).expect("serializes");
    assert_eq!(json["alerts"][0]["kind"], "access_denied");
    assert_eq!(json["alerts"][0]["outcome"], "notified");
    assert_eq!(json["alerts"][0]["deliveries"][0]["ok"], true);
}

#[tokio::test]
async fn an_sns_subscription_confirmation_is_refused_with_its_code_and_nothing_is_sent() {
    let (slack, sns) = recording();
    let deps = deps(
        ChangeBatch::default(),
        slack.clone(),
        sns.clone(),
        destination(),
    );
    let err = handle(
        fixture("malformed/alerta-sns-http-subscription-confirmation.json"),
        &deps,
        now(),
    )
    .await
    .expect_err("refused");
    let HandlerError::Refused(intake) = &err else {
        panic!("refused, not {err:?}")
    };
    assert_eq!(intake.code, RefusalCode::Unsupported);
    assert!(
        intake.received.contains("SubscriptionConfirmation"),
        "{intake:?}"
    );
    assert_eq!(err.error_type(), "Refused");
    assert!(!err.retryable());
    assert!(slack.sent().is_empty() && sns.sent().is_empty());
}

#[tokio::test]
async fn plain_text_and_unknown_shapes_are_refused_not_panicked_on() {
    let (slack, sns) = recording();
    let deps = deps(ChangeBatch::default(), slack, sns, destination());
    for event in [
        json!("hello"),
        json!(null),
        json!([1, 2]),
        json!({"hello": "world"}),
        json!({"Records": []}),
    ] {
        let err = handle(event.clone(), &deps, now())
            .await
            .expect_err("refused");
        assert_eq!(err.error_type(), "Refused", "{event}: {err}");
    }
}

#[tokio::test]
async fn a_cloudtrail_event_sent_to_the_alarm_function_is_refused_naming_handle_event() {
    let (slack, sns) = recording();
    let deps = deps(ChangeBatch::default(), slack.clone(), sns, destination());
    let err = handle(
        fixture("cloudtrail-api-call-eventbridge/stratus-cloudtrail-stoplogging.json"),
        &deps,
        now(),
    )
    .await
    .expect_err("refused");
    let HandlerError::Refused(intake) = &err else {
        panic!("refused, not {err:?}")
    };
    assert_eq!(intake.code, RefusalCode::Unsupported);
    assert!(intake.reason.contains("handle-event"), "{intake:?}");
    assert!(slack.sent().is_empty());
}

#[tokio::test]
async fn every_channel_failing_fails_the_invocation_so_lambda_retries_and_dead_letters() {
    let deps = deps(
        demo_trail(),
        FailingNotifier::new("slack", true),
        FailingNotifier::new("sns", false),
        destination(),
    );
    let err = handle(demo_event(), &deps, now())
        .await
        .expect_err("delivery failed");
    let HandlerError::DeliveryFailed {
        alert_ids,
        reasons,
        retryable,
    } = &err
    else {
        panic!("DeliveryFailed, not {err:?}")
    };
    assert_eq!(alert_ids.len(), 1);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(*retryable, "the Slack failure was transient");
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "DeliveryFailed"
    );
}

#[tokio::test]
async fn one_channel_failing_still_succeeds_and_reports_which_one() {
    let sns = RecordingNotifier::new("sns");
    let deps = deps(
        demo_trail(),
        FailingNotifier::new("slack", true),
        sns.clone(),
        destination(),
    );
    let out = handle(demo_event(), &deps, now()).await.expect("handled");
    let alert = &out.alerts[0];
    assert_eq!(alert.outcome, Decision::Notified);
    let failed: Vec<_> = alert.deliveries.iter().filter(|d| !d.ok).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].channel, "slack");
    assert!(failed[0].retryable);
    assert_eq!(sns.sent().len(), 1);
}

#[tokio::test]
async fn a_route_with_no_channel_fails_rather_than_drops_the_alert() {
    let (slack, sns) = recording();
    let deps = deps(
        demo_trail(),
        slack,
        sns,
        Destination {
            team: "nobody".into(),
            ..Destination::default()
        },
    );
    let err = handle(demo_event(), &deps, now())
        .await
        .expect_err("nothing could be sent");
    assert_eq!(err.error_type(), "DeliveryFailed");
    assert!(!err.retryable(), "{err}");
    assert!(
        err.to_string().contains("no Slack or SNS destination"),
        "{err}"
    );
}

#[tokio::test]
async fn a_throttled_change_source_still_notifies_and_marks_the_alert_partial() {
    let (slack, sns) = recording();
    let batch = ChangeBatch {
        missing: vec![MissingContext {
            source: "iam.amazonaws.com".into(),
            reason: "LookupEvents throttled; budget of 2 s spent".into(),
        }],
        ..ChangeBatch::default()
    };
    let deps = deps(batch, slack.clone(), sns, destination());
    let out = handle(demo_event(), &deps, now()).await.expect("handled");
    assert!(out.alerts[0].context_partial);
    assert_eq!(out.alerts[0].outcome, Decision::Notified);
    let sent = slack.sent();
    let [Outgoing::Slack { message, .. }] = sent.as_slice() else {
        panic!("one Slack message")
    };
    let body = serde_json::to_string(&message.blocks).expect("blocks");
    assert!(body.contains("LookupEvents throttled"), "{body}");
}

#[tokio::test]
async fn every_record_of_an_sns_event_is_answered() {
    let (slack, sns) = recording();
    let deps = deps(ChangeBatch::default(), slack.clone(), sns, destination());
    let out = handle(
        fixture("sns-wrapped-alarm/rust-runtime-sns-multiple-metrics.json"),
        &deps,
        now(),
    )
    .await
    .expect("handled");
    assert_eq!(out.alerts.len(), 2);
    assert_eq!(slack.sent().len(), 2);
}
