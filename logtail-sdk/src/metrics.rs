//! Counters and gauges of the running pipelines: lock-free atomics that the
//! pipeline threads bump, and snapshots of them for `/status`, `/metrics`
//! and `input_internal_metrics`.
//!
//! Every started [`Pipeline`](crate::pipeline::Pipeline) registers its
//! [`PipelineMetrics`] in the process-wide [`Registry`] ([`global`]) and
//! leaves it when it stops; a new version of a config starts its counters
//! at zero (as a restarted process would).
//!
//! ```
//! use logtail_sdk::metrics::{PipelineMetrics, Registry};
//! let registry = Registry::default();
//! let m = PipelineMetrics::new("app");
//! registry.register(std::sync::Arc::clone(&m));
//! m.input.lines.add(3);
//! let snap = registry.snapshot();
//! assert_eq!(snap[0].name, "app");
//! assert_eq!(snap[0].input.lines, 3);
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use logtail_core::file::{FileInputStats, FileProgress};
use logtail_core::process::{DropKind, ParserStats, StatsPart};
use logtail_core::Parser;

use crate::sinks::sls::StatsHandle;

/// A counter or gauge: one relaxed atomic.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value (gauges, and counters copied from a source that
    /// keeps its own).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a pipeline's input did. For `input_file` the counters are those of
/// [`FileInputStats`], copied at least every half second.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct InputMetrics {
    /// Bytes read.
    pub read_bytes: Counter,
    /// Events read (lines, or multi-line events).
    pub lines: Counter,
    /// Batches emitted.
    pub batches: Counter,
    /// Files open now.
    pub files_open: Counter,
    /// Files opened.
    pub files_opened: Counter,
    /// Files closed.
    pub files_closed: Counter,
    /// Bytes of the open files not delivered yet (size − acknowledged offset).
    pub behind_bytes: Counter,
    /// Errors opening, stating or reading files.
    pub io_errors: Counter,
    /// Over-long lines truncated (`LongLinePolicy: truncate`).
    pub long_lines_truncated: Counter,
    /// Pieces cut from over-long lines (`LongLinePolicy: split`).
    pub long_line_pieces: Counter,
    /// Multiline: lines that belonged to no event, emitted alone.
    pub multiline_unmatched_lines: Counter,
    /// Multiline: lines that belonged to no event, dropped.
    pub multiline_discarded_lines: Counter,
    /// Undecodable sequences replaced by U+FFFD (`FileEncoding`).
    pub decode_replacements: Counter,
    /// Truncations detected.
    pub truncations: Counter,
    /// Emits that found the queue to the processors full (back-pressure).
    pub queue_full: Counter,
}

impl InputMetrics {
    /// Copies the file input's counters.
    pub fn set_file_stats(&self, s: &FileInputStats) {
        self.read_bytes.set(s.bytes);
        self.lines.set(s.lines);
        self.batches.set(s.batches);
        self.files_open.set(s.files_open);
        self.files_opened.set(s.files_opened);
        self.files_closed.set(s.files_closed);
        self.io_errors.set(s.io_errors);
        self.long_lines_truncated.set(s.long_lines_truncated);
        self.long_line_pieces.set(s.long_line_pieces);
        self.multiline_unmatched_lines
            .set(s.multiline_unmatched_lines);
        self.multiline_discarded_lines
            .set(s.multiline_discarded_lines);
        self.decode_replacements.set(s.decode_replacements);
        self.truncations.set(s.truncations);
    }
}

/// What one sink (flusher) did.
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkMetrics {
    /// `flusher_file`, `flusher_sls`… (with `#N`, its position in
    /// `flushers`, when two flushers of a pipeline have the same type).
    pub name: String,
    /// Batches the sink took.
    pub batches: Counter,
    /// Events in them.
    pub events: Counter,
    /// Source bytes in them.
    pub bytes: Counter,
    /// Sends that failed (each retried after a pause).
    pub send_errors: Counter,
    /// Batches that found the sink's queue full (back-pressure).
    pub queue_full: Counter,
    sls: Mutex<Option<StatsHandle>>,
}

