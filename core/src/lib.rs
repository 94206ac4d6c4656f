#![doc = include_str!("../../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]
//!
//! # Stages
//!
//! Each stage is a public module, so benches and advanced users can call one alone:
//! [`validate`] (sniff + header limits) → [`decode`] → [`color`] (to an 8-bit [`frame::Frame`],
//! RGB when opaque) → [`resize`] ([`resize::plan`] is a pure function) → [`color`] (ICC → sRGB)
//! → [`orient`] → [`encode`], with [`dominant`] and [`placeholder`] beside. Resizing comes
//! before the sRGB conversion and the orientation, so that those touch only the pixels that are
//! kept (a full-size variant still gets every pixel converted and turned once).
//! [`container`] reads headers and metadata without decoding; [`storage`] stores the variants.
//!
//! # Cargo features
//!
//! - `serde` (default): `Options` deserializes from snake_case JSON, `Output` serializes.
//! - `fs` (default): [`storage::FsStorage`].
//! - `rayon` (default): encode variants in parallel. Leave off for `wasm32`.
//! - `bmp`, `tiff` (default): accept BMP and TIFF input.
//! - `jpeg-output`, `png-output` (default): write JPEG and PNG variants (without them such a
//!   variant is `invalid_options`).

pub mod color;
pub mod container;
pub mod decode;
pub mod dominant;
pub mod encode;
pub mod error;
pub mod frame;
mod libwebp;
pub mod memory;
pub mod options;
pub mod orient;
pub mod output;
mod pipeline;
pub mod placeholder;
pub mod resize;
mod shaper;
pub mod storage;
pub mod validate;

pub use error::{Error, ErrorCode, LimitKind};
pub use options::{Limits, Options, OutputFormat, Variant};
pub use output::{Color, MetadataFound, Output, PaletteColor, SourceReport, VariantOutput};
pub use pipeline::{Pipeline, PipelinePool, Prepared, process, shrink_factor, target_size};
pub use validate::Format;

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
