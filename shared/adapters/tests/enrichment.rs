//! Enrichment against the local AWS over real HTTP: CloudTrail `LookupEvents` (vigil's
//! extension of moto), Bedrock logging and guardrails, CloudWatch metrics and tags, each test
//! on its own server. The pipeline then classifies with what enrichment found.

// Test helpers fail loudly on purpose: a missing fixture or an unexpected shape is a broken test.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_bedrock::types::{
    CloudWatchConfig, GuardrailContentFilterConfig, GuardrailContentFilterType,
    GuardrailContentPolicyConfig, GuardrailFilterStrength, LoggingConfig, S3Config,
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricDatum, Statistic, Tag};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_adapters::bedrock::BedrockApiInfo;
use vigil_adapters::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig, LookupPacer};
use vigil_adapters::cloudwatch::CloudWatchInfo;
use vigil_adapters::config::AwsClients;
use vigil_adapters::enrichment::{AwsEnricher, Enricher};
use vigil_core::enrich::{self, Context};
use vigil_core::model::{Alert, Kind};
use vigil_core::pipeline::{self, Settings};
use vigil_core::ports::{BedrockInfo, ChangeQuery, ChangeSource, InvocationLogging, MetricInfo};
use vigil_core::redact::Redactor;
use vigil_core::route::Owners;
use vigil_testkit::{LocalAws, repo_root};

/// The account the local AWS answers as (the demo records' account): `LookupEvents` only
/// returns the caller's own account's events.
use vigil_testkit::ACCOUNT_ID as LOCAL_ACCOUNT;

/// The demo's cause: dana detaches `order-lookup-secrets-read` from the tool's role.
const DETACH_EVENT_ID: &str = "1a61de45-2460-4075-b4bd-e85b42a67cd2";

fn demo(situation: &str) -> PathBuf {
    repo_root().join("examples/demo").join(situation)
}

fn alert_from(path: &Path) -> Alert {
    let bytes = std::fs::read(path).expect("event file");
    vigil_core::intake::parse(&bytes)
        .expect("an accepted event")
        .remove(0)
}

fn alert_from_text(text: &str) -> Alert {
    vigil_core::intake::parse(text.as_bytes())
        .expect("an accepted event")
        .remove(0)
}

fn settings() -> Settings {
    let owners = std::fs::read_to_string(repo_root().join("examples/owners.yaml")).expect("owners");
    Settings::with_defaults(Owners::from_yaml(&owners).expect("valid owners"))
}

/// Seeds every record of the demo's CloudTrail log files.
async fn seed_demo_trail(aws: &LocalAws, situation: &str) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo(situation).join("trail"))
        .expect("trail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut records = Vec::new();
    for f in files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("trail file")).expect("json");
        records.extend(doc["Records"].as_array().expect("Records").iter().cloned());
    }
    let n = records.len();
    aws.seed_cloudtrail(Value::Array(records)).await;
    n
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A CloudTrail record as a console user would leave it.
fn console_record(
    source: &str,
    name: &str,
    id: &str,
    at: &str,
    read_only: bool,
    params: Value,
) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDA7I2OUYRJJLEJNH7F7",
            "arn": format!("arn:aws:iam::{LOCAL_ACCOUNT}:user/sam"), "accountId": LOCAL_ACCOUNT,
            "accessKeyId": "ASIADK5V34F6VETCMDZ8", "userName": "sam"
        },
        "eventTime": at, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0",
        "requestParameters": params, "responseElements": null,
        "requestID": id, "eventID": id, "readOnly": read_only, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": LOCAL_ACCOUNT, "eventCategory": "Management"
    })
}

