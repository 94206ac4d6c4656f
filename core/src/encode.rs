//! Stage: encode pixels. WebP through libwebp (lossy and lossless, alpha kept), JPEG and PNG
//! through `image`'s pure-Rust encoders, AVIF through `ravif` (rav1e). No encoder here writes
//! any metadata chunk: output carries pixels only (no EXIF, XMP, IPTC, ICC, comments; AVIF
//! states sRGB in its AV1 sequence header, as every AV1 stream states a colour space).

#[cfg(feature = "jpeg-output")]
use image::codecs::jpeg::JpegEncoder;
#[cfg(feature = "png-output")]
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
#[cfg(any(feature = "jpeg-output", feature = "png-output"))]
use image::{ExtendedColorType, ImageEncoder};

use crate::budget::Budget;
use crate::error::Error;
use crate::frame::Frame;
pub(crate) use crate::libwebp::Pixels;
use crate::options::{OutputFormat, Variant};

/// Largest width or height a WebP image can have.
pub const WEBP_MAX_DIMENSION: u32 = 16383;

/// Encodes `frame` (8-bit sRGB, straight alpha) as `variant` says: its format, quality,
/// `lossless` (WebP) and `effort` (AVIF); its size fields are not read (`frame` is encoded at
/// its own size).
///
/// `has_alpha = false` drops the alpha channel of an RGBA frame (smaller output; an RGB frame
/// has none to keep).
pub fn encode(frame: &Frame, variant: &Variant, has_alpha: bool) -> Result<Vec<u8>, Error> {
    let (channels, size) = (frame.channels(), frame.dimensions());
    let pixels = Pixels::Borrowed(frame.as_raw());
    encode_within(pixels, size, channels, variant, has_alpha, &Budget::NONE)
}

/// [`encode`] of any pixels within a time budget: libwebp checks it at every macroblock row, the JPEG
/// encoder at every write of its output, the PNG encoder before it starts.
pub(crate) fn encode_within(
    pixels: Pixels<'_>,
    (w, h): (u32, u32),
    channels: usize,
    variant: &Variant,
    has_alpha: bool,
    budget: &Budget<'_>,
) -> Result<Vec<u8>, Error> {
    let (format, quality, lossless) = (variant.format, variant.quality, variant.lossless);
    budget.check()?;
    let has_alpha = has_alpha && channels == 4;
    // Only libwebp turns and converts pixels on the way in.
    let pixels = match format {
        OutputFormat::Webp => pixels,
        _ => pixels.into_ready(),
    };
    match format {
        OutputFormat::Webp => {
            crate::libwebp::encode(pixels, w, h, channels, quality, lossless, has_alpha, budget)
                .map_err(|detail| {
                    budget.or(Error::EncodeFailed {
                        format: "webp",
                        detail,
                    })
                })
        }
        #[cfg(feature = "jpeg-output")]
        OutputFormat::Jpeg => {
            let raw = pixels.as_slice();
            let rgb = if channels == 4 {
                std::borrow::Cow::Owned(flatten_over_white(raw))
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            let mut out = CheckedWriter {
                out: Vec::new(),
                budget,
            };
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(&rgb, w, h, ExtendedColorType::Rgb8)
                .map_err(|e| {
                    budget.or(Error::EncodeFailed {
                        format: "jpeg",
                        detail: e.to_string(),
                    })
                })?;
            Ok(out.out)
        }
        #[cfg(feature = "png-output")]
        OutputFormat::Png => {
            let raw = pixels.as_slice();
            let mut out = Vec::new();
            let encoder = PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                FilterType::Adaptive,
            );
            let result = if has_alpha {
                encoder.write_image(raw, w, h, ExtendedColorType::Rgba8)
            } else if channels == 3 {
                encoder.write_image(raw, w, h, ExtendedColorType::Rgb8)
            } else {
                let rgb = crate::frame::narrow(raw);
                encoder.write_image(&rgb, w, h, ExtendedColorType::Rgb8)
            };
            result.map_err(|e| Error::EncodeFailed {
                format: "png",
                detail: e.to_string(),
            })?;
            Ok(out)
        }
        #[cfg(feature = "avif-output")]
        OutputFormat::Avif => {
            let bytes = avif(
                pixels.as_slice(),
                (w, h),
                channels,
                quality,
                variant.effort,
                has_alpha,
            )
            .map_err(|detail| Error::EncodeFailed {
                format: "avif",
                detail,
            })?;
            // rav1e has no way to stop mid-frame: the budget is held before and after.
            budget.check()?;
            Ok(bytes)
        }
        #[cfg(not(all(
            feature = "jpeg-output",
            feature = "png-output",
            feature = "avif-output"
        )))]
        other => {
            let _ = (pixels, w, h, channels, quality, lossless, has_alpha);
            Err(Error::EncodeFailed {
                format: other.as_str(),
                detail: format!("{} output is not enabled in this build", other.as_str()),
            })
        }
    }
}

