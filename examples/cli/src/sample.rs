//! The built-in sample image: generated in code, so the repository ships no third-party photo.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// A 1200×800 sunrise gradient with a dark "sun", stored sideways with EXIF orientation 6
/// (rotate 90° clockwise to view) and a GPS position, as phone cameras write them.
pub fn jpeg() -> Vec<u8> {
    // Stored sideways: 800 wide, 1200 tall; upright it is 1200×800.
    let (w, h) = (800u32, 1200u32);
    let img = RgbImage::from_fn(w, h, |x, y| {
        // Upright coordinates (u, v) of stored pixel (x, y) under orientation 6.
        let (u, v) = (h - 1 - y, x);
        let t = v as f32 / (w - 1) as f32; // 0 at the top of the upright image
        let sky = [
            (30.0 + 200.0 * t) as u8,
            (60.0 + 110.0 * t) as u8,
            (140.0 - 60.0 * t) as u8,
        ];
        let (du, dv) = (u as f32 - 800.0, v as f32 - 520.0);
        if du * du + dv * dv < 110.0 * 110.0 {
            image::Rgb([250, 210, 90])
        } else {
            image::Rgb(sky)
        }
    });
    let mut out = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut out, 90);
    enc.set_exif_metadata(exif()).expect("JPEG takes EXIF");
    enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8)
        .expect("in-memory JPEG encoding");
    out
}

/// Little-endian TIFF: IFD0 {Orientation = 6, GPSInfo → GPS IFD {GPSLatitudeRef = "N"}}.
fn exif() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    for (tag, kind, count, value) in [(0x0112u16, 3u16, 1u32, 6u32), (0x8825, 4, 1, 38)] {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at offset 38.
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0001u16.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&2u32.to_le_bytes());
    t.extend_from_slice(b"N\0\0\0");
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_sample_matches_the_generator() {
        let committed = include_bytes!("../sample/sunrise.jpg");
        assert!(
            committed[..] == super::jpeg()[..],
            "sample/sunrise.jpg is stale: regenerate with `imgest --write-sample examples/cli/sample/sunrise.jpg`"
        );
    }

    #[test]
    fn sample_is_oriented_and_stripped() {
        let out = imgest::process(&super::jpeg(), &imgest::Options::default()).unwrap();
        assert_eq!(out.source.orientation, 6);
        assert_eq!((out.source.width, out.source.height), (1200, 800));
        assert!(out.source.metadata.exif && out.source.metadata.gps);
        let thumb = out.variant("thumbnail").unwrap();
        assert_eq!((thumb.width, thumb.height), (150, 100));
    }
}
