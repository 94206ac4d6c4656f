//! AVIF decoding: the AV1 data the container walk located ([`crate::container::AvifImage`])
//! through rav1d (the Rust port of dav1d, memory-safe, as fast as dav1d with its assembly) in
//! native builds, or dav1d's C library in WebAssembly (where rav1d does not build), then
//! YUV to 8-bit RGB(A) in 16-bit fixed point (the same integers in every build, so native and
//! WebAssembly outputs are byte-identical), with the matrix and range the `nclx` box (or the
//! AV1 sequence header) states. 10- and 12-bit samples are rounded to 8 bits first. The alpha
//! plane is a second AV1 image (its luma); premultiplied colour is divided back.

use image::{DynamicImage, RgbImage, RgbaImage};

use crate::budget::Budget;
use crate::container::AvifImage;
use crate::decode::Pixels;
use crate::error::Error;
use crate::options::Limits;
use crate::validate::Checked;

#[cfg(not(target_arch = "wasm32"))]
#[path = "avif/rav1d.rs"]
mod av1;
#[cfg(target_arch = "wasm32")]
#[path = "avif/dav1d.rs"]
mod av1;

use av1::Picture;

/// A plane of a picture (its index among the decoder's planes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Component {
    Y = 0,
    U = 1,
    V = 2,
}

/// How a picture samples its chroma.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    I400,
    I420,
    I422,
    I444,
}

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
) -> Result<Picture, Error> {
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
    av1::decode(data, limits, budget)
}

/// One plane as 8-bit samples: the decoder's own at 8 bits, rounded from 10 or 12 bits.
struct Plane8<'a> {
    data: std::borrow::Cow<'a, [u8]>,
    stride: u32,
}

fn plane8(
    pic: &Picture,
    component: Component,
    width: u32,
    height: u32,
) -> Result<Plane8<'_>, Error> {
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
            data: std::borrow::Cow::Borrowed(plane),
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
        data: std::borrow::Cow::Owned(out),
        stride: width,
    })
}

/// The luma weights (Kr, Kb) of a matrix coefficients code point; `None` for the identity
/// matrix (0: G, B, R planes).
fn weights(code: u16) -> Option<(f64, f64)> {
    Some(match code {
        0 => return None,
        1 => (0.2126, 0.0722),      // BT.709
        4 => (0.30, 0.11),          // FCC
        7 => (0.212, 0.087),        // SMPTE 240M
        9 | 10 => (0.2627, 0.0593), // BT.2020
        // 5 and 6 (BT.470 B/G and BT.601: the same coefficients), and unspecified or other code
        // points: BT.601, as libavif and browsers.
        _ => (0.299, 0.114),
    })
}

