#![doc = include_str!("../../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]
//!
//! # Stages
//!
//! Each stage is a public module, so benches and advanced users can call one alone:
//! [`validate`] (sniff the format, walk the container once with [`container::read`]: size,
//! frames, orientation, ICC, metadata found; then every limit) → [`decode`] → [`color`] (to an
//! 8-bit [`frame::Frame`], RGB when opaque) → [`resize`] ([`resize::plan`] is a pure function)
//! → [`color`] (ICC → sRGB) → [`orient`] → [`encode`], with [`dominant`] and [`placeholder`]
//! beside. Resizing comes before the sRGB conversion and the orientation, so that those touch
//! only the pixels that are kept (a full-size variant still gets every pixel converted and
//! turned once). [`storage`] stores the variants.
//!
//! # Cargo features
//!
//! - `serde` (default): `Options` deserializes from snake_case JSON, `Output` serializes.
//! - `fs` (default): [`storage::FsStorage`].
//! - `rayon` (default): encode variants in parallel. Leave off for `wasm32`.
//! - `bmp`, `tiff` (default): accept BMP and TIFF input.
//! - `jpeg-output`, `png-output` (default): write JPEG and PNG variants (without them such a
//!   variant is `invalid_options`).
//! - `avif-output` (default): write AVIF variants (rav1e through ravif).
//! - `avif-input` (default): accept AVIF input (rav1d, the Rust port of dav1d; native builds
//!   only, it does not build for `wasm32-unknown-unknown`). Without it AVIF is
//!   `unsupported_format`.
//! - `avif-asm`: the x86-64 assembly of rav1e and rav1d (several times faster; needs `nasm`).

#[cfg(feature = "avif-input")]
mod avif;
mod budget;
pub mod color;
pub mod container;
pub mod decode;
pub mod dominant;
pub mod encode;
pub mod error;
pub mod frame;
mod libjpeg;
mod libwebp;
pub mod memory;
pub mod options;
pub mod orient;
pub mod output;
mod par;
mod pipeline;
pub mod placeholder;
pub mod resize;
mod shaper;
pub mod storage;
pub mod validate;

pub use budget::CancelToken;
pub use error::{Error, ErrorCode, LimitKind};
pub use options::{Limits, Options, OutputFormat, Variant};
pub use output::{Color, MetadataFound, Output, PaletteColor, SourceReport, VariantOutput};
pub use pipeline::{Pipeline, PipelinePool, Prepared, process, shrink_factor, target_size};
pub use validate::Format;

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether this build's JPEG decoder (libjpeg-turbo) has its SIMD code (x86 SSE2/AVX2, Arm
/// Neon). A native build is without it only when it was made without `nasm` on x86 (the build
/// warns), and its JPEG decode then takes about 2.4× the CPU. Always `false` in WebAssembly.
#[must_use]
pub const fn jpeg_simd() -> bool {
    cfg!(jpeg_simd)
}

/// Marsaglia's xorshift32 from `seed` (non-zero): the tests' reproducible noise.
#[cfg(test)]
pub(crate) fn xorshift32(mut seed: u32) -> impl FnMut() -> u32 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    }
}

/// A `w`×`h` RGB JPEG (4:2:0, quality 90) of gradients and noise from `seed`: the tests' JPEG.
#[cfg(test)]
pub(crate) fn test_jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut noise = xorshift32(seed);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let n = (noise() >> 28) as u8;
            rgb.extend([(x * 255 / w) as u8 ^ n, (y * 255 / h) as u8, 128 + n]);
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The shared test corpus for unit tests, as tests/integration/corpus.rs finds it:
/// `$IMGEST_CORPUS`, else `../shared/corpus` next to the workspace. `None` (the test skips, and
/// says so) when it is absent, unless `IMGEST_REQUIRE_CORPUS=1` makes it mandatory.
#[cfg(test)]
pub(crate) fn corpus_root() -> Option<std::path::PathBuf> {
    let root = match std::env::var_os("IMGEST_CORPUS") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    if root.join("EXPECTED.json").is_file() {
        return Some(root);
    }
    let required = std::env::var("IMGEST_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "IMGEST_REQUIRE_CORPUS=1 but no corpus at {}",
        root.display()
    );
    println!(
        "SKIPPED: no corpus at {} (set IMGEST_CORPUS)",
        root.display()
    );
    None
}
