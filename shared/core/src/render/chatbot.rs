//! Amazon Q Developer in chat applications (formerly AWS Chatbot) custom notifications, the
//! optional output format of README.md "Usage": published to an SNS topic the chat client subscribes to.
//!
//! Invariant: the result follows the custom-notification schema (`version` "1.0", `source`
//! "custom", `content.textType` "client-markdown"); no event value can open a link or a mention
//! or add formatting; every field stays within the conservative caps below.
//!
//! `client-markdown` is rendered in the chat platform's own markup: Slack mrkdwn in Slack,
//! Markdown in Microsoft Teams. No escape works in both (Slack shows a backslash as a
//! backslash), so every event value goes through `md`, which swaps the characters that
//! would be markup in either for look-alikes: `<` `>` (Slack links and mentions, HTML,
//! Markdown autolinks, quotes), `[` `]` (Markdown links, images and reference links), `*`
//! `~` and backticks (emphasis, strike-through, code), `_` where it could open or close
//! emphasis, `#` at the start of a line (headings), `\` (Markdown escapes), the `&` of an
//! entity (`&lt;`) and the `@` of `@channel`, `@here` and `@everyone`. Bare URLs in a value
//! stay readable text; a client that makes them clickable shows the URL itself, never a
//! label the sender chose.

use serde_json::{Map, Value, json};

use super::slack::{fit_list, starts_entity};
use super::{CommandView, RenderInput, View, Withheld, more, withheld};
use crate::redact::{Redactor, sanitize, truncate};

// AWS documents the schema but few length limits; these caps are deliberately conservative so
// a notification is never dropped for size.
const TITLE_CHARS: usize = 250;
const DESCRIPTION_CHARS: usize = 4_000;
const SUMMARY_CHARS: usize = 250;
const STEP_CHARS: usize = 500;
const STEPS_SHOWN: usize = 10;
const CAUSES_SHOWN: usize = 5;
const KEYWORDS: usize = 10;
const KEYWORD_CHARS: usize = 75;
const RESOURCES: usize = 10;

/// A command as a Markdown code span, exactly as built, or the placeholder. The line is never
/// rewritten: a code span cannot hold a backtick, and `<`, `>` and `&` are what this format
/// would have to change (angle brackets become look-alikes elsewhere; how the client treats
/// entities is not documented), so a line with any of them is withheld.
fn command_span(command: &CommandView) -> String {
    match command {
        CommandView::Shown(c) if c.line().contains(['`', '<', '>', '&']) => {
            withheld(Withheld::Unshowable)
        }
        CommandView::Shown(c) => format!("`{}`", c.line()),
        CommandView::Withheld(why) => withheld(*why),
    }
}

/// Renders an Amazon Q Developer in chat custom notification:
/// `{"version":"1.0","source":"custom","id":..,"content":{..},"metadata":{..}}`.
pub fn chatbot(input: &RenderInput<'_>, redactor: &Redactor) -> Value {
    render(&View::new(input, redactor))
}

