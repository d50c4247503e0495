//! The `slack-actions` Lambda binary: read the configuration once, build the deps once, then
//! answer Function URL requests until the runtime stops. Everything else is in the library.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use handle_alarm::handler::serve_cold_start_failure;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use slack_actions::{Config, build, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return serve_cold_start_failure(e.into()).await;
        }
    };
    let sdk = handle_alarm::deps::sdk_config().await;
    let deps = match build(&config, &sdk).await {
        Ok(deps) => deps,
        Err(e) => {
            tracing::error!(error = %e, error_type = e.error_type(), "cold start failed");
            return serve_cold_start_failure(e).await;
        }
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            let answer = handle(&event.payload, deps, chrono::Utc::now()).await;
            Ok::<LambdaFunctionUrlResponse, Diagnostic>(answer.into_response())
        },
    ))
    .await
}
