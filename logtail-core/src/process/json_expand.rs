//! `processor_json` (LoongCollector's Go "extended" JSON processor): the
//! members of a JSON object in one field become fields, nested objects
//! expanded into `parent<connector>child` names.
//!
//! Names follow LoongCollector exactly: a member `k` at depth *d* under the
//! name `pre` is named `pre + connector + k`, where the connector of depth 1
//! is dropped by `IgnoreFirstConnector`; `pre` starts as the source key with
//! `UseSourceKeyAsPrefix`, empty otherwise; `Prefix` goes in front of every
//! final name. So with the defaults (`ExpandConnector: _`, no prefix) the
//! member `a` becomes `_a`; LoongCollector's own example sets
//! `ExpandConnector: ""` to get `a`.
//!
//! - `ExpandDepth` (0 = unlimited): an object at that depth is kept as its
//!   JSON text. Expansion stops at depth 64 whatever the option says (deeper
//!   objects are kept as text), so that hostile input cannot exhaust the stack.
//! - `ExpandArray`: an array's elements become `name[0]`, `name[1]`, …
//!   (objects inside expanded further, arrays inside kept as text);
//!   without it an array is kept as its JSON text.
//! - Strings are unescaped; numbers, `true`, `false`, `null` keep their text.
//!
//! The source is parsed by the native scanner of [`crate::process::json`]:
//! a value that does not start with one JSON object (leading whitespace
//! allowed; text after its closing brace is ignored, as Go's
//! `jsonparser.ObjectEach` stops there) is a parse failure and gives
//! **no** fields (LoongCollector's streaming parser may have added the
//! members before the error). On failure the source is kept when
//! `KeepSource` or `KeepSourceIfParseError` is set (both default true),
//! removed otherwise; an event left with nothing at all is dropped and counted.

use std::sync::Arc;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::json::{parse_array, parse_object, parse_object_prefix, JsonScratch};
use crate::process::{DropReason, Outcome, ParserStats, SourceOptions, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_json";

/// Expansion never goes deeper than this (deeper objects stay text).
pub const MAX_EXPAND_DEPTH: u32 = 64;

/// Options of `processor_json`, with LoongCollector's defaults.
///
/// Non-exhaustive: start from [`JsonExpandOptions::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonExpandOptions {
    /// `SourceKey` (required).
    pub source_key: String,
    /// `NoKeyError` (default true): an event without the source field
    /// counts as failed.
    pub no_key_error: bool,
    /// `ExpandDepth` (default 0 = unlimited; 1 = top-level members only).
    pub expand_depth: u32,
    /// `ExpandConnector` (default `_`).
    pub expand_connector: String,
    /// `Prefix` (default empty): put in front of every name.
    pub prefix: String,
    /// `KeepSource` (default true).
    pub keep_source: bool,
    /// `KeepSourceIfParseError` (default true).
    pub keep_source_if_parse_error: bool,
    /// `UseSourceKeyAsPrefix` (default false).
    pub use_source_key_as_prefix: bool,
    /// `IgnoreFirstConnector` (default false).
    pub ignore_first_connector: bool,
    /// `ExpandArray` (default false).
    pub expand_array: bool,
}

impl JsonExpandOptions {
    /// LoongCollector's defaults for the required `SourceKey`.
    pub fn new(source_key: impl Into<String>) -> Self {
        JsonExpandOptions {
            source_key: source_key.into(),
            no_key_error: true,
            expand_depth: 0,
            expand_connector: "_".into(),
            prefix: String::new(),
            keep_source: true,
            keep_source_if_parse_error: true,
            use_source_key_as_prefix: false,
            ignore_first_connector: false,
            expand_array: false,
        }
    }
}

/// A configuration error of `processor_json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonExpandError {
    /// `SourceKey` is empty.
    #[error("SourceKey: must not be empty (the field holding the JSON object)")]
    EmptySourceKey,
}

/// The `processor_json` step.
#[derive(Debug)]
pub struct JsonExpandParser {
    opts: JsonExpandOptions,
    source: SourceOptions,
    scratch: JsonScratch,
    nested: JsonScratch,
    stats: ParserStats,
}

