//! SNS rendering (README.md "Usage"): a subject, a `MessageStructure=json` message and the message
//! attributes that subscription filter policies match on.
//!
//! Invariant: the subject is non-empty, printable ASCII on one line and at most
//! [`MAX_SUBJECT_CHARS`] long (SNS rejects anything else); the message is a JSON object whose
//! `default` and `email` values are strings, at most [`MAX_MESSAGE_BYTES`] long in all (SNS
//! allows 256 KiB), lists being cut — and counted under `omitted` — until it fits.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{
    AlarmView, CallView, CauseView, CommandView, ConfigView, LinkView, Listed, RenderInput,
    StepView, Subject, View, text, withheld,
};
use crate::redact::{Redactor, truncate};

/// SNS requires subjects "less than 100 characters".
pub const MAX_SUBJECT_CHARS: usize = 99;
/// Our ceiling for the whole message, well under SNS's 256 KiB so the envelope and
/// attributes always fit too.
pub const MAX_MESSAGE_BYTES: usize = 200 * 1024;
/// Version of the JSON document in `default`; bump it when a field changes meaning.
pub const SCHEMA_VERSION: &str = "1";

/// List lengths tried, longest first, until the message fits.
const LIST_CAPS: [usize; 6] = [50, 20, 10, 5, 2, 0];
/// The e-mail body is the terminal text, cut to this many characters.
const EMAIL_CHARS: usize = 16_000;

/// One SNS `Publish` request's content. Publish it with `MessageStructure=json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnsNotification {
    /// `[HIGH] throttle_spike: <alarm name>`: printable ASCII, one line, under 100 characters.
    pub subject: String,
    /// `{"default": "<JSON document>", "email": "<plain text>"}`, both values strings.
    pub message: String,
    /// `severity`, `kind`, `team`, `account`, `input`, each of DataType `String`, for
    /// subscription filter policies.
    pub attributes: BTreeMap<String, String>,
}

/// Renders the SNS notification of README.md "Usage" for one destination.
pub fn sns(input: &RenderInput<'_>, redactor: &Redactor) -> SnsNotification {
    let view = View::new(input, redactor);
    render(&view)
}

pub(super) fn render(v: &View) -> SnsNotification {
    // Cut at a line end, so never inside a command.
    let email = text::cut_at_line(&text::render(v), EMAIL_CHARS);
    let mut message = String::new();
    for cap in LIST_CAPS {
        let doc = serde_json::to_string(&Doc::new(v, cap)).unwrap_or_else(|_| "{}".to_owned());
        message = envelope(&doc, &email);
        if message.len() <= MAX_MESSAGE_BYTES {
            break;
        }
    }
    // Unreachable with the view's per-value caps (the smallest document is a few tens of KB),
    // kept so the invariant holds even if those caps change.
    if message.len() > MAX_MESSAGE_BYTES {
        let doc = json!({
            "version": SCHEMA_VERSION,
            "kind": v.kind.as_str(),
            "severity": v.severity.as_str(),
            "title": truncate(&v.title, 200),
            "correlation_id": v.correlation_id,
            "truncated": true,
        })
        .to_string();
        message = envelope(&doc, &text::cut_at_line(&email, 2_000));
    }

    let attributes = BTreeMap::from([
        ("severity".to_owned(), v.severity.as_str().to_owned()),
        ("kind".to_owned(), v.kind.as_str().to_owned()),
        ("team".to_owned(), v.team.clone()),
        (
            "account".to_owned(),
            v.account.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        ("input".to_owned(), v.input.as_str().to_owned()),
    ]);

    SnsNotification {
        subject: subject(v),
        message,
        attributes,
    }
}

/// The `MessageStructure=json` body: `{"default":"<doc>","email":"<text>"}`, serialized
/// directly rather than through a `Value` holding copies of both strings.
fn envelope(doc: &str, email: &str) -> String {
    #[derive(Serialize)]
    struct Envelope<'a> {
        default: &'a str,
        email: &'a str,
    }
    serde_json::to_string(&Envelope {
        default: doc,
        email,
    })
    .unwrap_or_else(|_| "{}".to_owned())
}

