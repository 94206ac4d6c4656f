//! End-to-end behaviour on fixtures generated in code.

use imgest::{ErrorCode, Limits, Options, OutputFormat, Pipeline, Variant, process};

use crate::fixtures::{self, gradient};
use crate::webp_chunks::assert_no_metadata;

fn prepare(bytes: &[u8]) -> imgest::Prepared {
    Pipeline::new(Options::default())
        .unwrap()
        .prepare(bytes)
        .unwrap()
}

fn mean_abs_diff(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    s as f64 / a.as_raw().len() as f64
}

#[test]
fn default_variants_and_report() {
    let img = gradient(2000, 1000);
    let bytes = fixtures::jpeg(&img, Some(fixtures::exif_block(1, true)), None);
    let out = process(&bytes, &Options::default()).unwrap();
    let sizes: Vec<_> = out
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.width, v.height))
        .collect();
    assert_eq!(
        sizes,
        [
            ("thumbnail", 150, 75),
            ("medium", 800, 400),
            ("large", 1600, 800),
            ("original", 2000, 1000)
        ]
    );
    for v in &out.variants {
        assert_eq!(v.format, OutputFormat::Webp);
        assert_eq!(v.size, v.bytes.len());
        assert_eq!(v.sha256.len(), 64);
        assert_no_metadata(&v.bytes).unwrap();
        let back = image::load_from_memory(&v.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (v.width, v.height));
    }
    let s = &out.source;
    assert_eq!(s.format, imgest::Format::Jpeg);
    assert_eq!(
        (s.width, s.height, s.stored_width, s.stored_height),
        (2000, 1000, 2000, 1000)
    );
    assert!(s.metadata.exif && s.metadata.gps, "{:?}", s.metadata);
    assert!(!s.metadata.xmp && !s.metadata.icc);
    assert_eq!(s.frames, 1);
    assert!(!s.has_alpha);
    assert!(out.placeholder.as_deref().is_some_and(|p| !p.is_empty()));
    assert!(!out.palette.is_empty() && out.palette.len() <= 5);
    assert_eq!(out.dominant_color.as_ref().unwrap().hex, out.palette[0].hex);
}

#[test]
fn small_images_are_never_upscaled() {
    let bytes = fixtures::png_rgb(&gradient(40, 30), None, None);
    let out = process(&bytes, &Options::default()).unwrap();
    assert!(out.variants.iter().all(|v| (v.width, v.height) == (40, 30)));
    // Identical sizes are resized and encoded from the same pixels: identical bytes.
    assert!(out.variants.windows(2).all(|w| w[0].sha256 == w[1].sha256));
}

#[test]
fn orientation_1_to_8_in_jpeg_png_and_webp() {
    let img = gradient(48, 32);
    type Make = fn(&image::RgbImage, Option<Vec<u8>>, Option<Vec<u8>>) -> Vec<u8>;
    let makers: [(&str, Make); 3] = [
        ("jpeg", fixtures::jpeg),
        ("png", fixtures::png_rgb),
        ("webp", fixtures::webp_lossless),
    ];
    for (name, make) in makers {
        let upright = prepare(&make(&img, None, None)).image;
        for o in 1..=8u8 {
            let bytes = make(&img, Some(fixtures::exif_block(u16::from(o), false)), None);
            let p = prepare(&bytes);
            assert_eq!(p.source.orientation, o, "{name} {o}");
            assert!(p.source.metadata.exif, "{name} {o}");
            let want = imgest::orient::apply(upright.clone().into(), o).into_rgba();
            assert_eq!(p.image.dimensions(), want.dimensions(), "{name} {o}");
            let d = mean_abs_diff(&p.image, &want);
            assert!(d < 0.5, "{name} orientation {o}: mean abs diff {d}");
            let (w, h) = if o >= 5 { (32, 48) } else { (48, 32) };
            assert_eq!((p.source.width, p.source.height), (w, h));
            // Output carries no EXIF, so viewers will not rotate it again.
            let out = process(&bytes, &Options::default()).unwrap();
            for v in &out.variants {
                assert_no_metadata(&v.bytes).unwrap();
            }
        }
    }
}