/// 16-bit fixed-point YCbCr → RGB for 8-bit samples: the range's offsets and scales folded into
/// the matrix. Computed from the weights with IEEE double arithmetic alone (no library
/// functions), so every build gets the same integers.
struct Ycbcr {
    y_offset: i32,
    y: i32,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl Ycbcr {
    fn new((kr, kb): (f64, f64), full: bool) -> Ycbcr {
        let (y_offset, y_scale, c_scale) = if full {
            (0, 1.0, 1.0)
        } else {
            (16, 255.0 / 219.0, 255.0 / 224.0)
        };
        let kg = 1.0 - kr - kb;
        let q = |v: f64| {
            let v = v * 65536.0;
            (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
        };
        Ycbcr {
            y_offset,
            y: q(y_scale),
            r_cr: q(2.0 * (1.0 - kr) * c_scale),
            g_cb: q(2.0 * kb * (1.0 - kb) / kg * c_scale),
            g_cr: q(2.0 * kr * (1.0 - kr) / kg * c_scale),
            b_cb: q(2.0 * (1.0 - kb) * c_scale),
        }
    }

    #[inline(always)]
    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = (i32::from(y) - self.y_offset) * self.y + (1 << 15);
        let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
        let px = |v: i32| (v >> 16).clamp(0, 255) as u8;
        [
            px(y + self.r_cr * cr),
            px(y - self.g_cb * cb - self.g_cr * cr),
            px(y + self.b_cb * cb),
        ]
    }

    fn gray(&self, y: u8) -> u8 {
        (((i32::from(y) - self.y_offset) * self.y + (1 << 15)) >> 16).clamp(0, 255) as u8
    }
}

/// One row: luma and (upsampled) chroma of equal length to interleaved RGB. Planar loops first,
/// which the compiler vectorises, then the interleave; compiled for AVX2 too, used where the CPU
/// has it (integer arithmetic: every version gives the same bytes).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn ycbcr_row(c: &Ycbcr, l: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    let n = l.len().min(cb.len()).min(cr.len()).min(out.len() / 3);
    let mut planar = vec![0u8; 3 * n];
    let (r, gb) = planar.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    for ((((r, g), b), &y), (&cb, &cr)) in r
        .iter_mut()
        .zip(g.iter_mut())
        .zip(b.iter_mut())
        .zip(&l[..n])
        .zip(cb[..n].iter().zip(&cr[..n]))
    {
        [*r, *g, *b] = c.rgb(y, cb, cr);
    }
    for (px, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(r.iter().zip(&*g).zip(&*b)) {
        px.copy_from_slice(&[r, g, b]);
    }
}

/// The three planes of a colour picture, row by row with the chroma upsampled to the luma's
/// width (each chroma sample for every luma sample it covers).
struct Planes<'a, 'b> {
    y: &'a Plane8<'b>,
    u: &'a Plane8<'b>,
    v: &'a Plane8<'b>,
    sx: u32,
    sy: u32,
    chroma_width: usize,
}

impl Planes<'_, '_> {
    /// Calls `f(luma, cb, cr, rgb_row)` for every row of `rgb` (`width` pixels), on rayon's
    /// threads where there are some (each row depends on its inputs alone, so the bytes are the
    /// same either way).
    fn rows(
        &self,
        rgb: &mut [u8],
        width: usize,
        f: impl Fn(&[u8], &[u8], &[u8], &mut [u8]) + Sync,
    ) {
        let upsample = |row: &[u8], out: &mut Vec<u8>| {
            out.clear();
            if self.sx == 0 {
                out.extend_from_slice(row);
            } else {
                out.extend(row.iter().flat_map(|&c| [c, c]));
            }
            out.resize(width, 128);
        };
        let one = |(yy, out): (usize, &mut [u8]), (cb, cr): &mut (Vec<u8>, Vec<u8>)| {
            let y = self.y.row(yy, width);
            upsample(self.u.row(yy >> self.sy, self.chroma_width), cb);
            upsample(self.v.row(yy >> self.sy, self.chroma_width), cr);
            f(y, cb, cr, out);
        };
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            rgb.par_chunks_mut(width * 3)
                .enumerate()
                .for_each_init(|| (Vec::new(), Vec::new()), |bufs, row| one(row, bufs));
        }
        #[cfg(not(feature = "rayon"))]
        {
            let mut bufs = (Vec::new(), Vec::new());
            for row in rgb.chunks_mut(width * 3).enumerate() {
                one(row, &mut bufs);
            }
        }
    }
}

impl Plane8<'_> {
    /// Row `y`, cut to `width` samples (the plane's size is checked by [`plane8`]).
    fn row(&self, y: usize, width: usize) -> &[u8] {
        let start = y * self.stride as usize;
        self.data.get(start..start + width).unwrap_or_default()
    }
}

