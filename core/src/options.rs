//! [`Options`]: the one configuration struct, and the wire format of every binding.
//!
//! With the `serde` feature, `Options` (de)serializes as snake_case JSON; unknown keys are
//! rejected, and every missing key takes its default.

use crate::error::Error;

/// Output encodings.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum OutputFormat {
    /// WebP (lossy by default, lossless with [`Variant::lossless`]); alpha is kept.
    #[default]
    Webp,
    /// Baseline JPEG; alpha is composited over white.
    Jpeg,
    /// PNG (lossless); alpha is kept.
    Png,
    /// AVIF (AV1 still image, 8-bit sRGB, lossy); alpha is kept. Speed is set by
    /// [`Variant::effort`].
    Avif,
}

impl OutputFormat {
    /// Every output format, for the bindings' tables (name, MIME type, extension).
    pub const ALL: &'static [OutputFormat] = &[
        OutputFormat::Webp,
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Avif,
    ];

    /// Lower-case name (`"webp"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Avif => "avif",
        }
    }

    /// Usual file extension (`"webp"`, `"jpg"`, `"png"`, `"avif"`).
    pub const fn extension(self) -> &'static str {
        match self {
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Avif => "avif",
        }
    }

    /// MIME type (`"image/webp"`).
    pub const fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Webp => "image/webp",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Avif => "image/avif",
        }
    }
}

/// One output variant: a bounding box to fit inside, and an encoding.
///
/// The image is scaled to fit inside `max_width` × `max_height`, keeping its aspect ratio and
/// never upscaling. With neither bound set the variant is the full (oriented) image.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Variant {
    /// Name of the variant, used in reports and storage keys: 1–64 characters of `a-z`, `0-9`,
    /// `_` and `-`, unique within [`Options::variants`]. Required.
    pub name: String,
    /// Maximum width in pixels; `None` leaves the width unbounded. Default: `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_width: Option<u32>,
    /// Maximum height in pixels; `None` leaves the height unbounded. Default: `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_height: Option<u32>,
    /// Output encoding. Default: [`OutputFormat::Webp`].
    #[cfg_attr(feature = "serde", serde(default))]
    pub format: OutputFormat,
    /// Encoder quality 0–100 (WebP lossy, JPEG and AVIF; ignored by PNG and lossless WebP).
    /// Default: `85`. AVIF at 85 is about 12 % smaller than WebP at 85 with a higher SSIM; AVIF
    /// at 60 matches sharp's `avif({quality: 50})` in bytes and SSIM (`benches/RESULTS.md`).
    #[cfg_attr(feature = "serde", serde(default = "default_quality"))]
    pub quality: u8,
    /// Lossless WebP instead of lossy (ignored by JPEG, PNG and AVIF). Default: `false`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub lossless: bool,
    /// AVIF encoder effort 0–9, as sharp's `avif({effort})`: higher is slower and smaller
    /// (ignored by the other formats). Default: [`DEFAULT_AVIF_EFFORT`].
    #[cfg_attr(feature = "serde", serde(default = "default_effort"))]
    pub effort: u8,
}

#[cfg(feature = "serde")]
fn default_effort() -> u8 {
    DEFAULT_AVIF_EFFORT
}

/// The default AVIF effort, 4 (sharp's default).
pub const DEFAULT_AVIF_EFFORT: u8 = 4;

#[cfg(feature = "serde")]
fn default_quality() -> u8 {
    DEFAULT_QUALITY
}

/// The default encoder quality, 85 (the original service's `WEBP_QUALITY`).
pub const DEFAULT_QUALITY: u8 = 85;

impl Variant {
    /// A WebP variant at quality 85 that fits inside a `size` × `size` box.
    pub fn fit(name: impl Into<String>, size: u32) -> Variant {
        Variant {
            name: name.into(),
            max_width: Some(size),
            max_height: Some(size),
            format: OutputFormat::Webp,
            quality: DEFAULT_QUALITY,
            lossless: false,
            effort: DEFAULT_AVIF_EFFORT,
        }
    }

    /// A WebP variant at quality 85 at the full (oriented) size.
    pub fn original(name: impl Into<String>) -> Variant {
        Variant {
            name: name.into(),
            max_width: None,
            max_height: None,
            format: OutputFormat::Webp,
            quality: DEFAULT_QUALITY,
            lossless: false,
            effort: DEFAULT_AVIF_EFFORT,
        }
    }

    /// Sets the bounding box.
    pub fn with_box(mut self, max_width: Option<u32>, max_height: Option<u32>) -> Variant {
        self.max_width = max_width;
        self.max_height = max_height;
        self
    }

    /// Sets the output format.
    pub fn with_format(mut self, format: OutputFormat) -> Variant {
        self.format = format;
        self
    }

