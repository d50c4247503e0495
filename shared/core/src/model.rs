//! The normalized data model every stage shares.
//!
//! Invariant: nothing in these types holds prompt or completion text, CloudTrail
//! `responseElements`, or request parameters outside the per-event allow-list
//! (see [`crate::cloudtrail`]). Free text that does pass (alarm descriptions and
//! reasons) is redacted again at render time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::runbook::Command;

/// Which of the five input families of README.md "Usage" an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFamily {
    /// 1: a CloudWatch alarm invoking a Lambda function directly.
    AlarmDirect,
    /// 2: EventBridge `CloudWatch Alarm State Change`.
    AlarmEventbridge,
    /// 3: an SNS record whose `Message` is a CloudWatch alarm notification.
    AlarmSns,
    /// 4: EventBridge `AWS API Call via CloudTrail`, or a raw CloudTrail record / log file.
    Cloudtrail,
    /// 5: AWS Config compliance or configuration-item change (EventBridge or SNS).
    Config,
}

impl InputFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlarmDirect => "alarm_direct",
            Self::AlarmEventbridge => "alarm_eventbridge",
            Self::AlarmSns => "alarm_sns",
            Self::Cloudtrail => "cloudtrail",
            Self::Config => "config",
        }
    }
}

/// Severity, most severe first (so `Ord` sorts critical before info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable classification ids of ARCHITECTURE.md "Classification".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ThrottleSpike,
    InjectionSurge,
    AccessDenied,
    ErrorSpike,
    LatencyRegression,
    LoggingFailure,
    AuditTampering,
    GuardrailChange,
    PermissionChange,
    ModelAccessChange,
    PublicExposure,
    ConfigDrift,
    Resolved,
    Unknown,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::ThrottleSpike,
        Kind::InjectionSurge,
        Kind::AccessDenied,
        Kind::ErrorSpike,
        Kind::LatencyRegression,
        Kind::LoggingFailure,
        Kind::AuditTampering,
        Kind::GuardrailChange,
        Kind::PermissionChange,
        Kind::ModelAccessChange,
        Kind::PublicExposure,
        Kind::ConfigDrift,
        Kind::Resolved,
        Kind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThrottleSpike => "throttle_spike",
            Self::InjectionSurge => "injection_surge",
            Self::AccessDenied => "access_denied",
            Self::ErrorSpike => "error_spike",
            Self::LatencyRegression => "latency_regression",
            Self::LoggingFailure => "logging_failure",
            Self::AuditTampering => "audit_tampering",
            Self::GuardrailChange => "guardrail_change",
            Self::PermissionChange => "permission_change",
            Self::ModelAccessChange => "model_access_change",
            Self::PublicExposure => "public_exposure",
            Self::ConfigDrift => "config_drift",
            Self::Resolved => "resolved",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted input, normalized. `id` is the idempotency key of ARCHITECTURE.md "Noise control":
/// the EventBridge `id`, the alarm ARN (or name) + state timestamp, or the SNS `MessageId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub input: InputFamily,
    pub account: Option<String>,
    pub region: Option<String>,
    /// When it happened: the alarm's state-change time or the API call's event time.
    pub time: DateTime<Utc>,
    #[serde(flatten)]
    pub body: AlertBody,
}

/// What the alert is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertBody {
    Alarm(Alarm),
    ApiCall(Change),
    Config(ConfigChange),
}

impl Alert {
    pub fn alarm(&self) -> Option<&Alarm> {
        match &self.body {
            AlertBody::Alarm(a) => Some(a),
            _ => None,
        }
    }

    pub fn api_call(&self) -> Option<&Change> {
        match &self.body {
            AlertBody::ApiCall(c) => Some(c),
            _ => None,
        }
    }

    pub fn config(&self) -> Option<&ConfigChange> {
        match &self.body {
            AlertBody::Config(c) => Some(c),
            _ => None,
        }
    }

