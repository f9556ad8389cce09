//! Per-file SHA-256 manifests of artifact directories, and their verification.
//!
//! A manifest lists every regular file under a directory by its relative path (components joined
//! with `/`), with its size and SHA-256. The top-level [`METADATA_FILE`] is left out because it
//! holds the manifest. Symlinks and special files are refused: a link in an artifact can point a
//! loader at any file on the machine. Files are hashed in parallel, each by streaming reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Location, Result};
use crate::progress::Progress;

pub use super::metadata::METADATA_FILE;

/// Read buffer for hashing one file.
const HASH_BUF: usize = 4 << 20;

/// Size and SHA-256 of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Length in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
}

/// Every file of an artifact directory, keyed by `/`-separated relative path (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Relative path → size and hash.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Every key a plain relative path to an artifact file (not `..`, absolute, empty
    /// components, nor the top-level `metadata.json`); else [`Error::Format`] at `at`.
    pub fn check_keys(&self, at: impl AsRef<Path>) -> Result<()> {
        match self
            .files
            .keys()
            .find(|k| !is_safe_key(k) || k.as_str() == METADATA_FILE)
        {
            Some(bad) => Err(Error::format_in(
                at,
                format!("manifest entry {bad:?} is not a relative path to an artifact file"),
            )),
            None => Ok(()),
        }
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

/// A regular file found by [`walk`].
pub(crate) struct Found {
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    dev: u64,
    ino: u64,
}

/// Every regular file and directory under `dir` (directories deepest first, `dir` last).
pub(crate) struct Tree {
    pub files: Vec<Found>,
    pub dirs: Vec<PathBuf>,
}

/// Walk `dir` without following links; refuses symlinks, special files and non-UTF-8 names.
/// The top-level metadata file is included only when `with_metadata`.
pub(crate) fn walk(dir: &Path, with_metadata: bool) -> Result<Tree> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    // (absolute path, relative prefix) — an explicit stack, so hostile nesting cannot overflow ours.
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((current, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&current).at(&current)? {
            let entry = entry.at(&current)?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| {
                Error::format_in(
                    &path,
                    "file name is not valid UTF-8; artifacts need UTF-8 names",
                )
            })?;
            let rel = format!("{prefix}{name}");
            let meta = std::fs::symlink_metadata(&path).at(&path)?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(Error::format_in(
                    &path,
                    "symlinks are not allowed in artifacts (a link can point a loader at any file)",
                ));
            } else if ft.is_dir() {
                stack.push((path, format!("{rel}/")));
            } else if ft.is_file() {
                if !with_metadata && prefix.is_empty() && name == METADATA_FILE {
                    continue;
                }
                files.push(Found {
                    rel,
                    path,
                    size: meta.len(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                });
            } else {
                return Err(Error::format_in(
                    &path,
                    "only regular files and directories are allowed in artifacts",
                ));
            }
        }
        dirs.push(current);
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    // Children were pushed after their parents; reversed, every directory precedes its parent.
    dirs.reverse();
    Ok(Tree { files, dirs })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Which file, as written: a digest remembered for it holds only while all of these are unchanged
/// (any write moves the modification time; a rename, as TensorFlow's shard merge does, keeps them).
/// On a kernel with coarse timestamps a same-size rewrite within one clock tick would keep the
/// time too; only kerasafe and the TensorFlow saver it runs write inside a staging directory,
/// digests are dropped when a staging is abandoned ([`forget_written_under`]), and `verify`
/// always reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }

    /// Whether both name the same file (any version of it).
    fn same_file(&self, other: &Identity) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// A digest computed while a file was written, and where the file was then.
struct WrittenDigest {
    id: Identity,
    path: PathBuf,
    sha256: Remembered,
}

/// A remembered SHA-256 (hex): complete, or being finished from the file on a thread of its own.
enum Remembered {
    Done(String),
    Finishing(std::thread::JoinHandle<std::io::Result<String>>),
}

/// The SHA-256 of a file's first `hashed` bytes, computed by its writer alongside the write
/// (hashing is slower than writing into the page cache, so the writer stops where the write
/// ends); [`remember_written_partly`] finishes it.
pub(crate) struct DigestSoFar {
    pub(crate) sha256: Sha256,
    pub(crate) hashed: u64,
}

/// SHA-256s computed while files were written for an artifact ([`remember_written`], or finished
/// from the file in the background, [`remember_written_partly`]), so that publishing it need not
/// read them again; each is used once, by [`hash_staged`] only ([`verify`] always reads).
static WRITTEN: Mutex<Vec<WrittenDigest>> = Mutex::new(Vec::new());
/// Digests kept at most (the oldest go first): far more than one artifact's files.
const WRITTEN_KEPT: usize = 64;

fn written() -> std::sync::MutexGuard<'static, Vec<WrittenDigest>> {
    WRITTEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Record the SHA-256 of the bytes written to the file at `path` (published there, complete);
/// `meta` is its metadata after the last write. For the commit of the artifact being staged.
pub(crate) fn remember_written(path: &Path, meta: &std::fs::Metadata, sha256: &[u8]) {
    remember(path, meta, Remembered::Done(hex(sha256)));
}

/// [`remember_written`] for a digest its writer took only part of the way: the rest of the file
/// (`file`, complete, `meta.len()` bytes) is read back and hashed on a thread of its own while
/// the caller goes on (reloading the model it saved), and [`hash_staged`] waits for it. If no
/// thread can be started or the read fails, the publish reads the whole file instead.
pub(crate) fn remember_written_partly(
    path: &Path,
    file: File,
    meta: &std::fs::Metadata,
    so_far: DigestSoFar,
) {
    let end = meta.len();
    let finishing = std::thread::Builder::new()
        .name("kerasafe-sha256".into())
        .spawn(move || finish_digest(&file, so_far, end));
    match finishing {
        Ok(handle) => remember(path, meta, Remembered::Finishing(handle)),
        // The publish reads the file; no older digest for the same file may stand in.
        Err(_) => forget(&Identity::of(meta)),
    }
}

/// Hash `file` from where `so_far` stopped up to `end`.
pub(crate) fn finish_digest(file: &File, so_far: DigestSoFar, end: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let DigestSoFar { sha256, hashed } = so_far;
    let Some(rest) = end.checked_sub(hashed) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the digest began past the end of the file",
        ));
    };
    let mut reader = file;
    reader.seek(SeekFrom::Start(hashed))?;
    let (read, sha256) = hash_continuing(sha256, &mut reader.take(rest), rest, &Progress::off())?;
    if read != rest {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(sha256)
}

