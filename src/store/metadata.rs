//! `metadata.json` of a published version: caller metadata plus the store's `"manifest"`.
//!
//! Written with sorted keys, two-space indentation and a trailing newline, so the same metadata
//! always gives the same bytes. Read with a size bound, so a hostile artifact cannot make a
//! reader allocate without limit.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::manifest::Manifest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// The file name of a version's metadata (the one file the manifest leaves out).
pub const METADATA_FILE: &str = "metadata.json";
/// The key the store writes the manifest under.
pub const MANIFEST_KEY: &str = "manifest";
/// The key the store fills with the claimed version name.
pub const VERSION_KEY: &str = "version";
/// Larger metadata files are refused.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

/// `value` with every object's keys sorted, recursively.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(m.len());
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The canonical bytes of `value`: sorted keys, two-space indent, trailing newline.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail: its keys are strings and it holds no non-finite floats.
    let mut out = serde_json::to_vec_pretty(&sorted(value)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Read and parse `dir/metadata.json`. A missing file is an [`Error::Io`] (not found); a link,
/// a file over [`MAX_METADATA_BYTES`] or malformed JSON is an [`Error::Format`] naming the file.
pub fn read(dir: &Path) -> Result<Value> {
    let path = dir.join(METADATA_FILE);
    let meta = std::fs::symlink_metadata(&path).at(&path)?;
    if !meta.file_type().is_file() {
        return Err(Error::format_in(&path, "metadata must be a regular file"));
    }
    if meta.len() > MAX_METADATA_BYTES {
        return Err(Error::format_in(
            &path,
            format!(
                "metadata is {} bytes, more than the {MAX_METADATA_BYTES} allowed",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(&path)
        .and_then(|f| f.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes))
        .at(&path)?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(Error::format_in(
            &path,
            "metadata grew beyond the size limit",
        ));
    }
    parse(&path, &bytes)
}

/// The bytes of the `metadata.json` at `path` (a file or an object's URL) parsed: a JSON object.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::format_in(path, format!("malformed metadata JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::format_in(path, "metadata must be a JSON object"));
    }
    Ok(value)
}

/// The caller's metadata for a new version as an object: null is empty; anything but an
/// object, or an object with the store's own `"manifest"` key, is refused.
pub fn user_object(metadata: Value) -> Result<serde_json::Map<String, Value>> {
    let meta = match metadata {
        Value::Null => serde_json::Map::new(),
        Value::Object(m) => m,
        other => {
            return Err(crate::error::Error::invalid(format!(
                "artifact metadata must be a JSON object, got {other}"
            )))
        }
    };
    if meta.contains_key(MANIFEST_KEY) {
        return Err(crate::error::Error::invalid(format!(
            "artifact metadata must not have a {MANIFEST_KEY:?} key: the store writes it"
        )));
    }
    Ok(meta)
}

/// The manifest stored in parsed metadata; `path` names the file in errors.
pub fn manifest_of(path: &Path, metadata: &Value) -> Result<Manifest> {
    let m = metadata
        .get(MANIFEST_KEY)
        .ok_or_else(|| Error::format_in(path, format!("metadata has no {MANIFEST_KEY:?}")))?;
    <Manifest as serde::Deserialize>::deserialize(m)
        .map_err(|e| Error::format_in(path, format!("malformed {MANIFEST_KEY:?}: {e}")))
}

/// Write `dir/metadata.json` atomically (temporary sibling, fsync, rename, fsync of `dir`), so
/// readers see the old or the new metadata, never a mix. Returns the file's path.
pub fn write(dir: &Path, value: &Value) -> Result<PathBuf> {
    let path = dir.join(METADATA_FILE);
    let bytes = to_bytes(value);
    fsutil::write_atomically(&path, |f| {
        f.write_all(&bytes)?;
        f.sync_all()
    })?;
    fsutil::sync_path(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_bytes() {
        let v = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": null}});
        let s = String::from_utf8(to_bytes(&v)).unwrap();
        assert_eq!(
            s,
            "{\n  \"a\": {\n    \"c\": null,\n    \"z\": [\n      {\n        \"x\": 2,\n        \"y\": 1\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }

    #[test]
    fn write_then_read() {
        let d = tempfile::tempdir().unwrap();
        let v = json!({"released": true, "name": "m"});
        let p = write(d.path(), &v).unwrap();
        assert_eq!(p, d.path().join(METADATA_FILE));
        assert_eq!(read(d.path()).unwrap(), v);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_metadata_is_a_format_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(METADATA_FILE);
        assert!(matches!(read(d.path()), Err(Error::Io { .. })));
        std::fs::write(&path, b"{\"a\": ").unwrap();
        match read(d.path()) {
            Err(Error::Format { at, msg }) => {
                assert_eq!(at.0.unwrap(), path);
                assert!(msg.contains("malformed"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        assert!(matches!(read(d.path()), Err(Error::Format { .. })));
        std::fs::remove_file(&path).unwrap();
        // Too large (sparse file; nothing is read).
        let f = File::create(&path).unwrap();
        f.set_len(MAX_METADATA_BYTES + 1).unwrap();
        match read(d.path()) {
            Err(Error::Format { msg, .. }) => assert!(msg.contains("allowed"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn manifest_extraction() {
        let p = Path::new("x/metadata.json");
        let v = json!({"manifest": {"files": {"a": {"size": 1, "sha256": "00"}}}});
        assert_eq!(manifest_of(p, &v).unwrap().files["a"].size, 1);
        assert!(matches!(
            manifest_of(p, &json!({})),
            Err(Error::Format { .. })
        ));
        assert!(matches!(
            manifest_of(p, &json!({"manifest": {"files": {"a": {"size": -1}}}})),
            Err(Error::Format { .. })
        ));
    }
}
