//! Enrichment from data: the look-back window, the [`Context`] a change source fills, and the
//! correlation that ranks probable causes (ARCHITECTURE.md "Correlation").

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Alert, AlertBody, Change, ProbableCause};

/// The span of CloudTrail history searched for causes: `[alarm time - look-back, alarm time]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A context source that failed or ran out of time: the alert still goes out and says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingContext {
    pub source: String,
    pub reason: String,
}

/// What enrichment gathered for one alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// The window searched; `None` when no search was made.
    pub window: Option<Window>,
    /// When the search ran (decides the "CloudTrail can lag" wording).
    pub looked_up_at: Option<DateTime<Utc>>,
    /// Every change found, read-only calls and failed calls included (they are evidence).
    pub changes: Vec<Change>,
    /// Event sources searched, e.g. `iam.amazonaws.com`.
    pub sources: Vec<String>,
    /// Sources that failed or were cut short.
    pub missing: Vec<MissingContext>,
    /// Bedrock, CloudWatch and tag look-ups (empty offline).
    #[serde(default)]
    pub service: crate::ports::ServiceContext,
}

/// The outcome of correlating an alert with its context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// Ranked, most probable first.
    pub causes: Vec<ProbableCause>,
    /// Calls in the window that were denied, made by the alarm's resource or its role.
    pub denied: Vec<Change>,
    /// IAM role ARNs or names the alarm's resource runs as, as far as the context shows.
    pub resource_roles: BTreeSet<String>,
    /// Facts the classifier can match on with `context:` conditions:
    /// `denied_calls`, `permission_removed_on_resource_role`, `recent_change_on_resource`.
    pub facts: BTreeSet<String>,
    /// Honest notes for the reader ("no change found yet ...", "LookupEvents throttled ...").
    pub notes: Vec<String>,
}

/// The default look-back of ARCHITECTURE.md "Correlation".
pub const DEFAULT_LOOKBACK_MINUTES: i64 = 60;

/// CloudTrail can take up to ~15 minutes to show an event.
pub const CLOUDTRAIL_LAG: Duration = Duration::minutes(15);

/// How far back to look, ending at the alarm's state change.
pub fn window_for(alert_time: DateTime<Utc>, lookback: Duration) -> Window {
    Window {
        start: lookback_start(alert_time, lookback),
        end: alert_time,
    }
}

