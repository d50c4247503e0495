//! Slack credentials through the local AWS (Secrets Manager and SSM in moto), and the proof
//! that no secret reaches a `Debug`/`Display` output, an error or a log line.

// A test fails loudly on purpose: unwrap/indexing/panic are how it reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use vigil_adapters::delivery::{Channels, deliver_all};
use vigil_adapters::secrets::{
    SecretLoader, SecretProblem, SecretRef, SecretStore, SlackCredentials,
};
use vigil_adapters::slack::{SlackNotifier, http_client};
use vigil_core::ports::Outgoing;
use vigil_core::render::SlackMessage;
use vigil_testkit::LocalAws;

/// A production-shaped webhook URL; its distinctive parts must never show up.
const HOOK: &str = "https://hooks.slack.com/services/T0SECRETWS/B0SECRETHK/hookSecretValue123";
const TOKEN: &str = "xoxb-111111111111-2222222222222-BotSecretValue456";
/// Pieces of the secrets above (and of the stand-in webhook path) that would betray a leak.
const TELLTALES: [&str; 6] = [
    "T0SECRETWS",
    "B0SECRETHK",
    "hookSecretValue123",
    "BotSecretValue456",
    "xoxb-1111",
    "standinSecretPath789",
];

fn assert_clean(what: &str, text: &str) {
    for tell in TELLTALES {
        assert!(!text.contains(tell), "{what} leaked {tell}:\n{text}");
    }
}

/// A loader with a generous timeout: these tests are about what is loaded, and a local AWS on
/// a loaded CI machine can take longer than the production default of 5 s to answer.
async fn loader(aws: &LocalAws) -> SecretLoader {
    SecretLoader::new(&aws.sdk_config().await).with_timeout(Duration::from_secs(60))
}

async fn put_secret(aws: &LocalAws, name: &str, value: &str) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&aws.sdk_config().await);
    let out = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    out.arn.unwrap()
}

async fn put_parameter(aws: &LocalAws, name: &str, value: &str) {
    let ssm = aws_sdk_ssm::Client::new(&aws.sdk_config().await);
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
}

fn webhook_url(c: &SlackCredentials) -> &str {
    match c {
        SlackCredentials::Webhook(u) => u.expose().as_str(),
        SlackCredentials::BotToken(_) => panic!("expected a webhook, got {c:?}"),
    }
}

fn bot_token(c: &SlackCredentials) -> &str {
    match c {
        SlackCredentials::BotToken(t) => t.expose(),
        SlackCredentials::Webhook(_) => panic!("expected a bot token, got {c:?}"),
    }
}

#[tokio::test]
async fn a_webhook_url_loads_from_secrets_manager_raw_and_as_json() {
    let aws = LocalAws::start().await;
    let raw_arn = put_secret(&aws, "vigil/slack/raw", HOOK).await;
    put_secret(
        &aws,
        "vigil/slack/json",
        &json!({"webhook_url": HOOK}).to_string(),
    )
    .await;
    let l = loader(&aws).await;

    for reference in [
        "secretsmanager:vigil/slack/raw",
        "vigil/slack/json",
        raw_arn.as_str(),
    ] {
        let c = l.slack_credentials_from(reference).await.unwrap();
        assert_eq!(webhook_url(&c), HOOK, "{reference}");
        assert_clean("Debug of credentials", &format!("{c:?} {c:#?}"));
    }
}

#[tokio::test]
async fn a_bot_token_loads_from_an_ssm_securestring() {
    let aws = LocalAws::start().await;
    put_parameter(&aws, "/vigil/slack/bot", TOKEN).await;
    put_parameter(
        &aws,
        "/vigil/slack/bot-json",
        &json!({"bot_token": TOKEN}).to_string(),
    )
    .await;
    // The parameter's ARN as the local AWS spells it (its account id is its own choice).
    let ssm = aws_sdk_ssm::Client::new(&aws.sdk_config().await);
    let described = ssm
        .get_parameter()
        .name("/vigil/slack/bot")
        .send()
        .await
        .unwrap();
    let arn = described.parameter.and_then(|p| p.arn).unwrap();
    let l = loader(&aws).await;

    for reference in [
        "ssm:/vigil/slack/bot",
        "/vigil/slack/bot-json",
        arn.as_str(),
    ] {
        let r = SecretRef::parse(reference).unwrap();
        assert_eq!(r.store(), SecretStore::Ssm);
        let c = l.slack_credentials(&r).await.unwrap();
        assert_eq!(bot_token(&c), TOKEN, "{reference}");
        assert_clean("Debug of credentials", &format!("{c:?}"));
    }
    let calls = aws.requests("service=ssm&operation=GetParameter").await;
    assert_eq!(
        calls.len(),
        4,
        "one lookup of the ARN, then one load per reference"
    );
}

