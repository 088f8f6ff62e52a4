//! Criterion benches of the regex and delimiter parsers on one core.
//!
//! - regex: nginx `combined` access lines with three patterns, one per
//!   engine: literals and class runs (the run matcher), the same with an
//!   alternation `(\d+|-)` (one-pass DFA), and one splitting the request
//!   with `(\S+)"` (not one-pass: the `meta` engine);
//! - delimiter: comma-separated lines with a few quoted fields.
//!
//! Throughput counts the lines' bytes plus one newline each (the size of
//! the file they would come from). Each iteration builds the raw events and
//! parses them in place, as the pipeline does.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtail_core::process::delimiter::{DelimiterOptions, DelimiterParser};
use logtail_core::process::regex::{RegexOptions, RegexParser};
use logtail_core::{Event, Timestamp};

/// Deterministic pseudo-random numbers (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

/// About `total` bytes of nginx `combined` lines (without newlines).
fn nginx_combined(total: usize) -> Vec<Bytes> {
    let mut rng = Lcg(42);
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let paths = [
        "/",
        "/index.html",
        "/api/v1/items",
        "/api/v1/users/login",
        "/static/js/app.min.js",
        "/search?q=rust+log+collector&page=2",
    ];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "curl/8.4.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Go-http-client/1.1",
    ];
    let referers = [
        "-",
        "https://example.com/",
        "https://www.example.org/search?q=logs",
    ];
    let mut lines = Vec::new();
    let mut size = 0;
    while size < total {
        let n = rng.next();
        let line = format!(
            "{}.{}.{}.{} - {} [{:02}/Nov/2026:{:02}:{:02}:{:02} +0800] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
            10 + n % 200,
            n % 256,
            (n >> 8) % 256,
            (n >> 16) % 256,
            rng.pick(&["alice", "-", "-", "-", "-", "-", "-"]),
            1 + n % 28,
            n % 24,
            n % 60,
            (n >> 3) % 60,
            rng.pick(&methods),
            rng.pick(&paths),
            rng.pick(&["200", "200", "200", "304", "404", "500"]),
            rng.next() % 100_000,
            rng.pick(&referers),
            rng.pick(&agents),
        );
        size += line.len() + 1;
        lines.push(Bytes::from(line));
    }
    lines
}

/// About `total` bytes of 10-column CSV lines, some fields quoted.
fn csv_lines(total: usize) -> Vec<Bytes> {
    let mut rng = Lcg(7);
    let mut lines = Vec::new();
    let mut size = 0;
    while size < total {
        let n = rng.next();
        let line = format!(
            "{}.{}.{}.{},2026-11-23 13:{:02}:{:02},{},{},{}.{:03},{},{},{},{},\"{}\"",
            10 + n % 200,
            n % 256,
            (n >> 8) % 256,
            (n >> 16) % 256,
            n % 60,
            (n >> 4) % 60,
            rng.pick(&["GET", "POST", "PUT"]),
            rng.pick(&["/api/v1/items", "/PutData?Category=YunOsAccountOpLog", "/"]),
            n % 3,
            n % 1000,
            rng.next() % 100_000,
            rng.pick(&["200", "404", "500"]),
            rng.next() % 10_000,
            rng.pick(&["-", "\"https://example.com/\"", "ref"]),
            rng.pick(&[
                "aliyun-sdk-java",
                "curl/8.4.0, like \"\"wget\"\"",
                "Mozilla/5.0 (X11; Linux x86_64)"
            ]),
        );
        size += line.len() + 1;
        lines.push(Bytes::from(line));
    }
    lines
}

