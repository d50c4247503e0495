//! Slack credentials, loaded once per cold start from Secrets Manager or an SSM SecureString.
//!
//! Invariant: a secret value never reaches a log line, an error or a `Debug`/`Display`
//! output. Values live only inside [`SecretUrl`] and [`SecretToken`], whose formatting prints
//! `[redacted]`; the one way out is an explicit `expose()` at the HTTP call. Errors name the
//! secret *reference* and say whether trying again could help, and are built from static
//! reasons or masked service messages, never from the value or from an SDK error's `Debug`.
//!
//! # Reference syntax
//!
//! A reference names where the secret lives, never the secret itself:
//!
//! | Reference | Store | Call |
//! |---|---|---|
//! | `secretsmanager:NAME` or `secretsmanager:ARN` | Secrets Manager | `GetSecretValue` |
//! | `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf` | Secrets Manager | `GetSecretValue` |
//! | `ssm:/path/to/param` or `ssm:NAME` | SSM Parameter Store | `GetParameter` (decrypted) |
//! | `arn:aws:ssm:REGION:ACCOUNT:parameter/path` | SSM Parameter Store | `GetParameter` (decrypted) |
//! | `/path/to/param` (bare, leading `/`) | SSM Parameter Store | `GetParameter` (decrypted) |
//! | `NAME` (bare, anything else) | Secrets Manager | `GetSecretValue` |
//!
//! The value (Secrets Manager `SecretString`, or the parameter's value) is either the raw
//! webhook URL / bot token, or a JSON object `{"webhook_url": "..."}` / `{"bot_token": "..."}`.
//! A webhook URL must be `https` (plain `http` only to `127.0.0.1`/`localhost`, for tests) with
//! a path under `/services/`; a bot token must start with `xoxb-`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;
use tokio::sync::OnceCell;
use vigil_core::redact::mask_secrets;

use crate::config::sdk_failure;

/// What every secret prints as.
const REDACTED: &str = "[redacted]";

/// How long one load may take by default, SDK retries included. A cold start that cannot
/// read its credentials in this time is better reported (and retried by Lambda) than waited on.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a secret value was refused. Always one of a fixed set of sentences, so it can never
/// carry any part of the value it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(&'static str);

impl InvalidValue {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self(reason)
    }

    /// The reason, as a sentence fragment.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

/// A Slack incoming-webhook URL. Prints as `[redacted]`; the URL itself is the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(reqwest::Url);

