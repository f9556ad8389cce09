#![no_main]
//! `BundleReader::from_index_bytes`, then every read path against a data file holding the same
//! bytes (so offsets, sizes and CRCs in the index point at attacker-chosen data too).
use kerasafe::checkpoint::{self, BundleReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prefix = fuzz_util::scratch_dir().join("ckpt");
    let Ok(reader) = BundleReader::from_index_bytes(&prefix, data) else {
        return;
    };
    let n = reader.num_shards();
    for shard in 0..n.min(4) {
        fuzz_util::write_scratch(
            checkpoint::data_path(&prefix, shard, n)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
            data,
        );
    }
    let names: Vec<String> = reader.entries().take(32).map(|e| e.name.clone()).collect();
    for name in &names {
        let e = reader.entry(name).unwrap();
        let _ = e.dtype_name();
        let _ = reader.read(name);
        let _ = reader.read_raw(name);
        let _ = reader.read_strings(name);
    }
});
