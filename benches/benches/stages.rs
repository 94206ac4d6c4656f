#![allow(missing_docs)] // criterion_main! generates undocumented items
//! Each stage of the pipeline on every bench image, in megapixels per second of the stage's
//! input (`Melem/s` in criterion's report = megapixels/s), through the functions the pipeline
//! itself runs: on a `Frame` (RGB for opaque sources, RGBA otherwise) still in its source
//! colour space, converted to sRGB by the pending transform.
//!
//! `cargo bench -p imgest-benches --bench stages` (`-- decode` for one stage).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imgest::resize::Resizer;
use imgest::{
    Limits, OutputFormat, color, decode, dominant, encode, orient, target_size, validate,
};
use imgest_benches::{bench_images, tagged_images};

fn stages(c: &mut Criterion) {
    let limits = Limits::default();
    let mut resizer = Resizer::new();
    let tagged = tagged_images();
    for img in bench_images() {
        let bytes = &img.bytes;
        let checked = validate::check(bytes, &limits).expect("bench image passes the checks");
        let decoded = decode::decode(bytes, &checked, &limits).expect("decodes");
        let normalized = color::normalize(decoded.clone()).expect("converts");
        let (frame, has_alpha) = (&normalized.frame, normalized.has_alpha);
        let to_srgb = normalized.to_srgb.as_ref();
        let (w, h) = frame.dimensions();
        let pixels = u64::from(w) * u64::from(h);
        let (mw, mh) = target_size(w, h, &imgest::Variant::fit("medium", 800));
        let medium = resizer
            .resize(frame, mw, mh, has_alpha, false)
            .expect("resizes");
        let name = img.name.as_str();
        let webp = imgest::Variant::original("medium");
        let avif = webp.clone().with_format(OutputFormat::Avif);

        let mut g = c.benchmark_group("sniff+check");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| validate::check(bytes, &limits).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group("decode");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| decode::decode(bytes, &checked, &limits).unwrap())
        });
        if checked.format == imgest::Format::Jpeg {
            for s in [2u32, 4, 8] {
                g.bench_function(BenchmarkId::new(format!("1/{s}"), name), |b| {
                    b.iter(|| decode::decode_scaled(bytes, &checked, &limits, s).unwrap())
                });
            }
        }
        g.finish();

        let mut g = c.benchmark_group("normalize");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| color::normalize(decoded.clone()).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group("orient6");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| orient::apply(frame.clone(), 6))
        });
        g.finish();

        let mut g = c.benchmark_group("resize800");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| resizer.resize(frame, mw, mh, has_alpha, false).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group("encode800_webp_q85");
        g.throughput(Throughput::Elements(u64::from(mw) * u64::from(mh)));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| encode::encode(&medium, &webp, has_alpha).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group("encode800_avif_q85_effort4");
        g.throughput(Throughput::Elements(u64::from(mw) * u64::from(mh)));
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| encode::encode(&medium, &avif, has_alpha).unwrap())
        });
        g.finish();

        // AVIF input: the 800-px frame as imgest's own AVIF (q85, effort 0: made once here),
        // checked and decoded (rav1d, then YUV 4:4:4 to RGB).
        let avif800 = encode::encode(&medium, &avif.clone().with_effort(0), has_alpha).unwrap();
        let mut g = c.benchmark_group("check+decode800_avif");
        g.throughput(Throughput::Elements(u64::from(mw) * u64::from(mh)));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let checked = validate::check(&avif800, &limits).unwrap();
                decode::decode(&avif800, &checked, &limits).unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("dominant");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| dominant::palette(frame, to_srgb, 1))
        });
        g.finish();
    }
    // The colour conversion of ICC-tagged inputs, per profile: reading the profile and the
    // whole decoded image through its transform (what a full-size variant costs).
    let mut g = c.benchmark_group("to_srgb-tagged");
    for img in &tagged {
        let bytes = &img.bytes;
        let checked = validate::check(bytes, &limits).expect("tagged input passes the checks");
        let decoded = decode::decode(bytes, &checked, &limits).expect("decodes");
        let (w, h) = (checked.container.width, checked.container.height);
        g.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        g.bench_function(BenchmarkId::from_parameter(&img.name), |b| {
            b.iter(|| {
                let mut n = color::normalize(decoded.clone()).unwrap();
                if let Some(t) = &n.to_srgb {
                    t.apply(&mut n.frame);
                }
                n.frame
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = stages
}
criterion_main!(benches);
