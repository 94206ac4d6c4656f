//! Stage: apply the EXIF orientation (1–8) so the pixels are upright.

use image::RgbaImage;
use image::imageops::{flip_horizontal_in_place, flip_vertical_in_place, rotate180_in_place};

/// Rotates/flips `image` as EXIF orientation `orientation` (1–8) prescribes. Other values leave
/// it as it is. (On the RGBA buffer directly: one pixel type, not `DynamicImage`'s twelve.)
pub fn apply(mut image: RgbaImage, orientation: u8) -> RgbaImage {
    match orientation {
        2 => flip_horizontal_in_place(&mut image),
        3 => rotate180_in_place(&mut image),
        4 => flip_vertical_in_place(&mut image),
        5..=8 => image = transpose(&image, orientation),
        _ => {}
    }
    image
}

/// Orientations 5–8 swap the axes: 5 transposes, 6 turns 90° clockwise, 7 transverses,
/// 8 turns 90° counter-clockwise. Walks the source in 64×64 tiles so that the writes, which
/// stride through the destination, stay in cache (a per-pixel `rotate90` over a 12-MP photo
/// misses on every write).
fn transpose(image: &RgbaImage, orientation: u8) -> RgbaImage {
    const TILE: usize = 64;
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (src, _) = image.as_raw().as_chunks::<4>();
    let mut dst = vec![[0u8; 4]; w * h];
    // Destination is h wide and w tall: pixel (x, y) of the source lands on row `r`, column `c`.
    let flip_rows = matches!(orientation, 7 | 8);
    let flip_cols = matches!(orientation, 6 | 7);
    for y0 in (0..h).step_by(TILE) {
        for x0 in (0..w).step_by(TILE) {
            for y in y0..(y0 + TILE).min(h) {
                let c = if flip_cols { h - 1 - y } else { y };
                let x1 = (x0 + TILE).min(w);
                for (x, &px) in (x0..x1).zip(&src[y * w + x0..y * w + x1]) {
                    let r = if flip_rows { w - 1 - x } else { x };
                    dst[r * h + c] = px;
                }
            }
        }
    }
    RgbaImage::from_raw(h as u32, w as u32, dst.into_flattened())
        .expect("a w×h buffer is h×w pixels")
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
