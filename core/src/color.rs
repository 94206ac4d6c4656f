//! Stage 3: convert decoded pixels to 8-bit sRGB through the embedded ICC profile.
//!
//! Colour management is pure Rust (`qcms`, the colour management of Firefox), so an image
//! looks as a browser shows it. CMYK uses the embedded CMYK profile when there is one.

use std::borrow::Cow;

use image::DynamicImage;
use qcms::{DataType, Intent, Profile, Transform};

use crate::budget::Budget;
use crate::decode::{Decoded, Pixels};
use crate::error::Error;
use crate::frame::Frame;
use crate::shaper::Shaper;

/// Reads a profile's description tag (`desc`: ICC v2 `textDescriptionType` or v4
/// `multiLocalizedUnicodeType`, English preferred). `None` for a profile that does not parse.
pub fn icc_description(icc: &[u8]) -> Option<String> {
    Profile::new_from_slice(icc, false)?;
    description(icc)
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let v = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize)
}

fn description(icc: &[u8]) -> Option<String> {
    let count = be32(icc, 128)?.min(1024);
    let (offset, size) = (0..count).find_map(|i| {
        let entry = 132 + i * 12;
        (icc.get(entry..entry + 4)? == b"desc")
            .then(|| Some((be32(icc, entry + 4)?, be32(icc, entry + 8)?)))?
    })?;
    let tag = icc.get(offset..offset.checked_add(size)?)?;
    let text = match tag.get(..4)? {
        b"desc" => {
            let len = be32(tag, 8)?;
            let ascii = tag.get(12..12usize.checked_add(len)?)?;
            ascii
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| char::from(c))
                .collect::<String>()
        }
        b"mluc" => {
            let (records, record_size) = (be32(tag, 8)?.min(256), be32(tag, 12)?);
            if record_size < 12 {
                return None;
            }
            let record = |i: usize| -> Option<(&[u8], usize, usize)> {
                let at = 16 + i * record_size;
                Some((tag.get(at..at + 2)?, be32(tag, at + 4)?, be32(tag, at + 8)?))
            };
            let (_, len, at) = (0..records)
                .filter_map(record)
                .find(|(lang, ..)| *lang == b"en")
                .or_else(|| record(0))?;
            let utf16: Vec<u16> = tag
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&utf16)
        }
        _ => return None,
    };
    let text = text
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string();
    (!text.is_empty()).then_some(text)
}

fn is_srgb_name(desc: Option<&str>) -> bool {
    desc.is_some_and(|d| d.starts_with("sRGB"))
}

/// Relative colorimetric rendering, as browsers and LittleCMS-based tools render: `qcms`
/// always reads a LUT profile's `A2B0` (perceptual) table, so when the profile also carries
/// the colorimetric `A2B1` table, a copy is made in which that table takes `A2B0`'s place.
fn prefer_colorimetric(icc: &[u8]) -> Cow<'_, [u8]> {
    let count = be32(icc, 128).unwrap_or(0).min(1024);
    let entries = (0..count)
        .map(|i| 132 + i * 12)
        .filter(|&e| e + 12 <= icc.len());
    let find = |sig: &[u8]| entries.clone().find(|&e| &icc[e..e + 4] == sig);
    match find(b"A2B1") {
        Some(a2b1) => {
            let mut copy = icc.to_vec();
            if let Some(a2b0) = find(b"A2B0") {
                copy[a2b0..a2b0 + 4].copy_from_slice(b"a2b0");
            }
            copy[a2b1..a2b1 + 4].copy_from_slice(b"A2B0");
            Cow::Owned(copy)
        }
        None => Cow::Borrowed(icc),
    }
}

/// The profile's data colour space signature (`RGB `, `GRAY`, `CMYK`, ...).
fn data_color_space(icc: &[u8]) -> Option<&[u8]> {
    icc.get(16..20)
}

/// A transform to sRGB. `qcms` (Firefox's colour management) uses the matrix/TRC tags of
/// matrix-shaper profiles and the perceptual (`A2B0`) table of LUT profiles. The output
/// profile is deliberately not precached: qcms then takes its scalar paths on every
/// platform, so native and WebAssembly builds produce the same pixels.
pub(crate) fn transform(profile: &Profile, src: DataType, dst: DataType) -> Option<Transform> {
    let srgb = Profile::new_sRGB();
    Transform::new_to(profile, &srgb, src, dst, Intent::Perceptual)
}

