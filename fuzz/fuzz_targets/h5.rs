#![no_main]
//! The input as an HDF5 file through the statically linked libhdf5 (slow: C library, file I/O),
//! from disk and from memory (the in-memory driver reads `.keras` members and fetched objects).
use kerasafe::file_bytes::{FileBytes, RangeSource};
use kerasafe::h5;
use kerasafe::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = std::path::Path::new("fuzz-image.h5");
    let _ = h5::read_image(name, data, h5::Values::All);
    // Deferred values are then read by offset, as a loader reads them.
    if let Ok(root) = h5::read_image(name, data, h5::Values::Deferred) {
        let source = RangeSource::bytes(name, FileBytes::from_vec(data.to_vec()));
        root.walk_datasets(|_, d| {
            let (Some(storage), None) = (&d.storage, &d.data) else {
                return;
            };
            if let (Some(at), Ok(n)) = (storage.raw_offset, kerasafe::tensor::byte_size(d.dtype, &d.shape)) {
                let mut buf = vec![0; n.min(1 << 24) as usize];
                let _ = source.read(&mut buf, at, &Progress::current());
            }
        });
    }
    let path = fuzz_util::write_scratch("model.h5", data);
    let _ = h5::read_structure(&path);
    if let Ok(root) = h5::read_file(&path) {
        root.walk_datasets(|_, d| {
            let _ = d.tensor();
        });
    }
});
