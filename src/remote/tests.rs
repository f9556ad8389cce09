use std::sync::Arc;

use object_store::memory::InMemory;
use serde_json::json;

use super::versions::{self, CLAIM_FILE};
use super::*;

fn remote() -> Remote {
    Remote::with_store(Arc::new(InMemory::new()), "s3://bucket", "root").unwrap()
}

fn staged(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, bytes) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dir
}

#[test]
fn urls_split_into_bucket_and_key() {
    assert_eq!(
        split_url("s3://b/x/y/").unwrap(),
        ("s3://b".into(), "b".into(), "x/y".into())
    );
    assert_eq!(split_url("gs://b").unwrap().2, "");
    assert!(split_url("s3:///x").is_err());
    assert!(is_remote("s3://b/k") && is_remote("gs://b") && is_remote("az://c/k"));
    assert!(!is_remote("/tmp/s3://x") && !is_remote("relative/path"));
}

#[test]
fn publish_numbers_versions_and_commits_metadata_last() {
    let root = remote();
    let src = staged(&[("model.keras", b"abc"), ("reference/ref.index", b"idx")]);
    let first =
        versions::publish(&root, "m", "keras", None, src.path(), json!({"notes": "n"})).unwrap();
    let second = versions::publish(&root, "m", "keras", None, src.path(), json!({})).unwrap();
    assert_eq!(first.version.to_string(), "v1");
    assert_eq!(second.version.to_string(), "v2");
    assert_eq!(first.path, "s3://bucket/root/m/keras/v1");
    assert_eq!(first.metadata["version"], "v1");
    assert_eq!(
        first.metadata["manifest"]["files"]["model.keras"]["size"],
        3
    );
    let listed = versions::list_versions(&root, "m", None).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].metadata["notes"], "n");
    assert_eq!(
        versions::resolve(&root, "m", None, "latest").unwrap(),
        "s3://bucket/root/m/keras/v2"
    );
    let report = versions::verify(&root.join("m/keras/v1").unwrap()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.ok, 2);
}

#[test]
fn explicit_versions_are_never_overwritten() {
    let root = remote();
    let src = staged(&[("f", b"1")]);
    versions::publish(&root, "m", "h5", Some("1.0.0"), src.path(), json!({})).unwrap();
    let err =
        versions::publish(&root, "m", "h5", Some("1.0.0"), src.path(), json!({})).unwrap_err();
    assert!(matches!(err, Error::ArtifactExists { .. }), "{err}");
    assert!(
        err.to_string().contains("s3://bucket/root/m/h5/1.0.0"),
        "{err}"
    );
}

#[test]
fn an_uncommitted_version_is_invisible_and_its_number_is_not_reused() {
    let root = remote();
    // A writer that died after claiming v1 and uploading a file, before the commit.
    assert!(root
        .put_new(&format!("m/keras/v1/{CLAIM_FILE}"), b"{}".to_vec())
        .unwrap());
    root.put("m/keras/v1/model.keras", b"partial".to_vec())
        .unwrap();
    assert!(versions::list_versions(&root, "m", None)
        .unwrap()
        .is_empty());
    let err = versions::resolve(&root, "m", Some("keras"), "latest").unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
    let err = versions::read_metadata(&root.join("m/keras/v1").unwrap()).unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
    let src = staged(&[("model.keras", b"full")]);
    let p = versions::publish(&root, "m", "keras", None, src.path(), json!({})).unwrap();
    assert_eq!(p.version.to_string(), "v2");
}

