//! Fleet management end to end: identity sources on real files, the fleet
//! client against the reference server over 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::{json, Value};

use logtail_config_server::server::{ConfigServer, HttpServer, ServerOptions};
use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use logtail_sdk::host::{IdentitySources, IdentityWatcher};

const HEARTBEAT: Duration = Duration::from_millis(200);

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Identity sources in `dir`, with environment variable names unique to
/// the test (tests in one binary share the process environment).
fn sources(dir: &Path, tag: &str) -> IdentitySources {
    IdentitySources {
        user_defined_id_file: dir.join("user_defined_id"),
        user_defined_id_env: format!("LOGTAIL_TEST_{tag}_USER_DEFINED_ID"),
        users_dir: dir.join("users"),
        user_id_env: format!("LOGTAIL_TEST_{tag}_USER_ID"),
    }
}

#[test]
fn identity_edits_are_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let src = sources(dir.path(), "EDITS");
    std::fs::write(
        &src.user_defined_id_file,
        "  web-prod \n\n\tblue\nweb-prod\n",
    )
    .unwrap();
    std::fs::create_dir_all(&src.users_dir).unwrap();
    std::fs::write(src.users_dir.join("1234567890"), "").unwrap();
    std::env::set_var(&src.user_defined_id_env, " env-a, ,env-b,blue");
    std::env::set_var(&src.user_id_env, "555,1234567890");

    let w = IdentityWatcher::start(src.clone(), Duration::from_millis(50)).unwrap();
    let id = w.current();
    assert_eq!(id.user_defined_ids, ["web-prod", "blue", "env-a", "env-b"]);
    assert_eq!(id.accounts, ["1234567890", "555"]);
    assert!(id.authorises("555") && !id.authorises("1"));

    // Edit the file, add an account file, change the environment.
    std::fs::write(&src.user_defined_id_file, "green\n").unwrap();
    std::fs::write(src.users_dir.join("42"), "").unwrap();
    std::env::set_var(&src.user_defined_id_env, "");
    assert!(
        wait_until(Duration::from_secs(5), || {
            let id = w.current();
            id.user_defined_ids == ["green"] && id.accounts == ["1234567890", "42", "555"]
        }),
        "{:?}",
        w.current()
    );
    // Removing the file and the directory leaves only the environment.
    std::fs::remove_file(&src.user_defined_id_file).unwrap();
    std::fs::remove_dir_all(&src.users_dir).unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        let id = w.current();
        id.user_defined_ids.is_empty() && id.accounts == ["555", "1234567890"]
    }));
    w.stop();
}

struct Server {
    dir: PathBuf,
    options: ServerOptions,
    http: Option<HttpServer>,
    addr: SocketAddr,
    http_client: ureq::Agent,
}

