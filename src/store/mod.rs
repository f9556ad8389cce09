//! Versioned artifact store on the local filesystem.
//!
//! Layout: `root/<name>/<format>/<version>/`, where `<version>` is `vN` or `MAJOR.MINOR.PATCH`
//! (see [`version`]). A version directory holds the artifact's files and a `metadata.json` with
//! the caller's metadata plus a `"manifest"` (size and SHA-256 of every other file, see
//! [`manifest`]). Versions are never overwritten.
//!
//! # Publishing
//! [`Staging::begin`] creates a temporary sibling `root/name/format/.tmp-<label>-<pid>-<unique>`;
//! the caller writes the artifact there; [`Staging::commit`] hashes every file, fsyncs them, then
//! picks the version, writes `metadata.json` naming it, and renames the staging directory into
//! place.
//!
//! # The claim, and why it is race-free
//! The rename is the claim: `renameat2(staging, root/name/format/vN, RENAME_NOREPLACE)` succeeds
//! for exactly one caller and fails every other with `EEXIST` (even for an empty directory),
//! across threads and processes alike, so `vN` appears complete in one step and a crash at any
//! point leaves no `vN` at all, only a hidden staging directory. A loser, for automatic versions,
//! rewrites `metadata.json` for the next number and tries again; for an explicit version it
//! reports [`Error::ArtifactExists`]. Nobody can replace someone else's version.
//!
//! Where the kernel or filesystem has no `RENAME_NOREPLACE`, `mkdir(vN)` claims the number first
//! (the kernel creates a directory for exactly one caller) and the winner `rename`s its staging
//! directory onto the empty directory it created, which POSIX `rename` replaces atomically (a
//! foreign file inside it makes the rename fail with `ENOTEMPTY` instead of clobbering it).
//! Readers ([`list_versions`], [`resolve`], [`prune`]) ignore dot-entries and every version
//! directory without `metadata.json`, i.e. such a claim whose rename has not happened yet or never
//! will (a crash between `mkdir` and `rename`). An abandoned empty claim still blocks its number,
//! which keeps numbers from being reused; [`cleanup_stale`] removes it after an hour.
//!
//! Deletion ([`prune`]) renames a version to a `.tmp-deleting-…` sibling first and removes that,
//! so a crash never leaves a half-deleted version visible. The newest `vN` is never pruned, so
//! automatic numbering never hands out a number that was used before.
//!
//! The store assumes one host: [`cleanup_stale`] decides whether a staging directory's writer is
//! alive from the process id in its name and `/proc`.

pub mod manifest;
pub mod metadata;
pub mod version;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, IoContext, Location, Result};
use crate::fsutil;

pub use manifest::{hash_files, verify, FileEntry, Manifest, VerifyReport};
pub use metadata::{MANIFEST_KEY, METADATA_FILE, VERSION_KEY};
pub use version::{next_version, Version};

/// The version spec [`resolve`] takes for the highest version.
pub const LATEST: &str = "latest";
/// Prefix of staging and deleting directories (hidden from readers).
pub const TMP_PREFIX: &str = ".tmp-";
/// [`cleanup_stale`] removes temporary directories untouched for this long even if their
/// writer's process id is alive (it may have been reused).
pub const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Give up claiming an automatic version after this many lost races.
const MAX_CLAIM_ATTEMPTS: usize = 10_000;

/// Temporary directories owned by live objects of this process, which [`cleanup_stale`] must
/// not touch even though their process id (ours) is alive.
static ACTIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn active() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a temporary path for as long as it lives; registered before the path is created.
struct ActiveGuard(PathBuf);

impl ActiveGuard {
    fn register(path: PathBuf) -> ActiveGuard {
        active().insert(path.clone());
        ActiveGuard(path)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        active().remove(&self.0);
    }
}

/// Model names and format names: 1-255 of `[A-Za-z0-9._-]`, not starting with `.` (hidden
/// entries belong to the store).
pub(crate) fn check_component(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid {what} {s:?}: use 1-255 ASCII letters, digits, '.', '_' or '-', not \
             starting with '.'"
        )))
    }
}

