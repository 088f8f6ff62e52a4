//! Criterion bench of multi-line assembly over a generated Java log with
//! stack traces (what `FileInput` does per chunk: framing, the start
//! pattern's DFA on every line, grouping, one `Bytes` slice per event, in
//! 1 MiB chunks with the pending event presented again), and of the whole
//! read path through `FileInput` with `Multiline` on a warm file.

use std::hint::black_box;
use std::io::Write;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtail_benches::catch_up_options;
use logtail_core::file::{
    FileInput, Framer, FramerOptions, Multiline, MultilineOptions, MultilineRules,
};
use logtail_core::{EventBatch, Input, MemoryCheckpoint, Progress};

const START: &str = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.*";

/// About `total` bytes of a Spring-style Java log: four in five events are
/// one line, the fifth is an exception with 10–40 `\tat` frames, a cause
/// and `... n more` (about 70 % of the bytes are stack-trace lines).
/// Returns the log and its number of events.
fn java_log(total: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(total + 8192);
    let mut i = 0u64;
    while out.len() < total {
        let ts = format!(
            "2024-05-{:02} {:02}:{:02}:{:02}.{:03}",
            1 + i % 28,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60,
            i % 1000
        );
        if i % 5 == 3 {
            out.extend_from_slice(
                format!(
                    "{ts} ERROR 1 --- [nio-8080-exec-{}] c.e.shop.OrderController : request {i} failed\n\
                     java.lang.IllegalStateException: order {i} is in state CLOSED\n",
                    i % 16
                )
                .as_bytes(),
            );
            let frames = 10 + i * 7919 % 31;
            for f in 0..frames {
                out.extend_from_slice(
                    format!(
                        "\tat com.example.shop.service.OrderService{}.process(OrderService{}.java:{})\n",
                        f % 13,
                        f % 13,
                        10 + f * 31 % 400
                    )
                    .as_bytes(),
                );
            }
            out.extend_from_slice(
                format!(
                    "Caused by: java.io.IOException: disk {i} full\n\
                     \tat java.base/java.io.FileOutputStream.writeBytes(FileOutputStream.java:349)\n\
                     \t... {frames} more\n"
                )
                .as_bytes(),
            );
        } else {
            out.extend_from_slice(
                format!(
                    "{ts}  INFO 1 --- [nio-8080-exec-{}] c.e.shop.OrderController : handled request {i} in {} ms\n",
                    i % 16,
                    i * 31 % 97
                )
                .as_bytes(),
            );
        }
        i += 1;
    }
    (out, i as usize)
}

fn options() -> MultilineOptions {
    let mut o = MultilineOptions::default();
    o.start_pattern = Some(START.to_string());
    o
}

fn assemble(c: &mut Criterion) {
    let (data, want) = java_log(64 << 20);
    let data = Bytes::from(data);
    let rules = MultilineRules::compile(&options())
        .expect("valid pattern")
        .expect("multi-line");
    let chunk = 1 << 20;
    let mut g = c.benchmark_group("multiline");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("java_stack_traces_1MiB_chunks", |b| {
        b.iter(|| {
            let mut ml = Multiline::new(rules.clone(), chunk);
            let mut framer = Framer::new(FramerOptions::default());
            let mut lines = Vec::new();
            let mut events: Vec<Bytes> = Vec::with_capacity(8192);
            let (mut pos, mut n) = (0, 0usize);
            while pos < data.len() {
                let buf = data.slice(pos..data.len().min(pos + chunk + (512 << 10)));
                let from = ml.fed();
                lines.clear();
                let framed =
                    from + framer.frame(&buf[from..], |r| lines.push(r.start + from..r.end + from));
                for l in lines.iter() {
                    ml.push(l.clone(), &buf[l.clone()], &mut |a| {
                        events.push(buf.slice(a.span()))
                    });
                }
                if pos + buf.len() == data.len() {
                    ml.flush(&mut |a| events.push(buf.slice(a.span())));
                }
                pos += ml.finish(framed);
                n += events.len();
                events.clear();
            }
            assert_eq!(n, want, "every event, once");
            black_box(n)
        })
    });
    g.finish();
}

fn read_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("java.log");
    let (data, _) = java_log(256 << 20);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .expect("write bench file");
    let mut g = c.benchmark_group("file_input");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("multiline_catch_up_256MiB", |b| {
        b.iter(|| {
            let mut opts = catch_up_options(&path);
            opts.multiline = Some(options());
            let mut input =
                FileInput::new(opts, Box::new(MemoryCheckpoint::default())).expect("input");
            let mut bytes = 0u64;
            let mut sink: Vec<EventBatch> = Vec::new();
            // The last event waits for the flush timeout: stop one event short.
            while bytes < data.len() as u64 - 8192 {
                let p = input.poll(&mut sink).expect("poll");
                for b in sink.drain(..) {
                    bytes += b.bytes;
                    b.delivered();
                }
                if p == Progress::Idle && bytes == 0 {
                    input.wait(std::time::Duration::from_millis(1));
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, assemble, read_path);
criterion_main!(benches);