/// A profile for colour stated as ITU-T H.273 code points (an AVIF `nclx` box), or `None` when
/// it is sRGB or near enough: BT.709 primaries (or unspecified) with the sRGB curve or one of
/// the BT.709-family camera curves, as browsers show them. Wide-gamut primaries (Display P3,
/// BT.2020, ...) and other curves (gamma 2.2/2.8, linear, PQ, HLG; PQ and HLG without tone
/// mapping) are converted. Code points qcms does not model are taken as sRGB.
#[cfg(feature = "avif-input")]
fn cicp_profile(n: crate::container::Nclx) -> Option<Box<Profile>> {
    let srgb_like_curve = matches!(n.transfer, 1 | 2 | 6 | 13 | 14 | 15);
    let primaries = match n.primaries {
        1 | 2 => {
            if srgb_like_curve {
                return None;
            }
            1
        }
        4..=12 | 22 => u8::try_from(n.primaries).ok()?,
        _ => return None,
    };
    let transfer = match n.transfer {
        2 => 13,
        1 | 4 | 5 | 6 | 8 | 13 | 14 | 15 | 16 | 18 => u8::try_from(n.transfer).ok()?,
        _ => return None,
    };
    // (qcms takes its own code point enums, which it converts from `u8` but does not export.)
    Profile::new_cicp(primaries.into(), transfer.into())
}

/// Decoded pixels as an 8-bit [`Frame`], with the conversion to sRGB still to apply.
///
/// An RGB profile is applied late, by [`SrgbTransform::apply`], to whichever pixels the
/// pipeline keeps (the resized variants, not every decoded pixel), as libvips does. CMYK and
/// gray profiles are applied here, since their pixels are not RGB yet.
#[derive(Debug)]
pub struct Normalized {
    /// The pixels: RGB for 8-bit sources without alpha (and CMYK), RGBA otherwise.
    pub frame: Frame,
    /// True when some pixel is not fully opaque.
    pub has_alpha: bool,
    /// The conversion to sRGB still to apply to `frame` (or to pixels resampled from it).
    pub to_srgb: Option<SrgbTransform>,
    /// True when an embedded profile was (or is to be, through `to_srgb`) applied.
    pub converted: bool,
    /// The embedded profile's description, if there was a readable one.
    pub icc_description: Option<String>,
}

/// A conversion of 8-bit RGB or RGBA pixels from an embedded profile to sRGB, in place.
pub struct SrgbTransform {
    transform: Converter,
    channels: usize,
}

/// Matrix-shaper profiles take the table-driven path; the rest go through `qcms`.
enum Converter {
    Shaper(Box<Shaper>),
    Qcms(Transform),
}

impl std::fmt::Debug for SrgbTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrgbTransform")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl SrgbTransform {
    /// Converts `frame` to sRGB. A frame of another channel count than the one this transform
    /// was built for is left alone (the pipeline never mixes them).
    pub fn apply(&self, frame: &mut Frame) {
        if frame.channels() == self.channels {
            self.apply_raw(frame.as_raw_mut());
        }
    }

    /// [`SrgbTransform::apply`] in bands of rows, checking `budget` between them.
    pub(crate) fn apply_within(&self, frame: &mut Frame, budget: &Budget) -> Result<(), Error> {
        if frame.channels() != self.channels {
            return Ok(());
        }
        let band = BAND_PIXELS * self.channels;
        for samples in frame.as_raw_mut().chunks_mut(band) {
            budget.check()?;
            self.apply_raw(samples);
        }
        budget.check()
    }

    /// Converts raw samples laid out as the frame this transform was built for.
    pub fn apply_raw(&self, samples: &mut [u8]) {
        let whole = samples.len() / self.channels * self.channels;
        match &self.transform {
            Converter::Shaper(s) => s.apply(&mut samples[..whole], self.channels),
            Converter::Qcms(t) => t.apply(&mut samples[..whole]),
        }
    }
}

/// Converts decoded pixels to an 8-bit frame, leaving an RGB profile's conversion to sRGB
/// pending (see [`Normalized`]).
///
/// A profile that cannot be parsed, or does not match the pixel data (a gray profile on RGB
/// data, say), is ignored and the pixels are taken as sRGB, as browsers do.
pub fn normalize(decoded: Decoded) -> Result<Normalized, Error> {
    normalize_within(decoded, &Budget::NONE)
}

