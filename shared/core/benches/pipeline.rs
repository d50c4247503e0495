//! Criterion benchmarks of the pure pipeline (BENCHMARKS.md, "Pure pipeline (criterion)").
//!
//! For one real payload of each input family (tests/fixtures/aws-events):
//! - `intake/<family>`: `intake::parse` alone (bytes -> normalized alert);
//! - `pipeline/<family>`: bytes -> `intake::parse` -> `pipeline::evaluate` (redact, correlate,
//!   classify, route, runbook, render to Slack and SNS for every matched route) with the empty
//!   context the functions use before (or without) a CloudTrail look-up;
//! - `pipeline_context_500/<family>`: the same against a 500-change CloudTrail context inside
//!   the alert's look-back window, built the way `vigil replay` and the tests build one from a
//!   trail (`Context::from_changes`; `evaluate` sanitizes and correlates all 500);
//! - `stages/*/<family>`: two parts of `evaluate` on their own, to show where the time goes:
//!   `correlate_classify_route` (empty context) and `render_slack_sns` (both channels for
//!   every matched route, from an evaluated report).
//!
//! Every input is read from the repository when the bench starts; throughput is one alert per
//! iteration, so criterion prints alerts (elements) per second on one core.
//!
//! Run: `make bench` (`cargo bench --locked -p vigil-core --bench pipeline`).

// A bench fails loudly on broken fixtures on purpose: expect/indexing/panic are how it reports.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use chrono::Duration;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vigil_core::classify;
use vigil_core::cloudtrail;
use vigil_core::enrich::{self, Context};
use vigil_core::intake;
use vigil_core::model::{Alert, Change, InputFamily};
use vigil_core::pipeline::{self, Report, Settings};
use vigil_core::redact::Redactor;
use vigil_core::render::{self, RenderInput};
use vigil_core::route::{self, Owners};

/// One real payload per input family (README.md "Usage"), relative to the repository root.
const FAMILIES: [(&str, InputFamily, &str); 5] = [
    (
        "alarm_direct",
        InputFamily::AlarmDirect,
        "tests/fixtures/aws-events/cloudwatch-alarm-direct/rust-runtime-metric-alarm.json",
    ),
    (
        "alarm_eventbridge",
        InputFamily::AlarmEventbridge,
        "tests/fixtures/aws-events/eventbridge-alarm-state-change/awsdocs-single-metric-ok-to-alarm.json",
    ),
    (
        "alarm_sns",
        InputFamily::AlarmSns,
        "tests/fixtures/aws-events/sns-wrapped-alarm/rust-runtime-sns-single-metric.json",
    ),
    (
        "cloudtrail_eventbridge",
        InputFamily::Cloudtrail,
        "tests/fixtures/aws-events/cloudtrail-api-call-eventbridge/custodian-eb-glue-putresourcepolicy-principal-star.json",
    ),
    (
        "config_compliance",
        InputFamily::Config,
        "tests/fixtures/aws-events/config-compliance-change/awsdocs-sns-compliance-change-notification-compliant.json",
    ),
];

/// The CloudTrail log files the 500-change context is made from.
const DEMO_TRAILS: [&str; 3] = [
    "examples/demo/agent-tool-access-denied/trail",
    "examples/demo/assistant-injection-surge/trail",
    "examples/demo/bedrock-throttling-capacity/trail",
];

const CONTEXT_CHANGES: usize = 500;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Vec<u8> {
    let path = repo_root().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every change of the demo trails, in file order.
fn demo_changes() -> Vec<Change> {
    let mut out = Vec::new();
    for dir in DEMO_TRAILS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
            .expect("trail dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("trail file");
            let batch = cloudtrail::parse_trail(&text).expect("a CloudTrail log file");
            assert!(
                batch.skipped.is_empty(),
                "{}: {:?}",
                f.display(),
                batch.skipped
            );
            out.extend(batch.changes);
        }
    }
    assert!(!out.is_empty(), "no demo CloudTrail records");
    out
}

