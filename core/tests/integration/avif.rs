//! AVIF input: round trip through imgest's own AVIF output, alpha, `irot`/`imir` orientation,
//! colour (`nclx`, ICC), metadata items, and the limits and errors of hostile files. The files
//! are built here around AV1 data that imgest's encoder made ([`fixtures::avif`]).
#![cfg(all(feature = "avif-input", feature = "avif-output"))]

use imgest::frame::Frame;
use imgest::{ErrorCode, Limits, Options, OutputFormat, Pipeline, Variant, process};

use crate::fixtures::{self, AvifBoxes, av1_payloads, gradient};

fn prepare(bytes: &[u8]) -> Result<imgest::Prepared, imgest::Error> {
    Pipeline::new(Options::default()).unwrap().prepare(bytes)
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let s: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    s as f64 / a.len() as f64
}

/// imgest's own AVIF of `frame` at quality `q` (4:4:4, 8-bit).
fn encode(frame: &Frame, q: u8, alpha: bool) -> Vec<u8> {
    let v = Variant::original("a")
        .with_format(OutputFormat::Avif)
        .with_quality(q);
    imgest::encode::encode(frame, &v, alpha).unwrap()
}

/// A 96×64 gradient with a distinct colour per corner (orientation mistakes show).
fn source() -> image::RgbImage {
    gradient(96, 64)
}

#[test]
fn round_trip_matches_the_webp_variant() {
    let img = source();
    let avif = encode(&Frame::Rgb(img.clone()), 90, false);
    let p = prepare(&avif).unwrap();
    assert_eq!(p.source.format.as_str(), "avif");
    assert_eq!((p.source.width, p.source.height), (96, 64));
    assert!(!p.source.has_alpha);
    let original = Frame::Rgb(img.clone()).into_rgba();
    let avif_err = mean_abs_diff(p.image.as_raw(), original.as_raw());
    // The same pixels through WebP q90 (the default output's codec), decoded back.
    let webp = imgest::encode::encode(
        &Frame::Rgb(img),
        &Variant::original("w").with_quality(90),
        false,
    )
    .unwrap();
    let w = prepare(&webp).unwrap();
    let webp_err = mean_abs_diff(w.image.as_raw(), original.as_raw());
    // Bound: AVIF at q90 decodes back within 2 levels per sample on average, and no worse
    // than 1.5x the WebP variant's error plus one level.
    assert!(avif_err < 2.0, "AVIF round trip error {avif_err:.2}");
    assert!(
        avif_err <= webp_err * 1.5 + 1.0,
        "AVIF {avif_err:.2} vs WebP {webp_err:.2}"
    );
    // And the whole pipeline makes every default variant from it.
    let out = process(&avif, &Options::default()).unwrap();
    assert_eq!(out.source.format.as_str(), "avif");
    assert!(out.variants.iter().all(|v| (v.width, v.height) == (96, 64)));
}

#[test]
fn alpha_is_kept() {
    let rgba = image::RgbaImage::from_fn(64, 40, |x, y| {
        image::Rgba([
            200,
            (x * 4) as u8,
            (y * 6) as u8,
            if x < 32 { 255 } else { 60 },
        ])
    });
    let avif = encode(&Frame::Rgba(rgba.clone()), 95, true);
    let (color, alpha, size) = av1_payloads(&avif);
    assert!(alpha.is_some(), "the encoder wrote an alpha item");
    let p = prepare(&avif).unwrap();
    assert!(p.source.has_alpha);
    for (x, want) in [(10, 255), (50, 60)] {
        let a = p.image.get_pixel(x, 20).0[3];
        assert!(a.abs_diff(want) <= 3, "alpha at x={x}: {a}, want {want}");
    }
    // The same file rebuilt by the fixture writer (auxl + auxC) reads the same.
    let rebuilt = fixtures::avif(&color, alpha.as_deref(), size, &AvifBoxes::default());
    let q = prepare(&rebuilt).unwrap();
    assert_eq!(q.image.as_raw(), p.image.as_raw());
    // Without its alpha item the image is opaque.
    let opaque = fixtures::avif(&color, None, size, &AvifBoxes::default());
    assert!(!prepare(&opaque).unwrap().source.has_alpha);
}

