//! SavedModel directories read without TensorFlow (spec §2).
//!
//! [`inspect`] lists what a SavedModel holds: meta graphs and their signatures (names, dtypes,
//! shapes), every value in `variables/` with the object-graph path of the variable it belongs
//! to, `fingerprint.pb`, the files under `assets/` and the Keras objects of `keras_metadata.pb`.
//! `saved_model.pb` is read once and decoded from memory with [trimmed messages](proto) that
//! skip the `GraphDef` and the function library, which are usually most of the file.

pub mod graph;
pub mod keras;
pub mod proto;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use crate::checkpoint::{self, BundleReader, OBJECT_GRAPH_KEY};
use crate::error::{Error, FileContext, IoContext, Result};
use crate::tensor::DType;
pub use graph::{object_paths, variable_checkpoint_key};
pub use keras::{decode_keras_metadata, KerasLayerInfo, KerasMetadataNode};
use proto::saved_object::Kind;
use proto::tensor_info::Encoding;
use proto::{FingerprintDef, MetaGraphDef, SavedModel, SavedObjectGraph, VersionDef};

/// The binary SavedModel protobuf inside a SavedModel directory.
pub const SAVED_MODEL_PB: &str = "saved_model.pb";
/// The fingerprint file written by TF ≥ 2.12.
pub const FINGERPRINT_PB: &str = "fingerprint.pb";
/// The Keras metadata file written by tf-keras `model.save(dir)`.
pub const KERAS_METADATA_PB: &str = "keras_metadata.pb";
/// Largest `saved_model.pb` / `keras_metadata.pb` read: protobuf messages cannot exceed 2 GiB
/// (TensorFlow writes bigger models as the chunked `saved_model.cpb` instead).
pub const MAX_PROTO_BYTES: u64 = 2 << 30;
/// A `FingerprintDef` is about a hundred bytes; anything near this is not one.
const MAX_FINGERPRINT_BYTES: u64 = 1 << 20;
/// Refuse to list more files than this under `assets/`.
const MAX_ASSETS: usize = 100_000;
/// Refuse to descend deeper than this under `assets/`.
const MAX_ASSET_DEPTH: usize = 64;

/// Everything [`inspect`] finds in a SavedModel directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedModelInfo {
    /// `saved_model_schema_version` (TensorFlow writes 1).
    pub schema_version: i64,
    /// One entry per `MetaGraphDef` (TF2 writes exactly one, tagged `serve`).
    pub meta_graphs: Vec<MetaGraphInfo>,
    /// The nodes of the object graph (of the `serve` meta graph, else the first that has one).
    pub objects: Vec<ObjectInfo>,
    /// Every value in `variables/variables.index` except the object graph, sorted by key.
    pub variables: Vec<VariableInfo>,
    /// `fingerprint.pb`, when present.
    pub fingerprint: Option<FingerprintInfo>,
    /// Regular files and symlinks under `assets/`, sorted by path.
    pub assets: Vec<AssetInfo>,
    /// The Keras objects of `keras_metadata.pb` (tf-keras `model.save(dir)`), or of the legacy
    /// `SavedUserObject.metadata` JSON when that file is absent (TF ≤ 2.4); `None` when neither
    /// exists (Keras 3 `model.export`, plain `tf.Module`s).
    pub keras_metadata: Option<Vec<KerasLayerInfo>>,
}

/// One `MetaGraphDef`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaGraphInfo {
    /// `meta_info_def.tags` (`["serve"]`).
    pub tags: Vec<String>,
    /// The TensorFlow release that wrote it (`2.21.0`).
    pub tensorflow_version: String,
    /// Its git description.
    pub tensorflow_git_version: String,
    /// Signatures sorted by key, without the internal ones whose key starts with `__`
    /// (`__saved_model_init_op`).
    pub signatures: Vec<SignatureInfo>,
    /// `asset_file_def[*].filename`: the files under `assets/` the graph refers to.
    pub asset_files: Vec<String>,
    /// Whether it carries a TF2 `SavedObjectGraph`.
    pub has_object_graph: bool,
}

impl MetaGraphInfo {
    /// The signature named `key`.
    pub fn signature(&self, key: &str) -> Option<&SignatureInfo> {
        self.signatures.iter().find(|s| s.key == key)
    }
}

