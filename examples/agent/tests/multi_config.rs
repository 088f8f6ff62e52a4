//! One config per file: when several configs match a file, the first in
//! name order collects it; a config with AllowingIncludedByMultiConfigs
//! collects it as well. Configs come from a watched --config-dir.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;

fn config(pattern: &Path, out: &Path, forced: bool) -> String {
    format!(
        "inputs:\n  - Type: input_file\n    FilePaths:\n      - {}\n    AllowingIncludedByMultiConfigs: {forced}\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        pattern.display(),
        out.display()
    )
}

/// The contents in a flusher_file output; only whole lines (the sink may
/// be in the middle of a write).
fn lines_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["content"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_file_goes_to_the_first_config_unless_another_forces_it() {
    let env = Env::new();
    let dir = env.root().join("conf.d");
    std::fs::create_dir_all(&dir).unwrap();
    let out = |n: &str| env.root().join(format!("out-{n}.jsonl"));
    // Name order: a-all < b-app < c-forced.
    std::fs::write(
        dir.join("a-all.yaml"),
        config(&env.logs.join("*.log"), &out("a"), false),
    )
    .unwrap();
    std::fs::write(
        dir.join("b-app.yaml"),
        config(&env.logs.join("app.log"), &out("b"), false),
    )
    .unwrap();
    let mut agent = Agent::spawn(
        AGENT,
        &[],
        &env.data,
        &["--config-dir", dir.to_str().unwrap()],
    );
    agent.wait_started();
    // Added while running: the directory is watched.
    std::fs::write(
        dir.join("c-forced.yaml"),
        config(&env.logs.join("app.log"), &out("c"), true),
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || agent
        .stderr()
        .contains("c-forced.yaml")));
    std::thread::sleep(Duration::from_millis(500));
    for (file, text) in [("app.log", "to-app"), ("other.log", "to-other")] {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env.logs.join(file))
            .unwrap();
        for i in 0..100 {
            writeln!(f, "{text} {i}").unwrap();
        }
    }
    assert!(wait_until(Duration::from_secs(10), || lines_of(&out("a"))
        .len()
        == 200
        && lines_of(&out("c")).len() == 100));
    std::thread::sleep(Duration::from_millis(1500));
    let a = lines_of(&out("a"));
    assert_eq!(a.iter().filter(|l| l.starts_with("to-app")).count(), 100);
    assert_eq!(a.iter().filter(|l| l.starts_with("to-other")).count(), 100);
    assert!(
        lines_of(&out("b")).is_empty(),
        "app.log belongs to a-all, the first config in name order"
    );
    let c = lines_of(&out("c"));
    assert!(
        c.iter().all(|l| l.starts_with("to-app")) && c.len() == 100,
        "forced collection"
    );
    agent.terminate();
}

#[test]
fn an_account_the_host_does_not_authorise_stops_the_start() {
    let env = Env::new();
    let users = env.root().join("users");
    std::fs::create_dir_all(&users).unwrap();
    let text = format!(
        "inputs:\n  - Type: input_file\n    FilePaths: [{}]\nflushers:\n  - Type: flusher_sls\n    Project: p\n    Logstore: s\n    Endpoint: http://127.0.0.1:9\n    AliUid: \"1888\"\n",
        env.logs.join("*.log").display()
    );
    std::fs::write(&env.config, text).unwrap();
    let creds = env.root().join("creds.yaml");
    std::fs::write(&creds, "AccessKeyId: a\nAccessKeySecret: b\n").unwrap();
    let args = [
        "--users-dir",
        users.to_str().unwrap(),
        "--credentials-file",
        creds.to_str().unwrap(),
    ];
    let mut agent = Agent::spawn(AGENT, &[&env.config], &env.data, &args);
    let st = agent.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(st.code(), Some(2));
    let err = agent.stderr();
    assert!(
        err.contains("AliUid") && err.contains("1888") && err.contains("not authorised"),
        "{err}"
    );
    // Authorised by a file named after the account: it runs.
    std::fs::write(users.join("1888"), "").unwrap();
    let mut agent = Agent::spawn(AGENT, &[&env.config], &env.data, &args);
    agent.wait_started();
    agent.terminate();
}

