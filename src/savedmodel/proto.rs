//! Hand-written `prost` messages for reading SavedModel directories (no `protoc` needed).
//!
//! Only the fields a reader needs are declared; prost skips the rest, so the (usually huge)
//! `MetaGraphDef.graph_def` and `SavedObjectGraph.concrete_functions` are never parsed. Field
//! numbers follow `saved_model.proto`, `meta_graph.proto`, `saved_object_graph.proto`,
//! `fingerprint.proto` and tf-keras' `saved_metadata.proto` (spec §2.2, §2.3, §2.6, §2.7).
//! Enums (`DataType`, …) are plain `i32` so values newer than this file still decode.
#![allow(missing_docs)]

use std::collections::BTreeMap;

pub use crate::checkpoint::proto::{
    Dim, ObjectReference, SlotVariableReference, TensorShapeProto, VersionDef,
};

/// `tensorflow.SavedModel` (`saved_model.pb`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedModel {
    #[prost(int64, tag = "1")]
    pub saved_model_schema_version: i64,
    #[prost(message, repeated, tag = "2")]
    pub meta_graphs: Vec<MetaGraphDef>,
}

/// `tensorflow.MetaGraphDef`; field 2 (`graph_def`), 3 (`saver_def`) and 4 (`collection_def`)
/// are deliberately not declared.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaGraphDef {
    #[prost(message, optional, tag = "1")]
    pub meta_info_def: Option<MetaInfoDef>,
    #[prost(btree_map = "string, message", tag = "5")]
    pub signature_def: BTreeMap<String, SignatureDef>,
    #[prost(message, repeated, tag = "6")]
    pub asset_file_def: Vec<AssetFileDef>,
    #[prost(message, optional, tag = "7")]
    pub object_graph_def: Option<SavedObjectGraph>,
}

/// `MetaGraphDef.MetaInfoDef` (without `stripped_op_list`, `any_info`, `function_aliases`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaInfoDef {
    #[prost(string, tag = "1")]
    pub meta_graph_version: String,
    #[prost(string, repeated, tag = "4")]
    pub tags: Vec<String>,
    #[prost(string, tag = "5")]
    pub tensorflow_version: String,
    #[prost(string, tag = "6")]
    pub tensorflow_git_version: String,
    #[prost(bool, tag = "7")]
    pub stripped_default_attrs: bool,
}

/// `tensorflow.SignatureDef` (without `defaults`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignatureDef {
    #[prost(btree_map = "string, message", tag = "1")]
    pub inputs: BTreeMap<String, TensorInfo>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub outputs: BTreeMap<String, TensorInfo>,
    #[prost(string, tag = "3")]
    pub method_name: String,
}

/// `tensorflow.TensorInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorInfo {
    #[prost(oneof = "tensor_info::Encoding", tags = "1, 4, 5")]
    pub encoding: Option<tensor_info::Encoding>,
    /// `DataType` enum value.
    #[prost(int32, tag = "2")]
    pub dtype: i32,
    #[prost(message, optional, tag = "3")]
    pub tensor_shape: Option<TensorShapeProto>,
}

/// The `encoding` oneof of [`TensorInfo`].
pub mod tensor_info {
    /// How the tensor is found in the graph.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Encoding {
        /// `op_name:output_index` of a dense tensor.
        #[prost(string, tag = "1")]
        Name(String),
        #[prost(message, tag = "4")]
        CooSparse(super::CooSparse),
        #[prost(message, tag = "5")]
        CompositeTensor(super::CompositeTensor),
    }
}

/// `TensorInfo.CooSparse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CooSparse {
    #[prost(string, tag = "1")]
    pub values_tensor_name: String,
    #[prost(string, tag = "2")]
    pub indices_tensor_name: String,
    #[prost(string, tag = "3")]
    pub dense_shape_tensor_name: String,
}

/// `TensorInfo.CompositeTensor` (without `type_spec`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompositeTensor {
    #[prost(message, repeated, tag = "2")]
    pub components: Vec<TensorInfo>,
}

/// `tensorflow.AssetFileDef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AssetFileDef {
    #[prost(message, optional, tag = "1")]
    pub tensor_info: Option<TensorInfo>,
    /// Basename inside `assets/`.
    #[prost(string, tag = "2")]
    pub filename: String,
}

/// `tensorflow.SavedObjectGraph` (without `concrete_functions`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObjectGraph {
    /// Index = node id; node 0 is the root.
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<SavedObject>,
}

/// `tensorflow.SavedObject` (without `dependencies`, `saveable_objects`, `serialized_user_proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObject {
    #[prost(message, repeated, tag = "1")]
    pub children: Vec<ObjectReference>,
    #[prost(message, repeated, tag = "3")]
    pub slot_variables: Vec<SlotVariableReference>,
    #[prost(oneof = "saved_object::Kind", tags = "4, 5, 6, 7, 8, 9, 10, 12")]
    pub kind: Option<saved_object::Kind>,
    #[prost(string, tag = "13")]
    pub registered_name: String,
    #[prost(string, tag = "16")]
    pub registered_saver: String,
}

