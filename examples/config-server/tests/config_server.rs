//! The real `logtail-config-server` binary: it prints the bound address,
//! serves the admin API and the agent protocol, and keeps its state across
//! a restart.

use std::time::Duration;

use serde_json::json;

use logtail_sdk::fleet::client::{ConfigChange, ConfigState, Fleet, FleetOptions};
use logtail_sdk::host::IdentitySources;
use logtail_testkit::{wait_until, ConfigServerProc};

/// The `logtail-config-server` binary of this package.
const CONFIG_SERVER: &str = env!("CARGO_BIN_EXE_logtail-config-server");

#[test]
fn config_server_binary_serves_admin_api_and_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let server = ConfigServerProc::spawn(CONFIG_SERVER, &data, "127.0.0.1:0");
    let url = server.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let (s, v) = server.call(
        "POST",
        "/api/v1/machine_groups",
        Some(json!({"name": "Bad_", "type": "ip"})),
    );
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("uppercase"), "{v}");

    let (s, _) = server.call("POST",
        "/api/v1/machine_groups",
        Some(
            json!({"name": "web", "type": "userdefined", "members": ["web-7"], "topic": "frontend"}),
        ),
    );
    assert_eq!(s, 201);
    let detail = "inputs:\n  - Type: input_file\n    FilePaths: [/var/log/web/*.log]\nflushers:\n  - Type: flusher_stdout\n";
    let (s, v) = server.call(
        "POST",
        "/api/v1/pipeline_configs",
        Some(json!({"name": "web-logs", "detail": detail})),
    );
    assert_eq!(s, 201, "{v}");
    let version = v["version"].as_i64().unwrap();
    let (s, _) = server.call("PUT", "/api/v1/machine_groups/web/configs/web-logs", None);
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
        let (_, v) = server.call("GET", "/api/v1/machine_groups/web/hosts", None);
        v["hosts"][0]["status"] == "OK" && v["hosts"][0]["configs"][0]["status"] == "APPLIED"
    }));
    fleet.stop();

    // Restart: groups, configs and hosts are still there.
    drop(server);
    let server = ConfigServerProc::spawn(CONFIG_SERVER, &data, "127.0.0.1:0");
    let (_, g) = server.call("GET", "/api/v1/machine_groups/web", None);
    assert_eq!(g["configs"], json!(["web-logs"]));
    assert_eq!(g["topic"], "frontend");
    let (_, c) = server.call("GET", "/api/v1/pipeline_configs/web-logs", None);
    assert_eq!(c["version"], version);
    assert_eq!(c["detail"], detail);
    let (_, h) = server.call("GET", "/api/v1/machine_groups/web/hosts", None);
    assert_eq!(h["hosts"][0]["configs"][0]["status"], "APPLIED");
}
