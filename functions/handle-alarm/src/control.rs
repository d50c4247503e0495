//! Noise control around one alert (ARCHITECTURE.md "Noise control"), when the function has a state table: claim the
//! event id (a duplicate delivery sends nothing), match silences, decide against the alert's
//! group (post, thread reply, flapping notice, resolve, or only count it), wait for each Slack
//! channel's slot or fold into its digest (a `critical` or `audit_tampering` alert takes the
//! channel's priority lane instead: never folded, never behind the ordinary traffic), deliver,
//! remember the thread, and write one ledger entry.
//!
//! Decisions come from the pure core (`vigil_core::noise`); this module only sequences the
//! state calls around them. Invariants:
//! - Fail open: a state call that fails is logged and the alert is sent as if there were no
//!   state (a possible duplicate beats a missed alert); the ledger entry says so.
//! - Enrichment (the slow, rate-limited part) runs only for alerts that will be sent.
//! - A claim is released when every channel failed, so Lambda's retry owns the event again; a
//!   group opened by a post that reached nobody is re-opened by that retry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use vigil_adapters::delivery::{channel_label, deliver_all, outgoing_from};
use vigil_core::enrich::Context;
use vigil_core::model::Alert;
use vigil_core::noise::{
    self, Action, ChannelResult, FoldReason, GroupState, Lane, LedgerEntry, Outcome, Phase,
    SilenceSubject, Slot, Thread,
};
use vigil_core::pipeline::{self, Report};
use vigil_core::ports::{
    BedrockInfo, ChangeSource, Claim, MetricInfo, Notifier, Outgoing, StateStore,
};
use vigil_core::redact::mask_secrets;
use vigil_core::render::slack as slack_render;

use crate::deps::Deps;
use crate::handler::{
    AlertOutcome, Decision, DeliveryOutcome, enrich_and_evaluate, log_decision, outcome_of,
    to_outcome,
};
use crate::metrics::InvocationMetrics;

/// Conditional group writes retried before giving up on a race (then: fail open). Denied
/// calls group by actor, so a flood by one principal makes one hot group that every
/// concurrent invocation writes: lost races back off ([`race_back_off`]) and are retried
/// often enough that the flood is counted, not re-posted.
const GROUP_RETRIES: u32 = 16;

/// The longest pause after a lost group race.
const GROUP_BACK_OFF_CAP: Duration = Duration::from_millis(200);

/// How late a Slack slot's grant may arrive and still be used.
const LATE_GRANT: Duration = Duration::from_millis(100);

/// Slot requests per alert and channel before folding into the digest.
const GRANT_TRIES: u32 = 3;

