//! Hostile inputs, each processed in a separate process whose peak RSS and time are measured.
//!
//! A parent test writes each input to a file and runs this same test binary again
//! (`std::env::current_exe()`), filtered to the `child` test, with `IMGEST_BOMB_CASE` naming
//! the case and `IMGEST_BOMB_INPUT` the file. The child reads the file, times one call of
//! [`imgest::process`], reads its own peak RSS (`VmHWM` in `/proc/self/status`), and prints one
//! JSON line that the parent parses and checks against the bounds. Without `IMGEST_BOMB_CASE`
//! the `child` test does nothing, so a plain `cargo test` passes it.
//!
//! Two groups of cases:
//! - the bombs of the shared corpus (`bad/`), with the bounds of the issue: peak RSS < 64 MB
//!   and < 50 ms each. The corpus is found as in `integration/corpus.rs`: `IMGEST_CORPUS`, or
//!   `../shared/corpus` next to the workspace; when it is missing the test prints why and
//!   passes, unless `IMGEST_REQUIRE_CORPUS=1` (set by `.ci/run`), which makes it mandatory;
//! - hostile inputs crafted here (generation is not measured): an `iCCP` zlib bomb, 20000 JPEG
//!   scans, 5000 GIF frames, headers that lie, a 16-bit PNG header whose buffer size overflows
//!   `u32`.
//!
//! Peak RSS is that of the whole child process (test harness included), so the bounds are
//! conservative. Linux only (`/proc/self/status`); elsewhere the tests print a skip message.
//! Run with `--nocapture` to see the table of figures.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use imgest::{ErrorCode, LimitKind, Limits, Options};
use serde_json::{Value, json};

#[path = "integration/fixtures.rs"]
#[allow(dead_code)] // shared with the integration tests, which use the rest
mod fixtures;

use fixtures::{contains, corpus_dir, hex, png_chunk, riff_chunk};

const CASE_ENV: &str = "IMGEST_BOMB_CASE";
const INPUT_ENV: &str = "IMGEST_BOMB_INPUT";
/// Comma-separated hex strings that must not appear in any output.
const NEEDLES_ENV: &str = "IMGEST_BOMB_NEEDLES";
/// Marks the child's one machine-readable line (a JSON object follows it).
const MARKER: &str = "IMGEST_BOMB_RESULT ";
/// A child still running after this long is killed (a hang is a failure too).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Peak RSS bound of every case, in bytes (decimal megabytes: 64 MB).
const MAX_RSS_BYTES: u64 = 64_000_000;
/// Time bound of the corpus bombs (the issue's).
const CORPUS_MAX_MS: f64 = 50.0;
/// Time bound of the crafted inputs refused from their headers. Measured (debug build, 2
/// cores): under 0.3 ms, also with both cores busy; the bound is that of the corpus bombs, as
/// anything tighter would measure the scheduler.
const CRAFTED_MAX_MS: f64 = 50.0;
/// Time bound of the `iCCP` bomb, which inflates 8 MiB (the ICC limit) before refusing it.
/// Measured: 5-14 ms, 14-30 ms with both cores busy.
const ICC_MAX_MS: f64 = 100.0;

/// The children run one at a time (the two parent tests would otherwise overlap), so one
/// case's time is not another's CPU contention.
static SERIAL: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------

/// Runs one case when re-executed by a parent test; does nothing otherwise.
#[test]
fn child() {
    let Some(case) = std::env::var_os(CASE_ENV) else {
        return;
    };
    let case = case.to_str().expect("case name").to_owned();
    let input = std::env::var_os(INPUT_ENV).expect("IMGEST_BOMB_INPUT");
    let bytes = std::fs::read(&input).expect("read the input");
    let options = Options::default().with_limits(limits_for(&case));
    let rss_before = vm_kb("VmHWM");

    let start = Instant::now();
    let result = imgest::process(&bytes, &options);
    let elapsed = start.elapsed();
    let peak = vm_kb("VmHWM");

    // Everything below is after the measurement.
    let needles: Vec<Vec<u8>> = std::env::var(NEEDLES_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(unhex).collect())
        .unwrap_or_default();
    let (result_str, limit, message, variants, needles_found) = match &result {
        Ok(out) => {
            let found: Vec<String> = out
                .variants
                .iter()
                .flat_map(|v| {
                    needles
                        .iter()
                        .filter(|n| contains(&v.bytes, n))
                        .map(|n| format!("{}: {}", v.name, hex(n)))
                })
                .collect();
            ("ok".to_owned(), None, None, out.variants.len(), found)
        }
        Err(e) => (
            e.code().as_str().to_owned(),
            e.limit().map(|l| l.as_str()),
            Some(e.to_string()),
            0,
            Vec::new(),
        ),
    };
    let line = json!({
        "case": case,
        "result": result_str,
        "limit": limit,
        "message": message,
        "variants": variants,
        "needles_found": needles_found,
        "elapsed_us": elapsed.as_micros() as u64,
        "rss_before_kb": rss_before,
        "peak_rss_kb": peak,
    });
    println!("{MARKER}{line}");
    std::io::stdout().flush().unwrap();
}

