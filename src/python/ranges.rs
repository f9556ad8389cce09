//! `FileRanges`: the values that deferred reads (`h5_read`, `keras_archive_read` with
//! `deferred=True`) left in the file, read one at a time as a loader assigns them.

use numpy::PyReadwriteArray1;
use pyo3::prelude::*;

use super::errors::run;
use super::memory::{Input, Source};
use super::progress::{run_counted, ProgressCounter};
use crate::file_bytes::RangeSource;
use crate::progress::Progress;

/// A file opened (or a `MemoryFile` held) for reading byte ranges into the caller's arrays.
#[pyclass(frozen, module = "kerasafe._core")]
pub(crate) struct FileRanges {
    source: RangeSource,
}

#[pymethods]
impl FileRanges {
    #[new]
    fn new(py: Python<'_>, source: Source<'_>) -> PyResult<Self> {
        let input = source.input();
        let source = run(py, move || match input {
            Input::Path(p) => RangeSource::open(&p),
            Input::Memory { name, bytes } => Ok(RangeSource::bytes(&name, bytes)),
        })?;
        Ok(FileRanges { source })
    }

    /// Fill `out` (a contiguous uint8 array) with the bytes from `offset`, read in parallel
    /// with the GIL released; with `progress`, they are announced to it and counted. The caller
    /// allocates, so it decides the alignment (a variable can adopt a 64-byte aligned buffer).
    #[pyo3(signature = (offset, out, progress=None))]
    fn read_into(
        &self,
        py: Python<'_>,
        offset: u64,
        mut out: PyReadwriteArray1<'_, u8>,
        progress: Option<&Bound<'_, ProgressCounter>>,
    ) -> PyResult<()> {
        let buf = out.as_slice_mut().map_err(|e| {
            super::errors::invalid(format!("read_into needs a contiguous array: {e}"))
        })?;
        let source = &self.source;
        run_counted(py, progress, move || {
            let progress = Progress::current();
            progress.add_total(buf.len() as u64);
            source.read(buf, offset, &progress)
        })
    }

    /// [`read_into`](Self::read_into) for many ranges in one call: `outs[i]` from
    /// `offsets[i]`, read in parallel across the ranges. Every range is checked against the
    /// source before anything is read.
    #[pyo3(signature = (offsets, outs, progress=None))]
    fn read_many_into(
        &self,
        py: Python<'_>,
        offsets: Vec<u64>,
        mut outs: Vec<PyReadwriteArray1<'_, u8>>,
        progress: Option<&Bound<'_, ProgressCounter>>,
    ) -> PyResult<()> {
        let jobs = super::read_jobs(&offsets, &mut outs, |&offset| offset)?;
        let source = &self.source;
        run_counted(py, progress, move || {
            let progress = Progress::current();
            progress.add_total(jobs.iter().map(|(_, buf)| buf.len() as u64).sum());
            source.read_many(jobs, &progress)
        })
    }

    /// Bytes in the source.
    #[getter]
    fn size(&self) -> u64 {
        self.source.len()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileRanges>()
}
