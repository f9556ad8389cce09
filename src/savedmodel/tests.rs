//! Unit tests over SavedModel directories built in memory.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::proto::*;
use super::*;
use crate::checkpoint::object_graph;
use crate::tensor::{Tensor, TensorData};

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn edges(children: &[(i32, &str)]) -> Vec<ObjectReference> {
    children
        .iter()
        .map(|&(node_id, name)| ObjectReference {
            node_id,
            local_name: name.to_string(),
        })
        .collect()
}

fn user(identifier: &str, children: &[(i32, &str)]) -> SavedObject {
    SavedObject {
        children: edges(children),
        kind: Some(saved_object::Kind::UserObject(SavedUserObject {
            identifier: identifier.to_string(),
            version: Some(VersionDef {
                producer: 1,
                min_consumer: 1,
                bad_consumers: vec![],
            }),
            metadata: String::new(),
        })),
        ..Default::default()
    }
}

fn variable(name: &str, dtype: DType, dims: &[i64], trainable: bool) -> SavedObject {
    SavedObject {
        kind: Some(saved_object::Kind::Variable(SavedVariable {
            dtype: dtype.tf_enum(),
            shape: Some(shape(dims)),
            trainable,
            name: name.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn tensor_info(name: &str, dtype: i32, dims: Option<&[i64]>) -> TensorInfo {
    TensorInfo {
        encoding: Some(tensor_info::Encoding::Name(name.to_string())),
        dtype,
        tensor_shape: Some(match dims {
            Some(d) => shape(d),
            None => TensorShapeProto {
                dim: vec![],
                unknown_rank: true,
            },
        }),
    }
}

/// Root with `w` (float32 [2, 2]) and `d["a/b"]` (int64 scalar); `serving_default` and the
/// init-op signature; one asset.
fn sample() -> SavedModel {
    let serving = SignatureDef {
        inputs: BTreeMap::from([(
            "x".to_string(),
            tensor_info("serving_default_x:0", 1, Some(&[-1, 2])),
        )]),
        outputs: BTreeMap::from([
            (
                "y".to_string(),
                tensor_info("StatefulPartitionedCall:0", 1, Some(&[-1, 2])),
            ),
            (
                "z".to_string(),
                tensor_info("StatefulPartitionedCall:1", 22, None),
            ),
        ]),
        method_name: "tensorflow/serving/predict".to_string(),
    };
    let init = SignatureDef {
        outputs: BTreeMap::from([(
            "__saved_model_init_op".to_string(),
            TensorInfo {
                encoding: Some(tensor_info::Encoding::Name("NoOp".to_string())),
                dtype: 0,
                tensor_shape: None,
            },
        )]),
        ..Default::default()
    };
    SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![MetaGraphDef {
            meta_info_def: Some(MetaInfoDef {
                tags: vec!["serve".to_string()],
                tensorflow_version: "2.21.0".to_string(),
                tensorflow_git_version: "v2.21.0".to_string(),
                stripped_default_attrs: true,
                ..Default::default()
            }),
            signature_def: BTreeMap::from([
                ("serving_default".to_string(), serving),
                ("__saved_model_init_op".to_string(), init),
            ]),
            asset_file_def: vec![AssetFileDef {
                tensor_info: None,
                filename: "vocab.txt".to_string(),
            }],
            object_graph_def: Some(SavedObjectGraph {
                nodes: vec![
                    user("_generic_user_object", &[(1, "w"), (2, "d"), (4, "vocab")]),
                    variable("w", DType::F32, &[2, 2], true),
                    user("trackable_dict_wrapper", &[(3, "a/b")]),
                    variable("step", DType::I64, &[], false),
                    SavedObject {
                        kind: Some(saved_object::Kind::Asset(SavedAsset {
                            asset_file_def_index: 0,
                        })),
                        ..Default::default()
                    },
                ],
            }),
        }],
    }
}

fn f32_tensor(shape: Vec<u64>) -> Tensor<'static> {
    let n: u64 = shape.iter().product();
    let bytes: Vec<u8> = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
    Tensor {
        dtype: DType::F32,
        shape,
        data: TensorData::Bytes(Cow::Owned(bytes)),
    }
}

fn i64_scalar(dtype: DType) -> Tensor<'static> {
    let bytes = if dtype == DType::I64 {
        7i64.to_le_bytes().to_vec()
    } else {
        7i32.to_le_bytes().to_vec()
    };
    Tensor {
        dtype,
        shape: vec![],
        data: TensorData::Bytes(Cow::Owned(bytes)),
    }
}

const W_KEY: &str = "w/.ATTRIBUTES/VARIABLE_VALUE";
const STEP_KEY: &str = "d/a.Sb/.ATTRIBUTES/VARIABLE_VALUE";

/// Write `sm` and a `variables/` bundle holding `tensors` plus the checkpoint object graph.
fn write_dir(dir: &Path, sm: &SavedModel, tensors: Vec<(&str, Tensor<'static>)>) {
    fs::create_dir_all(dir.join("assets")).unwrap();
    fs::write(dir.join(SAVED_MODEL_PB), sm.encode_to_vec()).unwrap();
    let keys: Vec<(String, String)> = tensors
        .iter()
        .filter(|(k, _)| k.contains(object_graph::ATTRIBUTES))
        .map(|(k, _)| (k.to_string(), k.to_string()))
        .collect();
    let mut all = tensors;
    if !keys.is_empty() {
        let graph = object_graph::build(&keys).unwrap();
        all.push((
            OBJECT_GRAPH_KEY,
            Tensor {
                dtype: DType::String,
                shape: vec![],
                data: TensorData::Strings(vec![Cow::Owned(graph)]),
            },
        ));
    }
    checkpoint::write(&dir.join("variables").join("variables"), &all).unwrap();
}

fn good_tensors() -> Vec<(&'static str, Tensor<'static>)> {
    vec![
        (W_KEY, f32_tensor(vec![2, 2])),
        (STEP_KEY, i64_scalar(DType::I64)),
    ]
}

fn format_msg(e: &Error) -> (Option<PathBuf>, String) {
    match e {
        Error::Format { at, msg } => (at.0.clone(), msg.clone()),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn savedmodel_inspects_a_built_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dir(dir, &sample(), good_tensors());
    fs::write(dir.join("assets/vocab.txt"), b"a\nb\n").unwrap();
    fs::create_dir_all(dir.join("assets/sub")).unwrap();
    fs::write(dir.join("assets/sub/x.bin"), [0u8; 3]).unwrap();

    let info = inspect(dir).unwrap();
    assert_eq!(info.schema_version, 1);
    let mg = &info.meta_graphs[0];
    assert_eq!(mg.tags, ["serve"]);
    assert_eq!(mg.tensorflow_version, "2.21.0");
    assert!(mg.has_object_graph);
    assert_eq!(mg.asset_files, ["vocab.txt"]);
    let keys: Vec<_> = mg.signatures.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["serving_default"], "internal signatures are skipped");
    let sig = mg.signature("serving_default").unwrap();
    assert_eq!(sig.method_name, "tensorflow/serving/predict");
    assert_eq!(sig.inputs[0].key, "x");
    assert_eq!(
        sig.inputs[0].tensor_name.as_deref(),
        Some("serving_default_x:0")
    );
    assert_eq!(sig.inputs[0].encoding, TensorEncoding::Dense);
    assert_eq!(sig.inputs[0].dtype, "float32");
    assert_eq!(sig.inputs[0].shape, Some(vec![-1, 2]));
    assert_eq!(sig.outputs[1].dtype, "uint32");
    assert_eq!(sig.outputs[1].shape, None);

    assert_eq!(info.variables.len(), 2);
    let step = &info.variables[0];
    assert_eq!(step.name, STEP_KEY);
    assert_eq!((step.dtype.as_str(), step.bytes), ("int64", 8));
    let obj = step.object.as_ref().unwrap();
    assert_eq!(obj.node_id, 3);
    assert_eq!(obj.path, ["d", "a/b"]);
    assert_eq!(obj.variable_name, "step");
    assert!(!obj.trainable);
    let w = &info.variables[1];
    assert_eq!(
        (w.name.as_str(), w.shape.as_slice()),
        (W_KEY, &[2u64, 2][..])
    );
    assert_eq!(w.object.as_ref().unwrap().shape, Some(vec![2, 2]));

    assert_eq!(info.objects.len(), 5);
    assert_eq!(info.objects[2].kind, "user_object");
    assert_eq!(
        info.objects[2].identifier.as_deref(),
        Some("trackable_dict_wrapper")
    );
    assert_eq!(info.objects[4].kind, "asset");
    assert_eq!(info.objects[4].path, Some(vec!["vocab".to_string()]));

    let assets: Vec<_> = info
        .assets
        .iter()
        .map(|a| (a.path.as_str(), a.bytes))
        .collect();
    assert_eq!(assets, [("sub/x.bin", 3), ("vocab.txt", 4)]);
    assert_eq!(info.fingerprint, None);
    assert_eq!(info.keras_metadata, None);

    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json["meta_graphs"][0]["signatures"][0]["outputs"][1]["shape"],
        serde_json::Value::Null
    );
    assert_eq!(
        json["meta_graphs"][0]["signatures"][0]["inputs"][0]["encoding"],
        "dense"
    );
}

#[test]
fn savedmodel_missing_variable_value_is_a_format_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sample(), vec![(W_KEY, f32_tensor(vec![2, 2]))]);
    let err = inspect(tmp.path()).unwrap_err();
    let (at, msg) = format_msg(&err);
    assert_eq!(
        at.unwrap(),
        tmp.path().join("variables").join("variables.index")
    );
    assert!(msg.contains(STEP_KEY) && msg.contains("step"), "{msg}");
}

