//! The handler: one Lambda event in, a decision per alert out.
//!
//! intake → enrich (journal first, then `LookupEvents`) → classify, route, render
//! (`pipeline::evaluate`) → deliver to every channel at once → one log line per decision and
//! one EMF metrics line per invocation.
//!
//! Invariant: nothing is lost. An input that is not understood comes back as
//! [`HandlerError::Refused`]; an alert that no channel delivered makes the whole invocation
//! [`HandlerError::DeliveryFailed`], so Lambda retries it and then hands it to the on-failure
//! destination (a retry may repeat the alerts of the same event that did arrive: a duplicate
//! is better than a loss). Enrichment never fails an alert, it only makes it partial.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use vigil_adapters::delivery::{deliver_all, outgoing_from};
use vigil_core::intake::{self, IntakeError, RefusalCode};
use vigil_core::model::{Alert, InputFamily, Kind, Severity};
use vigil_core::pipeline::{self, Report};
use vigil_core::ports::{BedrockInfo, ChangeSource, MetricInfo, Notifier, StateStore};
use vigil_core::redact::mask_secrets;

use crate::config::ConfigError;
use crate::deps::Deps;
use crate::metrics::InvocationMetrics;

/// The function's name in metrics and refusals.
pub const FUNCTION: &str = "handle-alarm";

/// Time kept back from Lambda's deadline to log, print metrics and return the response.
const RESPONSE_MARGIN: Duration = Duration::from_millis(500);

/// Alerts of one event handled at once: a CloudTrail log file can hold hundreds of records,
/// and each opens its own requests.
pub const ALERT_CONCURRENCY: usize = 16;

/// Why an invocation failed. Each variant has a stable `error_type` (see
/// [`HandlerError::error_type`]) that Lambda records and the on-failure destination carries.
///
/// `Debug` prints the same masked words as `Display` (the runtime logs errors with `{:?}`).
#[derive(thiserror::Error)]
pub enum HandlerError {
    /// The input is not one this function accepts; retrying will not change that.
    #[error("{}", mask_secrets(&.0.to_string()))]
    Refused(IntakeError),
    /// Every channel failed for at least one alert.
    #[error(
        "no channel delivered alert(s) {}: {}",
        alert_ids.join(", "),
        reasons.join("; ")
    )]
    DeliveryFailed {
        /// The alerts that reached nobody.
        alert_ids: Vec<String>,
        /// One line per failed channel (masked by the notifiers).
        reasons: Vec<String>,
        /// Whether a retry could succeed (some failure was transient).
        retryable: bool,
    },
    /// A setting (or what it points at) is unusable: fix the configuration.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// Anything else (a cold-start dependency that did not answer, a journal write that
    /// failed for an event nobody was told about).
    #[error("{message}")]
    Internal {
        /// What failed, never a secret.
        message: String,
        /// Whether a retry could succeed.
        retryable: bool,
    },
}

impl HandlerError {
    /// The stable `error_type`: `Refused`, `DeliveryFailed`, `Config` or `Internal`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Refused(_) => "Refused",
            Self::DeliveryFailed { .. } => "DeliveryFailed",
            Self::Config(_) => "Config",
            Self::Internal { .. } => "Internal",
        }
    }

    /// Whether Lambda's retry could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Refused(_) | Self::Config(_) => false,
            Self::DeliveryFailed { retryable, .. } | Self::Internal { retryable, .. } => *retryable,
        }
    }
}

impl std::fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerError")
            .field("error_type", &self.error_type())
            .field("retryable", &self.retryable())
            .field("message", &self.to_string())
            .finish()
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// What a function does when its cold start failed with `error`.
///
/// A [`HandlerError::Config`] (a setting, or what it points at, is unusable) will not heal by
/// restarting, so the process stays up and answers every invocation with that error: each event
/// is retried by Lambda and then handed to the on-failure destination with `errorType: Config`
/// and the reason, where an exiting process would only leave `Runtime.ExitError` and a log
/// line. Any other error (a dependency that did not answer) is returned, so the process exits
/// and Lambda starts a fresh environment for the retry.
pub async fn serve_cold_start_failure(error: HandlerError) -> Result<(), lambda_runtime::Error> {
    if !matches!(error, HandlerError::Config(_)) {
        return Err(error.into());
    }
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_event: lambda_runtime::LambdaEvent<Value>| {
            let diagnostic = diagnostic.clone();
            async move {
                tracing::error!(
                    error_type = %diagnostic.error_type,
                    error = %diagnostic.error_message,
                    "refusing the event: the function is misconfigured"
                );
                Err::<Value, _>(diagnostic)
            }
        },
    ))
    .await
}

