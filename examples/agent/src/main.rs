//! `logtail-agent`: the thin agent around logtail-sdk: arguments, signals
//! and the SDK's agent ([`logtail_sdk::agent`]).
//!
//! ```text
//! logtail-agent --config app.yaml [--config more.yaml …] --data-dir /var/lib/logtail
//! logtail-agent --config-dir /etc/logtail/conf.d        # watched: changes apply by themselves
//! logtail-agent --config-server http://cs:8899 --user-defined-id-file /etc/ilogtail/user_defined_id
//! logtail-agent            # runs an embedded demo config (tails a log it writes itself)
//! ```
//! SIGTERM/SIGINT stop it (reading stops, sinks deliver, checkpoints are
//! written); SIGHUP reloads the config files. Each config is applied on its
//! own: a change stops that pipeline (delivering what it read) and starts
//! the new version from the same checkpoints; a version that fails keeps
//! the previous one running. A bad file in `--config-dir` is reported once
//! (until it changes) and skipped; the others run. Exit codes: 0 after a
//! clean stop, 2 for a bad `--config` file, a `--config-dir` without one
//! valid config, or a bad command line at start, 1 for other failures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use logtail_sdk::agent::{self, Agent, AgentOptions, Control};
use logtail_sdk::config::{ConfigError, PipelineConfig};
use logtail_sdk::host::IdentitySources;
use logtail_sdk::resources::{LimitFlags, Limits, Monitor, ReadGate, RestartRule};
use logtail_sdk::sinks::sls::CredentialSource;

