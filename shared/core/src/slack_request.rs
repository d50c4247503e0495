//! Slack's interactive requests, pure: the v0 request signature ("Verifying requests from
//! Slack"), the `block_actions` payload of a button click, and the compact value vigil puts
//! into each of its buttons.
//!
//! Invariants:
//! - [`verify`] runs before anything of the request is parsed, and is the only authentication
//!   of the `slack-actions` Function URL: HMAC-SHA256 keyed with the signing secret over
//!   `v0:{timestamp}:{raw body}`, compared in constant time ([`Mac::verify_slice`]); a
//!   timestamp more than [`MAX_SKEW_SECS`] before or after `now` is refused whatever its
//!   signature. A [`Rejection`] names the reason for logs; it never carries the secret, the
//!   expected signature or the body.
//! - Replays inside the timestamp window are the caller's to refuse (one use per signature,
//!   remembered in the state table); this module has no state and no clock.
//! - Nothing here panics on any input: every header, body and payload is untrusted.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// How far (seconds) a request's timestamp may be from now, either way (Slack: five minutes).
pub const MAX_SKEW_SECS: i64 = 300;
/// The largest body verified: Slack's interaction payloads are a few kilobytes to some tens
/// (the message's blocks come along); anything far larger is not from Slack.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The version prefix of the signature header and of the signed base string.
const VERSION: &str = "v0";
/// A SHA-256 MAC in hex.
const SIGNATURE_HEX_CHARS: usize = 64;
/// The longest timestamp header read (an epoch second count has 10 digits until 2286).
const MAX_TIMESTAMP_CHARS: usize = 16;

/// The header carrying the signature (`v0=` and 64 hex digits), lower-case as Function URLs
/// deliver headers.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header carrying the request's epoch seconds.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// Why a request was not accepted as Slack's. For logs only: the HTTP answer is a bare 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("no X-Slack-Signature header")]
    MissingSignature,
    #[error("the timestamp is not a whole number of seconds")]
    BadTimestamp,
    #[error("the timestamp is {0} s old (limit {MAX_SKEW_SECS} s)")]
    Expired(i64),
    #[error("the timestamp is {0} s in the future (limit {MAX_SKEW_SECS} s)")]
    FromTheFuture(i64),
    #[error("the signature header is not v0= followed by 64 hex digits")]
    BadSignatureFormat,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the signing secret is empty")]
    NoSecret,
    #[error("the signature does not match")]
    SignatureMismatch,
    #[error("the request was already used (a replay)")]
    Replayed,
    #[error("the body is flagged base64 but is not")]
    BadEncoding,
}

impl Rejection {
    /// A short stable name for metrics and log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingTimestamp => "missing_timestamp",
            Self::MissingSignature => "missing_signature",
            Self::BadTimestamp => "bad_timestamp",
            Self::Expired(_) => "expired",
            Self::FromTheFuture(_) => "future",
            Self::BadSignatureFormat => "bad_signature_format",
            Self::BodyTooLarge => "body_too_large",
            Self::NoSecret => "no_secret",
            Self::SignatureMismatch => "signature_mismatch",
            Self::Replayed => "replayed",
            Self::BadEncoding => "bad_encoding",
        }
    }
}

/// Verifies Slack's v0 signature of one request: the timestamp is within [`MAX_SKEW_SECS`] of
/// `now_unix` (either way), and `signature_header` is `v0=` + hex of HMAC-SHA256(signing
/// secret, `v0:{timestamp}:{raw body}`), compared in constant time. Headers are taken as given
/// (`None`: absent); surrounding blanks are not tolerated in the signature.
pub fn verify(
    signing_secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    raw_body: &[u8],
    now_unix: i64,
) -> Result<(), Rejection> {
    if signing_secret.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let timestamp = timestamp_header.ok_or(Rejection::MissingTimestamp)?;
    let signature = signature_header.ok_or(Rejection::MissingSignature)?;
    if raw_body.len() > MAX_BODY_BYTES {
        return Err(Rejection::BodyTooLarge);
    }
    if timestamp.is_empty()
        || timestamp.len() > MAX_TIMESTAMP_CHARS
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Rejection::BadTimestamp);
    }
    let sent: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
    let age = now_unix.saturating_sub(sent);
    if age > MAX_SKEW_SECS {
        return Err(Rejection::Expired(age));
    }
    if age < -MAX_SKEW_SECS {
        return Err(Rejection::FromTheFuture(age.saturating_neg()));
    }
    let hex_part = signature
        .strip_prefix("v0=")
        .filter(|h| h.len() == SIGNATURE_HEX_CHARS)
        .ok_or(Rejection::BadSignatureFormat)?;
    let expected = hex::decode(hex_part).map_err(|_| Rejection::BadSignatureFormat)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_secret).map_err(|_| Rejection::NoSecret)?;
    mac.update(VERSION.as_bytes());
    mac.update(b":");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(raw_body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejection::SignatureMismatch)
}

