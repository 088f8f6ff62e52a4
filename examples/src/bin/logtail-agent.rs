//! `logtail-agent`: the thin agent around logtail-sdk.
//!
//! ```text
//! logtail-agent --config app.yaml [--config more.yaml …] --data-dir /var/lib/logtail
//! logtail-agent            # runs an embedded demo config (tails a log it writes itself)
//! ```
//! SIGTERM/SIGINT stop it (reading stops, sinks deliver, checkpoints are
//! written); SIGHUP reloads the configs. Exit codes: 0 after a clean stop,
//! 2 for a bad config or command line, 1 for other failures.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use logtail_sdk::config::{ConfigError, PipelineConfig};
use logtail_sdk::pipeline::{BuildContext, Pipeline, RunningPipeline};
use logtail_sdk::sinks::sls::CredentialSource;

/// Time a stop may take: the issue asks for exit within 5 s.
const STOP_TIMEOUT: Duration = Duration::from_millis(3500);

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
    /// Log filter for the agent's own log on stderr (or set RUST_LOG).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!(
            "logtail-agent: cannot create --data-dir {}: {e}",
            args.data_dir.display()
        );
        return ExitCode::from(2);
    }
    let data_dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
    raise_fd_limit();

    let stop_demo = Arc::new(AtomicBool::new(false));
    let demo = args.configs.is_empty();
    let load = || -> Result<Vec<PipelineConfig>, ConfigError> {
        if demo {
            demo_config(&data_dir).map(|c| vec![c])
        } else {
            load_configs(&args.configs)
        }
    };
    // The configs that run now: a reload that cannot start falls back to them.
    let mut configs = match load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let demo_writer = demo.then(|| start_demo_writer(&data_dir, Arc::clone(&stop_demo)));

    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logtail-agent: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut ctx = BuildContext::new(&data_dir);
    if let Some(f) = &args.credentials_file {
        ctx.credentials = CredentialSource::File(f.clone());
    }
    let mut running = match start_all(&configs, &ctx) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(pipelines = running.len(), data_dir = %data_dir.display(), "logtail-agent started");

    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                tracing::info!("SIGHUP: reloading configs");
                match load() {
                    Err(e) => tracing::error!("reload failed, keeping the running configs: {e}"),
                    Ok(new) => {
                        // Stopping first persists every acknowledged position; the
                        // new pipelines resume from them: nothing lost or doubled.
                        stop_all(std::mem::take(&mut running));
                        match start_all(&new, &ctx) {
                            Ok(r) => {
                                running = r;
                                configs = new;
                            }
                            Err(e) => {
                                tracing::error!(
                                    "reload failed: {e}; restarting the previous configs"
                                );
                                running = start_all(&configs, &ctx).unwrap_or_default();
                            }
                        }
                    }
                }
            }
            _ => {
                tracing::info!(signal = sig, "stopping");
                break;
            }
        }
    }
    stop_demo.store(true, Ordering::SeqCst);
    stop_all(running);
    if let Some(t) = demo_writer {
        let _ = t.join();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn load_configs(paths: &[PathBuf]) -> Result<Vec<PipelineConfig>, ConfigError> {
    let mut out: Vec<PipelineConfig> = Vec::new();
    for p in paths {
        let c = PipelineConfig::load(p)?;
        if let Some(other) = out.iter().find(|o| o.name == c.name) {
            return Err(ConfigError {
                origin: c.origin.clone(),
                key: String::new(),
                message: format!(
                    "pipeline name {:?} (from the file name) is also used by {}; names must be unique",
                    c.name, other.origin
                ),
            });
        }
        out.push(c);
    }
    Ok(out)
}

fn start_all(
    configs: &[PipelineConfig],
    ctx: &BuildContext,
) -> Result<Vec<RunningPipeline>, String> {
    let mut running = Vec::new();
    for c in configs {
        for w in &c.warnings {
            tracing::warn!("{}: {w}", c.origin);
        }
        if !c.enable {
            tracing::info!(pipeline = %c.name, "disabled (enable: false)");
            continue;
        }
        let started = Pipeline::build(c, ctx).and_then(Pipeline::start);
        match started {
            Ok(r) => running.push(r),
            Err(e) => {
                stop_all(running);
                // Name the config file: with several, "pipeline x" alone is vague.
                return Err(format!("{}: {e}", c.origin));
            }
        }
    }
    Ok(running)
}

fn stop_all(running: Vec<RunningPipeline>) {
    // Stop them in parallel so the whole stop fits in one timeout.
    let handles: Vec<_> = running
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let name = p.name().to_string();
                let report = p.stop(STOP_TIMEOUT);
                tracing::info!(pipeline = %name, in_flight = report.in_flight, "pipeline stopped");
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn raise_fd_limit() {
    // Thousands of matched files each hold a descriptor.
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
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

fn start_demo_writer(data_dir: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let dir = data_dir.join("demo");
    let path = dir.join("demo.log");
    eprintln!(
        "logtail-agent: no --config given; running the embedded demo: writing {} once a second and printing what is collected (Ctrl-C stops)",
        path.display()
    );
    std::thread::spawn(move || {
        let _ = std::fs::create_dir_all(&dir);
        let mut seq = 0u64;
        while !stop.load(Ordering::SeqCst) {
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
            for _ in 0..10 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}
