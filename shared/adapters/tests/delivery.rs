//! Slack and SNS delivery over real HTTP: the Slack stand-in (`localaws/slack.py`) and the
//! local AWS (moto), each started per test by `vigil_testkit::LocalAws`.

// A test fails loudly on purpose: unwrap/indexing/panic are how it reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_adapters::delivery::{Channels, deliver_all, outgoing_from};
use vigil_adapters::secrets::{SecretToken, SecretUrl, SlackCredentials};
use vigil_adapters::slack::{SlackNotifier, http_client};
use vigil_adapters::sns::SnsNotifier;
use vigil_core::ports::{Notifier, Outgoing};
use vigil_core::render::{SlackMessage, SnsNotification};
use vigil_testkit::LocalAws;

const TOKEN: &str = "xoxb-000000000000-0000000000000-StandInTokenForTests";
const TIME_LEFT: Duration = Duration::from_secs(10);

fn message() -> SlackMessage {
    SlackMessage {
        text: "HIGH: Throttling: bedrock-throttles-claude".into(),
        blocks: vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": ":red_circle: HIGH: Throttling"}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": "*Account*\n123456789012"}}),
        ],
    }
}

/// A message whose header is over Slack's 150 characters: the stand-in refuses it as Slack
/// does, with `invalid_blocks`.
fn oversized_message() -> SlackMessage {
    SlackMessage {
        text: "HIGH: too long a header".into(),
        blocks: vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}),
        ],
    }
}

fn slack(channel: Option<&str>, message: SlackMessage) -> Outgoing {
    Outgoing::Slack {
        channel: channel.map(str::to_owned),
        message,
        thread_ts: None,
        update_ts: None,
    }
}

fn webhook(aws: &LocalAws) -> SlackNotifier {
    let url = SecretUrl::parse(&format!("{}/services/T/B/X", aws.slack_url())).unwrap();
    SlackNotifier::new(http_client().unwrap(), SlackCredentials::Webhook(url))
}

