//! The supervisor (the agent's default: a supervisor process and one
//! worker): a killed worker is restarted within 2 s and loses nothing, a
//! crash loop backs off, signals are passed on, and `logtail-agent
//! upgrade` switches binaries under load without losing or doubling a
//! line, rolling a broken binary back.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// 20 MB/s: 20 000 lines of 1000 bytes a second.
const LINE_LEN: usize = 999;
const PER_SEC: u64 = 20_000;

fn supervised(env: &Env, extra: &[&str]) -> Agent {
    let mut a = Agent::spawn_supervised(AGENT, &[&env.config], &env.data, extra);
    a.wait_started();
    a
}

/// The worker's pid once it is a running logtail-agent other than `not`.
fn wait_worker(agent: &Agent, not: Option<i32>, timeout: Duration) -> Option<(i32, Duration)> {
    let t0 = Instant::now();
    let mut found = None;
    wait_until(timeout, || {
        found = agent.worker_pid().filter(|p| Some(*p) != not);
        found.is_some()
    });
    found.map(|p| (p, t0.elapsed()))
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid of this test's own process tree.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) only checks that the pid exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn sigkill_of_the_worker_under_20_mb_s_is_restarted_within_2_s_and_loses_nothing() {
    const LINES: u64 = 160_000; // 8 s at 20 MB/s
    let env = Env::new();
    env.write_config(&["app.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let mut agent = supervised(&env, &[]);
    let (first, _) = wait_worker(&agent, None, Duration::from_secs(5)).expect("a worker");
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: PER_SEC,
        rotate_at: vec![],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);
    assert!(wait_until(Duration::from_secs(30), || writer.written() >= 40_000));
    kill(first, libc::SIGKILL);
    let (second, took) =
        wait_worker(&agent, Some(first), Duration::from_secs(10)).expect("a new worker");
    println!("worker {first} SIGKILLed; worker {second} started {took:?} later");
    assert!(took < Duration::from_secs(2), "restart took {took:?}");
    assert!(wait_until(Duration::from_secs(10), || count(
        &agent.stderr(),
        "logtail-agent started"
    ) == 2));
    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    println!("{report:?}");
    assert_eq!(report.lost, 0, "{report:?}\n{}", agent.stderr());
    assert_eq!((report.bad, report.corrupt, report.unexpected), (0, 0, 0));
    let log = agent.stderr();
    assert!(
        log.contains("the worker was killed by signal 9") && log.contains("restarting it in 1 s"),
        "{log}"
    );
    agent.terminate();
}

#[test]
fn a_crash_loop_backs_off_and_signals_are_passed_on() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    let mut agent = supervised(&env, &[]);
    // Each new worker is killed as soon as it runs: 1 s, 2 s, 4 s apart.
    let mut pid = wait_worker(&agent, None, Duration::from_secs(5))
        .expect("worker")
        .0;
    let mut gaps = Vec::new();
    let mut mark = 0;
    for _ in 0..3 {
        mark = agent.stderr().len();
        kill(pid, libc::SIGKILL);
        let (next, took) =
            wait_worker(&agent, Some(pid), Duration::from_secs(15)).expect("restarted");
        gaps.push(took);
        pid = next;
    }
    println!("restart gaps: {gaps:?}");
    for (gap, want) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        let s = gap.as_secs_f64();
        assert!(s >= want - 0.05 && s < want + 1.0, "gaps {gaps:?}");
    }
    // SIGHUP reaches the worker (it reloads) and keeps it running.
    assert!(wait_until(Duration::from_secs(10), || agent.stderr()
        [mark..]
        .contains("logtail-agent started")));
    agent.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .stderr()
            .contains("SIGHUP: reloading configs")),
        "{}",
        agent.stderr()
    );
    assert_eq!(agent.worker_pid(), Some(pid));
    // SIGTERM stops the worker gracefully and the supervisor exits 0.
    agent.terminate();
    let log = agent.stderr();
    assert!(
        log.contains("the worker stopped (exit code 0); supervisor exits"),
        "{log}"
    );
    assert!(!alive(pid), "the worker outlived its supervisor");
}

#[test]
fn a_killed_supervisor_stops_its_worker_gracefully() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    let mut agent = supervised(&env, &[]);
    let worker = wait_worker(&agent, None, Duration::from_secs(5))
        .expect("worker")
        .0;
    agent.kill();
    // The worker gets SIGTERM (parent-death signal) and stops as on request.
    assert!(
        wait_until(Duration::from_secs(10), || !alive(worker)),
        "worker {worker} still runs"
    );
    assert!(
        agent.stderr().contains("logtail_agent::worker: stopped"),
        "{}",
        agent.stderr()
    );
}

/// One agent per data dir: a second one waits for the first, then refuses
/// (exit 2) naming the pid that holds it; once a killed supervisor's
/// worker has finished its graceful stop, a new agent starts there.
#[test]
fn a_second_agent_on_the_same_data_dir_waits_then_refuses() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    let mut first = supervised(&env, &[]);
    let worker = wait_worker(&first, None, Duration::from_secs(5))
        .expect("worker")
        .0;
    let t0 = Instant::now();
    let out = Command::new(AGENT)
        .arg("--config")
        .arg(&env.config)
        .arg("--data-dir")
        .arg(&env.data)
        .args(["--no-supervisor", "--lock-wait-secs", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("another logtail-agent (pid {})", first.pid()))
            && err.contains("--data-dir"),
        "{err}"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1), "did not wait");
    assert!(alive(worker), "the first agent's worker went away");
    // The supervisor is killed: its worker stops gracefully, still holding
    // the data dir; the next agent starts once it has gone.
    first.kill();
    let mut next = Agent::spawn(
        AGENT,
        &[&env.config],
        &env.data,
        &["--lock-wait-secs", "30"],
    );
    next.wait_started();
    assert!(
        wait_until(Duration::from_secs(2), || !alive(worker)),
        "the new agent started while worker {worker} still ran"
    );
    assert!(
        first.stderr().contains("logtail_agent::worker: stopped"),
        "{}",
        first.stderr()
    );
    next.terminate();
}

