//! The versioned artifact store on object storage: `ROOT/<name>/<format>/<version>/…`, the same
//! layout and `metadata.json` as the local store ([`crate::store`]).
//!
//! # Publishing without rename
//! Object stores have no atomic directory rename, so a version is published in three steps:
//! 1. **Claim**: a create-only put (`If-None-Match: *`) of `<version>/.kerasafe-claim`. The
//!    store accepts exactly one such put per key, so two writers never share a version; a loser
//!    moves on to the next number (automatic versions) or gets [`Error::ArtifactExists`].
//! 2. **Upload** every file (in parallel; large files in parts).
//! 3. **Commit**: a create-only put of `<version>/metadata.json`, holding the manifest (size and
//!    SHA-256 of every file) and the version.
//!
//! Readers treat a version as existing only when its `metadata.json` exists, so a writer that
//! dies before step 3 leaves files nobody lists, resolves or loads. Its claim keeps blocking the
//! number, so numbers are never reused (as with the local store's abandoned claims). Pruning
//! deletes `metadata.json` first (the version disappears at once), then the files, and keeps the
//! claim for the same reason. Downloads check every file against the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{safe_join, Remote};
use crate::error::{Error, Location, Result};
use crate::store::manifest::{hash_staged, HashMismatch, SizeMismatch};
use crate::store::{
    self, metadata, next_version, FileEntry, Manifest, VerifyReport, Version, LATEST, MANIFEST_KEY,
    METADATA_FILE, VERSION_KEY,
};

/// The object that claims a version before its files are uploaded.
pub const CLAIM_FILE: &str = ".kerasafe-claim";
/// Give up claiming an automatic version after this many lost races.
const MAX_CLAIM_ATTEMPTS: usize = 1000;

/// A version published to object storage.
#[derive(Debug, Clone, Serialize)]
pub struct RemotePublished {
    /// Model name.
    pub name: String,
    /// Format directory name.
    pub format: String,
    /// The version claimed.
    pub version: Version,
    /// `ROOT/name/format/version`.
    pub path: String,
    /// The files and their hashes.
    pub manifest: Manifest,
    /// The metadata written, manifest included.
    pub metadata: Value,
}

/// One published version as [`list_versions`] reports it (same shape as the local store's).
#[derive(Debug, Clone, Serialize)]
pub struct RemoteVersionInfo {
    /// Model name.
    pub name: String,
    /// Format.
    pub format: String,
    /// Version.
    pub version: Version,
    /// `ROOT/name/format/version`.
    pub path: String,
    /// Parsed `metadata.json`; null when it could not be read.
    pub metadata: Value,
    /// Why `metadata.json` could not be read, if it could not.
    pub metadata_error: Option<String>,
}

/// What exists under `ROOT/name/format/`: every version name with an object under it, and
/// whether it is committed.
fn scan(root: &Remote, name: &str, format: &str) -> Result<BTreeMap<Version, bool>> {
    let mut out: BTreeMap<Version, bool> = BTreeMap::new();
    for (rel, _) in root.list(&format!("{name}/{format}"))? {
        let rest = rel
            .strip_prefix(&format!("{name}/{format}/"))
            .unwrap_or(&rel);
        let Some((v, file)) = rest.split_once('/') else {
            continue;
        };
        let Ok(version) = Version::parse(v) else {
            continue;
        };
        let committed = out.entry(version).or_insert(false);
        *committed |= file == METADATA_FILE;
    }
    Ok(out)
}

fn formats_of(root: &Remote, name: &str) -> Result<Vec<String>> {
    let mut formats: Vec<String> = root
        .list(name)?
        .into_iter()
        .filter_map(|(rel, _)| {
            let rest = rel.strip_prefix(&format!("{name}/"))?;
            let (format, _) = rest.split_once('/')?;
            store::check_component("format", format)
                .is_ok()
                .then(|| format.to_string())
        })
        .collect();
    formats.sort();
    formats.dedup();
    Ok(formats)
}

fn version_rel(name: &str, format: &str, v: Version) -> String {
    format!("{name}/{format}/{v}")
}

