//! What each fuzz target (`fuzz/fuzz_targets/`) does with one input, shared with
//! `tests/fuzz_regressions.rs` so a saved crash replays through exactly the code that found it.
//!
//! Each check feeds its input to one parser and, when the parser accepts it, through the rest
//! of the pure pipeline, and asserts the parser's documented contract on the way: an accepted
//! input is usable, a refused one says why, and nothing panics. A failed assertion is a finding
//! just like a panic, which is why these are assertions and not errors.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use vigil_core::classify::{self, RuleSet};
use vigil_core::cloudtrail::{self, TrailBatch};
use vigil_core::enrich::{self, Context, Correlation};
use vigil_core::intake;
use vigil_core::model::{Alert, Change, Kind, Severity};
use vigil_core::pipeline::{self, Settings};
use vigil_core::redact::Redactor;
use vigil_core::route::{self, Destination, Owners};
use vigil_core::runbook::{self, Runbooks};
use vigil_core::slack_request::{self, ButtonValue, MAX_BODY_BYTES, MAX_SKEW_SECS};

use crate::{fixtures_dir, json_files, repo_root};

/// What a parser made of one input, for the regression test to compare with the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused,
}

/// The longest request parameter a [`Change`] keeps (characters, `preview`'s cap).
const MAX_PARAMETER_CHARS: usize = 256;

/// What a fuzz target does with one input.
pub type Check = fn(&[u8]) -> Outcome;

/// The fuzz targets, by name: the names of `fuzz/fuzz_targets/*.rs` and of the folders under
/// `tests/fixtures/fuzz-regressions/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("intake", intake),
    ("cloudtrail_trail", cloudtrail_trail),
    ("lookup_events", lookup_events),
    ("owners_yaml", owners_yaml),
    ("rules_yaml", rules_yaml),
    ("runbooks_yaml", runbooks_yaml),
    ("slack_verify", slack_verify),
    ("slack_actions", slack_actions),
];

fn default_owners() -> Owners {
    Owners::single(Destination {
        team: "t".into(),
        slack_channel: Some("#c".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:t".into()),
        ..Destination::default()
    })
}

/// Built once: the built-in rules and runbooks are cloned from statics, which would otherwise
/// dominate the time of every execution.
fn default_settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut settings = Settings::with_defaults(default_owners());
        // Buttons carry encoded values; rendering them is one more path that must not panic.
        settings.interactive = true;
        settings
    })
}

fn redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(Redactor::new)
}

/// A real alert with its context and what the built-in configuration makes of it.
struct Sample {
    alert: Alert,
    ctx: Context,
    correlation: Correlation,
    kind: Kind,
    severity: Severity,
}

/// Real alerts with their CloudTrail context (the demo situations) and one alert of each input
/// family without context: what a fuzzed configuration file is tried on, so its routes, rules
/// and playbooks meet alarms, API calls and Config changes alike.
fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut found: Vec<(Alert, Context)> = Vec::new();
        let demo = repo_root().join("examples").join("demo");
        let mut situations: Vec<_> = std::fs::read_dir(&demo)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        situations.sort();
        for dir in situations {
            let mut ctx = Context::default();
            let trail = dir.join("trail");
            for rel in json_files(&trail) {
                if let Some(batch) =
                    read_text(&trail.join(rel)).and_then(|t| cloudtrail::parse_trail(&t).ok())
                {
                    ctx.changes.extend(batch.changes);
                }
            }
            for alert in read_alerts(&dir.join("event.json")) {
                found.push((alert, ctx.clone()));
            }
        }
        let events = fixtures_dir().join("aws-events");
        let mut seen_family = std::collections::BTreeSet::new();
        for rel in json_files(&events) {
            let family = rel.components().next().map(|c| c.as_os_str().to_owned());
            if family.as_ref().is_some_and(|f| f == "malformed") {
                continue;
            }
            for alert in read_alerts(&events.join(&rel)) {
                if seen_family.insert(family.clone()) {
                    found.push((alert, Context::default()));
                }
            }
        }
        // Without them the configuration targets would quietly test nothing past the parser.
        assert!(
            !found.is_empty(),
            "no sample alerts under examples/demo and tests/fixtures"
        );
        let rules = RuleSet::builtin();
        found
            .into_iter()
            .map(|(alert, ctx)| {
                let correlation = enrich::correlate(&alert, &ctx, 5);
                let class = classify::classify(&alert, &correlation, &rules);
                Sample {
                    alert,
                    ctx,
                    correlation,
                    kind: class.kind,
                    severity: class.severity,
                }
            })
            .collect()
    })
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_alerts(path: &Path) -> Vec<Alert> {
    std::fs::read(path)
        .ok()
        .and_then(|b| intake::parse(&b).ok())
        .unwrap_or_default()
}