fn subject(v: &View) -> String {
    ascii_line(
        &format!("[{}] {}: {}", v.severity_label(), v.kind.as_str(), v.name),
        MAX_SUBJECT_CHARS,
    )
}

/// Printable ASCII on one line: whitespace and control characters become single spaces, other
/// characters `?`; cut to `max` with "...".
fn ascii_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 3));
    for c in s.chars() {
        let c = if c.is_ascii_graphic() {
            c
        } else if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            '?'
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_end();
    // ASCII from here on, so byte offsets are character offsets.
    if out.len() > max {
        let keep = out
            .get(..max.saturating_sub(3))
            .unwrap_or_default()
            .trim_end();
        format!("{keep}...")
    } else {
        out.to_owned()
    }
}

/// The machine-readable document in `default`.
#[derive(Debug, Serialize)]
struct Doc<'a> {
    version: &'static str,
    kind: &'static str,
    severity: &'static str,
    title: &'a str,
    summary: &'a str,
    rule: &'a str,
    account: Option<&'a str>,
    region: Option<&'a str>,
    resource: Option<&'a str>,
    state: Option<&'a str>,
    time: String,
    input: &'static str,
    team: &'a str,
    correlation_id: &'a str,
    content_policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm: Option<AlarmDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_call: Option<CallDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<ConfigDoc<'a>>,
    evidence: &'a [String],
    probable_causes: Vec<CauseDoc<'a>>,
    runbook: Vec<StepDoc<'a>>,
    links: Vec<LinkDoc<'a>>,
    notes: &'a [String],
    /// How many items each cut list lost (absent when nothing was cut).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    omitted: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Serialize)]
struct AlarmDoc<'a> {
    name: &'a str,
    arn: Option<&'a str>,
    state: &'static str,
    previous_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    metrics: &'a [String],
    expression: Option<&'a str>,
    alarm_rule: Option<&'a str>,
    triggering_alarms: &'a [String],
    threshold: Option<f64>,
    comparison: Option<&'a str>,
    recent_datapoints: &'a [f64],
}

#[derive(Debug, Serialize)]
struct CallDoc<'a> {
    event_id: &'a str,
    event_name: &'a str,
    event_source: &'a str,
    time: String,
    actor: &'a str,
    identity_type: Option<&'a str>,
    actor_arn: Option<&'a str>,
    role_arn: Option<&'a str>,
    invoked_by: Option<&'a str>,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    read_only: bool,
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    resources: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    request: BTreeMap<&'a str, &'a str>,
}

#[derive(Debug, Serialize)]
struct ConfigDoc<'a> {
    rule_name: Option<&'a str>,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    resource_name: Option<&'a str>,
    compliance: Option<&'a str>,
    previous_compliance: Option<&'a str>,
    change_type: Option<&'a str>,
    changed_properties: &'a [String],
}

#[derive(Debug, Serialize)]
struct CauseDoc<'a> {
    event_id: &'a str,
    event_name: &'a str,
    event_source: &'a str,
    actor: &'a str,
    time: String,
    relative: &'a str,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    reason: Option<&'a str>,
    score: u32,
    resources: &'a [String],
    console_link: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct StepDoc<'a> {
    /// `check` (read-only), `console` (a page to open) or `fix` (a person changes something).
    action: &'static str,
    title: &'a str,
    /// The copy-ready line exactly as built, or `null` (no command, or one withheld).
    command: Option<&'a str>,
    /// The command's words, when `command` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<&'a [String]>,
    /// The placeholder text, when the step has a command that is not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    command_withheld: Option<String>,
    link: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct LinkDoc<'a> {
    label: &'a str,
    url: &'a str,
}