/// Handles one alert under noise control. `function` names the caller in the ledger.
pub async fn respond<C, B, M, S, N, St>(
    alert: Alert,
    deps: &Deps<C, B, M, S, N, St>,
    state: &St,
    now: DateTime<Utc>,
    limit: crate::handler::TimeLimit,
    journaled: bool,
    function: &str,
) -> (AlertOutcome, InvocationMetrics)
where
    C: ChangeSource,
    B: BedrockInfo,
    M: MetricInfo,
    S: Notifier,
    N: Notifier,
    St: StateStore,
{
    let started = Instant::now();
    // The rate limiter needs the time as it passes, not the invocation's start.
    let current = move || now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    let noise = &deps.noise;
    let ledger = Ledger {
        state,
        ttl: noise.ledger_ttl,
        function,
    };
    let mut notes: Vec<String> = Vec::new();

    // 1. Idempotency.
    let claimed = match state
        .claim(&alert.id, now, noise.claim_lease, noise.claim_ttl)
        .await
    {
        Ok(Claim::Owned) => true,
        Ok(Claim::Duplicate {
            in_progress,
            claimed_at,
        }) => {
            let reason = if in_progress {
                format!(
                    "duplicate delivery: another invocation has been handling this event since {claimed_at}"
                )
            } else {
                format!("duplicate delivery: already handled (claimed at {claimed_at})")
            };
            let preliminary = preliminary(&alert, deps);
            return finish_quiet(
                &ledger,
                &preliminary,
                Outcome::Suppressed,
                Decision::Suppressed,
                reason,
                None,
                journaled,
                now,
            )
            .await;
        }
        Err(e) => {
            tracing::warn!(alert_id = %alert.id, error = %e, "idempotency claim failed; sending without it");
            notes.push(format!("not deduplicated ({e})"));
            false
        }
    };
    let event_id = alert.id.clone();
    let settle = |done: bool| settle(state, claimed, &event_id, done);

    // 2. What the event alone says: kind, severity, teams, title (no enrichment yet).
    let preliminary = preliminary(&alert, deps);
    let kind = preliminary.finding.kind;
    let phase = noise::phase_of(&alert);

    // 3. Silences (never for a resolve: threads still close).
    if phase == Phase::Firing {
        match state.active_silences(now).await {
            Ok(silences) => {
                let teams: Vec<String> = preliminary
                    .route
                    .matched
                    .iter()
                    .map(|m| m.destination.team.clone())
                    .collect();
                let subject = SilenceSubject {
                    alert: &alert,
                    kind,
                    severity: preliminary.finding.severity,
                    teams: &teams,
                };
                if let Some(s) = noise::silenced_by(&silences, &subject, now) {
                    let reason = format!(
                        "silenced by {} until {} ({}: {})",
                        s.id, s.ends_at, s.author, s.reason
                    );
                    settle(true).await;
                    return finish_quiet(
                        &ledger,
                        &preliminary,
                        Outcome::Suppressed,
                        Decision::Suppressed,
                        reason,
                        None,
                        journaled,
                        now,
                    )
                    .await;
                }
            }
            Err(e) => {
                tracing::warn!(alert_id = %alert.id, error = %e, "silences not read; none applied");
                notes.push(format!("silences not checked ({e})"));
            }
        }
    }

    // 4. The group.
    let pointer = noise::alarm_pointer(&alert);
    let key = match phase {
        Phase::Firing => Some(noise::group_key(&alert, kind)),
        Phase::Resolved => match &pointer {
            Some(p) => match state.pointed_group(p).await {
                Ok(k) => k,
                Err(e) => {
                    notes.push(format!("group not found ({e})"));
                    None
                }
            },
            None => None,
        },
    };
    let title = preliminary.finding.title.clone();
    let (action, group) = match &key {
        None if phase == Phase::Resolved
            && notes.iter().any(|n| n.starts_with("group not found")) =>
        {
            // The state could not say whether a group is open: tell people, as without state.
            (Action::Resolve, None)
        }
        None => (Action::Fold(FoldReason::NothingOpen), None),
        Some(key) => match decide_and_store(deps, state, key, &alert, &title, phase, now).await {
            Ok((action, group, note)) => {
                notes.extend(note);
                (action, group)
            }
            Err(e) => {
                tracing::warn!(alert_id = %alert.id, error = %e, "group state failed; sending as a new alert");
                notes.push(format!("not grouped ({e})"));
                let action = match phase {
                    Phase::Firing => Action::Post,
                    Phase::Resolved => Action::Resolve,
                };
                (action, None)
            }
        },
    };
    let group_key = key.clone();

    if let Action::Fold(reason) = action {
        settle(true).await;
        let detail = match &group {
            Some(g) => format!(
                "folded ({}): {} alert(s) in group since {}",
                reason.as_str(),
                g.count,
                g.opened_at
            ),
            None => format!("folded ({})", reason.as_str()),
        };
        return finish_quiet(
            &ledger,
            &preliminary,
            Outcome::Folded,
            Decision::Folded,
            with_notes(detail, &notes),
            group_key,
            journaled,
            now,
        )
        .await;
    }

    // 5. Enrich and evaluate what will be sent.
    let (report, mut metrics, missing) = enrich_and_evaluate(alert.clone(), deps, now, limit).await;
    let context_partial = !missing.is_empty();
    if context_partial {
        notes.push(format!("context missing: {}", missing.join("; ")));
    }

    // 6. The messages the action sends.
    let threads: &[Thread] = group.as_ref().map_or(&[], |g| g.threads.as_slice());
    let messages = messages_for(&report, action, group.as_ref(), threads, deps, current());
    if messages.is_empty() && matches!(action, Action::Reply | Action::FlapNotice) {
        // Replies go to Slack threads only; routes without a thread in this group (SNS-only
        // routes, a channel the first message did not reach) have nothing to reply to.
        settle(true).await;
        let (outcome, _) = finish_quiet(
            &ledger,
            &report,
            Outcome::Folded,
            Decision::Folded,
            with_notes(
                format!("folded: {} with no thread to reply in", action_name(action)),
                &notes,
            ),
            group_key,
            journaled,
            now,
        )
        .await;
        return (outcome, metrics);
    }

    // 7. Rate limit per Slack channel, then deliver. Critical and audit-tampering alerts take
    // the priority lane (by the event alone or by what enrichment made of it, whichever is
    // more urgent), so a flood of ordinary alerts cannot fold them into a digest.
    let lane = noise::lane(kind, preliminary.finding.severity)
        .max(noise::lane(report.finding.kind, report.finding.severity));
    let time_left = limit.share(deps.budgets.delivery, Duration::ZERO);
    let (deliveries, limited) =
        send_paced(deps, state, messages, &title, lane, time_left, current).await;
    metrics.notifications_sent = deliveries.iter().filter(|d| d.0.ok).count() as u64;
    metrics.notifications_failed = deliveries.iter().filter(|d| !d.0.ok).count() as u64;

    // 8. Remember where the group's first message went.
    let any_delivered = deliveries.iter().any(|d| d.0.ok);
    if let (Action::Post, Some(key)) = (action, &key) {
        if any_delivered {
            for (d, id, label) in &deliveries {
                if let (true, Some(label), Some(ts)) = (d.ok, label, id) {
                    let thread = Thread {
                        channel: label.clone(),
                        ts: ts.clone(),
                    };
                    if let Err(e) = state.add_thread(key, &thread).await {
                        tracing::warn!(error = %e, "thread not remembered; repeats will be counted, not threaded");
                    }
                }
            }
            if let Some(p) = &pointer
                && let Err(e) = state.point(p, key, noise.ledger_ttl).await
            {
                tracing::warn!(error = %e, "alarm pointer not stored; its resolve will not find the group");
            }
        } else if let Some(g) = &group {
            reopen(state, g, noise).await;
        }
    }

    // 9. The ledger and the outcome.
    let all_failed = !deliveries.is_empty() && !any_delivered && limited == 0;
    // Nothing to send (no channel for this action) or nothing arrived: failed.
    let (outcome, decision) = if (deliveries.is_empty() && limited == 0) || all_failed {
        (Outcome::Failed, Decision::DeliveryFailed)
    } else if !any_delivered {
        (Outcome::RateLimited, Decision::RateLimited)
    } else {
        match action {
            Action::Post => (Outcome::Sent, Decision::Notified),
            Action::Reply | Action::FlapNotice => (Outcome::Threaded, Decision::Threaded),
            Action::Resolve => (Outcome::Resolved, Decision::Resolved),
            Action::Fold(_) => (Outcome::Folded, Decision::Folded),
        }
    };
    let mut outcomes: Vec<DeliveryOutcome> = deliveries.into_iter().map(|d| d.0).collect();
    if outcomes.is_empty() && limited == 0 {
        outcomes.push(DeliveryOutcome {
            channel: "none".to_string(),
            ok: false,
            retryable: false,
            attempts: 0,
            error: Some(format!(
                "routes {} name no channel this function can send to for a {}",
                report
                    .route
                    .matched
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                action_name(action)
            )),
            fell_back_to_text: false,
        });
    }
    settle(decision != Decision::DeliveryFailed).await;
    let mut reason = format!("{} ({})", action_name(action), decision.as_str());
    if lane == Lane::Priority {
        reason.push_str("; priority lane (never rate-limited into the digest)");
    }
    if limited > 0 {
        reason.push_str(&format!(
            "; {limited} Slack message(s) held back by the rate limit, in the channel digest"
        ));
    }
    let entry = LedgerEntry {
        at: now,
        correlation_id: report.alert.id.clone(),
        function: function.to_string(),
        outcome,
        reason: Some(with_notes(reason, &notes)),
        kind: Some(report.finding.kind),
        severity: Some(report.finding.severity),
        name: report.alert.name().to_string(),
        group_key,
        channels: outcomes
            .iter()
            .map(|d| ChannelResult {
                channel: d.channel.clone(),
                ok: d.ok,
                detail: d.error.clone(),
            })
            .collect(),
    };
    ledger.write(&entry).await;
    let outcome = outcome_of(&report, decision, outcomes, journaled, context_partial);
    log_decision(&outcome);
    (outcome, metrics)
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Post => "post",
        Action::Reply => "thread reply",
        Action::FlapNotice => "flapping notice",
        Action::Resolve => "resolve",
        Action::Fold(_) => "fold",
    }
}

