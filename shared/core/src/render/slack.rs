//! Slack Block Kit rendering (README.md "Usage").
//!
//! Invariant: whatever the input, [`slack`] returns a message Slack accepts: at most
//! [`MAX_BLOCKS`] blocks, a header of at most [`MAX_HEADER_CHARS`], sections of at most
//! [`MAX_SECTION_CHARS`], at most [`MAX_FIELDS`] fields of at most [`MAX_FIELD_CHARS`], and at
//! most [`MAX_TOTAL_CHARS`] characters of text in all, fallback included. Every value that came
//! from an event is escaped, so it cannot mention a channel, forge a link or inject markup;
//! only the destination's configured mentions are emitted as they are.
//!
//! Escaping, for every message kind (first message and thread replies, the resolve edit, the
//! flapping notice, the digest note, and the fallback `text` that is also the whole message
//! when Slack refuses the blocks):
//! - mrkdwn and the fallback `text`: [`escape`], i.e. Slack's `&` `<` `>` entities, after
//!   invisible and bidirectional characters are stripped. Slack parses mentions and links
//!   (`<!channel>`, `<@U123>`, `<https://…|label>`) only from a literal `<`, so none can come
//!   from a value.
//! - Every mrkdwn object is sent with `"verbatim": true` ([`mrkdwn_object`]): Slack then does not
//!   turn bare URLs, `#channel` names or bare `@` words in a value into links or mentions;
//!   vigil's own `<url|label>` links and the configured mentions still work, because verbatim
//!   only turns off Slack's guessing, not explicit control sequences. Values are not wrapped
//!   in code spans instead: most are prose (reasons, descriptions, summaries), a code span
//!   does not stop Slack from parsing `<!channel>` anyway, and identifiers already are code.
//! - `plain_text` (headers, button labels): [`plain_text`], angle brackets as look-alikes and
//!   the `&` of an entity-shaped sequence (`&lt;`) as a look-alike, safe whether or not Slack
//!   decodes entities there.
//! - Slack has no escape for `*`, `_`, `~` and backticks; in a value they can at most style
//!   that value's own text (a backtick never opens one of vigil's code spans, see `code`).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    CauseView, CommandView, Fact, LinkView, RenderInput, StepView, View, Withheld, fmt_time, more,
    withheld,
};
use crate::model::{Kind, Severity};
use crate::redact::{Redactor, truncate};

/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a header block's text.
pub const MAX_HEADER_CHARS: usize = 150;
/// Slack's limit on a section block's text.
pub const MAX_SECTION_CHARS: usize = 3_000;
/// Slack's limit on one section field's text.
pub const MAX_FIELD_CHARS: usize = 2_000;
/// Slack's limit on fields in one section.
pub const MAX_FIELDS: usize = 10;
/// The whole message's text budget (README.md "Usage": "~12,000 in all"), fallback included.
pub const MAX_TOTAL_CHARS: usize = 12_000;
/// The fallback `text` limit we hold ourselves to (Slack truncates at 40,000).
pub const MAX_FALLBACK_CHARS: usize = 3_000;

// Our own, tighter choices: a message someone can read at 3 a.m., and room for every section
// inside the total budget even when each is full.
const FALLBACK_CHARS: usize = 400;
const FIELD_CHARS: usize = 250;
const SUMMARY_CHARS: usize = 1_500;
const SUBJECT_CHARS: usize = 2_000;
const CAUSES_CHARS: usize = MAX_SECTION_CHARS;
const RUNBOOK_CHARS: usize = MAX_SECTION_CHARS;
const EVIDENCE_CHARS: usize = 1_200;
const LINKS_CHARS: usize = 1_000;
const NOTES_CHARS: usize = 800;
const CONTEXT_CHARS: usize = 600;
const MENTIONS_CHARS: usize = 1_000;
/// Below this, a section is not worth a block.
const MIN_SECTION_CHARS: usize = 60;

const CAUSES_SHOWN: usize = 5;
const STEPS_SHOWN: usize = 10;
const EVIDENCE_SHOWN: usize = 8;
const LINKS_SHOWN: usize = 8;
const NOTES_SHOWN: usize = 6;
const FACT_CHARS: usize = 400;

/// A Block Kit message for an incoming webhook or `chat.postMessage`. The channel (and, for
/// threads, `thread_ts`) is added by the notifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    /// The notification and accessibility fallback: severity, title, one-line summary.
    pub text: String,
    /// Block Kit blocks, within Slack's limits.
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    /// The body of an incoming-webhook or `chat.postMessage` request: `{"text":..,"blocks":[..]}`.
    pub fn to_webhook_json(&self) -> Value {
        json!({ "text": self.text, "blocks": self.blocks })
    }

    /// The same message without blocks, for when Slack rejects the blocks (`invalid_blocks`).
    pub fn to_plain_json(&self) -> Value {
        json!({ "text": self.text })
    }

    /// Characters of text as [`MAX_TOTAL_CHARS`] counts them: the fallback plus every string
    /// in the blocks except `type` tags.
    pub fn text_chars(&self) -> usize {
        self.text.chars().count() + self.blocks.iter().map(block_text_chars).sum::<usize>()
    }
}

