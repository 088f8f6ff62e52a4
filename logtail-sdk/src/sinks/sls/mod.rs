//! `flusher_sls`: ships LogGroups to Alibaba Cloud Simple Log Service with
//! the PutLogs API, byte-compatible with the official SDKs.
//!
//! ```text
//!  send(batch) ─► Batcher (one open LogGroup per file; 512 KiB / 4 000 events / 3 s)
//!                   │ sealed group → compress → Job; Content-MD5 of up to 8 jobs at once
//!                   ▼
//!           bounded queue ─► workers (≤ MaxConcurrency in flight, AIMD on quota,
//!                   │         MaxSendRate token bucket, retries by error class)
//!                   │                 │ retry time up, or stopping
//!                   ▼                 ▼
//!        queue full: disk buffer ◄── disk buffer (24 h TTL) ──► replayer (oldest first, paced)
//! ```
//!
//! A group is acknowledged (its files' checkpoints may advance) once SLS
//! accepted it or it is in the disk buffer, and only then: every other way
//! out fails its batches, including a dropped group (a panic, a forgotten
//! path) and a sender that panics mid-request, which is caught, fails its
//! group and goes on with the next. A lock poisoned by a panic is
//! recovered, never a reason to drop a group. Groups SLS refuses as invalid
//! are retried a few times, then set aside in a `rejected` queue next to the
//! buffer and counted, never retried forever. The formats, signing and
//! error classes are in [`logtail_core::sls`]; the buffer is
//! [`logtail_core::spill`].

mod batcher;
pub mod credentials;
mod job;
mod limits;
mod options;
mod sender;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};

use logtail_core::sls::compress;
use logtail_core::sls::md5_lanes::md5_many;
use logtail_core::spill::{Clock, SpillOptions, SpillQueue, SystemClock};
use logtail_core::{EventBatch, Rejected, Sink, SinkError};

pub use batcher::{Acks, Batcher, HostInfo, SealedGroup};
pub use credentials::{CredentialSource, CredentialsError};
pub use job::{Job, JobDecodeError};
pub use limits::{Aimd, Backoff, TokenBucket};
pub use options::{BatchLimits, Endpoint, SlsOptions};
pub use sender::{Outcome, SlsStats};

use crate::background::{exits, stop_signal, ExitToken, Exits, Stopper};
use sender::{lock, Shared};

/// How long a stopping sink lets requests in flight finish before it puts
/// the rest into the disk buffer.
const CLOSE_GRACE: Duration = Duration::from_millis(1500);

/// How long `send` waits for a free worker before buffering on disk: long
/// enough that a healthy but busy backend slows reading down (back
/// pressure) instead of filling the disk buffer, short enough that a stop
/// is not held up.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Compressed groups whose Content-MD5 is computed together, eight at a
/// time in SIMD lanes (about four times faster than one by one). A file
/// read from behind seals groups back to back; a lone group waits at most
/// [`PENDING_WAIT`] (or until the pipeline goes idle) for company.
const LANES: usize = 8;
const PENDING_WAIT: Duration = Duration::from_millis(50);

/// A group handed to a worker.
pub(crate) struct Work {
    pub(crate) job: Job,
    pub(crate) created: SystemTime,
    pub(crate) acks: Acks,
}

/// The `flusher_sls` sink.
pub struct SlsSink {
    shared: Arc<Shared>,
    batcher: Batcher,
    jobs: Option<Sender<Work>>,
    /// Kept to drain what workers did not take when stopping.
    leftovers: Receiver<Work>,
    workers: Vec<JoinHandle<()>>,
    replayer: Option<JoinHandle<()>>,
    /// Dropped when the sink closes: retries stop, the replayer ends.
    closing: Option<Stopper>,
    /// When every worker has ended, and when every thread has.
    workers_exited: Exits,
    all_exited: Exits,
    last_due_check: Instant,
    /// Compressed groups waiting for their Content-MD5 (see [`LANES`]), and
    /// when the first of them was compressed.
    pending: Vec<Work>,
    pending_since: Instant,
}

