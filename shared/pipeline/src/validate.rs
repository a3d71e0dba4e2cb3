//! `validate_pipeline_dag` (BEHAVIOUR.md A13): a list of error strings, empty when the
//! pipeline can run. The A13 checks keep their exact wording and order (no nodes stops
//! everything; structural errors stop before the cycle check); the checks this implementation
//! adds (duplicate ids, the `tool`, `delay` and failure-handler rules, node options) come after
//! the ones they extend.

use serde_json::Value;

use crate::graph::Graph;
use crate::model::{Definition, NODE_TYPES, Node, Settings, py_list, valid_types_repr};
use crate::options::NodeOptions;

/// Longest delay a node may ask for.
pub const MAX_DELAY_SECONDS: f64 = 30.0 * 86400.0;

/// What an `action` node can do. Anything else is refused here and fails at run time: nothing
/// reports an action as executed that was not.
pub const ACTIONS: &[&str] = &["send_notification", "call_api", "execute_pipeline"];

pub fn validate(def: &Definition) -> Vec<String> {
    if def.nodes.is_empty() {
        return vec!["Pipeline must have at least one node".to_owned()];
    }
    let mut errors = structure(def);
    if !errors.is_empty() {
        return errors;
    }

    let graph = Graph::build(def);
    if let Some(cycle) = graph.find_cycle() {
        errors.push(format!(
            "Pipeline contains a cycle: {}",
            py_list(cycle.iter().map(|&i| def.nodes[i].id.as_str()))
        ));
    }

    for (i, node) in def.nodes.iter().enumerate() {
        let has_incoming = !graph.preds[i].is_empty();
        check_config(node, has_incoming, &mut errors);
        if node.is_failure_handler() && has_incoming {
            errors.push(format!(
                "Failure handler node '{}' must not have incoming edges",
                node.id
            ));
        }
        if let Err(e) = NodeOptions::of(node, &Settings::default()) {
            errors.push(format!("Node '{}' has invalid options: {e}", node.id));
        }
    }
    errors
}

