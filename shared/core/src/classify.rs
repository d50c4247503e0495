//! Classification: the rule table of ARCHITECTURE.md "Classification", kept as data.
//!
//! The built-in table lives in `rules.yaml` beside this file; users extend it with the same
//! format ([`RuleSet::from_yaml`], [`RuleSet::extended_with`]). [`classify`] walks the table top
//! to bottom and the first rule whose conditions all hold decides the kind and severity, so
//! precedence (an alarm back to OK before any metric rule, the correlation-aware access-denied
//! rule before the plain error rule) is a property of the data, not of this code.
//!
//! Invariant: classification is a pure, total function of (alert, correlation, rules). It never
//! fails and never panics: an alert no rule matches is still classified, as `unknown` with the
//! severity its alarm state implies, so it is delivered rather than dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use serde::de::{self, IntoDeserializer, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wildmatch::WildMatch;

use crate::enrich::Correlation;
use crate::model::{
    Alarm, AlarmState, Alert, Change, ConfigChange, ConfigChangeKind, InputFamily, Kind, MetricRef,
    Severity,
};

/// The built-in table (`rules.yaml`), as the JSON `build.rs` converts it to: the same document,
/// quicker to load at start-up. Parsed once; unit tests prove it loads to what `rules.yaml`
/// does and covers every kind.
const BUILTIN_RULES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/rules.json"));

/// Id reported when no rule matched.
pub const DEFAULT_RULE_ID: &str = "default";

static BUILTIN: LazyLock<RuleSet> = LazyLock::new(|| {
    // The test `builtin_rules_parse_and_cover_every_kind` guards this file; an empty table
    // here would still classify everything as `unknown` rather than take the process down.
    serde_json::from_str::<serde_yaml_ng::Value>(BUILTIN_RULES_JSON)
        .ok()
        .and_then(|doc| RuleSet::from_document(doc).ok())
        .unwrap_or_else(|| RuleSet { rules: Vec::new() })
});

/// A case-sensitive glob (`*` any run of characters, `?` exactly one), kept with its source
/// text so evidence can quote the pattern that matched.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    matcher: WildMatch,
}

impl Glob {
    /// Compiles `pattern`. Every string is a valid glob, so this cannot fail.
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.to_owned(),
            matcher: WildMatch::new(pattern),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `value` matches, case-sensitively.
    pub fn matches(&self, value: &str) -> bool {
        self.matcher.matches(value)
    }

    /// ` matched "P"` when the pattern is a real glob; nothing when it is the value itself,
    /// so evidence does not repeat a literal twice.
    fn matched_suffix(&self, value: &str) -> String {
        if self.pattern == value {
            String::new()
        } else {
            format!(" matched \"{}\"", self.pattern)
        }
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GlobVisitor;
        impl Visitor<'_> for GlobVisitor {
            type Value = Glob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a glob pattern string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Glob, E> {
                Ok(Glob::new(v))
            }
            // YAML reads an unquoted `404` as a number; as a pattern it can only mean the text.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Glob, E> {
                Ok(Glob::new(&v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Glob, E> {
                Ok(Glob::new(&v.to_string()))
            }
        }
        deserializer.deserialize_any(GlobVisitor)
    }
}

/// Accepts `field: value` as well as `field: [a, b]`, because a one-element list is the
/// commonest case in a hand-written rules file. Scalars are handed to `T` as strings so a bad
/// value still gets `T`'s own error ("unknown variant `ALRAM`, expected ...").
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a value or a list of values")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<T>, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<T>, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(OneOrMany(PhantomData))
}

/// What a rule requires. Every condition given must hold; within one condition a list means
/// "any of". Conditions about a body the alert does not have (a `metric` on an API call) do not
/// hold, so a rule never matches across input families by accident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Input families (`alarm_direct`, `alarm_eventbridge`, `alarm_sns`, `cloudtrail`, `config`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub input: Vec<InputFamily>,
    /// Alarm states (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alarm_state: Vec<AlarmState>,
    /// Alarm name globs.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alarm_name: Vec<Glob>,
    /// Metric namespace globs. `namespace`, `metric`, `dimension` and `without_dimension` must
    /// all hold on the same metric of the alarm (a metric-math alarm has several).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespace: Vec<Glob>,
    /// Metric name globs.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric: Vec<Glob>,
    /// Dimension name -> value glob; every listed dimension must be present and match
    /// (`"*"` means "present with any value").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimension: BTreeMap<String, Glob>,
    /// Dimension names that must all be absent from the metric. Needed because an absent
    /// dimension carries meaning: Guardrails `InvocationsIntervened` without
    /// `GuardrailContentSource` aggregates input and output.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub without_dimension: Vec<String>,
    /// CloudTrail `eventSource` globs (`iam.amazonaws.com`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_source: Vec<Glob>,
    /// CloudTrail `eventName` globs (`Attach*Policy`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_name: Vec<Glob>,
    /// CloudTrail `errorCode` globs; the call must have failed with a matching code.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub error_code: Vec<Glob>,
    /// Facts that must all be in the API call's [`Change::facts`].
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fact: Vec<String>,
    /// Correlation facts, any of which must be in [`Correlation::facts`].
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub context: Vec<String>,
    /// AWS Config compliance value globs (`NON_COMPLIANT`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub compliance: Vec<Glob>,
    /// AWS Config notification kinds (`compliance_change`, `configuration_item_change`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub config_change: Vec<ConfigChangeKind>,
    /// AWS Config resource type globs (`AWS::IAM::*`).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_type: Vec<Glob>,
}

