//! CloudTrail events of the flood tests, as EventBridge delivers them: denied calls by a few
//! actors, each on a resource of its own, and a `StopLogging` that worked.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const ACCOUNT: &str = "111122223333";

/// The actors of the flood: most calls by `mallory`, some by `eve`, some by an assumed role
/// with a new session name on every call. Three principals, so three groups.
pub const ACTORS: usize = 3;

/// The identity of flood call `i`: `mallory` 7 in 10, `eve` 1 in 10, the `probe` role 2 in 10
/// (with session name `session-{i}`).
pub fn identity(i: usize) -> Value {
    match i % 10 {
        0..=6 => user("mallory"),
        7 => user("eve"),
        _ => json!({
            "type": "AssumedRole",
            "principalId": format!("AROAPROBEEXAMPLE0001:session-{i}"),
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/probe/session-{i}"),
            "accountId": ACCOUNT,
            "accessKeyId": format!("ASIAPROBE{i:011}"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAPROBEEXAMPLE0001",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:role/probe"),
                    "accountId": ACCOUNT,
                    "userName": "probe",
                },
            },
        }),
    }
}

/// An IAM user's identity.
pub fn user(name: &str) -> Value {
    json!({
        "type": "IAMUser",
        "principalId": format!("AIDA{}", name.to_uppercase()),
        "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        "accountId": ACCOUNT,
        "accessKeyId": format!("AKIA{}", name.to_uppercase()),
        "userName": name,
    })
}

/// A CloudTrail record as EventBridge delivers it.
pub fn eventbridge(id: &str, source: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": ACCOUNT,
        "time": detail["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// Denied call `i`: an IAM read or, every seventh call, a denied policy attachment (rated
/// higher), each on a role of its own.
pub fn denied(i: usize, at: DateTime<Utc>) -> Value {
    denied_by(i, identity(i), at)
}

/// Denied call `i` by `who`.
pub fn denied_by(i: usize, who: Value, at: DateTime<Utc>) -> Value {
    let role = format!("flood-role-{i:03}");
    let event_name = match i % 7 {
        0 => "AttachRolePolicy",
        1 | 2 => "GetRolePolicy",
        3 | 4 => "ListAttachedRolePolicies",
        _ => "GetRole",
    };
    eventbridge(
        &format!("flood-{i:04}"),
        "aws.iam",
        json!({
            "eventVersion": "1.08",
            "userIdentity": who,
            "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "iam.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.66",
            "userAgent": "aws-cli/2.15.0",
            "errorCode": "AccessDenied",
            "errorMessage": format!(
                "User: {} is not authorized to perform: iam:{event_name} on resource: role {role}",
                who["arn"].as_str().unwrap_or_default()
            ),
            "requestParameters": { "roleName": role },
            "responseElements": null,
            "requestID": format!("req-{i:04}"),
            "eventID": format!("00000000-0000-4000-8000-{i:012}"),
            "readOnly": event_name != "AttachRolePolicy",
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
        }),
    )
}

/// The `StopLogging` that worked, by a role whose credentials were stolen.
pub fn stop_logging(at: DateTime<Utc>) -> Value {
    eventbridge(
        "flood-stoplogging",
        "aws.cloudtrail",
        json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAOPSEXAMPLE000001:build",
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/ops-admin/build"),
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAOPSEXAMPLE000001",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAOPSEXAMPLE000001",
                        "arn": format!("arn:aws:iam::{ACCOUNT}:role/ops-admin"),
                        "accountId": ACCOUNT,
                        "userName": "ops-admin",
                    },
                },
            },
            "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.66",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": {
                "name": format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"),
            },
            "responseElements": null,
            "requestID": "req-stop",
            "eventID": "00000000-0000-4000-8000-5709106609ff",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
        }),
    )
}
