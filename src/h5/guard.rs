//! A pre-check for a libhdf5 hang on crafted files.
//!
//! libhdf5 (seen in 2.2.0, the bundled version; the same loop is in 1.14) walks the objects of a
//! global heap collection (`GCOL`, where variable-length strings live) with
//! `p = begin + need`, where `need` is the free-space object's size, or `16 + ALIGN8(size)` for
//! other objects, computed in wrapping `size_t` arithmetic. A zero `need` (a free-space object of
//! size 0, or a size that wraps the sum to 0) never advances `p`; a "negative" one moves it
//! backwards into a cycle. Either way the read spins forever while holding the library lock.
//!
//! libhdf5 reads a collection only where a variable-length reference points, and any byte of the
//! file can be such a target, so every `GCOL` signature in the file is checked: its walk is
//! simulated with libhdf5's own rules and the file is refused if the walk would not advance.
//! The scan reads the file once, in chunks scanned in parallel.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::file_bytes::ReadAt;

/// libhdf5's `H5HG_MINSIZE`: smaller collections are rejected by libhdf5 itself.
const MIN_COLLECTION: u64 = 4096;
/// Object headers simulated per file at most; far above what Keras files hold.
const MAX_STEPS: u64 = 10_000_000;
/// Read size of the scan.
const CHUNK: usize = 8 << 20;

fn align8(x: u64) -> u64 {
    // H5HG_ALIGN in size_t arithmetic: 8 * ((x + 7) / 8), wrapping.
    (x.wrapping_add(7) / 8).wrapping_mul(8)
}

/// Read `n ≤ 8` little-endian bytes as an integer (libhdf5's length decoding keeps the low
/// 64 bits).
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Positional reads through a small window.
struct Window<'f, R: ReadAt + ?Sized> {
    file: &'f R,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<R: ReadAt + ?Sized> Window<'_, R> {
    /// `n` bytes at `off`, or `None` past the end of the file.
    fn get(&mut self, off: u64, n: usize) -> io::Result<Option<&[u8]>> {
        let end = match off.checked_add(n as u64) {
            Some(e) if e <= self.len => e,
            _ => return Ok(None),
        };
        if off < self.start || end > self.start + self.buf.len() as u64 {
            let want = (64 << 10).max(n).min((self.len - off) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, off)?;
            self.start = off;
        }
        let i = (off - self.start) as usize;
        Ok(Some(&self.buf[i..i + n]))
    }
}

/// What the check found.
pub(super) enum Verdict {
    Fine,
    /// A collection at this file offset would hang libhdf5.
    Hang(u64),
    /// Too many heap objects to check (no real file has that many).
    TooMany,
}

/// Check every global heap collection in `file` (signature at `base`, `len` bytes).
pub(super) fn check_global_heaps(
    file: &(impl ReadAt + ?Sized),
    len: u64,
    base: u64,
) -> io::Result<Verdict> {
    // Superblock: version at +8; "size of lengths" at +14 (versions 0, 1) or +10 (2, 3).
    let mut sb = [0u8; 16];
    if base + 16 > len {
        return Ok(Verdict::Fine);
    }
    file.read_exact_at(&mut sb, base)?;
    let size_len = u64::from(if sb[8] < 2 { sb[14] } else { sb[10] });
    if !matches!(size_len, 2 | 4 | 8 | 16 | 32) {
        return Ok(Verdict::Fine); // libhdf5 refuses such a superblock itself
    }
    let header = align8(8 + size_len);
    let obj_header = align8(8 + size_len);

    let steps = AtomicU64::new(0);
    let stride = (CHUNK - 3) as u64; // chunks overlap by 3 bytes: a signature across two is seen
    let chunks = len.div_ceil(stride).max(1);
    // Chunks are scanned in parallel (the scan reads the whole file, so it bounds how fast a
    // large file opens); the first bad collection by offset is the one reported.
    let found = (0..chunks).into_par_iter().map_init(
        || (vec![0u8; CHUNK], memchr::memmem::Finder::new(b"GCOL")),
        |(chunk, finder), i| -> io::Result<Option<Verdict>> {
            let pos = i * stride;
            if pos >= len {
                return Ok(None);
            }
            let n = (CHUNK as u64).min(len - pos) as usize;
            let bytes = match file.bytes_at(pos, n) {
                Some(bytes) => bytes, // scanned where it lies: no copy
                None => {
                    file.read_exact_at(&mut chunk[..n], pos)?;
                    &chunk[..n]
                }
            };
            let mut window = Window {
                file,
                len,
                start: 0,
                buf: Vec::new(),
            };
            for hit in finder.find_iter(bytes) {
                let at = pos + hit as u64;
                match walk(&mut window, at, size_len, header, obj_header, &steps)? {
                    Verdict::Fine => {}
                    other => return Ok(Some(other)),
                }
            }
            file.passed(pos, n);
            Ok(None)
        },
    );
    match found.find_map_first(|r| match r {
        Ok(None) => None,
        other => Some(other),
    }) {
        Some(Ok(Some(verdict))) => Ok(verdict),
        Some(Err(e)) => Err(e),
        Some(Ok(None)) | None => Ok(Verdict::Fine),
    }
}

