//! The native half of the `imgest` Python package (`imgest._imgest`).
//!
//! Thin on purpose: it converts types, releases the GIL around every core call and reports
//! errors as `CoreError(code, message, limit)`; `imgest/_errors.py` maps codes to the public
//! exception classes. The Python API itself lives in `python/imgest/__init__.py`.
//!
//! Every run is interruptible: it goes on a thread of its own while the calling thread, without
//! the GIL, waits for it and every 50 ms runs Python's signal handlers. A handler that raises
//! (Ctrl-C's `KeyboardInterrupt`) cancels the run through its token; the exception propagates
//! once the run has stopped and freed its memory (within milliseconds).

use std::sync::mpsc;
use std::time::Duration;

use imgest::{Error, ErrorCode, Options, Output, PipelinePool};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use rayon::prelude::*;

create_exception!(
    _imgest,
    CoreError,
    PyException,
    "An error from the imgest core: args are (code, message, limit or None)."
);

fn core_error(e: &Error) -> PyErr {
    CoreError::new_err((
        e.code().as_str(),
        e.to_string(),
        e.limit().map(|l| l.as_str()),
    ))
}

fn internal(detail: impl ToString) -> PyErr {
    core_error(&Error::Internal {
        detail: detail.to_string(),
    })
}

fn options(json: Option<&str>) -> PyResult<Options> {
    match json {
        Some(json) => Options::from_json(json).map_err(|e| core_error(&e)),
        None => Ok(Options::default()),
    }
}

/// The report as JSON plus each variant's bytes, in variant order.
type Raw = (String, Vec<Py<PyBytes>>);

fn to_raw(py: Python<'_>, output: &Output) -> PyResult<Raw> {
    let json = serde_json::to_string(output).map_err(internal)?;
    let bytes = output
        .variants
        .iter()
        .map(|v| PyBytes::new(py, &v.bytes).unbind())
        .collect();
    Ok((json, bytes))
}

/// A cancellation flag shared with running calls (`imgest.CancelToken`).
#[pyclass(module = "imgest._imgest", frozen)]
#[derive(Default)]
struct Token {
    inner: imgest::CancelToken,
}

#[pymethods]
impl Token {
    #[new]
    fn new() -> Token {
        Token::default()
    }

    /// Cancels every call holding this token.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// How often a waiting call runs Python's signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `work` on a thread of its own while this one waits without the GIL, running Python's
/// signal handlers every [`SIGNAL_POLL`]; an exception from a handler cancels `token`, waits for
/// `work` to stop, and is returned.
fn interruptible<T: Send>(
    py: Python<'_>,
    token: &imgest::CancelToken,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(1);
        scope.spawn(move || {
            let _ = tx.send(work());
        });
        let mut rx = rx;
        loop {
            // The receiver goes into the GIL-free closure and comes back (it is `Send`, not
            // `Sync`).
            let (back, received) = py.detach(move || {
                let r = rx.recv_timeout(SIGNAL_POLL);
                (rx, r)
            });
            rx = back;
            match received {
                Ok(done) => return Ok(done),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(internal("the run's thread ended without a result"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        token.cancel();
                        // The scope joins the run's thread, which stops at its next check.
                        py.detach(move || {
                            let _ = rx.recv();
                        });
                        return Err(interrupt);
                    }
                }
            }
        }
    })
}

/// A validated set of options with the pipelines that run them, reusable from any thread.
#[pyclass(module = "imgest._imgest", frozen)]
struct Runner {
    pool: PipelinePool,
}

#[pymethods]
impl Runner {
    /// Validates `options_json` (the core's snake_case wire format; `None` = defaults).
    #[new]
    #[pyo3(signature = (options_json=None))]
    fn new(options_json: Option<&str>) -> PyResult<Runner> {
        let pool = PipelinePool::new(options(options_json)?).map_err(|e| core_error(&e))?;
        Ok(Runner { pool })
    }

    /// Runs the pipeline on `data` without holding the GIL, until `token` (if any) is
    /// cancelled or a signal handler raises. Returns `(report_json, [bytes])`.
    #[pyo3(signature = (data, token=None))]
    fn run(&self, py: Python<'_>, data: PyBackedBytes, token: Option<&Token>) -> PyResult<Raw> {
        let token = token.map(|t| t.inner.clone()).unwrap_or_default();
        let output = interruptible(py, &token, || self.pool.run_cancellable(&data, &token))?
            .map_err(|e| core_error(&e))?;
        to_raw(py, &output)
    }

    /// Runs the pipeline on every input on `threads` threads (all cores when `None`), without
    /// holding the GIL. Returns, in input order, `(report_json, [bytes])` or a `CoreError`.
    #[pyo3(signature = (inputs, threads=None, token=None))]
    fn run_many(
        &self,
        py: Python<'_>,
        inputs: Vec<PyBackedBytes>,
        threads: Option<usize>,
        token: Option<&Token>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .build()
            .map_err(internal)?;
        let token = token.map(|t| t.inner.clone()).unwrap_or_default();
        let results: Vec<Result<Output, Error>> = interruptible(py, &token, || {
            pool.install(|| {
                inputs
                    .par_iter()
                    .map(|data| self.pool.run_cancellable(data, &token))
                    .collect()
            })
        })?;
        results
            .into_iter()
            .map(|r| match r {
                Ok(output) => Ok(to_raw(py, &output)?.into_pyobject(py)?.into_any().unbind()),
                Err(e) => Ok(core_error(&e).into_value(py).into_any()),
            })
            .collect()
    }
}

/// The default options as JSON (the option names and their defaults).
#[pyfunction]
fn default_options() -> PyResult<String> {
    serde_json::to_string(&Options::default()).map_err(internal)
}

/// The core's error table: `[(code, number), ...]`.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, u32)> {
    ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.as_u32()))
        .collect()
}

/// The core's output formats: `[(format, mime_type, extension), ...]`.
#[pyfunction]
fn output_formats() -> Vec<(&'static str, &'static str, &'static str)> {
    imgest::OutputFormat::ALL
        .iter()
        .map(|f| (f.as_str(), f.mime_type(), f.extension()))
        .collect()
}

/// `imgest::memory::map_large_buffers()`: the process's malloc gives buffers of 4 MiB or more
/// their own mappings, returned to the system when freed, and keeps up to 8 MiB at a heap's
/// top. For the application to call.
#[pyfunction]
fn map_large_buffers() -> bool {
    imgest::memory::map_large_buffers()
}

#[pymodule]
fn _imgest(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", imgest::VERSION)?;
    m.add("CoreError", m.py().get_type::<CoreError>())?;
    m.add_class::<Runner>()?;
    m.add_class::<Token>()?;
    m.add_function(wrap_pyfunction!(default_options, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(output_formats, m)?)?;
    m.add_function(wrap_pyfunction!(map_large_buffers, m)?)?;
    Ok(())
}