#[test]
fn downloads_check_every_file_against_the_manifest() {
    let root = remote();
    let src = staged(&[("a/b.bin", b"hello"), ("c.txt", b"world")]);
    versions::publish(&root, "m", "weights", None, src.path(), json!({})).unwrap();
    let dir = root.join("m/weights/v1").unwrap();
    let out = tempfile::tempdir().unwrap();
    versions::download(&dir, out.path()).unwrap();
    assert_eq!(std::fs::read(out.path().join("a/b.bin")).unwrap(), b"hello");
    assert!(out.path().join("metadata.json").is_file());
    crate::store::verify_version(out.path())
        .unwrap()
        .into_result()
        .unwrap();

    // Same size, different bytes: a hash mismatch on verify and on download.
    dir.put("c.txt", b"WORLD".to_vec()).unwrap();
    let report = versions::verify(&dir).unwrap();
    assert_eq!(report.hash_mismatches.len(), 1);
    let out2 = tempfile::tempdir().unwrap();
    let err = versions::download(&dir, out2.path()).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("s3://bucket/root/m/weights/v1/c.txt"),
        "{err}"
    );
    assert!(!out2.path().join("metadata.json").exists());

    // A removed file and an extra one.
    dir.delete("a/b.bin").unwrap();
    dir.put("stray", b"x".to_vec()).unwrap();
    let report = versions::verify(&dir).unwrap();
    assert_eq!(report.missing, vec!["a/b.bin".to_string()]);
    assert_eq!(report.extra, vec!["stray".to_string()]);
}

#[test]
fn a_kept_model_file_comes_back_in_memory_checked() {
    let root = remote();
    let src = staged(&[("model.keras", b"model bytes"), ("reference/x", b"ref")]);
    versions::publish(&root, "m", "keras", None, src.path(), json!({})).unwrap();
    let dir = root.join("m/keras/v1").unwrap();
    let out = tempfile::tempdir().unwrap();
    let (_, kept) = versions::download_keeping(&dir, out.path(), Some("model.keras")).unwrap();
    assert_eq!(kept.as_deref(), Some(&b"model bytes"[..]));
    assert!(!out.path().join("model.keras").exists());
    assert_eq!(
        std::fs::read(out.path().join("reference/x")).unwrap(),
        b"ref"
    );

    let out = tempfile::tempdir().unwrap();
    let err = versions::download_keeping(&dir, out.path(), Some("nope")).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    dir.put("model.keras", b"MODEL BYTES".to_vec()).unwrap();
    let err = versions::download_keeping(&dir, out.path(), Some("model.keras")).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    dir.put("model.keras", b"longer model bytes".to_vec())
        .unwrap();
    let err = versions::download_keeping(&dir, out.path(), Some("model.keras")).unwrap_err();
    assert!(err.to_string().contains("size differs"), "{err}");
}

