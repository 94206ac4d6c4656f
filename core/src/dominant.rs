//! Stage: the dominant colour and a small palette.
//!
//! Deterministic: pixels are sampled on a fixed grid (at most 4096 samples), transparent pixels
//! (alpha < 128) are ignored, and the samples are clustered with k-means in Oklab (a perceptual
//! space) from a farthest-point initialisation. An image with at most `k` distinct colours gets
//! exactly those colours back.

use crate::color::SrgbTransform;
use crate::frame::Frame;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb8 {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb8 {
    /// `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// One palette colour and the share of (visible, sampled) pixels it stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Swatch {
    /// The colour.
    pub color: Rgb8,
    /// Share of the visible pixels, 0–1; a palette's weights sum to 1.
    pub weight: f32,
}

const MAX_SAMPLES: u64 = 4096;
const ITERATIONS: usize = 24;

/// Computes up to `k` palette colours of `frame`, heaviest first; the first is the dominant
/// colour. Pixels with alpha < 128 are ignored unless no pixel is visible, in which case the
/// colour channels of all pixels are used. Returns an empty palette when `k == 0` or the frame
/// is empty.
///
/// A frame still in its source colour space passes that space's `to_srgb`: the sampled pixels
/// alone go through it (a few thousand instead of every pixel).
pub fn palette(frame: &Frame, to_srgb: Option<&SrgbTransform>, k: usize) -> Vec<Swatch> {
    let (w, h) = frame.dimensions();
    palette_with(
        w,
        h,
        frame.channels(),
        |x, y| frame.rgba_at(x, y),
        to_srgb,
        k,
    )
}

fn palette_with(
    w: u32,
    h: u32,
    channels: usize,
    at: impl Fn(u32, u32) -> [u8; 4],
    to_srgb: Option<&SrgbTransform>,
    k: usize,
) -> Vec<Swatch> {
    if k == 0 || w == 0 || h == 0 {
        return Vec::new();
    }
    // A grid of at most ~MAX_SAMPLES points, at least one per row and column of the grid, so
    // that very thin images (5000×1) are sampled too.
    let total = u64::from(w) * u64::from(h);
    let step = ((total as f64 / MAX_SAMPLES as f64).sqrt().ceil() as u64).max(1);
    let nx = u64::from(w).div_ceil(step).max(1);
    let ny = u64::from(h).div_ceil(step).max(1);
    // Each sampled colour (packed 0xRRGGBB), then sorted and counted: deterministic, and no
    // hash map in the WebAssembly module.
    let sample = |min_alpha: u8| {
        // The visible samples, laid out as the frame's pixels are (for `to_srgb`).
        let mut samples: Vec<u8> = Vec::new();
        for j in 0..ny {
            let y = ((2 * j + 1) * u64::from(h) / (2 * ny)) as u32;
            for i in 0..nx {
                let x = ((2 * i + 1) * u64::from(w) / (2 * nx)) as u32;
                let p = at(x.min(w - 1), y.min(h - 1));
                if p[3] >= min_alpha {
                    samples.extend_from_slice(&p[..channels]);
                }
            }
        }
        if let Some(t) = to_srgb {
            t.apply_raw(&mut samples);
        }
        let mut packed: Vec<u32> = samples
            .chunks_exact(channels)
            .map(|p| u32::from_be_bytes([0, p[0], p[1], p[2]]))
            .collect();
        packed.sort_unstable();
        let mut counts: Vec<([u8; 3], u32)> = Vec::new();
        for c in packed {
            let [_, r, g, b] = c.to_be_bytes();
            match counts.last_mut() {
                Some((last, n)) if *last == [r, g, b] => *n += 1,
                _ => counts.push(([r, g, b], 1)),
            }
        }
        counts
    };
    let mut counts = sample(128);
    if counts.is_empty() {
        // Nothing is visible: describe the colour channels alone rather than nothing.
        counts = sample(0);
    }
    let colors = counts;
    let n: u32 = colors.iter().map(|c| c.1).sum();
    let total = n as f32;

    if colors.len() <= k {
        let mut out: Vec<Swatch> = colors
            .iter()
            .map(|(c, count)| Swatch {
                color: Rgb8 {
                    r: c[0],
                    g: c[1],
                    b: c[2],
                },
                weight: *count as f32 / total,
            })
            .collect();
        sort_swatches(&mut out);
        return out;
    }

    let points: Vec<([f32; 3], f32)> = colors
        .iter()
        .map(|(c, count)| (srgb_to_oklab(*c), *count as f32))
        .collect();
    let centers = kmeans(&points, k);
    let mut sums = vec![([0f32; 3], 0f32); centers.len()];
    for (p, wgt) in &points {
        let i = nearest(&centers, p);
        for (s, v) in sums[i].0.iter_mut().zip(p) {
            *s += v * wgt;
        }
        sums[i].1 += wgt;
    }
    let mut clusters: Vec<([f32; 3], f32)> = sums
        .into_iter()
        .filter(|(_, wgt)| *wgt > 0.0)
        .map(|(s, wgt)| ([s[0] / wgt, s[1] / wgt, s[2] / wgt], wgt))
        .collect();
    merge_close(&mut clusters);
    let mut out: Vec<Swatch> = clusters
        .into_iter()
        .map(|(lab, wgt)| {
            let [r, g, b] = oklab_to_srgb(lab);
            Swatch {
                color: Rgb8 { r, g, b },
                weight: wgt / total,
            }
        })
        .collect();
    sort_swatches(&mut out);
    out
}

/// Clusters closer than this (Oklab distance; a just-noticeable difference is about 0.02) are
/// one colour to a viewer, so they are merged rather than reported as near-duplicates.
const MERGE_DISTANCE: f32 = 0.06;

fn merge_close(clusters: &mut Vec<([f32; 3], f32)>) {
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for i in 0..clusters.len() {
            for j in i + 1..clusters.len() {
                let d = dist2(&clusters[i].0, &clusters[j].0);
                if d < MERGE_DISTANCE * MERGE_DISTANCE && best.is_none_or(|b| d < b.2) {
                    best = Some((i, j, d));
                }
            }
        }
        let Some((i, j, _)) = best else { return };
        let (b, wb) = clusters.swap_remove(j);
        let (a, wa) = clusters[i];
        let w = wa + wb;
        clusters[i] = (
            [
                (a[0] * wa + b[0] * wb) / w,
                (a[1] * wa + b[1] * wb) / w,
                (a[2] * wa + b[2] * wb) / w,
            ],
            w,
        );
    }
}

