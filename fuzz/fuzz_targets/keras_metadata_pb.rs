#![no_main]
use kerasafe::{registry, savedmodel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(nodes) = savedmodel::decode_keras_metadata(data) {
        if let Ok(doc) = registry::keras_metadata_document(&nodes) {
            let _ = registry::references(&doc);
            let _ = registry::scan(&doc);
        }
    }
});
