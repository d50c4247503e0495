//! The function's settings, read from the environment once per cold start (the same rules as
//! `handle-alarm`'s: blank counts as unset, every value checked here, no secret value ever
//! comes through the environment or into an error).

use std::time::Duration;

use handle_alarm::config::{
    ConfigError, LEDGER_TTL_DAYS, SLACK_API_BASE, SLACK_SECRET, TABLE_NAME, env_var,
};
use vigil_adapters::secrets::SecretRef;
use vigil_core::noise::NoiseSettings;

/// Where the Slack app's signing secret lives (`secretsmanager:NAME`, `ssm:/path`, an ARN).
/// Required: without it no request can be verified.
pub const SIGNING_SECRET: &str = "VIGIL_SLACK_SIGNING_SECRET";

/// The Slack workspace (team id, `T...`) whose requests are answered. Set: a request from any
/// other workspace (an app installed in several, a request signed for another) is refused.
pub const TEAM_ID: &str = "VIGIL_SLACK_TEAM_ID";
/// The channel ids (comma-separated, `C...`/`G...`) whose buttons are answered: the channels
/// vigil posts to. Set: a click in any other channel is refused.
pub const ALLOWED_CHANNELS: &str = "VIGIL_SLACK_ALLOWED_CHANNELS";
/// A Slack user group id (`S...`): set, only its members may silence (membership read with
/// `usergroups.users.list` and the bot token of `VIGIL_SLACK_SECRET`, cached for
/// [`GROUP_CACHE`]). Acknowledge and Done stay open to everyone in the allowed channels.
pub const SILENCER_GROUP: &str = "VIGIL_SLACK_SILENCER_GROUP";

/// How long the silencer group's members are remembered before Slack is asked again.
pub const GROUP_CACHE: Duration = Duration::from_secs(60);
/// The longest the group look-up may take (inside Slack's 3 s for the whole click).
pub const GROUP_TIMEOUT: Duration = Duration::from_millis(1_000);

/// How long a request's signature is remembered as used (the replay guard): longer than the
/// five minutes either way a timestamp is accepted, so a signature cannot be used twice.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long the Slack response (message update, confirmation) may take: Slack wants the HTTP
/// answer within 3 s, and the response is sent before it.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Every setting of `slack-actions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The signing secret's reference.
    pub signing_secret: SecretRef,
    /// The state table (silences, ledger, replay guard).
    pub table_name: String,
    /// Besides `https://hooks.slack.com/actions/...`, the only place a `response_url` may
    /// point (tests: the Slack stand-in). `None` in production.
    pub slack_api_base: Option<String>,
    /// How long ledger rows are kept.
    pub ledger_ttl: Duration,
    /// The only workspace answered, when set ([`TEAM_ID`]).
    pub team_id: Option<String>,
    /// The only channels answered, when set ([`ALLOWED_CHANNELS`]); never an empty list.
    pub allowed_channels: Option<Vec<String>>,
    /// Who may silence, when set ([`SILENCER_GROUP`]), and the bot token's secret reference
    /// (`VIGIL_SLACK_SECRET`) that reads the group.
    pub silencer_group: Option<(String, SecretRef)>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// Reads settings through `var` (the environment, or a map in tests).
    pub fn from_lookup<F>(var: F) -> Result<Self, ConfigError>
    where
        F: Fn(&'static str) -> Result<Option<String>, ConfigError>,
    {
        let get = |name: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(var(name)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        let signing_secret = get(SIGNING_SECRET)?
            .ok_or_else(|| {
                ConfigError::new(
                    SIGNING_SECRET,
                    "required: the reference of the Slack app's signing secret (secretsmanager:NAME, ssm:/path or an ARN)",
                )
            })
            .and_then(|r| {
                SecretRef::parse(&r).map_err(|e| ConfigError::new(SIGNING_SECRET, e.to_string()))
            })?;
        let table_name = get(TABLE_NAME)?.ok_or_else(|| {
            ConfigError::new(
                TABLE_NAME,
                "required: the state table (silences, the ledger, the replay guard)",
            )
        })?;
        let slack_api_base = get(SLACK_API_BASE)?
            .map(|b| check_api_base(&b).map(|()| b))
            .transpose()?;
        let default_days = NoiseSettings::default().ledger_ttl.as_secs() / 86_400;
        let days = match get(LEDGER_TTL_DAYS)? {
            None => default_days,
            Some(v) => match v.parse::<u64>() {
                Ok(d) if (1..=365).contains(&d) => d,
                _ => {
                    return Err(ConfigError::new(
                        LEDGER_TTL_DAYS,
                        format!("{v:?} is not a whole number of days from 1 to 365"),
                    ));
                }
            },
        };
        let team_id = get(TEAM_ID)?
            .map(|t| slack_id(TEAM_ID, &t, &['T', 'E'], "a workspace id (T...)"))
            .transpose()?;
        let allowed_channels = get(ALLOWED_CHANNELS)?
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| slack_id(ALLOWED_CHANNELS, c, &['C', 'G'], "channel ids (C...)"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .filter(|list| !list.is_empty());
        let silencer_group = match get(SILENCER_GROUP)? {
            None => None,
            Some(group) => {
                let group = slack_id(SILENCER_GROUP, &group, &['S'], "a user group id (S...)")?;
                let reference = get(SLACK_SECRET)?.ok_or_else(|| {
                    ConfigError::new(
                        SLACK_SECRET,
                        format!("required with {SILENCER_GROUP}: the reference of the secret holding the Slack bot token that reads the group (needs usergroups:read)"),
                    )
                })?;
                let reference = SecretRef::parse(&reference)
                    .map_err(|e| ConfigError::new(SLACK_SECRET, e.to_string()))?;
                Some((group, reference))
            }
        };
        Ok(Self {
            signing_secret,
            table_name,
            slack_api_base,
            ledger_ttl: Duration::from_secs(days * 86_400),
            team_id,
            allowed_channels,
            silencer_group,
        })
    }
}

/// A Slack id: one of `prefixes`, then 2 to 30 upper-case letters and digits.
fn slack_id(
    variable: &'static str,
    value: &str,
    prefixes: &[char],
    what: &str,
) -> Result<String, ConfigError> {
    let ok = value.starts_with(prefixes)
        && (3..=31).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::new(
            variable,
            format!("{value:?} is not {what}: upper-case letters and digits"),
        ))
    }
}