fn sort_swatches(s: &mut [Swatch]) {
    // The key is total (weight, then colour), so an unstable sort is deterministic.
    s.sort_unstable_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| (a.color.r, a.color.g, a.color.b).cmp(&(b.color.r, b.color.g, b.color.b)))
    });
}

fn dist2(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

fn nearest(centers: &[[f32; 3]], p: &[f32; 3]) -> usize {
    let mut best = 0;
    let mut best_d = f32::INFINITY;
    for (i, c) in centers.iter().enumerate() {
        let d = dist2(c, p);
        if d < best_d {
            best = i;
            best_d = d;
        }
    }
    best
}

/// Weighted k-means with deterministic farthest-point initialisation.
fn kmeans(points: &[([f32; 3], f32)], k: usize) -> Vec<[f32; 3]> {
    // Start from the most frequent colour, then repeatedly add the point farthest (weighted)
    // from every chosen centre.
    let first = points
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut centers = vec![points[first].0];
    while centers.len() < k {
        let mut best = None;
        let mut best_score = 0.0f32;
        for (p, wgt) in points {
            let d = centers
                .iter()
                .map(|c| dist2(c, p))
                .fold(f32::INFINITY, f32::min);
            let score = d * wgt.sqrt();
            if score > best_score {
                best_score = score;
                best = Some(*p);
            }
        }
        match best {
            Some(p) => centers.push(p),
            None => break,
        }
    }
    for _ in 0..ITERATIONS {
        let mut sums = vec![([0f32; 3], 0f32); centers.len()];
        for (p, wgt) in points {
            let i = nearest(&centers, p);
            for (s, v) in sums[i].0.iter_mut().zip(p) {
                *s += v * wgt;
            }
            sums[i].1 += wgt;
        }
        let mut moved = false;
        for (c, (s, wgt)) in centers.iter_mut().zip(sums) {
            if wgt > 0.0 {
                let next = [s[0] / wgt, s[1] / wgt, s[2] / wgt];
                if dist2(c, &next) > 1e-10 {
                    moved = true;
                }
                *c = next;
            }
        }
        if !moved {
            break;
        }
    }
    centers
}

fn srgb_to_linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f32) -> u8 {
    let c = c.clamp(0.0, 1.0);
    let v = if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// sRGB (8-bit) to Oklab.
pub fn srgb_to_oklab(c: [u8; 3]) -> [f32; 3] {
    let (r, g, b) = (
        srgb_to_linear(c[0]),
        srgb_to_linear(c[1]),
        srgb_to_linear(c[2]),
    );
    let l = 0.412_221_46 * r + 0.536_332_55 * g + 0.051_445_995 * b;
    let m = 0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b;
    let s = 0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b;
    let (l, m, s) = (l.cbrt(), m.cbrt(), s.cbrt());
    [
        0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
        1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
        0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
    ]
}

/// Oklab to sRGB (8-bit), clamped to the gamut.
pub fn oklab_to_srgb(lab: [f32; 3]) -> [u8; 3] {
    let l = lab[0] + 0.396_337_78 * lab[1] + 0.215_803_76 * lab[2];
    let m = lab[0] - 0.105_561_346 * lab[1] - 0.063_854_17 * lab[2];
    let s = lab[0] - 0.089_484_18 * lab[1] - 1.291_485_5 * lab[2];
    let (l, m, s) = (l * l * l, m * m * m, s * s * s);
    [
        linear_to_srgb(4.076_741_7 * l - 3.307_711_6 * m + 0.230_969_94 * s),
        linear_to_srgb(-1.268_438 * l + 2.609_757_4 * m - 0.341_319_38 * s),
        linear_to_srgb(-0.004_196_086_3 * l - 0.703_418_6 * m + 1.707_614_7 * s),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbaImage;

    #[test]
    fn one_colour_is_exact() {
        for c in [
            [0, 0, 0],
            [255, 255, 255],
            [253, 204, 110],
            [127, 127, 39],
            [1, 2, 3],
        ] {
            let img = RgbaImage::from_pixel(37, 11, image::Rgba([c[0], c[1], c[2], 255]));
            let p = palette(&Frame::from(img.clone()), None, 5);
            assert_eq!(p.len(), 1);
            assert_eq!(
                p[0].color,
                Rgb8 {
                    r: c[0],
                    g: c[1],
                    b: c[2]
                }
            );
            assert_eq!(p[0].weight, 1.0);
        }
    }

    #[test]
    fn thin_images_are_sampled() {
        for (w, h) in [(5000, 1), (1, 5000), (1, 1), (65, 3)] {
            let img = RgbaImage::from_pixel(w, h, image::Rgba([0, 200, 0, 255]));
            assert_eq!(
                palette(&Frame::from(img.clone()), None, 5)[0].color.hex(),
                "#00c800",
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn transparent_pixels_are_ignored() {
        // 3/4 transparent red, 1/4 opaque blue: blue dominates.
        let img = RgbaImage::from_fn(40, 40, |x, _| {
            if x < 30 {
                image::Rgba([255, 0, 0, 0])
            } else {
                image::Rgba([0, 0, 255, 255])
            }
        });
        let p = palette(&Frame::from(img.clone()), None, 5);
        assert_eq!(p[0].color.hex(), "#0000ff");
        assert_eq!(p.len(), 1);
        let clear = RgbaImage::from_pixel(4, 4, image::Rgba([9, 9, 9, 0]));
        assert_eq!(
            palette(&Frame::from(clear.clone()), None, 5)[0].color.hex(),
            "#090909"
        );
    }

    #[test]
    fn clusters_are_weighted_and_deterministic() {
        // 70 % noisy green, 30 % noisy magenta.
        let img = RgbaImage::from_fn(200, 100, |x, y| {
            let n = ((x * 7 + y * 13) % 9) as u8;
            if x < 140 {
                image::Rgba([20 + n, 180 + n, 30 + n, 255])
            } else {
                image::Rgba([200 + n, 20 + n, 190 + n, 255])
            }
        });
        let a = palette(&Frame::from(img.clone()), None, 5);
        let b = palette(&Frame::from(img.clone()), None, 5);
        assert_eq!(a, b);
        assert!(a.len() <= 5);
        let c = a[0].color;
        assert!(c.g > 170 && c.r < 40, "{:?}", a[0]);
        let sum: f32 = a.iter().map(|s| s.weight).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        assert!((a[0].weight - 0.7).abs() < 0.1, "{a:?}");
    }

    #[test]
    fn oklab_round_trip() {
        for c in [[0u8, 0, 0], [255, 255, 255], [12, 200, 99], [255, 0, 0]] {
            assert_eq!(oklab_to_srgb(srgb_to_oklab(c)), c);
        }
    }
}
