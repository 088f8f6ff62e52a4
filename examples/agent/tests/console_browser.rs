//! The config server's web console in a real browser (Debian's headless
//! Chromium through chromedriver), with the real agent and the real
//! server in processes of their own on 127.0.0.1: what a person sees is
//! a token form first, then the machine group with its host `OK`, the
//! agent's version, status, CPU and memory, one config `APPLIED` and one
//! `FAILED` with its message; and, without reloading the page, the host
//! turning `FAIL` once its agent is stopped, and a note that the data is
//! no longer updated once the server is gone.
//!
//! The server runs as in `fleet_agent.rs`: this test binary started again,
//! running only [`console_server_process`] (Cargo builds the
//! `logtail-config-server` binary only for that package's tests).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logtail_config_server::console::AdminToken;
use logtail_config_server::server::{ConfigServer, HttpServer, ServerOptions};
use logtail_testkit::browser::Browser;
use serde_json::json;

const LISTEN_ENV: &str = "LOGTAIL_TEST_CONSOLE_SERVER_LISTEN";
const DATA_DIR_ENV: &str = "LOGTAIL_TEST_CONSOLE_SERVER_DATA_DIR";
const TOKEN: &str = "console-test-token-7";
/// Three of the agent's 0.5 s heartbeats.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1500);

