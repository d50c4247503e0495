//! Rendering: Slack Block Kit, SNS, terminal text and Amazon Q Developer in chat (README.md "Usage").
//!
//! Invariant: renderers read only a [`View`], built once per input, in which every string has
//! already passed the [`Redactor`] under the input's [`ContentPolicy`]. Each renderer then
//! applies its own channel's escaping and enforces its own channel's limits in its builder, so
//! no input, however large or hostile, can produce a message the channel rejects.
//!
//! Runbook commands are the exception to "escape and cut": a step's command line was built
//! once from its words ([`crate::runbook::Command`]) and is shown exactly (only the channel's
//! own lossless encoding applied: JSON, Slack's `&amp;` `&lt;` `&gt;`) or replaced by the
//! [`withheld`] placeholder; no renderer masks, rewrites or truncates it.
//!
//! - [`slack`]: Block Kit message and text fallback, within Slack's block and length limits.
//! - [`sns`]: subject, `MessageStructure=json` body (JSON document + e-mail text), attributes.
//! - [`text`]: what an engineer reads in a terminal (`vigil replay`, `vigil render`).
//! - [`chatbot`]: an Amazon Q Developer in chat custom notification.

pub mod chatbot;
pub mod slack;
pub mod sns;
pub mod text;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::model::{
    Alarm, AlarmState, AlarmType, Alert, AlertBody, Change, Command, ConfigChange,
    ConfigChangeKind, Finding, InputFamily, Kind, ProbableCause, RunbookStep, Severity, StepAction,
};
use crate::redact::{ContentPolicy, Redactor};
use crate::route::Destination;

pub use chatbot::chatbot;
pub use slack::{SlackMessage, slack};
pub use sns::{SnsNotification, sns};
pub use text::text;

/// The Slack message and the SNS notification for one destination, from one redacted view:
/// the same as [`slack()`] and [`sns()`] called in turn, with the redaction done once.
pub fn slack_and_sns(
    input: &RenderInput<'_>,
    redactor: &Redactor,
) -> (SlackMessage, SnsNotification) {
    let view = View::new(input, redactor);
    (slack::render(&view), sns::render(&view))
}

/// Everything a renderer needs for one notification to one destination.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    /// The normalized alert.
    pub alert: &'a Alert,
    /// What classification and correlation made of it.
    pub finding: &'a Finding,
    /// The route's destination: team, channel, mentions, runbook base URL.
    pub destination: &'a Destination,
    /// How much free text may be shown.
    pub policy: ContentPolicy,
    /// Shown in every message so an alert can be traced through logs and the ledger
    /// (usually the alert id).
    pub correlation_id: &'a str,
}

// Per-value caps applied while building the view. They are generous for every channel (each
// renderer cuts further to its own limits); their job is to bound the work and the size of
// the intermediate view whatever the input holds.
const TITLE_CHARS: usize = 300;
const SUMMARY_CHARS: usize = 2_000;
const FREE_TEXT_CHARS: usize = 1_000;
const ERROR_MESSAGE_CHARS: usize = 500;
const LINE_CHARS: usize = 500;
const STEP_CHARS: usize = 300;
const COMMAND_CHARS: usize = 1_000;
const IDENT_CHARS: usize = 512;
const URL_CHARS: usize = 2_000;
const LABEL_CHARS: usize = 100;
const MENTION_CHARS: usize = 100;
const MAX_MENTIONS: usize = 10;
/// Items prepared per list: the most any renderer shows (the SNS document's first try).
const VIEW_ITEMS: usize = 50;

/// A list cut to at most [`VIEW_ITEMS`] items, remembering how long it was.
#[derive(Debug, Clone)]
struct Listed<T> {
    items: Vec<T>,
    /// Length of the original list (items that redaction left empty are not counted).
    total: usize,
}

