//! What the handler works with, built once per cold start and reused by every warm
//! invocation: AWS clients, Slack credentials (loaded once), the owners file, the enricher
//! and the notifiers.
//!
//! Invariant: [`Deps`] is generic over the core's ports, so the handler runs the same against
//! AWS ([`AwsDeps`], built by [`build`]) and against in-memory fakes in tests
//! ([`crate::fakes`]). Building fails only for a configuration problem (a secret, parameter
//! or file that a setting points at and that cannot be used) or a cold-start call that did not
//! answer; either error names the setting, never a secret's value.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use vigil_adapters::bedrock::BedrockApiInfo;
use vigil_adapters::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig};
use vigil_adapters::cloudwatch::CloudWatchInfo;
use vigil_adapters::config::AwsClients;
use vigil_adapters::delivery::Channels;
use vigil_adapters::enrichment::Enricher;
use vigil_adapters::journal::{JournalChangeSource, JournalFirst};
use vigil_adapters::secrets::SecretLoader;
use vigil_adapters::slack::{SlackChannel, SlackNotifier, http_client};
use vigil_adapters::sns::SnsNotifier;
use vigil_adapters::state::DynamoState;
use vigil_core::noise::NoiseSettings;
use vigil_core::pipeline::Settings;
use vigil_core::redact::{Redactor, mask_secrets};
use vigil_core::route::{Destination, Owners};

use crate::config::{self, Config, ConfigError, OwnersSource};
use crate::handler::HandlerError;

/// How long one cold-start call (owners parameter, account id) may take.
const COLD_START_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One DynamoDB attempt, and one call with the SDK's retries. DynamoDB answers in
/// milliseconds; these only bound a table that hangs (the breaker then skips the rest of the
/// alert's state calls), and are loose enough for the local AWS on a loaded machine.
const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_500);
const DYNAMODB_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long state calls are skipped after the table failed (see `DynamoState::with_breaker`).
pub const STATE_BREAKER_HOLD: Duration = Duration::from_secs(15);

/// The DynamoDB client of the state table and the change journal, with call timeouts.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    dynamodb_client_with(sdk, DYNAMODB_ATTEMPT_TIMEOUT, DYNAMODB_CALL_TIMEOUT)
}

/// A DynamoDB client whose attempts and calls (the SDK's retries included) are bounded.
pub fn dynamodb_client_with(
    sdk: &SdkConfig,
    attempt: Duration,
    call: Duration,
) -> aws_sdk_dynamodb::Client {
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .operation_timeout(call)
        .build();
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build(),
    )
}

/// The state store the functions use: call timeouts and a breaker.
pub fn dynamo_state(sdk: &SdkConfig, table: &str) -> DynamoState {
    DynamoState::new(dynamodb_client(sdk), table).with_breaker(STATE_BREAKER_HOLD)
}

/// The time limits of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// CloudTrail look-back before the alert.
    pub lookback: chrono::Duration,
    /// Enrichment, all sources together.
    pub enrich: Duration,
    /// Delivery, all channels together.
    pub delivery: Duration,
}

impl Budgets {
    /// The budgets a configuration sets.
    pub fn from_config(config: &Config) -> Self {
        Self {
            lookback: config.lookback,
            enrich: config.enrich_budget,
            delivery: config.delivery_budget,
        }
    }
}

/// Everything the handler needs. `C` finds CloudTrail changes, `B` and `M` answer Bedrock and
/// CloudWatch questions, `S` and `N` deliver to Slack and SNS.
#[derive(Debug)]
pub struct Deps<C, B, M, S, N, St> {
    /// Gathers each alert's context.
    pub enricher: Enricher<C, B, M>,
    /// The notifiers (a channel without one fails its messages, not retryable).
    pub channels: Channels<S, N>,
    /// Rules, owners and content policy.
    pub settings: Settings,
    /// Secret masking for everything rendered.
    pub redactor: Redactor,
    /// Time limits.
    pub budgets: Budgets,
    /// Noise-control state (ARCHITECTURE.md "Noise control"); `None` (no table configured): every alert is sent, with
    /// no idempotency, grouping, silences, rate limit or ledger.
    pub state: Option<St>,
    /// Noise-control tunables.
    pub noise: NoiseSettings,
    /// Slack is reached with a bot token, so repeats can be thread replies and a resolve can
    /// edit the first message; with a webhook they are counted and posted as new messages.
    pub threads: bool,
}

impl<C, B, M, S, N, St> Deps<C, B, M, S, N, St> {
    /// Deps with noise-control state in `state`, tuned by `noise`.
    pub fn with_state(mut self, state: St, noise: NoiseSettings, threads: bool) -> Self {
        self.state = Some(state);
        self.noise = noise;
        self.threads = threads;
        self
    }