impl SecretUrl {
    /// Validates a webhook URL: `https` (or `http` to `127.0.0.1`/`localhost`/`[::1]` only, so
    /// tests can use a loopback stand-in) and a path under `/services/`.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        // The URL parser would percent-encode inner spaces into a "valid" URL; a stored value
        // with words after the URL is a paste error, not a webhook.
        if value.contains(char::is_whitespace) {
            return Err(InvalidValue("the webhook URL contains whitespace"));
        }
        let url = reqwest::Url::parse(value)
            .map_err(|_| InvalidValue("the webhook URL is not a valid URL"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(InvalidValue(
                    "the webhook URL must use https (http only to 127.0.0.1 or localhost)",
                ));
            }
        }
        let rest = url.path().strip_prefix("/services/").unwrap_or_default();
        if rest.trim_matches('/').is_empty() {
            return Err(InvalidValue(
                "the webhook URL's path must be under /services/ (an incoming webhook)",
            ));
        }
        Ok(Self(url))
    }

    /// The URL, for the one place that posts to it. Never log or format the result.
    pub fn expose(&self) -> &reqwest::Url {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A Slack bot token (`xoxb-...`). Prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Validates a bot token: `xoxb-` followed by visible ASCII only (it goes into an HTTP
    /// header, where whitespace or control characters would be refused or, worse, split it).
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let Some(rest) = value.strip_prefix("xoxb-") else {
            return Err(InvalidValue("the bot token must start with xoxb-"));
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue(
                "the bot token must be xoxb- followed by visible ASCII characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The token, for the one place that sends it. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A Slack app's signing secret (the key of the v0 request signature). Prints as
/// `[redacted]`; the one way out is [`SigningSecret::expose`], at the HMAC.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Reads a stored value: the raw secret, or JSON with a `signing_secret` string (so one
    /// secret can hold `{"bot_token": ..., "signing_secret": ...}`). Slack's signing secrets
    /// are 32 hex digits; any visible ASCII of 16 to 256 characters is accepted.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let raw = if value.starts_with('{') {
            let json: Value = serde_json::from_str(value)
                .map_err(|_| InvalidValue("the secret starts with '{' but is not valid JSON"))?;
            match json.get("signing_secret") {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(_) => {
                    return Err(InvalidValue(
                        "signing_secret in the secret must be a string",
                    ));
                }
                None => return Err(InvalidValue("the secret's JSON has no signing_secret")),
            }
        } else {
            value.to_owned()
        };
        if raw.len() < 16 || raw.len() > 256 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue(
                "the signing secret must be 16 to 256 visible ASCII characters (Slack's are 32 hex digits)",
            ));
        }
        Ok(Self(raw))
    }

    /// The key, for the one place that computes the HMAC. Never log or format the result.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How vigil talks to Slack. `Debug` shows the mode, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackCredentials {
    /// An incoming webhook: one fixed channel, no threads, no edits.
    Webhook(SecretUrl),
    /// A bot token for the Web API (`chat.postMessage`, `chat.update`).
    BotToken(SecretToken),
}

impl SlackCredentials {
    /// Reads a stored secret value: the raw webhook URL or bot token, or a JSON object with
    /// exactly one of `webhook_url` / `bot_token`.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        if value.starts_with('{') {
            return Self::parse_json(value);
        }
        if value.starts_with("xoxb-") {
            return SecretToken::parse(value).map(Self::BotToken);
        }
        if value.starts_with("xox") {
            return Err(InvalidValue(
                "the secret holds a Slack token that is not a bot token (xoxb-)",
            ));
        }
        if value.starts_with("https://") || value.starts_with("http://") {
            return SecretUrl::parse(value).map(Self::Webhook);
        }
        Err(InvalidValue(
            "the secret holds neither a webhook URL, a bot token, nor JSON with webhook_url or bot_token",
        ))
    }

    fn parse_json(value: &str) -> Result<Self, InvalidValue> {
        let json: Value = serde_json::from_str(value)
            .map_err(|_| InvalidValue("the secret starts with '{' but is not valid JSON"))?;
        let field = |name: &str| json.get(name).filter(|v| !v.is_null());
        match (field("webhook_url"), field("bot_token")) {
            (Some(_), Some(_)) => Err(InvalidValue(
                "the secret holds both webhook_url and bot_token; keep one",
            )),
            (Some(Value::String(url)), None) => SecretUrl::parse(url).map(Self::Webhook),
            (None, Some(Value::String(token))) => SecretToken::parse(token).map(Self::BotToken),
            (Some(_), None) | (None, Some(_)) => Err(InvalidValue(
                "webhook_url / bot_token in the secret must be a string",
            )),
            (None, None) => Err(InvalidValue(
                "the secret's JSON has neither webhook_url nor bot_token",
            )),
        }
    }

    /// `webhook` or `bot token`, for logs.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::BotToken(_) => "bot token",
        }
    }
}

/// Where a secret is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretStore {
    /// AWS Secrets Manager (`GetSecretValue`).
    SecretsManager,
    /// SSM Parameter Store, a SecureString read with decryption (`GetParameter`).
    Ssm,
}

/// A parsed secret reference (see the module docs for the syntax). Displays as
/// `secretsmanager:ID` or `ssm:NAME`, which is safe to log: it names, it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    store: SecretStore,
    id: String,
}

