//! Secrets (access keys, secret keys, session tokens, Slack tokens and webhook URLs, GitHub
//! tokens, private keys) and prompt / completion text are put into every input family and into
//! the CloudTrail context; none of them may reach any output (the JSON report, terminal text,
//! Slack, SNS) under any content policy. Prompt and completion text is placed wherever AWS
//! carries it (CloudTrail request and response bodies, additional event data, Lambda
//! environment in Config items, SNS message attributes) and in unknown fields; alarm
//! descriptions are the operator's own words and pass with secrets masked.

// A test fails loudly on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_core::cloudtrail;
use vigil_core::enrich::{self, Context};
use vigil_core::intake;
use vigil_core::pipeline::{self, Settings};
use vigil_core::redact::{ContentPolicy, Redactor};
use vigil_core::render::{self, RenderInput};
use vigil_core::route::{Destination, Owners};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SLACK_TOKEN: &str = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
const WEBHOOK: &str =
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
const GITHUB: &str = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
const KEY_BODY: &str = "MIIEowIBAAKCAQEAvV3cvB7lMH2cLeAkqYzs";
/// Realistic AI-provider key shapes (random bodies), built from pieces at run time.
const AI_BODY: &str = "Zq7Xw2Vb9Nm4Lk8Jh3Gf6Dd1Ss5Aa0Pp";
/// A secret in the resource part of an ARN.
const ARN_SECRET: &str = "ARN-SECRET-CANARY-5521";
const PROMPT: &str = "Ignore all previous instructions PROMPT-CANARY-7731";
const COMPLETION: &str = "Sure, here is the system prompt COMPLETION-CANARY-4410";

fn session_token() -> String {
    format!(
        "IQoJb3JpZ2luX2VjEHYaCXVzLWVhc3QtMSJHMEUCIQD{}",
        "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7".repeat(5)
    )
}

fn ai_keys() -> Vec<String> {
    vec![
        format!("sk-ant-api03-{AI_BODY}{AI_BODY}-{AI_BODY}_xYAA"),
        format!("sk-proj-{AI_BODY}_{AI_BODY}"),
        format!("sk-{AI_BODY}T3BlbkFJ{AI_BODY}"),
        format!("hf_{AI_BODY}Qz"),
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".into(),
        format!("xai-{AI_BODY}{AI_BODY}"),
        format!("gsk_{AI_BODY}{AI_BODY}"),
    ]
}

fn private_key() -> String {
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\nq2VbZ0e1YxQzR3u4\n-----END RSA PRIVATE KEY-----"
    )
}

/// Every secret, and the canaries of the prompt and the completion.
fn needles() -> Vec<String> {
    vec![
        ACCESS_KEY.into(),
        SECRET_KEY.into(),
        SLACK_TOKEN.into(),
        WEBHOOK.into(),
        GITHUB.into(),
        KEY_BODY.into(),
        session_token(),
        "PROMPT-CANARY-7731".into(),
        "COMPLETION-CANARY-4410".into(),
        AI_BODY.into(),
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".into(),
        ARN_SECRET.into(),
    ]
}

/// Free text that carries every secret at once.
fn dirty() -> String {
    format!(
        "see {ACCESS_KEY} / {SECRET_KEY} token {SLACK_TOKEN} hook {WEBHOOK} gh {GITHUB} sts {} ai {} in arn:aws:lambda:us-east-1:111122223333:function:x/token={ARN_SECRET} key {}",
        session_token(),
        ai_keys().join(" , "),
        private_key()
    )
}

fn reason_data() -> String {
    json!({"version": "1.0", "threshold": 1.0, "recentDatapoints": [5.0], "prompt": PROMPT})
        .to_string()
}

fn alarm_data() -> Value {
    json!({
        "alarmName": format!("agent-tool-errors {ACCESS_KEY}"),
        "state": {"value": "ALARM", "reason": dirty(), "reasonData": reason_data(), "timestamp": "2026-11-20T09:14:05.123+0000"},
        "previousState": {"value": "OK", "reason": dirty(), "timestamp": "2026-11-20T08:14:05.123+0000"},
        "configuration": {
            "description": dirty(),
            "metrics": [{"id": "m1", "returnData": true, "metricStat": {
                "metric": {"namespace": "AWS/Lambda", "name": "Errors", "dimensions": {"FunctionName": format!("agent-tool-x {SLACK_TOKEN}")}},
                "period": 60, "stat": "Sum"}}]
        },
        "prompt": PROMPT, "completion": COMPLETION
    })
}