/// A `Vm*` field of `/proc/self/status`, in kB.
fn vm_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn limits_for(case: &str) -> Limits {
    crafted_cases()
        .iter()
        .find(|c| c.name == case)
        .map_or_else(Limits::default, |c| (c.limits)())
}

// ---------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------

/// What the child reported.
#[derive(Debug)]
struct Measured {
    result: String,
    limit: Option<String>,
    message: Option<String>,
    variants: u64,
    needles_found: Vec<String>,
    ms: f64,
    rss_before_bytes: u64,
    peak_rss_bytes: u64,
}

/// Runs `case` on `input` in a child process.
fn measure(case: &str, input: &Path, needles: &[Vec<u8>]) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    let mut child = Command::new(exe)
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .env(INPUT_ENV, input)
        .env(
            NEEDLES_ENV,
            needles.iter().map(|n| hex(n)).collect::<Vec<_>>().join(","),
        )
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(s) => break Some(s),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let Some(status) = status else {
        return Err(format!(
            "killed after {CHILD_TIMEOUT:?}; stderr:\n{}",
            tail(&stderr)
        ));
    };
    // libtest prints `test child ... ` on the same line, before the child's output.
    let line = stdout
        .lines()
        .find_map(|l| l.find(MARKER).map(|i| &l[i + MARKER.len()..]));
    let (true, Some(line)) = (status.success(), line) else {
        return Err(format!(
            "child exited with {status} without a result; stdout:\n{}\nstderr:\n{}",
            tail(&stdout),
            tail(&stderr)
        ));
    };
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let kb = |k: &str| {
        v[k].as_u64()
            .map(|n| n * 1024)
            .ok_or(format!("no {k} (is /proc/self/status readable?)"))
    };
    Ok(Measured {
        result: v["result"].as_str().unwrap_or("?").to_owned(),
        limit: v["limit"].as_str().map(str::to_owned),
        message: v["message"].as_str().map(str::to_owned),
        variants: v["variants"].as_u64().unwrap_or(0),
        needles_found: v["needles_found"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        ms: v["elapsed_us"].as_u64().ok_or("no elapsed_us")? as f64 / 1000.0,
        rss_before_bytes: kb("rss_before_kb")?,
        peak_rss_bytes: kb("peak_rss_kb")?,
    })
}

/// The accepted outcomes of a case.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// `"ok"` or an [`ErrorCode`] string.
    results: &'static [&'static str],
    /// The limit, when the result is `limit_exceeded`.
    limit: Option<LimitKind>,
    /// A substring of the error message.
    message_contains: Option<&'static str>,
}

const LIMIT_EXCEEDED: &str = ErrorCode::LimitExceeded.as_str();
const LIMIT_OR_CORRUPT: &[&str] = &[LIMIT_EXCEEDED, ErrorCode::CorruptInput.as_str()];

const fn limit(kind: Option<LimitKind>) -> Expect {
    Expect {
        results: &[LIMIT_EXCEEDED],
        limit: kind,
        message_contains: None,
    }
}

/// One case to run: its input file, expectation and bounds.
struct Run {
    name: String,
    input: PathBuf,
    needles: Vec<Vec<u8>>,
    expect: Expect,
    max_ms: f64,
    max_rss_bytes: u64,
}

