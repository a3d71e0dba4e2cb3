//! Executing one run inside its job: claim it, load what earlier attempts recorded (completed
//! nodes are never run again), then loop: start what is ready, write the changes (node rows,
//! breaker records and events in one fenced transaction), spawn the node tasks, and wait for a
//! result, a wake-up, the run's deadline or a cancel. Independent nodes run concurrently.
//! When nothing is running and the next wake-up (a delay, a retry back-off, a sub-run check)
//! is a second or more away, the job is snoozed until then instead of holding a worker.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use gathering_pipeline::circuits::{self, Gate};
use gathering_pipeline::events::run_event;
use gathering_pipeline::run_state::{self, NodeWrite};
use gathering_pipeline::{ErrorKind, NodeRunRow, store};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::approvals;
use super::cancel::CancelWatch;
use super::load;
use super::nodes::{self, Call, NodeError};
use super::progress::{AttemptResult, Phase, RunState};
use super::{RunError, Services};

/// Waits shorter than this happen in the worker; longer ones re-schedule the job.
const SNOOZE_AFTER: Duration = Duration::from_secs(1);
/// How often a run that executes nodes reads the decisions of its waiting approvals.
const APPROVAL_POLL: Duration = Duration::from_secs(1);

/// How the job ends.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The run is over (or was already).
    Finished,
    /// Continue after this long.
    Snooze(Duration),
    /// Cancelled, or no longer ours: nothing more to do here.
    Stopped,
    /// The job's lease was lost or the executor is stopping: another attempt resumes.
    Interrupted,
}

pub async fn execute(
    services: &Arc<Services>,
    watch: &CancelWatch,
    run_id: i64,
    runner: &str,
    job_cancel: &CancellationToken,
) -> Result<Ended, RunError> {
    let watched = watch.watch(run_id);
    let Some((mut state, deadline, timeout_seconds)) =
        load::load(services, run_id, runner, watched.token.clone()).await?
    else {
        return Ok(Ended::Finished);
    };
    let ended = drive(
        services,
        &mut state,
        runner,
        deadline,
        timeout_seconds,
        job_cancel,
    )
    .await;
    drop(watched);
    ended
}

