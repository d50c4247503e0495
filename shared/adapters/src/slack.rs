//! Slack delivery: [`SlackNotifier`], an incoming webhook or the Web API with a bot token.
//!
//! Behaviour within the invocation's `time_left` (README.md "Usage"):
//! - HTTP 429 (or Web API `ratelimited`): wait `Retry-After` seconds if that still leaves the
//!   policy's margin, else fail at once as retryable.
//! - 5xx, 408, connect errors and timeouts: back off 200 ms, 400 ms, 800 ms, within time left.
//! - `invalid_blocks`: send the same message once more as plain text and report
//!   `fell_back_to_text`.
//! - `no_service`, `channel_is_archived`, `invalid_auth`, `channel_not_found`, other 4xx and
//!   other Web API errors: fail at once, not retryable.
//!
//! Invariant: the webhook URL and the bot token appear only in the outgoing request. Errors
//! and log lines carry the channel label, the attempt count and Slack's own error words, masked
//! with [`mask_secrets`] and scrubbed of the credential; `reqwest` errors are stripped of their
//! URL before they are described.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};
use vigil_core::ports::{Delivered, DeliveryError, Notifier, Outgoing};
use vigil_core::redact::mask_secrets;
use vigil_core::render::SlackMessage;

use crate::delivery::{Budget, RetryPolicy, cap, channel_label};
use crate::secrets::{InvalidValue, SecretLoader, SecretRef, SlackCredentials};

/// Slack's Web API.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";

/// What Slack's `Retry-After` is taken to be when it is missing or unreadable: Slack's
/// documented per-channel pace is about one message a second.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A `Retry-After` beyond this is treated as this; no invocation waits that long anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);
/// Longest piece of a Slack response echoed into an error.
const ECHO_CHARS: usize = 200;

/// Builds the HTTP client the notifier should use: no redirects (a webhook or the Web API
/// never redirects, and following one would send the alert where nobody configured it) and
/// a short connect timeout (the per-attempt timeout bounds the rest).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .build()
}

/// Sends [`Outgoing::Slack`] messages through an incoming webhook or, with a bot token,
/// `chat.postMessage` (replies with `thread_ts`) and `chat.update` (edits with `update_ts`).
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    http: reqwest::Client,
    credentials: SlackCredentials,
    api_base: Option<reqwest::Url>,
    policy: RetryPolicy,
}

/// Which Slack endpoint one message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Webhook,
    PostMessage,
    Update,
}

/// What one attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Delivered; the Web API's `ts`.
    Sent(Option<String>),
    /// Slack refused the blocks; plain text may pass.
    InvalidBlocks(String),
    /// Slow down for this long.
    RateLimited { after: Duration, reason: String },
    /// Worth another attempt after a back-off.
    Transient(String),
    /// Will fail the same way every time.
    Permanent(String),
}

impl SlackNotifier {
    /// A notifier for these credentials, using `http` (see [`http_client`]), the Web API at
    /// [`DEFAULT_API_BASE`] and the default [`RetryPolicy`].
    pub fn new(http: reqwest::Client, credentials: SlackCredentials) -> Self {
        // The constant parses; should it ever not, bot-token sends report an unusable API base
        // instead of panicking.
        let api_base = reqwest::Url::parse(DEFAULT_API_BASE)
            .ok()
            .map(with_trailing_slash);
        Self {
            http,
            credentials,
            api_base,
            policy: RetryPolicy::default(),
        }
    }

    /// Points the Web API calls elsewhere (a stand-in in tests, Slack GovSlack in production).
    /// `https` only, or `http` to a loopback address.
    pub fn with_api_base(mut self, base: &str) -> Result<Self, InvalidValue> {
        let url = parse_api_base(base)?;
        self.api_base = Some(with_trailing_slash(url));
        Ok(self)
    }