impl std::fmt::Debug for SlsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlsSink")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Where a flusher keeps its disk buffer: `<dir>/buffer` and refused
/// groups in `<dir>/rejected`.
pub fn spill_dirs(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join("buffer"), dir.join("rejected"))
}

impl SlsSink {
    /// Starts the sink's threads. `dir` holds its disk buffer (see
    /// [`spill_dirs`]); `clock` ages buffered records (tests inject one).
    pub fn start(
        name: &str,
        opts: SlsOptions,
        credentials: CredentialSource,
        host: HostInfo,
        dir: &Path,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<SlsSink, SinkError> {
        let creds = credentials
            .load()
            .map_err(|e| SinkError::Other(format!("{name}: {e}")))?;
        let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let (buffer_dir, rejected_dir) = spill_dirs(dir);
        let mut spill_opts = SpillOptions::default();
        spill_opts.max_bytes = opts.disk_buffer_max_bytes;
        spill_opts.ttl = opts.disk_buffer_ttl;
        let mut rejected_opts = spill_opts.clone();
        rejected_opts.max_bytes = (opts.disk_buffer_max_bytes / 8).max(1 << 20);
        let open = |d: &Path, o: SpillOptions| {
            SpillQueue::open(d, o, Arc::clone(&clock))
                .map_err(|e| SinkError::Other(format!("{name}: disk buffer: {e}")))
        };
        let spill = open(&buffer_dir, spill_opts)?;
        let rejected = open(&rejected_dir, rejected_opts)?;
        if !spill.is_empty() {
            tracing::info!(
                sink = name,
                records = spill.len(),
                bytes = spill.bytes(),
                "disk buffer holds data from before; replaying it"
            );
        }
        let batcher = Batcher::new(
            opts.batch,
            opts.topic.clone(),
            host,
            opts.shard_hash_keys.clone(),
        );
        let concurrency = opts.concurrency.max(1);
        let (closing, closing_signal) = stop_signal();
        let shared = Arc::new(Shared::new(
            name.to_string(),
            opts,
            creds,
            credentials,
            spill,
            rejected,
            closing_signal,
        ));
        let (worker_token, workers_exited) = exits();
        let (thread_token, all_exited) = exits();
        let (tx, rx) = bounded::<Work>(concurrency * 2);
        let spawn = |what: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(what)
                .spawn(f)
                .map_err(|e| SinkError::Other(format!("{name}: cannot start thread: {e}")))
        };
        let mut workers = Vec::new();
        for i in 0..concurrency {
            let shared = Arc::clone(&shared);
            let rx = rx.clone();
            let tokens = (worker_token.clone(), thread_token.clone());
            workers.push(spawn(
                format!("sls-send-{i}"),
                Box::new(move || {
                    let _running: (ExitToken, ExitToken) = tokens;
                    run_worker(&shared, i, rx);
                }),
            )?);
        }
        drop(worker_token);
        let replayer = {
            let shared = Arc::clone(&shared);
            spawn(
                "sls-replay".into(),
                Box::new(move || {
                    let _running: ExitToken = thread_token;
                    run_replayer(&shared);
                }),
            )?
        };
        Ok(SlsSink {
            shared,
            batcher,
            jobs: Some(tx),
            leftovers: rx,
            workers,
            replayer: Some(replayer),
            closing: Some(closing),
            workers_exited,
            all_exited,
            last_due_check: Instant::now(),
            pending: Vec::with_capacity(LANES),
            pending_since: Instant::now(),
        })
    }

    /// The sink's counters.
    pub fn stats(&self) -> &SlsStats {
        &self.shared.stats
    }

