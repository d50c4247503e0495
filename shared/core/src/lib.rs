//! vigil's pure core.
//!
//! Module map (the pipeline of ARCHITECTURE.md "The flow", in order):
//! - [`intake`]: bytes of any accepted input -> [`model::Alert`], or an [`intake::IntakeError`]
//!   naming what was received and why it was refused.
//! - [`cloudtrail`]: CloudTrail records, log files, EventBridge-wrapped calls and saved
//!   `LookupEvents` responses -> [`model::Change`], with the request-parameter allow-list.
//! - [`enrich`]: the look-back window, the [`enrich::Context`] a change source fills, and the
//!   correlation that ranks probable causes.
//! - [`classify`]: the rule table (`rules.yaml`: data, extendable from configuration) -> a
//!   kind, a severity, the rule id and its evidence.
//! - [`runbook`]: runbook steps per kind with the found values filled in; console deep links.
//! - [`route`]: the owners file and top-down route matching.
//! - [`render`]: Slack Block Kit, SNS, Amazon Q Developer custom notifications and terminal
//!   text, within each channel's limits.
//! - [`redact`]: the content policy and secret masking applied to everything rendered.
//! - [`pipeline`]: the stages composed; the `vigil replay --format json` contract.
//! - [`slack_request`]: Slack's v0 request signature and the `block_actions` payload of vigil's
//!   buttons (the `slack-actions` function).
//! - [`ports`]: the traits adapters implement (change sources, Bedrock and CloudWatch look-ups,
//!   notifiers), so the same pipeline runs in a Lambda, in the CLI and in tests.
//!
//! Invariant: no I/O, no clock, no environment. Time is passed in; everything that talks to
//! the world lives in the adapters crate, behind the traits in [`ports`].

pub mod classify;
pub mod cloudtrail;
pub mod enrich;
pub mod intake;
pub mod model;
pub mod noise;
pub mod pipeline;
pub mod ports;
pub mod redact;
pub mod render;
pub mod route;
pub mod runbook;
pub mod slack_request;