fn check_root(root: &Path) -> Result<()> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::ArtifactNotFound {
            at: Location(Some(root.to_path_buf())),
            msg: "the artifact store root is not a directory".into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::ArtifactNotFound {
            at: Location(Some(root.to_path_buf())),
            msg: "the artifact store root does not exist".into(),
        }),
        Err(e) => Err(Error::io(root, e)),
    }
}

/// `root/name/format/version`.
pub fn version_dir(root: &Path, name: &str, format: &str, version: &Version) -> PathBuf {
    root.join(name).join(format).join(version.to_string())
}

/// A fresh temporary sibling name in `format_dir`: `.tmp-<label>-<pid>-<nanos>.<counter>`.
fn temp_path(format_dir: &Path, label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format_dir.join(format!(
        "{TMP_PREFIX}{label}-{}-{nanos:x}.{n}",
        std::process::id()
    ))
}

/// The process id in a temporary directory's name.
fn tmp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TMP_PREFIX)?;
    let mut parts = rest.rsplitn(3, '-');
    let _unique = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    pid.parse().ok()
}

/// Whether process `pid` may be alive; `true` when that cannot be known (no `/proc`).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // Our own live temporaries are in ACTIVE; any other one with our pid is a leftover of an
        // earlier process that had the same id.
        return false;
    }
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The newest modification time in the tree at `path` (links not followed); `None` when
/// `path` cannot be examined.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let mut newest = fs::symlink_metadata(path).ok()?.modified().ok()?;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if let Ok(t) = meta.modified() {
                newest = newest.max(t);
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Some(newest)
}

fn age(now: SystemTime, t: Option<SystemTime>) -> Duration {
    t.and_then(|t| now.duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
}

/// Start writing the files under `dir` back to the disk, without waiting for it: the model is
/// written first and reloaded and checked before the commit fsyncs it, so the disk gets that
/// time. Linux's `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which can block while the device's
/// queue is full, on a thread of its own; errors are left to the commit's fsync to report.
/// Elsewhere it does nothing.
pub fn start_writeback(dir: &Path) {
    #[cfg(target_os = "linux")]
    {
        // Listed here: files come and go in the staging directory while the thread runs.
        let Ok(tree) = manifest::walk(dir, true) else {
            return;
        };
        let writeback = move || {
            for f in &tree.files {
                if let Ok(file) = File::open(&f.path) {
                    // SAFETY: an open descriptor; the call reads no memory of ours.
                    unsafe {
                        libc::sync_file_range(
                            std::os::fd::AsRawFd::as_raw_fd(&file),
                            0,
                            0,
                            libc::SYNC_FILE_RANGE_WRITE,
                        )
                    };
                }
            }
        };
        // Without a thread to run it on, the commit's fsync does all the work, as it would.
        let _ = std::thread::Builder::new()
            .name("kerasafe-writeback".into())
            .spawn(writeback);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

/// fsync every file (in parallel) and every directory (deepest first) under `dir`, and `dir`.
fn sync_tree(dir: &Path) -> Result<()> {
    let tree = manifest::walk(dir, true)?;
    tree.files
        .par_iter()
        .try_for_each(|f| fsutil::sync_path(&f.path))?;
    for d in &tree.dirs {
        fsutil::sync_path(d)?;
    }
    Ok(())
}

/// Claim `dir` by creating it empty: false when it exists already.
fn claim_empty(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Rename `from` to `to` unless `to` exists (even as an empty directory): `AlreadyExists` then.
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // The raw system call: glibc's wrapper is younger than the oldest glibc a wheel supports.
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(ErrorKind::Unsupported))
}

/// Whether `e` says this kernel or filesystem cannot rename without replacing.
fn no_rename_no_replace(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
        )
}

/// One entry of a format directory whose name is a version.
struct Entry {
    version: Version,
    path: PathBuf,
    /// A directory (not a link) holding `metadata.json`: a published version.
    complete: bool,
}

/// Every entry of `format_dir` named like a version (files and links included, because they
/// block the name too), sorted by version. A missing directory has none.
fn scan(format_dir: &Path) -> Result<Vec<Entry>> {
    let entries = match fs::read_dir(format_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format_dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.at(format_dir)?;
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(|n| Version::parse(n).ok()) else {
            continue;
        };
        let path = entry.path();
        let is_dir = entry.file_type().at(&path)?.is_dir();
        let complete =
            is_dir && fs::symlink_metadata(path.join(METADATA_FILE)).is_ok_and(|m| m.is_file());
        out.push(Entry {
            version,
            path,
            complete,
        });
    }
    out.sort_by_key(|e| e.version);
    Ok(out)
}

/// Format directories of `root/name` (sorted); none when the model does not exist.
fn formats_of(root: &Path, name: &str) -> Result<Vec<String>> {
    let dir = root.join(name);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.at(&dir)?;
        let Ok(f) = entry.file_name().into_string() else {
            continue;
        };
        if check_component("format", &f).is_ok() && entry.file_type().at(entry.path())?.is_dir() {
            out.push(f);
        }
    }
    out.sort();
    Ok(out)
}

