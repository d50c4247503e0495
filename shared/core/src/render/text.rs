//! Terminal text: what `vigil replay` and `vigil render` print, and the body of SNS e-mail.
//!
//! Invariant: plain text of at most [`MAX_TEXT_CHARS`] characters in which nothing from an event
//! can move the cursor or recolour the terminal (the view has already stripped control
//! characters, escape sequences and bidirectional overrides).

use super::{
    CauseView, CommandView, Fact, RenderInput, StepView, View, fmt_time, join_listed, more,
    withheld,
};
use crate::redact::{Redactor, truncate};

/// The longest text rendering; beyond this the output ends with "…".
pub const MAX_TEXT_CHARS: usize = 20_000;

const CAUSES_SHOWN: usize = 10;
const STEPS_SHOWN: usize = 20;
const EVIDENCE_SHOWN: usize = 20;
const LINKS_SHOWN: usize = 10;
const NOTES_SHOWN: usize = 10;
/// Width of the label column in the facts table.
const LABEL_WIDTH: usize = 14;

/// Renders the alert as readable terminal text: title line, summary, the alarm / call /
/// change, what changed, runbook, evidence, links, notes and the route.
pub fn text(input: &RenderInput<'_>, redactor: &Redactor) -> String {
    render(&View::new(input, redactor))
}

pub(super) fn render(v: &View) -> String {
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };

    line(&format!("[{}] {}", v.severity_label(), v.title));
    line(&format!(
        "  {} · rule {} · from {}",
        v.kind,
        v.rule,
        v.input.as_str()
    ));
    let mut where_ = Vec::new();
    if let Some(a) = &v.account {
        where_.push(format!("account {a}"));
    }
    if let Some(r) = &v.region {
        where_.push(format!("region {r}"));
    }
    where_.push(fmt_time(v.time));
    line(&format!("  {}", where_.join(" · ")));
    let mut what = Vec::new();
    if let Some(r) = &v.resource {
        what.push(format!("resource {r}"));
    }
    if let Some(s) = &v.state {
        what.push(format!("state {s}"));
    }
    if !what.is_empty() {
        line(&format!("  {}", what.join(" · ")));
    }

    if !v.summary.trim().is_empty() {
        line("");
        line("Summary");
        line(&indent(&v.summary, 2));
    }

    line("");
    line(v.subject_heading());
    for f in v.subject_facts() {
        line(&fact_line(&f));
    }

    if !v.causes.is_empty() {
        let n = v.causes.total;
        line("");
        line(&format!(
            "What changed ({n} probable cause{}, most likely first)",
            if n == 1 { "" } else { "s" }
        ));
        for (i, c) in v.causes.items.iter().take(CAUSES_SHOWN).enumerate() {
            line(&cause_lines(i + 1, c));
        }
        more_line(&mut line, n, CAUSES_SHOWN.min(v.causes.items.len()));
    }

    if !v.runbook.is_empty() {
        line("");
        line("Runbook");
        for (i, s) in v.runbook.items.iter().take(STEPS_SHOWN).enumerate() {
            line(&step_lines(i + 1, s));
        }
        more_line(
            &mut line,
            v.runbook.total,
            STEPS_SHOWN.min(v.runbook.items.len()),
        );
    }

    if !v.evidence.is_empty() {
        line("");
        line(&format!("Evidence (rule {})", v.rule));
        for e in v.evidence.items.iter().take(EVIDENCE_SHOWN) {
            line(&bullet(e));
        }
        more_line(
            &mut line,
            v.evidence.total,
            EVIDENCE_SHOWN.min(v.evidence.items.len()),
        );
    }

    if !v.links.is_empty() {
        line("");
        line("Links");
        for l in v.links.items.iter().take(LINKS_SHOWN) {
            line(&format!("  - {}: {}", l.label, l.url));
        }
        more_line(
            &mut line,
            v.links.total,
            LINKS_SHOWN.min(v.links.items.len()),
        );
    }

    if !v.notes.is_empty() {
        line("");
        line("Notes");
        for n in v.notes.items.iter().take(NOTES_SHOWN) {
            line(&bullet(n));
        }
        more_line(
            &mut line,
            v.notes.total,
            NOTES_SHOWN.min(v.notes.items.len()),
        );
    }

    line("");
    line("Route");
    let mut route = format!("  team {}", v.team);
    if let Some(c) = &v.channel {
        route.push_str(&format!(" -> {c}"));
    }
    if !v.mentions.is_empty() {
        route.push_str(&format!(" · cc {}", v.mentions.join(" ")));
    }
    line(&route);
    line(&format!(
        "  correlation id {} · content policy {}",
        v.correlation_id, v.policy
    ));

    cut_at_line(&out, MAX_TEXT_CHARS)
}

/// `s` cut to at most `max` characters at the end of a line, then "…": a cut never falls
/// inside a line, so never inside a command (a line that alone is longer than `max` is left
/// out whole).
pub(super) fn cut_at_line(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for line in s.split_inclusive('\n') {
        let n = line.chars().count();
        if used + n + 1 > max {
            break;
        }
        out.push_str(line);
        used += n;
    }
    out.push('…');
    out
}

