//! `processor_desensitize_native`: mask secrets inside one field.
//!
//! As LoongCollector defines it: the secret is text matching
//! `ReplacedContentPattern` right after text matching
//! `ContentPatternBeforeReplacedString`; the two are searched (not anchored)
//! as the one pattern `(Before)Replaced`. The prefix stays, the secret is
//! replaced:
//! - `Method: const`: by `ReplacingString`, which is an RE2 rewrite string
//!   (`\1`… refer to capture groups, `\\` is a backslash, group 1 being the
//!   prefix);
//! - `Method: md5`: by the lowercase hex MD5 of the secret.
//!
//! `ReplacingAll` (default true) replaces every match, else only the first.
//! An empty field is left as it is. Patterns use RE2's dialect as
//! LoongCollector does here: `.` does not match `\n`; classes are ASCII (see
//! [`crate::process::regex`] for the byte-mode details).
//!
//! Where LoongCollector would silently not replace anything (a
//! `ReplacingString` with an invalid escape or a group number beyond the
//! pattern's groups), building fails instead: a secret is never let
//! through because of a typo. Desensitizing never fails an event.

use std::str::FromStr;

use bytes::Bytes;
#[cfg(feature = "md5")]
use md5::{Digest, Md5};
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::Input;

use crate::event::{Event, FieldKey};
use crate::process::regex::{build_meta, parse_pattern};
use crate::process::ParserStats;
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_desensitize_native";

/// `Method`: how a secret is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `const`: by `ReplacingString`.
    Const,
    /// `md5`: by the hex MD5 of the secret.
    Md5,
}

impl FromStr for Method {
    type Err = DesensitizeError;

    /// Parses the LoongCollector value (`const`, `md5`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "const" => Ok(Method::Const),
            "md5" => Ok(Method::Md5),
            other => Err(DesensitizeError::Method(other.to_owned())),
        }
    }
}

/// Options of `processor_desensitize_native`.
///
/// Non-exhaustive: build it with [`DesensitizeOptions::new`] and set the
/// other fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DesensitizeOptions {
    /// `SourceKey`: the field to mask (required).
    pub source_key: String,
    /// `Method` (required).
    pub method: Method,
    /// `ReplacingString`: required when `method` is [`Method::Const`].
    pub replacing_string: Option<String>,
    /// `ContentPatternBeforeReplacedString`: what precedes a secret.
    pub content_pattern_before_replaced_string: String,
    /// `ReplacedContentPattern`: the secret itself.
    pub replaced_content_pattern: String,
    /// `ReplacingAll` (default true): every match, or only the first.
    pub replacing_all: bool,
}

impl DesensitizeOptions {
    /// Options with `ReplacingAll: true` and no `ReplacingString`: the
    /// required `SourceKey`, `Method`, `ContentPatternBeforeReplacedString`
    /// (`before`) and `ReplacedContentPattern` (`pattern`).
    ///
    /// ```
    /// use logtail_core::process::desensitize::{DesensitizeOptions, Method};
    ///
    /// let mut o = DesensitizeOptions::new("content", Method::Const, "password=", r"[^,]+");
    /// o.replacing_string = Some("******".to_owned());
    /// ```
    pub fn new(
        source_key: impl Into<String>,
        method: Method,
        before: impl Into<String>,
        pattern: impl Into<String>,
    ) -> Self {
        DesensitizeOptions {
            source_key: source_key.into(),
            method,
            replacing_string: None,
            content_pattern_before_replaced_string: before.into(),
            replaced_content_pattern: pattern.into(),
            replacing_all: true,
        }
    }
}

