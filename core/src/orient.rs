//! Stage: apply the EXIF orientation (1–8) so the pixels are upright.

use image::{ImageBuffer, Pixel, Rgb, Rgba};

use crate::frame::Frame;

/// Rotates/flips `frame` as EXIF orientation `orientation` (1–8) prescribes, keeping its pixel
/// type. Other values leave it as it is.
pub fn apply(mut frame: Frame, orientation: u8) -> Frame {
    let channels = frame.channels();
    let (w, _) = frame.dimensions();
    let row = w as usize * channels;
    let data = frame.as_raw_mut();
    // Reversing a run of pixels' bytes reverses the pixels and each pixel's channels; turning
    // every pixel's channels back leaves the pixels reversed.
    let unreverse = |d: &mut [u8]| d.chunks_exact_mut(channels).for_each(<[u8]>::reverse);
    match orientation {
        2 if row > 0 => data.chunks_exact_mut(row).for_each(|r| {
            r.reverse();
            unreverse(r);
        }),
        3 => {
            data.reverse();
            unreverse(data);
        }
        4 if row > 0 => {
            let rows = data.len() / row;
            for y in 0..rows / 2 {
                let (top, bottom) = data.split_at_mut((rows - 1 - y) * row);
                top[y * row..(y + 1) * row].swap_with_slice(&mut bottom[..row]);
            }
        }
        5..=8 => {
            frame = match frame {
                Frame::Rgb(img) => Frame::Rgb(transpose::<Rgb<u8>, 3>(&img, orientation)),
                Frame::Rgba(img) => Frame::Rgba(transpose::<Rgba<u8>, 4>(&img, orientation)),
            }
        }
        _ => {}
    }
    frame
}

/// [`apply`] on a copy, leaving `frame` as it is: orientations 5–8 write the turned copy
/// straight from `frame`, the others copy it first.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))] // the early encode's, with threads
pub(crate) fn apply_copy(frame: &Frame, orientation: u8) -> Frame {
    match (frame, orientation) {
        (Frame::Rgb(img), 5..=8) => Frame::Rgb(transpose::<Rgb<u8>, 3>(img, orientation)),
        (Frame::Rgba(img), 5..=8) => Frame::Rgba(transpose::<Rgba<u8>, 4>(img, orientation)),
        _ => apply(frame.clone(), orientation),
    }
}

/// Writes rows `top..` of the upright image (what [`apply`] would give) to `out`, as many as it
/// holds (whole rows of the upright width × the frame's channels), without turning the rest:
/// a strip for an encoder that takes the upright image a few rows at a time.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))] // the early encode's, with threads
pub(crate) fn upright_rows(frame: &Frame, orientation: u8, top: usize, out: &mut [u8]) {
    let (w, h) = frame.dimensions();
    match frame {
        Frame::Rgb(img) => rows_of::<3>(img.as_raw(), (w, h), orientation, top, out),
        Frame::Rgba(img) => rows_of::<4>(img.as_raw(), (w, h), orientation, top, out),
    }
}

/// [`upright_rows`] for pixels of `N` bytes.
fn rows_of<const N: usize>(
    src: &[u8],
    (w, h): (u32, u32),
    orientation: u8,
    top: usize,
    out: &mut [u8],
) {
    let (w, h) = (w as usize, h as usize);
    let (src, _) = src.as_chunks::<N>();
    let (out, _) = out.as_chunks_mut::<N>();
    if !(5..=8).contains(&orientation) {
        if w == 0 {
            return;
        }
        for (i, row) in out.chunks_exact_mut(w).enumerate() {
            let r = top + i;
            let y = if matches!(orientation, 3 | 4) {
                h - 1 - r
            } else {
                r
            };
            let from = &src[y * w..(y + 1) * w];
            if matches!(orientation, 2 | 3) {
                row.iter_mut()
                    .zip(from.iter().rev())
                    .for_each(|(d, s)| *d = *s);
            } else {
                row.copy_from_slice(from);
            }
        }
        return;
    }
    if h == 0 {
        return;
    }
    // As in `transpose`: upright row r, column c is source pixel (x, y) with x = r (or w - 1 - r
    // for 7 and 8) and y = c (or h - 1 - c for 6 and 7). Each source row gives the strip one
    // short run of pixels, one per upright row.
    let n = out.len() / h;
    let flip_rows = matches!(orientation, 7 | 8);
    let flip_cols = matches!(orientation, 6 | 7);
    for c in 0..h {
        let y = if flip_cols { h - 1 - c } else { c };
        let from = &src[y * w..(y + 1) * w];
        for i in 0..n {
            let r = top + i;
            let x = if flip_rows { w - 1 - r } else { r };
            out[i * h + c] = from[x];
        }
    }
}

