//! The command line: running the agent (the default), and the `upgrade`
//! subcommand that talks to a running supervisor.

use std::path::PathBuf;

/// `logtail-agent [RUN OPTIONS]` or `logtail-agent SUBCOMMAND …`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "logtail-agent",
    version,
    about = "Collects logs from files as LoongCollector pipeline configs describe",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Subcommands besides running the agent.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Asks the supervisor running on DATA_DIR to switch to another
    /// binary: it checks that `NEW --version` runs, stops the worker
    /// gracefully, starts NEW on the same data dir, and rolls back if NEW
    /// exits within the probation time. Prints the outcome; exit code 0
    /// when NEW runs, 1 when it was rolled back or refused.
    Upgrade {
        /// The running agent's --data-dir (its control socket is there).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The new `logtail-agent` binary.
        #[arg(long, value_name = "NEW")]
        binary: PathBuf,
    },
    /// Prints the status of the agent running with `--status-listen ADDR`:
    /// its status, CPU and memory, each pipeline with its files (progress,
    /// bytes behind, rate, ETA) and sinks, and the recent alarms. Exit
    /// code 1 when the agent cannot be reached.
    Status {
        /// The running agent's --status-listen address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18689")]
        status_listen: String,
    },
}

/// How the agent runs (`logtail-agent [OPTIONS]`).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RunArgs {
    /// A LoongCollector pipeline config (YAML or JSON); repeatable. Without
    /// any, an embedded demo config runs.
    #[arg(long = "config", value_name = "FILE")]
    pub(crate) configs: Vec<PathBuf>,
    /// Where checkpoints, disk buffers, the agent's log and its control
    /// socket live.
    #[arg(long, value_name = "DIR", default_value = "logtail-data")]
    pub(crate) data_dir: PathBuf,
    /// SLS credentials file (YAML/JSON with AccessKeyId, AccessKeySecret and
    /// optionally SecurityToken) for flusher_sls; without it, the
    /// ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN
    /// variables are used.
    #[arg(long, value_name = "FILE")]
    pub(crate) credentials_file: Option<PathBuf>,
    /// A directory of pipeline configs (`*.yaml`, `*.yml`, `*.json`), checked
    /// every second: added, changed and removed files are applied.
    #[arg(long, value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// A ConfigServer (v2 protocol) to heartbeat to and take configs from;
    /// repeatable (fail-over in order).
    #[arg(long = "config-server", value_name = "URL")]
    pub(crate) config_servers: Vec<String>,
    /// User-defined identities, one per line (machine groups of type userdefined).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/ilogtail/user_defined_id"
    )]
    pub(crate) user_defined_id_file: PathBuf,
    /// Directory whose file names are the accounts (AliUid) allowed to collect from this host.
    #[arg(long, value_name = "DIR", default_value = "/etc/ilogtail/users")]
    pub(crate) users_dir: PathBuf,
    /// A heartbeat tag NAME=VALUE; repeatable.
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = logtail_sdk::fleet::client::parse_tag)]
    pub(crate) tags: Vec<(String, String)>,
    /// Seconds between heartbeats.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = secs_between::<50, 3_600_000>)]
    pub(crate) heartbeat_secs: f64,
    /// Seconds between re-reads of the identity files.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = secs_between::<50, 86_400_000>)]
    pub(crate) identity_refresh_secs: f64,
    /// CPU limit in cores (default 2.0, or `cpu_usage_limit` /
    /// `LOONG_CPU_USAGE_LIMIT`): reading slows down above it, and 10
    /// consecutive 30 s checks above it restart the worker (exit code 3).
    #[arg(long, value_name = "CORES")]
    pub(crate) cpu_limit: Option<f64>,
    /// Memory (RSS) limit in MB (default 2048, or `mem_usage_limit` /
    /// `LOONG_MEM_USAGE_LIMIT`): 10 consecutive checks above it, or once
    /// above 5 times it, restart the worker (exit code 3).
    #[arg(long, value_name = "MB")]
    pub(crate) mem_limit: Option<u64>,
    /// Bytes per second across all flushers, 0 for no limit (default 0, or
    /// `max_bytes_per_sec` / `LOONG_MAX_BYTES_PER_SEC`); a flusher's own
    /// `MaxSendRate` still applies.
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub(crate) max_send_rate: Option<u64>,
    /// Most MiB each pipeline holds read but not yet delivered; reading
    /// pauses above it (with the queues, this bounds a pipeline's memory).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub max_in_flight_mb: u64,
    /// Seconds between limit checks (30; at least 0.25).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = secs_between::<250, 3_600_000>)]
    pub(crate) limit_check_secs: f64,
    /// How many limit checks in a row over a limit restart the worker (10; 1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) limit_checks: u32,
    /// Log filter for the agent's own log (or set RUST_LOG).
    #[arg(long, default_value = "info")]
    pub(crate) log_level: String,
    /// The agent's own log file (default `DATA_DIR/logtail-agent.LOG`),
    /// rotated by size.
    #[arg(long, value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,
    /// Size at which the log file is rotated, in MiB (1 or more).
    #[arg(long, value_name = "MIB", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub(crate) log_file_mib: u64,
    /// How many rotated log files are kept (`.1` … `.N`; 1 or more).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) log_file_keep: u32,
    /// Also log to stderr: `auto` (when it is a terminal), `always`, `never`.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub(crate) log_stderr: LogStderr,
    /// Run the worker alone, without the supervisor process (for systemd
    /// with `Restart=always`, or containers).
    #[arg(long)]
    pub(crate) no_supervisor: bool,
    /// Seconds a new binary must run after `upgrade` before the
    /// supervisor keeps it (30; 0.5 to 3600); exiting earlier rolls it back.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = secs_between::<500, 3_600_000>)]
    pub(crate) upgrade_probation_secs: f64,
    /// Seconds to wait at start for another agent on the same data dir to
    /// stop (a worker left by a killed supervisor still delivers and
    /// writes checkpoints); then the start is refused (exit code 2).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = secs_between::<0, 3_600_000>)]
    pub(crate) lock_wait_secs: f64,
    /// Serve `GET /status` (JSON) and `GET /metrics` (Prometheus text) on
    /// ADDR, e.g. 127.0.0.1:18689 (off by default). Without
    /// authentication: keep it on loopback or a trusted network.
    #[arg(long, value_name = "ADDR")]
    pub(crate) status_listen: Option<String>,
    /// Internal: this process is the worker of a supervisor.
    #[arg(long, hide = true)]
    pub(crate) worker: bool,
    /// Internal: a re-executed supervisor takes over the running worker
    /// (PID) and its restart history.
    #[arg(long, hide = true, value_name = "STATE")]
    pub(crate) adopt: Option<String>,
}

/// A number of seconds from `MIN_MS` to `MAX_MS` milliseconds: anything
/// else (negative, NaN, infinite, out of range) stops the start with a
/// message that gives the range, never a silent clamp.
fn secs_between<const MIN_MS: u64, const MAX_MS: u64>(s: &str) -> Result<f64, String> {
    let (lo, hi) = (MIN_MS as f64 / 1000.0, MAX_MS as f64 / 1000.0);
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        Ok(_) => Err(format!("must be from {lo} to {hi} seconds")),
        Err(_) => Err(format!("not a number of seconds (from {lo} to {hi})")),
    }
}

/// When the agent's log also goes to stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogStderr {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}