impl SinkMetrics {
    /// Counters at zero.
    pub fn new(name: impl Into<String>) -> Self {
        SinkMetrics {
            name: name.into(),
            batches: Counter::default(),
            events: Counter::default(),
            bytes: Counter::default(),
            send_errors: Counter::default(),
            queue_full: Counter::default(),
            sls: Mutex::new(None),
        }
    }

    /// Attaches the counters of a `flusher_sls` (groups sent, retried,
    /// spilled, replayed, rejected).
    pub fn attach_sls(&self, handle: StatsHandle) {
        *lock(&self.sls) = Some(handle);
    }

    /// The values now.
    pub fn snapshot(&self) -> SinkSnapshot {
        let mut s = SinkSnapshot {
            name: self.name.clone(),
            batches: self.batches.get(),
            events: self.events.get(),
            bytes: self.bytes.get(),
            send_errors: self.send_errors.get(),
            queue_full: self.queue_full.get(),
            groups_sent: self.batches.get(),
            ..SinkSnapshot::default()
        };
        if let Some(h) = lock(&self.sls).as_ref() {
            let st = h.stats();
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            s.groups_sent = get(&st.sent_groups);
            s.events = get(&st.sent_events);
            s.groups_retried = get(&st.retries);
            s.groups_spilled = get(&st.spilled_groups);
            s.groups_replayed = get(&st.replayed_groups);
            s.groups_rejected = get(&st.rejected_groups);
            s.groups_failed = get(&st.failed_groups);
            s.quota_errors = get(&st.quota_errors);
            s.buffered = h.buffered();
        }
        s
    }
}

/// A sink's values at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SinkSnapshot {
    /// See [`SinkMetrics::name`].
    pub name: String,
    /// Batches taken.
    pub batches: u64,
    /// Events sent (for `flusher_sls`: in the groups SLS accepted).
    pub events: u64,
    /// Source bytes taken.
    pub bytes: u64,
    /// Failed sends (retried).
    pub send_errors: u64,
    /// Batches that found the queue full.
    pub queue_full: u64,
    /// Groups delivered (batches for the sinks without groups).
    pub groups_sent: u64,
    /// `flusher_sls`: requests retried.
    pub groups_retried: u64,
    /// `flusher_sls`: groups written to the disk buffer.
    pub groups_spilled: u64,
    /// `flusher_sls`: groups replayed from it.
    pub groups_replayed: u64,
    /// `flusher_sls`: groups SLS refused as invalid.
    pub groups_rejected: u64,
    /// `flusher_sls`: groups neither sent nor buffered.
    pub groups_failed: u64,
    /// `flusher_sls`: quota answers.
    pub quota_errors: u64,
    /// `flusher_sls`: records in the disk buffer now.
    pub buffered: u64,
}

/// One processor's counters at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ProcessorSnapshot {
    /// Its type (`processor_parse_json_native`…).
    pub name: String,
    /// Events looked at.
    pub processed: u64,
    /// Events that failed to parse.
    pub failed: u64,
    /// Events dropped.
    pub dropped: u64,
    /// Why it drops, as the `reason` label of
    /// `logtail_discarded_events_total` (`time_window`, `filter`,
    /// `parse_fail`, `multiline_unmatched`): the reason of most of its
    /// drops, as the processor declares it.
    pub drop_reason: &'static str,
    /// Its drops by reason (a processor made of several steps,
    /// `processor_regex_accelerate`, may drop for several).
    pub discarded: BTreeMap<&'static str, u64>,
}

impl ProcessorSnapshot {
    /// The counters of `parser`, with the kinds of failures and drops it
    /// declares ([`Parser::stats_parts`]).
    pub fn of(parser: &dyn Parser) -> Self {
        Self::from_parts(parser.name(), parser.stats(), &parser.stats_parts())
    }

