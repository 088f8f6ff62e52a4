//! Shared pieces of the benches: generated log data.

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