fn render(v: &View) -> Value {
    let title = truncate(
        &format!("{} [{}] {}", emoji(v), v.severity_label(), md(&v.title)),
        TITLE_CHARS,
    )
    .into_owned();

    let next_steps: Vec<String> = v
        .runbook
        .items
        .iter()
        .take(STEPS_SHOWN)
        .map(|s| {
            // `md` swaps backticks for a look-alike, so the title cannot pair with the
            // command's code span.
            let title = md(&s.title);
            let link = s
                .link
                .as_deref()
                .map(|l| format!(" ({})", md(l)))
                .unwrap_or_default();
            let step = match &s.command {
                None => format!("{title}{link}"),
                Some(command) => {
                    let shown = format!("{title}: {}", command_span(command));
                    let step = if shown.chars().count() <= STEP_CHARS {
                        shown
                    } else {
                        format!("{title}: {}", withheld(Withheld::TooLong))
                    };
                    // The link only when it fits whole: the command stays complete.
                    if step.chars().count() + link.chars().count() <= STEP_CHARS {
                        format!("{step}{link}")
                    } else {
                        step
                    }
                }
            };
            // Only a step without a command, or with the placeholder, is ever cut; the cut
            // keeps code spans closed.
            cut_md(&step, STEP_CHARS)
        })
        .collect();

    let mut keywords: Vec<String> = [
        Some(v.kind.as_str().to_owned()),
        Some(v.severity.as_str().to_owned()),
        Some(v.team.clone()),
        v.account.clone(),
        v.region.clone(),
    ]
    .into_iter()
    .flatten()
    .map(|k| truncate(&md(&k), KEYWORD_CHARS).into_owned())
    .collect();
    keywords.truncate(KEYWORDS);

    let mut resources: Vec<String> = v.resource.iter().cloned().collect();
    for c in &v.causes.items {
        for r in &c.resources.items {
            if resources.len() >= RESOURCES {
                break;
            }
            if !resources.contains(r) {
                resources.push(r.clone());
            }
        }
    }
    let resources: Vec<String> = resources.iter().map(|r| md(r)).collect();

    let mut context = Map::new();
    for (k, val) in [
        ("account", v.account.as_deref()),
        ("region", v.region.as_deref()),
        ("rule", Some(v.rule.as_str())),
        ("team", Some(v.team.as_str())),
        ("correlation_id", Some(v.correlation_id.as_str())),
        ("content_policy", Some(v.policy.as_str())),
    ] {
        if let Some(val) = val {
            context.insert(k.to_owned(), Value::String(md(val)));
        }
    }

    json!({
        "version": "1.0",
        "source": "custom",
        "id": md(&v.correlation_id),
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description(v),
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": md(&v.thread_key()),
            "summary": truncate(&format!("[{}] {}", v.severity_label(), md(&v.title)), SUMMARY_CHARS),
            "eventType": v.kind.as_str(),
            "relatedResources": resources,
            "additionalContext": context,
        },
    })
}

fn emoji(v: &View) -> &'static str {
    use crate::model::{Kind, Severity};
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

/// Summary, the subject's facts and the probable causes, within [`DESCRIPTION_CHARS`].
fn description(v: &View) -> String {
    let mut out = truncate(&md(&v.summary), DESCRIPTION_CHARS / 3).into_owned();
    let facts: Vec<String> = v
        .subject_facts()
        .iter()
        .map(|f| {
            let value = truncate(&md(&f.value), 300).replace('\n', " ");
            format!("• *{}:* {value}", f.label)
        })
        .collect();
    let room = DESCRIPTION_CHARS.saturating_sub(out.chars().count() + 2) / 2;
    if let Some(section) = fit_list(
        &format!("*{}*", v.subject_heading()),
        &facts,
        facts.len(),
        room,
    ) {
        out.push_str("\n\n");
        out.push_str(&section);
    }
    if !v.causes.is_empty() {
        let causes: Vec<String> = v
            .causes
            .items
            .iter()
            .take(CAUSES_SHOWN)
            .enumerate()
            .map(|(i, c)| {
                let mut s = format!(
                    "{}. `{}` ({}) by *{}*, {}",
                    i + 1,
                    md(&c.event_name),
                    md(&c.event_source),
                    md(&c.actor),
                    c.relative
                );
                if let Some(ip) = &c.source_ip {
                    s.push_str(&format!(" from {}", md(ip)));
                }
                if let Some(reason) = &c.reason {
                    s.push_str(&format!(": {}", md(reason)));
                }
                s.push_str(&format!(" (event {})", md(&c.event_id)));
                cut_md(&s, 600)
            })
            .collect();
        let room = DESCRIPTION_CHARS.saturating_sub(out.chars().count() + 2);
        if let Some(section) = fit_list("*What changed*", &causes, v.causes.total, room) {
            out.push_str("\n\n");
            out.push_str(&section);
        }
    }
    if !v.notes.is_empty() {
        let notes: Vec<String> = v
            .notes
            .items
            .iter()
            .take(5)
            .map(|n| format!("• {}", md(n)))
            .collect();
        let room = DESCRIPTION_CHARS.saturating_sub(out.chars().count() + 2);
        if let Some(section) = fit_list("*Notes*", &notes, v.notes.total, room) {
            out.push_str("\n\n");
            out.push_str(&section);
        }
    }
    let rest = v.runbook.total.saturating_sub(STEPS_SHOWN);
    if rest > 0 {
        let line = format!("\n\n_Runbook: {}_", more(rest));
        if out.chars().count() + line.chars().count() <= DESCRIPTION_CHARS {
            out.push_str(&line);
        }
    }
    cut_md(&out, DESCRIPTION_CHARS)
}

