//! The one mapping from core errors to `kerasafe.errors` classes, and the call wrapper that
//! releases the GIL and turns panics into `KerasafeError` instead of aborting.

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::Error;

fn raise(class: &str, msg: String) -> PyErr {
    Python::attach(|py| {
        let cls = PyModule::import(py, "kerasafe.errors").and_then(|m| m.getattr(class));
        match cls {
            Ok(cls) => match cls.call1((msg.clone(),)) {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            },
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}

/// A caller error raised from the bindings themselves.
pub(crate) fn invalid(msg: String) -> PyErr {
    raise("InvalidArgumentError", msg)
}

/// Map a core error to its Python class. Exhaustive on purpose: a new variant must be placed.
pub(crate) fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    let class = match &err {
        Error::Io { source, .. } => match source.kind() {
            // The most specific class, so `except` of either not-found class (or of
            // FileNotFoundError) catches a missing model file, checkpoint or version alike.
            ErrorKind::NotFound => "ArtifactNotFoundError",
            ErrorKind::PermissionDenied => "StoragePermissionError",
            ErrorKind::AlreadyExists => "ArtifactExistsError",
            _ => "StorageError",
        },
        Error::Format { .. } => "FormatError",
        Error::Checksum { .. } => "ChecksumError",
        Error::ArtifactNotFound { .. } => "ArtifactNotFoundError",
        Error::ArtifactExists { .. } => "ArtifactExistsError",
        Error::MissingCustomObject { .. } => "MissingCustomObjectError",
        Error::Unsafe { .. } => "UnsafeArtifactError",
        Error::Validation { .. } => "ValidationError",
        Error::InvalidArgument { .. } => "InvalidArgumentError",
    };
    raise(class, msg)
}

/// Run a core call without the GIL; map its error, and a panic to `KerasafeError`.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(raise(
                "KerasafeError",
                format!("internal error (please report): {what}"),
            ))
        }
    }
}
