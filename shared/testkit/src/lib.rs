//! Test support: the local AWS (moto with vigil's extension, `localaws/server.py`) and the
//! Slack stand-in (`localaws/slack.py`), each started on a free loopback port per test and
//! stopped when the handle drops. Tests talk to them over real HTTP, as the Lambda would.
//!
//! Needs the repo-local venv (`make venv`, which `make test` and `.ci/run` run first).

// Test support fails loudly on purpose: a missing venv or a dead server is a broken test setup.
#![allow(clippy::expect_used, clippy::panic)]

pub mod lambda;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The account the local AWS answers as; the demo and fixture records use it too.
pub const ACCOUNT_ID: &str = "111122223333";

/// The repository root (this crate lives in `shared/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One running local server.
#[derive(Debug)]
struct Server {
    child: Child,
    url: String,
}

/// Python start-up (importing moto) is CPU-bound: with dozens of tests starting servers at once
/// on two cores, nobody gets READY in time. Starting two at a time keeps each start quick.
/// `tokio::sync` primitives work across the separate runtimes of `#[tokio::test]`s.
static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn spawn(script: &str) -> Server {
    let _turn = STARTING
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv` (creates the repo-local venv from requirements-dev.txt)",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(root.join("localaws").join(script))
        .args(["--port", "0"])
        // moto answers as this account (the demo and fixture records' account).
        .env("MOTO_ACCOUNT_ID", ACCOUNT_ID)
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = line.strip_prefix("READY port=") {
                return p.trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("{script} did not print READY port=N within 120 s"));
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// The local AWS and the Slack stand-in, for one test.
#[derive(Debug)]
pub struct LocalAws {
    aws: Server,
    slack: Server,
    http: reqwest::Client,
}

impl LocalAws {
    /// Start both servers on free loopback ports.
    pub async fn start() -> LocalAws {
        let (aws, slack) = tokio::join!(spawn("server.py"), spawn("slack.py"));
        LocalAws {
            aws,
            slack,
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the local AWS.
    pub fn aws_url(&self) -> &str {
        &self.aws.url
    }

    /// `http://127.0.0.1:PORT` of the Slack stand-in.
    pub fn slack_url(&self) -> &str {
        &self.slack.url
    }

    /// An SDK config pointed at the local AWS, as `AWS_ENDPOINT_URL` would point a Lambda.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            // Plain HTTP to loopback: the workspace builds the SDK without a default client.
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .endpoint_url(self.aws_url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "vigil-testkit",
            ))
            .load()
            .await
    }

    async fn call(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// Seed CloudTrail records (a record, a list, or `{"Records":[...]}`) for LookupEvents.
    pub async fn seed_cloudtrail(&self, records: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            format!("{}/_vigil/cloudtrail/events", self.aws.url),
            Some(records),
        )
        .await
    }

    /// Inject faults or set the LookupEvents rate (see localaws/README.md).
    pub async fn faults(&self, body: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            format!("{}/_vigil/faults", self.aws.url),
            Some(body),
        )
        .await
    }

    /// The local AWS's request log, optionally filtered (`service=cloudtrail&operation=LookupEvents`).
    pub async fn requests(&self, query: &str) -> Vec<Value> {
        let v = self
            .call(
                reqwest::Method::GET,
                format!("{}/_vigil/requests?{query}", self.aws.url),
                None,
            )
            .await;
        v.get("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// What moto holds (SNS messages published, ...): `GET /moto-api/data.json`.
    pub async fn moto_data(&self) -> Value {
        self.call(
            reqwest::Method::GET,
            format!("{}/moto-api/data.json", self.aws.url),
            None,
        )
        .await
    }

    /// Queue Slack responses (`[{"status":429,"retry_after":1}, ...]`), one per request.
    pub async fn slack_script(&self, script: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            format!("{}/_stand-in/script", self.slack.url),
            Some(script),
        )
        .await
    }

    /// Every request the Slack stand-in received.
    pub async fn slack_requests(&self) -> Vec<Value> {
        let v = self
            .call(
                reqwest::Method::GET,
                format!("{}/_stand-in/requests", self.slack.url),
                None,
            )
            .await;
        v.get("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Every SNS notification moto holds, as (topic name, message, subject, message
    /// attributes), from `GET /moto-api/data.json` (each topic's `sent_notifications`).
    pub async fn sns_notifications(&self) -> Vec<(String, String, String, Value)> {
        fn walk(v: &Value, topic: Option<&str>, out: &mut Vec<(String, String, String, Value)>) {
            match v {
                Value::Object(map) => {
                    let here = map
                        .get("arn")
                        .or_else(|| map.get("topic_arn"))
                        .and_then(Value::as_str)
                        .filter(|a| a.starts_with("arn:aws:sns:"))
                        .or(topic);
                    if let Some(Value::Array(sent)) = map.get("sent_notifications") {
                        for n in sent {
                            let field = |i: usize| {
                                n.get(i)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let name = here.and_then(|a| a.rsplit(':').next()).unwrap_or("?");
                            out.push((
                                name.to_owned(),
                                field(1),
                                field(2),
                                n.get(3).cloned().unwrap_or(Value::Null),
                            ));
                        }
                    }
                    for (k, child) in map {
                        if k != "sent_notifications" {
                            walk(child, here, out);
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, topic, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.moto_data().await, None, &mut out);
        out
    }

    /// Forget everything both servers hold (AWS resources, seeded events, faults, request
    /// logs, the Slack script and messages): a fresh stand-in without a restart.
    pub async fn reset(&self) {
        self.call(
            reqwest::Method::POST,
            format!("{}/_vigil/reset", self.aws.url),
            None,
        )
        .await;
        self.call(
            reqwest::Method::POST,
            format!("{}/_stand-in/reset", self.slack.url),
            None,
        )
        .await;
    }

    /// Drop the faults still queued (and the Slack script), keeping everything else.
    pub async fn clear_faults(&self) {
        self.faults(serde_json::json!({"clear": true})).await;
        self.slack_script(serde_json::json!([])).await;
    }

    /// Stop both servers now (dropping the handle does the same).
    pub async fn stop(mut self) {
        let _ = self.aws.child.kill().await;
        let _ = self.slack.child.kill().await;
    }
}
