//! Who may press vigil's buttons: the configured workspace and channels (every button), and the
//! silencer user group (Silence buttons), read from Slack's `usergroups.users.list` with the
//! bot token and remembered for [`GROUP_CACHE`].
//!
//! Everything here fails closed: a request without a team or channel when one is configured,
//! or a group that cannot be read, is refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use vigil_adapters::secrets::SecretToken;
use vigil_core::slack_request::BlockActions;

use crate::config::{GROUP_CACHE, GROUP_TIMEOUT};

/// Why a click was refused (the ledger row's and the log line's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short stable code: `team`, `channel`, `not_a_silencer`, `group_unavailable`,
    /// `protected`, `unknown_alert`.
    pub code: &'static str,
    /// What was wrong, for the ledger and the person who clicked.
    pub detail: String,
}

impl Refusal {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// The request's workspace and channel against the configured ones (each only when set).
pub fn check_place(
    interaction: &BlockActions,
    team_id: Option<&str>,
    allowed_channels: Option<&[String]>,
) -> Result<(), Refusal> {
    if let Some(want) = team_id {
        let got = interaction.team_id.as_deref();
        if got != Some(want) {
            return Err(Refusal::new(
                "team",
                format!(
                    "the request comes from workspace {}, not the configured {want}",
                    shown(got)
                ),
            ));
        }
    }
    if let Some(channels) = allowed_channels {
        let got = interaction.channel_id.as_deref();
        if !got.is_some_and(|c| channels.iter().any(|a| a == c)) {
            return Err(Refusal::new(
                "channel",
                format!(
                    "the button was clicked in channel {}, which is not one of the configured channels",
                    shown(got)
                ),
            ));
        }
    }
    Ok(())
}

/// An id from the request as it may be shown: upper-case letters and digits only, at most 32.
pub fn shown(id: Option<&str>) -> String {
    match id {
        None => "(none)".to_owned(),
        Some(id) => id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect(),
    }
}

/// The members last read, and when.
type Members = Option<(Instant, HashSet<String>)>;

/// The silencer group and its members, as last read.
#[derive(Debug, Clone)]
pub struct Silencers {
    group: String,
    token: SecretToken,
    /// `.../usergroups.users.list`.
    url: reqwest::Url,
    cache: Arc<Mutex<Members>>,
}

impl Silencers {
    pub fn new(group: String, token: SecretToken, url: reqwest::Url) -> Self {
        Self {
            group,
            token,
            url,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The group's id.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// `Ok` when `user_id` is a member of the group (read through the cache).
    pub async fn check(&self, http: &reqwest::Client, user_id: &str) -> Result<(), Refusal> {
        let members = match self.cached() {
            Some(members) => members,
            None => {
                let members = self.fetch(http).await?;
                if let Ok(mut cache) = self.cache.lock() {
                    *cache = Some((Instant::now(), members.clone()));
                }
                members
            }
        };
        if members.contains(user_id) {
            Ok(())
        } else {
            Err(Refusal::new(
                "not_a_silencer",
                format!(
                    "user {} is not in the silencer group {}",
                    shown(Some(user_id)),
                    self.group
                ),
            ))
        }
    }

    fn cached(&self) -> Option<HashSet<String>> {
        let cache = self.cache.lock().ok()?;
        cache
            .as_ref()
            .filter(|(at, _)| at.elapsed() < GROUP_CACHE)
            .map(|(_, members)| members.clone())
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<HashSet<String>, Refusal> {
        let unavailable = |why: String| {
            Refusal::new(
                "group_unavailable",
                format!(
                    "the silencer group {} could not be read ({why}); nothing silenced",
                    self.group
                ),
            )
        };
        let response = http
            .post(self.url.clone())
            .bearer_auth(self.token.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("usergroup", &self.group)
                    .finish(),
            )
            .timeout(GROUP_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                unavailable(if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "Slack unreachable".to_owned()
                })
            })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|_| unavailable(format!("HTTP {}, not JSON", status.as_u16())))?;
        if body.get("ok").and_then(Value::as_bool) != Some(true) {
            let error: String = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error given")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(unavailable(format!("Slack answered {error}")));
        }
        let members = body
            .get("users")
            .and_then(Value::as_array)
            .ok_or_else(|| unavailable("no users in Slack's answer".to_owned()))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(team: Option<&str>, channel: Option<&str>) -> BlockActions {
        BlockActions {
            user: vigil_core::slack_request::SlackUser {
                id: "U1".into(),
                name: None,
            },
            team_id: team.map(str::to_owned),
            channel_id: channel.map(str::to_owned),
            message_ts: None,
            message_text: None,
            message_blocks: Vec::new(),
            response_url: None,
            actions: Vec::new(),
        }
    }

    #[test]
    fn workspace_and_channel_are_checked_only_when_configured() {
        let channels = vec!["C1".to_owned(), "C2".to_owned()];
        let ok = |t, c| check_place(&click(t, c), Some("T1"), Some(&channels));
        assert!(ok(Some("T1"), Some("C2")).is_ok());
        assert_eq!(ok(Some("T2"), Some("C1")).unwrap_err().code, "team");
        assert_eq!(ok(None, Some("C1")).unwrap_err().code, "team");
        assert_eq!(ok(Some("T1"), Some("C3")).unwrap_err().code, "channel");
        assert_eq!(ok(Some("T1"), None).unwrap_err().code, "channel");
        assert!(check_place(&click(None, None), None, None).is_ok());
        let e = ok(Some("T2<!channel>"), Some("C1")).unwrap_err();
        assert!(e.detail.contains("T2channel"), "{}", e.detail);
    }
}
