//! Stage: apply the EXIF orientation (1–8) so the pixels are upright.

use image::RgbaImage;
use image::imageops::{
    flip_horizontal_in_place, flip_vertical_in_place, rotate90, rotate180_in_place, rotate270,
};

/// Rotates/flips `image` as EXIF orientation `orientation` (1–8) prescribes. Other values leave
/// it as it is. (On the RGBA buffer directly: one pixel type, not `DynamicImage`'s twelve.)
pub fn apply(mut image: RgbaImage, orientation: u8) -> RgbaImage {
    match orientation {
        2 => flip_horizontal_in_place(&mut image),
        3 => rotate180_in_place(&mut image),
        4 => flip_vertical_in_place(&mut image),
        5 => {
            image = rotate90(&image);
            flip_horizontal_in_place(&mut image);
        }
        6 => image = rotate90(&image),
        7 => {
            image = rotate270(&image);
            flip_horizontal_in_place(&mut image);
        }
        8 => image = rotate270(&image),
        _ => {}
    }
    image
}

/// The size after orientation: orientations 5–8 swap width and height.
pub fn oriented_size(width: u32, height: u32, orientation: u8) -> (u32, u32) {
    if (5..=8).contains(&orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image whose pixels are numbered 0..6 in the red channel.
    fn numbered() -> RgbaImage {
        RgbaImage::from_fn(3, 2, |x, y| image::Rgba([(y * 3 + x) as u8, 0, 0, 255]))
    }

    fn reds(img: &RgbaImage) -> (u32, u32, Vec<u8>) {
        (
            img.width(),
            img.height(),
            img.pixels().map(|p| p.0[0]).collect(),
        )
    }

    #[test]
    fn all_eight_orientations() {
        // Source:   0 1 2
        //           3 4 5
        type Expected = (u32, u32, Vec<u8>);
        let cases: [(u8, Expected); 8] = [
            (1, (3, 2, vec![0, 1, 2, 3, 4, 5])),
            (2, (3, 2, vec![2, 1, 0, 5, 4, 3])),
            (3, (3, 2, vec![5, 4, 3, 2, 1, 0])),
            (4, (3, 2, vec![3, 4, 5, 0, 1, 2])),
            (5, (2, 3, vec![0, 3, 1, 4, 2, 5])),
            (6, (2, 3, vec![3, 0, 4, 1, 5, 2])),
            (7, (2, 3, vec![5, 2, 4, 1, 3, 0])),
            (8, (2, 3, vec![2, 5, 1, 4, 0, 3])),
        ];
        for (o, want) in cases {
            assert_eq!(reds(&apply(numbered(), o)), want, "orientation {o}");
            assert_eq!(oriented_size(3, 2, o), (want.0, want.1));
        }
        assert_eq!(reds(&apply(numbered(), 0)).2, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(reds(&apply(numbered(), 9)).2, vec![0, 1, 2, 3, 4, 5]);
    }
}