#[derive(clap::Parser, Debug)]
#[command(
    name = "logtail-agent",
    version,
    about = "Collects logs from files as LoongCollector pipeline configs describe"
)]
struct Args {
    /// A LoongCollector pipeline config (YAML or JSON); repeatable. Without
    /// any, an embedded demo config runs.
    #[arg(long = "config", value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Where checkpoints (and the demo log) live.
    #[arg(long, value_name = "DIR", default_value = "logtail-data")]
    data_dir: PathBuf,
    /// SLS credentials file (YAML/JSON with AccessKeyId, AccessKeySecret and
    /// optionally SecurityToken) for flusher_sls; without it, the
    /// ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN
    /// variables are used.
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// A directory of pipeline configs (`*.yaml`, `*.yml`, `*.json`), checked
    /// every second: added, changed and removed files are applied.
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// A ConfigServer (v2 protocol) to heartbeat to and take configs from;
    /// repeatable (fail-over in order).
    #[arg(long = "config-server", value_name = "URL")]
    config_servers: Vec<String>,
    /// User-defined identities, one per line (machine groups of type userdefined).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/ilogtail/user_defined_id"
    )]
    user_defined_id_file: PathBuf,
    /// Directory whose file names are the accounts (AliUid) allowed to collect from this host.
    #[arg(long, value_name = "DIR", default_value = "/etc/ilogtail/users")]
    users_dir: PathBuf,
    /// A heartbeat tag NAME=VALUE; repeatable.
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = logtail_sdk::fleet::client::parse_tag)]
    tags: Vec<(String, String)>,
    /// Seconds between heartbeats.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    heartbeat_secs: f64,
    /// Seconds between re-reads of the identity files.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    identity_refresh_secs: f64,
    /// Log filter for the agent's own log on stderr (or set RUST_LOG).
    /// CPU limit in cores (default 2.0, or `cpu_usage_limit` /
    /// `LOONG_CPU_USAGE_LIMIT`): reading slows down above it, and 10
    /// consecutive 30 s checks above it restart the agent (exit code 3).
    #[arg(long, value_name = "CORES")]
    cpu_limit: Option<f64>,
    /// Memory (RSS) limit in MB (default 2048, or `mem_usage_limit` /
    /// `LOONG_MEM_USAGE_LIMIT`): 10 consecutive checks above it, or once
    /// above 5 times it, restart the agent (exit code 3).
    #[arg(long, value_name = "MB")]
    mem_limit: Option<u64>,
    /// Seconds between limit checks (30) and how many in a row restart (10).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    limit_check_secs: f64,
    #[arg(long, value_name = "N", default_value_t = 10)]
    limit_checks: u32,
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    agent::raise_fd_limit();

    let mut flags = LimitFlags::default();
    flags.cpu_cores = args.cpu_limit;
    flags.mem_mb = args.mem_limit;
    let limits = match Limits::resolve(flags, &|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let mut options = AgentOptions::new(args.data_dir.clone());
    let read_gate = ReadGate::default();
    options.read_gate = read_gate.clone();
    options.configs = args.configs.clone();
    options.config_dir = args.config_dir.clone();
    options.config_servers = args.config_servers.clone();
    options.tags = args.tags.clone();
    options.heartbeat_interval = Duration::from_secs_f64(args.heartbeat_secs.max(0.05));
    options.identity_refresh = Duration::from_secs_f64(args.identity_refresh_secs.max(0.05));
    options.identity = IdentitySources {
        user_defined_id_file: args.user_defined_id_file.clone(),
        users_dir: args.users_dir.clone(),
        ..IdentitySources::default()
    };
    if let Some(f) = &args.credentials_file {
        options.credentials = CredentialSource::File(f.clone());
    }

    // Nothing to run: the embedded demo, on a log it writes itself.
    let demo =
        args.configs.is_empty() && args.config_dir.is_none() && args.config_servers.is_empty();
    let (stop_demo, demo_stopped) = crossbeam_channel::bounded::<()>(0);
    let mut demo_writer = None;
    if demo {
        let demo_cfg = agent::prepare_data_dir(&args.data_dir).and_then(|dir| {
            demo_config(&dir)
                .map_err(|e| e.to_string())
                .map(|c| (dir, c))
        });
        match demo_cfg {
            Ok((dir, cfg)) => {
                options.builtin.push(cfg);
                demo_writer = Some(start_demo_writer(&dir, demo_stopped));
            }
            Err(e) => {
                eprintln!("logtail-agent: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logtail-agent: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let (control_tx, control) = crossbeam_channel::unbounded();
    let control_tx_for_monitor = control_tx.clone();
    let signal_handle = signals.handle();
    let signal_thread = std::thread::spawn(move || {
        let mut signals = signals;
        for s in signals.forever() {
            let c = if s == SIGHUP {
                tracing::info!("SIGHUP: reloading configs");
                Control::Reload
            } else {
                tracing::info!(signal = s, "stopping");
                Control::Stop
            };
            if control_tx.send(c).is_err() {
                break;
            }
        }
    });

    let mut running = match Agent::start(options) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(pipelines = running.pipelines().len(), data_dir = %running.data_dir().display(), cpu_limit = limits.cpu_cores, mem_limit_mb = limits.mem_mb, "logtail-agent started");
    // Over a limit for too long: stop as on SIGTERM (deliver, checkpoint),
    // then exit with RESTART_EXIT for whoever restarts the agent.
    let (restart_tx, restart_rx) = crossbeam_channel::bounded(1);
    let rule = RestartRule::new(
        args.limit_checks,
        Duration::from_secs_f64(args.limit_check_secs.max(0.25)),
    );
    let monitor = match Monitor::start(limits, read_gate, rule, restart_tx) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("cannot start the resource monitor: {e}; running without limits");
            None
        }
    };
    let restart_control = control_tx_for_monitor;
    let restart_watch = std::thread::spawn(move || {
        let cause = restart_rx.recv().ok();
        if cause.is_some() {
            let _ = restart_control.send(Control::Stop);
        }
        cause
    });
    running.run(&control);

    drop(stop_demo);
    running.stop();
    drop(monitor);
    let restart = restart_watch.join().ok().flatten();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(t) = demo_writer {
        let _ = t.join();
    }
    if let Some(cause) = restart {
        tracing::warn!("stopped for a restart: {cause}");
        return ExitCode::from(RESTART_EXIT);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The exit code of a stop made for a restart (a limit exceeded too long).
const RESTART_EXIT: u8 = 3;

/// The embedded default: tail the demo log this agent writes itself and
/// print the events on stdout.
fn demo_config(data_dir: &Path) -> Result<PipelineConfig, ConfigError> {
    let dir = data_dir.join("demo");
    let text = format!(
        "enable: true\ninputs:\n  - Type: input_file\n    FilePaths:\n      - {}/*.log\n    TailSizeKB: 1\nflushers:\n  - Type: flusher_stdout\n    Tags: true\n",
        dir.display()
    );
    PipelineConfig::parse("demo", "<embedded demo config>", &text, false)
}

/// Appends a line to `DATA_DIR/demo/demo.log` once a second until `stop`
/// disconnects.
fn start_demo_writer(data_dir: &Path, stop: Receiver<()>) -> std::thread::JoinHandle<()> {
    let dir = data_dir.join("demo");
    let path = dir.join("demo.log");
    eprintln!(
        "logtail-agent: no --config given; running the embedded demo: writing {} once a second and printing what is collected (Ctrl-C stops)",
        path.display()
    );
    std::thread::spawn(move || {
        let _ = std::fs::create_dir_all(&dir);
        let mut seq = 0u64;
        loop {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(f, "{now} INFO demo seq={seq} hello from logtail-rs");
                seq += 1;
            }
            if stop.recv_timeout(Duration::from_secs(1)) != Err(RecvTimeoutError::Timeout) {
                return;
            }
        }
    })
}

/// Sends the program's own log to stderr, filtered by `RUST_LOG` or else
/// `level` (`info`, `debug`…); colours only on a terminal.
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
