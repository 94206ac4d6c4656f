//! AVIF decoding: the AV1 data the container walk located ([`crate::container::AvifImage`])
//! through rav1d (the Rust port of dav1d, memory-safe, as fast as dav1d with its assembly), then
//! YUV to 8-bit RGB(A) through the `yuv` crate, with the matrix and range the `nclx` box (or the
//! AV1 sequence header) states. 10- and 12-bit samples are rounded to 8 bits first. The alpha
//! plane is a second AV1 image (its luma); premultiplied colour is divided back.

use image::{DynamicImage, RgbImage, RgbaImage};
use re_rav1d::dav1d::pixel::{MatrixCoefficients, YUVRange};
use re_rav1d::dav1d::{self, Decoder, PixelLayout, PlanarImageComponent, Settings};
use yuv::{YuvGrayImage, YuvPlanarImage, YuvRange, YuvStandardMatrix};

use crate::budget::Budget;
use crate::container::AvifImage;
use crate::decode::Pixels;
use crate::error::Error;
use crate::options::Limits;
use crate::validate::Checked;

fn corrupt(detail: impl Into<String>) -> Error {
    Error::corrupt("avif", detail)
}

/// Decodes the colour (and alpha) image of a checked AVIF.
pub(crate) fn decode(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    budget: Budget<'_>,
) -> Result<Pixels, Error> {
    let Some(image) = checked.container.avif.as_ref() else {
        return Err(Error::internal("AVIF without its container facts"));
    };
    if image.grid {
        return Err(Error::unsupported(
            "AVIF grid images (tiled primary items) are not supported",
        ));
    }
    budget.check()?;
    let color = av1(bytes, &image.color, limits, budget)?;
    let (width, height) = (color.width(), color.height());
    checked.admit(width, height)?;
    budget.check()?;
    let alpha = match &image.alpha {
        Some(ranges) => {
            let alpha = av1(bytes, ranges, limits, budget)?;
            if (alpha.width(), alpha.height()) != (width, height) {
                return Err(corrupt(format!(
                    "the alpha plane is {}x{}, the image {width}x{height}",
                    alpha.width(),
                    alpha.height()
                )));
            }
            budget.check()?;
            Some(alpha)
        }
        None => None,
    };
    let pixels = to_rgb(&color, alpha.as_ref(), image)?;
    budget.check()?;
    Ok(pixels)
}

/// The concatenated ranges, decoded to one AV1 picture.
fn av1(
    bytes: &[u8],
    ranges: &[std::ops::Range<usize>],
    limits: &Limits,
    budget: Budget<'_>,
) -> Result<dav1d::Picture, Error> {
    let mut data = Vec::with_capacity(ranges.iter().map(|r| r.len()).sum());
    for r in ranges {
        data.extend_from_slice(
            bytes
                .get(r.clone())
                .ok_or_else(|| Error::internal("AVIF range outside the input"))?,
        );
    }
    if data.is_empty() {
        return Err(corrupt("empty AV1 data"));
    }
    let mut settings = Settings::new();
    settings.set_n_threads(threads());
    settings.set_max_frame_delay(1);
    settings.set_frame_size_limit(u32::try_from(limits.max_pixels).unwrap_or(u32::MAX));
    settings.set_all_layers(false);
    let fail = |e: dav1d::Error| corrupt(format!("the AV1 decoder refused the data: {e}"));
    let mut decoder = Decoder::with_settings(&settings).map_err(fail)?;
    let mut pending = match decoder.send_data(data, None, None, None) {
        Ok(()) => false,
        Err(e) if e.is_again() => true,
        Err(e) => return Err(fail(e)),
    };
    // Each turn either hands the decoder more of the data or takes its picture; the bound only
    // guards against a decoder that does neither.
    for _ in 0..10_000 {
        budget.check()?;
        match decoder.get_picture() {
            Ok(picture) => return Ok(picture),
            Err(e) if e.is_again() && pending => {
                pending = match decoder.send_pending_data() {
                    Ok(()) => false,
                    Err(e) if e.is_again() => true,
                    Err(e) => return Err(fail(e)),
                };
            }
            Err(e) if e.is_again() => break,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(corrupt("the AV1 data holds no complete frame"))
}

/// The decoder's threads: rayon's pool size when variants run on it (the decode runs before
/// them, so the two never compete), else one.
fn threads() -> u32 {
    #[cfg(feature = "rayon")]
    return u32::try_from(rayon::current_num_threads().clamp(1, 8)).unwrap_or(1);
    #[cfg(not(feature = "rayon"))]
    1
}

/// One plane as 8-bit samples: the decoder's own at 8 bits, rounded from 10 or 12 bits.
struct Plane8 {
    data: Samples,
    stride: u32,
}

enum Samples {
    Decoded(dav1d::Plane),
    Rounded(Vec<u8>),
}

impl std::ops::Deref for Samples {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Samples::Decoded(p) => p,
            Samples::Rounded(v) => v,
        }
    }
}

