//! `handle-alarm`: the Lambda function for CloudWatch alarms (README.md "Usage" inputs 1 to 3: the
//! alarm action, EventBridge `CloudWatch Alarm State Change`, and SNS notifications).
//!
//! Module map:
//! - [`config`]: [`Config`], every `VIGIL_*` setting read and checked once at cold start.
//! - [`deps`]: [`Deps`], what the handler works with (enricher, notifiers, owners), generic
//!   over the core's ports; [`deps::build`] wires it to AWS and Slack once per cold start.
//! - [`handler`]: [`handle`], one event → one decision per alert, [`HandlerError`] with its
//!   stable `error_type`s, and [`HandlerOutput`], the invocation's response. Its pieces
//!   (intake check, respond, deliver, conclude) are shared with `handle-event`.
//! - [`metrics`]: the per-invocation CloudWatch Embedded Metric Format line.
//! - [`fakes`]: in-memory ports for handler tests.
//!
//! Invariant: nothing is lost and nothing panics. Every input is answered by a decision per
//! alert or by an error that Lambda retries and then dead-letters; `main.rs` only reads the
//! configuration, builds the deps and runs the handler.

pub mod config;
pub mod control;
pub mod deps;
pub mod fakes;
pub mod handler;
pub mod metrics;

pub use config::{Config, ConfigError};
pub use deps::{AwsDeps, Deps};
pub use handler::{HandlerError, HandlerOutput, handle, handle_within};
