//! The function's settings, read from the environment once per cold start.
//!
//! Invariant: this is the only code of the function that reads the environment, and it reads
//! it whole, at once: every value is checked here, and a bad one stops the cold start with an
//! error that names the variable and says what is accepted. Secrets never come through the
//! environment, only references to them (`VIGIL_SLACK_SECRET`), and no error here ever echoes
//! a value that looks like a secret.
//!
//! A variable that is set but empty (or only spaces) counts as unset: SAM templates commonly
//! pass `""` for an optional parameter left blank.

use std::path::PathBuf;
use std::time::Duration;

use vigil_adapters::secrets::SecretRef;
use vigil_core::noise::NoiseSettings;
use vigil_core::redact::{ContentPolicy, mask_secrets};

/// Slack credentials reference (`secretsmanager:NAME`, `ssm:/path`, an ARN). Unset: no Slack.
pub const SLACK_SECRET: &str = "VIGIL_SLACK_SECRET";
/// Slack Web API base (default Slack's own; tests point it at the stand-in).
pub const SLACK_API_BASE: &str = "VIGIL_SLACK_API_BASE";
/// Slack channel of the default route in bot-token mode (a webhook fixes its own channel).
pub const SLACK_CHANNEL: &str = "VIGIL_SLACK_CHANNEL";
/// SSM parameter holding the owners YAML.
pub const OWNERS_PARAMETER: &str = "VIGIL_OWNERS_PARAMETER";
/// Path of the owners YAML (bundled with the function).
pub const OWNERS_FILE: &str = "VIGIL_OWNERS_FILE";
/// Team of the single default route, when there is no owners file.
pub const DEFAULT_TEAM: &str = "VIGIL_DEFAULT_TEAM";
/// The default route's SNS topic.
pub const SNS_TOPIC_ARN: &str = "VIGIL_SNS_TOPIC_ARN";
/// `metadata`, `redacted` or `full`.
pub const CONTENT_POLICY: &str = "VIGIL_CONTENT_POLICY";
/// CloudTrail look-back before the alert, in minutes.
pub const LOOKBACK_MINUTES: &str = "VIGIL_LOOKBACK_MINUTES";
/// Time all enrichment of one alert may take, in milliseconds.
pub const ENRICH_BUDGET_MS: &str = "VIGIL_ENRICH_BUDGET_MS";
/// Time delivery of one alert may take, in milliseconds.
pub const DELIVERY_BUDGET_MS: &str = "VIGIL_DELIVERY_BUDGET_MS";
/// `LookupEvents` requests per second this function allows itself (at most 2).
pub const LOOKUP_RPS: &str = "VIGIL_LOOKUP_RPS";
/// The DynamoDB table of the change journal.
pub const TABLE_NAME: &str = "VIGIL_TABLE_NAME";
/// How long journal entries live, in hours after they are written.
pub const JOURNAL_TTL_HOURS: &str = "VIGIL_JOURNAL_TTL_HOURS";

/// Noise control (ARCHITECTURE.md "Noise control", with a table): how long a group stays open after its last alert.
pub const GROUP_WINDOW_MINUTES: &str = "VIGIL_GROUP_WINDOW_MINUTES";
/// Thread replies per group before repeats are only counted.
pub const MAX_REPLIES: &str = "VIGIL_MAX_REPLIES";
/// Phase changes inside the flap window that make a group flapping.
pub const FLAP_THRESHOLD: &str = "VIGIL_FLAP_THRESHOLD";
/// The flap window, in minutes.
pub const FLAP_WINDOW_MINUTES: &str = "VIGIL_FLAP_WINDOW_MINUTES";
/// The least time between two Slack calls to one channel, in milliseconds.
pub const SLACK_INTERVAL_MS: &str = "VIGIL_SLACK_INTERVAL_MS";
/// The longest an alert waits for its Slack slot before it folds into the digest.
pub const MAX_RATE_WAIT_MS: &str = "VIGIL_MAX_RATE_WAIT_MS";
/// How long decision-ledger entries are kept, in days.
pub const LEDGER_TTL_DAYS: &str = "VIGIL_LEDGER_TTL_DAYS";

/// `true`: Slack messages carry vigil's buttons (the `slack-actions` function answers them).
pub const INTERACTIVE: &str = "VIGIL_INTERACTIVE";

