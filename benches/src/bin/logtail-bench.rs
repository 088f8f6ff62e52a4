//! `logtail-bench`: measures the real `logtail-agent` process.
//!
//! ```text
//! cargo build --release -p logtail-agent -p logtail-sls-receiver -p logtail-benches
//! target/release/logtail-bench catch-up --size-mb 1024     # ship a 1 GiB file to flusher_blackhole
//! target/release/logtail-bench steady --rate-mbps 10 --seconds 20
//! target/release/logtail-bench sls --size-mb 512 [--compress lz4|zstd] [--signature v1|v4] [--data generated|nginx-sample] [--runs N] [--pin-agent CPU]
//! target/release/logtail-bench sls-compare --size-mb 512 [--compress lz4|zstd]
//! ```
//! Prints MB/s, the agent's CPU seconds (from /proc/PID/stat) and its peak
//! RSS (VmHWM). The agent is found next to this binary unless `--agent` says.
//!
//! `sls` ships a file of generated nginx access lines with the real agent's
//! `flusher_sls` to the loopback SLS receiver running in this process (in
//! count-only mode: every request is still verified and decoded).
//! `--data nginx-sample` ships the real nginx sample from `shared/data`
//! (or `LOGTAIL_NGINX_SAMPLE`) repeated to the size instead. `--runs N`
//! repeats the run on the same file and prints min / median / max agent
//! CPU per GB (this machine's figures vary by ±15 % run to run);
//! `--pin-agent CPU` keeps the agent on that CPU and the receiver off it.
//!
//! `sls-compare` sends the same lines, in-process, through our `SlsSink`
//! and through the official `aliyun-log-producer`, each phase in a child
//! process of its own (`sls-phase`, so CPU and peak RSS are its own) and
//! each to a fresh `logtail-sls-receiver --count-only` child (so the
//! receiver's CPU is measured apart).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logtail_benches::{generate_lines, AccessLogGen};

/// AccessKey the receivers accept and the senders sign with.
const KEY_ID: &str = "bench-key-id";
const KEY_SECRET: &str = "bench-key-secret";

