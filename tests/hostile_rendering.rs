//! A hostile event through every message kind and every format (issue 12, item 3).
//!
//! Anyone who can create a CloudWatch alarm, make an API call or name a resource chooses text
//! that vigil renders. Here an alarm (name, dimension values, description, reason), a CloudTrail
//! call (actor, user agent, error message, resources, request) and a Config change (resource,
//! rule) carry Slack mentions and links, a Markdown link, entity-escaped brackets, zero-width and
//! bidirectional characters, backticks and emphasis. Each goes through the real intake and
//! pipeline, then into every message kind vigil sends to Slack (the first message with its
//! buttons, a thread reply, the resolve edit, the flapping notice, the digest note and, for each
//! of these, the plain-text resend after `invalid_blocks`) and into every other format (SNS JSON
//! and e-mail, terminal text, Amazon Q). The checks:
//!
//! - Slack: no `<` in any mrkdwn or fallback text except vigil's own web links (never to the
//!   attacker's host) and the configured mention; no `<!`, `<@` or `<#` from a value; every `&`
//!   starts an entity Slack knows; every mrkdwn object is `verbatim`; `plain_text` has no angle
//!   brackets and no entity a client could decode into one.
//! - Amazon Q: no angle brackets, no Markdown link (`](`, `]:`), no entity, no emphasis or
//!   code markup and no broadcast mention from a value.
//! - Everywhere: no zero-width or bidirectional control character.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_core::cloudtrail;
use vigil_core::enrich::{self, Context};
use vigil_core::intake;
use vigil_core::noise::{Digest, digest_line};
use vigil_core::pipeline::{self, Report, Settings};
use vigil_core::redact::{ContentPolicy, Redactor};
use vigil_core::render::slack::{flap_notice, resolved_root, with_note};
use vigil_core::render::{self, RenderInput, SlackMessage};
use vigil_core::route::{Destination, Owners};

/// The configured mention: trusted configuration, the one `<!…>` allowed through.
const MENTION: &str = "<!subteam^S0123ABCD>";

/// Invisible and bidirectional characters planted in the values: zero-width space, non-joiner
/// and joiner, LRM, RLM, LRE, RLO, LRI, PDI, word joiner, BOM, soft hyphen, a tag character.
const HIDDEN: &str = "\u{200B}\u{200C}\u{200D}\u{200E}\u{200F}\u{202A}\u{202E}\u{2066}\u{2069}\u{2060}\u{FEFF}\u{00AD}\u{E0041}";

/// The reported attack, then everything else a value could try.
fn hostile() -> String {
    format!(
        "<!channel> <https://evil.example/sso|Re-authenticate> db <!here> <@U123> <#C999> \
         [x](https://evil.example) [y]: https://evil.example &lt;!everyone&gt; &#60;!here&#62; \
         @channel ch{HIDDEN}an `tick` ```fence``` *bold* _it_ ~st~ \\*esc"
    )
}

/// One line of it, where the field is a name (no spaces would be odd, but AWS allows them).
fn hostile_name() -> String {
    hostile().replace('\n', " ")
}

fn alarm_event(state: &str, previous: &str) -> Value {
    json!({
        "version": "0", "id": "7e1c8b6e-1d0a-4c55-9b0e-5a8f1a1e2c3d", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:111122223333:alarm:hostile"],
        "detail": {
            "alarmName": hostile_name(),
            "state": {"value": state, "reason": hostile(), "timestamp": "2026-11-20T09:14:05.123+0000"},
            "previousState": {"value": previous, "reason": hostile(), "timestamp": "2026-11-20T08:14:05.123+0000"},
            "configuration": {
                "description": hostile(),
                "metrics": [{"id": "m1", "returnData": true, "metricStat": {
                    "metric": {"namespace": "AWS/Lambda", "name": "Errors", "dimensions": {"FunctionName": hostile_name()}},
                    "period": 60, "stat": "Sum"}}]
            }
        }
    })
}

