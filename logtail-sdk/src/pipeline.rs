//! Pipelines: input → parsers → sinks on threads joined by bounded queues.
//!
//! ```text
//!  input thread ──(bounded)──► process thread ──(bounded, one per sink)──► sink threads
//!       ▲                                                                     │
//!       └──────────────────────── acknowledgements ◄──────────────────────────┘
//! ```
//!
//! The queues are bounded in batches, so a slow sink slows reading instead
//! of growing memory. Acknowledgements go back to the input, which advances
//! its checkpoints over delivered data only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use logtail_core::checkpoint::{FileCheckpoint, Recovery};
use logtail_core::file::{self, FileInput};
use logtail_core::input::InputError;
use logtail_core::process::{DropKind, FailureKind};
use logtail_core::{Closed, Emit, EventBatch, Input, Parser, Progress, Sink};

use crate::alarms::AlarmType;
use crate::background::{stop_signal, StopSignal, Stopper};
use crate::config::{FlusherConfig, InputConfig, PipelineConfig};
use crate::metrics::{MeteredFileInput, PipelineMetrics, ProcessorSnapshot, SinkMetrics};
use crate::resources::{ReadGate, SendLimit};
use crate::sinks::sls::{CredentialSource, HostInfo, SlsSink};
use crate::sinks::{BlackholeSink, FileSink, StdoutSink};

/// What building a pipeline needs besides its config: where state lives,
/// where credentials come from, and the host's facts.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Checkpoints (`checkpoints/<name>.json`) and disk buffers
    /// (`sls/<name>-<index>/`) live here.
    pub data_dir: PathBuf,
    /// Credentials of `flusher_sls`.
    pub credentials: CredentialSource,
    /// Host IP and name, put into every LogGroup.
    pub host: HostInfo,
    /// Clock of the disk buffers (tests inject one to age records).
    pub clock: Option<Arc<dyn logtail_core::spill::Clock>>,
    /// Where the host's authorised accounts are read (for `AliUid`).
    pub identity_sources: crate::host::IdentitySources,
    /// The delay the pipelines' inputs sleep before each poll, set by a
    /// [`Monitor`](crate::resources::Monitor) under a CPU limit.
    pub read_gate: crate::resources::ReadGate,
    /// The byte budget of all flushers (`--max-send-rate`).
    pub send_limit: crate::resources::SendLimit,
    /// Most bytes a pipeline's input holds read but unacknowledged
    /// (`--max-in-flight-mb`); `None` keeps the input's default (64 MiB).
    pub max_in_flight_bytes: Option<u64>,
}

impl BuildContext {
    /// Credentials from the environment, host facts detected.
    pub fn new(data_dir: &Path) -> Self {
        BuildContext {
            data_dir: data_dir.to_path_buf(),
            credentials: CredentialSource::Env,
            host: HostInfo::detect(),
            clock: None,
            identity_sources: Default::default(),
            read_gate: Default::default(),
            send_limit: Default::default(),
            max_in_flight_bytes: None,
        }
    }

    /// The host's identities and authorised accounts, read now.
    pub fn identity(&self) -> crate::host::HostIdentity {
        self.identity_sources.read()
    }
}

/// Batches a queue between two stages holds (each batch is at most one
/// read chunk, 1 MiB by default).
pub const QUEUE_BATCHES: usize = 16;