/// Runs every case (one child each, serially), prints the table, and fails with every problem.
fn run_all(title: &str, runs: &[Run]) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for r in runs {
        match measure(&r.name, &r.input, &r.needles) {
            Ok(m) => {
                problems.extend(check(r, &m).into_iter().map(|p| format!("{}: {p}", r.name)));
                rows.push((r, Some(m)));
            }
            Err(e) => {
                problems.push(format!("{}: {e}", r.name));
                rows.push((r, None));
            }
        }
    }
    let mut table = format!(
        "\n{title}\n{:<34} {:>10} {:<30} {:>8} {:>6} {:>12} {:>6}\n",
        "case", "input B", "result", "ms", "(max)", "peak RSS MB", "(max)"
    );
    for (r, m) in &rows {
        let input_bytes = std::fs::metadata(&r.input).map_or(0, |m| m.len());
        let (result, ms, rss) = match m {
            Some(m) => (
                match &m.limit {
                    Some(l) => format!("{} / {l}", m.result),
                    None => m.result.clone(),
                },
                format!("{:.2}", m.ms),
                format!("{:.1}", m.peak_rss_bytes as f64 / 1e6),
            ),
            None => ("(no result)".into(), "-".into(), "-".into()),
        };
        table += &format!(
            "{:<34} {input_bytes:>10} {result:<30} {ms:>8} {:>6} {rss:>12} {:>6}\n",
            r.name,
            r.max_ms,
            r.max_rss_bytes as f64 / 1e6,
        );
    }
    if let Some(base) = rows
        .iter()
        .filter_map(|(_, m)| m.as_ref().map(|m| m.rss_before_bytes))
        .max()
    {
        table += &format!(
            "(peak RSS is the whole child process's; before the call it was at most {:.1} MB)\n",
            base as f64 / 1e6
        );
    }
    println!("{table}");
    for p in &problems {
        eprintln!("FAIL {p}");
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn check(r: &Run, m: &Measured) -> Vec<String> {
    let mut problems = Vec::new();
    let e = &r.expect;
    if !e.results.contains(&m.result.as_str()) {
        problems.push(format!(
            "result {} ({}), expected one of {:?}",
            m.result,
            m.message.as_deref().unwrap_or("no error"),
            e.results
        ));
    }
    if m.result == LIMIT_EXCEEDED
        && let Some(kind) = e.limit
        && m.limit.as_deref() != Some(kind.as_str())
    {
        problems.push(format!(
            "limit {:?}, expected {kind} ({})",
            m.limit,
            m.message.as_deref().unwrap_or("")
        ));
    }
    if let Some(s) = e.message_contains
        && !m.message.as_deref().is_some_and(|msg| msg.contains(s))
    {
        problems.push(format!("message {:?} does not contain {s:?}", m.message));
    }
    if m.result == "ok" && m.variants == 0 {
        problems.push("ok but no variants".into());
    }
    if !m.needles_found.is_empty() {
        problems.push(format!(
            "input bytes survive in the output: {:?}",
            m.needles_found
        ));
    }
    if m.ms >= r.max_ms {
        problems.push(format!("took {:.2} ms, the bound is {} ms", m.ms, r.max_ms));
    }
    if m.peak_rss_bytes >= r.max_rss_bytes {
        problems.push(format!(
            "peak RSS {:.1} MB, the bound is {:.0} MB",
            m.peak_rss_bytes as f64 / 1e6,
            r.max_rss_bytes as f64 / 1e6
        ));
    }
    problems
}

fn linux_or_skip() -> bool {
    if cfg!(target_os = "linux") {
        return true;
    }
    eprintln!("SKIPPED: the bomb tests read peak RSS from /proc/self/status (Linux only)");
    false
}

// ---------------------------------------------------------------------------
// The corpus bombs
// ---------------------------------------------------------------------------

const CORPUS_BOMBS: [&str; 4] = [
    // 44-byte GIF declaring 65535×66601.
    "bad/decompression_bomb.gif",
    // 522 KB palette PNG declaring 65536×65536.
    "bad/65536-uint32-limit.png",
    // 1 MB grayscale JPEG, 20000×14000.
    "bad/giant-image.jpg",
    // 1×1 PNG with three zTXt chunks that inflate to megabytes of text.
    "bad/png_decompression_dos.png",
];

/// The outcome EXPECTED.json states for a bomb.
fn corpus_expect(entry: &Value) -> Expect {
    match (entry["outcome"].as_str(), entry["reason"].as_str()) {
        (Some("reject"), Some("bomb")) => limit(None),
        // Either refused, or decoded with the text discarded (never inflated).
        (Some("reject-or-accept-without-inflating"), _) => Expect {
            results: &["ok", LIMIT_EXCEEDED],
            limit: None,
            message_contains: None,
        },
        other => panic!("{}: unexpected outcome {other:?}", entry["path"]),
    }
}

/// The first bytes of every compressed text chunk of a PNG, raw and inflated: none may reach an
/// output.
fn png_text_needles(png: &[u8]) -> Vec<Vec<u8>> {
    let mut needles = Vec::new();
    let mut pos = 8;
    while let Some(head) = png.get(pos..pos + 8) {
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let Some(data) = png.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if &head[4..] == b"zTXt" {
            let nul = data.iter().position(|&b| b == 0).unwrap();
            // Keyword, NUL, method and the start of the zlib stream.
            needles.push(data[..(nul + 2 + 16).min(data.len())].to_vec());
            let text = match fdeflate::decompress_to_vec_bounded(&data[nul + 2..], 64) {
                Ok(v) => v,
                Err(fdeflate::BoundedDecompressionError::OutputTooLarge { partial_output }) => {
                    partial_output
                }
                Err(_) => panic!("zTXt does not inflate"),
            };
            assert_eq!(text.len(), 64, "zTXt text shorter than expected");
            needles.push(text);
        }
        pos += 12 + len;
    }
    needles.sort();
    needles.dedup();
    needles
}

#[test]
fn corpus_bombs() {
    if !linux_or_skip() {
        return;
    }
    let Some(dir) = corpus_dir() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("EXPECTED.json")).unwrap()).unwrap();
    let runs: Vec<Run> = CORPUS_BOMBS
        .iter()
        .map(|path| {
            let entry = expected["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["path"] == *path)
                .unwrap_or_else(|| panic!("{path} is not in EXPECTED.json"));
            let input = dir.join(path);
            let needles = if path.ends_with(".png") {
                png_text_needles(&std::fs::read(&input).unwrap())
            } else {
                Vec::new()
            };
            Run {
                name: path.trim_start_matches("bad/").to_owned(),
                input,
                needles,
                expect: corpus_expect(entry),
                max_ms: CORPUS_MAX_MS,
                max_rss_bytes: MAX_RSS_BYTES,
            }
        })
        .collect();
    assert!(
        !runs[3].needles.is_empty(),
        "png_decompression_dos.png has no zTXt chunk"
    );
    run_all("corpus bombs (default options)", &runs);
}

