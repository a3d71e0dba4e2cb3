//! A run's state in memory and how it moves forward, without I/O: which nodes are ready,
//! skipped or due again, and starting their attempts. What a finished attempt means and when
//! the run is over are in `results`.
//!
//! The rules (A13, extended with failure edges and handlers):
//! - An edge from P is *taken* when P completed (a condition only when its result is true),
//!   or P failed with `continue_on_error`; a failure edge (`condition: "on_failure"`) is taken
//!   when P failed.
//! - A node runs once all its predecessors are decided and at least one incoming edge is
//!   taken, with `{pred_id: output}` of the taken ones as inputs; when none is taken it is
//!   skipped (so a false condition skips the branch it guards, down to the next join that
//!   another branch reaches). A root runs at once.
//! - A failed node fails the run unless it is a condition, has `continue_on_error`, or has a
//!   failure edge (its handlers run instead). Then the other nodes stop (in flight: cancelled;
//!   not started: skipped) and the pipeline-level failure handlers (`failure_handler: true`)
//!   run with what they lead to; the run ends `failed` with the first error.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_events::NewEvent;
use gathering_pipeline::approval::{Decision, NewApproval};
use gathering_pipeline::circuits::{Gate, Record};
use gathering_pipeline::events::{NODE_STARTED, node_event};
use gathering_pipeline::{EdgeKind, ErrorKind, Graph, NodeOptions};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::nodes::{self, Call, NodeError, Plan, Progress};
use super::template::{self, Scope};

/// Largest output or input stored for a node (and passed on); larger ones are truncated.
const MAX_STORED_BYTES: usize = 256 * 1024;
/// Most nodes of one run executing at once.
pub const MAX_IN_FLIGHT: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    Skipped,
    Cancelled,
    /// A retry took the node's output from the run it retries; never executed here.
    Reused,
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            "skipped" => Status::Skipped,
            "cancelled" => Status::Cancelled,
            "reused" => Status::Reused,
            _ => Status::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
            Status::Reused => "reused",
        }
    }

    pub fn is_done(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }
}

#[derive(Debug, Clone)]
pub struct NodeState {
    pub status: Status,
    pub attempt: u32,
    pub wake_at: Option<DateTime<Utc>>,
    pub input: Value,
    /// The output; for a failed node `{error, node_id, failed: true}` (what its handlers and
    /// `continue_on_error` successors receive).
    pub output: Value,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: i32,
    pub child_run_id: Option<i64>,
    pub in_flight: bool,
    /// This attempt holds the half-open probe of its circuit.
    pub probe: bool,
    /// An approval node's decision, read from its approval row, not applied yet.
    pub decision: Option<Decision>,
    pub dirty: bool,
}

impl NodeState {
    pub fn pending() -> Self {
        Self {
            status: Status::Pending,
            attempt: 0,
            wake_at: None,
            input: json!({}),
            output: json!({}),
            error: None,
            error_kind: None,
            started_at: None,
            completed_at: None,
            duration_ms: 0,
            child_run_id: None,
            in_flight: false,
            probe: false,
            decision: None,
            dirty: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Main,
    /// The run failed; the failure handlers run.
    Failure,
}

/// What one finished attempt reports.
pub struct AttemptResult {
    pub idx: usize,
    pub attempt: u32,
    pub outcome: Result<Progress, NodeError>,
    pub gate: Option<Gate>,
    pub breaker_key: Option<String>,
}

pub struct RunState {
    pub run_id: i64,
    pub pipeline_id: i64,
    pub depth: i32,
    pub def: gathering_pipeline::Definition,
    pub graph: Graph,
    pub topo: Vec<usize>,
    pub options: Vec<NodeOptions>,
    pub trigger_data: Value,
    pub nodes: Vec<NodeState>,
    pub phase: Phase,
    /// The first failure that failed the run: node and message.
    pub failure: Option<(usize, String)>,
    pub current_node: Option<String>,
    pub events: Vec<NewEvent>,
    pub breakers: Vec<Record>,
    /// Cancelled when the run is cancelled; node calls get child tokens.
    pub cancel: CancellationToken,
    pub had_children: bool,
    /// The run's first start is not written yet (it goes with the first flush).
    pub first_pending: bool,
    /// Approval rows to create with the next flush (nodes just reached).
    pub new_approvals: Vec<NewApproval>,
}

/// Truncates what is too large to store.
pub(super) fn capped(v: Value) -> Value {
    capped_to(v, MAX_STORED_BYTES)
}

/// Truncates what is larger than `max` bytes serialised.
pub(super) fn capped_to(v: Value, max: usize) -> Value {
    let size = serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len());
    if size <= max {
        return v;
    }
    let preview: String = v.to_string().chars().take(4096).collect();
    json!({"truncated": true, "size_bytes": size, "preview": preview})
}

pub(super) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The template scope of a run: node outputs by id, and `trigger_data`.
struct RunScope<'a>(&'a RunState);

