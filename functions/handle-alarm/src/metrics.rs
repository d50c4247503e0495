//! The function's own health as CloudWatch Embedded Metric Format (EMF): one JSON line per
//! invocation on stdout, which CloudWatch Logs turns into metrics in the `Vigil` namespace
//! without a `PutMetricData` call (no extra latency, no extra permission, no extra failure).
//!
//! Invariant: the document only declares metrics it carries (CloudWatch drops an EMF
//! document whose directive names a missing member), and carries counts and durations only:
//! no alert content, so it can never leak anything.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every vigil metric.
pub const NAMESPACE: &str = "Vigil";

/// The one dimension: which function (its crate name, stable across stacks and renames).
pub const DIMENSION: &str = "Function";

/// What one invocation did, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationMetrics {
    /// Alerts understood.
    pub alerts_received: u64,
    /// Inputs refused.
    pub inputs_refused: u64,
    /// Messages delivered (one per channel per alert).
    pub notifications_sent: u64,
    /// Messages not delivered.
    pub notifications_failed: u64,
    /// Enrichment time of each enriched alert, in milliseconds.
    pub enrichment_latency_ms: Vec<f64>,
    /// Missing-context entries that mention throttling (`LookupEvents` mostly).
    pub lookups_throttled: u64,
    /// Changes written to the journal (the event function).
    pub changes_journaled: Option<u64>,
    /// Alerts not sent on purpose: duplicate deliveries and silences (noise control).
    pub alerts_suppressed: u64,
    /// Alerts counted into their group instead of sent (repeats, flapping).
    pub alerts_folded: u64,
    /// Alerts whose Slack message the rate limit folded into a digest.
    pub alerts_rate_limited: u64,
}

impl InvocationMetrics {
    /// The EMF document for `function` at `at`.
    pub fn to_emf(&self, function: &str, at: DateTime<Utc>) -> Value {
        let mut root = Map::new();
        let mut declared: Vec<Value> = Vec::new();
        let mut put = |name: &str, unit: &str, value: Value| {
            declared.push(json!({ "Name": name, "Unit": unit }));
            root.insert(name.to_string(), value);
        };
        put("AlertsReceived", "Count", json!(self.alerts_received));
        put("InputsRefused", "Count", json!(self.inputs_refused));
        put("NotificationsSent", "Count", json!(self.notifications_sent));
        put(
            "NotificationsFailed",
            "Count",
            json!(self.notifications_failed),
        );
        put("LookupsThrottled", "Count", json!(self.lookups_throttled));
        put("AlertsSuppressed", "Count", json!(self.alerts_suppressed));
        put("AlertsFolded", "Count", json!(self.alerts_folded));
        put(
            "AlertsRateLimited",
            "Count",
            json!(self.alerts_rate_limited),
        );
        match self.enrichment_latency_ms.as_slice() {
            [] => {}
            // EMF takes one value or an array of values (each becomes a sample).
            [one] => put("EnrichmentLatencyMs", "Milliseconds", json!(one)),
            many => put("EnrichmentLatencyMs", "Milliseconds", json!(many)),
        }
        if let Some(n) = self.changes_journaled {
            put("ChangesJournaled", "Count", json!(n));
        }
        root.insert(DIMENSION.to_string(), json!(function));
        root.insert(
            "_aws".to_string(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": declared,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Prints the EMF line. stdout, not `tracing`: the log subscriber would wrap it in its own
    /// JSON object, and CloudWatch only extracts metrics from a top-level `_aws` member.
    pub fn emit(&self, function: &str, at: DateTime<Utc>) {
        println!("{}", self.to_emf(function, at));
    }

    /// Counts one alert's decision into the noise-control metrics.
    pub fn count_decision(&mut self, decision: crate::handler::Decision) {
        use crate::handler::Decision;
        match decision {
            Decision::Suppressed => self.alerts_suppressed += 1,
            Decision::Folded => self.alerts_folded += 1,
            Decision::RateLimited => self.alerts_rate_limited += 1,
            _ => {}
        }
    }

    /// Adds another invocation part's counts (the alerts of one event).
    pub fn add(&mut self, other: &InvocationMetrics) {
        self.alerts_received += other.alerts_received;
        self.inputs_refused += other.inputs_refused;
        self.notifications_sent += other.notifications_sent;
        self.notifications_failed += other.notifications_failed;
        self.enrichment_latency_ms
            .extend_from_slice(&other.enrichment_latency_ms);
        self.lookups_throttled += other.lookups_throttled;
        self.alerts_suppressed += other.alerts_suppressed;
        self.alerts_folded += other.alerts_folded;
        self.alerts_rate_limited += other.alerts_rate_limited;
        if let Some(n) = other.changes_journaled {
            *self.changes_journaled.get_or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn the_emf_document_declares_exactly_the_metrics_it_carries() {
        let m = InvocationMetrics {
            alerts_received: 2,
            notifications_sent: 3,
            notifications_failed: 1,
            enrichment_latency_ms: vec![120.0, 80.5],
            lookups_throttled: 4,
            ..InvocationMetrics::default()
        };
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        let doc = m.to_emf("handle-alarm", at);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Vigil");
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_000_000_000_i64);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(doc["Function"], "handle-alarm");
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        for name in &names {
            assert!(doc.get(*name).is_some(), "{name} declared but missing");
        }
        assert!(names.contains(&"EnrichmentLatencyMs"));
        assert!(!names.contains(&"ChangesJournaled"));
        assert_eq!(doc["EnrichmentLatencyMs"], json!([120.0, 80.5]));
        assert_eq!(doc["LookupsThrottled"], 4);
        assert_eq!(doc["AlertsFolded"], 0);
    }

    #[test]
    fn noise_control_decisions_are_counted() {
        use crate::handler::Decision;
        let mut m = InvocationMetrics::default();
        for d in [
            Decision::Suppressed,
            Decision::Folded,
            Decision::Folded,
            Decision::RateLimited,
            Decision::Notified,
        ] {
            m.count_decision(d);
        }
        let doc = m.to_emf(
            "handle-alarm",
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
        );
        assert_eq!(doc["AlertsSuppressed"], 1);
        assert_eq!(doc["AlertsFolded"], 2);
        assert_eq!(doc["AlertsRateLimited"], 1);
    }
}
