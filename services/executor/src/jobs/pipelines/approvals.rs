//! Approval nodes in a run: reaching one (its approval row and event), applying a decision,
//! and the I/O around waiting. While tasks run, the loop reads decisions every second; when
//! only approvals are left, the run is parked (`waiting_approval`) and its job snoozed until
//! the earliest approval timeout or the run's deadline, holding no worker and no connection. A
//! decision (any edge) wakes the job; a timeout is recorded on the approval row by whichever
//! executor wakes then, so a person and the timeout cannot both decide.

use chrono::{DateTime, Utc};
use gathering_events::publish_in;
use gathering_pipeline::approval::{self, ApprovalConfig, Decision, NODE_WAITING, NewApproval};
use gathering_pipeline::events::run_event;
use gathering_pipeline::run_state;
use serde_json::json;

use super::nodes::{Call, NodeError};
use super::progress::{Phase, RunState, Status, after, capped_to};
use super::{RunError, Services};

/// Largest context (trigger data and inputs) kept with an approval and its event.
const MAX_CONTEXT_BYTES: usize = 64 * 1024;

impl RunState {
    /// An approval node is reached: its row and event go with the next flush; it waits until
    /// its timeout (`wake_at`), or the run's end.
    pub(super) fn await_approval(&mut self, i: usize, call: &Call, now: DateTime<Utc>) {
        // Read again once references are resolved (a message they made too long fails here).
        let config = match ApprovalConfig::from_config(&call.config) {
            Ok(c) => c,
            Err(e) => {
                let e = NodeError::config(format!("Approval node '{}': {e}", call.node.id));
                return self.fail(i, e, now);
            }
        };
        let expires_at = config.timeout.map(|t| after(now, t));
        // The context goes into an event too, whose payload is limited.
        let context = capped_to(
            json!({
            "trigger_data": self.trigger_data,
                "inputs": call.inputs,
            }),
            MAX_CONTEXT_BYTES,
        );
        let n = &mut self.nodes[i];
        n.wake_at = expires_at;
        n.dirty = true;
        let detail = json!({
            "message": config.message,
            "approvers": {"roles": config.roles, "user_ids": config.user_ids},
            "on_timeout": config.on_timeout.as_str(),
            "expires_at": expires_at.map(|t| t.to_rfc3339()),
            "context": context,
        });
        self.event(NODE_WAITING, i, detail);
        self.new_approvals.push(NewApproval {
            node_id: call.node.id.clone(),
            message: config.message.clone(),
            config,
            context,
            expires_at,
        });
    }

    /// Applies an approval's decision: approve completes the node (the decision and its data
    /// as output); reject fails it (its failure edges and handlers decide what follows); a
    /// timeout's `fail` fails the run whatever its failure edges.
    pub(super) fn apply_decision(&mut self, i: usize, d: Decision, now: DateTime<Utc>) {
        match d.effect() {
            "approve" => self.complete(i, d.output(), now),
            effect => {
                let message = d.error();
                self.fail(i, NodeError::execution(message.clone()), now);
                if effect == "fail" && self.phase == Phase::Main && self.failure.is_none() {
                    self.failure = Some((i, message));
                }
            }
        }
    }

    /// Approval nodes waiting for a decision not yet read.
    pub fn waiting_approvals(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].status == Status::Running
                    && self.node_type(i) == "approval"
                    && self.nodes[i].decision.is_none()
            })
            .collect()
    }
}

/// Records the timeouts now due and reads the decisions of the waiting approvals.
pub async fn sync(services: &Services, state: &mut RunState) -> Result<(), RunError> {
    let waiting = state.waiting_approvals();
    if waiting.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let ids: Vec<&str> = waiting
        .iter()
        .map(|&i| state.def.nodes[i].id.as_str())
        .collect();
    let due: Vec<&str> = waiting
        .iter()
        .filter(|&&i| state.nodes[i].wake_at.is_some_and(|w| w <= now))
        .map(|&i| state.def.nodes[i].id.as_str())
        .collect();
    let mut client = services.pool.get().await?;
    let tx = client.transaction().await?;
    if !due.is_empty() {
        approval::expire(&tx, state.run_id, &due, now).await?;
    }
    let decided = approval::decisions(&tx, state.run_id, &ids).await?;
    tx.commit().await?;
    set_decisions(state, decided);
    Ok(())
}

fn set_decisions(state: &mut RunState, decided: Vec<Decision>) {
    for d in decided {
        if let Some(&i) = state.graph.index.get(&d.node_id)
            && state.nodes[i].status == Status::Running
        {
            state.nodes[i].decision = Some(d);
        }
    }
}

pub enum Park {
    /// The run is `waiting_approval`: snooze the job.
    Parked,
    /// A decision arrived meanwhile: continue.
    Decided,
    /// The run is no longer ours.
    Lost,
}

/// Marks the run `waiting_approval` unless a decision arrived: the run row is locked by the
/// update, and a decision locks it too, so a decision either is seen here or sees the run
/// parked (and wakes its job, whose snooze then ends at once).
pub async fn park(
    services: &Services,
    state: &mut RunState,
    runner: &str,
) -> Result<Park, RunError> {
    let waiting = state.waiting_approvals();
    let ids: Vec<&str> = waiting
        .iter()
        .map(|&i| state.def.nodes[i].id.as_str())
        .collect();
    let mut client = services.pool.get().await?;
    let tx = client.transaction().await?;
    if !run_state::park(&tx, state.run_id, runner).await? {
        return Ok(Park::Lost);
    }
    let decided = approval::decisions(&tx, state.run_id, &ids).await?;
    if !decided.is_empty() {
        tx.rollback().await?;
        set_decisions(state, decided);
        return Ok(Park::Decided);
    }
    publish_in(
        &tx,
        &[run_event(
            state.pipeline_id,
            state.run_id,
            "waiting_approval",
            None,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(Park::Parked)
}
