//! `vigil redrive`: what is in the dead-letter queue, and (`--send`) re-invoking the function
//! that failed with the original event.
//!
//! Two kinds of dead letter are understood:
//! - a Lambda on-failure destination record (`requestContext.functionArn`, the original event
//!   as `requestPayload`, the error as `responsePayload`);
//! - an EventBridge target dead letter: the body is the original event, the message attributes
//!   `ERROR_CODE`, `ERROR_MESSAGE`, `RULE_ARN`, `TARGET_ARN` say what failed.
//!
//! Anything else is named and left in the queue. A dry run (the default) makes every message it
//! read visible again, so it changes nothing; `--send` deletes a message only once its
//! function answered without an error.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::Utc;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use vigil_core::intake;
use vigil_core::noise::{ChannelResult, LedgerEntry, NoiseSettings, Outcome};
use vigil_core::pipeline::Report;
use vigil_core::ports::StateStore as _;
use vigil_core::redact::{ContentPolicy, Redactor, mask_secrets};

use crate::common::{self, CmdError, OutFormat};
use crate::replay;

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The dead-letter queue's URL.
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// Re-invoke the function with each understood message's original event, and delete the
    /// message when it succeeds. Without it: a dry run that changes nothing.
    #[arg(long)]
    pub send: bool,
    /// Read at most this many messages.
    #[arg(long, default_value_t = 10)]
    pub max: usize,
    /// The function to invoke (name or ARN). Default: the record's function, or the
    /// EventBridge target.
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub function: Option<String>,
    /// Owners file (YAML), for the routes the dry run shows.
    #[arg(long)]
    pub owners: Option<PathBuf>,
    /// Record a ledger entry per message in this noise-control table.
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

/// The most `--max` may ask for.
const MAX_MESSAGES: usize = 1_000;
/// SQS's largest batch.
const BATCH: usize = 10;
/// How long the messages read stay hidden from other readers while this runs: short for a dry
/// run (which makes them visible again at the end anyway), the longest Lambda run for `--send`.
const DRY_RUN_VISIBILITY: Duration = Duration::from_secs(60);
const SEND_VISIBILITY: Duration = Duration::from_secs(15 * 60);

/// Where a dead letter came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Source {
    /// A Lambda on-failure destination record.
    LambdaOnFailure {
        function_arn: String,
        /// `RetriesExhausted`, `EventAgeExceeded`.
        condition: Option<String>,
        approximate_invoke_count: Option<u64>,
        request_id: Option<String>,
    },
    /// An EventBridge target's dead letter.
    EventbridgeTarget {
        rule_arn: Option<String>,
        target_arn: Option<String>,
        retry_attempts: Option<String>,
    },
}

impl Source {
    fn label(&self) -> &'static str {
        match self {
            Source::LambdaOnFailure { .. } => "Lambda on-failure destination",
            Source::EventbridgeTarget { .. } => "EventBridge target dead letter",
        }
    }

    fn origin(&self) -> String {
        match self {
            Source::LambdaOnFailure {
                function_arn,
                condition,
                approximate_invoke_count,
                ..
            } => {
                let mut detail = Vec::new();
                if let Some(c) = condition {
                    detail.push(c.clone());
                }
                if let Some(n) = approximate_invoke_count {
                    detail.push(format!("{n} attempt{}", if *n == 1 { "" } else { "s" }));
                }
                if detail.is_empty() {
                    function_arn.clone()
                } else {
                    format!("{function_arn} ({})", detail.join(", "))
                }
            }
            Source::EventbridgeTarget {
                rule_arn,
                target_arn,
                retry_attempts,
            } => {
                let mut text = format!(
                    "rule {} → target {}",
                    rule_arn.as_deref().unwrap_or("(unknown)"),
                    target_arn.as_deref().unwrap_or("(unknown)")
                );
                if let Some(n) = retry_attempts {
                    text.push_str(&format!(" ({n} retries)"));
                }
                text
            }
        }
    }

    /// The function a resend goes to when `--function` is not given.
    fn function(&self) -> Result<String, String> {
        match self {
            Source::LambdaOnFailure { function_arn, .. } => Ok(function_arn.clone()),
            Source::EventbridgeTarget {
                target_arn: Some(arn),
                ..
            } if arn.split(':').nth(2) == Some("lambda") => Ok(arn.clone()),
            Source::EventbridgeTarget {
                target_arn: Some(arn),
                ..
            } => Err(format!(
                "the target {arn} is not a Lambda function: pass --function NAME_OR_ARN"
            )),
            Source::EventbridgeTarget {
                target_arn: None, ..
            } => Err("the dead letter names no target: pass --function NAME_OR_ARN".into()),
        }
    }
}

