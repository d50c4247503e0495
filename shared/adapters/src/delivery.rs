//! Delivery: every rendered notification of one alert, sent to every channel at once.
//!
//! - [`deliver_all`] sends each [`Outgoing`] through the notifier of its channel
//!   ([`Channels`]) concurrently and returns a [`DeliveryReport`] with one outcome per message.
//! - [`outgoing_from`] addresses a pipeline [`Report`]'s notifications.
//! - [`RetryPolicy`] is the retry schedule the Slack and SNS notifiers share.
//!
//! Invariant: one channel never holds up or sinks another. Each message is sent on its own
//! future with the same `time_left`, a failure is recorded as that message's outcome (with
//! whether a retry could help), and only when *every* message failed is the alert a failure
//! (README.md "Usage": the function then returns an error, so Lambda retries and dead-letters it).

use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use vigil_core::pipeline::Report;
use vigil_core::ports::{Delivered, DeliveryError, Notifier, Outgoing};

use crate::slack::SlackNotifier;
use crate::sns::SnsNotifier;

/// How the notifiers retry within the time a Lambda invocation has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry of a transient failure (5xx, connect error, timeout);
    /// doubled for each further retry (200 ms, 400 ms, 800 ms by default).
    pub first_backoff: Duration,
    /// Retries of transient failures; rate-limit waits do not count against this.
    pub transient_retries: u32,
    /// Attempts in all, whatever the reasons, so a misbehaving server cannot loop us.
    pub max_attempts: u32,
    /// Time kept back for the attempt after a wait: a `Retry-After` or back-off that would
    /// leave less than this is not waited for; the failure is returned (retryable) instead.
    pub margin: Duration,
    /// Upper bound on one attempt; the time left bounds it further.
    pub attempt_timeout: Duration,
    /// An attempt is not started with less than this left: it could not finish.
    pub min_attempt: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(200),
            transient_retries: 3,
            max_attempts: 6,
            margin: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(10),
            min_attempt: Duration::from_millis(50),
        }
    }
}

impl RetryPolicy {
    /// The wait before transient retry number `n` (1-based), or `None` past the last one.
    pub fn backoff(&self, n: u32) -> Option<Duration> {
        if n == 0 || n > self.transient_retries {
            return None;
        }
        let factor = 2u32.checked_pow(n.saturating_sub(1)).unwrap_or(u32::MAX);
        Some(self.first_backoff.saturating_mul(factor))
    }
}

/// A deadline measured once per send, so every wait and timeout comes out of one budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    deadline: Instant,
}

impl Budget {
    pub(crate) fn new(time_left: Duration) -> Self {
        let now = Instant::now();
        Self {
            deadline: now.checked_add(time_left).unwrap_or(now),
        }
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether waiting `wait` still leaves `margin` for the attempt after it.
    pub(crate) fn fits(&self, wait: Duration, margin: Duration) -> bool {
        wait.saturating_add(margin) <= self.remaining()
    }

    /// The timeout for the next attempt, or `None` when too little time is left to start one.
    pub(crate) fn attempt_timeout(&self, policy: &RetryPolicy) -> Option<Duration> {
        let left = self.remaining();
        (left >= policy.min_attempt).then(|| left.min(policy.attempt_timeout))
    }
}

/// Cuts `s` to `max` characters on a character boundary.
pub(crate) fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// The label a message's outcome carries: `slack:#channel`, `slack` (webhook, no channel)
/// or `sns:TOPIC_ARN`. Channel names and topic ARNs are configuration, not secrets.
pub fn channel_label(message: &Outgoing) -> String {
    match message {
        Outgoing::Slack {
            channel: Some(c), ..
        } => format!("slack:{c}"),
        Outgoing::Slack { channel: None, .. } => "slack".to_owned(),
        Outgoing::Sns { topic_arn, .. } => format!("sns:{topic_arn}"),
    }
}

/// The notifiers one function has, at most one per channel kind; a message for a kind with
/// no notifier fails (not retryable: it is a configuration gap). Generic so handler tests can
/// use fakes; the defaults are the real adapters.
#[derive(Debug, Clone, Default)]
pub struct Channels<S = SlackNotifier, N = SnsNotifier> {
    /// Sends every [`Outgoing::Slack`].
    pub slack: Option<S>,
    /// Sends every [`Outgoing::Sns`].
    pub sns: Option<N>,
}

/// What happened to each message of one alert, in the order the messages were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// One outcome per message.
    pub outcomes: Vec<Result<Delivered, DeliveryError>>,
}

impl DeliveryReport {
    /// The messages that arrived.
    pub fn delivered(&self) -> impl Iterator<Item = &Delivered> {
        self.outcomes.iter().filter_map(|o| o.as_ref().ok())
    }

    /// The messages that did not.
    pub fn failures(&self) -> impl Iterator<Item = &DeliveryError> {
        self.outcomes.iter().filter_map(|o| o.as_ref().err())
    }

    /// True when at least one message arrived.
    pub fn any_delivered(&self) -> bool {
        self.outcomes.iter().any(Result::is_ok)
    }

    /// True when there was something to send and none of it arrived: the alert failed and
    /// the function should return an error. An empty report has not failed.
    pub fn all_failed(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(Result::is_err)
    }

