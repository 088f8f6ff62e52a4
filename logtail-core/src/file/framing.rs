//! Line framing, sans-I/O.
//!
//! The [`Framer`] is handed the bytes that follow the reader's position and
//! says where the lines are and how many bytes it consumed. Bytes it did not
//! consume are an incomplete last line: the caller presents them again with
//! whatever follows, so no line buffer grows inside the framer, and the
//! reader's offset is always at a line boundary (which is what checkpoints
//! store).
//!
//! Lines longer than [`FramerOptions::max_line_bytes`] never stall a file:
//! [`LongLinePolicy::Split`] (the default, nothing is lost) emits them in
//! pieces of the maximum size; [`LongLinePolicy::Truncate`] emits the first
//! piece and skips the rest up to the next newline. Both are counted.

use std::ops::Range;

use memchr::memchr;

use super::decode::{find_unit, Utf16Order};

/// What to do with a line longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongLinePolicy {
    /// Emit the line in consecutive pieces of at most the maximum size.
    #[default]
    Split,
    /// Emit the first piece, drop the rest of the line (counted).
    Truncate,
}

/// Framing options.
///
/// Non-exhaustive: start from [`FramerOptions::default`] and set fields.
///
/// ```
/// use logtail_core::file::{FramerOptions, LongLinePolicy};
///
/// let mut o = FramerOptions::default();
/// o.max_line_bytes = 64 * 1024;
/// o.long_lines = LongLinePolicy::Truncate;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FramerOptions {
    /// Longest line content emitted as one event (default 512 KiB).
    pub max_line_bytes: usize,
    /// Policy for longer lines.
    pub long_lines: LongLinePolicy,
    /// Drop a `\r` that precedes the `\n` (default: keep it in the content).
    pub strip_cr: bool,
}

impl Default for FramerOptions {
    fn default() -> Self {
        FramerOptions {
            max_line_bytes: 512 * 1024,
            long_lines: LongLinePolicy::Split,
            strip_cr: false,
        }
    }
}

/// Counters of what the framer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FramerStats {
    /// Lines (or line pieces) emitted.
    pub lines: u64,
    /// Over-long lines that were split (counted once per line piece beyond the first).
    pub split_pieces: u64,
    /// Over-long lines that were truncated.
    pub truncated_lines: u64,
    /// Bytes dropped by truncation.
    pub truncated_bytes: u64,
    /// Incomplete last lines emitted by [`Framer::flush_partial`].
    pub partial_flushes: u64,
}

/// What a framer finds newlines in: bytes, or the 2-byte units of UTF-16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineUnit {
    /// `\n` is one byte (UTF-8, GBK and other ASCII-compatible encodings).
    #[default]
    Byte,
    /// `\n` is the unit `0A 00` (little-endian) or `00 0A` (big-endian),
    /// and only at an even position.
    Utf16(Utf16Order),
}

/// The line framer. One per file; its only state is whether it is skipping
/// the tail of a truncated long line.
///
/// ```
/// use logtail_core::file::{Framer, FramerOptions};
/// let mut f = Framer::new(FramerOptions::default());
/// let mut lines = Vec::new();
/// let consumed = f.frame(b"a\nbb\ncc", |r| lines.push(r));
/// assert_eq!(lines, vec![0..1, 2..4]);
/// assert_eq!(consumed, 5); // "cc" waits for its newline
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    opts: FramerOptions,
    unit: LineUnit,
    /// In the middle of a truncated line: drop bytes until the next newline.
    skipping: bool,
    stats: FramerStats,
}

impl Framer {
    /// A byte framer with the given options (a maximum of 0 is treated as 1).
    pub fn new(opts: FramerOptions) -> Self {
        Framer::with_unit(opts, LineUnit::Byte)
    }

