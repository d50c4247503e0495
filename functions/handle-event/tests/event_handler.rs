//! The event handler against in-memory ports: it journals what can be a cause (writes) or
//! evidence (denied calls) before deciding anything, notifies at or above its threshold
//! (always for audit tampering), and fails the invocation only when something would be lost.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use handle_alarm::deps::Budgets;
use handle_alarm::fakes::{
    FailingNotifier, FixedChangeSource, MemoryState, QuietServices, RecordingNotifier,
};
use handle_alarm::handler::{Decision, HandlerError};
use handle_event::{Config, Deps, handle};
use serde_json::{Value, json};
use vigil_adapters::delivery::Channels;
use vigil_adapters::enrichment::Enricher;
use vigil_adapters::journal::{ChangeRecorder, JournalError, Recorded};
use vigil_core::intake::RefusalCode;
use vigil_core::model::{Change, Kind, Severity};
use vigil_core::noise::{NoiseSettings, Outcome};
use vigil_core::pipeline::Settings;
use vigil_core::ports::{ChangeBatch, Notifier};
use vigil_core::route::{Destination, Owners};
use vigil_testkit::repo_root;

/// The journal in memory: what was recorded, with its TTL.
#[derive(Debug, Clone, Default)]
struct MemoryJournal {
    entries: Arc<Mutex<Vec<(Change, Duration)>>>,
}

impl MemoryJournal {
    fn entries(&self) -> Vec<(Change, Duration)> {
        self.entries.lock().unwrap().clone()
    }
}

impl ChangeRecorder for MemoryJournal {
    async fn record(&self, change: &Change, ttl: Duration) -> Result<Recorded, JournalError> {
        let mut entries = self.entries.lock().unwrap();
        if entries.iter().any(|(c, _)| c.event_id == change.event_id) {
            return Ok(Recorded::AlreadyThere);
        }
        entries.push((change.clone(), ttl));
        Ok(Recorded::New)
    }
}

/// A journal whose table is unreachable.
#[derive(Debug, Clone, Copy)]
struct BrokenJournal;

impl ChangeRecorder for BrokenJournal {
    async fn record(&self, _change: &Change, _ttl: Duration) -> Result<Recorded, JournalError> {
        Err(JournalError::Write {
            message: "ProvisionedThroughputExceededException: slow down".into(),
            retryable: true,
        })
    }
}

const TTL: Duration = Duration::from_secs(48 * 3_600);

fn deps<R: ChangeRecorder, S: Notifier, N: Notifier>(
    journal: R,
    slack: S,
    sns: N,
    min_severity: Severity,
) -> Deps<R, FixedChangeSource, QuietServices, QuietServices, S, N, MemoryState> {
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
                sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:security-alerts".into()),
                ..Destination::default()
            })),
            Budgets {
                lookback: chrono::Duration::minutes(60),
                enrich: Duration::from_secs(2),
                delivery: Duration::from_secs(2),
            },
        ),
        journal,
        journal_ttl: TTL,
        min_severity,
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-20T09:10:00Z".parse().unwrap()
}

