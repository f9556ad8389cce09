//! `kerasafe::h5`: write → read round trips, Keras attribute chunking, determinism, caller
//! errors, and hostile input (truncated, random, corrupted files).

use std::borrow::Cow;
use std::path::Path;

use kerasafe::h5::{
    self, array_split, keras_chunk_count, AttrValue, H5Dataset, H5Group, H5Node, Values, DEFER_MIN,
    HDF5_OBJECT_HEADER_LIMIT,
};
use kerasafe::{DType, Error, Tensor, TensorData};

fn le<T: Copy, const N: usize>(vals: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    vals.iter().flat_map(|&v| f(v)).collect()
}

fn dataset(dtype: DType, shape: &[u64], bytes: Vec<u8>) -> H5Node<'static> {
    H5Node::Dataset(H5Dataset::from_tensor(Tensor {
        dtype,
        shape: shape.to_vec(),
        data: TensorData::Bytes(Cow::Owned(bytes)),
    }))
}

/// A tree with every dtype and attribute kind, laid out like a Keras legacy file.
fn sample() -> H5Group<'static> {
    let mut root = H5Group::new();
    root.attrs
        .set("keras_version", AttrValue::Str("3.15.1".into()));
    root.attrs
        .set("backend", AttrValue::Str("tensorflow".into()));
    root.attrs.set(
        "model_config",
        AttrValue::Bytes(br#"{"class_name": "Sequential", "config": {}}"#.to_vec()),
    );
    root.attrs.set("int", AttrValue::Int(-7));
    root.attrs.set("float", AttrValue::Float(0.125));
    root.attrs.set("flag", AttrValue::Bool(true));
    root.attrs
        .set("ints", AttrValue::Ints(vec![1, i64::MIN, i64::MAX]));
    root.attrs
        .set("floats", AttrValue::Floats(vec![0.5, f64::INFINITY]));
    root.attrs
        .set("strs", AttrValue::StrList(vec!["é".into(), "x".into()]));
    root.attrs.set(
        "fixed",
        AttrValue::FixedBytesList(vec![b"ab".to_vec(), b"c".to_vec()]),
    );

    let mw = root.group_mut("model_weights").unwrap();
    mw.attrs.set(
        "layer_names",
        AttrValue::BytesList(vec![b"dense".to_vec(), "dé".as_bytes().to_vec()]),
    );
    mw.attrs
        .set("backend", AttrValue::Bytes(b"tensorflow".to_vec()));
    let dense = mw.group_mut("dense").unwrap();
    dense.attrs.set(
        "weight_names",
        AttrValue::BytesList(vec![b"dense/kernel:0".to_vec(), b"dense/bias:0".to_vec()]),
    );
    dense
        .insert_path(
            "dense/kernel:0",
            dataset(
                DType::F32,
                &[2, 3],
                le(&[0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5], f32::to_le_bytes),
            ),
        )
        .unwrap();
    dense
        .insert_path(
            "dense/bias:0",
            dataset(DType::F32, &[3], le(&[1.0f32, -1.0, 0.0], f32::to_le_bytes)),
        )
        .unwrap();
    let de = mw.group_mut("dé").unwrap();
    de.attrs.set("weight_names", AttrValue::BytesList(vec![]));

    let t = root.group_mut("types").unwrap();
    t.insert(
        "f64",
        dataset(DType::F64, &[2], le(&[1.5f64, -2.25], f64::to_le_bytes)),
    )
    .unwrap();
    t.insert(
        "f16",
        dataset(
            DType::F16,
            &[3],
            le(&[0x3c00u16, 0xc000, 0x7bff], u16::to_le_bytes),
        ),
    )
    .unwrap();
    let mut bf = H5Dataset::from_tensor(Tensor {
        dtype: DType::BF16,
        shape: vec![3],
        data: TensorData::Bytes(Cow::Owned(le(
            &[0x3f80u16, 0xc000, 0x4049],
            u16::to_le_bytes,
        ))),
    });
    bf.attrs.set("dtype", AttrValue::Str("bfloat16".into()));
    t.insert("bf16", H5Node::Dataset(bf)).unwrap();
    let mut f8 = H5Dataset::from_tensor(Tensor {
        dtype: DType::F8E4M3FN,
        shape: vec![2],
        data: TensorData::Bytes(Cow::Owned(vec![0x38, 0x40])),
    });
    f8.attrs
        .set("dtype", AttrValue::Str("float8_e4m3fn".into()));
    t.insert("f8", H5Node::Dataset(f8)).unwrap();
    t.insert(
        "c64",
        dataset(
            DType::C64,
            &[2],
            le(&[1.0f32, 2.0, -3.0, 4.5], f32::to_le_bytes),
        ),
    )
    .unwrap();
    t.insert(
        "c128",
        dataset(DType::C128, &[], le(&[1.0f64, -2.0], f64::to_le_bytes)),
    )
    .unwrap();
    t.insert("bool", dataset(DType::Bool, &[3], vec![1, 0, 1]))
        .unwrap();
    for (name, dtype, size) in [
        ("i8", DType::I8, 1),
        ("i16", DType::I16, 2),
        ("i32", DType::I32, 4),
        ("i64", DType::I64, 8),
        ("u8", DType::U8, 1),
        ("u16", DType::U16, 2),
        ("u32", DType::U32, 4),
        ("u64", DType::U64, 8),
    ] {
        let bytes: Vec<u8> = (0..2 * size)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(200))
            .collect();
        t.insert(name, dataset(dtype, &[2], bytes)).unwrap();
    }
    t.insert(
        "iteration",
        dataset(DType::I64, &[], le(&[42i64], i64::to_le_bytes)),
    )
    .unwrap();
    t.insert("empty", dataset(DType::F32, &[0, 4], vec![]))
        .unwrap();
    t.insert(
        "strings",
        H5Node::Dataset(H5Dataset::from_tensor(Tensor {
            dtype: DType::String,
            shape: vec![3],
            data: TensorData::Strings(vec![
                Cow::Borrowed(b"ab"),
                Cow::Borrowed(b""),
                Cow::Borrowed("é".as_bytes()),
            ]),
        })),
    )
    .unwrap();
    root
}

