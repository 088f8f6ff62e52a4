//! [`SpillQueue`]: a durable local disk queue for batches a backend could
//! not take, replayed oldest first once it answers again.
//!
//! Payloads are opaque bytes. A payload is durable when [`SpillQueue::push`]
//! returns `Ok` (written and fsynced), so a caller may acknowledge the data
//! it holds (e.g. advance file checkpoints) at that point.
//!
//! # Files on disk
//!
//! For a queue in `<dir>`:
//! - `<dir>/00000000000000000001.spill`, `…2.spill`, …: append-only
//!   *segments*, numbered in order (ids are never reused while `head.json`
//!   lives). A segment is a 16-byte header (magic, format version, CRC)
//!   followed by records; the layout is in [`record`]. A new segment is
//!   started when the last one would grow past
//!   [`SpillOptions::segment_bytes`] (capped at an eighth of `max_bytes`, so
//!   eviction never drops more than that at once).
//! - `<dir>/head.json`: `{"version":1,"segment":S,"offset":O}`, where
//!   consumption stands: the oldest live record is at offset `O` of segment
//!   `S`; segments numbered below `S` are consumed. Written to
//!   `head.json.tmp`, fsynced, renamed, directory fsynced
//!   ([`crate::fs::write_atomic`]). Missing means
//!   "from the start of the first segment".
//! - `<dir>/lock`: held with `flock` while the queue is open, so a second
//!   process cannot open the same directory.
//! - `*.corrupt`: segments or head files that were unreadable, moved aside
//!   for inspection. Other files in the directory are ignored.
//!
//! # Guarantees
//!
//! - **Order**: records come out oldest first, in push order ([`RecordId`]
//!   orders the same way).
//! - **Durable push**: the record is written and `fdatasync`ed before `Ok`;
//!   a new segment's header and its directory entry are fsynced before the
//!   first record goes in.
//! - **Durable remove, at least once**: [`SpillQueue::remove`] persists the
//!   new head (or deletes the fully consumed segment) before it returns. A
//!   crash after delivering a record and before its `remove` returned replays
//!   that one record again on the next open; nothing removed is replayed.
//! - **Bounded**: the segment files never total more than
//!   [`SpillOptions::max_bytes`]. A push that would exceed it first evicts
//!   the oldest segment(s), counting their remaining records
//!   (`evicted_records`, `evicted_bytes`); a single payload that cannot fit
//!   is refused with [`SpillError::TooLarge`].
//! - **TTL**: a record older than [`SpillOptions::ttl`] (by its creation
//!   time and the queue's [`Clock`]) is dropped when it reaches the head and
//!   counted (`expired_records`), never returned. A record exactly `ttl` old
//!   is still returned.
//!
//! # Crash and corruption recovery
//!
//! [`SpillQueue::open`] walks every segment's record headers (payloads are
//! not read, except the very last record's):
//! - A segment shorter than its header (torn while being created) is
//!   deleted; its bytes count as `torn_truncated_bytes`.
//! - A segment with a bad header is moved to `<name>.corrupt` and counted as
//!   one corrupt record; one of a newer format version is left alone and the
//!   open fails with [`SpillError::NewerVersion`].
//! - Whatever follows a segment's last intact record (a record cut short by
//!   SIGKILL or power loss, zeros, garbage) is truncated away and counted in
//!   `torn_truncated_bytes`; in the last segment the last record's payload
//!   CRC is checked too, so a record whose payload never reached the disk is
//!   cut as well.
//! - Damage *between* intact records is skipped when the head reaches it:
//!   a record with a valid header and a bad payload CRC is skipped by its
//!   length; after a bad header the reader resynchronises on the next valid
//!   header (record magic + header CRC, see [`record`]). Each skipped region
//!   counts as one `corrupt_records` (it may have held more than one).
//! - An unreadable `head.json` is moved to `head.json.corrupt` and the queue
//!   replays from its first segment: duplicates, never loss.
//!
//! No file content makes anything panic.
//!
//! # Concurrency
//!
//! Methods take `&mut self`; share a queue behind a `Mutex`. Each call is
//! short (one record's I/O plus fsyncs); do not hold the lock while
//! delivering a record: [`SpillQueue::remove`] of a record evicted in the
//! meantime is a no-op.

