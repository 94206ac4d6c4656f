//! Stage: plan the output size (a pure function) and resample with `fast_image_resize`.
//!
//! Resampling is Lanczos3 (SIMD where the CPU has it), with alpha premultiplied during
//! resampling so transparent pixels never bleed dark fringes. With `linear_light` the samples are
//! converted from sRGB to 16-bit linear light before resampling and back afterwards.

use fast_image_resize::images::{TypedImage, TypedImageRef};
#[cfg(not(target_arch = "wasm32"))]
use fast_image_resize::pixels::U8x3;
use fast_image_resize::pixels::{U8x4, U16, U16x3};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer as FirResizer};

use crate::budget::Budget;
use crate::error::Error;
use crate::frame::Frame;

/// Source pixels per resampling call when a large resize is cut into bands (~5 ms each), so
/// that a time budget is checked between them. Each strip of the vertical pass computes the
/// filter weights of every output row again: at 1 Mpx a strip, a 6 Mpx photo's thumbnail took
/// 3 % more instructions under a budget (or a cancellation token, as every Python call has)
/// than without one.
const BAND_PIXELS: usize = 1 << 22;

/// The size a `width` × `height` image gets when fitted inside `max_width` × `max_height`
/// (`None` = unbounded): aspect ratio kept, never upscaled, the constrained edge exactly at the
/// bound, the other edge rounded half-up and at least 1 px.
///
/// ```
/// assert_eq!(imgest::resize::plan(4000, 3000, Some(150), Some(150)), (150, 113));
/// assert_eq!(imgest::resize::plan(100, 78, Some(800), Some(800)), (100, 78));
/// assert_eq!(imgest::resize::plan(1000, 1, Some(150), Some(150)), (150, 1));
/// ```
pub fn plan(
    width: u32,
    height: u32,
    max_width: Option<u32>,
    max_height: Option<u32>,
) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (width, height);
    }
    // u128: every product below stays exact for any u32 inputs.
    let mw = u128::from(max_width.unwrap_or(u32::MAX).max(1));
    let mh = u128::from(max_height.unwrap_or(u32::MAX).max(1));
    let (w, h) = (u128::from(width), u128::from(height));
    if w <= mw && h <= mh {
        return (width, height);
    }
    // Width-limited when w/h >= mw/mh.
    let (nw, nh) = if w * mh >= h * mw {
        let nh = (2 * h * mw + w) / (2 * w);
        (mw, nh.clamp(1, mh))
    } else {
        let nw = (2 * w * mh + h) / (2 * h);
        (nw.clamp(1, mw), mh)
    };
    // Both are bounded by the u32 inputs.
    (nw as u32, nh as u32)
}

/// A reusable resampler: keeps `fast_image_resize`'s scratch buffers between calls, and those
/// of a resize cut into bands under a time budget.
#[derive(Debug, Default)]
pub struct Resizer {
    inner: FirResizer,
    /// A banded resize's vertical-pass image (`sw × height`).
    mid: Vec<u8>,
    /// A banded resize's strip of columns, before it is copied into `mid`.
    strip: Vec<u8>,
}

impl Resizer {
    /// A new resampler using the best SIMD extension the CPU has.
    pub fn new() -> Resizer {
        Resizer::default()
    }

    /// Resamples `src` to exactly `width` × `height`; the result has the pixel type of `src`.
    ///
    /// `has_alpha` enables premultiplied-alpha resampling (skip it for opaque images: faster,
    /// same result). `linear_light` resamples in linear light.
    pub fn resize(
        &mut self,
        src: &Frame,
        width: u32,
        height: u32,
        has_alpha: bool,
        linear_light: bool,
    ) -> Result<Frame, Error> {
        self.resize_within(src, width, height, has_alpha, linear_light, &Budget::NONE)
    }

