//! `processor_parse_json_native`: the top-level keys of a JSON object
//! become fields.
//!
//! - String values are unescaped (`\uXXXX` with surrogate pairs included);
//!   a string that needs no unescaping is a span of the source, so most
//!   values are not copied.
//! - Keys come from the data, so they are shared names
//!   ([`FieldKey::shared`]), never interned.
//! - Numbers, `true`, `false` and `null` become their JSON text (`1.5e3`,
//!   `true`, `null`).
//! - Nested objects and arrays are kept as their JSON text, byte for byte as
//!   they were in the source.
//! - A source that is not one JSON object (an array, a bare value, trailing
//!   garbage, a bad escape, a control character inside a string) is a parse
//!   failure: it is counted and, by default, the event is kept as it was
//!   (see [`SourceOptions`]).
//! - Duplicate keys: the last one wins.
//!
//! Invalid UTF-8 inside strings is passed through unchanged rather than
//! rejected (rapidjson, which LoongCollector uses, does the same by default):
//! nothing is lost. A key must become a `str`, so invalid bytes in a key are
//! replaced by U+FFFD.
//!
//! The scanner is a small validating one over the bytes (no intermediate
//! document tree); nesting is tracked with an explicit stack, so deep input
//! cannot overflow the call stack.

use std::sync::Arc;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::{Outcome, ParserStats, SourceOptions, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_parse_json_native";

/// Options of `processor_parse_json_native`.
///
/// Non-exhaustive: start from [`JsonOptions::default`] and set fields.
///
/// ```
/// use logtail_core::process::json::JsonOptions;
///
/// let mut o = JsonOptions::default();
/// o.source.source_key = "body".into();
/// o.source.keep_source_on_success = true;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonOptions {
    /// `SourceKey`, `KeepingSourceWhenParseFail`, `KeepingSourceWhenParseSucceed`,
    /// `RenamedSourceKey` and `CopingRawLog` (see [`SourceOptions`]; note our
    /// default keeps the source of a line that fails to parse).
    pub source: SourceOptions,
}

/// A configuration error of `processor_parse_json_native`; the message
/// names the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A key option was set to the empty string.
    #[error("{option}: must not be empty")]
    EmptyKey {
        /// The LoongCollector option name (`SourceKey`, `RenamedSourceKey`).
        option: &'static str,
    },
}

/// The `processor_parse_json_native` step.
#[derive(Debug)]
pub struct JsonParser {
    opts: JsonOptions,
    scratch: JsonScratch,
    stats: ParserStats,
}

impl JsonParser {
    /// Checks the options and builds the step.
    pub fn new(opts: JsonOptions) -> Result<Self, JsonError> {
        if opts.source.source_key.is_empty() {
            return Err(JsonError::EmptyKey {
                option: "SourceKey",
            });
        }
        if opts.source.renamed_source_key.as_deref() == Some("") {
            return Err(JsonError::EmptyKey {
                option: "RenamedSourceKey",
            });
        }
        Ok(JsonParser {
            opts,
            scratch: JsonScratch::default(),
            stats: ParserStats::default(),
        })
    }

    /// Parses one event in place; returns `false` when the event is to be
    /// dropped (a failure with `KeepingSourceWhenParseFail` off).
    pub fn process_event(&mut self, event: &mut Event) -> bool {
        process_event(&self.opts, event, &mut self.scratch, &mut self.stats)
    }
}

impl Parser for JsonParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        let JsonParser {
            opts,
            scratch,
            stats,
        } = self;
        batch
            .events
            .retain_mut(|e| process_event(opts, e, scratch, stats));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<crate::process::DropReason> {
        self.opts.source.drop_reason()
    }
}

