//! Self-protection: the agent's resource limits as LoongCollector users
//! set them, how the process measures itself, the read throttle every
//! pipeline obeys ([`ReadGate`]), the rule that decides a restart, and the
//! [`Monitor`] thread that runs them.
//!
//! - [`Limits::resolve`]: `--cpu-limit`, `--mem-limit`, `--max-send-rate`,
//!   else the environment variables LoongCollector reads (`cpu_usage_limit`
//!   or `LOONG_CPU_USAGE_LIMIT`, and so on), else the defaults (2 cores,
//!   2048 MB, unlimited). A value out of range is an error, never ignored.
//! - [`SelfSampler`]: CPU from `/proc/self/stat` (user + system ticks over
//!   the window, in cores) and RSS from `/proc/self/statm`, as
//!   LoongCollector's monitor reads them; the parsers are separate
//!   functions, tested on text.
//! - [`ReadThrottle`]: a delay before each read, adjusted once a second
//!   from CPU ÷ limit (LoongCollector's `input_flow_control`, made
//!   proportional).
//! - [`RestartRule`]: over a limit at N consecutive checks (10 checks of
//!   30 s), or RSS above 5 × the memory limit at any check, means a
//!   graceful restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

/// What the agent may use of the host.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// CPU, in cores (`--cpu-limit`, `cpu_usage_limit`; default 2.0).
    pub cpu_cores: f64,
    /// Resident memory, in MB (`--mem-limit`, `mem_usage_limit`; default 2048).
    pub mem_mb: u64,
    /// Bytes per second across all flushers; 0 = unlimited
    /// (`--max-send-rate`, `max_bytes_per_sec`; default 0).
    pub max_send_rate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_cores: 2.0,
            mem_mb: 2048,
            max_send_rate: 0,
        }
    }
}

/// The byte budget shared by every flusher of every pipeline
/// (`--max-send-rate`, `max_bytes_per_sec`): before a sink is handed a
/// batch, the batch's source bytes are taken from one token bucket, so the
/// sum over all flushers stays at the rate (bursts up to one second's
/// worth). A flusher's own `MaxSendRate` applies on top. Cloning shares
/// the bucket; the default limits nothing.
///
/// ```
/// use logtail_sdk::resources::SendLimit;
/// let limit = SendLimit::new(1 << 20);
/// assert!(limit.take(1 << 20).is_zero()); // the first second's worth
/// assert!(!limit.take(1 << 20).is_zero()); // the next must wait
/// assert!(SendLimit::default().take(u64::MAX).is_zero());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SendLimit(Option<Arc<crate::sinks::sls::TokenBucket>>);

impl SendLimit {
    /// `rate` bytes per second across all flushers; 0 for no limit.
    pub fn new(rate: u64) -> SendLimit {
        SendLimit((rate > 0).then(|| Arc::new(crate::sinks::sls::TokenBucket::new(rate))))
    }

    /// Takes `bytes` from the budget: how long to wait before sending them.
    pub fn take(&self, bytes: u64) -> Duration {
        self.0.as_ref().map_or(Duration::ZERO, |b| b.take(bytes))
    }
}

/// The limits given on the command line (`None`: not given).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LimitFlags {
    /// `--cpu-limit CORES`.
    pub cpu_cores: Option<f64>,
    /// `--mem-limit MB`.
    pub mem_mb: Option<u64>,
    /// `--max-send-rate BYTES_PER_SEC`.
    pub max_send_rate: Option<u64>,
}

/// A limit that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// Not a number.
    #[error("{from}: {value:?} is not a number")]
    NotANumber {
        /// The flag or variable it came from.
        from: String,
        /// What it said.
        value: String,
    },
    /// A number outside the range the agent accepts.
    #[error("{from}: {value} is out of range ({range})")]
    OutOfRange {
        /// The flag or variable it came from.
        from: String,
        /// The value.
        value: String,
        /// What is accepted.
        range: &'static str,
    },
}

/// Smallest CPU limit (LoongCollector documents 0.1 cores).
pub const MIN_CPU_CORES: f64 = 0.1;
/// Smallest memory limit in MB (LoongCollector documents 128).
pub const MIN_MEM_MB: u64 = 128;
/// Smallest non-zero send rate (LoongCollector rejects less than 1 MiB/s).
pub const MIN_SEND_RATE: u64 = 1 << 20;