    /// Sets the quality (0–100).
    pub fn with_quality(mut self, quality: u8) -> Variant {
        self.quality = quality;
        self
    }

    /// Chooses lossless WebP.
    pub fn with_lossless(mut self, lossless: bool) -> Variant {
        self.lossless = lossless;
        self
    }

    /// Sets the AVIF encoder effort (0–9).
    pub fn with_effort(mut self, effort: u8) -> Variant {
        self.effort = effort;
        self
    }
}

/// Resource limits, checked from the header before any pixel buffer is allocated.
///
/// The defaults are finite and safe for untrusted uploads. [`Limits::none`] exists for trusted
/// batch jobs only.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted input, in bytes. Default: `52428800` (50 MiB).
    pub max_input_bytes: u64,
    /// Largest accepted width × height (of the stored image, and of an animation's canvas).
    /// Default: `50000000` (50 megapixels).
    pub max_pixels: u64,
    /// Largest accepted width in pixels. Default: `16384`.
    pub max_width: u32,
    /// Largest accepted height in pixels. Default: `16384`.
    pub max_height: u32,
    /// Most frames accepted in an animation (only the first is decoded). Default: `1000`.
    pub max_frames: u32,
    /// Largest single allocation the decoders may make, in bytes. Default: `536870912` (512 MiB).
    pub max_alloc_bytes: u64,
    /// Most scans accepted in a JPEG (counted in the file before decoding). Every progressive
    /// scan is a pass over the whole image, so a small file with thousands of scans would cost
    /// minutes of CPU. Default: `100` (real progressive JPEGs have about 10; the full-size JPEG
    /// decoder refuses more than 100 in any case).
    pub max_scans: u32,
    /// Largest accepted ICC profile, in bytes after decompression (PNG `iCCP` is inflated with
    /// this bound before decoding, so a zlib bomb in the profile costs nothing). Default:
    /// `8388608` (8 MiB; the largest printer profiles are 2–5 MB).
    pub max_icc_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_input_bytes: 50 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_width: 16384,
            max_height: 16384,
            max_frames: 1000,
            max_alloc_bytes: 512 * 1024 * 1024,
            max_scans: 100,
            max_icc_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// No limits at all. For trusted input only: a hostile file can then exhaust memory.
    pub const fn none() -> Limits {
        Limits {
            max_input_bytes: u64::MAX,
            max_pixels: u64::MAX,
            max_width: u32::MAX,
            max_height: u32::MAX,
            max_frames: u32::MAX,
            max_alloc_bytes: u64::MAX,
            max_scans: u32::MAX,
            max_icc_bytes: u64::MAX,
        }
    }

    /// Sets `max_input_bytes`.
    pub fn with_max_input_bytes(mut self, v: u64) -> Limits {
        self.max_input_bytes = v;
        self
    }

    /// Sets `max_pixels`.
    pub fn with_max_pixels(mut self, v: u64) -> Limits {
        self.max_pixels = v;
        self
    }

    /// Sets `max_width` and `max_height`.
    pub fn with_max_dimensions(mut self, width: u32, height: u32) -> Limits {
        self.max_width = width;
        self.max_height = height;
        self
    }

    /// Sets `max_frames`.
    pub fn with_max_frames(mut self, v: u32) -> Limits {
        self.max_frames = v;
        self
    }

    /// Sets `max_alloc_bytes`.
    pub fn with_max_alloc_bytes(mut self, v: u64) -> Limits {
        self.max_alloc_bytes = v;
        self
    }

    /// Sets `max_scans`.
    pub fn with_max_scans(mut self, v: u32) -> Limits {
        self.max_scans = v;
        self
    }

    /// Sets `max_icc_bytes`.
    pub fn with_max_icc_bytes(mut self, v: u64) -> Limits {
        self.max_icc_bytes = v;
        self
    }
}