/// The first `cap` items, recording in `omitted` how many of the list's total were left out.
fn head<'a, T>(
    l: &'a Listed<T>,
    cap: usize,
    name: &'static str,
    omitted: &mut BTreeMap<&'static str, usize>,
) -> &'a [T] {
    let shown = l.items.get(..cap.min(l.items.len())).unwrap_or_default();
    let rest = l.total.saturating_sub(shown.len());
    if rest > 0 {
        omitted.insert(name, rest);
    }
    shown
}

impl<'a> Doc<'a> {
    fn new(v: &'a View, cap: usize) -> Self {
        let mut omitted = BTreeMap::new();
        let (alarm, api_call, config) = match &v.subject {
            Subject::Alarm(a) => (Some(alarm_doc(a, cap, &mut omitted)), None, None),
            Subject::Call(c) => (None, Some(call_doc(c, cap, &mut omitted)), None),
            Subject::Config(c) => (None, None, Some(config_doc(c, cap, &mut omitted))),
        };
        let evidence = head(&v.evidence, cap, "evidence", &mut omitted);
        let probable_causes = head(&v.causes, cap, "probable_causes", &mut omitted)
            .iter()
            .map(|c| cause_doc(c, cap))
            .collect();
        let runbook = head(&v.runbook, cap, "runbook", &mut omitted)
            .iter()
            .map(|s: &StepView| {
                let (command, argv, command_withheld) = match &s.command {
                    Some(CommandView::Shown(c)) => (Some(c.line()), Some(c.argv()), None),
                    Some(CommandView::Withheld(why)) => (None, None, Some(withheld(*why))),
                    None => (None, None, None),
                };
                StepDoc {
                    action: s.action.as_str(),
                    title: &s.title,
                    command,
                    argv,
                    command_withheld,
                    link: s.link.as_deref(),
                }
            })
            .collect();
        let links = head(&v.links, cap, "links", &mut omitted)
            .iter()
            .map(|l: &LinkView| LinkDoc {
                label: &l.label,
                url: &l.url,
            })
            .collect();
        let notes = head(&v.notes, cap, "notes", &mut omitted);
        Doc {
            version: SCHEMA_VERSION,
            kind: v.kind.as_str(),
            severity: v.severity.as_str(),
            title: &v.title,
            summary: &v.summary,
            rule: &v.rule,
            account: v.account.as_deref(),
            region: v.region.as_deref(),
            resource: v.resource.as_deref(),
            state: v.state.as_deref(),
            time: v.time.to_rfc3339(),
            input: v.input.as_str(),
            team: &v.team,
            correlation_id: &v.correlation_id,
            content_policy: v.policy.as_str(),
            alarm,
            api_call,
            config,
            evidence,
            probable_causes,
            runbook,
            links,
            notes,
            omitted,
        }
    }
}

fn alarm_doc<'a>(
    a: &'a AlarmView,
    cap: usize,
    omitted: &mut BTreeMap<&'static str, usize>,
) -> AlarmDoc<'a> {
    AlarmDoc {
        name: &a.name,
        arn: a.arn.as_deref(),
        state: a.state.as_str(),
        previous_state: a.previous.map(|p| p.as_str()),
        description: a.description.as_deref(),
        reason: a.reason.as_deref(),
        metrics: head(&a.metrics, cap, "alarm.metrics", omitted),
        expression: a.expression.as_deref(),
        alarm_rule: a.alarm_rule.as_deref(),
        triggering_alarms: head(&a.triggering, cap, "alarm.triggering_alarms", omitted),
        threshold: a.threshold_value,
        comparison: a.comparison.as_deref(),
        recent_datapoints: &a.recent_values,
    }
}

fn call_doc<'a>(
    c: &'a CallView,
    cap: usize,
    omitted: &mut BTreeMap<&'static str, usize>,
) -> CallDoc<'a> {
    CallDoc {
        event_id: &c.event_id,
        event_name: &c.event_name,
        event_source: &c.event_source,
        time: c.time.to_rfc3339(),
        actor: &c.actor,
        identity_type: c.identity_type.as_deref(),
        actor_arn: c.actor_arn.as_deref(),
        role_arn: c.role_arn.as_deref(),
        invoked_by: c.invoked_by.as_deref(),
        source_ip: c.source_ip.as_deref(),
        user_agent: c.user_agent.as_deref(),
        read_only: c.read_only,
        error_code: c.error_code.as_deref(),
        error_message: c.error_message.as_deref(),
        resources: head(&c.resources, cap, "api_call.resources", omitted),
        request: head(&c.request, cap, "api_call.request", omitted)
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    }
}