    /// A framer for UTF-16 in the given byte order: like [`Framer::new`], on
    /// 2-byte units; the maximum line size is rounded down to whole units
    /// (at least one).
    ///
    /// ```
    /// use logtail_core::file::{Framer, FramerOptions, Utf16Order};
    /// let mut f = Framer::utf16(FramerOptions::default(), Utf16Order::Le);
    /// let mut lines = Vec::new();
    /// // "a\n" then half of a unit: the odd byte waits for its pair.
    /// assert_eq!(f.frame(b"a\0\n\0b", |r| lines.push(r)), 4);
    /// assert_eq!(lines, vec![0..2]);
    /// ```
    pub fn utf16(opts: FramerOptions, order: Utf16Order) -> Self {
        Framer::with_unit(opts, LineUnit::Utf16(order))
    }

    /// A framer for `unit`.
    pub fn with_unit(mut opts: FramerOptions, unit: LineUnit) -> Self {
        opts.max_line_bytes = match unit {
            LineUnit::Byte => opts.max_line_bytes.max(1),
            LineUnit::Utf16(_) => (opts.max_line_bytes & !1).max(2),
        };
        Framer {
            opts,
            unit,
            skipping: false,
            stats: FramerStats::default(),
        }
    }

    /// The options (with the maximum as rounded for the unit).
    pub fn options(&self) -> &FramerOptions {
        &self.opts
    }

    /// What newlines are found in.
    pub fn unit(&self) -> LineUnit {
        self.unit
    }

    /// What the framer has done so far.
    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Whether the framer is dropping the rest of a truncated line.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// Frames `buf` (which starts at a unit boundary), calling `on_line`
    /// with the content range of every line (without the newline, and
    /// without a `\r` before it if so configured). Returns the number of
    /// bytes consumed, always whole units; the rest is an incomplete line
    /// to present again.
    pub fn frame(&mut self, buf: &[u8], on_line: impl FnMut(Range<usize>)) -> usize {
        match self.unit {
            LineUnit::Byte => self.frame_in(OneByte, buf, on_line),
            LineUnit::Utf16(order) => self.frame_in(order, buf, on_line),
        }
    }

    /// Emits `buf` (the incomplete last line, as left by [`Framer::frame`])
    /// as a line of its own: the flush timeout passed or the file is done.
    /// An odd last byte of UTF-16 stays in it (and decodes to U+FFFD).
    /// Returns the bytes consumed (all of `buf`).
    pub fn flush_partial(&mut self, buf: &[u8], on_line: impl FnMut(Range<usize>)) -> usize {
        match self.unit {
            LineUnit::Byte => self.flush_partial_in(OneByte, buf, on_line),
            LineUnit::Utf16(order) => self.flush_partial_in(order, buf, on_line),
        }
    }

    // Generic over the unit so that the byte framer keeps its memchr loop
    // without a per-line dispatch.
    fn frame_in<U: Unit>(
        &mut self,
        unit: U,
        buf: &[u8],
        mut on_line: impl FnMut(Range<usize>),
    ) -> usize {
        let w = U::WIDTH;
        let max = self.opts.max_line_bytes;
        let whole = buf.len() - buf.len() % w;
        let mut pos = 0;
        while pos < whole {
            if self.skipping {
                match unit.find_newline(buf, pos) {
                    Some(i) => {
                        self.stats.truncated_bytes += (i - pos) as u64;
                        pos = i + w;
                        self.skipping = false;
                        continue;
                    }
                    None => {
                        self.stats.truncated_bytes += (whole - pos) as u64;
                        return whole;
                    }
                }
            }
            // Look one unit past the maximum: a line of exactly `max` bytes
            // still has its newline inside the window.
            let window_end = buf.len().min(pos.saturating_add(max).saturating_add(w));
            match unit.find_newline(&buf[..window_end], pos) {
                Some(i) => {
                    let mut end = i;
                    if self.opts.strip_cr && end >= pos + w && unit.is_cr(&buf[end - w..end]) {
                        end -= w;
                    }
                    self.emit(pos..end, &mut on_line);
                    pos = i + w;
                }
                None if whole - pos >= max + w => {
                    self.emit(pos..pos + max, &mut on_line);
                    match self.opts.long_lines {
                        LongLinePolicy::Split => self.stats.split_pieces += 1,
                        LongLinePolicy::Truncate => {
                            self.stats.truncated_lines += 1;
                            self.skipping = true;
                        }
                    }
                    pos += max;
                }
                None => break,
            }
        }
        pos
    }

