//! imgest as a runner of the shared peer benchmark harness, in-process (no process start per
//! image). Speaks the harness's runner protocol:
//!
//! ```text
//! --peer NAME --workload ingest|thumb --images A,B,... --mode latency|throughput
//!   latency:    --iters N --warmup W [--outdir DIR]
//!   throughput: --passes P --warmup W [--barrier DIR]
//! ```
//!
//! and prints one JSON line per image (latency) or one per run (throughput).
//!
//! With `--encode-only` it measures the *floor* of a workload instead: each image's variants are
//! decoded, oriented and resized once before timing, and only their WebP encodes (the same
//! libwebp calls, settings and parallelism as the pipeline) are timed: the floor under the
//! pipeline's time, and under the CPU time of any pipeline that encodes these variants with
//! libwebp at these settings.
//!
//! With `--decode-only` it measures the decoder's floor: each image is checked and decoded at
//! the scale the pipeline would choose for the workload (JPEG shrink-on-load), and nothing
//! else. Its outputs are no variants.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imgest::frame::Frame;
use imgest::resize::Resizer;
use imgest::{Pipeline, Variant, target_size};
use imgest_benches::{ingest_options, thumb_options};
use rayon::prelude::*;
use serde_json::{Value, json};

struct Args {
    peer: String,
    workload: String,
    images: Vec<String>,
    mode: String,
    iters: usize,
    warmup: usize,
    passes: usize,
    outdir: Option<String>,
    barrier: Option<String>,
    encode_only: bool,
    decode_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        peer: "imgest-rs".into(),
        workload: "ingest".into(),
        images: Vec::new(),
        mode: "latency".into(),
        iters: 3,
        warmup: 1,
        passes: 1,
        outdir: None,
        barrier: None,
        encode_only: false,
        decode_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--peer" => a.peer = value()?,
            "--workload" => a.workload = value()?,
            "--images" => {
                a.images = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--mode" => a.mode = value()?,
            "--iters" => a.iters = number(value()?)?.max(1),
            "--warmup" => a.warmup = number(value()?)?,
            "--passes" => a.passes = number(value()?)?.max(1),
            "--outdir" => a.outdir = Some(value()?),
            "--barrier" => a.barrier = Some(value()?),
            "--encode-only" => a.encode_only = true,
            "--decode-only" => a.decode_only = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// For `--decode-only`: freed blocks of up to 64 MiB stay in the heap for the next decode, as
/// the pipeline keeps its decoded block for the next run (without it each decode would fault
/// its output in page by page, which the pipeline does not).
fn keep_freed_blocks() {
    // SAFETY: `mallopt` takes two integers and only changes malloc's tuning.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// CPU time of the whole process (all threads).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer, which points at enough zeroed,
    // writable memory for one; RUSAGE_SELF is always valid.
    #[allow(unsafe_code)]
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Duration::ZERO;
        }
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("imgest-peer-runner: {e}");
            std::process::exit(2);
        }
    };
    if a.decode_only {
        keep_freed_blocks();
    } else {
        imgest::memory::map_large_buffers();
    }
    let options = match a.workload.as_str() {
        "ingest" => ingest_options(),
        "thumb" => thumb_options(),
        _ => {
            emit(
                &json!({"peer": a.peer, "workload": a.workload, "error": "workload not supported"}),
            );
            return;
        }
    };
    let mut pipeline = Pipeline::new(options).expect("valid options");
    let bufs: Vec<Vec<u8>> = a
        .images
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let extra = json!({
        "lib_version": format!(
            "imgest {}, libjpeg-turbo {}",
            env!("CARGO_PKG_VERSION"),
            if imgest::jpeg_simd() { "with SIMD" } else { "without SIMD (no nasm at build time)" }
        ),
        "threads": format!("variants in parallel ({threads} cores), libwebp thread_level 1"),
        "what": if a.encode_only {
            "the WebP encodes alone (floor)"
        } else if a.decode_only {
            "the decode alone, at the pipeline's scale (floor)"
        } else {
            "the whole pipeline"
        },
    });
    // Encode-only: every image's variant pixels, made once before any timing.
    let ready: Vec<Vec<Ready>> = if a.encode_only {
        bufs.iter().map(|b| prepare_floor(&pipeline, b)).collect()
    } else {
        Vec::new()
    };
    let mut run = |i: usize| -> Done {
        if a.encode_only {
            encode_floor(&ready[i])
        } else if a.decode_only {
            decode_floor(&pipeline, &bufs[i])
        } else {
            let out = pipeline.run(&bufs[i]).expect("bench images are valid");
            Done {
                variants: out
                    .variants
                    .into_iter()
                    .map(|v| (v.name, v.width, v.height, v.bytes))
                    .collect(),
                dominant: out.dominant_color.map(|c| c.rgb),
            }
        }
    };
    if !bufs.is_empty() {
        for _ in 0..a.warmup {
            run(0);
        }
    }
    if a.mode == "throughput" {
        if let Some(dir) = &a.barrier {
            let pid = std::process::id();
            std::fs::write(Path::new(dir).join(format!("ready.{pid}")), b"").expect("barrier");
            while !Path::new(dir).join("go").exists() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let (c0, t0) = (cpu_time(), Instant::now());
        let mut n = 0;
        for _ in 0..a.passes {
            for i in 0..bufs.len() {
                run(i);
                n += 1;
            }
        }
        let wall = t0.elapsed().as_secs_f64() * 1000.0;
        let mut line = json!({
            "peer": a.peer, "workload": a.workload, "mode": "throughput", "images_done": n,
            "t_start_ms": epoch_ms, "t_end_ms": epoch_ms + wall, "wall_ms": wall,
            "cpu_ms": (cpu_time() - c0).as_secs_f64() * 1000.0, "pid": std::process::id(),
        });
        merge(&mut line, &extra);
        emit(&line);
        return;
    }
    for (i, path) in a.images.iter().enumerate() {
        let name = Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (mut ms, mut cpu) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..a.iters {
            let (c0, t0) = (cpu_time(), Instant::now());
            let out = run(i);
            ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            cpu.push((cpu_time() - c0).as_secs_f64() * 1000.0);
            last = Some(out);
        }
        let out = last.expect("at least one iteration");
        let mut sizes = BTreeMap::new();
        let mut dims = BTreeMap::new();
        for (vname, width, height, bytes) in &out.variants {
            sizes.insert(vname.clone(), bytes.len());
            dims.insert(vname.clone(), [*width, *height]);
            if let (true, Some(dir)) = (vname == "medium", &a.outdir) {
                let stem = Path::new(&name)
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy();
                std::fs::create_dir_all(dir).expect("outdir");
                std::fs::write(Path::new(dir).join(format!("{stem}.webp")), bytes).expect("write");
            }
        }
        let dominant = out.dominant;
        let mut line = json!({
            "peer": a.peer, "workload": a.workload, "mode": "latency", "image": name,
            "ms_per_image": median(ms.clone()),
            "ms_min": ms.iter().copied().fold(f64::INFINITY, f64::min),
            "samples_ms": ms.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>(),
            "cpu_ms_per_image": median(cpu),
            "total_bytes": sizes.values().sum::<usize>(),
            "bytes": sizes, "dims": dims, "dominant": dominant,
            "dominant_method": dominant.map(|_| "Oklab k-means over the visible pixels of the sRGB image (grid-sampled to 4096)"),
        });
        merge(&mut line, &extra);
        emit(&line);
    }
}