/// The structural errors, which stop validation before the cycle check: invalid node types,
/// duplicate ids, edges to or from unknown nodes.
fn structure(def: &Definition) -> Vec<String> {
    let mut errors = Vec::new();
    for node in &def.nodes {
        if !NODE_TYPES.contains(&node.node_type.as_str()) {
            errors.push(format!(
                "Node '{}' has invalid type: '{}'. Valid types: {}",
                node.id,
                node.node_type,
                valid_types_repr()
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for node in &def.nodes {
        if !seen.insert(node.id.as_str()) {
            errors.push(format!("Duplicate node id: '{}'", node.id));
        }
    }
    for edge in &def.edges {
        if !seen.contains(edge.from.as_str()) {
            errors.push(format!(
                "Edge '{}' references unknown source node: '{}'",
                edge.id, edge.from
            ));
        }
        if !seen.contains(edge.to.as_str()) {
            errors.push(format!(
                "Edge '{}' references unknown target node: '{}'",
                edge.id, edge.to
            ));
        }
    }
    errors
}

/// The config a node's type requires.
fn check_config(node: &Node, has_incoming: bool, errors: &mut Vec<String>) {
    let has = |key: &str, alias: Option<&str>| {
        node.config.contains_key(key) || alias.is_some_and(|a| node.config.contains_key(a))
    };
    match node.node_type.as_str() {
        "agent" => {
            if !node.config.contains_key("agent_id") {
                errors.push(format!(
                    "Agent node '{}' is missing required config key 'agent_id'",
                    node.id
                ));
            }
            if !has("task", Some("task_prompt")) {
                errors.push(format!(
                    "Agent node '{}' is missing required config key 'task'",
                    node.id
                ));
            }
        }
        "condition" if !node.config.contains_key("condition") => {
            errors.push(format!(
                "Condition node '{}' is missing required config key 'condition'",
                node.id
            ));
        }
        "action" => errors.extend(action_error(node)),
        "tool" if !has("tool", Some("tool_name")) => {
            errors.push(format!(
                "Tool node '{}' is missing required config key 'tool'",
                node.id
            ));
        }
        "delay" if !delay_ok(node) => {
            errors.push(format!(
                "Delay node '{}' has invalid config 'seconds': must be a number from 0 to {MAX_DELAY_SECONDS}",
                node.id
            ));
        }
        "approval" => {
            if let Err(e) = crate::approval::ApprovalConfig::of(node) {
                errors.push(format!(
                    "Approval node '{}' has invalid config: {e}",
                    node.id
                ));
            }
            // Reached from the run's start (or a failure handler of its own).
            if !has_incoming && !node.is_failure_handler() {
                errors.push(format!(
                    "Approval node '{}' must follow another node (it has no incoming edge)",
                    node.id
                ));
            }
        }
        _ => {}
    }
}

/// An `action` node without an action, or with one it cannot do.
fn action_error(node: &Node) -> Option<String> {
    match node.config_value("action", Some("action_type")) {
        None | Some(Value::Null) => Some(format!(
            "Action node '{}' is missing required config key 'action'",
            node.id
        )),
        Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => None,
        Some(other) => Some(format!(
            "Action node '{}' has unknown action {other}. Valid actions: {}",
            node.id,
            py_list(ACTIONS.iter().copied())
        )),
    }
}

/// A `delay` node's seconds: absent, a template, or a number from 0 to [`MAX_DELAY_SECONDS`].
fn delay_ok(node: &Node) -> bool {
    match node.config_value("seconds", Some("delay_seconds")) {
        None => true,
        // Templates resolve at run time.
        Some(Value::String(s)) => s.contains("{{"),
        Some(v) => v
            .as_f64()
            .is_some_and(|s| s.is_finite() && (0.0..=MAX_DELAY_SECONDS).contains(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_definition;
    use serde_json::json;

    fn check(nodes: Value, edges: Value) -> Vec<String> {
        validate(&parse_definition(&nodes, &edges).unwrap())
    }

    #[test]
    fn a13_messages() {
        assert_eq!(
            check(json!([]), json!([])),
            vec!["Pipeline must have at least one node"]
        );
        assert_eq!(
            check(
                json!([{"id": "a", "type": "bogus"}]),
                json!([{"id": "e1", "from": "a", "to": "zz"}, {"id": "e2", "from": "yy", "to": "a"}])
            ),
            vec![
                "Node 'a' has invalid type: 'bogus'. Valid types: ['action', 'agent', 'approval', 'condition', 'delay', 'parallel', 'tool', 'trigger']",
                "Edge 'e1' references unknown target node: 'zz'",
                "Edge 'e2' references unknown source node: 'yy'",
            ]
        );
        assert_eq!(
            check(
                json!([
                    {"id": "a", "type": "agent", "config": {}},
                    {"id": "b", "type": "condition", "config": {"condition": null}},
                    {"id": "c", "type": "condition", "config": {}},
                ]),
                json!([
                    {"id": "e1", "from": "a", "to": "b"},
                    {"id": "e2", "from": "b", "to": "a"},
                ])
            ),
            vec![
                "Pipeline contains a cycle: ['a', 'b', 'a']",
                "Agent node 'a' is missing required config key 'agent_id'",
                "Agent node 'a' is missing required config key 'task'",
                "Condition node 'c' is missing required config key 'condition'",
            ]
        );
    }

    #[test]
    fn approval_nodes() {
        assert!(
            check(
                json!([
                    {"id": "t", "type": "trigger"},
                    {"id": "ok", "type": "approval", "config": {"message": "Ship {{t.v}}?",
                        "approvers": {"roles": ["admin"]}, "timeout_seconds": 864000, "on_timeout": "fail"}},
                ]),
                json!([{"from": "t", "to": "ok"}])
            )
            .is_empty()
        );
        assert_eq!(
            check(
                json!([
                    {"id": "ok", "type": "approval", "config": {"approvers": {"roles": ["boss"]}}},
                    {"id": "t", "type": "trigger"},
                    {"id": "a2", "type": "approval", "config": {"approvers": {"user_ids": ["u1"]}, "on_timeout": "maybe"}},
                ]),
                json!([{"from": "t", "to": "a2"}])
            ),
            vec![
                "Approval node 'ok' has invalid config: approvers.roles has an invalid entry \"boss\"",
                "Approval node 'ok' must follow another node (it has no incoming edge)",
                "Approval node 'a2' has invalid config: on_timeout must be one of reject, approve, fail",
            ]
        );
    }

    #[test]
    fn dashboard_aliases_and_extensions() {
        assert!(
            check(
                json!([{"id": "a", "type": "agent", "config": {"agent_id": 3, "task_prompt": "x"}}]),
                json!([])
            )
            .is_empty()
        );
        assert_eq!(
            check(
                json!([
                    {"id": "t", "type": "tool", "config": {}},
                    {"id": "d", "type": "delay", "config": {"seconds": -1}},
                    {"id": "h", "type": "action", "config": {"action": "send_notification", "failure_handler": true, "retry": {"max_attempts": 0}}},
                    {"id": "t", "type": "trigger"},
                ]),
                json!([])
            ),
            vec!["Duplicate node id: 't'"]
        );
        assert_eq!(
            check(
                json!([
                    {"id": "t", "type": "tool", "config": {}},
                    {"id": "d", "type": "delay", "config": {"delay_seconds": -1}},
                    {"id": "h", "type": "action", "config": {"action": "send_notification", "failure_handler": true, "retry": {"max_attempts": 0}}},
                ]),
                json!([{"from": "t", "to": "h"}])
            ),
            vec![
                "Tool node 't' is missing required config key 'tool'",
                "Delay node 'd' has invalid config 'seconds': must be a number from 0 to 2592000",
                "Failure handler node 'h' must not have incoming edges",
                "Node 'h' has invalid options: retry.max_attempts must be an integer from 1 to 100",
            ]
        );
    }
}