/// Pixels converted per budget check: a few milliseconds of the slowest conversion (qcms'
/// CMYK).
const BAND_PIXELS: usize = 1 << 16;

/// [`normalize`], checking `budget` between bands of the whole-image conversions.
pub(crate) fn normalize_within(decoded: Decoded, budget: &Budget) -> Result<Normalized, Error> {
    let icc = decoded.icc.as_deref();
    let profile = icc.and_then(|icc| Profile::new_from_slice(&prefer_colorimetric(icc), false));
    let icc_description = profile.as_ref().and(icc).and_then(description);
    let space = icc.and_then(data_color_space);
    // Colour stated by code points (AVIF only: left out of builds without AVIF input).
    #[cfg(feature = "avif-input")]
    let (profile, space) = match (icc, decoded.cicp.and_then(cicp_profile)) {
        (None, Some(p)) => (Some(p), Some(&b"RGB "[..])),
        _ => (profile, space),
    };
    match decoded.pixels {
        Pixels::Cmyk {
            width,
            height,
            data,
        } => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            let mut converted = false;
            if let Some(p) = profile.as_ref().filter(|_| space == Some(b"CMYK"))
                && let Some(t) = transform(p, DataType::CMYK, DataType::RGB8)
            {
                for (src, dst) in data
                    .chunks(BAND_PIXELS * 4)
                    .zip(rgb.chunks_mut(BAND_PIXELS * 3))
                {
                    budget.check()?;
                    t.convert(src, dst);
                }
                converted = true;
            }
            if !converted {
                naive_cmyk_to_rgb(&data, &mut rgb);
            }
            let frame = Frame::from_raw(width, height, 3, rgb)
                .ok_or_else(|| Error::internal("cmyk buffer size"))?;
            Ok(Normalized {
                frame,
                has_alpha: false,
                to_srgb: None,
                converted,
                icc_description,
            })
        }
        Pixels::Image(img) => {
            let gray = matches!(
                img,
                DynamicImage::ImageLuma8(_)
                    | DynamicImage::ImageLumaA8(_)
                    | DynamicImage::ImageLuma16(_)
                    | DynamicImage::ImageLumaA16(_)
            );
            let may_have_alpha = img.color().has_alpha();
            let mut converted = false;
            let mut to_srgb = None;
            let frame = match profile.as_ref() {
                Some(p) if !is_srgb_name(icc_description.as_deref()) => match (space, gray) {
                    (Some(b"GRAY"), true) => {
                        let (src, ty, out, channels) = if may_have_alpha {
                            (gray8(&img), DataType::GrayA8, DataType::RGBA8, 4)
                        } else {
                            (gray8(&img), DataType::Gray8, DataType::RGB8, 3)
                        };
                        let (w, h) = (img.width(), img.height());
                        let mut dst = vec![0u8; w as usize * h as usize * channels];
                        // A gray profile with a curve is one table; the rest go through qcms.
                        if let Some(table) = icc.and_then(crate::shaper::gray_to_srgb) {
                            let gray = channels - 2;
                            for (d, s) in dst.chunks_exact_mut(channels).zip(src.chunks_exact(gray))
                            {
                                d[..3].fill(table[usize::from(s[0])]);
                                if channels == 4 {
                                    d[3] = s[1];
                                }
                            }
                            converted = true;
                        } else if let Some(t) = transform(p, ty, out) {
                            let gray = channels - 2;
                            for (src, dst) in src
                                .chunks(BAND_PIXELS * gray)
                                .zip(dst.chunks_mut(BAND_PIXELS * channels))
                            {
                                budget.check()?;
                                t.convert(src, dst);
                            }
                            converted = true;
                        }
                        if converted {
                            Frame::from_raw(w, h, channels, dst)
                                .ok_or_else(|| Error::internal("gray buffer size"))?
                        } else {
                            into_frame(img)
                        }
                    }
                    (Some(b"RGB "), false) => {
                        let frame = into_frame(img);
                        let ty = if frame.channels() == 4 {
                            DataType::RGBA8
                        } else {
                            DataType::RGB8
                        };
                        let shaper = icc.and_then(Shaper::new).map(Box::new);
                        let transform = match shaper {
                            Some(s) => Some(Converter::Shaper(s)),
                            None => transform(p, ty, ty).map(Converter::Qcms),
                        };
                        if let Some(transform) = transform {
                            to_srgb = Some(SrgbTransform {
                                transform,
                                channels: frame.channels(),
                            });
                            converted = true;
                        }
                        frame
                    }
                    _ => into_frame(img),
                },
                _ => into_frame(img),
            };
            let has_alpha = match &frame {
                Frame::Rgba(img) => img.pixels().any(|p| p.0[3] != 255),
                Frame::Rgb(_) => false,
            };
            Ok(Normalized {
                frame,
                has_alpha,
                to_srgb,
                converted,
                icc_description,
            })
        }
    }
}