fn more_line(line: &mut impl FnMut(&str), total: usize, shown: usize) {
    let rest = total.saturating_sub(shown);
    if rest > 0 {
        line(&format!("  {}", more(rest)));
    }
}

fn fact_line(f: &Fact) -> String {
    let label = format!("{}:", f.label.to_lowercase());
    let pad = LABEL_WIDTH + 2 + 1;
    let value = indent(&f.value, pad);
    let value = value.get(pad..).unwrap_or_default();
    format!("  {label:<width$} {value}", width = LABEL_WIDTH)
}

fn cause_lines(n: usize, c: &CauseView) -> String {
    let pad = 5;
    let mut s = format!(
        "  {n}. {} ({}) by {}, {}",
        c.event_name, c.event_source, c.actor, c.relative
    );
    let mut when = format!("at {}", fmt_time(c.time));
    if let Some(ip) = &c.source_ip {
        when.push_str(&format!(" from {ip}"));
    }
    if let Some(ua) = &c.user_agent {
        when.push_str(&format!(" with {}", truncate(ua, 120)));
    }
    s.push('\n');
    s.push_str(&indent(&when, pad));
    if let Some(reason) = &c.reason {
        s.push('\n');
        s.push_str(&indent(reason, pad));
    }
    if !c.resources.is_empty() {
        s.push('\n');
        s.push_str(&indent(
            &format!("on {}", join_listed(&c.resources, ", ", 3)),
            pad,
        ));
    }
    s.push('\n');
    let mut event = format!("event {} (score {})", c.event_id, c.score);
    if let Some(url) = &c.console_link {
        event.push_str(&format!("  {url}"));
    }
    s.push_str(&indent(&event, pad));
    s
}

fn step_lines(n: usize, s: &StepView) -> String {
    // The label says whether the step only reads, opens a page, or changes something.
    let mut out = format!("  {n}. [{}] {}", s.action.as_str(), s.title);
    // The command line exactly as built (one line: no value carries a line break), or the
    // placeholder; a terminal shows every character the view lets through as itself.
    match &s.command {
        Some(CommandView::Shown(cmd)) => {
            out.push('\n');
            out.push_str(&" ".repeat(7));
            out.push_str("$ ");
            out.push_str(cmd.line());
        }
        Some(CommandView::Withheld(why)) => {
            out.push('\n');
            out.push_str(&indent(&withheld(*why), 7));
        }
        None => {}
    }
    if let Some(url) = &s.link {
        out.push('\n');
        out.push_str(&indent(&format!("see {url}"), 7));
    }
    out
}

fn bullet(s: &str) -> String {
    let body = indent(s, 4);
    format!("  - {}", body.get(4..).unwrap_or_default())
}

/// Every line of `s` indented by `n` spaces.
fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertBody;
    use crate::redact::ContentPolicy;
    use crate::render::fixtures::*;

    #[test]
    fn an_alarm_reads_like_a_good_cli() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let finding = finding();
        let dest = destination();
        let out = text(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Redacted,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        for needle in [
            "[HIGH] Throttling: bedrock-throttles-claude\n",
            "  throttle_spike · rule bedrock-invocation-throttles · from alarm_eventbridge\n",
            "  account 123456789012 · region us-east-1 · 2024-05-01 12:00:00 UTC\n",
            "\nThe alarm\n",
            "  threshold:     > 10\n",
            "  recent values: 0, 2, 12, 40, 85 ▁▁▂▄█\n",
            "What changed (1 probable cause, most likely first)\n",
            "  1. DeleteRolePolicy (iam.amazonaws.com) by admin/alice, 4 min before the alert\n",
            "     at 2024-05-01 11:56:00 UTC from 203.0.113.5 with aws-cli/2.15.0\n",
            "Runbook\n  1. [check] Check the model's service quotas\n       $ aws service-quotas",
            "       see https://runbooks.example.com/ai/throttle_spike\n",
            "Route\n  team ai-platform -> #ai-alerts · cc <!subteam^S0123ABCD>\n",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
    }

    #[test]
    fn terminal_escape_sequences_from_events_are_stripped() {
        let mut a = alarm();
        a.name = "evil\u{1b}[2J\u{1b}]0;title\u{7}name".into();
        a.reason = "line1\nline2\u{1b}[31m".into();
        let alert = alert(AlertBody::Alarm(a));
        let finding = finding();
        let dest = destination();
        let out = text(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Full,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        assert!(!out.contains('\u{1b}'));
        assert!(!out.contains('\u{7}'));
        assert!(
            out.contains("  reason:        line1\n                 line2[31m\n"),
            "{out}"
        );
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let alert = alert(AlertBody::Alarm(alarm()));
        let mut finding = finding();
        finding.probable_causes = (0..37).map(cause).collect();
        let dest = destination();
        let out = text(
            &RenderInput {
                alert: &alert,
                finding: &finding,
                destination: &dest,
                policy: ContentPolicy::Redacted,
                correlation_id: &alert.id,
            },
            &Redactor::new(),
        );
        assert!(out.contains("  10. DeleteRolePolicy"));
        assert!(!out.contains("  11. DeleteRolePolicy"));
        assert!(out.contains("  ...and 27 more\n"));
    }
}
