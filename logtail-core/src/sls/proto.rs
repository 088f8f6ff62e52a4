//! The SLS `LogGroup` protobuf (proto2), encoded and decoded by hand.
//!
//! | message | fields |
//! |---|---|
//! | `Log` | `Time` = 1 uint32, `Contents` = 2 repeated `Content`, `Time_ns` = 4 fixed32 |
//! | `Log.Content` | `Key` = 1 string, `Value` = 2 string |
//! | `LogTag` | `Key` = 1 string, `Value` = 2 string |
//! | `LogGroup` | `Logs` = 1, `Category` = 2, `Topic` = 3, `Source` = 4, `MachineUUID` = 5, `LogTags` = 6 |
//! | `LogGroupList` | `logGroupList` = 1 repeated `LogGroup` |
//!
//! Encoding goes through [`LogGroupBuilder`], which appends each event's
//! `Log` to one buffer as it comes, so a group is never held twice.
//! Strings are written as the bytes they are: content read from a file may
//! be invalid UTF-8 and is shipped unchanged (SLS stores bytes).
//!
//! Decoding ([`decode_log_group`], [`decode_log_group_list`]) gives owned
//! structs. It skips unknown fields (LoongCollector's `Log` has a field 3),
//! never panics, allocates at most in proportion to its input, and names the
//! byte offset of whatever is wrong.

use std::fmt;

use crate::event::Event;

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

// Tags (field number << 3 | wire type), all one byte.
const TAG_GROUP_LOG: u8 = 1 << 3 | LEN;
const TAG_GROUP_TOPIC: u8 = 3 << 3 | LEN;
const TAG_GROUP_SOURCE: u8 = 4 << 3 | LEN;
const TAG_GROUP_MACHINE_UUID: u8 = 5 << 3 | LEN;
const TAG_GROUP_TAG: u8 = 6 << 3 | LEN;
const TAG_LOG_TIME: u8 = 1 << 3 | VARINT;
const TAG_LOG_CONTENT: u8 = 2 << 3 | LEN;
const TAG_LOG_TIME_NS: u8 = 4 << 3 | FIXED32;
const TAG_KV_KEY: u8 = 1 << 3 | LEN;
const TAG_KV_VALUE: u8 = 2 << 3 | LEN;

/// Group-level fields written by [`LogGroupBuilder::finish`].
///
/// ```
/// use logtail_core::sls::GroupMeta;
/// let meta = GroupMeta {
///     topic: Some("nginx"),
///     tags: &[("__pack_id__", "5A3B1C-1")],
///     ..GroupMeta::default()
/// };
/// assert_eq!(meta.source, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupMeta<'a> {
    /// `Topic` (field 3), written when `Some`.
    pub topic: Option<&'a str>,
    /// `Source` (field 4), usually the host's IP address, written when `Some`.
    pub source: Option<&'a str>,
    /// `MachineUUID` (field 5), written when `Some`.
    pub machine_uuid: Option<&'a str>,
    /// `LogTags` (field 6), in this order (`__pack_id__`, `__path__`, …).
    pub tags: &'a [(&'a str, &'a str)],
}

/// Encodes events into one `LogGroup`, incrementally.
///
/// Each [`push`](Self::push) appends one `Log` to an internal buffer;
/// [`finish`](Self::finish) appends the group's fields and hands the bytes
/// over. [`finish_in_place`](Self::finish_in_place) and
/// [`clear`](Self::clear) let one builder (and its buffer) serve group after
/// group.
///
/// ```
/// use bytes::Bytes;
/// use logtail_core::sls::{decode_log_group, GroupMeta, LogGroupBuilder};
/// use logtail_core::{Event, Timestamp};
///
/// let mut b = LogGroupBuilder::new();
/// let t = Timestamp { secs: 1_700_000_000, nanos: 5 };
/// b.push(&Event::line(Bytes::from_static(b"hello"), 0, t));
/// assert_eq!(b.len(), 1);
/// let bytes = b.finish(&GroupMeta { topic: Some("t"), ..GroupMeta::default() });
///
/// let group = decode_log_group(&bytes).unwrap();
/// assert_eq!(group.topic.as_deref(), Some("t"));
/// assert_eq!(group.logs[0].time, 1_700_000_000);
/// assert_eq!(group.logs[0].time_ns, Some(5));
/// assert_eq!(group.logs[0].contents, vec![("content".into(), "hello".into())]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogGroupBuilder {
    buf: Vec<u8>,
    /// Length of the `Logs` part; the group fields of a
    /// `finish_in_place` follow it.
    logs_len: usize,
    count: usize,
}

