//! One Function URL request from Slack → one answer.
//!
//! Order, and why: (1) the body is decoded (Function URLs base64 form bodies) and the v0
//! signature verified before anything of it is parsed; (2) the signature is claimed in the
//! state table, once: a second use inside the replay window is a replay; (3) only then is the
//! payload read; (4) the workspace and channel are checked against the configured ones, and
//! for a Silence the user against the silencer group; (5) the action is done: the ledger
//! written, a silence stored, the message updated through `response_url` (checked to be
//! Slack's, or the configured test base: never an arbitrary URL from the payload). Anything
//! unverifiable is a bare 401 and changes nothing; a verified but unreadable payload is a 400;
//! a refused click (step 4, or a protected alert) is a 403, a `refused` ledger row and an
//! ephemeral note; an action vigil does not know is a 200 and a log line.
//!
//! Silences: a button's value is the message's word, so a Silence takes only the correlation
//! id from it. The alert's kind, severity, name and group come from the ledger rows the
//! alerting function wrote for that id; `critical` and `audit_tampering` alerts (in any row)
//! are refused, and so is an id with no such row. The silence is exact (`==`) on the name,
//! kind, resource, account and Region of that group: one alarm, or one API call on one
//! resource, never every alert of the same name.

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_adapters::secrets::SigningSecret;
use vigil_adapters::state::DynamoState;
use vigil_core::model::{Kind, Severity};
use vigil_core::noise::{LedgerEntry, MatchField, Matcher, Outcome, Silence};
use vigil_core::ports::{Claim, StateStore};
use vigil_core::render::slack::{MAX_BLOCKS, escape, mrkdwn_object};
use vigil_core::slack_request::{
    self, ACTION_ACK, ACTION_SILENCES, ACTION_STEP_DONE, BlockActions, ButtonValue, ClickedAction,
    MAX_BODY_BYTES, Rejection, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

use crate::access::{Refusal, Silencers, check_place, shown};
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
    /// Set: only this workspace's requests are answered.
    pub team_id: Option<String>,
    /// Set: only clicks in these channels are answered.
    pub allowed_channels: Option<Vec<String>>,
    /// Set: only this user group's members may silence.
    pub silencers: Option<Silencers>,
}

/// The answer to one request, and what happened (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `rejected:<reason>`, `replayed`, `acknowledged`, `silenced:<id>`, `step_done:<n>`,
    /// `refused:<code>` (403: wrong workspace or channel, not a silencer, an alert Slack may
    /// not silence), `ignored:<action_id>`, `bad_payload:<why>`, `state_error`.
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
    if let Err(refusal) = check_place(
        interaction,
        deps.team_id.as_deref(),
        deps.allowed_channels.as_deref(),
    ) {
        return refuse(interaction, &value, id, refusal, deps, now).await;
    }
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

/// Refuses a click: a ledger row (outcome `refused`, naming who, where and why), a log line,
/// an ephemeral note to the person, and 403.
async fn refuse(
    interaction: &BlockActions,
    value: &ButtonValue,
    action_id: &str,
    refusal: Refusal,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    tracing::warn!(
        code = refusal.code,
        detail = %refusal.detail,
        user = %shown(Some(&interaction.user.id)),
        team = %shown(interaction.team_id.as_deref()),
        channel = %shown(interaction.channel_id.as_deref()),
        action_id = %cut(action_id, 64),
        "slack action refused"
    );
    let reason = format!(
        "{} refused for {} ({}): {}",
        cut(action_id, 64),
        interaction.user.label(),
        place(interaction),
        refusal.detail
    );
    let mut row = entry(value, Outcome::Refused, reason, now);
    // The button's kind is the message's word, not a fact: a refusal does not repeat it.
    row.kind = None;
    if let Err(e) = deps.state.record(&row, deps.ledger_ttl).await {
        tracing::error!(error = %e, "ledger write of a refusal failed");
    }
    let body = json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": format!("🚫 Not done: {}", escape(&refusal.detail)),
    });
    respond(interaction, &body, deps).await;
    Answer::new(403, format!("refused:{}", refusal.code))
}

/// `user U…, team T…, channel C…` of a request.
fn place(interaction: &BlockActions) -> String {
    format!(
        "user {}, team {}, channel {}",
        shown(Some(&interaction.user.id)),
        shown(interaction.team_id.as_deref()),
        shown(interaction.channel_id.as_deref())
    )
}

/// What the alerting functions recorded about one alert: its kind, severity, name and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub kind: Kind,
    pub severity: Option<Severity>,
    pub name: String,
    pub group_key: String,
}

