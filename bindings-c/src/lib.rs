//! The C API of imgest (`libimgest.so`, `libimgest.a`, `include/imgest.h`).
//!
//! Thin: it converts C types, keeps results alive behind opaque handles, maps errors to the
//! core's status numbers and catches panics, so that nothing unwinds into C or aborts the host.
//! Every exported function is `unsafe extern "C"`; its `# Safety` section is the contract.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use core_imgest::{CancelToken, Error, ErrorCode, Options, Output, Pipeline};

/// A status: `IMGEST_OK` or one of the core's error codes (the same numbers in every binding).
pub type imgest_status = i32;

/// Success.
pub const IMGEST_OK: imgest_status = 0;
/// An image, but in a format imgest does not accept (AVIF, HEIC, SVG, ...).
pub const IMGEST_UNSUPPORTED_FORMAT: imgest_status = 1;
/// The bytes are not an image.
pub const IMGEST_NOT_AN_IMAGE: imgest_status = 2;
/// A known format, but truncated or malformed.
pub const IMGEST_CORRUPT_INPUT: imgest_status = 3;
/// A size, pixel, frame or memory limit was exceeded (checked before decoding).
pub const IMGEST_LIMIT_EXCEEDED: imgest_status = 4;
/// Invalid options: bad JSON, an unknown key, an out-of-range value, or a string that is not
/// UTF-8.
pub const IMGEST_INVALID_OPTIONS: imgest_status = 5;
/// An encoder failed.
pub const IMGEST_ENCODE_FAILED: imgest_status = 6;
/// A storage error (not produced by this API; kept so that the table matches the core's).
pub const IMGEST_STORAGE: imgest_status = 7;
/// The run took longer than its `timeout_ms` and was stopped (its memory freed).
pub const IMGEST_TIMEOUT: imgest_status = 8;
/// The run was cancelled through its `imgest_cancel` flag.
pub const IMGEST_CANCELLED: imgest_status = 9;
/// A NULL pointer where a value is required (C API only).
pub const IMGEST_NULL_ARGUMENT: imgest_status = 64;
/// A bug in imgest (including a panic caught at this boundary).
pub const IMGEST_INTERNAL: imgest_status = 255;

// The header needs the numbers as literals (cbindgen evaluates no expressions): each is checked
// against the core's table here, and a code the core adds fails this build until it has one.
const _: () = {
    let table: [(imgest_status, ErrorCode); 10] = [
        (IMGEST_UNSUPPORTED_FORMAT, ErrorCode::UnsupportedFormat),
        (IMGEST_NOT_AN_IMAGE, ErrorCode::NotAnImage),
        (IMGEST_CORRUPT_INPUT, ErrorCode::CorruptInput),
        (IMGEST_LIMIT_EXCEEDED, ErrorCode::LimitExceeded),
        (IMGEST_INVALID_OPTIONS, ErrorCode::InvalidOptions),
        (IMGEST_ENCODE_FAILED, ErrorCode::EncodeFailed),
        (IMGEST_STORAGE, ErrorCode::Storage),
        (IMGEST_TIMEOUT, ErrorCode::Timeout),
        (IMGEST_CANCELLED, ErrorCode::Cancelled),
        (IMGEST_INTERNAL, ErrorCode::Internal),
    ];
    assert!(table.len() == ErrorCode::ALL.len());
    let mut i = 0;
    while i < table.len() {
        assert!(table[i].0 == table[i].1.as_u32() as imgest_status);
        assert!(ErrorCode::ALL[i].as_u32() == table[i].1.as_u32());
        i += 1;
    }
};

/// Major version of the library this header belongs to.
pub const IMGEST_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const IMGEST_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const IMGEST_VERSION_PATCH: u32 = 0;

/// Options for a run (opaque). Create with `imgest_options_new` or `imgest_options_from_json`.
pub struct imgest_options {
    inner: Options,
}

/// A cancel flag (opaque), shared with the runs it is given to: set it from any thread with
/// `imgest_cancel_set` and each of them returns `IMGEST_CANCELLED` within milliseconds.
pub struct imgest_cancel {
    token: CancelToken,
}

/// A reusable pipeline (opaque): validated options plus scratch buffers. Thread-safe.
pub struct imgest_pipeline {
    inner: Mutex<Pipeline>,
}

