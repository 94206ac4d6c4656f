//! A ThumbHash placeholder: a ~25-byte blurry preview to show while the real image loads.

use base64::Engine;
use image::RgbaImage;

use crate::budget::Budget;
use crate::color::SrgbTransform;
use crate::error::Error;
use crate::frame::Frame;
use crate::orient;
use crate::resize::{Resizer, plan};

/// Computes the ThumbHash of `frame` (resized to fit 100×100 first, as ThumbHash requires) and
/// returns it base64-encoded (standard alphabet, padded).
///
/// A frame still in its source colour space and orientation is resized first, then converted
/// with `to_srgb` and turned upright by EXIF `orientation` (1 for an upright one).
pub fn thumbhash(
    frame: &Frame,
    to_srgb: Option<&SrgbTransform>,
    orientation: u8,
    resizer: &mut Resizer,
    has_alpha: bool,
) -> Result<String, Error> {
    let budget = Budget::NONE;
    thumbhash_within(frame, to_srgb, orientation, resizer, has_alpha, &budget)
}

/// [`thumbhash`], checking `budget` between the bands of the resize.
pub(crate) fn thumbhash_within(
    frame: &Frame,
    to_srgb: Option<&SrgbTransform>,
    orientation: u8,
    resizer: &mut Resizer,
    has_alpha: bool,
    budget: &Budget<'_>,
) -> Result<String, Error> {
    let (fw, fh) = frame.dimensions();
    // The 100×100 box is square, so planning before or after turning gives the same size.
    let (w, h) = plan(fw, fh, Some(100), Some(100));
    let mut small = resizer.resize_within(frame, w, h, has_alpha, false, budget)?;
    if let Some(t) = to_srgb {
        t.apply(&mut small);
    }
    Ok(encode(&orient::apply(small, orientation).into_rgba()))
}

fn encode(small: &RgbaImage) -> String {
    let (w, h) = small.dimensions();
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, small.as_raw());
    base64::engine::general_purpose::STANDARD.encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn decodes_to_the_average_colour() {
        let img = RgbaImage::from_pixel(640, 480, image::Rgba([200, 40, 40, 255]));
        let s = thumbhash(&Frame::from(img), None, 1, &mut Resizer::new(), false).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&bytes).unwrap();
        assert!((r - 200.0 / 255.0).abs() < 0.05, "{r}");
        assert!((g - 40.0 / 255.0).abs() < 0.05, "{g}");
        assert!((b - 40.0 / 255.0).abs() < 0.05, "{b}");
        assert!((a - 1.0).abs() < 0.01);
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&bytes).unwrap();
        assert!((ratio - 4.0 / 3.0).abs() < 0.2, "{ratio}");
    }
}
