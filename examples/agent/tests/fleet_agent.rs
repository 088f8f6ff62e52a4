//! The real agent managed by the real `logtail-config-server`: configs
//! reach only their group's agent, a config changed while 20 MB/s are
//! written loses and doubles nothing, a config that fails is reported
//! FAILED while the old version keeps running, and agents carry on while
//! the server is down.
//!
//! The server runs in a process of its own, so that it can be killed and
//! restarted as a real one: Cargo builds the `logtail-config-server`
//! binary only for that package's own tests, so [`spawn_server`] starts
//! this test binary again, running only [`config_server_process`], which
//! serves the same library code with the options the binary gets from the
//! tests (`--listen`, `--data-dir`, `--heartbeat-timeout 5`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use logtail_config_server::server::{ConfigServer, HttpServer, ServerOptions};
use serde_json::{json, Value};

/// `--listen` of [`config_server_process`].
const LISTEN_ENV: &str = "LOGTAIL_TEST_CONFIG_SERVER_LISTEN";
/// `--data-dir` of [`config_server_process`].
const DATA_DIR_ENV: &str = "LOGTAIL_TEST_CONFIG_SERVER_DATA_DIR";

/// Starts a config server process on `listen` (`127.0.0.1:0` picks a port)
/// with its state in `data_dir`; it is killed when dropped.
fn spawn_server(data_dir: &Path, listen: &str) -> ConfigServerProc {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "config_server_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(LISTEN_ENV, listen)
    .env(DATA_DIR_ENV, data_dir);
    ConfigServerProc::start(cmd)
}

