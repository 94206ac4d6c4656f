//! Stage: encode pixels. WebP through libwebp (lossy and lossless, alpha kept), JPEG and PNG
//! through `image`'s pure-Rust encoders. No encoder here writes any metadata chunk: output
//! carries pixels only (no EXIF, XMP, IPTC, ICC, comments).

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

use crate::error::Error;
use crate::options::OutputFormat;

/// Largest width or height a WebP image can have.
pub const WEBP_MAX_DIMENSION: u32 = 16383;

/// Encodes `image` (straight-alpha sRGB RGBA8).
///
/// `has_alpha = false` drops the alpha channel (smaller output); `quality` (0–100) applies to
/// lossy WebP and JPEG; `lossless` selects lossless WebP.
pub fn encode(
    image: &RgbaImage,
    format: OutputFormat,
    quality: u8,
    lossless: bool,
    has_alpha: bool,
) -> Result<Vec<u8>, Error> {
    let (w, h) = image.dimensions();
    match format {
        OutputFormat::Webp => webp::encode(image.as_raw(), w, h, quality, lossless, has_alpha)
            .map_err(|detail| Error::EncodeFailed {
                format: "webp",
                detail,
            }),
        OutputFormat::Jpeg => {
            let rgb = flatten_over_white(image);
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(&rgb, w, h, ExtendedColorType::Rgb8)
                .map_err(|e| Error::EncodeFailed {
                    format: "jpeg",
                    detail: e.to_string(),
                })?;
            Ok(out)
        }
        OutputFormat::Png => {
            let mut out = Vec::new();
            let encoder = PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                FilterType::Adaptive,
            );
            let result = if has_alpha {
                encoder.write_image(image.as_raw(), w, h, ExtendedColorType::Rgba8)
            } else {
                let rgb: Vec<u8> = image
                    .as_raw()
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect();
                encoder.write_image(&rgb, w, h, ExtendedColorType::Rgb8)
            };
            result.map_err(|e| Error::EncodeFailed {
                format: "png",
                detail: e.to_string(),
            })?;
            Ok(out)
        }
    }
}

/// Composites straight-alpha RGBA over white, giving RGB.
fn flatten_over_white(image: &RgbaImage) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(image.as_raw().len() / 4 * 3);
    for p in image.as_raw().chunks_exact(4) {
        let a = u32::from(p[3]);
        for &c in &p[..3] {
            rgb.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    rgb
}

/// The only `unsafe` in imgest: the libwebp encoder call. libwebp is the reference WebP encoder
/// (pure-Rust lossy encoders measured 5–60 % larger at equal quality), and calling `libwebp-sys`
/// directly keeps one libwebp version in native and WASM builds so both give identical bytes.
#[allow(unsafe_code)]
mod webp {
    use core::ffi::{c_int, c_void};
    use core::mem::MaybeUninit;

    use libwebp_sys as sys;

    use super::WEBP_MAX_DIMENSION;

    /// Frees the picture and the memory writer on every path.
    struct Guard {
        picture: sys::WebPPicture,
        writer: sys::WebPMemoryWriter,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: both were initialised by their libwebp init functions before `Guard` was
            // built; the free functions accept initialised, possibly empty, structs.
            unsafe {
                sys::WebPPictureFree(&mut self.picture);
                sys::WebPMemoryWriterClear(&mut self.writer);
            }
        }
    }

    pub(super) fn encode(
        rgba: &[u8],
        width: u32,
        height: u32,
        quality: u8,
        lossless: bool,
        has_alpha: bool,
    ) -> Result<Vec<u8>, String> {
        if width == 0 || height == 0 || width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION {
            return Err(format!(
                "{width}x{height} is outside WebP's 1..={WEBP_MAX_DIMENSION} px per side"
            ));
        }
        let stride = width as usize * 4;
        if rgba.len() != stride * height as usize {
            return Err("pixel buffer size does not match the dimensions".into());
        }
        let stride = c_int::try_from(stride).map_err(|_| "row too long".to_string())?;
        let abi = sys::WEBP_ENCODER_ABI_VERSION as c_int;
        // SAFETY: every pointer handed to libwebp points into live, correctly sized Rust
        // memory: `config`/`guard` live on this stack frame, `rgba` holds exactly
        // `stride * height` bytes (checked above) and outlives the import call, which copies it.
        // `custom_ptr` points at `guard.writer`, which is not moved while `WebPEncode` runs.
        unsafe {
            let mut config = MaybeUninit::<sys::WebPConfig>::uninit();
            if sys::WebPConfigInitInternal(
                config.as_mut_ptr(),
                sys::WebPPreset::WEBP_PRESET_DEFAULT,
                f32::from(quality.min(100)),
                abi,
            ) == 0
            {
                return Err("libwebp version mismatch".into());
            }
            let mut config = config.assume_init();
            config.method = 4;
            // With pthreads (native builds), libwebp analyses and encodes the alpha plane on a
            // second thread; the bytes are the same as single-threaded (checked on the bench
            // images). Without them (wasm32) the setting is ignored.
            config.thread_level = 1;
            if lossless {
                config.lossless = 1;
                config.quality = 75.0;
                config.exact = 0;
            }
            if sys::WebPValidateConfig(&config) == 0 {
                return Err("invalid encoder configuration".into());
            }
            let mut picture = MaybeUninit::<sys::WebPPicture>::uninit();
            if sys::WebPPictureInitInternal(picture.as_mut_ptr(), abi) == 0 {
                return Err("libwebp version mismatch".into());
            }
            let mut writer = MaybeUninit::<sys::WebPMemoryWriter>::uninit();
            sys::WebPMemoryWriterInit(writer.as_mut_ptr());
            let mut guard = Guard {
                picture: picture.assume_init(),
                writer: writer.assume_init(),
            };
            guard.picture.use_argb = c_int::from(lossless);
            guard.picture.width = width as c_int;
            guard.picture.height = height as c_int;
            let imported = if has_alpha {
                sys::WebPPictureImportRGBA(&mut guard.picture, rgba.as_ptr(), stride)
            } else {
                sys::WebPPictureImportRGBX(&mut guard.picture, rgba.as_ptr(), stride)
            };
            if imported == 0 {
                return Err("out of memory importing pixels".into());
            }
            guard.picture.writer = Some(sys::WebPMemoryWrite);
            guard.picture.custom_ptr =
                (&mut guard.writer as *mut sys::WebPMemoryWriter).cast::<c_void>();
            if sys::WebPEncode(&config, &mut guard.picture) == 0 {
                return Err(format!("libwebp error {:?}", guard.picture.error_code));
            }
            if guard.writer.mem.is_null() || guard.writer.size == 0 {
                return Err("libwebp produced no output".into());
            }
            Ok(core::slice::from_raw_parts(guard.writer.mem, guard.writer.size).to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let bytes = encode(&img, OutputFormat::Webp, 85, lossless, alpha).unwrap();
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
        let err = webp::encode(&[], 16384, 1, 85, false, false).unwrap_err();
        assert!(err.contains("16383"));
    }

    #[test]
    fn jpeg_and_png() {
        let img = gradient(20, 10, true);
        let jpeg = encode(&img, OutputFormat::Jpeg, 90, false, true).unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let png = encode(&img, OutputFormat::Png, 0, false, true).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back, img);
        let png = encode(&img, OutputFormat::Png, 0, false, false).unwrap();
        assert!(!image::load_from_memory(&png).unwrap().color().has_alpha());
    }
}
