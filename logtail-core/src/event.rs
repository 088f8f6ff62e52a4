//! The event model: one log line (or, after parsing, one record) with the
//! place it came from and its time.
//!
//! Lines are [`Bytes`] slices of the chunk the reader copied out of the
//! mapped file, so building an event never copies the line itself.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, Range};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::ack::AckToken;

/// A point in time with nanosecond precision, as seconds and nanoseconds
/// since the Unix epoch (the shape of SLS `Time` + `Time_ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// Converts a [`SystemTime`]; times before the epoch become negative seconds.
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let mut secs = -(d.as_secs() as i64);
                let mut nanos = d.subsec_nanos();
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timestamp { secs, nanos }
            }
        }
    }
}

/// The name of a field: cheap to clone and compare, and a `&str` by
/// [`Deref`].
///
/// Two kinds, chosen by where the name comes from:
/// - names from the configuration (`Keys`, `__column3__`, …) are
///   [interned](FieldKey::interned): a `&'static str` kept once per distinct
///   name for the life of the process (reloading a config adds nothing), so
///   cloning one is a copy;
/// - names from the data (JSON keys) are [shared](FieldKey::shared)
///   `Arc<str>`s, freed with the last event that uses them: data must not
///   grow a global table.
#[derive(Clone)]
pub struct FieldKey(KeyRepr);

/// A thin `&'static &'static str` rather than a `&'static str`: the key
/// is then 16 bytes (the size of the `Arc<str>`), not 24, and a field 48.
#[derive(Clone)]
enum KeyRepr {
    Static(&'static &'static str),
    Shared(Arc<str>),
}

/// Interned names; only grows by names not seen before.
static INTERNED: Mutex<BTreeMap<&'static str, &'static &'static str>> = Mutex::new(BTreeMap::new());

impl FieldKey {
    /// A name that is a string constant: `FieldKey::from_static(&"level")`
    /// (nothing is allocated or interned).
    pub const fn from_static(name: &'static &'static str) -> Self {
        FieldKey(KeyRepr::Static(name))
    }

    /// The interned copy of `name`: allocated once per distinct name in the
    /// process and never freed. Use it for names from configuration, never
    /// for names taken from log data (use [`FieldKey::shared`]).
    pub fn interned(name: &str) -> Self {
        FieldKey(KeyRepr::Static(Self::intern(name)))
    }

    /// The interned copy of `name` (see [`FieldKey::interned`]);
    /// `FieldKey::from_static` of it is the interned key.
    pub fn intern(name: &str) -> &'static &'static str {
        // A poisoned lock still holds a valid map: entries are only added.
        let mut map = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&s) = map.get(name) {
            return s;
        }
        let s: &'static str = Box::leak(Box::from(name));
        let s: &'static &'static str = Box::leak(Box::new(s));
        map.insert(s, s);
        s
    }

    /// A reference-counted name, freed with its last clone (names from data).
    pub fn shared(name: Arc<str>) -> Self {
        FieldKey(KeyRepr::Shared(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            KeyRepr::Static(s) => s,
            KeyRepr::Shared(s) => s,
        }
    }

    /// Whether both are the same allocation (so certainly equal); a cheap
    /// first test before comparing text.
    pub fn ptr_eq(&self, other: &FieldKey) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        a.len() == b.len() && std::ptr::eq(a.as_ptr(), b.as_ptr())
    }
}

impl Deref for FieldKey {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for FieldKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for FieldKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for FieldKey {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.as_str() == other.as_str()
    }
}

impl Eq for FieldKey {}

impl PartialEq<str> for FieldKey {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FieldKey {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for FieldKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for FieldKey {
    /// The interned name (a lookup in the global table; hot paths keep the
    /// key instead).
    fn from(name: &'static str) -> Self {
        FieldKey::interned(name)
    }
}

impl From<Arc<str>> for FieldKey {
    fn from(name: Arc<str>) -> Self {
        FieldKey::shared(name)
    }
}

impl From<&Arc<str>> for FieldKey {
    fn from(name: &Arc<str>) -> Self {
        FieldKey::shared(Arc::clone(name))
    }
}

/// The value of a field: a span of bytes held elsewhere, or bytes of its
/// own.
///
/// Parsers return values whose spans are relative to the source they
/// parsed ([`FieldValue::resolve`] with that source gives the bytes); in an
/// [`Event`] spans are relative to bytes the event keeps alive (its
/// original line), so a field costs no reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldValue(ValueRepr);

#[derive(Clone, PartialEq, Eq)]
enum ValueRepr {
    Span { start: usize, end: usize },
    Owned(Bytes),
}

impl FieldValue {
    /// `source[start..end]` of the source the value belongs to.
    pub(crate) fn span(start: usize, end: usize) -> Self {
        FieldValue(ValueRepr::Span { start, end })
    }