#[test]
fn savedmodel_shape_and_dtype_mismatches_are_format_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(
        tmp.path(),
        &sample(),
        vec![
            (W_KEY, f32_tensor(vec![4])),
            (STEP_KEY, i64_scalar(DType::I64)),
        ],
    );
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert!(at.unwrap().ends_with("variables/variables.index"));
    assert!(msg.contains("shape"), "{msg}");

    let tmp = tempfile::tempdir().unwrap();
    write_dir(
        tmp.path(),
        &sample(),
        vec![
            (W_KEY, f32_tensor(vec![2, 2])),
            (STEP_KEY, i64_scalar(DType::I32)),
        ],
    );
    let (_, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert!(msg.contains("int64") && msg.contains("int32"), "{msg}");
}

#[test]
fn savedmodel_unknown_dims_accept_any_size() {
    let mut sm = sample();
    let graph = sm.meta_graphs[0].object_graph_def.as_mut().unwrap();
    graph.nodes[1] = variable("w", DType::F32, &[-1, 2], true);
    let tmp = tempfile::tempdir().unwrap();
    write_dir(
        tmp.path(),
        &sm,
        vec![
            (W_KEY, f32_tensor(vec![5, 2])),
            (STEP_KEY, i64_scalar(DType::I64)),
        ],
    );
    let info = inspect(tmp.path()).unwrap();
    assert_eq!(info.variables[1].shape, [5, 2]);
    assert_eq!(
        info.variables[1].object.as_ref().unwrap().shape,
        Some(vec![-1, 2])
    );
}

