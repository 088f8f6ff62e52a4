//! `logtail-agent`: the thin agent around logtail-sdk.
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
//! the previous one running. Exit codes: 0 after a clean stop, 2 for a bad
//! config or command line at start, 1 for other failures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use logtail_sdk::config::{ConfigError, PipelineConfig};
use std::collections::{BTreeMap, BTreeSet};

use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use logtail_sdk::fleet::identity::IdentitySources;
use logtail_sdk::manager::PipelineManager;
use logtail_sdk::pipeline::BuildContext;
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
    logtail_examples::init_logging(&args.log_level);

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
    let demo =
        args.configs.is_empty() && args.config_dir.is_none() && args.config_servers.is_empty();
    let identity_sources = IdentitySources {
        user_defined_id_file: args.user_defined_id_file.clone(),
        users_dir: args.users_dir.clone(),
        ..IdentitySources::default()
    };
    let mut ctx = BuildContext::new(&data_dir);
    ctx.identity_sources = identity_sources.clone();
    if let Some(f) = &args.credentials_file {
        ctx.credentials = CredentialSource::File(f.clone());
    }
    let mut local = LocalConfigs::new(args.configs.clone(), args.config_dir.clone());
    let first = if demo {
        demo_config(&data_dir).map(|c| vec![(c, 0)])
    } else {
        local.load()
    };
    let first = match first {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let demo_writer = demo.then(|| start_demo_writer(&data_dir, Arc::clone(&stop_demo)));

    let signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logtail-agent: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let (sig_tx, sig_rx) = crossbeam_channel::unbounded();
    let signal_handle = signals.handle();
    let signal_thread = std::thread::spawn(move || {
        let mut signals = signals;
        for s in signals.forever() {
            if sig_tx.send(s).is_err() {
                break;
            }
        }
    });

    let mut manager = PipelineManager::new(ctx, STOP_TIMEOUT);
    for (c, hash) in first {
        let name = c.name.clone();
        if let Err(e) = manager.apply(c) {
            eprintln!("logtail-agent: {e}");
            manager.stop_all();
            return ExitCode::from(2);
        }
        local.applied.insert(name, hash);
    }

    // Fleet management: configs from a ConfigServer, applied one by one.
    let (fleet, changes) = if args.config_servers.is_empty() {
        (None, crossbeam_channel::never())
    } else {
        let mut o = FleetOptions::new(args.config_servers.clone(), data_dir.clone());
        o.identity = identity_sources;
        o.tags = args.tags.clone();
        o.heartbeat_interval = Duration::from_secs_f64(args.heartbeat_secs.max(0.05));
        o.identity_refresh = Duration::from_secs_f64(args.identity_refresh_secs.max(0.05));
        match Fleet::start(o) {
            Ok((f, rx)) => (Some(f), rx),
            Err(e) => {
                eprintln!("logtail-agent: --config-server: {e}");
                manager.stop_all();
                return ExitCode::from(2);
            }
        }
    };
    tracing::info!(pipelines = manager.names().len(), data_dir = %data_dir.display(), "logtail-agent started");

    let ticker = crossbeam_channel::tick(Duration::from_secs(1));
    loop {
        crossbeam_channel::select! {
            recv(sig_rx) -> sig => match sig {
                Ok(SIGHUP) => {
                    tracing::info!("SIGHUP: reloading configs");
                    local.reload(&mut manager);
                }
                _ => {
                    tracing::info!(signal = ?sig.ok(), "stopping");
                    break;
                }
            },
            recv(changes) -> change => {
                if let (Ok(change), Some(fleet)) = (change, fleet.as_ref()) {
                    apply_remote(change, fleet, &mut manager, &local);
                }
            },
            recv(ticker) -> _ => {
                if args.config_dir.is_some() {
                    local.reload(&mut manager);
                }
            },
        }
    }
    stop_demo.store(true, Ordering::SeqCst);
    if let Some(f) = fleet {
        f.stop();
    }
    manager.stop_all();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(t) = demo_writer {
        let _ = t.join();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Applies one change from the config server and reports the outcome.
fn apply_remote(
    change: ConfigChange,
    fleet: &Fleet,
    manager: &mut PipelineManager,
    local: &LocalConfigs,
) {
    match change {
        ConfigChange::Upsert {
            name,
            version,
            detail,
        } => {
            fleet.report(&name, version, ConfigState::Applying);
            let origin = format!("config server: {name} v{version}");
            let result = if local.applied.contains_key(&name) {
                Err(format!("{origin}: a local config file has the same name"))
            } else {
                String::from_utf8(detail)
                    .map_err(|_| format!("{origin}: the config is not UTF-8"))
                    .and_then(|text| {
                        PipelineConfig::parse(&name, &origin, &text, false)
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|cfg| manager.apply(cfg))
            };
            match result {
                Ok(()) => fleet.report(&name, version, ConfigState::Applied),
                Err(e) => {
                    tracing::error!("{e}; the previous version (if any) keeps running");
                    fleet.report(&name, version, ConfigState::Failed(e));
                }
            }
        }
        ConfigChange::Remove { name } => {
            if !local.applied.contains_key(&name) {
                manager.remove(&name);
            }
        }
    }
}

/// Config files given with `--config` and found in `--config-dir`, and the
/// content hash of each applied one (so only changes are applied).
struct LocalConfigs {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    applied: BTreeMap<String, u64>,
    last_error: Option<String>,
}

impl LocalConfigs {
    fn new(files: Vec<PathBuf>, dir: Option<PathBuf>) -> Self {
        LocalConfigs {
            files,
            dir,
            applied: BTreeMap::new(),
            last_error: None,
        }
    }

    fn paths(&self) -> Vec<PathBuf> {
        let mut out = self.files.clone();
        if let Some(dir) = &self.dir {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && matches!(
                                    p.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml" | "json")
                                )
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            out.extend(found);
        }
        out
    }

    /// Every config with the hash of its text; names must be unique.
    fn load(&self) -> Result<Vec<(PipelineConfig, u64)>, ConfigError> {
        let mut out: Vec<(PipelineConfig, u64)> = Vec::new();
        for p in self.paths() {
            let (c, text) = PipelineConfig::load_with_text(&p)?;
            let hash = fnv(text.as_bytes());
            if let Some((other, _)) = out.iter().find(|(o, _)| o.name == c.name) {
                return Err(ConfigError {
                    origin: c.origin.clone(),
                    key: String::new(),
                    message: format!(
                        "pipeline name {:?} (from the file name) is also used by {}; names must be unique",
                        c.name, other.origin
                    ),
                });
            }
            out.push((c, hash));
        }
        Ok(out)
    }

    /// Applies what changed since the last load: new and changed configs,
    /// and removed files. A config that does not load leaves everything as
    /// it runs.
    fn reload(&mut self, manager: &mut PipelineManager) {
        let loaded = match self.load() {
            Ok(l) => {
                self.last_error = None;
                l
            }
            Err(e) => {
                let msg = e.to_string();
                if self.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("reload failed, keeping the running configs: {msg}");
                    self.last_error = Some(msg);
                }
                return;
            }
        };
        let names: BTreeSet<String> = loaded.iter().map(|(c, _)| c.name.clone()).collect();
        let gone: Vec<String> = self
            .applied
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(pipeline = %name, "config removed");
            manager.remove(&name);
            self.applied.remove(&name);
        }
        for (cfg, hash) in loaded {
            if self.applied.get(&cfg.name) == Some(&hash) {
                continue;
            }
            let name = cfg.name.clone();
            match manager.apply(cfg) {
                Ok(()) => {
                    self.applied.insert(name, hash);
                }
                Err(e) => tracing::error!("{e}; the previous version (if any) keeps running"),
            }
        }
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
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
