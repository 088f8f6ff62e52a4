//! Multi-line events (LoongCollector's `Multiline` option of `input_file`),
//! sans-I/O.
//!
//! The [`Multiline`] assembler is handed the lines the framer found, one at
//! a time, as ranges into a buffer that starts at the reader's consumed
//! position. It groups them into events and, at the end of each buffer
//! ([`Multiline::finish`]), says how many bytes form *complete* events. The
//! lines of the event still being assembled are not consumed: the reader
//! presents those bytes again with the next buffer, exactly like an
//! incomplete line, so the read offset and checkpoints never point into an
//! event, and an event is never split by a rotation or a stop (a restart
//! reads it again from its first line). The assembler remembers those
//! lines and how far the framer got ([`Multiline::fed`]), so re-presented
//! bytes are neither framed nor matched twice.
//!
//! # Modes (LoongCollector's semantics)
//!
//! `custom`: patterns are matched at the start of the line and need not
//! cover all of it (LoongCollector anchors them with `^` and searches with
//! `match_continuous`; a trailing `.*` changes nothing). An empty pattern or
//! `.*` counts as not set. The valid combinations:
//!
//! | set | an event is |
//! |---|---|
//! | start | a start line and every following line up to the next start line |
//! | start + continue | a start line and the continue lines right after it |
//! | start + end | a start line and every following line up to and including an end line |
//! | continue + end | continue lines and the end line after them (or an end line alone) |
//! | end | every line up to and including an end line |
//!
//! With all three, the continue pattern is ignored; continue alone turns
//! multi-line off ([`MultilineRules::compile`] reports both as warnings,
//! as LoongCollector does). Lines that belong to no event are *unmatched*:
//! emitted alone (`single_line`, the default) or dropped (`discard`), and
//! counted either way. Like LoongCollector, when a pending event is forced
//! out (flush timeout, file closed) it is an event if only a start pattern
//! decides where events end, and unmatched lines otherwise (start + end,
//! continue + end and end need their end line).
//!
//! `JSON`: lines are joined until they hold a complete JSON object: the
//! event starts at a line whose first non-blank byte is `{` and ends with
//! the first line at whose end the braces outside strings balance.
//! Whitespace-only lines before an object join it; a line that does not
//! start an object is an event of its own (whatever the unmatched
//! treatment, as in LoongCollector). Deliberate differences: an object that
//! closes one brace too many ends its event at that line instead of
//! stalling the file, and an unfinished object that is forced out is one
//! event, not one event per line.
//!
//! # Limits
//!
//! An event whose lines would span more than `max_event_bytes` is emitted
//! at that size ([`AssembledKind::Cut`], counted) and the rest continues as
//! the next event; the assembler keeps its state across the cut. A restart
//! exactly at a cut loses that state: the rest is then assembled afresh.

use std::ops::Range;
use std::sync::Arc;

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};

use crate::process::dialect::Dialect;

/// `Multiline.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultilineMode {
    /// `custom`: start / continue / end patterns.
    #[default]
    Custom,
    /// `JSON`: lines are joined until they hold a complete JSON object.
    Json,
}

/// `Multiline.UnmatchedContentTreatment`: what happens to lines that
/// belong to no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnmatchedContentTreatment {
    /// `single_line`: each is emitted as an event of its own.
    #[default]
    SingleLine,
    /// `discard`: they are dropped (and counted).
    Discard,
}

/// The `Multiline` option of `input_file`.
///
/// Non-exhaustive: start from [`MultilineOptions::default`] (custom mode, no
/// patterns) and set fields.
///
/// ```
/// use logtail_core::file::MultilineOptions;
///
/// let mut m = MultilineOptions::default();
/// m.start_pattern = Some(r"\d{4}-\d{2}-\d{2}".to_owned());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MultilineOptions {
    /// `Mode` (default `custom`).
    pub mode: MultilineMode,
    /// `StartPattern`: the first line of an event.
    pub start_pattern: Option<String>,
    /// `ContinuePattern`: the lines after the first.
    pub continue_pattern: Option<String>,
    /// `EndPattern`: the last line of an event.
    pub end_pattern: Option<String>,
    /// `UnmatchedContentTreatment` (default `single_line`).
    pub unmatched: UnmatchedContentTreatment,
}

/// A pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("Multiline.{key}: invalid regular expression {pattern:?}: {reason}")]
pub struct MultilineError {
    /// `StartPattern`, `ContinuePattern` or `EndPattern`.
    pub key: &'static str,
    /// The pattern as configured.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A compiled pattern: is there a match starting at the first byte?
#[derive(Debug, Clone)]
enum Matcher {
    /// The fast path: a dense DFA walked by hand, stopping at the first
    /// match state (a prefix match is all that matters) or the dead state.
    Dfa {
        dfa: Box<dense::DFA<Vec<u32>>>,
        start: StateID,
        /// For the rare pattern the DFA gives up on (a quit byte).
        fallback: Box<meta::Regex>,
    },
    /// Patterns too big for a dense DFA.
    Meta(Box<meta::Regex>),
}

/// Largest dense DFA built for one pattern; larger ones use the meta engine.
const DFA_SIZE_LIMIT: usize = 8 << 20;

impl Matcher {
    fn new(key: &'static str, pattern: &str) -> Result<Matcher, MultilineError> {
        let err = |reason: String| MultilineError {
            key,
            pattern: pattern.to_string(),
            reason,
        };
        // Byte semantics, like LoongCollector's boost::regex on `char`:
        // `.` and classes match bytes, and lines need not be valid UTF-8.
        // Non-ASCII literals still match their UTF-8 bytes.
        let syn = syntax::Config::new().unicode(false).utf8(false);
        // boost's syntax (`[^[]`, a literal `{`…) in regex-syntax's terms.
        let translated = crate::process::dialect::translate(pattern, Dialect::Boost)
            .map_err(|e| err(e.to_string()))?;
        let pattern: &str = &translated;
        let meta = meta::Regex::builder()
            .syntax(syn)
            .configure(meta::Config::new().utf8_empty(false))
            .build(pattern)
            .map_err(|e| err(e.to_string()))?;
        let dfa = dense::Builder::new()
            .syntax(syn)
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .build(pattern);
        let Ok(dfa) = dfa else {
            return Ok(Matcher::Meta(Box::new(meta)));
        };
        // Every line is its own haystack starting at 0, so the start state
        // (which depends only on what precedes the search) is always this one.
        match dfa.start_state_forward(&Input::new(&b""[..]).anchored(Anchored::Yes)) {
            Ok(start) => Ok(Matcher::Dfa {
                dfa: Box::new(dfa),
                start,
                fallback: Box::new(meta),
            }),
            Err(_) => Ok(Matcher::Meta(Box::new(meta))),
        }
    }

