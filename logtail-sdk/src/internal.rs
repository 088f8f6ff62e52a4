//! LoongCollector's self-monitoring inputs: `input_internal_alarms` turns
//! the [alarms](crate::alarms) into events, `input_internal_metrics` the
//! [counters](crate::metrics), for any flusher (an SLS logstore, a file).
//!
//! - `input_internal_alarms` (no options): every 3 s, each aggregated
//!   alarm whose 30 s window closed since the last time, as one event with
//!   `alarm_type`, `alarm_level`, `alarm_message`, `alarm_count`, `config`,
//!   `first_seen`, `ip`, `os` and `ver`. Alarms raised before the pipeline
//!   started (e.g. `LOGTAIL_CRASH_ALARM`) are delivered too.
//! - `input_internal_metrics`: one multi-value event per object in
//!   LoongCollector's form — `__name__` (`agent`, `pipeline`,
//!   `plugin_source` for a file, `plugin` for a processor or flusher),
//!   `__labels__` and `__value__` (JSON objects), `__time__` — every
//!   `IntervalSeconds` (at least 15) or `Interval` minutes (default 10) of
//!   each rule `Agent`, `Pipeline`, `PluginSource`, `Plugin` (`Enable`
//!   true by default). `Runner` and `Component` are accepted and emit
//!   nothing (we have no such objects).
//!
//! Neither keeps checkpoints: what is not delivered at a stop is not sent
//! again after the restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Map, Value};

use logtail_core::event::FieldKey;
use logtail_core::input::InputError;
use logtail_core::{
    Ack, AckToken, BatchId, Emit, Event, EventBatch, Input, Progress, SourceTags, Timestamp,
};

use crate::resources::SelfSampler;
use crate::status::unix_now;

/// How often `input_internal_alarms` looks for closed alarm windows
/// (LoongCollector's self-monitor pushes alarms every 3 s).
pub const ALARMS_EVERY: Duration = Duration::from_secs(3);

/// The shortest `IntervalSeconds` of `input_internal_metrics`.
pub const MIN_METRICS_INTERVAL: Duration = Duration::from_secs(15);

/// One rule of `input_internal_metrics` (`Agent`, `Pipeline`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricRule {
    /// `Enable` (true).
    pub enable: bool,
    /// `IntervalSeconds`, else `Interval` minutes (10 min).
    pub interval: Duration,
}

impl Default for MetricRule {
    fn default() -> Self {
        MetricRule {
            enable: true,
            interval: Duration::from_secs(600),
        }
    }
}

/// Options of `input_internal_metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InternalMetricsOptions {
    /// `Agent`: the process (CPU, memory, open files, pipelines).
    pub agent: MetricRule,
    /// `Pipeline`: each pipeline's counters.
    pub pipeline: MetricRule,
    /// `PluginSource`: each open file.
    pub plugin_source: MetricRule,
    /// `Plugin`: each processor and flusher.
    pub plugin: MetricRule,
}

/// Acknowledgements of the batches an internal input emitted.
#[derive(Debug)]
struct Acks {
    tx: Sender<Ack>,
    rx: Receiver<Ack>,
    seq: u64,
    in_flight: usize,
}

impl Acks {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Acks {
            tx,
            rx,
            seq: 0,
            in_flight: 0,
        }
    }

    fn drain(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(self.rx.try_iter().count());
    }

    fn batch(&mut self, config: &Arc<str>, kind: &str, events: Vec<Event>) -> EventBatch {
        self.seq += 1;
        self.in_flight += 1;
        let bytes = events.iter().map(|e| e.content.len() as u64).sum();
        EventBatch {
            source: Arc::new(SourceTags {
                path: kind.into(),
                dev: 0,
                inode: 0,
                config: Arc::clone(config),
            }),
            events,
            bytes,
            ack: AckToken::new(
                BatchId {
                    source: 0,
                    seq: self.seq,
                },
                self.tx.clone(),
            ),
        }
    }

    fn settle(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        self.drain();
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.rx.recv_timeout(left).is_err() {
                break;
            }
            self.in_flight -= 1;
        }
        self.in_flight
    }
}

fn event_of(fields: &[(&str, String)]) -> Event {
    let mut e = Event::line(Bytes::new(), 0, Timestamp::now());
    for (k, v) in fields {
        e.set_field(FieldKey::interned(k), Bytes::from(v.clone()));
    }
    e
}

fn sleep_a_little(timeout: Duration) {
    std::thread::sleep(timeout.min(Duration::from_millis(250)));
}

/// `input_internal_alarms`; see the [module](self).
#[derive(Debug)]
pub struct InternalAlarmsInput {
    config: Arc<str>,
    after: u64,
    last: Option<Instant>,
    acks: Acks,
    host: crate::sinks::sls::HostInfo,
}