    /// The bytes, given the source a span refers to. A span outside
    /// `source` (a value resolved against the wrong source) gives nothing.
    pub fn resolve<'a>(&'a self, source: &'a [u8]) -> &'a [u8] {
        match &self.0 {
            ValueRepr::Span { start, end } => source.get(*start..*end).unwrap_or_default(),
            ValueRepr::Owned(b) => b,
        }
    }

    /// The value as [`Bytes`]: a slice of `source` for a span (empty if it
    /// lies outside), its own bytes otherwise.
    pub fn to_bytes(&self, source: &Bytes) -> Bytes {
        match &self.0 {
            ValueRepr::Span { start, end } if start <= end && *end <= source.len() => {
                source.slice(*start..*end)
            }
            ValueRepr::Span { .. } => Bytes::new(),
            ValueRepr::Owned(b) => b.clone(),
        }
    }

    /// The range of the source the value is, if it is a span (not a copy).
    pub fn as_span(&self) -> Option<Range<usize>> {
        match &self.0 {
            ValueRepr::Span { start, end } => Some(*start..*end),
            ValueRepr::Owned(_) => None,
        }
    }

    /// The value's length in bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            ValueRepr::Span { start, end } => end.saturating_sub(*start),
            ValueRepr::Owned(b) => b.len(),
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value with its spans moved into the frame of an event.
    pub(crate) fn rebase(self, base: &Base) -> FieldValue {
        match (self.0, base) {
            (ValueRepr::Span { start, end }, Base::At { offset, len }) => {
                if start <= end && end <= *len {
                    FieldValue::span(offset + start, offset + end)
                } else {
                    FieldValue::default()
                }
            }
            (ValueRepr::Span { start, end }, Base::Owned(src)) => {
                FieldValue::from(FieldValue::span(start, end).to_bytes(src))
            }
            (owned, _) => FieldValue(owned),
        }
    }
}

impl Default for FieldValue {
    fn default() -> Self {
        FieldValue(ValueRepr::Owned(Bytes::new()))
    }
}

impl From<Bytes> for FieldValue {
    fn from(b: Bytes) -> Self {
        FieldValue(ValueRepr::Owned(b))
    }
}

impl From<Vec<u8>> for FieldValue {
    fn from(v: Vec<u8>) -> Self {
        FieldValue(ValueRepr::Owned(Bytes::from(v)))
    }
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ValueRepr::Span { start, end } => write!(f, "Span({start}..{end})"),
            ValueRepr::Owned(b) => write!(f, "Owned({b:?})"),
        }
    }
}

/// Where a parsed source lies, to move source-relative spans into an
/// event's frame.
#[derive(Debug)]
pub(crate) enum Base {
    /// `len` bytes at `offset` of the event's retained bytes.
    At {
        /// Start of the source in the retained bytes.
        offset: usize,
        /// Length of the source.
        len: usize,
    },
    /// The source is not in the retained bytes: spans become slices of it.
    Owned(Bytes),
}

/// A parsed field: a name and a value.
///
/// In an [`crate::process::Outcome`] the value is relative to the parsed
/// source; inside an [`Event`] it is relative to the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub key: FieldKey,
    /// Field value (raw bytes; may be invalid UTF-8 if the source was).
    pub value: FieldValue,
}

/// One log event.
///
/// Sinks read [`Event::contents`], [`Event::content`], [`Event::time`] and
/// [`Event::offset`]; processors use [`Event::field`],
/// [`Event::set_field`] and [`Event::remove_field`].
#[derive(Debug, Clone)]
pub struct Event {
    /// The raw line without its `\n` (the `content` field of LoongCollector).
    /// Parsers may clear it after splitting it into fields.
    pub content: Bytes,
    /// Byte offset of the line's first byte in its source file.
    pub offset: u64,
    /// Event time: the read time, until a parser sets the log's own time.
    pub time: Timestamp,
    /// Parsed fields; empty for raw lines. Span values index `retained`.
    pub(crate) fields: Vec<Field>,
    /// The bytes span values refer to: the parsed line, kept alive after
    /// `content` was cleared. `None` until a parse (so cloning and dropping
    /// a raw event costs nothing extra).
    pub(crate) retained: Option<Bytes>,
}

impl Event {
    /// A raw event holding one line.
    pub fn line(content: Bytes, offset: u64, time: Timestamp) -> Self {
        Event {
            content,
            offset,
            time,
            fields: Vec::new(),
            retained: None,
        }
    }
}

impl Event {
    /// The key under which [`Event::content`] is shipped (`content`, as in
    /// LoongCollector).
    pub const CONTENT_KEY: &'static str = "content";

