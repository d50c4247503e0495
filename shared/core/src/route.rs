//! Routing: the owners file of docs/DEPLOY.md "The owners file" and top-down route matching.
//!
//! An owners file is parsed and validated once ([`Owners::from_yaml`]) into compiled routes
//! (globs built, kinds and severities checked); [`route`] then matches one alert against them,
//! top-down, and [`explain`] turns the decision into the text `vigil routes test` prints.
//!
//! Invariant: routing is pure and total. Every alert gets at least one destination (the routes
//! that matched, or else the default), the same inputs always give the same decision, and the
//! decision says why. A condition that needs a field the alert does not have (a `namespace` on
//! an API-call alert, a tag that was never fetched) fails: no route matches by accident.
//!
//! Matching rules, in the words the owners file uses:
//! - Routes are tried in file order. The first route that matches stops the search, unless it
//!   says `continue: true`. When no route matches, the `default` destination is used.
//! - Within a route every condition under `match` must hold; they are checked in the order the
//!   file lists them, so "the first condition that failed" is the first one the reader sees.
//!   A route without conditions matches every alert.
//! - A list means "any of these". Glob patterns use `*` (any run of characters) and `?` (one
//!   character) and are case-sensitive, like the AWS names they match.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};
use wildmatch::WildMatch;

use crate::model::{Alert, AlertBody, Kind, Severity};
use crate::runbook::Runbooks;

/// The owners-file schema version this module reads.
pub const OWNERS_VERSION: u64 = 1;

/// The name [`route`] gives the default route in a [`RouteDecision`]; no route may use it.
pub const DEFAULT_ROUTE_NAME: &str = "default";

/// The reason recorded when an alert falls through to the default route.
pub const DEFAULT_ROUTE_REASON: &str = "no route matched; default route";

/// Where a route sends an alert, and who owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The owning team, e.g. `ai-platform`. Sent as an SNS message attribute for filter policies.
    pub team: String,
    /// Slack channel name or id (bot-token mode) and/or the name of the secret holding the
    /// webhook URL (webhook mode). Never the URL or token itself.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Name of the secret (Secrets Manager / SSM) that holds the incoming-webhook URL.
    #[serde(default)]
    pub slack_webhook_secret: Option<String>,
    /// SNS topic that also receives the alert.
    #[serde(default)]
    pub sns_topic_arn: Option<String>,
    /// Base URL the runbook links of this team's alerts are built on.
    #[serde(default)]
    pub runbook_base_url: Option<String>,
    /// Slack mentions, e.g. `<!subteam^S123>` or `@ai-oncall`.
    #[serde(default)]
    pub mention: Vec<String>,
    /// Runbook playbooks per kind (the `runbooks.yaml` shape: kind -> playbooks) used instead
    /// of the configured ones for alerts routed here; when none of them fits the alert, the
    /// configured ones still apply. Validated with the rest of the owners file.
    #[serde(default, skip_serializing_if = "Runbooks::is_empty")]
    pub runbooks: Runbooks,
}

/// Why an owners file was refused. Every variant names where the problem is: the field path,
/// and for a route its name (or `#N`, its 1-based position, when it has no usable name).
///
/// None of these is worth retrying: the same file fails the same way until someone edits it.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    /// The text is not YAML at all (the source carries the line and column).
    #[error("owners file is not valid YAML: {0}")]
    Syntax(#[source] serde_yaml_ng::Error),
    /// A problem outside the routes: `version`, `routes` itself, or the `default` destination.
    #[error("owners file: {field}: {message}")]
    File {
        /// Path of the offending field, e.g. `default.team`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A problem inside one route.
    #[error("route `{route}`: {field}: {message}")]
    Route {
        /// The route's name, or `#N` when it has none.
        route: String,
        /// Path of the offending field inside the route, e.g. `match.kind`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two routes share a name; decisions and `vigil routes test` identify routes by name.
    #[error(
        "route name `{name}` is used by routes #{first} and #{second}; route names must be unique"
    )]
    DuplicateRoute {
        /// The repeated name.
        name: String,
        /// 1-based position of the first route with that name.
        first: usize,
        /// 1-based position of the second.
        second: usize,
    },
}

/// A parsed and validated owners file: routes in file order plus the default destination.
#[derive(Debug, Clone)]
pub struct Owners {
    routes: Vec<Route>,
    default: Destination,
}

impl Owners {
    /// Parses and validates an owners file (see the module docs and `examples/owners.yaml`).
    ///
    /// Unknown fields are refused, so a typo never silently widens a route.
    pub fn from_yaml(text: &str) -> Result<Owners, OwnersError> {
        let mut doc: Value = serde_yaml_ng::from_str(text).map_err(OwnersError::Syntax)?;
        // `<<: *anchor` lets several routes share one destination block.
        doc.apply_merge().map_err(OwnersError::Syntax)?;
        parse_owners(&doc)
    }

    /// An owners file with no routes: every alert goes to `destination`. For callers that have
    /// no owners file (a single-team install, tests). The destination is taken as given.
    pub fn single(destination: Destination) -> Owners {
        Owners {
            routes: Vec::new(),
            default: destination,
        }
    }

    /// The destination used when no route matches.
    pub fn default_destination(&self) -> &Destination {
        &self.default
    }

    /// Route names, in the order they are tried.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    /// Every destination the file can send to, as `(route name, destination)`, the default
    /// last under [`DEFAULT_ROUTE_NAME`]. Useful to check that every secret and topic exists.
    pub fn destinations(&self) -> impl Iterator<Item = (&str, &Destination)> {
        self.routes
            .iter()
            .map(|r| (r.name.as_str(), &r.destination))
            .chain(std::iter::once((DEFAULT_ROUTE_NAME, &self.default)))
    }
}

/// The outcome of routing one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDecision {
    /// The routes the alert goes to, in file order; never empty (the default when
    /// nothing else matched). Two routes may name the same destination; collapsing those is the caller's job.
    pub matched: Vec<MatchedRoute>,
    /// True when no route matched and `matched` holds only the default.
    pub used_default: bool,
    /// Every route that was tried, in order, with its outcome.
    pub considered: Vec<RouteTrace>,
    /// Routes never tried because a route above them matched without `continue: true`.
    pub skipped: Vec<String>,
}

/// A route the alert goes to, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRoute {
    /// The route's name ([`DEFAULT_ROUTE_NAME`] for the default).
    pub name: String,
    /// Where to send the alert.
    pub destination: Destination,
    /// One sentence per condition that held, e.g. `kind throttle_spike matched`.
    pub reasons: Vec<String>,
}

/// One route tried while routing an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTrace {
    /// The route's name.
    pub name: String,
    /// Whether every condition held.
    pub matched: bool,
    /// When it did not match: the first condition that failed, as a sentence.
    pub failure: Option<String>,
}

/// Routes `alert` (already classified as `kind` / `severity`) through `owners`, top-down.
pub fn route(owners: &Owners, alert: &Alert, kind: Kind, severity: Severity) -> RouteDecision {
    let subject = Subject {
        alert,
        kind,
        severity,
    };
    let mut matched = Vec::new();
    let mut considered = Vec::new();
    let mut remaining = owners.routes.iter();
    for candidate in remaining.by_ref() {
        match candidate.check(&subject) {
            Ok(reasons) => {
                considered.push(RouteTrace {
                    name: candidate.name.clone(),
                    matched: true,
                    failure: None,
                });
                matched.push(MatchedRoute {
                    name: candidate.name.clone(),
                    destination: candidate.destination.clone(),
                    reasons,
                });
                if !candidate.continue_matching {
                    break;
                }
            }
            Err(failure) => considered.push(RouteTrace {
                name: candidate.name.clone(),
                matched: false,
                failure: Some(failure),
            }),
        }
    }
    let skipped = remaining.map(|r| r.name.clone()).collect();
    let used_default = matched.is_empty();
    if used_default {
        matched.push(MatchedRoute {
            name: DEFAULT_ROUTE_NAME.to_owned(),
            destination: owners.default.clone(),
            reasons: vec![DEFAULT_ROUTE_REASON.to_owned()],
        });
    }
    RouteDecision {
        matched,
        used_default,
        considered,
        skipped,
    }
}

