//! SavedModels written by TensorFlow 2.21 / Keras 3.15 (`tests/fixtures/generate_savedmodel.py`),
//! read without TensorFlow and compared with what TF's own APIs recorded in `expected.json`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kerasafe::checkpoint::{object_graph, BundleReader, OBJECT_GRAPH_KEY};
use kerasafe::savedmodel::{self, SavedModelInfo, SignatureInfo, TensorEncoding, TensorSpec};
use kerasafe::Error;
use prost::Message;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/savedmodel")
}

fn expected() -> Value {
    let text = fs::read_to_string(root().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture directories the generator wrote (`tf_keras_save` needs tf-keras, so it may be
/// absent).
fn fixtures() -> Vec<String> {
    let names: Vec<String> = expected()
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "generator")
        .cloned()
        .collect();
    assert!(names.len() >= 2, "{names:?}");
    names
}

fn inspect(name: &str) -> SavedModelInfo {
    savedmodel::inspect(&root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn shape_json(shape: &Option<Vec<i64>>) -> Value {
    serde_json::to_value(shape).unwrap()
}

fn check_tensor(what: &str, got: &TensorSpec, want: &Value) {
    assert_eq!(got.encoding, TensorEncoding::Dense, "{what}");
    assert_eq!(got.tensor_name.as_deref(), want["name"].as_str(), "{what}");
    assert_eq!(got.dtype, want["dtype"].as_str().unwrap(), "{what}");
    assert_eq!(shape_json(&got.shape), want["shape"], "{what}");
}

fn check_signature(what: &str, got: &SignatureInfo, want: &Value) {
    assert_eq!(
        got.method_name,
        want["method_name"].as_str().unwrap(),
        "{what}"
    );
    for (side, list) in [("inputs", &got.inputs), ("outputs", &got.outputs)] {
        let want_side = want[side].as_object().unwrap();
        let keys: Vec<&str> = list.iter().map(|t| t.key.as_str()).collect();
        let want_keys: Vec<&str> = want_side.keys().map(String::as_str).collect();
        assert_eq!(keys, want_keys, "{what} {side}");
        for t in list {
            check_tensor(&format!("{what} {side} {}", t.key), t, &want_side[&t.key]);
        }
    }
}

#[test]
fn savedmodel_fixture_meta_graphs_and_signatures() {
    let exp = expected();
    for name in fixtures().iter().map(String::as_str) {
        let info = inspect(name);
        let want = &exp[name];
        assert_eq!(
            info.schema_version,
            want["schema_version"].as_i64().unwrap()
        );
        assert_eq!(info.meta_graphs.len(), 1, "{name}");
        let mg = &info.meta_graphs[0];
        let wmg = &want["meta_graphs"][0];
        assert_eq!(serde_json::to_value(&mg.tags).unwrap(), wmg["tags"]);
        assert_eq!(mg.tensorflow_version, wmg["tensorflow_version"]);
        assert_eq!(mg.tensorflow_git_version, wmg["tensorflow_git_version"]);
        assert_eq!(
            serde_json::to_value(&mg.asset_files).unwrap(),
            wmg["asset_files"]
        );
        assert!(mg.has_object_graph);

        // Every signature TF's parser saw, except the internal `__` ones.
        let wsigs = wmg["signatures"].as_object().unwrap();
        let want_keys: Vec<&str> = wsigs
            .keys()
            .map(String::as_str)
            .filter(|k| !k.starts_with("__"))
            .collect();
        let keys: Vec<&str> = mg.signatures.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, want_keys, "{name}");
        for s in &mg.signatures {
            check_signature(&format!("{name}/{}", s.key), s, &wsigs[&s.key]);
        }

        // The loaded signatures (TF's runtime view) agree on dtypes and shapes.
        for (key, loaded) in want["loaded_signatures"].as_object().unwrap() {
            let s = mg.signature(key).unwrap();
            for (side, list) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
                for (k, spec) in loaded[side].as_object().unwrap() {
                    let t = list.iter().find(|t| &t.key == k).unwrap();
                    assert_eq!(t.dtype, spec["dtype"].as_str().unwrap(), "{name}/{key}/{k}");
                    assert_eq!(shape_json(&t.shape), spec["shape"], "{name}/{key}/{k}");
                }
            }
        }
    }
}

#[test]
fn savedmodel_fixture_concrete_signatures() {
    let module = inspect("module");
    let sig = module.meta_graphs[0].signature("serving_default").unwrap();
    assert_eq!(sig.inputs.len(), 1);
    assert_eq!(sig.inputs[0].key, "x");
    assert_eq!(
        sig.inputs[0].tensor_name.as_deref(),
        Some("serving_default_x:0")
    );
    assert_eq!(
        (sig.inputs[0].dtype.as_str(), sig.inputs[0].shape.as_deref()),
        ("float32", Some(&[-1i64, 4][..]))
    );
    assert_eq!(sig.outputs[0].key, "y");
    assert_eq!(sig.outputs[0].shape, Some(vec![-1, 2]));
    let scale = module.meta_graphs[0].signature("scale").unwrap();
    assert_eq!(scale.inputs[0].shape, None, "unknown rank");
    let count = scale.outputs.iter().find(|t| t.key == "count").unwrap();
    assert_eq!(
        (count.dtype.as_str(), count.shape.as_deref()),
        ("int64", Some(&[][..]))
    );

    let keras = inspect("keras_export");
    let keys: Vec<_> = keras.meta_graphs[0]
        .signatures
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(keys, ["serve", "serving_default"]);
    let sig = keras.meta_graphs[0].signature("serving_default").unwrap();
    assert_eq!(sig.inputs[0].key, "features");
    assert_eq!(sig.inputs[0].shape, Some(vec![-1, 4]));
    assert_eq!(sig.outputs[0].key, "output_0");
    assert_eq!(sig.outputs[0].shape, Some(vec![-1, 2]));
}

#[test]
fn savedmodel_fixture_variables_match_tf() {
    let exp = expected();
    for name in fixtures().iter().map(String::as_str) {
        let info = inspect(name);
        let want = &exp[name];
        // tf.train.list_variables + get_variable_to_dtype_map, minus the object graph.
        let want_vars: Vec<(String, String, Vec<u64>)> = want["checkpoint"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["key"] != OBJECT_GRAPH_KEY)
            .map(|v| {
                (
                    v["key"].as_str().unwrap().to_string(),
                    v["dtype"].as_str().unwrap().to_string(),
                    serde_json::from_value(v["shape"].clone()).unwrap(),
                )
            })
            .collect();
        let got: Vec<(String, String, Vec<u64>)> = info
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.dtype.clone(), v.shape.clone()))
            .collect();
        assert_eq!(got, want_vars, "{name}");

        // Node ids and keys of TF's checkpoint object graph.
        let tf_keys: BTreeMap<u64, &str> = want["checkpoint_object_graph"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["node_id"].as_u64().unwrap(),
                    a["checkpoint_key"].as_str().unwrap(),
                )
            })
            .collect();
        let graph_vars = want["meta_graphs"][0]["object_graph_variables"]
            .as_array()
            .unwrap();
        let mut seen = 0;
        for v in &info.variables {
            let Some(obj) = &v.object else { continue };
            seen += 1;
            assert_eq!(
                tf_keys.get(&(obj.node_id as u64)).copied(),
                Some(v.name.as_str()),
                "{name}: node {}",
                obj.node_id
            );
            let wv = graph_vars
                .iter()
                .find(|g| g["node_id"] == obj.node_id)
                .unwrap();
            assert_eq!(obj.variable_name, wv["name"].as_str().unwrap());
            assert_eq!(obj.trainable, wv["trainable"].as_bool().unwrap());
            assert_eq!(shape_json(&obj.shape), wv["shape"]);
            assert_eq!(v.dtype, wv["dtype"].as_str().unwrap());
        }
        assert_eq!(
            seen,
            graph_vars.len(),
            "{name}: every variable node has a value"
        );
        let bytes: u64 = info.variables.iter().map(|v| v.bytes).sum();
        assert!(bytes > 0);
    }
}