/// rav1e's speed preset (1 slowest … 10 fastest) for an effort (0 fastest … 9 slowest).
#[cfg(feature = "avif-output")]
pub(crate) fn avif_speed(effort: u8) -> u8 {
    10 - effort.min(9)
}

/// AVIF through ravif: 8-bit 4:4:4 YCbCr, full range, alpha (when kept) at the colour's
/// quality; rav1e's threads come from rayon's global pool, the one the variants run on.
#[cfg(feature = "avif-output")]
fn avif(
    raw: &[u8],
    (w, h): (u32, u32),
    channels: usize,
    quality: u8,
    effort: u8,
    has_alpha: bool,
) -> Result<Vec<u8>, String> {
    use rgb::FromSlice;
    let (w, h) = (w as usize, h as usize);
    let quality = f32::from(quality.clamp(1, 100));
    let encoder = ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(avif_speed(effort))
        .with_bit_depth(ravif::BitDepth::Eight)
        .with_num_threads(None);
    let encoded = if has_alpha {
        encoder.encode_rgba(ravif::Img::new(raw.as_rgba(), w, h))
    } else if channels == 3 {
        encoder.encode_rgb(ravif::Img::new(raw.as_rgb(), w, h))
    } else {
        let rgb = crate::frame::narrow(raw);
        encoder.encode_rgb(ravif::Img::new(rgb.as_rgb(), w, h))
    };
    encoded.map(|e| e.avif_file).map_err(|e| e.to_string())
}

/// The JPEG encoder's output, checking the budget at every write (the encoder writes as it goes).
#[cfg(feature = "jpeg-output")]
struct CheckedWriter<'a, 'b> {
    out: Vec<u8>,
    budget: &'a Budget<'b>,
}

