//! CloudTrail records in every shape vigil meets them, reduced to [`Change`].
//!
//! Shapes: one record; a log file (`{"Records":[...]}`, as CloudTrail writes to S3); an
//! EventBridge `AWS API Call via CloudTrail` event; a saved `LookupEvents` response
//! (`{"Events":[{"CloudTrailEvent":"<json>"}]}`); a JSON array of any of these.
//!
//! Invariant: a [`Change`] keeps only allow-listed request parameters ([`allowed_parameters`]),
//! scalar and length-capped; `responseElements`, `additionalEventData` and every request body
//! (prompts, policies, environment variables) are dropped here, after the facts the classifier
//! needs ([`derive_facts`]) have been read from them. Parsing is lenient where AWS is lenient
//! (records from AWS-service principals omit `userAgent` and `requestID`) and strict where vigil
//! would otherwise guess (no `eventName`, `eventSource` or `eventTime`: refused).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::model::{Actor, Change};

/// Why one CloudTrail record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Why a whole CloudTrail document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error(
        "not a CloudTrail document: expected a record, {{\"Records\":[...]}}, an EventBridge \
         'AWS API Call via CloudTrail' event or a LookupEvents response; got {0}"
    )]
    UnknownShape(String),
}

/// Records read from one CloudTrail document. Bad records are reported, never silently dropped,
/// and never sink the good ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrailBatch {
    pub changes: Vec<Change>,
    pub skipped: Vec<SkippedRecord>,
}

/// A record of a document that was not understood, with its position and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Where it was: `Records[3]`, `Events[0].CloudTrailEvent`, ...
    pub location: String,
    pub reason: String,
}

impl TrailBatch {
    fn extend(&mut self, other: TrailBatch) {
        self.changes.extend(other.changes);
        self.skipped.extend(other.skipped);
    }
}

/// Parse any CloudTrail document (see the module docs for the shapes).
pub fn parse_trail(text: &str) -> Result<TrailBatch, TrailError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| TrailError::NotJson(e.to_string()))?;
    trail_from_value(&value, "")
}

/// Parse an already-decoded CloudTrail document.
pub fn trail_from_value(value: &Value, at: &str) -> Result<TrailBatch, TrailError> {
    let mut batch = TrailBatch::default();
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{at}[{i}]");
                match trail_from_value(item, &here) {
                    Ok(b) => batch.extend(b),
                    Err(e) => batch.skipped.push(SkippedRecord {
                        location: here,
                        reason: e.to_string(),
                    }),
                }
            }
        }
        Value::Object(map) => {
            if let Some(records) = map.get("Records").and_then(Value::as_array) {
                for (i, record) in records.iter().enumerate() {
                    push_record(&mut batch, record, format!("{at}Records[{i}]"));
                }
            } else if let Some(events) = map.get("Events").and_then(Value::as_array) {
                for (i, event) in events.iter().enumerate() {
                    push_lookup_event(&mut batch, event, format!("{at}Events[{i}]"));
                }
            } else if is_eventbridge_api_call(map) {
                match map.get("detail") {
                    Some(detail) => push_record(&mut batch, detail, format!("{at}detail")),
                    None => batch.skipped.push(SkippedRecord {
                        location: at.to_string(),
                        reason: "EventBridge CloudTrail event without a 'detail' field".into(),
                    }),
                }
            } else if map.contains_key("eventName") || map.contains_key("eventSource") {
                push_record(&mut batch, value, at.to_string());
            } else {
                return Err(TrailError::UnknownShape(describe_keys(map)));
            }
        }
        other => {
            return Err(TrailError::UnknownShape(format!(
                "a JSON {}",
                json_type(other)
            )));
        }
    }
    Ok(batch)
}

fn push_record(batch: &mut TrailBatch, record: &Value, location: String) {
    match parse_record(record) {
        Ok(change) => batch.changes.push(change),
        Err(e) => batch.skipped.push(SkippedRecord {
            location,
            reason: e.0,
        }),
    }
}

