//! The C library functions libwebp and libjpeg (compiled for `wasm32-unknown-unknown`, which has
//! no libc) link against, implemented over Rust's allocator. Without them the linker leaves
//! unresolved `env.*` imports that fail only when the module is instantiated; `.ci/run` checks
//! the `.wasm` imports nothing from `env`.
#![allow(unsafe_code)]

use core::ffi::c_void;
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc as rust_realloc};

/// Each block starts with a 16-byte header holding its total size, keeping 16-byte alignment.
const HEADER: usize = 16;
const ALIGN: usize = 16;

fn layout(total: usize) -> Option<Layout> {
    Layout::from_size_align(total, ALIGN).ok()
}

unsafe fn finish(base: *mut u8, total: usize) -> *mut c_void {
    if base.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `base` points to at least HEADER bytes, 16-aligned.
    unsafe {
        (base as *mut usize).write(total);
        base.add(HEADER).cast()
    }
}

/// C `malloc`.
///
/// # Safety
/// Called by C code only; the result must be released with [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    let Some(total) = size.checked_add(HEADER) else {
        return core::ptr::null_mut();
    };
    let Some(l) = layout(total) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `l` has a non-zero size.
    unsafe { finish(alloc(l), total) }
}

/// C `calloc`.
///
/// # Safety
/// As [`malloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size).and_then(|n| n.checked_add(HEADER)) else {
        return core::ptr::null_mut();
    };
    let Some(l) = layout(total) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `l` has a non-zero size.
    unsafe { finish(alloc_zeroed(l), total) }
}

/// C `free`.
///
/// # Safety
/// `ptr` is null or came from [`malloc`], [`calloc`] or [`realloc`] and was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: per the contract, the header precedes `ptr` and holds the block's total size.
    unsafe {
        let base = (ptr as *mut u8).sub(HEADER);
        let total = (base as *const usize).read();
        dealloc(base, Layout::from_size_align_unchecked(total, ALIGN));
    }
}

/// C `realloc`.
///
/// # Safety
/// As [`free`] for `ptr`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: plain allocation.
        return unsafe { malloc(size) };
    }
    let Some(total) = size.checked_add(HEADER) else {
        return core::ptr::null_mut();
    };
    if layout(total).is_none() {
        return core::ptr::null_mut();
    }
    // SAFETY: per the contract, the header precedes `ptr`; the old layout is the one it was
    // allocated with, and `total` is non-zero and fits a valid layout (checked above).
    unsafe {
        let base = (ptr as *mut u8).sub(HEADER);
        let old = (base as *const usize).read();
        let new_base = rust_realloc(base, Layout::from_size_align_unchecked(old, ALIGN), total);
        finish(new_base, total)
    }
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
