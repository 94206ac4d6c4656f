//! Property tests: the resize plan's invariants, and no panic on arbitrary or mutated input.

use imgest::resize::plan;
use imgest::{Limits, Options, Pipeline};
use proptest::prelude::*;

use crate::fixtures;

proptest! {
    #[test]
    fn plan_fits_keeps_aspect_and_never_upscales(
        w in 1u32..20_000, h in 1u32..20_000, bw in 1u32..5_000, bh in 1u32..5_000,
    ) {
        let (nw, nh) = plan(w, h, Some(bw), Some(bh));
        prop_assert!(nw >= 1 && nh >= 1);
        prop_assert!(nw <= bw.max(1) && nh <= bh.max(1));
        prop_assert!(nw <= w && nh <= h, "upscaled {w}x{h} -> {nw}x{nh}");
        if nw == w && nh == h {
            prop_assert!(w <= bw && h <= bh);
        } else {
            // One edge touches the box, and the other is within 1 px of the exact aspect.
            prop_assert!(nw == bw || nh == bh);
            let exact_h = f64::from(h) * f64::from(nw) / f64::from(w);
            let exact_w = f64::from(w) * f64::from(nh) / f64::from(h);
            prop_assert!(
                (f64::from(nh) - exact_h).abs() <= 1.0 || (f64::from(nw) - exact_w).abs() <= 1.0,
                "{w}x{h} into {bw}x{bh} gave {nw}x{nh}"
            );
        }
    }
}

fn tight() -> Options {
    Options::default()
        .with_limits(
            Limits::default()
                .with_max_pixels(1_000_000)
                .with_max_input_bytes(1 << 20),
        )
        .with_placeholder(false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Pipeline::new(tight()).unwrap().run(&bytes);
    }

    #[test]
    fn magic_prefixed_noise_never_panics(
        magic in prop::sample::select(vec![
            &b"\xFF\xD8\xFF\xE0"[..], b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x20\0\0\0WEBPVP8L",
            b"II*\0", b"MM\0*", b"BM",
        ]),
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&tail);
        let _ = Pipeline::new(tight()).unwrap().run(&bytes);
    }
}

#[test]
fn mutated_valid_files_never_panic() {
    let img = fixtures::gradient(24, 16);
    let rgba = image::DynamicImage::ImageRgb8(img.clone()).to_rgba8();
    let seeds = [
        fixtures::jpeg(&img, Some(fixtures::exif_block(6, true)), None),
        fixtures::png_rgb(&img, Some(fixtures::exif_block(3, false)), None),
        fixtures::webp_lossless(&img, Some(fixtures::exif_block(8, false)), None),
        fixtures::gif(&rgba),
    ];
    let mut pipeline = Pipeline::new(tight()).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for _ in 0..300 {
            let mut bytes = seed.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            let _ = pipeline.run(&bytes);
        }
    }
}