/// The lines as slices of one newline-joined buffer, as the file reader
/// hands them over (events are slices of the chunk read).
fn as_chunk(lines: Vec<Bytes>) -> Vec<Bytes> {
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    let mut ranges = Vec::with_capacity(lines.len());
    for l in &lines {
        ranges.push(buf.len()..buf.len() + l.len());
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    let buf = Bytes::from(buf);
    ranges.into_iter().map(|r| buf.slice(r)).collect()
}

fn file_bytes(lines: &[Bytes]) -> u64 {
    lines.iter().map(|l| l.len() as u64 + 1).sum()
}

/// Builds each line's event and parses it in place; returns the number of
/// fields made (so nothing is optimised away).
fn run(lines: &[Bytes], mut parse: impl FnMut(&mut Event) -> bool) -> usize {
    let mut fields = 0;
    for line in lines {
        let mut e = Event::line(line.clone(), 0, Timestamp::default());
        if parse(&mut e) {
            fields += e.fields().len();
        }
        black_box(&e);
    }
    fields
}

const COMBINED: &str = r#"(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)""#;
const COMBINED_KEYS: &[&str] = &[
    "remote_addr",
    "remote_user",
    "time_local",
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
];
const COMBINED_ALTERNATION: &str =
    r#"(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+|-) "([^"]*)" "([^"]*)""#;
const COMBINED_SPLIT_REQUEST: &str =
    r#"(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d+) (\d+) "([^"]*)" "([^"]*)""#;
const SPLIT_KEYS: &[&str] = &[
    "remote_addr",
    "remote_user",
    "time_local",
    "method",
    "url",
    "protocol",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
];

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn regex(c: &mut Criterion) {
    let lines = as_chunk(nginx_combined(16 << 20));
    let mut g = c.benchmark_group("parse_regex");
    g.throughput(Throughput::Bytes(file_bytes(&lines)));
    g.sample_size(10);
    for (name, pattern, k, engine) in [
        ("nginx_combined_runs", COMBINED, COMBINED_KEYS, "runs"),
        (
            "nginx_combined_one_pass",
            COMBINED_ALTERNATION,
            COMBINED_KEYS,
            "one-pass",
        ),
        (
            "nginx_combined_meta",
            COMBINED_SPLIT_REQUEST,
            SPLIT_KEYS,
            "meta",
        ),
    ] {
        let mut p = RegexParser::new(RegexOptions::new(pattern, keys(k))).expect("pattern");
        assert_eq!(p.engine(), engine);
        let fields = run(&lines, |e| p.parse_event(e));
        assert_eq!(fields, lines.len() * k.len(), "every line parses");
        g.bench_function(name, |b| b.iter(|| run(&lines, |e| p.parse_event(e))));
    }
    g.finish();
}

fn delimiter(c: &mut Criterion) {
    let lines = as_chunk(csv_lines(16 << 20));
    let mut g = c.benchmark_group("parse_delimiter");
    g.throughput(Throughput::Bytes(file_bytes(&lines)));
    g.sample_size(10);
    let k = keys(&[
        "ip",
        "time",
        "method",
        "url",
        "request_time",
        "request_length",
        "status",
        "length",
        "ref_url",
        "browser",
    ]);
    let mut p = DelimiterParser::new(DelimiterOptions::new(",", k)).expect("options");
    let fields = run(&lines, |e| p.parse_event(e));
    assert_eq!(fields, lines.len() * 10, "every line parses");
    g.bench_function("csv_10_columns", |b| {
        b.iter(|| run(&lines, |e| p.parse_event(e)))
    });
    let mut p = DelimiterParser::new(DelimiterOptions::new(
        "|@|",
        keys(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]),
    ))
    .expect("options");
    let piped = as_chunk(
        lines
            .iter()
            .map(|l| Bytes::from(String::from_utf8_lossy(l).replace(',', "|@|")))
            .collect(),
    );
    g.throughput(Throughput::Bytes(file_bytes(&piped)));
    g.bench_function("multi_byte_separator", |b| {
        b.iter(|| run(&piped, |e| p.parse_event(e)))
    });
    g.finish();
}

criterion_group!(benches, regex, delimiter);
criterion_main!(benches);