/// The process [`spawn_server`] starts: what `logtail-config-server`
/// does, until it is killed. Run by itself (without its variables) it
/// does nothing.
#[test]
#[ignore = "not a test of its own: the config server process of the other tests"]
fn config_server_process() {
    let (Ok(listen), Some(data_dir)) = (std::env::var(LISTEN_ENV), std::env::var_os(DATA_DIR_ENV))
    else {
        return;
    };
    let mut options = ServerOptions::new(PathBuf::from(data_dir));
    options.heartbeat_timeout = Duration::from_secs(5);
    let server = Arc::new(ConfigServer::open(options).expect("open the config server"));
    let http = HttpServer::start(&listen, server).expect("listen");
    println!("listening on http://{}", http.local_addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn agent(env: &Env, server: &str, id: &str, users: &Path) -> Agent {
    let ids = env.root().join(format!("ids-{id}"));
    std::fs::write(&ids, format!("{id}\n")).unwrap();
    std::fs::create_dir_all(users).unwrap();
    let data = env.root().join(format!("data-{id}"));
    Agent::spawn(
        AGENT,
        &[],
        &data,
        &[
            "--config-server",
            server,
            "--user-defined-id-file",
            ids.to_str().unwrap(),
            "--users-dir",
            users.to_str().unwrap(),
            "--heartbeat-secs",
            "0.5",
        ],
    )
}

fn file_config(logs: &Path, out: &Path, extra_flusher: &str) -> String {
    format!(
        "inputs:\n  - Type: input_file\n    FilePaths:\n      - {}\n    TailSizeKB: {TAIL_ALL_KB}\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n{extra_flusher}",
        logs.join("app.log*").display(),
        out.display()
    )
}

/// The status the server lists for `config` on the group's host, if any.
fn host_config_status(
    server: &ConfigServerProc,
    group: &str,
    config: &str,
) -> Option<(String, String)> {
    let (s, v) = server.call(
        "GET",
        &format!("/api/v1/machine_groups/{group}/hosts"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let hosts = v
        .get("hosts")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| v.as_array().cloned())?;
    for h in hosts {
        // A restarted agent is a new instance; the old one turns FAIL.
        if h["status"] != "OK" {
            continue;
        }
        let configs = h.get("configs")?;
        let entries: Vec<Value> = match configs {
            Value::Array(a) => a.clone(),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    v["name"] = json!(k);
                    v
                })
                .collect(),
            _ => continue,
        };
        for c in entries {
            if c["name"] == config {
                return Some((
                    c["status"].as_str().unwrap_or("").to_string(),
                    c["message"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    None
}

#[test]
fn configs_reach_their_group_and_changes_lose_nothing() {
    let env = Env::new();
    let server = spawn_server(&env.root().join("server"), "127.0.0.1:0");
    for (g, id) in [("group-a", "id-a"), ("group-b", "id-b")] {
        let (s, v) = server.call(
            "POST",
            "/api/v1/machine_groups",
            Some(json!({"name": g, "type": "userdefined", "members": [id]})),
        );
        assert_eq!(s, 201, "{v}");
    }
    let users = env.root().join("users");
    let mut a = agent(&env, &server.url, "id-a", &users);
    let mut b = agent(&env, &server.url, "id-b", &users);
    a.wait_started();
    b.wait_started();

    let out = env.out.clone();
    let (s, v) = server.call(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "app", "detail": file_config(&env.logs, &out, "")})),
    );
    assert_eq!(s, 201, "{v}");
    let t0 = Instant::now();
    let (s, v) = server.call("PUT", "/api/v1/machine_groups/group-a/configs/app", None);
    assert_eq!(s, 200, "{v}");
    assert!(
        wait_until(Duration::from_secs(10), || host_config_status(
            &server, "group-a", "app"
        )
        .is_some_and(|(st, _)| st == "APPLIED")),
        "not applied; agent stderr:\n{}",
        a.stderr()
    );
    let took = t0.elapsed();
    println!("config applied {took:?} after it was assigned to the group");
    assert!(took < Duration::from_secs(10));
    assert!(
        !b.stderr().contains("pipeline running"),
        "the other group's agent runs nothing: {}",
        b.stderr()
    );

    // 20 MB/s of 1000-byte lines while the config is modified twice.
    const LINES: u64 = 100_000;
    const LEN: usize = 1000;
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LEN,
        per_sec: 20_000,
        rotate_at: vec![60_000],
    });
    let mut reader = OutReader::new(&out, LEN);
    for (at, extra) in [(25_000, "    # v2\n"), (70_000, "    # v3\n")] {
        assert!(wait_until(Duration::from_secs(30), || writer.written() >= at));
        let (s, v) = server.call(
            "PUT",
            "/api/v1/pipeline_configs/app",
            Some(json!({"detail": file_config(&env.logs, &out, extra)})),
        );
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut reader, LINES, Duration::from_secs(60));
    println!("{report:?} across two config changes at 20 MB/s");
    assert_eq!(report.lost, 0, "{report:?}\n{}", a.stderr());
    assert_eq!(report.duplicated, 0, "{report:?}");
    assert!(
        a.stderr()
            .matches("stopping to apply a new version")
            .count()
            >= 2,
        "{}",
        a.stderr()
    );

    // A version that cannot run (an account this host does not authorise):
    // FAILED with the reason, and the previous version keeps collecting.
    let bad = file_config(
        &env.logs,
        &out,
        "  - Type: flusher_sls\n    Project: p\n    Logstore: s\n    Endpoint: http://127.0.0.1:9\n    AliUid: \"1234567\"\n",
    );
    let (s, v) = server.call(
        "PUT",
        "/api/v1/pipeline_configs/app",
        Some(json!({"detail": bad})),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        wait_until(Duration::from_secs(10), || host_config_status(
            &server, "group-a", "app"
        )
        .is_some_and(|(st, _)| st == "FAILED")),
        "{:?}",
        host_config_status(&server, "group-a", "app")
    );
    let (_, msg) = host_config_status(&server, "group-a", "app").unwrap();
    assert!(
        msg.contains("1234567") && msg.contains("not authorised"),
        "{msg}"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(env.logs.join("app.log"))
        .and_then(|mut f| {
            use std::io::Write;
            writeln!(f, "{}", seq_line(LINES, LEN))
        })
        .unwrap();
    let report = wait_all_arrived(&mut reader, LINES + 1, Duration::from_secs(10));
    assert_eq!(report.lost, 0, "the old version still collects: {report:?}");

    // Removing the config from the group stops it on the agent.
    let (s, _) = server.call("DELETE", "/api/v1/machine_groups/group-a/configs/app", None);
    assert_eq!(s, 200);
    assert!(wait_until(Duration::from_secs(10), || a
        .stderr()
        .contains("pipeline removed")));
    a.terminate();
    b.terminate();
}

#[test]
fn agents_carry_on_while_the_server_is_down_for_a_minute() {
    let env = Env::new();
    let server_dir = env.root().join("server");
    let server = spawn_server(&server_dir, "127.0.0.1:0");
    let listen = server.url.trim_start_matches("http://").to_string();
    server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "group-a", "type": "userdefined", "members": ["id-a"]})),
    );
    server.call(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "app", "detail": file_config(&env.logs, &env.out, "")})),
    );
    server.call("PUT", "/api/v1/machine_groups/group-a/configs/app", None);
    let users: PathBuf = env.root().join("users");
    let mut a = agent(&env, &server.url, "id-a", &users);
    a.wait_started();
    assert!(wait_until(Duration::from_secs(10), || host_config_status(
        &server, "group-a", "app"
    )
    .is_some_and(|(st, _)| st == "APPLIED")));
    drop(server);
    let down = Instant::now();
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: 30_000,
        line_len: 100,
        per_sec: 1_000,
        rotate_at: vec![],
    });
    let mut reader = OutReader::new(&env.out, 100);
    // Restart the agent too while the server is down: it runs the configs it kept.
    std::thread::sleep(Duration::from_secs(5));
    a.terminate();
    a = agent(&env, &format!("http://{listen}"), "id-a", &users);
    a.wait_started();
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down.elapsed()));
    a.assert_alive("while the server was down");
    let server = spawn_server(&server_dir, &listen);
    assert!(
        wait_until(Duration::from_secs(20), || host_config_status(
            &server, "group-a", "app"
        )
        .is_some_and(|(st, _)| st == "APPLIED")),
        "reconnected and reported; stderr:\n{}",
        a.stderr()
    );
    assert_eq!(writer.join(), 30_000);
    let report = wait_all_arrived(&mut reader, 30_000, Duration::from_secs(30));
    println!("{report:?} with the server down for a minute");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicated, 0, "{report:?}");
    a.terminate();
}

