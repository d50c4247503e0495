//! The alarm handler under noise control (ARCHITECTURE.md "Noise control") with in-memory state: duplicates, grouping
//! into threads, webhook folding, resolves, silences, failed posts and the rate limiter's
//! digest. The same behaviour against DynamoDB in the local AWS is in tests/noise_storm.rs.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use handle_alarm::deps::Budgets;
use handle_alarm::fakes::{
    FailingNotifier, FixedChangeSource, MemoryState, QuietServices, RecordingNotifier,
};
use handle_alarm::handler::Decision;
use handle_alarm::{Deps, handle};
use serde_json::Value;
use vigil_adapters::delivery::Channels;
use vigil_adapters::enrichment::Enricher;
use vigil_core::noise::{Matcher, NoiseSettings, Outcome, Silence};
use vigil_core::pipeline::Settings;
use vigil_core::ports::{ChangeBatch, Notifier, Outgoing};
use vigil_core::route::{Destination, Owners};

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:agents";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

/// The demo alarm event as `name`, in `state`, changed at `time`.
fn alarm(name: &str, state: &str, time: &str) -> Value {
    let text = include_str!("../../../examples/demo/agent-tool-access-denied/event.json");
    let mut e: Value = serde_json::from_str(text).expect("demo event");
    e["alarmArn"] = format!("arn:aws:cloudwatch:us-east-1:111122223333:alarm:{name}").into();
    e["alarmData"]["alarmName"] = name.into();
    e["alarmData"]["state"]["value"] = state.into();
    e["alarmData"]["state"]["timestamp"] = time.into();
    e["alarmData"]["previousState"]["value"] = if state == "OK" { "ALARM" } else { "OK" }.into();
    e
}

fn deps<S: Notifier, N: Notifier>(
    slack: S,
    sns: N,
    state: MemoryState,
    noise: NoiseSettings,
    threads: bool,
) -> Deps<FixedChangeSource, QuietServices, QuietServices, S, N, MemoryState> {
    Deps::new(
        Enricher::new(
            FixedChangeSource::new(ChangeBatch::default()),
            QuietServices,
            QuietServices,
        ),
        Channels {
            slack: Some(slack),
            sns: Some(sns),
        },
        Settings::with_defaults(Owners::single(Destination {
            team: "agents".into(),
            slack_channel: Some("#agents-alerts".into()),
            sns_topic_arn: Some(TOPIC.into()),
            ..Destination::default()
        })),
        Budgets {
            lookback: chrono::Duration::minutes(60),
            enrich: Duration::from_secs(2),
            delivery: Duration::from_secs(5),
        },
    )
    .with_state(state, noise, threads)
}

/// No waiting for Slack slots in these tests (the rate limiter has its own test).
fn quick() -> NoiseSettings {
    NoiseSettings {
        slack_interval: Duration::from_millis(100),
        max_rate_wait: Duration::from_secs(2),
        ..NoiseSettings::default()
    }
}

fn outcomes(state: &MemoryState) -> Vec<Outcome> {
    state.ledger().iter().map(|e| e.outcome).collect()
}

fn thread_ts(m: &Outgoing) -> Option<&str> {
    match m {
        Outgoing::Slack { thread_ts, .. } => thread_ts.as_deref(),
        Outgoing::Sns { .. } => None,
    }
}

fn update_ts(m: &Outgoing) -> Option<&str> {
    match m {
        Outgoing::Slack { update_ts, .. } => update_ts.as_deref(),
        Outgoing::Sns { .. } => None,
    }
}

#[tokio::test]
async fn the_same_event_three_times_sends_one_message_and_records_every_delivery() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let d = deps(slack.clone(), sns.clone(), state.clone(), quick(), true);
    let event = alarm("tool-errors", "ALARM", "2026-11-20T09:14:05.123+0000");
    let now = at("2026-11-20T09:15:00Z");
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let out = handle(event.clone(), &d, now).await.expect("handled");
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
    assert_eq!(slack.sent().len(), 1);
    assert_eq!(sns.sent().len(), 1);
    assert_eq!(
        outcomes(&state),
        [Outcome::Sent, Outcome::Suppressed, Outcome::Suppressed]
    );
    let dup = &state.ledger()[1];
    assert!(
        dup.reason
            .as_deref()
            .unwrap_or_default()
            .contains("duplicate delivery"),
        "{dup:?}"
    );
    assert_eq!(dup.correlation_id, state.ledger()[0].correlation_id);
}

