//! Files written by h5py 3.14 / Keras 3.15 (`tests/fixtures/generate_h5.py`) read back with
//! `kerasafe::h5` and `kerasafe::keras_zip`, compared with what h5py saw (`expected.json`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kerasafe::h5::{self, AttrValue, Attrs, H5Dataset, H5Group, H5Node};
use kerasafe::keras_zip;
use kerasafe::{DType, Error, TensorData};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/h5")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn check_attr(at: &str, name: &str, got: &AttrValue, want: &Value) {
    let ctx = format!("{at}@{name}: got {got:?}, want {want}");
    let h5 = want.get("h5").and_then(Value::as_str);
    if let Some(s) = want.get("string") {
        assert_eq!(
            got.as_string().unwrap().unwrap(),
            s.as_str().unwrap(),
            "{ctx}"
        );
        match h5 {
            Some("vlen-utf8") => assert!(matches!(got, AttrValue::Str(_)), "{ctx}"),
            _ => assert!(matches!(got, AttrValue::Bytes(_)), "{ctx}"),
        }
    } else if want.get("strings").is_some() || want.get("strings_digest").is_some() {
        let list = got.as_string_list().unwrap().unwrap();
        if let Some(items) = want.get("strings") {
            let items: Vec<&str> = items
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(list, items, "{ctx}");
        } else {
            let d = want["strings_digest"].as_array().unwrap();
            assert_eq!(list.len() as u64, d[0].as_u64().unwrap(), "{ctx}");
            assert_eq!(
                sha(list.join("\n").as_bytes()),
                d[1].as_str().unwrap(),
                "{ctx}"
            );
        }
        match h5 {
            Some("vlen-utf8") => assert!(matches!(got, AttrValue::StrList(_)), "{ctx}"),
            Some("vlen-ascii") => assert!(matches!(got, AttrValue::BytesList(_)), "{ctx}"),
            _ => assert!(matches!(got, AttrValue::FixedBytesList(_)), "{ctx}"),
        }
    } else if let Some(v) = want.get("int") {
        assert_eq!(got, &AttrValue::Int(v.as_i64().unwrap()), "{ctx}");
    } else if let Some(v) = want.get("float") {
        assert_eq!(got, &AttrValue::Float(v.as_f64().unwrap()), "{ctx}");
    } else if let Some(v) = want.get("bool") {
        assert_eq!(got, &AttrValue::Bool(v.as_bool().unwrap()), "{ctx}");
    } else if let Some(v) = want.get("ints") {
        let v: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(got, &AttrValue::Ints(v), "{ctx}");
    } else if let Some(v) = want.get("floats") {
        let v: Vec<f64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(got, &AttrValue::Floats(v), "{ctx}");
        // An empty numeric array is Keras' empty name list.
        if got == &AttrValue::Floats(vec![]) {
            assert_eq!(got.as_string_list().unwrap().unwrap(), Vec::<String>::new());
        }
    } else if want.get("other").is_some() {
        assert!(matches!(got, AttrValue::Other { .. }), "{ctx}");
    } else {
        panic!("unknown expectation {ctx}");
    }
}

fn check_attrs(at: &str, got: &Attrs, want: &Value) {
    let want = want.as_object().unwrap();
    let names: BTreeSet<&str> = got.iter().map(|(n, _)| n).collect();
    let want_names: BTreeSet<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(names, want_names, "attributes of {at}");
    for (name, value) in got.iter() {
        check_attr(at, name, value, &want[name]);
    }
}