/// A version published by [`Staging::commit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedVersion {
    /// Model name.
    pub name: String,
    /// Format directory name.
    pub format: String,
    /// The version claimed.
    pub version: Version,
    /// `root/name/format/version`.
    pub path: PathBuf,
    /// The files and their hashes.
    pub manifest: Manifest,
    /// The metadata written, manifest included.
    pub metadata: Value,
}

/// A version in progress: a temporary directory the caller fills, then commits.
/// Dropping it uncommitted removes the directory.
#[derive(Debug)]
pub struct Staging {
    name: String,
    format: String,
    root: PathBuf,
    format_dir: PathBuf,
    dir: PathBuf,
    version: Option<Version>,
    done: bool,
    // Dropped after `Drop::drop` has removed the directory.
    _guard: ActiveGuard,
}

impl std::fmt::Debug for ActiveGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Staging {
    /// Start a version of `name` in `format` under `root` (created if missing). `version: None`
    /// numbers it automatically (`v{max+1}`) at commit time; an explicit version that exists
    /// already is [`Error::ArtifactExists`] here and at commit.
    pub fn begin(root: &Path, name: &str, format: &str, version: Option<&str>) -> Result<Staging> {
        check_component("model name", name)?;
        check_component("format", format)?;
        let version = version.map(Version::parse).transpose()?;
        let format_dir = root.join(name).join(format);
        if let Some(v) = version {
            let final_dir = format_dir.join(v.to_string());
            if fs::symlink_metadata(&final_dir).is_ok() {
                return Err(exists_error(name, format, v, &final_dir));
            }
        }
        fs::create_dir_all(&format_dir).at(&format_dir)?;
        let label = version.map_or_else(|| "auto".to_string(), |v| v.to_string());
        for _ in 0..100 {
            let dir = temp_path(&format_dir, &label);
            let guard = ActiveGuard::register(dir.clone());
            match fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(Staging {
                        name: name.to_string(),
                        format: format.to_string(),
                        root: root.to_path_buf(),
                        format_dir,
                        dir,
                        version,
                        done: false,
                        _guard: guard,
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Err(Error::io(
            &format_dir,
            std::io::Error::new(
                ErrorKind::AlreadyExists,
                "could not create a unique staging directory",
            ),
        ))
    }

    /// The directory to write the artifact's files into.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The explicit version asked for, if any.
    pub fn requested_version(&self) -> Option<Version> {
        self.version
    }

    /// Publish: hash every file, fsync everything, write `metadata.json` (`metadata` — a JSON
    /// object, or null for none — plus `"manifest"` and the version) and rename the staging
    /// directory into place as the version (see the module docs). On error before the rename,
    /// nothing is published and the staging directory is removed. An error fsyncing the parent
    /// directories after the rename is reported although the version is then visible.
    ///
    /// The staging directory must not contain a top-level `metadata.json` (the store writes it)
    /// nor symlinks or special files; `metadata` must not have a `"manifest"` key.
    pub fn commit(self, metadata: Value) -> Result<PublishedVersion> {
        self.commit_with(metadata, rename_no_replace)
    }

    /// [`Self::commit`] with the no-replace rename passed in (tests stand in for the kernel).
    fn commit_with(
        mut self,
        metadata: Value,
        rename_no_replace: fn(&Path, &Path) -> std::io::Result<()>,
    ) -> Result<PublishedVersion> {
        let mut meta = metadata::user_object(metadata)?;
        let md_path = self.dir.join(METADATA_FILE);
        match fs::symlink_metadata(&md_path) {
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "{}: the staging directory must not contain {METADATA_FILE}: the store \
                     writes it from the metadata passed to commit",
                    md_path.display()
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&md_path, e)),
        }
        let manifest = manifest::hash_staged(&self.dir)?;
        let manifest_json = serde_json::to_value(&manifest)
            .map_err(|e| Error::invalid(format!("manifest is not serializable: {e}")))?;
        meta.insert(MANIFEST_KEY.to_string(), manifest_json);

        // Everything but metadata.json reaches the disk before any version name is taken, so a
        // crash leaves at most the staging directory (hidden, removed by cleanup_stale).
        sync_tree(&self.dir)?;
        let (version, final_dir, meta) = self.publish(meta, &md_path, rename_no_replace)?;
        self.done = true;
        fsutil::sync_path(&self.format_dir)?;
        if let Some(name_dir) = self.format_dir.parent() {
            fsutil::sync_path(name_dir)?;
        }
        Ok(PublishedVersion {
            name: self.name.clone(),
            format: self.format.clone(),
            version,
            path: final_dir,
            manifest,
            metadata: meta,
        })
    }

    /// Pick the version, write metadata.json naming it, and rename the staging directory to it
    /// in one step that fails if the name is taken (then, for an automatic number, the next one
    /// is tried). Where the filesystem cannot rename without replacing, the name is claimed
    /// first as an empty directory, which readers ignore until the rename fills it.
    fn publish(
        &self,
        mut meta: serde_json::Map<String, Value>,
        md_path: &Path,
        rename_no_replace: fn(&Path, &Path) -> std::io::Result<()>,
    ) -> Result<(Version, PathBuf, Value)> {
        let mut tried: Option<Version> = None;
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let version = match self.version {
                Some(v) => v,
                None => {
                    let mut taken: Vec<Version> = scan(&self.format_dir)?
                        .into_iter()
                        .map(|e| e.version)
                        .collect();
                    taken.extend(tried);
                    next_version(&taken)?
                }
            };
            tried = Some(version);
            let final_dir = self.format_dir.join(version.to_string());
            meta.insert(VERSION_KEY.to_string(), Value::String(version.to_string()));
            let sorted = metadata::sorted(&Value::Object(meta.clone()));
            File::create(md_path)
                .and_then(|mut f| {
                    f.write_all(&metadata::to_bytes(&sorted))?;
                    f.sync_all()
                })
                .at(md_path)?;
            fsutil::sync_path(&self.dir)?;
            match rename_no_replace(&self.dir, &final_dir) {
                Ok(()) => return Ok((version, final_dir, sorted)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) if no_rename_no_replace(&e) => {
                    if claim_empty(&final_dir)? {
                        if let Err(e) = fs::rename(&self.dir, &final_dir).at(&final_dir) {
                            // Release our (still empty) claim; never touches one with contents.
                            let _ = fs::remove_dir(&final_dir);
                            return Err(e);
                        }
                        return Ok((version, final_dir, sorted));
                    }
                }
                Err(e) => return Err(Error::io(&final_dir, e)),
            }
            if let Some(v) = self.version {
                return Err(exists_error(&self.name, &self.format, v, &final_dir));
            }
        }
        Err(Error::io(
            &self.format_dir,
            std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!("lost the race for a version number {MAX_CLAIM_ATTEMPTS} times"),
            ),
        ))
    }

    /// Remove the staging directory now, reporting errors (dropping does it silently).
    pub fn abort(mut self) -> Result<()> {
        self.done = true;
        manifest::forget_written_under(&self.dir);
        fs::remove_dir_all(&self.dir).at(&self.dir)
    }

    /// The store root this staging publishes into.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            manifest::forget_written_under(&self.dir);
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn exists_error(name: &str, format: &str, v: Version, dir: &Path) -> Error {
    let incomplete = if fs::symlink_metadata(dir.join(METADATA_FILE)).is_ok() {
        ""
    } else {
        " (incomplete: no metadata.json; cleanup_stale removes abandoned empty claims after an hour)"
    };
    Error::ArtifactExists {
        at: Location(Some(dir.to_path_buf())),
        msg: format!(
            "version {v} of model {name:?} in format {format:?} exists{incomplete}; versions are \
             never overwritten"
        ),
    }
}