/// Records added to the demo trail: a guardrail change, an unrelated IAM write, read-only
/// noise and one more denied call by the tool's role session, all inside the window.
fn extra_records() -> Vec<Value> {
    let mut denied = console_record(
        "lambda.amazonaws.com",
        "GetFunctionConfiguration20150331v2",
        "5c0f4a11-9d2e-4c55-8a1b-2f6e0d9c7b10",
        "2026-11-20T09:12:30Z",
        true,
        json!({"functionName": "agent-tool-order-lookup"}),
    );
    denied["userIdentity"] = json!({
        "type": "AssumedRole", "principalId": "AROAAFDRYPTDWDIHCXANK:agent-tool-order-lookup",
        "arn": "arn:aws:sts::111122223333:assumed-role/agent-tool-order-lookup-role/agent-tool-order-lookup",
        "accountId": LOCAL_ACCOUNT, "accessKeyId": "ASIABC3NPRL2B7LO2ZHF",
        "sessionContext": {"sessionIssuer": {
            "type": "Role", "principalId": "AROAAFDRYPTDWDIHCXANK",
            "arn": "arn:aws:iam::111122223333:role/agent-tool-order-lookup-role",
            "accountId": LOCAL_ACCOUNT, "userName": "agent-tool-order-lookup-role"}}
    });
    denied["errorCode"] = json!("AccessDenied");
    denied["errorMessage"] =
        json!("User is not authorized to perform: lambda:GetFunctionConfiguration");
    vec![
        console_record(
            "bedrock.amazonaws.com",
            "UpdateGuardrail",
            "9f3b2a10-6c1d-4e8f-9a7b-3c2d1e0f4a51",
            "2026-11-20T09:03:00Z",
            false,
            json!({"guardrailIdentifier": "gr7x2k9p4q1m", "name": "support-assistant"}),
        ),
        console_record(
            "iam.amazonaws.com",
            "TagRole",
            "2e7d9c40-1b3a-4f5e-8d6c-7a9b0c1d2e3f",
            "2026-11-20T09:06:00Z",
            false,
            json!({"roleName": "analytics-export-role"}),
        ),
        console_record(
            "lambda.amazonaws.com",
            "ListFunctions20150331",
            "7a1c3e5f-2b4d-4a6c-8e0f-1a3c5e7a9b2d",
            "2026-11-20T09:05:00Z",
            true,
            json!({}),
        ),
        denied,
    ]
}

fn enricher(clients: &AwsClients) -> AwsEnricher {
    AwsEnricher::from_clients(clients, CloudTrailConfig::default())
}

#[tokio::test]
async fn the_access_denied_demo_ranks_the_role_policy_detach_first_from_live_lookups() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    seed_demo_trail(&aws, "agent-tool-access-denied").await;
    aws.seed_cloudtrail(Value::Array(extra_records())).await;

    let alert = alert_from(&demo("agent-tool-access-denied").join("event.json"));
    let looked_up_at = alert.time + chrono::Duration::minutes(20);
    let ctx = enricher(&clients)
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            looked_up_at,
            Duration::from_secs(20),
        )
        .await;

    assert!(
        ctx.missing.is_empty(),
        "every CloudTrail lookup completes: {:?}",
        ctx.missing
    );
    for source in [
        "iam.amazonaws.com",
        "bedrock.amazonaws.com",
        "lambda.amazonaws.com",
        "Username=agent-tool-order-lookup",
    ] {
        assert!(
            ctx.sources.iter().any(|s| s == source),
            "{source} searched: {:?}",
            ctx.sources
        );
    }
    assert!(
        ctx.changes
            .iter()
            .all(|c| !c.read_only || c.error_code.is_some()),
        "successful read-only calls are dropped"
    );
    let ids: Vec<&str> = ctx.changes.iter().map(|c| c.event_id.as_str()).collect();
    assert!(ids.contains(&DETACH_EVENT_ID));
    assert!(
        ids.contains(&"7dc2aec4-8727-43df-9536-2e2172e831df"),
        "the tool's denied GetSecretValue, found by Username"
    );
    assert!(
        ids.contains(&"5c0f4a11-9d2e-4c55-8a1b-2f6e0d9c7b10"),
        "the denied read in a searched source"
    );
    assert!(
        ids.contains(&"9f3b2a10-6c1d-4e8f-9a7b-3c2d1e0f4a51"),
        "the guardrail change"
    );
    assert!(
        !ids.contains(&"2b1522b8-a15f-49c8-98b8-413f8ef5b163"),
        "PutRolePolicy at 07:51 is outside the window"
    );
    assert!(
        !ids.contains(&"7a1c3e5f-2b4d-4a6c-8e0f-1a3c5e7a9b2d"),
        "read-only noise"
    );

    let report = pipeline::evaluate(alert, &ctx, &settings(), &Redactor::new());
    assert_eq!(
        report.finding.kind,
        Kind::AccessDenied,
        "evidence: {:?}",
        report.finding.evidence
    );
    let causes = &report.finding.probable_causes;
    assert_eq!(
        causes.first().map(|c| c.event_id.as_str()),
        Some(DETACH_EVENT_ID),
        "causes: {causes:#?}"
    );
    assert!(
        causes
            .iter()
            .all(|c| c.event_id != "2e7d9c40-1b3a-4f5e-8d6c-7a9b0c1d2e3f"),
        "the unrelated TagRole is not a cause"
    );
    assert!(
        report
            .finding
            .context_notes
            .iter()
            .any(|n| n.contains("denied call(s) by agent-tool-order-lookup-role")),
        "notes: {:?}",
        report.finding.context_notes
    );
}

