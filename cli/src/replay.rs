//! `vigil replay` and `vigil routes test`: the pure pipeline over saved files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use vigil_core::classify::RuleSet;
use vigil_core::enrich::{self, Context};
use vigil_core::intake::{self, IntakeError};
use vigil_core::model::Alert;
use vigil_core::pipeline::{self, Report, Settings};
use vigil_core::redact::{ContentPolicy, Redactor};
use vigil_core::render::{self, RenderInput};
use vigil_core::route::{self, Destination, Owners};
use vigil_core::runbook::Runbooks;

use crate::Format;
use crate::files;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The event file: any accepted input (alarm, EventBridge, SNS, CloudTrail, Config).
    pub event: PathBuf,
    /// CloudTrail context: a log file, a folder of them, an EventBridge event or a saved
    /// LookupEvents response. Repeatable.
    #[arg(long)]
    pub trail: Vec<PathBuf>,
    /// Owners file (YAML, docs/DEPLOY.md "The owners file"). Without it every alert goes to one default route.
    #[arg(long)]
    pub owners: Option<PathBuf>,
    /// Extra classification rules (YAML); evaluated before the built-in ones.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Extra runbook playbooks (YAML, the shape of the built-in runbooks.yaml); a kind's
    /// playbooks here are tried before the built-in ones.
    #[arg(long)]
    pub runbooks: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Content policy: metadata, redacted (default) or full.
    #[arg(long, value_parser = parse_policy, default_value = "redacted")]
    pub policy: ContentPolicy,
    /// Look-back window before the alarm, in minutes.
    #[arg(long, default_value_t = enrich::DEFAULT_LOOKBACK_MINUTES)]
    pub lookback_minutes: i64,
    /// When the CloudTrail lookup is taken to happen (RFC 3339). Default: now.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
    /// Enrich from AWS instead of files: CloudTrail LookupEvents, Bedrock and CloudWatch, with
    /// the credentials, region and endpoint of the usual AWS environment (AWS_PROFILE,
    /// AWS_REGION, AWS_ENDPOINT_URL...). Read-only calls only; nothing is sent.
    #[arg(long, conflicts_with = "trail")]
    pub aws: bool,
    /// With --aws: how long enrichment may take in all, in seconds.
    #[arg(long, default_value_t = 10)]
    pub budget_seconds: u64,
}

fn parse_policy(s: &str) -> Result<ContentPolicy, String> {
    match s {
        "metadata" => Ok(ContentPolicy::Metadata),
        "redacted" => Ok(ContentPolicy::Redacted),
        "full" => Ok(ContentPolicy::Full),
        other => Err(format!(
            "unknown content policy {other:?}: expected metadata, redacted or full"
        )),
    }
}

/// The default route when no owners file is given.
fn default_owners() -> Owners {
    Owners::single(Destination {
        team: "unrouted".into(),
        slack_channel: Some("#alerts".into()),
        ..Destination::default()
    })
}

/// The owners file (or the default route), the built-in rules extended by `rules`, and the
/// content policy.
pub(crate) fn load_settings(
    owners: Option<&Path>,
    rules: Option<&Path>,
    policy: ContentPolicy,
) -> Result<Settings> {
    let owners = match owners {
        Some(p) => Owners::from_yaml(&files::read_text(p)?)
            .map_err(|e| anyhow!("owners file {}: {e}", p.display()))?,
        None => default_owners(),
    };
    let mut rule_set = RuleSet::builtin();
    if let Some(p) = rules {
        let user = RuleSet::from_yaml(&files::read_text(p)?)
            .map_err(|e| anyhow!("rules file {}: {e}", p.display()))?;
        rule_set = rule_set.extended_with(user);
    }
    let mut settings = Settings::with_defaults(owners);
    settings.rules = rule_set;
    settings.policy = policy;
    Ok(settings)
}

enum Outcome {
    Reports(Vec<Report>),
    Refused(IntakeError),
}

fn evaluate_file(
    event: &Path,
    trail: &[PathBuf],
    settings: &Settings,
    lookback: Duration,
    now: Option<DateTime<Utc>>,
    redactor: &Redactor,
) -> Result<Outcome> {
    let bytes = match std::fs::read(event) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Outcome::Refused(IntakeError {
                code: intake::RefusalCode::NotJson,
                received: event.display().to_string(),
                reason: format!("cannot read the event file: {e}"),
            }));
        }
    };
    let alerts: Vec<Alert> = match intake::parse(&bytes) {
        Ok(a) => a,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let trail = if trail.is_empty() {
        files::Trail::default()
    } else {
        files::read_trail(trail)?
    };
    for w in &trail.warnings {
        eprintln!("vigil: trail: {w}");
    }
    if trail.changes.is_empty() && trail.warnings.is_empty() && now.is_none() {
        return Ok(Outcome::Reports(evaluate_offline(
            alerts, settings, redactor,
        )));
    }
    let looked_up_at = now.unwrap_or_else(Utc::now);
    let reports = alerts
        .into_iter()
        .map(|alert| {
            let window = enrich::window_for(alert.time, lookback);
            let ctx = Context::from_changes(
                window,
                looked_up_at,
                trail.changes.clone(),
                enrich::sources_for(&alert),
            );
            pipeline::evaluate(alert, &ctx, settings, redactor)
        })
        .collect();
    Ok(Outcome::Reports(reports))
}