/// Parses the source field of one event and applies the outcome as `opts`
/// say. Returns `false` when the event is to be dropped. Never panics.
pub fn process_event(
    opts: &JsonOptions,
    event: &mut Event,
    scratch: &mut JsonScratch,
    stats: &mut ParserStats,
) -> bool {
    let outcome = match event.field(&opts.source.source_key) {
        None => Outcome::NoSource,
        Some(src) => match parse_object(src, scratch) {
            // The common case: a raw line whose keys are known to be
            // distinct (and not `content`).
            Some(fields) if event.fields.is_empty() && scratch.all_distinct(&fields) => {
                return opts
                    .source
                    .apply_distinct(event, Outcome::Parsed(fields), stats);
            }
            Some(fields) => {
                event.fields.reserve(fields.len());
                Outcome::Parsed(fields)
            }
            None => Outcome::Failed,
        },
    };
    opts.source.apply(event, outcome, stats)
}

/// Reusable state of the scanner: interned keys and buffers, so parsing
/// many objects with the same keys allocates only the field list.
#[derive(Debug, Default)]
pub struct JsonScratch {
    /// The key seen at each position of the last objects; logs repeat their
    /// keys in the same order, so this hits almost always.
    keys: Vec<FieldKey>,
    /// Nesting stack of the closing brackets expected.
    stack: Vec<u8>,
    /// Unescaped key text.
    key_buf: Vec<u8>,
    /// Field count of the last object, to size the next field list.
    last_len: usize,
    /// `keys[..distinct]` are pairwise different and none is `content`;
    /// `None` after a slot changed.
    distinct: Option<usize>,
}

/// Key positions remembered; objects with more keys allocate the rest.
const MAX_CACHED_KEYS: usize = 256;

impl JsonScratch {
    fn key(&mut self, idx: usize, raw: &[u8]) -> FieldKey {
        if let Some(k) = self.keys.get(idx) {
            if k.as_bytes() == raw {
                return k.clone();
            }
        }
        let key = FieldKey::shared(match std::str::from_utf8(raw) {
            Ok(s) => Arc::from(s),
            Err(_) => Arc::from(String::from_utf8_lossy(raw).as_ref()),
        });
        if idx < self.keys.len() {
            self.keys[idx] = key.clone();
            self.distinct = None;
        } else if idx == self.keys.len() && idx < MAX_CACHED_KEYS {
            self.keys.push(key.clone());
            self.distinct = None;
        }
        key
    }

    /// Whether `fields` carry exactly the cached keys of their positions and
    /// those are pairwise different and not `content`, so setting them one
    /// by one would only append.
    fn all_distinct(&mut self, fields: &[Field]) -> bool {
        let distinct = match self.distinct {
            Some(d) => d,
            None => {
                let keys = &self.keys;
                let d = (0..keys.len())
                    .find(|&i| &*keys[i] == CONTENT || keys[..i].contains(&keys[i]))
                    .unwrap_or(keys.len());
                self.distinct = Some(d);
                d
            }
        };
        fields.len() <= distinct && fields.iter().zip(&self.keys).all(|(f, k)| f.key.ptr_eq(k))
    }
}

/// Parses `src` as one JSON object and returns its top-level members as
/// fields (in source order, duplicates included; values relative to `src`,
/// see [`FieldValue::resolve`]), or `None` if `src` is not exactly one JSON
/// object (surrounding whitespace allowed). Never panics.
pub fn parse_object(src: &[u8], scratch: &mut JsonScratch) -> Option<Vec<Field>> {
    parse_object_inner(src, scratch, true)
}

/// [`parse_object`] that stops at the object's closing brace, ignoring what
/// follows it (`{"a":1} tail` parses), as Go's `jsonparser.ObjectEach`
/// (LoongCollector's `processor_json`) does. Never panics.
pub fn parse_object_prefix(src: &[u8], scratch: &mut JsonScratch) -> Option<Vec<Field>> {
    parse_object_inner(src, scratch, false)
}

