//! WebP: RIFF chunks (simple VP8/VP8L, extended VP8X with ICCP/EXIF/XMP and ANMF frames).

use super::*;

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

pub(super) fn walk_webp(b: &[u8], max_frames: u32, info: &mut ContainerInfo) -> Res {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::container::exif::tests::exif_tiff;

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

    pub(in crate::container) fn webp_anim_fixture() -> Vec<u8> {
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

    pub(in crate::container) fn webp_vp8l_fixture(w: u32, h: u32) -> Vec<u8> {
        let v = (w - 1) | ((h - 1) << 14) | (1 << 28);
        let mut d = vec![0x2F];
        d.extend_from_slice(&v.to_le_bytes());
        d.extend_from_slice(&[0; 5]);
        riff(&[(b"VP8L", d)], b"TT")
    }

    pub(in crate::container) fn webp_vp8_fixture(w: u16, h: u16) -> Vec<u8> {
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
    pub(in crate::container) fn webp_anim_bitstream_fixture(bw: u16, bh: u16) -> Vec<u8> {
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
}
