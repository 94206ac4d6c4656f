//! Stage: plan the output size (a pure function) and resample with `fast_image_resize`.
//!
//! Resampling is Lanczos3 (SIMD where the CPU has it), with alpha premultiplied during
//! resampling so transparent pixels never bleed dark fringes. With `linear_light` the samples are
//! converted from sRGB to 16-bit linear light before resampling and back afterwards.

use fast_image_resize::images::{Image, ImageRef, TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x4, U16x4};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer as FirResizer};
use image::RgbaImage;

use crate::error::Error;

/// The size a `width` × `height` image gets when fitted inside `max_width` × `max_height`
/// (`None` = unbounded): aspect ratio kept, never upscaled, the constrained edge exactly at the
/// bound, the other edge rounded half-up and at least 1 px.
///
/// ```
/// assert_eq!(imgest::resize::plan(4000, 3000, Some(150), Some(150)), (150, 113));
/// assert_eq!(imgest::resize::plan(100, 78, Some(800), Some(800)), (100, 78));
/// assert_eq!(imgest::resize::plan(1000, 1, Some(150), Some(150)), (150, 1));
/// ```
pub fn plan(
    width: u32,
    height: u32,
    max_width: Option<u32>,
    max_height: Option<u32>,
) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (width, height);
    }
    // u128: every product below stays exact for any u32 inputs.
    let mw = u128::from(max_width.unwrap_or(u32::MAX).max(1));
    let mh = u128::from(max_height.unwrap_or(u32::MAX).max(1));
    let (w, h) = (u128::from(width), u128::from(height));
    if w <= mw && h <= mh {
        return (width, height);
    }
    // Width-limited when w/h >= mw/mh.
    let (nw, nh) = if w * mh >= h * mw {
        let nh = (2 * h * mw + w) / (2 * w);
        (mw, nh.clamp(1, mh))
    } else {
        let nw = (2 * w * mh + h) / (2 * h);
        (nw.clamp(1, mw), mh)
    };
    // Both are bounded by the u32 inputs.
    (nw as u32, nh as u32)
}

/// A reusable resampler: keeps `fast_image_resize`'s scratch buffers between calls.
#[derive(Debug, Default)]
pub struct Resizer {
    inner: FirResizer,
}

impl Resizer {
    /// A new resampler using the best SIMD extension the CPU has.
    pub fn new() -> Resizer {
        Resizer::default()
    }

    /// Resamples `src` to exactly `width` × `height`.
    ///
    /// `has_alpha` enables premultiplied-alpha resampling (skip it for opaque images: faster,
    /// same result). `linear_light` resamples in linear light.
    pub fn resize(
        &mut self,
        src: &RgbaImage,
        width: u32,
        height: u32,
        has_alpha: bool,
        linear_light: bool,
    ) -> Result<RgbaImage, Error> {
        if src.width() == width && src.height() == height {
            return Ok(src.clone());
        }
        let err = |e: &dyn std::fmt::Display| Error::internal(format!("resize: {e}"));
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
            .use_alpha(has_alpha);
        // The typed API instantiates the resampler for the two pixel types used here only,
        // which keeps this crate's compile time down.
        let out = if linear_light {
            let src_view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x4)
                .map_err(|e| err(&e))?;
            let mapper = fast_image_resize::create_srgb_mapper();
            let mut linear = Image::new(src.width(), src.height(), PixelType::U16x4);
            mapper
                .forward_map(&src_view, &mut linear)
                .map_err(|e| err(&e))?;
            let mut small = Image::new(width, height, PixelType::U16x4);
            {
                let from = linear
                    .typed_image::<U16x4>()
                    .ok_or_else(|| Error::internal("resize: u16 view"))?;
                let mut to = small
                    .typed_image_mut::<U16x4>()
                    .ok_or_else(|| Error::internal("resize: u16 view"))?;
                self.inner
                    .resize_typed(&from, &mut to, &options)
                    .map_err(|e| err(&e))?;
            }
            let mut dst = Image::new(width, height, PixelType::U8x4);
            mapper.backward_map(&small, &mut dst).map_err(|e| err(&e))?;
            dst.into_vec()
        } else {
            let from = TypedImageRef::<U8x4>::from_buffer(src.width(), src.height(), src.as_raw())
                .map_err(|e| err(&e))?;
            let mut buf = vec![0u8; width as usize * height as usize * 4];
            {
                let mut to = TypedImage::<U8x4>::from_buffer(width, height, &mut buf)
                    .map_err(|e| err(&e))?;
                self.inner
                    .resize_typed(&from, &mut to, &options)
                    .map_err(|e| err(&e))?;
            }
            buf
        };
        RgbaImage::from_raw(width, height, out).ok_or_else(|| Error::internal("resize buffer size"))
    }

    /// Bytes held in scratch buffers.
    pub fn size_of_internal_buffers(&self) -> usize {
        self.inner.size_of_internal_buffers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_table() {
        let cases = [
            ((1800, 1200, Some(150), Some(150)), (150, 100)),
            ((1200, 1800, Some(150), Some(150)), (100, 150)),
            ((59, 100, Some(150), Some(150)), (59, 100)),
            ((1000, 1, Some(150), Some(150)), (150, 1)),
            ((1, 1000, Some(150), Some(150)), (1, 150)),
            ((3, 2, Some(2), Some(2)), (2, 1)), // 1.333 rounds to 1
            ((5, 2, Some(2), Some(2)), (2, 1)), // 0.8 rounds to 1
            ((4, 3, Some(2), Some(2)), (2, 2)), // 1.5 rounds half-up to 2
            ((1000, 500, None, Some(100)), (200, 100)),
            ((1000, 500, Some(100), None), (100, 50)),
            ((1000, 500, None, None), (1000, 500)),
            ((u32::MAX, 1, Some(1), Some(1)), (1, 1)),
            (
                (u32::MAX, u32::MAX, Some(u32::MAX - 1), None),
                (u32::MAX - 1, u32::MAX - 1),
            ),
        ];
        for ((w, h, mw, mh), want) in cases {
            assert_eq!(plan(w, h, mw, mh), want, "{w}x{h} into {mw:?}x{mh:?}");
        }
    }

    #[test]
    fn linear_light_checkerboard() {
        let board = RgbaImage::from_fn(64, 64, |x, y| {
            let v = if (x + y) % 2 == 0 { 0 } else { 255 };
            image::Rgba([v, v, v, 255])
        });
        let mut r = Resizer::new();
        let gamma = r.resize(&board, 32, 32, false, false).unwrap();
        let linear = r.resize(&board, 32, 32, false, true).unwrap();
        let mean = |img: &RgbaImage| {
            img.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
                / f64::from(img.width() * img.height())
        };
        let (g, l) = (mean(&gamma), mean(&linear));
        assert!((g - 128.0).abs() < 3.0, "sRGB-space mean {g}");
        assert!((l - 188.0).abs() < 3.0, "linear-light mean {l}");
    }

    #[test]
    fn premultiplied_alpha_has_no_dark_fringe() {
        // Left half opaque white, right half fully transparent *black*.
        let img = RgbaImage::from_fn(32, 8, |x, _| {
            if x < 16 {
                image::Rgba([255, 255, 255, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        let out = Resizer::new().resize(&img, 8, 2, true, false).unwrap();
        for p in out.pixels().filter(|p| p.0[3] > 0) {
            assert!(p.0[0] >= 250, "dark fringe: {:?}", p.0);
        }
    }
}
