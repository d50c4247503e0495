//! The role `template.yaml` gives SlackActions allows exactly what the function does to the
//! state table: `PutItem` and `GetItem`, on the partitions it writes (`dynamodb:LeadingKeys`).
//! A new key prefix or call in the code without the template (or the reverse) fails here
//! rather than as AccessDenied after a deploy.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use slack_actions::handler::REPLAY_CLAIM_PREFIX;
use vigil_adapters::state::{SILENCE_PARTITION, claim_partition, ledger_partition};

const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The text of the role's state-table statement.
fn statement() -> &'static str {
    let start = TEMPLATE
        .find("- Sid: StateTableOwnPartitions")
        .expect("SlackActionsRole has a StateTableOwnPartitions statement");
    let rest = TEMPLATE.get(start..).expect("in bounds");
    let end = rest
        .get(1..)
        .and_then(|r| r.find("- Sid:"))
        .map_or(rest.len(), |i| i + 1);
    rest.get(..end).expect("in bounds")
}

/// The `dynamodb:LeadingKeys` patterns: the list items after that key.
fn leading_keys(statement: &str) -> Vec<String> {
    let after = statement
        .split("dynamodb:LeadingKeys:")
        .nth(1)
        .expect("the statement has a dynamodb:LeadingKeys condition");
    after
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| l.starts_with("- "))
        .map(|l| l.trim_start_matches("- ").trim_matches('"').to_owned())
        .collect()
}

/// IAM `StringLike` with the only wildcard the template uses: a trailing `*`.
fn matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => pattern == key,
    }
}

#[test]
fn the_role_covers_every_partition_the_function_writes_and_no_other() {
    let statement = statement();
    assert!(
        statement.contains("ForAllValues:StringLike:"),
        "{statement}"
    );
    let patterns = leading_keys(statement);
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 9, 14, 5)
        .single()
        .expect("a time");
    let written = [
        SILENCE_PARTITION.to_owned(),
        ledger_partition(at),
        claim_partition(&format!("{REPLAY_CLAIM_PREFIX}v0=0123abcd")),
    ];
    for key in &written {
        assert!(
            patterns.iter().any(|p| matches(p, key)),
            "{key} is written by slack-actions but not allowed by {patterns:?}"
        );
    }
    // Nothing of the alarm and event functions' state.
    for other in [
        claim_partition("0c7d5a8e-aaaa-bbbb-cccc-ddddeeeeffff"),
        "group#acct/us-east-1/x".to_owned(),
        "rate#C123".to_owned(),
        "digest#C123".to_owned(),
        "change#2026-11-20".to_owned(),
        "pointer#x".to_owned(),
    ] {
        assert!(
            !patterns.iter().any(|p| matches(p, &other)),
            "{other} is allowed by {patterns:?}"
        );
    }
    assert_eq!(patterns.len(), written.len(), "{patterns:?}");
}

#[test]
fn the_role_has_only_the_calls_the_function_makes() {
    let statement = statement();
    let actions: Vec<&str> = statement
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- dynamodb:"))
        .collect();
    assert_eq!(actions, ["PutItem", "GetItem"], "{statement}");
}