impl LogGroupBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder that writes into `buf` (cleared, its capacity kept):
    /// recycles the buffer of a finished group, so the next one neither
    /// grows its buffer step by step nor touches fresh pages.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        LogGroupBuilder {
            buf,
            logs_len: 0,
            count: 0,
        }
    }

    /// An empty builder whose buffer holds `bytes` without growing.
    pub fn with_capacity(bytes: usize) -> Self {
        LogGroupBuilder {
            buf: Vec::with_capacity(bytes),
            logs_len: 0,
            count: 0,
        }
    }

    /// Appends one event as a `Log`: `Time` = the event's seconds (clamped
    /// to `0..=u32::MAX`), `Time_ns` = its nanoseconds, `Contents` = the
    /// pairs of [`Event::contents`]. Adds exactly
    /// [`encoded_log_len`]`(event)` bytes.
    pub fn push(&mut self, event: &Event) {
        let (time, time_ns) = event_time(event);
        let body = log_body_len(time, Some(time_ns), kv_bytes(event));
        self.write_log(time, Some(time_ns), body, kv_bytes(event));
    }

    /// Appends one decoded [`Log`] as it is (its `Time_ns` only if it has
    /// one): re-encoding what [`decode_log_group`] gave.
    pub fn push_log(&mut self, log: &Log) {
        let kv = || {
            log.contents
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        };
        let body = log_body_len(log.time, log.time_ns, kv());
        self.write_log(log.time, log.time_ns, body, kv());
    }

    fn write_log<'a>(
        &mut self,
        time: u32,
        time_ns: Option<u32>,
        body_len: usize,
        contents: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) {
        self.buf.truncate(self.logs_len);
        let buf = &mut self.buf;
        buf.reserve(1 + varint_len(body_len as u64) + body_len);
        buf.push(TAG_GROUP_LOG);
        put_varint(buf, body_len as u64);
        buf.push(TAG_LOG_TIME);
        put_varint(buf, u64::from(time));
        for (k, v) in contents {
            buf.push(TAG_LOG_CONTENT);
            put_varint(buf, kv_body_len(k, v) as u64);
            put_bytes(buf, TAG_KV_KEY, k);
            put_bytes(buf, TAG_KV_VALUE, v);
        }
        if let Some(ns) = time_ns {
            buf.push(TAG_LOG_TIME_NS);
            buf.extend_from_slice(&ns.to_le_bytes());
        }
        self.logs_len = buf.len();
        self.count += 1;
    }

    /// Number of logs pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the logs pushed so far (what [`finish`](Self::finish) adds
    /// for the group fields comes on top: see [`GroupMeta::encoded_len`]).
    pub fn encoded_len(&self) -> usize {
        self.logs_len
    }

    /// Appends the group fields of `meta` and returns the whole `LogGroup`.
    pub fn finish(mut self, meta: &GroupMeta<'_>) -> Vec<u8> {
        self.finish_in_place(meta);
        self.buf
    }

    /// Like [`finish`](Self::finish) but keeps the builder (and its buffer):
    /// returns the `LogGroup` bytes, valid until the next call. The logs
    /// stay, so the builder can be finished again (with other meta) or
    /// pushed to; call [`clear`](Self::clear) to start the next group.
    pub fn finish_in_place(&mut self, meta: &GroupMeta<'_>) -> &[u8] {
        self.buf.truncate(self.logs_len);
        let buf = &mut self.buf;
        buf.reserve(meta.encoded_len());
        if let Some(topic) = meta.topic {
            put_bytes(buf, TAG_GROUP_TOPIC, topic.as_bytes());
        }
        if let Some(source) = meta.source {
            put_bytes(buf, TAG_GROUP_SOURCE, source.as_bytes());
        }
        if let Some(uuid) = meta.machine_uuid {
            put_bytes(buf, TAG_GROUP_MACHINE_UUID, uuid.as_bytes());
        }
        for (k, v) in meta.tags {
            buf.push(TAG_GROUP_TAG);
            put_varint(buf, kv_body_len(k.as_bytes(), v.as_bytes()) as u64);
            put_bytes(buf, TAG_KV_KEY, k.as_bytes());
            put_bytes(buf, TAG_KV_VALUE, v.as_bytes());
        }
        &self.buf
    }

    /// Forgets every log, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.logs_len = 0;
        self.count = 0;
    }
}

impl GroupMeta<'_> {
    /// The bytes these fields add to a `LogGroup`.
    pub fn encoded_len(&self) -> usize {
        let s = |v: Option<&str>| v.map_or(0, |v| field_len(v.len()));
        s(self.topic)
            + s(self.source)
            + s(self.machine_uuid)
            + self
                .tags
                .iter()
                .map(|(k, v)| field_len(kv_body_len(k.as_bytes(), v.as_bytes())))
                .sum::<usize>()
    }
}

