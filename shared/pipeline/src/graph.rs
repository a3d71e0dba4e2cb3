//! The DAG of a definition by node index: predecessors and successors with their edge kind,
//! topological order, cycle detection (in graphlib's format), and the failure path (the
//! pipeline-level failure handlers and everything they lead to).

use std::collections::HashMap;

use crate::model::Definition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Taken when its source completes (a false condition does not take it).
    Normal,
    /// Taken when its source fails (`condition: "on_failure"`).
    OnFailure,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub index: HashMap<String, usize>,
    pub preds: Vec<Vec<(usize, EdgeKind)>>,
    pub succs: Vec<Vec<(usize, EdgeKind)>>,
    /// Nodes that only run when the run has failed: failure handlers and their descendants.
    pub failure_path: Vec<bool>,
}

impl Graph {
    /// Builds the graph. Edges whose endpoints are unknown are ignored (validation reports
    /// them); a duplicate node id keeps its first node.
    pub fn build(def: &Definition) -> Graph {
        let mut index = HashMap::with_capacity(def.nodes.len());
        for (i, n) in def.nodes.iter().enumerate() {
            index.entry(n.id.clone()).or_insert(i);
        }
        let n = def.nodes.len();
        let mut preds = vec![Vec::new(); n];
        let mut succs = vec![Vec::new(); n];
        for e in &def.edges {
            let (Some(&from), Some(&to)) = (index.get(&e.from), index.get(&e.to)) else {
                continue;
            };
            let kind = if e.is_on_failure() {
                EdgeKind::OnFailure
            } else {
                EdgeKind::Normal
            };
            if !preds[to].contains(&(from, kind)) {
                preds[to].push((from, kind));
                succs[from].push((to, kind));
            }
        }
        let mut failure_path = vec![false; n];
        let mut stack: Vec<usize> = def
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, node)| index.get(&node.id) == Some(i) && node.is_failure_handler())
            .map(|(i, _)| i)
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut failure_path[i], true) {
                continue;
            }
            stack.extend(succs[i].iter().map(|(s, _)| *s));
        }
        Graph {
            index,
            preds,
            succs,
            failure_path,
        }
    }

    pub fn len(&self) -> usize {
        self.preds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Node indices in an order where every node comes after its predecessors; `None` when
    /// there is a cycle.
    pub fn topo_order(&self) -> Option<Vec<usize>> {
        let mut indegree: Vec<usize> = self.preds.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.len()).filter(|&i| indegree[i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(self.len());
        while let Some(i) = ready.pop() {
            order.push(i);
            for (s, _) in &self.succs[i] {
                indegree[*s] -= 1;
                if indegree[*s] == 0 {
                    ready.push(*s);
                }
            }
        }
        (order.len() == self.len()).then_some(order)
    }

    /// One cycle as graphlib reports it: nodes each an immediate predecessor of the next, the
    /// first repeated at the end.
    pub fn find_cycle(&self) -> Option<Vec<usize>> {
        // Iterative DFS along edges, as graphlib walks from each node to its successors.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut mark = vec![Mark::New; self.len()];
        for start in 0..self.len() {
            if mark[start] != Mark::New {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = Mark::OnStack;
            while let Some(&(node, next)) = path.last() {
                if let Some(&(p, _)) = self.succs[node].get(next) {
                    if let Some(top) = path.last_mut() {
                        top.1 += 1;
                    }
                    match mark[p] {
                        Mark::New => {
                            mark[p] = Mark::OnStack;
                            path.push((p, 0));
                        }
                        Mark::OnStack => {
                            let from = path.iter().position(|(n, _)| *n == p).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                path[from..].iter().map(|(n, _)| *n).collect();
                            cycle.push(p);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    path.pop();
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_definition;
    use serde_json::json;

    fn def(edges: &[(&str, &str)]) -> Definition {
        let mut ids: Vec<&str> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
        ids.sort_unstable();
        ids.dedup();
        let nodes: Vec<_> = ids
            .iter()
            .map(|i| json!({"id": i, "type": "parallel"}))
            .collect();
        let edges: Vec<_> = edges
            .iter()
            .map(|(a, b)| json!({"from": a, "to": b}))
            .collect();
        parse_definition(&json!(nodes), &json!(edges)).unwrap()
    }

    #[test]
    fn topological_order_respects_edges() {
        let d = def(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
        let g = Graph::build(&d);
        let order = g.topo_order().unwrap();
        let pos = |id: &str| order.iter().position(|&i| d.nodes[i].id == id).unwrap();
        assert!(pos("a") < pos("b") && pos("b") < pos("d") && pos("c") < pos("d"));
        assert!(g.find_cycle().is_none());
    }

    #[test]
    fn cycles_are_found_as_a_closed_path() {
        let d = def(&[("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")]);
        let g = Graph::build(&d);
        assert!(g.topo_order().is_none());
        let cycle = g.find_cycle().unwrap();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        // Each node is an immediate predecessor of the next one.
        for w in cycle.windows(2) {
            assert!(g.preds[w[1]].iter().any(|(p, _)| *p == w[0]));
        }
    }

    #[test]
    fn failure_path_is_the_handlers_descendants() {
        let d = parse_definition(
            &json!([
                {"id": "t", "type": "trigger"},
                {"id": "h", "type": "action", "config": {"failure_handler": true}},
                {"id": "n", "type": "action"},
            ]),
            &json!([{"from": "h", "to": "n"}]),
        )
        .unwrap();
        let g = Graph::build(&d);
        assert_eq!(g.failure_path, vec![false, true, true]);
    }
}
