//! Arbitrary bytes through the whole pipeline with tight limits: a result or a typed error,
//! never a panic, a hang or a large allocation. The first byte picks the options: one small
//! variant (JPEG shrink-on-load, palette, placeholder) or full size in linear light.
#![no_main]

use imgest::{Limits, Options, Pipeline, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let limits = Limits::default()
        .with_max_input_bytes(1 << 20)
        .with_max_pixels(4_000_000)
        .with_max_frames(64)
        .with_max_alloc_bytes(64 << 20);
    let options = if pick & 1 == 0 {
        Options::default().with_variants(vec![Variant::fit("small", 48)])
    } else {
        Options::default()
            .with_variants(vec![Variant::original("full")])
            .with_linear_light(true)
            .with_placeholder(false)
    }
    .with_limits(limits);
    let mut pipeline = Pipeline::new(options).expect("valid options");
    if let Ok(out) = pipeline.run(input) {
        for v in &out.variants {
            assert!(v.width >= 1 && v.height >= 1 && !v.bytes.is_empty());
            assert!(u64::from(v.width) * u64::from(v.height) <= 4_000_000);
        }
    }
});