impl<T> Listed<T> {
    fn new<I>(src: impl ExactSizeIterator<Item = I>, mut f: impl FnMut(I) -> Option<T>) -> Self {
        let len = src.len();
        let mut dropped = 0;
        let items = src
            .take(VIEW_ITEMS)
            .filter_map(|s| {
                let out = f(s);
                if out.is_none() {
                    dropped += 1;
                }
                out
            })
            .collect();
        Self {
            items,
            total: len.saturating_sub(dropped),
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// One labelled fact about what the alert is about ("Who", "Source IP", ...).
#[derive(Debug, Clone)]
struct Fact {
    label: &'static str,
    value: String,
    /// An identifier best shown as code (event names, ids, error codes).
    code: bool,
}

impl Fact {
    fn new(label: &'static str, value: String) -> Self {
        Self {
            label,
            value,
            code: false,
        }
    }

    fn code(label: &'static str, value: String) -> Self {
        Self {
            label,
            value,
            code: true,
        }
    }
}

/// What the alert is about, redacted.
#[derive(Debug, Clone)]
enum Subject {
    Alarm(AlarmView),
    Call(CallView),
    Config(ConfigView),
}

#[derive(Debug, Clone)]
struct AlarmView {
    name: String,
    arn: Option<String>,
    alarm_type: AlarmType,
    state: AlarmState,
    previous: Option<AlarmState>,
    description: Option<String>,
    reason: Option<String>,
    metrics: Listed<String>,
    expression: Option<String>,
    alarm_rule: Option<String>,
    triggering: Listed<String>,
    threshold: Option<String>,
    datapoints: Option<String>,
    /// The raw numbers, for machine-readable outputs.
    threshold_value: Option<f64>,
    comparison: Option<String>,
    recent_values: Vec<f64>,
}

#[derive(Debug, Clone)]
struct CallView {
    event_id: String,
    event_name: String,
    event_source: String,
    time: DateTime<Utc>,
    actor: String,
    identity_type: Option<String>,
    actor_arn: Option<String>,
    role_arn: Option<String>,
    invoked_by: Option<String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
    read_only: bool,
    error_code: Option<String>,
    error_message: Option<String>,
    resources: Listed<String>,
    /// Allow-listed request parameters; only under [`ContentPolicy::Full`].
    request: Listed<(String, String)>,
}

#[derive(Debug, Clone)]
struct ConfigView {
    change: ConfigChangeKind,
    rule_name: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    resource_name: Option<String>,
    compliance: Option<String>,
    previous_compliance: Option<String>,
    change_type: Option<String>,
    changed_properties: Listed<String>,
}

#[derive(Debug, Clone)]
struct CauseView {
    event_id: String,
    event_name: String,
    event_source: String,
    actor: String,
    time: DateTime<Utc>,
    /// "4 min before the alert", from the two timestamps (no clock involved).
    relative: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    reason: Option<String>,
    score: u32,
    resources: Listed<String>,
    console_link: Option<String>,
}

#[derive(Debug, Clone)]
struct StepView {
    /// check / console / fix, for the renderers' labels.
    action: StepAction,
    title: String,
    command: Option<CommandView>,
    link: Option<String>,
}

/// A step's command as the renderers may show it. The line is never changed after
/// [`crate::runbook`] built it: a renderer shows [`Command::line`] exactly (applying only its
/// channel's lossless escaping, which the channel undoes for display) or [`withheld`] text.
#[derive(Debug, Clone)]
enum CommandView {
    Shown(Command),
    Withheld(Withheld),
}

/// Why a command is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// Longer than the view's cap, or than the channel can show whole.
    TooLong,
    /// It has a character that does not show as itself (control, zero-width, bidirectional,
    /// unusual white space) or that the channel cannot show inside code exactly.
    Unshowable,
    /// Masking would change it: a secret-shaped text the per-value masking did not catch.
    SecretShaped,
}

/// Every placeholder starts with this, so tests and readers can tell one from a command.
pub const WITHHELD_PREFIX: &str = "(command not shown: ";

/// The placeholder a step shows instead of a command it cannot show exactly.
pub fn withheld(why: Withheld) -> String {
    let reason = match why {
        Withheld::TooLong => "too long to show here safely",
        Withheld::Unshowable => "it has characters this channel cannot show exactly",
        Withheld::SecretShaped => "it contains text shaped like a secret",
    };
    format!("{WITHHELD_PREFIX}{reason}; `vigil replay EVENT --format json` gives its exact words)")
}

/// A character that does not show as itself: control characters, format characters
/// (zero-width, joiners, bidirectional marks and isolates, the BOM, tag characters), variation
/// selectors, Hangul fillers and any white space but the plain space.
pub fn is_invisible(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[derive(Debug, Clone)]
struct LinkView {
    label: String,
    url: String,
}

/// The redacted, channel-neutral view every renderer reads.
#[derive(Debug, Clone)]
struct View {
    severity: Severity,
    kind: Kind,
    policy: ContentPolicy,
    input: InputFamily,
    rule: String,
    title: String,
    summary: String,
    /// Alarm name, event name or Config rule.
    name: String,
    account: Option<String>,
    region: Option<String>,
    time: DateTime<Utc>,
    resource: Option<String>,
    state: Option<String>,
    subject: Subject,
    evidence: Listed<String>,
    causes: Listed<CauseView>,
    runbook: Listed<StepView>,
    links: Listed<LinkView>,
    notes: Listed<String>,
    team: String,
    channel: Option<String>,
    /// Trusted configuration, never escaped.
    mentions: Vec<String>,
    correlation_id: String,
}

impl View {
    fn new(input: &RenderInput<'_>, r: &Redactor) -> Self {
        let RenderInput {
            alert,
            finding,
            destination,
            policy,
            correlation_id,
        } = *input;
        let id = |s: &str| r.identifier(s, IDENT_CHARS);
        let opt_id = |s: &Option<String>| {
            s.as_deref()
                .map(|v| r.identifier(v, IDENT_CHARS))
                .filter(|v| !v.is_empty())
        };

        let subject = match &alert.body {
            AlertBody::Alarm(a) => Subject::Alarm(alarm_view(a, policy, r)),
            AlertBody::ApiCall(c) => Subject::Call(call_view(c, policy, r)),
            AlertBody::Config(c) => Subject::Config(config_view(c, r)),
        };

        // Correlation ranks causes already; sorting again (stably) guarantees that "the top
        // few" shown under a limit really are the most probable.
        let mut causes: Vec<&ProbableCause> = finding.probable_causes.iter().collect();
        causes.sort_by_key(|c| std::cmp::Reverse(c.score));
        let causes = Listed::new(causes.iter().copied(), |c| {
            Some(cause_view(c, alert.time, policy, r))
        });

        let mut links = Listed::new(finding.links.iter(), |l| {
            let url = r.identifier(&l.url, URL_CHARS);
            (!url.is_empty()).then(|| LinkView {
                label: non_empty(r.identifier(&l.label, LABEL_CHARS), "link"),
                url,
            })
        });
        if let Some(base) = destination.runbook_base_url.as_deref() {
            let base = r.identifier(base, URL_CHARS);
            let already = finding
                .links
                .iter()
                .any(|l| l.url.starts_with(base.as_str()))
                || finding.runbook.iter().any(|s| {
                    s.link
                        .as_deref()
                        .is_some_and(|l| l.starts_with(base.as_str()))
                });
            if !base.is_empty() && !already {
                links.items.push(LinkView {
                    label: "Team runbooks".to_owned(),
                    url: base,
                });
                links.total += 1;
            }
        }

        let mentions = destination
            .mention
            .iter()
            .take(MAX_MENTIONS)
            // Trusted configuration, so not escaped; still masked, like everything emitted.
            .map(|m| {
                crate::redact::sanitize(&r.mask_secrets(m), false)
                    .trim()
                    .to_owned()
            })
            .filter(|m| !m.is_empty() && m.chars().count() <= MENTION_CHARS)
            .collect();

        Self {
            severity: finding.severity,
            kind: finding.kind,
            policy,
            input: alert.input,
            rule: non_empty(id(&finding.rule), "unknown"),
            title: non_empty(
                r.identifier(&finding.title, TITLE_CHARS),
                &non_empty(id(alert.name()), "unnamed"),
            ),
            summary: r.text(&finding.summary, SUMMARY_CHARS),
            name: non_empty(id(alert.name()), "unnamed"),
            account: opt_id(&alert.account),
            region: opt_id(&alert.region),
            time: alert.time,
            resource: primary_resource(&alert.body).and_then(|s| opt_id(&Some(s))),
            state: state_line(&alert.body).map(|s| id(&s)),
            subject,
            evidence: Listed::new(finding.evidence.iter(), |e| {
                Some(r.text(e, LINE_CHARS)).filter(|s| !s.trim().is_empty())
            }),
            causes,
            runbook: Listed::new(finding.runbook.iter(), |s| step_view(s, r)),
            links,
            notes: Listed::new(finding.context_notes.iter(), |n| {
                Some(r.text(n, LINE_CHARS)).filter(|s| !s.trim().is_empty())
            }),
            team: non_empty(id(&destination.team), "unrouted"),
            channel: opt_id(&destination.slack_channel),
            mentions,
            correlation_id: non_empty(id(correlation_id), "none"),
        }
    }

    /// "HIGH", "CRITICAL", ...
    fn severity_label(&self) -> String {
        self.severity.as_str().to_ascii_uppercase()
    }

    /// The facts about the alarm, call or change, in reading order.
    fn subject_facts(&self) -> Vec<Fact> {
        let mut out = Vec::new();
        match &self.subject {
            Subject::Alarm(a) => {
                let kind = match a.alarm_type {
                    AlarmType::Metric => "metric alarm",
                    AlarmType::MetricMath => "metric-math alarm",
                    AlarmType::AnomalyDetection => "anomaly-detection alarm",
                    AlarmType::Composite => "composite alarm",
                };
                out.push(Fact::new("Alarm", format!("{} ({kind})", a.name)));
                if let Some(arn) = &a.arn {
                    out.push(Fact::code("ARN", arn.clone()));
                }
                let was = a
                    .previous
                    .map(|p| format!(" (was {})", p.as_str()))
                    .unwrap_or_default();
                out.push(Fact::new("State", format!("{}{was}", a.state.as_str())));
                if !a.metrics.is_empty() {
                    out.push(Fact::new("Metric", join_listed(&a.metrics, "; ", 3)));
                }
                if let Some(e) = &a.expression {
                    out.push(Fact::code("Expression", e.clone()));
                }
                if let Some(rule) = &a.alarm_rule {
                    out.push(Fact::code("Alarm rule", rule.clone()));
                }
                if !a.triggering.is_empty() {
                    out.push(Fact::new(
                        "Triggered by",
                        join_listed(&a.triggering, ", ", 5),
                    ));
                }
                if let Some(t) = &a.threshold {
                    out.push(Fact::new("Threshold", t.clone()));
                }
                if let Some(d) = &a.datapoints {
                    out.push(Fact::new("Recent values", d.clone()));
                }
                if let Some(reason) = &a.reason {
                    out.push(Fact::new("Reason", reason.clone()));
                }
                if let Some(d) = &a.description {
                    out.push(Fact::new("Description", d.clone()));
                }
            }
            Subject::Call(c) => {
                let mut who = c.actor.clone();
                if let Some(t) = &c.identity_type {
                    who.push_str(&format!(" ({t})"));
                }
                out.push(Fact::new("Who", who));
                if let Some(arn) = c.actor_arn.as_ref().or(c.role_arn.as_ref()) {
                    out.push(Fact::code("Principal", arn.clone()));
                }
                if let Some(by) = &c.invoked_by {
                    out.push(Fact::new("Invoked by", by.clone()));
                }
                out.push(Fact::code(
                    "What",
                    format!("{} ({})", c.event_name, c.event_source),
                ));
                out.push(Fact::new("When", fmt_time(c.time)));
                if let Some(ip) = &c.source_ip {
                    out.push(Fact::code("Source IP", ip.clone()));
                }
                if let Some(ua) = &c.user_agent {
                    out.push(Fact::code("User agent", ua.clone()));
                }
                let result = match &c.error_code {
                    Some(code) => format!("failed: {code}"),
                    None if c.read_only => "succeeded (read-only)".to_owned(),
                    None => "succeeded".to_owned(),
                };
                out.push(Fact::new("Result", result));
                if let Some(m) = &c.error_message {
                    out.push(Fact::new("Error message", m.clone()));
                }
                if !c.resources.is_empty() {
                    out.push(Fact::code("Resources", join_listed(&c.resources, ", ", 5)));
                }
                if !c.request.is_empty() {
                    let pairs = Listed {
                        items: c
                            .request
                            .items
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                        total: c.request.total,
                    };
                    out.push(Fact::code("Request", join_listed(&pairs, ", ", 10)));
                }
                out.push(Fact::code("Event id", c.event_id.clone()));
            }
            Subject::Config(c) => {
                if let Some(rule) = &c.rule_name {
                    out.push(Fact::code("Config rule", rule.clone()));
                }
                let resource = [&c.resource_type, &c.resource_id, &c.resource_name]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !resource.is_empty() {
                    out.push(Fact::code("Resource", resource));
                }
                if let Some(now) = &c.compliance {
                    let was = c
                        .previous_compliance
                        .as_ref()
                        .map(|p| format!(" (was {p})"))
                        .unwrap_or_default();
                    out.push(Fact::new("Compliance", format!("{now}{was}")));
                }
                if let Some(t) = &c.change_type {
                    out.push(Fact::new("Change", t.clone()));
                }
                if !c.changed_properties.is_empty() {
                    out.push(Fact::code(
                        "Changed properties",
                        join_listed(&c.changed_properties, ", ", 10),
                    ));
                }
                if c.change == ConfigChangeKind::ConfigurationItemChange && c.rule_name.is_none() {
                    out.push(Fact::new("Source", "configuration item change".to_owned()));
                }
            }
        }
        out
    }

    /// The heading of the subject section.
    fn subject_heading(&self) -> &'static str {
        match &self.subject {
            Subject::Alarm(_) => "The alarm",
            Subject::Call(_) => "The call",
            Subject::Config(_) => "The change",
        }
    }

    /// A key that groups this alert's notifications into one thread: the alarm (so OK
    /// threads under ALARM), else the event.
    fn thread_key(&self) -> String {
        let scope = format!(
            "{}/{}",
            self.account.as_deref().unwrap_or("-"),
            self.region.as_deref().unwrap_or("-")
        );
        match &self.subject {
            Subject::Alarm(a) => format!("{scope}/alarm/{}", a.arn.as_deref().unwrap_or(&a.name)),
            Subject::Call(c) => format!("{scope}/event/{}", c.event_id),
            Subject::Config(c) => format!(
                "{scope}/config/{}/{}",
                c.rule_name.as_deref().unwrap_or("-"),
                c.resource_id.as_deref().unwrap_or("-")
            ),
        }
    }
}

fn alarm_view(a: &Alarm, policy: ContentPolicy, r: &Redactor) -> AlarmView {
    let id = |s: &str| r.identifier(s, IDENT_CHARS);
    let metrics = Listed::new(a.metrics.iter(), |m| {
        let mut s = String::new();
        if let Some(ns) = &m.namespace {
            s.push_str(&id(ns));
            s.push(' ');
        }
        s.push_str(&id(&m.name));
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .take(10)
            .map(|(k, v)| format!("{}={}", id(k), id(v)))
            .collect();
        if !dims.is_empty() {
            s.push_str(&format!(" [{}]", dims.join(", ")));
        }
        let how: Vec<String> = m
            .stat
            .iter()
            .map(|st| id(st))
            .chain(m.period.map(|p| format!("{p} s")))
            .collect();
        if !how.is_empty() {
            s.push_str(&format!(" ({})", how.join(", ")));
        }
        Some(r.identifier(&s, IDENT_CHARS))
    });
    let threshold = a.threshold.map(|t| {
        let cmp = a.comparison.as_deref().map_or_else(String::new, |c| {
            comparison_words(c).map_or_else(|| id(c), str::to_owned)
        });
        if cmp.is_empty() {
            fmt_num(t)
        } else {
            format!("{cmp} {}", fmt_num(t))
        }
    });
    let datapoints = (!a.recent_datapoints.is_empty()).then(|| {
        let recent: Vec<f64> = a
            .recent_datapoints
            .iter()
            .rev()
            .take(12)
            .rev()
            .copied()
            .collect();
        let values: Vec<String> = recent
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|v| fmt_num(*v))
            .collect();
        format!("{} {}", values.join(", "), sparkline(&recent))
            .trim()
            .to_owned()
    });
    AlarmView {
        name: non_empty(id(&a.name), "unnamed alarm"),
        arn: a.arn.as_deref().map(id).filter(|s| !s.is_empty()),
        alarm_type: a.alarm_type,
        state: a.state,
        previous: a.previous_state,
        description: a
            .description
            .as_deref()
            .and_then(|d| r.free_text(d, policy, FREE_TEXT_CHARS)),
        reason: r.free_text(&a.reason, policy, FREE_TEXT_CHARS),
        metrics,
        expression: a.expression.as_deref().map(id).filter(|s| !s.is_empty()),
        alarm_rule: a.alarm_rule.as_deref().map(id).filter(|s| !s.is_empty()),
        triggering: Listed::new(a.triggering_alarms.iter(), |t| {
            Some(id(t)).filter(|s| !s.is_empty())
        }),
        threshold,
        datapoints,
        threshold_value: a.threshold,
        comparison: a.comparison.as_deref().map(id).filter(|s| !s.is_empty()),
        recent_values: a
            .recent_datapoints
            .iter()
            .rev()
            .take(60)
            .rev()
            .copied()
            .collect(),
    }
}

fn call_view(c: &Change, policy: ContentPolicy, r: &Redactor) -> CallView {
    let id = |s: &str| r.identifier(s, IDENT_CHARS);
    let opt = |s: &Option<String>| s.as_deref().map(id).filter(|v| !v.is_empty());
    let request = if policy == ContentPolicy::Full {
        Listed::new(c.request.iter(), |(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((
                r.identifier(k, IDENT_CHARS),
                r.identifier(&value, LINE_CHARS),
            ))
        })
    } else {
        Listed {
            items: Vec::new(),
            total: 0,
        }
    };
    CallView {
        event_id: non_empty(id(&c.event_id), "unknown"),
        event_name: non_empty(id(&c.event_name), "unknown"),
        event_source: non_empty(id(&c.event_source), "unknown"),
        time: c.time,
        actor: non_empty(id(&c.actor.name), "unknown"),
        identity_type: opt(&c.actor.identity_type),
        actor_arn: opt(&c.actor.arn),
        role_arn: opt(&c.actor.role_arn),
        invoked_by: opt(&c.actor.invoked_by),
        source_ip: opt(&c.source_ip),
        user_agent: c
            .user_agent
            .as_deref()
            .and_then(|ua| r.user_agent(ua, policy, IDENT_CHARS)),
        read_only: c.read_only,
        error_code: opt(&c.error_code),
        error_message: c
            .error_message
            .as_deref()
            .and_then(|m| {
                r.error_message(
                    m,
                    &c.event_source,
                    &c.event_name,
                    policy,
                    ERROR_MESSAGE_CHARS,
                )
            })
            .map(|m| crate::redact::sanitize(&m, false).into_owned()),
        resources: Listed::new(c.resources.iter(), |s| {
            Some(id(s)).filter(|v| !v.is_empty())
        }),
        request,
    }
}

fn config_view(c: &ConfigChange, r: &Redactor) -> ConfigView {
    let id = |s: &str| r.identifier(s, IDENT_CHARS);
    let opt = |s: &Option<String>| s.as_deref().map(id).filter(|v| !v.is_empty());
    ConfigView {
        change: c.change,
        rule_name: opt(&c.rule_name),
        resource_type: opt(&c.resource_type),
        resource_id: opt(&c.resource_id),
        resource_name: opt(&c.resource_name),
        compliance: opt(&c.compliance),
        previous_compliance: opt(&c.previous_compliance),
        change_type: opt(&c.change_type),
        changed_properties: Listed::new(c.changed_properties.iter(), |p| {
            Some(id(p)).filter(|v| !v.is_empty())
        }),
    }
}

fn cause_view(
    c: &ProbableCause,
    alert_time: DateTime<Utc>,
    policy: ContentPolicy,
    r: &Redactor,
) -> CauseView {
    let id = |s: &str| r.identifier(s, IDENT_CHARS);
    let opt = |s: &Option<String>| s.as_deref().map(id).filter(|v| !v.is_empty());
    CauseView {
        event_id: non_empty(id(&c.event_id), "unknown"),
        event_name: non_empty(id(&c.event_name), "unknown"),
        event_source: non_empty(id(&c.event_source), "unknown"),
        actor: non_empty(id(&c.actor), "unknown"),
        time: c.time,
        relative: fmt_relative(c.time, alert_time),
        source_ip: opt(&c.source_ip),
        user_agent: c
            .user_agent
            .as_deref()
            .and_then(|ua| r.user_agent(ua, policy, IDENT_CHARS)),
        // Correlation writes these words from identifiers and times, not from the payload's
        // free text, so they stay under every policy (masked like everything else).
        reason: Some(r.identifier(&c.reason, LINE_CHARS)).filter(|s| !s.is_empty()),
        score: c.score,
        resources: Listed::new(c.resources.iter(), |s| {
            Some(id(s)).filter(|v| !v.is_empty())
        }),
        console_link: c
            .console_link
            .as_deref()
            .map(|l| r.identifier(l, URL_CHARS))
            .filter(|v| !v.is_empty()),
    }
}

/// The step for the renderers. Its command is checked, never transformed: values were masked
/// before they were quoted ([`crate::runbook`]), and masking the finished line again could
/// only break its quoting (a mask can swallow a `'\''`). A command with a word that masking
/// would still change (one not built by the runbook stage, say), a line longer than
/// [`COMMAND_CHARS`], or a character that does not show as itself is withheld instead.
fn step_view(s: &RunbookStep, r: &Redactor) -> Option<StepView> {
    let title = r.identifier(&s.title, STEP_CHARS);
    let command = s.command.as_ref().map(|c| {
        let line = c.line();
        if line.chars().count() > COMMAND_CHARS {
            CommandView::Withheld(Withheld::TooLong)
        } else if line.chars().any(is_invisible) {
            CommandView::Withheld(Withheld::Unshowable)
        } else if c.argv().iter().any(|w| r.mask_secrets(w) != w.as_str()) {
            CommandView::Withheld(Withheld::SecretShaped)
        } else {
            CommandView::Shown(c.clone())
        }
    });
    let link = s
        .link
        .as_deref()
        .map(|l| r.identifier(l, URL_CHARS))
        .filter(|l| !l.is_empty());
    (!title.is_empty() || command.is_some()).then(|| StepView {
        action: s.action,
        title: non_empty(title, "Run"),
        command,
        link,
    })
}

/// The thing the alert is about, for the "Resource" field (unredacted; the caller masks it).
fn primary_resource(body: &AlertBody) -> Option<String> {
    match body {
        AlertBody::Alarm(a) => {
            let dims = a.dimensions();
            if !dims.is_empty() {
                Some(
                    dims.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            } else if !a.triggering_alarms.is_empty() {
                Some(a.triggering_alarms.join(", "))
            } else {
                Some(a.name.clone())
            }
        }
        AlertBody::ApiCall(c) => c.resources.first().cloned(),
        AlertBody::Config(c) => {
            let parts: Vec<&str> = [&c.resource_type, &c.resource_name, &c.resource_id]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
    }
}

/// The state word for the "State" field.
fn state_line(body: &AlertBody) -> Option<String> {
    match body {
        AlertBody::Alarm(a) => Some(match a.previous_state {
            Some(p) => format!("{} (was {})", a.state.as_str(), p.as_str()),
            None => a.state.as_str().to_owned(),
        }),
        AlertBody::ApiCall(c) => Some(match &c.error_code {
            Some(code) => format!("failed: {code}"),
            None => "succeeded".to_owned(),
        }),
        AlertBody::Config(c) => match (&c.compliance, &c.previous_compliance, &c.change_type) {
            (Some(now), Some(was), _) => Some(format!("{now} (was {was})")),
            (Some(now), None, _) => Some(now.clone()),
            (None, _, Some(t)) => Some(t.clone()),
            (None, _, None) => None,
        },
    }
}

fn non_empty(s: String, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

/// The first `max` items joined, with "...and N more" when the list was longer.
fn join_listed(l: &Listed<String>, sep: &str, max: usize) -> String {
    let shown: Vec<&str> = l.items.iter().take(max).map(String::as_str).collect();
    let mut out = shown.join(sep);
    let rest = l.total.saturating_sub(shown.len());
    if rest > 0 {
        out.push_str(&format!("{sep}{}", more(rest)));
    }
    out
}

/// The marker for a cut list.
fn more(n: usize) -> String {
    format!("...and {n} more")
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How far `t` is from the alert, in words.
fn fmt_relative(t: DateTime<Utc>, reference: DateTime<Utc>) -> String {
    let secs = (reference - t).num_seconds();
    let (abs, side) = if secs >= 0 {
        (secs.unsigned_abs(), "before")
    } else {
        (secs.unsigned_abs(), "after")
    };
    let span = if abs < 60 {
        format!("{abs} s")
    } else if abs < 3_600 {
        format!("{} min", abs / 60)
    } else if abs < 86_400 {
        let m = (abs % 3_600) / 60;
        if m == 0 {
            format!("{} h", abs / 3_600)
        } else {
            format!("{} h {m} min", abs / 3_600)
        }
    } else {
        format!("{} d", abs / 86_400)
    };
    format!("{span} {side} the alert")
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A one-line chart of the values, e.g. `▁▂▅█`.
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.len() < 2 {
        return String::new();
    }
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = max - min;
    finite
        .iter()
        .map(|v| {
            let level = if span > 0.0 {
                // In 0..=7 by construction; `as` saturates, and `.get` covers the rest.
                (((v - min) / span) * 7.0).round() as usize
            } else {
                0
            };
            BARS.get(level).copied().unwrap_or('█')
        })
        .collect()
}

/// CloudWatch's comparison operators in symbols.
fn comparison_words(op: &str) -> Option<&'static str> {
    Some(match op {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => ">=",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "<=",
        "LessThanLowerOrGreaterThanUpperThreshold" => "outside the band",
        "GreaterThanUpperThreshold" => "above the band",
        "LessThanLowerThreshold" => "below the band",
        _ => return None,
    })
}

/// Shared builders of model values for the renderers' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, TimeZone, Utc};

    use crate::model::{
        Actor, Alarm, AlarmState, AlarmType, Alert, AlertBody, Change, ConfigChange,
        ConfigChangeKind, Finding, InputFamily, Kind, Link, MetricRef, ProbableCause, RunbookStep,
        Severity,
    };
    use crate::route::Destination;

    pub(crate) fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    pub(crate) fn alarm() -> Alarm {
        Alarm {
            name: "bedrock-throttles-claude".into(),
            arn: Some(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:bedrock-throttles-claude".into(),
            ),
            description: Some("Bedrock throttles on the chat model".into()),
            alarm_type: AlarmType::Metric,
            state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            reason: "Threshold Crossed: 1 datapoint [85.0] was greater than the threshold (10.0)."
                .into(),
            metrics: vec![MetricRef {
                namespace: Some("AWS/Bedrock".into()),
                name: "InvocationThrottles".into(),
                dimensions: BTreeMap::from([(
                    "ModelId".into(),
                    "anthropic.claude-3-sonnet-20240229-v1:0".into(),
                )]),
                stat: Some("Sum".into()),
                period: Some(60),
            }],
            expression: None,
            alarm_rule: None,
            triggering_alarms: vec![],
            threshold: Some(10.0),
            comparison: Some("GreaterThanThreshold".into()),
            recent_datapoints: vec![0.0, 2.0, 12.0, 40.0, 85.0],
            tags: BTreeMap::new(),
        }
    }

    pub(crate) fn alert(body: AlertBody) -> Alert {
        Alert {
            id: "evt-6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8".into(),
            input: InputFamily::AlarmEventbridge,
            account: Some("123456789012".into()),
            region: Some("us-east-1".into()),
            time: at(12, 0),
            body,
        }
    }

    pub(crate) fn change() -> Change {
        Change {
            event_id: "0123abcd-1111-2222-3333-444455556666".into(),
            event_name: "DeleteRolePolicy".into(),
            event_source: "iam.amazonaws.com".into(),
            time: at(11, 56),
            region: Some("us-east-1".into()),
            account: Some("123456789012".into()),
            actor: Actor {
                identity_type: Some("AssumedRole".into()),
                arn: Some("arn:aws:sts::123456789012:assumed-role/admin/alice".into()),
                name: "admin/alice".into(),
                role_arn: Some("arn:aws:iam::123456789012:role/admin".into()),
                session_name: Some("alice".into()),
                invoked_by: None,
            },
            source_ip: Some("203.0.113.5".into()),
            user_agent: Some("aws-cli/2.15.0 Python/3.11.6".into()),
            read_only: false,
            error_code: Some("AccessDenied".into()),
            error_message: Some("User is not authorized to perform iam:DeleteRolePolicy".into()),
            request: BTreeMap::from([
                ("roleName".into(), serde_json::json!("chat-fn-role")),
                ("policyName".into(), serde_json::json!("bedrock-invoke")),
            ]),
            resources: vec!["arn:aws:iam::123456789012:role/chat-fn-role".into()],
            facts: BTreeSet::new(),
        }
    }

    pub(crate) fn config_change() -> ConfigChange {
        ConfigChange {
            change: ConfigChangeKind::ComplianceChange,
            rule_name: Some("s3-bucket-public-read-prohibited".into()),
            resource_type: Some("AWS::S3::Bucket".into()),
            resource_id: Some("rag-docs".into()),
            resource_name: Some("rag-docs".into()),
            compliance: Some("NON_COMPLIANT".into()),
            previous_compliance: Some("COMPLIANT".into()),
            change_type: None,
            changed_properties: vec!["SupplementaryConfiguration.PublicAccessBlock".into()],
        }
    }

    pub(crate) fn cause(i: u32) -> ProbableCause {
        ProbableCause {
            event_id: format!("0123abcd-1111-2222-3333-{i:012}"),
            event_name: "DeleteRolePolicy".into(),
            event_source: "iam.amazonaws.com".into(),
            actor: "admin/alice".into(),
            time: at(11, 56),
            source_ip: Some("203.0.113.5".into()),
            user_agent: Some("aws-cli/2.15.0".into()),
            reason: "removed policy bedrock-invoke from the model's caller role, changed 4 min before the alarm".into(),
            score: 100u32.saturating_sub(i),
            resources: vec!["arn:aws:iam::123456789012:role/chat-fn-role".into()],
            console_link: Some(format!(
                "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/0123abcd-1111-2222-3333-{i:012}"
            )),
        }
    }

    pub(crate) fn finding() -> Finding {
        Finding {
            kind: Kind::ThrottleSpike,
            severity: Severity::High,
            title: "Throttling: bedrock-throttles-claude".into(),
            summary: "Alarm bedrock-throttles-claude is ALARM (was OK): AWS/Bedrock InvocationThrottles, latest 85 against threshold 10.".into(),
            rule: "bedrock-invocation-throttles".into(),
            evidence: vec!["metric AWS/Bedrock InvocationThrottles matched `InvocationThrottles`".into()],
            probable_causes: vec![cause(1)],
            runbook: vec![
                RunbookStep {
                    action: crate::model::StepAction::Check,
                    title: "Check the model's service quotas".into(),
                    command: crate::model::Command::new(
                        "aws service-quotas list-service-quotas --service-code bedrock --region us-east-1"
                            .split(' ')
                            .map(str::to_owned)
                            .collect(),
                    ),
                    link: None,
                },
                RunbookStep {
                    action: crate::model::StepAction::Console,
                    title: "Read the runbook".into(),
                    command: None,
                    link: Some("https://runbooks.example.com/ai/throttle_spike".into()),
                },
            ],
            links: vec![Link {
                label: "CloudWatch alarm".into(),
                url: "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/bedrock-throttles-claude".into(),
            }],
            context_notes: vec!["invocation logging is on (s3://logs-bucket/bedrock/)".into()],
        }
    }

    pub(crate) fn destination() -> Destination {
        Destination {
            team: "ai-platform".into(),
            slack_channel: Some("#ai-alerts".into()),
            slack_webhook_secret: None,
            sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:vigil-ai".into()),
            runbook_base_url: Some("https://runbooks.example.com/ai".into()),
            mention: vec!["<!subteam^S0123ABCD>".into()],
            runbooks: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::fixtures::*;
    use super::*;

    #[test]
    fn relative_times_are_worded_from_the_two_timestamps() {
        let t = at(12, 0);
        assert_eq!(
            fmt_relative(t - Duration::minutes(4), t),
            "4 min before the alert"
        );
        assert_eq!(
            fmt_relative(t - Duration::seconds(20), t),
            "20 s before the alert"
        );
        assert_eq!(
            fmt_relative(t - Duration::minutes(90), t),
            "1 h 30 min before the alert"
        );
        assert_eq!(
            fmt_relative(t + Duration::minutes(2), t),
            "2 min after the alert"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(10.0), "10");
        assert_eq!(fmt_num(0.1 + 0.2), "0.3");
        assert_eq!(fmt_num(2.5), "2.5");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }

    #[test]
    fn sparkline_spans_the_range() {
        assert_eq!(sparkline(&[0.0, 50.0, 100.0]), "▁▅█");
        assert_eq!(sparkline(&[3.0, 3.0]), "▁▁");
        assert_eq!(sparkline(&[1.0]), "");
    }

    #[test]
    fn slack_and_sns_from_one_view_are_slack_and_sns_rendered_apart() {
        let r = Redactor::new();
        let dest = destination();
        let bodies = [
            AlertBody::Alarm(alarm()),
            AlertBody::ApiCall(change()),
            AlertBody::Config(config_change()),
        ];
        for body in bodies {
            let alert = alert(body);
            let finding = finding();
            for policy in [
                ContentPolicy::Metadata,
                ContentPolicy::Redacted,
                ContentPolicy::Full,
            ] {
                let input = RenderInput {
                    alert: &alert,
                    finding: &finding,
                    destination: &dest,
                    policy,
                    correlation_id: &alert.id,
                };
                let (s, n) = slack_and_sns(&input, &r);
                assert_eq!(s, slack(&input, &r));
                assert_eq!(n, sns(&input, &r));
            }
        }
    }

    #[test]
    fn the_view_drops_free_text_under_the_metadata_policy() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        let input = RenderInput {
            alert: &alert,
            finding: &finding,
            destination: &dest,
            policy: ContentPolicy::Metadata,
            correlation_id: &alert.id,
        };
        let view = View::new(&input, &Redactor::new());
        assert!(
            matches!(&view.subject, Subject::Alarm(_)),
            "an alarm renders as an alarm"
        );
        let Subject::Alarm(a) = &view.subject else {
            return;
        };
        assert!(a.description.is_none());
        assert!(a.reason.is_none());
        assert_eq!(a.threshold.as_deref(), Some("> 10"));
        assert_eq!(
            view.resource.as_deref(),
            Some("ModelId=anthropic.claude-3-sonnet-20240229-v1:0")
        );
    }

    #[test]
    fn the_top_causes_are_the_highest_scored() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        finding.probable_causes = (0..150).map(|i| cause((i * 37) % 100)).collect();
        let dest = destination();
        let input = RenderInput {
            alert: &alert,
            finding: &finding,
            destination: &dest,
            policy: ContentPolicy::Redacted,
            correlation_id: &alert.id,
        };
        let view = View::new(&input, &Redactor::new());
        assert_eq!(view.causes.total, 150);
        assert!(
            view.causes
                .items
                .windows(2)
                .all(|w| w.first().map(|c| c.score) >= w.get(1).map(|c| c.score))
        );
        assert_eq!(view.causes.items.len(), VIEW_ITEMS);
        assert_eq!(view.causes.items.first().map(|c| c.score), Some(100));
    }

    #[test]
    fn request_parameters_show_only_under_the_full_policy() {
        let alert = alert(AlertBody::ApiCall(change()));
        let finding = finding();
        let dest = destination();
        for (policy, shown) in [
            (ContentPolicy::Metadata, false),
            (ContentPolicy::Redacted, false),
            (ContentPolicy::Full, true),
        ] {
            let input = RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy,
                correlation_id: &alert.id,
            };
            let view = View::new(&input, &Redactor::new());
            let facts = view.subject_facts();
            assert_eq!(
                facts.iter().any(|f| f.label == "Request"),
                shown,
                "{policy}"
            );
            assert_eq!(
                facts.iter().any(|f| f.label == "Error message"),
                policy != ContentPolicy::Metadata
            );
        }
    }

    const SECRETS: [&str; 6] = [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----",
    ];

    /// Pieces whose presence in any output would mean a secret leaked.
    const TELLTALES: [&str; 8] = [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI",
        "EXAMPLEKEY",
        "xoxb-",
        "T000/B000",
        "ghp_abc",
        "PRIVATE KEY",
        "MIIEowIBAAKCAQEA",
    ];

    fn everything(policy: ContentPolicy, secret: &str) -> Vec<String> {
        let planted = format!("before {secret} after");
        let mut a = alarm();
        a.description = Some(planted.clone());
        a.reason = planted.clone();
        a.name = format!("alarm-{secret}");
        if let Some(m) = a.metrics.first_mut() {
            m.dimensions.insert("FunctionName".into(), planted.clone());
        }
        let mut call = change();
        call.actor.name = planted.clone();
        call.error_message = Some(planted.clone());
        call.user_agent = Some(planted.clone());
        call.request
            .insert("policyDocument".into(), serde_json::json!(planted.clone()));
        let mut finding = finding();
        finding.title = planted.clone();
        finding.summary = planted.clone();
        finding.evidence.push(planted.clone());
        finding.context_notes.push(planted.clone());
        finding.runbook.push(crate::model::RunbookStep {
            action: crate::model::StepAction::Fix,
            title: planted.clone(),
            command: crate::model::Command::new(
                ["aws", "configure", "set", "aws_secret_access_key", secret]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            link: Some(secret.to_owned()),
        });
        finding.links.push(crate::model::Link {
            label: planted.clone(),
            url: secret.to_owned(),
        });
        let mut c = cause(1);
        c.actor = planted.clone();
        c.reason = planted.clone();
        c.user_agent = Some(planted.clone());
        finding.probable_causes.push(c);
        let dest = destination();
        let r = Redactor::new();
        let mut out = Vec::new();
        for body in [
            AlertBody::Alarm(a),
            AlertBody::ApiCall(call),
            AlertBody::Config(config_change()),
        ] {
            let alert = alert(body);
            let input = RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy,
                correlation_id: &alert.id,
            };
            let s = slack(&input, &r);
            out.push(s.to_webhook_json().to_string());
            out.push(s.text);
            let n = sns(&input, &r);
            out.push(n.subject);
            out.push(n.message.clone());
            // The document inside `default`, unescaped once more.
            let outer: serde_json::Value = serde_json::from_str(&n.message).unwrap_or_default();
            for key in ["default", "email"] {
                out.push(
                    outer
                        .get(key)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_owned(),
                );
            }
            out.push(format!("{:?}", n.attributes));
            out.push(text(&input, &r));
            out.push(chatbot(&input, &r).to_string());
        }
        out
    }

    #[test]
    fn no_renderer_leaks_a_secret_under_any_policy() {
        for policy in [
            ContentPolicy::Metadata,
            ContentPolicy::Redacted,
            ContentPolicy::Full,
        ] {
            for secret in SECRETS {
                for output in everything(policy, secret) {
                    for tell in TELLTALES {
                        assert!(
                            !output.contains(tell),
                            "{tell} leaked under {policy} from {secret:?}:\n{output}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn masked_secrets_are_still_visible_as_markers() {
        let outputs = everything(ContentPolicy::Full, "AKIAIOSFODNN7EXAMPLE");
        assert!(
            outputs
                .iter()
                .any(|o| o.contains("[REDACTED:aws-access-key]"))
        );
    }
}