    /// Deps from parts (the AWS ones come from [`build`]; tests pass fakes), without
    /// noise-control state ([`Deps::with_state`] adds it).
    pub fn new(
        enricher: Enricher<C, B, M>,
        channels: Channels<S, N>,
        settings: Settings,
        budgets: Budgets,
    ) -> Self {
        Self {
            enricher,
            channels,
            settings,
            redactor: Redactor::new(),
            budgets,
            state: None,
            noise: NoiseSettings::default(),
            threads: false,
        }
    }
}

/// The change source in production: the journal (when a table is configured and the
/// function knows its account and Region) before `LookupEvents`.
pub type AwsChangeSource = JournalFirst<JournalChangeSource, CloudTrailChangeSource>;

/// The deps wired to AWS and Slack.
pub type AwsDeps =
    Deps<AwsChangeSource, BedrockApiInfo, CloudWatchInfo, SlackChannel, SnsNotifier, DynamoState>;

/// Loads the SDK configuration the standard way (`AWS_REGION`, `AWS_ENDPOINT_URL`, the
/// function role's credentials).
pub async fn sdk_config() -> SdkConfig {
    vigil_adapters::config::load_sdk_config().await
}

/// Builds the AWS deps from a configuration: owners loaded, Slack credentials loaded and
/// checked, clients built, the journal wired in when a table is configured.
pub async fn build(config: &Config, sdk: &SdkConfig) -> Result<AwsDeps, HandlerError> {
    let clients = AwsClients::from_sdk_config(sdk);
    let slack = match &config.slack_secret {
        Some(reference) => Some(slack_notifier(config, sdk, reference).await?),
        None => None,
    };
    let owners = load_owners(config, &clients.ssm).await?;
    warn_about_slack_routes(&owners, slack.as_ref());
    let mut settings = Settings::with_defaults(owners);
    settings.policy = config.policy;
    settings.interactive = config.interactive;

    let lookup = CloudTrailChangeSource::new(
        &clients.cloudtrail,
        CloudTrailConfig {
            requests_per_second: config.lookup_rps,
            ..CloudTrailConfig::default()
        },
    );
    let changes = match &config.table_name {
        Some(table) => match own_account_and_region(sdk).await {
            Ok((account, region)) => {
                tracing::info!(table = %table, account = %account, region = %region, "enrichment reads the change journal first");
                JournalFirst::new(
                    JournalChangeSource::new(dynamodb_client(sdk), table.clone(), account, region),
                    lookup,
                )
            }
            // The journal only speeds enrichment up; without it LookupEvents still answers.
            Err(reason) => {
                tracing::warn!(table = %table, reason = %reason, "change journal not read: enrichment uses LookupEvents alone");
                JournalFirst::lookup_only(lookup)
            }
        },
        None => JournalFirst::lookup_only(lookup),
    };
    let enricher = Enricher::new(
        changes,
        BedrockApiInfo::new(clients.bedrock.clone()),
        CloudWatchInfo::new(clients.cloudwatch.clone()),
    );
    // Credentials not loaded at cold start: repeats are counted, not threaded, for the life of
    // this execution environment (a later load cannot tell the groups already decided).
    let threads = slack
        .as_ref()
        .is_some_and(|s| s.mode() == Some("bot token"));
    let channels = Channels {
        slack,
        // SNS needs no credentials of its own, and owners-file routes may name topics even
        // when no default topic is configured.
        sns: Some(SnsNotifier::new(sdk)),
    };
    let deps = Deps::new(enricher, channels, settings, Budgets::from_config(config));
    Ok(match &config.table_name {
        Some(table) => deps.with_state(dynamo_state(sdk, table), config.noise.clone(), threads),
        None => deps,
    })
}

async fn slack_notifier(
    config: &Config,
    sdk: &SdkConfig,
    reference: &vigil_adapters::secrets::SecretRef,
) -> Result<SlackChannel, HandlerError> {
    let http = http_client().map_err(|e| HandlerError::Internal {
        message: format!("the HTTP client for Slack could not be built: {e}"),
        retryable: false,
    })?;
    let loader = Arc::new(SecretLoader::new(sdk));
    let credentials = match loader.slack_credentials(reference).await {
        Ok(credentials) => credentials,
        // A slow, throttled or failing secret store: start anyway, so SNS still delivers and
        // the ledger says why Slack did not; each Slack send tries the load again.
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "{}: Slack credentials not loaded at cold start; trying again on each Slack message", config::SLACK_SECRET);
            return Ok(SlackChannel::deferred(
                loader,
                reference.clone(),
                http,
                config.slack_api_base.clone(),
                e.to_string(),
            ));
        }
        // A missing or invalid secret is a configuration to fix.
        Err(e) => {
            return Err(HandlerError::Config(ConfigError::new(
                config::SLACK_SECRET,
                e.to_string(),
            )));
        }
    };
    let notifier = SlackNotifier::new(http, credentials);
    match &config.slack_api_base {
        Some(base) => notifier
            .with_api_base(base)
            .map(SlackChannel::ready)
            .map_err(|e| ConfigError::new(config::SLACK_API_BASE, e.reason()).into()),
        None => Ok(SlackChannel::ready(notifier)),
    }
}

