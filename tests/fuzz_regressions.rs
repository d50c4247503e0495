//! Saved fuzz inputs replayed in every `cargo test`, through the very checks the fuzz targets
//! run (`tests/fuzz_checks.rs`): crashes `make fuzz` once found, and inputs chosen to hold each
//! parser to its contract at the edges (accept what it must, refuse with a reason what it
//! cannot use, never panic).
//!
//! Layout: `tests/fixtures/fuzz-regressions/<target>/<outcome>-<what>.<ext>`, where `<target>`
//! is a fuzz target's name and `<outcome>` is `accepted` or `refused`: what the parser must make
//! of the file. A new crash goes in as the minimized artifact (`cargo fuzz tmin`), renamed.

// A test fails loudly on purpose: expect/panic are how it reports.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use vigil_tests::fuzz_checks::{Outcome, TARGETS};
use vigil_tests::{fixtures_dir, repo_root};

fn regressions_dir() -> PathBuf {
    fixtures_dir().join("fuzz-regressions")
}

fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let dir = regressions_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no saved inputs", dir.display());
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name");
        let expected = if name.starts_with("accepted-") {
            Outcome::Accepted
        } else if name.starts_with("refused-") {
            Outcome::Refused
        } else {
            panic!("{name}: name it accepted-* or refused-* (what {target} must make of it)");
        };
        let bytes = std::fs::read(&path).expect("readable");
        assert_eq!(check(&bytes), expected, "{target}: {name}");
    }
}

#[test]
fn every_folder_is_a_fuzz_target() {
    for entry in std::fs::read_dir(regressions_dir()).expect("the regressions folder") {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz-regressions/{name} is not a fuzz target (see fuzz/fuzz_targets)"
        );
    }
}

#[test]
fn every_fuzz_target_has_a_check_and_saved_inputs() {
    let mut targets: Vec<String> = std::fs::read_dir(repo_root().join("fuzz").join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".rs"))
                .map(str::to_owned)
        })
        .collect();
    targets.sort();
    let mut checks: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    checks.sort();
    assert_eq!(targets, checks, "fuzz targets and TARGETS differ");
    for target in &targets {
        assert!(
            regressions_dir().join(target).is_dir(),
            "no tests/fixtures/fuzz-regressions/{target}"
        );
    }
}

#[test]
fn intake() {
    replay("intake");
}

#[test]
fn cloudtrail_trail() {
    replay("cloudtrail_trail");
}

#[test]
fn lookup_events() {
    replay("lookup_events");
}

#[test]
fn owners_yaml() {
    replay("owners_yaml");
}

#[test]
fn rules_yaml() {
    replay("rules_yaml");
}

#[test]
fn runbooks_yaml() {
    replay("runbooks_yaml");
}

#[test]
fn slack_verify() {
    replay("slack_verify");
}

#[test]
fn slack_actions() {
    replay("slack_actions");
}