    /// Whether the pattern matches a prefix of `line`.
    #[inline]
    fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Matcher::Dfa {
                dfa,
                start,
                fallback,
            } => {
                let mut sid = *start;
                for &b in line {
                    sid = dfa.next_state(sid, b);
                    if dfa.is_special_state(sid) {
                        if dfa.is_match_state(sid) {
                            return true;
                        }
                        if dfa.is_dead_state(sid) {
                            return false;
                        }
                        if dfa.is_quit_state(sid) {
                            return meta_match(fallback, line);
                        }
                    }
                }
                dfa.is_match_state(dfa.next_eoi_state(sid))
            }
            Matcher::Meta(re) => meta_match(re, line),
        }
    }
}

fn meta_match(re: &meta::Regex, line: &[u8]) -> bool {
    re.is_match(Input::new(line).anchored(Anchored::Yes).earliest(true))
}

/// LoongCollector treats an empty pattern and `.*` as not set.
fn effective(p: &Option<String>) -> Option<&str> {
    p.as_deref().filter(|p| !p.is_empty() && *p != ".*")
}

#[derive(Debug)]
enum Rules {
    Custom {
        start: Option<Matcher>,
        cont: Option<Matcher>,
        end: Option<Matcher>,
    },
    Json,
}

/// The compiled form of [`MultilineOptions`], shared by the assemblers of
/// every file of a configuration.
#[derive(Debug)]
pub struct MultilineRules {
    rules: Rules,
    unmatched: UnmatchedContentTreatment,
    warnings: Vec<String>,
}

impl MultilineRules {
    /// Compiles the patterns. `Ok(None)`: the options do not make lines
    /// multi-line (no pattern, or only a continue pattern; see
    /// [`MultilineRules::warnings_for`]), so lines stay single.
    pub fn compile(opts: &MultilineOptions) -> Result<Option<Arc<MultilineRules>>, MultilineError> {
        let warnings = Self::warnings_for(opts);
        let rules = match opts.mode {
            MultilineMode::Json => Rules::Json,
            MultilineMode::Custom => {
                let start = effective(&opts.start_pattern);
                let mut cont = effective(&opts.continue_pattern);
                let end = effective(&opts.end_pattern);
                if start.is_some() && end.is_some() {
                    cont = None;
                }
                if start.is_none() && end.is_none() {
                    return Ok(None);
                }
                let compile = |key, p: Option<&str>| p.map(|p| Matcher::new(key, p)).transpose();
                Rules::Custom {
                    start: compile("StartPattern", start)?,
                    cont: compile("ContinuePattern", cont)?,
                    end: compile("EndPattern", end)?,
                }
            }
        };
        Ok(Some(Arc::new(MultilineRules {
            rules,
            unmatched: opts.unmatched,
            warnings,
        })))
    }

    /// What LoongCollector would warn about in these options (patterns it
    /// ignores), for the configuration loader to report.
    pub fn warnings_for(opts: &MultilineOptions) -> Vec<String> {
        let mut w = Vec::new();
        if opts.mode == MultilineMode::Json {
            return w;
        }
        let (s, c, e) = (
            effective(&opts.start_pattern).is_some(),
            effective(&opts.continue_pattern).is_some(),
            effective(&opts.end_pattern).is_some(),
        );
        if s && c && e {
            w.push("Multiline: StartPattern, ContinuePattern and EndPattern are all set: ContinuePattern is ignored".into());
        } else if c && !s && !e {
            w.push("Multiline: only ContinuePattern is set: multi-line is off".into());
        }
        w
    }

    /// The warnings found when compiling.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Counters of what an assembler did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MultilineStats {
    /// Events emitted (of any number of lines), unmatched single lines included.
    pub events: u64,
    /// Lines that belonged to no event, emitted alone (`single_line`, and
    /// non-object lines in JSON mode).
    pub unmatched_lines: u64,
    /// Lines that belonged to no event and were dropped (`discard`).
    pub discarded_lines: u64,
    /// Bytes of those lines (without their newlines).
    pub discarded_bytes: u64,
    /// Events emitted early because they reached the size limit.
    pub cut_events: u64,
    /// Pending events forced out by [`Multiline::flush`].
    pub flushes: u64,
    /// JSON objects with a brace too many (emitted as they were).
    pub json_invalid: u64,
}

