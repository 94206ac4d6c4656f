//! The fast path of the commonest embedded profile: an RGB matrix-shaper profile (three tone
//! curves and three colorants, as phones tag their photos Display P3 and cameras Adobe RGB),
//! converted to 8-bit sRGB with tables: each input channel through a 256-entry table to linear
//! light, a 3 × 3 matrix to linear sRGB, and a 16384-entry table back to 8 bits.
//!
//! That is what LittleCMS's 8-bit matrix-shaper optimisation does; `qcms`'s portable path
//! evaluates the curves per pixel instead, several times slower. Profiles this module does not
//! read (LUT-based ones, unknown curve types, anything malformed) go to `qcms` as before.
//!
//! Every number is computed in the same order with the same IEEE operations, and the few
//! powers with `libm` (the same code in every build), so native and WebAssembly builds give the
//! same bytes.

use std::sync::OnceLock;

/// Entries of the linear-light → 8-bit sRGB table.
const ENCODE_STEPS: usize = 16384;
/// Pixels converted together by [`Shaper::apply`]'s vector code.
const LANES: usize = 16;

/// A matrix-shaper RGB profile's conversion to sRGB.
pub struct Shaper {
    /// Per input channel: 8-bit value → linear light.
    to_linear: [[f32; 256]; 3],
    /// Linear source RGB → linear sRGB (rows: output channels).
    matrix: [[f32; 3]; 3],
}

impl std::fmt::Debug for Shaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shaper")
            .field("matrix", &self.matrix)
            .finish_non_exhaustive()
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// An `s15Fixed16Number`.
fn s15f16(b: &[u8], at: usize) -> Option<f64> {
    Some(f64::from(be32(b, at)? as i32) / 65536.0)
}

/// A tag's data, by signature.
fn tag<'a>(icc: &'a [u8], signature: &[u8; 4]) -> Option<&'a [u8]> {
    let count = (be32(icc, 128)? as usize).min(1024);
    (0..count).find_map(|i| {
        let entry = 132 + i * 12;
        if icc.get(entry..entry + 4)? != signature {
            return None;
        }
        let offset = be32(icc, entry + 4)? as usize;
        let size = be32(icc, entry + 8)? as usize;
        icc.get(offset..offset.checked_add(size)?)
    })
}

/// A tone curve (`curv` or `para`), evaluated at `x` in [0, 1]; the result is clamped to [0, 1].
enum Curve {
    Identity,
    Gamma(f64),
    Table(Vec<u16>),
    /// ICC parametric function types 0-4 as (g, a, b, c, d, e, f).
    Parametric([f64; 7]),
}

impl Curve {
    fn read(data: &[u8]) -> Option<Curve> {
        match data.get(..4)? {
            b"curv" => {
                let n = be32(data, 8)? as usize;
                match n {
                    0 => Some(Curve::Identity),
                    1 => Some(Curve::Gamma(f64::from(be16(data, 12)?) / 256.0)),
                    _ if n <= 65536 => {
                        let table = (0..n)
                            .map(|i| be16(data, 12 + 2 * i))
                            .collect::<Option<Vec<u16>>>()?;
                        Some(Curve::Table(table))
                    }
                    _ => None,
                }
            }
            b"para" => {
                let kind = be16(data, 8)?;
                let n = [1, 3, 4, 5, 7].get(usize::from(kind)).copied()?;
                let mut p = [0.0; 7];
                for (i, v) in p.iter_mut().take(n).enumerate() {
                    *v = s15f16(data, 12 + 4 * i)?;
                }
                let [g, a, b, c, d, e, f] = p;
                // Every type as type 4: (aX + b)^g + e for X ≥ d, cX + f below.
                let p = match kind {
                    0 => [g, 1.0, 0.0, 0.0, f64::NEG_INFINITY, 0.0, 0.0],
                    1 => [g, a, b, 0.0, threshold(a, b)?, 0.0, 0.0],
                    2 => [g, a, b, 0.0, threshold(a, b)?, c, c],
                    3 => [g, a, b, c, d, 0.0, 0.0],
                    _ => [g, a, b, c, d, e, f],
                };
                Some(Curve::Parametric(p))
            }
            _ => None,
        }
    }