/// How long a [`RunningPipeline`] dropped without [`RunningPipeline::stop`]
/// takes to stop (as `stop(DROP_STOP_TIMEOUT)`).
pub const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Building a pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config has no input.
    #[error("pipeline {name}: no input: `inputs` is empty")]
    NoInput {
        /// Pipeline name.
        name: String,
    },
    /// A processor could not be built.
    #[error("pipeline {name}: processors[{index}]: {source}")]
    Processor {
        /// Pipeline name.
        name: String,
        /// Position in `processors`.
        index: usize,
        /// Cause.
        #[source]
        source: crate::config::ProcessorError,
    },
    /// The input could not be built.
    #[error("pipeline {name}: {source}")]
    Input {
        /// Pipeline name.
        name: String,
        /// Cause.
        #[source]
        source: file::InputError,
    },
    /// An `input_command` could not be set up.
    #[error("pipeline {name}: input_command: {source}")]
    Command {
        /// Pipeline name.
        name: String,
        /// Cause.
        #[source]
        source: Box<crate::command::CommandError>,
    },
    /// The checkpoint store could not be opened.
    #[error("pipeline {name}: {source}")]
    Checkpoint {
        /// Pipeline name.
        name: String,
        /// Cause.
        #[source]
        source: logtail_core::CheckpointError,
    },
    /// A sink could not be created.
    #[error("pipeline {name}: {source}")]
    Sink {
        /// Pipeline name.
        name: String,
        /// Cause.
        #[source]
        source: logtail_core::SinkError,
    },
    /// A thread could not be started.
    #[error("pipeline {name}: cannot start thread: {source}")]
    Thread {
        /// Pipeline name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A pipeline ready to start: one input, processors in order, sinks.
///
/// [`Pipeline::start`] runs it on threads joined by bounded queues (a slow
/// sink slows the input, memory stays bounded); every batch's
/// acknowledgement travels back to the input, which checkpoints only what
/// every sink delivered.
///
/// ```
/// use std::time::Duration;
/// use logtail_core::file::{FileInput, FileInputOptions};
/// use logtail_core::MemoryCheckpoint;
/// use logtail_sdk::pipeline::Pipeline;
/// use logtail_sdk::sinks::FileSink;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("app.log"), "one\ntwo\n")?;
/// let mut opts = FileInputOptions::default();
/// opts.paths.file_paths = vec![format!("{}/*.log", dir.path().display())];
/// let input = FileInput::new(opts, Box::new(MemoryCheckpoint::default()))?;
/// let out = dir.path().join("out.jsonl");
/// let sink = FileSink::open(&out)?;
/// let running = Pipeline::new("example", Box::new(input), vec![], vec![Box::new(sink)]).start()?;
/// let deadline = std::time::Instant::now() + Duration::from_secs(10);
/// while std::fs::read_to_string(&out)?.lines().count() < 2 && std::time::Instant::now() < deadline {
///     std::thread::sleep(Duration::from_millis(20));
/// }
/// let report = running.stop(Duration::from_secs(5));
/// assert_eq!(report.in_flight, 0);
/// assert_eq!(std::fs::read_to_string(&out)?.lines().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipeline {
    name: String,
    input: Box<dyn Input>,
    parsers: Vec<Box<dyn Parser>>,
    sinks: Vec<Box<dyn Sink>>,
    read_gate: ReadGate,
    metrics: Arc<PipelineMetrics>,
    send_limit: SendLimit,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("parsers", &self.parsers.len())
            .field(
                "sinks",
                &self
                    .sinks
                    .iter()
                    .map(|s| s.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Pipeline {
    /// A pipeline from parts (for embedding: any [`Input`], [`Parser`]s, [`Sink`]s).
    pub fn new(
        name: impl Into<String>,
        input: Box<dyn Input>,
        parsers: Vec<Box<dyn Parser>>,
        sinks: Vec<Box<dyn Sink>>,
    ) -> Self {
        let name = name.into();
        Pipeline {
            metrics: PipelineMetrics::new(name.clone()),
            name,
            input,
            parsers,
            sinks,
            read_gate: ReadGate::default(),
            send_limit: SendLimit::default(),
        }
    }

    /// The pipeline's counters (registered in [`crate::metrics::global`]
    /// while it runs).
    pub fn metrics(&self) -> &Arc<PipelineMetrics> {
        &self.metrics
    }

    fn with_metrics(mut self, metrics: Arc<PipelineMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Makes every sink take its batches' bytes from `limit` first (the
    /// agent-wide `--max-send-rate`).
    pub fn with_send_limit(mut self, limit: SendLimit) -> Self {
        self.send_limit = limit;
        self
    }

    /// Makes the input sleep the gate's delay before each poll (a CPU
    /// limit's throttle; see [`crate::resources::Monitor`]).
    pub fn with_read_gate(mut self, gate: ReadGate) -> Self {
        self.read_gate = gate;
        self
    }

    /// Builds the pipeline a config describes; its checkpoints live in
    /// `data_dir/checkpoints/<name>.json`. Credentials come from the
    /// environment; see [`Pipeline::build`] for more control.
    pub fn from_config(cfg: &PipelineConfig, data_dir: &Path) -> Result<Pipeline, BuildError> {
        Self::build(cfg, &BuildContext::new(data_dir))
    }

    /// Builds the pipeline a config describes in the given context.
    pub fn build(cfg: &PipelineConfig, ctx: &BuildContext) -> Result<Pipeline, BuildError> {
        let metrics = PipelineMetrics::new(cfg.name.clone());
        let (input, parsers) = Self::build_front(cfg, ctx, &metrics)?;
        let sinks = Self::build_flushers(cfg, ctx, &metrics)?;
        Ok(Pipeline::new(cfg.name.clone(), input, parsers, sinks)
            .with_read_gate(ctx.read_gate.clone())
            .with_send_limit(ctx.send_limit.clone())
            .with_metrics(metrics))
    }

    /// Builds the input and processors a config describes, and sends what
    /// they make to `sinks` instead of the config's `flushers` (which are
    /// then not built; they may be empty).
    ///
    /// ```no_run
    /// use logtail_sdk::config::PipelineConfig;
    /// use logtail_sdk::pipeline::{BuildContext, Pipeline};
    /// use logtail_sdk::sinks::BlackholeSink;
    ///
    /// // The config's flushers (if any) are ignored: the sink below gets the events.
    /// let cfg = PipelineConfig::load(std::path::Path::new("/etc/logtail/nginx.yaml"))?;
    /// let ctx = BuildContext::new(std::path::Path::new("/var/lib/my-app/logtail"));
    /// let running = Pipeline::build_with_sinks(&cfg, &ctx, vec![Box::new(BlackholeSink::default())])?
    ///     .start()?;
    /// // ... later:
    /// running.stop(std::time::Duration::from_secs(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_with_sinks(
        cfg: &PipelineConfig,
        ctx: &BuildContext,
        sinks: Vec<Box<dyn Sink>>,
    ) -> Result<Pipeline, BuildError> {
        let metrics = PipelineMetrics::new(cfg.name.clone());
        let (input, parsers) = Self::build_front(cfg, ctx, &metrics)?;
        Ok(Pipeline::new(cfg.name.clone(), input, parsers, sinks)
            .with_read_gate(ctx.read_gate.clone())
            .with_send_limit(ctx.send_limit.clone())
            .with_metrics(metrics))
    }

    /// The input and the processors of a config.
    #[allow(clippy::type_complexity)]
    fn build_front(
        cfg: &PipelineConfig,
        ctx: &BuildContext,
        metrics: &Arc<PipelineMetrics>,
    ) -> Result<(Box<dyn Input>, Vec<Box<dyn Parser>>), BuildError> {
        let data_dir = ctx.data_dir.as_path();
        let name = cfg.name.clone();
        let first = cfg
            .inputs
            .first()
            .cloned()
            .ok_or_else(|| BuildError::NoInput { name: name.clone() })?;
        if cfg.inputs.len() > 1 {
            tracing::warn!(pipeline = %name, "only the first input of a pipeline is used");
        }
        let opts = match first {
            InputConfig::File(opts) => opts,
            InputConfig::InternalMetrics(o) => {
                let input = crate::internal::InternalMetricsInput::new(&name, o);
                return Ok((Box::new(input), Self::build_processors(cfg)?));
            }
            InputConfig::InternalAlarms => {
                let input = crate::internal::InternalAlarmsInput::new(&name);
                return Ok((Box::new(input), Self::build_processors(cfg)?));
            }
            InputConfig::Command(opts) => {
                let input = crate::command::CommandInput::new(opts, data_dir).map_err(|e| {
                    BuildError::Command {
                        name: name.clone(),
                        source: Box::new(e),
                    }
                })?;
                return Ok((Box::new(input), Self::build_processors(cfg)?));
            }
        };
        let ckpt_path = data_dir.join("checkpoints").join(format!("{name}.json"));
        let (store, recovery) =
            FileCheckpoint::open(&ckpt_path).map_err(|source| BuildError::Checkpoint {
                name: name.clone(),
                source,
            })?;
        match recovery {
            Recovery::Fresh | Recovery::Loaded => {}
            Recovery::FromBackup { reason } => {
                tracing::warn!(pipeline = %name, "checkpoint recovered from backup: {reason}; some lines may be sent twice")
            }
            Recovery::Reset { reason } => tracing::error!(
                pipeline = %name,
                "checkpoint unusable, starting without it: {reason}; files are read from their last TailSizeKB"
            ),
        }
        let mut opts = opts;
        if let Some(cap) = ctx.max_in_flight_bytes {
            opts.max_in_flight_bytes = cap;
        }
        let input = FileInput::new(opts, Box::new(store)).map_err(|source| BuildError::Input {
            name: name.clone(),
            source,
        })?;
        let parsers = Self::build_processors(cfg)?;
        let input = MeteredFileInput {
            input,
            metrics: Arc::clone(metrics),
            last: None,
        };
        Ok((Box::new(input), parsers))
    }

    /// The processors of a config.
    fn build_processors(cfg: &PipelineConfig) -> Result<Vec<Box<dyn Parser>>, BuildError> {
        cfg.processors
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.build().map_err(|source| BuildError::Processor {
                    name: cfg.name.clone(),
                    index: i,
                    source,
                })
            })
            .collect()
    }

    /// The sinks of a config's `flushers`.
    fn build_flushers(
        cfg: &PipelineConfig,
        ctx: &BuildContext,
        metrics: &Arc<PipelineMetrics>,
    ) -> Result<Vec<Box<dyn Sink>>, BuildError> {
        let data_dir = ctx.data_dir.as_path();
        let name = cfg.name.clone();
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        let mut sls_handles = Vec::new();
        for (index, f) in cfg.flushers.iter().enumerate() {
            sinks.push(match f {
                FlusherConfig::Sls(opts) => Box::new({
                    let sink = SlsSink::start(
                        &format!("{name}/flushers[{index}]"),
                        (**opts).clone(),
                        ctx.credentials.clone(),
                        ctx.host.clone(),
                        &data_dir.join("sls").join(format!("{name}-{index}")),
                        ctx.clock.clone(),
                    )
                    .map_err(|source| BuildError::Sink {
                        name: name.clone(),
                        source,
                    })?;
                    sls_handles.push((index, sink.stats_handle()));
                    sink
                }),
                FlusherConfig::Stdout { tags } => Box::new(StdoutSink::new(*tags)),
                FlusherConfig::File { path } => {
                    Box::new(FileSink::open(path).map_err(|source| BuildError::Sink {
                        name: name.clone(),
                        source,
                    })?)
                }
                FlusherConfig::Blackhole => Box::new(BlackholeSink::default()),
            });
        }
        let types: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        for (index, label) in crate::metrics::sink_labels(&types).into_iter().enumerate() {
            let m = SinkMetrics::new(label);
            if let Some((_, h)) = sls_handles.iter().find(|(i, _)| *i == index) {
                m.attach_sls(h.clone());
            }
            metrics.add_sink(Arc::new(m));
        }
        Ok(sinks)
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the threads.
    pub fn start(self) -> Result<RunningPipeline, BuildError> {
        let Pipeline {
            name,
            mut input,
            mut parsers,
            sinks,
            read_gate,
            metrics,
            send_limit,
        } = self;
        // Sinks given as values (not from `flushers`) get their counters now.
        if metrics.sinks().len() != sinks.len() {
            let types: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
            for label in crate::metrics::sink_labels(&types) {
                metrics.add_sink(Arc::new(SinkMetrics::new(label)));
            }
        }
        let sink_metrics = metrics.sinks();
        // The input stops reading when `stop` drops; sinks still retrying
        // give their batches up when `abandon` drops.
        let (stop, stopping) = stop_signal();
        let (abandon, abandon_signal) = stop_signal();
        let spawn = |what: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("{what}:{name}"))
                .spawn(f)
                .map_err(|source| BuildError::Thread {
                    name: name.clone(),
                    source,
                })
        };

        let mut stages = Vec::new();
        let mut sink_txs = Vec::new();
        for (mut sink, sm) in sinks.into_iter().zip(sink_metrics.iter().cloned()) {
            let (tx, rx) = bounded::<EventBatch>(QUEUE_BATCHES);
            sink_txs.push((tx, Arc::clone(&sm)));
            let abandon = abandon_signal.clone();
            let pname = name.clone();
            let limit = send_limit.clone();
            stages.push(spawn(
                "sink",
                Box::new(move || run_sink(&pname, sink.as_mut(), rx, &abandon, &sm, &limit)),
            )?);
        }
        let (in_tx, in_rx) = bounded::<EventBatch>(QUEUE_BATCHES);
        let pname = name.clone();
        let pm = Arc::clone(&metrics);
        stages.push(spawn(
            "process",
            Box::new(move || run_process(&pname, &mut parsers, in_rx, sink_txs, &pm)),
        )?);
        let pname = name.clone();
        let (done_tx, done_rx) = bounded::<Duration>(1);
        let im = Arc::clone(&metrics);
        let (settled_tx, settled_rx) = bounded::<()>(1);
        let input_thread = std::thread::Builder::new()
            .name(format!("input:{name}"))
            .spawn(move || {
                run_input(
                    &pname,
                    input.as_mut(),
                    in_tx,
                    &stopping,
                    (done_rx, settled_tx),
                    &read_gate,
                    &im,
                )
            })
            .map_err(|source| BuildError::Thread {
                name: name.clone(),
                source,
            })?;
        crate::metrics::global().register(Arc::clone(&metrics));
        Ok(RunningPipeline {
            metrics,
            name,
            stop: Some(stop),
            abandon: Some(abandon),
            settle: Some(done_tx),
            settled: Some(settled_rx),
            input_thread: Some(input_thread),
            stages,
        })
    }
}

