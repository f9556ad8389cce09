#![no_main]
//! The input as a `.keras` file: open and validate, parse the config, read the weights structure.
use kerasafe::{keras_zip, registry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = fuzz_util::write_scratch("model.keras", data);
    let Ok(archive) = keras_zip::read_archive(&path) else {
        return;
    };
    if let Ok(config) = registry::parse_config(&archive.config_json) {
        let _ = registry::scan(&config);
    }
    let _ = archive.read_weights_structure();
    let _ = archive.read_weights();
    // Deferred values are then read by their offsets into the archive, as a loader reads them.
    if let (Ok(tree), Ok(source)) = (
        archive.read_weights_deferred(),
        kerasafe::file_bytes::RangeSource::open(&path),
    ) {
        tree.walk_datasets(|_, d| {
            let (Some(at), None) = (d.storage.as_ref().and_then(|s| s.raw_offset), &d.data) else {
                return;
            };
            if let Ok(n) = kerasafe::tensor::byte_size(d.dtype, &d.shape) {
                let mut buf = vec![0; n.min(1 << 24) as usize];
                let _ = source.read(&mut buf, at, &kerasafe::progress::Progress::current());
            }
        });
    }
    for m in archive.members.iter().take(8) {
        let _ = archive.read_member(&m.name);
    }
    let assets = fuzz_util::scratch_dir().join("assets");
    let _ = std::fs::remove_dir_all(&assets);
    let _ = archive.extract_assets(&assets);
});
