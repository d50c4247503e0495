//! CloudTrail `LookupEvents` as a [`ChangeSource`] (ARCHITECTURE.md "Correlation").
//!
//! `LookupEvents` is the scarcest API vigil calls: 2 requests per second per account and
//! Region, shared by every caller (the console, other tools, every concurrent vigil
//! invocation); one lookup attribute per call; at most 50 events per page; throttling comes
//! back as HTTP 400 `ThrottlingException`. So this adapter:
//!
//! - sends every request, retries included, through one process-wide [`LookupPacer`];
//! - runs the lookups of one query concurrently, so the pacer hands out slots round-robin:
//!   the first (newest) page of every source comes before the second page of any;
//! - follows `NextToken` up to a page cap per source;
//! - retries `ThrottlingException` with exponential backoff and jitter, never past the budget;
//! - stops at the query's budget, keeps what it found, and says in [`ChangeBatch::missing`]
//!   what it could not search and why;
//! - caches each source's result per (lookup, window rounded to the minute) for a short TTL,
//!   so an alert storm handled by one warm Lambda does not repeat the same lookups.
//!
//! One lookup per event source (`iam.amazonaws.com`) and per principal (`Username`: the calls
//! a Lambda function made under its role session, wherever they went). Internally a lookup is
//! an entry string: an event source, or `Key=value` for the other attributes (see
//! [`lookup_entry`]), which also keys the cache.
//!
//! Invariant: at most `requests_per_second` (never more than 2) `LookupEvents` requests leave
//! the process in any second, whatever the number of concurrent lookups; `changes` returns
//! by the query's budget; read-only calls that succeeded are dropped as noise, failed calls
//! are kept (a denied call is evidence, never a cause).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
use aws_sdk_cloudtrail::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use futures::future::join_all;
use tokio::time::Instant;
use vigil_core::cloudtrail::parse_record;
use vigil_core::enrich::{MissingContext, Window};
use vigil_core::model::Change;
use vigil_core::ports::{ChangeBatch, ChangeQuery, ChangeSource};

use crate::config::sdk_failure;

/// The `LookupEvents` quota: requests per second per account and Region (not adjustable).
pub const LOOKUP_QUOTA_PER_SECOND: f64 = 2.0;

/// The largest page `LookupEvents` returns.
pub const MAX_PAGE_SIZE: i32 = 50;

/// Added to the pacer's spacing: the quota is counted where AWS receives requests, and a
/// request held up on the way (a new connection, a busy scheduler) would otherwise let the
/// next two land inside one second.
const ARRIVAL_MARGIN: Duration = Duration::from_millis(25);

/// Bound on cached lookups, so a long-lived process with many distinct alarms stays small.
const MAX_CACHE_ENTRIES: usize = 512;

