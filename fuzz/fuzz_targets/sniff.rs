//! Sniffing and header validation on arbitrary bytes: no panic, and a
//! header that passes the checks respects the limits.
#![no_main]

use imgest::{Limits, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default()
        .with_max_pixels(1_000_000)
        .with_max_frames(16);
    if let Ok(checked) = validate::check(data, &limits) {
        let h = &checked.container;
        assert!(u64::from(h.width) * u64::from(h.height) <= 1_000_000);
        assert!(h.frames <= 16);
    }
});