/// A pipeline whose threads run.
///
/// [`stop`](RunningPipeline::stop) it; dropping it stops it the same way
/// (what was read is delivered, checkpoints are written) with
/// [`DROP_STOP_TIMEOUT`], and logs the outcome.
#[derive(Debug)]
#[must_use = "a pipeline stops when dropped: keep it while it is to run, and stop it"]
pub struct RunningPipeline {
    name: String,
    metrics: Arc<PipelineMetrics>,
    /// Dropped: the input stops reading.
    stop: Option<Stopper>,
    /// Dropped: sinks still retrying give their batches up.
    abandon: Option<Stopper>,
    /// How long the input waits for acknowledgements at stop.
    settle: Option<Sender<Duration>>,
    /// Tells that the input's first settle is over.
    settled: Option<Receiver<()>>,
    /// `None` once stopped.
    input_thread: Option<JoinHandle<StopReport>>,
    stages: Vec<JoinHandle<()>>,
}

/// How a pipeline stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Batches read but not acknowledged when it stopped (read again after a restart).
    pub in_flight: usize,
    /// The error that ended the input, if any.
    pub error: Option<String>,
}

impl RunningPipeline {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pipeline's counters.
    pub fn metrics(&self) -> &Arc<PipelineMetrics> {
        &self.metrics
    }

