//! The pure stages composed: normalized alert + context -> finding -> routes -> rendered
//! notifications. This is what `vigil replay` prints and what the Lambda functions deliver.
//!
//! Invariant: [`evaluate`] is total (no error path) and deterministic for the same inputs;
//! everything it emits has passed the content policy.

use serde::Serialize;

use crate::classify::{self, RuleSet};
use crate::enrich::{self, Context, Correlation};
use crate::model::{Actor, AlarmState, Alert, AlertBody, Change, Finding, InputFamily, Kind};
use crate::redact::{ContentPolicy, Redactor};
use crate::render::{self, RenderInput, SlackMessage, SnsNotification};
use crate::route::{self, Destination, Owners, RouteDecision};
use crate::runbook::{self, Runbooks};

/// Everything the pure pipeline needs besides the alert and its context.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: RuleSet,
    pub owners: Owners,
    pub policy: ContentPolicy,
    /// How many probable causes to show.
    pub max_causes: usize,
    /// Runbook playbooks: the built-in ones, extended by a user file (tried first). A matched
    /// route's own `runbooks` for the kind are tried before these.
    pub runbooks: Runbooks,
    /// Slack messages carry vigil's buttons (`render::slack::with_buttons`): set when the
    /// `slack-actions` function is deployed to answer them (`VIGIL_INTERACTIVE=true`).
    pub interactive: bool,
}

impl Settings {
    /// Built-in rules, a single default route for `team`, the default content policy.
    pub fn with_defaults(owners: Owners) -> Self {
        Self {
            rules: RuleSet::builtin(),
            owners,
            policy: ContentPolicy::default(),
            max_causes: 5,
            runbooks: Runbooks::builtin(),
            interactive: false,
        }
    }
}

/// The `vigil replay --format json` contract.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: InputFamily,
    pub alert: Alert,
    pub finding: Finding,
    pub route: RouteDecision,
    pub notifications: Notifications,
}

/// The rendered messages, one per matched route.
#[derive(Debug, Clone, Serialize)]
pub struct Notifications {
    pub slack: Vec<Addressed<SlackMessage>>,
    pub sns: Vec<Addressed<SnsNotification>>,
}

/// A rendered message and the route it is for.
#[derive(Debug, Clone, Serialize)]
pub struct Addressed<T> {
    pub route: String,
    pub team: String,
    pub destination: Option<String>,
    pub message: T,
}