    fn flush_partial_in<U: Unit>(
        &mut self,
        unit: U,
        buf: &[u8],
        mut on_line: impl FnMut(Range<usize>),
    ) -> usize {
        if buf.is_empty() {
            return 0;
        }
        if self.skipping {
            // The truncated line has not ended: keep dropping until its
            // newline.
            self.stats.truncated_bytes += buf.len() as u64;
            return buf.len();
        }
        let w = U::WIDTH;
        let mut end = buf.len();
        // A CR unit only ends a buffer of whole units (an odd byte of UTF-16
        // stays in the line).
        if self.opts.strip_cr && end % w == 0 && end >= w && unit.is_cr(&buf[end - w..end]) {
            end -= w;
        }
        self.stats.partial_flushes += 1;
        self.emit(0..end, &mut on_line);
        buf.len()
    }

    fn emit(&mut self, range: Range<usize>, on_line: &mut impl FnMut(Range<usize>)) {
        self.stats.lines += 1;
        on_line(range);
    }
}

/// A newline unit: how wide it is and how it is found.
trait Unit: Copy {
    const WIDTH: usize;
    /// Where the first newline unit at or after `from` (a unit boundary)
    /// starts.
    fn find_newline(self, buf: &[u8], from: usize) -> Option<usize>;
    /// Whether `unit` (`WIDTH` bytes) is a carriage return.
    fn is_cr(self, unit: &[u8]) -> bool;
}

#[derive(Clone, Copy)]
struct OneByte;

impl Unit for OneByte {
    const WIDTH: usize = 1;
    fn find_newline(self, buf: &[u8], from: usize) -> Option<usize> {
        memchr(b'\n', buf.get(from..)?).map(|i| from + i)
    }
    fn is_cr(self, unit: &[u8]) -> bool {
        unit == b"\r"
    }
}

