//! Stage 2: decode the first frame to pixels, within the allocation budget.
//!
//! JPEG goes through libjpeg-turbo's decompressor (`libjpeg.rs`), compiled from C in every
//! build (WebAssembly included, as libwebp is), for three reasons: it is the fastest JPEG decoder
//! there is (1.5–2.4× less CPU than `jpeg-decoder` here, `benches/RESULTS.md`), CMYK and YCCK
//! data reach the colour stage as CMYK (the ICC profile, not a naive formula, decides their
//! colours), and its reduced-size IDCT gives shrink-on-load. Its SIMD code (native builds) and
//! its C code (WebAssembly) give the same bytes, so every runtime's pixels are identical.
//! Everything else goes through `image`'s decoders with [`image::Limits`] set from [`Limits`],
//! except WebP, which libwebp decodes.

use image::{ColorType, DynamicImage, ImageDecoder, ImageError};

use crate::budget::{Budget, CheckedReader};
use crate::error::{Error, LimitKind};
use crate::options::Limits;
use crate::validate::{Checked, Format};

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
    /// The embedded ICC profile, if any (from the container walk: [`Checked::icc`]).
    pub icc: Option<Vec<u8>>,
    /// The colour the container states as code points (an AVIF `nclx` box), used when there is
    /// no ICC profile.
    pub cicp: Option<crate::container::Nclx>,
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
    Ok(Decoded {
        pixels: decode_within(
            bytes,
            checked,
            limits,
            shrink,
            Budget::NONE,
            &mut Vec::new(),
        )?,
        icc: checked.icc.clone(),
        cicp: checked.container.avif.as_ref().and_then(|a| a.nclx),
    })
}

/// [`decode_scaled`] within a time budget: libjpeg checks it between scans and row groups,
/// libwebp between slices of its input, the other decoders at every read of theirs. The ICC
/// profile stays in `checked` (the caller moves it on, no copy). The decoders that write into
/// a buffer of ours (JPEG, WebP, and PNG, GIF, BMP and TIFF at 8 bits) take `reuse` and write
/// into it if it is large enough ([`crate::libjpeg::Decoder::reusing`], [`block`]).
pub(crate) fn decode_within(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    shrink: u32,
    budget: Budget<'_>,
    reuse: &mut Vec<u8>,
) -> Result<Pixels, Error> {
    let format = checked.format;
    // Taken only by a decoder that writes into it.
    // Called once: through `catch_unwind` where panics unwind, directly (so as `FnMut`) where
    // they abort.
    #[cfg_attr(panic = "unwind", allow(unused_mut))]
    let mut run = || match format {
        Format::Jpeg => {
            let shrink = if matches!(shrink, 2 | 4 | 8) {
                shrink
            } else {
                1
            };
            decode_jpeg(
                bytes,
                checked,
                limits,
                shrink,
                budget,
                std::mem::take(reuse),
            )
        }
        Format::Webp => decode_webp(bytes, checked, limits, budget, reuse),
        #[cfg(feature = "avif-input")]
        Format::Avif => crate::avif::decode(bytes, checked, limits, budget),
        _ => decode_with_image(bytes, checked, limits, budget, reuse),
    };
    #[cfg(panic = "unwind")]
    let pixels =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| {
            Err(Error::corrupt(
                format.as_str(),
                "the decoder rejected malformed data (internal decoder panic)",
            ))
        })?;
    #[cfg(not(panic = "unwind"))]
    let pixels = run()?;
    Ok(pixels)
}

