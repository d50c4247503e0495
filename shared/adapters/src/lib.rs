//! vigil's adapters: the core's ports ([`vigil_core::ports`]) implemented against AWS and
//! Slack.
//!
//! Module map:
//! - [`config`]: [`config::AwsClients`], every AWS client built once per process from one SDK
//!   configuration, and the one reading of SDK failures (code, throttled, retryable).
//! - [`cloudtrail`]: [`cloudtrail::CloudTrailChangeSource`], `LookupEvents` paced process-wide
//!   under the 2 requests/second quota, paginated, budgeted, cached across warm invocations.
//! - [`bedrock`]: [`bedrock::BedrockApiInfo`], model invocation logging and guardrails.
//! - [`cloudwatch`]: [`cloudwatch::CloudWatchInfo`], the alarm's metric history and tags.
//! - [`enrichment`]: [`enrichment::Enricher`], all of the above asked at once for one alert,
//!   within a time budget, folded into a [`vigil_core::enrich::Context`].
//! - [`journal`]: the change journal in DynamoDB: [`journal::ChangeJournal`] writes what the
//!   event function receives, [`journal::JournalFirst`] reads it before `LookupEvents`.
//! - [`delivery`]: every rendered message of an alert sent to its channels at once; the retry
//!   policy the notifiers share.
//! - [`slack`]: the Slack notifier (incoming webhook or bot token).
//! - [`sns`]: the SNS notifier.
//! - [`secrets`]: Slack credentials from Secrets Manager or SSM, never printed.
//!
//! Invariant: nothing here decides what an alert means; that is the pure core's job. Adapters
//! fetch and deliver, bounded by the time they are given, and report what they could not do
//! (a missing context source, a failed channel, whether a retry could help) instead of
//! failing the alert.

pub mod bedrock;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod config;
pub mod delivery;
pub mod enrichment;
pub mod journal;
pub mod secrets;
pub mod slack;
pub mod sns;
pub mod state;
