//! SNS delivery: [`SnsNotifier`] publishes a rendered [`SnsNotification`] with
//! `MessageStructure=json`, its subject and its `String` message attributes (severity, kind,
//! team, ...) so subscription filter policies can route it.
//!
//! Invariant: retries are ours, not the SDK's. The client is built with SDK retries off, so
//! every attempt is counted, bounded by the invocation's `time_left`, and backed off by the
//! shared [`RetryPolicy`]; throttling and 5xx are retryable, everything else is reported at
//! once. Errors carry AWS's code and (masked) message as the shared
//! [`crate::config`] reading of SDK failures words them, never an SDK error's `Debug`.

use std::time::Duration;

use aws_sdk_sns::operation::publish::PublishOutput;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_types::retry::RetryConfig;
use vigil_core::ports::{Delivered, DeliveryError, Notifier, Outgoing};
use vigil_core::render::SnsNotification;

use crate::config::sdk_failure;
use crate::delivery::{Budget, RetryPolicy, cap, channel_label};

/// Longest AWS error message carried into a [`DeliveryError`].
const REASON_CHARS: usize = 300;

/// Publishes [`Outgoing::Sns`] messages.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    policy: RetryPolicy,
}

/// What one `Publish` attempt came to.
enum Attempt {
    Published(PublishOutput),
    Failed { reason: String, retryable: bool },
}

impl SnsNotifier {
    /// A notifier on a client built from `config` with SDK retries disabled (this notifier
    /// retries itself, within the time left).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let conf = aws_sdk_sns::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_sns::Client::from_conf(conf),
            policy: RetryPolicy::default(),
        }
    }

    /// Replaces the retry schedule.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn deliver(
        &self,
        outgoing: &Outgoing,
        time_left: Duration,
    ) -> Result<Delivered, DeliveryError> {
        let label = channel_label(outgoing);
        let Outgoing::Sns { topic_arn, message } = outgoing else {
            return Err(DeliveryError {
                channel: label,
                reason: "the SNS notifier was given a message for another channel".to_owned(),
                retryable: false,
                attempts: 0,
            });
        };
        let attributes = match attributes(message) {
            Ok(a) => a,
            Err(reason) => {
                return Err(DeliveryError {
                    channel: label,
                    reason,
                    retryable: false,
                    attempts: 0,
                });
            }
        };

        let budget = Budget::new(time_left);
        let mut attempts = 0u32;
        let mut last = "no time left to publish".to_owned();
        let fail = |reason: String, retryable: bool, attempts: u32| DeliveryError {
            channel: label.clone(),
            reason,
            retryable,
            attempts,
        };
        loop {
            if attempts >= self.policy.max_attempts {
                return Err(fail(
                    format!("{last}; gave up after {attempts} attempts"),
                    true,
                    attempts,
                ));
            }
            let Some(timeout) = budget.attempt_timeout(&self.policy) else {
                return Err(fail(
                    format!("{last}; no time left for another attempt"),
                    true,
                    attempts,
                ));
            };
            attempts += 1;
            match self.publish(topic_arn, message, &attributes, timeout).await {
                Attempt::Published(out) => {
                    return Ok(Delivered {
                        channel: label,
                        id: out.message_id,
                        fell_back_to_text: false,
                        attempts,
                    });
                }
                Attempt::Failed {
                    reason,
                    retryable: false,
                } => return Err(fail(reason, false, attempts)),
                Attempt::Failed {
                    reason,
                    retryable: true,
                } => match self.policy.backoff(attempts) {
                    Some(wait) if budget.fits(wait, self.policy.margin) => {
                        tracing::warn!(channel = %label, attempt = attempts, wait_ms = wait.as_millis() as u64, reason = %reason, "sns publish failed; backing off");
                        tokio::time::sleep(wait).await;
                        last = reason;
                    }
                    Some(_) => {
                        return Err(fail(
                            format!("{reason}; no time left to back off and retry"),
                            true,
                            attempts,
                        ));
                    }
                    None => return Err(fail(reason, true, attempts)),
                },
            }
        }
    }

    async fn publish(
        &self,
        topic_arn: &str,
        message: &SnsNotification,
        attributes: &[(String, MessageAttributeValue)],
        timeout: Duration,
    ) -> Attempt {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .message_structure("json")
            .message(&message.message);
        // SNS refuses an empty subject; the renderer never produces one, but a hand-built
        // notification might.
        if !message.subject.is_empty() {
            request = request.subject(&message.subject);
        }
        for (name, value) in attributes {
            request = request.message_attributes(name, value.clone());
        }
        match tokio::time::timeout(timeout, request.send()).await {
            Ok(Ok(out)) => Attempt::Published(out),
            Ok(Err(e)) => {
                let f = sdk_failure(&e);
                // KMS throttling of an encrypted topic comes back as HTTP 400, which the
                // shared reading counts as final; it clears like any other throttle.
                let kms_throttled = f.code.as_deref() == Some("KMSThrottlingException");
                Attempt::Failed {
                    reason: cap(&f.message, REASON_CHARS),
                    retryable: f.retryable || kms_throttled,
                }
            }
            Err(_) => Attempt::Failed {
                reason: format!("Publish timed out after {} ms", timeout.as_millis()),
                retryable: true,
            },
        }
    }
}

impl Notifier for SnsNotifier {
    fn name(&self) -> &str {
        "sns"
    }

    fn send(
        &self,
        message: &Outgoing,
        time_left: Duration,
    ) -> impl Future<Output = Result<Delivered, DeliveryError>> + Send {
        self.deliver(message, time_left)
    }
}

/// The notification's attributes as SNS `String` message attributes. Empty values are left
/// out: SNS rejects an attribute without a value, and a filter policy cannot match one anyway.
fn attributes(message: &SnsNotification) -> Result<Vec<(String, MessageAttributeValue)>, String> {
    message
        .attributes
        .iter()
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        .map(|(name, value)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map(|v| (name.clone(), v))
                .map_err(|_| format!("message attribute {name} could not be built"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn empty_attributes_are_left_out() {
        let n = SnsNotification {
            subject: "s".into(),
            message: "{}".into(),
            attributes: BTreeMap::from([
                ("severity".to_owned(), "high".to_owned()),
                ("team".to_owned(), String::new()),
            ]),
        };
        let a = attributes(&n).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, "severity");
        assert_eq!(a[0].1.data_type(), "String");
        assert_eq!(a[0].1.string_value(), Some("high"));
    }
}
