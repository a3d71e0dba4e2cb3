//! How nodes and the run end, as rules on the in-memory state (no I/O): what a finished
//! attempt means (completed, retried after a back-off, failed, and the circuit records that
//! go with it), skipping and cancelling nodes, stopping the main phase when the run fails, and
//! the run's final status. `progress` decides what starts; this is what follows once
//! something ran (the rules are in `progress`'s module comment).

use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_pipeline::circuits::{Gate, Record};
use gathering_pipeline::events::{NODE_COMPLETED, NODE_FAILED, NODE_RETRYING, NODE_SKIPPED};
use gathering_pipeline::{EdgeKind, ErrorKind};
use serde_json::{Value, json};

use super::nodes::{NodeError, Progress};
use super::progress::{AttemptResult, Phase, RunState, Status, after, capped};

/// Milliseconds from `a` (0 when the node never started) to `b`, as the node row stores them.
fn ms_between(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> i32 {
    a.map_or(0, |a| {
        (b - a).num_milliseconds().clamp(0, i64::from(i32::MAX)) as i32
    })
}

impl RunState {
    /// Node `i` completed with `output` (capped): its row is written with the next flush and
    /// `node.completed` goes with it.
    pub fn complete(&mut self, i: usize, output: Value, now: DateTime<Utc>) {
        let n = &mut self.nodes[i];
        n.status = Status::Completed;
        n.output = capped(output);
        n.completed_at = Some(now);
        n.duration_ms = ms_between(n.started_at, now);
        n.error = None;
        n.error_kind = None;
        n.wake_at = None;
        n.in_flight = false;
        n.dirty = true;
        let detail = json!({
            "attempt": n.attempt,
            "retry_count": n.attempt.saturating_sub(1),
            "duration_ms": n.duration_ms,
        });
        self.event(NODE_COMPLETED, i, detail);
    }

    /// Node `i` failed for good (no retry left): its output records the error; the run fails
    /// with it unless the failure is handled (a condition, `continue_on_error`, or an
    /// on-failure edge) or the run already failed.
    pub fn fail(&mut self, i: usize, e: NodeError, now: DateTime<Utc>) {
        let id = self.def.nodes[i].id.clone();
        let n = &mut self.nodes[i];
        n.status = Status::Failed;
        n.output = json!({"error": e.message, "node_id": id, "failed": true});
        n.error = Some(e.message.clone());
        n.error_kind = Some(e.kind);
        n.completed_at = Some(now);
        n.duration_ms = ms_between(n.started_at, now);
        n.wake_at = None;
        n.in_flight = false;
        n.dirty = true;
        let detail = json!({
            "error": e.message,
            "error_kind": e.kind.as_str(),
            "attempt": n.attempt,
            "retry_count": n.attempt.saturating_sub(1),
            "duration_ms": n.duration_ms,
        });
        self.event(NODE_FAILED, i, detail);
        let handled = self.is_condition(i)
            || self.options[i].continue_on_error
            || self.graph.succs[i]
                .iter()
                .any(|(_, k)| *k == EdgeKind::OnFailure);
        if self.phase == Phase::Main && !handled && self.failure.is_none() {
            self.failure = Some((i, e.message));
        }
    }

    pub(super) fn skip(&mut self, i: usize, now: DateTime<Utc>) {
        let n = &mut self.nodes[i];
        n.status = Status::Skipped;
        n.completed_at = Some(now);
        n.dirty = true;
        self.event(NODE_SKIPPED, i, json!({}));
    }

    /// Applies a finished attempt.
    pub fn on_result(&mut self, r: AttemptResult, now: DateTime<Utc>) {
        let i = r.idx;
        if self.nodes[i].status != Status::Running || self.nodes[i].attempt != r.attempt {
            return; // stopped meanwhile
        }
        self.nodes[i].in_flight = false;
        if r.gate == Some(Gate::Probe) {
            self.nodes[i].probe = true;
        }
        let threshold = self.options[i].breaker.failure_threshold;
        match r.outcome {
            Ok(Progress::Done(out)) => {
                let reset = self.nodes[i].probe || r.gate == Some(Gate::Allowed { dirty: true });
                if let (true, Some(key)) = (reset, r.breaker_key) {
                    self.breakers.push(Record::Success(key));
                }
                self.nodes[i].probe = false;
                self.complete(i, out, now);
            }
            Ok(Progress::ChildStarted(child)) => {
                let n = &mut self.nodes[i];
                n.child_run_id = Some(child);
                n.wake_at = Some(after(now, Duration::from_millis(100)));
                n.dirty = true;
                self.had_children = true;
            }
            Ok(Progress::ChildRunning) => {
                // Check again after a quarter of the time waited so far, 0.1 to 5 s.
                let n = &mut self.nodes[i];
                let waited = ms_between(n.started_at, now).max(0) as u64;
                let wait = Duration::from_millis((waited / 4).clamp(100, 5000));
                n.wake_at = Some(after(now, wait));
                self.had_children = true;
            }
            Err(e) => {
                let probe = std::mem::take(&mut self.nodes[i].probe);
                let counts = matches!(
                    e.kind,
                    ErrorKind::Timeout | ErrorKind::Transient | ErrorKind::Execution
                );
                let policy = &self.options[i].retry;
                let attempt = self.nodes[i].attempt;
                if let Some(key) = r.breaker_key.clone()
                    && (probe || (counts && !policy.retries(e.kind, attempt)))
                {
                    self.breakers.push(Record::Failure { key, threshold });
                }
                if policy.retries(e.kind, attempt) {
                    let wait = policy.backoff(attempt);
                    let n = &mut self.nodes[i];
                    n.attempt = attempt + 1;
                    n.wake_at = Some(after(now, wait));
                    n.error = Some(e.message.clone());
                    n.error_kind = Some(e.kind);
                    n.child_run_id = None;
                    n.dirty = true;
                    self.event(
                        NODE_RETRYING,
                        i,
                        json!({
                            "attempt": attempt + 1,
                            "error": e.message,
                            "error_kind": e.kind.as_str(),
                            "retry_in_ms": wait.as_millis() as u64,
                        }),
                    );
                } else {
                    self.fail(i, e, now);
                }
            }
        }
    }

    /// After a failure that fails the run: what runs stops (cancelled; the caller aborts the
    /// tasks), what did not start is skipped; then the failure handlers' turn, if any.
    pub fn stop_main(&mut self, now: DateTime<Utc>) {
        for i in 0..self.nodes.len() {
            if self.graph.failure_path[i] {
                continue;
            }
            match self.nodes[i].status {
                Status::Running => self.cancel_node(i, now, "stopped: the run failed"),
                Status::Pending => self.skip(i, now),
                _ => {}
            }
        }
        if self.graph.failure_path.iter().any(|f| *f) {
            self.phase = Phase::Failure;
        }
    }

    /// Marks every unfinished node cancelled (timeout).
    pub fn cancel_all(&mut self, now: DateTime<Utc>, why: &str) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].status.is_done() {
                self.cancel_node(i, now, why);
            }
        }
    }

    fn cancel_node(&mut self, i: usize, now: DateTime<Utc>, why: &str) {
        let n = &mut self.nodes[i];
        n.status = Status::Cancelled;
        if n.started_at.is_some() {
            n.error = Some(why.to_owned());
            n.error_kind = Some(ErrorKind::Cancelled);
        }
        n.completed_at = Some(now);
        n.duration_ms = ms_between(n.started_at, now);
        n.wake_at = None;
        n.in_flight = false;
        n.dirty = true;
    }

    /// The final status and error once nothing is left to do in the phase.
    pub fn outcome(&self) -> Option<(&'static str, Option<String>)> {
        let phase_done = (0..self.nodes.len())
            .filter(|&i| self.in_phase(i))
            .all(|i| self.nodes[i].status.is_done());
        match self.phase {
            Phase::Main if self.failure.is_some() => {
                // No failure handlers: stop_main left the phase; the run failed.
                phase_done.then(|| ("failed", self.failure.as_ref().map(|f| f.1.clone())))
            }
            Phase::Main => phase_done.then_some(("completed", None)),
            Phase::Failure => {
                phase_done.then(|| ("failed", self.failure.as_ref().map(|f| f.1.clone())))
            }
        }
    }

    /// Failure-path nodes of a run that succeeded are skipped.
    pub fn skip_failure_path(&mut self, now: DateTime<Utc>) {
        for i in 0..self.nodes.len() {
            if self.graph.failure_path[i] && self.nodes[i].status == Status::Pending {
                self.skip(i, now);
            }
        }
    }
}
