//! Noise control (ARCHITECTURE.md "Noise control"), pure: the keys state is stored under, silences and their
//! matchers, the grouping decision (first alert, thread reply, folded count, resolve, flapping),
//! the per-channel rate limiter's arithmetic and its two lanes, and the decision ledger's
//! entries.
//!
//! The functions store what these types describe in one DynamoDB table (the adapters crate's
//! `state` module implements [`crate::ports::StateStore`]); this module decides, it never
//! stores, and it never reads a clock: every function takes `now`.
//!
//! Invariants:
//! - Every alert gets exactly one [`Outcome`] per invocation, recorded as a [`LedgerEntry`].
//! - A resolve is never silenced: threads still close.
//! - [`decide`] is total: any stored [`GroupState`] (old, future-dated, inconsistent) gives
//!   an action; nothing here panics.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use chrono::TimeDelta;
use wildmatch::WildMatch;

use crate::model::{Actor, AlarmState, Alert, AlertBody, Kind, Severity};

/// Tunables of noise control, with the defaults [`NoiseSettings::default`] documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseSettings {
    /// How long a group stays open after its last alert (default 60 min): a repeat inside it
    /// is threaded or folded, after it a new message opens a new group.
    pub group_window: Duration,
    /// Thread replies per group before repeats are only counted (default 5).
    pub max_replies: u32,
    /// The window flapping is judged over (default 10 min).
    pub flap_window: Duration,
    /// Phase changes (firing ↔ resolved) inside `flap_window` that make a group flapping
    /// (default 4). One "flapping" reply is posted; later changes are folded until the group
    /// has been quiet for `flap_window`.
    pub flap_threshold: u32,
    /// The least time between two Slack calls to one channel (default 1.2 s: Slack allows about
    /// one message a second per channel; the margin absorbs network jitter).
    pub slack_interval: Duration,
    /// The longest an alert waits for its Slack slot before it is folded into the channel's
    /// digest instead (default 4 s; never more than the invocation's time left). Alerts in the
    /// priority lane ([`Lane::Priority`]) are never folded and wait only for their own lane.
    pub max_rate_wait: Duration,
    /// How long a claimed event id blocks another invocation of the same event while the first
    /// is still working (default 5 min, above the functions' timeout): after it, a retry may
    /// take over an event whose invocation died.
    pub claim_lease: Duration,
    /// How long an event id is remembered as handled (default 48 h: EventBridge retries for
    /// 24 h, Lambda's async retries for 6 h).
    pub claim_ttl: Duration,
    /// How long ledger entries, groups and digests are kept (default 30 days).
    pub ledger_ttl: Duration,
}

impl Default for NoiseSettings {
    fn default() -> Self {
        Self {
            group_window: Duration::from_secs(60 * 60),
            max_replies: 5,
            flap_window: Duration::from_secs(10 * 60),
            flap_threshold: 4,
            slack_interval: Duration::from_millis(1_200),
            max_rate_wait: Duration::from_secs(4),
            claim_lease: Duration::from_secs(5 * 60),
            claim_ttl: Duration::from_secs(48 * 60 * 60),
            ledger_ttl: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// Whether an alert opens/continues trouble or ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Firing,
    Resolved,
}

/// An alarm in state `OK` is [`Phase::Resolved`]; everything else (ALARM, INSUFFICIENT_DATA,
/// API calls, Config changes) is [`Phase::Firing`].
pub fn phase_of(alert: &Alert) -> Phase {
    match &alert.body {
        AlertBody::Alarm(a) if a.state == AlarmState::Ok => Phase::Resolved,
        _ => Phase::Firing,
    }
}

/// The resource an alert is primarily about: for an alarm its ARN (or name when the ARN is
/// unknown); for an API call the first resource ARN or name it touched
/// ([`crate::model::Change::resources`]), else `event_source:event_name`; for a Config change
/// `resource_type/resource_id` (the bare `resource_id` when the type is unknown), else the
/// rule name, else `config`. Empty or blank values count as unknown.
pub fn primary_resource(alert: &Alert) -> String {
    match &alert.body {
        AlertBody::Alarm(a) => known(a.arn.as_deref())
            .unwrap_or(a.name.as_str())
            .to_owned(),
        AlertBody::ApiCall(c) => c
            .resources
            .iter()
            .find_map(|r| known(Some(r.as_str())))
            .map_or_else(
                || format!("{}:{}", c.event_source, c.event_name),
                str::to_owned,
            ),
        AlertBody::Config(c) => {
            match (
                known(c.resource_type.as_deref()),
                known(c.resource_id.as_deref()),
            ) {
                (Some(t), Some(id)) => format!("{t}/{id}"),
                (None, Some(id)) => id.to_owned(),
                _ => known(c.rule_name.as_deref()).unwrap_or("config").to_owned(),
            }
        }
    }
}

/// `Some` non-blank value.
fn known(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// The account or region as it appears in keys: `-` when unknown.
fn key_part(value: Option<&str>) -> &str {
    known(value).unwrap_or("-")
}

/// The group key of ARCHITECTURE.md "Noise control": `account|region|kind|subject` (`-` for an unknown account or
/// region). The subject is the [`primary_resource`], except for a denied API call (an
/// `access_denied` one, or any whose error code is a denial, [`crate::model::Change::is_denied`]): that
/// groups by who called, `actor:` followed by [`actor_principal`]. Anyone in the account,
/// even a principal with no permissions, can make denied calls, and with a different resource
/// on each call, grouping by resource would open a group (and post a message) per call; by
/// actor, 500 denied calls by one principal are one message, its thread replies and a count.
///
/// `kind` is the kind the alert had when it fired; a resolve finds its group through
/// [`alarm_pointer`] instead, since an `OK` alarm classifies as `resolved`.
///
/// The parts are joined as they are (a `|` inside a resource name is not escaped).
pub fn group_key(alert: &Alert, kind: Kind) -> String {
    let subject = match alert.api_call() {
        Some(change) if kind == Kind::AccessDenied || change.is_denied() => {
            format!("actor:{}", actor_principal(&change.actor))
        }
        _ => primary_resource(alert),
    };
    format!(
        "{}|{}|{}|{subject}",
        key_part(alert.account.as_deref()),
        key_part(alert.region.as_deref()),
        kind.as_str(),
    )
}

/// The principal behind an API call, as denied calls are grouped by it: for an assumed role
/// the role (the session issuer's ARN, else the `assumed-role/…` ARN without its session
/// name), since a caller picks its session names freely; otherwise the identity's ARN (an
/// IAM user's, root's; an access key belongs to it), else its readable name.
pub fn actor_principal(actor: &Actor) -> String {
    if let Some(role) = known(actor.role_arn.as_deref()) {
        return role.to_owned();
    }
    match known(actor.arn.as_deref()) {
        Some(arn) if arn.contains(":assumed-role/") => {
            // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION → …/ROLE
            match arn.split_once(":assumed-role/") {
                Some((head, rest)) => {
                    let role = rest.split('/').next().unwrap_or(rest);
                    format!("{head}:assumed-role/{role}")
                }
                None => arn.to_owned(),
            }
        }
        Some(arn) => arn.to_owned(),
        None => known(Some(actor.name.as_str()))
            .unwrap_or("unknown identity")
            .to_owned(),
    }
}

/// For alarms, `alarm|account|region|alarm name`: the key under which the group an alarm
/// opened is found again by its later `OK` (whose kind differs). `None` for other alerts.
/// An unknown account or region is `-`, as in [`group_key`].
pub fn alarm_pointer(alert: &Alert) -> Option<String> {
    let alarm = alert.alarm()?;
    Some(format!(
        "alarm|{}|{}|{}",
        key_part(alert.account.as_deref()),
        key_part(alert.region.as_deref()),
        alarm.name
    ))
}

// ---------------------------------------------------------------------------------------------
// Silences
// ---------------------------------------------------------------------------------------------

/// A field of an alert a silence can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    /// Alarm name, API event name or Config rule ([`Alert::name`]).
    Name,
    Kind,
    /// Matches the alert's severity exactly (`severity=low`).
    Severity,
    /// The owning team of any route the alert takes.
    Team,
    Account,
    Region,
    /// [`primary_resource`].
    Resource,
    /// The alarm's metric namespace.
    Namespace,
    /// The principal of an API call, as denied calls are grouped ([`actor_principal`]).
    Actor,
}

impl MatchField {
    /// Every field, in the order of the docs.
    pub const ALL: [MatchField; 9] = [
        MatchField::Name,
        MatchField::Kind,
        MatchField::Severity,
        MatchField::Team,
        MatchField::Account,
        MatchField::Region,
        MatchField::Resource,
        MatchField::Namespace,
        MatchField::Actor,
    ];

    /// The snake_case name a matcher is written with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Kind => "kind",
            Self::Severity => "severity",
            Self::Team => "team",
            Self::Account => "account",
            Self::Region => "region",
            Self::Resource => "resource",
            Self::Namespace => "namespace",
            Self::Actor => "actor",
        }
    }

    /// The field named `name` (exact snake_case), if any.
    pub fn parse(name: &str) -> Option<MatchField> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for MatchField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The severities, most severe first (for matcher validation and its error messages).
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// Whether a matcher value is a glob (has `*` or `?`).
fn is_glob(value: &str) -> bool {
    value.contains(['*', '?'])
}

/// `value` equals `pattern`, or matches it as a glob when it has `*` or `?`.
fn value_matches(pattern: &str, value: &str) -> bool {
    if is_glob(pattern) {
        WildMatch::new(pattern).matches(value)
    } else {
        pattern == value
    }
}

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    /// `field=value`: equal, or a glob when the value has `*` or `?` (case-sensitive, like
    /// route globs).
    Matches,
    /// `field!=value`: the negation of `Matches`.
    NotMatches,
    /// `field==value`: equal, character for character; `*` and `?` are themselves, never a
    /// glob. What a Slack Silence button stores: an alarm named `*` silences only itself.
    Equals,
}

/// One condition of a silence, written `field=value`, `field!=value` or `field==value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub field: MatchField,
    pub op: MatchOp,
    pub value: String,
}

/// A matcher that could not be read, naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher {input:?}: {reason}")]
pub struct MatcherError {
    pub input: String,
    pub reason: String,
}

impl Matcher {
    /// Parses `field=value` / `field!=value` / `field==value`; the field names are
    /// [`MatchField`]'s in snake_case (`name`, `kind`, `severity`, `team`, `account`,
    /// `region`, `resource`, `namespace`), exactly (case-sensitive). The operator is the first
    /// `=` (`!=` when a `!` precedes it, `==` when another `=` follows it); the value is
    /// everything after it, so it may itself hold `=` or `!` (`name===x` is `==` with the
    /// value `=x`). Blanks around the field and the value are trimmed.
    ///
    /// `kind` values are checked against the known ids ([`Kind::ALL`]); a glob
    /// (`kind=*_change`) is allowed when it matches at least one known id (`==` takes the
    /// value literally, so it must be a known id). `severity` values must be a known id
    /// exactly (no globs). An empty value, an unknown field, a missing operator or an unknown
    /// kind or severity is an error naming the input.
    ///
    /// [`Matcher`]'s `Display` writes the form this reads: `parse(m.to_string()) == m` for
    /// every parsed `m`.
    pub fn parse(input: &str) -> Result<Matcher, MatcherError> {
        let error = |reason: String| MatcherError {
            input: input.to_owned(),
            reason,
        };
        let Some((head, value)) = input.split_once('=') else {
            return Err(error(
                "no operator: expected field=value or field!=value".to_owned(),
            ));
        };
        let (field, op, value) = match (head.strip_suffix('!'), value.strip_prefix('=')) {
            (Some(field), _) => (field, MatchOp::NotMatches, value),
            (None, Some(exact)) => (head, MatchOp::Equals, exact),
            (None, None) => (head, MatchOp::Matches, value),
        };
        let field = field.trim();
        let value = value.trim();
        if field.is_empty() {
            return Err(error(
                "no field before the operator: expected field=value or field!=value".to_owned(),
            ));
        }
        let Some(field) = MatchField::parse(field) else {
            return Err(error(format!(
                "unknown field {field:?} (known: {})",
                MatchField::ALL.map(MatchField::as_str).join(", ")
            )));
        };
        if value.is_empty() {
            return Err(error(format!("empty value for {field}")));
        }
        if let Some(reason) = invalid_value(field, op, value) {
            return Err(error(reason));
        }
        Ok(Matcher {
            field,
            op,
            value: value.to_owned(),
        })
    }

