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
}

impl Kind {
    /// Every container format, in declaration order.
    pub const ALL: [Kind; 6] = [
        Kind::Jpeg,
        Kind::Png,
        Kind::Gif,
        Kind::Webp,
        Kind::Bmp,
        Kind::Tiff,
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
    /// profile, TIFF tag 34675.
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
    }?;
    if let Some(payload) = info.exif.take() {
        analyze_exif(&payload, &mut info);
        info.exif = Some(payload);
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

/// Orientation value if it is one of the eight defined values.
fn valid_orientation(v: u32) -> Option<u8> {
    u8::try_from(v).ok().filter(|v| (1..=8).contains(v))
}

// ---------------------------------------------------------------------------
// TIFF structure (used for TIFF files, EXIF payloads and JPEG MPF)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Tiff<'a> {
    d: &'a [u8],
    le: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    /// Offset of the 12-byte entry in the TIFF data.
    at: usize,
}

/// Byte size of one value of a TIFF field type (None for unknown types).
fn tiff_type_size(typ: u16) -> Option<usize> {
    match typ {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

impl<'a> Tiff<'a> {
    fn parse(d: &'a [u8]) -> Option<Self> {
        let le = match d.get(0..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Self { d, le })
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let a = arr::<2>(self.d, at)?;
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let a = arr::<4>(self.d, at)?;
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn first_ifd(&self) -> Option<usize> {
        to_usize(self.u32(4)?)
    }

    /// Declared entry count of the IFD at `off` and how many of those entries
    /// are actually present in the data.
    fn entry_counts(&self, off: usize) -> Option<(usize, usize)> {
        let declared = usize::from(self.u16(off)?);
        let avail = self.d.len().saturating_sub(off.checked_add(2)?) / 12;
        Some((declared, declared.min(avail)))
    }

    /// The entries of the IFD at `off` that lie inside the data (at most
    /// 65535, and never more than `len / 12`).
    fn entries(&self, off: usize) -> impl Iterator<Item = Entry> + 'a {
        let t = *self;
        let n = self.entry_counts(off).map_or(0, |(_, n)| n);
        (0..n).filter_map(move |i| {
            let at = off.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
            Some(Entry {
                tag: t.u16(at)?,
                typ: t.u16(at.checked_add(2)?)?,
                count: t.u32(at.checked_add(4)?)?,
                at,
            })
        })
    }

    /// Offset of the IFD following the one at `off` (0 = none).
    fn next_ifd(&self, off: usize) -> Option<usize> {
        let count = usize::from(self.u16(off)?);
        let at = off.checked_add(2)?.checked_add(count.checked_mul(12)?)?;
        to_usize(self.u32(at)?)
    }

    /// Total byte size of an entry's value, if the type is known.
    fn value_size(e: &Entry) -> Option<usize> {
        tiff_type_size(e.typ)?.checked_mul(to_usize(e.count)?)
    }

    /// The raw bytes of an entry's value (borrowed, never copied).
    fn value(&self, e: &Entry) -> Option<&'a [u8]> {
        let size = Self::value_size(e)?;
        let field = e.at.checked_add(8)?;
        if size <= 4 {
            slice(self.d, field, size)
        } else {
            slice(self.d, to_usize(self.u32(field)?)?, size)
        }
    }

    /// First value of an unsigned integer entry (BYTE, SHORT, LONG, IFD).
    fn uint(&self, e: &Entry) -> Option<u32> {
        if e.count == 0 {
            return None;
        }
        let v = self.value(e)?;
        let t = Tiff { d: v, le: self.le };
        match e.typ {
            1 => v.first().copied().map(u32::from),
            3 => t.u16(0).map(u32::from),
            4 | 13 => t.u32(0),
            _ => None,
        }
    }
}

/// Which IFD a walk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Tiff,
    Exif,
    Gps,
    Interop,
}

const TAG_ORIENTATION: u16 = 0x0112;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_GPS_IFD: u16 = 0x8825;
const TAG_INTEROP_IFD: u16 = 0xA005;
const TAG_MAKERNOTE: u16 = 0x927C;

/// Upper bound on IFD visits + entries of one walk. Real EXIF blocks have a
/// few hundred entries at most.
const EXIF_ENTRY_BUDGET: usize = 8192;
/// At most this many top-level IFDs are followed.
const EXIF_MAX_TOP_IFDS: usize = 8;

/// Bounded structural walk of an EXIF/TIFF IFD tree: presence of GPS and
/// MakerNote.
#[derive(Debug, Default)]
struct ExifWalk {
    spent: usize,
    gps: bool,
    makernote: bool,
    /// The budget ran out, or a pointer was malformed: the walk stopped.
    stopped: bool,
}

impl ExifWalk {
    fn run(t: &Tiff<'_>) -> Self {
        let mut w = Self::default();
        let mut off = t.first_ifd();
        let mut index = 0usize;
        while let Some(o) = off.filter(|&o| o != 0) {
            if index >= EXIF_MAX_TOP_IFDS || w.stopped {
                break;
            }
            w.visit(t, o, Ctx::Tiff);
            off = t.next_ifd(o);
            index = index.saturating_add(1);
        }
        w
    }

    /// Charges one unit of work; returns false (and stops the walk) once the
    /// budget is exhausted.
    fn charge(&mut self) -> bool {
        self.spent = self.spent.saturating_add(1);
        if self.spent > EXIF_ENTRY_BUDGET {
            self.stopped = true;
        }
        !self.stopped
    }

    fn visit(&mut self, t: &Tiff<'_>, off: usize, ctx: Ctx) {
        if !self.charge() {
            return;
        }
        for e in t.entries(off) {
            if !self.charge() {
                return;
            }
            let child = match (ctx, e.tag) {
                (Ctx::Tiff, TAG_EXIF_IFD) => Some(Ctx::Exif),
                (Ctx::Tiff, TAG_GPS_IFD) => {
                    self.gps = true;
                    Some(Ctx::Gps)
                }
                (Ctx::Exif, TAG_INTEROP_IFD) => Some(Ctx::Interop),
                (Ctx::Exif, TAG_MAKERNOTE) => {
                    self.makernote = true;
                    None
                }
                _ => None,
            };
            if let Some(child) = child {
                // A pointer is one value in the entry itself.
                if Tiff::value_size(&e).is_none_or(|s| s > 4) {
                    self.stopped = true;
                    return;
                }
                if let Some(o) = t.uint(&e).and_then(to_usize) {
                    self.visit(t, o, child);
                }
            }
        }
    }
}

/// Fills `has_exif`, `has_gps`, `has_makernote` and `orientation` from a raw
/// EXIF (TIFF) payload.
fn analyze_exif(payload: &[u8], info: &mut ContainerInfo) {
    info.has_exif = true;
    let Some(t) = Tiff::parse(payload) else {
        return;
    };
    let w = ExifWalk::run(&t);
    info.has_gps |= w.gps;
    info.has_makernote |= w.makernote;
    // The primary image's Orientation: the first IFD's tag, its first value.
    info.orientation = t
        .first_ifd()
        .and_then(|ifd| t.entries(ifd).find(|e| e.tag == TAG_ORIENTATION))
        .and_then(|e| t.uint(&e))
        .and_then(valid_orientation);
}

// ---------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------

const XMP_NS: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXT_NS: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const ICC_SIG: &[u8] = b"ICC_PROFILE\0";
const PHOTOSHOP_SIG: &[u8] = b"Photoshop 3.0\0";

/// Finds the next marker at or after `pos`: returns the marker code and the
/// position just after it. Bytes that are not a marker are skipped (like
/// libjpeg's "extraneous bytes before marker" recovery).
fn next_marker(b: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        let ff = pos.checked_add(b.get(pos..)?.iter().position(|&x| x == 0xFF)?)?;
        let mut p = ff.checked_add(1)?;
        // Fill bytes.
        while *b.get(p)? == 0xFF {
            p = p.checked_add(1)?;
        }
        let code = *b.get(p)?;
        let after = p.checked_add(1)?;
        if code != 0 {
            return Some((code, after));
        }
        pos = after;
    }
}

/// Skips entropy-coded data starting at `pos`; returns the position of the
/// 0xFF that starts the next real marker (not a stuffed 0xFF00 or RSTn).
fn skip_entropy(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let ff = pos.checked_add(b.get(pos..)?.iter().position(|&x| x == 0xFF)?)?;
        match *b.get(ff.checked_add(1)?)? {
            0x00 | 0xD0..=0xD7 => pos = ff.checked_add(2)?,
            0xFF => pos = ff.checked_add(1)?,
            _ => return Some(ff),
        }
    }
}

fn is_sof(code: u8) -> bool {
    matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

/// What an MPF index IFD (the data after `"MPF\0"`) says about the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MpfIndex {
    /// NumberOfImages (0xB001) as declared.
    claimed: u32,
    /// Images confirmed through the MP Entry list (0xB002): the first image
    /// plus every other entry whose offset lands on a distinct `FF D8 FF` SOI
    /// sequence after the MPF segment. 1 when there is no usable list.
    confirmed: u32,
}

