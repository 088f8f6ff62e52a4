//! A small reference ConfigServer: machine groups, pipeline configs, host
//! status, the ConfigServer v2 agent endpoints and a JSON admin API.
//!
//! [`ConfigServer`] is the logic, free of HTTP: [`ConfigServer::handle`]
//! takes a method, a path and a body and returns a [`Reply`]. [`HttpServer`]
//! is the edge that serves it over HTTP (`tiny_http`). State lives in
//! `<data_dir>/server-state.json`, replaced atomically on every change, so
//! it survives a restart.
//!
//! Agent endpoints (protobuf): `POST /Agent/Heartbeat`,
//! `POST /Agent/FetchPipelineConfig`. Each heartbeat is answered with the
//! configs whose version differs from what the agent reported, full detail
//! inline, and version -1 for configs it runs that no longer apply to it.
//!
//! Admin API (JSON; errors are `{"error": "what is wrong"}` with 400, 401 (admin token, see
//! [`crate::console`]), 404, 405 or 409):
//!
//! | method and path | body / answer |
//! |---|---|
//! | `POST /api/v1/machine_groups` | `{"name":"web","type":"userdefined","members":["web-prod"],"topic":"t","os":"linux"}` (`type` `ip` lists IPs; `topic`, `os` optional) |
//! | `GET /api/v1/machine_groups` | `{"machine_groups":[…]}` |
//! | `GET`, `PUT`, `DELETE /api/v1/machine_groups/NAME` | the group; `PUT` replaces type, members, topic and os and keeps the configs |
//! | `PUT`, `DELETE /api/v1/machine_groups/NAME/configs/CONFIG` | apply / remove a config |
//! | `GET /api/v1/machine_groups/NAME/hosts` | `{"hosts":[{"instance_id","ip","hostname","os","identities","status":"OK"/"FAIL","last_heartbeat_ms","membership","configs":[{"name","version","status","message"}]}]}` |
//! | `POST /api/v1/pipeline_configs` | `{"name":"nginx","detail":"<YAML or JSON>"}` → `{"name","version"}` |
//! | `GET /api/v1/pipeline_configs` | `{"pipeline_configs":[{"name","version"}]}` |
//! | `GET`, `PUT`, `DELETE /api/v1/pipeline_configs/NAME` | `{"name","version","detail"}`; `PUT {"detail":…}` bumps the version |
//! | `GET /api/v1/hosts` | every host seen |
//! | `GET /api/v1/alarms?group=G&since=T&limit=N` | `{"alarms":[{"instance_id","hostname","ip","alarm_type","alarm_level","level_name","alarm_message","alarm_count","config","first_seen","received_ms"}]}`, newest first; `group`, `since` (Unix seconds, by receipt) and `limit` (200) optional |
//! | `GET /api/v1/overview` | what the console shows: `{"now_ms","heartbeat_timeout_ms","groups":[{…group, "hosts":[…]}],"other_hosts":[…],"alarms":[…]}` |
//!
//! Hosts carry, besides the heartbeat status (`status`: `OK` while
//! heartbeats arrive, `FAIL` after [`ServerOptions::heartbeat_timeout`]
//! without one), what the agent reported about itself in the heartbeat's
//! extras ([`logtail_sdk::fleet::report`]): `agent_status`, `cpu_cores`,
//! `memory_bytes`, `reported_ms`, and `alarms_kept` (how many of its alarms are kept). The
//! alarms are kept in memory, the last [`ServerOptions::alarms_per_host`]
//! per host; a restarted server starts without them.
//!
//! The console (`GET /`) and the admin token are [`crate::console`]'s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use logtail_sdk::config::PipelineConfig;
use logtail_sdk::fleet::client::USER_DEFINED_ID_TAG;
use logtail_sdk::fleet::proto::{
    CommonResponse, ConfigDetail, ConfigStatus, FetchConfigRequest, FetchConfigResponse,
    HeartbeatRequest, HeartbeatResponse, Message, REQUEST_FLAG_FULL_STATE,
    RESPONSE_FLAG_FETCH_CONTINUOUS_PIPELINE_CONFIG_DETAIL, RESPONSE_FLAG_REPORT_FULL_STATE,
    SERVER_CAP_REMEMBER_ATTRIBUTE, SERVER_CAP_REMEMBER_CONTINUOUS_PIPELINE_CONFIG_STATUS,
};
use logtail_sdk::fleet::report::{AgentReport, AlarmReport};
use logtail_sdk::fleet::store::{read_json, write_atomic};
use logtail_sdk::fleet::valid_config_name;

