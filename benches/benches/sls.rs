//! Criterion bench of the SLS PutLogs send path without the network:
//! nginx-like 185-byte lines → `LogGroupBuilder` (groups of 4 000 events
//! or 512 KiB, as LoongCollector cuts them) → finish → compress →
//! Content-MD5 + signature (`put_logs`). Throughput is counted in bytes of
//! raw log lines (newlines included, as read from the file).
//!
//! The `sls_official` group does the same work with the official crates
//! (aliyun-log-sdk-protobuf encode, the C `lz4` block compressor,
//! aliyun-log-sdk-sign v1, which hashes the body itself) for comparison.

use std::hint::black_box;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logtail_benches::generate_lines;
use logtail_core::sls::{
    compress, put_logs, CompressType, Credentials, GroupMeta, LogGroupBuilder, PutLogs,
    SignatureVersion,
};
use logtail_core::{Event, Timestamp};

const MAX_EVENTS: usize = 4000;
const MAX_BYTES: usize = 512 << 10;

fn events(data: &Bytes) -> Vec<Event> {
    let t = Timestamp {
        secs: 1_700_000_000,
        nanos: 123_456_789,
    };
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            out.push(Event::line(data.slice(start..i), start as u64, t));
            start = i + 1;
        }
    }
    out
}

const TAGS: &[(&str, &str)] = &[
    ("__pack_id__", "5A3B1C9D2E4F6A7B-1"),
    ("__path__", "/var/log/nginx/access.log"),
    ("__hostname__", "web-01"),
];

/// Our path, as `flusher_sls` does it: returns the compressed bytes
/// produced, so nothing is elided. Groups are compressed as they fill; their
/// Content-MD5 is computed eight at a time (`md5_many`), then each request
/// is built and signed.
fn ours(
    events: &[Event],
    kind: CompressType,
    sig: &SignatureVersion,
    creds: &Credentials,
) -> usize {
    use logtail_core::sls::md5_lanes::md5_many;
    const LANES: usize = 8;
    let mut builder = LogGroupBuilder::with_capacity(MAX_BYTES + (64 << 10));
    let mut bodies: Vec<(usize, Vec<u8>)> = (0..LANES).map(|_| (0, Vec::new())).collect();
    let mut ready = 0usize;
    let mut sent = 0usize;
    let meta = GroupMeta {
        topic: Some("nginx"),
        source: Some("10.0.0.1"),
        machine_uuid: None,
        tags: TAGS,
    };
    let mut send_ready = |bodies: &[(usize, Vec<u8>)], ready: usize| {
        let refs: Vec<&[u8]> = bodies[..ready].iter().map(|(_, b)| &b[..]).collect();
        for (d, (raw_size, body)) in md5_many(&refs).into_iter().zip(bodies) {
            let req = put_logs(
                &PutLogs {
                    project: "proj",
                    logstore: "nginx",
                    host: "proj.cn-hangzhou.log.aliyuncs.com",
                    hash_key: None,
                    compress: kind,
                    raw_size: *raw_size,
                    body,
                    body_md5: Some(d),
                    date: SystemTime::now(),
                    signature: sig,
                },
                creds,
            );
            sent += body.len() + req.headers.len();
        }
    };
    let seal =
        |builder: &mut LogGroupBuilder, bodies: &mut [(usize, Vec<u8>)], ready: &mut usize| {
            let raw = builder.finish_in_place(&meta);
            let (raw_size, body) = &mut bodies[*ready];
            *raw_size = raw.len();
            // A new body each time, as the sink does (it moves on with its request).
            *body = Vec::new();
            compress(kind, raw, body).expect("compress");
            *ready += 1;
            builder.clear();
        };
    for ev in events {
        builder.push(ev);
        if builder.len() >= MAX_EVENTS || builder.encoded_len() >= MAX_BYTES {
            seal(&mut builder, &mut bodies, &mut ready);
            if ready == LANES {
                send_ready(&bodies, ready);
                ready = 0;
            }
        }
    }
    if !builder.is_empty() {
        seal(&mut builder, &mut bodies, &mut ready);
    }
    if ready > 0 {
        send_ready(&bodies, ready);
    }
    sent
}

/// The same work through the official crates.
fn official(events: &[Event]) -> usize {
    use aliyun_log_sdk_protobuf::{Log, LogGroup};
    let mut sent = 0usize;
    let mut encoded = Vec::with_capacity(MAX_BYTES + (64 << 10));
    let mut flush = |group: &mut LogGroup| {
        group.set_topic("nginx").set_source("10.0.0.1");
        for (k, v) in TAGS {
            group.add_log_tag_kv(*k, *v);
        }
        group.encode_into(&mut encoded).expect("encode");
        let body = lz4::block::compress(&encoded, None, false).expect("lz4");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "content-type",
            "application/x-protobuf".parse().expect("value"),
        );
        headers.insert(
            "x-log-bodyrawsize",
            encoded.len().to_string().parse().expect("value"),
        );
        headers.insert("x-log-compresstype", "lz4".parse().expect("value"));
        headers.insert(
            "host",
            "proj.cn-hangzhou.log.aliyuncs.com".parse().expect("value"),
        );
        let auth = aliyun_log_sdk_sign::sign_v1(
            "id",
            "secret",
            None,
            http::Method::POST,
            "/logstores/nginx/shards/lb",
            &mut headers,
            aliyun_log_sdk_sign::QueryParams::empty(),
            Some(&body),
        )
        .expect("sign");
        sent += body.len() + auth.len();
        *group = LogGroup::new();
    };
    let mut group = LogGroup::new();
    let mut n = 0usize;
    let mut bytes = 0usize;
    for ev in events {
        let mut log = Log::from_unixtime(ev.time.secs as u32);
        log.set_time_ns(ev.time.nanos);
        for (k, v) in ev.contents() {
            log.add_content_kv(k, String::from_utf8_lossy(v));
            bytes += k.len() + v.len() + 16;
        }
        group.add_log(log);
        n += 1;
        if n >= MAX_EVENTS || bytes >= MAX_BYTES {
            flush(&mut group);
            n = 0;
            bytes = 0;
        }
    }
    if n > 0 {
        flush(&mut group);
    }
    sent
}

