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
    for m in archive.members.iter().take(8) {
        let _ = archive.read_member(&m.name);
    }
    let assets = fuzz_util::scratch_dir().join("assets");
    let _ = std::fs::remove_dir_all(&assets);
    let _ = archive.extract_assets(&assets);
});
