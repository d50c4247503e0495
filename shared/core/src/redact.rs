//! The content policy of README.md "Content policy" and secret masking.
//!
//! Invariant: every string a renderer emits has passed through [`Redactor::free_text`],
//! [`Redactor::text`] or [`Redactor::identifier`]. Secrets are masked under every policy,
//! `full` included, and always *before* truncation, so a cut can never expose part of one.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, NoExpand, Regex};
use serde::{Deserialize, Serialize};

/// How much free text a notification may carry. Prompt and completion text is never
/// forwarded under any policy; secrets are always masked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentPolicy {
    /// Identifiers, names, numbers and times only: no descriptions, reasons or messages.
    Metadata,
    /// Free text allowed, with secrets masked (default).
    #[default]
    Redacted,
    /// Free text and every allow-listed request parameter; secrets still masked.
    Full,
}

impl ContentPolicy {
    /// The configuration spelling: `metadata`, `redacted`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Redacted => "redacted",
            Self::Full => "full",
        }
    }
}

impl std::fmt::Display for ContentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every mask starts with this, so later passes can recognise text that is already masked.
const MARKER_PREFIX: &str = "[REDACTED:";

/// What a [`Redactor`] whose patterns failed to compile returns for every input: failing
/// closed (nothing readable) is better than failing open (secrets pass) or panicking.
const UNAVAILABLE: &str = "[REDACTED:redactor-unavailable]";

/// Credential shapes that are unambiguous wherever they appear, ARN-looking text included.
/// Order matters: the PEM block goes first because its body would otherwise be eaten line by
/// line by nothing (64-char lines match no other rule), and JWTs go before `Bearer`.
const EXACT: &[(&str, &str)] = &[
    (
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
        "[REDACTED:private-key]",
    ),
    (
        r#"(?:https?://)?hooks\.slack(?:-gov)?\.com/[^\s"'<>|)\]}]*"#,
        "[REDACTED:slack-webhook]",
    ),
    (
        r"(?:xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]+",
        "[REDACTED:slack-token]",
    ),
    (
        r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
        "[REDACTED:github-token]",
    ),
    (
        r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        "[REDACTED:jwt]",
    ),
    // AI-provider API keys. Each needs its provider's prefix and a long random body, so words
    // such as `sk-learn`, `hf_hub` or `xai-grok-2` stay readable; the ASCII word boundary keeps
    // `disk-…` or `task_…` from starting a match. Anthropic and OpenAI project keys go before
    // the generic `sk-` rule, whose alphanumeric body cannot cross their dashes anyway.
    (
        r"(?-u:\b)sk-ant-[A-Za-z0-9_-]{32,}",
        "[REDACTED:anthropic-key]",
    ),
    (
        r"(?-u:\b)sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,}",
        "[REDACTED:openai-key]",
    ),
    (r"(?-u:\b)sk-[A-Za-z0-9]{32,}", "[REDACTED:api-key]"),
    (
        r"(?-u:\b)hf_[A-Za-z0-9]{30,}",
        "[REDACTED:huggingface-token]",
    ),
    (
        r"(?-u:\b)AIza[0-9A-Za-z_-]{35}",
        "[REDACTED:google-api-key]",
    ),
    (r"(?-u:\b)xai-[A-Za-z0-9]{32,}", "[REDACTED:xai-key]"),
    (r"(?-u:\b)gsk_[A-Za-z0-9]{32,}", "[REDACTED:groq-key]"),
    // Access key ids only. `AROA`/`AIDA` unique ids are identifiers (they appear in every
    // CloudTrail `principalId`) and cannot sign a request, so they stay readable.
    (
        r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        "[REDACTED:aws-access-key]",
    ),
];

/// `Bearer <token>`; 16+ characters so prose such as "bearer tokens expire" survives.
const BEARER: &str = r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}";

/// [`BEARER`] without its word boundary, for [`Rules::any`] only: it matches wherever
/// `BEARER` does, and keeps the combined filter on the lazy DFA for non-ASCII text (a Unicode
/// `\b` would not).
const BEARER_ANYWHERE: &str = r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}";

/// ARNs, which the heuristic rules below must not touch (a Secrets Manager ARN contains
/// `:secret:`, a role path can be a 40-character mixed-case run). An `=` stays inside the
/// match, so a `key=value` in the resource part is masked by [`ARN_KEY_VALUE`] instead of
/// leaking behind an ARN that stopped at the `=`.
const ARN: &str = r#"arn:aws[a-z-]*:[^\s"'<>,;|()\[\]{}?&]*"#;

/// The key names whose values are secrets: a key must *end* with one of these words.
macro_rules! secret_key_words {
    () => {
        "(?:password|passwd|passphrase|pwd|secret|secret[_-]?key|secret[_-]?access[_-]?key|client[_-]?secret|token|api[_-]?key|apikey|private[_-]?key|credentials?|authorization|signature)"
    };
}

/// `password=...`, `"SecretAccessKey": "..."`, `X-Amz-Security-Token=...`: the key must *end*
/// with a secret-ish word, so `InputTokenCount=12` and `secretId=...` are left alone. A quoted
/// value that a cut left unterminated is masked to the end.
const KEY_VALUE: &str = concat!(
    r#"(?i)(?P<key>[A-Za-z0-9_.-]*"#,
    secret_key_words!(),
    r#")(?P<sep>"?\s*[:=]\s*)(?P<val>"[^"]*"?|'[^']*'?|[^\s"',;&}\])]+)"#
);