fn exists_error(root: &Remote, name: &str, format: &str, v: Version) -> Error {
    Error::ArtifactExists {
        at: Location(Some(PathBuf::from(
            root.join(&version_rel(name, format, v))
                .map(|r| r.url())
                .unwrap_or_default(),
        ))),
        msg: format!(
            "version {v} of model {name:?} in format {format:?} exists (or is claimed by a \
             writer); versions are never overwritten"
        ),
    }
}

fn claim_body() -> Vec<u8> {
    let body = serde_json::json!({
        "pid": std::process::id(),
        "claimed_at_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });
    metadata::to_bytes(&body)
}

/// Claim a version of `name` in `format`: `version` if given, else the next free `vN`.
fn claim(root: &Remote, name: &str, format: &str, version: Option<Version>) -> Result<Version> {
    if let Some(v) = version {
        let rel = format!("{}/{CLAIM_FILE}", version_rel(name, format, v));
        // A version written by the local store and copied up has no claim: check for files too.
        if scan(root, name, format)?.contains_key(&v) || !root.put_new(&rel, claim_body())? {
            return Err(exists_error(root, name, format, v));
        }
        return Ok(v);
    }
    for _ in 0..MAX_CLAIM_ATTEMPTS {
        let existing = scan(root, name, format)?;
        let v = next_version(existing.keys())?;
        let rel = format!("{}/{CLAIM_FILE}", version_rel(name, format, v));
        if root.put_new(&rel, claim_body())? {
            return Ok(v);
        }
    }
    Err(Error::invalid(format!(
        "{}: lost {MAX_CLAIM_ATTEMPTS} races for a version number",
        root.url()
    )))
}

/// Publish the files in `local_dir` as a new version under `root` (see the module docs).
/// `metadata` is a JSON object (or null) without a `"manifest"` key; `local_dir` must not hold a
/// top-level `metadata.json`.
pub fn publish(
    root: &Remote,
    name: &str,
    format: &str,
    version: Option<&str>,
    local_dir: &Path,
    metadata: Value,
) -> Result<RemotePublished> {
    store::check_component("model name", name)?;
    store::check_component("format", format)?;
    let version = version.map(Version::parse).transpose()?;
    let mut meta = metadata::user_object(metadata)?;
    if local_dir.join(METADATA_FILE).exists() {
        return Err(Error::invalid(format!(
            "{}: the directory to publish must not contain {METADATA_FILE}",
            local_dir.display()
        )));
    }
    let manifest = hash_staged(local_dir)?;
    let v = claim(root, name, format, version)?;
    let dir = root.join(&version_rel(name, format, v))?;
    let files: Vec<(PathBuf, String)> = manifest
        .files
        .keys()
        .map(|rel| (local_dir.join(rel), rel.clone()))
        .collect();
    let committed = dir.upload_files(&files).and_then(|()| {
        let manifest_json = serde_json::to_value(&manifest)
            .map_err(|e| Error::invalid(format!("manifest is not serializable: {e}")))?;
        meta.insert(MANIFEST_KEY.to_string(), manifest_json);
        meta.insert(VERSION_KEY.to_string(), Value::String(v.to_string()));
        let meta = metadata::sorted(&Value::Object(meta));
        if dir.put_new(METADATA_FILE, metadata::to_bytes(&meta))? {
            Ok(meta)
        } else {
            Err(exists_error(root, name, format, v))
        }
    });
    match committed {
        Ok(meta) => Ok(RemotePublished {
            name: name.to_string(),
            format: format.to_string(),
            version: v,
            path: dir.url(),
            manifest,
            metadata: meta,
        }),
        Err(e) => {
            // Uncommitted files are invisible anyway; remove them, keep the claim (the number
            // stays used).
            for rel in manifest.files.keys() {
                let _ = dir.delete(rel);
            }
            Err(e)
        }
    }
}

/// Parsed `metadata.json` of the version at `dir`.
pub fn read_metadata(dir: &Remote) -> Result<Value> {
    let url = dir.join(METADATA_FILE)?.url();
    let bytes = match dir.get_bytes(METADATA_FILE, metadata::MAX_METADATA_BYTES) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ArtifactNotFound {
                at: Location(Some(PathBuf::from(dir.url()))),
                msg: "not a kerasafe artifact version (no metadata.json: not a version, or one \
                      that was never committed)"
                    .into(),
            })
        }
        other => other?,
    };
    metadata::parse(Path::new(&url), &bytes)
}

