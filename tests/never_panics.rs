//! Nothing panics on input: arbitrary bytes, arbitrary JSON, and real payloads with fields
//! removed or retyped all come back as an alert or a refusal, and every accepted alert goes
//! through the whole pipeline.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use proptest::prelude::*;
use serde_json::Value;
use vigil_core::enrich::Context;
use vigil_core::intake;
use vigil_core::pipeline::{self, Settings};
use vigil_core::redact::Redactor;
use vigil_core::route::{Destination, Owners};
use vigil_tests::{fixtures_dir, json_files};

fn settings() -> Settings {
    Settings::with_defaults(Owners::single(Destination {
        team: "t".into(),
        slack_channel: Some("#c".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:t".into()),
        ..Destination::default()
    }))
}

/// Intake, then the whole pipeline on whatever was accepted.
fn run_everything(bytes: &[u8], settings: &Settings, redactor: &Redactor) {
    if let Ok(alerts) = intake::parse(bytes) {
        assert!(
            !alerts.is_empty(),
            "an accepted input yields at least one alert"
        );
        for alert in alerts {
            let report = pipeline::evaluate(alert, &Context::default(), settings, redactor);
            let _ = pipeline::text(&report, settings, redactor);
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        // Values that steer intake down its real branches.
        prop_oneof![
            Just("CloudWatch Alarm State Change"),
            Just("AWS API Call via CloudTrail"),
            Just("Notification"),
            Just("ALARM"),
            Just("OK"),
            Just("aws.cloudwatch"),
            Just("2026-11-20T09:14:05.123+0000"),
            Just("Config Rules Compliance Change"),
            Just("ComplianceChangeNotification"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    let keys = prop_oneof![
        Just("Records".to_string()),
        Just("Sns".to_string()),
        Just("Message".to_string()),
        Just("Type".to_string()),
        Just("detail-type".to_string()),
        Just("detail".to_string()),
        Just("alarmData".to_string()),
        Just("state".to_string()),
        Just("value".to_string()),
        Just("alarmName".to_string()),
        Just("AlarmName".to_string()),
        Just("NewStateValue".to_string()),
        Just("eventName".to_string()),
        Just("eventSource".to_string()),
        Just("eventTime".to_string()),
        Just("userIdentity".to_string()),
        Just("requestParameters".to_string()),
        Just("configuration".to_string()),
        Just("metrics".to_string()),
        Just("Trigger".to_string()),
        Just("messageType".to_string()),
        Just("configurationItem".to_string()),
        Just("Events".to_string()),
        "[a-zA-Z-]{1,12}",
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        run_everything(&bytes, &settings(), &Redactor::new());
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).expect("serializable");
        run_everything(&bytes, &settings(), &Redactor::new());
    }
}

/// Every path in a JSON document, so each can be removed or retyped in turn.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            prefix.push(k.clone());
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    } else if let Value::Array(a) = v {
        for (i, child) in a.iter().enumerate().take(3) {
            prefix.push(i.to_string());
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn mutate(v: &mut Value, path: &[String], replacement: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(p) {
                Some(c) => c,
                None => return,
            },
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(c) => c,
                None => return,
            },
            _ => return,
        };
    }
    match (cur, replacement) {
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Object(m), Some(r)) => {
            m.insert(last.clone(), r);
        }
        (Value::Array(a), r) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < a.len()) {
                match r {
                    None => {
                        a.remove(i);
                    }
                    Some(r) => a[i] = r,
                }
            }
        }
        _ => {}
    }
}

#[test]
fn real_payloads_with_any_field_removed_or_retyped_never_panic() {
    let settings = settings();
    let redactor = Redactor::new();
    let root = fixtures_dir().join("aws-events");
    let mut mutations = 0usize;
    for rel in json_files(&root) {
        let Ok(text) = std::fs::read_to_string(root.join(&rel)) else {
            continue;
        };
        let Ok(original) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut all = Vec::new();
        paths(&original, &mut Vec::new(), &mut all);
        for path in all {
            for replacement in [
                None,
                Some(Value::Null),
                Some(Value::from(12345)),
                Some(Value::String(String::new())),
                Some(Value::Array(vec![])),
                Some(Value::String("x".repeat(1000))),
            ] {
                let mut v = original.clone();
                mutate(&mut v, &path, replacement);
                let bytes = serde_json::to_vec(&v).expect("serializable");
                run_everything(&bytes, &settings, &redactor);
                // Truncation: the first half of the document.
                mutations += 1;
            }
        }
        let bytes = text.as_bytes();
        for cut in (0..bytes.len()).step_by((bytes.len() / 16).max(1)) {
            run_everything(bytes.get(..cut).unwrap_or_default(), &settings, &redactor);
        }
    }
    assert!(mutations > 1000, "mutated {mutations} documents");
}
