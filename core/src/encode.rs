//! Stage: encode pixels. WebP through libwebp (lossy and lossless, alpha kept), JPEG and PNG
//! through `image`'s pure-Rust encoders. No encoder here writes any metadata chunk: output
//! carries pixels only (no EXIF, XMP, IPTC, ICC, comments).

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
use crate::options::OutputFormat;

/// Largest width or height a WebP image can have.
pub const WEBP_MAX_DIMENSION: u32 = 16383;

/// Encodes `frame` (8-bit sRGB, straight alpha).
///
/// `has_alpha = false` drops the alpha channel of an RGBA frame (smaller output; an RGB frame
/// has none to keep); `quality` (0–100) applies to lossy WebP and JPEG; `lossless` selects
/// lossless WebP.
pub fn encode(
    frame: &Frame,
    format: OutputFormat,
    quality: u8,
    lossless: bool,
    has_alpha: bool,
) -> Result<Vec<u8>, Error> {
    let (channels, size) = (frame.channels(), frame.dimensions());
    let pixels = Pixels::Borrowed(frame.as_raw());
    let settings = (format, quality, lossless, has_alpha);
    encode_within(pixels, size, channels, settings, &Budget::NONE)
}

/// [`encode`] of any pixels within a time budget: libwebp checks it at every macroblock row, the JPEG
/// encoder at every write of its output, the PNG encoder before it starts.
pub(crate) fn encode_within(
    pixels: Pixels<'_>,
    (w, h): (u32, u32),
    channels: usize,
    (format, quality, lossless, has_alpha): (OutputFormat, u8, bool, bool),
    budget: &Budget<'_>,
) -> Result<Vec<u8>, Error> {
    budget.check()?;
    let has_alpha = has_alpha && channels == 4;
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
        #[cfg(not(all(feature = "jpeg-output", feature = "png-output")))]
        other => {
            let _ = (pixels, w, h, channels, quality, lossless, has_alpha);
            Err(Error::EncodeFailed {
                format: other.as_str(),
                detail: format!("{} output is not enabled in this build", other.as_str()),
            })
        }
    }
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
            let bytes = encode(&frame, OutputFormat::Webp, 85, lossless, alpha).unwrap();
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
        let jpeg = encode(&frame, OutputFormat::Jpeg, 90, false, true).unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let png = encode(&frame, OutputFormat::Png, 0, false, true).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back, img);
        let png = encode(&frame, OutputFormat::Png, 0, false, false).unwrap();
        assert!(!image::load_from_memory(&png).unwrap().color().has_alpha());
    }
}
