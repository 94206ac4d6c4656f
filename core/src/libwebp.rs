//! The only `unsafe` in imgest: calls into libwebp, the reference WebP codec, for encoding and
//! decoding. Pure-Rust lossy encoders measured 5–60 % larger at equal quality, and libwebp's
//! decoder is both faster and smaller in the WebAssembly module than a second, pure-Rust one.
//! Calling `libwebp-sys` directly keeps one libwebp version in native and WASM builds, so every
//! runtime gives identical pixels and bytes.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;

use libwebp_sys as sys;

use crate::budget::Budget;
#[cfg(feature = "rayon")]
use crate::color::SrgbTransform;
use crate::encode::WEBP_MAX_DIMENSION;
use crate::error::{Error, LimitKind};
use crate::options::Limits;
use crate::validate::Checked;

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

/// Pixels to encode: borrowed, or owned (or shared with other threads) and then freed (or
/// released) as soon as libwebp has imported them (its YUV copy is half their size), which
/// lowers the peak memory of a full-size encode.
pub(crate) enum Pixels<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    #[cfg(feature = "rayon")]
    Shared(std::sync::Arc<crate::frame::Frame>),
    /// Shared pixels still to be turned upright and/or converted to sRGB ([`Stage`]): turned
    /// and converted on the way in, in strips of rows, by a lossy WebP encode of RGB (or opaque
    /// RGBA); into a turned and converted copy first by any other encode.
    #[cfg(feature = "rayon")]
    Staged(std::sync::Arc<crate::frame::Frame>, Stage<'a>),
}

/// What is still to be done to [`Pixels::Staged`] pixels before they are encoded.
#[cfg(feature = "rayon")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage<'a> {
    /// Their EXIF orientation (1: upright already).
    pub(crate) orientation: u8,
    /// Their conversion to sRGB, if they are in another profile.
    pub(crate) to_srgb: Option<&'a SrgbTransform>,
}

impl Pixels<'_> {
    /// The pixels as they are: for [`Pixels::Staged`], before they are turned and converted.
    fn raw(&self) -> &[u8] {
        match self {
            Pixels::Borrowed(p) => p,
            Pixels::Owned(p) => p,
            #[cfg(feature = "rayon")]
            Pixels::Shared(f) | Pixels::Staged(f, _) => f.as_raw(),
        }
    }

    /// The pixels to encode, turned and converted first (into a copy) if they are still to be.
    pub(crate) fn into_ready(self) -> Self {
        match self {
            #[cfg(feature = "rayon")]
            Pixels::Staged(f, stage) => {
                let mut copy = crate::orient::apply_copy(&f, stage.orientation).into_raw();
                drop(f);
                if let Some(t) = stage.to_srgb {
                    t.apply_raw(&mut copy);
                }
                Pixels::Owned(copy)
            }
            other => other,
        }
    }

    /// The pixels to encode. For [`Pixels::Staged`], call [`Pixels::into_ready`] first.
    #[cfg(any(
        feature = "jpeg-output",
        feature = "png-output",
        feature = "avif-output"
    ))]
    pub(crate) fn as_slice(&self) -> &[u8] {
        #[cfg(feature = "rayon")]
        debug_assert!(!matches!(self, Pixels::Staged(..)));
        self.raw()
    }
}

/// Whether a WebP encode turns and converts [`Pixels::Staged`] on the way in (lossy, without
/// alpha to keep) rather than into a copy first.
#[cfg(feature = "rayon")]
pub(crate) fn stages_on_import(lossless: bool, channels: usize, has_alpha: bool) -> bool {
    !lossless && (channels == 3 || !has_alpha)
}

/// Rows turned, converted and imported at a time by a [`Pixels::Staged`] encode: even, so that
/// libwebp's 2 × 2 chroma averaging sees the same row pairs as in one import of the whole
/// picture (which gives the same planes, hence the same bytes).
#[cfg(feature = "rayon")]
const STRIP_ROWS: usize = 16;

