//! SIGHUP reloads the configs: while a writer appends nothing is lost or
//! doubled, and a reload that fails keeps the last good pipeline running.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const LINE_LEN: usize = 64;

fn append_seqs(path: &std::path::Path, seqs: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for s in seqs {
        buf.push_str(&seq_line(s, LINE_LEN));
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

fn reloads(agent: &Agent) -> usize {
    agent.stderr().matches("SIGHUP: reloading configs").count()
}

#[test]
fn sighup_while_writing_loses_and_doubles_nothing() {
    const LINES: u64 = 100_000;
    let env = Env::new();
    // Default TailSizeKB on purpose: a reload must resume from checkpoints,
    // never treat the files as new.
    env.write_config(&["app.log*"], "");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: 25_000,
        rotate_at: vec![50_000],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);
    for i in 1..=5 {
        std::thread::sleep(Duration::from_millis(500));
        agent.signal(libc::SIGHUP);
        assert!(
            wait_until(Duration::from_secs(5), || reloads(&agent) == i),
            "reload {i} not logged"
        );
        agent.assert_alive("after SIGHUP");
    }
    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    agent.assert_alive("after the reloads");
    agent.terminate();
    println!("{report:?}");
    assert_eq!(report, SeqReport::default(), "stderr:\n{}", agent.stderr());
}

#[test]
fn sighup_with_broken_config_keeps_the_old_pipeline() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    let app = env.logs.join("app.log");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    append_seqs(&app, 0..100);
    assert!(wait_until(Duration::from_secs(10), || {
        out.update();
        out.distinct_below(100) == 100
    }));

    std::fs::write(&env.config, "inputs: [\n").unwrap();
    agent.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || agent
        .stderr()
        .contains("reload failed")));
    agent.assert_alive("after a bad reload");

    append_seqs(&app, 100..200);
    let report = wait_all_arrived(&mut out, 200, Duration::from_secs(10));
    agent.terminate();
    assert_eq!(report, SeqReport::default(), "stderr:\n{}", agent.stderr());
}

#[test]
fn failed_reload_falls_back_to_the_latest_good_config() {
    // Config A collects a/, B collects b/; C is valid YAML but cannot start.
    // After A → B → C the agent must keep running B, not go back to A.
    let env = Env::new();
    let write = |dir: &str, out: &std::path::Path| {
        std::fs::write(
            &env.config,
            format!(
                "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
                env.logs.join(dir).display(),
                out.display()
            ),
        )
        .unwrap();
    };
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(env.logs.join(d)).unwrap();
    }
    let mut out = OutReader::new(&env.out, LINE_LEN);
    let arrived = |out: &mut OutReader, n: u64| {
        wait_until(Duration::from_secs(10), || {
            out.update();
            out.distinct_below(n) == n
        })
    };

    write("a", &env.out);
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    append_seqs(&env.logs.join("a/x.log"), 0..10);
    assert!(arrived(&mut out, 10), "A did not collect");

    write("b", &env.out);
    agent.signal(libc::SIGHUP);
    append_seqs(&env.logs.join("b/x.log"), 10..20);
    assert!(arrived(&mut out, 20), "B did not collect after reload");

    let blocker = env.root().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    write("c", &blocker.join("out.jsonl"));
    agent.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(10), || agent
        .stderr()
        .contains("the previous version (if any) keeps running")));
    agent.assert_alive("after a reload that could not start");
    append_seqs(&env.logs.join("b/x.log"), 20..30);
    let b_ok = arrived(&mut out, 30);
    agent.terminate();
    assert!(
        b_ok,
        "B stopped collecting after a failed reload (A restarted instead?): {:?}\nstderr:\n{}",
        out.report(30),
        agent.stderr()
    );
    assert_eq!(out.report(30), SeqReport::default());
}
