//! Shared pieces of the benches: generated log data, input options.

use logtail_core::file::{FileInputOptions, PathsSpec};

/// `total` bytes of newline-terminated lines of `line_len` bytes (the
/// newline included), each with a sequence number, nginx-like in shape.
pub fn generate_lines(total: usize, line_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + line_len);
    let mut seq = 0u64;
    let line_len = line_len.max(40);
    while out.len() < total {
        let start = out.len();
        out.extend_from_slice(
            format!("127.0.0.1 - - [23/Nov/2026:13:20:53 +0000] \"GET /api/v1/items/{seq} HTTP/1.1\" 200 ").as_bytes(),
        );
        while out.len() - start < line_len - 1 {
            out.push(b'a' + (seq % 26) as u8);
        }
        out.truncate(start + line_len - 1);
        out.push(b'\n');
        seq += 1;
    }
    out
}

/// Options that read the file at `path` whole, from offset 0, by polling
/// only (a catch-up measurement, not a tail).
pub fn catch_up_options(path: &std::path::Path) -> FileInputOptions {
    let mut o = FileInputOptions::default();
    o.paths = PathsSpec::new(vec![path.to_string_lossy().into_owned()]);
    o.tail_size_kb = u64::MAX / 1024;
    o.inotify = false;
    o
}

/// Varied, realistic nginx access-log lines (combined format plus request
/// time): client IPs from a few networks, paths from several templates with
/// ids, weighted statuses, sizes, referers and user agents, advancing
/// timestamps. Deterministic for a seed. Unlike [`generate_lines`] the
/// lines do not flatter compression.
#[derive(Debug, Clone)]
pub struct AccessLogGen {
    state: u64,
    seq: u64,
}

const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const WORDS: [&str; 16] = [
    "shoes", "red", "laptop", "cable", "usb-c", "garden", "chair", "lamp", "phone", "case",
    "coffee", "mug", "book", "rust", "kettle", "desk",
];
const AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

impl AccessLogGen {
    /// A generator; equal seeds give equal lines.
    pub fn new(seed: u64) -> Self {
        AccessLogGen {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            seq: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Appends one line (newline included).
    pub fn line(&mut self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let seq = self.seq;
        self.seq += 1;
        let net = [
            [10, 12],
            [172, 16],
            [203, 0],
            [47, 98],
            [120, 55],
            [58, 211],
        ][self.below(6) as usize];
        let ip = (net[0], net[1], self.below(256), self.below(256));
        // ~200 requests a second.
        let t = seq / 200;
        let (h, m, s) = ((13 + t / 3600) % 24, (t / 60) % 60, t % 60);
        let method = METHODS[self.below(4) as usize];
        let w1 = WORDS[self.below(16) as usize];
        let w2 = WORDS[self.below(16) as usize];
        let id = self.below(10_000_000);
        let mut path = Vec::with_capacity(64);
        let _ = match self.below(6) {
            0 => write!(path, "/api/v1/users/{id}/orders?page={}", self.below(20)),
            1 => write!(path, "/static/js/app.{:08x}.js", self.next() as u32),
            2 => write!(path, "/products/{w1}-{w2}-{id}"),
            3 => write!(path, "/search?q={w1}+{w2}&sort=price"),
            4 => write!(path, "/api/v2/cart/{id}/items"),
            _ => write!(path, "/img/{w1}/{:x}.webp", self.next() >> 20),
        };
        let status = match self.below(100) {
            0..=79 => 200,
            80..=86 => 304,
            87..=91 => 404,
            92..=94 => 301,
            95..=96 => 302,
            97..=98 => 500,
            _ => 503,
        };
        let size = if status == 304 { 0 } else { self.below(60_000) };
        let referer = if self.below(3) == 0 {
            "-".to_string()
        } else {
            format!("https://shop.example.com/{w2}?ref={}", self.below(1000))
        };
        let agent = AGENTS[self.below(8) as usize];
        let rt = self.below(2500);
        let _ = write!(
            out,
            "{}.{}.{}.{} - - [23/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"{method} ",
            ip.0, ip.1, ip.2, ip.3
        );
        out.extend_from_slice(&path);
        let _ = writeln!(
            out,
            " HTTP/1.1\" {status} {size} \"{referer}\" \"{agent}\" {}.{:03}",
            rt / 1000,
            rt % 1000
        );
    }

    /// Appends whole lines until `out` holds at least `target` bytes;
    /// returns how many lines were appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u64 {
        let mut n = 0;
        while out.len() < target {
            self.line(out);
            n += 1;
        }
        n
    }
}

/// The real nginx access-log sample gathered for this project
/// (`shared/data/nginx`, 1 000 lines of a web shop's log), or the file named
/// by `LOGTAIL_NGINX_SAMPLE`. `None` when neither exists: the sample lives
/// beside the repository, not in it, so benches skip what needs it.
pub fn nginx_sample() -> Option<Vec<u8>> {
    let path = std::env::var_os("LOGTAIL_NGINX_SAMPLE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/nginx/nginx_access_shop_1000.log")
        });
    let mut data = std::fs::read(path).ok()?;
    if data.is_empty() {
        return None;
    }
    if data.last() != Some(&b'\n') {
        data.push(b'\n');
    }
    Some(data)
}

/// `sample` repeated (whole copies, then whole lines) until at least
/// `target` bytes. Repeats are farther apart than lz4's 64 KiB window for
/// samples larger than that, so they do not flatter lz4's ratio.
pub fn repeat_lines(sample: &[u8], target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + sample.len());
    while out.len() < target {
        let room = target - out.len();
        if room >= sample.len() {
            out.extend_from_slice(sample);
        } else {
            // Up to the end of the line that crosses `target`.
            let from = room.saturating_sub(1);
            let end = memchr::memchr(b'\n', &sample[from..]).map_or(sample.len(), |i| from + i + 1);
            out.extend_from_slice(&sample[..end]);
        }
    }
    out
}