/// The `kind` oneof of [`SavedObject`].
pub mod saved_object {
    /// What a node is.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "4")]
        UserObject(super::SavedUserObject),
        #[prost(message, tag = "5")]
        Asset(super::SavedAsset),
        #[prost(message, tag = "6")]
        Function(super::SavedFunction),
        #[prost(message, tag = "7")]
        Variable(super::SavedVariable),
        #[prost(message, tag = "8")]
        BareConcreteFunction(super::SavedBareConcreteFunction),
        #[prost(message, tag = "9")]
        Constant(super::SavedConstant),
        #[prost(message, tag = "10")]
        Resource(super::SavedResource),
        #[prost(message, tag = "12")]
        CapturedTensor(super::CapturedTensor),
    }
}

/// `tensorflow.SavedUserObject`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedUserObject {
    /// `_generic_user_object`, `trackable_list_wrapper`, `_tf_keras_layer`, …
    #[prost(string, tag = "1")]
    pub identifier: String,
    #[prost(message, optional, tag = "2")]
    pub version: Option<VersionDef>,
    /// Deprecated Keras JSON (empty since `keras_metadata.pb`).
    #[prost(string, tag = "3")]
    pub metadata: String,
}

/// `tensorflow.SavedAsset`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedAsset {
    /// Index into `MetaGraphDef.asset_file_def`.
    #[prost(int32, tag = "1")]
    pub asset_file_def_index: i32,
}

/// `tensorflow.SavedFunction` (without `function_spec`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedFunction {
    #[prost(string, repeated, tag = "1")]
    pub concrete_functions: Vec<String>,
}

/// `tensorflow.SavedVariable`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedVariable {
    /// `DataType` enum value.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
    #[prost(bool, tag = "3")]
    pub trainable: bool,
    /// AUTO 0, NONE 1, ON_WRITE 2, ON_READ 3.
    #[prost(int32, tag = "4")]
    pub synchronization: i32,
    /// NONE 0, SUM 1, MEAN 2, ONLY_FIRST_REPLICA 3.
    #[prost(int32, tag = "5")]
    pub aggregation: i32,
    #[prost(string, tag = "6")]
    pub name: String,
    #[prost(string, tag = "7")]
    pub device: String,
    #[prost(message, repeated, tag = "8")]
    pub experimental_distributed_variable_components: Vec<SavedVariable>,
}

/// `tensorflow.SavedBareConcreteFunction` (without `function_spec`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedBareConcreteFunction {
    #[prost(string, tag = "1")]
    pub concrete_function_name: String,
    #[prost(string, repeated, tag = "2")]
    pub argument_keywords: Vec<String>,
    #[prost(int64, tag = "3")]
    pub allowed_positional_arguments: i64,
}

/// `tensorflow.SavedConstant`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedConstant {
    #[prost(string, tag = "1")]
    pub operation: String,
}

/// `tensorflow.SavedResource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedResource {
    #[prost(string, tag = "1")]
    pub device: String,
}

/// `tensorflow.CapturedTensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CapturedTensor {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub concrete_function: String,
}

/// `tensorflow.FingerprintDef` (`fingerprint.pb`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FingerprintDef {
    #[prost(uint64, tag = "1")]
    pub saved_model_checksum: u64,
    #[prost(uint64, tag = "2")]
    pub graph_def_program_hash: u64,
    #[prost(uint64, tag = "3")]
    pub signature_def_hash: u64,
    #[prost(uint64, tag = "4")]
    pub saved_object_graph_hash: u64,
    #[prost(uint64, tag = "5")]
    pub checkpoint_hash: u64,
    #[prost(message, optional, tag = "6")]
    pub version: Option<VersionDef>,
    #[prost(string, tag = "7")]
    pub uuid: String,
}

/// tf-keras `SavedMetadata` (`keras_metadata.pb`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedMetadata {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<KerasSavedObject>,
}

/// tf-keras `SavedObject` inside `SavedMetadata` (a different message from
/// `tensorflow.SavedObject`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct KerasSavedObject {
    /// Index into `SavedObjectGraph.nodes`.
    #[prost(int32, tag = "2")]
    pub node_id: i32,
    /// `root` or `root.<edge>.<edge>`.
    #[prost(string, tag = "3")]
    pub node_path: String,
    /// `_tf_keras_layer`, `_tf_keras_network`, …
    #[prost(string, tag = "4")]
    pub identifier: String,
    /// JSON.
    #[prost(string, tag = "5")]
    pub metadata: String,
    #[prost(message, optional, tag = "6")]
    pub version: Option<VersionDef>,
}
