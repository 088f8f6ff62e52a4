//! SIGTERM mid-stream, restart with the same data dir: nothing lost,
//! nothing doubled, across rename+create rotations (one while the agent
//! runs, one while it is down).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const LINES: u64 = 200_000;
const LINE_LEN: usize = 64;
const PER_SEC: u64 = 25_000;

#[test]
fn sigterm_restart_loses_and_doubles_nothing() {
    let env = Env::new();
    env.write_config(&["app.log*"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: PER_SEC,
        rotate_at: vec![50_000, 100_000],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);

    assert!(wait_until(Duration::from_secs(30), || writer.written() >= 80_000));
    agent.assert_alive("before SIGTERM");
    let took = agent.terminate();
    let at_stop = writer.written();
    println!("SIGTERM at {at_stop} lines written; exit took {took:?}");

    // Stay down across the second rotation (at 100k).
    assert!(wait_until(Duration::from_secs(30), || writer.written() >= 110_000));
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let written = writer.join();
    assert_eq!(written, LINES);
    let t0 = Instant::now();

    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    println!("all arrived {:?} after the writer finished", t0.elapsed());
    agent.terminate();
    out.update();
    let report_after_stop = out.report(LINES);
    println!("{report_after_stop:?}");
    assert_eq!(report, report_after_stop, "lines arrived during the stop");
    assert_eq!(
        report_after_stop,
        SeqReport::default(),
        "stderr of the second run:\n{}",
        agent.stderr()
    );
    assert!(
        out.others.is_empty(),
        "{:?}",
        &out.others[..5.min(out.others.len())]
    );
}

/// SIGTERM while a large backlog is being caught up (queues full): still
/// a clean exit within 5 s, and the restart neither skips nor repeats.
#[test]
fn sigterm_during_backlog_catch_up() {
    const BACKLOG: u64 = 1_000_000;
    let env = Env::new();
    env.write_config(&["*.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    {
        let f = std::fs::File::create(env.logs.join("backlog.log")).unwrap();
        let mut f = std::io::BufWriter::new(f);
        for s in 0..BACKLOG {
            writeln!(f, "{}", seq_line(s, LINE_LEN)).unwrap();
        }
    }
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    // Stop as soon as output appears (its size: parsing takes too long).
    let size = || std::fs::metadata(&env.out).map(|m| m.len()).unwrap_or(0);
    assert!(wait_until(Duration::from_secs(30), || size() > 0));
    let took = agent.terminate();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    out.update();
    println!(
        "stopped after {} of {BACKLOG} lines in {took:?}",
        out.distinct_below(BACKLOG)
    );
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let report = wait_all_arrived(&mut out, BACKLOG, Duration::from_secs(60));
    agent.terminate();
    assert_eq!(report, SeqReport::default(), "{}", agent.stderr());
}

/// SIGINT stops as cleanly as SIGTERM, and a line that was still
/// incomplete at the stop arrives whole, once, after the restart.
#[test]
fn sigint_stop_keeps_an_incomplete_line_for_the_restart() {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let log = env.logs.join("app.log");
    let line1 = seq_line(1, LINE_LEN);
    let (head, tail) = line1.split_at(30);
    std::fs::write(&log, format!("{}\n{head}", seq_line(0, LINE_LEN))).unwrap();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    assert!(wait_until(Duration::from_secs(10), || {
        out.update();
        out.distinct_below(1) == 1
    }));
    // Well before FlushTimeoutSecs (5 s) would emit the incomplete line.
    let (st, took) = agent.stop_with(libc::SIGINT, Duration::from_secs(15));
    assert!(
        st.success() && took < Duration::from_secs(5),
        "{st} {took:?}"
    );

    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    write!(f, "{tail}\n{}\n", seq_line(2, LINE_LEN)).unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let report = wait_all_arrived(&mut out, 3, Duration::from_secs(10));
    agent.terminate();
    assert_eq!(report, SeqReport::default());
    assert!(out.others.is_empty(), "pieces: {:?}", out.others);
}