impl Server {
    fn start(dir: &Path, timeout: Duration, details_by_fetch: bool) -> Server {
        let mut options = ServerOptions::new(dir.to_path_buf());
        options.heartbeat_timeout = timeout;
        options.details_by_fetch = details_by_fetch;
        let core = Arc::new(ConfigServer::open(options.clone()).unwrap());
        let http = HttpServer::start("127.0.0.1:0", core).unwrap();
        Server {
            dir: dir.to_path_buf(),
            addr: http.local_addr(),
            options,
            http: Some(http),
            http_client: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build(),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn down(&mut self) {
        if let Some(h) = self.http.take() {
            h.stop();
        }
    }

    /// Reopens the state from disk and serves it on the same port.
    fn up(&mut self) {
        let core = Arc::new(ConfigServer::open(self.options.clone()).unwrap());
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match HttpServer::start(&self.addr.to_string(), Arc::clone(&core)) {
                Ok(h) => {
                    self.http = Some(h);
                    return;
                }
                Err(e) if Instant::now() > end => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Calls the admin API; answers (status, JSON).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self
            .http_client
            .request(method, &format!("{}{path}", self.url()));
        let res = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        (
            status,
            serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
        )
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    fn hosts(&self, group: &str) -> Vec<Value> {
        self.ok(
            "GET",
            &format!("/api/v1/machine_groups/{group}/hosts"),
            None,
        )["hosts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn config_text(path: &str) -> String {
    format!("inputs:\n  - Type: input_file\n    FilePaths: [{path}]\nflushers:\n  - Type: flusher_stdout\n")
}

struct Agent {
    fleet: Fleet,
    changes: Receiver<ConfigChange>,
    _dir: tempfile::TempDir,
}

fn agent(servers: Vec<String>, ids: &str, tag: &str, data_dir: Option<&Path>) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let src = sources(dir.path(), tag);
    std::fs::write(&src.user_defined_id_file, ids).unwrap();
    let data = data_dir
        .map(Path::to_path_buf)
        .unwrap_or(dir.path().join("data"));
    let mut o = FleetOptions::new(servers, data);
    o.identity = src;
    o.heartbeat_interval = HEARTBEAT;
    o.identity_refresh = Duration::from_millis(100);
    o.max_backoff = Duration::from_millis(400);
    o.request_timeout = Duration::from_secs(2);
    o.ip = Some("10.9.8.7".parse().unwrap());
    o.tags = vec![("env".into(), "test".into())];
    let (fleet, changes) = Fleet::start(o).unwrap();
    Agent {
        fleet,
        changes,
        _dir: dir,
    }
}

fn next_change(a: &Agent, within: Duration) -> Option<ConfigChange> {
    a.changes.recv_timeout(within).ok()
}

fn upsert(change: Option<ConfigChange>) -> (String, i64, String) {
    match change {
        Some(ConfigChange::Upsert {
            name,
            version,
            detail,
        }) => (name, version, String::from_utf8(detail).unwrap()),
        other => panic!("expected an upsert, got {other:?}"),
    }
}

/// The whole life of a config: applied to a group it reaches only that
/// group's host within a heartbeat or so, a modification delivers the new
/// version, a FAILED report shows in the host list, and deletion delivers
/// a Remove.
fn config_life(details_by_fetch: bool) {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_secs(30), details_by_fetch);
    let tag = if details_by_fetch { "FETCH" } else { "INLINE" };
    let web = agent(vec![server.url()], "web-1\n", &format!("{tag}_WEB"), None);
    let db = agent(vec![server.url()], "db-1\n", &format!("{tag}_DB"), None);

    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "web-group", "type": "userdefined", "members": ["web-1"]})),
    );
    let created = server.ok(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "nginx", "detail": config_text("/var/log/nginx/*.log")})),
    );
    let v1 = created["version"].as_i64().unwrap();
    // Both hosts register.
    assert!(wait_until(Duration::from_secs(5), || server.ok(
        "GET",
        "/api/v1/hosts",
        None
    )["hosts"]
        .as_array()
        .is_some_and(|h| h.len() == 2)));

    let t = Instant::now();
    server.ok(
        "PUT",
        "/api/v1/machine_groups/web-group/configs/nginx",
        None,
    );
    let (name, version, detail) = upsert(next_change(&web, Duration::from_secs(3)));
    let took = t.elapsed();
    assert_eq!((name.as_str(), version), ("nginx", v1));
    assert!(detail.contains("/var/log/nginx/*.log"));
    eprintln!("config delivered {took:?} after it was applied to the group");
    // Within the next heartbeat, plus slack for a loaded CI machine.
    assert!(
        took < HEARTBEAT + Duration::from_millis(700),
        "took {took:?}"
    );
    // The other host gets nothing.
    assert_eq!(next_change(&db, HEARTBEAT * 3), None);

    web.fleet.report("nginx", v1, ConfigState::Applied);
    assert!(wait_until(Duration::from_secs(3), || {
        let hosts = server.hosts("web-group");
        hosts.len() == 1 && hosts[0]["configs"][0]["status"] == "APPLIED"
    }));
    let host = &server.hosts("web-group")[0];
    assert_eq!(host["status"], "OK");
    assert_eq!(host["ip"], "10.9.8.7");
    assert_eq!(host["identities"], json!(["web-1"]));
    assert_eq!(host["os"], std::env::consts::OS);
    assert_eq!(host["tags"], json!([{"name": "env", "value": "test"}]));
    assert_eq!(host["instance_id"], web.fleet.instance_id());

    // Modification: a new version.
    let modified = server.ok(
        "PUT",
        "/api/v1/pipeline_configs/nginx",
        Some(json!({"detail": config_text("/var/log/nginx/access.log")})),
    );
    let v2 = modified["version"].as_i64().unwrap();
    assert!(v2 > v1);
    let (_, version, detail) = upsert(next_change(&web, Duration::from_secs(3)));
    assert_eq!(version, v2);
    assert!(detail.contains("access.log"));
    // No repeat of an update the agent already holds.
    assert_eq!(next_change(&web, HEARTBEAT * 3), None);

    // FAILED with a message shows in the host list.
    web.fleet.report(
        "nginx",
        v2,
        ConfigState::Failed("inputs[0].FilePaths: no such directory".into()),
    );
    assert!(wait_until(Duration::from_secs(3), || {
        let c = &server.hosts("web-group")[0]["configs"][0];
        c["status"] == "FAILED"
            && c["version"] == v2
            && c["message"] == "inputs[0].FilePaths: no such directory"
    }));

    // Deletion: a Remove.
    server.ok("DELETE", "/api/v1/pipeline_configs/nginx", None);
    assert_eq!(
        next_change(&web, Duration::from_secs(3)),
        Some(ConfigChange::Remove {
            name: "nginx".into()
        })
    );
    assert!(wait_until(Duration::from_secs(3), || server
        .hosts("web-group")[0]["configs"]
        .as_array()
        .is_some_and(|c| c.is_empty())));
    assert_eq!(next_change(&db, Duration::ZERO), None);
    web.fleet.stop();
    db.fleet.stop();
}

