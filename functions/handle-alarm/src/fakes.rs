//! In-memory implementations of the ports, named by behaviour, for handler tests (here and
//! in the event function's crate): a notifier that records what it was given, one that
//! always fails, a change source with a fixed answer, and Bedrock/CloudWatch look-ups that
//! find nothing and never fail.
//!
//! Invariant: no fake touches the network or the clock, so a handler test is deterministic
//! and fast; each fake is cheap to clone and clones share what they record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vigil_core::model::Alarm;
use vigil_core::ports::{
    BedrockInfo, ChangeBatch, ChangeQuery, ChangeSource, Delivered, DeliveryError,
    GuardrailSummary, InvocationLogging, MetricHistory, MetricInfo, Notifier, Outgoing,
    SourceError,
};

/// Accepts every message and keeps it.
#[derive(Debug, Clone)]
pub struct RecordingNotifier {
    name: String,
    sent: Arc<Mutex<Vec<Outgoing>>>,
}

impl RecordingNotifier {
    /// A notifier that labels its deliveries `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            sent: Arc::default(),
        }
    }

    /// Every message sent so far, in order.
    pub fn sent(&self) -> Vec<Outgoing> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Notifier for RecordingNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(
        &self,
        message: &Outgoing,
        _time_left: Duration,
    ) -> Result<Delivered, DeliveryError> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        Ok(Delivered {
            channel: self.name.clone(),
            id: None,
            fell_back_to_text: false,
            attempts: 1,
        })
    }
}

/// Refuses every message.
#[derive(Debug, Clone)]
pub struct FailingNotifier {
    name: String,
    retryable: bool,
}

impl FailingNotifier {
    /// A notifier whose every send fails, `retryable` or not.
    pub fn new(name: &str, retryable: bool) -> Self {
        Self {
            name: name.to_string(),
            retryable,
        }
    }
}

impl Notifier for FailingNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(
        &self,
        _message: &Outgoing,
        _time_left: Duration,
    ) -> Result<Delivered, DeliveryError> {
        Err(DeliveryError {
            channel: self.name.clone(),
            reason: "the channel is down".to_string(),
            retryable: self.retryable,
            attempts: 1,
        })
    }
}

/// Answers every query with the same batch.
#[derive(Debug, Clone, Default)]
pub struct FixedChangeSource {
    batch: ChangeBatch,
}

impl FixedChangeSource {
    /// A source that always finds `batch`.
    pub fn new(batch: ChangeBatch) -> Self {
        Self { batch }
    }
}

impl ChangeSource for FixedChangeSource {
    async fn changes(&self, _query: &ChangeQuery) -> ChangeBatch {
        self.batch.clone()
    }
}

/// Bedrock and CloudWatch with nothing to tell: logging off, no guardrail, an empty metric
/// history, no tags. Never fails, so a test's context is partial only when it means it.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietServices;

impl BedrockInfo for QuietServices {
    async fn invocation_logging(&self) -> Result<InvocationLogging, SourceError> {
        Ok(InvocationLogging::Off)
    }

    async fn guardrail(
        &self,
        id: &str,
        _version: Option<&str>,
    ) -> Result<GuardrailSummary, SourceError> {
        Err(SourceError {
            source_name: "Bedrock GetGuardrail".to_string(),
            reason: format!("no guardrail {id} in this fake"),
            retryable: false,
        })
    }
}

impl MetricInfo for QuietServices {
    async fn history(
        &self,
        _alarm: &Alarm,
        _end: chrono::DateTime<chrono::Utc>,
    ) -> Result<MetricHistory, SourceError> {
        Ok(MetricHistory {
            points: Vec::new(),
            current: None,
            baseline: None,
            hours: 3,
        })
    }

    async fn alarm_tags(&self, _alarm_arn: &str) -> Result<BTreeMap<String, String>, SourceError> {
        Ok(BTreeMap::new())
    }
}
