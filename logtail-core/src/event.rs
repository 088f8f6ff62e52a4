//! The event model: one log line (or, after parsing, one record) with the
//! place it came from and its time.
//!
//! Lines are [`Bytes`] slices of the chunk the reader copied out of the
//! mapped file, so building an event never copies the line itself.

use std::path::PathBuf;
use std::sync::Arc;
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

/// A parsed field: a key from the configuration and a value, usually a
/// slice of the event's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name, shared between all events a parser produces.
    pub key: Arc<str>,
    /// Field value (raw bytes; may be invalid UTF-8 if the source was).
    pub value: Bytes,
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The raw line without its `\n` (the `content` field of LoongCollector).
    /// Parsers may clear it after splitting it into [`Event::fields`].
    pub content: Bytes,
    /// Byte offset of the line's first byte in its source file.
    pub offset: u64,
    /// Event time: the read time, until a parser sets the log's own time.
    pub time: Timestamp,
    /// Parsed fields; empty for raw lines.
    pub fields: Vec<Field>,
}

impl Event {
    /// A raw event holding one line.
    pub fn line(content: Bytes, offset: u64, time: Timestamp) -> Self {
        Event {
            content,
            offset,
            time,
            fields: Vec::new(),
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
        self.fields
            .iter()
            .map(|f| (&*f.key, &f.value[..]))
            .chain(content)
    }
}

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
