//! File encodings (`FileEncoding`), sans-I/O: lines are found in the
//! source bytes and converted to UTF-8 one by one, so offsets and
//! checkpoints stay in source-file bytes.
//!
//! - `utf8` (the default): bytes pass through untouched (invalid UTF-8
//!   included; writers replace it when they must).
//! - `gbk`: ASCII-compatible for `\n` (no GBK trail byte is `0x0A`), so the
//!   byte [`Framer`](super::Framer) frames it and each line is decoded.
//! - `utf16`: newlines are 2-byte units (`0A 00` little-endian, `00 0A`
//!   big-endian), framed by [`Framer::utf16`](super::Framer::utf16). The
//!   byte order comes from the file's byte-order mark
//!   ([`Utf16Order::detect`]; little-endian without one); the mark itself
//!   is not part of the first line.
//!
//! Bytes that do not decode become U+FFFD (never dropped) and are counted.

use std::ops::Range;

use encoding_rs::{DecoderResult, Encoding, GBK, UTF_16BE, UTF_16LE};
use memchr::memchr_iter;

/// `FileEncoding` of `input_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileEncoding {
    /// `utf8`: no conversion.
    #[default]
    Utf8,
    /// `gbk` (decoded as GB18030, its superset).
    Gbk,
    /// `utf16`: byte order from the BOM, little-endian without one.
    Utf16,
}

impl FileEncoding {
    /// Parses a configuration value (`utf8`, `gbk`, `utf16`; case and `-`
    /// are ignored, so `UTF-8` and `utf-16` work too).
    pub fn parse(s: &str) -> Option<FileEncoding> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match norm.as_str() {
            "utf8" => Some(FileEncoding::Utf8),
            "gbk" => Some(FileEncoding::Gbk),
            "utf16" => Some(FileEncoding::Utf16),
            _ => None,
        }
    }
}

/// Byte order of a UTF-16 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Utf16Order {
    /// Little-endian (`FF FE` mark, or none).
    #[default]
    Le,
    /// Big-endian (`FE FF` mark).
    Be,
}

impl Utf16Order {
    /// The order the file's first bytes announce; little-endian without a mark.
    pub fn detect(head: &[u8]) -> Utf16Order {
        match head {
            [0xFE, 0xFF, ..] => Utf16Order::Be,
            _ => Utf16Order::Le,
        }
    }

    /// The bytes of the UTF-16 code unit `u` in this order.
    pub(super) fn unit(self, u: u8) -> [u8; 2] {
        match self {
            Utf16Order::Le => [u, 0],
            Utf16Order::Be => [0, u],
        }
    }
}

/// Converts lines of one file to UTF-8.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    encoding: FileEncoding,
    order: Utf16Order,
}

impl Decoder {
    /// A decoder for `encoding`; `order` matters for UTF-16 only.
    pub fn new(encoding: FileEncoding, order: Utf16Order) -> Decoder {
        Decoder { encoding, order }
    }

    /// Whether lines need converting (anything but UTF-8).
    pub fn converts(&self) -> bool {
        self.encoding != FileEncoding::Utf8
    }