fn plane8(
    pic: &dav1d::Picture,
    component: PlanarImageComponent,
    width: u32,
    height: u32,
) -> Result<Plane8, Error> {
    let plane = pic.plane(component);
    let stride = pic.stride(component);
    let depth = pic.bit_depth();
    let (w, h) = (width as usize, height as usize);
    let bad = || corrupt("a decoded plane is smaller than its picture");
    if depth == 8 {
        let need = (h.saturating_sub(1)) * stride as usize + w;
        if plane.len() < need {
            return Err(bad());
        }
        return Ok(Plane8 {
            data: Samples::Decoded(plane),
            stride,
        });
    }
    let shift = u32::try_from(depth.saturating_sub(8)).unwrap_or(0).min(8);
    let half = (1u32 << shift) >> 1;
    let max = (1u32 << depth.min(16)) - 1;
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let start = y * stride as usize;
        let row = plane.get(start..start + 2 * w).ok_or_else(bad)?;
        out.extend(row.chunks_exact(2).map(|s| {
            let v = u32::from(u16::from_ne_bytes([s[0], s[1]])).min(max);
            ((v + half) >> shift).min(255) as u8
        }));
    }
    Ok(Plane8 {
        data: Samples::Rounded(out),
        stride: width,
    })
}

fn matrix(code: u16) -> Option<YuvStandardMatrix> {
    Some(match code {
        0 => return None,
        1 => YuvStandardMatrix::Bt709,
        4 => YuvStandardMatrix::Fcc,
        7 => YuvStandardMatrix::Smpte240,
        9 | 10 => YuvStandardMatrix::Bt2020,
        // 5 and 6 (BT.470 B/G and BT.601: the same coefficients), and unspecified or other code
        // points: BT.601, as libavif and browsers.
        _ => YuvStandardMatrix::Bt601,
    })
}

fn header_matrix(mc: MatrixCoefficients) -> u16 {
    match mc {
        MatrixCoefficients::Identity => 0,
        MatrixCoefficients::BT709 => 1,
        MatrixCoefficients::BT470M => 4,
        MatrixCoefficients::BT470BG => 5,
        MatrixCoefficients::ST170M => 6,
        MatrixCoefficients::ST240M => 7,
        MatrixCoefficients::YCgCo => 8,
        MatrixCoefficients::BT2020NonConstantLuminance => 9,
        MatrixCoefficients::BT2020ConstantLuminance => 10,
        _ => 2,
    }
}

fn yuv_error(e: yuv::YuvError) -> Error {
    Error::internal(format!("YUV conversion: {e}"))
}