    /// [`Resizer::resize`], checking `budget` between the bands of a large resize.
    pub(crate) fn resize_within(
        &mut self,
        src: &Frame,
        width: u32,
        height: u32,
        has_alpha: bool,
        linear_light: bool,
        budget: &Budget<'_>,
    ) -> Result<Frame, Error> {
        budget.check()?;
        if src.dimensions() == (width, height) {
            return Ok(src.clone());
        }
        let channels = src.channels();
        let out = self.resize_raw(
            src.as_raw(),
            src.dimensions(),
            channels,
            (width, height),
            has_alpha,
            linear_light,
            budget,
        )?;
        Frame::from_raw(width, height, channels, out)
            .ok_or_else(|| Error::internal("resize buffer size"))
    }

    #[allow(clippy::too_many_arguments)]
    fn resize_raw(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        channels: usize,
        (width, height): (u32, u32),
        has_alpha: bool,
        linear_light: bool,
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        let err = |e: &dyn std::fmt::Display| Error::internal(format!("resize: {e}"));
        // RGB pixels have no alpha to premultiply.
        let has_alpha = has_alpha && channels == 4;
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
            .use_alpha(has_alpha);
        if linear_light {
            return self.resize_linear(
                src,
                (sw, sh),
                channels,
                (width, height),
                has_alpha,
                &options,
            );
        }
        if channels == 3 {
            return self.resize_rgb(src, (sw, sh), (width, height), budget);
        }
        if !has_alpha {
            return self.resize_banded::<U8x4>(src, (sw, sh), (width, height), budget);
        }
        // The typed API instantiates the resampler for the pixel types used here only, which
        // keeps this crate's compile time and the WebAssembly module down.
        let mut buf = vec![0u8; width as usize * height as usize * 4];
        let from = TypedImageRef::<U8x4>::from_buffer(sw, sh, src).map_err(|e| err(&e))?;
        let mut to =
            TypedImage::<U8x4>::from_buffer(width, height, &mut buf).map_err(|e| err(&e))?;
        self.inner
            .resize_typed(&from, &mut to, &options)
            .map_err(|e| err(&e))?;
        Ok(buf)
    }

    /// RGB resampling with the library's 3-channel resampler.
    #[cfg(not(target_arch = "wasm32"))]
    fn resize_rgb(
        &mut self,
        src: &[u8],
        size: (u32, u32),
        to: (u32, u32),
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.resize_banded::<U8x3>(src, size, to, budget)
    }

    /// Opaque 8-bit resampling. A large resize is done as the library does it (for 8-bit
    /// pixels: the vertical pass into a `sw × height` image, then the horizontal pass), but in
    /// bands, checking `budget` between them: the vertical pass in strips of columns, the
    /// horizontal one in bands of rows. Each output sample is computed from the same samples
    /// with the same weights either way, so the result is the same bytes (a test compares).
    fn resize_banded<P: PixelTrait>(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        (width, height): (u32, u32),
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        let err = |e: &dyn std::fmt::Display| Error::internal(format!("resize: {e}"));
        let px = P::size();
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
            .use_alpha(false);
        let from = TypedImageRef::<P>::from_buffer(sw, sh, src).map_err(|e| err(&e))?;
        let mut buf = vec![0u8; width as usize * height as usize * px];
        let small = (sw as usize).saturating_mul(sh as usize) <= BAND_PIXELS;
        // The WebAssembly module keeps to one call (the bands' code would take it past its
        // 400 KB budget); there a budget is checked between resizes.
        let one_call = cfg!(target_arch = "wasm32") || !budget.is_bounded();
        if small || sw == width || sh == height || one_call {
            let mut to =
                TypedImage::<P>::from_buffer(width, height, &mut buf).map_err(|e| err(&e))?;
            self.inner
                .resize_typed(&from, &mut to, &options)
                .map_err(|e| err(&e))?;
            return Ok(buf);
        }
        // The vertical pass, `sw × sh` → `sw × height`, in strips of columns, each resampled
        // into a buffer of its own and copied into place (a view into the whole image would be
        // another instantiation of the resampler: +0.8 MB of native code). Both buffers are
        // kept for the next call (a fresh one of several MB is faulted in page by page), and
        // are zero-filled only where they grow: every byte of `mid` is copied from a strip.
        let row = sw as usize * px;
        let strip = (BAND_PIXELS / sh as usize).clamp(16, sw as usize) as u32;
        let mid_len = row * height as usize;
        let grow = |buf: &mut Vec<u8>, len: usize| {
            if buf.len() < len {
                buf.resize(len, 0);
            }
        };
        grow(&mut self.mid, mid_len);
        grow(&mut self.strip, strip as usize * height as usize * px);
        let mid = &mut self.mid[..mid_len];
        for x0 in (0..sw).step_by(strip as usize) {
            budget.check()?;
            let w = strip.min(sw - x0);
            let crop = options.crop(f64::from(x0), 0.0, f64::from(w), f64::from(sh));
            let part = &mut self.strip[..w as usize * height as usize * px];
            let mut dst = TypedImage::<P>::from_buffer(w, height, part).map_err(|e| err(&e))?;
            self.inner
                .resize_typed(&from, &mut dst, &crop)
                .map_err(|e| err(&e))?;
            let (at, len) = (x0 as usize * px, w as usize * px);
            let part = &self.strip[..w as usize * height as usize * px];
            for (to, from) in mid.chunks_exact_mut(row).zip(part.chunks_exact(len)) {
                to[at..at + len].copy_from_slice(from);
            }
        }
        // The horizontal pass, `sw × height` → `width × height`, in bands of rows written
        // straight into the output.
        let from = TypedImageRef::<P>::from_buffer(sw, height, &self.mid[..mid_len])
            .map_err(|e| err(&e))?;
        let band = (BAND_PIXELS / sw as usize).clamp(1, height as usize) as u32;
        let out_row = width as usize * px;
        for (i, rows) in buf.chunks_mut(band as usize * out_row).enumerate() {
            budget.check()?;
            let y0 = i as u32 * band;
            let h = (rows.len() / out_row) as u32;
            let crop = options.crop(0.0, f64::from(y0), f64::from(sw), f64::from(h));
            let mut dst = TypedImage::<P>::from_buffer(width, h, rows).map_err(|e| err(&e))?;
            self.inner
                .resize_typed(&from, &mut dst, &crop)
                .map_err(|e| err(&e))?;
        }
        Ok(buf)
    }

