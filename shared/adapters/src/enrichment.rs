//! Enrichment: one alert -> its [`Context`], from every source at once, within a budget.
//!
//! CloudTrail, Bedrock and CloudWatch are asked concurrently (`tokio::join!`), each under the
//! same time budget, so the slowest source, not the sum of all, bounds the wait; the caller
//! sets the budget to leave time for delivery.
//!
//! Invariant: [`Enricher::enrich`] never fails and returns within its budget (plus the time
//! to assemble the answer). A source that fails or runs out of time becomes a
//! [`MissingContext`] with the reason, and the alert goes out with what the others found.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_core::enrich::{self, Context, MissingContext};
use vigil_core::model::{Alert, AlertBody};
use vigil_core::ports::{
    BedrockInfo, ChangeBatch, ChangeQuery, ChangeSource, MetricInfo, ServiceContext, SourceError,
};

use crate::bedrock::BedrockApiInfo;
use crate::cloudtrail::{CloudTrailChangeSource, CloudTrailConfig, human, lookup_entry};
use crate::cloudwatch::CloudWatchInfo;
use crate::config::AwsClients;

/// The enricher wired to AWS, as the Lambda functions use it.
pub type AwsEnricher = Enricher<CloudTrailChangeSource, BedrockApiInfo, CloudWatchInfo>;

/// Gathers the context of an alert from a change source, Bedrock and CloudWatch.
#[derive(Debug)]
pub struct Enricher<C, B, M> {
    changes: C,
    bedrock: B,
    metrics: M,
}

impl<C, B, M> Enricher<C, B, M>
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
{
    /// An enricher over the given sources (real adapters or test fakes).
    pub fn new(changes: C, bedrock: B, metrics: M) -> Self {
        Self {
            changes,
            bedrock,
            metrics,
        }
    }

    /// The change source (to share its cache or inspect its configuration).
    pub fn change_source(&self) -> &C {
        &self.changes
    }

    /// Everything known about `alert` within `budget`: CloudTrail changes in
    /// `[alert.time - lookback, alert.time]`, Bedrock invocation logging (Bedrock alerts), the
    /// guardrail (alarms naming one), the metric history and the alarm's tags (alarms).
    /// `looked_up_at` is "now" as the caller's clock says (it decides the CloudTrail-lag note).
    pub async fn enrich(
        &self,
        alert: &Alert,
        lookback: chrono::Duration,
        looked_up_at: DateTime<Utc>,
        budget: Duration,
    ) -> Context {
        let window = enrich::window_for(alert.time, lookback);
        let principals = principal_lookups(alert);
        let mut lookups = enrich::sources_for(alert);
        lookups.extend(principals.iter().map(|p| lookup_entry("Username", p)));
        let query = ChangeQuery {
            window,
            event_sources: enrich::sources_for(alert),
            principals,
            budget: inner_budget(budget),
        };

        let alarm = alert.alarm();
        let guardrail = guardrail_of(alert);
        let bedrock_alert = concerns_bedrock(alert);

        let cloudtrail = bounded(budget, self.changes.changes(&query));
        let logging = async {
            if bedrock_alert {
                Some(bounded(budget, self.bedrock.invocation_logging()).await)
            } else {
                None
            }
        };
        let guardrail_summary = async {
            match &guardrail {
                Some((id, version)) => {
                    Some(bounded(budget, self.bedrock.guardrail(id, version.as_deref())).await)
                }
                None => None,
            }
        };
        let history = async {
            match alarm {
                Some(a) if !a.metrics.is_empty() => {
                    Some(bounded(budget, self.metrics.history(a, alert.time)).await)
                }
                _ => None,
            }
        };
        let tags = async {
            match alarm.and_then(|a| a.arn.as_deref()) {
                Some(arn) => Some(bounded(budget, self.metrics.alarm_tags(arn)).await),
                None => None,
            }
        };
        let (cloudtrail, logging, guardrail_summary, history, tags) =
            tokio::join!(cloudtrail, logging, guardrail_summary, history, tags);

        let batch = cloudtrail.unwrap_or_else(|| ChangeBatch {
            missing: vec![MissingContext {
                source: "CloudTrail LookupEvents".to_string(),
                reason: format!(
                    "no answer within the budget of {}; {} not searched",
                    human(&budget),
                    lookups.join(", ")
                ),
            }],
            ..ChangeBatch::default()
        });
        let mut ctx = Context::from_changes(window, looked_up_at, batch.changes, batch.sources);
        ctx.missing = batch.missing;

        let mut service = ServiceContext::default();
        let timed_out = |source: &str| MissingContext {
            source: source.to_string(),
            reason: format!("no answer within the budget of {}", human(&budget)),
        };
        match logging {
            Some(Some(Ok(l))) => service.invocation_logging = Some(l),
            Some(Some(Err(e))) => service.missing.push(missing(e)),
            Some(None) => service
                .missing
                .push(timed_out("Bedrock GetModelInvocationLoggingConfiguration")),
            None => {}
        }
        match guardrail_summary {
            Some(Some(Ok(g))) => service.guardrail = Some(g),
            Some(Some(Err(e))) => service.missing.push(missing(e)),
            Some(None) => service.missing.push(timed_out("Bedrock GetGuardrail")),
            None => {}
        }
        match history {
            Some(Some(Ok(h))) => service.metric = Some(h),
            Some(Some(Err(e))) => service.missing.push(missing(e)),
            Some(None) => service.missing.push(timed_out("CloudWatch GetMetricData")),
            None => {}
        }
        match tags {
            Some(Some(Ok(t))) => service.alarm_tags = t,
            Some(Some(Err(e))) => service.missing.push(missing(e)),
            Some(None) => service
                .missing
                .push(timed_out("CloudWatch ListTagsForResource")),
            None => {}
        }
        ctx.service = service;
        ctx
    }
}

