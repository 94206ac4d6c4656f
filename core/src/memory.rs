//! A process-wide allocator setting for processes that handle many images one after another.

/// Asks glibc's `malloc` to give every allocation of 4 MiB or more a memory mapping of its own,
/// unmapped (returned to the operating system) when freed.
///
/// By default glibc raises that threshold each time it frees a large mapped block (up to
/// 32 MiB), after which decoded images, resized variants and encoder planes of a few MiB come
/// from per-thread heaps that keep their peak size. In a process that handles image after image
/// on several threads, that is what its peak RSS grows from: measured on the eight benchmark
/// photos in one process, ingest 310 → 174 MB, thumb 117 → 82 MB, time unchanged within noise
/// (`benches/RESULTS.md`; a 1 MiB threshold saves a few MB more but costs page faults). Call it
/// once, early, from a program's `main` (the CLI, the HTTP service and the benchmark runner do). The
/// library never calls it by itself: it changes the whole process. A `MALLOC_MMAP_THRESHOLD_`
/// set in the environment wins.
///
/// It also sets the trim threshold to 8 MiB (twice the mmap threshold: the ratio glibc keeps by
/// itself while it adjusts the mmap threshold, and gives up once the threshold is set): with
/// the default 128 KiB, each run's freeing of its smaller buffers returned the top of the heap
/// to the system, and the next run faulted it back in page by page (about 40 % of a
/// thumbnail's page faults once [`crate::Pipeline`] reuses its decode buffer; 1.5 MB more
/// RSS). A `MALLOC_TRIM_THRESHOLD_` set in the environment wins.
///
/// Returns whether the setting was applied: `false` with another C library or platform, or
/// when the environment already sets it.
pub fn map_large_buffers() -> bool {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return false;
    }
    apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() -> bool {
    // SAFETY: `mallopt` takes two integers and only changes malloc's tuning; any thread may
    // call it at any time (glibc takes its own lock).
    let mapped = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) == 1 };
    if mapped && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20) };
    }
    mapped
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn applies_on_glibc() {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            assert!(super::map_large_buffers());
        }
    }
}
