//! Bindings for object storage (`s3://`, `gs://`, `az://`). Options arrive as a dict of
//! `object_store` configuration keys; structured results cross as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use numpy::PyReadwriteArray1;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::{self, run};
use super::memory::MemoryFile;
use crate::file_bytes::FileBytes;
use crate::remote::bundle::RemoteBundle;
use crate::remote::{self, versions, Downloaded, Remote};

type Options = Option<BTreeMap<String, String>>;

fn opts(options: Options) -> Vec<(String, String)> {
    options.unwrap_or_default().into_iter().collect()
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| errors::invalid(format!("cannot serialize result: {e}")))
}

/// Upload a local file to `url`, or a directory's files under `url/`.
#[pyfunction]
#[pyo3(signature = (local, url, options=None))]
fn remote_upload(py: Python<'_>, local: PathBuf, url: String, options: Options) -> PyResult<()> {
    let o = opts(options);
    run(py, || remote::upload(&local, &url, &o))
}

/// Whether an object exists at `url` or under `url/`.
#[pyfunction]
#[pyo3(signature = (url, options=None))]
fn remote_exists(py: Python<'_>, url: String, options: Options) -> PyResult<bool> {
    let o = opts(options);
    run(py, || remote::exists(&url, &o))
}

/// Download the object at `url` to `local`, or the objects under `url/` into the directory
/// `local`; returns `"file"` or `"dir"`.
#[pyfunction]
#[pyo3(signature = (url, local, options=None))]
fn remote_download(
    py: Python<'_>,
    url: String,
    local: PathBuf,
    options: Options,
) -> PyResult<&'static str> {
    let o = opts(options);
    Ok(match run(py, || remote::download(&url, &local, &o))? {
        Downloaded::File => "file",
        Downloaded::Dir => "dir",
    })
}

/// The object at `url`, whole, in memory: read it with `h5_read`, `sniff` or
/// `keras_archive_read` instead of downloading it to a file.
#[pyfunction]
#[pyo3(signature = (url, options=None))]
fn remote_fetch(py: Python<'_>, url: String, options: Options) -> PyResult<MemoryFile> {
    let o = opts(options);
    let bytes = run(py, || remote::fetch(&url, &o))?;
    Ok(MemoryFile::new(url, FileBytes::from_vec(bytes)))
}

/// Download a checkpoint prefix's files (`url.index`, `url.data-*`) into `local_dir`.
#[pyfunction]
#[pyo3(signature = (url, local_dir, options=None))]
fn remote_download_siblings(
    py: Python<'_>,
    url: String,
    local_dir: PathBuf,
    options: Options,
) -> PyResult<Vec<String>> {
    let o = opts(options);
    run(py, || remote::download_siblings(&url, &local_dir, &o))
}

/// Publish `local_dir` as a new version under `root`; returns the published version as JSON.
#[pyfunction]
#[pyo3(signature = (root, name, format, version, local_dir, metadata_json, options=None))]
#[allow(clippy::too_many_arguments)]
fn remote_publish(
    py: Python<'_>,
    root: String,
    name: String,
    format: String,
    version: Option<String>,
    local_dir: PathBuf,
    metadata_json: String,
    options: Options,
) -> PyResult<String> {
    let meta = serde_json::from_str(&metadata_json)
        .map_err(|e| errors::invalid(format!("metadata is not valid JSON: {e}")))?;
    let o = opts(options);
    json(&run(py, || {
        let r = Remote::open(&root, &o)?;
        versions::publish(&r, &name, &format, version.as_deref(), &local_dir, meta)
    })?)
}

#[pyfunction]
#[pyo3(signature = (root, name, format=None, options=None))]
fn remote_list_versions(
    py: Python<'_>,
    root: String,
    name: String,
    format: Option<String>,
    options: Options,
) -> PyResult<String> {
    let o = opts(options);
    json(&run(py, || {
        versions::list_versions(&Remote::open(&root, &o)?, &name, format.as_deref())
    })?)
}

/// Names of the models with committed versions under `root`.
#[pyfunction]
#[pyo3(signature = (root, options=None))]
fn remote_model_names(py: Python<'_>, root: String, options: Options) -> PyResult<Vec<String>> {
    let o = opts(options);
    run(py, || versions::model_names(&Remote::open(&root, &o)?))
}

#[pyfunction]
#[pyo3(signature = (root, name, format, spec, options=None))]
fn remote_resolve(
    py: Python<'_>,
    root: String,
    name: String,
    format: Option<String>,
    spec: String,
    options: Options,
) -> PyResult<String> {
    let o = opts(options);
    run(py, || {
        versions::resolve(&Remote::open(&root, &o)?, &name, format.as_deref(), &spec)
    })
}

#[pyfunction]
#[pyo3(signature = (url, options=None))]
fn remote_read_metadata(py: Python<'_>, url: String, options: Options) -> PyResult<String> {
    let o = opts(options);
    json(&run(py, || {
        versions::read_metadata(&Remote::open(&url, &o)?)
    })?)
}