/// The demo's CloudTrail records, as CloudTrail wrote them.
fn demo_records() -> Vec<Value> {
    let dir = repo_root().join("examples/demo/agent-tool-access-denied/trail");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            doc["Records"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// One demo record wrapped the way EventBridge delivers it.
fn eventbridge(event_name: &str) -> Value {
    let record = demo_records()
        .into_iter()
        .find(|r| r["eventName"] == event_name)
        .unwrap_or_else(|| panic!("no {event_name} in the demo trail"));
    json!({
        "version": "0",
        "id": format!("eb-{event_name}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": "111122223333",
        "time": record["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    })
}

fn fixture(rel: &str) -> Value {
    let path = repo_root().join("tests/fixtures/aws-events").join(rel);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_detach_role_policy_is_journaled_with_its_ttl_and_notified_at_the_default_threshold() {
    let journal = MemoryJournal::default();
    let slack = RecordingNotifier::new("slack");
    let deps = deps(
        journal.clone(),
        slack.clone(),
        RecordingNotifier::new("sns"),
        Severity::Medium,
    );
    let out = handle(eventbridge("DetachRolePolicy"), &deps, now())
        .await
        .expect("handled");

    let entries = journal.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.event_name, "DetachRolePolicy");
    assert_eq!(
        entries[0].0.event_id,
        "1a61de45-2460-4075-b4bd-e85b42a67cd2"
    );
    assert_eq!(entries[0].1, TTL);
    let alert = &out.alerts[0];
    assert_eq!(alert.kind, Kind::PermissionChange);
    assert_eq!(alert.severity, Severity::Medium);
    assert!(alert.journaled);
    assert_eq!(alert.outcome, Decision::Notified);
    assert_eq!(out.journaled, 1);
    assert_eq!(slack.sent().len(), 1);
}

#[tokio::test]
async fn below_the_threshold_a_change_is_only_journaled() {
    let journal = MemoryJournal::default();
    let slack = RecordingNotifier::new("slack");
    let sns = RecordingNotifier::new("sns");
    let deps = deps(journal.clone(), slack.clone(), sns.clone(), Severity::High);
    let out = handle(eventbridge("DetachRolePolicy"), &deps, now())
        .await
        .expect("handled");
    assert_eq!(out.alerts[0].outcome, Decision::Journaled);
    assert!(out.alerts[0].deliveries.is_empty());
    assert_eq!(journal.entries().len(), 1);
    assert!(slack.sent().is_empty() && sns.sent().is_empty());
}

#[tokio::test]
async fn with_state_a_change_below_the_threshold_is_in_the_ledger_and_a_duplicate_sends_nothing() {
    let journal = MemoryJournal::default();
    let (slack, sns) = (
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
    );
    let state = MemoryState::default();
    let mut below = deps(journal.clone(), slack.clone(), sns.clone(), Severity::High);
    below.base = below
        .base
        .with_state(state.clone(), NoiseSettings::default(), true);
    handle(eventbridge("DetachRolePolicy"), &below, now())
        .await
        .expect("handled");
    let ledger = state.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].outcome, Outcome::Suppressed);
    assert!(
        ledger[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("below the notification threshold"),
        "{:?}",
        ledger[0]
    );

    // At the default threshold the same change is notified once, however often it arrives.
    let mut notified = deps(journal, slack.clone(), sns.clone(), Severity::Medium);
    notified.base = notified
        .base
        .with_state(state.clone(), NoiseSettings::default(), true);
    for _ in 0..3 {
        handle(eventbridge("DetachRolePolicy"), &notified, now())
            .await
            .expect("handled");
    }
    assert_eq!(slack.sent().len(), 1);
    assert_eq!(sns.sent().len(), 1);
    let outcomes: Vec<Outcome> = state.ledger().iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Suppressed,
            Outcome::Sent,
            Outcome::Suppressed,
            Outcome::Suppressed
        ]
    );
}

#[tokio::test]
async fn stop_logging_alerts_at_once_whatever_the_threshold() {
    let journal = MemoryJournal::default();
    let slack = RecordingNotifier::new("slack");
    let deps = deps(
        journal.clone(),
        slack.clone(),
        RecordingNotifier::new("sns"),
        Severity::Critical,
    );
    // This StopLogging failed (InvalidTrailNameException), so it is rated high, not
    // critical: audit tampering is notified whatever its severity.
    let out = handle(
        fixture("cloudtrail-api-call-eventbridge/panther-cloudtrail-stoplogging-error-invalidtrailname.json"),
        &deps,
        now(),
    )
    .await
    .expect("handled");
    let alert = &out.alerts[0];
    assert_eq!(alert.kind, Kind::AuditTampering);
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.outcome, Decision::Notified);
    assert_eq!(slack.sent().len(), 1);

    let out = handle(
        fixture("cloudtrail-api-call-eventbridge/stratus-cloudtrail-stoplogging.json"),
        &deps,
        now(),
    )
    .await
    .expect("handled");
    assert_eq!(out.alerts[0].severity, Severity::Critical);
    assert!(out.alerts[0].journaled, "an effective write is journaled");
    assert_eq!(slack.sent().len(), 2);
}

#[tokio::test]
async fn a_log_file_journals_its_writes_and_denied_calls_but_not_successful_reads() {
    let journal = MemoryJournal::default();
    let slack = RecordingNotifier::new("slack");
    let deps = deps(
        journal.clone(),
        slack.clone(),
        RecordingNotifier::new("sns"),
        Severity::Critical,
    );
    let records = demo_records();
    let out = handle(json!({ "Records": records }), &deps, now())
        .await
        .expect("handled");
    let expected: Vec<&str> = records
        .iter()
        .filter(|r| r["readOnly"] == false || r.get("errorCode").is_some())
        .filter_map(|r| r["eventID"].as_str())
        .collect();
    let mut journaled: Vec<String> = journal
        .entries()
        .into_iter()
        .map(|(c, _)| c.event_id)
        .collect();
    journaled.sort();
    let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
    expected.sort();
    assert_eq!(journaled, expected);
    assert_eq!(out.journaled, expected.len());
    assert_eq!(out.alerts.len(), records.len());
    let reads = out
        .alerts
        .iter()
        .filter(|a| a.outcome == Decision::BelowThreshold)
        .count();
    assert_eq!(reads, records.len() - expected.len());
    assert!(
        slack.sent().is_empty(),
        "nothing in the demo trail is critical"
    );
}

#[tokio::test]
async fn a_journal_failure_for_a_change_nobody_was_told_about_fails_the_invocation() {
    let slack = RecordingNotifier::new("slack");
    let deps = deps(
        BrokenJournal,
        slack.clone(),
        RecordingNotifier::new("sns"),
        Severity::High,
    );
    let err = handle(eventbridge("DetachRolePolicy"), &deps, now())
        .await
        .expect_err("the change would be lost");
    assert_eq!(err.error_type(), "Internal");
    assert!(err.retryable());
    assert!(
        err.to_string().contains("ProvisionedThroughputExceeded"),
        "{err}"
    );
}

#[tokio::test]
async fn a_journal_failure_does_not_fail_a_delivered_notification() {
    let deps = deps(
        BrokenJournal,
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        Severity::Medium,
    );
    let out = handle(eventbridge("DetachRolePolicy"), &deps, now())
        .await
        .expect("delivered; a retry would only repeat it");
    assert_eq!(out.alerts[0].outcome, Decision::Notified);
    assert!(!out.alerts[0].journaled);
    assert_eq!(out.journaled, 0);
}

#[tokio::test]
async fn every_channel_failing_on_a_notified_change_fails_the_invocation() {
    let journal = MemoryJournal::default();
    let deps = deps(
        journal.clone(),
        FailingNotifier::new("slack", true),
        FailingNotifier::new("sns", true),
        Severity::Medium,
    );
    let err = handle(eventbridge("DetachRolePolicy"), &deps, now())
        .await
        .expect_err("nobody told");
    assert!(
        matches!(err, HandlerError::DeliveryFailed { .. }),
        "{err:?}"
    );
    assert_eq!(
        journal.entries().len(),
        1,
        "journaled before delivery was tried"
    );
}

#[tokio::test]
async fn an_alarm_sent_to_the_event_function_is_refused_naming_handle_alarm() {
    let journal = MemoryJournal::default();
    let deps = deps(
        journal.clone(),
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        Severity::Medium,
    );
    let alarm: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("examples/demo/agent-tool-access-denied/event.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let err = handle(alarm, &deps, now()).await.expect_err("refused");
    let HandlerError::Refused(intake) = &err else {
        panic!("refused, not {err:?}")
    };
    assert_eq!(intake.code, RefusalCode::Unsupported);
    assert!(intake.reason.contains("handle-alarm"), "{intake:?}");
    assert!(journal.entries().is_empty());
}

#[tokio::test]
async fn a_config_change_below_the_threshold_is_logged_not_journaled() {
    let journal = MemoryJournal::default();
    let deps = deps(
        journal.clone(),
        RecordingNotifier::new("slack"),
        RecordingNotifier::new("sns"),
        Severity::Medium,
    );
    let out = handle(
        fixture("config-compliance-change/awsdocs-sns-configuration-item-change-sg-create.json"),
        &deps,
        now(),
    )
    .await
    .expect("handled");
    assert_eq!(out.alerts[0].outcome, Decision::BelowThreshold);
    assert!(journal.entries().is_empty());
}

#[test]
fn the_event_function_requires_its_table_and_reads_its_threshold() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &'static str| {
            Ok(pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string()))
        }
    };
    let e = Config::from_lookup(vars(&[])).unwrap_err();
    assert_eq!(e.variable, "VIGIL_TABLE_NAME");
    let c = Config::from_lookup(vars(&[("VIGIL_TABLE_NAME", "vigil")])).unwrap();
    assert_eq!(c.min_severity, Severity::Medium);
    assert_eq!(c.table_name, "vigil");
    let c = Config::from_lookup(vars(&[
        ("VIGIL_TABLE_NAME", "vigil"),
        ("VIGIL_EVENT_MIN_SEVERITY", "high"),
    ]))
    .unwrap();
    assert_eq!(c.min_severity, Severity::High);
    let e = Config::from_lookup(vars(&[
        ("VIGIL_TABLE_NAME", "vigil"),
        ("VIGIL_EVENT_MIN_SEVERITY", "urgent"),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, "VIGIL_EVENT_MIN_SEVERITY");
}
