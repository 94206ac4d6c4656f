//! The peer runner speaks the harness's protocol.

use std::process::Command;

use serde_json::Value;

fn sample() -> String {
    format!(
        "{}/../examples/cli/sample/sunrise.jpg",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_imgest-peer-runner"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn latency_lines_for_both_workloads() {
    let outdir = tempfile::tempdir().unwrap();
    let image = sample();
    let out = outdir.path().to_str().unwrap();
    let lines = run(&[
        "--peer",
        "imgest-rs",
        "--workload",
        "ingest",
        "--images",
        &image,
        "--mode",
        "latency",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--outdir",
        out,
    ]);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(
        (l["peer"].as_str(), l["mode"].as_str(), l["image"].as_str()),
        (Some("imgest-rs"), Some("latency"), Some("sunrise.jpg"))
    );
    assert_eq!(l["samples_ms"].as_array().unwrap().len(), 2);
    assert!(l["ms_per_image"].as_f64().unwrap() > 0.0);
    for (name, dims) in [
        ("thumbnail", [150, 100]),
        ("medium", [800, 533]),
        ("large", [1200, 800]),
        ("original", [1200, 800]),
    ] {
        assert!(l["bytes"][name].as_u64().unwrap() > 0, "{name}");
        assert_eq!(l["dims"][name], serde_json::json!(dims), "{name}");
    }
    assert_eq!(l["dominant"].as_array().unwrap().len(), 3);
    let medium = std::fs::read(outdir.path().join("sunrise.webp")).unwrap();
    assert_eq!(medium.len() as u64, l["bytes"]["medium"].as_u64().unwrap());
    let lines = thumb_once(&image, &[]);
    assert_eq!(lines[0]["dims"], serde_json::json!({"medium": [800, 533]}));
    assert!(lines[0]["dominant"].is_null());
}

/// One latency run of the thumb workload over `image`, with `extra` arguments.
fn thumb_once(image: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "--workload",
        "thumb",
        "--images",
        image,
        "--iters",
        "1",
        "--warmup",
        "0",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn throughput_line_and_unknown_workloads() {
    let image = sample();
    let both = format!("{image},{image}");
    let lines = run(&[
        "--workload",
        "thumb",
        "--images",
        &both,
        "--mode",
        "throughput",
        "--passes",
        "2",
        "--warmup",
        "0",
    ]);
    assert_eq!(lines[0]["images_done"], 4);
    assert!(
        lines[0]["wall_ms"].as_f64().unwrap() > 0.0 && lines[0]["cpu_ms"].as_f64().unwrap() > 0.0
    );
    let lines = run(&["--workload", "animate", "--images", &image]);
    assert_eq!(lines[0]["error"], "workload not supported");
}

#[test]
fn the_floors_time_the_encodes_or_the_decode_alone() {
    let image = sample();
    let encodes = thumb_once(&image, &["--encode-only"]);
    assert_eq!(
        encodes[0]["dims"],
        serde_json::json!({"medium": [800, 533]})
    );
    assert!(encodes[0]["bytes"]["medium"].as_u64().unwrap() > 0);
    assert_eq!(encodes[0]["what"], "the WebP encodes alone (floor)");
    let decode = thumb_once(&image, &["--decode-only"]);
    assert_eq!(decode[0]["bytes"], serde_json::json!({}));
    assert_eq!(decode[0]["total_bytes"], 0);
    assert_eq!(
        decode[0]["what"],
        "the decode alone, at the pipeline's scale (floor)"
    );
    assert!(decode[0]["ms_per_image"].as_f64().unwrap() > 0.0);
}
