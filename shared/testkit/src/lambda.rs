//! vigil's Lambda functions run locally the way Lambda runs them. `cargo lambda watch` (from
//! the pinned `cargo-lambda` in the repo-local venv) serves the Lambda Invoke API
//! (`POST /2015-03-31/functions/NAME/invocations`) and the Runtime API the functions poll
//! (`/.rt/NAME/2018-06-01/runtime/invocation/next`, ...). Each function binary
//! (`target/debug/handle-alarm`, `target/debug/handle-event`) is started by this harness on its
//! first invocation, as Lambda starts an execution environment: the first invocation's
//! duration includes the cold start (process start, configuration, clients, secrets).
//!
//! Why `watch --only-lambda-apis` and not `watch` starting the functions itself: `watch`
//! starts a function with `cargo run --bin NAME`, which resolves features for that one package
//! instead of the workspace, so after `cargo test --workspace` it recompiles `vigil-core`,
//! `vigil-adapters` and the function (measured: 45-60 s per function on two cores) inside the
//! first invocation, and then overwrites the binary the workspace build made. Starting the
//! built binary directly tests exactly what `cargo test --workspace` produced, with no cargo
//! inside the test, and the harness owns the processes (nothing outlives the test).
//!
//! `watch` 1.9.2 sends a constant `Lambda-Runtime-Deadline-Ms: 600000` with every event (a
//! duration, where Lambda sends the deadline as epoch milliseconds), which reads as a deadline
//! in 1970. The functions therefore reach the Runtime API through a small loopback relay that
//! rewrites that header to a real deadline, now + [`FUNCTION_TIMEOUT`], as Lambda would.
//!
//! The functions get exactly the environment the test passes plus what Lambda sets
//! (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_RUNTIME_API`, ...): nothing is inherited from the
//! calling shell, so a developer's AWS profile or endpoint cannot leak into a test.
//!
//! For whole-process measurements (`make bench-process`) the harness also notes when each
//! binary was spawned and when the relay saw each of its `next` polls (its start-up is the time
//! between the two), exposes the process ids, and can run the binaries of another profile
//! ([`LambdaRuntime::start_with_binaries`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The repository root, without `..` (for readable messages).
fn repo_root() -> PathBuf {
    let root = crate::repo_root();
    root.canonicalize().unwrap_or(root)
}

/// The function binaries (`functions/*`).
pub const FUNCTIONS: [&str; 3] = ["handle-alarm", "handle-event", "slack-actions"];
/// The shared source folders the binaries are built from (besides `functions/NAME/src`).
const SOURCES: [&str; 2] = ["shared/core/src", "shared/adapters/src"];

/// The memory size the functions are told they have (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), as
/// `template.yaml` configures them.
pub const MEMORY_MB: u32 = 256;

/// The functions' Lambda timeout (`template.yaml`): their deadline is this long after an event
/// is handed over.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `watch` may take to answer HTTP (on two busy cores, while tests start Python).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// An invocation, cold start included. Generous: debug builds on two busy cores.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// One invocation's outcome, as the Lambda Invoke API reports it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function invoked.
    pub function: String,
    /// The HTTP status of the invoke response (`cargo lambda watch` answers 200 for a result,
    /// 500 for a handler error, with no `X-Amz-Function-Error` header).
    pub status: u16,
    /// The response body: the handler's result, or `{"errorType", "errorMessage"}`.
    pub body: Value,
    /// `errorType` of a handler error (`Refused`, `DeliveryFailed`, `Config`, `Internal`), from
    /// the body (or an `X-Amz-Function-Error` header); `None` on success.
    pub error_type: Option<String>,
    /// Wall time from sending the request to reading the whole response.
    pub duration: Duration,
    /// The function's first invocation: `duration` includes its cold start.
    pub cold: bool,
}

