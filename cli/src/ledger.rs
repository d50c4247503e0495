//! `vigil ledger`: what became of each alert (sent, threaded, folded, silenced, failed, ...),
//! read from the decision ledger in the noise-control table.

use std::io::Write;
use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use vigil_core::noise::LedgerEntry;

use crate::common::{self, CmdError, OutFormat, When};

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["correlation_id", "since"]))]
pub struct LedgerArgs {
    /// Every entry of one alert: the id in its message's context line.
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
    /// Entries from this time: RFC 3339, or 15m / 2h / 1d for that long ago.
    #[arg(long, value_name = "TIME", value_parser = common::parse_when)]
    pub since: Option<When>,
    /// Entries up to this time (RFC 3339 or a span ago). Default: now.
    #[arg(long, value_name = "TIME", value_parser = common::parse_when)]
    pub until: Option<When>,
    /// At most this many entries.
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// The noise-control table (default: $VIGIL_TABLE_NAME).
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

/// `vigil ledger`.
pub fn run(args: &LedgerArgs) -> ExitCode {
    common::finish(run_inner(args))
}

fn run_inner(args: &LedgerArgs) -> Result<ExitCode, CmdError> {
    if args.limit == 0 {
        return Err(CmdError::Refused("--limit must be at least 1".into()));
    }
    let now = Utc::now();
    let until = args.until.map_or(now, |w| w.at(now));
    if let Some(since) = args.since.map(|w| w.at(now))
        && since > until
    {
        return Err(CmdError::Refused(format!(
            "--since ({}) is after --until ({})",
            common::show_time(since),
            common::show_time(until)
        )));
    }
    let correlation_id = args
        .correlation_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if args.correlation_id.is_some() && correlation_id.is_none() {
        return Err(CmdError::Refused("--correlation-id is empty".into()));
    }
    let table = common::table_name(args.table.as_deref())?;
    let mut entries = common::runtime()?.block_on(async {
        let state = common::state(&common::sdk_config().await, table);
        match (correlation_id, args.since) {
            (Some(cid), _) => state.ledger_by_correlation(cid).await,
            (None, since) => {
                let since = since.map_or(now, |w| w.at(now));
                state.ledger_since(since, until, args.limit).await
            }
        }
    })?;
    if correlation_id.is_some() {
        // --since and --until narrow one alert's entries too.
        let since = args.since.map(|w| w.at(now));
        entries.retain(|e| since.is_none_or(|s| e.at >= s) && e.at <= until);
    }
    entries.sort_by_key(|e| e.at);
    entries.truncate(args.limit);

    let mut out = std::io::stdout().lock();
    match args.format {
        OutFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?,
        OutFormat::Text => {
            if entries.is_empty() {
                eprintln!("no ledger entries");
            }
            for e in &entries {
                writeln!(out, "{}", line(e))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry on one line: time, outcome, function, kind/severity, name, correlation id,
/// reason, channels.
pub fn line(e: &LedgerEntry) -> String {
    let kind = e.kind.map_or_else(|| "-".to_owned(), |k| k.to_string());
    let severity = e.severity.map_or_else(|| "-".to_owned(), |s| s.to_string());
    let channels = if e.channels.is_empty() {
        "-".to_owned()
    } else {
        e.channels
            .iter()
            .map(|c| format!("{}:{}", c.channel, if c.ok { "ok" } else { "failed" }))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{}  {:<13}  {:<12}  {kind}/{severity}  {}  {}  {}  {channels}",
        common::show_time(e.at),
        e.outcome.as_str(),
        e.function,
        if e.name.is_empty() { "-" } else { &e.name },
        e.correlation_id,
        e.reason.as_deref().unwrap_or("-"),
    )
}