    /// Whether this condition holds for `subject`. `Matches` holds when any of the subject's
    /// values for the field matches (for `team`: any team; a field the alert does not have —
    /// `namespace` of a non-alarm, an unknown account or region, no teams — has none);
    /// `NotMatches` holds exactly when `Matches` does not.
    /// `Equals` holds when one of them is equal to the value, character for character.
    pub fn holds(&self, subject: &SilenceSubject<'_>) -> bool {
        let alert = subject.alert;
        let pattern = self.value.as_str();
        let exact = self.op == MatchOp::Equals;
        let is = |value: &str| {
            if exact {
                pattern == value
            } else {
                value_matches(pattern, value)
            }
        };
        let any = match self.field {
            MatchField::Name => is(alert.name()),
            MatchField::Kind => is(subject.kind.as_str()),
            MatchField::Severity => pattern == subject.severity.as_str(),
            MatchField::Team => subject.teams.iter().any(|t| is(t)),
            MatchField::Account => known(alert.account.as_deref()).is_some_and(is),
            MatchField::Region => known(alert.region.as_deref()).is_some_and(is),
            MatchField::Resource => is(&primary_resource(alert)),
            MatchField::Namespace => alert.alarm().and_then(|a| a.namespace()).is_some_and(is),
            MatchField::Actor => alert
                .api_call()
                .is_some_and(|c| is(&actor_principal(&c.actor))),
        };
        match self.op {
            MatchOp::Matches | MatchOp::Equals => any,
            MatchOp::NotMatches => !any,
        }
    }

    /// An exact matcher (`field==value`): what a Slack button stores.
    pub fn exact(field: MatchField, value: impl Into<String>) -> Matcher {
        Matcher {
            field,
            op: MatchOp::Equals,
            value: value.into(),
        }
    }

    /// Whether this matcher alone keeps the silence away from `value` of `field`: it cannot
    /// hold for an alert whose `field` is `value` (used for severity and kind, which every
    /// alert has exactly one of).
    fn rules_out(&self, field: MatchField, value: &str) -> bool {
        if self.field != field {
            return false;
        }
        let matches = match self.op {
            MatchOp::Equals => self.value == value,
            MatchOp::Matches | MatchOp::NotMatches if field == MatchField::Severity => {
                self.value == value
            }
            MatchOp::Matches | MatchOp::NotMatches => value_matches(&self.value, value),
        };
        match self.op {
            MatchOp::Matches | MatchOp::Equals => !matches,
            MatchOp::NotMatches => matches,
        }
    }
}

/// Alerts that must not be silenced lightly: `critical` ones and `audit_tampering` ones
/// (someone hiding their tracks). Slack buttons never silence them; `vigil silence add` does
/// only when told so explicitly.
pub fn is_protected(kind: Kind, severity: Severity) -> bool {
    severity == Severity::Critical || kind == Kind::AuditTampering
}

/// Whether a silence with these matchers could hold for a protected alert ([`is_protected`]).
/// It cannot when one matcher rules out severity `critical` (`severity=high`,
/// `severity!=critical`, ...) **and** one rules out kind `audit_tampering` (`kind=throttle_*`,
/// `kind!=audit_tampering`, ...); any other silence could (the name, resource, team, account,
/// region and namespace of a protected alert are not known in advance).
pub fn could_match_protected(matchers: &[Matcher]) -> bool {
    let rules_out = |field, value| matchers.iter().any(|m| m.rules_out(field, value));
    !(rules_out(MatchField::Severity, Severity::Critical.as_str())
        && rules_out(MatchField::Kind, Kind::AuditTampering.as_str()))
}

/// Why `value` is not a valid value for `field` (`kind` and `severity` are checked against the
/// known ids; a `kind` glob must match at least one of them), if it is not.
fn invalid_value(field: MatchField, op: MatchOp, value: &str) -> Option<String> {
    let kinds = || Kind::ALL.map(Kind::as_str).join(", ");
    match field {
        MatchField::Kind if is_glob(value) && op != MatchOp::Equals => {
            (!Kind::ALL.iter().any(|k| value_matches(value, k.as_str()))).then(|| {
                format!(
                    "kind pattern {value:?} matches no known kind (known: {})",
                    kinds()
                )
            })
        }
        MatchField::Kind => (!Kind::ALL.iter().any(|k| k.as_str() == value))
            .then(|| format!("unknown kind {value:?} (known: {})", kinds())),
        MatchField::Severity => (!SEVERITIES.iter().any(|s| s.as_str() == value)).then(|| {
            format!(
                "unknown severity {value:?} (known: {})",
                SEVERITIES.map(Severity::as_str).join(", ")
            )
        }),
        _ => None,
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Matches => "=",
            MatchOp::NotMatches => "!=",
            MatchOp::Equals => "==",
        };
        write!(f, "{}{op}{}", self.field, self.value)
    }
}

/// What a silence is matched against: the alert and what classification and routing said.
#[derive(Debug, Clone, Copy)]
pub struct SilenceSubject<'a> {
    pub alert: &'a Alert,
    pub kind: Kind,
    pub severity: Severity,
    /// The teams of the routes the alert takes.
    pub teams: &'a [String],
}

/// A silence: every matcher must hold (at least one matcher), between `starts_at` (inclusive)
/// and `ends_at` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// `sil-` followed by 12 lowercase hex digits; made by the caller (the CLI, slack-actions).
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Who created it (an IAM principal, a Slack user).
    pub author: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// Set when expired early by `vigil silence expire`.
    #[serde(default)]
    pub expired_by: Option<String>,
}

impl Silence {
    /// In force at `now`: started (`starts_at <= now`), not ended (`now < ends_at`) and not
    /// expired early (`expired_by` is `None`).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expired_by.is_none() && self.starts_at <= now && now < self.ends_at
    }

    /// Every matcher holds for `subject` ([`Matcher::holds`]) and there is at least one: a
    /// silence without matchers silences nothing.
    pub fn matches(&self, subject: &SilenceSubject<'_>) -> bool {
        !self.matchers.is_empty() && self.matchers.iter().all(|m| m.holds(subject))
    }
}

/// The first silence active at `now` that matches, if any. Callers never ask this for a
/// resolve ([`Phase::Resolved`]): resolves pass through silences.
pub fn silenced_by<'s>(
    silences: &'s [Silence],
    subject: &SilenceSubject<'_>,
    now: DateTime<Utc>,
) -> Option<&'s Silence> {
    silences
        .iter()
        .find(|s| s.is_active(now) && s.matches(subject))
}

// ---------------------------------------------------------------------------------------------
// Grouping
// ---------------------------------------------------------------------------------------------

/// The root message of a group in one Slack channel (bot-token mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The channel label the notifier reports (see the adapters' `channel_label`).
    pub channel: String,
    /// The message's `ts`, for `thread_ts` and `chat.update`.
    pub ts: String,
}

/// What is stored per group (one DynamoDB item). `version` increases by one with every write;
/// writes are conditional on it, so concurrent invocations never overwrite each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub key: String,
    pub kind: Kind,
    /// The first alert's title (for resolve and digest lines).
    pub title: String,
    /// The first alert's correlation id.
    pub first_correlation_id: String,
    pub opened_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub phase: Phase,
    /// Alerts seen since the group opened, the first included.
    pub count: u32,
    /// Of those, how many were only counted (folded).
    pub folded: u32,
    /// Thread replies posted.
    pub replies: u32,
    /// Times of the recent phase changes, oldest first, only those inside the flap window.
    pub transitions: Vec<DateTime<Utc>>,
    /// Set when the group became flapping; cleared after a quiet flap window.
    pub flapping_since: Option<DateTime<Utc>>,
    /// Root messages, one per Slack channel, once posted (bot-token mode only).
    pub threads: Vec<Thread>,
    pub version: u64,
}

/// Why an alert was only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoldReason {
    /// A repeat in a group with no thread to reply in (webhook mode, or the root is not
    /// posted yet).
    Repeat,
    /// The group has had `max_replies` replies.
    ReplyBudget,
    /// The group is flapping.
    Flapping,
    /// A resolve for which no group is open (nothing was sent that it could close).
    NothingOpen,
}

impl FoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Repeat => "repeat",
            Self::ReplyBudget => "reply_budget",
            Self::Flapping => "flapping",
            Self::NothingOpen => "nothing_open",
        }
    }
}

/// What to do with one alert, given its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "reason")]
pub enum Action {
    /// Open a group: a new message on every channel.
    Post,
    /// A thread reply under each root message (Slack only; SNS is not told of repeats).
    Reply,
    /// The group just became flapping: one thread reply saying so (Slack only).
    FlapNotice,
    /// Close the group: edit each root message to "Resolved" and reply in its thread (bot
    /// mode), or post a "Resolved" message (webhook mode); SNS gets the resolve too.
    Resolve,
    /// Counted into the group, nothing sent.
    Fold(FoldReason),
}

