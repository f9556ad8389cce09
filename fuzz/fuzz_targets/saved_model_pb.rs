#![no_main]
use kerasafe::savedmodel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sm) = savedmodel::decode_saved_model(data) {
        for m in &sm.meta_graphs {
            let _ = savedmodel::meta_graph_info(m);
        }
    }
});
