//! One Function URL request from Slack → one answer.
//!
//! Order, and why: (1) the body is decoded (Function URLs base64 form bodies) and the v0
//! signature verified before anything of it is parsed; (2) the signature is claimed in the
//! state table, once: a second use inside the replay window is a replay; (3) only then is the
//! payload read and the action done: the ledger written, a silence stored, the message updated
//! through `response_url` (checked to be Slack's, or the configured test base: never an
//! arbitrary URL from the payload). Anything unverifiable is a bare 401 and changes nothing;
//! a verified but unreadable payload is a 400; an action vigil does not know is a 200 and a
//! log line.

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_adapters::secrets::SigningSecret;
use vigil_adapters::state::DynamoState;
use vigil_core::model::Kind;
use vigil_core::noise::{LedgerEntry, MatchField, MatchOp, Matcher, Outcome, Silence};
use vigil_core::ports::{Claim, StateStore};
use vigil_core::render::slack::{MAX_BLOCKS, escape, mrkdwn_object};
use vigil_core::slack_request::{
    self, ACTION_ACK, ACTION_SILENCES, ACTION_STEP_DONE, BlockActions, ButtonValue, ClickedAction,
    MAX_BODY_BYTES, Rejection, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

use crate::config::REPLAY_WINDOW;

/// The function's name in ledger rows.
pub const FUNCTION: &str = "slack-actions";
/// How long a silence is kept after it ends (as `vigil silence add` keeps it).
pub const KEEP_AFTER_END: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The replay guard claims `<this><signature>` (stored under `event#slack-request#…`); the
/// template's `dynamodb:LeadingKeys` condition on the role names the same prefix.
pub const REPLAY_CLAIM_PREFIX: &str = "slack-request#";

/// What the handler works with, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub state: DynamoState,
    pub signing_secret: SigningSecret,
    /// With a short timeout: the response is sent before Slack's 3 s are up.
    pub http: reqwest::Client,
    /// Besides `https://hooks.slack.com/actions/...`, where a `response_url` may point.
    pub response_base: Option<reqwest::Url>,
    pub ledger_ttl: Duration,
}

/// The answer to one request, and what happened (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `rejected:<reason>`, `replayed`, `acknowledged`, `silenced:<id>`, `step_done:<n>`,
    /// `ignored:<action_id>`, `bad_payload:<why>`, `state_error`.
    pub what: String,
}

impl Answer {
    fn new(status: u16, what: impl Into<String>) -> Self {
        Self {
            status,
            what: what.into(),
        }
    }

    /// The Function URL response: the status and an empty body (Slack reads nothing from it).
    pub fn into_response(self) -> LambdaFunctionUrlResponse {
        let mut r = LambdaFunctionUrlResponse::default();
        r.status_code = i64::from(self.status);
        r.body = Some(String::new());
        r
    }
}

/// Handles one request at `now`.
pub async fn handle(request: &LambdaFunctionUrlRequest, deps: &Deps, now: DateTime<Utc>) -> Answer {
    // 1. Verify, before anything of the body is read.
    let body = match raw_body(request) {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header(SIGNATURE_HEADER);
    if let Err(rejection) = slack_request::verify(
        deps.signing_secret.expose(),
        header(TIMESTAMP_HEADER),
        signature,
        &body,
        now.timestamp(),
    ) {
        return rejected(rejection);
    }
    // 2. One use per signature. Normalised (hex is case-insensitive) so an upper-cased copy of
    // a used signature is the same claim.
    let claim_id = format!(
        "{REPLAY_CLAIM_PREFIX}{}",
        signature.unwrap_or_default().to_ascii_lowercase()
    );
    match deps
        .state
        .claim(&claim_id, now, REPLAY_WINDOW, REPLAY_WINDOW)
        .await
    {
        Ok(Claim::Owned) => {}
        Ok(Claim::Duplicate { .. }) => return rejected(Rejection::Replayed),
        Err(e) => {
            // Fail closed: without the guard a replay could not be told apart.
            tracing::error!(error = %e, "replay guard unavailable; request refused");
            return Answer::new(503, "state_error");
        }
    }
    // 3. Now the payload.
    let interaction = match slack_request::parse_block_actions(&body) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "verified request with an unreadable payload");
            return Answer::new(400, format!("bad_payload:{}", e.0));
        }
    };
    let Some(action) = interaction.actions.first() else {
        return Answer::new(400, "bad_payload:no actions");
    };
    if interaction.actions.len() > 1 {
        tracing::warn!(
            count = interaction.actions.len(),
            "several actions in one interaction; only the first is handled"
        );
    }
    let answer = act(&interaction, action, deps, now).await;
    tracing::info!(
        user = %interaction.user.id,
        action_id = %action.action_id,
        status = answer.status,
        what = %answer.what,
        "slack action"
    );
    answer
}