    /// Whether the input ended by itself (an error), or the pipeline was
    /// stopped.
    pub fn is_finished(&self) -> bool {
        self.input_thread
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }

    /// Stops reading, lets the sinks deliver what was read (up to
    /// `timeout`), persists checkpoints and joins the threads.
    pub fn stop(mut self, timeout: Duration) -> StopReport {
        self.shutdown(timeout)
        // Dropping `self` now finds it stopped: nothing more happens.
    }

    /// [`stop`](RunningPipeline::stop) on a borrowed pipeline; a second
    /// call returns an empty report.
    fn shutdown(&mut self, timeout: Duration) -> StopReport {
        let Some(input_thread) = self.input_thread.take() else {
            return StopReport::default();
        };
        // The input thread waits for acknowledgements for most of the time left.
        let settle = self.settle.take();
        if let Some(settle) = &settle {
            let _ = settle.send(timeout.mul_f32(0.8));
        }
        drop(self.stop.take());
        if let Some(settled) = self.settled.take() {
            // Err: the input thread ended (or panicked) already.
            let _ = settled.recv_timeout(timeout + Duration::from_secs(1));
        }
        // Sinks give up what they have not begun to send: not
        // acknowledged, it is read again after a restart. A send under way
        // ends first, and the input takes its acknowledgement into the
        // last checkpoint (else it would be sent again after a restart).
        drop(self.abandon.take());
        for t in self.stages.drain(..) {
            let _ = t.join();
        }
        drop(settle);
        let report = input_thread.join().unwrap_or_else(|_| StopReport {
            in_flight: 0,
            error: Some("input thread panicked".into()),
        });
        crate::metrics::global().unregister(&self.metrics);
        report
    }
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        if self.input_thread.is_none() {
            return;
        }
        let report = self.shutdown(DROP_STOP_TIMEOUT);
        tracing::info!(
            pipeline = %self.name,
            in_flight = report.in_flight,
            "pipeline dropped: stopped"
        );
    }
}

struct ChannelEmit<'a> {
    tx: Option<Sender<EventBatch>>,
    stop: &'a StopSignal,
    metrics: &'a PipelineMetrics,
}

impl Emit for ChannelEmit<'_> {
    fn emit(&mut self, batch: EventBatch) -> Result<(), Closed> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(Closed);
        };
        let batch = match tx.try_send(batch) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(b)) => b,
            Err(TrySendError::Disconnected(_)) => return Err(Closed),
        };
        self.metrics.input.queue_full.add(1);
        // The queue is full (back-pressure): wait for room, or for the stop
        // (the batch is then not taken: its token fails).
        crossbeam_channel::select! {
            send(tx, batch) -> sent => sent.map_err(|_| Closed),
            recv(self.stop.receiver()) -> _ => Err(Closed),
        }
    }
}

fn run_input(
    name: &str,
    input: &mut dyn Input,
    tx: Sender<EventBatch>,
    stop: &StopSignal,
    (settle, settled): (Receiver<Duration>, Sender<()>),
    gate: &ReadGate,
    metrics: &PipelineMetrics,
) -> StopReport {
    let mut emit = ChannelEmit {
        tx: Some(tx),
        stop,
        metrics,
    };
    let mut error = None;
    let mut last_error_log: Option<Instant> = None;
    while !stop.is_stopped() {
        // A CPU limit slows reading down; a stop wakes the sleep at once.
        let delay = gate.delay();
        if !delay.is_zero() && !stop.sleep(delay) {
            break;
        }
        match input.poll(&mut emit) {
            Ok(Progress::Busy) => {}
            Ok(Progress::Idle) => input.wait(Duration::from_millis(250)),
            Err(InputError::Closed) => break,
            Err(e) => {
                // Checkpoint writes can fail (disk full); data keeps flowing
                // and the write is retried, so log and go on.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(pipeline = name, "{e}");
                    last_error_log = Some(Instant::now());
                }
                error = Some(e.to_string());
                input.wait(Duration::from_millis(250));
            }
        }
    }
    // Closing the queue lets the later stages drain and deliver.
    emit.tx = None;
    let timeout = settle.recv().unwrap_or(Duration::from_secs(3));
    let mut in_flight = match input.settle(timeout) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(pipeline = name, "final checkpoint failed: {e}");
            error = Some(e.to_string());
            0
        }
    };
    let _ = settled.send(());
    if in_flight > 0 {
        // The sinks stop now; once they have, their last
        // acknowledgements go into the checkpoint.
        let _ = settle.recv();
        match input.settle(Duration::ZERO) {
            Ok(n) => in_flight = n,
            Err(e) => {
                tracing::error!(pipeline = name, "final checkpoint failed: {e}");
                error = Some(e.to_string());
            }
        }
    }
    if in_flight > 0 {
        tracing::warn!(
            pipeline = name,
            in_flight,
            "stopping with undelivered batches; they are read again on restart"
        );
    }
    StopReport { in_flight, error }
}

