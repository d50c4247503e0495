//! The noise-control state against the local AWS (moto's DynamoDB over real HTTP, serialized
//! per request like DynamoDB's per-item atomicity): claims under concurrency, conditional group
//! writes, threads added concurrently, the rate limiter under concurrent callers, digests,
//! silences, and the ledger read back by correlation id and by time.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, TimeDelta, Utc};
use vigil_adapters::state::{
    CORRELATION_INDEX, DynamoState, SILENCE_PARTITION, claim_partition, ledger_partition,
};
use vigil_core::model::{Kind, Severity};
use vigil_core::noise::{
    ChannelResult, DIGEST_TITLES, GroupState, LedgerEntry, MatchField, MatchOp, Matcher, Outcome,
    Phase, Silence, Slot, Thread,
};
use vigil_core::ports::{Claim, StateStore};
use vigil_testkit::LocalAws;

const TABLE: &str = "vigil-state-test";
const LEASE: Duration = Duration::from_secs(300);
const TTL: Duration = Duration::from_secs(48 * 3_600);

/// The table as `template.yaml` declares it: `pk`/`sk`, the `by-correlation` index, TTL.
async fn table(aws: &LocalAws) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(TABLE)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("cid"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(CORRELATION_INDEX)
                .key_schema(key("cid", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("table created");
    client
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TTL enabled");
    client
}

async fn state(aws: &LocalAws) -> (aws_sdk_dynamodb::Client, Arc<DynamoState>) {
    let client = table(aws).await;
    (client.clone(), Arc::new(DynamoState::new(client, TABLE)))
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn item(
    client: &aws_sdk_dynamodb::Client,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_event_have_exactly_one_owner() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    let now = Utc::now();
    for round in 0..5 {
        let id = format!("evt-{round}");
        let claims = futures::future::join_all((0..8).map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.claim(&id, now, LEASE, TTL).await })
        }))
        .await;
        let claims: Vec<Claim> = claims.into_iter().map(|c| c.unwrap().unwrap()).collect();
        let owned = claims.iter().filter(|c| **c == Claim::Owned).count();
        assert_eq!(owned, 1, "round {round}: {claims:?}");
        for c in claims.iter().filter(|c| **c != Claim::Owned) {
            let Claim::Duplicate {
                in_progress,
                claimed_at,
            } = c
            else {
                unreachable!()
            };
            assert!(*in_progress, "the owner is still working: {c:?}");
            assert_eq!(claimed_at.timestamp_millis(), now.timestamp_millis());
        }
    }
    // The duplicates learnt the holder from the failed write itself.
    let reads = aws.requests("service=dynamodb&operation=GetItem").await;
    assert!(
        reads.is_empty(),
        "ReturnValuesOnConditionCheckFailure answered, no GetItem needed: {reads:?}"
    );
    let stored = item(&client, &claim_partition("evt-0"), "claim")
        .await
        .unwrap();
    assert_eq!(stored["status"].as_s().unwrap(), "claimed");
    assert_eq!(number(&stored, "claimed_at"), now.timestamp_millis());
    assert_eq!(number(&stored, "expires_at"), now.timestamp() + 48 * 3_600);
}

