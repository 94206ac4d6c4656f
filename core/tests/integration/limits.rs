//! Limits in three layers (image-rs style): no limits → ok, permissive → ok, tight → error.

use imgest::{ErrorCode, LimitKind, Limits, Options, process};

use crate::fixtures;

fn run(bytes: &[u8], limits: Limits) -> Result<imgest::Output, imgest::Error> {
    process(
        bytes,
        &Options::default()
            .with_limits(limits)
            .with_placeholder(false),
    )
}

#[test]
fn three_layers() {
    let bytes = fixtures::png_rgb(&fixtures::gradient(1200, 900), None, None);
    run(&bytes, Limits::none()).unwrap();
    run(&bytes, Limits::default()).unwrap();
    let tight: [(Limits, LimitKind); 5] = [
        (
            Limits::default().with_max_pixels(1_000_000),
            LimitKind::Pixels,
        ),
        (
            Limits::default().with_max_dimensions(1000, 5000),
            LimitKind::Width,
        ),
        (
            Limits::default().with_max_dimensions(5000, 800),
            LimitKind::Height,
        ),
        (
            Limits::default().with_max_input_bytes(1000),
            LimitKind::InputBytes,
        ),
        (
            Limits::default().with_max_alloc_bytes(1_000_000),
            LimitKind::Alloc,
        ),
    ];
    for (limits, kind) in tight {
        let err = run(&bytes, limits).unwrap_err();
        assert_eq!(err.code(), ErrorCode::LimitExceeded, "{kind}: {err}");
        assert_eq!(err.limit(), Some(kind), "{err}");
    }
}

#[test]
fn decoded_buffer_counts_against_the_alloc_budget() {
    // 1000×1000 RGBA at 16 bits: 8 MB decoded, though 4 bytes per pixel would be 4 MB.
    let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_pixel(
        1000,
        1000,
        image::Rgba([9, 9, 9, 65535]),
    );
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba16(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    run(&png, Limits::default()).unwrap();
    let err = run(&png, Limits::default().with_max_alloc_bytes(4_000_000)).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Alloc), "{err}");
    assert!(err.to_string().contains("8000000"), "{err}");
}

#[test]
fn frames_limit() {
    let frames: Vec<image::Frame> = (0..3)
        .map(|i| {
            image::Frame::new(image::RgbaImage::from_pixel(
                8,
                8,
                image::Rgba([i * 80, 0, 0, 255]),
            ))
        })
        .collect();
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.encode_frames(frames).unwrap();
    }
    let out = run(&gif, Limits::default()).unwrap();
    assert_eq!(out.source.frames, 3);
    run(&gif, Limits::default().with_max_frames(3)).unwrap();
    let err = run(&gif, Limits::default().with_max_frames(2)).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Frames));
}

#[test]
fn bomb_headers_are_rejected_before_decoding() {
    // A tiny GIF declaring a 65535×65535 canvas.
    let err = run(&fixtures::gif_bomb(), Limits::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LimitExceeded, "{err}");
    // A PNG with only a header declaring 100000×100000: the header check fires first, so the
    // answer is limit_exceeded, not corrupt_input.
    let err = run(
        &fixtures::png_header_only(100_000, 100_000),
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LimitExceeded, "{err}");
    let err = run(&fixtures::png_header_only(16000, 16000), Limits::default()).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Pixels));
}

#[test]
fn jpeg_scans_are_counted_before_decoding() {
    // Every progressive scan is a pass over the whole image: thousands of tiny scans in a small
    // file would cost minutes of CPU (the shrink-on-load decoder has no limit of its own).
    let jpeg = fixtures::jpeg(&fixtures::gradient(64, 48), None, None);
    run(&jpeg, Limits::default().with_max_scans(1)).unwrap();
    let err = run(
        &fixtures::with_scans(&jpeg, 2),
        Limits::default().with_max_scans(1),
    )
    .unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Scans), "{err}");
    let many = fixtures::with_scans(&jpeg, 5000);
    let err = run(&many, Limits::default()).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Scans), "{err}");
    assert!(err.to_string().contains("5000"), "{err}");
    // The same through the shrink-on-load path (a 16-px variant of a 64-px image).
    let small = Options::default().with_variants(vec![imgest::Variant::fit("t", 16)]);
    let err = process(&many, &small).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::Scans), "{err}");
}

#[test]
fn icc_profiles_are_bounded_before_inflating() {
    let img = fixtures::gradient(32, 32);
    // 9 MiB of zeros compress to a few KB in the PNG's iCCP chunk.
    let png = fixtures::png_rgb(&img, None, Some(vec![0; 9 << 20]));
    assert!(png.len() < 100_000, "{}", png.len());
    let err = run(&png, Limits::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LimitExceeded, "{err}");
    assert_eq!(err.limit(), Some(LimitKind::IccBytes), "{err}");
    assert!(err.to_string().contains("8388608"), "{err}");
    // Under a higher limit the (meaningless, all-zero) profile is ignored and the image decodes.
    let out = run(&png, Limits::default().with_max_icc_bytes(16 << 20)).unwrap();
    assert_eq!((out.source.width, out.source.height), (32, 32));
    // Stored (uncompressed) profiles count too: WebP ICCP.
    let webp = fixtures::webp_lossless(&img, None, Some(vec![7; 5000]));
    let err = run(&webp, Limits::default().with_max_icc_bytes(4999)).unwrap_err();
    assert_eq!(err.limit(), Some(LimitKind::IccBytes), "{err}");
    run(&webp, Limits::default().with_max_icc_bytes(5000)).unwrap();
}
