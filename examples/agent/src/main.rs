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
//! the previous one running. A bad file in `--config-dir` is reported once
//! (until it changes) and skipped; the others run. Exit codes: 0 after a
//! clean stop, 2 for a bad `--config` file, a `--config-dir` without one
//! valid config, or a bad command line at start, 1 for other failures.

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
use std::collections::BTreeMap;

use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use logtail_sdk::host::IdentitySources;
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
    init_logging(&args.log_level);

    if let Some(dir) = &args.config_dir {
        if let Err(e) = check_config_dir(dir) {
            eprintln!("logtail-agent: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = make_data_dir(&args.data_dir) {
        eprintln!("logtail-agent: {e}");
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
    let demo_cfg = match demo.then(|| demo_config(&data_dir)).transpose() {
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
    let started = match demo_cfg {
        Some(c) => manager.apply(c).map_err(|e| e.to_string()),
        None => local.start(&mut manager, !args.config_servers.is_empty()),
    };
    if let Err(e) = started {
        eprintln!("logtail-agent: {e}");
        manager.stop_all();
        return ExitCode::from(2);
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
                    local.reload(&mut manager, true);
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
                    local.reload(&mut manager, false);
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
            let result = if local.has(&name) {
                Err(format!("{origin}: a local config file has the same name"))
            } else {
                String::from_utf8(detail)
                    .map_err(|_| format!("{origin}: the config is not UTF-8"))
                    .and_then(|text| {
                        PipelineConfig::parse(&name, &origin, &text, false)
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|cfg| manager.apply(cfg).map_err(|e| e.to_string()))
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
            if !local.has(&name) {
                manager.remove(&name);
            }
        }
    }
}

/// `--config-dir` must be a readable directory.
fn check_config_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("--config-dir {shown}: no such directory"))
        }
        Err(e) => Err(format!("--config-dir {shown}: cannot read: {e}")),
        Ok(m) if !m.is_dir() => Err(format!("--config-dir {shown}: not a directory")),
        Ok(_) => std::fs::read_dir(dir)
            .map(drop)
            .map_err(|e| format!("--config-dir {shown}: cannot read: {e}")),
    }
}

/// Creates `--data-dir` (and its parents) unless it exists as a directory.
fn make_data_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            return Err(format!("--data-dir {shown}: is a file, not a directory"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("--data-dir {shown}: cannot create: {e}"))
}

/// Config files given with `--config` and found in `--config-dir`. Each
/// file is applied on its own: one that does not load or start is
/// reported once (until it changes, or SIGHUP asks again) and the others
/// go on; the running version of its config, if any, keeps running.
struct LocalConfigs {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    /// The applied configs by name: the file and the hash of its text.
    applied: BTreeMap<String, (PathBuf, u64)>,
    /// Files whose current text failed, with the hash of that text (or of
    /// the read error): already reported.
    failed: BTreeMap<PathBuf, u64>,
    /// The last error reading `--config-dir` (reported once).
    dir_error: Option<String>,
}

/// One config file as found now.
struct Found {
    path: PathBuf,
    /// The pipeline name (the file name without its extension).
    name: String,
    /// Given with `--config` (a failure at start is fatal).
    explicit: bool,
    /// The file's text, or why it could not be read.
    text: Result<String, ConfigError>,
    /// Hash of the text (or of the read error).
    hash: u64,
}

impl LocalConfigs {
    fn new(files: Vec<PathBuf>, dir: Option<PathBuf>) -> Self {
        LocalConfigs {
            files,
            dir,
            applied: BTreeMap::new(),
            failed: BTreeMap::new(),
            dir_error: None,
        }
    }

    /// Whether a config of this name runs from a local file.
    fn has(&self, name: &str) -> bool {
        self.applied.contains_key(name)
    }