    /// The counters `stats` of the processor `name`, split into `parts`.
    pub fn from_parts(name: &str, stats: ParserStats, parts: &[StatsPart]) -> Self {
        let mut discarded: BTreeMap<&'static str, u64> = BTreeMap::new();
        for p in parts {
            if p.stats.dropped > 0 {
                *discarded.entry(drop_reason_label(p.drop)).or_default() += p.stats.dropped;
            }
        }
        let drop_reason = discarded
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(r, _)| *r)
            .or_else(|| parts.first().map(|p| drop_reason_label(p.drop)))
            .unwrap_or("parse_fail");
        ProcessorSnapshot {
            name: name.to_owned(),
            processed: stats.processed,
            failed: stats.failed,
            dropped: stats.dropped,
            drop_reason,
            discarded,
        }
    }
}

/// The `reason` labels of `logtail_discarded_events_total`. (Sequences
/// of invalid UTF-8 replaced by U+FFFD drop no event: they are counted
/// apart, as `logtail_input_decode_replaced_total`.)
pub const DISCARD_REASONS: [&str; 5] = [
    "time_window",
    "filter",
    "parse_fail",
    "long_line",
    "multiline_unmatched",
];

/// The `reason` label of the events a processor drops for `kind`: events
/// that could not be split (`processor_split_log_regex`) count as
/// `multiline_unmatched`, as lines that belong to no multi-line record.
pub fn drop_reason_label(kind: DropKind) -> &'static str {
    match kind {
        DropKind::TimeWindow => "time_window",
        DropKind::Filter => "filter",
        DropKind::Split => "multiline_unmatched",
        _ => "parse_fail",
    }
}

/// The counters and gauges of one pipeline.
#[derive(Debug)]
#[non_exhaustive]
pub struct PipelineMetrics {
    /// The pipeline's (config's) name.
    pub name: String,
    /// The input's counters.
    pub input: InputMetrics,
    /// Batches the processors went through.
    pub batches_processed: Counter,
    /// Events handed to the sinks (after the processors).
    pub events_out: Counter,
    /// When it started (Unix seconds).
    pub started_unix: u64,
    files: Mutex<Vec<FileProgress>>,
    processors: Mutex<Vec<ProcessorSnapshot>>,
    sinks: Mutex<Vec<Arc<SinkMetrics>>>,
}

impl PipelineMetrics {
    /// Counters at zero.
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(PipelineMetrics {
            name: name.into(),
            input: InputMetrics::default(),
            batches_processed: Counter::default(),
            events_out: Counter::default(),
            started_unix: crate::status::unix_now(),
            files: Mutex::new(Vec::new()),
            processors: Mutex::new(Vec::new()),
            sinks: Mutex::new(Vec::new()),
        })
    }

    /// Records where the open files stand (and the bytes behind in total).
    pub fn set_files(&self, files: Vec<FileProgress>) {
        self.input
            .behind_bytes
            .set(files.iter().map(FileProgress::behind_bytes).sum());
        *lock(&self.files) = files;
    }

    /// Where the open files stood when last recorded.
    pub fn files(&self) -> Vec<FileProgress> {
        lock(&self.files).clone()
    }

    /// Records the processors' counters.
    pub fn set_processors(&self, p: Vec<ProcessorSnapshot>) {
        *lock(&self.processors) = p;
    }

    /// Adds a sink (in `flushers` order).
    pub fn add_sink(&self, sink: Arc<SinkMetrics>) {
        lock(&self.sinks).push(sink);
    }

    /// The sinks' counters.
    pub fn sinks(&self) -> Vec<Arc<SinkMetrics>> {
        lock(&self.sinks).clone()
    }

    /// The values now.
    pub fn snapshot(&self) -> PipelineSnapshot {
        let i = &self.input;
        let processors = lock(&self.processors).clone();
        let sinks: Vec<SinkSnapshot> = self.sinks().iter().map(|s| s.snapshot()).collect();
        // Every reason is shown, at 0 when nothing was dropped for it.
        let mut discarded: BTreeMap<&'static str, u64> =
            DISCARD_REASONS.iter().map(|r| (*r, 0)).collect();
        for p in &processors {
            for (reason, n) in &p.discarded {
                *discarded.entry(reason).or_default() += n;
            }
        }
        *discarded.entry("long_line").or_default() += i.long_lines_truncated.get();
        *discarded.entry("multiline_unmatched").or_default() += i.multiline_discarded_lines.get();
        PipelineSnapshot {
            name: self.name.clone(),
            started_unix: self.started_unix,
            input: InputSnapshot {
                read_bytes: i.read_bytes.get(),
                lines: i.lines.get(),
                batches: i.batches.get(),
                files_open: i.files_open.get(),
                files_opened: i.files_opened.get(),
                files_closed: i.files_closed.get(),
                behind_bytes: i.behind_bytes.get(),
                io_errors: i.io_errors.get(),
                long_line_pieces: i.long_line_pieces.get(),
                multiline_unmatched_lines: i.multiline_unmatched_lines.get(),
                multiline_discarded_lines: i.multiline_discarded_lines.get(),
                decode_replaced: i.decode_replacements.get(),
                truncations: i.truncations.get(),
                queue_full: i.queue_full.get(),
            },
            files: self.files(),
            batches_processed: self.batches_processed.get(),
            events_out: self.events_out.get(),
            parse_failures: processors.iter().map(|p| p.failed).sum(),
            processors,
            discarded,
            sinks,
        }
    }
}