#[tokio::test]
async fn repeats_become_thread_replies_with_a_bot_token_and_a_resolve_closes_the_thread() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let d = deps(slack.clone(), sns.clone(), state.clone(), quick(), true);
    let now = at("2026-11-20T09:20:00Z");
    handle(
        alarm("tool-errors", "ALARM", "2026-11-20T09:14:05.000+0000"),
        &d,
        now,
    )
    .await
    .expect("first");
    let out = handle(
        alarm("tool-errors", "ALARM", "2026-11-20T09:15:05.000+0000"),
        &d,
        now,
    )
    .await
    .expect("repeat");
    assert_eq!(out.alerts[0].outcome, Decision::Threaded);
    let sent = slack.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(thread_ts(&sent[0]), None);
    // RecordingNotifier answers ts 1700000000.000001 for its first message.
    assert_eq!(thread_ts(&sent[1]), Some("1700000000.000001"));
    assert_eq!(sns.sent().len(), 1, "SNS is not told of repeats");

    let out = handle(
        alarm("tool-errors", "OK", "2026-11-20T09:18:05.000+0000"),
        &d,
        now,
    )
    .await
    .expect("resolve");
    assert_eq!(out.alerts[0].outcome, Decision::Resolved);
    let sent = slack.sent();
    assert_eq!(sent.len(), 4, "the root edited and a reply: {sent:#?}");
    assert_eq!(update_ts(&sent[2]), Some("1700000000.000001"));
    match &sent[2] {
        Outgoing::Slack { message, .. } => {
            assert!(message.text.starts_with("Resolved:"), "{}", message.text)
        }
        Outgoing::Sns { .. } => panic!("slack"),
    }
    assert_eq!(thread_ts(&sent[3]), Some("1700000000.000001"));
    assert_eq!(sns.sent().len(), 2, "SNS gets the resolve");
    assert_eq!(
        outcomes(&state),
        [Outcome::Sent, Outcome::Threaded, Outcome::Resolved]
    );
}

#[tokio::test]
async fn with_a_webhook_repeats_are_counted_not_posted() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let d = deps(slack.clone(), sns.clone(), state.clone(), quick(), false);
    let now = at("2026-11-20T09:20:00Z");
    for minute in 10..15 {
        handle(
            alarm(
                "tool-errors",
                "ALARM",
                &format!("2026-11-20T09:{minute}:00.000+0000"),
            ),
            &d,
            now,
        )
        .await
        .expect("handled");
    }
    assert_eq!(slack.sent().len(), 1);
    assert_eq!(sns.sent().len(), 1);
    assert_eq!(
        outcomes(&state),
        [
            Outcome::Sent,
            Outcome::Folded,
            Outcome::Folded,
            Outcome::Folded,
            Outcome::Folded
        ]
    );
    let key = state.ledger()[0].group_key.clone().expect("grouped");
    assert_eq!(state.stored_group(&key).expect("stored").count, 5);
}

#[tokio::test]
async fn a_silence_suppresses_what_it_matches_and_lets_the_resolve_through() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let d = deps(slack.clone(), sns.clone(), state.clone(), quick(), true);
    let now = at("2026-11-20T09:20:00Z");
    // Open a group first, then silence the alarm: repeats are silenced, the resolve is not.
    handle(
        alarm("tool-errors", "ALARM", "2026-11-20T09:10:00.000+0000"),
        &d,
        now,
    )
    .await
    .expect("first");
    state.add_silence(Silence {
        id: "sil-000000000001".into(),
        matchers: vec![Matcher::parse("name=tool-*").expect("matcher")],
        starts_at: at("2026-11-20T09:00:00Z"),
        ends_at: at("2026-11-20T10:00:00Z"),
        author: "oncall@example.com".into(),
        reason: "deploying a fix".into(),
        created_at: at("2026-11-20T09:00:00Z"),
        expired_by: None,
    });
    let out = handle(
        alarm("tool-errors", "ALARM", "2026-11-20T09:12:00.000+0000"),
        &d,
        now,
    )
    .await
    .expect("silenced");
    assert_eq!(out.alerts[0].outcome, Decision::Suppressed);
    let other = handle(
        alarm("model-throttles", "ALARM", "2026-11-20T09:12:00.000+0000"),
        &d,
        now,
    )
    .await
    .expect("not matched");
    assert_eq!(other.alerts[0].outcome, Decision::Notified);
    let out = handle(
        alarm("tool-errors", "OK", "2026-11-20T09:15:00.000+0000"),
        &d,
        now,
    )
    .await
    .expect("resolve");
    assert_eq!(out.alerts[0].outcome, Decision::Resolved);
    let ledger = state.ledger();
    assert_eq!(
        outcomes(&state),
        [
            Outcome::Sent,
            Outcome::Suppressed,
            Outcome::Sent,
            Outcome::Resolved
        ]
    );
    assert!(
        ledger[1]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("silenced by sil-000000000001"),
        "{:?}",
        ledger[1]
    );
}