    fn eval(&self, x: f64) -> f64 {
        let y = match self {
            Curve::Identity => x,
            Curve::Gamma(g) => libm::pow(x, *g),
            Curve::Table(t) => {
                let pos = x * (t.len() - 1) as f64;
                let i = (pos as usize).min(t.len() - 2);
                let frac = pos - i as f64;
                (f64::from(t[i]) * (1.0 - frac) + f64::from(t[i + 1]) * frac) / 65535.0
            }
            &Curve::Parametric([g, a, b, c, d, e, f]) => {
                if x >= d {
                    let base = a * x + b;
                    if base > 0.0 {
                        libm::pow(base, g) + e
                    } else {
                        e
                    }
                } else {
                    c * x + f
                }
            }
        };
        if y.is_finite() {
            y.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// Where types 1 and 2 switch: X ≥ -b / a.
fn threshold(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| -b / a)
}

/// The sRGB colorants adapted to D50 (the PCS), as in the sRGB profile: columns R, G, B.
const SRGB_D50: [[f64; 3]; 3] = [
    [0.436_074_7, 0.385_064_9, 0.143_080_4],
    [0.222_504_5, 0.716_878_6, 0.060_616_9],
    [0.013_932_2, 0.097_104_5, 0.714_173_3],
];

fn invert(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-9 || !det.is_finite() {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            // Cofactor of m[c][r], over the determinant.
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            *v = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    }
    Some(inv)
}

/// Linear light (index / (ENCODE_STEPS - 1)) → 8-bit sRGB, made once.
fn encode_table() -> &'static [u8; ENCODE_STEPS] {
    static TABLE: OnceLock<Box<[u8; ENCODE_STEPS]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u8; ENCODE_STEPS]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = srgb8(i as f64 / (ENCODE_STEPS - 1) as f64);
        }
        t
    })
}

/// The sRGB encoding of linear light `y` in [0, 1], to 8 bits.
fn srgb8(y: f64) -> u8 {
    let v = if y <= 0.003_130_8 {
        12.92 * y
    } else {
        1.055 * libm::pow(y, 1.0 / 2.4) - 0.055
    };
    (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

/// A gray profile's conversion to sRGB, per 8-bit value: its tone curve (`kTRC`) to linear
/// light, then sRGB's encoding (neutral, so the three channels are equal). `None` for anything
/// but a gray profile with an XYZ connection space, a readable curve and no LUT tags.
pub fn gray_to_srgb(icc: &[u8]) -> Option<[u8; 256]> {
    if icc.get(16..20)? != b"GRAY" || icc.get(20..24)? != b"XYZ " || has_luts(icc) {
        return None;
    }
    let curve = Curve::read(tag(icc, b"kTRC")?)?;
    let mut table = [0u8; 256];
    for (v, out) in table.iter_mut().enumerate() {
        *out = srgb8(curve.eval(v as f64 / 255.0));
    }
    Some(table)
}

/// Whether the profile has tags that a colour management system would use instead of its
/// curves and colorants.
fn has_luts(icc: &[u8]) -> bool {
    [b"A2B0", b"A2B1", b"A2B2", b"D2B0", b"D2B1"]
        .iter()
        .any(|sig| tag(icc, sig).is_some())
}

impl Shaper {
    /// The conversion of a matrix-shaper RGB profile with an XYZ connection space and no LUT
    /// tags (which a colour management system would prefer); `None` for any other profile.
    pub fn new(icc: &[u8]) -> Option<Shaper> {
        if icc.get(16..20)? != b"RGB " || icc.get(20..24)? != b"XYZ " {
            return None;
        }
        if has_luts(icc) {
            return None;
        }
        let mut colorants = [[0.0; 3]; 3];
        let mut to_linear = [[0.0f32; 256]; 3];
        for (ch, (xyz, trc)) in [(b"rXYZ", b"rTRC"), (b"gXYZ", b"gTRC"), (b"bXYZ", b"bTRC")]
            .into_iter()
            .enumerate()
        {
            let data = tag(icc, xyz)?;
            if data.get(..4)? != b"XYZ " {
                return None;
            }
            for (row, c) in colorants.iter_mut().enumerate() {
                c[ch] = s15f16(data, 8 + 4 * row)?;
            }
            let curve = Curve::read(tag(icc, trc)?)?;
            for (v, out) in to_linear[ch].iter_mut().enumerate() {
                *out = curve.eval(v as f64 / 255.0) as f32;
            }
        }
        let to_srgb = invert(&SRGB_D50)?;
        let mut matrix = [[0.0f32; 3]; 3];
        for (r, row) in matrix.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                let x: f64 = (0..3).map(|k| to_srgb[r][k] * colorants[k][c]).sum();
                if !x.is_finite() || x.abs() > 16.0 {
                    return None;
                }
                *v = x as f32;
            }
        }
        encode_table();
        Some(Shaper { to_linear, matrix })
    }

    /// Converts pixels of `channels` samples (3 or 4; a fourth, alpha, is kept) in place.
    pub fn apply(&self, samples: &mut [u8], channels: usize) {
        match channels {
            3 => apply_blocks::<3>(self, samples),
            4 => apply_blocks::<4>(self, samples),
            _ => {}
        }
    }
}

