//! Bindings for reading SavedModel directories without TensorFlow. Results cross as JSON.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::errors::{self, run};
use crate::savedmodel;

/// Everything `kerasafe.inspect` reports about a SavedModel directory, as JSON.
#[pyfunction]
fn savedmodel_inspect(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    let info = run(py, || savedmodel::inspect(&dir))?;
    serde_json::to_string(&info).map_err(|e| errors::invalid(format!("cannot serialize: {e}")))
}

/// The nodes of a `keras_metadata.pb` (tf-keras SavedModels): `[(node_path, identifier, metadata_json)]`.
#[pyfunction]
fn keras_metadata_nodes(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, String, String)>> {
    let nodes = run(py, || savedmodel::read_keras_metadata(&path))?;
    Ok(nodes
        .into_iter()
        .map(|n| (n.node_path, n.identifier, n.metadata))
        .collect())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(savedmodel_inspect, m)?)?;
    m.add_function(wrap_pyfunction!(keras_metadata_nodes, m)?)?;
    Ok(())
}