#[test]
fn savedmodel_fixture_paths_and_objects() {
    let module = inspect("module");
    let by_key = |info: &SavedModelInfo, key: &str| {
        info.variables
            .iter()
            .find(|v| v.name == key)
            .and_then(|v| v.object.clone())
            .unwrap()
    };
    let step = by_key(&module, "d/a.Sb..c/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(step.path, ["d", "a/b.c"]);
    assert_eq!(step.variable_name, "step");
    assert!(!step.trainable);
    let w = by_key(&module, "w/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(w.path, ["w"]);

    let keras = inspect("keras_export");
    let k = by_key(&keras, "variables/0/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(
        (k.path.join("/"), k.variable_name.as_str()),
        ("variables/0".into(), "dense/kernel")
    );
    let k2 = by_key(&keras, "_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE");
    assert_ne!(k.node_id, k2.node_id);

    let exp = expected();
    for (name, info) in [("module", &module), ("keras_export", &keras)] {
        let want = &exp[name]["meta_graphs"][0];
        assert_eq!(info.objects.len() as u64, want["object_graph_nodes"]);
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for o in &info.objects {
            *kinds.entry(o.kind.as_str()).or_default() += 1;
            assert!(o.path.is_some(), "{name}: node {} unreachable", o.node_id);
        }
        assert_eq!(
            serde_json::to_value(&kinds).unwrap(),
            want["object_graph_kinds"]
        );
        assert_eq!(
            info.objects[0].identifier.as_deref(),
            Some("_generic_user_object")
        );
    }
    let lists = keras
        .objects
        .iter()
        .filter(|o| o.identifier.as_deref() == Some("trackable_list_wrapper"))
        .count();
    assert_eq!(lists, 5);
}

/// Walking the checkpoint's own `TrackableObjectGraph` gives the same keys (spec §2.4).
#[test]
fn savedmodel_fixture_keys_agree_with_checkpoint_object_graph() {
    for name in fixtures().iter().map(String::as_str) {
        let dir = root().join(name);
        let info = inspect(name);
        let reader = BundleReader::open(dir.join("variables/variables")).unwrap();
        let graph = reader.read_strings(OBJECT_GRAPH_KEY).unwrap().remove(0);
        let attrs = object_graph::attributes(&graph).unwrap();
        for v in &info.variables {
            let obj = v.object.as_ref().unwrap();
            if obj.slot.is_some() {
                continue; // slots are reached through slot_variables, not children
            }
            let a = attrs.iter().find(|a| a.path == obj.path).unwrap();
            assert_eq!(a.checkpoint_key, v.name, "{name}");
            assert_eq!(a.full_name, obj.variable_name, "{name}");
        }
    }
}

#[test]
fn savedmodel_fixture_variable_values() {
    let dir = root().join("module");
    let reader = BundleReader::open(dir.join("variables/variables")).unwrap();
    let mut buf = [0u8; 32];
    reader
        .read_into("w/.ATTRIBUTES/VARIABLE_VALUE", &mut buf)
        .unwrap();
    let w: Vec<f32> = buf
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    assert_eq!(w, want);
    // y = x @ w for the x = ones((1, 4)) the generator ran.
    let exp = expected();
    let y = &exp["module"]["example"]["serving_default"]["y"][0];
    for j in 0..2 {
        let sum: f32 = (0..4).map(|i| w[i * 2 + j]).sum();
        assert_eq!(sum as f64, y[j].as_f64().unwrap());
    }
}

#[test]
fn savedmodel_fixture_fingerprints() {
    let exp = expected();
    for name in fixtures().iter().map(String::as_str) {
        let fp = inspect(name).fingerprint.unwrap();
        let want = &exp[name]["fingerprint"];
        assert_eq!(
            fp.saved_model_checksum,
            want["saved_model_checksum"].as_u64().unwrap()
        );
        assert_eq!(
            fp.graph_def_program_hash,
            want["graph_def_program_hash"].as_u64().unwrap()
        );
        assert_eq!(
            fp.signature_def_hash,
            want["signature_def_hash"].as_u64().unwrap()
        );
        assert_eq!(
            fp.saved_object_graph_hash,
            want["saved_object_graph_hash"].as_u64().unwrap()
        );
        assert_eq!(
            fp.checkpoint_hash,
            want["checkpoint_hash"].as_u64().unwrap()
        );
        assert_eq!(fp.singleprint, want["singleprint"].as_str().unwrap());
        assert_eq!(fp.uuid, want["uuid"].as_str().unwrap());
        assert_eq!(serde_json::to_value(&fp.version).unwrap(), want["version"]);
    }
}

#[test]
fn savedmodel_fixture_assets_and_keras_metadata() {
    let exp = expected();
    for name in fixtures().iter().map(String::as_str) {
        let info = inspect(name);
        let got: Vec<Value> = info
            .assets
            .iter()
            .map(|a| {
                assert!(!a.symlink);
                serde_json::json!({"path": a.path, "bytes": a.bytes})
            })
            .collect();
        assert_eq!(Value::Array(got), exp[name]["assets"], "{name}");
        let want = &exp[name]["keras_metadata"];
        let Some(layers) = &info.keras_metadata else {
            assert_eq!(want, &Value::Null, "{name}");
            continue;
        };
        let want = want.as_array().unwrap();
        assert_eq!(layers.len(), want.len(), "{name}");
        for (l, w) in layers.iter().zip(want) {
            assert_eq!(l.node_id, w["node_id"], "{name}");
            assert_eq!(l.node_path, w["node_path"].as_str().unwrap());
            assert_eq!(l.identifier, w["identifier"].as_str().unwrap());
            assert_eq!(l.class_name.as_deref(), w["class_name"].as_str());
            assert_eq!(l.name.as_deref(), w["name"].as_str());
        }
        let km = root().join(name).join("keras_metadata.pb");
        let nodes = savedmodel::read_keras_metadata(&km).unwrap();
        for (n, w) in nodes.iter().zip(want) {
            assert_eq!(serde_json::to_value(&n.version).unwrap(), w["version"]);
            assert!(n.json().unwrap().is_object());
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// tf-keras is not installed, so a `keras_metadata.pb` is encoded here, as tf-keras would
/// write it for this model, and dropped into a copy of the Keras export.
#[test]
fn savedmodel_fixture_with_crafted_keras_metadata() {
    use kerasafe::savedmodel::proto::{KerasSavedObject, SavedMetadata, VersionDef};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    copy_dir(&root().join("keras_export"), &dir);
    let v = Some(VersionDef {
        producer: 2,
        min_consumer: 1,
        bad_consumers: vec![],
    });
    let meta = SavedMetadata {
        nodes: vec![
            KerasSavedObject {
                node_id: 0,
                node_path: "root".into(),
                identifier: "_tf_keras_network".into(),
                metadata: r#"{"name": "tiny", "trainable": true, "class_name": "Functional", "config": {"layers": []}, "keras_version": "2.21.0"}"#.into(),
                version: v.clone(),
            },
            KerasSavedObject {
                node_id: 1,
                node_path: "root.layer_with_weights-0".into(),
                identifier: "_tf_keras_layer".into(),
                metadata: r#"{"name": "dense", "class_name": "Dense", "config": {"units": 2, "l1": NaN}}"#.into(),
                version: v,
            },
        ],
    };
    fs::write(dir.join("keras_metadata.pb"), meta.encode_to_vec()).unwrap();
    let info = savedmodel::inspect(&dir).unwrap();
    let layers = info.keras_metadata.unwrap();
    let got: Vec<_> = layers
        .iter()
        .map(|l| {
            (
                l.node_path.as_str(),
                l.identifier.as_str(),
                l.class_name.as_deref(),
                l.name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "root",
                "_tf_keras_network",
                Some("Functional"),
                Some("tiny")
            ),
            (
                "root.layer_with_weights-0",
                "_tf_keras_layer",
                Some("Dense"),
                Some("dense")
            ),
        ]
    );
    let nodes = savedmodel::read_keras_metadata(&dir.join("keras_metadata.pb")).unwrap();
    assert_eq!(nodes[1].json().unwrap()["config"]["l1"], Value::Null);
    assert_eq!(nodes[0].version.as_ref().unwrap().producer, 2);
}

#[test]
fn savedmodel_fixture_truncations_and_corruptions() {
    for name in fixtures().iter().map(String::as_str) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(name);
        copy_dir(&root().join(name), &dir);
        let pb = dir.join("saved_model.pb");
        let good = fs::read(&pb).unwrap();
        let mut cuts: Vec<usize> = (0..good.len()).step_by(97).collect();
        cuts.extend((good.len().saturating_sub(40))..good.len());
        cuts.extend(1..40);
        for cut in cuts {
            fs::write(&pb, &good[..cut]).unwrap();
            match savedmodel::inspect(&dir) {
                Err(Error::Format { at, .. }) => assert_eq!(at.0.as_deref(), Some(pb.as_path())),
                other => panic!("{name}: cut at {cut}: {other:?}"),
            }
        }
        // Single-byte corruptions: errors or (inside skipped graph bytes) success, never panics.
        let mut state = 0x1234_5678_9abc_def0u64 ^ good.len() as u64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = good.clone();
            let i = (state % b.len() as u64) as usize;
            b[i] ^= (state >> 32) as u8 | 1;
            fs::write(&pb, &b).unwrap();
            let _ = savedmodel::inspect(&dir);
        }
    }
}

#[test]
fn savedmodel_fixture_info_serializes_to_json() {
    let info = inspect("keras_export");
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(
        json["meta_graphs"][0]["signatures"][1]["inputs"][0]["shape"],
        serde_json::json!([-1, 4])
    );
    assert_eq!(
        json["variables"][0]["object"]["path"],
        serde_json::json!(["_all_variables", "0"])
    );
    assert!(json["fingerprint"]["checkpoint_hash"].is_u64());
    assert_eq!(json["keras_metadata"], Value::Null);
}

/// tf-keras `model.save(dir)` with the legacy Adam: slot variables reached only through
/// `slot_variables`, metric variables under `keras_api`, and a real `keras_metadata.pb`.
#[test]
fn savedmodel_fixture_tf_keras_save() {
    let exp = expected();
    if exp.get("tf_keras_save").is_none() {
        eprintln!("tf_keras_save fixture not generated (no tf-keras); skipping");
        return;
    }
    let info = inspect("tf_keras_save");
    let by_key = |key: &str| {
        info.variables
            .iter()
            .find(|v| v.name == key)
            .unwrap_or_else(|| panic!("{key}"))
            .object
            .clone()
            .unwrap_or_else(|| panic!("{key} has no object"))
    };
    let m = by_key(
        "layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
    );
    let slot = m.slot.as_ref().unwrap();
    assert_eq!(slot.slot_name, "m");
    assert_eq!(m.variable_name, "Adam/dense/kernel/m");
    assert_eq!(
        m.path,
        [
            "layer_with_weights-0",
            "kernel",
            ".OPTIMIZER_SLOT",
            "optimizer",
            "m"
        ]
    );
    let kernel = by_key("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(slot.original_node_id, kernel.node_id);
    assert_eq!(kernel.slot, None);
    let total = by_key("keras_api/metrics/1/total/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(total.path, ["keras_api", "metrics", "1", "total"]);
    let iter = by_key("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE");
    assert_eq!(iter.variable_name, "Adam/iter");
    assert!(info.variables.iter().all(|v| v.object.is_some()));

    // Only the four slot variables are unreachable through `children`.
    let unreachable: Vec<usize> = info
        .objects
        .iter()
        .filter(|o| o.path.is_none())
        .map(|o| o.node_id)
        .collect();
    let slots: Vec<usize> = info
        .variables
        .iter()
        .filter_map(|v| {
            v.object
                .as_ref()
                .filter(|o| o.slot.is_some())
                .map(|o| o.node_id)
        })
        .collect();
    assert_eq!(unreachable.len(), 4);
    assert!(unreachable.iter().all(|n| slots.contains(n)));

    let layers = info.keras_metadata.as_ref().unwrap();
    let dense = layers
        .iter()
        .find(|l| l.node_path == "root.layer_with_weights-0")
        .unwrap();
    assert_eq!(dense.class_name.as_deref(), Some("Dense"));
    assert_eq!(dense.identifier, "_tf_keras_layer");
    assert_eq!(
        info.objects[dense.node_id as usize].identifier.as_deref(),
        Some("_tf_keras_layer")
    );
    let sig = info.meta_graphs[0].signature("serving_default").unwrap();
    assert_eq!(
        sig.inputs[0].tensor_name.as_deref(),
        Some("serving_default_features:0")
    );
    assert_eq!(sig.outputs[0].key, "dense");
}