/// Drop what is remembered for the file `id` names (any version of it).
fn forget(id: &Identity) {
    written().retain(|w| !w.id.same_file(id));
}

fn remember(path: &Path, meta: &std::fs::Metadata, sha256: Remembered) {
    let id = Identity::of(meta);
    let mut kept = written();
    kept.retain(|w| !w.id.same_file(&id));
    if kept.len() >= WRITTEN_KEPT {
        kept.remove(0);
    }
    kept.push(WrittenDigest {
        id,
        path: absolute(path),
        sha256,
    });
}

/// Drop the digests of files written under `dir` (a staging directory abandoned: its inodes may
/// be reused). Files renamed within it since (TensorFlow's shard merge) are still under it.
pub fn forget_written_under(dir: &Path) {
    let dir = absolute(dir);
    written().retain(|w| !w.path.starts_with(&dir));
}

/// `path` made absolute (lexically), so a relative and an absolute spelling compare equal.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The digest remembered for this file, if it is still the file that was written.
fn take_written(meta: &std::fs::Metadata) -> Option<String> {
    let taken = {
        let mut kept = written();
        let id = Identity::of(meta);
        let at = kept.iter().position(|w| w.id == id)?;
        kept.swap_remove(at).sha256
    };
    match taken {
        Remembered::Done(sha256) => Some(sha256),
        Remembered::Finishing(handle) => handle.join().ok()?.ok(),
    }
}