/// A dead letter read.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Understood {
        source: Source,
        /// The error recorded with it, one line.
        error: Option<String>,
        /// The original event.
        event: Value,
    },
    /// Why not.
    NotUnderstood(String),
}

/// The EventBridge dead-letter attributes.
const EB_ATTRIBUTES: [&str; 3] = ["ERROR_CODE", "RULE_ARN", "TARGET_ARN"];

fn text_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Keeps a piece of text to one line of at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

fn describe_body(body: &str, json: Option<&Value>) -> String {
    match json {
        Some(Value::Object(map)) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("the body is a JSON object with keys {}", keys.join(", "))
        }
        Some(Value::Array(_)) => "the body is a JSON array".into(),
        Some(_) => "the body is a JSON scalar".into(),
        None if body.trim().is_empty() => "the body is empty".into(),
        None => format!(
            "the body is not JSON ({:?})",
            one_line(&mask_secrets(body), 60)
        ),
    }
}

/// Reads one message: its body and its string message attributes.
pub fn parse(body: &str, attributes: &BTreeMap<String, String>) -> Parsed {
    let json: Option<Value> = serde_json::from_str(body).ok();
    if let Some(record) = json.as_ref().filter(|j| j.get("requestContext").is_some()) {
        let context = record.get("requestContext").unwrap_or(&Value::Null);
        let Some(function_arn) = text_field(context, "functionArn") else {
            return Parsed::NotUnderstood(
                "a Lambda destination record without requestContext.functionArn".into(),
            );
        };
        let Some(event) = record.get("requestPayload") else {
            return Parsed::NotUnderstood(format!(
                "a Lambda destination record of {function_arn} without requestPayload (the original event)"
            ));
        };
        let condition = text_field(context, "condition");
        let response = record.get("responsePayload").unwrap_or(&Value::Null);
        let error = match (
            text_field(response, "errorType"),
            text_field(response, "errorMessage"),
        ) {
            (Some(t), Some(m)) => Some(format!("{t}: {m}")),
            (Some(t), None) => Some(t),
            (None, Some(m)) => Some(m),
            (None, None) => record
                .get("responseContext")
                .and_then(|c| text_field(c, "functionError"))
                .map(|e| format!("function error ({e})"))
                .or_else(|| condition.clone()),
        };
        return Parsed::Understood {
            source: Source::LambdaOnFailure {
                function_arn,
                condition,
                approximate_invoke_count: context
                    .get("approximateInvokeCount")
                    .and_then(Value::as_u64),
                request_id: text_field(context, "requestId"),
            },
            error: error.map(|e| one_line(&mask_secrets(&e), 500)),
            event: event.clone(),
        };
    }
    if EB_ATTRIBUTES.iter().any(|a| attributes.contains_key(*a)) {
        let Some(event) = json else {
            return Parsed::NotUnderstood(format!(
                "an EventBridge dead letter whose body is not the original event: {}",
                describe_body(body, None)
            ));
        };
        let attr = |k: &str| {
            attributes
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let error = match (attr("ERROR_CODE"), attr("ERROR_MESSAGE")) {
            (Some(c), Some(m)) => Some(format!("{c}: {m}")),
            (c, m) => c.or(m),
        };
        return Parsed::Understood {
            source: Source::EventbridgeTarget {
                rule_arn: attr("RULE_ARN"),
                target_arn: attr("TARGET_ARN"),
                retry_attempts: attr("RETRY_ATTEMPTS"),
            },
            error: error.map(|e| one_line(&mask_secrets(&e), 500)),
            event,
        };
    }
    Parsed::NotUnderstood(format!(
        "neither a Lambda on-failure destination record (requestContext.functionArn, requestPayload) \
         nor an EventBridge target dead letter (message attributes ERROR_CODE, RULE_ARN, TARGET_ARN): {}",
        describe_body(body, json.as_ref())
    ))
}

/// One alert the event holds, as the pipeline sees it offline.
#[derive(Debug, Clone, Serialize)]
pub struct WouldSend {
    pub alert_id: String,
    pub name: String,
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub routes: Vec<RouteLine>,
}

/// Where one alert would go.
#[derive(Debug, Clone, Serialize)]
pub struct RouteLine {
    pub route: String,
    pub team: String,
    pub slack_channel: Option<String>,
    pub sns_topic_arn: Option<String>,
}

impl RouteLine {
    fn text(&self) -> String {
        let mut text = format!("{} → {}", self.route, self.team);
        if let Some(c) = &self.slack_channel {
            text.push_str(&format!(" {c}"));
        }
        if let Some(t) = &self.sns_topic_arn {
            text.push_str(&format!(" sns:{}", t.rsplit(':').next().unwrap_or(t)));
        }
        text
    }
}

fn would_send(report: &Report) -> WouldSend {
    WouldSend {
        alert_id: report.alert.id.clone(),
        name: report.alert.name().to_owned(),
        kind: report.finding.kind.to_string(),
        severity: report.finding.severity.to_string(),
        title: report.finding.title.clone(),
        routes: report
            .route
            .matched
            .iter()
            .map(|m| RouteLine {
                route: m.name.clone(),
                team: m.destination.team.clone(),
                slack_channel: m.destination.slack_channel.clone(),
                sns_topic_arn: m.destination.sns_topic_arn.clone(),
            })
            .collect(),
    }
}

/// A resend's result.
#[derive(Debug, Clone, Serialize)]
pub struct Resend {
    pub function: String,
    pub ok: bool,
    /// The invoke's HTTP status, when it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// What became of one message.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub message_id: String,
    pub understood: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The error recorded with the dead letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the message was not understood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_understood: Option<String>,
    /// What the function would send for the event (offline: no context).
    pub would_send: Vec<WouldSend>,
    /// Why intake refused the event, when it did (the function would refuse it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The alert id, or the message id when the event does not parse.
    pub correlation_id: String,
    /// The function a resend goes to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Why no function can be chosen (then `--function` is needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resend: Option<Resend>,
    pub deleted: bool,
    /// `recorded dead_lettered`, or why the ledger entry could not be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    #[serde(skip)]
    event: Option<Value>,
    #[serde(skip)]
    first: Option<(String, vigil_core::model::Kind, vigil_core::model::Severity)>,
    #[serde(skip)]
    receipt_handle: String,
    #[serde(skip)]
    ledger_failed: bool,
}

impl Item {
    fn new(
        message_id: String,
        receipt_handle: String,
        parsed: Parsed,
        function_flag: Option<&str>,
        evaluator: &Evaluator,
    ) -> Item {
        let mut item = Item {
            correlation_id: message_id.clone(),
            message_id,
            understood: false,
            source: None,
            error: None,
            not_understood: None,
            would_send: Vec::new(),
            refused: None,
            function: None,
            no_function: None,
            resend: None,
            deleted: false,
            ledger: None,
            event: None,
            first: None,
            receipt_handle,
            ledger_failed: false,
        };
        match parsed {
            Parsed::NotUnderstood(reason) => item.not_understood = Some(reason),
            Parsed::Understood {
                source,
                error,
                event,
            } => {
                item.understood = true;
                match intake::parse_value(&event) {
                    Ok(alerts) => {
                        let reports = replay::evaluate_offline(
                            alerts,
                            &evaluator.settings,
                            &evaluator.redactor,
                        );
                        if let Some(first) = reports.first() {
                            item.correlation_id = first.alert.id.clone();
                            item.first = Some((
                                first.alert.name().to_owned(),
                                first.finding.kind,
                                first.finding.severity,
                            ));
                        }
                        item.would_send = reports.iter().map(would_send).collect();
                    }
                    Err(e) => item.refused = Some(mask_secrets(&e.to_string())),
                }
                match function_flag.map_or_else(|| source.function(), |f| Ok(f.to_owned())) {
                    Ok(f) => item.function = Some(f),
                    Err(why) => item.no_function = Some(why),
                }
                item.source = Some(source);
                item.error = error;
                item.event = Some(event);
            }
        }
        item
    }

    fn left_in_queue(&self) -> bool {
        !self.deleted
    }

    fn text(&self, n: usize, of: usize, send: bool) -> String {
        let mut lines = Vec::new();
        let Some(source) = &self.source else {
            lines.push(format!(
                "{n}/{of}  {}  not understood: {}",
                self.message_id,
                self.not_understood.as_deref().unwrap_or("unknown shape")
            ));
            lines.push("  left in the queue".into());
            return lines.join("\n");
        };
        lines.push(format!("{n}/{of}  {}  {}", self.message_id, source.label()));
        lines.push(format!("  from:   {}", source.origin()));
        lines.push(format!(
            "  error:  {}",
            self.error.as_deref().unwrap_or("(none recorded)")
        ));
        if let Some(r) = &self.refused {
            lines.push(format!("  event:  refused by intake: {r}"));
        }
        for w in &self.would_send {
            let routes = w
                .routes
                .iter()
                .map(RouteLine::text)
                .collect::<Vec<_>>()
                .join(", ");
            lines.push(format!(
                "  alert:  {}  {}/{}  {}",
                w.alert_id, w.kind, w.severity, w.title
            ));
            lines.push(format!("          routes: {routes}"));
        }
        let function = self.function.as_deref().unwrap_or("(none)");
        match &self.resend {
            None if send => lines.push("  not re-invoked; left in the queue".to_owned()),
            None => match &self.no_function {
                Some(why) => lines.push(format!("  cannot re-invoke: {why}")),
                None => lines.push(format!(
                    "  would re-invoke {function} with the original event"
                )),
            },
            Some(r) if r.ok && self.deleted => lines.push(format!(
                "  re-invoked {}: ok; deleted from the queue",
                r.function
            )),
            Some(r) if r.ok => lines.push(format!(
                "  re-invoked {}: ok; but not deleted from the queue: {}",
                r.function,
                r.error.as_deref().unwrap_or("unknown error")
            )),
            Some(r) => lines.push(format!(
                "  re-invoking {} failed: {}; left in the queue",
                r.function,
                r.error.as_deref().unwrap_or("unknown error")
            )),
        }
        if let Some(l) = &self.ledger {
            lines.push(format!("  ledger: {l}"));
        }
        lines.join("\n")
    }

    /// The ledger entry for this message after the run.
    fn ledger_entry(&self, at: chrono::DateTime<Utc>) -> LedgerEntry {
        let resent_ok = self.resend.as_ref().is_some_and(|r| r.ok);
        let recorded = self.error.as_deref().unwrap_or("no error recorded");
        let from = self.source.as_ref().map(Source::origin).unwrap_or_default();
        let reason = match &self.resend {
            Some(r) if r.ok => format!(
                "redriven to {} (dead-lettered from {from}: {recorded})",
                r.function
            ),
            Some(r) => format!(
                "redrive to {} failed: {} (dead-lettered from {from}: {recorded})",
                r.function,
                r.error.as_deref().unwrap_or("unknown error")
            ),
            None => match &self.not_understood {
                Some(why) => format!("dead letter not understood: {why}"),
                None => format!("dead-lettered from {from}: {recorded}"),
            },
        };
        let (name, kind, severity) = match &self.first {
            Some((name, kind, severity)) => (name.clone(), Some(*kind), Some(*severity)),
            None => (String::new(), None, None),
        };
        LedgerEntry {
            at,
            correlation_id: self.correlation_id.clone(),
            function: "vigil".into(),
            outcome: if resent_ok {
                Outcome::Redriven
            } else {
                Outcome::DeadLettered
            },
            reason: Some(one_line(&reason, 1_000)),
            kind,
            severity,
            name,
            group_key: None,
            channels: self
                .resend
                .iter()
                .map(|r| ChannelResult {
                    channel: format!("lambda:{}", r.function),
                    ok: r.ok,
                    detail: r
                        .error
                        .clone()
                        .or_else(|| r.status.map(|s| format!("HTTP {s}"))),
                })
                .collect(),
        }
    }
}

/// The pipeline's settings for the dry run's "would send".
struct Evaluator {
    settings: vigil_core::pipeline::Settings,
    redactor: Redactor,
}

/// The whole run, for `--format json`.
#[derive(Debug, Serialize)]
struct RunReport<'a> {
    queue_url: &'a str,
    mode: &'static str,
    messages: &'a [Item],
    summary: Summary,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    read: usize,
    understood: usize,
    not_understood: usize,
    redriven: usize,
    failed: usize,
    left_in_queue: usize,
    ledger_failures: usize,
}