    fn encoding_rs(&self) -> Option<&'static Encoding> {
        match (self.encoding, self.order) {
            (FileEncoding::Utf8, _) => None,
            (FileEncoding::Gbk, _) => Some(GBK),
            (FileEncoding::Utf16, Utf16Order::Le) => Some(UTF_16LE),
            (FileEncoding::Utf16, Utf16Order::Be) => Some(UTF_16BE),
        }
    }

    /// Appends `src` converted to UTF-8 to `out` and returns how many
    /// malformed sequences were replaced by U+FFFD. `at_file_start`: `src`
    /// begins at offset 0 of the file, where a UTF-16 byte-order mark is
    /// skipped.
    pub fn decode_into(&self, src: &[u8], at_file_start: bool, out: &mut Vec<u8>) -> u64 {
        let Some(enc) = self.encoding_rs() else {
            out.extend_from_slice(src);
            return 0;
        };
        let mut src = src;
        if at_file_start && self.encoding == FileEncoding::Utf16 {
            if let Some(rest) = src
                .strip_prefix(&[0xFF, 0xFE][..])
                .or_else(|| src.strip_prefix(&[0xFE, 0xFF][..]))
            {
                src = rest;
            }
        }
        if src.is_ascii() && self.encoding == FileEncoding::Gbk {
            out.extend_from_slice(src); // the common case, without the decoder
            return 0;
        }
        let mut dec = enc.new_decoder_without_bom_handling();
        let start = out.len();
        // Room for every input byte becoming a replacement (3 bytes).
        let room = src.len().saturating_mul(3).saturating_add(16);
        out.resize(start + room, 0);
        let mut written = start;
        let mut read = 0;
        let mut replaced = 0;
        loop {
            let (res, r, w) =
                dec.decode_to_utf8_without_replacement(&src[read..], &mut out[written..], true);
            read += r;
            written += w;
            match res {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => {
                    let len = out.len();
                    out.resize(len + room, 0);
                }
                DecoderResult::Malformed(..) => {
                    replaced += 1;
                    if out.len() - written < 3 {
                        let len = out.len();
                        out.resize(len + room, 0);
                    }
                    out[written..written + 3].copy_from_slice("\u{FFFD}".as_bytes());
                    written += 3;
                }
            }
        }
        out.truncate(written);
        replaced
    }

    /// Appends the lines (content ranges into `buf`, in order) converted to
    /// UTF-8 and joined by `\n` (nothing between the pieces of a split long
    /// line). `buf_at_file_start`: `buf` begins at offset 0 of the file.
    /// Returns the replacements made.
    pub fn decode_lines(
        &self,
        buf: &[u8],
        lines: &[Range<usize>],
        buf_at_file_start: bool,
        out: &mut Vec<u8>,
    ) -> u64 {
        let mut replaced = 0;
        for (i, l) in lines.iter().enumerate() {
            if i > 0 && lines[i - 1].end != l.start {
                out.push(b'\n');
            }
            let src = buf.get(l.clone()).unwrap_or_default();
            replaced += self.decode_into(src, buf_at_file_start && l.start == 0, out);
        }
        replaced
    }
}

/// Where the first UTF-16 unit `u` at or after `from` (an even position)
/// starts, in `buf` whose position 0 is unit-aligned; a unit cut off by the
/// end of `buf` is not found.
pub(super) fn find_unit(buf: &[u8], from: usize, order: Utf16Order, u: u8) -> Option<usize> {
    let unit = order.unit(u);
    let hay = buf.get(from..)?;
    let b = if unit[0] == 0 { unit[1] } else { unit[0] };
    for j in memchr_iter(b, hay) {
        // The unit starts at an even position and both bytes are there.
        let at = match order {
            Utf16Order::Le => j,
            Utf16Order::Be => match j.checked_sub(1) {
                Some(a) => a,
                None => continue,
            },
        };
        if at & 1 == 0 && hay.get(at..at + 2) == Some(&unit[..]) {
            return Some(from + at);
        }
    }
    None
}

