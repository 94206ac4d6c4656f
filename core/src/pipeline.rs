//! The whole pipeline: validate → decode → resize → sRGB → orient → encode → colours.

#[cfg(feature = "rayon")]
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};

use image::RgbaImage;
use sha2::{Digest, Sha256};

use crate::budget::{Budget, CancelToken};
use crate::color::{self, SrgbTransform};
use crate::decode;
use crate::dominant;
use crate::encode::{self, WEBP_MAX_DIMENSION};
use crate::error::Error;
use crate::frame::Frame;
#[cfg(feature = "rayon")]
use crate::libwebp::Stage;
use crate::options::{Options, OutputFormat, Variant};
use crate::orient;
use crate::output::{Color, MetadataFound, Output, PaletteColor, SourceReport, VariantOutput};
use crate::par;
use crate::placeholder;
use crate::resize::{self, Resizer};
use crate::validate;
use crate::validate::Format;

/// A reusable pipeline: options are validated once, and resampling scratch buffers are kept
/// between runs, as is the largest block a run's decoded frame filled (up to 32 MiB; not when a
/// variant took the frame as its image), which the next runs' decodes write into.
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
    spare: Spare,
}

/// Runs the pipeline once with `options`. For many images, build a [`Pipeline`] and reuse it.
pub fn process(input: &[u8], options: &Options) -> Result<Output, Error> {
    Pipeline::new(options.clone())?.run(input)
}

/// [`Pipeline`]s for one set of options, shared by every thread that runs them: a run takes an
/// idle pipeline (or builds one) and puts it back, so the scratch buffers one run leaves serve
/// the next, on whichever thread it comes. What the bindings and the service keep across calls.
///
/// ```
/// let pool = imgest::PipelinePool::new(imgest::Options::default())?;
/// let err = pool.run(b"definitely not an image").unwrap_err();
/// assert_eq!(err.code(), imgest::ErrorCode::NotAnImage);
/// # Ok::<(), imgest::Error>(())
/// ```
#[derive(Debug)]
pub struct PipelinePool {
    options: Options,
    idle: Mutex<Vec<Pipeline>>,
}

impl PipelinePool {
    /// Validates `options` (an `invalid_options` error names the field) and builds the pool.
    pub fn new(options: Options) -> Result<PipelinePool, Error> {
        let first = Pipeline::new(options.clone())?;
        Ok(PipelinePool {
            options,
            idle: Mutex::new(vec![first]),
        })
    }

    /// The options every pipeline of the pool runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// [`Pipeline::run`] on an idle pipeline of the pool (a new one when all are busy).
    pub fn run(&self, input: &[u8]) -> Result<Output, Error> {
        self.with_pipeline(|p| p.run(input))
    }

    /// [`Pipeline::run_cancellable`] on an idle pipeline of the pool.
    pub fn run_cancellable(&self, input: &[u8], token: &CancelToken) -> Result<Output, Error> {
        self.with_pipeline(|p| p.run_cancellable(input, token))
    }

