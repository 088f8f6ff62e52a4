//! `processor_parse_regex_native`: split a field into fields with the
//! capture groups of a regular expression.
//!
//! As in LoongCollector, the pattern must match the **whole** field (boost's
//! `regex_match`): a match that stops before the end is a failure. Capture
//! group *i* becomes field `Keys[i]`; a group that did not take part in the
//! match gives an empty value. Values are spans of the source: no copies
//! and no reference counts.
//!
//! Matching is byte-oriented like LoongCollector's (boost on `char`): `.`
//! matches any byte **including `\n`** (boost's default, so multiline events
//! parse), and `\d`, `\w`, `\s` are ASCII classes. A pattern that needs
//! Unicode (a class such as `[中文]` or `\p{Han}`) is compiled in Unicode mode
//! instead. Look-around and back-references are not supported (the engine
//! is a finite automaton): such patterns are rejected when the parser is
//! built, never at run time.
//!
//! Engines, fastest first:
//! - the *run matcher*, for the most common shape of log patterns: literals
//!   and runs of one byte class (`\S+`, `[^"]*`, `\d{1,3}`, `.*`), each run
//!   followed by something that cannot start with a byte of its class (e.g.
//!   `(\S+) - \[([^\]]+)\] "([^"]*)"`). Such a pattern has exactly one way
//!   to match: every run takes the longest stretch of its class, found with
//!   `memchr` for negated classes. Same results as the automata, several
//!   times faster;
//! - the one-pass DFA when the pattern is one-pass (each byte decides the
//!   path: one scan, captures included);
//! - the `meta` engine otherwise (lazy DFA to find the match, then a bounded
//!   backtracker or PikeVM over the match for the captures).
//!
//! Differences from LoongCollector, on purpose:
//! - fewer capture groups than `Keys` is a build error (LoongCollector fails
//!   every line then); extra groups are ignored, as LoongCollector does;
//! - unparsable lines are kept by default (see [`SourceOptions`]).

use regex_automata::dfa::onepass;
use regex_automata::meta;
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{Hir, Look};

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::dialect::{translate, Dialect};
use crate::process::{Outcome, ParserStats, SourceOptions};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_parse_regex_native";

/// Options of `processor_parse_regex_native`.
///
/// Non-exhaustive: build it with [`RegexOptions::new`] and set the other
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegexOptions {
    /// `SourceKey`, `KeepingSourceWhenParseFail`,
    /// `KeepingSourceWhenParseSucceed`, `RenamedSourceKey`, `CopingRawLog`.
    pub source: SourceOptions,
    /// `Regex`: the pattern; it must match the whole source field.
    pub regex: String,
    /// `Keys`: one field name per capture group, in order. A single key
    /// containing commas (`["a,b,c"]`, the old Logtail console format) is
    /// split at the commas, as LoongCollector does.
    pub keys: Vec<String>,
}

impl RegexOptions {
    /// Options with the default source handling, for the required `Regex`
    /// and `Keys`.
    ///
    /// ```
    /// use logtail_core::process::regex::RegexOptions;
    ///
    /// let mut o = RegexOptions::new(r"(\S+) (\S+)", vec!["ip".into(), "method".into()]);
    /// o.source.keep_source_on_fail = false;
    /// ```
    pub fn new(regex: impl Into<String>, keys: Vec<String>) -> Self {
        RegexOptions {
            source: SourceOptions::default(),
            regex: regex.into(),
            keys,
        }
    }
}

/// Why a `processor_parse_regex_native` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegexError {
    /// `Regex` does not parse (or uses look-around / back-references).
    #[error("Regex: invalid pattern at offset {offset}: {message}")]
    InvalidPattern {
        /// Byte offset in the pattern where the problem starts.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// `Regex` parses but the automaton would be too large.
    #[error("Regex: pattern too large to compile: {0}")]
    TooLarge(String),
    /// The number of capture groups and of `Keys` differ.
    #[error("Keys: the Regex has {groups} capture group(s) but {keys} key(s) are given")]
    KeyCount {
        /// Capture groups in `Regex`.
        groups: usize,
        /// Entries in `Keys`.
        keys: usize,
    },
}

/// A pattern that did not parse: where and why (shared by the processors
/// that take regular expressions, each naming its own option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternError {
    /// Byte offset of the problem in the pattern.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a LoongCollector pattern into an [`Hir`]: byte mode first (ASCII
/// classes, `.` = any byte), Unicode mode when the pattern needs it.
/// `dot_nl`: whether `.` matches `\n` (boost: yes; RE2: no). `^` and `$`
/// match at the ends of the text only.
pub(crate) fn parse_pattern(pattern: &str, dot_nl: bool) -> Result<Hir, PatternError> {
    let mut s = Syntax::new(Dialect::Boost);
    s.dot_nl = dot_nl;
    s.parse(pattern)
}

/// How a pattern of one LoongCollector processor is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// The dialect it is written in (see [`crate::process::dialect`]).
    pub dialect: Dialect,
    /// `.` matches `\n`.
    pub dot_nl: bool,
    /// `^` and `$` also match after and before a `\n` (boost's default).
    pub multi_line: bool,
}

