//! A flusher_file that cannot write (disk full, simulated with /dev/full):
//! nothing is acknowledged, memory stays bounded while a large backlog
//! waits, SIGTERM still stops the agent within 5 s, and a restart with a
//! working output delivers everything.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

const LINE_LEN: usize = 127;
/// 200 MiB: far more than the pipeline's queues may hold.
const LINES: u64 = 200 * 1024 * 1024 / (LINE_LEN as u64 + 1);

fn config(env: &Env, out: &str) {
    std::fs::write(
        &env.config,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\n    TailSizeKB: {TAIL_ALL_KB}\nflushers:\n  - Type: flusher_file\n    FilePath: {out}\n",
            env.logs.display()
        ),
    )
    .unwrap();
}

#[test]
fn full_disk_holds_back_without_growing_memory() {
    let env = Env::new();
    let log = env.logs.join("app.log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        for s in 0..LINES {
            f.write_all(seq_line(s, LINE_LEN).as_bytes()).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }

    config(&env, "/dev/full");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    // Long enough to read the whole file several times over if nothing held
    // the input back. The sink's retry backoff (0.1 s doubling to 5 s) is
    // then in its 3.2 s sleep and enters a 5 s one during the stop: the stop
    // must not wait it out.
    std::thread::sleep(Duration::from_secs(5));
    agent.assert_alive("with a failing output");
    let hwm_kb = agent.status_kb("VmHWM").expect("VmHWM");
    println!("peak RSS with a full disk: {} MiB", hwm_kb / 1024);
    let took = agent.terminate();
    println!("stopped in {took:?}");
    assert_eq!(
        checkpoint_offset(&env.data, "app", &log),
        Some(0),
        "a checkpoint moved although nothing was written"
    );
    assert!(
        hwm_kb < 150 * 1024,
        "agent buffered the backlog: peak RSS {} MiB",
        hwm_kb / 1024
    );

    // The disk is back: everything arrives, once.
    config(&env, &env.out.display().to_string());
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE_LEN);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(90));
    agent.terminate();
    assert_eq!(report, SeqReport::default());
}