/// Classify, route and render one alert against its context.
pub fn evaluate(alert: Alert, ctx: &Context, settings: &Settings, redactor: &Redactor) -> Report {
    // Tags found by enrichment route like tags in the event.
    let mut alert = alert;
    if let AlertBody::Alarm(a) = &mut alert.body {
        for (k, v) in &ctx.service.alarm_tags {
            a.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // Redact first: every later stage, and the JSON report itself, sees only safe values.
    let alert = sanitize_alert(alert, settings.policy, redactor);
    // Field by field, so the changes are copied once (sanitized), not cloned and dropped.
    let ctx = Context {
        window: ctx.window,
        looked_up_at: ctx.looked_up_at,
        changes: ctx
            .changes
            .iter()
            .map(|c| sanitized_change(c, settings.policy, redactor))
            .collect(),
        sources: ctx.sources.clone(),
        missing: ctx.missing.clone(),
        service: ctx.service.clone(),
    };
    let ctx = &ctx;
    let correlation = enrich::correlate(&alert, ctx, settings.max_causes);
    let classification = classify::classify(&alert, &correlation, &settings.rules);
    let decision = route::route(
        &settings.owners,
        &alert,
        classification.kind,
        classification.severity,
    );
    let runbook_base = decision
        .matched
        .first()
        .and_then(|m| m.destination.runbook_base_url.clone());
    // The runbook is built once routing is known: the first matched route with its own
    // playbooks for this kind replaces the configured ones (which still apply when none of the
    // route's fits).
    let mut playbooks: Vec<&Runbooks> = decision
        .matched
        .iter()
        .map(|m| &m.destination.runbooks)
        .filter(|r| r.has(classification.kind))
        .take(1)
        .collect();
    playbooks.push(&settings.runbooks);

    let finding = Finding {
        kind: classification.kind,
        severity: classification.severity,
        title: title(&alert, classification.kind),
        summary: summary(&alert, &correlation),
        rule: classification.rule,
        evidence: classification.evidence,
        runbook: runbook::steps(
            &playbooks,
            classification.kind,
            &alert,
            &correlation,
            runbook_base.as_deref(),
        ),
        links: runbook::links(&alert, &correlation),
        probable_causes: correlation.causes.clone(),
        context_notes: correlation.notes.clone(),
    };

    let mut slack = Vec::new();
    let mut sns = Vec::new();
    for matched in &decision.matched {
        let input = RenderInput {
            alert: &alert,
            finding: &finding,
            destination: &matched.destination,
            policy: settings.policy,
            correlation_id: &alert.id,
        };
        let d: &Destination = &matched.destination;
        let wants_slack = d.slack_channel.is_some() || d.slack_webhook_secret.is_some();
        let wants_sns = d.sns_topic_arn.is_some();
        // One view for both channels when the route has both.
        let (slack_message, sns_message) = match (wants_slack, wants_sns) {
            (true, true) => {
                let (s, n) = render::slack_and_sns(&input, redactor);
                (Some(s), Some(n))
            }
            (true, false) => (Some(render::slack::slack(&input, redactor)), None),
            (false, true) => (None, Some(render::sns::sns(&input, redactor))),
            (false, false) => (None, None),
        };
        if let Some(message) = slack_message {
            slack.push(Addressed {
                route: matched.name.clone(),
                team: d.team.clone(),
                destination: d
                    .slack_channel
                    .clone()
                    .or_else(|| d.slack_webhook_secret.clone()),
                message: if settings.interactive {
                    render::slack::with_buttons(message, &input, redactor)
                } else {
                    message
                },
            });
        }
        if let Some(message) = sns_message {
            sns.push(Addressed {
                route: matched.name.clone(),
                team: d.team.clone(),
                destination: d.sns_topic_arn.clone(),
                message,
            });
        }
    }
    Report {
        input: alert.input,
        alert,
        finding,
        route: decision,
        notifications: Notifications { slack, sns },
    }
}

/// The terminal rendering of a report (first matched route).
pub fn text(report: &Report, settings: &Settings, redactor: &Redactor) -> String {
    let fallback = Destination {
        team: "unrouted".into(),
        ..Destination::default()
    };
    let destination = report
        .route
        .matched
        .first()
        .map(|m| &m.destination)
        .unwrap_or(&fallback);
    let input = RenderInput {
        alert: &report.alert,
        finding: &report.finding,
        destination,
        policy: settings.policy,
        correlation_id: &report.alert.id,
    };
    render::text::text(&input, redactor)
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::ThrottleSpike => "Throttling",
        Kind::InjectionSurge => "Prompt-injection surge",
        Kind::AccessDenied => "Access denied",
        Kind::ErrorSpike => "Error spike",
        Kind::LatencyRegression => "Latency regression",
        Kind::LoggingFailure => "Invocation logging failing",
        Kind::AuditTampering => "Audit logging tampered with",
        Kind::GuardrailChange => "Guardrail changed",
        Kind::PermissionChange => "Permission change",
        Kind::ModelAccessChange => "Model access change",
        Kind::PublicExposure => "Public exposure",
        Kind::ConfigDrift => "Config drift",
        Kind::Resolved => "Resolved",
        Kind::Unknown => "Alert",
    }
}

fn title(alert: &Alert, kind: Kind) -> String {
    let subject = match &alert.body {
        AlertBody::Alarm(a) => a.name.clone(),
        AlertBody::ApiCall(c) => {
            let on = c
                .resources
                .first()
                .map(|r| format!(" on {r}"))
                .unwrap_or_default();
            format!("{}{on} by {}", c.event_name, c.actor.name)
        }
        AlertBody::Config(c) => match (&c.rule_name, &c.resource_id) {
            (Some(rule), Some(res)) => format!("{res} vs {rule}"),
            (Some(rule), None) => rule.clone(),
            (None, Some(res)) => {
                format!("{} {res}", c.resource_type.as_deref().unwrap_or("resource"))
            }
            (None, None) => "AWS Config change".into(),
        },
    };
    format!("{}: {subject}", kind_words(kind))
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn summary(alert: &Alert, corr: &Correlation) -> String {
    let mut s = match &alert.body {
        AlertBody::Alarm(a) => {
            let was = a
                .previous_state
                .map(|p| format!(" (was {})", p.as_str()))
                .unwrap_or_default();
            let mut line = format!("Alarm {} is {}{was}", a.name, a.state.as_str());
            if let Some(m) = a.metrics.first() {
                let dims: Vec<String> = m
                    .dimensions
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let dims = if dims.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", dims.join(", "))
                };
                line.push_str(&format!(
                    ": {} {}{dims}",
                    m.namespace.as_deref().unwrap_or(""),
                    m.name
                ));
            }
            if let (Some(latest), Some(t)) = (a.recent_datapoints.last(), a.threshold) {
                line.push_str(&format!(
                    ", latest {} against threshold {}",
                    fmt_num(*latest),
                    fmt_num(t)
                ));
            } else if let Some(t) = a.threshold {
                line.push_str(&format!(", threshold {}", fmt_num(t)));
            }
            if a.state == AlarmState::Ok {
                line.push_str(". Back to normal");
            }
            line.push('.');
            line
        }
        AlertBody::ApiCall(c) => {
            let on = if c.resources.is_empty() {
                String::new()
            } else {
                format!(" on {}", c.resources.join(", "))
            };
            let from = c
                .source_ip
                .as_deref()
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default();
            let outcome = match &c.error_code {
                Some(code) => format!(" It failed with {code}."),
                None => String::new(),
            };
            format!(
                "{} called {} ({}){on}{from} at {}.{outcome}",
                c.actor.name,
                c.event_name,
                c.event_source,
                c.time.format("%Y-%m-%d %H:%M:%SZ")
            )
        }
        AlertBody::Config(c) => match (&c.compliance, &c.change_type) {
            (Some(now), _) => format!(
                "{} {} is {now} with Config rule {}{}.",
                c.resource_type.as_deref().unwrap_or("resource"),
                c.resource_id.as_deref().unwrap_or("?"),
                c.rule_name.as_deref().unwrap_or("?"),
                c.previous_compliance
                    .as_deref()
                    .map(|p| format!(" (was {p})"))
                    .unwrap_or_default()
            ),
            (None, Some(change)) => {
                let props = if c.changed_properties.is_empty() {
                    String::new()
                } else {
                    format!(" (changed: {})", c.changed_properties.join(", "))
                };
                format!(
                    "{} {} was {}{props}.",
                    c.resource_type.as_deref().unwrap_or("resource"),
                    c.resource_id.as_deref().unwrap_or("?"),
                    change
                        .to_lowercase()
                        .replace("create", "created")
                        .replace("update", "updated")
                        .replace("delete", "deleted")
                )
            }
            (None, None) => "AWS Config reported a change.".into(),
        },
    };
    if let Some(top) = corr.causes.first() {
        s.push_str(&format!(" Probable cause: {}.", top.reason));
    }
    s
}

/// Identifiers are capped and secret-masked; free text follows the content policy.
fn sanitize_alert(mut alert: Alert, policy: ContentPolicy, r: &Redactor) -> Alert {
    alert.id = r.identifier(&alert.id, 512);
    alert.account = alert.account.map(|a| r.identifier(&a, 64));
    alert.region = alert.region.map(|a| r.identifier(&a, 64));
    alert.body = match alert.body {
        AlertBody::Alarm(mut a) => {
            a.name = r.identifier(&a.name, 255);
            a.arn = a.arn.map(|x| r.identifier(&x, 512));
            a.description = a.description.and_then(|d| r.free_text(&d, policy, 1024));
            a.reason = r.free_text(&a.reason, policy, 1024).unwrap_or_default();
            a.expression = a.expression.map(|x| r.identifier(&x, 1024));
            a.alarm_rule = a.alarm_rule.map(|x| r.identifier(&x, 2048));
            a.triggering_alarms = a
                .triggering_alarms
                .iter()
                .take(50)
                .map(|x| r.identifier(x, 512))
                .collect();
            for m in &mut a.metrics {
                m.name = r.identifier(&m.name, 255);
                m.namespace = m.namespace.as_deref().map(|x| r.identifier(x, 255));
                m.dimensions = m
                    .dimensions
                    .iter()
                    .map(|(k, v)| (r.identifier(k, 255), r.identifier(v, 1024)))
                    .collect();
            }
            a.tags = a
                .tags
                .iter()
                .map(|(k, v)| (r.identifier(k, 128), r.identifier(v, 256)))
                .collect();
            AlertBody::Alarm(a)
        }
        AlertBody::ApiCall(c) => AlertBody::ApiCall(sanitized_change(&c, policy, r)),
        AlertBody::Config(mut c) => {
            for f in [
                &mut c.rule_name,
                &mut c.resource_type,
                &mut c.resource_id,
                &mut c.resource_name,
            ] {
                *f = f.as_deref().map(|x| r.identifier(x, 512));
            }
            c.changed_properties = c
                .changed_properties
                .iter()
                .map(|p| r.identifier(p, 255))
                .collect();
            AlertBody::Config(c)
        }
    };
    alert
}

fn sanitized_change(c: &Change, policy: ContentPolicy, r: &Redactor) -> Change {
    let id = |x: &str, max: usize| r.identifier(x, max);
    let opt = |x: &Option<String>, max: usize| x.as_deref().map(|x| r.identifier(x, max));
    Change {
        event_id: id(&c.event_id, 128),
        event_name: id(&c.event_name, 128),
        event_source: id(&c.event_source, 128),
        time: c.time,
        region: c.region.clone(),
        account: c.account.clone(),
        actor: Actor {
            identity_type: c.actor.identity_type.clone(),
            arn: opt(&c.actor.arn, 512),
            name: id(&c.actor.name, 256),
            role_arn: opt(&c.actor.role_arn, 512),
            session_name: opt(&c.actor.session_name, 128),
            invoked_by: opt(&c.actor.invoked_by, 128),
        },
        source_ip: opt(&c.source_ip, 128),
        user_agent: c
            .user_agent
            .as_deref()
            .and_then(|x| r.user_agent(x, policy, 256)),
        read_only: c.read_only,
        error_code: c.error_code.clone(),
        error_message: c
            .error_message
            .as_deref()
            .and_then(|x| r.error_message(x, &c.event_source, &c.event_name, policy, 512)),
        request: c
            .request
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => {
                    (k.clone(), serde_json::Value::String(r.identifier(s, 256)))
                }
                other => (k.clone(), other.clone()),
            })
            .collect(),
        resources: c.resources.iter().map(|x| r.identifier(x, 512)).collect(),
        facts: c.facts.clone(),
    }
}