/// `alert_time - lookback`, or the earliest representable time: an input can carry a time at
/// the very start of chrono's range (`-262143-01-01T00:00:00Z` parses), where the plain
/// subtraction panics.
fn lookback_start(alert_time: DateTime<Utc>, lookback: Duration) -> DateTime<Utc> {
    alert_time
        .checked_sub_signed(lookback)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// CloudTrail event sources worth searching for an alert (ARCHITECTURE.md "Correlation"): always IAM and Bedrock,
/// plus the services implied by the alarm's namespace or the call's own source.
pub fn sources_for(alert: &Alert) -> Vec<String> {
    let mut out = vec![
        "iam.amazonaws.com".to_string(),
        "bedrock.amazonaws.com".to_string(),
    ];
    let mut add = |s: &str| {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    match &alert.body {
        AlertBody::Alarm(alarm) => {
            for m in &alarm.metrics {
                if let Some(src) = m.namespace.as_deref().and_then(namespace_source) {
                    add(src);
                }
            }
        }
        AlertBody::ApiCall(c) => add(&c.event_source),
        AlertBody::Config(_) => add("config.amazonaws.com"),
    }
    out
}

/// The CloudTrail event source of an AWS metric namespace.
pub fn namespace_source(namespace: &str) -> Option<&'static str> {
    Some(match namespace {
        "AWS/Lambda" => "lambda.amazonaws.com",
        "AWS/Bedrock" | "AWS/Bedrock/Guardrails" | "AWS/Bedrock/Agents" => "bedrock.amazonaws.com",
        "AWS/DynamoDB" => "dynamodb.amazonaws.com",
        "AWS/S3" => "s3.amazonaws.com",
        "AWS/SQS" => "sqs.amazonaws.com",
        "AWS/SNS" => "sns.amazonaws.com",
        "AWS/KMS" => "kms.amazonaws.com",
        "AWS/ApiGateway" => "apigateway.amazonaws.com",
        "AWS/States" => "states.amazonaws.com",
        "AWS/Events" => "events.amazonaws.com",
        "AWS/EC2" => "ec2.amazonaws.com",
        "AWS/ECS" => "ecs.amazonaws.com",
        "AWS/SageMaker" => "sagemaker.amazonaws.com",
        "AWS/CloudTrail" => "cloudtrail.amazonaws.com",
        "AWS/Config" => "config.amazonaws.com",
        "AWS/STS" | "AWS/Usage" => "sts.amazonaws.com",
        _ => return None,
    })
}

/// Dimensions that name the resource an alarm is about.
const RESOURCE_DIMENSIONS: &[&str] = &[
    "FunctionName",
    "ModelId",
    "GuardrailArn",
    "GuardrailId",
    "TableName",
    "BucketName",
    "QueueName",
    "TopicName",
    "StateMachineArn",
    "ApiName",
    "InstanceId",
    "KnowledgeBaseId",
    "AgentId",
    "AgentAliasArn",
    "EndpointName",
    "ClusterName",
    "ServiceName",
    "Resource",
];

/// A thing an alert is about, with the words to name it.
#[derive(Debug, Clone)]
struct Subject {
    value: String,
    label: String,
}

fn subjects(alert: &Alert) -> Vec<Subject> {
    let mut out: Vec<Subject> = Vec::new();
    let mut push = |value: &str, label: String| {
        let v = value.trim();
        if v.len() >= 3 && !out.iter().any(|s| s.value == v) {
            out.push(Subject {
                value: v.to_string(),
                label,
            });
        }
    };
    match &alert.body {
        AlertBody::Alarm(alarm) => {
            for (k, v) in alarm.dimensions() {
                if RESOURCE_DIMENSIONS.contains(&k.as_str()) {
                    push(&v, format!("the alarm's {k}"));
                    // ARN dimensions (GuardrailArn) are referenced by id in API calls.
                    if v.starts_with("arn:")
                        && let Some(last) = v.rsplit(['/', ':']).next()
                    {
                        push(last, format!("the alarm's {k}"));
                    }
                }
            }
        }
        AlertBody::ApiCall(c) => {
            for r in &c.resources {
                push(r, "the same resource".to_string());
            }
        }
        AlertBody::Config(c) => {
            for r in [&c.resource_id, &c.resource_name].into_iter().flatten() {
                push(r, "the same resource".to_string());
            }
        }
    }
    out
}

/// The name at the end of an ARN (`arn:aws:iam::1:role/x` -> `x`) or of a path.
fn last_segment(s: &str) -> &str {
    if s.starts_with("arn:") {
        s.rsplit(['/', ':']).next().unwrap_or(s)
    } else {
        s.rsplit('/').next().unwrap_or(s)
    }
}

/// Does a change's resource refer to the subject (same string, same ARN tail, or ARN containing it)?
fn refers_to(resource: &str, subject: &str) -> bool {
    resource == subject
        || last_segment(resource) == subject
        || last_segment(subject) == resource
        || (resource.starts_with("arn:") && resource.ends_with(&format!("/{subject}")))
        || (resource.starts_with("arn:") && resource.ends_with(&format!(":{subject}")))
}

/// Roles the alarm's functions run as, as the context shows them: Lambda names the
/// assumed-role session after the function, and CreateFunction / UpdateFunctionConfiguration
/// carry the `role` parameter.
fn roles_of(subjects: &[Subject], changes: &[Change]) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();
    for c in changes {
        if let (Some(session), Some(role)) = (&c.actor.session_name, &c.actor.role_arn)
            && subjects.iter().any(|s| &s.value == session)
        {
            roles.insert(role.clone());
        }
        if c.event_name.starts_with("CreateFunction")
            || c.event_name.starts_with("UpdateFunctionConfiguration")
        {
            let function = c.request.get("functionName").and_then(|v| v.as_str());
            let role = c.request.get("role").and_then(|v| v.as_str());
            if let (Some(f), Some(r)) = (function, role)
                && subjects.iter().any(|s| refers_to(f, &s.value))
            {
                roles.insert(r.to_string());
            }
        }
    }
    roles
}

