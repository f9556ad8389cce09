#![no_main]
use kerasafe::savedmodel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = savedmodel::decode_fingerprint(data);
});
