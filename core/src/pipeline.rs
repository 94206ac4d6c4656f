//! The whole pipeline: validate → decode → sRGB → orient → resize → encode → colours.

use std::borrow::Cow;

use image::RgbaImage;
use sha2::{Digest, Sha256};

use crate::color;
use crate::container;
use crate::decode;
use crate::dominant;
use crate::encode::{self, WEBP_MAX_DIMENSION};
use crate::error::{Error, LimitKind};
use crate::options::{Limits, Options, OutputFormat, Variant};
use crate::orient;
use crate::output::{Color, MetadataFound, Output, PaletteColor, SourceReport, VariantOutput};
use crate::placeholder;
use crate::resize::{self, Resizer};
use crate::validate;
use crate::validate::Format;

/// A reusable pipeline: options are validated once, and resampling scratch buffers are kept
/// between runs.
///
/// ```
/// let mut pipeline = imgest::Pipeline::new(imgest::Options::default())?;
/// let err = pipeline.run(b"definitely not an image").unwrap_err();
/// assert_eq!(err.code(), imgest::ErrorCode::NotAnImage);
/// # Ok::<(), imgest::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipeline {
    options: Options,
    resizer: Resizer,
}

/// Runs the pipeline once with `options`. For many images, build a [`Pipeline`] and reuse it.
pub fn process(input: &[u8], options: &Options) -> Result<Output, Error> {
    Pipeline::new(options.clone())?.run(input)
}

/// The pixels after decoding, colour conversion and orientation, plus the report so far.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Upright sRGB RGBA8 pixels. Smaller than `source.width` × `source.height` when a JPEG
    /// was decoded at reduced scale ([`Options::shrink_on_load`]); variants are sized from
    /// `source`, not from these pixels.
    pub image: RgbaImage,
    /// The report on the source.
    pub source: SourceReport,
}

impl Pipeline {
    /// Validates `options` (an `invalid_options` error names the field) and builds a pipeline.
    pub fn new(options: Options) -> Result<Pipeline, Error> {
        options.validate()?;
        Ok(Pipeline {
            options,
            resizer: Resizer::new(),
        })
    }

    /// The options this pipeline runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Validates, decodes, converts to sRGB and orients `input`, without resizing or encoding.
    pub fn prepare(&self, input: &[u8]) -> Result<Prepared, Error> {
        let limits = &self.options.limits;
        let checked = validate::check(input, limits)?;
        let format = checked.format;
        let info = container::scan(input, format.kind(), limits.max_frames);
        check_scans_and_icc(&info, limits)?;
        let orientation = info
            .orientation
            .filter(|o| (1..=8).contains(o))
            .unwrap_or(1);
        let shrink = if format == Format::Jpeg && self.options.shrink_on_load {
            let (w, h) =
                orient::oriented_size(checked.header.width, checked.header.height, orientation);
            shrink_factor(w, h, &self.options.variants)
        } else {
            1
        };
        let mut decoded = decode::decode_scaled(input, &checked, limits, shrink)?;
        if decoded.icc.is_none() && !info.icc_compressed {
            // Profiles only the container walker finds (GIF ICC extension, BMP V5).
            decoded.icc = info.icc.clone();
        }
        let (stored_width, stored_height) = if shrink > 1 {
            (checked.header.width, checked.header.height)
        } else {
            decoded.pixels.dimensions()
        };
        let has_icc = decoded.icc.is_some() || info.has_icc;
        let srgb = color::to_srgb(decoded)?;
        let image = orient::apply(srgb.image, orientation);
        let (width, height) = orient::oriented_size(stored_width, stored_height, orientation);
        let source = SourceReport {
            format,
            bytes: input.len() as u64,
            stored_width,
            stored_height,
            orientation,
            width,
            height,
            frames: checked.header.frames.max(info.frames).max(1),
            has_alpha: srgb.has_alpha,
            metadata: MetadataFound {
                exif: info.has_exif,
                gps: info.has_gps,
                makernote: info.has_makernote,
                xmp: info.has_xmp,
                iptc: info.has_iptc,
                icc: has_icc,
                comment: info.has_comment,
            },
            icc_description: srgb.icc_description,
            color_converted: srgb.converted,
            trailing_bytes: info.trailing_bytes,
        };
        Ok(Prepared { image, source })
    }

    /// Runs the whole pipeline on `input`.
    pub fn run(&mut self, input: &[u8]) -> Result<Output, Error> {
        let prepared = self.prepare(input)?;
        self.finish(prepared)
    }