fn run_process(
    name: &str,
    parsers: &mut [Box<dyn Parser>],
    rx: Receiver<EventBatch>,
    sinks: Vec<(Sender<EventBatch>, Arc<SinkMetrics>)>,
    metrics: &PipelineMetrics,
) {
    let mut drops = DropReports::new(parsers.len());
    let mut seen: Vec<Vec<(u64, u64)>> = Vec::new();
    let mut published = Instant::now();
    for mut batch in rx.iter() {
        for p in parsers.iter_mut() {
            p.process(&mut batch);
        }
        drops.check(name, parsers, Instant::now());
        metrics.batches_processed.add(1);
        metrics.events_out.add(batch.events.len() as u64);
        raise_processor_alarms(name, parsers, &batch, &mut seen);
        // The processors' counters: at most every 100 ms under load, and
        // whenever the queue runs dry (so that an idle pipeline shows all).
        if rx.is_empty() || published.elapsed() >= Duration::from_millis(100) {
            publish_processors(parsers, metrics);
            published = Instant::now();
        }
        if sinks.len() == 1 {
            // A closed sink queue drops the batch: not acknowledged.
            let _ = send_counted(&sinks[0], batch);
            continue;
        }
        let EventBatch {
            source,
            events,
            bytes,
            ack,
        } = batch;
        let tokens = ack.split(sinks.len());
        for (sink, token) in sinks.iter().zip(tokens) {
            let _ = send_counted(
                sink,
                EventBatch {
                    source: Arc::clone(&source),
                    events: events.clone(),
                    bytes,
                    ack: token,
                },
            );
        }
    }
    publish_processors(parsers, metrics);
    // The input stopped: what each processor did, in words.
    for (i, p) in parsers.iter().enumerate() {
        tracing::info!("{}", processor_stop_line(name, i, p.as_ref()));
    }
}

fn publish_processors(parsers: &[Box<dyn Parser>], metrics: &PipelineMetrics) {
    metrics.set_processors(
        parsers
            .iter()
            .map(|p| ProcessorSnapshot::of(p.as_ref()))
            .collect(),
    );
}

/// Sends to a sink's queue, counting the times it was full.
fn send_counted(
    (tx, metrics): &(Sender<EventBatch>, Arc<SinkMetrics>),
    batch: EventBatch,
) -> Result<(), Closed> {
    match tx.try_send(batch) {
        Ok(()) => Ok(()),
        Err(TrySendError::Disconnected(_)) => Err(Closed),
        Err(TrySendError::Full(b)) => {
            metrics.queue_full.add(1);
            tx.send(b).map_err(|_| Closed)
        }
    }
}

/// The alarm of the failures a processor declares ([`Parser::failure_kind`]):
/// `REGEX_MATCH_ALARM` for a regex that did not match,
/// `PARSE_TIME_FAIL_ALARM` for a time that did not parse,
/// `PARSE_LOG_FAIL_ALARM` for the others.
pub fn failure_alarm(kind: FailureKind) -> AlarmType {
    match kind {
        FailureKind::RegexMatch => AlarmType::RegexMatch,
        FailureKind::ParseTime => AlarmType::ParseTimeFail,
        _ => AlarmType::ParseLogFail,
    }
}

/// The alarm of the drops a processor declares ([`Parser::drop_kind`]):
/// `OUTDATED_LOG_ALARM` outside the time window, `SPLIT_LOG_FAIL_ALARM` for
/// events that could not be split; none for filtered events and for
/// discarded failures (their failure raised one already).
pub fn drop_alarm(kind: DropKind) -> Option<AlarmType> {
    match kind {
        DropKind::TimeWindow => Some(AlarmType::OutdatedLog),
        DropKind::Split => Some(AlarmType::SplitLogFail),
        _ => None,
    }
}

/// Raises the alarms of each processor's new failures and drops, of the
/// kinds each declares ([`Parser::stats_parts`]; see [`failure_alarm`] and
/// [`drop_alarm`]), one occurrence per event. `seen` holds, per processor
/// and part, the failed and dropped counts already raised.
fn raise_processor_alarms(
    pipeline: &str,
    parsers: &[Box<dyn Parser>],
    batch: &EventBatch,
    seen: &mut Vec<Vec<(u64, u64)>>,
) {
    seen.resize_with(parsers.len(), Vec::new);
    for (i, (p, seen)) in parsers.iter().zip(seen.iter_mut()).enumerate() {
        let parts = p.stats_parts();
        seen.resize(parts.len(), (0, 0));
        let name = p.name();
        for (part, (f, d)) in parts.iter().zip(seen.iter_mut()) {
            let stats = part.stats;
            if stats.failed > *f {
                let n = stats.failed - *f;
                let what = match part.failure {
                    FailureKind::RegexMatch => "did not match",
                    FailureKind::ParseTime => "had a time that failed to parse",
                    _ => "failed to parse",
                };
                crate::alarms::global().raise_n(
                    failure_alarm(part.failure),
                    pipeline,
                    &format!(
                        "processors[{i}] {name}: {n} {} of {} {what}",
                        events(n),
                        batch.source.path.display()
                    ),
                    n,
                );
            }
            if stats.dropped > *d {
                if let Some(kind) = drop_alarm(part.drop) {
                    let n = stats.dropped - *d;
                    let why = match part.drop {
                        DropKind::TimeWindow => "dropped outside the time window",
                        _ => "dropped: they could not be split",
                    };
                    crate::alarms::global().raise_n(
                        kind,
                        pipeline,
                        &format!(
                            "processors[{i}] {name}: {n} {} of {} {why}",
                            events(n),
                            batch.source.path.display()
                        ),
                        n,
                    );
                }
            }
            *f = stats.failed;
            *d = stats.dropped;
        }
    }
}

/// How often a processor that keeps dropping events is reported again.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Reports the events each processor drops, so that no drop is silent: a
/// warning at the first drop, then at most one per
/// [`DROP_REPORT_INTERVAL`] with the count since the last one.
#[derive(Debug)]
struct DropReports {
    /// Per processor: the drops reported so far, and when.
    reported: Vec<(u64, Option<Instant>)>,
}

impl DropReports {
    fn new(processors: usize) -> Self {
        DropReports {
            reported: vec![(0, None); processors],
        }
    }

