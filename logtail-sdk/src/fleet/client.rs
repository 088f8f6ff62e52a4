//! The agent side of ConfigServer v2: heartbeats, config updates, status
//! reports.
//!
//! [`Fleet::start`] spawns one thread that sends a heartbeat every
//! [`FleetOptions::heartbeat_interval`] to the first server that answers
//! (failing over in order), hands config changes to the agent on a channel
//! as [`ConfigChange`]s, and reports back what the agent says with
//! [`Fleet::report`]. The last received configs are kept under
//! `<data_dir>/fleet/` and emitted again as [`ConfigChange::Upsert`]s on the
//! next start, before the server is contacted, so an agent restarted while
//! the server is down still runs them.
//!
//! ```no_run
//! use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
//! let options = FleetOptions::new(vec!["http://127.0.0.1:8899".into()], "/var/lib/logtail".into());
//! let (fleet, changes) = Fleet::start(options).unwrap();
//! for change in changes.iter() {
//!     match change {
//!         ConfigChange::Upsert { name, version, detail } => {
//!             // parse `detail` with PipelineConfig::parse, (re)start the pipeline, then:
//!             fleet.report(&name, version, ConfigState::Applied);
//!         }
//!         ConfigChange::Remove { name } => { /* stop the pipeline */ let _ = name; }
//!     }
//! }
//! fleet.stop();
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::proto::{
    AgentAttributes, AgentGroupTag, ConfigDetail, ConfigInfo, ConfigStatus, FetchConfigRequest,
    FetchConfigResponse, HeartbeatRequest, HeartbeatResponse, Message,
    AGENT_CAP_CONTINUOUS_PIPELINE_CONFIG, REQUEST_FLAG_FULL_STATE,
    RESPONSE_FLAG_FETCH_CONTINUOUS_PIPELINE_CONFIG_DETAIL, RESPONSE_FLAG_REPORT_FULL_STATE,
};
use super::report::{AlarmReport, ReportProvider, MAX_ALARMS};
use super::store::{ConfigStore, StoredConfig};
use super::valid_config_name;
use crate::background::Background;
use crate::host::{self, HostIdentity, IdentitySources, IdentityWatcher};

/// The tag name that carries each user-defined identity.
pub const USER_DEFINED_ID_TAG: &str = "user_defined_id";

/// Largest server answer read (a guard against a broken server).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// How the fleet client runs. [`FleetOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Server base URLs (`http://host:port`; `host:port` means http), tried
    /// in order: the first that answers is used until it fails.
    pub servers: Vec<String>,
    /// The agent's data directory; configs are kept in `<data_dir>/fleet/`.
    pub data_dir: PathBuf,
    /// Where identities and accounts come from.
    pub identity: IdentitySources,
    /// Extra tags (`NAME=VALUE` on a command line) sent with each heartbeat.
    pub tags: Vec<(String, String)>,
    /// Time between heartbeats (10 s).
    pub heartbeat_interval: Duration,
    /// Time between re-reads of the identity sources (60 s).
    pub identity_refresh: Duration,
    /// The host IP to report; detected when `None` (see [`host::host_ip`]).
    pub ip: Option<IpAddr>,
    /// Connect + read timeout of one request (5 s).
    pub request_timeout: Duration,
    /// Longest wait between retries while no server answers (60 s); waits
    /// start at the heartbeat interval (at most 1 s) and double.
    pub max_backoff: Duration,
    /// `agent_type` sent (`logtail-rs`).
    pub agent_type: String,
    /// Agent version sent in the attributes (this crate's version).
    pub agent_version: String,
    /// Called at each heartbeat for the agent's status, CPU, memory and
    /// alarms, sent in the attributes' extras (see [`super::report`]);
    /// none: no report (the heartbeat carries the version only). With a
    /// provider every heartbeat carries the full state, as
    /// LoongCollector's do.
    pub report: Option<ReportProvider>,
}

impl FleetOptions {
    /// Defaults: Logtail's identity sources, 10 s heartbeats, 60 s identity
    /// refresh, detected IP.
    pub fn new(servers: Vec<String>, data_dir: PathBuf) -> FleetOptions {
        FleetOptions {
            servers,
            data_dir,
            identity: IdentitySources::default(),
            tags: Vec::new(),
            heartbeat_interval: Duration::from_secs(10),
            identity_refresh: Duration::from_secs(60),
            ip: None,
            request_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            agent_type: "logtail-rs".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            report: None,
        }
    }
}