/// The text `vigil routes test` prints: each route tried, why it matched or the first
/// condition that failed, the routes never tried, and where the alert goes.
pub fn explain(decision: &RouteDecision) -> String {
    let mut out = String::new();
    let tried = decision.considered.len();
    let hits = decision.considered.iter().filter(|t| t.matched).count();
    let _ = writeln!(
        out,
        "{tried} {} tried, {hits} matched",
        plural(tried, "route", "routes")
    );
    for (position, trace) in decision.considered.iter().enumerate() {
        let n = position + 1;
        match &trace.failure {
            Some(failure) => {
                let _ = writeln!(out, "  {n}. {}: no match: {failure}", trace.name);
            }
            None => {
                let _ = writeln!(out, "  {n}. {}: matched", trace.name);
                let reasons = decision
                    .matched
                    .iter()
                    .find(|m| m.name == trace.name)
                    .map(|m| m.reasons.as_slice())
                    .unwrap_or_default();
                for reason in reasons {
                    let _ = writeln!(out, "       - {reason}");
                }
            }
        }
    }
    if !decision.skipped.is_empty() {
        let stopper = decision
            .considered
            .last()
            .map_or("a route", |t| t.name.as_str());
        let _ = writeln!(
            out,
            "  not tried ({stopper} matched without `continue: true`): {}",
            decision.skipped.join(", ")
        );
    }
    if decision.used_default {
        let _ = writeln!(out, "  {DEFAULT_ROUTE_NAME}: {DEFAULT_ROUTE_REASON}");
    }
    let _ = writeln!(out, "destinations:");
    for m in &decision.matched {
        let _ = writeln!(
            out,
            "  {}: {}",
            m.name,
            describe_destination(&m.destination)
        );
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn describe_destination(d: &Destination) -> String {
    let mut parts = vec![format!("team {}", d.team)];
    if let Some(channel) = &d.slack_channel {
        parts.push(format!("slack {channel}"));
    }
    if let Some(secret) = &d.slack_webhook_secret {
        parts.push(format!("webhook secret {secret}"));
    }
    if let Some(topic) = &d.sns_topic_arn {
        parts.push(format!("sns {topic}"));
    }
    if !d.mention.is_empty() {
        parts.push(format!("mention {}", d.mention.join(" ")));
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Compiled routes and matching
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Route {
    name: String,
    conditions: Vec<Condition>,
    destination: Destination,
    continue_matching: bool,
}

impl Route {
    /// `Ok(reasons)` when every condition holds, else `Err(the first failure)`.
    fn check(&self, subject: &Subject<'_>) -> Result<Vec<String>, String> {
        if self.conditions.is_empty() {
            return Ok(vec![
                "route has no conditions, so it matches every alert".to_owned(),
            ]);
        }
        let mut reasons = Vec::new();
        for condition in &self.conditions {
            reasons.extend(condition.check(subject)?);
        }
        Ok(reasons)
    }
}

/// A glob pattern, kept with its source text for the reasons.
#[derive(Debug, Clone)]
struct Glob {
    pattern: String,
    matcher: WildMatch,
}

impl Glob {
    fn new(pattern: String) -> Glob {
        let matcher = WildMatch::new(&pattern);
        Glob { pattern, matcher }
    }

    fn is_match(&self, value: &str) -> bool {
        self.matcher.matches(value)
    }

    fn has_wildcard(&self) -> bool {
        self.pattern.contains(['*', '?'])
    }
}

/// One condition under a route's `match`.
#[derive(Debug, Clone)]
enum Condition {
    AlarmName(Vec<Glob>),
    Namespace(Vec<Glob>),
    Dimensions(Vec<(String, Glob)>),
    Resource(Vec<Glob>),
    ResourceType(Vec<Glob>),
    EventSource(Vec<Glob>),
    Account(Vec<String>),
    Region(Vec<Glob>),
    Tags(Vec<(String, Glob)>),
    Kind(Vec<Kind>),
    Severity(Vec<Severity>),
    MinSeverity(Severity),
}

/// The alert being routed, with its classification.
struct Subject<'a> {
    alert: &'a Alert,
    kind: Kind,
    severity: Severity,
}

impl Subject<'_> {
    /// The value `alarm_name` matches, and what it is when it is not an alarm name.
    fn name(&self) -> Option<(&str, &'static str)> {
        match &self.alert.body {
            AlertBody::Alarm(a) => Some((a.name.as_str(), "")),
            AlertBody::ApiCall(c) => Some((c.event_name.as_str(), " (the event name)")),
            AlertBody::Config(c) => match (&c.rule_name, &c.resource_id) {
                (Some(rule), _) => Some((rule.as_str(), " (the Config rule name)")),
                (None, Some(id)) => Some((id.as_str(), " (the Config resource id)")),
                (None, None) => None,
            },
        }
    }

    fn namespaces(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(alarm) = self.alert.alarm() {
            for ns in alarm.metrics.iter().filter_map(|m| m.namespace.as_deref()) {
                if !out.contains(&ns) {
                    out.push(ns);
                }
            }
        }
        out
    }

    /// What `resource` matches: an alarm's dimension values, the resources an API call
    /// touched, a Config change's resource id and name. Deduplicated, in order.
    fn resources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        match &self.alert.body {
            AlertBody::Alarm(a) => {
                for m in &a.metrics {
                    out.extend(m.dimensions.values().map(String::as_str));
                }
            }
            AlertBody::ApiCall(c) => out.extend(c.resources.iter().map(String::as_str)),
            AlertBody::Config(c) => {
                out.extend(c.resource_id.as_deref());
                out.extend(c.resource_name.as_deref());
            }
        }
        let mut unique: Vec<&str> = Vec::with_capacity(out.len());
        for r in out {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        unique
    }

    fn account(&self) -> Option<&str> {
        self.alert
            .account
            .as_deref()
            .or_else(|| self.alert.api_call().and_then(|c| c.account.as_deref()))
    }

    fn region(&self) -> Option<&str> {
        self.alert
            .region
            .as_deref()
            .or_else(|| self.alert.api_call().and_then(|c| c.region.as_deref()))
    }
}

impl Condition {
    /// `Ok(reasons)` when the condition holds (one sentence per fact checked), else
    /// `Err(why not)`.
    fn check(&self, subject: &Subject<'_>) -> Result<Vec<String>, String> {
        match self {
            Condition::AlarmName(globs) => {
                let (name, what) = subject.name().ok_or_else(|| {
                    "alert has no name (a Config change with neither rule name nor resource id)"
                        .to_owned()
                })?;
                match globs.iter().find(|g| g.is_match(name)) {
                    Some(g) => Ok(vec![format!(
                        "alarm_name {name:?}{what} matched {:?}",
                        g.pattern
                    )]),
                    None => Err(format!(
                        "alarm_name {name:?}{what} did not match {}",
                        quoted_alternatives(globs)
                    )),
                }
            }
            Condition::Namespace(globs) => {
                let namespaces = subject.namespaces();
                if namespaces.is_empty() {
                    return Err("alert has no namespace".to_owned());
                }
                match_plain("namespace", &namespaces, globs)
            }
            Condition::Dimensions(wanted) => {
                let alarm = subject
                    .alert
                    .alarm()
                    .ok_or_else(|| "alert has no dimensions".to_owned())?;
                let dims = alarm.dimensions();
                wanted
                    .iter()
                    .map(|(key, glob)| match dims.get(key) {
                        None if dims.is_empty() => Err(format!(
                            "dimension {key} is missing (the alarm has no dimensions)"
                        )),
                        None => Err(format!(
                            "dimension {key} is missing (the alarm has {})",
                            dims.keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        Some(value) if glob.is_match(value) => Ok(format!(
                            "dimension {key} {value:?} matched {:?}",
                            glob.pattern
                        )),
                        Some(value) => Err(format!(
                            "dimension {key} {value:?} did not match {:?}",
                            glob.pattern
                        )),
                    })
                    .collect()
            }
            Condition::Resource(globs) => {
                let resources = subject.resources();
                if resources.is_empty() {
                    return Err("alert names no resource".to_owned());
                }
                for resource in &resources {
                    if let Some(g) = globs.iter().find(|g| g.is_match(resource)) {
                        return Ok(vec![format!(
                            "resource {resource:?} matched {:?}",
                            g.pattern
                        )]);
                    }
                }
                Err(format!(
                    "no resource matched {} (resources: {})",
                    quoted_alternatives(globs),
                    capped_list(&resources)
                ))
            }
            Condition::ResourceType(globs) => {
                let resource_type = subject
                    .alert
                    .config()
                    .and_then(|c| c.resource_type.as_deref())
                    .ok_or_else(|| "alert has no resource type".to_owned())?;
                match_plain("resource_type", &[resource_type], globs)
            }
            Condition::EventSource(globs) => {
                let source = subject
                    .alert
                    .api_call()
                    .map(|c| c.event_source.as_str())
                    .ok_or_else(|| "alert has no event source".to_owned())?;
                match_plain("event_source", &[source], globs)
            }
            Condition::Account(accounts) => {
                let account = subject
                    .account()
                    .ok_or_else(|| "alert has no account".to_owned())?;
                if accounts.iter().any(|a| a == account) {
                    Ok(vec![format!("account {account} matched")])
                } else {
                    Err(format!(
                        "account {account} is not {}",
                        plain_alternatives(accounts.iter().map(String::as_str))
                    ))
                }
            }
            Condition::Region(globs) => {
                let region = subject
                    .region()
                    .ok_or_else(|| "alert has no region".to_owned())?;
                match_plain("region", &[region], globs)
            }
            Condition::Tags(wanted) => {
                let alarm = subject
                    .alert
                    .alarm()
                    .ok_or_else(|| "alert has no tags".to_owned())?;
                if alarm.tags.is_empty() {
                    return Err("alarm tags are not known (none were found or fetched)".to_owned());
                }
                wanted
                    .iter()
                    .map(|(key, glob)| match alarm.tags.get(key) {
                        None => Err(format!("alarm has no tag {key}")),
                        Some(value) if glob.is_match(value) => {
                            Ok(format!("tag {key} {value:?} matched {:?}", glob.pattern))
                        }
                        Some(value) => Err(format!(
                            "tag {key} {value:?} did not match {:?}",
                            glob.pattern
                        )),
                    })
                    .collect()
            }
            Condition::Kind(kinds) => {
                if kinds.contains(&subject.kind) {
                    Ok(vec![format!("kind {} matched", subject.kind)])
                } else {
                    Err(format!(
                        "kind {} is not {}",
                        subject.kind,
                        plain_alternatives(kinds.iter().map(|k| k.as_str()))
                    ))
                }
            }
            Condition::Severity(severities) => {
                if severities.contains(&subject.severity) {
                    Ok(vec![format!("severity {} matched", subject.severity)])
                } else {
                    Err(format!(
                        "severity {} is not {}",
                        subject.severity,
                        plain_alternatives(severities.iter().map(|s| s.as_str()))
                    ))
                }
            }
            // `Severity` orders most severe first, so "at least `min`" is `<= min`.
            Condition::MinSeverity(min) => {
                if subject.severity <= *min {
                    Ok(vec![format!(
                        "severity {} is at least {min}",
                        subject.severity
                    )])
                } else {
                    Err(format!(
                        "severity {} is below min_severity {min}",
                        subject.severity
                    ))
                }
            }
        }
    }
}

/// Matches identifier-like values (namespace, region, ...) that read fine unquoted.
fn match_plain(field: &str, values: &[&str], globs: &[Glob]) -> Result<Vec<String>, String> {
    for value in values {
        if let Some(g) = globs.iter().find(|g| g.is_match(value)) {
            return Ok(vec![if g.has_wildcard() {
                format!("{field} {value} matched {}", g.pattern)
            } else {
                format!("{field} {value} matched")
            }]);
        }
    }
    let wanted = plain_alternatives(globs.iter().map(|g| g.pattern.as_str()));
    Err(match values {
        [one] => format!("{field} {one} is not {wanted}"),
        many => format!("{field} ({}) is not {wanted}", many.join(", ")),
    })
}

fn plain_alternatives<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("one of {}", many.join(", ")),
    }
}

fn quoted_alternatives(globs: &[Glob]) -> String {
    match globs {
        [one] => format!("{:?}", one.pattern),
        many => format!(
            "any of {}",
            many.iter()
                .map(|g| format!("{:?}", g.pattern))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// At most a handful of values: an alert can touch many resources and a reason is one line.
fn capped_list(values: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = values
        .iter()
        .take(SHOWN)
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > SHOWN {
        let _ = write!(text, " ...and {} more", values.len() - SHOWN);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------
//
// The file is read into a YAML `Value` and walked by hand rather than derived with serde, so
// that every error can name the route (by name, which serde's paths cannot) and the field, and
// so conditions keep the order the file gives them.

const TOP_FIELDS: &[&str] = &["version", "routes", "default"];
const DESTINATION_FIELDS: &[&str] = &[
    "team",
    "slack_channel",
    "slack_webhook_secret",
    "sns_topic_arn",
    "runbook_base_url",
    "mention",
    "runbooks",
];
const ROUTE_ONLY_FIELDS: &[&str] = &["name", "match", "continue"];
const MATCH_FIELDS: &[&str] = &[
    "alarm_name",
    "namespace",
    "dimensions",
    "resource",
    "resource_type",
    "event_source",
    "account",
    "region",
    "tags",
    "kind",
    "severity",
    "min_severity",
];
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// A problem at a field path, before it is placed in a route or the file.
struct FieldError {
    field: String,
    message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn under(self, parent: &str) -> FieldError {
        FieldError {
            field: format!("{parent}.{}", self.field),
            message: self.message,
        }
    }

    fn in_file(self) -> OwnersError {
        OwnersError::File {
            field: self.field,
            message: self.message,
        }
    }

    fn in_route(self, route: &str) -> OwnersError {
        OwnersError::Route {
            route: route.to_owned(),
            field: self.field,
            message: self.message,
        }
    }
}

fn parse_owners(doc: &Value) -> Result<Owners, OwnersError> {
    let top = match doc {
        Value::Null => {
            return Err(FieldError::new(
                "version",
                "the owners file is empty; it needs `version: 1`, `routes` and `default`",
            )
            .in_file());
        }
        other => mapping(other, TOP_FIELDS).map_err(|m| OwnersError::File {
            field: "(top level)".to_owned(),
            message: m,
        })?,
    };

    match top.get("version") {
        None => {
            return Err(FieldError::new("version", "missing; add `version: 1`").in_file());
        }
        Some(Value::Number(n)) if n.as_u64() == Some(OWNERS_VERSION) => {}
        Some(other) => {
            return Err(FieldError::new(
                "version",
                format!(
                    "version {} is not supported; this vigil reads version {OWNERS_VERSION}",
                    scalar_text(other).unwrap_or_else(|| describe(other).to_owned())
                ),
            )
            .in_file());
        }
    }

    let route_values: &[Value] = match top.get("routes") {
        None | Some(Value::Null) => &[],
        Some(Value::Sequence(seq)) => seq,
        Some(other) => {
            return Err(FieldError::new(
                "routes",
                format!("expected a list of routes, found {}", describe(other)),
            )
            .in_file());
        }
    };

    let mut routes = Vec::with_capacity(route_values.len());
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (index, value) in route_values.iter().enumerate() {
        let position = index + 1;
        let parsed = parse_route(value, position)?;
        if let Some(first) = positions.insert(parsed.name.clone(), position) {
            return Err(OwnersError::DuplicateRoute {
                name: parsed.name,
                first,
                second: position,
            });
        }
        routes.push(parsed);
    }

    let default = match top.get("default") {
        None | Some(Value::Null) => {
            return Err(FieldError::new(
                "default",
                "missing; every owners file needs a default destination (at least `team`)",
            )
            .in_file());
        }
        Some(value) => {
            let map = mapping(value, DESTINATION_FIELDS)
                .map_err(|m| FieldError::new("default", m).in_file())?;
            parse_destination(map).map_err(|e| e.under("default").in_file())?
        }
    };

    Ok(Owners { routes, default })
}

fn parse_route(value: &Value, position: usize) -> Result<Route, OwnersError> {
    // Name the route in errors as early as possible, even when the rest is broken.
    let label = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map_or_else(|| format!("#{position}"), str::to_owned);

    let allowed: Vec<&str> = ROUTE_ONLY_FIELDS
        .iter()
        .chain(DESTINATION_FIELDS)
        .copied()
        .collect();
    let map = mapping(value, &allowed).map_err(|m| OwnersError::Route {
        route: label.clone(),
        field: "(route)".to_owned(),
        message: m,
    })?;

    let name = match map.get("name") {
        None | Some(Value::Null) => {
            return Err(
                FieldError::new("name", "missing; every route needs a unique name")
                    .in_route(&label),
            );
        }
        Some(v) => text(v).map_err(|m| FieldError::new("name", m).in_route(&label))?,
    };
    if name == DEFAULT_ROUTE_NAME {
        return Err(FieldError::new(
            "name",
            format!("`{DEFAULT_ROUTE_NAME}` is reserved for the default route; pick another name"),
        )
        .in_route(&label));
    }

    let conditions = match map.get("match") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_match(v).map_err(|e| e.in_route(&label))?,
    };

    let continue_matching = match map.get("continue") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(FieldError::new(
                "continue",
                format!("expected true or false, found {}", describe(other)),
            )
            .in_route(&label));
        }
    };

    let destination = parse_destination(map).map_err(|e| e.in_route(&label))?;

    Ok(Route {
        name,
        conditions,
        destination,
        continue_matching,
    })
}

fn parse_destination(map: &Mapping) -> Result<Destination, FieldError> {
    let team = match map.get("team") {
        None | Some(Value::Null) => {
            return Err(FieldError::new("team", "missing; name the owning team"));
        }
        Some(v) => text(v).map_err(|m| FieldError::new("team", m))?,
    };

    let slack_channel = optional_text(map, "slack_channel")?;
    if slack_channel.as_deref().is_some_and(looks_like_url) {
        return Err(FieldError::new(
            "slack_channel",
            "expected a channel name or id such as `#ai-platform-alerts`, not a URL",
        ));
    }

    let slack_webhook_secret = optional_text(map, "slack_webhook_secret")?;
    // The value is deliberately not echoed: it is probably a live webhook URL.
    if slack_webhook_secret.as_deref().is_some_and(looks_like_url) {
        return Err(FieldError::new(
            "slack_webhook_secret",
            "must be the name of the secret that holds the webhook URL, never the URL itself",
        ));
    }

    let sns_topic_arn = optional_text(map, "sns_topic_arn")?;
    if let Some(arn) = &sns_topic_arn {
        let parts: Vec<&str> = arn.split(':').collect();
        let valid = matches!(
            parts.as_slice(),
            ["arn", partition, "sns", region, account, topic]
                if !partition.is_empty() && !region.is_empty()
                    && is_account_id(account) && !topic.is_empty()
        );
        if !valid {
            return Err(FieldError::new(
                "sns_topic_arn",
                format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)"),
            ));
        }
    }

    let runbook_base_url = optional_text(map, "runbook_base_url")?;
    if let Some(url) = &runbook_base_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(FieldError::new(
            "runbook_base_url",
            format!("{url:?} is not an http(s) URL"),
        ));
    }

    let mention = match map.get("mention") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => one_or_many(v, text).map_err(|m| FieldError::new("mention", m))?,
    };

    // Same schema and checks as a runbooks file: unknown placeholders, `do` values or empty
    // steps are refused here, naming the path inside `runbooks`.
    let runbooks = match map.get("runbooks") {
        None | Some(Value::Null) => Runbooks::default(),
        Some(v) => Runbooks::from_value(v.clone()).map_err(|e| {
            let field = match e.path() {
                "" => "runbooks".to_owned(),
                path => format!("runbooks.{path}"),
            };
            FieldError::new(&field, e.message())
        })?,
    };

    Ok(Destination {
        team,
        slack_channel,
        slack_webhook_secret,
        sns_topic_arn,
        runbook_base_url,
        mention,
        runbooks,
    })
}

fn parse_match(value: &Value) -> Result<Vec<Condition>, FieldError> {
    let map = mapping(value, MATCH_FIELDS).map_err(|m| FieldError::new("match", m))?;
    if map.contains_key("severity") && map.contains_key("min_severity") {
        return Err(FieldError::new(
            "match",
            "use `severity` (a list) or `min_severity` (a floor), not both",
        ));
    }
    let mut conditions = Vec::with_capacity(map.len());
    for (key, value) in map {
        let field = key.as_str().unwrap_or_default();
        let condition =
            parse_condition(field, value).map_err(|m| FieldError::new(field, m).under("match"))?;
        conditions.push(condition);
    }
    Ok(conditions)
}

fn parse_condition(field: &str, value: &Value) -> Result<Condition, String> {
    let globs = |v: &Value| -> Result<Vec<Glob>, String> {
        Ok(one_or_many(v, text)?.into_iter().map(Glob::new).collect())
    };
    Ok(match field {
        "alarm_name" => Condition::AlarmName(globs(value)?),
        "namespace" => Condition::Namespace(globs(value)?),
        "dimensions" => Condition::Dimensions(glob_map(value)?),
        "resource" => Condition::Resource(globs(value)?),
        "resource_type" => Condition::ResourceType(globs(value)?),
        "event_source" => Condition::EventSource(globs(value)?),
        "account" => Condition::Account(one_or_many(value, account_id)?),
        "region" => Condition::Region(globs(value)?),
        "tags" => Condition::Tags(glob_map(value)?),
        "kind" => Condition::Kind(one_or_many(value, kind)?),
        "severity" => Condition::Severity(one_or_many(value, severity)?),
        "min_severity" => Condition::MinSeverity(severity(value)?),
        // `mapping` already refused every other key.
        other => return Err(format!("unknown condition `{other}`")),
    })
}

/// A mapping whose keys are all strings from `allowed`.
fn mapping<'a>(value: &'a Value, allowed: &[&str]) -> Result<&'a Mapping, String> {
    let Value::Mapping(map) = value else {
        return Err(format!("expected a mapping, found {}", describe(value)));
    };
    for key in map.keys() {
        let Some(name) = key.as_str() else {
            return Err(format!(
                "field names must be strings, found {}",
                describe(key)
            ));
        };
        if !allowed.contains(&name) {
            return Err(format!(
                "unknown field `{name}`; expected one of {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(map)
}

/// A string, or a list of them with at least one entry.
fn one_or_many<T>(
    value: &Value,
    item: impl Fn(&Value) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    match value {
        Value::Sequence(items) if items.is_empty() => {
            Err("an empty list matches nothing; list at least one value or drop the field".into())
        }
        Value::Sequence(items) => items.iter().map(item).collect(),
        single => Ok(vec![item(single)?]),
    }
}

/// `{ name: glob, ... }`, at least one entry; values may be any scalar (`StatusCode: 500`).
fn glob_map(value: &Value) -> Result<Vec<(String, Glob)>, String> {
    let Value::Mapping(map) = value else {
        return Err(format!(
            "expected a mapping such as `{{ ModelId: \"anthropic.*\" }}`, found {}",
            describe(value)
        ));
    };
    if map.is_empty() {
        return Err("an empty mapping constrains nothing; drop the field".into());
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, pattern) in map {
        let key = text(key).map_err(|m| format!("a name: {m}"))?;
        let pattern = text(pattern).map_err(|m| format!("{key}: {m}"))?;
        out.push((key, Glob::new(pattern)));
    }
    Ok(out)
}

/// A non-empty scalar as text. Numbers and booleans are accepted as written, so
/// `StatusCode: 500` means the string `500`.
fn text(value: &Value) -> Result<String, String> {
    match scalar_text(value) {
        Some(s) if s.trim().is_empty() => Err("must not be empty".into()),
        Some(s) => Ok(s),
        None => Err(format!("expected a string, found {}", describe(value))),
    }
}

fn optional_text(map: &Mapping, field: &str) -> Result<Option<String>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(v)
            .map(Some)
            .map_err(|m| FieldError::new(field, format!("{m} (omit the field instead)"))),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A 12-digit account id. Unquoted ids are YAML numbers and lose their leading zeros, so a
/// number is padded back to 12 digits.
fn account_id(value: &Value) -> Result<String, String> {
    let id = match value {
        Value::Number(n) => n
            .as_u64()
            .map(|n| format!("{n:012}"))
            .ok_or_else(|| format!("{n} is not an AWS account id"))?,
        other => text(other)?,
    };
    if is_account_id(&id) {
        Ok(id)
    } else {
        Err(format!("{id:?} is not an AWS account id (12 digits)"))
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A [`Kind`] by its serde name, so the file and the JSON output use the same ids.
fn kind(value: &Value) -> Result<Kind, String> {
    let name = text(value)?;
    serde_yaml_ng::from_value(Value::String(name.clone())).map_err(|_| {
        format!(
            "unknown kind {name:?}; expected one of {}",
            Kind::ALL.map(Kind::as_str).join(", ")
        )
    })
}

/// A [`Severity`] by its serde name.
fn severity(value: &Value) -> Result<Severity, String> {
    let name = text(value)?;
    serde_yaml_ng::from_value(Value::String(name.clone())).map_err(|_| {
        format!(
            "unknown severity {name:?}; expected one of {}",
            SEVERITIES.map(Severity::as_str).join(", ")
        )
    })
}

fn looks_like_url(s: &str) -> bool {
    s.contains("://") || s.contains("hooks.slack.com")
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{
        Actor, Alarm, AlarmState, AlarmType, Change, ConfigChange, ConfigChangeKind, InputFamily,
        MetricRef,
    };

    const EXAMPLE: &str = include_str!("../../../examples/owners.yaml");

    fn time() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn alert(body: AlertBody) -> Alert {
        Alert {
            id: "test".into(),
            input: InputFamily::AlarmEventbridge,
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            time: time(),
            body,
        }
    }

    fn alarm(name: &str, namespace: &str, dims: &[(&str, &str)], tags: &[(&str, &str)]) -> Alert {
        let pairs = |items: &[(&str, &str)]| -> BTreeMap<String, String> {
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        alert(AlertBody::Alarm(Alarm {
            name: name.into(),
            arn: None,
            description: None,
            alarm_type: AlarmType::Metric,
            state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            reason: "threshold crossed".into(),
            metrics: vec![MetricRef {
                namespace: Some(namespace.into()),
                name: "InvocationThrottles".into(),
                dimensions: pairs(dims),
                stat: Some("Sum".into()),
                period: Some(60),
            }],
            expression: None,
            alarm_rule: None,
            triggering_alarms: Vec::new(),
            threshold: Some(10.0),
            comparison: None,
            recent_datapoints: Vec::new(),
            tags: pairs(tags),
        }))
    }

    fn bedrock_throttle_alarm() -> Alert {
        alarm(
            "bedrock-invocation-throttles",
            "AWS/Bedrock",
            &[("ModelId", "anthropic.claude-3-5-sonnet-20240620-v1:0")],
            &[("team", "ai-platform")],
        )
    }

    fn api_call(event_name: &str, event_source: &str, resources: &[&str]) -> Alert {
        let mut a = alert(AlertBody::ApiCall(Change {
            event_id: "e-1".into(),
            event_name: event_name.into(),
            event_source: event_source.into(),
            time: time(),
            region: Some("us-east-1".into()),
            account: Some("111122223333".into()),
            actor: Actor::default(),
            source_ip: None,
            user_agent: None,
            read_only: false,
            error_code: None,
            error_message: None,
            request: BTreeMap::new(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            facts: Default::default(),
        }));
        a.input = InputFamily::Cloudtrail;
        a
    }

    fn config_change(rule: Option<&str>, resource_type: &str, resource_id: &str) -> Alert {
        let mut a = alert(AlertBody::Config(ConfigChange {
            change: ConfigChangeKind::ComplianceChange,
            rule_name: rule.map(str::to_owned),
            resource_type: Some(resource_type.into()),
            resource_id: Some(resource_id.into()),
            resource_name: None,
            compliance: Some("NON_COMPLIANT".into()),
            previous_compliance: Some("COMPLIANT".into()),
            change_type: None,
            changed_properties: Vec::new(),
        }));
        a.input = InputFamily::Config;
        a
    }

    /// One route named `r` with the given `match` block, and a default.
    fn one_route(match_block: &str) -> Owners {
        let yaml = format!(
            "version: 1\nroutes:\n  - name: r\n    team: t\n    match:\n{}\ndefault:\n  team: d\n",
            match_block
                .lines()
                .map(|l| format!("      {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        Owners::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"))
    }

    fn matches(match_block: &str, alert: &Alert, kind: Kind, severity: Severity) -> RouteDecision {
        route(&one_route(match_block), alert, kind, severity)
    }

    fn hit(d: &RouteDecision) -> Vec<String> {
        assert!(!d.used_default, "expected a match, got {:?}", d.considered);
        d.matched[0].reasons.clone()
    }

    fn miss(d: &RouteDecision) -> String {
        assert!(d.used_default, "expected no match, got {:?}", d.matched);
        d.considered[0].failure.clone().unwrap()
    }

    fn parse_err(yaml: &str) -> String {
        Owners::from_yaml(yaml).unwrap_err().to_string()
    }

    // --- the example file -------------------------------------------------------------------

    #[test]
    fn example_owners_file_parses() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        assert_eq!(owners.default_destination().team, "platform");
        let names: Vec<&str> = owners.route_names().collect();
        assert!(names.contains(&"security-sensitive-changes"));
        assert!(names.contains(&"ai-platform-bedrock"));
        assert!(names.contains(&"ai-platform-guardrails"));
        assert!(names.contains(&"agents-tool-functions"));
        assert_eq!(owners.destinations().count(), names.len() + 1);
    }

    #[test]
    fn example_routes_bedrock_throttles_to_ai_platform() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let d = route(
            &owners,
            &bedrock_throttle_alarm(),
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert!(!d.used_default);
        assert_eq!(d.matched.len(), 1);
        assert_eq!(d.matched[0].destination.team, "ai-platform");
        assert!(d.matched[0].reasons.contains(
            &r#"alarm_name "bedrock-invocation-throttles" matched "bedrock-*""#.to_owned()
        ));
    }

    #[test]
    fn example_routes_guardrail_interventions_to_ai_platform() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let a = alarm(
            "guardrails-input-interventions",
            "AWS/Bedrock/Guardrails",
            &[
                ("GuardrailContentSource", "Input"),
                ("Operation", "ApplyGuardrail"),
            ],
            &[],
        );
        let d = route(&owners, &a, Kind::InjectionSurge, Severity::Critical);
        let teams: Vec<&str> = d
            .matched
            .iter()
            .map(|m| m.destination.team.as_str())
            .collect();
        assert_eq!(teams, ["ai-platform"]);
    }

    #[test]
    fn example_sends_guardrail_changes_to_security_and_ai_platform() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let a = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &["gr-123"]);
        let d = route(&owners, &a, Kind::GuardrailChange, Severity::High);
        let teams: Vec<&str> = d
            .matched
            .iter()
            .map(|m| m.destination.team.as_str())
            .collect();
        assert_eq!(teams, ["security", "ai-platform"]);
    }

    #[test]
    fn example_sends_public_agent_tool_to_security_and_agents() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let a = api_call(
            "AddPermission20150331v2",
            "lambda.amazonaws.com",
            &["agent-tool-web-search"],
        );
        let d = route(&owners, &a, Kind::PublicExposure, Severity::Critical);
        let teams: Vec<&str> = d
            .matched
            .iter()
            .map(|m| m.destination.team.as_str())
            .collect();
        assert_eq!(teams, ["security", "agents"]);
    }

    #[test]
    fn example_routes_agent_tool_errors_to_agents() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let a = alarm(
            "agent-tool-web-search-errors",
            "AWS/Lambda",
            &[("FunctionName", "agent-tool-web-search")],
            &[],
        );
        let d = route(&owners, &a, Kind::ErrorSpike, Severity::High);
        let teams: Vec<&str> = d
            .matched
            .iter()
            .map(|m| m.destination.team.as_str())
            .collect();
        assert_eq!(teams, ["agents"]);
    }

    #[test]
    fn example_sends_unowned_alarms_to_platform() {
        let owners = Owners::from_yaml(EXAMPLE).unwrap();
        let a = alarm(
            "EC2 CPU Utilization Anomaly",
            "AWS/EC2",
            &[("InstanceId", "i-1")],
            &[],
        );
        let d = route(&owners, &a, Kind::Unknown, Severity::Medium);
        assert!(d.used_default);
        assert_eq!(d.matched[0].destination.team, "platform");
    }

    // --- each matcher ---------------------------------------------------------------------

    #[test]
    fn alarm_name_glob_matches_and_explains() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            r#"alarm_name: "bedrock-*""#,
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            hit(&d),
            [r#"alarm_name "bedrock-invocation-throttles" matched "bedrock-*""#]
        );
        let d = matches(
            r#"alarm_name: ["guardrails-*", "x"]"#,
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            miss(&d),
            r#"alarm_name "bedrock-invocation-throttles" did not match any of "guardrails-*", "x""#
        );
    }

    #[test]
    fn alarm_name_is_the_event_name_for_api_calls_and_the_rule_for_config() {
        let a = api_call("StopLogging", "cloudtrail.amazonaws.com", &[]);
        let d = matches(
            r#"alarm_name: "Stop*""#,
            &a,
            Kind::AuditTampering,
            Severity::Critical,
        );
        assert_eq!(
            hit(&d),
            [r#"alarm_name "StopLogging" (the event name) matched "Stop*""#]
        );

        let c = config_change(
            Some("s3-bucket-public-read-prohibited"),
            "AWS::S3::Bucket",
            "b",
        );
        let d = matches(
            r#"alarm_name: "s3-*""#,
            &c,
            Kind::ConfigDrift,
            Severity::High,
        );
        assert!(hit(&d)[0].contains("(the Config rule name)"));

        let c = config_change(None, "AWS::EC2::SecurityGroup", "sg-123");
        let d = matches(
            r#"alarm_name: "sg-*""#,
            &c,
            Kind::ConfigDrift,
            Severity::High,
        );
        assert!(hit(&d)[0].contains("(the Config resource id)"));
    }

    #[test]
    fn namespace_matches_string_or_list_and_needs_an_alarm() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "namespace: AWS/Bedrock",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(hit(&d), ["namespace AWS/Bedrock matched"]);
        let d = matches(
            "namespace: [AWS/Lambda, AWS/Bedrock/Guardrails]",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            miss(&d),
            "namespace AWS/Bedrock is not one of AWS/Lambda, AWS/Bedrock/Guardrails"
        );
        let call = api_call("InvokeModel", "bedrock.amazonaws.com", &[]);
        let d = matches(
            "namespace: AWS/Bedrock",
            &call,
            Kind::Unknown,
            Severity::Info,
        );
        assert_eq!(miss(&d), "alert has no namespace");
    }

    #[test]
    fn dimensions_must_all_match() {
        let a = alarm(
            "bedrock-x",
            "AWS/Bedrock",
            &[
                ("ModelId", "anthropic.claude-3-haiku"),
                ("Region", "us-east-1"),
            ],
            &[],
        );
        let d = matches(
            r#"dimensions: { ModelId: "anthropic.*", Region: "us-*" }"#,
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(hit(&d).len(), 2);
        let d = matches(
            r#"dimensions: { ModelId: "anthropic.*", Region: "eu-*" }"#,
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            miss(&d),
            r#"dimension Region "us-east-1" did not match "eu-*""#
        );
        let d = matches(
            r#"dimensions: { GuardrailArn: "*" }"#,
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            miss(&d),
            "dimension GuardrailArn is missing (the alarm has ModelId, Region)"
        );
        let call = api_call("InvokeModel", "bedrock.amazonaws.com", &[]);
        let d = matches(
            r#"dimensions: { ModelId: "*" }"#,
            &call,
            Kind::Unknown,
            Severity::Info,
        );
        assert_eq!(miss(&d), "alert has no dimensions");
    }

    #[test]
    fn resource_matches_dimension_values_call_resources_and_config_ids() {
        let a = alarm(
            "errs",
            "AWS/Lambda",
            &[("FunctionName", "agent-tool-search")],
            &[],
        );
        let d = matches(
            r#"resource: "agent-tool-*""#,
            &a,
            Kind::ErrorSpike,
            Severity::High,
        );
        assert_eq!(
            hit(&d),
            [r#"resource "agent-tool-search" matched "agent-tool-*""#]
        );

        let call = api_call(
            "UpdateFunctionConfiguration20150331v2",
            "lambda.amazonaws.com",
            &["billing-fn"],
        );
        let d = matches(
            r#"resource: "agent-tool-*""#,
            &call,
            Kind::Unknown,
            Severity::Info,
        );
        assert_eq!(
            miss(&d),
            r#"no resource matched "agent-tool-*" (resources: "billing-fn")"#
        );

        let none = api_call("StopLogging", "cloudtrail.amazonaws.com", &[]);
        let d = matches(r#"resource: "*""#, &none, Kind::Unknown, Severity::Info);
        assert_eq!(miss(&d), "alert names no resource");

        let c = config_change(Some("rule"), "AWS::Lambda::Function", "agent-tool-x");
        let d = matches(
            r#"resource: "agent-tool-*""#,
            &c,
            Kind::ConfigDrift,
            Severity::Low,
        );
        hit(&d);
    }

    #[test]
    fn resource_type_applies_to_config_changes_only() {
        let c = config_change(Some("rule"), "AWS::S3::Bucket", "b");
        let d = matches(
            "resource_type: \"AWS::S3::*\"",
            &c,
            Kind::ConfigDrift,
            Severity::High,
        );
        assert_eq!(
            hit(&d),
            ["resource_type AWS::S3::Bucket matched AWS::S3::*"]
        );
        let a = bedrock_throttle_alarm();
        let d = matches(
            "resource_type: AWS::S3::Bucket",
            &a,
            Kind::ConfigDrift,
            Severity::High,
        );
        assert_eq!(miss(&d), "alert has no resource type");
    }

    #[test]
    fn event_source_applies_to_api_calls_only() {
        let call = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &[]);
        let d = matches(
            "event_source: bedrock.amazonaws.com",
            &call,
            Kind::GuardrailChange,
            Severity::High,
        );
        assert_eq!(hit(&d), ["event_source bedrock.amazonaws.com matched"]);
        let d = matches(
            "event_source: [iam.amazonaws.com]",
            &call,
            Kind::GuardrailChange,
            Severity::High,
        );
        assert_eq!(
            miss(&d),
            "event_source bedrock.amazonaws.com is not iam.amazonaws.com"
        );
        let a = bedrock_throttle_alarm();
        let d = matches(
            "event_source: bedrock.amazonaws.com",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "alert has no event source");
    }

    #[test]
    fn account_and_region_match() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "account: [\"111122223333\", \"444455556666\"]\nregion: \"us-*\"",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(
            hit(&d),
            [
                "account 111122223333 matched",
                "region us-east-1 matched us-*"
            ]
        );
        let d = matches(
            "account: \"444455556666\"",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "account 111122223333 is not 444455556666");
        let mut no_account = a.clone();
        no_account.account = None;
        let d = matches(
            "account: \"111122223333\"",
            &no_account,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "alert has no account");
        let d = matches("region: eu-west-1", &a, Kind::ThrottleSpike, Severity::High);
        assert_eq!(miss(&d), "region us-east-1 is not eu-west-1");
    }

    #[test]
    fn unquoted_account_ids_keep_their_leading_zeros() {
        let owners = one_route("account: 012345678901");
        let mut a = bedrock_throttle_alarm();
        a.account = Some("012345678901".into());
        hit(&route(&owners, &a, Kind::ThrottleSpike, Severity::High));
    }

    #[test]
    fn tags_match_when_known() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "tags: { team: ai-platform }",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(hit(&d), [r#"tag team "ai-platform" matched "ai-platform""#]);
        let d = matches(
            "tags: { team: data }",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), r#"tag team "ai-platform" did not match "data""#);
        let d = matches(
            "tags: { env: prod }",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "alarm has no tag env");
        let untagged = alarm("bedrock-x", "AWS/Bedrock", &[], &[]);
        let d = matches(
            "tags: { team: ai-platform }",
            &untagged,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert!(miss(&d).starts_with("alarm tags are not known"));
        let call = api_call("StopLogging", "cloudtrail.amazonaws.com", &[]);
        let d = matches(
            "tags: { team: x }",
            &call,
            Kind::AuditTampering,
            Severity::High,
        );
        assert_eq!(miss(&d), "alert has no tags");
    }

    #[test]
    fn kind_matches_by_stable_id() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "kind: [throttle_spike, injection_surge]",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(hit(&d), ["kind throttle_spike matched"]);
        let d = matches("kind: error_spike", &a, Kind::ThrottleSpike, Severity::High);
        assert_eq!(miss(&d), "kind throttle_spike is not error_spike");
    }

    #[test]
    fn severity_list_and_floor() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "severity: [critical, high]",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(hit(&d), ["severity high matched"]);
        let d = matches(
            "severity: [critical, high]",
            &a,
            Kind::ThrottleSpike,
            Severity::Low,
        );
        assert_eq!(miss(&d), "severity low is not one of critical, high");
        let d = matches(
            "min_severity: high",
            &a,
            Kind::ThrottleSpike,
            Severity::Critical,
        );
        assert_eq!(hit(&d), ["severity critical is at least high"]);
        let d = matches(
            "min_severity: high",
            &a,
            Kind::ThrottleSpike,
            Severity::Medium,
        );
        assert_eq!(miss(&d), "severity medium is below min_severity high");
    }

    #[test]
    fn first_failing_condition_follows_file_order() {
        let a = bedrock_throttle_alarm();
        let d = matches(
            "kind: error_spike\nnamespace: AWS/Lambda",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "kind throttle_spike is not error_spike");
        let d = matches(
            "namespace: AWS/Lambda\nkind: error_spike",
            &a,
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert_eq!(miss(&d), "namespace AWS/Bedrock is not AWS/Lambda");
    }

    #[test]
    fn route_without_conditions_matches_everything() {
        let yaml = "version: 1\nroutes:\n  - name: all\n    team: t\ndefault:\n  team: d\n";
        let owners = Owners::from_yaml(yaml).unwrap();
        let d = route(
            &owners,
            &bedrock_throttle_alarm(),
            Kind::Unknown,
            Severity::Info,
        );
        assert_eq!(d.matched[0].name, "all");
    }

    // --- top-down, continue, default --------------------------------------------------------

    const LAYERED: &str = r##"
version: 1
routes:
  - name: security
    match: { kind: [guardrail_change, audit_tampering] }
    team: security
    continue: true
  - name: bedrock
    match: { event_source: bedrock.amazonaws.com }
    team: ai-platform
  - name: bedrock-catch-all
    match: { event_source: "bedrock.*" }
    team: nobody
default:
  team: platform
  slack_channel: "#platform-alerts"
"##;

    #[test]
    fn continue_keeps_matching_and_first_plain_match_stops() {
        let owners = Owners::from_yaml(LAYERED).unwrap();
        let a = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &[]);
        let d = route(&owners, &a, Kind::GuardrailChange, Severity::High);
        let names: Vec<&str> = d.matched.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["security", "bedrock"]);
        assert_eq!(d.skipped, ["bedrock-catch-all"]);
        assert!(!d.used_default);
    }

    #[test]
    fn without_continue_the_first_match_wins() {
        let owners =
            Owners::from_yaml(&LAYERED.replace("continue: true", "continue: false")).unwrap();
        let a = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &[]);
        let d = route(&owners, &a, Kind::GuardrailChange, Severity::High);
        let names: Vec<&str> = d.matched.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["security"]);
        assert_eq!(d.skipped, ["bedrock", "bedrock-catch-all"]);
    }

    #[test]
    fn no_match_uses_the_default_with_its_reason() {
        let owners = Owners::from_yaml(LAYERED).unwrap();
        let a = api_call("CreateUser", "iam.amazonaws.com", &[]);
        let d = route(&owners, &a, Kind::PermissionChange, Severity::Medium);
        assert!(d.used_default);
        assert_eq!(d.matched.len(), 1);
        assert_eq!(d.matched[0].name, DEFAULT_ROUTE_NAME);
        assert_eq!(d.matched[0].destination.team, "platform");
        assert_eq!(d.matched[0].reasons, [DEFAULT_ROUTE_REASON]);
        assert_eq!(d.considered.len(), 3);
        assert!(d.considered.iter().all(|t| !t.matched));
    }

    #[test]
    fn single_sends_everything_to_its_destination() {
        let owners = Owners::single(Destination {
            team: "solo".into(),
            ..Destination::default()
        });
        let d = route(
            &owners,
            &bedrock_throttle_alarm(),
            Kind::ThrottleSpike,
            Severity::High,
        );
        assert!(d.used_default);
        assert_eq!(d.matched[0].destination.team, "solo");
    }

    #[test]
    fn decision_serializes_for_replay_json() {
        let owners = Owners::from_yaml(LAYERED).unwrap();
        let a = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &[]);
        let d = route(&owners, &a, Kind::GuardrailChange, Severity::High);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["matched"][0]["name"], "security");
        assert_eq!(json["considered"][1]["matched"], true);
        let back: RouteDecision = serde_json::from_value(json).unwrap();
        assert_eq!(back, d);
    }

    // --- explain ----------------------------------------------------------------------------

    #[test]
    fn explain_names_the_failing_condition_and_the_reasons() {
        let owners = Owners::from_yaml(LAYERED).unwrap();
        let a = api_call("UpdateGuardrail", "bedrock.amazonaws.com", &[]);
        let text = explain(&route(&owners, &a, Kind::GuardrailChange, Severity::High));
        assert!(text.contains("1. security: matched"), "{text}");
        assert!(text.contains("- kind guardrail_change matched"), "{text}");
        assert!(
            text.contains("- event_source bedrock.amazonaws.com matched"),
            "{text}"
        );
        assert!(
            text.contains(
                "not tried (bedrock matched without `continue: true`): bedrock-catch-all"
            ),
            "{text}"
        );

        let a = api_call("CreateUser", "iam.amazonaws.com", &[]);
        let text = explain(&route(
            &owners,
            &a,
            Kind::PermissionChange,
            Severity::Medium,
        ));
        assert!(
            text.contains(
                "2. bedrock: no match: event_source iam.amazonaws.com is not bedrock.amazonaws.com"
            ),
            "{text}"
        );
        assert!(text.contains("1. security: no match: kind permission_change is not one of guardrail_change, audit_tampering"), "{text}");
        assert!(text.contains(DEFAULT_ROUTE_REASON), "{text}");
        assert!(
            text.contains("default: team platform, slack #platform-alerts"),
            "{text}"
        );
    }

    // --- validation -------------------------------------------------------------------------

    #[test]
    fn unknown_route_field_is_named_with_the_route() {
        let err = parse_err(
            "version: 1\nroutes:\n  - name: ai\n    team: t\n    slack_chanel: \"#x\"\ndefault:\n  team: d\n",
        );
        assert!(err.contains("route `ai`"), "{err}");
        assert!(err.contains("unknown field `slack_chanel`"), "{err}");
    }

    #[test]
    fn unknown_match_field_is_named_with_the_route() {
        let err = parse_err(
            "version: 1\nroutes:\n  - name: ai\n    team: t\n    match:\n      namespac: AWS/Bedrock\ndefault:\n  team: d\n",
        );
        assert!(
            err.starts_with("route `ai`: match: unknown field `namespac`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_top_level_and_default_fields_are_named() {
        let err = parse_err("version: 1\nrouts: []\ndefault:\n  team: d\n");
        assert!(err.contains("unknown field `routs`"), "{err}");
        let err = parse_err("version: 1\ndefault:\n  team: d\n  channel: x\n");
        assert!(err.contains("default: unknown field `channel`"), "{err}");
    }

    #[test]
    fn duplicate_route_names_are_rejected() {
        let err = parse_err(
            "version: 1\nroutes:\n  - name: a\n    team: t\n  - name: b\n    team: t\n  - name: a\n    team: u\ndefault:\n  team: d\n",
        );
        assert_eq!(
            err,
            "route name `a` is used by routes #1 and #3; route names must be unique"
        );
    }

    #[test]
    fn invalid_kind_and_severity_name_the_field_and_the_choices() {
        let err = parse_err(
            "version: 1\nroutes:\n  - name: ai\n    team: t\n    match: { kind: [throttle_spike, throtle_spike] }\ndefault:\n  team: d\n",
        );
        assert!(
            err.starts_with("route `ai`: match.kind: unknown kind \"throtle_spike\""),
            "{err}"
        );
        assert!(err.contains("injection_surge"), "{err}");
        let err = parse_err(
            "version: 1\nroutes:\n  - name: ai\n    team: t\n    match: { min_severity: urgent }\ndefault:\n  team: d\n",
        );
        assert!(
            err.starts_with("route `ai`: match.min_severity: unknown severity \"urgent\""),
            "{err}"
        );
    }

    #[test]
    fn file_level_requirements() {
        assert!(
            parse_err("version: 2\ndefault:\n  team: d\n").contains("version 2 is not supported")
        );
        assert!(parse_err("default:\n  team: d\n").contains("version: missing"));
        assert!(parse_err("version: 1\nroutes: []\n").contains("default: missing"));
        assert!(
            parse_err("version: 1\ndefault:\n  team: \"  \"\n")
                .contains("default.team: must not be empty")
        );
        assert!(
            parse_err("version: 1\ndefault:\n  slack_channel: x\n")
                .contains("default.team: missing")
        );
        assert!(parse_err("").contains("empty"));
        assert!(parse_err("version: [1\n").starts_with("owners file is not valid YAML"));
    }

    #[test]
    fn route_level_requirements() {
        let r = |body: &str| {
            parse_err(&format!(
                "version: 1\nroutes:\n  - {body}\ndefault:\n  team: d\n"
            ))
        };
        assert_eq!(
            r("team: t"),
            "route `#1`: name: missing; every route needs a unique name"
        );
        assert!(r("name: a").starts_with("route `a`: team: missing"));
        assert!(r("name: default\n    team: t").contains("reserved"));
        assert!(
            r("name: a\n    team: t\n    continue: yes")
                .contains("continue: expected true or false")
        );
        assert!(
            r("name: a\n    team: t\n    match: { namespace: [] }")
                .contains("match.namespace: an empty list")
        );
        assert!(
            r("name: a\n    team: t\n    match: { severity: high, min_severity: high }")
                .contains("not both")
        );
        assert!(
            r("name: a\n    team: t\n    match: { account: \"1234\" }")
                .contains("not an AWS account id")
        );
        assert!(
            r("name: a\n    team: t\n    sns_topic_arn: my-topic").contains("not an SNS topic ARN")
        );
        assert!(
            r("name: a\n    team: t\n    runbook_base_url: runbooks")
                .contains("not an http(s) URL")
        );
    }

    #[test]
    fn webhook_url_in_place_of_a_secret_name_is_refused_without_echoing_it() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX";
        let err = parse_err(&format!(
            "version: 1\nroutes:\n  - name: a\n    team: t\n    slack_webhook_secret: \"{url}\"\ndefault:\n  team: d\n"
        ));
        assert!(
            err.contains("slack_webhook_secret: must be the name of the secret"),
            "{err}"
        );
        assert!(!err.contains("XXXXXXXXXXXX"), "{err}");
    }

    #[test]
    fn anchors_and_merge_keys_share_destinations() {
        let yaml = r##"
version: 1
routes:
  - name: a
    match: { kind: throttle_spike }
    <<: &ai { team: ai-platform, slack_channel: "#ai" }
  - name: b
    match: { kind: error_spike }
    <<: *ai
default:
  team: d
"##;
        let owners = Owners::from_yaml(yaml).unwrap();
        let d = route(
            &owners,
            &bedrock_throttle_alarm(),
            Kind::ErrorSpike,
            Severity::High,
        );
        assert_eq!(d.matched[0].name, "b");
        assert_eq!(
            d.matched[0].destination.slack_channel.as_deref(),
            Some("#ai")
        );
    }
    // --- runbook overrides --------------------------------------------------------------------

    const OVERRIDE_OWNERS: &str = r##"
version: 1
routes:
  - name: ai-bedrock
    match:
      namespace: AWS/Bedrock
      alarm_name: "bedrock-*"
    team: ai-platform
    slack_channel: "#ai"
    runbooks:
      throttle_spike:
        - steps:
            - do: check
              title: Our throttle dashboard for {model_id}
              command: aws cloudwatch get-dashboard --dashboard-name bedrock-{region}
            - do: fix
              title: "Fix (run by a person): switch the assistant to the fallback model"
  - name: other
    team: platform
    slack_channel: "#platform"
default:
  team: platform
"##;

    fn evaluate_with(owners: &str, alert: Alert) -> crate::pipeline::Report {
        let settings = crate::pipeline::Settings::with_defaults(Owners::from_yaml(owners).unwrap());
        crate::pipeline::evaluate(
            alert,
            &crate::enrich::Context::default(),
            &settings,
            &crate::redact::Redactor::new(),
        )
    }

    #[test]
    fn a_route_override_replaces_the_builtin_steps_only_for_that_route() {
        let ours = evaluate_with(OVERRIDE_OWNERS, bedrock_throttle_alarm());
        assert_eq!(ours.finding.kind, Kind::ThrottleSpike);
        assert_eq!(ours.route.matched[0].name, "ai-bedrock");
        let titles: Vec<&str> = ours
            .finding
            .runbook
            .iter()
            .map(|s| s.title.as_str())
            .collect();
        assert_eq!(
            titles,
            vec![
                "Our throttle dashboard for anthropic.claude-3-5-sonnet-20240620-v1:0",
                "Fix (run by a person): switch the assistant to the fallback model",
            ]
        );
        assert_eq!(
            ours.finding.runbook[0]
                .command
                .as_ref()
                .map(crate::model::Command::line),
            Some("aws cloudwatch get-dashboard --dashboard-name bedrock-us-east-1")
        );

        // The same kind routed elsewhere keeps the built-in steps.
        let mut elsewhere = bedrock_throttle_alarm();
        if let AlertBody::Alarm(a) = &mut elsewhere.body {
            a.name = "claude-throttles".into();
        }
        let theirs = evaluate_with(OVERRIDE_OWNERS, elsewhere.clone());
        assert_eq!(theirs.route.matched[0].name, "other");
        let builtin = evaluate_with(
            "version: 1\ndefault:\n  team: platform\n  slack_channel: \"#p\"\n",
            elsewhere,
        );
        assert_eq!(theirs.finding.runbook, builtin.finding.runbook);
        assert!(
            theirs
                .finding
                .runbook
                .iter()
                .any(|s| s.title.starts_with("Find the requests-per-minute quota")),
            "{:#?}",
            theirs.finding.runbook
        );

        // Other kinds routed to the overriding route keep the built-in steps too.
        let mut errors = bedrock_throttle_alarm();
        if let AlertBody::Alarm(a) = &mut errors.body {
            a.metrics[0].name = "InvocationServerErrors".into();
        }
        let report = evaluate_with(OVERRIDE_OWNERS, errors);
        assert_eq!(report.finding.kind, Kind::ErrorSpike);
        assert!(
            report
                .finding
                .runbook
                .iter()
                .any(|s| s.title == "Check the model's lifecycle status"),
            "{:#?}",
            report.finding.runbook
        );
    }

    #[test]
    fn route_runbook_overrides_are_validated_naming_the_route_and_path() {
        let owners = Owners::from_yaml(OVERRIDE_OWNERS).unwrap();
        let (_, d) = owners.destinations().next().unwrap();
        assert!(d.runbooks.has(Kind::ThrottleSpike));
        assert!(!d.runbooks.has(Kind::AccessDenied));

        let with = |runbooks: &str| {
            format!(
                "version: 1\nroutes:\n  - name: ai\n    team: ai\n    runbooks:\n{}\ndefault:\n  team: d\n",
                runbooks
                    .lines()
                    .map(|l| format!("      {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        let unknown = parse_err(&with(
            "throttle_spike:\n  - steps:\n      - do: check\n        title: Quota\n        command: aws service-quotas get-service-quota --quota-code {quota}",
        ));
        assert!(
            unknown.starts_with(
                "route `ai`: runbooks.throttle_spike[0].steps[0].command: unknown placeholder `{quota}` in step \"Quota\""
            ),
            "{unknown}"
        );
        let bad_do = parse_err(&with(
            "throttle_spike:\n  - steps:\n      - do: execute\n        title: x",
        ));
        assert!(
            bad_do.starts_with(
                "route `ai`: runbooks.throttle_spike[0].steps[0].do: unknown variant `execute`"
            ),
            "{bad_do}"
        );
        let empty = parse_err(&with("throttle_spike:\n  - steps: []"));
        assert_eq!(
            empty,
            "route `ai`: runbooks.throttle_spike[0].steps: no steps; a playbook needs at least one"
        );
        let kind = parse_err(&with("throttle_spikes: []"));
        assert!(
            kind.starts_with(
                "route `ai`: runbooks.throttle_spikes: unknown kind `throttle_spikes`"
            ),
            "{kind}"
        );
        // The default destination may carry overrides as well, checked the same way.
        let default = parse_err(
            "version: 1\ndefault:\n  team: d\n  runbooks:\n    unknown:\n      - steps:\n          - do: console\n            title: x\n",
        );
        assert_eq!(
            default,
            "owners file: default.runbooks.unknown[0].steps[0].link: a console step needs a link"
        );
    }
}
