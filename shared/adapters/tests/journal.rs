//! The change journal against the local AWS (moto's DynamoDB, over real HTTP): what the
//! event function records is read back by window, expired entries are ignored although the
//! table still holds them (moto, like DynamoDB for a while, does not delete them), an
//! unusable journal is missing context rather than an error, and `JournalFirst` still
//! answers from the journal while `LookupEvents` is throttled the whole time.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_adapters::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig, LookupPacer};
use vigil_adapters::config::AwsClients;
use vigil_adapters::journal::{
    ChangeJournal, JOURNAL_SOURCE, JournalChangeSource, JournalFirst, Recorded, partition_key,
    sort_key,
};
use vigil_core::enrich::Window;
use vigil_core::model::Change;
use vigil_core::ports::{ChangeQuery, ChangeSource};
use vigil_testkit::{ACCOUNT_ID, LocalAws, repo_root};

const TABLE: &str = "vigil-test";
const TTL: Duration = Duration::from_secs(48 * 3_600);

async fn dynamodb(aws: &LocalAws) -> aws_sdk_dynamodb::Client {
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

/// The demo's `DetachRolePolicy` record (or another of its events), moved to `time`.
fn record(event_name: &str, time: DateTime<Utc>) -> Value {
    let path = repo_root().join(
        "examples/demo/agent-tool-access-denied/trail/111122223333_CloudTrail_us-east-1_20261120T0910Z_mSkMQyocPmboHpk6.json",
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut r = doc["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eventName"] == event_name)
        .cloned()
        .unwrap_or_else(|| panic!("no {event_name} in the demo trail"));
    r["eventTime"] = json!(time.to_rfc3339_opts(SecondsFormat::Secs, true));
    r
}

fn change(event_name: &str, time: DateTime<Utc>) -> Change {
    vigil_core::cloudtrail::parse_record(&record(event_name, time)).expect("a change")
}

/// `DetachRolePolicy` ten minutes ago, with a fresh event id.
fn detach(id: &str) -> Change {
    let mut c = change(
        "DetachRolePolicy",
        Utc::now() - chrono::Duration::minutes(10),
    );
    c.event_id = id.to_string();
    c
}

fn query(minutes_back: i64, budget: Duration) -> ChangeQuery {
    let end = Utc::now();
    ChangeQuery {
        window: Window {
            start: end - chrono::Duration::minutes(minutes_back),
            end,
        },
        event_sources: vec![
            "iam.amazonaws.com".to_string(),
            "bedrock.amazonaws.com".to_string(),
        ],
        principals: Vec::new(),
        budget,
    }
}

fn reader(client: &aws_sdk_dynamodb::Client, region: &str) -> JournalChangeSource {
    JournalChangeSource::new(client.clone(), TABLE, ACCOUNT_ID, region)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_change_is_read_back_within_its_window_and_only_there() {
    let aws = LocalAws::start().await;
    let client = dynamodb(&aws).await;
    let journal = ChangeJournal::new(client.clone(), TABLE);
    let c = detach("detach-1");

    assert_eq!(journal.record(&c, TTL).await.unwrap(), Recorded::New);
    // EventBridge delivers at least once: the second write changes nothing.
    assert_eq!(
        journal.record(&c, TTL).await.unwrap(),
        Recorded::AlreadyThere
    );

    let item = client
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            AttributeValue::S(partition_key(ACCOUNT_ID, "us-east-1")),
        )
        .key("sk", AttributeValue::S(sort_key(c.time, &c.event_id)))
        .send()
        .await
        .unwrap()
        .item
        .expect("the entry");
    assert_eq!(item["event_name"].as_s().unwrap(), "DetachRolePolicy");
    assert_eq!(item["event_source"].as_s().unwrap(), "iam.amazonaws.com");
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let expected = Utc::now().timestamp() + 48 * 3_600;
    assert!((expires - expected).abs() < 60, "{expires} vs {expected}");

    let source = reader(&client, "us-east-1");
    let found = source.changes(&query(60, Duration::from_secs(3))).await;
    assert!(found.missing.is_empty(), "{:?}", found.missing);
    assert_eq!(found.sources, [JOURNAL_SOURCE]);
    let [got] = found.changes.as_slice() else {
        panic!("one change: {found:?}")
    };
    assert_eq!(got, &c, "the change comes back as it was recorded");

    // A window that ends before the change does not see it.
    let earlier = source.changes(&query(5, Duration::from_secs(3))).await;
    assert!(earlier.changes.is_empty(), "{earlier:?}");
    // Nor does another account's partition.
    let other = JournalChangeSource::new(client.clone(), TABLE, "444455556666", "us-east-1")
        .changes(&query(60, Duration::from_secs(3)))
        .await;
    assert!(other.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_entries_are_ignored_though_the_table_still_holds_them() {
    let aws = LocalAws::start().await;
    let client = dynamodb(&aws).await;
    let journal = ChangeJournal::new(client.clone(), TABLE);
    let live = detach("live");
    let stale = detach("stale");
    journal.record(&live, TTL).await.unwrap();
    // Written three hours ago with a one-hour TTL: expired two hours ago.
    journal
        .record_at(
            &stale,
            Duration::from_secs(3_600),
            Utc::now() - chrono::Duration::hours(3),
        )
        .await
        .unwrap();

    let scan = client.scan().table_name(TABLE).send().await.unwrap();
    assert_eq!(
        scan.count, 2,
        "moto does not enforce TTL: both items are there"
    );

    let found = reader(&client, "us-east-1")
        .changes(&query(60, Duration::from_secs(3)))
        .await;
    let ids: Vec<&str> = found.changes.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(ids, ["live"]);
    assert!(found.missing.is_empty(), "{:?}", found.missing);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_that_cannot_be_read_is_missing_context_not_an_error() {
    let aws = LocalAws::start().await;
    let client = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    // No table was created.
    let found = reader(&client, "us-east-1")
        .changes(&query(60, Duration::from_secs(3)))
        .await;
    assert!(found.changes.is_empty());
    assert!(found.sources.is_empty());
    let [missing] = found.missing.as_slice() else {
        panic!("one missing entry: {found:?}")
    };
    assert_eq!(missing.source, JOURNAL_SOURCE);
    assert!(missing.reason.contains("ResourceNotFound"), "{missing:?}");

    let journal = ChangeJournal::new(client, TABLE);
    let err = journal.record(&detach("x"), TTL).await.unwrap_err();
    assert!(!err.retryable(), "a missing table stays missing: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_changes_journaled_in_us_east_1_reach_alarms_in_other_regions() {
    let aws = LocalAws::start().await;
    let client = dynamodb(&aws).await;
    let journal = ChangeJournal::new(client.clone(), TABLE);
    journal.record(&detach("iam-global"), TTL).await.unwrap();
    // A Bedrock change in us-east-1 is regional: it must not reach an alarm in eu-west-1.
    let mut bedrock = detach("bedrock-regional");
    bedrock.event_source = "bedrock.amazonaws.com".into();
    bedrock.event_name = "UpdateGuardrail".into();
    journal.record(&bedrock, TTL).await.unwrap();

    let found = reader(&client, "eu-west-1")
        .changes(&query(60, Duration::from_secs(3)))
        .await;
    let ids: Vec<&str> = found.changes.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(ids, ["iam-global"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_first_answers_from_the_journal_while_lookup_events_throttles_and_says_so() {
    let aws = LocalAws::start().await;
    let config = aws.sdk_config().await;
    let clients = AwsClients::from_sdk_config(&config);
    let client = dynamodb(&aws).await;
    ChangeJournal::new(client.clone(), TABLE)
        .record(&detach("journaled-detach"), TTL)
        .await
        .unwrap();
    aws.faults(json!({"service": "cloudtrail", "mode": "throttle", "count": 1000}))
        .await;

    let source = JournalFirst::new(
        reader(&client, "us-east-1"),
        CloudTrailChangeSource::new(&clients.cloudtrail, CloudTrailConfig::default())
            .with_pacer(LookupPacer::new()),
    );
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let found = source.changes(&query(60, budget)).await;
    let elapsed = started.elapsed();

    let ids: Vec<&str> = found.changes.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(ids, ["journaled-detach"]);
    assert!(
        found.sources.iter().any(|s| s == JOURNAL_SOURCE),
        "{found:?}"
    );
    assert!(
        !found.missing.is_empty(),
        "the LookupEvents part is partial"
    );
    for m in &found.missing {
        assert!(
            ["iam.amazonaws.com", "bedrock.amazonaws.com"].contains(&m.source.as_str()),
            "only the LookupEvents part is partial: {m:?}"
        );
    }
    assert!(
        found.missing.iter().any(|m| m.reason.contains("throttled")),
        "{:?}",
        found.missing
    );
    assert!(
        elapsed < budget + Duration::from_secs(1),
        "answered within the budget: {elapsed:?}"
    );
    let lookups = aws
        .requests("service=cloudtrail&operation=LookupEvents")
        .await;
    assert!(
        !lookups.is_empty(),
        "LookupEvents was asked to fill the gaps"
    );
    assert!(lookups.iter().all(|r| r["status"] == 400));
}