/// 8-bit RGB for 8-bit sources without alpha, RGBA for the rest, without a copy when the image
/// already is one of the two (`DynamicImage::to_rgb8` goes through a generic colour-space
/// conversion path that is several times slower on 8-bit gray).
fn into_frame(img: DynamicImage) -> Frame {
    match img {
        DynamicImage::ImageRgb8(rgb) => Frame::Rgb(rgb),
        DynamicImage::ImageRgba8(rgba) => Frame::Rgba(rgba),
        DynamicImage::ImageLuma8(gray) => {
            let (w, h) = gray.dimensions();
            let mut rgb = vec![0u8; gray.as_raw().len() * 3];
            for (d, &v) in rgb.chunks_exact_mut(3).zip(gray.as_raw()) {
                d.fill(v);
            }
            Frame::from_raw(w, h, 3, rgb).expect("w×h pixels")
        }
        // 16-bit and float images, rare enough to keep one conversion path (an opaque one is
        // simply an RGBA frame without transparency).
        other => Frame::Rgba(other.to_rgba8()),
    }
}

/// The 8-bit samples (gray, or gray and alpha) of a gray image, as `DynamicImage::to_luma8` and
/// `to_luma_alpha8` give them (16-bit samples rounded, `(v + 128) / 257`), without instantiating
/// the `image` crate's conversions from every colour type (1.9 KB of the gzipped WebAssembly
/// module). Empty for a colour image, which the caller never passes.
fn gray8(img: &DynamicImage) -> Vec<u8> {
    let narrow = |s: &[u16]| {
        s.iter()
            .map(|&v| ((u32::from(v) + 128) / 257) as u8)
            .collect()
    };
    match img {
        DynamicImage::ImageLuma8(g) => g.as_raw().clone(),
        DynamicImage::ImageLumaA8(g) => g.as_raw().clone(),
        DynamicImage::ImageLuma16(g) => narrow(g.as_raw()),
        DynamicImage::ImageLumaA16(g) => narrow(g.as_raw()),
        _ => Vec::new(),
    }
}

fn naive_cmyk_to_rgb(cmyk: &[u8], rgb: &mut [u8]) {
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let k = 255 - u32::from(src[3]);
        for i in 0..3 {
            dst[i] = ((255 - u32::from(src[i])) * k / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gray8` gives the samples of the `image` crate's own conversions, for every gray type
    /// and every 16-bit value.
    #[test]
    fn gray8_matches_the_image_crate() {
        let values: Vec<u16> = (0..=u16::MAX).collect();
        let l16 = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(256, 256, values.clone());
        let la16 = image::ImageBuffer::<image::LumaA<u16>, _>::from_raw(256, 128, values);
        let l8 = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 16 + y) as u8]));
        let la8 = image::GrayAlphaImage::from_fn(16, 16, |x, y| image::LumaA([x as u8, y as u8]));
        for img in [
            DynamicImage::ImageLuma16(l16.unwrap()),
            DynamicImage::ImageLumaA16(la16.unwrap()),
            DynamicImage::ImageLuma8(l8),
            DynamicImage::ImageLumaA8(la8),
        ] {
            let expected = if img.color().has_alpha() {
                img.to_luma_alpha8().into_raw()
            } else {
                img.to_luma8().into_raw()
            };
            assert_eq!(gray8(&img), expected, "{:?}", img.color());
        }
        assert!(gray8(&DynamicImage::new_rgb8(2, 2)).is_empty());
    }
}
