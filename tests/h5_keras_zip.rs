//! `kerasafe::keras_zip`: `.keras` archives written and read back, and hostile archives
//! (zip-slip names, symlinks, duplicates, bombs, truncation, bad CRCs) refused cleanly.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use kerasafe::h5::{self, AttrValue, H5Dataset, H5Group, H5Node};
use kerasafe::keras_zip::{
    self, read_archive, sniff, write_archive, Asset, AssetData, FileKind, WeightsSource,
};
use kerasafe::{DType, Error, Tensor, TensorData};

const CONFIG: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {}}"#;
const METADATA: &str = r#"{"keras_version": "3.15.1", "date_saved": "2026-11-26@04:49:00"}"#;

fn weights() -> H5Group<'static> {
    // Children in name order, as HDF5 lists them on read.
    let mut root = H5Group::new();
    let vars = root
        .group_mut("layers")
        .unwrap()
        .group_mut("dense")
        .unwrap()
        .group_mut("vars")
        .unwrap();
    vars.attrs.set("name", AttrValue::Str("dense".into()));
    let kernel: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    vars.insert(
        "0",
        H5Node::Dataset(H5Dataset::from_tensor(Tensor {
            dtype: DType::F32,
            shape: vec![2, 3],
            data: TensorData::Bytes(Cow::Owned(kernel)),
        })),
    )
    .unwrap();
    root.group_mut("vars")
        .unwrap()
        .attrs
        .set("name", AttrValue::Str("sequential".into()));
    root
}

fn without_storage(mut g: H5Group<'static>) -> H5Group<'static> {
    fn strip(g: &mut H5Group<'_>) {
        for (_, c) in &mut g.children {
            match c {
                H5Node::Group(s) => strip(s),
                H5Node::Dataset(d) => d.storage = None,
            }
        }
    }
    strip(&mut g);
    g
}

#[test]
fn archives_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.keras");
    let tree = weights();
    let vocab = tmp.path().join("vocab.txt");
    std::fs::write(&vocab, "a\nb\nc").unwrap();
    let assets = [
        Asset {
            name: "layers/string_lookup/vocabulary.txt",
            data: AssetData::File(&vocab),
        },
        Asset {
            name: "extra.bin",
            data: AssetData::Bytes(&[0, 1, 2]),
        },
    ];
    write_archive(&path, CONFIG, METADATA, WeightsSource::Tree(&tree), &assets).unwrap();
    // Only the archive is left in the directory (besides the input).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    assert_eq!(sniff(&path).unwrap(), FileKind::Zip);

    let a = read_archive(&path).unwrap();
    let names: Vec<&str> = a.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "model.weights.h5",
            "metadata.json",
            "config.json",
            "assets/layers/string_lookup/vocabulary.txt",
            "assets/extra.bin"
        ]
    );
    // The weights start at byte 512, where libhdf5 looks for a superblock after a user block:
    // the archive is an HDF5 file too, and the member is a standalone one.
    assert_eq!(without_storage(h5::read_file(&path).unwrap()), tree);
    assert!(a
        .members
        .iter()
        .all(|m| m.stored && m.size == m.compressed_size));
    assert_eq!(a.config_json, CONFIG);
    assert_eq!(a.metadata_json.as_deref(), Some(METADATA));
    assert_eq!(a.path(), path);
    assert_eq!(without_storage(a.read_weights().unwrap()), tree);
    assert!(a
        .read_weights_structure()
        .unwrap()
        .get_path("layers/dense/vars/0")
        .is_some());
    assert_eq!(a.read_member("assets/extra.bin").unwrap(), [0, 1, 2]);
    assert_eq!(a.assets().count(), 2);

    let out = tmp.path().join("out");
    let written = a.extract_assets(&out).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(
        std::fs::read_to_string(out.join("layers/string_lookup/vocabulary.txt")).unwrap(),
        "a\nb\nc"
    );
    let h5_copy = tmp.path().join("w.weights.h5");
    a.extract_member("model.weights.h5", &h5_copy).unwrap();
    assert_eq!(without_storage(h5::read_file(&h5_copy).unwrap()), tree);

    // The same weights given as bytes or as a file give the same archive, byte for byte.
    let bytes = a.read_member("model.weights.h5").unwrap();
    let (p2, p3) = (tmp.path().join("b.keras"), tmp.path().join("c.keras"));
    write_archive(&p2, CONFIG, METADATA, WeightsSource::Bytes(&bytes), &assets).unwrap();
    write_archive(
        &p3,
        CONFIG,
        METADATA,
        WeightsSource::File(&h5_copy),
        &assets,
    )
    .unwrap();
    let original = std::fs::read(&path).unwrap();
    assert_eq!(std::fs::read(&p2).unwrap(), original);
    assert_eq!(std::fs::read(&p3).unwrap(), original);
}