/// The pipeline with no context at all (no trail, no lookup): what `replay EVENT` prints
/// without `--trail`, and what `redrive` shows it would send.
pub(crate) fn evaluate_offline(
    alerts: Vec<Alert>,
    settings: &Settings,
    redactor: &Redactor,
) -> Vec<Report> {
    let ctx = Context::default();
    alerts
        .into_iter()
        .map(|alert| pipeline::evaluate(alert, &ctx, settings, redactor))
        .collect()
}

/// Read the event, then enrich each alert from AWS through the adapters.
fn evaluate_with_aws(
    event: &Path,
    settings: &Settings,
    lookback: Duration,
    now: Option<DateTime<Utc>>,
    budget: std::time::Duration,
    redactor: &Redactor,
) -> Result<Outcome> {
    let bytes = match std::fs::read(event) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Outcome::Refused(IntakeError {
                code: intake::RefusalCode::NotJson,
                received: event.display().to_string(),
                reason: format!("cannot read the event file: {e}"),
            }));
        }
    };
    let alerts: Vec<Alert> = match intake::parse(&bytes) {
        Ok(a) => a,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let reports = runtime.block_on(async {
        let clients = vigil_adapters::config::AwsClients::from_env().await;
        let enricher = vigil_adapters::enrichment::AwsEnricher::from_clients(
            &clients,
            vigil_adapters::cloudtrail::CloudTrailConfig::default(),
        );
        let mut reports = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let ctx = enricher
                .enrich(&alert, lookback, now.unwrap_or_else(Utc::now), budget)
                .await;
            reports.push(pipeline::evaluate(alert, &ctx, settings, redactor));
        }
        reports
    });
    Ok(Outcome::Reports(reports))
}

/// `vigil replay`.
pub fn run(args: &ReplayArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The built-in runbooks extended by the playbooks in `path` (tried first).
pub(crate) fn load_runbooks(path: &Path) -> Result<Runbooks> {
    let user = Runbooks::from_yaml(&files::read_text(path)?)
        .map_err(|e| anyhow!("runbooks file {}: {e}", path.display()))?;
    Ok(Runbooks::builtin().extended_with(user))
}

fn run_inner(args: &ReplayArgs) -> Result<ExitCode> {
    let mut settings = load_settings(args.owners.as_deref(), args.rules.as_deref(), args.policy)?;
    if let Some(p) = args.runbooks.as_deref() {
        settings.runbooks = load_runbooks(p)?;
    }
    let redactor = Redactor::new();
    let lookback = Duration::minutes(args.lookback_minutes.clamp(1, 90 * 24 * 60));
    let outcome = if args.aws {
        let budget = std::time::Duration::from_secs(args.budget_seconds.clamp(1, 900));
        evaluate_with_aws(
            &args.event,
            &settings,
            lookback,
            args.now,
            budget,
            &redactor,
        )?
    } else {
        evaluate_file(
            &args.event,
            &args.trail,
            &settings,
            lookback,
            args.now,
            &redactor,
        )?
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Outcome::Refused(err) => {
            if args.format == Format::Json {
                let doc = serde_json::json!({"error": {"code": err.code.as_str(), "received": err.received, "reason": err.reason}});
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                eprintln!("vigil: {err}");
            }
            Ok(ExitCode::from(2))
        }
        Outcome::Reports(reports) => {
            let many = reports.len() > 1;
            for report in &reports {
                let text = match args.format {
                    Format::Json if many => serde_json::to_string(report)?,
                    Format::Json => serde_json::to_string_pretty(report)?,
                    Format::Text => pipeline::text(report, &settings, &redactor),
                    Format::Slack | Format::Sns | Format::Chatbot => {
                        let fallback = Destination {
                            team: "unrouted".into(),
                            ..Destination::default()
                        };
                        let destination = report
                            .route
                            .matched
                            .first()
                            .map(|m| &m.destination)
                            .unwrap_or(&fallback);
                        let input = RenderInput {
                            alert: &report.alert,
                            finding: &report.finding,
                            destination,
                            policy: settings.policy,
                            correlation_id: &report.alert.id,
                        };
                        match args.format {
                            Format::Slack => serde_json::to_string_pretty(&render::slack::slack(
                                &input, &redactor,
                            ))?,
                            Format::Sns => {
                                serde_json::to_string_pretty(&render::sns::sns(&input, &redactor))?
                            }
                            _ => serde_json::to_string_pretty(&render::chatbot::chatbot(
                                &input, &redactor,
                            ))?,
                        }
                    }
                };
                writeln!(out, "{text}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `vigil routes test`.
pub fn routes_test(event: &Path, owners: Option<&Path>, trail: &[PathBuf]) -> ExitCode {
    let result = (|| -> Result<ExitCode> {
        let settings = load_settings(owners, None, ContentPolicy::default())?;
        let redactor = Redactor::new();
        let lookback = Duration::minutes(enrich::DEFAULT_LOOKBACK_MINUTES);
        match evaluate_file(event, trail, &settings, lookback, None, &redactor)
            .context("evaluating the event")?
        {
            Outcome::Refused(err) => {
                eprintln!("vigil: {err}");
                Ok(ExitCode::from(2))
            }
            Outcome::Reports(reports) => {
                for r in &reports {
                    println!(
                        "{} ({}, {}, {})",
                        r.alert.name(),
                        r.input.as_str(),
                        r.finding.kind,
                        r.finding.severity
                    );
                    println!("{}", route::explain(&r.route));
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })();
    result.unwrap_or_else(|e| {
        eprintln!("vigil: {e:#}");
        ExitCode::from(1)
    })
}
