//! pyo3 bindings (placeholder).