#[test]
fn config_reaches_only_its_group_inline() {
    config_life(false);
}

#[test]
fn config_reaches_only_its_group_by_fetch() {
    config_life(true);
}

#[test]
fn ip_groups_and_removal_from_group() {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_secs(30), false);
    server.ok(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "sys", "detail": config_text("/var/log/syslog")})),
    );
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "by-ip", "type": "ip", "members": ["10.9.8.7"], "configs": ["sys"]})),
    );
    let a = agent(vec![server.url()], "", "IPGROUP", None);
    let (name, _, _) = upsert(next_change(&a, Duration::from_secs(3)));
    assert_eq!(name, "sys");
    server.ok("DELETE", "/api/v1/machine_groups/by-ip/configs/sys", None);
    assert_eq!(
        next_change(&a, Duration::from_secs(3)),
        Some(ConfigChange::Remove { name: "sys".into() })
    );
    a.fleet.stop();
}

#[test]
fn identity_change_moves_a_host_between_groups() {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_secs(30), false);
    server.ok(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "app", "detail": config_text("/var/log/app.log")})),
    );
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(
            json!({"name": "blue", "type": "userdefined", "members": ["blue"], "configs": ["app"]}),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let src = sources(dir.path(), "MOVE");
    std::fs::write(&src.user_defined_id_file, "green\n").unwrap();
    let mut o = FleetOptions::new(vec![server.url()], dir.path().join("data"));
    o.identity = src.clone();
    o.heartbeat_interval = HEARTBEAT;
    o.identity_refresh = Duration::from_millis(50);
    let (fleet, changes) = Fleet::start(o).unwrap();
    assert!(changes.recv_timeout(HEARTBEAT * 3).is_err());
    std::fs::write(&src.user_defined_id_file, "blue\n").unwrap();
    let got = changes.recv_timeout(Duration::from_secs(3)).ok();
    assert_eq!(upsert(got).0, "app");
    assert_eq!(fleet.identity().user_defined_ids, ["blue"]);
    fleet.stop();
}

#[test]
fn host_status_turns_fail_when_heartbeats_stop() {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_millis(600), false);
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "all", "type": "ip", "members": ["10.9.8.7"]})),
    );
    let a = agent(vec![server.url()], "", "STATUS", None);
    assert!(wait_until(Duration::from_secs(3), || {
        let h = server.hosts("all");
        h.len() == 1 && h[0]["status"] == "OK"
    }));
    // Still OK a while later: heartbeats keep arriving.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(server.hosts("all")[0]["status"], "OK");
    a.fleet.stop();
    assert!(wait_until(Duration::from_secs(3), || server.hosts("all")
        [0]["status"]
        == "FAIL"));
}

#[test]
fn client_backs_off_and_reconnects_then_restart_reemits_kept_configs() {
    let sdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let mut server = Server::start(sdir.path(), Duration::from_secs(30), false);
    // A second, dead server first: the client fails over to the live one.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    server.ok(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "one", "detail": config_text("/var/log/one.log")})),
    );
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "grp", "type": "userdefined", "members": ["h"], "configs": ["one"]})),
    );
    let a = agent(
        vec![dead.clone(), server.url()],
        "h\n",
        "BACKOFF",
        Some(adir.path()),
    );
    assert_eq!(upsert(next_change(&a, Duration::from_secs(3))).0, "one");
    a.fleet.report("one", 1, ConfigState::Applied);

    // Server down: the client keeps its config and retries.
    server.down();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        next_change(&a, Duration::ZERO),
        None,
        "no change while down"
    );
    assert_eq!(a.fleet.configs().len(), 1);
    // A change made while it was down (the state survives the restart)...
    {
        let core = ConfigServer::open(server.options.clone()).unwrap();
        let r = core.handle(
            "POST",
            "/api/v1/pipeline_configs",
            serde_json::to_vec(&json!({"name": "two", "detail": config_text("/var/log/two.log")}))
                .unwrap()
                .as_slice(),
        );
        assert_eq!(r.status, 201);
        let r = core.handle("PUT", "/api/v1/machine_groups/grp/configs/two", b"");
        assert_eq!(r.status, 200);
    }
    // ...arrives once the server is back on the same port.
    let t = Instant::now();
    server.up();
    let (name, _, _) = upsert(next_change(&a, Duration::from_secs(5)));
    assert_eq!(name, "two");
    // Backoff is capped at 400 ms: reconnects within about that.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    a.fleet.stop();
    drop(a.changes);

    // Restart while the server is down: the kept configs run at once.
    server.down();
    let mut o = FleetOptions::new(vec![server.url()], adir.path().to_path_buf());
    o.identity = sources(adir.path(), "BACKOFF2");
    o.heartbeat_interval = HEARTBEAT;
    let (fleet, changes) = Fleet::start(o).unwrap();
    let mut names: Vec<String> = changes.try_iter().map(|c| upsert(Some(c)).0).collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
    fleet.stop();
    assert!(server.dir.join("server-state.json").exists());
}