impl Syntax {
    /// `dialect`, `.` not matching `\n`, anchors at the text's ends.
    pub(crate) fn new(dialect: Dialect) -> Self {
        Syntax {
            dialect,
            dot_nl: false,
            multi_line: false,
        }
    }

    /// boost as LoongCollector's C++ processors run it: `.` matches `\n`,
    /// `^`/`$` match at line breaks.
    pub(crate) fn boost() -> Self {
        Syntax {
            dialect: Dialect::Boost,
            dot_nl: true,
            multi_line: true,
        }
    }

    /// Translates `pattern` from its dialect and parses it.
    ///
    /// boost: byte mode (ASCII classes, `.` = any byte), Unicode mode when
    /// the pattern needs it. Go: as Go's `regexp` reads it, `.` and negated
    /// classes match whole UTF-8 characters (an invalid byte matching as one,
    /// as Go's U+FFFD) while `\d`, `\w`, `\s` and `\b` stay ASCII.
    pub(crate) fn parse(&self, pattern: &str) -> Result<Hir, PatternError> {
        let translated = translate(pattern, self.dialect).map_err(|e| PatternError {
            offset: e.offset,
            message: e.to_string(),
        })?;
        let go = |t: &str| -> Result<Hir, PatternError> {
            let mut ast = regex_syntax::ast::parse::Parser::new()
                .parse(t)
                .map_err(|e| pattern_error(&e.into()))?;
            go::ascii_perl_classes(&mut ast);
            let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
                .unicode(true)
                .utf8(false)
                .dot_matches_new_line(self.dot_nl)
                .multi_line(self.multi_line)
                .build()
                .translate(t, &ast)
                .map_err(|e| pattern_error(&e.into()))?;
            Ok(go::invalid_bytes_and_ascii_words(hir))
        };
        let parse = |unicode: bool| {
            if self.dialect == Dialect::Go {
                return go(&translated);
            }
            regex_syntax::ParserBuilder::new()
                .unicode(unicode)
                .utf8(false)
                .dot_matches_new_line(self.dot_nl)
                .multi_line(self.multi_line)
                .build()
                .parse(&translated)
                .map_err(|e| pattern_error(&e))
        };
        parse(false).or_else(|_| parse(true)).map_err(|mut e| {
            if translated != pattern {
                e.message = format!(
                    "{} (offset in the pattern as translated to Rust syntax: {translated:?})",
                    e.message
                );
            }
            e
        })
    }
}

/// Go's reading of a pattern parsed in Unicode mode.
mod go {
    use regex_syntax::ast::{self, Ast, ClassSet, ClassSetItem};
    use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind, Look};

    /// Go's `\d`, `\s`, `\w` (ASCII: `[0-9]`, `[\t\n\f\r ]`,
    /// `[0-9A-Za-z_]`) as a bracketed class.
    fn perl(p: &ast::ClassPerl) -> ast::ClassBracketed {
        let span = p.span;
        let ascii = |kind| {
            ClassSetItem::Ascii(ast::ClassAscii {
                span,
                kind,
                negated: false,
            })
        };
        let item = match p.kind {
            ast::ClassPerlKind::Digit => ascii(ast::ClassAsciiKind::Digit),
            ast::ClassPerlKind::Word => ascii(ast::ClassAsciiKind::Word),
            ast::ClassPerlKind::Space => ClassSetItem::Union(ast::ClassSetUnion {
                span,
                items: ['\t', '\n', '\x0C', '\r', ' ']
                    .into_iter()
                    .map(|c| {
                        ClassSetItem::Literal(ast::Literal {
                            span,
                            kind: ast::LiteralKind::Verbatim,
                            c,
                        })
                    })
                    .collect(),
            }),
        };
        ast::ClassBracketed {
            span,
            negated: p.negated,
            kind: ClassSet::Item(item),
        }
    }

    fn set(s: &mut ClassSet) {
        match s {
            ClassSet::Item(i) => item(i),
            ClassSet::BinaryOp(op) => {
                set(&mut op.lhs);
                set(&mut op.rhs);
            }
        }
    }

    fn item(i: &mut ClassSetItem) {
        match i {
            ClassSetItem::Perl(p) => {
                let b = perl(p);
                *i = ClassSetItem::Bracketed(Box::new(b));
            }
            ClassSetItem::Bracketed(b) => set(&mut b.kind),
            ClassSetItem::Union(u) => u.items.iter_mut().for_each(item),
            _ => {}
        }
    }

    /// Rewrites every `\d`, `\s`, `\w` (and negations) of `ast` to Go's
    /// ASCII classes. (The depth is bounded by the parser's nest limit.)
    pub(super) fn ascii_perl_classes(a: &mut Ast) {
        match a {
            Ast::ClassPerl(p) => {
                let b = perl(p);
                *a = Ast::ClassBracketed(Box::new(b));
            }
            Ast::ClassBracketed(b) => set(&mut b.kind),
            Ast::Repetition(r) => ascii_perl_classes(&mut r.ast),
            Ast::Group(g) => ascii_perl_classes(&mut g.ast),
            Ast::Alternation(x) => x.asts.iter_mut().for_each(ascii_perl_classes),
            Ast::Concat(x) => x.asts.iter_mut().for_each(ascii_perl_classes),
            _ => {}
        }
    }

    /// Word boundaries made ASCII (Go's `\b`); a class that matches U+FFFD
    /// (`.`, negated classes) also matches one byte of invalid UTF-8, as
    /// Go decodes it to U+FFFD, after the whole characters it prefers.
    pub(super) fn invalid_bytes_and_ascii_words(h: Hir) -> Hir {
        match h.into_kind() {
            HirKind::Class(Class::Unicode(c)) => {
                let fffd = c
                    .ranges()
                    .iter()
                    .any(|r| r.start() <= '\u{FFFD}' && '\u{FFFD}' <= r.end());
                let class = Hir::class(Class::Unicode(c));
                if fffd {
                    let byte = ClassBytes::new([ClassBytesRange::new(0x80, 0xFF)]);
                    Hir::alternation(vec![class, Hir::class(Class::Bytes(byte))])
                } else {
                    class
                }
            }
            HirKind::Class(c) => Hir::class(c),
            HirKind::Look(l) => Hir::look(match l {
                Look::WordUnicode => Look::WordAscii,
                Look::WordUnicodeNegate => Look::WordAsciiNegate,
                Look::WordStartUnicode => Look::WordStartAscii,
                Look::WordEndUnicode => Look::WordEndAscii,
                Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
                Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
                other => other,
            }),
            HirKind::Repetition(mut r) => {
                r.sub = Box::new(invalid_bytes_and_ascii_words(*r.sub));
                Hir::repetition(r)
            }
            HirKind::Capture(mut c) => {
                c.sub = Box::new(invalid_bytes_and_ascii_words(*c.sub));
                Hir::capture(c)
            }
            HirKind::Concat(v) => {
                Hir::concat(v.into_iter().map(invalid_bytes_and_ascii_words).collect())
            }
            HirKind::Alternation(v) => {
                Hir::alternation(v.into_iter().map(invalid_bytes_and_ascii_words).collect())
            }
            HirKind::Literal(l) => Hir::literal(l.0),
            HirKind::Empty => Hir::empty(),
        }
    }
}

