#![allow(missing_docs)] // criterion_main! generates undocumented items
//! Each stage of the pipeline on every bench image, in megapixels per second of the stage's
//! input (`Melem/s` in criterion's report = megapixels/s).
//!
//! `cargo bench -p imgest-benches --bench stages` (`-- decode` for one stage).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imgest::resize::Resizer;
use imgest::{Limits, OutputFormat, color, decode, dominant, orient, target_size, validate};
use imgest_benches::{bench_images, tagged_images};

fn stages(c: &mut Criterion) {
    let limits = Limits::default();
    let mut resizer = Resizer::new();
    let tagged = tagged_images();
    for img in bench_images() {
        let bytes = &img.bytes;
        let checked = validate::check(bytes, &limits).expect("bench image passes the checks");
        let decoded = decode::decode(bytes, &checked, &limits).expect("decodes");
        let srgb = color::to_srgb(decoded.clone()).expect("converts");
        let (w, h) = srgb.image.dimensions();
        let pixels = u64::from(w) * u64::from(h);
        let (mw, mh) = target_size(w, h, &imgest::Variant::fit("medium", 800));
        let medium = resizer
            .resize(&srgb.image, mw, mh, srgb.has_alpha, false)
            .expect("resizes");
        let name = img.name.as_str();

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

        let mut g = c.benchmark_group("to_srgb");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| color::to_srgb(decoded.clone()).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group("orient6");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| orient::apply(srgb.image.clone(), 6))
        });
        g.finish();

        let mut g = c.benchmark_group("resize800");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                resizer
                    .resize(&srgb.image, mw, mh, srgb.has_alpha, false)
                    .unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("encode800_webp_q85");
        g.throughput(Throughput::Elements(u64::from(mw) * u64::from(mh)));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                imgest::encode::encode(&medium, OutputFormat::Webp, 85, false, srgb.has_alpha)
                    .unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("dominant");
        g.throughput(Throughput::Elements(pixels));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| dominant::palette(&srgb.image, 1))
        });
        g.finish();
    }
    // The colour conversion of ICC-tagged inputs: the whole decoded image to sRGB, per profile.
    let mut g = c.benchmark_group("to_srgb-tagged");
    for img in &tagged {
        let bytes = &img.bytes;
        let checked = validate::check(bytes, &limits).expect("tagged input passes the checks");
        let decoded = decode::decode(bytes, &checked, &limits).expect("decodes");
        let (w, h) = (checked.header.width, checked.header.height);
        g.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        g.bench_function(BenchmarkId::from_parameter(&img.name), |b| {
            b.iter(|| color::to_srgb(decoded.clone()).unwrap())
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