impl Invocation {
    /// The handler returned a result (not an error).
    pub fn is_ok(&self) -> bool {
        self.error_type.is_none() && (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
struct Function {
    child: Child,
    log: PathBuf,
    /// Just before the binary was spawned.
    spawned: Instant,
}

/// When the relay saw each `next` poll, by function name (a respawned function adds to its
/// name's list).
type Polls = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// `cargo lambda watch` on a free loopback port, and the functions it serves.
#[derive(Debug)]
pub struct LambdaRuntime {
    watch: Child,
    url: String,
    /// `http://127.0.0.1:PORT` of the deadline relay in front of watch's Runtime API.
    runtime_api: String,
    relay: tokio::task::JoinHandle<()>,
    polls: Polls,
    log: PathBuf,
    envs: Vec<(String, String)>,
    /// The folder of the function binaries run (`target/debug` unless started otherwise).
    binaries: PathBuf,
    http: reqwest::Client,
    functions: tokio::sync::Mutex<HashMap<String, Function>>,
    history: Mutex<Vec<Invocation>>,
}

/// `.venv/bin/cargo-lambda`, or a panic that says how to get it.
pub fn cargo_lambda_path() -> PathBuf {
    let path = repo_root().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} is missing: run `make venv` (installs the pinned cargo-lambda from requirements-dev.txt)",
        path.display()
    );
    path
}

/// Cargo's target folder (`CARGO_TARGET_DIR`, default `target` in the repository root).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `target/debug/NAME`.
pub fn function_binary(function: &str) -> PathBuf {
    target_dir().join("debug").join(function)
}

fn newest_mtime(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        // Editor files and test snapshots are not compiled in.
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.contains(".snap") {
            continue;
        }
        let found = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        if let Some((t, p)) = found
            && newest.as_ref().is_none_or(|(n, _)| t > *n)
        {
            newest = Some((t, p));
        }
    }
    newest
}

/// Panics, naming the command to run, unless every function binary exists and is newer than
/// the sources it is built from (a changed source the binary does not contain would make the
/// test pass or fail on old code).
pub fn assert_functions_built() {
    assert_built_in(
        &target_dir().join("debug"),
        "run `cargo test --workspace --locked` (`make test`) or `make build-dev` \
         before the end-to-end tests alone: they run the built binaries",
    );
}