/// What became of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// At least one channel delivered it.
    Notified,
    /// Every channel failed (the invocation fails).
    DeliveryFailed,
    /// Recorded in the change journal only: below the notification threshold.
    Journaled,
    /// Below the notification threshold and nothing to journal (a read-only call, a
    /// Config change): logged and counted only.
    BelowThreshold,
    /// Replied in its group's thread (noise control).
    Threaded,
    /// Closed its group: the first message now says "Resolved".
    Resolved,
    /// Counted into its group; nothing sent (a repeat, flapping, a resolve of nothing open).
    Folded,
    /// Not sent on purpose: a duplicate delivery or a silence.
    Suppressed,
    /// Slack's rate limit held it back into the channel's digest; nothing else delivered.
    RateLimited,
}

impl Decision {
    /// The spelling in logs and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notified => "notified",
            Self::DeliveryFailed => "delivery_failed",
            Self::Journaled => "journaled",
            Self::BelowThreshold => "below_threshold",
            Self::Threaded => "threaded",
            Self::Resolved => "resolved",
            Self::Folded => "folded",
            Self::Suppressed => "suppressed",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// One message's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryOutcome {
    /// `slack`, `slack:#channel`, `sns:TOPIC_ARN`, or `none` when a route had no channel.
    pub channel: String,
    /// Delivered.
    pub ok: bool,
    /// For a failure: whether a retry could succeed.
    pub retryable: bool,
    /// Attempts made.
    pub attempts: u32,
    /// For a failure: why (masked).
    pub error: Option<String>,
    /// Slack refused the blocks and the plain-text fallback went instead.
    pub fell_back_to_text: bool,
}

/// What the function did with one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertOutcome {
    /// The alert's id (EventBridge id, alarm ARN + state time, SNS MessageId, event id).
    pub id: String,
    /// Which input family it came from.
    pub input: InputFamily,
    /// Its classification.
    pub kind: Kind,
    /// Its severity.
    pub severity: Severity,
    /// What was done.
    pub outcome: Decision,
    /// The routes it matched (`default` when none did).
    pub routes: Vec<String>,
    /// One entry per message sent (empty when it was not to be notified).
    pub deliveries: Vec<DeliveryOutcome>,
    /// Whether its change went into the journal (the event function).
    pub journaled: bool,
    /// Whether some context could not be gathered (the message says which and why).
    pub context_partial: bool,
}

/// The invocation's response: what happened to every alert of the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerOutput {
    /// One entry per alert, in the order of the event.
    pub alerts: Vec<AlertOutcome>,
    /// Changes written to the journal.
    pub journaled: usize,
}

/// How much of the invocation's time is left: Lambda's deadline, less a margin to return.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeLimit {
    deadline: Option<Instant>,
}

impl TimeLimit {
    /// No deadline but the configured budgets (tests, the CLI).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Stop by `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
        }
    }

    /// From the runtime's deadline (epoch milliseconds; 0 means none), less the response
    /// margin.
    pub fn from_lambda_deadline(deadline_ms: u64) -> Self {
        if deadline_ms == 0 {
            return Self::unlimited();
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        if deadline_ms <= now_ms {
            // A deadline already past when the invocation starts is a clock or emulator fault
            // (Lambda's is always ahead); the configured budgets still bound the work and
            // Lambda's own timeout still applies, so an alert is not dropped for it.
            tracing::warn!(
                deadline_ms,
                now_ms,
                "runtime deadline already past; using the configured budgets"
            );
            return Self::unlimited();
        }
        let left = Duration::from_millis(deadline_ms - now_ms).saturating_sub(RESPONSE_MARGIN);
        Self::until(Instant::now() + left)
    }

    /// `wanted`, or less so that `reserve` is still left after it.
    pub fn share(&self, wanted: Duration, reserve: Duration) -> Duration {
        match self.deadline {
            None => wanted,
            Some(d) => wanted.min(
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(reserve),
            ),
        }
    }
}

