//! PNG: chunks (IHDR with its CRC, acTL frames, iCCP, eXIf, text metadata).

use super::*;

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

pub(super) fn walk_png(b: &[u8], info: &mut ContainerInfo) -> Res {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::container::exif::tests::exif_tiff;

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

    pub(in crate::container) fn png_fixture() -> Vec<u8> {
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

    pub(in crate::container) fn apng_fixture() -> Vec<u8> {
        let mut p = png_ihdr(100, 100);
        png_chunk(&mut p, b"acTL", &[0, 0, 0, 20, 0, 0, 0, 0]);
        png_chunk(&mut p, b"IDAT", &[0; 4]);
        png_chunk(&mut p, b"IEND", &[]);
        p
    }

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
}