/// The result of a run (opaque): the variants, the dominant colour and the report.
pub struct imgest_output {
    output: Output,
    names: Vec<CString>,
    formats: Vec<CString>,
    sha256: Vec<CString>,
    dominant: Option<CString>,
    report: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn fail(status: imgest_status, message: &str) -> imgest_status {
    set_error(message);
    status
}

fn core_error(e: &Error) -> imgest_status {
    fail(e.code().as_u32() as imgest_status, &e.to_string())
}

/// Runs `f`, turning a panic into `IMGEST_INTERNAL`.
fn guard(f: impl FnOnce() -> imgest_status) -> imgest_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        fail(
            IMGEST_INTERNAL,
            "internal error: a panic was caught at the C boundary",
        )
    })
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn wrap(output: Output) -> Result<imgest_output, Error> {
    let report = serde_json::to_string(&output).map_err(|e| Error::Internal {
        detail: e.to_string(),
    })?;
    Ok(imgest_output {
        names: output.variants.iter().map(|v| cstring(&v.name)).collect(),
        formats: output
            .variants
            .iter()
            .map(|v| cstring(v.format.as_str()))
            .collect(),
        sha256: output.variants.iter().map(|v| cstring(&v.sha256)).collect(),
        dominant: output.dominant_color.as_ref().map(|c| cstring(&c.hex)),
        report: cstring(&report),
        output,
    })
}

/// `data`/`len` as a slice; `None` for NULL with a non-zero length.
///
/// # Safety
/// `data` must point to `len` readable bytes when it is not NULL.
unsafe fn input<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    if data.is_null() {
        (len == 0).then_some(&[][..])
    } else {
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        Some(unsafe { std::slice::from_raw_parts(data, len) })
    }
}

/// Stores a run's result in `*out`.
///
/// # Safety
/// `out` must be a valid, writable pointer.
unsafe fn finish(result: Result<Output, Error>, out: *mut *mut imgest_output) -> imgest_status {
    match result.and_then(wrap) {
        Ok(output) => {
            // SAFETY: checked non-NULL by the callers; writable per their contract.
            unsafe { *out = Box::into_raw(Box::new(output)) };
            IMGEST_OK
        }
        Err(e) => core_error(&e),
    }
}

/// The library's version, e.g. `"0.1.0"` (static storage).
///
/// # Safety
/// Always safe to call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The stable snake_case name of a status (`"ok"`, `"not_an_image"`, ...), or `"unknown"`
/// (static storage).
///
/// # Safety
/// Always safe to call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_status_str(status: imgest_status) -> *const c_char {
    // The core's names, NUL-terminated once, in the core's table order.
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ErrorCode::ALL
            .iter()
            .map(|c| CString::new(c.as_str()).unwrap_or_default())
            .collect()
    });
    let s: &CStr = match status {
        IMGEST_OK => c"ok",
        IMGEST_NULL_ARGUMENT => c"null_argument",
        _ => ErrorCode::ALL
            .iter()
            .position(|c| c.as_u32() as imgest_status == status)
            .map_or(c"unknown", |i| names[i].as_c_str()),
    };
    s.as_ptr()
}

/// The message of the last call on this thread that failed (empty if none). Valid until the
/// next failing call on the same thread; other threads have their own.
///
/// # Safety
/// Always safe to call; do not free the result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// New options with the defaults (4 WebP q85 variants: thumbnail 150, medium 800, large 1600,
/// original; dominant colour; placeholder). NULL only if a panic was caught.
///
/// # Safety
/// Always safe to call; free the result with `imgest_options_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_new() -> *mut imgest_options {
    catch_unwind(|| {
        Box::into_raw(Box::new(imgest_options {
            inner: Options::default(),
        }))
    })
    .unwrap_or(ptr::null_mut())
}

/// Parses options in the core's snake_case JSON wire format (unknown keys are refused) into
/// `*out`. On error `*out` is left untouched and `imgest_last_error()` says why.
///
/// # Safety
/// `json` must be NULL or a NUL-terminated string; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_from_json(
    json: *const c_char,
    out: *mut *mut imgest_options,
) -> imgest_status {
    guard(|| {
        if json.is_null() || out.is_null() {
            return fail(IMGEST_NULL_ARGUMENT, "json and out must not be NULL");
        }
        // SAFETY: NUL-terminated per the contract.
        let Ok(text) = unsafe { CStr::from_ptr(json) }.to_str() else {
            return fail(IMGEST_INVALID_OPTIONS, "options JSON is not valid UTF-8");
        };
        match Options::from_json(text) {
            Ok(inner) => {
                // SAFETY: checked non-NULL; writable per the contract.
                unsafe { *out = Box::into_raw(Box::new(imgest_options { inner })) };
                IMGEST_OK
            }
            Err(e) => core_error(&e),
        }
    })
}

