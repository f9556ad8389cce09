//! The LevelDB-dialect sorted table TensorFlow uses for `PREFIX.index` (spec §1.3).
//!
//! The reader parses borrowed bytes and bounds every varint, handle and restart count before use.
//! The writer reproduces TensorFlow's `TableBuilder` exactly (256 KiB blocks, restart interval 16
//! for data and 1 for the index block, no compression), so our `.index` files are byte-identical.

use crate::error::{Error, Result};

/// Last 8 bytes of every table.
pub const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer length: two padded block handles (40 bytes) + magic.
pub const FOOTER_LEN: usize = 48;
/// TensorFlow's `block_size` for bundle indexes.
pub const BLOCK_SIZE: usize = 262_144;
const DATA_RESTART_INTERVAL: usize = 16;
const TRAILER_LEN: usize = 5;
const MASK_DELTA: u32 = 0xa282_ead8;

/// TF/LevelDB CRC masking: rotate right by 15, add a constant.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask_crc`].
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// Append `v` as a protobuf varint.
pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decode a varint of at most 10 bytes from the front of `buf`; returns the value and its length.
pub fn get_varint64(buf: &[u8]) -> Result<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().take(10).enumerate() {
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return Err(Error::format("varint overflows 64 bits"));
        }
        v |= bits << (7 * i);
        if b < 0x80 {
            return Ok((v, i + 1));
        }
    }
    Err(Error::format("truncated varint"))
}

fn get_varint32(buf: &[u8]) -> Result<(u32, usize)> {
    let (v, n) = get_varint64(buf)?;
    let v = u32::try_from(v).map_err(|_| Error::format("varint32 out of range"))?;
    Ok((v, n))
}

