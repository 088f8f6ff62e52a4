//! The agent: pipelines from config files, a watched config directory and
//! a config server, kept in step with them until told to stop.
//!
//! `logtail-agent` is argument parsing and signals around [`Agent`]; a
//! program that embeds the SDK and wants the same behaviour uses it the
//! same way:
//!
//! ```no_run
//! use logtail_sdk::agent::{Agent, AgentOptions, Control};
//! let mut options = AgentOptions::new("/var/lib/logtail".into());
//! options.config_dir = Some("/etc/logtail/conf.d".into());
//! let mut agent = Agent::start(options).unwrap();
//! let (control, controls) = crossbeam_channel::unbounded();
//! // … another thread sends Control::Reload (as on SIGHUP) or Control::Stop.
//! # control.send(Control::Stop).unwrap();
//! agent.run(&controls);
//! agent.stop();
//! ```
//!
//! The rules, all applied one config at a time through a
//! [`PipelineManager`] (a change stops that pipeline after it delivered
//! what it read, and starts the new version from the same checkpoints):
//!
//! - **Local files** ([`LocalConfigs`]): each `--config` file and each
//!   `*.yaml`, `*.yml` and `*.json` of the config directory is one
//!   pipeline, named after the file (without its extension). A file that
//!   does not load or start is reported once, as `FILE: KEY: what is
//!   wrong`, and skipped; it is reported again when its text changes or a
//!   reload is asked for ([`Control::Reload`]). While it is bad, the
//!   version of its config that ran before (if any) keeps running. At
//!   start a bad `--config` file is fatal, as is a config directory none
//!   of whose files is valid when nothing else (another file, a config
//!   server) gives something to run.
//! - **Unique names**: when two files give the same name, the one already
//!   running it keeps it (else the first: `--config` files, then the
//!   directory in name order); the other is reported.
//! - **Only what changed** is applied again: a file whose text is the same
//!   as when it was applied is left running; a removed file's config stops.
//! - **Local before remote** ([`apply_remote`]): a config from the config
//!   server whose name a local file already runs is reported FAILED, and
//!   the server's removal of such a name leaves the local config running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::config::{ConfigError, PipelineConfig};
use crate::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use crate::host::IdentitySources;
use crate::manager::PipelineManager;
use crate::pipeline::BuildContext;
use crate::sinks::sls::CredentialSource;

/// How long one pipeline's stop may take: the agent exits within 5 s of a
/// SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_millis(3500);

/// What the reconciliation changes: the running pipelines by name.
/// [`PipelineManager`] is the real one.
pub trait Pipelines {
    /// Runs `cfg` (a new config, or a new version of a running one). On an
    /// error the previous version keeps running; the error says why, as
    /// `ORIGIN: what is wrong`.
    fn apply(&mut self, cfg: PipelineConfig) -> Result<(), String>;
    /// Stops and forgets the pipeline `name` (nothing if none runs).
    fn remove(&mut self, name: &str);
}

impl Pipelines for PipelineManager {
    fn apply(&mut self, cfg: PipelineConfig) -> Result<(), String> {
        PipelineManager::apply(self, cfg).map_err(|e| e.to_string())
    }

    fn remove(&mut self, name: &str) {
        PipelineManager::remove(self, name);
    }
}

/// Config files given one by one (`--config`) and found in a config
/// directory (`--config-dir`). Each file is applied on its own: one that
/// does not load or start is reported once (until it changes, or a reload
/// with `retry` asks again) and the others go on; the running version of
/// its config, if any, keeps running.
#[derive(Debug)]
pub struct LocalConfigs {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    /// The applied configs by name: the file and the hash of its text.
    applied: BTreeMap<String, (PathBuf, u64)>,
    /// Files whose current text failed, with the hash of that text (or of
    /// the read error): already reported.
    failed: BTreeMap<PathBuf, u64>,
    /// The last error reading the directory (reported once).
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
    /// The files `files` (in this order) and the `*.yaml`, `*.yml` and
    /// `*.json` files of `dir`. Nothing is read until [`LocalConfigs::start`].
    pub fn new(files: Vec<PathBuf>, dir: Option<PathBuf>) -> Self {
        LocalConfigs {
            files,
            dir,
            applied: BTreeMap::new(),
            failed: BTreeMap::new(),
            dir_error: None,
        }
    }

