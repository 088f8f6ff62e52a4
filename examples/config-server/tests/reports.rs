//! What agents report about themselves in their heartbeats, through the
//! real `logtail-config-server` binary: the host list shows status, CPU,
//! memory and version; `GET /api/v1/alarms` lists each alarm once with its
//! count, also one raised while the server was down; the admin token
//! guards the admin API but not the agent endpoints.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use logtail_sdk::fleet::client::{Fleet, FleetOptions};
use logtail_sdk::fleet::{AgentReport, AlarmReport, ReportProvider};
use logtail_sdk::host::IdentitySources;
use logtail_testkit::{wait_until, ConfigServerProc};

/// The `logtail-config-server` binary of this package.
const CONFIG_SERVER: &str = env!("CARGO_BIN_EXE_logtail-config-server");
const TOKEN: &str = "test-admin-token-42";

fn spawn(data: &Path, listen: &str) -> ConfigServerProc {
    let mut cmd = Command::new(CONFIG_SERVER);
    cmd.args(["--listen", listen, "--heartbeat-timeout", "5", "--data-dir"])
        .arg(data)
        .env("LOGTAIL_ADMIN_TOKEN", TOKEN);
    let mut s = ConfigServerProc::start(cmd);
    s.token = Some(TOKEN.into());
    s
}