#[test]
fn hostile_manifest_keys_are_refused_before_any_download() {
    let root = remote();
    let meta = json!({"manifest": {"files": {"../evil": {"size": 1, "sha256": "00"}}}});
    root.put(
        "m/keras/v1/metadata.json",
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = versions::download(&root.join("m/keras/v1").unwrap(), out.path()).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
}

#[test]
fn prune_hides_old_versions_keeps_released_and_claims() {
    let root = remote();
    let src = staged(&[("f", b"1")]);
    versions::publish(
        &root,
        "m",
        "h5",
        None,
        src.path(),
        json!({"released": true}),
    )
    .unwrap();
    for _ in 0..3 {
        versions::publish(&root, "m", "h5", None, src.path(), json!({})).unwrap();
    }
    let deleted = versions::prune(&root, "m", "h5", 1).unwrap();
    assert_eq!(
        deleted,
        vec![
            "s3://bucket/root/m/h5/v2".to_string(),
            "s3://bucket/root/m/h5/v3".to_string()
        ]
    );
    let left: Vec<String> = versions::list_versions(&root, "m", Some("h5"))
        .unwrap()
        .iter()
        .map(|i| i.version.to_string())
        .collect();
    assert_eq!(left, vec!["v1", "v4"]);
    assert_eq!(root.list("m/h5/v2").unwrap().len(), 1); // only the claim
    let p = versions::publish(&root, "m", "h5", None, src.path(), json!({})).unwrap();
    assert_eq!(p.version.to_string(), "v5");
}

#[test]
fn concurrent_publishers_get_distinct_versions() {
    let root = remote();
    let src = staged(&[("f", b"1")]);
    let versions: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                let dir = src.path().to_path_buf();
                s.spawn(move || {
                    versions::publish(&root, "m", "keras", None, &dir, json!({}))
                        .unwrap()
                        .version
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "{versions:?}");
}

#[test]
fn large_files_round_trip_through_multipart_uploads() {
    let root = remote();
    let big: Vec<u8> = (0..(MULTIPART_THRESHOLD as usize + 3 * PART_SIZE + 123))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let src = staged(&[("big.bin", &big)]);
    root.upload_files(&[(src.path().join("big.bin"), "x/big.bin".into())])
        .unwrap();
    assert_eq!(root.size_of("x/big.bin").unwrap(), Some(big.len() as u64));
    let out = tempfile::tempdir().unwrap();
    let want = crate::store::manifest::hash_file(&src.path().join("big.bin")).unwrap();
    root.download_files(&[("x/big.bin".into(), out.path().join("b"), Some(want))])
        .unwrap();
    assert_eq!(std::fs::read(out.path().join("b")).unwrap(), big);
}

#[test]
fn https_clients_build_for_every_cloud() {
    // Building a store builds its TLS client, which needs the crypto provider open() installs.
    let keys = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let mut s3 = keys("aws_access_key_id", "AKIDEXAMPLE");
    s3.extend(keys("aws_secret_access_key", "example"));
    s3.extend(keys("aws_endpoint", "https://s3.example.com"));
    Remote::open("s3://bucket/x", &s3).unwrap();
    let az = [
        keys("azure_storage_account_name", "account"),
        keys("azure_storage_account_key", "ZXhhbXBsZQ=="),
    ]
    .concat();
    Remote::open("az://container/x", &az).unwrap();
    Remote::open("gs://bucket/x", &keys("google_skip_signature", "true")).unwrap();
}

#[test]
fn missing_s3_credentials_are_a_clear_permission_error() {
    // No AWS_* keys in the options; the environment of `cargo test` may have some, so only
    // check when it does not.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return;
    }
    let err = Remote::open("s3://bucket/x", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("s3://bucket/x: no S3 credentials"),
        "{text}"
    );
    let secret = [
        ("aws_access_key_id".to_string(), "AKIDEXAMPLE".to_string()),
        (
            "aws_secret_access_key".to_string(),
            "s3cr3t-value".to_string(),
        ),
        ("no_such_option".to_string(), "s3cr3t-value".to_string()),
    ];
    let err = Remote::open("s3://bucket/x", &secret)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no_such_option") && !err.contains("s3cr3t"),
        "{err}"
    );
}

#[test]
fn fetch_reads_a_whole_object_into_memory() {
    let root = remote();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    root.put("models/m.keras", body.clone()).unwrap();
    assert_eq!(root.join("models/m.keras").unwrap().fetch().unwrap(), body);
    assert_eq!(
        root.get_bytes("models/m.keras", 10)
            .unwrap_err()
            .to_string(),
        "s3://bucket/root/models/m.keras: 3000000 bytes, more than the 10 allowed"
    );

    // Missing: the not-found kind `download` gives (Python: NotFoundError), naming the URL.
    for url in ["models/nope.keras", "models"] {
        let err = root.join(url).unwrap().fetch().unwrap_err();
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("s3://bucket/root/{url}: ")),
            "{err}"
        );
    }
    let bucket = Remote::with_store(Arc::new(InMemory::new()), "s3://bucket", "").unwrap();
    let err = bucket.fetch().unwrap_err();
    assert!(
        err.to_string().contains("names a bucket, not an object"),
        "{err}"
    );
}

#[test]
fn objects_larger_than_memory_are_refused_not_aborted() {
    let mut out = Vec::new();
    let err = reserve(&mut out, u64::MAX, "s3://b/huge").unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == ErrorKind::OutOfMemory),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("s3://b/huge: the object does not fit in memory"),
        "{err}"
    );
    reserve(&mut out, 16, "s3://b/small").unwrap();
    assert!(out.capacity() >= 16);
}
