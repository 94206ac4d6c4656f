//! Stage 2: decode the first frame to pixels, within the allocation budget.
//!
//! JPEG goes through `jpeg-decoder` directly, for two reasons: CMYK and YCCK data reach the
//! colour stage as CMYK (the ICC profile, not a naive formula, decides their colours), and its
//! reduced-size IDCT gives shrink-on-load. One JPEG decoder for every size keeps the WebAssembly
//! module small and every runtime's pixels identical. Everything else goes through `image`'s
//! decoders with [`image::Limits`] set from [`Limits`], except WebP, which libwebp decodes.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError};

use crate::error::{Error, LimitKind};
use crate::options::Limits;
use crate::validate::{Checked, Format, check_dimensions};

/// Decoded pixels, in the colour space of the file.
#[derive(Debug, Clone)]
pub enum Pixels {
    /// Gray, gray+alpha, RGB or RGBA at 8, 16 or 32-bit float depth.
    Image(DynamicImage),
    /// CMYK, 4 bytes per pixel, `0` = no ink (Adobe inversion already undone).
    Cmyk {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// `width * height * 4` bytes.
        data: Vec<u8>,
    },
}

impl Pixels {
    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Image(img) => (img.width(), img.height()),
            Pixels::Cmyk { width, height, .. } => (*width, *height),
        }
    }
}

/// The first frame of an image and its embedded ICC profile.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels.
    pub pixels: Pixels,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

/// Decodes the first frame of `bytes`, already sniffed and header-checked by
/// [`crate::validate::check`].
///
/// A panic inside a third-party decoder on malformed data is caught (where panics unwind) and
/// reported as `corrupt_input`, never propagated.
pub fn decode(bytes: &[u8], checked: &Checked, limits: &Limits) -> Result<Decoded, Error> {
    decode_scaled(bytes, checked, limits, 1)
}

/// Like [`decode`], but a JPEG may be decoded at `1/shrink` of its size (`shrink` = 2, 4 or 8)
/// through DCT-domain scaling, which skips most of the work of decoding pixels that a smaller
/// output would throw away (libjpeg's and libvips' "shrink-on-load"). The result is then
/// `ceil(width / shrink)` × `ceil(height / shrink)`. Other formats decode at full size whatever
/// `shrink` says.
pub fn decode_scaled(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    shrink: u32,
) -> Result<Decoded, Error> {
    let format = checked.format;
    let run = || match format {
        Format::Jpeg => {
            let shrink = if matches!(shrink, 2 | 4 | 8) {
                shrink
            } else {
                1
            };
            decode_jpeg(bytes, &checked.header, limits, shrink)
        }
        Format::Webp => decode_webp(bytes, limits),
        other => decode_with_image(bytes, other, limits),
    };
    #[cfg(panic = "unwind")]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| {
            Err(Error::corrupt(
                format.as_str(),
                "the decoder rejected malformed data (internal decoder panic)",
            ))
        })
    }
    #[cfg(not(panic = "unwind"))]
    {
        run()
    }
}

fn jpeg_error(e: jpeg_decoder::Error) -> Error {
    match e {
        jpeg_decoder::Error::Unsupported(u) => Error::unsupported(format!("JPEG: {u:?}")),
        jpeg_decoder::Error::Io(io) => Error::corrupt("jpeg", format!("truncated: {io}")),
        other => Error::corrupt("jpeg", other.to_string()),
    }
}

