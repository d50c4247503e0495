//! Intake: the bytes of any accepted input -> normalized [`Alert`]s (README.md "Usage").
//!
//! Invariant: [`parse`] never panics and never returns an empty list; anything it does not
//! understand comes back as an [`IntakeError`] that names what was received and why it was
//! refused, so the caller can record it and dead-letter it.
//!
//! Typed parsing uses `aws_lambda_events` where its types fit real payloads
//! (`CloudWatchAlarm`, `EventBridgeEvent`, `SnsEvent`), with generic `Value` parameters because
//! metric-math alarms do not fit `CloudWatchMetricAlarm` and periods can exceed its `u16`.
//! The classic SNS alarm message and Config notifications have no (usable) type there: their
//! `AlarmDescription` is `null` in real payloads, so they are read leniently here.

use std::collections::BTreeMap;

use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmData};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cloudtrail::{self, describe_keys, json_type, parse_time, preview};
use crate::model::{
    Alarm, AlarmState, AlarmType, Alert, AlertBody, ConfigChange, ConfigChangeKind, InputFamily,
    MetricRef,
};

/// Why an input was refused. `code` is stable (for metrics and the dead-letter record);
/// `received` says what arrived, `reason` why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused {received}: {reason}")]
pub struct IntakeError {
    pub code: RefusalCode,
    pub received: String,
    pub reason: String,
}

/// Stable refusal categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// Not UTF-8 or not JSON (including truncated JSON).
    NotJson,
    /// JSON, but not a shape vigil knows.
    UnknownShape,
    /// A known shape vigil deliberately does not alert on (subscription confirmations,
    /// alarm configuration changes, unrelated EventBridge detail-types).
    Unsupported,
    /// A known shape with a missing or mistyped field.
    Invalid,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::UnknownShape => "unknown_shape",
            Self::Unsupported => "unsupported",
            Self::Invalid => "invalid",
        }
    }
}

impl IntakeError {
    fn new(code: RefusalCode, received: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            code,
            received: received.into(),
            reason: reason.into(),
        }
    }
}