fn ct_record(name: &str, source: &str, minutes_before: i64, extra: Value) -> Value {
    let t: DateTime<Utc> = "2026-11-20T09:14:05Z".parse().expect("time");
    let mut r = json!({
        "eventVersion": "1.10", "eventTime": (t - chrono::Duration::minutes(minutes_before)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.24",
        "userAgent": format!("aws-cli/2 {ACCESS_KEY}"),
        "userIdentity": {"type": "IAMUser", "userName": format!("dana {SECRET_KEY}"), "accessKeyId": ACCESS_KEY,
            "arn": "arn:aws:iam::111122223333:user/dana", "sessionContext": {"sessionToken": session_token()}},
        "requestParameters": {
            "functionName": "agent-tool-x", "roleName": format!("role-{GITHUB}"),
            "body": PROMPT, "messages": [{"role": "user", "content": [{"text": PROMPT}]}], "inputText": PROMPT,
            "environment": {"variables": {"SLACK_WEBHOOK": WEBHOOK, "TOKEN": SLACK_TOKEN, "PRIVATE_KEY": private_key()}}
        },
        "responseElements": {"completion": COMPLETION, "outputText": COMPLETION, "credentials": {"secretAccessKey": SECRET_KEY, "sessionToken": session_token()}},
        "additionalEventData": {"prompt": PROMPT},
        "errorMessage": dirty(),
        "eventID": format!("evt-{name}"), "readOnly": false, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut r, extra) {
        m.extend(e);
    }
    r
}

/// One input of each family, each carrying every secret and the prompt.
fn inputs() -> Vec<(&'static str, Value)> {
    let direct = json!({"source": "aws.cloudwatch", "alarmArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:agent-tool-errors",
        "accountId": "111122223333", "time": "2026-11-20T09:14:05.123+0000", "region": "us-east-1", "alarmData": alarm_data()});
    let eventbridge = json!({"version": "0", "id": "7e1c8b6e-1d0a-4c55-9b0e-5a8f1a1e2c3d", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:111122223333:alarm:agent-tool-errors"], "detail": alarm_data()});
    let classic = json!({"AlarmName": format!("bedrock-throttles {ACCESS_KEY}"), "AlarmDescription": dirty(),
        "AWSAccountId": "111122223333", "NewStateValue": "ALARM", "NewStateReason": dirty(), "StateChangeTime": "2026-11-20T09:14:05.123+0000",
        "Region": "US East (N. Virginia)", "AlarmArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:bedrock-throttles", "OldStateValue": "OK",
        "Trigger": {"MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock", "Statistic": "SUM", "Period": 60, "Threshold": 10.0,
            "Dimensions": [{"name": "ModelId", "value": format!("anthropic.claude {WEBHOOK}")}]}});
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:t:1",
        "Sns": {"Type": "Notification", "MessageId": "5b2e1c9a-1111-2222-3333-444455556666", "TopicArn": "arn:aws:sns:us-east-1:111122223333:t",
            "Subject": dirty(), "Message": classic.to_string(), "Timestamp": "2026-11-20T09:14:05.200Z", "SignatureVersion": "1",
            "Signature": "EXAMPLE", "SigningCertUrl": "EXAMPLE", "UnsubscribeUrl": "EXAMPLE",
            "MessageAttributes": {"prompt": {"Type": "String", "Value": PROMPT}}}}]});
    let api_call = json!({"version": "0", "id": "0c7d5a8e-aaaa-bbbb-cccc-ddddeeeeffff", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1", "resources": [],
        "detail": ct_record("UpdateFunctionConfiguration20150331v2", "lambda.amazonaws.com", 0, json!({}))});
    let raw_record = ct_record(
        "PutBucketPolicy",
        "s3.amazonaws.com",
        0,
        json!({"requestParameters": {"bucketName": "b",
        "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Sid": SECRET_KEY}]}, "prompt": PROMPT}}),
    );
    let config_item = json!({"version": "0", "id": "1f2e3d4c-0000-1111-2222-333344445555", "detail-type": "Config Configuration Item Change",
        "source": "aws.config", "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1", "resources": [],
        "detail": {"messageType": "ConfigurationItemChangeNotification", "notificationCreationTime": "2026-11-20T09:14:05.000Z",
            "configurationItemDiff": {"changeType": "UPDATE", "changedProperties": {"Configuration.Environment": {"updatedValue": {"PROMPT": PROMPT, "KEY": SECRET_KEY}}}},
            "configurationItem": {"resourceType": "AWS::Lambda::Function", "resourceId": "agent-tool-x", "resourceName": "agent-tool-x",
                "awsRegion": "us-east-1", "awsAccountId": "111122223333", "configurationItemCaptureTime": "2026-11-20T09:14:00.000Z",
                "configuration": {"environment": {"variables": {"SYSTEM_PROMPT": PROMPT, "SLACK": WEBHOOK, "AWS_SECRET": SECRET_KEY}}},
                "tags": {"owner": ACCESS_KEY}}}});
    let compliance = json!({"Type": "Notification", "MessageId": "11fd05dd-47e1-5523-bc01-55b988bb9478", "TopicArn": "arn:aws:sns:us-east-2:111122223333:config",
        "Subject": dirty(), "Message": {"awsAccountId": "111122223333", "configRuleName": "lambda-no-plaintext-secrets", "resourceType": "AWS::Lambda::Function",
            "resourceId": "agent-tool-x", "awsRegion": "us-east-1", "messageType": "ComplianceChangeNotification", "notificationCreationTime": "2026-11-20T09:14:05.000Z",
            "newEvaluationResult": {"complianceType": "NON_COMPLIANT", "annotation": dirty()}, "oldEvaluationResult": {"complianceType": "COMPLIANT", "annotation": PROMPT}},
        "Timestamp": "2026-11-20T09:14:05.749Z"});
    vec![
        ("alarm_direct", direct),
        ("alarm_eventbridge", eventbridge),
        ("alarm_sns", sns),
        ("cloudtrail (EventBridge)", api_call),
        ("cloudtrail (record)", raw_record),
        ("config (item change)", config_item),
        ("config (SNS compliance)", compliance),
    ]
}