#[test]
fn savedmodel_missing_variables_dir() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(SAVED_MODEL_PB), sample().encode_to_vec()).unwrap();
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert!(at.unwrap().ends_with("variables/variables.index"));
    assert!(msg.contains("2 variable"), "{msg}");

    // Without variable nodes there is nothing to miss.
    let mut sm = sample();
    sm.meta_graphs[0].object_graph_def = None;
    fs::write(tmp.path().join(SAVED_MODEL_PB), sm.encode_to_vec()).unwrap();
    let info = inspect(tmp.path()).unwrap();
    assert!(info.variables.is_empty() && info.objects.is_empty() && info.assets.is_empty());
}

#[test]
fn savedmodel_without_object_graph_lists_name_based_variables() {
    let mut sm = sample();
    sm.meta_graphs[0].object_graph_def = None;
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sm, vec![("dense/kernel", f32_tensor(vec![3]))]);
    let info = inspect(tmp.path()).unwrap();
    assert_eq!(info.variables.len(), 1);
    assert_eq!(info.variables[0].name, "dense/kernel");
    assert_eq!(info.variables[0].object, None);
    assert!(!info.meta_graphs[0].has_object_graph);
}

#[test]
fn savedmodel_missing_dir_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    match inspect(&missing).unwrap_err() {
        Error::Io { path, source } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn savedmodel_dir_without_pb_is_not_a_savedmodel() {
    let tmp = tempfile::tempdir().unwrap();
    let err = inspect(tmp.path()).unwrap_err();
    let (at, msg) = format_msg(&err);
    assert_eq!(at.as_deref(), Some(tmp.path()));
    assert!(msg.contains("not a SavedModel"), "{msg}");
    assert!(err.to_string().contains(&*tmp.path().to_string_lossy()));

    fs::write(tmp.path().join("saved_model.pbtxt"), "meta_graphs {}").unwrap();
    let (_, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert!(msg.contains("pbtxt"), "{msg}");

    let file = tmp.path().join("model.keras");
    fs::write(&file, b"PK").unwrap();
    let (at, msg) = format_msg(&inspect(&file).unwrap_err());
    assert_eq!(at.unwrap(), file);
    assert!(msg.contains("not a SavedModel"), "{msg}");
}

#[test]
fn savedmodel_truncated_pb_is_a_format_error_at_every_offset() {
    let bytes = sample().encode_to_vec();
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join(SAVED_MODEL_PB);
    for cut in 0..bytes.len() {
        assert!(decode_saved_model(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for cut in (0..bytes.len()).step_by(7) {
        fs::write(&pb, &bytes[..cut]).unwrap();
        let (at, _) = format_msg(&inspect(tmp.path()).unwrap_err());
        assert_eq!(at.unwrap(), pb, "cut at {cut}");
    }
}

/// xorshift64*: deterministic bytes without a dependency.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn savedmodel_random_bytes_never_panic() {
    let mut errors = 0;
    for seed in 0..2000u64 {
        let len = (seed as usize * 37) % 600;
        if decode_saved_model(&noise(seed, len)).is_err() {
            errors += 1;
        }
        let _ = decode_fingerprint(&noise(seed, len % 64));
        let _ = decode_keras_metadata(&noise(seed, len));
    }
    assert!(
        errors >= 1990,
        "only {errors} of 2000 noise inputs rejected"
    );

    // Flip bytes of a valid file: decoding may succeed or fail, but must not panic.
    let good = sample().encode_to_vec();
    for seed in 0..2000u64 {
        let mut b = good.clone();
        let r = noise(seed, 3);
        let i = (u16::from_le_bytes([r[0], r[1]]) as usize) % b.len();
        b[i] ^= r[2] | 1;
        let _ = decode_saved_model(&b);
    }

    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(SAVED_MODEL_PB), noise(7, 4096)).unwrap();
    let (at, _) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), tmp.path().join(SAVED_MODEL_PB));
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

#[test]
fn savedmodel_huge_length_prefix_is_an_error() {
    // Field 2 (meta_graphs) claiming 2^31 bytes, followed by a few.
    let mut b = vec![0x08, 0x01, 0x12];
    b.extend(varint(1 << 31));
    b.extend([0u8; 16]);
    assert!(matches!(decode_saved_model(&b), Err(Error::Format { .. })));
    // Nested: a meta graph whose signature map entry claims 2^31 bytes.
    let mut inner = vec![0x2a];
    inner.extend(varint(1 << 31));
    inner.extend([0x0a, 0x00]);
    let mut b = vec![0x08, 0x01, 0x12];
    b.extend(varint(inner.len() as u64));
    b.extend(inner);
    assert!(decode_saved_model(&b).is_err());
    // A 10-byte varint length with every bit set.
    let mut b = vec![0x12];
    b.extend([0xff; 9]);
    b.push(0x01);
    assert!(decode_saved_model(&b).is_err());
}

#[test]
fn savedmodel_oversized_pb_is_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join(SAVED_MODEL_PB);
    let f = File::create(&pb).unwrap();
    // Sparse: no disk space or memory is used.
    f.set_len(MAX_PROTO_BYTES + 1).unwrap();
    drop(f);
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), pb);
    assert!(msg.contains("bytes"), "{msg}");
}

