//! The AWS clients, built once per process, and one reading of SDK failures shared by every
//! adapter.
//!
//! Invariant: clients are built from one [`SdkConfig`] and reused across warm invocations
//! (building a client per call would re-resolve credentials and endpoints each time); no
//! adapter reads the environment itself: `from_env` is the only place that does, and only the
//! composition root (a binary's `main`) calls it.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudtrail::config::http::HttpResponse;
use aws_sdk_cloudtrail::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Every AWS client vigil uses, built from one SDK configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// CloudTrail (`LookupEvents`).
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// Bedrock control plane (invocation logging, guardrails).
    pub bedrock: aws_sdk_bedrock::Client,
    /// CloudWatch (metric history, alarm tags).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// SNS (delivery).
    pub sns: aws_sdk_sns::Client,
    /// Secrets Manager (Slack webhook URLs and tokens).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// SSM Parameter Store (owners file, SecureString settings).
    pub ssm: aws_sdk_ssm::Client,
}

impl AwsClients {
    /// Builds every client from an already loaded SDK configuration (endpoint, region and
    /// credentials come from it, so tests can point it at the local AWS).
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        Self {
            cloudtrail: aws_sdk_cloudtrail::Client::new(config),
            bedrock: aws_sdk_bedrock::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }

    /// Loads the SDK configuration the standard way (`AWS_REGION`, `AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_<SERVICE>`, the Lambda role's credentials) and builds every client.
    pub async fn from_env() -> Self {
        Self::from_sdk_config(&load_sdk_config().await)
    }
}

/// The HTTPS client every AWS call goes through: the SDK's own hyper client with rustls on
/// *ring* (the crypto library reqwest's rustls already links for Slack), so a binary carries one
/// crypto library instead of ring and aws-lc. Trusted roots are the system's, as with the SDK's
/// default client; connect and read timeouts come from each client's timeout configuration.
pub fn https_client() -> aws_sdk_cloudtrail::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration loaded the standard way (`AWS_REGION`, `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>`, the Lambda role's credentials) with [`https_client`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// How an SDK call failed, reduced to what decides a retry and what a reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SdkFailure {
    /// The AWS error code (`ThrottlingException`, `ValidationException`, ...), when there is one.
    pub code: Option<String>,
    /// One line for a person: `code: message`, or the transport failure.
    pub message: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Throttled: worth retrying after a pause.
    pub throttled: bool,
    /// Worth retrying at all (throttling, 5xx, timeouts, connection failures).
    pub retryable: bool,
}

/// Error codes AWS services use for "slow down" (the code differs between protocols).
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

/// Reads any SDK failure the same way, whatever the service.
pub(crate) fn sdk_failure<E>(err: &SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let throttled =
        code.as_deref().is_some_and(|c| THROTTLE_CODES.contains(&c)) || status == Some(429);
    let (message, transient) = match err {
        SdkError::ServiceError(_) => {
            // A 2xx read as an error is a body the SDK could not parse (cut off, not the
            // service's): unreadable, like a `ResponseError`, so worth another try.
            let unreadable = status.is_some_and(|s| (200..300).contains(&s));
            let text = match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ if unreadable => format!("unreadable response (HTTP {})", status.unwrap_or(0)),
                _ => format!("HTTP {}", status.unwrap_or(0)),
            };
            (text, unreadable || status.is_some_and(|s| s >= 500))
        }
        SdkError::TimeoutError(_) => ("the request timed out".to_string(), true),
        SdkError::DispatchFailure(_) => (
            format!(
                "could not reach the service: {}",
                short(&DisplayErrorContext(err).to_string())
            ),
            true,
        ),
        // A 200 whose body did not parse, or a cut connection mid-response.
        SdkError::ResponseError(_) => (
            format!(
                "unreadable response: {}",
                short(&DisplayErrorContext(err).to_string())
            ),
            true,
        ),
        _ => (short(&DisplayErrorContext(err).to_string()), false),
    };
    // Service messages can echo request values; mask anything that looks like a credential.
    let message = vigil_core::redact::mask_secrets(&message);
    SdkFailure {
        code,
        message,
        status,
        throttled,
        retryable: throttled || transient,
    }
}

/// Keeps error text to one readable line (SDK error chains can run to kilobytes).
fn short(s: &str) -> String {
    const MAX: usize = 300;
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// A [`vigil_core::ports::SourceError`] for a failed SDK call.
pub(crate) fn source_error<E>(
    source_name: &str,
    err: &SdkError<E, HttpResponse>,
) -> vigil_core::ports::SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(err);
    vigil_core::ports::SourceError {
        source_name: source_name.to_string(),
        reason: failure.message,
        retryable: failure.retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_text_is_cut_to_one_line() {
        let text = format!("first line\nsecond {}", "x".repeat(400));
        let out = short(&text);
        assert!(!out.contains('\n'));
        assert!(out.ends_with("..."));
        assert!(out.chars().count() <= 303);
    }
}