#[tokio::test]
async fn throttled_lookups_return_inside_the_budget_marked_partial() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    seed_demo_trail(&aws, "agent-tool-access-denied").await;
    aws.faults(json!({"service": "cloudtrail", "mode": "throttle", "count": 1000}))
        .await;

    let alert = alert_from(&demo("agent-tool-access-denied").join("event.json"));
    // A pacer of its own: the other tests of this binary (other "accounts") must not take
    // this one's request slots, or some lookups would never get to see the throttling.
    let enricher = Enricher::new(
        CloudTrailChangeSource::new(&clients.cloudtrail, CloudTrailConfig::default())
            .with_pacer(LookupPacer::new()),
        BedrockApiInfo::new(clients.bedrock.clone()),
        CloudWatchInfo::new(clients.cloudwatch.clone()),
    );
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let ctx = enricher
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time + chrono::Duration::minutes(5),
            budget,
        )
        .await;
    let elapsed = started.elapsed();

    assert!(
        elapsed < budget + Duration::from_secs(1),
        "took {elapsed:?} with a budget of {budget:?}"
    );
    assert!(
        ctx.sources.is_empty(),
        "nothing was searched in full: {:?}",
        ctx.sources
    );
    assert_eq!(
        ctx.missing.len(),
        4,
        "one entry per lookup: {:?}",
        ctx.missing
    );
    for m in &ctx.missing {
        assert!(m.reason.contains("LookupEvents throttled"), "{m:?}");
        assert!(m.reason.contains("0 of 4 sources searched"), "{m:?}");
    }
    let lookups = aws
        .requests("service=cloudtrail&operation=LookupEvents")
        .await;
    assert!(
        lookups.len() >= 4,
        "every source was tried: {}",
        lookups.len()
    );
    assert!(lookups.iter().all(|r| r["handled_by"] == "fault:throttle"));

    let report = pipeline::evaluate(alert, &ctx, &settings(), &Redactor::new());
    assert!(
        report
            .finding
            .context_notes
            .iter()
            .any(|n| n.contains("Context missing from") && n.contains("throttled")),
        "the reader is told: {:?}",
        report.finding.context_notes
    );
    println!(
        "throttled enrichment returned after {elapsed:?} (budget {budget:?}); {} LookupEvents attempts",
        lookups.len()
    );
    for note in &report.finding.context_notes {
        println!("  note: {note}");
    }
}

#[tokio::test]
async fn bedrock_invocation_logging_reads_off_until_configured_then_names_its_destinations() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    let info = BedrockApiInfo::new(clients.bedrock.clone());
    assert_eq!(info.invocation_logging().await, Ok(InvocationLogging::Off));

    let alert = alert_from(&demo("bedrock-throttling-capacity").join("event.json"));
    let enricher = enricher(&clients);
    let ctx = enricher
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ctx.service.invocation_logging, Some(InvocationLogging::Off));

    clients
        .bedrock
        .put_model_invocation_logging_configuration()
        .logging_config(
            LoggingConfig::builder()
                .cloud_watch_config(
                    CloudWatchConfig::builder()
                        .log_group_name("/aws/bedrock/model-invocations")
                        .role_arn(format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/bedrock-logging"))
                        .build()
                        .expect("complete"),
                )
                .s3_config(
                    S3Config::builder()
                        .bucket_name("vigil-invocation-evidence")
                        .build()
                        .expect("complete"),
                )
                .text_data_delivery_enabled(true)
                .embedding_data_delivery_enabled(true)
                .image_data_delivery_enabled(false)
                .build(),
        )
        .send()
        .await
        .expect("logging configured");

    let on = InvocationLogging::On {
        cloudwatch_log_group: Some("/aws/bedrock/model-invocations".into()),
        s3_bucket: Some("vigil-invocation-evidence".into()),
        data: vec!["text".into(), "embedding".into()],
    };
    assert_eq!(info.invocation_logging().await, Ok(on.clone()));
    let ctx = enricher
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ctx.service.invocation_logging, Some(on));

    // A Lambda alarm does not concern Bedrock: no logging look-up is made.
    let lambda = alert_from(&demo("agent-tool-access-denied").join("event.json"));
    let ctx = enricher
        .enrich(
            &lambda,
            chrono::Duration::minutes(60),
            lambda.time,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ctx.service.invocation_logging, None);
}