#[test]
fn savedmodel_bad_object_graph_edge_names_the_pb() {
    let mut sm = sample();
    let graph = sm.meta_graphs[0].object_graph_def.as_mut().unwrap();
    graph.nodes[2].children[0].node_id = 99;
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sm, good_tensors());
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), tmp.path().join(SAVED_MODEL_PB));
    assert!(msg.contains("99"), "{msg}");
}

#[test]
fn savedmodel_fingerprint_is_read() {
    let fp = FingerprintDef {
        saved_model_checksum: u64::MAX,
        graph_def_program_hash: 1,
        signature_def_hash: 2,
        saved_object_graph_hash: 3,
        checkpoint_hash: 4,
        version: Some(VersionDef {
            producer: 4,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
        uuid: "123".to_string(),
    };
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sample(), good_tensors());
    fs::write(tmp.path().join(FINGERPRINT_PB), fp.encode_to_vec()).unwrap();
    let got = inspect(tmp.path()).unwrap().fingerprint.unwrap();
    assert_eq!(got.saved_model_checksum, u64::MAX);
    assert_eq!(got.singleprint, "1/2/3/4");
    assert_eq!(got.version.unwrap().producer, 4);
    assert_eq!(got.uuid, "123");

    fs::write(tmp.path().join(FINGERPRINT_PB), [0x08, 0xff]).unwrap();
    let (at, _) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), tmp.path().join(FINGERPRINT_PB));
}