fn metric_names(alert: &Alert) -> Vec<&str> {
    alert
        .alarm()
        .map(|a| a.metrics.iter().map(|m| m.name.as_str()).collect())
        .unwrap_or_default()
}

fn is_throttle_metric(name: &str) -> bool {
    name.contains("Throttle")
}

fn is_error_metric(name: &str) -> bool {
    name.contains("Error")
        || name.contains("5xx")
        || name.contains("5XX")
        || name.contains("Fault")
        || name.contains("AccessDenied")
}

fn is_guardrail_event(event_name: &str) -> bool {
    event_name.contains("Guardrail")
}

fn is_permission_event(c: &Change) -> bool {
    c.service() == "iam"
        || c.facts.contains("removes_permission")
        || c.event_name.contains("Permission")
        || c.event_name.contains("Policy")
}

/// Correlate an alert with its context: rank the effective writes before it by relevance
/// (same resource, same role, a change of the kind that explains the alarm, same service,
/// recency), collect denied calls by the alarm's resource, and word the notes honestly.
pub fn correlate(alert: &Alert, ctx: &Context, max_causes: usize) -> Correlation {
    let subjects = subjects(alert);
    let resource_roles = roles_of(&subjects, &ctx.changes);
    let role_names: Vec<&str> = resource_roles.iter().map(|r| last_segment(r)).collect();
    let sources = sources_for(alert);
    let implied: Vec<&str> = sources
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "iam.amazonaws.com")
        .collect();
    let metrics = metric_names(alert);
    let throttle_alarm = metrics.iter().any(|m| is_throttle_metric(m));
    let error_alarm = metrics.iter().any(|m| is_error_metric(m));
    let guardrail_alarm = alert
        .alarm()
        .and_then(|a| a.namespace())
        .is_some_and(|n| n == "AWS/Bedrock/Guardrails");
    let own_id = alert.api_call().map(|c| c.event_id.as_str());
    let lookback = ctx
        .window
        .map(|w| w.end - w.start)
        .unwrap_or(Duration::minutes(DEFAULT_LOOKBACK_MINUTES));
    let window_start = ctx
        .window
        .map(|w| w.start)
        .unwrap_or_else(|| lookback_start(alert.time, lookback));

    let mut correlation = Correlation {
        resource_roles: resource_roles.clone(),
        ..Correlation::default()
    };

    // Denied calls made by the alarm's resource (its function session or its role).
    for c in &ctx.changes {
        if !c.is_denied() || c.time < window_start {
            continue;
        }
        let by_resource = c
            .actor
            .session_name
            .as_deref()
            .is_some_and(|s| subjects.iter().any(|x| x.value == s))
            || c.actor
                .role_arn
                .as_deref()
                .is_some_and(|r| resource_roles.contains(r));
        if by_resource {
            correlation.denied.push(c.clone());
        }
    }
    if !correlation.denied.is_empty() {
        correlation.facts.insert("denied_calls".to_string());
    }

    let mut scored: Vec<ProbableCause> = Vec::new();
    let mut unrelated = 0usize;
    for c in &ctx.changes {
        if !c.is_effective_write()
            || Some(c.event_id.as_str()) == own_id
            || c.time > alert.time
            || c.time < window_start
        {
            continue;
        }
        let mut score: u32 = 0;
        let mut relations: Vec<String> = Vec::new();
        if let Some(s) = subjects
            .iter()
            .find(|s| c.resources.iter().any(|r| refers_to(r, &s.value)))
        {
            score += 50;
            relations.push(format!("{} is {}", s.value, s.label));
            correlation
                .facts
                .insert("recent_change_on_resource".to_string());
        }
        if let Some(role) = role_names
            .iter()
            .find(|role| c.resources.iter().any(|r| refers_to(r, role)))
        {
            score += 45;
            let who = subjects
                .first()
                .map(|s| s.value.as_str())
                .unwrap_or("the resource");
            relations.push(format!("{role} is the role {who} runs as"));
            if c.facts.contains("removes_permission") {
                correlation
                    .facts
                    .insert("permission_removed_on_resource_role".to_string());
                relations.push("it removed a permission".to_string());
            }
        }
        if throttle_alarm && c.facts.contains("capacity_change") {
            score += 25;
            relations.push("a capacity change, and the alarm is about throttling".to_string());
        }
        if error_alarm && is_permission_event(c) && score > 0 {
            score += 10;
        }
        if guardrail_alarm && is_guardrail_event(&c.event_name) {
            score += 15;
            relations.push(
                "a guardrail change, and the alarm is about guardrail interventions".to_string(),
            );
        }
        if implied.contains(&c.event_source.as_str()) {
            score += 20;
            if relations.is_empty() {
                relations.push(format!("same service as the alarm ({})", c.service()));
            }
        }
        if score < 20 {
            unrelated += 1;
            continue;
        }
        let age = alert.time - c.time;
        let recency = recency_points(age, lookback);
        score += recency;
        let what = describe_change(c);
        let reason = format!(
            "{what}; {}; changed {} before the {}",
            relations.join("; "),
            human_age(age),
            alert_noun(alert)
        );
        scored.push(ProbableCause {
            event_id: c.event_id.clone(),
            event_name: c.event_name.clone(),
            event_source: c.event_source.clone(),
            actor: c.actor.name.clone(),
            time: c.time,
            source_ip: c.source_ip.clone(),
            user_agent: c.user_agent.clone(),
            reason,
            score,
            resources: c.resources.clone(),
            console_link: c
                .region
                .as_deref()
                .or(alert.region.as_deref())
                .map(|r| cloudtrail_event_link(r, &c.event_id)),
        });
    }
    // Highest score first; among equals the more recent; event id last for a stable order.
    scored.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.time.cmp(&a.time))
            .then(a.event_id.cmp(&b.event_id))
    });
    let total = scored.len();
    scored.truncate(max_causes);
    correlation.causes = scored;

    correlation.notes = notes(alert, ctx, &correlation, total, unrelated, lookback);
    correlation
}