/// Characters of text in one block (every string value except `type` tags).
pub fn block_text_chars(block: &Value) -> usize {
    match block {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.iter().map(block_text_chars).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(_, v)| block_text_chars(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// Renders the Block Kit message of README.md "Usage" for one destination.
pub fn slack(input: &RenderInput<'_>, redactor: &Redactor) -> SlackMessage {
    let view = View::new(input, redactor);
    render(&view)
}

pub(super) fn render(v: &View) -> SlackMessage {
    let text = fallback(v);
    let context = context_block(v);
    let reserved = text.chars().count() + block_text_chars(&context);
    let mut b = Builder {
        blocks: Vec::new(),
        used: 0,
        budget: MAX_TOTAL_CHARS.saturating_sub(reserved),
        // One block stays free for the context line.
        max_blocks: MAX_BLOCKS - 1,
    };

    b.push(json!({
        "type": "header",
        "text": { "type": "plain_text", "text": header_text(v), "emoji": true },
    }));
    b.push_fields(fields(v));
    if !v.summary.trim().is_empty() {
        let cap = b.cap(SUMMARY_CHARS);
        b.push_section(cut(&escape(&v.summary), cap));
    }
    b.push_list(subject_heading(v), &subject_items(v), None, SUBJECT_CHARS);
    if !v.causes.is_empty() {
        let items: Vec<String> = v
            .causes
            .items
            .iter()
            .take(CAUSES_SHOWN)
            .enumerate()
            .map(|(i, c)| cause_item(i + 1, c))
            .collect();
        let n = v.causes.total;
        let heading = format!(
            "*What changed* ({n} probable cause{}, most likely first)",
            if n == 1 { "" } else { "s" }
        );
        b.push_list(heading, &items, Some(n), CAUSES_CHARS);
    }
    if !v.runbook.is_empty() {
        // Room for one step beside the heading and a "...and N more" line: a step with a
        // command longer than that shows the placeholder, so `fit_list` never cuts a command.
        let heading = "*Runbook*";
        let reserve = format!("\n_{}_", more(v.runbook.total)).chars().count();
        let step_max = b
            .cap(RUNBOOK_CHARS)
            .saturating_sub(heading.chars().count() + 1 + reserve);
        let items: Vec<String> = v
            .runbook
            .items
            .iter()
            .take(STEPS_SHOWN)
            .enumerate()
            .map(|(i, s)| step_item(i + 1, s, step_max))
            .collect();
        b.push_list(
            heading.to_owned(),
            &items,
            Some(v.runbook.total),
            RUNBOOK_CHARS,
        );
    }
    if !v.evidence.is_empty() {
        let items: Vec<String> = v
            .evidence
            .items
            .iter()
            .take(EVIDENCE_SHOWN)
            .map(|e| format!("• {}", escape(e)))
            .collect();
        b.push_list(
            format!("*Evidence* (rule {})", code(&v.rule)),
            &items,
            Some(v.evidence.total),
            EVIDENCE_CHARS,
        );
    }
    if !v.links.is_empty() {
        let items: Vec<String> = v
            .links
            .items
            .iter()
            .take(LINKS_SHOWN)
            .map(|l: &LinkView| format!("• {}", link(&l.url, &l.label)))
            .collect();
        b.push_list(
            "*Links*".to_owned(),
            &items,
            Some(v.links.total),
            LINKS_CHARS,
        );
    }
    if !v.notes.is_empty() {
        let items: Vec<String> = v
            .notes
            .items
            .iter()
            .take(NOTES_SHOWN)
            .map(|n| format!("• {}", escape(n)))
            .collect();
        b.push_list(
            "*Notes*".to_owned(),
            &items,
            Some(v.notes.total),
            NOTES_CHARS,
        );
    }
    let mut blocks = b.blocks;
    blocks.push(context);
    SlackMessage { text, blocks }
}

/// Adds blocks while the message stays within the block count and the text budget.
struct Builder {
    blocks: Vec<Value>,
    used: usize,
    budget: usize,
    max_blocks: usize,
}

impl Builder {
    fn remaining(&self) -> usize {
        self.budget.saturating_sub(self.used)
    }

    /// How long a section may be: our cap, Slack's cap and what the budget has left.
    fn cap(&self, ours: usize) -> usize {
        ours.min(MAX_SECTION_CHARS).min(self.remaining())
    }

    fn push(&mut self, block: Value) -> bool {
        let n = block_text_chars(&block);
        if self.blocks.len() >= self.max_blocks || n > self.remaining() {
            return false;
        }
        self.used += n;
        self.blocks.push(block);
        true
    }

    fn push_section(&mut self, mrkdwn: String) -> bool {
        if mrkdwn.trim().is_empty() || mrkdwn.chars().count() > MAX_SECTION_CHARS {
            return false;
        }
        self.push(json!({
            "type": "section",
            "text": mrkdwn_object(mrkdwn),
        }))
    }

    fn push_fields(&mut self, fields: Vec<String>) -> bool {
        let fields: Vec<Value> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|f| mrkdwn_object(cut(&f, FIELD_CHARS.min(MAX_FIELD_CHARS))))
            .collect();
        if fields.is_empty() {
            return false;
        }
        self.push(json!({ "type": "section", "fields": fields }))
    }

    /// A heading and as many items as fit, then "...and N more".
    fn push_list(
        &mut self,
        heading: String,
        items: &[String],
        total: Option<usize>,
        ours: usize,
    ) -> bool {
        let cap = self.cap(ours);
        if items.is_empty() || cap < MIN_SECTION_CHARS {
            return false;
        }
        let total = total.unwrap_or(items.len()).max(items.len());
        match fit_list(&heading, items, total, cap) {
            Some(text) => self.push_section(text),
            None => false,
        }
    }
}

/// Joins `heading` and items, one per line, within `cap` characters; items that do not fit
/// are counted in a closing "...and N more" line (`total` is the length of the whole list).
pub(super) fn fit_list(
    heading: &str,
    items: &[String],
    total: usize,
    cap: usize,
) -> Option<String> {
    let mut out = heading.to_owned();
    let mut used = heading.chars().count();
    let mut shown = 0usize;
    let more_line = |n: usize| format!("\n_{}_", more(n));
    for item in items {
        let reserve = if shown + 1 < total {
            more_line(total).chars().count()
        } else {
            0
        };
        let need = 1 + item.chars().count();
        if used + need + reserve <= cap {
            out.push('\n');
            out.push_str(item);
            used += need;
            shown += 1;
            continue;
        }
        if shown == 0 {
            // One long item: show its beginning rather than nothing.
            let room = cap.saturating_sub(used + 1 + reserve);
            if room >= 20 {
                let part = cut(item, room);
                used += 1 + part.chars().count();
                out.push('\n');
                out.push_str(&part);
                shown = 1;
            }
        }
        break;
    }
    let rest = total.saturating_sub(shown);
    if rest > 0 {
        out.push_str(&more_line(rest));
    }
    (out.chars().count() <= cap && used <= cap).then_some(out)
}

fn severity_emoji(v: &View) -> &'static str {
    if v.kind == Kind::Resolved {
        return ":white_check_mark:";
    }
    match v.severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":large_blue_circle:",
    }
}

