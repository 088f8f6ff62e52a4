//! Criterion bench of line framing over 185-byte lines (the size peers
//! were measured with) and of the whole read path (mmap copy + framing +
//! event building) through `FileInput` on a warm file.

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtail_benches::{catch_up_options, generate_lines};
use logtail_core::file::{FileInput, Framer, FramerOptions};
use logtail_core::{EventBatch, Input, MemoryCheckpoint, Progress};

fn framing(c: &mut Criterion) {
    let data = generate_lines(64 << 20, 185);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("frame_185B_lines", |b| {
        b.iter(|| {
            let mut f = Framer::new(FramerOptions::default());
            let mut n = 0usize;
            let consumed = f.frame(black_box(&data), |r| n += r.len());
            black_box((consumed, n))
        })
    });
    g.finish();
}

fn read_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.log");
    let data = generate_lines(256 << 20, 185);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .expect("write bench file");
    let mut g = c.benchmark_group("file_input");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("catch_up_256MiB", |b| {
        b.iter(|| {
            let opts = catch_up_options(&path);
            let mut input =
                FileInput::new(opts, Box::new(MemoryCheckpoint::default())).expect("input");
            let mut lines = 0usize;
            let mut sink: Vec<EventBatch> = Vec::new();
            loop {
                let p = input.poll(&mut sink).expect("poll");
                for b in sink.drain(..) {
                    lines += b.events.len();
                    b.delivered();
                }
                if p == Progress::Idle && lines > 0 {
                    break;
                }
            }
            black_box(lines)
        })
    });
    g.finish();
}

criterion_group!(benches, framing, read_path);
criterion_main!(benches);