/// The lookup attribute keys `LookupEvents` accepts (an entry `Key=value` with any other key
/// is taken as an event source name).
const ATTRIBUTE_KEYS: &[&str] = &[
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

/// Tuning of [`CloudTrailChangeSource`]; the defaults follow ARCHITECTURE.md "Correlation".
#[derive(Debug, Clone, PartialEq)]
pub struct CloudTrailConfig {
    /// Pages followed per source before stopping (each page is one request of the quota).
    pub max_pages_per_source: u32,
    /// Requests per second this process allows itself; clamped to `(0, 2]`. Lower it when
    /// other tools in the account also call `LookupEvents`.
    pub requests_per_second: f64,
    /// How long a source's result is reused for the same window (0 disables the cache).
    pub cache_ttl: Duration,
    /// First pause after a `ThrottlingException`; doubles with each further one.
    pub backoff_base: Duration,
    /// Longest single pause after a `ThrottlingException`.
    pub backoff_cap: Duration,
}

impl Default for CloudTrailConfig {
    fn default() -> Self {
        Self {
            max_pages_per_source: 5,
            requests_per_second: LOOKUP_QUOTA_PER_SECOND,
            cache_ttl: Duration::from_secs(60),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(2),
        }
    }
}

impl CloudTrailConfig {
    /// The pause between two requests of this process.
    fn spacing(&self) -> Duration {
        let rate = if self.requests_per_second.is_finite() && self.requests_per_second > 0.0 {
            self.requests_per_second.min(LOOKUP_QUOTA_PER_SECOND)
        } else {
            LOOKUP_QUOTA_PER_SECOND
        };
        // At least 0.01 req/s so a mistyped setting cannot stall a lookup for hours.
        Duration::from_secs_f64(1.0 / rate.max(0.01)) + ARRIVAL_MARGIN
    }
}

/// Why a source's lookup stopped before it was complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// `LookupEvents` kept answering `ThrottlingException` until the budget ran out.
    #[error("LookupEvents throttled; budget of {} spent", human(.budget))]
    Throttled { budget: Duration },
    /// The budget ran out waiting for an answer.
    #[error("no LookupEvents answer within the budget of {}", human(.budget))]
    BudgetSpent { budget: Duration },
    /// No request slot of the pacer is left within the budget (this lookup's earlier pages or
    /// the process's other lookups took them).
    #[error(
        "budget of {} spent before the next request slot (LookupEvents is paced under its 2 requests/s quota)",
        human(.budget)
    )]
    NoSlot { budget: Duration },
    /// CloudTrail refused the request (validation, permissions): asking again will not help.
    #[error("LookupEvents refused the query: {message}")]
    Refused {
        code: Option<String>,
        message: String,
    },
    /// Anything else: a 5xx, a timeout, an unreachable endpoint, an unreadable answer.
    #[error("LookupEvents failed: {message}")]
    Failed { message: String, retryable: bool },
}

impl LookupError {
    /// Whether a later lookup (the next invocation, a Lambda retry) could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::BudgetSpent { .. } | Self::NoSlot { .. } => true,
            Self::Refused { .. } => false,
            Self::Failed { retryable, .. } => *retryable,
        }
    }
}