    /// RGB resampling in the WebAssembly module, which leaves out the 3-channel resampler's
    /// 20 KiB of code: see [`Resizer::resize_rgb_as_rgba`].
    #[cfg(target_arch = "wasm32")]
    fn resize_rgb(
        &mut self,
        src: &[u8],
        size: (u32, u32),
        to: (u32, u32),
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.resize_rgb_as_rgba(src, size, to, budget)
    }

    /// RGB resampled with the RGBA resampler only, giving the 3-channel resampler's numbers
    /// (each channel is convolved alone with the same integer weights; a test checks it). The
    /// vertical pass convolves every byte of a row alone, so it runs on the RGB rows themselves,
    /// four bytes taken as one RGBA pixel (rows padded to a multiple of 4 bytes if need be);
    /// only its result, `height` rows instead of the source's, is widened to RGBA for the
    /// horizontal pass.
    #[cfg(any(target_arch = "wasm32", test))]
    fn resize_rgb_as_rgba(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        (width, height): (u32, u32),
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        if sh == height {
            let rgba = crate::frame::widen(src, 3);
            return self.resize_widened(&rgba, (sw, sh), (width, height), budget);
        }
        let row = sw as usize * 3;
        let stride = row.next_multiple_of(4);
        let padded;
        let rows = if stride == row {
            src
        } else {
            // Written once (no zero-filled buffer first).
            let mut p = Vec::with_capacity(stride * sh as usize);
            for from in src.chunks_exact(row) {
                p.extend_from_slice(from);
                p.extend_from_slice(&[0; 3][..stride - row]);
            }
            padded = p;
            &padded[..]
        };
        let quads = u32::try_from(stride / 4).map_err(|_| Error::internal("resize: row"))?;
        let mut mid =
            self.resize_raw(rows, (quads, sh), 4, (quads, height), false, false, budget)?;
        if stride != row {
            for y in 1..height as usize {
                mid.copy_within(y * stride..y * stride + row, y * row);
            }
            mid.truncate(row * height as usize);
        }
        if sw == width {
            return Ok(mid);
        }
        let rgba = crate::frame::widen(&mid, 3);
        self.resize_widened(&rgba, (sw, height), (width, height), budget)
    }