#[test]
fn archive_write_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.keras");
    let tree = weights();
    for bad in ["../x", "/abs", "a\\b", "a//b", "dir/", ""] {
        let assets = [Asset {
            name: bad,
            data: AssetData::Bytes(b"x"),
        }];
        match write_archive(&path, CONFIG, METADATA, WeightsSource::Tree(&tree), &assets) {
            Err(Error::InvalidArgument { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let twice = [
        Asset {
            name: "a",
            data: AssetData::Bytes(b"x"),
        },
        Asset {
            name: "a",
            data: AssetData::Bytes(b"y"),
        },
    ];
    assert!(matches!(
        write_archive(&path, CONFIG, METADATA, WeightsSource::Tree(&tree), &twice),
        Err(Error::InvalidArgument { .. })
    ));
    let missing = tmp.path().join("missing.h5");
    match write_archive(&path, CONFIG, METADATA, WeightsSource::File(&missing), &[]) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    // Nothing was created, not even temporary files.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn sniff_tells_kinds_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let h5p = tmp.path().join("w.h5");
    h5::write_file(&h5p, &weights()).unwrap();
    assert_eq!(sniff(&h5p).unwrap(), FileKind::Hdf5);
    assert_eq!(sniff(tmp.path()).unwrap(), FileKind::Directory);
    let other = tmp.path().join("o");
    std::fs::write(&other, b"hello").unwrap();
    assert_eq!(sniff(&other).unwrap(), FileKind::Other);
    std::fs::write(&other, b"").unwrap();
    assert_eq!(sniff(&other).unwrap(), FileKind::Other);
    assert!(matches!(
        sniff(&tmp.path().join("nope")),
        Err(Error::Io { .. })
    ));
    // A legacy HDF5 model under a .keras name is routed, not misread.
    let k = tmp.path().join("legacy.keras");
    std::fs::copy(&h5p, &k).unwrap();
    match read_archive(&k) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains("legacy .h5"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match read_archive(tmp.path()) {
        Err(Error::Format { msg, .. }) => assert!(msg.contains("directory"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

// ---- A minimal zip writer for hostile archives -------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[derive(Clone)]
struct Entry {
    name: Vec<u8>,
    local_name: Option<Vec<u8>>,
    data: Vec<u8>,
    method: u16,
    flags: u16,
    size: Option<u32>,
    crc: Option<u32>,
    external: u32,
}

fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        local_name: None,
        data: data.to_vec(),
        method: 0,
        flags: 0,
        size: None,
        crc: None,
        external: 0o100600 << 16,
    }
}

fn build(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = e.crc.unwrap_or_else(|| crc32(&e.data));
        let size = e.size.unwrap_or(e.data.len() as u32);
        let csize = e.data.len() as u32;
        let local_name = e.local_name.as_ref().unwrap_or(&e.name);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes());
        out.extend(e.flags.to_le_bytes());
        out.extend(e.method.to_le_bytes());
        out.extend([0, 0, 0x21, 0]); // time, date (1980-01-01)
        out.extend(crc.to_le_bytes());
        out.extend(csize.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend((local_name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(local_name);
        out.extend(&e.data);

        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend((3u16 << 8 | 20).to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(e.flags.to_le_bytes());
        central.extend(e.method.to_le_bytes());
        central.extend([0, 0, 0x21, 0]);
        central.extend(crc.to_le_bytes());
        central.extend(csize.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend((e.name.len() as u16).to_le_bytes());
        central.extend([0; 8]); // extra len, comment len, disk, internal attrs
        central.extend(e.external.to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn base() -> Vec<Entry> {
    vec![
        entry("metadata.json", METADATA.as_bytes()),
        entry("config.json", CONFIG.as_bytes()),
        entry("model.weights.h5", b"not really hdf5"),
    ]
}

fn read_bytes(bytes: &[u8]) -> kerasafe::Result<keras_zip::KerasArchive> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.keras");
    std::fs::write(&p, bytes).unwrap();
    read_archive(&p)
}

fn expect_format(entries: &[Entry], needle: &str) {
    match read_bytes(&build(entries)) {
        Err(Error::Format { msg, at }) => {
            assert!(at.0.is_some());
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        other => panic!("expected a format error with {needle:?}, got {other:?}"),
    }
}

#[test]
fn the_builder_makes_archives_we_read() {
    let a = read_bytes(&build(&base())).unwrap();
    assert_eq!(a.config_json, CONFIG);
    assert_eq!(a.members.len(), 3);
    // Directory entries are accepted and not listed; no metadata is fine.
    let mut e = base();
    e.remove(0);
    e.push(entry("assets/", b""));
    let a = read_bytes(&build(&e)).unwrap();
    assert_eq!(a.members.len(), 2);
    assert!(a.metadata_json.is_none());
}

#[test]
fn escaping_member_names_are_refused() {
    for bad in [
        "../evil",
        "assets/../../evil",
        "/etc/passwd",
        "assets\\..\\evil",
        "C:/evil",
        "assets//x",
        "./config.json",
    ] {
        let mut e = base();
        e.push(entry(bad, b"x"));
        expect_format(&e, "refused");
    }
}

#[test]
fn symlinks_duplicates_and_encryption_are_refused() {
    let mut e = base();
    let mut link = entry("assets/link", b"/etc/passwd");
    link.external = 0o120777 << 16;
    e.push(link);
    match read_bytes(&build(&e)) {
        Err(Error::Unsafe { msg, .. }) => assert!(msg.contains("symbolic link"), "{msg}"),
        other => panic!("{other:?}"),
    }

    let mut e = base();
    e.push(entry("config.json", b"{}"));
    expect_format(&e, "twice");

    let mut e = base();
    e[2].flags = 1;
    expect_format(&e, "encrypted");

    let mut e = base();
    e[2].method = 12; // bzip2
    expect_format(&e, "unsupported compression");
}

#[test]
fn size_lies_and_bombs_are_refused() {
    // A stored member declaring more bytes than it holds.
    let mut e = base();
    e[2].size = Some(4_000_000_000);
    expect_format(&e, "declares");

    // A deflated member claiming a ratio DEFLATE cannot reach.
    let mut e = base();
    e[2].method = 8;
    e[2].size = Some(4_000_000_000);
    expect_format(&e, "zip bomb");

    // Members within the per-member ratio but far beyond the archive in total.
    let mut e = base();
    for i in 0..5 {
        let mut m = entry(&format!("assets/{i}"), &vec![0u8; 1 << 20]);
        m.method = 8;
        m.size = Some(1_000 << 20);
        e.push(m);
    }
    expect_format(&e, "zip bomb");

    // One member within DEFLATE's ratio but inflating to far more than 64× a small archive.
    let mut e = base();
    let mut m = entry("assets/big", &vec![0u8; 1 << 20]);
    m.method = 8;
    m.size = Some(600 << 20);
    e.push(m);
    expect_format(&e, "zip bomb");
}

#[test]
fn a_compressed_weights_member_that_is_not_hdf5_is_refused_before_it_is_inflated() {
    // 64 MiB of zeros deflate to about 64 KiB: within the limits, and not an HDF5 file.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("zeros.keras");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zw.start_file("config.json", opts).unwrap();
    zw.write_all(CONFIG.as_bytes()).unwrap();
    zw.start_file("model.weights.h5", opts).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        zw.write_all(&zeros).unwrap();
    }
    zw.finish().unwrap();
    let archive = read_archive(&p).unwrap();
    match archive.read_weights() {
        Err(Error::Format { msg, at }) => {
            assert_eq!(at.0.as_deref(), Some(p.as_path()));
            assert!(msg.contains("not an HDF5 file"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn damaged_members_are_refused_when_read() {
    let mut e = base();
    e[1].crc = Some(0x1234_5678);
    expect_format(&e, "config.json");

    let mut e = base();
    e[1].data = vec![0xff, 0xfe, b'{'];
    expect_format(&e, "not UTF-8");

    let mut e = base();
    e.remove(1);
    expect_format(&e, "no config.json");

    let mut e = base();
    e[1].local_name = Some(b"other.json".to_vec());
    match read_bytes(&build(&e)) {
        Err(Error::Format { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn deflated_members_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("d.keras");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let config = CONFIG.repeat(50);
    zw.start_file("config.json", opts).unwrap();
    zw.write_all(config.as_bytes()).unwrap();
    zw.finish().unwrap();
    let a = read_archive(&p).unwrap();
    assert_eq!(a.config_json, config);
    assert!(!a.members[0].stored);
}

/// An archive of [`weights`] without assets, in a fresh directory (kept alive by the guard).
fn sample_archive() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.keras");
    write_archive(
        &path,
        CONFIG,
        METADATA,
        WeightsSource::Tree(&weights()),
        &[],
    )
    .unwrap();
    (tmp, path)
}

#[test]
fn truncated_and_random_archives_never_panic() {
    let (_dir, path) = sample_archive();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [
        4,
        30,
        100,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 1,
    ] {
        match read_bytes(&bytes[..cut]) {
            Err(Error::Format { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300 {
        let mut bad = bytes.clone();
        for _ in 0..1 + i % 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x % bad.len() as u64) as usize;
            bad[pos] = (x >> 32) as u8;
        }
        if let Ok(a) = read_bytes(&bad) {
            let _ = a.read_weights();
        }
    }
    let mut junk = b"PK\x03\x04".to_vec();
    junk.extend((0..500u32).map(|i| (i * 7919 % 251) as u8));
    assert!(matches!(read_bytes(&junk), Err(Error::Format { .. })));
}

#[test]
fn weights_errors_name_the_archive_member() {
    let a = read_bytes(&build(&base())).unwrap();
    match a.read_weights() {
        Err(Error::Format { at, msg }) => {
            assert!(at.0.as_deref().unwrap().ends_with("x.keras"), "{at:?}");
            assert!(msg.starts_with("model.weights.h5: "), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let mut e = base();
    e.remove(2);
    let a = read_bytes(&build(&e)).unwrap();
    assert!(a.weights_member().is_none());
    assert!(matches!(a.read_weights(), Err(Error::Format { .. })));
}

#[test]
fn a_path_that_is_not_there() {
    match read_archive(Path::new("/no/such/model.keras")) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_weights_member_never_reaches_libhdf5() {
    let mut e = base();
    e[2].crc = Some(0x1234_5678);
    let a = read_bytes(&build(&e)).unwrap();
    for result in [a.read_weights(), a.read_weights_structure()] {
        match result {
            Err(Error::Checksum { at, what, .. }) => {
                assert!(at.0.as_deref().unwrap().ends_with("x.keras"), "{at:?}");
                assert!(what.contains("model.weights.h5"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn archives_in_memory_read_like_files() {
    let (_dir, path) = sample_archive();
    let name = std::path::Path::new("s3://bucket/m.keras");
    let bytes = kerasafe::file_bytes::FileBytes::from_vec(std::fs::read(&path).unwrap());
    let in_memory = keras_zip::read_archive_bytes(name, bytes).unwrap();
    let mapped = read_archive(&path).unwrap();
    assert_eq!(in_memory.config_json, mapped.config_json);
    assert_eq!(in_memory.members, mapped.members);
    assert_eq!(
        in_memory.read_weights().unwrap(),
        mapped.read_weights().unwrap()
    );
    let h5_bytes = kerasafe::file_bytes::FileBytes::from_vec(b"\x89HDF\r\n\x1a\nxxxx".to_vec());
    match keras_zip::read_archive_bytes(name, h5_bytes) {
        Err(Error::Format { at, msg }) => {
            assert_eq!(at.0.as_deref(), Some(name));
            assert!(msg.contains("HDF5"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn our_archives_read_through_the_file_are_crc_checked_too() {
    let (_dir, path) = sample_archive();
    let mut bytes = std::fs::read(&path).unwrap();
    let a = read_archive(&path).unwrap();
    assert_eq!(without_storage(a.read_weights().unwrap()), weights());
    bytes[600] ^= 0x40; // inside the weights member, which starts at byte 512
    std::fs::write(&path, &bytes).unwrap();
    match read_archive(&path).unwrap().read_weights() {
        Err(Error::Checksum { what, .. }) => assert!(what.contains("model.weights.h5"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deferred_weights_are_read_by_offset_into_the_archive() {
    use kerasafe::file_bytes::{FileBytes, RangeSource};
    use kerasafe::progress::Progress;

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.keras");
    let mut tree = weights();
    let big: Vec<u8> = (0..(h5::DEFER_MIN as usize * 4))
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let n = big.len() as u64 / 4;
    tree.insert_path(
        "layers/dense/vars/1",
        H5Node::Dataset(H5Dataset::from_tensor(Tensor {
            dtype: DType::F32,
            shape: vec![n],
            data: TensorData::Bytes(Cow::Owned(big.clone())),
        })),
    )
    .unwrap();
    write_archive(&path, CONFIG, METADATA, WeightsSource::Tree(&tree), &[]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let check = |deferred: H5Group<'static>, source: &RangeSource| {
        let Some(H5Node::Dataset(d)) = deferred.get_path("layers/dense/vars/1") else {
            panic!("no dataset");
        };
        assert!(d.data.is_none());
        let at = d.storage.as_ref().unwrap().raw_offset.unwrap();
        let mut buf = vec![0; big.len()];
        source.read(&mut buf, at, &Progress::current()).unwrap();
        assert_eq!(buf, big);
        // The small kernel came with the tree.
        assert!(
            matches!(deferred.get_path("layers/dense/vars/0"), Some(H5Node::Dataset(d)) if d.data.is_some())
        );
    };
    // Ours, read through the file; the same bytes in memory, through libhdf5's image driver.
    let on_disk = read_archive(&path).unwrap();
    check(
        on_disk.read_weights_deferred().unwrap(),
        &RangeSource::open(&path).unwrap(),
    );
    let name = Path::new("s3://bucket/big.keras");
    let in_memory =
        keras_zip::read_archive_bytes(name, FileBytes::from_vec(bytes.clone())).unwrap();
    check(
        in_memory.read_weights_deferred().unwrap(),
        &RangeSource::bytes(name, FileBytes::from_vec(bytes)),
    );
    // A compressed weights member has no bytes to point into: every value comes with the tree.
    let deflated = tmp.path().join("deflated.keras");
    let h5_path = tmp.path().join("w.h5");
    h5::write_file(&h5_path, &tree).unwrap();
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&deflated).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (member, data) in [
        ("config.json", CONFIG.as_bytes().to_vec()),
        ("model.weights.h5", std::fs::read(&h5_path).unwrap()),
    ] {
        zw.start_file(member, opts).unwrap();
        zw.write_all(&data).unwrap();
    }
    zw.finish().unwrap();
    let read = read_archive(&deflated)
        .unwrap()
        .read_weights_deferred()
        .unwrap();
    read.walk_datasets(|p, d| {
        assert!(d.data.is_some(), "{p}");
        assert_eq!(d.storage.as_ref().unwrap().raw_offset, None, "{p}");
    });
}

#[test]
fn archives_with_large_values_carry_the_crc_computed_while_writing() {
    // Values of 1 MiB and more are written outside libhdf5, their CRC computed alongside; the
    // member's CRC joins those with the rest of the file read back. Python's zipfile and our
    // reader both check it.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("large.keras");
    let mut tree = weights();
    for (i, n) in [(1usize, 300_000u64), (2, 262_144), (3, 1_000_003)] {
        let data: Vec<u8> = (0..n)
            .flat_map(|j| ((j * i as u64) as f32).to_le_bytes())
            .collect();
        tree.insert_path(
            &format!("layers/dense_{i}/vars/0"),
            H5Node::Dataset(H5Dataset::from_tensor(Tensor {
                dtype: DType::F32,
                shape: vec![n],
                data: TensorData::Bytes(Cow::Owned(data)),
            })),
        )
        .unwrap();
    }
    write_archive(&path, CONFIG, METADATA, WeightsSource::Tree(&tree), &[]).unwrap();
    let back = read_archive(&path).unwrap().read_weights().unwrap();
    assert_eq!(without_storage(back), {
        let mut sorted = tree.clone();
        sorted.children.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(H5Node::Group(layers)) = sorted.get_mut("layers") {
            layers.children.sort_by(|a, b| a.0.cmp(&b.0));
        }
        sorted
    });
    // The zip crate checks a member's CRC as it reads the member to its end.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut member = zip.by_name("model.weights.h5").unwrap();
    let mut weights_bytes = Vec::new();
    std::io::Read::read_to_end(&mut member, &mut weights_bytes).unwrap();
    assert_eq!(member.crc32(), crc32(&weights_bytes));
}
