//! A damaged checkpoint file: the agent starts anyway (backup, or reset),
//! says so, and loses nothing; only duplicates are possible.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const LINE_LEN: usize = 64;

fn append(env: &Env, seqs: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.logs.join("app.log"))
        .unwrap();
    for s in seqs {
        writeln!(f, "{}", seq_line(s, LINE_LEN)).unwrap();
    }
}

fn run(damage: &[&str], expect_log: &str) -> SeqReport {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    // Two generations, so that a backup exists.
    append(&env, 0..1000);
    assert_eq!(
        wait_all_arrived(&mut out, 1000, Duration::from_secs(10)).lost,
        0
    );
    append(&env, 1000..2000);
    assert_eq!(
        wait_all_arrived(&mut out, 2000, Duration::from_secs(10)).lost,
        0
    );
    agent.terminate();

    let dir = env.data.join("checkpoints");
    for suffix in damage {
        std::fs::write(dir.join(format!("app.json{suffix}")), "{\"version\":1,\"fi").unwrap();
    }
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    append(&env, 2000..3000);
    let report = wait_all_arrived(&mut out, 3000, Duration::from_secs(10));
    agent.assert_alive("with a damaged checkpoint");
    agent.terminate();
    let stderr = agent.stderr();
    assert!(
        stderr.contains(expect_log),
        "{expect_log:?} not in:\n{stderr}"
    );
    println!("{report:?}");
    report
}

#[test]
fn corrupt_checkpoint_falls_back_to_the_backup() {
    let r = run(&[""], "recovered from backup");
    assert_eq!((r.lost, r.bad, r.corrupt), (0, 0, 0), "{r:?}");
    // The backup is at most one generation old.
    assert!(r.duplicated <= 2000, "{r:?}");
}

#[test]
fn corrupt_checkpoint_and_backup_reset_without_loss() {
    let r = run(&["", ".bak"], "checkpoint unusable");
    // Reset: the (small) file is read again from its last TailSizeKB.
    assert_eq!((r.lost, r.bad, r.corrupt), (0, 0, 0), "{r:?}");
    assert_eq!(r.duplicated, 2000, "{r:?}");
}
