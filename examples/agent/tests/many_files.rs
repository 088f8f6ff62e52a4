//! 10 000 small files under a `**` pattern in a few directories (half there
//! at start-up, half created while the agent runs): every line arrives
//! exactly once and the agent stays alive.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

const FILES: u64 = 10_000;
const LINES_PER_FILE: u64 = 3;
const LINE_LEN: usize = 40;

fn file_path(env: &Env, i: u64) -> PathBuf {
    // 10 directories at depths 1 and 2 below logs/.
    let d = i % 10;
    let dir = if d < 5 {
        env.logs.join(format!("a{d}"))
    } else {
        env.logs.join(format!("a{}", d - 5)).join("deeper")
    };
    dir.join(format!("f{i:05}.log"))
}

fn write_file(env: &Env, i: u64) {
    let mut text = String::new();
    for j in 0..LINES_PER_FILE {
        text.push_str(&seq_line(i * LINES_PER_FILE + j, LINE_LEN));
        text.push('\n');
    }
    let path = file_path(env, i);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn ten_thousand_files_every_line_once() {
    let env = Env::new();
    env.write_config(&["**/*.log"], "    MaxDirSearchDepth: 3\n");
    for i in 0..FILES / 2 {
        write_file(&env, i);
    }
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let t0 = Instant::now();
    for i in FILES / 2..FILES {
        write_file(&env, i);
    }
    println!("{:?}: all files written", t0.elapsed());

    let total = FILES * LINES_PER_FILE;
    let mut out = OutReader::new(&env.out, LINE_LEN);
    let report = wait_all_arrived(&mut out, total, Duration::from_secs(90));
    agent.assert_alive("with 10 000 files open");
    println!(
        "{:?}: {} of {total} lines; agent has {} threads, peak RSS {} MiB",
        t0.elapsed(),
        out.distinct_below(total),
        agent.status_kb("Threads").unwrap_or(0),
        agent.status_kb("VmHWM").unwrap_or(0) / 1024
    );
    agent.terminate();
    out.update();
    assert_eq!(
        out.report(total),
        SeqReport::default(),
        "stderr:\n{}",
        agent
            .stderr()
            .lines()
            .take(50)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(report, out.report(total));
}

/// More files than descriptors (a host with a low `ulimit -n`): every file
/// is still read, in turns, rather than waiting for `close_inactive_after`
/// (300 s).
#[test]
fn more_files_than_descriptors() {
    const N: u64 = 1_000;
    let env = Env::new();
    env.write_config(&["**/*.log"], "    MaxDirSearchDepth: 3\n");
    let mut agent = Agent::spawn_limited(AGENT, &[&env.config], &env.data, &[], Some(512));
    agent.wait_started();
    let t0 = Instant::now();
    for i in 0..N {
        write_file(&env, i);
    }
    let total = N * LINES_PER_FILE;
    let mut out = OutReader::new(&env.out, LINE_LEN);
    let report = wait_all_arrived(&mut out, total, Duration::from_secs(30));
    agent.assert_alive("with few descriptors");
    agent.terminate();
    let warnings = agent.stderr().matches("Too many open files").count();
    println!(
        "{:?}: {report:?}; {warnings} 'Too many open files' warnings",
        t0.elapsed()
    );
    assert_eq!(report, SeqReport::default());
}
