//! `handle-event`: the Lambda function for CloudTrail API calls and AWS Config changes
//! (README.md "Usage" inputs 4 and 5), and the writer of the change journal (ARCHITECTURE.md "Correlation").
//!
//! For each alert of an event:
//! 1. an API call that wrote something, or was denied, is recorded in the journal (with its
//!    TTL) **before** anything is decided, so the alarm function can find it seconds later
//!    whatever happens next;
//! 2. its severity is decided from the event itself (the built-in rules for API calls and
//!    Config changes do not depend on context);
//! 3. at or above `VIGIL_EVENT_MIN_SEVERITY`, and always for `audit_tampering`, it is enriched
//!    and delivered like an alarm; below it, it is only journaled (enrichment is not spent
//!    on it: `LookupEvents` is shared by the whole account at 2 requests a second).
//!
//! Module map: this file holds [`Config`], [`Deps`] and [`handle`]; the shared handler
//! pieces (deps, delivery, outcomes, errors, metrics, fakes) live in the `handle_alarm`
//! library, so both functions answer, log and fail the same way.
//!
//! Invariant: nothing is lost. A change that could not be journaled and reached nobody
//! fails the invocation (Lambda retries, then dead-letters it); an alert that no channel
//! delivered fails it too. A change that was delivered but not journaled is logged, not
//! retried: a retry would repeat the notification for a convenience the alarm function can
//! do without (it falls back to `LookupEvents`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use handle_alarm::config::{ConfigError, env_var};
use handle_alarm::deps::{AwsChangeSource, build};
use handle_alarm::handler::{
    AlertOutcome, Decision, HandlerError, HandlerOutput, TimeLimit, accept, conclude, log_decision,
    log_refusal, outcome_of, respond,
};
use handle_alarm::metrics::InvocationMetrics;
use serde_json::Value;
use vigil_adapters::bedrock::BedrockApiInfo;
use vigil_adapters::cloudwatch::CloudWatchInfo;
use vigil_adapters::journal::{ChangeJournal, ChangeRecorder, JournalError, Recorded};
use vigil_adapters::slack::SlackChannel;
use vigil_adapters::sns::SnsNotifier;
use vigil_adapters::state::DynamoState;
use vigil_core::enrich::Context;
use vigil_core::model::{Alert, AlertBody, InputFamily, Kind, Severity};
use vigil_core::noise::{LedgerEntry, Outcome};
use vigil_core::pipeline;
use vigil_core::ports::{BedrockInfo, ChangeSource, MetricInfo, Notifier, StateStore};

/// The function's name in metrics and refusals.
pub const FUNCTION: &str = "handle-event";

/// Notify at or above this severity; below it, only journal.
pub const EVENT_MIN_SEVERITY: &str = "VIGIL_EVENT_MIN_SEVERITY";

/// The default threshold.
pub const DEFAULT_MIN_SEVERITY: Severity = Severity::Medium;

/// The event function's settings: the shared ones plus the journal (required) and the
/// notification threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Everything the alarm function reads too.
    pub shared: handle_alarm::Config,
    /// The journal's table (`VIGIL_TABLE_NAME`, required here).
    pub table_name: String,
    /// Notify at or above this.
    pub min_severity: Severity,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// Reads settings through `var` (see [`handle_alarm::Config::from_lookup`]).
    pub fn from_lookup<F>(var: F) -> Result<Self, ConfigError>
    where
        F: Fn(&'static str) -> Result<Option<String>, ConfigError>,
    {
        let shared = handle_alarm::Config::from_lookup(&var)?;
        let table_name = shared.table_name.clone().ok_or_else(|| {
            ConfigError::new(
                handle_alarm::config::TABLE_NAME,
                "required by handle-event: the change journal's DynamoDB table",
            )
        })?;
        let min_severity = match var(EVENT_MIN_SEVERITY)?
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            None => DEFAULT_MIN_SEVERITY,
            Some(v) => parse_severity(&v).ok_or_else(|| {
                ConfigError::new(
                    EVENT_MIN_SEVERITY,
                    format!(
                        "{v:?} is not a severity: expected critical, high, medium, low or info"
                    ),
                )
            })?,
        };
        Ok(Self {
            shared,
            table_name,
            min_severity,
        })
    }
}

