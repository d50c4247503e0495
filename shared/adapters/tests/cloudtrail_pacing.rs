//! The `LookupEvents` adapter at its quota, against the local AWS over real HTTP: pacing
//! across concurrent lookups in one process (proved from the server's own request log),
//! pagination and its cap, throttling with backoff, failures, and the warm-invocation cache.

// Test helpers fail loudly on purpose: a missing fixture or an unexpected shape is a broken test.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_adapters::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig};
use vigil_core::enrich;
use vigil_core::ports::{ChangeBatch, ChangeQuery, ChangeSource};
use vigil_testkit::LocalAws;

/// The account the local AWS answers as.
use vigil_testkit::ACCOUNT_ID as LOCAL_ACCOUNT;

const SOURCES: [&str; 6] = [
    "iam.amazonaws.com",
    "bedrock.amazonaws.com",
    "lambda.amazonaws.com",
    "s3.amazonaws.com",
    "kms.amazonaws.com",
    "sts.amazonaws.com",
];

/// A write call by a deployment role; ids are unique per (source, n).
fn write_record(source_index: usize, n: usize, at: DateTime<Utc>) -> Value {
    let source = SOURCES
        .get(source_index)
        .copied()
        .unwrap_or("iam.amazonaws.com");
    let id = format!("00000000-0000-4000-8{source_index:03}-{n:012}");
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole", "principalId": "AROAEXAMPLEDEPLOYER:gha-run-77",
            "arn": format!("arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/deployer/gha-run-77"),
            "accountId": LOCAL_ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEDEPLOYER",
                "arn": format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/deployer"), "accountId": LOCAL_ACCOUNT, "userName": "deployer"}}
        },
        "eventTime": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "eventSource": source, "eventName": "TagResource", "awsRegion": "us-east-1",
        "sourceIPAddress": "172.178.41.9", "userAgent": "aws-sdk-go-v2/1.39.5",
        "requestParameters": {}, "responseElements": null,
        "requestID": id, "eventID": id, "readOnly": false, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": LOCAL_ACCOUNT, "eventCategory": "Management"
    })
}

/// `per_source` writes in each of the first `sources` sources, spread over the last 50 minutes.
async fn seed(aws: &LocalAws, now: DateTime<Utc>, sources: usize, per_source: usize) -> usize {
    let mut records = Vec::new();
    for s in 0..sources {
        for n in 0..per_source {
            let secs = 60 + (n as i64 * 2_940) / per_source.max(1) as i64;
            records.push(write_record(s, n, now - chrono::Duration::seconds(secs)));
        }
    }
    let total = records.len();
    aws.seed_cloudtrail(Value::Array(records)).await;
    total
}

fn query(now: DateTime<Utc>, sources: &[&str], budget: Duration) -> ChangeQuery {
    ChangeQuery {
        window: enrich::window_for(now, chrono::Duration::minutes(60)),
        event_sources: sources.iter().map(|s| s.to_string()).collect(),
        principals: Vec::new(),
        budget,
    }
}

async fn lookups(aws: &LocalAws) -> Vec<Value> {
    aws.requests("service=cloudtrail&operation=LookupEvents")
        .await
}