/// Decodes a JPEG, at `1/shrink` scale (`shrink` = 2, 4 or 8) through `jpeg-decoder`'s
/// reduced-size IDCT, or at full size (`shrink` = 1).
///
/// CMYK and YCCK data come out as CMYK with `0` = no ink: `jpeg-decoder` undoes Adobe's inverted
/// storage and converts YCCK itself, so only plain (non-Adobe) CMYK, which stores ink directly,
/// is inverted back here.
fn decode_jpeg(
    bytes: &[u8],
    header: &crate::container::ContainerInfo,
    limits: &Limits,
    shrink: u32,
) -> Result<Decoded, Error> {
    use jpeg_decoder::{Decoder, PixelFormat};

    let (width, height) = (header.width, header.height);
    if width == 0 || height == 0 {
        return Err(Error::corrupt("jpeg", "zero width or height"));
    }
    check_dimensions(width, height, limits)?;
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX),
    );
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::corrupt("jpeg", "no frame header"))?;
    if (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return Err(Error::corrupt("jpeg", "frame size differs from the header"));
    }
    // wasm32: YCbCr comes out unconverted (the "RGB" transform copies the samples as they are)
    // and is converted below exactly as the native x86-64 build converts it.
    #[cfg(target_arch = "wasm32")]
    let ycbcr = info.pixel_format == PixelFormat::RGB24 && header.jpeg_ycbcr;
    #[cfg(target_arch = "wasm32")]
    if ycbcr {
        decoder.set_color_transform(jpeg_decoder::ColorTransform::RGB);
    }
    let (sw, sh) = if shrink > 1 {
        let (want_w, want_h) = (width.div_ceil(shrink), height.div_ceil(shrink));
        let (sw, sh) = decoder
            .scale(
                u16::try_from(want_w).unwrap_or(u16::MAX),
                u16::try_from(want_h).unwrap_or(u16::MAX),
            )
            .map_err(jpeg_error)?;
        (u32::from(sw), u32::from(sh))
    } else {
        (width, height)
    };
    let icc = decoder.icc_profile();
    let data = decoder.decode().map_err(jpeg_error)?;
    let short = || Error::corrupt("jpeg", "decoder returned a short buffer");
    let pixels = match info.pixel_format {
        PixelFormat::L8 => Pixels::Image(DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(sw, sh, data).ok_or_else(short)?,
        )),
        PixelFormat::RGB24 => {
            #[cfg(target_arch = "wasm32")]
            let data = {
                let mut data = data;
                if ycbcr {
                    ycbcr_like_x86(&mut data, sw as usize);
                }
                data
            };
            Pixels::Image(DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(sw, sh, data).ok_or_else(short)?,
            ))
        }
        PixelFormat::L16 => {
            // Lossless 16-bit gray, big-endian samples.
            let samples: Vec<u16> = data
                .chunks_exact(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .collect();
            Pixels::Image(DynamicImage::ImageLuma16(
                image::ImageBuffer::from_raw(sw, sh, samples).ok_or_else(short)?,
            ))
        }
        PixelFormat::CMYK32 => {
            let mut data = data;
            if data.len() != sw as usize * sh as usize * 4 {
                return Err(short());
            }
            if !header.jpeg_adobe {
                data.iter_mut().for_each(|v| *v = 255 - *v);
            }
            Pixels::Cmyk {
                width: sw,
                height: sh,
                data,
            }
        }
    };
    Ok(Decoded { pixels, icc })
}

/// WebP through libwebp's own decoder (the library that also encodes every output).
fn decode_webp(bytes: &[u8], limits: &Limits) -> Result<Decoded, Error> {
    let frame = crate::libwebp::decode(bytes, limits)?;
    let image = image::RgbaImage::from_raw(frame.width, frame.height, frame.data)
        .ok_or_else(|| Error::internal("webp buffer size"))?;
    // The ICC profile comes from the container walk (`ICCP` chunk).
    Ok(Decoded {
        pixels: Pixels::Image(DynamicImage::ImageRgba8(image)),
        icc: None,
    })
}

/// YCbCr → RGB in place, row by row (`width` pixels), with the arithmetic of `jpeg-decoder`'s
/// x86-64 build, so that the WebAssembly module's pixels equal the native ones.
///
/// On x86-64 `jpeg-decoder` (0.3) converts a row with its SSSE3 code (16-bit fixed point) except
/// for its last 8–15 pixels, which its scalar code (20-bit fixed point) converts; its wasm32 SIMD
/// code stops only 0–7 pixels before the end. The two formulas differ by 1 on 0.5 % of the
/// values, which after resizing and lossy encoding is enough to change output bytes. Both are
/// reproduced here, and split where the x86-64 code splits; the parity test of the npm package
/// checks the result byte for byte against the native build.
#[cfg(any(target_arch = "wasm32", test))]
fn ycbcr_like_x86(data: &mut [u8], width: usize) {
    // The SSSE3 formula: samples << 6, products by `_mm_mulhrs_epi16` (rounded Q15),
    // saturating 16-bit sums, >> 6, unsigned saturation.
    fn mulhrs(a: i16, b: i16) -> i16 {
        ((i32::from(a) * i32::from(b) + 0x4000) >> 15) as i16
    }
    fn simd_formula(p: &mut [u8]) {
        let y = (i16::from(p[0]) << 6).saturating_add(32);
        let cb = (i16::from(p[1]) << 6).saturating_sub(128 << 6);
        let cr = (i16::from(p[2]) << 6).saturating_sub(128 << 6);
        let r = y.saturating_add(mulhrs(cr, 13173).saturating_add(cr));
        let g = y.saturating_sub(mulhrs(cb, 11276).saturating_add(mulhrs(cr, 23401)));
        let b = y.saturating_add(mulhrs(cb, 25297).saturating_add(cb));
        p[0] = (r >> 6).clamp(0, 255) as u8;
        p[1] = (g >> 6).clamp(0, 255) as u8;
        p[2] = (b >> 6).clamp(0, 255) as u8;
    }
    // The scalar formula (libjpeg's `jdcolor.c`, constants `(c * 2^20 + 0.5)` in f32).
    fn scalar_formula(p: &mut [u8]) {
        let y = (i32::from(p[0]) << 20) + (1 << 19);
        let cb = i32::from(p[1]) - 128;
        let cr = i32::from(p[2]) - 128;
        p[0] = ((y + 1_470_104 * cr) >> 20).clamp(0, 255) as u8;
        p[1] = ((y - 360_857 * cb - 748_830 * cr) >> 20).clamp(0, 255) as u8;
        p[2] = ((y + 1_858_077 * cb) >> 20).clamp(0, 255) as u8;
    }
    if width == 0 {
        return;
    }
    let simd_pixels = (width / 8).saturating_sub(1) * 8;
    for row in data.chunks_exact_mut(width * 3) {
        let (head, tail) = row.split_at_mut(simd_pixels * 3);
        head.chunks_exact_mut(3).for_each(simd_formula);
        tail.chunks_exact_mut(3).for_each(scalar_formula);
    }
}

