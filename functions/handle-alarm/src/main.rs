//! The `handle-alarm` Lambda binary: read the configuration once, build the deps once, then
//! answer events until the runtime stops. Everything else is in the library.

use handle_alarm::handler::{TimeLimit, handle_within, serve_cold_start_failure};
use handle_alarm::{Config, deps};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON lines without colour codes: CloudWatch Logs stores bytes, not a terminal.
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
    let deps = match deps::build(&config, &sdk).await {
        Ok(deps) => deps,
        Err(e) => {
            tracing::error!(error = %e, error_type = e.error_type(), "cold start failed");
            return serve_cold_start_failure(e).await;
        }
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let limit = TimeLimit::from_lambda_deadline(event.context.deadline);
        handle_within(event.payload, deps, chrono::Utc::now(), limit).await
    }))
    .await
}
