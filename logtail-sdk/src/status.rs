//! The agent's status: its CPU, memory and open files, LoongCollector's
//! status classification, alarms raised from what the counters show, the
//! periodic log lines, and the documents `/status` (JSON) and `/metrics`
//! (Prometheus text) serve.
//!
//! A [`StatusMonitor`] samples the [metrics registry](crate::metrics) every
//! second ([`MonitorOptions::tick`]) and:
//!
//! - classifies the agent as LoongCollector does ([`classify`]): `ok`, then
//!   `busy` (more than 20 batches processed a second), `many_log_files`
//!   (more than 1000 open descriptors), `process_block` (a queue to the
//!   processors was full), `send_block` (a queue to a flusher was full),
//!   `send_error` (a send failed), each later rule overriding the earlier,
//!   over the last [`MonitorOptions::status_period`] (60 s);
//! - raises `READ_LOG_DELAY_ALARM` for a file more than 200 MiB behind for
//!   60 s, `SPLIT_LOG_FAIL_ALARM` for multi-line lines that belonged to no
//!   event, `SEND_QUOTA_EXCEED_ALARM` for SLS quota answers and
//!   `DISCARD_DATA_ALARM` for groups neither sent nor buffered, or refused;
//! - logs one summary line per pipeline every 60 s while it reads, and a
//!   progress line every 10 s while a pipeline is more than 100 MiB behind.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::alarms::{self, AlarmType, Alarms};
use crate::background::{stop_signal, Stopper};
use crate::metrics::{self, PipelineSnapshot, Registry, SinkSnapshot};
use crate::resources::SelfSampler;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The agent's status, as LoongCollector's status report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AgentStatus {
    /// Nothing below.
    Ok,
    /// More than [`BUSY_TPS`] batches processed a second.
    Busy,
    /// More than [`MANY_FILES`] open descriptors.
    ManyLogFiles,
    /// A queue to the processors was full.
    ProcessBlock,
    /// A queue to a flusher was full.
    SendBlock,
    /// A send failed.
    SendError,
}

impl AgentStatus {
    /// `ok`, `busy`, `many_log_files`, `process_block`, `send_block`, `send_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Ok => "ok",
            AgentStatus::Busy => "busy",
            AgentStatus::ManyLogFiles => "many_log_files",
            AgentStatus::ProcessBlock => "process_block",
            AgentStatus::SendBlock => "send_block",
            AgentStatus::SendError => "send_error",
        }
    }
}

/// The agent as a heartbeat reports it ([`StatusHandle::summary`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentSummary {
    /// Its status.
    pub status: AgentStatus,
    /// CPU over the last tick, in cores.
    pub cpu_cores: f64,
    /// Resident memory.
    pub memory_bytes: u64,
    /// Open descriptors.
    pub open_files: u64,
    /// Its version.
    pub version: String,
}

/// Batches a second above which the agent is `busy` (LoongCollector's
/// `process_tps > 20`).
pub const BUSY_TPS: f64 = 20.0;
/// Log files open (by all inputs together) above which the agent has
/// `many_log_files`.
pub const MANY_FILES: u64 = 1000;

/// What the status is classified from, over one period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct StatusInputs {
    /// Batches processed a second.
    pub process_tps: f64,
    /// Log files the inputs have open now (not every descriptor of the
    /// process: sockets, pipes and the agent's own files do not count).
    pub open_log_files: u64,
    /// Times a queue to the processors was full.
    pub process_queue_full: u64,
    /// Times a queue to a flusher was full.
    pub send_queue_full: u64,
    /// Failed sends.
    pub send_errors: u64,
}

/// LoongCollector's rules: `ok`, and each later rule that holds overrides
/// the earlier ones.
///
/// ```
/// use logtail_sdk::status::{classify, AgentStatus, StatusInputs};
/// let mut i = StatusInputs::default();
/// assert_eq!(classify(&i), AgentStatus::Ok);
/// i.process_tps = 25.0;
/// i.send_errors = 1;
/// assert_eq!(classify(&i), AgentStatus::SendError);
/// ```
pub fn classify(i: &StatusInputs) -> AgentStatus {
    let mut s = AgentStatus::Ok;
    if i.process_tps > BUSY_TPS {
        s = AgentStatus::Busy;
    }
    if i.open_log_files > MANY_FILES {
        s = AgentStatus::ManyLogFiles;
    }
    if i.process_queue_full > 0 {
        s = AgentStatus::ProcessBlock;
    }
    if i.send_queue_full > 0 {
        s = AgentStatus::SendBlock;
    }
    if i.send_errors > 0 {
        s = AgentStatus::SendError;
    }
    s
}