/// What a member's value is, seen from its place in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    Other,
}

fn kind(src: &[u8], v: &FieldValue) -> Kind {
    let Some(r) = v.as_span() else {
        return Kind::Other; // an unescaped string
    };
    // A string's span starts after its opening quote.
    if r.start > 0 && src.get(r.start - 1) == Some(&b'"') {
        return Kind::Other;
    }
    match src.get(r.start) {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        _ => Kind::Other,
    }
}

/// `v` (relative to a slice at `base` of the source) relative to the source.
fn shift(v: FieldValue, base: usize) -> FieldValue {
    match v.as_span() {
        Some(r) => FieldValue::span(r.start + base, r.end + base),
        None => v,
    }
}

impl JsonExpandParser {
    /// Checks the options and builds the step.
    pub fn new(opts: JsonExpandOptions) -> Result<Self, JsonExpandError> {
        if opts.source_key.is_empty() {
            return Err(JsonExpandError::EmptySourceKey);
        }
        let source = SourceOptions {
            source_key: Arc::from(opts.source_key.as_str()),
            keep_source_on_success: opts.keep_source,
            ..Default::default()
        };
        Ok(JsonExpandParser {
            opts,
            source,
            scratch: JsonScratch::default(),
            nested: JsonScratch::default(),
            stats: ParserStats::default(),
        })
    }

    /// The fields `src` expands to (values relative to `src`), or `None`
    /// when it does not start with a JSON object (text after the object's
    /// closing brace is ignored, as Go's `jsonparser.ObjectEach` ignores
    /// it). Never panics.
    pub fn expand(&mut self, src: &[u8]) -> Option<Vec<(String, FieldValue)>> {
        let top = parse_object_prefix(src, &mut self.scratch)?;
        let pre = if self.opts.use_source_key_as_prefix {
            self.opts.source_key.clone()
        } else {
            String::new()
        };
        let mut out = Vec::with_capacity(top.len());
        for f in top {
            self.member(src, &pre, &f.key, f.value, 1, &mut out);
        }
        Some(out)
    }

    fn connector(&self, depth: u32) -> &str {
        if depth == 1 && self.opts.ignore_first_connector {
            ""
        } else {
            &self.opts.expand_connector
        }
    }

    fn name(&self, pre: &str, key: &str, depth: u32) -> String {
        let c = self.connector(depth);
        let mut s = String::with_capacity(self.opts.prefix.len() + pre.len() + c.len() + key.len());
        s.push_str(&self.opts.prefix);
        s.push_str(pre);
        s.push_str(c);
        s.push_str(key);
        s
    }

    fn at_limit(&self, depth: u32) -> bool {
        depth == self.opts.expand_depth || depth >= MAX_EXPAND_DEPTH
    }

    /// One member `key` at `depth` under `pre` (value relative to `src`).
    fn member(
        &mut self,
        src: &[u8],
        pre: &str,
        key: &str,
        v: FieldValue,
        depth: u32,
        out: &mut Vec<(String, FieldValue)>,
    ) {
        match kind(src, &v) {
            Kind::Object => self.object(src, pre, key, v, depth, out),
            Kind::Array if self.opts.expand_array && !self.at_limit(depth) => {
                let Some((r, elems)) = v
                    .as_span()
                    .and_then(|r| Some((r.clone(), src.get(r)?)))
                    .and_then(|(r, text)| Some((r, parse_array(text)?)))
                else {
                    out.push((self.name(pre, key, depth), v));
                    return;
                };
                for (i, e) in elems.into_iter().enumerate() {
                    let e = shift(e, r.start);
                    let k = format!("{key}[{i}]");
                    if kind(src, &e) == Kind::Object {
                        self.object(src, pre, &k, e, depth, out);
                    } else {
                        out.push((self.name(pre, &k, depth), e));
                    }
                }
            }
            _ => out.push((self.name(pre, key, depth), v)),
        }
    }