    /// Replaces the retry schedule.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The credentials' mode: `webhook` or `bot token`.
    pub fn mode(&self) -> &'static str {
        self.credentials.mode()
    }

    async fn deliver(
        &self,
        outgoing: &Outgoing,
        time_left: Duration,
    ) -> Result<Delivered, DeliveryError> {
        let Outgoing::Slack {
            channel,
            message,
            thread_ts,
            update_ts,
        } = outgoing
        else {
            return Err(DeliveryError {
                channel: channel_label(outgoing),
                reason: "the Slack notifier was given a message for another channel".to_owned(),
                retryable: false,
                attempts: 0,
            });
        };
        let (call, label) = match &self.credentials {
            SlackCredentials::Webhook(_) => {
                if thread_ts.is_some() || update_ts.is_some() {
                    // Incoming webhooks can neither reply in a thread nor edit; the alert
                    // still matters, so it goes out as a message of its own.
                    tracing::debug!("webhook mode: thread reply / edit sent as a new message");
                }
                (Call::Webhook, "slack:webhook".to_owned())
            }
            SlackCredentials::BotToken(_) => {
                let label = channel_label(outgoing);
                if channel.as_deref().is_none_or(str::is_empty) {
                    return Err(DeliveryError {
                        channel: label,
                        reason: "bot-token mode needs a channel and the message has none"
                            .to_owned(),
                        retryable: false,
                        attempts: 0,
                    });
                }
                let call = if update_ts.is_some() {
                    Call::Update
                } else {
                    Call::PostMessage
                };
                (call, label)
            }
        };
        let url = match self.endpoint(call) {
            Some(url) => url,
            None => {
                return Err(DeliveryError {
                    channel: label,
                    reason: "the Slack API base URL is not usable".to_owned(),
                    retryable: false,
                    attempts: 0,
                });
            }
        };
        let body = |plain: bool| {
            request_body(
                call,
                message,
                channel.as_deref(),
                thread_ts.as_deref(),
                update_ts.as_deref(),
                plain,
            )
        };

        let budget = Budget::new(time_left);
        let mut attempts = 0u32;
        let mut transient = 0u32;
        let mut plain = false;
        let mut last = "no time left to send".to_owned();
        let fail = |reason: String, retryable: bool, attempts: u32| DeliveryError {
            channel: label.clone(),
            reason,
            retryable,
            attempts,
        };
        loop {
            if attempts >= self.policy.max_attempts {
                return Err(fail(
                    format!("{last}; gave up after {attempts} attempts"),
                    true,
                    attempts,
                ));
            }
            let Some(timeout) = budget.attempt_timeout(&self.policy) else {
                return Err(fail(
                    format!("{last}; no time left for another attempt"),
                    true,
                    attempts,
                ));
            };
            attempts += 1;
            let verdict = self.attempt(call, &url, &body(plain), timeout).await;
            tracing::debug!(channel = %label, attempt = attempts, verdict = ?verdict, "slack attempt");
            match verdict {
                Verdict::Sent(ts) => {
                    return Ok(Delivered {
                        channel: label,
                        id: ts,
                        fell_back_to_text: plain,
                        attempts,
                    });
                }
                Verdict::InvalidBlocks(reason) if !plain => {
                    tracing::warn!(channel = %label, attempt = attempts, reason = %reason, "slack refused the blocks; sending plain text");
                    plain = true;
                    last = reason;
                }
                Verdict::InvalidBlocks(reason) | Verdict::Permanent(reason) => {
                    return Err(fail(reason, false, attempts));
                }
                Verdict::RateLimited { after, reason } => {
                    if !budget.fits(after, self.policy.margin) {
                        return Err(fail(
                            format!(
                                "{reason}; Retry-After {}s does not fit in the {} ms left",
                                after.as_secs(),
                                budget.remaining().as_millis()
                            ),
                            true,
                            attempts,
                        ));
                    }
                    tracing::warn!(channel = %label, attempt = attempts, wait_ms = after.as_millis() as u64, "slack rate limit; waiting Retry-After");
                    tokio::time::sleep(after).await;
                    last = reason;
                }
                Verdict::Transient(reason) => {
                    transient += 1;
                    match self.policy.backoff(transient) {
                        Some(wait) if budget.fits(wait, self.policy.margin) => {
                            tracing::warn!(channel = %label, attempt = attempts, wait_ms = wait.as_millis() as u64, reason = %reason, "slack failed; backing off");
                            tokio::time::sleep(wait).await;
                            last = reason;
                        }
                        Some(_) => {
                            return Err(fail(
                                format!("{reason}; no time left to back off and retry"),
                                true,
                                attempts,
                            ));
                        }
                        None => return Err(fail(reason, true, attempts)),
                    }
                }
            }
        }
    }

    fn endpoint(&self, call: Call) -> Option<reqwest::Url> {
        match (&self.credentials, call) {
            (SlackCredentials::Webhook(url), _) => Some(url.expose().clone()),
            (SlackCredentials::BotToken(_), Call::Update) => {
                self.api_base.as_ref()?.join("chat.update").ok()
            }
            (SlackCredentials::BotToken(_), _) => {
                self.api_base.as_ref()?.join("chat.postMessage").ok()
            }
        }
    }

    async fn attempt(
        &self,
        call: Call,
        url: &reqwest::Url,
        body: &Value,
        timeout: Duration,
    ) -> Verdict {
        let mut request = self
            .http
            .post(url.clone())
            .timeout(timeout)
            // Slack's Web API wants the charset spelled out for JSON bodies.
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string());
        if let SlackCredentials::BotToken(token) = &self.credentials {
            request = request.bearer_auth(token.expose());
        }
        // A timed-out POST may still have been delivered; retrying it risks a duplicate,
        // which beats a lost alert.
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Verdict::Transient(self.describe(e, timeout)),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Verdict::Transient(self.describe(e, timeout)),
        };
        let text = self.scrub(&text);
        match call {
            Call::Webhook => webhook_verdict(status, &text, retry_after),
            Call::PostMessage | Call::Update => web_api_verdict(status, &text, retry_after),
        }
    }

    /// A transport error in words, without its URL, masked and scrubbed of the credential.
    fn describe(&self, error: reqwest::Error, timeout: Duration) -> String {
        let what = if error.is_timeout() {
            format!("timed out after {} ms", timeout.as_millis())
        } else if error.is_connect() {
            "could not connect to Slack".to_owned()
        } else {
            "request to Slack failed".to_owned()
        };
        let error = error.without_url();
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&error);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        let detail = if chain.is_empty() {
            what
        } else {
            format!("{what} ({})", chain.join(": "))
        };
        cap(&self.scrub(&detail), ECHO_CHARS * 2)
    }

    /// Masks secrets in text that came from outside, and removes this notifier's own
    /// credential should the far end echo it back.
    fn scrub(&self, text: &str) -> String {
        let mut out = mask_secrets(text);
        let secret = match &self.credentials {
            SlackCredentials::Webhook(url) => url.expose().path().to_owned(),
            SlackCredentials::BotToken(token) => token.expose().to_owned(),
        };
        if !secret.is_empty() && out.contains(&secret) {
            out = out.replace(&secret, "[redacted]");
        }
        out
    }
}

impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        "slack"
    }

    fn send(
        &self,
        message: &Outgoing,
        time_left: Duration,
    ) -> impl Future<Output = Result<Delivered, DeliveryError>> + Send {
        self.deliver(message, time_left)
    }
}

/// `Url::join` replaces the last path segment unless the path ends with '/', so
/// `https://slack.com/api` must become `https://slack.com/api/` before methods are joined.
/// A Slack API base (`VIGIL_SLACK_API_BASE`): an `https` URL, or `http` to a loopback address
/// (the local stand-in). The URL is parsed and its host compared, never its text: a prefix test
/// lets `http://127.0.0.1.evil.net` (a domain) or `http://127.0.0.1@evil.net` (user info before
/// the host `evil.net`) through. Credentials, a query or a fragment are refused too.
pub fn parse_api_base(base: &str) -> Result<reqwest::Url, InvalidValue> {
    let url = reqwest::Url::parse(base.trim())
        .map_err(|_| InvalidValue::new("the Slack API base is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidValue::new(
            "the Slack API base must not carry a user name or password",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidValue::new(
            "the Slack API base must not carry a query or fragment",
        ));
    }
    // The parsed host: an http URL's IPv4 host is normalised (`127.1` is `127.0.0.1`), an IPv6
    // host is bracketed, anything else is a domain name.
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let has_host = !host.is_empty();
    match url.scheme() {
        "https" if has_host => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(InvalidValue::new(
            "the Slack API base must use https (http only to a loopback address: 127.0.0.1, localhost or [::1])",
        )),
    }
}