fn bot(aws: &LocalAws) -> SlackNotifier {
    let token = SecretToken::parse(TOKEN).unwrap();
    SlackNotifier::new(http_client().unwrap(), SlackCredentials::BotToken(token))
        .with_api_base(&format!("{}/api", aws.slack_url()))
        .unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn dead_webhook() -> SlackNotifier {
    let url = SecretUrl::parse(&format!(
        "http://127.0.0.1:{}/services/T/B/X",
        closed_port()
    ))
    .unwrap();
    SlackNotifier::new(http_client().unwrap(), SlackCredentials::Webhook(url))
}

fn notification() -> SnsNotification {
    SnsNotification {
        subject: "[HIGH] throttle_spike: bedrock-throttles-claude".into(),
        message: json!({"default": "{\"kind\":\"throttle_spike\"}", "email": "Throttling"})
            .to_string(),
        attributes: BTreeMap::from([
            ("severity".to_owned(), "high".to_owned()),
            ("kind".to_owned(), "throttle_spike".to_owned()),
            ("team".to_owned(), "ai-platform".to_owned()),
        ]),
    }
}

async fn topic(aws: &LocalAws, name: &str) -> String {
    let sns = aws_sdk_sns::Client::new(&aws.sdk_config().await);
    sns.create_topic()
        .name(name)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap()
}

/// moto's record of what was published to `topic_arn`: `[id, message, subject, attributes, group]`.
async fn published(aws: &LocalAws, topic_arn: &str) -> Vec<Value> {
    let data = aws.moto_data().await;
    data["sns"]["Topic"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["arn"] == topic_arn)
        .flat_map(|t| {
            t["sent_notifications"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// The stand-in's log without control calls.
async fn slack_posts(aws: &LocalAws) -> Vec<Value> {
    aws.slack_requests()
        .await
        .into_iter()
        .filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/_stand-in"))
        .collect()
}

fn gap_ms(a: &Value, b: &Value) -> f64 {
    b["mono_ms"].as_f64().unwrap() - a["mono_ms"].as_f64().unwrap()
}

#[tokio::test]
async fn a_webhook_post_lands_in_slack_with_its_blocks() {
    let aws = LocalAws::start().await;
    let m = message();
    let d = webhook(&aws)
        .send(&slack(None, m.clone()), TIME_LEFT)
        .await
        .unwrap();
    assert_eq!(
        (d.attempts, d.fell_back_to_text, d.id.as_deref()),
        (1, false, None)
    );
    assert_eq!(d.channel, "slack:webhook");

    let posts = slack_posts(&aws).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["path"], "/services/T/B/X");
    assert_eq!(posts[0]["status"], 200);
    assert_eq!(posts[0]["json"]["blocks"], json!(m.blocks));
    assert_eq!(posts[0]["json"]["text"], m.text);
}

#[tokio::test]
async fn a_bot_token_posts_replies_in_the_thread_and_edits_the_first_message() {
    let aws = LocalAws::start().await;
    let n = bot(&aws);
    let first = n
        .send(&slack(Some("#ai-alerts"), message()), TIME_LEFT)
        .await
        .unwrap();
    let ts = first.id.clone().expect("chat.postMessage returns a ts");
    assert_eq!(first.channel, "slack:#ai-alerts");

    let reply = Outgoing::Slack {
        channel: Some("#ai-alerts".into()),
        message: message(),
        thread_ts: Some(ts.clone()),
        update_ts: None,
    };
    let replied = n.send(&reply, TIME_LEFT).await.unwrap();
    assert_ne!(
        replied.id.as_deref(),
        Some(ts.as_str()),
        "a reply is a new message"
    );

    let resolved = SlackMessage {
        text: "Resolved: Throttling".into(),
        blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": "Resolved"}})],
    };
    let edit = Outgoing::Slack {
        channel: Some("#ai-alerts".into()),
        message: resolved,
        thread_ts: None,
        update_ts: Some(ts.clone()),
    };
    let edited = n.send(&edit, TIME_LEFT).await.unwrap();
    assert_eq!(edited.id.as_deref(), Some(ts.as_str()));

    let posts = slack_posts(&aws).await;
    let paths: Vec<&str> = posts.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/api/chat.postMessage",
            "/api/chat.postMessage",
            "/api/chat.update"
        ]
    );
    assert_eq!(
        posts[0]["headers"]["authorization"],
        format!("Bearer {TOKEN}")
    );
    assert_eq!(posts[0]["json"]["channel"], "#ai-alerts");
    assert!(posts[0]["json"].get("thread_ts").is_none());
    assert_eq!(posts[1]["json"]["thread_ts"], ts);
    assert_eq!(posts[2]["json"]["ts"], ts);
    assert_eq!(posts[2]["json"]["text"], "Resolved: Throttling");
    assert!(
        posts
            .iter()
            .all(|p| p["response"].as_str().unwrap().contains("\"ok\": true"))
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_the_message_arrives() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 429, "retry_after": 1}]))
        .await;
    let d = webhook(&aws)
        .send(&slack(None, message()), TIME_LEFT)
        .await
        .unwrap();
    assert_eq!(d.attempts, 2);

    let posts = slack_posts(&aws).await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["status"], 429);
    assert_eq!(posts[1]["status"], 200);
    let gap = gap_ms(&posts[0], &posts[1]);
    assert!(
        gap >= 1_000.0,
        "retried {gap} ms after a Retry-After of 1 s"
    );
}

#[tokio::test]
async fn a_429_whose_retry_after_exceeds_the_time_left_fails_at_once_as_retryable() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 429, "retry_after": 30}]))
        .await;
    let started = Instant::now();
    let e = webhook(&aws)
        .send(&slack(None, message()), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.retryable);
    assert_eq!(e.attempts, 1);
    assert!(e.reason.contains("Retry-After 30s"), "{e}");
    assert_eq!(slack_posts(&aws).await.len(), 1);
}

#[tokio::test]
async fn two_5xx_then_ok_is_delivered_on_the_third_attempt_after_backing_off() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 500}, {"status": 503}]))
        .await;
    let d = webhook(&aws)
        .send(&slack(None, message()), TIME_LEFT)
        .await
        .unwrap();
    assert_eq!(d.attempts, 3);

    let posts = slack_posts(&aws).await;
    let statuses: Vec<u64> = posts
        .iter()
        .map(|p| p["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 503, 200]);
    assert!(gap_ms(&posts[0], &posts[1]) >= 200.0);
    assert!(gap_ms(&posts[1], &posts[2]) >= 400.0);
}

#[tokio::test]
async fn the_web_api_backs_off_on_5xx_too() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 500}, {"status": 502}]))
        .await;
    let d = bot(&aws)
        .send(&slack(Some("#ai-alerts"), message()), TIME_LEFT)
        .await
        .unwrap();
    assert_eq!(d.attempts, 3);
    assert!(d.id.is_some());
}