/// Applies `change` to the options and validates them; an invalid result is undone.
///
/// # Safety
/// `opts` must be NULL or a live handle from this library.
unsafe fn set(opts: *mut imgest_options, change: impl FnOnce(&mut Options)) -> imgest_status {
    guard(|| {
        // SAFETY: a live handle per the contract, or NULL.
        let Some(opts) = (unsafe { opts.as_mut() }) else {
            return fail(IMGEST_NULL_ARGUMENT, "opts must not be NULL");
        };
        let mut next = opts.inner.clone();
        change(&mut next);
        match next.validate() {
            Ok(()) => {
                opts.inner = next;
                IMGEST_OK
            }
            Err(e) => core_error(&e),
        }
    })
}

/// Sets the encoder quality (0–100) of every variant.
///
/// # Safety
/// `opts` must be NULL or a live handle from this library, not used by another thread at the
/// same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_quality(
    opts: *mut imgest_options,
    quality: u8,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe {
        set(opts, |o| {
            *o = std::mem::take(o).with_quality(quality);
        })
    }
}

/// Sets the largest accepted input, in bytes (default 50 MiB).
///
/// # Safety
/// As `imgest_options_set_quality`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_max_input_bytes(
    opts: *mut imgest_options,
    bytes: u64,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe { set(opts, |o| o.limits.max_input_bytes = bytes) }
}

/// Sets the largest accepted pixel count, width × height (default 50 000 000).
///
/// # Safety
/// As `imgest_options_set_quality`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_max_pixels(
    opts: *mut imgest_options,
    pixels: u64,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe { set(opts, |o| o.limits.max_pixels = pixels) }
}

/// Turns the dominant colour and palette on or off (default on).
///
/// # Safety
/// As `imgest_options_set_quality`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_dominant_color(
    opts: *mut imgest_options,
    on: bool,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe { set(opts, |o| o.dominant_color = on) }
}

/// Turns the ThumbHash placeholder on or off (default on).
///
/// # Safety
/// As `imgest_options_set_quality`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_placeholder(
    opts: *mut imgest_options,
    on: bool,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe { set(opts, |o| o.placeholder = on) }
}

/// Sets the time budget of a run in milliseconds (0 = none, the default): a run still going
/// when it is spent returns `IMGEST_TIMEOUT`. Also `"timeout_ms"` in the options JSON.
///
/// # Safety
/// As `imgest_options_set_quality`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_set_timeout_ms(
    opts: *mut imgest_options,
    timeout_ms: u64,
) -> imgest_status {
    // SAFETY: forwarded contract.
    unsafe {
        set(opts, |o| {
            o.timeout_ms = (timeout_ms > 0).then_some(timeout_ms)
        })
    }
}

/// A new cancel flag, not set (free it with `imgest_cancel_free`). NULL only if out of memory.
///
/// # Safety
/// Always safe to call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_cancel_new() -> *mut imgest_cancel {
    catch_unwind(|| {
        Box::into_raw(Box::new(imgest_cancel {
            token: CancelToken::new(),
        }))
    })
    .unwrap_or(ptr::null_mut())
}

/// Sets the flag: every run given it stops at its next check with `IMGEST_CANCELLED`. Safe to
/// call from any thread, while runs are going; a set flag stays set.
///
/// # Safety
/// `cancel` must be NULL (ignored) or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_cancel_set(cancel: *const imgest_cancel) {
    // SAFETY: a live handle or NULL per the contract.
    if let Some(c) = unsafe { cancel.as_ref() } {
        c.token.cancel();
    }
}

/// Whether the flag is set (false for NULL).
///
/// # Safety
/// `cancel` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_cancel_is_set(cancel: *const imgest_cancel) -> bool {
    // SAFETY: a live handle or NULL per the contract.
    unsafe { cancel.as_ref() }.is_some_and(|c| c.token.is_cancelled())
}

/// Frees a cancel flag. NULL is ignored. A run that was given the flag keeps its own reference,
/// so freeing it while that run goes on is safe (the run can then no longer be cancelled).
///
/// # Safety
/// `cancel` must be NULL or a handle from this library not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_cancel_free(cancel: *mut imgest_cancel) {
    if !cancel.is_null() {
        // SAFETY: allocated by Box::into_raw in this library, freed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(cancel) })));
    }
}

/// Frees options. NULL is ignored.
///
/// # Safety
/// `opts` must be NULL or a handle from this library not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_options_free(opts: *mut imgest_options) {
    if !opts.is_null() {
        // SAFETY: allocated by Box::into_raw in this library, freed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(opts) })));
    }
}

