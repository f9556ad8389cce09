//! Unit tests of the pure parts (chunking, attribute decoding); file round trips are in
//! `tests/h5_*.rs`.

use super::*;

#[test]
fn chunk_count_matches_keras() {
    assert_eq!(keras_chunk_count(0, 0).unwrap(), 1);
    assert_eq!(keras_chunk_count(10, 5).unwrap(), 1);
    // Spec §3.5: 1000 names of 111 bytes → two pieces of 500.
    assert_eq!(keras_chunk_count(1000, 111).unwrap(), 2);
    assert!(keras_chunk_count(1, HDF5_OBJECT_HEADER_LIMIT + 1).is_err());
    assert_eq!(keras_chunk_count(3, HDF5_OBJECT_HEADER_LIMIT).unwrap(), 3);
}

#[test]
#[cfg(feature = "h5")]
fn large_files_are_scanned_mapped_and_still_refused() {
    // From MAP_FOR_SCAN up, precheck maps the file for the global-heap scan: a collection that
    // would hang libhdf5 near the end of such a file is still found.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big.h5");
    let mut f = b"\x89HDF\r\n\x1a\n\0\0\0\0\0\x08\x08\0".to_vec();
    f.resize(MAP_FOR_SCAN as usize + 4096, 0);
    let at = f.len();
    let mut bad = b"GCOL\x01\0\0\0".to_vec();
    bad.extend(4096u64.to_le_bytes());
    bad.resize(4096, 0); // a free-space object of size 0 right after the header
    f.extend_from_slice(&bad);
    std::fs::write(&p, &f).unwrap();
    let err = precheck(&p).unwrap_err().to_string();
    assert!(
        err.contains(&format!("corrupt global heap collection at byte {at}")),
        "{err}"
    );
    // Without the bad collection it passes.
    f.truncate(at);
    std::fs::write(&p, &f).unwrap();
    assert_eq!(precheck(&p).unwrap(), at as u64);
}