    /// A handle to the counters that outlives the sink's use in a pipeline.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.shared))
    }

    fn dispatch(&mut self, g: SealedGroup) {
        let kind = self.shared.opts.compress;
        let mut body = Vec::new();
        let job = match compress::compress(kind, &g.raw, &mut body) {
            Ok(()) => {
                let job = Job {
                    body: Bytes::from(body),
                    raw_size: g.raw.len() as u32,
                    compress: kind,
                    events: g.events,
                    hash_key: g.hash_key,
                    md5: None,
                };
                self.batcher.recycle(g.raw);
                job
            }
            Err(e) => {
                tracing::warn!(sink = %self.shared.name, "{kind:?} compression failed ({e}); sending uncompressed");
                Job {
                    raw_size: g.raw.len() as u32,
                    body: Bytes::from(g.raw),
                    compress: logtail_core::sls::CompressType::None,
                    events: g.events,
                    hash_key: g.hash_key,
                    md5: None,
                }
            }
        };
        if self.pending.is_empty() {
            self.pending_since = Instant::now();
        }
        self.pending.push(Work {
            job,
            created: g.created,
            acks: g.acks,
        });
        // Stopped (or not started): to the disk buffer at once, as before.
        if self.pending.len() >= LANES || self.jobs.is_none() {
            self.submit_pending();
        }
    }

    /// Computes the Content-MD5 of the pending groups together and hands
    /// them to the workers.
    fn submit_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let bodies: Vec<&[u8]> = pending.iter().map(|w| &w.job.body[..]).collect();
        let digests = md5_many(&bodies);
        for (w, d) in pending.iter_mut().zip(digests) {
            w.job.md5 = Some(d);
        }
        for work in pending.drain(..) {
            self.submit(work);
        }
        self.pending = pending;
    }

    /// Hands a group to a worker, or to the disk buffer.
    fn submit(&mut self, work: Work) {
        let Some(tx) = self.jobs.as_ref().filter(|_| !self.shared.is_down()) else {
            // Stopping, or SLS is down: the replayer sends it once SLS answers.
            self.shared.spill_job(&work.job, work.created, work.acks);
            return;
        };
        let deadline = Instant::now() + QUEUE_WAIT;
        let mut work = work;
        loop {
            match tx.send_timeout(work, Duration::from_millis(100)) {
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(w)) => {
                    // Every worker is busy: wait a little, unless SLS went
                    // down meanwhile; then buffer on disk rather than stall
                    // reading (the replayer sends it once SLS answers).
                    if Instant::now() >= deadline || self.shared.is_down() {
                        self.shared.spill_job(&w.job, w.created, w.acks);
                        return;
                    }
                    work = w;
                }
                Err(SendTimeoutError::Disconnected(w)) => {
                    self.shared.spill_job(&w.job, w.created, w.acks);
                    return;
                }
            }
        }
    }

    fn seal_due(&mut self, all: bool) {
        let now = Instant::now();
        if !self.pending.is_empty()
            && (all || now.saturating_duration_since(self.pending_since) >= PENDING_WAIT)
        {
            self.submit_pending();
        }
        if !all && now.saturating_duration_since(self.last_due_check) < Duration::from_millis(100) {
            return;
        }
        self.last_due_check = now;
        let due = self.batcher.due(now, all);
        let sealed_by_age = !due.is_empty();
        for g in due {
            self.dispatch(g);
        }
        // Sealed by age: nothing else is coming soon.
        if sealed_by_age || all {
            self.submit_pending();
        }
    }

    /// Sends what is open, lets requests finish for a moment, buffers the
    /// rest on disk and stops the threads. Called by `Drop`.
    pub fn close(&mut self) {
        if self.jobs.is_none() {
            // Closed before: whatever came since goes to the disk buffer.
            self.submit_pending();
            return;
        }
        self.seal_due(true);
        // The workers finish the queue and end.
        self.jobs = None;
        self.workers_exited.wait_until(Instant::now() + CLOSE_GRACE);
        drop(self.closing.take());
        // Groups no worker took, and groups whose request is still on the
        // wire: into the disk buffer, acknowledged.
        for w in self.leftovers.try_iter() {
            self.shared.spill_job(&w.job, w.created, w.acks);
        }
        for slot in &self.shared.slots {
            // Also from a slot whose sender panicked holding its lock.
            let taken = lock(slot).take();
            if let Some(w) = taken {
                self.shared.spill_job(&w.job, w.created, w.acks);
            }
        }
        // Workers in a request finish it in the background (they touch
        // nothing once their slot is empty); the others exit now.
        let all_ended = self
            .all_exited
            .wait_until(Instant::now() + Duration::from_millis(200));
        for t in self.workers.drain(..).chain(self.replayer.take()) {
            // Ended threads (all of them, if all dropped their token) are
            // joined; one still in a request is left to finish.
            if all_ended || t.is_finished() {
                let _ = t.join();
            }
        }
        let s = &self.shared.stats;
        tracing::info!(
            sink = %self.shared.name,
            sent_groups = SlsStats::get(&s.sent_groups),
            sent_events = SlsStats::get(&s.sent_events),
            spilled_groups = SlsStats::get(&s.spilled_groups),
            replayed_groups = SlsStats::get(&s.replayed_groups),
            rejected_groups = SlsStats::get(&s.rejected_groups),
            buffered = self.shared.buffered(),
            "flusher_sls stopped"
        );
        self.shared.close_queues();
    }
}

