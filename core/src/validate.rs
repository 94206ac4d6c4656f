//! Stage 1: sniff the format from magic bytes, walk the container once ([`container::read`])
//! and check what it declares against [`Limits`], before any pixel buffer exists.
//!
//! The format always comes from the bytes, never from a file name or a declared MIME type.
//! [`check`] is the one place where the input is held to the limits; the decoders then
//! allocate only what it admitted ([`Checked::admit`]).

use crate::container::{self, ContainerInfo, HeaderError, Kind};
use crate::error::{Error, LimitKind};
use crate::options::Limits;

/// The input formats imgest decodes.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Format {
    /// JPEG (baseline and progressive; also MPO, whose first image is used).
    Jpeg,
    /// PNG, including APNG (first frame).
    Png,
    /// GIF 87a/89a (first frame).
    Gif,
    /// WebP lossy, lossless and animated (first frame).
    Webp,
    /// Windows bitmap.
    Bmp,
    /// TIFF (first page).
    Tiff,
    /// AVIF (the primary image; a sequence's first frame).
    Avif,
}

impl Format {
    /// The MIME type (`"image/jpeg"`).
    pub const fn mime_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Avif => "image/avif",
        }
    }

    /// Lower-case name (`"jpeg"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Avif => "avif",
        }
    }

    pub(crate) const fn kind(self) -> Kind {
        match self {
            Format::Jpeg => Kind::Jpeg,
            Format::Png => Kind::Png,
            Format::Gif => Kind::Gif,
            Format::Webp => Kind::Webp,
            Format::Bmp => Kind::Bmp,
            Format::Tiff => Kind::Tiff,
            Format::Avif => Kind::Avif,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Identifies the format from the first bytes.
///
/// Errors: `not_an_image` for empty input, text (HTML, SVG, XML, JSON, …) and known non-image
/// files (archives, PDF, audio, video); `unsupported_format` for images outside the allow-list
/// (HEIC/HEIF, PSD, JPEG 2000, JPEG XL, ICO, …) and for unrecognised binary data;
/// `corrupt_input` for a damaged PNG signature.
pub fn sniff(bytes: &[u8]) -> Result<Format, Error> {
    if bytes.is_empty() {
        return Err(Error::NotAnImage {
            detail: "the input is empty".into(),
        });
    }
    if let Some(format) = truncated_signature(bytes) {
        return Err(Error::corrupt(format, "the file ends inside its signature"));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(Format::Png);
    }
    if bytes.get(1..4) == Some(b"PNG") {
        return Err(Error::corrupt("png", "damaged PNG signature"));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Ok(Format::Webp);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return if cfg!(feature = "tiff") {
            Ok(Format::Tiff)
        } else {
            Err(Error::unsupported(
                "TIFF support is not enabled in this build",
            ))
        };
    }
    if is_bmp(bytes) {
        return if cfg!(feature = "bmp") {
            Ok(Format::Bmp)
        } else {
            Err(Error::unsupported(
                "BMP support is not enabled in this build",
            ))
        };
    }
    if let Some(brand) = iso_bmff_image_brand(bytes) {
        if brand == "AVIF" {
            return if cfg!(feature = "avif-input") {
                Ok(Format::Avif)
            } else {
                Err(Error::unsupported(
                    "AVIF input is not enabled in this build",
                ))
            };
        }
        return Err(Error::unsupported(format!(
            "{brand} (ISO-BMFF image) is not accepted"
        )));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // A JPEG SOI followed by something other than a marker.
        return Err(Error::corrupt("jpeg", "no marker after the start of image"));
    }
    if let Some(t) = infer::get(bytes) {
        let what = t.extension();
        return Err(match t.matcher_type() {
            infer::MatcherType::Image => Error::unsupported(format!("{what} is not accepted")),
            _ => Error::NotAnImage {
                detail: format!("the input looks like a {what} file"),
            },
        });
    }
    if looks_like_text(bytes) {
        let head = trim_text_start(bytes);
        let detail = if head.first() == Some(&b'<') {
            "the input is markup (HTML, SVG or XML), not a raster image"
        } else {
            "the input is text, not an image"
        };
        return Err(Error::NotAnImage {
            detail: detail.into(),
        });
    }
    Err(Error::unsupported("unrecognised binary data"))
}

/// A strict prefix of a supported format's signature: a file cut short, not another format.
fn truncated_signature(bytes: &[u8]) -> Option<&'static str> {
    let prefix_of = |sig: &[u8]| bytes.len() < sig.len() && sig.starts_with(bytes);
    if prefix_of(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if prefix_of(PNG_SIGNATURE) {
        Some("png")
    } else if prefix_of(b"GIF87a") || prefix_of(b"GIF89a") {
        Some("gif")
    } else if bytes.len() < 12
        && bytes.starts_with(b"RIFF")
        && b"WEBP".starts_with(bytes.get(8..).unwrap_or_default())
    {
        Some("webp")
    } else if prefix_of(b"II*\0") || prefix_of(b"MM\0*") {
        Some("tiff")
    } else {
        None
    }
}

fn is_bmp(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"BM") {
        return false;
    }
    match bytes.get(14..18) {
        Some(h) => matches!(
            u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            12 | 16 | 40 | 52 | 56 | 64 | 108 | 124
        ),
        // Too short to tell: let the header check report truncation.
        None => bytes.len() >= 2,
    }
}

fn iso_bmff_image_brand(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = bytes
        .get(0..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
    let end = size.clamp(8, 256).min(bytes.len());
    let brands = bytes.get(8..end)?;
    let mut found = None;
    for brand in brands.chunks_exact(4) {
        match brand {
            b"avif" | b"avis" => return Some("AVIF"),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                found = Some("HEIF/HEIC")
            }
            _ => {}
        }
    }
    found
}

fn trim_text_start(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = trim_text_start(head);
    if head.is_empty() {
        return true;
    }
    if head.first() == Some(&b'<') {
        return true;
    }
    // Printable ASCII / UTF-8 with no control bytes other than whitespace.
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.valid_up_to() + 4 >= head.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
}

/// What [`check`] learned: the format, everything the container walk found, and the ICC
/// profile.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The sniffed format.
    pub format: Format,
    /// The container walk's facts: stored size, frames, orientation, metadata found, coding
    /// (its `icc` is empty: the profile moved to [`Checked::icc`]).
    pub container: ContainerInfo,
    /// The embedded ICC profile (a PNG `iCCP` inflated, within [`Limits::max_icc_bytes`]);
    /// `None` when there is none or it cannot be read (a corrupt `iCCP` stream, an incomplete
    /// set of JPEG chunks), as decoders ignore such profiles.
    pub icc: Option<Vec<u8>>,
}

