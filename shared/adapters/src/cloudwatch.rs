//! CloudWatch look-ups as [`MetricInfo`]: the alarm's metric over the hours before it fired
//! (current value against its baseline) and the alarm's tags (for routing).
//!
//! Invariant: the history ends at the alarm's time, never at "now" (a late enrichment must
//! not mix in what happened after the alarm), and no history is invented: a metric with no
//! datapoints is an error ("no datapoints", not retryable) that enrichment reports as missing
//! context, rather than an empty series that would read as "the metric was flat".

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use chrono::{DateTime, Utc};
use vigil_core::model::{Alarm, MetricRef};
use vigil_core::ports::{MetricHistory, MetricInfo, SourceError};

use crate::config::source_error;

const HISTORY_SOURCE: &str = "CloudWatch GetMetricData";
const TAGS_SOURCE: &str = "CloudWatch ListTagsForResource";

/// Hours of history shown for the usual one-minute to five-minute periods.
pub const HISTORY_HOURS: u32 = 3;

/// The most recent points left out of the baseline: they are the spike being explained.
const RECENT_POINTS: usize = 3;

/// Pages of `GetMetricData` read at most (3 h of one-minute points fit in one).
const MAX_PAGES: usize = 3;

/// [`MetricInfo`] over the CloudWatch API.
#[derive(Debug, Clone)]
pub struct CloudWatchInfo {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchInfo {
    /// Wraps a CloudWatch client (built once per process, see [`crate::config::AwsClients`]).
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

/// The statistic as `GetMetricData` names it. Alarm notifications sent through SNS spell
/// the standard statistics `SUM`, `AVERAGE`, `SAMPLE_COUNT`, ...; `GetMetricData` wants `Sum`,
/// `Average`, `SampleCount` (extended statistics such as `p99` pass as they are).
fn statistic(stat: Option<&str>) -> &str {
    match stat {
        None => "Average",
        Some(s) => match s.to_ascii_uppercase().replace('_', "").as_str() {
            "SUM" => "Sum",
            "AVERAGE" => "Average",
            "MINIMUM" => "Minimum",
            "MAXIMUM" => "Maximum",
            "SAMPLECOUNT" => "SampleCount",
            _ => s,
        },
    }
}

/// The period to chart: the alarm's own, at least a minute (high-resolution periods would
/// return thousands of points for three hours), in whole minutes as `GetMetricData` requires.
fn chart_period(metric: &MetricRef) -> i32 {
    let secs = metric.period.unwrap_or(60).clamp(60, 86_400);
    let minutes = secs.div_ceil(60);
    i32::try_from(minutes * 60).unwrap_or(86_400)
}

/// Three hours, or twelve periods when the period is long (a one-hour alarm needs more than
/// three points to have a baseline).
fn history_hours(period: i32) -> u32 {
    let twelve_periods = u32::try_from(period)
        .unwrap_or(0)
        .saturating_mul(12)
        .div_ceil(3600);
    HISTORY_HOURS.max(twelve_periods)
}

/// `AWS/Lambda Errors (FunctionName=x)`.
fn describe(metric: &MetricRef) -> String {
    let dims = metric
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ns = metric.namespace.as_deref().unwrap_or("?");
    if dims.is_empty() {
        format!("{ns} {}", metric.name)
    } else {
        format!("{ns} {} ({dims})", metric.name)
    }
}

/// Median of finite values; `None` for none.
fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid.checked_sub(1)?)? + v.get(mid)?) / 2.0)
    }
}

/// Points (oldest first) -> history: the last point is "now"; the baseline is the median of
/// all but the last few, and only when at least one point remains for it.
fn history_from(points: Vec<f64>, hours: u32) -> MetricHistory {
    let baseline = if points.len() > RECENT_POINTS {
        median(points.get(..points.len() - RECENT_POINTS).unwrap_or(&[]))
    } else {
        None
    };
    MetricHistory {
        current: points.last().copied(),
        baseline,
        points,
        hours,
    }
}

