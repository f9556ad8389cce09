#![no_main]
use kerasafe::checkpoint::sstable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = sstable::read_table(data) {
        // Keys come back sorted and unique or the table is refused; re-encoding must then work.
        let mut w = sstable::TableWriter::new();
        for (k, v) in &rows {
            w.add(k, v)
                .expect("read_table returned keys the writer refuses");
        }
        let bytes = w.finish();
        let again = sstable::read_table(&bytes).expect("re-encoded table does not parse");
        assert_eq!(again.len(), rows.len());
    }
    let _ = sstable::get_varint64(data);
});