/// GET `path` with the given `Authorization` header: (status, body).
fn get_with(url: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut req = ureq::get(&format!("{url}{path}"));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    match req.call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

fn alarms(server: &ConfigServerProc, query: &str) -> Vec<Value> {
    let (s, v) = server.call("GET", &format!("/api/v1/alarms{query}"), None);
    assert_eq!(s, 200, "{v}");
    v["alarms"].as_array().cloned().unwrap_or_default()
}

#[test]
fn heartbeats_carry_status_resources_and_alarms() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let mut server = spawn(&data, "127.0.0.1:0");
    let url = server.url.clone();

    // The token guards the admin API: none, a wrong one, the right one.
    let (s, body) = get_with(&url, "/api/v1/hosts", None);
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("admin token required"), "{body}");
    let (s, body) = get_with(&url, "/api/v1/hosts", Some("Bearer wrong-token-0"));
    assert_eq!(s, 401, "{body}");
    assert!(
        body.contains("wrong admin token") && !body.contains(TOKEN),
        "{body}"
    );
    let (s, _) = get_with(&url, "/api/v1/hosts", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(s, 200);

    let (s, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "web", "type": "userdefined", "members": ["web-7"]})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "dbs", "type": "userdefined", "members": ["db-1"]})),
    );
    assert_eq!(s, 201, "{v}");

    // An agent whose provider reports a status, CPU, memory, a version and
    // alarms handed over once (drained).
    let pending: Arc<Mutex<Vec<AlarmReport>>> = Arc::default();
    let calls = Arc::new(AtomicU64::new(0));
    let provider = {
        let (pending, calls) = (Arc::clone(&pending), Arc::clone(&calls));
        ReportProvider::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut r = AgentReport::ok();
            r.status = "send_error".into();
            r.cpu_cores = 0.375;
            r.memory_bytes = 123_456_789;
            r.version = "9.9.9-test".into();
            r.alarms = std::mem::take(&mut *pending.lock().unwrap());
            r
        })
    };
    let mut alarm = AlarmReport::new("PARSE_LOG_FAIL_ALARM", 2, "parse failed: <line 1>");
    alarm.count = 12;
    alarm.config = Some("app".into());
    pending.lock().unwrap().push(alarm);

    let ids = tmp.path().join("user_defined_id");
    std::fs::write(&ids, "web-7\n").unwrap();
    let mut o = FleetOptions::new(vec![url.clone()], tmp.path().join("agent"));
    o.identity = IdentitySources {
        user_defined_id_file: ids,
        user_defined_id_env: String::new(),
        users_dir: tmp.path().join("users"),
        user_id_env: String::new(),
    };
    o.heartbeat_interval = Duration::from_millis(100);
    o.max_backoff = Duration::from_millis(200);
    o.request_timeout = Duration::from_secs(2);
    o.report = Some(provider);
    // The agent endpoints need no token.
    let (fleet, _changes) = Fleet::start(o).unwrap();

    let host = |server: &ConfigServerProc| -> Option<Value> {
        let (s, v) = server.call("GET", "/api/v1/machine_groups/web/hosts", None);
        assert_eq!(s, 200, "{v}");
        v["hosts"].as_array()?.first().cloned()
    };
    assert!(
        wait_until(Duration::from_secs(10), || host(&server)
            .is_some_and(|h| h["agent_status"] == "send_error")),
        "{:?}",
        host(&server)
    );
    let h = host(&server).unwrap();
    assert_eq!(h["status"], "OK");
    assert_eq!(h["agent_version"], "9.9.9-test");
    assert_eq!(h["cpu_cores"], 0.375);
    assert_eq!(h["memory_bytes"], 123_456_789);
    assert!(h["report_error"].is_null(), "{h}");

    // The alarm, once, with its count; still once after more heartbeats.
    assert!(wait_until(Duration::from_secs(10), || !alarms(&server, "").is_empty()));
    let seen = calls.load(Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || calls
        .load(Ordering::SeqCst)
        >= seen + 3));
    let list = alarms(&server, "?group=web");
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a["alarm_type"], "PARSE_LOG_FAIL_ALARM");
    assert_eq!(a["alarm_count"], 12);
    assert_eq!(a["alarm_level"], 2);
    assert_eq!(a["level_name"], "error");
    assert_eq!(a["config"], "app");
    assert_eq!(a["alarm_message"], "parse failed: <line 1>");
    assert_eq!(a["instance_id"].as_str(), Some(fleet.instance_id()));
    assert_eq!(host(&server).unwrap()["alarms_kept"], 1);
    // Filters: another group, a time after it, bad parameters.
    assert!(alarms(&server, "?group=dbs").is_empty());
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    assert!(alarms(&server, &format!("?since={later}")).is_empty());
    assert_eq!(alarms(&server, "?since=0&group=web").len(), 1);
    let (s, v) = server.call("GET", "/api/v1/alarms?group=nope", None);
    assert_eq!(s, 404, "{v}");
    let (s, v) = server.call("GET", "/api/v1/alarms?since=yesterday", None);
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Unix seconds"), "{v}");

    // The console shows the alarm, escaped, to a bearer of the token.
    let (s, page) = get_with(&url, "/", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(s, 200);
    assert!(page.contains("parse failed: &lt;line 1&gt;"), "{page}");
    assert!(!page.contains("<line 1>"), "{page}");
    assert!(page.contains("PARSE_LOG_FAIL_ALARM") && page.contains("send_error"));
    assert!(
        page.contains("117.7 MiB") && page.contains(">0.375<"),
        "{page}"
    );
    console_cookie_rules(&url);

    // An alarm raised while the server is down is kept and delivered once
    // it is back.
    let addr = url.trim_start_matches("http://").to_string();
    drop(server);
    let mut second = AlarmReport::new("SEND_DATA_FAIL_ALARM", 3, "server down");
    second.count = 4;
    pending.lock().unwrap().push(second);
    let seen = calls.load(Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || calls
        .load(Ordering::SeqCst)
        >= seen + 2
        && pending.lock().unwrap().is_empty()));
    server = spawn(&data, &addr);
    assert!(
        wait_until(Duration::from_secs(10), || alarms(&server, "")
            .iter()
            .any(|a| a["alarm_type"] == "SEND_DATA_FAIL_ALARM")),
        "{:?}",
        alarms(&server, "")
    );
    let list = alarms(&server, "");
    assert_eq!(
        list.len(),
        1,
        "a restarted server keeps no old alarms: {list:?}"
    );
    assert_eq!(list[0]["alarm_count"], 4);
    assert_eq!(list[0]["alarm_level"], 3);
    assert!(list[0]["config"].is_null());
    // The host's report is back too.
    assert_eq!(host(&server).unwrap()["agent_status"], "send_error");
    fleet.stop();
}