impl SecretRef {
    /// Parses a reference. Refuses anything that looks like a secret *value* (a URL, a Slack
    /// token), without echoing it, since that is the likeliest misconfiguration and the one
    /// that would otherwise put the value into every error message.
    pub fn parse(reference: &str) -> Result<Self, SecretError> {
        let r = reference.trim();
        let invalid = |shown: String, why: &'static str| SecretError {
            reference: shown,
            problem: SecretProblem::InvalidReference(why),
            retryable: false,
        };
        if r.contains("://") || r.contains("xox") || r.contains("hooks.slack") {
            return Err(invalid(
                REDACTED.to_owned(),
                "this looks like a secret value, not a reference; store it in Secrets Manager or SSM and give its name",
            ));
        }
        if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                mask_secrets(r),
                "a reference must be non-empty and contain no whitespace",
            ));
        }
        let (store, id) = if let Some(id) = r.strip_prefix("secretsmanager:") {
            (SecretStore::SecretsManager, id)
        } else if let Some(id) = r.strip_prefix("ssm:") {
            (SecretStore::Ssm, id)
        } else if r.starts_with("arn:") {
            match r.split(':').nth(2) {
                Some("secretsmanager") => (SecretStore::SecretsManager, r),
                Some("ssm") => (SecretStore::Ssm, r),
                _ => {
                    return Err(invalid(
                        mask_secrets(r),
                        "an ARN reference must be a Secrets Manager secret or an SSM parameter",
                    ));
                }
            }
        } else if r.starts_with('/') {
            (SecretStore::Ssm, r)
        } else {
            (SecretStore::SecretsManager, r)
        };
        if id.is_empty() {
            return Err(invalid(mask_secrets(r), "the reference names no secret"));
        }
        Ok(Self {
            store,
            id: id.to_owned(),
        })
    }

    /// The store the secret lives in.
    pub fn store(&self) -> SecretStore {
        self.store
    }

    /// The secret id, parameter name or ARN, as passed to the service.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.store {
            SecretStore::SecretsManager => "secretsmanager",
            SecretStore::Ssm => "ssm",
        };
        if self.id.starts_with("arn:") {
            f.write_str(&self.id)
        } else {
            write!(f, "{prefix}:{}", self.id)
        }
    }
}

/// What went wrong loading a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    /// The reference itself is unusable.
    #[error("invalid reference: {0}")]
    InvalidReference(&'static str),
    /// The secret or parameter does not exist (or is scheduled for deletion).
    #[error("not found")]
    NotFound,
    /// IAM or KMS refused the read.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The service failed, throttled or could not be reached.
    #[error("could not be read: {0}")]
    Unavailable(String),
    /// The load did not finish in time (SDK retries included).
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The secret exists but holds no string value (a binary-only secret).
    #[error("holds no string value")]
    NoValue,
    /// The value is not usable Slack credentials.
    #[error("invalid value: {0}")]
    InvalidValue(InvalidValue),
}

/// A secret that could not be loaded. Names the reference, never the value, and says whether
/// a later attempt (the next Lambda retry) could succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {reference}: {problem} (retryable: {retryable})")]
pub struct SecretError {
    /// The reference as configured (or `[redacted]` when it looked like a value).
    pub reference: String,
    /// What went wrong.
    pub problem: SecretProblem,
    /// True when trying again later could succeed (throttling, timeouts, 5xx).
    pub retryable: bool,
}

impl SecretError {
    fn new(reference: &SecretRef, problem: SecretProblem, retryable: bool) -> Self {
        Self {
            reference: reference.to_string(),
            problem,
            retryable,
        }
    }