#[tokio::test]
async fn a_guardrail_created_through_the_sdk_is_summarised_with_its_prompt_attack_strength() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    let filter = |kind, input, output| {
        GuardrailContentFilterConfig::builder()
            .r#type(kind)
            .input_strength(input)
            .output_strength(output)
            .build()
            .expect("complete filter")
    };
    let created = clients
        .bedrock
        .create_guardrail()
        .name("support-assistant")
        .blocked_input_messaging("Sorry, I can't help with that.")
        .blocked_outputs_messaging("Sorry, I can't share that.")
        .content_policy_config(
            GuardrailContentPolicyConfig::builder()
                .filters_config(filter(
                    GuardrailContentFilterType::Hate,
                    GuardrailFilterStrength::Medium,
                    GuardrailFilterStrength::Medium,
                ))
                .filters_config(filter(
                    GuardrailContentFilterType::PromptAttack,
                    GuardrailFilterStrength::High,
                    GuardrailFilterStrength::None,
                ))
                .build()
                .expect("complete policy"),
        )
        .send()
        .await
        .expect("guardrail created");
    let id = created.guardrail_id().to_string();
    let arn = created.guardrail_arn().to_string();
    clients
        .bedrock
        .create_guardrail_version()
        .guardrail_identifier(&id)
        .send()
        .await
        .expect("version 1");

    let info = BedrockApiInfo::new(clients.bedrock.clone());
    let draft = info.guardrail(&id, None).await.expect("by id");
    assert_eq!(draft.id, id);
    assert_eq!(draft.name, "support-assistant");
    assert_eq!(draft.version, "DRAFT");
    assert_eq!(draft.status.as_deref(), Some("READY"));
    assert_eq!(draft.prompt_attack_input.as_deref(), Some("HIGH"));
    assert!(draft.updated_at.is_some());
    let v1 = info
        .guardrail(&arn, Some("1"))
        .await
        .expect("by ARN and version");
    assert_eq!(
        (v1.version.as_str(), v1.prompt_attack_input.as_deref()),
        ("1", Some("HIGH"))
    );
    let gone = info
        .guardrail(&arn, Some("7"))
        .await
        .expect_err("no version 7");
    assert!(
        !gone.retryable && gone.reason.contains("ResourceNotFoundException"),
        "{gone:?}"
    );

    // The injection-surge demo alarm, pointed at this guardrail.
    let text = std::fs::read_to_string(demo("assistant-injection-surge").join("event.json"))
        .expect("event")
        .replace(
            "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr7x2k9p4q1m",
            &arn,
        )
        .replace("\"GuardrailVersion\": \"3\"", "\"GuardrailVersion\": \"1\"");
    let alert = alert_from_text(&text);
    let ctx = enricher(&clients)
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time,
            Duration::from_secs(10),
        )
        .await;
    let summary = ctx.service.guardrail.clone().expect("guardrail summarised");
    assert_eq!(
        (summary.id.as_str(), summary.version.as_str()),
        (id.as_str(), "1")
    );
    assert_eq!(ctx.service.invocation_logging, Some(InvocationLogging::Off));
    let report = pipeline::evaluate(alert, &ctx, &settings(), &Redactor::new());
    assert_eq!(report.finding.kind, Kind::InjectionSurge);
    assert!(
        report
            .finding
            .context_notes
            .iter()
            .any(|n| n.contains("prompt-attack filter on input: HIGH")),
        "{:?}",
        report.finding.context_notes
    );
}