fn pattern_error(e: &regex_syntax::Error) -> PatternError {
    let (offset, message) = match e {
        regex_syntax::Error::Parse(p) => (p.span().start.offset, p.kind().to_string()),
        regex_syntax::Error::Translate(t) => (t.span().start.offset, t.kind().to_string()),
        other => (0, other.to_string()),
    };
    PatternError { offset, message }
}

/// `hir` followed by "end of text": with an anchored search this is
/// LoongCollector's whole-field match (`\z` rather than `$`, so an inline
/// `(?m)` in the pattern cannot weaken it).
pub(crate) fn full_match_hir(hir: Hir) -> Hir {
    Hir::concat(vec![hir, Hir::look(Look::End)])
}

/// Builds a `meta` regex from an already parsed pattern.
/// Byte patterns may match invalid UTF-8, so empty matches are not kept
/// to code point boundaries (`utf8_empty(false)`): with it on, an
/// unanchored search over invalid UTF-8 can trip an internal assertion of
/// the engine (found by fuzzing `processor_split_log_regex`).
pub(crate) fn build_meta(hir: &Hir) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .configure(meta::Config::new().utf8_empty(false))
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

/// A `meta` regex that accepts a field only if it matches it whole.
#[derive(Debug, Clone)]
pub(crate) struct FullMatcher {
    re: meta::Regex,
}

impl FullMatcher {
    /// Compiles `pattern` (boost dialect: `.` matches `\n`) for whole-field
    /// matching.
    pub(crate) fn new(pattern: &str) -> Result<Self, PatternError> {
        let hir = full_match_hir(Syntax::boost().parse(pattern)?);
        let re = build_meta(&hir).map_err(|message| PatternError { offset: 0, message })?;
        Ok(FullMatcher { re })
    }

    /// Whether `value` matches the pattern from its first to its last byte.
    pub(crate) fn matches(&self, value: &[u8]) -> bool {
        self.re
            .is_match(Input::new(value).anchored(Anchored::Yes).earliest(true))
    }
}

enum Engine {
    Runs(RunMatcher),
    OnePass {
        dfa: Box<onepass::DFA>,
        cache: onepass::Cache,
    },
    Meta {
        re: meta::Regex,
        cache: Box<meta::Cache>,
    },
}

/// The `processor_parse_regex_native` step.
pub struct RegexParser {
    source: SourceOptions,
    keys: Vec<FieldKey>,
    /// See [`SourceOptions::keys_are_distinct`].
    can_append: bool,
    engine: Engine,
    /// Capture slots (start, end per group, group 0 first), reused.
    slots: Vec<Option<NonMaxUsize>>,
    stats: ParserStats,
}

impl std::fmt::Debug for RegexParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegexParser")
            .field("source", &self.source)
            .field("keys", &self.keys)
            .field("engine", &self.engine())
            .field("stats", &self.stats)
            .finish()
    }
}

