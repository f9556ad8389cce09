//! The `SavedObjectGraph`: object paths, node kinds, and the link between variable nodes and
//! the `variables/` bundle (spec §2.3, §2.4, §1.8.2).

use super::proto::{saved_object::Kind, SavedObject, SavedObjectGraph, TensorShapeProto};
use crate::checkpoint::object_graph::{breadth_first_paths, escape, ATTRIBUTES};
use crate::checkpoint::proto::ObjectReference;
use crate::error::{Error, Result};

/// Unescaped edge names from the root to every node, found breadth-first from node 0 visiting
/// `children` in order (the route TensorFlow names objects by); `None` for unreachable nodes.
pub fn object_paths(graph: &SavedObjectGraph) -> Result<Vec<Option<Vec<String>>>> {
    let children: Vec<&[ObjectReference]> =
        graph.nodes.iter().map(|n| n.children.as_slice()).collect();
    Ok(breadth_first_paths(&children)?.0)
}

/// The bundle key holding the value of the variable at `path` (unescaped edge names):
/// `escaped/edges/.ATTRIBUTES/VARIABLE_VALUE`. The root's key is `/.ATTRIBUTES/VARIABLE_VALUE`,
/// as TensorFlow builds it.
pub fn variable_checkpoint_key(path: &[String]) -> String {
    format!("{}{ATTRIBUTES}VARIABLE_VALUE", escaped_path(path))
}

/// Marker between the original variable's path and the optimizer's path in slot keys.
pub const OPTIMIZER_SLOT: &str = ".OPTIMIZER_SLOT";

/// An optimizer slot variable (legacy `optimizer_v2` style) that `children` edges do not reach:
/// TensorFlow names it after the variable it belongs to and the optimizer that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotVariable {
    /// The slot variable's node.
    pub node_id: usize,
    /// The variable the slot belongs to.
    pub original_node_id: usize,
    /// The optimizer listing the slot.
    pub optimizer_node_id: usize,
    /// `m`, `v`, `momentum`, …
    pub slot_name: String,
    /// The bundle key of its value:
    /// `{variable path}/.OPTIMIZER_SLOT/{optimizer path}/{slot}/.ATTRIBUTES/VARIABLE_VALUE`.
    pub checkpoint_key: String,
    /// Original variable path, `.OPTIMIZER_SLOT`, optimizer path, slot name (unescaped).
    pub path: Vec<String>,
}

fn escaped_path(path: &[String]) -> String {
    path.iter().map(|e| escape(e)).collect::<Vec<_>>().join("/")
}

/// The slot variables listed in `slot_variables` of reachable objects whose own node has no
/// path (spec §1.8.2); the first listing of a node wins.
pub fn slot_variables(
    graph: &SavedObjectGraph,
    paths: &[Option<Vec<String>>],
) -> Result<Vec<SlotVariable>> {
    let n = graph.nodes.len();
    let check = |id: i32, what: &str, owner: usize| {
        usize::try_from(id).ok().filter(|&i| i < n).ok_or_else(|| {
            Error::format(format!(
                "object graph node {owner}: slot reference names {what} node {id} of {n}"
            ))
        })
    };
    let mut out: Vec<SlotVariable> = Vec::new();
    for (opt, node) in graph.nodes.iter().enumerate() {
        for r in &node.slot_variables {
            let orig = check(r.original_variable_node_id, "original variable", opt)?;
            let slot = check(r.slot_variable_node_id, "slot variable", opt)?;
            let (Some(opt_path), Some(orig_path), None) = (
                paths.get(opt).cloned().flatten(),
                &paths[orig],
                &paths[slot],
            ) else {
                continue;
            };
            if out.iter().any(|s| s.node_id == slot) {
                continue;
            }
            let checkpoint_key = format!(
                "{}/{OPTIMIZER_SLOT}/{}/{}{ATTRIBUTES}VARIABLE_VALUE",
                escaped_path(orig_path),
                escaped_path(&opt_path),
                escape(&r.slot_name)
            );
            let mut path = orig_path.clone();
            path.push(OPTIMIZER_SLOT.to_string());
            path.extend(opt_path);
            path.push(r.slot_name.clone());
            out.push(SlotVariable {
                node_id: slot,
                original_node_id: orig,
                optimizer_node_id: opt,
                slot_name: r.slot_name.clone(),
                checkpoint_key,
                path,
            });
        }
    }
    Ok(out)
}

/// `"user_object"`, `"variable"`, `"function"`, … for a node (`"none"` when the kind is unset or
/// newer than this reader).
pub fn kind_name(node: &SavedObject) -> &'static str {
    match &node.kind {
        Some(Kind::UserObject(_)) => "user_object",
        Some(Kind::Asset(_)) => "asset",
        Some(Kind::Function(_)) => "function",
        Some(Kind::Variable(_)) => "variable",
        Some(Kind::BareConcreteFunction(_)) => "bare_concrete_function",
        Some(Kind::Constant(_)) => "constant",
        Some(Kind::Resource(_)) => "resource",
        Some(Kind::CapturedTensor(_)) => "captured_tensor",
        None => "none",
    }
}

