//! Files held in memory (objects fetched from object storage), and the input type of the
//! readers that take either a path or one of them (`h5_read`, `sniff`, `keras_archive_read`),
//! so that a fetched model is read without a temporary file.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::file_bytes::FileBytes;

/// A whole file's bytes and the name (its URL) that messages give it. Immutable.
#[pyclass(frozen, module = "kerasafe._core")]
pub(crate) struct MemoryFile {
    name: String,
    bytes: FileBytes,
}

impl MemoryFile {
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub(crate) fn new(name: String, bytes: FileBytes) -> Self {
        MemoryFile { name, bytes }
    }
}

#[pymethods]
impl MemoryFile {
    /// Where the bytes came from (the URL).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Bytes held.
    #[getter]
    fn size(&self) -> usize {
        self.bytes.len()
    }

    fn __repr__(&self) -> String {
        format!("MemoryFile({:?}, {} bytes)", self.name, self.bytes.len())
    }

    /// The name: messages formatted with the file name its URL.
    fn __str__(&self) -> String {
        self.name.clone()
    }
}

/// A reader's input as Python passes it: a file held in memory, or a path.
#[derive(FromPyObject)]
pub(crate) enum Source<'py> {
    Memory(PyRef<'py, MemoryFile>),
    Path(PathBuf),
}

/// A [`Source`] detached from Python, to be read with the GIL released.
pub(crate) enum Input {
    Path(PathBuf),
    Memory { name: PathBuf, bytes: FileBytes },
}

impl Source<'_> {
    pub(crate) fn input(&self) -> Input {
        match self {
            Source::Memory(m) => Input::Memory {
                name: PathBuf::from(&m.name),
                bytes: m.bytes.clone(),
            },
            Source::Path(p) => Input::Path(p.clone()),
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MemoryFile>()
}