/// The default team name.
pub const DEFAULT_TEAM_NAME: &str = "platform";
/// The default look-back (ARCHITECTURE.md "Correlation").
pub const DEFAULT_LOOKBACK_MINUTES: u32 = 60;
/// The default enrichment budget: leaves most of a 30 s Lambda timeout for delivery.
pub const DEFAULT_ENRICH_BUDGET_MS: u64 = 8_000;
/// The default delivery budget.
pub const DEFAULT_DELIVERY_BUDGET_MS: u64 = 10_000;
/// The `LookupEvents` quota (requests per second per account and Region).
pub const MAX_LOOKUP_RPS: f64 = 2.0;
/// The default journal TTL: two days covers any look-back and a weekend's redrive.
pub const DEFAULT_JOURNAL_TTL_HOURS: u64 = 48;

/// Lambda's longest timeout: no budget can usefully exceed it.
const MAX_BUDGET_MS: u64 = 900_000;
/// A day: CloudTrail's causes of an alarm are minutes to hours old, not days.
const MAX_LOOKBACK_MINUTES: u32 = 1_440;
/// CloudTrail event history keeps 90 days; a longer TTL keeps nothing more useful.
const MAX_JOURNAL_TTL_HOURS: u64 = 90 * 24;

/// A setting that stops the cold start: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable (or, for values loaded at cold start, the variable that
    /// points at them).
    pub variable: &'static str,
    /// What is wrong, never quoting a secret.
    pub reason: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: mask_secrets(&reason.into()),
        }
    }
}

/// Where the owners file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnersSource {
    /// An SSM parameter (`VIGIL_OWNERS_PARAMETER`).
    Parameter(String),
    /// A file (`VIGIL_OWNERS_FILE`).
    File(PathBuf),
    /// No owners file: one route to `team`, Slack (when configured) and the default topic.
    Default { team: String },
}