#[test]
fn irot_and_imir_orient_the_image_and_exif_orientation_is_ignored() {
    let img = source();
    let (color, _, size) = av1_payloads(&encode(&Frame::Rgb(img.clone()), 95, false));
    let plain = prepare(&fixtures::avif(&color, None, size, &AvifBoxes::default())).unwrap();
    let upright = Frame::Rgba(plain.image.clone());
    // (irot, imir) → the EXIF orientation that shows the same.
    let cases = [
        (None, None, 1),
        (None, Some(0), 2),
        (Some(2), None, 3),
        (None, Some(1), 4),
        (Some(1), Some(1), 5),
        (Some(3), None, 6),
        (Some(1), Some(0), 7),
        (Some(1), None, 8),
        (Some(3), Some(0), 5),
        (Some(2), Some(0), 4),
    ];
    for (irot, imir, orientation) in cases {
        let boxes = AvifBoxes {
            irot,
            imir,
            // An EXIF orientation that would turn it again if it were applied.
            exif: Some(fixtures::exif_block(6, false)),
            ..AvifBoxes::default()
        };
        let file = fixtures::avif(&color, None, size, &boxes);
        let p = prepare(&file).unwrap();
        assert_eq!(
            p.source.orientation, orientation,
            "irot {irot:?} imir {imir:?}"
        );
        assert!(p.source.metadata.exif);
        let want = imgest::orient::apply(upright.clone(), orientation).into_rgba();
        assert_eq!(
            p.image.dimensions(),
            want.dimensions(),
            "irot {irot:?} imir {imir:?}"
        );
        assert_eq!(
            p.image.as_raw(),
            want.as_raw(),
            "irot {irot:?} imir {imir:?}"
        );
    }
}