/// [`Shaper::apply`] for `N` samples per pixel; compiled for AVX2 too, used where the CPU has
/// it (the same operations in the same order, without fused multiply-adds: every version gives
/// the same bytes).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn apply_blocks<const N: usize>(shaper: &Shaper, samples: &mut [u8]) {
    let mut blocks = samples.chunks_exact_mut(N * LANES);
    for block in &mut blocks {
        shaper.block::<N>(block);
    }
    // The last pixels go through a block of their own, padded.
    let rest = blocks.into_remainder();
    if !rest.is_empty() {
        let mut padded = [0u8; 4 * LANES];
        let padded = &mut padded[..N * LANES];
        padded[..rest.len()].copy_from_slice(rest);
        shaper.block::<N>(padded);
        rest.copy_from_slice(&padded[..rest.len()]);
    }
}

impl Shaper {
    /// Converts `LANES` pixels: their table lookups one by one, the matrix and the encode
    /// index over all of them at once ([`encode_indices`]: vector code).
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    #[inline(always)]
    fn block<const N: usize>(&self, block: &mut [u8]) {
        let encode = encode_table();
        let m = &self.matrix;
        let mut linear = [[0.0f32; LANES]; 3];
        for (i, px) in block.chunks_exact(N).enumerate() {
            for c in 0..3 {
                linear[c][i] = self.to_linear[c][usize::from(px[c])];
            }
        }
        let index = encode_indices(m, &linear);
        for (i, px) in block.chunks_exact_mut(N).enumerate() {
            for c in 0..3 {
                px[c] = encode[index[c][i] as usize];
            }
        }
    }

    /// [`Shaper::block`] in WebAssembly SIMD, four pixels at a time: the npm package's module is
    /// optimised for size, where the compiler does not vectorise loops (the scalar code took
    /// ~11 ns a pixel in Node). The same IEEE operations in the same order (WebAssembly has no
    /// fused multiply-add here), so the same bytes as the native build.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn block<const N: usize>(&self, block: &mut [u8]) {
        use core::arch::wasm32::{
            f32x4, f32x4_add, f32x4_mul, f32x4_pmax, f32x4_pmin, f32x4_splat, u32x4_extract_lane,
            u32x4_splat, v128, v128_and,
        };
        let encode = encode_table();
        let scale = f32x4_splat((ENCODE_STEPS - 1) as f32);
        let round = f32x4_splat(8_388_608.0);
        let mask = u32x4_splat(ENCODE_STEPS as u32 - 1);
        let (zero, one) = (f32x4_splat(0.0), f32x4_splat(1.0));
        let out = |i: u32| encode[i as usize & (ENCODE_STEPS - 1)];
        for quad in block.chunks_exact_mut(4 * N) {
            let linear = |c: usize| -> v128 {
                let t = &self.to_linear[c];
                let at = |p: usize| t[usize::from(quad[p * N + c])];
                f32x4(at(0), at(1), at(2), at(3))
            };
            let (r, g, b) = (linear(0), linear(1), linear(2));
            for (c, m) in self.matrix.iter().enumerate() {
                let v = f32x4_add(
                    f32x4_add(
                        f32x4_mul(f32x4_splat(m[0]), r),
                        f32x4_mul(f32x4_splat(m[1]), g),
                    ),
                    f32x4_mul(f32x4_splat(m[2]), b),
                );
                // pmax(0, v) is `if 0 < v { v } else { 0 }`, pmin(1, v) `if v < 1 { v } else
                // { 1 }`: the scalar clamps exactly.
                let v = f32x4_pmin(one, f32x4_pmax(zero, v));
                let i = v128_and(f32x4_add(f32x4_mul(v, scale), round), mask);
                quad[c] = out(u32x4_extract_lane::<0>(i));
                quad[N + c] = out(u32x4_extract_lane::<1>(i));
                quad[2 * N + c] = out(u32x4_extract_lane::<2>(i));
                quad[3 * N + c] = out(u32x4_extract_lane::<3>(i));
            }
        }
    }
}