#[tokio::test]
async fn a_post_that_reached_nobody_is_released_and_posted_by_the_retry() {
    let state = MemoryState::default();
    let event = alarm("tool-errors", "ALARM", "2026-11-20T09:14:05.000+0000");
    let now = at("2026-11-20T09:15:00Z");
    let failing = deps(
        FailingNotifier::new("slack", true),
        FailingNotifier::new("sns", true),
        state.clone(),
        quick(),
        true,
    );
    let err = handle(event.clone(), &failing, now).await.unwrap_err();
    assert_eq!(err.error_type(), "DeliveryFailed");

    let (slack, sns) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
    );
    let working = deps(slack.clone(), sns.clone(), state.clone(), quick(), true);
    let out = handle(event, &working, now).await.expect("retried");
    assert_eq!(out.alerts[0].outcome, Decision::Notified, "{out:?}");
    assert_eq!(slack.sent().len(), 1);
    assert_eq!(
        thread_ts(&slack.sent()[0]),
        None,
        "a new message, not a reply"
    );
    assert_eq!(outcomes(&state), [Outcome::Failed, Outcome::Sent]);
}

#[tokio::test]
async fn past_the_rate_limit_an_alert_folds_into_the_digest_the_next_message_carries() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let noise = NoiseSettings {
        slack_interval: Duration::from_secs(3),
        max_rate_wait: Duration::ZERO,
        ..NoiseSettings::default()
    };
    let d = deps(slack.clone(), sns.clone(), state.clone(), noise, true);
    let now = Utc::now();
    let first = handle(
        alarm("a-errors", "ALARM", "2026-11-20T09:14:00.000+0000"),
        &d,
        now,
    )
    .await
    .expect("first");
    assert_eq!(first.alerts[0].outcome, Decision::Notified);
    // A different alarm (another group) on the same channel inside the interval.
    let second = handle(
        alarm("b-errors", "ALARM", "2026-11-20T09:14:01.000+0000"),
        &d,
        Utc::now(),
    )
    .await
    .expect("second");
    assert_eq!(
        second.alerts[0].outcome,
        Decision::Notified,
        "SNS still delivers a new alert: {second:?}"
    );
    assert_eq!(slack.sent().len(), 1, "Slack held back");
    assert_eq!(sns.sent().len(), 2);
    let entry = &state.ledger()[1];
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("rate limit"),
        "{entry:?}"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    handle(
        alarm("c-errors", "ALARM", "2026-11-20T09:14:09.000+0000"),
        &d,
        Utc::now(),
    )
    .await
    .expect("third");
    let sent = slack.sent();
    assert_eq!(sent.len(), 2);
    match &sent[1] {
        Outgoing::Slack { message, .. } => {
            assert!(
                message.text.contains("Held back by the rate limit"),
                "{}",
                message.text
            );
            assert!(message.text.contains("b-errors"), "{}", message.text);
        }
        Outgoing::Sns { .. } => panic!("slack"),
    }
}

#[tokio::test]
async fn a_repeat_on_an_sns_only_route_is_folded_not_failed() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let mut d = deps(slack.clone(), sns.clone(), state.clone(), quick(), true);
    d.settings = Settings::with_defaults(Owners::single(Destination {
        team: "agents".into(),
        sns_topic_arn: Some(TOPIC.into()),
        ..Destination::default()
    }));
    let now = at("2026-11-20T09:20:00Z");
    for minute in 10..13 {
        let out = handle(
            alarm(
                "tool-errors",
                "ALARM",
                &format!("2026-11-20T09:{minute}:00.000+0000"),
            ),
            &d,
            now,
        )
        .await
        .expect("never an error: a repeat with nowhere to reply is counted");
        assert!(matches!(
            out.alerts[0].outcome,
            Decision::Notified | Decision::Folded
        ));
    }
    assert!(slack.sent().is_empty());
    assert_eq!(sns.sent().len(), 1, "SNS is told once, not of repeats");
    assert_eq!(
        outcomes(&state),
        [Outcome::Sent, Outcome::Folded, Outcome::Folded]
    );
}