/// Stage, fill and commit in one call: `fill` writes the artifact's files into the directory
/// it is given; see [`Staging`].
pub fn publish(
    root: &Path,
    name: &str,
    format: &str,
    version: Option<&str>,
    metadata: Value,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PublishedVersion> {
    let staging = Staging::begin(root, name, format, version)?;
    fill(staging.path())?;
    staging.commit(metadata)
}

/// A published version as listed by [`list_versions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Model name.
    pub name: String,
    /// Format directory name.
    pub format: String,
    /// The version.
    pub version: Version,
    /// `root/name/format/version`.
    pub path: PathBuf,
    /// Parsed `metadata.json`; null when it could not be read.
    pub metadata: Value,
    /// Why `metadata.json` could not be read, if it could not.
    pub metadata_error: Option<String>,
}

impl VersionInfo {
    /// Whether the metadata has `"released": true` (such versions are never pruned).
    pub fn is_released(&self) -> bool {
        self.metadata.get("released") == Some(&Value::Bool(true))
    }
}

/// Published versions of `name` in `format` (every format when `None`), sorted by version,
/// then format. Versions being published, abandoned claims, dot-entries and entries whose names
/// are not versions are left out; a model that does not exist has none. A missing root is
/// [`Error::ArtifactNotFound`]. Unreadable metadata does not fail the listing: it is reported in
/// [`VersionInfo::metadata_error`].
pub fn list_versions(root: &Path, name: &str, format: Option<&str>) -> Result<Vec<VersionInfo>> {
    check_root(root)?;
    check_component("model name", name)?;
    let formats = match format {
        Some(f) => {
            check_component("format", f)?;
            vec![f.to_string()]
        }
        None => formats_of(root, name)?,
    };
    let mut out = Vec::new();
    for f in formats {
        for e in scan(&root.join(name).join(&f))? {
            if !e.complete {
                continue;
            }
            let (metadata, metadata_error) = match metadata::read(&e.path) {
                Ok(m) => (m, None),
                Err(err) => (Value::Null, Some(err.to_string())),
            };
            out.push(VersionInfo {
                name: name.to_string(),
                format: f.clone(),
                version: e.version,
                path: e.path,
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

/// The directory of version `spec` (`"latest"` or a version name) of `name` in `format`.
/// With `format: None` the model must have matching versions in exactly one format.
/// Nothing matching is [`Error::ArtifactNotFound`] naming what was looked for and what exists;
/// matches in several formats or a malformed `spec` are [`Error::InvalidArgument`].
pub fn resolve(root: &Path, name: &str, format: Option<&str>, spec: &str) -> Result<PathBuf> {
    check_root(root)?;
    check_component("model name", name)?;
    let wanted = if spec == LATEST {
        None
    } else {
        Some(Version::parse(spec)?)
    };
    let formats = match format {
        Some(f) => {
            check_component("format", f)?;
            vec![f.to_string()]
        }
        None => formats_of(root, name)?,
    };
    let mut hits = Vec::new();
    let mut available = Vec::new();
    for f in &formats {
        let complete: Vec<Entry> = scan(&root.join(name).join(f))?
            .into_iter()
            .filter(|e| e.complete)
            .collect();
        available.extend(complete.iter().map(|e| format!("{f}/{}", e.version)));
        let hit = match wanted {
            Some(w) => complete.into_iter().find(|e| e.version == w),
            None => complete.into_iter().last(),
        };
        if let Some(e) = hit {
            hits.push((f, e));
        }
    }
    let what = match wanted {
        Some(w) => format!("version {w}"),
        None => "any version".to_string(),
    };
    let in_format = format.map_or_else(String::new, |f| format!(" in format {f:?}"));
    match hits.len() {
        1 => Ok(hits.remove(0).1.path),
        0 => {
            let at = match format {
                Some(f) => root.join(name).join(f),
                None => root.join(name),
            };
            Err(Error::ArtifactNotFound {
                at: Location(Some(at)),
                msg: format!(
                    "no {what} of model {name:?}{in_format}; available: {}",
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available.join(", ")
                    }
                ),
            })
        }
        _ => Err(Error::invalid(format!(
            "model {name:?} has {what} in several formats ({}); pass a format",
            hits.iter()
                .map(|(f, e)| format!("{f}/{}", e.version))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Verify a version directory against the manifest in its `metadata.json`.
pub fn verify_version(dir: &Path) -> Result<VerifyReport> {
    let meta = metadata::read(dir)?;
    let manifest = metadata::manifest_of(&dir.join(METADATA_FILE), &meta)?;
    verify(dir, &manifest)
}

/// Delete all but the newest `keep_last` (at least 1) versions of `name` in `format`, except
/// versions whose metadata says `"released": true`, versions whose metadata cannot be read, and
/// the newest `vN` (so automatic numbering never reuses a number). Each version is renamed to a
/// hidden `.tmp-deleting-…` sibling before being removed. Returns the deleted versions' paths,
/// oldest first. A version concurrently deleted by someone else is skipped.
pub fn prune(root: &Path, name: &str, format: &str, keep_last: usize) -> Result<Vec<PathBuf>> {
    if keep_last == 0 {
        return Err(Error::invalid(
            "prune must keep at least the newest version",
        ));
    }
    let infos = list_versions(root, name, Some(format))?;
    let newest_seq = infos
        .iter()
        .map(|i| i.version)
        .filter(Version::is_seq)
        .max();
    let format_dir = root.join(name).join(format);
    let older = &infos[..infos.len().saturating_sub(keep_last)];
    let mut deleted = Vec::new();
    for info in older {
        if info.is_released() || info.metadata_error.is_some() || Some(info.version) == newest_seq {
            continue;
        }
        let tmp = temp_path(&format_dir, &format!("deleting-{}", info.version));
        let _guard = ActiveGuard::register(tmp.clone());
        match fs::rename(&info.path, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&info.path, e)),
        }
        fs::remove_dir_all(&tmp).at(&tmp)?;
        deleted.push(info.path.clone());
    }
    if !deleted.is_empty() {
        fsutil::sync_path(&format_dir)?;
    }
    Ok(deleted)
}

/// Remove leftovers of crashed writers in `root/name/format`: `.tmp-*` directories whose
/// process is gone (by `/proc/<pid>`; where `/proc` does not exist only age counts) or whose
/// newest file is older than [`STALE_AFTER`], and abandoned empty version claims older than
/// that. Directories of live [`Staging`]s and prunes of this process are never touched.
/// Returns the removed paths.
pub fn cleanup_stale(root: &Path, name: &str, format: &str) -> Result<Vec<PathBuf>> {
    check_component("model name", name)?;
    check_component("format", format)?;
    let format_dir = root.join(name).join(format);
    let entries = match fs::read_dir(&format_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&format_dir, e)),
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.at(&format_dir)?;
        let path = entry.path();
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.file_type().at(&path)?.is_dir() {
            continue;
        }
        if file_name.starts_with(TMP_PREFIX) {
            if active().contains(&path) {
                continue;
            }
            let dead = tmp_pid(&file_name).is_some_and(|pid| !pid_alive(pid));
            if dead || age(now, newest_mtime(&path)) > STALE_AFTER {
                match fs::remove_dir_all(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        } else if Version::parse(&file_name).is_ok() {
            let old = age(
                now,
                fs::symlink_metadata(&path).and_then(|m| m.modified()).ok(),
            ) > STALE_AFTER;
            let empty = fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
            // remove_dir only removes an empty directory, so a rename that lands meanwhile wins.
            if old && empty && fs::remove_dir(&path).is_ok() {
                removed.push(path);
            }
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests;