    fn with_pipeline(
        &self,
        run: impl FnOnce(&mut Pipeline) -> Result<Output, Error>,
    ) -> Result<Output, Error> {
        let idle = || self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = idle().pop();
        let mut pipeline = match taken {
            Some(p) => p,
            None => Pipeline::new(self.options.clone())?,
        };
        let result = run(&mut pipeline);
        idle().push(pipeline);
        result
    }
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
            spare: Spare::default(),
        })
    }

    /// The options this pipeline runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Validates, decodes, converts to sRGB and orients `input`, without resizing or encoding.
    /// [`Options::timeout_ms`] bounds it.
    pub fn prepare(&self, input: &[u8]) -> Result<Prepared, Error> {
        let budget = Budget::start(self.options.timeout_ms, None);
        par::in_pool(&budget, || {
            let Decoded {
                mut frame,
                to_srgb,
                orientation,
                source,
            } = self.decode(input, budget, &mut Vec::new())?;
            if let Some(t) = &to_srgb {
                t.apply_within(&mut frame, &budget)?;
            }
            let image = orient::apply(frame, orientation).into_rgba();
            budget.check()?;
            Ok(Prepared { image, source })
        })
    }

    /// The scale at which a run decodes the checked input: a JPEG at `1/`[`shrink_factor`] of
    /// its size when [`Options::shrink_on_load`] is on (for its upright size and this pipeline's
    /// variants), anything else at full size (1).
    pub fn decode_scale(&self, checked: &validate::Checked) -> u32 {
        let info = &checked.container;
        if checked.format != Format::Jpeg || !self.options.shrink_on_load {
            return 1;
        }
        let orientation = info.upright_orientation();
        let (w, h) = orient::oriented_size(info.width, info.height, orientation);
        shrink_factor(w, h, &self.options.variants)
    }

    /// Validates and decodes `input`, leaving the conversion to sRGB and the orientation to the
    /// pixels that are kept.
    /// The decoded pixels go to `reuse`'s block (taken) if it is large enough and no variant
    /// will take the decoded frame as its image: such a block would leave with the variant,
    /// and the next run would fault a fresh one in.
    fn decode(
        &self,
        input: &[u8],
        budget: Budget<'_>,
        reuse: &mut Vec<u8>,
    ) -> Result<Decoded, Error> {
        let limits = &self.options.limits;
        budget.check()?;
        let mut checked = validate::check(input, limits)?;
        // The decoders read the profile from nowhere but here: it moves on with the pixels.
        let icc = checked.icc.take();
        let format = checked.format;
        let info = &checked.container;
        budget.check()?;
        let orientation = info.upright_orientation();
        let shrink = self.decode_scale(&checked);
        let (w, h) = orient::oriented_size(info.width, info.height, orientation);
        let frame_taken =
            shrink == 1 && (self.options.variants.iter()).any(|v| target_size(w, h, v) == (w, h));
        let mut own = Vec::new();
        let reuse = if frame_taken { &mut own } else { reuse };
        let pixels = decode::decode_within(input, &checked, limits, shrink, budget, reuse)?;
        let (stored_width, stored_height) = if shrink > 1 {
            (info.width, info.height)
        } else {
            pixels.dimensions()
        };
        let has_icc = icc.is_some() || info.has_icc;
        let cicp = info.avif.as_ref().and_then(|a| a.nclx);
        let decoded = decode::Decoded { pixels, icc, cicp };
        let normalized = color::normalize_within(decoded, &budget)?;
        let (width, height) = orient::oriented_size(stored_width, stored_height, orientation);
        let source = SourceReport {
            format,
            bytes: input.len() as u64,
            stored_width,
            stored_height,
            orientation,
            width,
            height,
            frames: info.frames.max(1),
            has_alpha: normalized.has_alpha,
            metadata: MetadataFound {
                exif: info.has_exif,
                gps: info.has_gps,
                makernote: info.has_makernote,
                xmp: info.has_xmp,
                iptc: info.has_iptc,
                photoshop: info.has_photoshop,
                mpf: info.has_mpf,
                icc: has_icc,
                comment: info.has_comment,
            },
            icc_description: normalized.icc_description,
            color_converted: normalized.converted,
            trailing_bytes: info.trailing_bytes,
        };
        Ok(Decoded {
            frame: normalized.frame,
            to_srgb: normalized.to_srgb,
            orientation,
            source,
        })
    }

    /// Runs the whole pipeline on `input`. [`Options::timeout_ms`] bounds it: past the budget,
    /// the run stops at its next check with [`Error::Timeout`].
    pub fn run(&mut self, input: &[u8]) -> Result<Output, Error> {
        let budget = Budget::start(self.options.timeout_ms, None);
        self.run_within(input, budget)
    }

    /// [`Pipeline::run`], stopped with [`Error::Cancelled`] within milliseconds of
    /// [`CancelToken::cancel`] being called (from any thread). The pipeline stays usable.
    ///
    /// ```
    /// let token = imgest::CancelToken::new();
    /// let stopper = token.clone();
    /// std::thread::spawn(move || stopper.cancel()); // a caller that gives up
    /// let mut pipeline = imgest::Pipeline::new(imgest::Options::default())?;
    /// let err = pipeline.run_cancellable(b"not an image", &token).unwrap_err();
    /// assert!(matches!(
    ///     err.code(),
    ///     imgest::ErrorCode::Cancelled | imgest::ErrorCode::NotAnImage
    /// ));
    /// # Ok::<(), imgest::Error>(())
    /// ```
    pub fn run_cancellable(&mut self, input: &[u8], token: &CancelToken) -> Result<Output, Error> {
        let budget = Budget::start(self.options.timeout_ms, Some(token));
        self.run_within(input, budget)
    }

    /// The run, on rayon's pool (see [`par::in_pool`]: the wait for a worker counts against the
    /// budget).
    fn run_within(&mut self, input: &[u8], budget: Budget<'_>) -> Result<Output, Error> {
        par::in_pool(&budget, || self.run_here(input, budget))
    }

    fn run_here(&mut self, input: &[u8], budget: Budget<'_>) -> Result<Output, Error> {
        let mut spare = std::mem::take(&mut self.spare.0);
        let decoded = self.decode(input, budget, &mut spare);
        // Left as it was unless a decoder took it.
        self.spare.0 = spare;
        self.produce(decoded?, budget)
    }

    /// Resizes, encodes and analyses, and on failure (a spent budget, say, between two
    /// resizes) frees the large resampling scratch a successful run would have freed.
    fn produce(&mut self, decoded: Decoded, budget: Budget<'_>) -> Result<Output, Error> {
        let result = self.produce_inner(decoded, budget);
        if result.is_err() {
            self.resizer.shrink_scratch(SCRATCH_KEPT);
        }
        result
    }

    /// Resizes, encodes and analyses prepared pixels, within [`Options::timeout_ms`].
    pub fn finish(&mut self, prepared: Prepared) -> Result<Output, Error> {
        let budget = Budget::start(self.options.timeout_ms, None);
        let Prepared { image, source } = prepared;
        let decoded = Decoded {
            frame: Frame::Rgba(image),
            to_srgb: None,
            orientation: 1,
            source,
        };
        par::in_pool(&budget, || self.produce(decoded, budget))
    }

    /// Resizes the decoded pixels first, then converts and orients only what is kept (as
    /// libvips' thumbnailing does): a variant smaller than the source never pays for turning or
    /// colour-converting every decoded pixel. Variants are encoded in parallel, and a full-size
    /// variant starts encoding (from a turned and converted copy if it needs one) before the
    /// others are resized.
    fn produce_inner(&mut self, decoded: Decoded, budget: Budget<'_>) -> Result<Output, Error> {
        let Decoded {
            mut frame,
            mut to_srgb,
            orientation,
            source,
        } = decoded;
        let has_alpha = source.has_alpha;
        let linear = self.options.linear_light;
        if linear && let Some(t) = to_srgb.take() {
            // Linear light is sRGB's: convert every pixel first, so the resampling is exact for
            // any source profile.
            t.apply_within(&mut frame, &budget)?;
        }

        let (dominant_color, palette) = if self.options.dominant_color {
            let k = usize::from(self.options.palette_size.max(1));
            let swatches = dominant::palette(&frame, to_srgb.as_ref(), k);
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
        budget.check()?;
        let placeholder = if self.options.placeholder {
            Some(placeholder::thumbhash_within(
                &frame,
                to_srgb.as_ref(),
                orientation,
                &mut self.resizer,
                has_alpha,
                &budget,
            )?)
        } else {
            None
        };
        budget.check()?;

        let Pipeline {
            options,
            resizer,
            spare,
        } = self;
        // Each variant with its place in the output.
        let mut jobs: Vec<(&Variant, usize)> = Vec::with_capacity(options.variants.len());
        for (order, v) in options.variants.iter().enumerate() {
            jobs.push((v, order));
        }
        let finish = Finish {
            to_srgb: to_srgb.as_ref(),
            orientation,
            has_alpha,
            linear,
            budget,
        };
        #[cfg(feature = "rayon")]
        let frame = Arc::new(frame);
        let upright_size = (source.width, source.height);

        // A full-size variant needs no resizing: its encode, the longest, starts at once on
        // another core while this thread resizes the other variants from the same pixels. An
        // upright sRGB image is encoded from the decoded pixels themselves (freed once both
        // sides are done). So is one turned, flipped or with a profile when each full-size
        // variant is lossy WebP and the image has no alpha: libwebp takes the upright image in
        // strips of rows, each gathered (turned) and converted just before its import (no copy
        // of the frame; the same bytes as turning and converting it whole). Otherwise one turned
        // by 90° is encoded from its turned copy, converted there if it has a profile (turning
        // and converting act on each pixel alone, so their order does not matter), which costs
        // no more memory than turning it later; one flipped or turned by 180° (done in place
        // otherwise), or upright with a profile, would need a copy of the whole frame: it waits
        // for the others.
        #[cfg(feature = "rayon")]
        let as_is = to_srgb.is_none() && orientation == 1;
        #[cfg(feature = "rayon")]
        let (early, jobs, staged) = {
            let full = frame.dimensions();
            let turned = (5..=8).contains(&orientation);
            let full_size = |v: &Variant| {
                let (w, h) = target_size(upright_size.0, upright_size.1, v);
                (if turned { (h, w) } else { (w, h) }) == full
            };
            let staged = !as_is
                && jobs.iter().all(|(v, _)| {
                    !full_size(v)
                        || (v.format == OutputFormat::Webp
                            && crate::libwebp::stages_on_import(
                                v.lossless,
                                frame.channels(),
                                has_alpha,
                            ))
                });
            let is_full = |v: &Variant| (as_is || turned || staged) && full_size(v);
            let n_full = jobs.iter().filter(|(v, _)| is_full(v)).count();
            let (early, jobs) = if n_full > 0 && n_full < jobs.len() {
                jobs.into_iter().partition(|(v, _)| is_full(v))
            } else {
                (Vec::new(), jobs)
            };
            (early, jobs, staged)
        };
        #[cfg(feature = "rayon")]
        let mut done = if early.is_empty() {
            variants(resizer, Some(spare), frame, jobs, upright_size, finish)?
        } else {
            let shared = Arc::clone(&frame);
            let (first, rest) = rayon::join(
                move || {
                    use rayon::prelude::*;
                    let from: EncodeFrom<'_> = if as_is {
                        EncodeFrom::Shared(shared)
                    } else if staged {
                        let stage = Stage {
                            orientation,
                            to_srgb: finish.to_srgb,
                        };
                        EncodeFrom::Staged(shared, stage)
                    } else {
                        let mut copy = orient::apply_copy(&shared, orientation);
                        drop(shared);
                        if let Some(t) = finish.to_srgb {
                            t.apply_within(&mut copy, &budget)?;
                        }
                        EncodeFrom::Owned(copy)
                    };
                    if let [(v, order)] = early[..] {
                        // The pixels go along and are dropped once the encoder has its copy.
                        let out = encode_variant(from, v, has_alpha, &budget)?;
                        return Ok(vec![(order, out)]);
                    }
                    let pixels: &Frame = match &from {
                        EncodeFrom::Staged(f, stage) => {
                            return early
                                .into_par_iter()
                                .map(|(v, order)| {
                                    let from = EncodeFrom::Staged(Arc::clone(f), *stage);
                                    let out = encode_variant(from, v, has_alpha, &budget)?;
                                    Ok::<_, Error>((order, out))
                                })
                                .collect::<Result<Vec<_>, Error>>();
                        }
                        EncodeFrom::Shared(f) => f,
                        EncodeFrom::Owned(f) => f,
                        EncodeFrom::Borrowed(f) => f,
                    };
                    early
                        .into_par_iter()
                        .map(|(v, order)| {
                            let from = EncodeFrom::Borrowed(pixels);
                            Ok::<_, Error>((order, encode_variant(from, v, has_alpha, &budget)?))
                        })
                        .collect::<Result<Vec<_>, Error>>()
                },
                // The frame's block is not kept through the full-size encode (the run's
                // largest): it would add its size to the run's peak memory.
                move || variants(resizer, None, frame, jobs, upright_size, finish),
            );
            // A run stopped by its budget reports the budget, whichever side noticed first.
            let mut first = first.map_err(|e| budget.or(e))?;
            first.append(&mut rest.map_err(|e| budget.or(e))?);
            first
        };
        // On one thread the variants come out in order.
        #[cfg(not(feature = "rayon"))]
        let done = variants(resizer, Some(spare), frame, jobs, upright_size, finish)?;
        #[cfg(feature = "rayon")]
        done.sort_by_key(|(order, _)| *order);
        let variants: Vec<VariantOutput> = done.into_iter().map(|(_, v)| v).collect();

        Ok(Output {
            variants,
            dominant_color,
            palette,
            placeholder,
            source,
        })
    }
}

