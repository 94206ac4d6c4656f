//! Shared by imgest's benchmarks: the bench images and the two workloads of the peer
//! comparison.
//!
//! The images are `../shared/bench-images` next to the workspace, or `$IMGEST_BENCH_IMAGES`.
//! Without them the benchmarks print why and measure nothing, unless `IMGEST_REQUIRE_CORPUS=1`.

use std::path::PathBuf;

use imgest::{Options, Variant};

/// One bench image.
#[derive(Debug, Clone)]
pub struct BenchImage {
    /// The file name (`iphone6-3264x2448.jpg`).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The bench images, sorted by name; empty (with a message) when the folder is absent.
pub fn bench_images() -> Vec<BenchImage> {
    let dir = match std::env::var_os("IMGEST_BENCH_IMAGES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench-images"),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        let required = std::env::var("IMGEST_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "IMGEST_REQUIRE_CORPUS=1 but no bench images at {}",
            dir.display()
        );
        eprintln!(
            "SKIPPED: the benchmarks need the bench images at {} (or IMGEST_BENCH_IMAGES)",
            dir.display()
        );
        return Vec::new();
    };
    let mut images: Vec<BenchImage> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "jpg" | "jpeg" | "png" | "webp" | "gif"))
        })
        .map(|p| BenchImage {
            name: p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            bytes: std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    images
}

/// The harness's `ingest` workload: thumbnail 150, medium 800, large 1600 and original, WebP
/// q85, plus the dominant colour (no placeholder; a one-colour palette).
pub fn ingest_options() -> Options {
    let mut o = Options::default();
    o.placeholder = false;
    o.palette_size = 1;
    o
}

/// The harness's `thumb` workload: one 800-px WebP q85.
pub fn thumb_options() -> Options {
    let mut o = Options::default();
    o.variants = vec![Variant::fit("medium", 800)];
    o.dominant_color = false;
    o.placeholder = false;
    o
}