fn manifest_of(dir: &Remote, meta: &Value) -> Result<Manifest> {
    let url = dir.join(METADATA_FILE)?.url();
    let manifest = metadata::manifest_of(Path::new(&url), meta)?;
    manifest.check_keys(&url)?;
    Ok(manifest)
}

/// Compare the objects of the version at `dir` with its manifest (hashing every object whose
/// size matches). The claim object is not an extra file.
pub fn verify(dir: &Remote) -> Result<VerifyReport> {
    let meta = read_metadata(dir)?;
    let manifest = manifest_of(dir, &meta)?;
    let present: BTreeMap<String, u64> = dir
        .list("")?
        .into_iter()
        .filter(|(rel, _)| rel != METADATA_FILE && rel != CLAIM_FILE)
        .collect();
    let mut report = VerifyReport {
        dir: PathBuf::from(dir.url()),
        ok: 0,
        missing: Vec::new(),
        extra: present
            .keys()
            .filter(|k| !manifest.files.contains_key(*k))
            .cloned()
            .collect(),
        size_mismatches: Vec::new(),
        hash_mismatches: Vec::new(),
    };
    for (rel, want) in &manifest.files {
        match present.get(rel) {
            None => report.missing.push(rel.clone()),
            Some(&size) if size != want.size => report.size_mismatches.push(SizeMismatch {
                path: rel.clone(),
                expected: want.size,
                actual: size,
            }),
            Some(_) => {
                let got = dir.hash(rel)?;
                if got.sha256 == want.sha256 {
                    report.ok += 1;
                } else {
                    report.hash_mismatches.push(HashMismatch {
                        path: rel.clone(),
                        expected: want.sha256.clone(),
                        actual: got.sha256,
                    });
                }
            }
        }
    }
    Ok(report)
}

/// Download the version at `dir` into `local_dir` (which must exist): every manifest file,
/// checked against its size and SHA-256 while it streams in, then `metadata.json`. A damaged or
/// missing object is an error and leaves `local_dir` without `metadata.json`.
pub fn download(dir: &Remote, local_dir: &Path) -> Result<Value> {
    download_keeping(dir, local_dir, None).map(|(meta, _)| meta)
}

/// [`download`], except that the file `in_memory` (a model file) is fetched into memory, checked
/// against the manifest like the others, and returned instead of written: the version's other
/// files (reference data, configs) are small, the model is not.
pub fn download_keeping(
    dir: &Remote,
    local_dir: &Path,
    in_memory: Option<&str>,
) -> Result<(Value, Option<Vec<u8>>)> {
    let meta = read_metadata(dir)?;
    let manifest = manifest_of(dir, &meta)?;
    let kept = match in_memory {
        Some(rel) => {
            let want = manifest.files.get(rel).ok_or_else(|| {
                Error::format_in(dir.url(), format!("{METADATA_FILE} lists no file {rel:?}"))
            })?;
            Some(dir.fetch_checked(rel, want)?)
        }
        None => None,
    };
    let jobs: Vec<(String, PathBuf, Option<FileEntry>)> = manifest
        .files
        .iter()
        .filter(|(rel, _)| Some(rel.as_str()) != in_memory)
        .map(|(rel, entry)| {
            let local = safe_join(local_dir, rel).expect("manifest keys were checked");
            (rel.clone(), local, Some(entry.clone()))
        })
        .collect();
    dir.download_files(&jobs)?;
    metadata::write(local_dir, &meta)?;
    Ok((meta, kept))
}