// ---------------------------------------------------------------------------
// Crafted hostile inputs
// ---------------------------------------------------------------------------

struct Crafted {
    name: &'static str,
    make: fn() -> Vec<u8>,
    limits: fn() -> Limits,
    expect: Expect,
    max_ms: f64,
}

fn crafted_cases() -> Vec<Crafted> {
    vec![
        Crafted {
            name: "png_iccp_100mib_of_zeros",
            make: png_iccp_bomb,
            limits: Limits::default,
            expect: limit(Some(LimitKind::IccBytes)),
            max_ms: ICC_MAX_MS,
        },
        Crafted {
            name: "jpeg_20000_scans",
            make: jpeg_many_scans,
            limits: Limits::default,
            expect: limit(Some(LimitKind::Scans)),
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "gif_5000_frames",
            make: gif_many_frames,
            limits: Limits::default,
            expect: limit(Some(LimitKind::Frames)),
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "gif_frame_larger_than_screen",
            make: gif_lying_frame,
            limits: Limits::default,
            expect: limit(Some(LimitKind::Pixels)),
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "png16_rgba_65535x65535",
            make: png16_huge,
            // Only the allocation budget stands between this header and 34 GB.
            limits: || {
                Limits::default()
                    .with_max_pixels(u64::MAX)
                    .with_max_dimensions(u32::MAX, u32::MAX)
            },
            // Refused from the header, before any decoder runs, by its RGBA8 estimate:
            // 65535 × 65535 × 4 bytes, more than u32::MAX (no overflow).
            expect: Expect {
                results: &[LIMIT_EXCEEDED],
                limit: Some(LimitKind::Alloc),
                message_contains: Some("alloc_bytes is 17179344900,"),
            },
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "png16_rgba_65535x65535_20gb_budget",
            make: png16_huge,
            // A budget above the RGBA8 estimate (17.2 GB) but below the 16-bit buffer: the
            // decoder's own byte count must refuse it.
            limits: || {
                Limits::default()
                    .with_max_pixels(u64::MAX)
                    .with_max_dimensions(u32::MAX, u32::MAX)
                    .with_max_alloc_bytes(20_000_000_000)
            },
            // 65535 × 65535 × 8 bytes, computed without u32 overflow.
            expect: Expect {
                results: &[LIMIT_EXCEEDED],
                limit: Some(LimitKind::Alloc),
                message_contains: Some("alloc_bytes is 34358689800,"),
            },
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "webp_vp8x_16_vs_vp8l_16000",
            make: || webp_lying(vp8l_bitstream(16000, 16000)),
            limits: Limits::default,
            expect: Expect {
                results: LIMIT_OR_CORRUPT,
                limit: None,
                message_contains: None,
            },
            max_ms: CRAFTED_MAX_MS,
        },
        Crafted {
            name: "webp_vp8x_16_vs_vp8_16000",
            make: || webp_lying(vp8_bitstream(16000, 16000)),
            limits: Limits::default,
            expect: Expect {
                results: LIMIT_OR_CORRUPT,
                limit: None,
                message_contains: None,
            },
            max_ms: CRAFTED_MAX_MS,
        },
    ]
}