/// Where the line after the one `from` falls into starts (just past its
/// newline unit), in a UTF-16 `buf` whose position 0 is unit-aligned;
/// `from` is rounded down to a unit.
pub fn utf16_next_line_start(buf: &[u8], from: usize, order: Utf16Order) -> Option<usize> {
    find_unit(buf, from & !1, order, b'\n').map(|i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{Framer, FramerOptions, LongLinePolicy};
    use proptest::prelude::*;

    fn utf16(s: &str, order: Utf16Order, bom: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if bom {
            v.extend_from_slice(match order {
                Utf16Order::Le => &[0xFF, 0xFE],
                Utf16Order::Be => &[0xFE, 0xFF],
            });
        }
        for u in s.encode_utf16() {
            let b = match order {
                Utf16Order::Le => u.to_le_bytes(),
                Utf16Order::Be => u.to_be_bytes(),
            };
            v.extend_from_slice(&b);
        }
        v
    }

    fn frame16(data: &[u8], order: Utf16Order, opts: FramerOptions) -> (Vec<String>, u64) {
        let mut f = Framer::utf16(opts, order);
        let d = Decoder::new(FileEncoding::Utf16, order);
        let mut lines = Vec::new();
        let n = f.frame(data, |r| lines.push(r));
        f.flush_partial(&data[n..], |r| lines.push(r.start + n..r.end + n));
        let mut out = Vec::new();
        let mut bad = 0;
        for l in lines {
            let mut s = Vec::new();
            bad += d.decode_into(&data[l.clone()], l.start == 0, &mut s);
            out.push(String::from_utf8(s).unwrap());
        }
        (out, bad)
    }

    #[test]
    fn flush_partial_keeps_skipping_a_truncated_line() {
        let order = Utf16Order::Le;
        let opts = FramerOptions {
            max_line_bytes: 4,
            long_lines: LongLinePolicy::Truncate,
            strip_cr: false,
        };
        let mut f = Framer::utf16(opts, order);
        let mut lines = Vec::new();
        // Five units and half of a sixth, no newline: one 2-unit piece out,
        // the rest of the line dropped.
        let mut head = utf16("01234", order, false);
        head.push(b'5');
        let n = f.frame(&head, |r| lines.push(r));
        assert_eq!(lines, vec![0..4]);
        assert_eq!(
            f.flush_partial(&head[n..], |r| lines.push(r)),
            head.len() - n
        );
        // The line goes on after the flush; its end is still dropped.
        let mut rest = vec![0u8];
        rest.extend(utf16("abc\nok\n", order, false));
        let mut after = Vec::new();
        f.frame(&rest[1..], |r| after.push(rest[1..][r].to_vec()));
        assert_eq!(after, vec![utf16("ok", order, false)]);
        assert_eq!(f.stats().truncated_lines, 1);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn parse_names() {
        assert_eq!(FileEncoding::parse("utf8"), Some(FileEncoding::Utf8));
        assert_eq!(FileEncoding::parse("UTF-8"), Some(FileEncoding::Utf8));
        assert_eq!(FileEncoding::parse("gbk"), Some(FileEncoding::Gbk));
        assert_eq!(FileEncoding::parse("utf16"), Some(FileEncoding::Utf16));
        assert_eq!(FileEncoding::parse("latin1"), None);
    }

    #[test]
    fn gbk_lines_and_replacements() {
        let d = Decoder::new(FileEncoding::Gbk, Utf16Order::Le);
        let (gbk, _, _) = GBK.encode("中文日志 ok");
        let mut out = Vec::new();
        assert_eq!(d.decode_into(&gbk, true, &mut out), 0);
        assert_eq!(out, "中文日志 ok".as_bytes());
        // A lone lead byte and an invalid pair: replaced, counted, rest kept.
        let mut out = Vec::new();
        let n = d.decode_into(b"a\x81 b\xff", false, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\u{fffd} b\u{fffd}");
        assert_eq!(n, 2);
    }

    #[test]
    fn utf16_both_orders_bom_and_crlf() {
        for order in [Utf16Order::Le, Utf16Order::Be] {
            let data = utf16("héllo\r\n日志 😀\nlast", order, true);
            assert_eq!(Utf16Order::detect(&data), order);
            let (lines, bad) = frame16(&data, order, FramerOptions::default());
            assert_eq!(lines, ["héllo\r", "日志 😀", "last"]);
            assert_eq!(bad, 0);
            let o = FramerOptions {
                strip_cr: true,
                ..FramerOptions::default()
            };
            assert_eq!(frame16(&data, order, o).0[0], "héllo");
        }
        // No BOM: little-endian.
        assert_eq!(
            Utf16Order::detect(&utf16("a", Utf16Order::Le, false)),
            Utf16Order::Le
        );
    }

    #[test]
    fn utf16_newline_byte_inside_other_units_is_not_a_newline() {
        // U+0A0D is 0D 0A in little-endian: a 0A byte at an odd position.
        let data = utf16("\u{0a0d}\u{0a00}x\n", Utf16Order::Le, false);
        let (lines, _) = frame16(&data, Utf16Order::Le, FramerOptions::default());
        assert_eq!(lines, ["\u{0a0d}\u{0a00}x"]);
    }

    #[test]
    fn utf16_lone_surrogate_and_odd_byte_are_replaced() {
        let mut data = vec![0x00, 0xD8, b'a', 0, b'\n', 0]; // lone high surrogate
        data.push(b'z'); // odd trailing byte
        let (lines, bad) = frame16(&data, Utf16Order::Le, FramerOptions::default());
        assert_eq!(lines, ["\u{fffd}a", "\u{fffd}"]);
        assert_eq!(bad, 2);
    }

    #[test]
    fn utf16_long_lines() {
        let data = utf16("abcdefgh\nxy\n", Utf16Order::Le, false);
        let o = FramerOptions {
            max_line_bytes: 7, // rounded down to 6: three units
            long_lines: LongLinePolicy::Split,
            strip_cr: false,
        };
        assert_eq!(
            frame16(&data, Utf16Order::Le, o).0,
            ["abc", "def", "gh", "xy"]
        );
        let o = FramerOptions {
            long_lines: LongLinePolicy::Truncate,
            ..o
        };
        assert_eq!(frame16(&data, Utf16Order::Le, o).0, ["abc", "xy"]);
    }

    #[test]
    fn next_line_start() {
        let data = utf16("ab\ncd\n", Utf16Order::Be, false);
        assert_eq!(utf16_next_line_start(&data, 1, Utf16Order::Be), Some(6));
        assert_eq!(utf16_next_line_start(&data, 6, Utf16Order::Be), Some(12));
        assert_eq!(utf16_next_line_start(&data, 12, Utf16Order::Be), None);
    }

    proptest! {
        #[test]
        fn utf16_chunked_framing_matches_whole(
            s in "[a\n\r\u{0a0d}日😀]{0,40}",
            be: bool,
            cuts in proptest::collection::vec(0usize..200, 0..6),
            max in 2usize..20,
        ) {
            let order = if be { Utf16Order::Be } else { Utf16Order::Le };
            let data = utf16(&s, order, false);
            let o = FramerOptions { max_line_bytes: max, ..FramerOptions::default() };
            let mut whole = Framer::utf16(o, order);
            let mut want = Vec::new();
            let n = whole.frame(&data, |r| want.push(data[r].to_vec()));
            let mut f = Framer::utf16(o, order);
            let mut got = Vec::new();
            let mut pos = 0;
            let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            ends.push(data.len());
            ends.sort_unstable();
            for end in ends {
                if end < pos { continue; }
                let buf = &data[pos..end];
                pos += f.frame(buf, |r| got.push(buf[r].to_vec()));
            }
            prop_assert_eq!(got, want);
            prop_assert_eq!(pos, n);
            // Whole-string decode equals line-by-line decode joined by \n
            // when no line is split.
            if max >= data.len() {
                let d = Decoder::new(FileEncoding::Utf16, order);
                let mut lines = Vec::new();
                let mut f = Framer::utf16(o, order);
                let n = f.frame(&data, |r| lines.push(r));
                f.flush_partial(&data[n..], |r| lines.push(r.start + n..r.end + n));
                let mut out = Vec::new();
                d.decode_lines(&data, &lines, true, &mut out);
                let want = s.strip_suffix('\n').unwrap_or(&s);
                prop_assert_eq!(String::from_utf8(out).unwrap(), want);
            }
        }
    }
}
