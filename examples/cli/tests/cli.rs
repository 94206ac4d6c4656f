//! The CLI end to end: variants, reports, exit codes and one-line reasons.

use std::process::Command;

fn imgest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgest"))
}

/// The CLI's built-in sample image, written to `path`.
fn write_sample(path: &std::path::Path) {
    let status = imgest().arg("--write-sample").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn processes_a_folder_and_reports_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    let sample = input.join("sunrise.jpg");
    write_sample(&sample);
    std::fs::copy(&sample, input.join("nested/copy.jpg")).unwrap();
    std::fs::write(input.join("notes.txt"), "hello, not an image\n").unwrap();
    std::fs::write(input.join("empty.png"), b"").unwrap();
    let out = dir.path().join("out");
    let result = imgest()
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{stdout}\n{stderr}");
    let rejected: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("rejected "))
        .collect();
    assert_eq!(rejected.len(), 2, "{stderr}");
    assert!(
        rejected
            .iter()
            .any(|l| l.contains("notes.txt") && l.contains("[not_an_image]"))
    );
    assert!(
        rejected
            .iter()
            .any(|l| l.contains("empty.png") && l.contains("[not_an_image]"))
    );
    assert!(stdout.contains("2 processed, 2 rejected"), "{stdout}");
    for name in ["sunrise", "copy"] {
        let d = out.join(name);
        for v in ["thumbnail", "medium", "large", "original"] {
            let bytes = std::fs::read(d.join(format!("{v}.webp"))).unwrap();
            assert!(bytes.starts_with(b"RIFF"));
        }
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["output"]["source"]["orientation"], 6);
        assert_eq!(report["output"]["source"]["width"], 1200);
        assert_eq!(report["output"]["source"]["metadata"]["gps"], true);
        assert_eq!(report["output"]["variants"][0]["width"], 150);
    }
}

#[test]
fn options_json_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("s.jpg");
    write_sample(&sample);
    let out = dir.path().join("out");
    let result = imgest()
        .arg(&sample)
        .arg("--out")
        .arg(&out)
        .arg("--options")
        .arg(r#"{"variants":[{"name":"small","max_width":64,"max_height":64,"format":"png"}]}"#)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let png = image::load_from_memory(&std::fs::read(out.join("s/small.png")).unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (64, 43));

    let bad = imgest()
        .arg(&sample)
        .arg("--options")
        .arg(r#"{"quality":3}"#)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid option"));
    let missing = imgest().arg(dir.path().join("nope.jpg")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_timeout_rejects_the_slow_file_and_processes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let sample = input.join("a-sample.jpg");
    write_sample(&sample);
    // 3000 × 3000 of noise: seconds of work, far past a 0.6 s budget; the sample takes ~0.2 s
    // in a test build (0.05 s in release), with the other tests of this file running beside it.
    let mut state = 1u32;
    let noise = image::RgbImage::from_fn(3000, 3000, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    noise.save(input.join("noise.jpg")).unwrap();
    let start = std::time::Instant::now();
    let result = imgest()
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--timeout")
        .arg("0.6")
        .arg("--jobs")
        .arg("1")
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("rejected ")
            && l.contains("noise.jpg")
            && l.contains("[timeout]")),
        "{stderr}"
    );
    assert!(stdout.contains("1 processed, 1 rejected"), "{stdout}");
    eprintln!("both files in {took:?}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    for bad in ["0", "-1", "soon", "inf"] {
        let usage = imgest()
            .arg(&sample)
            .arg("--timeout")
            .arg(bad)
            .output()
            .unwrap();
        assert_eq!(usage.status.code(), Some(2), "--timeout {bad}");
    }
}