impl Scope for RunScope<'_> {
    fn root(&self, name: &str) -> Option<&Value> {
        if let Some(&i) = self.0.graph.index.get(name) {
            let n = &self.0.nodes[i];
            return matches!(
                n.status,
                Status::Completed | Status::Failed | Status::Reused
            )
            .then_some(&n.output);
        }
        (name == "trigger_data").then_some(&self.0.trigger_data)
    }
}

enum Ready {
    Wait,
    Skip,
    Run(Map<String, Value>),
}

impl RunState {
    pub(super) fn node_type(&self, i: usize) -> &str {
        &self.def.nodes[i].node_type
    }

    pub(super) fn is_condition(&self, i: usize) -> bool {
        self.node_type(i) == "condition"
    }

    pub(super) fn in_phase(&self, i: usize) -> bool {
        self.graph.failure_path[i] == (self.phase == Phase::Failure)
    }

    pub fn in_flight(&self) -> usize {
        self.nodes.iter().filter(|n| n.in_flight).count()
    }

    pub(super) fn event(&mut self, kind: &str, i: usize, detail: Value) {
        let node = &self.def.nodes[i];
        self.events.push(node_event(
            kind,
            self.pipeline_id,
            self.run_id,
            &node.id,
            &node.node_type,
            detail,
        ));
    }

    /// Whether the edge from `p` (of `kind`) is taken.
    fn taken(&self, p: usize, kind: EdgeKind) -> bool {
        let n = &self.nodes[p];
        match kind {
            EdgeKind::OnFailure => n.status == Status::Failed,
            EdgeKind::Normal => match n.status {
                Status::Completed | Status::Reused => {
                    !self.is_condition(p)
                        || n.output.get("result").is_some_and(nodes::condition::truthy)
                }
                Status::Failed => self.options[p].continue_on_error && !self.is_condition(p),
                _ => false,
            },
        }
    }

    fn readiness(&self, i: usize) -> Ready {
        let preds = &self.graph.preds[i];
        if preds.is_empty() {
            if self.phase == Phase::Failure {
                // A failure handler: it gets the error that failed the run.
                let mut inputs = Map::new();
                if let Some((f, _)) = &self.failure {
                    inputs.insert(self.def.nodes[*f].id.clone(), self.nodes[*f].output.clone());
                }
                return Ready::Run(inputs);
            }
            return Ready::Run(Map::new());
        }
        let mut inputs = Map::new();
        for &(p, kind) in preds {
            if !self.nodes[p].status.is_done() {
                return Ready::Wait;
            }
            if self.taken(p, kind) {
                inputs.insert(self.def.nodes[p].id.clone(), self.nodes[p].output.clone());
            }
        }
        if inputs.is_empty() {
            Ready::Skip
        } else {
            Ready::Run(inputs)
        }
    }

    /// Whether starting node `i` makes a task (and so needs room in flight).
    fn is_task(&self, i: usize) -> bool {
        let node = &self.def.nodes[i];
        match node.node_type.as_str() {
            "agent" | "tool" => true,
            "action" => matches!(
                node.config_value("action", Some("action_type"))
                    .and_then(Value::as_str),
                Some("send_notification" | "call_api" | "execute_pipeline")
            ),
            _ => false,
        }
    }