#[tokio::test(flavor = "multi_thread")]
async fn done_is_a_duplicate_released_is_owned_again_and_a_dead_lease_is_taken_over() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    let t0 = at("2026-11-20T09:00:00.250Z");

    // Handled: later deliveries are duplicates, not in progress.
    assert_eq!(
        store.claim("done-1", t0, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );
    store.settle("done-1", true).await.unwrap();
    let later = t0 + TimeDelta::hours(1);
    assert_eq!(
        store.claim("done-1", later, LEASE, TTL).await.unwrap(),
        Claim::Duplicate {
            in_progress: false,
            claimed_at: t0
        }
    );
    // A late release by an invocation whose lease ran out never reopens a done event.
    store.settle("done-1", false).await.unwrap();
    assert!(matches!(
        store.claim("done-1", later, LEASE, TTL).await.unwrap(),
        Claim::Duplicate {
            in_progress: false,
            ..
        }
    ));
    // Past its TTL, a done claim no longer counts (DynamoDB deletes it lazily).
    let after_ttl = t0 + TimeDelta::hours(49);
    assert_eq!(
        store.claim("done-1", after_ttl, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );

    // Released (every channel failed): the retry owns it again.
    assert_eq!(
        store.claim("fail-1", t0, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );
    store.settle("fail-1", false).await.unwrap();
    assert!(
        item(&client, &claim_partition("fail-1"), "claim")
            .await
            .is_none()
    );
    let retry = t0 + TimeDelta::seconds(5);
    assert_eq!(
        store.claim("fail-1", retry, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );

    // An invocation that died: its lease blocks until it runs out, then a retry takes over.
    assert_eq!(
        store.claim("dead-1", t0, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );
    let inside = t0 + TimeDelta::seconds(299);
    assert_eq!(
        store.claim("dead-1", inside, LEASE, TTL).await.unwrap(),
        Claim::Duplicate {
            in_progress: true,
            claimed_at: t0
        }
    );
    let expired = t0 + TimeDelta::seconds(300);
    assert_eq!(
        store.claim("dead-1", expired, LEASE, TTL).await.unwrap(),
        Claim::Owned
    );
    // The new owner's lease now runs from its own claim.
    assert_eq!(
        store
            .claim("dead-1", expired + TimeDelta::seconds(10), LEASE, TTL)
            .await
            .unwrap(),
        Claim::Duplicate {
            in_progress: true,
            claimed_at: expired
        }
    );

    // Marking an event done that nobody claimed is an error, and not worth retrying.
    let err = store.settle("never-claimed", true).await.unwrap_err();
    assert_eq!(err.operation, "settle");
    assert!(!err.retryable);
    assert!(err.reason.contains(TABLE), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Groups and pointers
// ---------------------------------------------------------------------------------------------

fn group(key: &str, version: u64, count: u32) -> GroupState {
    let t = at("2026-11-20T09:00:00Z");
    GroupState {
        key: key.into(),
        kind: Kind::ThrottleSpike,
        title: "Bedrock throttling on claude".into(),
        first_correlation_id: "corr-1".into(),
        opened_at: t,
        last_at: t + TimeDelta::minutes(i64::from(count)),
        phase: Phase::Firing,
        count,
        folded: 0,
        replies: 0,
        transitions: Vec::new(),
        flapping_since: None,
        threads: Vec::new(),
        version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_writes_are_conditional_on_the_version_read() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    let key = "123456789012|us-east-1|throttle_spike|arn:aws:bedrock:model";
    assert_eq!(store.group(key).await.unwrap(), None);

    assert!(store.put_group(&group(key, 1, 1), None, TTL).await.unwrap());
    // A second "first" writer lost the race: read again and decide again.
    assert!(!store.put_group(&group(key, 1, 1), None, TTL).await.unwrap());
    assert_eq!(store.group(key).await.unwrap(), Some(group(key, 1, 1)));

    // Eight writers decided on version 1: exactly one wins.
    let results = futures::future::join_all((0..8u32).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let g = group(key, 2, 10 + i);
            (i, store.put_group(&g, Some(1), TTL).await.unwrap())
        })
    }))
    .await;
    let winners: Vec<u32> = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|(_, won)| *won)
        .map(|(i, _)| i)
        .collect();
    let [winner] = winners.as_slice() else {
        panic!("exactly one winner: {winners:?}")
    };
    let stored = store.group(key).await.unwrap().unwrap();
    assert_eq!(stored, group(key, 2, 10 + winner));
    let raw = item(&client, &format!("group#{key}"), "group")
        .await
        .unwrap();
    assert_eq!(number(&raw, "version"), 2);
    assert!((number(&raw, "expires_at") - (Utc::now().timestamp() + 48 * 3_600)).abs() < 60);
    // A stale version loses.
    assert!(
        !store
            .put_group(&group(key, 2, 99), Some(1), TTL)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn threads_added_concurrently_are_all_kept_and_stale_deciders_read_again() {
    let aws = LocalAws::start().await;
    let (_client, store) = state(&aws).await;
    let key = "acct|us-east-1|error_spike|fn";
    assert!(store.put_group(&group(key, 1, 1), None, TTL).await.unwrap());

    let added = futures::future::join_all((0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let t = Thread {
                channel: format!("#team-{i}"),
                ts: format!("1732800000.00010{i}"),
            };
            store.add_thread(key, &t).await
        })
    }))
    .await;
    for a in added {
        a.unwrap().unwrap();
    }
    let stored = store.group(key).await.unwrap().unwrap();
    let mut channels: Vec<&str> = stored.threads.iter().map(|t| t.channel.as_str()).collect();
    channels.sort_unstable();
    assert_eq!(
        channels,
        (0..8).map(|i| format!("#team-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(stored.version, 9, "each thread bumped the version");
    assert_eq!(stored.count, 1, "the rest of the state is untouched");

    // Adding the same thread again changes nothing.
    let again = stored.threads[0].clone();
    store.add_thread(key, &again).await.unwrap();
    assert_eq!(store.group(key).await.unwrap().unwrap().version, 9);

    // Someone who decided on version 1 (without the threads) cannot overwrite them.
    assert!(
        !store
            .put_group(&group(key, 2, 2), Some(1), TTL)
            .await
            .unwrap()
    );
    assert_eq!(store.group(key).await.unwrap().unwrap().threads.len(), 8);

    // A thread for a group that is not stored is an error, not a new item.
    let err = store.add_thread("no-such-group", &again).await.unwrap_err();
    assert_eq!(err.operation, "add_thread");
    assert!(!err.retryable);
    assert_eq!(store.group("no-such-group").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_pointer_leads_to_its_group() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    let pointer = "alarm|123456789012|us-east-1|bedrock-throttles";
    assert_eq!(store.pointed_group(pointer).await.unwrap(), None);
    store.point(pointer, "group-a", TTL).await.unwrap();
    assert_eq!(
        store.pointed_group(pointer).await.unwrap().as_deref(),
        Some("group-a")
    );
    store.point(pointer, "group-b", TTL).await.unwrap();
    assert_eq!(
        store.pointed_group(pointer).await.unwrap().as_deref(),
        Some("group-b")
    );
    let raw = item(&client, &format!("pointer#{pointer}"), "pointer")
        .await
        .unwrap();
    assert_eq!(raw["group_key"].as_s().unwrap(), "group-b");
}

// ---------------------------------------------------------------------------------------------
// Rate limit and digest
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_slots_a_second_apart_within_the_wait_allowed() {
    let aws = LocalAws::start().await;
    let (_client, store) = state(&aws).await;
    let now = Utc::now();
    let interval = Duration::from_secs(1);
    let max_wait = Duration::from_secs(3);
    let slots = futures::future::join_all((0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .reserve_slot("#ai-alerts", now, 1, interval, max_wait)
                .await
        })
    }))
    .await;
    let slots: Vec<Slot> = slots.into_iter().map(|s| s.unwrap().unwrap()).collect();
    let mut starts: Vec<DateTime<Utc>> = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Granted { new_tat, wait } => {
                assert!(*wait <= max_wait, "{s:?}");
                Some(*new_tat - TimeDelta::seconds(1))
            }
            Slot::Limited { .. } => None,
        })
        .collect();
    // Waits of 0, 1, 2 and 3 s fit; the stored tat is rounded up to the millisecond, which
    // can push the fourth a hair past 3 s.
    assert!(
        (3..=4).contains(&starts.len()),
        "at most 4 slots fit in 3 s of waiting: {slots:?}"
    );
    starts.sort();
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= TimeDelta::seconds(1),
            "slots at least 1 s apart: {starts:?}"
        );
    }
    assert!(starts[0] >= now);
    let limited: Vec<&Slot> = slots
        .iter()
        .filter(|s| matches!(s, Slot::Limited { .. }))
        .collect();
    assert_eq!(limited.len() + starts.len(), 10);
    for l in &limited {
        let Slot::Limited { free_at } = l else {
            unreachable!()
        };
        assert!(*free_at > now + max_wait, "{l:?}");
    }

    // Another channel has its own budget.
    assert!(matches!(
        store
            .reserve_slot("#other", now, 2, interval, max_wait)
            .await
            .unwrap(),
        Slot::Granted { wait, .. } if wait.is_zero()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_digest_counts_everything_keeps_the_first_titles_and_is_taken_once() {
    let aws = LocalAws::start().await;
    let (_client, store) = state(&aws).await;
    let t0 = at("2026-11-20T09:31:05Z");
    for i in 0..15 {
        store
            .add_to_digest(
                "#ai-alerts",
                &format!("alert {i}"),
                t0 + TimeDelta::seconds(i),
                TTL,
            )
            .await
            .unwrap();
    }
    // Concurrent adds are all counted too.
    let adds = futures::future::join_all((0..5).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .add_to_digest("#burst", &format!("burst {i}"), t0, TTL)
                .await
        })
    }))
    .await;
    for a in adds {
        a.unwrap().unwrap();
    }

    let digest = store.take_digest("#ai-alerts").await.unwrap().unwrap();
    assert_eq!(digest.channel, "#ai-alerts");
    assert_eq!(digest.count, 15);
    assert_eq!(digest.since, t0, "since is the first fold");
    assert_eq!(digest.titles.len(), DIGEST_TITLES);
    assert_eq!(
        digest.titles,
        (0..DIGEST_TITLES)
            .map(|i| format!("alert {i}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(store.take_digest("#ai-alerts").await.unwrap(), None);

    let burst = store.take_digest("#burst").await.unwrap().unwrap();
    assert_eq!(burst.count, 5);
    assert_eq!(burst.titles.len(), 5);

    // After a take, a new digest starts from scratch.
    let t1 = t0 + TimeDelta::minutes(5);
    store
        .add_to_digest("#ai-alerts", "late", t1, TTL)
        .await
        .unwrap();
    let next = store.take_digest("#ai-alerts").await.unwrap().unwrap();
    assert_eq!(
        (next.count, next.since, next.titles),
        (1, t1, vec!["late".to_string()])
    );
}

// ---------------------------------------------------------------------------------------------
// Silences
// ---------------------------------------------------------------------------------------------

fn silence(id: &str, starts: DateTime<Utc>, ends: DateTime<Utc>) -> Silence {
    Silence {
        id: id.into(),
        matchers: vec![Matcher {
            field: MatchField::Name,
            op: MatchOp::Matches,
            value: "bedrock-*".into(),
        }],
        starts_at: starts,
        ends_at: ends,
        author: "arn:aws:iam::123456789012:user/alice".into(),
        reason: "maintenance".into(),
        created_at: starts - TimeDelta::minutes(1),
        expired_by: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silences_are_listed_in_order_expired_early_and_only_active_ones_apply() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    let now = at("2026-11-20T12:00:00Z");
    let hour = TimeDelta::hours(1);
    let keep = Duration::from_secs(7 * 24 * 3_600);
    let ended = silence("sil-000000000001", now - hour * 3, now - hour);
    let active = silence("sil-000000000002", now - hour, now + hour);
    let future = silence("sil-000000000003", now + hour, now + hour * 2);
    for s in [&future, &ended, &active] {
        store.put_silence(s, keep).await.unwrap();
    }
    let raw = item(&client, SILENCE_PARTITION, &active.id).await.unwrap();
    assert_eq!(number(&raw, "ends_at"), active.ends_at.timestamp());
    assert_eq!(
        number(&raw, "expires_at"),
        active.ends_at.timestamp() + 7 * 24 * 3_600
    );

    let ids = |list: Vec<Silence>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.silences(false, now).await.unwrap()),
        [active.id.clone(), future.id.clone()]
    );
    assert_eq!(
        ids(store.silences(true, now).await.unwrap()),
        [ended.id.clone(), active.id.clone(), future.id.clone()]
    );
    assert_eq!(
        store.active_silences(now).await.unwrap(),
        vec![active.clone()]
    );

    // Expired early: ends now, says by whom, no longer applies, still listed with --all.
    let later = now + TimeDelta::minutes(10);
    let expired = store
        .expire_silence(&active.id, "bob", later)
        .await
        .unwrap();
    assert_eq!(expired.ends_at, later);
    assert_eq!(expired.expired_by.as_deref(), Some("bob"));
    assert!(store.active_silences(later).await.unwrap().is_empty());
    assert_eq!(
        ids(store.silences(false, later).await.unwrap()),
        vec![future.id.clone()]
    );
    let all = store.silences(true, later).await.unwrap();
    assert_eq!(all[1], expired);
    let raw = item(&client, SILENCE_PARTITION, &active.id).await.unwrap();
    assert_eq!(
        number(&raw, "expires_at"),
        later.timestamp() + 7 * 24 * 3_600,
        "kept as long after its new end"
    );
    // Expiring one that already ended keeps its end.
    let again = store.expire_silence(&ended.id, "bob", later).await.unwrap();
    assert_eq!(again.ends_at, ended.ends_at);

    let err = store
        .expire_silence("sil-ffffffffffff", "bob", later)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "expire_silence");
    assert!(!err.retryable);
    assert!(err.reason.contains("sil-ffffffffffff"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------

fn entry(i: i64, at: DateTime<Utc>, correlation_id: &str) -> LedgerEntry {
    LedgerEntry {
        at,
        correlation_id: correlation_id.into(),
        function: "handle-alarm".into(),
        outcome: if i % 3 == 0 {
            Outcome::Sent
        } else {
            Outcome::Folded
        },
        reason: Some(format!("entry {i}")),
        kind: Some(Kind::ThrottleSpike),
        severity: Some(Severity::High),
        name: "bedrock-throttles".into(),
        group_key: Some("g".into()),
        channels: vec![ChannelResult {
            channel: "slack".into(),
            ok: true,
            detail: Some(format!("1732800000.{i:06}")),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_reads_back_by_correlation_id_and_by_time() {
    let aws = LocalAws::start().await;
    let (client, store) = state(&aws).await;
    // 50 entries two minutes apart from 09:10 (so across the 09 and 10 hours), alternating
    // between two correlation ids; written concurrently in shuffled order.
    let base = at("2026-11-20T09:10:00.000Z");
    let all: Vec<LedgerEntry> = (0..50)
        .map(|i| {
            let cid = if i % 2 == 0 { "corr-a" } else { "corr-b" };
            entry(i, base + TimeDelta::minutes(2 * i), cid)
        })
        .collect();
    let writes = futures::future::join_all(all.iter().rev().cloned().map(|e| {
        let store = store.clone();
        tokio::spawn(async move { store.record(&e, TTL).await })
    }))
    .await;
    for w in writes {
        w.unwrap().unwrap();
    }
    // One entry without a correlation id: in the time partitions, not in the index.
    let lone = entry(99, base + TimeDelta::seconds(30), "");
    store.record(&lone, TTL).await.unwrap();

    let hours = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(ledger_partition(base)))
        .send()
        .await
        .unwrap();
    assert_eq!(hours.count, 26, "09:10..09:58 and the lone entry");
    let row = &hours.items()[0];
    assert!(
        row["sk"]
            .as_s()
            .unwrap()
            .starts_with("2026-11-20T09:10:00.000Z#corr-a#")
    );
    assert_eq!(row["cid"].as_s().unwrap(), "corr-a");
    assert_eq!(row["outcome"].as_s().unwrap(), "sent");

    let a = store.ledger_by_correlation("corr-a").await.unwrap();
    let expected_a: Vec<LedgerEntry> = all.iter().step_by(2).cloned().collect();
    assert_eq!(a, expected_a, "every row of corr-a, oldest first");
    let b = store.ledger_by_correlation("corr-b").await.unwrap();
    assert_eq!(b.len(), 25);
    assert!(b.iter().all(|e| e.correlation_id == "corr-b"));
    assert!(b.windows(2).all(|w| w[0].at < w[1].at));
    assert!(
        store
            .ledger_by_correlation("corr-c")
            .await
            .unwrap()
            .is_empty()
    );

    // 09:30 to 10:10 inclusive: entries 10..=30, across both hour partitions.
    let since = at("2026-11-20T09:30:00Z");
    let until = at("2026-11-20T10:10:00Z");
    let window = store.ledger_since(since, until, 100).await.unwrap();
    assert_eq!(window, all[10..=30].to_vec());
    // The limit keeps the oldest.
    let first5 = store.ledger_since(since, until, 5).await.unwrap();
    assert_eq!(first5, all[10..15].to_vec());
    let across = store
        .ledger_since(at("2026-11-20T09:55:00Z"), until, 4)
        .await
        .unwrap();
    assert_eq!(across, all[23..27].to_vec(), "the limit spans partitions");
    // The whole day, with the lone entry in its place.
    let day = store
        .ledger_since(
            at("2026-11-20T00:00:00Z"),
            at("2026-11-20T23:59:59Z"),
            1_000,
        )
        .await
        .unwrap();
    assert_eq!(day.len(), 51);
    assert_eq!(day[1], lone);
    assert!(
        store
            .ledger_since(until, since, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .ledger_since(since, until, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn failures_name_the_operation_and_the_table_and_say_whether_to_retry() {
    let aws = LocalAws::start().await;
    let client = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let store = DynamoState::new(client, "no-such-table");
    let err = store
        .claim("evt", Utc::now(), LEASE, TTL)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "claim");
    assert!(err.reason.contains("no-such-table"), "{err}");
    assert!(err.reason.contains("ResourceNotFound"), "{err}");
    assert!(!err.retryable, "a missing table stays missing");

    let err = store
        .record(&entry(1, Utc::now(), "corr-secret-title"), TTL)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "record");
    assert!(!err.reason.contains("entry 1"), "no item contents: {err}");

    // A DynamoDB that fails on the server side: worth retrying.
    let (_client, store) = state(&aws).await;
    aws.faults(serde_json::json!({
        "service": "dynamodb", "operation": "GetItem", "mode": "error500", "count": 10
    }))
    .await;
    let err = store.group("k").await.unwrap_err();
    assert_eq!(err.operation, "group");
    assert!(err.retryable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_table_opens_the_breaker_so_later_calls_fail_at_once_but_the_ledger_is_tried() {
    let aws = LocalAws::start().await;
    let client = table(&aws).await;
    let store = DynamoState::new(client, TABLE).with_breaker(Duration::from_secs(60));
    aws.faults(serde_json::json!({"service": "dynamodb", "mode": "error500", "count": 1000}))
        .await;
    let first = store
        .claim("evt", Utc::now(), LEASE, TTL)
        .await
        .unwrap_err();
    assert!(first.reason.contains("InternalFailure"), "{first}");
    let sent = aws.requests("service=dynamodb").await.len();
    assert!(sent >= 1, "the first call reached the table");

    // While open: no request reaches the table, and the error says why it was skipped.
    let group = store.group("k").await.unwrap_err();
    assert_eq!(group.operation, "group");
    assert!(group.retryable);
    assert!(
        group.reason.contains("skipped: the table failed"),
        "{group}"
    );
    assert!(group.reason.contains("InternalFailure"), "{group}");
    assert!(store.active_silences(Utc::now()).await.is_err());
    assert_eq!(aws.requests("service=dynamodb").await.len(), sent);

    // The ledger is the record of what happened: it is still tried, and once the table
    // answers again, it is written.
    aws.clear_faults().await;
    store
        .record(&entry(1, Utc::now(), "corr-breaker"), TTL)
        .await
        .expect("the ledger write goes through the open breaker");
    assert_eq!(aws.requests("service=dynamodb").await.len(), sent + 1);
    assert_eq!(
        store
            .ledger_by_correlation("corr-breaker")
            .await
            .unwrap()
            .len(),
        1
    );

    // A failed condition (a duplicate claim) is an answer, not an outage: it opens nothing.
    let healthy =
        DynamoState::new(table_client(&aws).await, TABLE).with_breaker(Duration::from_secs(60));
    assert_eq!(
        healthy
            .claim("evt-2", Utc::now(), LEASE, TTL)
            .await
            .unwrap(),
        Claim::Owned
    );
    assert!(matches!(
        healthy
            .claim("evt-2", Utc::now(), LEASE, TTL)
            .await
            .unwrap(),
        Claim::Duplicate { .. }
    ));
    assert!(healthy.group("k").await.is_ok(), "breaker still closed");
}

async fn table_client(aws: &LocalAws) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws.sdk_config().await)
}