fn parse_object_inner(src: &[u8], scratch: &mut JsonScratch, whole: bool) -> Option<Vec<Field>> {
    let mut s = Scanner { b: src, pos: 0 };
    s.ws();
    if s.next()? != b'{' {
        return None;
    }
    let mut fields = Vec::with_capacity(scratch.last_len.clamp(4, MAX_CACHED_KEYS));
    s.ws();
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            if s.next()? != b'"' {
                return None;
            }
            let mut key_buf = std::mem::take(&mut scratch.key_buf);
            key_buf.clear();
            let key_raw = s.string(&mut key_buf);
            let key = match key_raw? {
                Str::Slice(a, b) => scratch.key(fields.len(), &src[a..b]),
                Str::Owned => scratch.key(fields.len(), &key_buf),
            };
            scratch.key_buf = key_buf;
            s.ws();
            if s.next()? != b':' {
                return None;
            }
            s.ws();
            let value = s.value(&mut scratch.stack)?;
            fields.push(Field { key, value });
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    scratch.last_len = fields.len();
    (!whole || s.pos == src.len()).then_some(fields)
}

/// Parses `src` as one JSON array and returns its elements (values relative
/// to `src`, as in [`parse_object`]: strings unescaped, nested values and
/// scalars as their text), or `None` if `src` is not exactly one JSON array.
/// Never panics.
pub fn parse_array(src: &[u8]) -> Option<Vec<FieldValue>> {
    let mut s = Scanner { b: src, pos: 0 };
    let mut stack = Vec::new();
    s.ws();
    if s.next()? != b'[' {
        return None;
    }
    let mut out = Vec::new();
    s.ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
    } else {
        loop {
            s.ws();
            out.push(s.value(&mut stack)?);
            s.ws();
            match s.next()? {
                b',' => {}
                b']' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.pos == src.len()).then_some(out)
}

/// Where a scanned string's text is.
enum Str {
    /// `src[a..b]`: no escapes, the text is the raw bytes.
    Slice(usize, usize),
    /// Unescaped into the caller's buffer.
    Owned,
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (high bit) the bytes of `w` that end a run of plain string text:
/// `"`, `\` or a control character. The lowest mark is exact.
#[inline(always)]
fn specials(w: u64) -> u64 {
    let quote = w ^ (LO * b'"' as u64);
    let bslash = w ^ (LO * b'\\' as u64);
    let zero_q = quote.wrapping_sub(LO) & !quote;
    let zero_b = bslash.wrapping_sub(LO) & !bslash;
    let ctrl = w.wrapping_sub(LO * 0x20) & !w;
    (zero_q | zero_b | ctrl) & HI
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Advances to the next `"`, `\` or control byte (or the end).
    #[inline(always)]
    fn skip_plain(&mut self) {
        while let Some(chunk) = self.b.get(self.pos..self.pos + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let m = specials(u64::from_le_bytes(w));
            if m != 0 {
                self.pos += (m.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        while let Some(c) = self.peek() {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.pos += 1;
        }
    }

    /// Scans a string whose opening quote was consumed. Without escapes the
    /// text is a range of the source; with escapes it is unescaped into
    /// `out` (which must be empty).
    fn string(&mut self, out: &mut Vec<u8>) -> Option<Str> {
        let start = self.pos;
        self.skip_plain();
        match self.next()? {
            b'"' => return Some(Str::Slice(start, self.pos - 1)),
            b'\\' => out.extend_from_slice(&self.b[start..self.pos - 1]),
            _ => return None, // control character
        }
        // Slow path: at least one escape; `\` was just consumed.
        loop {
            self.escape(out)?;
            let run = self.pos;
            self.skip_plain();
            out.extend_from_slice(&self.b[run..self.pos]);
            match self.next()? {
                b'"' => return Some(Str::Owned),
                b'\\' => {}
                _ => return None,
            }
        }
    }

    /// Decodes one escape after its `\`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let c = match self.next()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = self.hex4()?;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by `\u` + a low one.
                        if self.next()? != b'\\' || self.next()? != b'u' {
                            return None;
                        }
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => hi,
                };
                let ch = char::from_u32(cp)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Some(());
            }
            _ => return None,
        };
        out.push(c);
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = (self.next()? as char).to_digit(16)?;
            v = v * 16 + d;
        }
        Some(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(word.len())?;
        if self.b.get(self.pos..end)? != word {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// A scalar other than a string.
    fn scalar(&mut self, first: u8) -> Option<()> {
        match first {
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// A top-level member's value as a field value.
    fn value(&mut self, stack: &mut Vec<u8>) -> Option<FieldValue> {
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                let mut out = Vec::new();
                match self.string(&mut out)? {
                    Str::Slice(a, b) => Some(FieldValue::span(a, b)),
                    Str::Owned => Some(FieldValue::from(out)),
                }
            }
            b'{' | b'[' => {
                self.nested(stack)?;
                Some(FieldValue::span(start, self.pos))
            }
            c => {
                self.scalar(c)?;
                Some(FieldValue::span(start, self.pos))
            }
        }
    }

    /// Validates and skips one object or array, iteratively.
    fn nested(&mut self, stack: &mut Vec<u8>) -> Option<()> {
        stack.clear();
        let mut scratch = Vec::new();
        loop {
            // At the start of a value.
            match self.next()? {
                b'{' => {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(b'}');
                        self.member_key(&mut scratch)?;
                        continue;
                    }
                }
                b'[' => {
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(b']');
                        continue;
                    }
                }
                b'"' => {
                    scratch.clear();
                    self.string(&mut scratch)?;
                }
                c => {
                    self.pos -= 1;
                    self.scalar(c)?;
                }
            }
            // After a complete value: close containers or go to the next element.
            loop {
                let Some(&close) = stack.last() else {
                    return Some(());
                };
                self.ws();
                match self.next()? {
                    b',' => {
                        if close == b'}' {
                            self.ws();
                            self.member_key(&mut scratch)?;
                        } else {
                            self.ws();
                        }
                        break;
                    }
                    c if c == close => {
                        stack.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// `"key" :` inside a nested object, leaving the position at the value.
    fn member_key(&mut self, scratch: &mut Vec<u8>) -> Option<()> {
        if self.next()? != b'"' {
            return None;
        }
        scratch.clear();
        self.string(scratch)?;
        self.ws();
        if self.next()? != b':' {
            return None;
        }
        self.ws();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{test_batch, RAW_LOG};
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;
    use serde_json::Value;

    fn parse(s: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        let src = Bytes::copy_from_slice(s);
        parse_object(&src, &mut JsonScratch::default()).map(|fs| {
            fs.into_iter()
                .map(|f| (f.key.to_string(), f.value.resolve(&src).to_vec()))
                .collect()
        })
    }

    fn kv(pairs: &[(&str, &str)]) -> Option<Vec<(String, Vec<u8>)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn ev(s: &[u8]) -> Event {
        Event::line(Bytes::copy_from_slice(s), 0, Timestamp::default())
    }

    #[test]
    fn scalars_become_their_text() {
        assert_eq!(
            parse(br#"{"s":"x","i":-12,"f":1.5e+3,"t":true,"n":null,"b":false}"#),
            kv(&[
                ("s", "x"),
                ("i", "-12"),
                ("f", "1.5e+3"),
                ("t", "true"),
                ("n", "null"),
                ("b", "false")
            ])
        );
    }

    #[test]
    fn nested_values_keep_their_raw_text() {
        let src = br#"{"o": {"a" : [1, {"b":"\u00e9"}], "c":{}} ,"a":[ ],"z":[[]]}"#;
        assert_eq!(
            parse(src),
            kv(&[
                ("o", r#"{"a" : [1, {"b":"\u00e9"}], "c":{}}"#),
                ("a", "[ ]"),
                ("z", "[[]]")
            ])
        );
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            parse(br#"{"k\n\"":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u4e2d\ud83d\ude00"}"#),
            kv(&[("k\n\"", "a\"b\\c/d\u{8}\u{c}\n\r\tA\u{e9}\u{4e2d}\u{1f600}")])
        );
    }

    #[test]
    fn bad_escapes_and_strings_fail() {
        for bad in [
            &br#"{"a":"\x"}"#[..],
            br#"{"a":"\u12"}"#,
            br#"{"a":"\u12G4"}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\ud800\u0041"}"#,
            br#"{"a":"\udc00"}"#,
            br#"{"a":"\ud800x"}"#,
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":\"nul\0\"}",
            br#"{"a":"unterminated}"#,
            br#"{"a":"\"#,
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn non_objects_and_garbage_fail() {
        for bad in [
            &b""[..],
            b"   ",
            b"[1,2]",
            b"\"s\"",
            b"12",
            b"null",
            b"{",
            b"{}x",
            b"{} {}",
            b"{\"a\":1,}",
            b"{,}",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{a:1}",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":.5}",
            b"{\"a\":1e}",
            b"{\"a\":-}",
            b"{\"a\":+1}",
            b"{\"a\":tru}",
            b"{\"a\":nulls}",
            b"{\"a\":[1,]}",
            b"{\"a\":[1 2]}",
            b"{\"a\":{\"b\"}}",
            b"{\"a\":{\"b\":1,}}",
            b"{\"a\":{1:2}}",
            b"{\"a\":[}",
            b"{\"a\":[1}",
            b"{\"a\":{]}",
            b"{\"a\":[\"\\q\"]}",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn whitespace_crlf_and_empty_values() {
        assert_eq!(
            parse(b" \t{ \"a\" :\r\n \"\" , \"\":\"e\" }\r"),
            kv(&[("a", ""), ("", "e")])
        );
        assert_eq!(parse(b"{}"), Some(vec![]));
        assert_eq!(parse(b"{}\r\n"), Some(vec![]));
    }

    #[test]
    fn unicode_and_invalid_utf8_pass_through() {
        assert_eq!(
            parse("{\"键\":\"值 🎉\"}".as_bytes()),
            kv(&[("键", "值 🎉")])
        );
        // Invalid bytes in values are kept; in keys replaced.
        assert_eq!(
            parse(b"{\"k\xff\":\"v\xfe\xff\"}"),
            Some(vec![("k\u{fffd}".to_string(), b"v\xfe\xff".to_vec())])
        );
    }

    #[test]
    fn values_are_slices_of_the_source() {
        let src = Bytes::from_static(br#"{"a":"plain","b":{"x":1}}"#);
        let fs = parse_object(&src, &mut JsonScratch::default()).unwrap();
        for f in &fs {
            let span = f.value.as_span();
            assert!(
                span.is_some_and(|r| r.end <= src.len()),
                "{:?} copied",
                f.key
            );
        }
    }

    #[test]
    fn one_mib_value_and_deep_nesting() {
        let big = "x".repeat(1 << 20);
        let src = format!(r#"{{"big":"{big}","n":1}}"#);
        let out = parse(src.as_bytes()).unwrap();
        assert_eq!(out[0].1.len(), 1 << 20);
        let big_esc = "\\n".repeat(1 << 19);
        let out = parse(format!(r#"{{"big":"{big_esc}"}}"#).as_bytes()).unwrap();
        assert_eq!(out[0].1, vec![b'\n'; 1 << 19]);

        let deep = format!(r#"{{"d":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()).unwrap()[0].1.len(), 200_000);
        let unbalanced = format!(r#"{{"d":{}}}"#, "[".repeat(100_000));
        assert_eq!(parse(unbalanced.as_bytes()), None);
    }

    #[test]
    fn key_cache_follows_changing_keys() {
        let mut sc = JsonScratch::default();
        for src in [
            &br#"{"a":1,"b":2}"#[..],
            br#"{"b":1,"a":2}"#,
            br#"{"a\u0062":1}"#,
        ] {
            let b = Bytes::copy_from_slice(src);
            let got: Vec<String> = parse_object(&b, &mut sc)
                .unwrap()
                .iter()
                .map(|f| f.key.to_string())
                .collect();
            let want: Vec<String> = serde_json::from_slice::<serde_json::Map<String, Value>>(src)
                .unwrap()
                .keys()
                .cloned()
                .collect();
            let mut g = got.clone();
            g.sort();
            assert_eq!(g, want);
        }
    }

    #[test]
    fn processor_default_options() {
        let mut p = JsonParser::new(JsonOptions::default()).unwrap();
        assert_eq!(p.name(), NAME);
        let mut b = test_batch(vec![
            ev(br#"{"level":"INFO","msg":"hi","dup":1,"dup":2}"#),
            ev(b"not json\r"),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 2);
        let e = &b.events[0];
        assert_eq!(e.field(CONTENT), None);
        assert_eq!(e.field("level").unwrap(), b"INFO");
        assert_eq!(e.field("dup").unwrap(), b"2");
        assert_eq!(e.fields.len(), 3);
        assert_eq!(b.events[1].field(CONTENT).unwrap(), b"not json\r");
        assert_eq!(
            p.stats(),
            ParserStats {
                processed: 2,
                failed: 1,
                dropped: 0,
            }
        );
    }

    #[test]
    fn processor_source_options() {
        // SourceKey other than content, keep on success with rename.
        let opts = JsonOptions {
            source: SourceOptions {
                source_key: Arc::from("body"),
                keep_source_on_success: true,
                renamed_source_key: Some(Arc::from("raw")),
                ..Default::default()
            },
        };
        let mut p = JsonParser::new(opts).unwrap();
        let mut e = ev(b"line");
        e.fields.push(Field {
            key: FieldKey::from_static(&"body"),
            value: Bytes::from_static(br#"{"a":"1"}"#).into(),
        });
        let mut no_src = ev(b"{}");
        let mut b = test_batch(vec![e, ev(b"x")]);
        p.process(&mut b);
        let e = &b.events[0];
        assert_eq!(e.field("a").unwrap(), b"1");
        assert_eq!(e.field("raw").unwrap(), br#"{"a":"1"}"#);
        assert_eq!(e.field("body"), None);
        assert_eq!(e.field(CONTENT).unwrap(), b"line");
        // An event without the source field is left alone, not failed.
        assert_eq!(b.events[1].field(CONTENT).unwrap(), b"x");
        assert!(p.process_event(&mut no_src));
        assert_eq!(p.stats().failed, 0);

        // Failure: drop when not kept, and CopingRawLog.
        let mut p = JsonParser::new(JsonOptions {
            source: SourceOptions {
                keep_source_on_fail: false,
                ..Default::default()
            },
        })
        .unwrap();
        let mut b = test_batch(vec![ev(b"{bad"), ev(br#"{"ok":1}"#), ev(b"[]")]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].field("ok").unwrap(), b"1");
        assert_eq!(p.stats().dropped, 2);
        assert_eq!(p.stats().failed, 2);

        let mut p = JsonParser::new(JsonOptions {
            source: SourceOptions {
                copying_raw_log: true,
                ..Default::default()
            },
        })
        .unwrap();
        let mut e = ev(b"{bad");
        assert!(p.process_event(&mut e));
        assert_eq!(e.field(RAW_LOG).unwrap(), b"{bad");
        assert_eq!(e.field(CONTENT).unwrap(), b"{bad");
    }

    #[test]
    fn a_content_key_replaces_the_line() {
        let mut p = JsonParser::new(JsonOptions::default()).unwrap();
        let mut e = ev(br#"{"content":"inner","x":"y"}"#);
        assert!(p.process_event(&mut e));
        assert_eq!(e.field(CONTENT).unwrap(), b"inner");
        assert_eq!(e.field("x").unwrap(), b"y");
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = JsonParser::new(JsonOptions {
            source: SourceOptions {
                source_key: Arc::from(""),
                ..Default::default()
            },
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "SourceKey: must not be empty");
        let e = JsonParser::new(JsonOptions {
            source: SourceOptions {
                renamed_source_key: Some(Arc::from("")),
                ..Default::default()
            },
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "RenamedSourceKey: must not be empty");
    }

    /// The expected field value of a serde_json value: a string's text, any
    /// other value's JSON text.
    fn expected(v: &Value) -> Vec<u8> {
        match v {
            Value::String(s) => s.as_bytes().to_vec(),
            other => serde_json::to_vec(other).unwrap(),
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~\u{80}-\u{10ffff}\"\\\\\n\t\u{1}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\u{e9}\"\\\\]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = serde_json::Map<String, Value>> {
        prop::collection::btree_map(any::<String>(), arb_json(), 0..10)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Fields match serde_json's reading of the same object, compact and
        /// pretty-printed (whitespace everywhere).
        #[test]
        fn matches_serde_json(obj in arb_object(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&obj).unwrap()
            } else {
                serde_json::to_vec(&obj).unwrap()
            };
            let src = Bytes::from(text);
            let fields = parse_object(&src, &mut JsonScratch::default());
            prop_assert!(fields.is_some(), "{}", String::from_utf8_lossy(&src));
            let fields = fields.unwrap();
            prop_assert_eq!(fields.len(), obj.len());
            for (f, (k, v)) in fields.iter().zip(obj.iter()) {
                prop_assert_eq!(&*f.key, k.as_str());
                if matches!(v, Value::Array(_) | Value::Object(_)) {
                    // Nested: raw text that reads back as the same value
                    // (through the same float reading on both sides).
                    let back: Value = serde_json::from_slice(f.value.resolve(&src)).unwrap();
                    let want: Value = serde_json::from_slice(&serde_json::to_vec(v).unwrap()).unwrap();
                    prop_assert_eq!(&back, &want);
                } else {
                    prop_assert_eq!(f.value.resolve(&src).to_vec(), expected(v));
                }
            }
        }

        /// The step gives what `SourceOptions::apply` gives with the parsed
        /// fields, over a run of objects whose keys repeat, change, collide
        /// with `content` or the renamed key, or repeat within an object.
        #[test]
        fn step_matches_apply_reference(
            objs in prop::collection::vec(
                prop::collection::vec(("(a|b|c|content|raw)", "[a-z]{0,3}"), 0..6), 1..12),
            flags in 0u8..16,
        ) {
            let opts = JsonOptions {
                source: SourceOptions {
                    keep_source_on_fail: flags & 1 == 0,
                    keep_source_on_success: flags & 2 != 0,
                    renamed_source_key: (flags & 4 != 0).then(|| Arc::from("raw")),
                    copying_raw_log: flags & 8 != 0,
                    ..Default::default()
                },
            };
            let mut p = JsonParser::new(opts.clone()).unwrap();
            let mut ref_stats = ParserStats::default();
            for members in objs {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{:?}:{:?}", k, v))
                    .collect();
                let line = format!("{{{}}}", body.join(","));
                let mut ours = ev(line.as_bytes());
                let keep = p.process_event(&mut ours);
                let mut want = ev(line.as_bytes());
                let src = want.content.clone();
                let fields = parse_object(&src, &mut JsonScratch::default()).unwrap();
                let keep_ref = opts.source.apply(&mut want, Outcome::Parsed(fields), &mut ref_stats);
                prop_assert_eq!(keep, keep_ref);
                prop_assert_eq!(&ours, &want, "{}", line);
            }
            prop_assert_eq!(p.stats(), ref_stats);
        }

        /// On arbitrary bytes: never panics, and whenever serde_json reads an
        /// object, so do we (with the same keys).
        #[test]
        fn agrees_with_serde_on_acceptance(s in "[{}\\[\\]\",:a-c0-9.eE+\\-\\\\u tnrulfs]{0,40}") {
            let src = Bytes::from(s.clone());
            let ours = parse_object(&src, &mut JsonScratch::default());
            let theirs = serde_json::from_str::<serde_json::Map<String, Value>>(&s);
            if let Ok(m) = &theirs {
                prop_assert!(ours.is_some(), "{}", s);
                let fields = ours.unwrap();
                let last: std::collections::BTreeMap<&str, &[u8]> =
                    fields.iter().map(|f| (&*f.key, f.value.resolve(&src))).collect();
                prop_assert_eq!(last.len(), m.len());
            } else if let Some(fields) = ours {
                // We only accept what serde_json rejects for number range
                // reasons (it turns huge exponents into errors).
                prop_assert!(theirs.unwrap_err().to_string().contains("number out of range")
                    || fields.iter().any(|f| f.value.resolve(&src).contains(&b'e') || f.value.resolve(&src).contains(&b'E')), "{}", s);
            }
        }
    }
}
