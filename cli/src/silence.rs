//! `vigil silence add | list | expire`: the silences the functions consult before sending,
//! kept in the noise-control table.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use vigil_core::noise::{Matcher, Silence, could_match_protected};

use crate::common::{self, CmdError, OutFormat};

/// How long a silence is kept after it ends (for `list --all` and the ledger's "silenced by").
pub const KEEP_AFTER_END: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The longest silence: anything longer is a rule change, not a silence.
pub const MAX_SILENCE_DAYS: i64 = 30;

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts every --match holds for, for a while.
    Add(AddArgs),
    /// Print the active and future silences (--all: the ended ones too).
    List(ListArgs),
    /// End a silence now.
    Expire(ExpireArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A condition, `field=value` or `field!=value` (a value with * or ? is a glob), or
    /// `field==value` (exact: * and ? are themselves). Fields: name, kind, severity, team,
    /// account, region, resource, namespace, actor (the caller of an API call). Repeatable: every one must hold.
    #[arg(long = "match", value_name = "FIELD=VALUE", required = true)]
    pub matchers: Vec<String>,
    /// How long, from the start: 30m, 2h, 1d (at most 30d).
    #[arg(long, value_name = "SPAN", value_parser = common::parse_span, conflicts_with = "until", required_unless_present = "until")]
    pub duration: Option<chrono::Duration>,
    /// When it ends (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = common::parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// When it starts (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339", value_parser = common::parse_time)]
    pub starts: Option<DateTime<Utc>>,
    /// Who silences (your name or IAM principal).
    #[arg(long)]
    pub author: String,
    /// Why, for whoever wonders where the alerts went.
    #[arg(long)]
    pub reason: String,
    /// Say that this silence may hide critical or audit_tampering alerts. Required unless the
    /// matchers rule out both severity critical (`severity=high`, `severity!=critical`) and
    /// kind audit_tampering (`kind=throttle_spike`, `kind!=audit_tampering`). Slack's buttons
    /// never silence such alerts; only this command does, with an author and a reason.
    #[arg(long)]
    pub allow_critical: bool,
    /// The noise-control table (default: $VIGIL_TABLE_NAME).
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include the silences that have ended (kept 30 days after their end).
    #[arg(long)]
    pub all: bool,
    /// The noise-control table (default: $VIGIL_TABLE_NAME).
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The silence's id (`sil-` and 12 hex digits).
    pub id: String,
    /// Who ends it.
    #[arg(long)]
    pub author: String,
    /// The noise-control table (default: $VIGIL_TABLE_NAME).
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

/// `vigil silence ...`.
pub fn run(command: &SilenceCommand) -> ExitCode {
    common::finish(match command {
        SilenceCommand::Add(args) => add(args),
        SilenceCommand::List(args) => list(args),
        SilenceCommand::Expire(args) => expire(args),
    })
}

/// A new silence id: `sil-` and 12 lowercase hex digits, random (uuid v4).
pub fn new_id() -> String {
    let hex: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(12)
        .collect();
    format!("sil-{hex}")
}

/// Whether `id` has the form `new_id` makes.
fn is_silence_id(id: &str) -> bool {
    id.strip_prefix("sil-").is_some_and(|hex| {
        hex.len() == 12
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The silence `add` would store, or why not.
pub fn build(args: &AddArgs, id: String, now: DateTime<Utc>) -> Result<Silence, CmdError> {
    let matchers = args
        .matchers
        .iter()
        .map(|m| Matcher::parse(m).map_err(|e| CmdError::Refused(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if matchers.is_empty() {
        return Err(CmdError::Refused(
            "a silence needs at least one --match FIELD=VALUE".into(),
        ));
    }
    let author = args.author.trim();
    if author.is_empty() {
        return Err(CmdError::Refused(
            "--author is empty: say who silences".into(),
        ));
    }
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(CmdError::Refused(
            "--reason is empty: say why, for whoever wonders where the alerts went".into(),
        ));
    }
    let starts_at = args.starts.unwrap_or(now);
    let ends_at = match (args.duration, args.until) {
        (Some(span), _) => starts_at.checked_add_signed(span).ok_or_else(|| {
            CmdError::Refused(format!(
                "--duration {} from {} is past the end of the calendar",
                common::show_span(span),
                common::show_time(starts_at)
            ))
        })?,
        (None, Some(until)) => until,
        (None, None) => {
            return Err(CmdError::Refused(
                "say how long: --duration SPAN or --until RFC3339".into(),
            ));
        }
    };
    if ends_at <= starts_at {
        return Err(CmdError::Refused(format!(
            "the silence would end ({}) before it starts ({})",
            common::show_time(ends_at),
            common::show_time(starts_at)
        )));
    }
    let length = ends_at - starts_at;
    if length > chrono::Duration::days(MAX_SILENCE_DAYS) {
        return Err(CmdError::Refused(format!(
            "the silence would last {}: at most {MAX_SILENCE_DAYS} days (a longer one is a change to the rules or the owners file)",
            common::show_span(length)
        )));
    }
    if could_match_protected(&matchers) && !args.allow_critical {
        return Err(CmdError::Refused(
            "these matchers could silence critical or audit_tampering alerts: add --allow-critical \
             to mean it (the author and reason are recorded), or narrow them with \
             --match severity!=critical and --match kind!=audit_tampering"
                .into(),
        ));
    }
    Ok(Silence {
        id,
        matchers,
        starts_at,
        ends_at,
        author: author.to_owned(),
        reason: reason.to_owned(),
        created_at: now,
        expired_by: None,
    })
}

fn add(args: &AddArgs) -> Result<ExitCode, CmdError> {
    let now = Utc::now();
    let silence = build(args, new_id(), now)?;
    let table = common::table_name(args.table.as_deref())?;
    common::runtime()?.block_on(async {
        let state = common::state(&common::sdk_config().await, table);
        state.put_silence(&silence, KEEP_AFTER_END).await
    })?;
    print_one(&silence, args.format, now)?;
    Ok(ExitCode::SUCCESS)
}

fn list(args: &ListArgs) -> Result<ExitCode, CmdError> {
    let table = common::table_name(args.table.as_deref())?;
    let now = Utc::now();
    let mut silences = common::runtime()?.block_on(async {
        let state = common::state(&common::sdk_config().await, table);
        state.silences(args.all, now).await
    })?;
    silences.sort_by(|a, b| (a.starts_at, a.ends_at, &a.id).cmp(&(b.starts_at, b.ends_at, &b.id)));
    let mut out = std::io::stdout().lock();
    match args.format {
        OutFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&silences)?)?,
        OutFormat::Text => {
            if silences.is_empty() {
                eprintln!(
                    "{}",
                    if args.all {
                        "no silences"
                    } else {
                        "no active or future silences"
                    }
                );
            }
            for s in &silences {
                writeln!(out, "{}", line(s, now))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn expire(args: &ExpireArgs) -> Result<ExitCode, CmdError> {
    let id = args.id.trim();
    if !is_silence_id(id) {
        return Err(CmdError::Refused(format!(
            "{:?} is not a silence id: expected sil- and 12 lowercase hex digits (see `vigil silence list`)",
            args.id
        )));
    }
    let author = args.author.trim();
    if author.is_empty() {
        return Err(CmdError::Refused(
            "--author is empty: say who ends the silence".into(),
        ));
    }
    let table = common::table_name(args.table.as_deref())?;
    let now = Utc::now();
    let silence = common::runtime()?.block_on(async {
        let state = common::state(&common::sdk_config().await, table.clone());
        // An unknown id is the caller's mistake (exit 2), not a failure of the table.
        let stored = state.silences(true, now).await?;
        if !stored.iter().any(|s| s.id == id) {
            return Err(CmdError::Refused(format!(
                "no silence {id} in table {table} (see `vigil silence list --all`)"
            )));
        }
        Ok(state.expire_silence(id, author, now).await?)
    })?;
    print_one(&silence, args.format, now)?;
    Ok(ExitCode::SUCCESS)
}

/// Where a silence stands at `now`.
pub fn status(s: &Silence, now: DateTime<Utc>) -> &'static str {
    if now < s.starts_at {
        "future"
    } else if now < s.ends_at {
        "active"
    } else if s.expired_by.is_some() {
        "expired"
    } else {
        "ended"
    }
}

fn matchers(s: &Silence) -> String {
    s.matchers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One silence on one line, for `list`.
pub fn line(s: &Silence, now: DateTime<Utc>) -> String {
    let expired = s
        .expired_by
        .as_deref()
        .map(|by| format!(" (expired by {by})"))
        .unwrap_or_default();
    format!(
        "{}  {:<7}  {} → {}  {}  by {}: {}{expired}",
        s.id,
        status(s, now),
        common::show_time(s.starts_at),
        common::show_time(s.ends_at),
        matchers(s),
        s.author,
        s.reason
    )
}

/// One silence in full, for `add` and `expire`.
pub fn block(s: &Silence, now: DateTime<Utc>) -> String {
    let mut text = format!(
        "{}  {}\n  match:   {}\n  window:  {} → {} ({})\n  author:  {}\n  reason:  {}",
        s.id,
        status(s, now),
        matchers(s),
        common::show_time(s.starts_at),
        common::show_time(s.ends_at),
        common::show_span(s.ends_at - s.starts_at),
        s.author,
        s.reason
    );
    if let Some(by) = &s.expired_by {
        text.push_str(&format!("\n  expired: by {by}"));
    }
    text
}

fn print_one(s: &Silence, format: OutFormat, now: DateTime<Utc>) -> Result<(), CmdError> {
    let mut out = std::io::stdout().lock();
    match format {
        OutFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(s)?)?,
        OutFormat::Text => writeln!(out, "{}", block(s, now))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sil_and_twelve_lowercase_hex_digits() {
        let a = new_id();
        let b = new_id();
        assert!(is_silence_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(!is_silence_id("sil-0123456789AB"));
        assert!(!is_silence_id("sil-0123456789a"));
        assert!(!is_silence_id("0123456789abcdef"));
    }
}
