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
//! accepted it or it is in the disk buffer. Groups SLS refuses as invalid
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

use sender::Shared;

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
        let spill_opts = SpillOptions {
            max_bytes: opts.disk_buffer_max_bytes,
            ttl: opts.disk_buffer_ttl,
            ..SpillOptions::default()
        };
        let open = |d: &Path, o: SpillOptions| {
            SpillQueue::open(d, o, Arc::clone(&clock))
                .map_err(|e| SinkError::Other(format!("{name}: disk buffer: {e}")))
        };
        let spill = open(&buffer_dir, spill_opts.clone())?;
        let rejected = open(
            &rejected_dir,
            SpillOptions {
                max_bytes: (opts.disk_buffer_max_bytes / 8).max(1 << 20),
                ..spill_opts
            },
        )?;
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
        let shared = Arc::new(Shared::new(
            name.to_string(),
            opts,
            creds,
            credentials,
            spill,
            rejected,
        ));
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
            workers.push(spawn(
                format!("sls-send-{i}"),
                Box::new(move || run_worker(&shared, i, rx)),
            )?);
        }
        let replayer = {
            let shared = Arc::clone(&shared);
            spawn("sls-replay".into(), Box::new(move || run_replayer(&shared)))?
        };
        Ok(SlsSink {
            shared,
            batcher,
            jobs: Some(tx),
            leftovers: rx,
            workers,
            replayer: Some(replayer),
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
        self.jobs = None;
        let deadline = Instant::now() + CLOSE_GRACE;
        while Instant::now() < deadline && self.workers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        // Groups no worker took, and groups whose request is still on the
        // wire: into the disk buffer, acknowledged.
        for w in self.leftovers.try_iter() {
            self.shared.spill_job(&w.job, w.created, w.acks);
        }
        for slot in &self.shared.slots {
            let taken = slot.lock().ok().and_then(|mut s| s.take());
            if let Some(w) = taken {
                self.shared.spill_job(&w.job, w.created, w.acks);
            }
        }
        // Workers in a request finish it in the background (they touch
        // nothing once their slot is empty); the others exit now.
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline
            && (self.workers.iter().any(|w| !w.is_finished())
                || self.replayer.as_ref().is_some_and(|r| !r.is_finished()))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for w in self.workers.drain(..) {
            if w.is_finished() {
                let _ = w.join();
            }
        }
        if let Some(r) = self.replayer.take() {
            if r.is_finished() {
                let _ = r.join();
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
        if shared.closing.load(Ordering::SeqCst) {
            shared.spill_job(&w.job, w.created, w.acks);
            continue;
        }
        if let Ok(mut s) = slot.lock() {
            *s = Some(w);
        }
        shared.deliver(slot);
    }
}

fn run_replayer(shared: &Shared) {
    // Probes a down backend at most every 5 s.
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    while !shared.closing.load(Ordering::SeqCst) {
        if !shared.replay_one(&mut backoff) {
            // Nothing buffered (or the backend is still down): look again soon.
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until && !shared.closing.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
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
