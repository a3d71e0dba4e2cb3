//! Taking a run up at the start of a job attempt, before `run`'s loop continues it: the claim,
//! the definition snapshot read and checked (a run that does not validate fails here, with
//! its event), and the node states earlier attempts recorded, so completed nodes are never run
//! again and a run that had failed resumes with its failure handlers.

use std::time::Duration;

use gathering_db::GenericClient;
use gathering_events::publish_in;
use gathering_pipeline::events::run_event;
use gathering_pipeline::run_state::{self, Claimed};
use gathering_pipeline::{Definition, EdgeKind, ErrorKind, Graph, NodeOptions, NodeRunRow, store};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::progress::{NodeState, Phase, RunState, Status};
use super::{RunError, Services};

/// What a claimed run's definition snapshot gives.
struct Parsed {
    def: Definition,
    options: Vec<NodeOptions>,
    graph: Graph,
    /// `None` when the graph has a cycle.
    topo: Option<Vec<usize>>,
    /// Why the run cannot execute (parse, validation and node option errors).
    errors: Vec<String>,
}

/// Claims the run and rebuilds its state; with it the deadline and the timeout (seconds).
/// `None` when there is nothing to execute.
pub async fn load(
    services: &Services,
    run_id: i64,
    runner: &str,
    cancel: CancellationToken,
) -> Result<Option<(RunState, Instant, i32)>, RunError> {
    let mut client = services.pool.get().await?;
    let tx = client.transaction().await?;
    // A claim lost in a database crash leaves the run pending, and the first write of this
    // executor (a durable commit, after the claim in the WAL) cannot succeed without it: the
    // claim need not wait for its own flush.
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .await?;
    let Some(claimed) = run_state::claim(&tx, run_id, runner).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    let parsed = parse(&claimed);
    if !parsed.errors.is_empty() || parsed.topo.is_none() {
        fail_invalid(&tx, run_id, runner, &claimed, &parsed.errors).await?;
        tx.commit().await?;
        return Ok(None);
    }
    let nodes = recorded_nodes(&tx, run_id, &claimed, &parsed).await?;
    tx.commit().await?;
    Ok(Some(rebuild(run_id, claimed, parsed, nodes, cancel)))
}

/// Reads the definition snapshot and checks it: the definition, its node options, its graph
/// and every error found (an unparseable snapshot gives an empty definition and its errors).
fn parse(claimed: &Claimed) -> Parsed {
    let (def, settings, mut errors) = match Definition::from_snapshot(&claimed.definition) {
        Ok((def, settings)) => {
            let errors = gathering_pipeline::validate(&def);
            (def, settings, errors)
        }
        Err(parse) => (
            Definition::default(),
            Default::default(),
            parse.iter().map(ToString::to_string).collect(),
        ),
    };
    let options: Vec<NodeOptions> = def
        .nodes
        .iter()
        .filter_map(|n| match NodeOptions::of(n, &settings) {
            Ok(o) => Some(o),
            Err(e) => {
                errors.push(format!("Node '{}' has invalid options: {e}", n.id));
                None
            }
        })
        .collect();
    let graph = Graph::build(&def);
    let topo = graph.topo_order();
    Parsed {
        def,
        options,
        graph,
        topo,
        errors,
    }
}

/// Ends a run that cannot execute as `failed` ("Validation failed: …") with its event, in the
/// claim's transaction.
async fn fail_invalid<C: GenericClient>(
    tx: &C,
    run_id: i64,
    runner: &str,
    claimed: &Claimed,
    errors: &[String],
) -> Result<(), RunError> {
    let message = format!("Validation failed: {}", errors.join("; "));
    run_state::finish(
        tx,
        run_id,
        runner,
        "failed",
        Some(&message),
        &json!([]),
        claimed.first,
    )
    .await?;
    publish_in(
        tx,
        &[run_event(
            claimed.pipeline_id,
            run_id,
            "failed",
            Some(&message),
        )],
    )
    .await?;
    Ok(())
}

