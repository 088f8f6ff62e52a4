//! Sending LogGroups: one request, the retry policy by error class, the
//! disk buffer for what cannot be delivered in time, and its replay.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logtail_core::sls::{self, Credentials, ErrorClass, ServerError, SignatureVersion};
use logtail_core::spill::SpillQueue;

use super::batcher::Acks;
use super::credentials::CredentialSource;
use super::job::Job;
use super::limits::{Aimd, Backoff, TokenBucket};
use super::options::SlsOptions;
use super::Work;
use crate::background::StopSignal;

/// Counters of one `flusher_sls` (cumulative).
#[derive(Debug, Default)]
pub struct SlsStats {
    /// LogGroups SLS accepted (live and replayed).
    pub sent_groups: AtomicU64,
    /// Events in them.
    pub sent_events: AtomicU64,
    /// Uncompressed bytes in them.
    pub sent_raw_bytes: AtomicU64,
    /// Bytes on the wire (compressed bodies).
    pub sent_wire_bytes: AtomicU64,
    /// Requests that failed and were retried.
    pub retries: AtomicU64,
    /// Quota answers (each halves the concurrency).
    pub quota_errors: AtomicU64,
    /// Groups written to the disk buffer.
    pub spilled_groups: AtomicU64,
    /// Groups replayed from the disk buffer.
    pub replayed_groups: AtomicU64,
    /// Groups SLS refused as invalid, set aside in the `rejected` queue.
    pub rejected_groups: AtomicU64,
    /// Groups that could neither be sent nor buffered, or whose sender
    /// panicked (read again after a restart).
    pub failed_groups: AtomicU64,
    /// Sender panics caught (the group's batches count as failed; the
    /// thread goes on with the next group).
    pub panics: AtomicU64,
}

impl SlsStats {
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What went wrong with one request.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No HTTP answer (connect, reset, timeout).
    Network(String),
    /// SLS (or a proxy) answered with an error.
    Server {
        /// The parsed error.
        error: ServerError,
        /// The server's clock (`x-log-time`, else `Date`), for skew correction.
        server_time: Option<SystemTime>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Network(e) => write!(f, "network error: {e}"),
            Failure::Server { error, .. } => write!(
                f,
                "HTTP {} {} {}{}",
                error.status,
                error.code,
                error.message,
                error
                    .request_id
                    .as_deref()
                    .map(|r| format!(" (request id {r})"))
                    .unwrap_or_default()
            ),
        }
    }
}

impl Failure {
    fn class(&self) -> ErrorClass {
        match self {
            Failure::Network(_) => ErrorClass::Retry,
            Failure::Server { error, .. } => sls::classify(error),
        }
    }
}

/// How a group ended.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Outcome {
    /// SLS has it.
    Sent,
    /// In the disk buffer.
    Spilled,
    /// Refused as invalid; set aside.
    Rejected,
    /// Neither: read again after a restart.
    Failed,
}

/// Retryable failures in a row after which the backend counts as down:
/// new groups then go straight to the disk buffer (acknowledged at once, so
/// checkpoints keep up and a crash re-reads little), and only the replayer
/// probes SLS until it answers again.
pub(crate) const DOWN_AFTER: u32 = 3;

/// What the sink's threads share.
pub(crate) struct Shared {
    pub(crate) opts: SlsOptions,
    pub(crate) name: String,
    credentials: RwLock<Credentials>,
    credential_source: CredentialSource,
    last_credential_reload: Mutex<Instant>,
    signature: SignatureVersion,
    agent: ureq::Agent,
    url_base: String,
    host_header: String,
    pub(crate) aimd: Aimd,
    bucket: TokenBucket,
    replay_bucket: TokenBucket,
    /// Server time minus local time, in milliseconds.
    skew_ms: AtomicI64,
    /// The disk buffer; taken out (and its lock released) when the sink
    /// closes, so a new sink on the same directory can open it while a
    /// request of the old one is still on the wire.
    pub(crate) spill: Mutex<Option<SpillQueue>>,
    pub(crate) rejected: Mutex<Option<SpillQueue>>,
    /// The group each worker is delivering.
    pub(crate) slots: Vec<Mutex<Option<Work>>>,
    /// Stopped when the sink closes: retries stop, groups go to the buffer.
    pub(crate) closing: StopSignal,
    /// Requests in a row that failed with a retryable error; at
    /// [`DOWN_AFTER`] the backend counts as down.
    failures_in_a_row: AtomicU32,
    /// Requests started (for the [`SlsOptions::panic_in_request`] test
    /// hook).
    requests_started: AtomicU64,
    /// Counters.
    pub stats: SlsStats,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("url", &self.url_base)
            .finish_non_exhaustive()
    }
}