/// Classify, route and render, then the terminal text and the `--format json` report.
fn evaluate(alert: Alert, ctx: &Context, settings: &Settings) {
    let report = pipeline::evaluate(alert, ctx, settings, redactor());
    let _ = pipeline::text(&report, settings, redactor());
    let _ = route::explain(&report.route);
    assert!(
        !report.route.matched.is_empty(),
        "every alert gets at least one destination"
    );
    assert!(
        serde_json::to_string(&report).is_ok(),
        "the replay report serializes"
    );
}

/// The whole pipeline for one sample, chosen by the input's length: for all of them it would
/// make each execution of a configuration target ten times slower, and across a corpus every
/// sample is met anyway. The cheap stage under test meets every sample.
fn evaluate_one_sample(settings: &Settings, input: &[u8]) {
    let samples = samples();
    if let Some(sample) = samples.get(input.len() % samples.len().max(1)) {
        evaluate(sample.alert.clone(), &sample.ctx, settings);
    }
}

/// Arbitrary bytes through `intake::parse`, and every accepted alert through the pipeline with
/// an empty context and the default settings.
pub fn intake(bytes: &[u8]) -> Outcome {
    match intake::parse(bytes) {
        Ok(alerts) => {
            assert!(!alerts.is_empty(), "an accepted input yields an alert");
            for alert in alerts {
                evaluate(alert, &Context::default(), default_settings());
            }
            Outcome::Accepted
        }
        Err(e) => {
            assert!(
                !e.received.is_empty() && !e.reason.is_empty(),
                "a refusal names what was received and why: {e:?}"
            );
            Outcome::Refused
        }
    }
}

/// What `cloudtrail` promises of every change it keeps: allow-listed parameters are scalars,
/// strings capped; and of every record it drops: a location and a reason.
fn check_batch(batch: &TrailBatch) {
    for change in &batch.changes {
        check_change(change);
    }
    for skipped in &batch.skipped {
        assert!(!skipped.reason.is_empty(), "a skipped record says why");
    }
}

fn check_change(change: &Change) {
    assert!(
        !change.event_name.is_empty() && !change.event_source.is_empty(),
        "a change has an event name and source"
    );
    for (key, value) in &change.request {
        assert!(
            matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)),
            "parameter {key} is not a scalar: {value}"
        );
        if let Value::String(s) = value {
            assert!(
                s.chars().count() <= MAX_PARAMETER_CHARS,
                "parameter {key} is capped"
            );
        }
    }
}

/// Records (or LookupEvents events) at the top of `value`: every one of them must come back as
/// a change or as a skipped record, never silently dropped.
fn top_level_records(value: &Value) -> Option<usize> {
    let map = value.as_object()?;
    map.get("Records")
        .and_then(Value::as_array)
        .or_else(|| map.get("Events").and_then(Value::as_array))
        .map(Vec::len)
}