/// Runs the whole pipeline once on `len` bytes at `data` with `opts` (NULL = defaults) and
/// stores the result in `*out` (free it with `imgest_output_free`). On error `*out` is left
/// untouched and `imgest_last_error()` says why.
///
/// # Safety
/// `data` must point to `len` readable bytes (it may be NULL only when `len` is 0); `opts` must
/// be NULL or a live handle; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_process(
    data: *const u8,
    len: usize,
    opts: *const imgest_options,
    out: *mut *mut imgest_output,
) -> imgest_status {
    guard(|| {
        if out.is_null() {
            return fail(IMGEST_NULL_ARGUMENT, "out must not be NULL");
        }
        // SAFETY: per the contract.
        let Some(bytes) = (unsafe { input(data, len) }) else {
            return fail(IMGEST_NULL_ARGUMENT, "data is NULL but len is not 0");
        };
        // SAFETY: a live handle or NULL per the contract.
        let options = unsafe { opts.as_ref() }
            .map(|o| o.inner.clone())
            .unwrap_or_default();
        let result = Pipeline::new(options).and_then(|mut p| p.run(bytes));
        // SAFETY: `out` checked non-NULL above.
        unsafe { finish(result, out) }
    })
}

/// Builds a reusable pipeline from `opts` (NULL = defaults) into `*out`; invalid options give
/// `IMGEST_INVALID_OPTIONS`.
///
/// # Safety
/// `opts` must be NULL or a live handle; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_pipeline_new(
    opts: *const imgest_options,
    out: *mut *mut imgest_pipeline,
) -> imgest_status {
    guard(|| {
        if out.is_null() {
            return fail(IMGEST_NULL_ARGUMENT, "out must not be NULL");
        }
        // SAFETY: a live handle or NULL per the contract.
        let options = unsafe { opts.as_ref() }
            .map(|o| o.inner.clone())
            .unwrap_or_default();
        match Pipeline::new(options) {
            Ok(p) => {
                let handle = Box::new(imgest_pipeline {
                    inner: Mutex::new(p),
                });
                // SAFETY: checked non-NULL; writable per the contract.
                unsafe { *out = Box::into_raw(handle) };
                IMGEST_OK
            }
            Err(e) => core_error(&e),
        }
    })
}

/// Runs `pipeline` on `len` bytes at `data`, like `imgest_process`. Calls on one pipeline from
/// several threads are serialised; use one pipeline per thread for parallelism.
///
/// # Safety
/// `pipeline` must be NULL or a live handle; `data`/`len` and `out` as for `imgest_process`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_pipeline_process(
    pipeline: *const imgest_pipeline,
    data: *const u8,
    len: usize,
    out: *mut *mut imgest_output,
) -> imgest_status {
    guard(|| {
        if out.is_null() {
            return fail(IMGEST_NULL_ARGUMENT, "out must not be NULL");
        }
        // SAFETY: a live handle or NULL per the contract.
        let Some(pipeline) = (unsafe { pipeline.as_ref() }) else {
            return fail(IMGEST_NULL_ARGUMENT, "pipeline must not be NULL");
        };
        // SAFETY: per the contract.
        let Some(bytes) = (unsafe { input(data, len) }) else {
            return fail(IMGEST_NULL_ARGUMENT, "data is NULL but len is not 0");
        };
        let result = match pipeline.inner.lock() {
            Ok(mut p) => p.run(bytes),
            Err(poisoned) => poisoned.into_inner().run(bytes),
        };
        // SAFETY: `out` checked non-NULL above.
        unsafe { finish(result, out) }
    })
}

/// `imgest_pipeline_process` that stops with `IMGEST_CANCELLED` once `cancel` is set (from any
/// thread; NULL = never).
///
/// # Safety
/// As `imgest_pipeline_process`; `cancel` must be NULL or a live handle until this call starts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_pipeline_process_cancellable(
    pipeline: *const imgest_pipeline,
    data: *const u8,
    len: usize,
    cancel: *const imgest_cancel,
    out: *mut *mut imgest_output,
) -> imgest_status {
    guard(|| {
        if out.is_null() {
            return fail(IMGEST_NULL_ARGUMENT, "out must not be NULL");
        }
        // SAFETY: a live handle or NULL per the contract.
        let Some(pipeline) = (unsafe { pipeline.as_ref() }) else {
            return fail(IMGEST_NULL_ARGUMENT, "pipeline must not be NULL");
        };
        // SAFETY: per the contract.
        let Some(bytes) = (unsafe { input(data, len) }) else {
            return fail(IMGEST_NULL_ARGUMENT, "data is NULL but len is not 0");
        };
        // SAFETY: a live handle or NULL per the contract; the run keeps its own reference.
        let token = unsafe { cancel.as_ref() }
            .map(|c| c.token.clone())
            .unwrap_or_default();
        let result = match pipeline.inner.lock() {
            Ok(mut p) => p.run_cancellable(bytes, &token),
            Err(poisoned) => poisoned.into_inner().run_cancellable(bytes, &token),
        };
        // SAFETY: `out` checked non-NULL above.
        unsafe { finish(result, out) }
    })
}

