//! Byte counters for progress reporting, bumped by the I/O paths per chunk.
//!
//! A caller that wants progress creates a [`Counter`] and runs the core call inside
//! [`scope`]. The core's entry points (bundle write/read, HDF5 write/read, `.keras` write/read,
//! manifest hashing) pick the counter up with [`Progress::current`] on the calling thread, hand
//! it to their worker threads, add the bytes they are about to move to [`Counter::total`] and
//! bump [`Counter::done`] per chunk. Nothing else happens per chunk: two relaxed atomic adds.
//! Outside a scope, [`Progress::current`] is off and the I/O paths do what they did before
//! (whole-buffer reads and writes, no counting).
//!
//! The counter is passed through a scope rather than through every signature so that the
//! reader and writer APIs stay as they are; a reporter (the Python bindings' progress bar)
//! polls the counter from another thread.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::file_bytes::ReadAt;

/// Positional reads and writes are split into pieces of this size when progress is on.
pub const CHUNK: usize = 16 << 20;

/// Bytes done and bytes announced, shared between the I/O threads and a reporter.
#[derive(Debug, Default)]
pub struct Counter {
    done: AtomicU64,
    total: AtomicU64,
}

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes moved (written, read or hashed) so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Bytes the calls run so far announced they would move; grows as calls start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Counter>>> = const { RefCell::new(None) };
}

/// Run `f` with `counter` as the current thread's progress counter (none: progress off), then
/// restore the previous one (also when `f` panics).
pub fn scope<R>(counter: Option<Arc<Counter>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Counter>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), counter));
    let _restore = Restore(prev);
    f()
}

/// The counter an I/O path reports to, or none. Cheap to clone and to pass to worker threads.
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<Arc<Counter>>);

impl Progress {
    /// Progress off.
    pub fn off() -> Self {
        Progress(None)
    }

    /// The counter of the enclosing [`scope`] on this thread (off outside one).
    pub fn current() -> Self {
        Progress(CURRENT.with(|c| c.borrow().clone()))
    }

    /// Whether anyone is counting.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Announce `bytes` more to move.
    pub fn add_total(&self, bytes: u64) {
        if let Some(c) = &self.0 {
            c.total.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Record `bytes` moved.
    pub fn advance(&self, bytes: u64) {
        if let Some(c) = &self.0 {
            c.done.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// `write_all_at`, in [`CHUNK`]s counted as they land when progress is on.
    pub fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if !self.is_on() {
            return file.write_all_at(buf, offset);
        }
        let mut at = offset;
        for piece in buf.chunks(CHUNK) {
            file.write_all_at(piece, at)?;
            at += piece.len() as u64;
            self.advance(piece.len() as u64);
        }
        Ok(())
    }

    /// `read_exact_at`, in [`CHUNK`]s counted as they arrive when progress is on.
    pub fn read_exact_at<R: ReadAt + ?Sized>(
        &self,
        file: &R,
        buf: &mut [u8],
        offset: u64,
    ) -> std::io::Result<()> {
        if !self.is_on() {
            return file.read_exact_at(buf, offset);
        }
        let mut at = offset;
        for piece in buf.chunks_mut(CHUNK) {
            file.read_exact_at(piece, at)?;
            at += piece.len() as u64;
            self.advance(piece.len() as u64);
        }
        Ok(())
    }
}

/// A writer that counts the bytes passing through it.
pub struct CountingWriter<'p, W> {
    /// Where the bytes go.
    pub inner: W,
    /// Who hears about them.
    pub progress: &'p Progress,
}

impl<W: std::io::Write> std::io::Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_outside_a_scope_and_restored_after() {
        assert!(!Progress::current().is_on());
        let c = Arc::new(Counter::new());
        scope(Some(c.clone()), || {
            let p = Progress::current();
            assert!(p.is_on());
            p.add_total(10);
            p.advance(4);
            // Nested scopes shadow and restore.
            scope(None, || assert!(!Progress::current().is_on()));
            assert!(Progress::current().is_on());
            // Worker threads get the counter handed to them, not from their own scope.
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert!(!Progress::current().is_on());
                    p.advance(6);
                });
            });
        });
        assert!(!Progress::current().is_on());
        assert_eq!((c.done(), c.total()), (10, 10));
        Progress::off().advance(5); // no-op
    }

    #[test]
    fn restored_after_a_panic() {
        let c = Arc::new(Counter::new());
        let r = std::panic::catch_unwind(|| scope(Some(c), || panic!("boom")));
        assert!(r.is_err());
        assert!(!Progress::current().is_on());
    }

    #[test]
    fn chunked_positional_io_counts_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let data: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let c = Arc::new(Counter::new());
        let p = Progress(Some(c.clone()));
        p.write_all_at(&file, &data, 3).unwrap();
        assert_eq!(c.done(), data.len() as u64);
        let mut back = vec![0u8; data.len()];
        p.read_exact_at(&file, &mut back, 3).unwrap();
        assert_eq!(back, data);
        assert_eq!(c.done(), 2 * data.len() as u64);
        let mut w = CountingWriter {
            inner: Vec::new(),
            progress: &p,
        };
        std::io::Write::write_all(&mut w, b"hello").unwrap();
        assert_eq!(c.done(), 2 * data.len() as u64 + 5);
    }
}