/// Locks `m`, recovering it when a thread panicked while holding it: the
/// data inside (a group, a queue) is still there and must be finished, not
/// dropped.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Everything a sender needs; `closing` stops its retries and pauses.
    pub(crate) fn new(
        name: String,
        opts: SlsOptions,
        credentials: Credentials,
        credential_source: CredentialSource,
        spill: SpillQueue,
        rejected: SpillQueue,
        closing: StopSignal,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(opts.request_timeout)
            .timeout_connect(opts.request_timeout.min(Duration::from_secs(10)))
            .max_idle_connections_per_host(opts.concurrency.max(1))
            .build();
        let signature = if opts.signature_v4 {
            SignatureVersion::V4 {
                region: opts.region.clone(),
            }
        } else {
            SignatureVersion::V1
        };
        Shared {
            url_base: opts.endpoint.url_base(&opts.project),
            host_header: opts.endpoint.host_header(&opts.project),
            aimd: Aimd::new(opts.concurrency),
            bucket: TokenBucket::new(opts.max_send_rate),
            replay_bucket: TokenBucket::new(opts.replay_rate),
            skew_ms: AtomicI64::new(0),
            credentials: RwLock::new(credentials),
            credential_source,
            last_credential_reload: Mutex::new(Instant::now()),
            signature,
            agent,
            spill: Mutex::new(Some(spill)),
            rejected: Mutex::new(Some(rejected)),
            slots: (0..opts.concurrency.max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            closing,
            failures_in_a_row: AtomicU32::new(0),
            requests_started: AtomicU64::new(0),
            stats: SlsStats::default(),
            name,
            opts,
        }
    }

    fn now_corrected(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if skew >= 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }

    /// Runs `f` on a queue unless the sink closed it.
    fn with_queue<R>(
        q: &Mutex<Option<SpillQueue>>,
        f: impl FnOnce(&mut SpillQueue) -> Result<R, logtail_core::spill::SpillError>,
    ) -> Result<R, String> {
        match lock(q).as_mut() {
            Some(q) => f(q).map_err(|e| e.to_string()),
            None => Err("the disk buffer is closed".into()),
        }
    }

    /// Records in the disk buffer.
    pub(crate) fn buffered(&self) -> u64 {
        lock(&self.spill).as_ref().map_or(0, |q| q.len())
    }

    /// Closes both queues (releasing their directory locks).
    pub(crate) fn close_queues(&self) {
        lock(&self.spill).take();
        lock(&self.rejected).take();
    }

    /// One PutLogs request.
    pub(crate) fn send_once(&self, job: &Job) -> Result<(), Failure> {
        let creds = self
            .credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let req = sls::put_logs(
            &sls::PutLogs {
                project: &self.opts.project,
                logstore: &self.opts.logstore,
                host: &self.host_header,
                hash_key: job.hash_key.as_deref(),
                compress: job.compress,
                raw_size: job.raw_size as usize,
                body: &job.body,
                body_md5: job.md5,
                date: self.now_corrected(),
                signature: &self.signature,
            },
            &creds,
        );
        if let Some(n) = self.opts.panic_in_request {
            if self.requests_started.fetch_add(1, Ordering::Relaxed) + 1 == n {
                // Test hook (SlsOptions::panic_in_request): a sender dying
                // mid-request, signed but before the body went out.
                panic!("flusher_sls {}: injected panic in request {n}", self.name);
            }
        }
        let url = format!("{}{}", self.url_base, req.path_and_query);
        let mut r = self.agent.request(req.method, &url);
        for (k, v) in &req.headers {
            // ureq writes Content-Length itself from the body.
            if k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            r = r.set(k, v);
        }
        match r.send_bytes(&job.body) {
            Ok(resp) => {
                // Drain so the connection is reused.
                let _ = std::io::copy(
                    &mut std::io::Read::take(resp.into_reader(), 1 << 16),
                    &mut std::io::sink(),
                );
                Ok(())
            }
            Err(ureq::Error::Status(status, resp)) => {
                let request_id = resp.header("x-log-requestid").map(str::to_string);
                let server_time = resp
                    .header("x-log-time")
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .map(|s| UNIX_EPOCH + Duration::from_secs(s))
                    .or_else(|| resp.header("Date").and_then(sls::parse_http_date));
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(resp.into_reader(), 64 << 10),
                    &mut body,
                );
                Err(Failure::Server {
                    error: sls::parse_error(status, request_id.as_deref(), &body),
                    server_time,
                })
            }
            Err(ureq::Error::Transport(t)) => Err(Failure::Network(t.to_string())),
        }
    }

    fn note_sent(&self, job: &Job) {
        let s = &self.stats;
        s.sent_groups.fetch_add(1, Ordering::Relaxed);
        s.sent_events
            .fetch_add(u64::from(job.events), Ordering::Relaxed);
        s.sent_raw_bytes
            .fetch_add(u64::from(job.raw_size), Ordering::Relaxed);
        s.sent_wire_bytes
            .fetch_add(job.body.len() as u64, Ordering::Relaxed);
    }

    /// Reacts to a failure; returns how long to wait before the next try
    /// (at least), or `None` when the group must not be retried.
    fn react(
        &self,
        failure: &Failure,
        backoff: &mut Backoff,
        invalid_tries: &mut u32,
    ) -> Option<Duration> {
        let class = failure.class();
        match class {
            ErrorClass::Retry => {
                self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
                Some(backoff.next_delay())
            }
            ErrorClass::Quota => {
                self.stats.quota_errors.fetch_add(1, Ordering::Relaxed);
                self.aimd.congested();
                Some(backoff.next_delay())
            }
            ErrorClass::Unauthorized => {
                self.reload_credentials();
                // Slowly: the credentials may be rotated meanwhile.
                Some(backoff.next_delay().max(Duration::from_secs(2)))
            }
            ErrorClass::ClockSkew => {
                if let Failure::Server {
                    server_time: Some(t),
                    ..
                } = failure
                {
                    let local = SystemTime::now();
                    let skew = match t.duration_since(local) {
                        Ok(d) => d.as_millis() as i64,
                        Err(e) => -(e.duration().as_millis() as i64),
                    };
                    tracing::warn!(sink = %self.name, skew_ms = skew, "SLS says the clock is off; correcting request times");
                    self.skew_ms.store(skew, Ordering::Relaxed);
                }
                *invalid_tries += 1;
                (*invalid_tries <= 3).then_some(Duration::ZERO)
            }
            ErrorClass::Invalid => {
                *invalid_tries += 1;
                (*invalid_tries < 3).then(|| backoff.next_delay())
            }
        }
    }

    fn reload_credentials(&self) {
        let mut last = lock(&self.last_credential_reload);
        if last.elapsed() < Duration::from_secs(5) {
            return;
        }
        *last = Instant::now();
        match self.credential_source.load() {
            Ok(c) => {
                *self
                    .credentials
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = c;
            }
            Err(e) => tracing::warn!(sink = %self.name, "reloading credentials: {e}"),
        }
    }

    /// SLS answered: the backend is up.
    fn answered(&self) {
        self.failures_in_a_row.store(0, Ordering::Relaxed);
    }

    /// Whether SLS looks down (see [`DOWN_AFTER`]).
    pub(crate) fn is_down(&self) -> bool {
        self.failures_in_a_row.load(Ordering::Relaxed) >= DOWN_AFTER
    }

    /// Sleeps `d`, waking early when the sink closes; false if it closed.
    fn pause(&self, d: Duration) -> bool {
        self.closing.sleep(d)
    }

    fn throttle(&self, bucket: &TokenBucket, bytes: u64) -> bool {
        let wait = bucket.take(bytes);
        wait.is_zero() || self.pause(wait)
    }

    /// Delivers the group in `slot`: retries by error class until it is
    /// sent, refused, or its retry time is up; then it goes to the disk
    /// buffer. Whoever takes the group out of the slot finishes it, so a
    /// stopping sink can buffer a group whose request is still on the wire.
    pub(crate) fn deliver(&self, slot: &Mutex<Option<Work>>) -> Outcome {
        let Some(job) = lock(slot).as_ref().map(|w| w.job.clone()) else {
            return Outcome::Failed;
        };
        let finish = |outcome: Outcome| -> Outcome {
            let Some(w) = lock(slot).take() else {
                // The stopping sink took it and buffered it.
                return Outcome::Spilled;
            };
            match outcome {
                Outcome::Sent => {
                    self.note_sent(&w.job);
                    w.acks.delivered();
                    Outcome::Sent
                }
                Outcome::Rejected => self.set_aside(&w.job, w.created, w.acks),
                _ => self.spill_job(&w.job, w.created, w.acks),
            }
        };
        let deadline = Instant::now() + self.opts.retry_timeout;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut invalid_tries = 0;
        loop {
            if self.closing.is_stopped() {
                break;
            }
            let Some(permit) = self.aimd.acquire(Duration::from_millis(100)) else {
                if Instant::now() >= deadline {
                    break;
                }
                continue;
            };
            if !self.throttle(&self.bucket, job.body.len() as u64) {
                break;
            }
            let result = self.send_once(&job);
            drop(permit);
            let failure = match result {
                Ok(()) => {
                    self.aimd.success();
                    self.answered();
                    return finish(Outcome::Sent);
                }
                Err(f) => f,
            };
            let Some(delay) = self.react(&failure, &mut backoff, &mut invalid_tries) else {
                tracing::error!(sink = %self.name, events = job.events, "SLS refused a LogGroup: {failure}; set aside in the rejected queue");
                return finish(Outcome::Rejected);
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            if self.is_down() {
                tracing::warn!(sink = %self.name, "{failure}; SLS looks down, buffering on disk until it answers");
                break;
            }
            if Instant::now() + delay >= deadline {
                tracing::warn!(sink = %self.name, "{failure}; retry time is up, buffering on disk");
                break;
            }
            tracing::debug!(sink = %self.name, "{failure}; retrying in {delay:?}");
            if !self.pause(delay) {
                break;
            }
        }
        finish(Outcome::Spilled)
    }

    /// Writes a group to the disk buffer and acknowledges it.
    pub(crate) fn spill_job(&self, job: &Job, created: SystemTime, acks: Acks) -> Outcome {
        match Self::store(&self.spill, job, created) {
            Ok(_) => {
                self.stats.spilled_groups.fetch_add(1, Ordering::Relaxed);
                acks.delivered();
                Outcome::Spilled
            }
            Err(e) => {
                tracing::error!(sink = %self.name, "cannot buffer a LogGroup on disk: {e}; its lines are read again after a restart");
                self.stats.failed_groups.fetch_add(1, Ordering::Relaxed);
                acks.failed();
                Outcome::Failed
            }
        }
    }

    /// Writes a job into `q`, keeping its creation time.
    fn store(q: &Mutex<Option<SpillQueue>>, job: &Job, created: SystemTime) -> Result<(), String> {
        let mut buf = Vec::new();
        job.encode(&mut buf);
        Self::with_queue(q, |q| q.push_at(&buf, created)).map(|_| ())
    }

    /// Keeps a group SLS refused in the `rejected` queue and acknowledges
    /// it (refused data is never retried forever). When it cannot be kept
    /// its batches fail instead: the lines are read again after a restart
    /// rather than lost.
    pub(crate) fn set_aside(&self, job: &Job, created: SystemTime, acks: Acks) -> Outcome {
        self.stats.rejected_groups.fetch_add(1, Ordering::Relaxed);
        match Self::store(&self.rejected, job, created) {
            Ok(()) => {
                acks.delivered();
                Outcome::Rejected
            }
            Err(e) => {
                tracing::error!(sink = %self.name, "cannot keep a refused LogGroup: {e}; its lines are read again after a restart");
                self.stats.failed_groups.fetch_add(1, Ordering::Relaxed);
                acks.failed();
                Outcome::Failed
            }
        }
    }

    /// A sender panicked while delivering the group in `slot`: its batches
    /// count as failed (the checkpoint stays before them and they are read
    /// again after a restart); nothing is acknowledged for data that may
    /// not have arrived.
    pub(crate) fn sender_panicked(&self, slot: &Mutex<Option<Work>>) {
        self.stats.panics.fetch_add(1, Ordering::Relaxed);
        // Already taken: by the stopping sink, which buffered it on disk, or
        // by the panicking sender itself, whose unwinding dropped it (a
        // dropped acknowledgement fails its batches).
        let Some(w) = lock(slot).take() else {
            return;
        };
        self.stats.failed_groups.fetch_add(1, Ordering::Relaxed);
        tracing::error!(sink = %self.name, events = w.job.events, "a sender panicked while delivering a LogGroup; its lines are not acknowledged and are read again after a restart");
        w.acks.failed();
    }

    /// One replay step: sends the oldest buffered group if the backend
    /// seems up. Returns whether there is more to do right away.
    pub(crate) fn replay_one(&self, backoff: &mut Backoff) -> bool {
        let record = match Self::with_queue(&self.spill, |q| q.oldest()) {
            Ok(Some(r)) => r,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(sink = %self.name, "disk buffer: {e}");
                self.pause(Duration::from_secs(1));
                return false;
            }
        };
        let job = match Job::decode(&record.payload) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(sink = %self.name, "disk buffer: skipping an unreadable record: {e}");
                let _ = Self::with_queue(&self.spill, |q| q.remove(record.id));
                return true;
            }
        };
        if !self.throttle(&self.replay_bucket, job.body.len() as u64)
            || !self.throttle(&self.bucket, job.body.len() as u64)
        {
            return false;
        }
        let Some(permit) = self.aimd.acquire(Duration::from_millis(200)) else {
            return true;
        };
        let result = self.send_once(&job);
        drop(permit);
        if self.closing.is_stopped() {
            // A newer sink may own the buffer now; the record stays and is
            // sent again (at most this one group twice).
            return false;
        }
        match result {
            Ok(()) => {
                self.aimd.success();
                self.answered();
                self.note_sent(&job);
                self.stats.replayed_groups.fetch_add(1, Ordering::Relaxed);
                backoff.reset();
                if let Err(e) = Self::with_queue(&self.spill, |q| q.remove(record.id)) {
                    tracing::error!(sink = %self.name, "disk buffer: {e}");
                }
                true
            }
            Err(failure) => {
                let mut invalid = 0;
                if failure.class() == ErrorClass::Invalid {
                    tracing::error!(sink = %self.name, "SLS refused a buffered LogGroup: {failure}; set aside");
                    let acks = Acks::default();
                    self.set_aside(&job, record.created, acks);
                    let _ = Self::with_queue(&self.spill, |q| q.remove(record.id));
                    return true;
                }
                let delay = self
                    .react(&failure, backoff, &mut invalid)
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_millis(500));
                tracing::debug!(sink = %self.name, "replay: {failure}; next try in {delay:?}");
                self.pause(delay);
                false
            }
        }
    }
}