fn with_notes(reason: String, notes: &[String]) -> String {
    if notes.is_empty() {
        reason
    } else {
        format!("{reason}; {}", notes.join("; "))
    }
}

/// The report of the event alone (empty context): what classification, routing and the
/// silences see before anything is looked up.
fn preliminary<C, B, M, S, N, St>(alert: &Alert, deps: &Deps<C, B, M, S, N, St>) -> Report {
    pipeline::evaluate(
        alert.clone(),
        &Context::default(),
        &deps.settings,
        &deps.redactor,
    )
}

/// What [`decide_and_store`] decided: the action, the group as stored after it (or as last
/// read), and a note for the ledger when the decision could not be stored.
type Decided = (Action, Option<GroupState>, Option<String>);

/// Reads the group, decides, and stores the decision conditionally; on a race, reads again.
///
/// When every write lost its race and the last read found the group open with a repeat
/// (reply, flapping notice or fold), the alert is counted in the ledger only: other
/// invocations are writing that group this very moment, so it has its message, and replying
/// or posting without the write would overrun the reply budget or re-post the group (a flood
/// on one hot group would otherwise turn into a flood of posts). Any other lost race (a post,
/// a resolve) fails open: sent as if there were no state.
async fn decide_and_store<C, B, M, S, N, St: StateStore>(
    deps: &Deps<C, B, M, S, N, St>,
    state: &St,
    key: &str,
    alert: &Alert,
    title: &str,
    phase: Phase,
    now: DateTime<Utc>,
) -> Result<Decided, vigil_core::ports::StateError> {
    let kind_now = pipeline_kind(deps, alert);
    let mut last_repeat: Option<(Action, GroupState)> = None;
    for attempt in 0..GROUP_RETRIES {
        if attempt > 0 {
            race_back_off(attempt).await;
        }
        let stored = state.group(key).await?;
        let kind = stored.as_ref().map_or(kind_now, |g| g.kind);
        let (action, next) = noise::decide(
            stored.as_ref(),
            key,
            alert,
            kind,
            title,
            phase,
            now,
            &deps.noise,
            deps.threads,
        );
        let Some(next) = next else {
            return Ok((action, stored, None));
        };
        if state
            .put_group(
                &next,
                stored.as_ref().map(|g| g.version),
                deps.noise.ledger_ttl,
            )
            .await?
        {
            return Ok((action, Some(next), None));
        }
        last_repeat = match (action, stored) {
            (Action::Reply | Action::FlapNotice | Action::Fold(_), Some(g))
                if phase == Phase::Firing =>
            {
                Some((action, g))
            }
            _ => None,
        };
    }
    if let Some((action, group)) = last_repeat {
        let reason = match action {
            Action::Fold(reason) => reason,
            _ => FoldReason::Repeat,
        };
        return Ok((
            Action::Fold(reason),
            Some(group),
            Some(format!(
                "counted in the ledger only: {GROUP_RETRIES} writes of its open group lost races to concurrent alerts"
            )),
        ));
    }
    Err(vigil_core::ports::StateError {
        operation: "group".to_string(),
        reason: format!("{GROUP_RETRIES} conditional writes lost races"),
        retryable: true,
    })
}

