//! Whole files as bytes: mapped from disk or fetched into memory (from object storage), and
//! positional reads that work the same on either.
//!
//! Readers that take a [`FileBytes`] (the `.keras` archive, HDF5 through libhdf5's in-memory
//! driver) need no temporary file: a stored `.keras` member is read where it lies.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;

/// Positional reads, from a file or from bytes in memory.
pub trait ReadAt: Sync {
    /// Fill `buf` from `offset`; `UnexpectedEof` if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// The `n` bytes at `offset` where they already lie in memory (bytes, a mapped file), for
    /// scans that need not copy them; `None` when they must be read.
    fn bytes_at(&self, _offset: u64, _n: usize) -> Option<&[u8]> {
        None
    }

    /// A one-pass reader is done with these bytes (see [`ScanMap`]).
    fn passed(&self, _offset: u64, _n: usize) {}
}

/// A file mapped read-only for one pass over its bytes (the HDF5 guard's scan): bytes are
/// scanned where they lie, and pages the pass is done with leave the process again (the page
/// cache keeps them), so scanning a 1 GB file does not raise the RSS by 1 GB. The mapping's
/// one hazard is [`FileBytes`]'s: another process truncating the file meanwhile.
pub struct ScanMap(Mmap);

impl ScanMap {
    /// Map the file at `path` read-only.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self(map_read_only(path)?))
    }
}

impl ReadAt for ScanMap {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0[..].read_exact_at(buf, offset)
    }

    fn bytes_at(&self, offset: u64, n: usize) -> Option<&[u8]> {
        self.0[..].bytes_at(offset, n)
    }

    fn passed(&self, offset: u64, n: usize) {
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        if offset.checked_add(n).is_some_and(|end| end <= self.0.len()) {
            // SAFETY: dropping pages of a read-only private file mapping only unmaps them; a
            // later access maps the file's bytes again. Advice only: failure changes nothing.
            let _ = unsafe {
                self.0
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, n)
            };
        }
    }
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn bytes_at(&self, offset: u64, n: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(n)?)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// The file at `path`, mapped read-only (for [`FileBytes`] and [`ScanMap`]).
fn map_read_only(path: &Path) -> Result<Mmap> {
    let file = File::open(path).at(path)?;
    // SAFETY: the mapping is read-only and private to this process; see `FileBytes`'s docs for
    // the one hazard (another process truncating the file underneath), which Rust cannot rule
    // out for any mapping.
    unsafe { Mmap::map(&file) }.at(path)
}

enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

/// The bytes of one whole file, cheap to clone and shareable across threads.
///
/// A mapped file must not be truncated by another process while it is read (the kernel would
/// raise SIGBUS); kerasafe never rewrites a file in place, it renames new ones over old ones,
/// which leaves the mapped bytes intact.
#[derive(Clone)]
pub struct FileBytes(Arc<Backing>);

impl FileBytes {
    /// Map the file at `path` read-only.
    pub fn map(path: &Path) -> Result<Self> {
        Ok(Self(Arc::new(Backing::Mapped(map_read_only(path)?))))
    }

    /// Whether the bytes are a mapped file (rather than fetched into memory).
    pub fn is_mapped(&self) -> bool {
        matches!(*self.0, Backing::Mapped(_))
    }

    /// Bytes already in memory (an object fetched from object storage).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Backing::Owned(bytes)))
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &*self.0 {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

/// Bytes per piece of the parallel passes below: large enough that one pread or one CRC call
/// dominates the scheduling, small enough to spread a 100 MB tensor over the cores.
const PIECE: usize = 16 << 20;

/// Fill `buf` from `source` at `offset`, in pieces read in parallel; each counts as progress.
pub fn read_exact_parallel(
    source: &(impl ReadAt + ?Sized),
    buf: &mut [u8],
    offset: u64,
    progress: &Progress,
) -> io::Result<()> {
    use rayon::prelude::*;
    buf.par_chunks_mut(PIECE)
        .enumerate()
        .try_for_each(|(i, piece)| {
            populate(piece);
            progress.read_exact_at(source, piece, offset + (i * PIECE) as u64)
        })
}

/// Map the pages under `buf`, about to be overwritten whole, in one call: a fresh buffer's
/// pages were otherwise faulted in one at a time while the read copied into them (1.16 GB read
/// into fresh 4 KiB pages, 2 cores: 0.46-0.49 s before, 0.39-0.41 s with this done from one
/// thread). Advice only: kernels before 5.14 refuse it and nothing changes.
#[cfg(target_os = "linux")]
fn populate(buf: &mut [u8]) {
    let page = 4096usize;
    let addr = buf.as_mut_ptr() as usize;
    let start = addr.next_multiple_of(page);
    let end = (addr + buf.len()) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside `buf`, which we hold mutably and are about to
        // overwrite; MADV_POPULATE_WRITE only maps its pages (as a write to each would).
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn populate(_buf: &mut [u8]) {}

/// A file kept open (or bytes held in memory) from which byte ranges are read on demand: the
/// values of datasets a reader deferred ([`crate::h5::Values::Defer`]), read one at a time as
/// a loader assigns them, so that no more than one is held at once.
///
/// An open file keeps reading the bytes it was opened on even if a new file is renamed over
/// its path meanwhile.
pub struct RangeSource {
    name: PathBuf,
    len: u64,
    backing: RangeBacking,
}

enum RangeBacking {
    File(File),
    Bytes(FileBytes),
}

impl RangeSource {
    /// The file at `path`, opened now.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        Ok(Self {
            name: path.to_path_buf(),
            len,
            backing: RangeBacking::File(file),
        })
    }

