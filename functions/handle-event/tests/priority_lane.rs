//! A flood must not bury a critical alert (issue 12, item 4), with in-memory state: a
//! `StopLogging` past the channel's rate limit is still posted (the priority lane) and carries
//! no digest; denied calls by one actor on many resources are one group; and when a hot group
//! cannot be written for the races on it, a repeat is counted, not posted again. The same
//! against DynamoDB in the local AWS, with 500 denied calls, is in tests/flood.rs.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use handle_alarm::deps::Budgets;
use handle_alarm::fakes::{FixedChangeSource, MemoryState, QuietServices, RecordingNotifier};
use handle_alarm::handler::Decision;
use handle_event::{Deps, handle};
use vigil_adapters::delivery::Channels;
use vigil_adapters::enrichment::Enricher;
use vigil_adapters::journal::{ChangeRecorder, JournalError, Recorded};
use vigil_core::model::{Change, Kind, Severity};
use vigil_core::noise::{
    Digest, GroupState, LedgerEntry, NoiseSettings, Outcome, Silence, Slot, Thread,
};
use vigil_core::pipeline::Settings;
use vigil_core::ports::{ChangeBatch, Claim, Outgoing, StateError, StateStore};
use vigil_core::route::{Destination, Owners};

mod support;
use support::{denied_by, stop_logging, user};

/// A journal that takes everything.
#[derive(Debug, Clone, Copy)]
struct NullJournal;

impl ChangeRecorder for NullJournal {
    async fn record(&self, _change: &Change, _ttl: Duration) -> Result<Recorded, JournalError> {
        Ok(Recorded::New)
    }
}

type TestDeps<St> = Deps<
    NullJournal,
    FixedChangeSource,
    QuietServices,
    QuietServices,
    RecordingNotifier,
    RecordingNotifier,
    St,
>;

fn deps<St: StateStore>(
    slack: RecordingNotifier,
    sns: RecordingNotifier,
    state: St,
    noise: NoiseSettings,
) -> TestDeps<St> {
    Deps {
        base: handle_alarm::Deps::new(
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
                team: "security".into(),
                slack_channel: Some("#sec-alerts".into()),
                sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:security".into()),
                ..Destination::default()
            })),
            Budgets {
                lookback: chrono::Duration::minutes(60),
                enrich: Duration::from_secs(2),
                delivery: Duration::from_secs(5),
            },
        )
        .with_state(state, noise, true),
        journal: NullJournal,
        journal_ttl: Duration::from_secs(3_600),
        min_severity: Severity::Medium,
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(secs)
}

fn text(m: &Outgoing) -> String {
    match m {
        Outgoing::Slack { message, .. } => {
            format!("{} {}", message.text, serde_json::json!(message.blocks))
        }
        Outgoing::Sns { .. } => panic!("a Slack message"),
    }
}

#[tokio::test]
async fn a_stop_logging_past_the_rate_limit_is_posted_at_once_and_carries_no_digest() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    // One Slack message per 30 s and no waiting: the second alert in the interval folds.
    let noise = NoiseSettings {
        slack_interval: Duration::from_secs(30),
        max_rate_wait: Duration::ZERO,
        ..NoiseSettings::default()
    };
    let d = deps(slack.clone(), sns.clone(), state.clone(), noise);
    let first = handle(denied_by(1, user("mallory"), t(0)), &d, Utc::now())
        .await
        .expect("first");
    assert_eq!(first.alerts[0].outcome, Decision::Notified);
    let second = handle(denied_by(2, user("eve"), t(1)), &d, Utc::now())
        .await
        .expect("second");
    assert_eq!(second.alerts[0].outcome, Decision::Notified, "SNS took it");
    assert_eq!(slack.sent().len(), 1, "the second is held back from Slack");

    let stop = handle(stop_logging(t(2)), &d, Utc::now())
        .await
        .expect("stop");
    assert_eq!(stop.alerts[0].kind, Kind::AuditTampering);
    assert_eq!(stop.alerts[0].severity, Severity::Critical);
    assert_eq!(stop.alerts[0].outcome, Decision::Notified);
    let sent = slack.sent();
    assert_eq!(sent.len(), 2, "the StopLogging went to Slack at once");
    let message = text(&sent[1]);
    assert!(message.contains("StopLogging"), "{message}");
    assert!(
        !message.contains("Held back by the rate limit"),
        "the digest stays with the ordinary lane: {message}"
    );
    let row = state.ledger().pop().expect("ledger row");
    assert_eq!(row.outcome, Outcome::Sent);
    let reason = row.reason.unwrap_or_default();
    assert!(reason.contains("priority lane"), "{reason}");
    assert!(!reason.contains("held back"), "{reason}");
    // A second audit-tampering alert right after it is paced in its own lane, not folded.
    let again = handle(
        support::eventbridge(
            "stop-2",
            "aws.cloudtrail",
            serde_json::json!({
                "eventVersion": "1.08",
                "userIdentity": user("mallory"),
                "eventTime": t(3).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "DeleteTrail",
                "awsRegion": "us-east-1",
                "requestParameters": { "name": "other-trail" },
                "eventID": "00000000-0000-4000-8000-00000000d31e",
                "readOnly": false,
                "eventType": "AwsApiCall",
                "recipientAccountId": support::ACCOUNT,
            }),
        ),
        &d,
        Utc::now(),
    )
    .await
    .expect("delete trail");
    assert_eq!(again.alerts[0].outcome, Decision::Notified);
    assert_eq!(
        slack.sent().len(),
        3,
        "never folded, even inside its lane's interval"
    );
    assert!(text(&slack.sent()[2]).contains("DeleteTrail"));
    // The ordinary lane is as full as it was: the next denied call is still held back.
    handle(denied_by(3, user("trent"), t(4)), &d, Utc::now())
        .await
        .expect("third");
    assert_eq!(slack.sent().len(), 3);
    assert_eq!(
        state
            .ledger()
            .iter()
            .filter(|e| e
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("held back"))
            .count(),
        2
    );
}