    /// Logs a warning for each processor with drops not reported yet, unless
    /// it was reported less than an interval before `now`. Returns the
    /// warnings (for tests).
    fn check(&mut self, pipeline: &str, parsers: &[Box<dyn Parser>], now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (p, (reported, at))) in parsers.iter().zip(&mut self.reported).enumerate() {
            let dropped = p.stats().dropped;
            if dropped <= *reported
                || at.is_some_and(|t| now.saturating_duration_since(t) < DROP_REPORT_INTERVAL)
            {
                continue;
            }
            let why = drop_why(p.as_ref());
            let msg = match at {
                None => format!(
                    "pipeline {pipeline}: processors[{i}] {} dropped {dropped} {}: {why}; further drops are reported at most once a minute",
                    p.name(),
                    events(dropped)
                ),
                Some(t) => format!(
                    "pipeline {pipeline}: processors[{i}] {} dropped {} more {} in the last {} s ({dropped} since it started): {why}",
                    p.name(),
                    dropped - *reported,
                    events(dropped - *reported),
                    now.saturating_duration_since(*t).as_secs()
                ),
            };
            tracing::warn!("{msg}");
            out.push(msg);
            *reported = dropped;
            *at = Some(now);
        }
        out
    }
}

fn events(n: u64) -> &'static str {
    if n == 1 {
        "event"
    } else {
        "events"
    }
}

/// Why `p` drops events, in words, naming the option that controls it.
fn drop_why(p: &dyn Parser) -> String {
    match p.drop_reason() {
        Some(r) => r.to_string(),
        None => "the processor gave no reason".into(),
    }
}

/// The readable line of a processor's counters at stop, e.g.
/// `pipeline nginx: processors[0] processor_parse_timestamp_native: 1000
/// events, 1000 dropped: their time … ; controlled by DiscardOlderThanSecs (…)`.
fn processor_stop_line(pipeline: &str, index: usize, p: &dyn Parser) -> String {
    let stats = p.stats();
    let mut line = format!(
        "pipeline {pipeline}: processors[{index}] {}: {stats}",
        p.name()
    );
    if stats.dropped > 0 {
        line.push_str(&format!(": {}", drop_why(p)));
    }
    line
}

fn run_sink(
    pipeline: &str,
    sink: &mut dyn Sink,
    rx: Receiver<EventBatch>,
    abandon: &StopSignal,
    metrics: &SinkMetrics,
    limit: &SendLimit,
) {
    // Kept across batches: a sink that keeps failing keeps backing off.
    let mut backoff = Backoff::new(Duration::from_millis(100));
    loop {
        let mut batch = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                flush(sink, abandon);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // The agent-wide byte budget: wait for this batch's share (a
        // retry does not pay again).
        let wait = limit.take(batch.bytes);
        if !wait.is_zero() && !abandon.sleep(wait) {
            // Given up while waiting: not sent, so read again on restart
            // (sending it now would double it after the checkpoint).
            batch.ack.failed();
            continue;
        }
        if abandon.is_stopped() {
            // Stopping and out of time: not begun, not sent.
            batch.ack.failed();
            continue;
        }
        let (events, bytes) = (batch.events.len() as u64, batch.bytes);
        loop {
            match sink.send(batch) {
                Ok(()) => {
                    backoff.reset();
                    metrics.batches.add(1);
                    metrics.events.add(events);
                    metrics.bytes.add(bytes);
                    break;
                }
                Err(rejected) => {
                    metrics.send_errors.add(1);
                    crate::alarms::global().raise(
                        AlarmType::SendDataFail,
                        pipeline,
                        &format!("{}: {}", metrics.name, rejected.error),
                    );
                    if abandon.is_stopped() {
                        rejected.batch.ack.failed();
                        break;
                    }
                    tracing::warn!(
                        sink = sink.name(),
                        "{}; retrying in {:?}",
                        rejected.error,
                        backoff.delay()
                    );
                    backoff.sleep(abandon);
                    batch = rejected.batch;
                }
            }
        }
        // Idle queue: push buffered data out so latency stays low.
        if rx.is_empty() {
            flush(sink, abandon);
        }
    }
    flush(sink, abandon);
}

fn flush(sink: &mut dyn Sink, abandon: &StopSignal) {
    let mut backoff = Backoff::new(Duration::from_millis(50));
    while let Err(e) = sink.flush() {
        if abandon.is_stopped() {
            tracing::error!(
                sink = sink.name(),
                "giving up on buffered data at stop: {e}"
            );
            return;
        }
        tracing::warn!(sink = sink.name(), "{e}; retrying in {:?}", backoff.delay());
        backoff.sleep(abandon);
    }
}

/// Retry delay of the sink stage: doubles after each failure, up to 5 s.
struct Backoff {
    first: Duration,
    delay: Duration,
}

impl Backoff {
    fn new(first: Duration) -> Self {
        Backoff {
            first,
            delay: first,
        }
    }

    fn delay(&self) -> Duration {
        self.delay
    }

    fn reset(&mut self) {
        self.delay = self.first;
    }

