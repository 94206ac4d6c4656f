//! JPEG decoding through libjpeg-turbo's decompressor (built by `mozjpeg-sys`, whose decoder is
//! libjpeg-turbo's), with its reduced-size IDCT for shrink-on-load. The C side (`csrc/jpeg.c`)
//! turns libjpeg's non-returning error exit into return codes, so no error ever unwinds through
//! Rust; this module owns the state, the output buffer and the limits.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use core::mem::MaybeUninit;

use crate::budget::Budget;
use crate::error::{Error, LimitKind};

// Link the library `mozjpeg-sys` builds.
use mozjpeg_sys as _;

unsafe extern "C" {
    fn imgest_jpeg_size() -> usize;
    fn imgest_jpeg_begin(d: *mut u8, data: *const u8, len: c_ulong, max_memory: c_long) -> c_int;
    fn imgest_jpeg_info(
        d: *const u8,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
        color_space: *mut c_int,
        adobe: *mut c_int,
    );
    fn imgest_jpeg_start(
        d: *mut u8,
        scale_denom: c_uint,
        jpeg_color_space: c_int,
        out_color_space: c_int,
        stop: Option<unsafe extern "C" fn(*const c_void) -> c_int>,
        stop_ctx: *const c_void,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
    ) -> c_int;
    fn imgest_jpeg_read(
        d: *mut u8,
        out: *mut u8,
        stride: usize,
        rows: c_uint,
        done: *mut c_uint,
    ) -> c_int;
    #[cfg(feature = "rayon")]
    fn imgest_jpeg_layout(d: *mut u8, multi_scan: *mut c_int, rows_per_imcu: *mut c_uint) -> c_int;
    #[cfg(feature = "rayon")]
    fn imgest_jpeg_skip(d: *mut u8, rows: c_uint) -> c_int;
    #[cfg(feature = "rayon")]
    fn imgest_jpeg_restarts(
        d: *mut u8,
        interval: *mut c_uint,
        mcus_per_imcu: *mut c_uint,
        imcu_source_rows: *mut c_uint,
    ) -> c_int;
    #[cfg(feature = "rayon")]
    fn imgest_jpeg_warnings(d: *const u8) -> c_long;
    fn imgest_jpeg_message(d: *const u8, code: c_int, params: *mut *const c_int) -> *const c_char;
    fn imgest_jpeg_kind(code: c_int) -> c_int;
    fn imgest_jpeg_end(d: *mut u8);
}

/// libjpeg's progress callback: nonzero once the run's time budget is spent or it is cancelled.
///
/// # Safety
/// `ctx` points at a live [`Budget`].
unsafe extern "C" fn stop(ctx: *const c_void) -> c_int {
    // SAFETY: the caller's contract; `stopped` reads the clock and an atomic, and cannot panic.
    let time = unsafe { &*ctx.cast::<Budget<'_>>() };
    c_int::from(time.stopped())
}

/// libjpeg's `J_COLOR_SPACE` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum ColorSpace {
    Gray = 1,
    Rgb = 2,
    YCbCr = 3,
    Cmyk = 4,
    Ycck = 5,
}

/// The frame header as libjpeg read it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Info {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    /// libjpeg's guess of the stored colour space (0 = unknown).
    pub color_space: i32,
    pub adobe: bool,
}

impl Info {
    /// The colour spaces to decode from and to: gray as gray, three components as RGB (from
    /// YCbCr if `ycbcr`, as the container walk decided), four as CMYK (YCCK converted).
    pub fn color_spaces(&self, ycbcr: bool) -> Result<(ColorSpace, ColorSpace), Error> {
        Ok(match self.components {
            1 => (ColorSpace::Gray, ColorSpace::Gray),
            3 if ycbcr => (ColorSpace::YCbCr, ColorSpace::Rgb),
            3 => (ColorSpace::Rgb, ColorSpace::Rgb),
            4 if self.color_space == ColorSpace::Ycck as i32 => {
                (ColorSpace::Ycck, ColorSpace::Cmyk)
            }
            4 => (ColorSpace::Cmyk, ColorSpace::Cmyk),
            n => return Err(Error::unsupported(format!("JPEG with {n} components"))),
        })
    }
}

/// Decoded samples, `components` bytes per pixel, rows packed.
pub(crate) struct Samples {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    pub data: Vec<u8>,
}

/// Output pixels from which a decode splits in two ([`Decoder::decode`]): about 2 ms of
/// decoding, well above the cost of a second decoder (its headers, its tables, a thread's wake).
#[cfg(feature = "rayon")]
const SPLIT_PIXELS: u64 = 1 << 18;

/// Whether a decode splits in two.
#[derive(Clone, Copy, Debug)]
enum Split {
    /// Where [`Decoder::split_row`] says.
    Auto,
    /// Never.
    #[cfg_attr(not(test), allow(dead_code))]
    Never,
    /// At this row, the second part always on its own decoder (tests).
    #[cfg(test)]
    At(u32),
    /// At the restart marker [`Decoder::restart_cut`] picks whatever the image's size, the
    /// second part always on its own decoder (tests).
    #[cfg(test)]
    Restart,
}