/// Orientations 5–8 swap the axes: 5 transposes, 6 turns 90° clockwise, 7 transverses,
/// 8 turns 90° counter-clockwise. Walks the source in 64×64 tiles so that the writes, which
/// stride through the destination, stay in cache (a per-pixel `rotate90` over a 12-MP photo
/// misses on every write).
fn transpose<P, const N: usize>(
    image: &ImageBuffer<P, Vec<u8>>,
    orientation: u8,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8>,
{
    const TILE: usize = 64;
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (src, _) = image.as_raw().as_chunks::<N>();
    let mut dst = vec![[0u8; N]; w * h];
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
    ImageBuffer::from_raw(h as u32, w as u32, dst.into_flattened())
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
    use image::RgbaImage;

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

    /// Every strip of rows, at every orientation, RGB and RGBA, odd sides: the rows of `apply`.
    #[test]
    fn upright_rows_are_the_rows_of_apply() {
        let mut next = crate::xorshift32(9);
        for (w, h) in [(7u32, 5u32), (1, 6), (6, 1), (16, 16)] {
            let rgba = RgbaImage::from_fn(w, h, |_, _| image::Rgba(next().to_le_bytes()));
            let rgb = image::DynamicImage::ImageRgba8(rgba.clone()).to_rgb8();
            for frame in [Frame::Rgba(rgba), Frame::Rgb(rgb)] {
                for o in 1..=8 {
                    let whole = apply(frame.clone(), o);
                    let (uw, uh) = whole.dimensions();
                    let row = uw as usize * frame.channels();
                    for strip in [1usize, 2, 3, 16] {
                        let mut got = Vec::new();
                        for top in (0..uh as usize).step_by(strip) {
                            let rows = strip.min(uh as usize - top);
                            let mut out = vec![0u8; rows * row];
                            upright_rows(&frame, o, top, &mut out);
                            got.extend_from_slice(&out);
                        }
                        assert!(
                            got == whole.as_raw(),
                            "{w}x{h}, orientation {o}, strip {strip}"
                        );
                    }
                }
            }
        }
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
            let turned = apply(Frame::Rgba(numbered()), o).into_rgba();
            assert_eq!(reds(&turned), want, "orientation {o}");
            let rgb = Frame::Rgb(image::DynamicImage::ImageRgba8(numbered()).to_rgb8());
            let turned = apply(rgb, o).into_rgba();
            assert_eq!(reds(&turned), want, "orientation {o}, RGB");
            let rgb = image::DynamicImage::ImageRgba8(numbered()).to_rgb8();
            for frame in [Frame::Rgba(numbered()), Frame::Rgb(rgb)] {
                let before = frame.clone().into_rgba();
                let copy = apply_copy(&frame, o).into_rgba();
                assert_eq!(reds(&copy), want, "orientation {o}, copy");
                assert_eq!(
                    frame.into_rgba(),
                    before,
                    "orientation {o}: the source is kept"
                );
            }
            assert_eq!(oriented_size(3, 2, o), (want.0, want.1));
        }
        for o in [0, 9] {
            let kept = apply(Frame::Rgba(numbered()), o).into_rgba();
            assert_eq!(reds(&kept).2, vec![0, 1, 2, 3, 4, 5]);
        }
    }
}
