//! The `vigil` binary as a user runs it: exit statuses and the `--format json` contract.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("vigil runs")
}

fn demo(situation: &str) -> (String, String) {
    (
        format!("examples/demo/{situation}/event.json"),
        format!("examples/demo/{situation}/trail"),
    )
}

#[test]
fn replay_json_follows_the_documented_contract() {
    let (event, trail) = demo("agent-tool-access-denied");
    let out = vigil(&[
        "replay",
        &event,
        "--trail",
        &trail,
        "--owners",
        "examples/owners.yaml",
        "--format",
        "json",
        "--now",
        "2026-11-20T09:40:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(doc["input"], "alarm_direct");
    assert!(doc["alert"].is_object());
    let finding = &doc["finding"];
    for key in [
        "kind",
        "severity",
        "title",
        "summary",
        "rule",
        "evidence",
        "probable_causes",
        "runbook",
    ] {
        assert!(!finding[key].is_null(), "finding.{key} present");
    }
    assert_eq!(finding["kind"], "access_denied");
    let cause = &finding["probable_causes"][0];
    for key in [
        "event_id",
        "event_name",
        "event_source",
        "actor",
        "time",
        "source_ip",
        "reason",
    ] {
        assert!(cause.get(key).is_some(), "probable_causes[0].{key} present");
    }
    assert_eq!(cause["event_name"], "DetachRolePolicy");
    assert!(
        doc["route"]["matched"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(doc["notifications"]["slack"].is_array());
    assert!(doc["notifications"]["sns"].is_array());
}

#[test]
fn a_refused_event_exits_2_with_the_error_as_json() {
    let out = vigil(&[
        "replay",
        "tests/fixtures/aws-events/malformed/notify-slack-sns-plain-text-message.json",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("error JSON on stdout");
    assert_eq!(doc["error"]["code"], "unsupported");
    assert!(
        doc["error"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not JSON"))
    );
    assert!(
        doc["error"]["received"]
            .as_str()
            .is_some_and(|r| r.contains("MessageId"))
    );
}

#[test]
fn a_refused_event_in_text_mode_explains_on_stderr_and_prints_nothing() {
    let out = vigil(&[
        "replay",
        "tests/fixtures/aws-events/malformed/awsdocs-raw-log-iam-createrole-invalid-json-as-published.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn a_missing_event_file_is_refused_not_crashed() {
    let out = vigil(&["replay", "does/not/exist.json", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("error JSON");
    assert!(
        doc["error"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot read"))
    );
}

#[test]
fn every_real_payload_exits_0_or_2_and_nothing_else() {
    let dir = root().join("tests/fixtures/aws-events");
    let mut seen = 0;
    for category in std::fs::read_dir(&dir).expect("fixtures") {
        let category = category.expect("entry").path();
        if !category.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&category).expect("category") {
            let file = file.expect("entry").path();
            let out = vigil(&[
                "replay",
                file.to_str().expect("utf-8 path"),
                "--format",
                "json",
            ]);
            let code = out.status.code();
            assert!(
                matches!(code, Some(0) | Some(2)),
                "{} exited {code:?}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let _: serde_json::de::StreamDeserializer<_, Value> =
                serde_json::Deserializer::from_slice(&out.stdout).into_iter();
            for doc in serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>() {
                let doc = doc.unwrap_or_else(|e| panic!("{}: stdout is JSON: {e}", file.display()));
                assert!(doc.get("finding").is_some() || doc.get("error").is_some());
            }
            seen += 1;
        }
    }
    assert!(seen >= 60);
}

#[test]
fn an_invalid_owners_file_exits_1_and_names_the_problem() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let owners = dir.join("owners.yaml");
    std::fs::write(
        &owners,
        "version: 1\nroutes:\n  - name: x\n    team: t\n    colour: blue\ndefault:\n  team: d\n",
    )
    .expect("write");
    let (event, _) = demo("agent-tool-access-denied");
    let out = vigil(&["replay", &event, "--owners", owners.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("colour"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_runbooks_file_is_tried_first_and_a_bad_one_exits_1_naming_the_step() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-runbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let good = dir.join("runbooks.yaml");
    std::fs::write(
        &good,
        "runbooks:\n  access_denied:\n    - steps:\n        - do: check\n          title: Our check of {role}\n          command: aws iam get-role --role-name {role}\n",
    )
    .expect("write");
    let (event, trail) = demo("agent-tool-access-denied");
    let out = vigil(&[
        "replay",
        &event,
        "--trail",
        &trail,
        "--runbooks",
        good.to_str().expect("path"),
        "--format",
        "json",
        "--now",
        "2026-11-20T09:40:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let steps = doc["finding"]["runbook"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(
        steps[0]["title"],
        "Our check of agent-tool-order-lookup-role"
    );
    assert_eq!(steps[0]["action"], "check");

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "runbooks:\n  access_denied:\n    - steps:\n        - do: check\n          title: x\n          command: aws iam get-role --role-name {rol}\n",
    )
    .expect("write");
    let out = vigil(&["replay", &event, "--runbooks", bad.to_str().expect("path")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runbooks.access_denied[0].steps[0].command: unknown placeholder `{rol}`"),
        "{err}"
    );
}

#[test]
fn routes_test_says_which_route_and_why() {
    let (event, trail) = demo("bedrock-throttling-capacity");
    let out = vigil(&[
        "routes",
        "test",
        &event,
        "--owners",
        "examples/owners.yaml",
        "--trail",
        &trail,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bedrock-claude-sonnet-throttles"), "{text}");
    assert!(text.contains("throttle_spike"), "{text}");
    assert!(text.contains("ai-platform"), "{text}");
}

#[test]
fn slack_and_sns_formats_print_the_rendered_messages() {
    let (event, trail) = demo("assistant-injection-surge");
    let out = vigil(&[
        "replay",
        &event,
        "--trail",
        &trail,
        "--owners",
        "examples/owners.yaml",
        "--format",
        "slack",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let slack: Value = serde_json::from_slice(&out.stdout).expect("slack JSON");
    assert!(slack["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        slack["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b.len() <= 50)
    );
    let out = vigil(&[
        "replay",
        &event,
        "--trail",
        &trail,
        "--owners",
        "examples/owners.yaml",
        "--format",
        "sns",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let sns: Value = serde_json::from_slice(&out.stdout).expect("sns JSON");
    assert!(sns["subject"].as_str().is_some_and(|s| s.len() <= 100));
    let out = vigil(&[
        "replay",
        &event,
        "--trail",
        &trail,
        "--owners",
        "examples/owners.yaml",
        "--format",
        "chatbot",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let chatbot: Value = serde_json::from_slice(&out.stdout).expect("custom notification JSON");
    assert_eq!(chatbot["source"], "custom");
    assert!(
        chatbot["content"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("injection"))
    );
}

/// `vigil replay --aws` runs the same pipeline with the AWS adapters: here against the local
/// AWS on loopback, seeded with the demo's CloudTrail records, reached through AWS_ENDPOINT_URL.
#[tokio::test(flavor = "multi_thread")]
async fn replay_with_aws_enriches_from_lookup_events() {
    let aws = vigil_testkit::LocalAws::start().await;
    let dir = root().join("examples/demo/agent-tool-access-denied/trail");
    for entry in std::fs::read_dir(&dir).expect("trail") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("trail file");
        aws.seed_cloudtrail(serde_json::from_str(&text).expect("json"))
            .await;
    }
    let (event, _) = demo("agent-tool-access-denied");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .args([
            "replay",
            &event,
            "--aws",
            "--owners",
            "examples/owners.yaml",
            "--format",
            "json",
            "--now",
            "2026-11-20T09:40:00Z",
        ])
        .env("AWS_ENDPOINT_URL", aws.aws_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("vigil runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["finding"]["kind"], "access_denied", "{doc:#}");
    assert_eq!(
        doc["finding"]["probable_causes"][0]["event_name"],
        "DetachRolePolicy"
    );
    let lookups = aws
        .requests("service=cloudtrail&operation=LookupEvents")
        .await;
    assert!(!lookups.is_empty(), "the CLI called LookupEvents");
}