/// Variants are resized from the decoded pixels and then turned and colour-converted (libvips'
/// order); they must equal the upright, converted image resized, for every orientation, with
/// and without a profile, RGB and RGBA, with a full-size variant alongside or not, in linear
/// light too.
#[test]
fn variants_are_upright_and_converted_after_resizing() {
    // Four quadrants of different colours: any wrong turn or flip moves one of them.
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        let q = [[200, 40, 40], [40, 180, 60], [30, 60, 210], [220, 200, 50]];
        let c = q[usize::from(x >= 48) + 2 * usize::from(y >= 32)];
        image::Rgb([c[0], c[1], c[2]].map(|v: u8| v.saturating_add((x % 7) as u8)))
    });
    let rgba = image::DynamicImage::ImageRgb8(img.clone()).to_rgba8();
    let p3 = fixtures::icc(moxcms::ColorProfile::new_display_p3());
    let small = Variant::fit("small", 40).with_lossless(true);
    let full = Variant::original("full").with_lossless(true);
    for o in 1..=8u8 {
        let exif = || Some(fixtures::exif_block(u16::from(o), false));
        let inputs = [
            ("png", fixtures::png_rgb(&img, exif(), None)),
            ("png p3", fixtures::png_rgb(&img, exif(), Some(p3.clone()))),
            (
                "png rgba p3",
                fixtures::png_rgba(&rgba, exif(), Some(p3.clone())),
            ),
            (
                "webp p3",
                fixtures::webp_lossless(&img, exif(), Some(p3.clone())),
            ),
        ];
        for (name, bytes) in inputs {
            let sets = [
                (vec![small.clone()], false),
                (vec![small.clone(), full.clone()], false),
                (vec![small.clone()], true),
            ];
            for (variants, linear) in sets {
                let options = Options::default()
                    .with_variants(variants.clone())
                    .with_linear_light(linear);
                let mut pipeline = Pipeline::new(options).unwrap();
                let upright = pipeline.prepare(&bytes).unwrap().image;
                let out = pipeline.run(&bytes).unwrap();
                assert_eq!(out.variants.len(), variants.len());
                for v in &out.variants {
                    let got = image::load_from_memory(&v.bytes).unwrap().to_rgba8();
                    let upright = upright.clone().into();
                    let has_alpha = name.contains("rgba");
                    let want = imgest::resize::Resizer::new()
                        .resize(&upright, v.width, v.height, has_alpha, linear)
                        .unwrap()
                        .into_rgba();
                    let d = mean_abs_diff(&got, &want);
                    // Resampling before the profile's conversion differs by rounding only.
                    assert!(
                        d < 1.0,
                        "{name}, orientation {o}, {}, linear {linear}: mean abs diff {d}",
                        v.name
                    );
                }
                let (w, h) = (out.source.width, out.source.height);
                assert_eq!((w, h), if o >= 5 { (64, 96) } else { (96, 64) });
                assert_eq!(upright.dimensions(), (w, h), "{name} {o}");
            }
        }
    }
}

#[test]
fn gray_profiles_convert_gray_to_rgb_and_keep_alpha() {
    use image::DynamicImage;
    use imgest::decode::{Decoded, Pixels};
    use imgest::frame::Frame;
    // Mid gray in a linear (gamma 1) gray space is a light gray in sRGB (about 188).
    let icc = fixtures::icc(moxcms::ColorProfile::new_gray_with_gamma(1.0));
    let gray = image::GrayImage::from_pixel(4, 2, image::Luma([128]));
    let n = imgest::color::normalize(Decoded {
        pixels: Pixels::Image(DynamicImage::ImageLuma8(gray)),
        icc: Some(icc.clone()),
        cicp: None,
    })
    .unwrap();
    assert!(n.converted && !n.has_alpha && n.to_srgb.is_none());
    let Frame::Rgb(rgb) = &n.frame else {
        panic!("an opaque gray image becomes RGB")
    };
    let [r, g, b] = rgb.get_pixel(1, 1).0;
    assert!(r.abs_diff(188) <= 3 && r == g && g == b, "{:?}", [r, g, b]);
    let gray_alpha = image::GrayAlphaImage::from_pixel(4, 2, image::LumaA([128, 77]));
    let n = imgest::color::normalize(Decoded {
        pixels: Pixels::Image(DynamicImage::ImageLumaA8(gray_alpha)),
        icc: Some(icc),
        cicp: None,
    })
    .unwrap();
    assert!(n.converted && n.has_alpha);
    let Frame::Rgba(rgba) = &n.frame else {
        panic!("gray with alpha becomes RGBA")
    };
    let [r, _, _, a] = rgba.get_pixel(3, 0).0;
    assert!(
        r.abs_diff(188) <= 3 && a == 77,
        "{:?}",
        rgba.get_pixel(3, 0).0
    );
}