fn assert_built_in(binaries: &Path, build: &str) {
    let root = repo_root();
    for function in FUNCTIONS {
        let binary = binaries.join(function);
        let built = std::fs::metadata(&binary)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| panic!("{} is missing: {build}", binary.display()));
        let own = format!("functions/{function}/src");
        for dir in SOURCES.iter().copied().chain([own.as_str()]) {
            if let Some((changed, path)) = newest_mtime(&root.join(dir))
                && changed > built
            {
                panic!(
                    "{} is older than {}: {build}",
                    binary.display(),
                    path.display()
                );
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all.get(all.len().saturating_sub(lines)..)
        .unwrap_or_default()
        .join("\n")
}

fn log_files(path: &Path) -> (File, File) {
    let out = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (out, err)
}

impl LambdaRuntime {
    /// Start `cargo lambda watch --only-lambda-apis` in the repository root and wait until it
    /// answers HTTP. `envs` is the functions' whole environment besides what Lambda sets
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, `VIGIL_*`, `RUST_LOG`); each function
    /// starts on its first invocation.
    pub async fn start(envs: &[(&str, &str)]) -> LambdaRuntime {
        assert_functions_built();
        Self::start_checked(envs, target_dir().join("debug")).await
    }

    /// [`LambdaRuntime::start`] running the function binaries in `binaries` (e.g.
    /// `target/release`), which must be newer than their sources.
    pub async fn start_with_binaries(envs: &[(&str, &str)], binaries: &Path) -> LambdaRuntime {
        assert_built_in(
            binaries,
            "build them first (`make bench-process` builds the debug and the release binaries)",
        );
        Self::start_checked(envs, binaries.to_path_buf()).await
    }

    async fn start_checked(envs: &[(&str, &str)], binaries: PathBuf) -> LambdaRuntime {
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut last_log = PathBuf::new();
        // A port picked free can be taken before watch binds it: try a few.
        for _ in 0..3 {
            match Self::try_start(&envs, &binaries).await {
                Ok(rt) => return rt,
                Err(log) => last_log = log,
            }
        }
        panic!(
            "cargo lambda watch did not start; its output ({}):\n{}",
            last_log.display(),
            tail(&last_log, 40)
        );
    }

    async fn try_start(
        envs: &[(String, String)],
        binaries: &Path,
    ) -> Result<LambdaRuntime, PathBuf> {
        let root = repo_root();
        let cargo_lambda = cargo_lambda_path();
        let port = free_port();
        let dir = target_dir().join("e2e");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let log = dir.join(format!("{port}-cargo-lambda-watch.log"));
        let (out, err) = log_files(&log);

        let mut watch = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .args(["--timeout", &INVOKE_TIMEOUT.as_secs().to_string()])
            .env("NO_COLOR", "1")
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", cargo_lambda.display()));

        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}"));
        // Ready when it answers HTTP: a GET on the invoke route is answered 405 by its router,
        // without queueing anything.
        let probe = format!("{url}/2015-03-31/functions/{}/invocations", FUNCTIONS[0]);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = watch.try_wait() {
                eprintln!("cargo lambda watch exited ({status}) before answering on {url}");
                return Err(log);
            }
            let answered = http
                .get(&probe)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok();
            if answered {
                break;
            }
            if Instant::now() > deadline {
                let _ = watch.kill().await;
                panic!(
                    "cargo lambda watch did not answer on {url} within {START_TIMEOUT:?}; its output ({}):\n{}",
                    log.display(),
                    tail(&log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let relay_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the Runtime API relay: {e}"));
        let relay_port = relay_listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relay address: {e}"))
            .port();
        let polls = Polls::default();
        let relay = tokio::spawn(relay_runtime_api(relay_listener, port, polls.clone()));
        Ok(LambdaRuntime {
            watch,
            url,
            runtime_api: format!("http://127.0.0.1:{relay_port}"),
            relay,
            polls,
            log,
            envs: envs.to_vec(),
            binaries: binaries.to_path_buf(),
            http,
            functions: tokio::sync::Mutex::new(HashMap::new()),
            history: Mutex::new(Vec::new()),
        })
    }

    /// `http://127.0.0.1:PORT`: the Invoke API.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last `lines` lines of watch's output and of each started function's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = format!("--- {} ---\n{}", self.log.display(), tail(&self.log, lines));
        let dir = self.log.parent().map(Path::to_path_buf).unwrap_or_default();
        let port = self.url.rsplit(':').next().unwrap_or_default();
        for f in FUNCTIONS {
            let path = dir.join(format!("{port}-{f}.log"));
            if path.exists() {
                out.push_str(&format!(
                    "\n--- {} ---\n{}",
                    path.display(),
                    tail(&path, lines)
                ));
            }
        }
        out
    }

    fn spawn_function(&self, function: &str) -> Function {
        assert!(
            FUNCTIONS.contains(&function),
            "{function} is not one of vigil's functions {FUNCTIONS:?}"
        );
        let binary = self.binaries.join(function);
        let port = self.url.rsplit(':').next().unwrap_or_default();
        let log = self
            .log
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
            .join(format!("{port}-{function}.log"));
        let (out, err) = log_files(&log);
        let spawned = Instant::now();
        let child = Command::new(&binary)
            .env_clear()
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // What Lambda (and `watch`, for the functions it starts) sets.
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string())
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("{}/.rt/{function}", self.runtime_api),
            )
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Function {
            child,
            log,
            spawned,
        }
    }

    /// Starts `function` now (it must not be running), without invoking it, and waits until it
    /// asks for its first event. Returns its start-up: from just before the spawn to the
    /// relay seeing that `next` poll. Panics if it exits first.
    pub async fn start_function(&self, function: &str) -> Duration {
        let mut functions = self.functions.lock().await;
        assert!(
            !functions.contains_key(function),
            "{function} is already running"
        );
        let f = self.spawn_function(function);
        let deadline = f.spawned + START_TIMEOUT;
        let f = functions.entry(function.to_owned()).or_insert(f);
        loop {
            if let Some(startup) = self.first_poll_after(function, f.spawned) {
                return startup;
            }
            if let Ok(Some(exit)) = f.child.try_wait() {
                panic!(
                    "{function} exited ({exit}) before asking for an event:\n{}",
                    tail(&f.log, 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{function} did not ask for an event within {START_TIMEOUT:?}:\n{}",
                tail(&f.log, 40)
            );
            // The relay timestamps the poll itself: this loop only has to notice it.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn first_poll_after(&self, function: &str, spawned: Instant) -> Option<Duration> {
        let polls = self.polls.lock().ok()?;
        polls
            .get(function)?
            .iter()
            .find(|at| **at >= spawned)
            .map(|at| at.duration_since(spawned))
    }

    /// The running `function`'s start-up (spawn to its first `next` poll), once it has polled.
    pub async fn startup(&self, function: &str) -> Option<Duration> {
        let spawned = self.functions.lock().await.get(function)?.spawned;
        self.first_poll_after(function, spawned)
    }

    /// The process id of the running `function`, if it has been started.
    pub async fn pid(&self, function: &str) -> Option<u32> {
        self.functions.lock().await.get(function)?.child.id()
    }

    /// Stops `function`'s process (its log is removed). Watch may still hold the poll the
    /// process had pending, so start-ups are measured on a runtime that is not invoked after.
    pub async fn stop_function(&self, function: &str) {
        if let Some(mut f) = self.functions.lock().await.remove(function) {
            let _ = f.child.kill().await;
            let _ = std::fs::remove_file(&f.log);
        }
    }

    /// POSTs `body` with `headers` to `function`'s Function URL as `watch` serves it,
    /// `/lambda-url/NAME/PATH`: watch turns the HTTP request into a Function URL event and the
    /// function's `LambdaFunctionUrlResponse` into the HTTP response. Returns its status and
    /// body. Starts the function on first use; panics if it exits meanwhile.
    pub async fn post_function_url(
        &self,
        function: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut functions = self.functions.lock().await;
        if !functions.contains_key(function) {
            let f = self.spawn_function(function);
            functions.insert(function.to_owned(), f);
        }
        let f = functions
            .get_mut(function)
            .expect("the function was started above");
        let url = format!("{}/lambda-url/{function}{path}", self.url);
        let mut request = self
            .http
            .post(&url)
            .body(body.to_owned())
            .timeout(INVOKE_TIMEOUT);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let send = async {
            let resp = request.send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        };
        let answer = tokio::select! {
            r = send => r,
            exited = f.child.wait() => panic!(
                "{function} exited ({}) during a Function URL request:\n{}",
                exited.map(|s| s.to_string()).unwrap_or_default(),
                tail(&f.log, 40)
            ),
        };
        answer.unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.log_tail(40)))
    }

    /// Invoke `function` with `payload` (RequestResponse) and wait for its answer. Panics if the
    /// function process exits meanwhile (a crash or a failed cold start), with its log.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Invocation {
        let mut functions = self.functions.lock().await;
        let cold = !functions.contains_key(function);
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.url);
        let started = Instant::now();
        if cold {
            let f = self.spawn_function(function);
            functions.insert(function.to_owned(), f);
        }
        let f = functions
            .get_mut(function)
            .expect("the function was started above");
        let request = async {
            let resp = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(payload.to_string())
                .timeout(INVOKE_TIMEOUT)
                .send()
                .await?;
            let status = resp.status().as_u16();
            let header = resp
                .headers()
                .get("x-amz-function-error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, header, text))
        };
        let outcome: Result<_, ExitStatus> = tokio::select! {
            r = request => Ok(r),
            exited = f.child.wait() => Err(exited.unwrap_or_else(|e| panic!("waiting for {function}: {e}"))),
        };
        let (status, header_error, text) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => panic!(
                "invoking {function}: {e} after {:?}\n{}",
                started.elapsed(),
                self.log_tail(40)
            ),
            Err(exit) => panic!(
                "{function} exited ({exit}) during an invocation (log {}):\n{}",
                f.log.display(),
                self.log_tail(40)
            ),
        };
        let duration = started.elapsed();
        drop(functions);

        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let body_error = body
            .get("errorType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let error_type = (header_error.is_some() || !(200..300).contains(&status)).then(|| {
            body_error
                .or(header_error)
                .unwrap_or_else(|| format!("HTTP {status}"))
        });
        let invocation = Invocation {
            function: function.to_owned(),
            status,
            body,
            error_type,
            duration,
            cold,
        };
        if let Ok(mut h) = self.history.lock() {
            h.push(invocation.clone());
        }
        invocation
    }

    /// Bytes `function` has logged so far (stdout and stderr: what CloudWatch Logs would
    /// ingest), or 0 if it has not started.
    pub fn log_bytes(&self, function: &str) -> u64 {
        let port = self.url.rsplit(':').next().unwrap_or_default();
        self.log
            .parent()
            .map(|d| d.join(format!("{port}-{function}.log")))
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Every invocation so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Whether `function`'s process is still the one that served its first invocation (it has
    /// not exited).
    pub async fn is_running(&self, function: &str) -> bool {
        let mut functions = self.functions.lock().await;
        functions
            .get_mut(function)
            .is_some_and(|f| matches!(f.child.try_wait(), Ok(None)))
    }

    /// Stop the functions and watch now (dropping the handle does the same).
    pub async fn stop(mut self) {
        for f in self.functions.get_mut().values_mut() {
            let _ = f.child.kill().await;
        }
        let _ = self.watch.kill().await;
        self.relay.abort();
    }
}