/// Parses an MPF index. `d` is the data after `"MPF\0"`; `base` is where `d`
/// starts in `b` (MP Entry offsets are relative to it).
///
/// The work is bounded by the segment size: an APP2 segment holds at most
/// 65533 bytes, so at most ~4096 MP entries are looked at.
fn mpf_index(b: &[u8], d: &[u8], base: usize) -> Option<MpfIndex> {
    let t = Tiff::parse(d)?;
    let first = t.first_ifd()?;
    let e = t.entries(first).find(|e| e.tag == 0xB001)?;
    let claimed = t.uint(&e).filter(|&n| n > 0)?;
    let mut confirmed = 1u32;
    let list = t
        .entries(first)
        .find(|e| e.tag == 0xB002 && e.typ == 7)
        .and_then(|e| t.value(&e));
    if let Some(list) = list {
        let n = (list.len() / 16).min(to_usize(claimed).unwrap_or(usize::MAX));
        // Image offsets other than the first one's (which is 0), relative to
        // the index, so always after it.
        let entries = Tiff { d: list, le: t.le };
        let mut offsets: Vec<usize> = (1..n)
            .filter_map(|i| {
                // Entry: attribute (4), size (4), data offset (4), 2 x 2.
                let off = to_usize(entries.u32(i.checked_mul(16)?.checked_add(8)?)?)?;
                let abs = base.checked_add(off)?;
                (off != 0 && slice(b, abs, 3) == Some(&[0xFF, 0xD8, 0xFF][..])).then_some(abs)
            })
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        let extra = u32::try_from(offsets.len()).unwrap_or(u32::MAX);
        confirmed = confirmed.saturating_add(extra).min(claimed);
    }
    Some(MpfIndex { claimed, confirmed })
}

/// End (just past the EOI) of the JPEG image whose SOI is at `start`: walks
/// the segments by their lengths (so embedded thumbnails are skipped) and the
/// entropy-coded data without decoding. `None` when the image is incomplete.
fn jpeg_image_end(b: &[u8], start: usize) -> Option<usize> {
    let mut pos = start.checked_add(2)?;
    loop {
        let (code, after) = next_marker(b, pos)?;
        pos = after;
        match code {
            0xD9 => return Some(pos),
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = usize::from(be16(b, pos)?);
        if len < 2 {
            return None;
        }
        let end = pos.checked_add(len)?;
        if end > b.len() {
            return None;
        }
        pos = if code == 0xDA {
            skip_entropy(b, end)?
        } else {
            end
        };
    }
}

/// Number of complete JPEG images (each starting with `FF D8 FF`) found one
/// after the other from `pos` on, stopping at `limit`. Linear in the input.
fn count_following_jpegs(b: &[u8], mut pos: usize, limit: u32) -> u32 {
    let mut n = 0u32;
    while n < limit {
        let Some(soi) = b
            .get(pos..)
            .and_then(|r| r.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]))
            .and_then(|i| pos.checked_add(i))
        else {
            break;
        };
        let Some(end) = jpeg_image_end(b, soi) else {
            break;
        };
        n = n.saturating_add(1);
        pos = end;
    }
    n
}

/// Frame count of a JPEG with an MPF index: NumberOfImages, clamped to the
/// images actually present. The MP Entry list is checked first (a few reads);
/// only when it does not confirm every declared image are the images after
/// the first one's EOI walked (linear in the input, no allocation).
fn mpf_frames(b: &[u8], m: MpfIndex) -> u32 {
    if m.confirmed >= m.claimed {
        return m.claimed;
    }
    let walked = jpeg_image_end(b, 0).map_or(1, |end| {
        1u32.saturating_add(count_following_jpegs(b, end, m.claimed.saturating_sub(1)))
    });
    walked.max(m.confirmed).min(m.claimed)
}

/// What a Photoshop image-resource list holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PsResources {
    /// A non-empty IPTC-NAA record (resource 0x0404).
    iptc: bool,
    /// Any other resource (resolution info, IPTC digest, thumbnails, ...).
    other: bool,
}

/// Walks Photoshop image resources (`"8BIM"` id, padded Pascal name, size,
/// padded data). `None` when the list is malformed.
fn photoshop_resources(d: &[u8]) -> Option<PsResources> {
    let mut found = PsResources::default();
    let mut pos = 0usize;
    while pos < d.len() {
        let sig = d.get(pos..pos.checked_add(4)?)?;
        if !matches!(sig, b"8BIM" | b"PHUT" | b"AgHg" | b"DCSR") {
            return None;
        }
        let id = be16(d, pos.checked_add(4)?)?;
        let name_len = usize::from(*d.get(pos.checked_add(6)?)?);
        // Pascal string (length byte + name) padded to an even size.
        let name_total = (name_len + 1).next_multiple_of(2);
        let size_at = pos.checked_add(6)?.checked_add(name_total)?;
        let size = to_usize(be32(d, size_at)?)?;
        if id == 0x0404 {
            // exiftool, too, reports no IPTC for an empty record.
            found.iptc |= size > 0;
        } else {
            found.other = true;
        }
        let data_end = size_at.checked_add(4)?.checked_add(size)?;
        if data_end > d.len() {
            return None;
        }
        pos = data_end.checked_add(size & 1)?;
    }
    Some(found)
}

/// Reassembles JPEG ICC chunks `(seq, total, data)`; `None` unless the set is
/// complete and consistent (the libjpeg-turbo rules): `total` chunks, each `seq`
/// in `1..=total` exactly once, placed by its number.
fn assemble_jpeg_icc(parts: &[(u8, u8, &[u8])]) -> Option<Vec<u8>> {
    let total = parts.first()?.1;
    if total == 0 || parts.len() != usize::from(total) || parts.iter().any(|p| p.1 != total) {
        return None;
    }
    let mut ordered: Vec<Option<&[u8]>> = vec![None; parts.len()];
    for &(seq, _, data) in parts {
        let place = ordered.get_mut(usize::from(seq).checked_sub(1)?)?;
        if place.replace(data).is_some() {
            return None;
        }
    }
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.2.len()).sum());
    for data in ordered {
        out.extend_from_slice(data?);
    }
    Some(out)
}

fn jpeg_app<'a>(
    code: u8,
    seg: &'a [u8],
    info: &mut ContainerInfo,
    icc: &mut Vec<(u8, u8, &'a [u8])>,
) {
    match code {
        0xE1 => {
            if seg.starts_with(b"Exif\0") {
                // "Exif\0\0" (some writers put another byte after the NUL).
                info.has_exif = true;
                if info.exif.is_none() {
                    info.exif = seg.get(6..).map(<[u8]>::to_vec);
                }
            } else if seg.starts_with(XMP_NS) || seg.starts_with(XMP_EXT_NS) {
                info.has_xmp = true;
            }
        }
        0xE2 => {
            if let Some(rest) = seg.strip_prefix(ICC_SIG) {
                info.has_icc = true;
                if let ([seq, total, ..], Some(data)) = (rest, rest.get(2..)) {
                    // A profile has at most 255 chunks; more is garbage.
                    if icc.len() < 256 {
                        icc.push((*seq, *total, data));
                    }
                }
            }
        }
        0xED => {
            if let Some(rest) = seg.strip_prefix(PHOTOSHOP_SIG) {
                // If the resource list cannot be walked, assume both kinds may
                // be in it (a false "present" is the safe side for stripping).
                let found = photoshop_resources(rest).unwrap_or(PsResources {
                    iptc: true,
                    other: true,
                });
                info.has_iptc |= found.iptc;
                info.has_photoshop |= found.other;
            }
        }
        0xFE => info.has_comment = true,
        _ => {}
    }
}

/// See [`ContainerInfo::jpeg_ycbcr`]. `sof` is the frame header's body.
fn jpeg_is_ycbcr(sof: &[u8], jfif: bool, adobe_transform: Option<u8>) -> bool {
    let ids = match sof {
        [_, _, _, _, _, 3, a, _, _, b, _, _, c, ..] => (*a, *b, *c),
        _ => return false,
    };
    match ids {
        (1, 2, 3) => true,
        (82, 71, 66) | (1, 34, 35) | (114, 103, 98) => false,
        _ if jfif => true,
        _ => matches!(adobe_transform, None | Some(1)),
    }
}

/// Segments up to the frame header are checked strictly; after it the walk is best effort
/// (a later truncation or bad segment only ends it: that is the decoder's business).
fn walk_jpeg(b: &[u8], info: &mut ContainerInfo) -> Res {
    match b {
        [0xFF, 0xD8, ..] => {}
        _ if is_sig_prefix(b, &[0xFF, 0xD8]) => return Err(HeaderError::Truncated("JPEG SOI")),
        _ => return Err(HeaderError::Malformed("missing JPEG SOI marker")),
    }
    let mut pos = 2usize;
    let mut found_sof = false;
    let (mut jfif, mut adobe_transform) = (false, None);
    let mut icc_parts: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut mpf: Option<MpfIndex> = None;
    let outcome: Res = loop {
        let Some((code, after)) = next_marker(b, pos) else {
            break Err(HeaderError::Truncated("JPEG ends before the frame header"));
        };
        pos = after;
        match code {
            // Standalone markers (no length field).
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            0xD9 => {
                info.trailing_bytes = tail(b, pos);
                break if found_sof {
                    Ok(())
                } else {
                    Err(HeaderError::Malformed("JPEG EOI before the frame header"))
                };
            }
            _ => {}
        }
        let Some(len) = be16(b, pos).map(usize::from) else {
            break Err(HeaderError::Truncated("JPEG segment length"));
        };
        let Some(body_len) = len.checked_sub(2) else {
            break Err(HeaderError::Malformed("JPEG segment length < 2"));
        };
        let Some(seg) = pos.checked_add(2).and_then(|s| slice(b, s, body_len)) else {
            break Err(HeaderError::Truncated("JPEG segment"));
        };
        // Cannot overflow: the segment was just found inside `b`.
        let seg_end = pos.saturating_add(len);
        if code == 0xEE && seg.starts_with(b"Adobe") {
            info.jpeg_adobe = true;
            if seg.len() >= 12 && seg.starts_with(b"Adobe\0") {
                adobe_transform = Some(seg[11]);
            }
        }
        if code == 0xE0 && seg.starts_with(b"JFIF\0") {
            jfif = true;
        }
        if is_sof(code) && !found_sof {
            info.jpeg_sof = Some((code, seg.first().copied().unwrap_or(0)));
            info.jpeg_ycbcr = jpeg_is_ycbcr(seg, jfif, adobe_transform);
            match (be16(seg, 1), be16(seg, 3)) {
                (Some(h), Some(w)) if h != 0 && w != 0 => {
                    info.width = u32::from(w);
                    info.height = u32::from(h);
                    found_sof = true;
                }
                (Some(_), Some(_)) => {
                    break Err(HeaderError::Malformed(
                        "JPEG frame header with zero dimension",
                    ));
                }
                _ => break Err(HeaderError::Malformed("short JPEG frame header")),
            }
        } else if code == 0xDA {
            if !found_sof {
                break Err(HeaderError::Malformed("JPEG scan before the frame header"));
            }
            info.jpeg_scans = info.jpeg_scans.saturating_add(1);
            match skip_entropy(b, seg_end) {
                Some(p) => {
                    pos = p;
                    continue;
                }
                None => break Err(HeaderError::Truncated("JPEG scan data")),
            }
        } else if code == 0xE2 && seg.starts_with(b"MPF\0") {
            // The frame count.
            if mpf.is_none() {
                let base = pos.saturating_add(6);
                mpf = seg.get(4..).and_then(|d| mpf_index(b, d, base));
            }
            info.has_mpf = true;
        } else {
            jpeg_app(code, seg, info, &mut icc_parts);
        }
        pos = seg_end;
    };
    if !icc_parts.is_empty() {
        info.icc = assemble_jpeg_icc(&icc_parts);
    }
    if let Some(m) = mpf {
        info.frames = mpf_frames(b, m);
    }
    match outcome {
        Err(_) if found_sof => Ok(()),
        other => other,
    }
}

