//! Container walking without pixel decoding.
//!
//! [`read`] walks the block structure of an already-sniffed image (JPEG
//! segments, PNG chunks, GIF blocks, RIFF/WebP chunks, BMP headers, TIFF IFDs)
//! once, and yields everything the pipeline needs before a decoder runs: the
//! stored size and frame count (so limits can be checked *before* any decoder
//! allocates), which metadata blocks are present, the raw EXIF (TIFF) payload and
//! its orientation, the ICC profile bytes, the JPEG scan count and coding, and the
//! bytes after the image.
//!
//! Every read is bounds-checked against the input, every loop advances by at
//! least one byte (or one bounded entry) per iteration, and every allocation
//! is bounded by the input length: hostile input can make the walk stop early
//! but never panic, spin, or allocate more than a small multiple of its size.
//!
//! EXIF payloads are read with the same TIFF reader: the orientation is the
//! first IFD's tag (one lookup), and the walk that looks for GPS and MakerNote
//! stops after a fixed number of entries, so crafted payloads (overlapping
//! child IFDs, pointer loops) cost bounded work.
//!
//! One module per format (`jpeg`, `png`, `gif`, `webp`, `bmp`, `tiff`, `avif`), each with its own
//! walker and tests; `exif` holds the TIFF structure reader they share (TIFF files, EXIF
//! payloads, JPEG MPF indexes). This module holds [`read`], the bounds-checked byte readers, and
//! the robustness test that runs every fixture, truncated and mutated, through every walker.

#[cfg(feature = "avif-input")]
mod avif;
mod bmp;
mod exif;
mod gif;
mod jpeg;
mod png;
mod tiff;
mod webp;

#[cfg(feature = "avif-input")]
use avif::walk_avif;
use bmp::walk_bmp;
use exif::analyze_exif;
use gif::walk_gif;
#[cfg(feature = "rayon")]
pub(crate) use jpeg::restart_stream;
use jpeg::walk_jpeg;
use png::walk_png;
use tiff::walk_tiff;
use webp::walk_webp;

/// Container formats this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// JPEG (JFIF, EXIF, Adobe, and MPO multi-picture files).
    Jpeg,
    /// PNG, including APNG.
    Png,
    /// GIF87a / GIF89a.
    Gif,
    /// WebP (RIFF container: simple lossy, simple lossless, extended).
    Webp,
    /// Windows / OS/2 bitmap.
    Bmp,
    /// Classic (32-bit offset) TIFF; BigTIFF is reported as malformed.
    Tiff,
    /// AVIF still images and image sequences (ISO-BMFF, HEIF with AV1).
    Avif,
}

impl Kind {
    /// Every container format, in declaration order.
    pub const ALL: [Kind; 7] = [
        Kind::Jpeg,
        Kind::Png,
        Kind::Gif,
        Kind::Webp,
        Kind::Bmp,
        Kind::Tiff,
        Kind::Avif,
    ];
}

