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

/// A state operation that failed, and whether trying again could help. Callers fail open:
/// without state an alert is still sent (a possible duplicate beats a missed alert).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state {operation}: {reason}")]
pub struct StateError {
    /// e.g. `claim`, `group`, `reserve_slot`, `record`.
    pub operation: String,
    pub reason: String,
    pub retryable: bool,
}

/// The answer to claiming an event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the event (first delivery, or a retry after a failure or after the
    /// previous owner's lease ran out).
    Owned,
    /// Already handled (`done`), or another invocation holds a live lease on it (`in_progress`).
    Duplicate {
        in_progress: bool,
        claimed_at: chrono::DateTime<chrono::Utc>,
    },
}

/// The noise-control state of ARCHITECTURE.md "Noise control", one table. Every write that races another invocation is
/// conditional; the adapters' DynamoDB implementation says how.
pub trait StateStore: Send + Sync {
    /// Claims `event_id` at `now`: owned unless it is done, or claimed by someone whose lease
    /// (`now < claimed_at + lease`) still runs. Remembered for `ttl`.
    fn claim(
        &self,
        event_id: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: Duration,
        ttl: Duration,
    ) -> impl Future<Output = Result<Claim, StateError>> + Send;
    /// Marks a claimed event `done` (handled: a later delivery is a duplicate), or releases
    /// it (`done == false`: every channel failed, so Lambda's retry must own it again).
    fn settle(
        &self,
        event_id: &str,
        done: bool,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Silences active at `now`.
    fn active_silences(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Vec<crate::noise::Silence>, StateError>> + Send;
    /// The group stored under `key`.
    fn group(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<crate::noise::GroupState>, StateError>> + Send;
    /// Stores `group` if the stored version is still `expected_version` (`None`: none stored).
    /// `Ok(false)` when another invocation wrote first: read again and decide again.
    fn put_group(
        &self,
        group: &crate::noise::GroupState,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Adds a root message to a stored group (not conditional on its version: appending a
    /// thread never conflicts with counting).
    fn add_thread(
        &self,
        key: &str,
        thread: &crate::noise::Thread,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// The group key an alarm's pointer ([`crate::noise::alarm_pointer`]) leads to.
    fn pointed_group(
        &self,
        pointer: &str,
    ) -> impl Future<Output = Result<Option<String>, StateError>> + Send;
    /// Points `pointer` at `group_key`.
    fn point(
        &self,
        pointer: &str,
        group_key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Reserves `slots` Slack calls on `channel` ([`crate::noise::reserve`] over the stored
    /// `tat`, written conditionally and retried on a race).
    fn reserve_slot(
        &self,
        channel: &str,
        now: chrono::DateTime<chrono::Utc>,
        slots: u32,
        interval: Duration,
        max_wait: Duration,
    ) -> impl Future<Output = Result<crate::noise::Slot, StateError>> + Send;
    /// Folds one alert (its title) into `channel`'s digest.
    fn add_to_digest(
        &self,
        channel: &str,
        title: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Takes (reads and removes, atomically) `channel`'s digest.
    fn take_digest(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Option<crate::noise::Digest>, StateError>> + Send;
    /// Appends one ledger entry.
    fn record(
        &self,
        entry: &crate::noise::LedgerEntry,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}