    /// True when trying again later could succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// Error codes that mean "no such secret", from either store.
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
];
/// Error codes that mean "you may not read it"; retrying does not change IAM or KMS policy.
const DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "DecryptionFailure",
    "InvalidKeyId",
    "KMSAccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
];

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    reference: &SecretRef,
    err: &aws_sdk_secretsmanager::error::SdkError<E>,
) -> SecretError {
    let failure = sdk_failure(err);
    let code = failure.code;
    let code_is = |list: &[&str]| code.as_deref().is_some_and(|c| list.contains(&c));
    if code_is(NOT_FOUND_CODES) {
        return SecretError::new(reference, SecretProblem::NotFound, false);
    }
    // Secrets Manager answers InvalidRequestException for a secret scheduled for deletion.
    if code.as_deref() == Some("InvalidRequestException") {
        return SecretError::new(reference, SecretProblem::NotFound, false);
    }
    if code_is(DENIED_CODES) {
        return SecretError::new(
            reference,
            SecretProblem::AccessDenied(failure.message),
            false,
        );
    }
    SecretError::new(
        reference,
        SecretProblem::Unavailable(failure.message),
        failure.retryable,
    )
}

/// Loads Slack credentials once per reference and keeps them for the life of the process
/// (one Lambda execution environment): the first invocation pays for the call, the rest reuse
/// it. Failures are not cached, so a throttled cold start tries again on the next event.
#[derive(Debug)]
pub struct SecretLoader {
    secrets_manager: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    timeout: Duration,
    cache: Mutex<HashMap<SecretRef, Arc<OnceCell<SlackCredentials>>>>,
    signing: Mutex<HashMap<SecretRef, Arc<OnceCell<SigningSecret>>>>,
}