/// Where a split's second decoder starts on a stream of its own instead of passing over the
/// rows above its part: a restart marker at the start of an iMCU row ([`Decoder::restart_cut`]).
#[cfg(feature = "rayon")]
#[derive(Clone, Copy, Debug)]
struct Restart {
    /// The iMCU row its stream starts at: one above its part, whose first rows' upsampling
    /// reads the chroma rows above them.
    imcu_row: u32,
    /// Output rows per iMCU row.
    imcu: u32,
    /// The restart markers in the data before that row (a multiple of 8, so that the stream's
    /// first marker is RST0, as libjpeg expects).
    markers: u64,
    /// The source rows above that row.
    source_rows: u32,
}

/// Restart cuts taken (tests count them to know the path ran).
#[cfg(all(test, feature = "rayon"))]
static RESTART_CUTS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The rows below the split, and how far the first part has come.
#[cfg(feature = "rayon")]
struct Parts<'b> {
    bottom: std::sync::Mutex<Option<&'b mut [MaybeUninit<u8>]>>,
    /// Rows the first part has decoded.
    done: core::sync::atomic::AtomicU32,
    /// Whether the first side may take the rows below (and the second decline them once the
    /// first part is halfway); tests leave them to the second decoder always.
    auto: bool,
}

#[cfg(feature = "rayon")]
impl<'b> Parts<'b> {
    /// The rows below the split, to the first side that asks. The second decoder (`split` =
    /// how far the first part may have come, and whether the second decoder passes over the
    /// rows above its part) takes them only while the first part is short of that. Passing
    /// over the rows, it goes only to halfway (past that, doing so costs more than the first
    /// decoder going on) and only if a core is free for it: the rows above are decoded twice.
    /// From a restart marker, no work is done twice, so it goes whatever the other cores do.
    fn take_bottom(&self, split: Option<(u32, bool)>) -> Option<&'b mut [MaybeUninit<u8>]> {
        if let Some((limit, passes_over)) = split
            && self.auto
            && (self.done.load(core::sync::atomic::Ordering::Relaxed) >= limit
                || (passes_over && !core_free()))
        {
            return None;
        }
        self.bottom.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Whether the machine has a core for a second decoder: no more threads ready to run than
/// cores, as Linux counts them in `/proc/loadavg` (the asking thread and the first decoder
/// among them). Where the cores are all busy (other processes, other runs), passing over the
/// first part's rows again would only take CPU time from them. Elsewhere (no `/proc`), any
/// machine with two cores.
#[cfg(feature = "rayon")]
fn core_free() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(text) => running_threads(&text).is_none_or(|running| running <= cores),
        Err(_) => cores > 1,
    }
}

/// The threads ready to run in a `/proc/loadavg` line ("0.50 0.40 0.30 2/345 6789": the fourth
/// field is running/total).
#[cfg(feature = "rayon")]
fn running_threads(loadavg: &str) -> Option<usize> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .0
        .parse()
        .ok()
}

/// A decompressor over `bytes`; freed on drop whatever state it is in.
pub(crate) struct Decoder<'a> {
    /// The C state, 16-byte aligned (it holds a `jmp_buf`).
    state: Box<[u128]>,
    /// libjpeg reads `bytes` until the decoder is dropped (a second decoder may read them too).
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    bytes: &'a [u8],
    /// The bound on the library's own buffers.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    max_memory: u64,
    /// A buffer the decoded rows go into if it holds them ([`Decoder::reusing`]).
    reuse: Vec<u8>,
}

impl Drop for Decoder<'_> {
    fn drop(&mut self) {
        // SAFETY: the state was set up by `imgest_jpeg_begin`; `end` frees what the library
        // allocated and is a no-op if nothing was.
        unsafe { imgest_jpeg_end(self.ptr()) }
    }
}

impl<'a> Decoder<'a> {
    fn ptr(&mut self) -> *mut u8 {
        self.state.as_mut_ptr().cast()
    }

    /// Reads the headers. `max_memory` bounds the library's own buffers.
    pub fn new(bytes: &'a [u8], max_memory: u64) -> Result<Self, Error> {
        // SAFETY: a size query.
        let size = unsafe { imgest_jpeg_size() };
        let mut d = Decoder {
            state: vec![0u128; size.div_ceil(16)].into_boxed_slice(),
            bytes,
            max_memory,
            reuse: Vec::new(),
        };
        let len = c_ulong::try_from(bytes.len())
            .map_err(|_| Error::corrupt("jpeg", "input too large for the decoder"))?;
        let max = c_long::try_from(max_memory).unwrap_or(c_long::MAX);
        // SAFETY: the state is zeroed and large enough; `bytes` outlives the decoder (the
        // lifetime of `Decoder` borrows it).
        let code = unsafe { imgest_jpeg_begin(d.ptr(), bytes.as_ptr(), len, max) };
        d.check(code, max_memory)?;
        Ok(d)
    }

    /// Decodes into `buffer` (its contents are dropped) if its capacity holds the decoded
    /// rows, so that a caller decoding image after image writes to memory already mapped
    /// instead of faulting a new block in page by page.
    pub fn reusing(mut self, buffer: Vec<u8>) -> Self {
        self.reuse = buffer;
        self
    }