    /// The config files now: the `--config` ones, then the directory's
    /// `*.yaml`, `*.yml` and `*.json` in name order. `Err` when the
    /// directory cannot be read.
    fn find(&self) -> Result<Vec<Found>, String> {
        let mut paths: Vec<(PathBuf, bool)> =
            self.files.iter().map(|p| (p.clone(), true)).collect();
        if let Some(dir) = &self.dir {
            let rd = std::fs::read_dir(dir)
                .map_err(|e| format!("--config-dir {}: cannot read: {e}", dir.display()))?;
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            found.sort();
            paths.extend(found.into_iter().map(|p| (p, false)));
        }
        Ok(paths
            .into_iter()
            .map(|(path, explicit)| {
                let name = PipelineConfig::name_of(&path);
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    origin: path.display().to_string(),
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                });
                let hash = match &text {
                    Ok(t) => fnv(t.as_bytes()),
                    Err(e) => fnv(e.message.as_bytes()),
                };
                Found {
                    path,
                    name,
                    explicit,
                    text,
                    hash,
                }
            })
            .collect())
    }

    /// Which file each name comes from: the one running it if it is still
    /// there, else the first. The others are reported as duplicates.
    fn owners(&self, found: &[Found]) -> BTreeMap<String, PathBuf> {
        let mut owners = BTreeMap::new();
        for f in found {
            let running = self
                .applied
                .get(&f.name)
                .filter(|(p, _)| found.iter().any(|g| &g.path == p))
                .map(|(p, _)| p.clone());
            owners
                .entry(f.name.clone())
                .or_insert_with(|| running.unwrap_or_else(|| f.path.clone()));
        }
        owners
    }

    /// Loads and applies one file. `Err` says what is wrong with it.
    fn apply_one(
        &mut self,
        f: &Found,
        owners: &BTreeMap<String, PathBuf>,
        manager: &mut PipelineManager,
    ) -> Result<(), String> {
        let owner = owners.get(&f.name).filter(|p| **p != f.path);
        if let Some(other) = owner {
            return Err(ConfigError {
                origin: f.path.display().to_string(),
                key: String::new(),
                message: format!(
                    "pipeline name {:?} (from the file name) is also used by {}; names must be unique",
                    f.name,
                    other.display()
                ),
            }
            .to_string());
        }
        let text = f.text.as_ref().map_err(ToString::to_string)?;
        let cfg = PipelineConfig::parse_file(&f.path, text).map_err(|e| e.to_string())?;
        manager.apply(cfg).map_err(|e| e.to_string())?;
        self.applied
            .insert(f.name.clone(), (f.path.clone(), f.hash));
        self.failed.remove(&f.path);
        Ok(())
    }

    /// The start: every file applied. A bad `--config` file is an error
    /// (exit 2); a bad file in the directory is reported and skipped,
    /// unless no file there is valid and nothing else (another config, a
    /// config server) is left to run.
    fn start(&mut self, manager: &mut PipelineManager, remote: bool) -> Result<(), String> {
        let found = self.find()?;
        let owners = self.owners(&found);
        let mut bad = 0;
        for f in &found {
            if let Err(e) = self.apply_one(f, &owners, manager) {
                if f.explicit {
                    return Err(e);
                }
                tracing::error!("{e}; this file is skipped, the other configs run");
                self.failed.insert(f.path.clone(), f.hash);
                bad += 1;
            }
        }
        if let Some(dir) = &self.dir {
            if self.applied.is_empty() && !remote {
                if bad > 0 {
                    return Err(format!(
                        "--config-dir {}: none of its {bad} config {} is valid (see above); nothing to run",
                        dir.display(),
                        if bad == 1 { "file" } else { "files" }
                    ));
                }
                tracing::warn!(
                    "--config-dir {}: no config files (*.yaml, *.yml, *.json) yet; checking it every second",
                    dir.display()
                );
            }
        }
        Ok(())
    }

    /// Applies what changed since the last look: new and changed files, and
    /// removed ones. A file that fails is reported once per version (every
    /// time with `retry`, as on SIGHUP) and leaves its running config, if
    /// any, as it runs; the other files are applied all the same.
    fn reload(&mut self, manager: &mut PipelineManager, retry: bool) {
        let found = match self.find() {
            Ok(f) => {
                self.dir_error = None;
                f
            }
            Err(e) => {
                if self.dir_error.as_deref() != Some(e.as_str()) || retry {
                    tracing::error!("reload failed: {e}; the running configs keep going");
                    self.dir_error = Some(e);
                }
                return;
            }
        };
        let owners = self.owners(&found);
        let gone: Vec<String> = self
            .applied
            .iter()
            .filter(|(name, (path, _))| owners.get(*name) != Some(path))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            tracing::info!(pipeline = %name, "config removed");
            manager.remove(&name);
            self.applied.remove(&name);
        }
        self.failed
            .retain(|path, _| found.iter().any(|f| &f.path == path));
        for f in &found {
            let unchanged = self
                .applied
                .get(&f.name)
                .is_some_and(|(p, h)| *p == f.path && *h == f.hash);
            let reported = !retry && self.failed.get(&f.path) == Some(&f.hash);
            if unchanged || reported {
                continue;
            }
            if let Err(e) = self.apply_one(f, &owners, manager) {
                tracing::error!(
                    "reload failed: {e}; the previous version (if any) keeps running (said again when the file changes, or on SIGHUP)"
                );
                self.failed.insert(f.path.clone(), f.hash);
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
