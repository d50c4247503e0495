//! One alert end to end over real HTTP, as a Lambda would handle it: the Slack webhook comes
//! from Secrets Manager, enrichment asks LookupEvents (throttled here), the pipeline
//! classifies and renders, and delivery posts to Slack and SNS. With CloudTrail throttling the
//! whole time, the notification still goes out inside the budget, and says its context is
//! partial and why.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::time::{Duration, Instant};

use serde_json::json;
use vigil_adapters::bedrock::BedrockApiInfo;
use vigil_adapters::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig, LookupPacer};
use vigil_adapters::cloudwatch::CloudWatchInfo;
use vigil_adapters::config::AwsClients;
use vigil_adapters::delivery::{Channels, deliver_all, outgoing_from};
use vigil_adapters::enrichment::Enricher;
use vigil_adapters::secrets::SecretLoader;
use vigil_adapters::slack::{SlackNotifier, http_client};
use vigil_adapters::sns::SnsNotifier;
use vigil_core::intake;
use vigil_core::pipeline::{self, Settings};
use vigil_core::redact::Redactor;
use vigil_core::route::{Destination, Owners};
use vigil_testkit::{LocalAws, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn with_lookup_events_throttled_the_alert_still_goes_out_marked_partial_inside_the_budget() {
    let aws = LocalAws::start().await;
    let config = aws.sdk_config().await;
    let clients = AwsClients::from_sdk_config(&config);

    // The Slack webhook lives in Secrets Manager, as in production.
    let webhook = format!(
        "{}/services/T0VIGIL01/B0VIGIL01/e2eSecretPart0123456789",
        aws.slack_url()
    );
    clients
        .secrets
        .create_secret()
        .name("vigil/slack/agents")
        .secret_string(json!({ "webhook_url": webhook }).to_string())
        .send()
        .await
        .expect("secret created");
    let topic = clients
        .sns
        .create_topic()
        .name("agents-alerts")
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");

    // CloudTrail throttles every LookupEvents call.
    aws.faults(json!({"service": "cloudtrail", "mode": "throttle", "count": 100000}))
        .await;

    let event =
        std::fs::read(repo_root().join("examples/demo/agent-tool-access-denied/event.json"))
            .expect("event");
    let alert = intake::parse(&event).expect("understood").remove(0);

    let budget = Duration::from_secs(4);
    let started = Instant::now();
    let enricher = Enricher::new(
        CloudTrailChangeSource::new(&clients.cloudtrail, CloudTrailConfig::default())
            .with_pacer(LookupPacer::new()),
        BedrockApiInfo::new(clients.bedrock.clone()),
        CloudWatchInfo::new(clients.cloudwatch.clone()),
    );
    let ctx = enricher
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time + chrono::Duration::minutes(3),
            budget,
        )
        .await;
    assert!(
        !ctx.missing.is_empty(),
        "the CloudTrail context is marked partial"
    );

    let owners = Owners::single(Destination {
        team: "agents".into(),
        slack_channel: Some("#agents-alerts".into()),
        slack_webhook_secret: Some("vigil/slack/agents".into()),
        sns_topic_arn: Some(topic.clone()),
        ..Destination::default()
    });
    let report = pipeline::evaluate(
        alert,
        &ctx,
        &Settings::with_defaults(owners),
        &Redactor::new(),
    );
    let credentials = SecretLoader::new(&config)
        .slack_credentials_from("secretsmanager:vigil/slack/agents")
        .await
        .expect("webhook loads");
    let channels = Channels {
        slack: Some(SlackNotifier::new(
            http_client().expect("http client"),
            credentials,
        )),
        sns: Some(SnsNotifier::new(&config)),
    };
    let time_left = Duration::from_secs(10).saturating_sub(started.elapsed());
    let delivery = deliver_all(&channels, outgoing_from(&report), time_left).await;
    let elapsed = started.elapsed();

    assert!(!delivery.all_failed(), "{delivery:?}");
    assert_eq!(
        delivery.delivered().count(),
        2,
        "Slack and SNS both delivered: {delivery:?}"
    );
    assert!(
        elapsed < budget + Duration::from_secs(3),
        "enrichment and delivery took {elapsed:?}"
    );

    // What Slack received says the context is partial, and why.
    let posts = aws.slack_requests().await;
    let post = posts
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/services/"))
        })
        .expect("a webhook post");
    let body = post["body"].to_string();
    assert!(body.contains("LookupEvents throttled"), "{body}");
    assert!(body.contains("Context missing from"), "{body}");

    // And SNS carries the same alert with its filterable attributes.
    let data = aws.moto_data().await;
    let text = data.to_string();
    assert!(
        text.contains("agent-tool-order-lookup-errors"),
        "SNS message published"
    );
    assert!(
        text.contains("\"severity\"") || text.contains("severity"),
        "message attributes published"
    );
    let lookups = aws
        .requests("service=cloudtrail&operation=LookupEvents")
        .await;
    assert!(
        lookups.iter().all(|r| r["status"] == 400),
        "every lookup was throttled"
    );
    println!(
        "throttled lookups: {}; alert delivered to Slack and SNS in {elapsed:?} (budget {budget:?})",
        lookups.len()
    );
}