fn parse_severity(s: &str) -> Option<Severity> {
    Some(match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        "info" => Severity::Info,
        _ => return None,
    })
}

/// What the event function works with: the alarm function's deps, the journal writer, and
/// when to notify.
#[derive(Debug)]
pub struct Deps<R, C, B, M, S, N, St> {
    /// Enricher, notifiers, owners, budgets.
    pub base: handle_alarm::Deps<C, B, M, S, N, St>,
    /// Where changes are recorded.
    pub journal: R,
    /// How long journal entries live after they are written.
    pub journal_ttl: Duration,
    /// Notify at or above this severity.
    pub min_severity: Severity,
}

/// The deps wired to AWS and Slack.
pub type AwsDeps = Deps<
    ChangeJournal,
    AwsChangeSource,
    BedrockApiInfo,
    CloudWatchInfo,
    SlackChannel,
    SnsNotifier,
    DynamoState,
>;

/// Builds the AWS deps once per cold start.
pub async fn build_aws(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsDeps, HandlerError> {
    let base = build(&config.shared, sdk).await?;
    Ok(Deps {
        base,
        journal: ChangeJournal::new(
            handle_alarm::deps::dynamodb_client(sdk),
            config.table_name.clone(),
        ),
        journal_ttl: config.shared.journal_ttl,
        min_severity: config.min_severity,
    })
}

/// Input families of the event function, in words for refusals.
const EVENT_INPUTS: &str =
    "CloudTrail API calls (EventBridge, records, log files) and AWS Config changes";

fn is_event(family: InputFamily) -> bool {
    matches!(family, InputFamily::Cloudtrail | InputFamily::Config)
}

/// Handles one event with no deadline but the configured budgets.
pub async fn handle<R, C, B, M, S, N, St>(
    event: Value,
    deps: &Deps<R, C, B, M, S, N, St>,
    now: DateTime<Utc>,
) -> Result<HandlerOutput, HandlerError>
where
    R: ChangeRecorder,
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    handle_within(event, deps, now, TimeLimit::unlimited()).await
}

