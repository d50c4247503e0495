//! The noise-control state of ARCHITECTURE.md "Noise control" in DynamoDB: [`DynamoState`] implements the core's
//! [`StateStore`] (event claims, groups, alarm pointers, per-channel rate limits and digests,
//! silences, the decision ledger) and adds what the CLI needs (`vigil silence add|list|expire`,
//! `vigil ledger`).
//!
//! Table layout: the change journal's table ([`crate::journal`]), by key prefix. Every item has
//! `pk` (S), `sk` (S) and `expires_at` (N, epoch seconds, the table's TTL attribute).
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | claim | `event#{event id}` | `claim` | `status` (S `claimed` \| `done`), `claimed_at` (N epoch ms); expires `ttl` after the claim |
//! | group | `group#{group key}` | `group` | `state` (S: the [`GroupState`] as JSON, threads included), `version` (N) |
//! | alarm pointer | `pointer#{pointer}` | `pointer` | `group_key` (S) |
//! | rate limit | `rate#{channel}` (the priority lane: `rate#{channel}#priority`, [`vigil_core::noise::rate_key`]) | `rate` | `tat` (N epoch ms, the GCRA's theoretical arrival time); expires a day after it |
//! | digest | `digest#{channel}` | `digest` | `count` (N), `since` (S RFC 3339), `titles` (L of S, at most [`DIGEST_TITLES`]) |
//! | silence | `silence` | `{silence id}` | `silence` (S: the [`Silence`] as JSON), `ends_at` (N epoch s); expires `keep_after_end` after it ends |
//! | ledger | `ledger#{YYYY-MM-DDTHH}` (UTC hour of `at`) | `{at, RFC 3339 UTC ms, fixed width}#{correlation id}#{32 hex}` | `cid` (S: correlation id), `entry` (S: the [`LedgerEntry`] as JSON), `outcome` (S) |
//!
//! Index [`CORRELATION_INDEX`] (`by-correlation`): hash `cid`, range `sk`, projection ALL. Only
//! ledger rows carry `cid`, so the index holds nothing else (a row with an empty correlation id
//! is left out of it: DynamoDB refuses empty index keys).
//!
//! How each race is settled (every write that races another invocation is conditional, and
//! DynamoDB evaluates a condition and applies its write as one step):
//! - **claim**: a `PutItem` conditional on `attribute_not_exists(pk) OR expires_at <= now OR
//!   (status = claimed AND claimed_at <= now - lease)`; a failed condition returns the item
//!   (`ReturnValuesOnConditionCheckFailure = ALL_OLD`; a consistent `GetItem` if it does not)
//!   and answers [`Claim::Duplicate`]. `settle(done)` sets `status = done` (the claim must
//!   exist); `settle(release)` deletes the item if it is still `claimed` (never a `done` one).
//! - **group**: `put_group` is a `PutItem` conditional on `attribute_not_exists(pk)` (no
//!   expected version) or `version = :expected`. Threads live inside the JSON state:
//!   `add_thread` is a read-modify-write guarded by `version` that also bumps the version, so
//!   an invocation that decided on a state without that thread fails its `put_group`, reads
//!   again and decides with the thread (a thread kept in a separate attribute would instead be
//!   overwritten, or inherited by the next group, by a `put_group` decided on an older read).
//!   It retries up to [`GROUP_TRIES`] times.
//! - **rate**: consistent read of `tat`, [`vigil_core::noise::reserve`], then (granted only) a
//!   `PutItem` conditional on `attribute_not_exists(pk) OR tat = :old`, retried from the read up
//!   to [`RATE_TRIES`] times. `tat` is stored rounded up to the millisecond, so the next grant
//!   never starts before the end of this one.
//! - **digest**: one `UpdateItem` (`ADD count`, `SET since = if_not_exists(...)`, `titles =
//!   list_append(...)`) conditional on the list having room; when it is full, an `UpdateItem`
//!   that only counts. `take_digest` is a `DeleteItem` with `ReturnValues = ALL_OLD`: what it
//!   returns is gone, so two takers never both get it.
//!
//! Expiry: a claim past its `expires_at` counts as absent (claims carry the caller's `now`).
//! Other reads return items as stored: DynamoDB deletes expired items lazily, and groups,
//! pointers and silences carry their own times, which the core judges. Writes that get a `ttl`
//! but no `now` (groups, pointers, ledger rows) expire `ttl` after the write by the wall clock,
//! as journal entries do; `add_thread` keeps the group's expiry.
//!
//! Invariant: every failure is a [`StateError`] naming the operation and the table, and never
//! the contents of an item; callers fail open (an alert is still sent without state).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, TimeZone, Utc};
use vigil_core::noise::{DIGEST_TITLES, Digest, GroupState, LedgerEntry, Silence, Slot, Thread};
use vigil_core::ports::{Claim, StateError, StateStore};