/// One `SignatureDef`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureInfo {
    /// The signature key (`serving_default`).
    pub key: String,
    /// `tensorflow/serving/predict`, …
    pub method_name: String,
    /// Inputs sorted by key.
    pub inputs: Vec<TensorSpec>,
    /// Outputs sorted by key.
    pub outputs: Vec<TensorSpec>,
}

/// How a signature tensor is found in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorEncoding {
    /// One dense tensor, named by `tensor_name`.
    Dense,
    /// A `SparseTensor` of three dense tensors (values, indices, dense shape).
    CooSparse,
    /// A composite tensor (ragged, …) of several component tensors.
    Composite,
    /// No encoding recorded.
    Unspecified,
}

/// One input or output of a signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSpec {
    /// The key callers use (`x`, `output_0`).
    pub key: String,
    /// How the value is encoded.
    pub encoding: TensorEncoding,
    /// `op:index` of a dense tensor (`serving_default_x:0`).
    pub tensor_name: Option<String>,
    /// Component tensor names of sparse (values, indices, dense shape) and composite tensors.
    pub component_names: Vec<String>,
    /// `float32`, …, or `dtype_enum_N` for types kerasafe has no name for.
    pub dtype: String,
    /// Dimensions with `-1` for unknown ones; `None` when even the rank is unknown.
    pub shape: Option<Vec<i64>>,
}

/// One node of the `SavedObjectGraph`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectInfo {
    /// Index in the graph; 0 is the root.
    pub node_id: usize,
    /// Unescaped edge names from the root (breadth-first, as TF names objects); `None` when the
    /// node cannot be reached from the root.
    pub path: Option<Vec<String>>,
    /// `user_object`, `variable`, `function`, `bare_concrete_function`, `asset`, `constant`,
    /// `resource`, `captured_tensor` or `none`.
    pub kind: String,
    /// The `SavedUserObject` identifier (`_generic_user_object`, `trackable_list_wrapper`,
    /// `_tf_keras_layer`, …).
    pub identifier: Option<String>,
}

/// One value in `variables/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableInfo {
    /// The bundle key (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`).
    pub name: String,
    /// `float32`, …, or `dtype_enum_N`.
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Stored bytes.
    pub bytes: u64,
    /// The variable node whose value this is, when the object graph has one.
    pub object: Option<VariableObject>,
}

/// A `SavedVariable` node of the object graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableObject {
    /// Index in the object graph.
    pub node_id: usize,
    /// Unescaped edge names from the root (`["variables", "0"]`).
    pub path: Vec<String>,
    /// The variable's own name (`dense/kernel`).
    pub variable_name: String,
    /// Whether it is trainable.
    pub trainable: bool,
    /// The declared shape (`-1` for unknown dimensions, `None` for unknown rank).
    pub shape: Option<Vec<i64>>,
    /// Set for a legacy optimizer slot (`m`, `v`, …) that only `slot_variables` reaches; `path`
    /// is then the variable's path, `.OPTIMIZER_SLOT`, the optimizer's path and the slot name.
    pub slot: Option<SlotInfo>,
}

/// What an optimizer slot variable belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotInfo {
    /// The variable the slot tracks.
    pub original_node_id: usize,
    /// The optimizer owning the slot.
    pub optimizer_node_id: usize,
    /// `m`, `v`, `momentum`, …
    pub slot_name: String,
}

/// A protobuf `VersionDef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Version of the code that wrote the data.
    pub producer: i32,
    /// Oldest reader version that can read it.
    pub min_consumer: i32,
    /// Reader versions that must not read it.
    pub bad_consumers: Vec<i32>,
}

impl From<VersionDef> for VersionInfo {
    fn from(v: VersionDef) -> Self {
        VersionInfo {
            producer: v.producer,
            min_consumer: v.min_consumer,
            bad_consumers: v.bad_consumers,
        }
    }
}