    /// A short name for the thing the alert is about (alarm name, event name, Config rule).
    pub fn name(&self) -> &str {
        match &self.body {
            AlertBody::Alarm(a) => &a.name,
            AlertBody::ApiCall(c) => &c.event_name,
            AlertBody::Config(c) => c
                .rule_name
                .as_deref()
                .or(c.resource_id.as_deref())
                .unwrap_or("AWS Config change"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmType {
    Metric,
    MetricMath,
    AnomalyDetection,
    Composite,
}

/// A CloudWatch alarm state change, from any of the three alarm paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
    pub arn: Option<String>,
    pub description: Option<String>,
    pub alarm_type: AlarmType,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub reason: String,
    /// The metrics the alarm watches (for metric math: every `metricStat` operand).
    pub metrics: Vec<MetricRef>,
    /// Metric-math or anomaly-detection expression, when there is one.
    pub expression: Option<String>,
    /// Composite alarms: the rule and the child alarms that triggered.
    pub alarm_rule: Option<String>,
    pub triggering_alarms: Vec<String>,
    pub threshold: Option<f64>,
    pub comparison: Option<String>,
    pub recent_datapoints: Vec<f64>,
    /// The alarm's tags, when known (from enrichment; used by routing).
    pub tags: BTreeMap<String, String>,
}

impl Alarm {
    /// The namespace of the first metric that has one.
    pub fn namespace(&self) -> Option<&str> {
        self.metrics.iter().find_map(|m| m.namespace.as_deref())
    }

    /// All dimensions of all metrics, merged (first value wins).
    pub fn dimensions(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in &self.metrics {
            for (k, v) in &m.dimensions {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRef {
    pub namespace: Option<String>,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: Option<String>,
    pub period: Option<u64>,
}

/// Who made an API call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `userIdentity.type`: IAMUser, AssumedRole, Root, AWSService, ...
    pub identity_type: Option<String>,
    pub arn: Option<String>,
    /// A readable name: user name, `role/session`, service name or "root".
    pub name: String,
    /// For assumed roles: the role's ARN (`sessionContext.sessionIssuer.arn`).
    pub role_arn: Option<String>,
    /// For assumed roles: the session name (a Lambda function's name when Lambda assumed it).
    pub session_name: Option<String>,
    pub invoked_by: Option<String>,
}

/// One CloudTrail record, reduced to what vigil uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub event_id: String,
    pub event_name: String,
    pub event_source: String,
    pub time: DateTime<Utc>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub actor: Actor,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub read_only: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Request parameters that passed the per-event allow-list (identifiers, never bodies).
    pub request: BTreeMap<String, serde_json::Value>,
    /// Names and ARNs of the resources the call touched (from the allow-listed parameters).
    pub resources: Vec<String>,
    /// Derived facts computed from the full record before it was reduced
    /// (e.g. `public_principal`, `grants_bedrock`, `removes_permission`).
    pub facts: BTreeSet<String>,
}

impl Change {
    /// The service part of the event source: `iam` for `iam.amazonaws.com`.
    pub fn service(&self) -> &str {
        self.event_source
            .split('.')
            .next()
            .unwrap_or(&self.event_source)
    }

    /// A call that failed because the caller lacked permission.
    pub fn is_denied(&self) -> bool {
        self.error_code.as_deref().is_some_and(is_denied_code)
    }

    /// A write that succeeded: the only kind of call that can cause anything.
    pub fn is_effective_write(&self) -> bool {
        !self.read_only && self.error_code.is_none()
    }
}

/// `AccessDenied*`, `*UnauthorizedOperation`, `*AccessDeniedException`.
pub fn is_denied_code(code: &str) -> bool {
    code.starts_with("AccessDenied")
        || code.ends_with("AccessDeniedException")
        || code.ends_with("UnauthorizedOperation")
        || code == "UnauthorizedAccess"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigChangeKind {
    ComplianceChange,
    ConfigurationItemChange,
}

/// An AWS Config notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub change: ConfigChangeKind,
    pub rule_name: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    /// COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA.
    pub compliance: Option<String>,
    pub previous_compliance: Option<String>,
    /// CREATE, UPDATE, DELETE for configuration-item changes.
    pub change_type: Option<String>,
    /// Names (never values) of the changed properties.
    pub changed_properties: Vec<String>,
}

/// The result of classification plus correlation: what the owner is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    /// Id of the rule that matched.
    pub rule: String,
    /// What the rule matched on, one line per condition.
    pub evidence: Vec<String>,
    pub probable_causes: Vec<ProbableCause>,
    pub runbook: Vec<RunbookStep>,
    pub links: Vec<Link>,
    /// Notes about the context: missing sources, partial lookups, CloudTrail lag.
    pub context_notes: Vec<String>,
}

/// A CloudTrail change ranked as a likely cause of an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbableCause {
    pub event_id: String,
    pub event_name: String,
    pub event_source: String,
    pub actor: String,
    pub time: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Honest words: what it changed and how it relates ("changed 4 min before the alarm").
    pub reason: String,
    /// Relevance score; higher ranks first.
    pub score: u32,
    /// The resources the change touched.
    pub resources: Vec<String>,
    pub console_link: Option<String>,
}

/// What a runbook step asks of the person reading it (the `do` of a runbook template).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// A read-only command: look before changing anything.
    Check,
    /// A page to open in the AWS console (or the team's own runbook).
    Console,
    /// A change a person makes. The default, so a step of unknown nature is never presented
    /// as a harmless read.
    #[default]
    Fix,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Console => "console",
            Self::Fix => "fix",
        }
    }
}