impl SecretLoader {
    /// Builds both clients from one SDK configuration (`AWS_ENDPOINT_URL` and friends apply).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            timeout: DEFAULT_LOAD_TIMEOUT,
            cache: Mutex::new(HashMap::new()),
            signing: Mutex::new(HashMap::new()),
        }
    }

    /// Bounds each load (SDK retries included); the default is [`DEFAULT_LOAD_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Slack credentials behind `reference`, fetched on first use and cached after.
    /// Concurrent first calls for the same reference share one fetch.
    pub async fn slack_credentials(
        &self,
        reference: &SecretRef,
    ) -> Result<SlackCredentials, SecretError> {
        let cell = {
            // A poisoned lock only means another thread panicked while inserting; the map
            // itself is still consistent, so keep using it rather than fail the alert.
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cache.entry(reference.clone()).or_default())
        };
        cell.get_or_try_init(|| self.load(reference)).await.cloned()
    }

    /// Parses `reference` and loads it: the usual call from a composition root.
    pub async fn slack_credentials_from(
        &self,
        reference: &str,
    ) -> Result<SlackCredentials, SecretError> {
        let reference = SecretRef::parse(reference)?;
        self.slack_credentials(&reference).await
    }

    /// The Slack signing secret behind `reference` (the raw value, or JSON with a
    /// `signing_secret` string), fetched on first use and cached after; failures are not cached.
    pub async fn signing_secret(
        &self,
        reference: &SecretRef,
    ) -> Result<SigningSecret, SecretError> {
        let cell = {
            let mut cache = self.signing.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cache.entry(reference.clone()).or_default())
        };
        cell.get_or_try_init(|| self.load_signing(reference))
            .await
            .cloned()
    }

    async fn load_signing(&self, reference: &SecretRef) -> Result<SigningSecret, SecretError> {
        let value = match tokio::time::timeout(self.timeout, self.fetch(reference)).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                tracing::warn!(secret = %reference, error = %e, "could not load the Slack signing secret");
                return Err(e);
            }
            Err(_) => {
                let e = SecretError::new(reference, SecretProblem::TimedOut(self.timeout), true);
                tracing::warn!(secret = %reference, error = %e, "could not load the Slack signing secret");
                return Err(e);
            }
        };
        match SigningSecret::parse(&value) {
            Ok(secret) => {
                tracing::info!(secret = %reference, "loaded the Slack signing secret");
                Ok(secret)
            }
            Err(invalid) => {
                let e = SecretError::new(reference, SecretProblem::InvalidValue(invalid), false);
                tracing::warn!(secret = %reference, error = %e, "refused the Slack signing secret");
                Err(e)
            }
        }
    }

    async fn load(&self, reference: &SecretRef) -> Result<SlackCredentials, SecretError> {
        let fetched = tokio::time::timeout(self.timeout, self.fetch(reference)).await;
        let value = match fetched {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                tracing::warn!(secret = %reference, error = %e, "could not load Slack credentials");
                return Err(e);
            }
            Err(_) => {
                let e = SecretError::new(reference, SecretProblem::TimedOut(self.timeout), true);
                tracing::warn!(secret = %reference, error = %e, "could not load Slack credentials");
                return Err(e);
            }
        };
        match SlackCredentials::parse(&value) {
            Ok(credentials) => {
                tracing::info!(secret = %reference, mode = credentials.mode(), "loaded Slack credentials");
                Ok(credentials)
            }
            Err(invalid) => {
                let e = SecretError::new(reference, SecretProblem::InvalidValue(invalid), false);
                tracing::warn!(secret = %reference, error = %e, "refused Slack credentials");
                Err(e)
            }
        }
    }

    /// The raw stored string. Kept private and short-lived: it is parsed at once.
    async fn fetch(&self, reference: &SecretRef) -> Result<String, SecretError> {
        match reference.store {
            SecretStore::SecretsManager => {
                let out = self
                    .secrets_manager
                    .get_secret_value()
                    .secret_id(&reference.id)
                    .send()
                    .await
                    .map_err(|e| classify(reference, &e))?;
                match (out.secret_string, out.secret_binary, out.arn, out.name) {
                    (Some(value), ..) => Ok(value),
                    // GetSecretValue always names the secret; an answer that names nothing
                    // was not read (a cut-off body parses as an empty one): worth a retry.
                    (None, None, None, None) => Err(SecretError::new(
                        reference,
                        SecretProblem::Unavailable(
                            "Secrets Manager's answer named no secret (unreadable)".to_string(),
                        ),
                        true,
                    )),
                    _ => Err(SecretError::new(reference, SecretProblem::NoValue, false)),
                }
            }
            SecretStore::Ssm => {
                let out = self
                    .ssm
                    .get_parameter()
                    .name(&reference.id)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| classify(reference, &e))?;
                match out.parameter {
                    Some(p) => p
                        .value
                        .ok_or_else(|| SecretError::new(reference, SecretProblem::NoValue, false)),
                    // GetParameter always returns the parameter: see above.
                    None => Err(SecretError::new(
                        reference,
                        SecretProblem::Unavailable(
                            "SSM's answer held no parameter (unreadable)".to_string(),
                        ),
                        true,
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop";
    const TOKEN: &str = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";

    #[test]
    fn references_name_their_store() {
        let cases = [
            (
                "secretsmanager:vigil/slack",
                SecretStore::SecretsManager,
                "vigil/slack",
            ),
            ("ssm:/vigil/slack", SecretStore::Ssm, "/vigil/slack"),
            ("/vigil/slack", SecretStore::Ssm, "/vigil/slack"),
            ("vigil/slack", SecretStore::SecretsManager, "vigil/slack"),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:vigil-AbCdEf",
                SecretStore::SecretsManager,
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:vigil-AbCdEf",
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/vigil/slack",
                SecretStore::Ssm,
                "arn:aws:ssm:us-east-1:123456789012:parameter/vigil/slack",
            ),
        ];
        for (text, store, id) in cases {
            let r = SecretRef::parse(text).unwrap();
            assert_eq!((r.store(), r.id()), (store, id), "{text}");
        }
        assert_eq!(
            SecretRef::parse("/vigil/slack").unwrap().to_string(),
            "ssm:/vigil/slack"
        );
    }

    #[test]
    fn a_value_given_as_a_reference_is_refused_without_being_echoed() {
        for value in [HOOK, TOKEN, "http://127.0.0.1:9/services/T/B/X"] {
            let e = SecretRef::parse(value).unwrap_err();
            assert!(!e.retryable);
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("services/T"), "{shown}");
                assert!(!shown.contains("xoxb-"), "{shown}");
            }
        }
        assert!(SecretRef::parse("").is_err());
        assert!(SecretRef::parse("ssm:").is_err());
        assert!(SecretRef::parse("arn:aws:s3:::bucket").is_err());
    }

    #[test]
    fn raw_and_json_values_parse() {
        assert!(matches!(
            SlackCredentials::parse(&format!("{HOOK}\n")),
            Ok(SlackCredentials::Webhook(_))
        ));
        assert!(matches!(
            SlackCredentials::parse(TOKEN),
            Ok(SlackCredentials::BotToken(_))
        ));
        assert!(matches!(
            SlackCredentials::parse(&format!(r#"{{"webhook_url":"{HOOK}"}}"#)),
            Ok(SlackCredentials::Webhook(_))
        ));
        assert!(matches!(
            SlackCredentials::parse(&format!(
                r#"{{"bot_token":"{TOKEN}","signing_secret":"x"}}"#
            )),
            Ok(SlackCredentials::BotToken(_))
        ));
    }

    #[test]
    fn unusable_values_are_refused_with_a_fixed_reason() {
        for bad in [
            "http://hooks.slack.com/services/T/B/X",
            "https://hooks.slack.com/workflows/T/B/X",
            "https://hooks.slack.com/services/",
            "xoxp-1-2-3",
            "xoxb-",
            "xoxb-abc def",
            "hunter2",
            "{not json",
            r#"{"webhook_url": 3}"#,
            r#"{"other": "x"}"#,
            &format!(r#"{{"webhook_url":"{HOOK}","bot_token":"{TOKEN}"}}"#),
        ] {
            let e = SlackCredentials::parse(bad).unwrap_err();
            // Reasons are fixed sentences; none may quote the value (the prefix `xoxb-` is
            // named as the rule, which is not a value).
            assert!(!e.reason().contains("hooks.slack"), "{bad}: {e}");
            assert!(bad.len() < 8 || !e.reason().contains(bad), "{bad}: {e}");
        }
        assert!(SecretUrl::parse("http://localhost:8080/services/T/B/X").is_ok());
        assert!(SecretUrl::parse("http://127.0.0.1:8080/services/T/B/X").is_ok());
        assert!(SecretUrl::parse("http://10.0.0.1/services/T/B/X").is_err());
    }

    #[test]
    fn signing_secrets_parse_and_never_format_their_value() {
        const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
        let raw = SigningSecret::parse(&format!("{SECRET}\n")).unwrap();
        let json = SigningSecret::parse(&format!(
            r#"{{"bot_token":"{TOKEN}","signing_secret":"{SECRET}"}}"#
        ))
        .unwrap();
        assert_eq!(raw, json);
        assert_eq!(raw.expose(), SECRET.as_bytes());
        let shown = format!("{raw} {raw:?} {raw:#?}");
        assert!(!shown.contains("8f74"), "{shown}");
        assert!(shown.contains("[redacted]"));
        for bad in [
            "short",
            "",
            "{}",
            r#"{"signing_secret": 3}"#,
            "has a space in it ok",
        ] {
            let e = SigningSecret::parse(bad).unwrap_err();
            assert!(bad.len() < 6 || !e.reason().contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_never_format_their_value() {
        let hook = SlackCredentials::parse(HOOK).unwrap();
        let token = SlackCredentials::parse(TOKEN).unwrap();
        for c in [&hook, &token] {
            let debug = format!("{c:?} {c:#?}");
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(
                !debug.contains("hooks.slack") && !debug.contains("xoxb"),
                "{debug}"
            );
        }
        if let SlackCredentials::BotToken(t) = &token {
            assert_eq!(t.to_string(), "[redacted]");
            assert_eq!(t.expose(), TOKEN);
        }
    }
}
