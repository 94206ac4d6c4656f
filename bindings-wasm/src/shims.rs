//! The C library functions libwebp, libjpeg and dav1d (compiled for `wasm32-unknown-unknown`,
//! which has no libc; dav1d's in the `avif-input` build only) link against, implemented over
//! Rust's allocator. Without them the linker
//! leaves unresolved `env.*` imports that fail only when the module is instantiated; `.ci/run`
//! checks the `.wasm` imports nothing from `env`.
#![allow(unsafe_code)]

use core::ffi::c_void;
#[cfg(feature = "avif-input")]
use core::ffi::{c_int, c_long};
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc as rust_realloc};

/// Each block starts with a header of at least 16 bytes (the block's alignment, 16 or more); the
/// two words before the pointer handed out hold the block's total size and its alignment.
const MIN_ALIGN: usize = 16;
const WORD: usize = size_of::<usize>();

/// The block for `size` bytes aligned to `align` (a power of two ≥ 16): its total size.
fn total(size: usize, align: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(align)?, align).ok()
}

unsafe fn finish(base: *mut u8, layout: Layout) -> *mut c_void {
    if base.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: the block is `layout.size()` ≥ `align` + size bytes; the header (`align` ≥ 16
    // bytes) holds the two words, which are aligned as the pointer is.
    unsafe {
        let ptr = base.add(layout.align());
        (ptr.sub(2 * WORD) as *mut usize).write(layout.size());
        (ptr.sub(WORD) as *mut usize).write(layout.align());
        ptr.cast()
    }
}

/// The layout a block handed out by this allocator was made with, and its start.
///
/// # Safety
/// `ptr` came from [`malloc`], [`calloc`], [`realloc`] or `memalign`.
unsafe fn block(ptr: *mut c_void) -> (*mut u8, Layout) {
    // SAFETY: per the contract, the two words precede `ptr` and describe a valid layout.
    unsafe {
        let ptr = ptr as *mut u8;
        let size = (ptr.sub(2 * WORD) as *const usize).read();
        let align = (ptr.sub(WORD) as *const usize).read();
        (
            ptr.sub(align),
            Layout::from_size_align_unchecked(size, align),
        )
    }
}

unsafe fn allocate(size: usize, align: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = total(size, align) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `layout` has a non-zero size (≥ align).
    unsafe {
        finish(
            if zeroed {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            },
            layout,
        )
    }
}

/// C `malloc`.
///
/// # Safety
/// Called by C code only; the result must be released with [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: plain allocation.
    unsafe { allocate(size, MIN_ALIGN, false) }
}

/// C `calloc`.
///
/// # Safety
/// As [`malloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(size) = count.checked_mul(size) else {
        return core::ptr::null_mut();
    };
    // SAFETY: plain allocation.
    unsafe { allocate(size, MIN_ALIGN, true) }
}

/// C `memalign` (dav1d's aligned buffers; released with [`free`]).
///
/// # Safety
/// As [`malloc`].
#[cfg(feature = "avif-input")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    // SAFETY: plain allocation.
    unsafe { allocate(size, align.max(MIN_ALIGN), false) }
}

/// C `free`.
///
/// # Safety
/// `ptr` is null or came from this allocator and was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: per the contract.
    unsafe {
        let (base, layout) = block(ptr);
        dealloc(base, layout);
    }
}

/// C `realloc` (the block's alignment kept).
///
/// # Safety
/// As [`free`] for `ptr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: plain allocation.
        return unsafe { malloc(size) };
    }
    // SAFETY: per the contract, `ptr` is a live block of this allocator: resized in place
    // through its own layout, or copied (at most its usable bytes) into a distinct new block.
    unsafe {
        let (base, layout) = block(ptr);
        let align = layout.align();
        if align == MIN_ALIGN {
            let Some(grown) = total(size, align) else {
                return core::ptr::null_mut();
            };
            return finish(rust_realloc(base, layout, grown.size()), grown);
        }
        let new = allocate(size, align, false);
        if !new.is_null() {
            let old = layout.size() - align;
            core::ptr::copy_nonoverlapping(ptr as *const u8, new as *mut u8, old.min(size));
            free(ptr);
        }
        new
    }
}

/// C `abort`: a trap, as a Rust panic in this build.
#[cfg(feature = "avif-input")]
#[unsafe(no_mangle)]
pub extern "C" fn abort() -> ! {
    std::process::abort()
}

/// C `sysconf`: no name is known here (dav1d asks for the processor count only when told to
/// pick its thread count, which this build never does).
#[cfg(feature = "avif-input")]
#[unsafe(no_mangle)]
pub extern "C" fn sysconf(_name: c_int) -> c_long {
    -1
}

type Compare = unsafe extern "C" fn(*const c_void, *const c_void) -> i32;

unsafe fn swap(base: *mut u8, size: usize, i: usize, j: usize) {
    if i != j {
        // SAFETY: i and j are distinct element indices inside the caller's array.
        unsafe { core::ptr::swap_nonoverlapping(base.add(i * size), base.add(j * size), size) }
    }
}

/// C `qsort` (heapsort: O(n log n) worst case, no allocation).
///
/// # Safety
/// `base` points to `count` elements of `size` bytes; `compare` is a valid comparator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qsort(base: *mut c_void, count: usize, size: usize, compare: Compare) {
    if base.is_null() || count < 2 || size == 0 {
        return;
    }
    let base = base as *mut u8;
    let at = |i: usize| -> *const c_void {
        // SAFETY: callers pass indices < count.
        unsafe { base.add(i * size) as *const c_void }
    };
    // SAFETY (whole block): every index used is < count.
    unsafe {
        let sift = |mut root: usize, end: usize| {
            loop {
                let mut child = 2 * root + 1;
                if child >= end {
                    break;
                }
                if child + 1 < end && compare(at(child), at(child + 1)) < 0 {
                    child += 1;
                }
                if compare(at(root), at(child)) < 0 {
                    swap(base, size, root, child);
                    root = child;
                } else {
                    break;
                }
            }
        };
        for start in (0..count / 2).rev() {
            sift(start, count);
        }
        for end in (1..count).rev() {
            swap(base, size, 0, end);
            sift(0, end);
        }
    }
}

/// C `bsearch`.
///
/// # Safety
/// `base` points to `count` sorted elements of `size` bytes; `compare` is a valid comparator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bsearch(
    key: *const c_void,
    base: *const c_void,
    count: usize,
    size: usize,
    compare: Compare,
) -> *mut c_void {
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // SAFETY: mid < count.
        let elem = unsafe { (base as *const u8).add(mid * size) } as *const c_void;
        // SAFETY: both pointers are valid per the contract.
        let ord = unsafe { compare(key, elem) };
        if ord == 0 {
            return elem as *mut c_void;
        }
        if ord < 0 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    core::ptr::null_mut()
}