/// `token=...` inside an ARN (`function:x/token=abc`, `secret:password=...`). Only `=`
/// separates: `:` is the ARN's own separator (`:secret:prod/db` is a name, not a value). The
/// value runs to the end of the ARN, so a value with `/` or `:` in it is masked whole.
const ARN_KEY_VALUE: &str = concat!(
    r#"(?i)(?P<key>[A-Za-z0-9_.-]*"#,
    secret_key_words!(),
    r#")=(?P<val>.+)"#
);

/// Maximal runs of standard base64: a standalone 40-character run is the shape of an AWS
/// secret access key, a run of 100+ the shape of an STS session token.
const BASE64_RUN: &str = r"[A-Za-z0-9/+]{40,}={0,2}";

#[derive(Debug, Clone)]
struct Rules {
    /// Every pattern that can change a string, as one alternation ([`EXACT`],
    /// [`BEARER_ANYWHERE`], [`KEY_VALUE`], [`BASE64_RUN`]; whatever [`ARN_KEY_VALUE`] masks,
    /// [`KEY_VALUE`] matches too). A string it does not match is
    /// returned unchanged by [`Rules::mask`] (none of those patterns has a look-around that
    /// could match in a part of the string but not in the whole), so the common case of a
    /// string without secrets costs one scan instead of ten.
    any: Regex,
    exact: Vec<(Regex, &'static str)>,
    bearer: Regex,
    arn: Regex,
    arn_key_value: Regex,
    key_value: Regex,
    base64_run: Regex,
}

impl Rules {
    fn compile() -> Result<Self, regex::Error> {
        let exact = EXACT
            .iter()
            .map(|(pattern, marker)| Regex::new(pattern).map(|re| (re, *marker)))
            .collect::<Result<Vec<_>, _>>()?;
        let any = EXACT
            .iter()
            .map(|(pattern, _)| *pattern)
            .chain([BEARER_ANYWHERE, KEY_VALUE, BASE64_RUN])
            .map(|pattern| format!("(?:{pattern})"))
            .collect::<Vec<_>>()
            .join("|");
        Ok(Self {
            any: Regex::new(&any)?,
            exact,
            bearer: Regex::new(BEARER)?,
            arn: Regex::new(ARN)?,
            arn_key_value: Regex::new(ARN_KEY_VALUE)?,
            key_value: Regex::new(KEY_VALUE)?,
            base64_run: Regex::new(BASE64_RUN)?,
        })
    }

    fn mask<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if !self.any.is_match(s) {
            return Cow::Borrowed(s);
        }
        self.mask_each(s)
    }

    /// Every rule in turn (what [`Rules::mask`] does to a string [`Rules::any`] matches).
    fn mask_each<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut cur = Cow::Borrowed(s);
        for (re, marker) in &self.exact {
            let replaced = match re.replace_all(&cur, NoExpand(marker)) {
                Cow::Owned(o) => Some(o),
                Cow::Borrowed(_) => None,
            };
            if let Some(o) = replaced {
                cur = Cow::Owned(o);
            }
        }
        let replaced = match self
            .bearer
            .replace_all(&cur, "${1} [REDACTED:bearer-token]")
        {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(_) => None,
        };
        if let Some(o) = replaced {
            cur = Cow::Owned(o);
        }
        let replaced = match self.mask_outside_arns(&cur) {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(_) => None,
        };
        match replaced {
            Some(o) => Cow::Owned(o),
            None => cur,
        }
    }

    fn mask_outside_arns<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if !self.arn.is_match(s) {
            return self.mask_heuristic(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for m in self.arn.find_iter(s) {
            out.push_str(&self.mask_heuristic(s.get(last..m.start()).unwrap_or_default()));
            out.push_str(&self.mask_arn(m.as_str()));
            last = m.end();
        }
        out.push_str(&self.mask_heuristic(s.get(last..).unwrap_or_default()));
        Cow::Owned(out)
    }

    /// An ARN is kept as it is, except for the value of a secret-named `key=value` in it.
    fn mask_arn<'a>(&self, arn: &'a str) -> Cow<'a, str> {
        self.arn_key_value.replace_all(arn, |c: &Captures<'_>| {
            let key = c.name("key").map_or("", |m| m.as_str());
            format!("{key}=[REDACTED:secret]")
        })
    }

    fn mask_heuristic<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let kv = self.key_value.replace_all(s, |c: &Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let val = c.name("val").map_or("", |m| m.as_str());
            let bare = val.trim_matches(|ch| ch == '"' || ch == '\'');
            if bare.is_empty() || bare.starts_with(MARKER_PREFIX) || bare.starts_with("arn:") {
                return whole.to_owned();
            }
            let key = c.name("key").map_or("", |m| m.as_str());
            let sep = c.name("sep").map_or("", |m| m.as_str());
            format!("{key}{sep}[REDACTED:secret]")
        });
        let b64 = match self.base64_run.replace_all(&kv, |c: &Captures<'_>| {
            let run = c.get(0).map_or("", |m| m.as_str());
            classify_base64_run(run).map_or_else(|| run.to_owned(), str::to_owned)
        }) {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(_) => None,
        };
        match b64 {
            Some(o) => Cow::Owned(o),
            None => kv,
        }
    }
}

