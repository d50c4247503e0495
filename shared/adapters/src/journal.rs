//! The change journal (ARCHITECTURE.md "Correlation"): every watched CloudTrail change the event function receives
//! from EventBridge, kept in DynamoDB for a while, so enrichment can read recent changes
//! without `LookupEvents` (throttled at 2 requests/s per account and Region, and ~5 to 15
//! minutes behind).
//!
//! - [`ChangeJournal`] writes: one item per CloudTrail event, idempotent per event id.
//! - [`JournalChangeSource`] reads a window back as a [`ChangeSource`].
//! - [`JournalFirst`] reads the journal first, then asks `LookupEvents` with the time left to
//!   fill the gaps (what the journal never saw: calls made before it existed, sources no
//!   EventBridge rule forwards), and merges both.
//!
//! Table layout (one table, shared with later noise-control state by key prefix):
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `pk` | S | `change#{account}#{region}` |
//! | `sk` | S | `{event time, RFC 3339 UTC, millisecond, fixed width}#{event id}` |
//! | `change` | S | the [`Change`] as JSON |
//! | `event_source`, `event_name` | S | for people reading the table |
//! | `expires_at` | N | epoch seconds: when it was written plus the TTL (the table's TTL attribute) |
//!
//! The fixed-width time makes string order time order, so a window is one `sk BETWEEN` query.
//!
//! Invariant: reading never fails an alert. A journal that cannot be read, or answers too
//! slowly, becomes a [`MissingContext`] with the reason, exactly like a throttled
//! `LookupEvents`; entries past their `expires_at` are never returned, because DynamoDB
//! deletes expired items lazily (up to days later) and the local AWS not at all. The journal
//! only ever holds what the event function was told: a [`Change`], which already carries
//! nothing but allow-listed, length-capped request parameters.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;
use vigil_core::enrich::{MissingContext, Window};
use vigil_core::model::Change;
use vigil_core::ports::{ChangeBatch, ChangeQuery, ChangeSource};

use crate::cloudtrail::human;
use crate::config::sdk_failure;

/// Partition key attribute.
pub const ATTR_PK: &str = "pk";
/// Sort key attribute.
pub const ATTR_SK: &str = "sk";
/// The [`Change`] as JSON.
pub const ATTR_CHANGE: &str = "change";
/// The change's event source, e.g. `iam.amazonaws.com`.
pub const ATTR_EVENT_SOURCE: &str = "event_source";
/// The change's event name, e.g. `DetachRolePolicy`.
pub const ATTR_EVENT_NAME: &str = "event_name";
/// The TTL attribute (epoch seconds).
pub const ATTR_EXPIRES_AT: &str = "expires_at";

/// How the journal names itself in [`ChangeBatch::sources`] and [`MissingContext::source`].
pub const JOURNAL_SOURCE: &str = "change journal";

/// How `LookupEvents` is named when [`JournalFirst`] has to report it as a whole.
const LOOKUP_SOURCE: &str = "CloudTrail LookupEvents";

/// CloudTrail records the calls to global services in this Region, whatever Region the
/// caller used, so the event function that journals them runs (or forwards) there.
pub const GLOBAL_SERVICE_REGION: &str = "us-east-1";

/// Event sources of global services: an alarm in another Region still wants their changes
/// (a detached IAM policy breaks a function wherever it runs).
const GLOBAL_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "organizations.amazonaws.com",
    "cloudfront.amazonaws.com",
    "route53.amazonaws.com",
];

/// Pages read per partition before stopping: a busy hour of watched writes fits in a few
/// 1 MB pages; past that, the newest entries (read first) matter most.
const MAX_PAGES: u32 = 5;

/// Never more than this share of [`JournalFirst`]'s budget goes to the journal: it normally
/// answers in milliseconds, and a slow DynamoDB must not starve `LookupEvents`, the only
/// source of what the journal never saw.
const JOURNAL_SHARE_DIVISOR: u32 = 2;