    fn object(
        &mut self,
        src: &[u8],
        pre: &str,
        key: &str,
        v: FieldValue,
        depth: u32,
        out: &mut Vec<(String, FieldValue)>,
    ) {
        let (Some(r), false) = (v.as_span(), self.at_limit(depth)) else {
            out.push((self.name(pre, key, depth), v));
            return;
        };
        let Some(members) = src
            .get(r.clone())
            .and_then(|s| parse_object(s, &mut self.nested))
        else {
            out.push((self.name(pre, key, depth), v));
            return;
        };
        let c = self.connector(depth);
        let new_pre = format!("{pre}{c}{key}");
        for m in members {
            let mv = shift(m.value, r.start);
            self.member(src, &new_pre, &m.key, mv, depth + 1, out);
        }
    }

    /// Processes one event; returns `false` when it is to be dropped (a
    /// failure removed its only field).
    pub fn process_event(&mut self, event: &mut Event) -> bool {
        let Some(src) = event.field(&self.opts.source_key) else {
            self.stats.processed += 1;
            if self.opts.no_key_error {
                self.stats.failed += 1;
            }
            return true;
        };
        match self.expand(src) {
            Some(fields) => {
                let fields = fields
                    .into_iter()
                    .map(|(k, value)| Field {
                        key: FieldKey::shared(Arc::from(k)),
                        value,
                    })
                    .collect();
                self.source
                    .apply(event, Outcome::Parsed(fields), &mut self.stats)
            }
            None => {
                self.stats.processed += 1;
                self.stats.failed += 1;
                if self.opts.keep_source || self.opts.keep_source_if_parse_error {
                    return true;
                }
                event.remove_field(&self.opts.source_key);
                if event.contents().all(|(k, v)| k == CONTENT && v.is_empty()) {
                    self.stats.dropped += 1;
                    return false;
                }
                true
            }
        }
    }
}