    /// Whether a config of this name runs from a local file.
    pub fn has(&self, name: &str) -> bool {
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
                    Ok(t) => logtail_core::hash::fnv1a64(t.as_bytes()),
                    Err(e) => logtail_core::hash::fnv1a64(e.message.as_bytes()),
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
        pipelines: &mut impl Pipelines,
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
        pipelines.apply(cfg)?;
        self.applied
            .insert(f.name.clone(), (f.path.clone(), f.hash));
        self.failed.remove(&f.path);
        Ok(())
    }

    /// The start: every file applied. A bad `--config` file is an error
    /// (the agent exits with code 2); a bad file in the directory is
    /// reported and skipped, unless no file there is valid and nothing else
    /// is left to run (`remote`: a config server gives configs).
    ///
    /// # Errors
    ///
    /// What is wrong with the first bad `--config` file, the directory
    /// that cannot be read, or the directory without a valid file.
    pub fn start(&mut self, pipelines: &mut impl Pipelines, remote: bool) -> Result<(), String> {
        let found = self.find()?;
        let owners = self.owners(&found);
        let mut bad = 0;
        for f in &found {
            if let Err(e) = self.apply_one(f, &owners, pipelines) {
                if f.explicit {
                    return Err(e);
                }
                tracing::error!("{e}; this file is skipped, the other configs run");
                crate::status::raise_config_alarm(&f.name, &e);
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
    pub fn reload(&mut self, pipelines: &mut impl Pipelines, retry: bool) {
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
            pipelines.remove(&name);
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
            if let Err(e) = self.apply_one(f, &owners, pipelines) {
                tracing::error!(
                    "reload failed: {e}; the previous version (if any) keeps running (said again when the file changes, or on SIGHUP)"
                );
                crate::status::raise_config_alarm(&f.name, &e);
                self.failed.insert(f.path.clone(), f.hash);
            }
        }
    }
}

/// Applies one change from the config server and reports the outcome
/// through `report` (as [`Fleet::report`] takes it): `Applying` first,
/// then `Applied` or `Failed` with the reason. A config whose name a local
/// file runs ([`LocalConfigs::has`]) is not applied (FAILED), and is not
/// removed when the server removes it.
pub fn apply_remote(
    change: ConfigChange,
    pipelines: &mut impl Pipelines,
    local: &LocalConfigs,
    mut report: impl FnMut(&str, i64, ConfigState),
) {
    match change {
        ConfigChange::Upsert {
            name,
            version,
            detail,
        } => {
            report(&name, version, ConfigState::Applying);
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
                    .and_then(|cfg| pipelines.apply(cfg))
            };
            match result {
                Ok(()) => report(&name, version, ConfigState::Applied),
                Err(e) => {
                    tracing::error!("{e}; the previous version (if any) keeps running");
                    crate::status::raise_config_alarm(&name, &e);
                    report(&name, version, ConfigState::Failed(e));
                }
            }
        }
        ConfigChange::Remove { name } => {
            if !local.has(&name) {
                pipelines.remove(&name);
            }
        }
    }
}

/// `--config-dir` must be a readable directory.
///
/// # Errors
///
/// `--config-dir DIR: no such directory`, `…: not a directory` or
/// `…: cannot read: why`.
pub fn check_config_dir(dir: &Path) -> Result<(), String> {
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

/// Creates `--data-dir` (and its parents) unless it exists as a directory,
/// and returns its canonical path (the path as given if it cannot be
/// resolved).
///
/// # Errors
///
/// `--data-dir DIR: is a file, not a directory` or `…: cannot create: why`.
pub fn prepare_data_dir(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            return Err(format!("--data-dir {shown}: is a file, not a directory"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("--data-dir {shown}: cannot create: {e}"))?;
    Ok(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// Raises this process's soft limit of open files to its hard limit:
/// thousands of matched files each hold a descriptor.
pub fn raise_fd_limit() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// What an [`Agent`] runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Where checkpoints, disk buffers and the configs kept from the config
    /// server live (`--data-dir`); created if missing.
    pub data_dir: PathBuf,
    /// Config files (`--config`); one that is bad at start is fatal.
    pub configs: Vec<PathBuf>,
    /// A directory of config files, checked every `config_dir_interval`
    /// (`--config-dir`).
    pub config_dir: Option<PathBuf>,
    /// How often `config_dir` is checked for changes (1 s).
    pub config_dir_interval: Duration,
    /// Configs given as values (the agent's embedded demo), applied first.
    pub builtin: Vec<PipelineConfig>,
    /// ConfigServer URLs (`--config-server`), in fail-over order; none: no
    /// fleet management.
    pub config_servers: Vec<String>,
    /// Heartbeat tags (`--tag NAME=VALUE`).
    pub tags: Vec<(String, String)>,
    /// Time between heartbeats (10 s).
    pub heartbeat_interval: Duration,
    /// Time between re-reads of the identity sources (60 s).
    pub identity_refresh: Duration,
    /// Where the host's identities and authorised accounts are read.
    pub identity: IdentitySources,
    /// Credentials of `flusher_sls`.
    pub credentials: CredentialSource,
    /// How long one pipeline's stop may take ([`STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
    /// The read throttle every pipeline obeys (set by a
    /// [`Monitor`](crate::resources::Monitor) under a CPU limit).
    pub read_gate: crate::resources::ReadGate,
    /// The byte budget all flushers share (`--max-send-rate`).
    pub send_limit: crate::resources::SendLimit,
    /// Most bytes each pipeline holds read but unacknowledged; `None`
    /// keeps the input's default (64 MiB).
    pub max_in_flight_bytes: Option<u64>,
    /// What each heartbeat reports about the agent (status, CPU, memory,
    /// alarms); none: [`ReportProvider::self_sampled`](crate::fleet::ReportProvider::self_sampled)
    /// (status `ok`, the process's CPU and memory).
    pub report: Option<crate::fleet::ReportProvider>,
}

impl AgentOptions {
    /// Nothing to run yet, state in `data_dir`; the defaults above.
    pub fn new(data_dir: PathBuf) -> AgentOptions {
        AgentOptions {
            data_dir,
            configs: Vec::new(),
            config_dir: None,
            config_dir_interval: Duration::from_secs(1),
            builtin: Vec::new(),
            config_servers: Vec::new(),
            tags: Vec::new(),
            heartbeat_interval: Duration::from_secs(10),
            identity_refresh: Duration::from_secs(60),
            identity: IdentitySources::default(),
            credentials: CredentialSource::Env,
            stop_timeout: STOP_TIMEOUT,
            read_gate: Default::default(),
            send_limit: Default::default(),
            max_in_flight_bytes: None,
            report: None,
        }
    }
}

/// What [`Agent::run`] is told from outside (the agent's signal handler
/// sends these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Read the config files again, and report bad ones again (SIGHUP).
    Reload,
    /// Return from [`Agent::run`] (SIGTERM, SIGINT).
    Stop,
}

/// Running pipelines kept in step with config files, a config directory
/// and a config server (see the [module](self) for the rules).
pub struct Agent {
    manager: PipelineManager,
    local: LocalConfigs,
    fleet: Option<Fleet>,
    changes: Receiver<ConfigChange>,
    data_dir: PathBuf,
    watch_dir: Option<Duration>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("data_dir", &self.data_dir)
            .field("pipelines", &self.manager.names())
            .field("fleet", &self.fleet.is_some())
            .finish()
    }
}

impl Agent {
    /// Checks the directories, starts every config (the builtin ones, then
    /// the files), then the fleet client if config servers are given.
    ///
    /// # Errors
    ///
    /// Why the agent cannot start (it exits with code 2): a config
    /// directory or data directory that cannot be used, a bad `--config`
    /// file, a config directory without a valid file and nothing else to
    /// run, or a fleet client that cannot start. What was started is
    /// stopped first.
    pub fn start(options: AgentOptions) -> Result<Agent, String> {
        if let Some(dir) = &options.config_dir {
            check_config_dir(dir)?;
        }
        let data_dir = prepare_data_dir(&options.data_dir)?;
        let mut ctx = BuildContext::new(&data_dir);
        ctx.identity_sources = options.identity.clone();
        ctx.credentials = options.credentials.clone();
        ctx.read_gate = options.read_gate.clone();
        ctx.send_limit = options.send_limit.clone();
        ctx.max_in_flight_bytes = options.max_in_flight_bytes;
        let mut manager = PipelineManager::new(ctx, options.stop_timeout);
        let mut local = LocalConfigs::new(options.configs.clone(), options.config_dir.clone());
        let remote = !options.config_servers.is_empty();
        let started = options
            .builtin
            .iter()
            .try_for_each(|c| Pipelines::apply(&mut manager, c.clone()))
            .and_then(|()| local.start(&mut manager, remote));
        if let Err(e) = started {
            manager.stop_all();
            return Err(e);
        }
        let (fleet, changes) = if remote {
            let mut o = FleetOptions::new(options.config_servers.clone(), data_dir.clone());
            o.identity = options.identity.clone();
            o.tags = options.tags.clone();
            o.heartbeat_interval = options.heartbeat_interval;
            o.identity_refresh = options.identity_refresh;
            o.report = Some(
                options
                    .report
                    .clone()
                    .unwrap_or_else(crate::fleet::ReportProvider::self_sampled),
            );
            match Fleet::start(o) {
                Ok((f, rx)) => (Some(f), rx),
                Err(e) => {
                    manager.stop_all();
                    return Err(format!("--config-server: {e}"));
                }
            }
        } else {
            (None, crossbeam_channel::never())
        };
        Ok(Agent {
            manager,
            local,
            fleet,
            changes,
            data_dir,
            watch_dir: options
                .config_dir
                .is_some()
                .then_some(options.config_dir_interval),
        })
    }

    /// The data directory, canonical.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Names of the running pipelines.
    pub fn pipelines(&self) -> Vec<String> {
        self.manager.names()
    }

    /// Reads the config files again and applies what changed; bad files
    /// are reported again (SIGHUP).
    pub fn reload(&mut self) {
        self.local.reload(&mut self.manager, true);
    }

    /// Keeps the pipelines in step (config directory changes, config
    /// server changes, [`Control::Reload`]) until [`Control::Stop`] comes
    /// or `control` disconnects. The pipelines keep running: [`Agent::stop`]
    /// stops them.
    pub fn run(&mut self, control: &Receiver<Control>) {
        let ticker = match self.watch_dir {
            Some(every) => crossbeam_channel::tick(every),
            None => crossbeam_channel::never(),
        };
        loop {
            crossbeam_channel::select! {
                recv(control) -> c => match c {
                    Ok(Control::Reload) => self.reload(),
                    Ok(Control::Stop) | Err(_) => return,
                },
                recv(self.changes) -> change => match (change, self.fleet.as_ref()) {
                    (Ok(change), Some(fleet)) => apply_remote(
                        change,
                        &mut self.manager,
                        &self.local,
                        |name, version, state| fleet.report(name, version, state),
                    ),
                    // The client ended: no more changes will come.
                    (Err(_), _) => self.changes = crossbeam_channel::never(),
                    (Ok(_), None) => {}
                },
                recv(ticker) -> _ => self.local.reload(&mut self.manager, false),
            }
        }
    }

    /// Stops the fleet client, then every pipeline (each delivers what it
    /// read and writes its checkpoints).
    pub fn stop(mut self) {
        if let Some(f) = self.fleet.take() {
            f.stop();
        }
        self.manager.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Pipelines that only record what was asked of them.
    #[derive(Default)]
    struct Recorder {
        /// Running configs by name: their origin.
        running: BTreeMap<String, String>,
        /// Every apply asked for, by name, in order (failed ones too).
        applies: Vec<String>,
        removed: Vec<String>,
        /// Names whose apply fails (as a pipeline that cannot start).
        refuse: BTreeSet<String>,
    }

    impl Pipelines for Recorder {
        fn apply(&mut self, cfg: PipelineConfig) -> Result<(), String> {
            self.applies.push(cfg.name.clone());
            if self.refuse.contains(&cfg.name) {
                return Err(format!("{}: cannot start", cfg.origin));
            }
            self.running.insert(cfg.name, cfg.origin);
            Ok(())
        }

        fn remove(&mut self, name: &str) {
            self.removed.push(name.to_string());
            self.running.remove(name);
        }
    }

    impl Recorder {
        fn origin(&self, name: &str) -> Option<&str> {
            self.running.get(name).map(String::as_str)
        }
    }

    fn good(tag: &str) -> String {
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [/var/log/{tag}/*.log]\nflushers:\n  - Type: flusher_stdout\n"
        )
    }

    const BAD: &str = "inputs:\n  - Type: input_file\nflushers:\n  - Type: flusher_stdout\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn shown(p: &Path) -> String {
        p.display().to_string()
    }

    #[test]
    fn every_file_is_one_pipeline_named_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("conf.d");
        std::fs::create_dir(&dir).unwrap();
        let explicit = write(tmp.path(), "main.yaml", &good("main"));
        let a = write(&dir, "a.yaml", &good("a"));
        let b = write(
            &dir,
            "b.json",
            r#"{"inputs":[{"Type":"input_file","FilePaths":["/x/*.log"]}],"flushers":[{"Type":"flusher_stdout"}]}"#,
        );
        write(&dir, "notes.txt", "not a config");
        let mut local = LocalConfigs::new(vec![explicit.clone()], Some(dir));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        assert_eq!(p.applies, ["main", "a", "b"]);
        assert_eq!(p.origin("main"), Some(shown(&explicit).as_str()));
        assert_eq!(p.origin("a"), Some(shown(&a).as_str()));
        assert_eq!(p.origin("b"), Some(shown(&b).as_str()));
        assert!(local.has("a") && !local.has("notes"));
    }

    #[test]
    fn a_bad_explicit_file_is_fatal_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = write(tmp.path(), "bad.yaml", BAD);
        let mut local = LocalConfigs::new(vec![bad.clone()], None);
        let e = local.start(&mut Recorder::default(), false).unwrap_err();
        assert!(e.starts_with(&shown(&bad)), "{e}");
        assert!(e.contains("FilePaths"), "{e}");
        let missing = tmp.path().join("missing.yaml");
        let mut local = LocalConfigs::new(vec![missing], None);
        let e = local.start(&mut Recorder::default(), false).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_directory_needs_one_valid_file_unless_something_else_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // Empty: nothing to run yet, but the directory is watched.
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        local.start(&mut Recorder::default(), false).unwrap();
        write(&dir, "bad.yaml", BAD);
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        let e = local.start(&mut Recorder::default(), false).unwrap_err();
        assert!(e.contains("none of its 1 config file is valid"), "{e}");
        // With a config server, the agent has something to run.
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        local.start(&mut Recorder::default(), true).unwrap();
        // With another file, the bad one is skipped.
        write(&dir, "good.yaml", &good("g"));
        let mut local = LocalConfigs::new(vec![], Some(dir));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        assert_eq!(p.running.keys().collect::<Vec<_>>(), ["good"]);
    }

    #[test]
    fn only_what_changed_is_applied_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        write(&dir, "a.yaml", &good("a"));
        write(&dir, "b.yaml", &good("b"));
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        local.reload(&mut p, false);
        local.reload(&mut p, true);
        assert_eq!(p.applies, ["a", "b"], "unchanged files are left running");
        write(&dir, "b.yaml", &good("b2"));
        write(&dir, "c.yaml", &good("c"));
        local.reload(&mut p, false);
        assert_eq!(p.applies, ["a", "b", "b", "c"]);
        std::fs::remove_file(dir.join("a.yaml")).unwrap();
        local.reload(&mut p, false);
        assert_eq!(p.removed, ["a"]);
        assert!(!local.has("a"));
        assert_eq!(p.running.keys().collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn a_bad_file_is_reported_once_per_version_and_its_running_version_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let a = write(&dir, "a.yaml", &good("a"));
        write(&dir, "b.yaml", &good("b"));
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        // A broken edit: the running version of `a` keeps running.
        write(&dir, "a.yaml", BAD);
        local.reload(&mut p, false);
        assert!(p.removed.is_empty());
        assert_eq!(p.origin("a"), Some(shown(&a).as_str()));
        assert!(local.has("a"));
        assert!(local.failed.contains_key(&a));
        // Fixed: applied.
        write(&dir, "a.yaml", &good("a2"));
        local.reload(&mut p, false);
        assert_eq!(p.applies, ["a", "b", "a"]);
        assert!(local.failed.is_empty());

        // A version that cannot start is tried once, again on retry
        // (SIGHUP) and when the file changes.
        p.refuse.insert("b".into());
        write(&dir, "b.yaml", &good("b2"));
        local.reload(&mut p, false);
        local.reload(&mut p, false);
        let tries = |p: &Recorder| p.applies.iter().filter(|n| *n == "b").count();
        assert_eq!(tries(&p), 2);
        local.reload(&mut p, true);
        assert_eq!(tries(&p), 3);
        write(&dir, "b.yaml", &good("b3"));
        local.reload(&mut p, false);
        assert_eq!(tries(&p), 4);
        // The first version of b still runs; the directory's other file too.
        assert!(p.running.contains_key("a") && p.running.contains_key("b"));
    }

    #[test]
    fn names_are_unique_and_the_running_file_keeps_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let yaml = write(&dir, "x.yaml", &good("x"));
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        // x.json sorts before x.yaml but x.yaml runs `x`: it keeps it.
        let json = write(
            &dir,
            "x.json",
            r#"{"inputs":[{"Type":"input_file","FilePaths":["/x/*.log"]}],"flushers":[{"Type":"flusher_stdout"}]}"#,
        );
        local.reload(&mut p, false);
        assert_eq!(p.applies, ["x"]);
        assert_eq!(p.origin("x"), Some(shown(&yaml).as_str()));
        assert!(local.failed.contains_key(&json));
        // Once x.yaml is gone, `x` stops. x.json was reported (as a
        // duplicate) and, like every reported file, is tried again when it
        // changes or on SIGHUP; then it owns the name.
        std::fs::remove_file(&yaml).unwrap();
        local.reload(&mut p, false);
        assert_eq!(p.removed, ["x"]);
        assert_eq!(p.applies, ["x"]);
        local.reload(&mut p, true);
        assert_eq!(p.applies, ["x", "x"]);
        assert_eq!(p.origin("x"), Some(shown(&json).as_str()));

        // At start, the first file (`--config` before the directory) wins.
        let tmp2 = tempfile::tempdir().unwrap();
        let first = write(tmp2.path(), "x.yaml", &good("first"));
        let mut local = LocalConfigs::new(vec![first.clone()], Some(dir));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        assert_eq!(p.origin("x"), Some(shown(&first).as_str()));
    }

    #[test]
    fn an_unreadable_directory_keeps_the_running_configs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("conf.d");
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "a.yaml", &good("a"));
        let mut local = LocalConfigs::new(vec![], Some(dir.clone()));
        let mut p = Recorder::default();
        local.start(&mut p, false).unwrap();
        std::fs::rename(&dir, tmp.path().join("elsewhere")).unwrap();
        local.reload(&mut p, false);
        assert!(p.removed.is_empty());
        assert!(local.dir_error.as_deref().unwrap().contains("cannot read"));
        std::fs::rename(tmp.path().join("elsewhere"), &dir).unwrap();
        local.reload(&mut p, false);
        assert!(local.dir_error.is_none());
        assert_eq!(p.applies, ["a"]);
    }

    #[test]
    fn local_names_win_over_the_config_server() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "app.yaml", &good("app"));
        let mut local = LocalConfigs::new(vec![tmp.path().join("app.yaml")], None);
        let mut p = Recorder::default();
        local.start(&mut p, true).unwrap();
        let mut reports = Vec::new();
        let mut remote = |change| {
            apply_remote(change, &mut p, &local, |n: &str, v, s| {
                reports.push((n.to_string(), v, s))
            })
        };
        remote(ConfigChange::Upsert {
            name: "app".into(),
            version: 3,
            detail: good("remote").into_bytes(),
        });
        remote(ConfigChange::Upsert {
            name: "web".into(),
            version: 1,
            detail: good("web").into_bytes(),
        });
        remote(ConfigChange::Upsert {
            name: "bin".into(),
            version: 2,
            detail: vec![0xff, 0xfe],
        });
        remote(ConfigChange::Upsert {
            name: "broken".into(),
            version: 4,
            detail: BAD.as_bytes().to_vec(),
        });
        remote(ConfigChange::Remove { name: "app".into() });
        remote(ConfigChange::Remove { name: "web".into() });
        let failed = |name: &str| {
            reports.iter().find_map(|(n, _, s)| match s {
                ConfigState::Failed(why) if n == name => Some(why.clone()),
                _ => None,
            })
        };
        assert!(failed("app")
            .unwrap()
            .contains("config server: app v3: a local config file has the same name"));
        assert!(failed("bin").unwrap().contains("not UTF-8"));
        assert!(failed("broken").unwrap().contains("FilePaths"));
        assert_eq!(
            reports
                .iter()
                .filter(|(n, _, _)| n == "web")
                .map(|(_, v, s)| (*v, s.clone()))
                .collect::<Vec<_>>(),
            [(1, ConfigState::Applying), (1, ConfigState::Applied)]
        );
        // The local `app` was neither replaced nor removed; `web` was.
        assert_eq!(p.applies, ["app", "web"]);
        assert_eq!(p.removed, ["web"]);
        assert!(p.origin("app").unwrap().ends_with("app.yaml"));
    }

    #[test]
    fn config_and_data_dirs_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(tmp.path(), "file", "");
        let e = check_config_dir(&tmp.path().join("nope")).unwrap_err();
        assert!(e.ends_with("nope: no such directory"), "{e}");
        let e = check_config_dir(&file).unwrap_err();
        assert!(e.ends_with("file: not a directory"), "{e}");
        check_config_dir(tmp.path()).unwrap();
        let e = prepare_data_dir(&file).unwrap_err();
        assert!(e.ends_with("file: is a file, not a directory"), "{e}");
        let data = prepare_data_dir(&tmp.path().join("a/b/../c")).unwrap();
        assert!(data.is_dir() && data.is_absolute());
        assert!(data.ends_with("a/c"), "{}", data.display());
    }
}