/// The partition of one account and Region.
pub fn partition_key(account: &str, region: &str) -> String {
    format!("change#{account}#{region}")
}

/// The event time as fixed-width RFC 3339 (UTC, milliseconds, `Z`), so that string order is
/// time order.
pub fn time_key(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The sort key of one change.
pub fn sort_key(time: DateTime<Utc>, event_id: &str) -> String {
    format!("{}#{event_id}", time_key(time))
}

/// Whether a journal entry is recorded: new, or already there from an earlier delivery of the
/// same event (EventBridge delivers at least once; Lambda retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written now.
    New,
    /// An entry for this event id was already there; nothing changed.
    AlreadyThere,
}

/// Why a change could not be journaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The change names no account or no Region, so it has no partition (CloudTrail records
    /// always carry both; a hand-made event may not).
    #[error("change {event_id} names no account or Region; it cannot be journaled")]
    Unkeyed { event_id: String },
    /// DynamoDB refused or failed the write.
    #[error("change journal write failed: {message}")]
    Write { message: String, retryable: bool },
}

impl JournalError {
    /// Whether writing again later (the Lambda retry) could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Unkeyed { .. } => false,
            Self::Write { retryable, .. } => *retryable,
        }
    }
}

/// Records changes in the journal. A port of its own (not in the core: only the event
/// function writes), so handler tests can use an in-memory journal.
pub trait ChangeRecorder: Send + Sync {
    /// Records `change`, to expire `ttl` after it is written.
    fn record(
        &self,
        change: &Change,
        ttl: Duration,
    ) -> impl Future<Output = Result<Recorded, JournalError>> + Send;
}

/// The DynamoDB journal writer.
#[derive(Debug, Clone)]
pub struct ChangeJournal {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ChangeJournal {
    /// A writer to `table` (keys `pk`/`sk` as in the module docs).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table written to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes one entry, keyed by the change's own account and Region, to expire `ttl` after
    /// now (the write), not after the change's own time: a change redriven from the
    /// dead-letter queue days later still serves the alarms redriven with it, and a skew
    /// between CloudTrail's clock and ours cannot make an entry born expired.
    ///
    /// Idempotent: the put is conditional on the key being new, and an existing entry is
    /// reported as [`Recorded::AlreadyThere`], not as an error (and keeps its expiry).
    pub async fn record(&self, change: &Change, ttl: Duration) -> Result<Recorded, JournalError> {
        self.record_at(change, ttl, Utc::now()).await
    }