/// `vigil redrive`.
pub fn run(args: &RedriveArgs) -> ExitCode {
    common::finish(run_inner(args))
}

fn run_inner(args: &RedriveArgs) -> Result<ExitCode, CmdError> {
    if args.max == 0 || args.max > MAX_MESSAGES {
        return Err(CmdError::Refused(format!(
            "--max {} is out of range: 1 to {MAX_MESSAGES}",
            args.max
        )));
    }
    let queue_url = args.queue_url.trim();
    if queue_url.is_empty() {
        return Err(CmdError::Refused("--queue-url is empty".into()));
    }
    let function_flag = args
        .function
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    if args.function.is_some() && function_flag.is_none() {
        return Err(CmdError::Refused("--function is empty".into()));
    }
    let table = args
        .table
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if args.table.is_some() && table.is_none() {
        return Err(CmdError::Refused("--table is empty".into()));
    }
    let evaluator = Evaluator {
        settings: replay::load_settings(args.owners.as_deref(), None, ContentPolicy::default())?,
        redactor: Redactor::new(),
    };

    let items = common::runtime()?.block_on(async {
        let config = common::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let mut items = read(&sqs, queue_url, args, function_flag, &evaluator).await?;
        if args.send {
            // One attempt per message: a retried Invoke could deliver an alert twice; a failure
            // leaves the message in the queue for the next run.
            let lambda = aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&config)
                    .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                    .build(),
            );
            for item in items.iter_mut() {
                resend(&lambda, &sqs, queue_url, item).await;
            }
        }
        // Whatever stays in the queue is visible again now, not after the visibility timeout.
        let mut release_failures = Vec::new();
        for item in items.iter().filter(|i| i.left_in_queue()) {
            if let Err(e) = sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(&item.receipt_handle)
                .visibility_timeout(0)
                .send()
                .await
            {
                release_failures.push(format!(
                    "{}: {}",
                    item.message_id,
                    one_line(&aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(), 300)
                ));
            }
        }
        if !release_failures.is_empty() {
            eprintln!(
                "vigil: could not make {} message(s) visible again (they reappear after the visibility timeout): {}",
                release_failures.len(),
                release_failures.join("; ")
            );
        }
        if let Some(table) = table {
            let state = common::state(&config, table.to_owned());
            let ttl = NoiseSettings::default().ledger_ttl;
            let now = Utc::now();
            for item in items.iter_mut() {
                let entry = item.ledger_entry(now);
                match state.record(&entry, ttl).await {
                    Ok(()) => item.ledger = Some(format!("recorded {}", entry.outcome.as_str())),
                    Err(e) => {
                        item.ledger = Some(format!("not recorded: {e}"));
                        item.ledger_failed = true;
                    }
                }
            }
        }
        Ok::<_, CmdError>(items)
    })?;

    let summary = Summary {
        read: items.len(),
        understood: items.iter().filter(|i| i.understood).count(),
        not_understood: items.iter().filter(|i| !i.understood).count(),
        redriven: items
            .iter()
            .filter(|i| i.resend.as_ref().is_some_and(|r| r.ok))
            .count(),
        failed: items
            .iter()
            .filter(|i| i.understood && args.send && !i.deleted)
            .count(),
        left_in_queue: items.iter().filter(|i| i.left_in_queue()).count(),
        ledger_failures: items.iter().filter(|i| i.ledger_failed).count(),
    };
    let all_ok = summary.not_understood == 0 && summary.failed == 0 && summary.ledger_failures == 0;

    let mut out = std::io::stdout().lock();
    match args.format {
        OutFormat::Json => {
            let doc = RunReport {
                queue_url,
                mode: if args.send { "send" } else { "dry_run" },
                messages: &items,
                summary,
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        OutFormat::Text => {
            if items.is_empty() {
                eprintln!("the queue is empty: nothing to redrive");
            }
            for (i, item) in items.iter().enumerate() {
                writeln!(out, "{}\n", item.text(i + 1, items.len(), args.send))?;
            }
            if !items.is_empty() {
                let mut line = format!(
                    "{} read: {} understood, {} not understood",
                    summary.read, summary.understood, summary.not_understood
                );
                if args.send {
                    line.push_str(&format!(
                        "; {} re-invoked and deleted, {} failed; {} left in the queue",
                        summary.redriven, summary.failed, summary.left_in_queue
                    ));
                } else {
                    line.push_str(
                        "; dry run: nothing sent, every message visible in the queue again (--send to re-invoke)",
                    );
                }
                if summary.ledger_failures > 0 {
                    line.push_str(&format!(
                        "; {} ledger entries not recorded",
                        summary.ledger_failures
                    ));
                }
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Receives up to `--max` messages, each once, and reads them.
async fn read(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    args: &RedriveArgs,
    function_flag: Option<&str>,
    evaluator: &Evaluator,
) -> Result<Vec<Item>, CmdError> {
    let visibility = if args.send {
        SEND_VISIBILITY
    } else {
        DRY_RUN_VISIBILITY
    };
    let mut items: Vec<Item> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    while items.len() < args.max {
        let want = (args.max - items.len()).min(BATCH);
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .wait_time_seconds(1)
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(60))
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "reading {queue_url}: {}",
                    one_line(
                        &aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
                        400
                    )
                )
            })?;
        let messages = out.messages.unwrap_or_default();
        let mut new = 0;
        for m in messages {
            let (Some(id), Some(handle)) = (m.message_id.clone(), m.receipt_handle.clone()) else {
                continue;
            };
            // Seen already (its visibility ran out meanwhile): keep the newest receipt handle.
            if let Some(&i) = index.get(&id) {
                if let Some(item) = items.get_mut(i) {
                    item.receipt_handle = handle;
                }
                continue;
            }
            let attributes: BTreeMap<String, String> = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            let parsed = parse(m.body.as_deref().unwrap_or_default(), &attributes);
            index.insert(id.clone(), items.len());
            items.push(Item::new(id, handle, parsed, function_flag, evaluator));
            new += 1;
        }
        if new == 0 {
            break;
        }
    }
    Ok(items)
}

/// Invokes the function with the item's original event and deletes the message when it
/// succeeded.
async fn resend(
    lambda: &aws_sdk_lambda::Client,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    item: &mut Item,
) {
    let Some(event) = &item.event else {
        return;
    };
    let Some(function) = item.function.clone() else {
        item.resend = Some(Resend {
            function: "(none)".into(),
            ok: false,
            status: None,
            error: item.no_function.clone(),
        });
        return;
    };
    let payload = match serde_json::to_vec(event) {
        Ok(p) => p,
        Err(e) => {
            item.resend = Some(Resend {
                function,
                ok: false,
                status: None,
                error: Some(format!("the event could not be serialized: {e}")),
            });
            return;
        }
    };
    let answer = lambda
        .invoke()
        .function_name(&function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await;
    let resend = match answer {
        Ok(out) => {
            let status = u16::try_from(out.status_code()).ok();
            let body_error = out
                .payload()
                .and_then(|p| serde_json::from_slice::<Value>(p.as_ref()).ok())
                .and_then(|v| function_error_text(&v));
            match out.function_error() {
                None if status.is_some_and(|s| (200..300).contains(&s)) => Resend {
                    function,
                    ok: true,
                    status,
                    error: None,
                },
                fe => Resend {
                    function,
                    ok: false,
                    status,
                    error: Some(format!(
                        "{}{}",
                        fe.map(|f| format!("function error ({f})"))
                            .unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(0))),
                        body_error.map(|b| format!(": {b}")).unwrap_or_default()
                    )),
                },
            }
        }
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            // A Lambda emulator answers a handler error with HTTP 500 and the error as the body.
            let body_error = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| function_error_text(&v));
            let text = body_error.unwrap_or_else(|| {
                one_line(
                    &aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                    400,
                )
            });
            Resend {
                function,
                ok: false,
                status,
                error: Some(match status {
                    Some(s) => format!("HTTP {s}: {text}"),
                    None => text,
                }),
            }
        }
    };
    let ok = resend.ok;
    item.resend = Some(resend);
    if ok {
        match sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(&item.receipt_handle)
            .send()
            .await
            .context("deleting the message")
        {
            Ok(_) => item.deleted = true,
            Err(e) => {
                if let Some(r) = item.resend.as_mut() {
                    r.error = Some(one_line(&format!("{e:#}"), 400));
                }
            }
        }
    }
}

