//! The alarm function's cold start against the local AWS, then one alarm handled with it:
//! the Slack webhook loads from Secrets Manager, the function finds its own account (STS)
//! to read the change journal, and with `LookupEvents` throttled the whole time the demo
//! alarm still names its cause, because the event function had journaled it.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use handle_alarm::config::{self, Config};
use handle_alarm::deps;
use handle_alarm::handler::{Decision, handle};
use serde_json::{Value, json};
use vigil_adapters::config::AwsClients;
use vigil_adapters::journal::ChangeJournal;
use vigil_core::model::Kind;
use vigil_testkit::{ACCOUNT_ID, LocalAws, repo_root};

const TABLE: &str = "vigil";
const CAUSE: &str = "1a61de45-2460-4075-b4bd-e85b42a67cd2";

fn demo(rel: &str) -> std::path::PathBuf {
    repo_root()
        .join("examples/demo/agent-tool-access-denied")
        .join(rel)
}

async fn create_table(client: &aws_sdk_dynamodb::Client) {
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
        .expect("table");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_lookup_events_throttled_the_journal_still_gives_the_demo_alarm_its_cause() {
    let aws = LocalAws::start().await;
    let sdk = aws.sdk_config().await;
    let clients = AwsClients::from_sdk_config(&sdk);
    let webhook = format!(
        "{}/services/T0VIGIL01/B0VIGIL01/coldStartSecret0123456789",
        aws.slack_url()
    );
    clients
        .secrets
        .create_secret()
        .name("vigil/slack")
        .secret_string(json!({ "webhook_url": webhook }).to_string())
        .send()
        .await
        .unwrap();
    let topic = clients
        .sns
        .create_topic()
        .name("vigil-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb).await;

    // What the event function would have journaled from the demo's CloudTrail: the writes
    // and the denied calls.
    let journal = ChangeJournal::new(dynamodb, TABLE);
    let mut files: Vec<_> = std::fs::read_dir(demo("trail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let batch =
            vigil_core::cloudtrail::parse_trail(&std::fs::read_to_string(f).unwrap()).unwrap();
        for c in batch
            .changes
            .iter()
            .filter(|c| c.is_effective_write() || c.is_denied())
        {
            journal.record(c, Duration::from_secs(3_600)).await.unwrap();
        }
    }
    aws.faults(json!({"service": "cloudtrail", "mode": "throttle", "count": 100000}))
        .await;

    let vars: HashMap<&str, String> = HashMap::from([
        (
            config::SLACK_SECRET,
            "secretsmanager:vigil/slack".to_string(),
        ),
        (config::SLACK_API_BASE, aws.slack_url().to_string()),
        (config::SNS_TOPIC_ARN, topic.clone()),
        (config::TABLE_NAME, TABLE.to_string()),
        (config::ENRICH_BUDGET_MS, "5000".to_string()),
    ]);
    let config = Config::from_lookup(|name| Ok(vars.get(name).cloned())).unwrap();
    let deps = deps::build(&config, &sdk).await.expect("cold start");
    let journal_reader = deps
        .enricher
        .change_source()
        .journal()
        .expect("the journal is read first");
    assert_eq!(journal_reader.account(), ACCOUNT_ID, "from STS");
    assert_eq!(journal_reader.region(), "us-east-1");

    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(demo("event.json")).unwrap()).unwrap();
    let now = "2026-11-20T09:17:05Z".parse().unwrap();
    let out = handle(event, &deps, now).await.expect("handled");
    let alert = &out.alerts[0];
    assert_eq!(alert.kind, Kind::AccessDenied, "{out:?}");
    assert_eq!(alert.outcome, Decision::Notified);
    assert!(alert.context_partial, "LookupEvents was throttled");
    assert!(alert.deliveries.iter().all(|d| d.ok), "{out:?}");

    let posts = aws.slack_requests().await;
    let body = posts
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/services/"))
        })
        .expect("a webhook post")["body"]
        .to_string();
    assert!(body.contains("DetachRolePolicy"), "{body}");
    assert!(body.contains(CAUSE), "the cause's event id: {body}");
    // Which words say why depends on timing (throttled, or out of budget mid-request on a
    // loaded machine); that the context is reported missing does not.
    assert!(body.contains("Context missing from"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_secret_that_does_not_exist_stops_the_cold_start_naming_the_variable() {
    let aws = LocalAws::start().await;
    let sdk = aws.sdk_config().await;
    let vars: HashMap<&str, String> = HashMap::from([(
        config::SLACK_SECRET,
        "secretsmanager:vigil/nowhere".to_string(),
    )]);
    let config = Config::from_lookup(|name| Ok(vars.get(name).cloned())).unwrap();
    let err = deps::build(&config, &sdk)
        .await
        .expect_err("no such secret");
    assert_eq!(err.error_type(), "Config");
    assert!(err.to_string().contains(config::SLACK_SECRET), "{err}");
}
