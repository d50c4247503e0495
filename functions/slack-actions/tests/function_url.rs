//! slack-actions as Lambda runs it: the built binary under `cargo lambda watch`, reached
//! through the Function URL path watch serves (`/lambda-url/slack-actions/`), which turns the
//! HTTP request into a Function URL event exactly as Lambda does. A signed Acknowledge works
//! once; the same request again, an unsigned one and a tampered one get 401.
//!
//! Needs the binaries: `cargo build --workspace --all-targets --locked` first.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::*;
use vigil_testkit::LocalAws;
use vigil_testkit::lambda::LambdaRuntime;

#[tokio::test]
async fn a_signed_click_through_the_function_url_works_once() {
    let aws = LocalAws::start().await;
    prepare(&aws).await;
    let signing = format!("secretsmanager:{SECRET_NAME}");
    let api_base = format!("{}/api", aws.slack_url());
    let rt = LambdaRuntime::start(&[
        ("AWS_ENDPOINT_URL", aws.aws_url()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("VIGIL_SLACK_SIGNING_SECRET", &signing),
        ("VIGIL_TABLE_NAME", TABLE),
        ("VIGIL_SLACK_API_BASE", &api_base),
        ("RUST_LOG", "info"),
    ])
    .await;

    let response_url = format!("{}/actions/T0001/1/abc", aws.slack_url());
    let body = click_body("vigil_ack", &button_value(None), &response_url);
    let (ts, sig) = signed(SIGNING_SECRET, chrono::Utc::now().timestamp(), &body);
    let form = ("content-type", "application/x-www-form-urlencoded");
    let signed_headers = [
        form,
        ("x-slack-request-timestamp", ts.as_str()),
        ("x-slack-signature", sig.as_str()),
    ];

    let before = keys(&aws).await;
    let (status, _) = rt
        .post_function_url("slack-actions", "/", &[form], &body)
        .await;
    assert_eq!(status, 401, "unsigned");
    let tampered = body.replace("U024BE7LH", "U0ATTACKER");
    let (status, _) = rt
        .post_function_url("slack-actions", "/", &signed_headers, &tampered)
        .await;
    assert_eq!(status, 401, "tampered");
    assert_eq!(keys(&aws).await, before);

    let (status, text) = rt
        .post_function_url("slack-actions", "/", &signed_headers, &body)
        .await;
    assert_eq!(status, 200, "{text}\n{}", rt.log_tail(40));
    assert_eq!(ledger_keys(&aws).await.len(), 1);
    let posts: Vec<_> = aws
        .slack_requests()
        .await
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/actions/"))
        })
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["json"]["replace_original"], true);

    let (status, _) = rt
        .post_function_url("slack-actions", "/", &signed_headers, &body)
        .await;
    assert_eq!(status, 401, "replay");
    assert_eq!(ledger_keys(&aws).await.len(), 1);
    rt.stop().await;
}