/// Parses a `NAME=VALUE` tag (command-line form).
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("tag {text:?}: expected NAME=VALUE")),
    }
}

/// Why the fleet client could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// No server URL was given.
    #[error("no config server given")]
    NoServers,
    /// A server URL is not `http://host:port[/path]`.
    #[error("config server {url:?}: {why}")]
    BadServer {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The config store could not be opened.
    #[error("{}: cannot open the fleet config store: {source}", path.display())]
    Store {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the fleet thread: {0}")]
    Spawn(std::io::Error),
}

/// A change the agent must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Run this config (new, or a new version of a running one). `detail`
    /// is the config text (YAML or JSON) for
    /// [`PipelineConfig::parse`](crate::config::PipelineConfig::parse).
    Upsert {
        /// Pipeline name.
        name: String,
        /// Version; report it back with [`Fleet::report`].
        version: i64,
        /// Config text.
        detail: Vec<u8>,
    },
    /// Stop and forget this config.
    Remove {
        /// Pipeline name.
        name: String,
    },
}

/// What the agent did with a config, for [`Fleet::report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigState {
    /// Being applied.
    Applying,
    /// Running.
    Applied,
    /// Could not be applied, and why.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    version: i64,
    status: ConfigStatus,
    message: String,
}

#[derive(Debug, Default)]
struct HeldConfigs {
    configs: BTreeMap<String, Held>,
    /// Grows on every change: a heartbeat after a change carries full state.
    generation: u64,
}

/// A running fleet client. [`Fleet::stop`] (or dropping it) stops its
/// threads.
#[derive(Debug)]
pub struct Fleet {
    held: Arc<Mutex<HeldConfigs>>,
    identity: Arc<IdentityWatcher>,
    instance_id: String,
    heartbeat: Background,
}

impl Fleet {
    /// Opens `<data_dir>/fleet/`, emits the configs kept there as
    /// [`ConfigChange::Upsert`]s, then starts the heartbeat thread. The
    /// receiver is unbounded: changes never wait for the agent.
    pub fn start(options: FleetOptions) -> Result<(Fleet, Receiver<ConfigChange>), FleetError> {
        if options.servers.is_empty() {
            return Err(FleetError::NoServers);
        }
        let servers = options
            .servers
            .iter()
            .map(|s| normalize_server(s))
            .collect::<Result<Vec<_>, _>>()?;
        let dir = options.data_dir.join("fleet");
        let store = ConfigStore::open(&dir).map_err(|source| FleetError::Store {
            path: dir.clone(),
            source,
        })?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut held = HeldConfigs::default();
        for (name, c) in store.configs() {
            held.configs.insert(
                name.clone(),
                Held {
                    version: c.version,
                    status: ConfigStatus::Applying,
                    message: String::new(),
                },
            );
            let _ = tx.send(ConfigChange::Upsert {
                name: name.clone(),
                version: c.version,
                detail: c.detail.clone(),
            });
        }
        if !held.configs.is_empty() {
            tracing::info!(
                configs = held.configs.len(),
                "fleet: running the configs kept from the last run"
            );
        }
        let held = Arc::new(Mutex::new(held));
        let identity = Arc::new(
            IdentityWatcher::start(options.identity.clone(), options.identity_refresh)
                .map_err(FleetError::Spawn)?,
        );
        let ip = host::host_ip(options.ip);
        let startup_time = unix_secs();
        let instance_id = format!(
            "{}_{}_{}",
            uuid_like(),
            ip.map(|i| i.to_string()).unwrap_or_default(),
            startup_time
        );
        let http = ureq::AgentBuilder::new()
            .timeout_connect(options.request_timeout)
            .timeout(options.request_timeout)
            .build();
        let mut worker = Worker {
            attributes: attributes(&options, ip),
            options,
            servers,
            current: 0,
            http,
            store,
            held: Arc::clone(&held),
            identity: Arc::clone(&identity),
            changes: tx,
            instance_id: instance_id.clone(),
            startup_time,
            sequence_num: 0,
            need_full: true,
            sent: None,
            pending_alarms: Vec::new(),
        };
        let heartbeat = Background::spawn("fleet-heartbeat", move |stopped| worker.run(&stopped))
            .map_err(FleetError::Spawn)?;
        Ok((
            Fleet {
                held,
                identity,
                instance_id,
                heartbeat,
            },
            rx,
        ))
    }