fn ct_record(name: &str, source: &str, minutes_before: i64) -> Value {
    let t: DateTime<Utc> = "2026-11-20T09:14:05Z".parse().expect("time");
    json!({
        "eventVersion": "1.10", "eventTime": (t - chrono::Duration::minutes(minutes_before)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": hostile_name(),
        "userAgent": hostile_name(),
        "userIdentity": {"type": "IAMUser", "userName": hostile_name(), "arn": format!("arn:aws:iam::111122223333:user/{}", hostile_name())},
        "requestParameters": {"functionName": hostile_name(), "roleName": hostile_name(), "policyName": hostile_name()},
        "resources": [{"ARN": format!("arn:aws:lambda:us-east-1:111122223333:function:{}", hostile_name())}],
        "errorCode": "AccessDenied",
        "errorMessage": hostile(),
        "eventID": format!("evt-{name}"), "readOnly": false, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"
    })
}

/// The alarm (firing, then back to OK for the thread reply), a CloudTrail call and a Config
/// item, each carrying the hostile text.
fn inputs() -> Vec<(&'static str, Value)> {
    let api_call = json!({"version": "0", "id": "0c7d5a8e-aaaa-bbbb-cccc-ddddeeeeffff", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1", "resources": [],
        "detail": ct_record("UpdateFunctionConfiguration20150331v2", "lambda.amazonaws.com", 0)});
    let config_item = json!({"version": "0", "id": "1f2e3d4c-0000-1111-2222-333344445555", "detail-type": "Config Configuration Item Change",
        "source": "aws.config", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1", "resources": [],
        "detail": {"messageType": "ConfigurationItemChangeNotification", "notificationCreationTime": "2026-11-20T09:14:05.000Z",
            "configurationItemDiff": {"changeType": "UPDATE", "changedProperties": {hostile_name(): {"updatedValue": "x"}}},
            "configurationItem": {"resourceType": "AWS::Lambda::Function", "resourceId": hostile_name(), "resourceName": hostile_name(),
                "awsRegion": "us-east-1", "awsAccountId": "111122223333", "configurationItemCaptureTime": "2026-11-20T09:14:00.000Z"}}});
    vec![
        ("alarm", alarm_event("ALARM", "OK")),
        ("alarm back to OK", alarm_event("OK", "ALARM")),
        ("cloudtrail", api_call),
        ("config", config_item),
    ]
}

/// CloudTrail context: the probable causes carry the hostile text too.
fn trail() -> Vec<vigil_core::model::Change> {
    let doc = json!({"Records": [
        ct_record("DetachRolePolicy", "iam.amazonaws.com", 5),
        ct_record("UpdateFunctionConfiguration20150331v2", "lambda.amazonaws.com", 2),
    ]});
    let batch = cloudtrail::parse_trail(&doc.to_string()).expect("trail parses");
    assert_eq!(batch.changes.len(), 2, "{:?}", batch.skipped);
    batch.changes
}

fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Every string in a JSON value, with its path.
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, format!("{path}/{k}"), out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn assert_nothing_hidden(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| is_hidden(*c)) {
        panic!("{what}: U+{:04X} survived in {text:?}", u32::from(c));
    }
}

/// Whether `s` starts with something a client could decode as an entity (`&lt;`, `&#60;`).
fn entity_at(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('&')?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))?;
    (end > 0 && rest[end..].starts_with(';')).then(|| &s[..end + 2])
}

/// Slack mrkdwn (and the fallback `text`, which Slack reads as mrkdwn): the only `<…>` are
/// vigil's web links (never to the attacker's host) and the configured mention, and every `&`
/// is one of Slack's three entities.
fn check_mrkdwn(what: &str, text: &str) {
    assert_nothing_hidden(what, text);
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        let span_end = rest[at..]
            .find('>')
            .unwrap_or_else(|| panic!("{what}: unclosed < in {text:?}"));
        let span = &rest[at..=at + span_end];
        if span != MENTION {
            let url = span
                .strip_prefix("<https://")
                .or_else(|| span.strip_prefix("<http://"))
                .unwrap_or_else(|| panic!("{what}: {span:?} came from a value in {text:?}"));
            let host = url.split(['/', '?', '#', '|', '>']).next().unwrap_or("");
            assert!(
                !host.contains("evil"),
                "{what}: a link to the attacker's host {span:?}"
            );
        }
        rest = &rest[at + span_end + 1..];
    }
    for (i, _) in text.match_indices('&') {
        let e = entity_at(&text[i..]);
        assert!(
            matches!(e, Some("&amp;" | "&lt;" | "&gt;")),
            "{what}: bare & or entity {e:?} at {:?}",
            &text[i..text.len().min(i + 20)]
        );
    }
    for bad in ["<!channel", "<!here", "<!everyone", "<@", "<#"] {
        assert!(!text.contains(bad), "{what}: {bad} in {text:?}");
    }
}