fn header_text(v: &View) -> String {
    let s = format!(
        "{} {}: {}",
        severity_emoji(v),
        v.severity_label(),
        plain_text(&v.title)
    );
    truncate(&s, MAX_HEADER_CHARS).into_owned()
}

fn fallback(v: &View) -> String {
    let summary = v.summary.replace('\n', " ");
    let s = if summary.trim().is_empty() {
        format!("[{}] {}", v.severity_label(), v.title)
    } else {
        format!("[{}] {} — {}", v.severity_label(), v.title, summary.trim())
    };
    cut(&escape(&s), FALLBACK_CHARS.min(MAX_FALLBACK_CHARS))
}

fn fields(v: &View) -> Vec<String> {
    let field = |label: &str, value: &str| format!("*{label}*\n{}", escape(value));
    let mut out = Vec::new();
    if let Some(a) = &v.account {
        out.push(field("Account", a));
    }
    if let Some(r) = &v.region {
        out.push(field("Region", r));
    }
    if let Some(r) = &v.resource {
        out.push(field("Resource", r));
    }
    if let Some(s) = &v.state {
        out.push(field("State", s));
    }
    out.push(field("Time", &fmt_time(v.time)));
    out.push(format!(
        "*Kind*\n{} · {}",
        code(v.kind.as_str()),
        v.severity.as_str()
    ));
    out
}

fn subject_heading(v: &View) -> String {
    format!("*{}*", v.subject_heading())
}

fn subject_items(v: &View) -> Vec<String> {
    v.subject_facts()
        .iter()
        .map(|f: &Fact| {
            let value = truncate(&f.value, FACT_CHARS);
            let value = if f.code {
                code(&value)
            } else {
                escape(&value).into_owned()
            };
            // A multi-line description reads better indented under its label.
            let value = value.replace('\n', "\n    ");
            format!("• *{}:* {value}", f.label)
        })
        .collect()
}

fn cause_item(n: usize, c: &CauseView) -> String {
    let mut s = format!(
        "*{n}.* {} ({}) by *{}*, {} ({})",
        code(&c.event_name),
        escape(&c.event_source),
        escape(&c.actor),
        escape(&c.relative),
        escape(&fmt_time(c.time)),
    );
    if let Some(ip) = &c.source_ip {
        s.push_str(&format!(" from {}", code(ip)));
    }
    if let Some(ua) = &c.user_agent {
        s.push_str(&format!(" with {}", code(&truncate(ua, 120))));
    }
    if let Some(reason) = &c.reason {
        s.push_str(&format!("\n    {}", escape(reason)));
    }
    if !c.resources.is_empty() {
        let resources = super::join_listed(&c.resources, ", ", 3);
        s.push_str(&format!("\n    on {}", escape(&truncate(&resources, 400))));
    }
    s.push_str(&format!("\n    event {}", code(&c.event_id)));
    if let Some(url) = &c.console_link {
        s.push_str(&format!(" · {}", link(url, "open in CloudTrail")));
    }
    s
}

/// One runbook step, at most `max` characters when it has a command: the command in a code
/// block exactly as built, or the placeholder when the block would not fit in `max` (it is
/// never cut) or the line has a backtick (which could end the block early).
fn step_item(n: usize, s: &StepView, max: usize) -> String {
    // A backtick in a title (from an alarm name) could pair with a fence and move the code
    // block off the command; the title shows a look-alike instead (titles are words, not
    // commands, so changing them is harmless).
    let head = format!("*{n}.* {}", escape(&s.title).replace('`', "\u{2CB}"));
    let tail = s
        .link
        .as_deref()
        .map(|url| format!("\n{}", link(url, "how-to")))
        .unwrap_or_default();
    let placeholder = |why| format!("\n{}", escape(&withheld(why)));
    let command = match &s.command {
        Some(CommandView::Shown(c)) if c.line().contains('`') => placeholder(Withheld::Unshowable),
        Some(CommandView::Shown(c)) => {
            let block = format!("\n```{}```", code_block_text(c.line()));
            let len = head.chars().count() + block.chars().count() + tail.chars().count();
            if len <= max {
                block
            } else {
                placeholder(Withheld::TooLong)
            }
        }
        Some(CommandView::Withheld(why)) => placeholder(*why),
        None => String::new(),
    };
    format!("{head}{command}{tail}")
}

/// A command line for a code block: only `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`.
/// Slack's formatting reference ("Escaping text") names these three as its control characters
/// and has senders encode them; clients show (and copy) them as the characters again, so the
/// copied text is the command line itself. Nothing else is changed: mrkdwn does not format
/// inside a code block, and a line with a backtick is never put in one (see [`step_item`]).
fn code_block_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn context_block(v: &View) -> Value {
    let mut elements = vec![mrkdwn_object(cut(
        &format!(
            "correlation {} · rule {} · team *{}*{}",
            code(&v.correlation_id),
            code(&v.rule),
            escape(&v.team),
            v.channel
                .as_deref()
                .map(|c| format!(" · {}", escape(c)))
                .unwrap_or_default(),
        ),
        CONTEXT_CHARS,
    ))];
    // Mentions are trusted configuration: emitted verbatim so `<!subteam^S123>` pings.
    let mut mentions = String::new();
    for m in &v.mentions {
        if mentions.chars().count() + m.chars().count() + 1 > MENTIONS_CHARS {
            break;
        }
        if !mentions.is_empty() {
            mentions.push(' ');
        }
        mentions.push_str(m);
    }
    if !mentions.is_empty() {
        elements.push(mrkdwn_object(format!("cc {mentions}")));
    }
    json!({ "type": "context", "elements": elements })
}