/// A `LookupEvents` event carries the full record as a JSON string in `CloudTrailEvent`.
fn push_lookup_event(batch: &mut TrailBatch, event: &Value, location: String) {
    let Some(raw) = event.get("CloudTrailEvent") else {
        batch.skipped.push(SkippedRecord {
            location,
            reason: "LookupEvents event without CloudTrailEvent".into(),
        });
        return;
    };
    let record = match raw {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(e) => {
                batch.skipped.push(SkippedRecord {
                    location: format!("{location}.CloudTrailEvent"),
                    reason: format!("CloudTrailEvent is not valid JSON: {e}"),
                });
                return;
            }
        },
        Value::Object(_) => raw.clone(),
        other => {
            batch.skipped.push(SkippedRecord {
                location: format!("{location}.CloudTrailEvent"),
                reason: format!(
                    "CloudTrailEvent is a JSON {}, expected a string",
                    json_type(other)
                ),
            });
            return;
        }
    };
    push_record(batch, &record, format!("{location}.CloudTrailEvent"));
}

/// `detail-type` of CloudTrail events on EventBridge (API calls and console sign-ins).
pub fn is_cloudtrail_detail_type(detail_type: &str) -> bool {
    matches!(
        detail_type,
        "AWS API Call via CloudTrail"
            | "AWS Console Sign In via CloudTrail"
            | "AWS Service Event via CloudTrail"
    )
}

fn is_eventbridge_api_call(map: &Map<String, Value>) -> bool {
    map.get("detail-type")
        .and_then(Value::as_str)
        .is_some_and(is_cloudtrail_detail_type)
}

/// Parse one CloudTrail record.
pub fn parse_record(record: &Value) -> Result<Change, RecordError> {
    let Value::Object(r) = record else {
        return Err(RecordError(format!(
            "record is a JSON {}, expected an object",
            json_type(record)
        )));
    };
    if r.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight") {
        return Err(RecordError(
            "CloudTrail Insights event (eventType AwsCloudTrailInsight): an anomaly summary, not an API call".into(),
        ));
    }
    let event_name = required_str(r, "eventName")?;
    let event_source = required_str(r, "eventSource")?;
    let time_text = required_str(r, "eventTime")?;
    let time = parse_time(time_text).ok_or_else(|| {
        RecordError(format!(
            "eventTime '{}' is not a timestamp",
            preview(time_text, 40)
        ))
    })?;

    // Old (1.0) records have no eventID; requestID is the next best unique key.
    let event_id = str_field(r, "eventID")
        .or_else(|| str_field(r, "requestID"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{event_source}:{event_name}:{}", time.to_rfc3339()));

    let actor = parse_actor(r.get("userIdentity"));
    let request_params = match r.get("requestParameters") {
        Some(Value::Object(m)) => Some(m.clone()),
        // Some sources log requestParameters as a string; it is never forwarded.
        _ => None,
    };
    let request = allowed_parameters(event_name, request_params.as_ref());
    let resources = resources_of(r, &request);
    let facts = derive_facts(event_name, request_params.as_ref(), r);
    let read_only = match r.get("readOnly") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => is_read_only_name(event_name),
    };

    Ok(Change {
        event_id,
        event_name: event_name.to_string(),
        event_source: event_source.to_string(),
        time,
        region: str_field(r, "awsRegion").map(str::to_string),
        account: str_field(r, "recipientAccountId")
            .or_else(|| {
                r.get("userIdentity")
                    .and_then(|u| u.get("accountId"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string),
        actor,
        source_ip: str_field(r, "sourceIPAddress").map(str::to_string),
        user_agent: str_field(r, "userAgent").map(|s| preview(s, 200)),
        read_only,
        error_code: str_field(r, "errorCode").map(str::to_string),
        error_message: str_field(r, "errorMessage").map(|s| preview(s, 500)),
        request,
        resources,
        facts,
    })
}

fn required_str<'a>(r: &'a Map<String, Value>, key: &str) -> Result<&'a str, RecordError> {
    match r.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(RecordError(format!("{key} is empty"))),
        Some(other) => Err(RecordError(format!(
            "{key} is a JSON {}, expected a string",
            json_type(other)
        ))),
        None => Err(RecordError(format!("missing {key}"))),
    }
}