fn notes(
    alert: &Alert,
    ctx: &Context,
    corr: &Correlation,
    total: usize,
    unrelated: usize,
    lookback: Duration,
) -> Vec<String> {
    let mut notes = Vec::new();
    for m in ctx.missing.iter().chain(&ctx.service.missing) {
        notes.push(format!("Context missing from {}: {}", m.source, m.reason));
    }
    if let Some(line) = ctx.service.metric.as_ref().and_then(metric_line) {
        notes.push(line);
    }
    if let Some(g) = &ctx.service.guardrail {
        let filter = match g.prompt_attack_input.as_deref() {
            Some(strength) => format!("prompt-attack filter on input: {strength}"),
            None => "no prompt-attack filter".to_string(),
        };
        notes.push(format!(
            "Guardrail {} ({}) version {}: {filter}.",
            g.id, g.name, g.version
        ));
    }
    match &ctx.service.invocation_logging {
        Some(crate::ports::InvocationLogging::Off) => {
            notes.push(
                "Bedrock invocation logging is off: there is no record of the prompts involved."
                    .to_string(),
            );
        }
        Some(crate::ports::InvocationLogging::On {
            cloudwatch_log_group,
            s3_bucket,
            ..
        }) => {
            let mut places = Vec::new();
            if let Some(g) = cloudwatch_log_group {
                places.push(format!("CloudWatch Logs group {g}"));
            }
            if let Some(b) = s3_bucket {
                places.push(format!("S3 bucket {b}"));
            }
            notes.push(format!(
                "Bedrock invocation logs (evidence stays in the account): {}.",
                places.join(" and ")
            ));
        }
        None => {}
    }
    match (ctx.window, alert.alarm().is_some()) {
        (None, _) => notes.push("CloudTrail context was not searched.".to_string()),
        (Some(_), true) if corr.causes.is_empty() && !ctx.missing.is_empty() => {
            notes.push(format!(
                "No change found in the part of CloudTrail that could be searched ({} of {} sources incomplete): causes may be missing.",
                ctx.missing.len(),
                ctx.sources.len() + ctx.missing.len()
            ));
        }
        (Some(_), true) if corr.causes.is_empty() => {
            let near = ctx
                .looked_up_at
                .is_some_and(|t| t - alert.time < CLOUDTRAIL_LAG);
            if near {
                notes.push("No change found yet (CloudTrail can lag up to ~15 min).".to_string());
            } else {
                notes.push(format!(
                    "No related change found in the {} min before the alarm (searched {}).",
                    lookback.num_minutes(),
                    if ctx.sources.is_empty() {
                        "the supplied trail".to_string()
                    } else {
                        ctx.sources.join(", ")
                    }
                ));
            }
        }
        _ => {}
    }
    if total > corr.causes.len() {
        notes.push(format!(
            "{} more related change(s) not shown.",
            total - corr.causes.len()
        ));
    }
    if unrelated > 0 {
        notes.push(format!(
            "{unrelated} other write call(s) in the window look unrelated."
        ));
    }
    if let Some(first) = corr.denied.iter().min_by_key(|c| c.time) {
        notes.push(format!(
            "{} denied call(s) by {} since {} ({} {}).",
            corr.denied.len(),
            first.actor.name,
            first.time.format("%H:%M:%SZ"),
            first.event_name,
            first.error_code.as_deref().unwrap_or("")
        ));
    }
    notes
}