impl InternalAlarmsInput {
    /// The input of pipeline `config`.
    pub fn new(config: &str) -> Self {
        InternalAlarmsInput {
            config: Arc::from(config),
            after: 0,
            last: None,
            acks: Acks::new(),
            host: crate::sinks::sls::HostInfo::detect(),
        }
    }
}

impl Input for InternalAlarmsInput {
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
        self.acks.drain();
        if self.last.is_some_and(|t| t.elapsed() < ALARMS_EVERY) {
            return Ok(Progress::Idle);
        }
        self.last = Some(Instant::now());
        let alarms = crate::alarms::global().since(self.after, unix_now());
        let Some(last) = alarms.last() else {
            return Ok(Progress::Idle);
        };
        self.after = last.seq;
        let events = alarms
            .iter()
            .map(|a| {
                event_of(&[
                    ("alarm_type", a.alarm_type.to_owned()),
                    ("alarm_level", a.level.to_string()),
                    ("alarm_message", a.message.clone()),
                    ("alarm_count", a.count.to_string()),
                    ("config", a.config.clone()),
                    ("first_seen", a.first_seen_unix.to_string()),
                    ("ip", self.host.ip.clone()),
                    ("os", std::env::consts::OS.to_owned()),
                    ("ver", env!("CARGO_PKG_VERSION").to_owned()),
                ])
            })
            .collect();
        emit.emit(self.acks.batch(&self.config, "__alarm__", events))?;
        Ok(Progress::Idle)
    }

    fn wait(&mut self, timeout: Duration) {
        sleep_a_little(timeout);
    }

    fn settle(&mut self, timeout: Duration) -> Result<usize, InputError> {
        Ok(self.acks.settle(timeout))
    }
}

/// `input_internal_metrics`; see the [module](self).
#[derive(Debug)]
pub struct InternalMetricsInput {
    config: Arc<str>,
    options: InternalMetricsOptions,
    /// When each rule (agent, pipeline, plugin_source, plugin) last emitted.
    last: [Option<Instant>; 4],
    sampler: SelfSampler,
    acks: Acks,
    hostname: String,
    started: u64,
}

impl InternalMetricsInput {
    /// The input of pipeline `config`.
    pub fn new(config: &str, options: InternalMetricsOptions) -> Self {
        let mut sampler = SelfSampler::new();
        let _ = sampler.sample(Instant::now());
        InternalMetricsInput {
            config: Arc::from(config),
            options,
            last: [None; 4],
            sampler,
            acks: Acks::new(),
            hostname: crate::sinks::sls::HostInfo::detect().hostname,
            started: unix_now(),
        }
    }

    /// The events of the rules that are due at `now`.
    fn due_events(&mut self, now: Instant) -> Vec<Event> {
        let o = self.options;
        let rules = [o.agent, o.pipeline, o.plugin_source, o.plugin];
        let mut due = [false; 4];
        for (i, r) in rules.iter().enumerate() {
            // The first interval ends one interval after the start.
            let last = *self.last[i].get_or_insert(now);
            if r.enable && now.duration_since(last) >= r.interval {
                due[i] = true;
                self.last[i] = Some(now);
            }
        }
        if !due.contains(&true) {
            return Vec::new();
        }
        let time = unix_now().to_string();
        let snaps = crate::metrics::global().snapshot();
        let mut out = Vec::new();
        let mut push = |name: &str, labels: Value, value: Value| {
            out.push(event_of(&[
                ("__name__", name.to_owned()),
                ("__labels__", labels.to_string()),
                ("__time__", time.clone()),
                ("__value__", value.to_string()),
            ]));
        };
        if due[0] {
            let sample = self.sampler.sample(now).ok();
            let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
            push(
                "agent",
                json!({
                    "hostname": self.hostname,
                    "os": std::env::consts::OS,
                    "version": env!("CARGO_PKG_VERSION"),
                    "start_time": self.started,
                }),
                json!({
                    "cpu": sample.map_or(0.0, |s| s.cpu_cores),
                    "memory_used_mb": sample.map_or(0, |s| s.rss_bytes >> 20),
                    "open_fd_total": fds,
                    "pipeline_config_total": snaps.len(),
                }),
            );
        }
        for p in &snaps {
            if due[1] {
                push(
                    "pipeline",
                    json!({"pipeline_name": p.name}),
                    json!({
                        "input_read_bytes_total": p.input.read_bytes,
                        "input_lines_total": p.input.lines,
                        "input_behind_bytes": p.input.behind_bytes,
                        "input_files_open": p.input.files_open,
                        "process_events_out_total": p.events_out,
                        "process_parse_failures_total": p.parse_failures,
                        "discarded_events_total": p.discarded.values().sum::<u64>(),
                        "input_decode_replaced_total": p.input.decode_replaced,
                    }),
                );
            }
            if due[2] {
                for f in &p.files {
                    push(
                        "plugin_source",
                        json!({
                            "pipeline_name": p.name,
                            "file_name": f.path.display().to_string(),
                            "file_dev": f.dev,
                            "file_inode": f.inode,
                        }),
                        json!({
                            "size_bytes": f.size,
                            "read_offset_bytes": f.read_offset,
                            "acked_offset_bytes": f.acked_offset,
                            "behind_bytes": f.behind_bytes(),
                            "read_bytes_total": f.read_bytes,
                            "read_events_total": f.read_events,
                        }),
                    );
                }
            }
            if due[3] {
                for (i, pr) in p.processors.iter().enumerate() {
                    push(
                        "plugin",
                        json!({"pipeline_name": p.name, "plugin_type": pr.name, "plugin_id": format!("processors[{i}]")}),
                        json!({
                            "in_events_total": pr.processed,
                            "parse_failures_total": pr.failed,
                            "discarded_events_total": pr.dropped,
                        }),
                    );
                }
                for (i, s) in p.sinks.iter().enumerate() {
                    let mut v = Map::new();
                    for (k, n) in [
                        ("out_events_total", s.events),
                        ("send_errors_total", s.send_errors),
                        ("groups_sent_total", s.groups_sent),
                        ("groups_retried_total", s.groups_retried),
                        ("groups_spilled_total", s.groups_spilled),
                        ("groups_replayed_total", s.groups_replayed),
                        ("groups_rejected_total", s.groups_rejected),
                    ] {
                        v.insert(k.into(), n.into());
                    }
                    push(
                        "plugin",
                        json!({"pipeline_name": p.name, "plugin_type": s.name, "plugin_id": format!("flushers[{i}]")}),
                        Value::Object(v),
                    );
                }
            }
        }
        out
    }
}