impl Drop for LambdaRuntime {
    fn drop(&mut self) {
        // The processes go with their `Child` handles (`kill_on_drop`); the relay with this.
        self.relay.abort();
        // Logs are kept for a failed test (dropped while panicking), removed otherwise.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
            for f in self.functions.get_mut().values() {
                let _ = std::fs::remove_file(&f.log);
            }
        }
    }
}

/// The header Lambda's Runtime API sets to the invocation's deadline (epoch milliseconds).
const DEADLINE_HEADER: &[u8] = b"\nlambda-runtime-deadline-ms:";

/// Relays the functions' Runtime API connections to watch on `upstream`, rewriting every
/// `Lambda-Runtime-Deadline-Ms` header watch sends to now + [`FUNCTION_TIMEOUT`].
async fn relay_runtime_api(listener: TcpListener, upstream: u16, polls: Polls) {
    while let Ok((client, _)) = listener.accept().await {
        let polls = polls.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let up = async {
                let _ = copy_noting_polls(&mut client_read, &mut server_write, &polls).await;
                let _ = server_write.shutdown().await;
            };
            let down = async {
                let _ = copy_rewriting_deadline(&mut server_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Where a function's `next` poll goes after `/.rt/NAME` (`AWS_LAMBDA_RUNTIME_API`'s path).
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// Copies a function's requests to watch, noting when each `next` poll arrives.
async fn copy_noting_polls<R, W>(from: &mut R, to: &mut W, polls: &Polls) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = from.read(&mut buf).await?;
        let at = Instant::now();
        if read == 0 {
            return to.flush().await;
        }
        let chunk = buf.get(..read).unwrap_or_default();
        let polled = polled_functions(chunk);
        if !polled.is_empty()
            && let Ok(mut polls) = polls.lock()
        {
            for name in polled {
                polls.entry(name).or_default().push(at);
            }
        }
        to.write_all(chunk).await?;
        to.flush().await?;
    }
}

/// The functions whose `next` polls start in `data`. A request head is written at once and
/// is far smaller than a read, so a request line split across two reads is not looked for.
fn polled_functions(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    text.match_indices("GET /.rt/")
        .filter_map(|(i, m)| {
            let path = text.get(i + m.len()..)?.split([' ', '?']).next()?;
            let (name, rest) = path.split_once('/')?;
            (rest.trim_end_matches('/') == NEXT_PATH.trim_start_matches('/'))
                .then(|| name.to_owned())
        })
        .collect()
}

fn starts_with_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len()
        && haystack
            .iter()
            .zip(needle)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Copies `from` to `to`, replacing the value of each deadline header line. Bytes that could
/// start a header line not yet complete are held back until the next read, or for at most
/// 50 ms, so a body that happens to end like one is never held.
async fn copy_rewriting_deadline<R, W>(from: &mut R, to: &mut W) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = if pending.is_empty() {
            from.read(&mut buf).await?
        } else {
            match tokio::time::timeout(Duration::from_millis(50), from.read(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => {
                    to.write_all(&pending).await?;
                    to.flush().await?;
                    pending.clear();
                    continue;
                }
            }
        };
        if read == 0 {
            to.write_all(&pending).await?;
            return to.flush().await;
        }
        pending.extend_from_slice(buf.get(..read).unwrap_or_default());
        let (out, rest) = rewrite_deadlines(&pending);
        to.write_all(&out).await?;
        to.flush().await?;
        pending = rest;
    }
}

