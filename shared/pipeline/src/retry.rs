//! Retrying a failed (or cancelled, or timed-out) run from where it failed: a new run linked to
//! the old one (`retry_of`) that takes the outputs of the nodes that completed in the old run
//! (its node rows are `reused`, never executed: their side effects are not repeated) and
//! executes the rest with the pipeline's current definition.
//!
//! A node is reused when it completed (or was itself reused) in the old run, is not on the
//! failure path (handlers run again only if the new run fails), is not `from_node_id` or
//! below it, and everything it depends on is settled: reused, a trigger (triggers always run
//! again, with the retry's `trigger_data`), or skipped for reasons that are themselves settled.
//! The reused and the failed nodes must still be in the definition with the same type,
//! otherwise the retry is refused (409) with the differences.

use std::collections::{HashMap, HashSet};

use gathering_db::GenericClient;
use serde_json::Value;

use crate::PipelineError;
use crate::graph::Graph;
use crate::model::Definition;
use crate::record::{NodeRunRow, RunRow, run_columns};
use crate::store::{get_pipeline, insert_node_rows, node_runs_of, run_job};
use crate::validate::validate;

const LOCK_OLD_SQL: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", definition FROM circle.pipeline_runs WHERE id = $1 AND pipeline_id = $2 FOR UPDATE"
);

const INSERT_RETRY_SQL: &str = concat!(
    "INSERT INTO circle.pipeline_runs (pipeline_id, status, trigger_data, definition, ",
    "timeout_seconds, retry_of) VALUES ($1, 'pending', $2, $3, $4, $5) RETURNING ",
    run_columns!()
);

const REUSE_SQL: &str = "
UPDATE circle.pipeline_node_runs n SET
    status = 'reused', input_data = u.input, output_data = u.output, started_at = now(),
    completed_at = now(), duration_ms = 0, attempt = 0, retry_count = 0
FROM unnest($2::text[], $3::jsonb[], $4::jsonb[]) AS u(node_id, input, output)
WHERE n.run_id = $1 AND n.node_id = u.node_id";

/// What a retry asks for.
#[derive(Debug, Default)]
pub struct RetryRequest<'a> {
    pub from_node_id: Option<&'a str>,
    pub trigger_data: Option<&'a Value>,
}

/// The node indices (in `def`) to reuse from the old run's node rows.
pub fn reusable(
    def: &Definition,
    graph: &Graph,
    old: &[NodeRunRow],
    from: Option<usize>,
) -> Vec<usize> {
    let by_id: HashMap<&str, &NodeRunRow> = old.iter().map(|n| (n.node_id.as_str(), n)).collect();
    let mut reset = vec![false; def.nodes.len()];
    if let Some(f) = from {
        let mut stack = vec![f];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reset[i], true) {
                stack.extend(graph.succs[i].iter().map(|(s, _)| *s));
            }
        }
    }
    let Some(order) = graph.topo_order() else {
        return Vec::new();
    };
    let mut reuse = vec![false; def.nodes.len()];
    let mut settled = vec![false; def.nodes.len()];
    for i in order {
        let node = &def.nodes[i];
        let preds_settled = graph.preds[i].iter().all(|(p, _)| settled[*p]);
        let status = by_id
            .get(node.id.as_str())
            .filter(|r| r.node_type == node.node_type)
            .map(|r| r.status.as_str());
        if node.node_type == "trigger" && !reset[i] {
            settled[i] = preds_settled;
            continue;
        }
        if reset[i] || graph.failure_path[i] || !preds_settled {
            continue;
        }
        match status {
            Some("completed" | "reused") => {
                reuse[i] = true;
                settled[i] = true;
            }
            Some("skipped") => settled[i] = true,
            _ => {}
        }
    }
    (0..def.nodes.len()).filter(|&i| reuse[i]).collect()
}

/// What changed in `def` for the nodes the retry relies on (reused and failed in the old run;
/// `handlers`: the old run's failure-path nodes, which ran because it failed and do not count).
fn differences(
    def: &Definition,
    graph: &Graph,
    old: &[NodeRunRow],
    handlers: &HashSet<String>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for row in old {
        if !matches!(row.status.as_str(), "completed" | "reused" | "failed")
            || handlers.contains(&row.node_id)
        {
            continue;
        }
        match graph.index.get(&row.node_id) {
            None => diffs.push(format!(
                "node '{}' ({}) is no longer in the pipeline",
                row.node_id, row.node_type
            )),
            Some(&i) if def.nodes[i].node_type != row.node_type => diffs.push(format!(
                "node '{}' is now '{}' (was '{}')",
                row.node_id, def.nodes[i].node_type, row.node_type
            )),
            Some(_) => {}
        }
    }
    diffs
}

