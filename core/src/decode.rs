//! Stage 2: decode the first frame to pixels, within the allocation budget.
//!
//! JPEG goes through `zune-jpeg` directly so that CMYK and YCCK data reach the colour stage
//! untouched (the ICC profile, not a naive formula, decides their colours). Everything else goes
//! through `image`'s decoders with [`image::Limits`] set from [`Limits`].

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;

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
/// `ceil(width / shrink)` × `ceil(height / shrink)`. Other formats, and CMYK/YCCK JPEGs, decode
/// at full size whatever `shrink` says.
pub fn decode_scaled(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    shrink: u32,
) -> Result<Decoded, Error> {
    let format = checked.format;
    let run = || match format {
        Format::Jpeg if matches!(shrink, 2 | 4 | 8) => {
            match decode_jpeg_scaled(bytes, &checked.header, limits, shrink)? {
                Some(decoded) => Ok(decoded),
                None => decode_jpeg(bytes, checked.header.jpeg_adobe, limits),
            }
        }
        Format::Jpeg => decode_jpeg(bytes, checked.header.jpeg_adobe, limits),
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

fn jpeg_error(e: DecodeErrors) -> Error {
    match e {
        DecodeErrors::Unsupported(s) => Error::unsupported(format!("JPEG: {s:?}")),
        DecodeErrors::LargeDimensions(n) => Error::limit_exceeded(LimitKind::Width, n as u64, 0),
        other => Error::corrupt("jpeg", other.to_string()),
    }
}

fn decode_jpeg(bytes: &[u8], adobe: bool, limits: &Limits) -> Result<Decoded, Error> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(limits.max_width as usize)
        .set_max_height(limits.max_height as usize);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(jpeg_error)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| Error::corrupt("jpeg", "no frame header"))?;
    let (width, height) = (width as u32, height as u32);
    if width == 0 || height == 0 {
        return Err(Error::corrupt("jpeg", "zero width or height"));
    }
    check_dimensions(width, height, limits)?;
    let input = decoder
        .input_colorspace()
        .ok_or_else(|| Error::corrupt("jpeg", "no colour space"))?;
    let out = match input {
        ColorSpace::Luma => ColorSpace::Luma,
        ColorSpace::CMYK => ColorSpace::CMYK,
        ColorSpace::YCCK => ColorSpace::YCCK,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let icc = decoder.icc_profile();
    let data = decoder.decode().map_err(jpeg_error)?;
    let expected = width as usize * height as usize * out.num_components();
    if data.len() != expected {
        return Err(Error::corrupt("jpeg", "decoder returned a short buffer"));
    }
    let pixels = match out {
        ColorSpace::Luma => Pixels::Image(DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(width, height, data)
                .ok_or_else(|| Error::internal("luma buffer size"))?,
        )),
        ColorSpace::RGB => Pixels::Image(DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, data)
                .ok_or_else(|| Error::internal("rgb buffer size"))?,
        )),
        ColorSpace::CMYK => {
            let mut data = data;
            if adobe {
                // Adobe applications write inverted CMYK.
                data.iter_mut().for_each(|v| *v = 255 - *v);
            }
            Pixels::Cmyk {
                width,
                height,
                data,
            }
        }
        _ => {
            // YCCK: YCbCr-coded (inverted) CMY plus inverted K.
            let mut data = data;
            ycck_to_cmyk(&mut data);
            Pixels::Cmyk {
                width,
                height,
                data,
            }
        }
    };
    Ok(Decoded { pixels, icc })
}

/// Decodes a gray or YCbCr JPEG at `1/shrink` scale with `jpeg-decoder`'s reduced-size IDCT.
/// `None` for CMYK/YCCK data (those keep the full-size path and its colour handling).
fn decode_jpeg_scaled(
    bytes: &[u8],
    header: &crate::container::ContainerInfo,
    limits: &Limits,
    shrink: u32,
) -> Result<Option<Decoded>, Error> {
    use jpeg_decoder::{Decoder, PixelFormat};

    let scaled_error = |e: jpeg_decoder::Error| match e {
        jpeg_decoder::Error::Unsupported(u) => Error::unsupported(format!("JPEG: {u:?}")),
        other => Error::corrupt("jpeg", other.to_string()),
    };
    let (width, height) = (header.width, header.height);
    check_dimensions(width, height, limits)?;
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX),
    );
    decoder.read_info().map_err(scaled_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::corrupt("jpeg", "no frame header"))?;
    if (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return Err(Error::corrupt("jpeg", "frame size differs from the header"));
    }
    if !matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24) {
        return Ok(None);
    }
    let (want_w, want_h) = (width.div_ceil(shrink), height.div_ceil(shrink));
    let (sw, sh) = decoder
        .scale(
            u16::try_from(want_w).unwrap_or(u16::MAX),
            u16::try_from(want_h).unwrap_or(u16::MAX),
        )
        .map_err(scaled_error)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let icc = decoder.icc_profile();
    let data = decoder.decode().map_err(scaled_error)?;
    let pixels = match info.pixel_format {
        PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| Error::corrupt("jpeg", "decoder returned a short buffer"))?;
    Ok(Some(Decoded {
        pixels: Pixels::Image(pixels),
        icc,
    }))
}

/// Converts Adobe YCCK samples in place to CMYK with `0` = no ink.
fn ycck_to_cmyk(data: &mut [u8]) {
    for px in data.chunks_exact_mut(4) {
        let y = f32::from(px[0]);
        let cb = f32::from(px[1]) - 128.0;
        let cr = f32::from(px[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - 0.344_136 * cb - 0.714_136 * cr;
        let b = y + 1.772 * cb;
        // The encoder stored 255 - C etc. as "RGB" and K inverted.
        px[0] = r.round().clamp(0.0, 255.0) as u8;
        px[1] = g.round().clamp(0.0, 255.0) as u8;
        px[2] = b.round().clamp(0.0, 255.0) as u8;
        px[3] = 255 - px[3];
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
        Format::Webp => Box::new(image::codecs::webp::WebPDecoder::new(cursor).map_err(err)?),
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
        Format::Jpeg => return Err(Error::internal("JPEG is decoded by decode_jpeg")),
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