/// Escapes the three characters Slack's mrkdwn treats as control characters, so text from an
/// event cannot open a link or a mention such as `<!channel>`, and a `&lt;` in it stays the
/// four characters it was (`&amp;lt;`) instead of becoming `<` on screen. Control, invisible
/// and bidirectional characters are stripped first (`redact::sanitize`; newlines are
/// kept), so nothing hidden rides along.
pub fn escape(s: &str) -> Cow<'_, str> {
    let s = crate::redact::sanitize(s, true);
    if !s.contains(['&', '<', '>']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// An event value for a `plain_text` object (a header): invisible and bidirectional
/// characters stripped, newlines made spaces, angle brackets swapped for look-alikes and the
/// `&` of an entity-shaped sequence (`&lt;`, `&#60;`) swapped for `＆`, so
/// the text reads the same whether or not Slack decodes entities there.
pub fn plain_text(s: &str) -> String {
    let s = crate::redact::sanitize(s, false);
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '<' => out.push('‹'),
            '>' => out.push('›'),
            '&' if starts_entity(s.get(i..).unwrap_or_default()) => out.push('＆'),
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` begins with an HTML/Slack entity: `&name;`, `&#123;` or `&#x7B;`.
pub(super) fn starts_entity(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('&') else {
        return false;
    };
    let body: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '#')
        .take(33)
        .collect();
    !body.is_empty()
        && body.len() <= 32
        && rest.get(body.len()..).is_some_and(|r| r.starts_with(';'))
}

/// A Block Kit `mrkdwn` text object with `"verbatim": true`: Slack does not auto-link bare
/// URLs or channel names, nor parse bare mentions, in it (explicit `<…>` sequences, which only
/// vigil writes, still work). `text` must already be escaped.
pub fn mrkdwn_object(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

/// An identifier as inline code; values that contain a backtick stay plain (escaped).
fn code(s: &str) -> String {
    if s.is_empty() || s.contains('`') {
        escape(s).into_owned()
    } else {
        format!("`{}`", escape(s))
    }
}

/// `<url|label>` for web URLs; anything else (a masked URL, `javascript:`) stays text.
fn link(url: &str, label: &str) -> String {
    let web = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if web {
        let url = url
            .replace('&', "&amp;")
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace('|', "%7C");
        format!("<{url}|{}>", escape(label))
    } else {
        format!("{} ({})", escape(label), escape(url))
    }
}

/// Cuts already-escaped mrkdwn to `max` characters without splitting an entity (`&amp;`),
/// one of our `<url|label>` links, or leaving a code fence open.
pub(super) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut budget = max.saturating_sub(1);
    loop {
        let kept = truncate(s, budget + 1);
        let mut kept = kept.strip_suffix('…').unwrap_or(&kept).to_owned();
        if let Some(amp) = kept.rfind('&')
            && !kept.get(amp..).unwrap_or_default().contains(';')
        {
            kept.truncate(amp);
        }
        if let Some(lt) = kept.rfind('<')
            && !kept.get(lt..).unwrap_or_default().contains('>')
        {
            kept.truncate(lt);
        }
        let open_fence = kept.matches("```").count() % 2 == 1;
        if !open_fence {
            kept.push('…');
            return kept;
        }
        if budget <= 4 {
            // Too short to close the fence; drop it with everything after it.
            let at = kept.find("```").unwrap_or(kept.len());
            kept.truncate(at);
            kept.push('…');
            return kept;
        }
        if kept.chars().count() + 4 <= max {
            kept.push_str("…```");
            return kept;
        }
        budget -= 3;
    }
}

// ---------------------------------------------------------------------------------------------
// Noise control's messages (ARCHITECTURE.md "Noise control"): the edit that closes a group, the flapping notice, and a
// note (the rate limiter's digest) added to a message.
// ---------------------------------------------------------------------------------------------

/// `HH:MM:SS UTC` of a time, for the short lines noise control writes.
fn clock(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%H:%M:%S UTC").to_string()
}

/// What a group's first message becomes when the group resolves (`chat.update`): "Resolved",
/// the title, how long it was open and how many alerts it gathered. `title` (the finding
/// title as the group stored it) is escaped here like any event value, in the header, the
/// section and the fallback text.
pub fn resolved_root(
    title: &str,
    count: u32,
    opened_at: chrono::DateTime<chrono::Utc>,
    resolved_at: chrono::DateTime<chrono::Utc>,
    correlation_id: &str,
) -> SlackMessage {
    let minutes = (resolved_at - opened_at).num_minutes().max(0);
    let header = truncate(
        &plain_text(&format!("✅ Resolved: {title}")),
        MAX_HEADER_CHARS,
    )
    .into_owned();
    let body = format!(
        "Open from {} to {} ({minutes} min); {count} alert{} in this group. The thread has the details.",
        clock(opened_at),
        clock(resolved_at),
        if count == 1 { "" } else { "s" }
    );
    SlackMessage {
        text: cut(
            &escape(&format!("Resolved: {title}. {body}")),
            FALLBACK_CHARS,
        ),
        blocks: vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
            json!({"type": "section", "text": mrkdwn_object(cut(&escape(&body), MAX_SECTION_CHARS))}),
            json!({"type": "context", "elements": [mrkdwn_object(cut(&format!("correlation id {}", code(correlation_id)), CONTEXT_CHARS))]}),
        ],
    }
}

