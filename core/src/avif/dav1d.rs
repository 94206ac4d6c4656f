//! AV1 through dav1d's C library (WebAssembly builds, where rav1d does not build), compiled by
//! `build.rs` with `csrc/av1.c` in front: one thread, one frame.

#![allow(unsafe_code)] // the FFI to dav1d: two calls and the planes it lends

use core::ffi::c_void;

use super::{Component, Layout, corrupt};
use crate::budget::Budget;
use crate::error::Error;
use crate::options::Limits;

/// `imgest_av1_picture` in `csrc/av1.c`.
#[repr(C)]
struct Raw {
    pic: *mut c_void,
    planes: [*const u8; 3],
    strides: [isize; 2],
    width: u32,
    height: u32,
    bpc: u32,
    layout: u32,
    matrix: u32,
    full_range: u32,
    error: i32,
}

const OK: i32 = 0;
const NO_FRAME: i32 = 1;

unsafe extern "C" {
    fn imgest_av1_decode(bytes: *const u8, len: usize, frame_size_limit: u32, out: *mut Raw)
    -> i32;
    fn imgest_av1_release(p: *mut Raw);
}

/// A decoded picture; its planes are dav1d's buffers, released on drop.
pub(super) struct Picture {
    raw: Raw,
    layout: Layout,
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `raw` was filled by a successful `imgest_av1_decode` and is released once.
        unsafe { imgest_av1_release(&mut self.raw) }
    }
}

impl Picture {
    pub(super) fn width(&self) -> u32 {
        self.raw.width
    }
    pub(super) fn height(&self) -> u32 {
        self.raw.height
    }
    pub(super) fn bit_depth(&self) -> usize {
        self.raw.bpc as usize
    }
    pub(super) fn layout(&self) -> Layout {
        self.layout
    }
    /// The plane's rows, `stride` bytes apart (the last one whole too: dav1d pads every plane
    /// to its stride).
    pub(super) fn plane(&self, c: Component) -> &[u8] {
        let (rows, stride) = self.rows(c);
        let ptr = self.raw.planes[c as usize];
        if ptr.is_null()
            || rows == 0
            || stride == 0
            || (c != Component::Y && self.layout == Layout::I400)
        {
            return &[];
        }
        // SAFETY: dav1d allocates each plane as `rows` rows of `stride` bytes (positive strides
        // from its default allocator, checked in `decode`), alive until the picture is released
        // on drop, which the borrow of `self` outlives.
        unsafe { core::slice::from_raw_parts(ptr, rows * stride) }
    }
    pub(super) fn stride(&self, c: Component) -> u32 {
        u32::try_from(self.rows(c).1).unwrap_or(0)
    }
    pub(super) fn matrix(&self) -> u16 {
        match self.raw.matrix {
            m @ (0 | 1 | 4..=10) => m as u16,
            _ => 2,
        }
    }
    pub(super) fn full_range(&self) -> bool {
        self.raw.full_range != 0
    }

    /// The rows and stride (bytes) of a plane.
    fn rows(&self, c: Component) -> (usize, usize) {
        let h = self.raw.height as usize;
        match c {
            Component::Y => (h, self.raw.strides[0].max(0) as usize),
            _ => {
                let rows = if self.layout == Layout::I420 {
                    h.div_ceil(2)
                } else {
                    h
                };
                (rows, self.raw.strides[1].max(0) as usize)
            }
        }
    }
}

/// Decodes one AV1 frame from `data`.
pub(super) fn decode(data: Vec<u8>, limits: &Limits, budget: Budget<'_>) -> Result<Picture, Error> {
    budget.check()?;
    let limit = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut raw = core::mem::MaybeUninit::<Raw>::uninit();
    // SAFETY: `data` is alive for the call; `imgest_av1_decode` initialises all of `raw`
    // (zeroes it first) whatever it returns.
    let (status, raw) = unsafe {
        let status = imgest_av1_decode(data.as_ptr(), data.len(), limit, raw.as_mut_ptr());
        (status, raw.assume_init())
    };
    match status {
        OK => {}
        NO_FRAME => return Err(corrupt("the AV1 data holds no complete frame")),
        // Out of memory included, as rav1d reports it in native builds.
        _ => {
            return Err(corrupt(format!(
                "the AV1 decoder refused the data (dav1d error {})",
                raw.error
            )));
        }
    }
    let layout = match raw.layout {
        0 => Layout::I400,
        1 => Layout::I420,
        2 => Layout::I422,
        _ => Layout::I444,
    };
    // Strides narrower than a row are caught where the planes are read (`plane8`).
    Ok(Picture { raw, layout })
}