/// The owners file from SSM, from a file, or the single default route.
pub async fn load_owners(
    config: &Config,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Owners, HandlerError> {
    match &config.owners {
        OwnersSource::Parameter(name) => {
            let call = ssm.get_parameter().name(name).with_decryption(true).send();
            let text = match tokio::time::timeout(COLD_START_CALL_TIMEOUT, call).await {
                Err(_) => {
                    return Err(HandlerError::Internal {
                        message: format!(
                            "{}: SSM did not answer within {COLD_START_CALL_TIMEOUT:?}",
                            config::OWNERS_PARAMETER
                        ),
                        retryable: true,
                    });
                }
                Ok(Err(e)) => {
                    let text = one_line(&aws_sdk_ssm::error::DisplayErrorContext(&e).to_string());
                    return Err(ConfigError::new(
                        config::OWNERS_PARAMETER,
                        format!("{name}: {text}"),
                    )
                    .into());
                }
                Ok(Ok(out)) => out.parameter.and_then(|p| p.value).unwrap_or_default(),
            };
            Owners::from_yaml(&text).map_err(|e| {
                ConfigError::new(config::OWNERS_PARAMETER, format!("{name}: {e}")).into()
            })
        }
        OwnersSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(config::OWNERS_FILE, format!("{}: {e}", path.display()))
            })?;
            Owners::from_yaml(&text).map_err(|e| {
                ConfigError::new(config::OWNERS_FILE, format!("{}: {e}", path.display())).into()
            })
        }
        OwnersSource::Default { team } => Ok(default_owners(config, team)),
    }
}

/// The single route used without an owners file: Slack when credentials are configured
/// (the route names the secret reference, so the pipeline renders a Slack message), and the
/// default SNS topic.
pub fn default_owners(config: &Config, team: &str) -> Owners {
    let slack = config.slack_secret.is_some();
    Owners::single(Destination {
        team: team.to_string(),
        slack_channel: config.slack_channel.clone().filter(|_| slack),
        slack_webhook_secret: config.slack_secret.as_ref().map(|r| r.to_string()),
        sns_topic_arn: config.sns_topic_arn.clone(),
        ..Destination::default()
    })
}

/// Says once at cold start what the owners file asks of Slack that this function cannot do:
/// Slack routes without Slack credentials (their messages fail, and with no other channel the
/// alert is dead-lettered), or several webhook secrets while one credential serves every
/// route (with a webhook, every message lands in that webhook's channel).
fn warn_about_slack_routes(owners: &Owners, slack: Option<&SlackChannel>) {
    let slack_routes: Vec<&str> = owners
        .destinations()
        .filter(|(_, d)| d.slack_channel.is_some() || d.slack_webhook_secret.is_some())
        .map(|(name, _)| name)
        .collect();
    match slack {
        None if !slack_routes.is_empty() => tracing::warn!(
            routes = %slack_routes.join(","),
            "routes send to Slack but {} is not set: their Slack messages will fail",
            config::SLACK_SECRET
        ),
        Some(s) if s.mode() == Some("webhook") => {
            let secrets: std::collections::BTreeSet<&str> = owners
                .destinations()
                .filter_map(|(_, d)| d.slack_webhook_secret.as_deref())
                .collect();
            if secrets.len() > 1 {
                tracing::warn!(
                    webhook_secrets = secrets.len(),
                    "the owners file names several Slack webhook secrets, but every Slack message goes through {}; use a bot token to reach each route's channel",
                    config::SLACK_SECRET
                );
            }
        }
        _ => {}
    }
}

/// The function's own account (STS `GetCallerIdentity`, which needs no permission) and
/// Region (the SDK configuration's).
async fn own_account_and_region(sdk: &SdkConfig) -> Result<(String, String), String> {
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| "no AWS Region is configured".to_string())?;
    let call = aws_sdk_sts::Client::new(sdk).get_caller_identity().send();
    match tokio::time::timeout(COLD_START_CALL_TIMEOUT, call).await {
        Err(_) => Err(format!(
            "STS GetCallerIdentity did not answer within {COLD_START_CALL_TIMEOUT:?}"
        )),
        Ok(Err(e)) => Err(one_line(
            &aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
        )),
        Ok(Ok(out)) => out
            .account
            .filter(|a| !a.is_empty())
            .map(|a| (a, region))
            .ok_or_else(|| "STS GetCallerIdentity named no account".to_string()),
    }
}

/// SDK error chains to one masked line of reasonable length.
fn one_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = line.chars().take(300).collect();
    mask_secrets(&cut)
}