#[test]
fn savedmodel_keras_metadata_is_listed_and_checked() {
    let km = SavedMetadata {
        nodes: vec![
            KerasSavedObject {
                node_id: 0,
                node_path: "root".to_string(),
                identifier: "_tf_keras_network".to_string(),
                metadata: r#"{"name": "model", "class_name": "Functional"}"#.to_string(),
                version: None,
            },
            KerasSavedObject {
                node_id: 2,
                node_path: "root.d".to_string(),
                identifier: "_tf_keras_layer".to_string(),
                metadata: r#"{"name": "dense", "class_name": "Dense", "x": -Infinity}"#.to_string(),
                version: None,
            },
        ],
    };
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sample(), good_tensors());
    let path = tmp.path().join(KERAS_METADATA_PB);
    fs::write(&path, km.encode_to_vec()).unwrap();
    let layers = inspect(tmp.path()).unwrap().keras_metadata.unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1].node_path, "root.d");
    assert_eq!(layers[1].class_name.as_deref(), Some("Dense"));
    assert_eq!(layers[0].name.as_deref(), Some("model"));

    let mut bad = km.clone();
    bad.nodes[1].node_id = 5;
    fs::write(&path, bad.encode_to_vec()).unwrap();
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), path);
    assert!(msg.contains("root.d"), "{msg}");

    let mut bad = km;
    bad.nodes[0].metadata = "{".to_string();
    fs::write(&path, bad.encode_to_vec()).unwrap();
    let (at, _) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), path);

    fs::write(&path, [0x0a, 0x7f]).unwrap();
    let (at, _) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), path);
}

#[test]
fn savedmodel_sparse_and_composite_signature_tensors() {
    let sparse = TensorInfo {
        encoding: Some(tensor_info::Encoding::CooSparse(CooSparse {
            values_tensor_name: "v:0".to_string(),
            indices_tensor_name: "i:0".to_string(),
            dense_shape_tensor_name: "s:0".to_string(),
        })),
        dtype: 9,
        tensor_shape: Some(shape(&[-1, -1])),
    };
    let ragged = TensorInfo {
        encoding: Some(tensor_info::Encoding::CompositeTensor(CompositeTensor {
            components: vec![
                tensor_info("a:0", 1, Some(&[-1])),
                tensor_info("b:0", 9, Some(&[-1])),
            ],
        })),
        dtype: 1,
        tensor_shape: Some(shape(&[-1, -1])),
    };
    let mut sm = sample();
    let sig = sm.meta_graphs[0]
        .signature_def
        .get_mut("serving_default")
        .unwrap();
    sig.inputs.insert("sp".to_string(), sparse);
    sig.inputs.insert("rg".to_string(), ragged);
    let decoded = decode_saved_model(&sm.encode_to_vec()).unwrap();
    let info = meta_graph_info(&decoded.meta_graphs[0]);
    let sig = info.signature("serving_default").unwrap();
    let rg = sig.inputs.iter().find(|t| t.key == "rg").unwrap();
    assert_eq!(rg.encoding, TensorEncoding::Composite);
    assert_eq!(rg.component_names, ["a:0", "b:0"]);
    let sp = sig.inputs.iter().find(|t| t.key == "sp").unwrap();
    assert_eq!(sp.encoding, TensorEncoding::CooSparse);
    assert_eq!(sp.tensor_name, None);
    assert_eq!(sp.component_names, ["v:0", "i:0", "s:0"]);
    assert_eq!(sp.dtype, "int64");
}

