//! Ports: the small traits through which the pipeline reaches the world. The adapters crate
//! implements them against AWS and Slack; tests implement them with fakes.
//!
//! Invariant: the core never reads a clock. Budgets come in as durations the caller measured
//! ("time left"), and every answer says what it could not do instead of failing the alert:
//! enrichment is best effort, delivery reports per channel whether a failure is worth retrying.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::enrich::{MissingContext, Window};
use crate::model::Change;
use crate::render::{SlackMessage, SnsNotification};

/// What to look up in CloudTrail for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeQuery {
    pub window: Window,
    /// One `LookupEvents` query per source (the API takes one lookup attribute per call).
    pub event_sources: Vec<String>,
    /// User or session names whose own calls to search, whatever service they went to: Lambda
    /// names its role session after the function, so a tool function's denied calls (and
    /// through them the role it runs as) are found by its name.
    pub principals: Vec<String>,
    /// How long the lookups may take in all; what is not done by then is reported as partial.
    pub budget: Duration,
}

/// What a change source found. Best effort: a source that failed or ran out of time adds a
/// [`MissingContext`] entry (with the reason) instead of an error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeBatch {
    /// Every write found, and every failed call (denied calls are evidence); successful
    /// read-only calls may be left out, since they can never be causes.
    pub changes: Vec<Change>,
    /// Sources fully searched.
    pub sources: Vec<String>,
    /// Sources searched only in part or not at all, and why.
    pub missing: Vec<MissingContext>,
}

impl ChangeBatch {
    /// True when some context is missing.
    pub fn is_partial(&self) -> bool {
        !self.missing.is_empty()
    }
}

/// A source of CloudTrail changes: the change journal, `LookupEvents`, saved files.
pub trait ChangeSource: Send + Sync {
    fn changes(&self, query: &ChangeQuery) -> impl Future<Output = ChangeBatch> + Send;
}

/// Bedrock model invocation logging (`GetModelInvocationLoggingConfiguration`). "Not
/// configured" and "configured with no destination" are the same thing to a responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InvocationLogging {
    Off,
    On {
        cloudwatch_log_group: Option<String>,
        s3_bucket: Option<String>,
        /// Which data types are logged (`text`, `image`, `embedding`, `video`).
        data: Vec<String>,
    },
}

/// A guardrail's state as `GetGuardrail` reports it: what a responder needs for an
/// `injection_surge` or `guardrail_change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailSummary {
    pub id: String,
    pub name: String,
    pub version: String,
    pub status: Option<String>,
    /// The `PROMPT_ATTACK` content filter's input strength (NONE, LOW, MEDIUM, HIGH); `None`
    /// when the filter is not configured.
    pub prompt_attack_input: Option<String>,
    pub updated_at: Option<String>,
}

/// The alarm's metric over the last hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricHistory {
    /// Oldest first.
    pub points: Vec<f64>,
    pub current: Option<f64>,
    /// Median of the points before the last few (the "normal" level).
    pub baseline: Option<f64>,
    /// Hours the history covers.
    pub hours: u32,
}

/// Everything besides CloudTrail that enrichment found for one alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceContext {
    pub invocation_logging: Option<InvocationLogging>,
    pub guardrail: Option<GuardrailSummary>,
    pub metric: Option<MetricHistory>,
    pub alarm_tags: BTreeMap<String, String>,
    pub missing: Vec<MissingContext>,
}

/// Bedrock look-ups.
pub trait BedrockInfo: Send + Sync {
    fn invocation_logging(
        &self,
    ) -> impl Future<Output = Result<InvocationLogging, SourceError>> + Send;
    fn guardrail(
        &self,
        id: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<GuardrailSummary, SourceError>> + Send;
}

/// CloudWatch look-ups for an alarm.
pub trait MetricInfo: Send + Sync {
    fn history(
        &self,
        alarm: &crate::model::Alarm,
        end: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<MetricHistory, SourceError>> + Send;
    fn alarm_tags(
        &self,
        alarm_arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, SourceError>> + Send;
}

/// A context source that failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct SourceError {
    pub source_name: String,
    pub reason: String,
    pub retryable: bool,
}

/// One rendered message for one destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// `channel` is required in bot-token mode and ignored by webhooks; `thread_ts` posts a
    /// reply in a thread; `update_ts` edits an earlier message (`chat.update`) instead.
    Slack {
        channel: Option<String>,
        message: SlackMessage,
        thread_ts: Option<String>,
        update_ts: Option<String>,
    },
    Sns {
        topic_arn: String,
        message: SnsNotification,
    },
}

/// What a channel did with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub channel: String,
    /// Slack `ts` (bot-token mode) or SNS `MessageId`.
    pub id: Option<String>,
    /// True when Slack refused the blocks and the plain-text fallback was sent instead.
    pub fell_back_to_text: bool,
    pub attempts: u32,
}

/// Why a channel did not deliver, and whether a later retry could succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{channel}: {reason} (retryable: {retryable}, after {attempts} attempt(s))")]
pub struct DeliveryError {
    pub channel: String,
    pub reason: String,
    pub retryable: bool,
    pub attempts: u32,
}

/// A delivery channel (Slack, SNS). `time_left` bounds retries: a 429 whose `Retry-After`
/// does not fit is reported as retryable instead of waited for.
pub trait Notifier: Send + Sync {
    fn name(&self) -> &str;
    fn send(
        &self,
        message: &Outgoing,
        time_left: Duration,
    ) -> impl Future<Output = Result<Delivered, DeliveryError>> + Send;
}