#[doc(hidden)] // the record codec is public for the fuzz targets only
pub mod record;

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use record::{
    HeaderDecoded, RecordHeader, SegmentHeaderError, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};

const SEG_HDR: u64 = SEGMENT_HEADER_LEN as u64;
const REC_HDR: u64 = RECORD_HEADER_LEN as u64;
/// Format version of `head.json`.
const HEAD_VERSION: u64 = 1;
const HEAD_FILE: &str = "head.json";
const LOCK_FILE: &str = "lock";
const SEGMENT_SUFFIX: &str = ".spill";
/// Read size of the open-time header walk and of resynchronisation scans.
const CHUNK: usize = 64 * 1024;

/// Limits of a [`SpillQueue`].
///
/// Non-exhaustive: start from [`SpillOptions::default`] and set fields.
///
/// ```
/// use logtail_core::spill::SpillOptions;
///
/// let mut o = SpillOptions::default();
/// o.max_bytes = 256 << 20;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpillOptions {
    /// Most bytes the segment files may hold together (default 1 GiB).
    pub max_bytes: u64,
    /// A new segment is started when the last would grow past this
    /// (default 64 MiB; capped at `max_bytes / 8`).
    pub segment_bytes: u64,
    /// Records older than this are dropped unread (default 24 hours).
    pub ttl: Duration,
}

impl Default for SpillOptions {
    fn default() -> Self {
        SpillOptions {
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Where a queue gets the current time (for TTLs and creation times).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: SystemTime) -> Self {
        ManualClock(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: SystemTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(later) = now.checked_add(by) {
            *now = later;
        }
    }
}

impl Default for ManualClock {
    /// A clock standing at the Unix epoch plus 1.7·10⁹ s (November 2023).
    fn default() -> Self {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Identifies a record in its queue. Opaque; orders oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    segment: u64,
    offset: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} offset {}", self.segment, self.offset)
    }
}

/// A record read from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpilledRecord {
    /// Pass to [`SpillQueue::remove`] once delivered.
    pub id: RecordId,
    /// When the payload was created (as given to [`SpillQueue::push_at`]).
    pub created: SystemTime,
    /// The bytes pushed.
    pub payload: Vec<u8>,
}

/// Counters of a [`SpillQueue`]. `records` and `bytes` are the current
/// state; the others count since [`SpillQueue::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpillStats {
    /// Records in the queue (counted from intact headers; a record found
    /// damaged when read is subtracted then).
    pub records: u64,
    /// Bytes of the segment files: headers, records, and the consumed part
    /// of the oldest segment (what `max_bytes` bounds).
    pub bytes: u64,
    /// Records pushed.
    pub pushed_records: u64,
    /// Records evicted to stay within `max_bytes`.
    pub evicted_records: u64,
    /// Bytes of the evicted records (headers included).
    pub evicted_bytes: u64,
    /// Records dropped because they outlived the TTL.
    pub expired_records: u64,
    /// Damaged records (or regions, or segment files) skipped.
    pub corrupt_records: u64,
    /// Bytes cut from segment tails at open (torn writes).
    pub torn_truncated_bytes: u64,
}