/// The exact number of bytes [`LogGroupBuilder::push`] adds for `event`
/// (tag and length prefix included), to keep a group under a size limit
/// before pushing.
pub fn encoded_log_len(event: &Event) -> usize {
    let (time, time_ns) = event_time(event);
    field_len(log_body_len(time, Some(time_ns), kv_bytes(event)))
}

fn event_time(event: &Event) -> (u32, u32) {
    let secs = event.time.secs.clamp(0, i64::from(u32::MAX)) as u32;
    (secs, event.time.nanos.min(999_999_999))
}

fn kv_bytes(event: &Event) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    event.contents().map(|(k, v)| (k.as_bytes(), v))
}

fn log_body_len<'a>(
    time: u32,
    time_ns: Option<u32>,
    contents: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> usize {
    let mut n = 1 + varint_len(u64::from(time)) + time_ns.map_or(0, |_| 5);
    for (k, v) in contents {
        n += field_len(kv_body_len(k, v));
    }
    n
}

#[inline]
fn kv_body_len(k: &[u8], v: &[u8]) -> usize {
    field_len(k.len()) + field_len(v.len())
}

/// Tag + length prefix + body of a length-delimited field.
#[inline]
fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

#[inline]
fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn put_bytes(buf: &mut Vec<u8>, tag: u8, b: &[u8]) {
    buf.push(tag);
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

// ---------------------------------------------------------------------------
// Decoding

/// A decoded `LogGroup`.
///
/// Strings that are not valid UTF-8 are decoded lossily (each bad sequence
/// becomes U+FFFD); nothing counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogGroup {
    /// `Logs` (field 1).
    pub logs: Vec<Log>,
    /// `Category` (field 2, reserved).
    pub category: Option<String>,
    /// `Topic` (field 3).
    pub topic: Option<String>,
    /// `Source` (field 4).
    pub source: Option<String>,
    /// `MachineUUID` (field 5).
    pub machine_uuid: Option<String>,
    /// `LogTags` (field 6), in wire order.
    pub tags: Vec<(String, String)>,
}

/// A decoded `Log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// `Time` (field 1), seconds since the epoch.
    pub time: u32,
    /// `Time_ns` (field 4), when present.
    pub time_ns: Option<u32>,
    /// `Contents` (field 2): key/value pairs in wire order.
    pub contents: Vec<(String, String)>,
}

/// Why bytes are not a valid `LogGroup` / `LogGroupList`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {message} at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Offset in the input of the first byte of what is wrong.
    pub offset: usize,
    /// The message being decoded (`LogGroup`, `Log`, …).
    pub message: &'static str,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// What [`DecodeError`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends inside a varint.
    TruncatedVarint,
    /// A varint longer than 10 bytes.
    VarintTooLong,
    /// A length-delimited field declares more bytes than remain.
    LengthPastEnd {
        /// The declared length.
        declared: u64,
        /// The bytes that remain in the enclosing message.
        remaining: usize,
    },
    /// The input ends inside a fixed-width field.
    TruncatedFixed,
    /// A known field with a wire type it cannot have.
    WrongWireType {
        /// Field number.
        field: u64,
        /// Wire type found.
        wire_type: u8,
    },
    /// Wire types 3, 4 (groups, not used by SLS), 6 and 7.
    UnsupportedWireType(u8),
    /// Field number 0.
    FieldZero,
    /// A required field is absent.
    MissingField(&'static str),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedVarint => write!(f, "input ends inside a varint"),
            Self::VarintTooLong => write!(f, "varint longer than 10 bytes"),
            Self::LengthPastEnd {
                declared,
                remaining,
            } => write!(
                f,
                "declared length {declared} exceeds the {remaining} bytes that remain"
            ),
            Self::TruncatedFixed => write!(f, "input ends inside a fixed-width field"),
            Self::WrongWireType { field, wire_type } => {
                write!(f, "field {field} has wrong wire type {wire_type}")
            }
            Self::UnsupportedWireType(w) => write!(f, "unsupported wire type {w}"),
            Self::FieldZero => write!(f, "field number 0"),
            Self::MissingField(name) => write!(f, "required field {name} is missing"),
        }
    }
}

/// Decodes one `LogGroup`.
///
/// Unknown fields are skipped; `Log.Time` and the keys and values of
/// contents and tags are required (proto2 `required`). A `Time` varint
/// wider than 32 bits is truncated, as protobuf does.
pub fn decode_log_group(bytes: &[u8]) -> Result<LogGroup, DecodeError> {
    decode_group(Reader::new(bytes, 0, "LogGroup"))
}

/// Decodes a `LogGroupList` (field 1: repeated `LogGroup`).
pub fn decode_log_group_list(bytes: &[u8]) -> Result<Vec<LogGroup>, DecodeError> {
    let mut r = Reader::new(bytes, 0, "LogGroupList");
    let mut groups = Vec::new();
    while let Some((field, wt, at)) = r.key()? {
        match field {
            1 => groups.push(decode_group(r.sub(field, wt, at, "LogGroup")?)?),
            _ => r.skip(wt, at)?,
        }
    }
    Ok(groups)
}