/// How decoded pixels become a variant's: to sRGB and upright, after resizing.
#[derive(Clone, Copy)]
struct Finish<'a> {
    to_srgb: Option<&'a SrgbTransform>,
    orientation: u8,
    has_alpha: bool,
    linear: bool,
    budget: Budget<'a>,
}

/// Where a variant's encoder takes its pixels from.
enum EncodeFrom<'a> {
    /// Pixels only this variant uses: freed as soon as the encoder has its copy.
    Owned(Frame),
    /// Pixels several variants use.
    Borrowed(&'a Frame),
    /// Pixels another thread may still be reading: this variant's reference is dropped as soon
    /// as the encoder has its copy.
    #[cfg(feature = "rayon")]
    Shared(Arc<Frame>),
    /// [`EncodeFrom::Shared`] pixels still to be turned upright and/or converted to sRGB.
    #[cfg(feature = "rayon")]
    Staged(Arc<Frame>, Stage<'a>),
}

fn encode_variant(
    from: EncodeFrom<'_>,
    v: &Variant,
    has_alpha: bool,
    budget: &Budget<'_>,
) -> Result<VariantOutput, Error> {
    let (size, channels, pixels) = match from {
        EncodeFrom::Owned(f) => {
            let (size, channels) = (f.dimensions(), f.channels());
            (size, channels, encode::Pixels::Owned(f.into_raw()))
        }
        EncodeFrom::Borrowed(f) => (
            f.dimensions(),
            f.channels(),
            encode::Pixels::Borrowed(f.as_raw()),
        ),
        #[cfg(feature = "rayon")]
        EncodeFrom::Shared(f) => (f.dimensions(), f.channels(), encode::Pixels::Shared(f)),
        #[cfg(feature = "rayon")]
        EncodeFrom::Staged(f, stage) => {
            let (w, h) = f.dimensions();
            let size = orient::oriented_size(w, h, stage.orientation);
            (size, f.channels(), encode::Pixels::Staged(f, stage))
        }
    };
    let bytes = encode::encode_within(pixels, size, channels, v, has_alpha, budget)?;
    let (width, height) = size;
    let sha256 = hex(&Sha256::digest(&bytes));
    Ok(VariantOutput {
        name: v.name.clone(),
        width,
        height,
        format: v.format,
        size: bytes.len(),
        sha256,
        bytes,
    })
}

/// Resizes `frame` for each of `jobs` (sized from the upright `width` × `height`), converts and
/// orients what is kept, and encodes each, in parallel when there are several. The decoded
/// frame itself becomes the full-size variant's pixels when one is wanted (no copy), and is
/// dropped otherwise before encoding starts.
fn variants(
    resizer: &mut Resizer,
    spare: Option<&mut Spare>,
    frame: DecodedPixels,
    jobs: Vec<(&Variant, usize)>,
    (width, height): (u32, u32),
    finish: Finish<'_>,
) -> Result<Vec<(usize, VariantOutput)>, Error> {
    let Finish {
        to_srgb,
        orientation,
        has_alpha,
        linear,
        budget,
    } = finish;
    let turned = (5..=8).contains(&orientation);
    let unturned = |(w, h): (u32, u32)| if turned { (h, w) } else { (w, h) };

    // Distinct output sizes (upright), each resized from the decoded frame; `None` marks the
    // decoded frame's own size, which takes the frame itself (no copy) further down.
    let mut sizes: Vec<(u32, u32)> = Vec::new();
    let mut images: Vec<Option<Frame>> = Vec::new();
    let mut slots: Vec<usize> = Vec::with_capacity(jobs.len());
    for &(v, _) in &jobs {
        let size = target_size(width, height, v);
        let idx = match sizes.iter().position(|s| *s == size) {
            Some(i) => i,
            None => {
                let (w, h) = unturned(size);
                let img = if (w, h) == frame.dimensions() {
                    None
                } else {
                    Some(resizer.resize_within(&frame, w, h, has_alpha, linear, &budget)?)
                };
                sizes.push(size);
                images.push(img);
                images.len() - 1
            }
        };
        slots.push(idx);
    }

    // A large photo leaves tens of MB of resampling scratch; keep only small scratch.
    resizer.shrink_scratch(SCRATCH_KEPT);

    // The decoded frame itself becomes the full-size image, if a variant wants one (copied only
    // if another thread still reads it). Otherwise, before encoding starts, its block is kept
    // for the next run's decode (if `spare` is given and no other thread still reads it) or
    // freed.
    let mut frame = Some(frame);
    for slot in &mut images {
        if slot.is_none() {
            *slot = frame.take().map(into_frame);
        }
    }
    if let (Some(frame), Some(spare)) = (frame, spare) {
        #[cfg(feature = "rayon")]
        let frame = Arc::try_unwrap(frame).ok();
        #[cfg(not(feature = "rayon"))]
        let frame = Some(frame);
        spare.keep(frame.map(Frame::into_raw));
    }
    budget.check()?;
    let finish = |img: &mut Option<Frame>| {
        if let Some(img) = img {
            if let Some(t) = to_srgb {
                t.apply_within(img, &budget)?;
            }
            if orientation != 1 {
                let owned = std::mem::replace(img, Frame::Rgb(image::RgbImage::new(0, 0)));
                *img = orient::apply(owned, orientation);
            }
        }
        Ok::<(), Error>(())
    };
    // One item runs on this thread: handing it to the pool costs two thread switches.
    #[cfg(feature = "rayon")]
    let parallel = |n: usize| n > 1;
    if to_srgb.is_some() || orientation != 1 {
        #[cfg(feature = "rayon")]
        if parallel(images.len()) {
            use rayon::prelude::*;
            images.par_iter_mut().try_for_each(finish)?;
        } else {
            images.iter_mut().try_for_each(finish)?;
        }
        #[cfg(not(feature = "rayon"))]
        images.iter_mut().try_for_each(finish)?;
    }

    // A frame only one variant uses moves into that variant's encode, which frees it as soon as
    // the encoder has its copy; frames of equal-size variants stay shared. The largest encodes
    // start first, so that the longest one never waits behind small ones.
    let mut uses = vec![0usize; images.len()];
    for &i in &slots {
        uses[i] += 1;
    }
    let mut work: Vec<(usize, &Variant, usize, Option<Frame>)> = Vec::new();
    for ((v, order), i) in jobs.into_iter().zip(slots) {
        let own = if uses[i] == 1 { images[i].take() } else { None };
        work.push((order, v, i, own));
    }
    let shared = images;
    #[cfg(feature = "rayon")]
    work.sort_by_key(|(_, _, i, own)| {
        let (w, h) = own
            .as_ref()
            .or(shared[*i].as_ref())
            .map_or((0, 0), Frame::dimensions);
        std::cmp::Reverse(u64::from(w) * u64::from(h))
    });
    let encode_one = |(order, v, i, own): (usize, &Variant, usize, Option<Frame>)| {
        let from = match own {
            Some(frame) => EncodeFrom::Owned(frame),
            None => EncodeFrom::Borrowed(
                shared[i]
                    .as_ref()
                    .ok_or_else(|| Error::internal("a variant's pixels are missing"))?,
            ),
        };
        Ok::<_, Error>((order, encode_variant(from, v, has_alpha, &budget)?))
    };
    #[cfg(feature = "rayon")]
    if parallel(work.len()) {
        use rayon::prelude::*;
        let done: Result<Vec<_>, Error> = work.into_par_iter().map(encode_one).collect();
        return done.map_err(|e| budget.or(e));
    }
    work.into_iter().map(encode_one).collect()
}

/// The decoded frame as `variants` takes it: shared with the thread of an early full-size encode
/// where there can be one.
#[cfg(feature = "rayon")]
type DecodedPixels = Arc<Frame>;
#[cfg(not(feature = "rayon"))]
type DecodedPixels = Frame;

/// The decoded frame itself, copied only if another thread still reads it.
fn into_frame(pixels: DecodedPixels) -> Frame {
    #[cfg(feature = "rayon")]
    return Arc::try_unwrap(pixels).unwrap_or_else(|shared| (*shared).clone());
    #[cfg(not(feature = "rayon"))]
    pixels
}

/// The largest block [`Spare`] keeps between runs: as large as glibc's default `malloc` would
/// itself keep in its heaps once it has freed such a block (its mmap threshold rises up to
/// 32 MiB on 64-bit systems), a 10-megapixel RGB frame.
const SPARE_KEPT: usize = 32 << 20;

/// The block a run's decoded frame filled, kept for the next runs' decodes to write into:
/// a fresh block of that size (a few to tens of MB, mapped on its own by `malloc`) is faulted
/// in page by page, which took two thirds of the kernel's 6–7 % of a thumbnail's CPU time
/// (`benches/RESULTS.md`). Its contents are never read.
#[derive(Default)]
struct Spare(Vec<u8>);

impl Spare {
    /// Keeps the larger of `block` and the block already kept (the other is freed), up to
    /// [`SPARE_KEPT`] bytes. The larger one, not the last: a process that handles images of
    /// several sizes in turn (or a 16-bit PNG between two JPEGs, whose decoder does not write
    /// into the block) would otherwise fault a fresh block in for each larger image.
    fn keep(&mut self, block: Option<Vec<u8>>) {
        // WebAssembly's linear memory is never given back: a freed block is reused there
        // without faults, and keeping it would only keep it from other uses.
        if cfg!(target_family = "wasm") {
            return;
        }
        if let Some(block) =
            block.filter(|b| b.capacity() <= SPARE_KEPT && b.capacity() > self.0.capacity())
        {
            self.0 = block;
        }
    }
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spare({} bytes)", self.0.capacity())
    }
}