fn str_field<'a>(r: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    r.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// CloudTrail writes `2024-07-31T13:06:24Z`; exports and SIEMs also give
/// `2025-01-21 17:39:10.000000000` (UTC, no zone); LookupEvents may give epoch seconds.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // CloudWatch writes offsets without a colon: 2019-10-02T17:04:40.989+0000.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && (0.0..1.0e11).contains(&secs)
    {
        #[allow(clippy::cast_possible_truncation)]
        return DateTime::from_timestamp(secs.trunc() as i64, 0);
    }
    None
}

fn parse_actor(identity: Option<&Value>) -> Actor {
    let Some(Value::Object(u)) = identity else {
        return Actor {
            name: "unknown identity".into(),
            ..Actor::default()
        };
    };
    let identity_type = str_field(u, "type").map(str::to_string);
    let arn = str_field(u, "arn").map(str::to_string);
    let issuer = u.get("sessionContext").and_then(|s| s.get("sessionIssuer"));
    let role_arn = issuer
        .and_then(|i| i.get("arn"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let role_name = issuer
        .and_then(|i| i.get("userName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    // assumed-role ARNs end in role-name/session-name; Lambda names the session after the function.
    let session_name = match identity_type.as_deref() {
        Some("AssumedRole") => arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .filter(|s| !s.is_empty() && Some(*s) != role_name)
            .map(str::to_string),
        _ => None,
    };
    let invoked_by = str_field(u, "invokedBy").map(str::to_string);
    let name = match identity_type.as_deref() {
        Some("Root") => "root".to_string(),
        Some("IAMUser") => str_field(u, "userName")
            .map(str::to_string)
            .or_else(|| {
                arn.as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "IAM user".into()),
        Some("AssumedRole") => match (role_name, &session_name) {
            (Some(role), Some(session)) => format!("{role}/{session}"),
            (Some(role), None) => role.to_string(),
            _ => arn
                .as_deref()
                .and_then(|a| a.split_once("assumed-role/"))
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_else(|| "assumed role".into()),
        },
        Some("AWSService") => invoked_by.clone().unwrap_or_else(|| "AWS service".into()),
        _ => str_field(u, "userName")
            .map(str::to_string)
            .or_else(|| arn.clone())
            .or_else(|| str_field(u, "principalId").map(str::to_string))
            .unwrap_or_else(|| {
                identity_type
                    .clone()
                    .unwrap_or_else(|| "unknown identity".into())
            }),
    };
    Actor {
        identity_type,
        arn,
        name: preview(&name, 200),
        role_arn,
        session_name,
        invoked_by,
    }
}

fn is_read_only_name(event_name: &str) -> bool {
    [
        "Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Query", "Scan",
        "Invoke", "Converse", "Retrieve", "Decrypt",
    ]
    .iter()
    .any(|p| event_name.starts_with(p))
}

/// What CloudTrail logs in place of a value it withholds.
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Identifier parameters any event may keep: names, ids, ARNs, versions. Never documents.
const COMMON_IDENTIFIERS: &[&str] = &[
    "roleName",
    "userName",
    "groupName",
    "policyArn",
    "policyName",
    "instanceProfileName",
    "bucketName",
    "functionName",
    "functionArn",
    "qualifier",
    "layerName",
    "statementId",
    "guardrailIdentifier",
    "guardrailVersion",
    "guardrailId",
    "modelId",
    "baseModelIdentifier",
    "provisionedModelId",
    "provisionedModelName",
    "modelUnits",
    "desiredModelUnits",
    "desiredModelId",
    "jobName",
    "customModelName",
    "knowledgeBaseId",
    "agentId",
    "agentAliasId",
    "dataSourceId",
    "name",
    "trailName",
    "keyId",
    "aliasName",
    "configRuleName",
    "configurationRecorderName",
    "deliveryChannelName",
    "tableName",
    "topicArn",
    "queueUrl",
    "secretId",
    "groupId",
    "instanceId",
    "roleArn",
    "role",
    "principal",
    "sourceArn",
    "sourceAccount",
    "action",
    "reservedConcurrentExecutions",
    "provisionedConcurrentExecutions",
    "versionId",
    "policyVersionId",
    "setAsDefault",
    "productId",
    "offerToken",
    "includeManagementEvents",
    "readWriteType",
    "isMultiRegionTrail",
    "enableLogFileValidation",
];

/// Extra keys kept for particular events (scalars only, like the common ones).
fn event_specific(event_name: &str) -> &'static [&'static str] {
    match event_name {
        "UpdateFunctionConfiguration" | "UpdateFunctionConfiguration20150331v2" => {
            &["timeout", "memorySize", "runtime", "handler"]
        }
        "AttachRolePolicy" | "DetachRolePolicy" | "AttachUserPolicy" | "DetachUserPolicy" => {
            &["policyArn"]
        }
        "PutBucketPublicAccessBlock" | "DeleteBucketPublicAccessBlock" => &["bucketName"],
        "CreateGuardrailVersion" | "UpdateGuardrail" | "DeleteGuardrail" => &["description"],
        _ => &[],
    }
}

/// The allow-list of ARCHITECTURE.md ("Invariants", 2): scalar identifier parameters, strings capped at 256 characters.
/// Prompt and completion text (InvokeModel `body`, Converse `messages`, ...) never passes:
/// those keys are on no list, and nested objects are never kept.
pub fn allowed_parameters(
    event_name: &str,
    params: Option<&Map<String, Value>>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(params) = params else { return out };
    let extra = event_specific(event_name);
    for (key, value) in params {
        if !(COMMON_IDENTIFIERS.contains(&key.as_str()) || extra.contains(&key.as_str())) {
            continue;
        }
        let kept = match value {
            // CloudTrail's placeholder for values it withholds (guardrail names, messages).
            Value::String(s) if s == HIDDEN => continue,
            Value::String(s) => Value::String(preview(s, 256)),
            Value::Number(_) | Value::Bool(_) => value.clone(),
            _ => continue,
        };
        out.insert(key.clone(), kept);
    }
    out
}

/// Names and ARNs of what the call touched: the allow-listed identifiers and `resources[].ARN`.
fn resources_of(r: &Map<String, Value>, request: &BTreeMap<String, Value>) -> Vec<String> {
    const NOT_RESOURCES: &[&str] = &[
        "action",
        "principal",
        "sourceAccount",
        "qualifier",
        "statementId",
        "setAsDefault",
        "versionId",
        "policyVersionId",
        "modelUnits",
        "desiredModelUnits",
        "reservedConcurrentExecutions",
        "provisionedConcurrentExecutions",
        "timeout",
        "memorySize",
        "runtime",
        "handler",
        "description",
        "includeManagementEvents",
        "readWriteType",
        "isMultiRegionTrail",
        "enableLogFileValidation",
        "guardrailVersion",
    ];
    let mut out: Vec<String> = Vec::new();
    for (k, v) in request {
        if NOT_RESOURCES.contains(&k.as_str()) {
            continue;
        }
        if let Some(s) = v.as_str()
            && !s.is_empty()
            && !out.iter().any(|o| o == s)
        {
            out.push(s.to_string());
        }
    }
    if let Some(Value::Array(resources)) = r.get("resources") {
        for res in resources {
            if let Some(arn) = res
                .get("ARN")
                .or_else(|| res.get("arn"))
                .and_then(Value::as_str)
                && !out.iter().any(|o| o == arn)
            {
                out.push(preview(arn, 256));
            }
        }
    }
    out
}

/// Facts the classifier matches on, read from the full record before it is reduced.
pub fn derive_facts(
    event_name: &str,
    params: Option<&Map<String, Value>>,
    record: &Map<String, Value>,
) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    let params_value = params.map(|p| Value::Object(p.clone()));

    if let Some(p) = &params_value {
        if has_public_principal(p) {
            facts.insert("public_principal".to_string());
        }
        if grants_admin(p) {
            facts.insert("admin_policy".to_string());
        }
        if mentions_bedrock_allow(p) {
            facts.insert("grants_bedrock".to_string());
        }
        if event_name == "PutEventSelectors" && excludes_management_events(p) {
            facts.insert("management_events_excluded".to_string());
        }
    }
    const REMOVALS: &[&str] = &[
        "DetachRolePolicy",
        "DetachUserPolicy",
        "DetachGroupPolicy",
        "DeleteRolePolicy",
        "DeleteUserPolicy",
        "DeleteGroupPolicy",
        "DeletePolicy",
        "DeletePolicyVersion",
        "RemovePermission",
        "RemovePermission20150331v2",
        "PutRolePermissionsBoundary",
        "PutUserPermissionsBoundary",
        "RemoveRoleFromInstanceProfile",
        "RemoveUserFromGroup",
        "DeleteRole",
        "RevokeGrant",
        "ScheduleKeyDeletion",
        "DisableKey",
    ];
    if REMOVALS.contains(&event_name) {
        facts.insert("removes_permission".to_string());
    }
    const CAPACITY: &[&str] = &[
        "CreateProvisionedModelThroughput",
        "UpdateProvisionedModelThroughput",
        "DeleteProvisionedModelThroughput",
        "PutFunctionConcurrency",
        "DeleteFunctionConcurrency",
        "PutProvisionedConcurrencyConfig",
        "DeleteProvisionedConcurrencyConfig",
        "UpdateTable",
        "UpdateTableReplicaAutoScaling",
        "RequestServiceQuotaIncrease",
        "PutFunctionConcurrency20171031",
        "DeleteFunctionConcurrency20171031",
    ];
    if CAPACITY.contains(&event_name) {
        facts.insert("capacity_change".to_string());
    }
    if record.get("errorCode").is_some() {
        facts.insert("failed".to_string());
    }
    facts
}

/// A policy document or parameter naming `*` (or `{"AWS":"*"}`) as principal, or an ACL grant
/// to AllUsers / AuthenticatedUsers. Policy documents arrive as objects or as JSON strings.
fn has_public_principal(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, val)| {
            let key = k.to_ascii_lowercase();
            if key == "principal" && principal_is_star(val) {
                return true;
            }
            if key == "uri"
                && val.as_str().is_some_and(|s| {
                    s.ends_with("/global/AllUsers") || s.ends_with("/global/AuthenticatedUsers")
                })
            {
                return true;
            }
            has_public_principal(val)
        }),
        Value::Array(a) => a.iter().any(has_public_principal),
        Value::String(s)
            if s.len() > 2 && (s.trim_start().starts_with('{') || s.contains("%7B")) =>
        {
            parse_embedded_json(s).is_some_and(|inner| has_public_principal(&inner))
        }
        _ => false,
    }
}

