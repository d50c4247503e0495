//! Runbook commands are shell-safe in every output (issue 12, item 1).
//!
//! Hostile values (quotes, `;`, `$(…)`, backticks, newlines, zero-width and bidirectional
//! characters, very long and secret-shaped strings) go into alarms (name, dimension values,
//! statistic, tags) and CloudTrail calls, through the whole [`pipeline::evaluate`]. From every
//! output (the `--format json` report, Slack blocks, the SNS JSON document and its e-mail
//! text, terminal text, Amazon Q) each step's command is taken back out, the channel's own
//! escaping undone (JSON, Slack's `&amp;`/`&lt;`/`&gt;`), and it must either be the documented
//! placeholder or split, by strict POSIX shell rules, into exactly the step's `argv`.
//!
//! The splitter below refuses whatever a POSIX shell (or bash / zsh) would do more with than
//! split words: unquoted operators, expansions, globs, comments, history and brace expansion.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;
use vigil_core::enrich::{self, Context};
use vigil_core::model::{
    Actor, Alarm, AlarmState, AlarmType, Alert, AlertBody, Change, InputFamily, MetricRef,
    RunbookStep,
};
use vigil_core::pipeline::{self, Report, Settings};
use vigil_core::redact::{ContentPolicy, Redactor};
use vigil_core::render::{self, RenderInput, WITHHELD_PREFIX};
use vigil_core::route::{Destination, Owners};

/// The payload of issue 12: pasted, the old rendering printed `INJECTED-root`.
const ISSUE_PAYLOAD: &str = "token='arn:;echo INJECTED-$(id -un);'";

// ------------------------------------------------------------------------------ the splitter

/// Splits `line` into words as a POSIX shell does, refusing anything that would make the shell
/// do more than split words: unquoted `| & ; < > ( )`, line breaks, `$` and backticks anywhere
/// but inside single quotes, globs (`* ? [`), `{ }` (brace expansion), `!` (history expansion,
/// also inside double quotes), `#`, `~` and `=` at the start of a word (comment, tilde
/// expansion, zsh's `=cmd`), and blanks other than space and tab.
fn split_posix(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\')) => word.push(ch),
                            Some(ch @ ('$' | '`' | '\n')) => {
                                return Err(format!("\\{ch:?} inside double quotes"));
                            }
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch @ ('$' | '`' | '!')) => {
                            return Err(format!("{ch:?} inside double quotes"));
                        }
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => return Err("backslash at a line end".into()),
                Some(ch) => {
                    in_word = true;
                    word.push(ch);
                }
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '\n' | '$' | '`' | '*' | '?' | '[' | ']'
            | '{' | '}' | '!' => {
                return Err(format!("unquoted {c:?}"));
            }
            '#' | '~' | '=' if !in_word => return Err(format!("{c:?} starting a word")),
            c if c.is_whitespace() || c.is_control() => {
                return Err(format!("unquoted {c:?}"));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[test]
fn the_splitter_is_strict() {
    assert_eq!(
        split_posix(r#"aws x 'a b' "c'd" 'it'\''s' e\ f ''"#).unwrap(),
        ["aws", "x", "a b", "c'd", "it's", "e f", ""]
    );
    for bad in [
        "a;b", "a $(id)", "a `id`", "a 'b", "a \"$x\"", "a b|c", "a <b>", "a *", "a {b,c}", "a #b",
        "a ~", "a =ls", "a \"!x\"", "a\nb",
    ] {
        assert!(split_posix(bad).is_err(), "{bad:?}");
    }
}

// ------------------------------------------------------------------------------ the inputs

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 10, 30, 0)
        .single()
        .expect("a time")
}

