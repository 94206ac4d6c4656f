//! How soon a run stops once its time budget is spent, or its token cancelled: the figures of
//! SECURITY.md. Runs the default pipeline on one input (a file given as the first argument, or
//! a generated 7000 × 7000 JPEG of noise, the worst legal input) without a budget, then with
//! budgets that end in each stage, and prints how far past the deadline each run returned.
//!
//! ```text
//! cargo run --release -p imgest --example budget [-- photo.jpg]
//! ```

use std::time::{Duration, Instant};

use image::ImageEncoder;
use imgest::{CancelToken, Options, Pipeline};

fn main() {
    let input = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path).expect("read the input"),
        None => noise_jpeg(7000, 7000),
    };
    println!("input: {} bytes", input.len());
    let mut pipeline = Pipeline::new(Options::default()).expect("default options");
    let start = Instant::now();
    pipeline.run(&input).expect("the input processes");
    let whole = start.elapsed();
    println!("no budget: {} ms", whole.as_millis());

    println!("budget ms | returned after ms | past the deadline ms | code");
    let mut worst = Duration::ZERO;
    for fraction in [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9] {
        let budget = (whole.as_secs_f64() * fraction * 1000.0).max(1.0) as u64;
        let mut timed = Pipeline::new(Options::default().with_timeout_ms(Some(budget))).unwrap();
        let start = Instant::now();
        let result = timed.run(&input);
        let took = start.elapsed();
        let late = took.saturating_sub(Duration::from_millis(budget));
        worst = worst.max(late);
        let code = result.err().map_or("ok", |e| e.code().as_str());
        println!(
            "{budget:>9} | {:>17} | {:>20} | {code}",
            took.as_millis(),
            late.as_millis()
        );
    }
    println!("latest stop past a deadline: {} ms", worst.as_millis());

    println!("cancelled at ms | stopped ms later | code");
    let mut worst = Duration::ZERO;
    for fraction in [0.05, 0.25, 0.5, 0.75] {
        let token = CancelToken::new();
        let stopper = token.clone();
        let at = whole.mul_f64(fraction);
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(at);
            stopper.cancel();
            Instant::now()
        });
        let result = pipeline.run_cancellable(&input, &token);
        let ended = Instant::now();
        let cancelled = canceller.join().unwrap();
        let late = ended.saturating_duration_since(cancelled);
        worst = worst.max(late);
        let code = result.err().map_or("ok", |e| e.code().as_str());
        println!("{:>15} | {:>16} | {code}", at.as_millis(), late.as_millis());
    }
    println!("latest stop after a cancel: {} ms", worst.as_millis());
}

/// A baseline JPEG of noise at quality 60 (46 MB for 7000 × 7000, under the default 50 MiB input limit).
fn noise_jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9u32;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("encode");
    out
}