/// `errorType: errorMessage` of a Lambda error payload.
fn function_error_text(v: &Value) -> Option<String> {
    let text = match (text_field(v, "errorType"), text_field(v, "errorMessage")) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (Some(t), None) => t,
        (None, Some(m)) => m,
        (None, None) => return None,
    };
    Some(one_line(&mask_secrets(&text), 500))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_on_failure_destination_record_gives_the_function_the_error_and_the_event() {
        let body = json!({
            "version": "1.0",
            "timestamp": "2026-11-20T09:15:00.000Z",
            "requestContext": {
                "requestId": "r-1",
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:handle-alarm:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"source": "aws.cloudwatch"},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "DeliveryFailed", "errorMessage": "no channel delivered alert(s) a"}
        })
        .to_string();
        let Parsed::Understood {
            source,
            error,
            event,
        } = parse(&body, &BTreeMap::new())
        else {
            panic!("understood");
        };
        assert_eq!(
            source.function().ok().as_deref(),
            Some("arn:aws:lambda:us-east-1:111122223333:function:handle-alarm:$LATEST")
        );
        assert!(source.origin().contains("RetriesExhausted, 3 attempts"));
        assert_eq!(
            error.as_deref(),
            Some("DeliveryFailed: no channel delivered alert(s) a")
        );
        assert_eq!(event, json!({"source": "aws.cloudwatch"}));
    }

    #[test]
    fn an_eventbridge_dead_letter_is_read_from_its_attributes() {
        let parsed = parse(
            r#"{"source":"aws.cloudwatch","detail-type":"CloudWatch Alarm State Change"}"#,
            &attrs(&[
                ("ERROR_CODE", "SDK_CLIENT_ERROR"),
                ("ERROR_MESSAGE", "Unable to invoke Lambda"),
                ("RULE_ARN", "arn:aws:events:us-east-1:111122223333:rule/r"),
                (
                    "TARGET_ARN",
                    "arn:aws:lambda:us-east-1:111122223333:function:handle-alarm",
                ),
            ]),
        );
        let Parsed::Understood { source, error, .. } = parsed else {
            panic!("understood");
        };
        assert_eq!(
            error.as_deref(),
            Some("SDK_CLIENT_ERROR: Unable to invoke Lambda")
        );
        assert_eq!(
            source.function().ok().as_deref(),
            Some("arn:aws:lambda:us-east-1:111122223333:function:handle-alarm")
        );
        let sns_target = parse(
            "{}",
            &attrs(&[("TARGET_ARN", "arn:aws:sns:us-east-1:111122223333:topic")]),
        );
        let Parsed::Understood { source, .. } = sns_target else {
            panic!("understood");
        };
        assert!(
            source
                .function()
                .err()
                .is_some_and(|e| e.contains("--function"))
        );
    }

    #[test]
    fn anything_else_is_named_not_understood() {
        for (body, want) in [
            ("garbage", "not JSON"),
            (r#"{"hello":1}"#, "keys hello"),
            (r#"{"requestContext":{}}"#, "functionArn"),
            ("", "empty"),
        ] {
            match parse(body, &BTreeMap::new()) {
                Parsed::NotUnderstood(why) => assert!(why.contains(want), "{body}: {why}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        match parse("not json", &attrs(&[("RULE_ARN", "arn:aws:events:x")])) {
            Parsed::NotUnderstood(why) => assert!(why.contains("EventBridge"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
