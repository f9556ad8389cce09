//! Bindings for the artifact store and output comparison. Structured results cross as JSON.

use std::path::PathBuf;
use std::sync::Mutex;

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

use super::errors::{self, run};
use super::progress::{run_counted, ProgressCounter};
use crate::error::IoContext;
use crate::store::{self, manifest, metadata, Staging};
use crate::tensor::{DType, Tensor};
use crate::validate::{self, Tolerance};

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| errors::invalid(format!("cannot serialize result: {e}")))
}

fn parse_json(text: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| errors::invalid(format!("metadata is not valid JSON: {e}")))
}

/// A version being written: a temporary directory, published by `commit`.
#[pyclass(frozen, module = "kerasafe._core")]
struct StagedVersion {
    inner: Mutex<Option<Staging>>,
    path: PathBuf,
}

#[pymethods]
impl StagedVersion {
    /// The temporary directory to write the artifact's files into.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Hash every file, write `metadata.json` (with the manifest) and publish atomically.
    /// Returns the published version as JSON.
    #[pyo3(signature = (metadata_json, progress=None))]
    fn commit(
        &self,
        py: Python<'_>,
        metadata_json: String,
        progress: Option<&Bound<'_, ProgressCounter>>,
    ) -> PyResult<String> {
        let meta = parse_json(&metadata_json)?;
        let staging = self
            .inner
            .lock()
            .map_err(|_| errors::invalid("staging lock poisoned".into()))?
            .take()
            .ok_or_else(|| {
                errors::invalid("this version was already committed or aborted".into())
            })?;
        let published = run_counted(py, progress, || staging.commit(meta))?;
        json(&published)
    }

    /// Remove the temporary directory without publishing.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| errors::invalid("staging lock poisoned".into()))?
            .take();
        match taken {
            Some(s) => run(py, || s.abort()),
            None => Ok(()),
        }
    }
}

#[pyfunction]
#[pyo3(signature = (root, name, format, version=None))]
fn store_begin(
    py: Python<'_>,
    root: PathBuf,
    name: String,
    format: String,
    version: Option<String>,
) -> PyResult<StagedVersion> {
    let staging = run(py, || {
        Staging::begin(&root, &name, &format, version.as_deref())
    })?;
    let path = staging.path().to_path_buf();
    Ok(StagedVersion {
        inner: Mutex::new(Some(staging)),
        path,
    })
}

#[pyfunction]
#[pyo3(signature = (root, name, format=None))]
fn store_list_versions(
    py: Python<'_>,
    root: PathBuf,
    name: String,
    format: Option<String>,
) -> PyResult<String> {
    json(&run(py, || {
        store::list_versions(&root, &name, format.as_deref())
    })?)
}

#[pyfunction]
#[pyo3(signature = (root, name, format, spec))]
fn store_resolve(
    py: Python<'_>,
    root: PathBuf,
    name: String,
    format: Option<String>,
    spec: String,
) -> PyResult<PathBuf> {
    run(py, || {
        store::resolve(&root, &name, format.as_deref(), &spec)
    })
}

/// Check a version directory against the manifest in its metadata; returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (dir, progress=None))]
fn store_verify(
    py: Python<'_>,
    dir: PathBuf,
    progress: Option<&Bound<'_, ProgressCounter>>,
) -> PyResult<String> {
    json(&run_counted(py, progress, || store::verify_version(&dir))?)
}

/// Like `store_verify`, but a damaged version raises `ChecksumError` naming the first bad file.
#[pyfunction]
#[pyo3(signature = (dir, progress=None))]
fn store_verify_strict(
    py: Python<'_>,
    dir: PathBuf,
    progress: Option<&Bound<'_, ProgressCounter>>,
) -> PyResult<()> {
    run_counted(py, progress, || store::verify_version(&dir)?.into_result())
}

#[pyfunction]
fn store_prune(
    py: Python<'_>,
    root: PathBuf,
    name: String,
    format: String,
    keep_last: usize,
) -> PyResult<Vec<PathBuf>> {
    run(py, || store::prune(&root, &name, &format, keep_last))
}