impl Checked {
    /// Admits the size a decoder found in the data: no larger in either direction than what
    /// [`check`] held to the limits, so no decoder allocates past them.
    ///
    /// # Errors
    ///
    /// `corrupt_input` for a zero size or one larger than the container declared.
    pub fn admit(&self, width: u32, height: u32) -> Result<(), Error> {
        let format = self.format.as_str();
        if width == 0 || height == 0 {
            return Err(Error::corrupt(format, "zero width or height"));
        }
        let (w, h) = (self.container.width, self.container.height);
        if width > w || height > h {
            return Err(Error::corrupt(
                format,
                format!(
                    "the decoder found {width}x{height} pixels where the header declares {w}x{h}"
                ),
            ));
        }
        Ok(())
    }
}

/// Checks the input size, sniffs the format and walks the container, then checks what it
/// declares against `limits`: coding, dimensions, pixel count, frame count, JPEG scan count
/// and ICC profile size. Touches no pixel data.
pub fn check(bytes: &[u8], limits: &Limits) -> Result<Checked, Error> {
    let len = bytes.len() as u64;
    if len > limits.max_input_bytes {
        return Err(Error::limit_exceeded(
            LimitKind::InputBytes,
            len,
            limits.max_input_bytes,
        ));
    }
    let format = sniff(bytes)?;
    let mut info = container::read(bytes, format.kind(), limits.max_frames).map_err(|e| {
        let detail = match e {
            HeaderError::Truncated(what) => format!("truncated header: {what}"),
            HeaderError::Malformed(what) => format!("malformed header: {what}"),
        };
        Error::corrupt(format.as_str(), detail)
    })?;
    check_coding(format, &info)?;
    check_dimensions(info.width, info.height, limits)?;
    if info.frames > limits.max_frames {
        return Err(Error::limit_exceeded(
            LimitKind::Frames,
            info.frames.into(),
            limits.max_frames.into(),
        ));
    }
    if info.jpeg_scans > limits.max_scans {
        return Err(Error::limit_exceeded(
            LimitKind::Scans,
            info.jpeg_scans.into(),
            limits.max_scans.into(),
        ));
    }
    let icc = icc_profile(&mut info, limits)?;
    Ok(Checked {
        format,
        container: info,
        icc,
    })
}