/// Handles one event with no deadline but the configured budgets.
pub async fn handle<C, B, M, S, N, St>(
    event: Value,
    deps: &Deps<C, B, M, S, N, St>,
    now: DateTime<Utc>,
) -> Result<HandlerOutput, HandlerError>
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    handle_within(event, deps, now, TimeLimit::unlimited()).await
}

/// Handles one event within `limit` (Lambda's deadline): accepts CloudWatch alarms only
/// (inputs 1 to 3 of README.md "Usage"), and answers every alert of it.
pub async fn handle_within<C, B, M, S, N, St>(
    event: Value,
    deps: &Deps<C, B, M, S, N, St>,
    now: DateTime<Utc>,
    limit: TimeLimit,
) -> Result<HandlerOutput, HandlerError>
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    let mut metrics = InvocationMetrics::default();
    let result = async {
        let alerts = match accept(&event, is_alarm, FUNCTION, ALARM_INPUTS) {
            Ok(alerts) => alerts,
            Err(e) => {
                metrics.inputs_refused += 1;
                log_refusal(&e);
                return Err(HandlerError::Refused(e));
            }
        };
        metrics.alerts_received = alerts.len() as u64;
        let outcomes: Vec<(AlertOutcome, InvocationMetrics)> = futures::stream::iter(alerts)
            .map(|alert| respond(alert, deps, now, limit, false, FUNCTION))
            .buffered(ALERT_CONCURRENCY)
            .collect()
            .await;
        let mut alerts = Vec::with_capacity(outcomes.len());
        for (outcome, m) in outcomes {
            metrics.add(&m);
            metrics.count_decision(outcome.outcome);
            alerts.push(outcome);
        }
        conclude(HandlerOutput {
            alerts,
            journaled: 0,
        })
    }
    .await;
    metrics.emit(FUNCTION, now);
    result
}

/// Input families of the alarm function, in words for refusals.
const ALARM_INPUTS: &str =
    "CloudWatch alarms (alarm action, EventBridge state change, or SNS notification)";

fn is_alarm(family: InputFamily) -> bool {
    matches!(
        family,
        InputFamily::AlarmDirect | InputFamily::AlarmEventbridge | InputFamily::AlarmSns
    )
}

/// Parses the event and checks every alert is of a family this function takes; an event
/// meant for the other function is refused naming both, so a mis-wired rule is found in the
/// dead-letter queue at once instead of half-handled (the event function also journals).
pub fn accept(
    event: &Value,
    takes: fn(InputFamily) -> bool,
    function: &str,
    inputs: &str,
) -> Result<Vec<Alert>, IntakeError> {
    let alerts = intake::parse_value(event)?;
    if let Some(other) = alerts.iter().find(|a| !takes(a.input)) {
        return Err(IntakeError {
            code: RefusalCode::Unsupported,
            received: format!("{} input (alert {})", other.input.as_str(), other.id),
            reason: format!(
                "{function} takes {inputs}; {} belongs to {}",
                other.input.as_str(),
                if is_alarm(other.input) {
                    "handle-alarm"
                } else {
                    "handle-event"
                }
            ),
        });
    }
    Ok(alerts)
}

/// One JSON log line per refusal: the code and what arrived, never the body (intake's
/// `received` describes it; its short preview of unparseable text is masked).
pub fn log_refusal(e: &IntakeError) {
    tracing::warn!(
        outcome = "refused",
        code = e.code.as_str(),
        received = %mask_secrets(&e.received),
        reason = %mask_secrets(&e.reason),
        "input refused"
    );
}

