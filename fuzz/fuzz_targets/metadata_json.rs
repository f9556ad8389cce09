#![no_main]
//! An artifact version's `metadata.json`: size/link checks, JSON, the manifest, verification
//! against a directory holding only that file.
use kerasafe::store::{manifest, metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = fuzz_util::scratch_dir().join("version");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(metadata::METADATA_FILE);
    std::fs::write(&path, data).unwrap();
    let Ok(value) = metadata::read(&dir) else {
        return;
    };
    let _ = metadata::to_bytes(&value);
    if let Ok(m) = metadata::manifest_of(&path, &value) {
        let _ = m.total_size();
        if let Ok(report) = manifest::verify(&dir, &m) {
            let _ = report.problems();
        }
    }
});
