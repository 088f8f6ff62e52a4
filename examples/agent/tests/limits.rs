//! Resource limits at the agent level: `--cpu-limit` slows a catch-up down
//! to the limit (the agent's own CPU, read from /proc by the test, averaged
//! over every 10 s window, or over the whole catch-up when it is shorter)
//! and every line still arrives; memory over `--mem-limit` makes the
//! worker stop for a restart, and the supervisor starts it again, losing
//! and doubling nothing; `--max-send-rate` holds all flushers of all
//! pipelines together to the rate; limits that cannot be used stop the
//! start with exit code 2 and say why.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const LINE: usize = 200;

/// User + system ticks of `pid` (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let u: u64 = f.nth(11)?.parse().ok()?;
    let st: u64 = f.next()?.parse().ok()?;
    Some(u + st)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[test]
fn cpu_limit_slows_a_catch_up_to_the_limit_and_loses_nothing() {
    // A 300 MB backlog, read whole at start (TailSizeKB): about 1.5 s of
    // CPU at full speed, so more than 10 s at the limit. The issue's
    // figure (1 GB at 0.2 cores) runs with LOGTAIL_TEST_CATCHUP_MB=1024
    // LOGTAIL_TEST_CPU_LIMIT=0.2.
    let env_or = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(d)
    };
    let limit = env_or("LOGTAIL_TEST_CPU_LIMIT", 0.1);
    let mb = env_or("LOGTAIL_TEST_CATCHUP_MB", 300.0) as u64;
    let env = Env::new();
    let lines = mb * 1024 * 1024 / (LINE as u64 + 1);
    {
        let mut f = std::fs::File::create(env.logs.join("app.log")).unwrap();
        let mut buf = Vec::with_capacity(8 << 20);
        for seq in 0..lines {
            buf.extend_from_slice(seq_line(seq, LINE).as_bytes());
            buf.push(b'\n');
            if buf.len() >= 8 << 20 {
                f.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        f.write_all(&buf).unwrap();
    }
    env.write_config(&["*.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let limit_arg = limit.to_string();
    let mut agent = Agent::spawn(
        AGENT,
        &[&env.config],
        &env.data,
        &["--cpu-limit", &limit_arg],
    );
    let pid = agent.pid();
    let hz = ticks_per_sec();
    let t0 = Instant::now();
    let mut samples = vec![(0.0f64, cpu_ticks(pid).unwrap_or(0))];
    let mut out = OutReader::new(&env.out, LINE);
    let deadline = t0 + Duration::from_secs(240);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(t) = cpu_ticks(pid) {
            samples.push((t0.elapsed().as_secs_f64(), t));
        }
        out.update();
        if out.distinct_below(lines) == lines {
            break;
        }
        agent.assert_alive("during the catch-up");
    }
    let took = t0.elapsed();
    let report = wait_all_arrived(&mut out, lines, Duration::from_secs(5));
    agent.terminate();
    // Mean CPU over every 10 s window of the catch-up (the whole catch-up
    // if it is shorter).
    let span = samples.last().map_or(0.0, |s| s.0).min(10.0) - 0.01;
    let mut worst = 0.0f64;
    let mut windows = 0;
    for (i, &(t_start, c_start)) in samples.iter().enumerate() {
        if let Some(&(t_end, c_end)) = samples[i..].iter().find(|(t, _)| *t >= t_start + span) {
            let mean = (c_end - c_start) as f64 / hz / (t_end - t_start);
            worst = worst.max(mean);
            windows += 1;
        }
    }
    let total_cpu = samples.last().map_or(0, |s| s.1) as f64 / hz;
    eprintln!(
        "--cpu-limit {limit}: {lines} lines ({} MB) in {took:?}, agent CPU {total_cpu:.2} s, worst 10 s mean {worst:.3} cores over {windows} windows; {report:?}",
        lines * (LINE as u64 + 1) / 1_000_000
    );
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report:?}");
    assert!(windows >= 1, "no window measured");
    // Throttled: it took far longer than its CPU time.
    assert!(
        took.as_secs_f64() >= 3.0 * total_cpu,
        "{took:?} for {total_cpu:.2} s of CPU: not held back"
    );
    assert!(
        worst <= 1.25 * limit,
        "a 10 s window averaged {worst:.3} cores (limit {limit})\nstderr:\n{}",
        agent.stderr()
    );
    assert!(
        agent.stderr().contains("slowing reading down"),
        "stderr:\n{}",
        agent.stderr()
    );
}

fn start_error(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("app.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}/*.log]\nflushers:\n  - Type: flusher_blackhole\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(AGENT);
    cmd.arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(args)
        .env_remove("cpu_usage_limit")
        .env_remove("mem_usage_limit")
        .env_remove("LOONG_CPU_USAGE_LIMIT")
        .env_remove("LOONG_MEM_USAGE_LIMIT")
        .env_remove("max_bytes_per_sec")
        .env_remove("LOONG_MAX_BYTES_PER_SEC");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_limits_stop_the_start_and_say_why() {
    let (code, err) = start_error(&["--cpu-limit", "0.01"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--cpu-limit: 0.01 is out of range"), "{err}");
    let (code, err) = start_error(&[], &[("LOONG_MEM_USAGE_LIMIT", "lots")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("LOONG_MEM_USAGE_LIMIT: \"lots\" is not a number"),
        "{err}"
    );
    let (code, err) = start_error(&[], &[("mem_usage_limit", "64")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("mem_usage_limit: 64 is out of range"), "{err}");
    let (code, err) = start_error(&["--max-send-rate", "1000"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--max-send-rate: 1000 is out of range"),
        "{err}"
    );
    let (code, err) = start_error(&[], &[("max_bytes_per_sec", "-5")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("max_bytes_per_sec"), "{err}");
    // Both of LoongCollector's forms are read…
    let (code, err) = start_error(&[], &[("LOONG_CPU_USAGE_LIMIT", "0.01")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("LOONG_CPU_USAGE_LIMIT: 0.01 is out of range"),
        "{err}"
    );
    // …and a flag wins: with --cpu-limit given, the unusable variable is
    // not even looked at (the start fails on the memory flag instead).
    let (code, err) = start_error(
        &["--cpu-limit", "0.5", "--mem-limit", "1"],
        &[("cpu_usage_limit", "lots")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--mem-limit: 1 is out of range") && !err.contains("cpu_usage_limit"),
        "{err}"
    );
    // Times and counts: refused with their range, never clamped (nor a
    // panic on NaN or infinity).
    for (flag, value) in [
        ("--limit-check-secs", "NaN"),
        ("--limit-check-secs", "0.1"),
        ("--upgrade-probation-secs", "1e30"),
        ("--heartbeat-secs", "inf"),
        ("--limit-checks", "0"),
        ("--log-file-mib", "0"),
    ] {
        let (code, err) = start_error(&[flag, value], &[]);
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(!err.contains("panicked"), "{flag} {value}: {err}");
    }
}

/// Huge lines (8 MiB each) queue up behind a flusher held to 20 MB/s:
/// the worker's memory passes `--mem-limit 128` for 3 checks in a row,
/// it stops for a restart (exit code 3: what it read but could not
/// deliver is not acknowledged, so it is read again), the supervisor
/// starts it again, and every line arrives once.
#[test]
fn memory_over_the_limit_restarts_the_worker_and_loses_nothing() {
    const BIG: usize = (8 << 20) - 1;
    const LINES: u64 = 30;
    let env = Env::new();
    {
        let mut f = std::fs::File::create(env.logs.join("app.log")).unwrap();
        for seq in 0..LINES {
            writeln!(f, "{}", seq_line(seq, BIG)).unwrap();
        }
    }
    env.write_config(
        &["*.log"],
        &format!(
            "    TailSizeKB: {TAIL_ALL_KB}\n    MaxLineBytes: {}\n",
            16 << 20
        ),
    );
    let mut agent = Agent::spawn_supervised(
        AGENT,
        &[&env.config],
        &env.data,
        &[
            "--mem-limit",
            "128",
            "--limit-check-secs",
            "0.5",
            "--limit-checks",
            "3",
            "--max-send-rate",
            "20971520",
            // The per-pipeline cap would hold memory under the limit.
            "--max-in-flight-mb",
            "1024",
        ],
    );
    agent.wait_started();
    let mut out = OutReader::new(&env.out, BIG);
    let report = wait_all_arrived(&mut out, LINES, Duration::from_secs(120));
    let log = agent.stderr();
    agent.terminate();
    let restarts = log
        .matches("the worker stopped over a resource limit (exit code 3)")
        .count();
    eprintln!("{restarts} restarts over the memory limit; {report:?}");
    assert!(restarts >= 1, "no restart over the memory limit:\n{log}");
    // The supervisor says which limit (the worker wrote it down).
    assert!(
        log.contains("the worker stopped over a resource limit (exit code 3): memory"),
        "{log}"
    );
    assert_eq!(report, SeqReport::default(), "{log}");
}

/// Two pipelines, one flusher each, under `--max-send-rate 1 MiB/s`:
/// together they deliver 6 MiB in no less than the rate allows (the
/// first second's worth is a burst), and everything arrives.
#[test]
fn max_send_rate_holds_all_flushers_together() {
    const RATE: f64 = 1_048_576.0;
    let env = Env::new();
    let lines = 3 * 1024 * 1024 / (LINE as u64 + 1);
    let second_out = env.root().join("second.jsonl");
    for name in ["a", "b"] {
        let mut f = std::fs::File::create(env.logs.join(format!("{name}.log"))).unwrap();
        for seq in 0..lines {
            writeln!(f, "{}", seq_line(seq, LINE)).unwrap();
        }
    }
    env.write_config(&["a.log"], &format!("    TailSizeKB: {TAIL_ALL_KB}\n"));
    let second = env.root().join("second.yaml");
    std::fs::write(
        &second,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}]\n    TailSizeKB: {TAIL_ALL_KB}\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
            env.logs.join("b.log").display(),
            second_out.display()
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let mut agent = Agent::spawn(
        AGENT,
        &[&env.config, &second],
        &env.data,
        &["--max-send-rate", "1048576"],
    );
    agent.wait_started();
    let mut a = OutReader::new(&env.out, LINE);
    let mut b = OutReader::new(&second_out, LINE);
    let ra = wait_all_arrived(&mut a, lines, Duration::from_secs(60));
    let rb = wait_all_arrived(&mut b, lines, Duration::from_secs(60));
    let took = t0.elapsed().as_secs_f64();
    agent.terminate();
    let bytes = 2.0 * (lines * (LINE as u64 + 1)) as f64;
    eprintln!(
        "{:.1} MiB through 2 flushers in {took:.2} s: {:.2} MiB/s (limit 1 MiB/s)",
        bytes / RATE,
        bytes / RATE / took
    );
    assert_eq!((ra, rb), (SeqReport::default(), SeqReport::default()));
    // At most one second of burst above the rate.
    assert!(
        took >= (bytes - RATE) / RATE,
        "{took:.2} s: faster than the limit"
    );
}
