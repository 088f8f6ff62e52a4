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
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    agent::raise_fd_limit();

    let mut options = AgentOptions::new(args.data_dir.clone());
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
    tracing::info!(pipelines = running.pipelines().len(), data_dir = %running.data_dir().display(), "logtail-agent started");
    running.run(&control);

    drop(stop_demo);
    running.stop();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(t) = demo_writer {
        let _ = t.join();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

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