impl Limits {
    /// The limits from the flags, else from the environment (`env` looks a
    /// variable up: `cpu_usage_limit`, `mem_usage_limit`,
    /// `max_bytes_per_sec`, or the same upper-cased behind `LOONG_`), else
    /// the defaults. A flag wins over the environment.
    ///
    /// ```
    /// use logtail_sdk::resources::{LimitFlags, Limits};
    /// let env = |k: &str| (k == "LOONG_MEM_USAGE_LIMIT").then(|| "512".to_string());
    /// let mut flags = LimitFlags::default();
    /// flags.cpu_cores = Some(0.5);
    /// let l = Limits::resolve(flags, &env)?;
    /// assert_eq!((l.cpu_cores, l.mem_mb, l.max_send_rate), (0.5, 512, 0));
    /// # Ok::<(), logtail_sdk::resources::LimitsError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A value that is not a number or is out of range, naming the flag or
    /// variable it came from.
    pub fn resolve(
        flags: LimitFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Limits, LimitsError> {
        let d = Limits::default();
        let cpu_cores = match flags.cpu_cores {
            Some(v) => check_cpu("--cpu-limit", v, &v.to_string())?,
            None => match from_env(env, "cpu_usage_limit") {
                Some((from, text)) => {
                    let v = text
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| not_a_number(&from, &text))?;
                    check_cpu(&from, v, &text)?
                }
                None => d.cpu_cores,
            },
        };
        let mem_mb = match flags.mem_mb {
            Some(v) => check_mem("--mem-limit", v)?,
            None => match from_env(env, "mem_usage_limit") {
                Some((from, text)) => check_mem(&from, parse_u64(&from, &text)?)?,
                None => d.mem_mb,
            },
        };
        let max_send_rate = match flags.max_send_rate {
            Some(v) => check_rate("--max-send-rate", v)?,
            None => match from_env(env, "max_bytes_per_sec") {
                Some((from, text)) => check_rate(&from, parse_u64(&from, &text)?)?,
                None => d.max_send_rate,
            },
        };
        Ok(Limits {
            cpu_cores,
            mem_mb,
            max_send_rate,
        })
    }

    /// The memory limit in bytes.
    pub fn mem_bytes(&self) -> u64 {
        self.mem_mb.saturating_mul(1 << 20)
    }
}