/// The one thread reply a group gets when it starts flapping: how many changes in how long,
/// and that later changes are only counted until it settles.
pub fn flap_notice(title: &str, changes: usize, window: std::time::Duration) -> SlackMessage {
    let minutes = window.as_secs() / 60;
    let body = format!(
        "Flapping: {changes} state changes in {minutes} min. Further changes of this alert are counted, not posted, until it has been quiet for {minutes} min; `vigil ledger` lists each one."
    );
    SlackMessage {
        text: cut(
            &escape(&format!("Flapping: {title}. {body}")),
            FALLBACK_CHARS,
        ),
        blocks: vec![
            json!({"type": "section", "text": mrkdwn_object(cut(&format!("*{}*\n{}", escape(title), escape(&body)), MAX_SECTION_CHARS))}),
        ],
    }
}

/// `message` with `note` (plain text, e.g. the rate limiter's digest line) added as a last
/// context block and to the fallback text, within Slack's limits: when the message already
/// has [`MAX_BLOCKS`] blocks, the note replaces the last one. The note is escaped in both
/// places (the fallback is mrkdwn too, and is all Slack shows when it refuses the blocks).
pub fn with_note(mut message: SlackMessage, note: &str) -> SlackMessage {
    let note = escape(note);
    let block = json!({"type": "context", "elements": [mrkdwn_object(cut(&note, CONTEXT_CHARS))]});
    if message.blocks.len() >= MAX_BLOCKS {
        message.blocks.pop();
    }
    message.blocks.push(block);
    message.text = cut(&format!("{}\n{note}", message.text), MAX_FALLBACK_CHARS);
    message
}

/// Silence buttons at least this long ask "are you sure" first.
const CONFIRM_SILENCE_HOURS: u32 = 24;

/// The Block Kit `confirm` dialog of a long Silence button (fixed text: no event values).
fn silence_confirm(hours: u32) -> Value {
    json!({
        "title": {"type": "plain_text", "text": format!("Silence for {hours} h?")},
        "text": {
            "type": "plain_text",
            "text": format!("This alert's group stays silent for {hours} hours: its repeats reach no channel until then. End it early with `vigil silence expire`."),
        },
        "confirm": {"type": "plain_text", "text": format!("Silence {hours} h")},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    })
}

/// Runbook steps that get a Done button (Slack allows 25 elements in an `actions` block).
const STEP_BUTTONS: usize = 10;
/// A step title carried in a button's value (the ledger row's words), at most.
const STEP_VALUE_CHARS: usize = 120;