/// Arbitrary text through `parse_trail`; the changes it reads become the context of a real
/// alarm, so correlation, classification and rendering meet every change the parser lets by.
/// Accepted: at least one record became a change (a document of skipped records is refused).
pub fn cloudtrail_trail(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    match cloudtrail::parse_trail(text) {
        Ok(batch) => {
            check_batch(&batch);
            if let Some(n) = serde_json::from_str::<Value>(text)
                .ok()
                .as_ref()
                .and_then(top_level_records)
            {
                assert_eq!(
                    batch.changes.len() + batch.skipped.len(),
                    n,
                    "every record is read or reported"
                );
            }
            let outcome = if batch.changes.is_empty() {
                Outcome::Refused
            } else {
                Outcome::Accepted
            };
            if let Some(sample) = samples().first() {
                let ctx = Context {
                    changes: batch.changes,
                    ..Context::default()
                };
                evaluate(sample.alert.clone(), &ctx, default_settings());
            }
            outcome
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}

/// A `LookupEvents` response carries each record as a JSON string in `CloudTrailEvent`: the
/// input is that string (wrapped here, so mutations reach the embedded record directly, which
/// they would rarely do through two levels of escaping), and also a whole response.
pub fn lookup_events(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    let response = serde_json::json!({
        "Events": [{
            "EventId": "fuzz",
            "EventName": "Fuzz",
            "CloudTrailEvent": text,
        }],
        "NextToken": null,
    });
    let wrapped = cloudtrail::trail_from_value(&response, "");
    assert!(wrapped.is_ok(), "a LookupEvents response is always read");
    let mut accepted = false;
    if let Ok(batch) = &wrapped {
        check_batch(batch);
        assert_eq!(
            batch.changes.len() + batch.skipped.len(),
            1,
            "the event is read or reported"
        );
        accepted = !batch.changes.is_empty();
    }
    if let Ok(batch) = cloudtrail::parse_trail(text) {
        check_batch(&batch);
        accepted |= !batch.changes.is_empty();
    }
    if accepted {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// Arbitrary text through `Owners::from_yaml`; an accepted file routes every sample
/// alert, and one goes through the whole pipeline with it.
pub fn owners_yaml(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    match Owners::from_yaml(text) {
        Ok(owners) => {
            assert!(
                owners.destinations().count() > owners.route_names().count(),
                "the default destination is always there"
            );
            for sample in samples() {
                let decision = route::route(&owners, &sample.alert, sample.kind, sample.severity);
                assert!(!decision.matched.is_empty(), "an alert always has a route");
                let _ = route::explain(&decision);
            }
            let mut settings = default_settings().clone();
            settings.owners = owners;
            evaluate_one_sample(&settings, bytes);
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}

/// Arbitrary text through `RuleSet::from_yaml`; accepted rules extend the built-in table and
/// classify every sample alert.
pub fn rules_yaml(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    match RuleSet::from_yaml(text) {
        Ok(user) => {
            let rules = RuleSet::builtin().extended_with(user);
            for sample in samples() {
                let class = classify::classify(&sample.alert, &sample.correlation, &rules);
                assert!(!class.rule.is_empty(), "a classification names its rule");
            }
            let mut settings = default_settings().clone();
            settings.rules = rules;
            evaluate_one_sample(&settings, bytes);
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}

/// Arbitrary text through `Runbooks::from_yaml`; accepted playbooks are tried before the
/// built-in ones, for every kind and sample alert.
pub fn runbooks_yaml(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    match Runbooks::from_yaml(text) {
        Ok(user) => {
            for sample in samples() {
                for kind in Kind::ALL {
                    let _ = runbook::steps(
                        &[&user],
                        kind,
                        &sample.alert,
                        &sample.correlation,
                        Some("https://runbooks.example.com/team"),
                    );
                }
            }
            let mut settings = default_settings().clone();
            settings.runbooks = Runbooks::builtin().extended_with(user);
            evaluate_one_sample(&settings, bytes);
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.message().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}

/// One Slack request, decoded from the fuzzer's bytes without any helper crate (so the
/// regression files replay in the root workspace):
/// `[mode] [skew: i16 LE] secret NUL timestamp NUL signature NUL body`.
///
/// `mode` bit 0 drops the timestamp header, bit 1 the signature header; bit 2 replaces the
/// signature with the real one (`sign` of the same input), which bits 3-5 then tamper with at
/// a position taken from the signature field. `now` is the timestamp plus `skew`, so both
/// sides of the five-minute window are reached.
#[derive(Debug)]
struct SlackRequest<'a> {
    secret: &'a [u8],
    timestamp: Option<String>,
    signature: Option<String>,
    body: &'a [u8],
    now: i64,
    /// The signature is `sign(...)` of this very input, unchanged but for the letters' case.
    genuine: bool,
}

fn slack_request(data: &[u8]) -> Option<SlackRequest<'_>> {
    let (&mode, rest) = data.split_first()?;
    let (skew, rest) = rest.split_first_chunk::<2>()?;
    let skew = i64::from(i16::from_le_bytes(*skew));
    let mut fields = rest.splitn(4, |&b| b == 0);
    let secret = fields.next().unwrap_or_default();
    let timestamp = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let signature_field = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();

    let mut genuine = false;
    let signature = if mode & 0b100 != 0 {
        let real = slack_request::sign(secret, &timestamp, body)?;
        let pos = signature_field
            .first()
            .map_or(0, |&b| usize::from(b) % real.len().max(1));
        let tampered = tamper(&real, (mode >> 3) & 0b111, pos, signature_field);
        genuine = tampered.get(..3) == Some("v0=") && tampered.eq_ignore_ascii_case(&real);
        tampered
    } else {
        String::from_utf8_lossy(signature_field).into_owned()
    };
    let sent: i64 = timestamp.parse().unwrap_or(0);
    Some(SlackRequest {
        secret,
        now: sent.saturating_add(skew),
        timestamp: (mode & 0b1 == 0).then_some(timestamp),
        signature: (mode & 0b10 == 0).then_some(signature),
        body,
        genuine,
    })
}

/// A copy of the real signature changed the way an attacker or a proxy might change it.
fn tamper(real: &str, how: u8, pos: usize, extra: &[u8]) -> String {
    let mut chars: Vec<char> = real.chars().collect();
    match how {
        // Upper-case one letter: hex is case-insensitive, so this is still the same MAC.
        1 => {
            if let Some(c) = chars.get_mut(pos) {
                *c = c.to_ascii_uppercase();
            }
        }
        // Replace one character.
        2 => {
            if let Some(c) = chars.get_mut(pos) {
                *c = char::from(extra.get(1).copied().unwrap_or(b'0'));
            }
        }
        3 => chars.truncate(pos),
        4 => chars.extend(String::from_utf8_lossy(extra).chars()),
        5 => {
            let mut prefixed: Vec<char> = String::from_utf8_lossy(extra).chars().collect();
            prefixed.extend(chars);
            chars = prefixed;
        }
        // Blanks around the value: not tolerated.
        6 => {
            chars.insert(0, ' ');
        }
        _ => {}
    }
    chars.into_iter().collect()
}

/// `slack_request::verify` over a fuzzed request. Properties: it never accepts a signature
/// other than `sign(...)` of the same secret, timestamp and body (hex digits compared without
/// regard to case, as the MAC's bytes are: the handler lower-cases before its replay claim),
/// nor a request outside the five-minute window, an empty secret or an oversized body; and it
/// always accepts the genuine signature of a request that meets those conditions.
pub fn slack_verify(data: &[u8]) -> Outcome {
    let Some(req) = slack_request(data) else {
        return Outcome::Refused;
    };
    let verdict = slack_request::verify(
        req.secret,
        req.timestamp.as_deref(),
        req.signature.as_deref(),
        req.body,
        req.now,
    );
    let in_window = req.timestamp.as_deref().is_some_and(|ts| {
        !ts.is_empty()
            && ts.len() <= 16
            && ts.bytes().all(|b| b.is_ascii_digit())
            && ts.parse::<i64>().is_ok_and(|sent| {
                (-MAX_SKEW_SECS..=MAX_SKEW_SECS).contains(&req.now.saturating_sub(sent))
            })
    });
    let acceptable = !req.secret.is_empty() && req.body.len() <= MAX_BODY_BYTES && in_window;
    if verdict.is_ok() {
        let ts = req.timestamp.as_deref().unwrap_or_default();
        let expected = slack_request::sign(req.secret, ts, req.body).unwrap_or_default();
        let given = req.signature.as_deref().unwrap_or_default();
        assert!(
            given.get(..3) == Some("v0=") && given.eq_ignore_ascii_case(&expected),
            "accepted a signature that is not sign() of the request: {req:?}"
        );
        assert!(acceptable, "accepted a request it must refuse: {req:?}");
        Outcome::Accepted
    } else {
        assert!(
            !(req.genuine && acceptable && req.signature.is_some()),
            "refused a genuine request ({verdict:?}): {req:?}"
        );
        Outcome::Refused
    }
}

/// A button value decoded from a click must encode back within Slack's limit and decode again.
fn check_button_value(value: &str) {
    if let Some(decoded) = ButtonValue::decode(value) {
        let encoded = decoded.encode();
        assert!(
            encoded.chars().count() <= slack_request::MAX_VALUE_CHARS,
            "an encoded button value fits Slack's limit"
        );
        assert!(
            ButtonValue::decode(&encoded).is_some(),
            "an encoded button value decodes: {encoded}"
        );
    }
}

/// A verified request body through `parse_block_actions`, and every clicked value (and the
/// input itself) through `ButtonValue::decode`.
pub fn slack_actions(bytes: &[u8]) -> Outcome {
    check_button_value(&String::from_utf8_lossy(bytes));
    match slack_request::parse_block_actions(bytes) {
        Ok(actions) => {
            assert!(!actions.user.id.is_empty(), "a click has a user");
            assert!(!actions.actions.is_empty(), "a click has an action");
            let _ = actions.user.label();
            for action in &actions.actions {
                assert!(!action.action_id.is_empty(), "an action has an id");
                if let Some(value) = &action.value {
                    check_button_value(value);
                }
            }
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}