#[test]
fn icc_profiles_are_converted_to_srgb() {
    // sRGB red expressed in Display P3 is about (234, 51, 35).
    let p3_red = image::RgbImage::from_pixel(16, 16, image::Rgb([234, 51, 35]));
    let icc = fixtures::icc(moxcms::ColorProfile::new_display_p3());
    for bytes in [
        fixtures::png_rgb(&p3_red, None, Some(icc.clone())),
        fixtures::webp_lossless(&p3_red, None, Some(icc.clone())),
    ] {
        let p = prepare(&bytes);
        assert!(p.source.metadata.icc && p.source.color_converted);
        let px = p.image.get_pixel(8, 8).0;
        assert!(
            px[0] >= 250 && px[1] <= 8 && px[2] <= 8,
            "P3 → sRGB gave {px:?}"
        );
        let out = process(&bytes, &Options::default()).unwrap();
        for v in &out.variants {
            assert_no_metadata(&v.bytes).unwrap();
        }
    }
    // A JPEG with a ProPhoto profile: mid grey stays grey, saturated colours move.
    let icc = fixtures::icc(moxcms::ColorProfile::new_pro_photo_rgb());
    let img = image::RgbImage::from_fn(16, 16, |x, _| {
        if x < 8 {
            image::Rgb([128, 128, 128])
        } else {
            image::Rgb([100, 160, 60])
        }
    });
    let ignored = prepare(&fixtures::jpeg(&img, None, None)).image;
    let p = prepare(&fixtures::jpeg(&img, None, Some(icc)));
    assert!(p.source.color_converted);
    let grey = p.image.get_pixel(3, 8).0;
    assert!(
        grey[0].abs_diff(grey[1]) <= 2 && grey[1].abs_diff(grey[2]) <= 2,
        "{grey:?}"
    );
    let green = p.image.get_pixel(12, 8).0;
    let raw = ignored.get_pixel(12, 8).0;
    assert!(
        green[1].abs_diff(raw[1]) > 10 || green[0].abs_diff(raw[0]) > 10,
        "{green:?} vs {raw:?}"
    );
}