fn config_doc<'a>(
    c: &'a ConfigView,
    cap: usize,
    omitted: &mut BTreeMap<&'static str, usize>,
) -> ConfigDoc<'a> {
    ConfigDoc {
        rule_name: c.rule_name.as_deref(),
        resource_type: c.resource_type.as_deref(),
        resource_id: c.resource_id.as_deref(),
        resource_name: c.resource_name.as_deref(),
        compliance: c.compliance.as_deref(),
        previous_compliance: c.previous_compliance.as_deref(),
        change_type: c.change_type.as_deref(),
        changed_properties: head(
            &c.changed_properties,
            cap,
            "config.changed_properties",
            omitted,
        ),
    }
}

fn cause_doc(c: &CauseView, cap: usize) -> CauseDoc<'_> {
    CauseDoc {
        event_id: &c.event_id,
        event_name: &c.event_name,
        event_source: &c.event_source,
        actor: &c.actor,
        time: c.time.to_rfc3339(),
        relative: &c.relative,
        source_ip: c.source_ip.as_deref(),
        user_agent: c.user_agent.as_deref(),
        reason: c.reason.as_deref(),
        score: c.score,
        resources: c
            .resources
            .items
            .get(..cap.min(c.resources.items.len()))
            .unwrap_or_default(),
        console_link: c.console_link.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::model::{AlertBody, ProbableCause, RunbookStep, StepAction};
    use crate::redact::ContentPolicy;
    use crate::render::fixtures::*;

    fn parse(n: &SnsNotification) -> (Value, Value) {
        let outer: Value = serde_json::from_str(&n.message).unwrap_or_default();
        let doc = outer
            .get("default")
            .and_then(Value::as_str)
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        (outer, doc)
    }

    #[test]
    fn an_alarm_becomes_subject_json_email_and_attributes() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        let n = sns(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Redacted,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        assert_eq!(n.subject, "[HIGH] throttle_spike: bedrock-throttles-claude");
        let (outer, doc) = parse(&n);
        assert!(
            outer
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.starts_with("[HIGH] Throttling"))
        );
        assert_eq!(doc.get("version").and_then(Value::as_str), Some("1"));
        assert_eq!(
            doc.get("kind").and_then(Value::as_str),
            Some("throttle_spike")
        );
        assert_eq!(doc.get("team").and_then(Value::as_str), Some("ai-platform"));
        assert_eq!(
            doc.pointer("/alarm/threshold").and_then(Value::as_f64),
            Some(10.0)
        );
        assert_eq!(
            doc.pointer("/probable_causes/0/event_id")
                .and_then(Value::as_str),
            Some("0123abcd-1111-2222-3333-000000000001")
        );
        assert_eq!(
            doc.get("time").and_then(Value::as_str),
            Some("2024-05-01T12:00:00+00:00")
        );
        assert!(doc.get("omitted").is_none());
        assert_eq!(
            n.attributes,
            BTreeMap::from([
                ("account".to_owned(), "123456789012".to_owned()),
                ("input".to_owned(), "alarm_eventbridge".to_owned()),
                ("kind".to_owned(), "throttle_spike".to_owned()),
                ("severity".to_owned(), "high".to_owned()),
                ("team".to_owned(), "ai-platform".to_owned()),
            ])
        );
    }

    #[test]
    fn metadata_policy_leaves_free_text_out_of_the_document() {
        let alert = alert(AlertBody::ApiCall(change()));
        let finding = finding();
        let dest = destination();
        let n = sns(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Metadata,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        let (_, doc) = parse(&n);
        assert!(doc.pointer("/api_call/error_message").is_none());
        assert!(doc.pointer("/api_call/request").is_none());
        assert_eq!(
            doc.pointer("/api_call/error_code").and_then(Value::as_str),
            Some("AccessDenied")
        );
        assert!(!n.message.contains("not authorized"));
    }

    #[test]
    fn subjects_are_short_single_line_ascii() {
        assert_eq!(ascii_line("a\nb\t c", 99), "a b c");
        assert_eq!(ascii_line("café ☕", 99), "caf? ?");
        assert_eq!(ascii_line(&"x".repeat(200), 99).len(), 99);
        assert!(ascii_line(&"x".repeat(200), 99).ends_with("..."));
    }

    #[test]
    fn huge_lists_are_cut_to_fit_and_counted() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        let long = "r".repeat(400);
        finding.probable_causes = (0..500)
            .map(|i| ProbableCause {
                reason: long.clone(),
                resources: vec![long.clone(); 100],
                ..cause(i)
            })
            .collect();
        let dest = destination();
        let n = sns(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        assert!(n.message.len() <= MAX_MESSAGE_BYTES, "{}", n.message.len());
        let (_, doc) = parse(&n);
        let shown = doc
            .get("probable_causes")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let omitted = doc
            .pointer("/omitted/probable_causes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        assert!(shown > 0);
        assert_eq!(shown as u64 + omitted, 500);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_input_gives_a_valid_sns_message(
            seed in "[a-zA-Z0-9 <>&|\"\\\\{}\\n-]{1,12}|\\PC{1,12}",
            times in 1usize..900,
            n_causes in 0usize..500,
            n_steps in 0usize..300,
            policy in prop_oneof![
                Just(ContentPolicy::Metadata),
                Just(ContentPolicy::Redacted),
                Just(ContentPolicy::Full),
            ],
        ) {
            let s = format!("{}<!channel>", seed.repeat(times));
            let short = format!("{}<!channel>", seed.repeat(times % 40 + 1));
            let item = |i: usize| if i < 3 { s.clone() } else { short.clone() };
            let mut a = alarm();
            a.name = s.clone();
            a.reason = s.clone();
            a.description = Some(s.clone());
            let mut alert = alert(AlertBody::Alarm(a));
            alert.account = Some(s.clone());
            let mut finding = finding();
            finding.title = s.clone();
            finding.summary = s.clone();
            finding.evidence = (0..n_steps).map(item).collect();
            finding.probable_causes = (0..n_causes)
                .map(|i| ProbableCause {
                    actor: item(i),
                    reason: item(i),
                    resources: (0..20).map(|j| item(i + j)).collect(),
                    ..cause(u32::try_from(i).unwrap_or(0))
                })
                .collect();
            finding.runbook = (0..n_steps)
                .map(|i| RunbookStep { action: StepAction::Check, title: item(i), command: crate::model::Command::new(vec![item(i)]), link: None })
                .collect();
            let mut dest = destination();
            dest.team = s.clone();
            let n = sns(
                &RenderInput { alert: &alert, finding: &finding, destination: &dest, policy, correlation_id: &s },
                &Redactor::new(),
            );
            prop_assert!(!n.subject.is_empty());
            prop_assert!(n.subject.len() <= MAX_SUBJECT_CHARS);
            prop_assert!(n.subject.chars().all(|c| c == ' ' || c.is_ascii_graphic()), "{}", n.subject);
            prop_assert!(n.message.len() <= MAX_MESSAGE_BYTES);
            let outer: Value = serde_json::from_str(&n.message).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let default = outer.get("default").and_then(Value::as_str);
            prop_assert!(default.is_some());
            prop_assert!(outer.get("email").and_then(Value::as_str).is_some());
            let doc: Value = serde_json::from_str(default.unwrap_or_default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(doc.is_object());
            for key in ["severity", "kind", "team", "account", "input"] {
                prop_assert!(n.attributes.get(key).is_some_and(|v| !v.is_empty()), "{key}");
            }
        }
    }
}