/// A shape as listings show it: `-1` for unknown dimensions, `None` for unknown rank. An absent
/// shape is the protobuf default, a scalar (as `saved_model_cli` prints it).
pub fn shape_of(shape: Option<&TensorShapeProto>) -> Option<Vec<i64>> {
    match shape {
        Some(s) if s.unknown_rank => None,
        Some(s) => Some(s.dim.iter().map(|d| d.size.max(-1)).collect()),
        None => Some(Vec::new()),
    }
}

/// Whether a stored (fully known) shape fits a declared shape with unknown parts.
pub fn shape_matches(declared: Option<&[i64]>, stored: &[u64]) -> bool {
    match declared {
        None => true,
        Some(d) => {
            d.len() == stored.len()
                && d.iter()
                    .zip(stored)
                    .all(|(&want, &have)| want < 0 || u64::try_from(want) == Ok(have))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{ObjectReference, SavedVariable};
    use super::*;

    fn node(children: &[(i32, &str)]) -> SavedObject {
        SavedObject {
            children: children
                .iter()
                .map(|&(node_id, name)| ObjectReference {
                    node_id,
                    local_name: name.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn savedmodel_paths_are_breadth_first() {
        // 0 -> a(1) -> b(2) -> v(3);  0 -> list(4) -> "0"(3): the shorter route wins.
        let mut v = node(&[]);
        v.kind = Some(Kind::Variable(SavedVariable::default()));
        let g = SavedObjectGraph {
            nodes: vec![
                node(&[(1, "a"), (4, "list")]),
                node(&[(2, "b")]),
                node(&[(3, "v")]),
                v,
                node(&[(3, "0")]),
                node(&[]),
            ],
        };
        let p = object_paths(&g).unwrap();
        assert_eq!(
            p[3].as_deref(),
            Some(&["list".to_string(), "0".to_string()][..])
        );
        assert_eq!(p[5], None);
        assert_eq!(kind_name(&g.nodes[3]), "variable");
        assert_eq!(kind_name(&g.nodes[0]), "none");
    }

    #[test]
    fn savedmodel_bad_edges_are_errors() {
        let g = SavedObjectGraph {
            nodes: vec![node(&[(3, "x")])],
        };
        assert!(matches!(object_paths(&g), Err(Error::Format { .. })));
        let g = SavedObjectGraph {
            nodes: vec![node(&[(-1, "x")])],
        };
        assert!(object_paths(&g).is_err());
        assert_eq!(object_paths(&SavedObjectGraph::default()).unwrap(), vec![]);
    }

    #[test]
    fn savedmodel_keys_escape_edges() {
        let p = ["d".to_string(), "a/b.c".to_string()];
        assert_eq!(
            variable_checkpoint_key(&p),
            "d/a.Sb..c/.ATTRIBUTES/VARIABLE_VALUE"
        );
        assert_eq!(variable_checkpoint_key(&[]), "/.ATTRIBUTES/VARIABLE_VALUE");
    }

    #[test]
    fn savedmodel_slot_variable_keys() {
        use super::super::proto::SlotVariableReference;
        let slot = |orig, name: &str, id| SlotVariableReference {
            original_variable_node_id: orig,
            slot_name: name.to_string(),
            slot_variable_node_id: id,
        };
        let mut opt = node(&[]);
        opt.slot_variables = vec![slot(2, "m", 4), slot(2, "m/x", 5), slot(2, "m", 4)];
        let mut g = SavedObjectGraph {
            nodes: vec![
                node(&[(1, "layer_with_weights-0"), (3, "optimizer")]),
                node(&[(2, "kernel")]),
                node(&[]),
                opt,
                node(&[]),
                node(&[]),
            ],
        };
        let paths = object_paths(&g).unwrap();
        let s = slot_variables(&g, &paths).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].checkpoint_key,
            "layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
        );
        assert_eq!(
            s[0].path,
            [
                "layer_with_weights-0",
                "kernel",
                OPTIMIZER_SLOT,
                "optimizer",
                "m"
            ]
        );
        assert_eq!(
            (s[0].node_id, s[0].original_node_id, s[0].optimizer_node_id),
            (4, 2, 3)
        );
        assert!(s[1].checkpoint_key.contains("/m.Sx/"));
        g.nodes[3].slot_variables.push(slot(2, "v", 9));
        assert!(slot_variables(&g, &paths).is_err());
    }

    #[test]
    fn savedmodel_shapes() {
        use super::super::proto::Dim;
        let s = TensorShapeProto {
            dim: vec![
                Dim {
                    size: -1,
                    name: String::new(),
                },
                Dim {
                    size: 4,
                    name: String::new(),
                },
            ],
            unknown_rank: false,
        };
        assert_eq!(shape_of(Some(&s)), Some(vec![-1, 4]));
        assert_eq!(shape_of(None), Some(vec![]));
        let unknown = TensorShapeProto {
            dim: vec![],
            unknown_rank: true,
        };
        assert_eq!(shape_of(Some(&unknown)), None);
        assert!(shape_matches(Some(&[-1, 4]), &[7, 4]));
        assert!(!shape_matches(Some(&[-1, 4]), &[7, 5]));
        assert!(!shape_matches(Some(&[4]), &[4, 1]));
        assert!(shape_matches(None, &[1, 2, 3]));
    }
}