    /// [`ChangeJournal::record`] as if written at `now`.
    pub async fn record_at(
        &self,
        change: &Change,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Recorded, JournalError> {
        let (Some(account), Some(region)) = (
            change.account.as_deref().filter(|a| !a.is_empty()),
            change.region.as_deref().filter(|r| !r.is_empty()),
        ) else {
            return Err(JournalError::Unkeyed {
                event_id: change.event_id.clone(),
            });
        };
        // Serializing plain data (strings, maps, numbers) cannot fail; should it ever, the
        // write is refused rather than an empty entry stored.
        let json = serde_json::to_string(change).map_err(|e| JournalError::Write {
            message: format!("the change could not be encoded: {e}"),
            retryable: false,
        })?;
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.timestamp().saturating_add(ttl_secs);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_PK, AttributeValue::S(partition_key(account, region)))
            .item(
                ATTR_SK,
                AttributeValue::S(sort_key(change.time, &change.event_id)),
            )
            .item(ATTR_CHANGE, AttributeValue::S(json))
            .item(
                ATTR_EVENT_SOURCE,
                AttributeValue::S(change.event_source.clone()),
            )
            .item(
                ATTR_EVENT_NAME,
                AttributeValue::S(change.event_name.clone()),
            )
            .item(ATTR_EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", ATTR_PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::New),
            Err(err) => {
                let failure = sdk_failure(&err);
                if failure.code.as_deref() == Some("ConditionalCheckFailedException") {
                    return Ok(Recorded::AlreadyThere);
                }
                Err(JournalError::Write {
                    message: failure.message,
                    retryable: failure.retryable,
                })
            }
        }
    }
}

impl ChangeRecorder for ChangeJournal {
    async fn record(&self, change: &Change, ttl: Duration) -> Result<Recorded, JournalError> {
        ChangeJournal::record(self, change, ttl).await
    }
}

/// The journal read back as a [`ChangeSource`], for one account and Region.
///
/// The account and Region are fixed at construction, to the function's own: a
/// [`ChangeQuery`] names no account (it is shaped after `LookupEvents`, which always answers
/// for the caller's account and Region), and [`JournalFirst`] merges the two answers, which
/// must therefore be about the same account and Region. An alarm from another account is
/// enriched from neither, rather than from this account's changes.
#[derive(Debug, Clone)]
pub struct JournalChangeSource {
    client: aws_sdk_dynamodb::Client,
    table: String,
    account: String,
    region: String,
}

/// What one partition's query found.
#[derive(Debug, Default)]
struct PartitionRead {
    changes: Vec<Change>,
    unreadable: Vec<String>,
    expired: usize,
    capped: bool,
}

impl JournalChangeSource {
    /// A reader of `table` for `account` in `region` (the function's own; see the type docs).
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        account: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            account: account.into(),
            region: region.into(),
        }
    }

    /// The account read.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The Region read.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Partitions to read, each with the event sources to keep from it (`None`: all).
    fn partitions(&self) -> Vec<(String, Option<&'static [&'static str]>)> {
        let mut out = vec![(partition_key(&self.account, &self.region), None)];
        if self.region != GLOBAL_SERVICE_REGION {
            out.push((
                partition_key(&self.account, GLOBAL_SERVICE_REGION),
                Some(GLOBAL_SOURCES),
            ));
        }
        out
    }

    async fn read(&self, query: &ChangeQuery, now: DateTime<Utc>) -> ChangeBatch {
        let mut batch = ChangeBatch::default();
        let mut all = PartitionRead::default();
        for (pk, keep) in self.partitions() {
            match self.read_partition(&pk, &query.window, now).await {
                Ok(mut read) => {
                    if let Some(keep) = keep {
                        read.changes
                            .retain(|c| keep.contains(&c.event_source.as_str()));
                    }
                    all.changes.append(&mut read.changes);
                    all.unreadable.append(&mut read.unreadable);
                    all.expired += read.expired;
                    all.capped |= read.capped;
                }
                Err(reason) => {
                    batch.missing.push(MissingContext {
                        source: JOURNAL_SOURCE.to_string(),
                        reason,
                    });
                    return batch;
                }
            }
        }
        let before = all.changes.len();
        all.changes.retain(|c| wanted(c, query));
        tracing::debug!(
            read = before,
            kept = all.changes.len(),
            expired = all.expired,
            "change journal read"
        );
        if all.capped {
            batch.missing.push(MissingContext {
                source: JOURNAL_SOURCE.to_string(),
                reason: format!(
                    "stopped after {MAX_PAGES} page(s); older entries in the window were not read"
                ),
            });
        } else {
            batch.sources.push(JOURNAL_SOURCE.to_string());
        }
        if let Some(first) = all.unreadable.first() {
            batch.missing.push(MissingContext {
                source: JOURNAL_SOURCE.to_string(),
                reason: format!(
                    "{} entr(y/ies) not understood (first: {first})",
                    all.unreadable.len()
                ),
            });
        }
        batch.changes = all.changes;
        batch
    }

    /// One partition, newest first, up to [`MAX_PAGES`] pages.
    async fn read_partition(
        &self,
        pk: &str,
        window: &Window,
        now: DateTime<Utc>,
    ) -> Result<PartitionRead, String> {
        let mut read = PartitionRead::default();
        // Every sort key of the window starts with a time inside it; `char::MAX` sorts after
        // any event id, so the last millisecond of the window is included whole.
        let from = time_key(window.start);
        let to = format!("{}#{}", time_key(window.end), char::MAX);
        let now_secs = now.timestamp();
        let mut start_key: Option<HashMap<String, AttributeValue>> = None;
        for page in 1..=MAX_PAGES {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", ATTR_PK)
                .expression_attribute_names("#sk", ATTR_SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .expression_attribute_values(":from", AttributeValue::S(from.clone()))
                .expression_attribute_values(":to", AttributeValue::S(to.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|err| {
                    let f = sdk_failure(&err);
                    if f.retryable {
                        format!("{} (may succeed on retry)", f.message)
                    } else {
                        f.message
                    }
                })?;
            for item in out.items() {
                match entry(item, now_secs) {
                    Entry::Live(change) => read.changes.push(*change),
                    Entry::Expired => read.expired += 1,
                    Entry::Unreadable(why) => read.unreadable.push(why),
                }
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => {
                    if page == MAX_PAGES {
                        read.capped = true;
                    } else {
                        start_key = Some(key.clone());
                    }
                }
                _ => break,
            }
        }
        Ok(read)
    }
}

/// One journal item, read.
enum Entry {
    Live(Box<Change>),
    Expired,
    Unreadable(String),
}

fn entry(item: &HashMap<String, AttributeValue>, now_secs: i64) -> Entry {
    let sk = item
        .get(ATTR_SK)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("?");
    // An entry without a readable expiry is kept: the TTL is a clean-up, not a filter the
    // writer relies on, and every entry this module writes has one.
    let expires_at = item
        .get(ATTR_EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok());
    if expires_at.is_some_and(|t| t <= now_secs) {
        return Entry::Expired;
    }
    let Some(json) = item.get(ATTR_CHANGE).and_then(|v| v.as_s().ok()) else {
        return Entry::Unreadable(format!("entry {sk} has no change"));
    };
    match serde_json::from_str::<Change>(json) {
        Ok(c) => Entry::Live(Box::new(c)),
        Err(e) => Entry::Unreadable(format!("entry {sk}: {e}")),
    }
}

/// Whether a journaled change answers the query the way `LookupEvents` would: one of its
/// event sources, or a call made by one of its principals (Lambda names the role session
/// after the function). An empty query asks for everything.
fn wanted(c: &Change, query: &ChangeQuery) -> bool {
    if query.event_sources.is_empty() && query.principals.is_empty() {
        return true;
    }
    if query
        .event_sources
        .iter()
        .any(|s| s.trim() == c.event_source)
    {
        return true;
    }
    query.principals.iter().map(|p| p.trim()).any(|p| {
        !p.is_empty()
            && (c.actor.session_name.as_deref() == Some(p)
                || c.actor.name == p
                || c.actor.name.rsplit('/').next() == Some(p))
    })
}

impl ChangeSource for JournalChangeSource {
    async fn changes(&self, query: &ChangeQuery) -> ChangeBatch {
        let started = Instant::now();
        let read = tokio::time::timeout(query.budget, self.read(query, Utc::now())).await;
        let batch = read.unwrap_or_else(|_| ChangeBatch {
            missing: vec![MissingContext {
                source: JOURNAL_SOURCE.to_string(),
                reason: format!("no answer within {}", human(&query.budget)),
            }],
            ..ChangeBatch::default()
        });
        tracing::info!(
            changes = batch.changes.len(),
            missing = batch.missing.len(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "change journal enrichment"
        );
        batch
    }
}

/// The journal first, then `LookupEvents` within the time left, merged (ARCHITECTURE.md "Correlation").
///
/// Why both: the journal is fast and unthrottled and sees a change seconds after it happens
/// (CloudTrail's `LookupEvents` lags ~5 to 15 minutes), but holds only what EventBridge
/// forwarded since it was deployed; `LookupEvents` holds the account's whole management
/// history but is slow, scarce and late. Changes are deduplicated by event id (the journal's
/// copy wins: same record, read earlier), and what either part could not do is listed in
/// [`ChangeBatch::missing`] under its own source name, so a throttled lookup reads as such
/// even when the journal answered.
#[derive(Debug)]
pub struct JournalFirst<J, L> {
    journal: Option<J>,
    lookup: L,
}

impl<J, L> JournalFirst<J, L> {
    /// The journal, then `lookup`.
    pub fn new(journal: J, lookup: L) -> Self {
        Self {
            journal: Some(journal),
            lookup,
        }
    }

    /// `lookup` alone (no table configured): one change-source type for both set-ups.
    pub fn lookup_only(lookup: L) -> Self {
        Self {
            journal: None,
            lookup,
        }
    }

    /// The journal, when there is one.
    pub fn journal(&self) -> Option<&J> {
        self.journal.as_ref()
    }

    /// The gap filler.
    pub fn lookup(&self) -> &L {
        &self.lookup
    }
}

impl<J: ChangeSource, L: ChangeSource> ChangeSource for JournalFirst<J, L> {
    async fn changes(&self, query: &ChangeQuery) -> ChangeBatch {
        let started = Instant::now();
        let journal = match &self.journal {
            Some(j) => {
                let share = query.budget / JOURNAL_SHARE_DIVISOR;
                let q = ChangeQuery {
                    budget: share,
                    ..query.clone()
                };
                Some(
                    tokio::time::timeout(share, j.changes(&q))
                        .await
                        .unwrap_or_else(|_| ChangeBatch {
                            missing: vec![MissingContext {
                                source: JOURNAL_SOURCE.to_string(),
                                reason: format!("no answer within {}", human(&share)),
                            }],
                            ..ChangeBatch::default()
                        }),
                )
            }
            None => None,
        };
        let left = query.budget.saturating_sub(started.elapsed());
        let lookup = if left.is_zero() {
            ChangeBatch {
                missing: vec![MissingContext {
                    source: LOOKUP_SOURCE.to_string(),
                    reason: "no time left after the change journal; not searched".to_string(),
                }],
                ..ChangeBatch::default()
            }
        } else {
            let q = ChangeQuery {
                budget: left,
                ..query.clone()
            };
            tokio::time::timeout(left, self.lookup.changes(&q))
                .await
                .unwrap_or_else(|_| ChangeBatch {
                    missing: vec![MissingContext {
                        source: LOOKUP_SOURCE.to_string(),
                        reason: format!("no answer within {}", human(&left)),
                    }],
                    ..ChangeBatch::default()
                })
        };
        match journal {
            Some(j) => merge(j, lookup),
            None => lookup,
        }
    }
}

/// Both answers in one batch: changes deduplicated by event id (the first copy kept) and
/// ordered by time, sources and missing entries of both, the journal's first.
fn merge(first: ChangeBatch, second: ChangeBatch) -> ChangeBatch {
    let mut seen: HashSet<String> = HashSet::new();
    let mut changes: Vec<Change> = first
        .changes
        .into_iter()
        .chain(second.changes)
        .filter(|c| seen.insert(c.event_id.clone()))
        .collect();
    changes.sort_by(|a, b| {
        a.time
            .cmp(&b.time)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    ChangeBatch {
        changes,
        sources: first.sources.into_iter().chain(second.sources).collect(),
        missing: first.missing.into_iter().chain(second.missing).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn change(id: &str, minute: u32, source: &str) -> Change {
        Change {
            event_id: id.to_string(),
            event_name: "DetachRolePolicy".into(),
            event_source: source.into(),
            time: Utc
                .with_ymd_and_hms(2026, 11, 20, 9, minute, 0)
                .single()
                .unwrap_or_default(),
            region: Some("us-east-1".into()),
            account: Some("111122223333".into()),
            actor: vigil_core::model::Actor {
                name: "role/agent-tool/order-lookup".into(),
                session_name: Some("order-lookup".into()),
                ..Default::default()
            },
            source_ip: None,
            user_agent: None,
            read_only: false,
            error_code: None,
            error_message: None,
            request: Default::default(),
            resources: Vec::new(),
            facts: Default::default(),
        }
    }

    fn query(sources: &[&str], principals: &[&str]) -> ChangeQuery {
        let end = Utc
            .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .unwrap_or_default();
        ChangeQuery {
            window: Window {
                start: end - chrono::Duration::hours(1),
                end,
            },
            event_sources: sources.iter().map(|s| s.to_string()).collect(),
            principals: principals.iter().map(|s| s.to_string()).collect(),
            budget: Duration::from_secs(1),
        }
    }

    #[test]
    fn sort_keys_are_fixed_width_so_string_order_is_time_order() {
        let a = Utc
            .with_ymd_and_hms(2026, 11, 20, 9, 5, 0)
            .single()
            .unwrap_or_default();
        let b = a + chrono::Duration::milliseconds(7);
        let c = a + chrono::Duration::hours(1);
        let keys = [sort_key(a, "z"), sort_key(b, "a"), sort_key(c, "m")];
        assert_eq!(keys[0], "2026-11-20T09:05:00.000Z#z");
        assert!(keys[0] < keys[1] && keys[1] < keys[2], "{keys:?}");
        assert!(keys.iter().all(|k| k.len() == keys[0].len()));
    }

    #[test]
    fn the_journal_answers_the_query_like_lookup_events_would() {
        let iam = change("1", 5, "iam.amazonaws.com");
        let s3 = change("2", 6, "s3.amazonaws.com");
        assert!(wanted(&iam, &query(&["iam.amazonaws.com"], &[])));
        assert!(!wanted(&s3, &query(&["iam.amazonaws.com"], &[])));
        // The function's own calls, wherever they went.
        assert!(wanted(
            &s3,
            &query(&["iam.amazonaws.com"], &["order-lookup"])
        ));
        assert!(wanted(&s3, &query(&[], &[])));
    }

    #[test]
    fn expired_and_unreadable_entries_are_told_apart() {
        let c = change("1", 5, "iam.amazonaws.com");
        let item = |expires: &str, json: &str| {
            HashMap::from([
                (ATTR_SK.to_string(), AttributeValue::S("k".into())),
                (
                    ATTR_EXPIRES_AT.to_string(),
                    AttributeValue::N(expires.into()),
                ),
                (ATTR_CHANGE.to_string(), AttributeValue::S(json.into())),
            ])
        };
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert!(matches!(entry(&item("200", &json), 100), Entry::Live(_)));
        assert!(matches!(entry(&item("100", &json), 100), Entry::Expired));
        assert!(matches!(
            entry(&item("200", "{"), 100),
            Entry::Unreadable(_)
        ));
    }

    #[test]
    fn merging_keeps_the_first_copy_of_each_event_and_both_missing_lists() {
        let journal = ChangeBatch {
            changes: vec![change("b", 9, "iam.amazonaws.com")],
            sources: vec![JOURNAL_SOURCE.into()],
            missing: Vec::new(),
        };
        let mut dup = change("b", 9, "iam.amazonaws.com");
        dup.event_name = "from-lookup".into();
        let lookup = ChangeBatch {
            changes: vec![dup, change("a", 1, "iam.amazonaws.com")],
            sources: Vec::new(),
            missing: vec![MissingContext {
                source: "iam.amazonaws.com".into(),
                reason: "LookupEvents throttled".into(),
            }],
        };
        let merged = merge(journal, lookup);
        let ids: Vec<&str> = merged.changes.iter().map(|c| c.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(merged.changes.iter().all(|c| c.event_name != "from-lookup"));
        assert_eq!(merged.sources, [JOURNAL_SOURCE]);
        assert_eq!(merged.missing.len(), 1);
    }
}