/// Why a `processor_desensitize_native` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesensitizeError {
    /// `SourceKey` is empty.
    #[error("SourceKey: must not be empty")]
    SourceKey,
    /// `Method` is not `const` or `md5`.
    #[error("Method: expected const or md5, got {0:?}")]
    Method(String),
    /// `Method: md5` in a build without logtail-core's `md5` feature.
    #[error("Method: md5 needs logtail-core's cargo feature `md5` (on by default)")]
    Md5Unavailable,
    /// `ReplacingString` missing with `Method: const`.
    #[error("ReplacingString: required when Method is const")]
    MissingReplacingString,
    /// `ReplacingString` is not a valid rewrite string.
    #[error("ReplacingString: {0}")]
    Rewrite(String),
    /// A pattern does not compile; `option` names which.
    #[error("{option}: invalid pattern at offset {offset}: {message}")]
    Pattern {
        /// The option at fault (`ContentPatternBeforeReplacedString`,
        /// `ReplacedContentPattern`, or both when only their combination fails).
        option: &'static str,
        /// Byte offset of the problem in that pattern.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

/// A piece of the replacement: literal bytes or a capture group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

/// The `processor_desensitize_native` step.
#[derive(Debug)]
pub struct DesensitizeParser {
    source_key: FieldKey,
    method: Method,
    rewrite: Vec<Piece>,
    replacing_all: bool,
    re: meta::Regex,
    cache: meta::Cache,
    caps: Captures,
    stats: ParserStats,
}

impl DesensitizeParser {
    /// Checks and compiles the options.
    pub fn new(options: DesensitizeOptions) -> Result<Self, DesensitizeError> {
        if options.source_key.is_empty() {
            return Err(DesensitizeError::SourceKey);
        }
        let before = &options.content_pattern_before_replaced_string;
        let secret = &options.replaced_content_pattern;
        // Each part alone first, so the error names the option at fault and
        // the concatenation below cannot change either part's meaning.
        let check = |option, p: &str| {
            parse_pattern(p, false).map_err(|e| DesensitizeError::Pattern {
                option,
                offset: e.offset,
                message: e.message,
            })
        };
        check("ContentPatternBeforeReplacedString", before)?;
        check("ReplacedContentPattern", secret)?;
        let both = "ContentPatternBeforeReplacedString or ReplacedContentPattern";
        let hir = check(both, &format!("({before}){secret}"))?;
        let re = build_meta(&hir).map_err(|message| DesensitizeError::Pattern {
            option: both,
            offset: 0,
            message,
        })?;
        let rewrite = match options.method {
            Method::Md5 if cfg!(feature = "md5") => Vec::new(),
            Method::Md5 => return Err(DesensitizeError::Md5Unavailable),
            Method::Const => {
                let s = options
                    .replacing_string
                    .as_deref()
                    .ok_or(DesensitizeError::MissingReplacingString)?;
                let groups = re.captures_len() - 1;
                let mut pieces = vec![Piece::Group(1)];
                pieces.extend(parse_rewrite(s, groups)?);
                pieces
            }
        };
        Ok(DesensitizeParser {
            source_key: FieldKey::interned(&options.source_key),
            method: options.method,
            rewrite,
            replacing_all: options.replacing_all,
            caps: re.create_captures(),
            cache: re.create_cache(),
            re,
            stats: ParserStats::default(),
        })
    }

    /// Masks one value. `None` when nothing was replaced (the value stays
    /// as it is, uncopied).
    pub fn desensitize(&mut self, value: &[u8]) -> Option<Vec<u8>> {
        if value.is_empty() {
            return None;
        }
        match self.method {
            Method::Const => self.replace_const(value),
            Method::Md5 => self.replace_md5(value),
        }
    }

    /// Masks the source field of one event, if it has one.
    pub fn desensitize_event(&mut self, event: &mut Event) {
        let Some(value) = event.field(&self.source_key) else {
            return;
        };
        self.stats.processed += 1;
        if let Some(masked) = self.desensitize(value) {
            event.set_field(self.source_key.clone(), Bytes::from(masked));
        }
    }

    /// RE2 `Replace` / `GlobalReplace` with the rewrite `\1ReplacingString`.
    fn replace_const(&mut self, value: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut last = 0;
        let mut replaced = false;
        let mut at = 0;
        let mut last_match_end = None;
        while at <= value.len() {
            let input = Input::new(value).range(at..);
            self.re
                .search_captures_with(&mut self.cache, &input, &mut self.caps);
            let Some(m) = self.caps.get_match() else {
                break;
            };
            let (s, e) = (m.start(), m.end());
            if s == e && last_match_end == Some(e) {
                // RE2 (and the regex crate): no empty match right where
                // the previous match ended; move on one byte.
                at = e + 1;
                continue;
            }
            out.extend_from_slice(&value[last..s]);
            for piece in &self.rewrite {
                match piece {
                    Piece::Literal(l) => out.extend_from_slice(l),
                    Piece::Group(g) => {
                        if let Some(span) = self.caps.get_group(*g) {
                            out.extend_from_slice(&value[span.start..span.end]);
                        }
                    }
                }
            }
            replaced = true;
            last = e;
            last_match_end = Some(e);
            // An empty match must not be found again at the same place.
            at = if s == e { e + 1 } else { e };
            if !self.replacing_all {
                break;
            }
        }
        if !replaced {
            return None;
        }
        out.extend_from_slice(&value[last.min(value.len())..]);
        Some(out)
    }

    /// LoongCollector's md5 loop: prefix kept, secret → hex MD5. As there,
    /// a match that does not move past the previous one (an empty match)
    /// abandons the whole value unchanged.
    fn replace_md5(&mut self, value: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut begin = 0;
        loop {
            let input = Input::new(value).range(begin..);
            self.re
                .search_captures_with(&mut self.cache, &input, &mut self.caps);
            let (Some(m), Some(prefix)) = (self.caps.get_match(), self.caps.get_group(1)) else {
                if begin == 0 {
                    return None;
                }
                break;
            };
            let (secret_start, end) = (prefix.end, m.end());
            if secret_start < begin || end <= begin {
                return None;
            }
            out.extend_from_slice(&value[begin..secret_start]);
            out.extend_from_slice(&md5_hex(&value[secret_start..end]));
            begin = end;
            if end >= value.len() || !self.replacing_all {
                break;
            }
        }
        out.extend_from_slice(&value[begin.min(value.len())..]);
        Some(out)
    }
}

/// Lowercase hex MD5, as LoongCollector's `CalcMD5`.
#[cfg(feature = "md5")]
fn md5_hex(data: &[u8]) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(data);
    let mut out = [0u8; 32];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

/// Never called: without the `md5` feature `Method: md5` does not build.
#[cfg(not(feature = "md5"))]
fn md5_hex(_data: &[u8]) -> [u8; 32] {
    [b'0'; 32]
}

/// Parses an RE2 rewrite string: `\0`…`\9` are groups, `\\` a backslash;
/// anything else after a backslash is an error, as is a group the pattern
/// does not have.
fn parse_rewrite(s: &str, groups: usize) -> Result<Vec<Piece>, DesensitizeError> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut bytes = s.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        if b != b'\\' {
            lit.push(b);
            continue;
        }
        match bytes.next() {
            Some((_, b'\\')) => lit.push(b'\\'),
            Some((_, d)) if d.is_ascii_digit() => {
                let g = usize::from(d - b'0');
                if g > groups {
                    return Err(DesensitizeError::Rewrite(format!(
                        "\\{g} at offset {i} refers to group {g}, but the pattern has {groups}"
                    )));
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(g));
            }
            _ => {
                return Err(DesensitizeError::Rewrite(format!(
                    "invalid escape at offset {i} (write \\\\ for a backslash)"
                )))
            }
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

impl Parser for DesensitizeParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        for e in &mut batch.events {
            self.desensitize_event(e);
        }
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::CONTENT;
    use crate::Timestamp;
    use proptest::prelude::*;

    fn konst(before: &str, pat: &str, with: &str, all: bool) -> DesensitizeParser {
        let mut o = DesensitizeOptions::new(CONTENT, Method::Const, before, pat);
        o.replacing_string = Some(with.into());
        o.replacing_all = all;
        DesensitizeParser::new(o).unwrap()
    }

    #[cfg(feature = "md5")]
    fn md5(before: &str, pat: &str, all: bool) -> DesensitizeParser {
        let mut o = DesensitizeOptions::new(CONTENT, Method::Md5, before, pat);
        o.replacing_all = all;
        DesensitizeParser::new(o).unwrap()
    }

    fn apply(p: &mut DesensitizeParser, s: &str) -> String {
        match p.desensitize(s.as_bytes()) {
            Some(v) => String::from_utf8(v).unwrap(),
            None => s.to_owned(),
        }
    }

    #[test]
    fn loongcollector_doc_example() {
        let mut p = konst(r#"password":""#, r#"[^"]+"#, "******", true);
        assert_eq!(
            apply(
                &mut p,
                r#"{"account":"1812213231432969","password":"04a23f38"}"#
            ),
            r#"{"account":"1812213231432969","password":"******"}"#
        );
    }

    #[test]
    fn replacing_all_or_first() {
        let line = "pwd=abc, pwd=def, x";
        assert_eq!(
            apply(&mut konst("pwd=", r"[^,]+", "***", true), line),
            "pwd=***, pwd=***, x"
        );
        assert_eq!(
            apply(&mut konst("pwd=", r"[^,]+", "***", false), line),
            "pwd=***, pwd=def, x"
        );
        assert_eq!(
            konst("pwd=", r"[^,]+", "***", true).desensitize(b"nothing"),
            None
        );
    }

    #[test]
    #[cfg(not(feature = "md5"))]
    fn md5_without_the_feature_is_a_config_error() {
        let o = DesensitizeOptions::new(CONTENT, Method::Md5, "psw=", r"[^,]+");
        assert_eq!(
            DesensitizeParser::new(o).err(),
            Some(DesensitizeError::Md5Unavailable)
        );
    }

    #[test]
    #[cfg(feature = "md5")]
    fn md5_method() {
        // md5("123abc") = 9f1c050ad0d6e4d1...: checked against md5sum.
        let mut p = md5("psw=", r"[^,]+", true);
        assert_eq!(
            apply(&mut p, "xxxx, psw=123abc,xx, psw=123abc"),
            "xxxx, psw=a906449d5769fa7361d7ecc6aa3f6d28,xx, psw=a906449d5769fa7361d7ecc6aa3f6d28"
        );
        let mut p = md5("psw=", r"[^,]+", false);
        assert_eq!(
            apply(&mut p, "psw=a,psw=a"),
            format!("psw={},psw=a", hex("a"))
        );
        assert_eq!(md5("psw=", r"[^,]+", true).desensitize(b"none"), None);
        // An empty match abandons the value, as in LoongCollector.
        assert_eq!(md5("", "x*", true).desensitize(b"abc"), None);
    }

    #[cfg(feature = "md5")]
    fn hex(s: &str) -> String {
        String::from_utf8(md5_hex(s.as_bytes()).to_vec()).unwrap()
    }

    #[test]
    #[cfg(feature = "md5")]
    fn md5_hex_known_values() {
        assert_eq!(hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex("a"), "0cc175b9c0f1b6a831c399e269772661");
    }

    #[test]
    fn rewrite_groups_and_escapes() {
        let mut p = konst("(user)=", r"(\w+)", r"<\2:\\>", true);
        assert_eq!(apply(&mut p, "user=bob"), r"user=<user:\>");
        let mut o = DesensitizeOptions::new(CONTENT, Method::Const, "a", "b");
        o.replacing_string = Some(r"\5".into());
        let e = DesensitizeParser::new(o.clone()).unwrap_err();
        assert!(e.to_string().starts_with("ReplacingString: \\5"), "{e}");
        o.replacing_string = Some(r"\n".into());
        assert!(DesensitizeParser::new(o)
            .unwrap_err()
            .to_string()
            .starts_with("ReplacingString: invalid escape"));
    }

    #[test]
    fn build_errors_name_the_option() {
        let o = DesensitizeOptions::new(CONTENT, Method::Const, "a", "b");
        assert_eq!(
            DesensitizeParser::new(o).unwrap_err(),
            DesensitizeError::MissingReplacingString
        );
        let e = DesensitizeParser::new(DesensitizeOptions::new(CONTENT, Method::Md5, "(a", "b"))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ContentPatternBeforeReplacedString: invalid pattern at offset 0"),
            "{e}"
        );
        let e = DesensitizeParser::new(DesensitizeOptions::new(CONTENT, Method::Md5, "a", "[z-a]"))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ReplacedContentPattern: invalid pattern at offset 1"),
            "{e}"
        );
        let e =
            DesensitizeParser::new(DesensitizeOptions::new("", Method::Md5, "a", "b")).unwrap_err();
        assert_eq!(e.to_string(), "SourceKey: must not be empty");
        assert!("sha1"
            .parse::<Method>()
            .unwrap_err()
            .to_string()
            .starts_with("Method: "));
        assert_eq!("md5".parse::<Method>(), Ok(Method::Md5));
    }

    #[test]
    fn event_fields_crlf_empty_unicode() {
        let mut p = konst("key=", r".+", "***", true);
        let mut e = Event::line(Bytes::from_static(b"key=s3cr3t\r"), 0, Timestamp::default());
        p.desensitize_event(&mut e);
        // `.` takes the `\r` of a CRLF line (`\S` would not: `\r` is a space).
        assert_eq!(&e.content[..], b"key=***");
        let mut p = konst("key=", r"\w+", "***", true);
        let mut e = Event::line(Bytes::from_static(b"key=s3cr3t\r"), 0, Timestamp::default());
        p.desensitize_event(&mut e);
        assert_eq!(&e.content[..], b"key=***\r");
        // Empty field: untouched. Other field: only that one.
        let mut e = Event::line(Bytes::new(), 0, Timestamp::default());
        p.desensitize_event(&mut e);
        assert!(e.content.is_empty());
        let mut o = DesensitizeOptions::new("msg", Method::Const, "key=", r"\w+");
        o.replacing_string = Some("#".into());
        let mut p = DesensitizeParser::new(o).unwrap();
        let mut e = Event::line(Bytes::from_static(b"key=a"), 0, Timestamp::default());
        e.set_field("msg", Bytes::from_static(b"key=b"));
        p.desensitize_event(&mut e);
        assert_eq!(&e.content[..], b"key=a");
        assert_eq!(e.field("msg").unwrap(), b"key=#");
        // Unicode around and in the secret.
        let mut p = konst("密码：", r"[^，]+", "***", true);
        assert_eq!(
            apply(&mut p, "用户：张三，密码：秘密✓，完"),
            "用户：张三，密码：***，完"
        );
        // Quotes inside quotes.
        let mut p = konst(r#"token=""#, r#"(?:[^"]|"")*"#, "x", true);
        assert_eq!(apply(&mut p, r#"token="a""b" end"#), r#"token="x" end"#);
    }

    #[test]
    #[cfg(feature = "md5")]
    fn one_mib_field() {
        let big = "s".repeat(1 << 20);
        let mut p = md5("k=", r"\w+", true);
        let out = apply(&mut p, &format!("k={big} k={big}"));
        assert_eq!(out, format!("k={h} k={h}", h = hex(&big)));
    }

    #[test]
    fn process_batch() {
        let mut p = konst("k=", r"\d+", "0", true);
        assert_eq!(p.name(), NAME);
        let mut b = crate::process::test_batch(vec![
            Event::line(Bytes::from_static(b"k=12"), 0, Timestamp::default()),
            Event::line(Bytes::from_static(b"none"), 0, Timestamp::default()),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 2);
        assert_eq!(&b.events[0].content[..], b"k=0");
        assert_eq!(&b.events[1].content[..], b"none");
        assert_eq!(p.stats().processed, 2);
    }

    proptest! {
        #[test]
        fn const_agrees_with_regex_crate(
            value in "[a-c=, \n0-9]{0,30}",
            case in 0..4usize,
            all in any::<bool>(),
        ) {
            let (before, pat) = [("a=", "[^,]+"), ("b", "c*"), ("", "[0-9]+"), ("(a|b)=", ".")][case];
            let reference = ::regex::bytes::Regex::new(&format!("(?-u)({before}){pat}")).unwrap();
            let limit = if all { 0 } else { 1 };
            let want = reference.replacen(value.as_bytes(), limit, &b"${1}#"[..]);
            let mut p = konst(before, pat, "#", all);
            let got = p.desensitize(value.as_bytes());
            if value.is_empty() {
                prop_assert_eq!(got, None);
            } else {
                prop_assert_eq!(got.unwrap_or_else(|| value.clone().into_bytes()), want.into_owned());
            }
        }
    }
}