/// "3 s", "2.5 s", "800 ms".
pub(crate) fn human(d: &Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The process-wide `LookupEvents` pacer: hands out request slots at least one spacing apart
/// to every lookup in the process, concurrent ones included.
///
/// It keeps one "next free slot" instant. A caller reserves the slot, releases the lock and
/// sleeps until it (the lock is never held across an await, so a plain mutex suffices and no
/// caller waits on another's sleep). A slot that would fall after the caller's deadline is not
/// reserved, so a caller out of time never takes a slot from one that has time.
#[derive(Debug, Clone, Default)]
pub struct LookupPacer {
    state: Arc<Mutex<PacerState>>,
}

#[derive(Debug, Default)]
struct PacerState {
    next_free: Option<Instant>,
    /// When a lookup last reported a throttle (and held everyone back).
    last_throttle: Option<Instant>,
}

impl LookupPacer {
    /// A pacer of its own (a separate quota: another account or Region, or an isolated test).
    pub fn new() -> Self {
        Self::default()
    }

    /// The pacer every [`CloudTrailChangeSource`] of this process shares by default.
    pub fn process_wide() -> Self {
        static PACER: OnceLock<LookupPacer> = OnceLock::new();
        PACER.get_or_init(LookupPacer::new).clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PacerState> {
        // The state is two instants, valid whatever a panicking holder left: keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the next free slot and reserves `spacing` after it for the next caller.
    /// Returns `Err(slot)` without waiting or reserving when that slot is after `deadline`.
    pub async fn acquire(&self, spacing: Duration, deadline: Instant) -> Result<(), Instant> {
        let slot = {
            let mut state = self.state();
            let now = Instant::now();
            let slot = state.next_free.map_or(now, |n| n.max(now));
            if slot > deadline {
                return Err(slot);
            }
            state.next_free = Some(slot + spacing);
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }

    /// Holds every caller back until `until` after a throttle: it means someone else is using
    /// the shared quota, so the whole process slows down, not just the lookup that saw it.
    pub fn hold_until(&self, until: Instant) {
        let mut state = self.state();
        state.next_free = Some(state.next_free.map_or(until, |n| n.max(until)));
        state.last_throttle = Some(Instant::now());
    }

    /// Whether any lookup of this process was throttled at or after `since` (so a lookup
    /// that ran out of time waiting may say why).
    pub fn throttled_since(&self, since: Instant) -> bool {
        self.state().last_throttle.is_some_and(|t| t >= since)
    }
}

/// The query entry for a lookup attribute other than `EventSource`, e.g.
/// `lookup_entry("Username", "agent-tool-order-lookup")` -> `Username=agent-tool-order-lookup`.
pub fn lookup_entry(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// The lookup attribute of a query entry: `Key=value` for a known key, else an event source.
fn attribute_of(entry: &str) -> (LookupAttributeKey, &str) {
    match entry.split_once('=') {
        Some((key, value)) if ATTRIBUTE_KEYS.contains(&key) => {
            (LookupAttributeKey::from(key), value)
        }
        _ => (LookupAttributeKey::EventSource, entry),
    }
}

/// Cache key: the lookup and its window, rounded down to the minute (alarms of one storm
/// fire seconds apart; CloudTrail lags minutes, so a minute's difference finds nothing new).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    entry: String,
    start_minute: i64,
    end_minute: i64,
}

impl CacheKey {
    fn new(entry: &str, window: &Window) -> Self {
        Self {
            entry: entry.to_string(),
            start_minute: window.start.timestamp().div_euclid(60),
            end_minute: window.end.timestamp().div_euclid(60),
        }
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    stored: Instant,
    outcome: SourceOutcome,
}

/// How one source's lookup ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Complete,
    /// More pages existed past the cap.
    PageCap,
    Stopped(LookupError),
}

/// What one source's lookup found.
#[derive(Debug, Clone)]
struct SourceOutcome {
    entry: String,
    changes: Vec<Change>,
    /// Pages read (requests that answered).
    pages: u32,
    /// Events returned, before read-only ones were dropped.
    events: usize,
    /// Records that could not be read, with the reason.
    skipped: Vec<String>,
    end: End,
}

/// CloudTrail `LookupEvents`, paced, budgeted and cached (see the module docs).
#[derive(Debug)]
pub struct CloudTrailChangeSource {
    client: aws_sdk_cloudtrail::Client,
    config: CloudTrailConfig,
    pacer: LookupPacer,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

impl CloudTrailChangeSource {
    /// A source using the process-wide pacer.
    ///
    /// The client's own retries are turned off: they would resend throttled requests outside
    /// the pacer and past the budget. This adapter retries itself, paced and budgeted.
    pub fn new(client: &aws_sdk_cloudtrail::Client, config: CloudTrailConfig) -> Self {
        let conf = client
            .config()
            .to_builder()
            .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_cloudtrail::Client::from_conf(conf),
            config,
            pacer: LookupPacer::process_wide(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `pacer` instead of the process-wide one.
    pub fn with_pacer(mut self, pacer: LookupPacer) -> Self {
        self.pacer = pacer;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &CloudTrailConfig {
        &self.config
    }

    fn cached(&self, key: &CacheKey) -> Option<SourceOutcome> {
        if self.config.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key)
            .filter(|e| e.stored.elapsed() < self.config.cache_ttl)
            .map(|e| e.outcome.clone())
    }

    fn store(&self, key: CacheKey, outcome: &SourceOutcome) {
        if self.config.cache_ttl.is_zero() {
            return;
        }
        let ttl = self.config.cache_ttl;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, e| e.stored.elapsed() < ttl);
        if cache.len() >= MAX_CACHE_ENTRIES
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, e)| e.stored)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(
            key,
            CacheEntry {
                stored: Instant::now(),
                outcome: outcome.clone(),
            },
        );
    }

    /// One source: pages until done, capped, out of budget or failed.
    async fn lookup_source(
        &self,
        entry: &str,
        window: &Window,
        deadline: Instant,
        budget: Duration,
    ) -> SourceOutcome {
        let key = CacheKey::new(entry, window);
        if let Some(hit) = self.cached(&key) {
            tracing::debug!(source = entry, "LookupEvents answered from the cache");
            return hit;
        }
        let mut outcome = SourceOutcome {
            entry: entry.to_string(),
            changes: Vec::new(),
            pages: 0,
            events: 0,
            skipped: Vec::new(),
            end: End::Complete,
        };
        let (attr_key, value) = attribute_of(entry);
        let attribute = match LookupAttribute::builder()
            .attribute_key(attr_key)
            .attribute_value(value)
            .build()
        {
            Ok(a) => a,
            Err(e) => {
                outcome.end = End::Stopped(LookupError::Refused {
                    code: None,
                    message: e.to_string(),
                });
                return outcome;
            }
        };
        let mut token: Option<String> = None;
        loop {
            let page = match self
                .page(&attribute, window, token.take(), deadline, budget)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    outcome.end = End::Stopped(e);
                    break;
                }
            };
            outcome.pages += 1;
            read_events(&page, &mut outcome);
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                outcome.end = End::Complete;
                break;
            }
            if outcome.pages >= self.config.max_pages_per_source {
                outcome.end = End::PageCap;
                break;
            }
        }
        // A capped lookup would stop at the same cap next time: as good as complete to reuse.
        if matches!(outcome.end, End::Complete | End::PageCap) {
            self.store(key, &outcome);
        }
        outcome
    }

    /// One page, retrying throttles with backoff; every attempt goes through the pacer.
    async fn page(
        &self,
        attribute: &LookupAttribute,
        window: &Window,
        token: Option<String>,
        deadline: Instant,
        budget: Duration,
    ) -> Result<LookupEventsOutput, LookupError> {
        let mut throttles = 0u32;
        let started = deadline.checked_sub(budget).unwrap_or(deadline);
        // Out of time because of throttling, this lookup's or another's in the process.
        let throttled = |throttles: u32| throttles > 0 || self.pacer.throttled_since(started);
        loop {
            if self
                .pacer
                .acquire(self.config.spacing(), deadline)
                .await
                .is_err()
            {
                return Err(if throttled(throttles) {
                    LookupError::Throttled { budget }
                } else {
                    LookupError::NoSlot { budget }
                });
            }
            let call = self
                .client
                .lookup_events()
                .lookup_attributes(attribute.clone())
                .start_time(AwsDateTime::from_millis(window.start.timestamp_millis()))
                .end_time(AwsDateTime::from_millis(window.end.timestamp_millis()))
                .max_results(MAX_PAGE_SIZE)
                .set_next_token(token.clone())
                .send();
            let err = match tokio::time::timeout_at(deadline, call).await {
                Err(_elapsed) => {
                    return Err(if throttled(throttles) {
                        LookupError::Throttled { budget }
                    } else {
                        LookupError::BudgetSpent { budget }
                    });
                }
                Ok(Ok(page)) => return Ok(page),
                Ok(Err(err)) => err,
            };
            let failure = sdk_failure(&err);
            if failure.throttled {
                throttles += 1;
                let resume = Instant::now() + self.backoff(throttles);
                if resume >= deadline {
                    return Err(LookupError::Throttled { budget });
                }
                tracing::debug!(attempt = throttles, "LookupEvents throttled; backing off");
                self.pacer.hold_until(resume);
                continue;
            }
            let client_error = failure.status.is_some_and(|s| (400..500).contains(&s));
            return Err(if client_error {
                LookupError::Refused {
                    code: failure.code,
                    message: failure.message,
                }
            } else {
                LookupError::Failed {
                    message: failure.message,
                    retryable: failure.retryable,
                }
            });
        }
    }

    /// Exponential backoff with "equal jitter": half of each pause is fixed (a retry never
    /// comes straight back), half random (concurrent lookups spread out instead of retrying
    /// in lockstep).
    fn backoff(&self, attempt: u32) -> Duration {
        let doubling = 1u32 << attempt.saturating_sub(1).min(16);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(doubling)
            .min(self.config.backoff_cap);
        ceiling / 2 + ceiling.mul_f64(jitter() / 2.0)
    }
}

/// A random fraction in `[0, 1)` from the standard library's per-instance hash keys (enough
/// for spreading retries; not for anything secret).
fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(Instant::now()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// Parses a page's records into `outcome`, dropping read-only calls that succeeded.
fn read_events(page: &LookupEventsOutput, outcome: &mut SourceOutcome) {
    for event in page.events() {
        outcome.events += 1;
        let id = event.event_id().unwrap_or("?");
        let Some(raw) = event.cloud_trail_event() else {
            outcome
                .skipped
                .push(format!("event {id} has no CloudTrailEvent"));
            continue;
        };
        let change = serde_json::from_str::<serde_json::Value>(raw)
            .map_err(|e| format!("event {id}: CloudTrailEvent is not JSON: {e}"))
            .and_then(|v| parse_record(&v).map_err(|e| format!("event {id}: {e}")));
        match change {
            // Read-only successes are noise; a failed read (AccessDenied) is evidence.
            Ok(c) if c.read_only && c.error_code.is_none() => {}
            Ok(c) => outcome.changes.push(c),
            Err(reason) => outcome.skipped.push(reason),
        }
    }
}

impl ChangeSource for CloudTrailChangeSource {
    async fn changes(&self, query: &ChangeQuery) -> ChangeBatch {
        let started = Instant::now();
        let deadline = started + query.budget;
        let principals: Vec<String> = query
            .principals
            .iter()
            .map(|p| lookup_entry("Username", p.trim()))
            .collect();
        let mut entries: Vec<&str> = Vec::new();
        for e in query.event_sources.iter().chain(&principals) {
            let e = e.trim();
            if !e.is_empty() && !e.ends_with('=') && !entries.contains(&e) {
                entries.push(e);
            }
        }
        let outcomes = join_all(
            entries
                .iter()
                .map(|e| self.lookup_source(e, &query.window, deadline, query.budget)),
        )
        .await;
        let batch = merge(outcomes);
        tracing::info!(
            searched = batch.sources.len(),
            missing = batch.missing.len(),
            changes = batch.changes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "CloudTrail LookupEvents enrichment"
        );
        batch
    }
}

/// Merges the sources' outcomes: changes deduplicated by event id (oldest first), complete
/// sources listed as searched, every other one explained.
fn merge(outcomes: Vec<SourceOutcome>) -> ChangeBatch {
    let total = outcomes.len();
    let complete = outcomes.iter().filter(|o| o.end == End::Complete).count();
    let mut batch = ChangeBatch::default();
    let mut seen: HashSet<String> = HashSet::new();
    for o in outcomes {
        let progress = match o.pages {
            0 => format!("before the first page of {}", o.entry),
            n => format!("after page {n} of {}", o.entry),
        };
        match &o.end {
            End::Complete => batch.sources.push(o.entry.clone()),
            End::PageCap => batch.missing.push(MissingContext {
                source: o.entry.clone(),
                reason: format!(
                    "stopped at the cap of {} page(s) ({} events) of {}; older events in the window were not searched; {complete} of {total} sources searched",
                    o.pages, o.events, o.entry
                ),
            }),
            End::Stopped(err) => batch.missing.push(MissingContext {
                source: o.entry.clone(),
                reason: format!("{err} ({progress}); {complete} of {total} sources searched"),
            }),
        }
        if let Some(first) = o.skipped.first() {
            batch.missing.push(MissingContext {
                source: o.entry.clone(),
                reason: format!(
                    "{} record(s) not understood (first: {first})",
                    o.skipped.len()
                ),
            });
        }
        for c in o.changes {
            if seen.insert(c.event_id.clone()) {
                batch.changes.push(c);
            }
        }
    }
    batch.changes.sort_by(|a, b| {
        a.time
            .cmp(&b.time)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_an_event_source_or_another_lookup_attribute() {
        assert_eq!(
            attribute_of("iam.amazonaws.com"),
            (LookupAttributeKey::EventSource, "iam.amazonaws.com")
        );
        assert_eq!(
            attribute_of("Username=agent-tool"),
            (LookupAttributeKey::Username, "agent-tool")
        );
        // An unknown key is not a lookup attribute: the whole entry is taken as a source.
        assert_eq!(
            attribute_of("Nope=x"),
            (LookupAttributeKey::EventSource, "Nope=x")
        );
        assert_eq!(lookup_entry("ResourceName", "r"), "ResourceName=r");
    }

    #[test]
    fn spacing_never_allows_more_than_the_quota() {
        let mut c = CloudTrailConfig::default();
        assert!(c.spacing() >= Duration::from_millis(500));
        c.requests_per_second = 10.0;
        assert!(c.spacing() >= Duration::from_millis(500));
        c.requests_per_second = 1.0;
        assert!(c.spacing() >= Duration::from_secs(1));
        c.requests_per_second = f64::NAN;
        assert!(c.spacing() >= Duration::from_millis(500));
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human(&Duration::from_secs(3)), "3 s");
        assert_eq!(human(&Duration::from_millis(2500)), "2.5 s");
        assert_eq!(human(&Duration::from_millis(800)), "800 ms");
    }

    #[test]
    fn jitter_stays_within_its_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    // Real time (the workspace's tokio has no test-util), so the bounds allow for scheduling.
    #[tokio::test]
    async fn the_pacer_spaces_concurrent_callers_and_refuses_slots_past_the_deadline() {
        let pacer = LookupPacer::new();
        let start = Instant::now();
        let spacing = Duration::from_millis(100);
        let deadline = start + Duration::from_millis(250);
        let results = join_all((0..4).map(|_| {
            let p = pacer.clone();
            async move {
                p.acquire(spacing, deadline)
                    .await
                    .map(|()| Instant::now() - start)
            }
        }))
        .await;
        let mut granted: Vec<Duration> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        granted.sort();
        assert_eq!(
            granted.len(),
            3,
            "slots at 0, 100 and 200 ms; the 4th (300 ms) is past the deadline"
        );
        for pair in granted.windows(2) {
            if let [a, b] = pair {
                assert!(*b - *a >= Duration::from_millis(95), "{granted:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_hold_delays_every_later_slot() {
        let pacer = LookupPacer::new();
        let start = Instant::now();
        pacer.hold_until(start + Duration::from_millis(200));
        let far = start + Duration::from_secs(10);
        assert!(pacer.acquire(Duration::from_millis(50), far).await.is_ok());
        assert!(Instant::now() - start >= Duration::from_millis(200));
        // A hold that cannot end before the deadline refuses the slot at once.
        pacer.hold_until(Instant::now() + Duration::from_secs(60));
        assert!(pacer.acquire(Duration::from_millis(50), far).await.is_err());
    }

    #[test]
    fn lookup_errors_know_whether_to_retry() {
        let budget = Duration::from_secs(3);
        assert!(LookupError::Throttled { budget }.retryable());
        assert!(
            !LookupError::Refused {
                code: None,
                message: "x".into()
            }
            .retryable()
        );
        assert_eq!(
            LookupError::Throttled { budget }.to_string(),
            "LookupEvents throttled; budget of 3 s spent"
        );
    }
}