/// Handles one event within `limit` (Lambda's deadline).
pub async fn handle_within<R, C, B, M, S, N, St>(
    event: Value,
    deps: &Deps<R, C, B, M, S, N, St>,
    now: DateTime<Utc>,
    limit: TimeLimit,
) -> Result<HandlerOutput, HandlerError>
where
    R: ChangeRecorder,
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    let mut metrics = InvocationMetrics {
        changes_journaled: Some(0),
        ..InvocationMetrics::default()
    };
    let result = async {
        let alerts = match accept(&event, is_event, FUNCTION, EVENT_INPUTS) {
            Ok(alerts) => alerts,
            Err(e) => {
                metrics.inputs_refused += 1;
                log_refusal(&e);
                return Err(HandlerError::Refused(e));
            }
        };
        metrics.alerts_received = alerts.len() as u64;
        let answers: Vec<Answer> = futures::stream::iter(alerts)
            .map(|alert| answer(alert, deps, now, limit))
            .buffered(handle_alarm::handler::ALERT_CONCURRENCY)
            .collect()
            .await;
        let mut alerts = Vec::with_capacity(answers.len());
        let mut unjournaled: Vec<(String, JournalError)> = Vec::new();
        for a in answers {
            metrics.add(&a.metrics);
            metrics.count_decision(a.outcome.outcome);
            if let Some(e) = a.lost_journal {
                unjournaled.push((a.outcome.id.clone(), e));
            }
            alerts.push(a.outcome);
        }
        let journaled = alerts.iter().filter(|a| a.journaled).count();
        let output = conclude(HandlerOutput { alerts, journaled })?;
        // Delivery is settled; a change that nobody heard of and the journal lost is retried.
        if !unjournaled.is_empty() {
            return Err(HandlerError::Internal {
                message: unjournaled
                    .iter()
                    .map(|(id, e)| format!("alert {id}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                retryable: unjournaled.iter().any(|(_, e)| e.retryable()),
            });
        }
        Ok(output)
    }
    .await;
    metrics.emit(FUNCTION, now);
    result
}

/// One alert's answer.
struct Answer {
    outcome: AlertOutcome,
    metrics: InvocationMetrics,
    /// The journal write failed and no notification went out: the change would be lost.
    lost_journal: Option<JournalError>,
}

async fn answer<R, C, B, M, S, N, St>(
    alert: Alert,
    deps: &Deps<R, C, B, M, S, N, St>,
    now: DateTime<Utc>,
    limit: TimeLimit,
) -> Answer
where
    R: ChangeRecorder,
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    let (journaled, journal_error) = record(&alert, deps).await;
    let mut metrics = InvocationMetrics {
        changes_journaled: Some(u64::from(journaled)),
        ..InvocationMetrics::default()
    };

    // The event alone decides its severity; context is gathered only for what is notified.
    let preliminary = pipeline::evaluate(
        alert.clone(),
        &Context::default(),
        &deps.base.settings,
        &deps.base.redactor,
    );
    let kind = preliminary.finding.kind;
    let notify = kind == Kind::AuditTampering || preliminary.finding.severity <= deps.min_severity;
    if !notify {
        let decision = if journaled {
            Decision::Journaled
        } else {
            Decision::BelowThreshold
        };
        let outcome = outcome_of(&preliminary, decision, Vec::new(), journaled, false);
        log_decision(&outcome);
        if let Some(state) = &deps.base.state {
            let entry = LedgerEntry {
                at: now,
                correlation_id: preliminary.alert.id.clone(),
                function: FUNCTION.to_string(),
                outcome: Outcome::Suppressed,
                reason: Some(format!(
                    "below the notification threshold: severity {} (notifies at {} and above){}",
                    preliminary.finding.severity,
                    deps.min_severity,
                    if journaled { "; journaled" } else { "" }
                )),
                kind: Some(kind),
                severity: Some(preliminary.finding.severity),
                name: preliminary.alert.name().to_string(),
                group_key: None,
                channels: Vec::new(),
            };
            if let Err(e) = state.record(&entry, deps.base.noise.ledger_ttl).await {
                tracing::warn!(alert_id = %entry.correlation_id, error = %e, "ledger entry not written");
            }
        }
        return Answer {
            outcome,
            metrics,
            lost_journal: journal_error,
        };
    }
    let (outcome, m) = respond(alert, &deps.base, now, limit, journaled, FUNCTION).await;
    metrics.add(&m);
    let lost_journal = journal_error.filter(|_| outcome.outcome == Decision::DeliveryFailed);
    Answer {
        outcome,
        metrics,
        lost_journal,
    }
}

/// Journals an API call that wrote something or was denied (ARCHITECTURE.md "Correlation": the journal holds
/// what can be a cause, and denied calls, which are evidence). Returns whether it is in the
/// journal now, and the failure when it is not but should be.
async fn record<R, C, B, M, S, N, St>(
    alert: &Alert,
    deps: &Deps<R, C, B, M, S, N, St>,
) -> (bool, Option<JournalError>)
where
    R: ChangeRecorder,
{
    let AlertBody::ApiCall(change) = &alert.body else {
        return (false, None);
    };
    if !(change.is_effective_write() || change.is_denied()) {
        return (false, None);
    }
    match deps.journal.record(change, deps.journal_ttl).await {
        Ok(recorded) => {
            tracing::debug!(
                alert_id = %alert.id,
                event_id = %change.event_id,
                new = recorded == Recorded::New,
                "change journaled"
            );
            (true, None)
        }
        Err(e) => {
            tracing::warn!(
                alert_id = %alert.id,
                event_id = %change.event_id,
                retryable = e.retryable(),
                error = %e,
                "change not journaled"
            );
            (false, Some(e))
        }
    }
}
