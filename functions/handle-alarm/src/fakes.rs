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
use vigil_core::noise::{self, Digest, GroupState, LedgerEntry, Silence, Slot, Thread};
use vigil_core::ports::{
    BedrockInfo, ChangeBatch, ChangeQuery, ChangeSource, Claim, Delivered, DeliveryError,
    GuardrailSummary, InvocationLogging, MetricHistory, MetricInfo, Notifier, Outgoing,
    SourceError, StateError, StateStore,
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
        // A Slack-like `ts`, unique per notifier, so threads can be followed in tests.
        let n = self.sent().len();
        Ok(Delivered {
            channel: self.name.clone(),
            id: Some(format!("1700000000.{n:06}")),
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

/// Noise-control state in memory, with the semantics the DynamoDB store has (claims with a
/// lease, conditional group writes, GCRA slots, digests, an append-only ledger). Clones share
/// the state, so a test can look at the ledger after the handler ran.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// event id → (done, claimed_at)
    claims: BTreeMap<String, (bool, chrono::DateTime<chrono::Utc>)>,
    groups: BTreeMap<String, GroupState>,
    pointers: BTreeMap<String, String>,
    tats: BTreeMap<String, chrono::DateTime<chrono::Utc>>,
    digests: BTreeMap<String, Digest>,
    silences: Vec<Silence>,
    ledger: Vec<LedgerEntry>,
}

impl MemoryState {
    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a silence.
    pub fn add_silence(&self, silence: Silence) {
        self.with(|s| s.silences.push(silence));
    }

    /// Every ledger entry so far, in order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.with(|s| s.ledger.clone())
    }

    /// The group stored under `key`.
    pub fn stored_group(&self, key: &str) -> Option<GroupState> {
        self.with(|s| s.groups.get(key).cloned())
    }
}

impl StateStore for MemoryState {
    async fn claim(
        &self,
        event_id: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: Duration,
        _ttl: Duration,
    ) -> Result<Claim, StateError> {
        let lease = chrono::Duration::from_std(lease).unwrap_or_default();
        Ok(self.with(|s| match s.claims.get(event_id) {
            Some(&(done, claimed_at)) if done || claimed_at + lease > now => Claim::Duplicate {
                in_progress: !done,
                claimed_at,
            },
            _ => {
                s.claims.insert(event_id.to_string(), (false, now));
                Claim::Owned
            }
        }))
    }

    async fn settle(&self, event_id: &str, done: bool) -> Result<(), StateError> {
        self.with(|s| {
            if done {
                if let Some(c) = s.claims.get_mut(event_id) {
                    c.0 = true;
                }
            } else {
                s.claims.remove(event_id);
            }
        });
        Ok(())
    }

    async fn active_silences(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Silence>, StateError> {
        Ok(self.with(|s| {
            s.silences
                .iter()
                .filter(|x| x.is_active(now))
                .cloned()
                .collect()
        }))
    }

    async fn group(&self, key: &str) -> Result<Option<GroupState>, StateError> {
        Ok(self.stored_group(key))
    }

    async fn put_group(
        &self,
        group: &GroupState,
        expected_version: Option<u64>,
        _ttl: Duration,
    ) -> Result<bool, StateError> {
        Ok(self.with(|s| {
            let current = s.groups.get(&group.key).map(|g| g.version);
            if current != expected_version {
                return false;
            }
            let mut stored = group.clone();
            // Threads are appended separately and never lost to a counting write.
            if let Some(old) = s.groups.get(&group.key) {
                for t in &old.threads {
                    if !stored.threads.contains(t) {
                        stored.threads.push(t.clone());
                    }
                }
            }
            s.groups.insert(group.key.clone(), stored);
            true
        }))
    }

    async fn add_thread(&self, key: &str, thread: &Thread) -> Result<(), StateError> {
        self.with(|s| {
            if let Some(g) = s.groups.get_mut(key)
                && !g.threads.contains(thread)
            {
                g.threads.push(thread.clone());
            }
        });
        Ok(())
    }

    async fn pointed_group(&self, pointer: &str) -> Result<Option<String>, StateError> {
        Ok(self.with(|s| s.pointers.get(pointer).cloned()))
    }

    async fn point(
        &self,
        pointer: &str,
        group_key: &str,
        _ttl: Duration,
    ) -> Result<(), StateError> {
        self.with(|s| {
            s.pointers
                .insert(pointer.to_string(), group_key.to_string())
        });
        Ok(())
    }

    async fn reserve_slot(
        &self,
        channel: &str,
        now: chrono::DateTime<chrono::Utc>,
        slots: u32,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Slot, StateError> {
        Ok(self.with(|s| {
            let slot = noise::reserve(s.tats.get(channel).copied(), now, slots, interval, max_wait);
            if let Slot::Granted { new_tat, .. } = slot {
                s.tats.insert(channel.to_string(), new_tat);
            }
            slot
        }))
    }

    async fn add_to_digest(
        &self,
        channel: &str,
        title: &str,
        now: chrono::DateTime<chrono::Utc>,
        _ttl: Duration,
    ) -> Result<(), StateError> {
        self.with(|s| {
            let d = s
                .digests
                .entry(channel.to_string())
                .or_insert_with(|| Digest {
                    channel: channel.to_string(),
                    count: 0,
                    since: now,
                    titles: Vec::new(),
                });
            d.count += 1;
            if d.titles.len() < noise::DIGEST_TITLES {
                d.titles.push(title.to_string());
            }
        });
        Ok(())
    }

    async fn take_digest(&self, channel: &str) -> Result<Option<Digest>, StateError> {
        Ok(self.with(|s| s.digests.remove(channel)))
    }

    async fn record(&self, entry: &LedgerEntry, _ttl: Duration) -> Result<(), StateError> {
        self.with(|s| s.ledger.push(entry.clone()));
        Ok(())
    }
}