    pub fn info(&mut self) -> Info {
        let (mut w, mut h, mut c, mut cs, mut adobe) = (0, 0, 0, 0, 0);
        // SAFETY: the headers were read (`new` succeeded); plain out-parameters.
        unsafe { imgest_jpeg_info(self.ptr(), &mut w, &mut h, &mut c, &mut cs, &mut adobe) };
        Info {
            width: w,
            height: h,
            components: c.max(0) as u32,
            color_space: cs,
            adobe: adobe != 0,
        }
    }

    /// Decodes the whole image at `1/shrink` scale from `stored` to `out` colour space.
    /// `budget` is the allocation budget the output buffer must fit in; `time` is checked at
    /// every progress report of libjpeg (each iMCU row of each scan, each output row).
    ///
    /// With the `rayon` feature, a large single-scan image is decoded in two parts at once when
    /// another thread is free: this thread decodes the rows above [`split_row`], and a second
    /// decoder decodes the rest. With restart markers at row starts (cameras and phones write
    /// them), the second decoder reads a stream of the headers and the data from a marker near
    /// the middle on; without, it reads the same data and passes over the rows above its part
    /// (entropy decoding only, as `jpeg_skip_scanlines` does). The rows are the same bytes either
    /// way (a test compares every corpus JPEG at every scale); what it saves is measured in
    /// `benches/RESULTS.md`. The second part goes to whichever side gets to it first: a decode
    /// on a busy pool, where no thread is free to start the second decoder early, or on a
    /// machine whose cores are all busy ([`core_free`]), runs as one decode with nothing
    /// skipped. Progressive images are read whole by `start` and never split.
    pub fn decode(
        self,
        shrink: u32,
        stored: ColorSpace,
        out: ColorSpace,
        budget: u64,
        time: &Budget<'_>,
    ) -> Result<Samples, Error> {
        self.decode_split(shrink, stored, out, budget, time, Split::Auto)
    }