fn with_trailing_slash(mut url: reqwest::Url) -> reqwest::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// The JSON body for one call. Plain text drops the blocks; for `chat.update` it sends an
/// empty `blocks` list, because omitting it would keep the refused blocks of the original.
fn request_body(
    call: Call,
    message: &SlackMessage,
    channel: Option<&str>,
    thread_ts: Option<&str>,
    update_ts: Option<&str>,
    plain: bool,
) -> Value {
    let mut body = if plain {
        message.to_plain_json()
    } else {
        message.to_webhook_json()
    };
    if let Value::Object(map) = &mut body {
        // Console deep links would otherwise unfurl into sign-in page previews.
        map.insert("unfurl_links".to_owned(), json!(false));
        map.insert("unfurl_media".to_owned(), json!(false));
        match call {
            Call::Webhook => {}
            Call::PostMessage => {
                map.insert("channel".to_owned(), json!(channel));
                if let Some(ts) = thread_ts {
                    map.insert("thread_ts".to_owned(), json!(ts));
                }
            }
            Call::Update => {
                map.insert("channel".to_owned(), json!(channel));
                map.insert("ts".to_owned(), json!(update_ts));
                if plain {
                    map.insert("blocks".to_owned(), json!([]));
                }
            }
        }
    }
    body
}

/// `Retry-After` in seconds (Slack never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Slack's words, cut short for an error message (already masked by the caller).
fn echo(text: &str) -> String {
    cap(text.trim(), ECHO_CHARS)
}

/// An incoming webhook answers `ok` (200) or an error word as plain text with a 4xx/5xx.
///
/// A 2xx with any other body did not come from Slack's webhook (a proxy's page, a cut-off
/// answer): whether the message arrived is unknown, so it counts as a transient failure. A
/// retry may post it twice; counting it as sent could lose it.
fn webhook_verdict(status: StatusCode, body: &str, retry_after: Option<Duration>) -> Verdict {
    let word = echo(body);
    let reason = format!("HTTP {} {word}", status.as_u16());
    match status.as_u16() {
        200..=299 if is_webhook_ok(body) => Verdict::Sent(None),
        200..=299 => Verdict::Transient(format!("{reason} (not Slack's answer `ok`)")),
        429 => Verdict::RateLimited {
            after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            reason,
        },
        400 if matches!(word.as_str(), "invalid_blocks" | "invalid_blocks_format") => {
            Verdict::InvalidBlocks(reason)
        }
        408 | 500..=599 => Verdict::Transient(reason),
        _ => Verdict::Permanent(reason),
    }
}

/// Slack's webhook answers `ok`; workflow webhooks answer `{"ok": true}`.
fn is_webhook_ok(body: &str) -> bool {
    let body = body.trim();
    body == "ok"
        || serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|j| j.get("ok").and_then(Value::as_bool))
            == Some(true)
}