async fn drive(
    services: &Arc<Services>,
    state: &mut RunState,
    runner: &str,
    deadline: Instant,
    timeout_seconds: i32,
    job_cancel: &CancellationToken,
) -> Result<Ended, RunError> {
    let mut tasks: JoinSet<AttemptResult> = JoinSet::new();
    loop {
        let now = Utc::now();
        if Instant::now() >= deadline {
            tasks.abort_all();
            let why = format!("Pipeline exceeded {timeout_seconds}s timeout");
            state.cancel_all(now, &why);
            return finish(services, state, runner, "timeout", Some(why)).await;
        }
        approvals::sync(services, state).await?;
        if state.phase == Phase::Main && state.failure.is_some() {
            // A failure recorded by a task result (or before a resume) stops the rest.
            tasks.abort_all();
            state.stop_main(now);
        }
        let mut spawn: Vec<(usize, Call)> = Vec::new();
        state.advance(now, &mut spawn);
        if state.phase == Phase::Main && state.failure.is_some() {
            tasks.abort_all();
            spawn.clear();
            state.stop_main(now);
            if state.phase == Phase::Failure {
                state.advance(now, &mut spawn);
            }
        }
        if let Some((status, error)) = state.outcome() {
            tasks.abort_all();
            if status == "completed" {
                state.skip_failure_path(now);
            }
            return finish(services, state, runner, status, error).await;
        }
        if !flush(services, state, runner).await? {
            return Ok(Ended::Stopped);
        }
        for (i, call) in spawn {
            tasks.spawn(attempt(services.clone(), state, i, call));
        }
        let next = state.next_wake();
        let waiting = !state.waiting_approvals().is_empty();
        if tasks.is_empty() && waiting {
            // Only people (or timers) are awaited: park the run rather than hold a worker.
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = next
                .map(|w| (w - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(left)
                .min(left);
            if wait >= SNOOZE_AFTER {
                match approvals::park(services, state, runner).await? {
                    approvals::Park::Parked => return Ok(Ended::Snooze(wait)),
                    approvals::Park::Decided => continue,
                    approvals::Park::Lost => return Ok(Ended::Stopped),
                }
            }
        } else if tasks.is_empty() {
            let Some(wake) = next else {
                let why = "Pipeline cannot make progress: no node is running or waiting";
                return finish(services, state, runner, "failed", Some(why.into())).await;
            };
            let wait = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if wait >= SNOOZE_AFTER {
                let left = deadline.saturating_duration_since(Instant::now());
                return Ok(Ended::Snooze(wait.min(left)));
            }
        }
        let mut wake =
            next.map(|w| Instant::now() + (w - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        if waiting {
            // Decisions are read from the approval rows: look again within a second.
            let poll = Instant::now() + APPROVAL_POLL;
            wake = Some(wake.map_or(poll, |w| w.min(poll)));
        }
        tokio::select! {
            biased;
            _ = state.cancel.cancelled() => return Ok(Ended::Stopped),
            _ = job_cancel.cancelled() => return Ok(Ended::Interrupted),
            _ = tokio::time::sleep_until(deadline) => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let now = Utc::now();
                if let Ok(r) = joined {
                    state.on_result(r, now);
                }
                while let Some(joined) = tasks.try_join_next() {
                    if let Ok(r) = joined {
                        state.on_result(r, now);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or(deadline)), if wake.is_some() => {}
        }
    }
}

/// One attempt of a task node: the circuit (unless it only checks a sub-run it started), the
/// call under the node's timeout and the run's cancellation, never a panic.
fn attempt(
    services: Arc<Services>,
    state: &RunState,
    idx: usize,
    call: Call,
) -> impl std::future::Future<Output = AttemptResult> + Send + 'static {
    let options = &state.options[idx];
    let timeout = options.timeout;
    let breaker_key = options
        .breaker
        .key
        .clone()
        .or_else(|| nodes::breaker_key(&call));
    let recovery = options.breaker.recovery_timeout;
    async move {
        let attempt = call.attempt;
        let mut gate = None;
        if let (Some(key), None) = (&breaker_key, call.child_run_id) {
            let acquired = match services.pool.get().await {
                Ok(c) => circuits::acquire(&c, key, recovery)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acquired {
                Ok(Gate::Open) => {
                    return AttemptResult {
                        idx,
                        attempt,
                        outcome: Err(NodeError::new(
                            ErrorKind::CircuitOpen,
                            format!("Circuit breaker OPEN for node '{}'", call.node.id),
                        )),
                        gate: Some(Gate::Open),
                        breaker_key,
                    };
                }
                Ok(g) => gate = Some(g),
                Err(e) => {
                    return AttemptResult {
                        idx,
                        attempt,
                        outcome: Err(NodeError::transient(format!(
                            "circuit breaker state unavailable: {e}"
                        ))),
                        gate: None,
                        breaker_key: None,
                    };
                }
            }
        }
        let run = AssertUnwindSafe(nodes::execute(&services, &call)).catch_unwind();
        let outcome = match timeout {
            Some(t) => match tokio::time::timeout(t, run).await {
                Ok(r) => r,
                Err(_) => Ok(Err(NodeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "Node '{}' timed out after {}s",
                        call.node.id,
                        t.as_secs_f64()
                    ),
                ))),
            },
            None => run.await,
        };
        let outcome = outcome.unwrap_or_else(|_| {
            Err(NodeError::execution(format!(
                "Node '{}' failed: its handler panicked",
                call.node.id
            )))
        });
        AttemptResult {
            idx,
            attempt,
            outcome,
            gate,
            breaker_key,
        }
    }
}

fn writes(state: &RunState) -> Vec<NodeWrite> {
    state
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.dirty)
        .map(|(i, n)| NodeWrite {
            node_id: state.def.nodes[i].id.clone(),
            status: n.status.as_str(),
            attempt: n.attempt as i32,
            wake_at: n.wake_at,
            input: n.input.clone(),
            output: n.output.clone(),
            error: n.error.clone(),
            kind: n.error_kind.map(ErrorKind::as_str),
            started: n.started_at,
            completed: n.completed_at,
            duration_ms: n.duration_ms,
            child: n.child_run_id,
        })
        .collect()
}

fn clean(state: &mut RunState) {
    state.first_pending = false;
    state.nodes.iter_mut().for_each(|n| n.dirty = false);
    state.events.clear();
    state.breakers.clear();
    state.new_approvals.clear();
}

/// Writes what changed; false when the run is no longer ours.
async fn flush(services: &Services, state: &mut RunState, runner: &str) -> Result<bool, RunError> {
    let nodes = writes(state);
    if nodes.is_empty()
        && state.events.is_empty()
        && state.breakers.is_empty()
        && state.new_approvals.is_empty()
    {
        return Ok(true);
    }
    let first = state.first_pending.then_some(run_state::FirstStart {
        pipeline_id: state.pipeline_id,
        definition: &state.def,
    });
    let mut client = services.pool.get().await?;
    let tx = client.transaction().await?;
    let held = run_state::flush(
        &tx,
        state.run_id,
        runner,
        state.current_node.as_deref(),
        &nodes,
        &state.breakers,
        &state.events,
        first.as_ref(),
        &services.announcer,
    )
    .await?;
    let Some(newest_event) = held else {
        return Ok(false);
    };
    gathering_pipeline::approval::create_in(
        &tx,
        state.run_id,
        state.pipeline_id,
        &state.new_approvals,
    )
    .await?;
    tx.commit().await?;
    services.announcer.announce(newest_event);
    clean(state);
    Ok(true)
}

/// The run's `logs`: one entry per node that started or was decided (both field sets).
fn logs(state: &RunState) -> Value {
    let now = Utc::now();
    let rows: Vec<NodeRunRow> = state
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeRunRow {
            id: i as i64,
            run_id: state.run_id,
            node_id: state.def.nodes[i].id.clone(),
            node_type: state.def.nodes[i].node_type.clone(),
            status: n.status.as_str().to_owned(),
            input_data: Value::Null,
            output_data: n.output.clone(),
            error_message: n.error.clone(),
            error_kind: n.error_kind.map(|k| k.as_str().to_owned()),
            retry_count: n.attempt.saturating_sub(1) as i32,
            attempt: n.attempt as i32,
            started_at: n.started_at,
            completed_at: n.completed_at,
            duration_ms: n.duration_ms,
            wake_at: None,
            child_run_id: n.child_run_id,
            created_at: now,
        })
        .collect();
    Value::Array(gathering_pipeline::record::log_entries(&rows))
}

/// Ends the run: the last node changes, the run's status, counters, the event, and the end of
/// any sub-run still going, in one transaction.
async fn finish(
    services: &Services,
    state: &mut RunState,
    runner: &str,
    status: &str,
    error: Option<String>,
) -> Result<Ended, RunError> {
    state.events.push(run_event(
        state.pipeline_id,
        state.run_id,
        status,
        error.as_deref(),
    ));
    let nodes = writes(state);
    let logs = logs(state);
    let first = state.first_pending;
    let mut client = services.pool.get().await?;
    let tx = client.transaction().await?;
    if first {
        // A run that ends in its first write: node rows here, the start counted by `finish`.
        store::insert_node_rows(&tx, state.run_id, &state.def).await?;
    }
    let held = run_state::flush(
        &tx,
        state.run_id,
        runner,
        None,
        &nodes,
        &state.breakers,
        &state.events,
        None,
        &services.announcer,
    )
    .await?;
    let Some(newest_event) = held else {
        return Ok(Ended::Stopped);
    };
    run_state::finish(
        &tx,
        state.run_id,
        runner,
        status,
        error.as_deref(),
        &logs,
        first,
    )
    .await?;
    if state.had_children {
        store::cancel_tree_in(
            &tx,
            state.run_id,
            false,
            "cancelled",
            "Pipeline run was cancelled: its parent run ended",
        )
        .await?;
    }
    tx.commit().await?;
    services.announcer.announce(newest_event);
    clean(state);
    tracing::info!(
        run_id = state.run_id,
        pipeline_id = state.pipeline_id,
        status,
        "pipeline run finished"
    );
    Ok(Ended::Finished)
}
