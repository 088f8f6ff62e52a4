//! [`FileInput`]: discovery, reading, rotation detection and acknowledged
//! checkpoints for the files one configuration matches.
//!
//! A *reader* is an open file plus a *stream*: the logical position in a
//! sequence of bytes (source number, read offset, acknowledgement tracker,
//! head signature, framer). Normally the two stay together for the file's
//! life. Rotation is about when they come apart:
//!
//! - rename (+ create): the inode is the same, so the reader keeps its
//!   stream and only its path changes; the new file at the old path is a new
//!   inode and gets a new reader from offset 0.
//! - truncation (size below the read offset, or a head that no longer
//!   matches the signature): the reader's stream is *retired* and the
//!   reader starts a new stream at 0. A file that appears with the retired
//!   stream's head (the copy made by copytruncate) *adopts* the stream and
//!   continues from its offset: nothing read twice, nothing skipped.
//!   A copy seen *before* the truncation waits briefly for it.
//! - deletion / moved out of the pattern: the open descriptor still reads
//!   the inode; it is drained, then closed once idle (never held forever).
//!
//! Checkpoints hold only acknowledged offsets ([`AckTracker`]).
//!
//! With `Multiline`, the stream also holds the [`Multiline`] assembler: the
//! read offset advances only over complete events, so the lines of the event
//! being assembled are read again with the next chunk (the assembler
//! remembers them and how far the framer got, so they are not framed
//! twice). A stop or a restart from a checkpoint therefore re-reads that
//! event from its first line; a rotated file keeps its stream, so the event
//! is completed from the renamed file. The pending event is forced out
//! after `FlushTimeoutSecs` without growth, or when a drained file that no
//! longer matches is about to be closed.
//!
//! With a `FileEncoding` other than UTF-8, lines are framed in the source
//! bytes (2-byte units for UTF-16) and converted per line ([`Decoder`]);
//! offsets stay in source bytes.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use memchr::memchr;

use super::chunk::{process_chunk, Flush};
use super::claims::{FileClaims, Handover};
use super::decode::{utf16_next_line_start, Decoder, FileEncoding, Utf16Order};
use super::discovery::{GlobError, PathMatcher, PathsProvider, PathsSpec};
use super::fingerprint::{prefix_hashes, FileId, Signature};
use super::framing::{Framer, FramerOptions};
use super::multiline::{Multiline, MultilineError, MultilineOptions, MultilineRules};
use super::reader::{OpenFile, ReadOutcome};
use super::rotation::{self, Decision, Held, Start, Why};
use super::stream::Stream;
use super::watch::Watcher;
use crate::ack::{Ack, AckToken, AckTracker, BatchId};
use crate::checkpoint::{Checkpoint, CheckpointError, FilePosition};
use crate::clock::{unix_secs, Clock, SystemClock};
use crate::event::{EventBatch, SourceTags, Timestamp};
use crate::input::{Emit, Input, Progress};

/// Options of the file input (LoongCollector's `input_file`).
///
/// Options may be added in any release, so the struct cannot be built with
/// a literal outside this crate: start from [`FileInputOptions::default`]
/// and set the fields you need.
///
/// ```
/// use logtail_core::file::FileInputOptions;
///
/// let mut o = FileInputOptions::default();
/// o.paths.file_paths = vec!["/var/log/app/*.log".to_owned()];
/// o.tail_size_kb = 0; // files found at start-up: only what is written from now on
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileInputOptions {
    /// Name of the pipeline configuration (tags every batch).
    pub config_name: Arc<str>,
    /// `FilePaths`, `MaxDirSearchDepth` and the exclude lists.
    pub paths: PathsSpec,
    /// `TailSizeKB`: files found at start-up without a checkpoint are read
    /// from this far before their end (default 1024).
    pub tail_size_kb: u64,
    /// `FlushTimeoutSecs`: an incomplete last line is emitted after this
    /// long without growth (default 5 s).
    pub flush_timeout: Duration,
    /// Line framing (maximum line size and its policy, `\r` handling).
    pub framing: FramerOptions,
    /// `Multiline`: join lines into multi-line events (default: none, one
    /// event per line). Events are cut at `chunk_bytes`.
    pub multiline: Option<MultilineOptions>,
    /// `FileEncoding`: the files' encoding, converted to UTF-8 (default utf8).
    pub encoding: FileEncoding,
    /// How often every open file is checked for growth when inotify is
    /// silent (default 1 s; 200 ms without inotify).
    pub poll_interval: Duration,
    /// How often the directories are rescanned for new files when inotify
    /// is silent (default 1 s).
    pub discovery_interval: Duration,
    /// Use inotify to react at once (default true).
    pub inotify: bool,
    /// A drained file that no longer matches (deleted, rotated away) is
    /// closed after this long without growth (default 5 s).
    pub close_rotated_after: Duration,
    /// A drained file that still matches is closed after this long without
    /// growth, to free descriptors; it is reopened when it grows (default 300 s).
    pub close_inactive_after: Duration,
    /// How long a new file whose head equals a live file's head is held
    /// back, in case it is a copytruncate copy whose original is about to be
    /// truncated (default 1 s). The hold lasts at least until the reader of
    /// the original has read as far as the new file's length, however far
    /// behind it is, and until the new file has not grown for this long.
    pub copy_wait: Duration,
    /// `CopyTruncateDirs`: directories, besides the truncated file's own,
    /// where a copytruncate copy that the patterns do not match is looked
    /// for (logrotate's `olddir`); relative paths are taken from the
    /// truncated file's directory.
    pub copy_truncate_dirs: Vec<PathBuf>,
    /// When idle, wait at least this long before reading again, so that
    /// line-by-line writes are read as one batch (default 50 ms).
    pub min_read_interval: Duration,
    /// Most files held open at once; beyond it the longest-idle drained
    /// file is closed (and reopened from its checkpoint when it grows).
    /// Default: three quarters of the process's open-file limit.
    pub max_open_files: usize,
    /// Largest chunk read (and batch emitted) at once (default 1 MiB).
    pub chunk_bytes: usize,
    /// Most bytes read but not yet acknowledged, across all files of this
    /// input; above it reading pauses until acknowledgements come, so a
    /// slow sink bounds memory in bytes, not only in batches (default
    /// 64 MiB; 0 for no cap). One batch may pass the cap (a line is never
    /// split for it).
    pub max_in_flight_bytes: u64,
    /// Most bytes read from one file per poll, for fairness (default 4 MiB).
    pub read_budget: usize,
    /// Minimum time between checkpoint writes (default 100 ms).
    pub checkpoint_interval: Duration,
    /// Checkpoint entries of files not seen for this long are dropped (default 7 days).
    pub checkpoint_ttl: Duration,
    /// Which matched files this input may collect when several configs
    /// match the same file (see [`FileClaims`]); `None` collects all.
    pub claims: Option<Arc<dyn FileClaims>>,
    /// The time source for timeouts and checkpoint ages (default: the
    /// system's; tests move a [`ManualClock`](crate::clock::ManualClock)).
    pub clock: Arc<dyn Clock>,
}

