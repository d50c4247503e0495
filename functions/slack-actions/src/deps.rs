//! The handler's deps, built once per cold start from a [`Config`].

use aws_config::SdkConfig;
use handle_alarm::HandlerError;
use handle_alarm::config::ConfigError;
use vigil_adapters::secrets::SecretLoader;
use vigil_adapters::state::DynamoState;

use crate::config::{Config, RESPONSE_TIMEOUT, SIGNING_SECRET};
use crate::handler::Deps;

/// Loads the signing secret (an unusable or missing one is a [`HandlerError::Config`]; a
/// throttled or unreachable store is retryable) and builds the clients.
pub async fn build(config: &Config, sdk: &SdkConfig) -> Result<Deps, HandlerError> {
    let loader = SecretLoader::new(sdk);
    let signing_secret = loader
        .signing_secret(&config.signing_secret)
        .await
        .map_err(|e| {
            if e.is_retryable() {
                HandlerError::Internal {
                    message: e.to_string(),
                    retryable: true,
                }
            } else {
                HandlerError::Config(ConfigError::new(SIGNING_SECRET, e.to_string()))
            }
        })?;
    let http = reqwest::Client::builder()
        .timeout(RESPONSE_TIMEOUT)
        .connect_timeout(RESPONSE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| HandlerError::Internal {
            message: "the HTTP client could not be built".to_owned(),
            retryable: false,
        })?;
    let response_base = match &config.slack_api_base {
        Some(base) => Some(reqwest::Url::parse(base).map_err(|_| {
            HandlerError::Config(ConfigError::new(
                handle_alarm::config::SLACK_API_BASE,
                "not a valid URL",
            ))
        })?),
        None => None,
    };
    Ok(Deps {
        state: DynamoState::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name),
        signing_secret,
        http,
        response_base,
        ledger_ttl: config.ledger_ttl,
    })
}
