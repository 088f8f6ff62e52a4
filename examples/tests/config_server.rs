//! The real `logtail-config-server` binary: it prints the bound address,
//! serves the admin API and the agent protocol, and keeps its state across
//! a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use logtail_sdk::fleet::identity::IdentitySources;

const SERVER: &str = env!("CARGO_BIN_EXE_logtail-config-server");

struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &std::path::Path, listen: &str) -> Running {
    let mut child = Command::new(SERVER)
        .args([
            "--listen",
            listen,
            "--heartbeat-timeout",
            "30",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn logtail-config-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    Running { child, url }
}

fn call(url: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("{url}{path}"));
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
    (
        resp.status(),
        serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
    )
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn config_server_binary_serves_admin_api_and_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let server = spawn(&data, "127.0.0.1:0");
    let url = server.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let (s, v) = call(
        &url,
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "Bad_", "type": "ip"})),
    );
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("uppercase"), "{v}");

    let (s, _) = call(
        &url,
        "POST",
        "/api/v1/machine_groups",
        Some(
            json!({"name": "web", "type": "userdefined", "members": ["web-7"], "topic": "frontend"}),
        ),
    );
    assert_eq!(s, 201);
    let detail = "inputs:\n  - Type: input_file\n    FilePaths: [/var/log/web/*.log]\nflushers:\n  - Type: flusher_stdout\n";
    let (s, v) = call(
        &url,
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "web-logs", "detail": detail})),
    );
    assert_eq!(s, 201, "{v}");
    let version = v["version"].as_i64().unwrap();
    let (s, _) = call(
        &url,
        "PUT",
        "/api/v1/machine_groups/web/configs/web-logs",
        None,
    );
    assert_eq!(s, 200);

    // An agent whose identity is in the group gets the config.
    let ids = tmp.path().join("user_defined_id");
    std::fs::write(&ids, "web-7\n").unwrap();
    let mut o = FleetOptions::new(vec![url.clone()], tmp.path().join("agent"));
    o.identity = IdentitySources {
        user_defined_id_file: ids,
        user_defined_id_env: String::new(),
        users_dir: tmp.path().join("users"),
        user_id_env: String::new(),
    };
    o.heartbeat_interval = Duration::from_millis(200);
    let (fleet, changes) = Fleet::start(o).unwrap();
    match changes.recv_timeout(Duration::from_secs(5)) {
        Ok(ConfigChange::Upsert {
            name,
            version: v,
            detail: d,
        }) => {
            assert_eq!((name.as_str(), v), ("web-logs", version));
            assert_eq!(d, detail.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    fleet.report("web-logs", version, ConfigState::Applied);
    assert!(wait_until(Duration::from_secs(5), || {
        let (_, v) = call(&url, "GET", "/api/v1/machine_groups/web/hosts", None);
        v["hosts"][0]["status"] == "OK" && v["hosts"][0]["configs"][0]["status"] == "APPLIED"
    }));
    fleet.stop();

    // Restart: groups, configs and hosts are still there.
    drop(server);
    let server = spawn(&data, "127.0.0.1:0");
    let (_, g) = call(&server.url, "GET", "/api/v1/machine_groups/web", None);
    assert_eq!(g["configs"], json!(["web-logs"]));
    assert_eq!(g["topic"], "frontend");
    let (_, c) = call(
        &server.url,
        "GET",
        "/api/v1/pipeline_configs/web-logs",
        None,
    );
    assert_eq!(c["version"], version);
    assert_eq!(c["detail"], detail);
    let (_, h) = call(&server.url, "GET", "/api/v1/machine_groups/web/hosts", None);
    assert_eq!(h["hosts"][0]["configs"][0]["status"], "APPLIED");
}
