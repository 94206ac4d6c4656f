//! BMP: file and info headers (size, embedded ICC profile).

use super::*;

/// `'MBED'`: BITMAPV5HEADER colour space type for an embedded profile.
const BMP_PROFILE_EMBEDDED: u32 = 0x4D42_4544;

pub(super) fn walk_bmp(b: &[u8], info: &mut ContainerInfo) -> Res {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::container) fn bmp_fixture(w: i32, h: i32) -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&[0; 28]);
        b
    }

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
}