/// The `v0=...` signature of `raw_body` at `timestamp`: what Slack sends. For tests and tools
/// that play Slack; the handler only ever [`verify`]s.
pub fn sign(signing_secret: &[u8], timestamp: &str, raw_body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret).ok()?;
    mac.update(VERSION.as_bytes());
    mac.update(b":");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(raw_body);
    Some(format!(
        "{VERSION}={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

// ---------------------------------------------------------------------------------------------
// The payload
// ---------------------------------------------------------------------------------------------

/// Why a verified body could not be read as a `block_actions` interaction (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload: {0}")]
pub struct PayloadError(pub &'static str);

/// Who clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    pub id: String,
    /// `username` (or `name`) when Slack sent one.
    pub name: Option<String>,
}

impl SlackUser {
    /// `name (id)`, or the id alone: how the ledger and silences name the author.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

/// One clicked element: a button, or an overflow / static select option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickedAction {
    pub action_id: String,
    pub block_id: Option<String>,
    /// The button's `value` (or the selected option's value).
    pub value: Option<String>,
}

/// A `block_actions` interaction: someone clicked something on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockActions {
    pub user: SlackUser,
    pub team_id: Option<String>,
    pub channel_id: Option<String>,
    /// The message's `ts`.
    pub message_ts: Option<String>,
    /// The message's fallback text.
    pub message_text: Option<String>,
    /// The message's blocks as Slack sent them (to edit the message via `response_url`).
    pub message_blocks: Vec<Value>,
    /// Where to answer (at most 5 times within 30 minutes). Untrusted: check its host.
    pub response_url: Option<String>,
    pub actions: Vec<ClickedAction>,
}

/// Reads a verified request body: `application/x-www-form-urlencoded` with one `payload`
/// field holding the interaction JSON, whose `type` must be `block_actions` with a user and
/// at least one action.
pub fn parse_block_actions(body: &[u8]) -> Result<BlockActions, PayloadError> {
    let text = std::str::from_utf8(body).map_err(|_| PayloadError("the body is not UTF-8"))?;
    let payload = form_field(text, "payload").ok_or(PayloadError("no payload field"))?;
    let json: Value =
        serde_json::from_str(&payload).map_err(|_| PayloadError("the payload is not JSON"))?;
    if json.get("type").and_then(Value::as_str) != Some("block_actions") {
        return Err(PayloadError(
            "the payload is not a block_actions interaction",
        ));
    }
    let str_at = |v: &Value, path: &[&str]| -> Option<String> {
        let mut cur = v;
        for key in path {
            cur = cur.get(*key)?;
        }
        cur.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let user_id = str_at(&json, &["user", "id"]).ok_or(PayloadError("no user id"))?;
    let user_name =
        str_at(&json, &["user", "username"]).or_else(|| str_at(&json, &["user", "name"]));
    let actions: Vec<ClickedAction> = json
        .get("actions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(ClickedAction {
                        action_id: str_at(a, &["action_id"])?,
                        block_id: str_at(a, &["block_id"]),
                        value: str_at(a, &["value"])
                            .or_else(|| str_at(a, &["selected_option", "value"])),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if actions.is_empty() {
        return Err(PayloadError("no actions"));
    }
    let message = json.get("message");
    Ok(BlockActions {
        user: SlackUser {
            id: user_id,
            name: user_name,
        },
        team_id: str_at(&json, &["team", "id"]),
        channel_id: str_at(&json, &["channel", "id"])
            .or_else(|| str_at(&json, &["container", "channel_id"])),
        message_ts: message
            .and_then(|m| str_at(m, &["ts"]))
            .or_else(|| str_at(&json, &["container", "message_ts"])),
        message_text: message.and_then(|m| str_at(m, &["text"])),
        message_blocks: message
            .and_then(|m| m.get("blocks"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        response_url: str_at(&json, &["response_url"]),
        actions,
    })
}

/// The first value of `name` in a form-encoded body, decoded.
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == name).then(|| percent_decode(value).map(Cow::into_owned))?
    })
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte); `None` for a
/// bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(hex_digit)?;
                let lo = bytes.next().and_then(hex_digit)?;
                out.push(hi << 4 | lo);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

// ---------------------------------------------------------------------------------------------
// Button values
// ---------------------------------------------------------------------------------------------

/// `action_id` of the Acknowledge button.
pub const ACTION_ACK: &str = "vigil_ack";
/// `action_id`s of the silence buttons, with their durations in hours.
pub const ACTION_SILENCES: [(&str, u32); 3] = [
    ("vigil_silence_1h", 1),
    ("vigil_silence_4h", 4),
    ("vigil_silence_24h", 24),
];
/// `action_id` of a runbook step's Done button.
pub const ACTION_STEP_DONE: &str = "vigil_step_done";
/// Slack's limit on a button's `value`.
pub const MAX_VALUE_CHARS: usize = 2_000;

/// What a vigil button carries (compact JSON in its `value`): enough for the handler to write
/// the ledger of an Acknowledge or a Done without any look-up. The value is whatever the
/// message that holds the button says, so a Silence trusts only its correlation id: the kind,
/// severity, name and group of the alert come from the ledger rows the alerting function
/// wrote for that id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonValue {
    /// The correlation id (the alert id in the message's context line).
    #[serde(rename = "c")]
    pub correlation_id: String,
    /// The alert's name (alarm name, API event name, Config rule).
    #[serde(rename = "n")]
    pub name: String,
    /// The kind's stable id.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The severity's stable id. Shown, never trusted: `slack-actions` takes an alert's kind
    /// and severity from the ledger rows of its correlation id.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The runbook step's number (1-based), for Done buttons.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The runbook step's title, for Done buttons.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub step_title: Option<String>,
}