fn check_api_base(base: &str) -> Result<(), ConfigError> {
    vigil_adapters::slack::parse_api_base(base)
        .map(|_| ())
        .map_err(|e| ConfigError::new(SLACK_API_BASE, e.reason()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Config::from_lookup(|name| Ok(map.get(name).cloned()))
    }

    #[test]
    fn the_secret_and_the_table_are_required() {
        let e = config(&[(TABLE_NAME, "t")]).unwrap_err();
        assert_eq!(e.variable, SIGNING_SECRET);
        let e = config(&[(SIGNING_SECRET, "vigil/slack-signing")]).unwrap_err();
        assert_eq!(e.variable, TABLE_NAME);
        let c = config(&[(SIGNING_SECRET, "vigil/slack-signing"), (TABLE_NAME, "t")]).unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.slack_api_base, None);
    }

    #[test]
    fn a_secret_value_in_place_of_a_reference_is_refused_unechoed() {
        let e = config(&[
            (SIGNING_SECRET, "https://hooks.slack.com/services/T/B/X"),
            (TABLE_NAME, "t"),
        ])
        .unwrap_err();
        assert!(!e.to_string().contains("services/T"), "{e}");
    }

    #[test]
    fn workspace_channels_and_silencer_group() {
        let base = [(SIGNING_SECRET, "s"), (TABLE_NAME, "t")];
        let with = |more: &[(&'static str, &str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(more);
            config(&vars)
        };
        let c = with(&[]).unwrap();
        assert_eq!(
            (c.team_id, c.allowed_channels, c.silencer_group),
            (None, None, None)
        );
        let c = with(&[
            (TEAM_ID, " T0001 "),
            (ALLOWED_CHANNELS, "C0001, G0002,,"),
            (SILENCER_GROUP, "S0SILENCE"),
            (SLACK_SECRET, "secretsmanager:vigil/slack"),
        ])
        .unwrap();
        assert_eq!(c.team_id.as_deref(), Some("T0001"));
        assert_eq!(
            c.allowed_channels,
            Some(vec!["C0001".to_owned(), "G0002".to_owned()])
        );
        assert_eq!(c.silencer_group.unwrap().0, "S0SILENCE");
        assert_eq!(
            with(&[(ALLOWED_CHANNELS, " , ")]).unwrap().allowed_channels,
            None
        );
        for (var, bad) in [
            (TEAM_ID, "t0001"),
            (TEAM_ID, "C0001"),
            (ALLOWED_CHANNELS, "C0001,#alerts"),
            (SILENCER_GROUP, "U0001"),
        ] {
            let e = with(&[(var, bad), (SLACK_SECRET, "vigil/slack")]).unwrap_err();
            assert_eq!(e.variable, var, "{bad}");
        }
        // A group needs the bot token that can read it.
        let e = with(&[(SILENCER_GROUP, "S0SILENCE")]).unwrap_err();
        assert_eq!(e.variable, SLACK_SECRET);
    }

    #[test]
    fn the_api_base_must_be_https_or_loopback() {
        let base = |b: &str| {
            config(&[
                (SIGNING_SECRET, "s"),
                (TABLE_NAME, "t"),
                (SLACK_API_BASE, b),
            ])
        };
        assert!(base("http://127.0.0.1:9000").is_ok());
        assert!(base("https://slack.example").is_ok());
        assert!(base("http://evil.example").is_err());
        // Parsed, not compared as text: a domain that starts like 127.0.0.1, user info before
        // the real host, credentials.
        for bad in [
            "http://127.0.0.1.evil.net",
            "http://127.0.0.1.evil.net:4567",
            "http://127.0.0.1@evil.net",
            "http://127.0.0.1:4567@evil.net",
            "http://localhost.evil.net",
            "https://user:pw@hooks.slack.com",
        ] {
            let e = base(bad).unwrap_err();
            assert_eq!(e.variable, SLACK_API_BASE, "{bad}");
        }
    }
}