impl MultilineStats {
    /// The counts added since `before` (an earlier snapshot of the same assembler).
    pub fn since(&self, before: &MultilineStats) -> MultilineStats {
        MultilineStats {
            events: self.events - before.events,
            unmatched_lines: self.unmatched_lines - before.unmatched_lines,
            discarded_lines: self.discarded_lines - before.discarded_lines,
            discarded_bytes: self.discarded_bytes - before.discarded_bytes,
            cut_events: self.cut_events - before.cut_events,
            flushes: self.flushes - before.flushes,
            json_invalid: self.json_invalid - before.json_invalid,
        }
    }
}

/// Why a group of lines was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssembledKind {
    /// A complete event.
    Event,
    /// A line that belongs to no event, emitted alone (`single_line`).
    Unmatched,
    /// The first part of an event that reached the size limit.
    Cut,
    /// A pending event forced out by [`Multiline::flush`].
    Flushed,
}

/// One event: its lines, in order, as content ranges (without newlines)
/// into the current buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assembled<'a> {
    /// The lines; never empty.
    pub lines: &'a [Range<usize>],
    /// Why it was emitted.
    pub kind: AssembledKind,
}

impl Assembled<'_> {
    /// From the first line's start to the last line's end.
    pub fn span(&self) -> Range<usize> {
        let start = self.lines.first().map_or(0, |r| r.start);
        let end = self.lines.last().map_or(start, |r| r.end);
        start..end
    }
}

/// Whether consecutive lines are separated in `buf` by exactly `\n`, `\r\n`
/// or nothing (pieces of a split long line), so that the event is the
/// slice [`Assembled::span`] of the buffer. Lines with bytes dropped in
/// between (a truncated long line) are not.
pub fn is_contiguous(buf: &[u8], lines: &[Range<usize>]) -> bool {
    lines
        .windows(2)
        .all(|w| is_separator(buf.get(w[0].end..w[1].start)))
}

fn is_separator(gap: Option<&[u8]>) -> bool {
    matches!(gap, Some(b"" | b"\n" | b"\r\n"))
}

/// Appends the lines to `out` joined as in the file: the original
/// separator where it is `\n`, `\r\n` or nothing, a `\n` where bytes were
/// dropped in between.
#[doc(hidden)] // public for the fuzz targets only; not part of the API
pub fn join_lines(buf: &[u8], lines: &[Range<usize>], out: &mut Vec<u8>) {
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            let gap = buf.get(lines[i - 1].end..l.start);
            match gap {
                Some(g) if is_separator(Some(g)) => out.extend_from_slice(g),
                _ => out.push(b'\n'),
            }
        }
        out.extend_from_slice(buf.get(l.clone()).unwrap_or_default());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// No event begun (LoongCollector's SPLIT_UNMATCH).
    #[default]
    Idle,
    /// After a start line (SPLIT_BEGIN).
    Begin,
    /// After a continue line (SPLIT_CONTINUE).
    Continue,
}

#[derive(Debug, Clone, Copy, Default)]
struct JsonScan {
    in_object: bool,
    depth: i64,
    in_quote: bool,
    escape: bool,
}

#[derive(Debug, Clone, Default)]
struct State {
    phase: Phase,
    json: JsonScan,
    /// Lines of the event being assembled, relative to the current buffer.
    pending: Vec<Range<usize>>,
    max_event_bytes: usize,
    treatment: UnmatchedContentTreatment,
    stats: MultilineStats,
}

/// The multi-line assembler of one file. See the module docs.
///
/// ```
/// use logtail_core::file::{Framer, FramerOptions, Multiline, MultilineOptions, MultilineRules};
/// let mut opts = MultilineOptions::default();
/// opts.start_pattern = Some(r"\d".into());
/// let rules = MultilineRules::compile(&opts).unwrap().unwrap();
/// let mut ml = Multiline::new(rules, 1 << 20);
/// let mut framer = Framer::new(FramerOptions::default());
/// let buf = b"1 boom\n\tat a\n\tat b\n2 ok\n";
/// let mut events = Vec::new();
/// let mut lines = Vec::new();
/// let framed = framer.frame(&buf[ml.fed()..], |r| lines.push(r));
/// for l in lines {
///     ml.push(l.clone(), &buf[l], &mut |ev| events.push(buf[ev.span()].to_vec()));
/// }
/// let consumed = ml.finish(framed);
/// assert_eq!(events, vec![b"1 boom\n\tat a\n\tat b".to_vec()]);
/// assert_eq!(consumed, 19); // "2 ok\n" may go on: presented again next time
/// ```
#[derive(Debug, Clone)]
pub struct Multiline {
    rules: Arc<MultilineRules>,
    state: State,
    /// Bytes at the start of the next buffer already framed and pushed.
    fed: usize,
}

impl Multiline {
    /// An assembler for one file. Events spanning more than
    /// `max_event_bytes` (at least 1) are cut there.
    pub fn new(rules: Arc<MultilineRules>, max_event_bytes: usize) -> Multiline {
        let treatment = rules.unmatched;
        Multiline {
            rules,
            state: State {
                max_event_bytes: max_event_bytes.max(1),
                treatment,
                ..State::default()
            },
            fed: 0,
        }
    }

    /// How many bytes at the start of the next buffer were already framed
    /// and pushed: the caller frames only what follows (its framer is
    /// already there).
    pub fn fed(&self) -> usize {
        self.fed
    }

    /// Whether lines of an unfinished event are held.
    pub fn has_pending(&self) -> bool {
        !self.state.pending.is_empty()
    }

    /// What the assembler has done so far.
    pub fn stats(&self) -> MultilineStats {
        self.state.stats
    }

