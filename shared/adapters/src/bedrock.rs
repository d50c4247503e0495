//! Bedrock control-plane look-ups as [`BedrockInfo`]: is model invocation logging on and where
//! does the evidence live; what a guardrail's prompt-attack filter is set to.
//!
//! Invariant: only configuration is read, never content: no prompt, completion or blocked
//! message leaves this module (`blockedInputMessaging` and the filter word lists are dropped
//! here). "Not configured" and "configured with no destination" both read as
//! [`InvocationLogging::Off`], because to a responder they mean the same: no record exists.

use aws_sdk_bedrock::operation::get_guardrail::GetGuardrailOutput;
use aws_sdk_bedrock::types::{GuardrailContentFilterType, LoggingConfig};
use vigil_core::ports::{BedrockInfo, GuardrailSummary, InvocationLogging, SourceError};

use crate::config::source_error;

/// Source names used in [`SourceError`] and hence in "context missing" notes.
const LOGGING_SOURCE: &str = "Bedrock GetModelInvocationLoggingConfiguration";
const GUARDRAIL_SOURCE: &str = "Bedrock GetGuardrail";

/// [`BedrockInfo`] over the Bedrock control-plane API.
#[derive(Debug, Clone)]
pub struct BedrockApiInfo {
    client: aws_sdk_bedrock::Client,
}

impl BedrockApiInfo {
    /// Wraps a Bedrock client (built once per process, see [`crate::config::AwsClients`]).
    pub fn new(client: aws_sdk_bedrock::Client) -> Self {
        Self { client }
    }
}

impl BedrockInfo for BedrockApiInfo {
    async fn invocation_logging(&self) -> Result<InvocationLogging, SourceError> {
        let out = self
            .client
            .get_model_invocation_logging_configuration()
            .send()
            .await
            .map_err(|e| source_error(LOGGING_SOURCE, &e))?;
        Ok(logging_from(out.logging_config()))
    }

    async fn guardrail(
        &self,
        id: &str,
        version: Option<&str>,
    ) -> Result<GuardrailSummary, SourceError> {
        // The API takes an id or an ARN; an absent version means the working draft.
        let out = self
            .client
            .get_guardrail()
            .guardrail_identifier(id)
            .set_guardrail_version(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| source_error(GUARDRAIL_SOURCE, &e))?;
        Ok(guardrail_from(&out))
    }
}

/// Reads a logging configuration: an absent one, an empty one (what an unset account
/// returns) and one without a destination are all `Off`.
fn logging_from(config: Option<&LoggingConfig>) -> InvocationLogging {
    let Some(c) = config else {
        return InvocationLogging::Off;
    };
    let cloudwatch_log_group = c
        .cloud_watch_config()
        .map(|cw| cw.log_group_name().trim().to_string())
        .filter(|g| !g.is_empty());
    let s3_bucket = c
        .s3_config()
        .map(|s3| s3.bucket_name().trim().to_string())
        .filter(|b| !b.is_empty());
    if cloudwatch_log_group.is_none() && s3_bucket.is_none() {
        return InvocationLogging::Off;
    }
    let data = [
        ("text", c.text_data_delivery_enabled()),
        ("image", c.image_data_delivery_enabled()),
        ("embedding", c.embedding_data_delivery_enabled()),
        ("video", c.video_data_delivery_enabled()),
        ("audio", c.audio_data_delivery_enabled()),
    ]
    .into_iter()
    .filter(|(_, on)| *on == Some(true))
    .map(|(name, _)| name.to_string())
    .collect();
    InvocationLogging::On {
        cloudwatch_log_group,
        s3_bucket,
        data,
    }
}

/// The responder's view of a guardrail: name, version, status and the prompt-attack filter's
/// input strength (the filter that decides whether an injection gets through).
fn guardrail_from(out: &GetGuardrailOutput) -> GuardrailSummary {
    let prompt_attack_input = out
        .content_policy()
        .and_then(|p| {
            p.filters()
                .iter()
                .find(|f| *f.r#type() == GuardrailContentFilterType::PromptAttack)
        })
        // A filter switched off for input protects nothing there, whatever its strength says.
        .map(|f| {
            if f.input_enabled() == Some(false) {
                "NONE".to_string()
            } else {
                f.input_strength().as_str().to_string()
            }
        });
    GuardrailSummary {
        id: out.guardrail_id().to_string(),
        name: out.name().to_string(),
        version: out.version().to_string(),
        status: Some(out.status().as_str().to_string()).filter(|s| !s.is_empty()),
        prompt_attack_input,
        updated_at: out
            .updated_at()
            .fmt(aws_sdk_bedrock::primitives::DateTimeFormat::DateTime)
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_bedrock::types::{CloudWatchConfig, S3Config};

    #[test]
    fn an_empty_or_destinationless_configuration_is_off() {
        assert_eq!(logging_from(None), InvocationLogging::Off);
        assert_eq!(
            logging_from(Some(&LoggingConfig::builder().build())),
            InvocationLogging::Off
        );
        let no_destination = LoggingConfig::builder()
            .text_data_delivery_enabled(true)
            .build();
        assert_eq!(logging_from(Some(&no_destination)), InvocationLogging::Off);
    }

    #[test]
    fn a_configured_destination_is_named_with_its_data_types() {
        let config = LoggingConfig::builder()
            .cloud_watch_config(
                CloudWatchConfig::builder()
                    .log_group_name("/bedrock/invocations")
                    .role_arn("arn:aws:iam::1:role/x")
                    .build()
                    .expect("complete"),
            )
            .s3_config(
                S3Config::builder()
                    .bucket_name("evidence")
                    .build()
                    .expect("complete"),
            )
            .text_data_delivery_enabled(true)
            .image_data_delivery_enabled(false)
            .build();
        assert_eq!(
            logging_from(Some(&config)),
            InvocationLogging::On {
                cloudwatch_log_group: Some("/bedrock/invocations".into()),
                s3_bucket: Some("evidence".into()),
                data: vec!["text".into()],
            }
        );
    }
}