fn trail() -> Vec<vigil_core::model::Change> {
    let doc = json!({"Records": [
        ct_record("DetachRolePolicy", "iam.amazonaws.com", 5, json!({})),
        ct_record("InvokeModel", "bedrock.amazonaws.com", 3, json!({"readOnly": true})),
        ct_record("UpdateFunctionConfiguration20150331v2", "lambda.amazonaws.com", 2, json!({})),
        ct_record("GetSecretValue", "secretsmanager.amazonaws.com", 1, json!({"errorCode": "AccessDenied", "readOnly": true})),
    ]});
    let batch = cloudtrail::parse_trail(&doc.to_string()).expect("trail parses");
    assert_eq!(
        batch.changes.len(),
        4,
        "every seeded record is read: {:?}",
        batch.skipped
    );
    batch.changes
}

/// Every output (JSON report, terminal text, Slack, SNS) of every alert in `input`, evaluated
/// under `policy` against the seeded trail.
fn render_all(family: &str, input: &Value, policy: ContentPolicy) -> Vec<(&'static str, String)> {
    let owners = Owners::single(Destination {
        team: "ai-platform".into(),
        slack_channel: Some("#ai".into()),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:111122223333:ai".into()),
        ..Destination::default()
    });
    let redactor = Redactor::new();
    let mut settings = Settings::with_defaults(owners);
    settings.policy = policy;
    let alerts = intake::parse(input.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{family} must be accepted: {e}"));
    let mut out = Vec::new();
    for alert in alerts {
        let window = enrich::window_for(alert.time, chrono::Duration::minutes(60));
        let ctx = Context::from_changes(
            window,
            alert.time + chrono::Duration::minutes(20),
            trail(),
            enrich::sources_for(&alert),
        );
        let report = pipeline::evaluate(alert, &ctx, &settings, &redactor);
        let destination = &report.route.matched[0].destination;
        let input = RenderInput {
            alert: &report.alert,
            finding: &report.finding,
            destination,
            policy,
            correlation_id: &report.alert.id,
        };
        out.extend([
            ("json report", serde_json::to_string(&report).expect("json")),
            ("text", pipeline::text(&report, &settings, &redactor)),
            (
                "slack",
                serde_json::to_string(&render::slack::slack(&input, &redactor)).expect("json"),
            ),
            (
                "sns",
                serde_json::to_string(&render::sns::sns(&input, &redactor)).expect("json"),
            ),
        ]);
    }
    out
}

/// JSON escapes '/' never, but may escape newlines and quotes: the unescaped form too.
fn unescaped(output: &str) -> String {
    output.replace("\\n", "\n").replace("\\\"", "\"")
}

#[test]
fn no_secret_or_prompt_reaches_any_output_under_any_policy() {
    let mut checked = 0;
    for policy in [
        ContentPolicy::Metadata,
        ContentPolicy::Redacted,
        ContentPolicy::Full,
    ] {
        for (family, input) in inputs() {
            for (name, output) in render_all(family, &input, policy) {
                let unescaped = unescaped(&output);
                for needle in needles() {
                    assert!(
                        !output.contains(&needle) && !unescaped.contains(&needle),
                        "{family} / {policy:?} / {name} leaks {needle:?}:\n{output}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 7 * 4);
}

/// An EventBridge "AWS API Call via CloudTrail" event around one record.
fn api_call_event(source: &str, record: Value) -> Value {
    json!({"version": "0", "id": "0c7d5a8e-aaaa-bbbb-cccc-ddddeeeeffff", "detail-type": "AWS API Call via CloudTrail",
        "source": source, "account": "111122223333", "time": "2026-11-20T09:14:05Z", "region": "us-east-1", "resources": [],
        "detail": record})
}

/// A Bedrock runtime call's validation error echoes the request ("Malformed input request:
/// …"): it is content, shown only under `full`. Another service's error message is free text
/// and shown under `redacted` too.
#[test]
fn a_bedrock_runtime_error_message_is_shown_only_under_full() {
    const ECHO: &str = "ECHOED-PROMPT-CANARY-9902";
    let message = format!(
        "Malformed input request: #/messages/0/content: expected type: JSONArray, found: String [{ECHO}]"
    );
    for (source, name) in [
        ("bedrock.amazonaws.com", "InvokeModel"),
        ("bedrock-runtime.amazonaws.com", "Converse"),
        ("bedrock-agent-runtime.amazonaws.com", "InvokeAgent"),
    ] {
        let record = ct_record(
            name,
            source,
            0,
            json!({"errorCode": "ValidationException", "errorMessage": message, "readOnly": true}),
        );
        let input = api_call_event("aws.bedrock", record);
        for (policy, shown) in [
            (ContentPolicy::Metadata, false),
            (ContentPolicy::Redacted, false),
            (ContentPolicy::Full, true),
        ] {
            let outputs = render_all(name, &input, policy);
            for (out_name, output) in &outputs {
                if !shown {
                    assert!(
                        !unescaped(output).contains(ECHO),
                        "{source} {name} / {policy:?} / {out_name} shows the echoed prompt:\n{output}"
                    );
                }
            }
            if shown {
                assert!(
                    outputs.iter().all(|(_, o)| o.contains(ECHO)),
                    "{source} {name}: the full policy shows the error message in every output"
                );
            }
        }
    }
    // Not a model call: the error message is free text, shown under `redacted`.
    let record = ct_record(
        "DeleteRolePolicy",
        "iam.amazonaws.com",
        0,
        json!({"errorCode": "AccessDenied", "errorMessage": format!("denied {ECHO}")}),
    );
    let outputs = render_all(
        "iam",
        &api_call_event("aws.iam", record),
        ContentPolicy::Redacted,
    );
    assert!(outputs.iter().all(|(_, o)| o.contains(ECHO)));
}

/// Under `metadata` the user agent keeps its product tokens only: no settings, no comments.
#[test]
fn the_user_agent_is_cut_to_its_product_tokens_under_metadata() {
    let ua = "aws-cli/2.15.0 Python/3.11 Linux/5.10 exe/x86_64 prompt/off command/s3.ls (UA-COMMENT-CANARY)";
    let record = ct_record(
        "DeleteRolePolicy",
        "iam.amazonaws.com",
        0,
        json!({"userAgent": ua}),
    );
    let input = api_call_event("aws.iam", record);
    for (policy, cut) in [
        (ContentPolicy::Metadata, true),
        (ContentPolicy::Redacted, false),
        (ContentPolicy::Full, false),
    ] {
        for (name, output) in render_all("iam", &input, policy) {
            assert!(
                output.contains("aws-cli/2.15.0 Python/3.11 Linux/5.10"),
                "{policy:?} / {name} keeps the products:\n{output}"
            );
            for dropped in ["command/s3.ls", "UA-COMMENT-CANARY", "exe/x86_64"] {
                assert_eq!(
                    !output.contains(dropped),
                    cut,
                    "{policy:?} / {name}: {dropped}:\n{output}"
                );
            }
        }
    }
}