fn pipeline_kind<C, B, M, S, N, St>(
    deps: &Deps<C, B, M, S, N, St>,
    alert: &Alert,
) -> vigil_core::model::Kind {
    preliminary(alert, deps).finding.kind
}

/// After losing `attempt` races for a group: a pause drawn evenly from zero to 5 ms × 2^attempt
/// (at most [`GROUP_BACK_OFF_CAP`]), so concurrent writers of one hot group spread out
/// instead of colliding again in step.
async fn race_back_off(attempt: u32) {
    use std::hash::BuildHasher;
    let cap = Duration::from_millis(5)
        .saturating_mul(1u32 << attempt.min(16))
        .min(GROUP_BACK_OFF_CAP);
    let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX).max(1);
    // `RandomState` is seeded randomly per thread and advanced per instance: jitter without a
    // random-number crate.
    let draw = std::collections::hash_map::RandomState::new().hash_one(attempt);
    tokio::time::sleep(Duration::from_micros(draw % cap_us)).await;
}

/// A post that reached nobody: move the group's last alert out of the window, so that the
/// retry Lambda makes opens it again and posts.
async fn reopen<St: StateStore>(state: &St, group: &GroupState, noise: &noise::NoiseSettings) {
    let mut closed = group.clone();
    let window = chrono::Duration::from_std(noise.group_window).unwrap_or_default();
    closed.last_at = closed.opened_at - window - chrono::Duration::seconds(1);
    closed.version = group.version + 1;
    if let Err(e) = state
        .put_group(&closed, Some(group.version), noise.ledger_ttl)
        .await
    {
        tracing::warn!(error = %e, "group not re-opened after a failed post");
    }
}