fn rejected(rejection: Rejection) -> Answer {
    tracing::warn!(
        reason = rejection.as_str(),
        detail = %rejection,
        "request refused: not verifiably from Slack"
    );
    Answer::new(401, format!("rejected:{}", rejection.as_str()))
}

/// The body's bytes as Slack sent them (Function URLs base64 non-text bodies; form bodies
/// usually arrive as text). Too large, or not base64 when flagged so: refused.
fn raw_body(request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, Rejection> {
    let text = request.body.as_deref().unwrap_or_default();
    if text.len() > MAX_BODY_BYTES.saturating_mul(2) {
        return Err(Rejection::BodyTooLarge);
    }
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| Rejection::BadEncoding)
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

async fn act(
    interaction: &BlockActions,
    action: &ClickedAction,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    let id = action.action_id.as_str();
    let silence_hours = ACTION_SILENCES
        .iter()
        .find(|(a, _)| *a == id)
        .map(|(_, h)| *h);
    let known = id == ACTION_ACK || id == ACTION_STEP_DONE || silence_hours.is_some();
    if !known {
        tracing::info!(action_id = %id, "not a vigil action; ignored");
        return Answer::new(200, format!("ignored:{}", cut(id, 64)));
    }
    let Some(value) = action.value.as_deref().and_then(ButtonValue::decode) else {
        return Answer::new(400, "bad_payload:the button's value is not vigil's");
    };
    if let Some(hours) = silence_hours {
        return silence(interaction, &value, hours, deps, now).await;
    }
    if id == ACTION_ACK {
        acknowledge(interaction, &value, deps, now).await
    } else {
        step_done(interaction, action, &value, deps, now).await
    }
}

fn entry(value: &ButtonValue, outcome: Outcome, reason: String, now: DateTime<Utc>) -> LedgerEntry {
    LedgerEntry {
        at: now,
        correlation_id: value.correlation_id.clone(),
        function: FUNCTION.to_owned(),
        outcome,
        reason: Some(reason),
        kind: value
            .kind
            .as_deref()
            .and_then(|k| Kind::ALL.into_iter().find(|known| known.as_str() == k)),
        severity: None,
        name: value.name.clone(),
        group_key: None,
        channels: Vec::new(),
    }
}

async fn record(deps: &Deps, entry: &LedgerEntry) -> Result<(), Answer> {
    deps.state
        .record(entry, deps.ledger_ttl)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "ledger write failed");
            Answer::new(500, "state_error")
        })
}

async fn acknowledge(
    interaction: &BlockActions,
    value: &ButtonValue,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    let who = interaction.user.label();
    let reason = format!("acknowledged by {who} at {}", now.to_rfc3339());
    if let Err(a) = record(deps, &entry(value, Outcome::Acknowledged, reason, now)).await {
        return a;
    }
    let blocks = without_elements(&interaction.message_blocks, |e| {
        e.get("action_id").and_then(Value::as_str) == Some(ACTION_ACK)
    });
    let note = format!(
        "✅ Acknowledged by {} at {} UTC",
        mention(&interaction.user.id),
        now.format("%H:%M")
    );
    let body = json!({
        "replace_original": true,
        "text": fallback_text(interaction, value),
        "blocks": with_context(blocks, &note),
    });
    respond(interaction, &body, deps).await;
    Answer::new(200, "acknowledged")
}

async fn silence(
    interaction: &BlockActions,
    value: &ButtonValue,
    hours: u32,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    if value.name.trim().is_empty() {
        // Account and region alone would silence everything there.
        return Answer::new(400, "bad_payload:no alert name to silence");
    }
    let matcher = |field, value: &str| Matcher {
        field,
        op: MatchOp::Matches,
        value: value.trim().to_owned(),
    };
    let mut matchers = vec![matcher(MatchField::Name, &value.name)];
    for (field, v) in [
        (MatchField::Account, &value.account),
        (MatchField::Region, &value.region),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            matchers.push(matcher(field, v));
        }
    }
    let id = format!(
        "sil-{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(12)
            .collect::<String>()
    );
    let ends_at = now + chrono::Duration::hours(i64::from(hours));
    let who = interaction.user.label();
    let silence = Silence {
        id: id.clone(),
        matchers,
        starts_at: now,
        ends_at,
        author: format!("slack:{who}"),
        reason: "from Slack".to_owned(),
        created_at: now,
        expired_by: None,
    };
    if let Err(e) = deps.state.put_silence(&silence, KEEP_AFTER_END).await {
        tracing::error!(error = %e, "silence write failed");
        return Answer::new(500, "state_error");
    }
    let reason = format!(
        "silenced for {hours} h by {who} ({id}, until {})",
        ends_at.to_rfc3339()
    );
    if let Err(a) = record(deps, &entry(value, Outcome::Silenced, reason, now)).await {
        return a;
    }
    let body = json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": format!(
            "🔕 Silenced *{}* for {hours} h (until {} UTC) by {} — `{id}`. Expire it early with `vigil silence expire {id}`.",
            escape(&cut(&value.name, 200)),
            ends_at.format("%Y-%m-%d %H:%M"),
            mention(&interaction.user.id),
        ),
    });
    respond(interaction, &body, deps).await;
    Answer::new(200, format!("silenced:{id}"))
}