use crate::group::{
    validate_group_name, HostFacts, HostStatus, Identification, MachineGroup, Membership, Os,
};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: u64 = 16 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the state file lives.
    pub data_dir: PathBuf,
    /// A host with no heartbeat for longer than this is `FAIL` (30 s: three
    /// missed 10 s heartbeats).
    pub heartbeat_timeout: Duration,
    /// Answer heartbeats with names and versions only and the
    /// `FetchContinuousPipelineConfigDetail` flag, so agents fetch the
    /// details with `FetchPipelineConfig` (as large servers do); off: full
    /// detail inline.
    pub details_by_fetch: bool,
    /// Alarms kept per host (the oldest go first): 1000.
    pub alarms_per_host: usize,
    /// When set, the admin API and the console require it (see
    /// [`crate::console`]); the agent endpoints never do.
    pub admin_token: Option<crate::console::AdminToken>,
}

impl ServerOptions {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: PathBuf) -> ServerOptions {
        ServerOptions {
            data_dir,
            heartbeat_timeout: Duration::from_secs(30),
            details_by_fetch: false,
            alarms_per_host: 1000,
            admin_token: None,
        }
    }
}

/// Why the server could not start or keep its state.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The state file could not be read or written.
    #[error("{}: {what}: {source}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The state file holds a group or config that no longer validates.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        message: String,
    },
}

/// An answer of [`ConfigServer::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `application/json` or `application/x-protobuf`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// More response headers (`Set-Cookie`, `Location`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec_pretty(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    fn proto(status: u16, m: &impl Message) -> Reply {
        Reply {
            status,
            content_type: "application/x-protobuf",
            body: m.encode_to_vec(),
            headers: Vec::new(),
        }
    }
}

/// An admin API error: HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status (400, 404, 405, 409, 500).
    pub status: u16,
    /// What is wrong.
    pub message: String,
}