impl Default for FileInputOptions {
    fn default() -> Self {
        FileInputOptions {
            config_name: Arc::from("default"),
            paths: PathsSpec::default(),
            tail_size_kb: 1024,
            flush_timeout: Duration::from_secs(5),
            framing: FramerOptions::default(),
            multiline: None,
            encoding: FileEncoding::Utf8,
            poll_interval: Duration::from_secs(1),
            discovery_interval: Duration::from_secs(1),
            inotify: true,
            close_rotated_after: Duration::from_secs(5),
            close_inactive_after: Duration::from_secs(300),
            copy_wait: Duration::from_secs(1),
            copy_truncate_dirs: Vec::new(),
            min_read_interval: Duration::from_millis(50),
            max_open_files: default_max_open_files(),
            chunk_bytes: 1 << 20,
            max_in_flight_bytes: 64 << 20,
            read_budget: 4 << 20,
            checkpoint_interval: Duration::from_millis(100),
            checkpoint_ttl: Duration::from_secs(7 * 24 * 3600),
            claims: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Errors of the file input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A path pattern is invalid.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// The checkpoint store failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A `Multiline` pattern is invalid.
    #[error(transparent)]
    Multiline(#[from] MultilineError),
    /// The pipeline stopped taking batches.
    #[error("the pipeline is stopping")]
    Closed,
}

/// What the file input did, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInputStats {
    /// Files opened.
    pub files_opened: u64,
    /// Files closed.
    pub files_closed: u64,
    /// Files open now.
    pub files_open: u64,
    /// Events emitted: lines, or multi-line events with `Multiline`.
    pub lines: u64,
    /// Bytes consumed from files.
    pub bytes: u64,
    /// Batches emitted.
    pub batches: u64,
    /// Files renamed within the pattern (same inode, new path).
    pub renames: u64,
    /// Truncations detected (size below offset, or head rewritten).
    pub truncations: u64,
    /// Copies recognised as the continuation of a truncated file.
    pub copies_adopted: u64,
    /// Copies outside the patterns that the unread rest of a truncated
    /// file was read from (`CopyTruncateDirs` and the file's directory).
    pub copies_recovered: u64,
    /// Bytes read from such copies.
    pub bytes_recovered: u64,
    /// New files that started like a live file that was never truncated
    /// (e.g. `cp app.log backup.log`): their bytes up to then were already
    /// collected from the original, so they were opened at their end.
    pub duplicates_skipped: u64,
    /// Bytes not read again because of that.
    pub duplicate_bytes_skipped: u64,
    /// Bytes of truncated files that were neither read before the
    /// truncation nor found in a copy: lost (logged as a warning).
    pub truncated_unread_bytes: u64,
    /// Inode reuse detected (checkpoint with another head at the same inode).
    pub inode_reuse: u64,
    /// Incomplete last lines emitted after the flush timeout.
    pub partial_flushes: u64,
    /// Pieces cut from over-long lines (split policy).
    pub long_line_pieces: u64,
    /// Over-long lines truncated (truncate policy).
    pub long_lines_truncated: u64,
    /// Errors opening, stating or reading files.
    pub io_errors: u64,
    /// Opens put off because the descriptor limit was reached.
    pub deferred_opens: u64,
    /// Copies out of a map that hit a truncated page (SIGBUS caught), process-wide.
    pub sigbus_faults: u64,
    /// Multiline: lines that belonged to no event, emitted alone.
    pub multiline_unmatched_lines: u64,
    /// Multiline: lines that belonged to no event, dropped (`discard`).
    pub multiline_discarded_lines: u64,
    /// Multiline: events emitted in pieces because they reached `chunk_bytes`.
    pub multiline_cut_events: u64,
    /// Multiline: pending events forced out (flush timeout, file closed).
    pub multiline_flushes: u64,
    /// FileEncoding: malformed sequences replaced by U+FFFD.
    pub decode_replacements: u64,
}

/// Where one open file stands ([`FileInput::file_progress`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileProgress {
    /// Its path.
    pub path: PathBuf,
    /// Its device.
    pub dev: u64,
    /// Its inode.
    pub inode: u64,
    /// Its size when last looked at.
    pub size: u64,
    /// How far it was read.
    pub read_offset: u64,
    /// How far what was read was delivered (the checkpoint).
    pub acked_offset: u64,
    /// Bytes read from it since it was opened.
    pub read_bytes: u64,
    /// Events read from it since it was opened.
    pub read_events: u64,
}

impl FileProgress {
    /// Bytes not delivered yet: its size less the acknowledged offset.
    pub fn behind_bytes(&self) -> u64 {
        self.size.saturating_sub(self.acked_offset)
    }
}

#[derive(Debug)]
struct Reader {
    file: OpenFile,
    path: PathBuf,
    tags: Arc<SourceTags>,
    stream: Stream,
    matched: bool,
    /// Another config collects it now: read on like a rotated file until
    /// that config asks for it.
    disowned: bool,
    /// The new owner asked: no more reading; closed (and its position
    /// handed over) once what was read is acknowledged.
    handing_over: bool,
    /// A copytruncate copy outside the patterns, read only for the rest of
    /// a truncated file; its events carry the original's path.
    recovery: bool,
    deleted: bool,
    last_size: u64,
    last_change: Instant,
    /// Bytes and events read from it since it was opened.
    read_bytes: u64,
    read_events: u64,
}

#[derive(Debug)]
struct Retired {
    stream: Stream,
    since: Instant,
    unread: u64,
    path: PathBuf,
    /// Looked for a copy outside the patterns already (once more before
    /// it expires).
    searched: bool,
    /// Truncated while not open (seen at a checkpoint): how much was
    /// unread is not known.
    while_closed: bool,
}

/// Most files whose heads are read when looking for a copy outside the
/// patterns (the most recently modified first).
const COPY_SEARCH_MAX_FILES: usize = 256;
/// Only files modified this recently can be the copy of a truncation.
const COPY_SEARCH_MAX_AGE: Duration = Duration::from_secs(600);
/// Time one search may take before it gives up.
const COPY_SEARCH_MAX_TIME: Duration = Duration::from_millis(200);

/// Collects the files matched by one configuration. See the module docs.
///
/// Poll it from one thread; each [`EventBatch`] carries an [`AckToken`]
/// that the sink marks delivered once the data is safe, and only then does
/// the file's checkpoint move past it.
///
/// ```
/// use logtail_core::file::{FileInput, FileInputOptions};
/// use logtail_core::{EventBatch, Input, MemoryCheckpoint};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("app.log"), "first line\nsecond line\n")?;
/// let mut opts = FileInputOptions::default();
/// opts.paths.file_paths = vec![format!("{}/*.log", dir.path().display())];
/// let mut input = FileInput::new(opts, Box::new(MemoryCheckpoint::default()))?;
/// let mut batches: Vec<EventBatch> = Vec::new();
/// input.poll(&mut batches)?;
/// let lines: Vec<_> = batches
///     .iter()
///     .flat_map(|b| b.events.iter().map(|e| e.content.clone()))
///     .collect();
/// assert_eq!(lines, ["first line", "second line"]);
/// for b in batches {
///     b.delivered(); // the checkpoint may now move past these lines
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileInput {
    opts: FileInputOptions,
    multiline: Option<Arc<MultilineRules>>,
    paths: Box<dyn PathsProvider>,
    checkpoint: Box<dyn Checkpoint>,
    readers: HashMap<FileId, Reader>,
    by_path: HashMap<PathBuf, FileId>,
    sources: HashMap<u64, FileId>,
    retired: HashMap<u64, Retired>,
    held_copies: HashMap<FileId, Held>,
    /// Files seen by the first scan and not opened yet (held back, waiting
    /// for another config): they start at `TailSizeKB` when opened later.
    present_at_start: HashSet<FileId>,
    next_source: u64,
    watcher: Option<Watcher>,
    ack_tx: Sender<Ack>,
    ack_rx: Receiver<Ack>,
    started: bool,
    need_scan: bool,
    check_all: bool,
    changed_paths: HashSet<PathBuf>,
    busy: Vec<FileId>,
    open_failures: HashSet<PathBuf>,
    fds_exhausted: bool,
    last_scan: Option<Instant>,
    last_check: Instant,
    last_persist: Instant,
    last_refresh: Instant,
    dirty: bool,
    stats: FileInputStats,
    drops: DropWarnings,
    /// Reused per chunk: line ranges, and one decoded line.
    lines: Vec<Range<usize>>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for FileInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileInput")
            .field("config", &self.opts.config_name)
            .field("readers", &self.readers.len())
            .finish()
    }
}