async fn step_done(
    interaction: &BlockActions,
    action: &ClickedAction,
    value: &ButtonValue,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    let Some(step) = value.step else {
        return Answer::new(400, "bad_payload:no step number");
    };
    let title = value.step_title.clone().unwrap_or_default();
    let who = interaction.user.label();
    let reason = format!(
        "step {step} done by {who} at {}: {}",
        now.to_rfc3339(),
        cut(&title, 300)
    );
    if let Err(a) = record(deps, &entry(value, Outcome::StepDone, reason, now)).await {
        return a;
    }
    let clicked = action.value.as_deref();
    let blocks = without_elements(&interaction.message_blocks, |e| {
        e.get("action_id").and_then(Value::as_str) == Some(ACTION_STEP_DONE)
            && e.get("value").and_then(Value::as_str) == clicked
    });
    let note = format!(
        "☑️ Step {step} done by {} at {} UTC{}",
        mention(&interaction.user.id),
        now.format("%H:%M"),
        if title.is_empty() {
            String::new()
        } else {
            format!(": {}", escape(&cut(&title, 200)))
        }
    );
    let body = json!({
        "replace_original": true,
        "text": fallback_text(interaction, value),
        "blocks": with_context(blocks, &note),
    });
    respond(interaction, &body, deps).await;
    Answer::new(200, format!("step_done:{step}"))
}

/// `<@U123>`, keeping only the characters a Slack user id has.
fn mention(user_id: &str) -> String {
    let id: String = user_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    format!("<@{id}>")
}

/// The `text` of an updated message: the original's, as Slack sends it back (already in
/// Slack's escaped form, since vigil escaped it), else the alert's name, escaped like every
/// value vigil puts into Slack text.
fn fallback_text(interaction: &BlockActions, value: &ButtonValue) -> String {
    interaction
        .message_text
        .clone()
        .unwrap_or_else(|| escape(&cut(&value.name, 200)).into_owned())
}

/// At most `n` characters.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The blocks with the matching elements of `actions` blocks (an `actions` block left empty
/// goes too) and matching section accessories removed.
fn without_elements(blocks: &[Value], remove: impl Fn(&Value) -> bool) -> Vec<Value> {
    blocks
        .iter()
        .filter_map(|block| {
            let mut block = block.clone();
            if let Some(map) = block.as_object_mut()
                && map.get("accessory").is_some_and(&remove)
            {
                map.remove("accessory");
            }
            if block.get("type").and_then(Value::as_str) == Some("actions")
                && let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut)
            {
                elements.retain(|e| !remove(e));
                if elements.is_empty() {
                    return None;
                }
            }
            Some(block)
        })
        .collect()
}

/// The blocks and a context line, within [`MAX_BLOCKS`]: the line goes before the trailing
/// `actions` blocks (buttons stay last); when full, the last other block before them gives way.
fn with_context(mut blocks: Vec<Value>, text: &str) -> Vec<Value> {
    let context = json!({"type": "context", "elements": [mrkdwn_object(text.to_owned())]});
    let is_actions = |b: &Value| b.get("type").and_then(Value::as_str) == Some("actions");
    let mut at = blocks.len();
    while at > 0 && blocks.get(at - 1).is_some_and(is_actions) {
        at -= 1;
    }
    while blocks.len() >= MAX_BLOCKS && at > 1 {
        blocks.remove(at - 1);
        at -= 1;
    }
    if blocks.len() >= MAX_BLOCKS {
        blocks.truncate(MAX_BLOCKS - 1);
        at = at.min(blocks.len());
    }
    blocks.insert(at, context);
    blocks
}

/// Whether `url` may be posted to: Slack's `https://hooks.slack.com/actions/...`, or under the
/// configured base's origin (tests: the stand-in). Credentials in the URL, other hosts, ports
/// or schemes: no.
pub fn allowed_response_url(url: &str, base: Option<&reqwest::Url>) -> Option<reqwest::Url> {
    let u = reqwest::Url::parse(url).ok()?;
    if !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    let slack = u.scheme() == "https"
        && u.host_str() == Some("hooks.slack.com")
        && u.port().is_none()
        && u.path().starts_with("/actions/");
    let test = base.is_some_and(|b| {
        u.scheme() == b.scheme()
            && u.host_str() == b.host_str()
            && u.port_or_known_default() == b.port_or_known_default()
    });
    (slack || test).then_some(u)
}