fn merge(line: &mut Value, extra: &Value) {
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            l.insert(k.clone(), v.clone());
        }
    }
}

/// What one run gives: each variant's name, size and bytes, and the dominant colour.
struct Done {
    variants: Vec<(String, u32, u32, Vec<u8>)>,
    dominant: Option<[u8; 3]>,
}

/// One variant's pixels as the pipeline hands them to the encoder.
struct Ready {
    variant: Variant,
    frame: Frame,
    has_alpha: bool,
}

/// Decodes, orients, converts and resizes `bytes` into every variant's pixels (RGB unless the
/// source has alpha, as in the pipeline), largest first.
fn prepare_floor(pipeline: &Pipeline, bytes: &[u8]) -> Vec<Ready> {
    let options = pipeline.options();
    let prepared = pipeline.prepare(bytes).expect("bench images are valid");
    let (sw, sh) = (prepared.source.width, prepared.source.height);
    let has_alpha = prepared.source.has_alpha;
    let full = if has_alpha {
        Frame::from(prepared.image)
    } else {
        Frame::from(image::DynamicImage::ImageRgba8(prepared.image).into_rgb8())
    };
    let mut resizer = Resizer::new();
    let mut ready: Vec<Ready> = options
        .variants
        .iter()
        .map(|v| {
            let (tw, th) = target_size(sw, sh, v);
            let frame = resizer
                .resize(&full, tw, th, has_alpha, options.linear_light)
                .expect("resize");
            Ready {
                variant: v.clone(),
                frame,
                has_alpha,
            }
        })
        .collect();
    ready.sort_by_key(|r| {
        let (w, h) = r.frame.dimensions();
        std::cmp::Reverse(u64::from(w) * u64::from(h))
    });
    ready
}

/// `--decode-only`: checks and decodes `bytes` as the pipeline would, at its JPEG scale.
fn decode_floor(pipeline: &Pipeline, bytes: &[u8]) -> Done {
    let limits = &pipeline.options().limits;
    let checked = imgest::validate::check(bytes, limits).expect("bench images are valid");
    let shrink = pipeline.decode_scale(&checked);
    let decoded =
        imgest::decode::decode_scaled(bytes, &checked, limits, shrink).expect("decodable");
    std::hint::black_box(&decoded);
    Done {
        variants: Vec::new(),
        dominant: None,
    }
}

/// The timed part of `--encode-only`: the variants' encodes, in parallel when there are several.
fn encode_floor(ready: &[Ready]) -> Done {
    let encode = |r: &Ready| {
        let v = &r.variant;
        let bytes = imgest::encode::encode(&r.frame, v, r.has_alpha).expect("encode");
        let (w, h) = r.frame.dimensions();
        (v.name.clone(), w, h, bytes)
    };
    let variants = if ready.len() > 1 {
        ready.par_iter().map(encode).collect()
    } else {
        ready.iter().map(encode).collect()
    };
    Done {
        variants,
        dominant: None,
    }
}
