//! AV1 through rav1d (native builds): the Rust port of dav1d, memory-safe and, with its
//! assembly (`avif-asm`), as fast as dav1d.

use re_rav1d::dav1d::pixel::{MatrixCoefficients, YUVRange};
use re_rav1d::dav1d::{self, Decoder, PixelLayout, PlanarImageComponent, Settings};

use super::{Component, Layout, corrupt};
use crate::budget::Budget;
use crate::error::Error;
use crate::options::Limits;

/// A decoded picture and its planes.
pub(super) struct Picture {
    pic: dav1d::Picture,
    /// Y, then U and V unless the picture is monochrome.
    planes: Vec<dav1d::Plane>,
}

impl Picture {
    pub(super) fn width(&self) -> u32 {
        self.pic.width()
    }
    pub(super) fn height(&self) -> u32 {
        self.pic.height()
    }
    pub(super) fn bit_depth(&self) -> usize {
        self.pic.bit_depth()
    }
    pub(super) fn layout(&self) -> Layout {
        match self.pic.pixel_layout() {
            PixelLayout::I400 => Layout::I400,
            PixelLayout::I420 => Layout::I420,
            PixelLayout::I422 => Layout::I422,
            PixelLayout::I444 => Layout::I444,
        }
    }
    pub(super) fn plane(&self, c: Component) -> &[u8] {
        self.planes.get(c as usize).map_or(&[], |p| p)
    }
    pub(super) fn stride(&self, c: Component) -> u32 {
        self.pic.stride(component(c))
    }
    /// The sequence header's matrix coefficients code point (2, unspecified, for those rav1d
    /// does not name).
    pub(super) fn matrix(&self) -> u16 {
        match self.pic.matrix_coefficients() {
            MatrixCoefficients::Identity => 0,
            MatrixCoefficients::BT709 => 1,
            MatrixCoefficients::BT470M => 4,
            MatrixCoefficients::BT470BG => 5,
            MatrixCoefficients::ST170M => 6,
            MatrixCoefficients::ST240M => 7,
            MatrixCoefficients::YCgCo => 8,
            MatrixCoefficients::BT2020NonConstantLuminance => 9,
            MatrixCoefficients::BT2020ConstantLuminance => 10,
            _ => 2,
        }
    }
    pub(super) fn full_range(&self) -> bool {
        self.pic.color_range() == YUVRange::Full
    }
}

fn component(c: Component) -> PlanarImageComponent {
    match c {
        Component::Y => PlanarImageComponent::Y,
        Component::U => PlanarImageComponent::U,
        Component::V => PlanarImageComponent::V,
    }
}

/// Decodes one AV1 frame from `data`.
pub(super) fn decode(data: Vec<u8>, limits: &Limits, budget: Budget<'_>) -> Result<Picture, Error> {
    let mut settings = Settings::new();
    settings.set_n_threads(threads());
    settings.set_max_frame_delay(1);
    settings.set_frame_size_limit(u32::try_from(limits.max_pixels).unwrap_or(u32::MAX));
    settings.set_all_layers(false);
    let fail = |e: dav1d::Error| corrupt(format!("the AV1 decoder refused the data: {e}"));
    let mut decoder = Decoder::with_settings(&settings).map_err(fail)?;
    let mut pending = match decoder.send_data(data, None, None, None) {
        Ok(()) => false,
        Err(e) if e.is_again() => true,
        Err(e) => return Err(fail(e)),
    };
    // Each turn either hands the decoder more of the data or takes its picture; the bound only
    // guards against a decoder that does neither.
    for _ in 0..10_000 {
        budget.check()?;
        match decoder.get_picture() {
            Ok(pic) => {
                let mut planes = vec![pic.plane(PlanarImageComponent::Y)];
                if pic.pixel_layout() != PixelLayout::I400 {
                    planes.push(pic.plane(PlanarImageComponent::U));
                    planes.push(pic.plane(PlanarImageComponent::V));
                }
                return Ok(Picture { pic, planes });
            }
            Err(e) if e.is_again() && pending => {
                pending = match decoder.send_pending_data() {
                    Ok(()) => false,
                    Err(e) if e.is_again() => true,
                    Err(e) => return Err(fail(e)),
                };
            }
            Err(e) if e.is_again() => break,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(corrupt("the AV1 data holds no complete frame"))
}

/// The decoder's threads: rayon's pool size when variants run on it (the decode runs before
/// them, so the two never compete), else one.
fn threads() -> u32 {
    #[cfg(feature = "rayon")]
    return u32::try_from(rayon::current_num_threads().clamp(1, 8)).unwrap_or(1);
    #[cfg(not(feature = "rayon"))]
    1
}