fn alert_noun(alert: &Alert) -> &'static str {
    match alert.body {
        AlertBody::Alarm(_) => "alarm",
        AlertBody::ApiCall(_) => "call",
        AlertBody::Config(_) => "change",
    }
}

/// Up to 15 points, falling linearly to 0 at the window's start.
fn recency_points(age: Duration, lookback: Duration) -> u32 {
    let total = lookback.num_seconds().max(1);
    let left = (total - age.num_seconds()).clamp(0, total);
    u32::try_from(left * 15 / total).unwrap_or(0)
}

/// "4 min", "less than a minute", "2 h 5 min".
pub fn human_age(age: Duration) -> String {
    let mins = age.num_minutes();
    if mins < 1 {
        "less than a minute".to_string()
    } else if mins < 120 {
        format!("{mins} min")
    } else {
        format!("{} h {} min", mins / 60, mins % 60)
    }
}

/// "DetachRolePolicy on agent-tool-role (policy/x) by dana".
fn describe_change(c: &Change) -> String {
    let on = c
        .resources
        .iter()
        .map(|r| last_segment(r).to_string())
        .collect::<Vec<_>>();
    let target = if on.is_empty() {
        String::new()
    } else {
        format!(" on {}", on.join(", "))
    };
    format!("{} by {}{target}", c.event_name, c.actor.name)
}

/// The CloudTrail console page of one event.
pub fn cloudtrail_event_link(region: &str, event_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}"
    )
}