    /// Records what the agent did with a config; the next heartbeat reports
    /// it (with the full state). Ignored for a config or version the client
    /// does not hold (an outdated report).
    pub fn report(&self, name: &str, version: i64, state: ConfigState) {
        let (status, message) = match state {
            ConfigState::Applying => (ConfigStatus::Applying, String::new()),
            ConfigState::Applied => (ConfigStatus::Applied, String::new()),
            ConfigState::Failed(m) => (ConfigStatus::Failed, m),
        };
        let mut held = lock(&self.held);
        let changed = match held.configs.get_mut(name) {
            Some(h) if h.version == version => {
                let new = Held {
                    version,
                    status,
                    message,
                };
                let changed = *h != new;
                *h = new;
                changed
            }
            _ => {
                tracing::debug!(
                    config = name,
                    version,
                    "fleet: report for a config not held; ignored"
                );
                false
            }
        };
        if changed {
            held.generation += 1;
        }
    }

    /// The host identity as last read (user-defined ids and authorised
    /// accounts).
    pub fn identity(&self) -> HostIdentity {
        self.identity.current()
    }

    /// The instance id sent to the server (stable for this `Fleet`).
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The configs held now: name, version and status as last reported.
    pub fn configs(&self) -> Vec<(String, i64, ConfigState)> {
        lock(&self.held)
            .configs
            .iter()
            .map(|(n, h)| {
                let s = match h.status {
                    ConfigStatus::Applied => ConfigState::Applied,
                    ConfigStatus::Failed => ConfigState::Failed(h.message.clone()),
                    _ => ConfigState::Applying,
                };
                (n.clone(), h.version, s)
            })
            .collect()
    }

