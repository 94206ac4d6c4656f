#![allow(missing_docs)] // criterion_main! generates undocumented items
//! The two workloads of the peer comparison end to end, per bench image, in megapixels per
//! second of the source: `ingest` (4 WebP variants + dominant colour) and `thumb` (one 800-px
//! WebP), and both again on ICC-tagged inputs beside their untagged twins.
//! `cargo bench -p imgest-benches --bench pipeline`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imgest::Pipeline;
use imgest_benches::{bench_images, ingest_options, tagged_images, thumb_options};

fn pipeline(c: &mut Criterion) {
    let images = bench_images();
    let tagged = tagged_images();
    for (workload, options, images) in [
        ("ingest", ingest_options(), &images),
        ("thumb", thumb_options(), &images),
        // ICC-tagged inputs next to the same pixels untagged (see `tagged_images`).
        ("ingest-tagged", ingest_options(), &tagged),
        ("thumb-tagged", thumb_options(), &tagged),
    ] {
        let mut pipeline = Pipeline::new(options).expect("valid options");
        let mut g = c.benchmark_group(workload);
        for img in images {
            let out = pipeline.run(&img.bytes).expect("bench image processes");
            g.throughput(Throughput::Elements(
                u64::from(out.source.width) * u64::from(out.source.height),
            ));
            g.bench_function(BenchmarkId::from_parameter(&img.name), |b| {
                b.iter(|| pipeline.run(&img.bytes).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = pipeline
}
criterion_main!(benches);
