//! Slack credentials when the secret store fails: a cut-off answer is worth a retry, and a
//! deferred Slack channel fails while the store fails and sends once it answers.
//!
//! A test binary of its own: these tests log from the secret loader's call sites with no
//! subscriber installed, which can leave tracing's per-callsite interest cached as "never"
//! while `secrets.rs`'s log-capturing test runs in another thread of the same process.

// A test fails loudly on purpose: unwrap/indexing/panic are how it reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vigil_adapters::secrets::{SecretLoader, SecretProblem, SecretRef};
use vigil_adapters::slack::{SlackChannel, http_client};
use vigil_core::ports::{Notifier, Outgoing};
use vigil_core::render::SlackMessage;
use vigil_testkit::LocalAws;

const HOOK: &str = "https://hooks.slack.com/services/T0SECRETWS/B0SECRETHK/hookSecretValue123";

fn assert_clean(what: &str, text: &str) {
    for tell in [
        "T0SECRETWS",
        "B0SECRETHK",
        "hookSecretValue123",
        "standinSecretPath789",
    ] {
        assert!(!text.contains(tell), "{what} leaked {tell}:\n{text}");
    }
}

async fn loader(aws: &LocalAws) -> SecretLoader {
    SecretLoader::new(&aws.sdk_config().await).with_timeout(Duration::from_secs(60))
}

async fn put_secret(aws: &LocalAws, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(&aws.sdk_config().await)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("secret created");
}

fn to_slack(channel: Option<&str>, header_chars: usize) -> Outgoing {
    Outgoing::Slack {
        channel: channel.map(str::to_owned),
        message: SlackMessage {
            text: "HIGH: Throttling".into(),
            blocks: vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(header_chars)}}),
            ],
        },
        thread_ts: None,
        update_ts: None,
    }
}

#[tokio::test]
async fn a_cut_off_answer_from_the_store_is_retryable_not_a_bad_secret() {
    let aws = LocalAws::start().await;
    put_secret(&aws, "vigil/slack/cut", HOOK).await;
    aws.faults(json!({"service": "secretsmanager", "mode": "malformed", "count": 10}))
        .await;
    let e = loader(&aws)
        .await
        .slack_credentials_from("vigil/slack/cut")
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(matches!(e.problem, SecretProblem::Unavailable(_)), "{e}");
}

#[tokio::test]
async fn a_deferred_slack_channel_fails_while_the_store_fails_and_sends_once_it_answers() {
    let aws = LocalAws::start().await;
    let hook = format!("{}/services/T/B/standinSecretPath789", aws.slack_url());
    put_secret(&aws, "vigil/slack/deferred", &hook).await;
    aws.faults(json!({"service": "secretsmanager", "mode": "error500", "count": 1000}))
        .await;
    let channel = SlackChannel::deferred(
        Arc::new(loader(&aws).await),
        SecretRef::parse("vigil/slack/deferred").unwrap(),
        http_client().unwrap(),
        None,
        "InternalFailure at cold start".into(),
    );
    assert_eq!(channel.mode(), None, "nothing loaded yet");
    let e = channel
        .send(&to_slack(None, 10), Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.reason.contains("Slack credentials not loaded"), "{e}");
    assert!(e.reason.contains("at cold start: InternalFailure"), "{e}");
    assert_clean("the failure", &e.to_string());
    assert!(
        aws.slack_requests().await.is_empty(),
        "nothing reached Slack"
    );

    aws.clear_faults().await;
    let sent = channel
        .send(&to_slack(None, 10), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(sent.attempts, 1);
    assert_eq!(channel.mode(), Some("webhook"));
    let posts = aws.slack_requests().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["path"], "/services/T/B/standinSecretPath789");
    // Loaded once: a second message reads no secret.
    let reads = aws.requests("service=secretsmanager").await.len();
    channel
        .send(&to_slack(None, 10), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(aws.requests("service=secretsmanager").await.len(), reads);
}