/// Parse one input. A CloudTrail log file or an SNS event with several records gives several
/// alerts; every record must be understood, otherwise the whole input is refused (naming the
/// record) so nothing is half-processed.
pub fn parse(bytes: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        IntakeError::new(
            RefusalCode::NotJson,
            format!("{} bytes", bytes.len()),
            format!("not UTF-8 text ({e})"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(IntakeError::new(
            RefusalCode::NotJson,
            "an empty input",
            "expected a JSON event",
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        IntakeError::new(
            RefusalCode::NotJson,
            format!(
                "{} bytes starting {:?}",
                text.len(),
                preview(text.trim_start(), 60)
            ),
            format!("not valid JSON: {e}"),
        )
    })?;
    parse_value(&value)
}

/// Parse an already-decoded input.
pub fn parse_value(value: &Value) -> Result<Vec<Alert>, IntakeError> {
    let Value::Object(map) = value else {
        return Err(IntakeError::new(
            RefusalCode::UnknownShape,
            format!("a JSON {}", json_type(value)),
            "expected a JSON object (an alarm, an EventBridge event, an SNS event or a CloudTrail record)",
        ));
    };

    if let Some(records) = map.get("Records") {
        return parse_records(records);
    }
    if map.contains_key("detail-type") {
        return parse_eventbridge(value).map(|a| vec![a]);
    }
    if map.contains_key("alarmData") {
        return parse_direct_alarm(value).map(|a| vec![a]);
    }
    if map.contains_key("Type") && (map.contains_key("Message") || map.contains_key("TopicArn")) {
        return parse_sns_message(map, "SNS message").map(|a| vec![a]);
    }
    if map.contains_key("AlarmName") {
        return parse_classic_alarm(map, None).map(|a| vec![a]);
    }
    if map.contains_key("eventName")
        || (map.contains_key("eventVersion") && map.contains_key("eventSource"))
    {
        return parse_cloudtrail_record(value, None).map(|a| vec![a]);
    }
    if map.contains_key("messageType")
        || map.contains_key("configurationItem")
        || map.contains_key("configRuleName")
    {
        return parse_config(map, None, None).map(|a| vec![a]);
    }
    if map.contains_key("Events") {
        return Err(IntakeError::new(
            RefusalCode::Unsupported,
            "a CloudTrail LookupEvents response",
            "this is CloudTrail context, not an alert; pass it with --trail",
        ));
    }
    Err(IntakeError::new(
        RefusalCode::UnknownShape,
        describe_keys(map),
        "not an alarm, EventBridge event, SNS event, CloudTrail record or Config notification",
    ))
}

fn parse_records(records: &Value) -> Result<Vec<Alert>, IntakeError> {
    let Value::Array(items) = records else {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            "an object with 'Records'",
            format!(
                "Records is a JSON {}, expected an array",
                json_type(records)
            ),
        ));
    };
    if items.is_empty() {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            "an object with an empty 'Records' array",
            "no records to process",
        ));
    }
    let is_sns = items.iter().any(|r| {
        r.get("Sns").is_some() || r.get("EventSource").and_then(Value::as_str) == Some("aws:sns")
    });
    if is_sns {
        let event: SnsEvent = typed(&records_wrapper(records), "SNS event")?;
        let mut alerts = Vec::with_capacity(event.records.len());
        for (i, record) in event.records.iter().enumerate() {
            let sns = &record.sns;
            let mut msg = Map::new();
            msg.insert("Type".into(), Value::String(sns.sns_message_type.clone()));
            msg.insert("MessageId".into(), Value::String(sns.message_id.clone()));
            msg.insert("TopicArn".into(), Value::String(sns.topic_arn.clone()));
            msg.insert("Message".into(), Value::String(sns.message.clone()));
            msg.insert(
                "Timestamp".into(),
                Value::String(sns.timestamp.to_rfc3339()),
            );
            let alert = parse_sns_message(&msg, &format!("SNS record {i}"))?;
            alerts.push(alert);
        }
        return Ok(alerts);
    }
    // A CloudTrail log file: every record becomes an alert.
    let mut alerts = Vec::with_capacity(items.len());
    for (i, record) in items.iter().enumerate() {
        alerts.push(parse_cloudtrail_record(record, Some(i))?);
    }
    Ok(alerts)
}

fn records_wrapper(records: &Value) -> Value {
    let mut m = Map::new();
    m.insert("Records".into(), records.clone());
    Value::Object(m)
}

/// Deserialize with the JSON path of the first failure in the error. Reads the value in place
/// (no copy of the whole document first).
fn typed<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, IntakeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        IntakeError::new(
            RefusalCode::Invalid,
            what.to_string(),
            format!("field {path}: {}", e.into_inner()),
        )
    })
}

// ---------- SNS ----------

