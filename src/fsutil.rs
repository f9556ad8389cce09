//! Small filesystem helpers: suffixed paths, temporary names, write-then-rename.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{IoContext, Result};

/// `path` with `suffix` appended to its last component (`ckpt` + `.index` → `ckpt.index`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// What every temporary sibling's name carries after the file name it stands in for.
const TEMP_MARK: &str = ".tempstate";

/// Whether `name` (a bare file name) is one [`temp_sibling`] makes for `path`.
pub fn is_temp_sibling_name(path: &Path, name: &str) -> bool {
    let Some(file) = path.file_name() else {
        return false;
    };
    !name.contains('/') && name.starts_with(&format!("{}{TEMP_MARK}", file.to_string_lossy()))
}

/// A name for a temporary sibling of `path` that no other writer (thread or process) picks.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    with_suffix(
        path,
        &format!("{TEMP_MARK}{}-{nanos:x}-{n}", std::process::id()),
    )
}

/// Write `path` through `fill` into a temporary sibling, then rename it into place; the
/// temporary file is removed when anything fails, so no half-written file is ever visible.
pub fn write_atomically(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let tmp = write_temp(path, fill)?;
    let renamed = std::fs::rename(&tmp, path);
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.at(path)
}

/// Fill a fresh temporary sibling of `path` and return its name (the caller renames it); the
/// temporary file is removed when `fill` fails.
pub fn write_temp(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<PathBuf> {
    let tmp = temp_sibling(path);
    let result = File::create(&tmp).and_then(|mut f| fill(&mut f));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.at(path).map(|()| tmp)
}

/// fsync a file or a directory by path.
pub fn sync_path(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).at(path)
}