/// The messages `action` sends: everything for a post; Slack replies in the group's threads
/// for a reply or the flapping notice; for a resolve, each root edited to "Resolved" plus a
/// reply (bot mode) or a new message (webhook), and SNS.
fn messages_for<C, B, M, S, N, St>(
    report: &Report,
    action: Action,
    group: Option<&GroupState>,
    threads: &[Thread],
    deps: &Deps<C, B, M, S, N, St>,
    now: DateTime<Utc>,
) -> Vec<Outgoing> {
    let base = outgoing_from(report);
    let thread_of = |m: &Outgoing| {
        let label = channel_label(m);
        threads
            .iter()
            .find(|t| t.channel == label)
            .map(|t| t.ts.clone())
    };
    let mut out = Vec::new();
    for m in base {
        match (action, &m) {
            (Action::Post, _) | (Action::Resolve, Outgoing::Sns { .. }) => out.push(m),
            (Action::Reply, Outgoing::Slack { .. }) => {
                if let Some(ts) = thread_of(&m) {
                    out.push(in_thread(m, ts));
                }
            }
            (Action::FlapNotice, Outgoing::Slack { channel, .. }) => {
                if let (Some(ts), Some(g)) = (thread_of(&m), group) {
                    out.push(Outgoing::Slack {
                        channel: channel.clone(),
                        message: slack_render::flap_notice(
                            &g.title,
                            g.transitions.len(),
                            deps.noise.flap_window,
                        ),
                        thread_ts: Some(ts),
                        update_ts: None,
                    });
                }
            }
            (Action::Resolve, Outgoing::Slack { channel, .. }) => match (thread_of(&m), group) {
                (Some(ts), Some(g)) => {
                    out.push(Outgoing::Slack {
                        channel: channel.clone(),
                        message: slack_render::resolved_root(
                            &g.title,
                            g.count,
                            g.opened_at,
                            now,
                            &g.first_correlation_id,
                        ),
                        thread_ts: None,
                        update_ts: Some(ts.clone()),
                    });
                    out.push(in_thread(m, ts));
                }
                _ => out.push(m),
            },
            _ => {}
        }
    }
    out
}

