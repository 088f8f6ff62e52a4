//! `logtail-bench`: measures the real `logtail-agent` process.
//!
//! ```text
//! cargo build --release -p logtail-examples -p logtail-benches
//! target/release/logtail-bench catch-up --size-mb 1024     # ship a 1 GiB file to flusher_blackhole
//! target/release/logtail-bench steady --rate-mbps 10 --seconds 20
//! ```
//! Prints MB/s, the agent's CPU seconds (from /proc/PID/stat) and its peak
//! RSS (VmHWM). The agent is found next to this binary unless `--agent` says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logtail_benches::generate_lines;

struct Opts {
    mode: String,
    agent: PathBuf,
    size_mb: u64,
    rate_mbps: f64,
    seconds: u64,
    line_bytes: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("usage: logtail-bench catch-up|steady [--size-mb N] [--rate-mbps N] [--seconds N] [--line-bytes N] [--agent PATH]")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut o = Opts {
        mode,
        agent: exe.with_file_name("logtail-agent"),
        size_mb: 1024,
        rate_mbps: 10.0,
        seconds: 20,
        line_bytes: 185,
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
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// CPU seconds (user + system) of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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
    let cfg = dir.join("bench.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}]\n    TailSizeKB: 10485760\nflushers:\n  - Type: flusher_blackhole\n",
            log_glob.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    Command::new(agent)
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-level")
        .arg("warn")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e} (build it: cargo build --release -p logtail-examples)",
                agent.display()
            )
        })
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
            other => Err(format!("unknown mode {other} (catch-up or steady)")),
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