    /// The key/value pairs a sink ships for this event, in order: every
    /// parsed field, then `content` unless a parser consumed it (it is
    /// always shipped when there are no fields, even empty, so that an
    /// empty line is still a log).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use logtail_core::{Event, Timestamp};
    /// let ev = Event::line(Bytes::from_static(b"hello"), 0, Timestamp::default());
    /// let pairs: Vec<_> = ev.contents().collect();
    /// assert_eq!(pairs, vec![("content", &b"hello"[..])]);
    /// ```
    pub fn contents(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let content = (self.fields.is_empty() || !self.content.is_empty())
            .then_some((Self::CONTENT_KEY, &self.content[..]));
        self.fields().chain(content)
    }

    /// The parsed fields, in order, without `content`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        let retained = &self.retained()[..];
        self.fields
            .iter()
            .map(move |f| (f.key.as_str(), f.value.resolve(retained)))
    }
}

/// What an event without retained bytes resolves spans against.
static NOTHING_RETAINED: Bytes = Bytes::new();

impl Event {
    /// The bytes span values refer to (empty before any parse).
    pub(crate) fn retained(&self) -> &Bytes {
        self.retained.as_ref().unwrap_or(&NOTHING_RETAINED)
    }
}

impl PartialEq for Event {
    /// Events are equal when they ship the same: content, offset, time and
    /// the fields' names and bytes, however the values are held.
    fn eq(&self, other: &Self) -> bool {
        self.content == other.content
            && self.offset == other.offset
            && self.time == other.time
            && self.fields.len() == other.fields.len()
            && self.fields().eq(other.fields())
    }
}

impl Eq for Event {}

/// Where a batch of events came from. Shared by every event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTags {
    /// The path the file had when the batch was read (`__tag__:__path__`).
    pub path: PathBuf,
    /// Device number of the file.
    pub dev: u64,
    /// Inode number of the file (`__tag__:__inode__`).
    pub inode: u64,
    /// Name of the pipeline configuration that collected it.
    pub config: Arc<str>,
}

/// A batch of consecutive events from one source, with the token that
/// acknowledges it once every sink delivered it.
#[derive(Debug)]
pub struct EventBatch {
    /// Where the events came from.
    pub source: Arc<SourceTags>,
    /// The events, in file order.
    pub events: Vec<Event>,
    /// Number of source bytes (lines and their newlines) this batch covers.
    pub bytes: u64,
    /// Acknowledgement token; see [`AckToken`].
    pub ack: AckToken,
}

impl EventBatch {
    /// Marks the batch as delivered by this holder (see [`AckToken::delivered`]).
    pub fn delivered(self) {
        self.ack.delivered();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_keys_are_deduplicated_and_copied() {
        let name = String::from("interned_keys_test_name");
        let a = FieldKey::interned(&name);
        let b = FieldKey::interned(&String::from("interned_keys_test_name"));
        assert!(a.ptr_eq(&b), "one allocation per distinct name");
        assert_eq!(FieldKey::intern(&name).as_ptr(), a.as_ptr());
        assert_eq!(std::mem::size_of::<FieldKey>(), 16);
        let c = a.clone();
        assert!(c.ptr_eq(&a));
        assert_eq!(&*c, "interned_keys_test_name");
        assert_eq!(c, FieldKey::shared(Arc::from("interned_keys_test_name")));
    }

    #[test]
    fn shared_keys_are_freed_with_their_last_clone() {
        let arc: Arc<str> = Arc::from("from_data");
        let k = FieldKey::shared(Arc::clone(&arc));
        let k2 = k.clone();
        assert_eq!(Arc::strong_count(&arc), 3);
        drop((k, k2));
        assert_eq!(Arc::strong_count(&arc), 1);
    }

    #[test]
    fn spans_resolve_or_give_nothing() {
        let v = FieldValue::span(1, 3);
        assert_eq!(v.resolve(b"abcd"), b"bc");
        assert_eq!(
            v.resolve(b"ab"),
            b"",
            "outside the source: nothing, no panic"
        );
        assert_eq!(v.to_bytes(&Bytes::from_static(b"ab")), Bytes::new());
        assert_eq!((v.len(), v.as_span()), (2, Some(1..3)));
        let o = FieldValue::from(Bytes::from_static(b"xy"));
        assert_eq!((o.resolve(b""), o.as_span()), (&b"xy"[..], None));
    }

    #[test]
    fn events_compare_by_what_they_ship() {
        let line = Bytes::from_static(b"a,b");
        let mut spans = Event::line(Bytes::new(), 0, Timestamp::default());
        spans.retained = Some(line.clone());
        spans.fields.push(Field {
            key: FieldKey::from_static(&"x"),
            value: FieldValue::span(0, 1),
        });
        let mut owned = Event::line(Bytes::new(), 0, Timestamp::default());
        owned.fields.push(Field {
            key: FieldKey::shared(Arc::from("x")),
            value: FieldValue::from(line.slice(0..1)),
        });
        assert_eq!(spans, owned);
        assert_eq!(spans.contents().collect::<Vec<_>>(), vec![("x", &b"a"[..])]);
        owned.fields[0].value = FieldValue::from(line.slice(2..3));
        assert_ne!(spans, owned);
    }
}