fn sls(c: &mut Criterion) {
    let data = Bytes::from(generate_lines(32 << 20, 185));
    let evs = events(&data);
    let creds = Credentials::new("LTAI5tExampleId", "ExampleSecretValue", None);
    let v1 = SignatureVersion::V1;
    let v4 = SignatureVersion::V4 {
        region: "cn-hangzhou".into(),
    };

    let mut g = c.benchmark_group("sls");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for (name, kind, sig) in [
        ("lz4_v1", CompressType::Lz4, &v1),
        ("lz4_v4", CompressType::Lz4, &v4),
        ("zstd_v1", CompressType::Zstd, &v1),
        ("none_v1", CompressType::None, &v1),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(ours(black_box(&evs), kind, sig, &creds)))
        });
    }
    // The encoding alone, for the breakdown.
    g.bench_function("encode_only", |b| {
        b.iter(|| {
            let mut builder = LogGroupBuilder::with_capacity(MAX_BYTES + (64 << 10));
            let mut n = 0;
            for ev in &evs {
                builder.push(ev);
                if builder.len() >= MAX_EVENTS || builder.encoded_len() >= MAX_BYTES {
                    n += builder.finish_in_place(&GroupMeta::default()).len();
                    builder.clear();
                }
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sls_official");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("lz4_v1", |b| {
        b.iter(|| black_box(official(black_box(&evs))))
    });
    g.finish();

    // The lines above pad with one repeated letter and compress 27×; varied
    // nginx access lines (AccessLogGen, ratio about 4) show what lz4 and
    // MD5 cost on real-looking data.
    let mut varied = Vec::with_capacity((32 << 20) + 4096);
    logtail_benches::AccessLogGen::new(3).fill(&mut varied, 32 << 20);
    compare(c, "sls_varied", &Bytes::from(varied), &creds);

    // The real nginx sample (shared/data, 308-byte lines, compresses about
    // 6×), repeated to 32 MiB; skipped when the sample is not beside the repo.
    match logtail_benches::nginx_sample() {
        Some(sample) => {
            let real = Bytes::from(logtail_benches::repeat_lines(&sample, 32 << 20));
            compare(c, "sls_nginx_sample", &real, &creds);
        }
        None => {
            eprintln!("sls_nginx_sample skipped: no nginx sample (set LOGTAIL_NGINX_SAMPLE)")
        }
    }

    // zstd levels on one 512 KiB group, to pick the level.
    let mut builder = LogGroupBuilder::new();
    for ev in &evs {
        if builder.encoded_len() >= MAX_BYTES {
            break;
        }
        builder.push(ev);
    }
    let raw = builder.finish(&GroupMeta::default());
    let mut g = c.benchmark_group("sls_zstd_level");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.sample_size(20);
    for level in 1..=3 {
        let mut cmp = zstd::bulk::Compressor::new(level).expect("zstd");
        let size = cmp.compress(&raw).expect("zstd").len();
        eprintln!("zstd level {level}: {} -> {size} bytes", raw.len());
        let mut out = Vec::with_capacity(raw.len());
        g.bench_with_input(BenchmarkId::from_parameter(level), &raw, |b, raw| {
            b.iter(|| {
                out.clear();
                cmp.compress_to_buffer(black_box(&raw[..]), &mut out)
                    .expect("zstd");
                black_box(out.len())
            })
        });
    }
    let mut out = Vec::new();
    compress(CompressType::Lz4, &raw, &mut out).expect("lz4");
    eprintln!("lz4: {} -> {} bytes", raw.len(), out.len());
    g.finish();
}

/// Content-MD5 of eight 128 KiB bodies (the size of a 512 KiB group after
/// lz4 at 4×): one at a time, and eight at once in AVX2 lanes.
fn md5(c: &mut Criterion) {
    use logtail_core::sls::md5_lanes::{md5_many, md5_one};
    let mut varied = Vec::with_capacity(1 << 20);
    logtail_benches::AccessLogGen::new(5).fill(&mut varied, 1 << 20);
    let bodies: Vec<&[u8]> = varied.chunks(128 << 10).take(8).collect();
    let total: usize = bodies.iter().map(|b| b.len()).sum();
    let mut g = c.benchmark_group("md5");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("one_at_a_time", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(md5_one(black_box(body)));
            }
        })
    });
    g.bench_function("eight_lanes", |b| {
        b.iter(|| black_box(md5_many(black_box(&bodies))))
    });
    g.finish();
}

/// A group of benches on `data`: our path with lz4 and with zstd (v1), and
/// the official crates with lz4.
fn compare(c: &mut Criterion, name: &str, data: &Bytes, creds: &Credentials) {
    let evs = events(data);
    let v1 = SignatureVersion::V1;
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for (name, kind) in [
        ("lz4_v1", CompressType::Lz4),
        ("zstd_v1", CompressType::Zstd),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(ours(black_box(&evs), kind, &v1, creds)))
        });
    }
    g.bench_function("official_lz4_v1", |b| {
        b.iter(|| black_box(official(black_box(&evs))))
    });
    g.finish();
}

criterion_group!(benches, sls, md5);
criterion_main!(benches);