/// `/?token=` sets the cookie and redirects; the cookie opens the console
/// and `GET`s of the API, never a change; a wrong `?token=` is refused.
fn console_cookie_rules(url: &str) {
    let http = ureq::AgentBuilder::new().redirects(0).build();
    let status = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("{e}"),
    };
    let (s, r) = status(http.get(&format!("{url}/?token=wrong-token-0")).call());
    assert_eq!(s, 401);
    assert!(r.header("Set-Cookie").is_none());
    assert!(r.into_string().unwrap().contains("Wrong admin token"));

    let (s, r) = status(http.get(&format!("{url}/?token={TOKEN}")).call());
    assert_eq!(s, 303);
    assert_eq!(r.header("Location"), Some("/"));
    let cookie = r.header("Set-Cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    // The login form posts the token instead: the same answer.
    let (s, r) = status(
        http.post(&format!("{url}/"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("token={TOKEN}")),
    );
    assert_eq!(s, 303);
    assert_eq!(r.header("Set-Cookie").unwrap(), cookie);
    let (s, _) = status(
        http.post(&format!("{url}/"))
            .send_string("token=wrong-token-0"),
    );
    assert_eq!(s, 401);
    for path in ["/", "/console/main", "/api/v1/overview"] {
        let (s, _) = status(
            http.get(&format!("{url}{path}"))
                .set("Cookie", &pair)
                .call(),
        );
        assert_eq!(s, 200, "GET {path} with the cookie");
    }
    let (s, r) = status(
        http.get(&format!("{url}/console/main"))
            .set("Cookie", &pair)
            .call(),
    );
    assert_eq!(s, 200);
    let main = r.into_string().unwrap();
    assert!(
        main.starts_with("<p id=\"updated\"") && !main.contains("<html"),
        "{main}"
    );
    let (s, _) = status(
        http.post(&format!("{url}/api/v1/machine_groups"))
            .set("Cookie", &pair)
            .send_string(r#"{"name":"evil","type":"ip"}"#),
    );
    assert_eq!(s, 401, "a change needs the header, not the cookie");
    let (s, _) = status(
        http.get(&format!("{url}/api/v1/overview"))
            .set(
                "Cookie",
                &format!("{}=not-it-at-all", "logtail_admin_token"),
            )
            .call(),
    );
    assert_eq!(s, 401);
}

#[test]
fn a_bad_admin_token_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(CONFIG_SERVER)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "short",
            "--data-dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--admin-token") && err.contains("8–256"),
        "{err}"
    );
}

/// Posts one heartbeat of instance `id` with sequence number `seq`, full
/// state, with `extras` as its attributes' extras.
fn raw_heartbeat(url: &str, id: &str, seq: u64, extras: &[(&str, &str)]) {
    use logtail_sdk::fleet::proto::{
        AgentAttributes, HeartbeatRequest, Message, REQUEST_FLAG_FULL_STATE,
    };
    let req = HeartbeatRequest {
        request_id: format!("req-{seq}").into_bytes(),
        sequence_num: seq,
        instance_id: id.as_bytes().to_vec(),
        agent_type: "logtail-rs".into(),
        attributes: Some(AgentAttributes {
            version: b"1.0.0".to_vec(),
            extras: extras
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            ..Default::default()
        }),
        flags: REQUEST_FLAG_FULL_STATE,
        ..Default::default()
    };
    let r = ureq::post(&format!("{url}/Agent/Heartbeat"))
        .set("Content-Type", "application/x-protobuf")
        .send_bytes(&req.encode_to_vec())
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_full_heartbeat_without_a_report_clears_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let server = spawn(&tmp.path().join("server"), "127.0.0.1:0");
    let url = server.url.clone();
    let host = || -> Value {
        let (s, v) = server.call("GET", "/api/v1/hosts", None);
        assert_eq!(s, 200, "{v}");
        v["hosts"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["instance_id"] == "inst-1"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    raw_heartbeat(
        &url,
        "inst-1",
        1,
        &[
            ("logtail.status", "send_block"),
            ("logtail.cpu", "0.500"),
            ("logtail.mem", "4096"),
        ],
    );
    let h = host();
    assert_eq!(h["agent_status"], "send_block", "{h}");
    assert_eq!(h["cpu_cores"], 0.5);
    assert_eq!(h["memory_bytes"], 4096);
    // The same instance, a full state without the report's keys: the old
    // status, CPU and memory are not shown as if they were current.
    raw_heartbeat(&url, "inst-1", 2, &[]);
    let h = host();
    assert_eq!(h["status"], "OK", "{h}");
    assert!(h["agent_status"].is_null(), "{h}");
    assert!(h["cpu_cores"].is_null(), "{h}");
    assert!(h["memory_bytes"].is_null(), "{h}");
    assert!(h["reported_ms"].is_null(), "{h}");
    // A report again: shown again.
    raw_heartbeat(&url, "inst-1", 3, &[("logtail.status", "ok")]);
    assert_eq!(host()["agent_status"], "ok");
}
