//! `slack-actions`: the Lambda function behind a Function URL that answers vigil's Slack
//! buttons (Acknowledge, Silence 1 h / 4 h / 24 h, a runbook step's Done).
//!
//! Module map:
//! - [`config`]: [`Config`], the `VIGIL_*` settings read once at cold start.
//! - [`handler`]: [`handle`]: verify Slack's v0 signature, claim the signature once (the replay
//!   guard), then act: ledger rows, silences, the message updated through `response_url`.
//! - [`access`]: the configured workspace and channels, and the silencer user group.
//! - [`deps`]: [`Deps`] built from a [`Config`] once per cold start (the signing secret from
//!   Secrets Manager or SSM, the state table, an HTTP client with a short timeout).
//!
//! Invariant: the Function URL's `AuthType` is `NONE`; Slack's signature is the
//! authentication. Nothing is parsed, stored or sent for a request that does not verify, and
//! each signature works once.

pub mod access;
pub mod config;
pub mod deps;
pub mod handler;

pub use config::Config;
pub use deps::build;
pub use handler::{Answer, Deps, handle};