/// Simulate libhdf5's walk over the collection whose signature is at `at`.
fn walk(
    w: &mut Window<'_, impl ReadAt + ?Sized>,
    at: u64,
    size_len: u64,
    header: u64,
    obj_header: u64,
    steps: &AtomicU64,
) -> io::Result<Verdict> {
    let Some(h) = w.get(at, (8 + size_len) as usize)? else {
        return Ok(Verdict::Fine);
    };
    if h[4] != 1 {
        return Ok(Verdict::Fine); // wrong version: libhdf5 errors out
    }
    let size = le(&h[8..]);
    let fits = matches!(at.checked_add(size), Some(e) if e <= w.len);
    if size < MIN_COLLECTION || !fits {
        return Ok(Verdict::Fine); // libhdf5 errors out (too small, or cannot be read)
    }
    let mut p = header;
    while p < size {
        if steps.fetch_add(1, Ordering::Relaxed) >= MAX_STEPS {
            return Ok(Verdict::TooMany);
        }
        if p + obj_header > size {
            break; // trailing free space: libhdf5 jumps to the end
        }
        let Some(o) = w.get(at + p, (8 + size_len) as usize)? else {
            return Ok(Verdict::Fine);
        };
        let idx = u16::from_le_bytes([o[0], o[1]]);
        let obj_size = le(&o[8..]);
        let need = if idx > 0 {
            obj_header.wrapping_add(align8(obj_size))
        } else {
            obj_size
        };
        // Zero never advances; a value with the top bit set is a negative step once libhdf5's
        // pointer arithmetic wraps. Both can loop forever.
        if need == 0 || need >= 1 << 63 {
            return Ok(Verdict::Hang(at));
        }
        match p.checked_add(need) {
            Some(next) if next <= size => p = next,
            _ => return Ok(Verdict::Fine), // libhdf5: "ran off end of input buffer"
        }
    }
    Ok(Verdict::Fine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn collection(objects: &[(u16, u64)]) -> Vec<u8> {
        let mut c = b"GCOL\x01\0\0\0".to_vec();
        c.extend(4096u64.to_le_bytes());
        for &(idx, size) in objects {
            c.extend(idx.to_le_bytes());
            c.extend(1u16.to_le_bytes());
            c.extend([0; 4]);
            c.extend(size.to_le_bytes());
            if idx > 0 {
                c.extend(vec![b'x'; align8(size) as usize]);
            }
        }
        let free = 4096 - c.len() as u64;
        if free >= 16 {
            c.extend(0u16.to_le_bytes());
            c.extend([0; 6]);
            c.extend(free.to_le_bytes());
        }
        c.resize(4096, 0);
        c
    }

    fn verdict(bytes: &[u8]) -> Verdict {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        // A version-0 superblock stub with 8-byte lengths, then the collection.
        let mut f = b"\x89HDF\r\n\x1a\n\0\0\0\0\0\x08\x08\0".to_vec();
        f.extend_from_slice(bytes);
        std::fs::write(&p, &f).unwrap();
        let file = File::open(&p).unwrap();
        let read = check_global_heaps(&file, f.len() as u64, 0).unwrap();
        // The same bytes in memory are scanned where they lie (`bytes_at`), without the copy.
        let in_place = check_global_heaps(&f[..], f.len() as u64, 0).unwrap();
        assert_eq!(describe(&read), describe(&in_place));
        read
    }

    fn describe(v: &Verdict) -> String {
        match v {
            Verdict::Fine => "fine".into(),
            Verdict::Hang(at) => format!("hang at {at}"),
            Verdict::TooMany => "too many".into(),
        }
    }

    #[test]
    fn good_collections_pass() {
        assert!(matches!(
            verdict(&collection(&[(1, 5), (2, 300)])),
            Verdict::Fine
        ));
        assert!(matches!(verdict(b"no heaps here"), Verdict::Fine));
    }

    #[test]
    fn chunk_boundaries_and_order() {
        // Two bad collections in different chunks, the first's signature straddling the end of
        // the first chunk (2 + 2 bytes): the first by offset is the one reported.
        let mut bad = collection(&[]);
        bad[16..32].fill(0);
        let first = CHUNK - 2; // a file offset (the body starts after a 16-byte superblock stub)
        let mut body = vec![0u8; first - 16];
        body.extend_from_slice(&bad);
        body.resize(3 * CHUNK, 0);
        body.extend_from_slice(&bad);
        assert!(matches!(verdict(&body), Verdict::Hang(at) if at == first as u64));
        // Only the later one bad: found in its own chunk.
        let mut good = collection(&[(1, 5)]);
        good.truncate(4096);
        body[first - 16..first - 16 + 4096].copy_from_slice(&good);
        assert!(matches!(verdict(&body), Verdict::Hang(at) if at == 3 * CHUNK as u64 + 16));
    }

    #[test]
    fn non_advancing_walks_are_caught() {
        // A free-space object of size 0 right after the header.
        let mut c = collection(&[]);
        c[16..32].fill(0);
        assert!(matches!(verdict(&c), Verdict::Hang(16)));
        // An object whose size makes 16 + ALIGN8(size) wrap to zero.
        let mut c = collection(&[(1, 5)]);
        c[24..32].copy_from_slice(&(u64::MAX - 20).to_le_bytes());
        assert!(matches!(verdict(&c), Verdict::Hang(16)));
        // A negative step.
        let mut c = collection(&[(1, 5)]);
        c[24..32].copy_from_slice(&(u64::MAX - 100).to_le_bytes());
        assert!(matches!(verdict(&c), Verdict::Hang(16)));
    }
}