    /// Sleeps the current delay, but wakes as soon as the stop abandons
    /// retries (a stop must finish within its timeout); then doubles it.
    fn sleep(&mut self, abandon: &StopSignal) {
        abandon.sleep(self.delay);
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtail_core::process::timestamp::{TimestampOptions, TimestampParser};
    use logtail_core::process::ParserStats;

    /// A processor that has dropped `dropped` events so far.
    struct Dropper {
        dropped: u64,
        reason: bool,
    }

    impl Parser for Dropper {
        fn name(&self) -> &str {
            "processor_test"
        }
        fn process(&mut self, _batch: &mut EventBatch) {}
        fn stats(&self) -> ParserStats {
            let mut stats = ParserStats::default();
            stats.processed = self.dropped;
            stats.dropped = self.dropped;
            stats
        }
        fn drop_reason(&self) -> Option<logtail_core::process::DropReason> {
            self.reason.then(|| logtail_core::process::DropReason {
                reason: "they are tests".into(),
                option: "TestOption",
                remedy: "off keeps them".into(),
            })
        }
    }

    fn dropper(dropped: u64) -> Box<dyn Parser> {
        Box::new(Dropper {
            dropped,
            reason: true,
        })
    }

    /// Emits one-event batches as fast as it may; counts the
    /// acknowledgements that come back.
    struct Endless {
        acks: crossbeam_channel::Receiver<logtail_core::Ack>,
        tx: crossbeam_channel::Sender<logtail_core::Ack>,
        seq: u64,
        delivered: Arc<std::sync::atomic::AtomicU64>,
    }

    impl Endless {
        fn new() -> (Self, Arc<std::sync::atomic::AtomicU64>) {
            let (tx, acks) = crossbeam_channel::unbounded();
            let delivered = Arc::default();
            let input = Endless {
                acks,
                tx,
                seq: 0,
                delivered: Arc::clone(&delivered),
            };
            (input, delivered)
        }
    }

    impl Input for Endless {
        fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
            for a in self.acks.try_iter() {
                if a.delivered {
                    self.delivered
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            self.seq += 1;
            let batch = EventBatch {
                source: Arc::new(logtail_core::SourceTags {
                    path: "/test".into(),
                    dev: 1,
                    inode: 1,
                    config: "t".into(),
                }),
                events: vec![logtail_core::Event::line(
                    bytes::Bytes::from_static(b"line"),
                    self.seq,
                    logtail_core::Timestamp::now(),
                )],
                bytes: 4,
                ack: logtail_core::AckToken::new(
                    logtail_core::BatchId {
                        source: 1,
                        seq: self.seq,
                    },
                    self.tx.clone(),
                ),
            };
            emit.emit(batch)?;
            Ok(Progress::Busy)
        }
        fn wait(&mut self, timeout: Duration) {
            std::thread::sleep(timeout);
        }
        fn settle(&mut self, _timeout: Duration) -> Result<usize, InputError> {
            Ok(0)
        }
    }

    /// Refuses every batch.
    struct Refusing;

    impl Sink for Refusing {
        fn name(&self) -> &str {
            "refusing"
        }
        fn send(&mut self, batch: EventBatch) -> Result<(), Box<logtail_core::Rejected>> {
            Err(Box::new(logtail_core::Rejected {
                batch,
                error: logtail_core::SinkError::Other("no".into()),
            }))
        }
    }

    #[test]
    fn a_stop_wakes_a_blocked_input_and_a_retrying_sink_at_once() {
        let (input, delivered) = Endless::new();
        let running = Pipeline::new("t", Box::new(input), Vec::new(), vec![Box::new(Refusing)])
            .start()
            .unwrap();
        // The queues fill up; the input blocks in emit, the sink backs off.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let report = running.stop(Duration::from_millis(500));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(report.error, None);
        assert_eq!(delivered.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    /// Runs `lines` through the processors of `yaml` as the processing
    /// stage does, raising their alarms for the pipeline `name`; returns
    /// the alarms of that pipeline (type, count, message) and the
    /// processors' snapshots.
    fn alarms_of(
        name: &str,
        yaml: &str,
        lines: &[&str],
    ) -> (Vec<(String, u64, String)>, Vec<ProcessorSnapshot>) {
        let text = format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [/tmp/{name}.log]\nprocessors:\n{yaml}flushers:\n  - Type: flusher_blackhole\n"
        );
        let cfg = PipelineConfig::parse(name, "test", &text, false).unwrap();
        let mut parsers = Pipeline::build_processors(&cfg).unwrap();
        let mut batch = EventBatch {
            source: Arc::new(logtail_core::SourceTags {
                path: format!("/tmp/{name}.log").into(),
                dev: 0,
                inode: 0,
                config: Arc::from(name),
            }),
            events: lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    logtail_core::Event::line(
                        bytes::Bytes::from(l.to_string()),
                        i as u64,
                        logtail_core::Timestamp::now(),
                    )
                })
                .collect(),
            bytes: 0,
            ack: logtail_core::AckToken::detached(),
        };
        for p in parsers.iter_mut() {
            p.process(&mut batch);
        }
        let mut seen = Vec::new();
        raise_processor_alarms(name, &parsers, &batch, &mut seen);
        let alarms = crate::alarms::global()
            .recent()
            .into_iter()
            .filter(|a| a.config == name)
            .map(|a| (a.alarm_type.to_owned(), a.count, a.message))
            .collect();
        let snaps = parsers
            .iter()
            .map(|p| ProcessorSnapshot::of(p.as_ref()))
            .collect();
        (alarms, snaps)
    }

    #[test]
    fn each_processor_raises_the_alarm_of_the_failures_it_declares() {
        // A regex that does not match (2 lines), then a time that does not
        // parse (1 line): REGEX_MATCH_ALARM from the regex,
        // PARSE_TIME_FAIL_ALARM from processor_strptime.
        let (alarms, _) = alarms_of(
            "alarm-kinds-native",
            "  - Type: processor_parse_regex_native\n    SourceKey: content\n    Regex: '(\\w+) (.+)'\n    Keys: [word, time]\n  - Type: processor_strptime\n    SourceKey: time\n    Format: '%Y-%m-%d %H:%M:%S'\n",
            &["a 2024-01-02 03:04:05", "nomatch", "alsonomatch", "b yesterday"],
        );
        let find = |alarms: &[(String, u64, String)], t: &str| {
            alarms
                .iter()
                .find(|a| a.0 == t)
                .cloned()
                .unwrap_or_else(|| panic!("no {t}: {alarms:?}"))
        };
        let regex = find(&alarms, "REGEX_MATCH_ALARM");
        assert_eq!(regex.1, 2, "{regex:?}");
        assert!(
            regex
                .2
                .contains("processors[0] processor_parse_regex_native"),
            "{regex:?}"
        );
        let time = find(&alarms, "PARSE_TIME_FAIL_ALARM");
        assert_eq!(time.1, 1, "{time:?}");
        assert!(
            time.2.contains("processors[1] processor_strptime"),
            "{time:?}"
        );
        assert!(
            !alarms.iter().any(|a| a.0 == "PARSE_LOG_FAIL_ALARM"),
            "{alarms:?}"
        );

        // processor_regex_accelerate: its regex's failures are regex
        // alarms, its time's failures time alarms, not one kind for both.
        let (alarms, snaps) = alarms_of(
            "alarm-kinds-accelerate",
            "  - Type: processor_regex_accelerate\n    Regex: '(\\S+) (.*)'\n    Keys: [time, msg]\n    TimeFormat: '%Y-%m-%d'\n",
            &["2024-01-02 ok", "notatime msg", "single", "alone"],
        );
        assert_eq!(find(&alarms, "REGEX_MATCH_ALARM").1, 2, "{alarms:?}");
        let time = find(&alarms, "PARSE_TIME_FAIL_ALARM");
        assert_eq!(time.1, 1, "{time:?}");
        assert!(time.2.contains("processor_regex_accelerate"), "{time:?}");
        // The two lines the regex misses and the one whose time does not
        // parse fail the record (as LoongCollector's RegexLogLineParser)
        // and are discarded (DiscardUnmatch): parse_fail; the line of 2024,
        // read now, is outside the time window (12 h): time_window, with
        // OUTDATED_LOG_ALARM.
        assert_eq!(snaps[0].discarded.get("parse_fail"), Some(&3), "{snaps:?}");
        assert_eq!(snaps[0].discarded.get("time_window"), Some(&1), "{snaps:?}");
        assert_eq!(snaps[0].failed, 3, "{snaps:?}");
        assert_eq!(snaps[0].dropped, 4, "{snaps:?}");
        assert_eq!(find(&alarms, "OUTDATED_LOG_ALARM").1, 1, "{alarms:?}");

        // processor_split_log_regex: events it cannot split are a split
        // failure (multiline_unmatched), with SPLIT_LOG_FAIL_ALARM.
        let (alarms, snaps) = alarms_of(
            "alarm-kinds-split",
            "  - Type: processor_split_log_regex\n    SplitKey: nosuchfield\n    SplitRegex: 'x.*'\n",
            &["one", "two"],
        );
        assert_eq!(snaps[0].dropped, 2, "{snaps:?}");
        assert_eq!(
            snaps[0].discarded.get("multiline_unmatched"),
            Some(&2),
            "{snaps:?}"
        );
        assert_eq!(snaps[0].drop_reason, "multiline_unmatched");
        let split = find(&alarms, "SPLIT_LOG_FAIL_ALARM");
        assert_eq!(split.1, 2, "{split:?}");
        assert!(split.2.contains("processor_split_log_regex"), "{split:?}");
    }

    #[test]
    fn a_config_without_input_is_a_build_error_saying_so() {
        let cfg = PipelineConfig {
            name: "empty".into(),
            origin: "empty.yaml".into(),
            enable: true,
            inputs: Vec::new(),
            processors: Vec::new(),
            flushers: vec![FlusherConfig::Blackhole],
            warnings: Vec::new(),
            allow_multi_configs: false,
        };
        let dir = tempfile::tempdir().unwrap();
        let e = Pipeline::from_config(&cfg, dir.path()).unwrap_err();
        assert!(matches!(e, BuildError::NoInput { .. }), "{e:?}");
        assert_eq!(e.to_string(), "pipeline empty: no input: `inputs` is empty");
    }

    #[test]
    fn dropping_a_running_pipeline_stops_it_and_writes_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        let out = dir.path().join("out.jsonl");
        let cfg = PipelineConfig::parse(
            "app",
            "test",
            &format!(
                "inputs:\n  - Type: input_file\n    FilePaths: [{}]\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
                log.display(),
                out.display()
            ),
            false,
        )
        .unwrap();
        let data = dir.path().join("data");
        let running = Pipeline::from_config(&cfg, &data).unwrap().start().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&out).map_or(0, |s| s.lines().count()) < 2 {
            assert!(Instant::now() < deadline, "the lines never came out");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(running);
        // Stopped: both lines acknowledged and checkpointed (at offset 8).
        let checkpoint =
            std::fs::read_to_string(data.join("checkpoints").join("app.json")).unwrap();
        assert!(checkpoint.contains("\"offset\":8"), "{checkpoint}");
        // An explicit stop leaves nothing for the drop to do.
        let running = Pipeline::from_config(&cfg, &data).unwrap().start().unwrap();
        let report = running.stop(Duration::from_secs(5));
        assert_eq!(report.in_flight, 0);
        let out_lines = std::fs::read_to_string(&out).unwrap().lines().count();
        assert_eq!(out_lines, 2, "nothing read twice");
    }