    /// Starts what can start, skips what cannot run, resumes what is due; repeats until
    /// nothing changes. Calls to run as tasks are pushed on `spawn`.
    pub fn advance(&mut self, now: DateTime<Utc>, spawn: &mut Vec<(usize, Call)>) {
        loop {
            let mut changed = false;
            for pos in 0..self.topo.len() {
                if self.phase == Phase::Main && self.failure.is_some() {
                    // The run failed: nothing more starts (the caller stops the rest).
                    return;
                }
                let i = self.topo[pos];
                if !self.in_phase(i) {
                    continue;
                }
                let room = self.in_flight() < MAX_IN_FLIGHT;
                match self.nodes[i].status {
                    Status::Pending => match self.readiness(i) {
                        Ready::Wait => {}
                        Ready::Skip => {
                            self.skip(i, now);
                            changed = true;
                        }
                        Ready::Run(inputs) => {
                            if self.is_task(i) && !room {
                                continue;
                            }
                            self.start(i, inputs, now, spawn);
                            changed = true;
                        }
                    },
                    // A waiting approval moves only on its decision (a timeout is one too:
                    // the executor records it on the approval row first).
                    Status::Running if self.node_type(i) == "approval" => {
                        if let Some(d) = self.nodes[i].decision.take() {
                            self.apply_decision(i, d, now);
                            changed = true;
                        }
                    }
                    Status::Running
                        if !self.nodes[i].in_flight
                            && self.nodes[i].wake_at.is_none_or(|w| w <= now) =>
                    {
                        if self.node_type(i) == "delay" {
                            let out = self.nodes[i].input.clone();
                            self.complete(i, out, now);
                        } else {
                            if !room {
                                continue;
                            }
                            let inputs = match self.readiness(i) {
                                Ready::Run(inputs) => inputs,
                                _ => Map::new(),
                            };
                            self.begin_attempt(i, inputs, now, spawn);
                        }
                        changed = true;
                    }
                    _ => {}
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn start(
        &mut self,
        i: usize,
        inputs: Map<String, Value>,
        now: DateTime<Utc>,
        spawn: &mut Vec<(usize, Call)>,
    ) {
        let n = &mut self.nodes[i];
        n.status = Status::Running;
        n.attempt = 1;
        n.started_at = Some(now);
        n.input = capped(Value::Object(inputs.clone()));
        n.dirty = true;
        self.current_node = Some(self.def.nodes[i].id.clone());
        self.event(NODE_STARTED, i, json!({"attempt": 1}));
        self.begin_attempt(i, inputs, now, spawn);
    }

    /// The call of node `i`'s current attempt: its config with references resolved.
    fn call(&self, i: usize, inputs: Map<String, Value>) -> Result<Call, NodeError> {
        let node = &self.def.nodes[i];
        let config = template::resolve(&Value::Object(node.config.clone()), &RunScope(self))
            .map_err(|e| NodeError::config(format!("Node '{}': {e}", node.id)))?;
        let Value::Object(config) = config else {
            return Err(NodeError::config(format!(
                "Node '{}': config must be an object",
                node.id
            )));
        };
        Ok(Call {
            run_id: self.run_id,
            pipeline_id: self.pipeline_id,
            depth: self.depth,
            node: node.clone(),
            config,
            inputs,
            trigger_data: self.trigger_data.clone(),
            attempt: self.nodes[i].attempt.max(1),
            child_run_id: self.nodes[i].child_run_id,
            cancel: self.cancel.child_token(),
        })
    }

    fn begin_attempt(
        &mut self,
        i: usize,
        inputs: Map<String, Value>,
        now: DateTime<Utc>,
        spawn: &mut Vec<(usize, Call)>,
    ) {
        let call = match self.call(i, inputs) {
            Ok(c) => c,
            Err(e) => return self.fail(i, e, now),
        };
        match nodes::plan(&call) {
            Plan::Now(Ok(out)) => self.complete(i, out, now),
            Plan::Now(Err(e)) => self.fail(i, e, now),
            Plan::Wait(d) => {
                let n = &mut self.nodes[i];
                n.wake_at = Some(after(now, d));
                n.dirty = true;
            }
            Plan::Approval => self.await_approval(i, &call, now),
            Plan::Task => {
                self.nodes[i].in_flight = true;
                spawn.push((i, call));
            }
        }
    }

    /// The earliest time a waiting node continues.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.nodes
            .iter()
            .filter(|n| n.status == Status::Running && !n.in_flight)
            .filter_map(|n| n.wake_at)
            .min()
    }
}