/// Enriches, evaluates and delivers one alert: under noise control when the function has a
/// state table ([`crate::control`]), else everything is sent. `journaled` is carried into the
/// outcome (the event function journals before it calls this); `function` names the caller in
/// the ledger.
pub async fn respond<C, B, M, S, N, St>(
    alert: Alert,
    deps: &Deps<C, B, M, S, N, St>,
    now: DateTime<Utc>,
    limit: TimeLimit,
    journaled: bool,
    function: &str,
) -> (AlertOutcome, InvocationMetrics)
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    if let Some(state) = &deps.state {
        return crate::control::respond(alert, deps, state, now, limit, journaled, function).await;
    }
    let (report, mut metrics, missing) = enrich_and_evaluate(alert, deps, now, limit).await;
    let context_partial = !missing.is_empty();
    let time_left = limit.share(deps.budgets.delivery, Duration::ZERO);
    let deliveries = deliver(&report, deps, time_left).await;
    metrics.notifications_sent = deliveries.iter().filter(|d| d.ok).count() as u64;
    metrics.notifications_failed = deliveries.iter().filter(|d| !d.ok).count() as u64;
    let decision = if deliveries.iter().any(|d| d.ok) {
        Decision::Notified
    } else {
        Decision::DeliveryFailed
    };
    let outcome = outcome_of(&report, decision, deliveries, journaled, context_partial);
    log_decision(&outcome);
    (outcome, metrics)
}

/// Gathers an alert's context within its share of the time left and evaluates it: the
/// report, the enrichment metrics, and the context that is missing (`source: reason`, masked;
/// empty when nothing is).
pub async fn enrich_and_evaluate<C, B, M, S, N, St>(
    alert: Alert,
    deps: &Deps<C, B, M, S, N, St>,
    now: DateTime<Utc>,
    limit: TimeLimit,
) -> (Report, InvocationMetrics, Vec<String>)
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
{
    let mut metrics = InvocationMetrics::default();
    // Enrichment gets its budget only as far as delivery's budget still fits after it.
    let enrich_budget = limit.share(deps.budgets.enrich, deps.budgets.delivery);
    let started = Instant::now();
    let ctx = deps
        .enricher
        .enrich(&alert, deps.budgets.lookback, now, enrich_budget)
        .await;
    metrics
        .enrichment_latency_ms
        .push(started.elapsed().as_secs_f64() * 1_000.0);
    let missing: Vec<_> = ctx.missing.iter().chain(&ctx.service.missing).collect();
    metrics.lookups_throttled = missing
        .iter()
        .filter(|m| m.reason.to_ascii_lowercase().contains("throttl"))
        .count() as u64;
    let missing: Vec<String> = missing
        .iter()
        .map(|m| mask_secrets(&format!("{}: {}", m.source, m.reason)))
        .collect();
    let report = pipeline::evaluate(alert, &ctx, &deps.settings, &deps.redactor);
    (report, metrics, missing)
}

/// One channel's delivery result as an outcome record (errors masked).
pub fn to_outcome(
    o: Result<vigil_core::ports::Delivered, vigil_core::ports::DeliveryError>,
) -> DeliveryOutcome {
    match o {
        Ok(d) => DeliveryOutcome {
            channel: d.channel,
            ok: true,
            retryable: false,
            attempts: d.attempts,
            error: None,
            fell_back_to_text: d.fell_back_to_text,
        },
        Err(e) => DeliveryOutcome {
            channel: e.channel,
            ok: false,
            retryable: e.retryable,
            attempts: e.attempts,
            error: Some(mask_secrets(&e.reason)),
            fell_back_to_text: false,
        },
    }
}

/// Sends a report's messages. A report with no message at all (routes with neither Slack
/// nor SNS, or Slack routes in a function without Slack credentials) is a failure too: an
/// alert nobody receives is lost unless the invocation fails.
pub async fn deliver<C, B, M, S, N, St>(
    report: &Report,
    deps: &Deps<C, B, M, S, N, St>,
    time_left: Duration,
) -> Vec<DeliveryOutcome>
where
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    let messages = outgoing_from(report);
    if messages.is_empty() {
        let routes: Vec<&str> = report
            .route
            .matched
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        return vec![DeliveryOutcome {
            channel: "none".to_string(),
            ok: false,
            retryable: false,
            attempts: 0,
            error: Some(format!(
                "route(s) {} name no Slack or SNS destination this function can send to",
                routes.join(", ")
            )),
            fell_back_to_text: false,
        }];
    }
    deliver_all(&deps.channels, messages, time_left)
        .await
        .outcomes
        .into_iter()
        .map(to_outcome)
        .collect()
}