/// Lines that are not JSON: `PARSE_LOG_FAIL_ALARM` travels in the
/// heartbeat to the config server, which lists it with its count, and the
/// host carries the agent's status, CPU and memory.
#[test]
fn a_parse_alarm_reaches_the_config_server_with_its_count() {
    let env = Env::new();
    let server = spawn_server(&env.root().join("server"), "127.0.0.1:0");
    let (s, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "group-p", "type": "userdefined", "members": ["id-p"]})),
    );
    assert_eq!(s, 201, "{v}");
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!("{{\"seq\":{i}}}\n"));
    }
    for i in 0..9 {
        text.push_str(&format!("not json {i}\n"));
    }
    std::fs::write(env.logs.join("app.log"), text).unwrap();
    let detail = format!(
        "inputs:\n  - Type: input_file\n    FilePaths: [{}]\n    TailSizeKB: {TAIL_ALL_KB}\nprocessors:\n  - Type: processor_parse_json_native\n    SourceKey: content\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        env.logs.join("app.log").display(),
        env.out.display()
    );
    let (s, v) = server.call(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "json-app", "detail": detail})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = server.call(
        "PUT",
        "/api/v1/machine_groups/group-p/configs/json-app",
        None,
    );
    assert_eq!(s, 200, "{v}");
    let mut a = agent(&env, &server.url, "id-p", &env.root().join("users"));
    a.wait_started();
    // The alarm's 30 s window closes, then the next heartbeat carries it.
    let mut alarms = Value::Null;
    let found = wait_until(Duration::from_secs(60), || {
        let (s, v) = server.call("GET", "/api/v1/alarms?group=group-p", None);
        assert_eq!(s, 200, "{v}");
        alarms = v;
        alarms["alarms"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["alarm_type"] == "PARSE_LOG_FAIL_ALARM"))
    });
    assert!(
        found,
        "no alarm at the server: {alarms}\nagent:\n{}",
        a.stderr()
    );
    let list = alarms["alarms"].as_array().unwrap();
    let parse: Vec<&Value> = list
        .iter()
        .filter(|x| x["alarm_type"] == "PARSE_LOG_FAIL_ALARM")
        .collect();
    assert_eq!(parse.len(), 1, "handed over once: {alarms}");
    assert_eq!(parse[0]["alarm_count"], 9, "{alarms}");
    assert_eq!(parse[0]["alarm_level"], 1);
    assert_eq!(parse[0]["config"], "json-app");
    // The host list carries the agent's own report.
    let (s, v) = server.call("GET", "/api/v1/machine_groups/group-p/hosts", None);
    assert_eq!(s, 200, "{v}");
    let host = v
        .get("hosts")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| v.as_array().cloned())
        .and_then(|h| h.into_iter().next())
        .unwrap_or_else(|| panic!("no host: {v}"));
    assert!(
        ["ok", "busy", "process_block", "send_block", "send_error"]
            .contains(&host["agent_status"].as_str().unwrap_or("")),
        "{host}"
    );
    assert!(
        host["memory_bytes"].as_u64().unwrap_or(0) > 1_000_000,
        "{host}"
    );
    a.terminate();
}
