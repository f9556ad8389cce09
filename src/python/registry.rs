//! Bindings for the custom-object registry and the safe-loading preflight. Configs and
//! structured results cross as JSON strings; objects stay in Python (the registry holds ids).

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;

use super::errors::{self, run};
use crate::registry::{self, Available, Registration, Registry};

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| errors::invalid(format!("cannot serialize result: {e}")))
}

fn available(text: &str) -> PyResult<Available> {
    serde_json::from_str(text)
        .map_err(|e| errors::invalid(format!("bad available-names JSON: {e}")))
}

/// The name → object-id table (`kerasafe.registry` keeps the objects, keyed by `id()`).
#[pyclass(frozen, module = "kerasafe._core")]
struct NameRegistry {
    inner: Mutex<Registry>,
}

impl NameRegistry {
    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| errors::invalid("registry lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

#[pymethods]
impl NameRegistry {
    #[new]
    fn new() -> Self {
        NameRegistry {
            inner: Mutex::new(Registry::new()),
        }
    }

    /// Register `id` under `name`; returns `(outcome, replaced_id)` with outcome `added`,
    /// `unchanged` or `replaced`. A different object under a taken name raises.
    fn register(&self, name: String, id: u64, origin: String) -> PyResult<(String, Option<u64>)> {
        let outcome = self
            .with(|r| r.register(&name, id, &origin))?
            .map_err(errors::to_py)?;
        Ok(match outcome {
            Registration::Added => ("added".into(), None),
            Registration::Unchanged => ("unchanged".into(), None),
            Registration::Replaced { previous } => ("replaced".into(), Some(previous)),
        })
    }

    /// Remove `name`; returns the id it held.
    fn unregister(&self, name: String) -> PyResult<Option<u64>> {
        self.with(|r| r.unregister(&name))
    }

    /// The id registered under exactly `name`.
    fn get(&self, name: String) -> PyResult<Option<u64>> {
        self.with(|r| r.get(&name).map(|e| e.id))
    }

    /// The name answering `name` with the bare-name rules: `(match, names)` with match `found`
    /// (one name), `ambiguous` (several) or `none`.
    fn find(&self, name: String) -> PyResult<(String, Vec<String>)> {
        self.with(|r| match r.find(&name) {
            registry::NameMatch::None => ("none".to_string(), Vec::new()),
            registry::NameMatch::Found(n) => ("found".to_string(), vec![n]),
            registry::NameMatch::Ambiguous(v) => ("ambiguous".to_string(), v),
        })
    }

    /// The name object `id` serializes under.
    fn name_of(&self, id: u64) -> PyResult<Option<String>> {
        self.with(|r| r.name_of(id).map(str::to_string))
    }

    /// Every registered name, sorted.
    fn names(&self) -> PyResult<Vec<String>> {
        self.with(|r| r.names().map(str::to_string).collect())
    }
}

/// `(package, name)` of a stored name (`package` is `None` for a bare name).
#[pyfunction]
fn registry_parse_name(name: String) -> (Option<String>, String) {
    let p = registry::parse_registered_name(&name);
    (p.package.map(str::to_string), p.name.to_string())
}

/// `"package>name"`, validated.
#[pyfunction]
fn registry_make_name(package: String, name: String) -> PyResult<String> {
    registry::make_registered_name(&package, &name).map_err(errors::to_py)
}

/// Which of `keys` answers `name` (exact; `X` for `pkg>X`; a unique `pkg>X` for `X`):
/// `(match, names)` with match `found`, `ambiguous` or `none`.
#[pyfunction]
fn registry_find_name(name: String, keys: Vec<String>) -> (String, Vec<String>) {
    match registry::find_name(&name, keys.iter().map(String::as_str)) {
        registry::NameMatch::None => ("none".to_string(), Vec::new()),
        registry::NameMatch::Found(n) => ("found".to_string(), vec![n]),
        registry::NameMatch::Ambiguous(v) => ("ambiguous".to_string(), v),
    }
}

/// Up to three names among `candidates` close to `name`.
#[pyfunction]
fn registry_suggest(name: String, candidates: Vec<String>) -> Vec<String> {
    registry::suggest(&name, candidates.iter().map(String::as_str))
}

/// Every reference in a config (JSON list).
#[pyfunction]
fn registry_references(py: Python<'_>, config_json: String) -> PyResult<String> {
    let refs = run(py, || {
        Ok(registry::references(&registry::parse_config(&config_json)?))
    })?;
    json(&refs)
}

/// The safe-mode findings of a config (JSON list).
#[pyfunction]
fn registry_scan(py: Python<'_>, config_json: String) -> PyResult<String> {
    let found = run(py, || {
        Ok(registry::scan(&registry::parse_config(&config_json)?))
    })?;
    json(&found)
}

/// Every reference with its resolution against the available names (JSON list); never raises
/// for missing or unsafe references.
#[pyfunction]
fn registry_resolve(
    py: Python<'_>,
    config_json: String,
    available_json: String,
) -> PyResult<String> {
    let avail = available(&available_json)?;
    let resolved = run(py, || {
        Ok(registry::resolve(
            &registry::parse_config(&config_json)?,
            &avail,
        ))
    })?;
    json(&resolved)
}

/// The custom objects a config needs that nobody provides, grouped by name (JSON list).
#[pyfunction]
fn registry_missing(
    py: Python<'_>,
    config_json: String,
    available_json: String,
) -> PyResult<String> {
    let avail = available(&available_json)?;
    let missing = run(py, || {
        let config = registry::parse_config(&config_json)?;
        Ok(registry::missing_objects(&registry::resolve(
            &config, &avail,
        )))
    })?;
    json(&missing)
}

/// The loaders' check: raises `UnsafeArtifactError` / `MissingCustomObjectError` naming every
/// problem (and `source`, when given); else returns the resolution as JSON.
#[pyfunction]
#[pyo3(signature = (config_json, available_json, safe_mode, source=None))]
fn registry_preflight(
    py: Python<'_>,
    config_json: String,
    available_json: String,
    safe_mode: bool,
    source: Option<PathBuf>,
) -> PyResult<String> {
    let avail = available(&available_json)?;
    let result = run(py, || {
        let config = registry::parse_config(&config_json);
        let out = config.and_then(|c| registry::preflight(&c, &avail, safe_mode));
        match &source {
            Some(path) => out.map_err(|e| e.in_file(path)),
            None => out,
        }
    })?;
    json(&result)
}

/// The nodes of a `keras_metadata.pb` as one JSON document `{node_path: metadata}`.
#[pyfunction]
fn registry_keras_metadata_document(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let doc = run(py, || {
        let nodes = crate::savedmodel::read_keras_metadata(&path)?;
        registry::keras_metadata_document(&nodes).map_err(|e| e.in_file(&path))
    })?;
    json(&doc)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NameRegistry>()?;
    m.add_function(wrap_pyfunction!(registry_parse_name, m)?)?;
    m.add_function(wrap_pyfunction!(registry_make_name, m)?)?;
    m.add_function(wrap_pyfunction!(registry_find_name, m)?)?;
    m.add_function(wrap_pyfunction!(registry_suggest, m)?)?;
    m.add_function(wrap_pyfunction!(registry_missing, m)?)?;
    m.add_function(wrap_pyfunction!(registry_references, m)?)?;
    m.add_function(wrap_pyfunction!(registry_scan, m)?)?;
    m.add_function(wrap_pyfunction!(registry_resolve, m)?)?;
    m.add_function(wrap_pyfunction!(registry_preflight, m)?)?;
    m.add_function(wrap_pyfunction!(registry_keras_metadata_document, m)?)?;
    Ok(())
}