/// One row of the table: when `when` holds, the alert is `kind` at `severity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, unique in a table; shown as evidence and used to override built-ins.
    pub id: String,
    /// The classification this rule gives.
    pub kind: Kind,
    /// The severity this rule gives (lowered one step for a failed API call, see [`classify`]).
    pub severity: Severity,
    /// The conditions; required, so an empty catch-all has to be written as `when: {}`.
    pub when: Conditions,
    /// Why the rule exists, for people reading the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Rule {
    /// The evidence lines when every condition holds, `None` otherwise.
    pub fn evaluate(&self, alert: &Alert, correlation: &Correlation) -> Option<Vec<String>> {
        self.when.evaluate(alert, correlation)
    }
}

/// An ordered rule table.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// Top level of a rules file. Raw values, so each rule can be parsed alone and an error can
/// name the rule it is in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<serde_yaml_ng::Value>,
}

/// Why a rules file was refused. All of these are mistakes in configuration: retrying cannot
/// fix them.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Not YAML, or not a mapping with a `rules:` list.
    #[error("rules file: {0}")]
    File(#[source] serde_yaml_ng::Error),
    /// A rule that does not fit the schema (unknown field, bad kind or severity ...).
    #[error("rule #{position} (id `{id}`): {source}")]
    Rule {
        /// 1-based position in the file.
        position: usize,
        /// The rule's id as written, or `?` when it has none.
        id: String,
        /// The schema error, naming the field.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A rule whose id is empty.
    #[error("rule #{position}: `id` must not be empty")]
    EmptyId {
        /// 1-based position in the file.
        position: usize,
    },
    /// Two rules in one file share an id, so overriding by id would be ambiguous.
    #[error("rule id `{id}` is used twice (rules #{first} and #{second})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// 1-based position of the first use.
        first: usize,
        /// 1-based position of the second use.
        second: usize,
    },
}

impl RuleError {
    /// Always `false`: a bad rules file stays bad until a person fixes it.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl RuleSet {
    /// The built-in table of ARCHITECTURE.md "Classification" (`rules.yaml`).
    pub fn builtin() -> RuleSet {
        BUILTIN.clone()
    }

    /// Parses a rules file: `rules:` followed by a list of rules.
    /// An empty document is an empty table.
    pub fn from_yaml(text: &str) -> Result<RuleSet, RuleError> {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(RuleError::File)?;
        Self::from_document(doc)
    }

    /// [`RuleSet::from_yaml`] of a document already read.
    fn from_document(doc: serde_yaml_ng::Value) -> Result<RuleSet, RuleError> {
        if doc.is_null() {
            return Ok(RuleSet { rules: Vec::new() });
        }
        let file: RulesFile = serde_yaml_ng::from_value(doc).map_err(RuleError::File)?;
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, raw) in file.rules.into_iter().enumerate() {
            let position = index + 1;
            let id = raw
                .get("id")
                .and_then(serde_yaml_ng::Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let rule: Rule = serde_yaml_ng::from_value(raw).map_err(|source| RuleError::Rule {
                position,
                id,
                source,
            })?;
            if rule.id.trim().is_empty() {
                return Err(RuleError::EmptyId { position });
            }
            if let Some(first) = seen.insert(rule.id.clone(), position) {
                return Err(RuleError::DuplicateId {
                    id: rule.id,
                    first,
                    second: position,
                });
            }
            rules.push(rule);
        }
        Ok(RuleSet { rules })
    }

    /// This table extended with `user` rules.
    ///
    /// User rules with new ids are evaluated first, in their own order. A user rule with the
    /// id of a rule in `self` replaces that rule where it stands: overriding, say, the
    /// severity of `error-spike-server` must not lift it above `alarm-resolved`, or every
    /// recovered error alarm would page as an error spike.
    pub fn extended_with(self, user: RuleSet) -> RuleSet {
        let mut overrides: BTreeMap<String, Rule> = BTreeMap::new();
        let mut fresh: Vec<Rule> = Vec::new();
        for rule in user.rules {
            if self.rules.iter().any(|r| r.id == rule.id) {
                overrides.insert(rule.id.clone(), rule);
            } else {
                fresh.push(rule);
            }
        }
        let mut rules = fresh;
        for rule in self.rules {
            rules.push(overrides.remove(&rule.id).unwrap_or(rule));
        }
        RuleSet { rules }
    }

    /// The rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// What [`classify`] decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// The kind of the first matching rule, or `unknown`.
    pub kind: Kind,
    /// The rule's severity (one step lower for a failed API call), or the alarm's.
    pub severity: Severity,
    /// The matching rule's id, or [`DEFAULT_RULE_ID`].
    pub rule: String,
    /// One human line per condition that matched, naming the value.
    pub evidence: Vec<String>,
}

/// Classifies an alert: the first rule in table order whose conditions all hold wins.
///
/// An API call that failed for a reason other than the ones a rule asked for (the rule has no
/// `error_code` condition; denied and throttled calls are caught by earlier rules that do) is
/// still classified by its event name, one severity step lower, because a failed
/// `StopLogging` is an attempt worth seeing, not an outage of the audit trail.
///
/// No matching rule gives kind `unknown`, rule id `default` and the severity the alarm state
/// implies (ALARM medium, INSUFFICIENT_DATA low, OK info; API calls and Config changes low).
pub fn classify(alert: &Alert, correlation: &Correlation, rules: &RuleSet) -> Classification {
    for rule in &rules.rules {
        let Some(mut evidence) = rule.evaluate(alert, correlation) else {
            continue;
        };
        let mut severity = rule.severity;
        if let Some(change) = alert.api_call()
            && let Some(code) = change.error_code.as_deref()
            && rule.when.error_code.is_empty()
        {
            let lowered = one_step_lower(severity);
            evidence.push(format!(
                "the call failed with {code}, so it took no effect: severity lowered from {severity} to {lowered}"
            ));
            severity = lowered;
        }
        return Classification {
            kind: rule.kind,
            severity,
            rule: rule.id.clone(),
            evidence,
        };
    }
    default_classification(alert)
}