/// Counters of a running [`SlsSink`], usable after it moved into a pipeline.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Shared>);

impl StatsHandle {
    /// The counters.
    pub fn stats(&self) -> &SlsStats {
        &self.0.stats
    }

    /// Records in the disk buffer now.
    pub fn buffered(&self) -> u64 {
        self.0.buffered()
    }
}

fn run_worker(shared: &Shared, index: usize, rx: Receiver<Work>) {
    let Some(slot) = shared.slots.get(index) else {
        return;
    };
    for w in rx {
        if shared.closing.is_stopped() {
            shared.spill_job(&w.job, w.created, w.acks);
            continue;
        }
        // A poisoned slot (a sender panicked holding it) still takes the
        // group; dropping it here would lose it.
        *lock(slot) = Some(w);
        // A panic mid-request must not take the group's acknowledgement
        // (nor this sender) with it: the group fails, the next one is sent.
        let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shared.deliver(slot);
        }));
        if delivered.is_err() {
            shared.sender_panicked(slot);
        }
    }
}

fn run_replayer(shared: &Shared) {
    // Probes a down backend at most every 5 s.
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    while !shared.closing.is_stopped() {
        // A panic while replaying leaves the record in the buffer (it is
        // removed only once SLS has it); try again after a pause.
        let more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shared.replay_one(&mut backoff)
        }))
        .unwrap_or_else(|_| {
            shared.stats.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(sink = %shared.name, "the replayer panicked; the record stays in the disk buffer");
            false
        });
        if !more {
            // Nothing buffered (or the backend is still down): look again
            // soon (at once when the sink closes: the loop then ends).
            shared.closing.sleep(Duration::from_millis(500));
        }
    }
}

impl Sink for SlsSink {
    fn name(&self) -> &str {
        "flusher_sls"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        let now = Instant::now();
        for g in self.batcher.push(batch, now) {
            self.dispatch(g);
        }
        self.seal_due(false);
        Ok(())
    }

    /// Seals groups that waited `MaxBatchDelay`; the pipeline calls it every
    /// 200 ms while idle (embedders sending directly must call it too).
    fn flush(&mut self) -> Result<(), SinkError> {
        // Pending groups older than PENDING_WAIT go out here too.
        self.seal_due(false);
        Ok(())
    }
}