fn fixed32(buf: &[u8], at: usize) -> Result<u32> {
    let bytes = buf
        .get(
            at..at
                .checked_add(4)
                .ok_or_else(|| Error::format("offset overflow"))?,
        )
        .ok_or_else(|| Error::format("truncated fixed32"))?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Offset and size of a block inside the table file (size excludes the 5-byte trailer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHandle {
    /// Byte offset of the block.
    pub offset: u64,
    /// Byte size of the block contents.
    pub size: u64,
}

impl BlockHandle {
    fn encode(self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }

    fn decode(buf: &[u8]) -> Result<(BlockHandle, usize)> {
        let (offset, a) = get_varint64(buf)?;
        let (size, b) = get_varint64(&buf[a..])?;
        Ok((BlockHandle { offset, size }, a + b))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    fn new(interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            interval,
            last_key: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.interval {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        put_varint64(&mut self.buf, shared as u64);
        put_varint64(&mut self.buf, (key.len() - shared) as u64);
        put_varint64(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
    }

    /// Append the restart array and hand back the block bytes, leaving the builder empty.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.counter = 0;
        self.last_key.clear();
        out
    }
}

/// LevelDB `FindShortestSeparator` (bytewise comparator).
fn shortest_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let d = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if d < start.len().min(limit.len()) {
        let b = start[d];
        if b < 0xff && b + 1 < limit[d] {
            let mut s = start[..=d].to_vec();
            s[d] += 1;
            return s;
        }
    }
    start.to_vec()
}

/// LevelDB `FindShortSuccessor`.
fn short_successor(key: &[u8]) -> Vec<u8> {
    match key.iter().position(|&b| b != 0xff) {
        Some(i) => {
            let mut s = key[..=i].to_vec();
            s[i] += 1;
            s
        }
        None => key.to_vec(),
    }
}

/// Builds a table in memory, the way TensorFlow's `TableBuilder` does for bundle indexes.
pub struct TableWriter {
    out: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    pending: Option<BlockHandle>,
    last_key: Vec<u8>,
    entries: usize,
}

impl Default for TableWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl TableWriter {
    /// An empty table.
    pub fn new() -> Self {
        TableWriter {
            out: Vec::new(),
            data: BlockBuilder::new(DATA_RESTART_INTERVAL),
            index: BlockBuilder::new(1),
            pending: None,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Add an entry; keys must be strictly increasing.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.entries > 0 && key <= self.last_key.as_slice() {
            return Err(Error::invalid(format!(
                "table keys must be strictly increasing: {:?} after {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&self.last_key)
            )));
        }
        if self.entries > 0 && key.len() + value.len() >= 2 * BLOCK_SIZE {
            self.flush();
        }
        if let Some(handle) = self.pending.take() {
            let sep = shortest_separator(&self.last_key, key);
            let mut v = Vec::with_capacity(20);
            handle.encode(&mut v);
            self.index.add(&sep, &v);
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        if self.data.size_estimate() >= BLOCK_SIZE {
            self.flush();
        }
        Ok(())
    }

    fn write_block(&mut self, block: &[u8]) -> BlockHandle {
        let handle = BlockHandle {
            offset: self.out.len() as u64,
            size: block.len() as u64,
        };
        self.out.extend_from_slice(block);
        let crc = crc32c::crc32c_append(crc32c::crc32c(block), &[0u8]);
        self.out.push(0); // compression: none
        self.out.extend_from_slice(&mask_crc(crc).to_le_bytes());
        handle
    }

    fn flush(&mut self) {
        if self.data.is_empty() {
            return;
        }
        let block = self.data.finish();
        self.pending = Some(self.write_block(&block));
    }

    /// Flush, write the metaindex, index and footer; returns the table bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        let meta = BlockBuilder::new(DATA_RESTART_INTERVAL).finish();
        let meta_handle = self.write_block(&meta);
        if let Some(handle) = self.pending.take() {
            let succ = short_successor(&self.last_key);
            let mut v = Vec::with_capacity(20);
            handle.encode(&mut v);
            self.index.add(&succ, &v);
        }
        let index = self.index.finish();
        let index_handle = self.write_block(&index);
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        meta_handle.encode(&mut footer);
        index_handle.encode(&mut footer);
        footer.resize(40, 0);
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        self.out.extend_from_slice(&footer);
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Slice `file` at `handle` and check the block trailer (type byte and masked CRC).
fn read_block<'a>(file: &'a [u8], handle: BlockHandle, what: &str) -> Result<&'a [u8]> {
    let start = usize::try_from(handle.offset).ok();
    let end = start
        .zip(usize::try_from(handle.size).ok())
        .and_then(|(s, n)| s.checked_add(n))
        .and_then(|e| e.checked_add(TRAILER_LEN).map(|t| (e, t)));
    let (start, (end, trailer_end)) = match (start, end) {
        (Some(s), Some(e)) if e.1 <= file.len() => (s, e),
        _ => {
            return Err(Error::format(format!(
                "{what} block at offset {} size {} lies outside the {}-byte index file",
                handle.offset,
                handle.size,
                file.len()
            )))
        }
    };
    let block = &file[start..end];
    let trailer = &file[end..trailer_end];
    let stored = unmask_crc(u32::from_le_bytes([
        trailer[1], trailer[2], trailer[3], trailer[4],
    ]));
    let actual = crc32c::crc32c_append(crc32c::crc32c(block), &trailer[..1]);
    if stored != actual {
        return Err(Error::Checksum {
            at: Default::default(),
            what: format!("{what} block at offset {}", handle.offset),
            detail: format!("stored {stored:#010x}, computed {actual:#010x}"),
        });
    }
    match trailer[0] {
        0 => Ok(block),
        1 => Err(Error::format(format!(
            "{what} block at offset {} is Snappy-compressed; TensorFlow never writes those and kerasafe does not read them",
            handle.offset
        ))),
        t => Err(Error::format(format!("{what} block has unknown compression type {t}"))),
    }
}

/// Iterate the entries of one block: `(key, value)` with keys rebuilt from prefix sharing.
fn block_entries<'a>(block: &'a [u8], what: &str) -> Result<Vec<(Vec<u8>, &'a [u8])>> {
    if block.len() < 4 {
        return Err(Error::format(format!(
            "{what} block is {} bytes, too short",
            block.len()
        )));
    }
    let num_restarts = fixed32(block, block.len() - 4)? as usize;
    if num_restarts > (block.len() - 4) / 4 {
        return Err(Error::format(format!(
            "{what} block declares {num_restarts} restart points, more than fit"
        )));
    }
    let limit = block.len() - 4 * (1 + num_restarts);
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut p = 0usize;
    while p < limit {
        let body = &block[p..limit];
        let (shared, a) = get_varint32(body)?;
        let (non_shared, b) = get_varint32(&body[a..])?;
        let (value_len, c) = get_varint32(&body[a + b..])?;
        let hdr = a + b + c;
        let (shared, non_shared, value_len) =
            (shared as usize, non_shared as usize, value_len as usize);
        if shared > key.len() {
            return Err(Error::format(format!(
                "{what} block entry shares {shared} bytes with a {}-byte key",
                key.len()
            )));
        }
        let need = hdr
            .checked_add(non_shared)
            .and_then(|x| x.checked_add(value_len));
        if need.is_none_or(|n| n > body.len()) {
            return Err(Error::format(format!(
                "{what} block entry at {p} runs past the block end"
            )));
        }
        key.truncate(shared);
        key.extend_from_slice(&body[hdr..hdr + non_shared]);
        let value = &body[hdr + non_shared..hdr + non_shared + value_len];
        out.push((key.clone(), value));
        p += hdr + non_shared + value_len;
    }
    Ok(out)
}

/// All `(key, value)` pairs of a table, in order; values borrow from `file`.
pub fn read_table(file: &[u8]) -> Result<Vec<(Vec<u8>, &[u8])>> {
    if file.len() < FOOTER_LEN {
        return Err(Error::format(format!(
            "index file is {} bytes, shorter than the {FOOTER_LEN}-byte table footer (truncated?)",
            file.len()
        )));
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().expect("8 bytes"));
    if magic != MAGIC {
        return Err(Error::format(format!(
            "not a TensorFlow checkpoint index: footer magic is {magic:#018x}, expected {MAGIC:#018x}"
        )));
    }
    let (_meta, used) = BlockHandle::decode(&footer[..40])?;
    let (index_handle, _) = BlockHandle::decode(&footer[used..40])?;
    let index = read_block(file, index_handle, "index")?;
    let mut out: Vec<(Vec<u8>, &[u8])> = Vec::new();
    for (_sep, handle_bytes) in block_entries(index, "index")? {
        let (handle, _) = BlockHandle::decode(handle_bytes)?;
        let block = read_block(file, handle, "data")?;
        for (key, value) in block_entries(block, "data")? {
            if let Some((prev, _)) = out.last() {
                if key.as_slice() <= prev.as_slice() {
                    return Err(Error::format(format!(
                        "index keys are not sorted: {:?} follows {:?}",
                        String::from_utf8_lossy(&key),
                        String::from_utf8_lossy(prev)
                    )));
                }
            }
            out.push((key, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_mask_round_trips() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(mask_crc(0), 0xa282_ead8);
        for c in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(unmask_crc(mask_crc(c)), c);
        }
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            assert_eq!(get_varint64(&b).unwrap(), (v, b.len()));
        }
        assert!(get_varint64(&[0x80, 0x80]).is_err());
        assert!(get_varint64(&[0xff; 11]).is_err());
        assert!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err()
        );
    }

    #[test]
    fn separators_follow_leveldb() {
        assert_eq!(shortest_separator(b"abc", b"abe"), b"abd");
        assert_eq!(shortest_separator(b"abc", b"abd"), b"abc");
        assert_eq!(shortest_separator(b"ab", b"abc"), b"ab");
        assert_eq!(
            shortest_separator(b"model/block_02638/x", b"model/block_02639/x"),
            b"model/block_02638/x"
        );
        assert_eq!(short_successor(b"x"), b"y");
        assert_eq!(short_successor(b"optimizer/x"), b"p");
        assert_eq!(short_successor(&[0xff, 0xff]), vec![0xff, 0xff]);
        assert_eq!(short_successor(&[0xff, 0x01, 0x05]), vec![0xff, 0x02]);
    }

    #[test]
    fn empty_block_is_eight_bytes() {
        assert_eq!(BlockBuilder::new(16).finish(), vec![0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn table_round_trip_with_many_blocks() {
        let mut w = TableWriter::new();
        let big = vec![7u8; 3000];
        let keys: Vec<String> = (0..400).map(|i| format!("layer/{i:05}/kernel")).collect();
        for k in &keys {
            w.add(k.as_bytes(), &big).unwrap();
        }
        let bytes = w.finish();
        let entries = read_table(&bytes).unwrap();
        assert_eq!(entries.len(), keys.len());
        for ((k, v), want) in entries.iter().zip(&keys) {
            assert_eq!(k, want.as_bytes());
            assert_eq!(*v, &big[..]);
        }
    }

    #[test]
    fn writer_rejects_unsorted_keys() {
        let mut w = TableWriter::new();
        w.add(b"b", b"").unwrap();
        assert!(w.add(b"a", b"").is_err());
        assert!(w.add(b"b", b"").is_err());
    }

    #[test]
    fn bad_tables_are_errors() {
        let mut w = TableWriter::new();
        w.add(b"a", b"1").unwrap();
        w.add(b"b", b"2").unwrap();
        let good = w.finish();
        // Too short, wrong magic, flipped data byte, every truncation.
        assert!(matches!(read_table(&good[..20]), Err(Error::Format { .. })));
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(read_table(&bad).unwrap_err().to_string().contains("magic"));
        let mut flipped = good.clone();
        flipped[4] ^= 0x40;
        assert!(matches!(read_table(&flipped), Err(Error::Checksum { .. })));
        for n in 0..good.len() {
            assert!(read_table(&good[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn hostile_restart_count_is_rejected() {
        let mut block = vec![0u8; 8];
        block[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(block_entries(&block, "data").is_err());
        // Entry claiming a huge value length.
        let mut block = Vec::new();
        put_varint64(&mut block, 0);
        put_varint64(&mut block, 1);
        put_varint64(&mut block, u32::MAX as u64);
        block.extend_from_slice(b"k");
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
        assert!(block_entries(&block, "data").is_err());
    }
}