/// Everything that configures a run of the pipeline.
///
/// `Options::default()` reproduces the original service: variants `thumbnail` (150×150),
/// `medium` (800×800), `large` (1600×1600) and `original`, all WebP lossy at quality 85.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Options {
    /// Resource limits. Default: [`Limits::default()`].
    pub limits: Limits,
    /// The variants to produce, in order (1–16 of them).
    /// Default: `thumbnail` 150, `medium` 800, `large` 1600, `original`.
    pub variants: Vec<Variant>,
    /// Resample in linear light instead of on sRGB-encoded values (more correct for fine
    /// high-contrast detail, slower). Default: `false`.
    pub linear_light: bool,
    /// Compute the dominant colour and palette. Default: `true`.
    pub dominant_color: bool,
    /// Largest palette to report (0–16). Default: `5`.
    pub palette_size: u8,
    /// Compute a ThumbHash placeholder. Default: `true`.
    pub placeholder: bool,
    /// Decode a JPEG at 1/2, 1/4 or 1/8 scale (DCT-domain scaling) when every variant is at
    /// least 4, 10 or 20 times smaller than the image, as libjpeg-based tools do: much faster
    /// for thumbnails, at no visible cost (the scaled image is still ≥ 2× each variant at 1/2
    /// scale, ≥ 2.5× at 1/4 and 1/8, before the Lanczos resize). Default: `true`.
    pub shrink_on_load: bool,
    /// Time budget of one run, in milliseconds: a run still going when it is spent stops within
    /// milliseconds with [`Error::Timeout`](crate::Error::Timeout) (`timeout`) and frees what it
    /// allocated. It counts from the call: in a native build with threads, a wait for a free
    /// thread of the pool counts too (a run queued behind other work past its budget never
    /// starts). Default: none (a run is bounded only by [`Limits`]).
    pub timeout_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            limits: Limits::default(),
            variants: vec![
                Variant::fit("thumbnail", 150),
                Variant::fit("medium", 800),
                Variant::fit("large", 1600),
                Variant::original("original"),
            ],
            linear_light: false,
            dominant_color: true,
            palette_size: 5,
            placeholder: true,
            shrink_on_load: true,
            timeout_ms: None,
        }
    }
}

/// Most variants one run may produce.
pub const MAX_VARIANTS: usize = 16;