/// Drop read-only storage details so trees can be compared with what was written.
fn strip(g: &mut H5Group<'_>) {
    for (_, c) in &mut g.children {
        match c {
            H5Node::Group(sub) => strip(sub),
            H5Node::Dataset(d) => d.storage = None,
        }
    }
}

/// Children sorted by name, recursively (HDF5 lists links by name).
fn sorted(g: &H5Group<'static>) -> H5Group<'static> {
    let mut out = g.clone();
    out.children.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, c) in &mut out.children {
        if let H5Node::Group(sub) = c {
            *sub = sorted(sub);
        }
    }
    out.attrs.0.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_type_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.h5");
    let mut written = sample();
    h5::write_file(&path, &written).unwrap();
    let mut back = h5::read_file(&path).unwrap();
    let d = back.get_path("types/f64").unwrap();
    match d {
        H5Node::Dataset(d) => {
            let s = d.storage.as_ref().unwrap();
            assert_eq!((s.layout, s.stored_bytes, s.filters), ("contiguous", 16, 0));
        }
        _ => panic!(),
    }
    strip(&mut back);
    // What changes on the way: an empty name list becomes Keras' float64 [] (and reads back as
    // an empty string list).
    let mw = written.group_mut("model_weights").unwrap();
    mw.group_mut("dé")
        .unwrap()
        .attrs
        .set("weight_names", AttrValue::Floats(vec![]));
    assert_eq!(back, sorted(&written));
    let de = back.get_path("model_weights/dé").unwrap();
    match de {
        H5Node::Group(g) => assert_eq!(
            g.attrs.string_list("weight_names").unwrap().unwrap(),
            Vec::<String>::new()
        ),
        _ => panic!(),
    }

    let structure = h5::read_structure(&path).unwrap();
    let mut n = 0;
    structure.walk_datasets(|p, d| {
        assert!(d.data.is_none(), "{p}");
        assert!(d.storage.is_some(), "{p}");
        n += 1;
    });
    assert_eq!(n, 20);
    match structure.get_path("types/strings") {
        Some(H5Node::Dataset(d)) => {
            assert_eq!((d.dtype, d.shape.as_slice()), (DType::String, &[3u64][..]))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn writing_is_deterministic_and_replaces_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.h5"), tmp.path().join("b.h5"));
    std::fs::write(&b, b"old contents").unwrap();
    h5::write_file(&a, &sample()).unwrap();
    h5::write_file(&b, &sample()).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let head = std::fs::read(&a).unwrap();
    assert_eq!(&head[..8], &h5::HDF5_SIGNATURE);
    assert_eq!(head[8], 0, "superblock version 0, as h5py writes");
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn long_string_lists_are_chunked_like_keras() {
    // Spec §3.5: 1000 names of 111 bytes → two pieces of 500, fixed-length, no plain attribute.
    assert_eq!(keras_chunk_count(1000, 111).unwrap(), 2);
    let items: Vec<u32> = (0..7).collect();
    let pieces = array_split(&items, 3);
    assert_eq!(pieces, [&[0, 1, 2][..], &[3, 4], &[5, 6]]);
    assert_eq!(array_split(&items[..2], 3), [&[0][..], &[1], &[]]);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.h5");
    let names: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("{i:0>111}").into_bytes())
        .collect();
    let short: Vec<Vec<u8>> = (0..5000).map(|i| format!("l{i}").into_bytes()).collect();
    let mut root = H5Group::new();
    root.attrs
        .set("layer_names", AttrValue::BytesList(names.clone()));
    // 5000 short names fit Keras' size test but not as variable-length strings (16 bytes
    // each): written whole as fixed-length strings instead.
    root.attrs
        .set("weight_names", AttrValue::BytesList(short.clone()));
    root.attrs
        .set("unicode", AttrValue::StrList(vec!["é".repeat(40); 1000]));
    h5::write_file(&path, &root).unwrap();

    let back = h5::read_file(&path).unwrap();
    let attr_names: Vec<&str> = back.attrs.iter().map(|(n, _)| n).collect();
    assert_eq!(
        attr_names,
        [
            "layer_names0",
            "layer_names1",
            "unicode0",
            "unicode1",
            "weight_names"
        ]
    );
    match back.attrs.get("layer_names0") {
        Some(AttrValue::FixedBytesList(v)) => assert_eq!(v.len(), 500),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        back.attrs.get("weight_names"),
        Some(AttrValue::FixedBytesList(_))
    ));
    let want: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8(n.clone()).unwrap())
        .collect();
    assert_eq!(
        back.attrs.string_list("layer_names").unwrap().unwrap(),
        want
    );
    assert_eq!(
        back.attrs
            .string_list("weight_names")
            .unwrap()
            .unwrap()
            .len(),
        5000
    );
    assert_eq!(
        back.attrs.string_list("unicode").unwrap().unwrap(),
        vec!["é".repeat(40); 1000]
    );

    // Writing the read tree back keeps the chunks as they are.
    let again = tmp.path().join("again.h5");
    h5::write_file(&again, &back).unwrap();
    let mut back2 = h5::read_file(&again).unwrap();
    strip(&mut back2);
    let mut back1 = back.clone();
    strip(&mut back1);
    assert_eq!(back1, back2);

    // A single string above the limit is refused, as Keras does.
    let mut bad = H5Group::new();
    bad.attrs.set(
        "layer_names",
        AttrValue::BytesList(vec![vec![b'x'; HDF5_OBJECT_HEADER_LIMIT + 1]]),
    );
    assert!(matches!(
        h5::write_file(&tmp.path().join("bad.h5"), &bad),
        Err(Error::InvalidArgument { .. })
    ));
}