/// The ICC profile held to [`Limits::max_icc_bytes`]. A PNG `iCCP` is inflated here with the
/// limit as its bound (a corrupt stream is ignored, as the PNG decoder ignores it). The bytes
/// move out of the container info: [`Checked::icc`] is their one home.
fn icc_profile(info: &mut ContainerInfo, limits: &Limits) -> Result<Option<Vec<u8>>, Error> {
    let Some(raw) = info.icc.take() else {
        return Ok(None);
    };
    let cap = usize::try_from(limits.max_icc_bytes).unwrap_or(usize::MAX);
    let too_big =
        |size: u64| Error::limit_exceeded(LimitKind::IccBytes, size, limits.max_icc_bytes);
    if !info.icc_compressed {
        return match raw.len() as u64 {
            size if size > limits.max_icc_bytes => Err(too_big(size)),
            _ => Ok(Some(raw)),
        };
    }
    match fdeflate::decompress_to_vec_bounded(&raw, cap) {
        Ok(profile) => Ok(Some(profile)),
        Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) => {
            Err(too_big(limits.max_icc_bytes.saturating_add(1)))
        }
        Err(_) => Ok(None),
    }
}

/// Refuses, as `unsupported_format`, codings the decoders do not handle (or, for JPEG inside
/// TIFF, handle without our limits): lossless, hierarchical, arithmetic-coded and non-8-bit
/// JPEG; JPEG-compressed TIFF.
fn check_coding(format: Format, header: &ContainerInfo) -> Result<(), Error> {
    if let Some((sof, precision)) = header.jpeg_sof {
        if precision != 8 {
            return Err(Error::unsupported(format!(
                "{precision}-bit JPEG is not supported (8-bit only)"
            )));
        }
        if !matches!(sof, 0xC0..=0xC2) {
            let process = match sof {
                0xC3 | 0xC7 | 0xCB | 0xCF => "lossless",
                0xC5 | 0xC6 | 0xCD | 0xCE => "hierarchical",
                _ => "arithmetic-coded",
            };
            return Err(Error::unsupported(format!(
                "{process} JPEG (SOF marker {sof:#04X}) is not supported"
            )));
        }
    }
    if format == Format::Tiff && matches!(header.tiff_compression, Some(6 | 7)) {
        return Err(Error::unsupported("JPEG-compressed TIFF is not supported"));
    }
    Ok(())
}