#[test]
fn grayscale_16_bit_and_alpha_inputs() {
    let gray16 =
        image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(20, 10, image::Luma([0x8080]));
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma16(gray16)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let out = process(&png, &Options::default()).unwrap();
    assert_eq!(out.dominant_color.unwrap().hex, "#808080");

    let rgba = image::RgbaImage::from_fn(30, 30, |x, _| {
        if x < 15 {
            image::Rgba([10, 200, 30, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let out = process(&fixtures::png_rgba(&rgba, None, None), &Options::default()).unwrap();
    assert!(out.source.has_alpha);
    assert_eq!(out.dominant_color.as_ref().unwrap().hex, "#0ac81e");
    let back = image::load_from_memory(&out.variants[0].bytes).unwrap();
    assert!(back.color().has_alpha());
    let gif = fixtures::gif(&rgba);
    let out = process(&gif, &Options::default()).unwrap();
    assert_eq!(out.source.format, imgest::Format::Gif);
    assert!(out.source.has_alpha);
}

#[test]
fn configurable_variants_formats() {
    let bytes = fixtures::png_rgb(&gradient(300, 200), None, None);
    let options = Options::default().with_variants(vec![
        Variant::fit("a", 100)
            .with_format(OutputFormat::Jpeg)
            .with_quality(70),
        Variant::fit("b", 100).with_format(OutputFormat::Png),
        Variant::fit("c", 100).with_lossless(true),
        Variant::original("d").with_box(Some(50), None),
    ]);
    let out = process(&bytes, &options).unwrap();
    let got: Vec<_> = out
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.width, v.height, v.format))
        .collect();
    assert_eq!(
        got,
        [
            ("a", 100, 67, OutputFormat::Jpeg),
            ("b", 100, 67, OutputFormat::Png),
            ("c", 100, 67, OutputFormat::Webp),
            ("d", 50, 33, OutputFormat::Webp),
        ]
    );
    assert!(out.variants[0].bytes.starts_with(&[0xFF, 0xD8]));
    assert!(out.variants[1].bytes.starts_with(b"\x89PNG"));
    assert_eq!(&out.variants[2].bytes[12..16], b"VP8L");
}

#[test]
fn truncated_inputs_are_corrupt() {
    let img = gradient(64, 64);
    let inputs = [
        ("jpeg", fixtures::jpeg(&img, None, None)),
        ("png", fixtures::png_rgb(&img, None, None)),
        ("webp", fixtures::webp_lossless(&img, None, None)),
        (
            "gif",
            fixtures::gif(&image::DynamicImage::ImageRgb8(img.clone()).to_rgba8()),
        ),
    ];
    for (name, bytes) in inputs {
        for cut in [bytes.len() / 2, bytes.len() * 3 / 4] {
            let err = process(&bytes[..cut], &Options::default()).unwrap_err();
            assert_eq!(
                err.code(),
                ErrorCode::CorruptInput,
                "{name} cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn appended_payloads_do_not_survive() {
    let mut bytes = fixtures::jpeg(&gradient(64, 48), None, None);
    let payload = b"ID3\x04\0\0\0\0\0\x0fSECRET-PAYLOAD-THAT-MUST-NOT-SURVIVE";
    bytes.extend_from_slice(payload);
    let out = process(&bytes, &Options::default()).unwrap();
    assert!(
        out.source.trailing_bytes >= payload.len() as u64,
        "{}",
        out.source.trailing_bytes
    );
    for v in &out.variants {
        assert!(!v.bytes.windows(14).any(|w| w == b"SECRET-PAYLOAD"));
    }
}

#[test]
fn pipeline_is_reusable_and_deterministic() {
    let bytes = fixtures::png_rgb(&gradient(500, 300), None, None);
    let mut p = Pipeline::new(Options::default()).unwrap();
    let a = p.run(&bytes).unwrap();
    let _ = p.run(b"garbage").unwrap_err();
    let b = p.run(&bytes).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_pool_runs_from_many_threads_as_one_pipeline_does() {
    let inputs = [
        fixtures::png_rgb(&gradient(500, 300), None, None),
        fixtures::jpeg(
            &gradient(900, 700),
            Some(fixtures::exif_block(6, false)),
            None,
        ),
    ];
    let expected: Vec<_> = inputs
        .iter()
        .map(|i| process(i, &Options::default()).unwrap())
        .collect();
    let pool = imgest::PipelinePool::new(Options::default()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (pool, inputs, expected) = (&pool, &inputs, &expected);
            scope.spawn(move || {
                for round in 0..3 {
                    let i = (t + round) % 2;
                    assert_eq!(pool.run(&inputs[i]).unwrap(), expected[i], "thread {t}");
                    let err = pool.run(b"not an image").unwrap_err();
                    assert_eq!(err.code(), ErrorCode::NotAnImage);
                }
            });
        }
    });
    let err = imgest::PipelinePool::new(Options::default().with_quality(200)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOptions);
}

/// However the pipeline arranges its work (a full-size variant of an upright sRGB image, or of
/// one turned, flipped or with a profile (turned and converted in strips of rows on the way into
/// libwebp, or into a copy when there is alpha to keep), starts encoding while the others are
/// resized; the rest are encoded in parallel, largest first),
/// every variant is exactly what a run of that variant alone gives.
#[test]
fn each_variant_equals_a_run_of_it_alone() {
    // Larger than the 1600-px variant: `original` is the one full-size variant.
    let img = gradient(1700, 1000);
    let rgba = image::RgbaImage::from_fn(300, 200, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, ((x + y) % 256) as u8])
    });
    let p3 = fixtures::icc(moxcms::ColorProfile::new_display_p3());
    let opaque = image::DynamicImage::ImageRgb8(gradient(1701, 999)).to_rgba8();
    let mut see_through = opaque.clone();
    see_through.get_pixel_mut(5, 7).0[3] = 128;
    let inputs = [
        ("jpeg, orientation 1", fixtures::jpeg(&img, None, None)),
        (
            "jpeg, orientation 6",
            fixtures::jpeg(&img, Some(fixtures::exif_block(6, false)), None),
        ),
        (
            "jpeg, display p3",
            fixtures::jpeg(&img, None, Some(p3.clone())),
        ),
        (
            "jpeg, orientation 8, display p3",
            fixtures::jpeg(&img, Some(fixtures::exif_block(8, false)), Some(p3.clone())),
        ),
        (
            "rgba png, three full-size variants",
            fixtures::png_rgba(&rgba, None, None),
        ),
        // Odd sides: the last strip of rows that libwebp takes converted is odd and short.
        (
            "rgb png, display p3, 1703 x 1001",
            fixtures::png_rgb(&gradient(1703, 1001), None, Some(p3.clone())),
        ),
        (
            "opaque rgba png, display p3, 1701 x 999",
            fixtures::png_rgba(&opaque, None, Some(p3.clone())),
        ),
        (
            "rgba png, display p3, 1701 x 999",
            fixtures::png_rgba(&see_through, None, Some(p3.clone())),
        ),
        // Flipped, and turned with a profile: libwebp takes strips of the upright rows.
        (
            "rgb png, orientation 3, 1703 x 1001",
            fixtures::png_rgb(
                &gradient(1703, 1001),
                Some(fixtures::exif_block(3, false)),
                None,
            ),
        ),
        (
            "opaque rgba png, orientation 7, display p3, 1701 x 999",
            fixtures::png_rgba(
                &opaque,
                Some(fixtures::exif_block(7, false)),
                Some(p3.clone()),
            ),
        ),
        // Turned with alpha to keep: from a turned copy.
        (
            "rgba png, orientation 5, display p3, 1701 x 999",
            fixtures::png_rgba(
                &see_through,
                Some(fixtures::exif_block(5, false)),
                Some(p3.clone()),
            ),
        ),
    ];
    // One full-size variant (its encode alone starts early), and two (encoded in parallel).
    let mut two_originals = Options::default().variants;
    two_originals.push(Variant::original("original-jpeg").with_format(OutputFormat::Jpeg));
    let options = |variants: Vec<Variant>| {
        let mut o = Options::default().with_variants(variants);
        // Decoding at reduced scale depends on the variants asked for; this test is about
        // how the pipeline arranges the rest.
        o.shrink_on_load = false;
        o.dominant_color = false;
        o.placeholder = false;
        o
    };
    for (what, bytes) in &inputs {
        for variants in [Options::default().variants, two_originals.clone()] {
            let all = process(bytes, &options(variants.clone())).unwrap();
            assert_eq!(all.variants.len(), variants.len(), "{what}");
            for (v, out) in variants.iter().zip(&all.variants) {
                assert_eq!(out.name, v.name, "{what}: variants keep their order");
                let alone = process(bytes, &options(vec![v.clone()])).unwrap();
                let alone = &alone.variants[0];
                assert_eq!(
                    (out.width, out.height),
                    (alone.width, alone.height),
                    "{what}: {}",
                    v.name
                );
                assert!(
                    out.bytes == alone.bytes,
                    "{what}: {} differs from a run of it alone",
                    v.name
                );
            }
        }
    }
}

#[test]
fn linear_light_option_changes_fine_detail() {
    let board = image::RgbImage::from_fn(64, 64, |x, y| {
        let v = if (x + y) % 2 == 0 { 0 } else { 255 };
        image::Rgb([v, v, v])
    });
    let bytes = fixtures::png_rgb(&board, None, None);
    let variants = vec![Variant::fit("half", 32).with_format(OutputFormat::Png)];
    let mean = |linear: bool| {
        let o = Options::default()
            .with_variants(variants.clone())
            .with_linear_light(linear);
        let out = process(&bytes, &o).unwrap();
        let img = image::load_from_memory(&out.variants[0].bytes)
            .unwrap()
            .to_luma8();
        img.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / 1024.0
    };
    let (gamma, linear) = (mean(false), mean(true));
    assert!((gamma - 128.0).abs() < 3.0, "{gamma}");
    assert!((linear - 188.0).abs() < 3.0, "{linear}");
}

#[test]
fn invalid_options_are_reported_before_any_work() {
    let err = Pipeline::new(Options::default().with_quality(200)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOptions);
    let err = process(
        b"",
        &Options::default().with_limits(Limits::default().with_max_frames(0)),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOptions);
}

#[test]
fn non_images_and_unsupported_formats() {
    let cases: &[(&[u8], ErrorCode)] = &[
        (b"", ErrorCode::NotAnImage),
        (b"<html><body>hi</body></html>", ErrorCode::NotAnImage),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>",
            ErrorCode::NotAnImage,
        ),
        (
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
            ErrorCode::UnsupportedFormat,
        ),
        (
            b"8BPS\0\x01\0\0\0\0\0\0\0\x03",
            ErrorCode::UnsupportedFormat,
        ),
        (b"\x89PNG\r\n\x1a\n", ErrorCode::CorruptInput),
    ];
    for (bytes, code) in cases {
        assert_eq!(
            process(bytes, &Options::default()).unwrap_err().code(),
            *code,
            "{bytes:?}"
        );
    }
}

#[test]
fn unsupported_jpeg_processes_and_tiff_compression() {
    // A 12-bit JPEG (patch the SOF precision byte of an 8-bit one): unsupported, not corrupt.
    let mut jpeg = fixtures::jpeg(&gradient(16, 16), None, None);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 4] = 12;
    let err = process(&jpeg, &Options::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedFormat, "{err}");
    // The same SOF turned into a lossless (SOF3) marker.
    let mut jpeg = fixtures::jpeg(&gradient(16, 16), None, None);
    jpeg[sof + 1] = 0xC3;
    let err = process(&jpeg, &Options::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedFormat, "{err}");
    // A TIFF whose first IFD says Compression = 7 (JPEG): refused before decoding.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32, u32); 3] = [(256, 3, 1, 1), (257, 3, 1, 1), (259, 3, 1, 7)];
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let err = process(&tiff, &Options::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedFormat, "{err}");
}