/// How a [`StatusMonitor`] works; [`MonitorOptions::default`] has
/// LoongCollector's thresholds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MonitorOptions {
    /// Time between samples (1 s).
    pub tick: Duration,
    /// The period the status is classified over (60 s).
    pub status_period: Duration,
    /// Time between a pipeline's summary lines while it reads (60 s).
    pub summary_every: Duration,
    /// Time between progress lines during a backlog (10 s).
    pub progress_every: Duration,
    /// Bytes behind above which a pipeline logs progress lines (100 MiB).
    pub backlog_bytes: u64,
    /// Bytes behind of a file that raise `READ_LOG_DELAY_ALARM` (200 MiB,
    /// `delay_bytes_upperlimit`) …
    pub delay_alarm_bytes: u64,
    /// … when they last this long (60 s, `read_delay_alarm_duration`).
    pub delay_alarm_after: Duration,
    /// The version shown (the SDK's by default).
    pub version: String,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            tick: Duration::from_secs(1),
            status_period: Duration::from_secs(60),
            summary_every: Duration::from_secs(60),
            progress_every: Duration::from_secs(10),
            backlog_bytes: 100 << 20,
            delay_alarm_bytes: 200 << 20,
            delay_alarm_after: Duration::from_secs(60),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// One pipeline's counters the status is classified from (differences
/// over the period are taken per pipeline).
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    batches: u64,
    process_full: u64,
    send_full: u64,
    send_errors: u64,
}

/// Each pipeline's [`Totals`], by (name, start time).
type PerPipeline = HashMap<(String, u64), Totals>;

#[derive(Debug)]
struct FileTrack {
    acked: u64,
    /// Bytes a second, smoothed.
    rate: f64,
    over_since: Option<Instant>,
    /// Since when it has bytes not delivered (the read delay).
    behind_since: Option<Instant>,
    /// Seconds it has been behind, as of the last tick.
    delay_secs: f64,
    seen: bool,
}

#[derive(Debug)]
struct PipeTrack {
    summary_at: Instant,
    summary: PipelineSnapshot,
    progress_at: Option<Instant>,
    /// The last values the alarms were raised from.
    last: PipelineSnapshot,
    seen: bool,
}

#[derive(Debug)]
struct State {
    sampler: SelfSampler,
    cpu_cores: f64,
    memory_bytes: u64,
    open_fds: u64,
    status: AgentStatus,
    /// Log files the inputs have open, all pipelines together.
    open_log_files: u64,
    /// Per tick: each pipeline's counters, by (name, start time), so that a
    /// pipeline that goes away takes neither its old counts nor a negative
    /// difference into the others'.
    history: VecDeque<(Instant, PerPipeline)>,
    files: HashMap<(String, u64, u64), FileTrack>,
    pipes: HashMap<String, PipeTrack>,
}

#[derive(Debug)]
struct Shared {
    options: MonitorOptions,
    registry: &'static Registry,
    alarms: &'static Alarms,
    started_unix: u64,
    state: Mutex<State>,
}

/// Samples the metrics and keeps the status; see the [module](self).
/// Dropping it stops its thread.
#[derive(Debug)]
pub struct StatusMonitor {
    shared: Arc<Shared>,
    stop: Option<Stopper>,
    thread: Option<JoinHandle<()>>,
}

/// The source of the documents [`StatusMonitor`] renders, shareable with
/// a server thread.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Shared>);