/// Every setting the alarm function reads (the event function reads these too, plus its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the Slack credentials live; `None`: no Slack.
    pub slack_secret: Option<SecretRef>,
    /// The Slack Web API base; `None`: Slack's own.
    pub slack_api_base: Option<String>,
    /// The default route's Slack channel (bot-token mode).
    pub slack_channel: Option<String>,
    /// The owners file.
    pub owners: OwnersSource,
    /// The default route's SNS topic.
    pub sns_topic_arn: Option<String>,
    /// The content policy of every notification.
    pub policy: ContentPolicy,
    /// CloudTrail look-back.
    pub lookback: chrono::Duration,
    /// Enrichment budget per alert.
    pub enrich_budget: Duration,
    /// Delivery budget per alert.
    pub delivery_budget: Duration,
    /// `LookupEvents` requests per second, in `(0, 2]`.
    pub lookup_rps: f64,
    /// The change journal's table; `None`: no journal.
    pub table_name: Option<String>,
    /// How long journal entries live after they are written.
    pub journal_ttl: Duration,
    /// Noise-control tunables (used when a table is configured).
    pub noise: NoiseSettings,
    /// Slack messages carry buttons (`VIGIL_INTERACTIVE=true`; default false).
    pub interactive: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// Reads settings through `var` (the environment, or a map in tests). `var` returns
    /// `Err` for a value that is not text.
    pub fn from_lookup<F>(var: F) -> Result<Self, ConfigError>
    where
        F: Fn(&'static str) -> Result<Option<String>, ConfigError>,
    {
        let get = |name: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(var(name)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        let slack_secret = get(SLACK_SECRET)?
            .map(|r| {
                SecretRef::parse(&r).map_err(|e| ConfigError::new(SLACK_SECRET, e.to_string()))
            })
            .transpose()?;
        let slack_api_base = get(SLACK_API_BASE)?
            .map(|b| check_api_base(&b).map(|()| b))
            .transpose()?;
        let slack_channel = get(SLACK_CHANNEL)?;
        let owners = match (get(OWNERS_PARAMETER)?, get(OWNERS_FILE)?) {
            (Some(p), _) => OwnersSource::Parameter(p),
            (None, Some(f)) => OwnersSource::File(PathBuf::from(f)),
            (None, None) => OwnersSource::Default {
                team: get(DEFAULT_TEAM)?.unwrap_or_else(|| DEFAULT_TEAM_NAME.to_string()),
            },
        };
        let sns_topic_arn = get(SNS_TOPIC_ARN)?
            .map(|a| check_topic(&a).map(|()| a))
            .transpose()?;
        let policy = match get(CONTENT_POLICY)?.as_deref() {
            None => ContentPolicy::default(),
            Some(p) => parse_policy(p)?,
        };
        let lookback = number(
            get(LOOKBACK_MINUTES)?,
            LOOKBACK_MINUTES,
            DEFAULT_LOOKBACK_MINUTES,
            1,
            MAX_LOOKBACK_MINUTES,
        )?;
        let enrich = number(
            get(ENRICH_BUDGET_MS)?,
            ENRICH_BUDGET_MS,
            DEFAULT_ENRICH_BUDGET_MS,
            1,
            MAX_BUDGET_MS,
        )?;
        let delivery = number(
            get(DELIVERY_BUDGET_MS)?,
            DELIVERY_BUDGET_MS,
            DEFAULT_DELIVERY_BUDGET_MS,
            1,
            MAX_BUDGET_MS,
        )?;
        let lookup_rps = match get(LOOKUP_RPS)? {
            None => MAX_LOOKUP_RPS,
            Some(v) => match v.parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_LOOKUP_RPS => r,
                _ => {
                    return Err(ConfigError::new(
                        LOOKUP_RPS,
                        format!(
                            "{v:?} is not a number of requests per second above 0 and at most 2 (LookupEvents' quota per account and Region)"
                        ),
                    ));
                }
            },
        };
        let table_name = get(TABLE_NAME)?;
        let ttl_hours = number(
            get(JOURNAL_TTL_HOURS)?,
            JOURNAL_TTL_HOURS,
            DEFAULT_JOURNAL_TTL_HOURS,
            1,
            MAX_JOURNAL_TTL_HOURS,
        )?;
        let interactive = match get(INTERACTIVE)?.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    INTERACTIVE,
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let defaults = NoiseSettings::default();
        let minutes = |d: Duration| d.as_secs() / 60;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let noise = NoiseSettings {
            group_window: Duration::from_secs(
                number(
                    get(GROUP_WINDOW_MINUTES)?,
                    GROUP_WINDOW_MINUTES,
                    minutes(defaults.group_window),
                    1,
                    1_440,
                )? * 60,
            ),
            max_replies: number(get(MAX_REPLIES)?, MAX_REPLIES, defaults.max_replies, 0, 100)?,
            flap_threshold: number(
                get(FLAP_THRESHOLD)?,
                FLAP_THRESHOLD,
                defaults.flap_threshold,
                2,
                100,
            )?,
            flap_window: Duration::from_secs(
                number(
                    get(FLAP_WINDOW_MINUTES)?,
                    FLAP_WINDOW_MINUTES,
                    minutes(defaults.flap_window),
                    1,
                    1_440,
                )? * 60,
            ),
            slack_interval: Duration::from_millis(number(
                get(SLACK_INTERVAL_MS)?,
                SLACK_INTERVAL_MS,
                millis(defaults.slack_interval),
                100,
                60_000,
            )?),
            max_rate_wait: Duration::from_millis(number(
                get(MAX_RATE_WAIT_MS)?,
                MAX_RATE_WAIT_MS,
                millis(defaults.max_rate_wait),
                0,
                60_000,
            )?),
            ledger_ttl: Duration::from_secs(
                number(
                    get(LEDGER_TTL_DAYS)?,
                    LEDGER_TTL_DAYS,
                    defaults.ledger_ttl.as_secs() / 86_400,
                    1,
                    365,
                )? * 86_400,
            ),
            ..defaults
        };
        Ok(Self {
            noise,
            slack_secret,
            slack_api_base,
            slack_channel,
            owners,
            sns_topic_arn,
            policy,
            lookback: chrono::Duration::minutes(i64::from(lookback)),
            enrich_budget: Duration::from_millis(enrich),
            delivery_budget: Duration::from_millis(delivery),
            lookup_rps,
            table_name,
            journal_ttl: Duration::from_secs(ttl_hours.saturating_mul(3_600)),
            interactive,
        })
    }
}

/// One environment variable: unset is `None`; a value that is not text is an error.
pub fn env_var(name: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ConfigError::new(name, "the value is not valid UTF-8 text"))
        }
    }
}

/// A whole number in `[min, max]`, or `default` when unset.
fn number<T>(
    value: Option<String>,
    variable: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(v) = value else {
        return Ok(default);
    };
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("{v:?} is not a whole number from {min} to {max}"),
        )),
    }
}

fn parse_policy(p: &str) -> Result<ContentPolicy, ConfigError> {
    match p {
        "metadata" => Ok(ContentPolicy::Metadata),
        "redacted" => Ok(ContentPolicy::Redacted),
        "full" => Ok(ContentPolicy::Full),
        other => Err(ConfigError::new(
            CONTENT_POLICY,
            format!("{other:?} is not a content policy: expected metadata, redacted or full"),
        )),
    }
}

