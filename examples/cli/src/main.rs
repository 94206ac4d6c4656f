//! `imgest`: turn image files into web-ready variants and a JSON report.
//!
//! Run with `cargo run --release -p imgest-cli -- <files or folders> --out DIR [--options JSON]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use imgest::{Options, Pipeline};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

mod sample;

/// Turn untrusted images into safe, web-ready variants (oriented, metadata stripped, sRGB,
/// resized, WebP) plus a JSON report per image.
#[derive(Debug, Parser)]
#[command(name = "imgest", version)]
struct Cli {
    /// Image files, or folders to walk (recursively) for files.
    #[arg(required_unless_present = "write_sample")]
    inputs: Vec<PathBuf>,
    /// Folder to write `<name>/<variant>.<ext>` and `<name>/report.json` into.
    #[arg(long, short, default_value = "imgest-out")]
    out: PathBuf,
    /// Pipeline options as JSON, inline (`{"variants": …}`) or a path to a JSON file.
    #[arg(long)]
    options: Option<String>,
    /// Parallel jobs (default: one per core).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Time budget per file, in seconds (fractions allowed): a file still being processed when
    /// it is spent is rejected with `[timeout]` and the others go on. Overrides `timeout_ms`
    /// in --options.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<u64>,
    /// Write the built-in sample image (a gradient tagged with EXIF orientation 6 and GPS) to
    /// this path and exit.
    #[arg(long, value_name = "PATH")]
    write_sample: Option<PathBuf>,
}

fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut files).map_err(|e| format!("{}: {e}", input.display()))?;
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(format!("{}: no such file or folder", input.display()));
        }
    }
    Ok(files)
}

/// The files under `dir`, in file-name order at every level (symbolic links are not followed).
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> walkdir::Result<()> {
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        }
    }
    Ok(())
}

/// Seconds as whole milliseconds (at least 1).
fn parse_timeout(arg: &str) -> Result<u64, String> {
    match arg.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s * 1000.0 < u64::MAX as f64 => {
            Ok(((s * 1000.0).round() as u64).max(1))
        }
        _ => Err(format!(
            "expected a positive number of seconds, not {arg:?}"
        )),
    }
}

fn load_options(arg: Option<&str>) -> Result<Options, String> {
    let Some(arg) = arg else {
        return Ok(Options::default());
    };
    let json = if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg).map_err(|e| format!("--options {arg}: {e}"))?
    };
    Options::from_json(&json).map_err(|e| format!("--options: {e}"))
}

/// Unique, filesystem-safe output folder names, one per input.
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    files
        .iter()
        .map(|f| {
            let stem: String = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into())
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let n = seen.entry(stem.clone()).or_default();
            *n += 1;
            if *n == 1 { stem } else { format!("{stem}-{n}") }
        })
        .collect()
}

fn process_one(options: &Options, file: &Path, dir: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let mut pipeline = Pipeline::new(options.clone()).map_err(|e| e.to_string())?;
    let output = pipeline
        .run(&bytes)
        .map_err(|e| format!("[{}] {e}", e.code()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for v in &output.variants {
        let path = dir.join(format!("{}.{}", v.name, v.format.extension()));
        std::fs::write(&path, &v.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let report = serde_json::json!({ "input": file.display().to_string(), "output": output });
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), json + "\n").map_err(|e| e.to_string())?;
    let s = &output.source;
    Ok(format!(
        "{} {}x{} → {} variants, dominant {}",
        s.format,
        s.width,
        s.height,
        output.variants.len(),
        output
            .dominant_color
            .as_ref()
            .map_or("-", |c| c.hex.as_str())
    ))
}

fn main() -> ExitCode {
    imgest::memory::map_large_buffers();
    let cli = Cli::parse();
    if let Some(path) = &cli.write_sample {
        return match std::fs::write(path, sample::jpeg()) {
            Ok(()) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("imgest: {}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    let options = match load_options(cli.options.as_deref()) {
        Ok(o) if cli.timeout.is_some() => o.with_timeout_ms(cli.timeout),
        Ok(o) => o,
        Err(e) => {
            eprintln!("imgest: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match collect(&cli.inputs) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("imgest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(jobs) = cli.jobs {
        // Only fails if a global pool already exists, which it cannot here.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global();
    }
    let names = output_names(&files);
    let bar = if files.len() > 1 {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let rejected = Mutex::new(Vec::new());
    let done: Vec<(usize, Result<String, String>)> = files
        .par_iter()
        .enumerate()
        .map(|(i, file)| {
            let result = process_one(&options, file, &cli.out.join(&names[i]));
            bar.set_message(file.display().to_string());
            bar.inc(1);
            if let Err(e) = &result {
                rejected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, e.clone()));
            }
            (i, result)
        })
        .collect();
    bar.finish_and_clear();
    for (i, result) in &done {
        match result {
            Ok(summary) => println!(
                "ok       {}: {summary} → {}",
                files[*i].display(),
                cli.out.join(&names[*i]).display()
            ),
            Err(e) => eprintln!("rejected {}: {e}", files[*i].display()),
        }
    }
    let rejected = rejected
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    println!("{} processed, {rejected} rejected", files.len() - rejected);
    if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