#[test]
fn truncated_signatures_are_corrupt() {
    for bytes in [&b"GIF89"[..], b"\x89P", b"RIFF\0\0\0\0WE", b"\xFF\xD8"] {
        let err = process(bytes, &Options::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CorruptInput, "{bytes:?}: {err}");
    }
}

#[test]
fn shrink_factor_leaves_two_times_at_half_scale_and_two_and_a_half_below() {
    use imgest::shrink_factor;
    let fit = |s| vec![Variant::fit("v", s)];
    assert_eq!(shrink_factor(3264, 2448, &fit(800)), 2); // 4.08× → 1/2 leaves 2.04×
    assert_eq!(shrink_factor(3200, 2400, &fit(800)), 2); // exactly 4×
    assert_eq!(shrink_factor(3196, 2397, &fit(800)), 1); // just under 4×
    assert_eq!(shrink_factor(4608, 1976, &fit(800)), 2); // 5.76×
    assert_eq!(shrink_factor(3264, 2448, &fit(400)), 2); // 8.16×: 1/4 would leave 2.04×
    assert_eq!(shrink_factor(4000, 3000, &fit(150)), 8); // 26.7×
    assert_eq!(shrink_factor(2048, 1536, &fit(800)), 1); // 2.56×
    assert_eq!(shrink_factor(1500, 1000, &fit(150)), 4); // exactly 10×
    assert_eq!(shrink_factor(1496, 1000, &fit(150)), 2); // just under 10×
    assert_eq!(shrink_factor(3000, 2000, &fit(150)), 8); // exactly 20×
    assert_eq!(shrink_factor(2990, 2000, &fit(150)), 4); // just under 20×
    // A full-size variant, or any variant that needs detail, keeps the full decode.
    assert_eq!(shrink_factor(4000, 3000, &Options::default().variants), 1);
    let mixed = vec![Variant::fit("a", 150), Variant::fit("b", 1600)];
    assert_eq!(shrink_factor(8000, 6000, &mixed), 2); // 5× for the 1600 box
}