/// An event value as inert text in `client-markdown` (see the module documentation): control,
/// invisible and bidirectional characters stripped (newlines kept), markup characters swapped
/// for look-alikes. An `_` between two letters or digits stays (`my_alarm_name`): neither
/// Slack nor Markdown emphasises inside a word.
pub(super) fn md(s: &str) -> String {
    let s = sanitize(s, true);
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: Option<char> = None;
    let mut line_start = true;
    for (i, c) in s.char_indices() {
        let rest = s.get(i..).unwrap_or_default();
        let next = rest.chars().nth(1);
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let swapped = match c {
            '<' => Some('‹'),
            '>' => Some('›'),
            '[' => Some('［'),
            ']' => Some('］'),
            '*' => Some('∗'),
            '~' => Some('∼'),
            '`' => Some('ˋ'),
            '\\' => Some('⧵'),
            '_' if !(word(prev) && word(next)) => Some('＿'),
            '#' if line_start => Some('＃'),
            '&' if starts_entity(rest) => Some('＆'),
            '@' if !word(prev) && is_broadcast(rest) => Some('＠'),
            _ => None,
        };
        out.push(swapped.unwrap_or(c));
        if c == '\n' {
            line_start = true;
        } else if !c.is_whitespace() {
            line_start = false;
        }
        prev = Some(c);
    }
    out
}

/// `s` cut to `max` characters (ending in "…" when cut) without leaving a code span open: an
/// open one would end at the cut, and what followed its opening backtick would be read as
/// markup again. Values carry no backticks ([`md`]), so every backtick is vigil's own and an
/// odd count means the cut fell inside a span.
fn cut_md(s: &str, max: usize) -> String {
    let cut = truncate(s, max);
    if cut.len() == s.len() || cut.matches('`').count().is_multiple_of(2) {
        return cut.into_owned();
    }
    let mut out = truncate(s, max.saturating_sub(1)).into_owned();
    if !out.matches('`').count().is_multiple_of(2) {
        out.push('`');
    }
    out
}

