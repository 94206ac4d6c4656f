//! JPEG: segments up to the first scan header (SOF, APPn metadata, ICC chunks, MPF), then
//! the scans and the images after the first (MPO frames, trailing bytes).

use super::exif::Tiff;
use super::*;

const XMP_NS: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXT_NS: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const ICC_SIG: &[u8] = b"ICC_PROFILE\0";
const PHOTOSHOP_SIG: &[u8] = b"Photoshop 3.0\0";

/// Finds the next marker at or after `pos`: returns the marker code and the
/// position just after it. Bytes that are not a marker are skipped (like
/// libjpeg's "extraneous bytes before marker" recovery).
fn next_marker(b: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        let ff = find_ff(b, pos)?;
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

/// The position of the first 0xFF byte at or after `pos`. Entropy-coded data holds one about
/// every 200 bytes (stuffed 0xFF00 pairs), so the search runs eight bytes at a time with no
/// per-call setup: 0xFF bytes are the zero bytes of the inverted word, and the lowest bit the
/// zero-byte test sets is exact (a false hit can only follow a true one).
fn find_ff(b: &[u8], pos: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let rest = b.get(pos..)?;
    let mut words = rest.chunks_exact(8);
    let mut at = pos;
    for w in &mut words {
        let inv = !u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let hit = inv.wrapping_sub(LO) & !inv & HI;
        if hit != 0 {
            return at.checked_add(hit.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = words.remainder();
    at.checked_add(tail.iter().position(|&x| x == 0xFF)?)
}

/// Skips entropy-coded data starting at `pos`; returns the position of the
/// 0xFF that starts the next real marker (not a stuffed 0xFF00 or RSTn).
fn skip_entropy(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let ff = find_ff(b, pos)?;
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

/// A JPEG's first scan restarted at a restart marker, as a stream of its own (for a decoder
/// that decodes only the rows below the marker): `b`'s segments up to the end of the scan
/// header, with the frame's height less `rows_above`, then the data after the `markers`-th
/// restart marker. `None` unless the frame is baseline or extended sequential (Huffman
/// coded), the height stays above zero, and the markers before the cut come in their
/// sequence (RST0 to RST7 over and over; a marker lost or renumbered by corruption shows).
#[cfg(feature = "rayon")]
pub(crate) fn restart_stream(b: &[u8], rows_above: u32, markers: u64) -> Option<Vec<u8>> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let (mut pos, mut height_at) = (2usize, None);
    let scan = loop {
        let (code, after) = next_marker(b, pos)?;
        if matches!(code, 0xD8 | 0xD0..=0xD7 | 0x01) {
            pos = after;
            continue;
        }
        let end = after.checked_add(usize::from(be16(b, after)?))?;
        if end > b.len() {
            return None;
        }
        match code {
            0xC0 | 0xC1 => height_at = Some(after.checked_add(3)?),
            0xDA => break end,
            0xD9 => return None,
            c if is_sof(c) => return None,
            _ => {}
        }
        pos = end;
    };
    let height_at = height_at?;
    let height = be16(b, height_at)?.checked_sub(u16::try_from(rows_above).ok()?)?;
    if height == 0 {
        return None;
    }
    let (mut at, mut seen) = (scan, 0u64);
    while seen < markers {
        let ff = find_ff(b, at)?;
        match *b.get(ff.checked_add(1)?)? {
            // A stuffed zero, or a fill byte before a marker.
            0x00 | 0xFF => at = ff + 1,
            m @ 0xD0..=0xD7 if u64::from(m - 0xD0) == seen % 8 => {
                seen += 1;
                at = ff + 2;
            }
            _ => return None,
        }
    }
    let mut out = Vec::with_capacity(scan + (b.len() - at));
    out.extend_from_slice(&b[..scan]);
    out[height_at..height_at + 2].copy_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&b[at..]);
    Some(out)
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
pub(super) fn walk_jpeg(b: &[u8], info: &mut ContainerInfo) -> Res {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::container::exif::tests::{exif_tiff, ifd_be};
    use std::time::Instant;

    #[test]
    fn find_ff_agrees_with_a_byte_search() {
        // Every placement of 0xFF (and of its neighbours 0xFE, 0x7F, 0x80, which a wrong bit
        // trick would confuse with it) around the 8-byte word boundaries, at every start.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..40usize {
            for round in 0..200 {
                let mut b = vec![0u8; len];
                for x in &mut b {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    *x = [0xFF, 0xFE, 0x7F, 0x80, 0x00, 0x01, (seed >> 32) as u8]
                        [(seed % 7) as usize];
                    if round % 3 == 0 && *x == 0xFF {
                        *x = 0x12;
                    }
                }
                for pos in 0..=len + 1 {
                    let want = b
                        .get(pos..)
                        .and_then(|r| r.iter().position(|&x| x == 0xFF))
                        .map(|p| p + pos);
                    assert_eq!(find_ff(&b, pos), want, "{b:02x?} from {pos}");
                }
            }
        }
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

    pub(in crate::container) fn jpeg_fixture() -> Vec<u8> {
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

    pub(in crate::container) fn mpo_fixture() -> Vec<u8> {
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
    pub(in crate::container) fn mpo_with_entries(
        claimed: u32,
        targets: &[usize],
        extra: usize,
    ) -> Vec<u8> {
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
}