fn principal_is_star(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "*",
        Value::Object(m) => m.values().any(principal_is_star),
        Value::Array(a) => a.iter().any(principal_is_star),
        _ => false,
    }
}

/// Policy documents in CloudTrail are JSON strings, sometimes URL-encoded.
fn parse_embedded_json(s: &str) -> Option<Value> {
    serde_json::from_str(s)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(s)).ok())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn grants_admin(v: &Value) -> bool {
    if let Some(arn) = v.get("policyArn").and_then(Value::as_str)
        && (arn.ends_with(":policy/AdministratorAccess") || arn.ends_with(":policy/IAMFullAccess"))
    {
        return true;
    }
    statements(v).iter().any(|st| {
        is_allow(st)
            && any_str(st.get("Action"), |a| a == "*")
            && any_str(st.get("Resource"), |r| r == "*")
    })
}

fn mentions_bedrock_allow(v: &Value) -> bool {
    if let Some(arn) = v.get("policyArn").and_then(Value::as_str)
        && arn.contains("Bedrock")
    {
        return true;
    }
    statements(v).iter().any(|st| {
        is_allow(st)
            && any_str(st.get("Action"), |a| {
                a.to_ascii_lowercase().starts_with("bedrock:")
            })
    })
}

fn is_allow(st: &Value) -> bool {
    st.get("Effect")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("allow"))
}