/// Decides what to do with an alert of `phase` at `now`, given its group as stored (`None`
/// when there is none), and returns the group to store. Whenever the returned state is
/// `Some`, it is to be written with `version` one more than the stored one (1 for a new
/// group, saturating), conditional on the stored version; `None` means "store nothing".
/// `threads_possible`: the function posts with a bot token, so replies and edits can be made.
///
/// A group is open while `now - last_at <= group_window` (a `last_at` in the future counts as
/// open). An open group keeps its stored `key`, `kind`, `title` and `first_correlation_id`;
/// `key`, `kind`, `title` and the alert's id name a new group only.
///
/// Rules, in order:
/// 1. No open group (none stored, or its window has passed):
///    - a firing alert opens a new group ([`Action::Post`]): count 1, `opened_at` and
///      `last_at` = `now`, phase firing, no transitions, threads, replies or folds, the given
///      `key`, `kind` and `title`, and `first_correlation_id` = the alert's id. When an
///      expired group was stored, the new one replaces it with `version` = stored + 1, so the
///      conditional write still applies to the stored item;
///    - a resolve is `(Action::Fold(FoldReason::NothingOpen), None)`: nothing is stored (an
///      expired group stays as it is).
/// 2. Before the alert is recorded, transitions older than `flap_window` (`now - t >=
///    flap_window`) are dropped. A group that is flapping with no transition left (quiet for
///    `flap_window`) stops flapping and the alert is judged as in an ordinary group.
/// 3. A group still flapping records the alert (a phase change updates `phase` and is added
///    to `transitions`) and folds it ([`FoldReason::Flapping`]), whatever it is.
/// 4. A phase change (firing ↔ resolved) updates `phase` and is added to `transitions` (kept
///    oldest first, at most `2 × flap_threshold` of the newest). When it brings them to
///    `flap_threshold` (not 0: 0 turns flap detection off), the group becomes flapping
///    (`flapping_since = now`): [`Action::FlapNotice`] when a thread can take it
///    (`threads_possible` and a root posted; it counts as a reply but is not held back by
///    `max_replies`), else `Fold(Flapping)`.
/// 5. Otherwise, by (stored phase → alert phase):
///    - firing → resolved: [`Action::Resolve`] (with or without threads: webhook mode posts a
///      "Resolved" message);
///    - resolved → firing (fired again) and firing → firing (a repeat): a reply, which needs
///      a thread (`threads_possible` and a root posted), else `Fold(Repeat)`; when the group
///      already has `max_replies` replies, `Fold(ReplyBudget)`;
///    - resolved → resolved: `Fold(Repeat)`.
///
/// `count` always advances by one and `last_at` becomes `max(last_at, now)` (a late,
/// out-of-order event does not move it back); `folded` counts every fold and `replies` every
/// [`Action::Reply`] and [`Action::FlapNotice`].
#[allow(clippy::too_many_arguments)]
pub fn decide(
    group: Option<&GroupState>,
    key: &str,
    alert: &Alert,
    kind: Kind,
    title: &str,
    phase: Phase,
    now: DateTime<Utc>,
    settings: &NoiseSettings,
    threads_possible: bool,
) -> (Action, Option<GroupState>) {
    let version = group.map_or(1, |g| g.version.saturating_add(1));
    let window = to_delta(settings.group_window);
    let open = group.filter(|g| now.signed_duration_since(g.last_at) <= window);

    // Rule 1.
    let Some(stored) = open else {
        return match phase {
            Phase::Resolved => (Action::Fold(FoldReason::NothingOpen), None),
            Phase::Firing => (
                Action::Post,
                Some(GroupState {
                    key: key.to_owned(),
                    kind,
                    title: title.to_owned(),
                    first_correlation_id: alert.id.clone(),
                    opened_at: now,
                    last_at: now,
                    phase: Phase::Firing,
                    count: 1,
                    folded: 0,
                    replies: 0,
                    transitions: Vec::new(),
                    flapping_since: None,
                    threads: Vec::new(),
                    version,
                }),
            ),
        };
    };

    let mut state = stored.clone();
    state.version = version;
    state.count = state.count.saturating_add(1);
    state.last_at = state.last_at.max(now);

    // Rule 2.
    let flap_window = to_delta(settings.flap_window);
    state
        .transitions
        .retain(|t| now.signed_duration_since(*t) < flap_window);
    if state.flapping_since.is_some() && state.transitions.is_empty() {
        state.flapping_since = None;
    }

    let previous = state.phase;
    let changed = previous != phase;
    if changed {
        state.phase = phase;
        state.transitions.push(now);
        state.transitions.sort();
        let cap = usize::try_from(settings.flap_threshold.max(1))
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        let excess = state.transitions.len().saturating_sub(cap);
        state.transitions.drain(..excess);
    }

    let can_thread = threads_possible && !state.threads.is_empty();

    // Rule 3.
    let action = if state.flapping_since.is_some() {
        Action::Fold(FoldReason::Flapping)
    // Rule 4.
    } else if changed
        && settings.flap_threshold > 0
        && state.transitions.len() >= usize::try_from(settings.flap_threshold).unwrap_or(usize::MAX)
    {
        state.flapping_since = Some(now);
        if can_thread {
            Action::FlapNotice
        } else {
            Action::Fold(FoldReason::Flapping)
        }
    // Rule 5.
    } else {
        match (previous, phase) {
            (Phase::Firing, Phase::Resolved) => Action::Resolve,
            (Phase::Resolved, Phase::Resolved) => Action::Fold(FoldReason::Repeat),
            (_, Phase::Firing) => {
                if !can_thread {
                    Action::Fold(FoldReason::Repeat)
                } else if state.replies >= settings.max_replies {
                    Action::Fold(FoldReason::ReplyBudget)
                } else {
                    Action::Reply
                }
            }
        }
    };

    match action {
        Action::Reply | Action::FlapNotice => state.replies = state.replies.saturating_add(1),
        Action::Fold(_) => state.folded = state.folded.saturating_add(1),
        Action::Post | Action::Resolve => {}
    }
    (action, Some(state))
}

/// A std duration as a chrono one, saturating at the largest chrono duration.
fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `at + d`, saturating at the latest representable time.
fn add_saturating(at: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

// ---------------------------------------------------------------------------------------------
// Rate limit (a token bucket per channel, kept as GCRA: one timestamp per channel)
// ---------------------------------------------------------------------------------------------

/// Which of a channel's two rate-limit lanes an alert's Slack messages take.
///
/// A flood of ordinary alerts (anyone can cause denied calls) fills the ordinary lane and folds
/// into the digest; an alert that must never be buried there takes the priority lane: its own
/// bucket per channel ([`rate_key`]), paced only against other priority messages, never folded
/// into the digest and never carrying it. When even the priority lane has no slot within the
/// time left, the message goes out at once (Slack absorbs short bursts; its `429` is honoured by
/// the notifier). The priority lane is still behind the claim, silences and grouping: a repeat
/// of a critical alert is a thread reply or counted like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Waits for the channel's slot up to `max_rate_wait`, else folds into its digest.
    Ordinary,
    /// `critical` severity or `audit_tampering` kind: never waits for the ordinary lane,
    /// never folded.
    Priority,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ordinary => "ordinary",
            Self::Priority => "priority",
        }
    }
}

/// The lane of an alert of `kind` and `severity`: [`Lane::Priority`] for `critical` severity
/// or the `audit_tampering` kind (whatever its severity: a failed `StopLogging` is rated one
/// step lower and is still an attack on the audit trail), [`Lane::Ordinary`] otherwise.
pub fn lane(kind: Kind, severity: Severity) -> Lane {
    if severity == Severity::Critical || kind == Kind::AuditTampering {
        Lane::Priority
    } else {
        Lane::Ordinary
    }
}

/// The key a channel's rate limit is kept under in `lane`: the channel label itself for the
/// ordinary lane (as before lanes existed), `channel#priority` for the priority lane.
pub fn rate_key(channel: &str, lane: Lane) -> String {
    match lane {
        Lane::Ordinary => channel.to_owned(),
        Lane::Priority => format!("{channel}#priority"),
    }
}

/// The answer of the rate limiter for `slots` Slack calls to one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Send after waiting `wait`; store `new_tat` (conditional on the old one).
    Granted {
        wait: Duration,
        new_tat: DateTime<Utc>,
    },
    /// The wait would be longer than allowed: fold into the digest. `free_at` is when the
    /// channel has room again.
    Limited { free_at: DateTime<Utc> },
}

/// The generic cell rate algorithm, which is a token bucket of size 1 refilled every
/// `interval`, kept as one "theoretical arrival time" (`tat`) per channel: the calls reserved
/// so far end at `tat`. A call at `now` starts at `max(tat, now)`; it is granted when that is at
/// most `max_wait` away, and then `slots` calls take `slots × interval` from there (calls within
/// one grant are spaced by the caller, `interval` apart).
///
/// Precisely: `start = max(tat, now)` (`now` when no `tat` is stored) and `wait = start -
/// now`. When `wait > max_wait` the answer is [`Slot::Limited`] with `free_at = start`, when
/// a call would go out without waiting (nothing is to be stored). Otherwise it is
/// [`Slot::Granted`] with that `wait` and `new_tat = start + slots × interval`. `slots` 0 is
/// taken as 1; the arithmetic saturates instead of overflowing.
pub fn reserve(
    tat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    slots: u32,
    interval: Duration,
    max_wait: Duration,
) -> Slot {
    let start = tat.map_or(now, |t| t.max(now));
    let wait = start
        .signed_duration_since(now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    if wait > max_wait {
        return Slot::Limited { free_at: start };
    }
    let span = interval.checked_mul(slots.max(1)).unwrap_or(Duration::MAX);
    Slot::Granted {
        wait,
        new_tat: add_saturating(start, to_delta(span)),
    }
}

/// Alerts folded into a channel's digest because its rate limit was reached; the next message
/// granted on that channel carries them as one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub channel: String,
    /// How many alerts were folded.
    pub count: u32,
    pub since: DateTime<Utc>,
    /// The first few titles (at most [`DIGEST_TITLES`]), in arrival order.
    pub titles: Vec<String>,
}

/// Titles a digest keeps; the rest are counted.
pub const DIGEST_TITLES: usize = 10;

/// The longest a title gets in a digest line, in characters (longer ones end in `…`).
pub const DIGEST_TITLE_CHARS: usize = 80;

/// The digest as one line of plain text: "Held back by the rate limit since 09:31:05 UTC:
/// 12 alerts — title, title, … and 2 more" (`1 alert` in the singular).
///
/// At most [`DIGEST_TITLES`] titles are listed, each on one line (line breaks and other
/// control characters become spaces, runs of blanks collapse), cut to
/// [`DIGEST_TITLE_CHARS`]; blank titles are skipped. "… and N more" counts the alerts of
/// `count` not listed. Angle brackets are swapped for look-alikes (`‹ ›`), so the line is
/// safe in Slack mrkdwn and in `plain_text` alike and is unchanged by the Slack renderer's
/// escaping except for `&`. Without titles the line ends after the count.
pub fn digest_line(digest: &Digest) -> String {
    let count = digest.count;
    let noun = if count == 1 { "alert" } else { "alerts" };
    let mut line = format!(
        "Held back by the rate limit since {}: {count} {noun}",
        digest.since.format("%H:%M:%S UTC")
    );
    let titles: Vec<String> = digest
        .titles
        .iter()
        .map(|t| one_line_title(t))
        .filter(|t| !t.is_empty())
        .take(DIGEST_TITLES)
        .collect();
    if titles.is_empty() {
        return line;
    }
    line.push_str(" — ");
    line.push_str(&titles.join(", "));
    let shown = u32::try_from(titles.len()).unwrap_or(u32::MAX);
    let more = count.saturating_sub(shown);
    if more > 0 {
        line.push_str(&format!(", … and {more} more"));
    }
    line
}

/// A title as one short, mrkdwn-safe line.
fn one_line_title(title: &str) -> String {
    let words: Vec<&str> = title
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let flat = words.join(" ").replace('<', "‹").replace('>', "›");
    if flat.chars().count() <= DIGEST_TITLE_CHARS {
        return flat;
    }
    let mut cut: String = flat
        .chars()
        .take(DIGEST_TITLE_CHARS.saturating_sub(1))
        .collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------

/// What became of one alert in one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new message went out (at least one channel delivered).
    Sent,
    /// Replied in the group's thread.
    Threaded,
    /// The group was closed ("Resolved").
    Resolved,
    /// Counted into its group (see the reason).
    Folded,
    /// Not sent on purpose: a duplicate delivery, a silence, below the severity threshold.
    Suppressed,
    /// Slack's slot was too far away: folded into the channel's digest (SNS still sent when
    /// the action sends SNS).
    RateLimited,
    /// Every channel failed: the invocation fails, Lambda retries, then dead-letters.
    Failed,
    /// Seen in the dead-letter queue by `vigil redrive`.
    DeadLettered,
    /// Re-sent by `vigil redrive --send`.
    Redriven,
    /// Acknowledged by someone in Slack (the Acknowledge button).
    Acknowledged,
    /// Silenced from Slack (a Silence button): the reason names the silence, who made it
    /// (user, workspace, channel), its matchers and its length.
    Silenced,
    /// A runbook step marked done in Slack.
    StepDone,
    /// A Slack button refused: another workspace or channel, a user outside the silencer
    /// group, or an alert that cannot be silenced from Slack. The reason says which.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Threaded => "threaded",
            Self::Resolved => "resolved",
            Self::Folded => "folded",
            Self::Suppressed => "suppressed",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Redriven => "redriven",
            Self::Acknowledged => "acknowledged",
            Self::Silenced => "silenced",
            Self::StepDone => "step_done",
            Self::Refused => "refused",
        }
    }
}

