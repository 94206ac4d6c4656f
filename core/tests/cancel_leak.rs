//! Memory after cancelled runs: 100 runs stopped at every stage (budgets of 1–100 ms on a
//! photo-sized JPEG whose whole run takes ~150 ms here, and tokens cancelled from another
//! thread) leave the heap where it was. Measured with glibc's `mallinfo2`, which counts the
//! C libraries' allocations (libjpeg-turbo, libwebp) as well as Rust's; a test binary of its
//! own, so that no other test allocates meanwhile.

#![allow(unsafe_code)] // one call: glibc's allocator statistics

#[path = "integration/fixtures.rs"]
#[allow(dead_code)] // shared with the integration tests, which use the rest
mod fixtures;

use imgest::{CancelToken, ErrorCode, Options, Pipeline};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use() -> usize {
    // SAFETY: a query of the allocator's statistics, no arguments.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_hundred_cancelled_runs_leave_the_heap_as_it_was() {
    let img = fixtures::noise(2400, 1600, 5);
    let input = fixtures::jpeg(&img, Some(fixtures::exif_block(6, false)), None);
    // Warm up rayon's threads and the allocator's arenas; the pipelines (and the resampling
    // scratch they keep on purpose) are dropped before each measurement.
    for _ in 0..3 {
        Pipeline::new(Options::default())
            .unwrap()
            .run(&input)
            .unwrap();
    }
    let baseline = heap_in_use();
    let mut pipeline = Pipeline::new(Options::default()).unwrap();
    let mut stopped = [0usize; 2];
    for i in 0..100u64 {
        let result = if i % 2 == 0 {
            let mut timed = Pipeline::new(Options::default().with_timeout_ms(Some(1 + i))).unwrap();
            timed.run(&input)
        } else {
            let token = CancelToken::new();
            let stopper = token.clone();
            let delay = std::time::Duration::from_millis(i);
            let t = std::thread::spawn(move || {
                std::thread::sleep(delay);
                stopper.cancel();
            });
            let r = pipeline.run_cancellable(&input, &token);
            t.join().unwrap();
            r
        };
        match result {
            Err(e) if e.code() == ErrorCode::Timeout => stopped[0] += 1,
            Err(e) if e.code() == ErrorCode::Cancelled => stopped[1] += 1,
            Err(e) => panic!("run {i}: {e}"),
            Ok(_) => {}
        }
    }
    drop(pipeline);
    let after = heap_in_use();
    println!(
        "heap in use: {baseline} B before, {after} B after 100 runs ({} timed out, {} cancelled)",
        stopped[0], stopped[1]
    );
    assert!(stopped[0] >= 25 && stopped[1] >= 25, "{stopped:?}");
    assert!(
        after <= baseline + (1 << 20),
        "the heap grew by {} B",
        after as i64 - baseline as i64
    );
}