impl AwsEnricher {
    /// The AWS-backed enricher from clients built once per process.
    pub fn from_clients(clients: &AwsClients, cloudtrail: CloudTrailConfig) -> Self {
        Self::new(
            CloudTrailChangeSource::new(&clients.cloudtrail, cloudtrail),
            BedrockApiInfo::new(clients.bedrock.clone()),
            CloudWatchInfo::new(clients.cloudwatch.clone()),
        )
    }
}

/// `None` when `fut` did not finish within `budget`.
async fn bounded<T>(budget: Duration, fut: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(budget, fut).await.ok()
}

/// The budget handed to the change source: a little under the outer one, so it stops on its
/// own and returns what it found before the outer timeout would discard everything.
fn inner_budget(budget: Duration) -> Duration {
    budget.saturating_sub((budget / 10).min(Duration::from_millis(250)))
}

fn missing(e: SourceError) -> MissingContext {
    let reason = if e.retryable {
        format!("{} (may succeed on retry)", e.reason)
    } else {
        e.reason
    };
    MissingContext {
        source: e.source_name,
        reason,
    }
}

/// Principals to look up beyond the event sources: Lambda names its role session after the
/// function, so a `Username` lookup of the function's name finds the function's own calls in whatever service they
/// went to (its denied calls, and through them the role it runs as). Searching by event source
/// alone misses them: a tool function's denied `GetSecretValue` is a Secrets Manager event,
/// not a Lambda one.
fn principal_lookups(alert: &Alert) -> Vec<String> {
    alert
        .alarm()
        .map(|a| {
            let mut out: Vec<String> = Vec::new();
            for m in &a.metrics {
                if let Some(f) = m.dimensions.get("FunctionName").map(|f| f.trim())
                    && !f.is_empty()
                {
                    // A qualified name (`fn:alias`) is not the session name; the function's is.
                    let name = f.split(':').next().unwrap_or(f);
                    if !out.iter().any(|o| o == name) {
                        out.push(name.to_string());
                    }
                }
            }
            out
        })
        .unwrap_or_default()
}