/// Whether `s` begins with `@channel`, `@here` or `@everyone` as a word.
fn is_broadcast(s: &str) -> bool {
    ["@channel", "@here", "@everyone"].iter().any(|w| {
        s.get(..w.len()).is_some_and(|h| h.eq_ignore_ascii_case(w))
            && !s
                .get(w.len()..)
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertBody;
    use crate::redact::ContentPolicy;
    use crate::render::fixtures::*;

    #[test]
    fn a_custom_notification_follows_the_schema() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        let n = chatbot(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Redacted,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        assert_eq!(n.get("version").and_then(Value::as_str), Some("1.0"));
        assert_eq!(n.get("source").and_then(Value::as_str), Some("custom"));
        assert_eq!(
            n.pointer("/content/textType").and_then(Value::as_str),
            Some("client-markdown")
        );
        assert_eq!(
            n.pointer("/content/title").and_then(Value::as_str),
            Some(":red_circle: [HIGH] Throttling: bedrock-throttles-claude")
        );
        let description = n
            .pointer("/content/description")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(description.contains("*What changed*"), "{description}");
        assert!(description.contains("`DeleteRolePolicy`"));
        assert_eq!(
            n.pointer("/content/nextSteps/0").and_then(Value::as_str),
            Some(
                "Check the model's service quotas: `aws service-quotas list-service-quotas --service-code bedrock --region us-east-1`"
            )
        );
        assert_eq!(
            n.pointer("/metadata/threadId").and_then(Value::as_str),
            Some(
                "123456789012/us-east-1/alarm/arn:aws:cloudwatch:us-east-1:123456789012:alarm:bedrock-throttles-claude"
            )
        );
        assert_eq!(
            n.pointer("/metadata/eventType").and_then(Value::as_str),
            Some("throttle_spike")
        );
    }

    fn next_steps(words: &[&str], title: &str) -> Vec<String> {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        finding.runbook = vec![crate::model::RunbookStep {
            action: crate::model::StepAction::Check,
            title: title.to_owned(),
            command: crate::model::Command::new(words.iter().map(|w| (*w).to_owned()).collect()),
            link: Some("https://console.example.com/x".to_owned()),
        }];
        let dest = destination();
        let n = chatbot(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        serde_json::from_value(n.pointer("/content/nextSteps").cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    #[test]
    fn a_command_is_shown_exactly_or_withheld_never_rewritten() {
        // Quotes and shell syntax inside a quoted word: shown as the line, untouched.
        assert_eq!(
            next_steps(
                &[
                    "aws",
                    "lambda",
                    "get-function",
                    "--function-name",
                    "a'b;$(id)"
                ],
                "T"
            ),
            [
                "T: `aws lambda get-function --function-name 'a'\\''b;$(id)'` (https://console.example.com/x)"
            ]
        );
        // A backtick (the old renderer turned it into a quote) or an angle bracket (the old
        // renderer turned it into a look-alike) cannot be shown exactly in a code span.
        for word in ["a`id`b", "<role-name>", "a&b"] {
            let steps = next_steps(&["aws", "iam", "get-role", "--role-name", word], "T");
            assert!(
                steps[0].starts_with(&format!("T: {}", super::super::WITHHELD_PREFIX)),
                "{steps:?}"
            );
        }
        // A backtick in the title cannot pair with the command's code span.
        let steps = next_steps(&["aws", "x"], "a`b");
        assert_eq!(
            steps[0],
            "a\u{2CB}b: `aws x` (https://console.example.com/x)"
        );
        // Too long to show whole: the placeholder, not a cut command.
        let long = "x".repeat(600);
        let steps = next_steps(&["aws", "x", &long], "T");
        assert!(steps[0].contains("too long"), "{steps:?}");
        assert!(!steps[0].contains("xxxx"), "{steps:?}");
    }

    #[test]
    fn values_are_inert_in_slack_and_markdown_alike() {
        assert_eq!(
            md("[x](https://evil.example) <https://evil.example|y> *b* ~s~ `c` \\"),
            "［x］(https://evil.example) ‹https://evil.example|y› ∗b∗ ∼s∼ ˋcˋ ⧵"
        );
        // Emphasis only where an `_` could open or close it; names keep theirs.
        assert_eq!(md("my_alarm_name _it_"), "my_alarm_name ＿it＿");
        // Entities, headings and broadcast mentions.
        assert_eq!(md("&lt;!here&gt; R&D"), "＆lt;!here＆gt; R&D");
        assert_eq!(md("# h\n  #x a#b"), "＃ h\n  ＃x a#b");
        assert_eq!(
            md("@channel @Here @everyone! @channels a@here.example"),
            "＠channel ＠Here ＠everyone! @channels a@here.example"
        );
        assert_eq!(md("a\u{200b}b\u{202e}c\u{2066}"), "abc");
    }

    #[test]
    fn a_cut_never_leaves_a_code_span_open() {
        let step = format!(
            "Check: `aws logs tail {}`",
            md("[x](https://evil.example) ").repeat(40)
        );
        let cut = cut_md(&step, STEP_CHARS);
        assert!(cut.chars().count() <= STEP_CHARS);
        assert!(cut.ends_with("…`"), "{cut}");
        assert_eq!(cut.matches('`').count() % 2, 0);
        assert_eq!(cut_md("short `x`", 50), "short `x`");
        assert_eq!(cut_md("ab `cdef`", 6), "ab `…`");
    }

    #[test]
    fn event_text_cannot_mention_in_chat() {
        let mut a = alarm();
        a.name = "<!channel>".into();
        let alert = alert(AlertBody::Alarm(a));
        let mut finding = finding();
        finding.title = "<!here> <https://evil.example|x>".into();
        finding.summary = "<!channel>".repeat(2_000);
        let dest = destination();
        let n = chatbot(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: "<!everyone>",
            },
            &Redactor::new(),
        );
        let json = n.to_string();
        assert!(!json.contains('<'), "{json}");
        let description = n
            .pointer("/content/description")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(description.chars().count() <= DESCRIPTION_CHARS);
    }
}
