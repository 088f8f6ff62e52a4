//! Bad configs: exit code 2 at once, and stderr names the file and the key.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Runs the agent on `config`; asserts exit code 2 and returns stderr.
fn run_bad(env: &Env, config: &Path) -> String {
    let mut agent = Agent::spawn(AGENT, &[config], &env.data, &[]);
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("agent kept running on a bad config: {}", agent.stderr()));
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    stderr
}

fn check(yaml: &str, must_contain: &[&str]) {
    let env = Env::new();
    std::fs::write(&env.config, yaml).unwrap();
    let stderr = run_bad(&env, &env.config);
    let file = env.config.display().to_string();
    assert!(stderr.contains(&file), "file not named:\n{stderr}");
    for s in must_contain {
        assert!(stderr.contains(s), "{s:?} missing from:\n{stderr}");
    }
    // One clear message, not a panic or a backtrace.
    assert!(!stderr.contains("panicked"), "{stderr}");
    println!("{}", stderr.trim_end());
}

#[test]
fn missing_file_paths() {
    check(
        "inputs:\n  - Type: input_file\nflushers:\n  - Type: flusher_stdout\n",
        &["inputs[0].FilePaths", "missing"],
    );
}

#[test]
fn empty_file_paths() {
    check(
        "inputs:\n  - Type: input_file\n    FilePaths: []\nflushers:\n  - Type: flusher_stdout\n",
        &["inputs[0].FilePaths", "missing"],
    );
}

#[test]
fn unknown_input_type() {
    check(
        "inputs:\n  - Type: input_nope\n    FilePaths: [/tmp/a.log]\nflushers:\n  - Type: flusher_stdout\n",
        &["inputs[0].Type", "input_nope"],
    );
}

#[test]
fn unknown_flusher_type() {
    check(
        "inputs:\n  - Type: input_file\n    FilePaths: [/tmp/a.log]\nflushers:\n  - Type: flusher_kafka\n",
        &["flushers[0].Type", "flusher_kafka"],
    );
}

#[test]
fn bad_glob() {
    check(
        "inputs:\n  - Type: input_file\n    FilePaths: [/a/**/b/**/c.log]\nflushers:\n  - Type: flusher_stdout\n",
        &["inputs[0].FilePaths", "/a/**/b/**/c.log"],
    );
}

#[test]
fn wrong_value_type() {
    check(
        "inputs:\n  - Type: input_file\n    FilePaths: [/tmp/a.log]\n    TailSizeKB: lots\nflushers:\n  - Type: flusher_stdout\n",
        &["inputs[0].TailSizeKB", "whole number"],
    );
}

#[test]
fn malformed_yaml() {
    // The "key" of a syntax error is its position.
    check(
        "inputs:\n  - Type: input_file\n    FilePaths: [/tmp/a.log\nflushers:\n",
        &["invalid YAML", "line"],
    );
}

#[test]
fn malformed_json() {
    let env = Env::new();
    let path = env.root().join("app.json");
    std::fs::write(&path, "{\"inputs\": [}").unwrap();
    let stderr = run_bad(&env, &path);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("invalid JSON"), "{stderr}");
}

#[test]
fn nonexistent_config_file() {
    let env = Env::new();
    let path = env.root().join("nope.yaml");
    let stderr = run_bad(&env, &path);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn messages_have_no_empty_key() {
    // A whole-file error has no key; it must not print as "file: : …".
    let env = Env::new();
    let path = env.root().join("nope.yaml");
    let stderr = run_bad(&env, &path);
    assert!(!stderr.contains(": : "), "{stderr}");
}

#[test]
fn second_bad_config_is_named() {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    let bad = env.root().join("bad.yaml");
    std::fs::write(
        &bad,
        "inputs:\n  - Type: input_file\nflushers:\n  - Type: flusher_stdout\n",
    )
    .unwrap();
    let mut agent = Agent::spawn(AGENT, &[&env.config, &bad], &env.data, &[]);
    let status = agent.wait_exit(Duration::from_secs(10)).expect("exit");
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains("inputs[0].FilePaths"), "{stderr}");
}

#[test]
fn unwritable_flusher_path_names_the_config() {
    // Valid YAML, but the pipeline cannot be built: still exit 2, and the
    // message says which config (and which flusher) is at fault.
    let env = Env::new();
    let blocker = env.root().join("file-not-dir");
    std::fs::write(&blocker, "x").unwrap();
    std::fs::write(
        &env.config,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\nflushers:\n  - Type: flusher_file\n    FilePath: {}/out.jsonl\n",
            env.logs.display(),
            blocker.display()
        ),
    )
    .unwrap();
    let stderr = run_bad(&env, &env.config);
    assert!(stderr.contains(&blocker.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&env.config.display().to_string()),
        "config file not named:\n{stderr}"
    );
}

#[test]
fn bad_command_line_exits_2() {
    let env = Env::new();
    let mut agent = Agent::spawn(AGENT, &[], &env.data, &["--no-such-flag"]);
    let status = agent.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(2), "{}", agent.stderr());
}