/// The matrix and the encode table's index, over `LANES` pixels in linear light: the output
/// channel `c` of pixel `i` is `encode[index[c][i]]`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn encode_indices(m: &[[f32; 3]; 3], linear: &[[f32; LANES]; 3]) -> [[u32; LANES]; 3] {
    let scale = (ENCODE_STEPS - 1) as f32;
    let [r, g, b] = linear;
    let mut index = [[0u32; LANES]; 3];
    for (c, out) in index.iter_mut().enumerate() {
        for i in 0..LANES {
            let v = m[c][0] * r[i] + m[c][1] * g[i] + m[c][2] * b[i];
            // Clamped to [0, 1] (written so that each is one max/min instruction).
            let v = if v > 0.0 { v } else { 0.0 };
            let v = if v < 1.0 { v } else { 1.0 };
            // Adding 2^23 leaves round(x) (to even) in the low mantissa bits of x < 2^22:
            // no float-to-integer conversion.
            out[i] = (v * scale + 8_388_608.0).to_bits() & (ENCODE_STEPS as u32 - 1);
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_of_the_srgb_colorants_is_the_known_matrix() {
        let inv = invert(&SRGB_D50).unwrap();
        let known = [
            [3.133_856_1, -1.616_866_7, -0.490_614_6],
            [-0.978_768_4, 1.916_141_5, 0.033_454_0],
            [0.071_945_3, -0.228_991_4, 1.405_242_7],
        ];
        for r in 0..3 {
            for c in 0..3 {
                assert!((inv[r][c] - known[r][c]).abs() < 1e-5, "{r},{c}");
            }
        }
    }

    #[test]
    fn the_encode_table_ends_meet() {
        let t = encode_table();
        assert_eq!((t[0], t[ENCODE_STEPS - 1]), (0, 255));
        // 18 % grey, linear → 118 in sRGB.
        assert_eq!(t[(0.18 * (ENCODE_STEPS - 1) as f64).round() as usize], 118);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn curves_of_every_type() {
        let para = |kind: u16, params: &[f64]| {
            let mut d = b"para\0\0\0\0".to_vec();
            d.extend_from_slice(&kind.to_be_bytes());
            d.extend_from_slice(&[0, 0]);
            for p in params {
                d.extend_from_slice(&((p * 65536.0).round() as i32).to_be_bytes());
            }
            Curve::read(&d).unwrap()
        };
        // sRGB's curve as type 3.
        let srgb = para(3, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045]);
        assert!((srgb.eval(0.5) - 0.214_041).abs() < 1e-4);
        assert!((srgb.eval(0.02) - 0.02 / 12.92).abs() < 1e-6);
        assert!((para(0, &[2.2]).eval(0.5) - 0.5f64.powf(2.2)).abs() < 1e-4);
        let curv = |entries: &[u16]| {
            let mut d = b"curv\0\0\0\0".to_vec();
            d.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for e in entries {
                d.extend_from_slice(&e.to_be_bytes());
            }
            Curve::read(&d).unwrap()
        };
        assert_eq!(curv(&[]).eval(0.3), 0.3);
        assert!((curv(&[563]).eval(0.5) - 0.5f64.powf(563.0 / 256.0)).abs() < 1e-9);
        assert!((curv(&[0, 65535]).eval(0.25) - 0.25).abs() < 1e-9);
        assert!((curv(&[0, 0, 65535]).eval(0.75) - 0.5).abs() < 1e-9);
        // Unknown or truncated curves are not read.
        assert!(Curve::read(b"para\0\0\0\0\0\x09\0\0").is_none());
        assert!(Curve::read(b"curv\0\0\0\0\0\0\0\x03\0\0").is_none());
        assert!(Curve::read(b"sf32").is_none());
    }

    /// Against `qcms`'s exact per-pixel evaluation, on every red level × a grid of green and
    /// blue: at most 2 levels apart, and nearly always equal.
    #[test]
    fn agrees_with_qcms() {
        let profiles = [
            ("Display P3", moxcms::ColorProfile::new_display_p3()),
            ("Adobe RGB", moxcms::ColorProfile::new_adobe_rgb()),
            ("ProPhoto", moxcms::ColorProfile::new_pro_photo_rgb()),
            ("Rec. 2020", moxcms::ColorProfile::new_bt2020()),
        ];
        let mut src = Vec::new();
        for r in 0..=255u8 {
            for g in (0..=255u8).step_by(15) {
                for b in (0..=255u8).step_by(5) {
                    src.extend_from_slice(&[r, g, b, 200]);
                }
            }
        }
        for (name, profile) in profiles {
            let icc = profile.encode().unwrap();
            let shaper = Shaper::new(&icc).unwrap_or_else(|| panic!("{name}: not read"));
            let reference = qcms_reference(&icc, qcms::DataType::RGBA8, qcms::DataType::RGBA8);
            let mut expected = src.clone();
            reference.apply(&mut expected);
            let mut got = src.clone();
            shaper.apply(&mut got, 4);
            let mut off = [0usize; 3];
            for (e, g) in expected.iter().zip(&got) {
                let d = (i32::from(*e) - i32::from(*g)).unsigned_abs() as usize;
                assert!(d <= 2, "{name}: {e} vs {g}");
                off[d] += 1;
            }
            assert!(off[0] * 100 > src.len() * 95, "{name}: {off:?}");
            // Alpha is kept.
            assert!(got.chunks(4).all(|p| p[3] == 200));
        }
    }

    /// The vector code gives, for any length of RGB or RGBA samples (whole blocks, a padded
    /// tail, both), the bytes of the formula evaluated pixel by pixel.
    #[test]
    fn blocks_and_tails_give_the_per_pixel_bytes() {
        let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        let shaper = Shaper::new(&icc).unwrap();
        let encode = encode_table();
        let one = |px: &mut [u8]| {
            let lin: [f32; 3] = std::array::from_fn(|c| shaper.to_linear[c][usize::from(px[c])]);
            for (out, m) in px.iter_mut().zip(shaper.matrix) {
                let v = (m[0] * lin[0] + m[1] * lin[1] + m[2] * lin[2]).clamp(0.0, 1.0);
                *out = encode[(v * (ENCODE_STEPS - 1) as f32).round_ties_even() as usize];
            }
        };
        // Every value of each channel, in pixels that differ from their neighbours.
        let src: Vec<u8> = (0..4 * 300u32).map(|i| (i * 37 % 256) as u8).collect();
        for channels in [3, 4] {
            for pixels in [0, 1, 15, 16, 17, 40, 255, 300] {
                let src = &src[..channels * pixels];
                let mut expected = src.to_vec();
                expected.chunks_exact_mut(channels).for_each(one);
                let mut got = src.to_vec();
                shaper.apply(&mut got, channels);
                assert_eq!(got, expected, "{channels} channels, {pixels} pixels");
                assert!(pixels == 0 || got != src, "{channels} channels: unchanged");
            }
        }
    }

    /// The conversion the pipeline makes with `qcms` for `icc`.
    fn qcms_reference(icc: &[u8], src: qcms::DataType, dst: qcms::DataType) -> qcms::Transform {
        let profile = qcms::Profile::new_from_slice(icc, false).unwrap();
        crate::color::transform(&profile, src, dst).unwrap()
    }

    /// Gray profiles: every value against `qcms`, gray to RGB (neutral).
    #[test]
    fn gray_agrees_with_qcms() {
        for gamma in [1.0, 1.8, 2.2] {
            let icc = moxcms::ColorProfile::new_gray_with_gamma(gamma)
                .encode()
                .unwrap();
            let table = gray_to_srgb(&icc).unwrap();
            let reference = qcms_reference(&icc, qcms::DataType::Gray8, qcms::DataType::RGB8);
            let src: Vec<u8> = (0..=255).collect();
            let mut expected = vec![0u8; 256 * 3];
            reference.convert(&src, &mut expected);
            for (v, rgb) in expected.chunks(3).enumerate() {
                for &c in rgb {
                    let d = (i32::from(c) - i32::from(table[v])).abs();
                    assert!(d <= 1, "gamma {gamma}, value {v}: {rgb:?} vs {}", table[v]);
                }
            }
        }
        let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        assert!(gray_to_srgb(&p3).is_none());
    }

    #[test]
    fn lut_profiles_and_other_spaces_are_left_to_qcms() {
        let gray = moxcms::ColorProfile::new_gray_with_gamma(2.2)
            .encode()
            .unwrap();
        assert!(Shaper::new(&gray).is_none());
        let mut p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        assert!(Shaper::new(&p3).is_some());
        // A renamed tag: no blue colorant.
        let at = p3.windows(4).position(|w| w == b"bXYZ").unwrap();
        p3[at..at + 4].copy_from_slice(b"bxyz");
        assert!(Shaper::new(&p3).is_none());
        assert!(Shaper::new(&[]).is_none());
        assert!(Shaper::new(&[0; 200]).is_none());
    }
}