impl Input for InternalMetricsInput {
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
        self.acks.drain();
        let events = self.due_events(Instant::now());
        if !events.is_empty() {
            emit.emit(self.acks.batch(&self.config, "__metric__", events))?;
        }
        Ok(Progress::Idle)
    }

    fn wait(&mut self, timeout: Duration) {
        sleep_a_little(timeout);
    }

    fn settle(&mut self, timeout: Duration) -> Result<usize, InputError> {
        Ok(self.acks.settle(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::AlarmType;

    #[test]
    fn metrics_come_when_each_rule_is_due() {
        let mut o = InternalMetricsOptions::default();
        o.agent.interval = Duration::from_secs(15);
        o.pipeline.enable = false;
        o.plugin_source.enable = false;
        o.plugin.enable = false;
        let mut input = InternalMetricsInput::new("m", o);
        let t0 = Instant::now();
        assert!(input.due_events(t0).is_empty(), "nothing at the start");
        assert!(input.due_events(t0 + Duration::from_secs(14)).is_empty());
        let ev = input.due_events(t0 + Duration::from_secs(15));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].field("__name__"), Some(&b"agent"[..]));
        let value: Value =
            serde_json::from_slice(ev[0].field("__value__").unwrap_or_default()).unwrap();
        assert!(value["memory_used_mb"].as_u64().is_some(), "{value}");
        assert!(input.due_events(t0 + Duration::from_secs(20)).is_empty());
    }

    #[test]
    fn closed_alarm_windows_become_events_once() {
        let mut input = InternalAlarmsInput::new("alarms");
        // Raised 31 s ago: its window is closed.
        let then = unix_now() - 31;
        crate::alarms::global().raise_at(
            AlarmType::CategoryConfig,
            "internal-test",
            "bad config",
            2,
            then,
        );
        let mut out: Vec<EventBatch> = Vec::new();
        input.poll(&mut out).unwrap();
        let events: Vec<&Event> = out
            .iter()
            .flat_map(|b| b.events.iter())
            .filter(|e| e.field("config") == Some(&b"internal-test"[..]))
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].field("alarm_type"),
            Some(&b"CATEGORY_CONFIG_ALARM"[..])
        );
        assert_eq!(events[0].field("alarm_count"), Some(&b"2"[..]));
        assert_eq!(events[0].field("alarm_level"), Some(&b"3"[..]));
        input.last = None;
        let mut again: Vec<EventBatch> = Vec::new();
        input.poll(&mut again).unwrap();
        assert!(again
            .iter()
            .flat_map(|b| b.events.iter())
            .all(|e| e.field("config") != Some(&b"internal-test"[..])));
        out.into_iter().chain(again).for_each(EventBatch::delivered);
        assert_eq!(input.settle(Duration::from_secs(1)).unwrap(), 0);
    }
}