    /// RGB pixels widened to opaque RGBA, resampled and narrowed back to RGB.
    #[cfg(any(target_arch = "wasm32", test))]
    fn resize_widened(
        &mut self,
        rgba: &[u8],
        size: (u32, u32),
        to: (u32, u32),
        budget: &Budget<'_>,
    ) -> Result<Vec<u8>, Error> {
        let out = self.resize_raw(rgba, size, 4, to, false, false, budget)?;
        Ok(crate::frame::narrow(&out))
    }

    /// Linear-light resampling: premultiplied linear RGB as 16-bit `U16x3` and alpha as `U16`,
    /// resampled separately. (Resampling `U16x4` with the library's own alpha handling would
    /// pull a 512 KiB reciprocal table into the WASM module.)
    fn resize_linear(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        channels: usize,
        (width, height): (u32, u32),
        has_alpha: bool,
        options: &ResizeOptions,
    ) -> Result<Vec<u8>, Error> {
        let err = |e: &dyn std::fmt::Display| Error::internal(format!("resize: {e}"));
        let options = options.use_alpha(false);
        let to_linear = srgb_to_linear16();
        let mut rgb = TypedImage::<U16x3>::new(sw, sh);
        let mut alpha = TypedImage::<U16>::new(
            if has_alpha { sw } else { 1 },
            if has_alpha { sh } else { 1 },
        );
        for (i, (dst, px)) in rgb
            .pixels_mut()
            .iter_mut()
            .zip(src.chunks_exact(channels))
            .enumerate()
        {
            let mut c = [px[0], px[1], px[2]].map(|v| u32::from(to_linear[usize::from(v)]));
            if has_alpha {
                let a16 = u32::from(px[3]) * 257;
                c = c.map(|v| (v * a16 + 32767) / 65535);
                alpha.pixels_mut()[i] = U16::new(a16 as u16);
            }
            *dst = U16x3::new(c.map(|v| v as u16));
        }
        let mut rgb_out = TypedImage::<U16x3>::new(width, height);
        self.inner
            .resize_typed(&rgb, &mut rgb_out, &options)
            .map_err(|e| err(&e))?;
        let mut alpha_out = TypedImage::<U16>::new(
            if has_alpha { width } else { 1 },
            if has_alpha { height } else { 1 },
        );
        if has_alpha {
            self.inner
                .resize_typed(&alpha, &mut alpha_out, &options)
                .map_err(|e| err(&e))?;
        }
        let thresholds = linear16_thresholds();
        let encode = |v: u32| thresholds.partition_point(|&t| u32::from(t) <= v) as u8;
        let mut out = Vec::with_capacity(width as usize * height as usize * channels);
        for (i, px) in rgb_out.pixels().iter().enumerate() {
            let a16 = if has_alpha {
                u32::from(alpha_out.pixels()[i].0)
            } else {
                65535
            };
            let c = px.0.map(u32::from);
            let c = if !has_alpha {
                c
            } else if a16 == 0 {
                [0; 3]
            } else {
                c.map(|v| ((v * 65535 + a16 / 2) / a16).min(65535))
            };
            out.extend_from_slice(&[encode(c[0]), encode(c[1]), encode(c[2])]);
            if channels == 4 {
                out.push(((a16 + 128) / 257) as u8);
            }
        }
        Ok(out)
    }

    /// Bytes held in scratch buffers.
    pub fn size_of_internal_buffers(&self) -> usize {
        self.inner.size_of_internal_buffers() + self.mid.capacity() + self.strip.capacity()
    }

    /// Frees the scratch buffers that hold more than `max_bytes` each: `fast_image_resize`'s
    /// (as one), and the banded resize's image and strip (a large photo leaves a scratch image
    /// of tens of MB that would otherwise stay allocated while it is encoded).
    pub fn shrink_scratch(&mut self, max_bytes: usize) {
        if self.inner.size_of_internal_buffers() > max_bytes {
            self.inner.reset_internal_buffers();
        }
        for buf in [&mut self.mid, &mut self.strip] {
            if buf.capacity() > max_bytes {
                *buf = Vec::new();
            }
        }
    }
}