#[tokio::test]
async fn credentials_are_fetched_once_and_then_reused() {
    let aws = LocalAws::start().await;
    put_secret(&aws, "vigil/slack", HOOK).await;
    let l = loader(&aws).await;
    let r = SecretRef::parse("secretsmanager:vigil/slack").unwrap();
    let (a, b) = tokio::join!(l.slack_credentials(&r), l.slack_credentials(&r));
    let c = l.slack_credentials(&r).await.unwrap();
    assert_eq!(a.unwrap(), c);
    assert_eq!(b.unwrap(), c);
    let calls = aws
        .requests("service=secretsmanager&operation=GetSecretValue")
        .await;
    assert_eq!(calls.len(), 1, "one GetSecretValue per process");
}

#[tokio::test]
async fn a_missing_secret_names_the_reference_and_is_not_retryable() {
    let aws = LocalAws::start().await;
    let l = loader(&aws).await;
    for reference in ["secretsmanager:vigil/missing", "ssm:/vigil/missing"] {
        let e = l.slack_credentials_from(reference).await.unwrap_err();
        assert_eq!(e.problem, SecretProblem::NotFound, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(e.reference, reference);
        let shown = e.to_string();
        assert!(
            shown.contains(reference) && shown.contains("retryable: false"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn a_failed_load_is_not_cached() {
    let aws = LocalAws::start().await;
    let l = loader(&aws).await;
    let r = SecretRef::parse("vigil/later").unwrap();
    assert!(l.slack_credentials(&r).await.is_err());
    put_secret(&aws, "vigil/later", TOKEN).await;
    assert_eq!(bot_token(&l.slack_credentials(&r).await.unwrap()), TOKEN);
}

#[tokio::test]
async fn unusable_values_are_refused_without_echoing_them() {
    let aws = LocalAws::start().await;
    put_secret(
        &aws,
        "vigil/http",
        "http://hooks.slack.com/services/T0SECRETWS/B0SECRETHK/hookSecretValue123",
    )
    .await;
    put_secret(
        &aws,
        "vigil/user-token",
        "xoxp-111111111111-BotSecretValue456",
    )
    .await;
    put_secret(
        &aws,
        "vigil/both",
        &json!({"webhook_url": HOOK, "bot_token": TOKEN}).to_string(),
    )
    .await;
    put_secret(&aws, "vigil/garbage", "hookSecretValue123").await;
    let l = loader(&aws).await;
    for name in [
        "vigil/http",
        "vigil/user-token",
        "vigil/both",
        "vigil/garbage",
    ] {
        let e = l.slack_credentials_from(name).await.unwrap_err();
        assert!(
            matches!(e.problem, SecretProblem::InvalidValue(_)),
            "{name}: {e}"
        );
        assert!(!e.is_retryable());
        assert!(e.to_string().contains(name));
        assert_clean("an invalid-value error", &format!("{e} {e:?}"));
    }
}

#[tokio::test]
async fn a_value_passed_as_a_reference_is_refused_without_echo() {
    for value in [HOOK, TOKEN] {
        let e = SecretRef::parse(value).unwrap_err();
        assert!(!e.is_retryable());
        assert_clean("a bad-reference error", &format!("{e} {e:?}"));
    }
}

#[tokio::test]
async fn an_unreachable_store_is_retryable() {
    let aws = LocalAws::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws
        .sdk_config()
        .await
        .to_builder()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let l = SecretLoader::new(&config).with_timeout(Duration::from_secs(3));
    let e = l.slack_credentials_from("vigil/slack").await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        matches!(
            e.problem,
            SecretProblem::Unavailable(_) | SecretProblem::TimedOut(_)
        ),
        "{e}"
    );
}

/// Log lines, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn message(header_chars: usize) -> SlackMessage {
    SlackMessage {
        text: "HIGH: Throttling".into(),
        blocks: vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(header_chars)}}),
        ],
    }
}