/// libwebp's progress hook, called at each whole percent of its progress (in the main loop of a
/// lossy encode, about every 5 % of the macroblock rows; not while it writes the bitstream):
/// returning 0 aborts the encode (`VP8_ENC_ERROR_USER_ABORT`) once the run's budget is spent.
///
/// # Safety
/// `picture.user_data` points at a live [`Budget`].
unsafe extern "C" fn progress(_percent: c_int, picture: *const sys::WebPPicture) -> c_int {
    // SAFETY: the caller's contract (set in `encode`, which outlives the `WebPEncode` call).
    let budget = unsafe { &*(*picture).user_data.cast::<Budget<'_>>() };
    c_int::from(!budget.stopped())
}

/// Encodes `pixels`: RGB (`channels` 3) or straight-alpha RGBA (4; the alpha is dropped unless
/// `has_alpha`). `budget` is checked at every progress report of the encoder (the caller checks
/// it before); a stopped encode is an `Err` the caller replaces by the budget's error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    pixels: Pixels<'_>,
    width: u32,
    height: u32,
    channels: usize,
    quality: u8,
    lossless: bool,
    has_alpha: bool,
    budget: &Budget<'_>,
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 || width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION {
        return Err(format!(
            "{width}x{height} is outside WebP's 1..={WEBP_MAX_DIMENSION} px per side"
        ));
    }
    // Turned and converted on the way in (below) where the import goes to YUV without alpha;
    // into a copy otherwise.
    #[cfg(feature = "rayon")]
    let pixels = match pixels {
        Pixels::Staged(..) if !stages_on_import(lossless, channels, has_alpha) => {
            pixels.into_ready()
        }
        other => other,
    };
    let bytes = pixels.raw();
    if channels != 3 && channels != 4 {
        return Err(format!("{channels} channels per pixel"));
    }
    let stride = width as usize * channels;
    if bytes.len() != stride * height as usize {
        return Err("pixel buffer size does not match the dimensions".into());
    }
    let stride = c_int::try_from(stride).map_err(|_| "row too long".to_string())?;
    let abi = sys::WEBP_ENCODER_ABI_VERSION as c_int;
    // SAFETY: every pointer handed to libwebp points into live, correctly sized Rust
    // memory: `config`/`guard` live on this stack frame, `bytes` holds exactly
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
        let imported = match (&pixels, channels, has_alpha) {
            #[cfg(feature = "rayon")]
            (Pixels::Staged(frame, stage), _, _) => {
                import_staged(&mut guard.picture, frame, *stage, budget)?
            }
            (_, 3, _) => sys::WebPPictureImportRGB(&mut guard.picture, bytes.as_ptr(), stride),
            (_, _, true) => sys::WebPPictureImportRGBA(&mut guard.picture, bytes.as_ptr(), stride),
            (_, _, false) => sys::WebPPictureImportRGBX(&mut guard.picture, bytes.as_ptr(), stride),
        };
        drop(pixels);
        if imported == 0 {
            return Err("out of memory importing pixels".into());
        }
        if budget.is_bounded() {
            guard.picture.progress_hook = Some(progress);
            guard.picture.user_data = (budget as *const Budget<'_>).cast_mut().cast::<c_void>();
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

/// Imports `frame` (RGB, or RGBX: 4 channels with the alpha left out) into `picture`'s YUV
/// planes, turned upright and converted to sRGB as `stage` says on the way: [`STRIP_ROWS`] rows
/// of the upright image at a time are gathered, converted and imported into a picture of their
/// own, whose planes are copied into `picture`'s. The turned or converted image never exists
/// whole, and the conversion and the import read rows just written, still in cache. Returns
/// libwebp's import status (0: out of memory); `Err` if `budget` stopped between strips.
///
/// # Safety
/// `picture` is initialised, with `use_argb` 0 and the dimensions of `frame` turned upright.
#[cfg(feature = "rayon")]
unsafe fn import_staged(
    picture: &mut sys::WebPPicture,
    frame: &crate::frame::Frame,
    stage: Stage<'_>,
    budget: &Budget<'_>,
) -> Result<c_int, String> {
    let (width, height) = (picture.width as usize, picture.height as usize);
    let channels = frame.channels();
    let stride = width * channels;
    let c_stride = stride as c_int;
    // SAFETY (the block): `picture` and `part` are initialised pictures; every import reads
    // `h` rows of `stride` bytes of `strip`, which holds them; the plane copies stay within the
    // planes libwebp allocated for `part` (`h` rows of `width`, `(h + 1) / 2` of
    // `(width + 1) / 2`) and for `picture` (the rows from `top` on, inside its height).
    unsafe {
        if sys::WebPPictureAlloc(picture) == 0 {
            return Ok(0);
        }
        let mut part = MaybeUninit::<sys::WebPPicture>::uninit();
        if sys::WebPPictureInitInternal(part.as_mut_ptr(), sys::WEBP_ENCODER_ABI_VERSION as c_int)
            == 0
        {
            return Err("libwebp version mismatch".into());
        }
        let mut part = PictureGuard(part.assume_init());
        let mut strip = vec![0u8; STRIP_ROWS * stride];
        let uv_width = width.div_ceil(2);
        for top in (0..height).step_by(STRIP_ROWS) {
            if budget.stopped() {
                return Err("stopped by the time budget".into());
            }
            let h = STRIP_ROWS.min(height - top);
            let strip = &mut strip[..h * stride];
            crate::orient::upright_rows(frame, stage.orientation, top, strip);
            if let Some(t) = stage.to_srgb {
                t.apply_raw(strip);
            }
            let p = &mut part.0;
            p.use_argb = 0;
            p.width = width as c_int;
            p.height = h as c_int;
            let ok = if channels == 3 {
                sys::WebPPictureImportRGB(p, strip.as_ptr(), c_stride)
            } else {
                sys::WebPPictureImportRGBX(p, strip.as_ptr(), c_stride)
            };
            if ok == 0 {
                return Ok(0);
            }
            let planes = [
                (p.y, p.y_stride, picture.y, picture.y_stride, width, h, top),
                (
                    p.u,
                    p.uv_stride,
                    picture.u,
                    picture.uv_stride,
                    uv_width,
                    h.div_ceil(2),
                    top / 2,
                ),
                (
                    p.v,
                    p.uv_stride,
                    picture.v,
                    picture.uv_stride,
                    uv_width,
                    h.div_ceil(2),
                    top / 2,
                ),
            ];
            for (src, src_stride, dst, dst_stride, w, rows, at) in planes {
                for r in 0..rows {
                    core::ptr::copy_nonoverlapping(
                        src.add(r * src_stride as usize),
                        dst.add((at + r) * dst_stride as usize),
                        w,
                    );
                }
            }
        }
        Ok(1)
    }
}

/// Frees a picture on every path.
#[cfg(feature = "rayon")]
struct PictureGuard(sys::WebPPicture);

#[cfg(feature = "rayon")]
impl Drop for PictureGuard {
    fn drop(&mut self) {
        // SAFETY: initialised by `WebPPictureInitInternal` before the guard was built.
        unsafe { sys::WebPPictureFree(&mut self.0) }
    }
}

/// A WebP still image, or the first frame of an animation on its canvas, as 8-bit RGBA
/// (opaque images too: the WebAssembly build's libwebp keeps only the RGBA-family output modes,
/// see `WEBP_REDUCE_CSP` in `.cargo/config.toml`, and the colour stage works on RGBA anyway).
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

fn status_error(status: sys::VP8StatusCode) -> Error {
    use sys::VP8StatusCode as S;
    match status {
        S::VP8_STATUS_NOT_ENOUGH_DATA => Error::corrupt("webp", "truncated: not enough data"),
        S::VP8_STATUS_UNSUPPORTED_FEATURE => {
            Error::unsupported("WebP: a bitstream feature libwebp does not support")
        }
        S::VP8_STATUS_OUT_OF_MEMORY => Error::internal("libwebp could not allocate memory"),
        other => Error::corrupt("webp", format!("invalid bitstream ({other:?})")),
    }
}

/// A zeroed RGBA buffer for an image whose size [`Checked::admit`] admitted (its RGBA8 size
/// was held to the allocation budget by [`crate::validate::check`]), in `reuse`'s block if
/// that is large enough ([`crate::decode::block`]).
fn rgba_buffer(
    width: u32,
    height: u32,
    limits: &Limits,
    reuse: &mut Vec<u8>,
) -> Result<Vec<u8>, Error> {
    let len = u64::from(width) * u64::from(height) * 4;
    let len = usize::try_from(len)
        .map_err(|_| Error::limit_exceeded(LimitKind::Alloc, len, limits.max_alloc_bytes))?;
    Ok(crate::decode::block(reuse, len))
}

/// Decodes a WebP file, still or animated (first frame only), within `limits`; `budget` is
/// checked between slices of the input (see [`decode_into`]). The pixels go to `reuse`'s block
/// if it is large enough.
pub(crate) fn decode(
    bytes: &[u8],
    checked: &Checked,
    limits: &Limits,
    budget: &Budget<'_>,
    reuse: &mut Vec<u8>,
) -> Result<Frame, Error> {
    let mut features = MaybeUninit::<sys::WebPBitstreamFeatures>::zeroed();
    // SAFETY: `bytes` is a live slice of the given length; `features` is writable memory of
    // the struct's size, which libwebp fills (zeroed first, so every field is initialised).
    let (status, features) = unsafe {
        let status = sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr());
        (status, features.assume_init())
    };
    if status != sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(status_error(status));
    }
    let (width, height) = match (
        u32::try_from(features.width),
        u32::try_from(features.height),
    ) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(Error::corrupt("webp", "zero width or height")),
    };
    checked.admit(width, height)?;
    let mut data = rgba_buffer(width, height, limits, reuse)?;
    if features.has_animation != 0 {
        first_frame(bytes, &mut data, width, height, budget)?;
    } else {
        decode_into(
            bytes,
            &mut data,
            width as usize * 4,
            (width, height),
            budget,
        )?;
    }
    Ok(Frame {
        width,
        height,
        data,
    })
}