/// Hash a file found by the walk, checking it is still the same regular file once opened (a
/// file swapped for a symlink between the walk and the open is refused). With `written`, a
/// digest remembered while the file was written stands in for reading it.
fn hash_found(f: &Found, progress: &Progress, written: bool) -> Result<FileEntry> {
    let mut file = File::open(&f.path).at(&f.path)?;
    let meta = file.metadata().at(&f.path)?;
    if !meta.is_file() || meta.dev() != f.dev || meta.ino() != f.ino {
        return Err(Error::format_in(
            &f.path,
            "file was replaced while the artifact was being hashed",
        ));
    }
    if let Some(sha256) = written.then(|| take_written(&meta)).flatten() {
        progress.advance(meta.len());
        return Ok(FileEntry {
            size: meta.len(),
            sha256,
        });
    }
    let (size, sha256) = hash_reader(&mut file, meta.len(), progress).at(&f.path)?;
    Ok(FileEntry { size, sha256 })
}

fn hash_reader(
    r: &mut impl Read,
    size_hint: u64,
    progress: &Progress,
) -> std::io::Result<(u64, String)> {
    hash_continuing(Sha256::new(), r, size_hint, progress)
}

/// Feed everything `r` yields into `hasher`; returns the bytes read and the hex digest.
fn hash_continuing(
    mut hasher: Sha256,
    r: &mut impl Read,
    size_hint: u64,
    progress: &Progress,
) -> std::io::Result<(u64, String)> {
    let cap = usize::try_from(size_hint.clamp(8 << 10, HASH_BUF as u64)).unwrap_or(HASH_BUF);
    let mut buf = vec![0u8; cap];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress.advance(n as u64);
    }
    Ok((total, hex(&hasher.finalize())))
}

/// Size and SHA-256 of one file (symlinks refused).
pub fn hash_file(path: &Path) -> Result<FileEntry> {
    let meta = std::fs::symlink_metadata(path).at(path)?;
    if !meta.file_type().is_file() {
        return Err(Error::format_in(path, "not a regular file"));
    }
    let progress = Progress::current();
    progress.add_total(meta.len());
    hash_found(
        &Found {
            rel: String::new(),
            path: path.to_path_buf(),
            size: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
        &progress,
        false,
    )
}

fn hash_all<'f>(
    files: impl IntoIterator<Item = &'f Found>,
    written: bool,
) -> Result<Vec<(&'f Found, FileEntry)>> {
    let mut todo: Vec<&Found> = files.into_iter().collect();
    // Largest first, so one big file does not start last and run alone.
    todo.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.rel.cmp(&b.rel)));
    let progress = Progress::current();
    progress.add_total(todo.iter().map(|f| f.size).sum());
    todo.into_par_iter()
        .map(|f| hash_found(f, &progress, written).map(|e| (f, e)))
        .collect()
}

fn manifest_of_dir(dir: &Path, written: bool) -> Result<Manifest> {
    let tree = walk(dir, false)?;
    let files = hash_all(&tree.files, written)?
        .into_iter()
        .map(|(f, e)| (f.rel.clone(), e))
        .collect();
    Ok(Manifest { files })
}

/// The manifest of every regular file under `dir` except the top-level `metadata.json`.
/// Symlinks, special files and non-UTF-8 names are [`Error::Format`] errors naming the path.
pub fn hash_files(dir: &Path) -> Result<Manifest> {
    manifest_of_dir(dir, false)
}

/// [`hash_files`] for a version being published: files whose SHA-256 was computed while they
/// were written ([`remember_written`], [`remember_written_partly`]) and that are unchanged since
/// are not read again (a digest still being finished is waited for).
pub fn hash_staged(dir: &Path) -> Result<Manifest> {
    manifest_of_dir(dir, true)
}

/// Whether a manifest key is a plain relative path that stays inside the artifact.
pub(crate) fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains('\0')
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A file whose size differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeMismatch {
    /// Relative path.
    pub path: String,
    /// Size in the manifest.
    pub expected: u64,
    /// Size on disk.
    pub actual: u64,
}