/// The marker for a base64 run that looks like a credential, or `None` for an ordinary run.
/// Random key material has upper case, lower case and digits; paths, hex digests and words
/// rarely have all three.
fn classify_base64_run(run: &str) -> Option<&'static str> {
    let body = run.trim_end_matches('=');
    let mixed = body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_digit());
    if !mixed {
        return None;
    }
    // ASCII only, so bytes are characters.
    if body.len() == 40 && body.len() == run.len() {
        Some("[REDACTED:aws-secret-key]")
    } else if body.len() >= 100 {
        Some("[REDACTED:session-token]")
    } else {
        None
    }
}

/// Masks secrets and applies the [`ContentPolicy`]. Built once (the patterns are compiled in
/// [`Redactor::new`]) and shared by every renderer.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// `None` only if a constant pattern failed to compile, which a unit test rules out; the
    /// redactor then masks everything rather than panic in a Lambda.
    rules: Option<Rules>,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

static SHARED: LazyLock<Redactor> = LazyLock::new(Redactor::new);

impl Redactor {
    /// Compiles the patterns. Cheap enough to call once per process; use
    /// [`Redactor::shared`] when a long-lived instance is not at hand.
    pub fn new() -> Self {
        Self {
            rules: Rules::compile().ok(),
        }
    }

    /// A process-wide instance, compiled on first use.
    pub fn shared() -> &'static Redactor {
        &SHARED
    }

    /// Whether every pattern compiled (always true in a tested build). A redactor that is not
    /// complete masks every string entirely.
    pub fn is_complete(&self) -> bool {
        self.rules.is_some()
    }

    /// Replaces every secret in `s` with a `[REDACTED:<kind>]` marker, under every policy.
    /// ARNs, account ids, UUIDs and request ids are left intact.
    pub fn mask_secrets<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match &self.rules {
            Some(rules) => rules.mask(s),
            None => Cow::Borrowed(UNAVAILABLE),
        }
    }

    /// Free text from the outside world (alarm descriptions and reasons, error messages):
    /// `None` under [`ContentPolicy::Metadata`] or when nothing readable is left; otherwise
    /// masked, stripped of control characters and truncated to `max_chars` with "…".
    pub fn free_text(&self, s: &str, policy: ContentPolicy, max_chars: usize) -> Option<String> {
        if policy == ContentPolicy::Metadata {
            return None;
        }
        let out = self.text(s, max_chars);
        (!out.trim().is_empty()).then_some(out)
    }

    /// Text vigil wrote itself but that may quote values (summaries, evidence, runbook steps):
    /// kept under every policy, masked, stripped of control characters (newlines kept) and
    /// truncated to `max_chars`.
    pub fn text(&self, s: &str, max_chars: usize) -> String {
        let masked = self.mask_secrets(s);
        let clean = sanitize(&masked, true);
        truncate(&clean, max_chars).into_owned()
    }

    /// A name, id or ARN: masked (cheap insurance), forced onto one line, truncated.
    pub fn identifier(&self, s: &str, max_chars: usize) -> String {
        let masked = self.mask_secrets(s);
        let clean = sanitize(&masked, false);
        truncate(clean.trim(), max_chars).into_owned()
    }

    /// A CloudTrail `userAgent`: under [`ContentPolicy::Metadata`] only its product tokens
    /// ([`user_agent_products`]), otherwise the whole string; masked, on one line, truncated.
    /// `None` when nothing is left.
    pub fn user_agent(&self, s: &str, policy: ContentPolicy, max_chars: usize) -> Option<String> {
        let kept = match policy {
            ContentPolicy::Metadata => Cow::Owned(user_agent_products(s)),
            ContentPolicy::Redacted | ContentPolicy::Full => Cow::Borrowed(s),
        };
        Some(self.identifier(&kept, max_chars)).filter(|v| !v.is_empty())
    }

    /// Text that may carry prompt or completion content (see [`error_message_is_content`]):
    /// shown only under [`ContentPolicy::Full`], then like [`Redactor::free_text`].
    pub fn content_text(&self, s: &str, policy: ContentPolicy, max_chars: usize) -> Option<String> {
        if policy != ContentPolicy::Full {
            return None;
        }
        self.free_text(s, policy, max_chars)
    }

    /// An API call's `errorMessage`: content ([`Redactor::content_text`]) for the model
    /// runtime calls of [`error_message_is_content`], free text otherwise.
    pub fn error_message(
        &self,
        s: &str,
        event_source: &str,
        event_name: &str,
        policy: ContentPolicy,
        max_chars: usize,
    ) -> Option<String> {
        if error_message_is_content(event_source, event_name) {
            self.content_text(s, policy, max_chars)
        } else {
            self.free_text(s, policy, max_chars)
        }
    }
}

/// The most product tokens [`user_agent_products`] keeps.
const MAX_PRODUCTS: usize = 12;