/// Rewrites the complete deadline header lines in `data`; returns what can be sent and what
/// must wait for more bytes (an incomplete header line, or a tail that may start one).
fn rewrite_deadlines(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut i = 0;
    while i < data.len() {
        let rest = data.get(i..).unwrap_or_default();
        let found = (0..rest.len())
            .find(|&j| starts_with_ignore_case(rest.get(j..).unwrap_or_default(), DEADLINE_HEADER));
        match found {
            Some(j) => {
                let line = rest.get(j + 1..).unwrap_or_default();
                let Some(end) = line.iter().position(|&b| b == b'\r' || b == b'\n') else {
                    out.extend_from_slice(rest.get(..j).unwrap_or_default());
                    return (out, rest.get(j..).unwrap_or_default().to_vec());
                };
                let deadline = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    + FUNCTION_TIMEOUT;
                out.extend_from_slice(rest.get(..j).unwrap_or_default());
                out.extend_from_slice(
                    format!("\nLambda-Runtime-Deadline-Ms: {}", deadline.as_millis()).as_bytes(),
                );
                i += j + 1 + end;
            }
            None => {
                // Hold back a tail that is the beginning of a header line.
                let keep = (1..DEADLINE_HEADER.len().min(rest.len() + 1))
                    .rev()
                    .find(|&n| {
                        starts_with_ignore_case(
                            DEADLINE_HEADER,
                            rest.get(rest.len() - n..).unwrap_or_default(),
                        )
                    })
                    .unwrap_or(0);
                out.extend_from_slice(rest.get(..rest.len() - keep).unwrap_or_default());
                return (
                    out,
                    rest.get(rest.len() - keep..).unwrap_or_default().to_vec(),
                );
            }
        }
    }
    (out, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_header_is_rewritten_and_nothing_else() {
        let head = b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: x\r\nlambda-runtime-deadline-ms: 600000\r\ncontent-length: 2\r\n\r\n{}";
        let (out, rest) = rewrite_deadlines(head);
        assert!(rest.is_empty());
        let text = String::from_utf8(out).unwrap_or_default();
        let value: u128 = text
            .split("Lambda-Runtime-Deadline-Ms: ")
            .nth(1)
            .and_then(|v| v.split("\r\n").next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        assert!(
            value > now && value <= now + FUNCTION_TIMEOUT.as_millis() + 1_000,
            "{text}"
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: x\r\n"));
        assert!(text.ends_with("\r\ncontent-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn next_polls_are_told_from_other_runtime_requests() {
        let data = b"POST /.rt/handle-alarm/2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}GET /.rt/handle-alarm/2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n";
        assert_eq!(polled_functions(data), vec!["handle-alarm".to_owned()]);
        assert!(
            polled_functions(b"GET /.rt/x/2018-06-01/runtime/invocation/r1 HTTP/1.1\r\n")
                .is_empty()
        );
    }

    #[test]
    fn a_header_split_across_reads_waits_for_its_end() {
        let (out, rest) = rewrite_deadlines(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Dead");
        assert_eq!(out, b"HTTP/1.1 200 OK\r");
        assert_eq!(rest, b"\nLambda-Runtime-Dead");
        let (out, rest) = rewrite_deadlines(b"{\"a\":1}");
        assert_eq!(
            (out.as_slice(), rest.as_slice()),
            (&b"{\"a\":1}"[..], &b""[..])
        );
        let (_, rest) = rewrite_deadlines(b"\nlambda-runtime-deadline-ms: 6000");
        assert_eq!(rest, b"\nlambda-runtime-deadline-ms: 6000");
    }
}