/// `CONTEXT_CHANGES` distinct changes inside the alert's 60-minute look-back: the demo records
/// replicated round-robin, each copy with its own event id (a UUID differing in the last group),
/// its own time (spread over the window, newest first) and, from the second round on, its own
/// resource names (`<name>-<round>`), as in an account with many roles, functions and
/// guardrails of the same kinds.
fn context_for(alert: &Alert, templates: &[Change]) -> Context {
    let changes: Vec<Change> = (0..CONTEXT_CHANGES)
        .map(|i| {
            let mut c = templates[i % templates.len()].clone();
            let round = i / templates.len();
            let prefix = c.event_id.get(..24).unwrap_or("00000000-0000-4000-8000-");
            c.event_id = format!("{prefix}{i:012x}");
            let seconds = i64::try_from(i * 7 + 1).expect("small");
            c.time = alert.time - Duration::seconds(seconds);
            if round > 0 {
                c.resources = c.resources.iter().map(|r| format!("{r}-{round}")).collect();
            }
            c
        })
        .collect();
    let window = enrich::window_for(alert.time, Duration::minutes(60));
    let ctx = Context::from_changes(
        window,
        alert.time + Duration::minutes(20),
        changes,
        enrich::sources_for(alert),
    );
    assert_eq!(
        ctx.changes.len(),
        CONTEXT_CHANGES,
        "changes outside the window"
    );
    ctx
}

fn run(bytes: &[u8], ctx: &Context, settings: &Settings, redactor: &Redactor) -> Vec<Report> {
    intake::parse(bytes)
        .expect("an accepted payload")
        .into_iter()
        .map(|alert| pipeline::evaluate(alert, ctx, settings, redactor))
        .collect()
}

fn benches(c: &mut Criterion) {
    let owners = Owners::from_yaml(
        &String::from_utf8(read("examples/owners.yaml")).expect("UTF-8 owners file"),
    )
    .expect("valid owners file");
    let settings = Settings::with_defaults(owners);
    let redactor = Redactor::new();
    let templates = demo_changes();
    let empty = Context::default();

    let inputs: Vec<(&str, Vec<u8>, Context)> = FAMILIES
        .iter()
        .map(|(name, family, path)| {
            let bytes = read(path);
            let alerts = intake::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(alerts.len(), 1, "{path}: one alert");
            assert_eq!(alerts[0].input, *family, "{path}: input family");
            let ctx = context_for(&alerts[0], &templates);
            // Both channels are rendered, with and without context.
            for ctx in [&empty, &ctx] {
                let reports = run(&bytes, ctx, &settings, &redactor);
                assert!(
                    !reports[0].notifications.slack.is_empty()
                        && !reports[0].notifications.sns.is_empty(),
                    "{path}: rendered to Slack and SNS"
                );
            }
            (*name, bytes, ctx)
        })
        .collect();

    let mut group = c.benchmark_group("intake");
    group.throughput(Throughput::Elements(1));
    for (name, bytes, _) in &inputs {
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| intake::parse(black_box(bytes)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    for (name, bytes, _) in &inputs {
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| run(black_box(bytes), &empty, &settings, &redactor));
        });
    }
    group.finish();

    // Milliseconds per iteration: fewer, longer samples keep the run short.
    let mut group = c.benchmark_group("pipeline_context_500");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(10));
    for (name, bytes, ctx) in &inputs {
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| run(black_box(bytes), ctx, &settings, &redactor));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Elements(1));
    for (name, bytes, _) in &inputs {
        let alert = intake::parse(bytes).expect("accepted").remove(0);
        group.bench_function(BenchmarkId::new("correlate_classify_route", name), |b| {
            b.iter(|| {
                let alert = black_box(&alert);
                let correlation = enrich::correlate(alert, &empty, settings.max_causes);
                let class = classify::classify(alert, &correlation, &settings.rules);
                route::route(&settings.owners, alert, class.kind, class.severity)
            });
        });
        let report = pipeline::evaluate(alert, &empty, &settings, &redactor);
        group.bench_function(BenchmarkId::new("render_slack_sns", name), |b| {
            b.iter(|| {
                let report = black_box(&report);
                report
                    .route
                    .matched
                    .iter()
                    .map(|m| {
                        let input = RenderInput {
                            alert: &report.alert,
                            finding: &report.finding,
                            destination: &m.destination,
                            policy: settings.policy,
                            correlation_id: &report.alert.id,
                        };
                        render::slack_and_sns(&input, &redactor)
                    })
                    .collect::<Vec<_>>()
            });
        });
    }
    group.finish();
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
