//! The handler's deps, built once per cold start from a [`Config`].

use aws_config::SdkConfig;
use handle_alarm::HandlerError;
use handle_alarm::config::ConfigError;
use vigil_adapters::secrets::SecretLoader;
use vigil_adapters::state::DynamoState;

use vigil_adapters::secrets::SlackCredentials;

use crate::access::Silencers;
use crate::config::{Config, RESPONSE_TIMEOUT, SIGNING_SECRET, SILENCER_GROUP};
use crate::handler::Deps;

/// One DynamoDB attempt, and one call with the SDK's retries. Slack shows the person an error
/// when a click is not answered within 3 s, so a table that hangs is given up on well before
/// that: the replay guard fails closed (503) and nothing is done.
const DYNAMODB_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1_000);
const DYNAMODB_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2_000);

/// The state table's client with the timeouts above.
fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    handle_alarm::deps::dynamodb_client_with(sdk, DYNAMODB_ATTEMPT_TIMEOUT, DYNAMODB_CALL_TIMEOUT)
}

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
    let silencers = match &config.silencer_group {
        None => None,
        Some((group, reference)) => {
            let token = match loader.slack_credentials(reference).await {
                Ok(SlackCredentials::BotToken(token)) => token,
                Ok(SlackCredentials::Webhook(_)) => {
                    return Err(HandlerError::Config(ConfigError::new(
                        SILENCER_GROUP,
                        "the Slack secret holds a webhook URL: reading the silencer group needs a bot token (usergroups:read)",
                    )));
                }
                Err(e) if e.is_retryable() => {
                    return Err(HandlerError::Internal {
                        message: e.to_string(),
                        retryable: true,
                    });
                }
                Err(e) => {
                    return Err(HandlerError::Config(ConfigError::new(
                        handle_alarm::config::SLACK_SECRET,
                        e.to_string(),
                    )));
                }
            };
            let base = config
                .slack_api_base
                .as_deref()
                .unwrap_or(vigil_adapters::slack::DEFAULT_API_BASE);
            let url = reqwest::Url::parse(&format!(
                "{}/usergroups.users.list",
                base.trim_end_matches('/')
            ))
            .map_err(|_| {
                HandlerError::Config(ConfigError::new(
                    handle_alarm::config::SLACK_API_BASE,
                    "not a valid URL",
                ))
            })?;
            Some(Silencers::new(group.clone(), token, url))
        }
    };
    Ok(Deps {
        state: DynamoState::new(dynamodb_client(sdk), &config.table_name),
        signing_secret,
        http,
        response_base,
        ledger_ttl: config.ledger_ttl,
        team_id: config.team_id.clone(),
        allowed_channels: config.allowed_channels.clone(),
        silencers,
    })
}