/// Whether invocation logging matters: an alarm on a Bedrock namespace or a Bedrock API call.
fn concerns_bedrock(alert: &Alert) -> bool {
    match &alert.body {
        AlertBody::Alarm(a) => a
            .metrics
            .iter()
            .filter_map(|m| m.namespace.as_deref())
            .any(|ns| ns.starts_with("AWS/Bedrock")),
        AlertBody::ApiCall(c) => c.event_source == "bedrock.amazonaws.com",
        AlertBody::Config(_) => false,
    }
}

/// The guardrail an alert names (id or ARN) and the version, if any: an alarm's
/// `GuardrailArn`/`GuardrailId` and `GuardrailVersion` dimensions, or a Bedrock call's
/// `guardrailIdentifier` parameter.
fn guardrail_of(alert: &Alert) -> Option<(String, Option<String>)> {
    match &alert.body {
        AlertBody::Alarm(a) => {
            let dims = a.dimensions();
            let id = dims
                .get("GuardrailArn")
                .or_else(|| dims.get("GuardrailId"))?
                .trim();
            (!id.is_empty()).then(|| {
                let version = dims
                    .get("GuardrailVersion")
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty());
                (id.to_string(), version)
            })
        }
        AlertBody::ApiCall(c) if c.event_source == "bedrock.amazonaws.com" => {
            let id = c.request.get("guardrailIdentifier")?.as_str()?.trim();
            (!id.is_empty()).then(|| (id.to_string(), None))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm_alert(namespace: &str, dims: &[(&str, &str)]) -> Alert {
        let dims = dims
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let event = format!(
            r#"{{"source":"aws.cloudwatch","alarmArn":"arn:aws:cloudwatch:us-east-1:111122223333:alarm:a",
            "accountId":"111122223333","time":"2026-11-20T09:14:05.123+0000","region":"us-east-1",
            "alarmData":{{"alarmName":"a","state":{{"value":"ALARM","reason":"r","timestamp":"2026-11-20T09:14:05.123+0000"}},
            "configuration":{{"metrics":[{{"id":"m","metricStat":{{"metric":{{"namespace":"{namespace}","name":"M",
            "dimensions":{{{dims}}}}},"period":60,"stat":"Sum"}},"returnData":true}}]}}}}}}"#
        );
        vigil_core::intake::parse(event.as_bytes())
            .expect("an alarm")
            .remove(0)
    }

    #[test]
    fn lambda_alarms_also_look_up_the_functions_own_calls() {
        let a = alarm_alert("AWS/Lambda", &[("FunctionName", "tool:live")]);
        assert_eq!(principal_lookups(&a), vec!["tool".to_string()]);
        assert!(principal_lookups(&alarm_alert("AWS/Bedrock", &[("ModelId", "m")])).is_empty());
    }

    #[test]
    fn bedrock_namespaces_ask_for_logging_and_guardrail_dimensions_for_the_guardrail() {
        let g = alarm_alert(
            "AWS/Bedrock/Guardrails",
            &[
                ("GuardrailArn", "arn:aws:bedrock:us-east-1:1:guardrail/abc"),
                ("GuardrailVersion", "3"),
            ],
        );
        assert!(concerns_bedrock(&g));
        assert_eq!(
            guardrail_of(&g),
            Some((
                "arn:aws:bedrock:us-east-1:1:guardrail/abc".to_string(),
                Some("3".to_string())
            ))
        );
        let l = alarm_alert("AWS/Lambda", &[("FunctionName", "f")]);
        assert!(!concerns_bedrock(&l));
        assert_eq!(guardrail_of(&l), None);
    }

    #[test]
    fn the_change_source_gets_a_little_less_than_the_whole_budget() {
        assert_eq!(
            inner_budget(Duration::from_secs(3)),
            Duration::from_millis(2750)
        );
        assert_eq!(
            inner_budget(Duration::from_secs(1)),
            Duration::from_millis(900)
        );
        assert_eq!(inner_budget(Duration::ZERO), Duration::ZERO);
    }
}
