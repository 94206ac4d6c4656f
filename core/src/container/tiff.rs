//! TIFF: the first IFD (size, compression) and the metadata tags.

use super::exif::{ExifWalk, Tiff, valid_orientation};
use super::*;

pub(super) fn walk_tiff(b: &[u8], info: &mut ContainerInfo) -> Res {
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
pub(super) mod tests {
    use super::*;

    pub(in crate::container) fn tiff_fixture() -> Vec<u8> {
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
}