impl Unit for Utf16Order {
    const WIDTH: usize = 2;
    fn find_newline(self, buf: &[u8], from: usize) -> Option<usize> {
        find_unit(buf, from, self, b'\n')
    }
    fn is_cr(self, unit: &[u8]) -> bool {
        unit == self.unit(b'\r')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(max: usize, long: LongLinePolicy, strip_cr: bool) -> FramerOptions {
        FramerOptions {
            max_line_bytes: max,
            long_lines: long,
            strip_cr,
        }
    }

    /// Frames `data` fed in pieces cut at `cuts`, re-presenting unconsumed
    /// bytes as a reader does. Returns lines and the unconsumed tail.
    fn frame_chunked(o: FramerOptions, data: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, usize) {
        let mut f = Framer::new(o);
        let mut lines = Vec::new();
        let mut pos = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        ends.push(data.len());
        ends.sort_unstable();
        for end in ends {
            if end < pos {
                continue;
            }
            let buf = &data[pos..end];
            let n = f.frame(buf, |r| lines.push(buf[r].to_vec()));
            pos += n;
        }
        (lines, data.len() - pos)
    }

    /// The obvious definition: split at every newline, then apply the
    /// policy; a line's length counts its `\r`, which is stripped from the
    /// last piece only.
    fn naive(o: FramerOptions, data: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let max = o.max_line_bytes;
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let tail = parts.pop().unwrap_or(&[]);
        for line in parts {
            let mut p = 0;
            if line.len() > max && o.long_lines == LongLinePolicy::Truncate {
                out.push(line[..max].to_vec());
                continue;
            }
            while line.len() - p > max {
                out.push(line[p..p + max].to_vec());
                p += max;
            }
            let mut last = &line[p..];
            if o.strip_cr && last.last() == Some(&b'\r') {
                last = &last[..last.len() - 1];
            }
            out.push(last.to_vec());
        }
        if tail.len() > max && o.long_lines == LongLinePolicy::Truncate {
            out.push(tail[..max].to_vec());
            return (out, 0);
        }
        let mut p = 0;
        while tail.len() - p > max {
            out.push(tail[p..p + max].to_vec());
            p += max;
        }
        (out, tail.len() - p)
    }

    #[test]
    fn crlf_kept_by_default_and_stripped_on_request() {
        let mut f = Framer::new(FramerOptions::default());
        let mut v = Vec::new();
        f.frame(b"a\r\nb\n", |r| v.push(r));
        assert_eq!(v, vec![0..2, 3..4]);
        let mut f = Framer::new(opts(10, LongLinePolicy::Split, true));
        let mut v = Vec::new();
        f.frame(b"a\r\n\r\n", |r| v.push(r));
        assert_eq!(v, vec![0..1, 3..3]);
    }

    #[test]
    fn exact_max_is_not_long() {
        let mut f = Framer::new(opts(3, LongLinePolicy::Truncate, false));
        let mut v = Vec::new();
        assert_eq!(f.frame(b"abc\n", |r| v.push(r)), 4);
        assert_eq!(v, vec![0..3]);
        assert_eq!(f.stats().truncated_lines, 0);
    }

    #[test]
    fn split_long_line_without_waiting_for_newline() {
        let mut f = Framer::new(opts(4, LongLinePolicy::Split, false));
        let mut v = Vec::new();
        // 10 bytes, no newline yet: two pieces go out, 2 bytes wait.
        assert_eq!(f.frame(b"0123456789", |r| v.push(r)), 8);
        assert_eq!(v, vec![0..4, 4..8]);
        assert_eq!(f.stats().split_pieces, 2);
    }

    #[test]
    fn truncate_skips_across_calls() {
        let mut f = Framer::new(opts(4, LongLinePolicy::Truncate, false));
        let mut v = Vec::new();
        assert_eq!(f.frame(b"0123456789", |r| v.push(r)), 10);
        assert!(f.is_skipping());
        let buf = b"abc\nok\n";
        let mut w = Vec::new();
        assert_eq!(f.frame(buf, |r| w.push(buf[r].to_vec())), 7);
        assert_eq!(w, vec![b"ok".to_vec()]);
        assert_eq!(f.stats().truncated_lines, 1);
        assert_eq!(f.stats().truncated_bytes, 6 + 3);
    }

    #[test]
    fn nul_and_invalid_utf8_are_bytes() {
        let buf = b"\0\xff\xfe\n\0\n";
        let mut f = Framer::new(FramerOptions::default());
        let mut v = Vec::new();
        f.frame(buf, |r| v.push(buf[r].to_vec()));
        assert_eq!(v, vec![b"\0\xff\xfe".to_vec(), b"\0".to_vec()]);
    }

    #[test]
    fn flush_partial_emits_tail() {
        let mut f = Framer::new(FramerOptions::default());
        let mut v = Vec::new();
        assert_eq!(f.flush_partial(b"tail", |r| v.push(r)), 4);
        assert_eq!(v, vec![0..4]);
        assert_eq!(f.stats().partial_flushes, 1);
    }

    proptest! {
        #[test]
        fn chunked_framing_matches_naive(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0u8)], 0..200),
            cuts in proptest::collection::vec(0usize..400, 0..8),
            max in 1usize..12,
            truncate: bool,
            strip_cr: bool,
        ) {
            let policy = if truncate { LongLinePolicy::Truncate } else { LongLinePolicy::Split };
            let o = opts(max, policy, strip_cr);
            let (got, got_rest) = frame_chunked(o, &data, &cuts);
            let (want, want_rest) = naive(o, &data);
            prop_assert_eq!(got, want);
            prop_assert_eq!(got_rest, want_rest);
        }
    }
}