impl Options {
    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self
    }

    /// Replaces the variants.
    pub fn with_variants(mut self, variants: Vec<Variant>) -> Options {
        self.variants = variants;
        self
    }

    /// Sets every variant's quality (the service's `WEBP_QUALITY`).
    pub fn with_quality(mut self, quality: u8) -> Options {
        for v in &mut self.variants {
            v.quality = quality;
        }
        self
    }

    /// Chooses linear-light resampling.
    pub fn with_linear_light(mut self, on: bool) -> Options {
        self.linear_light = on;
        self
    }

    /// Turns the dominant colour and palette on or off.
    pub fn with_dominant_color(mut self, on: bool) -> Options {
        self.dominant_color = on;
        self
    }

    /// Turns JPEG shrink-on-load on or off.
    pub fn with_shrink_on_load(mut self, on: bool) -> Options {
        self.shrink_on_load = on;
        self
    }

    /// Sets the time budget of a run ([`Options::timeout_ms`]; `None`: unbounded).
    pub fn with_timeout_ms(mut self, timeout_ms: Option<u64>) -> Options {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Turns the ThumbHash placeholder on or off.
    pub fn with_placeholder(mut self, on: bool) -> Options {
        self.placeholder = on;
        self
    }

    /// Parses options from JSON (the wire format).
    #[cfg(feature = "serde")]
    pub fn from_json(json: &str) -> Result<Options, Error> {
        let options: Options =
            serde_json::from_str(json).map_err(|e| Error::invalid("options", e.to_string()))?;
        options.validate()?;
        Ok(options)
    }

    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), Error> {
        let l = &self.limits;
        for (field, zero) in [
            ("limits.max_input_bytes", l.max_input_bytes == 0),
            ("limits.max_pixels", l.max_pixels == 0),
            ("limits.max_width", l.max_width == 0),
            ("limits.max_height", l.max_height == 0),
            ("limits.max_frames", l.max_frames == 0),
            ("limits.max_alloc_bytes", l.max_alloc_bytes == 0),
            ("limits.max_scans", l.max_scans == 0),
            ("limits.max_icc_bytes", l.max_icc_bytes == 0),
        ] {
            if zero {
                return Err(Error::invalid(field, "must be at least 1"));
            }
        }
        if self.variants.is_empty() {
            return Err(Error::invalid(
                "variants",
                "at least one variant is required",
            ));
        }
        if self.variants.len() > MAX_VARIANTS {
            return Err(Error::invalid(
                "variants",
                format!("at most {MAX_VARIANTS} variants are allowed"),
            ));
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid("timeout_ms", "must be at least 1"));
        }
        if self.palette_size > 16 {
            return Err(Error::invalid("palette_size", "must be 0..=16"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            let name_ok = !v.name.is_empty()
                && v.name.len() <= 64
                && v.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !name_ok {
                return Err(Error::invalid(
                    format!("variants[{i}].name"),
                    "must be 1-64 characters of a-z, 0-9, '_' and '-'",
                ));
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(Error::invalid(
                    format!("variants[{i}].name"),
                    format!("duplicate variant name {:?}", v.name),
                ));
            }
            if v.quality > 100 {
                return Err(Error::invalid(
                    format!("variants[{i}].quality"),
                    "must be 0..=100",
                ));
            }
            if v.effort > 9 {
                return Err(Error::invalid(
                    format!("variants[{i}].effort"),
                    "must be 0..=9",
                ));
            }
            let enabled = match v.format {
                OutputFormat::Webp => true,
                OutputFormat::Jpeg => cfg!(feature = "jpeg-output"),
                OutputFormat::Png => cfg!(feature = "png-output"),
                OutputFormat::Avif => cfg!(feature = "avif-output"),
            };
            if !enabled {
                return Err(Error::invalid(
                    format!("variants[{i}].format"),
                    format!("{} output is not enabled in this build", v.format.as_str()),
                ));
            }
            if v.max_width == Some(0) {
                return Err(Error::invalid(
                    format!("variants[{i}].max_width"),
                    "must be at least 1",
                ));
            }
            if v.max_height == Some(0) {
                return Err(Error::invalid(
                    format!("variants[{i}].max_height"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reproduce_the_service() {
        let o = Options::default();
        let boxes: Vec<_> = o
            .variants
            .iter()
            .map(|v| (v.name.as_str(), v.max_width, v.max_height, v.quality))
            .collect();
        assert_eq!(
            boxes,
            [
                ("thumbnail", Some(150), Some(150), 85),
                ("medium", Some(800), Some(800), 85),
                ("large", Some(1600), Some(1600), 85),
                ("original", None, None, 85),
            ]
        );
        assert!(
            o.variants
                .iter()
                .all(|v| v.format == OutputFormat::Webp && !v.lossless)
        );
        o.validate().unwrap();
    }

    #[test]
    fn invalid_options_name_the_field() {
        let cases: Vec<(Options, &str)> = vec![
            (Options::default().with_variants(vec![]), "variants"),
            (Options::default().with_quality(101), "variants[0].quality"),
            (
                Options::default().with_variants(vec![Variant::fit("a", 1).with_effort(10)]),
                "variants[0].effort",
            ),
            (
                Options::default().with_variants(vec![Variant::fit("a", 1), Variant::fit("a", 2)]),
                "variants[1].name",
            ),
            (
                Options::default().with_variants(vec![Variant::fit("../x", 1)]),
                "variants[0].name",
            ),
            (
                Options::default().with_variants(vec![Variant::fit("a", 0)]),
                "variants[0].max_width",
            ),
            (
                Options::default().with_limits(Limits::default().with_max_pixels(0)),
                "limits.max_pixels",
            ),
            (
                Options::default()
                    .with_variants((0..17).map(|i| Variant::fit(format!("v{i}"), 9)).collect()),
                "variants",
            ),
        ];
        for (o, field) in cases {
            match o.validate() {
                Err(Error::InvalidOptions { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[cfg(not(all(feature = "jpeg-output", feature = "png-output")))]
    #[test]
    fn output_formats_left_out_of_the_build_are_invalid_options() {
        for (format, on) in [
            (OutputFormat::Jpeg, cfg!(feature = "jpeg-output")),
            (OutputFormat::Png, cfg!(feature = "png-output")),
        ] {
            let mut v = Variant::fit("a", 10);
            v.format = format;
            let result = Options::default().with_variants(vec![v]).validate();
            match result {
                Ok(()) => assert!(on, "{format:?}"),
                Err(Error::InvalidOptions { field, reason }) => {
                    assert!(!on, "{format:?}");
                    assert_eq!(field, "variants[0].format");
                    assert!(reason.contains("not enabled in this build"), "{reason}");
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    }

    #[cfg(all(feature = "serde", feature = "png-output"))]
    #[test]
    fn json_wire_format() {
        use crate::error::ErrorCode;
        let o = Options::from_json(
            r#"{"variants":[{"name":"t","max_width":100,"max_height":100,"format":"png"}],"linear_light":true}"#,
        )
        .unwrap();
        assert_eq!(o.variants[0].format, OutputFormat::Png);
        assert_eq!(o.variants[0].quality, 85);
        assert!(o.linear_light);
        assert_eq!(o.limits, Limits::default());
        // Unknown keys are rejected at every level.
        for bad in [
            r#"{"varients":[]}"#,
            r#"{"variants":[{"name":"t","size":3}]}"#,
            r#"{"limits":{"max_pixel":3}}"#,
            r#"{"variants":[{"name":"t","format":"gif"}]}"#,
            r#"{"variants":[{"name":"t","quality":300}]}"#,
            r#"not json"#,
        ] {
            let err = Options::from_json(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidOptions, "{bad}");
        }
        // Round trip.
        let json = serde_json::to_string(&Options::default()).unwrap();
        assert_eq!(Options::from_json(&json).unwrap(), Options::default());
    }
}