    /// Stops the heartbeat thread (waits for a request in flight, at most
    /// the request timeout) and the identity refresh.
    pub fn stop(mut self) {
        self.heartbeat.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn normalize_server(url: &str) -> Result<String, FleetError> {
    let url = url.trim();
    let bad = |why: &str| FleetError::BadServer {
        url: url.to_string(),
        why: why.to_string(),
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        Some(_) => return Err(bad("only http:// is understood")),
        None => ("http", url),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host"));
    }
    Ok(format!("{scheme}://{rest}"))
}

fn attributes(options: &FleetOptions, ip: Option<IpAddr>) -> AgentAttributes {
    AgentAttributes {
        version: options.agent_version.clone().into_bytes(),
        ip: ip.map(|i| i.to_string()).unwrap_or_default().into_bytes(),
        hostname: host::hostname().unwrap_or_default().into_bytes(),
        hostid: Vec::new(),
        extras: [
            ("os".to_string(), std::env::consts::OS.as_bytes().to_vec()),
            (
                "arch".to_string(),
                std::env::consts::ARCH.as_bytes().to_vec(),
            ),
        ]
        .into(),
    }
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 64 random bits: std's randomly keyed SipHash over time, pid and a
/// counter (no extra dependency for ids that need only be unique).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn uuid_like() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// What was last sent with the full state: identity and config generations.
type Sent = (u64, u64);

struct Worker {
    options: FleetOptions,
    servers: Vec<String>,
    current: usize,
    http: ureq::Agent,
    store: ConfigStore,
    held: Arc<Mutex<HeldConfigs>>,
    identity: Arc<IdentityWatcher>,
    changes: Sender<ConfigChange>,
    instance_id: String,
    startup_time: i64,
    attributes: AgentAttributes,
    sequence_num: u64,
    need_full: bool,
    sent: Option<Sent>,
    /// Alarms taken from the report provider and not yet delivered (kept
    /// across failed heartbeats, at most [`MAX_ALARMS`]: the oldest go).
    pending_alarms: Vec<AlarmReport>,
}

#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        source: Box<ureq::Error>,
    },
    #[error("{url}: cannot read the answer: {source}")]
    Read { url: String, source: std::io::Error },
    #[error("{url}: the answer does not decode: {source}")]
    Decode {
        url: String,
        source: prost::DecodeError,
    },
    #[error("{url}: server error {status}: {message}")]
    Server {
        url: String,
        status: i32,
        message: String,
    },
}

impl Worker {
    fn run(&mut self, stopped: &Receiver<()>) {
        let first_backoff = self
            .options
            .heartbeat_interval
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        let mut backoff = first_backoff;
        let mut failing = false;
        loop {
            let wait = match self.heartbeat() {
                Ok(()) => {
                    if failing {
                        tracing::info!(server = %self.servers[self.current], "fleet: config server reachable again");
                    }
                    failing = false;
                    backoff = first_backoff;
                    self.options.heartbeat_interval
                }
                Err(e) => {
                    self.need_full = true;
                    if !failing {
                        tracing::warn!("fleet: heartbeat failed, keeping the current configs and retrying with backoff: {e}");
                    } else {
                        tracing::debug!(retry_in = ?backoff, "fleet: heartbeat failed: {e}");
                    }
                    failing = true;
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.options.max_backoff.max(first_backoff));
                    wait
                }
            };
            match stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    /// One heartbeat, failing over across the servers; then the updates.
    fn heartbeat(&mut self) -> Result<(), RequestError> {
        let n = self.servers.len();
        let mut last_err = None;
        for i in 0..n {
            let idx = (self.current + i) % n;
            let (req, sent) = self.request();
            let url = format!("{}/Agent/Heartbeat", self.servers[idx]);
            match self.post::<HeartbeatResponse>(&url, req.encode_to_vec()) {
                Ok(resp) => {
                    if let Some(err) = server_error(&url, resp.common_response.as_ref()) {
                        // Every other field is to be ignored; retry later.
                        return Err(err);
                    }
                    self.current = idx;
                    // The alarms it carried are delivered.
                    self.pending_alarms.clear();
                    if let Some(s) = sent {
                        self.sent = Some(s);
                        self.need_full = false;
                    }
                    if resp.flags & RESPONSE_FLAG_REPORT_FULL_STATE != 0 {
                        self.need_full = true;
                    }
                    let fetch_all =
                        resp.flags & RESPONSE_FLAG_FETCH_CONTINUOUS_PIPELINE_CONFIG_DETAIL != 0;
                    self.updates(idx, resp.continuous_pipeline_config_updates, fetch_all);
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!("fleet: {e}");
                    self.need_full = true;
                    last_err = Some(e);
                }
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The next request: full state when due, else compressed.
    fn request(&mut self) -> (HeartbeatRequest, Option<Sent>) {
        self.sequence_num += 1;
        let (id_gen, ids) = self.identity.snapshot();
        let (cfg_gen, configs) = {
            let held = lock(&self.held);
            let configs: Vec<ConfigInfo> = held
                .configs
                .iter()
                .map(|(name, h)| ConfigInfo {
                    name: name.clone(),
                    version: h.version,
                    status: h.status as i32,
                    message: h.message.clone(),
                    extra: BTreeMap::new(),
                })
                .collect();
            (held.generation, configs)
        };
        let state = (id_gen, cfg_gen);
        let mut req = HeartbeatRequest {
            request_id: format!("{:016x}{:016x}", random_u64(), random_u64()).into_bytes(),
            sequence_num: self.sequence_num,
            instance_id: self.instance_id.clone().into_bytes(),
            ..Default::default()
        };
        if !self.need_full && self.sent == Some(state) && self.options.report.is_none() {
            return (req, None);
        }
        req.capabilities = AGENT_CAP_CONTINUOUS_PIPELINE_CONFIG;
        req.agent_type = self.options.agent_type.clone();
        req.attributes = Some(self.attributes_now());
        req.startup_time = self.startup_time;
        req.flags = REQUEST_FLAG_FULL_STATE;
        req.tags = ids
            .user_defined_ids
            .iter()
            .map(|id| AgentGroupTag {
                name: USER_DEFINED_ID_TAG.into(),
                value: id.clone(),
            })
            .chain(self.options.tags.iter().map(|(n, v)| AgentGroupTag {
                name: n.clone(),
                value: v.clone(),
            }))
            .collect();
        req.continuous_pipeline_configs = configs;
        (req, Some(state))
    }

    /// The attributes, with the provider's report (if any) in the extras.
    fn attributes_now(&mut self) -> AgentAttributes {
        let mut attributes = self.attributes.clone();
        let Some(provider) = &self.options.report else {
            return attributes;
        };
        let mut report = provider.report();
        self.pending_alarms.append(&mut report.alarms);
        if self.pending_alarms.len() > MAX_ALARMS {
            let excess = self.pending_alarms.len() - MAX_ALARMS;
            self.pending_alarms.drain(..excess);
            tracing::debug!(
                dropped = excess,
                "fleet: alarms not delivered yet dropped (oldest first)"
            );
        }
        report.alarms = self.pending_alarms.clone();
        if !report.version.is_empty() {
            attributes.version = report.version.clone().into_bytes();
        }
        report.write_extras(&mut attributes.extras);
        attributes
    }

    fn post<T: Message + Default>(&self, url: &str, body: Vec<u8>) -> Result<T, RequestError> {
        let resp = self
            .http
            .post(url)
            .set("Content-Type", "application/x-protobuf")
            .send_bytes(&body)
            .map_err(|e| RequestError::Http {
                url: url.to_string(),
                source: Box::new(e),
            })?;
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|source| RequestError::Read {
                url: url.to_string(),
                source,
            })?;
        T::decode(bytes.as_slice()).map_err(|source| RequestError::Decode {
            url: url.to_string(),
            source,
        })
    }

    fn updates(&mut self, server: usize, updates: Vec<ConfigDetail>, fetch_all: bool) {
        let mut to_fetch = Vec::new();
        for u in updates {
            if u.version != -1 && (fetch_all || u.detail.is_empty()) && self.wants(&u) {
                to_fetch.push(ConfigInfo {
                    name: u.name,
                    version: u.version,
                    ..Default::default()
                });
            } else {
                self.apply(u);
            }
        }
        if to_fetch.is_empty() {
            return;
        }
        let url = format!("{}/Agent/FetchPipelineConfig", self.servers[server]);
        let req = FetchConfigRequest {
            request_id: format!("{:016x}", random_u64()).into_bytes(),
            instance_id: self.instance_id.clone().into_bytes(),
            continuous_pipeline_configs: to_fetch,
            ..Default::default()
        };
        match self.post::<FetchConfigResponse>(&url, req.encode_to_vec()) {
            Ok(resp) => match server_error(&url, resp.common_response.as_ref()) {
                Some(e) => tracing::warn!("fleet: fetching configs: {e}; retrying later"),
                None => {
                    for d in resp.continuous_pipeline_config_updates {
                        if d.version == -1 || !d.detail.is_empty() {
                            self.apply(d);
                        }
                    }
                }
            },
            Err(e) => tracing::warn!("fleet: fetching configs: {e}; retrying later"),
        }
    }

    /// Whether an update is news (another version than the one held).
    fn wants(&self, u: &ConfigDetail) -> bool {
        lock(&self.held)
            .configs
            .get(&u.name)
            .is_none_or(|h| h.version != u.version)
    }

    fn apply(&mut self, u: ConfigDetail) {
        if u.version == -1 {
            let had = lock(&self.held).configs.contains_key(&u.name);
            if !had {
                return;
            }
            if let Err(e) = self.store.remove(&u.name) {
                tracing::error!(path = %self.store.path().display(), "fleet: cannot persist a removal: {e}");
            }
            let mut held = lock(&self.held);
            held.configs.remove(&u.name);
            held.generation += 1;
            drop(held);
            tracing::info!(config = %u.name, "fleet: config removed");
            let _ = self.changes.send(ConfigChange::Remove { name: u.name });
            return;
        }
        if !self.wants(&u) {
            return;
        }
        let mut reject = None;
        if u.version == 0 {
            reject = Some("version 0 is reserved".to_string());
        } else if let Err(why) = valid_config_name(&u.name) {
            reject = Some(why);
        }
        if let Some(why) = reject {
            tracing::warn!(config = %u.name, version = u.version, "fleet: update rejected: {why}");
            let mut held = lock(&self.held);
            held.configs.insert(
                u.name,
                Held {
                    version: u.version,
                    status: ConfigStatus::Failed,
                    message: why,
                },
            );
            held.generation += 1;
            return;
        }
        if let Err(e) = self.store.upsert(
            &u.name,
            StoredConfig {
                version: u.version,
                detail: u.detail.clone(),
            },
        ) {
            tracing::error!(path = %self.store.path().display(), "fleet: cannot persist config {}: {e}", u.name);
        }
        {
            let mut held = lock(&self.held);
            held.configs.insert(
                u.name.clone(),
                Held {
                    version: u.version,
                    status: ConfigStatus::Applying,
                    message: String::new(),
                },
            );
            held.generation += 1;
        }
        tracing::info!(config = %u.name, version = u.version, "fleet: config update");
        let _ = self.changes.send(ConfigChange::Upsert {
            name: u.name,
            version: u.version,
            detail: u.detail,
        });
    }
}

fn server_error(url: &str, common: Option<&super::proto::CommonResponse>) -> Option<RequestError> {
    common
        .filter(|c| c.status != 0)
        .map(|c| RequestError::Server {
            url: url.to_string(),
            status: c.status,
            message: String::from_utf8_lossy(&c.error_message).into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_like_ids_differ() {
        let a = uuid_like();
        let b = uuid_like();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn servers_and_tags() {
        assert_eq!(
            normalize_server("127.0.0.1:1/").unwrap(),
            "http://127.0.0.1:1"
        );
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("http://").is_err());
        assert_eq!(
            parse_tag("env = prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert!(parse_tag("=x").is_err());
        assert!(parse_tag("novalue").is_err());
    }

    /// A server that answers the first heartbeat with an error status (and,
    /// against the rules, a config update) and later heartbeats with the
    /// same update and status 0: the agent ignores the first answer's update
    /// and applies it from a successful one.
    #[test]
    fn an_answer_with_an_error_status_is_ignored_and_retried() {
        use super::super::proto::{CommonResponse, ConfigDetail, HeartbeatResponse};
        use std::sync::atomic::{AtomicU64, Ordering};
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = http.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&served);
        std::thread::spawn(move || {
            for conn in http.incoming() {
                let Ok(conn) = conn else { continue };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let status = if n == 0 { 500 } else { 0 };
                let resp = HeartbeatResponse {
                    common_response: Some(CommonResponse {
                        status,
                        error_message: b"busy".to_vec(),
                    }),
                    continuous_pipeline_config_updates: vec![ConfigDetail {
                        name: "c1".into(),
                        version: 1,
                        detail: b"inputs: []".to_vec(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let _ = answer_once(conn, &resp.encode_to_vec());
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let mut options = FleetOptions::new(vec![format!("http://{addr}")], dir.path().into());
        options.heartbeat_interval = Duration::from_millis(50);
        options.ip = Some(IpAddr::from([127, 0, 0, 1]));
        let (fleet, changes) = Fleet::start(options).unwrap();
        let change = changes.recv_timeout(Duration::from_secs(10)).unwrap();
        let answers = served.load(Ordering::SeqCst);
        assert!(
            matches!(&change, ConfigChange::Upsert { name, version: 1, .. } if name == "c1"),
            "{change:?}"
        );
        assert!(
            answers >= 2,
            "applied after {answers} answer(s): the first was an error"
        );
        fleet.stop();
    }

    /// Reads one HTTP request from `conn` (headers, then a
    /// `Content-Length` body) and answers 200 with `body`, closing the
    /// connection.
    fn answer_once(conn: std::net::TcpStream, body: &[u8]) -> std::io::Result<()> {
        use std::io::{BufRead, Read, Write};
        let mut reader = std::io::BufReader::new(conn.try_clone()?);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut request_body = vec![0; length];
        reader.read_exact(&mut request_body)?;
        let mut conn = conn;
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        conn.write_all(body)?;
        conn.flush()
    }

    #[test]
    fn start_without_servers_fails() {
        let dir = tempfile::tempdir().unwrap();
        let err = Fleet::start(FleetOptions::new(vec![], dir.path().into())).unwrap_err();
        assert!(matches!(err, FleetError::NoServers));
    }
}