#[test]
fn metadata_items_are_reported_and_never_copied() {
    let img = source();
    let (color, _, size) = av1_payloads(&encode(&Frame::Rgb(img), 80, false));
    let boxes = AvifBoxes {
        exif: Some(fixtures::exif_block(1, true)),
        xmp: Some(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>IMGEST-XMP-NEEDLE</x:xmpmeta>".to_vec()),
        ..AvifBoxes::default()
    };
    let file = fixtures::avif(&color, None, size, &boxes);
    let out = process(&file, &Options::default()).unwrap();
    let m = &out.source.metadata;
    assert!(m.exif && m.gps && m.xmp && !m.icc, "{m:?}");
    for v in &out.variants {
        assert!(!fixtures::contains(&v.bytes, b"IMGEST-XMP-NEEDLE"));
        assert!(!fixtures::contains(&v.bytes, b"Exif"));
    }
}

#[test]
fn nclx_and_icc_colour_is_converted_to_srgb() {
    // sRGB red expressed in Display P3 is about (234, 51, 35): declared P3 (by nclx code points
    // or by an ICC profile), it must come out as sRGB red.
    let p3_red = image::RgbImage::from_pixel(32, 32, image::Rgb([234, 51, 35]));
    let avif = encode(&Frame::Rgb(p3_red), 100, false);
    let (color, _, size) = av1_payloads(&avif);
    let stated = imgest::container::read(&avif, imgest::container::Kind::Avif, 1)
        .unwrap()
        .avif
        .unwrap()
        .nclx;
    // Keep the matrix and range the encoder used (its AV1 header says BT.601, full range, when
    // the file has no nclx box); change the primaries to Display P3.
    let (matrix, full) = stated.map_or((6, true), |n| (n.matrix, n.full_range));
    for boxes in [
        AvifBoxes {
            nclx: Some((12, 13, matrix, full)),
            ..AvifBoxes::default()
        },
        AvifBoxes {
            nclx: stated.map(|n| (n.primaries, n.transfer, n.matrix, n.full_range)),
            icc: Some(fixtures::icc(moxcms::ColorProfile::new_display_p3())),
            ..AvifBoxes::default()
        },
    ] {
        let p = prepare(&fixtures::avif(&color, None, size, &boxes)).unwrap();
        assert!(p.source.color_converted);
        let px = p.image.get_pixel(16, 16).0;
        assert!(
            px[0] >= 248 && px[1] <= 10 && px[2] <= 10,
            "P3 → sRGB gave {px:?}"
        );
    }
    // BT.709 primaries with the sRGB curve: nothing to convert.
    let srgb = AvifBoxes {
        nclx: Some((1, 13, matrix, full)),
        ..AvifBoxes::default()
    };
    let p = prepare(&fixtures::avif(&color, None, size, &srgb)).unwrap();
    assert!(!p.source.color_converted);
    let px = p.image.get_pixel(16, 16).0;
    assert!(
        px[0].abs_diff(234) <= 3 && px[1].abs_diff(51) <= 3,
        "{px:?}"
    );
}

#[test]
fn ten_bit_avif_decodes_to_8_bit() {
    let img = source();
    let pixels: Vec<ravif::RGB8> = img
        .pixels()
        .map(|p| ravif::RGB8::new(p.0[0], p.0[1], p.0[2]))
        .collect();
    let encoded = ravif::Encoder::new()
        .with_quality(95.0)
        .with_speed(10)
        .with_bit_depth(ravif::BitDepth::Ten)
        .encode_rgb(ravif::Img::new(&pixels[..], 96, 64))
        .unwrap();
    let p = prepare(&encoded.avif_file).unwrap();
    assert_eq!((p.source.width, p.source.height), (96, 64));
    let original = Frame::Rgb(img).into_rgba();
    let err = mean_abs_diff(p.image.as_raw(), original.as_raw());
    assert!(err < 2.5, "10-bit round trip error {err:.2}");
}

#[test]
fn a_huge_ispe_is_refused_before_decoding() {
    let (color, _, size) = av1_payloads(&encode(&Frame::Rgb(source()), 60, false));
    for (w, h) in [(100_000, 100_000), (70_000, 10)] {
        let boxes = AvifBoxes {
            ispe: Some((w, h)),
            ..AvifBoxes::default()
        };
        let file = fixtures::avif(&color, None, size, &boxes);
        let err = prepare(&file).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LimitExceeded, "{w}x{h}: {err}");
    }
    // Within the limits but smaller than the AV1 frame: the decoder's size is refused.
    let boxes = AvifBoxes {
        ispe: Some((40, 30)),
        ..AvifBoxes::default()
    };
    let err = prepare(&fixtures::avif(&color, None, size, &boxes)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CorruptInput, "{err}");
    // A tight pixel limit refuses the real size from the header too.
    let limits = Limits::default().with_max_pixels(1000);
    let opts = Options::default().with_limits(limits);
    let file = fixtures::avif(&color, None, size, &AvifBoxes::default());
    assert_eq!(
        process(&file, &opts).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
}

#[test]
fn truncated_or_damaged_avif_is_corrupt_input() {
    let avif = encode(&Frame::Rgb(source()), 70, false);
    // Every cut: a typed error (corrupt input; never a panic or a success).
    for cut in (12..avif.len()).step_by(7) {
        let err = prepare(&avif[..cut]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CorruptInput, "cut at {cut}: {err}");
    }
    // Damaged AV1 data (the item's bytes overwritten) is corrupt input too.
    let (color, _, size) = av1_payloads(&avif);
    let garbage = vec![0x5A; color.len()];
    let err = prepare(&fixtures::avif(&garbage, None, size, &AvifBoxes::default())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CorruptInput, "{err}");
}

#[test]
fn a_sequence_shows_its_first_frame() {
    let img = source();
    let (color, _, size) = av1_payloads(&encode(&Frame::Rgb(img.clone()), 90, false));
    let file = fixtures::avifs_sequence(&color, size, 4);
    let p = prepare(&file).unwrap();
    assert_eq!(
        (p.source.width, p.source.height, p.source.frames),
        (96, 64, 5)
    );
    let original = Frame::Rgb(img).into_rgba();
    let err = mean_abs_diff(p.image.as_raw(), original.as_raw());
    assert!(err < 2.0, "first frame error {err:.2}");
    // The frame limit counts the sequence's samples.
    let opts = Options::default().with_limits(Limits::default().with_max_frames(3));
    assert_eq!(
        process(&file, &opts).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
}

#[test]
fn a_tiled_grid_image_is_unsupported_format() {
    let (color, _, size) = av1_payloads(&encode(&Frame::Rgb(source()), 60, false));
    let mut file = fixtures::avif(&color, None, size, &AvifBoxes::default());
    // The primary item's type `av01` → `grid` (a derived image of tiles).
    let at = fixtures::find(&file, b"av01").unwrap();
    file[at..at + 4].copy_from_slice(b"grid");
    let err = prepare(&file).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedFormat, "{err}");
}