/// `fingerprint.pb` (spec §2.6). The hashes are TensorFlow's; kerasafe reports, not recomputes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerprintInfo {
    /// Hash of the whole `SavedModel` proto.
    pub saved_model_checksum: u64,
    /// Hash of the regularized `GraphDef`.
    pub graph_def_program_hash: u64,
    /// Hash of the signatures.
    pub signature_def_hash: u64,
    /// Hash of the object graph's concrete functions.
    pub saved_object_graph_hash: u64,
    /// Hash of `variables/variables.index`.
    pub checkpoint_hash: u64,
    /// Version of the fingerprinting code (TF 2.21 writes producer 4).
    pub version: Option<VersionInfo>,
    /// Random id of this save (newer TF only; empty otherwise).
    pub uuid: String,
    /// TensorFlow's canonical id:
    /// `graph_def_program_hash/signature_def_hash/saved_object_graph_hash/checkpoint_hash`.
    pub singleprint: String,
}

/// A file under `assets/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetInfo {
    /// Path relative to `assets/`, `/`-separated.
    pub path: String,
    /// Size in bytes (of the target, for a symlink that resolves; else 0).
    pub bytes: u64,
    /// Whether the entry is a symbolic link (which may point outside the directory).
    pub symlink: bool,
}

/// The name listings use for a TensorFlow `DataType` value: the [`DType`] name, `resource`,
/// `variant`, or `dtype_enum_N`.
pub fn dtype_name(v: i32) -> String {
    match DType::from_tf_enum(v) {
        Some(d) => d.name().to_string(),
        None if v == 20 => "resource".to_string(),
        None if v == 21 => "variant".to_string(),
        None => format!("dtype_enum_{v}"),
    }
}

/// Read a file of at most `limit` bytes in one go.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    if len > limit {
        return Err(Error::format_in(
            path,
            format!("file is {len} bytes, more than the {limit} bytes a protobuf message can hold"),
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut buf).at(path)?;
    if buf.len() as u64 > limit {
        return Err(Error::format_in(
            path,
            format!("file grew past {limit} bytes while being read"),
        ));
    }
    Ok(buf)
}

/// Whether `path` exists (errors other than "not found" are reported).
fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Decode `saved_model.pb` bytes; an empty or truncated file, or one without a `MetaGraphDef`,
/// is a format error.
pub fn decode_saved_model(bytes: &[u8]) -> Result<SavedModel> {
    if bytes.is_empty() {
        return Err(Error::format("empty file, not a SavedModel protobuf"));
    }
    if bytes.len() as u64 > MAX_PROTO_BYTES {
        return Err(Error::format(format!(
            "{} bytes is more than a protobuf message can hold",
            bytes.len()
        )));
    }
    let sm = SavedModel::decode(bytes).map_err(|e| {
        Error::format(format!(
            "not a valid SavedModel protobuf (truncated or corrupt?): {e}"
        ))
    })?;
    if sm.meta_graphs.is_empty() {
        return Err(Error::format(
            "the SavedModel protobuf has no MetaGraphDef (truncated or not a SavedModel?)",
        ));
    }
    Ok(sm)
}

/// Read and decode `dir/saved_model.pb`, checking first that `dir` is a SavedModel directory.
pub fn read_saved_model(dir: &Path) -> Result<SavedModel> {
    let meta = fs::metadata(dir).at(dir)?;
    if !meta.is_dir() {
        return Err(Error::format_in(
            dir,
            "not a SavedModel: a SavedModel is a directory, this is a file",
        ));
    }
    let pb = dir.join(SAVED_MODEL_PB);
    if !exists(&pb)? {
        let msg = if exists(&dir.join("saved_model.pbtxt"))? {
            "saved_model.pbtxt (text format) is not supported; re-save the model with \
             tf.saved_model.save, which writes the binary saved_model.pb"
        } else if exists(&dir.join("saved_model.cpb"))? {
            "saved_model.cpb (the chunked format TensorFlow uses for protos over 2 GiB) is not \
             supported"
        } else {
            "not a SavedModel directory: it has no saved_model.pb"
        };
        return Err(Error::format_in(dir, msg));
    }
    let bytes = read_bounded(&pb, MAX_PROTO_BYTES)?;
    decode_saved_model(&bytes).in_file(&pb)
}