/// Check a remote version against its manifest; returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (url, options=None))]
fn remote_verify(py: Python<'_>, url: String, options: Options) -> PyResult<String> {
    let o = opts(options);
    json(&run(py, || versions::verify(&Remote::open(&url, &o)?))?)
}

/// Download a remote version into `local_dir`, every file checked; returns its metadata JSON.
#[pyfunction]
#[pyo3(signature = (url, local_dir, options=None))]
fn remote_download_version(
    py: Python<'_>,
    url: String,
    local_dir: PathBuf,
    options: Options,
) -> PyResult<String> {
    let o = opts(options);
    json(&run(py, || {
        versions::download(&Remote::open(&url, &o)?, &local_dir)
    })?)
}

/// [`remote_download_version`], except that the file `in_memory` (the model) comes back as a
/// `MemoryFile`, checked against the manifest, instead of being written: `(metadata, file)`.
#[pyfunction]
#[pyo3(signature = (url, local_dir, in_memory, options=None))]
fn remote_download_version_keeping(
    py: Python<'_>,
    url: String,
    local_dir: PathBuf,
    in_memory: String,
    options: Options,
) -> PyResult<(String, MemoryFile)> {
    let o = opts(options);
    let name = format!("{}/{in_memory}", url.trim_end_matches('/'));
    let (meta, kept) = run(py, || {
        versions::download_keeping(&Remote::open(&url, &o)?, &local_dir, Some(&in_memory))
    })?;
    let bytes = kept.unwrap_or_default();
    Ok((
        json(&meta)?,
        MemoryFile::new(name, FileBytes::from_vec(bytes)),
    ))
}

#[pyfunction]
#[pyo3(signature = (root, name, format, keep_last, options=None))]
fn remote_prune(
    py: Python<'_>,
    root: String,
    name: String,
    format: String,
    keep_last: usize,
    options: Options,
) -> PyResult<Vec<String>> {
    let o = opts(options);
    run(py, || {
        versions::prune(&Remote::open(&root, &o)?, &name, &format, keep_last)
    })
}

/// A checkpoint in object storage, read with ranged GETs (same methods as `CheckpointReader`).
#[pyclass(frozen, module = "kerasafe._core")]
struct RemoteCheckpointReader {
    inner: RemoteBundle,
}

#[pymethods]
impl RemoteCheckpointReader {
    #[new]
    #[pyo3(signature = (url, options=None))]
    fn new(py: Python<'_>, url: String, options: Options) -> PyResult<Self> {
        let o = opts(options);
        Ok(RemoteCheckpointReader {
            inner: run(py, || RemoteBundle::open(&url, &o))?,
        })
    }

    /// `(name, shape, dtype, size_in_bytes)` for every tensor, sorted by name.
    fn entries(&self) -> Vec<(String, Vec<u64>, String, u64)> {
        self.inner
            .entries()
            .map(|e| (e.name.clone(), e.shape.clone(), e.dtype_name(), e.size))
            .collect()
    }

    /// Total bytes of the data objects.
    fn data_bytes(&self) -> u64 {
        self.inner.data_bytes()
    }

    /// Fill each flat uint8 view in `outs` with the tensor named alongside it.
    #[pyo3(signature = (names, outs, progress=None))]
    fn read_into(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        mut outs: Vec<PyReadwriteArray1<'_, u8>>,
        progress: Option<&Bound<'_, super::progress::ProgressCounter>>,
    ) -> PyResult<()> {
        let jobs = super::read_jobs(&names, &mut outs, String::as_str)?;
        super::progress::run_counted(py, progress, || self.inner.read_many_into(jobs))
    }

    /// The elements of a string tensor.
    #[pyo3(signature = (name, progress=None))]
    fn read_strings<'py>(
        &self,
        py: Python<'py>,
        name: String,
        progress: Option<&Bound<'_, super::progress::ProgressCounter>>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let items = super::progress::run_counted(py, progress, || self.inner.read_strings(&name))?;
        Ok(items.iter().map(|b| PyBytes::new(py, b)).collect())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RemoteCheckpointReader>()?;
    m.add_function(wrap_pyfunction!(remote_upload, m)?)?;
    m.add_function(wrap_pyfunction!(remote_exists, m)?)?;
    m.add_function(wrap_pyfunction!(remote_download, m)?)?;
    m.add_function(wrap_pyfunction!(remote_fetch, m)?)?;
    m.add_function(wrap_pyfunction!(remote_download_siblings, m)?)?;
    m.add_function(wrap_pyfunction!(remote_publish, m)?)?;
    m.add_function(wrap_pyfunction!(remote_list_versions, m)?)?;
    m.add_function(wrap_pyfunction!(remote_resolve, m)?)?;
    m.add_function(wrap_pyfunction!(remote_model_names, m)?)?;
    m.add_function(wrap_pyfunction!(remote_read_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(remote_verify, m)?)?;
    m.add_function(wrap_pyfunction!(remote_download_version, m)?)?;
    m.add_function(wrap_pyfunction!(remote_download_version_keeping, m)?)?;
    m.add_function(wrap_pyfunction!(remote_prune, m)?)?;
    Ok(())
}