/// Errors of a [`SpillQueue`]. Each names the file (and the offset where
/// one is at fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpillError {
    /// A file operation failed.
    #[error("spill file {}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operation.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading at an offset failed (or the file was cut short underneath).
    #[error("spill file {}: read of {len} bytes at offset {offset}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Where the read started.
        offset: u64,
        /// How many bytes were wanted.
        len: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file written by a newer format version: left untouched.
    #[error("spill file {} is of format version {version}, newer than this program's; refusing to touch it", path.display())]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
    /// A payload that cannot fit in the queue.
    #[error("spill payload of {len} bytes is too large: a record must fit in max_bytes ({max_bytes}) with its headers, and below 4 GiB")]
    TooLarge {
        /// The payload's length.
        len: u64,
        /// The queue's `max_bytes`.
        max_bytes: u64,
    },
    /// [`SpillQueue::remove`] of a record that is not the oldest.
    #[error("spill queue {}: cannot remove {id}: the oldest record is {}", dir.display(), oldest.map_or("none".to_string(), |o| o.to_string()))]
    NotOldest {
        /// The queue's directory.
        dir: PathBuf,
        /// The id given.
        id: RecordId,
        /// The oldest record's id, if any.
        oldest: Option<RecordId>,
    },
    /// Another process has the directory open.
    #[error("spill queue {}: directory is in use by another process (lock file held)", dir.display())]
    Locked {
        /// The queue's directory.
        dir: PathBuf,
    },
    /// Options that cannot work.
    #[error("spill options: {0}")]
    InvalidOptions(String),
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// File length.
    len: u64,
    /// Records after the head (for the oldest segment) or in it.
    records: u64,
}

/// A durable, bounded, oldest-first disk queue of opaque payloads. See the
/// [module documentation](self) for the format and guarantees.
pub struct SpillQueue {
    dir: PathBuf,
    max_bytes: u64,
    segment_limit: u64,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Oldest first; the last one is the one appended to.
    segments: VecDeque<Segment>,
    /// Offset of the oldest live record in `segments[0]`.
    head: u64,
    /// Append handle of the last segment; `None` starts a new segment.
    active: Option<File>,
    /// Read handle of one segment, by id.
    reader: Option<(u64, File)>,
    /// The record `oldest` returned last, and its length.
    peeked: Option<(RecordId, u64)>,
    next_id: u64,
    stats: SpillStats,
    _lock: File,
}