/// Decode `fingerprint.pb` bytes.
pub fn decode_fingerprint(bytes: &[u8]) -> Result<FingerprintInfo> {
    let f = FingerprintDef::decode(bytes)
        .map_err(|e| Error::format(format!("not a valid FingerprintDef protobuf: {e}")))?;
    Ok(FingerprintInfo {
        singleprint: format!(
            "{}/{}/{}/{}",
            f.graph_def_program_hash,
            f.signature_def_hash,
            f.saved_object_graph_hash,
            f.checkpoint_hash
        ),
        saved_model_checksum: f.saved_model_checksum,
        graph_def_program_hash: f.graph_def_program_hash,
        signature_def_hash: f.signature_def_hash,
        saved_object_graph_hash: f.saved_object_graph_hash,
        checkpoint_hash: f.checkpoint_hash,
        version: f.version.map(VersionInfo::from),
        uuid: f.uuid,
    })
}

/// Read a `fingerprint.pb` file.
pub fn read_fingerprint(path: &Path) -> Result<FingerprintInfo> {
    let bytes = read_bounded(path, MAX_FINGERPRINT_BYTES)?;
    decode_fingerprint(&bytes).in_file(path)
}

/// Read a `keras_metadata.pb` file.
pub fn read_keras_metadata(path: &Path) -> Result<Vec<KerasMetadataNode>> {
    let bytes = read_bounded(path, MAX_PROTO_BYTES)?;
    decode_keras_metadata(&bytes).in_file(path)
}

fn tensor_spec(key: &str, t: &proto::TensorInfo) -> TensorSpec {
    let (encoding, tensor_name, component_names) = match &t.encoding {
        Some(Encoding::Name(n)) => (TensorEncoding::Dense, Some(n.clone()), Vec::new()),
        Some(Encoding::CooSparse(c)) => (
            TensorEncoding::CooSparse,
            None,
            vec![
                c.values_tensor_name.clone(),
                c.indices_tensor_name.clone(),
                c.dense_shape_tensor_name.clone(),
            ],
        ),
        Some(Encoding::CompositeTensor(c)) => (
            TensorEncoding::Composite,
            None,
            c.components
                .iter()
                .map(|x| match &x.encoding {
                    Some(Encoding::Name(n)) => n.clone(),
                    _ => String::new(),
                })
                .collect(),
        ),
        None => (TensorEncoding::Unspecified, None, Vec::new()),
    };
    TensorSpec {
        key: key.to_string(),
        encoding,
        tensor_name,
        component_names,
        dtype: dtype_name(t.dtype),
        shape: graph::shape_of(t.tensor_shape.as_ref()),
    }
}

/// The listing of one `MetaGraphDef`.
pub fn meta_graph_info(m: &MetaGraphDef) -> MetaGraphInfo {
    let info = m.meta_info_def.clone().unwrap_or_default();
    let signatures = m
        .signature_def
        .iter()
        .filter(|(key, _)| !key.starts_with("__"))
        .map(|(key, s)| SignatureInfo {
            key: key.clone(),
            method_name: s.method_name.clone(),
            inputs: s.inputs.iter().map(|(k, t)| tensor_spec(k, t)).collect(),
            outputs: s.outputs.iter().map(|(k, t)| tensor_spec(k, t)).collect(),
        })
        .collect();
    MetaGraphInfo {
        tags: info.tags,
        tensorflow_version: info.tensorflow_version,
        tensorflow_git_version: info.tensorflow_git_version,
        signatures,
        asset_files: m
            .asset_file_def
            .iter()
            .map(|a| a.filename.clone())
            .collect(),
        has_object_graph: m.object_graph_def.is_some(),
    }
}

/// The object graph TF2 loaders use: that of the meta graph tagged exactly `serve`, else the
/// first one that has an object graph.
fn main_object_graph(sm: &SavedModel) -> Option<&SavedObjectGraph> {
    let is_serve = |m: &&MetaGraphDef| {
        m.meta_info_def
            .as_ref()
            .is_some_and(|i| i.tags.len() == 1 && i.tags[0] == "serve")
    };
    sm.meta_graphs
        .iter()
        .filter(is_serve)
        .chain(sm.meta_graphs.iter())
        .find_map(|m| m.object_graph_def.as_ref())
}

fn objects(graph: &SavedObjectGraph, paths: &[Option<Vec<String>>]) -> Vec<ObjectInfo> {
    graph
        .nodes
        .iter()
        .zip(paths)
        .enumerate()
        .map(|(node_id, (node, path))| ObjectInfo {
            node_id,
            path: path.clone(),
            kind: graph::kind_name(node).to_string(),
            identifier: match &node.kind {
                Some(Kind::UserObject(u)) => Some(u.identifier.clone()),
                _ => None,
            },
        })
        .collect()
}

