//! Issue 14: `input_command` through the agent binary: a script that prints
//! its uid runs as an unprivileged user even when the agent is root, on its
//! interval, and each output piece is a record with the script's MD5.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn input_command_runs_the_script_unprivileged_on_its_interval() {
    let env = Env::new();
    let script = "id -u\necho \"dbg=$DEBUG\"\n";
    let config = format!(
        "enable: true\ninputs:\n  - Type: input_command\n    ScriptType: shell\n    CmdPath: /bin/sh\n    LineSplitSep: \"\\n\"\n    ScriptContent: |\n      id -u\n      echo \"dbg=$DEBUG\"\n    Environments:\n      - \"DEBUG=true\"\n    TimeoutMilliseconds: 3000\n    IntervalMs: 400\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        env.out.display()
    );
    std::fs::write(&env.config, config).unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&env.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // Two pieces per run; at least three runs.
    assert!(
        wait_until(Duration::from_secs(20), || read().len() >= 6),
        "got {} records; stderr:\n{}",
        read().len(),
        agent.stderr()
    );
    agent.terminate();
    let got = read();
    let md5 = {
        use std::process::Command;
        let out = Command::new("md5sum")
            .stdin(std::fs::File::open(env.data.join("scripts/app.sh")).unwrap())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
    assert_eq!(
        std::fs::read_to_string(env.data.join("scripts/app.sh")).unwrap(),
        script
    );
    // SAFETY: getuid has no preconditions.
    let agent_uid = unsafe { libc::getuid() };
    for pair in got.chunks(2) {
        let uid: u32 = pair[0]["content"].as_str().unwrap().parse().unwrap();
        assert_ne!(uid, 0, "the script never runs as root: {pair:?}");
        if agent_uid == 0 {
            // The default user, nobody.
            let nobody = std::process::Command::new("id")
                .args(["-u", "nobody"])
                .output()
                .unwrap();
            let nobody: u32 = String::from_utf8(nobody.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(uid, nobody);
        }
        assert_eq!(pair[1]["content"], "dbg=true");
        for r in pair {
            assert_eq!(r["script_md5"], md5.as_str());
        }
    }
}

#[test]
fn input_command_as_root_is_refused_at_load() {
    let env = Env::new();
    std::fs::write(
        &env.config,
        format!(
            "inputs:\n  - Type: input_command\n    ScriptType: shell\n    User: root\n    ScriptContent: id\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
            env.out.display()
        ),
    )
    .unwrap();
    let mut agent = env.spawn(AGENT);
    let status = agent.wait_exit(Duration::from_secs(10));
    let stderr = agent.stderr();
    assert!(
        stderr.contains("inputs[0].User") && stderr.contains("never runs scripts as root"),
        "status {status:?}; stderr:\n{stderr}"
    );
    assert!(!env.out.exists() || std::fs::read_to_string(&env.out).unwrap().is_empty());
}