impl Parser for JsonExpandParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| self.process_event(e));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        (!self.opts.keep_source && !self.opts.keep_source_if_parse_error).then(|| DropReason {
            reason: format!(
                "their field {:?} was not a JSON object and was their only field",
                self.opts.source_key
            ),
            option: "KeepSourceIfParseError",
            remedy: "true keeps them as they were".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use bytes::Bytes;

    fn ev(s: &str) -> Event {
        Event::line(Bytes::from(s.to_string()), 0, Timestamp::default())
    }

    fn pairs(e: &Event) -> Vec<(String, String)> {
        e.contents()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The object of LoongCollector's own processor_json tests.
    const NESTED: &str = r#"{"k1":{"k2":{"k3":{"k4":{"k51":"51","k52":"52"},"k41":"41"}}},"k6":[{"x":"a"},{"x":"b"}],"k7":[]}"#;

    /// LoongCollector's test processor: SourceKey s_key, connector `-`,
    /// Prefix `j`, UseSourceKeyAsPrefix.
    fn go_test_opts() -> JsonExpandOptions {
        let mut o = JsonExpandOptions::new("s_key");
        o.expand_connector = "-".into();
        o.prefix = "j".into();
        o.use_source_key_as_prefix = true;
        o
    }

    fn run(o: JsonExpandOptions, value: &str) -> (bool, Event, ParserStats) {
        let mut p = JsonExpandParser::new(o).unwrap();
        let mut e = ev("");
        e.set_field("s_key", Bytes::from(value.to_string()));
        let keep = p.process_event(&mut e);
        (keep, e, p.stats())
    }

    #[test]
    fn documented_example_gives_key1_and_key2() {
        // processor-json.md: KeepSource false, ExpandDepth 1, ExpandConnector "".
        let mut o = JsonExpandOptions::new("content");
        o.keep_source = false;
        o.expand_depth = 1;
        o.expand_connector = String::new();
        let mut p = JsonExpandParser::new(o).unwrap();
        let mut e = ev(r#"{"key1": 123456, "key2": "abcd"}"#);
        assert!(p.process_event(&mut e));
        assert_eq!(pairs(&e), owned(&[("key1", "123456"), ("key2", "abcd")]));
    }

    #[test]
    fn names_as_loongcollector_tests_give_them() {
        let (_, e, _) = run(go_test_opts(), NESTED);
        assert_eq!(
            pairs(&e),
            owned(&[
                ("s_key", NESTED),
                ("js_key-k1-k2-k3-k4-k51", "51"),
                ("js_key-k1-k2-k3-k4-k52", "52"),
                ("js_key-k1-k2-k3-k41", "41"),
                ("js_key-k6", r#"[{"x":"a"},{"x":"b"}]"#),
                ("js_key-k7", "[]"),
            ])
        );

        let mut o = go_test_opts();
        o.ignore_first_connector = true;
        o.use_source_key_as_prefix = false;
        let (_, e, _) = run(o, NESTED);
        assert_eq!(pairs(&e)[1], ("jk1-k2-k3-k4-k51".into(), "51".into()));

        // ExpandDepth 1 + KeepSource false (TestKeepSourceIfParseError, case 1).
        let mut o = go_test_opts();
        o.expand_depth = 1;
        o.keep_source = false;
        let (_, e, _) = run(o, NESTED);
        assert_eq!(
            pairs(&e),
            owned(&[
                (
                    "js_key-k1",
                    r#"{"k2":{"k3":{"k4":{"k51":"51","k52":"52"},"k41":"41"}}}"#
                ),
                ("js_key-k6", r#"[{"x":"a"},{"x":"b"}]"#),
                ("js_key-k7", "[]"),
            ])
        );
    }

    #[test]
    fn a_parse_error_keeps_the_source_unless_told_otherwise() {
        // TestKeepSourceIfParseError, case 2.
        let mut o = go_test_opts();
        o.expand_depth = 1;
        o.keep_source = false;
        let (keep, e, st) = run(o.clone(), "hello");
        assert!(keep);
        assert_eq!(pairs(&e), owned(&[("s_key", "hello")]));
        assert_eq!((st.processed, st.failed), (1, 1));

        o.keep_source_if_parse_error = false;
        let mut p = JsonExpandParser::new(o).unwrap();
        let mut e = ev("");
        e.set_field("s_key", Bytes::from_static(b"hello"));
        e.set_field("other", Bytes::from_static(b"1"));
        assert!(p.process_event(&mut e), "another field remains");
        assert_eq!(pairs(&e), owned(&[("other", "1")]));
        let mut e = ev("");
        e.set_field("s_key", Bytes::from_static(b"[1]"));
        assert!(!p.process_event(&mut e), "nothing left: dropped");
        assert_eq!(p.stats().dropped, 1);
        assert!(p.drop_reason().is_some());
    }

    #[test]
    fn text_after_the_object_is_ignored_as_go_jsonparser_does() {
        let mut o = JsonExpandOptions::new("content");
        o.keep_source = false;
        o.expand_connector = String::new();
        let mut p = JsonExpandParser::new(o).unwrap();
        let mut e = ev(r#"  {"a":1,"b":{"c":"x"}} tail {"d":2}"#);
        assert!(p.process_event(&mut e));
        assert_eq!(pairs(&e), owned(&[("a", "1"), ("bc", "x")]));
        assert_eq!(p.stats().failed, 0);
        // Not an object first, or an object cut short: still failures.
        for bad in [r#"tail {"a":1}"#, r#"{"a":1"#, r#"{"a":1,} x"#] {
            let mut e = ev(bad);
            p.process_event(&mut e);
            assert_eq!(pairs(&e), owned(&[("content", bad)]), "{bad}");
        }
        assert_eq!(p.stats().failed, 3);
        // The native parser keeps refusing it (rapidjson's root must be singular).
        let mut sc = crate::process::json::JsonScratch::default();
        assert!(parse_object(br#"{"a":1} tail"#, &mut sc).is_none());
    }

    #[test]
    fn defaults_put_the_connector_first_and_arrays_expand_on_request() {
        let mut o = JsonExpandOptions::new("content");
        o.keep_source = false;
        let mut p = JsonExpandParser::new(o.clone()).unwrap();
        let mut e = ev(r#"{"a":{"b":1,"c":"x\ty"},"n":null}"#);
        p.process_event(&mut e);
        assert_eq!(
            pairs(&e),
            owned(&[("_a_b", "1"), ("_a_c", "x\ty"), ("_n", "null")])
        );

        o.expand_array = true;
        o.ignore_first_connector = true;
        let mut p = JsonExpandParser::new(o).unwrap();
        let mut e = ev(r#"{"k":[{"x":"a"},[1,2],"s",3]}"#);
        p.process_event(&mut e);
        assert_eq!(
            pairs(&e),
            owned(&[
                ("k[0]_x", "a"),
                ("k[1]", "[1,2]"),
                ("k[2]", "s"),
                ("k[3]", "3"),
            ])
        );
    }

    #[test]
    fn missing_key_counts_with_no_key_error_only() {
        let mut p = JsonExpandParser::new(JsonExpandOptions::new("nope")).unwrap();
        let mut e = ev("x");
        assert!(p.process_event(&mut e));
        assert_eq!(p.stats().failed, 1);
        let mut o = JsonExpandOptions::new("nope");
        o.no_key_error = false;
        let mut p = JsonExpandParser::new(o).unwrap();
        p.process_event(&mut e);
        assert_eq!(p.stats().failed, 0);
        assert_eq!(pairs(&e), owned(&[("content", "x")]));
        assert_eq!(
            JsonExpandParser::new(JsonExpandOptions::new("")).unwrap_err(),
            JsonExpandError::EmptySourceKey
        );
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_without_overflow() {
        let depth = 10_000;
        let text = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let mut o = JsonExpandOptions::new("content");
        o.expand_connector = ".".into();
        let mut p = JsonExpandParser::new(o).unwrap();
        let fields = p.expand(text.as_bytes()).unwrap();
        assert_eq!(fields.len(), 1);
        let (k, _) = &fields[0];
        assert_eq!(k.matches('a').count(), MAX_EXPAND_DEPTH as usize);
    }

    /// A naive reference over serde_json: the same names and values.
    fn reference(
        o: &JsonExpandOptions,
        v: &serde_json::Value,
        pre: &str,
        depth: u32,
        out: &mut Vec<(String, String)>,
    ) {
        let conn = |d: u32| {
            if d == 1 && o.ignore_first_connector {
                String::new()
            } else {
                o.expand_connector.clone()
            }
        };
        let limit = |d: u32| d == o.expand_depth || d >= MAX_EXPAND_DEPTH;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let serde_json::Value::Object(m) = v else {
            unreachable!()
        };
        for (k, v) in m {
            match v {
                serde_json::Value::Object(_) if !limit(depth) => {
                    reference(o, v, &format!("{pre}{}{k}", conn(depth)), depth + 1, out)
                }
                serde_json::Value::Array(a) if o.expand_array && !limit(depth) => {
                    for (i, e) in a.iter().enumerate() {
                        let k = format!("{k}[{i}]");
                        if e.is_object() && !limit(depth) {
                            reference(o, e, &format!("{pre}{}{k}", conn(depth)), depth + 1, out)
                        } else {
                            out.push((format!("{}{pre}{}{k}", o.prefix, conn(depth)), text(e)));
                        }
                    }
                }
                _ => out.push((format!("{}{pre}{}{k}", o.prefix, conn(depth)), text(v))),
            }
        }
    }

    proptest! {
        #[test]
        fn expansion_matches_a_naive_reference(
            v in json_object(),
            depth in 0u32..4,
            array in any::<bool>(),
            ignore in any::<bool>(),
        ) {
            let mut o = JsonExpandOptions::new("content");
            o.expand_depth = depth;
            o.expand_array = array;
            o.ignore_first_connector = ignore;
            o.prefix = "p".into();
            // Compact text: the raw text of nested values is then what
            // serde_json prints.
            let text = serde_json::to_string(&v).unwrap();
            let mut p = JsonExpandParser::new(o.clone()).unwrap();
            let got: Vec<(String, String)> = p
                .expand(text.as_bytes())
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(v.resolve(text.as_bytes())).into_owned()))
                .collect();
            let mut want = Vec::new();
            reference(&o, &v, "", 1, &mut want);
            prop_assert_eq!(got, want);
        }
    }

    use proptest::prelude::*;

    fn json_object() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i32>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\\t ]{0,6}".prop_map(serde_json::Value::String),
        ];
        let tree = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-e]{1,2}", tree, 0..5)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }
}