/// List `variables/variables.index` and tie each value to its variable node; every reachable
/// variable node must have a value of its dtype and shape.
fn variables(
    dir: &Path,
    graph: Option<&SavedObjectGraph>,
    paths: &[Option<Vec<String>>],
) -> Result<Vec<VariableInfo>> {
    let prefix = dir.join("variables").join("variables");
    let index = checkpoint::index_path(&prefix);
    // (bundle key, declared dtype, node)
    let mut wanted: Vec<(String, i32, VariableObject)> = Vec::new();
    if let Some(g) = graph {
        let object = |node_id: usize, v: &proto::SavedVariable, path: Vec<String>| VariableObject {
            node_id,
            path,
            variable_name: v.name.clone(),
            trainable: v.trainable,
            shape: graph::shape_of(v.shape.as_ref()),
            slot: None,
        };
        for (node_id, (node, path)) in g.nodes.iter().zip(paths).enumerate() {
            if let (Some(Kind::Variable(v)), Some(path)) = (&node.kind, path) {
                let key = variable_checkpoint_key(path);
                wanted.push((key, v.dtype, object(node_id, v, path.clone())));
            }
        }
        for s in graph::slot_variables(g, paths).in_file(dir.join(SAVED_MODEL_PB))? {
            if let Some(Kind::Variable(v)) = &g.nodes[s.node_id].kind {
                let mut obj = object(s.node_id, v, s.path);
                obj.slot = Some(SlotInfo {
                    original_node_id: s.original_node_id,
                    optimizer_node_id: s.optimizer_node_id,
                    slot_name: s.slot_name,
                });
                wanted.push((s.checkpoint_key, v.dtype, obj));
            }
        }
    }
    if !exists(&index)? {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::format_in(
            &index,
            format!(
                "missing, but the object graph of {} declares {} variable(s)",
                dir.join(SAVED_MODEL_PB).display(),
                wanted.len()
            ),
        ));
    }
    let reader = BundleReader::open(&prefix)?;
    let entries: BTreeMap<&str, &checkpoint::Entry> =
        reader.entries().map(|e| (e.name.as_str(), e)).collect();
    let mut by_key: BTreeMap<String, VariableObject> = BTreeMap::new();
    for (key, dtype, obj) in wanted {
        let what = format!(
            "variable node {} ({:?}, path {:?})",
            obj.node_id,
            obj.variable_name,
            obj.path.join("/")
        );
        let e = entries.get(key.as_str()).ok_or_else(|| {
            Error::format_in(
                &index,
                format!("{what} has no value: key {key:?} is not in the checkpoint"),
            )
        })?;
        if dtype != 0 && dtype != e.dtype_enum {
            return Err(Error::format_in(
                &index,
                format!(
                    "{what} is {} but its value {key:?} is {}",
                    dtype_name(dtype),
                    e.dtype_name()
                ),
            ));
        }
        if !graph::shape_matches(obj.shape.as_deref(), &e.shape) {
            return Err(Error::format_in(
                &index,
                format!(
                    "{what} has shape {:?} but its value {key:?} has shape {:?}",
                    obj.shape, e.shape
                ),
            ));
        }
        by_key.entry(key).or_insert(obj);
    }
    Ok(reader
        .entries()
        .filter(|e| e.name != OBJECT_GRAPH_KEY)
        .map(|e| VariableInfo {
            name: e.name.clone(),
            dtype: e.dtype_name(),
            shape: e.shape.clone(),
            bytes: e.size,
            object: by_key.remove(&e.name),
        })
        .collect())
}

