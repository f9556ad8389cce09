//! Inputs the fuzz targets (`fuzz/`) found, kept under `tests/corpus/regressions/`: each must be
//! refused with an error — no panic, no hang, no huge allocation.

use std::path::{Path, PathBuf};

use kerasafe::{h5, Error};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/regressions")
}

/// Both reads of the regression file `name` fail with a format error whose message names the
/// file and contains each of `needles`.
fn assert_format_error(name: &str, needles: &[&str]) {
    let path = regressions().join(name);
    for read in [h5::read_structure, h5::read_file] {
        match read(&path) {
            Err(e @ Error::Format { .. }) => {
                let text = e.to_string();
                assert!(text.contains(name), "{text}");
                for needle in needles {
                    assert!(text.contains(needle), "{text}");
                }
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }
}

/// Peak resident memory of this process (`VmHWM`), in KiB; `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An 11 KB HDF5 file whose variable-length string attribute declares a sequence length near
/// 4 GiB: libhdf5 allocated and zeroed that much before noticing the heap object is short
/// (4.2 GB peak RSS, 9 s). The lengths are now read raw and refused first.
#[test]
fn h5_vlen_attribute_with_a_4gib_length_is_refused_cheaply() {
    let path = regressions().join("h5_vlen_attr_4gib_length.h5");
    for read in [h5::read_structure, h5::read_file] {
        match read(&path) {
            Err(Error::Format { msg, .. }) => assert!(
                msg.contains("more than the file holds"),
                "unexpected message: {msg}"
            ),
            other => panic!("expected a format error, got {other:?}"),
        }
    }
    if let Some(peak) = peak_rss_kib() {
        assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
    }
}

/// An 11 KB HDF5 file whose metadata declares a 40 GB cache entry: libhdf5 mallocs the size
/// before reading. The request fails (or stays untouched under overcommit) and the open must
/// end in a format error naming the file, without using the memory.
#[test]
fn h5_metadata_entry_with_a_40gib_size_is_a_format_error() {
    assert_format_error("h5_metadata_entry_40gib_size.h5", &[]);
    if let Some(peak) = peak_rss_kib() {
        assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
    }
}

/// An 11 KB HDF5 file whose string attribute message stores 15 bytes for an element that needs
/// 16: libhdf5's `H5Aread` copied 16 bytes out of the 15-byte buffer (a heap over-read that
/// AddressSanitizer reported in `H5A__read`). The stored size is now checked before the read.
#[test]
fn h5_attribute_with_short_stored_data_is_refused_before_libhdf5_reads_it() {
    assert_format_error(
        "h5_attr_data_shorter_than_type.h5",
        &["stores 15 bytes, but its type and shape need 16"],
    );
}

/// A 16 KB HDF5 file whose compound type has a member reaching outside the compound: libhdf5
/// refuses the object (and leaks 4 bytes doing so, see fuzz/lsan.supp); the read must be a format
/// error naming the file and the object.
#[test]
fn h5_compound_member_outside_its_parent_is_a_format_error() {
    assert_format_error("h5_compound_member_outside_parent.h5", &["/c128"]);
}

/// A 1.4 KB HDF5 file whose dataset has a filter pipeline and then a fill-value message of an
/// unknown version: libhdf5 refuses to open the dataset (and leaks the 256 bytes of the pipeline
/// copy it had made, see fuzz/lsan.supp; found by the h5 target in CI on 2026-11-27); the read
/// must be a format error naming the file, the dataset and the cause.
#[test]
fn h5_fill_value_of_unknown_version_is_a_format_error() {
    assert_format_error(
        "h5_fill_value_bad_version_after_filters.h5",
        &["/x", "fill value"],
    );
}