impl StatusMonitor {
    /// Starts sampling the global registry and alarms
    /// ([`metrics::global`], [`alarms::global`]).
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub fn start(options: MonitorOptions) -> std::io::Result<StatusMonitor> {
        let shared = Arc::new(Shared::new(options, metrics::global(), alarms::global()));
        shared.tick(Instant::now());
        let (stop, stopping) = stop_signal();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                while stopping.sleep(s.options.tick) {
                    s.tick(Instant::now());
                }
            })?;
        Ok(StatusMonitor {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// A handle to render the documents from another thread.
    pub fn handle(&self) -> StatusHandle {
        StatusHandle(Arc::clone(&self.shared))
    }
}

impl Drop for StatusMonitor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// `n` bytes as `512 B`, `1.5 KiB`, `5.2 MiB`, `1.0 GiB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// Seconds as `45 s`, `12 min`, `3.5 h`.
pub fn duration_text(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

impl Shared {
    fn new(options: MonitorOptions, registry: &'static Registry, alarms: &'static Alarms) -> Self {
        Shared {
            options,
            registry,
            alarms,
            started_unix: unix_now(),
            state: Mutex::new(State {
                sampler: SelfSampler::new(),
                cpu_cores: 0.0,
                memory_bytes: 0,
                open_fds: 0,
                open_log_files: 0,
                status: AgentStatus::Ok,
                history: VecDeque::new(),
                files: HashMap::new(),
                pipes: HashMap::new(),
            }),
        }
    }

    fn tick(&self, now: Instant) {
        let snapshots = self.registry.snapshot();
        let mut st = lock(&self.state);
        if let Ok(s) = st.sampler.sample(now) {
            st.cpu_cores = s.cpu_cores;
            st.memory_bytes = s.rss_bytes;
        }
        st.open_fds = open_fds();
        st.open_log_files = snapshots.iter().map(|p| p.input.files_open).sum();
        // The status over the period, from each pipeline's differences.
        let totals: PerPipeline = snapshots
            .iter()
            .map(|p| {
                let mut t = Totals {
                    batches: p.batches_processed,
                    process_full: p.input.queue_full,
                    ..Totals::default()
                };
                for s in &p.sinks {
                    t.send_full += s.queue_full;
                    t.send_errors += s.send_errors + s.groups_retried;
                }
                ((p.name.clone(), p.started_unix), t)
            })
            .collect();
        st.history.push_back((now, totals));
        while st
            .history
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.options.status_period)
        {
            st.history.pop_front();
        }
        if let (Some((t0, first)), Some((_, last))) = (st.history.front(), st.history.back()) {
            let secs = now.duration_since(*t0).as_secs_f64().max(1.0);
            let mut d = Totals::default();
            for (key, now_t) in last {
                // A pipeline (version) started within the period counts
                // from 0; counters never go back, but stay safe.
                let was = first.get(key).copied().unwrap_or_default();
                d.batches += now_t.batches.saturating_sub(was.batches);
                d.process_full += now_t.process_full.saturating_sub(was.process_full);
                d.send_full += now_t.send_full.saturating_sub(was.send_full);
                d.send_errors += now_t.send_errors.saturating_sub(was.send_errors);
            }
            let i = StatusInputs {
                process_tps: d.batches as f64 / secs,
                open_log_files: st.open_log_files,
                process_queue_full: d.process_full,
                send_queue_full: d.send_full,
                send_errors: d.send_errors,
            };
            st.status = classify(&i);
        }
        for f in st.files.values_mut() {
            f.seen = false;
        }
        for p in st.pipes.values_mut() {
            p.seen = false;
        }
        let tick_secs = self.options.tick.as_secs_f64().max(0.001);
        for p in &snapshots {
            self.track_files(&mut st, p, now, tick_secs);
            self.track_pipeline(&mut st, p, now);
        }
        st.files.retain(|_, f| f.seen);
        st.pipes.retain(|_, p| p.seen);
    }

    fn track_files(&self, st: &mut State, p: &PipelineSnapshot, now: Instant, tick_secs: f64) {
        let o = &self.options;
        for f in &p.files {
            let key = (p.name.clone(), f.dev, f.inode);
            let t = st.files.entry(key).or_insert(FileTrack {
                acked: f.acked_offset,
                rate: 0.0,
                over_since: None,
                behind_since: None,
                delay_secs: 0.0,
                seen: true,
            });
            t.seen = true;
            let delta = f.acked_offset.saturating_sub(t.acked) as f64 / tick_secs;
            t.rate = if t.rate == 0.0 {
                delta
            } else {
                0.7 * t.rate + 0.3 * delta
            };
            t.acked = f.acked_offset;
            let behind = f.behind_bytes();
            t.behind_since = (behind > 0).then(|| t.behind_since.unwrap_or(now));
            t.delay_secs = t
                .behind_since
                .map_or(0.0, |since| now.duration_since(since).as_secs_f64());
            if behind > o.delay_alarm_bytes {
                let since = *t.over_since.get_or_insert(now);
                if now.duration_since(since) >= o.delay_alarm_after {
                    self.alarms.raise(
                        AlarmType::ReadLogDelay,
                        &p.name,
                        &format!(
                            "{}: {} behind for more than {} s (size {}, delivered up to {})",
                            f.path.display(),
                            bytes_text(behind),
                            o.delay_alarm_after.as_secs(),
                            f.size,
                            f.acked_offset
                        ),
                    );
                    t.over_since = Some(now);
                }
            } else {
                t.over_since = None;
            }
        }
    }

    fn track_pipeline(&self, st: &mut State, p: &PipelineSnapshot, now: Instant) {
        let o = &self.options;
        let rate: f64 = p
            .files
            .iter()
            .filter_map(|f| {
                st.files
                    .get(&(p.name.clone(), f.dev, f.inode))
                    .map(|t| t.rate)
            })
            .sum();
        let t = st.pipes.entry(p.name.clone()).or_insert_with(|| PipeTrack {
            summary_at: now,
            summary: PipelineSnapshot::default(),
            progress_at: None,
            last: PipelineSnapshot::default(),
            seen: true,
        });
        t.seen = true;
        // A new version of the pipeline starts its counters at 0.
        if p.started_unix != t.last.started_unix {
            t.last = PipelineSnapshot::default();
            t.last.started_unix = p.started_unix;
            t.summary = t.last.clone();
        }
        // Alarms from the differences since the last tick.
        // The input's multi-line splitting (processors that cannot split
        // raise their own alarm, on the processing thread).
        let split = (p.input.multiline_unmatched_lines + p.input.multiline_discarded_lines)
            .saturating_sub(
                t.last.input.multiline_unmatched_lines + t.last.input.multiline_discarded_lines,
            );
        if split > 0 {
            self.alarms.raise_n(
                AlarmType::SplitLogFail,
                &p.name,
                &format!(
                    "{split} lines matched no multi-line event start (Multiline.StartPattern)"
                ),
                split,
            );
        }
        for (i, s) in p.sinks.iter().enumerate() {
            let before = t.last.sinks.get(i).cloned().unwrap_or_default();
            let quota = s.quota_errors.saturating_sub(before.quota_errors);
            if quota > 0 {
                self.alarms.raise_n(
                    AlarmType::SendQuotaExceed,
                    &p.name,
                    &format!("{}: {quota} answers that a quota is exceeded", s.name),
                    quota,
                );
            }
            // Quota answers are retried too: they have their own alarm.
            let retried = s
                .groups_retried
                .saturating_sub(before.groups_retried)
                .saturating_sub(quota);
            if retried > 0 {
                self.alarms.raise_n(
                    AlarmType::SendDataFail,
                    &p.name,
                    &format!("{}: {retried} requests failed and were retried", s.name),
                    retried,
                );
            }
            let lost = (s.groups_failed + s.groups_rejected)
                .saturating_sub(before.groups_failed + before.groups_rejected);
            if lost > 0 {
                self.alarms.raise_n(
                    AlarmType::DiscardData,
                    &p.name,
                    &format!(
                        "{}: {lost} groups neither delivered nor buffered, or refused as invalid",
                        s.name
                    ),
                    lost,
                );
            }
        }
        t.last = p.clone();
        // The summary line, while it reads.
        if now.duration_since(t.summary_at) >= o.summary_every {
            let lines = p.input.lines.saturating_sub(t.summary.input.lines);
            if lines > 0 || p.events_out > t.summary.events_out {
                tracing::info!(
                    "{}",
                    summary_line(p, &t.summary, now.duration_since(t.summary_at))
                );
            }
            t.summary = p.clone();
            t.summary_at = now;
        }
        // Progress lines during a backlog.
        if p.input.behind_bytes > o.backlog_bytes {
            if t.progress_at
                .is_none_or(|at| now.duration_since(at) >= o.progress_every)
            {
                tracing::info!("{}", progress_line(p, rate));
                t.progress_at = Some(now);
            }
        } else if t.progress_at.take().is_some() {
            tracing::info!("pipeline {}: caught up", p.name);
        }
    }

    /// The rate (bytes a second) and read delay (seconds) of each file,
    /// by (pipeline, dev, inode).
    fn rates(st: &State) -> HashMap<(String, u64, u64), (f64, f64)> {
        st.files
            .iter()
            .map(|(k, f)| (k.clone(), (f.rate, f.delay_secs)))
            .collect()
    }
}

trait DiscardedGet {
    fn discarded_get(&self, reason: &str) -> u64;
}

impl DiscardedGet for PipelineSnapshot {
    fn discarded_get(&self, reason: &str) -> u64 {
        self.discarded.get(reason).copied().unwrap_or(0)
    }
}

/// `pipeline app: last 60 s: 1200 events read (5.2 MiB), 1200 out, 3
/// files open, 0 B behind, 2 parse failures, dropped: filter 5`.
fn summary_line(p: &PipelineSnapshot, before: &PipelineSnapshot, over: Duration) -> String {
    let mut line = format!(
        "pipeline {}: last {} s: {} events read ({}), {} out, {} files open, {} behind",
        p.name,
        over.as_secs(),
        p.input.lines.saturating_sub(before.input.lines),
        bytes_text(p.input.read_bytes.saturating_sub(before.input.read_bytes)),
        p.events_out.saturating_sub(before.events_out),
        p.input.files_open,
        bytes_text(p.input.behind_bytes),
    );
    let failed = p.parse_failures.saturating_sub(before.parse_failures);
    if failed > 0 {
        let _ = write!(line, ", {failed} parse failures");
    }
    let drops: Vec<String> = p
        .discarded
        .iter()
        .filter_map(|(r, n)| {
            let d = n.saturating_sub(before.discarded_get(r));
            (d > 0).then(|| format!("{r} {d}"))
        })
        .collect();
    if !drops.is_empty() {
        let _ = write!(line, ", dropped: {}", drops.join(", "));
    }
    for s in &p.sinks {
        let b = before
            .sinks
            .iter()
            .find(|x| x.name == s.name)
            .cloned()
            .unwrap_or_default();
        let _ = write!(
            line,
            "; {}: {} events sent",
            s.name,
            s.events.saturating_sub(b.events)
        );
        let errors = s.send_errors.saturating_sub(b.send_errors);
        if errors > 0 {
            let _ = write!(line, ", {errors} send errors");
        }
    }
    line
}

/// `pipeline app: backlog 150.0 MiB left in 2 files, 20.0 MiB/s, ETA 8 s`.
fn progress_line(p: &PipelineSnapshot, rate: f64) -> String {
    let left = p.input.behind_bytes;
    let behind_files = p.files.iter().filter(|f| f.behind_bytes() > 0).count();
    format!(
        "pipeline {}: backlog {} left in {behind_files} {}, {}/s, ETA {}",
        p.name,
        bytes_text(left),
        if behind_files == 1 { "file" } else { "files" },
        bytes_text(rate as u64),
        eta_text(left, rate),
    )
}

fn eta_text(left: u64, rate: f64) -> String {
    if left == 0 {
        "0 s".into()
    } else if rate < 1.0 {
        "unknown (not advancing)".into()
    } else {
        duration_text(left as f64 / rate)
    }
}

fn sink_json(s: &SinkSnapshot) -> Value {
    json!({
        "name": s.name,
        "batches": s.batches,
        "events": s.events,
        "bytes": s.bytes,
        "send_errors": s.send_errors,
        "queue_full": s.queue_full,
        "groups_sent": s.groups_sent,
        "groups_retried": s.groups_retried,
        "groups_spilled": s.groups_spilled,
        "groups_replayed": s.groups_replayed,
        "groups_rejected": s.groups_rejected,
        "groups_failed": s.groups_failed,
        "quota_errors": s.quota_errors,
        "buffered": s.buffered,
    })
}

impl StatusHandle {
    /// The agent's status now.
    pub fn status(&self) -> AgentStatus {
        lock(&self.0.state).status
    }

    /// The agent's status, CPU and memory as of the last tick, and its
    /// version (what a heartbeat reports).
    pub fn summary(&self) -> AgentSummary {
        let st = lock(&self.0.state);
        AgentSummary {
            status: st.status,
            cpu_cores: st.cpu_cores,
            memory_bytes: st.memory_bytes,
            open_files: st.open_fds,
            version: self.0.options.version.clone(),
        }
    }

    /// The alarms kept (see [`Alarms::recent`]).
    pub fn alarms(&self) -> Vec<crate::alarms::Alarm> {
        self.0.alarms.recent()
    }

    /// What the fleet client's heartbeat reports: the status, CPU, memory
    /// and version as of the last tick, and each alarm whose 30 s window
    /// closed since the previous call, handed over once.
    pub fn fleet_report_provider(&self) -> crate::fleet::ReportProvider {
        let handle = self.clone();
        let after = Mutex::new(0u64);
        crate::fleet::ReportProvider::new(move || {
            let sum = handle.summary();
            let mut report = crate::fleet::AgentReport::ok();
            report.status = sum.status.as_str().to_owned();
            report.cpu_cores = sum.cpu_cores;
            report.memory_bytes = sum.memory_bytes;
            report.version = sum.version;
            let mut seen = lock(&after);
            let closed = handle.0.alarms.since(*seen, unix_now());
            if let Some(last) = closed.last() {
                *seen = last.seq;
            }
            report.alarms = closed.iter().map(alarm_report).collect();
            report
        })
    }

    /// The `/status` document: the agent (`status`, CPU, memory, open
    /// files), each pipeline with its input, files, processors, discards
    /// and sinks, and the alarms kept.
    pub fn status_json(&self) -> Value {
        let sh = &self.0;
        // The counters as they are now; rates and status as of the last tick.
        let snapshots = sh.registry.snapshot();
        let st = lock(&sh.state);
        let rates = Shared::rates(&st);
        let pipelines: Vec<Value> = snapshots
            .iter()
            .map(|p| {
                let files: Vec<Value> = p
                    .files
                    .iter()
                    .map(|f| {
                        let (rate, delay) = rates
                            .get(&(p.name.clone(), f.dev, f.inode))
                            .copied()
                            .unwrap_or((0.0, 0.0));
                        let behind = f.behind_bytes();
                        let percent = if f.size == 0 {
                            100.0
                        } else {
                            (f.acked_offset.min(f.size) as f64 * 100.0 / f.size as f64 * 10.0)
                                .round()
                                / 10.0
                        };
                        json!({
                            "path": f.path.display().to_string(),
                            "dev": f.dev,
                            "inode": f.inode,
                            "size": f.size,
                            "read_offset": f.read_offset,
                            "acked_offset": f.acked_offset,
                            "behind_bytes": behind,
                            "read_bytes": f.read_bytes,
                            "read_events": f.read_events,
                            "percent_read": percent,
                            "rate_bytes_per_sec": rate.round(),
                            "read_delay_secs": delay.round(),
                            "eta_secs": if behind == 0 { Some(0.0) } else if rate >= 1.0 { Some((behind as f64 / rate).round()) } else { None },
                        })
                    })
                    .collect();
                json!({
                    "name": p.name,
                    "started_unix": p.started_unix,
                    "input": p.input,
                    "files": files,
                    "batches_processed": p.batches_processed,
                    "events_out": p.events_out,
                    "parse_failures": p.parse_failures,
                    "processors": p.processors,
                    "discarded": p.discarded,
                    "sinks": p.sinks.iter().map(sink_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "agent": {
                "version": sh.options.version,
                "status": st.status.as_str(),
                "cpu_cores": st.cpu_cores,
                "memory_bytes": st.memory_bytes,
                "open_files": st.open_fds,
                "open_log_files": st.open_log_files,
                "started_unix": sh.started_unix,
                "uptime_secs": unix_now().saturating_sub(sh.started_unix),
                "pipelines": snapshots.len(),
            },
            "pipelines": pipelines,
            "alarms": sh.alarms.recent(),
            "alarm_totals": sh.alarms.totals(),
        })
    }

    /// The `/metrics` document, in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let sh = &self.0;
        let snapshots = sh.registry.snapshot();
        let st = lock(&sh.state);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: String| vec![(String::new(), v)];
        family(
            "logtail_agent_cpu_cores",
            "gauge",
            "CPU the agent used over the last second, in cores.",
            one(format!("{}", st.cpu_cores)),
        );
        family(
            "logtail_agent_memory_bytes",
            "gauge",
            "Resident memory of the agent.",
            one(st.memory_bytes.to_string()),
        );
        family(
            "logtail_agent_open_files",
            "gauge",
            "Descriptors the agent has open.",
            one(st.open_fds.to_string()),
        );
        family(
            "logtail_agent_open_log_files",
            "gauge",
            "Log files the inputs have open (what many_log_files is judged on).",
            one(st.open_log_files.to_string()),
        );
        family(
            "logtail_agent_status",
            "gauge",
            "1 for the agent's current status (ok, busy, many_log_files, process_block, send_block, send_error).",
            vec![(format!("{{status=\"{}\"}}", st.status.as_str()), "1".into())],
        );
        let snaps = &snapshots;
        let per_pipeline = |f: &dyn Fn(&PipelineSnapshot) -> u64| -> Vec<(String, String)> {
            snaps
                .iter()
                .map(|p| {
                    (
                        format!("{{pipeline=\"{}\"}}", esc(&p.name)),
                        f(p).to_string(),
                    )
                })
                .collect()
        };
        family(
            "logtail_input_read_bytes_total",
            "counter",
            "Bytes read by the pipeline's input.",
            per_pipeline(&|p| p.input.read_bytes),
        );
        family(
            "logtail_input_lines_total",
            "counter",
            "Events (lines, or multi-line events) read by the pipeline's input.",
            per_pipeline(&|p| p.input.lines),
        );
        family(
            "logtail_input_behind_bytes",
            "gauge",
            "Bytes of the open files not delivered yet (size - acknowledged offset).",
            per_pipeline(&|p| p.input.behind_bytes),
        );
        let delays: Vec<(String, String)> = snaps
            .iter()
            .map(|p| {
                let worst = st
                    .files
                    .iter()
                    .filter(|((name, _, _), _)| *name == p.name)
                    .map(|(_, f)| f.delay_secs)
                    .fold(0.0, f64::max);
                (
                    format!("{{pipeline=\"{}\"}}", esc(&p.name)),
                    format!("{worst}"),
                )
            })
            .collect();
        family(
            "logtail_input_read_delay_seconds",
            "gauge",
            "How long the file furthest behind has had bytes not delivered (0 when all are delivered).",
            delays,
        );
        family(
            "logtail_input_files_open",
            "gauge",
            "Files the pipeline's input has open.",
            per_pipeline(&|p| p.input.files_open),
        );
        family(
            "logtail_input_decode_replaced_total",
            "counter",
            "Sequences of invalid bytes replaced by U+FFFD (FileEncoding): events altered, not dropped.",
            per_pipeline(&|p| p.input.decode_replaced),
        );
        family(
            "logtail_process_parse_failures_total",
            "counter",
            "Events that failed to parse.",
            per_pipeline(&|p| p.parse_failures),
        );
        family(
            "logtail_process_events_out_total",
            "counter",
            "Events handed to the flushers.",
            per_pipeline(&|p| p.events_out),
        );
        let mut discarded = Vec::new();
        for p in snaps {
            for (reason, n) in &p.discarded {
                discarded.push((
                    format!("{{pipeline=\"{}\",reason=\"{reason}\"}}", esc(&p.name)),
                    n.to_string(),
                ));
            }
        }
        family(
            "logtail_discarded_events_total",
            "counter",
            "Events dropped, by reason (time_window, filter, parse_fail, long_line, multiline_unmatched).",
            discarded,
        );
        let per_sink = |f: &dyn Fn(&SinkSnapshot) -> u64| -> Vec<(String, String)> {
            let mut v = Vec::new();
            for p in snaps {
                for s in &p.sinks {
                    v.push((
                        format!(
                            "{{pipeline=\"{}\",sink=\"{}\"}}",
                            esc(&p.name),
                            esc(&s.name)
                        ),
                        f(s).to_string(),
                    ));
                }
            }
            v
        };
        family(
            "logtail_sink_events_total",
            "counter",
            "Events the flusher delivered (or took, for flushers without acknowledgement).",
            per_sink(&|s| s.events),
        );
        family(
            "logtail_sink_groups_sent_total",
            "counter",
            "Groups (batches) the flusher delivered.",
            per_sink(&|s| s.groups_sent),
        );
        family(
            "logtail_sink_send_errors_total",
            "counter",
            "Sends that failed (network errors and error answers).",
            per_sink(&|s| s.send_errors),
        );
        family(
            "logtail_sink_groups_retried_total",
            "counter",
            "Groups (requests) the flusher sent again after a failure.",
            per_sink(&|s| s.groups_retried),
        );
        family(
            "logtail_sink_groups_spilled_total",
            "counter",
            "Groups written to the disk buffer.",
            per_sink(&|s| s.groups_spilled),
        );
        family(
            "logtail_sink_groups_replayed_total",
            "counter",
            "Groups replayed from the disk buffer.",
            per_sink(&|s| s.groups_replayed),
        );
        family(
            "logtail_sink_groups_rejected_total",
            "counter",
            "Groups the backend refused as invalid.",
            per_sink(&|s| s.groups_rejected),
        );
        let totals = sh.alarms.totals();
        family(
            "logtail_alarms_total",
            "counter",
            "Alarms raised, by LoongCollector type.",
            totals
                .iter()
                .map(|(t, n)| (format!("{{type=\"{t}\"}}"), n.to_string()))
                .collect(),
        );
        out
    }
}

/// An aggregated alarm as the fleet's heartbeat carries it.
pub fn alarm_report(a: &crate::alarms::Alarm) -> crate::fleet::AlarmReport {
    let mut r = crate::fleet::AlarmReport::new(a.alarm_type, a.level, a.message.clone());
    r.count = a.count;
    r.config = (!a.config.is_empty()).then(|| a.config.clone());
    r.first_seen_unix = a.first_seen_unix;
    r
}

/// Escapes a Prometheus label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `LOGTAIL_CRASH_ALARM` of a worker restarted by its supervisor, which
/// tells why in `cause` (the `LOGTAIL_RESTART_CAUSE` variable); nothing
/// for an empty cause.
pub fn raise_restart_alarm(cause: &str) {
    let cause = cause.trim();
    if !cause.is_empty() {
        alarms::global().raise(
            AlarmType::LogtailCrash,
            "",
            &format!("restarted by the supervisor: {cause}"),
        );
    }
}

/// `CATEGORY_CONFIG_ALARM` for a config that fails to load or start.
pub(crate) fn raise_config_alarm(config: &str, message: &str) {
    alarms::global().raise(AlarmType::CategoryConfig, config, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_rules_override_earlier_ones() {
        let mut i = StatusInputs::default();
        assert_eq!(classify(&i), AgentStatus::Ok);
        i.process_tps = 20.0;
        assert_eq!(classify(&i), AgentStatus::Ok, "busy is above 20");
        i.process_tps = 21.0;
        assert_eq!(classify(&i), AgentStatus::Busy);
        i.open_log_files = 1001;
        assert_eq!(classify(&i), AgentStatus::ManyLogFiles);
        i.process_queue_full = 1;
        assert_eq!(classify(&i), AgentStatus::ProcessBlock);
        i.send_queue_full = 1;
        assert_eq!(classify(&i), AgentStatus::SendBlock);
        i.send_errors = 1;
        assert_eq!(classify(&i).as_str(), "send_error");
    }

    #[test]
    fn a_file_200_mib_behind_for_60_s_raises_read_log_delay_and_errors_set_the_status() {
        use crate::metrics::{PipelineMetrics, SinkMetrics};
        let registry: &'static Registry = Box::leak(Box::default());
        let alarms: &'static Alarms = Box::leak(Box::default());
        let m = PipelineMetrics::new("big");
        registry.register(Arc::clone(&m));
        let sink = Arc::new(SinkMetrics::new("flusher_sls"));
        m.add_sink(Arc::clone(&sink));
        let mut f = logtail_core::file::FileProgress::default();
        f.path = "/var/log/big.log".into();
        f.size = 300 << 20;
        f.acked_offset = 10 << 20;
        m.set_files(vec![f.clone()]);
        let sh = Shared::new(MonitorOptions::default(), registry, alarms);
        let h = StatusHandle(Arc::new(Shared::new(
            MonitorOptions::default(),
            registry,
            alarms,
        )));
        let t0 = Instant::now();
        sh.tick(t0);
        sh.tick(t0 + Duration::from_secs(30));
        assert!(alarms.recent().is_empty(), "not 60 s yet");
        sh.tick(t0 + Duration::from_secs(60));
        let r = alarms.recent();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].alarm_type, "READ_LOG_DELAY_ALARM");
        assert_eq!(r[0].config, "big");
        assert!(
            r[0].message
                .starts_with("/var/log/big.log: 290.0 MiB behind"),
            "{}",
            r[0].message
        );
        // Caught up: no more.
        f.acked_offset = f.size;
        m.set_files(vec![f]);
        sh.tick(t0 + Duration::from_secs(200));
        assert_eq!(alarms.totals()["READ_LOG_DELAY_ALARM"], 1);
        assert_eq!(lock(&sh.state).status, AgentStatus::Ok);
        // A failed send within the period: send_error.
        sink.send_errors.add(1);
        sh.tick(t0 + Duration::from_secs(201));
        assert_eq!(lock(&sh.state).status, AgentStatus::SendError);
        // The documents show the pipeline (read from the registry now).
        let doc = h.status_json();
        assert_eq!(doc["pipelines"][0]["name"], "big");
        assert_eq!(doc["pipelines"][0]["files"][0]["percent_read"], 100.0);
        let text = h.prometheus();
        assert!(
            text.contains(
                "logtail_sink_send_errors_total{pipeline=\"big\",sink=\"flusher_sls\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("logtail_alarms_total{type=\"READ_LOG_DELAY_ALARM\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn status_differences_are_per_pipeline_and_many_log_files_counts_log_files() {
        use crate::metrics::{PipelineMetrics, SinkMetrics};
        let registry: &'static Registry = Box::leak(Box::default());
        let alarms: &'static Alarms = Box::leak(Box::default());
        let old = PipelineMetrics::new("old");
        let old_sink = Arc::new(SinkMetrics::new("flusher_sls"));
        old.add_sink(Arc::clone(&old_sink));
        old_sink.send_errors.add(10);
        registry.register(Arc::clone(&old));
        let new = PipelineMetrics::new("new");
        let new_sink = Arc::new(SinkMetrics::new("flusher_sls"));
        new.add_sink(Arc::clone(&new_sink));
        registry.register(Arc::clone(&new));
        let sh = Shared::new(MonitorOptions::default(), registry, alarms);
        let t0 = Instant::now();
        sh.tick(t0);
        assert_eq!(lock(&sh.state).status, AgentStatus::Ok);
        // "old" goes away with its 10 errors; "new" fails once: summed
        // across pipelines the total would fall (10 → 1) and hide it.
        registry.unregister(&old);
        new_sink.send_errors.add(1);
        sh.tick(t0 + Duration::from_secs(1));
        assert_eq!(lock(&sh.state).status, AgentStatus::SendError);
        // After the period, no new error: ok again.
        sh.tick(t0 + Duration::from_secs(120));
        sh.tick(t0 + Duration::from_secs(121));
        assert_eq!(lock(&sh.state).status, AgentStatus::Ok);
        // Open log files, not descriptors, decide many_log_files.
        new.input.files_open.set(MANY_FILES + 1);
        sh.tick(t0 + Duration::from_secs(122));
        assert_eq!(lock(&sh.state).status, AgentStatus::ManyLogFiles);
        assert_eq!(lock(&sh.state).open_log_files, MANY_FILES + 1);
        let h = StatusHandle(Arc::new(sh));
        assert_eq!(h.status_json()["agent"]["open_log_files"], MANY_FILES + 1);
    }

    #[test]
    fn lines_read_as_words() {
        let mut p = PipelineSnapshot {
            name: "app".into(),
            ..PipelineSnapshot::default()
        };
        p.input.behind_bytes = 150 << 20;
        let mut f = logtail_core::file::FileProgress::default();
        f.size = 150 << 20;
        p.files.push(f);
        assert_eq!(
            progress_line(&p, 20.0 * 1048576.0),
            "pipeline app: backlog 150.0 MiB left in 1 file, 20.0 MiB/s, ETA 8 s"
        );
        assert!(progress_line(&p, 0.0).ends_with("ETA unknown (not advancing)"));
        let before = PipelineSnapshot::default();
        p.input.lines = 10;
        p.input.read_bytes = 2048;
        p.events_out = 10;
        p.parse_failures = 2;
        p.discarded.insert("filter", 3);
        assert_eq!(
            summary_line(&p, &before, Duration::from_secs(60)),
            "pipeline app: last 60 s: 10 events read (2.0 KiB), 10 out, 0 files open, 150.0 MiB behind, 2 parse failures, dropped: filter 3"
        );
        assert_eq!(duration_text(7200.0), "2.0 h");
        assert_eq!(esc("a\"b\\"), "a\\\"b\\\\");
    }
}