    fn decode_split(
        mut self,
        shrink: u32,
        stored: ColorSpace,
        out: ColorSpace,
        budget: u64,
        time: &Budget<'_>,
        split: Split,
    ) -> Result<Samples, Error> {
        let (w, h, components) = self.start(shrink, stored, out, budget, time)?;
        let stride = w as usize * components as usize;
        let total = stride as u64 * u64::from(h);
        if total > budget {
            return Err(Error::limit_exceeded(LimitKind::Alloc, total, budget));
        }
        // Not zero-filled first (a pass over the whole image): libjpeg writes every row, and
        // the length is set only once it has.
        let len = stride * h as usize;
        let mut data = std::mem::take(&mut self.reuse);
        data.clear();
        if data.capacity() < len {
            // The smaller block is freed before the larger one is taken.
            data = Vec::new();
            data.reserve_exact(len);
        }
        let rows = &mut data.spare_capacity_mut()[..len];
        let at = match split {
            Split::Never => None,
            Split::Auto => self.split_row(w, h, budget)?,
            #[cfg(test)]
            Split::At(k) => Some(k).filter(|&k| k > 0 && k < h).map(|k| (k, None)),
            #[cfg(all(test, feature = "rayon"))]
            Split::Restart => self.restart_split(h, budget)?,
            #[cfg(all(test, not(feature = "rayon")))]
            Split::Restart => None,
        };
        match at {
            #[cfg(feature = "rayon")]
            Some((k, restart)) => {
                let (top, bottom) = rows.split_at_mut(k as usize * stride);
                let parts = Parts {
                    bottom: std::sync::Mutex::new(Some(bottom)),
                    done: core::sync::atomic::AtomicU32::new(0),
                    auto: matches!(split, Split::Auto),
                };
                let (bytes, max_memory) = (self.bytes, self.max_memory);
                // SAFETY: a read of the decoder's warning count (the headers' warnings).
                let warned = unsafe { imgest_jpeg_warnings(self.ptr()) };
                let (first, second) = rayon::join(
                    || {
                        self.read_rows(top, stride, budget, time, Some(&parts.done))?;
                        match parts.auto.then(|| parts.take_bottom(None)).flatten() {
                            Some(rest) => self.read_rows(rest, stride, budget, time, None),
                            None => Ok(()),
                        }
                    },
                    || {
                        let split = match restart {
                            Some(_) => (k / 4 * 3, false),
                            None => (k / 2, true),
                        };
                        let Some(rest) = parts.take_bottom(Some(split)) else {
                            return Ok(false);
                        };
                        // From a restart marker: a stream of the headers and the data from
                        // there on; else over the same data, passing over the rows above.
                        let stream = restart.and_then(|r| {
                            let data =
                                crate::container::restart_stream(bytes, r.source_rows, r.markers)?;
                            Some((r, data))
                        });
                        let (data, skip, rows) = match &stream {
                            Some((r, data)) => (&data[..], r.imcu, h - r.imcu_row * r.imcu),
                            None => (bytes, k, h),
                        };
                        let mut other = Decoder::new(data, max_memory)?;
                        let size = other.start(shrink, stored, out, budget, time)?;
                        if size != (w, rows, components) {
                            return Err(Error::internal("libjpeg's second decoder differs"));
                        }
                        other.skip(skip, budget, time)?;
                        other.read_rows(rest, stride, budget, time, None)?;
                        #[cfg(test)]
                        if stream.is_some() {
                            RESTART_CUTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(stream.is_some())
                    },
                );
                // The first part's error is the one a single decode would have met first.
                first?;
                let restarted = second?;
                // Both parts succeeded, so one of them took the rows below and wrote them.
                if parts.take_bottom(None).is_some() {
                    return Err(Error::internal("libjpeg: rows left undecoded"));
                }
                // Corrupt data above the cut (the first decoder warned while decoding it) may
                // leave a whole decode out of step at the marker (a lost or repeated
                // interval); only a decode from the top gives its rows then.
                // SAFETY: a read of the decoder's warning count.
                if restarted && unsafe { imgest_jpeg_warnings(self.ptr()) } > warned {
                    return Decoder::new(self.bytes, self.max_memory)?
                        .reusing(data)
                        .decode_split(shrink, stored, out, budget, time, Split::Never);
                }
            }
            _ => self.read_rows(rows, stride, budget, time, None)?,
        }
        // SAFETY: rows 0..h, `stride` bytes each, were all written above.
        unsafe { data.set_len(len) };
        Ok(Samples {
            width: w,
            height: h,
            components,
            data,
        })
    }

    /// Starts the decompression: the output's width, height and components.
    fn start(
        &mut self,
        shrink: u32,
        stored: ColorSpace,
        out: ColorSpace,
        budget: u64,
        time: &Budget<'_>,
    ) -> Result<(u32, u32, u32), Error> {
        let (mut w, mut h, mut c) = (0, 0, 0);
        let stop: Option<unsafe extern "C" fn(*const c_void) -> c_int> =
            if time.is_bounded() { Some(stop) } else { None };
        let ctx: *const Budget<'_> = time;
        // SAFETY: the headers were read; plain out-parameters. `ctx` points at `time`, which
        // outlives every call on this decoder (the decoder lives inside `decode`, which
        // borrows `time`, and `end` forgets the callback).
        let code = unsafe {
            imgest_jpeg_start(
                self.ptr(),
                shrink,
                stored as c_int,
                out as c_int,
                stop,
                ctx.cast(),
                &mut w,
                &mut h,
                &mut c,
            )
        };
        self.check(code, budget).map_err(|e| time.or(e))?;
        Ok((w, h, u32::try_from(c).unwrap_or(0)))
    }

    /// Where a decode of `w` × `h` output rows splits in two ([`Decoder::decode`]), if it
    /// does (a single-scan image of at least [`SPLIT_PIXELS`]), and whether its second decoder
    /// starts at a restart marker. With restart markers at iMCU rows near the middle
    /// ([`Decoder::restart_cut`]), the second decoder reads only its own part's data, and the
    /// split is there. Without, it passes over the rows above its part at 35–50 % of their
    /// decode time, so the split is at 5/8 of the height (the parts then take about as long),
    /// rounded down to whole iMCU rows.
    #[cfg(feature = "rayon")]
    fn split_row(
        &mut self,
        w: u32,
        h: u32,
        budget: u64,
    ) -> Result<Option<(u32, Option<Restart>)>, Error> {
        if u64::from(w) * u64::from(h) < SPLIT_PIXELS {
            return Ok(None);
        }
        let Some(imcu) = self.single_scan_imcu(budget)? else {
            return Ok(None);
        };
        if let Some(cut) = self.restart_cut(h, imcu, budget)? {
            return Ok(Some(((cut.imcu_row + 1) * imcu, Some(cut))));
        }
        let k = (h / 8 * 5) / imcu * imcu;
        Ok((k > 0 && k < h).then_some((k, None)))
    }

    #[cfg(not(feature = "rayon"))]
    fn split_row(
        &mut self,
        _w: u32,
        _h: u32,
        _budget: u64,
    ) -> Result<Option<(u32, Option<core::convert::Infallible>)>, Error> {
        Ok(None)
    }

    /// The output rows per iMCU row of a single-scan image; `None` for one of several scans.
    #[cfg(feature = "rayon")]
    fn single_scan_imcu(&mut self, budget: u64) -> Result<Option<u32>, Error> {
        let (mut multi_scan, mut imcu) = (0, 0);
        // SAFETY: decompression has started; plain out-parameters.
        let code = unsafe { imgest_jpeg_layout(self.ptr(), &mut multi_scan, &mut imcu) };
        self.check(code, budget)?;
        Ok((multi_scan == 0 && imcu > 0).then_some(imcu))
    }

    /// [`Decoder::restart_cut`] whatever the image's size (tests).
    #[cfg(all(test, feature = "rayon"))]
    fn restart_split(
        &mut self,
        h: u32,
        budget: u64,
    ) -> Result<Option<(u32, Option<Restart>)>, Error> {
        let Some(imcu) = self.single_scan_imcu(budget)? else {
            return Ok(None);
        };
        let cut = self.restart_cut(h, imcu, budget)?;
        Ok(cut.map(|c| ((c.imcu_row + 1) * imcu, Some(c))))
    }

    /// The restart marker nearest the middle of a single-scan image of `h` output rows
    /// (`imcu` per iMCU row) where a second decoder can start on a stream of its own: one that
    /// starts an iMCU row, and whose count of markers before it is a multiple of 8 (the
    /// stream's first is then RST0, as libjpeg expects; nothing in the data is rewritten).
    /// Between a third and two thirds of the height, with an iMCU row above it for the
    /// upsampling's context; `None` without such a marker (no restart markers, or intervals
    /// that do not start rows there).
    #[cfg(feature = "rayon")]
    fn restart_cut(&mut self, h: u32, imcu: u32, budget: u64) -> Result<Option<Restart>, Error> {
        let (mut interval, mut mcus, mut source_rows) = (0, 0, 0);
        // SAFETY: decompression has started; plain out-parameters.
        let code =
            unsafe { imgest_jpeg_restarts(self.ptr(), &mut interval, &mut mcus, &mut source_rows) };
        self.check(code, budget)?;
        let (interval, mcus) = (u64::from(interval), u64::from(mcus));
        let rows = h.div_ceil(imcu);
        if interval == 0 || mcus == 0 || rows < 3 {
            return Ok(None);
        }
        let fits = |r: u32| {
            let before = u64::from(r) * mcus;
            (r >= 1 && r + 2 <= rows && before % interval == 0 && (before / interval) % 8 == 0)
                .then(|| Restart {
                    imcu_row: r,
                    imcu,
                    markers: before / interval,
                    source_rows: r * source_rows,
                })
        };
        let middle = rows / 2;
        Ok((0..=rows / 6)
            .flat_map(|d| [middle.checked_sub(d), middle.checked_add(d)])
            .flatten()
            .find_map(fits))
    }

    /// Passes over the next `rows` output rows without producing them.
    #[cfg(feature = "rayon")]
    fn skip(&mut self, rows: u32, budget: u64, time: &Budget<'_>) -> Result<(), Error> {
        // SAFETY: decompression has started.
        let code = unsafe { imgest_jpeg_skip(self.ptr(), rows) };
        self.check(code, budget).map_err(|e| time.or(e))
    }

    /// Decodes the next `out.len() / stride` rows into `out`, and counts them in `done`.
    fn read_rows(
        &mut self,
        out: &mut [MaybeUninit<u8>],
        stride: usize,
        budget: u64,
        time: &Budget<'_>,
        done: Option<&core::sync::atomic::AtomicU32>,
    ) -> Result<(), Error> {
        let rows = u32::try_from(out.len() / stride.max(1)).unwrap_or(u32::MAX);
        let mut row = 0u32;
        while row < rows {
            // A few rows per call, so that `done` says how far this part has come.
            let want = (rows - row).min(64);
            let mut n = 0;
            // SAFETY: `out` has room for `rows - row` more rows of `stride` bytes from that
            // offset; libjpeg writes at most `want` rows there and says how many it wrote.
            let code = unsafe {
                imgest_jpeg_read(
                    self.ptr(),
                    out.as_mut_ptr().add(row as usize * stride).cast(),
                    stride,
                    want,
                    &mut n,
                )
            };
            self.check(code, budget).map_err(|e| time.or(e))?;
            if n == 0 || n > want {
                return Err(Error::corrupt("jpeg", "truncated: no more rows"));
            }
            row += n;
            if let Some(done) = done {
                done.store(row, core::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn check(&mut self, code: c_int, budget: u64) -> Result<(), Error> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: a pure function of the code.
        let kind = unsafe { imgest_jpeg_kind(code) };
        let message = self.message(code);
        Err(match kind {
            1 => Error::unsupported(format!("JPEG: {message}")),
            2 => Error::limit_exceeded(LimitKind::Alloc, budget.saturating_add(1), budget),
            4 => Error::internal("libjpeg stopped without a spent time budget"),
            3 => Error::corrupt("jpeg", format!("truncated: {message}")),
            _ => Error::corrupt("jpeg", message),
        })
    }

    /// libjpeg's message for `code`, its `%d`/`%u`/`%s` placeholders filled in.
    fn message(&mut self, code: c_int) -> String {
        let mut params: *const c_int = core::ptr::null();
        // SAFETY: returns a static NUL-terminated template and a pointer to the 8 integer
        // parameters (or the string parameter in the same union) inside the state.
        let (template, ints, text) = unsafe {
            let t = imgest_jpeg_message(self.ptr(), code, &mut params);
            let template = core::ffi::CStr::from_ptr(t).to_string_lossy().into_owned();
            let ints: [c_int; 8] = core::ptr::read(params.cast::<[c_int; 8]>());
            let raw = core::slice::from_raw_parts(params.cast::<u8>(), 80);
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            (
                template,
                ints,
                String::from_utf8_lossy(&raw[..end]).into_owned(),
            )
        };
        let mut out = String::with_capacity(template.len() + 16);
        let mut next = ints.iter();
        let mut chars = template.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch != '%' {
                out.push(ch);
                continue;
            }
            // Skip flags and width ("%-3d", "%4u").
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || *c == '-')
            {
                chars.next();
            }
            match chars.next() {
                Some('d' | 'u' | 'x' | 'X' | 'i') => {
                    out.push_str(&next.next().copied().unwrap_or(0).to_string())
                }
                Some('s') => out.push_str(&text),
                Some('%') => out.push('%'),
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// A `w`×`h` RGB JPEG (4:2:0, quality 90) of gradients and noise.
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        crate::test_jpeg(w, h, 0x9E37_79B9)
    }

    fn decode(bytes: &[u8], shrink: u32, budget: u64) -> Result<Samples, Error> {
        decode_timed(bytes, shrink, budget, &Budget::NONE)
    }

    fn decode_timed(
        bytes: &[u8],
        shrink: u32,
        budget: u64,
        time: &Budget,
    ) -> Result<Samples, Error> {
        let (stored, out) = (ColorSpace::YCbCr, ColorSpace::Rgb);
        Decoder::new(bytes, budget)?.decode(shrink, stored, out, budget, time)
    }

    fn decode_at(bytes: &[u8], shrink: u32, split: Split) -> Result<Samples, Error> {
        let info = Decoder::new(bytes, 1 << 30)?.info();
        let (stored, out) = info.color_spaces(info.color_space == ColorSpace::YCbCr as i32)?;
        Decoder::new(bytes, 1 << 30)?.decode_split(
            shrink,
            stored,
            out,
            1 << 30,
            &Budget::NONE,
            split,
        )
    }

    /// A decode split in two (the second decoder passing over the rows above its part) gives
    /// the same bytes as one decode, whatever the row it splits at, at every scale, for every
    /// JPEG of the corpus (4:2:0, 4:2:2, 4:4:0, 4:4:4, 4:1:1, gray, CMYK, restart markers,
    /// progressive, odd sizes) and for photos made here; and the same error where one fails.
    #[test]
    fn a_split_decode_gives_the_same_bytes() {
        let mut inputs = vec![jpeg(517, 301), jpeg(64, 48), jpeg(16, 1000)];
        if let Some(root) = crate::corpus_root() {
            let mut paths = Vec::new();
            for dir in ["jpeg", "orientation", "large", "other", "bad"] {
                for entry in std::fs::read_dir(root.join(dir))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let p = entry.path();
                    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg") {
                        paths.push(p);
                    }
                }
            }
            paths.sort();
            assert!(paths.len() >= 40, "{} corpus JPEGs", paths.len());
            inputs.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
        }
        let mut compared = 0;
        for bytes in &inputs {
            if Decoder::new(bytes, 1 << 30).is_err() {
                continue;
            }
            for shrink in [1, 2, 4, 8] {
                let whole = decode_at(bytes, shrink, Split::Never);
                let Ok(whole) = whole else {
                    let code = whole.err().map(|e| e.code());
                    let split = decode_at(bytes, shrink, Split::At(1))
                        .err()
                        .map(|e| e.code());
                    assert_eq!(split, code);
                    continue;
                };
                let h = whole.height;
                for k in [1, 7, 8, 9, 15, 16, 17, h / 2, h / 8 * 5, h - 1] {
                    if k == 0 || k >= h {
                        continue;
                    }
                    let split = decode_at(bytes, shrink, Split::At(k)).unwrap();
                    assert_eq!((split.width, split.height), (whole.width, h));
                    let row = (whole.width * whole.components) as usize;
                    if let Some(y) = (0..h as usize)
                        .find(|&y| split.data[y * row..][..row] != whole.data[y * row..][..row])
                    {
                        panic!("split at {k}, 1/{shrink}: row {y} of {h} differs");
                    }
                    compared += 1;
                }
                let auto = decode_at(bytes, shrink, Split::Auto).unwrap();
                assert!(auto.data == whole.data, "automatic split, 1/{shrink}");
                let restart = decode_at(bytes, shrink, Split::Restart).unwrap();
                assert!(
                    restart.data == whole.data,
                    "split at a restart marker, 1/{shrink}"
                );
            }
        }
        assert!(compared > 100, "{compared} splits compared");
        // The corpus JPEGs with restart markers at row starts (4:2:0, 4:4:4, CMYK, 33 × 33 to
        // 4032 × 2012) split there at every scale that leaves three iMCU rows or more.
        #[cfg(feature = "rayon")]
        if crate::corpus_root().is_some() {
            let cuts = RESTART_CUTS.load(core::sync::atomic::Ordering::Relaxed);
            assert!(cuts >= 20, "{cuts} splits at a restart marker");
        }
        // A file cut short below the split row: the second decoder meets the end of the data,
        // and the decode fails as a whole one does.
        let bytes = jpeg(517, 301);
        for len in [bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 40] {
            let cut = &bytes[..len];
            let whole = decode_at(cut, 1, Split::Never).err().map(|e| e.code());
            assert_eq!(whole, Some(ErrorCode::CorruptInput));
            for k in [16, 150, 288] {
                let split = decode_at(cut, 1, Split::At(k)).err().map(|e| e.code());
                assert_eq!(split, whole, "cut at {len}, split at {k}");
            }
        }
    }

    /// Corrupt data above a restart cut (garbled bytes, a marker renumbered, a marker lost):
    /// a split still gives the whole decode's rows. A marker out of sequence makes the second
    /// decoder pass over the rows instead, and warnings from the first (corrupt data it decoded
    /// past) send the image back to one decode; either guard alone holds these three files.
    #[cfg(feature = "rayon")]
    #[test]
    fn a_restart_cut_after_corrupt_data_gives_the_same_bytes() {
        let Some(root) = crate::corpus_root() else {
            return;
        };
        let good = std::fs::read(root.join("jpeg/xmp_test.jpg")).unwrap();
        // The main image's scan (the EXIF thumbnail before it has one of its own).
        let mut scan = 2;
        while good[scan + 1] != 0xDA {
            scan += 2 + usize::from(u16::from_be_bytes([good[scan + 2], good[scan + 3]]));
        }
        let rst: Vec<usize> = (scan..good.len() - 1)
            .filter(|&i| good[i] == 0xFF && (0xD0..=0xD7).contains(&good[i + 1]))
            .collect();
        assert!(rst.len() > 100, "{} restart markers", rst.len());
        let mut noise = crate::xorshift32(7);
        let mut garbled = good.clone();
        for b in &mut garbled[rst[2] + 2..rst[2] + 300] {
            // Entropy-coded bytes with no 0xFF (no marker, no stuffing) but wrong.
            *b = (noise() % 255) as u8;
        }
        let mut renumbered = good.clone();
        renumbered[rst[5] + 1] = 0xD0 + (renumbered[rst[5] + 1] - 0xD0 + 1) % 8;
        let mut dropped = good.clone();
        dropped.drain(rst[8]..rst[8] + 2);
        let mut decoded = 0;
        for (name, bytes) in [
            ("garbled", &garbled),
            ("renumbered", &renumbered),
            ("dropped", &dropped),
        ] {
            for shrink in [1, 2] {
                let whole = decode_at(bytes, shrink, Split::Never);
                let split = decode_at(bytes, shrink, Split::Restart);
                match (whole, split) {
                    (Ok(whole), Ok(split)) => {
                        assert!(split.data == whole.data, "{name}, 1/{shrink}");
                        decoded += 1;
                    }
                    (whole, split) => assert_eq!(
                        whole.err().map(|e| e.code()),
                        split.err().map(|e| e.code()),
                        "{name}, 1/{shrink}"
                    ),
                }
            }
        }
        assert!(decoded >= 4, "{decoded} corrupt files decoded");
    }

    /// `jpeg_simd()` (read from the build's `jconfig.h`) says what the linked library does:
    /// libjpeg-turbo's own check of its IDCT (false in a build without SIMD code; on x86-64 and
    /// Arm64 every CPU has the instructions it needs). `IMGEST_REQUIRE_JPEG_SIMD=1` (the check
    /// script) makes the SIMD build mandatory, so a build that lost it (no nasm) fails here.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_jpeg_simd_flag_matches_the_linked_library() {
        unsafe extern "C" {
            fn jsimd_can_idct_islow() -> c_int;
        }
        // SAFETY: a libjpeg-turbo function without arguments (SIMD build or not, the library
        // defines it); it reads the CPU's features once and returns 0 or 1.
        let linked = unsafe { jsimd_can_idct_islow() } != 0;
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert_eq!(crate::jpeg_simd(), linked);
        }
        if std::env::var("IMGEST_REQUIRE_JPEG_SIMD").is_ok_and(|v| v == "1") {
            assert!(
                crate::jpeg_simd() && linked,
                "IMGEST_REQUIRE_JPEG_SIMD=1 but libjpeg-turbo was built without SIMD (nasm missing?)"
            );
        } else if !crate::jpeg_simd() {
            eprintln!("note: libjpeg-turbo was built without its SIMD code (install nasm)");
        }
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn running_threads_are_read_from_loadavg() {
        assert_eq!(running_threads("0.50 0.40 0.30 2/345 6789\n"), Some(2));
        assert_eq!(running_threads("1.74 1.86 1.66 17/81 5212"), Some(17));
        assert_eq!(running_threads("0.50 0.40 0.30"), None);
        assert_eq!(running_threads("0.50 0.40 0.30 x/345 6789"), None);
        assert_eq!(running_threads(""), None);
    }

    /// A cancelled or spent budget stops the decode at libjpeg's next progress report, in a
    /// baseline image's rows and in a progressive image's scans (read by `start`), and the
    /// decoder state is freed (valgrind runs the same path through the C tests).
    #[test]
    fn a_spent_budget_stops_libjpeg() {
        let token = crate::CancelToken::new();
        token.cancel();
        let time = Budget::start(None, Some(&token));
        let bytes = jpeg(640, 480);
        let err = decode_timed(&bytes, 1, 1 << 30, &time).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
        let Some(root) = crate::corpus_root() else {
            return;
        };
        let bytes = std::fs::read(root.join("jpeg/progressive_3.jpg")).unwrap();
        let time = Budget::start(Some(1), None);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let err = decode_timed(&bytes, 8, 1 << 30, &time).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    }

    /// A buffer given to `reusing` that holds the rows is the one they are written to, whatever
    /// it held, and the pixels are a fresh decode's; one too small is replaced.
    #[test]
    fn decodes_into_a_reused_buffer() {
        let bytes = jpeg(640, 480);
        let fresh = decode(&bytes, 1, 1 << 30).unwrap();
        for split in [Split::Never, Split::At(240)] {
            let mut old = vec![0xA5u8; 640 * 480 * 3 + 1000];
            old.truncate(17);
            let at = old.as_ptr();
            let (stored, out) = (ColorSpace::YCbCr, ColorSpace::Rgb);
            let s = Decoder::new(&bytes, 1 << 30)
                .unwrap()
                .reusing(old)
                .decode_split(1, stored, out, 1 << 30, &Budget::NONE, split)
                .unwrap();
            assert_eq!(s.data.as_ptr(), at, "{split:?}: not the buffer given");
            assert!(s.data == fresh.data, "{split:?}: pixels differ");
        }
        let small = Vec::with_capacity(100);
        let s = Decoder::new(&bytes, 1 << 30)
            .unwrap()
            .reusing(small)
            .decode(
                2,
                ColorSpace::YCbCr,
                ColorSpace::Rgb,
                1 << 30,
                &Budget::NONE,
            )
            .unwrap();
        assert_eq!(s.data, decode(&bytes, 2, 1 << 30).unwrap().data);
    }

    #[test]
    fn scaled_output_sizes_round_up() {
        for (w, h) in [(1, 1), (37, 23), (16, 9), (129, 7)] {
            let bytes = jpeg(w, h);
            let info = Decoder::new(&bytes, 1 << 30).unwrap().info();
            assert_eq!((info.width, info.height, info.components), (w, h, 3));
            for shrink in [1, 2, 4, 8] {
                let s = decode(&bytes, shrink, 1 << 30).unwrap();
                let want = (w.div_ceil(shrink), h.div_ceil(shrink));
                assert_eq!((s.width, s.height, s.components), (want.0, want.1, 3));
                assert_eq!(s.data.len(), (want.0 * want.1 * 3) as usize);
            }
        }
    }

    /// Another decoder (the `image` crate's) gives nearly the same pixels: same colour
    /// conversion, different chroma upsampling and IDCT rounding.
    #[test]
    fn pixels_agree_with_another_decoder() {
        let bytes = jpeg(96, 64);
        let ours = decode(&bytes, 1, 1 << 30).unwrap();
        let theirs = image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8()
            .into_raw();
        assert_eq!(ours.data.len(), theirs.len());
        let diffs: Vec<u32> = ours
            .data
            .iter()
            .zip(&theirs)
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .collect();
        let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
        assert!(mean < 1.5, "mean difference {mean}");
        assert!(
            diffs.iter().all(|&d| d <= 24),
            "max {:?}",
            diffs.iter().max()
        );
    }

    /// Every truncation is `corrupt_input` (never a partly gray image, a panic or a hang), and
    /// the decoder state is freed each time (the C tests run the same path under valgrind).
    #[test]
    fn truncated_data_is_corrupt_at_every_length() {
        let bytes = jpeg(64, 48);
        // Down to a missing end-of-image marker alone (libjpeg reads ahead past the last
        // entropy-coded byte, so it cannot tell; jpeg-decoder refused those files too).
        let ends = [bytes.len() - 2, bytes.len() - 1];
        for len in (0..bytes.len() - 2).step_by(7).chain(ends) {
            let err = decode(&bytes[..len], 1, 1 << 30).err();
            let code = err.as_ref().map(Error::code);
            assert_eq!(
                code,
                Some(ErrorCode::CorruptInput),
                "{len} of {} bytes: {err:?}",
                bytes.len()
            );
        }
        assert!(decode(&bytes, 1, 1 << 30).is_ok());
    }

    /// A precision this build lacks is `unsupported_format`, its message filled in.
    #[test]
    fn twelve_bit_data_is_unsupported_and_says_so() {
        let mut bytes = jpeg(16, 16);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 4] = 12;
        let err = decode(&bytes, 1, 1 << 30).err().unwrap();
        assert_eq!(err.code(), ErrorCode::UnsupportedFormat);
        assert!(
            err.to_string()
                .contains("Unsupported JPEG data precision 12"),
            "{err}"
        );
    }

    #[test]
    fn the_output_buffer_is_held_to_the_budget() {
        let bytes = jpeg(64, 48);
        let err = decode(&bytes, 1, 64 * 48 * 3 - 1).err().unwrap();
        assert_eq!(err.code(), ErrorCode::LimitExceeded);
        assert!(decode(&bytes, 2, 32 * 24 * 3).is_ok());
    }

    /// libjpeg's own buffers are held to the budget too: a progressive JPEG keeps every
    /// coefficient of the image (~0.9 MB for this 650×470 photo) even when decoded at 1/8.
    #[test]
    fn progressive_coefficients_are_held_to_the_budget() {
        let Some(root) = crate::corpus_root() else {
            return;
        };
        let bytes = std::fs::read(root.join("jpeg/progressive_3.jpg")).unwrap();
        let err = decode(&bytes, 8, 200_000).err().unwrap();
        assert_eq!(err.code(), ErrorCode::LimitExceeded, "{err}");
        let small = decode(&bytes, 8, 2_000_000).unwrap();
        assert_eq!((small.width, small.height), (82, 59));
    }
}