#[tokio::test]
async fn denied_calls_by_one_actor_on_many_resources_are_one_group() {
    let (slack, sns, state) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        MemoryState::default(),
    );
    let noise = NoiseSettings {
        slack_interval: Duration::from_millis(20),
        max_rate_wait: Duration::from_secs(2),
        ..NoiseSettings::default()
    };
    let max_replies = noise.max_replies as usize;
    let d = deps(slack.clone(), sns.clone(), state.clone(), noise);
    for i in 0..20 {
        handle(denied_by(i, user("mallory"), t(i as i64)), &d, Utc::now())
            .await
            .expect("handled");
    }
    let ledger = state.ledger();
    assert_eq!(ledger.len(), 20);
    let keys: BTreeSet<&str> = ledger
        .iter()
        .filter_map(|e| e.group_key.as_deref())
        .collect();
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        ["111122223333|us-east-1|access_denied|actor:arn:aws:iam::111122223333:user/mallory"]
    );
    let sent = slack.sent();
    assert_eq!(
        sent.len(),
        1 + max_replies,
        "a first message and its replies"
    );
    let roots = sent
        .iter()
        .filter(|m| {
            matches!(
                m,
                Outgoing::Slack {
                    thread_ts: None,
                    ..
                }
            )
        })
        .count();
    assert_eq!(roots, 1);
    assert_eq!(sns.sent().len(), 1, "SNS hears of the group once");
    let outcomes: Vec<Outcome> = ledger.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Sent).count(), 1);
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Folded).count(),
        20 - 1 - max_replies
    );
}

/// Memory state whose group writes always lose a race once the group exists: what a hot group
/// looks like to the unlucky invocation when many write it at once.
#[derive(Debug, Clone, Default)]
struct Contended(MemoryState);

impl StateStore for Contended {
    async fn claim(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StateError> {
        self.0.claim(event_id, now, lease, ttl).await
    }
    async fn settle(&self, event_id: &str, done: bool) -> Result<(), StateError> {
        self.0.settle(event_id, done).await
    }
    async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StateError> {
        self.0.active_silences(now).await
    }
    async fn group(&self, key: &str) -> Result<Option<GroupState>, StateError> {
        self.0.group(key).await
    }
    async fn put_group(
        &self,
        group: &GroupState,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        if expected_version.is_some() {
            return Ok(false);
        }
        self.0.put_group(group, expected_version, ttl).await
    }
    async fn add_thread(&self, key: &str, thread: &Thread) -> Result<(), StateError> {
        self.0.add_thread(key, thread).await
    }
    async fn pointed_group(&self, pointer: &str) -> Result<Option<String>, StateError> {
        self.0.pointed_group(pointer).await
    }
    async fn point(&self, pointer: &str, group_key: &str, ttl: Duration) -> Result<(), StateError> {
        self.0.point(pointer, group_key, ttl).await
    }
    async fn reserve_slot(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        slots: u32,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Slot, StateError> {
        self.0
            .reserve_slot(channel, now, slots, interval, max_wait)
            .await
    }
    async fn add_to_digest(
        &self,
        channel: &str,
        title: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), StateError> {
        self.0.add_to_digest(channel, title, now, ttl).await
    }
    async fn take_digest(&self, channel: &str) -> Result<Option<Digest>, StateError> {
        self.0.take_digest(channel).await
    }
    async fn record(&self, entry: &LedgerEntry, ttl: Duration) -> Result<(), StateError> {
        self.0.record(entry, ttl).await
    }
}

#[tokio::test]
async fn a_repeat_that_loses_every_race_on_its_open_group_is_counted_not_posted_again() {
    let (slack, sns) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
    );
    let state = Contended::default();
    let d = deps(
        slack.clone(),
        sns.clone(),
        state.clone(),
        NoiseSettings::default(),
    );
    let first = handle(denied_by(1, user("mallory"), t(0)), &d, Utc::now())
        .await
        .expect("first");
    assert_eq!(first.alerts[0].outcome, Decision::Notified);
    let second = handle(denied_by(2, user("mallory"), t(1)), &d, Utc::now())
        .await
        .expect("second");
    assert_eq!(second.alerts[0].outcome, Decision::Folded, "{second:?}");
    assert_eq!(slack.sent().len(), 1, "not posted again");
    assert_eq!(sns.sent().len(), 1);
    let row = state.0.ledger().pop().expect("ledger row");
    assert_eq!(row.outcome, Outcome::Folded);
    let reason = row.reason.unwrap_or_default();
    assert!(reason.contains("lost races"), "{reason}");
}
