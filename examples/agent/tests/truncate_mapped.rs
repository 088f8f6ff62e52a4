//! A ~300 MiB file truncated (several times, to smaller sizes) while the
//! agent is catching up on it through its memory map: the agent must not
//! die of SIGBUS, must re-read the shortened file, keep collecting other
//! files, and stop cleanly.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const MIB: u64 = 1 << 20;
const LINE: u64 = 128;

#[test]
fn truncating_a_mapped_file_does_not_kill_the_agent() {
    let env = Env::new();
    let big_dir = env.logs.join("big");
    let probe_dir = env.logs.join("probe");
    std::fs::create_dir_all(&big_dir).unwrap();
    std::fs::create_dir_all(&probe_dir).unwrap();
    let big = big_dir.join("big.log");

    // 300 MiB of short lines (many events: slower to catch up), there
    // before the agent starts.
    {
        let mut line = vec![b'x'; LINE as usize];
        line[LINE as usize - 1] = b'\n';
        let block: Vec<u8> = line.repeat((MIB / LINE) as usize);
        let mut f = std::fs::File::create(&big).unwrap();
        for _ in 0..300 {
            f.write_all(&block).unwrap();
        }
    }

    // The big file's events are encoded and written to /dev/null: the
    // acknowledgements (and so the checkpoint) follow the read offset
    // closely, and encoding paces the catch-up. A second pipeline in the
    // same process proves the agent still collects afterwards.
    let big_cfg = env.root().join("big.yaml");
    std::fs::write(
        &big_cfg,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\n    TailSizeKB: {TAIL_ALL_KB}\nflushers:\n  - Type: flusher_file\n    FilePath: /dev/null\n",
            big_dir.display()
        ),
    )
    .unwrap();
    let probe_cfg = env.root().join("probe.yaml");
    std::fs::write(
        &probe_cfg,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
            probe_dir.display(),
            env.out.display()
        ),
    )
    .unwrap();
    let mut agent = Agent::spawn(AGENT, &[&big_cfg, &probe_cfg], &env.data, &[]);
    agent.wait_started();
    let offset = || checkpoint_offset(&env.data, "big", &big).unwrap_or(0);

    // Each round waits until the agent (re)started the file and read some
    // of it, then cuts the file to half of what it acknowledged: below its
    // read offset, so the cut is always noticed, and any copy out of the map
    // in progress touches pages that no longer exist (SIGBUS unless
    // guarded). The first cut lands while the 300 MiB are being caught up.
    let t0 = Instant::now();
    let mut size = 300 * MIB;
    let mut cuts = 0;
    for round in 0..6 {
        let want = ((128 * MIB) >> round).min(size);
        let ready = wait_until(Duration::from_secs(60), || {
            let o = offset();
            o <= size && o >= want
        });
        agent.assert_alive("while catching up");
        assert!(
            ready,
            "round {round}: agent at offset {} of {size} (waiting for {want})",
            offset()
        );
        let at = offset();
        let next = at / 2 / LINE * LINE;
        OpenOptions::new()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(next)
            .unwrap();
        println!(
            "{:?}: truncated {size} -> {next} with the agent at >= {at}",
            t0.elapsed()
        );
        size = next;
        cuts += 1;
    }

    // It reads the shortened file to its end…
    let done = wait_until(Duration::from_secs(30), || offset() == size);
    agent.assert_alive("after the truncations");
    assert!(done, "offset {} != size {size}", offset());
    println!("{:?}: re-read the final {size} bytes", t0.elapsed());

    // …still collects new data…
    std::fs::write(probe_dir.join("p.log"), "still alive\n").unwrap();
    let mut out = OutReader::new(&env.out, 0);
    let arrived = wait_until(Duration::from_secs(10), || {
        out.update();
        !out.others.is_empty()
    });
    agent.assert_alive("after the probe");
    assert!(arrived, "probe line did not arrive:\n{}", agent.stderr());
    assert_eq!(out.others, vec!["still alive".to_string()]);

    // …and stops cleanly.
    agent.terminate();
    let stderr = agent.stderr();
    assert!(
        stderr.matches("input: truncated ").count() >= cuts,
        "not all {cuts} truncations were noticed:\n{stderr}"
    );
}