    /// Forgets the pending event and starts afresh (the bytes it was made
    /// of are gone, or the caller starts reading somewhere else).
    pub fn reset(&mut self) {
        self.state.pending.clear();
        self.state.phase = Phase::Idle;
        self.state.json = JsonScan::default();
        self.fed = 0;
    }

    /// Takes the next line: `line` is its content range in the buffer
    /// (which starts at the last consumed position), `text` what the
    /// patterns see (the line's bytes, decoded to UTF-8 if the file is not).
    /// Calls `out` for every event this line completes or cuts.
    #[inline]
    pub fn push(&mut self, line: Range<usize>, text: &[u8], out: &mut impl FnMut(Assembled<'_>)) {
        let st = &mut self.state;
        match &self.rules.rules {
            Rules::Json => st.push_json(line, text, out),
            Rules::Custom { start, cont, end } => {
                st.push_custom(start.as_ref(), cont.as_ref(), end.as_ref(), line, text, out)
            }
        }
    }

    /// The framer stopped at `framed` in this buffer. Returns how many
    /// bytes are consumed: everything before the pending event's first
    /// line, or `framed` when nothing is pending. The caller presents the
    /// bytes from there on again next time; line positions are rebased.
    pub fn finish(&mut self, framed: usize) -> usize {
        let st = &mut self.state;
        let consumed = st.pending.first().map_or(framed, |r| r.start);
        if consumed > 0 {
            for r in &mut st.pending {
                r.start -= consumed;
                r.end -= consumed;
            }
        }
        self.fed = framed.saturating_sub(consumed);
        consumed
    }

    /// Forces the pending event out: the flush timeout passed, or the file
    /// is done. Follow with [`Multiline::finish`].
    pub fn flush(&mut self, out: &mut impl FnMut(Assembled<'_>)) {
        let st = &mut self.state;
        if !st.pending.is_empty() {
            st.stats.flushes += 1;
            match &self.rules.rules {
                Rules::Json if st.json.in_object => st.emit(AssembledKind::Flushed, out),
                Rules::Json => st.single_all(out),
                Rules::Custom { start, end, .. } if start.is_some() && end.is_none() => {
                    st.emit(AssembledKind::Flushed, out)
                }
                Rules::Custom { .. } => st.unmatched_all(out),
            }
        }
        st.phase = Phase::Idle;
        st.json = JsonScan::default();
    }
}

fn matches(m: Option<&Matcher>, text: &[u8]) -> bool {
    m.is_some_and(|m| m.is_match(text))
}

impl State {
    /// Adds a line to the pending event, cutting the event first if the
    /// line would take it past the size limit.
    #[inline]
    fn append(&mut self, line: Range<usize>, out: &mut impl FnMut(Assembled<'_>)) {
        if let Some(first) = self.pending.first() {
            if line.end - first.start > self.max_event_bytes {
                self.stats.cut_events += 1;
                self.emit(AssembledKind::Cut, out);
            }
        }
        self.pending.push(line);
    }

    /// Emits the pending lines as one event (nothing if there are none).
    fn emit(&mut self, kind: AssembledKind, out: &mut impl FnMut(Assembled<'_>)) {
        if self.pending.is_empty() {
            return;
        }
        self.stats.events += 1;
        out(Assembled {
            lines: &self.pending,
            kind,
        });
        self.pending.clear();
    }

    /// A line that belongs to no event.
    fn unmatched(&mut self, line: Range<usize>, out: &mut impl FnMut(Assembled<'_>)) {
        match self.treatment {
            UnmatchedContentTreatment::SingleLine => self.single(line, out),
            UnmatchedContentTreatment::Discard => {
                self.stats.discarded_lines += 1;
                self.stats.discarded_bytes += line.len() as u64;
            }
        }
    }

    fn single(&mut self, line: Range<usize>, out: &mut impl FnMut(Assembled<'_>)) {
        self.stats.unmatched_lines += 1;
        self.stats.events += 1;
        out(Assembled {
            lines: std::slice::from_ref(&line),
            kind: AssembledKind::Unmatched,
        });
    }

    /// The pending lines belong to no event after all.
    fn unmatched_all(&mut self, out: &mut impl FnMut(Assembled<'_>)) {
        let pending = std::mem::take(&mut self.pending);
        for l in &pending {
            self.unmatched(l.clone(), out);
        }
        self.pending = pending;
        self.pending.clear();
    }

    fn single_all(&mut self, out: &mut impl FnMut(Assembled<'_>)) {
        let pending = std::mem::take(&mut self.pending);
        for l in &pending {
            self.single(l.clone(), out);
        }
        self.pending = pending;
        self.pending.clear();
    }

    /// LoongCollector's `LogSplit`, one line at a time; patterns are tried
    /// in its order (and only when needed).
    #[inline]
    fn push_custom(
        &mut self,
        start: Option<&Matcher>,
        cont: Option<&Matcher>,
        end: Option<&Matcher>,
        line: Range<usize>,
        text: &[u8],
        out: &mut impl FnMut(Assembled<'_>),
    ) {
        match self.phase {
            Phase::Idle => {
                if let Some(s) = start {
                    if s.is_match(text) {
                        self.emit(AssembledKind::Event, out);
                        self.append(line, out);
                        self.phase = Phase::Begin;
                    } else {
                        self.unmatched(line, out);
                    }
                    return;
                }
                if matches(cont, text) {
                    self.append(line, out);
                    self.phase = Phase::Continue;
                    return;
                }
                if let Some(e) = end {
                    if e.is_match(text) {
                        self.append(line, out);
                        self.emit(AssembledKind::Event, out);
                        return;
                    }
                    if cont.is_none() {
                        // End only: everything up to the end line.
                        self.append(line, out);
                        return;
                    }
                }
                self.unmatched_all(out);
                self.unmatched(line, out);
            }
            Phase::Begin => {
                if matches(cont, text) {
                    self.append(line, out);
                    self.phase = Phase::Continue;
                    return;
                }
                if let Some(e) = end {
                    // Start + end: any line until the end line.
                    self.append(line, out);
                    if e.is_match(text) {
                        self.emit(AssembledKind::Event, out);
                        self.phase = Phase::Idle;
                    }
                    return;
                }
                if matches(start, text) {
                    self.emit(AssembledKind::Event, out);
                    self.append(line, out);
                } else if cont.is_some() {
                    self.emit(AssembledKind::Event, out);
                    self.unmatched(line, out);
                    self.phase = Phase::Idle;
                } else {
                    self.append(line, out);
                }
            }
            Phase::Continue => {
                if matches(cont, text) {
                    self.append(line, out);
                    return;
                }
                if let Some(e) = end {
                    if e.is_match(text) {
                        self.append(line, out);
                        self.emit(AssembledKind::Event, out);
                    } else {
                        // Continue lines without their end line.
                        self.unmatched_all(out);
                        self.unmatched(line, out);
                    }
                    self.phase = Phase::Idle;
                    return;
                }
                self.emit(AssembledKind::Event, out);
                if matches(start, text) {
                    self.append(line, out);
                    self.phase = Phase::Begin;
                } else {
                    self.unmatched(line, out);
                    self.phase = Phase::Idle;
                }
            }
        }
    }

    /// LoongCollector's JSON reader (`FindJsonMatch`), one line at a time.
    fn push_json(&mut self, line: Range<usize>, text: &[u8], out: &mut impl FnMut(Assembled<'_>)) {
        let from = if self.json.in_object {
            0
        } else {
            match text.iter().position(|b| !matches!(b, b' ' | b'\t' | 0)) {
                None => {
                    // Blank: it joins the object that follows, if one does.
                    self.append(line, out);
                    return;
                }
                Some(i) if text[i] == b'{' => {
                    self.json = JsonScan {
                        in_object: true,
                        ..JsonScan::default()
                    };
                    i
                }
                Some(_) => {
                    self.single_all(out);
                    self.single(line, out);
                    return;
                }
            }
        };
        self.append(line, out);
        let j = &mut self.json;
        let mut invalid = false;
        for &b in &text[from..] {
            if j.escape {
                j.escape = false;
                continue;
            }
            match b {
                b'\\' => j.escape = true,
                b'"' => j.in_quote = !j.in_quote,
                b'{' if !j.in_quote => j.depth += 1,
                b'}' if !j.in_quote => {
                    j.depth -= 1;
                    if j.depth < 0 {
                        invalid = true;
                        break;
                    }
                }
                _ => {}
            }
        }
        if invalid {
            self.stats.json_invalid += 1;
        } else if j.escape {
            // A backslash at the end of the line escapes the newline.
            j.escape = false;
            return;
        } else if j.depth != 0 {
            return;
        }
        self.json = JsonScan::default();
        self.emit(AssembledKind::Event, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::framing::{Framer, FramerOptions};
    use proptest::prelude::*;

    fn opts(s: Option<&str>, c: Option<&str>, e: Option<&str>, discard: bool) -> MultilineOptions {
        MultilineOptions {
            mode: MultilineMode::Custom,
            start_pattern: s.map(Into::into),
            continue_pattern: c.map(Into::into),
            end_pattern: e.map(Into::into),
            unmatched: if discard {
                UnmatchedContentTreatment::Discard
            } else {
                UnmatchedContentTreatment::SingleLine
            },
        }
    }

    fn json_opts() -> MultilineOptions {
        MultilineOptions {
            mode: MultilineMode::Json,
            ..Default::default()
        }
    }

    /// (content, kind) of every event.
    type Out = Vec<(Vec<u8>, AssembledKind)>;

    /// Feeds `data` cut at `cuts`, re-presenting unconsumed bytes as the
    /// reader does, then flushes what is left (as at the flush timeout).
    fn chunked(
        o: &MultilineOptions,
        fo: FramerOptions,
        max: usize,
        data: &[u8],
        cuts: &[usize],
    ) -> (Out, MultilineStats) {
        let rules = MultilineRules::compile(o).unwrap().unwrap();
        let mut ml = Multiline::new(rules, max);
        let mut framer = Framer::new(fo);
        let mut got = Vec::new();
        let mut pos = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        ends.push(data.len());
        ends.sort_unstable();
        let mut lines = Vec::new();
        for end in ends {
            // The file only grows: a buffer holds at least what was fed.
            let end = end.max(pos + ml.fed());
            let buf = &data[pos..end];
            lines.clear();
            let from = ml.fed();
            let n = framer.frame(&buf[from..], |r| lines.push(r.start + from..r.end + from));
            for l in lines.drain(..) {
                ml.push(l.clone(), &buf[l], &mut |a| {
                    got.push((collect(buf, &a), a.kind))
                });
            }
            pos += ml.finish(from + n);
        }
        // End of data: the partial line, then the pending event.
        let buf = &data[pos..];
        let from = ml.fed();
        let mut tail = Vec::new();
        framer.flush_partial(&buf[from..], |r| tail.push(r.start + from..r.end + from));
        for l in tail {
            ml.push(l.clone(), &buf[l], &mut |a| {
                got.push((collect(buf, &a), a.kind))
            });
        }
        ml.flush(&mut |a| got.push((collect(buf, &a), a.kind)));
        assert_eq!(ml.finish(buf.len()), buf.len());
        assert!(!ml.has_pending());
        (got, ml.stats())
    }

    fn collect(buf: &[u8], a: &Assembled<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        join_lines(buf, a.lines, &mut v);
        if is_contiguous(buf, a.lines) {
            assert_eq!(v, &buf[a.span()]);
        }
        v
    }

    fn whole(o: &MultilineOptions, data: &[u8]) -> Out {
        chunked(o, FramerOptions::default(), usize::MAX, data, &[]).0
    }

    fn contents(out: &Out) -> Vec<String> {
        out.iter()
            .map(|(c, _)| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    /// A naive reference: LoongCollector's `LogSplit` over the whole file
    /// at once, as index arithmetic on a vector of lines (a transcription
    /// kept deliberately close to the original, without the assembler's
    /// incremental state), then joined with `\n`.
    fn reference(o: &MultilineOptions, data: &[u8]) -> Vec<(Vec<u8>, bool)> {
        // A plain unanchored search for `^(?:p)`: not the assembler's DFA walk.
        let re = |p: &Option<String>| {
            effective(p).map(|p| {
                meta::Regex::builder()
                    .syntax(syntax::Config::new().unicode(false).utf8(false))
                    .build(&format!("^(?:{p})"))
                    .unwrap()
            })
        };
        let (s, mut c, e) = (
            re(&o.start_pattern),
            re(&o.continue_pattern),
            re(&o.end_pattern),
        );
        if s.is_some() && e.is_some() {
            c = None;
        }
        let m = |r: &Option<meta::Regex>, l: &[u8]| r.as_ref().is_some_and(|r| r.is_match(l));
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let discard = o.unmatched == UnmatchedContentTreatment::Discard;
        let mut out: Vec<(Vec<u8>, bool)> = Vec::new();
        let join = |ls: &[&[u8]]| ls.join(&b'\n');
        let unmatched = |out: &mut Vec<(Vec<u8>, bool)>, ls: &[&[u8]]| {
            if !discard {
                out.extend(ls.iter().map(|l| (l.to_vec(), false)));
            }
        };
        // 0 = unmatch, 1 = begin, 2 = continue
        let mut state = 0;
        let mut merge: Vec<&[u8]> = Vec::new();
        for &l in &lines {
            match state {
                0 => {
                    if s.is_some() {
                        if m(&s, l) {
                            merge.push(l);
                            state = 1;
                        } else {
                            unmatched(&mut out, &[l]);
                        }
                    } else if m(&c, l) {
                        merge.push(l);
                        state = 2;
                    } else if e.is_some() && m(&e, l) {
                        merge.push(l);
                        out.push((join(&merge), true));
                        merge.clear();
                    } else if e.is_some() && c.is_none() {
                        merge.push(l);
                    } else {
                        unmatched(&mut out, &merge);
                        merge.clear();
                        unmatched(&mut out, &[l]);
                    }
                }
                1 => {
                    if m(&c, l) {
                        merge.push(l);
                        state = 2;
                    } else if e.is_some() {
                        merge.push(l);
                        if m(&e, l) {
                            out.push((join(&merge), true));
                            merge.clear();
                            state = 0;
                        }
                    } else if m(&s, l) {
                        out.push((join(&merge), true));
                        merge = vec![l];
                    } else if c.is_some() {
                        out.push((join(&merge), true));
                        merge.clear();
                        unmatched(&mut out, &[l]);
                        state = 0;
                    } else {
                        merge.push(l);
                    }
                }
                _ => {
                    if m(&c, l) {
                        merge.push(l);
                    } else if e.is_some() {
                        if m(&e, l) {
                            merge.push(l);
                            out.push((join(&merge), true));
                        } else {
                            unmatched(&mut out, &merge);
                            unmatched(&mut out, &[l]);
                        }
                        merge.clear();
                        state = 0;
                    } else {
                        out.push((join(&merge), true));
                        merge.clear();
                        if m(&s, l) {
                            merge.push(l);
                            state = 1;
                        } else {
                            unmatched(&mut out, &[l]);
                            state = 0;
                        }
                    }
                }
            }
        }
        if !merge.is_empty() {
            if s.is_some() && e.is_none() {
                out.push((join(&merge), true));
            } else {
                unmatched(&mut out, &merge);
            }
        }
        out
    }

    const JAVA: &[u8] = b"2024-01-01 10:00:00 INFO start\n\
2024-01-01 10:00:01 ERROR boom\n\
java.lang.IllegalStateException: bad\n\
\tat a.B.c(B.java:1)\n\
\tat a.B.d(B.java:2)\n\
Caused by: java.io.IOException: io\n\
\t... 2 more\n\
2024-01-01 10:00:02 INFO done\n";

    #[test]
    fn start_only_groups_stack_traces() {
        let o = opts(Some(r"\d{4}-\d{2}-\d{2}.*"), None, None, false);
        let got = whole(&o, JAVA);
        assert_eq!(
            contents(&got),
            vec![
                "2024-01-01 10:00:00 INFO start",
                "2024-01-01 10:00:01 ERROR boom\njava.lang.IllegalStateException: bad\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: java.io.IOException: io\n\t... 2 more",
                "2024-01-01 10:00:02 INFO done",
            ]
        );
        assert_eq!(got[2].1, AssembledKind::Flushed);
    }

    #[test]
    fn last_event_waits_for_the_next_start() {
        let o = opts(Some(r"\d"), None, None, false);
        let rules = MultilineRules::compile(&o).unwrap().unwrap();
        let mut ml = Multiline::new(rules, 1 << 20);
        let mut f = Framer::new(FramerOptions::default());
        let buf = b"1 a\n x\n2 b\n y\n";
        let mut lines = Vec::new();
        let n = f.frame(buf, |r| lines.push(r));
        let mut ev = Vec::new();
        for l in lines {
            ml.push(l.clone(), &buf[l], &mut |a| ev.push(a.span()));
        }
        assert_eq!(ev, vec![0..6]);
        assert_eq!(ml.finish(n), 7);
        assert_eq!(ml.fed(), 7);
        // Re-presented: "2 b\n y\n" plus what came since.
        let buf = b"2 b\n y\n z\n3 c\n";
        let mut lines = Vec::new();
        let n = f.frame(&buf[7..], |r| lines.push(r.start + 7..r.end + 7));
        let mut ev = Vec::new();
        for l in lines {
            ml.push(l.clone(), &buf[l], &mut |a| ev.push(buf[a.span()].to_vec()));
        }
        assert_eq!(ev, vec![b"2 b\n y\n z".to_vec()]);
        assert_eq!(ml.finish(7 + n), 10);
    }

    #[test]
    fn combinations_follow_loongcollector() {
        let data = b"S1\nC1\nC2\nx\nE1\nS2\nE2\nC3\nE3\ny\n";
        // start + continue: the stray x and everything after S2 but C is unmatched.
        let o = opts(Some("S"), Some("C"), None, false);
        assert_eq!(
            contents(&whole(&o, data)),
            ["S1\nC1\nC2", "x", "E1", "S2", "E2", "C3", "E3", "y"]
        );
        // start + end
        let o = opts(Some("S"), None, Some("E"), false);
        assert_eq!(
            contents(&whole(&o, data)),
            ["S1\nC1\nC2\nx\nE1", "S2\nE2", "C3", "E3", "y"]
        );
        // continue + end
        let o = opts(None, Some("C"), Some("E"), false);
        assert_eq!(
            contents(&whole(&o, data)),
            ["S1", "C1", "C2", "x", "E1", "S2", "E2", "C3\nE3", "y"]
        );
        // end only: y never sees its end line: unmatched at the flush.
        let o = opts(None, None, Some("E"), false);
        assert_eq!(
            contents(&whole(&o, data)),
            ["S1\nC1\nC2\nx\nE1", "S2\nE2", "C3\nE3", "y"]
        );
        // all three: continue ignored, like start + end
        let o = opts(Some("S"), Some("C"), Some("E"), false);
        assert_eq!(
            contents(&whole(&o, data)),
            ["S1\nC1\nC2\nx\nE1", "S2\nE2", "C3", "E3", "y"]
        );
        assert_eq!(MultilineRules::warnings_for(&o).len(), 1);
        // continue only, or nothing (".*" counts as nothing): not multi-line
        assert!(MultilineRules::compile(&opts(None, Some("C"), None, false))
            .unwrap()
            .is_none());
        assert!(
            MultilineRules::compile(&opts(Some(".*"), None, None, false))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn discard_counts() {
        let o = opts(Some("S"), None, None, true);
        let (got, st) = chunked(
            &o,
            FramerOptions::default(),
            usize::MAX,
            b"junk\nmore\nS1\na\n",
            &[],
        );
        assert_eq!(contents(&got), ["S1\na"]);
        assert_eq!(st.discarded_lines, 2);
        assert_eq!(st.discarded_bytes, 8);
    }

    #[test]
    fn patterns_are_anchored_prefixes() {
        let o = opts(Some(r"\[\d+\]"), None, None, false);
        let got = whole(&o, b"[1] a\nx [2] b\n[3]\n");
        assert_eq!(contents(&got), ["[1] a\nx [2] b", "[3]"]);
        // Non-ASCII literals and invalid UTF-8 lines.
        let o = opts(Some("错误"), None, None, false);
        let got = whole(&o, "错误 一\n\u{fffd}\n错误 二\n".as_bytes());
        assert_eq!(got.len(), 2);
        let got = whole(&o, b"\xe9\x94\x99\xe8\xaf\xaf x\n\xff\xfe\n");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        let e = MultilineRules::compile(&opts(Some("(unclosed"), None, None, false)).unwrap_err();
        assert_eq!(e.key, "StartPattern");
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let o = opts(Some("S"), None, None, false);
        let got = whole(&o, b"S1\r\n a\r\nS2\r\n b");
        assert_eq!(contents(&got), ["S1\r\n a\r", "S2\r\n b"]);
        let fo = FramerOptions {
            strip_cr: true,
            ..FramerOptions::default()
        };
        let (got, _) = chunked(&o, fo, usize::MAX, b"S1\r\n a\r\nS2\r\n b", &[3, 9]);
        assert_eq!(contents(&got), ["S1\r\n a", "S2\r\n b"]);
    }

    #[test]
    fn unicode_lines() {
        let o = opts(Some(r"\d"), None, None, false);
        let data = "1 日志\n  ünïcödé\n2 😀\n".as_bytes();
        let whole_out = whole(&o, data);
        assert_eq!(contents(&whole_out), ["1 日志\n  ünïcödé", "2 😀"]);
        for cut in 0..data.len() {
            assert_eq!(
                chunked(&o, FramerOptions::default(), usize::MAX, data, &[cut]).0,
                whole_out
            );
        }
    }

    #[test]
    fn one_mib_events() {
        let o = opts(Some("S"), None, None, false);
        let mut data = Vec::new();
        for e in 0..3 {
            data.extend_from_slice(format!("S{e}\n").as_bytes());
            while data.len() < (e + 1) * (1 << 20) {
                data.extend_from_slice(b"\tat some.frame(Code.java:1)\n");
            }
        }
        let fo = FramerOptions::default();
        let cuts: Vec<usize> = (1..40).map(|i| i * 97_531).collect();
        let (got, st) = chunked(&o, fo, 2 << 20, &data, &cuts);
        assert_eq!(got.len(), 3);
        assert_eq!(st.cut_events, 0);
        let total: usize = got.iter().map(|(c, _)| c.len() + 1).sum();
        assert_eq!(total, data.len());
        // With a 1 MiB limit the events are cut, nothing is lost.
        let (cut, st) = chunked(&o, fo, 1 << 20, &data, &cuts);
        assert!(st.cut_events > 0);
        assert!(cut.iter().all(|(c, _)| c.len() <= 1 << 20));
        let total: usize = cut.iter().map(|(c, _)| c.len() + 1).sum();
        assert_eq!(total, data.len());
    }

    #[test]
    fn json_mode() {
        let data = b"{\"a\": 1}\n{\n  \"b\": \"}{\\\"\",\n  \"c\": {\"d\": [1]}\n}\nnot json\n\n{\"e\":\n2}\n";
        let got = whole(&json_opts(), data);
        assert_eq!(
            contents(&got),
            [
                "{\"a\": 1}",
                "{\n  \"b\": \"}{\\\"\",\n  \"c\": {\"d\": [1]}\n}",
                "not json",
                "\n{\"e\":\n2}"
            ]
        );
        // A brace too many ends the event; an unfinished object is flushed whole.
        let (got, st) = chunked(
            &json_opts(),
            FramerOptions::default(),
            usize::MAX,
            b"{\"a\":1}}\n{\"b\":\n",
            &[],
        );
        assert_eq!(contents(&got), ["{\"a\":1}}", "{\"b\":"]);
        assert_eq!(st.json_invalid, 1);
        assert_eq!(got[1].1, AssembledKind::Flushed);
    }

    #[test]
    fn truncated_long_lines_are_joined_without_their_dropped_bytes() {
        let o = opts(Some("S"), None, None, false);
        let fo = FramerOptions {
            max_line_bytes: 4,
            long_lines: crate::file::LongLinePolicy::Truncate,
            strip_cr: false,
        };
        let (got, _) = chunked(&o, fo, usize::MAX, b"S1\nabcdefgh\nxy\nS2\n", &[5]);
        assert_eq!(contents(&got), ["S1\nabcd\nxy", "S2"]);
    }

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        let word = prop_oneof![
            Just(&b"S"[..]),
            Just(&b"C"[..]),
            Just(&b"E"[..]),
            Just(&b"x"[..]),
            Just(&b"SE"[..]),
            Just(&b"CE"[..]),
            Just(&b"\r"[..]),
            Just("é".as_bytes()),
        ];
        proptest::collection::vec(proptest::collection::vec(word, 0..4), 0..30).prop_map(|lines| {
            let mut v = Vec::new();
            for l in lines {
                for w in l {
                    v.extend_from_slice(w);
                }
                v.push(b'\n');
            }
            v
        })
    }

    fn pattern() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("S".to_string())),
            Just(Some("C".to_string())),
            Just(Some("E".to_string())),
            Just(Some("S|C".to_string())),
            Just(Some("x?E".to_string())),
            Just(Some(".*E$".to_string())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn assembler_matches_reference_and_chunking_changes_nothing(
            data in line_strategy(),
            s in pattern(), c in pattern(), e in pattern(),
            discard: bool,
            drop_tail: bool,
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let o = MultilineOptions {
                mode: MultilineMode::Custom,
                start_pattern: s,
                continue_pattern: c,
                end_pattern: e,
                unmatched: if discard { UnmatchedContentTreatment::Discard } else { UnmatchedContentTreatment::SingleLine },
            };
            let mut data = data;
            if drop_tail && data.last() == Some(&b'\n') {
                data.pop(); // missing final newline
            }
            let Some(_) = MultilineRules::compile(&o).unwrap() else {
                return Ok(());
            };
            let all = whole(&o, &data);
            let want = reference(&o, &data);
            let got: Vec<(Vec<u8>, bool)> = all.iter().map(|(c, k)| (c.clone(), *k != AssembledKind::Unmatched)).collect();
            prop_assert_eq!(&got, &want);
            let (cut, _) = chunked(&o, FramerOptions::default(), usize::MAX, &data, &cuts);
            prop_assert_eq!(&cut, &all);
        }

        #[test]
        fn chunking_changes_nothing_with_limits_and_json(
            data in proptest::collection::vec(prop_oneof![
                Just(b'{'), Just(b'}'), Just(b'"'), Just(b'\\'), Just(b'\n'), Just(b' '), Just(b'S'), Just(b'a')
            ], 0..300),
            json: bool,
            max_event in 1usize..64,
            max_line in 1usize..16,
            truncate: bool,
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let o = if json { json_opts() } else { opts(Some("S"), None, None, false) };
            let fo = FramerOptions {
                max_line_bytes: max_line,
                long_lines: if truncate { crate::file::LongLinePolicy::Truncate } else { crate::file::LongLinePolicy::Split },
                strip_cr: false,
            };
            let (all, st_all) = chunked(&o, fo, max_event, &data, &[]);
            let (cut, st_cut) = chunked(&o, fo, max_event, &data, &cuts);
            prop_assert_eq!(&cut, &all);
            prop_assert_eq!(st_cut, st_all);
            for (c, _) in &all {
                // A cut event spans at most the limit (or one line).
                prop_assert!(c.len() <= max_event.max(max_line));
            }
        }
    }
}
