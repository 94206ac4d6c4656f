//! JPEG decoding through libjpeg-turbo's decompressor (built by `mozjpeg-sys`, whose decoder is
//! libjpeg-turbo's), with its reduced-size IDCT for shrink-on-load. The C side (`csrc/jpeg.c`)
//! turns libjpeg's non-returning error exit into return codes, so no error ever unwinds through
//! Rust; this module owns the state, the output buffer and the limits.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use core::marker::PhantomData;

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

/// Decoded samples, `components` bytes per pixel, rows packed.
pub(crate) struct Samples {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    pub data: Vec<u8>,
}

/// A decompressor over `bytes`; freed on drop whatever state it is in.
pub(crate) struct Decoder<'a> {
    /// The C state, 16-byte aligned (it holds a `jmp_buf`).
    state: Box<[u128]>,
    /// libjpeg reads `bytes` until the decoder is dropped.
    _bytes: PhantomData<&'a [u8]>,
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
            _bytes: PhantomData,
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
    pub fn decode(
        mut self,
        shrink: u32,
        stored: ColorSpace,
        out: ColorSpace,
        budget: u64,
        time: &Budget<'_>,
    ) -> Result<Samples, Error> {
        let (mut w, mut h, mut c) = (0, 0, 0);
        let stop: Option<unsafe extern "C" fn(*const c_void) -> c_int> =
            if time.is_bounded() { Some(stop) } else { None };
        let ctx: *const Budget<'_> = time;
        // SAFETY: the headers were read; plain out-parameters. `ctx` points at `time`, which
        // outlives this call and every read below (the decoder is consumed by this method and
        // `end` forgets the callback).
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
        let components = u32::try_from(c).unwrap_or(0);
        let stride = w as usize * components as usize;
        let total = stride as u64 * u64::from(h);
        if total > budget {
            return Err(Error::limit_exceeded(LimitKind::Alloc, total, budget));
        }
        // Not zero-filled first (a pass over the whole image): libjpeg writes every row, and
        // the length is set only once it has.
        let len = stride * h as usize;
        let mut data: Vec<u8> = Vec::with_capacity(len);
        let mut row = 0u32;
        while row < h {
            let mut done = 0;
            // SAFETY: `data` has capacity for `h - row` more rows of `stride` bytes from that
            // offset; libjpeg writes at most `h - row` rows there and says how many it wrote.
            let code = unsafe {
                imgest_jpeg_read(
                    self.ptr(),
                    data.as_mut_ptr().add(row as usize * stride),
                    stride,
                    h - row,
                    &mut done,
                )
            };
            self.check(code, budget).map_err(|e| time.or(e))?;
            if done == 0 || done > h - row {
                return Err(Error::corrupt("jpeg", "truncated: no more rows"));
            }
            row += done;
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
    use image::ImageEncoder;
    use image::codecs::jpeg::JpegEncoder;

    use super::*;
    use crate::error::ErrorCode;

    /// A `w`×`h` RGB JPEG (4:2:0, quality 90) of gradients and noise.
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let mut seed = 0x9E37_79B9_u32;
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let n = (seed >> 28) as u8;
                rgb.extend([(x * 255 / w) as u8 ^ n, (y * 255 / h) as u8, 128 + n]);
            }
        }
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
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