/// An input's values at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct InputSnapshot {
    /// Bytes read.
    pub read_bytes: u64,
    /// Events read.
    pub lines: u64,
    /// Batches emitted.
    pub batches: u64,
    /// Files open now.
    pub files_open: u64,
    /// Files opened.
    pub files_opened: u64,
    /// Files closed.
    pub files_closed: u64,
    /// Bytes not delivered yet.
    pub behind_bytes: u64,
    /// I/O errors.
    pub io_errors: u64,
    /// Pieces cut from long lines.
    pub long_line_pieces: u64,
    /// Multiline lines emitted alone.
    pub multiline_unmatched_lines: u64,
    /// Multiline lines that belonged to no event, dropped (counted in
    /// `discarded` as `multiline_unmatched` too).
    pub multiline_discarded_lines: u64,
    /// Sequences of invalid bytes replaced by U+FFFD (`FileEncoding`):
    /// the events are altered, not dropped, so this is not in `discarded`.
    pub decode_replaced: u64,
    /// Truncations detected.
    pub truncations: u64,
    /// Emits that found the queue to the processors full.
    pub queue_full: u64,
}

/// A pipeline's values at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineSnapshot {
    /// Its name.
    pub name: String,
    /// When it started (Unix seconds).
    pub started_unix: u64,
    /// The input's counters.
    pub input: InputSnapshot,
    /// Where the open files stand.
    pub files: Vec<FileProgress>,
    /// Batches through the processors.
    pub batches_processed: u64,
    /// Events handed to the sinks.
    pub events_out: u64,
    /// Events that failed to parse, all processors together.
    pub parse_failures: u64,
    /// Each processor's counters, in order.
    pub processors: Vec<ProcessorSnapshot>,
    /// Events dropped by reason: `time_window`, `filter`, `parse_fail`,
    /// `long_line`, `multiline_unmatched` (replaced invalid bytes alter
    /// events without dropping them: see [`InputSnapshot::decode_replaced`]).
    pub discarded: BTreeMap<&'static str, u64>,
    /// Each sink's counters, in `flushers` order.
    pub sinks: Vec<SinkSnapshot>,
}

/// The running pipelines' metrics by name.
#[derive(Debug, Default)]
pub struct Registry {
    pipelines: Mutex<BTreeMap<String, Arc<PipelineMetrics>>>,
}

/// The process-wide registry every started pipeline registers in.
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::default)
}

impl Registry {
    /// Adds (or replaces) the pipeline of this name.
    pub fn register(&self, m: Arc<PipelineMetrics>) {
        lock(&self.pipelines).insert(m.name.clone(), m);
    }

    /// Removes `m`, unless another pipeline of its name replaced it.
    pub fn unregister(&self, m: &Arc<PipelineMetrics>) {
        let mut p = lock(&self.pipelines);
        if p.get(&m.name).is_some_and(|x| Arc::ptr_eq(x, m)) {
            p.remove(&m.name);
        }
    }

