//! GIF: logical screen, extension and image blocks, frames counted up to the limit.

use super::*;

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

pub(super) fn walk_gif(b: &[u8], max_frames: u32, info: &mut ContainerInfo) -> Res {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Instant;

    /// A 44-byte GIF like Pillow's decompression_bomb.gif: the logical screen
    /// is 32x32 but the first image descriptor reaches 65535x66601.
    pub(in crate::container) fn gif_bomb() -> Vec<u8> {
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

    pub(in crate::container) fn gif_fixture(frames: usize) -> Vec<u8> {
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
}