/// `message` with vigil's buttons (docs/DEPLOY.md: interactive alerts, answered by `slack-actions`): an
/// `actions` block with one "✓ Step N" button per runbook step (up to [`STEP_BUTTONS`],
/// `action_id` `vigil_step_done`), then an `actions` block with Acknowledge and Silence
/// 1 h / 4 h / 24 h (`vigil_ack`, `vigil_silence_1h|4h|24h`). Each button's value is compact
/// JSON ([`crate::slack_request::ButtonValue`]): the correlation id, the alert's name, kind,
/// severity, account and Region, and for steps the number and title, masked like everything
/// rendered. A protected alert ([`crate::noise::is_protected`]: `critical`, or
/// `audit_tampering`) gets no Silence buttons (`vigil silence add` can still silence it), and
/// Silence 24 h asks for confirmation (a Block Kit `confirm` dialog).
/// The buttons come last; when the message would pass [`MAX_BLOCKS`], the blocks just before
/// its final context line give way. A resolve (`kind` `resolved`) gets no buttons.
pub fn with_buttons(
    mut message: SlackMessage,
    input: &RenderInput<'_>,
    redactor: &Redactor,
) -> SlackMessage {
    use crate::slack_request::{ACTION_ACK, ACTION_SILENCES, ACTION_STEP_DONE, ButtonValue};
    if input.finding.kind == Kind::Resolved {
        return message;
    }
    let alert = input.alert;
    let mask = |s: &str| redactor.mask_secrets(s).into_owned();
    let base = ButtonValue {
        correlation_id: mask(input.correlation_id),
        name: mask(alert.name()),
        kind: Some(input.finding.kind.as_str().to_owned()),
        severity: Some(input.finding.severity.as_str().to_owned()),
        account: alert.account.as_deref().map(mask),
        region: alert.region.as_deref().map(mask),
        step: None,
        step_title: None,
    };
    let button = |text: &str, action_id: &str, value: String| {
        json!({
            "type": "button",
            "text": {"type": "plain_text", "text": text, "emoji": true},
            "action_id": action_id,
            "value": value,
        })
    };
    let mut main = vec![button("Acknowledge", ACTION_ACK, base.encode())];
    if !crate::noise::is_protected(input.finding.kind, input.finding.severity) {
        main.extend(ACTION_SILENCES.iter().map(|(action_id, hours)| {
            let mut b = button(&format!("Silence {hours} h"), action_id, base.encode());
            if *hours >= CONFIRM_SILENCE_HOURS
                && let Some(map) = b.as_object_mut()
            {
                map.insert("confirm".to_owned(), silence_confirm(*hours));
            }
            b
        }));
    }
    let steps: Vec<Value> = input
        .finding
        .runbook
        .iter()
        .take(STEP_BUTTONS)
        .enumerate()
        .map(|(i, step)| {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let value = ButtonValue {
                step: Some(n),
                step_title: Some(cut(&mask(&step.title), STEP_VALUE_CHARS)),
                ..base.clone()
            };
            button(&format!("✓ Step {n}"), ACTION_STEP_DONE, value.encode())
        })
        .collect();
    let mut add = Vec::new();
    if !steps.is_empty() {
        add.push(json!({"type": "actions", "block_id": "vigil_steps", "elements": steps}));
    }
    add.push(json!({"type": "actions", "block_id": "vigil_actions", "elements": main}));
    while message.blocks.len() + add.len() > MAX_BLOCKS && message.blocks.len() > 2 {
        let at = message.blocks.len() - 2;
        message.blocks.remove(at);
    }
    message.blocks.extend(add);
    message.blocks.truncate(MAX_BLOCKS);
    message
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{AlertBody, Link, ProbableCause, RunbookStep};
    use crate::redact::ContentPolicy;
    use crate::render::fixtures::*;

    fn render_alarm(policy: ContentPolicy) -> SlackMessage {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        slack(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        )
    }

    fn all_text(m: &SlackMessage) -> String {
        m.to_webhook_json().to_string()
    }

    #[test]
    fn an_alarm_renders_header_fields_what_changed_runbook_and_context() {
        let m = render_alarm(ContentPolicy::Redacted);
        let types: Vec<&str> = m
            .blocks
            .iter()
            .filter_map(|b| b.get("type").and_then(Value::as_str))
            .collect();
        assert_eq!(types.first(), Some(&"header"));
        assert_eq!(types.last(), Some(&"context"));
        let header = m
            .blocks
            .first()
            .and_then(|b| b.pointer("/text/text"))
            .and_then(Value::as_str);
        assert_eq!(
            header,
            Some(":red_circle: HIGH: Throttling: bedrock-throttles-claude")
        );
        let json = all_text(&m);
        for needle in [
            "*Account*\\n123456789012",
            "*Region*\\nus-east-1",
            "ModelId=anthropic.claude-3-sonnet-20240229-v1:0",
            "ALARM (was OK)",
            "2024-05-01 12:00:00 UTC",
            "*What changed* (1 probable cause, most likely first)",
            "`DeleteRolePolicy` (iam.amazonaws.com) by *admin/alice*, 4 min before the alert",
            "from `203.0.113.5`",
            "```aws service-quotas list-service-quotas --service-code bedrock --region us-east-1```",
            "<https://runbooks.example.com/ai/throttle_spike|how-to>",
            "correlation `evt-6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8`",
            "cc <!subteam^S0123ABCD>",
            "Threshold Crossed",
            "&gt; 10",
        ] {
            assert!(json.contains(needle), "missing {needle} in {json}");
        }
        assert!(
            m.text
                .starts_with("[HIGH] Throttling: bedrock-throttles-claude — Alarm")
        );
    }

    fn runbook_section(words: &[&str], title: &str) -> String {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        finding.runbook = vec![RunbookStep {
            action: crate::model::StepAction::Check,
            title: title.to_owned(),
            command: crate::model::Command::new(words.iter().map(|w| (*w).to_owned()).collect()),
            link: None,
        }];
        let dest = destination();
        let m = slack(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        m.blocks
            .iter()
            .filter_map(|b| b.pointer("/text/text").and_then(Value::as_str))
            .find(|t| t.starts_with("*Runbook*"))
            .expect("a runbook section")
            .to_owned()
    }

    #[test]
    fn a_command_is_a_code_block_of_its_exact_line_or_the_placeholder() {
        // Only &, < and > are encoded (Slack shows them as the characters again).
        assert_eq!(
            runbook_section(&["aws", "x", "--n", "<a> & 'b' $(c)"], "See"),
            "*Runbook*\n*1.* See\n```aws x --n '&lt;a&gt; &amp; '\\''b'\\'' $(c)'```"
        );
        // A backtick could end the block: the placeholder, not a rewritten command.
        let section = runbook_section(&["aws", "x", "a```b"], "See");
        assert!(
            section.starts_with(&format!(
                "*Runbook*\n*1.* See\n{}",
                super::super::WITHHELD_PREFIX
            )),
            "{section}"
        );
        assert!(!section.contains("```"), "{section}");
        // A title cannot open a fence that moves the block off the command.
        let section = runbook_section(&["aws", "x"], "a```b");
        assert_eq!(
            section,
            "*Runbook*\n*1.* a\u{2CB}\u{2CB}\u{2CB}b\n```aws x```"
        );
        // Longer than the section can hold: the placeholder, never a cut command.
        let long = "y".repeat(4_000);
        let section = runbook_section(&["aws", "x", &long], "See");
        assert!(section.contains("too long"), "{section}");
        assert!(!section.contains("yyyy"), "{section}");
    }

    #[test]
    fn metadata_policy_drops_the_alarm_reason_and_description() {
        let json = all_text(&render_alarm(ContentPolicy::Metadata));
        assert!(!json.contains("Threshold Crossed"));
        assert!(!json.contains("on the chat model"));
        assert!(json.contains("InvocationThrottles"));
    }

    #[test]
    fn interactive_messages_end_with_vigils_buttons() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        let input = RenderInput {
            alert: &alert,
            finding: &finding,
            destination: &dest,
            policy: ContentPolicy::Full,
            correlation_id: &alert.id,
        };
        let plain = slack(&input, &Redactor::new());
        let m = with_buttons(plain.clone(), &input, &Redactor::new());
        assert!(m.blocks.len() <= MAX_BLOCKS);
        assert_eq!(m.blocks[..plain.blocks.len()], plain.blocks[..]);
        let last = m.blocks.last().unwrap();
        assert_eq!(last["block_id"], "vigil_actions");
        let ids: Vec<&str> = last["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "vigil_ack",
                "vigil_silence_1h",
                "vigil_silence_4h",
                "vigil_silence_24h"
            ]
        );
        let value = crate::slack_request::ButtonValue::decode(
            last["elements"][0]["value"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(value.correlation_id, alert.id);
        assert_eq!(value.name, alert.name());
        assert_eq!(value.kind.as_deref(), Some(finding.kind.as_str()));
        assert_eq!(value.account, alert.account);
        assert_eq!(value.region, alert.region);
        if !finding.runbook.is_empty() {
            let steps = &m.blocks[m.blocks.len() - 2];
            assert_eq!(steps["block_id"], "vigil_steps");
            let first = crate::slack_request::ButtonValue::decode(
                steps["elements"][0]["value"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(first.step, Some(1));
            assert_eq!(steps["elements"][0]["action_id"], "vigil_step_done");
        }
        // A full message keeps the limit and the buttons.
        let mut full = plain.clone();
        full.blocks = vec![json!({"type": "divider"}); MAX_BLOCKS];
        let m = with_buttons(full, &input, &Redactor::new());
        assert_eq!(m.blocks.len(), MAX_BLOCKS);
        assert_eq!(m.blocks.last().unwrap()["block_id"], "vigil_actions");
    }

    /// The `vigil_actions` block's buttons of `finding` rendered with buttons.
    fn action_buttons(finding: &crate::model::Finding) -> Vec<Value> {
        let alert = alert(AlertBody::Alarm(alarm()));
        let dest = destination();
        let input = RenderInput {
            alert: &alert,
            finding,
            destination: &dest,
            policy: ContentPolicy::Full,
            correlation_id: &alert.id,
        };
        let m = with_buttons(slack(&input, &Redactor::new()), &input, &Redactor::new());
        let last = m.blocks.last().unwrap();
        assert_eq!(last["block_id"], "vigil_actions");
        last["elements"].as_array().unwrap().clone()
    }

    #[test]
    fn the_24_h_silence_asks_first_and_protected_alerts_have_no_silence_button() {
        let buttons = action_buttons(&finding());
        let by_id = |id: &str| buttons.iter().find(|b| b["action_id"] == id).unwrap();
        let confirm = &by_id("vigil_silence_24h")["confirm"];
        assert_eq!(confirm["title"]["type"], "plain_text");
        assert!(confirm["title"]["text"].as_str().unwrap().contains("24 h"));
        assert_eq!(confirm["confirm"]["text"], "Silence 24 h");
        assert_eq!(confirm["deny"]["text"], "Cancel");
        assert!(confirm["text"]["text"].as_str().unwrap().chars().count() <= 300);
        assert!(by_id("vigil_silence_1h").get("confirm").is_none());
        let value = crate::slack_request::ButtonValue::decode(
            by_id("vigil_ack")["value"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(value.severity.as_deref(), Some("high"));

        for (kind, severity) in [
            (Kind::ThrottleSpike, Severity::Critical),
            (Kind::AuditTampering, Severity::High),
            (Kind::AuditTampering, Severity::Critical),
        ] {
            let mut f = finding();
            f.kind = kind;
            f.severity = severity;
            let ids: Vec<String> = action_buttons(&f)
                .iter()
                .map(|b| b["action_id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids, ["vigil_ack"], "{kind} {severity}");
        }
    }

    #[test]
    fn an_api_call_shows_the_call_itself() {
        let alert = alert(AlertBody::ApiCall(change()));
        let mut finding = finding();
        finding.probable_causes.clear();
        let dest = destination();
        let m = slack(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        let json = all_text(&m);
        for needle in [
            "*The call*",
            "*Who:* admin/alice (AssumedRole)",
            "*What:* `DeleteRolePolicy (iam.amazonaws.com)`",
            "*Source IP:* `203.0.113.5`",
            "*User agent:* `aws-cli/2.15.0 Python/3.11.6`",
            "*Result:* failed: AccessDenied",
            "*Error message:* User is not authorized",
            "roleName=chat-fn-role",
            "*Event id:* `0123abcd-1111-2222-3333-444455556666`",
        ] {
            assert!(json.contains(needle), "missing {needle} in {json}");
        }
        assert!(!json.contains("What changed"));
    }

    #[test]
    fn two_hundred_causes_show_the_top_few_and_count_the_rest() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        finding.probable_causes = (0..200).map(cause).collect();
        let dest = destination();
        let m = slack(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Redacted,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        let json = all_text(&m);
        assert!(json.contains("_...and 195 more_"), "{json}");
        assert!(json.contains("(200 probable causes, most likely first)"));
    }

    #[test]
    fn event_text_cannot_mention_or_link() {
        let mut a = alarm();
        a.name = "<!channel> <https://evil.example|click> & co".into();
        a.reason = "<!here> reason".into();
        let alert = alert(AlertBody::Alarm(a));
        let mut finding = finding();
        finding.title = "<!everyone> title".into();
        finding.summary = "<@U123> summary".into();
        let dest = destination();
        let m = slack(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: "<!channel>",
            },
            &Redactor::new(),
        );
        let json = all_text(&m);
        for bad in [
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U123>",
            "<https://evil",
        ] {
            assert!(!json.contains(bad), "{bad} leaked: {json}");
        }
        assert!(json.contains("&lt;!channel&gt;"));
        assert!(json.contains("&amp; co"));
    }

    #[test]
    fn links_that_are_not_web_urls_stay_text() {
        assert_eq!(link("javascript:alert(1)", "x"), "x (javascript:alert(1))");
        assert_eq!(
            link("https://a.example/?q=1&r=<2>|x", "l<"),
            "<https://a.example/?q=1&amp;r=%3C2%3E%7Cx|l&lt;>"
        );
    }

    #[test]
    fn cutting_never_splits_an_entity_a_link_or_a_fence() {
        assert_eq!(cut("abc &amp; def", 7), "abc …");
        assert_eq!(cut("see <https://x.example/long|link> now", 12), "see …");
        let fenced = cut("step\n```aws s3 ls s3://bucket --recursive```", 20);
        assert!(fenced.ends_with("…```"), "{fenced}");
        assert!(fenced.chars().count() <= 20);
        assert_eq!(cut("short", 10), "short");
    }

    fn check_limits(m: &SlackMessage) -> Result<(), TestCaseError> {
        prop_assert!(m.blocks.len() <= MAX_BLOCKS);
        prop_assert!(!m.text.trim().is_empty());
        prop_assert!(m.text.chars().count() <= MAX_FALLBACK_CHARS);
        prop_assert!(
            m.text_chars() <= MAX_TOTAL_CHARS,
            "total {}",
            m.text_chars()
        );
        for b in &m.blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("header") => {
                    let t = b
                        .pointer("/text/text")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    prop_assert!(t.chars().count() <= MAX_HEADER_CHARS);
                }
                Some("section") => {
                    if let Some(t) = b.pointer("/text/text").and_then(Value::as_str) {
                        prop_assert!(t.chars().count() <= MAX_SECTION_CHARS);
                    }
                    if let Some(fields) = b.get("fields").and_then(Value::as_array) {
                        prop_assert!(fields.len() <= MAX_FIELDS);
                        for f in fields {
                            let t = f.get("text").and_then(Value::as_str).unwrap_or("");
                            prop_assert!(t.chars().count() <= MAX_FIELD_CHARS);
                        }
                    }
                }
                Some("context") => {}
                other => prop_assert!(false, "unexpected block {other:?}"),
            }
        }
        // Every `<` left is one of ours: a web link or the configured mention.
        let json = all_text(m).replace("<!subteam^S0123ABCD>", "");
        for (i, _) in json.match_indices('<') {
            let rest = json.get(i..).unwrap_or_default();
            prop_assert!(
                rest.starts_with("<https://") || rest.starts_with("<http://"),
                "stray < at {}",
                rest.chars().take(40).collect::<String>()
            );
        }
        prop_assert!(!json.contains("<!channel>"));
        Ok(())
    }

    fn big(seed: &str, times: usize) -> String {
        format!("{}<!channel>", seed.repeat(times))
    }

    /// Items of a long list: the first few carry the huge value, the rest a shorter one, so
    /// per-item caps and list cuts are both exercised without masking megabytes per case.
    fn item(i: usize, huge: &str, short: &str) -> String {
        if i < 3 {
            huge.to_owned()
        } else {
            short.to_owned()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_input_stays_within_slack_limits(
            seed in "[a-zA-Z0-9 <>&|*_`~:/.\\n-]{1,12}|\\PC{1,12}",
            times in 1usize..900,
            n_causes in 0usize..500,
            n_steps in 0usize..300,
            n_lines in 0usize..200,
            policy in prop_oneof![
                Just(ContentPolicy::Metadata),
                Just(ContentPolicy::Redacted),
                Just(ContentPolicy::Full),
            ],
        ) {
            let s = big(&seed, times);
            let short = big(&seed, times % 40 + 1);
            let mut a = alarm();
            a.name = s.clone();
            a.reason = s.clone();
            a.description = Some(s.clone());
            a.triggering_alarms = (0..n_lines).map(|i| item(i, &s, &short)).collect();
            if let Some(m) = a.metrics.first_mut() {
                m.dimensions.insert("FunctionName".into(), s.clone());
            }
            let mut alert = alert(AlertBody::Alarm(a));
            alert.account = Some(s.clone());
            let mut finding = finding();
            finding.title = s.clone();
            finding.summary = s.clone();
            finding.rule = s.clone();
            finding.evidence = (0..n_lines).map(|i| item(i, &s, &short)).collect();
            finding.context_notes = (0..n_lines).map(|i| item(i, &s, &short)).collect();
            finding.links = (0..n_lines)
                .map(|i| Link { label: item(i, &s, &short), url: format!("https://x.example/{}", item(i, &s, &short)) })
                .collect();
            finding.probable_causes = (0..n_causes)
                .map(|i| ProbableCause {
                    actor: item(i, &s, &short),
                    reason: item(i, &s, &short),
                    user_agent: Some(item(i, &s, &short)),
                    ..cause(u32::try_from(i).unwrap_or(0))
                })
                .collect();
            finding.runbook = (0..n_steps)
                .map(|i| RunbookStep {
                    action: Default::default(),
                    title: item(i, &s, &short),
                    command: crate::model::Command::new(vec!["aws".to_owned(), item(i, &s, &short)]),
                    link: Some(item(i, &s, &short)),
                })
                .collect();
            let dest = destination();
            let m = slack(
                &RenderInput { alert: &alert, finding: &finding, destination: &dest, policy, correlation_id: &s },
                &Redactor::new(),
            );
            check_limits(&m)?;
            let input = RenderInput { alert: &alert, finding: &finding, destination: &dest, policy, correlation_id: &s };
            let buttons = with_buttons(m, &input, &Redactor::new());
            prop_assert!(buttons.blocks.len() <= MAX_BLOCKS);
            prop_assert_eq!(buttons.blocks.last().map(|b| b["type"].clone()), Some(json!("actions")));
            for b in &buttons.blocks {
                for e in b["elements"].as_array().into_iter().flatten() {
                    if let Some(v) = e["value"].as_str() {
                        prop_assert!(v.chars().count() <= crate::slack_request::MAX_VALUE_CHARS);
                        prop_assert!(crate::slack_request::ButtonValue::decode(v).is_some());
                    }
                }
            }

            let call = crate::model::Change {
                actor: crate::model::Actor { name: s.clone(), ..change().actor },
                error_message: Some(s.clone()),
                user_agent: Some(s.clone()),
                resources: (0..n_lines).map(|i| item(i, &s, &short)).collect(),
                ..change()
            };
            let alert = crate::render::fixtures::alert(AlertBody::ApiCall(call));
            let m = slack(
                &RenderInput { alert: &alert, finding: &finding, destination: &dest, policy, correlation_id: &s },
                &Redactor::new(),
            );
            check_limits(&m)?;
        }
    }
}