fn decode_group(mut r: Reader<'_>) -> Result<LogGroup, DecodeError> {
    let mut g = LogGroup::default();
    while let Some((field, wt, at)) = r.key()? {
        match field {
            1 => g.logs.push(decode_log(r.sub(field, wt, at, "Log")?)?),
            2 => g.category = Some(r.string(field, wt, at)?),
            3 => g.topic = Some(r.string(field, wt, at)?),
            4 => g.source = Some(r.string(field, wt, at)?),
            5 => g.machine_uuid = Some(r.string(field, wt, at)?),
            6 => g.tags.push(decode_kv(r.sub(field, wt, at, "LogTag")?)?),
            _ => r.skip(wt, at)?,
        }
    }
    Ok(g)
}

fn decode_log(mut r: Reader<'_>) -> Result<Log, DecodeError> {
    let start = r.base;
    let mut time = None;
    let mut log = Log::default();
    while let Some((field, wt, at)) = r.key()? {
        match field {
            1 => {
                r.expect(field, wt, VARINT, at)?;
                time = Some(r.varint()? as u32);
            }
            2 => log
                .contents
                .push(decode_kv(r.sub(field, wt, at, "Log.Content")?)?),
            4 => {
                r.expect(field, wt, FIXED32, at)?;
                log.time_ns = Some(r.fixed32()?);
            }
            _ => r.skip(wt, at)?,
        }
    }
    log.time = time.ok_or_else(|| r.err_at(start, DecodeErrorKind::MissingField("Time")))?;
    Ok(log)
}

fn decode_kv(mut r: Reader<'_>) -> Result<(String, String), DecodeError> {
    let start = r.base;
    let (mut key, mut value) = (None, None);
    while let Some((field, wt, at)) = r.key()? {
        match field {
            1 => key = Some(r.string(field, wt, at)?),
            2 => value = Some(r.string(field, wt, at)?),
            _ => r.skip(wt, at)?,
        }
    }
    let key = key.ok_or_else(|| r.err_at(start, DecodeErrorKind::MissingField("Key")))?;
    let value = value.ok_or_else(|| r.err_at(start, DecodeErrorKind::MissingField("Value")))?;
    Ok((key, value))
}

/// A cursor over one message's bytes; `base` is the offset of `buf[0]` in
/// the whole input, for error offsets.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize, message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            message,
        }
    }

    fn err_at(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset,
            message: self.message,
            kind,
        }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.offset();
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err_at(start, DecodeErrorKind::TruncatedVarint));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err_at(start, DecodeErrorKind::VarintTooLong))
    }

    /// The next field's number, wire type and offset, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8, usize)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.offset();
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(self.err_at(at, DecodeErrorKind::FieldZero));
        }
        Ok(Some((field, (k & 7) as u8, at)))
    }

    fn expect(&self, field: u64, wt: u8, want: u8, at: usize) -> Result<(), DecodeError> {
        if wt == want {
            Ok(())
        } else {
            Err(self.err_at(
                at,
                DecodeErrorKind::WrongWireType {
                    field,
                    wire_type: wt,
                },
            ))
        }
    }

    fn fixed(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let start = self.offset();
        let b = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| self.err_at(start, DecodeErrorKind::TruncatedFixed))?;
        self.pos += n;
        Ok(b)
    }

    fn fixed32(&mut self) -> Result<u32, DecodeError> {
        let b = self.fixed(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The body of a length-delimited field (after its key).
    fn bytes(&mut self) -> Result<(&'a [u8], usize), DecodeError> {
        let at = self.offset();
        let len = self.varint()?;
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            return Err(self.err_at(
                at,
                DecodeErrorKind::LengthPastEnd {
                    declared: len,
                    remaining,
                },
            ));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok((&self.buf[start..self.pos], self.base + start))
    }

    fn sub(
        &mut self,
        field: u64,
        wt: u8,
        at: usize,
        message: &'static str,
    ) -> Result<Reader<'a>, DecodeError> {
        self.expect(field, wt, LEN, at)?;
        let (b, base) = self.bytes()?;
        Ok(Reader::new(b, base, message))
    }

    fn string(&mut self, field: u64, wt: u8, at: usize) -> Result<String, DecodeError> {
        self.expect(field, wt, LEN, at)?;
        let (b, _) = self.bytes()?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn skip(&mut self, wt: u8, at: usize) -> Result<(), DecodeError> {
        match wt {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed(4).map(drop),
            w => Err(self.err_at(at, DecodeErrorKind::UnsupportedWireType(w))),
        }
    }
}

#[cfg(test)]
mod tests;
