//! The three situations vigil exists for (examples/demo): each names the right kind and the
//! right probable cause first, and read-only or unrelated calls are never ranked as causes.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::path::Path;

use serde_json::Value;
use vigil_core::cloudtrail;
use vigil_core::enrich::{self, Context};
use vigil_core::intake;
use vigil_core::model::Change;
use vigil_core::pipeline::{self, Report, Settings};
use vigil_core::redact::Redactor;
use vigil_core::route::Owners;
use vigil_tests::repo_root;

fn read_trail(dir: &Path) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("trail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        let batch = cloudtrail::parse_trail(&std::fs::read_to_string(&f).expect("trail file"))
            .expect("a CloudTrail log file");
        assert!(
            batch.skipped.is_empty(),
            "{}: {:?}",
            f.display(),
            batch.skipped
        );
        changes.extend(batch.changes);
    }
    changes
}

fn replay(situation: &str, minutes_after: i64) -> (Report, Vec<Change>, Value) {
    let dir = repo_root().join("examples/demo").join(situation);
    let owners = Owners::from_yaml(
        &std::fs::read_to_string(repo_root().join("examples/owners.yaml")).expect("owners"),
    )
    .expect("valid owners");
    let settings = Settings::with_defaults(owners);
    let mut alerts =
        intake::parse(&std::fs::read(dir.join("event.json")).expect("event")).expect("understood");
    assert_eq!(alerts.len(), 1);
    let alert = alerts.remove(0);
    let changes = read_trail(&dir.join("trail"));
    let window = enrich::window_for(alert.time, chrono::Duration::minutes(60));
    let ctx = Context::from_changes(
        window,
        alert.time + chrono::Duration::minutes(minutes_after),
        changes.clone(),
        enrich::sources_for(&alert),
    );
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    (
        pipeline::evaluate(alert, &ctx, &settings, &Redactor::new()),
        changes,
        expected,
    )
}

fn check(situation: &str) {
    let (report, changes, expected) = replay(situation, 20);
    assert_eq!(
        report.finding.kind.as_str(),
        expected["kind"],
        "{situation}: kind; evidence {:?}",
        report.finding.evidence
    );
    let top = report.finding.probable_causes.first().unwrap_or_else(|| {
        panic!(
            "{situation}: no probable cause; notes {:?}",
            report.finding.context_notes
        )
    });
    assert_eq!(
        top.event_id, expected["top_cause"]["event_id"],
        "{situation}: top cause {top:?}"
    );
    assert_eq!(top.event_name, expected["top_cause"]["event_name"]);
    for cause in &report.finding.probable_causes {
        let change = changes
            .iter()
            .find(|c| c.event_id == cause.event_id)
            .expect("a cause is a change from the trail");
        assert!(
            !change.read_only,
            "{situation}: read-only {} ranked as a cause",
            change.event_name
        );
        assert!(
            change.error_code.is_none(),
            "{situation}: failed call ranked as a cause"
        );
        assert!(
            change.time <= report.alert.time
                && change.time >= report.alert.time - chrono::Duration::minutes(60),
            "{situation}: cause outside the window"
        );
    }
    assert!(
        !report.finding.runbook.is_empty(),
        "{situation}: runbook steps"
    );
    assert!(
        !report.notifications.slack.is_empty(),
        "{situation}: routed to Slack"
    );
}

#[test]
fn a_tool_lambda_failing_after_its_role_lost_a_policy_is_access_denied_caused_by_the_detach() {
    check("agent-tool-access-denied");
}

#[test]
fn a_surge_of_blocked_prompt_attacks_is_an_injection_surge_next_to_the_guardrail_change() {
    check("assistant-injection-surge");
}

#[test]
fn bedrock_throttling_after_a_capacity_change_names_the_change() {
    check("bedrock-throttling-capacity");
}

#[test]
fn without_context_an_error_alarm_is_an_error_spike_not_access_denied() {
    let dir = repo_root().join("examples/demo/agent-tool-access-denied");
    let alert = intake::parse(&std::fs::read(dir.join("event.json")).expect("event"))
        .expect("understood")
        .remove(0);
    let owners = Owners::from_yaml(
        &std::fs::read_to_string(repo_root().join("examples/owners.yaml")).expect("owners"),
    )
    .expect("valid");
    let report = pipeline::evaluate(
        alert,
        &Context::default(),
        &Settings::with_defaults(owners),
        &Redactor::new(),
    );
    assert_eq!(report.finding.kind.as_str(), "error_spike");
}

#[test]
fn a_lookup_right_after_the_alarm_with_nothing_found_says_cloudtrail_may_lag() {
    let dir = repo_root().join("examples/demo/bedrock-throttling-capacity");
    let alert = intake::parse(&std::fs::read(dir.join("event.json")).expect("event"))
        .expect("understood")
        .remove(0);
    let window = enrich::window_for(alert.time, chrono::Duration::minutes(60));
    let ctx = Context::from_changes(
        window,
        alert.time + chrono::Duration::minutes(2),
        Vec::new(),
        enrich::sources_for(&alert),
    );
    let owners = Owners::from_yaml(
        &std::fs::read_to_string(repo_root().join("examples/owners.yaml")).expect("owners"),
    )
    .expect("valid");
    let report = pipeline::evaluate(
        alert,
        &ctx,
        &Settings::with_defaults(owners),
        &Redactor::new(),
    );
    assert!(report.finding.probable_causes.is_empty());
    assert!(
        report
            .finding
            .context_notes
            .iter()
            .any(|n| n.contains("No change found yet (CloudTrail can lag up to ~15 min)")),
        "{:?}",
        report.finding.context_notes
    );
}