impl fmt::Debug for SpillQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillQueue")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl SpillQueue {
    /// Opens the queue in `dir` (created if missing), recovering from
    /// crashes and damage as the [module documentation](self) describes.
    ///
    /// # Errors
    ///
    /// [`SpillError::InvalidOptions`], [`SpillError::Locked`] if another
    /// process holds the directory, [`SpillError::NewerVersion`] for a file
    /// of a newer format, and I/O errors naming the file.
    pub fn open(
        dir: &Path,
        options: SpillOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<SpillQueue, SpillError> {
        if options.max_bytes < SEG_HDR + REC_HDR + 1 {
            return Err(SpillError::InvalidOptions(format!(
                "max_bytes ({}) must be at least {}",
                options.max_bytes,
                SEG_HDR + REC_HDR + 1
            )));
        }
        if options.segment_bytes == 0 {
            return Err(SpillError::InvalidOptions(
                "segment_bytes must not be 0".into(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "create directory", e))?;
        let lock = lock_dir(dir)?;
        let mut queue = SpillQueue {
            dir: dir.to_path_buf(),
            max_bytes: options.max_bytes,
            segment_limit: options.segment_bytes.min(options.max_bytes / 8).max(1),
            ttl: options.ttl,
            clock,
            segments: VecDeque::new(),
            head: SEG_HDR,
            active: None,
            reader: None,
            peeked: None,
            next_id: 1,
            stats: SpillStats::default(),
            _lock: lock,
        };
        queue.recover()?;
        Ok(queue)
    }

    /// Appends `payload`, created now, and fsyncs it.
    ///
    /// # Errors
    ///
    /// [`SpillError::TooLarge`], or an I/O error (then nothing was added).
    pub fn push(&mut self, payload: &[u8]) -> Result<RecordId, SpillError> {
        let now = self.clock.now();
        self.push_at(payload, now)
    }

    /// Appends `payload` with its original creation time (a batch that
    /// failed for hours keeps its age for the TTL), and fsyncs it. A record
    /// already past the TTL is stored and dropped when it reaches the head.
    ///
    /// # Errors
    ///
    /// [`SpillError::TooLarge`] if it cannot fit even in an empty queue, or
    /// an I/O error (then nothing was added).
    pub fn push_at(&mut self, payload: &[u8], created: SystemTime) -> Result<RecordId, SpillError> {
        let len = payload.len() as u64;
        let record_len = REC_HDR + len;
        if len > MAX_PAYLOAD_LEN || record_len + SEG_HDR > self.max_bytes {
            return Err(SpillError::TooLarge {
                len,
                max_bytes: self.max_bytes,
            });
        }
        let mut new_segment = match (&self.active, self.segments.back()) {
            (Some(_), Some(last)) => {
                last.len > SEG_HDR && last.len + record_len > self.segment_limit
            }
            _ => true,
        };
        while self.stats.bytes + record_len + if new_segment { SEG_HDR } else { 0 } > self.max_bytes
        {
            if self.segments.is_empty() {
                break;
            }
            if self.segments.len() == 1 {
                new_segment = true;
            }
            let (records, bytes) = self.drop_front()?;
            self.stats.evicted_records += records;
            self.stats.evicted_bytes += bytes;
            if records > 0 {
                tracing::warn!(dir = %self.dir.display(), records, bytes, "spill queue full: oldest records evicted");
            }
        }
        if new_segment {
            self.start_segment()?;
        }
        let (Some(file), Some(last)) = (&self.active, self.segments.back_mut()) else {
            unreachable!("start_segment leaves an active segment");
        };
        let mut buf = Vec::new();
        record::encode_record(unix_nanos(created), payload, &mut buf);
        let offset = last.len;
        if let Err(e) = file
            .write_all_at(&buf, offset)
            .and_then(|()| file.sync_data())
        {
            // Cut what may have been written; after a failed fsync the page
            // cache cannot be trusted, so the next push starts a new segment.
            let _ = file.set_len(offset);
            self.active = None;
            return Err(io_err(
                &segment_path(&self.dir, last.id),
                "append record",
                e,
            ));
        }
        last.len += record_len;
        last.records += 1;
        self.stats.bytes += record_len;
        self.stats.records += 1;
        self.stats.pushed_records += 1;
        Ok(RecordId {
            segment: last.id,
            offset,
        })
    }

    /// The oldest live record, without removing it. Expired and damaged
    /// records on the way are dropped (durably) and counted.
    ///
    /// # Errors
    ///
    /// I/O errors naming the segment (and offset).
    pub fn oldest(&mut self) -> Result<Option<SpilledRecord>, SpillError> {
        let now = self.clock.now();
        let ttl = self.ttl;
        let mut moved = false;
        self.peeked = None;
        loop {
            let Some(front) = self.segments.front() else {
                return Ok(None);
            };
            let (id, seg_len) = (front.id, front.len);
            if self.head >= seg_len {
                self.drop_front()?;
                moved = false;
                continue;
            }
            let path = segment_path(&self.dir, id);
            let at = self.head;
            let file = self.reader(id)?;
            let mut hb = [0u8; RECORD_HEADER_LEN];
            let avail = (seg_len - at).min(REC_HDR) as usize;
            read_at(file, &path, &mut hb[..avail], at)?;
            let header = match record::decode_header(&hb[..avail]) {
                HeaderDecoded::Valid(h) if at + h.record_len() <= seg_len => h,
                _ => {
                    // Damage between intact records: resynchronise.
                    let next = resync(file, &path, at + 1, seg_len)?.unwrap_or(seg_len);
                    tracing::warn!(path = %path.display(), offset = at, skipped = next - at, "corrupt spill record skipped");
                    self.stats.corrupt_records += 1;
                    self.head = next;
                    moved = true;
                    continue;
                }
            };
            let created = from_unix_nanos(header.created_nanos);
            let expired = now.duration_since(created).is_ok_and(|age| age > ttl);
            let payload = if expired {
                None
            } else {
                let mut payload = vec![0u8; header.payload_len as usize];
                read_at(file, &path, &mut payload, at + REC_HDR)?;
                Some(payload)
            };
            match payload {
                Some(payload) if header.payload_matches(&payload) => {
                    if moved {
                        self.persist_head()?;
                    }
                    let rid = RecordId {
                        segment: id,
                        offset: at,
                    };
                    self.peeked = Some((rid, header.record_len()));
                    return Ok(Some(SpilledRecord {
                        id: rid,
                        created,
                        payload,
                    }));
                }
                Some(_) => {
                    tracing::warn!(path = %path.display(), offset = at, "spill record with a bad payload CRC skipped");
                    self.stats.corrupt_records += 1;
                }
                None => self.stats.expired_records += 1,
            }
            self.consume_one(header.record_len());
            moved = true;
        }
    }

    /// Removes the oldest record, `id` (as returned by [`oldest`](Self::oldest)),
    /// and persists that before returning. An `id` already gone (removed,
    /// evicted or expired meanwhile) is a no-op.
    ///
    /// # Errors
    ///
    /// [`SpillError::NotOldest`] if `id` is newer than the oldest record
    /// (nothing is removed), and I/O errors.
    pub fn remove(&mut self, id: RecordId) -> Result<(), SpillError> {
        let oldest = self.segments.front().map(|s| RecordId {
            segment: s.id,
            offset: self.head,
        });
        let Some(oldest) = oldest.filter(|o| id >= *o) else {
            return Ok(());
        };
        let len = match self.peeked {
            Some((peeked, len)) if peeked == id => Some(len),
            _ if id == oldest => self.header_len_at_head()?,
            _ => None,
        };
        let Some(len) = len else {
            return Err(SpillError::NotOldest {
                dir: self.dir.clone(),
                id,
                oldest: Some(oldest),
            });
        };
        self.peeked = None;
        self.consume_one(len);
        self.persist_head()
    }

    /// Records in the queue.
    pub fn len(&self) -> u64 {
        self.stats.records
    }

    /// Whether the queue holds no records.
    pub fn is_empty(&self) -> bool {
        self.stats.records == 0
    }

    /// Bytes of the segment files (bounded by `max_bytes`).
    pub fn bytes(&self) -> u64 {
        self.stats.bytes
    }

    /// Current state and counters.
    pub fn stats(&self) -> SpillStats {
        self.stats
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Advances the head past one record of `len` bytes.
    fn consume_one(&mut self, len: u64) {
        self.head += len;
        if let Some(front) = self.segments.front_mut() {
            front.records = front.records.saturating_sub(1);
        }
        self.stats.records = self.stats.records.saturating_sub(1);
    }

    /// Makes the head durable: deletes the oldest segment if it is fully
    /// consumed, else writes `head.json`.
    fn persist_head(&mut self) -> Result<(), SpillError> {
        let Some(front) = self.segments.front() else {
            return Ok(());
        };
        if self.head >= front.len {
            self.drop_front()?;
            return Ok(());
        }
        let head = HeadFile {
            version: HEAD_VERSION,
            segment: front.id,
            offset: self.head,
        };
        // Invariant: a struct of integers serializes.
        #[allow(clippy::expect_used)]
        let bytes = serde_json::to_vec(&head).expect("HeadFile serializes");
        crate::fs::write_atomic(&self.dir.join(HEAD_FILE), &bytes)
            .map_err(|e| io_err(&e.path, e.step, e.source))
    }

    /// Deletes the oldest segment; returns its remaining records and bytes.
    fn drop_front(&mut self) -> Result<(u64, u64), SpillError> {
        let Some(front) = self.segments.front() else {
            return Ok((0, 0));
        };
        let path = segment_path(&self.dir, front.id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err(&path, "delete segment", e))
            }
            _ => {}
        }
        sync_dir(&self.dir)?;
        let remaining = (front.records, front.len.saturating_sub(self.head));
        if self.reader.as_ref().is_some_and(|(id, _)| *id == front.id) {
            self.reader = None;
        }
        self.stats.bytes = self.stats.bytes.saturating_sub(front.len);
        self.stats.records = self.stats.records.saturating_sub(front.records);
        self.segments.pop_front();
        if self.segments.is_empty() {
            self.active = None;
        }
        self.head = SEG_HDR;
        self.peeked = None;
        Ok(remaining)
    }

    /// Creates the next segment (header fsynced, directory fsynced).
    fn start_segment(&mut self) -> Result<(), SpillError> {
        let id = self.next_id;
        self.next_id += 1;
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, "create segment", e))?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
        record::encode_segment_header(&mut header);
        if let Err(e) = file.write_all_at(&header, 0).and_then(|()| file.sync_all()) {
            let _ = fs::remove_file(&path);
            return Err(io_err(&path, "write segment header", e));
        }
        sync_dir(&self.dir)?;
        if self.segments.is_empty() {
            self.head = SEG_HDR;
        }
        self.segments.push_back(Segment {
            id,
            len: SEG_HDR,
            records: 0,
        });
        self.stats.bytes += SEG_HDR;
        self.active = Some(file);
        Ok(())
    }

    fn reader(&mut self, id: u64) -> Result<&File, SpillError> {
        if self.reader.as_ref().is_none_or(|(r, _)| *r != id) {
            let path = segment_path(&self.dir, id);
            let file = File::open(&path).map_err(|e| io_err(&path, "open segment", e))?;
            self.reader = Some((id, file));
        }
        match &self.reader {
            Some((_, file)) => Ok(file),
            None => unreachable!("set above"),
        }
    }

    /// Length of the record at the head, if its header is intact.
    fn header_len_at_head(&mut self) -> Result<Option<u64>, SpillError> {
        let Some(front) = self.segments.front() else {
            return Ok(None);
        };
        let (id, seg_len, at) = (front.id, front.len, self.head);
        let path = segment_path(&self.dir, id);
        let file = self.reader(id)?;
        let mut hb = [0u8; RECORD_HEADER_LEN];
        let avail = (seg_len.saturating_sub(at)).min(REC_HDR) as usize;
        read_at(file, &path, &mut hb[..avail], at)?;
        Ok(match record::decode_header(&hb[..avail]) {
            HeaderDecoded::Valid(h) if at + h.record_len() <= seg_len => Some(h.record_len()),
            _ => None,
        })
    }

    /// Loads the head and the segments; cuts torn tails.
    fn recover(&mut self) -> Result<(), SpillError> {
        let head = self.load_head()?;
        let mut ids = Vec::new();
        let entries =
            fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, "list directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.dir, "list directory", e))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        self.next_id = ids
            .last()
            .copied()
            .max(head.map(|h| h.segment))
            .unwrap_or(0)
            + 1;
        let last_id = ids.last().copied();
        for id in ids {
            let path = segment_path(&self.dir, id);
            let start = match head {
                Some(h) if id < h.segment => {
                    // Consumed; its deletion did not complete.
                    remove_file(&path)?;
                    continue;
                }
                Some(h) if id == h.segment => h.offset.max(SEG_HDR),
                _ => SEG_HDR,
            };
            if let Some(segment) = self.recover_segment(id, &path, start, Some(id) == last_id)? {
                if self.segments.is_empty() {
                    self.head = start;
                }
                self.stats.bytes += segment.len;
                self.stats.records += segment.records;
                self.segments.push_back(segment);
            }
        }
        sync_dir(&self.dir)?;
        if let Some(last) = self.segments.back() {
            let path = segment_path(&self.dir, last.id);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, "open segment", e))?;
            self.active = Some(file);
        }
        tracing::debug!(dir = %self.dir.display(), segments = self.segments.len(), records = self.stats.records, "spill queue opened");
        Ok(())
    }

    /// Checks one segment; `None` if it was deleted or moved aside.
    fn recover_segment(
        &mut self,
        id: u64,
        path: &Path,
        start: u64,
        last: bool,
    ) -> Result<Option<Segment>, SpillError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, "open segment", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_err(path, "stat segment", e))?
            .len();
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        let avail = len.min(SEG_HDR) as usize;
        read_at(&file, path, &mut header[..avail], 0)?;
        match record::decode_segment_header(&header[..avail]) {
            Ok(()) => {}
            Err(SegmentHeaderError::Truncated) => {
                tracing::warn!(path = %path.display(), len, "torn spill segment (shorter than its header) deleted");
                self.stats.torn_truncated_bytes += len;
                remove_file(path)?;
                return Ok(None);
            }
            Err(SegmentHeaderError::Newer(version)) => {
                return Err(SpillError::NewerVersion {
                    path: path.to_path_buf(),
                    version: version.into(),
                })
            }
            Err(SegmentHeaderError::Invalid) => {
                let aside = with_suffix(path, ".corrupt");
                fs::rename(path, &aside)
                    .map_err(|e| io_err(path, "move corrupt segment aside", e))?;
                tracing::warn!(path = %path.display(), moved_to = %aside.display(), "spill segment with a bad header moved aside");
                self.stats.corrupt_records += 1;
                return Ok(None);
            }
        }
        let walk = walk(&file, path, start.min(len), len, last)?;
        if walk.valid_end < len {
            let cut = len - walk.valid_end;
            tracing::warn!(path = %path.display(), offset = walk.valid_end, bytes = cut, "torn spill tail truncated");
            file.set_len(walk.valid_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err(path, "truncate torn tail", e))?;
            self.stats.torn_truncated_bytes += cut;
        }
        if walk.records == 0 && !last {
            // Fully consumed (its deletion did not complete), or empty.
            remove_file(path)?;
            return Ok(None);
        }
        if walk.records == 0 && start > SEG_HDR {
            // The last segment, fully consumed: start afresh.
            remove_file(path)?;
            return Ok(None);
        }
        Ok(Some(Segment {
            id,
            len: walk.valid_end,
            records: walk.records,
        }))
    }

    fn load_head(&mut self) -> Result<Option<HeadFile>, SpillError> {
        let path = self.dir.join(HEAD_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, "read", e)),
        };
        match decode_head(&bytes) {
            Ok(head) => Ok(Some(head)),
            Err(HeadError::Newer(version)) => Err(SpillError::NewerVersion { path, version }),
            Err(HeadError::Invalid(reason)) => {
                let aside = with_suffix(&path, ".corrupt");
                fs::rename(&path, &aside)
                    .map_err(|e| io_err(&path, "move corrupt file aside", e))?;
                tracing::warn!(path = %path.display(), moved_to = %aside.display(), %reason,
                    "corrupt spill head file moved aside; replaying from the first segment");
                Ok(None)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct HeadFile {
    version: u64,
    segment: u64,
    offset: u64,
}

enum HeadError {
    Newer(u64),
    Invalid(String),
}

fn decode_head(bytes: &[u8]) -> Result<HeadFile, HeadError> {
    #[derive(Deserialize)]
    struct Version {
        version: u64,
    }
    let v: Version =
        serde_json::from_slice(bytes).map_err(|e| HeadError::Invalid(e.to_string()))?;
    if v.version > HEAD_VERSION {
        return Err(HeadError::Newer(v.version));
    }
    let head: HeadFile =
        serde_json::from_slice(bytes).map_err(|e| HeadError::Invalid(e.to_string()))?;
    if head.version != HEAD_VERSION {
        return Err(HeadError::Invalid(format!(
            "unsupported version {}",
            head.version
        )));
    }
    Ok(head)
}

struct Walk {
    records: u64,
    /// End of the last intact record (or the start if none).
    valid_end: u64,
}

/// Walks the record headers of a segment from `start`; with `verify_last`,
/// also checks the last record's payload.
fn walk(
    file: &File,
    path: &Path,
    start: u64,
    len: u64,
    verify_last: bool,
) -> Result<Walk, SpillError> {
    let mut reader = ChunkReader::new(file, path, len);
    let mut pos = start;
    let mut out = Walk {
        records: 0,
        valid_end: start,
    };
    let mut last: Option<(u64, RecordHeader)> = None;
    while pos < len {
        match record::decode_header(reader.get(pos, RECORD_HEADER_LEN)?) {
            HeaderDecoded::Valid(h) if pos + h.record_len() <= len => {
                out.records += 1;
                last = Some((pos, h));
                pos += h.record_len();
                out.valid_end = pos;
            }
            HeaderDecoded::Invalid => match reader.resync(pos + 1)? {
                Some(next) => pos = next,
                None => break,
            },
            // Runs past the end of the file, or too short for a header.
            _ => break,
        }
    }
    if let (true, Some((at, h))) = (verify_last, last) {
        let mut payload = vec![0u8; h.payload_len as usize];
        read_at(file, path, &mut payload, at + REC_HDR)?;
        if !h.payload_matches(&payload) {
            out.records -= 1;
            out.valid_end = at;
        }
    }
    Ok(out)
}

/// Resynchronises from `from` on the next valid header before `len`.
fn resync(file: &File, path: &Path, from: u64, len: u64) -> Result<Option<u64>, SpillError> {
    ChunkReader::new(file, path, len).resync(from)
}

/// Buffered positional reads of one file of known length.
struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    len: u64,
    buf: Vec<u8>,
    at: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, path: &'a Path, len: u64) -> Self {
        ChunkReader {
            file,
            path,
            len,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// Up to `n` bytes at `offset` (fewer at the end of the file).
    fn get(&mut self, offset: u64, n: usize) -> Result<&[u8], SpillError> {
        let want = (n as u64).min(self.len.saturating_sub(offset)) as usize;
        let end = offset + want as u64;
        if offset < self.at || end > self.at + self.buf.len() as u64 {
            let fill = (want.max(CHUNK) as u64).min(self.len - offset) as usize;
            self.buf.resize(fill, 0);
            self.at = offset;
            read_at(self.file, self.path, &mut self.buf, offset)?;
        }
        let from = (offset - self.at) as usize;
        Ok(&self.buf[from..from + want])
    }

    /// The first valid header at or after `from`.
    fn resync(&mut self, from: u64) -> Result<Option<u64>, SpillError> {
        let mut pos = from;
        let len = self.len;
        while pos + REC_HDR <= len {
            let chunk = self.get(pos, CHUNK)?;
            if let Some(i) = record::find_header(chunk) {
                return Ok(Some(pos + i as u64));
            }
            if pos + chunk.len() as u64 >= len {
                break;
            }
            // Overlap so a header across the chunk boundary is seen.
            pos += (chunk.len() - (RECORD_HEADER_LEN - 1)) as u64;
        }
        Ok(None)
    }
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<(), SpillError> {
    file.read_exact_at(buf, offset)
        .map_err(|source| SpillError::Read {
            path: path.to_path_buf(),
            offset,
            len: buf.len() as u64,
            source,
        })
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

/// The id of a segment file name: 20 digits and `.spill`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_file(path: &Path) -> Result<(), SpillError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "delete", e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpillError> {
    crate::fs::sync_dir(dir).map_err(|e| io_err(dir, "fsync directory", e))
}

fn lock_dir(dir: &Path) -> Result<File, SpillError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, "open lock file", e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(SpillError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        return Err(io_err(&path, "lock", e));
    }
    Ok(file)
}

fn io_err(path: &Path, what: &'static str, source: io::Error) -> SpillError {
    SpillError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Nanoseconds since the epoch, clamped to what a u64 holds (before the
/// epoch is 0).
fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn from_unix_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_nanos(nanos))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