/// The variable `key` or `LOONG_KEY`, with the name it came from.
fn from_env(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<(String, String)> {
    let loong = format!("LOONG_{}", key.to_ascii_uppercase());
    for name in [key.to_string(), loong] {
        if let Some(v) = env(&name).filter(|v| !v.trim().is_empty()) {
            return Some((name, v));
        }
    }
    None
}

fn not_a_number(from: &str, text: &str) -> LimitsError {
    LimitsError::NotANumber {
        from: from.to_string(),
        value: text.to_string(),
    }
}

fn parse_u64(from: &str, text: &str) -> Result<u64, LimitsError> {
    text.trim().parse().map_err(|_| not_a_number(from, text))
}

fn check_cpu(from: &str, v: f64, text: &str) -> Result<f64, LimitsError> {
    if v.is_finite() && (MIN_CPU_CORES..=4096.0).contains(&v) {
        Ok(v)
    } else {
        Err(LimitsError::OutOfRange {
            from: from.to_string(),
            value: text.to_string(),
            range: "0.1 to 4096 cores",
        })
    }
}

fn check_mem(from: &str, v: u64) -> Result<u64, LimitsError> {
    if (MIN_MEM_MB..=(1 << 30)).contains(&v) {
        Ok(v)
    } else {
        Err(LimitsError::OutOfRange {
            from: from.to_string(),
            value: v.to_string(),
            range: "128 MB or more",
        })
    }
}

fn check_rate(from: &str, v: u64) -> Result<u64, LimitsError> {
    if v == 0 || v >= MIN_SEND_RATE {
        Ok(v)
    } else {
        Err(LimitsError::OutOfRange {
            from: from.to_string(),
            value: v.to_string(),
            range: "0 (unlimited) or at least 1048576 bytes per second",
        })
    }
}

/// User plus system CPU time in clock ticks, from the text of
/// `/proc/PID/stat` (fields 14 and 15, counted after the `)` that ends the
/// command name, which may itself hold spaces and parentheses).
///
/// ```
/// use logtail_sdk::resources::parse_stat_cpu_ticks;
/// let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
/// assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
/// ```
pub fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; utime is field 14.
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// Resident pages, from the text of `/proc/PID/statm` (its second field).
pub fn parse_statm_rss_pages(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// One measurement of the process.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Sample {
    /// CPU used since the previous sample, in cores (0 at the first).
    pub cpu_cores: f64,
    /// Resident memory now.
    pub rss_bytes: u64,
}

/// Measures the process it runs in from `/proc/self`.
#[derive(Debug)]
pub struct SelfSampler {
    last: Option<(Instant, u64)>,
    ticks_per_sec: u64,
    page_size: u64,
}

impl SelfSampler {
    /// A sampler; the first [`SelfSampler::sample`] reports 0 cores.
    pub fn new() -> Self {
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        SelfSampler {
            last: None,
            ticks_per_sec: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
        }
    }

    /// Reads `/proc/self/stat` and `/proc/self/statm`.
    ///
    /// # Errors
    ///
    /// The files cannot be read, or do not look like Linux's.
    pub fn sample(&mut self, now: Instant) -> std::io::Result<Sample> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let statm = std::fs::read_to_string("/proc/self/statm")?;
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| bad("unexpected /proc/self/stat"))?;
        let pages =
            parse_statm_rss_pages(&statm).ok_or_else(|| bad("unexpected /proc/self/statm"))?;
        Ok(self.record(now, ticks, pages))
    }

    /// The sample for `ticks` of CPU and `pages` resident at `now` (the
    /// part of [`SelfSampler::sample`] without I/O).
    pub fn record(&mut self, now: Instant, ticks: u64, pages: u64) -> Sample {
        let cpu_cores = match self.last {
            Some((t, before)) => {
                let secs = now.duration_since(t).as_secs_f64();
                if secs > 0.0 {
                    ticks.saturating_sub(before) as f64 / self.ticks_per_sec as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        Sample {
            cpu_cores,
            rss_bytes: pages.saturating_mul(self.page_size),
        }
    }
}

impl Default for SelfSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// The read throttle: before each read the input sleeps
/// [`ReadThrottle::delay`]; once a second [`ReadThrottle::update`] scales
/// it by CPU ÷ limit. Lines are delayed, never dropped.
///
/// LoongCollector's `input_flow_control` moves the delay in 20 ms steps
/// (+5 … −5 by how far CPU is from the limit). A read of ours costs a few
/// milliseconds (4 MiB at about 1 GB/s), so one step already spans most of
/// the range: such a controller swings between full speed and a crawl. This
/// one is proportional: CPU ≈ cost ÷ (cost + delay), so scaling the delay by
/// CPU ÷ target (at most ×8 or ÷2 a step) converges on the target, 85 % of
/// the limit, which leaves room for the burst before the first step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReadThrottle {
    delay: Duration,
}

impl ReadThrottle {
    /// The delay a throttle starts from when CPU first exceeds the limit.
    pub const START: Duration = Duration::from_millis(10);
    /// The longest delay before a read.
    pub const MAX: Duration = Duration::from_secs(1);

    /// The share of the limit aimed at.
    pub const TARGET: f64 = 0.85;

    /// Adjusts the delay from the CPU (in cores) since the last update and
    /// the limit.
    pub fn update(&mut self, cpu_cores: f64, limit: f64) {
        let level = if limit > 0.0 {
            cpu_cores / (limit * Self::TARGET)
        } else {
            0.0
        };
        if self.delay.is_zero() {
            if cpu_cores > limit {
                // Proportional from the start: far over the limit, far
                // from full speed.
                self.delay = Self::START.mul_f64(level.min(100.0)).min(Self::MAX);
            }
            return;
        }
        let next = self.delay.as_secs_f64() * level.clamp(0.5, 8.0);
        self.delay = if next < 0.001 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(next).min(Self::MAX)
        };
    }

    /// How long to sleep before the next read.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

/// The delay every pipeline's input sleeps before each poll, shared
/// between the [`Monitor`] that sets it and the pipelines that obey it
/// ([`BuildContext::read_gate`](crate::pipeline::BuildContext::read_gate)).
/// Clones share the delay. Zero (the default) reads at full speed.
#[derive(Debug, Clone, Default)]
pub struct ReadGate(Arc<AtomicU64>);

impl ReadGate {
    /// Sets the delay.
    pub fn set(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(nanos, Ordering::Relaxed);
    }

    /// The delay now.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// A thread that measures the process four times a second (ten while it
/// reads at full speed, so that a catch-up's first burst is short), throttles
/// reading through a [`ReadGate`] when CPU is over the limit, and applies
/// the [`RestartRule`] at its interval; a restart cause is sent once on the
/// given channel (the agent then stops gracefully and exits for a restart).
/// Stops when dropped.
#[derive(Debug)]
pub struct Monitor {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    /// How often the throttle is adjusted while it throttles.
    pub const TICK: Duration = Duration::from_millis(250);
    /// How often CPU is looked at while reading at full speed.
    pub const FAST_TICK: Duration = Duration::from_millis(100);

    /// Starts the thread.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn start(
        limits: Limits,
        gate: ReadGate,
        mut rule: RestartRule,
        restart: Sender<RestartCause>,
    ) -> std::io::Result<Monitor> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || {
                let mut sampler = SelfSampler::new();
                let mut throttle = ReadThrottle::default();
                let started = Instant::now();
                let mut next_check = started + rule.interval;
                // CPU-seconds and seconds since the last check: its mean
                // weighs each tick by its length (ticks are 100 or 250 ms).
                let mut check_cpu = (0.0f64, 0.0f64);
                let mut last_tick = started;
                let _ = sampler.sample(started);
                loop {
                    let tick = if throttle.delay().is_zero() {
                        Self::FAST_TICK
                    } else {
                        Self::TICK
                    };
                    match stopped.recv_timeout(tick) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let now = Instant::now();
                    let Ok(sample) = sampler.sample(now) else {
                        continue;
                    };
                    let before = throttle.delay();
                    throttle.update(sample.cpu_cores, limits.cpu_cores);
                    gate.set(throttle.delay());
                    if before.is_zero() != throttle.delay().is_zero() {
                        if throttle.delay().is_zero() {
                            tracing::info!(limit = limits.cpu_cores, "CPU under the limit: reading at full speed again");
                        } else {
                            tracing::info!(cpu = format!("{:.2}", sample.cpu_cores), limit = limits.cpu_cores, "CPU over the limit: slowing reading down (lines are delayed, not dropped)");
                        }
                    }
                    // Far above the memory limit the host is at risk now:
                    // this is looked at every tick, not at the check.
                    if sample.rss_bytes > limits.mem_bytes().saturating_mul(5) {
                        let cause = RestartCause::MemoryHard {
                            rss_bytes: sample.rss_bytes,
                        };
                        tracing::error!("restarting: {cause}");
                        let _ = restart.send(cause);
                        return;
                    }
                    let secs = now.duration_since(last_tick).as_secs_f64();
                    last_tick = now;
                    check_cpu = (check_cpu.0 + sample.cpu_cores * secs, check_cpu.1 + secs);
                    if now >= next_check {
                        let mean = if check_cpu.1 > 0.0 {
                            check_cpu.0 / check_cpu.1
                        } else {
                            0.0
                        };
                        check_cpu = (0.0, 0.0);
                        next_check = now + rule.interval;
                        if let Some(cause) = rule.check(&limits, mean, sample.rss_bytes) {
                            tracing::error!("restarting: {cause}");
                            let _ = restart.send(cause);
                            return;
                        }
                    }
                }
            })?;
        Ok(Monitor {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the agent should restart itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RestartCause {
    /// CPU above the limit at this many consecutive checks.
    Cpu {
        /// Consecutive checks over the limit.
        checks: u32,
        /// CPU at the last one, in cores.
        cores: f64,
    },
    /// RSS above the limit at this many consecutive checks.
    Memory {
        /// Consecutive checks over the limit.
        checks: u32,
        /// RSS at the last one.
        rss_bytes: u64,
    },
    /// RSS above 5 × the limit: at once.
    MemoryHard {
        /// RSS.
        rss_bytes: u64,
    },
}

impl std::fmt::Display for RestartCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartCause::Cpu { checks, cores } => write!(
                f,
                "CPU above the limit at {checks} consecutive checks (last {cores:.2} cores)"
            ),
            RestartCause::Memory { checks, rss_bytes } => write!(
                f,
                "memory above the limit at {checks} consecutive checks (last {} MiB)",
                rss_bytes >> 20
            ),
            RestartCause::MemoryHard { rss_bytes } => {
                write!(f, "memory {} MiB, above 5 times the limit", rss_bytes >> 20)
            }
        }
    }
}

