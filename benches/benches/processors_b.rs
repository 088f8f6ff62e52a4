//! Criterion benches of `processor_parse_json_native` and
//! `processor_parse_timestamp_native` on one core.
//!
//! - JSON: generated ~200-byte log objects, the scanner alone and the whole
//!   step over batches (field building, source removal).
//! - Timestamp: `%Y-%m-%d %H:%M:%S.%f` values where 1000 events share each
//!   second (prefix-cache hits) and where every value has its own second
//!   (misses), plus the whole step over a batch.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logtail_core::process::json::{parse_object, JsonOptions, JsonParser, JsonScratch};
use logtail_core::process::timestamp::{TimestampOptions, TimestampParser};
use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};

const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];

/// `n` JSON log objects of about 200 bytes, shaped like application logs.
fn json_lines(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            Bytes::from(format!(
                concat!(
                    r#"{{"time":"2026-11-23T13:20:{:02}.{:06}Z","level":"{}","thread":"worker-{}","#,
                    r#""logger":"com.example.OrderService","msg":"order {} handled in {} ms","#,
                    r#""latency":{}.{},"ok":{},"tags":["a","b"]}}"#
                ),
                i % 60,
                i % 1_000_000,
                LEVELS[i % 4],
                i % 16,
                i,
                i % 997,
                i % 97,
                i % 10,
                i % 3 != 0,
            ))
        })
        .collect()
}

fn batch(events: Vec<Event>) -> EventBatch {
    EventBatch {
        source: Arc::new(SourceTags {
            path: "/var/log/app.log".into(),
            dev: 0,
            inode: 0,
            config: Arc::from("bench"),
        }),
        events,
        bytes: 0,
        ack: AckToken::detached(),
    }
}

fn events(lines: &[Bytes], read: Timestamp) -> Vec<Event> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| Event::line(l.clone(), i as u64, read))
        .collect()
}

fn json(c: &mut Criterion) {
    let lines = json_lines(100_000);
    let bytes: usize = lines.iter().map(Bytes::len).sum();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.bench_function("parse_object_200B", |b| {
        let mut scratch = JsonScratch::default();
        b.iter(|| {
            let mut n = 0usize;
            for l in &lines {
                n += parse_object(black_box(l), &mut scratch).map_or(0, |f| f.len());
            }
            n
        })
    });
    g.bench_function("processor_200B", |b| {
        let mut p = JsonParser::new(JsonOptions::default()).expect("options");
        let evs = events(&lines, Timestamp::default());
        b.iter_batched(
            || batch(evs.clone()),
            |mut bt| {
                p.process(&mut bt);
                bt
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

const FMT: &str = "%Y-%m-%d %H:%M:%S.%f";

/// `n` values; `per_second` consecutive values share their second.
fn time_values(n: usize, per_second: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let s = i / per_second;
            Bytes::from(format!(
                "2026-11-{:02} {:02}:{:02}:{:02}.{:06}",
                23 + s / 86_400 % 5,
                s / 3600 % 24,
                s / 60 % 60,
                s % 60,
                (i * 7919) % 1_000_000
            ))
        })
        .collect()
}

fn timestamp(c: &mut Criterion) {
    let now = Timestamp {
        secs: 1_795_440_053,
        nanos: 0,
    };
    let opts = || {
        let mut o = TimestampOptions::new(FMT);
        o.discard_older_than_secs = 0;
        o
    };
    let mut g = c.benchmark_group("timestamp");
    g.sample_size(20);
    for (name, per_second) in [("parse_cache_hits", 1000), ("parse_no_cache_hits", 1)] {
        let values = time_values(100_000, per_second);
        g.throughput(Throughput::Elements(values.len() as u64));
        g.bench_function(name, |b| {
            let mut p = TimestampParser::new(opts()).expect("options");
            b.iter(|| {
                let mut sum = 0i64;
                for v in &values {
                    sum += p.parse_value(black_box(v), now).map_or(0, |t| t.secs);
                }
                sum
            })
        });
    }
    let values = time_values(100_000, 1000);
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("processor_cache_hits", |b| {
        let mut p = TimestampParser::new(opts()).expect("options");
        let evs = events(&values, now);
        b.iter_batched(
            || batch(evs.clone()),
            |mut bt| {
                p.process(&mut bt);
                bt
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, json, timestamp);
criterion_main!(benches);
