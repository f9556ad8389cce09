use super::*;
use serde_json::json;
use std::collections::BTreeMap;

fn write_files(dir: &Path, tag: &str) -> Result<()> {
    fs::write(dir.join("saved_model.pb"), format!("graph {tag}")).at(dir)?;
    fs::create_dir(dir.join("variables")).at(dir)?;
    fs::write(
        dir.join("variables/variables.data-00000-of-00001"),
        vec![tag.len() as u8; 10_000],
    )
    .at(dir)?;
    fs::write(dir.join("variables/variables.index"), tag).at(dir)?;
    Ok(())
}

fn publish_auto(root: &Path, tag: &str) -> Result<PublishedVersion> {
    publish(
        root,
        "model",
        "savedmodel",
        None,
        json!({"tag": tag}),
        |d| write_files(d, tag),
    )
}

/// Entries of the format directory, hidden ones included.
fn entries(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join("model/savedmodel"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn names(infos: &[VersionInfo]) -> Vec<String> {
    infos.iter().map(|i| i.version.to_string()).collect()
}

#[test]
fn publish_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let p = publish(
        root.path(),
        "model",
        "savedmodel",
        None,
        json!({"z": 1, "a": {"y": 2, "b": 3}}),
        |d| write_files(d, "one"),
    )
    .unwrap();
    assert_eq!(p.version, Version::Seq(1));
    assert_eq!(p.path, root.path().join("model/savedmodel/v1"));
    assert_eq!(p.manifest.files.len(), 3);
    assert!(!p.manifest.files.contains_key(METADATA_FILE));
    assert_eq!(entries(root.path()), ["v1"]);

    // metadata.json: caller metadata + manifest, sorted keys, 2-space indent, newline.
    let text = fs::read_to_string(p.path.join(METADATA_FILE)).unwrap();
    assert!(text.starts_with("{\n  \"a\": {\n    \"b\": 3,\n    \"y\": 2\n  },\n  \"manifest\""));
    assert!(text.ends_with("}\n"));
    let meta = metadata::read(&p.path).unwrap();
    assert_eq!(meta, p.metadata);
    assert_eq!(meta["z"], 1);
    assert_eq!(metadata::manifest_of(&p.path, &meta).unwrap(), p.manifest);
    assert_eq!(
        p.manifest.files["saved_model.pb"],
        manifest::hash_file(&p.path.join("saved_model.pb")).unwrap()
    );

    let report = verify_version(&p.path).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.ok, 3);

    let p2 = publish_auto(root.path(), "two").unwrap();
    assert_eq!(p2.version, Version::Seq(2));
    let list = list_versions(root.path(), "model", Some("savedmodel")).unwrap();
    assert_eq!(names(&list), ["v1", "v2"]);
    assert_eq!(list[1].metadata["tag"], "two");
    assert_eq!(list[1].format, "savedmodel");
    assert_eq!(list[1].name, "model");
    assert_eq!(list[1].path, p2.path);
    assert_eq!(
        resolve(root.path(), "model", Some("savedmodel"), LATEST).unwrap(),
        p2.path
    );
    assert_eq!(resolve(root.path(), "model", None, "v1").unwrap(), p.path);
    // Serializes for the Python side.
    let j = serde_json::to_value(&list[0]).unwrap();
    assert_eq!(j["version"], "v1");
    let j = serde_json::to_value(&p2).unwrap();
    assert_eq!(j["version"], "v2");
}

#[test]
fn flipped_byte_is_detected() {
    let root = tempfile::tempdir().unwrap();
    let p = publish_auto(root.path(), "x").unwrap();
    let f = p.path.join("variables/variables.data-00000-of-00001");
    let mut bytes = fs::read(&f).unwrap();
    bytes[4321] ^= 0x40;
    fs::write(&f, bytes).unwrap();
    let report = verify_version(&p.path).unwrap();
    assert_eq!(report.hash_mismatches.len(), 1);
    match report.into_result() {
        Err(Error::Checksum { at, detail, .. }) => {
            assert_eq!(at.0.unwrap(), f);
            assert!(detail.contains("variables/variables.data-00000-of-00001"));
        }
        other => panic!("{other:?}"),
    }
    // Extra and missing files.
    fs::write(p.path.join("dropped.py"), "import os").unwrap();
    fs::remove_file(p.path.join("saved_model.pb")).unwrap();
    let r = verify_version(&p.path).unwrap();
    assert_eq!(r.extra, ["dropped.py"]);
    assert_eq!(r.missing, ["saved_model.pb"]);
    // A symlink planted in a published version is refused.
    std::os::unix::fs::symlink("/etc/passwd", p.path.join("variables/evil")).unwrap();
    assert!(matches!(verify_version(&p.path), Err(Error::Format { .. })));
}