    /// Bytes already held (a fetched object); `name` names them in messages.
    pub fn bytes(name: &Path, bytes: FileBytes) -> Self {
        Self {
            name: name.to_path_buf(),
            len: bytes.len() as u64,
            backing: RangeBacking::Bytes(bytes),
        }
    }

    /// Bytes in the source.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the source holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the `len` bytes from `offset` lie inside the source; if not, a format error
    /// naming it (the offsets come from a file).
    pub fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::format_in(
                &self.name,
                format!(
                    "{len} bytes at offset {offset} reach past the end ({} bytes)",
                    self.len
                ),
            ));
        }
        Ok(())
    }

    /// [`read`](Self::read) for many ranges, in parallel across them as well as within each;
    /// every range is checked before the first byte is read.
    pub fn read_many(&self, jobs: Vec<(u64, &mut [u8])>, progress: &Progress) -> Result<()> {
        use rayon::prelude::*;
        for (offset, buf) in &jobs {
            self.check_range(*offset, buf.len() as u64)?;
        }
        jobs.into_par_iter()
            .try_for_each(|(offset, buf)| self.read(buf, offset, progress))
    }

    /// Fill `buf` with the bytes from `offset` ([`Self::check_range`] first), counting them
    /// as progress.
    pub fn read(&self, buf: &mut [u8], offset: u64, progress: &Progress) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        let end = offset + buf.len() as u64;
        match &self.backing {
            RangeBacking::File(f) => read_exact_parallel(f, buf, offset, progress),
            RangeBacking::Bytes(b) => read_exact_parallel(&**b, buf, offset, progress),
        }
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::format_in(
                &self.name,
                format!("the file ends before byte {end}: it was cut short while being read"),
            ),
            _ => Error::io(&self.name, e),
        })
    }
}

/// CRC-32 (zip's) of `bytes`, in parallel pieces combined; each piece counts as progress.
pub fn zip_crc32(bytes: &[u8], progress: &Progress) -> u32 {
    crc32_state(bytes, progress).finalize()
}

/// [`zip_crc32`] as a CRC state, which [`crc32fast::Hasher::combine`] can join with the states
/// of the bytes before and after it.
pub fn crc32_state(bytes: &[u8], progress: &Progress) -> crc32fast::Hasher {
    use rayon::prelude::*;
    let hashers = bytes
        .par_chunks(PIECE)
        .map(|piece| piece_crc(piece, progress))
        .collect::<Vec<_>>();
    combined(hashers)
}

/// [`zip_crc32`] of the `len` bytes of `file` from `start`, read in pieces (a mapping would
/// count the whole file as the process's memory).
pub fn file_crc32(file: &File, start: u64, len: u64, progress: &Progress) -> io::Result<u32> {
    file_crc32_state(file, start, len, progress).map(crc32fast::Hasher::finalize)
}

/// [`file_crc32`] as a CRC state (see [`crc32_state`]).
pub fn file_crc32_state(
    file: &File,
    start: u64,
    len: u64,
    progress: &Progress,
) -> io::Result<crc32fast::Hasher> {
    use rayon::prelude::*;
    let piece_len = PIECE as u64;
    let pieces = len.div_ceil(piece_len);
    let hashers = (0..pieces)
        .into_par_iter()
        .map_init(Vec::new, |buf, i| {
            let at = i * piece_len;
            buf.resize((len - at).min(piece_len) as usize, 0);
            ReadAt::read_exact_at(file, buf, start + at)?;
            Ok(piece_crc(buf, progress))
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(combined(hashers))
}

/// The CRC state of one piece, counted as progress.
fn piece_crc(piece: &[u8], progress: &Progress) -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(piece);
    progress.advance(piece.len() as u64);
    h
}

/// The CRC state of the pieces' concatenation, in order.
fn combined(pieces: Vec<crc32fast::Hasher>) -> crc32fast::Hasher {
    pieces
        .into_iter()
        .reduce(|mut a, b| {
            a.combine(&b);
            a
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_at_like_files() {
        let data: &[u8] = b"0123456789";
        let mut buf = [0u8; 3];
        data.read_exact_at(&mut buf, 7).unwrap();
        assert_eq!(&buf, b"789");
        let err = data.read_exact_at(&mut buf, 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(data.read_exact_at(&mut buf, u64::MAX).is_err());
    }

    #[test]
    fn parallel_crc_matches_one_pass() {
        let data: Vec<u8> = (0..40_000_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        let mut h = crc32fast::Hasher::new();
        h.update(&data);
        let whole = h.finalize();
        assert_eq!(zip_crc32(&data, &Progress::off()), whole);
        assert_eq!(zip_crc32(&[], &Progress::off()), 0);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(
            file_crc32(&f, 0, data.len() as u64, &Progress::off()).unwrap(),
            whole
        );
        let mut tail = crc32fast::Hasher::new();
        tail.update(&data[1000..]);
        assert_eq!(
            file_crc32(&f, 1000, data.len() as u64 - 1000, &Progress::off()).unwrap(),
            tail.finalize()
        );
    }

    #[test]
    fn mapped_and_owned_bytes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(&*FileBytes::map(&p).unwrap(), b"hello");
        assert_eq!(&*FileBytes::from_vec(b"hello".to_vec()), b"hello");
        let empty = dir.path().join("e");
        std::fs::write(&empty, b"").unwrap();
        assert!(FileBytes::map(&empty).unwrap().is_empty());
    }
}