fn any_str(v: Option<&Value>, f: impl Fn(&str) -> bool) -> bool {
    match v {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(f),
        _ => false,
    }
}

/// Every IAM statement in any policy document among the parameters.
fn statements(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    collect_statements(v, &mut out, 0);
    out
}

fn collect_statements(v: &Value, out: &mut Vec<Value>, depth: usize) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(st) = m.get("Statement") {
                match st {
                    Value::Array(a) => out.extend(a.iter().cloned()),
                    Value::Object(_) => out.push(st.clone()),
                    _ => {}
                }
            }
            for val in m.values() {
                collect_statements(val, out, depth + 1);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_statements(x, out, depth + 1)),
        Value::String(s) if s.contains("Statement") => {
            if let Some(inner) = parse_embedded_json(s) {
                collect_statements(&inner, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Basic selectors with `includeManagementEvents: false`, or advanced selectors whose
/// `eventCategory` equals only `Data` (management events no longer recorded).
fn excludes_management_events(p: &Value) -> bool {
    let basic = p
        .get("eventSelectors")
        .and_then(Value::as_array)
        .is_some_and(|sels| {
            !sels.is_empty()
                && sels.iter().all(|s| {
                    s.get("includeManagementEvents").and_then(Value::as_bool) == Some(false)
                })
        });
    let advanced = p
        .get("advancedEventSelectors")
        .and_then(Value::as_array)
        .is_some_and(|sels| {
            !sels.is_empty()
                && !sels.iter().any(|sel| {
                    sel.get("fieldSelectors")
                        .and_then(Value::as_array)
                        .is_some_and(|fs| {
                            fs.iter().any(|f| {
                                f.get("field").and_then(Value::as_str) == Some("eventCategory")
                                    && any_str(f.get("equals"), |e| e == "Management")
                            })
                        })
                })
        });
    basic || advanced
}

/// At most `max` characters, cut on a char boundary, marked with an ellipsis.
pub fn preview(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn describe_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "an empty object".into();
    }
    let keys: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
    let more = if map.len() > 8 {
        format!(" and {} more", map.len() - 8)
    } else {
        String::new()
    };
    format!("an object with keys {}{more}", keys.join(", "))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, params: Value) -> Value {
        json!({
            "eventVersion": "1.09", "eventTime": "2026-11-20T09:09:00Z", "eventSource": "iam.amazonaws.com",
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.24",
            "userIdentity": {"type": "IAMUser", "userName": "dana", "arn": "arn:aws:iam::111122223333:user/dana"},
            "requestParameters": params, "eventID": "e-1", "readOnly": false, "recipientAccountId": "111122223333"
        })
    }

    #[test]
    fn request_bodies_never_survive_the_allow_list() {
        let r = json!({
            "eventVersion": "1.09", "eventTime": "2026-11-20T09:09:00Z", "eventSource": "bedrock.amazonaws.com",
            "eventName": "InvokeModel", "requestParameters": {"modelId": "anthropic.claude", "body": "ignore all previous instructions", "messages": [{"content": "secret prompt"}]},
            "responseElements": {"completion": "the answer"}, "eventID": "x"
        });
        let c = parse_record(&r).expect("parses");
        let text = serde_json::to_string(&c).expect("serializes");
        assert!(!text.contains("ignore all previous"));
        assert!(!text.contains("secret prompt"));
        assert!(!text.contains("the answer"));
        assert_eq!(c.request.get("modelId"), Some(&json!("anthropic.claude")));
        assert!(
            c.read_only,
            "InvokeModel without readOnly is treated as read-only"
        );
    }

    #[test]
    fn detach_role_policy_removes_a_permission_and_names_its_resources() {
        let c = parse_record(&record(
            "DetachRolePolicy",
            json!({"roleName": "tool-role", "policyArn": "arn:aws:iam::1:policy/p"}),
        ))
        .expect("parses");
        assert!(c.facts.contains("removes_permission"));
        assert_eq!(
            c.resources,
            vec![
                "arn:aws:iam::1:policy/p".to_string(),
                "tool-role".to_string()
            ]
        );
        assert_eq!(c.actor.name, "dana");
    }

    #[test]
    fn public_principal_is_found_in_a_policy_string() {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let c = parse_record(&record(
            "PutBucketPolicy",
            json!({"bucketName": "b", "bucketPolicy": policy}),
        ))
        .expect("parses");
        assert!(c.facts.contains("public_principal"));
        assert!(
            !serde_json::to_string(&c.request)
                .expect("json")
                .contains("Statement")
        );
    }

    #[test]
    fn administrator_access_is_an_admin_policy() {
        let c = parse_record(&record(
            "AttachRolePolicy",
            json!({"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        ))
        .expect("parses");
        assert!(c.facts.contains("admin_policy"));
    }

    #[test]
    fn event_selectors_without_management_events_are_flagged() {
        let c = parse_record(&record("PutEventSelectors", json!({"trailName": "t", "eventSelectors": [{"includeManagementEvents": false, "readWriteType": "All"}]}))).expect("parses");
        assert!(c.facts.contains("management_events_excluded"));
        let c = parse_record(&record(
            "PutEventSelectors",
            json!({"trailName": "t", "eventSelectors": [{"includeManagementEvents": true}]}),
        ))
        .expect("parses");
        assert!(!c.facts.contains("management_events_excluded"));
    }

    #[test]
    fn insights_events_and_records_without_a_name_are_refused_with_the_reason() {
        let err = parse_record(
            &json!({"eventType": "AwsCloudTrailInsight", "eventTime": "2019-11-14T00:51:00Z"}),
        )
        .expect_err("refused");
        assert!(err.0.contains("Insights"));
        let err = parse_record(
            &json!({"eventSource": "iam.amazonaws.com", "eventTime": "2019-11-14T00:51:00Z"}),
        )
        .expect_err("refused");
        assert_eq!(err.0, "missing eventName");
    }

    #[test]
    fn a_log_file_keeps_good_records_and_reports_bad_ones() {
        let doc = json!({"Records": [record("DetachRolePolicy", json!({})), {"eventName": "X"}]});
        let batch = trail_from_value(&doc, "").expect("a log file");
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.skipped.len(), 1);
        assert_eq!(batch.skipped[0].location, "Records[1]");
    }

    #[test]
    fn lookup_events_responses_are_read_from_the_embedded_json() {
        let inner = record("DetachRolePolicy", json!({"roleName": "r"})).to_string();
        let doc = json!({"Events": [{"EventId": "e-1", "CloudTrailEvent": inner}, {"EventId": "e-2", "CloudTrailEvent": "{broken"}]});
        let batch = trail_from_value(&doc, "").expect("lookup response");
        assert_eq!(batch.changes.len(), 1);
        assert!(batch.skipped[0].reason.contains("not valid JSON"));
    }

    #[test]
    fn times_in_every_published_format_parse() {
        for s in [
            "2024-07-31T13:06:24Z",
            "2021-11-18T09:41:02-08:00",
            "2025-01-21 17:39:10.000000000",
            "2019-10-02T17:04:40.989+0000",
            "1453844532.0",
        ] {
            assert!(parse_time(s).is_some(), "{s}");
        }
        // Published with stray spaces (aws-lambda-rust-runtime fixtures); chrono reads them.
        let t = parse_time("2023-08-04T12: 36: 15.490+0000").map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2023-08-04T12:36:15.490+00:00"));
    }
}