/// The product tokens of a `User-Agent` (RFC 9110 §10.1.5): `name/version` pairs whose version
/// starts with a digit (`aws-cli/2.15.0`, `Python/3.11`), in order. Parenthesised comments,
/// bare words and `name/value` settings (`exe/x86_64`, `command/s3.ls`, `md/…`) are dropped:
/// whoever makes the call writes the whole string, so anything but a plain product and version
/// is free text. A bare AWS service host (`lambda.amazonaws.com`, what CloudTrail logs for calls
/// a service makes) is kept as the only product. Brackets and commas (the console's
/// `[S3Console/0.4, …]`) separate tokens.
pub fn user_agent_products(ua: &str) -> String {
    let trimmed = ua.trim();
    if is_service_host(trimmed) {
        return trimmed.to_owned();
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    fn flush<'a>(ua: &'a str, start: &mut Option<usize>, end: usize, kept: &mut Vec<&'a str>) {
        if let Some(from) = start.take()
            && let Some(token) = ua.get(from..end)
            && kept.len() < MAX_PRODUCTS
            && is_product_token(token)
        {
            kept.push(token);
        }
    }
    for (i, c) in ua.char_indices() {
        match c {
            '(' => {
                flush(ua, &mut start, i, &mut kept);
                depth = depth.saturating_add(1);
            }
            ')' => {
                flush(ua, &mut start, i, &mut kept);
                depth = depth.saturating_sub(1);
            }
            _ if depth > 0 => {}
            c if c.is_whitespace() || matches!(c, '[' | ']' | ',' | ';') => {
                flush(ua, &mut start, i, &mut kept);
            }
            _ => {
                if start.is_none() {
                    start = Some(i);
                }
            }
        }
    }
    if depth == 0 {
        flush(ua, &mut start, ua.len(), &mut kept);
    }
    kept.join(" ")
}

/// `name/version`: a name of letters, digits and `._+-` starting with a letter (at most 64),
/// a version starting with a digit, of digits, letters and `._+-` (at most 32).
fn is_product_token(token: &str) -> bool {
    let Some((name, version)) = token.split_once('/') else {
        return false;
    };
    let word = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
    };
    name.len() <= 64
        && version.len() <= 32
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && version.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && word(name)
        && word(version)
}

/// `<service>.amazonaws.com`, the whole user agent of calls an AWS service makes.
fn is_service_host(s: &str) -> bool {
    s.strip_suffix(".amazonaws.com").is_some_and(|service| {
        !service.is_empty()
            && service.len() <= 64
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
    })
}

/// Event sources of the Bedrock data plane, where every call carries model input.
const MODEL_RUNTIME_SOURCES: &[&str] = &[
    "bedrock-runtime.amazonaws.com",
    "bedrock-agent-runtime.amazonaws.com",
    "bedrock-agentcore.amazonaws.com",
];

/// Bedrock calls that carry a prompt or model input, under whichever source CloudTrail logs
/// them (`bedrock.amazonaws.com` for InvokeModel and Converse).
const MODEL_RUNTIME_CALLS: &[&str] = &[
    "InvokeModel",
    "InvokeModelWithResponseStream",
    "InvokeModelWithBidirectionalStream",
    "Converse",
    "ConverseStream",
    "CountTokens",
    "ApplyGuardrail",
    "StartAsyncInvoke",
    "InvokeAgent",
    "InvokeInlineAgent",
    "InvokeFlow",
    "Retrieve",
    "RetrieveAndGenerate",
    "RetrieveAndGenerateStream",
    "Rerank",
    "GenerateQuery",
    "InvokeAgentRuntime",
];

/// Whether the `errorMessage` of this call is content rather than free text: a model runtime
/// call's validation error can echo the prompt ("Malformed input request: …"), so it is shown
/// only under [`ContentPolicy::Full`].
pub fn error_message_is_content(event_source: &str, event_name: &str) -> bool {
    let source = event_source.trim().to_ascii_lowercase();
    MODEL_RUNTIME_SOURCES.contains(&source.as_str())
        || (source.starts_with("bedrock")
            && MODEL_RUNTIME_CALLS
                .iter()
                .any(|n| n.eq_ignore_ascii_case(event_name.trim())))
}

/// [`Redactor::mask_secrets`] on the process-wide [`Redactor::shared`] instance.
pub fn mask_secrets(s: &str) -> String {
    Redactor::shared().mask_secrets(s).into_owned()
}