#[test]
fn savedmodel_dtype_names() {
    assert_eq!(dtype_name(1), "float32");
    assert_eq!(dtype_name(14), "bfloat16");
    assert_eq!(dtype_name(20), "resource");
    assert_eq!(dtype_name(21), "variant");
    assert_eq!(dtype_name(0), "dtype_enum_0");
    assert_eq!(dtype_name(-3), "dtype_enum_-3");
}

#[test]
fn savedmodel_prefers_the_serve_meta_graph() {
    let mut sm = sample();
    let mut train = sm.meta_graphs[0].clone();
    train.meta_info_def.as_mut().unwrap().tags = vec!["train".to_string()];
    train.object_graph_def = Some(SavedObjectGraph {
        nodes: vec![user("other", &[])],
    });
    sm.meta_graphs.insert(0, train);
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sm, good_tensors());
    let info = inspect(tmp.path()).unwrap();
    assert_eq!(info.meta_graphs.len(), 2);
    assert_eq!(info.objects.len(), 5);
    assert_eq!(info.meta_graphs[0].tags, ["train"]);
}

#[test]
fn savedmodel_legacy_keras_metadata_in_user_objects() {
    let mut sm = sample();
    let graph = sm.meta_graphs[0].object_graph_def.as_mut().unwrap();
    if let Some(saved_object::Kind::UserObject(u)) = &mut graph.nodes[2].kind {
        u.identifier = "_tf_keras_layer".to_string();
        u.metadata = r#"{"class_name": "Dense", "name": "d", "x": NaN}"#.to_string();
    }
    let tmp = tempfile::tempdir().unwrap();
    write_dir(tmp.path(), &sm, good_tensors());
    let layers = inspect(tmp.path()).unwrap().keras_metadata.unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].node_path, "root.d");
    assert_eq!(layers[0].node_id, 2);
    assert_eq!(layers[0].class_name.as_deref(), Some("Dense"));

    // keras_metadata.pb wins over the legacy JSON.
    fs::write(
        tmp.path().join(KERAS_METADATA_PB),
        SavedMetadata::default().encode_to_vec(),
    )
    .unwrap();
    assert_eq!(inspect(tmp.path()).unwrap().keras_metadata, Some(vec![]));

    fs::remove_file(tmp.path().join(KERAS_METADATA_PB)).unwrap();
    let graph = sm.meta_graphs[0].object_graph_def.as_mut().unwrap();
    if let Some(saved_object::Kind::UserObject(u)) = &mut graph.nodes[2].kind {
        u.metadata = "{oops".to_string();
    }
    fs::write(tmp.path().join(SAVED_MODEL_PB), sm.encode_to_vec()).unwrap();
    let (at, msg) = format_msg(&inspect(tmp.path()).unwrap_err());
    assert_eq!(at.unwrap(), tmp.path().join(SAVED_MODEL_PB));
    assert!(msg.contains("root.d"), "{msg}");
}

#[test]
fn savedmodel_special_files_in_assets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sm");
    write_dir(&dir, &sample(), good_tensors());
    let fifo = dir.join("assets/vocab.txt");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = inspect(&dir).unwrap_err();
    let (at, msg) = format_msg(&e);
    assert_eq!(at.as_deref(), Some(fifo.as_path()));
    assert!(msg.contains("not a regular file"), "{msg}");
}
