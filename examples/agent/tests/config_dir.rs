//! `--config-dir`: each file is applied on its own. A bad file is reported
//! (file and key) and skipped, the good ones run; a bad file added while
//! running is reported once and does not hold up the files after it; once
//! fixed it is applied. Start-up errors name the path and exit with 2.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A config collecting `log` into the flusher_file `out`.
fn good(log: &Path, out: &Path) -> String {
    format!(
        "inputs:\n  - Type: input_file\n    FilePaths: [{}]\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        log.display(),
        out.display()
    )
}

/// A config without `FilePaths`: the key at fault is `inputs[0].FilePaths`.
const BAD: &str = "inputs:\n  - Type: input_file\nflushers:\n  - Type: flusher_stdout\n";

fn append(path: &Path, text: &str, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in 0..n {
        writeln!(f, "{text} {i}").unwrap();
    }
}

/// Lines in a flusher_file output (whole lines only).
fn lines_in(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.matches('\n').count()
}

fn conf_dir(env: &Env) -> PathBuf {
    let dir = env.root().join("conf.d");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spawn_dir(env: &Env, dir: &Path) -> Agent {
    Agent::spawn(
        AGENT,
        &[],
        &env.data,
        &["--config-dir", dir.to_str().unwrap()],
    )
}

/// Runs the agent with `extra` arguments; asserts exit code 2 and returns stderr.
fn exits_2(env: &Env, configs: &[&Path], extra: &[&str]) -> String {
    let mut agent = Agent::spawn(AGENT, configs, &env.data, extra);
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("agent kept running: {}", agent.stderr()));
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_bad_file_at_start_is_reported_and_the_good_one_runs() {
    let env = Env::new();
    let dir = conf_dir(&env);
    let log = env.logs.join("app.log");
    std::fs::write(dir.join("a-good.yaml"), good(&log, &env.out)).unwrap();
    let bad = dir.join("b-bad.yaml");
    std::fs::write(&bad, BAD).unwrap();
    let mut agent = spawn_dir(&env, &dir);
    agent.wait_started();
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!("{}: inputs[0].FilePaths", bad.display())),
        "the bad file and key are not named:\n{stderr}"
    );
    append(&log, "hello", 50);
    assert!(
        wait_until(Duration::from_secs(10), || lines_in(&env.out) == 50),
        "the good config did not deliver ({} lines); stderr:\n{}",
        lines_in(&env.out),
        agent.stderr()
    );
    agent.assert_alive("with a bad file in --config-dir");
    agent.terminate();
}

#[test]
fn a_bad_file_added_while_running_holds_up_nothing_and_is_applied_once_fixed() {
    let env = Env::new();
    let dir = conf_dir(&env);
    let out = |n: &str| env.root().join(format!("out-{n}.jsonl"));
    let log = |n: &str| env.logs.join(format!("{n}.log"));
    std::fs::write(dir.join("a.yaml"), good(&log("a"), &out("a"))).unwrap();
    let mut agent = spawn_dir(&env, &dir);
    agent.wait_started();

    // A bad file appears, then a good one after it (later in name order too).
    let bad = dir.join("b.yaml");
    std::fs::write(&bad, BAD).unwrap();
    let reported = format!("{}: inputs[0].FilePaths", bad.display());
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .stderr()
            .contains(&reported)),
        "the bad file was not reported:\n{}",
        agent.stderr()
    );
    append(&log("c"), "to-c", 20);
    std::fs::write(dir.join("c.yaml"), good(&log("c"), &out("c"))).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || lines_in(&out("c")) == 20),
        "the good file after the bad one was not applied; stderr:\n{}",
        agent.stderr()
    );
    // c.yaml was applied at least one check after b.yaml was reported: a
    // report per check would have said it again by now.
    assert_eq!(
        agent.stderr().matches(&reported).count(),
        1,
        "the bad file is reported once:\n{}",
        agent.stderr()
    );

    // Fixed: applied.
    append(&log("b"), "to-b", 30);
    std::fs::write(&bad, good(&log("b"), &out("b"))).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || lines_in(&out("b")) == 30),
        "the fixed file was not applied; stderr:\n{}",
        agent.stderr()
    );
    // The first config ran all along.
    append(&log("a"), "to-a", 10);
    assert!(wait_until(Duration::from_secs(10), || lines_in(&out("a")) == 10));
    agent.terminate();
}

#[test]
fn a_directory_without_one_valid_file_exits_2() {
    let env = Env::new();
    let dir = conf_dir(&env);
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, BAD).unwrap();
    let stderr = exits_2(&env, &[], &["--config-dir", dir.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!("{}: inputs[0].FilePaths", bad.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "--config-dir {}: none of its 1 config file is valid",
            dir.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_file_still_exits_2_next_to_a_good_directory() {
    // --config files are not skipped: a bad one stops the start.
    let env = Env::new();
    let dir = conf_dir(&env);
    std::fs::write(
        dir.join("good.yaml"),
        good(&env.logs.join("a.log"), &env.out),
    )
    .unwrap();
    let bad = env.root().join("bad.yaml");
    std::fs::write(&bad, BAD).unwrap();
    let stderr = exits_2(&env, &[&bad], &["--config-dir", dir.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!("{}: inputs[0].FilePaths", bad.display())),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_dir_exits_2_and_says_so() {
    let env = Env::new();
    let dir = env.root().join("no-such-dir");
    let stderr = exits_2(&env, &[], &["--config-dir", dir.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!(
            "logtail-agent: --config-dir {}: no such directory",
            dir.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_config_dir_that_is_a_file_exits_2_and_says_so() {
    let env = Env::new();
    let file = env.root().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let stderr = exits_2(&env, &[], &["--config-dir", file.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!(
            "logtail-agent: --config-dir {}: not a directory",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_data_dir_that_is_a_file_exits_2_and_says_so() {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    std::fs::write(&env.data, "not a directory").unwrap();
    let stderr = exits_2(&env, &[&env.config], &[]);
    assert!(
        stderr.contains(&format!(
            "logtail-agent: --data-dir {}: is a file, not a directory",
            env.data.display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_empty_config_file_exits_2_and_says_so() {
    let env = Env::new();
    std::fs::write(&env.config, "").unwrap();
    let stderr = exits_2(&env, &[&env.config], &[]);
    assert!(
        stderr.contains(&format!(
            "logtail-agent: {}: the file is empty: a pipeline config needs at least `inputs` and `flushers`",
            env.config.display()
        )),
        "{stderr}"
    );
}