fn to_slack(channel: Option<&str>, header_chars: usize) -> Outgoing {
    Outgoing::Slack {
        channel: channel.map(str::to_owned),
        message: message(header_chars),
        thread_ts: None,
        update_ts: None,
    }
}

#[tokio::test]
async fn captured_logs_contain_no_secret() {
    let aws = LocalAws::start().await;
    // Setup writes the secrets with the SDK; it happens before capture starts, since the
    // *test's* own PutParameter / CreateSecret requests carry the values.
    let standin_hook = format!(
        "{}/services/T0SECRETWS/B0SECRETHK/standinSecretPath789",
        aws.slack_url()
    );
    put_secret(&aws, "vigil/slack/webhook", &standin_hook).await;
    put_parameter(
        &aws,
        "/vigil/slack/bot",
        &json!({"bot_token": TOKEN}).to_string(),
    )
    .await;
    put_secret(&aws, "vigil/slack/bad", &format!("{HOOK} trailing words")).await;
    let config = aws.sdk_config().await;

    let captured = Captured::default();
    let _guard = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish()
        .set_default();

    let l = SecretLoader::new(&config);
    let hook = l
        .slack_credentials_from("vigil/slack/webhook")
        .await
        .unwrap();
    let bot = l
        .slack_credentials_from("ssm:/vigil/slack/bot")
        .await
        .unwrap();
    let mut errors = Vec::new();
    for reference in ["vigil/slack/missing", "vigil/slack/bad", HOOK, TOKEN] {
        errors.push(
            l.slack_credentials_from(reference)
                .await
                .unwrap_err()
                .to_string(),
        );
    }

    let webhook = SlackNotifier::new(http_client().unwrap(), hook.clone());
    let web_api = SlackNotifier::new(http_client().unwrap(), bot.clone())
        .with_api_base(&format!("{}/api", aws.slack_url()))
        .unwrap();
    aws.slack_script(json!([
        {"status": 429, "retry_after": 30},
        {"status": 404},
        {"status": 500}, {"status": 200},
        {"status": 400, "body": "invalid_blocks"}, {"status": 410},
        {"status": 400, "error": "invalid_auth"},
        {"status": 429, "retry_after": 1},
    ]))
    .await;
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let channels: Channels = Channels {
            slack: Some(webhook.clone()),
            sns: None,
        };
        let report = deliver_all(&channels, vec![to_slack(None, 10)], Duration::from_secs(5)).await;
        outcomes.extend(report.outcomes);
    }
    let channels: Channels = Channels {
        slack: Some(web_api.clone()),
        sns: None,
    };
    for header in [10, 10, 200] {
        let report = deliver_all(
            &channels,
            vec![to_slack(Some("#ai-alerts"), header)],
            Duration::from_secs(5),
        )
        .await;
        outcomes.extend(report.outcomes);
    }
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = SlackNotifier::new(
        http_client().unwrap(),
        SlackCredentials::parse(&format!(
            "http://127.0.0.1:{dead_port}/services/T0SECRETWS/B0SECRETHK/standinSecretPath789"
        ))
        .unwrap(),
    );
    let channels: Channels = Channels {
        slack: Some(dead),
        sns: None,
    };
    outcomes.extend(
        deliver_all(&channels, vec![to_slack(None, 10)], Duration::from_secs(2))
            .await
            .outcomes,
    );
    drop(_guard);

    // The run went through successes and failures alike.
    assert!(outcomes.iter().any(Result::is_ok));
    assert!(
        outcomes.iter().filter(|o| o.is_err()).count() >= 4,
        "{outcomes:#?}"
    );
    let logs = captured.text();
    for needle in [
        "loaded Slack credentials",
        "could not load Slack credentials",
        "notification delivered",
        "notification not delivered",
        "sending plain text",
    ] {
        assert!(
            logs.contains(needle),
            "no {needle:?} in the captured logs:\n{logs}"
        );
    }
    assert_clean("the captured logs", &logs);
    assert_clean("the delivery outcomes", &format!("{outcomes:?}"));
    assert_clean("the secret errors", &errors.join("\n"));
    assert_clean(
        "Debug of the notifiers",
        &format!("{webhook:?} {web_api:?}"),
    );
}
