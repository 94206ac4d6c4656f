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

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imgest::Pipeline;
use imgest_benches::{ingest_options, thumb_options};
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
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
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
    imgest::memory::map_large_buffers();
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("imgest-peer-runner: {e}");
            std::process::exit(2);
        }
    };
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
        "lib_version": format!("imgest {}", env!("CARGO_PKG_VERSION")),
        "threads": format!("variants in parallel ({threads} cores), libwebp thread_level 1"),
    });
    let mut run = |bytes: &[u8]| pipeline.run(bytes).expect("bench images are valid");
    if let Some(first) = bufs.first() {
        for _ in 0..a.warmup {
            run(first);
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
            for b in &bufs {
                run(b);
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
    for (path, bytes) in a.images.iter().zip(&bufs) {
        let name = Path::new(path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (mut ms, mut cpu) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..a.iters {
            let (c0, t0) = (cpu_time(), Instant::now());
            let out = run(bytes);
            ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            cpu.push((cpu_time() - c0).as_secs_f64() * 1000.0);
            last = Some(out);
        }
        let out = last.expect("at least one iteration");
        let mut sizes = BTreeMap::new();
        let mut dims = BTreeMap::new();
        for v in &out.variants {
            sizes.insert(v.name.clone(), v.bytes.len());
            dims.insert(v.name.clone(), [v.width, v.height]);
            if let (true, Some(dir)) = (v.name == "medium", &a.outdir) {
                let stem = Path::new(&name)
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy();
                std::fs::create_dir_all(dir).expect("outdir");
                std::fs::write(Path::new(dir).join(format!("{stem}.webp")), &v.bytes)
                    .expect("write");
            }
        }
        let dominant = out.dominant_color.as_ref().map(|c| c.rgb);
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