/// Checks a width and height against the limits (zero sizes are corrupt input).
pub fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), Error> {
    if width > limits.max_width {
        return Err(Error::limit_exceeded(
            LimitKind::Width,
            width.into(),
            limits.max_width.into(),
        ));
    }
    if height > limits.max_height {
        return Err(Error::limit_exceeded(
            LimitKind::Height,
            height.into(),
            limits.max_height.into(),
        ));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::limit_exceeded(
            LimitKind::Pixels,
            pixels,
            limits.max_pixels,
        ));
    }
    // The decoded image as RGBA8 (one allocation) must fit the per-allocation budget; decoders
    // check their real buffer (16-bit or float samples: 8-16 bytes per pixel) against it too.
    let bytes = pixels.saturating_mul(4);
    if bytes > limits.max_alloc_bytes {
        return Err(Error::limit_exceeded(
            LimitKind::Alloc,
            bytes,
            limits.max_alloc_bytes,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn sniff_table() {
        let cases: &[(&[u8], Result<Format, ErrorCode>)] = &[
            (b"", Err(ErrorCode::NotAnImage)),
            (b"\xFF\xD8\xFF\xE0", Ok(Format::Jpeg)),
            (b"\x89PNG\r\n\x1a\n", Ok(Format::Png)),
            (b"\x89PNG\n\x1a\n\0", Err(ErrorCode::CorruptInput)),
            (b"\x09PNG\r\n\x1a\n", Err(ErrorCode::CorruptInput)),
            (b"GIF89a", Ok(Format::Gif)),
            (b"GIF87a", Ok(Format::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Ok(Format::Webp)),
            #[cfg(feature = "tiff")]
            (b"II*\0\x08\0\0\0", Ok(Format::Tiff)),
            #[cfg(feature = "tiff")]
            (b"MM\0*\0\0\0\x08", Ok(Format::Tiff)),
            (
                b"\0\0\0\x1cftypheic\0\0\0\0mif1heic",
                Err(ErrorCode::UnsupportedFormat),
            ),
            #[cfg(feature = "avif-input")]
            (b"\0\0\0\x1cftypavif\0\0\0\0mif1avif", Ok(Format::Avif)),
            #[cfg(feature = "avif-input")]
            (b"\0\0\0\x1cftypavis\0\0\0\0msf1avis", Ok(Format::Avif)),
            #[cfg(not(feature = "avif-input"))]
            (
                b"\0\0\0\x1cftypavif\0\0\0\0mif1avif",
                Err(ErrorCode::UnsupportedFormat),
            ),
            (b"8BPS\0\x01\0\0\0\0\0\0", Err(ErrorCode::UnsupportedFormat)),
            (
                b"\0\0\0\x0cjP  \r\n\x87\n",
                Err(ErrorCode::UnsupportedFormat),
            ),
            (b"<!DOCTYPE html><html>", Err(ErrorCode::NotAnImage)),
            (
                b"  <svg xmlns='http://www.w3.org/2000/svg'/>",
                Err(ErrorCode::NotAnImage),
            ),
            (
                b"\xEF\xBB\xBF<?xml version='1.0'?>",
                Err(ErrorCode::NotAnImage),
            ),
            (b"hello world\n", Err(ErrorCode::NotAnImage)),
            (b"%PDF-1.7\n", Err(ErrorCode::NotAnImage)),
            (b"PK\x03\x04\x14\0\0\0", Err(ErrorCode::NotAnImage)),
            (
                b"\0\0\x02\0\0\0\0\0\0\0\0\0\xc8\0 \0\x18 ",
                Err(ErrorCode::UnsupportedFormat),
            ),
        ];
        for (bytes, want) in cases {
            let got = sniff(bytes).map_err(|e| e.code());
            assert_eq!(&got, want, "{bytes:?}");
        }
    }

    #[test]
    fn byte_cap_is_checked_first() {
        let limits = Limits::default().with_max_input_bytes(3);
        let err = check(b"GIF89a", &limits).unwrap_err();
        assert_eq!(err.limit(), Some(LimitKind::InputBytes));
    }
}