/// Server-side arrival times (monotonic ms), sorted.
fn arrivals(requests: &[Value]) -> Vec<f64> {
    let mut t: Vec<f64> = requests
        .iter()
        .filter_map(|r| r["mono_ms"].as_f64())
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// How far a request may be held up between the pacer's slot and the server's clock on a
/// loaded test machine (a busy scheduler, the single-threaded server still answering the
/// previous request). The pacer keeps 25 ms of margin at the client for the same reason; the
/// server's own 2-per-second token bucket, which is how AWS counts the quota, is checked
/// without any allowance.
const TRANSIT_ALLOWANCE_MS: f64 = 100.0;

/// The most requests any window [t, t + 1 s - allowance) holds.
fn busiest_second(t: &[f64]) -> usize {
    (0..t.len())
        .map(|i| {
            t[i..]
                .iter()
                .take_while(|x| **x - t[i] < 1000.0 - TRANSIT_ALLOWANCE_MS)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn sdk_client(aws: &LocalAws) -> aws_sdk_cloudtrail::Client {
    aws_sdk_cloudtrail::Client::new(&aws.sdk_config().await)
}

#[tokio::test]
async fn concurrent_lookups_in_one_process_never_exceed_two_requests_per_second() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    let seeded = seed(&aws, now, 6, 55).await;
    assert!(seeded >= 300);

    // Three handlers of one process (think: three alarms of a storm on one warm Lambda), each
    // with its own source and cache, all on the process-wide pacer, all at once.
    let handlers: Vec<CloudTrailChangeSource> = (0..3)
        .map(|_| CloudTrailChangeSource::new(&client, CloudTrailConfig::default()))
        .collect();
    let q = query(now, &SOURCES, Duration::from_secs(90));
    let started = Instant::now();
    let batches: Vec<ChangeBatch> =
        futures::future::join_all(handlers.iter().map(|h| h.changes(&q))).await;
    let elapsed = started.elapsed();

    for b in &batches {
        assert!(b.missing.is_empty(), "{:?}", b.missing);
        assert_eq!(b.sources.len(), 6);
        assert_eq!(
            b.changes.len(),
            seeded,
            "every page of every source was read"
        );
    }
    let requests = lookups(&aws).await;
    // 55 events per source: two pages each (50 + 5), six sources, three handlers.
    assert_eq!(requests.len(), 3 * 6 * 2, "one request per page");
    assert!(
        requests.iter().all(|r| r["handled_by"] == "vigil"),
        "paced requests are never throttled by the server's 2/s bucket"
    );
    let t = arrivals(&requests);
    for w in t.windows(3) {
        assert!(
            w[2] - w[0] >= 1000.0 - TRANSIT_ALLOWANCE_MS,
            "three LookupEvents within one second (less {TRANSIT_ALLOWANCE_MS} ms in transit) at the server: {w:?}"
        );
    }
    let busiest = busiest_second(&t);
    assert!(busiest <= 2, "busiest second held {busiest} requests");
    let span = (t.last().copied().unwrap_or(0.0) - t.first().copied().unwrap_or(0.0)) / 1000.0;
    println!(
        "LookupEvents pacing: {} requests in {:.2} s at the server ({:.2} req/s between first and last; \
         {:.2} req/s over the client's {:.2} s); busiest 1-s window: {busiest}",
        t.len(),
        span,
        (t.len() as f64 - 1.0) / span,
        t.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn a_repeated_query_within_the_ttl_makes_no_new_request() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    seed(&aws, now, 2, 10).await;
    let q = query(now, &SOURCES[..2], Duration::from_secs(20));

    let source = CloudTrailChangeSource::new(&client, CloudTrailConfig::default());
    let first = source.changes(&q).await;
    assert_eq!(first.changes.len(), 20);
    assert_eq!(lookups(&aws).await.len(), 2);
    let second = source.changes(&q).await;
    assert_eq!(second, first, "the same answer");
    assert_eq!(
        lookups(&aws).await.len(),
        2,
        "from the cache: no new request"
    );

    // The cache lives in the source (one per warm Lambda): a new one asks again.
    let cold = CloudTrailChangeSource::new(&client, CloudTrailConfig::default());
    assert_eq!(cold.changes(&q).await.changes.len(), 20);
    assert_eq!(lookups(&aws).await.len(), 4);

    // After the TTL the lookup is made again.
    let short = CloudTrailChangeSource::new(
        &client,
        CloudTrailConfig {
            cache_ttl: Duration::from_millis(300),
            ..CloudTrailConfig::default()
        },
    );
    short.changes(&q).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    short.changes(&q).await;
    assert_eq!(lookups(&aws).await.len(), 8);
}

#[tokio::test]
async fn a_throttled_lookup_backs_off_and_completes() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    seed(&aws, now, 1, 10).await;
    aws.faults(json!({"service": "cloudtrail", "operation": "LookupEvents", "mode": "throttle", "count": 3})).await;

    let source = CloudTrailChangeSource::new(&client, CloudTrailConfig::default());
    let batch = source
        .changes(&query(now, &SOURCES[..1], Duration::from_secs(20)))
        .await;
    assert!(batch.missing.is_empty(), "{:?}", batch.missing);
    assert_eq!(batch.changes.len(), 10);

    let requests = lookups(&aws).await;
    let handled: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["handled_by"].as_str())
        .collect();
    assert_eq!(
        handled,
        vec![
            "fault:throttle",
            "fault:throttle",
            "fault:throttle",
            "vigil"
        ],
        "no SDK retries behind our back"
    );
}

#[tokio::test]
async fn the_page_cap_stops_a_source_and_says_so() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    seed(&aws, now, 1, 120).await;

    let source = CloudTrailChangeSource::new(
        &client,
        CloudTrailConfig {
            max_pages_per_source: 2,
            ..CloudTrailConfig::default()
        },
    );
    let batch = source
        .changes(&query(now, &SOURCES[..1], Duration::from_secs(20)))
        .await;
    assert_eq!(batch.changes.len(), 100, "two pages of 50, newest first");
    assert!(batch.sources.is_empty());
    let m = batch.missing.first().expect("reported");
    assert!(
        m.reason.contains("cap of 2 page(s)") && m.reason.contains("not searched"),
        "{m:?}"
    );
    assert_eq!(lookups(&aws).await.len(), 2);
}

#[tokio::test]
async fn a_failed_source_is_reported_and_the_others_still_answer() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    seed(&aws, now, 3, 5).await;
    aws.faults(json!({"service": "cloudtrail", "operation": "LookupEvents", "mode": "error500", "count": 1})).await;

    let source = CloudTrailChangeSource::new(&client, CloudTrailConfig::default());
    let batch = source
        .changes(&query(now, &SOURCES[..3], Duration::from_secs(20)))
        .await;
    assert_eq!(batch.sources.len(), 2, "{batch:?}");
    assert_eq!(batch.changes.len(), 10);
    let m = batch.missing.first().expect("reported");
    assert!(
        m.reason.contains("LookupEvents failed: InternalFailure")
            && m.reason.contains("2 of 3 sources searched"),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_budget_too_short_for_every_page_returns_what_it_found() {
    let aws = LocalAws::start().await;
    let client = sdk_client(&aws).await;
    let now = Utc::now();
    seed(&aws, now, 1, 160).await;
    // One request a second, four pages to read, under two seconds to read them.
    let source = CloudTrailChangeSource::new(
        &client,
        CloudTrailConfig {
            requests_per_second: 1.0,
            max_pages_per_source: 10,
            ..CloudTrailConfig::default()
        },
    )
    .with_pacer(vigil_adapters::cloudtrail::LookupPacer::new());
    let budget = Duration::from_millis(1800);
    let started = Instant::now();
    let batch = source.changes(&query(now, &SOURCES[..1], budget)).await;
    assert!(
        started.elapsed() < budget + Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(batch.changes.len(), 100, "pages 1 and 2 are kept");
    let m = batch.missing.first().expect("reported");
    assert!(
        m.reason
            .starts_with("budget of 1.8 s spent before the next request slot")
            && m.reason.contains("(after page 2 of iam.amazonaws.com)"),
        "{m:?}"
    );
}
