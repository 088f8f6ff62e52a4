//! copytruncate at the agent level, with sequence-numbered lines counted at
//! the sink: bursts of 40 MB copied away while the agent lags behind a slow
//! sink (the copy made by coreutils `cp`, which may create it at full size
//! in one step, or by a slow copy loop), copies the patterns match and
//! copies they do not (the same directory, `CopyTruncateDirs`), a
//! deliberate duplicate that is never followed by a truncation, and three
//! rotations at 20 MB/s.
//!
//! The slow sink is real: `flusher_file` writes into a FIFO that a relay
//! thread drains at a fixed rate into `out.jsonl`, so the agent's queues
//! fill and its reader falls tens of megabytes behind the writer.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const LINE: usize = 200;
/// Lines of a 40 MB burst.
const BURST: u64 = 40 * 1024 * 1024 / (LINE as u64 + 1);

/// Drains `fifo` into `out` at about `rate` bytes per second until the
/// writer closes it.
struct SlowRelay {
    handle: Option<JoinHandle<u64>>,
}

impl SlowRelay {
    fn start(fifo: &Path, out: &Path, rate: u64) -> SlowRelay {
        let (fifo, out) = (fifo.to_path_buf(), out.to_path_buf());
        let handle = std::thread::spawn(move || {
            // Blocks until the agent opens the FIFO for writing.
            let mut src = File::open(&fifo).expect("open fifo");
            let mut dst = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .expect("open out");
            let t0 = Instant::now();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                dst.write_all(&buf[..n]).expect("write out");
                total += n as u64;
                let due = Duration::from_secs_f64(total as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            total
        });
        SlowRelay {
            handle: Some(handle),
        }
    }

    fn join(mut self) -> u64 {
        self.handle.take().map_or(0, |h| h.join().expect("relay"))
    }
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// The config: `patterns` (relative to `logs/`) into `sink`, files present
/// at start read whole, with extra input options (YAML lines indented by 4).
fn write_config(env: &Env, patterns: &[&str], extra: &str, sink: &Path) {
    env.write_config_to(
        patterns,
        &format!("    TailSizeKB: {TAIL_ALL_KB}\n{extra}"),
        sink,
    );
}

fn lines(from: u64, to: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity((to - from) as usize * (LINE + 1));
    for seq in from..to {
        buf.extend_from_slice(seq_line(seq, LINE).as_bytes());
        buf.push(b'\n');
    }
    buf
}

fn append(path: &Path, data: &[u8]) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(data)
        .unwrap();
}

fn run(cmd: &mut Command) {
    let st = cmd.status().expect("run");
    assert!(st.success(), "{cmd:?}: {st}");
}

/// How the copy is made.
#[derive(Clone, Copy, Debug)]
enum Copier {
    /// coreutils `cp` (copy_file_range / reflink where it can).
    Cp,
    /// 256 KiB at a time with a pause between, as a slow disk would.
    SlowLoop,
}

fn copy(from: &Path, to: &Path, how: Copier) {
    match how {
        Copier::Cp => run(Command::new("cp").arg(from).arg(to)),
        Copier::SlowLoop => {
            let mut src = File::open(from).unwrap();
            let mut dst = File::create(to).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = src.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n]).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// A lagging agent, a 40 MB burst, then the copy to `copy_to` and
/// `truncate -s 0`, then more lines. Returns the agent's stderr.
fn burst_then_copytruncate(patterns: &[&str], extra: &str, copy_to: &str, how: Copier) -> String {
    let env = Env::new();
    let app = env.logs.join("app.log");
    let fifo = env.root().join("sink.fifo");
    mkfifo(&fifo);
    append(&app, &lines(0, 1000));
    write_config(&env, patterns, extra, &fifo);
    let relay = SlowRelay::start(&fifo, &env.out, 12 << 20);
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE);
    assert!(
        wait_until(Duration::from_secs(20), || {
            out.update();
            out.distinct_below(1000) == 1000
        }),
        "the first lines never arrived; stderr:\n{}",
        agent.stderr()
    );

    let copy_path = env.logs.join(copy_to);
    if let Some(dir) = copy_path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let end = 1000 + BURST;
    append(&app, &lines(1000, end));
    copy(&app, &copy_path, how);
    run(Command::new("truncate").arg("-s").arg("0").arg(&app));
    out.update();
    let behind = end - out.distinct_below(end);
    append(&app, &lines(end, end + 5000));
    let total = end + 5000;

    let report = wait_all_arrived(&mut out, total, Duration::from_secs(120));
    agent.terminate();
    relay.join();
    out.update();
    let report2 = out.report(total);
    let stderr = agent.stderr();
    eprintln!(
        "{patterns:?} copy to {copy_to} by {how:?}: {behind} of {end} lines not yet delivered at the truncation; {report2:?}"
    );
    assert_eq!(report, report2, "lines arrived after the first count");
    assert_eq!(
        (report2.lost, report2.duplicated, report2.corrupt),
        (0, 0, 0),
        "{report2:?}\nstderr:\n{stderr}"
    );
    assert!(
        behind > BURST / 4,
        "the agent was not behind ({behind} lines) when the copy was made: the test proves nothing"
    );
    stderr
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

const ADOPTED: &str = "continuing a truncated file in its copy";
const RECOVERED: &str = "reading the rest of a truncated file from its copy outside the patterns";

#[test]
fn burst_copied_by_cp_while_behind_is_read_once() {
    let stderr = burst_then_copytruncate(&["app.log*"], "", "app.log.1", Copier::Cp);
    assert_eq!(count(&stderr, ADOPTED), 1, "stderr:\n{stderr}");
    assert_eq!(count(&stderr, RECOVERED), 0, "stderr:\n{stderr}");
}

#[test]
fn burst_copied_by_a_slow_loop_while_behind_is_read_once() {
    let stderr = burst_then_copytruncate(&["app.log*"], "", "app.log.1", Copier::SlowLoop);
    assert_eq!(count(&stderr, ADOPTED), 1, "stderr:\n{stderr}");
}

#[test]
fn burst_copied_outside_the_pattern_is_recovered() {
    let stderr = burst_then_copytruncate(&["app.log"], "", "app.log-20261202", Copier::Cp);
    assert_eq!(count(&stderr, RECOVERED), 1, "stderr:\n{stderr}");
    assert_eq!(count(&stderr, ADOPTED), 0, "stderr:\n{stderr}");
    assert!(!stderr.contains("no copy was found"), "stderr:\n{stderr}");
}

#[test]
fn burst_copied_into_copy_truncate_dirs_is_recovered() {
    let stderr = burst_then_copytruncate(
        &["app.log"],
        "    CopyTruncateDirs: [old]\n",
        "old/app.log.1",
        Copier::SlowLoop,
    );
    assert_eq!(count(&stderr, RECOVERED), 1, "stderr:\n{stderr}");
}

/// `cp app.log app.log.bak` with no truncation: the copy's bytes were
/// collected from the original and are not read again; what is appended
/// to the copy later is collected.
#[test]
fn a_deliberate_duplicate_is_not_read_twice() {
    let env = Env::new();
    let app = env.logs.join("app.log");
    let fifo = env.root().join("sink.fifo");
    mkfifo(&fifo);
    append(&app, &lines(0, 1000));
    write_config(&env, &["app.log*"], "", &fifo);
    let relay = SlowRelay::start(&fifo, &env.out, 12 << 20);
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let end = 1000 + BURST;
    append(&app, &lines(1000, end));
    let backup = env.logs.join("app.log.bak");
    run(Command::new("cp").arg(&app).arg(&backup));
    append(&app, &lines(end, end + 1000));
    let mut out = OutReader::new(&env.out, LINE);
    let report = wait_all_arrived(&mut out, end + 1000, Duration::from_secs(120));
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report:?}");
    // Lines appended to the duplicate itself are its own.
    assert!(wait_until(Duration::from_secs(20), || agent
        .stderr()
        .contains(
            "a duplicate whose bytes were collected from the original"
        )));
    append(&backup, &lines(end + 1000, end + 1100));
    let report = wait_all_arrived(&mut out, end + 1100, Duration::from_secs(30));
    agent.terminate();
    relay.join();
    out.update();
    let final_report = out.report(end + 1100);
    eprintln!("deliberate duplicate: {final_report:?}");
    assert_eq!(report, final_report);
    assert_eq!(
        (final_report.lost, final_report.duplicated),
        (0, 0),
        "{final_report:?}\nstderr:\n{}",
        agent.stderr()
    );
}

/// Three logrotate-style copytruncate rotations in 15 s while lines are
/// written at 20 MB/s, the copies named `app.log-N` outside the pattern.
/// The writer makes each copy and truncation between two writes, as
/// logrotate's window would be if no line fell into it.
#[test]
fn three_rotations_at_20_mb_per_s_outside_the_pattern_lose_nothing() {
    const LONG: usize = 1000;
    const RATE: u64 = 20 * 1024 * 1024 / (LONG as u64 + 1);
    const SECS: u64 = 15;
    let env = Env::new();
    let app = env.logs.join("app.log");
    std::fs::write(&app, b"").unwrap();
    write_config(&env, &["app.log"], "", &env.out);
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let total = RATE * SECS;
    let rotate_at = [total / 4, total / 2, 3 * total / 4];
    let writer_app: PathBuf = app.clone();
    let writer = std::thread::spawn(move || {
        let mut f = OpenOptions::new().append(true).open(&writer_app).unwrap();
        let t0 = Instant::now();
        let mut seq = 0u64;
        let mut rotations = 0;
        let mut buf = Vec::new();
        while seq < total {
            let due = ((t0.elapsed().as_secs_f64() * RATE as f64) as u64).clamp(seq + 1, total);
            buf.clear();
            while seq < due {
                if rotate_at.contains(&seq) {
                    f.write_all(&buf).unwrap();
                    buf.clear();
                    rotations += 1;
                    let mut to = writer_app.clone().into_os_string();
                    to.push(format!("-{rotations}"));
                    run(Command::new("cp").arg(&writer_app).arg(&to));
                    run(Command::new("truncate").arg("-s").arg("0").arg(&writer_app));
                }
                buf.extend_from_slice(seq_line(seq, LONG).as_bytes());
                buf.push(b'\n');
                seq += 1;
            }
            f.write_all(&buf).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    });
    let took = writer.join().unwrap();
    let mut out = OutReader::new(&env.out, LONG);
    let report = wait_all_arrived(&mut out, total, Duration::from_secs(60));
    agent.terminate();
    out.update();
    let stderr = agent.stderr();
    eprintln!(
        "{total} lines of {LONG} bytes in {took:?}, 3 copytruncate rotations: {:?}; {} recovered",
        out.report(total),
        count(&stderr, RECOVERED)
    );
    assert_eq!(report, out.report(total));
    assert_eq!(
        (report.lost, report.duplicated, report.corrupt),
        (0, 0, 0),
        "{report:?}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("no copy was found"), "stderr:\n{stderr}");
}

/// The agent is killed (SIGKILL), lines are appended, the file is copied
/// away and truncated, more lines are appended, and the agent restarts:
/// the copy continues from the checkpoint, in or outside the patterns.
fn copytruncate_while_down(patterns: &[&str], copy_to: &str) -> String {
    let env = Env::new();
    let app = env.logs.join("app.log");
    append(&app, &lines(0, 20_000));
    write_config(&env, patterns, "", &env.out);
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut out = OutReader::new(&env.out, LINE);
    let first = wait_all_arrived(&mut out, 20_000, Duration::from_secs(30));
    assert_eq!(first.lost, 0, "{first:?}");
    // Let the checkpoint of what arrived be written (every 100 ms).
    assert!(wait_until(Duration::from_secs(10), || {
        checkpoint_offset(&env.data, "app", &app) == Some(20_000 * (LINE as u64 + 1))
    }));
    agent.kill();
    append(&app, &lines(20_000, 60_000));
    run(Command::new("cp").arg(&app).arg(env.logs.join(copy_to)));
    run(Command::new("truncate").arg("-s").arg("0").arg(&app));
    append(&app, &lines(60_000, 70_000));
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let report = wait_all_arrived(&mut out, 70_000, Duration::from_secs(60));
    agent.terminate();
    out.update();
    let stderr = agent.stderr();
    eprintln!("copytruncate to {copy_to} while the agent was down: {report:?}");
    assert_eq!(report, out.report(70_000));
    assert_eq!(
        (report.lost, report.duplicated, report.corrupt),
        (0, 0, 0),
        "{report:?}\nstderr:\n{stderr}"
    );
    stderr
}

#[test]
fn copytruncate_while_the_agent_is_down_continues_in_the_copy() {
    let stderr = copytruncate_while_down(&["app.log*"], "app.log.1");
    assert_eq!(count(&stderr, ADOPTED), 1, "stderr:\n{stderr}");
}

#[test]
fn copytruncate_while_the_agent_is_down_is_recovered_outside_the_pattern() {
    let stderr = copytruncate_while_down(&["app.log"], "app.log.1");
    assert_eq!(count(&stderr, RECOVERED), 1, "stderr:\n{stderr}");
}
