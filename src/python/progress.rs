//! The progress counter Python polls while the core works with the GIL released.

use std::sync::Arc;

use pyo3::prelude::*;

use super::errors::run;
use crate::progress::{self, Counter};

/// Bytes done / announced by the core calls it is passed to. The core bumps it per chunk
/// without the GIL; Python reads `done` and `total` from another thread (a progress bar).
#[pyclass(frozen, module = "kerasafe._core")]
pub(crate) struct ProgressCounter {
    inner: Arc<Counter>,
}

#[pymethods]
impl ProgressCounter {
    #[new]
    fn new() -> Self {
        ProgressCounter {
            inner: Arc::new(Counter::new()),
        }
    }

    /// Bytes moved (written, read or hashed) so far.
    #[getter]
    fn done(&self) -> u64 {
        self.inner.done()
    }

    /// Bytes announced by the calls started so far (grows as calls start).
    #[getter]
    fn total(&self) -> u64 {
        self.inner.total()
    }

    fn __repr__(&self) -> String {
        format!(
            "ProgressCounter(done={}, total={})",
            self.inner.done(),
            self.inner.total()
        )
    }
}

/// [`run`] with `counter` as the core's progress counter for the duration of `f`.
pub(crate) fn run_counted<T: Send>(
    py: Python<'_>,
    counter: Option<&Bound<'_, ProgressCounter>>,
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    let counter = counter.map(|c| c.get().inner.clone());
    // Set inside the closure: that is the thread the core's entry point runs on.
    run(py, move || progress::scope(counter, f))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ProgressCounter>()
}
