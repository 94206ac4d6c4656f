//! The pixel buffer the stages pass along: 8-bit RGB for opaque sources, 8-bit RGBA (straight
//! alpha) for sources that can carry alpha. Keeping opaque photos at 3 bytes per pixel saves the
//! widening copy after decoding and a quarter of the bytes every later stage reads and writes.

use image::{RgbImage, RgbaImage};

/// 8-bit pixels with 3 (RGB) or 4 (RGBA, straight alpha) channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opaque pixels.
    Rgb(RgbImage),
    /// Pixels with an alpha channel (which may still be fully opaque).
    Rgba(RgbaImage),
}

impl Frame {
    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Frame::Rgb(img) => img.dimensions(),
            Frame::Rgba(img) => img.dimensions(),
        }
    }

    /// Bytes per pixel: 3 or 4.
    pub fn channels(&self) -> usize {
        match self {
            Frame::Rgb(_) => 3,
            Frame::Rgba(_) => 4,
        }
    }

    /// The samples, row after row without padding.
    pub fn as_raw(&self) -> &[u8] {
        match self {
            Frame::Rgb(img) => img.as_raw(),
            Frame::Rgba(img) => img.as_raw(),
        }
    }

    /// The samples, mutable.
    pub fn as_raw_mut(&mut self) -> &mut [u8] {
        match self {
            Frame::Rgb(img) => img,
            Frame::Rgba(img) => img,
        }
    }

    /// The samples, rows packed, as an owned buffer (no copy).
    pub fn into_raw(self) -> Vec<u8> {
        match self {
            Frame::Rgb(img) => img.into_raw(),
            Frame::Rgba(img) => img.into_raw(),
        }
    }

    /// A frame of `channels` (3 or 4) channels over `data`, if the sizes agree.
    pub fn from_raw(width: u32, height: u32, channels: usize, data: Vec<u8>) -> Option<Frame> {
        match channels {
            3 => RgbImage::from_raw(width, height, data).map(Frame::Rgb),
            4 => RgbaImage::from_raw(width, height, data).map(Frame::Rgba),
            _ => None,
        }
    }

    /// The pixel at (`x`, `y`) as RGBA (alpha 255 for RGB frames). Panics out of bounds.
    pub fn rgba_at(&self, x: u32, y: u32) -> [u8; 4] {
        match self {
            Frame::Rgb(img) => {
                let [r, g, b] = img.get_pixel(x, y).0;
                [r, g, b, 255]
            }
            Frame::Rgba(img) => img.get_pixel(x, y).0,
        }
    }

    /// RGBA pixels (no copy for an RGBA frame).
    pub fn into_rgba(self) -> RgbaImage {
        match self {
            Frame::Rgba(img) => img,
            Frame::Rgb(img) => {
                let (w, h) = img.dimensions();
                RgbaImage::from_raw(w, h, widen(img.as_raw(), 3)).expect("w×h pixels")
            }
        }
    }
}

/// Pixels of `channels` (1 = gray, 3 = RGB) as opaque RGBA.
///
/// RGB goes four pixels at a time through fixed-size arrays, which the compiler turns into
/// vector shuffles; a pixel-at-a-time loop over `chunks_exact` cost the WebAssembly module (built
/// for size, where those iterators are not inlined) a fifth of an 800-px thumbnail's time.
pub(crate) fn widen(src: &[u8], channels: usize) -> Vec<u8> {
    let mut out = vec![255u8; src.len() / channels * 4];
    if channels == 3 {
        let (groups, rest) = src.as_chunks::<12>();
        let (quads, tail) = out.as_chunks_mut::<16>();
        for (d, s) in quads.iter_mut().zip(groups) {
            *d = [
                s[0], s[1], s[2], 255, s[3], s[4], s[5], 255, s[6], s[7], s[8], 255, s[9], s[10],
                s[11], 255,
            ];
        }
        for (d, s) in tail.chunks_exact_mut(4).zip(rest.chunks_exact(3)) {
            d[..3].copy_from_slice(s);
        }
        return out;
    }
    for (d, p) in out.chunks_exact_mut(4).zip(src.chunks_exact(channels)) {
        d[0] = p[0];
        d[1] = p[channels / 2];
        d[2] = p[channels - 1];
    }
    out
}

/// RGBA pixels as RGB (the alpha dropped), four pixels at a time as in [`widen`].
#[cfg(any(target_arch = "wasm32", test, feature = "png-output"))]
pub(crate) fn narrow(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; src.len() / 4 * 3];
    let (groups, rest) = src.as_chunks::<16>();
    let (triples, tail) = out.as_chunks_mut::<12>();
    for (d, s) in triples.iter_mut().zip(groups) {
        *d = [
            s[0], s[1], s[2], s[4], s[5], s[6], s[8], s[9], s[10], s[12], s[13], s[14],
        ];
    }
    for (d, p) in tail.chunks_exact_mut(3).zip(rest.chunks_exact(4)) {
        d.copy_from_slice(&p[..3]);
    }
    out
}

impl From<RgbaImage> for Frame {
    fn from(img: RgbaImage) -> Frame {
        Frame::Rgba(img)
    }
}

impl From<RgbImage> for Frame {
    fn from(img: RgbImage) -> Frame {
        Frame::Rgb(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widen_and_narrow_by_groups_and_tail() {
        // 7 pixels: one group of four, then a tail of three.
        let rgb: Vec<u8> = (0..21).collect();
        let rgba = widen(&rgb, 3);
        let expected: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        assert_eq!(rgba, expected);
        assert_eq!(narrow(&rgba), rgb);
        assert_eq!(widen(&[9, 200], 1), [9, 9, 9, 255, 200, 200, 200, 255]);
    }

    #[test]
    fn rgb_widens_to_opaque_rgba() {
        let rgb = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let f = Frame::from(rgb);
        assert_eq!((f.dimensions(), f.channels()), ((3, 2), 3));
        assert_eq!(f.rgba_at(2, 1), [2, 1, 7, 255]);
        let rgba = f.into_rgba();
        assert_eq!(rgba.get_pixel(2, 1).0, [2, 1, 7, 255]);
        assert_eq!(rgba.as_raw().len(), 24);
        assert!(Frame::from_raw(3, 2, 3, vec![0; 17]).is_none());
        assert!(Frame::from_raw(3, 2, 2, vec![0; 12]).is_none());
    }
}
