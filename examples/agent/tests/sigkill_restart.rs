//! SIGKILL (twice) mid-stream, restart with the same data dir: nothing
//! lost; duplicates only of what could have been in flight.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const LINES: u64 = 200_000;
const LINE_LEN: usize = 64;
const PER_SEC: u64 = 25_000;
/// Per kill: lines read but not yet covered by a persisted checkpoint. The
/// writer wakes the agent every few ms, acknowledgements come back within
/// milliseconds and checkpoints are written every 100 ms, so about 100 ms
/// of writing is in flight; allow 250 ms (6 250 lines at 25 000 lines/s).
const MAX_DUP_PER_KILL: u64 = PER_SEC / 4;

#[test]
fn sigkill_restart_loses_nothing_and_duplicates_little() {
    let env = Env::new();
    env.write_config(&["app.log*"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: PER_SEC,
        rotate_at: vec![100_000],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);

    let mut kills = 0;
    for at in [60_000, 130_000] {
        assert!(wait_until(Duration::from_secs(30), || writer.written() >= at));
        agent.assert_alive("before SIGKILL");
        agent.kill();
        kills += 1;
        println!("SIGKILL at {} lines written", writer.written());
        // Down for a moment; the writer goes on.
        std::thread::sleep(Duration::from_millis(300));
        agent = env.spawn(AGENT);
        agent.wait_started();
    }

    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    agent.terminate();
    println!(
        "{report:?}: {} duplicated lines after {kills} SIGKILLs",
        report.duplicated
    );
    assert_eq!(report.lost, 0, "{report:?}\nstderr:\n{}", agent.stderr());
    assert_eq!(report.unexpected, 0, "{report:?}");
    assert_eq!(report.corrupt, 0, "{report:?}");
    // A kill during the sink's write(2) can leave one torn line per kill.
    assert!(report.bad <= kills, "{report:?}: {:?}", out.bad);
    assert!(
        report.duplicated <= MAX_DUP_PER_KILL * kills,
        "{} duplicates after {kills} kills (bound {})",
        report.duplicated,
        MAX_DUP_PER_KILL * kills
    );
}

/// A crash during the sink's write can leave a torn last line in
/// `out.jsonl`; the next run must not glue its first event onto it.
#[test]
fn torn_output_line_does_not_swallow_the_next_event() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    std::fs::write(
        &env.out,
        b"{\"__time__\":\"1\",\"content\":\"complete\"}\n{\"__time__\":\"1\",\"cont",
    )
    .unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut f = std::fs::File::create(env.logs.join("app.log")).unwrap();
    writeln!(f, "{}", seq_line(0, LINE_LEN)).unwrap();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    let ok = wait_until(Duration::from_secs(10), || {
        out.update();
        out.distinct_below(1) == 1 || out.bad.len() > 1
    });
    agent.terminate();
    out.update();
    assert!(ok, "nothing arrived");
    assert_eq!(out.others, vec!["complete".to_string()]);
    assert_eq!(out.report(1).lost, 0, "bad lines: {:?}", out.bad);
    assert_eq!(out.bad.len(), 1, "{:?}", out.bad);
}