/// Resampling scratch kept between runs (reused, so no allocation per run); larger scratch, left
/// by a large photo, is freed before encoding instead of being held through it. 8 MiB holds the
/// scratch of an 800-px variant from a JPEG decoded at full size (under 3,200 px wide for it, so
/// under 3,200 × 800 RGB): a 6-MP photo's (5.3 MB) was faulted in again every run at 4 MiB, 3 of
/// its 57 ms (`benches/RESULTS.md`). An ingest's 1,600-px and full-size resizes leave more.
const SCRATCH_KEPT: usize = 8 << 20;

/// Decoded pixels in the source's colour space and orientation, with what it takes to finish
/// them, and the report so far.
struct Decoded {
    frame: Frame,
    to_srgb: Option<SrgbTransform>,
    orientation: u8,
    source: SourceReport,
}

/// The JPEG shrink-on-load factor (1, 2, 4 or 8) for an upright `width` × `height` image: the
/// largest whose decoded image still leaves the Lanczos resize that follows enough detail for
/// every variant: twice each variant's size for 1/2 scale, 2.5 times for 1/4 and 1/8. 1 when a
/// variant needs the full size. The margins are measured (`benches/RESULTS.md`, 15 photos, four
/// sizes, SSIM against a full-size reference): libjpeg-turbo's 1/2-scale IDCT at a margin of 2
/// costs 0.0002–0.0012 SSIM through WebP q85 (and saves 15–30 % of the time), its 1/4 and 1/8
/// scales at that margin up to 0.022, so those keep 2.5.
pub fn shrink_factor(width: u32, height: u32, variants: &[Variant]) -> u32 {
    let mut factor = f64::INFINITY;
    for v in variants {
        let (w, h) = target_size(width, height, v);
        factor = factor
            .min(f64::from(width) / f64::from(w.max(1)))
            .min(f64::from(height) / f64::from(h.max(1)));
    }
    [(8, 2.5), (4, 2.5), (2, 2.0)]
        .into_iter()
        .find(|&(s, margin)| f64::from(s) * margin <= factor)
        .map_or(1, |(s, _)| s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_jpeg as jpeg;

    fn digests(out: &Output) -> Vec<(String, (u32, u32))> {
        let v = out.variants.iter();
        v.map(|v| (v.sha256.clone(), (v.width, v.height))).collect()
    }

    /// The decode scale is the JPEG shrink-on-load factor for the pipeline's variants, and 1
    /// for other formats or with shrink-on-load off.
    #[test]
    fn the_decode_scale_follows_the_variants_and_the_format() {
        let limits = crate::Limits::default();
        let with = |px: u32, on: bool| {
            let mut o = Options::default().with_variants(vec![Variant::fit("v", px)]);
            o.shrink_on_load = on;
            Pipeline::new(o).unwrap()
        };
        let big = validate::check(&jpeg(2000, 1000, 3), &limits).unwrap();
        // 10 × smaller: 1/4 (margin 2.5); 4 ×: 1/2 (margin 2); 2.2 ×: full size.
        assert_eq!(with(200, true).decode_scale(&big), 4);
        assert_eq!(with(500, true).decode_scale(&big), 2);
        assert_eq!(with(900, true).decode_scale(&big), 1);
        assert_eq!(with(200, false).decode_scale(&big), 1);
        let mut png = Vec::new();
        image::RgbImage::new(2000, 1000)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let png = validate::check(&png, &limits).unwrap();
        assert_eq!(with(200, true).decode_scale(&png), 1);
    }

    /// A run whose decoded frame is no variant's keeps its block, and the next runs' decodes
    /// write into it; the outputs are a fresh pipeline's, byte for byte.
    #[test]
    fn a_run_decodes_into_the_block_the_last_one_left() {
        let thumbs = Options::default().with_variants(vec![Variant::fit("thumb", 150)]);
        let (big, small) = (jpeg(1200, 900, 7), jpeg(640, 400, 11));
        let mut p = Pipeline::new(thumbs.clone()).unwrap();
        let first = p.run(&big).unwrap();
        // Decoded at 1/2 scale (150 px from 1200: 8×, margin 2 at 1/2 and 2.5 below).
        assert_eq!(p.spare.0.capacity(), 600 * 450 * 3);
        let block = p.spare.0.as_ptr();
        let second = p.run(&small).unwrap();
        assert_eq!(
            p.spare.0.as_ptr(),
            block,
            "the next decode took another block"
        );
        assert_eq!(p.spare.0.capacity(), 600 * 450 * 3);
        for (out, input) in [(&first, &big), (&second, &small)] {
            let fresh = Pipeline::new(thumbs.clone()).unwrap().run(input).unwrap();
            assert_eq!(digests(out), digests(&fresh));
        }
        assert_eq!(digests(&p.run(&big).unwrap()), digests(&first));

        // The larger block is kept, not the last one: a small JPEG, a PNG and a WebP (whose
        // decoders write into the block too), a 16-bit PNG (decoded into a block of `image`'s)
        // and an image that a variant takes whole leave the large one in place.
        let mut p = Pipeline::new(thumbs.clone()).unwrap();
        let encode = |img: image::DynamicImage, format| {
            let mut out = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut out), format)
                .unwrap();
            out
        };
        let gradient = image::RgbImage::from_fn(640, 400, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let png = encode(gradient.clone().into(), image::ImageFormat::Png);
        // libwebp decodes to RGBA: 400 × 300 × 4 bytes fit in the block too.
        let webp = encode(
            image::DynamicImage::from(gradient.clone()).crop_imm(0, 0, 400, 300),
            image::ImageFormat::WebP,
        );
        // 16-bit samples go to `image`'s own buffer, which becomes a block smaller than the
        // kept one.
        let deep = encode(
            image::DynamicImage::from(gradient.clone())
                .crop_imm(0, 0, 320, 200)
                .to_rgb16()
                .into(),
            image::ImageFormat::Png,
        );
        p.run(&small).unwrap();
        // 640 / 150 = 4.3: decoded at 1/2.
        assert_eq!(p.spare.0.capacity(), 320 * 200 * 3);
        p.run(&big).unwrap();
        let block = p.spare.0.as_ptr();
        // Under the 150-px box: the decoded frame is the variant's image, and takes no block.
        let tiny = encode(
            image::DynamicImage::from(gradient.clone()).crop_imm(0, 0, 120, 90),
            image::ImageFormat::Png,
        );
        for input in [&small, &png, &webp, &deep, &tiny, &small, &png] {
            let fresh = Pipeline::new(thumbs.clone()).unwrap().run(input).unwrap();
            assert_eq!(digests(&p.run(input).unwrap()), digests(&fresh));
            assert_eq!(
                (p.spare.0.as_ptr(), p.spare.0.capacity()),
                (block, 600 * 450 * 3),
                "the larger block was not kept, or not written into"
            );
        }
        // A PNG larger than the block: decoded into a fresh one, which is kept.
        let wide = encode(
            image::RgbImage::from_pixel(1000, 400, image::Rgb([9, 99, 199])).into(),
            image::ImageFormat::Png,
        );
        p.run(&wide).unwrap();
        assert_eq!(p.spare.0.capacity(), 1000 * 400 * 3);

        // A full-size variant takes the frame: the block stays empty.
        let both = thumbs.with_variants(vec![Variant::fit("t", 150), Variant::original("o")]);
        let mut p = Pipeline::new(both.clone()).unwrap();
        for input in [&big, &small, &big] {
            let fresh = Pipeline::new(both.clone()).unwrap().run(input).unwrap();
            assert_eq!(digests(&p.run(input).unwrap()), digests(&fresh));
            assert_eq!(p.spare.0.capacity(), 0);
        }
    }

    #[test]
    fn a_block_over_the_cap_is_not_kept() {
        let mut spare = Spare::default();
        spare.keep(Some(Vec::with_capacity(1000)));
        let kept = spare.0.as_ptr();
        spare.keep(Some(Vec::with_capacity(SPARE_KEPT + 1)));
        spare.keep(None);
        assert_eq!((spare.0.as_ptr(), spare.0.capacity()), (kept, 1000));
        assert_eq!(format!("{spare:?}"), "Spare(1000 bytes)");
    }
}