fn default_classification(alert: &Alert) -> Classification {
    let (severity, line) = match (alert.alarm(), alert.api_call(), alert.config()) {
        (Some(alarm), _, _) => (
            match alarm.state {
                AlarmState::Alarm => Severity::Medium,
                AlarmState::InsufficientData => Severity::Low,
                AlarmState::Ok => Severity::Info,
            },
            format!(
                "no rule matched; severity follows the alarm state {}",
                alarm.state.as_str()
            ),
        ),
        (None, Some(change), _) => (
            Severity::Low,
            format!(
                "no rule matched event {} ({})",
                change.event_name, change.event_source
            ),
        ),
        (None, None, Some(config)) => (
            Severity::Low,
            format!("no rule matched AWS Config change {}", config_label(config)),
        ),
        (None, None, None) => (Severity::Low, "no rule matched".to_owned()),
    };
    Classification {
        kind: Kind::Unknown,
        severity,
        rule: DEFAULT_RULE_ID.to_owned(),
        evidence: vec![line],
    }
}

fn one_step_lower(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

fn first_match<'g>(globs: &'g [Glob], value: &str) -> Option<&'g Glob> {
    globs.iter().find(|g| g.matches(value))
}

/// The last `/`-separated segment: a role name from a role ARN, a name from a name.
pub(crate) fn last_segment(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

impl Conditions {
    fn has_alarm_conditions(&self) -> bool {
        !self.alarm_state.is_empty() || !self.alarm_name.is_empty() || self.has_metric_conditions()
    }

    fn has_metric_conditions(&self) -> bool {
        !self.namespace.is_empty()
            || !self.metric.is_empty()
            || !self.dimension.is_empty()
            || !self.without_dimension.is_empty()
    }

    fn has_api_conditions(&self) -> bool {
        !self.event_source.is_empty()
            || !self.event_name.is_empty()
            || !self.error_code.is_empty()
            || !self.fact.is_empty()
    }

    fn has_config_conditions(&self) -> bool {
        !self.compliance.is_empty()
            || !self.config_change.is_empty()
            || !self.resource_type.is_empty()
    }

    fn evaluate(&self, alert: &Alert, correlation: &Correlation) -> Option<Vec<String>> {
        let mut evidence = Vec::new();
        if !self.input.is_empty() {
            if !self.input.contains(&alert.input) {
                return None;
            }
            evidence.push(format!("input {}", alert.input.as_str()));
        }
        if self.has_alarm_conditions() {
            self.match_alarm(alert.alarm()?, &mut evidence)?;
        }
        if self.has_api_conditions() {
            self.match_api_call(alert.api_call()?, &mut evidence)?;
        }
        if self.has_config_conditions() {
            self.match_config(alert.config()?, &mut evidence)?;
        }
        if !self.context.is_empty() {
            // "Any of" decides the match; every listed fact that holds is evidence.
            let present: Vec<&String> = self
                .context
                .iter()
                .filter(|f| correlation.facts.contains(*f))
                .collect();
            if present.is_empty() {
                return None;
            }
            evidence.extend(
                present
                    .into_iter()
                    .map(|f| context_evidence(f, correlation)),
            );
        }
        Some(evidence)
    }

    fn match_alarm(&self, alarm: &Alarm, evidence: &mut Vec<String>) -> Option<()> {
        if !self.alarm_state.is_empty() {
            if !self.alarm_state.contains(&alarm.state) {
                return None;
            }
            evidence.push(match alarm.previous_state {
                Some(prev) if prev != alarm.state => {
                    format!("state {} (was {})", alarm.state.as_str(), prev.as_str())
                }
                _ => format!("state {}", alarm.state.as_str()),
            });
        }
        if !self.alarm_name.is_empty() {
            let glob = first_match(&self.alarm_name, &alarm.name)?;
            evidence.push(format!(
                "alarm name {}{}",
                alarm.name,
                glob.matched_suffix(&alarm.name)
            ));
        }
        if self.has_metric_conditions() {
            let lines = alarm.metrics.iter().find_map(|m| self.match_metric(m))?;
            evidence.extend(lines);
        }
        Some(())
    }

    /// Evidence when this one metric satisfies every metric-level condition.
    fn match_metric(&self, metric: &MetricRef) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        if !self.namespace.is_empty() {
            let ns = metric.namespace.as_deref()?;
            let glob = first_match(&self.namespace, ns)?;
            lines.push(format!("namespace {ns}{}", glob.matched_suffix(ns)));
        }
        if !self.metric.is_empty() {
            let glob = first_match(&self.metric, &metric.name)?;
            // Always quote the pattern: with several metrics on an alarm the reader needs to
            // see which name the rule was looking for.
            lines.push(format!(
                "metric {} matched \"{}\"",
                metric.name,
                glob.as_str()
            ));
        }
        for (name, glob) in &self.dimension {
            let value = metric.dimensions.get(name)?;
            if !glob.matches(value) {
                return None;
            }
            lines.push(format!(
                "dimension {name}={value}{}",
                glob.matched_suffix(value)
            ));
        }
        for name in &self.without_dimension {
            if metric.dimensions.contains_key(name) {
                return None;
            }
            lines.push(format!("no {name} dimension"));
        }
        Some(lines)
    }

    fn match_api_call(&self, change: &Change, evidence: &mut Vec<String>) -> Option<()> {
        let source_glob = if self.event_source.is_empty() {
            None
        } else {
            Some(first_match(&self.event_source, &change.event_source)?)
        };
        if !self.event_name.is_empty() {
            let glob = first_match(&self.event_name, &change.event_name)?;
            evidence.push(format!(
                "event {} ({}){}",
                change.event_name,
                change.event_source,
                glob.matched_suffix(&change.event_name)
            ));
        } else if source_glob.is_some() {
            evidence.push(format!(
                "event source {} ({})",
                change.event_source, change.event_name
            ));
        }
        if !self.error_code.is_empty() {
            let code = change.error_code.as_deref()?;
            let glob = first_match(&self.error_code, code)?;
            evidence.push(format!("error code {code}{}", glob.matched_suffix(code)));
        }
        for fact in &self.fact {
            if !change.facts.contains(fact) {
                return None;
            }
            evidence.push(format!("fact {fact}"));
        }
        Some(())
    }

    fn match_config(&self, config: &ConfigChange, evidence: &mut Vec<String>) -> Option<()> {
        if !self.config_change.is_empty() {
            if !self.config_change.contains(&config.change) {
                return None;
            }
            evidence.push(match config.change {
                ConfigChangeKind::ComplianceChange => "AWS Config compliance change".to_owned(),
                ConfigChangeKind::ConfigurationItemChange => format!(
                    "AWS Config configuration item change{}",
                    config
                        .change_type
                        .as_deref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                ),
            });
        }
        if !self.compliance.is_empty() {
            let value = config.compliance.as_deref()?;
            let glob = first_match(&self.compliance, value)?;
            let mut line = format!("compliance {value}{}", glob.matched_suffix(value));
            if let Some(prev) = config.previous_compliance.as_deref() {
                line.push_str(&format!(" (was {prev})"));
            }
            if let Some(rule) = config.rule_name.as_deref() {
                line.push_str(&format!(" for rule {rule}"));
            }
            evidence.push(line);
        }
        if !self.resource_type.is_empty() {
            let value = config.resource_type.as_deref()?;
            let glob = first_match(&self.resource_type, value)?;
            let mut line = format!("resource type {value}{}", glob.matched_suffix(value));
            if let Some(id) = config
                .resource_name
                .as_deref()
                .or(config.resource_id.as_deref())
            {
                line.push_str(&format!(" ({id})"));
            }
            evidence.push(line);
        }
        Some(())
    }
}

