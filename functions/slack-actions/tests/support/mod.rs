//! Shared by the slack-actions tests: the state table and the signing secret in the local AWS,
//! signed Slack requests, and reading the table back.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use serde_json::{Value, json};
use vigil_core::slack_request::{ButtonValue, sign};
use vigil_testkit::LocalAws;

pub const TABLE: &str = "vigil-state";
pub const SECRET_NAME: &str = "vigil/slack-signing";
/// Slack's documented example secret: a real shape (32 characters).
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const CORRELATION: &str = "evt-2f9c1a";

pub async fn create_table(aws: &LocalAws) {
    let ddb = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attr")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("key")
    };
    ddb.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("cid"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(vigil_adapters::state::CORRELATION_INDEX)
                .key_schema(key("cid", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi"),
        )
        .send()
        .await
        .expect("state table");
}

/// The table, the signing secret (stored as JSON next to a bot token, as a combined secret
/// would be).
pub async fn prepare(aws: &LocalAws) {
    create_table(aws).await;
    aws_sdk_secretsmanager::Client::new(&aws.sdk_config().await)
        .create_secret()
        .name(SECRET_NAME)
        .secret_string(
            json!({
                "bot_token": "xoxb-000000000000-0000000000000-StandInTokenForTests",
                "signing_secret": SIGNING_SECRET
            })
            .to_string(),
        )
        .send()
        .await
        .expect("signing secret");
}

/// Every item of the table as `pk|sk`.
pub async fn keys(aws: &LocalAws) -> BTreeSet<String> {
    let ddb = aws_sdk_dynamodb::Client::new(&aws.sdk_config().await);
    let out = ddb
        .scan()
        .table_name(TABLE)
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    out.items()
        .iter()
        .map(|item| {
            let s = |k: &str| match item.get(k) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            format!("{}|{}", s("pk"), s("sk"))
        })
        .collect()
}

/// The ledger rows' keys.
pub async fn ledger_keys(aws: &LocalAws) -> Vec<String> {
    keys(aws)
        .await
        .into_iter()
        .filter(|k| k.starts_with("ledger#"))
        .collect()
}

pub fn button_value(step: Option<(u32, &str)>) -> String {
    ButtonValue {
        correlation_id: CORRELATION.into(),
        name: "agent-tool-errors".into(),
        kind: Some("access_denied".into()),
        severity: Some("medium".into()),
        account: Some("111122223333".into()),
        region: Some("us-east-1".into()),
        step: step.map(|(i, _)| i),
        step_title: step.map(|(_, t)| t.to_owned()),
    }
    .encode()
}

/// The group key `handle-alarm` records for [`button_value`]'s alert.
pub const GROUP_KEY: &str = "111122223333|us-east-1|access_denied|arn:aws:lambda:us-east-1:111122223333:function:agent-tool";

/// The ledger row the alerting function writes when it sends an alert: what a Silence button
/// is checked against (kind, severity, name and group come from here, not from the button).
pub fn sent_row(
    correlation_id: &str,
    kind: vigil_core::model::Kind,
    severity: vigil_core::model::Severity,
    name: &str,
    group_key: &str,
) -> vigil_core::noise::LedgerEntry {
    vigil_core::noise::LedgerEntry {
        at: chrono::Utc::now(),
        correlation_id: correlation_id.to_owned(),
        function: "handle-alarm".into(),
        outcome: vigil_core::noise::Outcome::Sent,
        reason: Some("post (notified)".into()),
        kind: Some(kind),
        severity: Some(severity),
        name: name.to_owned(),
        group_key: Some(group_key.to_owned()),
        channels: Vec::new(),
    }
}

/// Writes `row` to the ledger as the alerting function would.
pub async fn seed(
    state: &vigil_adapters::state::DynamoState,
    row: &vigil_core::noise::LedgerEntry,
) {
    use vigil_core::ports::StateStore;
    state
        .record(row, std::time::Duration::from_secs(86_400))
        .await
        .expect("seed ledger row");
}

/// [`button_value`]'s alert as sent: a medium `access_denied`.
pub async fn seed_default(state: &vigil_adapters::state::DynamoState) {
    seed(
        state,
        &sent_row(
            CORRELATION,
            vigil_core::model::Kind::AccessDenied,
            vigil_core::model::Severity::Medium,
            "agent-tool-errors",
            GROUP_KEY,
        ),
    )
    .await;
}

/// The message the buttons were on, as Slack sends it back in the payload.
pub fn message_blocks(step_value: &str) -> Value {
    json!([
        {"type": "header", "text": {"type": "plain_text", "text": "🔴 agent-tool-errors"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Access denied* for the agent's tool"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Runbook*\n1. Check the role\n2. Roll back"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("alert id `{CORRELATION}`")}]},
        {"type": "actions", "block_id": "vigil_steps", "elements": [
            {"type": "button", "action_id": "vigil_step_done", "text": {"type": "plain_text", "text": "✓ Step 1"}, "value": step_value},
            {"type": "button", "action_id": "vigil_step_done", "text": {"type": "plain_text", "text": "✓ Step 2"}, "value": button_value(Some((2, "Roll back")))}
        ]},
        {"type": "actions", "block_id": "vigil_actions", "elements": [
            {"type": "button", "action_id": "vigil_ack", "text": {"type": "plain_text", "text": "Acknowledge"}, "value": button_value(None)},
            {"type": "button", "action_id": "vigil_silence_1h", "text": {"type": "plain_text", "text": "Silence 1 h"}, "value": button_value(None)},
            {"type": "button", "action_id": "vigil_silence_4h", "text": {"type": "plain_text", "text": "Silence 4 h"}, "value": button_value(None)},
            {"type": "button", "action_id": "vigil_silence_24h", "text": {"type": "plain_text", "text": "Silence 24 h"}, "value": button_value(None)}
        ]}
    ])
}

/// A `block_actions` form body for a click on `action_id` with `value`, answering to
/// `response_url`.
pub fn click_body(action_id: &str, value: &str, response_url: &str) -> String {
    click_body_from(
        action_id,
        value,
        response_url,
        "T0001",
        "C0001",
        "U024BE7LH",
    )
}

/// [`click_body`] from another workspace, channel or user.
pub fn click_body_from(
    action_id: &str,
    value: &str,
    response_url: &str,
    team: &str,
    channel: &str,
    user: &str,
) -> String {
    let step_value = button_value(Some((1, "Check the role")));
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": team},
        "api_app_id": "A0001",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": channel, "is_ephemeral": false},
        "trigger_id": "1.2.3",
        "team": {"id": team, "domain": "example"},
        "channel": {"id": channel, "name": "agents-alerts"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "HIGH agent-tool-errors", "blocks": message_blocks(&step_value)},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "vigil_actions", "value": value, "action_ts": "1700000100.000200"}]
    });
    let mut body = String::from("payload=");
    body.extend(form_urlencoded::byte_serialize(
        payload.to_string().as_bytes(),
    ));
    body
}

/// The step's Done button value used in [`click_body`]'s message.
pub fn step_value() -> String {
    button_value(Some((1, "Check the role")))
}

/// `(timestamp, signature)` for `body` signed with `secret` at `at` (epoch seconds).
pub fn signed(secret: &str, at: i64, body: &str) -> (String, String) {
    let ts = at.to_string();
    let sig = sign(secret.as_bytes(), &ts, body.as_bytes()).expect("sign");
    (ts, sig)
}