#[cfg(feature = "jpeg-output")]
impl std::io::Write for CheckedWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget.stopped() {
            return Err(std::io::Error::other("stopped by the time budget"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Composites straight-alpha RGBA over white, giving RGB.
#[cfg(feature = "jpeg-output")]
fn flatten_over_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for p in rgba.chunks_exact(4) {
        let a = u32::from(p[3]);
        for &c in &p[..3] {
            rgb.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbaImage;

    fn gradient(w: u32, h: u32, alpha: bool) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                128,
                if alpha { (x % 256) as u8 } else { 255 },
            ])
        })
    }

    #[test]
    fn webp_lossy_and_lossless_round_trip() {
        for (lossless, alpha) in [(false, false), (false, true), (true, false), (true, true)] {
            let img = gradient(33, 17, alpha);
            let frame = Frame::from(img.clone());
            let v = Variant::original("t").with_lossless(lossless);
            let bytes = encode(&frame, &v, alpha).unwrap();
            assert!(bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP");
            let back = image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (33, 17));
            assert_eq!(
                back.color().has_alpha(),
                alpha,
                "lossless={lossless} alpha={alpha}"
            );
            if lossless {
                let back = back.to_rgba8();
                if alpha {
                    // Fully transparent pixels may have any colour; compare visible ones.
                    for (a, b) in img.pixels().zip(back.pixels()) {
                        if a.0[3] > 0 {
                            assert_eq!(a, b);
                        }
                    }
                } else {
                    assert_eq!(back, img);
                }
            }
        }
    }

    #[test]
    fn webp_rejects_oversized() {
        let none = Budget::NONE;
        let err =
            crate::libwebp::encode(Pixels::Borrowed(&[]), 16384, 1, 4, 85, false, false, &none)
                .unwrap_err();
        assert!(err.contains("16383"));
    }

    #[test]
    #[cfg(all(feature = "jpeg-output", feature = "png-output"))]
    fn jpeg_and_png() {
        let img = gradient(20, 10, true);
        let frame = Frame::from(img.clone());
        let v = Variant::original("t");
        let jpeg = encode(&frame, &v.clone().with_format(OutputFormat::Jpeg), true).unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let png_variant = v.with_format(OutputFormat::Png);
        let png = encode(&frame, &png_variant, true).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back, img);
        let png = encode(&frame, &png_variant, false).unwrap();
        assert!(!image::load_from_memory(&png).unwrap().color().has_alpha());
    }

    /// The payload of the first box of type `typ` found anywhere in `bytes` (a flat search is
    /// enough for the few boxes these tests read).
    #[cfg(feature = "avif-output")]
    fn find_box<'a>(bytes: &'a [u8], typ: &[u8; 4]) -> Option<&'a [u8]> {
        let at = bytes.windows(4).position(|w| w == typ)?;
        let size = u32::from_be_bytes(bytes.get(at - 4..at)?.try_into().ok()?) as usize;
        bytes.get(at + 4..at - 4 + size)
    }

    #[test]
    #[cfg(feature = "avif-output")]
    fn avif_states_size_alpha_and_srgb_and_nothing_else() {
        for (alpha, keep) in [(false, false), (true, true), (true, false)] {
            let frame = Frame::from(gradient(37, 21, alpha));
            let v = Variant::original("t").with_format(OutputFormat::Avif);
            let bytes = encode(&frame, &v, keep).unwrap();
            assert_eq!(&bytes[4..12], b"ftypavif", "alpha={alpha} keep={keep}");
            // `ispe`: version/flags, then width and height of the image (and of the alpha
            // plane, when there is one).
            let ispe = find_box(&bytes, b"ispe").unwrap();
            assert_eq!(ispe[4..8], 37u32.to_be_bytes());
            assert_eq!(ispe[8..12], 21u32.to_be_bytes());
            let urn = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
            let has_alpha_plane = bytes.windows(urn.len()).any(|w| w == urn);
            assert_eq!(has_alpha_plane, keep, "alpha={alpha} keep={keep}");
            // sRGB is stated in the AV1 sequence header; a `colr` box, where ravif writes one,
            // must say the same (nclx: BT.709 primaries, sRGB transfer), never carry a profile.
            if let Some(colr) = find_box(&bytes, b"colr") {
                assert_eq!(&colr[..4], b"nclx");
                assert_eq!(colr[4..8], [0, 1, 0, 13]);
            }
            for marker in [&b"Exif"[..], b"mime", b"<x:xmpmeta", b"prof", b"rICC"] {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker),
                    "{:?} in an AVIF output",
                    String::from_utf8_lossy(marker)
                );
            }
        }
    }

    #[test]
    #[cfg(feature = "avif-output")]
    fn avif_effort_and_quality_are_used() {
        let frame = Frame::from(gradient(64, 64, false));
        let v = Variant::original("t").with_format(OutputFormat::Avif);
        let low = encode(&frame, &v.clone().with_quality(20), false).unwrap();
        let high = encode(&frame, &v.clone().with_quality(95), false).unwrap();
        assert!(low.len() < high.len(), "{} vs {}", low.len(), high.len());
        // Out-of-range values never reach ravif's assertions.
        encode(&frame, &v.clone().with_quality(0).with_effort(9), false).unwrap();
        assert_eq!((avif_speed(0), avif_speed(4), avif_speed(9)), (10, 6, 1));
        assert_eq!(avif_speed(200), 1);
    }

    #[test]
    #[cfg(feature = "avif-output")]
    fn avif_of_tiny_and_thin_frames() {
        for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 2), (3, 65), (130, 1)] {
            for alpha in [false, true] {
                let frame = Frame::from(gradient(w, h, alpha));
                let v = Variant::original("t")
                    .with_format(OutputFormat::Avif)
                    .with_effort(9);
                let bytes = encode(&frame, &v, alpha).unwrap();
                let ispe = find_box(&bytes, b"ispe").unwrap();
                assert_eq!(ispe[4..8], w.to_be_bytes(), "{w}x{h}");
                assert_eq!(ispe[8..12], h.to_be_bytes(), "{w}x{h}");
            }
        }
    }
}