/// Converts the decoded planes to 8-bit RGB, or RGBA with the alpha plane.
fn to_rgb(color: &Picture, alpha: Option<&Picture>, image: &AvifImage) -> Result<Pixels, Error> {
    let (w, h) = (color.width(), color.height());
    let layout = color.layout();
    let (code, full) = match image.nclx {
        Some(n) => (n.matrix, n.full_range),
        None => (color.matrix(), color.full_range()),
    };
    if code == 8 {
        return Err(Error::unsupported(
            "AVIF with YCgCo samples (matrix coefficients 8) is not supported",
        ));
    }
    let y = plane8(color, Component::Y, w, h)?;
    let (wu, hu) = (w as usize, h as usize);
    let mut rgb = vec![0u8; wu * hu * 3];
    let convert = Ycbcr::new(weights(code).unwrap_or((0.299, 0.114)), full);
    if layout == Layout::I400 {
        for (yy, out) in rgb.chunks_exact_mut(wu * 3).enumerate() {
            for (px, &l) in out.chunks_exact_mut(3).zip(y.row(yy, wu)) {
                px.fill(convert.gray(l));
            }
        }
    } else {
        // Chroma samples cover 2×2 (4:2:0) or 2×1 (4:2:2) luma samples; each is used for all the
        // luma samples it covers.
        let (sx, sy) = match layout {
            Layout::I420 => (1, 1),
            Layout::I422 => (1, 0),
            _ => (0, 0),
        };
        let (cw, ch) = ((w + sx) >> sx, (h + sy) >> sy);
        let u = plane8(color, Component::U, cw, ch)?;
        let v = plane8(color, Component::V, cw, ch)?;
        let identity = weights(code).is_none();
        if identity && layout != Layout::I444 {
            return Err(corrupt("identity matrix coefficients on subsampled chroma"));
        }
        let planes = Planes {
            y: &y,
            u: &u,
            v: &v,
            sx,
            sy,
            chroma_width: cw as usize,
        };
        if identity {
            planes.rows(&mut rgb, wu, |l, cb, cr, out| {
                // G, B, R planes.
                let f = |v: u8| if full { v } else { expand(v) };
                for (px, ((&g, &b), &r)) in out.chunks_exact_mut(3).zip(l.iter().zip(cb).zip(cr)) {
                    px.copy_from_slice(&[f(r), f(g), f(b)]);
                }
            });
        } else {
            planes.rows(&mut rgb, wu, |l, cb, cr, out| {
                ycbcr_row(&convert, l, cb, cr, out)
            });
        }
    }
    let Some(alpha) = alpha else {
        let img = RgbImage::from_raw(w, h, rgb).ok_or_else(|| Error::internal("rgb size"))?;
        return Ok(Pixels::Image(DynamicImage::ImageRgb8(img)));
    };
    let a = plane8(alpha, Component::Y, w, h)?;
    let limited = !alpha.full_range();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse of the forward transform, in floating point: (Y, Cb, Cr) for an RGB colour.
    fn forward((kr, kb): (f64, f64), full: bool, rgb: [f64; 3]) -> [u8; 3] {
        let [r, g, b] = rgb;
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let cb = (b - y) / (2.0 * (1.0 - kb));
        let cr = (r - y) / (2.0 * (1.0 - kr));
        let (ys, cs, yo) = if full {
            (255.0, 255.0, 0.0)
        } else {
            (219.0, 224.0, 16.0)
        };
        let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        [q(yo + ys * y), q(128.0 + cs * cb), q(128.0 + cs * cr)]
    }

    #[test]
    fn ycbcr_to_rgb_inverts_each_matrix_in_both_ranges() {
        let colours = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 1.0, 1.0],
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.9, 0.6, 0.2],
            [0.1, 0.3, 0.7],
        ];
        for code in [1, 2, 4, 5, 6, 7, 9, 10] {
            let w = weights(code).unwrap();
            for full in [true, false] {
                let convert = Ycbcr::new(w, full);
                for c in colours {
                    let [y, cb, cr] = forward(w, full, c);
                    let got = convert.rgb(y, cb, cr);
                    for (i, (&g, want)) in got.iter().zip(c).enumerate() {
                        // Rounding of the 8-bit YCbCr samples moves a channel by up to ~2 levels
                        // (more in studio range, whose steps are coarser).
                        let off = (f64::from(g) - want * 255.0).abs();
                        assert!(
                            off <= 3.0,
                            "code {code} full {full} {c:?} channel {i}: {got:?}"
                        );
                    }
                }
            }
        }
        // Studio-range black and white, and the grey of a monochrome picture.
        let studio = Ycbcr::new((0.299, 0.114), false);
        assert_eq!(studio.rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(studio.rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(studio.gray(16), 0);
        assert_eq!(studio.gray(235), 255);
        assert_eq!(studio.gray(0), 0);
        assert_eq!(studio.gray(255), 255);
        assert_eq!(Ycbcr::new((0.299, 0.114), true).gray(77), 77);
        // Out-of-gamut samples clamp instead of wrapping.
        let full = Ycbcr::new((0.2126, 0.0722), true);
        assert_eq!(full.rgb(255, 255, 255)[0], 255);
        assert_eq!(full.rgb(0, 0, 0)[0], 0);
    }

    #[test]
    fn the_row_loops_give_the_per_pixel_arithmetic() {
        // The planar (vectorised, and on x86-64 with AVX2 the AVX2 build of the) row loop against
        // the per-pixel formula, on every sample value pair and a pseudo-random row.
        let n = 65_536 + 37;
        let mut noise = crate::xorshift32(0x2545_f491);
        let mut next = || noise() as u8;
        let l: Vec<u8> = (0..n)
            .map(|i| if i < 65_536 { (i >> 8) as u8 } else { next() })
            .collect();
        let cb: Vec<u8> = (0..n)
            .map(|i| if i < 65_536 { i as u8 } else { next() })
            .collect();
        let cr: Vec<u8> = (0..n)
            .map(|i| {
                if i < 65_536 {
                    (i as u8).wrapping_mul(7)
                } else {
                    next()
                }
            })
            .collect();
        for code in [1, 6, 9] {
            for full in [true, false] {
                let c = Ycbcr::new(weights(code).unwrap(), full);
                let mut out = vec![0u8; 3 * n];
                ycbcr_row(&c, &l, &cb, &cr, &mut out);
                for (i, px) in out.chunks_exact(3).enumerate() {
                    assert_eq!(
                        px,
                        c.rgb(l[i], cb[i], cr[i]),
                        "code {code} full {full} sample {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_fixed_point_matrix_is_the_same_integers_everywhere() {
        // Pinned: a change here changes AVIF outputs in every build (native and WebAssembly
        // compute these with the same IEEE double arithmetic).
        let m = Ycbcr::new((0.299, 0.114), false);
        assert_eq!(
            [m.y, m.r_cr, m.g_cb, m.g_cr, m.b_cb],
            [76309, 104597, 25675, 53279, 132201]
        );
    }
}