#[test]
fn explicit_versions() {
    let root = tempfile::tempdir().unwrap();
    let md = json!({});
    let p = publish(
        root.path(),
        "model",
        "savedmodel",
        Some("1.2.0"),
        md.clone(),
        |d| write_files(d, "a"),
    )
    .unwrap();
    assert_eq!(p.path, root.path().join("model/savedmodel/1.2.0"));
    // Existing explicit version: refused up front, before anything is written.
    let mut called = false;
    let err = publish(
        root.path(),
        "model",
        "savedmodel",
        Some("1.2.0"),
        md.clone(),
        |_| {
            called = true;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(!called);
    match &err {
        Error::ArtifactExists { at, msg } => {
            assert_eq!(at.0.as_deref(), Some(&*p.path));
            assert!(msg.contains("1.2.0"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // ... and at commit when someone claimed it after begin.
    let s = Staging::begin(root.path(), "model", "savedmodel", Some("v5")).unwrap();
    write_files(s.path(), "b").unwrap();
    let other = publish(
        root.path(),
        "model",
        "savedmodel",
        Some("v5"),
        md.clone(),
        |d| write_files(d, "winner"),
    )
    .unwrap();
    let err = s.commit(md.clone()).unwrap_err();
    assert!(matches!(err, Error::ArtifactExists { .. }), "{err:?}");
    // The winner's files are untouched, and the loser's staging is gone.
    assert!(verify_version(&other.path).unwrap().is_ok());
    assert_eq!(
        metadata::read(&other.path).unwrap()["manifest"],
        other.metadata["manifest"]
    );
    assert_eq!(entries(root.path()), ["1.2.0", "v5"]);
    // Automatic numbering continues after the highest vN, ignoring semantic versions.
    assert_eq!(
        publish_auto(root.path(), "c").unwrap().version,
        Version::Seq(6)
    );
    // Bad version names are caller errors.
    for bad in ["v0", "v1.2.0", "latest", "../v1", "1.2"] {
        assert!(
            matches!(
                Staging::begin(root.path(), "model", "savedmodel", Some(bad)),
                Err(Error::InvalidArgument { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn invalid_names_are_refused() {
    let root = tempfile::tempdir().unwrap();
    for (name, format) in [
        ("", "f"),
        ("..", "f"),
        (".hidden", "f"),
        ("a/b", "f"),
        ("m", "f/g"),
        ("m", ""),
        ("m", ".tmp-x"),
        ("m\0", "f"),
        ("m ", "f"),
    ] {
        assert!(
            matches!(
                Staging::begin(root.path(), name, format, None),
                Err(Error::InvalidArgument { .. })
            ),
            "{name:?}/{format:?}"
        );
    }
    assert!(Staging::begin(root.path(), "My-model_2.1", "keras", None).is_ok());
    assert!(list_versions(root.path(), "../x", None).is_err());
}

#[test]
fn concurrent_publishes_get_distinct_complete_versions() {
    let root = tempfile::tempdir().unwrap();
    let results: Vec<PublishedVersion> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let root = root.path();
                s.spawn(move || publish_auto(root, &format!("writer-{i}")).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut got: Vec<Version> = results.iter().map(|p| p.version).collect();
    got.sort();
    assert_eq!(got, (1..=8).map(Version::Seq).collect::<Vec<_>>());
    let list = list_versions(root.path(), "model", Some("savedmodel")).unwrap();
    assert_eq!(
        names(&list),
        ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"]
    );
    // Every version is complete and holds exactly what its writer wrote.
    for p in &results {
        assert!(verify_version(&p.path).unwrap().is_ok());
        let tag = metadata::read(&p.path).unwrap()["tag"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            fs::read_to_string(p.path.join("variables/variables.index")).unwrap(),
            tag
        );
    }
    // Nothing temporary remains.
    assert!(entries(root.path()).iter().all(|e| !e.starts_with('.')));
}

/// Publishes from child processes (this test binary run again with an environment variable).
#[test]
fn concurrent_publishes_across_processes() {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "store::tests::child_publisher",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("KERASAFE_STORE_CHILD_ROOT", root.path())
                .env("KERASAFE_STORE_CHILD_ID", i.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Publish from this process at the same time.
    for j in 0..3 {
        publish_auto(root.path(), &format!("parent-{j}")).unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = list_versions(root.path(), "model", Some("savedmodel")).unwrap();
    assert_eq!(list.len(), 4 * 3 + 3);
    let versions: Vec<Version> = list.iter().map(|i| i.version).collect();
    assert_eq!(versions, (1..=15).map(Version::Seq).collect::<Vec<_>>());
    let mut tags: Vec<String> = list
        .iter()
        .map(|i| i.metadata["tag"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 15);
    for i in &list {
        assert!(verify_version(&i.path).unwrap().is_ok());
    }
}

/// Does nothing unless run as a child by `concurrent_publishes_across_processes`.
#[test]
fn child_publisher() {
    let (Some(root), Some(id)) = (
        std::env::var_os("KERASAFE_STORE_CHILD_ROOT"),
        std::env::var_os("KERASAFE_STORE_CHILD_ID"),
    ) else {
        return;
    };
    let id = id.into_string().unwrap();
    for j in 0..3 {
        publish_auto(Path::new(&root), &format!("child-{id}-{j}")).unwrap();
    }
}

#[test]
fn dropped_or_failed_staging_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    {
        let s = Staging::begin(root.path(), "model", "savedmodel", None).unwrap();
        write_files(s.path(), "gone").unwrap();
        assert!(s.path().is_dir());
        assert!(s
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".tmp-auto-"));
        assert!(active().contains(s.path()));
    }
    assert_eq!(entries(root.path()), Vec::<String>::new());

    // fill fails.
    let err = publish(root.path(), "model", "savedmodel", None, json!({}), |d| {
        write_files(d, "x")?;
        Err(Error::invalid("boom"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("boom"));
    assert_eq!(entries(root.path()), Vec::<String>::new());

    // A symlink in the staging directory fails the commit; nothing is published.
    let err = publish(root.path(), "model", "savedmodel", None, json!({}), |d| {
        write_files(d, "x")?;
        std::os::unix::fs::symlink("/etc/passwd", d.join("variables/link")).at(d)
    })
    .unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    assert_eq!(entries(root.path()), Vec::<String>::new());

    // Caller-written metadata.json, a "manifest" key or non-object metadata are refused.
    let err = publish(root.path(), "model", "savedmodel", None, json!({}), |d| {
        fs::write(d.join(METADATA_FILE), "{}").at(d)
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    for bad in [json!({"manifest": 1}), json!([1]), json!("x")] {
        let err = publish(root.path(), "model", "savedmodel", None, bad, |d| {
            write_files(d, "x")
        })
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    }
    assert_eq!(entries(root.path()), Vec::<String>::new());

    // Explicit abort reports success and removes the directory.
    let s = Staging::begin(root.path(), "model", "savedmodel", Some("v3")).unwrap();
    let dir = s.path().to_path_buf();
    s.abort().unwrap();
    assert!(!dir.exists());
    assert!(!active().contains(&dir));

    // Null metadata means none; an empty artifact is allowed.
    let p = publish(
        root.path(),
        "model",
        "savedmodel",
        None,
        Value::Null,
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(
        p.metadata,
        json!({"manifest": {"files": {}}, "version": "v1"})
    );
}

#[test]
fn readers_ignore_incomplete_hidden_and_foreign_entries() {
    let root = tempfile::tempdir().unwrap();
    publish_auto(root.path(), "a").unwrap();
    let fdir = root.path().join("model/savedmodel");
    fs::create_dir(fdir.join("v7")).unwrap(); // a claim in progress / abandoned
    fs::create_dir(fdir.join(".tmp-auto-1-2.3")).unwrap();
    fs::create_dir(fdir.join("notes")).unwrap();
    fs::write(fdir.join("v9"), "a file").unwrap();
    fs::create_dir(fdir.join("v10")).unwrap();
    std::os::unix::fs::symlink(fdir.join("v1"), fdir.join("v11")).unwrap();
    fs::create_dir(root.path().join("model/.hidden-format")).unwrap();
    let list = list_versions(root.path(), "model", None).unwrap();
    assert_eq!(names(&list), ["v1"]);
    assert_eq!(
        resolve(root.path(), "model", None, LATEST).unwrap(),
        fdir.join("v1")
    );
    assert!(matches!(
        resolve(root.path(), "model", Some("savedmodel"), "v7"),
        Err(Error::ArtifactNotFound { .. })
    ));
    // The abandoned claims and foreign entries still block their numbers.
    assert_eq!(
        publish_auto(root.path(), "b").unwrap().version,
        Version::Seq(12)
    );
    // Explicitly asking for a blocked number says it exists.
    assert!(matches!(
        Staging::begin(root.path(), "model", "savedmodel", Some("v7")),
        Err(Error::ArtifactExists { .. })
    ));
    // Unreadable metadata does not break listing.
    fs::write(fdir.join("v12").join(METADATA_FILE), "{oops").unwrap();
    let list = list_versions(root.path(), "model", None).unwrap();
    assert_eq!(names(&list), ["v1", "v12"]);
    assert!(list[1]
        .metadata_error
        .as_deref()
        .unwrap()
        .contains("malformed"));
    assert!(list[1].metadata.is_null());
}

#[test]
fn resolve_errors_name_what_was_looked_for() {
    let root = tempfile::tempdir().unwrap();
    let missing_root = root.path().join("nope");
    assert!(matches!(
        resolve(&missing_root, "model", None, LATEST),
        Err(Error::ArtifactNotFound { .. })
    ));
    assert!(matches!(
        list_versions(&missing_root, "model", None),
        Err(Error::ArtifactNotFound { .. })
    ));
    // Unknown model: empty listing, not-found resolve.
    assert!(list_versions(root.path(), "model", None)
        .unwrap()
        .is_empty());
    let err = resolve(root.path(), "model", None, LATEST).unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }));
    assert!(err.to_string().contains("available: none"), "{err}");

    publish_auto(root.path(), "a").unwrap();
    publish_auto(root.path(), "b").unwrap();
    let err = resolve(root.path(), "model", Some("savedmodel"), "v3").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ArtifactNotFound { .. }));
    assert!(msg.contains("version v3"), "{msg}");
    assert!(msg.contains("savedmodel/v1, savedmodel/v2"), "{msg}");
    let err = resolve(root.path(), "model", Some("keras"), LATEST).unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }));
    assert!(matches!(
        resolve(root.path(), "model", None, "newest"),
        Err(Error::InvalidArgument { .. })
    ));

    // Two formats: latest without a format is ambiguous; a version only one has is not.
    publish(
        root.path(),
        "model",
        "keras",
        Some("1.0.0"),
        json!({}),
        |d| fs::write(d.join("model.keras"), "zip").at(d),
    )
    .unwrap();
    let err = resolve(root.path(), "model", None, LATEST).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(err.to_string().contains("keras/1.0.0"), "{err}");
    assert_eq!(
        resolve(root.path(), "model", None, "1.0.0").unwrap(),
        root.path().join("model/keras/1.0.0")
    );
    assert_eq!(
        resolve(root.path(), "model", None, "v2").unwrap(),
        root.path().join("model/savedmodel/v2")
    );
    let all = list_versions(root.path(), "model", None).unwrap();
    assert_eq!(
        all.iter()
            .map(|i| format!("{}/{}", i.format, i.version))
            .collect::<Vec<_>>(),
        ["savedmodel/v1", "savedmodel/v2", "keras/1.0.0"]
    );
}

#[test]
fn listing_is_in_version_order() {
    let root = tempfile::tempdir().unwrap();
    for v in ["v10", "1.10.0", "v2", "1.2.0", "v1"] {
        publish(
            root.path(),
            "model",
            "savedmodel",
            Some(v),
            json!({}),
            |_| Ok(()),
        )
        .unwrap();
    }
    let list = list_versions(root.path(), "model", Some("savedmodel")).unwrap();
    assert_eq!(names(&list), ["v1", "v2", "v10", "1.2.0", "1.10.0"]);
    assert_eq!(
        resolve(root.path(), "model", Some("savedmodel"), LATEST).unwrap(),
        root.path().join("model/savedmodel/1.10.0")
    );
}

#[test]
fn prune_keeps_newest_and_released() {
    let root = tempfile::tempdir().unwrap();
    for i in 1..=6 {
        let md = if i == 2 {
            json!({"released": true})
        } else {
            json!({"released": false})
        };
        publish(root.path(), "model", "savedmodel", None, md, |d| {
            write_files(d, &i.to_string())
        })
        .unwrap();
    }
    assert!(matches!(
        prune(root.path(), "model", "savedmodel", 0),
        Err(Error::InvalidArgument { .. })
    ));
    let fdir = root.path().join("model/savedmodel");
    let deleted = prune(root.path(), "model", "savedmodel", 2).unwrap();
    assert_eq!(deleted, [fdir.join("v1"), fdir.join("v3"), fdir.join("v4")]);
    let left = list_versions(root.path(), "model", Some("savedmodel")).unwrap();
    assert_eq!(names(&left), ["v2", "v5", "v6"]);
    assert!(left[0].is_released());
    assert_eq!(entries(root.path()), ["v2", "v5", "v6"]);
    // Idempotent.
    assert!(prune(root.path(), "model", "savedmodel", 2)
        .unwrap()
        .is_empty());
    // Numbering continues; never reuses pruned numbers.
    assert_eq!(
        publish_auto(root.path(), "7").unwrap().version,
        Version::Seq(7)
    );

    // The newest vN survives even when semantic versions are newer.
    publish(
        root.path(),
        "model",
        "savedmodel",
        Some("1.0.0"),
        json!({}),
        |_| Ok(()),
    )
    .unwrap();
    let deleted = prune(root.path(), "model", "savedmodel", 1).unwrap();
    assert_eq!(deleted, [fdir.join("v5"), fdir.join("v6")]);
    assert_eq!(entries(root.path()), ["1.0.0", "v2", "v7"]);
    assert_eq!(
        publish_auto(root.path(), "8").unwrap().version,
        Version::Seq(8)
    );

    // Versions with unreadable metadata are kept.
    fs::write(fdir.join("v7").join(METADATA_FILE), "garbage").unwrap();
    publish_auto(root.path(), "9").unwrap();
    let deleted = prune(root.path(), "model", "savedmodel", 1).unwrap();
    assert_eq!(deleted, [fdir.join("v8")]);
    assert_eq!(entries(root.path()), ["1.0.0", "v2", "v7", "v9"]);
}

fn set_mtime_tree(path: &Path, t: SystemTime) {
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        File::open(&p).unwrap().set_modified(t).unwrap();
    }
}

#[test]
fn cleanup_stale_removes_only_dead_or_old_leftovers() {
    let root = tempfile::tempdir().unwrap();
    let fdir = root.path().join("model/savedmodel");
    assert!(cleanup_stale(root.path(), "model", "savedmodel")
        .unwrap()
        .is_empty());
    publish_auto(root.path(), "a").unwrap();

    // Dead writer (no such pid).
    let dead = fdir.join(".tmp-auto-4000000000-abc.1");
    fs::create_dir(&dead).unwrap();
    fs::write(dead.join("half"), "x").unwrap();
    // Live foreign writer (pid 1 always exists), fresh: kept.
    let live = fdir.join(".tmp-auto-1-abc.2");
    fs::create_dir(&live).unwrap();
    // Live foreign pid but untouched for two hours: removed (the pid may have been reused).
    let old = fdir.join(".tmp-deleting-v3-1-abc.3");
    fs::create_dir_all(old.join("sub")).unwrap();
    fs::write(old.join("sub/f"), "x").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    set_mtime_tree(&old, two_hours_ago);
    // Old directory but a file written recently: its writer is working, kept.
    let busy = fdir.join(".tmp-auto-1-abc.4");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("f"), "x").unwrap();
    File::open(&busy)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    // Leftover with our own pid that no live object owns: removed.
    let mine = temp_path(&fdir, "auto");
    fs::create_dir(&mine).unwrap();
    // A live staging of this process: kept.
    let staging = Staging::begin(root.path(), "model", "savedmodel", None).unwrap();
    set_mtime_tree(staging.path(), two_hours_ago);
    // An abandoned empty claim, old: removed; a fresh one: kept; an old non-empty one: kept.
    let abandoned = fdir.join("v20");
    fs::create_dir(&abandoned).unwrap();
    set_mtime_tree(&abandoned, two_hours_ago);
    fs::create_dir(fdir.join("v21")).unwrap();
    let foreign = fdir.join("v22");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("x"), "x").unwrap();
    set_mtime_tree(&foreign, two_hours_ago);
    // Files are never touched.
    fs::write(fdir.join(".tmp-file-4000000000-x.1"), "x").unwrap();

    let mut want = vec![dead.clone(), old.clone(), mine.clone(), abandoned.clone()];
    want.sort();
    assert_eq!(
        cleanup_stale(root.path(), "model", "savedmodel").unwrap(),
        want
    );
    for p in &want {
        assert!(!p.exists(), "{}", p.display());
    }
    for p in [
        &live,
        &busy,
        staging.path(),
        &fdir.join("v21"),
        &foreign,
        &fdir.join("v1"),
    ] {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(fdir.join(".tmp-file-4000000000-x.1").exists());
    // The staging still commits; v21/v22 block numbers.
    write_files(staging.path(), "late").unwrap();
    assert_eq!(staging.commit(json!({})).unwrap().version, Version::Seq(23));
}

#[test]
fn temp_names_carry_the_pid() {
    let p = temp_path(Path::new("/r/m/f"), "deleting-v3");
    let name = p.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(".tmp-deleting-v3-"));
    assert_eq!(tmp_pid(name), Some(std::process::id()));
    assert_eq!(tmp_pid(".tmp-auto-123-ff.0"), Some(123));
    assert_eq!(tmp_pid(".tmp-auto"), None);
    assert_eq!(tmp_pid(".tmp-x-y"), None);
    assert_eq!(tmp_pid("v1"), None);
    assert_ne!(
        temp_path(Path::new("/r"), "a"),
        temp_path(Path::new("/r"), "a")
    );
}

#[test]
fn manifest_covers_exactly_the_files_written() {
    let root = tempfile::tempdir().unwrap();
    let mut want = BTreeMap::new();
    let p = publish(root.path(), "model", "h5", None, json!({}), |d| {
        for (rel, body) in [
            ("a.h5", "1"),
            ("x/y/z.bin", "22"),
            ("x/metadata.json", "333"),
        ] {
            let path = d.join(rel);
            fs::create_dir_all(path.parent().unwrap()).at(d)?;
            fs::write(&path, body).at(&path)?;
            want.insert(rel.to_string(), body.len() as u64);
        }
        Ok(())
    })
    .unwrap();
    let got: BTreeMap<String, u64> = p
        .manifest
        .files
        .iter()
        .map(|(k, v)| (k.clone(), v.size))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_rename_is_the_claim_and_never_replaces() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    fs::create_dir(&a).unwrap();
    fs::write(a.join("f"), "x").unwrap();
    // Not even an empty directory is replaced (plain rename would).
    fs::create_dir(&b).unwrap();
    let refused = rename_no_replace(&a, &b).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AlreadyExists, "{refused}");
    assert!(a.join("f").exists());
    fs::remove_dir(&b).unwrap();
    rename_no_replace(&a, &b).unwrap();
    assert!(b.join("f").exists() && !a.exists());

    // A name taken (here an empty directory someone left) moves an automatic publish to the
    // next number, and metadata.json names the number it got.
    fs::create_dir_all(root.path().join("model/savedmodel/v1")).unwrap();
    let p = publish_auto(root.path(), "next").unwrap();
    assert_eq!(p.version.to_string(), "v2");
    let meta = metadata::read(&p.path).unwrap();
    assert_eq!(meta[VERSION_KEY], "v2");
    assert_eq!(entries(root.path()), ["v1", "v2"]);
}

#[test]
fn no_version_name_exists_before_the_rename_and_the_fallback_claims_first() {
    fn staging_with_files(root: &Path) -> Staging {
        let s = Staging::begin(root, "model", "savedmodel", None).unwrap();
        write_files(s.path(), "x").unwrap();
        s
    }
    // The kernel's no-replace rename: when it runs, everything is on disk under the staging
    // name, metadata.json included, and nothing yet under the version's.
    fn observed(from: &Path, to: &Path) -> std::io::Result<()> {
        assert!(!to.exists(), "{} existed before the rename", to.display());
        assert_eq!(metadata::read(from).unwrap()[VERSION_KEY], "v1");
        rename_no_replace(from, to)
    }
    let root = tempfile::tempdir().unwrap();
    let p = staging_with_files(root.path())
        .commit_with(json!({}), observed)
        .unwrap();
    assert_eq!(p.version.to_string(), "v1");

    // A filesystem without RENAME_NOREPLACE: the number is claimed with mkdir, then renamed onto.
    fn unsupported(_: &Path, _: &Path) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(libc::EINVAL))
    }
    fs::create_dir(root.path().join("model/savedmodel/v2")).unwrap(); // someone's claim
    let p = staging_with_files(root.path())
        .commit_with(json!({}), unsupported)
        .unwrap();
    assert_eq!(p.version.to_string(), "v3");
    assert_eq!(metadata::read(&p.path).unwrap()[VERSION_KEY], "v3");
    assert_eq!(entries(root.path()), ["v1", "v2", "v3"]);
}