/// Decodes a JPEG through libjpeg-turbo's decompressor, at `1/shrink` scale (`shrink` = 2, 4
/// or 8, its reduced-size IDCT) or at full size.
///
/// A 3-component frame is YCbCr or RGB as the container walk decided
/// ([`crate::container::ContainerInfo::jpeg_ycbcr`]). CMYK and YCCK data come out as CMYK
/// with `0` = no ink: libjpeg gives the samples as stored (YCCK converted to CMYK the same
/// way), and Adobe's inverted storage is undone here.
fn decode_jpeg(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    shrink: u32,
    budget: Budget<'_>,
    reuse: Vec<u8>,
) -> Result<Pixels, Error> {
    use crate::libjpeg::{ColorSpace, Decoder};

    let header = &checked.container;
    let mut decoder = Decoder::new(bytes, limits.max_alloc_bytes)?.reusing(reuse);
    let info = decoder.info();
    if (info.width, info.height) != (header.width, header.height) {
        return Err(Error::corrupt("jpeg", "frame size differs from the header"));
    }
    let (stored, out) = info.color_spaces(header.jpeg_ycbcr)?;
    let samples = decoder.decode(shrink, stored, out, limits.max_alloc_bytes, &budget)?;
    let (sw, sh) = (samples.width, samples.height);
    let short = || Error::corrupt("jpeg", "decoder returned a short buffer");
    let pixels = match (out, samples.components) {
        (ColorSpace::Gray, 1) => Pixels::Image(DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(sw, sh, samples.data).ok_or_else(short)?,
        )),
        (ColorSpace::Rgb, 3) => Pixels::Image(DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(sw, sh, samples.data).ok_or_else(short)?,
        )),
        (ColorSpace::Cmyk, 4) => {
            let mut data = samples.data;
            if info.adobe {
                data.iter_mut().for_each(|v| *v = 255 - *v);
            }
            Pixels::Cmyk {
                width: sw,
                height: sh,
                data,
            }
        }
        _ => {
            return Err(Error::internal(
                "libjpeg gave an unexpected component count",
            ));
        }
    };
    Ok(pixels)
}

/// A zeroed buffer of `len` bytes: `reuse`'s block (taken) if that is large enough, else a
/// fresh one (`reuse` is then freed first). A fresh block of several MB is mapped on its own
/// and faulted in page by page as the decoder writes it; zeroing a block already mapped costs
/// a fraction of that.
pub(crate) fn block(reuse: &mut Vec<u8>, len: usize) -> Vec<u8> {
    let mut block = std::mem::take(reuse);
    if block.capacity() < len {
        drop(block);
        return vec![0; len];
    }
    block.clear();
    block.resize(len, 0);
    block
}