#[tokio::test]
async fn metric_history_and_alarm_tags_come_from_cloudwatch() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    let cw = &clients.cloudwatch;
    let now = Utc::now();
    // One point every ten minutes for three hours: a flat 2-3, then the spike.
    let values = [
        2.0, 3.0, 2.0, 2.0, 3.0, 2.0, 2.0, 3.0, 2.0, 2.0, 3.0, 2.0, 2.0, 3.0, 20.0, 40.0, 60.0,
    ];
    let mut put = cw.put_metric_data().namespace("Vigil/Agents");
    for (i, v) in values.iter().enumerate() {
        let minutes_ago = 10 * (values.len() - i) as i64 - 5;
        let at = now - chrono::Duration::minutes(minutes_ago);
        put = put.metric_data(
            MetricDatum::builder()
                .metric_name("ToolErrors")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("FunctionName")
                        .value("order-lookup")
                        .build(),
                )
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    at.timestamp(),
                ))
                .value(*v)
                .build(),
        );
    }
    put.send().await.expect("metric data");
    cw.put_metric_alarm()
        .alarm_name("order-lookup-tool-errors")
        .namespace("Vigil/Agents")
        .metric_name("ToolErrors")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("FunctionName")
                .value("order-lookup")
                .build(),
        )
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .tags(Tag::builder().key("team").value("agents").build())
        .tags(Tag::builder().key("tier").value("1").build())
        .send()
        .await
        .expect("alarm");
    let alarms = cw
        .describe_alarms()
        .alarm_names("order-lookup-tool-errors")
        .send()
        .await
        .expect("describe");
    let arn = alarms
        .metric_alarms()
        .first()
        .and_then(|a| a.alarm_arn())
        .expect("alarm ARN")
        .to_string();

    let event = json!({
        "version": "0", "id": "0b3c9f5e-2d1a-4c7b-9e8f-6a5d4c3b2a10",
        "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": LOCAL_ACCOUNT, "time": stamp(now), "region": "us-east-1", "resources": [arn],
        "detail": {
            "alarmName": "order-lookup-tool-errors",
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": now.to_rfc3339()},
            "previousState": {"value": "OK", "reason": "ok", "timestamp": now.to_rfc3339()},
            "configuration": {"metrics": [{"id": "m1", "returnData": true, "metricStat": {
                "metric": {"namespace": "Vigil/Agents", "name": "ToolErrors", "dimensions": {"FunctionName": "order-lookup"}},
                "period": 60, "stat": "Sum"}}]}
        }
    });
    let alert = alert_from_text(&event.to_string());
    let ctx = enricher(&clients)
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            now,
            Duration::from_secs(10),
        )
        .await;

    let metric = ctx.service.metric.clone().expect("history");
    assert_eq!(metric.points, values.to_vec(), "oldest first");
    assert_eq!(
        (metric.current, metric.baseline, metric.hours),
        (Some(60.0), Some(2.0), 3)
    );
    assert_eq!(
        ctx.service.alarm_tags.get("team").map(String::as_str),
        Some("agents")
    );
    assert_eq!(ctx.service.alarm_tags.len(), 2);
    let report = pipeline::evaluate(alert.clone(), &ctx, &settings(), &Redactor::new());
    assert!(
        report
            .finding
            .context_notes
            .iter()
            .any(|n| n.starts_with("Metric: 60 now, 30x the 3-hour median (2)")),
        "{:?}",
        report.finding.context_notes
    );

    // A metric with no datapoints is an error, not a flat line: enrichment reports it missing.
    let mut quiet = alert.alarm().expect("an alarm").clone();
    if let Some(m) = quiet.metrics.first_mut() {
        m.name = "NeverPublished".into();
    }
    let err = CloudWatchInfo::new(cw.clone())
        .history(&quiet, now)
        .await
        .expect_err("no datapoints");
    assert!(
        !err.retryable
            && err
                .reason
                .starts_with("no datapoints for Vigil/Agents NeverPublished"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failing_source_is_reported_missing_and_the_others_still_arrive() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    seed_demo_trail(&aws, "bedrock-throttling-capacity").await;
    // More failures than the SDK's own retries: GetModelInvocationLoggingConfiguration fails.
    aws.faults(json!({"service": "bedrock", "mode": "error500", "count": 50}))
        .await;

    let alert = alert_from(&demo("bedrock-throttling-capacity").join("event.json"));
    let ctx = enricher(&clients)
        .enrich(
            &alert,
            chrono::Duration::minutes(60),
            alert.time,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ctx.service.invocation_logging, None);
    let logging = ctx
        .service
        .missing
        .iter()
        .find(|m| m.source == "Bedrock GetModelInvocationLoggingConfiguration")
        .expect("the failure is reported");
    assert!(logging.reason.contains("InternalFailure"), "{logging:?}");
    assert!(
        ctx.missing.is_empty(),
        "CloudTrail answered: {:?}",
        ctx.missing
    );
    assert!(!ctx.changes.is_empty(), "the changes still arrive");
}

#[tokio::test]
async fn read_only_successes_are_dropped_and_failed_calls_kept_as_evidence() {
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    let now = Utc::now();
    let at = stamp(now - chrono::Duration::minutes(10));
    let mut denied_read = console_record(
        "iam.amazonaws.com",
        "GetRole",
        "00000000-0000-4000-8000-000000000002",
        &at,
        true,
        json!({"roleName": "r"}),
    );
    denied_read["errorCode"] = json!("AccessDenied");
    let mut failed_write = console_record(
        "iam.amazonaws.com",
        "AttachRolePolicy",
        "00000000-0000-4000-8000-000000000004",
        &at,
        false,
        json!({"roleName": "r"}),
    );
    failed_write["errorCode"] = json!("NoSuchEntity");
    aws.seed_cloudtrail(json!([
        console_record(
            "iam.amazonaws.com",
            "ListRoles",
            "00000000-0000-4000-8000-000000000001",
            &at,
            true,
            json!({})
        ),
        denied_read,
        console_record(
            "iam.amazonaws.com",
            "DetachRolePolicy",
            "00000000-0000-4000-8000-000000000003",
            &at,
            false,
            json!({"roleName": "r"})
        ),
        failed_write,
    ]))
    .await;
    let source = CloudTrailChangeSource::new(&clients.cloudtrail, CloudTrailConfig::default());
    let batch = source
        .changes(&ChangeQuery {
            window: enrich::window_for(now, chrono::Duration::minutes(60)),
            event_sources: vec!["iam.amazonaws.com".into()],
            principals: Vec::new(),
            budget: Duration::from_secs(10),
        })
        .await;
    let names: Vec<&str> = batch
        .changes
        .iter()
        .map(|c| c.event_name.as_str())
        .collect();
    assert_eq!(batch.changes.len(), 3, "{names:?}");
    assert!(!names.contains(&"ListRoles"));
    assert!(
        batch
            .changes
            .iter()
            .any(|c| c.event_name == "GetRole" && c.is_denied())
    );
}

/// The enricher is generic: the same code runs over fakes (here a change source that never
/// answers), and still returns within its budget.
#[tokio::test]
async fn a_change_source_that_never_answers_is_cut_off_at_the_budget() {
    struct Silent;
    impl ChangeSource for Silent {
        async fn changes(&self, _query: &ChangeQuery) -> vigil_core::ports::ChangeBatch {
            std::future::pending().await
        }
    }
    let aws = LocalAws::start().await;
    let clients = AwsClients::from_sdk_config(&aws.sdk_config().await);
    let enricher = Enricher::new(
        Silent,
        BedrockApiInfo::new(clients.bedrock.clone()),
        CloudWatchInfo::new(clients.cloudwatch.clone()),
    );
    let alert = alert_from(&demo("agent-tool-access-denied").join("event.json"));
    let budget = Duration::from_millis(800);
    let started = Instant::now();
    let ctx: Context = enricher
        .enrich(&alert, chrono::Duration::minutes(60), alert.time, budget)
        .await;
    assert!(started.elapsed() < budget + Duration::from_secs(1));
    let m = ctx.missing.first().expect("reported");
    assert_eq!(m.source, "CloudTrail LookupEvents");
    assert!(
        m.reason.contains("no answer within the budget of 800 ms"),
        "{m:?}"
    );
}