/// One channel's part in an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelResult {
    pub channel: String,
    pub ok: bool,
    /// The message id (Slack `ts`, SNS MessageId) or the error, masked.
    pub detail: Option<String>,
}

/// One row of the decision ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub at: DateTime<Utc>,
    /// The alert id (the event id of ARCHITECTURE.md "Noise control"), shown in every message's context line.
    pub correlation_id: String,
    /// `handle-alarm`, `handle-event`, `slack-actions`, `vigil`.
    pub function: String,
    pub outcome: Outcome,
    /// Why, in words: "duplicate delivery (first handled at …)", "silenced by sil-… (reason)",
    /// "fold: repeat", "Slack slot 6.2 s away (limit 4 s)", the failures.
    pub reason: Option<String>,
    pub kind: Option<Kind>,
    pub severity: Option<Severity>,
    /// The alert's name (alarm, event name).
    pub name: String,
    pub group_key: Option<String>,
    pub channels: Vec<ChannelResult>,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::model::{
        Actor, Alarm, AlarmType, Change, ConfigChange, ConfigChangeKind, InputFamily, MetricRef,
    };

    // -- builders --------------------------------------------------------------------------

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn mins(m: i64) -> i64 {
        m * 60
    }

    fn alert(body: AlertBody) -> Alert {
        Alert {
            id: "evt-1".into(),
            input: InputFamily::AlarmEventbridge,
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            time: t(0),
            body,
        }
    }

    fn alarm_body(name: &str, state: AlarmState, arn: Option<&str>, namespace: &str) -> Alarm {
        Alarm {
            name: name.into(),
            arn: arn.map(Into::into),
            description: None,
            alarm_type: AlarmType::Metric,
            state,
            previous_state: None,
            reason: "threshold crossed".into(),
            metrics: vec![MetricRef {
                namespace: Some(namespace.into()),
                name: "InvocationThrottles".into(),
                dimensions: BTreeMap::new(),
                stat: Some("Sum".into()),
                period: Some(60),
            }],
            expression: None,
            alarm_rule: None,
            triggering_alarms: Vec::new(),
            threshold: Some(10.0),
            comparison: None,
            recent_datapoints: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:bedrock-throttles";

    fn alarm(state: AlarmState) -> Alert {
        alert(AlertBody::Alarm(alarm_body(
            "bedrock-throttles",
            state,
            Some(ALARM_ARN),
            "AWS/Bedrock",
        )))
    }

    fn firing() -> Alert {
        alarm(AlarmState::Alarm)
    }

    fn ok() -> Alert {
        alarm(AlarmState::Ok)
    }

    fn api_call(event_name: &str, resources: &[&str]) -> Alert {
        let mut a = alert(AlertBody::ApiCall(Change {
            event_id: "ct-1".into(),
            event_name: event_name.into(),
            event_source: "bedrock.amazonaws.com".into(),
            time: t(0),
            region: Some("us-east-1".into()),
            account: Some("111122223333".into()),
            actor: Actor {
                name: "alice".into(),
                ..Actor::default()
            },
            source_ip: None,
            user_agent: None,
            read_only: false,
            error_code: None,
            error_message: None,
            request: BTreeMap::new(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            facts: BTreeSet::new(),
        }));
        a.input = InputFamily::Cloudtrail;
        a
    }

    fn config(rule: Option<&str>, rtype: Option<&str>, rid: Option<&str>) -> Alert {
        let mut a = alert(AlertBody::Config(ConfigChange {
            change: ConfigChangeKind::ComplianceChange,
            rule_name: rule.map(Into::into),
            resource_type: rtype.map(Into::into),
            resource_id: rid.map(Into::into),
            resource_name: None,
            compliance: Some("NON_COMPLIANT".into()),
            previous_compliance: Some("COMPLIANT".into()),
            change_type: None,
            changed_properties: Vec::new(),
        }));
        a.input = InputFamily::Config;
        a
    }

    fn fixture(json: &str) -> Alert {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut alerts = crate::intake::parse_value(&value).unwrap();
        assert_eq!(alerts.len(), 1);
        alerts.remove(0)
    }

    fn settings() -> NoiseSettings {
        NoiseSettings::default()
    }

    const KEY: &str = "111122223333|us-east-1|throttle_spike|arn";

    /// `decide` for the test alarm with the usual arguments.
    fn run(
        group: Option<&GroupState>,
        phase: Phase,
        now: DateTime<Utc>,
        threads: bool,
    ) -> (Action, Option<GroupState>) {
        let a = match phase {
            Phase::Firing => firing(),
            Phase::Resolved => ok(),
        };
        let kind = match phase {
            Phase::Firing => Kind::ThrottleSpike,
            Phase::Resolved => Kind::Resolved,
        };
        decide(
            group,
            KEY,
            &a,
            kind,
            "Bedrock throttling",
            phase,
            now,
            &settings(),
            threads,
        )
    }

    /// A group opened at `t(0)` by a firing alert, with a root posted when `root`.
    fn opened(root: bool) -> GroupState {
        let (action, state) = run(None, Phase::Firing, t(0), root);
        assert_eq!(action, Action::Post);
        let mut state = state.unwrap();
        if root {
            state.threads.push(Thread {
                channel: "#ai-oncall".into(),
                ts: "1700000000.000100".into(),
            });
        }
        state
    }

    /// Feeds `steps` (phase, time) through `decide`, returning every action and the last state.
    fn feed(
        mut state: GroupState,
        steps: &[(Phase, i64)],
        threads: bool,
    ) -> (Vec<Action>, GroupState) {
        let mut actions = Vec::new();
        for &(phase, at) in steps {
            let (action, next) = run(Some(&state), phase, t(at), threads);
            actions.push(action);
            state = next.unwrap();
        }
        (actions, state)
    }

    // -- keys ------------------------------------------------------------------------------

    #[test]
    fn phase_of_ok_alarm_is_resolved_everything_else_firing() {
        assert_eq!(phase_of(&ok()), Phase::Resolved);
        assert_eq!(phase_of(&firing()), Phase::Firing);
        assert_eq!(
            phase_of(&alarm(AlarmState::InsufficientData)),
            Phase::Firing
        );
        assert_eq!(phase_of(&api_call("DeleteGuardrail", &[])), Phase::Firing);
        assert_eq!(phase_of(&config(Some("r"), None, None)), Phase::Firing);
    }

    #[test]
    fn primary_resource_of_an_alarm_is_its_arn_else_its_name() {
        assert_eq!(primary_resource(&firing()), ALARM_ARN);
        let no_arn = alert(AlertBody::Alarm(alarm_body(
            "bedrock-throttles",
            AlarmState::Alarm,
            None,
            "AWS/Bedrock",
        )));
        assert_eq!(primary_resource(&no_arn), "bedrock-throttles");
        let blank_arn = alert(AlertBody::Alarm(alarm_body(
            "bedrock-throttles",
            AlarmState::Alarm,
            Some(" "),
            "AWS/Bedrock",
        )));
        assert_eq!(primary_resource(&blank_arn), "bedrock-throttles");
    }

    #[test]
    fn primary_resource_of_an_api_call_is_its_first_resource_else_source_and_name() {
        let a = api_call(
            "UpdateGuardrail",
            &[
                "arn:aws:bedrock:us-east-1:111122223333:guardrail/abc",
                "other",
            ],
        );
        assert_eq!(
            primary_resource(&a),
            "arn:aws:bedrock:us-east-1:111122223333:guardrail/abc"
        );
        assert_eq!(
            primary_resource(&api_call("UpdateGuardrail", &["", "gr-2"])),
            "gr-2"
        );
        assert_eq!(
            primary_resource(&api_call("PutFoundationModelEntitlement", &[])),
            "bedrock.amazonaws.com:PutFoundationModelEntitlement"
        );
    }

    #[test]
    fn primary_resource_of_a_config_change() {
        let both = config(
            Some("s3-public"),
            Some("AWS::S3::Bucket"),
            Some("my-bucket"),
        );
        assert_eq!(primary_resource(&both), "AWS::S3::Bucket/my-bucket");
        let id_only = config(Some("s3-public"), None, Some("my-bucket"));
        assert_eq!(primary_resource(&id_only), "my-bucket");
        let type_only = config(Some("s3-public"), Some("AWS::S3::Bucket"), None);
        assert_eq!(primary_resource(&type_only), "s3-public");
        assert_eq!(primary_resource(&config(None, None, None)), "config");
    }

    #[test]
    fn group_key_joins_account_region_kind_and_resource() {
        assert_eq!(
            group_key(&firing(), Kind::ThrottleSpike),
            format!("111122223333|us-east-1|throttle_spike|{ALARM_ARN}")
        );
        let mut unknown = api_call("DeleteGuardrail", &["gr-1"]);
        unknown.account = None;
        unknown.region = Some(String::new());
        assert_eq!(
            group_key(&unknown, Kind::GuardrailChange),
            "-|-|guardrail_change|gr-1"
        );
    }

    /// A denied call by `actor` on `resource`.
    fn denied(event_name: &str, resource: &str, actor: Actor) -> Alert {
        let mut a = api_call(event_name, &[resource]);
        if let AlertBody::ApiCall(c) = &mut a.body {
            c.error_code = Some("AccessDenied".into());
            c.actor = actor;
        }
        a
    }

    fn user(name: &str) -> Actor {
        Actor {
            identity_type: Some("IAMUser".into()),
            arn: Some(format!("arn:aws:iam::111122223333:user/{name}")),
            name: name.into(),
            ..Actor::default()
        }
    }

    #[test]
    fn denied_calls_group_by_actor_not_by_resource() {
        // 500 denied calls on 500 resources by one user: one group.
        let keys: BTreeSet<String> = (0..500)
            .map(|i| {
                group_key(
                    &denied("GetRole", &format!("role-{i}"), user("mallory")),
                    Kind::AccessDenied,
                )
            })
            .collect();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            ["111122223333|us-east-1|access_denied|actor:arn:aws:iam::111122223333:user/mallory"]
        );
        // Another actor is another group.
        assert_ne!(
            group_key(
                &denied("GetRole", "role-1", user("mallory")),
                Kind::AccessDenied
            ),
            group_key(
                &denied("GetRole", "role-1", user("trent")),
                Kind::AccessDenied
            )
        );
        // A denied call that a user rule classified otherwise still groups by actor, under
        // its own kind.
        assert_eq!(
            group_key(
                &denied("DeleteTrail", "t-9", user("mallory")),
                Kind::AuditTampering
            ),
            "111122223333|us-east-1|audit_tampering|actor:arn:aws:iam::111122223333:user/mallory"
        );
        // Calls that were not denied keep grouping by resource.
        assert_eq!(
            group_key(
                &api_call("DeleteGuardrail", &["gr-1"]),
                Kind::GuardrailChange
            ),
            "111122223333|us-east-1|guardrail_change|gr-1"
        );
        // An access_denied alarm has no actor: by resource, as before.
        assert_eq!(
            group_key(&firing(), Kind::AccessDenied),
            format!("111122223333|us-east-1|access_denied|{ALARM_ARN}")
        );
    }

    #[test]
    fn an_assumed_role_groups_by_role_whatever_its_session_name() {
        let session = |s: &str, issuer: Option<&str>| Actor {
            identity_type: Some("AssumedRole".into()),
            arn: Some(format!("arn:aws:sts::111122223333:assumed-role/probe/{s}")),
            name: format!("probe/{s}"),
            role_arn: issuer.map(Into::into),
            session_name: Some(s.into()),
            invoked_by: None,
        };
        let role = "arn:aws:iam::111122223333:role/probe";
        assert_eq!(actor_principal(&session("a1", Some(role))), role);
        assert_eq!(
            actor_principal(&session("a1", None)),
            "arn:aws:sts::111122223333:assumed-role/probe"
        );
        assert_eq!(
            actor_principal(&session("a1", None)),
            actor_principal(&session("zz-other", None))
        );
        assert_eq!(
            group_key(
                &denied("GetRole", "r1", session("s-1", Some(role))),
                Kind::AccessDenied
            ),
            group_key(
                &denied("GetRole", "r2", session("s-2", Some(role))),
                Kind::AccessDenied
            ),
        );
        // No ARN: the readable name; nothing at all: a fixed word.
        let named = Actor {
            name: "AIDAEXAMPLE".into(),
            ..Actor::default()
        };
        assert_eq!(actor_principal(&named), "AIDAEXAMPLE");
        assert_eq!(actor_principal(&Actor::default()), "unknown identity");
    }

    #[test]
    fn the_denied_fixture_groups_by_its_user() {
        let call = fixture(&format!(
            r#"{{"version":"0","id":"eb-1","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"123456789012","time":"2019-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}}"#,
            include_str!(
                "../../../tests/fixtures/aws-events/cloudtrail-api-call-eventbridge/panther-iam-getrole-accessdenied.json"
            )
        ));
        assert_eq!(
            group_key(&call, Kind::AccessDenied),
            "123456789012|us-east-1|access_denied|actor:arn:aws:iam::123456789012:user/tester"
        );
    }

    #[test]
    fn alarm_pointer_is_shared_by_firing_and_ok_and_none_for_others() {
        let p = alarm_pointer(&firing()).unwrap();
        assert_eq!(p, "alarm|111122223333|us-east-1|bedrock-throttles");
        assert_eq!(alarm_pointer(&ok()).as_deref(), Some(p.as_str()));
        // The group keys differ (the OK classifies as `resolved`), the pointer does not.
        assert_ne!(
            group_key(&firing(), Kind::ThrottleSpike),
            group_key(&ok(), Kind::Resolved)
        );
        let mut no_account = firing();
        no_account.account = None;
        assert_eq!(
            alarm_pointer(&no_account).unwrap(),
            "alarm|-|us-east-1|bedrock-throttles"
        );
        assert_eq!(alarm_pointer(&api_call("DeleteGuardrail", &[])), None);
        assert_eq!(alarm_pointer(&config(Some("r"), None, None)), None);
    }

    #[test]
    fn keys_of_real_payloads() {
        let alarm = fixture(include_str!(
            "../../../tests/fixtures/aws-events/eventbridge-alarm-state-change/awsdocs-single-metric-ok-to-alarm.json"
        ));
        assert_eq!(phase_of(&alarm), Phase::Firing);
        assert_eq!(
            primary_resource(&alarm),
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
        );
        assert_eq!(
            group_key(&alarm, Kind::ErrorSpike),
            "123456789012|us-east-1|error_spike|arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
        );
        assert_eq!(
            alarm_pointer(&alarm).unwrap(),
            "alarm|123456789012|us-east-1|ServerCpuTooHigh"
        );

        let resolved = fixture(include_str!(
            "../../../tests/fixtures/aws-events/sns-wrapped-alarm/notify-slack-sns-alarm-to-ok-logmetrics.json"
        ));
        assert_eq!(phase_of(&resolved), Phase::Resolved);
        assert!(alarm_pointer(&resolved).unwrap().starts_with("alarm|"));

        let config = fixture(include_str!(
            "../../../tests/fixtures/aws-events/config-compliance-change/custodian-eb-configuration-item-change-sqs-create.json"
        ));
        assert_eq!(
            primary_resource(&config),
            "AWS::SQS::Queue/https://sqs.us-east-1.amazonaws.com/644160558196/config-changes"
        );
        assert_eq!(alarm_pointer(&config), None);

        let call = fixture(include_str!(
            "../../../tests/fixtures/aws-events/cloudtrail-api-call-eventbridge/panther-s3-putbucketpolicy-public.json"
        ));
        assert_eq!(phase_of(&call), Phase::Firing);
        assert_eq!(primary_resource(&call), "example-bucket");
        assert_eq!(
            group_key(&call, Kind::PublicExposure),
            "123456789012|us-west-2|public_exposure|example-bucket"
        );
    }

    // -- lanes ----------------------------------------------------------------------------

    #[test]
    fn critical_and_audit_tampering_take_the_priority_lane() {
        for kind in Kind::ALL {
            for severity in SEVERITIES {
                let expected = if severity == Severity::Critical || kind == Kind::AuditTampering {
                    Lane::Priority
                } else {
                    Lane::Ordinary
                };
                assert_eq!(lane(kind, severity), expected, "{kind} {severity}");
            }
        }
        assert_eq!(lane(Kind::AccessDenied, Severity::High), Lane::Ordinary);
        assert_eq!(lane(Kind::AuditTampering, Severity::Low), Lane::Priority);
    }

    #[test]
    fn the_priority_lane_has_its_own_rate_key() {
        assert_eq!(rate_key("#sec-alerts", Lane::Ordinary), "#sec-alerts");
        assert_eq!(
            rate_key("#sec-alerts", Lane::Priority),
            "#sec-alerts#priority"
        );
        assert_ne!(
            rate_key("C0123", Lane::Ordinary),
            rate_key("C0123", Lane::Priority)
        );
    }

    // -- matchers --------------------------------------------------------------------------

    fn m(input: &str) -> Matcher {
        Matcher::parse(input).unwrap()
    }

    fn parse_err(input: &str) -> MatcherError {
        Matcher::parse(input).unwrap_err()
    }

    #[test]
    fn matcher_parses_every_field_and_both_operators() {
        for field in MatchField::ALL {
            let value = match field {
                MatchField::Kind => "throttle_spike",
                MatchField::Severity => "high",
                _ => "x",
            };
            let eq = m(&format!("{field}={value}"));
            assert_eq!(eq.field, field);
            assert_eq!(eq.op, MatchOp::Matches);
            assert_eq!(eq.value, value);
            let ne = m(&format!("{field}!={value}"));
            assert_eq!(ne.field, field);
            assert_eq!(ne.op, MatchOp::NotMatches);
            assert_eq!(MatchField::parse(field.as_str()), Some(field));
        }
    }

    #[test]
    fn matcher_value_is_everything_after_the_first_equals_sign_trimmed() {
        assert_eq!(
            m(" name = bedrock-* "),
            Matcher {
                field: MatchField::Name,
                op: MatchOp::Matches,
                value: "bedrock-*".into()
            }
        );
        assert_eq!(m("name=a=b").value, "a=b");
        assert_eq!(m("name=!a").op, MatchOp::Matches);
        assert_eq!(m("name=!a").value, "!a");
        let ne = m("resource!==x");
        assert_eq!((ne.op, ne.value.as_str()), (MatchOp::NotMatches, "=x"));
    }

    #[test]
    fn matcher_accepts_kind_globs_that_match_a_known_kind() {
        let g = m("kind=*_change");
        assert_eq!(g.value, "*_change");
        assert_eq!(m("kind!=?esolved").op, MatchOp::NotMatches);
        let e = parse_err("kind=*_nonsense");
        assert!(e.reason.contains("matches no known kind"), "{e}");
    }

    #[test]
    fn matcher_errors_name_the_input_and_the_problem() {
        let cases = [
            ("nme=x", "unknown field \"nme\""),
            ("Name=x", "unknown field \"Name\""),
            ("name", "no operator"),
            ("name~x", "no operator"),
            ("", "no operator"),
            ("=x", "no field"),
            ("!=x", "no field"),
            ("name=", "empty value"),
            ("name!=  ", "empty value"),
            ("kind=throttling", "unknown kind \"throttling\""),
            ("kind=Throttle_Spike", "unknown kind"),
            ("severity=urgent", "unknown severity \"urgent\""),
            ("severity=hi*", "unknown severity"),
        ];
        for (input, reason) in cases {
            let e = parse_err(input);
            assert_eq!(e.input, input);
            assert!(e.reason.contains(reason), "{input:?}: {}", e.reason);
            assert!(e.to_string().starts_with(&format!("matcher {input:?}: ")));
        }
        assert!(parse_err("nme=x").reason.contains("namespace"));
        assert!(parse_err("kind=x").reason.contains("model_access_change"));
        assert!(parse_err("severity=x").reason.contains("critical"));
    }

    #[test]
    fn matcher_display_round_trips() {
        let inputs = [
            "name=bedrock-throttles",
            "name!=bedrock-*",
            "kind=throttle_spike",
            "kind=*_change",
            "kind!=resolved",
            "severity=low",
            "severity!=critical",
            "team=ml-platform",
            "team!=sec?",
            "account=111122223333",
            "region!=eu-*",
            "resource=arn:aws:bedrock:us-east-1:1:guardrail/a",
            "namespace=AWS/Bedrock",
            "name=a=b",
            "name=!a",
            "name!==a",
        ];
        for input in inputs {
            let parsed = m(input);
            assert_eq!(parsed.to_string(), input);
            assert_eq!(m(&parsed.to_string()), parsed);
        }
        for kind in Kind::ALL {
            let parsed = m(&format!("kind={kind}"));
            assert_eq!(m(&parsed.to_string()), parsed);
        }
        for severity in SEVERITIES {
            let parsed = m(&format!("severity!={severity}"));
            assert_eq!(m(&parsed.to_string()), parsed);
        }
        assert_eq!(m(" team = sre ").to_string(), "team=sre");
    }

    // -- silences --------------------------------------------------------------------------

    fn silence(matchers: &[&str]) -> Silence {
        Silence {
            id: "sil-0123456789ab".into(),
            matchers: matchers.iter().map(|s| m(s)).collect(),
            starts_at: t(0),
            ends_at: t(mins(60)),
            author: "arn:aws:iam::111122223333:user/alice".into(),
            reason: "maintenance".into(),
            created_at: t(-10),
            expired_by: None,
        }
    }

    fn subject<'a>(alert: &'a Alert, teams: &'a [String]) -> SilenceSubject<'a> {
        SilenceSubject {
            alert,
            kind: Kind::ThrottleSpike,
            severity: Severity::High,
            teams,
        }
    }

    fn holds(matcher: &str, alert: &Alert, teams: &[String]) -> bool {
        m(matcher).holds(&subject(alert, teams))
    }

    #[test]
    fn silence_is_active_from_start_inclusive_to_end_exclusive() {
        let s = silence(&["name=x"]);
        assert!(!s.is_active(t(-1)));
        assert!(s.is_active(t(0)));
        assert!(s.is_active(t(mins(60) - 1)));
        assert!(!s.is_active(t(mins(60))));
        assert!(!s.is_active(t(mins(61))));
        let expired = Silence {
            expired_by: Some("bob".into()),
            ..s.clone()
        };
        assert!(!expired.is_active(t(10)));
        let inverted = Silence {
            starts_at: t(100),
            ends_at: t(50),
            ..s
        };
        assert!(!inverted.is_active(t(75)));
    }

    fn named_alarm(name: &str) -> Alert {
        alert(AlertBody::Alarm(alarm_body(
            name,
            AlarmState::Alarm,
            None,
            "AWS/Bedrock",
        )))
    }

    #[test]
    fn exact_matchers_parse_display_and_take_stars_literally() {
        let e = m("name==*");
        assert_eq!(e, Matcher::exact(MatchField::Name, "*"));
        assert_eq!(e.to_string(), "name==*");
        assert_eq!(m(&e.to_string()), e);
        assert_eq!(m("name===x"), Matcher::exact(MatchField::Name, "=x"));
        assert_eq!(m("name===x").to_string(), "name===x");
        // An exact kind must be a known id: `==` never globs.
        assert!(parse_err("kind==*_change").reason.contains("unknown kind"));
        assert_eq!(m("kind==audit_tampering").op, MatchOp::Equals);

        let star = named_alarm("*");
        let other = named_alarm("payments-latency");
        let qmark = named_alarm("db-?");
        // The glob that a Silence button used to store silences every alarm...
        assert!(holds("name=*", &other, &[]));
        // ...the exact one only the alarm of that name.
        assert!(holds("name==*", &star, &[]));
        assert!(!holds("name==*", &other, &[]));
        assert!(holds("name==db-?", &qmark, &[]));
        assert!(!holds("name==db-?", &named_alarm("db-1"), &[]));
        for (matcher, field) in [
            ("account==111122223333", "account"),
            ("region==us-east-1", "region"),
            ("team==sre", "team"),
            ("namespace==AWS/Bedrock", "namespace"),
        ] {
            let teams = ["sre".to_owned()];
            assert!(holds(matcher, &other, &teams), "{field}");
            let globbed = matcher.replacen("==", "==*", 1);
            assert!(!holds(&globbed, &other, &teams), "{globbed}");
        }
    }

    #[test]
    fn a_silence_of_an_alarm_named_star_does_not_silence_other_alarms() {
        let s = Silence {
            matchers: vec![
                Matcher::exact(MatchField::Name, "*"),
                Matcher::exact(MatchField::Account, "111122223333"),
            ],
            ..silence(&[])
        };
        let silences = [s];
        let star = named_alarm("*");
        let other = named_alarm("payments-latency");
        assert!(silenced_by(&silences, &subject(&star, &[]), t(1)).is_some());
        assert!(silenced_by(&silences, &subject(&other, &[]), t(1)).is_none());
        // Stored and read back (the silence is JSON in the table), it is still exact.
        let json = serde_json::to_string(&silences[0]).unwrap();
        assert!(json.contains("\"op\":\"equals\""), "{json}");
        let back: Silence = serde_json::from_str(&json).unwrap();
        assert!(!back.matches(&subject(&other, &[])));
    }

    #[test]
    fn protected_alerts_and_the_silences_that_could_hide_them() {
        assert!(is_protected(Kind::ThrottleSpike, Severity::Critical));
        assert!(is_protected(Kind::AuditTampering, Severity::High));
        assert!(!is_protected(Kind::AccessDenied, Severity::High));
        let could =
            |ms: &[&str]| could_match_protected(&ms.iter().map(|x| m(x)).collect::<Vec<_>>());
        assert!(could(&["name=x"]));
        assert!(
            could(&["severity!=critical"]),
            "audit_tampering can be high"
        );
        assert!(
            could(&["kind!=audit_tampering"]),
            "any kind can be critical"
        );
        assert!(could(&["severity=critical", "kind=throttle_spike"]));
        assert!(could(&["kind=audit_*", "severity=high"]));
        assert!(could(&["severity!=high", "kind==throttle_spike"]));
        assert!(!could(&["severity!=critical", "kind!=audit_tampering"]));
        assert!(!could(&["name=x", "severity=high", "kind=throttle_spike"]));
        assert!(!could(&["severity==low", "kind=*_change"]));
        assert!(!could(&["severity=medium", "kind!=audit_*"]));
    }

    #[test]
    fn silence_without_matchers_matches_nothing() {
        let a = firing();
        assert!(!silence(&[]).matches(&subject(&a, &[])));
    }

    #[test]
    fn silence_needs_every_matcher_to_hold() {
        let a = firing();
        let s = subject(&a, &[]);
        assert!(silence(&["name=bedrock-*", "kind=throttle_spike"]).matches(&s));
        assert!(!silence(&["name=bedrock-*", "kind=error_spike"]).matches(&s));
    }

    #[test]
    fn matching_on_name_kind_and_severity() {
        let a = firing();
        assert!(holds("name=bedrock-throttles", &a, &[]));
        assert!(holds("name=bedrock-*", &a, &[]));
        assert!(holds("name=bedrock-throttle?", &a, &[]));
        assert!(
            !holds("name=Bedrock-*", &a, &[]),
            "globs are case-sensitive"
        );
        assert!(!holds("name=bedrock", &a, &[]));
        assert!(holds("name!=bedrock", &a, &[]));
        assert!(holds(
            "name=DeleteGuardrail",
            &api_call("DeleteGuardrail", &[]),
            &[]
        ));
        assert!(holds(
            "name=s3-public",
            &config(Some("s3-public"), None, None),
            &[]
        ));

        assert!(holds("kind=throttle_spike", &a, &[]));
        assert!(holds("kind=throttle_*", &a, &[]));
        assert!(!holds("kind=*_change", &a, &[]));
        assert!(holds("kind!=*_change", &a, &[]));
        assert!(!holds("kind!=throttle_spike", &a, &[]));

        assert!(holds("severity=high", &a, &[]));
        assert!(!holds("severity=low", &a, &[]));
        assert!(holds("severity!=low", &a, &[]));
    }

    #[test]
    fn matching_on_team_any_for_matches_none_for_not_matches() {
        let a = firing();
        let teams = vec!["ml-platform".to_owned(), "security".to_owned()];
        assert!(holds("team=security", &a, &teams));
        assert!(holds("team=ml-*", &a, &teams));
        assert!(!holds("team=sre", &a, &teams));
        assert!(!holds("team!=security", &a, &teams), "one team matches");
        assert!(holds("team!=sre", &a, &teams), "no team matches");
        assert!(!holds("team=*", &a, &[]), "no teams: nothing matches");
        assert!(holds("team!=sre", &a, &[]));
    }

    #[test]
    fn matching_on_account_region_and_resource() {
        let a = firing();
        assert!(holds("account=111122223333", &a, &[]));
        assert!(holds("account!=444455556666", &a, &[]));
        assert!(holds("region=us-*", &a, &[]));
        assert!(!holds("region=eu-*", &a, &[]));
        assert!(holds("region!=eu-*", &a, &[]));
        assert!(holds(
            "resource=arn:aws:cloudwatch:*:alarm:bedrock-*",
            &a,
            &[]
        ));
        assert!(holds(
            "resource=gr-1",
            &api_call("UpdateGuardrail", &["gr-1"]),
            &[]
        ));
        assert!(holds(
            "resource=AWS::S3::Bucket/*",
            &config(None, Some("AWS::S3::Bucket"), Some("b")),
            &[]
        ));

        let mut unknown = firing();
        unknown.account = None;
        unknown.region = None;
        assert!(!holds("account=*", &unknown, &[]));
        assert!(holds("account!=111122223333", &unknown, &[]));
        assert!(!holds("region=*", &unknown, &[]));
        assert!(holds("region!=us-east-1", &unknown, &[]));
    }

    #[test]
    fn matching_on_namespace_only_holds_for_alarms() {
        let a = firing();
        assert!(holds("namespace=AWS/Bedrock", &a, &[]));
        assert!(holds("namespace=AWS/*", &a, &[]));
        assert!(!holds("namespace!=AWS/Bedrock", &a, &[]));
        assert!(holds("namespace!=AWS/Lambda", &a, &[]));
        let call = api_call("DeleteGuardrail", &[]);
        assert!(!holds("namespace=*", &call, &[]));
        assert!(holds("namespace!=AWS/Bedrock", &call, &[]));
        let cfg = config(Some("r"), None, None);
        assert!(!holds("namespace=AWS/Bedrock", &cfg, &[]));
        assert!(holds("namespace!=AWS/Bedrock", &cfg, &[]));
    }

    #[test]
    fn silenced_by_returns_the_first_active_matching_silence() {
        let a = firing();
        let s = subject(&a, &[]);
        let mut not_started = silence(&["name=bedrock-*"]);
        not_started.id = "sil-000000000001".into();
        not_started.starts_at = t(mins(30));
        let mut other = silence(&["name=other"]);
        other.id = "sil-000000000002".into();
        let mut first = silence(&["kind=throttle_spike"]);
        first.id = "sil-000000000003".into();
        let mut second = silence(&["severity=high"]);
        second.id = "sil-000000000004".into();
        let all = [not_started, other, first, second];
        assert_eq!(
            silenced_by(&all, &s, t(10)).map(|s| s.id.as_str()),
            Some("sil-000000000003")
        );
        // Later, the first one has started too.
        assert_eq!(
            silenced_by(&all, &s, t(mins(30))).map(|s| s.id.as_str()),
            Some("sil-000000000001")
        );
        assert!(silenced_by(&all, &s, t(mins(60))).is_none());
        assert!(silenced_by(&[], &s, t(10)).is_none());
    }

    // -- decide ----------------------------------------------------------------------------

    #[test]
    fn first_firing_alert_opens_a_group() {
        let (action, state) = run(None, Phase::Firing, t(0), true);
        assert_eq!(action, Action::Post);
        let state = state.unwrap();
        assert_eq!(
            state,
            GroupState {
                key: KEY.into(),
                kind: Kind::ThrottleSpike,
                title: "Bedrock throttling".into(),
                first_correlation_id: "evt-1".into(),
                opened_at: t(0),
                last_at: t(0),
                phase: Phase::Firing,
                count: 1,
                folded: 0,
                replies: 0,
                transitions: Vec::new(),
                flapping_since: None,
                threads: Vec::new(),
                version: 1,
            }
        );
    }

    #[test]
    fn resolve_with_nothing_open_stores_nothing() {
        assert_eq!(
            run(None, Phase::Resolved, t(0), true),
            (Action::Fold(FoldReason::NothingOpen), None)
        );
        // An expired group is not open either, and stays as stored.
        let g = opened(true);
        assert_eq!(
            run(Some(&g), Phase::Resolved, t(mins(61)), true),
            (Action::Fold(FoldReason::NothingOpen), None)
        );
    }

    #[test]
    fn an_expired_group_is_replaced_by_a_fresh_one() {
        let mut g = opened(true);
        g.version = 7;
        g.count = 9;
        g.folded = 3;
        g.replies = 4;
        g.phase = Phase::Resolved;
        g.transitions = vec![t(10), t(20)];
        g.flapping_since = Some(t(20));
        g.title = "old title".into();
        g.first_correlation_id = "old-evt".into();
        g.last_at = t(100);
        let now = t(100 + mins(60) + 1);
        let a = firing();
        let (action, state) = decide(
            Some(&g),
            "new-key",
            &a,
            Kind::ErrorSpike,
            "new title",
            Phase::Firing,
            now,
            &settings(),
            true,
        );
        assert_eq!(action, Action::Post);
        let s = state.unwrap();
        assert_eq!(s.version, 8, "conditional on the stored version 7");
        assert_eq!(s.key, "new-key");
        assert_eq!(s.kind, Kind::ErrorSpike);
        assert_eq!(s.title, "new title");
        assert_eq!(s.first_correlation_id, "evt-1");
        assert_eq!((s.opened_at, s.last_at), (now, now));
        assert_eq!(s.phase, Phase::Firing);
        assert_eq!((s.count, s.folded, s.replies), (1, 0, 0));
        assert!(s.transitions.is_empty());
        assert!(s.threads.is_empty());
        assert_eq!(s.flapping_since, None);
    }

    #[test]
    fn the_window_is_measured_from_the_last_alert_inclusive() {
        let mut g = opened(false);
        g.last_at = t(mins(30));
        let (action, state) = run(Some(&g), Phase::Firing, t(mins(90)), false);
        assert_eq!(action, Action::Fold(FoldReason::Repeat));
        assert_eq!(state.unwrap().count, 2);
        let (action, _) = run(Some(&g), Phase::Firing, t(mins(90) + 1), false);
        assert_eq!(action, Action::Post);
    }

    #[test]
    fn an_open_group_keeps_its_identity() {
        let g = opened(true);
        let a = api_call("Other", &[]);
        let (_, s) = decide(
            Some(&g),
            "other-key",
            &a,
            Kind::Unknown,
            "other title",
            Phase::Firing,
            t(5),
            &settings(),
            true,
        );
        let s = s.unwrap();
        assert_eq!(s.key, KEY);
        assert_eq!(s.kind, Kind::ThrottleSpike);
        assert_eq!(s.title, "Bedrock throttling");
        assert_eq!(s.first_correlation_id, "evt-1");
        assert_eq!(s.opened_at, t(0));
    }

    #[test]
    fn repeats_fold_in_webhook_mode() {
        let (actions, s) = feed(
            opened(false),
            &[(Phase::Firing, 60), (Phase::Firing, 120)],
            false,
        );
        assert_eq!(actions, vec![Action::Fold(FoldReason::Repeat); 2]);
        assert_eq!((s.count, s.folded, s.replies), (3, 2, 0));
        assert_eq!(s.last_at, t(120));
        assert_eq!(s.version, 3);
    }

    #[test]
    fn repeats_fold_in_bot_mode_until_the_root_is_posted() {
        let (action, s) = run(Some(&opened(false)), Phase::Firing, t(60), true);
        assert_eq!(action, Action::Fold(FoldReason::Repeat));
        assert_eq!(s.unwrap().folded, 1);
        // A root posted but the function has no bot token (anymore): still no thread.
        let (action, _) = run(Some(&opened(true)), Phase::Firing, t(60), false);
        assert_eq!(action, Action::Fold(FoldReason::Repeat));
    }

    #[test]
    fn repeats_reply_in_the_thread_until_the_budget_is_spent() {
        let steps: Vec<(Phase, i64)> = (1..=7).map(|i| (Phase::Firing, i * 60)).collect();
        let (actions, s) = feed(opened(true), &steps, true);
        let mut expected = vec![Action::Reply; 5];
        expected.extend([Action::Fold(FoldReason::ReplyBudget); 2]);
        assert_eq!(actions, expected);
        assert_eq!((s.count, s.replies, s.folded), (8, 5, 2));
        assert_eq!(s.version, 8);
    }

    #[test]
    fn no_thread_is_reported_before_the_budget() {
        let mut g = opened(true);
        g.replies = 5;
        let (action, _) = run(Some(&g), Phase::Firing, t(60), false);
        assert_eq!(action, Action::Fold(FoldReason::Repeat));
        let (action, _) = run(Some(&g), Phase::Firing, t(60), true);
        assert_eq!(action, Action::Fold(FoldReason::ReplyBudget));
    }

    #[test]
    fn ok_closes_the_group_with_or_without_threads() {
        for threads in [true, false] {
            let g = opened(threads);
            let (action, s) = run(Some(&g), Phase::Resolved, t(mins(5)), threads);
            assert_eq!(action, Action::Resolve);
            let s = s.unwrap();
            assert_eq!(s.phase, Phase::Resolved);
            assert_eq!(s.transitions, vec![t(mins(5))]);
            assert_eq!((s.count, s.folded, s.replies), (2, 0, 0));
            assert_eq!(s.kind, Kind::ThrottleSpike, "the kind it fired with");
            assert_eq!(s.version, 2);
        }
    }

    #[test]
    fn ok_closes_even_when_the_reply_budget_is_spent() {
        let mut g = opened(true);
        g.replies = 5;
        let (action, _) = run(Some(&g), Phase::Resolved, t(60), true);
        assert_eq!(action, Action::Resolve);
    }

    #[test]
    fn firing_again_after_a_resolve_is_a_reply() {
        let (actions, s) = feed(
            opened(true),
            &[(Phase::Resolved, 60), (Phase::Firing, 120)],
            true,
        );
        assert_eq!(actions, vec![Action::Resolve, Action::Reply]);
        assert_eq!(s.phase, Phase::Firing);
        assert_eq!(s.transitions, vec![t(60), t(120)]);
        assert_eq!(s.replies, 1);

        let (actions, s) = feed(
            opened(false),
            &[(Phase::Resolved, 60), (Phase::Firing, 120)],
            false,
        );
        assert_eq!(
            actions,
            vec![Action::Resolve, Action::Fold(FoldReason::Repeat)]
        );
        assert_eq!(s.phase, Phase::Firing);
        assert_eq!(s.folded, 1);
    }

    #[test]
    fn a_repeated_resolve_is_folded() {
        let (actions, s) = feed(
            opened(true),
            &[(Phase::Resolved, 60), (Phase::Resolved, 120)],
            true,
        );
        assert_eq!(
            actions,
            vec![Action::Resolve, Action::Fold(FoldReason::Repeat)]
        );
        assert_eq!(s.phase, Phase::Resolved);
        assert_eq!(s.transitions, vec![t(60)], "not a phase change");
        assert_eq!((s.count, s.folded), (3, 1));
    }

    /// Four phase changes one minute apart: the fourth reaches the default threshold.
    const FLAPS: [(Phase, i64); 4] = [
        (Phase::Resolved, 60),
        (Phase::Firing, 120),
        (Phase::Resolved, 180),
        (Phase::Firing, 240),
    ];

    #[test]
    fn flapping_onset_with_a_thread_posts_one_notice() {
        let (actions, s) = feed(opened(true), &FLAPS, true);
        assert_eq!(
            actions,
            vec![
                Action::Resolve,
                Action::Reply,
                Action::Resolve,
                Action::FlapNotice
            ]
        );
        assert_eq!(s.flapping_since, Some(t(240)));
        assert_eq!(s.transitions, vec![t(60), t(120), t(180), t(240)]);
        assert_eq!(s.replies, 2, "the notice counts as a reply");
        assert_eq!(s.phase, Phase::Firing);
    }

    #[test]
    fn flapping_onset_is_noticed_even_past_the_reply_budget() {
        let mut g = opened(true);
        g.replies = 5;
        let (actions, s) = feed(g, &FLAPS, true);
        assert_eq!(actions.last(), Some(&Action::FlapNotice));
        assert_eq!(s.replies, 6);
    }

    #[test]
    fn flapping_onset_without_a_thread_is_folded() {
        let (actions, s) = feed(opened(false), &FLAPS, false);
        assert_eq!(
            actions,
            vec![
                Action::Resolve,
                Action::Fold(FoldReason::Repeat),
                Action::Resolve,
                Action::Fold(FoldReason::Flapping)
            ]
        );
        assert_eq!(s.flapping_since, Some(t(240)));
        assert_eq!(s.folded, 2);
    }

    #[test]
    fn a_flapping_group_folds_everything_and_tracks_the_phase() {
        let (_, g) = feed(opened(true), &FLAPS, true);
        let (actions, s) = feed(
            g,
            &[
                (Phase::Resolved, 300),
                (Phase::Resolved, 330),
                (Phase::Firing, 360),
                (Phase::Firing, 390),
                (Phase::Resolved, 420),
            ],
            true,
        );
        assert_eq!(actions, vec![Action::Fold(FoldReason::Flapping); 5]);
        assert_eq!(s.phase, Phase::Resolved);
        assert_eq!(s.flapping_since, Some(t(240)), "not restarted");
        assert_eq!(s.transitions.last(), Some(&t(420)));
        assert_eq!((s.count, s.replies, s.folded), (10, 2, 5));
    }

    #[test]
    fn flapping_clears_after_a_quiet_flap_window() {
        let (_, g) = feed(opened(true), &FLAPS, true);
        // Last transition at 240; flap window 10 min.
        let (action, s) = run(Some(&g), Phase::Firing, t(240 + mins(10) - 1), true);
        assert_eq!(action, Action::Fold(FoldReason::Flapping));
        assert!(s.unwrap().flapping_since.is_some());

        let (action, s) = run(Some(&g), Phase::Firing, t(240 + mins(10)), true);
        assert_eq!(action, Action::Reply, "judged as an ordinary repeat");
        let s = s.unwrap();
        assert_eq!(s.flapping_since, None);
        assert!(s.transitions.is_empty());

        let (action, s) = run(Some(&g), Phase::Resolved, t(240 + mins(11)), true);
        assert_eq!(action, Action::Resolve);
        let s = s.unwrap();
        assert_eq!(s.flapping_since, None);
        assert_eq!(s.transitions, vec![t(240 + mins(11))]);
    }

    #[test]
    fn a_quiet_fold_while_flapping_does_not_extend_it() {
        // Repeats of the same phase are not transitions: the quiet window runs from the last
        // phase change.
        let (_, g) = feed(opened(true), &FLAPS, true);
        let (actions, s) = feed(
            g,
            &[(Phase::Firing, 500), (Phase::Firing, 240 + mins(10))],
            true,
        );
        assert_eq!(
            actions,
            vec![Action::Fold(FoldReason::Flapping), Action::Reply]
        );
        assert_eq!(s.flapping_since, None);
    }

    #[test]
    fn slow_phase_changes_never_flap() {
        let steps: Vec<(Phase, i64)> = (1..=8)
            .map(|i| {
                let phase = if i % 2 == 1 {
                    Phase::Resolved
                } else {
                    Phase::Firing
                };
                (phase, i * mins(11))
            })
            .collect();
        let (actions, s) = feed(opened(true), &steps, true);
        assert!(!actions.contains(&Action::FlapNotice));
        assert!(!actions.contains(&Action::Fold(FoldReason::Flapping)));
        assert_eq!(s.transitions, vec![t(8 * mins(11))]);
        assert_eq!(s.flapping_since, None);
    }

    #[test]
    fn transitions_are_capped_at_twice_the_threshold_newest_kept() {
        let (_, g) = feed(opened(true), &FLAPS, true);
        let steps: Vec<(Phase, i64)> = (0..20)
            .map(|i| {
                let phase = if i % 2 == 0 {
                    Phase::Resolved
                } else {
                    Phase::Firing
                };
                (phase, 300 + i * 10)
            })
            .collect();
        let (_, s) = feed(g, &steps, true);
        assert_eq!(s.transitions.len(), 8);
        let expected: Vec<_> = (12..20).map(|i| t(300 + i * 10)).collect();
        assert_eq!(s.transitions, expected);
    }

    #[test]
    fn a_zero_threshold_turns_flap_detection_off() {
        let mut g = opened(true);
        let settings = NoiseSettings {
            flap_threshold: 0,
            ..NoiseSettings::default()
        };
        let mut actions = Vec::new();
        for (phase, at) in FLAPS {
            let a = if phase == Phase::Firing {
                firing()
            } else {
                ok()
            };
            let (action, s) = decide(
                Some(&g),
                KEY,
                &a,
                Kind::ThrottleSpike,
                "x",
                phase,
                t(at),
                &settings,
                true,
            );
            actions.push(action);
            g = s.unwrap();
        }
        assert_eq!(
            actions,
            vec![
                Action::Resolve,
                Action::Reply,
                Action::Resolve,
                Action::Reply
            ]
        );
        assert_eq!(g.flapping_since, None);
        assert!(g.transitions.len() <= 2);
    }

    #[test]
    fn out_of_order_events_do_not_move_last_at_back() {
        let mut g = opened(true);
        g.last_at = t(600);
        let (action, s) = run(Some(&g), Phase::Firing, t(300), true);
        assert_eq!(action, Action::Reply);
        let s = s.unwrap();
        assert_eq!(s.last_at, t(600));
        assert_eq!(s.count, 2);

        // A late phase change is kept in time order.
        let mut g = opened(true);
        g.phase = Phase::Resolved;
        g.transitions = vec![t(500)];
        let (_, s) = run(Some(&g), Phase::Firing, t(400), true);
        assert_eq!(s.unwrap().transitions, vec![t(400), t(500)]);
    }

    #[test]
    fn a_future_dated_group_is_still_open() {
        let mut g = opened(false);
        g.last_at = t(mins(500));
        let (action, s) = run(Some(&g), Phase::Firing, t(0), false);
        assert_eq!(action, Action::Fold(FoldReason::Repeat));
        assert_eq!(s.unwrap().last_at, t(mins(500)));
    }

    #[test]
    fn versions_increase_by_one_per_write_and_saturate() {
        let (_, s) = feed(
            opened(true),
            &[
                (Phase::Firing, 10),
                (Phase::Resolved, 20),
                (Phase::Resolved, 30),
            ],
            true,
        );
        assert_eq!(s.version, 4);
        let mut g = opened(true);
        g.version = u64::MAX;
        g.count = u32::MAX;
        g.replies = u32::MAX;
        g.folded = u32::MAX;
        let (action, s) = run(Some(&g), Phase::Firing, t(10), true);
        assert_eq!(action, Action::Fold(FoldReason::ReplyBudget));
        let s = s.unwrap();
        assert_eq!(
            (s.version, s.count, s.folded),
            (u64::MAX, u32::MAX, u32::MAX)
        );
    }

    #[test]
    fn inconsistent_state_is_repaired_not_trusted() {
        // Flapping with no transitions recorded: quiet, so it clears.
        let mut g = opened(true);
        g.flapping_since = Some(t(0));
        let (action, s) = run(Some(&g), Phase::Firing, t(10), true);
        assert_eq!(action, Action::Reply);
        assert_eq!(s.unwrap().flapping_since, None);

        // Transitions older than the flap window and unsorted junk are dropped or ordered.
        let mut g = opened(true);
        g.transitions = vec![t(mins(-100)), t(mins(-50))];
        let (action, s) = run(Some(&g), Phase::Resolved, t(10), true);
        assert_eq!(action, Action::Resolve);
        assert_eq!(s.unwrap().transitions, vec![t(10)]);
    }

    #[test]
    fn huge_settings_do_not_panic() {
        let settings = NoiseSettings {
            group_window: Duration::MAX,
            flap_window: Duration::MAX,
            flap_threshold: u32::MAX,
            max_replies: u32::MAX,
            ..NoiseSettings::default()
        };
        let mut g = opened(true);
        g.last_at = DateTime::<Utc>::MIN_UTC;
        let (action, s) = decide(
            Some(&g),
            KEY,
            &ok(),
            Kind::Resolved,
            "x",
            Phase::Resolved,
            DateTime::<Utc>::MAX_UTC,
            &settings,
            true,
        );
        assert_eq!(action, Action::Resolve);
        assert_eq!(s.unwrap().last_at, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn actions_serialize_with_their_reason() {
        assert_eq!(
            serde_json::to_value(Action::Fold(FoldReason::ReplyBudget)).unwrap(),
            serde_json::json!({"action": "fold", "reason": "reply_budget"})
        );
        assert_eq!(
            serde_json::to_value(Action::FlapNotice).unwrap(),
            serde_json::json!({"action": "flap_notice"})
        );
        let g = opened(true);
        let back: GroupState = serde_json::from_value(serde_json::to_value(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }

    // -- rate limit ------------------------------------------------------------------------

    const INTERVAL: Duration = Duration::from_millis(1_200);
    const MAX_WAIT: Duration = Duration::from_secs(4);

    fn ms(n: i64) -> TimeDelta {
        TimeDelta::milliseconds(n)
    }

    #[test]
    fn an_idle_channel_is_granted_at_once() {
        let now = t(0);
        assert_eq!(
            reserve(None, now, 1, INTERVAL, MAX_WAIT),
            Slot::Granted {
                wait: Duration::ZERO,
                new_tat: now + ms(1_200)
            }
        );
        // A tat in the past is an idle channel too.
        assert_eq!(
            reserve(Some(t(-60)), now, 1, INTERVAL, MAX_WAIT),
            Slot::Granted {
                wait: Duration::ZERO,
                new_tat: now + ms(1_200)
            }
        );
    }

    #[test]
    fn back_to_back_calls_are_spaced_by_the_interval() {
        let now = t(0);
        let mut tat = None;
        let mut waits = Vec::new();
        for _ in 0..4 {
            match reserve(tat, now, 1, INTERVAL, MAX_WAIT) {
                Slot::Granted { wait, new_tat } => {
                    waits.push(wait);
                    tat = Some(new_tat);
                }
                Slot::Limited { .. } => panic!("limited too early"),
            }
        }
        assert_eq!(
            waits,
            vec![
                Duration::ZERO,
                Duration::from_millis(1_200),
                Duration::from_millis(2_400),
                Duration::from_millis(3_600)
            ]
        );
        assert_eq!(tat, Some(now + ms(4_800)));
        // The fifth would wait 4.8 s > 4 s.
        assert_eq!(
            reserve(tat, now, 1, INTERVAL, MAX_WAIT),
            Slot::Limited {
                free_at: now + ms(4_800)
            }
        );
        // Half a second later the slot is 4.3 s away: still limited; 1 s later, granted.
        assert!(matches!(
            reserve(tat, now + ms(500), 1, INTERVAL, MAX_WAIT),
            Slot::Limited { .. }
        ));
        assert_eq!(
            reserve(tat, now + ms(1_000), 1, INTERVAL, MAX_WAIT),
            Slot::Granted {
                wait: Duration::from_millis(3_800),
                new_tat: now + ms(6_000)
            }
        );
    }

    #[test]
    fn a_wait_of_exactly_max_wait_is_granted() {
        let now = t(0);
        assert_eq!(
            reserve(Some(now + ms(4_000)), now, 1, INTERVAL, MAX_WAIT),
            Slot::Granted {
                wait: MAX_WAIT,
                new_tat: now + ms(5_200)
            }
        );
        assert_eq!(
            reserve(Some(now + ms(4_001)), now, 1, INTERVAL, MAX_WAIT),
            Slot::Limited {
                free_at: now + ms(4_001)
            }
        );
        assert_eq!(
            reserve(Some(now + ms(1)), now, 1, INTERVAL, Duration::ZERO),
            Slot::Limited {
                free_at: now + ms(1)
            }
        );
    }

    #[test]
    fn several_slots_take_several_intervals() {
        let now = t(0);
        assert_eq!(
            reserve(Some(now + ms(1_000)), now, 3, INTERVAL, MAX_WAIT),
            Slot::Granted {
                wait: Duration::from_millis(1_000),
                new_tat: now + ms(1_000 + 3_600)
            }
        );
        assert_eq!(
            reserve(None, now, 0, INTERVAL, MAX_WAIT),
            reserve(None, now, 1, INTERVAL, MAX_WAIT),
            "0 slots is 1"
        );
    }

    #[test]
    fn reserve_saturates_instead_of_overflowing() {
        let now = t(0);
        assert_eq!(
            reserve(None, now, u32::MAX, Duration::MAX, MAX_WAIT),
            Slot::Granted {
                wait: Duration::ZERO,
                new_tat: DateTime::<Utc>::MAX_UTC
            }
        );
        assert_eq!(
            reserve(
                Some(DateTime::<Utc>::MAX_UTC),
                DateTime::<Utc>::MIN_UTC,
                1,
                INTERVAL,
                Duration::MAX
            ),
            Slot::Granted {
                wait: DateTime::<Utc>::MAX_UTC
                    .signed_duration_since(DateTime::<Utc>::MIN_UTC)
                    .to_std()
                    .unwrap(),
                new_tat: DateTime::<Utc>::MAX_UTC
            }
        );
    }

    // -- digest ----------------------------------------------------------------------------

    fn digest(count: u32, titles: &[&str]) -> Digest {
        Digest {
            channel: "#ai-oncall".into(),
            count,
            since: DateTime::parse_from_rfc3339("2025-03-04T09:31:05.250Z")
                .unwrap()
                .with_timezone(&Utc),
            titles: titles.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn digest_line_lists_titles_and_counts_the_rest() {
        assert_eq!(
            digest_line(&digest(3, &["Bedrock throttling", "Guardrail deleted"])),
            "Held back by the rate limit since 09:31:05 UTC: 3 alerts — Bedrock throttling, \
             Guardrail deleted, … and 1 more"
        );
        assert_eq!(
            digest_line(&digest(2, &["a", "b"])),
            "Held back by the rate limit since 09:31:05 UTC: 2 alerts — a, b"
        );
        assert_eq!(
            digest_line(&digest(1, &["only"])),
            "Held back by the rate limit since 09:31:05 UTC: 1 alert — only"
        );
        assert_eq!(
            digest_line(&digest(5, &[])),
            "Held back by the rate limit since 09:31:05 UTC: 5 alerts"
        );
    }

    #[test]
    fn digest_line_shows_at_most_digest_titles() {
        let names: Vec<String> = (1..=15).map(|i| format!("title {i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let line = digest_line(&digest(12, &refs[..10]));
        assert!(line.ends_with("title 9, title 10, … and 2 more"), "{line}");
        assert!(line.contains(": 12 alerts — title 1, title 2,"), "{line}");

        // More titles stored than allowed: only the first DIGEST_TITLES are listed.
        let line = digest_line(&digest(15, &refs));
        assert!(line.ends_with("title 10, … and 5 more"), "{line}");
        assert!(!line.contains("title 11"));

        // A count lower than the titles (inconsistent) does not underflow.
        let line = digest_line(&digest(1, &["a", "b"]));
        assert!(line.ends_with("1 alert — a, b"), "{line}");
    }

    #[test]
    fn digest_line_is_one_safe_line() {
        let long = "x".repeat(200);
        let line = digest_line(&digest(
            4,
            &["first\nsecond\r\nthird", "  \n ", "<!channel> ping", &long],
        ));
        assert!(!line.contains(['\n', '\r', '<', '>']), "{line}");
        assert!(
            line.contains("— first second third, ‹!channel› ping, "),
            "{line}"
        );
        let cut = format!("{}…", "x".repeat(DIGEST_TITLE_CHARS - 1));
        assert!(line.contains(&cut), "{line}");
        assert!(!line.contains(&"x".repeat(DIGEST_TITLE_CHARS)));
        assert!(line.ends_with(", … and 1 more"), "{line}");
    }

    // -- ledger ----------------------------------------------------------------------------

    #[test]
    fn ledger_ids_are_stable() {
        assert_eq!(FoldReason::NothingOpen.as_str(), "nothing_open");
        assert_eq!(Outcome::RateLimited.as_str(), "rate_limited");
        assert_eq!(
            serde_json::to_value(Outcome::DeadLettered).unwrap(),
            serde_json::json!(Outcome::DeadLettered.as_str())
        );
        let settings = NoiseSettings::default();
        assert_eq!(settings.flap_threshold, 4);
        assert!(settings.claim_lease < settings.claim_ttl);
    }
}