/// Committed versions of `name` (in `format`, or every format), sorted by version then format.
pub fn list_versions(
    root: &Remote,
    name: &str,
    format: Option<&str>,
) -> Result<Vec<RemoteVersionInfo>> {
    store::check_component("model name", name)?;
    let formats = match format {
        Some(f) => {
            store::check_component("format", f)?;
            vec![f.to_string()]
        }
        None => formats_of(root, name)?,
    };
    let mut out = Vec::new();
    for f in formats {
        for (v, committed) in scan(root, name, &f)? {
            if !committed {
                continue;
            }
            let dir = root.join(&version_rel(name, &f, v))?;
            let (metadata, metadata_error) = match read_metadata(&dir) {
                Ok(m) => (m, None),
                Err(e) => (Value::Null, Some(e.to_string())),
            };
            out.push(RemoteVersionInfo {
                name: name.to_string(),
                format: f.clone(),
                version: v,
                path: dir.url(),
                metadata,
                metadata_error,
            });
        }
    }
    out.sort_by(|a, b| {
        a.version
            .cmp(&b.version)
            .then_with(|| a.format.cmp(&b.format))
    });
    Ok(out)
}

/// Names of the models with at least one committed version under `root`, sorted.
pub fn model_names(root: &Remote) -> Result<Vec<String>> {
    let mut names: Vec<String> = root
        .list("")?
        .into_iter()
        .filter_map(|(rel, _)| {
            let parts: Vec<&str> = rel.split('/').collect();
            let [name, format, version, file] = parts.as_slice() else {
                return None;
            };
            let ok = *file == METADATA_FILE
                && store::check_component("model name", name).is_ok()
                && store::check_component("format", format).is_ok()
                && Version::parse(version).is_ok();
            ok.then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The URL of version `spec` (`"latest"` or a name) of `name`, committed versions only.
pub fn resolve(root: &Remote, name: &str, format: Option<&str>, spec: &str) -> Result<String> {
    let wanted = if spec == LATEST {
        None
    } else {
        Some(Version::parse(spec)?)
    };
    let infos = list_versions(root, name, format)?;
    let mut by_format: BTreeMap<&str, Vec<&RemoteVersionInfo>> = BTreeMap::new();
    for i in &infos {
        by_format.entry(&i.format).or_default().push(i);
    }
    let hits: Vec<&RemoteVersionInfo> = by_format
        .values()
        .filter_map(|vs| match wanted {
            Some(w) => vs.iter().find(|i| i.version == w).copied(),
            None => vs.last().copied(),
        })
        .collect();
    let what = wanted.map_or_else(|| "any version".to_string(), |w| format!("version {w}"));
    match hits.as_slice() {
        [one] => Ok(one.path.clone()),
        [] => Err(Error::ArtifactNotFound {
            at: Location(Some(PathBuf::from(root.join(name)?.url()))),
            msg: format!(
                "no {what} of model {name:?}{}; available: {}",
                format.map_or_else(String::new, |f| format!(" in format {f:?}")),
                if infos.is_empty() {
                    "none".to_string()
                } else {
                    infos
                        .iter()
                        .map(|i| format!("{}/{}", i.format, i.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }),
        many => Err(Error::invalid(format!(
            "model {name:?} has {what} in several formats ({}); pass a format",
            many.iter()
                .map(|i| format!("{}/{}", i.format, i.version))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Delete all but the newest `keep_last` committed versions, never a released one or one whose
/// metadata cannot be read. `metadata.json` goes first, so a version vanishes at once; claims
/// stay, so numbers are never reused. Returns the deleted versions' URLs, oldest first.
pub fn prune(root: &Remote, name: &str, format: &str, keep_last: usize) -> Result<Vec<String>> {
    if keep_last == 0 {
        return Err(Error::invalid(
            "prune must keep at least the newest version",
        ));
    }
    let infos = list_versions(root, name, Some(format))?;
    let older = &infos[..infos.len().saturating_sub(keep_last)];
    let mut deleted = Vec::new();
    for info in older {
        let released = info.metadata.get("released") == Some(&Value::Bool(true));
        if released || info.metadata_error.is_some() {
            continue;
        }
        let dir = root.join(&version_rel(name, format, info.version))?;
        dir.delete(METADATA_FILE)?;
        for (rel, _) in dir.list("")? {
            if rel != CLAIM_FILE {
                dir.delete(&rel)?;
            }
        }
        deleted.push(info.path.clone());
    }
    Ok(deleted)
}