/// Deletes an incremental decoder on every path.
struct IncrementalDecoder(*mut sys::WebPIDecoder);

impl Drop for IncrementalDecoder {
    fn drop(&mut self) {
        // SAFETY: a non-null decoder from `WebPIDecode`, deleted once.
        unsafe { sys::WebPIDelete(self.0) }
    }
}

/// Input handed to libwebp's incremental decoder between two budget checks: a few milliseconds
/// of decoding.
const SLICE: usize = 64 * 1024;

/// Decodes one still bitstream (a file, or an animation frame's `ALPH` + `VP8 `/`VP8L` chunks)
/// into `out` as RGBA, rows `stride` bytes apart. The bitstream must be `size` pixels. libwebp's
/// incremental decoder does it: with a bounded `budget` it takes the input in slices (decoding
/// as far as each allows) and the budget is checked between them; without, all at once. The
/// same pixels either way, and one path for every input.
fn decode_into(
    bytes: &[u8],
    out: &mut [u8],
    stride: usize,
    size: (u32, u32),
    budget: &Budget<'_>,
) -> Result<(), Error> {
    let mut config =
        sys::WebPDecoderConfig::new().map_err(|()| Error::internal("libwebp version mismatch"))?;
    let status = {
        let mut features = config.input;
        // SAFETY: as in `decode`.
        let status = unsafe { sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut features) };
        config.input = features;
        status
    };
    if status != sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(status_error(status));
    }
    if (
        i64::from(config.input.width),
        i64::from(config.input.height),
    ) != (i64::from(size.0), i64::from(size.1))
    {
        return Err(Error::corrupt(
            "webp",
            "bitstream size differs from the canvas",
        ));
    }
    config.output.colorspace = sys::WEBP_CSP_MODE::MODE_RGBA;
    config.output.is_external_memory = 1;
    config.output.u.RGBA = sys::WebPRGBABuffer {
        rgba: out.as_mut_ptr(),
        stride: c_int::try_from(stride).map_err(|_| Error::internal("row too long"))?,
        size: out.len(),
    };
    budget.check()?;
    // SAFETY: `out` provides the output buffer, as external memory, for as long as the decoder
    // lives (it is deleted before this function returns): libwebp checks that `size` bytes at
    // `stride` hold the image before writing, and writes nowhere else. No input is given yet.
    let idec = unsafe { sys::WebPIDecode(core::ptr::null(), 0, &mut config) };
    if idec.is_null() {
        return Err(Error::internal("libwebp could not start a decoder"));
    }
    let idec = IncrementalDecoder(idec);
    // Without a budget to check, the whole input at once.
    let slice = if budget.is_bounded() {
        SLICE
    } else {
        bytes.len()
    };
    let mut end = 0usize;
    loop {
        end = end.saturating_add(slice).min(bytes.len());
        // SAFETY: `bytes[..end]` is live; each call gives a longer prefix of the same buffer, as
        // `WebPIUpdate` requires.
        let status = unsafe { sys::WebPIUpdate(idec.0, bytes.as_ptr(), end) };
        match status {
            sys::VP8StatusCode::VP8_STATUS_OK => break,
            sys::VP8StatusCode::VP8_STATUS_SUSPENDED if end < bytes.len() => budget.check()?,
            sys::VP8StatusCode::VP8_STATUS_SUSPENDED => {
                return Err(status_error(sys::VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA));
            }
            other => return Err(status_error(other)),
        }
    }
    drop(idec);
    // SAFETY: frees only what libwebp allocated itself (nothing, for external memory).
    unsafe { sys::WebPFreeDecBuffer(&mut config.output) };
    Ok(())
}