    /// True when everything failed and at least one failure could succeed on a retry.
    pub fn worth_retrying(&self) -> bool {
        self.all_failed() && self.failures().any(|e| e.retryable)
    }
}

/// Sends every message through its channel's notifier, all at once, each bounded by
/// `time_left`. Never fails as a whole: see [`DeliveryReport::all_failed`].
pub async fn deliver_all<S: Notifier, N: Notifier>(
    channels: &Channels<S, N>,
    messages: Vec<Outgoing>,
    time_left: Duration,
) -> DeliveryReport {
    let sends = messages.iter().map(|message| async move {
        let outcome = match message {
            Outgoing::Slack { .. } => match &channels.slack {
                Some(n) => n.send(message, time_left).await,
                None => Err(unconfigured(message, "Slack")),
            },
            Outgoing::Sns { .. } => match &channels.sns {
                Some(n) => n.send(message, time_left).await,
                None => Err(unconfigured(message, "SNS")),
            },
        };
        match &outcome {
            Ok(d) => tracing::info!(
                channel = %d.channel,
                attempts = d.attempts,
                fell_back_to_text = d.fell_back_to_text,
                "notification delivered"
            ),
            Err(e) => tracing::warn!(
                channel = %e.channel,
                attempts = e.attempts,
                retryable = e.retryable,
                reason = %e.reason,
                "notification not delivered"
            ),
        }
        outcome
    });
    DeliveryReport {
        outcomes: join_all(sends).await,
    }
}

fn unconfigured(message: &Outgoing, kind: &str) -> DeliveryError {
    DeliveryError {
        channel: channel_label(message),
        reason: format!("no {kind} notifier is configured for this function"),
        retryable: false,
        attempts: 0,
    }
}

/// The messages of a pipeline report, addressed: each Slack message to its route's channel
/// (`None` when the route has only a webhook secret, whose webhook fixes the channel), each
/// SNS notification to its route's topic. Threads and edits (`thread_ts`, `update_ts`) are
/// left for noise control to fill in.
///
/// `Addressed::destination` holds the channel *or* the webhook secret's name, so the channel
/// is taken from the matched route's destination instead, where the two are separate.
pub fn outgoing_from(report: &Report) -> Vec<Outgoing> {
    let channel_of = |route: &str, addressed: Option<&String>| {
        match report.route.matched.iter().find(|m| m.name == route) {
            Some(m) => m.destination.slack_channel.clone(),
            // Not expected (the pipeline renders only matched routes); keep the destination
            // only when it cannot be a secret name.
            None => addressed.filter(|d| looks_like_channel(d)).cloned(),
        }
    };
    let slack = report.notifications.slack.iter().map(|a| Outgoing::Slack {
        channel: channel_of(&a.route, a.destination.as_ref()),
        message: a.message.clone(),
        thread_ts: None,
        update_ts: None,
    });
    let sns = report.notifications.sns.iter().filter_map(|a| {
        a.destination.as_ref().map(|topic| Outgoing::Sns {
            topic_arn: topic.clone(),
            message: a.message.clone(),
        })
    });
    slack.chain(sns).collect()
}

/// `#name`, or a Slack conversation id (`C…`, `G…`, `D…` followed by upper-case letters and
/// digits).
fn looks_like_channel(s: &str) -> bool {
    if s.starts_with('#') {
        return s.len() > 1;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some('C' | 'G' | 'D'))
        && s.len() >= 9
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops() {
        let p = RetryPolicy::default();
        let waits: Vec<_> = (1..=4).map(|n| p.backoff(n)).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                Some(Duration::from_millis(800)),
                None
            ]
        );
        assert_eq!(p.backoff(0), None);
    }

    #[test]
    fn an_empty_report_has_neither_delivered_nor_failed() {
        let r = DeliveryReport::default();
        assert!(!r.any_delivered());
        assert!(!r.all_failed());
    }

    #[test]
    fn all_failed_needs_every_outcome_to_fail() {
        let ok = Ok(Delivered {
            channel: "sns:x".into(),
            id: Some("m".into()),
            fell_back_to_text: false,
            attempts: 1,
        });
        let err = |retryable| {
            Err(DeliveryError {
                channel: "slack".into(),
                reason: "down".into(),
                retryable,
                attempts: 3,
            })
        };
        let mixed = DeliveryReport {
            outcomes: vec![ok, err(true)],
        };
        assert!(mixed.any_delivered() && !mixed.all_failed() && !mixed.worth_retrying());
        let dead = DeliveryReport {
            outcomes: vec![err(false), err(true)],
        };
        assert!(dead.all_failed() && dead.worth_retrying());
        let permanent = DeliveryReport {
            outcomes: vec![err(false)],
        };
        assert!(permanent.all_failed() && !permanent.worth_retrying());
    }

    #[test]
    fn channels_are_told_from_secret_names() {
        assert!(looks_like_channel("#ai-alerts"));
        assert!(looks_like_channel("C0123ABCDE"));
        assert!(!looks_like_channel("vigil/slack-webhook"));
        assert!(!looks_like_channel("ssm:/vigil/slack"));
        assert!(!looks_like_channel("#"));
    }
}