impl Drop for SlsSink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver as AckRx;
    use logtail_core::ack::{Ack, AckToken, BatchId};
    use logtail_core::sls::{CompressType, Credentials};

    /// A sink whose endpoint refuses connections (nothing listens on port
    /// 9), with one sender.
    fn sink(dir: &Path, panic_in_request: Option<u64>) -> SlsSink {
        let mut opts = SlsOptions::new(
            "proj",
            "store",
            "",
            Endpoint::parse("http://127.0.0.1:9").unwrap(),
        );
        opts.concurrency = 1;
        opts.batch.max_events = 1;
        opts.panic_in_request = panic_in_request;
        SlsSink::start(
            "t",
            opts,
            CredentialSource::Static(Credentials::new("id", "secret", None)),
            HostInfo::default(),
            dir,
            None,
        )
        .unwrap()
    }

    fn one_event_batch(seq: u64, tx: &Sender<Ack>) -> EventBatch {
        super::batcher::tests::batch(seq, 1, tx)
    }

    /// Flushes (as an idle pipeline does) until an acknowledgement comes.
    fn next_ack(sink: &mut SlsSink, rx: &AckRx<Ack>) -> Ack {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            sink.flush().unwrap();
            if let Ok(a) = rx.recv_timeout(Duration::from_millis(20)) {
                return a;
            }
        }
        panic!("no acknowledgement within 20 s");
    }

    fn records_on_disk(dir: &Path) -> u64 {
        SpillQueue::open(
            &spill_dirs(dir).0,
            SpillOptions::default(),
            Arc::new(SystemClock),
        )
        .unwrap()
        .len()
    }

    fn poison(slot: &std::sync::Mutex<Option<Work>>, work: Option<Work>) {
        std::thread::scope(|s| {
            let _ = s
                .spawn(|| {
                    let mut g = slot.lock().unwrap();
                    *g = work;
                    panic!("injected: a sender panics holding its slot");
                })
                .join();
        });
        assert!(slot.is_poisoned());
    }

    fn work(token: AckToken) -> Work {
        Work {
            job: Job {
                body: Bytes::from_static(b"body"),
                raw_size: 4,
                compress: CompressType::None,
                events: 1,
                hash_key: None,
                md5: None,
            },
            created: SystemTime::now(),
            acks: Acks(vec![token]),
        }
    }

    #[test]
    fn a_group_left_in_a_poisoned_slot_is_buffered_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path(), None);
        let (tx, rx) = crossbeam_channel::unbounded();
        let token = AckToken::new(BatchId { source: 1, seq: 0 }, tx);
        poison(&sink.shared.slots[0], Some(work(token)));
        sink.close();
        // Before: the poisoned slot was skipped and the group later dropped,
        // which acknowledged it as delivered though it was nowhere.
        assert!(rx.try_recv().unwrap().delivered);
        assert_eq!(SlsStats::get(&sink.stats().spilled_groups), 1);
        drop(sink);
        assert_eq!(records_on_disk(dir.path()), 1, "the group is on disk");
    }

    #[test]
    fn a_poisoned_slot_still_takes_and_finishes_groups() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path(), None);
        poison(&sink.shared.slots[0], None);
        let (tx, rx) = crossbeam_channel::unbounded();
        sink.send(one_event_batch(0, &tx)).unwrap();
        // Refused connections: SLS is down, the group goes to the buffer.
        let ack = next_ack(&mut sink, &rx);
        assert!(ack.delivered);
        assert_eq!(SlsStats::get(&sink.stats().spilled_groups), 1);
        drop(sink);
        assert_eq!(records_on_disk(dir.path()), 1);
    }

    #[test]
    fn a_sender_panicking_mid_request_fails_its_group_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path(), Some(1));
        let (tx, rx) = crossbeam_channel::unbounded();
        sink.send(one_event_batch(0, &tx)).unwrap();
        let ack = next_ack(&mut sink, &rx);
        assert_eq!(ack.id.seq, 0);
        assert!(!ack.delivered, "the panicked request's batch failed");
        let s = sink.stats();
        assert_eq!(SlsStats::get(&s.panics), 1);
        assert_eq!(SlsStats::get(&s.failed_groups), 1);
        assert_eq!(SlsStats::get(&s.spilled_groups), 0);
        // The same (only) sender takes the next group.
        sink.send(one_event_batch(1, &tx)).unwrap();
        let ack = next_ack(&mut sink, &rx);
        assert_eq!((ack.id.seq, ack.delivered), (1, true));
        assert_eq!(SlsStats::get(&sink.stats().spilled_groups), 1);
    }
}