impl ButtonValue {
    /// The JSON, within [`MAX_VALUE_CHARS`]: while it is longer, the longest text field is
    /// halved (JSON escaping can make a field several times its length).
    pub fn encode(&self) -> String {
        let mut v = self.clone();
        for _ in 0..64 {
            let text = serde_json::to_string(&v).unwrap_or_default();
            if text.chars().count() <= MAX_VALUE_CHARS {
                return text;
            }
            let mut fields: Vec<&mut String> = vec![&mut v.correlation_id, &mut v.name];
            fields.extend(v.step_title.as_mut());
            fields.extend(v.account.as_mut());
            fields.extend(v.region.as_mut());
            fields.extend(v.kind.as_mut());
            fields.extend(v.severity.as_mut());
            if let Some(longest) = fields.into_iter().max_by_key(|f| f.chars().count()) {
                let keep = longest.chars().count() / 2;
                *longest = longest.chars().take(keep).collect();
            }
        }
        "{}".to_owned()
    }

    /// Reads a button's value; `None` when it is not vigil's.
    pub fn decode(value: &str) -> Option<ButtonValue> {
        if value.chars().count() > MAX_VALUE_CHARS {
            return None;
        }
        serde_json::from_str(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "Verifying requests from Slack" (api.slack.com), the worked example, verbatim.
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const DOC_NOW: i64 = 1_531_420_618;

    fn doc(now: i64) -> Result<(), Rejection> {
        verify(
            DOC_SECRET.as_bytes(),
            Some(DOC_TIMESTAMP),
            Some(DOC_SIGNATURE),
            DOC_BODY.as_bytes(),
            now,
        )
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(doc(DOC_NOW), Ok(()));
        assert_eq!(
            sign(DOC_SECRET.as_bytes(), DOC_TIMESTAMP, DOC_BODY.as_bytes()).as_deref(),
            Some(DOC_SIGNATURE)
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_are_refused() {
        assert_eq!(doc(DOC_NOW + 300), Ok(()));
        assert_eq!(doc(DOC_NOW - 300), Ok(()));
        assert_eq!(doc(DOC_NOW + 301), Err(Rejection::Expired(301)));
        assert_eq!(doc(DOC_NOW + 360), Err(Rejection::Expired(360)));
        assert_eq!(doc(DOC_NOW - 301), Err(Rejection::FromTheFuture(301)));
        assert_eq!(doc(DOC_NOW - 360), Err(Rejection::FromTheFuture(360)));
        // Far away either way: no overflow.
        assert!(matches!(doc(i64::MAX), Err(Rejection::Expired(_))));
        assert!(matches!(doc(i64::MIN), Err(Rejection::FromTheFuture(_))));
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let tampered = DOC_BODY.replace("roadrunner", "wile-e-coyote");
        let r = verify(
            DOC_SECRET.as_bytes(),
            Some(DOC_TIMESTAMP),
            Some(DOC_SIGNATURE),
            tampered.as_bytes(),
            DOC_NOW,
        );
        assert_eq!(r, Err(Rejection::SignatureMismatch));
        // One byte more, one byte less.
        for body in [
            format!("{DOC_BODY}&"),
            DOC_BODY[..DOC_BODY.len() - 1].to_owned(),
        ] {
            let r = verify(
                DOC_SECRET.as_bytes(),
                Some(DOC_TIMESTAMP),
                Some(DOC_SIGNATURE),
                body.as_bytes(),
                DOC_NOW,
            );
            assert_eq!(r, Err(Rejection::SignatureMismatch));
        }
    }

    #[test]
    fn a_tampered_timestamp_is_refused() {
        // The timestamp is signed: moving it (to dodge the window) breaks the signature.
        let r = verify(
            DOC_SECRET.as_bytes(),
            Some("1531420619"),
            Some(DOC_SIGNATURE),
            DOC_BODY.as_bytes(),
            DOC_NOW,
        );
        assert_eq!(r, Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn the_wrong_secret_is_refused() {
        for secret in [
            "8f742231b10e8888abcd99yyyzzz85a6",
            "x",
            "8f742231b10e8888abcd99yyyzzz85a",
        ] {
            let r = verify(
                secret.as_bytes(),
                Some(DOC_TIMESTAMP),
                Some(DOC_SIGNATURE),
                DOC_BODY.as_bytes(),
                DOC_NOW,
            );
            assert_eq!(r, Err(Rejection::SignatureMismatch), "{secret}");
        }
        let r = verify(
            b"",
            Some(DOC_TIMESTAMP),
            Some(DOC_SIGNATURE),
            DOC_BODY.as_bytes(),
            DOC_NOW,
        );
        assert_eq!(r, Err(Rejection::NoSecret));
    }

    #[test]
    fn garbled_headers_are_refused() {
        let hex = DOC_SIGNATURE.trim_start_matches("v0=");
        let cases: Vec<(Option<&str>, Option<String>, Rejection)> = vec![
            (
                None,
                Some(DOC_SIGNATURE.into()),
                Rejection::MissingTimestamp,
            ),
            (Some(DOC_TIMESTAMP), None, Rejection::MissingSignature),
            (
                Some(""),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            (
                Some("-1531420618"),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            (
                Some("+1531420618"),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            (
                Some("1531420618.0"),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            (
                Some(" 1531420618"),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            (
                Some("99999999999999999999"),
                Some(DOC_SIGNATURE.into()),
                Rejection::BadTimestamp,
            ),
            // No v0= prefix, another version, wrong case.
            (
                Some(DOC_TIMESTAMP),
                Some(hex.into()),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v1={hex}")),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(format!("V0={hex}")),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={hex} ")),
                Rejection::BadSignatureFormat,
            ),
            // Not hex, too short, too long, empty.
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={}", "g".repeat(64))),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={}", &hex[..63])),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={hex}00")),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some("v0=".into()),
                Rejection::BadSignatureFormat,
            ),
            (
                Some(DOC_TIMESTAMP),
                Some(String::new()),
                Rejection::BadSignatureFormat,
            ),
            // Multi-byte characters where hex should be (no slicing panic).
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={}", "é".repeat(32))),
                Rejection::BadSignatureFormat,
            ),
            // Right shape, wrong MAC.
            (
                Some(DOC_TIMESTAMP),
                Some(format!("v0={}", "0".repeat(64))),
                Rejection::SignatureMismatch,
            ),
        ];
        for (ts, sig, want) in cases {
            let got = verify(
                DOC_SECRET.as_bytes(),
                ts,
                sig.as_deref(),
                DOC_BODY.as_bytes(),
                DOC_NOW,
            );
            assert_eq!(got, Err(want), "{ts:?} {sig:?}");
        }
        // Upper-case hex is still the same MAC (hex::decode accepts it).
        let upper = format!("v0={}", hex.to_uppercase());
        assert_eq!(
            verify(
                DOC_SECRET.as_bytes(),
                Some(DOC_TIMESTAMP),
                Some(&upper),
                DOC_BODY.as_bytes(),
                DOC_NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn oversized_input_is_refused_before_hashing() {
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        let sig = sign(DOC_SECRET.as_bytes(), DOC_TIMESTAMP, &big).unwrap();
        assert_eq!(
            verify(
                DOC_SECRET.as_bytes(),
                Some(DOC_TIMESTAMP),
                Some(&sig),
                &big,
                DOC_NOW
            ),
            Err(Rejection::BodyTooLarge)
        );
        let huge_sig = format!("v0={}", "a".repeat(1 << 20));
        assert_eq!(
            verify(
                DOC_SECRET.as_bytes(),
                Some(DOC_TIMESTAMP),
                Some(&huge_sig),
                DOC_BODY.as_bytes(),
                DOC_NOW
            ),
            Err(Rejection::BadSignatureFormat)
        );
        let huge_ts = "1".repeat(1 << 20);
        assert_eq!(
            verify(
                DOC_SECRET.as_bytes(),
                Some(&huge_ts),
                Some(DOC_SIGNATURE),
                DOC_BODY.as_bytes(),
                DOC_NOW
            ),
            Err(Rejection::BadTimestamp)
        );
    }

    #[test]
    fn rejections_never_show_the_secret_or_the_signature() {
        let r = doc(DOC_NOW + 1_000).unwrap_err();
        let shown = format!("{r} {r:?}");
        assert!(
            !shown.contains(DOC_SECRET) && !shown.contains("a2114d57"),
            "{shown}"
        );
    }

    fn form(payload: &Value) -> String {
        let text = payload.to_string();
        let mut out = String::from("payload=");
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
                out.push(char::from(b));
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    #[test]
    fn a_block_actions_payload_parses() {
        let value = ButtonValue {
            correlation_id: "evt-1".into(),
            name: "bedrock throttles".into(),
            kind: Some("bedrock_throttling".into()),
            severity: Some("high".into()),
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            step: None,
            step_title: None,
        };
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": {"id": "U123", "username": "ada", "name": "ada"},
            "team": {"id": "T1"},
            "channel": {"id": "C9"},
            "container": {"type": "message", "message_ts": "1700000000.000100"},
            "message": {"ts": "1700000000.000100", "text": "alert", "blocks": [{"type": "divider"}]},
            "response_url": "https://hooks.slack.com/actions/T1/1/abc",
            "actions": [{"action_id": "vigil_ack", "block_id": "vigil_actions", "type": "button", "value": value.encode()}]
        });
        let parsed = parse_block_actions(form(&payload).as_bytes()).unwrap();
        assert_eq!(parsed.user.id, "U123");
        assert_eq!(parsed.user.label(), "ada (U123)");
        assert_eq!(parsed.channel_id.as_deref(), Some("C9"));
        assert_eq!(parsed.message_ts.as_deref(), Some("1700000000.000100"));
        assert_eq!(parsed.message_blocks.len(), 1);
        assert_eq!(
            parsed.response_url.as_deref(),
            Some("https://hooks.slack.com/actions/T1/1/abc")
        );
        assert_eq!(parsed.actions[0].action_id, ACTION_ACK);
        let back = ButtonValue::decode(parsed.actions[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"payload",
            b"payload=",
            b"payload=%7",
            b"payload=%ZZ",
            b"payload=%FF%FE",
            b"\xff\xfe",
            b"payload=%7B%7D",
            b"payload=%7B%22type%22%3A%22view_submission%22%7D",
            b"payload=%7B%22type%22%3A%22block_actions%22%7D",
            b"payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D",
            b"token=abc&team_id=T1",
        ] {
            assert!(parse_block_actions(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn button_values_fit_slacks_limit() {
        let v = ButtonValue {
            correlation_id: "c".repeat(3_000),
            name: "n".repeat(3_000),
            step: Some(3),
            step_title: Some("t".repeat(3_000)),
            ..ButtonValue::default()
        };
        let escaped = ButtonValue {
            name: "\u{1}".repeat(1_000),
            account: Some("\"".repeat(1_500)),
            ..v.clone()
        };
        for v in [v, escaped] {
            let text = v.encode();
            assert!(text.chars().count() <= MAX_VALUE_CHARS, "{}", text.len());
            let back = ButtonValue::decode(&text).unwrap();
            assert_eq!(back.step, Some(3));
        }
        assert!(ButtonValue::decode("not json").is_none());
    }
}