/// The process [`spawn_server`] starts: the config server with the admin
/// token and a 1.5 s heartbeat timeout, until it is killed.
#[test]
#[ignore = "not a test of its own: the config server process of the other test"]
fn console_server_process() {
    let (Ok(listen), Some(data_dir)) = (std::env::var(LISTEN_ENV), std::env::var_os(DATA_DIR_ENV))
    else {
        return;
    };
    let mut options = ServerOptions::new(PathBuf::from(data_dir));
    options.heartbeat_timeout = HEARTBEAT_TIMEOUT;
    options.admin_token = Some(AdminToken::new(TOKEN).expect("a valid token"));
    let server = Arc::new(ConfigServer::open(options).expect("open the config server"));
    let http = HttpServer::start(&listen, server).expect("listen");
    println!("listening on http://{}", http.local_addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn spawn_server(data_dir: &Path) -> ConfigServerProc {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "console_server_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(LISTEN_ENV, "127.0.0.1:0")
    .env(DATA_DIR_ENV, data_dir);
    let mut server = ConfigServerProc::start(cmd);
    server.token = Some(TOKEN.into());
    server
}

/// What the console shows of the first host row: heartbeat, version,
/// status, CPU, memory and the configs' lines.
#[derive(Debug, Default)]
struct Row {
    heartbeat: String,
    version: String,
    status: String,
    cpu: String,
    memory: String,
    configs: Vec<String>,
}

fn first_row(b: &Browser) -> Option<Row> {
    let cell = |class: &str| b.texts(&format!("tr.host td.{class}")).into_iter().next();
    Some(Row {
        heartbeat: cell("heartbeat")?,
        version: cell("version")?,
        status: cell("agent-status")?,
        cpu: cell("cpu")?,
        memory: cell("memory")?,
        configs: b.texts("tr.host li.config"),
    })
}

#[test]
fn console_in_a_browser_shows_hosts_configs_and_failures() {
    let env = Env::new();
    let mut server = spawn_server(&env.root().join("server"));

    // A group with a config that runs and one that cannot (an account this
    // host does not authorise).
    let (s, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "web-prod", "type": "userdefined", "members": ["web-1"]})),
    );
    assert_eq!(s, 201, "{v}");
    let out = env.root().join("out.jsonl");
    let good = format!(
        "inputs:\n  - Type: input_file\n    FilePaths:\n      - {}\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        env.logs.join("app.log").display(),
        out.display()
    );
    let bad = format!(
        "{good}  - Type: flusher_sls\n    Project: p\n    Logstore: s\n    Endpoint: http://127.0.0.1:9\n    AliUid: \"1234567\"\n"
    );
    for (name, detail) in [("app", &good), ("billing", &bad)] {
        let (s, v) = server.call(
            "POST",
            "/api/v1/pipeline_configs",
            Some(json!({"name": name, "detail": detail})),
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = server.call(
            "PUT",
            &format!("/api/v1/machine_groups/web-prod/configs/{name}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
    }

    let ids = env.root().join("ids");
    std::fs::write(&ids, "web-1\n").unwrap();
    let users = env.root().join("users");
    std::fs::create_dir_all(&users).unwrap();
    let mut agent = Agent::spawn(
        AGENT,
        &[],
        &env.root().join("data"),
        &[
            "--config-server",
            &server.url,
            "--user-defined-id-file",
            ids.to_str().unwrap(),
            "--users-dir",
            users.to_str().unwrap(),
            "--heartbeat-secs",
            "0.5",
        ],
    );

    // Without the token: 401 for the API and the page, which is a form.
    server.token = None;
    assert_eq!(server.call("GET", "/api/v1/overview", None).0, 401);
    assert_eq!(server.call("GET", "/", None).0, 401);
    server.token = Some("not-the-token".into());
    assert_eq!(server.call("GET", "/api/v1/hosts", None).0, 401);
    server.token = Some(TOKEN.into());
    assert_eq!(server.call("GET", "/api/v1/hosts", None).0, 200);

    let b = Browser::start();
    b.goto(&format!("{}/", server.url));
    let text = b.page_text();
    assert!(text.contains("Admin token required."), "{text}");
    assert!(!text.contains("web-prod"), "{text}");
    b.goto(&format!("{}/?token=wrong-token-1", server.url));
    let text = b.page_text();
    assert!(text.contains("Wrong admin token."), "{text}");

    // A person types the token into the form.
    b.eval(
        "document.querySelector('input[name=token]').value = arguments[0]; document.querySelector('form').submit();",
        vec![json!(TOKEN)],
    );
    assert!(
        wait_until(Duration::from_secs(10), || b
            .texts("h2")
            .iter()
            .any(|t| t == "Machine group web-prod")),
        "{}",
        b.page_text()
    );
    assert_eq!(
        b.url(),
        format!("{}/", server.url),
        "the token is not left in the address"
    );

    let expected = |r: &Row| {
        r.heartbeat == "OK"
            && r.status == "ok"
            && r.configs.len() == 2
            && r.configs[0].starts_with("app v")
            && r.configs[0].ends_with("APPLIED")
            && r.configs[1].contains("FAILED")
    };
    assert!(
        wait_until(Duration::from_secs(20), || first_row(&b)
            .is_some_and(|r| expected(&r))
            && b.texts("section.group p.summary")
                .first()
                .is_some_and(|t| t.ends_with("1 host(s), 1 OK"))),
        "{:?}\n{}\nagent: {}",
        first_row(&b),
        b.page_text(),
        agent.stderr()
    );
    let row = first_row(&b).unwrap();
    assert_eq!(row.version, env!("CARGO_PKG_VERSION"));
    let cpu: f64 = row.cpu.parse().unwrap_or(-1.0);
    assert!((0.0..64.0).contains(&cpu), "{row:?}");
    assert!(row.memory.ends_with(" MiB"), "{row:?}");
    let mem: f64 = row.memory.trim_end_matches(" MiB").parse().unwrap_or(0.0);
    assert!(mem > 1.0, "{row:?}");
    let failed = &row.configs[1];
    assert!(
        failed.starts_with("billing v")
            && failed.contains("1234567")
            && failed.contains("not authorised"),
        "{failed}"
    );
    // (OK is not asserted again: a heartbeat late on a loaded machine may
    // turn it FAIL for a moment, as it should.)
    let text = b.page_text();
    assert!(text.contains("1 host(s), "), "{text}");
    assert!(text.contains("web-1"), "{text}");

    // The agent stops; the open page turns the host FAIL by itself (the
    // marker shows it was not reloaded).
    b.eval("window.__still_the_same_page = true;", vec![]);
    agent.terminate();
    assert!(
        wait_until(Duration::from_secs(15), || first_row(&b)
            .is_some_and(|r| r.heartbeat == "FAIL")),
        "{:?}",
        first_row(&b)
    );
    assert_eq!(
        b.eval("return window.__still_the_same_page === true;", vec![]),
        json!(true)
    );
    let text = b.page_text();
    assert!(text.contains("1 host(s), 0 OK"), "{text}");
    // The last report and the configs stay visible.
    let row = first_row(&b).unwrap();
    assert!(row.configs[1].contains("FAILED"), "{row:?}");

    // The server goes away: the page says its data is no longer updated
    // and keeps showing the last.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || b
            .texts("#updated")
            .first()
            .is_some_and(|t| t.starts_with("Not updated:"))),
        "{:?}",
        b.texts("#updated")
    );
    assert_eq!(first_row(&b).unwrap().heartbeat, "FAIL");
}
