//! An SLS-compatible PutLogs receiver on a real socket, for tests and for
//! trying the agent without a cloud account.
//!
//! It checks every request the way SLS does, with code independent of
//! `logtail_core::sls`: the v1 and v4 signatures are recomputed here from
//! the published rules, bodies are decompressed with the reference C
//! libraries (`lz4`, `zstd`) and decoded with the official
//! `aliyun-log-sdk-protobuf` crate. A request that fails a check is
//! answered as SLS would (401 `SignatureNotMatch`, 400 `PostBodyInvalid`…)
//! and recorded in [`Receiver::violations`].
//!
//! Like SLS, it finds the project in the `Host` header,
//! `{project}.{endpoint}[:port]`: a Host that is a bare address or host
//! name (`127.0.0.1:8080`) names no project and is answered 404
//! `ProjectNotExist`, whatever `x-log-project` says; so is a project other
//! than [`ReceiverOptions::project`].
//!
//! Faults can be injected ([`Fault`]): error answers, a connection reset
//! after the data was stored, slow answers.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Digest as _;

/// One log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLog {
    /// `Time`.
    pub time: u32,
    /// `Time_ns`.
    pub time_ns: Option<u32>,
    /// Contents in order.
    pub contents: Vec<(String, String)>,
    /// The group's tags (`__path__`, `__pack_id__`…).
    pub tags: BTreeMap<String, String>,
    /// The group's topic.
    pub topic: Option<String>,
    /// The group's source.
    pub source: Option<String>,
    /// The project it was posted to (the first label of `Host`).
    pub project: String,
    /// The logstore it was posted to.
    pub logstore: String,
    /// `key` of `/shards/route`, if routed.
    pub hash_key: Option<String>,
}

impl StoredLog {
    /// The value of a content key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.contents
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A fault to inject into the next answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer with this status and SLS error code (data not stored).
    Error {
        /// HTTP status.
        status: u16,
        /// `errorCode`.
        code: String,
    },
    /// Store the data, then close the connection without an answer.
    ResetAfterStore,
    /// Store the data and answer after this delay.
    Slow(Duration),
    /// Answer `RequestTimeExpired` unless the request's date is within 15
    /// minutes of the receiver's clock shifted by this many seconds.
    ClockAhead(i64),
}

/// Receiver settings.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// The AccessKey id requests must be signed with.
    pub access_key_id: String,
    /// Its secret.
    pub access_key_secret: String,
    /// Address to listen on (`127.0.0.1:0` picks a port).
    pub listen: SocketAddr,
    /// The only project that exists here: a request whose `Host` names
    /// another is answered 404 `ProjectNotExist`. `None` (the default)
    /// takes any well-formed project name, but `Host` must still name one.
    pub project: Option<String>,
    /// Keep every accepted log for [`Receiver::logs`] (the default). When
    /// `false` the receiver still checks signature, MD5, sizes and decodes
    /// every body with the official crate, but only counts the logs and
    /// their content bytes ([`Receiver::log_count`],
    /// [`Receiver::content_bytes`]): for benches that send gigabytes.
    pub store_logs: bool,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            access_key_id: "test-key-id".into(),
            access_key_secret: "test-key-secret".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            project: None,
            store_logs: true,
        }
    }
}