/// `POST /pipelines/{id}/runs/{run_id}/retry`: creates the retry run (pending, its reused node
/// rows, its job) in one transaction.
pub async fn retry_run(
    client: &mut gathering_db::Client,
    pipeline_id: i64,
    run_id: i64,
    req: &RetryRequest<'_>,
) -> Result<RunRow, PipelineError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(LOCK_OLD_SQL, &[&run_id, &pipeline_id])
        .await?
        .ok_or(PipelineError::RunNotFound)?;
    let old = RunRow::from_row(&row)?;
    let old_def: Option<Value> = row.try_get("definition")?;
    let handlers: HashSet<String> = old_def
        .as_ref()
        .and_then(|d| Definition::from_snapshot(d).ok())
        .map(|(d, _)| {
            let g = Graph::build(&d);
            d.nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| g.failure_path[*i])
                .map(|(_, n)| n.id.clone())
                .collect()
        })
        .unwrap_or_default();
    if !matches!(old.status.as_str(), "failed" | "cancelled" | "timeout") {
        return Err(PipelineError::NotRetryable(old.status));
    }
    let pipeline = get_pipeline(&tx, pipeline_id)
        .await?
        .ok_or(PipelineError::NotFound)?;
    if pipeline.status != "active" {
        return Err(PipelineError::NotActive(pipeline.status));
    }
    let def = pipeline.definition().map_err(|e| {
        let parts: Vec<String> = e.iter().map(ToString::to_string).collect();
        PipelineError::Conflict(format!("The pipeline does not parse: {}", parts.join("; ")))
    })?;
    let errors = validate(&def);
    if !errors.is_empty() {
        return Err(PipelineError::Conflict(format!(
            "The pipeline does not validate: {}",
            errors.join("; ")
        )));
    }
    let graph = Graph::build(&def);
    let from = match req.from_node_id {
        None => None,
        Some(id) => Some(*graph.index.get(id).ok_or_else(|| {
            PipelineError::UnknownNode(format!("Node '{id}' is not in the pipeline"))
        })?),
    };
    let old_nodes = node_runs_of(&tx, &[run_id]).await?;
    let diffs = differences(&def, &graph, &old_nodes, &handlers);
    if !diffs.is_empty() {
        return Err(PipelineError::Conflict(format!(
            "The pipeline changed since run {run_id}: {}",
            diffs.join("; ")
        )));
    }
    let reuse = reusable(&def, &graph, &old_nodes, from);
    let trigger_data = req.trigger_data.unwrap_or(&old.trigger_data);
    let settings = &pipeline.settings;
    let row = tx
        .query_one(
            INSERT_RETRY_SQL,
            &[
                &pipeline_id,
                trigger_data,
                &def.snapshot(settings),
                &settings.timeout_seconds,
                &run_id,
            ],
        )
        .await?;
    let run = RunRow::from_row(&row)?;
    insert_node_rows(&tx, run.id, &def).await?;
    let by_id: HashMap<&str, &NodeRunRow> =
        old_nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
    let mut ids = Vec::with_capacity(reuse.len());
    let mut inputs = Vec::with_capacity(reuse.len());
    let mut outputs = Vec::with_capacity(reuse.len());
    for i in reuse {
        let id = def.nodes[i].id.as_str();
        if let Some(r) = by_id.get(id) {
            ids.push(id);
            inputs.push(&r.input_data);
            outputs.push(&r.output_data);
        }
    }
    tx.execute(REUSE_SQL, &[&run.id, &ids, &inputs, &outputs])
        .await?;
    gathering_queue::enqueue_in(&tx, &run_job(run.id)).await?;
    tx.commit().await?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_definition;
    use chrono::Utc;
    use serde_json::json;

    fn row(id: &str, t: &str, status: &str) -> NodeRunRow {
        NodeRunRow {
            id: 0,
            run_id: 1,
            node_id: id.into(),
            node_type: t.into(),
            status: status.into(),
            input_data: json!({}),
            output_data: json!({"id": id}),
            error_message: None,
            error_kind: None,
            retry_count: 0,
            attempt: 1,
            started_at: None,
            completed_at: None,
            duration_ms: 0,
            wake_at: None,
            child_run_id: None,
            created_at: Utc::now(),
        }
    }

    fn ids(def: &Definition, idx: Vec<usize>) -> Vec<&str> {
        idx.into_iter().map(|i| def.nodes[i].id.as_str()).collect()
    }

    #[test]
    fn reuses_what_completed_above_the_failure() {
        let def = parse_definition(
            &json!([
                {"id": "t", "type": "trigger"},
                {"id": "a", "type": "parallel"},
                {"id": "b", "type": "parallel"},
                {"id": "c", "type": "parallel"},
                {"id": "d", "type": "parallel"},
                {"id": "h", "type": "parallel", "config": {"failure_handler": true}},
            ]),
            &json!([{"from": "t", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "c"},
                    {"from": "c", "to": "d"}]),
        )
        .unwrap();
        let g = Graph::build(&def);
        let old = vec![
            row("t", "trigger", "completed"),
            row("a", "parallel", "completed"),
            row("b", "parallel", "reused"),
            row("c", "parallel", "failed"),
            row("d", "parallel", "skipped"),
            row("h", "parallel", "completed"),
        ];
        assert_eq!(ids(&def, reusable(&def, &g, &old, None)), vec!["a", "b"]);
        assert_eq!(ids(&def, reusable(&def, &g, &old, Some(2))), vec!["a"]);
        let handlers = HashSet::from(["h".to_owned()]);
        assert!(differences(&def, &g, &old, &handlers).is_empty());
        let changed = parse_definition(
            &json!([{"id": "t", "type": "trigger"}, {"id": "a", "type": "tool"}]),
            &json!([]),
        )
        .unwrap();
        assert_eq!(
            differences(&changed, &Graph::build(&changed), &old, &handlers),
            vec![
                "node 'a' is now 'tool' (was 'parallel')",
                "node 'b' (parallel) is no longer in the pipeline",
                "node 'c' (parallel) is no longer in the pipeline",
            ]
        );
    }
}