fn default_max_open_files() -> usize {
    // SAFETY: rlimit is plain integers; all-zero is a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit fills the local struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft / 4).saturating_mul(3).max(16)
}

impl FileInput {
    /// Builds the input; validates the path patterns. Nothing is read
    /// until the first [`Input::poll`].
    pub fn new(
        opts: FileInputOptions,
        checkpoint: Box<dyn Checkpoint>,
    ) -> Result<FileInput, InputError> {
        let matcher = PathMatcher::new(&opts.paths)?;
        Self::with_paths(opts, checkpoint, Box::new(matcher))
    }

    /// Like [`FileInput::new`], with the candidate files listed by `paths`
    /// instead of the globs of `opts.paths` (which are then not used).
    pub fn with_paths(
        opts: FileInputOptions,
        checkpoint: Box<dyn Checkpoint>,
        paths: Box<dyn PathsProvider>,
    ) -> Result<FileInput, InputError> {
        let multiline = match &opts.multiline {
            Some(m) => {
                for w in MultilineRules::warnings_for(m) {
                    tracing::warn!(config = %opts.config_name, "{w}");
                }
                MultilineRules::compile(m)?
            }
            None => None,
        };
        let watcher = if opts.inotify { Watcher::new() } else { None };
        let mut opts = opts;
        if watcher.is_none() {
            opts.poll_interval = opts.poll_interval.min(Duration::from_millis(200));
        }
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let now = opts.clock.now();
        Ok(FileInput {
            opts,
            multiline,
            paths,
            checkpoint,
            readers: HashMap::new(),
            by_path: HashMap::new(),
            sources: HashMap::new(),
            retired: HashMap::new(),
            held_copies: HashMap::new(),
            present_at_start: HashSet::new(),
            next_source: 1,
            watcher,
            ack_tx,
            ack_rx,
            started: false,
            need_scan: true,
            check_all: true,
            changed_paths: HashSet::new(),
            busy: Vec::new(),
            open_failures: HashSet::new(),
            fds_exhausted: false,
            last_scan: None,
            last_check: now,
            last_persist: now,
            last_refresh: now,
            dirty: false,
            stats: FileInputStats::default(),
            drops: DropWarnings::default(),
            lines: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// What the input did so far.
    pub fn stats(&self) -> FileInputStats {
        let mut s = self.stats;
        s.files_open = self.readers.len() as u64;
        s.sigbus_faults = super::sigbus::faults_handled();
        for r in self.readers.values() {
            let f = r.stream.framer.stats();
            s.long_line_pieces += f.split_pieces;
            s.long_lines_truncated += f.truncated_lines;
        }
        s
    }

    /// The checkpoint store (for inspection).
    pub fn checkpoint(&self) -> &dyn Checkpoint {
        self.checkpoint.as_ref()
    }

    /// Paths of the files open now, with their read offsets.
    pub fn open_files(&self) -> Vec<(PathBuf, u64)> {
        let mut v: Vec<_> = self
            .readers
            .values()
            .map(|r| (r.path.clone(), r.stream.read_offset))
            .collect();
        v.sort();
        v
    }

    /// Where each open file stands, sorted by path: its size when last
    /// looked at, how far it was read and acknowledged, and what was read
    /// from it since it was opened.
    pub fn file_progress(&self) -> Vec<FileProgress> {
        let mut v: Vec<FileProgress> = self
            .readers
            .iter()
            .map(|(id, r)| FileProgress {
                path: r.path.clone(),
                dev: id.dev,
                inode: id.inode,
                size: r.last_size,
                read_offset: r.stream.read_offset,
                acked_offset: r.stream.tracker.committed(),
                read_bytes: r.read_bytes,
                read_events: r.read_events,
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    fn new_stream(&mut self, offset: u64, head: Vec<u8>) -> Stream {
        let source = self.next_source;
        self.next_source += 1;
        Stream {
            source,
            tracker: AckTracker::new(offset),
            read_offset: offset,
            signature: Signature::of(&head),
            head,
            framer: Framer::new(self.opts.framing),
            decoder: match self.opts.encoding {
                FileEncoding::Gbk => Some(Decoder::new(FileEncoding::Gbk, Utf16Order::Le)),
                // UTF-16: made with the framer, once the order is known.
                FileEncoding::Utf8 | FileEncoding::Utf16 => None,
            },
            multiline: self
                .multiline
                .as_ref()
                .map(|m| Multiline::new(Arc::clone(m), self.opts.chunk_bytes)),
        }
    }

    fn tags(&self, path: &Path, id: FileId) -> Arc<SourceTags> {
        Arc::new(SourceTags {
            path: path.to_path_buf(),
            dev: id.dev,
            inode: id.inode,
            config: Arc::clone(&self.opts.config_name),
        })
    }

    fn record(&mut self, id: FileId, path: &Path, signature: Signature, offset: u64) {
        self.checkpoint.update(FilePosition {
            id,
            signature,
            offset,
            path: path.to_string_lossy().into_owned(),
            updated: unix_secs(self.opts.clock.wall()),
        });
        self.dirty = true;
    }

    // ---- acknowledgements -------------------------------------------------

    fn handle_ack(&mut self, ack: Ack) {
        let BatchId { source, seq } = ack.id;
        if let Some(id) = self.sources.get(&source).copied() {
            let Some(r) = self.readers.get_mut(&id) else {
                return;
            };
            if !ack.delivered {
                tracing::warn!(
                    path = %r.path.display(),
                    "a batch was not delivered; this file's checkpoint stays before it until restart"
                );
            }
            if let Some(offset) = r.stream.tracker.ack(seq, ack.delivered) {
                let (path, sig) = (r.path.clone(), r.stream.signature);
                self.record(id, &path, sig, offset);
            }
        } else if let Some(ret) = self.retired.get_mut(&source) {
            ret.stream.tracker.ack(seq, ack.delivered);
        }
    }

    fn drain_acks(&mut self) {
        while let Ok(ack) = self.ack_rx.try_recv() {
            self.handle_ack(ack);
        }
    }

    /// Whether reading waits for acknowledgements ([`FileInputOptions::max_in_flight_bytes`]).
    fn over_in_flight_cap(&self) -> bool {
        let cap = self.opts.max_in_flight_bytes;
        let bytes = |t: &crate::ack::AckTracker| t.in_flight_bytes();
        cap > 0
            && self
                .readers
                .values()
                .map(|r| bytes(&r.stream.tracker))
                .chain(self.retired.values().map(|r| bytes(&r.stream.tracker)))
                .sum::<u64>()
                >= cap
    }

    fn in_flight(&self) -> usize {
        self.readers
            .values()
            .map(|r| r.stream.tracker.in_flight())
            .sum::<usize>()
            + self
                .retired
                .values()
                .map(|r| r.stream.tracker.in_flight())
                .sum::<usize>()
    }

    // ---- discovery ----------------------------------------------------------

    fn discover(&mut self, now: Instant) {
        let scan = self.paths.scan();
        for (dir, e) in &scan.errors {
            tracing::debug!(dir = %dir.display(), "cannot scan: {e}");
        }
        if let Some(w) = self.watcher.as_mut() {
            w.sync(&scan.dirs);
        }
        for r in self.readers.values_mut() {
            r.matched = false;
        }
        // First every match is marked, so that making room for a new file
        // (which closes a drained, matched reader) sees the whole picture.
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut by_path = HashMap::new();
        let mut unknown = Vec::new();
        for path in scan.files {
            if let Some(c) = &self.opts.claims {
                if !c.allows(&self.opts.config_name, &path) {
                    // Another config collects it: our reader of it reads on
                    // as an unmatched one until that config asks for it.
                    let reader = self
                        .by_path
                        .get(&path)
                        .and_then(|id| self.readers.get_mut(id));
                    if let Some(r) = reader.filter(|r| r.path == path && !r.disowned) {
                        tracing::info!(path = %path.display(), offset = r.stream.read_offset, "another config collects this file now");
                        r.disowned = true;
                    }
                    continue;
                }
            }
            // Follows symlinks: a link is collected as its target's identity.
            let meta = match std::fs::metadata(&path) {
                Ok(m) if !m.is_dir() => m,
                _ => continue,
            };
            use std::os::unix::fs::MetadataExt;
            let id = FileId {
                dev: meta.dev(),
                inode: meta.ino(),
            };
            if !seen.insert(id) {
                continue; // the same file through a second path
            }
            if !self.started {
                self.present_at_start.insert(id);
            }
            by_path.insert(path.clone(), id);
            if let Some(r) = self.readers.get_mut(&id) {
                r.matched = true;
                r.disowned = false;
                r.handing_over = false;
                if r.path != path {
                    tracing::debug!(from = %r.path.display(), to = %path.display(), "renamed");
                    self.stats.renames += 1;
                    r.path = path.clone();
                    r.tags = Arc::new(SourceTags {
                        path: path.clone(),
                        ..(*r.tags).clone()
                    });
                }
                continue;
            }
            let checkpointed = match self.checkpoint.get(id) {
                // Idle-closed earlier and unchanged since: nothing to do.
                Some(p) if meta.len() == p.offset && meta.file_type().is_file() => continue,
                Some(_) => true,
                None => false,
            };
            unknown.push((!checkpointed, path));
        }
        // Files we have a checkpoint of first: one truncated while the
        // agent was not running leaves its stream for its copy to continue.
        unknown.sort_by_key(|(fresh, _)| *fresh);
        for (_, path) in unknown {
            if self.fds_exhausted {
                break;
            }
            if let Some(id) = self.open_new(&path, now) {
                by_path.insert(path, id);
            }
        }
        if self.fds_exhausted {
            tracing::warn!(
                open = self.readers.len(),
                "out of file descriptors: some matched files wait for one (raise the open-file limit)"
            );
            self.fds_exhausted = false;
        }
        self.held_copies.retain(|id, _| seen.contains(id));
        self.present_at_start.retain(|id| seen.contains(id));
        self.by_path = by_path;
        self.started = true;
        self.last_scan = Some(now);
        self.need_scan = false;
    }

    /// A path whose inode no reader has. Returns the id when a reader was made.
    fn open_new(&mut self, path: &Path, now: Instant) -> Option<FileId> {
        if self.readers.len() >= self.opts.max_open_files && !self.make_room() {
            self.stats.deferred_opens += 1;
            return None;
        }
        let file = match OpenFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.stats.io_errors += 1;
                let no_fds = matches!(
                    e.source.raw_os_error(),
                    Some(libc::EMFILE) | Some(libc::ENFILE)
                );
                if no_fds {
                    // Out of descriptors: free one for the next try, and
                    // stop opening for this scan.
                    self.stats.deferred_opens += 1;
                    self.make_room();
                    self.fds_exhausted = true;
                }
                // Once per path, not once per scan.
                if self.open_failures.insert(path.to_path_buf()) {
                    tracing::warn!("{e}");
                }
                return None;
            }
        };
        self.open_failures.remove(path);
        let id = file.id();
        if self.readers.contains_key(&id) {
            return None;
        }
        let (head, size) = match file.head().and_then(|h| Ok((h, file.state()?.size))) {
            Ok(x) => x,
            Err(e) => {
                self.stats.io_errors += 1;
                tracing::warn!(path = %path.display(), "cannot read the head: {e}");
                return None;
            }
        };
        let signature = Signature::of(&head);
        // Hashes of every prefix of the head: checking it against the
        // signature of each live stream is then O(1) per stream, not O(1 KiB)
        // (thousands of files are compared at start-up).
        let hashes = prefix_hashes(&head);

        let decision = self.decide(id, path, &file, &head, &hashes, size, now);
        let opened_why;
        let start = match decision {
            Decision::Hold { rescan } => {
                self.need_scan |= rescan;
                return None;
            }
            Decision::Adopt { retired } => {
                let ret = self.retired.remove(&retired)?;
                note_after_copy(&mut self.stats, &ret, path, size);
                let mut stream = ret.stream;
                stream.signature = signature;
                stream.head = head;
                tracing::info!(
                    copy = %path.display(), original = %ret.path.display(), offset = stream.read_offset,
                    "continuing a truncated file in its copy"
                );
                self.stats.copies_adopted += 1;
                let offset = stream.tracker.committed();
                self.install(
                    id,
                    file,
                    path,
                    stream,
                    size,
                    now,
                    "continues a truncated file",
                );
                self.record(id, path, signature, offset);
                return Some(id);
            }
            Decision::Open { start, why } => {
                self.note_opening(id, path, size, why, now);
                opened_why = start_why(start);
                match start {
                    Start::At(offset) => offset,
                    Start::End => size,
                    Start::Zero => 0,
                    Start::Tail => {
                        let utf16 = (self.opts.encoding == FileEncoding::Utf16)
                            .then(|| Utf16Order::detect(&head));
                        let start = tail_start(
                            &file,
                            size,
                            self.opts.tail_size_kb.saturating_mul(1024),
                            utf16,
                        );
                        if start > 0 {
                            tracing::info!(
                                "{}: starting {} bytes before the end (TailSizeKB {}); {start} bytes skipped",
                                path.display(),
                                size - start,
                                self.opts.tail_size_kb
                            );
                        }
                        start
                    }
                }
            }
        };
        let stream = self.new_stream(start, head);
        self.install(id, file, path, stream, size, now, opened_why);
        self.record(id, path, signature, start);
        Some(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &mut self,
        id: FileId,
        file: OpenFile,
        path: &Path,
        stream: Stream,
        size: u64,
        now: Instant,
        why: &str,
    ) {
        tracing::info!(
            config = %self.opts.config_name,
            "opened {} at offset {} of {size} bytes: {why}",
            path.display(),
            stream.read_offset
        );
        self.stats.files_opened += 1;
        self.present_at_start.remove(&id);
        if let Some(c) = &self.opts.claims {
            c.opened(&self.opts.config_name, id);
        }
        self.sources.insert(stream.source, id);
        let tags = self.tags(path, id);
        self.readers.insert(
            id,
            Reader {
                file,
                path: path.to_path_buf(),
                tags,
                stream,
                matched: true,
                disowned: false,
                handing_over: false,
                recovery: false,
                deleted: false,
                last_size: size,
                last_change: now,
                read_bytes: 0,
                read_events: 0,
            },
        );
    }

    // ---- reading ------------------------------------------------------------

    fn service_all(&mut self, emit: &mut dyn Emit, now: Instant) -> Result<bool, InputError> {
        if self.over_in_flight_cap() {
            return Ok(false);
        }
        // Readers that hit their read budget last time go first again.
        let mut ids: Vec<FileId> = std::mem::take(&mut self.busy);
        if self.check_all {
            let first: HashSet<FileId> = ids.iter().copied().collect();
            ids.extend(
                self.readers
                    .keys()
                    .copied()
                    .filter(|id| !first.contains(id)),
            );
        } else {
            let paths = std::mem::take(&mut self.changed_paths);
            for id in paths.iter().filter_map(|p| self.by_path.get(p)) {
                if !ids.contains(id) {
                    ids.push(*id);
                }
            }
        }
        let mut busy = false;
        for id in ids {
            match self.service(id, emit, now)? {
                Serviced::More => {
                    busy = true;
                    self.busy.push(id);
                }
                Serviced::Done => {}
                Serviced::Truncated { unread } => self.retire(id, unread, now),
            }
        }
        if self.check_all {
            self.last_check = now;
            self.check_all = false;
        }
        Ok(busy)
    }

    fn service(
        &mut self,
        id: FileId,
        emit: &mut dyn Emit,
        now: Instant,
    ) -> Result<Serviced, InputError> {
        let Some(r) = self.readers.get_mut(&id) else {
            return Ok(Serviced::Done);
        };
        if r.handing_over {
            return Ok(Serviced::Done); // the new owner reads on from our offset
        }
        let state = match r.file.state() {
            Ok(s) => s,
            Err(e) => {
                self.stats.io_errors += 1;
                tracing::warn!(path = %r.path.display(), "fstat failed: {e}");
                return Ok(Serviced::Done);
            }
        };
        r.deleted = state.nlink == 0;
        let prev_size = r.last_size;
        if state.size != r.last_size {
            r.last_size = state.size;
            r.last_change = now;
        }
        // Streams have no size to shrink below the offset.
        if !r.file.is_stream() && state.size < r.stream.read_offset {
            return Ok(Serviced::Truncated {
                unread: prev_size.saturating_sub(r.stream.read_offset),
            });
        }

        let max_line = self.opts.framing.max_line_bytes.saturating_add(1);
        let chunk_max = if r.stream.multiline.is_some() {
            // Room for a pending event of up to `chunk_bytes` (where events
            // are cut) and the whole next line after it: a chunk always
            // gets somewhere, so a file cannot stall.
            self.opts
                .chunk_bytes
                .saturating_add(max_line)
                .saturating_add(1)
        } else {
            self.opts.chunk_bytes.max(max_line)
        };
        let idle = now.duration_since(r.last_change);
        let timed_out = idle >= self.opts.flush_timeout;
        // A file that no longer matches is about to be closed once drained:
        // its pending multi-line event goes out first. (An incomplete line
        // still waits for the flush timeout, as without multi-line.)
        let closing = (!r.matched || r.deleted) && idle >= self.opts.close_rotated_after;
        let mut budget = self.opts.read_budget.max(chunk_max);
        let mut size = state.size;
        loop {
            if size <= r.stream.read_offset || budget == 0 {
                break;
            }
            let chunk = match r.file.read(r.stream.read_offset, size, chunk_max) {
                Ok(ReadOutcome::Data(c)) => c,
                Ok(ReadOutcome::Truncated) => {
                    return Ok(Serviced::Truncated {
                        unread: prev_size.saturating_sub(r.stream.read_offset),
                    })
                }
                Err(e) => {
                    self.stats.io_errors += 1;
                    tracing::warn!(path = %r.path.display(), offset = r.stream.read_offset, "read failed: {e}");
                    return Ok(Serviced::Done);
                }
            };
            if chunk.is_empty() {
                break;
            }
            // Is it still the content we were reading? Checked after the
            // read, so a truncate-and-refill past our offset at any moment
            // before it is caught: the bytes belong to new content, so drop
            // them and treat it as the truncation it was (the copy, if any,
            // still has the old bytes). A small file's signature grows here.
            if !r.file.is_stream() {
                match r.file.head() {
                    Ok(head) if r.stream.signature.is_prefix_of(&head) => {
                        if head.len() as u32 > r.stream.signature.len {
                            r.stream.signature = Signature::of(&head);
                            r.stream.head = head;
                        }
                    }
                    Ok(_) => {
                        return Ok(Serviced::Truncated {
                            unread: prev_size.saturating_sub(r.stream.read_offset),
                        })
                    }
                    Err(e) => {
                        self.stats.io_errors += 1;
                        tracing::warn!(path = %r.path.display(), "cannot read the head: {e}");
                        return Ok(Serviced::Done);
                    }
                }
            }
            let base = r.stream.read_offset;
            let time = Timestamp::now();
            // Everything there is was read: a regular file's end, or all a
            // stream had buffered.
            let at_end = if r.file.is_stream() {
                chunk.len() < chunk_max
            } else {
                base + chunk.len() as u64 >= size
            };
            let truncated_before = r.stream.framer.stats().truncated_lines;
            let mut out = process_chunk(
                &mut r.stream,
                &chunk,
                base,
                time,
                Flush {
                    line: at_end && timed_out,
                    event: at_end && (timed_out || closing),
                },
                self.opts.encoding,
                &mut self.lines,
                &mut self.scratch,
            );
            if out.consumed == 0 && !at_end && r.stream.multiline.is_some() {
                // Cannot happen with the chunk sized as above; but never
                // stall a file: force the pending event out.
                tracing::warn!(path = %r.path.display(), "multi-line event does not fit a chunk: flushed");
                let more = process_chunk(
                    &mut r.stream,
                    &chunk,
                    base,
                    time,
                    Flush {
                        line: false,
                        event: true,
                    },
                    self.opts.encoding,
                    &mut self.lines,
                    &mut self.scratch,
                );
                out.merge(more);
            }
            if out.partial {
                self.stats.partial_flushes += 1;
            }
            self.stats.decode_replacements += out.replacements;
            self.stats.multiline_unmatched_lines += out.ml.unmatched_lines;
            self.stats.multiline_discarded_lines += out.ml.discarded_lines;
            self.stats.multiline_cut_events += out.ml.cut_events;
            self.stats.multiline_flushes += out.ml.flushes;
            let truncated = r
                .stream
                .framer
                .stats()
                .truncated_lines
                .saturating_sub(truncated_before);
            if truncated > 0 || out.ml.discarded_lines > 0 {
                self.drops.note(
                    &self.opts.config_name,
                    &r.path,
                    truncated,
                    out.ml.discarded_lines,
                    now,
                );
            }
            let (events, consumed) = (out.events, out.consumed);
            if consumed == 0 {
                break; // only an incomplete line so far
            }
            r.stream.read_offset += consumed as u64;
            budget = budget.saturating_sub(consumed);
            self.stats.lines += events.len() as u64;
            self.stats.bytes += consumed as u64;
            r.read_events += events.len() as u64;
            r.read_bytes += consumed as u64;
            self.stats.batches += 1;
            let seq = r.stream.tracker.push(r.stream.read_offset);
            let batch = EventBatch {
                source: Arc::clone(&r.tags),
                events,
                bytes: consumed as u64,
                ack: AckToken::new(
                    BatchId {
                        source: r.stream.source,
                        seq,
                    },
                    self.ack_tx.clone(),
                ),
            };
            if emit.emit(batch).is_err() {
                return Err(InputError::Closed);
            }
            if r.file.is_stream() {
                size = match r.file.state() {
                    Ok(s) => s.size,
                    Err(_) => break,
                };
            }
            if consumed < chunk.len() && base + chunk.len() as u64 >= size {
                break; // the rest is an incomplete line
            }
        }
        let more = size > r.stream.read_offset && budget == 0;
        // An incomplete line (or event) waiting for its flush timeout needs
        // a later look.
        if size > r.stream.read_offset {
            let idle = now.duration_since(r.last_change);
            self.check_all |= idle >= self.opts.flush_timeout
                || (!r.matched || r.deleted) && idle >= self.opts.close_rotated_after;
        }
        Ok(if more { Serviced::More } else { Serviced::Done })
    }

    /// The file at `id` was truncated: its stream waits for a copy to
    /// continue in; the file itself starts over at 0.
    fn retire(&mut self, id: FileId, unread: u64, now: Instant) {
        let head = match self.readers.get(&id).map(|r| r.file.head()) {
            Some(Ok(h)) => h,
            _ => Vec::new(),
        };
        let signature = Signature::of(&head);
        let fresh = self.new_stream(0, head);
        let Some(r) = self.readers.get_mut(&id) else {
            return;
        };
        self.stats.truncations += 1;
        tracing::info!(path = %r.path.display(), offset = r.stream.read_offset, "truncated");
        let old = std::mem::replace(&mut r.stream, fresh);
        let path = r.path.clone();
        r.last_size = 0;
        self.sources.remove(&old.source);
        self.sources.insert(r.stream.source, id);
        if old.signature.len > 0 {
            self.retired.insert(
                old.source,
                Retired {
                    stream: old,
                    since: now,
                    unread,
                    path: path.clone(),
                    searched: false,
                    while_closed: false,
                },
            );
        }
        self.record(id, &path, signature, 0);
        // Look for the copy now rather than at the next scan.
        self.need_scan = true;
    }

    /// Gathers what the rotation decisions need to know about the newcomer
    /// at `path` and decides what it is ([`rotation::decide`]).
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        id: FileId,
        path: &Path,
        file: &OpenFile,
        head: &[u8],
        hashes: &[u64],
        size: u64,
        now: Instant,
    ) -> Decision {
        // A live file whose head was short when it was last looked at, and
        // that the newcomer starts with, may have grown its full head since.
        for r in self.readers.values_mut() {
            let grows_into = !r.stream.signature.is_complete()
                && head.len() > r.stream.head.len()
                && head.starts_with(&r.stream.head);
            if grows_into && !r.file.is_stream() {
                if let Ok(h) = r.file.head() {
                    if h.starts_with(&r.stream.head) {
                        r.stream.signature = Signature::of(&h);
                        r.stream.head = h;
                    }
                }
            }
        }
        // Only the streams the newcomer starts like can bear on it: at
        // start-up thousands of files are compared with thousands of
        // readers, so the rest are skipped here, O(1) each.
        let live: Vec<rotation::Live<'_>> = self
            .readers
            .iter()
            .filter(|(_, r)| {
                let s = &r.stream;
                !r.file.is_stream()
                    && (s.signature.len > 0 && s.signature.is_prefix_of_hashed(hashes)
                        || head.len() < s.head.len() && s.head.starts_with(head))
            })
            .map(|(rid, r)| rotation::Live {
                id: *rid,
                signature: r.stream.signature,
                head: &r.stream.head,
                read_offset: r.stream.read_offset,
                recovery: r.recovery,
            })
            .collect();
        let retired: Vec<rotation::RetiredView<'_>> = self
            .retired
            .iter()
            .map(|(source, r)| rotation::RetiredView {
                source: *source,
                signature: r.stream.signature,
                head: &r.stream.head,
                read_offset: r.stream.read_offset,
            })
            .collect();
        let handover = match &self.opts.claims {
            Some(c) => c.handover(&self.opts.config_name, id),
            None => Handover::None,
        };
        let checkpoint = self.checkpoint.get(id).map(|p| rotation::CheckpointView {
            signature: p.signature,
            offset: p.offset,
            same_path: p.path.as_str() == path.to_string_lossy(),
        });
        let cx = rotation::Context {
            now,
            copy_wait: self.opts.copy_wait,
            live: &live,
            retired: &retired,
            checkpoint,
            handover,
            present_at_start: !self.started || self.present_at_start.contains(&id),
        };
        let readers = &self.readers;
        let mut probe = |rid: FileId| match readers.get(&rid) {
            Some(r) => {
                let size = r.file.state().map_or(r.last_size, |s| s.size);
                let truncated = size < r.stream.read_offset
                    || r.file
                        .head()
                        .is_ok_and(|h| !r.stream.signature.is_prefix_of(&h));
                rotation::LiveFile { size, truncated }
            }
            None => rotation::LiveFile {
                size: 0,
                truncated: true,
            },
        };
        let mut same_tail = |rid: FileId| {
            readers
                .get(&rid)
                .is_some_and(|r| same_bytes_before(r.file.raw(), file.raw(), size))
        };
        let n = rotation::Newcomer {
            size,
            head,
            hashes,
            is_stream: file.is_stream(),
        };
        let mut held = self.held_copies.get(&id).copied();
        let decision = rotation::decide(&n, &cx, &mut held, &mut probe, &mut same_tail);
        match held {
            Some(h) => {
                self.held_copies.insert(id, h);
            }
            None => {
                self.held_copies.remove(&id);
            }
        }
        decision
    }

    /// Logs, counts and does what opening the newcomer at `path` for `why`
    /// implies besides reading it.
    fn note_opening(&mut self, id: FileId, path: &Path, size: u64, why: Why, now: Instant) {
        match why {
            Why::CopyAlreadyRead { retired } => {
                if let Some(r) = self.retired.remove(&retired) {
                    // Written to the original after the copy was made.
                    if r.unread > 0 {
                        tracing::warn!(
                            path = %r.path.display(), copy = %path.display(), bytes = r.unread,
                            "file truncated before it was read to the end, and its copy ends before what was read: the bytes written between the copy and the truncation are lost"
                        );
                    }
                    self.stats.truncated_unread_bytes += r.unread;
                    tracing::info!(copy = %path.display(), original = %r.path.display(), size, "a copy of a truncated file holds nothing unread: opened at its end");
                }
            }
            Why::Duplicate => {
                tracing::info!(
                    path = %path.display(), bytes = size,
                    "starts like a file being read and was not followed by its truncation: a duplicate whose bytes were collected from the original; reading only what is appended to it"
                );
                self.stats.duplicates_skipped += 1;
                self.stats.duplicate_bytes_skipped += size;
            }
            Why::HandedOver => {
                tracing::info!(path = %path.display(), "taking over from another config");
            }
            Why::HandedOverTruncated => self.stats.truncations += 1,
            Why::Rewritten => {
                self.stats.truncations += 1;
                tracing::info!(path = %path.display(), "truncated since the checkpoint was written: read from 0; its copy, if any, continues from the checkpoint");
            }
            Why::InodeReused => {
                self.stats.inode_reuse += 1;
                tracing::info!(path = %path.display(), "inode reused by a new file");
            }
            Why::Checkpoint | Why::New => {}
        }
        // A checkpoint that no longer describes the file: its stream waits
        // for a copy to continue in (copytruncate while not open).
        let stale = !matches!(
            why,
            Why::Checkpoint | Why::HandedOver | Why::HandedOverTruncated
        );
        if stale {
            if let Some(p) = self.checkpoint.get(id).cloned() {
                self.retire_checkpointed(&p, now);
                self.checkpoint.forget(id);
                self.dirty = true;
            }
        }
    }

    /// A checkpointed stream whose file was truncated or replaced while it
    /// was not open: retired, so that its copy, if one appears or can be
    /// found, continues from the checkpoint.
    fn retire_checkpointed(&mut self, p: &FilePosition, now: Instant) {
        if p.signature.len == 0 || p.offset == 0 {
            return;
        }
        let mut stream = self.new_stream(p.offset, Vec::new());
        stream.signature = p.signature;
        self.retired.insert(
            stream.source,
            Retired {
                stream,
                since: now,
                unread: 0,
                path: PathBuf::from(&p.path),
                searched: false,
                while_closed: true,
            },
        );
    }

    /// Looks for the copy of the truncated stream `source` outside the
    /// patterns and, if found, reads the stream's rest from it. Returns
    /// whether it was found.
    fn recover_from_copy(&mut self, source: u64, now: Instant) -> bool {
        let Some(ret) = self.retired.get_mut(&source) else {
            return false;
        };
        ret.searched = true;
        let (original, sig, offset) = (
            ret.path.clone(),
            ret.stream.signature,
            ret.stream.read_offset,
        );
        if sig.len == 0 {
            return false;
        }
        let Some((copy, file, size)) = self.find_copy(&original, sig, offset) else {
            return false;
        };
        let Some(ret) = self.retired.remove(&source) else {
            return false;
        };
        let id = file.id();
        tracing::info!(
            copy = %copy.display(), original = %original.display(), from = offset, to = size,
            "reading the rest of a truncated file from its copy outside the patterns"
        );
        self.stats.copies_recovered += 1;
        self.stats.bytes_recovered += size.saturating_sub(offset);
        note_after_copy(&mut self.stats, &ret, &copy, size);
        let tags = self.tags(&original, id);
        self.install(
            id,
            file,
            &copy,
            ret.stream,
            size,
            now,
            "holds the rest of a truncated file",
        );
        if let Some(r) = self.readers.get_mut(&id) {
            r.recovery = true;
            r.matched = false;
            r.tags = tags;
        }
        self.check_all = true;
        true
    }

    /// The copy of a file truncated at `original` after `offset` bytes
    /// were read: a recently modified regular file longer than `offset`
    /// that starts with the bytes of `sig`, in the original's directory or
    /// a `CopyTruncateDirs` one, not matched by the patterns and not open.
    /// Bounded: [`COPY_SEARCH_MAX_FILES`] heads read, [`COPY_SEARCH_MAX_TIME`].
    fn find_copy(
        &self,
        original: &Path,
        sig: Signature,
        offset: u64,
    ) -> Option<(PathBuf, OpenFile, u64)> {
        use std::os::unix::fs::MetadataExt;
        let started = Instant::now();
        let dir = original.parent()?;
        let mut dirs = vec![dir.to_path_buf()];
        for d in &self.opts.copy_truncate_dirs {
            let d = if d.is_absolute() {
                d.clone()
            } else {
                dir.join(d)
            };
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        let cutoff = SystemTime::now()
            .checked_sub(COPY_SEARCH_MAX_AGE)
            .unwrap_or(UNIX_EPOCH);
        let mut candidates: Vec<(SystemTime, PathBuf)> = Vec::new();
        let mut timed_out = false;
        'dirs: for d in &dirs {
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            for e in entries.flatten() {
                if started.elapsed() > COPY_SEARCH_MAX_TIME {
                    timed_out = true;
                    break 'dirs;
                }
                let p = e.path();
                if p == original || self.by_path.contains_key(&p) {
                    continue;
                }
                // Not following links: a copy is a regular file.
                let Ok(m) = e.metadata() else {
                    continue;
                };
                let id = FileId {
                    dev: m.dev(),
                    inode: m.ino(),
                };
                if !m.is_file() || m.len() <= offset || self.readers.contains_key(&id) {
                    continue;
                }
                match m.modified() {
                    Ok(t) if t >= cutoff => candidates.push((t, p)),
                    _ => {}
                }
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (_, p) in candidates.into_iter().take(COPY_SEARCH_MAX_FILES) {
            if started.elapsed() > COPY_SEARCH_MAX_TIME {
                timed_out = true;
                break;
            }
            let Ok(file) = OpenFile::open(&p) else {
                continue;
            };
            let (Ok(head), Ok(state)) = (file.head(), file.state()) else {
                continue;
            };
            if !file.is_stream() && state.size > offset && sig.is_prefix_of(&head) {
                return Some((p, file, state.size));
            }
        }
        if timed_out {
            tracing::warn!(
                path = %original.display(),
                "the search for a truncated file's copy ran out of time ({} ms)",
                COPY_SEARCH_MAX_TIME.as_millis()
            );
        }
        None
    }

    fn expire_retired(&mut self, now: Instant) {
        let wait = self.opts.copy_wait.max(self.opts.discovery_interval) * 3;
        let expired: Vec<u64> = self
            .retired
            .iter()
            .filter(|(_, r)| now.duration_since(r.since) > wait)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            // A last look for a copy outside the patterns (it may have been
            // written after the first search).
            if self.recover_from_copy(s, now) {
                continue;
            }
            if let Some(r) = self.retired.remove(&s) {
                if r.while_closed {
                    tracing::warn!(
                        path = %r.path.display(), offset = r.stream.read_offset,
                        "file truncated or replaced while it was not open, and no copy was found: what was written after the checkpoint's offset before that is lost"
                    );
                }
                if r.unread > 0 {
                    tracing::warn!(
                        path = %r.path.display(), bytes = r.unread,
                        "file truncated before it was read to the end, and no copy was found"
                    );
                }
                self.stats.truncated_unread_bytes += r.unread;
            }
        }
    }

    /// Closes the reader that has been idle longest among those that are
    /// drained, still matched and have nothing in flight, to free a
    /// descriptor; it is reopened from its checkpoint when its file grows.
    fn make_room(&mut self) -> bool {
        let victim = self
            .readers
            .iter()
            .filter(|(_, r)| {
                r.matched
                    && !r.file.is_stream()
                    && r.last_size <= r.stream.read_offset
                    && r.stream.tracker.in_flight() == 0
            })
            .min_by_key(|(_, r)| r.last_change)
            .map(|(id, _)| *id);
        let Some(id) = victim else {
            return false;
        };
        self.close_reader(id, "close to free a descriptor");
        true
    }

    /// Closes a reader; a deleted file's checkpoint goes with it.
    fn close_reader(&mut self, id: FileId, why: &str) {
        if let Some(r) = self.readers.remove(&id) {
            tracing::info!(
                config = %self.opts.config_name,
                "closed {} at offset {} ({} acknowledged): {why}{}",
                r.path.display(),
                r.stream.read_offset,
                r.stream.tracker.committed(),
                if r.deleted { " (deleted)" } else { "" }
            );
            self.stats.files_closed += 1;
            if let Some(c) = &self.opts.claims {
                let released =
                    (!r.deleted).then(|| (r.stream.tracker.committed(), r.stream.signature));
                c.closed(&self.opts.config_name, id, released);
            }
            self.sources.remove(&r.stream.source);
            if r.deleted || r.recovery {
                // A recovery copy is not one of our files: no checkpoint.
                self.checkpoint.forget(id);
                self.dirty = true;
            }
        }
    }

    fn close_idle(&mut self, now: Instant) {
        let mut closing = Vec::new();
        for (id, r) in self.readers.iter_mut() {
            if r.disowned && !r.handing_over {
                let claims = self.opts.claims.as_ref();
                if claims.is_some_and(|c| c.wanted(&self.opts.config_name, *id)) {
                    tracing::info!(path = %r.path.display(), offset = r.stream.read_offset, "handing this file over to the config that collects it now");
                    r.handing_over = true;
                }
            }
            if r.handing_over {
                // Handed over once everything read is acknowledged.
                if r.stream.tracker.in_flight() == 0 {
                    closing.push(*id);
                }
                continue;
            }
            let drained = r.last_size <= r.stream.read_offset || r.file.is_stream() && r.deleted;
            let idle = now.duration_since(r.last_change);
            let limit = if r.matched {
                self.opts.close_inactive_after
            } else {
                self.opts.close_rotated_after
            };
            if drained && idle >= limit && r.stream.tracker.in_flight() == 0 {
                closing.push(*id);
            }
        }
        for id in closing {
            self.close_reader(id, "close");
        }
    }

    fn persist(&mut self, now: Instant, force: bool) -> Result<(), InputError> {
        // Keep the entries of open, idle files from expiring.
        let ttl = self.opts.checkpoint_ttl;
        if now.duration_since(self.last_refresh) >= ttl / 4 {
            let refresh: Vec<_> = self
                .readers
                .iter()
                .map(|(id, r)| {
                    (
                        *id,
                        r.path.clone(),
                        r.stream.signature,
                        r.stream.tracker.committed(),
                    )
                })
                .collect();
            for (id, path, sig, offset) in refresh {
                self.record(id, &path, sig, offset);
            }
            let cutoff = unix_secs(self.opts.clock.wall()).saturating_sub(ttl.as_secs());
            self.checkpoint.expire(cutoff);
            self.last_refresh = now;
        }
        if self.dirty
            && (force || now.duration_since(self.last_persist) >= self.opts.checkpoint_interval)
        {
            self.checkpoint.persist()?;
            self.dirty = false;
            self.last_persist = now;
        }
        Ok(())
    }

    fn take_watch_events(&mut self, changes: super::watch::Changes) {
        if changes.names || changes.overflow {
            self.need_scan = true;
        }
        if changes.data || changes.overflow {
            // Which file is unknown at this level: look at all of them.
            self.check_all = true;
            // A held file that grew may turn out to be a copy, or not.
            self.need_scan |= !self.held_copies.is_empty();
        }
    }
}

enum Serviced {
    Done,
    More,
    Truncated { unread: u64 },
}

/// Warns when the input itself drops data by configuration (long lines
/// under `LongLinePolicy: truncate`, lines outside any multi-line event
/// under `UnmatchedContentTreatment: discard`): at the first drop, then at
/// most once a minute with the counts since.
#[derive(Debug, Default)]
struct DropWarnings {
    last: Option<Instant>,
    truncated: u64,
    discarded: u64,
}

impl DropWarnings {
    const EVERY: Duration = Duration::from_secs(60);

    fn note(&mut self, config: &str, path: &Path, truncated: u64, discarded: u64, now: Instant) {
        self.truncated += truncated;
        self.discarded += discarded;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return;
        }
        self.last = Some(now);
        if self.truncated > 0 {
            tracing::warn!(
                "pipeline {config}: {}: {} over-long lines cut at MaxLineBytes and their rest dropped (LongLinePolicy: truncate; `split` keeps them in pieces)",
                path.display(),
                self.truncated
            );
        }
        if self.discarded > 0 {
            tracing::warn!(
                "pipeline {config}: {}: {} lines matched no multi-line event and were dropped (Multiline UnmatchedContentTreatment: discard; `single_line` keeps them)",
                path.display(),
                self.discarded
            );
        }
        self.truncated = 0;
        self.discarded = 0;
    }
}

/// Counts (and logs) what the original of a copytruncate copy held beyond
/// the copy's end when it was last seen: written between the copy and the
/// truncation, so in neither file any more.
/// Why a file is opened where it is, in words (for the log line).
fn start_why(start: Start) -> &'static str {
    match start {
        Start::At(_) => "continues from its checkpoint (or where the previous reader stopped)",
        Start::End => "at its end: what it holds was collected already",
        Start::Tail => {
            "found at start-up without a checkpoint: from TailSizeKB before its end (or its start)"
        }
        Start::Zero => "a new file, from its start",
    }
}

fn note_after_copy(stats: &mut FileInputStats, ret: &Retired, copy: &Path, copy_size: u64) {
    let seen_end = ret.stream.read_offset.saturating_add(ret.unread);
    let lost = seen_end.saturating_sub(copy_size);
    if lost > 0 {
        tracing::warn!(
            path = %ret.path.display(), copy = %copy.display(), bytes = lost,
            "bytes written to the file after its copy was made and before its truncation are lost"
        );
        stats.truncated_unread_bytes += lost;
    }
}

/// Whether the bytes just before `end` (up to 4 KiB) are the same in both
/// files.
fn same_bytes_before(a: &std::fs::File, b: &std::fs::File, end: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let n = end.min(4096) as usize;
    let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
    let at = end - n as u64;
    a.read_exact_at(&mut x, at).is_ok() && b.read_exact_at(&mut y, at).is_ok() && x == y
}

/// Where to start a file found at start-up: `tail` bytes before its end,
/// moved forward to the start of the next line (for UTF-16 files, of the
/// next line in 2-byte units, in the given order).
fn tail_start(file: &OpenFile, size: u64, tail: u64, utf16: Option<Utf16Order>) -> u64 {
    if size <= tail {
        return 0;
    }
    let from = size - tail;
    // Look for the newline that ends the line `from` falls into. Windows
    // are even-sized from an even probe, so no UTF-16 unit straddles two.
    let mut probe = match utf16 {
        None => from - 1,
        Some(_) => from.saturating_sub(2) & !1,
    };
    let file_probe = |at: u64| -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.raw().read_at(&mut buf, at).ok()?;
        let buf = &buf[..n];
        let next = match utf16 {
            None => memchr(b'\n', buf).map(|i| i + 1),
            Some(order) => utf16_next_line_start(buf, 0, order),
        };
        next.map(|i| at + i as u64)
    };
    while probe < size {
        if let Some(start) = file_probe(probe) {
            return start;
        }
        probe += 64 * 1024;
    }
    size
}

impl Drop for FileInput {
    /// A stopping input gives up its files where what it read was
    /// acknowledged, for another config to take over (see [`FileClaims`]).
    fn drop(&mut self) {
        if let Some(c) = &self.opts.claims {
            for (id, r) in &self.readers {
                let released =
                    (!r.deleted).then(|| (r.stream.tracker.committed(), r.stream.signature));
                c.closed(&self.opts.config_name, *id, released);
            }
        }
    }
}

impl Input for FileInput {
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, crate::input::InputError> {
        let now = self.opts.clock.now();
        self.drain_acks();
        if let Some(w) = self.watcher.as_mut() {
            let c = w.drain();
            self.take_watch_events(c);
        }
        let scan_due = self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= self.opts.discovery_interval);
        if self.need_scan || scan_due {
            self.discover(now);
        }
        if now.duration_since(self.last_check) >= self.opts.poll_interval {
            self.check_all = true;
        }
        // Truncated files whose copy the scan did not find among the
        // matched files: look outside the patterns (once, and again before
        // giving up in `expire_retired`).
        let unsearched: Vec<u64> = self
            .retired
            .iter()
            .filter(|(_, r)| !r.searched)
            .map(|(s, _)| *s)
            .collect();
        for source in unsearched {
            self.recover_from_copy(source, now);
        }
        let busy = self.service_all(emit, now)?;
        self.expire_retired(now);
        self.close_idle(now);
        self.drain_acks();
        self.persist(now, false)?;
        Ok(if busy || self.need_scan {
            Progress::Busy
        } else {
            Progress::Idle
        })
    }

    fn wait(&mut self, timeout: Duration) {
        // Held back by the in-flight cap: acknowledgements, not file
        // events, let reading go on, so look again soon.
        self.drain_acks();
        if self.over_in_flight_cap() {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return;
        }
        let started = Instant::now();
        let timeout = timeout.min(self.opts.poll_interval);
        match self.watcher.as_mut() {
            Some(w) => {
                let c = w.wait(timeout);
                self.take_watch_events(c);
            }
            None => std::thread::sleep(timeout),
        }
        // A writer appending line by line wakes us once per write; reading
        // after each one would cost a batch (and three thread hand-offs) per
        // line. Let writes gather for a moment instead.
        let since = started.elapsed();
        if since < self.opts.min_read_interval {
            std::thread::sleep(self.opts.min_read_interval - since);
        }
    }

    fn settle(&mut self, timeout: Duration) -> Result<usize, crate::input::InputError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain_acks();
            if self.in_flight() == 0 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.ack_rx.recv_timeout(left) {
                Ok(ack) => self.handle_ack(ack),
                Err(_) => break,
            }
        }
        let now = self.opts.clock.now();
        self.persist(now, true)?;
        // With batches still out, the pipeline settles again (timeout zero)
        // once its sinks have stopped: the totals are told once, at the end.
        if self.in_flight() == 0 || timeout.is_zero() {
            tracing::info!(
                "pipeline {}: input_file: {}",
                self.opts.config_name,
                self.stats()
            );
        }
        Ok(self.in_flight())
    }
}