/// WebP through libwebp's own decoder (the library that also encodes every output).
fn decode_webp(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    budget: Budget<'_>,
    reuse: &mut Vec<u8>,
) -> Result<Pixels, Error> {
    let frame = crate::libwebp::decode(bytes, checked, limits, &budget, reuse)?;
    let image = image::RgbaImage::from_raw(frame.width, frame.height, frame.data)
        .ok_or_else(|| Error::internal("webp buffer size"))?;
    Ok(Pixels::Image(DynamicImage::ImageRgba8(image)))
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

fn decode_with_image(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    budget: Budget<'_>,
    reuse: &mut Vec<u8>,
) -> Result<Pixels, Error> {
    let format = checked.format;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    // Format-specific decoders (not `ImageReader`, which links every decoder `image` has —
    // including a second JPEG decoder — into the WASM module).
    // The decoders read as they decode: every read checks the budget, and a run stopped by it
    // says so instead of "truncated".
    let cursor = CheckedReader::new(bytes, budget);
    let err = |e| budget.or(image_error(format, limits, e));
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
        #[cfg(not(feature = "avif-input"))]
        Format::Avif => {
            return Err(Error::unsupported(
                "AVIF input is not enabled in this build",
            ));
        }
        #[cfg(feature = "avif-input")]
        Format::Avif => {
            return Err(Error::internal("AVIF has a decoder of its own"));
        }
        Format::Jpeg | Format::Webp => {
            return Err(Error::internal("JPEG and WebP have decoders of their own"));
        }
    };
    decoder.set_limits(image_limits).map_err(err)?;
    let (width, height) = decoder.dimensions();
    checked.admit(width, height)?;
    // The decoded buffer itself (16-bit and float formats need 8-16 bytes per pixel).
    let total = decoder.total_bytes();
    if total > limits.max_alloc_bytes {
        return Err(Error::limit_exceeded(
            LimitKind::Alloc,
            total,
            limits.max_alloc_bytes,
        ));
    }
    // 8-bit pixels go to a buffer of ours (`reuse`'s block when it is large enough); deeper
    // ones to `image`'s own. Not in WebAssembly, where no block is kept between runs (its
    // memory is never given back) and the code would only take module size.
    let color = decoder.color_type();
    let img = match color {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8
            if !cfg!(target_family = "wasm") =>
        {
            let len = usize::try_from(total).map_err(|_| {
                Error::limit_exceeded(LimitKind::Alloc, total, limits.max_alloc_bytes)
            })?;
            let mut buf = block(reuse, len);
            decoder.read_image(&mut buf).map_err(err)?;
            let short = || Error::internal("decoded buffer size");
            match color {
                ColorType::L8 => DynamicImage::ImageLuma8(
                    image::GrayImage::from_raw(width, height, buf).ok_or_else(short)?,
                ),
                ColorType::La8 => DynamicImage::ImageLumaA8(
                    image::GrayAlphaImage::from_raw(width, height, buf).ok_or_else(short)?,
                ),
                ColorType::Rgb8 => DynamicImage::ImageRgb8(
                    image::RgbImage::from_raw(width, height, buf).ok_or_else(short)?,
                ),
                _ => DynamicImage::ImageRgba8(
                    image::RgbaImage::from_raw(width, height, buf).ok_or_else(short)?,
                ),
            }
        }
        _ => DynamicImage::from_decoder(decoder).map_err(err)?,
    };
    Ok(Pixels::Image(img))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(img: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    /// The decoders that write into a buffer of ours write into the block they are given when
    /// it is large enough, and leave it alone when they do not use it.
    #[test]
    fn decoders_write_into_the_given_block() {
        let limits = Limits::default();
        let rgb = image::RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let cases = [
            (encoded(rgb.clone().into(), image::ImageFormat::Png), true),
            (encoded(rgb.clone().into(), image::ImageFormat::WebP), true),
            (
                encoded(
                    DynamicImage::from(rgb.clone()).to_luma8().into(),
                    image::ImageFormat::Png,
                ),
                true,
            ),
            (crate::test_jpeg(300, 200, 5), true),
            (
                encoded(
                    DynamicImage::from(rgb.clone()).to_rgb16().into(),
                    image::ImageFormat::Png,
                ),
                false,
            ),
        ];
        for (i, (bytes, writes)) in cases.into_iter().enumerate() {
            let checked = crate::validate::check(&bytes, &limits).unwrap();
            let fresh =
                decode_within(&bytes, &checked, &limits, 1, Budget::NONE, &mut Vec::new()).unwrap();
            let mut reuse = vec![7u8; 300 * 200 * 4 + 100];
            let at = reuse.as_ptr();
            let pixels =
                decode_within(&bytes, &checked, &limits, 1, Budget::NONE, &mut reuse).unwrap();
            let Pixels::Image(img) = &pixels else {
                panic!("case {i}: not an image")
            };
            let Pixels::Image(want) = &fresh else {
                panic!("case {i}: not an image")
            };
            assert_eq!(img, want, "case {i}: other pixels than a fresh decode's");
            let raw = img.as_bytes().as_ptr();
            if writes {
                assert_eq!(raw, at, "case {i}: not written into the given block");
                assert_eq!(reuse.capacity(), 0, "case {i}: the block was not taken");
            } else {
                assert_ne!(raw, at, "case {i}");
                assert_eq!(reuse.as_ptr(), at, "case {i}: an unused block was taken");
            }
        }
        // A block too small is freed, and a fresh one taken.
        let bytes = encoded(rgb.into(), image::ImageFormat::Png);
        let checked = crate::validate::check(&bytes, &limits).unwrap();
        let mut small = vec![0u8; 1000];
        decode_within(&bytes, &checked, &limits, 1, Budget::NONE, &mut small).unwrap();
        assert_eq!(small.capacity(), 0);
    }
}