/// The alert behind `correlation_id`, from the ledger rows written by the functions that
/// handled it (`slack-actions`' own rows repeat a button's words and are skipped). A protected
/// alert ([`vigil_core::noise::is_protected`]) in any row is refused; so is an alert with no row carrying a group
/// key (nothing vigil sent, or its row could not be written): without it the silence could not
/// be made narrow.
pub fn recorded(rows: &[LedgerEntry], correlation_id: &str) -> Result<Recorded, Refusal> {
    let trusted: Vec<&LedgerEntry> = rows
        .iter()
        .filter(|r| r.function != FUNCTION && r.correlation_id == correlation_id)
        .collect();
    if let Some(r) = trusted
        .iter()
        .find(|r| r.kind == Some(Kind::AuditTampering) || r.severity == Some(Severity::Critical))
    {
        let what = match (r.kind, r.severity) {
            (Some(k), Some(s)) => format!("{s} {k}"),
            (Some(k), None) => k.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => "protected".to_owned(),
        };
        return Err(Refusal::new(
            "protected",
            format!(
                "alert {} is {what}: critical and audit_tampering alerts cannot be silenced from Slack (use `vigil silence add --allow-critical` with an author and a reason)",
                cut(correlation_id, 80)
            ),
        ));
    }
    trusted
        .iter()
        .find_map(|r| {
            Some(Recorded {
                kind: r.kind?,
                severity: r.severity,
                name: r.name.clone(),
                group_key: r.group_key.clone().filter(|k| !k.is_empty())?,
            })
        })
        .ok_or_else(|| {
            Refusal::new(
                "unknown_alert",
                format!(
                    "no record of alert {} and its group: nothing silenced",
                    cut(correlation_id, 80)
                ),
            )
        })
}