/// Files and symlinks under `dir/assets`, without following links.
fn assets(dir: &Path) -> Result<Vec<AssetInfo>> {
    let root = dir.join("assets");
    match fs::symlink_metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::format_in(&root, "is not a directory")),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&root, e)),
    }
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(root.clone(), String::new(), 0)];
    while let Some((path, rel, depth)) = stack.pop() {
        if depth > MAX_ASSET_DEPTH {
            return Err(Error::format_in(
                &root,
                format!("directories nest deeper than {MAX_ASSET_DEPTH} levels"),
            ));
        }
        for entry in fs::read_dir(&path).at(&path)? {
            let entry = entry.at(&path)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let child = entry.path();
            let kind = entry.file_type().at(&child)?;
            if kind.is_dir() {
                stack.push((child, child_rel, depth + 1));
                continue;
            }
            if !kind.is_file() && !kind.is_symlink() {
                // A FIFO or device would block or stream forever when TensorFlow reads it.
                return Err(Error::format_in(&child, "is not a regular file"));
            }
            if out.len() >= MAX_ASSETS {
                return Err(Error::format_in(
                    &root,
                    format!("holds more than {MAX_ASSETS} files"),
                ));
            }
            let bytes = if kind.is_symlink() {
                fs::metadata(&child).map(|m| m.len()).unwrap_or(0)
            } else {
                entry.metadata().at(&child)?.len()
            };
            out.push(AssetInfo {
                path: child_rel,
                bytes,
                symlink: kind.is_symlink(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Keras JSON that SavedModels written before `keras_metadata.pb` existed (TF ≤ 2.4) keep in
/// `SavedUserObject.metadata`; `None` when no node has any.
fn legacy_keras_metadata(
    graph: &SavedObjectGraph,
    paths: &[Option<Vec<String>>],
) -> Result<Option<Vec<KerasLayerInfo>>> {
    let mut layers = Vec::new();
    for (node_id, (node, path)) in graph.nodes.iter().zip(paths).enumerate() {
        let Some(Kind::UserObject(u)) = &node.kind else {
            continue;
        };
        if u.metadata.trim().is_empty() {
            continue;
        }
        let node_path = match path {
            Some(p) => std::iter::once("root")
                .chain(p.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("."),
            None => format!("<unreachable node {node_id}>"),
        };
        let node = KerasMetadataNode {
            node_id: i32::try_from(node_id)
                .map_err(|_| Error::format("object graph has more than 2^31 nodes"))?,
            node_path,
            identifier: u.identifier.clone(),
            metadata: u.metadata.clone(),
            version: u.version.clone().map(VersionInfo::from),
        };
        layers.push(node.layer_info()?);
    }
    Ok((!layers.is_empty()).then_some(layers))
}

/// List a SavedModel directory without TensorFlow; see [`SavedModelInfo`].
///
/// Errors: a missing `dir` is an I/O error; a directory without `saved_model.pb`, a truncated or
/// corrupt protobuf, or a `variables/` bundle that lacks a value for a variable of the object
/// graph (or holds it with another dtype or shape) is a format error naming the file.
pub fn inspect(dir: &Path) -> Result<SavedModelInfo> {
    let sm = read_saved_model(dir)?;
    let pb = dir.join(SAVED_MODEL_PB);
    let graph = main_object_graph(&sm);
    let paths = match graph {
        Some(g) => object_paths(g).in_file(&pb)?,
        None => Vec::new(),
    };
    let variables = variables(dir, graph, &paths)?;

    let fp_path = dir.join(FINGERPRINT_PB);
    let fingerprint = if exists(&fp_path)? {
        Some(read_fingerprint(&fp_path)?)
    } else {
        None
    };

    let km_path = dir.join(KERAS_METADATA_PB);
    let keras_metadata = if exists(&km_path)? {
        let nodes = read_keras_metadata(&km_path)?;
        let n = graph.map_or(0, |g| g.nodes.len());
        let mut layers = Vec::with_capacity(nodes.len());
        for node in &nodes {
            if graph.is_some() && usize::try_from(node.node_id).map_or(true, |id| id >= n) {
                return Err(Error::format_in(
                    &km_path,
                    format!(
                        "node {:?} refers to object {} but the object graph has {n} nodes",
                        node.node_path, node.node_id
                    ),
                ));
            }
            layers.push(node.layer_info().in_file(&km_path)?);
        }
        Some(layers)
    } else {
        graph
            .map(|g| legacy_keras_metadata(g, &paths))
            .transpose()
            .in_file(&pb)?
            .flatten()
    };

    Ok(SavedModelInfo {
        schema_version: sm.saved_model_schema_version,
        meta_graphs: sm.meta_graphs.iter().map(meta_graph_info).collect(),
        objects: graph.map(|g| objects(g, &paths)).unwrap_or_default(),
        variables,
        fingerprint,
        assets: assets(dir)?,
        keras_metadata,
    })
}

#[cfg(test)]
mod tests;