/// Frees a pipeline. NULL is ignored.
///
/// # Safety
/// `pipeline` must be NULL or a handle from this library not freed before, and not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_pipeline_free(pipeline: *mut imgest_pipeline) {
    if !pipeline.is_null() {
        // SAFETY: allocated by Box::into_raw in this library, freed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(pipeline) })
        }));
    }
}

/// # Safety
/// `out` must be NULL or a live handle.
unsafe fn output<'a>(out: *const imgest_output) -> Option<&'a imgest_output> {
    // SAFETY: per the contract.
    unsafe { out.as_ref() }
}

/// Entry `i` of one of the output's string lists, or NULL.
///
/// # Safety
/// `out` must be NULL or a live handle.
unsafe fn string_at(
    out: *const imgest_output,
    i: usize,
    list: fn(&imgest_output) -> &[CString],
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { output(out) }
        .and_then(|o| list(o).get(i))
        .map_or(ptr::null(), |s| s.as_ptr())
}

/// The number of variants (0 for NULL).
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_count(out: *const imgest_output) -> usize {
    // SAFETY: forwarded contract.
    unsafe { output(out) }.map_or(0, |o| o.output.variants.len())
}

/// Variant `i`'s name, or NULL if `out` is NULL or `i` is out of range. Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_name(
    out: *const imgest_output,
    i: usize,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { string_at(out, i, |o| &o.names) }
}

/// Variant `i`'s format (`"webp"`, `"jpeg"`, `"png"` or `"avif"`), or NULL. Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_format(
    out: *const imgest_output,
    i: usize,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { string_at(out, i, |o| &o.formats) }
}

/// Variant `i`'s width in pixels (0 if out of range).
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_width(out: *const imgest_output, i: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output(out) }
        .and_then(|o| o.output.variants.get(i))
        .map_or(0, |v| v.width)
}

/// Variant `i`'s height in pixels (0 if out of range).
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_height(out: *const imgest_output, i: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output(out) }
        .and_then(|o| o.output.variants.get(i))
        .map_or(0, |v| v.height)
}

/// Variant `i`'s encoded bytes; their length goes to `*len` (when `len` is not NULL). NULL
/// (and length 0) if out of range. Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle; `len` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_data(
    out: *const imgest_output,
    i: usize,
    len: *mut usize,
) -> *const u8 {
    // SAFETY: forwarded contract.
    let v = unsafe { output(out) }.and_then(|o| o.output.variants.get(i));
    if !len.is_null() {
        // SAFETY: writable per the contract.
        unsafe { *len = v.map_or(0, |v| v.bytes.len()) };
    }
    v.map_or(ptr::null(), |v| v.bytes.as_ptr())
}

/// Variant `i`'s SHA-256 in lowercase hex, or NULL. Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_variant_sha256(
    out: *const imgest_output,
    i: usize,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { string_at(out, i, |o| &o.sha256) }
}

/// The dominant colour as `"#rrggbb"`, or NULL (disabled, no visible pixel, or NULL `out`).
/// Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_dominant_color(out: *const imgest_output) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { output(out) }
        .and_then(|o| o.dominant.as_ref())
        .map_or(ptr::null(), |s| s.as_ptr())
}

/// The whole result as JSON (the core's wire format: variants without their bytes, colours,
/// placeholder, and the source report with what metadata was removed), or NULL. Owned by `out`.
///
/// # Safety
/// `out` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_report_json(out: *const imgest_output) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { output(out) }.map_or(ptr::null(), |o| o.report.as_ptr())
}

/// Frees an output and everything its getters returned. NULL is ignored.
///
/// # Safety
/// `out` must be NULL or a handle from this library not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn imgest_output_free(out: *mut imgest_output) {
    if !out.is_null() {
        // SAFETY: allocated by Box::into_raw in this library, freed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(out) })));
    }
}
