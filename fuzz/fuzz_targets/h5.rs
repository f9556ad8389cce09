#![no_main]
//! The input as an HDF5 file through the statically linked libhdf5 (slow: C library, file I/O),
//! from disk and from memory (the in-memory driver reads `.keras` members and fetched objects).
use kerasafe::h5;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = h5::read_image(std::path::Path::new("fuzz-image.h5"), data, true);
    let path = fuzz_util::write_scratch("model.h5", data);
    let _ = h5::read_structure(&path);
    if let Ok(root) = h5::read_file(&path) {
        root.walk_datasets(|_, d| {
            let _ = d.tensor();
        });
    }
});