/// A copy of the agent binary at `dir/name` (an "upgrade" to the same code
/// in another file: what the supervisor runs is told by /proc/PID/exe).
fn copy_binary(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(AGENT, &to).unwrap();
    to
}

fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

fn upgrade(data: &Path, binary: &Path) -> (bool, String) {
    let out = Command::new(AGENT)
        .args(["upgrade", "--data-dir"])
        .arg(data)
        .arg("--binary")
        .arg(binary)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn upgrade_under_20_mb_s_loses_and_doubles_nothing() {
    const LINES: u64 = 200_000; // 10 s at 20 MB/s
    let env = Env::new();
    env.write_config(&["app.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let new = copy_binary(env.root(), "logtail-agent.new")
        .canonicalize()
        .unwrap();
    let mut agent = supervised(&env, &["--upgrade-probation-secs", "2"]);
    let supervisor = agent.pid();
    let (old_worker, _) = wait_worker(&agent, None, Duration::from_secs(5)).expect("worker");
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: PER_SEC,
        rotate_at: vec![],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);
    assert!(wait_until(Duration::from_secs(30), || writer.written() >= 50_000));
    let (ok, said) = upgrade(&env.data, &new);
    println!("{said}");
    assert!(ok, "{said}\n{}", agent.stderr());
    assert!(said.contains("ok upgraded"), "{said}");
    // The worker runs the new binary; the supervisor re-executed itself as
    // it (same pid) and still watches the worker.
    let (new_worker, _) = wait_worker(&agent, Some(old_worker), Duration::from_secs(5)).unwrap();
    assert_eq!(exe_of(new_worker), Some(new.clone()));
    assert!(
        wait_until(Duration::from_secs(5), || exe_of(supervisor)
            == Some(new.clone())),
        "supervisor runs {:?}",
        exe_of(supervisor)
    );
    assert_eq!(agent.worker_pid(), Some(new_worker));
    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    println!("{report:?}");
    assert_eq!(report, SeqReport::default(), "{}", agent.stderr());
    // The re-executed supervisor still stops its worker on SIGTERM.
    agent.terminate();
    out.update();
    assert_eq!(out.report(LINES), SeqReport::default());
}

#[test]
fn a_broken_new_binary_is_rolled_back_and_loses_nothing() {
    const LINES: u64 = 120_000;
    let env = Env::new();
    env.write_config(&["app.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    // Answers --version like an agent, then fails as a worker.
    let broken = env.root().join("broken-agent");
    std::fs::write(
        &broken,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'logtail-agent 9.9.9'; exit 0; fi\necho 'cannot start' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let not_an_agent = env.root().join("true");
    std::fs::copy("/bin/true", &not_an_agent).unwrap();

    let mut agent = supervised(&env, &["--upgrade-probation-secs", "10"]);
    let supervisor = agent.pid();
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: PER_SEC,
        rotate_at: vec![],
    });
    let mut out = OutReader::new(&env.out, LINE_LEN);
    assert!(wait_until(Duration::from_secs(30), || writer.written() >= 30_000));
    // A binary that is no agent is refused before anything stops.
    let (ok, said) = upgrade(&env.data, &not_an_agent);
    assert!(
        !ok && said.contains("error refused") && said.contains("not a logtail-agent"),
        "{said}"
    );
    let t0 = Instant::now();
    let (ok, said) = upgrade(&env.data, &broken);
    println!("{said}");
    assert!(!ok, "{said}");
    assert!(said.contains("error rolled back"), "{said}");
    // Rolled back at once, not after the whole probation.
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    let (worker, _) = wait_worker(&agent, None, Duration::from_secs(5)).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || exe_of(worker)
            == Some(PathBuf::from(AGENT).canonicalize().unwrap())),
        "worker runs {:?}",
        exe_of(worker)
    );
    assert_eq!(
        exe_of(supervisor),
        Some(PathBuf::from(AGENT).canonicalize().unwrap())
    );
    assert_eq!(writer.join(), LINES);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(60));
    println!("{report:?}");
    assert_eq!(report, SeqReport::default(), "{}", agent.stderr());
    agent.terminate();
}

#[test]
fn the_agent_log_goes_to_the_data_dir_and_not_to_a_non_terminal_stderr() {
    let env = Env::new();
    env.write_config(&["app.log"], "");
    let stderr = env.root().join("stderr");
    let mut child = Command::new(AGENT)
        .arg("--config")
        .arg(&env.config)
        .arg("--data-dir")
        .arg(&env.data)
        .stderr(std::fs::File::create(&stderr).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = env.data.join("logtail-agent.LOG");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(20), || read()
        .contains("logtail-agent started")));
    kill(child.id() as i32, libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let text = read();
    // Both processes write it: the supervisor's lines and the worker's.
    assert!(text.contains("logtail-agent supervisor started"), "{text}");
    assert!(text.contains("logtail_agent::worker: stopped"), "{text}");
    assert!(text.contains("supervisor exits"), "{text}");
    assert_eq!(std::fs::read_to_string(&stderr).unwrap(), "");
}