/// The node states earlier attempts recorded, pending for the others. A first start is
/// written with the first changes (node rows, `started`, the count); only a retry has rows
/// already: the reused ones.
async fn recorded_nodes<C: GenericClient>(
    tx: &C,
    run_id: i64,
    claimed: &Claimed,
    parsed: &Parsed,
) -> Result<Vec<NodeState>, RunError> {
    let mut nodes = vec![NodeState::pending(); parsed.def.nodes.len()];
    if claimed.first && claimed.retry_of.is_none() {
        return Ok(nodes);
    }
    for row in store::node_runs_of(tx, &[run_id]).await? {
        if claimed.first && row.status != "reused" {
            continue;
        }
        if let Some(&i) = parsed.graph.index.get(&row.node_id) {
            nodes[i] = node_state(row);
        }
    }
    Ok(nodes)
}

/// A node's state as its row recorded it; a running node is at least in its first attempt.
fn node_state(row: NodeRunRow) -> NodeState {
    let mut node = NodeState {
        status: Status::parse(&row.status),
        attempt: row.attempt.max(0) as u32,
        wake_at: row.wake_at,
        input: row.input_data,
        output: row.output_data,
        error: row.error_message,
        error_kind: row.error_kind.as_deref().and_then(ErrorKind::parse),
        started_at: row.started_at,
        completed_at: row.completed_at,
        duration_ms: row.duration_ms,
        child_run_id: row.child_run_id,
        in_flight: false,
        probe: false,
        decision: None,
        dirty: false,
    };
    if node.status == Status::Running && node.attempt == 0 {
        node.attempt = 1;
    }
    node
}

/// The run's state as the loop takes it, its deadline and its timeout. The deadline counts
/// from the run's start by the database's clock (`db_now`), whichever executor started it.
fn rebuild(
    run_id: i64,
    claimed: Claimed,
    parsed: Parsed,
    nodes: Vec<NodeState>,
    cancel: CancellationToken,
) -> (RunState, Instant, i32) {
    let had_children = nodes.iter().any(|n| n.child_run_id.is_some());
    let deadline_at =
        claimed.started_at + chrono::Duration::seconds(i64::from(claimed.timeout_seconds));
    let left = (deadline_at - claimed.db_now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    let mut state = RunState {
        run_id,
        pipeline_id: claimed.pipeline_id,
        depth: claimed.depth,
        def: parsed.def,
        graph: parsed.graph,
        topo: parsed.topo.unwrap_or_default(),
        options: parsed.options,
        trigger_data: claimed.trigger_data,
        nodes,
        phase: Phase::Main,
        failure: None,
        current_node: None,
        events: if claimed.first {
            vec![run_event(claimed.pipeline_id, run_id, "running", None)]
        } else {
            Vec::new()
        },
        breakers: Vec::new(),
        cancel,
        had_children,
        first_pending: claimed.first,
        new_approvals: Vec::new(),
    };
    restore_phase(&mut state);
    (state, Instant::now() + left, claimed.timeout_seconds)
}

/// A resumed run that had already failed continues with its failure handlers.
fn restore_phase(state: &mut RunState) {
    for i in 0..state.nodes.len() {
        if state.graph.failure_path[i] && state.nodes[i].status != Status::Pending {
            state.phase = Phase::Failure;
        }
    }
    let failed = (0..state.nodes.len()).find(|&i| {
        !state.graph.failure_path[i]
            && state.nodes[i].status == Status::Failed
            && state.def.nodes[i].node_type != "condition"
            && !state.options[i].continue_on_error
            && !state.graph.succs[i]
                .iter()
                .any(|(_, k)| *k == EdgeKind::OnFailure)
    });
    if let Some(i) = failed {
        let message = state.nodes[i].error.clone().unwrap_or_default();
        state.failure = Some((i, message));
    }
}
