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

/// Inserts `icc` into a JPEG as `ICC_PROFILE` APP2 segments right after SOI (the pixels stay
/// the same bytes).
pub fn tag_jpeg(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let chunks: Vec<&[u8]> = icc.chunks(65_519).collect();
    let mut out = jpeg[..2].to_vec();
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((chunk.len() + 16) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[(i + 1) as u8, chunks.len() as u8]);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// ICC-tagged inputs, each next to the same pixels untagged: the sharp bench photo tagged
/// Display P3, Adobe RGB and Rec. 2020 (matrix-shaper profiles written by `moxcms`; the pixels
/// are read as that space, as a viewer would), the photo as gray JPEG tagged gray gamma 2.2,
/// and the corpus's CMYK JPEG with its SWOP profile (a LUT profile) when the corpus is there.
/// Names end in `+<tag>`; the untagged twin is `<name>` itself.
pub fn tagged_images() -> Vec<BenchImage> {
    let images = bench_images();
    let Some(photo) = images.iter().find(|i| i.name.starts_with("sharp-bench")) else {
        return Vec::new();
    };
    let mut out = vec![photo.clone()];
    for (tag, profile) in [
        ("p3", moxcms::ColorProfile::new_display_p3()),
        ("adobergb", moxcms::ColorProfile::new_adobe_rgb()),
        ("rec2020", moxcms::ColorProfile::new_bt2020()),
    ] {
        let icc = profile.encode().expect("moxcms writes its profiles");
        out.push(BenchImage {
            name: format!("{}+{tag}", photo.name),
            bytes: tag_jpeg(&photo.bytes, &icc),
        });
    }
    let gray = image::load_from_memory(&photo.bytes)
        .expect("the bench photo decodes")
        .to_luma8();
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut gray_jpeg, 90)
        .encode_image(&gray)
        .expect("encodes");
    let gray_icc = moxcms::ColorProfile::new_gray_with_gamma(2.2)
        .encode()
        .expect("moxcms writes its profiles");
    let gray_name = photo.name.replace(".jpg", "-gray.jpg");
    out.push(BenchImage {
        name: format!("{gray_name}+gray22"),
        bytes: tag_jpeg(&gray_jpeg, &gray_icc),
    });
    out.push(BenchImage {
        name: gray_name,
        bytes: gray_jpeg,
    });
    let corpus = std::env::var_os("IMGEST_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        PathBuf::from,
    );
    if let Ok(cmyk) = std::fs::read(corpus.join("jpeg/Channel_digital_image_CMYK_color.jpg")) {
        out.push(BenchImage {
            name: "cmyk-500x333.jpg+swop".into(),
            bytes: cmyk,
        });
    }
    out
}