/// Removes what could rewrite a terminal or confuse a reader: C0/C1 control characters
/// (ESC sequences included) and the invisible characters of [`is_invisible`] (zero-width
/// characters, bidirectional marks, embeddings, overrides and isolates, the byte order mark,
/// Unicode tags). Tabs become spaces; newlines are kept when `keep_newlines`, otherwise they
/// become spaces; the Unicode line and paragraph separators are treated as newlines.
pub(crate) fn sanitize(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || (c == '\n' && !keep_newlines)
            || is_invisible(c)
            || is_line_separator(c)
    };
    // Printable ASCII (nearly every string) has nothing to remove: one pass over the bytes.
    // Anything else (C0, DEL, newlines, non-ASCII) gets the full check.
    let printable_ascii = s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable_ascii || !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => {}
            '\t' => out.push(' '),
            '\n' if !keep_newlines => out.push(' '),
            c if is_line_separator(c) => out.push(if keep_newlines { '\n' } else { ' ' }),
            c if bad(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters that take no room on screen but change what a reader sees or copies: they can
/// hide text, split a word a filter looks for (`@chan\u{200B}nel`), or reorder what follows
/// (a right-to-left override makes `exe.txt` read `txt.exe`). Format characters of Unicode
/// category Cf that matter in an alert: soft hyphen, Arabic letter mark, Mongolian vowel
/// separator, zero-width space / non-joiner / joiner, left-to-right and right-to-left marks,
/// bidirectional embeddings, overrides and isolates, word joiner and invisible operators,
/// deprecated format characters, the byte order mark (zero-width no-break space), interlinear
/// annotation characters and the Unicode tag characters (invisible ASCII look-alikes).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: line breaks to a browser or a
/// JavaScript client, invisible to a check for `\n`.
fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Cuts `s` to at most `max_chars` characters on a character boundary, ending with "…" when
/// anything was cut.
pub(crate) fn truncate(s: &str, max_chars: usize) -> Cow<'_, str> {
    // No more bytes than allowed characters: nothing to cut, and no need to count.
    if s.len() <= max_chars {
        return Cow::Borrowed(s);
    }
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some(_) if max_chars == 0 => Cow::Borrowed(""),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            let mut out = s.get(..end).unwrap_or_default().to_owned();
            out.push('…');
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----";

    fn mask(s: &str) -> String {
        Redactor::new().mask_secrets(s).into_owned()
    }

    #[test]
    fn every_pattern_compiles() {
        assert!(Redactor::new().is_complete());
        assert!(Redactor::shared().is_complete());
    }

    #[test]
    fn aws_access_key_ids_are_masked() {
        for key in [
            ACCESS_KEY,
            "ASIAY34FZKBOKMUTVV7A",
            "ABIA1234567890ABCDEF",
            "ACCA1234567890ABCDEF",
        ] {
            let out = mask(&format!("key {key} used"));
            assert_eq!(out, "key [REDACTED:aws-access-key] used");
        }
        assert_eq!(
            mask(&format!("principalId={ACCESS_KEY}:alice")),
            "principalId=[REDACTED:aws-access-key]:alice"
        );
    }

    #[test]
    fn role_unique_ids_are_identifiers_and_survive() {
        let s = "principalId AROAEXAMPLEID123456789:alice";
        assert_eq!(mask(s), s);
    }

    #[test]
    fn a_standalone_secret_access_key_is_masked() {
        assert_eq!(
            mask(&format!("the key is {SECRET_KEY}.")),
            "the key is [REDACTED:aws-secret-key]."
        );
        assert_eq!(
            mask(&format!("{{\"k\":\"{SECRET_KEY}\"}}")),
            "{\"k\":\"[REDACTED:aws-secret-key]\"}"
        );
    }

    #[test]
    fn a_secret_key_in_a_key_value_pair_is_masked() {
        let out = mask(&format!("aws_secret_access_key={SECRET_KEY}"));
        assert!(!out.contains(SECRET_KEY), "{out}");
        let out = mask(&format!("\"SecretAccessKey\": \"{SECRET_KEY}\""));
        assert!(!out.contains(SECRET_KEY), "{out}");
    }

    #[test]
    fn session_tokens_are_masked() {
        let token = format!(
            "FwoGZXIvYXdzEBYaDH{}Zx9+/Q==",
            "a1B2c3D4e5F6g7H8i9J0".repeat(6)
        );
        let out = mask(&format!("token {token} end"));
        assert_eq!(out, "token [REDACTED:session-token] end");
        let iq = format!(
            "IQoJb3JpZ2luX2Vj{}",
            "EJr//////////wEaCXVzLWVhc3QtMSJH".repeat(4)
        );
        assert!(!mask(&iq).contains("IQoJb3JpZ2luX2Vj"));
    }

    #[test]
    fn slack_tokens_and_webhooks_are_masked() {
        assert_eq!(
            mask("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx here"),
            "[REDACTED:slack-token] here"
        );
        assert_eq!(mask("xoxp-1-2-3-abc"), "[REDACTED:slack-token]");
        assert_eq!(mask("xapp-1-A0123-456-abcdef"), "[REDACTED:slack-token]");
        assert_eq!(
            mask("post to https://hooks.slack.com/services/T000/B000/XXXX now"),
            "post to [REDACTED:slack-webhook] now"
        );
        assert_eq!(
            mask("<https://hooks.slack.com/workflows/T1/A2/3/abc|hook>"),
            "<[REDACTED:slack-webhook]|hook>"
        );
    }

    #[test]
    fn github_tokens_are_masked() {
        assert_eq!(
            mask("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "[REDACTED:github-token]"
        );
        assert_eq!(
            mask("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
            "[REDACTED:github-token]"
        );
    }

    #[test]
    fn jwts_and_bearer_tokens_are_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(mask(&format!("Bearer {jwt}")), "Bearer [REDACTED:jwt]");
        assert_eq!(
            mask("Authorization: Bearer abcdef0123456789abcdef"),
            "Authorization: [REDACTED:secret] [REDACTED:bearer-token]"
        );
        assert_eq!(mask("bearer tokens expire"), "bearer tokens expire");
    }

    #[test]
    fn secret_key_value_pairs_are_masked() {
        assert_eq!(mask("password=hunter2"), "password=[REDACTED:secret]");
        assert_eq!(
            mask("db_password: \"correct horse\" ok"),
            "db_password: [REDACTED:secret] ok"
        );
        assert_eq!(mask("{\"token\":\"abc\"}"), "{\"token\":[REDACTED:secret]}");
        assert_eq!(mask("secret=s3cr3t&x=1"), "secret=[REDACTED:secret]&x=1");
        assert_eq!(
            mask("X-Amz-Security-Token=abc123"),
            "X-Amz-Security-Token=[REDACTED:secret]"
        );
        assert_eq!(mask("api_key = 12345"), "api_key = [REDACTED:secret]");
        assert_eq!(
            mask("password=\"cut off here"),
            "password=[REDACTED:secret]"
        );
    }

    /// Realistic shapes (random bodies, not real keys), built at run time so no scanner
    /// mistakes this file for a leak.
    fn ai_keys() -> Vec<(String, &'static str)> {
        let body = "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hL";
        vec![
            (
                format!("sk-ant-api03-{body}{body}-{body}_xYAA"),
                "[REDACTED:anthropic-key]",
            ),
            (
                format!("sk-ant-admin01-{body}{body}"),
                "[REDACTED:anthropic-key]",
            ),
            (
                format!("sk-proj-{body}_{body}-{body}"),
                "[REDACTED:openai-key]",
            ),
            (format!("sk-svcacct-{body}{body}"), "[REDACTED:openai-key]"),
            (format!("sk-{body}T3BlbkFJ{body}"), "[REDACTED:api-key]"),
            (format!("sk-{body}"), "[REDACTED:api-key]"),
            (format!("hf_{body}Qz"), "[REDACTED:huggingface-token]"),
            (
                "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".to_owned(),
                "[REDACTED:google-api-key]",
            ),
            (format!("xai-{body}{body}{body}"), "[REDACTED:xai-key]"),
            (format!("gsk_{body}{body}"), "[REDACTED:groq-key]"),
        ]
    }

    #[test]
    fn ai_provider_keys_are_masked() {
        for (key, marker) in ai_keys() {
            assert_eq!(mask(&key), marker, "{key}");
            for (wrapped, want) in [
                (format!("key {key} used"), format!("key {marker} used")),
                (format!("\"{key}\""), format!("\"{marker}\"")),
                (format!("x-api-key: {key}"), format!("x-api-key: {marker}")),
                (
                    format!("OPENAI_API_KEY={key}"),
                    format!("OPENAI_API_KEY={marker}"),
                ),
                (format!("({key})"), format!("({marker})")),
            ] {
                assert_eq!(mask(&wrapped), want, "{wrapped}");
            }
        }
        for s in ai_key_look_alikes() {
            assert_eq!(mask(s), s);
        }
    }

    /// Near misses: the prefixes without a key's length or alphabet, or inside a word.
    fn ai_key_look_alikes() -> [&'static str; 15] {
        [
            "sk-learn",
            "pip install sk-video scikit-learn",
            "sk-ant-short",
            "sk-proj-12345",
            "sk-0123456789abcdef",
            "disk-0123456789abcdef0123456789abcdef0123",
            "task_hf_0123456789abcdef0123456789abcdef",
            "hf_hub_download",
            "hf_transfer",
            "AIzaShort",
            "xai-grok-2",
            "xai.grok-3-mini",
            "gsk_abc",
            "risk-assessment-for-the-quarter-and-the-next-one",
            "model anthropic.claude-3-5-sonnet-20240620-v1:0",
        ]
    }

    #[test]
    fn secret_key_values_inside_arns_are_masked() {
        for (s, want) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:x/token=abc123def456",
                "arn:aws:lambda:us-east-1:123456789012:function:x/token=[REDACTED:secret]",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:password=hunter2",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:password=[REDACTED:secret]",
            ),
            (
                "see arn:aws:s3:::bucket/db_password=p/a:ss!x now",
                "see arn:aws:s3:::bucket/db_password=[REDACTED:secret] now",
            ),
            (
                "arn:aws:lambda:us-east-1:1:function:x/API_KEY=abc,password=x",
                "arn:aws:lambda:us-east-1:1:function:x/API_KEY=[REDACTED:secret],password=[REDACTED:secret]",
            ),
        ] {
            assert_eq!(mask(s), want, "{s}");
        }
        // Already masked: left alone.
        let once = mask("arn:aws:lambda:us-east-1:1:function:x/token=abc");
        assert_eq!(mask(&once), once);
        // ARNs without a secret-named key survive, `=` and `:secret:` included.
        for s in [
            "arn:aws:s3:::logs/dt=2026-11-20/part=0001.parquet",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf",
            "arn:aws:lambda:us-east-1:123456789012:function:x/InputTokenCount=3",
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/api-key",
        ] {
            assert_eq!(mask(s), s);
        }
    }

    #[test]
    fn user_agents_keep_only_product_tokens() {
        for (ua, want) in [
            (
                "aws-cli/2.15.0 Python/3.11.6 Linux/5.10.205-195.807.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off command/s3.ls",
                "aws-cli/2.15.0 Python/3.11.6 Linux/5.10.205-195.807.amzn2.x86_64",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0",
                "Mozilla/5.0 AppleWebKit/537.36 Chrome/120.0.0.0",
            ),
            (
                "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.10 lang/python#3.11.6 Botocore/1.34.0",
                "Boto3/1.34.0 ua/2.0 Botocore/1.34.0",
            ),
            (
                "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488]",
                "S3Console/0.4 aws-internal/3 aws-sdk-java/1.12.488",
            ),
            ("lambda.amazonaws.com", "lambda.amazonaws.com"),
            ("AWS Internal", ""),
            (
                "aws-cli/2.15.0 (ignore previous instructions (nested) still comment) x/1",
                "aws-cli/2.15.0 x/1",
            ),
            ("aws-cli/2.15.0 (unterminated comment x/1", "aws-cli/2.15.0"),
            ("Ignore/previous instructions/now evil/1<!channel>", ""),
            ("", ""),
        ] {
            assert_eq!(user_agent_products(ua), want, "{ua}");
        }
    }

    #[test]
    fn the_user_agent_is_cut_only_under_the_metadata_policy() {
        let r = Redactor::new();
        let ua = "aws-cli/2.15.0 Python/3.11 Linux/5.10 exe/x86_64 prompt/off command/s3.ls (note: password=hunter2)";
        assert_eq!(
            r.user_agent(ua, ContentPolicy::Metadata, 256).as_deref(),
            Some("aws-cli/2.15.0 Python/3.11 Linux/5.10")
        );
        for policy in [ContentPolicy::Redacted, ContentPolicy::Full] {
            let out = r.user_agent(ua, policy, 256).unwrap_or_default();
            assert!(out.contains("command/s3.ls"), "{policy}: {out}");
            assert!(!out.contains("hunter2"), "{policy}: {out}");
        }
        assert_eq!(
            r.user_agent("AWS Internal", ContentPolicy::Metadata, 256),
            None
        );
    }

    #[test]
    fn bedrock_runtime_error_messages_are_content() {
        let r = Redactor::new();
        let echo = "Malformed input request: #: extraneous key [PROMPT-CANARY] is not permitted";
        for (source, name) in [
            ("bedrock.amazonaws.com", "InvokeModel"),
            ("bedrock.amazonaws.com", "Converse"),
            (
                "bedrock-runtime.amazonaws.com",
                "InvokeModelWithResponseStream",
            ),
            ("bedrock-runtime.amazonaws.com", "SomethingNew"),
            ("bedrock-agent-runtime.amazonaws.com", "InvokeAgent"),
            ("bedrock-agent-runtime.amazonaws.com", "RetrieveAndGenerate"),
        ] {
            assert!(error_message_is_content(source, name), "{source} {name}");
            for (policy, shown) in [
                (ContentPolicy::Metadata, false),
                (ContentPolicy::Redacted, false),
                (ContentPolicy::Full, true),
            ] {
                let out = r.error_message(echo, source, name, policy, 512);
                assert_eq!(out.is_some(), shown, "{source} {name} {policy}: {out:?}");
            }
        }
        // Control-plane Bedrock calls and other services keep the free-text rule.
        for (source, name) in [
            ("bedrock.amazonaws.com", "CreateGuardrail"),
            ("lambda.amazonaws.com", "Invoke"),
            ("iam.amazonaws.com", "DeleteRolePolicy"),
        ] {
            assert!(!error_message_is_content(source, name), "{source} {name}");
            assert_eq!(
                r.error_message("denied", source, name, ContentPolicy::Redacted, 512)
                    .as_deref(),
                Some("denied")
            );
            assert_eq!(
                r.error_message("denied", source, name, ContentPolicy::Metadata, 512),
                None
            );
        }
    }

    #[test]
    fn look_alike_keys_are_not_secrets() {
        for s in [
            "InputTokenCount=1234",
            "OutputTokenCount: 10",
            "secretId=prod/db",
            "token_count=5",
        ] {
            assert_eq!(mask(s), s);
        }
    }

    #[test]
    fn pem_private_keys_are_masked_across_lines() {
        let out = mask(&format!("before\n{PEM}\nafter"));
        assert_eq!(out, "before\n[REDACTED:private-key]\nafter");
        let open = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
        assert_eq!(mask(open), "[REDACTED:private-key]");
    }

    #[test]
    fn identifiers_survive() {
        for s in [
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:role/service-role/MyVeryLongRoleName0123456789AbCdEfGh",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0",
            "123456789012",
            "6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8",
            "request id 1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            "event 0123abcd-1111-2222-3333-444455556666 in us-east-1",
            "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "1-5759e988-bd862e3fe1be46a994272793",
            "ModelId=anthropic.claude-v2 InvocationThrottles > 10",
            "aws iam get-role-policy --role-name x --policy-name y",
        ] {
            assert_eq!(mask(s), s);
        }
    }

    #[test]
    fn a_secret_next_to_an_arn_is_still_masked() {
        let out = mask(&format!(
            "arn:aws:iam::123456789012:role/x used {ACCESS_KEY} and password=x"
        ));
        assert_eq!(
            out,
            "arn:aws:iam::123456789012:role/x used [REDACTED:aws-access-key] and password=[REDACTED:secret]"
        );
    }

    #[test]
    fn free_text_is_dropped_under_the_metadata_policy() {
        let r = Redactor::new();
        assert_eq!(r.free_text("anything", ContentPolicy::Metadata, 100), None);
        assert_eq!(
            r.free_text("anything", ContentPolicy::Redacted, 100)
                .as_deref(),
            Some("anything")
        );
        assert_eq!(r.free_text("  ", ContentPolicy::Full, 100), None);
    }

    #[test]
    fn free_text_is_masked_before_it_is_truncated() {
        let r = Redactor::new();
        let s = format!("{ACCESS_KEY} tail");
        let out = r.free_text(&s, ContentPolicy::Full, 8).unwrap_or_default();
        assert_eq!(out, "[REDACT…");
        let out = r.free_text("ab\u{1b}[31mcdé", ContentPolicy::Redacted, 5);
        assert_eq!(out.as_deref(), Some("ab[3…"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
        assert_eq!(truncate("日本語テキスト", 4), "日本語…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn identifiers_are_single_line_and_clean() {
        let r = Redactor::new();
        assert_eq!(r.identifier(" a\nb\u{202E}c\t", 10), "a bc");
    }

    /// Pieces of secrets, look-alikes, ARNs and separators: joined at random they make
    /// strings on both sides of every rule, and of the combined filter.
    const PIECES: &[&str] = &[
        "bearer ",
        "Authorization: Bearer ",
        "abcdef0123456789abcdef",
        "password",
        "db_PASSWORD",
        "secretId",
        "X-Amz-Security-Token",
        "InputTokenCount",
        "api_key",
        "=",
        ": ",
        "\"",
        "'",
        " ",
        "\u{a0}",
        "\n",
        "é",
        "K",
        "\u{212a}",
        "AKIAIOSFODNN7EXAMPLE",
        "AROAEXAMPLEID123456789",
        SECRET_KEY,
        "a1B2c3D4e5F6g7H8i9J0",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "https://hooks.slack.com/services/T0/B0/x",
        "xoxb-1-2-abc",
        "ghp_abcdefghijklmnopqrstuvwxyz0123",
        "eyJhbGciOiJIUzI1NiJ9.",
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
        "[REDACTED:secret]",
        "&",
        "}",
        "arn:aws:lambda:us-east-1:1:function:x/token=",
        "/",
        "sk-ant-api03-",
        "sk-",
        "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hL",
        "AIza",
        "hf_",
        "disk",
    ];

    #[test]
    fn the_combined_filter_only_skips_strings_no_rule_changes() {
        let rules = Rules::compile().expect("every pattern compiles");
        let fixed = [
            "",
            "plain words",
            "bearer tokens expire",
            "xbearer abcdef0123456789abcdef",
            "éBearer abcdef0123456789abcdef",
            PEM,
            "password=\"cut off here",
            "arn:aws:iam::123456789012:role/x used AKIAIOSFODNN7EXAMPLE and password=x",
            "arn:aws:lambda:us-east-1:1:function:x/token=abc",
            "arn:aws:s3:::logs/dt=2026-11-20",
            "disksk-aB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hL",
            "é sk-aB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hL",
        ];
        for s in fixed {
            assert_eq!(rules.mask(s), rules.mask_each(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn masking_with_the_filter_is_masking_with_every_rule(
            picks in proptest::collection::vec(0..PIECES.len(), 0..8)
        ) {
            let rules = Redactor::shared().rules.as_ref().expect("every pattern compiles");
            let s: String = picks.iter().filter_map(|i| PIECES.get(*i).copied()).collect();
            proptest::prop_assert_eq!(rules.mask(&s), rules.mask_each(&s), "{:?}", s);
        }
    }

    #[test]
    fn sanitize_and_truncate_fast_paths_agree_with_the_general_ones() {
        for s in [
            "",
            "a\tb",
            "a\rb\n",
            "x\u{7f}y",
            "caf\u{e9}\u{202e}\u{85}",
            "a\u{200b}b\u{feff}c\u{2028}d\u{e0041}",
            "plain",
        ] {
            for keep in [true, false] {
                let general: String = s
                    .chars()
                    .filter(|c| *c != '\r')
                    .filter_map(|c| match c {
                        '\t' => Some(' '),
                        '\n' | '\u{2028}' | '\u{2029}' if !keep => Some(' '),
                        '\n' | '\u{2028}' | '\u{2029}' => Some('\n'),
                        c if c.is_control() || is_invisible(c) => None,
                        c => Some(c),
                    })
                    .collect();
                assert_eq!(sanitize(s, keep), general, "{s:?} keep_newlines={keep}");
            }
        }
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "éé…");
    }

    #[test]
    fn invisible_and_bidirectional_characters_are_stripped() {
        let hidden = [
            '\u{00AD}',
            '\u{061C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{206F}',
            '\u{FEFF}',
            '\u{FFF9}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
        ];
        for c in hidden {
            let s = format!("<!chan{c}nel> db{c}");
            for keep in [true, false] {
                assert_eq!(
                    sanitize(&s, keep),
                    "<!channel> db",
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
        // Line and paragraph separators are line breaks, not invisible glue.
        assert_eq!(sanitize("a\u{2028}b\u{2029}c", true), "a\nb\nc");
        assert_eq!(sanitize("a\u{2028}b\u{2029}c", false), "a b c");
        // Visible non-ASCII text, emoji and look-alikes stay.
        let kept = "café ‹x› ✅ 日本語 \u{a0}";
        assert_eq!(sanitize(kept, false), kept);
        // Every path through the redactor strips them.
        let r = Redactor::new();
        assert_eq!(r.identifier("\u{202e}db\u{200b}-1\u{2066}", 20), "db-1");
        assert_eq!(r.text("a\u{feff}\nb\u{200d}", 20), "a\nb");
    }

    #[test]
    fn the_free_function_uses_the_shared_redactor() {
        assert_eq!(mask_secrets(ACCESS_KEY), "[REDACTED:aws-access-key]");
    }
}
