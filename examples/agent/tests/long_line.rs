//! A 100 MiB line (no newline for 100 MiB) followed by normal lines: with
//! the default MaxLineBytes (512 KiB, split) it arrives in pieces whose
//! concatenation is the line, the following lines arrive, and the agent's
//! memory stays bounded (it never buffers the whole line).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const LONG: usize = (100 << 20) + 123;
const MAX_LINE: usize = 512 * 1024;
const AFTER: u64 = 100;
const LINE_LEN: usize = 40;

/// Deterministic uppercase noise: pieces out of order or shifted would not
/// concatenate to it, and it never starts with `seq=`.
fn long_line() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..LONG)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

#[test]
fn hundred_mib_line_is_split_and_memory_stays_bounded() {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let line = long_line();
    let t0 = Instant::now();
    {
        // Created after start: read from offset 0.
        let mut f = std::fs::File::create(env.logs.join("long.log")).unwrap();
        for chunk in line.chunks(1 << 20) {
            f.write_all(chunk).unwrap();
        }
        let mut tail = b"\n".to_vec();
        for seq in 0..AFTER {
            tail.extend_from_slice(seq_line(seq, LINE_LEN).as_bytes());
            tail.push(b'\n');
        }
        f.write_all(&tail).unwrap();
    }

    let mut out = OutReader::new(&env.out, LINE_LEN);
    let report = wait_all_arrived(&mut out, AFTER, Duration::from_secs(120));
    agent.assert_alive("after the long line");
    // Peak RSS over the whole run, read while the agent is still alive.
    let hwm_kb = agent.status_kb("VmHWM").expect("VmHWM");
    println!(
        "{:?}: {} pieces, agent peak RSS {} MiB",
        t0.elapsed(),
        out.others.len(),
        hwm_kb / 1024
    );
    agent.terminate();

    assert_eq!(report, SeqReport::default(), "lines after the long one");
    let pieces = &out.others;
    assert_eq!(pieces.len(), LONG.div_ceil(MAX_LINE), "piece count");
    assert!(
        pieces.iter().all(|p| p.len() <= MAX_LINE),
        "a piece is longer than MaxLineBytes"
    );
    let joined: usize = pieces.iter().map(String::len).sum();
    assert_eq!(joined, LONG, "total length of the pieces");
    // Compare piece by piece (no 100 MiB copy, and a useful message).
    let mut at = 0;
    for (i, p) in pieces.iter().enumerate() {
        assert!(
            p.as_bytes() == &line[at..at + p.len()],
            "piece {i} (at byte {at}) differs from the line"
        );
        at += p.len();
    }
    assert!(
        hwm_kb < 200 * 1024,
        "agent peak RSS {} MiB (limit 200 MiB)",
        hwm_kb / 1024
    );
}

/// `LongLinePolicy: truncate` drops the rest of each over-long line: the
/// agent says so at the first drop, with the option that controls it.
#[test]
fn truncated_long_lines_are_reported() {
    let env = Env::new();
    env.write_config(
        &["*.log"],
        "    MaxLineBytes: 100\n    LongLinePolicy: truncate\n",
    );
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut text = String::new();
    for seq in 0..3 {
        text.push_str(&seq_line(seq, 300));
        text.push('\n');
    }
    std::fs::write(env.logs.join("a.log"), text).unwrap();
    let mut out = OutReader::new(&env.out, 0);
    let arrived = wait_until(Duration::from_secs(20), || {
        out.update();
        out.distinct_below(3) == 3
    });
    let warned = wait_until(Duration::from_secs(10), || {
        agent.stderr().contains("LongLinePolicy: truncate")
    });
    agent.terminate();
    let stderr = agent.stderr();
    assert!(arrived, "stderr:\n{stderr}");
    assert!(
        warned,
        "no warning about the dropped rests; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("3 over-long lines cut at MaxLineBytes"),
        "stderr:\n{stderr}"
    );
}
