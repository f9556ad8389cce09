//! Helpers shared by the fuzz targets: a private scratch directory per process.

use std::path::PathBuf;
use std::sync::OnceLock;

/// A directory under the system temp dir owned by this fuzzing process (created once, reused
/// by every input; targets overwrite their files each time).
pub fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("kerasafe-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create scratch dir");
        d
    })
}

/// Write `data` to `name` inside the scratch directory and return its path.
pub fn write_scratch(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch_dir().join(name);
    std::fs::write(&p, data).expect("write scratch file");
    p
}