    #[test]
    fn the_first_drop_is_reported_at_once_then_once_a_minute_with_counts() {
        let t0 = Instant::now();
        let mut r = DropReports::new(2);
        let mut parsers = vec![dropper(0), dropper(0)];
        assert!(
            r.check("app", &parsers, t0).is_empty(),
            "no drop, no warning"
        );
        parsers[1] = dropper(3);
        let w = r.check("app", &parsers, t0);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("pipeline app: processors[1] processor_test dropped 3 events: they are tests; controlled by TestOption (off keeps them); further drops"),
            "{}",
            w[0]
        );
        // More drops within the minute: quiet.
        parsers[1] = dropper(10);
        let later = t0 + Duration::from_secs(30);
        assert!(r.check("app", &parsers, later).is_empty());
        // After a minute: the count since the last warning and the total.
        let w = r.check("app", &parsers, t0 + DROP_REPORT_INTERVAL);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("dropped 7 more events in the last 60 s (10 since it started)"),
            "{}",
            w[0]
        );
        // Nothing new: nothing said, however long it has been.
        assert!(r
            .check("app", &parsers, t0 + 10 * DROP_REPORT_INTERVAL)
            .is_empty());
    }

    #[test]
    fn a_drop_without_a_reason_is_still_reported() {
        let mut r = DropReports::new(1);
        let parsers: Vec<Box<dyn Parser>> = vec![Box::new(Dropper {
            dropped: 1,
            reason: false,
        })];
        let w = r.check("app", &parsers, Instant::now());
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("dropped 1 event: the processor gave no reason"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn the_stop_line_reads_as_words_and_says_why() {
        let p = dropper(1000);
        assert_eq!(
            processor_stop_line("nginx", 0, p.as_ref()),
            "pipeline nginx: processors[0] processor_test: 1000 events, 1000 dropped: they are tests; controlled by TestOption (off keeps them)"
        );
        let ts = TimestampParser::new(TimestampOptions::new("%s")).unwrap();
        assert_eq!(
            processor_stop_line("nginx", 2, &ts),
            "pipeline nginx: processors[2] processor_parse_timestamp_native: 0 events"
        );
    }
}