impl Context {
    /// A context read from saved CloudTrail data: keeps the changes inside
    /// `[window.start, looked_up_at]` (later calls cannot be known at lookup time).
    pub fn from_changes(
        window: Window,
        looked_up_at: DateTime<Utc>,
        changes: Vec<Change>,
        sources: Vec<String>,
    ) -> Self {
        let mut changes: Vec<Change> = changes
            .into_iter()
            .filter(|c| c.time >= window.start && c.time <= looked_up_at.max(window.end))
            .collect();
        changes.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
        changes.dedup_by(|a, b| a.event_id == b.event_id);
        Self {
            window: Some(window),
            looked_up_at: Some(looked_up_at),
            changes,
            sources,
            missing: Vec::new(),
            service: crate::ports::ServiceContext::default(),
        }
    }
}

/// "212 now, 12x the 3-hour median (18) ▁▁▂▁▃█".
pub fn metric_line(m: &crate::ports::MetricHistory) -> Option<String> {
    let current = m.current?;
    let spark = sparkline(&m.points);
    let versus = match m.baseline {
        Some(b) if b > 0.0 => format!(
            ", {} the {}-hour median ({})",
            ratio_words(current / b),
            m.hours,
            short_num(b)
        ),
        Some(_) => format!(", against a {}-hour median of 0", m.hours),
        None => String::new(),
    };
    Some(
        format!("Metric: {} now{versus} {spark}", short_num(current))
            .trim_end()
            .to_string(),
    )
}

fn ratio_words(r: f64) -> String {
    if r >= 1.95 {
        format!("{:.0}x", r)
    } else if r >= 1.05 {
        format!("{:.0}% above", (r - 1.0) * 100.0)
    } else if r <= 0.95 {
        format!("{:.0}% below", (1.0 - r) * 100.0)
    } else {
        "level with".to_string()
    }
}

fn short_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Eight-level block sparkline, at most 24 characters (the last points).
pub fn sparkline(points: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite: Vec<f64> = points.iter().copied().filter(|p| p.is_finite()).collect();
    let tail = finite.get(finite.len().saturating_sub(24)..).unwrap_or(&[]);
    let (min, max) = tail
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(*p), hi.max(*p))
        });
    tail.iter()
        .map(|p| {
            let level = if max > min {
                ((p - min) / (max - min) * 7.0).round()
            } else {
                0.0
            };
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let idx = level.clamp(0.0, 7.0) as usize;
            BARS.get(idx).copied().unwrap_or('▁')
        })
        .collect()
}

#[cfg(test)]
mod service_context_tests {
    use super::*;
    use crate::ports::MetricHistory;

    #[test]
    fn the_metric_line_compares_now_with_the_baseline_and_draws_a_sparkline() {
        let m = MetricHistory {
            points: vec![2.0, 3.0, 2.0, 3.0, 18.0, 24.0],
            current: Some(24.0),
            baseline: Some(2.0),
            hours: 3,
        };
        let line = metric_line(&m).unwrap_or_default();
        assert!(
            line.starts_with("Metric: 24 now, 12x the 3-hour median (2)"),
            "{line}"
        );
        assert!(line.ends_with('█'), "{line}");
        assert_eq!(sparkline(&[1.0, 1.0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[f64::NAN, 0.0, 7.0]), "▁█");
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    // Found by probing intake with the ends of chrono's range (see RELIABILITY.md, "Fuzzing"):
    // a look-back from the earliest representable time panicked.
    #[test]
    fn a_look_back_from_the_earliest_time_stops_there() {
        let earliest = DateTime::<Utc>::MIN_UTC;
        let window = window_for(earliest, Duration::minutes(DEFAULT_LOOKBACK_MINUTES));
        assert_eq!(window.start, earliest);
        assert_eq!(window.end, earliest);
        let alert_time = DateTime::<Utc>::MAX_UTC;
        let window = window_for(alert_time, Duration::minutes(60));
        assert_eq!(alert_time - window.start, Duration::minutes(60));
    }
}