fn srgb_decode(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// sRGB 8-bit → linear 16-bit.
fn srgb_to_linear16() -> [u16; 256] {
    std::array::from_fn(|i| (srgb_decode(i as f64 / 255.0) * 65535.0).round() as u16)
}

/// For linear 16-bit → sRGB 8-bit: entry `i` is the smallest linear value that encodes to
/// `i + 1` (the midpoint between codes `i` and `i + 1`), so a binary search rounds to nearest.
fn linear16_thresholds() -> [u16; 255] {
    std::array::from_fn(|i| (srgb_decode((i as f64 + 0.5) / 255.0) * 65535.0).ceil() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbaImage;

    #[test]
    fn plan_table() {
        let cases = [
            ((1800, 1200, Some(150), Some(150)), (150, 100)),
            ((1200, 1800, Some(150), Some(150)), (100, 150)),
            ((59, 100, Some(150), Some(150)), (59, 100)),
            ((1000, 1, Some(150), Some(150)), (150, 1)),
            ((1, 1000, Some(150), Some(150)), (1, 150)),
            ((3, 2, Some(2), Some(2)), (2, 1)), // 1.333 rounds to 1
            ((5, 2, Some(2), Some(2)), (2, 1)), // 0.8 rounds to 1
            ((4, 3, Some(2), Some(2)), (2, 2)), // 1.5 rounds half-up to 2
            ((1000, 500, None, Some(100)), (200, 100)),
            ((1000, 500, Some(100), None), (100, 50)),
            ((1000, 500, None, None), (1000, 500)),
            ((u32::MAX, 1, Some(1), Some(1)), (1, 1)),
            (
                (u32::MAX, u32::MAX, Some(u32::MAX - 1), None),
                (u32::MAX - 1, u32::MAX - 1),
            ),
        ];
        for ((w, h, mw, mh), want) in cases {
            assert_eq!(plan(w, h, mw, mh), want, "{w}x{h} into {mw:?}x{mh:?}");
        }
    }

    #[test]
    fn rgb_resampling_equals_rgba_resampling() {
        // The WebAssembly build resamples RGB through RGBA; both must give the same numbers.
        let mut noise = crate::xorshift32(0x2545_f491);
        let mut next = || noise() as u8;
        let (sw, sh) = (301, 203);
        let src: Vec<u8> = (0..sw * sh * 3)
            .map(|i| if i % 7 == 0 { next() } else { (i % 251) as u8 })
            .collect();
        let mut r = Resizer::new();
        let none = Budget::NONE;
        // 301 px rows (903 bytes) are padded for the vertical pass; 300 px rows are not.
        for sw in [301, 300] {
            let src = &src[..sw as usize * sh as usize * 3];
            for (w, h) in [
                (150, 101),
                (64, 200),
                (sw, 17),
                (17, sh),
                (17, 3),
                (602, 406),
            ] {
                let direct = r.resize_rgb(src, (sw, sh), (w, h), &none).unwrap();
                let via = r.resize_rgb_as_rgba(src, (sw, sh), (w, h), &none).unwrap();
                assert!(direct == via, "{sw}x{sh} to {w}x{h}");
            }
        }
    }

    /// A large resize under a time budget runs in bands (strips of columns for the vertical
    /// pass, bands of rows for the horizontal one): the same bytes as the library's one call,
    /// for RGB and RGBA, at every ratio the pipeline uses.
    #[test]
    fn banded_resampling_gives_the_same_bytes() {
        let mut noise = crate::xorshift32(0x9e37_79b9);
        // Larger than a band: two strips of columns, and two bands of rows for outputs more
        // than 1,397 rows high.
        let (sw, sh) = (3001, 1601);
        let (w, h) = (sw as usize, sh as usize);
        assert!(w * h > BAND_PIXELS && BAND_PIXELS / w < 1600 && BAND_PIXELS / h < w);
        let src: Vec<u8> = (0..sw * sh * 4)
            .map(|i| {
                let seed = noise();
                if i % 3 == 0 {
                    seed as u8
                } else {
                    (i % 253) as u8
                }
            })
            .collect();
        let token = crate::CancelToken::new();
        let bounded = Budget::start(Some(60_000), Some(&token));
        let mut r = Resizer::new();
        for (w, h) in [
            (150, 80),
            (800, 427),
            (3000, 1600),
            (1200, 1600),
            (3001, 700),
            (1000, 1601),
            (7, 1),
        ] {
            for channels in [3, 4] {
                let pixels = &src[..sw as usize * sh as usize * channels];
                let one = r
                    .resize_raw(
                        pixels,
                        (sw, sh),
                        channels,
                        (w, h),
                        false,
                        false,
                        &Budget::NONE,
                    )
                    .unwrap();
                let banded = r
                    .resize_raw(pixels, (sw, sh), channels, (w, h), false, false, &bounded)
                    .unwrap();
                assert!(one == banded, "{channels} channels to {w}x{h}");
            }
        }
        // The banded path's buffers stay for the next call, which writes into them.
        let (mid, strip) = (r.mid.as_ptr(), r.strip.as_ptr());
        r.resize_raw(&src, (sw, sh), 3, (800, 427), false, false, &bounded)
            .unwrap();
        assert_eq!((r.mid.as_ptr(), r.strip.as_ptr()), (mid, strip));
        r.shrink_scratch(usize::MAX);
        assert_eq!(r.mid.as_ptr(), mid);
        r.shrink_scratch(0);
        assert_eq!(r.size_of_internal_buffers(), 0);
        token.cancel();
        let err = r
            .resize_raw(&src, (sw, sh), 4, (800, 427), false, false, &bounded)
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Cancelled);
    }

    #[test]
    fn linear_light_checkerboard() {
        let board = RgbaImage::from_fn(64, 64, |x, y| {
            let v = if (x + y) % 2 == 0 { 0 } else { 255 };
            image::Rgba([v, v, v, 255])
        });
        let mut r = Resizer::new();
        let board = Frame::from(board);
        let gamma = r.resize(&board, 32, 32, false, false).unwrap().into_rgba();
        let linear = r.resize(&board, 32, 32, false, true).unwrap().into_rgba();
        let mean = |img: &RgbaImage| {
            img.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
                / f64::from(img.width() * img.height())
        };
        let (g, l) = (mean(&gamma), mean(&linear));
        assert!((g - 128.0).abs() < 3.0, "sRGB-space mean {g}");
        assert!((l - 188.0).abs() < 3.0, "linear-light mean {l}");
    }

    #[test]
    fn linear_tables_round_trip() {
        let to = srgb_to_linear16();
        let th = linear16_thresholds();
        for v in 0..=255u8 {
            let lin = u32::from(to[usize::from(v)]);
            assert_eq!(th.partition_point(|&t| u32::from(t) <= lin), usize::from(v));
        }
        // Same-size resampling in linear light is the identity.
        let img = RgbaImage::from_fn(7, 5, |x, y| {
            image::Rgba([(x * 30) as u8, (y * 50) as u8, 7, (x * 40 + 10) as u8])
        });
        let out = Resizer::new()
            .resize_linear(img.as_raw(), (7, 5), 4, (7, 5), true, &ResizeOptions::new())
            .unwrap();
        for (a, b) in img.as_raw().chunks_exact(4).zip(out.chunks_exact(4)) {
            assert_eq!(a[3], b[3]);
            for c in 0..3 {
                // Premultiplying by a small alpha loses a little precision.
                assert!(a[c].abs_diff(b[c]) <= 2, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn premultiplied_alpha_has_no_dark_fringe() {
        // Left half opaque white, right half fully transparent *black*.
        let img = RgbaImage::from_fn(32, 8, |x, _| {
            if x < 16 {
                image::Rgba([255, 255, 255, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        for linear in [false, true] {
            let out = Resizer::new()
                .resize(&Frame::from(img.clone()), 8, 2, true, linear)
                .unwrap()
                .into_rgba();
            for p in out.pixels().filter(|p| p.0[3] > 0) {
                assert!(p.0[0] >= 250, "dark fringe (linear {linear}): {:?}", p.0);
            }
        }
    }
}