impl RegexParser {
    /// Compiles the options.
    pub fn new(options: RegexOptions) -> Result<Self, RegexError> {
        let mut keys = options.keys;
        if keys.len() == 1 && keys[0].contains(',') {
            keys = keys[0].split(',').map(str::to_owned).collect();
        }
        let hir =
            Syntax::boost()
                .parse(&options.regex)
                .map_err(|e| RegexError::InvalidPattern {
                    offset: e.offset,
                    message: e.message,
                })?;
        let groups = hir.properties().explicit_captures_len();
        // More groups than keys: the extra groups are ignored, as
        // LoongCollector does (existing configs rely on it). Fewer groups
        // than keys could never fill every key: refuse.
        if groups < keys.len() {
            return Err(RegexError::KeyCount {
                groups,
                keys: keys.len(),
            });
        }
        let run_matcher = RunMatcher::new(&hir);
        let hir = full_match_hir(hir);
        let engine = match run_matcher {
            Some(m) => Engine::Runs(m),
            None => match build_one_pass(&hir) {
                Some(dfa) => Engine::OnePass {
                    cache: dfa.create_cache(),
                    dfa: Box::new(dfa),
                },
                None => {
                    let re = build_meta(&hir).map_err(RegexError::TooLarge)?;
                    Engine::Meta {
                        cache: Box::new(re.create_cache()),
                        re,
                    }
                }
            },
        };
        let can_append = options
            .source
            .keys_are_distinct(keys.iter().map(String::as_str));
        Ok(RegexParser {
            can_append,
            source: options.source,
            keys: keys.iter().map(|k| FieldKey::interned(k)).collect(),
            engine,
            slots: vec![None; 2 * (groups + 1)],
            stats: ParserStats::default(),
        })
    }

    /// Which engine runs the pattern: `"runs"` (the run matcher),
    /// `"one-pass"` or `"meta"`.
    pub fn engine(&self) -> &'static str {
        match self.engine {
            Engine::Runs(_) => "runs",
            Engine::OnePass { .. } => "one-pass",
            Engine::Meta { .. } => "meta",
        }
    }

    /// Parses one source value: the fields on a whole-field match (values
    /// relative to `source`, see [`FieldValue::resolve`]), else
    /// [`Outcome::Failed`].
    pub fn parse(&mut self, source: &[u8]) -> Outcome {
        let input = Input::new(source).anchored(Anchored::Yes);
        let found = match &mut self.engine {
            Engine::Runs(m) => m.search(source, &mut self.slots),
            // An error here would mean an unsupported search mode, which
            // the anchored input rules out; count it as a failed parse.
            Engine::OnePass { dfa, cache } => matches!(
                dfa.try_search_slots(cache, &input, &mut self.slots),
                Ok(Some(_))
            ),
            Engine::Meta { re, cache } => re
                .search_slots_with(cache, &input, &mut self.slots)
                .is_some(),
        };
        if !found {
            return Outcome::Failed;
        }
        let mut fields = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            let span = (self.slots[2 * i + 2], self.slots[2 * i + 3]);
            let value = match span {
                (Some(s), Some(e)) if s.get() <= e.get() && e.get() <= source.len() => {
                    FieldValue::span(s.get(), e.get())
                }
                // A group that took no part in the match: empty, as in
                // LoongCollector.
                _ => FieldValue::default(),
            };
            fields.push(Field {
                key: key.clone(),
                value,
            });
        }
        Outcome::Parsed(fields)
    }

    /// Parses one event in place. Returns `false` when the event is to be
    /// dropped (a failure with `KeepingSourceWhenParseFail: false`).
    pub fn parse_event(&mut self, event: &mut Event) -> bool {
        let outcome = match event.field(&self.source.source_key) {
            None => Outcome::NoSource,
            Some(src) => self.parse(src),
        };
        if self.can_append {
            self.source.apply_distinct(event, outcome, &mut self.stats)
        } else {
            self.source.apply(event, outcome, &mut self.stats)
        }
    }
}

/// The one-pass DFA for `hir`, if the pattern is one-pass and small enough.
fn build_one_pass(hir: &Hir) -> Option<onepass::DFA> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().which_captures(thompson::WhichCaptures::All))
        .build_from_hir(hir)
        .ok()?;
    onepass::Builder::new().build_from_nfa(nfa).ok()
}

/// How a run finds the end of its stretch.
#[derive(Debug, Clone)]
enum Scan {
    /// Every byte is in the class (`.` with `\n`): to the end.
    All,
    /// All bytes but these one to three: `memchr` for the first of them.
    Not1(u8),
    Not2(u8, u8),
    Not3(u8, u8, u8),
    /// Any other class: a table lookup per byte.
    Table(Box<[bool; 256]>),
}

impl Scan {
    fn new(class: &[bool; 256]) -> Scan {
        let out: Vec<u8> = (0..=255u8).filter(|&b| !class[usize::from(b)]).collect();
        match out[..] {
            [] => Scan::All,
            [a] => Scan::Not1(a),
            [a, b] => Scan::Not2(a, b),
            [a, b, c] => Scan::Not3(a, b, c),
            _ => Scan::Table(Box::new(*class)),
        }
    }

    /// Length of the longest prefix of `hay` in the class.
    fn run_len(&self, hay: &[u8]) -> usize {
        match self {
            Scan::All => hay.len(),
            Scan::Not1(a) => memchr::memchr(*a, hay).unwrap_or(hay.len()),
            Scan::Not2(a, b) => memchr::memchr2(*a, *b, hay).unwrap_or(hay.len()),
            Scan::Not3(a, b, c) => memchr::memchr3(*a, *b, *c, hay).unwrap_or(hay.len()),
            Scan::Table(t) => hay
                .iter()
                .position(|&b| !t[usize::from(b)])
                .unwrap_or(hay.len()),
        }
    }
}

