//! The pipeline definition as stored in `circle.pipelines.nodes` / `.edges` (contract §5):
//! parsing from API or database JSON and serialising back.
//!
//! Parsing is lenient where the dashboard and the contract disagree and strict where the
//! executor would otherwise guess: an edge accepts `from`/`to` or `from_node`/`to_node` and
//! is always written back as `from`/`to`; `agent_id` may be a string or a number; every config
//! key is kept (the API of the earlier implementation dropped unknown ones), and so are unknown
//! keys of nodes and edges (the editor stores its own). Node types are any string here;
//! validation reports the invalid ones with the A13 message.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Node types the executor runs (the A13 six, plus `tool` and `approval`).
pub const NODE_TYPES: [&str; 8] = [
    "trigger",
    "agent",
    "condition",
    "action",
    "parallel",
    "delay",
    "tool",
    "approval",
];

/// Most nodes and edges of one pipeline.
pub const MAX_NODES: usize = 500;
pub const MAX_EDGES: usize = 2000;
/// Longest node or edge id.
pub const MAX_ID_CHARS: usize = 200;
/// Largest node config, serialised.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// The edge condition that makes an edge a failure edge: its target runs when its source fails.
pub const ON_FAILURE: &str = "on_failure";

/// The node types, as the A13 message lists them (Python's `sorted(set)` repr).
pub fn valid_types_repr() -> String {
    let mut sorted = NODE_TYPES.to_vec();
    sorted.sort_unstable();
    py_list(sorted.iter().copied())
}

/// A Python `repr` of a list of strings, as graphlib and the A13 messages print them.
pub fn py_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.into_iter().map(py_str).collect();
    format!("[{}]", parts.join(", "))
}

fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub name: String,
    pub config: Map<String, Value>,
    pub position: Value,
    pub next: Option<Vec<String>>,
    /// Keys the model does not know, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Node {
    /// A config value by its key or, when absent or null, by the dashboard's alias.
    pub fn config_value(&self, key: &str, alias: Option<&str>) -> Option<&Value> {
        let get = |k: &str| self.config.get(k).filter(|v| !v.is_null());
        get(key).or_else(|| alias.and_then(get))
    }

    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    pub fn config_bool(&self, key: &str) -> bool {
        self.config
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// A pipeline-level failure handler: runs (with what it leads to) only when the run fails.
    pub fn is_failure_handler(&self) -> bool {
        self.config_bool("failure_handler")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    pub id: String,
    pub from: String,
    pub to: String,
    pub condition: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Edge {
    pub fn is_on_failure(&self) -> bool {
        self.condition.as_deref() == Some(ON_FAILURE)
    }
}

/// Run settings of a pipeline (its columns), copied into each run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Settings {
    pub timeout_seconds: i32,
    /// Attempts per node, in total (tenacity's `stop_after_attempt`).
    pub max_retries_per_node: i32,
    pub retry_backoff_base: f64,
    pub retry_backoff_max: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout_seconds: 3600,
            max_retries_per_node: 3,
            retry_backoff_base: 1.0,
            retry_backoff_max: 60.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Definition {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Definition {
    pub fn nodes_json(&self) -> Value {
        serde_json::to_value(&self.nodes).unwrap_or_else(|_| json!([]))
    }

    pub fn edges_json(&self) -> Value {
        serde_json::to_value(&self.edges).unwrap_or_else(|_| json!([]))
    }

    /// What a run keeps of its pipeline: `{nodes, edges, settings}`.
    pub fn snapshot(&self, settings: &Settings) -> Value {
        json!({"nodes": self.nodes_json(), "edges": self.edges_json(), "settings": settings})
    }

    /// Reads a run's snapshot back.
    pub fn from_snapshot(v: &Value) -> Result<(Definition, Settings), Vec<ParseError>> {
        let nodes = parse_nodes(v.get("nodes").unwrap_or(&Value::Null));
        let edges = parse_edges(v.get("edges").unwrap_or(&Value::Null));
        let settings = v
            .get("settings")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        match (nodes, edges) {
            (Ok(nodes), Ok(edges)) => Ok((Definition { nodes, edges }, settings)),
            (n, e) => Err(n
                .err()
                .into_iter()
                .flatten()
                .chain(e.err().into_iter().flatten())
                .collect()),
        }
    }
}

/// A node or edge that does not parse: where (`["nodes", "2", "id"]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub path: Vec<String>,
    pub msg: String,
}

impl ParseError {
    fn at(path: &[&str], msg: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.join("."), self.msg)
    }
}

/// A string, or a number written as one (ids typed by hand or by the editor).
fn string_like(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_id(id: &str, path: &[&str], errors: &mut Vec<ParseError>) {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        errors.push(ParseError::at(
            path,
            format!("must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
}

/// Parses the `nodes` array (`null` is an empty list).
pub fn parse_nodes(v: &Value) -> Result<Vec<Node>, Vec<ParseError>> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(vec![ParseError::at(&["nodes"], "must be a list")]),
    };
    if items.len() > MAX_NODES {
        return Err(vec![ParseError::at(
            &["nodes"],
            format!("at most {MAX_NODES} nodes"),
        )]);
    }
    let mut errors = Vec::new();
    let mut nodes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_node(&i.to_string(), item, &mut errors) {
            Ok(node) => nodes.push(node),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(nodes)
    } else {
        Err(errors)
    }
}

/// The node at `idx`: `Err` with the first problem that stops reading it; the problems that do
/// not (the id's length, the config's size and `agent_id`) go to `errors`.
fn parse_node(idx: &str, item: &Value, errors: &mut Vec<ParseError>) -> Result<Node, ParseError> {
    let at = |field: &str, msg: &str| ParseError::at(&["nodes", idx, field], msg);
    let Some(obj) = item.as_object() else {
        return Err(ParseError::at(&["nodes", idx], "must be an object"));
    };
    let mut extra = obj.clone();
    let id = extra.remove("id");
    let node_type = extra.remove("type");
    let name = extra.remove("name");
    let config = extra.remove("config");
    let position = extra.remove("position");
    let next = extra.remove("next");
    let Some(id) = id.as_ref().and_then(string_like) else {
        return Err(at("id", "field required (a string)"));
    };
    check_id(&id, &["nodes", idx, "id"], errors);
    let node_type = match node_type {
        Some(Value::String(t)) if t.len() <= 100 => t,
        _ => {
            return Err(at(
                "type",
                "field required (a string of at most 100 characters)",
            ));
        }
    };
    let name = match name {
        None | Some(Value::Null) => id.clone(),
        Some(Value::String(n)) if n.chars().count() <= 255 => n,
        Some(_) => return Err(at("name", "must be a string of at most 255 characters")),
    };
    let config = match config {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(at("config", "must be an object")),
    };
    check_config(&config, idx, errors);
    let position = match position {
        None | Some(Value::Null) => json!({"x": 0, "y": 0}),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(at("position", "must be an object")),
    };
    let next = match next {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(string_like)
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| at("next", "must be a list of node ids"))?,
        ),
        Some(_) => return Err(at("next", "must be a list of node ids")),
    };
    Ok(Node {
        id,
        node_type,
        name,
        config,
        position,
        next,
        extra,
    })
}

/// A node config's problems that do not stop reading the node: its size, and an `agent_id`
/// that is neither a string nor a number.
fn check_config(config: &Map<String, Value>, idx: &str, errors: &mut Vec<ParseError>) {
    if serde_json::to_vec(config).map_or(usize::MAX, |b| b.len()) > MAX_CONFIG_BYTES {
        errors.push(ParseError::at(
            &["nodes", idx, "config"],
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    if let Some(a) = config.get("agent_id")
        && !(a.is_null() || a.is_string() || a.is_number())
    {
        errors.push(ParseError::at(
            &["nodes", idx, "config", "agent_id"],
            "must be a string or a number",
        ));
    }
}

/// Parses the `edges` array (`null` is an empty list).
pub fn parse_edges(v: &Value) -> Result<Vec<Edge>, Vec<ParseError>> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(vec![ParseError::at(&["edges"], "must be a list")]),
    };
    if items.len() > MAX_EDGES {
        return Err(vec![ParseError::at(
            &["edges"],
            format!("at most {MAX_EDGES} edges"),
        )]);
    }
    let mut errors = Vec::new();
    let mut edges = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let idx = i.to_string();
        let Some(obj) = item.as_object() else {
            errors.push(ParseError::at(&["edges", &idx], "must be an object"));
            continue;
        };
        let mut extra = obj.clone();
        let id = extra.remove("id");
        let from = extra.remove("from");
        let from_node = extra.remove("from_node");
        let to = extra.remove("to");
        let to_node = extra.remove("to_node");
        let condition = extra.remove("condition");
        let endpoint = |a: Option<Value>, b: Option<Value>| {
            a.filter(|v| !v.is_null())
                .or(b)
                .as_ref()
                .and_then(string_like)
        };
        let (Some(from), Some(to)) = (endpoint(from, from_node), endpoint(to, to_node)) else {
            errors.push(ParseError::at(
                &["edges", &idx],
                "'from' (or 'from_node') and 'to' (or 'to_node') are required node ids",
            ));
            continue;
        };
        let id = match id.as_ref() {
            None | Some(Value::Null) => format!("{from}->{to}"),
            Some(v) => match string_like(v) {
                Some(id) => id,
                None => {
                    errors.push(ParseError::at(&["edges", &idx, "id"], "must be a string"));
                    continue;
                }
            },
        };
        check_id(&id, &["edges", &idx, "id"], &mut errors);
        let condition = match condition {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.len() <= 1000 => Some(c),
            Some(_) => {
                errors.push(ParseError::at(
                    &["edges", &idx, "condition"],
                    "must be a string of at most 1000 characters",
                ));
                continue;
            }
        };
        edges.push(Edge {
            id,
            from,
            to,
            condition,
            extra,
        });
    }
    if errors.is_empty() {
        Ok(edges)
    } else {
        Err(errors)
    }
}

/// Parses both lists; every error of both.
pub fn parse_definition(nodes: &Value, edges: &Value) -> Result<Definition, Vec<ParseError>> {
    match (parse_nodes(nodes), parse_edges(edges)) {
        (Ok(nodes), Ok(edges)) => Ok(Definition { nodes, edges }),
        (n, e) => Err(n
            .err()
            .into_iter()
            .flatten()
            .chain(e.err().into_iter().flatten())
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_accept_both_spellings_and_serialise_from_to() {
        let e = parse_edges(&json!([
            {"id": "e1", "from_node": "a", "to_node": "b", "label": "x"},
            {"from": "b", "to": "c", "condition": "on_failure"},
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!([
                {"id": "e1", "from": "a", "to": "b", "condition": null, "label": "x"},
                {"id": "b->c", "from": "b", "to": "c", "condition": "on_failure"},
            ])
        );
        assert!(e[1].is_on_failure());
        assert!(parse_edges(&json!([{"id": "e", "from": "a"}])).is_err());
    }

    #[test]
    fn nodes_keep_unknown_config_keys_and_numeric_agent_ids() {
        let n = parse_nodes(&json!([{
            "id": "n1", "type": "agent", "name": "A",
            "config": {"agent_id": 7, "task": "t", "task_prompt": "p", "agent_name": "Sophie"},
            "ui": {"color": "red"}
        }]))
        .unwrap();
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v[0]["config"]["agent_id"], 7);
        assert_eq!(v[0]["config"]["agent_name"], "Sophie");
        assert_eq!(v[0]["position"], json!({"x": 0, "y": 0}));
        assert_eq!(v[0]["ui"]["color"], "red");
        assert_eq!(v[0]["next"], Value::Null);
        assert!(
            parse_nodes(&json!([{"id": "n", "type": "agent", "config": {"agent_id": [1]}}]))
                .is_err()
        );
    }

    #[test]
    fn parse_errors_name_the_path() {
        let e = parse_nodes(&json!([{"type": "agent"}, {"id": "x", "type": 3}])).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, vec!["nodes", "0", "id"]);
        assert_eq!(e[1].path, vec!["nodes", "1", "type"]);
        assert!(parse_nodes(&json!({})).is_err());
        assert!(parse_nodes(&json!(vec![json!({"id": "a", "type": "trigger"}); 501])).is_err());
    }

    #[test]
    fn snapshot_round_trips() {
        let d = parse_definition(
            &json!([{"id": "a", "type": "trigger", "name": "A"}]),
            &json!([]),
        )
        .unwrap();
        let s = Settings {
            timeout_seconds: 5,
            ..Settings::default()
        };
        let (back, settings) = Definition::from_snapshot(&d.snapshot(&s)).unwrap();
        assert_eq!(back, d);
        assert_eq!(settings, s);
    }

    #[test]
    fn python_reprs() {
        assert_eq!(
            valid_types_repr(),
            "['action', 'agent', 'approval', 'condition', 'delay', 'parallel', 'tool', 'trigger']"
        );
        assert_eq!(py_list(["a", "it's"]), "['a', \"it's\"]");
    }
}
