//! Stage 3: convert decoded pixels to 8-bit sRGB RGBA through the embedded ICC profile.
//!
//! Colour management is pure Rust (`moxcms`), relative colorimetric intent, as browsers and
//! LittleCMS-based tools render. CMYK uses the embedded CMYK profile when there is one.

use image::{DynamicImage, RgbaImage};
use moxcms::{
    ColorProfile, DataColorSpace, Layout, ProfileText, RenderingIntent, TransformOptions,
};

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

/// Reads a profile's description tag.
pub fn icc_description(icc: &[u8]) -> Option<String> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    description(&profile)
}

fn description(profile: &ColorProfile) -> Option<String> {
    let text = match profile.description.as_ref()? {
        ProfileText::PlainString(s) => s.clone(),
        ProfileText::Localizable(list) => list
            .iter()
            .find(|l| l.language == "en")
            .or_else(|| list.first())
            .map(|l| l.value.clone())?,
        ProfileText::Description(d) => {
            if d.ascii_string.trim_matches('\0').is_empty() {
                d.unicode_string.clone()
            } else {
                d.ascii_string.clone()
            }
        }
    };
    let text = text
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string();
    (!text.is_empty()).then_some(text)
}

fn is_srgb_name(desc: Option<&str>) -> bool {
    desc.is_some_and(|d| d.starts_with("sRGB"))
}

/// Builds a transform to sRGB: relative colorimetric first (what browsers use), then the
/// other intents for LUT profiles that only carry some of the tables.
fn transform(
    profile: &ColorProfile,
    src: Layout,
    dst: Layout,
) -> Option<std::sync::Arc<moxcms::Transform8BitExecutor>> {
    let srgb = ColorProfile::new_srgb();
    [
        RenderingIntent::RelativeColorimetric,
        RenderingIntent::Perceptual,
        profile.rendering_intent,
    ]
    .into_iter()
    .find_map(|rendering_intent| {
        let options = TransformOptions {
            rendering_intent,
            ..TransformOptions::default()
        };
        profile.create_transform_8bit(src, &srgb, dst, options).ok()
    })
}

/// Converts decoded pixels to sRGB RGBA8.
///
/// A profile that cannot be parsed, or does not match the pixel data (a gray profile on RGB
/// data, say), is ignored and the pixels are taken as sRGB, as browsers do.
pub fn to_srgb(decoded: Decoded) -> Result<Srgb, Error> {
    let profile = decoded
        .icc
        .as_deref()
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok());
    let icc_description = profile.as_ref().and_then(description);
    match decoded.pixels {
        Pixels::Cmyk {
            width,
            height,
            data,
        } => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            let mut converted = false;
            if let Some(p) = profile
                .as_ref()
                .filter(|p| p.color_space == DataColorSpace::Cmyk)
                && let Some(t) = transform(p, Layout::Rgba, Layout::Rgb)
            {
                converted = t.transform(&data, &mut rgb).is_ok();
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
                Some(p) if !is_srgb_name(icc_description.as_deref()) => {
                    match (p.color_space, gray) {
                        (DataColorSpace::Gray, true) => {
                            let luma = img.to_luma8();
                            let mut rgba = img.to_rgba8();
                            let mut rgb = vec![0u8; luma.as_raw().len() * 3];
                            if let Some(t) = transform(p, Layout::Gray, Layout::Rgb)
                                && t.transform(luma.as_raw(), &mut rgb).is_ok()
                            {
                                for (dst, src) in rgba.chunks_exact_mut(4).zip(rgb.chunks_exact(3))
                                {
                                    dst[..3].copy_from_slice(src);
                                }
                                converted = true;
                            }
                            rgba
                        }
                        (DataColorSpace::Rgb, false) => {
                            let src = img.to_rgba8();
                            let mut dst = RgbaImage::new(src.width(), src.height());
                            converted = transform(p, Layout::Rgba, Layout::Rgba)
                                .is_some_and(|t| t.transform(&src, &mut dst).is_ok());
                            if converted { dst } else { src }
                        }
                        _ => img.to_rgba8(),
                    }
                }
                _ => img.to_rgba8(),
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

fn naive_cmyk_to_rgb(cmyk: &[u8], rgb: &mut [u8]) {
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let k = 255 - u32::from(src[3]);
        for i in 0..3 {
            dst[i] = ((255 - u32::from(src[i])) * k / 255) as u8;
        }
    }
}