/// One step of a run-matcher pattern.
#[derive(Debug, Clone)]
enum Step {
    Literal(Box<[u8]>),
    Run {
        class: Box<[bool; 256]>,
        scan: Scan,
        min: usize,
        max: Option<usize>,
    },
    /// Capture group `i` (1-based) starts / ends here.
    Open(usize),
    Close(usize),
}

/// The matcher for patterns that are a sequence of literals and runs of
/// one byte class, where each run is followed by a literal, a non-empty run
/// of a disjoint class, or the end. Such a pattern matches a string in at
/// most one way (each run must stop exactly at the first byte outside its
/// class, since what follows cannot start with a byte inside it), so
/// greedy and lazy agree and no backtracking is ever needed.
#[derive(Debug, Clone)]
struct RunMatcher {
    steps: Vec<Step>,
}

impl RunMatcher {
    /// The matcher for `hir` (without the end anchor), if it has the shape.
    fn new(hir: &Hir) -> Option<RunMatcher> {
        let mut steps = Vec::new();
        flatten(hir, &mut steps, true)?;
        // Each run must be followed by something that cannot start inside it.
        for (i, step) in steps.iter().enumerate() {
            let Step::Run { class, .. } = step else {
                continue;
            };
            let next = steps[i + 1..]
                .iter()
                .find(|s| !matches!(s, Step::Open(_) | Step::Close(_)));
            let ok = match next {
                None => true,
                Some(Step::Literal(l)) => l.first().is_some_and(|&b| !class[usize::from(b)]),
                Some(Step::Run {
                    class: next, min, ..
                }) => *min > 0 && (0..256).all(|b| !(class[b] && next[b])),
                Some(_) => false,
            };
            if !ok {
                return None;
            }
        }
        Some(RunMatcher { steps })
    }

    /// Matches all of `hay`; fills `slots` (group 0 included) on success.
    fn search(&self, hay: &[u8], slots: &mut [Option<NonMaxUsize>]) -> bool {
        slots.fill(None);
        let mut pos = 0;
        for step in &self.steps {
            match step {
                Step::Literal(l) => {
                    if !hay[pos..].starts_with(l) {
                        return false;
                    }
                    pos += l.len();
                }
                Step::Run { scan, min, max, .. } => {
                    let n = scan.run_len(&hay[pos..]);
                    if n < *min || max.is_some_and(|m| n > m) {
                        return false;
                    }
                    pos += n;
                }
                Step::Open(g) => set_slot(slots, 2 * g, pos),
                Step::Close(g) => set_slot(slots, 2 * g + 1, pos),
            }
        }
        if pos != hay.len() {
            return false;
        }
        set_slot(slots, 0, 0);
        set_slot(slots, 1, pos);
        true
    }
}

fn set_slot(slots: &mut [Option<NonMaxUsize>], i: usize, pos: usize) {
    if let Some(s) = slots.get_mut(i) {
        *s = NonMaxUsize::new(pos);
    }
}

/// Appends `hir` as steps; `None` if it is not of the run-matcher shape.
fn flatten(hir: &Hir, out: &mut Vec<Step>, top: bool) -> Option<()> {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => out.push(Step::Literal(l.0.clone())),
        HirKind::Class(Class::Bytes(c)) => {
            let mut class = Box::new([false; 256]);
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    class[usize::from(b)] = true;
                }
            }
            out.push(Step::Run {
                scan: Scan::new(&class),
                class,
                min: 1,
                max: Some(1),
            });
        }
        HirKind::Repetition(rep) => {
            let mut inner = Vec::new();
            flatten(&rep.sub, &mut inner, false)?;
            let [Step::Run {
                class,
                scan,
                min: 1,
                max: Some(1),
            }] = <[Step; 1]>::try_from(inner).ok()?
            else {
                return None;
            };
            out.push(Step::Run {
                class,
                scan,
                min: usize::try_from(rep.min).ok()?,
                max: rep.max.map(usize::try_from).transpose().ok()?,
            });
        }
        HirKind::Capture(c) => {
            let g = usize::try_from(c.index).ok()?;
            out.push(Step::Open(g));
            flatten(&c.sub, out, false)?;
            out.push(Step::Close(g));
        }
        HirKind::Concat(items) => {
            for (i, item) in items.iter().enumerate() {
                // A leading `^` and a trailing `$` are implied by the
                // whole-field match.
                let implied = match item.kind() {
                    HirKind::Look(Look::Start | Look::StartLF | Look::StartCRLF) => i == 0,
                    HirKind::Look(Look::End | Look::EndLF | Look::EndCRLF) => i + 1 == items.len(),
                    _ => false,
                };
                if top && implied {
                    continue;
                }
                flatten(item, out, false)?;
            }
        }
        // Unicode classes, alternations, look-around: the automata.
        _ => return None,
    }
    Some(())
}

impl Parser for RegexParser {
    fn name(&self) -> &str {
        NAME
    }

