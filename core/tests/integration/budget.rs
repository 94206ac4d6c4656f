//! The time budget (`Options::timeout_ms`) and cancellation (`CancelToken`): a spent budget
//! stops every format's run quickly with `timeout`, a generous one changes no byte, and a
//! token cancelled from another thread stops a run mid-encode. (Memory after many cancelled
//! runs: `tests/cancel_leak.rs`, a binary of its own.)

use std::time::{Duration, Instant};

use imgest::{CancelToken, ErrorCode, Options, Output, Pipeline, Variant};

use crate::fixtures::{jpeg, noise, png_rgb, webp_lossless, webp_lossy};

/// Large inputs of each decoder (3000 × 2000 noise: 6 MP, hundreds of ms of work each).
fn large_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let img = noise(3000, 2000, 7);
    vec![
        ("jpeg", jpeg(&img, None, None)),
        ("png", png_rgb(&img, None, None)),
        ("webp lossy", webp_lossy(&img)),
        ("webp lossless", webp_lossless(&img, None, None)),
    ]
}

fn digest(out: &Output) -> Vec<(String, String)> {
    out.variants
        .iter()
        .map(|v| (v.name.clone(), v.sha256.clone()))
        .collect()
}

#[test]
fn the_budget_is_an_option_on_the_wire() {
    let options = Options::from_json(r#"{"timeout_ms": 250}"#).unwrap();
    assert_eq!(options.timeout_ms, Some(250));
    assert_eq!(Options::default().timeout_ms, None);
    let err = Options::from_json(r#"{"timeout_ms": 0}"#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOptions);
    assert!(err.to_string().contains("timeout_ms"), "{err}");
    let err = Options::from_json(r#"{"timeout_ms": -1}"#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOptions);
}

/// A 1 ms budget on a 6 MP image of each format ends with `timeout`, well under 100 ms (the
/// whole run takes 0.3–3 s), and the pipeline runs the next input normally.
#[test]
fn a_one_ms_budget_stops_every_format_well_under_100_ms() {
    let mut pipeline = Pipeline::new(Options::default().with_timeout_ms(Some(1))).unwrap();
    for (name, input) in large_inputs() {
        let start = Instant::now();
        let err = pipeline.run(&input).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.code(), ErrorCode::Timeout, "{name}: {err}");
        assert!(
            err.to_string().contains("1 ms budget"),
            "{name}: the message names the budget: {err}"
        );
        assert!(
            took < Duration::from_millis(100),
            "{name}: stopped after {took:?}"
        );
    }
    let small = jpeg(&noise(64, 48, 1), None, None);
    let mut unbounded = Pipeline::new(Options::default()).unwrap();
    assert!(unbounded.run(&small).is_ok());
}

/// A budget that is never spent changes nothing: the same bytes as no budget at all, through
/// every decoder's budgeted path (libwebp's incremental decoder among them) and every stage.
#[test]
fn a_generous_budget_gives_byte_identical_output() {
    let img = noise(1200, 900, 3);
    let mut inputs = vec![
        ("jpeg", jpeg(&img, None, None)),
        ("png", png_rgb(&img, None, None)),
        ("webp lossy", webp_lossy(&img)),
        ("webp lossless", webp_lossless(&img, None, None)),
        (
            "gif",
            crate::fixtures::gif(&image::DynamicImage::ImageRgb8(noise(300, 200, 5)).to_rgba8()),
        ),
    ];
    // Orientation 6 (the early full-size encode of a turned copy) and an ICC profile (the
    // budgeted colour conversion).
    let exif = crate::fixtures::exif_block(6, false);
    let p3 = crate::fixtures::icc(moxcms::ColorProfile::new_display_p3());
    inputs.push(("jpeg, turned, P3", jpeg(&img, Some(exif), Some(p3))));
    let mut jpeg_out = Options::default().with_variants(vec![Variant::fit("a", 300)]);
    jpeg_out.variants[0].format = imgest::OutputFormat::Jpeg;
    for options in [Options::default(), jpeg_out] {
        let mut plain = Pipeline::new(options.clone()).unwrap();
        let mut timed = Pipeline::new(options.with_timeout_ms(Some(60_000))).unwrap();
        let token = CancelToken::new();
        for (name, input) in &inputs {
            let want = plain.run(input).unwrap();
            let got = timed.run(input).unwrap();
            assert_eq!(digest(&got), digest(&want), "{name}");
            assert_eq!(got.dominant_color, want.dominant_color, "{name}");
            assert_eq!(got.placeholder, want.placeholder, "{name}");
            let got = timed.run_cancellable(input, &token).unwrap();
            assert_eq!(digest(&got), digest(&want), "{name}, with a token");
        }
    }
}

/// A token cancelled from another thread while the only variant, a full-size WebP of noise,
/// is being encoded: the run ends with `cancelled` soon after, and the pipeline runs on.
#[test]
fn cancellation_from_another_thread_stops_an_encode() {
    let options = Options::default()
        .with_variants(vec![Variant::original("original")])
        .with_dominant_color(false)
        .with_placeholder(false);
    // A fast decode (PNG, 2 ms/MP) and a slow encode (noise at q85, ~150 ms/MP).
    let input = png_rgb(&noise(3000, 3000, 11), None, None);
    let mut pipeline = Pipeline::new(options).unwrap();
    let start = Instant::now();
    let prepared = pipeline.prepare(&input).unwrap();
    let decode = start.elapsed();
    drop(prepared);
    let token = CancelToken::new();
    let stopper = token.clone();
    // Well after the decode, well before the ~1.3 s encode ends.
    let delay = decode * 2 + Duration::from_millis(150);
    let cancelled_at = std::thread::spawn(move || {
        std::thread::sleep(delay);
        stopper.cancel();
        Instant::now()
    });
    let err = pipeline.run_cancellable(&input, &token).unwrap_err();
    let ended = Instant::now();
    let cancelled_at = cancelled_at.join().unwrap();
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    let late = ended.saturating_duration_since(cancelled_at);
    assert!(
        late < Duration::from_millis(250),
        "stopped {late:?} after the cancel"
    );
    // A cancelled token stays cancelled; a new one runs to the end.
    assert_eq!(
        pipeline.run_cancellable(&input, &token).unwrap_err().code(),
        ErrorCode::Cancelled
    );
    let small = png_rgb(&noise(64, 64, 2), None, None);
    assert!(
        pipeline
            .run_cancellable(&small, &CancelToken::new())
            .is_ok()
    );
}

/// The pool's entry point takes the token too.
#[test]
fn the_pool_runs_cancellable() {
    let pool = imgest::PipelinePool::new(Options::default()).unwrap();
    let token = CancelToken::new();
    token.cancel();
    let input = jpeg(&noise(64, 48, 1), None, None);
    let err = pool.run_cancellable(&input, &token).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(pool.run(&input).is_ok());
}

/// Every worker of rayon's pool is busy (asleep for 1.5 s, standing in for other runs): a run
/// with a 30 ms budget, and one whose token is cancelled after 30 ms, end with `timeout` and
/// `cancelled` well before a worker is free, instead of waiting for one.
#[test]
fn a_budget_covers_the_wait_for_a_busy_pool() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let input = jpeg(&noise(600, 400, 3), None, None);
    let mut pipeline = Pipeline::new(Options::default().with_timeout_ms(Some(30))).unwrap();
    let workers = rayon::current_num_threads();
    let asleep = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let asleep = Arc::clone(&asleep);
        rayon::spawn(move || {
            asleep.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
        });
    }
    // (Other tests' work may hold the workers first.)
    while asleep.load(Ordering::SeqCst) < workers {
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    let err = pipeline.run(&input).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(took < Duration::from_millis(500), "stopped after {took:?}");

    let mut unbounded = Pipeline::new(Options::default()).unwrap();
    let token = CancelToken::new();
    let stopper = token.clone();
    let start = Instant::now();
    let err = std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stopper.cancel();
        });
        unbounded.run_cancellable(&input, &token).unwrap_err()
    });
    let took = start.elapsed();
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    assert!(took < Duration::from_millis(500), "stopped after {took:?}");
    // Once the pool is free, the pipeline runs normally.
    assert!(unbounded.run(&input).is_ok());
}
