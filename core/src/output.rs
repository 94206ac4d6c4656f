//! What a run returns: the encoded variants, the colours, a placeholder and a report on the
//! source.

use crate::options::OutputFormat;
use crate::validate::Format;

/// One encoded variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VariantOutput {
    /// The variant's name from [`crate::Variant::name`].
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoding.
    pub format: OutputFormat,
    /// Encoded size in bytes.
    pub size: usize,
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256: String,
    /// The encoded image (not serialized).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub bytes: Vec<u8>,
}

/// A colour in sRGB, as `#rrggbb` and as components.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Color {
    /// `#rrggbb`, lower case.
    pub hex: String,
    /// `[r, g, b]`.
    pub rgb: [u8; 3],
}

/// A palette entry.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaletteColor {
    /// `#rrggbb`.
    pub hex: String,
    /// `[r, g, b]`.
    pub rgb: [u8; 3],
    /// Share of the visible pixels, 0–1.
    pub weight: f32,
}

/// Which metadata the source carried. All of it is removed from every output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetadataFound {
    /// EXIF.
    pub exif: bool,
    /// GPS position (inside EXIF).
    pub gps: bool,
    /// Camera maker notes (inside EXIF).
    pub makernote: bool,
    /// XMP.
    pub xmp: bool,
    /// IPTC (JPEG's Photoshop IPTC record, PNG's and TIFF's IPTC profiles).
    pub iptc: bool,
    /// Photoshop image resources other than the IPTC record (JPEG APP13, PNG raw profile
    /// `8bim`, TIFF tag 34377): paths, slices, thumbnails, print settings.
    pub photoshop: bool,
    /// A JPEG multi-picture index (MPF), which points at further images after the first.
    pub mpf: bool,
    /// An embedded ICC profile (applied to the pixels, then removed).
    pub icc: bool,
    /// Text comments.
    pub comment: bool,
}

impl MetadataFound {
    /// True when any metadata was present.
    pub fn any(&self) -> bool {
        self.exif
            || self.gps
            || self.makernote
            || self.xmp
            || self.iptc
            || self.photoshop
            || self.mpf
            || self.icc
            || self.comment
    }
}

/// Facts about the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SourceReport {
    /// Format detected from the magic bytes.
    pub format: Format,
    /// Size of the input in bytes.
    pub bytes: u64,
    /// Width as stored, before orientation.
    pub stored_width: u32,
    /// Height as stored, before orientation.
    pub stored_height: u32,
    /// EXIF orientation applied (1 = none).
    pub orientation: u8,
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// Frames in the file (only the first is used).
    pub frames: u32,
    /// True when some pixel is not fully opaque.
    pub has_alpha: bool,
    /// Metadata that was present, and removed.
    pub metadata: MetadataFound,
    /// Description of the embedded ICC profile, if any.
    pub icc_description: Option<String>,
    /// True when an embedded profile was used to convert the pixels to sRGB.
    pub color_converted: bool,
    /// Bytes found after the end of the image (appended payloads, polyglots); never copied.
    pub trailing_bytes: u64,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Output {
    /// The variants, in the order of [`crate::Options::variants`].
    pub variants: Vec<VariantOutput>,
    /// The dominant colour (of the visible pixels), when enabled and any pixel is visible.
    pub dominant_color: Option<Color>,
    /// Up to `palette_size` colours, heaviest first.
    pub palette: Vec<PaletteColor>,
    /// A ThumbHash of the image, base64 (standard alphabet, padded), when enabled.
    pub placeholder: Option<String>,
    /// Facts about the input.
    pub source: SourceReport,
}

impl Output {
    /// The variant with this name.
    pub fn variant(&self, name: &str) -> Option<&VariantOutput> {
        self.variants.iter().find(|v| v.name == name)
    }
}