/// `https://...`, or `http://` to a loopback address (the local stand-in). The notifier
/// checks it again when it is built; checking here names the variable at once.
fn check_api_base(base: &str) -> Result<(), ConfigError> {
    vigil_adapters::slack::parse_api_base(base)
        .map(|_| ())
        .map_err(|e| ConfigError::new(SLACK_API_BASE, e.reason()))
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
fn check_topic(arn: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 6
        && parts.first() == Some(&"arn")
        && parts.get(2) == Some(&"sns")
        && parts.get(5).is_some_and(|n| !n.is_empty());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            SNS_TOPIC_ARN,
            format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Config::from_lookup(|name| Ok(map.get(name).cloned()))
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.slack_secret, None);
        assert_eq!(
            c.owners,
            OwnersSource::Default {
                team: "platform".into()
            }
        );
        assert_eq!(c.policy, ContentPolicy::Redacted);
        assert_eq!(c.lookback, chrono::Duration::minutes(60));
        assert_eq!(c.enrich_budget, Duration::from_millis(8_000));
        assert_eq!(c.delivery_budget, Duration::from_millis(10_000));
        assert_eq!(c.lookup_rps, 2.0);
        assert_eq!(c.table_name, None);
        assert_eq!(c.journal_ttl, Duration::from_secs(48 * 3_600));
    }

    #[test]
    fn the_owners_parameter_wins_over_the_file_and_empty_values_count_as_unset() {
        let c = config(&[
            (OWNERS_PARAMETER, "/vigil/owners"),
            (OWNERS_FILE, "owners.yaml"),
            (TABLE_NAME, "  "),
        ])
        .unwrap();
        assert_eq!(c.owners, OwnersSource::Parameter("/vigil/owners".into()));
        assert_eq!(c.table_name, None);
        let c = config(&[(OWNERS_FILE, "owners.yaml")]).unwrap();
        assert_eq!(c.owners, OwnersSource::File("owners.yaml".into()));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: [(&'static str, &str); 8] = [
            (CONTENT_POLICY, "everything"),
            (LOOKBACK_MINUTES, "0"),
            (ENRICH_BUDGET_MS, "8s"),
            (DELIVERY_BUDGET_MS, "-1"),
            (LOOKUP_RPS, "5"),
            (JOURNAL_TTL_HOURS, "0"),
            (SNS_TOPIC_ARN, "alerts"),
            (SLACK_API_BASE, "http://slack.example.com/api"),
        ];
        for (var, value) in cases {
            let e = config(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var, "{e}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    /// The API base is parsed and its host compared: look-alike hosts and user-info tricks
    /// that start with the text of a loopback address are refused.
    #[test]
    fn the_slack_api_base_host_is_compared_not_its_prefix() {
        for bad in [
            "http://127.0.0.1.evil.net",
            "http://127.0.0.1.evil.net:9000/api",
            "http://localhost.evil.net/api",
            "http://127.0.0.1@evil.net/api",
            "http://localhost:9000@evil.net/api",
            "https://user:pw@slack.com/api",
        ] {
            let e = config(&[(SLACK_API_BASE, bad)]).unwrap_err();
            assert_eq!(e.variable, SLACK_API_BASE, "{bad}: {e}");
        }
        for good in [
            "https://slack.com/api",
            "http://127.0.0.1:9000/api",
            "http://localhost:9000/api",
            "http://[::1]:9000/api",
        ] {
            let c = config(&[(SLACK_API_BASE, good)]).unwrap();
            assert_eq!(c.slack_api_base.as_deref(), Some(good));
        }
    }

    #[test]
    fn a_secret_value_given_as_the_slack_reference_is_refused_without_being_echoed() {
        let hook = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop";
        let e = config(&[(SLACK_SECRET, hook)]).unwrap_err();
        assert_eq!(e.variable, SLACK_SECRET);
        assert!(!e.to_string().contains("abcdefghijklmnop"), "{e}");
        let c = config(&[(SLACK_SECRET, "secretsmanager:vigil/slack")]).unwrap();
        assert_eq!(
            c.slack_secret.map(|r| r.to_string()),
            Some("secretsmanager:vigil/slack".to_string())
        );
    }

    #[test]
    fn fractional_lookup_rates_below_the_quota_are_accepted() {
        assert_eq!(config(&[(LOOKUP_RPS, "0.5")]).unwrap().lookup_rps, 0.5);
        assert!(config(&[(LOOKUP_RPS, "0")]).is_err());
        assert!(config(&[(LOOKUP_RPS, "NaN")]).is_err());
    }
}