struct Opts {
    mode: String,
    agent: PathBuf,
    size_mb: u64,
    rate_mbps: f64,
    seconds: u64,
    line_bytes: usize,
    compress: String,
    signature: String,
    receiver: PathBuf,
    /// `sls-phase` only: `ours` or `producer`, and the receiver's endpoint.
    which: String,
    endpoint: String,
    /// `sls-compare`: bound on our sink's unacknowledged 1 MiB batches.
    window: usize,
    /// `sls`: `generated` (AccessLogGen) or `nginx-sample`.
    data: String,
    /// `sls`: how many runs on the same file (min / median / max printed).
    runs: usize,
    /// `sls`: run the agent on this CPU only and the receiver on the others.
    pin_agent: Option<usize>,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("usage: logtail-bench catch-up|steady|sls|sls-compare [--size-mb N] [--rate-mbps N] [--seconds N] [--line-bytes N] [--compress lz4|zstd|none] [--signature v1|v4] [--data generated|nginx-sample] [--runs N] [--pin-agent CPU] [--agent PATH] [--receiver PATH]")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut o = Opts {
        agent: exe.with_file_name("logtail-agent"),
        receiver: exe.with_file_name("logtail-sls-receiver"),
        size_mb: if mode.starts_with("sls") { 512 } else { 1024 },
        rate_mbps: 10.0,
        seconds: 20,
        line_bytes: 185,
        compress: "lz4".into(),
        signature: "v1".into(),
        which: String::new(),
        endpoint: String::new(),
        window: 16,
        data: "generated".into(),
        runs: 1,
        pin_agent: None,
        mode,
    };
    while let Some(flag) = args.next() {
        let val = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--agent" => o.agent = PathBuf::from(val),
            "--size-mb" => o.size_mb = num(&val)? as u64,
            "--rate-mbps" => o.rate_mbps = num(&val)?,
            "--seconds" => o.seconds = num(&val)? as u64,
            "--line-bytes" => o.line_bytes = num(&val)? as usize,
            "--compress" => o.compress = val,
            "--signature" => o.signature = val,
            "--receiver" => o.receiver = PathBuf::from(val),
            "--which" => o.which = val,
            "--endpoint" => o.endpoint = val,
            "--window" => o.window = num(&val)? as usize,
            "--data" => o.data = val,
            "--runs" => o.runs = num(&val)? as usize,
            "--pin-agent" => o.pin_agent = Some(num(&val)? as usize),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// CPU seconds (user + system) of a process.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of a process's threads, summed by thread name with digits
/// dropped (`sls-send-3` → `sls-send-`), largest first: where the CPU went.
fn cpu_by_thread(pid: u32) -> String {
    let mut by: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name: String = name
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let cpu = stat_cpu_seconds(&dir.join("stat").to_string_lossy());
        match by.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += cpu,
            None => by.push((name, cpu)),
        }
    }
    by.sort_by(|a, b| b.1.total_cmp(&a.1));
    by.iter()
        .filter(|(_, c)| *c > 0.0)
        .map(|(n, c)| format!("{n} {c:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: constant query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Peak resident set size in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The acknowledged offset of `log` in the agent's checkpoint file.
fn acked_offset(ckpt: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(ckpt) else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.split("\"offset\":").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|v| v.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

fn start_agent(agent: &Path, dir: &Path, log_glob: &Path) -> Result<Child, String> {
    start_agent_with(agent, dir, log_glob, "  - Type: flusher_blackhole\n", &[])
}

/// Starts the agent with `flushers` (YAML list items) and extra arguments.
fn start_agent_with(
    agent: &Path,
    dir: &Path,
    log_glob: &Path,
    flushers: &str,
    extra: &[&str],
) -> Result<Child, String> {
    spawn_agent(agent_command(agent, dir, log_glob, flushers, extra)?, agent)
}

/// The agent's command line; writes its config into `dir`.
fn agent_command(
    agent: &Path,
    dir: &Path,
    log_glob: &Path,
    flushers: &str,
    extra: &[&str],
) -> Result<Command, String> {
    let cfg = dir.join("bench.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}]\n    TailSizeKB: 10485760\nflushers:\n{flushers}",
            log_glob.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(agent);
    cmd.args(extra)
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-level")
        .arg("warn")
        // Measured: the process that reads, without a supervisor.
        .arg("--no-supervisor")
        .stdout(Stdio::null());
    Ok(cmd)
}

fn spawn_agent(mut cmd: Command, agent: &Path) -> Result<Child, String> {
    cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e} (build it: cargo build --release -p logtail-agent)",
            agent.display()
        )
    })
}

/// The CPU set holding `cpus`.
fn cpu_set(cpus: impl Iterator<Item = usize>) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

/// Runs the calling process (the child between fork and exec, or this
/// process and the threads it starts later) on `set` only.
fn set_affinity(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: the call reads the set we own; async-signal-safe.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs the child on CPU `cpu` only.
fn pin_child(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(std::iter::once(cpu));
    // SAFETY: between fork and exec the hook only calls sched_setaffinity
    // (async-signal-safe) on a set built before the fork.
    unsafe {
        cmd.pre_exec(move || set_affinity(&set));
    }
}

/// Keeps this process (and the threads it starts later) off CPU `cpu`.
fn pin_self_away_from(cpu: usize) -> Result<(), String> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 || cpu >= n {
        return Err(format!(
            "--pin-agent {cpu}: needs another CPU of {n} for the receiver"
        ));
    }
    set_affinity(&cpu_set((0..n).filter(|&c| c != cpu)))
        .map_err(|e| format!("sched_setaffinity: {e}"))
}

fn wait_acked(ckpt: &Path, size: u64, limit: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    while acked_offset(ckpt) < size {
        if t0.elapsed() > limit {
            return Err(format!(
                "agent did not catch up within {limit:?} (acked {})",
                acked_offset(ckpt)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(t0.elapsed())
}

fn stop(mut child: Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn catch_up(o: &Opts, dir: &Path) -> Result<(), String> {
    let log = dir.join("big.log");
    let size = o.size_mb << 20;
    eprintln!(
        "generating {} MiB of {}-byte lines…",
        o.size_mb, o.line_bytes
    );
    let mut f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let block = generate_lines(64 << 20, o.line_bytes);
    let mut written = 0u64;
    while written < size {
        let n = block.len().min((size - written) as usize);
        // Cut at a line end so the file is whole lines (a partial last line
        // would be held for FlushTimeoutSecs and measured as latency).
        let Some(n) = block[..n].iter().rposition(|&b| b == b'\n').map(|i| i + 1) else {
            break;
        };
        f.write_all(&block[..n]).map_err(|e| e.to_string())?;
        written += n as u64;
    }
    // Let writeback finish first: measure reading a warm, settled cache
    // (as the peers in shared/reference were measured), not the disk.
    f.sync_all().map_err(|e| e.to_string())?;
    drop(f);
    let t0 = Instant::now();
    let child = start_agent(&o.agent, dir, &log)?;
    let pid = child.id();
    let took = wait_acked(
        &dir.join("data/checkpoints/bench.json"),
        written,
        Duration::from_secs(600),
    );
    let wall = t0.elapsed();
    let cpu = cpu_seconds(pid);
    let rss = peak_rss_mib(pid);
    stop(child);
    took?;
    let mb = written as f64 / 1e6;
    println!("catch-up: {mb:.0} MB in {:.2} s wall = {:.0} MB/s; agent CPU {cpu:.2} s ({:.0} MB per CPU-second); peak RSS {rss:.1} MiB", wall.as_secs_f64(), mb / wall.as_secs_f64(), mb / cpu.max(1e-9));
    Ok(())
}

fn steady(o: &Opts, dir: &Path) -> Result<(), String> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let log = logs.join("app.log");
    std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = start_agent(&o.agent, dir, &logs.join("*.log"))?;
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(500));
    let block = generate_lines(4 << 20, o.line_bytes);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .map_err(|e| e.to_string())?;
    // Write in 10 ms ticks, as an application logging steadily would.
    let per_tick = (o.rate_mbps * 1e6 / 100.0) as usize;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut written = 0u64;
    let mut at = 0usize;
    let mut tick = 0u64;
    while t0.elapsed() < Duration::from_secs(o.seconds) {
        let mut want = per_tick;
        while want > 0 {
            if at >= block.len() {
                at = 0;
            }
            let end = block[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(block.len(), |i| at + i + 1);
            f.write_all(&block[at..end]).map_err(|e| e.to_string())?;
            want = want.saturating_sub(end - at);
            written += (end - at) as u64;
            at = end;
        }
        tick += 1;
        let next = Duration::from_millis(10 * tick);
        if let Some(d) = next.checked_sub(t0.elapsed()) {
            std::thread::sleep(d);
        }
    }
    let lag = wait_acked(
        &dir.join("data/checkpoints/bench.json"),
        written,
        Duration::from_secs(60),
    );
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let rss = peak_rss_mib(pid);
    stop(child);
    lag?;
    println!(
        "steady: {:.1} MB/s for {wall:.1} s; agent CPU {cpu:.3} s = {:.2} % of one core; peak RSS {rss:.1} MiB",
        written as f64 / 1e6 / wall,
        100.0 * cpu / wall
    );
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|o| {
        let dir = tempfile_dir()?;
        let r = match o.mode.as_str() {
            "catch-up" => catch_up(&o, &dir),
            "steady" => steady(&o, &dir),
            "sls" => sls(&o, &dir),
            "sls-compare" => sls_compare(&o),
            "sls-phase" => sls_phase(&o, &dir),
            other => Err(format!(
                "unknown mode {other} (catch-up, steady, sls or sls-compare)"
            )),
        };
        let _ = std::fs::remove_dir_all(&dir);
        r
    });
    if let Err(e) = result {
        eprintln!("logtail-bench: {e}");
        std::process::exit(2);
    }
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let d = std::env::temp_dir().join(format!("logtail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// CPU seconds (user + system) this process used so far, all threads.
fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Writes `size` bytes (rounded up to a whole line) of access lines to
/// `path`, generated or the real sample repeated (`data`); returns (bytes,
/// lines, content bytes without newlines).
fn write_access_log(path: &Path, size: u64, data: &str) -> Result<(u64, u64, u64), String> {
    let sample = match data {
        "generated" => None,
        "nginx-sample" => Some(logtail_benches::nginx_sample().ok_or(
            "no nginx sample: expected ../shared/data beside the repo or LOGTAIL_NGINX_SAMPLE",
        )?),
        other => return Err(format!("--data {other}: generated or nginx-sample")),
    };
    let mut f = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut gen = AccessLogGen::new(1);
    let mut buf = Vec::with_capacity(9 << 20);
    let (mut written, mut lines) = (0u64, 0u64);
    while written < size {
        buf.clear();
        let want = (size - written).min(8 << 20) as usize;
        match &sample {
            None => lines += gen.fill(&mut buf, want),
            Some(sample) => {
                buf = logtail_benches::repeat_lines(sample, want);
                lines += memchr::memchr_iter(b'\n', &buf).count() as u64;
            }
        }
        f.write_all(&buf).map_err(|e| e.to_string())?;
        written += buf.len() as u64;
    }
    f.sync_all().map_err(|e| e.to_string())?;
    Ok((written, lines, written - lines))
}

fn compress_of(o: &Opts) -> Result<logtail_core::sls::CompressType, String> {
    o.compress
        .parse()
        .map_err(|e| format!("--compress {}: {e}", o.compress))
}

/// End to end: a file of access lines → the real agent's flusher_sls →
/// the loopback receiver in this process; `--runs` times on the same file,
/// each run with a fresh receiver and agent data directory.
fn sls(o: &Opts, dir: &Path) -> Result<(), String> {
    compress_of(o)?;
    let log = dir.join("access.log");
    eprintln!(
        "writing {} MiB of nginx access lines ({})…",
        o.size_mb, o.data
    );
    let file = write_access_log(&log, o.size_mb << 20, &o.data)?;
    let creds = dir.join("credentials.yaml");
    std::fs::write(
        &creds,
        format!("AccessKeyId: {KEY_ID}\nAccessKeySecret: {KEY_SECRET}\n"),
    )
    .map_err(|e| e.to_string())?;
    if let Some(cpu) = o.pin_agent {
        // This process (the receiver) on the other CPUs, the agent on its own.
        pin_self_away_from(cpu)?;
    }
    let mut per_gb = Vec::new();
    for run in 0..o.runs.max(1) {
        let run_dir = dir.join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
        per_gb.push(sls_run(o, &run_dir, &log, &creds, file)?);
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    if per_gb.len() > 1 {
        per_gb.sort_by(f64::total_cmp);
        println!(
            "sls ({} {}, {}) over {} runs: agent CPU-s per GB min {:.2}, median {:.2}, max {:.2}",
            o.compress,
            o.signature,
            o.data,
            per_gb.len(),
            per_gb[0],
            per_gb[per_gb.len() / 2],
            per_gb[per_gb.len() - 1]
        );
    }
    Ok(())
}

/// One `sls` run; returns the agent's CPU seconds per GB.
fn sls_run(
    o: &Opts,
    dir: &Path,
    log: &Path,
    creds: &Path,
    (written, lines, content): (u64, u64, u64),
) -> Result<f64, String> {
    use logtail_testkit::sls_receiver::{Receiver, ReceiverOptions};
    let r = Receiver::start(ReceiverOptions {
        access_key_id: KEY_ID.into(),
        access_key_secret: KEY_SECRET.into(),
        store_logs: false,
        ..ReceiverOptions::default()
    })
    .map_err(|e| format!("receiver: {e}"))?;
    let flusher = format!(
        "  - Type: flusher_sls\n    Project: bench\n    Logstore: access\n    Region: cn-hangzhou\n    Endpoint: {}\n    CompressType: {}\n    SignatureVersion: {}\n",
        r.endpoint(),
        o.compress,
        o.signature
    );
    let load = loadavg();
    let self0 = self_cpu_seconds();
    let t0 = Instant::now();
    let mut cmd = agent_command(
        &o.agent,
        dir,
        log,
        &flusher,
        &["--credentials-file", creds.to_str().ok_or("path")?],
    )?;
    if let Some(cpu) = o.pin_agent {
        pin_child(&mut cmd, cpu);
    }
    let mut child = spawn_agent(cmd, &o.agent)?;
    let pid = child.id();
    let limit = Duration::from_secs(900);
    let mut failure = None;
    let mut t99 = None;
    while (r.log_count() as u64) < lines {
        if t99.is_none() && r.log_count() as u64 >= lines / 100 * 99 {
            t99 = Some(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > limit {
            failure = Some(format!(
                "receiver counted {} of {lines} logs within {limit:?}",
                r.log_count()
            ));
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            failure = Some(format!("agent exited early: {st}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid);
    let threads = cpu_by_thread(pid);
    let rss = peak_rss_mib(pid);
    let receiver_cpu = self_cpu_seconds() - self0;
    stop(child);
    if let Some(f) = failure {
        return Err(f);
    }
    let violations = r.violations();
    if !violations.is_empty() {
        return Err(format!(
            "receiver rejected requests: {:?}",
            &violations[..violations.len().min(3)]
        ));
    }
    if r.log_count() as u64 != lines || r.content_bytes() != content {
        return Err(format!(
            "receiver got {} logs / {} content bytes, sent {lines} / {content}",
            r.log_count(),
            r.content_bytes()
        ));
    }
    let mb = written as f64 / 1e6;
    let t99 = t99.unwrap_or(wall);
    println!(
        "sls ({} {}, {}): {mb:.0} MB, {lines} lines in {wall:.2} s wall = {:.0} MB/s (99 % of the lines after {t99:.2} s = {:.0} MB/s; the last group waits MaxBatchDelay); agent CPU {cpu:.2} s = {:.2} CPU-s per GB ({threads}); agent peak RSS {rss:.1} MiB; receiver (this process) CPU {receiver_cpu:.2} s; load before {load}",
        o.compress,
        o.signature,
        o.data,
        mb / wall,
        0.99 * mb / t99,
        cpu / (mb / 1e3),
    );
    Ok(cpu / (mb / 1e3))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `logtail-sls-receiver --count-only` child and its running totals.
struct ReceiverChild {
    child: Child,
    endpoint: String,
    /// Logs, content bytes, violations.
    totals: Arc<[AtomicU64; 3]>,
}

impl ReceiverChild {
    fn start(path: &Path) -> Result<ReceiverChild, String> {
        let mut child = Command::new(path)
            .args(["--listen", "127.0.0.1:0", "--count-only"])
            .args(["--access-key-id", KEY_ID, "--access-key-secret", KEY_SECRET])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (build it: cargo build --release -p logtail-sls-receiver)",
                    path.display()
                )
            })?;
        let mut out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = String::new();
        out.read_line(&mut first).map_err(|e| e.to_string())?;
        let endpoint = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or(format!("receiver said {first:?}"))?
            .to_string();
        let totals: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let t = Arc::clone(&totals);
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                for (slot, x) in t.iter().zip(v) {
                    slot.store(x, Ordering::SeqCst);
                }
            }
        });
        Ok(ReceiverChild {
            child,
            endpoint,
            totals,
        })
    }

    fn get(&self, i: usize) -> u64 {
        self.totals[i].load(Ordering::SeqCst)
    }
}

/// The same lines through our SlsSink and through aliyun-log-producer, each
/// in a child `sls-phase` process, each to a fresh receiver child.
fn sls_compare(o: &Opts) -> Result<(), String> {
    compress_of(o)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for which in ["ours", "producer"] {
        if which == "producer" && !cfg!(feature = "producer") {
            println!("aliyun-log-producer: not built in; rebuild with `--features producer` (needs OpenSSL headers) to compare");
            continue;
        }
        let recv = ReceiverChild::start(&o.receiver)?;
        let mut cmd = Command::new(&exe);
        cmd.args(["sls-phase", "--which", which, "--endpoint", &recv.endpoint])
            .args(["--size-mb", &o.size_mb.to_string()])
            .args(["--compress", &o.compress, "--signature", &o.signature])
            .args(["--window", &o.window.to_string()])
            .stdout(Stdio::piped());
        if which == "producer" {
            // The producer addresses `http://PROJECT.ENDPOINT` (no IP
            // endpoints); reach the receiver as the HTTP proxy instead.
            cmd.env("http_proxy", &recv.endpoint)
                .env("HTTP_PROXY", &recv.endpoint)
                .env_remove("no_proxy")
                .env_remove("NO_PROXY");
        }
        let mut phase = cmd.spawn().map_err(|e| e.to_string())?;
        let mut out = std::io::BufReader::new(phase.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let (Some(&lines), Some(&content), Some(&bytes)) = (v.first(), v.get(1), v.get(2)) else {
            return Err(format!("{which}: phase said {line:?}"));
        };
        let load = loadavg();
        let t0 = Instant::now();
        let rcpu0 = cpu_seconds(recv.child.id());
        let limit = Duration::from_secs(900);
        let mut failure = None;
        while recv.get(0) < lines {
            if t0.elapsed() > limit {
                failure = Some(format!(
                    "{which}: receiver counted {} of {lines} within {limit:?}",
                    recv.get(0)
                ));
                break;
            }
            if let Ok(Some(st)) = phase.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                if recv.get(0) < lines {
                    failure = Some(format!(
                        "{which}: phase exited ({st}) with {} of {lines} counted",
                        recv.get(0)
                    ));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let wall = t0.elapsed().as_secs_f64();
        let rcpu = cpu_seconds(recv.child.id()) - rcpu0;
        line.clear();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        let _ = phase.wait();
        let mut recv_child = recv.child;
        let (got, got_bytes, violations) = (
            recv.totals[0].load(Ordering::SeqCst),
            recv.totals[1].load(Ordering::SeqCst),
            recv.totals[2].load(Ordering::SeqCst),
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(recv_child.id() as i32, libc::SIGTERM) };
        let _ = recv_child.wait();
        if let Some(f) = failure {
            return Err(f);
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let (Some(&cpu), Some(&rss)) = (v.first(), v.get(1)) else {
            return Err(format!("{which}: phase said {line:?}"));
        };
        let mb = bytes as f64 / 1e6;
        let name = if which == "ours" {
            "logtail-sdk SlsSink    "
        } else {
            "aliyun-log-producer 0.1.2"
        };
        println!(
            "{name} ({} {}): {lines} lines, {mb:.0} MB in {wall:.2} s = {:.0} MB/s; sender CPU {cpu:.2} s = {:.2} CPU-s per GB, peak RSS {rss:.0} MiB; receiver CPU {rcpu:.2} s; received {got} logs / {got_bytes} content bytes (sent {content}), {violations} rejected; load before {load}",
            o.compress,
            if which == "ours" { o.signature.as_str() } else { "v1" },
            mb / wall,
            cpu / (mb / 1e3),
        );
        if got != lines || got_bytes != content || violations != 0 {
            return Err(format!("{which}: delivery mismatch"));
        }
    }
    Ok(())
}

/// One sender of `sls-compare`, in its own process. Prints `start LINES
/// CONTENT_BYTES BYTES` once the lines are generated, then `done CPU_S
/// PEAK_RSS_MIB` once everything is acknowledged / the producer closed.
fn sls_phase(o: &Opts, dir: &Path) -> Result<(), String> {
    let mut data = Vec::with_capacity(((o.size_mb << 20) + (1 << 20)) as usize);
    let lines = AccessLogGen::new(1).fill(&mut data, (o.size_mb << 20) as usize);
    let data = bytes::Bytes::from(data);
    let bytes = data.len() as u64;
    println!("start {lines} {} {bytes}", bytes - lines);
    let cpu0 = self_cpu_seconds();
    match o.which.as_str() {
        "ours" => phase_ours(o, dir, &data)?,
        "producer" => phase_producer(o, &data)?,
        other => return Err(format!("--which {other}: ours or producer")),
    }
    let cpu = self_cpu_seconds() - cpu0;
    println!("done {cpu:.3} {:.1}", peak_rss_mib(std::process::id()));
    Ok(())
}

/// 1 MiB of whole lines from `at` (as the file input reads chunks).
fn chunk_end(data: &[u8], at: usize) -> usize {
    let lim = (at + (1 << 20)).min(data.len());
    memchr::memrchr(b'\n', &data[at..lim]).map_or(data.len(), |i| at + i + 1)
}

fn phase_ours(o: &Opts, dir: &Path, data: &bytes::Bytes) -> Result<(), String> {
    use logtail_core::ack::{AckToken, BatchId};
    use logtail_core::sls::Credentials;
    use logtail_core::{Event, EventBatch, Sink, SourceTags, Timestamp};
    use logtail_sdk::sinks::sls::{CredentialSource, Endpoint, HostInfo, SlsOptions, SlsSink};
    let mut opts = SlsOptions::new(
        "bench",
        "access",
        "cn-hangzhou",
        Endpoint::parse(&o.endpoint)?,
    );
    opts.compress = compress_of(o)?;
    opts.signature_v4 = o.signature == "v4";
    let mut sink = SlsSink::start(
        "bench",
        opts,
        CredentialSource::Static(Credentials::new(KEY_ID, KEY_SECRET, None)),
        HostInfo {
            ip: "127.0.0.1".into(),
            hostname: "bench".into(),
        },
        &dir.join("sink"),
        None,
    )
    .map_err(|e| e.to_string())?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let source = Arc::new(SourceTags {
        path: "/var/log/nginx/access.log".into(),
        dev: 1,
        inode: 2,
        config: "bench".into(),
    });
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut outstanding = 0usize;
    let wait_ack = |sink: &mut SlsSink, outstanding: &mut usize| -> Result<(), String> {
        sink.flush().map_err(|e| e.to_string())?;
        if rx.recv_timeout(Duration::from_millis(20)).is_ok() {
            *outstanding -= 1;
        }
        while rx.try_recv().is_ok() {
            *outstanding -= 1;
        }
        if Instant::now() > deadline {
            return Err(format!("{outstanding} batches unacknowledged"));
        }
        Ok(())
    };
    let (mut at, mut seq) = (0usize, 0u64);
    while at < data.len() {
        let end = chunk_end(data, at);
        let time = Timestamp::now();
        let mut events = Vec::with_capacity((end - at) / 100);
        let mut start = at;
        for nl in memchr::memchr_iter(b'\n', &data[at..end]) {
            let nl = at + nl;
            events.push(Event::line(data.slice(start..nl), start as u64, time));
            start = nl + 1;
        }
        let batch = EventBatch {
            source: Arc::clone(&source),
            events,
            bytes: (end - at) as u64,
            ack: AckToken::new(BatchId { source: 1, seq }, tx.clone()),
        };
        while outstanding >= o.window {
            wait_ack(&mut sink, &mut outstanding)?;
        }
        sink.send(batch).map_err(|_| "sink refused a batch")?;
        outstanding += 1;
        seq += 1;
        at = end;
    }
    // As an embedder shuts down: seal what is open, let requests finish.
    sink.close();
    while outstanding > 0 {
        wait_ack(&mut sink, &mut outstanding)?;
    }
    let spilled = logtail_sdk::sinks::sls::SlsStats::get(&sink.stats().spilled_groups);
    if spilled > 0 {
        eprintln!("warning: our sink put {spilled} groups in its disk buffer");
    }
    drop(sink);
    Ok(())
}

#[cfg(not(feature = "producer"))]
fn phase_producer(_: &Opts, _: &bytes::Bytes) -> Result<(), String> {
    Err("built without the official producer: cargo build --release -p logtail-benches --features producer".into())
}

#[cfg(feature = "producer")]
fn phase_producer(o: &Opts, data: &bytes::Bytes) -> Result<(), String> {
    use aliyun_log_producer::{Compression, Log, Producer, ProducerConfig, ProducerError};
    let compression = match o.compress.as_str() {
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => return Err(format!("aliyun-log-producer cannot compress {other}")),
    };
    let port = o
        .endpoint
        .rsplit_once(':')
        .map(|(_, p)| p)
        .ok_or("endpoint without port")?;
    // The producer sends to http://bench.localhost:PORT/…; the proxy set
    // in our environment (the receiver) takes the request.
    let producer = Producer::create(
        ProducerConfig::default()
            .with_endpoint(format!("localhost:{port}"))
            .with_access_key(KEY_ID, KEY_SECRET)
            .with_compression(compression),
    )
    .map_err(|e| e.to_string())?;
    let writer = producer
        .writer("bench", "access")
        .map_err(|e| e.to_string())?;
    let mut at = 0usize;
    while at < data.len() {
        let end = chunk_end(data, at);
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        for line in data[at..end - 1].split(|&b| b == b'\n') {
            let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
            let mut log = Log::from_unixtime(time);
            log.add_content_kv("content", text);
            loop {
                match writer.send(log) {
                    Ok(()) => break,
                    Err(ProducerError::EnqueueFull { log: back }) => {
                        log = back;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        at = end;
    }
    producer.close_blocking().map_err(|e| e.to_string())?;
    Ok(())
}