    /// Resizes, encodes and analyses prepared pixels.
    pub fn finish(&mut self, prepared: Prepared) -> Result<Output, Error> {
        let Prepared { image, source } = prepared;
        let has_alpha = source.has_alpha;
        let linear = self.options.linear_light;

        // Resize sequentially (sharing scratch buffers and identical sizes), encode in parallel.
        // A full-size variant encodes `image` itself, not a copy (4 bytes per pixel less at the
        // peak).
        let mut resized: Vec<((u32, u32), Cow<'_, RgbaImage>)> = Vec::new();
        let mut jobs: Vec<(&Variant, usize)> = Vec::with_capacity(self.options.variants.len());
        for v in &self.options.variants {
            let (w, h) = target_size(source.width, source.height, v);
            let idx = match resized.iter().position(|(size, _)| *size == (w, h)) {
                Some(i) => i,
                None => {
                    let img = if (w, h) == image.dimensions() {
                        Cow::Borrowed(&image)
                    } else {
                        Cow::Owned(self.resizer.resize(&image, w, h, has_alpha, linear)?)
                    };
                    resized.push(((w, h), img));
                    resized.len() - 1
                }
            };
            jobs.push((v, idx));
        }
        let encode_one = |(v, idx): &(&Variant, usize)| -> Result<VariantOutput, Error> {
            let img: &RgbaImage = &resized[*idx].1;
            let bytes = encode::encode(img, v.format, v.quality, v.lossless, has_alpha)?;
            let sha256 = hex(&Sha256::digest(&bytes));
            Ok(VariantOutput {
                name: v.name.clone(),
                width: img.width(),
                height: img.height(),
                format: v.format,
                size: bytes.len(),
                sha256,
                bytes,
            })
        };
        #[cfg(feature = "rayon")]
        let variants: Vec<VariantOutput> = {
            use rayon::prelude::*;
            jobs.par_iter().map(encode_one).collect::<Result<_, _>>()?
        };
        #[cfg(not(feature = "rayon"))]
        let variants: Vec<VariantOutput> = jobs.iter().map(encode_one).collect::<Result<_, _>>()?;

        let (dominant_color, palette) = if self.options.dominant_color {
            let swatches = dominant::palette(&image, usize::from(self.options.palette_size.max(1)));
            let dominant = swatches.first().map(|s| Color {
                hex: s.color.hex(),
                rgb: [s.color.r, s.color.g, s.color.b],
            });
            let palette = swatches
                .iter()
                .take(usize::from(self.options.palette_size))
                .map(|s| PaletteColor {
                    hex: s.color.hex(),
                    rgb: [s.color.r, s.color.g, s.color.b],
                    weight: s.weight,
                })
                .collect();
            (dominant, palette)
        } else {
            (None, Vec::new())
        };
        let placeholder = if self.options.placeholder {
            Some(placeholder::thumbhash(
                &image,
                &mut self.resizer,
                has_alpha,
            )?)
        } else {
            None
        };
        Ok(Output {
            variants,
            dominant_color,
            palette,
            placeholder,
            source,
        })
    }
}

/// The JPEG shrink-on-load factor (1, 2, 4 or 8) for an upright `width` × `height` image: the
/// largest that still leaves the decoded image at least twice each variant's size (libvips'
/// rule), so the Lanczos resize that follows keeps its quality. 1 when a variant needs the full
/// size.
pub fn shrink_factor(width: u32, height: u32, variants: &[Variant]) -> u32 {
    let mut factor = f64::INFINITY;
    for v in variants {
        let (w, h) = target_size(width, height, v);
        factor = factor
            .min(f64::from(width) / f64::from(w.max(1)))
            .min(f64::from(height) / f64::from(h.max(1)));
    }
    [8, 4, 2]
        .into_iter()
        .find(|&s| f64::from(s) * 2.0 <= factor)
        .unwrap_or(1)
}

/// The size a variant gets from an upright `width` × `height` image (WebP caps each side at
/// 16383 px).
pub fn target_size(width: u32, height: u32, v: &Variant) -> (u32, u32) {
    let (mut mw, mut mh) = (v.max_width, v.max_height);
    if v.format == OutputFormat::Webp {
        mw = Some(mw.unwrap_or(WEBP_MAX_DIMENSION).min(WEBP_MAX_DIMENSION));
        mh = Some(mh.unwrap_or(WEBP_MAX_DIMENSION).min(WEBP_MAX_DIMENSION));
    }
    resize::plan(width, height, mw, mh)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Limits that need the whole-file walk: the JPEG scan count, and the ICC profile's size (a PNG
/// `iCCP` is inflated here with the limit as its bound, before the PNG decoder inflates it
/// without one but `max_alloc_bytes`).
fn check_scans_and_icc(info: &container::ContainerInfo, limits: &Limits) -> Result<(), Error> {
    if info.jpeg_scans > limits.max_scans {
        return Err(Error::limit_exceeded(
            LimitKind::Scans,
            info.jpeg_scans.into(),
            limits.max_scans.into(),
        ));
    }
    let Some(icc) = &info.icc else { return Ok(()) };
    let cap = usize::try_from(limits.max_icc_bytes).unwrap_or(usize::MAX);
    let size = if info.icc_compressed {
        match fdeflate::decompress_to_vec_bounded(icc, cap) {
            Ok(profile) => profile.len() as u64,
            Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) => {
                limits.max_icc_bytes.saturating_add(1)
            }
            // A corrupt stream: the PNG decoder ignores the profile.
            Err(_) => 0,
        }
    } else {
        icc.len() as u64
    };
    if size > limits.max_icc_bytes {
        return Err(Error::limit_exceeded(
            LimitKind::IccBytes,
            size,
            limits.max_icc_bytes,
        ));
    }
    Ok(())
}