use crate::config::sdk_failure;
use crate::journal::{ATTR_EXPIRES_AT, ATTR_PK, ATTR_SK, time_key};

/// A claim's status: `claimed` or `done`.
pub const ATTR_STATUS: &str = "status";
/// When a claim was made (N, epoch milliseconds).
pub const ATTR_CLAIMED_AT: &str = "claimed_at";
/// A group's [`GroupState`] as JSON.
pub const ATTR_STATE: &str = "state";
/// A group's version (N).
pub const ATTR_VERSION: &str = "version";
/// The group key an alarm pointer leads to.
pub const ATTR_GROUP_KEY: &str = "group_key";
/// A channel's theoretical arrival time (N, epoch milliseconds).
pub const ATTR_TAT: &str = "tat";
/// Alerts folded into a digest (N).
pub const ATTR_COUNT: &str = "count";
/// When a digest started (S, RFC 3339).
pub const ATTR_SINCE: &str = "since";
/// A digest's first titles (L of S).
pub const ATTR_TITLES: &str = "titles";
/// A [`Silence`] as JSON.
pub const ATTR_SILENCE: &str = "silence";
/// When a silence ends (N, epoch seconds).
pub const ATTR_ENDS_AT: &str = "ends_at";
/// A ledger row's correlation id: the hash key of [`CORRELATION_INDEX`].
pub const ATTR_CID: &str = "cid";
/// A [`LedgerEntry`] as JSON.
pub const ATTR_ENTRY: &str = "entry";
/// A ledger row's outcome ([`vigil_core::noise::Outcome::as_str`]), for people reading the table.
pub const ATTR_OUTCOME: &str = "outcome";

/// The global secondary index over ledger rows by correlation id (hash `cid`, range `sk`,
/// projection ALL); `template.yaml` creates it under this name.
pub const CORRELATION_INDEX: &str = "by-correlation";
/// The partition every silence is stored in.
pub const SILENCE_PARTITION: &str = "silence";

const SK_CLAIM: &str = "claim";
const SK_GROUP: &str = "group";
const SK_POINTER: &str = "pointer";
const SK_RATE: &str = "rate";
const SK_DIGEST: &str = "digest";
const STATUS_CLAIMED: &str = "claimed";
const STATUS_DONE: &str = "done";

/// Attempts of a claim whose competing item vanished between the failed write and the read.
const CLAIM_TRIES: u32 = 3;
/// Attempts of `add_thread`'s read-modify-write.
pub const GROUP_TRIES: u32 = 20;
/// Attempts of `reserve_slot`'s read-reserve-write.
pub const RATE_TRIES: u32 = 20;
/// Attempts of `add_to_digest` when the digest is taken between its two updates.
const DIGEST_TRIES: u32 = 5;
/// How long a channel's rate-limit item outlives its `tat` (it means nothing once past).
const RATE_KEEP_SECS: i64 = 24 * 60 * 60;
/// The expiry `add_thread` gives a group item that had none (only a hand-made item lacks it):
/// the core's default retention.
const UNDATED_GROUP_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

type Item = HashMap<String, AttributeValue>;

/// The partition of an event's claim.
pub fn claim_partition(event_id: &str) -> String {
    format!("event#{event_id}")
}

/// The partition of a group.
pub fn group_partition(key: &str) -> String {
    format!("group#{key}")
}

/// The partition of an alarm pointer.
pub fn pointer_partition(pointer: &str) -> String {
    format!("pointer#{pointer}")
}

/// The partition of a channel's rate limit.
pub fn rate_partition(channel: &str) -> String {
    format!("rate#{channel}")
}

/// The partition of a channel's digest.
pub fn digest_partition(channel: &str) -> String {
    format!("digest#{channel}")
}

/// The ledger partition of the UTC hour of `at`: `ledger#YYYY-MM-DDTHH`.
pub fn ledger_partition(at: DateTime<Utc>) -> String {
    format!("ledger#{}", at.format("%Y-%m-%dT%H"))
}

