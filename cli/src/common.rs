//! What the commands that talk to AWS share: the output format, exit statuses, the table name,
//! times and spans as a person types them, and the SDK configuration.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use vigil_core::ports::StateError;

/// Output formats of `silence`, `ledger` and `redrive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    #[default]
    Text,
    Json,
}

/// The environment variable naming the state table when `--table` is not given (the functions
/// read the same one).
pub const TABLE_ENV: &str = "VIGIL_TABLE_NAME";

/// Why a command stopped.
#[derive(Debug)]
pub enum CmdError {
    /// The input was refused (exit 2): a bad matcher, a window that ends before it starts, no
    /// table name. Nothing was written.
    Refused(String),
    /// vigil could not do what was asked (exit 1): AWS answered with an error, or could not be
    /// reached.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}

impl From<StateError> for CmdError {
    fn from(e: StateError) -> Self {
        Self::Failed(anyhow::Error::new(e))
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(anyhow::Error::new(e).context("writing the output"))
    }
}

impl From<serde_json::Error> for CmdError {
    fn from(e: serde_json::Error) -> Self {
        Self::Failed(anyhow::Error::new(e).context("writing JSON"))
    }
}

/// A command's result as the process's exit status, with the reason on stderr.
pub fn finish(result: Result<ExitCode, CmdError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(CmdError::Refused(reason)) => {
            eprintln!("vigil: {reason}");
            ExitCode::from(2)
        }
        Err(CmdError::Failed(e)) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The table from `--table`, else from `VIGIL_TABLE_NAME` (blank counts as unset).
pub fn table_name(flag: Option<&str>) -> Result<String, CmdError> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_owned());
    }
    match std::env::var(TABLE_ENV) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(CmdError::Refused(format!(
            "no state table: pass --table NAME or set {TABLE_ENV}"
        ))),
    }
}

/// The longest span accepted anywhere (a silence is capped lower): keeps the arithmetic on
/// dates far from chrono's limits.
const MAX_SPAN_DAYS: i64 = 3_660;

/// A span written `30s`, `15m`, `2h` or `1d`: a whole number above zero and a unit.
pub fn parse_span(input: &str) -> Result<chrono::Duration, String> {
    let s = input.trim();
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = s.split_at(digits);
    let bad = || {
        format!(
            "{input:?} is not a span: expected a whole number and a unit s, m, h or d (45m, 2h, 1d)"
        )
    };
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!(
            "{input:?} is not a span: it must be longer than zero"
        ));
    }
    let seconds = n
        .checked_mul(seconds_per_unit)
        .filter(|s| *s <= MAX_SPAN_DAYS * 86_400)
        .ok_or_else(|| format!("{input:?} is too long a span (at most {MAX_SPAN_DAYS}d)"))?;
    chrono::Duration::try_seconds(seconds).ok_or_else(bad)
}

/// A point in time as typed: RFC 3339, or a span meaning that long before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    At(DateTime<Utc>),
    Ago(chrono::Duration),
}

impl When {
    /// The time this means at `now`.
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::At(t) => t,
            When::Ago(span) => now.checked_sub_signed(span).unwrap_or(now),
        }
    }
}

/// Reads `2026-11-20T09:30:00Z` (RFC 3339) or `15m` / `2h` / `1d` (that long ago).
pub fn parse_when(input: &str) -> Result<When, String> {
    let s = input.trim();
    if s.starts_with(|c: char| c.is_ascii_digit()) && !s.contains('-') {
        return parse_span(s).map(When::Ago);
    }
    parse_time(s).map(When::At)
}

/// Reads an RFC 3339 time (`2026-11-20T09:30:00Z`, `2026-11-20T10:30:00+01:00`).
pub fn parse_time(input: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(input.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{input:?} is not an RFC 3339 time like 2026-11-20T09:30:00Z ({e})"))
}

/// A time as printed: RFC 3339 in UTC, to the second.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A span as printed: `2h`, `1d 4h`, `45m 30s`.
pub fn show_span(span: chrono::Duration) -> String {
    let total = span.num_seconds();
    if total <= 0 {
        return "0s".to_owned();
    }
    let parts = [
        (total / 86_400, "d"),
        (total % 86_400 / 3_600, "h"),
        (total % 3_600 / 60, "m"),
        (total % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A single-threaded async runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CmdError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Failed(anyhow::Error::new(e).context("starting the async runtime")))
}

/// The SDK configuration of the usual AWS environment (profile or keys, `AWS_REGION`,
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    vigil_adapters::config::load_sdk_config().await
}

/// The noise-control state in `table`.
pub fn state(config: &aws_config::SdkConfig, table: String) -> vigil_adapters::state::DynamoState {
    vigil_adapters::state::DynamoState::new(aws_sdk_dynamodb::Client::new(config), table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_every_unit_and_refuse_the_rest() {
        assert_eq!(parse_span("30s"), Ok(chrono::Duration::seconds(30)));
        assert_eq!(parse_span("15m"), Ok(chrono::Duration::minutes(15)));
        assert_eq!(parse_span("2h"), Ok(chrono::Duration::hours(2)));
        assert_eq!(parse_span("1d"), Ok(chrono::Duration::days(1)));
        for bad in [
            "",
            "h",
            "2",
            "2w",
            "-1h",
            "0m",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_span(bad).is_err(), "{bad:?} refused");
        }
        assert!(
            parse_span("2w")
                .err()
                .is_some_and(|e| e.contains("\"2w\"") && e.contains("s, m, h or d"))
        );
    }

    #[test]
    fn when_reads_relative_and_absolute_times() {
        let now = parse_time("2026-11-20T10:00:00Z").unwrap_or_default();
        assert_eq!(
            parse_when("15m").map(|w| w.at(now)),
            parse_time("2026-11-20T09:45:00Z")
        );
        assert_eq!(
            parse_when("2026-11-20T10:30:00+01:00").map(|w| w.at(now)),
            parse_time("2026-11-20T09:30:00Z")
        );
        assert!(parse_when("yesterday").is_err());
        assert!(parse_when("2026-11-20").is_err());
    }

    #[test]
    fn spans_print_compactly() {
        assert_eq!(show_span(chrono::Duration::hours(2)), "2h");
        assert_eq!(
            show_span(chrono::Duration::minutes(28 * 60 + 5)),
            "1d 4h 5m"
        );
        assert_eq!(show_span(chrono::Duration::zero()), "0s");
    }
}