/// `plain_text`: no angle brackets, no entity a client could decode into one.
fn check_plain_text(what: &str, text: &str) {
    assert_nothing_hidden(what, text);
    assert!(!text.contains(['<', '>']), "{what}: {text:?}");
    for (i, _) in text.match_indices('&') {
        assert!(
            entity_at(&text[i..]).is_none(),
            "{what}: entity in {text:?}"
        );
    }
}

/// Every text object of a Slack request body (`{"text":..,"blocks":[..]}`, with or without
/// blocks) is escaped for its type, and every mrkdwn object is verbatim.
fn check_slack_body(what: &str, body: &Value) {
    let text = body["text"]
        .as_str()
        .expect("every Slack message has a fallback text");
    assert!(!text.trim().is_empty(), "{what}: empty fallback");
    check_mrkdwn(&format!("{what} text"), text);
    let mut objects = Vec::new();
    text_objects(&body["blocks"], &mut objects);
    for o in objects {
        let t = o["text"].as_str().unwrap_or_default();
        match o["type"].as_str() {
            Some("mrkdwn") => {
                assert_eq!(o["verbatim"], true, "{what}: mrkdwn without verbatim: {o}");
                check_mrkdwn(what, t);
            }
            Some("plain_text") => check_plain_text(what, t),
            other => panic!("{what}: text object of type {other:?}"),
        }
    }
    let mut all = Vec::new();
    strings(body, String::new(), &mut all);
    for (path, s) in all {
        assert_nothing_hidden(&format!("{what} {path}"), s);
    }
}

/// Text objects: objects whose `type` is `mrkdwn` or `plain_text`.
fn text_objects<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| text_objects(i, out)),
        Value::Object(map) => {
            if matches!(
                map.get("type").and_then(Value::as_str),
                Some("mrkdwn" | "plain_text")
            ) {
                out.push(v);
            }
            map.values().for_each(|i| text_objects(i, out));
        }
        _ => {}
    }
}

/// A Slack message as sent, and as resent without its blocks after `invalid_blocks`.
fn check_slack(what: &str, m: &SlackMessage) {
    check_slack_body(what, &m.to_webhook_json());
    check_slack_body(
        &format!("{what} (invalid_blocks resend)"),
        &m.to_plain_json(),
    );
}