fn parse_sns_message(msg: &Map<String, Value>, what: &str) -> Result<Alert, IntakeError> {
    let kind = msg.get("Type").and_then(Value::as_str).unwrap_or("");
    let message_id = msg
        .get("MessageId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let received = if message_id.is_empty() {
        what.to_string()
    } else {
        format!("{what} (MessageId {message_id})")
    };
    if kind == "SubscriptionConfirmation" || kind == "UnsubscribeConfirmation" {
        return Err(IntakeError::new(
            RefusalCode::Unsupported,
            format!(
                "SNS {kind} ({})",
                if message_id.is_empty() {
                    what.to_string()
                } else {
                    format!("MessageId {message_id}")
                }
            ),
            "not a notification; confirm the subscription with its SubscribeURL (Lambda subscriptions confirm themselves)",
        ));
    }
    if kind != "Notification" {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            received,
            format!("SNS Type is {kind:?}, expected \"Notification\""),
        ));
    }
    let body = match msg.get("Message") {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => {
                return Err(IntakeError::new(
                    RefusalCode::Unsupported,
                    format!(
                        "{received} whose Message is plain text {:?}",
                        preview(s.trim(), 60)
                    ),
                    "the Message is not JSON, so it is not a CloudWatch alarm, EventBridge event or Config notification",
                ));
            }
        },
        // The AWS Config docs show Message as an object; accept both.
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(IntakeError::new(
                RefusalCode::Invalid,
                received,
                format!("Message is a JSON {}, expected a string", json_type(other)),
            ));
        }
        None => {
            return Err(IntakeError::new(
                RefusalCode::Invalid,
                received,
                "missing Message",
            ));
        }
    };
    let Value::Object(inner) = &body else {
        return Err(IntakeError::new(
            RefusalCode::Unsupported,
            format!("{received} whose Message is a JSON {}", json_type(&body)),
            "expected a JSON object in Message",
        ));
    };
    let sns_id = Some(message_id.as_str()).filter(|s| !s.is_empty());
    if inner.contains_key("AlarmName") {
        return parse_classic_alarm(inner, sns_id);
    }
    if inner.contains_key("messageType")
        || inner.contains_key("configurationItem")
        || inner.contains_key("configRuleName")
    {
        return parse_config(inner, sns_id, None);
    }
    if inner.contains_key("detail-type") {
        let mut alert = parse_eventbridge(&body).map_err(|e| IntakeError {
            received: format!("{received} carrying {}", e.received),
            ..e
        })?;
        if let Some(id) = sns_id {
            alert.id = id.to_string();
        }
        return Ok(alert);
    }
    Err(IntakeError::new(
        RefusalCode::Unsupported,
        format!("{received} whose Message is {}", describe_keys(inner)),
        "the Message is JSON but not a CloudWatch alarm notification (no AlarmName), EventBridge event or Config notification",
    ))
}