#[test]
fn admin_api_validation_errors_say_why() {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_secs(30), false);
    let cases: &[(&str, &str, Value, u16, &str)] = &[
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "Web", "type": "ip", "members": []}),
            400,
            "uppercase letters are not allowed",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "ab", "type": "ip"}),
            400,
            "too short",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "web-", "type": "ip"}),
            400,
            "must end with a lowercase letter or digit",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "web", "type": "ip", "members": ["1.2.3"]}),
            400,
            "\"1.2.3\" is not an IP address",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "web", "type": "hostname"}),
            400,
            "use \"ip\" or \"userdefined\"",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "web", "type": "ip", "os": "macos"}),
            400,
            "os \"macos\" is unknown",
        ),
        (
            "POST",
            "/api/v1/machine_groups",
            json!({"name": "web", "type": "ip", "memebers": []}),
            400,
            "unknown field `memebers`",
        ),
        (
            "POST",
            "/api/v1/pipeline_configs",
            json!({"name": "x", "detail": "inputs: []\nflushers: []\n"}),
            400,
            "at least one input is required",
        ),
        (
            "POST",
            "/api/v1/pipeline_configs",
            json!({"name": "../x", "detail": config_text("/a")}),
            400,
            "'.' is not allowed",
        ),
        (
            "PUT",
            "/api/v1/machine_groups/none/configs/none",
            json!(null),
            404,
            "no pipeline config named",
        ),
        (
            "GET",
            "/api/v1/machine_groups/none",
            json!(null),
            404,
            "no machine group named \"none\"",
        ),
        (
            "PATCH",
            "/api/v1/pipeline_configs",
            json!({}),
            405,
            "PATCH is not allowed",
        ),
    ];
    for (method, path, body, status, why) in cases {
        let body = (!body.is_null()).then(|| body.clone());
        let (got, v) = server.call(method, path, body);
        assert_eq!(got, *status, "{method} {path}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{method} {path}: {msg}");
    }
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "web", "type": "ip"})),
    );
    let (got, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "web", "type": "ip"})),
    );
    assert_eq!(got, 409, "{v}");
}

#[test]
fn a_group_does_not_mix_operating_systems() {
    let sdir = tempfile::tempdir().unwrap();
    let server = Server::start(sdir.path(), Duration::from_secs(30), false);
    server.ok(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "c", "detail": config_text("/var/log/c.log")})),
    );
    let other = if std::env::consts::OS == "windows" {
        "linux"
    } else {
        "windows"
    };
    server.ok(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "other-os", "type": "userdefined", "members": ["h"], "os": other, "configs": ["c"]})),
    );
    let a = agent(vec![server.url()], "h\n", "OS", None);
    assert!(wait_until(Duration::from_secs(3), || {
        let h = server.hosts("other-os");
        h.len() == 1
            && h[0]["membership"]
                .as_str()
                .is_some_and(|m| m.starts_with("rejected"))
    }));
    assert_eq!(next_change(&a, HEARTBEAT * 2), None);
    // A group without an OS takes the first member's.
    server.ok(
        "PUT",
        "/api/v1/machine_groups/other-os",
        Some(json!({"type": "userdefined", "members": ["h"]})),
    );
    assert_eq!(upsert(next_change(&a, Duration::from_secs(3))).0, "c");
    let g = server.ok("GET", "/api/v1/machine_groups/other-os", None);
    assert_eq!(g["os"], std::env::consts::OS);
    a.fleet.stop();
}