fn settings() -> Settings {
    let mut s = Settings::with_defaults(Owners::single(Destination {
        team: "ai-platform".into(),
        slack_channel: Some("#ai".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:ai".into()),
        ..Destination::default()
    }));
    s.policy = ContentPolicy::Full;
    s
}

/// The metric shapes whose runbooks use the most event values.
const SHAPES: &[(&str, &str, &str)] = &[
    ("AWS/Lambda", "Errors", "FunctionName"),
    ("AWS/Lambda", "Throttles", "FunctionName"),
    ("AWS/Lambda", "Duration", "FunctionName"),
    ("AWS/Bedrock", "InvocationThrottles", "ModelId"),
    ("AWS/Bedrock", "InvocationLatency", "ModelId"),
    (
        "AWS/Bedrock/Guardrails",
        "InvocationsIntervened",
        "GuardrailArn",
    ),
    ("AWS/DynamoDB", "ThrottledRequests", "TableName"),
    ("Custom/App", "Failures", "Service"),
];

fn alarm(
    name: &str,
    shape: usize,
    main: &str,
    other: &str,
    stat: &str,
    tag: &str,
    metric: &str,
) -> Alert {
    let (ns, default_metric, dim) = SHAPES[shape % SHAPES.len()];
    let mut dimensions = BTreeMap::from([(dim.to_owned(), main.to_owned())]);
    dimensions.insert("Resource".to_owned(), other.to_owned());
    dimensions.insert(other.to_owned(), main.to_owned());
    Alert {
        id: format!("alarm-{shape}"),
        input: InputFamily::AlarmEventbridge,
        account: Some("123456789012".into()),
        region: Some("us-east-1".into()),
        time: t0(),
        body: AlertBody::Alarm(Alarm {
            name: name.to_owned(),
            arn: None,
            description: Some(format!("description {other}")),
            alarm_type: AlarmType::Metric,
            state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            reason: format!("reason {main}"),
            metrics: vec![MetricRef {
                namespace: Some(ns.to_owned()),
                name: if metric.is_empty() {
                    default_metric.to_owned()
                } else {
                    metric.to_owned()
                },
                dimensions,
                stat: Some(stat.to_owned()),
                period: Some(60),
            }],
            expression: None,
            alarm_rule: None,
            triggering_alarms: Vec::new(),
            threshold: Some(1.0),
            comparison: None,
            recent_datapoints: vec![3.0],
            tags: BTreeMap::from([("vigil:quota-code".to_owned(), tag.to_owned())]),
        }),
    }
}

/// A CloudTrail call whose request parameters and actor carry the hostile values.
fn call(event: (&str, &str), a: &str, b: &str) -> Change {
    let (source, name) = event;
    Change {
        event_id: format!("ev-{a}"),
        event_name: name.to_owned(),
        event_source: source.to_owned(),
        time: t0() - chrono::Duration::minutes(4),
        region: Some("us-east-1".into()),
        account: Some("123456789012".into()),
        actor: Actor {
            identity_type: Some("AssumedRole".into()),
            arn: Some(format!("arn:aws:sts::123456789012:assumed-role/{b}/{a}")),
            name: format!("{b}/{a}"),
            role_arn: Some(format!("arn:aws:iam::123456789012:role/{b}")),
            session_name: Some(a.to_owned()),
            invoked_by: None,
        },
        source_ip: None,
        user_agent: None,
        read_only: false,
        error_code: None,
        error_message: None,
        request: [
            ("name", a),
            ("trailName", a),
            ("roleName", b),
            ("policyArn", a),
            ("policyName", b),
            ("functionName", a),
            ("statementId", b),
            ("guardrailIdentifier", a),
            ("userName", b),
            ("groupName", a),
            ("bucketName", b),
            ("modelId", a),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect(),
        resources: vec![a.to_owned(), format!("arn:aws:iam::123456789012:role/{b}")],
        facts: Default::default(),
    }
}

const CALLS: &[(&str, &str)] = &[
    ("cloudtrail.amazonaws.com", "StopLogging"),
    ("cloudtrail.amazonaws.com", "PutEventSelectors"),
    ("iam.amazonaws.com", "DetachRolePolicy"),
    ("iam.amazonaws.com", "PutRolePolicy"),
    ("lambda.amazonaws.com", "AddPermission20150331v2"),
    ("bedrock.amazonaws.com", "UpdateGuardrail"),
    ("s3.amazonaws.com", "PutBucketPolicy"),
];

fn api_alert(event: usize, a: &str, b: &str) -> Alert {
    let change = call(CALLS[event % CALLS.len()], a, b);
    Alert {
        id: format!("call-{event}"),
        input: InputFamily::Cloudtrail,
        account: Some("123456789012".into()),
        region: Some("us-east-1".into()),
        time: t0(),
        body: AlertBody::ApiCall(change),
    }
}

/// An alarm with a hostile probable cause found in its context.
fn evaluate(alert: Alert, cause: Option<Change>) -> (Report, Settings) {
    let settings = settings();
    let ctx = match cause {
        Some(change) => Context::from_changes(
            enrich::window_for(alert.time, chrono::Duration::minutes(60)),
            alert.time + chrono::Duration::minutes(20),
            vec![change],
            enrich::sources_for(&alert),
        ),
        None => Context::default(),
    };
    let report = pipeline::evaluate(alert, &ctx, &settings, &Redactor::new());
    (report, settings)
}

// ------------------------------------------------------------------------------ the outputs

/// One command as a format shows it: the command text after the channel's escaping is undone,
/// or the placeholder.
#[derive(Debug)]
enum Shown {
    Command(String),
    Placeholder,
}

/// Every command every format shows, as `(format, step index, shown)`.
fn rendered_commands(report: &Report, settings: &Settings) -> Vec<(&'static str, usize, Shown)> {
    let redactor = Redactor::new();
    let mut out = Vec::new();

    // `--format json`: the report itself.
    let json: Value = serde_json::to_value(report).expect("report json");
    for (i, step) in json["finding"]["runbook"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        if let Some(c) = step["command"].as_str() {
            out.push(("json report", i, Shown::Command(c.to_owned())));
            let argv: Vec<String> = serde_json::from_value(step["argv"].clone()).expect("argv");
            assert_eq!(
                Some(argv.as_slice()),
                report.finding.runbook[i].command.as_ref().map(|c| c.argv()),
                "json report argv of step {i}"
            );
        }
    }

    // Slack: the runbook section of the Block Kit message.
    for addressed in &report.notifications.slack {
        for block in &addressed.message.blocks {
            let Some(text) = block["text"]["text"].as_str() else {
                continue;
            };
            if !text.starts_with("*Runbook*") {
                continue;
            }
            let mut step = None;
            for line in text.lines().skip(1) {
                if let Some(rest) = line.strip_prefix('*')
                    && let Some((n, _)) = rest.split_once(".* ")
                    && let Ok(n) = n.parse::<usize>()
                {
                    step = Some(n - 1);
                    continue;
                }
                let Some(i) = step else { continue };
                if line.starts_with("```") {
                    assert!(
                        line.len() >= 6 && line.ends_with("```"),
                        "slack: a code block on one line: {line:?}"
                    );
                    let inner = &line[3..line.len() - 3];
                    let decoded = inner
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&amp;", "&");
                    out.push(("slack", i, Shown::Command(decoded)));
                } else if line.starts_with(WITHHELD_PREFIX) {
                    out.push(("slack", i, Shown::Placeholder));
                }
            }
        }
    }

    // SNS: the JSON document in `default` and the e-mail text.
    for addressed in &report.notifications.sns {
        let envelope: Value = serde_json::from_str(&addressed.message.message).expect("envelope");
        let doc: Value =
            serde_json::from_str(envelope["default"].as_str().expect("default")).expect("doc");
        for (i, step) in doc["runbook"].as_array().expect("steps").iter().enumerate() {
            match (step["command"].as_str(), step["command_withheld"].as_str()) {
                (Some(c), None) => {
                    let argv: Vec<String> =
                        serde_json::from_value(step["argv"].clone()).expect("argv");
                    let want = report.finding.runbook[i].command.as_ref().map(|c| c.argv());
                    assert_eq!(Some(argv.as_slice()), want, "sns json argv of step {i}");
                    out.push(("sns json", i, Shown::Command(c.to_owned())));
                }
                (None, Some(p)) => {
                    assert!(p.starts_with(WITHHELD_PREFIX), "sns json: {p}");
                    out.push(("sns json", i, Shown::Placeholder));
                }
                (None, None) => {}
                (Some(_), Some(_)) => panic!("sns json: a command and a placeholder"),
            }
        }
        let email = envelope["email"].as_str().expect("email");
        out.extend(
            text_commands(email)
                .into_iter()
                .map(|(i, s)| ("sns email", i, s)),
        );
    }

    // Terminal text.
    let text = pipeline::text(report, settings, &redactor);
    out.extend(
        text_commands(&text)
            .into_iter()
            .map(|(i, s)| ("text", i, s)),
    );

    // Amazon Q Developer in chat.
    let destination = &report.route.matched[0].destination;
    let input = RenderInput {
        alert: &report.alert,
        finding: &report.finding,
        destination,
        policy: settings.policy,
        correlation_id: &report.alert.id,
    };
    let q = render::chatbot::chatbot(&input, &redactor);
    for (i, step) in q["content"]["nextSteps"]
        .as_array()
        .expect("nextSteps")
        .iter()
        .enumerate()
    {
        let step = step.as_str().expect("a string");
        if report.finding.runbook[i].command.is_none() {
            continue;
        }
        if step.contains(WITHHELD_PREFIX) {
            out.push(("amazon q", i, Shown::Placeholder));
            continue;
        }
        // The command is the last code span (a shown command holds no backtick; the link
        // after it is percent-encoded).
        let end = step.rfind('`').expect("a code span");
        let start = step[..end].rfind('`').expect("a code span");
        out.push((
            "amazon q",
            i,
            Shown::Command(step[start + 1..end].to_owned()),
        ));
    }
    out
}

/// Commands in terminal text (also the SNS e-mail body): the `Runbook` section's
/// `  N. [action] title` lines, each followed by `       $ command` or the placeholder.
fn text_commands(text: &str) -> Vec<(usize, Shown)> {
    let mut out = Vec::new();
    let mut lines = text.lines().skip_while(|l| *l != "Runbook").skip(1);
    let mut step = None;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("  ")
            && let Some((n, after)) = rest.split_once(". [")
            && after.contains("] ")
            && let Ok(n) = n.parse::<usize>()
        {
            step = Some(n - 1);
            continue;
        }
        let Some(i) = step else { continue };
        if let Some(cmd) = line.strip_prefix("       $ ") {
            out.push((i, Shown::Command(cmd.to_owned())));
        } else if line.trim_start().starts_with(WITHHELD_PREFIX) {
            out.push((i, Shown::Placeholder));
        }
    }
    out
}

/// Every shown command splits into exactly its step's `argv`; every step with a command shows
/// one (or the placeholder) in every format that shows the step.
fn check(report: &Report, settings: &Settings) -> Result<usize, TestCaseError> {
    let steps: &[RunbookStep] = &report.finding.runbook;
    let shown = rendered_commands(report, settings);
    for (format, i, s) in &shown {
        let want = steps[*i]
            .command
            .as_ref()
            .unwrap_or_else(|| panic!("{format}: step {i} has no command but shows one"));
        if let Shown::Command(c) = s {
            let words = split_posix(c)
                .map_err(|e| TestCaseError::fail(format!("{format}, step {i}: {e} in {c:?}")))?;
            prop_assert_eq!(
                words.as_slice(),
                want.argv(),
                "{}, step {}: {:?}",
                format,
                i,
                c
            );
        }
    }
    // No step with a command goes missing where its step is shown (the first few are always
    // shown in every format).
    for (i, step) in steps.iter().enumerate().take(3) {
        if step.command.is_none() {
            continue;
        }
        for format in [
            "json report",
            "slack",
            "sns json",
            "sns email",
            "text",
            "amazon q",
        ] {
            prop_assert!(
                shown.iter().any(|(f, j, _)| *f == format && *j == i),
                "{} does not show step {}'s command or placeholder",
                format,
                i
            );
        }
    }
    Ok(shown.len())
}

// ------------------------------------------------------------------------------ the tests

/// Values an attacker who can name an alarm or a resource can choose.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary Unicode, control characters included.
        any::<String>(),
        // Shell syntax, densely.
        "[ a-z0-9'\"\\\\;&|<>()$`*?\\[\\]{}~#!=%^\n\t-]{0,40}",
        // Invisible and direction-changing characters around shell syntax.
        "[a\u{200B}\u{200D}\u{202E}\u{2066}\u{2069}\u{FEFF}\u{00A0}'$`;]{1,20}",
        // Secret-shaped text, quoted and not.
        Just("token=abcdef0123456789abcdef".to_owned()),
        Just("password='x'\\''$(id)'".to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
        Just("x secret_key=\"a'b\" y".to_owned()),
        Just("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
        "(token|password|api_key|secret)[=:]['\" ]?[A-Za-z0-9';$()`]{0,30}",
        // Very long values.
        ("[a-z';$]{1,8}", 100usize..3000).prop_map(|(s, n)| s.repeat(n / s.len().max(1))),
        // The issue's payload and relatives.
        Just(ISSUE_PAYLOAD.to_owned()),
        Just("x';echo INJECTED;'".to_owned()),
        Just("`echo INJECTED`".to_owned()),
        Just("```\n$(echo INJECTED)\n```".to_owned()),
        Just("&lt;$(echo INJECTED)&gt; &amp;".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn alarm_commands_split_into_their_argv_in_every_format(
        name in hostile(),
        main in hostile(),
        other in hostile(),
        stat in prop_oneof![Just("Sum".to_owned()), Just("p99".to_owned()), "p[0-9]{1,2}[ ';$]{0,3}", hostile()],
        tag in hostile(),
        metric in prop_oneof![Just(String::new()), hostile()],
        shape in 0usize..SHAPES.len(),
        with_cause in any::<bool>(),
        event in 0usize..CALLS.len(),
    ) {
        let cause = with_cause.then(|| call(CALLS[event], &other, &main));
        let (report, settings) = evaluate(alarm(&name, shape, &main, &other, &stat, &tag, &metric), cause);
        prop_assert!(report.finding.runbook.iter().any(|s| s.command.is_some()));
        check(&report, &settings)?;
    }

    #[test]
    fn api_call_commands_split_into_their_argv_in_every_format(
        a in hostile(),
        b in hostile(),
        event in 0usize..CALLS.len(),
    ) {
        let (report, settings) = evaluate(api_alert(event, &a, &b), None);
        check(&report, &settings)?;
    }
}

/// Shell syntax, quotes and non-ASCII letters are no reason to withhold a command: with no
/// backtick, angle bracket, ampersand or invisible character, every format shows it.
#[test]
fn quoted_shell_syntax_is_shown_in_every_format() {
    let value = "fn'x\"y;z $(id) | a*b?[c]{d} ~#!=% été 漢字";
    let (report, settings) = evaluate(
        alarm("tool-errors", 0, value, "prod", "Sum", "L-1", ""),
        None,
    );
    check(&report, &settings).expect("every command splits into its argv");
    let step = report
        .finding
        .runbook
        .iter()
        .position(|s| {
            s.command.as_ref().is_some_and(|c| {
                c.argv().get(..2) == Some(&["aws".to_owned(), "lambda".to_owned()])
            })
        })
        .expect("a Lambda step");
    assert!(
        report.finding.runbook[step]
            .command
            .as_ref()
            .is_some_and(|c| c.argv().iter().any(|w| w == value))
    );
    let shown = rendered_commands(&report, &settings);
    for format in [
        "json report",
        "slack",
        "sns json",
        "sns email",
        "text",
        "amazon q",
    ] {
        assert!(
            shown
                .iter()
                .any(|(f, i, s)| *f == format && *i == step && matches!(s, Shown::Command(_))),
            "{format} withholds a command it can show: {shown:#?}"
        );
    }
}

/// The issue's exact payload: every format's command either is the placeholder or splits into
/// exactly the step's words, and a real `sh` given each command runs only `aws` with those
/// words (no `INJECTED` line, no command substitution).
#[test]
fn the_issue_payload_injects_into_no_format() {
    let (report, settings) = evaluate(
        alarm("tool-errors", 0, ISSUE_PAYLOAD, "prod", "Sum", "L-1234", ""),
        None,
    );
    let shown = check(&report, &settings).expect("every command splits into its argv");
    assert!(shown >= 6, "commands found in every format: {shown}");

    let commands = rendered_commands(&report, &settings);
    let mut ran = 0;
    for (format, i, s) in &commands {
        let Shown::Command(line) = s else { continue };
        let want = report.finding.runbook[*i]
            .command
            .as_ref()
            .expect("command");
        assert!(line.starts_with("aws "), "{format}: {line}");
        // `aws` is a function that prints its words, one per line; anything else the line
        // made the shell do would print (or fail) too.
        let script = format!("aws() {{ printf '<%s>\\n' \"$@\"; }}\n{line}\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{format}, step {i}: {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The payload's text reaches `aws` as part of a word (`<...>`); an injection would
        // print `INJECTED-<user>` on a line of its own.
        assert!(
            stdout
                .lines()
                .all(|l| l.starts_with('<') && l.ends_with('>')),
            "{format}: {line}\n{stdout}"
        );
        let words: Vec<String> = want.argv()[1..].iter().map(|w| format!("<{w}>")).collect();
        assert_eq!(
            stdout,
            format!("{}\n", words.join("\n")),
            "{format}: {line}"
        );
        ran += 1;
    }
    assert!(ran >= 6, "ran {ran} commands");
    // The function name is one of the words, whole.
    assert!(report.finding.runbook.iter().any(|s| {
        s.command
            .as_ref()
            .is_some_and(|c| c.argv().iter().any(|w| w == ISSUE_PAYLOAD))
    }));
}