#[pyfunction]
fn store_cleanup_stale(
    py: Python<'_>,
    root: PathBuf,
    name: String,
    format: String,
) -> PyResult<Vec<PathBuf>> {
    run(py, || store::cleanup_stale(&root, &name, &format))
}

#[pyfunction]
fn store_read_metadata(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    json(&run(py, || metadata::read(&dir))?)
}

/// SHA-256 and size of every file under `dir` (JSON manifest).
#[pyfunction]
fn store_hash_files(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    json(&run(py, || manifest::hash_files(&dir))?)
}

/// Drop the digests computed while files under `dir` were written for an artifact (a staging
/// directory that was not published: its inodes may be reused).
#[pyfunction]
fn store_forget_written(dir: PathBuf) {
    manifest::forget_written_under(&dir);
}

/// Swap the entries at `a` and `b` in one step; False where the system cannot (`fsutil::exchange`).
#[pyfunction]
fn exchange_paths(py: Python<'_>, a: PathBuf, b: PathBuf) -> PyResult<bool> {
    run(py, || crate::fsutil::exchange(&a, &b).at(&b))
}

/// Start writing the files under `dir` (a staging directory) back to the disk, returning at once,
/// so the commit's fsync has less to wait for.
#[pyfunction]
fn store_start_writeback(dir: PathBuf) {
    store::start_writeback(&dir);
}

type Flat<'py> = (String, Vec<u64>, PyReadonlyArray1<'py, u8>);

fn flat_parts<'a>(flat: &'a Flat<'_>) -> PyResult<(DType, Vec<u64>, &'a [u8])> {
    let (dtype, shape, bytes) = flat;
    let d = DType::from_name(dtype).map_err(errors::to_py)?;
    Ok((
        d,
        shape.clone(),
        bytes
            .as_slice()
            .map_err(|e| errors::invalid(e.to_string()))?,
    ))
}

/// Compare two outputs given as `(dtype, shape, flat uint8 view)`; returns the comparison JSON.
#[pyfunction]
#[pyo3(signature = (expected, actual, atol=None, rtol=None))]
fn compare_outputs(
    py: Python<'_>,
    expected: Flat<'_>,
    actual: Flat<'_>,
    atol: Option<f64>,
    rtol: Option<f64>,
) -> PyResult<String> {
    let (ed, es, eb) = flat_parts(&expected)?;
    let (ad, ash, ab) = flat_parts(&actual)?;
    let default = Tolerance::for_dtype(ed);
    let tol = Tolerance {
        atol: atol.unwrap_or(default.atol),
        rtol: rtol.unwrap_or(default.rtol),
    };
    let cmp = run(py, || {
        let e = Tensor::from_bytes(ed, es, eb)?;
        let a = Tensor::from_bytes(ad, ash, ab)?;
        validate::compare(&e, &a, tol)
    })?;
    json(&cmp)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StagedVersion>()?;
    m.add_function(wrap_pyfunction!(store_begin, m)?)?;
    m.add_function(wrap_pyfunction!(store_list_versions, m)?)?;
    m.add_function(wrap_pyfunction!(store_resolve, m)?)?;
    m.add_function(wrap_pyfunction!(store_verify, m)?)?;
    m.add_function(wrap_pyfunction!(store_verify_strict, m)?)?;
    m.add_function(wrap_pyfunction!(store_prune, m)?)?;
    m.add_function(wrap_pyfunction!(store_cleanup_stale, m)?)?;
    m.add_function(wrap_pyfunction!(store_read_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(store_hash_files, m)?)?;
    m.add_function(wrap_pyfunction!(store_forget_written, m)?)?;
    m.add_function(wrap_pyfunction!(store_start_writeback, m)?)?;
    m.add_function(wrap_pyfunction!(exchange_paths, m)?)?;
    m.add_function(wrap_pyfunction!(compare_outputs, m)?)?;
    Ok(())
}
