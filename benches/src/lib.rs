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
    FileInputOptions {
        paths: PathsSpec {
            file_paths: vec![path.to_string_lossy().into_owned()],
            ..Default::default()
        },
        tail_size_kb: u64::MAX / 1024,
        inotify: false,
        ..Default::default()
    }
}