/// A runbook step for a person to run; vigil never runs it.
///
/// In JSON: `{"action", "title", "command", "argv", "link"}`, where `command` is the
/// copy-ready line (or `null`) and `argv` its words (absent when there is no command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StepJson", try_from = "StepJson")]
pub struct RunbookStep {
    /// What the step asks: a read-only `check`, a `console` page, or a `fix` a person makes.
    /// Renderers label steps with it.
    pub action: StepAction,
    pub title: String,
    /// The command (AWS CLI), when the step has one: its words, values from the event masked,
    /// and the copy-ready line built once from them. Renderers show the line exactly or a
    /// placeholder, never a changed line (see [`crate::runbook::Command`]).
    pub command: Option<Command>,
    pub link: Option<String>,
}

/// [`RunbookStep`] as JSON: the line and its words side by side.
#[derive(Serialize, Deserialize)]
struct StepJson {
    #[serde(default)]
    action: StepAction,
    title: String,
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    argv: Option<Vec<String>>,
    link: Option<String>,
}

impl From<RunbookStep> for StepJson {
    fn from(s: RunbookStep) -> Self {
        let (command, argv) = match s.command {
            Some(c) => (Some(c.line().to_owned()), Some(c.argv().to_vec())),
            None => (None, None),
        };
        StepJson {
            action: s.action,
            title: s.title,
            command,
            argv,
            link: s.link,
        }
    }
}

impl TryFrom<StepJson> for RunbookStep {
    type Error = String;
    /// The command is rebuilt from `argv`; a `command` line that `argv` does not give is
    /// refused rather than trusted.
    fn try_from(s: StepJson) -> Result<Self, String> {
        let command = match (s.command, s.argv) {
            (None, None) => None,
            (line, Some(argv)) => {
                let built = Command::new(argv)
                    .ok_or_else(|| "a runbook step's `argv` is empty".to_owned())?;
                if line.as_deref().is_some_and(|l| l != built.line()) {
                    return Err("a runbook step's `command` is not its `argv` quoted".to_owned());
                }
                Some(built)
            }
            (Some(_), None) => {
                return Err("a runbook step's `command` comes with its `argv`".to_owned());
            }
        };
        Ok(RunbookStep {
            action: s.action,
            title: s.title,
            command,
            link: s.link,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}