// ---------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------

const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Classifies a PNG text chunk (`tEXt`, `zTXt`, `iTXt`) by its keyword.
fn png_text(data: &[u8], info: &mut ContainerInfo) {
    let Some(kw) = data
        .iter()
        .position(|&c| c == 0)
        .and_then(|n| data.get(..n))
    else {
        return; // malformed: no keyword terminator
    };
    const RAW: &[u8] = b"raw profile type ";
    if kw == b"XML:com.adobe.xmp" {
        info.has_xmp = true;
    } else if kw.len() > RAW.len()
        && kw
            .get(..RAW.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RAW))
    {
        // ImageMagick's hex-encoded legacy profiles.
        let kind = kw.get(RAW.len()..).unwrap_or_default().to_ascii_lowercase();
        match kind.as_slice() {
            b"exif" | b"app1" => info.has_exif = true,
            b"iptc" => info.has_iptc = true,
            b"xmp" => info.has_xmp = true,
            b"icc" | b"icm" => info.has_icc = true,
            b"8bim" => info.has_photoshop = true,
            _ => {}
        }
    } else {
        info.has_comment = true;
    }
}

fn walk_png(b: &[u8], info: &mut ContainerInfo) -> Res {
    match b.get(..8) {
        Some(s) if s == PNG_SIG => {}
        None if is_sig_prefix(b, &PNG_SIG) => return Err(HeaderError::Truncated("PNG signature")),
        _ => return Err(HeaderError::Malformed("PNG signature")),
    }
    let (Some(len), Some(typ)) = (be32(b, 8), arr::<4>(b, 12)) else {
        return Err(HeaderError::Truncated("PNG IHDR"));
    };
    if &typ != b"IHDR" {
        return Err(HeaderError::Malformed("first PNG chunk is not IHDR"));
    }
    if len != 13 {
        return Err(HeaderError::Malformed("PNG IHDR length"));
    }
    let (Some(chunk), Some(crc)) = (b.get(12..29), be32(b, 29)) else {
        return Err(HeaderError::Truncated("PNG IHDR"));
    };
    let (w, h) = (be32(b, 16).unwrap_or(0), be32(b, 20).unwrap_or(0));
    if crc32fast::hash(chunk) != crc {
        return Err(HeaderError::Malformed("PNG IHDR CRC mismatch"));
    }
    let bad = |v: u32| v == 0 || v > 0x7FFF_FFFF;
    if bad(w) || bad(h) {
        return Err(HeaderError::Malformed("PNG IHDR dimensions"));
    }
    info.width = w;
    info.height = h;

    let mut pos = 33usize;
    let mut seen_idat = false;
    // The loop ends at IEND, or where the data ends without one.
    while let (Some(len), Some(typ)) = (
        be32(b, pos),
        pos.checked_add(4).and_then(|p| arr::<4>(b, p)),
    ) {
        if len > 0x7FFF_FFFF {
            break;
        }
        let Some(start) = pos.checked_add(8) else {
            break;
        };
        let Some(data) = to_usize(len).and_then(|l| slice(b, start, l)) else {
            break; // truncated chunk
        };
        let Some(end) = start.checked_add(data.len()).and_then(|e| e.checked_add(4)) else {
            break;
        };
        if end > b.len() {
            break;
        }
        match &typ {
            b"IDAT" => seen_idat = true,
            b"acTL" if !seen_idat => {
                if let Some(n) = be32(data, 0) {
                    info.frames = n.max(1);
                }
            }
            b"IEND" => {
                info.trailing_bytes = tail(b, end);
                break;
            }
            b"eXIf" => {
                info.has_exif = true;
                if info.exif.is_none() {
                    let payload = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
                    info.exif = Some(payload.to_vec());
                }
            }
            b"iCCP" => {
                // keyword \0 compression-method compressed-profile
                let compressed = data
                    .iter()
                    .position(|&c| c == 0)
                    .and_then(|n| n.checked_add(2))
                    .and_then(|s| data.get(s..));
                if let Some(compressed) = compressed {
                    info.has_icc = true;
                    if info.icc.is_none() {
                        info.icc = Some(compressed.to_vec());
                        info.icc_compressed = true;
                    }
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" => png_text(data, info),
            _ => {}
        }
        pos = end;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// GIF
// ---------------------------------------------------------------------------

/// Byte size of a GIF colour table given the packed field.
fn gif_color_table(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3usize << ((packed & 7) + 1)
    }
}

/// Skips a chain of data sub-blocks starting at `pos`; returns the position
/// after the terminating empty block.
fn skip_sub_blocks(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let n = usize::from(*b.get(pos)?);
        pos = pos.checked_add(1)?;
        if n == 0 {
            return Some(pos);
        }
        pos = pos.checked_add(n)?;
    }
}

/// Concatenates a chain of data sub-blocks (only complete chains).
fn collect_sub_blocks(b: &[u8], mut pos: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let n = usize::from(*b.get(pos)?);
        pos = pos.checked_add(1)?;
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(slice(b, pos, n)?);
        pos = pos.checked_add(n)?;
    }
}

fn walk_gif(b: &[u8], max_frames: u32, info: &mut ContainerInfo) -> Res {
    match b.get(..6) {
        Some(b"GIF87a" | b"GIF89a") => {}
        None if is_sig_prefix(b, b"GIF87a") || is_sig_prefix(b, b"GIF89a") => {
            return Err(HeaderError::Truncated("GIF signature"));
        }
        _ => return Err(HeaderError::Malformed("GIF signature")),
    }
    let (Some(sw), Some(sh), Some(&packed)) = (le16(b, 6), le16(b, 8), b.get(10)) else {
        return Err(HeaderError::Truncated("GIF logical screen descriptor"));
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    info.width = sw;
    info.height = sh;
    let cap = max_frames.saturating_add(1);
    let mut frames = 0u32;
    let mut first_done = false;
    let mut pos = 13usize.saturating_add(gif_color_table(packed));
    let outcome: Res = loop {
        let Some(&intro) = b.get(pos) else {
            break Err(HeaderError::Truncated("GIF ends before the trailer"));
        };
        match intro {
            0x2C => {
                let Some(d) = pos.checked_add(1).and_then(|p| slice(b, p, 9)) else {
                    break Err(HeaderError::Truncated("GIF image descriptor"));
                };
                let field = |i: usize| u32::from(le16(d, i).unwrap_or(0));
                if !first_done {
                    // Like Pillow and browsers: a first frame larger than the
                    // logical screen grows the canvas.
                    first_done = true;
                    info.width = sw.max(field(0).saturating_add(field(4)));
                    info.height = sh.max(field(2).saturating_add(field(6)));
                }
                if frames < cap {
                    frames = frames.saturating_add(1);
                }
                if frames >= cap {
                    break Ok(()); // over the limit: no need to look further
                }
                let local = gif_color_table(d.get(8).copied().unwrap_or(0));
                // 10-byte descriptor, local colour table, LZW minimum code size.
                let Some(data) = pos.checked_add(11).and_then(|p| p.checked_add(local)) else {
                    break Err(HeaderError::Truncated("GIF image data"));
                };
                match skip_sub_blocks(b, data) {
                    Some(p) => pos = p,
                    None => break Err(HeaderError::Truncated("GIF image data")),
                }
            }
            0x21 => {
                let Some(&label) = b.get(pos.saturating_add(1)) else {
                    break Err(HeaderError::Truncated("GIF extension"));
                };
                let sub = pos.saturating_add(2);
                match label {
                    0xFE => info.has_comment = true,
                    0xFF if b.get(sub) == Some(&11) => {
                        match sub.checked_add(1).and_then(|p| slice(b, p, 11)) {
                            Some(b"XMP DataXMP") => info.has_xmp = true,
                            Some(b"ICCRGBG1012") => {
                                info.has_icc = true;
                                if info.icc.is_none() {
                                    info.icc =
                                        sub.checked_add(12).and_then(|p| collect_sub_blocks(b, p));
                                }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
                match skip_sub_blocks(b, sub) {
                    Some(p) => pos = p,
                    None => break Err(HeaderError::Truncated("GIF extension data")),
                }
            }
            0x3B => {
                info.trailing_bytes = tail(b, pos.saturating_add(1));
                break Ok(());
            }
            _ => break Err(HeaderError::Malformed("unknown GIF block")),
        }
    };
    info.frames = frames.max(1);
    match outcome {
        // The dimensions are known once the first descriptor was read; a
        // later truncation is the decoder's business.
        Err(_) if first_done => Ok(()),
        Ok(()) if !first_done => Err(HeaderError::Malformed("GIF without an image")),
        other => other,
    }
}

// ---------------------------------------------------------------------------
// WebP
// ---------------------------------------------------------------------------

fn vp8_dims(d: &[u8]) -> Result<(u32, u32), HeaderError> {
    let (Some(tag), Some(w), Some(h)) = (d.first(), le16(d, 6), le16(d, 8)) else {
        return Err(HeaderError::Truncated("VP8 frame header"));
    };
    if tag & 1 != 0 {
        return Err(HeaderError::Malformed("VP8 first frame is not a keyframe"));
    }
    if d.get(3..6) != Some(&[0x9D, 0x01, 0x2A]) {
        return Err(HeaderError::Malformed("VP8 start code"));
    }
    Ok((u32::from(w & 0x3FFF), u32::from(h & 0x3FFF)))
}

fn vp8l_dims(d: &[u8]) -> Result<(u32, u32), HeaderError> {
    let (Some(&sig), Some(v)) = (d.first(), le32(d, 1)) else {
        return Err(HeaderError::Truncated("VP8L header"));
    };
    if sig != 0x2F {
        return Err(HeaderError::Malformed("VP8L signature"));
    }
    if v >> 29 != 0 {
        return Err(HeaderError::Malformed("VP8L version"));
    }
    Ok(((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1))
}

fn vp8x_dims(d: &[u8]) -> Result<(u32, u32), HeaderError> {
    let (Some(w), Some(h)) = (le24(d, 4), le24(d, 7)) else {
        return Err(HeaderError::Truncated("VP8X header"));
    };
    Ok((w.saturating_add(1), h.saturating_add(1)))
}

/// Dimensions of the first `VP8 ` / `VP8L` bitstream among the chunks in `d`
/// (an `ANMF` payload after its 16-byte frame header); `None` when there is
/// none. Other chunks (`ALPH`, unknown) are skipped by their sizes.
fn webp_frame_bitstream(d: &[u8]) -> Option<Result<(u32, u32), HeaderError>> {
    let mut pos = 0usize;
    loop {
        let fourcc = arr::<4>(d, pos)?;
        let size = to_usize(le32(d, pos.checked_add(4)?)?)?;
        let start = pos.checked_add(8)?;
        let head = d.get(start..).unwrap_or_default();
        match &fourcc {
            b"VP8 " => return Some(vp8_dims(head)),
            b"VP8L" => return Some(vp8l_dims(head)),
            _ => {}
        }
        pos = start.checked_add(size)?.checked_add(size & 1)?;
    }
}

/// Checks an `ANMF` payload against the canvas: frame header (offset and
/// size) within the canvas, and its bitstream the size of the frame.
fn webp_anmf(d: &[u8], canvas: (u32, u32)) -> Res {
    let (Some(x), Some(y), Some(fw), Some(fh)) = (le24(d, 0), le24(d, 3), le24(d, 6), le24(d, 9))
    else {
        return Err(HeaderError::Truncated("ANMF frame header"));
    };
    if d.len() < 16 {
        return Err(HeaderError::Truncated("ANMF frame header"));
    }
    // 24-bit values: none of this can overflow a u32.
    let (fw, fh) = (fw + 1, fh + 1);
    let (right, bottom) = (x * 2 + fw, y * 2 + fh);
    if let Some(dims) = d.get(16..).and_then(webp_frame_bitstream)
        && dims? != (fw, fh)
    {
        return Err(HeaderError::Malformed(
            "WebP frame bitstream size differs from its ANMF frame size",
        ));
    }
    if right > canvas.0 || bottom > canvas.1 {
        return Err(HeaderError::Malformed("WebP ANMF frame outside the canvas"));
    }
    Ok(())
}

fn walk_webp(b: &[u8], max_frames: u32, info: &mut ContainerInfo) -> Res {
    // "RIFF" <size> "WEBP": compare what is there, then require all 12 bytes.
    let sig_ok = b.iter().take(12).enumerate().all(|(i, c)| match i {
        0..4 => b"RIFF".get(i) == Some(c),
        8..12 => b"WEBP".get(i - 8) == Some(c),
        _ => true,
    });
    if !sig_ok {
        return Err(HeaderError::Malformed("RIFF/WEBP signature"));
    }
    let Some(riff_size) = le32(b, 4).filter(|_| b.len() >= 12) else {
        return Err(HeaderError::Truncated("RIFF header"));
    };
    let riff_end = to_usize(riff_size)
        .and_then(|s| s.checked_add(8))
        .unwrap_or(usize::MAX);
    info.trailing_bytes = tail(b, riff_end);
    let body = b.get(..riff_end.min(b.len())).unwrap_or(b);

    let cap = max_frames.saturating_add(1);
    let mut anmf = 0u32;
    let mut pos = 12usize;
    let mut first = true;
    // VP8X canvas, once read; whether the still image's bitstream was seen.
    let mut canvas: Option<(u32, u32)> = None;
    let mut still_seen = false;
    loop {
        let (Some(fourcc), Some(size)) = (
            arr::<4>(body, pos),
            pos.checked_add(4).and_then(|p| le32(body, p)),
        ) else {
            if first {
                return Err(HeaderError::Truncated("WebP first chunk"));
            }
            break;
        };
        let Some(start) = pos.checked_add(8) else {
            break;
        };
        let size = to_usize(size).unwrap_or(usize::MAX);
        let data = slice(body, start, size);
        if first {
            first = false;
            // The dimensions only need the start of the chunk.
            let head = body.get(start..).unwrap_or_default();
            let dims = match &fourcc {
                b"VP8 " => vp8_dims(head),
                b"VP8L" => vp8l_dims(head),
                b"VP8X" => vp8x_dims(head),
                _ => Err(HeaderError::Malformed("unknown first WebP chunk")),
            };
            match dims {
                Ok((w, h)) if w != 0 && h != 0 => {
                    info.width = w;
                    info.height = h;
                }
                Ok(_) => return Err(HeaderError::Malformed("WebP zero dimension")),
                Err(e) => return Err(e),
            }
            if &fourcc == b"VP8X" {
                canvas = Some((info.width, info.height));
            }
        } else {
            // Extended format: the decoder sizes its buffers from the
            // bitstreams, so they must agree with the canvas (and each ANMF
            // frame with its bitstream), as libwebp's demuxer requires.
            match (&fourcc, canvas) {
                (b"VP8 " | b"VP8L", Some(c)) if !still_seen && anmf == 0 => {
                    still_seen = true;
                    let head = body.get(start..).unwrap_or_default();
                    let dims = if &fourcc == b"VP8 " {
                        vp8_dims(head)
                    } else {
                        vp8l_dims(head)
                    };
                    if dims? != c {
                        return Err(HeaderError::Malformed(
                            "WebP bitstream size differs from the VP8X canvas",
                        ));
                    }
                }
                (b"ANMF", Some(c)) => {
                    let end = start.saturating_add(size).min(body.len());
                    webp_anmf(body.get(start..end).unwrap_or_default(), c)?;
                }
                _ => {}
            }
            match &fourcc {
                b"ANMF" => {
                    anmf = anmf.saturating_add(1).min(cap);
                    if anmf >= cap {
                        break; // over the limit: no need to look further
                    }
                }
                b"EXIF" => {
                    info.has_exif = true;
                    if let (None, Some(d)) = (&info.exif, data) {
                        info.exif = Some(d.strip_prefix(b"Exif\0\0").unwrap_or(d).to_vec());
                    }
                }
                b"ICCP" => {
                    info.has_icc = true;
                    if let (None, Some(d)) = (&info.icc, data) {
                        info.icc = Some(d.to_vec());
                    }
                }
                b"XMP " => info.has_xmp = true,
                _ => {}
            }
        }
        if data.is_none() {
            break; // truncated chunk: nothing after it can be found
        }
        let Some(next) = start
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
        else {
            break;
        };
        pos = next;
    }
    if anmf > 0 {
        info.frames = anmf;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// BMP
// ---------------------------------------------------------------------------

/// `'MBED'`: BITMAPV5HEADER colour space type for an embedded profile.
const BMP_PROFILE_EMBEDDED: u32 = 0x4D42_4544;

fn walk_bmp(b: &[u8], info: &mut ContainerInfo) -> Res {
    match b.get(..2) {
        Some(b"BM") => {}
        None if is_sig_prefix(b, b"BM") => return Err(HeaderError::Truncated("BMP signature")),
        _ => return Err(HeaderError::Malformed("BMP signature")),
    }
    let Some(dib) = le32(b, 14) else {
        return Err(HeaderError::Truncated("BMP DIB header"));
    };
    let (w, h) = match dib {
        12 => {
            let (Some(w), Some(h)) = (le16(b, 18), le16(b, 20)) else {
                return Err(HeaderError::Truncated("BMP core header"));
            };
            (u32::from(w), u32::from(h))
        }
        16.. => {
            let (Some(w), Some(h)) = (le32(b, 18), le32(b, 22)) else {
                return Err(HeaderError::Truncated("BMP info header"));
            };
            let (w, h) = (w.cast_signed(), h.cast_signed());
            if w <= 0 {
                return Err(HeaderError::Malformed("BMP width"));
            }
            // Negative height = top-down rows.
            (w.unsigned_abs(), h.unsigned_abs())
        }
        _ => return Err(HeaderError::Malformed("BMP DIB header size")),
    };
    if w == 0 || h == 0 {
        return Err(HeaderError::Malformed("BMP zero dimension"));
    }
    info.width = w;
    info.height = h;
    if dib >= 124 && le32(b, 14 + 56) == Some(BMP_PROFILE_EMBEDDED) {
        // Profile offset is relative to the start of the BITMAPV5HEADER.
        let profile = le32(b, 14 + 112)
            .and_then(to_usize)
            .and_then(|o| o.checked_add(14))
            .zip(le32(b, 14 + 116).and_then(to_usize))
            .and_then(|(o, n)| slice(b, o, n));
        if let Some(p) = profile.filter(|p| !p.is_empty()) {
            info.has_icc = true;
            info.icc = Some(p.to_vec());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// TIFF
// ---------------------------------------------------------------------------

fn walk_tiff(b: &[u8], info: &mut ContainerInfo) -> Res {
    let Some(t) = Tiff::parse(b) else {
        return Err(
            if is_sig_prefix(b, b"II*\0") || is_sig_prefix(b, b"MM\0*") {
                HeaderError::Truncated("TIFF signature")
            } else if b.starts_with(b"II+\0") || b.starts_with(b"MM\0+") {
                HeaderError::Malformed("BigTIFF is not supported")
            } else {
                HeaderError::Malformed("TIFF signature")
            },
        );
    };
    let Some(ifd) = t.first_ifd() else {
        return Err(HeaderError::Truncated("TIFF header"));
    };
    let Some((declared, present)) = t.entry_counts(ifd) else {
        return Err(HeaderError::Truncated("TIFF IFD"));
    };
    let (mut w, mut h) = (None, None);
    for e in t.entries(ifd) {
        match e.tag {
            256 => w = t.uint(&e),
            257 => h = t.uint(&e),
            259 => info.tiff_compression = t.uint(&e).and_then(|v| u16::try_from(v).ok()),
            274 => info.orientation = t.uint(&e).and_then(valid_orientation),
            34665 => info.has_exif = true,
            34853 => info.has_gps = true,
            34675 => {
                info.has_icc = true;
                info.icc = t.value(&e).map(<[u8]>::to_vec);
            }
            700 => info.has_xmp = true,
            33723 => info.has_iptc = true,
            34377 => info.has_photoshop = true,
            _ => {}
        }
    }
    if info.has_exif {
        let walk = ExifWalk::run(&t);
        info.has_gps |= walk.gps;
        info.has_makernote |= walk.makernote;
    }
    match (w, h) {
        (Some(w), Some(h)) if w != 0 && h != 0 => {
            info.width = w;
            info.height = h;
            Ok(())
        }
        (Some(_), Some(_)) => Err(HeaderError::Malformed("TIFF zero dimension")),
        _ if present < declared => Err(HeaderError::Truncated("TIFF IFD")),
        _ => Err(HeaderError::Malformed(
            "TIFF without ImageWidth/ImageLength",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    // ----- fixture builders -------------------------------------------------

    /// Appends a big-endian IFD (entries: tag, type, count, 4 value bytes).
    fn ifd_be(t: &mut Vec<u8>, entries: &[(u16, u16, u32, [u8; 4])]) {
        t.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for &(tag, typ, count, value) in entries {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&typ.to_be_bytes());
            t.extend_from_slice(&count.to_be_bytes());
            t.extend_from_slice(&value);
        }
        t.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Minimal big-endian EXIF TIFF: Orientation=6, Exif IFD with a MakerNote,
    /// GPS IFD with GPSVersionID.
    fn exif_tiff() -> Vec<u8> {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        // IFD0 at 8: 2 + 3*12 + 4 = 42 bytes -> Exif IFD at 50 (18 bytes),
        // GPS IFD at 68 (18 bytes), MakerNote data at 86.
        ifd_be(
            &mut t,
            &[
                (0x0112, 3, 1, [0, 6, 0, 0]),
                (0x8769, 4, 1, 50u32.to_be_bytes()),
                (0x8825, 4, 1, 68u32.to_be_bytes()),
            ],
        );
        ifd_be(&mut t, &[(0x927C, 7, 8, 86u32.to_be_bytes())]);
        ifd_be(&mut t, &[(0x0000, 1, 4, [2, 2, 0, 0])]);
        assert_eq!(t.len(), 86);
        t.extend_from_slice(b"MAKERNTE");
        t
    }

    fn jpeg_seg(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }

    fn sof0(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![8];
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[1, 1, 0x11, 0]);
        v
    }

    fn jpeg_scan_and_eoi(out: &mut Vec<u8>) {
        jpeg_seg(out, 0xDA, &[1, 1, 0, 0, 63, 0]);
        // Entropy data with a stuffed byte, a restart marker and fill bytes.
        out.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD9]);
    }

    fn jpeg_fixture() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&exif_tiff());
        jpeg_seg(&mut j, 0xE1, &app1);
        let mut xmp = XMP_NS.to_vec();
        xmp.extend_from_slice(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>");
        jpeg_seg(&mut j, 0xE1, &xmp);
        // Photoshop: a 0x0404 (IPTC) resource with an empty name and 5 bytes.
        let mut ps = PHOTOSHOP_SIG.to_vec();
        ps.extend_from_slice(b"8BIM\x04\x04\0\0\0\0\0\x05\x1c\x02\x00\x00\x00\0");
        // ... and an IPTC digest (0x0425), a "Photoshop" resource.
        ps.extend_from_slice(b"8BIM\x04\x25\0\0\0\0\0\x10");
        ps.extend_from_slice(&[0; 16]);
        jpeg_seg(&mut j, 0xED, &ps);
        jpeg_seg(&mut j, 0xFE, b"a comment");
        // ICC in two chunks, written out of order.
        let mut icc2 = ICC_SIG.to_vec();
        icc2.extend_from_slice(&[2, 2]);
        icc2.extend_from_slice(b"-WORLD");
        jpeg_seg(&mut j, 0xE2, &icc2);
        let mut icc1 = ICC_SIG.to_vec();
        icc1.extend_from_slice(&[1, 2]);
        icc1.extend_from_slice(b"HELLO");
        jpeg_seg(&mut j, 0xE2, &icc1);
        jpeg_seg(&mut j, 0xDB, &[0; 65]);
        jpeg_seg(&mut j, 0xC0, &sof0(8, 6));
        jpeg_scan_and_eoi(&mut j);
        j.extend_from_slice(b"TRAIL");
        j
    }

    #[test]
    fn jpeg_icc_chunks_are_placed_by_number_and_must_be_complete() {
        let (a, b, c): (&[u8], &[u8], &[u8]) = (b"AB", b"CD", b"E");
        assert_eq!(
            assemble_jpeg_icc(&[(3, 3, c), (1, 3, a), (2, 3, b)]).as_deref(),
            Some(&b"ABCDE"[..])
        );
        assert_eq!(assemble_jpeg_icc(&[(1, 1, a)]).as_deref(), Some(&b"AB"[..]));
        for bad in [
            &[][..],
            &[(1, 0, a)][..],
            &[(0, 1, a)][..],
            &[(2, 1, a)][..],
            &[(1, 2, a)][..],
            &[(1, 2, a), (1, 2, b)][..],
            &[(1, 2, a), (2, 3, b)][..],
            &[(1, 2, a), (2, 2, b), (3, 2, c)][..],
        ] {
            assert_eq!(assemble_jpeg_icc(bad), None, "{bad:?}");
        }
    }

    fn mpo_fixture() -> Vec<u8> {
        let mut mpf = b"MPF\0".to_vec();
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        ifd_be(
            &mut t,
            &[(0xB000, 7, 4, *b"0100"), (0xB001, 4, 1, 2u32.to_be_bytes())],
        );
        mpf.extend_from_slice(&t);
        let mut j = vec![0xFF, 0xD8];
        jpeg_seg(&mut j, 0xE2, &mpf);
        jpeg_seg(&mut j, 0xC0, &sof0(640, 480));
        jpeg_scan_and_eoi(&mut j);
        let mut second = vec![0xFF, 0xD8];
        jpeg_seg(&mut second, 0xC0, &sof0(640, 480));
        jpeg_scan_and_eoi(&mut second);
        j.extend_from_slice(&second);
        j
    }

    fn png_chunk(out: &mut Vec<u8>, typ: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(typ);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    fn png_ihdr(w: u32, h: u32) -> Vec<u8> {
        let mut p = PNG_SIG.to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png_chunk(&mut p, b"IHDR", &ihdr);
        p
    }

    fn png_fixture() -> Vec<u8> {
        let mut p = png_ihdr(17, 9);
        png_chunk(&mut p, b"eXIf", &exif_tiff());
        png_chunk(&mut p, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>");
        png_chunk(&mut p, b"tEXt", b"Comment\0hello");
        png_chunk(&mut p, b"iCCP", b"icc\0\0\x78\x9c\x01\x02");
        png_chunk(
            &mut p,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        png_chunk(&mut p, b"IEND", &[]);
        p.extend_from_slice(b"garbage");
        p
    }

    fn apng_fixture() -> Vec<u8> {
        let mut p = png_ihdr(100, 100);
        png_chunk(&mut p, b"acTL", &[0, 0, 0, 20, 0, 0, 0, 0]);
        png_chunk(&mut p, b"IDAT", &[0; 4]);
        png_chunk(&mut p, b"IEND", &[]);
        p
    }

    /// A 44-byte GIF like Pillow's decompression_bomb.gif: the logical screen
    /// is 32x32 but the first image descriptor reaches 65535x66601.
    fn gif_bomb() -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&[32, 0, 32, 0, 0xF1, 3, 0]);
        g.extend_from_slice(&[0, 0, 0, 0xFF, 0, 0, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0xFF]);
        g.extend_from_slice(&[0x21, 0xF9, 4, 0xC9, 0, 0, 0, 0]);
        g.push(0x2C);
        g.extend_from_slice(&0u16.to_le_bytes()); // left
        g.extend_from_slice(&0xFF00u16.to_le_bytes()); // top
        g.extend_from_slice(&0xFFFFu16.to_le_bytes()); // width
        g.extend_from_slice(&1321u16.to_le_bytes()); // height
        g.extend_from_slice(&[0, 0x8F]);
        assert_eq!(g.len(), 44);
        g
    }

    fn gif_fixture(frames: usize) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&[4, 0, 4, 0, 0x80, 0, 0]);
        g.extend_from_slice(&[0, 0, 0, 0xFF, 0xFF, 0xFF]);
        g.extend_from_slice(&[0x21, 0xFE, 3, b'h', b'i', b'!', 0]);
        g.extend_from_slice(&[0x21, 0xFF, 11]);
        g.extend_from_slice(b"XMP DataXMP");
        g.extend_from_slice(&[4, b'<', b'x', b'/', b'>', 0]);
        for _ in 0..frames {
            g.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
            g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 4, 0, 4, 0, 0]);
            g.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
        }
        g.push(0x3B);
        g.extend_from_slice(b"xyz");
        g
    }

    fn riff(chunks: &[(&[u8; 4], Vec<u8>)], trailing: &[u8]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (fourcc, data) in chunks {
            body.extend_from_slice(*fourcc);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(trailing);
        out
    }

    fn webp_anim_fixture() -> Vec<u8> {
        let mut vp8x = vec![0x0A, 0, 0, 0];
        vp8x.extend_from_slice(&99u32.to_le_bytes()[..3]);
        vp8x.extend_from_slice(&49u32.to_le_bytes()[..3]);
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&exif_tiff());
        riff(
            &[
                (b"VP8X", vp8x),
                (b"ANIM", vec![0; 6]),
                (b"ANMF", vec![0; 17]),
                (b"ANMF", vec![0; 16]),
                (b"EXIF", exif),
                (b"XMP ", b"<x/>".to_vec()),
            ],
            b"",
        )
    }

    fn webp_vp8l_fixture(w: u32, h: u32) -> Vec<u8> {
        let v = (w - 1) | ((h - 1) << 14) | (1 << 28);
        let mut d = vec![0x2F];
        d.extend_from_slice(&v.to_le_bytes());
        d.extend_from_slice(&[0; 5]);
        riff(&[(b"VP8L", d)], b"TT")
    }

    fn webp_vp8_fixture(w: u16, h: u16) -> Vec<u8> {
        let mut d = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        d.extend_from_slice(&w.to_le_bytes());
        d.extend_from_slice(&h.to_le_bytes());
        d.extend_from_slice(&[0; 8]);
        riff(&[(b"VP8 ", d)], b"")
    }

    /// `VP8 ` keyframe header (frame tag, start code, 14-bit sizes) + padding.
    fn vp8_data(w: u16, h: u16, len: usize) -> Vec<u8> {
        let mut d = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        d.extend_from_slice(&w.to_le_bytes());
        d.extend_from_slice(&h.to_le_bytes());
        d.resize(len.max(10), 0);
        d
    }

    fn vp8l_data(w: u32, h: u32) -> Vec<u8> {
        let v = (w - 1) | ((h - 1) << 14) | (1 << 28);
        let mut d = vec![0x2F];
        d.extend_from_slice(&v.to_le_bytes());
        d.extend_from_slice(&[0; 5]);
        d
    }

    fn vp8x_data(flags: u8, w: u32, h: u32) -> Vec<u8> {
        let mut d = vec![flags, 0, 0, 0];
        d.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        d.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        d
    }

    /// `ANMF` payload: frame at (2*`hx`, 2*`hy`) of size `w` x `h`, then the
    /// given sub-chunks.
    fn anmf_data(hx: u32, hy: u32, w: u32, h: u32, subs: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut d = Vec::new();
        for v in [hx, hy, w - 1, h - 1] {
            d.extend_from_slice(&v.to_le_bytes()[..3]);
        }
        d.extend_from_slice(&[100, 0, 0, 0]); // duration, flags
        for (fourcc, data) in subs {
            d.extend_from_slice(*fourcc);
            d.extend_from_slice(&(data.len() as u32).to_le_bytes());
            d.extend_from_slice(data);
            if data.len() % 2 == 1 {
                d.push(0);
            }
        }
        d
    }

    /// Animated WebP, 100x50 canvas: a 55x40 frame at (10, 4) with an ALPH
    /// chunk and a VP8 bitstream of `bw` x `bh`, then a 100x50 VP8L frame.
    fn webp_anim_bitstream_fixture(bw: u16, bh: u16) -> Vec<u8> {
        riff(
            &[
                (b"VP8X", vp8x_data(0x12, 100, 50)),
                (b"ANIM", vec![0; 6]),
                (
                    b"ANMF",
                    anmf_data(
                        5,
                        2,
                        55,
                        40,
                        &[(b"ALPH", vec![0; 5]), (b"VP8 ", vp8_data(bw, bh, 20))],
                    ),
                ),
                (
                    b"ANMF",
                    anmf_data(0, 0, 100, 50, &[(b"VP8L", vp8l_data(100, 50))]),
                ),
            ],
            b"",
        )
    }

    /// Single JPEG (8x8) with an MPF index claiming `claimed` images and no
    /// MP Entry list.
    fn jpeg_mpf_claiming(claimed: u32) -> Vec<u8> {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        ifd_be(
            &mut t,
            &[
                (0xB000, 7, 4, *b"0100"),
                (0xB001, 4, 1, claimed.to_be_bytes()),
            ],
        );
        let mut mpf = b"MPF\0".to_vec();
        mpf.extend_from_slice(&t);
        let mut j = vec![0xFF, 0xD8];
        jpeg_seg(&mut j, 0xE2, &mpf);
        jpeg_seg(&mut j, 0xC0, &sof0(8, 8));
        jpeg_scan_and_eoi(&mut j);
        j
    }

    /// MPO whose MP Entry list has `claimed` entries: entry 0 is the first
    /// image, entry `i` points at `targets[i - 1]` (an index into the images
    /// appended after the first; out of range = a bogus offset). `extra`
    /// complete images follow the first one.
    fn mpo_with_entries(claimed: u32, targets: &[usize], extra: usize) -> Vec<u8> {
        // SOI (2) + APP2 marker/length (4) + "MPF\0" (4): the MP offsets' base.
        let base = 10usize;
        let build = |offsets: &[u32]| {
            let mut t = b"MM\0*".to_vec();
            t.extend_from_slice(&8u32.to_be_bytes());
            // IFD at 8: 2 + 3 * 12 + 4 = 42 bytes -> entry list at 50.
            ifd_be(
                &mut t,
                &[
                    (0xB000, 7, 4, *b"0100"),
                    (0xB001, 4, 1, claimed.to_be_bytes()),
                    (0xB002, 7, 16 * claimed, 50u32.to_be_bytes()),
                ],
            );
            for i in 0..claimed as usize {
                t.extend_from_slice(&[0x00, 0x03, 0x00, 0x00]); // attribute
                t.extend_from_slice(&100u32.to_be_bytes()); // size (unchecked)
                let off = if i == 0 { 0 } else { offsets[i - 1] };
                t.extend_from_slice(&off.to_be_bytes());
                t.extend_from_slice(&[0; 4]);
            }
            let mut mpf = b"MPF\0".to_vec();
            mpf.extend_from_slice(&t);
            let mut j = vec![0xFF, 0xD8];
            jpeg_seg(&mut j, 0xE2, &mpf);
            jpeg_seg(&mut j, 0xC0, &sof0(640, 480));
            jpeg_scan_and_eoi(&mut j);
            let mut starts = Vec::new();
            for _ in 0..extra {
                starts.push(j.len());
                j.extend_from_slice(&[0xFF, 0xD8]);
                jpeg_seg(&mut j, 0xC0, &sof0(640, 480));
                jpeg_scan_and_eoi(&mut j);
            }
            (j, starts)
        };
        let placeholder = vec![0u32; targets.len()];
        let (_, starts) = build(&placeholder);
        let offsets: Vec<u32> = targets
            .iter()
            .map(|&k| starts.get(k).map_or(7, |&s| (s - base) as u32))
            .collect();
        build(&offsets).0
    }

    fn bmp_fixture(w: i32, h: i32) -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&[0; 28]);
        b
    }

    fn tiff_fixture() -> Vec<u8> {
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        let entries: [(u16, u16, u32, [u8; 4]); 5] = [
            (256, 3, 1, [0x40, 0x01, 0, 0]),    // 320
            (257, 4, 1, 200u32.to_le_bytes()),  // 200
            (274, 3, 1, [8, 0, 0, 0]),          // orientation 8
            (700, 1, 3, *b"<x>\0"),             // XMP
            (34675, 7, 6, 74u32.to_le_bytes()), // ICC at 74
        ];
        t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, typ, count, value) in entries {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&typ.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value);
        }
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(t.len(), 74);
        t.extend_from_slice(b"ICCICC");
        t
    }

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
        ]
    }

    // ----- JPEG ---------------------------------------------------------------

    #[test]
    fn jpeg_everything() {
        let j = jpeg_fixture();
        let i = read(&j, Kind::Jpeg, 10).unwrap();
        assert_eq!((i.width, i.height, i.frames), (8, 6, 1));
        assert!(i.has_exif && i.has_gps && i.has_makernote, "{i:?}");
        assert!(
            i.has_xmp && i.has_iptc && i.has_photoshop && i.has_icc && i.has_comment,
            "{i:?}"
        );
        assert!(!i.has_mpf && !i.icc_compressed);
        assert_eq!(i.orientation, Some(6));
        assert_eq!(i.exif.as_deref(), Some(exif_tiff().as_slice()));
        assert_eq!(i.icc.as_deref(), Some(&b"HELLO-WORLD"[..]));
        assert_eq!(i.trailing_bytes, 5);
    }

    #[test]
    fn jpeg_truncated_before_sof() {
        let j = jpeg_fixture();
        let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        for cut in [2, 3, 10, 40, sof - 1, sof, sof + 3] {
            assert!(
                matches!(
                    read(&j[..cut], Kind::Jpeg, 1),
                    Err(HeaderError::Truncated(_))
                ),
                "cut {cut}: {:?}",
                read(&j[..cut], Kind::Jpeg, 1)
            );
        }
    }

    #[test]
    fn jpeg_bad_headers() {
        assert!(matches!(
            read(b"\x89PNG", Kind::Jpeg, 1),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            read(b"", Kind::Jpeg, 1),
            Err(HeaderError::Truncated(_))
        ));
        let mut j = vec![0xFF, 0xD8];
        jpeg_seg(&mut j, 0xC0, &sof0(0, 6));
        assert!(matches!(
            read(&j, Kind::Jpeg, 1),
            Err(HeaderError::Malformed(_))
        ));
        // Incomplete ICC chunk set: has_icc but no bytes.
        let mut j = vec![0xFF, 0xD8];
        let mut icc = ICC_SIG.to_vec();
        icc.extend_from_slice(&[1, 2, 1, 2, 3]);
        jpeg_seg(&mut j, 0xE2, &icc);
        jpeg_seg(&mut j, 0xC2, &sof0(3, 4));
        let i = read(&j, Kind::Jpeg, 1).unwrap();
        assert!(i.has_icc && i.icc.is_none());
        assert_eq!((i.width, i.height), (3, 4));
    }

    #[test]
    fn mpo_counts_frames_and_trailing() {
        let j = mpo_fixture();
        assert_eq!(read(&j, Kind::Jpeg, 1).unwrap().frames, 2);
        let i = read(&j, Kind::Jpeg, 1).unwrap();
        assert_eq!((i.width, i.height, i.frames), (640, 480, 2));
        assert!(i.has_mpf);
        let first_eoi = j.windows(2).position(|w| w == [0xFF, 0xD9]).unwrap() + 2;
        assert_eq!(i.trailing_bytes, (j.len() - first_eoi) as u64);
    }

    #[test]
    fn mpf_count_is_clamped_to_images_present() {
        // A single image claiming 5000 (no MP Entry list): 1 frame.
        let j = jpeg_mpf_claiming(5000);
        assert_eq!(read(&j, Kind::Jpeg, 10).unwrap().frames, 1);
        let i = read(&j, Kind::Jpeg, 10).unwrap();
        assert_eq!((i.frames, i.has_mpf), (1, true));
        // ... and a second complete JPEG appended after the EOI: 2.
        let mut two = j.clone();
        two.extend_from_slice(&[0xFF, 0xD8]);
        jpeg_seg(&mut two, 0xC0, &sof0(8, 8));
        jpeg_scan_and_eoi(&mut two);
        assert_eq!(read(&two, Kind::Jpeg, 10).unwrap().frames, 2);
        // An incomplete second image does not count.
        let cut = &two[..two.len() - 3];
        assert_eq!(read(cut, Kind::Jpeg, 10).unwrap().frames, 1);
        // The claim is still an upper bound.
        let mut three = mpo_fixture();
        three.extend_from_slice(&two[j.len()..]);
        assert_eq!(read(&three, Kind::Jpeg, 10).unwrap().frames, 2);
    }

    #[test]
    fn mpf_entries_confirm_images() {
        // Every entry points at an SOI: trusted without walking the images.
        let j = mpo_with_entries(3, &[0, 1], 2);
        assert_eq!(read(&j, Kind::Jpeg, 10).unwrap().frames, 3);
        // Claims 3, only 2 images (one entry offset is bogus).
        let j = mpo_with_entries(3, &[0, 5], 1);
        assert_eq!(read(&j, Kind::Jpeg, 10).unwrap().frames, 2);
        // Claims 500 with every entry at the same SOI: duplicates count once.
        let j = mpo_with_entries(500, &[0; 499], 1);
        assert_eq!(read(&j, Kind::Jpeg, 1000).unwrap().frames, 2);
        // Claims 4, every entry bogus, but 2 images follow the first: 3.
        let j = mpo_with_entries(4, &[9, 9, 9], 2);
        assert_eq!(read(&j, Kind::Jpeg, 10).unwrap().frames, 3);
    }

    #[test]
    fn mpf_header_is_fast() {
        let j = jpeg_mpf_claiming(5000);
        let rounds = 2000;
        let start = Instant::now();
        for _ in 0..rounds {
            assert_eq!(read(&j, Kind::Jpeg, 10).unwrap().frames, 1);
        }
        let per_call = start.elapsed() / rounds;
        assert!(per_call.as_micros() < 200, "{per_call:?} per call");
    }

    #[test]
    fn invalid_exif_keeps_flag() {
        let mut j = vec![0xFF, 0xD8];
        jpeg_seg(&mut j, 0xE1, b"Exif\0\0\xFF\xFF\xFF\xFF\0\0\0\x08");
        jpeg_seg(&mut j, 0xC0, &sof0(2, 2));
        let i = read(&j, Kind::Jpeg, 1).unwrap();
        assert!(i.has_exif && !i.has_gps && i.orientation.is_none());
    }

    #[test]
    fn orientation_out_of_range_is_none() {
        for (v, want) in [(0u8, None), (9, None), (1, Some(1)), (8, Some(8))] {
            let mut t = b"MM\0*".to_vec();
            t.extend_from_slice(&8u32.to_be_bytes());
            ifd_be(&mut t, &[(0x0112, 3, 1, [0, v, 0, 0])]);
            let mut info = ContainerInfo::default();
            analyze_exif(&t, &mut info);
            assert_eq!(info.orientation, want, "value {v}");
            assert!(info.has_exif && !info.has_gps);
        }
    }

    /// Overlapping child IFDs would make an unbounded walk quadratic in the
    /// payload; the walk stops at its budget, and the orientation (one lookup
    /// in the first IFD) is still read.
    #[test]
    fn hostile_exif_is_bounded() {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        let n = 5000u32;
        let region = 8 + 2 + 12 * n + 4;
        let mut entries = vec![(0x0112, 3, 1, [0, 3, 0, 0])];
        for i in 0..n - 1 {
            entries.push((0x8769, 4, 1, (region + 2 * i).to_be_bytes()));
        }
        ifd_be(&mut t, &entries);
        t.resize(t.len() + 60_000, 0x01);
        let start = Instant::now();
        let mut info = ContainerInfo::default();
        analyze_exif(&t, &mut info);
        assert!(info.has_exif && info.orientation == Some(3));
        assert!(start.elapsed().as_secs() < 2);
    }

    // ----- PNG ----------------------------------------------------------------

    #[test]
    fn png_everything() {
        let p = png_fixture();
        let i = read(&p, Kind::Png, 1).unwrap();
        assert_eq!((i.width, i.height, i.frames), (17, 9, 1));
        assert!(i.has_exif && i.has_gps && i.has_makernote && i.has_xmp && i.has_comment);
        assert!(i.has_icc && i.icc_compressed);
        assert_eq!(i.icc.as_deref(), Some(&b"\x78\x9c\x01\x02"[..]));
        assert!(!i.has_iptc && !i.has_photoshop);
        assert_eq!(i.orientation, Some(6));
        assert_eq!(i.trailing_bytes, 7);
    }

    #[test]
    fn png_bad_ihdr_crc() {
        let mut p = png_fixture();
        p[29] ^= 0x55;
        assert_eq!(
            read(&p, Kind::Png, 1),
            Err(HeaderError::Malformed("PNG IHDR CRC mismatch"))
        );
        let mut sig = png_fixture();
        sig[1] = b'p';
        assert!(matches!(
            read(&sig, Kind::Png, 1),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            read(&PNG_SIG, Kind::Png, 1),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(
            read(&PNG_SIG[..3], Kind::Png, 1),
            Err(HeaderError::Truncated(_))
        ));
    }

    #[test]
    fn apng_frames() {
        let p = apng_fixture();
        assert_eq!(read(&p, Kind::Png, 1).unwrap().frames, 20);
    }

    // ----- GIF ----------------------------------------------------------------

    #[test]
    fn gif_bomb_header_is_instant() {
        let g = gif_bomb();
        let start = Instant::now();
        let rounds = 1000u32;
        for _ in 0..rounds {
            let h = read(&g, Kind::Gif, 1).unwrap();
            assert_eq!((h.width, h.height), (65535, 66601));
        }
        let per_call = start.elapsed() / rounds;
        assert!(per_call.as_micros() < 1000, "{per_call:?} per call");
    }

    #[test]
    fn gif_three_frames() {
        let g = gif_fixture(3);
        let i = read(&g, Kind::Gif, 100).unwrap();
        assert_eq!((i.width, i.height, i.frames), (4, 4, 3));
        assert_eq!(i.frames, 3);
        assert!(i.has_comment && i.has_xmp && !i.has_exif);
        assert_eq!(i.trailing_bytes, 3);
        // Counting stops at max_frames + 1.
        assert_eq!(read(&g, Kind::Gif, 1).unwrap().frames, 2);
        assert_eq!(read(&g, Kind::Gif, 0).unwrap().frames, 1);
        assert_eq!(read(&gif_fixture(50), Kind::Gif, 10).unwrap().frames, 11);
        // No image at all.
        assert!(matches!(
            read(&gif_fixture(0), Kind::Gif, 1),
            Err(HeaderError::Malformed(_))
        ));
    }

    // ----- WebP ---------------------------------------------------------------

    #[test]
    fn webp_animated_with_exif() {
        let w = webp_anim_fixture();
        let i = read(&w, Kind::Webp, 10).unwrap();
        assert_eq!((i.width, i.height, i.frames), (100, 50, 2));
        assert!(i.has_exif && i.has_gps && i.has_xmp && !i.has_icc);
        assert_eq!(i.exif.as_deref(), Some(exif_tiff().as_slice()));
        assert_eq!(i.orientation, Some(6));
        assert_eq!(i.trailing_bytes, 0);
        assert_eq!(read(&w, Kind::Webp, 0).unwrap().frames, 1);
    }

    #[test]
    fn webp_simple_dims() {
        let l = webp_vp8l_fixture(300, 200);
        let h = read(&l, Kind::Webp, 1).unwrap();
        assert_eq!((h.width, h.height, h.frames), (300, 200, 1));
        assert_eq!(read(&l, Kind::Webp, 1).unwrap().trailing_bytes, 2);
        let l = webp_vp8l_fixture(16384, 1);
        assert_eq!(
            read(&l, Kind::Webp, 1).map(|h| (h.width, h.height)),
            Ok((16384, 1))
        );
        let v = webp_vp8_fixture(13, 1);
        assert_eq!(
            read(&v, Kind::Webp, 1).map(|h| (h.width, h.height)),
            Ok((13, 1))
        );
        assert!(matches!(
            read(b"RIFF\0\0", Kind::Webp, 1),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(
            read(b"RIFX\0\0", Kind::Webp, 1),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            read(&l[..22], Kind::Webp, 1),
            Err(HeaderError::Truncated(_))
        ));
    }

    #[test]
    fn webp_still_bitstream_must_match_canvas() {
        // The reviewer's 86-byte file: 1x1 VP8X canvas, VP8 says 16383x16383.
        let w = riff(
            &[
                (b"VP8X", vp8x_data(0, 1, 1)),
                (b"VP8 ", vp8_data(16383, 16383, 48)),
            ],
            b"",
        );
        assert_eq!(w.len(), 86);
        assert!(matches!(
            read(&w, Kind::Webp, 1),
            Err(HeaderError::Malformed(_))
        ));
        // VP8L smaller than the canvas: also malformed.
        let w = riff(
            &[
                (b"VP8X", vp8x_data(0, 300, 200)),
                (b"VP8L", vp8l_data(300, 199)),
            ],
            b"",
        );
        assert!(matches!(
            read(&w, Kind::Webp, 1),
            Err(HeaderError::Malformed(_))
        ));
        // Consistent still images (ALPH and ICCP before the bitstream) pass.
        let w = riff(
            &[
                (b"VP8X", vp8x_data(0x30, 40, 30)),
                (b"ICCP", b"icc".to_vec()),
                (b"ALPH", vec![0; 3]),
                (b"VP8 ", vp8_data(40, 30, 20)),
            ],
            b"",
        );
        let h = read(&w, Kind::Webp, 1).unwrap();
        assert_eq!((h.width, h.height, h.frames), (40, 30, 1));
        let w = riff(
            &[
                (b"VP8X", vp8x_data(0, 300, 200)),
                (b"VP8L", vp8l_data(300, 200)),
            ],
            b"",
        );
        let h = read(&w, Kind::Webp, 1).unwrap();
        assert_eq!((h.width, h.height, h.frames), (300, 200, 1));
        // Truncated inside the bitstream header.
        assert!(matches!(
            read(&w[..w.len() - 8], Kind::Webp, 1),
            Err(HeaderError::Truncated(_))
        ));
    }

    #[test]
    fn webp_anmf_frames_are_checked() {
        let ok = webp_anim_bitstream_fixture(55, 40);
        let h = read(&ok, Kind::Webp, 10).unwrap();
        assert_eq!((h.width, h.height, h.frames), (100, 50, 2));
        assert_eq!(h.trailing_bytes, 0);
        // Compressed width 51 in a 55-wide frame (the rotating-squares case).
        let bad = webp_anim_bitstream_fixture(51, 40);
        assert!(matches!(
            read(&bad, Kind::Webp, 10),
            Err(HeaderError::Malformed(_))
        ));
        // Bitstream larger than its frame.
        let big = webp_anim_bitstream_fixture(16383, 16383);
        assert!(matches!(
            read(&big, Kind::Webp, 10),
            Err(HeaderError::Malformed(_))
        ));
        // A frame that sticks out of the canvas (offset 90 + width 20 > 100).
        let out = riff(
            &[
                (b"VP8X", vp8x_data(0x02, 100, 50)),
                (b"ANIM", vec![0; 6]),
                (
                    b"ANMF",
                    anmf_data(45, 0, 20, 10, &[(b"VP8L", vp8l_data(20, 10))]),
                ),
            ],
            b"",
        );
        assert!(matches!(
            read(&out, Kind::Webp, 10),
            Err(HeaderError::Malformed(_))
        ));
        // ... and one that fits exactly.
        let fits = riff(
            &[
                (b"VP8X", vp8x_data(0x02, 100, 50)),
                (
                    b"ANMF",
                    anmf_data(40, 20, 20, 10, &[(b"VP8L", vp8l_data(20, 10))]),
                ),
            ],
            b"",
        );
        assert_eq!(
            read(&fits, Kind::Webp, 10).map(|h| (h.width, h.height, h.frames)),
            Ok((100, 50, 1))
        );
        // A bad second frame is caught too (while frames are walked).
        let second_bad = riff(
            &[
                (b"VP8X", vp8x_data(0x02, 100, 50)),
                (
                    b"ANMF",
                    anmf_data(0, 0, 20, 10, &[(b"VP8L", vp8l_data(20, 10))]),
                ),
                (
                    b"ANMF",
                    anmf_data(0, 0, 20, 10, &[(b"VP8L", vp8l_data(21, 10))]),
                ),
            ],
            b"",
        );
        assert!(matches!(
            read(&second_bad, Kind::Webp, 10),
            Err(HeaderError::Malformed(_))
        ));
        // A short ANMF header.
        let short = riff(
            &[(b"VP8X", vp8x_data(0x02, 100, 50)), (b"ANMF", vec![0; 9])],
            b"",
        );
        assert!(read(&short, Kind::Webp, 10).is_err());
    }

    /// The reviewer's corpus mutation: rotating-squares.webp with its first
    /// frame's compressed width changed from 55 to 51 (the image-webp
    /// decoder panics on it). Skipped without the corpus.
    #[test]
    fn webp_corpus_frame_width_mismatch() {
        let root = match std::env::var_os("IMGEST_CORPUS") {
            Some(d) => std::path::PathBuf::from(d),
            None => {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
            }
        };
        let Ok(mut bytes) = std::fs::read(root.join("webp/rotating-squares.webp")) else {
            println!("SKIPPED: no corpus at {}", root.display());
            return;
        };
        assert!(read(&bytes, Kind::Webp, 10_000).is_ok());
        assert_eq!(bytes[0x8A], 0x37);
        bytes[0x8A] = 0x33;
        assert!(matches!(
            read(&bytes, Kind::Webp, 10_000),
            Err(HeaderError::Malformed(_))
        ));
    }

    // ----- BMP / TIFF ---------------------------------------------------------

    #[test]
    fn bmp_dims() {
        let h = read(&bmp_fixture(7, -5), Kind::Bmp, 1).unwrap();
        assert_eq!((h.width, h.height), (7, 5));
        assert!(matches!(
            read(&bmp_fixture(-7, 5), Kind::Bmp, 1),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            read(&bmp_fixture(7, 5)[..20], Kind::Bmp, 1),
            Err(HeaderError::Truncated(_))
        ));
        let mut core = b"BM".to_vec();
        core.extend_from_slice(&[0; 12]);
        core.extend_from_slice(&12u32.to_le_bytes());
        core.extend_from_slice(&[3, 0, 2, 0, 1, 0, 24, 0]);
        let h = read(&core, Kind::Bmp, 1).unwrap();
        assert_eq!((h.width, h.height), (3, 2));
    }

    #[test]
    fn tiff_tags() {
        let t = tiff_fixture();
        let i = read(&t, Kind::Tiff, 1).unwrap();
        assert_eq!((i.width, i.height, i.frames), (320, 200, 1));
        assert_eq!(i.orientation, Some(8));
        assert!(i.has_xmp && i.has_icc && !i.has_exif && !i.has_gps && i.exif.is_none());
        assert_eq!(i.icc.as_deref(), Some(&b"ICCICC"[..]));
        assert!(matches!(
            read(&t[..30], Kind::Tiff, 1),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(
            read(b"II+\0\x08\0\0\0", Kind::Tiff, 1),
            Err(HeaderError::Malformed(_))
        ));
    }

    // ----- robustness ---------------------------------------------------------

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