/// Converts the decoded planes to 8-bit RGB, or RGBA with the alpha plane.
fn to_rgb(
    color: &dav1d::Picture,
    alpha: Option<&dav1d::Picture>,
    image: &AvifImage,
) -> Result<Pixels, Error> {
    let (w, h) = (color.width(), color.height());
    let layout = color.pixel_layout();
    let (code, full) = match image.nclx {
        Some(n) => (n.matrix, n.full_range),
        None => (
            header_matrix(color.matrix_coefficients()),
            color.color_range() == YUVRange::Full,
        ),
    };
    if code == 8 {
        return Err(Error::unsupported(
            "AVIF with YCgCo samples (matrix coefficients 8) is not supported",
        ));
    }
    let range = if full {
        YuvRange::Full
    } else {
        YuvRange::Limited
    };
    let y = plane8(color, PlanarImageComponent::Y, w, h)?;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    if layout == PixelLayout::I400 {
        let gray = YuvGrayImage {
            y_plane: &y.data,
            y_stride: y.stride,
            width: w,
            height: h,
        };
        let m = matrix(code).unwrap_or(YuvStandardMatrix::Bt601);
        yuv::yuv400_to_rgb(&gray, &mut rgb, w * 3, range, m).map_err(yuv_error)?;
    } else {
        let (sx, sy) = match layout {
            PixelLayout::I420 => (1, 1),
            PixelLayout::I422 => (1, 0),
            _ => (0, 0),
        };
        let (cw, ch) = ((w + sx) >> sx, (h + sy) >> sy);
        let u = plane8(color, PlanarImageComponent::U, cw, ch)?;
        let v = plane8(color, PlanarImageComponent::V, cw, ch)?;
        let planar = YuvPlanarImage {
            y_plane: &y.data,
            y_stride: y.stride,
            u_plane: &u.data,
            u_stride: u.stride,
            v_plane: &v.data,
            v_stride: v.stride,
            width: w,
            height: h,
        };
        match (matrix(code), layout) {
            (None, PixelLayout::I444) => identity(&planar, &mut rgb, full),
            (None, _) => {
                return Err(corrupt("identity matrix coefficients on subsampled chroma"));
            }
            (Some(m), PixelLayout::I420) => yuv::yuv420_to_rgb(&planar, &mut rgb, w * 3, range, m),
            (Some(m), PixelLayout::I422) => yuv::yuv422_to_rgb(&planar, &mut rgb, w * 3, range, m),
            (Some(m), _) => yuv::yuv444_to_rgb(&planar, &mut rgb, w * 3, range, m),
        }
        .map_err(yuv_error)?;
    }
    let Some(alpha) = alpha else {
        let img = RgbImage::from_raw(w, h, rgb).ok_or_else(|| Error::internal("rgb size"))?;
        return Ok(Pixels::Image(DynamicImage::ImageRgb8(img)));
    };
    let a = plane8(alpha, PlanarImageComponent::Y, w, h)?;
    let limited = alpha.color_range() != YUVRange::Full;
    let mut rgba = Vec::with_capacity(w as usize * h as usize * 4);
    for (row, px) in rgb.chunks_exact(w as usize * 3).enumerate() {
        let start = row * a.stride as usize;
        let arow = a.data.get(start..start + w as usize).unwrap_or_default();
        for (c, &av) in px.chunks_exact(3).zip(arow) {
            let av = if limited { expand(av) } else { av };
            if image.premultiplied && av < 255 {
                let un = |x: u8| match av {
                    0 => 0,
                    _ => ((u32::from(x) * 255 + u32::from(av) / 2) / u32::from(av)).min(255) as u8,
                };
                rgba.extend_from_slice(&[un(c[0]), un(c[1]), un(c[2]), av]);
            } else {
                rgba.extend_from_slice(&[c[0], c[1], c[2], av]);
            }
        }
    }
    let img = RgbaImage::from_raw(w, h, rgba)
        .ok_or_else(|| corrupt("the alpha plane is smaller than the image"))?;
    Ok(Pixels::Image(DynamicImage::ImageRgba8(img)))
}

/// A studio-range sample (16–235) to full range.
fn expand(v: u8) -> u8 {
    ((i32::from(v) - 16).clamp(0, 219) * 255 / 219) as u8
}

/// Identity matrix (4:4:4 stored as G, B, R planes).
fn identity(p: &YuvPlanarImage<'_, u8>, rgb: &mut [u8], full: bool) -> Result<(), yuv::YuvError> {
    let (w, h) = (p.width as usize, p.height as usize);
    let f = |v: u8| if full { v } else { expand(v) };
    for y in 0..h {
        let row = |plane: &[u8], stride: u32| {
            let s = y * stride as usize;
            plane
                .get(s..s + w)
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| vec![0; w])
        };
        let (g, b, r) = (
            row(p.y_plane, p.y_stride),
            row(p.u_plane, p.u_stride),
            row(p.v_plane, p.v_stride),
        );
        for (x, px) in rgb[y * w * 3..(y + 1) * w * 3]
            .chunks_exact_mut(3)
            .enumerate()
        {
            px.copy_from_slice(&[f(r[x]), f(g[x]), f(b[x])]);
        }
    }
    Ok(())
}