    fn failure_kind(&self) -> crate::process::FailureKind {
        crate::process::FailureKind::RegexMatch
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| self.parse_event(e));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<crate::process::DropReason> {
        self.source.drop_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{CONTENT, RAW_LOG};
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn parser(re: &str, k: &[&str]) -> RegexParser {
        RegexParser::new(RegexOptions::new(re, keys(k))).unwrap()
    }

    fn ev(s: &str) -> Event {
        Event::line(
            Bytes::copy_from_slice(s.as_bytes()),
            0,
            Timestamp::default(),
        )
    }

    fn get<'a>(e: &'a Event, k: &str) -> Option<&'a [u8]> {
        e.field(k)
    }

    fn batch(lines: &[&str]) -> EventBatch {
        crate::process::test_batch(lines.iter().map(|l| ev(l)).collect())
    }

    #[test]
    fn parses_loongcollector_doc_example() {
        // The example of LoongCollector's documentation, escapes included.
        let re = r#"([\d\.]+) \S+ \S+ \[(\S+) \S+\] \"(\w+) ([^\\"]*)\" ([\d\.]+) (\d+) (\d+) (\d+|-) \"([^\\"]*)\" \"([^\\"]*)\""#;
        let k = [
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
        ];
        let mut p = parser(re, &k);
        let mut e = ev(
            r#"127.0.0.1 - - [07/Jul/2022:10:43:30 +0800] "POST /PutData?Category=YunOsAccountOpLog" 0.024 18204 200 37 "-" "aliyun-sdk-java""#,
        );
        assert!(p.parse_event(&mut e));
        assert_eq!(get(&e, "ip"), Some(&b"127.0.0.1"[..]));
        assert_eq!(get(&e, "time"), Some(&b"07/Jul/2022:10:43:30"[..]));
        assert_eq!(
            get(&e, "url"),
            Some(&b"/PutData?Category=YunOsAccountOpLog"[..])
        );
        assert_eq!(get(&e, "browser"), Some(&b"aliyun-sdk-java"[..]));
        assert_eq!(get(&e, CONTENT), None);
        assert_eq!(p.stats().processed, 1);
        assert_eq!(p.stats().failed, 0);
    }

    #[test]
    fn values_are_slices_of_the_source() {
        let mut p = parser(r"(\w+) (\w+)", &["a", "b"]);
        let src = Bytes::from_static(b"hello world");
        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!("no parse")
        };
        assert_eq!(f[1].value.as_span(), Some(6..11));
    }

    #[test]
    fn whole_line_required() {
        let mut p = parser(r"(\d+)", &["n"]);
        assert_eq!(p.parse(&Bytes::from_static(b"123abc")), Outcome::Failed);
        assert_eq!(p.parse(&Bytes::from_static(b"x123")), Outcome::Failed);
        assert!(matches!(
            p.parse(&Bytes::from_static(b"123")),
            Outcome::Parsed(_)
        ));
        // Leftmost-first would stop at "a"; a full match needs "ab".
        let mut p = parser(r"(a|ab)", &["x"]);
        let src = Bytes::from_static(b"ab");

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.resolve(&src), b"ab");
        // (?m) cannot turn the end anchor into a line end.
        let mut p = parser(r"(?m)(\w+)$", &["x"]);
        assert_eq!(p.parse(&Bytes::from_static(b"ab\ncd")), Outcome::Failed);
    }

    #[test]
    fn anchors_match_at_line_breaks_like_boost() {
        // The slow-query-log shape: `$` before each `\n` of the event.
        let re = "# Time: (\\S+)$\n# Query_time: ([\\d.]+)$\n([\\S\\s]+)";
        let mut p = parser(re, &["time", "qt", "sql"]);
        let src = Bytes::from_static(
            b"# Time: 2023-08-02T16:48:16Z\n# Query_time: 2.5\nuse crm;\nSELECT 1;",
        );
        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!("no parse")
        };
        assert_eq!(f[0].value.resolve(&src), b"2023-08-02T16:48:16Z");
        assert_eq!(f[2].value.resolve(&src), b"use crm;\nSELECT 1;");
        // `^` after a line break too.
        let mut p = parser(r"(\w+)\n^(\w+)", &["a", "b"]);
        assert!(matches!(p.parse(b"x\ny"), Outcome::Parsed(_)));
        // A leading ^ and a trailing $ keep the fastest engine.
        assert_eq!(parser(r"^(\S+) (.*)$", &["a", "b"]).engine(), "runs");
    }

    #[test]
    fn go_and_boost_class_syntax_loads() {
        let mut p = parser(r"\[([^[]*)\] (\S+)", &["a", "b"]);
        let Outcome::Parsed(f) = p.parse(b"[x y] z") else {
            panic!("no parse")
        };
        assert_eq!(f[0].value.resolve(b"[x y] z"), b"x y");
        let e = RegexParser::new(RegexOptions::new(r"(?<=a)(b)", keys(&["b"]))).unwrap_err();
        assert!(e.to_string().contains("look-behind"), "{e}");
    }

    #[test]
    fn failure_keeps_line_and_counts() {
        let mut p = parser(r"(\d+)", &["n"]);
        let mut b = batch(&["12", "nope", "34"]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 3);
        assert_eq!(get(&b.events[1], CONTENT), Some(&b"nope"[..]));
        assert_eq!(get(&b.events[2], "n"), Some(&b"34"[..]));
        let st = p.stats();
        assert_eq!((st.processed, st.failed, st.dropped), (3, 1, 0));
    }

    #[test]
    fn keeping_source_when_parse_fail_false_drops() {
        let mut o = RegexOptions::new(r"(\d+)", keys(&["n"]));
        o.source.keep_source_on_fail = false;
        let mut p = RegexParser::new(o).unwrap();
        let mut b = batch(&["12", "nope"]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(p.stats().dropped, 1);
    }

    #[test]
    fn keeping_source_on_success_rename_and_raw_log() {
        let mut o = RegexOptions::new(r"(\d+)", keys(&["n"]));
        o.source.keep_source_on_success = true;
        o.source.renamed_source_key = Some(Arc::from("raw"));
        o.source.copying_raw_log = true;
        let mut p = RegexParser::new(o).unwrap();
        let mut e = ev("42");
        p.parse_event(&mut e);
        assert_eq!(get(&e, "raw"), Some(&b"42"[..]));
        assert_eq!(get(&e, "n"), Some(&b"42"[..]));
        assert_eq!(get(&e, CONTENT), None);
        let mut e = ev("x");
        p.parse_event(&mut e);
        assert_eq!(get(&e, RAW_LOG), Some(&b"x"[..]));
        assert_eq!(get(&e, "raw"), Some(&b"x"[..]));
    }

    #[test]
    fn source_key_other_field_and_missing_source() {
        let mut o = RegexOptions::new(r"(\w+)-(\w+)", keys(&["a", "b"]));
        o.source.source_key = Arc::from("msg");
        let mut p = RegexParser::new(o).unwrap();
        let mut e = ev("line");
        e.set_field("msg", Bytes::from_static(b"x-y"));
        assert!(p.parse_event(&mut e));
        assert_eq!(get(&e, "a"), Some(&b"x"[..]));
        assert_eq!(get(&e, "msg"), None);
        assert_eq!(get(&e, CONTENT), Some(&b"line"[..]));
        // No such field: left alone, not a failure.
        let mut e = ev("line");
        assert!(p.parse_event(&mut e));
        assert_eq!(e, ev("line"));
        assert_eq!(p.stats().failed, 0);
    }

    #[test]
    fn key_count_mismatch_is_a_build_error() {
        let err = RegexParser::new(RegexOptions::new(r"(\w+)", keys(&["a", "b"]))).unwrap_err();
        assert_eq!(err, RegexError::KeyCount { groups: 1, keys: 2 });
        assert_eq!(
            err.to_string(),
            "Keys: the Regex has 1 capture group(s) but 2 key(s) are given"
        );
        // Extra groups are ignored, as LoongCollector does.
        let mut p = RegexParser::new(RegexOptions::new(r"(\w+) (\w+)", keys(&["a"]))).unwrap();
        match p.parse(b"one two") {
            Outcome::Parsed(f) => {
                assert_eq!(f.len(), 1);
                assert_eq!(f[0].value.resolve(b"one two"), b"one");
            }
            other => panic!("expected a parse, got {other:?}"),
        }
        // Non-capturing groups do not count.
        assert!(RegexParser::new(RegexOptions::new(r"(?:a)(b)", keys(&["b"]))).is_ok());
    }

    #[test]
    fn comma_separated_single_key_is_split() {
        let mut p = parser(r"(\w) (\w) (\w)", &["a,b,c"]);
        let mut e = ev("x y z");
        p.parse_event(&mut e);
        assert_eq!(get(&e, "c"), Some(&b"z"[..]));
    }

    #[test]
    fn invalid_pattern_names_option_and_offset() {
        let err = RegexParser::new(RegexOptions::new(r"(\w+) [a-", keys(&["a"]))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("Regex: invalid pattern at offset 6: "),
            "{msg}"
        );
        let err = RegexParser::new(RegexOptions::new(r"(?<=a)(b)", keys(&["b"]))).unwrap_err();
        assert!(
            err.to_string().starts_with("Regex: invalid pattern"),
            "{err}"
        );
    }

    #[test]
    fn fastest_engine_that_fits() {
        assert_eq!(
            parser(r#"(\S+) - \[([^\]]+)\] "([^"]*)""#, &["a", "b", "c"]).engine(),
            "runs"
        );
        assert_eq!(parser(r"^(\S+) (.*)$", &["a", "b"]).engine(), "runs");
        assert_eq!(parser(r"(\w+|-) (\d+)", &["a", "b"]).engine(), "one-pass");
        // `\S+"`: a quote may continue \S+ or end it: not one-pass.
        let mut p = parser(r#"(\S+) "(\S+)""#, &["a", "b"]);
        assert_eq!(p.engine(), "meta");
        let mut e = ev(r#"x "y"z""#);
        p.parse_event(&mut e);
        assert_eq!(get(&e, "b"), Some(&br#"y"z"#[..]));
    }

    #[test]
    fn crlf_stays_in_content() {
        // The `\r` of a CRLF line is content: `\w+` cannot match it.
        let mut p = parser(r"(\w+) (\w+)", &["a", "b"]);
        assert_eq!(p.parse(&Bytes::from_static(b"a b\r")), Outcome::Failed);
        let mut p = parser(r"(\w+) (\w+)\r?", &["a", "b"]);
        let src = Bytes::from_static(b"a b\r");

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[1].value.resolve(&src), b"b");
        let mut p = parser(r"(.*)", &["all"]);
        let src = Bytes::from_static(b"a b\r");

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.resolve(&src), b"a b\r");
    }

    #[test]
    fn dot_matches_newline_like_boost() {
        let mut p = parser(r"(\S+) (.*)", &["a", "rest"]);
        let src = Bytes::from_static(b"x line1\n\tat y");

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[1].value.resolve(&src), b"line1\n\tat y");
    }

    #[test]
    fn empty_fields_and_unmatched_groups() {
        let mut p = parser(r"(\w*),(\w*)(?:;(\w+))?", &["a", "b", "c"]);
        let src = Bytes::from_static(b",");

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert!(f.iter().all(|f| f.value.is_empty()));
        // An empty line matches an all-optional pattern.
        let mut p = parser(r"(a*)", &["a"]);
        assert!(matches!(p.parse(&Bytes::new()), Outcome::Parsed(_)));
    }

    #[test]
    fn quotes_inside_quotes() {
        let mut p = parser(r#""((?:[^"]|"")*)" (\w+)"#, &["q", "w"]);
        let src = Bytes::from_static(br#""say ""hi""" ok"#);

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.resolve(&src), br#"say ""hi"""#);
    }

    #[test]
    fn unicode_values_and_patterns() {
        let mut p = parser(r"(\S+) (.+)", &["a", "b"]);
        let src = Bytes::from("héllo 世界 ✓".as_bytes().to_vec());

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.resolve(&src), "héllo".as_bytes());
        assert_eq!(f[1].value.resolve(&src), "世界 ✓".as_bytes());
        // A pattern with a non-ASCII class falls back to Unicode mode.
        let mut p = parser(r"([中文]+):(\w+)", &["zh", "w"]);
        let src = Bytes::from("中文中:ok".as_bytes().to_vec());

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.resolve(&src), "中文中".as_bytes());
        // Invalid UTF-8 in the line is parsed, not rejected.
        let mut p = parser(r"(\S+) (\S+)", &["a", "b"]);
        assert!(matches!(
            p.parse(&Bytes::from_static(b"\xff\xfe \x80")),
            Outcome::Parsed(_)
        ));
    }

    #[test]
    fn one_mib_field() {
        let big = "x".repeat(1 << 20);
        let line = format!("k={big} end");
        let mut p = parser(r"k=(\w+) (\w+)", &["v", "e"]);
        let src = Bytes::from(line.into_bytes());

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.len(), 1 << 20);
        assert_eq!(f[1].value.resolve(&src), b"end");
        let mut p = parser(r#"(\S+) "(\S+)" (.*)"#, &["a", "b", "c"]);
        assert_eq!(p.engine(), "meta");
        let line = format!("a \"{big}\" {big}");
        let src = Bytes::from(line.into_bytes());

        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[2].value.len(), 1 << 20);
    }

    const PATTERNS: &[&str] = &[
        r"(\w+) (\w+)",
        r"(\S+) - (\S+) \[([^\]]*)\] (.*)",
        r#"(\S*) "([^"]*)" (\d+)"#,
        r#"(\S+) "(\S+)" (.*)"#,
        r"([a-c]*)(b*)(c?)",
        r"(a|ab)(c|bcd)(.*)",
        r"(?i)(GET|post) (/\S*)(?: (\d+))?",
        r"(.*),(.*)",
        r"(x+x+)+y",
        r"^(\d{1,3})\.(\d+)-([^-]*)",
        r"(a*)b(c+)(.*)",
        r"([ab]?)c(\S{2})",
        r"(\w+)(?:, (\w+))",
        r"(.)(.)",
        r"^(\S+) (.*)$",
        r"(a)$",
    ];

    proptest! {
        #[test]
        fn agrees_with_regex_crate(
            pat in 0..PATTERNS.len(),
            line in "[ -~]{0,40}|[abcxy\" ,\\-\\[\\]0-9GETpost/]{0,30}",
        ) {
            let pattern = PATTERNS[pat];
            let reference =
                ::regex::bytes::Regex::new(&format!(r"(?s-u)\A(?:{pattern})\z")).unwrap();
            let n = reference.captures_len() - 1;
            let names: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let mut p = RegexParser::new(RegexOptions::new(pattern, names)).unwrap();
            let src = Bytes::from(line.into_bytes());
            let got = p.parse(&src);
            match reference.captures(&src) {
                None => prop_assert_eq!(got, Outcome::Failed),
                Some(c) => {
                    let Outcome::Parsed(f) = got else {
                        return Err(TestCaseError::fail("reference matched, parser did not"));
                    };
                    prop_assert_eq!(f.len(), n);
                    for (i, field) in f.iter().enumerate() {
                        let want = c.get(i + 1).map(|m| m.as_bytes()).unwrap_or(b"");
                        prop_assert_eq!(field.value.resolve(&src), want);
                    }
                }
            }
        }
    }
}