/// Facts read from the container without decoding pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerInfo {
    /// Stored (pre-orientation) width from the header.
    ///
    /// Extended WebP: the VP8X canvas, which every bitstream and `ANMF` frame
    /// was checked to fit, so a limit check on it covers what a decoder
    /// allocates.
    pub width: u32,
    /// Stored (pre-orientation) height from the header.
    pub height: u32,
    /// Number of frames.
    ///
    /// GIF: image descriptors (all blocks are walked, skipping LZW sub-blocks
    /// without decoding; counting stops at `max_frames + 1` to bound the work).
    /// APNG: `acTL` num_frames. Animated WebP: `ANMF` chunk count (also capped
    /// at `max_frames + 1`). JPEG: MPF (APP2 `"MPF\0"`) NumberOfImages (tag
    /// 0xB001) if present, clamped to the images actually in the file (SOIs at
    /// the MP Entry offsets, else complete JPEGs following the first image's
    /// EOI). Otherwise 1.
    pub frames: u32,
    /// Raw EXIF payload as a TIFF byte stream (`"II*\0"` / `"MM\0*"` ...), with
    /// any `"Exif\0\0"` prefix removed: JPEG APP1 `Exif`, PNG `eXIf`, WebP
    /// `EXIF`. Always `None` for TIFF input (the whole file is the TIFF).
    pub exif: Option<Vec<u8>>,
    /// ICC profile bytes: JPEG APP2 `ICC_PROFILE` chunks reassembled in
    /// sequence-number order (only when the chunk set is complete and
    /// consistent), PNG `iCCP` (still zlib-compressed, see `icc_compressed`),
    /// WebP `ICCP`, GIF `ICCRGBG1012` application extension, BMP V5 embedded
    /// profile, TIFF tag 34675. `validate::check` moves it into `Checked::icc` (inflated).
    pub icc: Option<Vec<u8>>,
    /// True when `icc` holds zlib-compressed data (PNG `iCCP`) rather than the
    /// profile itself. This module never inflates anything.
    pub icc_compressed: bool,
    /// An EXIF block is present (even if it fails to parse).
    pub has_exif: bool,
    /// EXIF GPS data is present (a GPS IFD pointer in a top-level IFD).
    pub has_gps: bool,
    /// An EXIF MakerNote (tag 0x927C in the Exif IFD) is present.
    pub has_makernote: bool,
    /// XMP is present.
    pub has_xmp: bool,
    /// IPTC-IIM data is present (Photoshop resource 0x0404, PNG raw profile,
    /// TIFF tag 33723).
    pub has_iptc: bool,
    /// An ICC profile is present (even if `icc` could not be extracted).
    pub has_icc: bool,
    /// A free-text comment is present: JPEG COM, any PNG text chunk other than
    /// XMP and ImageMagick raw profiles, GIF comment extension.
    pub has_comment: bool,
    /// Photoshop image resources other than the IPTC record are present: JPEG
    /// APP13 `"Photoshop 3.0\0"` holding any resource but 0x0404 (an APP13
    /// that only carries IPTC sets just `has_iptc`, as exiftool does), PNG raw
    /// profile `8bim`, TIFF tag 34377.
    pub has_photoshop: bool,
    /// A JPEG multi-picture (MPF, APP2 `"MPF\0"`) index is present.
    pub has_mpf: bool,
    /// EXIF Orientation tag (1..=8) when present and valid, else `None`.
    pub orientation: Option<u8>,
    /// JPEG: the first start-of-frame marker (`0xC0`–`0xCF`) and its sample precision, which
    /// tell the coding process (baseline, progressive, lossless, arithmetic, 12-bit, …).
    pub jpeg_sof: Option<(u8, u8)>,
    /// JPEG: an Adobe APP14 segment precedes the frame (its CMYK/YCCK data is inverted).
    pub jpeg_adobe: bool,
    /// JPEG: a 3-component frame holds YCbCr samples (not RGB), by the rules libjpeg follows
    /// (and the decoder is told the result): component ids 1, 2, 3 → YCbCr, `R`, `G`, `B` → RGB; else a JFIF
    /// segment → YCbCr; else Adobe APP14 transform 0 → RGB, 1 → YCbCr; else YCbCr. False for
    /// other component counts and for the rare BG-YCC/BG-RGB and 3-component YCCK frames,
    /// which the decoder handles (or refuses) itself.
    pub jpeg_ycbcr: bool,
    /// JPEG: start-of-scan markers of the first image (0 for other formats).
    pub jpeg_scans: u32,
    /// TIFF: the first IFD's Compression tag (259).
    pub tiff_compression: Option<u16>,
    /// Bytes that follow the logical end of the image: JPEG after the EOI that
    /// ends the first image (an MPO's second image counts as trailing), PNG
    /// after `IEND`, GIF after the `0x3B` trailer, WebP after the RIFF size.
    /// 0 when there are none or the end was not found.
    pub trailing_bytes: u64,
    /// AVIF: where the coded images lie and how to show them. For AVIF, `orientation` comes
    /// from the `irot`/`imir` properties (the EXIF orientation is ignored, as browsers and
    /// libheif ignore it), and `frames` is the sequence's sample count.
    pub avif: Option<AvifImage>,
}

