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