    /// The registered pipelines, by name.
    pub fn pipelines(&self) -> Vec<Arc<PipelineMetrics>> {
        lock(&self.pipelines).values().cloned().collect()
    }

    /// Every pipeline's values now, by name.
    pub fn snapshot(&self) -> Vec<PipelineSnapshot> {
        self.pipelines().iter().map(|p| p.snapshot()).collect()
    }
}

/// `input_file` with its counters and file progress copied into a
/// pipeline's metrics every [`PUBLISH_EVERY`] (and at stop).
pub(crate) struct MeteredFileInput {
    pub(crate) input: logtail_core::file::FileInput,
    pub(crate) metrics: Arc<PipelineMetrics>,
    pub(crate) last: Option<std::time::Instant>,
}

/// How often a file input's counters are copied into its metrics.
pub const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl MeteredFileInput {
    fn publish(&mut self, force: bool) {
        let now = std::time::Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < PUBLISH_EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.metrics.input.set_file_stats(&self.input.stats());
        self.metrics.set_files(self.input.file_progress());
    }
}

impl logtail_core::Input for MeteredFileInput {
    fn poll(
        &mut self,
        emit: &mut dyn logtail_core::Emit,
    ) -> Result<logtail_core::Progress, logtail_core::input::InputError> {
        let r = logtail_core::Input::poll(&mut self.input, emit);
        self.publish(false);
        r
    }

    fn wait(&mut self, timeout: std::time::Duration) {
        logtail_core::Input::wait(&mut self.input, timeout);
        self.publish(false);
    }

    fn settle(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<usize, logtail_core::input::InputError> {
        let r = logtail_core::Input::settle(&mut self.input, timeout);
        self.publish(true);
        r
    }
}

/// Labels for sinks of these types: the type, with `#N` (the position)
/// when the type occurs more than once.
pub(crate) fn sink_labels(types: &[&str]) -> Vec<String> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if types.iter().filter(|x| *x == t).count() > 1 {
                format!("{t}#{i}")
            } else {
                (*t).to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_add_up_drops_by_reason_and_behind_bytes() {
        let m = PipelineMetrics::new("p");
        let mut f = FileProgress::default();
        f.size = 100;
        f.acked_offset = 40;
        let mut g = FileProgress::default();
        g.size = 10;
        g.acked_offset = 10;
        m.set_files(vec![f, g]);
        let mut st = ParserStats::default();
        st.processed = 10;
        st.dropped = 4;
        st.failed = 2;
        let part = |d| StatsPart::new(Default::default(), d, st);
        m.set_processors(vec![
            ProcessorSnapshot::from_parts("a", st, &[part(DropKind::TimeWindow)]),
            ProcessorSnapshot::from_parts("b", st, &[part(DropKind::Filter)]),
            ProcessorSnapshot::from_parts("c", st, &[part(DropKind::Split)]),
        ]);
        m.input.long_lines_truncated.add(1);
        m.input.decode_replacements.add(5);
        let s = m.snapshot();
        assert_eq!(s.input.behind_bytes, 60);
        assert_eq!(s.discarded["time_window"], 4);
        assert_eq!(s.discarded["filter"], 4);
        assert_eq!(s.discarded["multiline_unmatched"], 4);
        assert_eq!(s.discarded["long_line"], 1);
        assert_eq!(s.parse_failures, 6);
        // Replaced bytes alter events, they drop none.
        assert!(!s.discarded.contains_key("decode"));
        assert_eq!(s.input.decode_replaced, 5);
        assert_eq!(s.discarded.values().sum::<u64>(), 13);
    }

    #[test]
    fn a_replaced_pipeline_is_not_unregistered_by_its_predecessor() {
        let r = Registry::default();
        let old = PipelineMetrics::new("a");
        let new = PipelineMetrics::new("a");
        r.register(Arc::clone(&old));
        r.register(Arc::clone(&new));
        r.unregister(&old);
        assert_eq!(r.pipelines().len(), 1);
        r.unregister(&new);
        assert!(r.pipelines().is_empty());
    }
}