/// A ledger row's sort key: the fixed-width time (string order is time order), the correlation
/// id, and a random suffix so that two rows of one millisecond never collide.
pub fn ledger_sort_key(at: DateTime<Utc>, correlation_id: &str, suffix: &str) -> String {
    format!("{}#{correlation_id}#{suffix}", time_key(at))
}

/// The start of the UTC hour of `at`.
fn hour_start(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let secs = at.timestamp();
    Utc.timestamp_opt(secs - secs.rem_euclid(3_600), 0).single()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// `at` in epoch milliseconds, rounded up.
fn ceil_millis(at: DateTime<Utc>) -> i64 {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms.saturating_add(1)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Epoch seconds `ttl` after `now`.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp().saturating_add(secs(ttl))
}

fn conditional_failed<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    sdk_failure(err).code.as_deref() == Some(CONDITION_FAILED)
}

/// A short pause before retrying a lost race, growing with the attempt and jittered (so that
/// the losers of one race do not meet again in lockstep).
async fn back_off(attempt: u32) {
    let jitter = u64::try_from(uuid::Uuid::new_v4().as_u128() % 10).unwrap_or(0);
    let base = u64::from(attempt.min(10)) * 2;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Stops calling a table that just failed: one alert makes about ten state calls, and a
/// table that hangs would otherwise cost each of them its whole timeout, eating the time the
/// alert needs to be delivered. Opened by a timeout, a 5xx, an unreachable endpoint or an
/// unreadable answer (not by throttling, which the SDK's backoff absorbs, nor by a failed
/// condition); while open, calls fail at once (callers fail open). Shared by clones.
#[derive(Debug, Clone)]
struct Breaker {
    hold: Duration,
    opened: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Breaker {
    fn trip(&self, reason: &str) {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        *opened = Some((Instant::now(), reason.to_string()));
    }

    /// Why calls are skipped now, if they are.
    fn open_because(&self) -> Option<String> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        match opened.as_ref() {
            Some((at, reason)) if at.elapsed() < self.hold => Some(format!(
                "skipped: the table failed {} ms ago ({reason}); calls resume {} s after that",
                at.elapsed().as_millis(),
                self.hold.as_secs()
            )),
            Some(_) => {
                *opened = None;
                None
            }
            None => None,
        }
    }
}

/// The noise-control state in one DynamoDB table (layout in the module docs).
#[derive(Debug, Clone)]
pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
    breaker: Option<Breaker>,
}