fn check_dataset(path: &str, d: &H5Dataset<'_>, want: &Value, with_data: bool) {
    assert_eq!(
        d.dtype.name(),
        want["dtype"].as_str().unwrap(),
        "dtype of {path}"
    );
    let shape: Vec<u64> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(d.shape, shape, "shape of {path}");
    check_attrs(path, &d.attrs, &want["attrs"]);
    assert!(d.storage.is_some());
    if !with_data {
        assert!(d.data.is_none());
        return;
    }
    match d.data.as_ref().unwrap() {
        TensorData::Bytes(b) => {
            assert_eq!(sha(b), want["sha256"].as_str().unwrap(), "bytes of {path}");
            // The tensor view agrees with dtype and shape.
            let t = d.tensor().unwrap();
            assert_eq!(
                t.nbytes(),
                kerasafe::tensor::byte_size(t.dtype, &t.shape).unwrap()
            );
        }
        TensorData::Strings(items) => {
            let got: Vec<String> = items.iter().map(|s| hex(s)).collect();
            let want: Vec<&str> = want["strings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(got, want, "strings of {path}");
        }
    }
}

/// Compare a tree with h5py's description: same groups, datasets, attributes and values.
fn check_tree(tree: &H5Group<'_>, want: &Value, with_data: bool) {
    let groups = want["groups"].as_object().unwrap();
    let datasets = want["datasets"].as_object().unwrap();
    let mut seen_groups = BTreeSet::from(["/".to_string()]);
    let mut seen_datasets = BTreeSet::new();
    fn walk(g: &H5Group<'_>, prefix: &str, gs: &mut BTreeSet<String>, ds: &mut BTreeSet<String>) {
        for (name, child) in &g.children {
            let p = format!("{prefix}/{name}");
            match child {
                H5Node::Group(sub) => {
                    gs.insert(p.clone());
                    walk(sub, &p, gs, ds);
                }
                H5Node::Dataset(_) => {
                    ds.insert(p);
                }
            }
        }
    }
    walk(tree, "", &mut seen_groups, &mut seen_datasets);
    assert_eq!(
        seen_groups,
        groups.keys().cloned().collect::<BTreeSet<_>>(),
        "groups"
    );
    assert_eq!(
        seen_datasets,
        datasets.keys().cloned().collect::<BTreeSet<_>>(),
        "datasets"
    );
    for (path, g) in groups {
        let attrs = if path == "/" {
            &tree.attrs
        } else {
            match tree.get_path(path).unwrap() {
                H5Node::Group(g) => &g.attrs,
                H5Node::Dataset(_) => panic!("{path} is a dataset"),
            }
        };
        check_attrs(path, attrs, &g["attrs"]);
    }
    for (path, d) in datasets {
        match tree.get_path(path).unwrap() {
            H5Node::Dataset(ds) => check_dataset(path, ds, d, with_data),
            H5Node::Group(_) => panic!("{path} is a group"),
        }
    }
    // HDF5 lists children by name (bytes), which is what h5py saw too.
    fn sorted(g: &H5Group<'_>) {
        let names: Vec<&str> = g.children.iter().map(|(n, _)| n.as_str()).collect();
        let mut s = names.clone();
        s.sort_unstable();
        assert_eq!(names, s);
        for (_, c) in &g.children {
            if let H5Node::Group(sub) = c {
                sorted(sub);
            }
        }
    }
    sorted(tree);
}

#[test]
fn every_h5_fixture_matches_h5py() {
    let exp = expected();
    let files = exp["files"].as_object().unwrap();
    let mut n = 0;
    for (name, want) in files {
        if !name.ends_with(".h5") {
            continue;
        }
        let path = dir().join(name);
        let tree = h5::read_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_tree(&tree, want, true);
        let structure = h5::read_structure(&path).unwrap();
        check_tree(&structure, want, false);
        n += 1;
    }
    assert!(n >= 4, "only {n} fixtures");
}

#[test]
fn keras_archive_matches_python_zipfile_and_h5py() {
    let exp = expected();
    let want = &exp["files"]["functional.keras"];
    let path = dir().join("functional.keras");
    assert_eq!(keras_zip::sniff(&path).unwrap(), keras_zip::FileKind::Zip);
    let archive = keras_zip::read_archive(&path).unwrap();
    let members: Vec<&str> = archive.members.iter().map(|m| m.name.as_str()).collect();
    let want_members: Vec<&str> = want["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(members, want_members);
    assert!(archive.members.iter().all(|m| m.stored));
    assert_eq!(
        sha(archive.config_json.as_bytes()),
        want["config_sha256"].as_str().unwrap()
    );
    let meta: Value = serde_json::from_str(archive.metadata_json.as_deref().unwrap()).unwrap();
    assert_eq!(meta["keras_version"], exp["keras_version"]);
    assert_eq!(archive.assets().count(), 0);
    let tree = archive.read_weights().unwrap();
    check_tree(&tree, &want["weights"], true);
    check_tree(
        &archive.read_weights_structure().unwrap(),
        &want["weights"],
        false,
    );

    // Keras 3 layout (§4.4): group names from class names, @name links to layer names.
    let vars = |p: &str| match tree.get_path(p) {
        Some(H5Node::Group(g)) => g,
        _ => panic!("no group {p}"),
    };
    assert_eq!(
        vars("layers/dense/vars")
            .attrs
            .string("name")
            .unwrap()
            .unwrap(),
        "dense"
    );
    assert_eq!(
        vars("layers/dense_1/vars")
            .attrs
            .string("name")
            .unwrap()
            .unwrap(),
        "out"
    );
    assert_eq!(
        vars("layers/batch_normalization/vars").children.len(),
        4,
        "gamma, beta, moving mean, moving variance"
    );
    let opt = vars("optimizer/vars");
    match opt.get("0") {
        Some(H5Node::Dataset(d)) => {
            assert_eq!(d.dtype, DType::I64);
            assert!(d.shape.is_empty());
        }
        _ => panic!("no iteration"),
    }
    // Alphabetical: "10" before "2".
    let names: Vec<&str> = opt.children.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..4], ["0", "1", "10", "11"]);
}