#[derive(Default)]
struct State {
    logs: Vec<StoredLog>,
    /// Logs accepted (stored or only counted).
    log_count: u64,
    /// Sum of the lengths of the accepted logs' content values.
    content_bytes: u64,
    violations: Vec<String>,
    fault: Option<(Fault, Option<u64>)>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    requests: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One HTTP request as read off the socket.
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// One HTTP answer.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Receiver {
    /// Binds and starts serving (a thread per connection).
    pub fn start(opts: ReceiverOptions) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(opts.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let requests = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let opts = Arc::new(opts);
        let thread = {
            let (state, requests, accepted, stop) = (
                Arc::clone(&state),
                Arc::clone(&requests),
                Arc::clone(&accepted),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (state, requests, accepted, stop, opts) = (
                                Arc::clone(&state),
                                Arc::clone(&requests),
                                Arc::clone(&accepted),
                                Arc::clone(&stop),
                                Arc::clone(&opts),
                            );
                            std::thread::spawn(move || {
                                serve(conn, &opts, &state, &requests, &accepted, &stop)
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(Receiver {
            addr,
            state,
            requests,
            accepted,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, for a flusher's `Endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` for the next `count` requests (`None`: until changed).
    pub fn set_fault(&self, fault: Fault, count: Option<u64>) {
        lock(&self.state).fault = Some((fault, count));
    }

    /// Every log stored so far.
    pub fn logs(&self) -> Vec<StoredLog> {
        lock(&self.state).logs.clone()
    }

    /// Number of logs accepted (stored, or only counted when
    /// [`ReceiverOptions::store_logs`] is off).
    pub fn log_count(&self) -> usize {
        lock(&self.state).log_count as usize
    }

    /// Total length of the content values of the accepted logs.
    pub fn content_bytes(&self) -> u64 {
        lock(&self.state).content_bytes
    }

    /// Requests that broke the protocol (bad signature, MD5, size…).
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests whose data was stored.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request; `None` at end of stream or on garbage.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let url = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        if k.eq_ignore_ascii_case("content-length") {
            len = v.parse().ok()?;
        }
        headers.push((k, v));
    }
    if len > 256 << 20 {
        return None;
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        url,
        headers,
        body,
    })
}

fn serve(
    conn: TcpStream,
    opts: &ReceiverOptions,
    state: &Mutex<State>,
    requests: &AtomicU64,
    accepted: &AtomicU64,
    stop: &AtomicBool,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut w = write_half;
    let mut r = BufReader::new(conn);
    while !stop.load(Ordering::SeqCst) {
        // Wait for the next request without holding the connection forever.
        match r.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        let _ = r.get_ref().set_read_timeout(Some(Duration::from_secs(10)));
        let Some(req) = read_request(&mut r) else {
            return;
        };
        let _ = r
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
        requests.fetch_add(1, Ordering::SeqCst);
        let Some(resp) = handle(&req, opts, state, accepted) else {
            // Reset: linger 0 makes close send RST.
            let l = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&w),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &l as *const libc::linger as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
            return;
        };
        let mut out = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            resp.status,
            resp.body.len()
        );
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&resp.body);
        if w.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn error_response(status: u16, code: &str, message: &str, clock_offset: i64) -> Response {
    let body = serde_json::json!({"errorCode": code, "errorMessage": message}).to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + clock_offset;
    Response {
        status,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("x-log-requestid".into(), "RECEIVER-0001".into()),
            ("x-log-time".into(), now.to_string()),
        ],
        body: body.into_bytes(),
    }
}

fn ok_response() -> Response {
    Response {
        status: 200,
        headers: vec![("x-log-requestid".into(), "RECEIVER-OK".into())],
        body: Vec::new(),
    }
}

/// Answers a request; `None` means "reset the connection instead".
fn handle(
    req: &Request,
    opts: &ReceiverOptions,
    state: &Mutex<State>,
    accepted: &AtomicU64,
) -> Option<Response> {
    let fault = {
        let mut st = lock(state);
        match st.fault.as_mut() {
            Some((f, Some(n))) if *n > 0 => {
                *n -= 1;
                f.clone()
            }
            Some((f, None)) => f.clone(),
            _ => Fault::None,
        }
    };
    if let Fault::Error { status, code } = &fault {
        return Some(error_response(
            *status,
            code,
            "injected by the test receiver",
            0,
        ));
    }
    let checked = match check(req, opts, &fault) {
        Ok(v) => v,
        Err((status, code, message)) => {
            if code != "RequestTimeExpired" {
                lock(state)
                    .violations
                    .push(format!("{} {}: {code}: {message}", req.method, req.url));
            }
            let offset = match fault {
                Fault::ClockAhead(secs) => secs,
                _ => 0,
            };
            return Some(error_response(status, &code, &message, offset));
        }
    };
    let count: usize = checked.groups.iter().map(|g| g.logs().len()).sum();
    let bytes: usize = checked
        .groups
        .iter()
        .flat_map(|g| g.logs())
        .flat_map(|l| l.contents())
        .map(|c| c.value().len())
        .sum();
    let logs = if opts.store_logs {
        checked.into_stored()
    } else {
        Vec::new()
    };
    {
        let mut st = lock(state);
        st.logs.extend(logs);
        st.log_count += count as u64;
        st.content_bytes += bytes as u64;
    }
    accepted.fetch_add(1, Ordering::SeqCst);
    match fault {
        // Stored, but the client never hears so: it will send it again.
        Fault::ResetAfterStore => None,
        Fault::Slow(d) => {
            std::thread::sleep(d);
            Some(ok_response())
        }
        _ => Some(ok_response()),
    }
}

type CheckError = (u16, String, String);

fn bad(status: u16, code: &str, message: impl Into<String>) -> CheckError {
    (status, code.to_string(), message.into())
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A request that passed every check, decoded.
struct Checked {
    groups: Vec<aliyun_log_sdk_protobuf::LogGroup>,
    project: String,
    logstore: String,
    hash_key: Option<String>,
}

impl Checked {
    fn into_stored(self) -> Vec<StoredLog> {
        let mut out = Vec::new();
        for g in self.groups {
            let tags: BTreeMap<String, String> = g
                .log_tags()
                .iter()
                .map(|t| (t.key().clone(), t.value().clone()))
                .collect();
            for log in g.logs() {
                out.push(StoredLog {
                    time: *log.time(),
                    time_ns: *log.time_ns(),
                    contents: log
                        .contents()
                        .iter()
                        .map(|c| (c.key().clone(), c.value().clone()))
                        .collect(),
                    tags: tags.clone(),
                    topic: g.topic().clone(),
                    source: g.source().clone(),
                    project: self.project.clone(),
                    logstore: self.logstore.clone(),
                    hash_key: self.hash_key.clone(),
                });
            }
        }
        out
    }
}

/// Checks one PutLogs request like SLS; returns it decoded.
fn check(req: &Request, opts: &ReceiverOptions, fault: &Fault) -> Result<Checked, CheckError> {
    let body = &req.body[..];
    if req.method != "POST" {
        return Err(bad(405, "MethodNotAllowed", req.method.clone()));
    }
    // Absolute-form request targets (`POST http://host/path`, as HTTP
    // clients send them through a proxy) are accepted as servers must
    // (RFC 9112 §3.2.2): only the path and query are used.
    let url = match req
        .url
        .strip_prefix("http://")
        .or_else(|| req.url.strip_prefix("https://"))
    {
        Some(rest) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None => req.url.clone(),
    };
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (url.clone(), None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    // ["", "logstores", name, "shards", "lb" | "route"]
    let (logstore, hash_key) = match parts.as_slice() {
        ["", "logstores", ls, "shards", "lb"] if query.is_none() => (ls.to_string(), None),
        ["", "logstores", ls, "shards", "route"] => {
            let key = query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("key="))
                .ok_or_else(|| bad(400, "ParameterInvalid", "route without key"))?;
            (ls.to_string(), Some(key.to_string()))
        }
        _ => return Err(bad(404, "InvalidPath", path.clone())),
    };
    let project = project_of(req, opts)?;
    let need = |name: &str| {
        header(req, name).ok_or_else(|| bad(400, "MissingHeader", format!("{name} missing")))
    };
    if need("x-log-apiversion")? != "0.6.0" {
        return Err(bad(
            400,
            "ParameterInvalid",
            "x-log-apiversion must be 0.6.0",
        ));
    }
    if need("Content-Type")? != "application/x-protobuf" {
        return Err(bad(400, "ParameterInvalid", "Content-Type"));
    }
    let md5 = format!("{:X}", md5::Md5::digest(body));
    if need("Content-MD5")? != md5 {
        return Err(bad(
            400,
            "InvalidContentMD5",
            "Content-MD5 does not match the body",
        ));
    }
    let raw_size: usize = need("x-log-bodyrawsize")?
        .parse()
        .map_err(|_| bad(400, "InvalidBodyRawSize", "not a number"))?;
    if raw_size > 64 << 20 {
        return Err(bad(400, "PostBodyTooLarge", raw_size.to_string()));
    }
    let raw = match header(req, "x-log-compresstype").unwrap_or("") {
        "" => body.to_vec(),
        "lz4" => lz4::block::decompress(body, Some(raw_size as i32))
            .map_err(|e| bad(400, "PostBodyInvalid", format!("lz4: {e}")))?,
        "zstd" => zstd::bulk::decompress(body, raw_size)
            .map_err(|e| bad(400, "PostBodyInvalid", format!("zstd: {e}")))?,
        other => return Err(bad(400, "InvalidCompressType", other.to_string())),
    };
    if raw.len() != raw_size {
        return Err(bad(
            400,
            "InvalidBodyRawSize",
            format!("x-log-bodyrawsize {raw_size}, decompressed {}", raw.len()),
        ));
    }
    verify_signature(req, &path, query.as_deref(), body, opts)?;
    // Date: SLS refuses requests more than 15 minutes off its clock.
    if let Fault::ClockAhead(secs) = fault {
        let date = header(req, "Date").and_then(parse_rfc1123);
        let sent = header(req, "x-log-date").and_then(parse_v4_date).or(date);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + secs;
        match sent {
            Some(t) if (t - now).abs() <= 900 => {}
            _ => return Err(bad(400, "RequestTimeExpired", "request time expired")),
        }
    }
    // The official crate decodes a LogGroupList; wrap the group as its field 1.
    let mut list = Vec::with_capacity(raw.len() + 10);
    list.push(0x0a);
    let mut n = raw.len();
    while n >= 0x80 {
        list.push((n as u8) | 0x80);
        n >>= 7;
    }
    list.push(n as u8);
    list.extend_from_slice(&raw);
    let groups: Vec<aliyun_log_sdk_protobuf::LogGroup> =
        aliyun_log_sdk_protobuf::LogGroupList::decode(&list)
            .map_err(|e| bad(400, "PostBodyInvalid", format!("protobuf: {e}")))?
            .into();
    Ok(Checked {
        groups,
        project,
        logstore,
        hash_key,
    })
}

/// Whether `s` is a valid SLS project name: 3 to 63 lowercase letters,
/// digits and hyphens, starting and ending with a letter or digit.
fn is_project_name(s: &str) -> bool {
    let ok_end = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && ok_end(s.bytes().next())
        && ok_end(s.bytes().last())
}

/// The project a request is for: the first label of `Host`, which SLS
/// reads as `{project}.{endpoint}[:port]`. A Host that is an address, has
/// no label before the endpoint, or names another project than the one
/// served (or than `x-log-project`) is answered 404 `ProjectNotExist`.
fn project_of(req: &Request, opts: &ReceiverOptions) -> Result<String, CheckError> {
    let host = header(req, "Host").ok_or_else(|| bad(400, "MissingHeader", "Host missing"))?;
    // Host names are case-insensitive.
    let host = host.to_ascii_lowercase();
    let host = host.as_str();
    let not_exist = |why: String| {
        bad(
            404,
            "ProjectNotExist",
            format!("The Project does not exist : {why}"),
        )
    };
    // Without the port (`[v6]:p`, `v4:p`, `name:p`).
    let name = match host.rsplit_once(':') {
        Some((h, p))
            if p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Err(not_exist(format!(
            "Host {host:?} is an address and names no project (expected {{project}}.{host})"
        )));
    }
    let Some((project, endpoint)) = name.split_once('.') else {
        return Err(not_exist(format!(
            "Host {host:?} names no project (expected {{project}}.{host})"
        )));
    };
    if endpoint.is_empty() || !is_project_name(project) {
        return Err(not_exist(format!("Host {host:?} names no valid project")));
    }
    if let Some(want) = &opts.project {
        if project != want {
            return Err(not_exist(project.to_string()));
        }
    }
    if let Some(named) = header(req, "x-log-project") {
        if named != project {
            return Err(not_exist(format!(
                "x-log-project {named:?} but Host {host:?} is for project {project:?}"
            )));
        }
    }
    Ok(project.to_string())
}

fn verify_signature(
    req: &Request,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    opts: &ReceiverOptions,
) -> Result<(), CheckError> {
    let auth = header(req, "Authorization")
        .ok_or_else(|| bad(401, "Unauthorized", "no Authorization header"))?;
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.sort();
    let signed: Vec<&(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-log-") || k.starts_with("x-acs-"))
        .collect();
    let mut query_pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    query_pairs.sort();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    if let Some(rest) = auth.strip_prefix("LOG ") {
        let (id, sig) = rest
            .split_once(':')
            .ok_or_else(|| bad(401, "Unauthorized", "malformed Authorization"))?;
        if id != opts.access_key_id {
            return Err(bad(401, "Unauthorized", "unknown AccessKeyId"));
        }
        let mut s = format!(
            "POST\n{}\n{}\n{}\n",
            get("content-md5"),
            get("content-type"),
            get("date")
        );
        for (k, v) in &signed {
            s.push_str(&format!("{k}:{v}\n"));
        }
        s.push_str(path);
        if !query_pairs.is_empty() {
            s.push('?');
            let q: Vec<String> = query_pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&q.join("&"));
        }
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(opts.access_key_secret.as_bytes())
            .map_err(|_| bad(500, "InternalServerError", "hmac key"))?;
        mac.update(s.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        if sig != want {
            return Err(bad(
                401,
                "SignatureNotMatch",
                format!("v1 string to sign was {s:?}"),
            ));
        }
        return Ok(());
    }
    if let Some(rest) = auth.strip_prefix("SLS4-HMAC-SHA256 ") {
        let mut credential = "";
        let mut signature = "";
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = v;
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = v;
            }
        }
        let mut cred = credential.split('/');
        let (Some(id), Some(day), Some(region), Some("sls"), Some("aliyun_v4_request")) = (
            cred.next(),
            cred.next(),
            cred.next(),
            cred.next(),
            cred.next(),
        ) else {
            return Err(bad(401, "Unauthorized", "malformed v4 credential"));
        };
        if id != opts.access_key_id {
            return Err(bad(401, "Unauthorized", "unknown AccessKeyId"));
        }
        let payload_hash = hex(&sha2::Sha256::digest(body));
        if get("x-log-content-sha256") != payload_hash {
            return Err(bad(
                400,
                "InvalidContentSha256",
                "x-log-content-sha256 does not match",
            ));
        }
        let canon_headers: Vec<&(String, String)> = headers
            .iter()
            .filter(|(k, _)| {
                k == "content-type"
                    || k == "host"
                    || k.starts_with("x-log-")
                    || k.starts_with("x-acs-")
            })
            .collect();
        let canon_query: Vec<String> = query_pairs
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    pct(k)
                } else {
                    format!("{}={}", pct(k), pct(v))
                }
            })
            .collect();
        let mut canonical = format!("POST\n{path}\n{}\n", canon_query.join("&"));
        for (k, v) in &canon_headers {
            canonical.push_str(&format!("{k}:{}\n", v.trim()));
        }
        canonical.push('\n');
        let names: Vec<&str> = canon_headers.iter().map(|(k, _)| k.as_str()).collect();
        canonical.push_str(&names.join(";"));
        canonical.push('\n');
        canonical.push_str(&payload_hash);
        let scope = format!("{day}/{region}/sls/aliyun_v4_request");
        let to_sign = format!(
            "SLS4-HMAC-SHA256\n{}\n{scope}\n{}",
            get("x-log-date"),
            hex(&sha2::Sha256::digest(canonical.as_bytes()))
        );
        let hmac = |key: &[u8], data: &[u8]| -> Vec<u8> {
            let mut m = match Hmac::<sha2::Sha256>::new_from_slice(key) {
                Ok(m) => m,
                Err(_) => return Vec::new(),
            };
            m.update(data);
            m.finalize().into_bytes().to_vec()
        };
        let k1 = hmac(
            format!("aliyun_v4{}", opts.access_key_secret).as_bytes(),
            day.as_bytes(),
        );
        let k2 = hmac(&k1, region.as_bytes());
        let k3 = hmac(&k2, b"sls");
        let key = hmac(&k3, b"aliyun_v4_request");
        let want = hex(&hmac(&key, to_sign.as_bytes()));
        if signature != want {
            return Err(bad(
                401,
                "SignatureNotMatch",
                format!("v4 canonical request was {canonical:?}"),
            ));
        }
        return Ok(());
    }
    Err(bad(401, "Unauthorized", "unknown Authorization scheme"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Mon, 3 Jan 2010 08:33:47 GMT` → unix seconds.
fn parse_rfc1123(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace().skip(1);
    let day: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    let hms: Vec<i64> = it
        .next()?
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    Some(
        days_from_civil(year, m, day) * 86400
            + hms.first()? * 3600
            + hms.get(1)? * 60
            + hms.get(2)?,
    )
}

/// `20220808T032330Z` → unix seconds.
fn parse_v4_date(s: &str) -> Option<i64> {
    if s.len() != 16 {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    Some(
        days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?) * 86400
            + n(9, 11)? * 3600
            + n(11, 13)? * 60
            + n(13, 15)?,
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