/// `s` without its code spans (a run of n backticks to the next run of exactly n): their
/// contents are literal in Slack and in Markdown alike.
fn without_code_spans(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('`') {
        out.push_str(&rest[..at]);
        let n = rest[at..].len() - rest[at..].trim_start_matches('`').len();
        let after = &rest[at + n..];
        let fence = "`".repeat(n);
        let close = after
            .match_indices(&fence)
            .find(|(i, _)| !after[..*i].ends_with('`') && !after[i + n..].starts_with('`'));
        match close {
            Some((i, _)) => rest = &after[i + n..],
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Amazon Q `client-markdown`: no markup from a value, in any displayed string. A runbook
/// step's command is a code span (literal text in both Slack and Markdown; how it is quoted
/// is the runbook renderer's business): only angle brackets and hidden characters are checked
/// inside it.
fn check_chatbot(what: &str, n: &Value) {
    let mut all = Vec::new();
    strings(n, String::new(), &mut all);
    for (path, s) in all {
        let what = format!("{what} {path}");
        assert_nothing_hidden(&what, s);
        assert!(!s.contains(['<', '>']), "{what}: angle bracket in {s:?}");
        let markup = if path.starts_with("/content/nextSteps/") {
            without_code_spans(s)
        } else {
            s.to_owned()
        };
        for bad in [
            "](", "]:", "*bold*", "_it_", "~st~", "`tick`", "```", "@channel", "\\*",
        ] {
            assert!(!markup.contains(bad), "{what}: {bad} in {s:?}");
        }
        for (i, _) in markup.match_indices('&') {
            assert!(entity_at(&markup[i..]).is_none(), "{what}: entity in {s:?}");
        }
    }
}

fn settings(owners: &Owners) -> Settings {
    let mut s = Settings::with_defaults(owners.clone());
    s.policy = ContentPolicy::Full;
    s.interactive = true;
    s
}

fn evaluate(input: &Value, settings: &Settings, redactor: &Redactor) -> Vec<Report> {
    let alerts = intake::parse(input.to_string().as_bytes()).expect("accepted");
    alerts
        .into_iter()
        .map(|alert| {
            let window = enrich::window_for(alert.time, chrono::Duration::minutes(60));
            let ctx = Context::from_changes(
                window,
                alert.time + chrono::Duration::minutes(20),
                trail(),
                enrich::sources_for(&alert),
            );
            pipeline::evaluate(alert, &ctx, settings, redactor)
        })
        .collect()
}

#[test]
fn a_hostile_event_is_inert_in_every_message_kind_and_every_format() {
    let owners = Owners::single(Destination {
        team: "ai-platform".into(),
        slack_channel: Some("#ai".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:ai".into()),
        runbook_base_url: Some("https://runbooks.example.com/ai".into()),
        mention: vec![MENTION.into()],
        ..Destination::default()
    });
    let settings = settings(&owners);
    let redactor = Redactor::new();
    let opened: DateTime<Utc> = "2026-11-20T09:14:05Z".parse().expect("time");
    let mut kinds = 0;
    for (family, input) in inputs() {
        for report in evaluate(&input, &settings, &redactor) {
            let what = |kind: &str| format!("{family} / {kind}");
            // First message (with its buttons); for the OK event, the thread reply.
            let slack = &report.notifications.slack;
            assert!(!slack.is_empty(), "{family}: no Slack message");
            let first = &slack[0].message;
            check_slack(&what("first message / reply"), first);
            let json = first.to_webhook_json().to_string();
            assert!(
                json.contains("&lt;!channel&gt;"),
                "{family}: the hostile value is shown, escaped: {json}"
            );
            assert!(json.contains("&amp;lt;!everyone&amp;gt;"), "{json}");

            // Noise control's messages, from the finding's title as the group stores it, and
            // from the raw hostile text (a state row is not trusted either).
            let title = report.finding.title.clone();
            for t in [title.as_str(), hostile().as_str()] {
                let resolved = resolved_root(
                    t,
                    3,
                    opened,
                    opened + chrono::Duration::minutes(12),
                    &report.alert.id,
                );
                check_slack(&what("resolve edit"), &resolved);
                assert!(
                    resolved.text.contains("&lt;!channel&gt;"),
                    "{}",
                    resolved.text
                );
                let flap = flap_notice(t, 5, Duration::from_secs(600));
                check_slack(&what("flapping notice"), &flap);
                assert!(flap.text.contains("&lt;!channel&gt;"), "{}", flap.text);
                let digest = Digest {
                    channel: "#ai".into(),
                    count: 4,
                    since: opened,
                    titles: vec![t.to_owned(), hostile()],
                };
                let noted = with_note(first.clone(), &digest_line(&digest));
                check_slack(&what("digest note"), &noted);
                kinds += 3;
            }

            // Every other format.
            let destination = &report.route.matched[0].destination;
            let rinput = RenderInput {
                alert: &report.alert,
                finding: &report.finding,
                destination,
                policy: settings.policy,
                correlation_id: &report.alert.id,
            };
            let sns = render::sns::sns(&rinput, &redactor);
            assert_nothing_hidden(&what("sns subject"), &sns.subject);
            let outer: Value = serde_json::from_str(&sns.message).expect("sns message is json");
            let mut all = Vec::new();
            strings(&outer, String::new(), &mut all);
            for (path, s) in &all {
                assert_nothing_hidden(&what(&format!("sns message {path}")), s);
            }
            let document: Value = serde_json::from_str(outer["default"].as_str().expect("default"))
                .expect("the default document is json");
            let mut all = Vec::new();
            strings(&document, String::new(), &mut all);
            for (path, s) in &all {
                assert_nothing_hidden(&what(&format!("sns document {path}")), s);
            }
            for (k, v) in &sns.attributes {
                assert_nothing_hidden(&what("sns attribute"), &format!("{k}={v}"));
            }
            assert_nothing_hidden(
                &what("text"),
                &pipeline::text(&report, &settings, &redactor),
            );
            assert_nothing_hidden(
                &what("json report"),
                &serde_json::to_string(&report).expect("json"),
            );
            check_chatbot(
                &what("amazon q"),
                &render::chatbot::chatbot(&rinput, &redactor),
            );
            kinds += 4;
        }
    }
    assert_eq!(kinds, 4 * (3 * 2 + 4), "every family reached every kind");
}