/// The exact matchers of a Slack silence: the alert's name, kind, resource (or, for denied calls,
/// which are grouped by caller, the actor), account and Region as recorded (its group key is
/// `account|region|kind|resource` or `account|region|kind|actor:<principal>`; an unknown account
/// or Region, `-`, adds no matcher). Every one is `==`: `*` and `?` in a name or resource are themselves.
pub fn silence_matchers(alert: &Recorded) -> Result<Vec<Matcher>, Refusal> {
    let bad = || {
        Refusal::new(
            "unknown_alert",
            "the recorded group key is not account|region|kind|resource: nothing silenced",
        )
    };
    let mut parts = alert.group_key.splitn(4, '|');
    let (Some(account), Some(region), Some(kind), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if kind != alert.kind.as_str() || resource.is_empty() {
        return Err(bad());
    }
    let mut matchers = Vec::new();
    if !alert.name.trim().is_empty() {
        matchers.push(Matcher::exact(MatchField::Name, alert.name.clone()));
    }
    matchers.push(Matcher::exact(MatchField::Kind, kind));
    // Denied calls are grouped by the caller (`actor:<principal>`), everything else by resource.
    match resource.strip_prefix("actor:") {
        Some(actor) if !actor.is_empty() => {
            matchers.push(Matcher::exact(MatchField::Actor, actor));
        }
        _ => matchers.push(Matcher::exact(MatchField::Resource, resource)),
    }
    for (field, v) in [(MatchField::Account, account), (MatchField::Region, region)] {
        if v != "-" && !v.trim().is_empty() {
            matchers.push(Matcher::exact(field, v));
        }
    }
    Ok(matchers)
}

async fn silence(
    interaction: &BlockActions,
    value: &ButtonValue,
    hours: u32,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Answer {
    let action_id = format!("vigil_silence_{hours}h");
    // Refused from the button's own words first (a rendered protected alert has no Silence
    // button), then from the record, which the message cannot change.
    let says_protected = value
        .kind
        .as_deref()
        .is_some_and(|k| k == Kind::AuditTampering.as_str())
        || value.severity.as_deref() == Some(Severity::Critical.as_str());
    if says_protected {
        let refusal = Refusal::new(
            "protected",
            "critical and audit_tampering alerts cannot be silenced from Slack (use `vigil silence add --allow-critical` with an author and a reason)",
        );
        return refuse(interaction, value, &action_id, refusal, deps, now).await;
    }
    if let Some(silencers) = &deps.silencers
        && let Err(refusal) = silencers.check(&deps.http, &interaction.user.id).await
    {
        return refuse(interaction, value, &action_id, refusal, deps, now).await;
    }
    if value.correlation_id.trim().is_empty() {
        let refusal = Refusal::new(
            "unknown_alert",
            "the button names no alert: nothing silenced",
        );
        return refuse(interaction, value, &action_id, refusal, deps, now).await;
    }
    let rows = match deps
        .state
        .ledger_by_correlation(&value.correlation_id)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "ledger read failed; nothing silenced");
            return Answer::new(503, "state_error");
        }
    };
    let alert = match recorded(&rows, &value.correlation_id) {
        Ok(alert) => alert,
        Err(refusal) => return refuse(interaction, value, &action_id, refusal, deps, now).await,
    };
    let matchers = match silence_matchers(&alert) {
        Ok(m) => m,
        Err(refusal) => return refuse(interaction, value, &action_id, refusal, deps, now).await,
    };
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
    let shown_matchers = matchers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let silence = Silence {
        id: id.clone(),
        matchers,
        starts_at: now,
        ends_at,
        author: format!("slack:{who}"),
        reason: format!(
            "from Slack ({}), alert {}",
            place(interaction),
            cut(&value.correlation_id, 80)
        ),
        created_at: now,
        expired_by: None,
    };
    if let Err(e) = deps.state.put_silence(&silence, KEEP_AFTER_END).await {
        tracing::error!(error = %e, "silence write failed");
        return Answer::new(500, "state_error");
    }
    let reason = format!(
        "silenced for {hours} h by {who} ({}): {id} matching {shown_matchers}, until {}",
        place(interaction),
        ends_at.to_rfc3339()
    );
    let mut row = entry(value, Outcome::Silenced, reason, now);
    row.kind = Some(alert.kind);
    row.severity = alert.severity;
    row.name = alert.name.clone();
    row.group_key = Some(alert.group_key.clone());
    if let Err(a) = record(deps, &row).await {
        return a;
    }
    let body = json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": format!(
            "🔕 Silenced this alert's group (*{}*) for {hours} h (until {} UTC) by {} — `{id}`. Expire it early with `vigil silence expire {id}`.",
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

    fn row(function: &str, kind: Kind, severity: Severity, key: Option<&str>) -> LedgerEntry {
        LedgerEntry {
            at: Utc::now(),
            correlation_id: "evt-1".into(),
            function: function.into(),
            outcome: Outcome::Sent,
            reason: None,
            kind: Some(kind),
            severity: Some(severity),
            name: "StopLogging".into(),
            group_key: key.map(str::to_owned),
            channels: Vec::new(),
        }
    }

    #[test]
    fn the_record_not_the_button_decides() {
        let key = "1|us-east-1|access_denied|arn:aws:s3:::b|c";
        let sent = row(
            "handle-event",
            Kind::AccessDenied,
            Severity::Medium,
            Some(key),
        );
        let got = recorded(std::slice::from_ref(&sent), "evt-1").unwrap();
        assert_eq!(got.group_key, key);
        // slack-actions' own rows (which repeat a button) and other ids do not count.
        let own = row(FUNCTION, Kind::AccessDenied, Severity::Low, Some(key));
        assert_eq!(recorded(&[own], "evt-1").unwrap_err().code, "unknown_alert");
        assert_eq!(
            recorded(std::slice::from_ref(&sent), "evt-2")
                .unwrap_err()
                .code,
            "unknown_alert"
        );
        let no_key = row("handle-event", Kind::AccessDenied, Severity::Low, None);
        assert_eq!(
            recorded(&[no_key], "evt-1").unwrap_err().code,
            "unknown_alert"
        );
        // Any protected row refuses, whatever the others say.
        for (k, sev) in [
            (Kind::AuditTampering, Severity::High),
            (Kind::ThrottleSpike, Severity::Critical),
        ] {
            let bad = row("handle-alarm", k, sev, Some(key));
            let e = recorded(&[sent.clone(), bad], "evt-1").unwrap_err();
            assert_eq!(e.code, "protected");
        }
        // The matchers: exact, from the group key; a `|` inside the resource stays in it.
        let m: Vec<String> = silence_matchers(&got)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            m,
            [
                "name==StopLogging",
                "kind==access_denied",
                "resource==arn:aws:s3:::b|c",
                "account==1",
                "region==us-east-1"
            ]
        );
        let unknown_place = Recorded {
            group_key: "-|-|access_denied|r".into(),
            ..got.clone()
        };
        assert_eq!(silence_matchers(&unknown_place).unwrap().len(), 3);
        // Denied calls are grouped by caller: the silence names the actor, not a resource.
        let by_actor = Recorded {
            group_key: "1|us-east-1|access_denied|actor:arn:aws:iam::1:user/mallory".into(),
            ..got.clone()
        };
        let m: Vec<String> = silence_matchers(&by_actor)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            m.contains(&"actor==arn:aws:iam::1:user/mallory".to_owned()),
            "{m:?}"
        );
        assert!(!m.iter().any(|x| x.starts_with("resource")), "{m:?}");
        for bad in [
            "a|b|access_denied",
            "a|b|error_spike|r",
            "a|b|access_denied|",
        ] {
            let r = Recorded {
                group_key: bad.into(),
                ..got.clone()
            };
            assert!(silence_matchers(&r).is_err(), "{bad}");
        }
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