/// A file whose SHA-256 differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashMismatch {
    /// Relative path.
    pub path: String,
    /// Hash in the manifest.
    pub expected: String,
    /// Hash of the file on disk.
    pub actual: String,
}

/// What [`verify`] found. All lists are sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The directory verified.
    pub dir: PathBuf,
    /// Files hashed and found intact.
    pub ok: u64,
    /// Files in the manifest and not on disk.
    pub missing: Vec<String>,
    /// Files on disk and not in the manifest.
    pub extra: Vec<String>,
    /// Files whose size differs (not hashed).
    pub size_mismatches: Vec<SizeMismatch>,
    /// Files of the right size whose hash differs.
    pub hash_mismatches: Vec<HashMismatch>,
}

impl VerifyReport {
    /// Whether the directory matches its manifest exactly.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.size_mismatches.is_empty()
            && self.hash_mismatches.is_empty()
    }

    /// Every bad file with what is wrong with it, sorted by path.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .missing
            .iter()
            .map(|p| (p.clone(), "missing".to_string()))
            .chain(
                self.extra
                    .iter()
                    .map(|p| (p.clone(), "not in the manifest".to_string())),
            )
            .chain(self.size_mismatches.iter().map(|m| {
                (
                    m.path.clone(),
                    format!("size {} bytes, manifest says {}", m.actual, m.expected),
                )
            }))
            .chain(self.hash_mismatches.iter().map(|m| {
                (
                    m.path.clone(),
                    format!("sha256 {}, manifest says {}", m.actual, m.expected),
                )
            }))
            .collect();
        all.sort();
        all
    }

    /// `Ok(())` when intact, else [`Error::Checksum`] at the first bad file (by path), whose
    /// message lists every bad file.
    pub fn into_result(self) -> Result<()> {
        let problems = self.problems();
        let Some((first, _)) = problems.first() else {
            return Ok(());
        };
        let list: Vec<String> = problems
            .iter()
            .map(|(p, why)| format!("{p}: {why}"))
            .collect();
        Err(Error::Checksum {
            at: Location(Some(self.dir.join(first))),
            what: format!("artifact {}", self.dir.display()),
            detail: format!(
                "{} file(s) differ from the manifest: {}",
                problems.len(),
                list.join("; ")
            ),
        })
    }
}