impl DynamoState {
    /// The state in `table` (keys `pk`/`sk` and the [`CORRELATION_INDEX`] index, as in the
    /// module docs).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            breaker: None,
        }
    }

    /// After a call fails with a timeout, a 5xx, a connection failure or an unreadable answer,
    /// the [`StateStore`] calls fail at once for `hold` (the ledger write is still tried:
    /// it is the record of what happened). The functions set this; give the client timeouts
    /// too ([`aws_sdk_dynamodb::config::timeout::TimeoutConfig`]), or a hanging table still
    /// costs the first call its whole wait.
    pub fn with_breaker(mut self, hold: Duration) -> Self {
        self.breaker = Some(Breaker {
            hold,
            opened: Arc::new(Mutex::new(None)),
        });
        self
    }

    /// `Err` when the breaker is open: `operation` is skipped.
    fn closed(&self, operation: &str) -> Result<(), StateError> {
        match self.breaker.as_ref().and_then(Breaker::open_because) {
            Some(reason) => Err(StateError {
                operation: operation.to_string(),
                reason: format!("DynamoDB table {}: {reason}", self.table),
                retryable: true,
            }),
            None => Ok(()),
        }
    }

    /// The table used.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// An SDK failure of `call` during `operation`.
    fn sdk_error<E>(
        &self,
        operation: &str,
        call: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let failure = sdk_failure(err);
        if failure.retryable
            && !failure.throttled
            && let Some(breaker) = &self.breaker
        {
            breaker.trip(&format!("{call}: {}", failure.message));
        }
        StateError {
            operation: operation.to_string(),
            reason: format!(
                "DynamoDB {call} on table {}: {}",
                self.table, failure.message
            ),
            retryable: failure.retryable,
        }
    }

    /// A failure that is not the SDK's (an unreadable item, a lost race, a missing item).
    fn error(&self, operation: &str, what: &str, retryable: bool) -> StateError {
        StateError {
            operation: operation.to_string(),
            reason: format!("table {}: {what}", self.table),
            retryable,
        }
    }

    /// The item under `pk`/`sk`, read consistently.
    async fn get(&self, operation: &str, pk: &str, sk: &str) -> Result<Option<Item>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_PK, s(pk))
            .key(ATTR_SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error(operation, "GetItem", &e))?;
        Ok(out.item)
    }

    // -- claims --------------------------------------------------------------------------------

    async fn claim_event(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StateError> {
        const OP: &str = "claim";
        let pk = claim_partition(event_id);
        let now_ms = now.timestamp_millis();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        for _ in 0..CLAIM_TRIES {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(ATTR_PK, s(pk.as_str()))
                .item(ATTR_SK, s(SK_CLAIM))
                .item(ATTR_STATUS, s(STATUS_CLAIMED))
                .item(ATTR_CLAIMED_AT, n(now_ms))
                .item(ATTR_EXPIRES_AT, n(expiry(now, ttl)))
                .condition_expression(
                    "attribute_not_exists(#pk) OR #exp <= :now_s \
                     OR (#status = :claimed AND #claimed_at <= :lease_start)",
                )
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#exp", ATTR_EXPIRES_AT)
                .expression_attribute_names("#status", ATTR_STATUS)
                .expression_attribute_names("#claimed_at", ATTR_CLAIMED_AT)
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .expression_attribute_values(":claimed", s(STATUS_CLAIMED))
                .expression_attribute_values(":lease_start", n(now_ms.saturating_sub(lease_ms)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Claim::Owned),
                Err(err) if conditional_failed(&err) => err,
                Err(err) => return Err(self.sdk_error(OP, "PutItem", &err)),
            };
            let returned = match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
                _ => None,
            };
            let held = match returned {
                Some(item) => Some(item),
                None => self.get(OP, &pk, SK_CLAIM).await?,
            };
            // None: released between the write and the read; try again.
            if let Some(item) = held {
                let claimed_at = number(&item, ATTR_CLAIMED_AT)
                    .and_then(from_millis)
                    .ok_or_else(|| {
                        self.error(OP, "a claim item has no readable claimed_at", false)
                    })?;
                return Ok(Claim::Duplicate {
                    in_progress: string(&item, ATTR_STATUS) == Some(STATUS_CLAIMED),
                    claimed_at,
                });
            }
        }
        Err(self.error(
            OP,
            "the claim kept changing under concurrent writers; gave up",
            true,
        ))
    }

    async fn settle_event(&self, event_id: &str, done: bool) -> Result<(), StateError> {
        const OP: &str = "settle";
        if done {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ATTR_PK, s(claim_partition(event_id)))
                .key(ATTR_SK, s(SK_CLAIM))
                .update_expression("SET #status = :done")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#status", ATTR_STATUS)
                .expression_attribute_values(":done", s(STATUS_DONE))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(err) if conditional_failed(&err) => Err(self.error(
                    OP,
                    "no claim is stored for the event (released or expired); nothing marked done",
                    false,
                )),
                Err(err) => Err(self.sdk_error(OP, "UpdateItem", &err)),
            };
        }
        // Release: only a claim still in progress; a `done` one (another invocation finished
        // after this one's lease ran out) stays done.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ATTR_PK, s(claim_partition(event_id)))
            .key(ATTR_SK, s(SK_CLAIM))
            .condition_expression("#status = :claimed")
            .expression_attribute_names("#status", ATTR_STATUS)
            .expression_attribute_values(":claimed", s(STATUS_CLAIMED))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if conditional_failed(&err) => Ok(()),
            Err(err) => Err(self.sdk_error(OP, "DeleteItem", &err)),
        }
    }

    // -- groups --------------------------------------------------------------------------------

    /// The group item's state, with the version the item carries.
    fn group_state(&self, operation: &str, item: &Item) -> Result<GroupState, StateError> {
        let json = string(item, ATTR_STATE)
            .ok_or_else(|| self.error(operation, "a group item has no state", false))?;
        let mut state: GroupState = serde_json::from_str(json)
            .map_err(|_| self.error(operation, "a group item's state is not readable", false))?;
        if let Some(v) = number(item, ATTR_VERSION).and_then(|v| u64::try_from(v).ok()) {
            state.version = v;
        }
        Ok(state)
    }

    async fn read_group(&self, key: &str) -> Result<Option<GroupState>, StateError> {
        const OP: &str = "group";
        match self.get(OP, &group_partition(key), SK_GROUP).await? {
            Some(item) => self.group_state(OP, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `group` if the stored version is `expected` (`None`: nothing stored).
    async fn write_group(
        &self,
        operation: &str,
        group: &GroupState,
        expected: Option<u64>,
        expires_at: i64,
    ) -> Result<bool, StateError> {
        let json = serde_json::to_string(group)
            .map_err(|_| self.error(operation, "the group could not be encoded", false))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_PK, s(group_partition(&group.key)))
            .item(ATTR_SK, s(SK_GROUP))
            .item(ATTR_STATE, s(json))
            .item(ATTR_VERSION, n(group.version))
            .item(ATTR_EXPIRES_AT, n(expires_at));
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", ATTR_PK),
            Some(v) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", ATTR_VERSION)
                .expression_attribute_values(":expected", n(v)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if conditional_failed(&err) => Ok(false),
            Err(err) => Err(self.sdk_error(operation, "PutItem", &err)),
        }
    }

    async fn add_group_thread(&self, key: &str, thread: &Thread) -> Result<(), StateError> {
        const OP: &str = "add_thread";
        let pk = group_partition(key);
        for attempt in 0..GROUP_TRIES {
            let Some(item) = self.get(OP, &pk, SK_GROUP).await? else {
                return Err(self.error(OP, "no group is stored under the key", false));
            };
            let mut group = self.group_state(OP, &item)?;
            if group.threads.contains(thread) {
                return Ok(());
            }
            let expected = group.version;
            group.threads.push(thread.clone());
            group.version = expected.saturating_add(1);
            let expires_at = number(&item, ATTR_EXPIRES_AT)
                .unwrap_or_else(|| expiry(Utc::now(), UNDATED_GROUP_TTL));
            if self
                .write_group(OP, &group, Some(expected), expires_at)
                .await?
            {
                return Ok(());
            }
            back_off(attempt).await;
        }
        Err(self.error(
            OP,
            "the group kept changing under concurrent writers; gave up",
            true,
        ))
    }

    // -- pointers ------------------------------------------------------------------------------

    async fn read_pointer(&self, pointer: &str) -> Result<Option<String>, StateError> {
        const OP: &str = "pointed_group";
        let item = self
            .get(OP, &pointer_partition(pointer), SK_POINTER)
            .await?;
        Ok(item.and_then(|i| string(&i, ATTR_GROUP_KEY).map(str::to_string)))
    }

    async fn write_pointer(
        &self,
        pointer: &str,
        group_key: &str,
        ttl: Duration,
    ) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_PK, s(pointer_partition(pointer)))
            .item(ATTR_SK, s(SK_POINTER))
            .item(ATTR_GROUP_KEY, s(group_key))
            .item(ATTR_EXPIRES_AT, n(expiry(Utc::now(), ttl)))
            .send()
            .await
            .map_err(|e| self.sdk_error("point", "PutItem", &e))?;
        Ok(())
    }

    // -- rate limit ----------------------------------------------------------------------------

    async fn reserve(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        slots: u32,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Slot, StateError> {
        const OP: &str = "reserve_slot";
        let pk = rate_partition(channel);
        for attempt in 0..RATE_TRIES {
            let item = self.get(OP, &pk, SK_RATE).await?;
            let old = item.as_ref().and_then(|i| number(i, ATTR_TAT));
            let slot = vigil_core::noise::reserve(
                old.and_then(from_millis),
                now,
                slots,
                interval,
                max_wait,
            );
            let Slot::Granted { new_tat, .. } = slot else {
                return Ok(slot);
            };
            let new_ms = ceil_millis(new_tat);
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(ATTR_PK, s(pk.as_str()))
                .item(ATTR_SK, s(SK_RATE))
                .item(ATTR_TAT, n(new_ms))
                .item(
                    ATTR_EXPIRES_AT,
                    n((new_ms / 1_000).saturating_add(RATE_KEEP_SECS)),
                )
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#tat", ATTR_TAT);
            let request = match old {
                Some(old) => request
                    .condition_expression("attribute_not_exists(#pk) OR #tat = :old")
                    .expression_attribute_values(":old", n(old)),
                None => request.condition_expression(
                    "attribute_not_exists(#pk) OR attribute_not_exists(#tat)",
                ),
            };
            match request.send().await {
                Ok(_) => return Ok(slot),
                Err(err) if conditional_failed(&err) => back_off(attempt).await,
                Err(err) => return Err(self.sdk_error(OP, "PutItem", &err)),
            }
        }
        Err(self.error(
            OP,
            "the channel's rate limit kept changing under concurrent writers; gave up",
            true,
        ))
    }

    // -- digests -------------------------------------------------------------------------------

    async fn add_digest(
        &self,
        channel: &str,
        title: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), StateError> {
        const OP: &str = "add_to_digest";
        let pk = digest_partition(channel);
        let since = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let max = i64::try_from(DIGEST_TITLES).unwrap_or(i64::MAX);
        let expires_at = expiry(now, ttl);
        for _ in 0..DIGEST_TRIES {
            // Counted, with the title while the list has room.
            let with_title = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ATTR_PK, s(pk.as_str()))
                .key(ATTR_SK, s(SK_DIGEST))
                .update_expression(
                    "ADD #count :one SET #since = if_not_exists(#since, :now), \
                     #titles = list_append(if_not_exists(#titles, :empty), :title), #exp = :exp",
                )
                .condition_expression("attribute_not_exists(#titles) OR size(#titles) < :max")
                .expression_attribute_names("#count", ATTR_COUNT)
                .expression_attribute_names("#since", ATTR_SINCE)
                .expression_attribute_names("#titles", ATTR_TITLES)
                .expression_attribute_names("#exp", ATTR_EXPIRES_AT)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", s(since.as_str()))
                .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":title", AttributeValue::L(vec![s(title)]))
                .expression_attribute_values(":max", n(max))
                .expression_attribute_values(":exp", n(expires_at))
                .send()
                .await;
            match with_title {
                Ok(_) => return Ok(()),
                Err(err) if conditional_failed(&err) => {}
                Err(err) => return Err(self.sdk_error(OP, "UpdateItem", &err)),
            }
            // The list is full: only counted, while the digest is still there.
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ATTR_PK, s(pk.as_str()))
                .key(ATTR_SK, s(SK_DIGEST))
                .update_expression("ADD #count :one SET #exp = :exp")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#count", ATTR_COUNT)
                .expression_attribute_names("#exp", ATTR_EXPIRES_AT)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":exp", n(expires_at))
                .send()
                .await;
            match counted {
                Ok(_) => return Ok(()),
                // Taken in between: start a new digest.
                Err(err) if conditional_failed(&err) => {}
                Err(err) => return Err(self.sdk_error(OP, "UpdateItem", &err)),
            }
        }
        Err(self.error(
            OP,
            "the digest kept changing under concurrent writers; gave up",
            true,
        ))
    }

    async fn take(&self, channel: &str) -> Result<Option<Digest>, StateError> {
        const OP: &str = "take_digest";
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ATTR_PK, s(digest_partition(channel)))
            .key(ATTR_SK, s(SK_DIGEST))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.sdk_error(OP, "DeleteItem", &e))?;
        let Some(item) = out.attributes.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let since = string(&item, ATTR_SINCE)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| self.error(OP, "the digest taken had no readable since", false))?;
        let count = number(&item, ATTR_COUNT)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0);
        let titles = item
            .get(ATTR_TITLES)
            .and_then(|t| t.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|t| t.as_s().ok().cloned())
                    .take(DIGEST_TITLES)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Digest {
            channel: channel.to_string(),
            count,
            since,
            titles,
        }))
    }

    // -- silences ------------------------------------------------------------------------------

    /// Stores `silence` (replacing one with the same id), kept `keep_after_end` after it ends
    /// so `vigil silence list --all` can still show it.
    pub async fn put_silence(
        &self,
        silence: &Silence,
        keep_after_end: Duration,
    ) -> Result<(), StateError> {
        const OP: &str = "put_silence";
        let json = serde_json::to_string(silence)
            .map_err(|_| self.error(OP, "the silence could not be encoded", false))?;
        let ends_at = silence.ends_at.timestamp();
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_PK, s(SILENCE_PARTITION))
            .item(ATTR_SK, s(silence.id.as_str()))
            .item(ATTR_SILENCE, s(json))
            .item(ATTR_ENDS_AT, n(ends_at))
            .item(
                ATTR_EXPIRES_AT,
                n(ends_at.saturating_add(secs(keep_after_end))),
            )
            .send()
            .await
            .map_err(|e| self.sdk_error(OP, "PutItem", &e))?;
        Ok(())
    }

    /// The stored silences, sorted by `starts_at`: those not ended at `now` (active or still
    /// to come), or all of them with `include_ended`. An unreadable item is skipped (and logged
    /// by its id): a silence that cannot be read silences nothing.
    pub async fn silences(
        &self,
        include_ended: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StateError> {
        const OP: &str = "silences";
        let mut out: Vec<Silence> = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_values(":pk", s(SILENCE_PARTITION))
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| self.sdk_error(OP, "Query", &e))?;
            for item in page.items() {
                match string(item, ATTR_SILENCE).map(serde_json::from_str::<Silence>) {
                    Some(Ok(silence)) => out.push(silence),
                    _ => tracing::warn!(
                        table = %self.table,
                        id = string(item, ATTR_SK).unwrap_or("?"),
                        "unreadable silence skipped"
                    ),
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        out.retain(|s| include_ended || s.ends_at > now);
        out.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Ends silence `id` at `now` (or keeps its earlier end) and records who did it; it is kept
    /// as long after its new end as it was going to be kept after its old one.
    pub async fn expire_silence(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence, StateError> {
        const OP: &str = "expire_silence";
        let Some(item) = self.get(OP, SILENCE_PARTITION, id).await? else {
            return Err(self.error(OP, &format!("no silence {id:?} is stored"), false));
        };
        let mut silence: Silence = string(&item, ATTR_SILENCE)
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| self.error(OP, &format!("silence {id:?} is not readable"), false))?;
        let keep = match (number(&item, ATTR_EXPIRES_AT), number(&item, ATTR_ENDS_AT)) {
            (Some(expires), Some(ends)) => {
                Duration::from_secs(u64::try_from(expires.saturating_sub(ends)).unwrap_or(0))
            }
            _ => Duration::ZERO,
        };
        silence.ends_at = silence.ends_at.min(now);
        silence.expired_by = Some(by.to_string());
        self.put_silence(&silence, keep)
            .await
            .map_err(|e| StateError {
                operation: OP.to_string(),
                ..e
            })?;
        Ok(silence)
    }

    // -- ledger --------------------------------------------------------------------------------

    async fn record_entry(&self, entry: &LedgerEntry, ttl: Duration) -> Result<(), StateError> {
        const OP: &str = "record";
        let json = serde_json::to_string(entry)
            .map_err(|_| self.error(OP, "the ledger entry could not be encoded", false))?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_PK, s(ledger_partition(entry.at)))
            .item(
                ATTR_SK,
                s(ledger_sort_key(entry.at, &entry.correlation_id, &suffix)),
            )
            .item(ATTR_ENTRY, s(json))
            .item(ATTR_OUTCOME, s(entry.outcome.as_str()))
            .item(ATTR_EXPIRES_AT, n(expiry(Utc::now(), ttl)));
        if !entry.correlation_id.is_empty() {
            request = request.item(ATTR_CID, s(entry.correlation_id.as_str()));
        }
        request
            .send()
            .await
            .map_err(|e| self.sdk_error(OP, "PutItem", &e))?;
        Ok(())
    }

    /// Ledger rows' entries; an unreadable row is skipped and logged by its sort key.
    fn entries(&self, items: &[Item], out: &mut Vec<LedgerEntry>) {
        for item in items {
            match string(item, ATTR_ENTRY).map(serde_json::from_str::<LedgerEntry>) {
                Some(Ok(entry)) => out.push(entry),
                _ => tracing::warn!(
                    table = %self.table,
                    sk = string(item, ATTR_SK).unwrap_or("?"),
                    "unreadable ledger row skipped"
                ),
            }
        }
    }

    /// Every ledger entry of one correlation id, oldest first (all pages of the
    /// [`CORRELATION_INDEX`] index, which is eventually consistent: a row written a moment ago may
    /// be missing).
    pub async fn ledger_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<LedgerEntry>, StateError> {
        const OP: &str = "ledger_by_correlation";
        let mut out = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(CORRELATION_INDEX)
                .key_condition_expression("#cid = :cid")
                .expression_attribute_names("#cid", ATTR_CID)
                .expression_attribute_values(":cid", s(correlation_id))
                .scan_index_forward(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| self.sdk_error(OP, "Query", &e))?;
            self.entries(page.items(), &mut out);
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Ledger entries from `since` to `until` (both inclusive, to the millisecond), oldest
    /// first, at most `limit`: one query per UTC hour partition.
    pub async fn ledger_since(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StateError> {
        const OP: &str = "ledger_since";
        let mut out: Vec<LedgerEntry> = Vec::new();
        if limit == 0 || since > until {
            return Ok(out);
        }
        let from = time_key(since);
        // `char::MAX` sorts after any correlation id, so `until`'s millisecond is included.
        let to = format!("{}#{}", time_key(until), char::MAX);
        let mut hour = hour_start(since);
        while let Some(h) = hour.filter(|h| *h <= until) {
            let mut start_key: Option<Item> = None;
            loop {
                let left = limit.saturating_sub(out.len());
                if left == 0 {
                    return Ok(out);
                }
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                    .expression_attribute_names("#pk", ATTR_PK)
                    .expression_attribute_names("#sk", ATTR_SK)
                    .expression_attribute_values(":pk", s(ledger_partition(h)))
                    .expression_attribute_values(":from", s(from.as_str()))
                    .expression_attribute_values(":to", s(to.as_str()))
                    .scan_index_forward(true)
                    .limit(i32::try_from(left).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start_key.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(OP, "Query", &e))?;
                self.entries(page.items(), &mut out);
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start_key = Some(k),
                    _ => break,
                }
            }
            hour = h.checked_add_signed(chrono::TimeDelta::hours(1));
        }
        out.truncate(limit);
        Ok(out)
    }
}

impl StateStore for DynamoState {
    async fn claim(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StateError> {
        self.closed("claim")?;
        self.claim_event(event_id, now, lease, ttl).await
    }

    async fn settle(&self, event_id: &str, done: bool) -> Result<(), StateError> {
        self.closed("settle")?;
        self.settle_event(event_id, done).await
    }

    async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StateError> {
        self.closed("active_silences")?;
        let mut silences = self.silences(false, now).await.map_err(|e| StateError {
            operation: "active_silences".to_string(),
            ..e
        })?;
        silences.retain(|s| s.is_active(now));
        Ok(silences)
    }

    async fn group(&self, key: &str) -> Result<Option<GroupState>, StateError> {
        self.closed("group")?;
        self.read_group(key).await
    }

    async fn put_group(
        &self,
        group: &GroupState,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        self.closed("put_group")?;
        self.write_group(
            "put_group",
            group,
            expected_version,
            expiry(Utc::now(), ttl),
        )
        .await
    }

    async fn add_thread(&self, key: &str, thread: &Thread) -> Result<(), StateError> {
        self.closed("add_thread")?;
        self.add_group_thread(key, thread).await
    }

    async fn pointed_group(&self, pointer: &str) -> Result<Option<String>, StateError> {
        self.closed("pointed_group")?;
        self.read_pointer(pointer).await
    }

    async fn point(&self, pointer: &str, group_key: &str, ttl: Duration) -> Result<(), StateError> {
        self.closed("point")?;
        self.write_pointer(pointer, group_key, ttl).await
    }

    async fn reserve_slot(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        slots: u32,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Slot, StateError> {
        self.closed("reserve_slot")?;
        self.reserve(channel, now, slots, interval, max_wait).await
    }

    async fn add_to_digest(
        &self,
        channel: &str,
        title: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), StateError> {
        self.closed("add_to_digest")?;
        self.add_digest(channel, title, now, ttl).await
    }

    async fn take_digest(&self, channel: &str) -> Result<Option<Digest>, StateError> {
        self.closed("take_digest")?;
        self.take(channel).await
    }

    async fn record(&self, entry: &LedgerEntry, ttl: Duration) -> Result<(), StateError> {
        self.record_entry(entry, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn ledger_keys_sort_by_time_and_partition_by_utc_hour() {
        let a = at("2026-11-20T09:59:59.999Z");
        let b = at("2026-11-20T10:00:00Z");
        assert_eq!(ledger_partition(a), "ledger#2026-11-20T09");
        assert_eq!(ledger_partition(b), "ledger#2026-11-20T10");
        assert_eq!(
            ledger_partition(at("2026-11-20T12:30:00+02:00")),
            "ledger#2026-11-20T10"
        );
        let ka = ledger_sort_key(a, "zzz", "0");
        let kb = ledger_sort_key(b, "aaa", "0");
        assert_eq!(ka, "2026-11-20T09:59:59.999Z#zzz#0");
        assert!(ka < kb);
        assert_eq!(hour_start(a), Some(at("2026-11-20T09:00:00Z")));
    }

    #[test]
    fn tat_is_rounded_up_to_the_millisecond() {
        let t = at("2026-11-20T09:00:00.001Z");
        assert_eq!(ceil_millis(t), t.timestamp_millis());
        let t2 = t + chrono::TimeDelta::nanoseconds(1);
        assert_eq!(ceil_millis(t2), t.timestamp_millis() + 1);
    }
}