#[tokio::test]
async fn invalid_blocks_fall_back_to_plain_text_in_both_modes() {
    let aws = LocalAws::start().await;
    let m = oversized_message();

    let d = webhook(&aws)
        .send(&slack(None, m.clone()), TIME_LEFT)
        .await
        .unwrap();
    assert!(d.fell_back_to_text);
    assert_eq!(d.attempts, 2);

    let d = bot(&aws)
        .send(&slack(Some("#ai-alerts"), m.clone()), TIME_LEFT)
        .await
        .unwrap();
    assert!(d.fell_back_to_text);
    assert_eq!(d.attempts, 2);
    assert!(d.id.is_some());

    let posts = slack_posts(&aws).await;
    assert_eq!(posts.len(), 4);
    assert_eq!(posts[0]["response"], "invalid_blocks");
    assert!(
        posts[2]["response"]
            .as_str()
            .unwrap()
            .contains("invalid_blocks")
    );
    for plain in [&posts[1], &posts[3]] {
        assert!(plain["json"].get("blocks").is_none(), "{plain}");
        assert_eq!(plain["json"]["text"], m.text);
    }
}

/// Issue 12: a resolve edit for an alarm named like a mention and a phishing link, refused
/// with `invalid_blocks`, is resent as its fallback text alone; that text reaches the channel
/// escaped, so it neither pings nor links.
#[tokio::test]
async fn the_plain_text_resend_of_a_hostile_resolve_edit_stays_escaped() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 400, "body": "invalid_blocks"}]))
        .await;
    let opened = chrono::DateTime::parse_from_rfc3339("2026-11-20T09:14:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let title = "Error spike: <!channel> <https://evil.example/sso|Re-authenticate> db \u{202e}&lt;!here&gt;";
    let m = vigil_core::render::slack::resolved_root(
        title,
        3,
        opened,
        opened + chrono::Duration::minutes(12),
        "evt-1",
    );
    let d = webhook(&aws)
        .send(&slack(None, m), TIME_LEFT)
        .await
        .unwrap();
    assert!(d.fell_back_to_text);

    let posts = slack_posts(&aws).await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["response"], "invalid_blocks");
    let resent = &posts[1]["json"];
    assert!(resent.get("blocks").is_none(), "{resent}");
    let text = resent["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Resolved: Error spike: &lt;!channel&gt; &lt;https://evil.example/sso|Re-authenticate&gt; db &amp;lt;!here&amp;gt;. Open from"
        ),
        "{text}"
    );
    assert!(!text.contains(['<', '>', '\u{202e}']), "{text}");
}

#[tokio::test]
async fn refusals_slack_will_repeat_are_permanent() {
    let aws = LocalAws::start().await;
    for (script, notifier) in [
        (json!({"status": 404}), webhook(&aws)),
        (json!({"status": 410}), webhook(&aws)),
        (
            json!({"status": 403, "body": "invalid_token"}),
            webhook(&aws),
        ),
        (json!({"status": 400, "error": "invalid_auth"}), bot(&aws)),
        (
            json!({"status": 400, "error": "channel_not_found"}),
            bot(&aws),
        ),
        (json!({"status": 400, "error": "is_archived"}), bot(&aws)),
    ] {
        aws.slack_script(json!([script])).await;
        let e = notifier
            .send(&slack(Some("#ai-alerts"), message()), TIME_LEFT)
            .await
            .unwrap_err();
        assert!(!e.retryable, "{script}: {e}");
        assert_eq!(e.attempts, 1, "{script}: {e}");
    }
    let reasons: Vec<String> = slack_posts(&aws)
        .await
        .iter()
        .map(|p| p["response"].as_str().unwrap().to_owned())
        .collect();
    assert!(reasons[0].contains("no_service") && reasons[1].contains("channel_is_archived"));
}