/// Compare `dir` with `manifest`: missing, extra, resized and altered files. Only files whose
/// size matches are hashed (in parallel). The top-level `metadata.json` is never an extra file.
/// Manifest keys that are not plain relative paths (`..`, absolute, empty components) and
/// symlinks in `dir` are [`Error::Format`] errors: the artifact is hostile or corrupt.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<VerifyReport> {
    manifest.check_keys(dir.join(METADATA_FILE))?;
    let tree = walk(dir, false)?;
    let on_disk: BTreeMap<&str, &Found> = tree.files.iter().map(|f| (f.rel.as_str(), f)).collect();
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        ok: 0,
        missing: Vec::new(),
        extra: Vec::new(),
        size_mismatches: Vec::new(),
        hash_mismatches: Vec::new(),
    };
    let mut to_hash = Vec::new();
    for (key, want) in &manifest.files {
        match on_disk.get(key.as_str()) {
            None => report.missing.push(key.clone()),
            Some(f) if f.size != want.size => report.size_mismatches.push(SizeMismatch {
                path: key.clone(),
                expected: want.size,
                actual: f.size,
            }),
            Some(f) => to_hash.push(*f),
        }
    }
    report.extra = on_disk
        .keys()
        .filter(|k| !manifest.files.contains_key(**k))
        .map(|k| k.to_string())
        .collect();
    let mut hashed = hash_all(to_hash, false)?;
    hashed.sort_by(|a, b| a.0.rel.cmp(&b.0.rel));
    for (f, got) in hashed {
        let want = &manifest.files[&f.rel];
        if got.size != want.size {
            // Changed size between the walk and the read.
            report.size_mismatches.push(SizeMismatch {
                path: f.rel.clone(),
                expected: want.size,
                actual: got.size,
            });
        } else if !got.sha256.eq_ignore_ascii_case(&want.sha256) {
            report.hash_mismatches.push(HashMismatch {
                path: f.rel.clone(),
                expected: want.sha256.clone(),
                actual: got.sha256,
            });
        } else {
            report.ok += 1;
        }
    }
    report.size_mismatches.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A float32 tensor over `bytes`.
    fn f32s(bytes: &[u8]) -> crate::tensor::Tensor<'_> {
        crate::tensor::Tensor {
            dtype: crate::tensor::DType::F32,
            shape: vec![bytes.len() as u64 / 4],
            data: crate::tensor::TensorData::Bytes(bytes.into()),
        }
    }

    fn remembered(path: &Path) -> bool {
        let id = Identity::of(&fs::metadata(path).unwrap());
        written().iter().any(|w| w.id == id)
    }

    #[test]
    fn a_digest_is_finished_from_where_it_stopped_and_only_over_the_whole_rest() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        let content: Vec<u8> = (0..(HASH_BUF as u32 + 4097)).map(|i| i as u8).collect();
        fs::write(&path, &content).unwrap();
        let file = File::open(&path).unwrap();
        let head = |n: usize| DigestSoFar {
            sha256: Sha256::new_with_prefix(&content[..n]),
            hashed: n as u64,
        };
        let whole = hex(&Sha256::digest(&content));
        let end = content.len() as u64;
        for n in [0, 1, 4096, content.len() - 1, content.len()] {
            assert_eq!(
                finish_digest(&file, head(n), end).unwrap(),
                whole,
                "from {n}"
            );
        }
        // A file shorter than the end it was told, or a start past that end, is an error.
        let short = finish_digest(&file, head(10), end + 1).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        let past = finish_digest(&file, head(10), 9).unwrap_err();
        assert_eq!(past.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_digest_remembered_at_write_stands_in_only_for_the_unchanged_file_and_only_once() {
        let d = sample();
        let x = d.path().join("variables/deep/x.bin");
        let truth = hash_files(d.path()).unwrap();
        // A digest that is not the file's shows which path used it.
        remember_written(&x, &fs::metadata(&x).unwrap(), &[0xab; 32]);
        assert!(remembered(&x));
        // Verification and hash_files always read.
        assert_eq!(hash_files(d.path()).unwrap(), truth);
        let report = verify(d.path(), &truth).unwrap();
        assert!(report.is_ok(), "{report:?}");
        // A publish takes it, once.
        let staged = hash_staged(d.path()).unwrap();
        assert_eq!(staged.files["variables/deep/x.bin"].sha256, "ab".repeat(32));
        assert_eq!(
            staged.files["saved_model.pb"],
            truth.files["saved_model.pb"]
        );
        assert!(!remembered(&x));
        assert_eq!(hash_staged(d.path()).unwrap(), truth);

        // A file written again (new modification time) is read, not taken from memory.
        remember_written(&x, &fs::metadata(&x).unwrap(), &[0xab; 32]);
        let f = fs::OpenOptions::new().write(true).open(&x).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(7))
            .unwrap();
        drop(f);
        assert_eq!(hash_staged(d.path()).unwrap(), truth);
    }

    #[test]
    fn a_digest_begun_at_write_is_finished_from_the_file() {
        let d = sample();
        let x = d.path().join("variables/deep/x.bin");
        let truth = hash_files(d.path()).unwrap();
        let bytes = fs::read(&x).unwrap();
        assert!(bytes.len() > 3);
        // Begun over other bytes than the file's first three, so the result shows it was used.
        let mut sha256 = Sha256::new();
        sha256.update(b"XYZ");
        let so_far = DigestSoFar { sha256, hashed: 3 };
        let file = File::open(&x).unwrap();
        let meta = file.metadata().unwrap();
        remember_written_partly(&x, file, &meta, so_far);
        let staged = hash_staged(d.path()).unwrap();
        let want = hex(&Sha256::new()
            .chain_update(b"XYZ")
            .chain_update(&bytes[3..])
            .finalize());
        assert_eq!(staged.files["variables/deep/x.bin"].sha256, want);
        assert!(!remembered(&x));

        // Changed after it was written: read whole.
        let file = File::open(&x).unwrap();
        let meta = file.metadata().unwrap();
        let so_far = DigestSoFar {
            sha256: Sha256::new().chain_update(b"XYZ"),
            hashed: 3,
        };
        remember_written_partly(&x, file, &meta, so_far);
        fs::write(&x, &bytes[..bytes.len() - 1]).unwrap();
        fs::write(&x, &bytes).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&x).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(9))
            .unwrap();
        drop(f);
        assert_eq!(hash_staged(d.path()).unwrap(), truth);
    }

    #[test]
    fn an_abandoned_staging_forgets_the_digests_of_its_files_only() {
        let root = tempfile::tempdir().unwrap();
        let other = sample();
        let y = other.path().join("variables/deep/x.bin");
        remember_written(&y, &fs::metadata(&y).unwrap(), &[0xcd; 32]);

        let staging = crate::store::Staging::begin(root.path(), "m", "weights", None).unwrap();
        let prefix = staging.path().join("ckpt");
        crate::checkpoint::write_for_artifact(&prefix, &[("a", f32s(&[1, 2, 3, 4]))]).unwrap();
        let data = crate::checkpoint::data_path(&prefix, 0, 1);
        assert!(remembered(&data));
        let dir = absolute(staging.path());
        staging.abort().unwrap();
        assert!(!written().iter().any(|w| w.path.starts_with(&dir)));
        assert!(remembered(&y)); // another directory's digest stays

        forget_written_under(other.path());
        assert!(!remembered(&y));
    }

    #[test]
    fn a_bundle_written_for_an_artifact_remembers_its_data_files_true_digest() {
        let d = tempfile::tempdir().unwrap();
        let prefix = d.path().join("variables/variables");
        let big: Vec<u8> = (0..3_000_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let small = [1u8, 2, 3, 4];
        crate::checkpoint::write_for_artifact(&prefix, &[("b", f32s(&big)), ("a", f32s(&small))])
            .unwrap();
        let data = crate::checkpoint::data_path(&prefix, 0, 1);
        assert!(remembered(&data));
        let index = crate::checkpoint::index_path(&prefix);
        assert!(!remembered(&index));
        // What hash_staged takes from memory is what reading the file gives.
        assert_eq!(
            hash_staged(d.path()).unwrap(),
            hash_files(d.path()).unwrap()
        );
        assert!(!remembered(&data));

        // A plain write remembers nothing.
        crate::checkpoint::write(&d.path().join("plain"), &[("a", f32s(&small))]).unwrap();
        assert!(!remembered(&crate::checkpoint::data_path(
            &d.path().join("plain"),
            0,
            1
        )));
    }

    /// Weights with two values large enough to be written outside libhdf5, a small one and
    /// attributes.
    fn weights_tree() -> crate::h5::H5Group<'static> {
        use crate::h5::{AttrValue, H5Dataset, H5Group, H5Node};
        let mut root = H5Group::new();
        let vars = root
            .group_mut("layers")
            .unwrap()
            .group_mut("dense")
            .unwrap();
        vars.attrs.set("name", AttrValue::Str("dense".into()));
        let big: Vec<u8> = (0..700_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let other: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i ^ 7).to_le_bytes())
            .collect();
        for (name, bytes) in [("0", big), ("1", vec![9u8; 12]), ("2", other)] {
            let tensor = crate::tensor::Tensor {
                dtype: crate::tensor::DType::F32,
                shape: vec![bytes.len() as u64 / 4],
                data: crate::tensor::TensorData::Bytes(bytes.into()),
            };
            vars.insert(name, H5Node::Dataset(H5Dataset::from_tensor(tensor)))
                .unwrap();
        }
        root
    }

    #[test]
    fn hdf5_files_and_keras_archives_written_for_an_artifact_remember_their_true_digest() {
        let d = tempfile::tempdir().unwrap();
        let tree = weights_tree();
        let h5_path = d.path().join("model.h5");
        crate::h5::write_file_for_artifact(&h5_path, &tree).unwrap();
        let keras_path = d.path().join("model.keras");
        let inputs = tempfile::tempdir().unwrap();
        let vocab = inputs.path().join("vocab.txt");
        fs::write(&vocab, b"a\nb\n").unwrap();
        let assets = [
            crate::keras_zip::Asset {
                name: "vocab.txt",
                data: crate::keras_zip::AssetData::File(&vocab),
            },
            crate::keras_zip::Asset {
                name: "extra.bin",
                data: crate::keras_zip::AssetData::Bytes(&[0, 1, 2]),
            },
        ];
        crate::keras_zip::write_archive_for_artifact(
            &keras_path,
            "{}",
            "{}",
            crate::keras_zip::WeightsSource::Tree(&tree),
            &assets,
        )
        .unwrap();
        assert!(remembered(&h5_path));
        assert!(remembered(&keras_path));
        // What hash_staged takes from memory is what reading the files gives.
        assert_eq!(
            hash_staged(d.path()).unwrap(),
            hash_files(d.path()).unwrap()
        );
        assert!(!remembered(&h5_path) && !remembered(&keras_path));
        // And the files are what the plain writers make.
        let archive = crate::keras_zip::read_archive(&keras_path).unwrap();
        assert_eq!(archive.read_weights().unwrap().attrs, tree.attrs);
        let plain = d.path().join("plain.keras");
        crate::keras_zip::write_archive(
            &plain,
            "{}",
            "{}",
            crate::keras_zip::WeightsSource::Tree(&tree),
            &assets,
        )
        .unwrap();
        assert_eq!(fs::read(&plain).unwrap(), fs::read(&keras_path).unwrap());
        assert!(!remembered(&plain));
        crate::h5::write_file(&d.path().join("plain.h5"), &tree).unwrap();
        assert_eq!(
            fs::read(d.path().join("plain.h5")).unwrap(),
            fs::read(&h5_path).unwrap()
        );
    }

    fn sample() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("saved_model.pb"), b"graph").unwrap();
        fs::create_dir_all(d.path().join("variables/deep")).unwrap();
        fs::write(d.path().join("variables/variables.index"), b"index").unwrap();
        fs::write(d.path().join("variables/deep/x.bin"), vec![7u8; 100_000]).unwrap();
        fs::write(d.path().join("empty"), b"").unwrap();
        fs::write(d.path().join(METADATA_FILE), b"{}").unwrap();
        d
    }

    #[test]
    fn known_hashes() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("abc"), b"abc").unwrap();
        fs::write(d.path().join("empty"), b"").unwrap();
        let m = hash_files(d.path()).unwrap();
        assert_eq!(
            m.files["abc"].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            m.files["empty"].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(m.files["abc"].size, 3);
        // A 9 MiB file crosses the 4 MiB read buffer twice.
        let big = vec![b'a'; 9 << 20];
        fs::write(d.path().join("big"), &big).unwrap();
        let want = hex(&Sha256::digest(&big));
        assert_eq!(hash_file(&d.path().join("big")).unwrap().sha256, want);
        assert_eq!(hash_file(&d.path().join("big")).unwrap().size, 9 << 20);
    }

    #[test]
    fn lists_files_recursively_sorted_without_metadata() {
        let d = sample();
        let m = hash_files(d.path()).unwrap();
        let keys: Vec<&str> = m.files.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "empty",
                "saved_model.pb",
                "variables/deep/x.bin",
                "variables/variables.index"
            ]
        );
        assert_eq!(m.total_size(), 5 + 5 + 100_000);
        // A nested metadata.json is an ordinary file.
        fs::write(d.path().join("variables/metadata.json"), b"x").unwrap();
        assert!(hash_files(d.path())
            .unwrap()
            .files
            .contains_key("variables/metadata.json"));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["files"]["empty"]["size"], 0);
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn verify_round_trip_and_flipped_byte() {
        let d = sample();
        let m = hash_files(d.path()).unwrap();
        let r = verify(d.path(), &m).unwrap();
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(r.ok, 4);
        r.into_result().unwrap();
        // Metadata changes never matter.
        fs::write(d.path().join(METADATA_FILE), b"{\"released\": true}").unwrap();
        assert!(verify(d.path(), &m).unwrap().is_ok());

        let p = d.path().join("variables/deep/x.bin");
        let mut bytes = fs::read(&p).unwrap();
        bytes[54_321] ^= 1;
        fs::write(&p, &bytes).unwrap();
        let r = verify(d.path(), &m).unwrap();
        assert_eq!(r.hash_mismatches.len(), 1);
        assert_eq!(r.hash_mismatches[0].path, "variables/deep/x.bin");
        assert_eq!(r.ok, 3);
        match r.into_result() {
            Err(Error::Checksum { at, detail, .. }) => {
                assert_eq!(at.0.unwrap(), p);
                assert!(detail.contains("variables/deep/x.bin: sha256"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_reports_missing_extra_and_resized() {
        let d = sample();
        let m = hash_files(d.path()).unwrap();
        fs::remove_file(d.path().join("saved_model.pb")).unwrap();
        fs::write(d.path().join("variables/new.txt"), b"surprise").unwrap();
        fs::write(d.path().join("empty"), b"now not").unwrap();
        let r = verify(d.path(), &m).unwrap();
        assert_eq!(r.missing, ["saved_model.pb"]);
        assert_eq!(r.extra, ["variables/new.txt"]);
        assert_eq!(
            r.size_mismatches,
            [SizeMismatch {
                path: "empty".into(),
                expected: 0,
                actual: 7
            }]
        );
        assert!(r.hash_mismatches.is_empty());
        assert_eq!(r.ok, 2);
        let err = r.into_result().unwrap_err();
        match &err {
            Error::Checksum { at, .. } => {
                assert_eq!(at.0.as_deref(), Some(&*d.path().join("empty")))
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        for p in [
            "empty",
            "saved_model.pb: missing",
            "variables/new.txt: not in the manifest",
        ] {
            assert!(msg.contains(p), "{msg}");
        }
    }

    #[test]
    fn symlinks_and_special_files_are_refused() {
        let d = sample();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("variables/link")).unwrap();
        let err = hash_files(d.path()).unwrap_err();
        match &err {
            Error::Format { at, msg } => {
                assert_eq!(at.0.as_deref(), Some(&*d.path().join("variables/link")));
                assert!(msg.contains("symlink"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verify(d.path(), &Manifest::default()),
            Err(Error::Format { .. })
        ));
        assert!(hash_file(&d.path().join("variables/link")).is_err());
        fs::remove_file(d.path().join("variables/link")).unwrap();
        // A link to a directory is refused too.
        std::os::unix::fs::symlink("/", d.path().join("rootlink")).unwrap();
        assert!(matches!(hash_files(d.path()), Err(Error::Format { .. })));
        fs::remove_file(d.path().join("rootlink")).unwrap();
        // A fifo.
        let fifo = d.path().join("fifo");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(matches!(hash_files(d.path()), Err(Error::Format { .. })));
        }
    }

    #[test]
    fn hostile_manifest_keys_are_refused() {
        let d = sample();
        for key in [
            "../escape",
            "/etc/passwd",
            "a//b",
            "./x",
            "",
            "metadata.json",
            "a/../../b",
        ] {
            let mut m = Manifest::default();
            m.files.insert(
                key.to_string(),
                FileEntry {
                    size: 1,
                    sha256: "00".into(),
                },
            );
            assert!(
                matches!(verify(d.path(), &m), Err(Error::Format { .. })),
                "{key:?}"
            );
        }
    }

    #[test]
    fn missing_dir_is_an_io_error() {
        let d = tempfile::tempdir().unwrap();
        let err = hash_files(&d.path().join("nope")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