fn api(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

/// A group as the admin API and the state file write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    os: Option<String>,
    #[serde(default)]
    configs: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConfigRecord {
    version: i64,
    detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReportedConfig {
    version: i64,
    status: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HostRecord {
    ip: String,
    hostname: String,
    os: String,
    agent_type: String,
    agent_version: String,
    identities: Vec<String>,
    tags: Vec<(String, String)>,
    startup_time: i64,
    last_heartbeat_ms: u64,
    configs: BTreeMap<String, ReportedConfig>,
    /// The last sequence number seen by this process (a restarted server
    /// has none and asks for the full state).
    #[serde(skip)]
    last_seq: Option<u64>,
    /// What the agent last reported about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report: Option<HostReport>,
    /// Its alarms as received, oldest first (memory only).
    #[serde(skip)]
    alarms: VecDeque<ReceivedAlarm>,
}

/// The report part of a host record (the version is the host's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HostReport {
    status: String,
    cpu_cores: f64,
    memory_bytes: u64,
    /// When it was received.
    reported_ms: u64,
    /// The first part of the last report that did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct ReceivedAlarm {
    received_ms: u64,
    alarm: AlarmReport,
}

impl HostRecord {
    fn facts(&self) -> HostFacts {
        HostFacts {
            ip: self.ip.parse::<IpAddr>().ok(),
            identities: self.identities.clone(),
            os: Os::from_reported(&self.os),
        }
    }

    /// Everything but the heartbeat time and sequence: what is worth a write.
    fn same_state(&self, other: &HostRecord) -> bool {
        (
            &self.ip,
            &self.hostname,
            &self.os,
            &self.agent_type,
            &self.agent_version,
            &self.identities,
            &self.tags,
            self.startup_time,
            &self.configs,
        ) == (
            &other.ip,
            &other.hostname,
            &other.os,
            &other.agent_type,
            &other.agent_version,
            &other.identities,
            &other.tags,
            other.startup_time,
            &other.configs,
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    last_version: i64,
    groups: Vec<GroupForm>,
    configs: BTreeMap<String, ConfigRecord>,
    hosts: BTreeMap<String, HostRecord>,
}

#[derive(Debug, Default)]
struct State {
    /// Versions come from one counter, so a config deleted and created
    /// again never repeats a version an agent still holds.
    last_version: i64,
    groups: BTreeMap<String, MachineGroup>,
    configs: BTreeMap<String, ConfigRecord>,
    hosts: BTreeMap<String, HostRecord>,
}

/// The reference server's logic (no HTTP): see the module docs.
#[derive(Debug)]
pub struct ConfigServer {
    options: ServerOptions,
    path: PathBuf,
    state: Mutex<State>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn group_form(g: &MachineGroup) -> GroupForm {
    GroupForm {
        name: Some(g.name.clone()),
        kind: g.identification.kind().into(),
        members: g.identification.members(),
        topic: g.topic.clone(),
        os: g.os.map(|o| o.as_str().to_string()),
        configs: g.configs.clone(),
    }
}

/// Builds a group from its form; `name` is the name in the path (or the
/// body's for a create).
fn group_from_form(name: &str, form: &GroupForm) -> Result<MachineGroup, String> {
    if let Some(n) = &form.name {
        if n != name {
            return Err(format!(
                "the body's name {n:?} differs from the group {name:?}"
            ));
        }
    }
    validate_group_name(name).map_err(|e| e.to_string())?;
    let identification = Identification::parse(name, &form.kind, &form.members)?;
    let os = match form.os.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("linux") => Some(Os::Linux),
        Some("windows") => Some(Os::Windows),
        Some(other) => {
            return Err(format!(
                "machine group {name:?}: os {other:?} is unknown; use \"linux\" or \"windows\""
            ))
        }
    };
    Ok(MachineGroup {
        name: name.to_string(),
        identification,
        topic: form.topic.clone().filter(|t| !t.is_empty()),
        os,
        configs: form.configs.clone(),
    })
}

fn status_name(status: i32) -> &'static str {
    match ConfigStatus::try_from(status) {
        Ok(ConfigStatus::Applying) => "APPLYING",
        Ok(ConfigStatus::Applied) => "APPLIED",
        Ok(ConfigStatus::Failed) => "FAILED",
        _ => "UNSET",
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| api(400, format!("invalid JSON body: {e}")))
}

impl ConfigServer {
    /// Opens the state under `options.data_dir` (created if needed).
    pub fn open(options: ServerOptions) -> Result<ConfigServer, ServerError> {
        let path = options.data_dir.join("server-state.json");
        let state_err = |what, source| ServerError::State {
            path: path.clone(),
            what,
            source,
        };
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| state_err("cannot create the data directory", e))?;
        let file: StateFile = read_json(&path)
            .map_err(|e| state_err("cannot read", e))?
            .unwrap_or_default();
        let mut state = State {
            last_version: file.last_version,
            configs: file.configs,
            hosts: file.hosts,
            groups: BTreeMap::new(),
        };
        for form in file.groups {
            let name = form.name.clone().unwrap_or_default();
            let g = group_from_form(&name, &form).map_err(|message| ServerError::Invalid {
                path: path.clone(),
                message,
            })?;
            state.groups.insert(name, g);
        }
        Ok(ConfigServer {
            options,
            path,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn persist(&self, st: &State) -> Result<(), ApiError> {
        let file = StateFile {
            format: 1,
            last_version: st.last_version,
            groups: st.groups.values().map(group_form).collect(),
            configs: st.configs.clone(),
            hosts: st.hosts.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| api(500, e.to_string()))?;
        write_atomic(&self.path, &bytes).map_err(|e| {
            tracing::error!(path = %self.path.display(), "cannot write the server state: {e}");
            api(500, format!("cannot write the server state: {e}"))
        })
    }

    /// Routes one HTTP request: the agent endpoints (protobuf) and the
    /// admin API (JSON). `path` may carry a query string (ignored).
    pub fn handle(&self, method: &str, url: &str, body: &[u8]) -> Reply {
        let path = url.split('?').next().unwrap_or("");
        match path {
            "/Agent/Heartbeat" | "/Agent/FetchPipelineConfig" if method != "POST" => {
                Reply::json(405, &json!({"error": format!("{path} takes POST")}))
            }
            "/Agent/Heartbeat" => match HeartbeatRequest::decode(body) {
                Ok(req) => Reply::proto(200, &self.heartbeat(req)),
                Err(e) => Reply::proto(
                    400,
                    &HeartbeatResponse {
                        common_response: Some(bad_request(format!(
                            "HeartbeatRequest does not decode: {e}"
                        ))),
                        ..Default::default()
                    },
                ),
            },
            "/Agent/FetchPipelineConfig" => match FetchConfigRequest::decode(body) {
                Ok(req) => Reply::proto(200, &self.fetch_pipeline_config(req)),
                Err(e) => Reply::proto(
                    400,
                    &FetchConfigResponse {
                        common_response: Some(bad_request(format!(
                            "FetchConfigRequest does not decode: {e}"
                        ))),
                        ..Default::default()
                    },
                ),
            },
            _ => match self.admin(method, url, body) {
                Ok((status, v)) => Reply::json(status, &v),
                Err(e) => Reply::json(e.status, &json!({"error": e.message})),
            },
        }
    }

    /// The admin API: answers `(status, JSON)` or an [`ApiError`].
    /// `path` may carry a query string (read by `GET /api/v1/alarms`).
    pub fn admin(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Value), ApiError> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let rest = path.trim_end_matches('/');
        let parts: Vec<&str> = rest
            .strip_prefix("/api/v1/")
            .ok_or_else(|| api(404, format!("no such endpoint: {path}")))?
            .split('/')
            .collect();
        let not_allowed = || api(405, format!("{method} is not allowed on {path}"));
        match (parts.as_slice(), method) {
            (["machine_groups"], "GET") => {
                let st = self.lock();
                let groups: Vec<GroupForm> = st.groups.values().map(group_form).collect();
                Ok((200, json!({ "machine_groups": groups })))
            }
            (["machine_groups"], "POST") => {
                let form: GroupForm = parse_body(body)?;
                let name = form
                    .name
                    .clone()
                    .ok_or_else(|| api(400, "machine group: \"name\" is required"))?;
                self.put_group(&name, form, true)
            }
            (["machine_groups"], _) => Err(not_allowed()),
            (["machine_groups", name], "GET") => {
                let st = self.lock();
                let g = st.groups.get(*name).ok_or_else(|| no_group(name))?;
                Ok((200, json!(group_form(g))))
            }
            (["machine_groups", name], "PUT") => {
                let form: GroupForm = parse_body(body)?;
                self.put_group(name, form, false)
            }
            (["machine_groups", name], "DELETE") => {
                let mut st = self.lock();
                st.groups.remove(*name).ok_or_else(|| no_group(name))?;
                self.persist(&st)?;
                Ok((200, json!({ "deleted": name })))
            }
            (["machine_groups", name, "configs", config], "PUT" | "DELETE") => {
                let mut st = self.lock();
                if !st.configs.contains_key(*config) && method == "PUT" {
                    return Err(api(404, format!("no pipeline config named {config:?}")));
                }
                let g = st.groups.get_mut(*name).ok_or_else(|| no_group(name))?;
                if method == "PUT" {
                    g.configs.insert(config.to_string());
                } else if !g.configs.remove(*config) {
                    return Err(api(
                        404,
                        format!("config {config:?} is not applied to machine group {name:?}"),
                    ));
                }
                let out = json!(group_form(g));
                self.persist(&st)?;
                Ok((200, out))
            }
            (["machine_groups", name, "hosts"], "GET") => {
                let st = self.lock();
                let g = st.groups.get(*name).ok_or_else(|| no_group(name))?;
                let hosts: Vec<Value> = st
                    .hosts
                    .iter()
                    .filter_map(|(id, h)| match g.membership(&h.facts()) {
                        Membership::NotMember => None,
                        Membership::Member => Some(self.host_json(id, h, "member".into())),
                        Membership::OsMismatch { group_os, host_os } => Some(self.host_json(
                            id,
                            h,
                            format!(
                                "rejected: the group holds {} hosts and this host runs {}",
                                group_os.as_str(),
                                host_os.as_str()
                            ),
                        )),
                    })
                    .collect();
                Ok((200, json!({ "group": name, "hosts": hosts })))
            }
            (["hosts"], "GET") => {
                let st = self.lock();
                let hosts: Vec<Value> = st
                    .hosts
                    .iter()
                    .map(|(id, h)| {
                        let groups: Vec<&str> = st
                            .groups
                            .values()
                            .filter(|g| g.membership(&h.facts()) == Membership::Member)
                            .map(|g| g.name.as_str())
                            .collect();
                        self.host_json(id, h, groups.join(","))
                    })
                    .collect();
                Ok((200, json!({ "hosts": hosts })))
            }
            (["alarms"], "GET") => self.alarms(query),
            (["overview"], "GET") => Ok((200, self.overview())),
            (["alarms"] | ["overview"], _) => Err(not_allowed()),
            (["pipeline_configs"], "GET") => {
                let st = self.lock();
                let list: Vec<Value> = st
                    .configs
                    .iter()
                    .map(|(n, c)| json!({"name": n, "version": c.version}))
                    .collect();
                Ok((200, json!({ "pipeline_configs": list })))
            }
            (["pipeline_configs"], "POST") => {
                let form: ConfigForm = parse_body(body)?;
                let name = form
                    .name
                    .clone()
                    .ok_or_else(|| api(400, "pipeline config: \"name\" is required"))?;
                self.put_config(&name, form, true)
            }
            (["pipeline_configs"], _) => Err(not_allowed()),
            (["pipeline_configs", name], "GET") => {
                let st = self.lock();
                let c = st.configs.get(*name).ok_or_else(|| no_config(name))?;
                Ok((
                    200,
                    json!({"name": name, "version": c.version, "detail": c.detail}),
                ))
            }
            (["pipeline_configs", name], "PUT") => {
                let form: ConfigForm = parse_body(body)?;
                self.put_config(name, form, false)
            }
            (["pipeline_configs", name], "DELETE") => {
                let mut st = self.lock();
                st.configs.remove(*name).ok_or_else(|| no_config(name))?;
                for g in st.groups.values_mut() {
                    g.configs.remove(*name);
                }
                self.persist(&st)?;
                Ok((200, json!({ "deleted": name })))
            }
            (
                ["machine_groups", _]
                | ["machine_groups", _, "configs", _]
                | ["machine_groups", _, "hosts"]
                | ["hosts"]
                | ["pipeline_configs", _],
                _,
            ) => Err(not_allowed()),
            _ => Err(api(404, format!("no such endpoint: {path}"))),
        }
    }

    fn put_group(
        &self,
        name: &str,
        form: GroupForm,
        create: bool,
    ) -> Result<(u16, Value), ApiError> {
        let mut st = self.lock();
        let exists = st.groups.contains_key(name);
        if create && exists {
            return Err(api(409, format!("machine group {name:?} already exists")));
        }
        if !create && !exists {
            return Err(no_group(name));
        }
        let mut g = group_from_form(name, &form).map_err(|m| api(400, m))?;
        if let Some(unknown) = g.configs.iter().find(|c| !st.configs.contains_key(*c)) {
            return Err(api(
                400,
                format!("machine group {name:?}: no pipeline config named {unknown:?}"),
            ));
        }
        if !create {
            // Configs are applied through .../configs/CONFIG; a PUT keeps them.
            if let Some(old) = st.groups.get(name) {
                g.configs.extend(old.configs.iter().cloned());
            }
        }
        let out = json!(group_form(&g));
        st.groups.insert(name.to_string(), g);
        self.persist(&st)?;
        Ok((if create { 201 } else { 200 }, out))
    }

    fn put_config(
        &self,
        name: &str,
        form: ConfigForm,
        create: bool,
    ) -> Result<(u16, Value), ApiError> {
        if let Some(n) = &form.name {
            if n != name {
                return Err(api(
                    400,
                    format!("the body's name {n:?} differs from the config {name:?}"),
                ));
            }
        }
        valid_config_name(name).map_err(|m| api(400, m))?;
        let detail = form.detail.ok_or_else(|| {
            api(
                400,
                format!("pipeline config {name:?}: \"detail\" is required"),
            )
        })?;
        PipelineConfig::parse(name, &format!("pipeline config {name}"), &detail, false)
            .map_err(|e| api(400, e.to_string()))?;
        let mut st = self.lock();
        let exists = st.configs.contains_key(name);
        if create && exists {
            return Err(api(409, format!("pipeline config {name:?} already exists")));
        }
        if !create && !exists {
            return Err(no_config(name));
        }
        st.last_version += 1;
        let version = st.last_version;
        st.configs
            .insert(name.to_string(), ConfigRecord { version, detail });
        self.persist(&st)?;
        Ok((
            if create { 201 } else { 200 },
            json!({"name": name, "version": version}),
        ))
    }

    fn host_json(&self, id: &str, h: &HostRecord, membership: String) -> Value {
        let status = HostStatus::at(
            h.last_heartbeat_ms,
            now_ms(),
            self.options.heartbeat_timeout,
        );
        let configs: Vec<Value> = h
            .configs
            .iter()
            .map(|(n, c)| json!({"name": n, "version": c.version, "status": c.status, "message": c.message}))
            .collect();
        json!({
            "instance_id": id,
            "ip": h.ip,
            "hostname": h.hostname,
            "os": h.os,
            "agent_type": h.agent_type,
            "agent_version": h.agent_version,
            "identities": h.identities,
            "tags": h.tags.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "status": status.as_str(),
            "last_heartbeat_ms": h.last_heartbeat_ms,
            "membership": membership,
            "configs": configs,
            "agent_status": h.report.as_ref().map(|r| r.status.as_str()),
            "cpu_cores": h.report.as_ref().map(|r| r.cpu_cores),
            "memory_bytes": h.report.as_ref().map(|r| r.memory_bytes),
            "reported_ms": h.report.as_ref().map(|r| r.reported_ms),
            "report_error": h.report.as_ref().and_then(|r| r.error.as_deref()),
            "alarms_kept": h.alarms.len(),
        })
    }

    /// `GET /api/v1/alarms`: `group`, `since` (Unix seconds) and `limit`
    /// from the query string.
    fn alarms(&self, query: &str) -> Result<(u16, Value), ApiError> {
        let mut group = None;
        let mut since_ms = 0u64;
        let mut limit = 200usize;
        for (k, v) in crate::console::query_pairs(query) {
            match k.as_str() {
                "group" => group = Some(v),
                "since" => {
                    since_ms = v
                        .parse::<u64>()
                        .map_err(|_| {
                            api(
                                400,
                                format!("since={v:?}: expected Unix seconds (an integer)"),
                            )
                        })?
                        .saturating_mul(1000)
                }
                "limit" => {
                    limit = v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        api(400, format!("limit={v:?}: expected a positive integer"))
                    })?
                }
                other => {
                    return Err(api(
                        400,
                        format!("unknown query parameter {other:?}; use group, since and limit"),
                    ))
                }
            }
        }
        let st = self.lock();
        let g = match &group {
            Some(name) => Some(st.groups.get(name).ok_or_else(|| no_group(name))?),
            None => None,
        };
        Ok((
            200,
            json!({ "alarms": alarms_json(&st, g, since_ms, limit) }),
        ))
    }

    /// `GET /api/v1/overview`: what the console shows.
    pub fn overview(&self) -> Value {
        let st = self.lock();
        let groups: Vec<Value> = st
            .groups
            .values()
            .map(|g| {
                let hosts: Vec<Value> = st
                    .hosts
                    .iter()
                    .filter(|(_, h)| g.membership(&h.facts()) != Membership::NotMember)
                    .map(|(id, h)| {
                        let m = match g.membership(&h.facts()) {
                            Membership::OsMismatch { group_os, host_os } => format!(
                                "rejected: the group holds {} hosts and this host runs {}",
                                group_os.as_str(),
                                host_os.as_str()
                            ),
                            _ => "member".into(),
                        };
                        self.host_json(id, h, m)
                    })
                    .collect();
                let mut v = json!(group_form(g));
                v["hosts"] = json!(hosts);
                v
            })
            .collect();
        let other_hosts: Vec<Value> = st
            .hosts
            .iter()
            .filter(|(_, h)| {
                st.groups
                    .values()
                    .all(|g| g.membership(&h.facts()) == Membership::NotMember)
            })
            .map(|(id, h)| self.host_json(id, h, String::new()))
            .collect();
        json!({
            "now_ms": now_ms(),
            "heartbeat_timeout_ms": self.options.heartbeat_timeout.as_millis() as u64,
            "groups": groups,
            "other_hosts": other_hosts,
            "alarms": alarms_json(&st, None, 0, 50),
        })
    }

    /// The options it runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// Answers a heartbeat: records the host, then lists the config changes
    /// it must make. A compressed heartbeat from an instance this process
    /// has not seen, or with a gap in the sequence, gets `ReportFullState`.
    pub fn heartbeat(&self, req: HeartbeatRequest) -> HeartbeatResponse {
        let mut resp = HeartbeatResponse {
            request_id: req.request_id.clone(),
            capabilities: SERVER_CAP_REMEMBER_ATTRIBUTE
                | SERVER_CAP_REMEMBER_CONTINUOUS_PIPELINE_CONFIG_STATUS,
            common_response: Some(CommonResponse::default()),
            ..Default::default()
        };
        let id = text(&req.instance_id);
        if id.is_empty() {
            resp.common_response = Some(bad_request("instance_id is required".into()));
            return resp;
        }
        let now = now_ms();
        let mut st = self.lock();
        let full = req.flags & REQUEST_FLAG_FULL_STATE != 0 || req.attributes.is_some();
        let mut dirty = false;
        if full {
            let before = st.hosts.get(&id).cloned();
            let host = st.hosts.entry(id.clone()).or_default();
            let attrs = req.attributes.clone().unwrap_or_default();
            host.ip = text(&attrs.ip);
            host.hostname = text(&attrs.hostname);
            host.agent_version = text(&attrs.version);
            host.os = attrs.extras.get("os").map(|v| text(v)).unwrap_or_default();
            host.agent_type = req.agent_type.clone();
            host.startup_time = req.startup_time;
            host.identities = req
                .tags
                .iter()
                .filter(|t| t.name == USER_DEFINED_ID_TAG)
                .map(|t| t.value.clone())
                .collect();
            host.tags = req
                .tags
                .iter()
                .filter(|t| t.name != USER_DEFINED_ID_TAG)
                .map(|t| (t.name.clone(), t.value.clone()))
                .collect();
            host.configs = req
                .continuous_pipeline_configs
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        ReportedConfig {
                            version: c.version,
                            status: status_name(c.status).into(),
                            message: c.message.clone(),
                        },
                    )
                })
                .collect();
            host.last_heartbeat_ms = now;
            host.last_seq = Some(req.sequence_num);
            let (report, errors) = AgentReport::from_extras(&attrs.extras, &attrs.version);
            if let Some(first) = errors.first() {
                tracing::debug!(instance = %id, errors = errors.len(), "heartbeat report: {first}");
            }
            if let Some(report) = report {
                host.report = Some(HostReport {
                    status: report.status,
                    cpu_cores: report.cpu_cores,
                    memory_bytes: report.memory_bytes,
                    reported_ms: now,
                    error: errors.first().map(ToString::to_string),
                });
                for alarm in report.alarms {
                    host.alarms.push_back(ReceivedAlarm {
                        received_ms: now,
                        alarm,
                    });
                }
                let keep = self.options.alarms_per_host;
                if host.alarms.len() > keep {
                    let excess = host.alarms.len() - keep;
                    host.alarms.drain(..excess);
                }
            } else {
                // A full state without a report (an agent restarted without
                // one, or replaced by another): what it said before no
                // longer holds. Its alarms stay: they happened.
                host.report = None;
            }
            dirty = before.is_none_or(|b| !b.same_state(host));
        } else {
            let in_step = match st.hosts.get_mut(&id) {
                Some(h) => {
                    let in_step = h
                        .last_seq
                        .is_some_and(|s| s.wrapping_add(1) == req.sequence_num);
                    h.last_heartbeat_ms = now;
                    h.last_seq = Some(req.sequence_num);
                    in_step
                }
                None => false,
            };
            if !in_step {
                resp.flags |= RESPONSE_FLAG_REPORT_FULL_STATE;
                return resp;
            }
        }

        // The configs the host must run: those of the groups it belongs to.
        let Some(facts) = st.hosts.get(&id).map(HostRecord::facts) else {
            return resp;
        };
        let mut wanted = BTreeSet::new();
        for g in st.groups.values_mut() {
            if g.membership(&facts) != Membership::Member {
                continue;
            }
            if g.os.is_none() && facts.os.is_some() {
                // The first member that reports its OS fixes the group's.
                g.os = facts.os;
                dirty = true;
            }
            wanted.extend(g.configs.iter().cloned());
        }
        let reported = st
            .hosts
            .get(&id)
            .map(|h| h.configs.clone())
            .unwrap_or_default();
        for name in &wanted {
            if let Some(c) = st.configs.get(name) {
                if reported.get(name).is_none_or(|r| r.version != c.version) {
                    resp.continuous_pipeline_config_updates.push(ConfigDetail {
                        name: name.clone(),
                        version: c.version,
                        detail: if self.options.details_by_fetch {
                            Vec::new()
                        } else {
                            c.detail.clone().into_bytes()
                        },
                        extra: BTreeMap::new(),
                    });
                }
            }
        }
        if self.options.details_by_fetch && !resp.continuous_pipeline_config_updates.is_empty() {
            resp.flags |= RESPONSE_FLAG_FETCH_CONTINUOUS_PIPELINE_CONFIG_DETAIL;
        }
        for (name, r) in &reported {
            if r.version != -1 && !wanted.contains(name) {
                resp.continuous_pipeline_config_updates.push(ConfigDetail {
                    name: name.clone(),
                    version: -1,
                    ..Default::default()
                });
            }
        }
        if dirty {
            // A failed write is logged; the answer stands.
            let _ = self.persist(&st);
        }
        resp
    }

    /// Answers a fetch: the details of the requested configs that apply to
    /// the instance (version -1 for those that no longer do).
    pub fn fetch_pipeline_config(&self, req: FetchConfigRequest) -> FetchConfigResponse {
        let mut resp = FetchConfigResponse {
            request_id: req.request_id.clone(),
            common_response: Some(CommonResponse::default()),
            ..Default::default()
        };
        let st = self.lock();
        let Some(host) = st.hosts.get(&text(&req.instance_id)) else {
            resp.common_response = Some(CommonResponse {
                status: 404,
                error_message: b"unknown instance_id: send a heartbeat first".to_vec(),
            });
            return resp;
        };
        let facts = host.facts();
        let wanted: BTreeSet<&String> = st
            .groups
            .values()
            .filter(|g| g.membership(&facts) == Membership::Member)
            .flat_map(|g| g.configs.iter())
            .collect();
        for c in &req.continuous_pipeline_configs {
            let detail = match st.configs.get(&c.name) {
                Some(rec) if wanted.contains(&c.name) => ConfigDetail {
                    name: c.name.clone(),
                    version: rec.version,
                    detail: rec.detail.clone().into_bytes(),
                    extra: BTreeMap::new(),
                },
                _ => ConfigDetail {
                    name: c.name.clone(),
                    version: -1,
                    ..Default::default()
                },
            };
            resp.continuous_pipeline_config_updates.push(detail);
        }
        resp
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// The alarms of the hosts of `group` (all hosts: `None`) received at or
/// after `since_ms`, newest first, at most `limit`.
fn alarms_json(
    st: &State,
    group: Option<&MachineGroup>,
    since_ms: u64,
    limit: usize,
) -> Vec<Value> {
    let mut all: Vec<(&String, &HostRecord, &ReceivedAlarm)> = st
        .hosts
        .iter()
        .filter(|(_, h)| group.is_none_or(|g| g.membership(&h.facts()) == Membership::Member))
        .flat_map(|(id, h)| {
            h.alarms
                .iter()
                .filter(|a| a.received_ms >= since_ms)
                .map(move |a| (id, h, a))
        })
        .collect();
    all.sort_by_key(|a| std::cmp::Reverse(a.2.received_ms));
    all.into_iter()
        .take(limit)
        .map(|(id, h, r)| {
            json!({
                "instance_id": id,
                "hostname": h.hostname,
                "ip": h.ip,
                "alarm_type": r.alarm.alarm_type,
                "alarm_level": r.alarm.level,
                "level_name": r.alarm.level_name(),
                "alarm_message": r.alarm.message,
                "alarm_count": r.alarm.count,
                "config": r.alarm.config,
                "first_seen": r.alarm.first_seen_unix,
                "received_ms": r.received_ms,
            })
        })
        .collect()
}

fn bad_request(message: String) -> CommonResponse {
    CommonResponse {
        status: 400,
        error_message: message.into_bytes(),
    }
}

fn no_group(name: &str) -> ApiError {
    api(404, format!("no machine group named {name:?}"))
}

fn no_config(name: &str) -> ApiError {
    api(404, format!("no pipeline config named {name:?}"))
}

/// Serves a [`ConfigServer`] over HTTP on worker threads until stopped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `listen` (`127.0.0.1:0` picks a free port) and starts serving.
    pub fn start(listen: &str, server: Arc<ConfigServer>) -> Result<HttpServer, ServerError> {
        let listen_err = |message: String| ServerError::Listen {
            addr: listen.to_string(),
            message,
        };
        let http = tiny_http::Server::http(listen).map_err(|e| listen_err(e.to_string()))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| listen_err("not an IP address".into()))?;
        let http = Arc::new(http);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..2 {
            let (http, stop, server) = (Arc::clone(&http), Arc::clone(&stop), Arc::clone(&server));
            let t = std::thread::Builder::new()
                .name(format!("config-server-{i}"))
                .spawn(move || serve(&http, &server, &stop))
                .map_err(|e| listen_err(format!("cannot start a thread: {e}")))?;
            threads.push(t);
        }
        Ok(HttpServer {
            addr,
            stop,
            threads,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and closes the socket (the port is free afterwards).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(http: &tiny_http::Server, server: &ConfigServer, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mut request = match http.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("config server: receive failed: {e}");
                continue;
            }
        };
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(&mut body);
        let reply = match read {
            Err(e) => Reply::json(400, &json!({"error": format!("cannot read the body: {e}")})),
            Ok(_) if body.len() as u64 > MAX_BODY_BYTES => Reply::json(
                413,
                &json!({"error": format!("body larger than {MAX_BODY_BYTES} bytes")}),
            ),
            Ok(_) => {
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .map(|h| (h.field.as_str().as_str().to_string(), h.value.to_string()))
                    .collect();
                crate::console::respond(
                    server,
                    request.method().as_str(),
                    request.url(),
                    &headers,
                    &body,
                )
            }
        };
        let mut response =
            tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", reply.content_type) {
            response = response.with_header(h);
        }
        for (name, value) in &reply.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        if let Err(e) = request.respond(response) {
            tracing::debug!("config server: cannot answer: {e}");
        }
    }
}