/// Posts `body` to the interaction's `response_url`, if it is allowed. Best effort: the action
/// is already recorded; a failure is logged (without the URL, which is a credential).
async fn respond(interaction: &BlockActions, body: &Value, deps: &Deps) {
    let Some(raw) = interaction.response_url.as_deref() else {
        tracing::warn!("no response_url in the payload; message not updated");
        return;
    };
    let Some(url) = allowed_response_url(raw, deps.response_base.as_ref()) else {
        tracing::warn!("response_url is not Slack's; not posted to");
        return;
    };
    match deps.http.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(
            status = r.status().as_u16(),
            "response_url refused the update"
        ),
        Err(e) => tracing::warn!(
            timeout = e.is_timeout(),
            "response_url could not be reached"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slack_or_the_configured_base_is_posted_to() {
        let base = reqwest::Url::parse("http://127.0.0.1:4567").ok();
        let ok = |u: &str| allowed_response_url(u, base.as_ref()).is_some();
        assert!(ok("https://hooks.slack.com/actions/T1/2/abc"));
        assert!(ok("http://127.0.0.1:4567/actions/T1/2/abc"));
        for bad in [
            "http://hooks.slack.com/actions/T1/2/abc",
            "https://hooks.slack.com:8443/actions/T1/2/abc",
            "https://hooks.slack.com.evil.example/actions/T1/2/abc",
            "https://hooks.slack.com.evil.net/actions/T1/2/abc",
            "https://hooks.slack.com@evil.net/actions/T1/2/abc",
            "https://evil.net/hooks.slack.com/actions/T1/2/abc",
            "http://127.0.0.1.evil.net:4567/actions/x",
            "http://127.0.0.1:4567@evil.net:4567/actions/x",
            "http://127.0.0.1@evil.net:4567/actions/x",
            "https://evil.example/actions/T1/2/abc",
            "https://user:pw@hooks.slack.com/actions/T1/2/abc",
            "https://hooks.slack.com/services/T1/B1/abc",
            "http://127.0.0.1:4568/actions/x",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        assert!(allowed_response_url("http://127.0.0.1:4567/actions/x", None).is_none());
    }

    #[test]
    fn context_lines_keep_the_buttons_last_and_the_block_limit() {
        let section = json!({"type": "section"});
        let actions = json!({"type": "actions", "elements": [{"action_id": "x"}]});
        let out = with_context(vec![section.clone(), actions.clone()], "note");
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["type"], "context");
        assert_eq!(out[2]["type"], "actions");
        let mut full = vec![section; MAX_BLOCKS - 1];
        full.push(actions);
        let out = with_context(full, "note");
        assert_eq!(out.len(), MAX_BLOCKS);
        assert_eq!(out[MAX_BLOCKS - 1]["type"], "actions");
        assert_eq!(out[MAX_BLOCKS - 2]["type"], "context");
        assert_eq!(with_context(Vec::new(), "n").len(), 1);
    }

    #[test]
    fn removing_the_last_button_removes_its_block() {
        let blocks = vec![
            json!({"type": "actions", "elements": [{"action_id": "vigil_ack"}]}),
            json!({"type": "actions", "elements": [{"action_id": "vigil_ack"}, {"action_id": "vigil_silence_1h"}]}),
        ];
        let out = without_elements(&blocks, |e| e["action_id"] == "vigil_ack");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["elements"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn update_texts_escape_the_alert_name_and_context_lines_are_verbatim() {
        let name = "<!channel> <https://evil.example|x> &lt;!here&gt; d\u{200b}b\u{202e}";
        let value = ButtonValue {
            name: name.into(),
            ..ButtonValue::default()
        };
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U1"},
            "actions": [{"action_id": ACTION_ACK, "value": value.encode()}],
        });
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let interaction = slack_request::parse_block_actions(body.as_bytes()).unwrap();
        // No text in the payload: the update's text is the alert's name, escaped.
        assert_eq!(interaction.message_text, None);
        assert_eq!(
            fallback_text(&interaction, &value),
            "&lt;!channel&gt; &lt;https://evil.example|x&gt; &amp;lt;!here&amp;gt; db"
        );
        let blocks = with_context(Vec::new(), "&lt;x&gt;");
        assert_eq!(
            blocks[0]["elements"][0],
            json!({"type": "mrkdwn", "text": "&lt;x&gt;", "verbatim": true})
        );
    }

    #[test]
    fn mentions_keep_only_id_characters() {
        assert_eq!(mention("U123"), "<@U123>");
        assert_eq!(mention("U1> <!channel"), "<@U1channel>");
    }
}