fn expect_invalid(root: &H5Group<'_>, needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.h5");
    match h5::write_file(&path, root) {
        Err(Error::InvalidArgument { msg }) => {
            assert!(msg.contains(needle), "{msg} lacks {needle:?}")
        }
        other => panic!("expected InvalidArgument({needle}), got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn caller_errors_are_invalid_argument_and_write_nothing() {
    let mut g = H5Group::new();
    assert!(g.insert("a/b", dataset(DType::U8, &[1], vec![1])).is_err());
    assert!(g.insert("", dataset(DType::U8, &[1], vec![1])).is_err());
    g.insert("a", dataset(DType::U8, &[1], vec![1])).unwrap();
    assert!(g.insert("a", dataset(DType::U8, &[1], vec![1])).is_err());
    assert!(
        g.insert_path("a/b", dataset(DType::U8, &[1], vec![1]))
            .is_err(),
        "a is a dataset"
    );

    let mut dup = H5Group::new();
    dup.children
        .push(("x".into(), dataset(DType::U8, &[1], vec![1])));
    dup.children
        .push(("x".into(), dataset(DType::U8, &[1], vec![1])));
    expect_invalid(&dup, "twice");

    let mut slash = H5Group::new();
    slash
        .children
        .push(("a/b".into(), dataset(DType::U8, &[1], vec![1])));
    expect_invalid(&slash, "link name");

    let mut size = H5Group::new();
    size.insert("x", dataset(DType::F32, &[2], vec![0; 7]))
        .unwrap();
    expect_invalid(&size, "needs 8 bytes");

    let mut nodata = H5Group::new();
    let mut d = H5Dataset::from_tensor(Tensor::from_bytes(DType::U8, vec![1], &[1]).unwrap());
    d.data = None;
    nodata.insert("x", H5Node::Dataset(d)).unwrap();
    expect_invalid(&nodata, "no values");

    let mut nul = H5Group::new();
    nul.attrs.set("a", AttrValue::Bytes(b"x\0y".to_vec()));
    expect_invalid(&nul, "NUL");

    let mut other = H5Group::new();
    other.attrs.set(
        "a",
        AttrValue::Other {
            description: "?".into(),
        },
    );
    expect_invalid(&other, "cannot be written");

    let mut big = H5Group::new();
    big.attrs.set("a", AttrValue::Ints(vec![0; 10_000]));
    expect_invalid(&big, "object header");

    let mut collide = H5Group::new();
    collide
        .attrs
        .set("names", AttrValue::BytesList(vec![vec![b'n'; 200]; 1000]));
    collide.attrs.set("names0", AttrValue::Int(1));
    expect_invalid(&collide, "twice");

    let mut dup_attr = H5Group::new();
    dup_attr.attrs.0.push(("a".into(), AttrValue::Int(1)));
    dup_attr.attrs.0.push(("a".into(), AttrValue::Int(2)));
    expect_invalid(&dup_attr, "twice");
}

#[test]
fn a_missing_directory_is_an_io_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("no/such/dir/m.h5");
    match h5::write_file(&path, &sample()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    match h5::read_file(&path) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

fn expect_format(path: &Path, needle: &str) {
    for r in [h5::read_file(path), h5::read_structure(path)] {
        match r {
            Err(Error::Format { at, msg }) => {
                assert_eq!(at.0.as_deref(), Some(path));
                assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
            }
            other => panic!("{}: expected a format error, got {other:?}", path.display()),
        }
    }
}

#[test]
fn not_hdf5_files_get_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("empty.h5", b"", "empty"),
        ("short.h5", b"\x89HD", "too short"),
        ("zip.h5", b"PK\x03\x04rest of a zip", "zip archive"),
        (
            "text.h5",
            b"hello, this is not HDF5 at all",
            "no HDF5 signature",
        ),
        (
            "sig_only.h5",
            b"\x89HDF\r\n\x1a\n\x00\x00\x00",
            "cannot open as HDF5",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        expect_format(&p, needle);
        assert_eq!(h5::is_hdf5(&p).unwrap(), needle == "cannot open as HDF5");
    }
    expect_format(tmp.path(), "directory");
}

#[test]
fn truncated_files_are_format_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.h5");
    h5::write_file(&full, &sample()).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let len = bytes.len();
    for cut in [
        8,
        9,
        40,
        96,
        200,
        512,
        800,
        len / 3,
        len / 2,
        len - 100,
        len - 1,
    ] {
        let p = tmp.path().join(format!("cut{cut}.h5"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        match h5::read_file(&p) {
            Err(Error::Format { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn corrupted_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.h5");
    h5::write_file(&full, &sample()).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    // Random garbage behind a valid signature.
    for seed in 0..20u64 {
        let mut junk = h5::HDF5_SIGNATURE.to_vec();
        junk.extend(noise(seed, 2000));
        let p = tmp.path().join(format!("junk{seed}.h5"));
        std::fs::write(&p, &junk).unwrap();
        assert!(h5::read_file(&p).is_err());
    }
    // Byte flips over the whole file: any outcome but a panic or a crash is fine.
    let positions = noise(99, 400);
    for (i, pair) in positions.chunks(2).enumerate() {
        let mut bad = bytes.clone();
        let pos = (usize::from(pair[0]) << 8 | usize::from(pair[1])) % bad.len();
        bad[pos] ^= 0x5a;
        let p = tmp.path().join(format!("flip{i}.h5"));
        std::fs::write(&p, &bad).unwrap();
        let _ = h5::read_file(&p);
        let _ = h5::read_structure(&p);
    }
}

#[test]
fn threads_share_the_library_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    let p = dir.join(format!("t{t}_{i}.h5"));
                    h5::write_file(&p, &sample()).unwrap();
                    let back = h5::read_file(&p).unwrap();
                    assert!(back.group("types").is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn empty_tree_and_unicode_names() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("empty.h5");
    h5::write_file(&p, &H5Group::new()).unwrap();
    assert_eq!(h5::read_file(&p).unwrap(), H5Group::new());

    let mut g = H5Group::new();
    g.insert_path("größe/kernel:0", dataset(DType::U8, &[1], vec![7]))
        .unwrap();
    g.attrs.set("ünï", AttrValue::Str("ok".into()));
    h5::write_file(&p, &g).unwrap();
    let back = h5::read_file(&p).unwrap();
    assert!(back.get_path("größe/kernel:0").is_some());
    assert_eq!(back.attrs.string("ünï").unwrap().unwrap(), "ok");
}

#[test]
fn images_in_memory_read_like_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.h5");
    let mut tree = sample();
    // Large enough for the direct positional-read path (≥ 1 MiB).
    let big: Vec<f32> = (0..600_000).map(|i| i as f32 * 0.5).collect();
    tree.insert_path(
        "big/values",
        dataset(DType::F32, &[600_000], le(&big, f32::to_le_bytes)),
    )
    .unwrap();
    h5::write_file(&path, &tree).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let name = Path::new("in-memory.h5");
    let mut from_file = h5::read_file(&path).unwrap();
    let mut from_image = h5::read_image(name, &bytes, Values::All).unwrap();
    strip(&mut from_file);
    strip(&mut from_image);
    assert_eq!(from_image, from_file);
    assert!(matches!(
        from_image.get_path("big/values"),
        Some(H5Node::Dataset(d)) if matches!(&d.data, Some(TensorData::Bytes(b)) if b.len() == 2_400_000)
    ));
    let structure = h5::read_image(name, &bytes, Values::Skip).unwrap();
    assert!(matches!(
        structure.get_path("big/values"),
        Some(H5Node::Dataset(d)) if d.data.is_none()
    ));
    // The same image twice at once (libhdf5 tells open files apart by name).
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| h5::read_image(name, &bytes, Values::All).unwrap());
        }
    });
    for cut in [0, 8, 96, 800, bytes.len() / 2, bytes.len() - 1] {
        match h5::read_image(name, &bytes[..cut], Values::All) {
            Err(Error::Format { at, .. }) => assert_eq!(at.0.as_deref(), Some(name)),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    match h5::read_image(name, b"PK\x03\x04 and then some", Values::All) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains("zip archive"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deferred_values_are_left_in_the_file_and_read_by_offset() {
    use kerasafe::file_bytes::{FileBytes, RangeSource};
    use kerasafe::progress::Progress;

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.h5");
    let mut tree = sample();
    let big: Vec<f32> = (0..(DEFER_MIN as usize)).map(|i| i as f32 - 7.25).collect();
    tree.insert_path(
        "big/values",
        dataset(DType::F32, &[big.len() as u64], le(&big, f32::to_le_bytes)),
    )
    .unwrap();
    h5::write_file(&path, &tree).unwrap();
    let all = h5::read_file(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let name = Path::new("in-memory.h5");
    let from_file = h5::read_file_with(&path, Values::Deferred).unwrap();
    let from_image = h5::read_image(name, &bytes, Values::Deferred).unwrap();
    assert_eq!(from_file, from_image);
    let sources = [
        RangeSource::open(&path).unwrap(),
        RangeSource::bytes(name, FileBytes::from_vec(bytes.clone())),
    ];
    let mut deferred = 0;
    all.walk_datasets(|p, want| {
        let Some(H5Node::Dataset(got)) = from_file.get_path(p) else {
            panic!("{p} missing");
        };
        let stored = want.storage.as_ref().unwrap().stored_bytes;
        if got.data.is_some() {
            assert!(
                stored < DEFER_MIN || got.dtype == DType::String,
                "{p} was not deferred"
            );
            assert_eq!(got.data, want.data, "{p}");
            return;
        }
        deferred += 1;
        let at = got
            .storage
            .as_ref()
            .unwrap()
            .raw_offset
            .expect("a deferred dataset has an offset");
        let Some(TensorData::Bytes(want_bytes)) = &want.data else {
            panic!("{p}: no bytes");
        };
        for source in &sources {
            let mut buf = vec![0; want_bytes.len()];
            source.read(&mut buf, at, &Progress::current()).unwrap();
            assert_eq!(&buf[..], &want_bytes[..], "{p}");
        }
    });
    assert_eq!(deferred, 1);
    // Ranges past the end name the source and read nothing.
    let len = sources[0].len();
    for source in &sources {
        match source.read(&mut [0; 8], len - 4, &Progress::current()) {
            Err(Error::Format { at, msg }) => {
                assert!(at.0.is_some());
                assert!(msg.contains("past the end"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(source.check_range(u64::MAX, 2).is_err());
        assert!(source.check_range(len, 0).is_ok());
        // Many ranges at once: each filled; one range past the end fails before any is read.
        let (mut first, mut second) = (vec![0u8; 8], vec![0u8; 8]);
        source
            .read_many(
                vec![(0, &mut first[..]), (8, &mut second[..])],
                &Progress::current(),
            )
            .unwrap();
        assert_eq!((&first[..], &second[..]), (&bytes[..8], &bytes[8..16]));
        let (mut untouched, mut past) = (vec![0u8; 8], vec![0u8; 8]);
        let jobs = vec![(0, &mut untouched[..]), (len - 4, &mut past[..])];
        assert!(source.read_many(jobs, &Progress::current()).is_err());
        assert_eq!(untouched, vec![0u8; 8]);
    }
    // A file cut short after it was opened: the read fails with an error naming it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let mut buf = vec![0; 16];
    match sources[0].read(&mut buf, len - 16, &Progress::current()) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains("cut short"), "{msg}"),
        other => panic!("{other:?}"),
    }
}