/// LoongCollector's restart rule: each check over a limit counts, one under
/// it resets the count; `checks` consecutive checks over the CPU or the
/// memory limit, or RSS above 5 × the memory limit at any check, restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartRule {
    /// Consecutive checks over a limit that restart (default 10).
    pub checks: u32,
    /// Time between checks (default 30 s; the caller keeps it).
    pub interval: Duration,
    cpu_over: u32,
    mem_over: u32,
}

impl Default for RestartRule {
    fn default() -> Self {
        RestartRule {
            checks: 10,
            interval: Duration::from_secs(30),
            cpu_over: 0,
            mem_over: 0,
        }
    }
}

impl RestartRule {
    /// A rule restarting after `checks` consecutive checks `interval` apart.
    pub fn new(checks: u32, interval: Duration) -> Self {
        RestartRule {
            checks: checks.max(1),
            interval,
            ..RestartRule::default()
        }
    }

    /// One check: `cpu_cores` averaged over the interval, `rss_bytes` now.
    pub fn check(
        &mut self,
        limits: &Limits,
        cpu_cores: f64,
        rss_bytes: u64,
    ) -> Option<RestartCause> {
        let mem = limits.mem_bytes();
        if rss_bytes > mem.saturating_mul(5) {
            return Some(RestartCause::MemoryHard { rss_bytes });
        }
        self.cpu_over = if cpu_cores > limits.cpu_cores {
            self.cpu_over + 1
        } else {
            0
        };
        self.mem_over = if rss_bytes > mem {
            self.mem_over + 1
        } else {
            0
        };
        if self.cpu_over >= self.checks {
            return Some(RestartCause::Cpu {
                checks: self.cpu_over,
                cores: cpu_cores,
            });
        }
        if self.mem_over >= self.checks {
            return Some(RestartCause::Memory {
                checks: self.mem_over,
                rss_bytes,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_loongcollectors() {
        let l = Limits::resolve(LimitFlags::default(), &env_of(&[])).unwrap();
        assert_eq!(l, Limits::default());
        assert_eq!((l.cpu_cores, l.mem_mb, l.max_send_rate), (2.0, 2048, 0));
    }

    #[test]
    fn environment_in_both_spellings_and_flags_win() {
        let env = env_of(&[
            ("cpu_usage_limit", "0.4"),
            ("LOONG_MEM_USAGE_LIMIT", "384"),
            ("max_bytes_per_sec", "20971520"),
        ]);
        let l = Limits::resolve(LimitFlags::default(), &env).unwrap();
        assert_eq!(
            (l.cpu_cores, l.mem_mb, l.max_send_rate),
            (0.4, 384, 20_971_520)
        );
        let flags = LimitFlags {
            cpu_cores: Some(1.5),
            mem_mb: Some(1024),
            max_send_rate: Some(0),
        };
        let l = Limits::resolve(flags, &env).unwrap();
        assert_eq!((l.cpu_cores, l.mem_mb, l.max_send_rate), (1.5, 1024, 0));
    }

    #[test]
    fn out_of_range_and_garbage_are_errors_naming_their_source() {
        let e = Limits::resolve(
            LimitFlags::default(),
            &env_of(&[("LOONG_CPU_USAGE_LIMIT", "0.05")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("LOONG_CPU_USAGE_LIMIT"), "{e}");
        let e = Limits::resolve(
            LimitFlags::default(),
            &env_of(&[("mem_usage_limit", "lots")]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "mem_usage_limit: \"lots\" is not a number");
        let flags = LimitFlags {
            max_send_rate: Some(1000),
            ..LimitFlags::default()
        };
        let e = Limits::resolve(flags, &env_of(&[])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--max-send-rate: 1000 is out of range"),
            "{e}"
        );
        let flags = LimitFlags {
            mem_mb: Some(64),
            ..LimitFlags::default()
        };
        assert!(Limits::resolve(flags, &env_of(&[])).is_err());
        let flags = LimitFlags {
            cpu_cores: Some(f64::NAN),
            ..LimitFlags::default()
        };
        assert!(Limits::resolve(flags, &env_of(&[])).is_err());
    }

    #[test]
    fn proc_parsers() {
        let stat = "1234 (logtail agent) R 1 1234 1234 0 -1 4194304 512 0 0 0 1000 234 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1234));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(
            parse_statm_rss_pages("5000 1200 300 10 0 900 0\n"),
            Some(1200)
        );
        assert_eq!(parse_statm_rss_pages(""), None);
    }

    #[test]
    fn sampler_reports_cores_over_the_window() {
        let mut s = SelfSampler {
            last: None,
            ticks_per_sec: 100,
            page_size: 4096,
        };
        let t0 = Instant::now();
        assert_eq!(s.record(t0, 1000, 10).cpu_cores, 0.0);
        let x = s.record(t0 + Duration::from_secs(2), 1100, 20);
        assert!((x.cpu_cores - 0.5).abs() < 1e-9, "{x:?}");
        assert_eq!(x.rss_bytes, 20 * 4096);
    }

    #[test]
    fn the_real_process_can_be_sampled() {
        let mut s = SelfSampler::new();
        let t0 = Instant::now();
        s.sample(t0).unwrap();
        // Burn some CPU, then the sample shows it.
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = s.sample(Instant::now()).unwrap();
        assert!(after.cpu_cores > 0.2, "{after:?}");
        assert!(after.rss_bytes > 1 << 20, "{after:?}");
    }

    #[test]
    fn throttle_starts_over_the_limit_and_releases_under_it() {
        let mut t = ReadThrottle::default();
        t.update(0.1, 1.0);
        assert_eq!(t.delay(), Duration::ZERO);
        // 2 cores against 1: level 2 / 0.85, so 10 ms × 2.35.
        t.update(2.0, 1.0);
        assert_eq!(t.delay().as_millis(), 23);
        t.update(0.85, 1.0);
        assert_eq!(t.delay().as_millis(), 23);
        for _ in 0..20 {
            t.update(50.0, 1.0);
        }
        assert_eq!(t.delay(), ReadThrottle::MAX);
        for _ in 0..20 {
            t.update(0.0, 1.0);
        }
        assert_eq!(t.delay(), Duration::ZERO);
    }

    /// A model of a catch-up: the input would use `demand` cores unthrottled
    /// and each read costs `read_cost` of CPU time; the throttle must bring
    /// the 10 s mean within 1.25 × the limit.
    #[test]
    fn throttle_converges_on_a_catch_up_model() {
        for (limit, read_cost) in [(0.2, 0.004), (0.2, 0.0005), (0.5, 0.02), (1.5, 0.004)] {
            let mut t = ReadThrottle::default();
            let mut window = Vec::new();
            for _second in 0..60 {
                // Reads per second with a delay d before each: 1 / (cost + d).
                let reads = 1.0 / (read_cost + t.delay().as_secs_f64());
                let cpu = (reads * read_cost).min(1.0);
                window.push(cpu);
                t.update(cpu, limit);
            }
            // Every 10 s window after the first 20 s.
            for w in window[20..].windows(10) {
                let mean = w.iter().sum::<f64>() / 10.0;
                assert!(
                    mean <= 1.25 * limit.min(1.0),
                    "limit {limit}, cost {read_cost}: mean {mean}"
                );
                assert!(
                    mean > 0.5 * limit.min(1.0),
                    "limit {limit}, cost {read_cost}: throttled to {mean}"
                );
            }
        }
    }

    #[test]
    fn restart_rule_counts_consecutive_checks() {
        let limits = Limits {
            cpu_cores: 1.0,
            mem_mb: 100,
            max_send_rate: 0,
        };
        let mut r = RestartRule::new(3, Duration::from_secs(30));
        assert_eq!(r.check(&limits, 2.0, 0), None);
        assert_eq!(r.check(&limits, 2.0, 0), None);
        // One check under the limit resets the count.
        assert_eq!(r.check(&limits, 0.5, 0), None);
        assert_eq!(r.check(&limits, 2.0, 0), None);
        assert_eq!(r.check(&limits, 2.0, 0), None);
        assert!(matches!(
            r.check(&limits, 2.0, 0),
            Some(RestartCause::Cpu { checks: 3, .. })
        ));
        let mut r = RestartRule::new(2, Duration::from_secs(30));
        let over = 150 << 20;
        assert_eq!(r.check(&limits, 0.1, over), None);
        let cause = r.check(&limits, 0.1, over).unwrap();
        assert!(
            cause.to_string().contains("memory above the limit at 2"),
            "{cause}"
        );
        // Far above: at once.
        let mut r = RestartRule::default();
        assert!(matches!(
            r.check(&limits, 0.1, 600 << 20),
            Some(RestartCause::MemoryHard { .. })
        ));
    }
}