impl ContainerInfo {
    /// The EXIF orientation to apply: the tag's value if it is one of 1–8, otherwise 1 (none).
    pub fn upright_orientation(&self) -> u8 {
        self.orientation
            .filter(|o| (1..=8).contains(o))
            .unwrap_or(1)
    }
}

/// Where an AVIF's coded images lie and how to show them ([`ContainerInfo::avif`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvifImage {
    /// Byte ranges of the colour image's AV1 data (an item's extents, in order).
    pub color: Vec<std::ops::Range<usize>>,
    /// Byte ranges of the alpha plane's AV1 data, when the image has one.
    pub alpha: Option<Vec<std::ops::Range<usize>>>,
    /// The colour is premultiplied by alpha (`prem` reference).
    pub premultiplied: bool,
    /// The `nclx` colour box: colour primaries, transfer characteristics, matrix
    /// coefficients (ITU-T H.273 code points) and the full-range flag.
    pub nclx: Option<Nclx>,
    /// Bits per channel from `pixi` (the AV1 sequence header is what the decoder follows).
    pub depth: Option<u8>,
    /// The primary item is a derived `grid` image (tiles), which is not decoded.
    pub grid: bool,
    /// The image is the first frame of a sequence (no primary item).
    pub sequence: bool,
}

/// An `nclx` colour box (ITU-T H.273 code points).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nclx {
    /// Colour primaries (1 = BT.709/sRGB, 9 = BT.2020, 12 = Display P3).
    pub primaries: u16,
    /// Transfer characteristics (13 = sRGB, 16 = PQ, 18 = HLG).
    pub transfer: u16,
    /// Matrix coefficients (0 = identity/RGB, 1 = BT.709, 6 = BT.601, 9 = BT.2020).
    pub matrix: u16,
    /// Full-range samples (else studio range).
    pub full_range: bool,
}

/// Why the header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The data ends before the header (or a structure it declares) is complete.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// The header is structurally invalid.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Walks the container once: the stored size and frame count (checked strictly, as a decoder
/// would need them), then every metadata block, the ICC profile, the EXIF orientation, the
/// JPEG scan count and any trailing bytes (best effort: a malformed metadata block is skipped,
/// and a structural error after the header stops the walk and keeps what was found).
///
/// Every field of [`ContainerInfo`] is filled that the format has. The work is a walk over
/// block headers (never pixel data), bounded by the input length; for GIF and animated WebP it
/// stops once `max_frames + 1` frames were seen (the caller's frame limit then refuses the file).
///
/// # Errors
///
/// [`HeaderError::Truncated`] when the data ends before the dimensions are
/// known, [`HeaderError::Malformed`] when the header is invalid (bad
/// signature, PNG IHDR CRC mismatch, zero dimension, a JPEG scan before its frame header,
/// an unknown first WebP chunk, an extended WebP whose still-image bitstream size differs from
/// the VP8X canvas, or whose `ANMF` frame lies outside the canvas or has a
/// bitstream of another size than the frame, ...).
pub fn read(bytes: &[u8], kind: Kind, max_frames: u32) -> Result<ContainerInfo, HeaderError> {
    let mut info = ContainerInfo {
        frames: 1,
        ..ContainerInfo::default()
    };
    match kind {
        Kind::Jpeg => walk_jpeg(bytes, &mut info),
        Kind::Png => walk_png(bytes, &mut info),
        Kind::Gif => walk_gif(bytes, max_frames, &mut info),
        Kind::Webp => walk_webp(bytes, max_frames, &mut info),
        Kind::Bmp => walk_bmp(bytes, &mut info),
        Kind::Tiff => walk_tiff(bytes, &mut info),
        #[cfg(feature = "avif-input")]
        Kind::Avif => walk_avif(bytes, &mut info),
        #[cfg(not(feature = "avif-input"))]
        Kind::Avif => Err(HeaderError::Malformed(
            "AVIF input is not enabled in this build",
        )),
    }?;
    if let Some(payload) = info.exif.take() {
        let shown = info.orientation;
        analyze_exif(&payload, &mut info);
        info.exif = Some(payload);
        if kind == Kind::Avif {
            info.orientation = shown;
        }
    }
    Ok(info)
}

