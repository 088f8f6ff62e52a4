//! Latency: with the agent running, a line appended to a matched file, a
//! new file, or a new file in a new directory reaches out.jsonl within 3 s;
//! a file created after start is read from offset 0 (not its last
//! TailSizeKB).

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(3);
const LINE_LEN: usize = 64;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Time until `seq` shows up (panics after 10 s).
fn arrival(out: &mut OutReader, seq: u64, t0: Instant) -> Duration {
    let ok = wait_until(Duration::from_secs(10), || {
        out.update();
        out.counts.get(seq as usize).is_some_and(|&c| c > 0)
    });
    assert!(ok, "seq {seq} never arrived");
    t0.elapsed()
}

#[test]
fn lines_arrive_within_three_seconds() {
    let env = Env::new();
    env.write_config(&["**/*.log"], "    MaxDirSearchDepth: 2\n");
    let existing = env.logs.join("existing.log");
    append(&existing, &format!("{}\n", seq_line(0, LINE_LEN)));
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    arrival(&mut out, 0, Instant::now());

    // 1. Append to a file the agent has open.
    let t0 = Instant::now();
    append(&existing, &format!("{}\n", seq_line(1, LINE_LEN)));
    let l1 = arrival(&mut out, 1, t0);

    // 2. The same after the agent went idle for a while.
    std::thread::sleep(Duration::from_millis(2500));
    let t0 = Instant::now();
    append(&existing, &format!("{}\n", seq_line(2, LINE_LEN)));
    let l2 = arrival(&mut out, 2, t0);

    // 3. A new file, created with 2 MiB already in it (more than the
    // default TailSizeKB of 1024): its first line must arrive.
    let mut big = String::new();
    let n = (2 << 20) / (LINE_LEN as u64 + 1) + 1;
    for s in 1000..1000 + n {
        big.push_str(&seq_line(s, LINE_LEN));
        big.push('\n');
    }
    let t0 = Instant::now();
    std::fs::write(env.logs.join("new.log"), &big).unwrap();
    let l3 = arrival(&mut out, 1000, t0);

    // 4. A new file in a new directory.
    let dir = env.logs.join("later");
    let t0 = Instant::now();
    std::fs::create_dir(&dir).unwrap();
    append(&dir.join("x.log"), &format!("{}\n", seq_line(3, LINE_LEN)));
    let l4 = arrival(&mut out, 3, t0);

    println!("latencies: append {l1:?}, after idle {l2:?}, new file {l3:?}, new dir {l4:?}");
    let all = wait_until(Duration::from_secs(10), || {
        out.update();
        out.distinct_below(1000 + n) == 4 + n
    });
    agent.terminate();
    out.update();
    assert!(
        all,
        "the new file was not read whole: {:?}",
        out.report(1000 + n)
    );
    assert_eq!(out.report(1000 + n).duplicated, 0);
    for (what, l) in [
        ("append", l1),
        ("append after idle", l2),
        ("new file", l3),
        ("new file in a new directory", l4),
    ] {
        assert!(l < LIMIT, "{what}: {l:?}");
    }
}
