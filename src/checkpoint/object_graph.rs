//! TF2 object-based checkpoint keys and the `TrackableObjectGraph` (spec §1.8).
//!
//! Writing: a graph built from attribute keys alone (`a/b/.ATTRIBUTES/VARIABLE_VALUE`), enough for
//! TensorFlow's restore, which matches Python objects to nodes by walking edge names from the root.
//! Reading: every attribute with the object path TF's breadth-first walk gives it.

use std::collections::{BTreeMap, VecDeque};

use prost::Message;

use super::proto::{
    BoolValue, ObjectReference, SerializedTensor, TrackableObject, TrackableObjectGraph,
};
use crate::error::{Error, Result};

/// Separator between an object path and its attribute name in a checkpoint key.
pub const ATTRIBUTES: &str = "/.ATTRIBUTES/";

/// TF's `escape_local_name`: `.` → `..`, `/` → `.S`.
pub fn escape(name: &str) -> String {
    name.replace('.', "..").replace('/', ".S")
}

/// Inverse of [`escape`]; `None` for an escape sequence TF never produces.
pub fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c == '.' {
            match chars.next() {
                Some('.') => out.push('.'),
                Some('S') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An attribute (usually a variable value) in an object graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Unescaped edge names from the root to the owning object.
    pub path: Vec<String>,
    /// The attribute name (`VARIABLE_VALUE`).
    pub name: String,
    /// The bundle key that holds its value.
    pub checkpoint_key: String,
    /// The variable's graph name, e.g. `dense/kernel`.
    pub full_name: String,
}

/// Build a serialized `TrackableObjectGraph` from `(checkpoint_key, full_name)` pairs whose keys
/// have the form `edge/edge/.ATTRIBUTES/ATTR` with escaped edge names.
pub fn build(keys: &[(String, String)]) -> Result<Vec<u8>> {
    let mut nodes: Vec<TrackableObject> = vec![TrackableObject::default()];
    // (parent node, edge) → child node
    let mut edges: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for (key, full_name) in keys {
        let (object_path, attr) = key.rsplit_once(ATTRIBUTES).ok_or_else(|| {
            Error::invalid(format!("checkpoint key {key:?} has no {ATTRIBUTES:?} part"))
        })?;
        let mut node = 0usize;
        for escaped in object_path.split('/') {
            let edge = unescape(escaped).filter(|e| !e.is_empty()).ok_or_else(|| {
                Error::invalid(format!("checkpoint key {key:?} has a bad edge {escaped:?}"))
            })?;
            node = match edges.get(&(node, edge.clone())) {
                Some(&child) => child,
                None => {
                    let child = nodes.len();
                    nodes.push(TrackableObject::default());
                    nodes[node].children.push(ObjectReference {
                        node_id: child as i32,
                        local_name: edge.clone(),
                    });
                    edges.insert((node, edge), child);
                    child
                }
            };
        }
        let name = unescape(attr)
            .ok_or_else(|| Error::invalid(format!("checkpoint key {key:?} has a bad attribute")))?;
        nodes[node].attributes.push(SerializedTensor {
            name,
            full_name: full_name.clone(),
            checkpoint_key: key.clone(),
        });
    }
    // TF 2.21 marks every node; a node has values when it or a descendant has attributes.
    let mut has_values = vec![false; nodes.len()];
    for i in (0..nodes.len()).rev() {
        has_values[i] = !nodes[i].attributes.is_empty()
            || nodes[i]
                .children
                .iter()
                .any(|c| has_values[c.node_id as usize]);
    }
    for (n, v) in nodes.iter_mut().zip(has_values) {
        n.has_checkpoint_values = Some(BoolValue { value: v });
    }
    Ok(TrackableObjectGraph { nodes }.encode_to_vec())
}

/// Per node: the unescaped edge names from the root, `None` when unreachable.
pub type ObjectPaths = Vec<Option<Vec<String>>>;

/// Breadth-first from node 0, visiting each node's `children` in order (the route TensorFlow
/// names objects by): the unescaped edge names to every node (`None` if unreachable) and the
/// order nodes were reached in. Shared by checkpoint object graphs and SavedModel object graphs.
pub fn breadth_first_paths(children: &[&[ObjectReference]]) -> Result<(ObjectPaths, Vec<usize>)> {
    let n = children.len();
    let mut path: ObjectPaths = vec![None; n];
    let mut order = Vec::with_capacity(n);
    if n == 0 {
        return Ok((path, order));
    }
    path[0] = Some(Vec::new());
    let mut queue = VecDeque::from([0usize]);
    while let Some(id) = queue.pop_front() {
        order.push(id);
        let here = path[id].clone().unwrap_or_default();
        for child in children[id] {
            let c = usize::try_from(child.node_id)
                .ok()
                .filter(|&c| c < n)
                .ok_or_else(|| {
                    Error::format(format!(
                        "object graph node {id}: edge {:?} points at node {} of {n}",
                        child.local_name, child.node_id
                    ))
                })?;
            if path[c].is_none() {
                let mut p = here.clone();
                p.push(child.local_name.clone());
                path[c] = Some(p);
                queue.push_back(c);
            }
        }
    }
    Ok((path, order))
}

/// Parse a serialized graph and list every attribute under the path of the first (breadth-first)
/// route to its node, as TF names objects.
pub fn attributes(bytes: &[u8]) -> Result<Vec<Attribute>> {
    let graph = TrackableObjectGraph::decode(bytes).map_err(|e| {
        Error::format(format!(
            "object graph is not a valid TrackableObjectGraph: {e}"
        ))
    })?;
    let children: Vec<&[ObjectReference]> =
        graph.nodes.iter().map(|n| n.children.as_slice()).collect();
    let (paths, order) = breadth_first_paths(&children)?;
    let mut out = Vec::new();
    for id in order {
        let here = paths[id].clone().unwrap_or_default();
        for a in &graph.nodes[id].attributes {
            out.push(Attribute {
                path: here.clone(),
                name: a.name.clone(),
                checkpoint_key: a.checkpoint_key.clone(),
                full_name: a.full_name.clone(),
            });
        }
    }
    Ok(out)
}

/// For each object path (unescaped edge names from the root), the checkpoint key of the
/// attribute named `attribute` on the node it reaches, walking edges by name. Unlike the keys,
/// which follow the first breadth-first route, this finds an object under any of its names
/// (a tf-keras SavedModel keys an LSTM's kernel as `variables/1`, while the layer path is
/// `layer_with_weights-1/cell/kernel`).
pub fn resolve(
    bytes: &[u8],
    paths: &[Vec<String>],
    attribute: &str,
) -> Result<Vec<Option<String>>> {
    let graph = TrackableObjectGraph::decode(bytes).map_err(|e| {
        Error::format(format!(
            "object graph is not a valid TrackableObjectGraph: {e}"
        ))
    })?;
    let n = graph.nodes.len();
    Ok(paths
        .iter()
        .map(|path| {
            let mut node = 0usize;
            for edge in path {
                let next = graph
                    .nodes
                    .get(node)?
                    .children
                    .iter()
                    .find(|c| &c.local_name == edge)?;
                node = usize::try_from(next.node_id).ok().filter(|&c| c < n)?;
            }
            graph
                .nodes
                .get(node)?
                .attributes
                .iter()
                .find(|a| a.name == attribute)
                .map(|a| a.checkpoint_key.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_tf() {
        assert_eq!(escape("a/b"), "a.Sb");
        assert_eq!(escape("x.y"), "x..y");
        assert_eq!(unescape("a.Sb.."), Some("a/b.".to_string()));
        assert_eq!(unescape("a.x"), None);
    }

    #[test]
    fn graph_round_trip() {
        let keys = vec![
            (
                "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE".to_string(),
                "dense/kernel".to_string(),
            ),
            (
                "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE".to_string(),
                "dense/bias".to_string(),
            ),
            (
                "layer_with_weights-1/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE".to_string(),
                "lstm/kernel".to_string(),
            ),
            (
                "a.Sb/v/.ATTRIBUTES/VARIABLE_VALUE".to_string(),
                "x".to_string(),
            ),
        ];
        let bytes = build(&keys).unwrap();
        let attrs = attributes(&bytes).unwrap();
        assert_eq!(attrs.len(), 4);
        let lstm = attrs.iter().find(|a| a.full_name == "lstm/kernel").unwrap();
        assert_eq!(lstm.path, ["layer_with_weights-1", "cell", "kernel"]);
        assert_eq!(lstm.name, "VARIABLE_VALUE");
        let slash = attrs.iter().find(|a| a.full_name == "x").unwrap();
        assert_eq!(slash.path, ["a/b", "v"]);
    }

    #[test]
    fn resolve_walks_edges_by_name() {
        // Root reaches the same variable node as `variables/1` and as `layer/cell/kernel`.
        let node = |children: Vec<(i32, &str)>, key: Option<&str>| TrackableObject {
            children: children
                .into_iter()
                .map(|(id, n)| ObjectReference {
                    node_id: id,
                    local_name: n.into(),
                })
                .collect(),
            attributes: key
                .map(|k| {
                    vec![SerializedTensor {
                        name: "VARIABLE_VALUE".into(),
                        full_name: String::new(),
                        checkpoint_key: k.into(),
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        };
        let g = TrackableObjectGraph {
            nodes: vec![
                node(vec![(1, "variables"), (2, "layer")], None),
                node(vec![(4, "1")], None),
                node(vec![(3, "cell")], None),
                node(vec![(4, "kernel")], None),
                node(vec![], Some("variables/1/.ATTRIBUTES/VARIABLE_VALUE")),
            ],
        };
        let paths = vec![
            vec![
                "layer".to_string(),
                "cell".to_string(),
                "kernel".to_string(),
            ],
            vec!["layer".to_string(), "nope".to_string()],
        ];
        let got = resolve(&g.encode_to_vec(), &paths, "VARIABLE_VALUE").unwrap();
        assert_eq!(
            got,
            vec![
                Some("variables/1/.ATTRIBUTES/VARIABLE_VALUE".to_string()),
                None
            ]
        );
    }

    #[test]
    fn bad_graphs_are_errors() {
        assert!(build(&[("no_attributes".into(), String::new())]).is_err());
        assert!(attributes(&[0xff, 0xff]).is_err());
        let g = TrackableObjectGraph {
            nodes: vec![TrackableObject {
                children: vec![ObjectReference {
                    node_id: 7,
                    local_name: "x".into(),
                }],
                ..Default::default()
            }],
        };
        assert!(attributes(&g.encode_to_vec()).is_err());
    }
}