#[test]
fn legacy_full_model_layout() {
    let tree = h5::read_file(&dir().join("functional_legacy.h5")).unwrap();
    let config: Value =
        serde_json::from_str(&tree.attrs.string("model_config").unwrap().unwrap()).unwrap();
    assert_eq!(config["class_name"], "Functional");
    assert!(matches!(
        tree.attrs.get("model_config"),
        Some(AttrValue::Bytes(_))
    ));
    assert!(matches!(
        tree.attrs.get("keras_version"),
        Some(AttrValue::Str(_))
    ));
    assert!(tree.attrs.get("training_config").is_some());
    let mw = tree.group("model_weights").unwrap();
    let layers = mw.attrs.string_list("layer_names").unwrap().unwrap();
    assert_eq!(layers, ["x", "dense", "bn", "out"]);
    // The input layer has no weights: an empty float64 array.
    assert_eq!(
        mw.group("x")
            .unwrap()
            .attrs
            .string_list("weight_names")
            .unwrap()
            .unwrap(),
        Vec::<String>::new()
    );
    let bn = mw.group("bn").unwrap();
    let names = bn.attrs.string_list("weight_names").unwrap().unwrap();
    assert_eq!(names.len(), 4);
    for n in &names {
        // Weight names contain "/" and are paths relative to the layer group (§3.2).
        match bn.get_path(n) {
            Some(H5Node::Dataset(d)) => assert_eq!(d.shape, [4]),
            other => panic!("{n}: {other:?}"),
        }
    }
    assert!(tree.group("optimizer_weights").is_some());
}

#[test]
fn chunked_layer_names_read_back_whole() {
    let tree = h5::read_file(&dir().join("long_names.h5")).unwrap();
    assert!(tree.attrs.get("layer_names").is_none());
    assert!(tree.attrs.get("layer_names0").is_some());
    let names = tree.attrs.string_list("layer_names").unwrap().unwrap();
    assert_eq!(names.len(), 600);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n.len(), 111);
        assert!(n.starts_with(&format!("layer_{i:04}_")), "{n}");
    }
    let short = tree.group("short").unwrap();
    assert_eq!(
        short.attrs.string_list("weight_names").unwrap().unwrap(),
        ["dense/kernel", "dense/bias"]
    );
    assert_eq!(tree.attrs.string_list("nothing").unwrap(), None);
}

#[test]
fn bfloat16_weights_are_opaque_with_marker() {
    let tree = h5::read_file(&dir().join("bf16.weights.h5")).unwrap();
    let mut n = 0;
    tree.walk_datasets(|path, d| {
        assert_eq!(d.dtype, DType::BF16, "{path}");
        assert_eq!(d.attrs.string("dtype").unwrap().unwrap(), "bfloat16");
        n += 1;
    });
    assert_eq!(n, 2);
}

#[test]
fn links_are_refused() {
    for name in ["soft_link.h5", "external_link.h5"] {
        let path = dir().join(name);
        for r in [h5::read_file(&path), h5::read_structure(&path)] {
            match r {
                Err(Error::Unsafe { msg, .. }) => assert!(msg.contains("link"), "{msg}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

#[test]
fn declared_size_bombs_are_refused_without_allocating() {
    for name in ["bomb_chunked.h5", "bomb_contiguous.h5"] {
        let path = dir().join(name);
        match h5::read_file(&path) {
            Err(Error::Format { msg, .. }) => assert!(msg.contains("dataset /x"), "{msg}"),
            other => panic!("{name}: {other:?}"),
        }
        // The structure alone is harmless and readable.
        let tree = h5::read_structure(&path).unwrap();
        let d = tree.dataset("x").unwrap();
        assert_eq!(d.storage.as_ref().unwrap().stored_bytes, 0);
        assert!(d.shape[0] >= 2_000_000_000);
    }
}

#[test]
fn legacy_h5_under_a_keras_name_is_recognised() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.keras");
    std::fs::copy(dir().join("functional_legacy.h5"), &path).unwrap();
    assert_eq!(keras_zip::sniff(&path).unwrap(), keras_zip::FileKind::Hdf5);
    match keras_zip::read_archive(&path) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains("legacy .h5"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // And the h5 reader takes it.
    assert!(h5::read_structure(&path).is_ok());
}