// ---------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------

type Res = Result<(), HeaderError>;

fn slice(b: &[u8], start: usize, len: usize) -> Option<&[u8]> {
    b.get(start..start.checked_add(len)?)
}

fn arr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    slice(b, at, N)?.try_into().ok()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    arr(b, at).map(u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    arr(b, at).map(u32::from_be_bytes)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    arr(b, at).map(u16::from_le_bytes)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z] = arr::<3>(b, at)?;
    Some(u32::from_le_bytes([x, y, z, 0]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    arr(b, at).map(u32::from_le_bytes)
}

fn to_usize(v: u32) -> Option<usize> {
    usize::try_from(v).ok()
}

/// Number of bytes after position `end` (0 when `end` is at or past the end).
fn tail(b: &[u8], end: usize) -> u64 {
    u64::try_from(b.len().saturating_sub(end)).unwrap_or(u64::MAX)
}

/// `true` when `b` is shorter than `sig` but could still become it.
fn is_sig_prefix(b: &[u8], sig: &[u8]) -> bool {
    b.len() < sig.len() && sig.starts_with(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "avif-input")]
    use crate::container::avif::tests::{avif_fixture, avifs_fixture};
    use crate::container::bmp::tests::bmp_fixture;
    use crate::container::gif::tests::{gif_bomb, gif_fixture};
    use crate::container::jpeg::tests::{jpeg_fixture, mpo_fixture, mpo_with_entries};
    use crate::container::png::tests::{apng_fixture, png_fixture};
    use crate::container::tiff::tests::tiff_fixture;
    use crate::container::webp::tests::{
        webp_anim_bitstream_fixture, webp_anim_fixture, webp_vp8_fixture, webp_vp8l_fixture,
    };

    fn all_fixtures() -> Vec<(Kind, Vec<u8>)> {
        vec![
            (Kind::Jpeg, jpeg_fixture()),
            (Kind::Jpeg, mpo_fixture()),
            (Kind::Png, png_fixture()),
            (Kind::Png, apng_fixture()),
            (Kind::Gif, gif_bomb()),
            (Kind::Gif, gif_fixture(3)),
            (Kind::Webp, webp_anim_fixture()),
            (Kind::Webp, webp_vp8l_fixture(300, 200)),
            (Kind::Webp, webp_vp8_fixture(13, 1)),
            (Kind::Webp, webp_anim_bitstream_fixture(55, 40)),
            (Kind::Jpeg, mpo_with_entries(3, &[0, 1], 2)),
            (Kind::Bmp, bmp_fixture(7, -5)),
            (Kind::Tiff, tiff_fixture()),
            #[cfg(feature = "avif-input")]
            (Kind::Avif, avif_fixture()),
            #[cfg(feature = "avif-input")]
            (Kind::Avif, avifs_fixture()),
        ]
    }

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn exercise(bytes: &[u8], kind: Kind) {
        if let Ok(info) = read(bytes, kind, 4) {
            assert!(info.width > 0 && info.height > 0, "{kind:?}: {info:?}");
            assert!(info.frames >= 1);
            assert!(info.trailing_bytes <= bytes.len() as u64);
            if let Some(icc) = &info.icc {
                assert!(icc.len() <= bytes.len());
            }
        }
    }

    #[test]
    fn prefixes_and_mutations_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for (kind, fixture) in all_fixtures() {
            for cut in 0..=fixture.len() {
                exercise(&fixture[..cut], kind);
            }
            for _ in 0..3000 {
                let mut m = fixture.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(m.len());
                    m[at] = match rng.below(4) {
                        0 => 0xFF,
                        1 => 0x00,
                        2 => m[at] ^ (1 << rng.below(8)),
                        _ => rng.next() as u8,
                    };
                }
                if rng.below(4) == 0 {
                    m.truncate(rng.below(m.len() + 1));
                }
                exercise(&m, kind);
            }
            // Every fixture through every walker.
            for other in Kind::ALL {
                exercise(&fixture, other);
            }
        }
    }
}
