//! Time budget and cancellation: [`CancelToken`], and the checks every stage makes.
//!
//! A run stops at the first check after its deadline ([`crate::Options::timeout_ms`]) or after
//! its token is cancelled, with [`Error::Timeout`] or [`Error::Cancelled`], and frees what it
//! had allocated on the way out. The checks sit between stages and inside the long loops:
//! libjpeg's scans and rows, libwebp's decoder (slices of its input), the other decoders' reads
//! of their input, the colour conversion's bands, the bands of a large resize (native builds),
//! and libwebp's encoder (its progress hook, at each whole percent of its progress), and, with
//! threads, every millisecond while the run waits for a worker of the pool (`par::in_pool`). A
//! run with neither a deadline nor a token pays a function call per check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
use std::time::Instant;

/// `std::time::Instant` panics on wasm32-unknown-unknown: there, JavaScript's monotonic clock.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[derive(Debug, Clone, Copy)]
struct Instant(f64);

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod js {
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    extern "C" {
        /// `performance.now()`: milliseconds, monotonic (browsers, workers, Node ≥ 16).
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        pub(super) fn performance_now() -> f64;
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
impl Instant {
    fn now() -> Instant {
        Instant(js::performance_now())
    }

    fn elapsed(&self) -> std::time::Duration {
        let ms = (js::performance_now() - self.0).max(0.0);
        std::time::Duration::from_micros((ms * 1000.0) as u64)
    }
}

use crate::error::Error;

/// Cancels runs from another thread (or, in JavaScript, from an `AbortSignal`).
///
/// Clones share one flag: hand a clone to the run ([`crate::Pipeline::run_cancellable`]) and
/// call [`CancelToken::cancel`] on another. A cancelled token stays cancelled; use a new one for
/// the next run.
///
/// ```
/// let token = imgest::CancelToken::new();
/// token.cancel();
/// let mut pipeline = imgest::Pipeline::new(imgest::Options::default())?;
/// let err = pipeline.run_cancellable(b"\x89PNG\r\n\x1a\n", &token).unwrap_err();
/// assert_eq!(err.code(), imgest::ErrorCode::Cancelled);
/// # Ok::<(), imgest::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every run holding a clone of this token: each stops at its next check (within
    /// milliseconds) with [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// One run's deadline and token. `Copy`, `Sync`: every thread of the run checks the same one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Budget<'a> {
    /// When the run started, and its budget in milliseconds.
    deadline: Option<(Instant, u64)>,
    token: Option<&'a CancelToken>,
}

impl<'a> Budget<'a> {
    /// No deadline, no token: checks never fail.
    pub(crate) const NONE: Budget<'static> = Budget {
        deadline: None,
        token: None,
    };

    /// A budget of `timeout_ms` from now (none if `None`), cancelled by `token`.
    pub(crate) fn start(timeout_ms: Option<u64>, token: Option<&'a CancelToken>) -> Budget<'a> {
        Budget {
            deadline: timeout_ms.map(|ms| (Instant::now(), ms)),
            token,
        }
    }

    /// `Err` once the run must stop. (Not inlined: it is called from dozens of places, and one
    /// call per check costs nothing next to the work between two checks.)
    #[inline(never)]
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.token.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Cancelled);
        }
        if let Some((start, timeout_ms)) = self.deadline {
            let elapsed = start.elapsed();
            if elapsed >= std::time::Duration::from_millis(timeout_ms) {
                let elapsed_ms = elapsed
                    .as_secs()
                    .saturating_mul(1000)
                    .saturating_add(u64::from(elapsed.subsec_millis()));
                return Err(Error::Timeout {
                    timeout_ms,
                    elapsed_ms,
                });
            }
        }
        Ok(())
    }

    /// Whether the run must stop (for callbacks from C that can only say yes or no).
    pub(crate) fn stopped(&self) -> bool {
        self.check().is_err()
    }

    /// Whether this budget can ever stop a run (callbacks are installed only then).
    pub(crate) fn is_bounded(&self) -> bool {
        self.deadline.is_some() || self.token.is_some()
    }

    /// The error of a run stopped by this budget, for a decoder or encoder that gave up after
    /// a check failed; `other` if the budget has not run out (the failure was something else).
    pub(crate) fn or(&self, other: Error) -> Error {
        self.check().err().unwrap_or(other)
    }
}

/// Reads `bytes` for a decoder, checking the budget at every refill and handing out at most
/// [`CheckedReader::CHUNK`] bytes at a time, so that a decoder which reads as it decodes (PNG,
/// GIF, TIFF, BMP) stops within one chunk's work of the deadline.
pub(crate) struct CheckedReader<'a, 'b> {
    inner: std::io::Cursor<&'a [u8]>,
    budget: Budget<'b>,
}

impl<'a, 'b> CheckedReader<'a, 'b> {
    /// Bytes handed out per refill: a few milliseconds of decoding even at deflate's largest
    /// expansion (1032:1).
    const CHUNK: usize = 4096;

    pub(crate) fn new(bytes: &'a [u8], budget: Budget<'b>) -> Self {
        CheckedReader {
            inner: std::io::Cursor::new(bytes),
            budget,
        }
    }

    fn stop(&self) -> std::io::Result<()> {
        match self.budget.check() {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

impl std::io::Read for CheckedReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl std::io::BufRead for CheckedReader<'_, '_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.stop()?;
        let all = self.inner.get_ref();
        let pos = usize::try_from(self.inner.position())
            .unwrap_or(usize::MAX)
            .min(all.len());
        let end = pos.saturating_add(Self::CHUNK).min(all.len());
        Ok(&all[pos..end])
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

impl std::io::Seek for CheckedReader<'_, '_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.stop()?;
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use std::io::{BufRead, Read};

    #[test]
    fn an_unbounded_budget_never_stops() {
        assert!(Budget::NONE.check().is_ok());
        assert!(!Budget::NONE.is_bounded());
        let token = CancelToken::new();
        let b = Budget::start(Some(60_000), Some(&token));
        assert!(b.is_bounded());
        assert!(b.check().is_ok());
        token.clone().cancel();
        assert!(token.is_cancelled());
        assert_eq!(b.check().unwrap_err().code(), ErrorCode::Cancelled);
    }

    #[test]
    fn a_deadline_stops_once_passed() {
        let b = Budget::start(Some(1), None);
        std::thread::sleep(std::time::Duration::from_millis(3));
        let err = b.check().unwrap_err();
        assert_eq!(err.code(), ErrorCode::Timeout);
        assert!(matches!(err, Error::Timeout { timeout_ms: 1, elapsed_ms } if elapsed_ms >= 1));
        assert!(b.stopped());
        assert_eq!(
            b.or(Error::internal("x")).code(),
            ErrorCode::Timeout,
            "the budget's error wins over a decoder's"
        );
        assert_eq!(
            Budget::NONE.or(Error::internal("x")).code(),
            ErrorCode::Internal
        );
    }

    #[test]
    fn the_reader_hands_out_small_chunks_and_stops_when_cancelled() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let token = CancelToken::new();
        let mut r = CheckedReader::new(&data, Budget::start(None, Some(&token)));
        assert_eq!(r.fill_buf().unwrap().len(), CheckedReader::CHUNK);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        let mut r = CheckedReader::new(&data, Budget::start(None, Some(&token)));
        token.cancel();
        assert!(r.read(&mut [0; 16]).is_err());
    }
}