fn config_label(config: &ConfigChange) -> String {
    [
        config.rule_name.as_deref(),
        config.resource_type.as_deref(),
        config.resource_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// Event names that take a permission away; used to pick the cause that explains
/// `permission_removed_on_resource_role`.
fn removes_permission(event_name: &str) -> bool {
    event_name.starts_with("Detach")
        || event_name.starts_with("Remove")
        || (event_name.starts_with("Delete") && event_name.ends_with("Policy"))
        || event_name.ends_with("PermissionsBoundary")
}

fn context_evidence(fact: &str, correlation: &Correlation) -> String {
    match fact {
        "denied_calls" => {
            let count = correlation.denied.len();
            let roles: BTreeSet<&str> = correlation
                .denied
                .iter()
                .map(|c| {
                    c.actor
                        .role_arn
                        .as_deref()
                        .map(last_segment)
                        .unwrap_or(c.actor.name.as_str())
                })
                .filter(|r| !r.is_empty())
                .collect();
            let calls = match count {
                0 => "denied calls".to_owned(),
                1 => "1 denied call".to_owned(),
                n => format!("{n} denied calls"),
            };
            let by = match roles.len() {
                0 => String::new(),
                1 => format!(
                    " by role {}",
                    roles.iter().copied().collect::<Vec<_>>().join("")
                ),
                _ => format!(
                    " by roles {}",
                    roles.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            };
            format!("context: {calls}{by} in the window")
        }
        "permission_removed_on_resource_role" => {
            let role_names: BTreeSet<&str> = correlation
                .resource_roles
                .iter()
                .map(|r| last_segment(r))
                .collect();
            let cause = correlation
                .causes
                .iter()
                .find(|c| removes_permission(&c.event_name))
                .or(correlation.causes.first());
            let role = cause
                .and_then(|c| {
                    c.resources
                        .iter()
                        .map(|r| last_segment(r))
                        .find(|r| role_names.contains(r))
                })
                .or(role_names.iter().next().copied());
            let mut line = "context: permission removed on the resource's role".to_owned();
            if let Some(role) = role {
                line.push_str(&format!(" {role}"));
            }
            if let Some(cause) = cause {
                line.push_str(&format!(" ({} by {})", cause.event_name, cause.actor));
            }
            line
        }
        "recent_change_on_resource" => match correlation.causes.first() {
            Some(cause) => format!(
                "context: recent change on the resource ({} by {})",
                cause.event_name, cause.actor
            ),
            None => "context: recent change on the resource".to_owned(),
        },
        other => format!("context: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Actor, AlarmType, AlertBody, ConfigChange, ConfigChangeKind, ProbableCause,
    };
    use chrono::{TimeZone, Utc};

    fn t0() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 10, 30, 0)
            .single()
            .unwrap_or_default()
    }

    fn metric(ns: &str, name: &str, dims: &[(&str, &str)]) -> MetricRef {
        MetricRef {
            namespace: Some(ns.to_owned()),
            name: name.to_owned(),
            dimensions: dims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            stat: Some("Sum".to_owned()),
            period: Some(300),
        }
    }

    fn alarm_alert(state: AlarmState, metrics: Vec<MetricRef>) -> Alert {
        Alert {
            id: "alarm-1".to_owned(),
            input: InputFamily::AlarmEventbridge,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Alarm(Alarm {
                name: "test-alarm".to_owned(),
                arn: None,
                description: None,
                alarm_type: AlarmType::Metric,
                state,
                previous_state: Some(if state == AlarmState::Ok {
                    AlarmState::Alarm
                } else {
                    AlarmState::Ok
                }),
                reason: "Threshold Crossed".to_owned(),
                metrics,
                expression: None,
                alarm_rule: None,
                triggering_alarms: Vec::new(),
                threshold: Some(1.0),
                comparison: Some("GreaterThanThreshold".to_owned()),
                recent_datapoints: vec![5.0],
                tags: BTreeMap::new(),
            }),
        }
    }

    fn change(source: &str, name: &str, error: Option<&str>, facts: &[&str]) -> Change {
        Change {
            event_id: "ev-1".to_owned(),
            event_name: name.to_owned(),
            event_source: source.to_owned(),
            time: t0(),
            region: Some("us-east-1".to_owned()),
            account: Some("123456789012".to_owned()),
            actor: Actor {
                identity_type: Some("AssumedRole".to_owned()),
                arn: Some("arn:aws:sts::123456789012:assumed-role/admin/alice".to_owned()),
                name: "admin/alice".to_owned(),
                role_arn: Some("arn:aws:iam::123456789012:role/admin".to_owned()),
                session_name: Some("alice".to_owned()),
                invoked_by: None,
            },
            source_ip: Some("198.51.100.7".to_owned()),
            user_agent: Some("aws-cli/2.15.0".to_owned()),
            read_only: false,
            error_code: error.map(str::to_owned),
            error_message: None,
            request: BTreeMap::new(),
            resources: Vec::new(),
            facts: facts.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn api_alert(source: &str, name: &str, error: Option<&str>, facts: &[&str]) -> Alert {
        Alert {
            id: "ev-1".to_owned(),
            input: InputFamily::Cloudtrail,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::ApiCall(change(source, name, error, facts)),
        }
    }

    fn config_alert(
        change: ConfigChangeKind,
        compliance: Option<&str>,
        resource_type: &str,
    ) -> Alert {
        Alert {
            id: "cfg-1".to_owned(),
            input: InputFamily::Config,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Config(ConfigChange {
                change,
                rule_name: compliance.map(|_| "restricted-ssh".to_owned()),
                resource_type: Some(resource_type.to_owned()),
                resource_id: Some("sg-0123".to_owned()),
                resource_name: None,
                compliance: compliance.map(str::to_owned),
                previous_compliance: None,
                change_type: Some("UPDATE".to_owned()),
                changed_properties: Vec::new(),
            }),
        }
    }

    fn run(alert: &Alert) -> Classification {
        classify(alert, &Correlation::default(), &RuleSet::builtin())
    }

    fn firing(ns: &str, name: &str, dims: &[(&str, &str)]) -> Classification {
        run(&alarm_alert(
            AlarmState::Alarm,
            vec![metric(ns, name, dims)],
        ))
    }

    #[test]
    fn builtin_rules_parse_and_cover_every_kind() {
        let parsed = RuleSet::from_yaml(include_str!("rules.yaml"));
        assert!(parsed.is_ok(), "{parsed:?}");
        let rules = RuleSet::builtin();
        assert_eq!(
            parsed.ok().as_ref(),
            Some(&rules),
            "the JSON build.rs made loads to what rules.yaml does"
        );
        assert!(!rules.is_empty());
        for kind in Kind::ALL {
            if kind == Kind::Unknown {
                continue;
            }
            assert!(
                rules.rules().iter().any(|r| r.kind == kind),
                "no built-in rule for {kind}"
            );
        }
    }

    #[test]
    fn bedrock_invocation_throttles_is_a_throttle_spike() {
        let c = firing(
            "AWS/Bedrock",
            "InvocationThrottles",
            &[("ModelId", "amazon.nova-pro-v1:0")],
        );
        assert_eq!(c.kind, Kind::ThrottleSpike);
        assert_eq!(c.severity, Severity::High);
        assert!(
            c.evidence.contains(&"namespace AWS/Bedrock".to_owned()),
            "{:?}",
            c.evidence
        );
        assert!(
            c.evidence
                .contains(&"metric InvocationThrottles matched \"InvocationThrottles\"".to_owned()),
            "{:?}",
            c.evidence
        );
    }

    #[test]
    fn lambda_and_dynamodb_throttles_are_throttle_spikes() {
        assert_eq!(
            firing("AWS/Lambda", "Throttles", &[]).kind,
            Kind::ThrottleSpike
        );
        assert_eq!(
            firing("AWS/DynamoDB", "WriteThrottleEvents", &[("TableName", "t")]).kind,
            Kind::ThrottleSpike
        );
    }

    #[test]
    fn throttled_api_call_is_a_throttle_spike() {
        let c = run(&api_alert(
            "bedrock.amazonaws.com",
            "InvokeModel",
            Some("ThrottlingException"),
            &[],
        ));
        assert_eq!(c.kind, Kind::ThrottleSpike);
        assert!(c.evidence.iter().any(|e| e.contains("ThrottlingException")));
    }

    #[test]
    fn guardrail_interventions_on_input_are_an_injection_surge() {
        let c = firing(
            "AWS/Bedrock/Guardrails",
            "InvocationsIntervened",
            &[
                ("GuardrailContentSource", "Input"),
                (
                    "GuardrailArn",
                    "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc",
                ),
            ],
        );
        assert_eq!(c.kind, Kind::InjectionSurge);
        assert!(
            c.evidence
                .contains(&"dimension GuardrailContentSource=Input".to_owned())
        );
    }

    #[test]
    fn guardrail_interventions_without_content_source_are_an_injection_surge() {
        let c = firing("AWS/Bedrock/Guardrails", "InvocationsIntervened", &[]);
        assert_eq!(c.kind, Kind::InjectionSurge);
        assert!(
            c.evidence
                .contains(&"no GuardrailContentSource dimension".to_owned())
        );
    }

    #[test]
    fn guardrail_interventions_on_output_are_not_an_injection_surge() {
        let c = firing(
            "AWS/Bedrock/Guardrails",
            "InvocationsIntervened",
            &[("GuardrailContentSource", "Output")],
        );
        assert_ne!(c.kind, Kind::InjectionSurge);
    }

    #[test]
    fn blocked_prompt_app_metric_is_an_injection_surge() {
        assert_eq!(
            firing("ChatApp", "BlockedPromptCount", &[]).kind,
            Kind::InjectionSurge
        );
    }

    #[test]
    fn denied_api_call_is_access_denied() {
        let c = run(&api_alert(
            "ec2.amazonaws.com",
            "DescribeInstances",
            Some("Client.UnauthorizedOperation"),
            &[],
        ));
        assert_eq!(c.kind, Kind::AccessDenied);
    }

    #[test]
    fn error_alarm_with_denied_calls_is_access_denied_not_error_spike() {
        let alert = alarm_alert(
            AlarmState::Alarm,
            vec![metric(
                "AWS/Lambda",
                "Errors",
                &[("FunctionName", "tool-fn")],
            )],
        );
        let plain = classify(&alert, &Correlation::default(), &RuleSet::builtin());
        assert_eq!(plain.kind, Kind::ErrorSpike);

        let mut denied = change(
            "bedrock.amazonaws.com",
            "InvokeModel",
            Some("AccessDeniedException"),
            &[],
        );
        denied.actor.role_arn = Some("arn:aws:iam::123456789012:role/tool-role".to_owned());
        let correlation = Correlation {
            denied: vec![denied.clone(), denied],
            facts: ["denied_calls".to_owned()].into_iter().collect(),
            ..Correlation::default()
        };
        let c = classify(&alert, &correlation, &RuleSet::builtin());
        assert_eq!(c.kind, Kind::AccessDenied);
        assert_eq!(c.severity, Severity::High);
        assert!(
            c.evidence
                .contains(&"context: 2 denied calls by role tool-role in the window".to_owned()),
            "{:?}",
            c.evidence
        );
    }

    #[test]
    fn error_alarm_after_permission_removal_names_the_role_and_change() {
        let alert = alarm_alert(
            AlarmState::Alarm,
            vec![metric("AWS/Bedrock", "InvocationClientErrors", &[])],
        );
        let correlation = Correlation {
            causes: vec![ProbableCause {
                event_id: "ev-9".to_owned(),
                event_name: "DetachRolePolicy".to_owned(),
                event_source: "iam.amazonaws.com".to_owned(),
                actor: "admin/alice".to_owned(),
                time: t0(),
                source_ip: None,
                user_agent: None,
                reason: "changed 4 min before the alarm".to_owned(),
                score: 90,
                resources: vec![
                    "arn:aws:iam::aws:policy/AmazonBedrockFullAccess".to_owned(),
                    "tool-role".to_owned(),
                ],
                console_link: None,
            }],
            resource_roles: ["arn:aws:iam::123456789012:role/tool-role".to_owned()]
                .into_iter()
                .collect(),
            facts: ["permission_removed_on_resource_role".to_owned()]
                .into_iter()
                .collect(),
            ..Correlation::default()
        };
        let c = classify(&alert, &correlation, &RuleSet::builtin());
        assert_eq!(c.kind, Kind::AccessDenied);
        assert!(
            c.evidence.contains(
                &"context: permission removed on the resource's role tool-role (DetachRolePolicy by admin/alice)"
                    .to_owned()
            ),
            "{:?}",
            c.evidence
        );
    }

    #[test]
    fn bedrock_server_errors_are_an_error_spike() {
        let c = firing("AWS/Bedrock", "InvocationServerErrors", &[]);
        assert_eq!(c.kind, Kind::ErrorSpike);
        assert_eq!(
            firing("AWS/ApiGateway", "5XXError", &[]).kind,
            Kind::ErrorSpike
        );
    }

    #[test]
    fn latency_metrics_are_a_latency_regression() {
        assert_eq!(
            firing("AWS/Bedrock", "InvocationLatency", &[]).kind,
            Kind::LatencyRegression
        );
        assert_eq!(
            firing("AWS/Lambda", "Duration", &[]).kind,
            Kind::LatencyRegression
        );
    }

    #[test]
    fn invocation_log_delivery_failure_is_a_logging_failure() {
        let c = firing("AWS/Bedrock", "ModelInvocationLogsS3DeliveryFailure", &[]);
        assert_eq!(c.kind, Kind::LoggingFailure);
        assert_eq!(
            firing(
                "AWS/Bedrock",
                "ModelInvocationLargeDataS3DeliveryFailure",
                &[]
            )
            .kind,
            Kind::LoggingFailure
        );
    }

    #[test]
    fn stop_logging_is_critical_audit_tampering() {
        let c = run(&api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            None,
            &[],
        ));
        assert_eq!(c.kind, Kind::AuditTampering);
        assert_eq!(c.severity, Severity::Critical);
        assert!(
            c.evidence
                .contains(&"event StopLogging (cloudtrail.amazonaws.com)".to_owned())
        );
    }

    #[test]
    fn event_selectors_dropping_management_events_are_audit_tampering() {
        let c = run(&api_alert(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            None,
            &["management_events_excluded"],
        ));
        assert_eq!(c.kind, Kind::AuditTampering);
        assert!(
            c.evidence
                .contains(&"fact management_events_excluded".to_owned())
        );
        let benign = run(&api_alert(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            None,
            &[],
        ));
        assert_ne!(benign.kind, Kind::AuditTampering);
    }

    #[test]
    fn failed_stop_logging_is_still_audit_tampering_one_step_lower() {
        let c = run(&api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            Some("InvalidTrailNameException"),
            &[],
        ));
        assert_eq!(c.kind, Kind::AuditTampering);
        assert_eq!(c.severity, Severity::High);
        assert!(
            c.evidence
                .iter()
                .any(|e| e.contains("failed with InvalidTrailNameException"))
        );
    }

    #[test]
    fn deleting_a_guardrail_is_a_high_guardrail_change() {
        let c = run(&api_alert(
            "bedrock.amazonaws.com",
            "DeleteGuardrail",
            None,
            &[],
        ));
        assert_eq!(c.kind, Kind::GuardrailChange);
        assert_eq!(c.severity, Severity::High);
        assert_eq!(
            run(&api_alert(
                "bedrock.amazonaws.com",
                "UpdateGuardrail",
                None,
                &[]
            ))
            .kind,
            Kind::GuardrailChange
        );
    }

    #[test]
    fn detaching_a_role_policy_is_a_permission_change() {
        let c = run(&api_alert(
            "iam.amazonaws.com",
            "DetachRolePolicy",
            None,
            &["removes_permission"],
        ));
        assert_eq!(c.kind, Kind::PermissionChange);
        assert!(
            c.evidence.contains(
                &"event DetachRolePolicy (iam.amazonaws.com) matched \"Detach*Policy\"".to_owned()
            ),
            "{:?}",
            c.evidence
        );
    }

    #[test]
    fn attaching_an_admin_policy_is_a_critical_permission_change() {
        let c = run(&api_alert(
            "iam.amazonaws.com",
            "AttachRolePolicy",
            None,
            &["admin_policy"],
        ));
        assert_eq!(c.kind, Kind::PermissionChange);
        assert_eq!(c.severity, Severity::Critical);
    }

    #[test]
    fn a_public_trust_policy_is_public_exposure() {
        let c = run(&api_alert(
            "iam.amazonaws.com",
            "UpdateAssumeRolePolicy",
            None,
            &["public_principal"],
        ));
        assert_eq!(c.kind, Kind::PublicExposure);
    }

    #[test]
    fn model_entitlement_and_bedrock_grants_are_model_access_changes() {
        assert_eq!(
            run(&api_alert(
                "bedrock.amazonaws.com",
                "PutFoundationModelEntitlement",
                None,
                &[]
            ))
            .kind,
            Kind::ModelAccessChange
        );
        assert_eq!(
            run(&api_alert(
                "iam.amazonaws.com",
                "PutRolePolicy",
                None,
                &["grants_bedrock"]
            ))
            .kind,
            Kind::ModelAccessChange
        );
    }

    #[test]
    fn public_bucket_policy_and_lambda_permission_are_public_exposure() {
        let c = run(&api_alert(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            None,
            &["public_principal"],
        ));
        assert_eq!(c.kind, Kind::PublicExposure);
        assert_eq!(c.severity, Severity::Critical);
        assert_eq!(
            run(&api_alert(
                "lambda.amazonaws.com",
                "AddPermission20150331v2",
                None,
                &["public_principal"]
            ))
            .kind,
            Kind::PublicExposure
        );
        assert_eq!(
            run(&api_alert(
                "s3.amazonaws.com",
                "DeleteBucketPublicAccessBlock",
                None,
                &[]
            ))
            .kind,
            Kind::PublicExposure
        );
        // Without the fact a bucket policy change is not exposure.
        assert_ne!(
            run(&api_alert("s3.amazonaws.com", "PutBucketPolicy", None, &[])).kind,
            Kind::PublicExposure
        );
    }

    #[test]
    fn non_compliant_config_rule_is_medium_config_drift() {
        let c = run(&config_alert(
            ConfigChangeKind::ComplianceChange,
            Some("NON_COMPLIANT"),
            "AWS::EC2::SecurityGroup",
        ));
        assert_eq!(c.kind, Kind::ConfigDrift);
        assert_eq!(c.severity, Severity::Medium);
        let ok = run(&config_alert(
            ConfigChangeKind::ComplianceChange,
            Some("COMPLIANT"),
            "AWS::EC2::SecurityGroup",
        ));
        assert_eq!((ok.kind, ok.severity), (Kind::ConfigDrift, Severity::Info));
        let sg = run(&config_alert(
            ConfigChangeKind::ConfigurationItemChange,
            None,
            "AWS::EC2::SecurityGroup",
        ));
        assert_eq!((sg.kind, sg.severity), (Kind::ConfigDrift, Severity::Low));
    }

    #[test]
    fn alarm_back_to_ok_is_resolved_even_for_a_throttle_metric() {
        let c = run(&alarm_alert(
            AlarmState::Ok,
            vec![metric("AWS/Bedrock", "InvocationThrottles", &[])],
        ));
        assert_eq!(c.kind, Kind::Resolved);
        assert_eq!(c.severity, Severity::Info);
        assert!(c.evidence.contains(&"state OK (was ALARM)".to_owned()));
    }

    #[test]
    fn unknown_alarm_is_unknown_with_the_alarm_severity() {
        let c = firing("Custom/Shop", "OrdersPlaced", &[]);
        assert_eq!(c.kind, Kind::Unknown);
        assert_eq!(c.rule, DEFAULT_RULE_ID);
        assert_eq!(c.severity, Severity::Medium);
        let insufficient = run(&alarm_alert(
            AlarmState::InsufficientData,
            vec![metric("Custom/Shop", "OrdersPlaced", &[])],
        ));
        assert_eq!(
            (insufficient.kind, insufficient.severity),
            (Kind::Unknown, Severity::Low)
        );
        let call = run(&api_alert("s3.amazonaws.com", "CreateBucket", None, &[]));
        assert_eq!((call.kind, call.severity), (Kind::Unknown, Severity::Low));
    }

    #[test]
    fn user_rule_overrides_builtin_by_id_in_place() {
        let user = RuleSet::from_yaml(
            "rules:\n  - id: bedrock-invocation-throttles\n    kind: throttle_spike\n    severity: critical\n    when:\n      alarm_state: ALARM\n      metric: InvocationThrottles\n",
        );
        assert!(user.is_ok(), "{user:?}");
        let rules =
            RuleSet::builtin().extended_with(user.unwrap_or_else(|_| RuleSet { rules: vec![] }));
        assert_eq!(rules.len(), RuleSet::builtin().len());
        let alert = alarm_alert(
            AlarmState::Alarm,
            vec![metric("AWS/Bedrock", "InvocationThrottles", &[])],
        );
        let c = classify(&alert, &Correlation::default(), &rules);
        assert_eq!(
            (c.kind, c.severity),
            (Kind::ThrottleSpike, Severity::Critical)
        );
        // The override kept its place: OK still resolves.
        let ok = alarm_alert(
            AlarmState::Ok,
            vec![metric("AWS/Bedrock", "InvocationThrottles", &[])],
        );
        assert_eq!(
            classify(&ok, &Correlation::default(), &rules).kind,
            Kind::Resolved
        );
    }

    #[test]
    fn new_user_rules_are_evaluated_before_builtins() {
        let user = RuleSet::from_yaml(
            "rules:\n  - id: shop-orders\n    kind: error_spike\n    severity: high\n    description: orders stopped\n    when:\n      namespace: Custom/*\n      metric: [OrdersPlaced]\n",
        );
        assert!(user.is_ok(), "{user:?}");
        let rules =
            RuleSet::builtin().extended_with(user.unwrap_or_else(|_| RuleSet { rules: vec![] }));
        assert_eq!(
            rules.rules().first().map(|r| r.id.as_str()),
            Some("shop-orders")
        );
        let c = classify(
            &alarm_alert(
                AlarmState::Alarm,
                vec![metric("Custom/Shop", "OrdersPlaced", &[])],
            ),
            &Correlation::default(),
            &rules,
        );
        assert_eq!((c.kind, c.rule.as_str()), (Kind::ErrorSpike, "shop-orders"));
        assert!(
            c.evidence
                .contains(&"namespace Custom/Shop matched \"Custom/*\"".to_owned())
        );
    }

    #[test]
    fn unknown_field_in_a_user_rule_is_an_error_naming_it() {
        let err = RuleSet::from_yaml(
            "rules:\n  - id: ok-rule\n    kind: resolved\n    severity: info\n    when: {alarm_state: OK}\n  - id: typo-rule\n    kind: error_spike\n    severity: high\n    when:\n      metrc: Errors\n",
        );
        let text = match err {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        assert!(text.contains("metrc"), "{text}");
        assert!(text.contains("typo-rule"), "{text}");
        assert!(text.contains("#2"), "{text}");
    }

    #[test]
    fn bad_values_and_duplicate_ids_are_errors() {
        let bad_state = RuleSet::from_yaml(
            "rules:\n  - id: r\n    kind: resolved\n    severity: info\n    when: {alarm_state: ALRAM}\n",
        );
        assert!(
            matches!(&bad_state, Err(RuleError::Rule { .. })),
            "{bad_state:?}"
        );
        assert!(format!("{:?}", bad_state.err()).contains("ALRAM"));
        let dup = RuleSet::from_yaml(
            "rules:\n  - {id: r, kind: resolved, severity: info, when: {}}\n  - {id: r, kind: resolved, severity: info, when: {}}\n",
        );
        assert!(matches!(dup, Err(RuleError::DuplicateId { .. })));
        let top = RuleSet::from_yaml("rule: []\n");
        assert!(matches!(top, Err(RuleError::File(_))));
        assert!(RuleSet::from_yaml("").is_ok_and(|r| r.is_empty()));
    }
}