/// Web API errors worth another attempt.
const WEB_API_TRANSIENT: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// The Web API answers HTTP 200 with `{"ok": true, "ts": ...}` or `{"ok": false, "error":
/// ...}`; rate limits come as HTTP 429, outages as 5xx.
fn web_api_verdict(status: StatusCode, body: &str, retry_after: Option<Duration>) -> Verdict {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str)
        .map(echo);
    let reason = match &error {
        Some(e) => format!("HTTP {} {e}", status.as_u16()),
        None => format!("HTTP {} {}", status.as_u16(), echo(body)),
    };
    match status.as_u16() {
        429 => {
            return Verdict::RateLimited {
                after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
                reason,
            };
        }
        408 | 500..=599 => return Verdict::Transient(reason),
        200..=299 => {}
        _ => return Verdict::Permanent(reason),
    }
    let Some(json) = json else {
        return Verdict::Permanent(format!("{reason} (not a Web API response)"));
    };
    if json.get("ok").and_then(Value::as_bool) == Some(true) {
        let ts = json.get("ts").and_then(Value::as_str).map(str::to_owned);
        return Verdict::Sent(ts);
    }
    match error.as_deref() {
        Some("invalid_blocks" | "invalid_blocks_format") => Verdict::InvalidBlocks(reason),
        Some("ratelimited" | "rate_limited") => Verdict::RateLimited {
            after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            reason,
        },
        Some(e) if WEB_API_TRANSIENT.contains(&e) => Verdict::Transient(reason),
        _ => Verdict::Permanent(reason),
    }
}

/// The Slack channel of a function: credentials loaded at cold start, or, when the secret
/// store did not answer then (slow, throttled, failing), loaded again each time a message is
/// to be sent until a load succeeds. A function whose Slack secret is briefly unreachable
/// keeps delivering to SNS, and says in each Slack failure why Slack was not tried, instead
/// of exiting and leaving every event to Lambda's retries.
#[derive(Debug)]
pub struct SlackChannel {
    ready: tokio::sync::OnceCell<SlackNotifier>,
    deferred: Option<DeferredCredentials>,
}

/// What a deferred load needs.
#[derive(Debug)]
struct DeferredCredentials {
    loader: std::sync::Arc<SecretLoader>,
    reference: SecretRef,
    http: reqwest::Client,
    api_base: Option<String>,
    /// Why the cold start's load failed.
    first_failure: String,
}

impl SlackChannel {
    /// A channel with its notifier built.
    pub fn ready(notifier: SlackNotifier) -> Self {
        Self {
            ready: tokio::sync::OnceCell::new_with(Some(notifier)),
            deferred: None,
        }
    }

    /// A channel whose credentials behind `reference` are loaded when first needed (the
    /// loader does not cache failures). `api_base` as in [`SlackNotifier::with_api_base`];
    /// `first_failure` says why the cold start could not load them.
    pub fn deferred(
        loader: std::sync::Arc<SecretLoader>,
        reference: SecretRef,
        http: reqwest::Client,
        api_base: Option<String>,
        first_failure: String,
    ) -> Self {
        Self {
            ready: tokio::sync::OnceCell::new(),
            deferred: Some(DeferredCredentials {
                loader,
                reference,
                http,
                api_base,
                first_failure,
            }),
        }
    }

    /// `webhook` or `bot token` once the credentials are loaded.
    pub fn mode(&self) -> Option<&'static str> {
        self.ready.get().map(SlackNotifier::mode)
    }

    async fn deliver(
        &self,
        message: &Outgoing,
        time_left: Duration,
    ) -> Result<Delivered, DeliveryError> {
        let started = std::time::Instant::now();
        match self.notifier(time_left).await {
            Ok(n) => {
                n.deliver(message, time_left.saturating_sub(started.elapsed()))
                    .await
            }
            Err(reason) => Err(DeliveryError {
                channel: channel_label(message),
                reason,
                retryable: true,
                attempts: 0,
            }),
        }
    }

    async fn notifier(&self, time_left: Duration) -> Result<&SlackNotifier, String> {
        if let Some(n) = self.ready.get() {
            return Ok(n);
        }
        let Some(d) = &self.deferred else {
            return Err("no Slack credentials".to_string());
        };
        let load = async {
            let credentials = d
                .loader
                .slack_credentials(&d.reference)
                .await
                .map_err(|e| e.to_string())?;
            let notifier = SlackNotifier::new(d.http.clone(), credentials);
            match &d.api_base {
                Some(base) => notifier
                    .with_api_base(base)
                    .map_err(|e| e.reason().to_string()),
                None => Ok(notifier),
            }
        };
        let bounded = async {
            tokio::time::timeout(time_left, load)
                .await
                .unwrap_or_else(|_| Err(format!("not loaded within {} ms", time_left.as_millis())))
        };
        self.ready.get_or_try_init(|| bounded).await.map_err(|e| {
            mask_secrets(&format!(
                "Slack credentials not loaded: {e} (at cold start: {})",
                d.first_failure
            ))
        })
    }
}