/// The classic alarm notification CloudWatch publishes to SNS.
fn parse_classic_alarm(m: &Map<String, Value>, sns_id: Option<&str>) -> Result<Alert, IntakeError> {
    let name = m
        .get("AlarmName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let Some(name) = name else {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            "a CloudWatch alarm notification",
            "AlarmName is missing or not a string",
        ));
    };
    let received = format!("alarm notification {name:?}");
    let state_text = m.get("NewStateValue").and_then(Value::as_str).unwrap_or("");
    let state = AlarmState::parse(state_text).ok_or_else(|| {
        IntakeError::new(
            RefusalCode::Invalid,
            received.clone(),
            format!("NewStateValue {state_text:?} is not OK, ALARM or INSUFFICIENT_DATA"),
        )
    })?;
    let time_text = m
        .get("StateChangeTime")
        .and_then(Value::as_str)
        .unwrap_or("");
    let time = parse_time(time_text).ok_or_else(|| {
        IntakeError::new(
            RefusalCode::Invalid,
            received.clone(),
            format!(
                "StateChangeTime {:?} is not a timestamp",
                preview(time_text, 40)
            ),
        )
    })?;
    let arn = m
        .get("AlarmArn")
        .and_then(Value::as_str)
        .map(str::to_string);
    let region = arn.as_deref().and_then(arn_region).or_else(|| {
        m.get("Region")
            .and_then(Value::as_str)
            .and_then(region_code_from_display_name)
    });
    let account = m.get("AWSAccountId").and_then(|v| {
        v.as_str()
            .map(str::to_string)
            .or_else(|| v.as_u64().map(|n| n.to_string()))
    });

    let mut metrics = Vec::new();
    let mut expression = None;
    let mut threshold = None;
    let mut comparison = None;
    let trigger = m.get("Trigger");
    if let Some(Value::Object(t)) = trigger {
        threshold = t.get("Threshold").and_then(Value::as_f64);
        comparison = t
            .get("ComparisonOperator")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(name) = t.get("MetricName").and_then(Value::as_str) {
            metrics.push(MetricRef {
                namespace: t
                    .get("Namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                name: name.to_string(),
                dimensions: classic_dimensions(t.get("Dimensions")),
                stat: t
                    .get("Statistic")
                    .or_else(|| t.get("ExtendedStatistic"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                period: t.get("Period").and_then(Value::as_u64),
            });
        }
        // Metric-math alarms list their operands under Trigger.Metrics.
        if let Some(Value::Array(ms)) = t.get("Metrics") {
            for item in ms {
                if let Some(e) = item.get("Expression").and_then(Value::as_str) {
                    expression.get_or_insert_with(|| e.to_string());
                }
                if let Some(stat) = item.get("MetricStat") {
                    let metric = stat.get("Metric");
                    if let Some(name) = metric
                        .and_then(|x| x.get("MetricName"))
                        .and_then(Value::as_str)
                    {
                        metrics.push(MetricRef {
                            namespace: metric
                                .and_then(|x| x.get("Namespace"))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            name: name.to_string(),
                            dimensions: classic_dimensions(
                                metric.and_then(|x| x.get("Dimensions")),
                            ),
                            stat: stat.get("Stat").and_then(Value::as_str).map(str::to_string),
                            period: stat.get("Period").and_then(Value::as_u64),
                        });
                    }
                }
            }
        }
    }
    let alarm_rule = m
        .get("AlarmRule")
        .and_then(Value::as_str)
        .map(str::to_string);
    let alarm_type = if alarm_rule.is_some() {
        AlarmType::Composite
    } else if expression
        .as_deref()
        .is_some_and(|e| e.contains("ANOMALY_DETECTION_BAND"))
    {
        AlarmType::AnomalyDetection
    } else if expression.is_some() {
        AlarmType::MetricMath
    } else {
        AlarmType::Metric
    };
    let triggering_alarms = match m.get("TriggeringChildren") {
        Some(Value::Array(children)) => children
            .iter()
            .filter_map(|c| c.get("Arn").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let id = match sns_id {
        Some(id) => id.to_string(),
        None => format!("{}@{}", arn.as_deref().unwrap_or(name), time.to_rfc3339()),
    };
    Ok(Alert {
        id,
        input: InputFamily::AlarmSns,
        account,
        region,
        time,
        body: AlertBody::Alarm(Alarm {
            name: name.to_string(),
            arn,
            description: m
                .get("AlarmDescription")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            alarm_type,
            state,
            previous_state: m
                .get("OldStateValue")
                .and_then(Value::as_str)
                .and_then(AlarmState::parse),
            reason: m
                .get("NewStateReason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            metrics,
            expression,
            alarm_rule,
            triggering_alarms,
            threshold,
            comparison,
            recent_datapoints: Vec::new(),
            tags: BTreeMap::new(),
        }),
    })
}

/// Classic notifications give dimensions as `[{"name": .., "value": ..}]` (either case).
fn classic_dimensions(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Some(Value::Array(items)) => {
            for d in items {
                let name = d
                    .get("name")
                    .or_else(|| d.get("Name"))
                    .and_then(Value::as_str);
                let value = d
                    .get("value")
                    .or_else(|| d.get("Value"))
                    .and_then(Value::as_str);
                if let (Some(n), Some(v)) = (name, value) {
                    out.insert(n.to_string(), v.to_string());
                }
            }
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if let Some(s) = v.as_str() {
                    out.insert(k.clone(), s.to_string());
                }
            }
        }
        _ => {}
    }
    out
}

// ---------- CloudWatch alarm (direct and EventBridge) ----------

fn parse_direct_alarm(value: &Value) -> Result<Alert, IntakeError> {
    let name = value
        .get("alarmData")
        .and_then(|d| d.get("alarmName"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let what = format!("CloudWatch alarm action payload for {name:?}");
    if let Some(source) = value.get("source").and_then(Value::as_str)
        && source != "aws.cloudwatch"
    {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            what,
            format!("source is {source:?}, expected \"aws.cloudwatch\""),
        ));
    }
    let event: CloudWatchAlarm<Value, Value> = typed(value, &what)?;
    let arn = event.alarm_arn.as_deref().map(|a| a.trim().to_string());
    let region = event
        .region
        .clone()
        .or_else(|| arn.as_deref().and_then(arn_region));
    let mut alert = alarm_alert(
        &event.alarm_data,
        InputFamily::AlarmDirect,
        arn,
        event.account_id.clone(),
        region,
        event.time,
        &what,
    )?;
    alert.id = format!(
        "{}@{}",
        alert
            .alarm()
            .and_then(|a| a.arn.clone())
            .unwrap_or_else(|| name.to_string()),
        alert.time.to_rfc3339()
    );
    Ok(alert)
}

fn parse_eventbridge(value: &Value) -> Result<Alert, IntakeError> {
    let detail_type = value
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let source = value.get("source").and_then(Value::as_str).unwrap_or("");
    let what = format!("EventBridge event {detail_type:?} from {source:?}");
    match detail_type {
        "CloudWatch Alarm State Change" => {
            if value.get("detail").is_none() {
                let hint = if value.get("alarmData").is_some() {
                    " (the alarm is under 'alarmData', which only direct alarm actions use)"
                } else {
                    ""
                };
                return Err(IntakeError::new(
                    RefusalCode::Invalid,
                    what,
                    format!("missing 'detail'{hint}"),
                ));
            }
            let event: EventBridgeEvent<Value> = typed(value, &what)?;
            let data: CloudWatchAlarmData<Value, Value> =
                typed(&event.detail, &format!("{what} detail"))?;
            let arn = event
                .resources
                .as_ref()
                .and_then(|r| r.iter().find(|a| a.contains(":alarm:")).cloned());
            let region = event
                .region
                .clone()
                .or_else(|| arn.as_deref().and_then(arn_region));
            let time = event.time.unwrap_or_default();
            let mut alert = alarm_alert(
                &data,
                InputFamily::AlarmEventbridge,
                arn,
                event.account.clone(),
                region,
                time,
                &what,
            )?;
            if let Some(id) = event.id.filter(|s| !s.is_empty()) {
                alert.id = id;
            }
            Ok(alert)
        }
        "CloudWatch Alarm Configuration Change" => Err(IntakeError::new(
            RefusalCode::Unsupported,
            what,
            "an alarm was created, updated or deleted; vigil alerts on state changes, not alarm configuration",
        )),
        dt if cloudtrail::is_cloudtrail_detail_type(dt) => {
            let Some(detail) = value.get("detail") else {
                return Err(IntakeError::new(
                    RefusalCode::Invalid,
                    what,
                    "missing 'detail'",
                ));
            };
            let mut alert = parse_cloudtrail_record(detail, None).map_err(|e| IntakeError {
                received: what.clone(),
                ..e
            })?;
            if let Some(id) = value
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                alert.id = id.to_string();
            }
            alert.input = InputFamily::Cloudtrail;
            Ok(alert)
        }
        "Config Rules Compliance Change" | "Config Configuration Item Change" => {
            let Some(Value::Object(detail)) = value.get("detail") else {
                return Err(IntakeError::new(
                    RefusalCode::Invalid,
                    what,
                    "missing or non-object 'detail'",
                ));
            };
            let id = value.get("id").and_then(Value::as_str);
            let mut alert = parse_config(detail, id, Some(value))?;
            if alert.account.is_none() {
                alert.account = value
                    .get("account")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Ok(alert)
        }
        "" => Err(IntakeError::new(
            RefusalCode::Invalid,
            "an EventBridge-shaped event",
            "detail-type is empty or not a string",
        )),
        _ => Err(IntakeError::new(
            RefusalCode::Unsupported,
            what,
            "unknown detail-type; vigil accepts CloudWatch Alarm State Change, AWS API Call via CloudTrail and the Config change events",
        )),
    }
}

fn alarm_alert(
    data: &CloudWatchAlarmData<Value, Value>,
    input: InputFamily,
    arn: Option<String>,
    account: Option<String>,
    region: Option<String>,
    envelope_time: DateTime<Utc>,
    what: &str,
) -> Result<Alert, IntakeError> {
    if data.alarm_name.trim().is_empty() {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            what,
            "alarmName is missing or empty",
        ));
    }
    let Some(state) = &data.state else {
        return Err(IntakeError::new(
            RefusalCode::Invalid,
            what,
            "missing state",
        ));
    };
    let state_value = state_from_serde(&state.value).ok_or_else(|| {
        IntakeError::new(
            RefusalCode::Invalid,
            what,
            "state.value is not OK, ALARM or INSUFFICIENT_DATA",
        )
    })?;
    let config = &data.configuration;
    let mut metrics = Vec::new();
    let mut expression = None;
    if let Some(Value::Array(items)) = config.get("metrics") {
        for item in items {
            if let Some(e) = item.get("expression").and_then(Value::as_str) {
                // The returned expression is the alarm's; operands come as metricStat.
                if item
                    .get("returnData")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
                    || expression.is_none()
                {
                    expression = Some(e.to_string());
                }
            }
            if let Some(stat) = item.get("metricStat") {
                let metric = stat.get("metric");
                if let Some(name) = metric.and_then(|m| m.get("name")).and_then(Value::as_str) {
                    metrics.push(MetricRef {
                        namespace: metric
                            .and_then(|m| m.get("namespace"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        name: name.to_string(),
                        dimensions: classic_dimensions(metric.and_then(|m| m.get("dimensions"))),
                        stat: stat.get("stat").and_then(Value::as_str).map(str::to_string),
                        period: stat.get("period").and_then(Value::as_u64),
                    });
                }
            }
        }
    }
    let alarm_rule = config
        .get("alarmRule")
        .and_then(Value::as_str)
        .map(str::to_string);
    let alarm_type = if alarm_rule.is_some() {
        AlarmType::Composite
    } else if expression
        .as_deref()
        .is_some_and(|e| e.contains("ANOMALY_DETECTION_BAND"))
    {
        AlarmType::AnomalyDetection
    } else if expression.is_some() {
        AlarmType::MetricMath
    } else {
        AlarmType::Metric
    };
    // reasonData is a JSON document inside a string.
    let reason_data = match &state.reason_data {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        _ => None,
    };
    let threshold = reason_data
        .as_ref()
        .and_then(|r| r.get("threshold"))
        .and_then(Value::as_f64);
    let recent_datapoints = reason_data
        .as_ref()
        .and_then(|r| r.get("recentDatapoints"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let triggering_alarms = reason_data
        .as_ref()
        .and_then(|r| r.get("triggeringAlarms"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("arn").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let time = if state.timestamp.timestamp() > 0 {
        state.timestamp
    } else {
        envelope_time
    };
    let arn = arn.map(|a| a.split_whitespace().collect::<String>());
    Ok(Alert {
        id: format!(
            "{}@{}",
            arn.as_deref().unwrap_or(&data.alarm_name),
            time.to_rfc3339()
        ),
        input,
        account,
        region,
        time,
        body: AlertBody::Alarm(Alarm {
            name: data.alarm_name.clone(),
            arn,
            description: config
                .get("description")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            alarm_type,
            state: state_value,
            previous_state: data
                .previous_state
                .as_ref()
                .and_then(|p| state_from_serde(&p.value)),
            reason: state.reason.clone(),
            metrics,
            expression,
            alarm_rule,
            triggering_alarms,
            threshold,
            comparison: None,
            recent_datapoints,
            tags: BTreeMap::new(),
        }),
    })
}

fn state_from_serde<T: Serialize>(v: &T) -> Option<AlarmState> {
    serde_json::to_value(v)
        .ok()
        .as_ref()
        .and_then(Value::as_str)
        .and_then(AlarmState::parse)
}

// ---------- CloudTrail ----------

fn parse_cloudtrail_record(record: &Value, index: Option<usize>) -> Result<Alert, IntakeError> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let received = match index {
        Some(i) => format!("CloudTrail record Records[{i}] ({name})"),
        None => format!("CloudTrail record ({name})"),
    };
    let change = cloudtrail::parse_record(record)
        .map_err(|e| IntakeError::new(RefusalCode::Invalid, received, e.0))?;
    Ok(Alert {
        id: change.event_id.clone(),
        input: InputFamily::Cloudtrail,
        account: change.account.clone(),
        region: change.region.clone(),
        time: change.time,
        body: AlertBody::ApiCall(change),
    })
}

// ---------- AWS Config ----------

fn parse_config(
    m: &Map<String, Value>,
    id: Option<&str>,
    envelope: Option<&Value>,
) -> Result<Alert, IntakeError> {
    let message_type = m.get("messageType").and_then(Value::as_str).unwrap_or("");
    let what = format!("AWS Config notification {message_type:?}");
    let (change, time_text) = if message_type == "ComplianceChangeNotification"
        || m.contains_key("newEvaluationResult")
    {
        let new = m.get("newEvaluationResult");
        let old = m.get("oldEvaluationResult");
        let qualifier = new
            .and_then(|n| n.get("evaluationResultIdentifier"))
            .and_then(|i| i.get("evaluationResultQualifier"));
        let pick = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .or_else(|| qualifier.and_then(|q| q.get(k)).and_then(Value::as_str))
                .map(str::to_string)
        };
        let compliance = new
            .and_then(|n| n.get("complianceType"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if compliance.is_none() {
            return Err(IntakeError::new(
                RefusalCode::Invalid,
                what,
                "missing newEvaluationResult.complianceType",
            ));
        }
        let time = m
            .get("notificationCreationTime")
            .and_then(Value::as_str)
            .or_else(|| {
                new.and_then(|n| n.get("resultRecordedTime"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string);
        (
            ConfigChange {
                change: ConfigChangeKind::ComplianceChange,
                rule_name: pick("configRuleName"),
                resource_type: pick("resourceType"),
                resource_id: pick("resourceId"),
                resource_name: None,
                compliance,
                previous_compliance: old
                    .and_then(|o| o.get("complianceType"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                change_type: None,
                changed_properties: Vec::new(),
            },
            time,
        )
    } else if message_type == "ConfigurationItemChangeNotification"
        || m.contains_key("configurationItem")
    {
        let Some(Value::Object(item)) = m.get("configurationItem") else {
            return Err(IntakeError::new(
                RefusalCode::Invalid,
                what,
                "missing or non-object configurationItem",
            ));
        };
        let diff = m.get("configurationItemDiff");
        let changed_properties = match diff.and_then(|d| d.get("changedProperties")) {
            Some(Value::Object(props)) => props.keys().take(50).cloned().collect(),
            _ => Vec::new(),
        };
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        (
            ConfigChange {
                change: ConfigChangeKind::ConfigurationItemChange,
                rule_name: None,
                resource_type: s("resourceType"),
                resource_id: s("resourceId"),
                resource_name: s("resourceName"),
                compliance: None,
                previous_compliance: None,
                change_type: diff
                    .and_then(|d| d.get("changeType"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                changed_properties,
            },
            s("configurationItemCaptureTime").or_else(|| {
                m.get("notificationCreationTime")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
        )
    } else {
        return Err(IntakeError::new(
            RefusalCode::Unsupported,
            what,
            "vigil accepts Config ComplianceChangeNotification and ConfigurationItemChangeNotification",
        ));
    };
    let time_text = time_text.or_else(|| {
        envelope
            .and_then(|e| e.get("time"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let time = time_text.as_deref().and_then(parse_time).ok_or_else(|| {
        IntakeError::new(
            RefusalCode::Invalid,
            what.clone(),
            "no notificationCreationTime or capture time",
        )
    })?;
    let item = m.get("configurationItem");
    let account = m
        .get("awsAccountId")
        .or_else(|| item.and_then(|i| i.get("awsAccountId")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let region = m
        .get("awsRegion")
        .or_else(|| item.and_then(|i| i.get("awsRegion")))
        .or_else(|| envelope.and_then(|e| e.get("region")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = id.map(str::to_string).unwrap_or_else(|| {
        format!(
            "config:{}:{}@{}",
            change.rule_name.as_deref().unwrap_or("-"),
            change.resource_id.as_deref().unwrap_or("-"),
            time.to_rfc3339()
        )
    });
    Ok(Alert {
        id,
        input: InputFamily::Config,
        account,
        region,
        time,
        body: AlertBody::Config(change),
    })
}

// ---------- helpers ----------

/// `arn:aws:cloudwatch:us-east-1:123:alarm:x` -> `us-east-1` (tolerating stray spaces).
fn arn_region(arn: &str) -> Option<String> {
    let compact: String = arn.split_whitespace().collect();
    compact
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Classic alarm notifications carry the Region's display name, not its code.
fn region_code_from_display_name(name: &str) -> Option<String> {
    const REGIONS: &[(&str, &str)] = &[
        ("US East (N. Virginia)", "us-east-1"),
        ("US (Virginia)", "us-east-1"),
        ("US East (Ohio)", "us-east-2"),
        ("US West (N. California)", "us-west-1"),
        ("US West (Oregon)", "us-west-2"),
        ("EU (Ireland)", "eu-west-1"),
        ("EU - Ireland", "eu-west-1"),
        ("Europe (Ireland)", "eu-west-1"),
        ("EU (London)", "eu-west-2"),
        ("Europe (London)", "eu-west-2"),
        ("EU (Paris)", "eu-west-3"),
        ("Europe (Paris)", "eu-west-3"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("Europe (Frankfurt)", "eu-central-1"),
        ("EU (Stockholm)", "eu-north-1"),
        ("Europe (Stockholm)", "eu-north-1"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("Asia Pacific (Seoul)", "ap-northeast-2"),
        ("Asia Pacific (Singapore)", "ap-southeast-1"),
        ("Asia Pacific (Sydney)", "ap-southeast-2"),
        ("Asia Pacific (Mumbai)", "ap-south-1"),
        ("Canada (Central)", "ca-central-1"),
        ("South America (Sao Paulo)", "sa-east-1"),
        ("AWS GovCloud (US-West)", "us-gov-west-1"),
        ("AWS GovCloud (US-East)", "us-gov-east-1"),
    ];
    let trimmed = name.trim();
    if trimmed.split('-').count() == 3
        && trimmed
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some(trimmed.to_string());
    }
    REGIONS
        .iter()
        .find(|(display, _)| *display == trimmed)
        .map(|(_, code)| (*code).to_string())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn non_json_is_refused_with_a_preview_of_what_arrived() {
        let err = parse(b"hello there").expect_err("refused");
        assert_eq!(err.code, RefusalCode::NotJson);
        assert!(err.received.contains("hello there"), "{err}");
    }

    #[test]
    fn truncated_json_is_refused() {
        let err = parse(br#"{"Records":[{"Sns":"#).expect_err("refused");
        assert_eq!(err.code, RefusalCode::NotJson);
    }

    #[test]
    fn an_unknown_detail_type_names_itself() {
        let err =
            parse(br#"{"detail-type":"Glue Job State Change","source":"aws.glue","detail":{}}"#)
                .expect_err("refused");
        assert_eq!(err.code, RefusalCode::Unsupported);
        assert!(err.to_string().contains("Glue Job State Change"));
    }

    #[test]
    fn a_classic_alarm_without_trigger_is_still_an_alarm() {
        let alerts = parse(br#"{"AlarmName":"x","NewStateValue":"ALARM","StateChangeTime":"2019-02-12T15:45:24.006+0000","Region":"EU - Ireland"}"#).expect("understood");
        assert_eq!(alerts[0].region.as_deref(), Some("eu-west-1"));
        assert!(alerts[0].alarm().is_some_and(|a| a.metrics.is_empty()));
    }

    #[test]
    fn region_display_names_map_to_codes() {
        assert_eq!(
            region_code_from_display_name("US East (N. Virginia)").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_code_from_display_name("eu-west-2").as_deref(),
            Some("eu-west-2")
        );
        assert_eq!(region_code_from_display_name("Narnia"), None);
    }
}
