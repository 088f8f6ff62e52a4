//! Writing events as LoongCollector prints them: one JSON object a line,
//! `{"__time__":"…","__tag__:__path__":"…","content":"…"}`.
//!
//! Content is bytes; invalid UTF-8 is written with U+FFFD in its place (a
//! JSON line must be text), never dropped.

use logtail_core::{Event, SourceTags};

/// Appends `s` as a JSON string literal (quotes included).
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(s) {
        Ok(text) => escape_into(out, text.as_bytes()),
        Err(_) => escape_into(out, String::from_utf8_lossy(s).as_bytes()),
    }
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends one event as a JSON object and a newline.
pub fn write_event(out: &mut Vec<u8>, source: &SourceTags, event: &Event, tags: bool) {
    out.extend_from_slice(b"{\"__time__\":\"");
    out.extend_from_slice(event.time.secs.to_string().as_bytes());
    out.push(b'"');
    if tags {
        out.extend_from_slice(b",\"__tag__:__path__\":");
        write_str(out, source.path.as_os_str().as_encoded_bytes());
    }
    for (key, value) in event.contents() {
        out.push(b',');
        write_str(out, key.as_bytes());
        out.push(b':');
        write_str(out, value);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use logtail_core::Timestamp;

    fn roundtrip(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        serde_json::from_slice::<String>(&out).unwrap()
    }

    #[test]
    fn escapes_are_valid_json() {
        let s = "quote\" back\\ nl\n cr\r tab\t nul\0 bell\x07 unicode é 日本";
        assert_eq!(roundtrip(s.as_bytes()), s);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(roundtrip(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn event_shape() {
        let src = SourceTags {
            path: "/var/log/a.log".into(),
            dev: 1,
            inode: 2,
            config: "c".into(),
        };
        let ev = Event::line(
            Bytes::from_static(b"hello"),
            0,
            Timestamp {
                secs: 1657354763,
                nanos: 5,
            },
        );
        let mut out = Vec::new();
        write_event(&mut out, &src, &ev, true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["__time__"], "1657354763");
        assert_eq!(v["__tag__:__path__"], "/var/log/a.log");
        assert_eq!(v["content"], "hello");
        assert_eq!(*out.last().unwrap(), b'\n');
    }
}