impl Notifier for SlackChannel {
    fn name(&self) -> &str {
        "slack"
    }

    fn send(
        &self,
        message: &Outgoing,
        time_left: Duration,
    ) -> impl Future<Output = Result<Delivered, DeliveryError>> + Send {
        self.deliver(message, time_left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretToken;

    fn msg() -> SlackMessage {
        SlackMessage {
            text: "HIGH: x".into(),
            blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": "x"}})],
        }
    }

    /// Hosts that a prefix test of the URL text takes for loopback or Slack, and the parsed
    /// forms that really are.
    #[test]
    fn the_api_base_is_parsed_and_its_host_compared() {
        for good in [
            "https://slack.com/api",
            "https://slack-gov.com/api/",
            "http://127.0.0.1:9000/api",
            "http://127.0.0.2:9000",
            "http://127.1:9000",
            "http://localhost:9000/api",
            "http://LOCALHOST",
            "http://[::1]:9000/api",
            " http://127.0.0.1:9000 ",
        ] {
            assert!(parse_api_base(good).is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1.evil.net",
            "http://127.0.0.1.evil.net:9000/api",
            "http://localhost.evil.net/api",
            "http://127.0.0.1@evil.net/api",
            "http://127.0.0.1:9000@evil.net/api",
            "http://localhost:x@evil.net",
            "https://user:pw@slack.com/api",
            "https://token@slack.com/api",
            "http://[::1].evil.net",
            "http://[::ffff:7f00:1]/api",
            "http://evil.net/127.0.0.1",
            "http://169.254.169.254/latest",
            "https://slack.com/api?x=1",
            "https://slack.com/api#frag",
            "ftp://127.0.0.1/api",
            "file:///etc/passwd",
            "https://",
            "127.0.0.1:9000",
            "",
        ] {
            assert!(parse_api_base(bad).is_err(), "{bad}");
        }
        let e = parse_api_base("http://127.0.0.1.evil.net").unwrap_err();
        assert!(e.reason().contains("https"), "{}", e.reason());
        let n = SlackNotifier::new(
            reqwest::Client::new(),
            SlackCredentials::BotToken(SecretToken::parse("xoxb-1").unwrap()),
        );
        assert!(
            n.clone()
                .with_api_base("http://127.0.0.1@evil.net")
                .is_err()
        );
        assert!(n.with_api_base("http://127.0.0.1:9").is_ok());
    }

    #[test]
    fn webhook_answers_are_classified_as_slack_means_them() {
        let s = |c: u16| StatusCode::from_u16(c).unwrap();
        assert_eq!(webhook_verdict(s(200), "ok", None), Verdict::Sent(None));
        assert!(matches!(
            webhook_verdict(s(400), "invalid_blocks", None),
            Verdict::InvalidBlocks(_)
        ));
        assert!(matches!(
            webhook_verdict(s(400), "invalid_payload", None),
            Verdict::Permanent(_)
        ));
        for (code, word) in [
            (404, "no_service"),
            (410, "channel_is_archived"),
            (403, "invalid_token"),
        ] {
            assert!(
                matches!(webhook_verdict(s(code), word, None), Verdict::Permanent(_)),
                "{code}"
            );
        }
        assert_eq!(
            webhook_verdict(s(429), "rate_limited", Some(Duration::from_secs(7))),
            Verdict::RateLimited {
                after: Duration::from_secs(7),
                reason: "HTTP 429 rate_limited".into()
            }
        );
        assert!(matches!(
            webhook_verdict(s(429), "rate_limited", None),
            Verdict::RateLimited { after, .. } if after == DEFAULT_RETRY_AFTER
        ));
        assert!(matches!(
            webhook_verdict(s(503), "", None),
            Verdict::Transient(_)
        ));
    }

    #[test]
    fn a_webhook_200_that_is_not_slacks_ok_is_not_counted_as_sent() {
        let ok = StatusCode::OK;
        assert_eq!(webhook_verdict(ok, "ok\n", None), Verdict::Sent(None));
        assert_eq!(
            webhook_verdict(ok, r#"{"ok": true}"#, None),
            Verdict::Sent(None)
        );
        for body in [
            "<html><head><title>502 Bad Gat",
            "",
            r#"{"ok": tr"#,
            r#"{"ok":false}"#,
        ] {
            assert!(
                matches!(webhook_verdict(ok, body, None), Verdict::Transient(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn web_api_answers_are_classified_as_slack_means_them() {
        let ok = StatusCode::OK;
        assert_eq!(
            web_api_verdict(ok, r#"{"ok":true,"ts":"1.000100","channel":"C1"}"#, None),
            Verdict::Sent(Some("1.000100".into()))
        );
        assert!(matches!(
            web_api_verdict(ok, r#"{"ok":false,"error":"invalid_blocks"}"#, None),
            Verdict::InvalidBlocks(_)
        ));
        for e in [
            "invalid_auth",
            "channel_not_found",
            "is_archived",
            "not_in_channel",
            "msg_too_long",
        ] {
            let body = format!(r#"{{"ok":false,"error":"{e}"}}"#);
            assert!(
                matches!(web_api_verdict(ok, &body, None), Verdict::Permanent(_)),
                "{e}"
            );
        }
        assert!(matches!(
            web_api_verdict(ok, r#"{"ok":false,"error":"internal_error"}"#, None),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            web_api_verdict(StatusCode::TOO_MANY_REQUESTS, r#"{"ok":false,"error":"ratelimited"}"#, Some(Duration::from_secs(2))),
            Verdict::RateLimited { after, .. } if after == Duration::from_secs(2)
        ));
        assert!(matches!(
            web_api_verdict(StatusCode::BAD_GATEWAY, "<html>", None),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            web_api_verdict(ok, "<html>", None),
            Verdict::Permanent(_)
        ));
    }

    #[test]
    fn echoed_errors_are_masked_and_short() {
        let body = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp ".repeat(20);
        let v = webhook_verdict(StatusCode::BAD_REQUEST, &mask_secrets(&body), None);
        let Verdict::Permanent(reason) = v else {
            panic!("expected a permanent verdict");
        };
        assert!(!reason.contains("xoxb-"), "{reason}");
        assert!(reason.chars().count() <= ECHO_CHARS + 12, "{reason}");
    }

    #[test]
    fn bodies_carry_channel_thread_and_update_fields() {
        let m = msg();
        let post = request_body(Call::PostMessage, &m, Some("#a"), Some("1.1"), None, false);
        assert_eq!(post["channel"], "#a");
        assert_eq!(post["thread_ts"], "1.1");
        assert!(post["blocks"].is_array());
        let update = request_body(Call::Update, &m, Some("C1"), None, Some("2.2"), true);
        assert_eq!(update["ts"], "2.2");
        assert_eq!(update["blocks"], json!([]));
        let hook = request_body(Call::Webhook, &m, Some("#a"), None, None, true);
        assert!(hook.get("channel").is_none());
        assert!(hook.get("blocks").is_none());
        assert_eq!(hook["text"], "HIGH: x");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