impl MetricInfo for CloudWatchInfo {
    async fn history(
        &self,
        alarm: &Alarm,
        end: DateTime<Utc>,
    ) -> Result<MetricHistory, SourceError> {
        // Metric math and composite alarms: chart the first metric that names a namespace.
        let Some(metric) = alarm.metrics.iter().find(|m| m.namespace.is_some()) else {
            return Err(SourceError {
                source_name: HISTORY_SOURCE.to_string(),
                reason: "the alarm names no metric to chart (composite or expression-only)"
                    .to_string(),
                retryable: false,
            });
        };
        let period = chart_period(metric);
        let hours = history_hours(period);
        let start = end - chrono::Duration::hours(i64::from(hours));
        let dimensions = metric
            .dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect::<Vec<_>>();
        let query = MetricDataQuery::builder()
            .id("m0")
            .return_data(true)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .set_namespace(metric.namespace.clone())
                            .metric_name(&metric.name)
                            .set_dimensions(Some(dimensions))
                            .build(),
                    )
                    .period(period)
                    .stat(statistic(metric.stat.as_deref()))
                    .build(),
            )
            .build();
        let mut stamped: Vec<(i64, f64)> = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .get_metric_data()
                .metric_data_queries(query.clone())
                .start_time(AwsDateTime::from_secs(start.timestamp()))
                .end_time(AwsDateTime::from_secs(end.timestamp()))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| source_error(HISTORY_SOURCE, &e))?;
            for result in out.metric_data_results() {
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    stamped.push((t.secs(), *v));
                }
            }
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if stamped.is_empty() {
            return Err(SourceError {
                source_name: HISTORY_SOURCE.to_string(),
                reason: format!(
                    "no datapoints for {} in the {hours} h before the alarm",
                    describe(metric)
                ),
                retryable: false,
            });
        }
        // Ascending was asked for; sorting again costs nothing and survives a service that ignores it.
        stamped.sort_by_key(|(t, _)| *t);
        Ok(history_from(
            stamped.into_iter().map(|(_, v)| v).collect(),
            hours,
        ))
    }

    async fn alarm_tags(&self, alarm_arn: &str) -> Result<BTreeMap<String, String>, SourceError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(alarm_arn)
            .send()
            .await
            .map_err(|e| source_error(TAGS_SOURCE, &e))?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(period: Option<u64>) -> MetricRef {
        MetricRef {
            namespace: Some("AWS/Lambda".into()),
            name: "Errors".into(),
            dimensions: BTreeMap::from([("FunctionName".into(), "f".into())]),
            stat: Some("Sum".into()),
            period,
        }
    }

    #[test]
    fn the_baseline_leaves_out_the_last_three_points() {
        let h = history_from(vec![1.0, 3.0, 2.0, 50.0, 60.0, 70.0], 3);
        assert_eq!(h.current, Some(70.0));
        assert_eq!(h.baseline, Some(2.0));
        let short = history_from(vec![1.0, 2.0, 3.0], 3);
        assert_eq!(short.baseline, None);
        assert_eq!(short.current, Some(3.0));
        assert_eq!(
            history_from(vec![4.0, 1.0, 1.0, 1.0], 3).baseline,
            Some(4.0)
        );
    }

    #[test]
    fn medians_of_even_counts_average_the_middle_pair() {
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn sns_spellings_of_statistics_become_get_metric_data_names() {
        assert_eq!(statistic(Some("SUM")), "Sum");
        assert_eq!(statistic(Some("SAMPLE_COUNT")), "SampleCount");
        assert_eq!(statistic(Some("Maximum")), "Maximum");
        assert_eq!(statistic(Some("p99")), "p99");
        assert_eq!(statistic(None), "Average");
    }

    #[test]
    fn periods_are_whole_minutes_and_long_periods_widen_the_history() {
        assert_eq!(chart_period(&metric(Some(10))), 60);
        assert_eq!(chart_period(&metric(Some(90))), 120);
        assert_eq!(chart_period(&metric(None)), 60);
        assert_eq!(history_hours(60), 3);
        assert_eq!(history_hours(300), 3);
        assert_eq!(history_hours(3600), 12);
        assert_eq!(
            describe(&metric(None)),
            "AWS/Lambda Errors (FunctionName=f)"
        );
    }
}