#[test]
fn jpeg_shrink_on_load_keeps_the_report_and_the_look() {
    // An orientation-6 photo whose only variant is 8× smaller: decoded at 1/4 scale.
    let img = gradient(1600, 1200);
    let bytes = fixtures::jpeg(&img, Some(fixtures::exif_block(6, false)), None);
    let options = |shrink| {
        Options::default()
            .with_variants(vec![Variant::fit("small", 150)])
            .with_shrink_on_load(shrink)
    };
    let mut pipeline = Pipeline::new(options(true)).unwrap();
    let prepared = pipeline.prepare(&bytes).unwrap();
    assert_eq!(
        prepared.image.dimensions(),
        (300, 400),
        "1/4 scale, upright"
    );
    let s = &prepared.source;
    assert_eq!(
        (s.stored_width, s.stored_height, s.width, s.height),
        (1600, 1200, 1200, 1600)
    );
    let shrunk = pipeline.finish(prepared).unwrap();
    let full = process(&bytes, &options(false)).unwrap();
    assert_eq!(shrunk.source, full.source);
    let (a, b) = (&shrunk.variants[0], &full.variants[0]);
    assert_eq!((a.width, a.height), (113, 150));
    assert_eq!((a.width, a.height), (b.width, b.height));
    let da = image::load_from_memory(&a.bytes).unwrap().to_rgba8();
    let db = image::load_from_memory(&b.bytes).unwrap().to_rgba8();
    let diff = mean_abs_diff(&da, &db);
    assert!(diff < 2.0, "mean difference {diff}");
    // Off by default for nothing else: PNG input never shrinks.
    let png = fixtures::png_rgb(&img, None, None);
    let p = Pipeline::new(options(true)).unwrap().prepare(&png).unwrap();
    assert_eq!(p.image.dimensions(), (1600, 1200));
}
