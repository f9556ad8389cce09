//! Thin pyo3 bindings: convert arguments, release the GIL, call the core, map the error.
//! No format logic lives here.

mod errors;
#[cfg(feature = "h5")]
mod h5;
mod memory;
mod progress;
mod ranges;
mod registry;
#[cfg(feature = "s3")]
mod remote;
mod savedmodel;
mod store;

use std::path::PathBuf;

use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::checkpoint::{self, object_graph, BundleReader};
use crate::tensor::{DType, Tensor, TensorData};
use errors::run;
use progress::{run_counted, ProgressCounter};

/// One tensor for `checkpoint_write`: its bytes as a flat uint8 view, or a list of byte strings.
#[derive(FromPyObject)]
enum Values<'py> {
    Bytes(PyReadonlyArray1<'py, u8>),
    Strings(Vec<Vec<u8>>),
}

/// Write a single-shard bundle. `tensors` holds `(name, dtype, shape, values)` in data-file order.
/// `for_artifact`: also hash the data file while writing it, for the manifest of the artifact
/// being staged (`checkpoint::write_for_artifact`).
#[pyfunction]
#[pyo3(signature = (prefix, tensors, progress=None, for_artifact=false))]
fn checkpoint_write(
    py: Python<'_>,
    prefix: PathBuf,
    tensors: Vec<(String, String, Vec<u64>, Values<'_>)>,
    progress: Option<&Bound<'_, ProgressCounter>>,
    for_artifact: bool,
) -> PyResult<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, dtype, shape, values) in &tensors {
        let dtype = DType::from_name(dtype).map_err(errors::to_py)?;
        let data = match values {
            Values::Bytes(a) => TensorData::Bytes(
                a.as_slice()
                    .map_err(|e| errors::invalid(e.to_string()))?
                    .into(),
            ),
            Values::Strings(s) => {
                TensorData::Strings(s.iter().map(|x| x.as_slice().into()).collect())
            }
        };
        owned.push((
            name.as_str(),
            Tensor {
                dtype,
                shape: shape.clone(),
                data,
            },
        ));
    }
    let write = if for_artifact {
        checkpoint::write_for_artifact
    } else {
        checkpoint::write
    };
    run_counted(py, progress, || write(&prefix, &owned))
}

/// `(key, buffer)` pairs for a reader's `read_many_into` / `read_many`, from parallel lists of
/// keys (tensor names, file offsets) and contiguous arrays; `key` turns each into what the
/// reader takes.
pub(crate) fn read_jobs<'a, K, T>(
    keys: &'a [K],
    outs: &'a mut [PyReadwriteArray1<'_, u8>],
    key: impl Fn(&'a K) -> T,
) -> PyResult<Vec<(T, &'a mut [u8])>> {
    if keys.len() != outs.len() {
        return Err(errors::invalid(format!(
            "{} keys for {} buffers",
            keys.len(),
            outs.len()
        )));
    }
    keys.iter()
        .zip(outs.iter_mut())
        .map(|(k, out)| {
            let buf = out
                .as_slice_mut()
                .map_err(|e| errors::invalid(e.to_string()))?;
            Ok((key(k), buf))
        })
        .collect()
}

/// An opened checkpoint: the index is parsed once; tensors are read on demand.
#[pyclass(frozen, module = "kerasafe._core")]
struct CheckpointReader {
    inner: BundleReader,
}

#[pymethods]
impl CheckpointReader {
    #[new]
    fn new(py: Python<'_>, prefix: PathBuf) -> PyResult<Self> {
        Ok(CheckpointReader {
            inner: run(py, || BundleReader::open(&prefix))?,
        })
    }

    /// `(name, shape, dtype, size_in_bytes)` for every tensor, sorted by name.
    fn entries(&self) -> Vec<(String, Vec<u64>, String, u64)> {
        self.inner
            .entries()
            .map(|e| (e.name.clone(), e.shape.clone(), e.dtype_name(), e.size))
            .collect()
    }

    /// Fill each flat uint8 view in `outs` with the bytes of the tensor named alongside it.
    #[pyo3(signature = (names, outs, progress=None))]
    fn read_into(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        mut outs: Vec<PyReadwriteArray1<'_, u8>>,
        progress: Option<&Bound<'_, ProgressCounter>>,
    ) -> PyResult<()> {
        let jobs = read_jobs(&names, &mut outs, String::as_str)?;
        run_counted(py, progress, || self.inner.read_many_into(jobs))
    }

    /// Check the named tensors' CRCs without reading them out (before reading in place).
    fn verify(&self, py: Python<'_>, names: Vec<String>) -> PyResult<()> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        run(py, || self.inner.verify_many(&names))
    }

    /// The elements of a string tensor.
    #[pyo3(signature = (name, progress=None))]
    fn read_strings<'py>(
        &self,
        py: Python<'py>,
        name: String,
        progress: Option<&Bound<'_, ProgressCounter>>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let items = run_counted(py, progress, || self.inner.read_strings(&name))?;
        Ok(items.iter().map(|b| PyBytes::new(py, b)).collect())
    }
}

/// Serialize a `TrackableObjectGraph` for `(checkpoint_key, full_name)` pairs.
#[pyfunction]
fn object_graph_build<'py>(
    py: Python<'py>,
    keys: Vec<(String, String)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = run(py, || object_graph::build(&keys))?;
    Ok(PyBytes::new(py, &bytes))
}

/// `(path, attribute, checkpoint_key, full_name)` of one object-graph attribute.
type GraphAttribute = (Vec<String>, String, String, String);

/// `(path, attribute, checkpoint_key, full_name)` for every attribute of a serialized graph.
#[pyfunction]
fn object_graph_attributes(py: Python<'_>, graph: Vec<u8>) -> PyResult<Vec<GraphAttribute>> {
    let attrs = run(py, || object_graph::attributes(&graph))?;
    Ok(attrs
        .into_iter()
        .map(|a| (a.path, a.name, a.checkpoint_key, a.full_name))
        .collect())
}

/// Checkpoint keys of the `attribute` of the objects at `paths` (edge names from the root).
#[pyfunction]
fn object_graph_resolve(
    py: Python<'_>,
    graph: Vec<u8>,
    paths: Vec<Vec<String>>,
    attribute: String,
) -> PyResult<Vec<Option<String>>> {
    run(py, || object_graph::resolve(&graph, &paths, &attribute))
}

/// The native module `kerasafe._core`.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<CheckpointReader>()?;
    m.add_function(wrap_pyfunction!(checkpoint_write, m)?)?;
    m.add_function(wrap_pyfunction!(object_graph_build, m)?)?;
    m.add_function(wrap_pyfunction!(object_graph_attributes, m)?)?;
    m.add_function(wrap_pyfunction!(object_graph_resolve, m)?)?;
    progress::register(m)?;
    memory::register(m)?;
    ranges::register(m)?;
    store::register(m)?;
    registry::register(m)?;
    savedmodel::register(m)?;
    #[cfg(feature = "h5")]
    h5::register(m)?;
    #[cfg(feature = "s3")]
    remote::register(m)?;
    m.add("HAS_OBJECT_STORAGE", cfg!(feature = "s3"))?;
    let dtypes: Vec<&str> = DType::all().iter().map(|d| d.name()).collect();
    m.add("DTYPES", PyTuple::new(m.py(), dtypes)?)?;
    Ok(())
}
