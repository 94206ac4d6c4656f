//! Stage 3: convert decoded pixels to 8-bit sRGB RGBA through the embedded ICC profile.
//!
//! Colour management is pure Rust (`qcms`, the colour management of Firefox), so an image
//! looks as a browser shows it. CMYK uses the embedded CMYK profile when there is one.

use std::borrow::Cow;

use image::{DynamicImage, RgbaImage};
use qcms::{DataType, Intent, Profile, Transform};

use crate::decode::{Decoded, Pixels};
use crate::error::Error;

/// An image in 8-bit sRGB with straight (not premultiplied) alpha.
#[derive(Debug, Clone)]
pub struct Srgb {
    /// The pixels.
    pub image: RgbaImage,
    /// True when some pixel is not fully opaque.
    pub has_alpha: bool,
    /// True when an embedded profile was applied.
    pub converted: bool,
    /// The embedded profile's description, if there was a readable one.
    pub icc_description: Option<String>,
}

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
fn transform(profile: &Profile, src: DataType, dst: DataType) -> Option<Transform> {
    let srgb = Profile::new_sRGB();
    Transform::new_to(profile, &srgb, src, dst, Intent::Perceptual)
}

/// Converts decoded pixels to sRGB RGBA8.
///
/// A profile that cannot be parsed, or does not match the pixel data (a gray profile on RGB
/// data, say), is ignored and the pixels are taken as sRGB, as browsers do.
pub fn to_srgb(decoded: Decoded) -> Result<Srgb, Error> {
    let icc = decoded.icc.as_deref();
    let profile = icc.and_then(|icc| Profile::new_from_slice(&prefer_colorimetric(icc), false));
    let icc_description = profile.as_ref().and(icc).and_then(description);
    let space = icc.and_then(data_color_space);
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
                t.convert(&data, &mut rgb);
                converted = true;
            }
            if !converted {
                naive_cmyk_to_rgb(&data, &mut rgb);
            }
            let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
            for px in rgb.chunks_exact(3) {
                rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
            }
            let image = RgbaImage::from_raw(width, height, rgba)
                .ok_or_else(|| Error::internal("cmyk buffer size"))?;
            Ok(Srgb {
                image,
                has_alpha: false,
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
            let mut image = match profile.as_ref() {
                Some(p) if !is_srgb_name(icc_description.as_deref()) => match (space, gray) {
                    (Some(b"GRAY"), true) => {
                        let (src, ty) = if may_have_alpha {
                            (img.to_luma_alpha8().into_raw(), DataType::GrayA8)
                        } else {
                            (img.to_luma8().into_raw(), DataType::Gray8)
                        };
                        match transform(p, ty, DataType::RGBA8) {
                            Some(t) => {
                                let mut dst = RgbaImage::new(img.width(), img.height());
                                t.convert(&src, &mut dst);
                                converted = true;
                                dst
                            }
                            None => img.to_rgba8(),
                        }
                    }
                    (Some(b"RGB "), false) => {
                        let mut rgba = into_rgba8(img);
                        if let Some(t) = transform(p, DataType::RGBA8, DataType::RGBA8) {
                            t.apply(&mut rgba);
                            converted = true;
                        }
                        rgba
                    }
                    _ => into_rgba8(img),
                },
                _ => into_rgba8(img),
            };
            let has_alpha = may_have_alpha && image.pixels().any(|p| p.0[3] != 255);
            if !may_have_alpha {
                // Guarantee opaque alpha even if a transform touched it.
                image.pixels_mut().for_each(|p| p.0[3] = 255);
            }
            Ok(Srgb {
                image,
                has_alpha,
                converted,
                icc_description,
            })
        }
    }
}

/// 8-bit RGBA, without a copy when the image already is, and with plain loops for the 8-bit
/// gray and RGB that JPEGs decode to (`DynamicImage::to_rgba8` goes through a generic
/// colour-space conversion path that is several times slower on those).
fn into_rgba8(img: DynamicImage) -> RgbaImage {
    let (w, h) = (img.width(), img.height());
    let expand = |src: &[u8], channels: usize| {
        let mut out = vec![255u8; src.len() / channels * 4];
        for (d, p) in out.chunks_exact_mut(4).zip(src.chunks_exact(channels)) {
            d[0] = p[0];
            d[1] = p[channels / 2];
            d[2] = p[channels - 1];
        }
        out
    };
    let expanded = match &img {
        DynamicImage::ImageRgb8(rgb) => Some(expand(rgb.as_raw(), 3)),
        DynamicImage::ImageLuma8(gray) => Some(expand(gray.as_raw(), 1)),
        _ => None,
    };
    match (expanded.and_then(|buf| RgbaImage::from_raw(w, h, buf)), img) {
        (Some(rgba), _) => rgba,
        (None, DynamicImage::ImageRgba8(rgba)) => rgba,
        (None, other) => other.to_rgba8(),
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