/// Deletes the demuxer on every path.
struct Demuxer(*mut sys::WebPDemuxer);

impl Drop for Demuxer {
    fn drop(&mut self) {
        // SAFETY: a non-null demuxer from `WebPDemuxInternal`, deleted once.
        unsafe { sys::WebPDemuxDelete(self.0) }
    }
}

/// The first frame of an animation, placed on `canvas` (`width × height` RGBA, transparent):
/// what a browser shows before the animation advances (the canvas background colour is only a
/// hint, which browsers ignore).
fn first_frame(
    bytes: &[u8],
    canvas: &mut [u8],
    width: u32,
    height: u32,
    budget: &Budget<'_>,
) -> Result<(), Error> {
    let data = sys::WebPData {
        bytes: bytes.as_ptr(),
        size: bytes.len(),
    };
    let mut state = sys::WebPDemuxState::WEBP_DEMUX_PARSING_HEADER;
    // SAFETY: `data` points at `bytes`, which outlives the demuxer (dropped at the end of this
    // function); a null result is handled before use.
    let demuxer = unsafe {
        sys::WebPDemuxInternal(&data, 0, &mut state, sys::WEBP_DEMUX_ABI_VERSION as c_int)
    };
    if demuxer.is_null() {
        return Err(match state {
            sys::WebPDemuxState::WEBP_DEMUX_PARSE_ERROR => {
                Error::corrupt("webp", "invalid animation container")
            }
            _ => Error::corrupt("webp", "truncated: incomplete animation container"),
        });
    }
    let demuxer = Demuxer(demuxer);
    let mut iter = MaybeUninit::<sys::WebPIterator>::zeroed();
    // SAFETY: a live demuxer and writable iterator memory (zeroed, so initialised either way).
    let (found, mut iter) = unsafe {
        let found = sys::WebPDemuxGetFrame(demuxer.0, 1, iter.as_mut_ptr());
        (found, iter.assume_init())
    };
    if found == 0 {
        return Err(Error::corrupt("webp", "animation without frames"));
    }
    let frame = (|| {
        let fw = u32::try_from(iter.width).ok()?;
        let fh = u32::try_from(iter.height).ok()?;
        let x = u32::try_from(iter.x_offset).ok()?;
        let y = u32::try_from(iter.y_offset).ok()?;
        (fw > 0 && fh > 0 && x.checked_add(fw)? <= width && y.checked_add(fh)? <= height)
            .then_some((fw, fh, x as usize, y as usize))
    })();
    let fragment = if iter.fragment.bytes.is_null() {
        &[][..]
    } else {
        // SAFETY: the demuxer's fragment points into `bytes` (alive) with the given size.
        unsafe { core::slice::from_raw_parts(iter.fragment.bytes, iter.fragment.size) }
    };
    let result = match frame {
        None => Err(Error::corrupt("webp", "first frame outside the canvas")),
        Some((fw, fh, x, y)) => {
            let stride = width as usize * 4;
            let start = y * stride + x * 4;
            let len = (fh as usize - 1) * stride + fw as usize * 4;
            match canvas.get_mut(start..start + len) {
                Some(out) => decode_into(fragment, out, stride, (fw, fh), budget),
                None => Err(Error::internal("frame rectangle outside the canvas buffer")),
            }
        }
    };
    // SAFETY: the iterator came from `WebPDemuxGetFrame`; released once, before the demuxer.
    unsafe { sys::WebPDemuxReleaseIterator(&mut iter) };
    drop(demuxer);
    result
}