fn in_thread(m: Outgoing, ts: String) -> Outgoing {
    match m {
        Outgoing::Slack {
            channel, message, ..
        } => Outgoing::Slack {
            channel,
            message,
            thread_ts: Some(ts),
            update_ts: None,
        },
        other => other,
    }
}

/// One delivery: its outcome, the message id (Slack `ts`), and for Slack the channel label
/// threads are stored under.
type Sent = (DeliveryOutcome, Option<String>, Option<String>);

/// Sends SNS at once and each Slack channel's messages in its rate-limit slots.
///
/// In the ordinary lane an alert waits for a slot up to the configured maximum and the time
/// left; a channel whose slot is too far away gets the alert into its digest instead, and the
/// first message granted on a channel carries that channel's digest. In the priority lane
/// ([`Lane::Priority`]) the slots are the channel's priority bucket, the wait is bounded by
/// the time left only, and a slot that cannot be had (or a grant that keeps arriving late) is
/// not a fold: the message goes out at once. It neither joins nor carries the digest.
///
/// Returns the deliveries and how many Slack messages were held back (always 0 in the
/// priority lane).
#[allow(clippy::too_many_arguments)]
async fn send_paced<C, B, M, S, N, St, F>(
    deps: &Deps<C, B, M, S, N, St>,
    state: &St,
    messages: Vec<Outgoing>,
    title: &str,
    lane: Lane,
    time_left: Duration,
    current: F,
) -> (Vec<Sent>, usize)
where
    S: Notifier,
    N: Notifier,
    St: StateStore,
    F: Fn() -> DateTime<Utc>,
{
    let started = Instant::now();
    let left = move || time_left.saturating_sub(started.elapsed());
    let mut sns = Vec::new();
    let mut slack: Vec<(String, Vec<Outgoing>)> = Vec::new();
    for m in messages {
        match &m {
            Outgoing::Sns { .. } => sns.push(m),
            Outgoing::Slack { .. } => {
                let label = channel_label(&m);
                match slack.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, list)) => list.push(m),
                    None => slack.push((label, vec![m])),
                }
            }
        }
    }
    let sns_sends = async {
        let report = deliver_all(&deps.channels, sns, left()).await;
        report
            .outcomes
            .into_iter()
            .map(|o| {
                let id = o.as_ref().ok().and_then(|d| d.id.clone());
                (to_outcome(o), id, None)
            })
            .collect::<Vec<Sent>>()
    };
    let noise = &deps.noise;
    let slack_sends = futures::future::join_all(slack.into_iter().map(|(label, list)| {
        let current = &current;
        async move {
            let slots = u32::try_from(list.len()).unwrap_or(u32::MAX);
            let bucket = noise::rate_key(&label, lane);
            let priority = lane == Lane::Priority;
            // The slot is a time: it is counted from when it was asked for, and everything
            // slow (the digest read) happens before it, so the call goes out at the slot. A
            // grant that arrives after its slot began (a slow store) is asked for again
            // rather than used late, where it could crowd the next holder's slot.
            let mut tries = 0;
            let send_at = loop {
                tries += 1;
                let asked = Instant::now();
                let max_wait = if priority {
                    left()
                } else {
                    noise.max_rate_wait.min(left())
                };
                match state
                    .reserve_slot(&bucket, current(), slots, noise.slack_interval, max_wait)
                    .await
                {
                    Ok(Slot::Granted { wait, .. }) => {
                        let at = asked + wait;
                        if Instant::now() <= at + LATE_GRANT {
                            break at;
                        }
                        if tries < GRANT_TRIES {
                            continue;
                        }
                        if priority {
                            tracing::info!(channel = %label, "priority Slack slots kept arriving late; sending now");
                            break Instant::now();
                        }
                        tracing::info!(channel = %label, "Slack slots kept arriving late; folded into the digest");
                    }
                    Ok(Slot::Limited { free_at }) if priority => {
                        tracing::info!(channel = %label, free_at = %free_at, "priority lane busy past the time left; sending now");
                        break Instant::now();
                    }
                    Ok(Slot::Limited { free_at }) => {
                        tracing::info!(channel = %label, free_at = %free_at, held = list.len(), "Slack rate limit: folded into the digest");
                    }
                    Err(e) => {
                        tracing::warn!(channel = %label, error = %e, "rate limiter unavailable; sending now");
                        break Instant::now();
                    }
                }
                if let Err(e) = state
                    .add_to_digest(&label, title, current(), noise.ledger_ttl)
                    .await
                {
                    tracing::warn!(channel = %label, error = %e, "digest not updated");
                }
                return (Vec::new(), list.len());
            };
            // The digest rides on the ordinary lane's messages only.
            let digest = if priority {
                None
            } else {
                match state.take_digest(&label).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(channel = %label, error = %e, "digest not read");
                        None
                    }
                }
            };
            let mut sent = Vec::new();
            let mut at = send_at;
            for (i, mut m) in list.into_iter().enumerate() {
                tokio::time::sleep_until(at).await;
                at = Instant::now() + noise.slack_interval;
                if i == 0
                    && let Some(d) = &digest
                    && let Outgoing::Slack { message, .. } = &mut m
                {
                    *message = slack_render::with_note(message.clone(), &noise::digest_line(d));
                }
                let report = deliver_all(&deps.channels, vec![m], left()).await;
                for o in report.outcomes {
                    let id = o.as_ref().ok().and_then(|d| d.id.clone());
                    sent.push((to_outcome(o), id, Some(label.clone())));
                }
            }
            (sent, 0)
        }
    }));
    let (mut sns_done, slack_done) = futures::join!(sns_sends, slack_sends);
    let mut limited = 0;
    for (sent, held) in slack_done {
        sns_done.extend(sent);
        limited += held;
    }
    (sns_done, limited)
}