#[test]
fn crafted_bombs() {
    if !linux_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<Run> = crafted_cases()
        .iter()
        .map(|c| {
            let input = dir.path().join(c.name);
            std::fs::write(&input, (c.make)()).unwrap();
            Run {
                name: c.name.to_owned(),
                input,
                needles: Vec::new(),
                expect: c.expect,
                max_ms: c.max_ms,
                max_rss_bytes: MAX_RSS_BYTES,
            }
        })
        .collect();
    run_all("crafted hostile inputs", &runs);
}

// ---------------------------------------------------------------------------
// Builders of the crafted inputs
// ---------------------------------------------------------------------------

/// A 1×1 RGB PNG whose `iCCP` profile inflates to 100 MiB of zeros.
fn png_iccp_bomb() -> Vec<u8> {
    let mut png = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::set_icc_profile(&mut enc, vec![0; 100 << 20]).unwrap();
    image::ImageEncoder::write_image(enc, &[9, 9, 9], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    png
}

/// An 8×8 baseline JPEG with its one scan (SOS up to EOI) repeated 20000 times.
fn jpeg_many_scans() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50]));
    fixtures::with_scans(&fixtures::jpeg(&img, None, None), 20000)
}

/// An animated GIF of 5000 1×1 frames.
fn gif_many_frames() -> Vec<u8> {
    let frames = (0..5000u32).map(|i| {
        image::Frame::new(image::RgbaImage::from_pixel(
            1,
            1,
            image::Rgba([(i % 256) as u8, 0, 0, 255]),
        ))
    });
    let mut gif = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut gif)
        .encode_frames(frames)
        .unwrap();
    gif
}

/// A GIF whose logical screen is 10×10 but whose first frame claims 12000×12000.
fn gif_lying_frame() -> Vec<u8> {
    fixtures::gif_one_frame((10, 10), (12000, 12000), true)
}

/// A PNG declaring 65535×65535 RGBA at 16 bits, with one tiny IDAT (so the decoder gets as far
/// as its header).
fn png16_huge() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&65535u32.to_be_bytes());
    ihdr.extend_from_slice(&65535u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &fdeflate::compress_to_vec(&[0; 9]));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// The `VP8L` chunk of a lossless bitstream header declaring `w`×`h`, and some filler.
fn vp8l_bitstream(w: u32, h: u32) -> Vec<u8> {
    let mut data = vec![0x2F];
    let bits = (w - 1) | ((h - 1) << 14); // no alpha hint, version 0
    data.extend_from_slice(&bits.to_le_bytes());
    data.extend_from_slice(&[0; 64]);
    let mut chunk = Vec::new();
    riff_chunk(&mut chunk, b"VP8L", &data);
    chunk
}

/// The `VP8 ` chunk of a lossy key frame declaring `w`×`h`, and some filler.
fn vp8_bitstream(w: u16, h: u16) -> Vec<u8> {
    let first_partition = 64u32;
    // Key frame (bit 0 clear), version 0, shown, first partition size.
    let tag = (1 << 4) | (first_partition << 5);
    let mut data = tag.to_le_bytes()[..3].to_vec();
    data.extend_from_slice(&[0x9D, 0x01, 0x2A]);
    data.extend_from_slice(&w.to_le_bytes());
    data.extend_from_slice(&h.to_le_bytes());
    data.extend_from_slice(&[0; 80]);
    let mut chunk = Vec::new();
    riff_chunk(&mut chunk, b"VP8 ", &data);
    chunk
}

/// A WebP whose VP8X canvas is 16×16, followed by `bitstream` (which says otherwise).
fn webp_lying(bitstream: Vec<u8>) -> Vec<u8> {
    let mut vp8x = vec![0u8; 4]; // no flags
    vp8x.extend_from_slice(&15u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&15u32.to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(&bitstream);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    webp.extend_from_slice(&body);
    webp
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
