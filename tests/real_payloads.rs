//! Every real, published AWS payload in `tests/fixtures/aws-events` is either understood or
//! refused with an error naming the input and the reason; none crashes.
//!
//! The outcome of each file is pinned in `tests/fixtures/expected-intake.tsv`, so a change in
//! what vigil accepts or how it classifies shows up as a diff. Regenerate it deliberately with
//! `VIGIL_BLESS=1 cargo test -p vigil-tests --test real_payloads` and review the diff.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use vigil_core::enrich::Context;
use vigil_core::pipeline::{self, Settings};
use vigil_core::redact::Redactor;
use vigil_core::route::{Destination, Owners};
use vigil_core::{cloudtrail, intake};
use vigil_tests::{fixtures_dir, json_files};

/// One line per file: path, outcome, detail.
fn outcome(bytes: &[u8]) -> (String, String) {
    match intake::parse(bytes) {
        Ok(alerts) => {
            let settings = Settings::with_defaults(Owners::single(Destination {
                team: "t".into(),
                ..Destination::default()
            }));
            let redactor = Redactor::new();
            let findings: Vec<String> = alerts
                .into_iter()
                .map(|alert| {
                    let (family, name) = (alert.input.as_str(), alert.name().to_string());
                    let report =
                        pipeline::evaluate(alert, &Context::default(), &settings, &redactor);
                    let f = &report.finding;
                    format!(
                        "{family} {name:?} -> {} {} (rule {})",
                        f.kind, f.severity, f.rule
                    )
                })
                .collect();
            ("understood".into(), findings.join("; "))
        }
        Err(refusal) => {
            assert!(
                !refusal.received.is_empty(),
                "a refusal names what was received"
            );
            assert!(!refusal.reason.is_empty(), "a refusal says why");
            // Context documents (LookupEvents responses) are understood as CloudTrail context.
            if let Ok(text) = std::str::from_utf8(bytes)
                && let Ok(batch) = cloudtrail::parse_trail(text)
                && !batch.changes.is_empty()
                && text.contains("\"Events\"")
            {
                return (
                    "understood".into(),
                    format!(
                        "context: {} change(s), {} record(s) skipped",
                        batch.changes.len(),
                        batch.skipped.len()
                    ),
                );
            }
            (
                "refused".into(),
                format!("{}: {}", refusal.code.as_str(), refusal),
            )
        }
    }
}

#[test]
fn every_real_payload_is_understood_or_refused_and_none_crashes() {
    let root = fixtures_dir().join("aws-events");
    let files = json_files(&root);
    assert!(
        files.len() >= 60,
        "expected the full fixture set, found {}",
        files.len()
    );

    let mut lines = Vec::new();
    let (mut understood, mut refused, mut crashed) = (0, 0, 0);
    for rel in &files {
        let bytes = std::fs::read(root.join(rel)).expect("fixture readable");
        let result = catch_unwind(AssertUnwindSafe(|| outcome(&bytes)));
        let (status, detail) = match result {
            Ok(o) => o,
            Err(_) => ("crashed".to_string(), "panic".to_string()),
        };
        match status.as_str() {
            "understood" => understood += 1,
            "refused" => refused += 1,
            _ => crashed += 1,
        }
        lines.push(format!(
            "{}\t{}\t{}",
            rel.display(),
            status,
            detail.replace(['\n', '\t'], " ")
        ));
    }
    let summary = format!(
        "# {} files: {understood} understood, {refused} refused, {crashed} crashed",
        files.len()
    );
    println!("{summary}");
    let actual = format!("{summary}\n{}\n", lines.join("\n"));

    let expected_path = fixtures_dir().join("expected-intake.tsv");
    if std::env::var_os("VIGIL_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).expect("write expected-intake.tsv");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(crashed, 0, "no input may crash vigil:\n{actual}");
    assert_eq!(
        actual, expected,
        "outcomes changed; review and re-bless (see module docs)"
    );
}