/// Marks an owned claim done, or releases it for Lambda's retry.
async fn settle<St: StateStore>(state: &St, claimed: bool, event_id: &str, done: bool) {
    if claimed && let Err(e) = state.settle(event_id, done).await {
        tracing::warn!(alert_id = %event_id, error = %e, done, "claim not settled");
    }
}

/// The ledger writer: a failed write is logged with the whole entry, never fatal. When the
/// table itself is down that log line is the record of the decision (CloudWatch Logs keeps
/// it; the ledger cannot).
struct Ledger<'a, St> {
    state: &'a St,
    ttl: Duration,
    function: &'a str,
}

impl<St: StateStore> Ledger<'_, St> {
    async fn write(&self, entry: &LedgerEntry) {
        if let Err(e) = self.state.record(entry, self.ttl).await {
            let json = serde_json::to_string(entry).unwrap_or_default();
            tracing::warn!(
                correlation_id = %entry.correlation_id,
                outcome = entry.outcome.as_str(),
                error = %mask_secrets(&e.to_string()),
                entry = %mask_secrets(&json),
                "ledger entry not written"
            );
        }
    }
}

/// Ends an alert that sends nothing (duplicate, silenced, folded): a ledger entry and an
/// outcome from the event-only report.
#[allow(clippy::too_many_arguments)]
async fn finish_quiet<St: StateStore>(
    ledger: &Ledger<'_, St>,
    report: &Report,
    outcome: Outcome,
    decision: Decision,
    reason: String,
    group_key: Option<String>,
    journaled: bool,
    now: DateTime<Utc>,
) -> (AlertOutcome, InvocationMetrics) {
    let entry = LedgerEntry {
        at: now,
        correlation_id: report.alert.id.clone(),
        function: ledger.function.to_string(),
        outcome,
        reason: Some(reason),
        kind: Some(report.finding.kind),
        severity: Some(report.finding.severity),
        name: report.alert.name().to_string(),
        group_key,
        channels: Vec::new(),
    };
    ledger.write(&entry).await;
    let outcome = outcome_of(report, decision, Vec::new(), journaled, false);
    log_decision(&outcome);
    (outcome, InvocationMetrics::default())
}