fn image_error(format: Format, limits: &Limits, e: ImageError) -> Error {
    match e {
        // `image` does not say how much it wanted; report the budget.
        ImageError::Limits(_) => Error::limit_exceeded(
            LimitKind::Alloc,
            limits.max_alloc_bytes.saturating_add(1),
            limits.max_alloc_bytes,
        ),
        ImageError::Unsupported(u) => Error::unsupported(format!("{format}: {u}")),
        ImageError::IoError(io) => Error::corrupt(format.as_str(), format!("truncated: {io}")),
        other => Error::corrupt(format.as_str(), other.to_string()),
    }
}

fn decode_with_image(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded, Error> {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    // Format-specific decoders (not `ImageReader`, which links every decoder `image` has —
    // including a second JPEG decoder — into the WASM module).
    let cursor = Cursor::new(bytes);
    let err = |e| image_error(format, limits, e);
    let mut decoder: Box<dyn ImageDecoder + '_> = match format {
        Format::Png => Box::new(
            image::codecs::png::PngDecoder::with_limits(cursor, image_limits.clone())
                .map_err(err)?,
        ),
        Format::Gif => Box::new(image::codecs::gif::GifDecoder::new(cursor).map_err(err)?),
        #[cfg(feature = "bmp")]
        Format::Bmp => Box::new(image::codecs::bmp::BmpDecoder::new(cursor).map_err(err)?),
        #[cfg(feature = "tiff")]
        Format::Tiff => Box::new(image::codecs::tiff::TiffDecoder::new(cursor).map_err(err)?),
        #[cfg(not(feature = "bmp"))]
        Format::Bmp => {
            return Err(Error::unsupported(
                "BMP support is not enabled in this build",
            ));
        }
        #[cfg(not(feature = "tiff"))]
        Format::Tiff => {
            return Err(Error::unsupported(
                "TIFF support is not enabled in this build",
            ));
        }
        Format::Jpeg | Format::Webp => {
            return Err(Error::internal("JPEG and WebP have decoders of their own"));
        }
    };
    decoder.set_limits(image_limits).map_err(err)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::corrupt(format.as_str(), "zero width or height"));
    }
    check_dimensions(width, height, limits)?;
    // The decoded buffer itself (16-bit and float formats need 8-16 bytes per pixel).
    let total = decoder.total_bytes();
    if total > limits.max_alloc_bytes {
        return Err(Error::limit_exceeded(
            LimitKind::Alloc,
            total,
            limits.max_alloc_bytes,
        ));
    }
    let icc = decoder.icc_profile().ok().flatten();
    let img = DynamicImage::from_decoder(decoder).map_err(|e| image_error(format, limits, e))?;
    Ok(Decoded {
        pixels: Pixels::Image(img),
        icc,
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use image::ImageEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use jpeg_decoder::{ColorTransform, Decoder};

    /// The WebAssembly build's YCbCr conversion equals what `jpeg-decoder` gives natively on
    /// x86-64 (its SSSE3 code), byte for byte, at row widths around its 8-pixel split.
    #[test]
    fn wasm_ycbcr_conversion_matches_the_x86_decoder() {
        assert!(std::is_x86_feature_detected!("ssse3"));
        let mut seed = 0x9E37_79B9_u32;
        for (w, h) in [
            (1, 1),
            (7, 3),
            (8, 3),
            (15, 9),
            (16, 2),
            (17, 5),
            (37, 23),
            (200, 40),
        ] {
            let pixels: Vec<u8> = (0..w * h * 3)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed >> 24) as u8
                })
                .collect();
            let mut jpeg = Vec::new();
            JpegEncoder::new_with_quality(&mut jpeg, 92)
                .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
            let native = Decoder::new(&jpeg[..]).decode().unwrap();
            let mut decoder = Decoder::new(&jpeg[..]);
            decoder.set_color_transform(ColorTransform::RGB);
            let mut raw = decoder.decode().unwrap();
            assert_ne!(raw, native, "{w}x{h}: the samples were converted");
            super::ycbcr_like_x86(&mut raw, w as usize);
            assert_eq!(raw, native, "{w}x{h}");
        }
    }
}