/// The outcome record of an evaluated alert.
pub fn outcome_of(
    report: &Report,
    decision: Decision,
    deliveries: Vec<DeliveryOutcome>,
    journaled: bool,
    context_partial: bool,
) -> AlertOutcome {
    AlertOutcome {
        id: report.alert.id.clone(),
        input: report.input,
        kind: report.finding.kind,
        severity: report.finding.severity,
        outcome: decision,
        routes: report
            .route
            .matched
            .iter()
            .map(|m| m.name.clone())
            .collect(),
        deliveries,
        journaled,
        context_partial,
    }
}

/// The one structured log line per decision.
pub fn log_decision(o: &AlertOutcome) {
    let delivered = o.deliveries.iter().filter(|d| d.ok).count();
    let failed = o.deliveries.len() - delivered;
    tracing::info!(
        alert_id = %o.id,
        input = o.input.as_str(),
        kind = o.kind.as_str(),
        severity = o.severity.as_str(),
        outcome = o.outcome.as_str(),
        routes = %o.routes.join(","),
        delivered,
        failed,
        journaled = o.journaled,
        context_partial = o.context_partial,
        "alert decision"
    );
}

/// The invocation's result: an error when any alert reached nobody.
pub fn conclude(output: HandlerOutput) -> Result<HandlerOutput, HandlerError> {
    let failed: Vec<&AlertOutcome> = output
        .alerts
        .iter()
        .filter(|a| a.outcome == Decision::DeliveryFailed)
        .collect();
    if failed.is_empty() {
        return Ok(output);
    }
    let reasons: Vec<String> = failed
        .iter()
        .flat_map(|a| &a.deliveries)
        .filter(|d| !d.ok)
        .map(|d| format!("{}: {}", d.channel, d.error.as_deref().unwrap_or("failed")))
        .collect();
    Err(HandlerError::DeliveryFailed {
        alert_ids: failed.iter().map(|a| a.id.clone()).collect(),
        retryable: failed
            .iter()
            .flat_map(|a| &a.deliveries)
            .any(|d| d.retryable),
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_stable_names_not_rust_types() {
        let refused = HandlerError::Refused(IntakeError {
            code: RefusalCode::NotJson,
            received: "3 bytes".into(),
            reason: "not JSON".into(),
        });
        let d: lambda_runtime::Diagnostic = refused.into();
        assert_eq!(d.error_type, "Refused");
        let failed = HandlerError::DeliveryFailed {
            alert_ids: vec!["a".into()],
            reasons: vec!["slack: 500".into()],
            retryable: true,
        };
        assert!(failed.retryable());
        assert_eq!(
            lambda_runtime::Diagnostic::from(failed).error_type,
            "DeliveryFailed"
        );
        assert_eq!(
            HandlerError::Config(ConfigError::new("VIGIL_X", "bad")).error_type(),
            "Config"
        );
    }

    #[test]
    fn a_limit_leaves_the_reserve_and_never_goes_negative() {
        let limit = TimeLimit::until(Instant::now() + Duration::from_secs(5));
        let got = limit.share(Duration::from_secs(8), Duration::from_secs(2));
        assert!(got <= Duration::from_secs(3) && got > Duration::from_millis(2_500));
        assert_eq!(
            limit.share(Duration::from_secs(8), Duration::from_secs(9)),
            Duration::ZERO
        );
        assert_eq!(
            TimeLimit::unlimited().share(Duration::from_secs(8), Duration::from_secs(9)),
            Duration::from_secs(8)
        );
        assert_eq!(
            TimeLimit::from_lambda_deadline(0).share(Duration::from_secs(1), Duration::ZERO),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_deadline_already_past_falls_back_to_the_configured_budgets() {
        // `cargo lambda watch` sends 600000 (a duration) where Lambda sends epoch ms: 1970.
        assert_eq!(
            TimeLimit::from_lambda_deadline(600_000)
                .share(Duration::from_secs(4), Duration::from_secs(1)),
            Duration::from_secs(4)
        );
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_millis(),
        )
        .expect("fits");
        let soon = TimeLimit::from_lambda_deadline(now_ms + 3_000)
            .share(Duration::from_secs(60), Duration::ZERO);
        assert!(soon < Duration::from_secs(3), "{soon:?}");
    }
}