#[tokio::test]
async fn a_404_no_service_names_slacks_reason_and_not_the_url() {
    let aws = LocalAws::start().await;
    aws.slack_script(json!([{"status": 404}])).await;
    let e = webhook(&aws)
        .send(&slack(None, message()), TIME_LEFT)
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(e.reason.contains("no_service"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("/services/T/B/X"), "{shown}");
}

#[tokio::test]
async fn a_closed_port_is_retried_within_time_left_then_reported_retryable() {
    let started = Instant::now();
    let e = dead_webhook()
        .send(&slack(None, message()), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.retryable);
    assert_eq!(e.attempts, 4, "{e}");
    assert!(e.reason.contains("could not connect"), "{e}");
    assert!(!format!("{e:?}").contains("/services/"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn backing_off_stops_when_time_runs_out() {
    let started = Instant::now();
    let e = dead_webhook()
        .send(&slack(None, message()), Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(e.retryable);
    assert!(e.attempts < 4, "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dead_slack_still_leaves_the_sns_notification_delivered() {
    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    let channels = Channels {
        slack: Some(dead_webhook()),
        sns: Some(SnsNotifier::new(&aws.sdk_config().await)),
    };
    let messages = vec![
        slack(None, message()),
        Outgoing::Sns {
            topic_arn: arn.clone(),
            message: notification(),
        },
    ];
    let report = deliver_all(&channels, messages, TIME_LEFT).await;

    assert!(report.any_delivered());
    assert!(!report.all_failed());
    let slack_error = report.outcomes[0].as_ref().unwrap_err();
    assert!(
        slack_error.retryable && slack_error.attempts == 4,
        "{slack_error}"
    );
    let sns = report.outcomes[1].as_ref().unwrap();
    assert_eq!(sns.channel, format!("sns:{arn}"));
    assert_eq!(sns.attempts, 1);

    let sent = published(&aws, &arn).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][0].as_str(), sns.id.as_deref());
}

#[tokio::test]
async fn a_slack_answering_500_forever_leaves_sns_delivered_and_is_retryable() {
    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    aws.slack_script(Value::Array(vec![json!({"status": 500}); 10]))
        .await;
    let channels = Channels {
        slack: Some(bot(&aws)),
        sns: Some(SnsNotifier::new(&aws.sdk_config().await)),
    };
    let messages = vec![
        slack(Some("#ai-alerts"), message()),
        Outgoing::Sns {
            topic_arn: arn.clone(),
            message: notification(),
        },
    ];
    let report = deliver_all(&channels, messages, TIME_LEFT).await;
    let e = report.outcomes[0].as_ref().unwrap_err();
    assert!(e.retryable);
    assert_eq!(e.attempts, 4);
    assert!(report.outcomes[1].is_ok());
    assert_eq!(published(&aws, &arn).await.len(), 1);
}

#[tokio::test]
async fn sns_publishes_json_with_its_subject_and_message_attributes() {
    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    let n = notification();
    let d = SnsNotifier::new(&aws.sdk_config().await)
        .send(
            &Outgoing::Sns {
                topic_arn: arn.clone(),
                message: n.clone(),
            },
            TIME_LEFT,
        )
        .await
        .unwrap();
    assert!(d.id.is_some());

    let sent = published(&aws, &arn).await;
    assert_eq!(sent.len(), 1);
    let [id, message, subject, attributes, _] = sent[0].as_array().unwrap().as_slice() else {
        panic!("unexpected moto record {}", sent[0]);
    };
    assert_eq!(id.as_str(), d.id.as_deref());
    assert_eq!(subject, &json!(n.subject));
    let stored: Value = serde_json::from_str(message.as_str().unwrap()).unwrap();
    assert_eq!(stored["default"], "{\"kind\":\"throttle_spike\"}");
    assert_eq!(stored["email"], "Throttling");
    assert_eq!(
        attributes,
        &json!({
            "kind": {"Type": "String", "Value": "throttle_spike"},
            "severity": {"Type": "String", "Value": "high"},
            "team": {"Type": "String", "Value": "ai-platform"},
        })
    );
    let publishes = aws.requests("service=sns&operation=Publish").await;
    assert_eq!(publishes.len(), 1);
}

#[tokio::test]
async fn sns_throttling_is_retried_with_backoff() {
    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    aws.faults(json!({"service": "sns", "operation": "Publish", "mode": "throttle", "count": 2}))
        .await;
    let d = SnsNotifier::new(&aws.sdk_config().await)
        .send(
            &Outgoing::Sns {
                topic_arn: arn.clone(),
                message: notification(),
            },
            TIME_LEFT,
        )
        .await
        .unwrap();
    assert_eq!(d.attempts, 3);
    assert_eq!(published(&aws, &arn).await.len(), 1);
}

#[tokio::test]
async fn sns_5xx_past_the_time_left_is_retryable() {
    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    aws.faults(json!({"service": "sns", "operation": "Publish", "mode": "error500", "count": 20}))
        .await;
    let e = SnsNotifier::new(&aws.sdk_config().await)
        .send(
            &Outgoing::Sns {
                topic_arn: arn,
                message: notification(),
            },
            TIME_LEFT,
        )
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
    assert_eq!(e.attempts, 4, "{e}");
    assert!(e.reason.contains("InternalFailure"), "{e}");
}

#[tokio::test]
async fn sns_to_a_missing_topic_is_permanent() {
    let aws = LocalAws::start().await;
    let e = SnsNotifier::new(&aws.sdk_config().await)
        .send(
            &Outgoing::Sns {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:no-such-topic".into(),
                message: notification(),
            },
            TIME_LEFT,
        )
        .await
        .unwrap_err();
    assert!(!e.retryable, "{e}");
    assert_eq!(e.attempts, 1);
    assert!(e.reason.contains("NotFound"), "{e}");
}

#[tokio::test]
async fn every_channel_failing_is_all_failed_and_worth_retrying() {
    let aws = LocalAws::start().await;
    let channels = Channels {
        slack: Some(dead_webhook()),
        sns: Some(SnsNotifier::new(&aws.sdk_config().await)),
    };
    let messages = vec![
        slack(None, message()),
        Outgoing::Sns {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:no-such-topic".into(),
            message: notification(),
        },
    ];
    let report = deliver_all(&channels, messages, Duration::from_secs(3)).await;
    assert!(report.all_failed());
    assert!(!report.any_delivered());
    assert!(report.worth_retrying(), "the dead Slack is retryable");
}

#[tokio::test]
async fn a_message_for_an_unconfigured_channel_fails_without_sinking_the_others() {
    let aws = LocalAws::start().await;
    let channels: Channels = Channels {
        slack: Some(webhook(&aws)),
        sns: None,
    };
    let messages = vec![
        slack(None, message()),
        Outgoing::Sns {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:vigil-ai".into(),
            message: notification(),
        },
    ];
    let report = deliver_all(&channels, messages, TIME_LEFT).await;
    assert!(report.outcomes[0].is_ok());
    let e = report.outcomes[1].as_ref().unwrap_err();
    assert!(!e.retryable && e.attempts == 0, "{e}");
}

#[tokio::test]
async fn channels_are_sent_to_concurrently() {
    let aws = LocalAws::start().await;
    // Each answer takes a second; sent one after another, three would take three.
    aws.slack_script(json!([{"delay": 1}, {"delay": 1}, {"delay": 1}]))
        .await;
    let channels: Channels = Channels {
        slack: Some(bot(&aws)),
        sns: None,
    };
    let messages = ["#a", "#b", "#c"]
        .iter()
        .map(|c| slack(Some(c), message()))
        .collect();
    let started = Instant::now();
    let report = deliver_all(&channels, messages, TIME_LEFT).await;
    assert_eq!(report.delivered().count(), 3);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_pipeline_report_is_addressed_and_delivered_to_its_routes() {
    use vigil_core::enrich::Context;
    use vigil_core::pipeline::{Settings, evaluate};
    use vigil_core::redact::Redactor;
    use vigil_core::route::Owners;

    let aws = LocalAws::start().await;
    let arn = topic(&aws, "vigil-ai").await;
    let owners = Owners::from_yaml(&format!(
        r##"
version: 1
routes:
  - name: webhook-only
    team: platform
    slack_webhook_secret: "vigil/slack/platform"
    continue: true
  - name: ai-platform
    team: ai-platform
    slack_channel: "#ai-alerts"
    slack_webhook_secret: "vigil/slack/ai"
    sns_topic_arn: "{arn}"
default:
  team: platform
  slack_channel: "#platform-alerts"
"##
    ))
    .unwrap();
    let event = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/demo/bedrock-throttling-capacity/event.json"
    ))
    .unwrap();
    let alert = vigil_core::intake::parse(&event).unwrap().remove(0);
    let report = evaluate(
        alert,
        &Context::default(),
        &Settings::with_defaults(owners),
        &Redactor::new(),
    );

    let messages = outgoing_from(&report);
    let addressed: Vec<String> = messages
        .iter()
        .map(|m| match m {
            Outgoing::Slack { channel, .. } => format!("slack {channel:?}"),
            Outgoing::Sns { topic_arn, .. } => format!("sns {topic_arn}"),
        })
        .collect();
    assert_eq!(
        addressed,
        [
            "slack None".to_owned(),
            "slack Some(\"#ai-alerts\")".to_owned(),
            format!("sns {arn}")
        ]
    );

    let channels = Channels {
        slack: Some(bot(&aws)),
        sns: Some(SnsNotifier::new(&aws.sdk_config().await)),
    };
    let delivered = deliver_all(&channels, messages, TIME_LEFT).await;
    // Bot-token mode cannot post the webhook-only route's message: it names no channel.
    let e = delivered.outcomes[0].as_ref().unwrap_err();
    assert!(!e.retryable && e.reason.contains("needs a channel"), "{e}");
    assert!(delivered.outcomes[1].is_ok());
    assert!(delivered.outcomes[2].is_ok());

    let posts = slack_posts(&aws).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["json"]["channel"], "#ai-alerts");
    assert!(posts[0]["json"]["blocks"].as_array().unwrap().len() > 3);
    let sent = published(&aws, &arn).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][3]["team"]["Value"], "ai-platform");
}
