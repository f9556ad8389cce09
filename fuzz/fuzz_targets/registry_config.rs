#![no_main]
//! A Keras config (`config.json`, `model_config` attribute): JSON with NaN/Infinity, then the
//! reference walk and the safe-mode scan.
use kerasafe::registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = registry::parse_config(text) {
        let refs = registry::references(&v);
        for r in &refs {
            let _ = registry::unsafe_reference(r);
        }
        let findings = registry::scan(&v);
        let _ = registry::unsafe_message(&findings);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = registry::scan(&v);
    }
});