/// A config earlier in name order is added while a file is written, then
/// removed again: the file goes to it and back, and each time the new
/// owner starts where the old one stopped. Counted by sequence numbers
/// across both outputs: no line lost, none doubled. (Without the
/// hand-over the new owner starts 1 MiB (`TailSizeKB`) before the end.)
#[test]
fn a_file_changing_hands_neither_doubles_nor_skips_a_line() {
    let env = Env::new();
    let dir = env.root().join("conf.d");
    std::fs::create_dir_all(&dir).unwrap();
    let out = |n: &str| env.root().join(format!("out-{n}.jsonl"));
    let app = env.logs.join("app.log");
    std::fs::write(dir.join("b-app.yaml"), config(&app, &out("b"), false)).unwrap();
    let mut agent = Agent::spawn(
        AGENT,
        &[],
        &env.data,
        &["--config-dir", dir.to_str().unwrap()],
    );
    agent.wait_started();
    let n = 100_000;
    let line_len = 200;
    let writer = SeqWriter::start(WriterPlan {
        path: app.clone(),
        lines: n,
        line_len,
        per_sec: 10_000,
        rotate_at: Vec::new(),
    });
    // 20 MB in 10 s; the owner changes at about 2 s and again at about 6 s.
    assert!(wait_until(Duration::from_secs(20), || writer.written() >= 20_000));
    std::fs::write(
        dir.join("a-all.yaml"),
        config(&env.logs.join("*.log"), &out("a"), false),
    )
    .unwrap();
    let (mut a, mut b) = (
        OutReader::new(&out("a"), line_len),
        OutReader::new(&out("b"), line_len),
    );
    let collected = |r: &mut OutReader| {
        r.update();
        r.counts.iter().filter(|&&c| c > 0).count()
    };
    // The new owner collects (wherever it started).
    assert!(wait_until(Duration::from_secs(20), || collected(&mut a) > 0));
    assert!(wait_until(Duration::from_secs(20), || writer.written() >= 60_000));
    std::fs::remove_file(dir.join("a-all.yaml")).unwrap();
    // And b-app collects again once a-all is gone.
    let b_before = collected(&mut b);
    assert!(wait_until(Duration::from_secs(20), || collected(&mut b) > b_before));
    assert_eq!(writer.join(), n);
    let all_arrived = wait_until(Duration::from_secs(30), || {
        a.update();
        b.update();
        (0..n as usize).all(|i| {
            a.counts.get(i).copied().unwrap_or(0) + b.counts.get(i).copied().unwrap_or(0) > 0
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    a.update();
    b.update();
    let count = |r: &OutReader, i: usize| r.counts.get(i).copied().unwrap_or(0);
    let lost: Vec<usize> = (0..n as usize)
        .filter(|&i| count(&a, i) + count(&b, i) == 0)
        .collect();
    let doubled = (0..n as usize)
        .filter(|&i| count(&a, i) + count(&b, i) > 1)
        .count();
    let (in_a, in_b) = (
        (0..n as usize).filter(|&i| count(&a, i) > 0).count(),
        (0..n as usize).filter(|&i| count(&b, i) > 0).count(),
    );
    eprintln!(
        "a-all collected {in_a} lines, b-app {in_b}; lost {}, doubled {doubled}",
        lost.len()
    );
    assert!(
        all_arrived && lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(doubled, 0, "lines collected by both configs");
    assert!(
        in_a > 10_000 && in_b > 10_000,
        "both configs collected: a {in_a}, b {in_b}"
    );
    assert!(a.bad.is_empty() && b.bad.is_empty() && a.corrupt + b.corrupt == 0);
    assert_eq!(
        agent
            .stderr()
            .matches("taking over from another config")
            .count(),
        2,
        "a-all took over from b-app, then b-app from a-all"
    );
    agent.terminate();
}
