//! What the agent-level tests and the benches of logtail-rs share: temp
//! dirs laid out for the agent, the real `logtail-agent` process (given
//! the path of its binary: a test of the `logtail-agent` package passes
//! `env!("CARGO_BIN_EXE_logtail-agent")`), sequence-numbered writers, a
//! reader of `out.jsonl` that counts each sequence number, a
//! `logtail-config-server` process with its admin API, and the checking
//! SLS receiver ([`sls_receiver`]), and a headless browser
//! ([`browser`]).
#![deny(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use logtail_sls_receiver as sls_receiver;

pub mod browser;

/// `TailSizeKB` large enough that files present at start-up are read whole.
pub const TAIL_ALL_KB: u64 = 10_485_760;

/// A temp dir laid out as the agent tests use it.
#[derive(Debug)]
pub struct Env {
    /// The directory (removed when dropped).
    pub tmp: tempfile::TempDir,
    /// `logs/`: where the tests write the files the agent tails.
    pub logs: PathBuf,
    /// `out.jsonl`: the usual config's `flusher_file`.
    pub out: PathBuf,
    /// `data/`: the agent's `--data-dir`.
    pub data: PathBuf,
    /// `app.yaml`: the usual config.
    pub config: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A new temp dir with `logs/` created.
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("logtail-agent-test")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Env {
            logs,
            out: root.join("out.jsonl"),
            data: root.join("data"),
            config: root.join("app.yaml"),
            tmp,
        }
    }

    /// The temp dir.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes the usual config: `patterns` (relative to `logs/`) →
    /// flusher_file `out.jsonl`; `extra` is appended to the input's options
    /// (YAML lines indented by 4).
    pub fn write_config(&self, patterns: &[&str], extra: &str) {
        self.write_config_to(patterns, extra, &self.out);
    }

    /// Like [`Env::write_config`], with flusher_file writing to `sink`
    /// (a FIFO, for a slow sink) instead of `out.jsonl`.
    pub fn write_config_to(&self, patterns: &[&str], extra: &str, sink: &Path) {
        let paths: Vec<String> = patterns
            .iter()
            .map(|p| format!("      - {}", self.logs.join(p).display()))
            .collect();
        let text = format!(
            "inputs:\n  - Type: input_file\n    FilePaths:\n{}\n{extra}flushers:\n  - Type: flusher_file\n    FilePath: {}\n",
            paths.join("\n"),
            sink.display()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts the agent binary `bin` on the usual config and data dir.
    pub fn spawn(&self, bin: impl AsRef<Path>) -> Agent {
        Agent::spawn(bin, &[&self.config], &self.data, &[])
    }
}

/// A running `logtail-agent`; killed (SIGKILL) if dropped while alive, so
/// a failing test leaves no process behind.
#[derive(Debug)]
pub struct Agent {
    /// The process.
    pub child: Child,
    /// Where its stderr goes.
    pub stderr_path: PathBuf,
    status: Option<ExitStatus>,
    _stderr_dir: tempfile::TempDir,
}

impl Agent {
    /// Starts the agent binary `bin` with a `--config` for each of
    /// `configs`, `--data-dir data_dir` and the `extra` arguments; no
    /// `RUST_LOG` and no SLS credentials in its environment.
    pub fn spawn(
        bin: impl AsRef<Path>,
        configs: &[&Path],
        data_dir: &Path,
        extra: &[&str],
    ) -> Agent {
        Self::spawn_limited(bin, configs, data_dir, extra, None)
    }

    /// Like [`Agent::spawn`], with `RLIMIT_NOFILE` (soft and hard) set to
    /// `nofile` in the child, as on hosts with a low descriptor limit.
    pub fn spawn_limited(
        bin: impl AsRef<Path>,
        configs: &[&Path],
        data_dir: &Path,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> Agent {
        Self::start(bin.as_ref(), configs, data_dir, extra, nofile, false)
    }

    /// Like [`Agent::spawn`], as a supervisor with its worker (the agent's
    /// default); both log to stderr.
    pub fn spawn_supervised(
        bin: impl AsRef<Path>,
        configs: &[&Path],
        data_dir: &Path,
        extra: &[&str],
    ) -> Agent {
        Self::start(bin.as_ref(), configs, data_dir, extra, None, true)
    }

    /// The supervisor's worker: its one child process, if it has one.
    pub fn worker_pid(&self) -> Option<i32> {
        let pid = self.pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    fn start(
        bin: &Path,
        configs: &[&Path],
        data_dir: &Path,
        extra: &[&str],
        nofile: Option<u64>,
        supervised: bool,
    ) -> Agent {
        // stderr goes to a file: a pipe nobody drains could block the agent.
        let dir = tempfile::tempdir().unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(bin);
        for c in configs {
            cmd.arg("--config").arg(c);
        }
        // The worker alone (a SIGKILL is a crash of the process that reads),
        // its log on stderr (not a terminal here).
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(if supervised {
                &["--log-stderr", "always"][..]
            } else {
                &["--no-supervisor", "--log-stderr", "always"][..]
            })
            .args(extra)
            .env_remove("RUST_LOG")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn logtail-agent");
        Agent {
            child,
            stderr_path,
            status: None,
            _stderr_dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// Waits until the agent logged that its pipelines run.
    pub fn wait_started(&mut self) {
        let ok = wait_until(Duration::from_secs(20), || {
            self.stderr().contains("logtail-agent started") || self.has_exited()
        });
        assert!(
            ok && !self.has_exited(),
            "agent did not start; stderr:\n{}",
            self.stderr()
        );
    }

    /// Whether it exited (reaped).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_some()
    }

    /// Waits for the exit; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.has_exited());
        self.status
    }

    /// Sends `sig` and waits for the exit: the status and how long it took.
    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        self.signal(sig);
        match self.wait_exit(timeout) {
            Some(st) => (st, t0.elapsed()),
            None => panic!(
                "agent did not exit within {timeout:?} of signal {sig}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// SIGTERM; asserts a clean exit (status 0) within 5 s.
    pub fn terminate(&mut self) -> Duration {
        let (st, took) = self.stop_with(libc::SIGTERM, Duration::from_secs(15));
        assert!(
            st.success(),
            "agent exited with {st} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
        assert!(
            took < Duration::from_secs(5),
            "agent took {took:?} to exit after SIGTERM; stderr:\n{}",
            self.stderr()
        );
        took
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let (st, _) = self.stop_with(libc::SIGKILL, Duration::from_secs(10));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGKILL));
    }

    /// A field of `/proc/PID/status` in kB (e.g. `VmHWM`, `VmRSS`).
    pub fn status_kb(&self, field: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Panics (with stderr) if the agent died.
    pub fn assert_alive(&mut self, what: &str) {
        if self.has_exited() {
            panic!(
                "agent died ({:?}) {what}; stderr:\n{}",
                self.status,
                self.stderr()
            );
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The line with sequence number `seq`, `len` bytes long without its newline.
pub fn seq_line(seq: u64, len: usize) -> String {
    let mut s = format!("seq={seq:08} ");
    // Padding depends on seq so a line glued from two others is noticed.
    let fill = b'a' + (seq % 26) as u8;
    while s.len() < len {
        s.push(fill as char);
    }
    s
}

/// The number in a `seq=NNNNNNNN …` content.
pub fn parse_seq(content: &str) -> Option<u64> {
    let rest = content.strip_prefix("seq=")?;
    rest.split(' ').next()?.parse().ok()
}

/// How a [`SeqWriter`] writes.
#[derive(Clone, Debug)]
pub struct WriterPlan {
    /// The file appended to.
    pub path: PathBuf,
    /// How many lines (sequence numbers 0..lines).
    pub lines: u64,
    /// Length of each line without its newline.
    pub line_len: usize,
    /// Pace.
    pub per_sec: u64,
    /// Rotate after these many lines: the k-th rotation renames `<path>`
    /// to `<path>.k` (from 1) and creates `<path>` again.
    pub rotate_at: Vec<u64>,
}

/// A thread appending `seq=…` lines at a steady pace.
#[derive(Debug)]
pub struct SeqWriter {
    /// Lines written so far.
    pub written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl SeqWriter {
    /// Starts the thread.
    pub fn start(plan: WriterPlan) -> SeqWriter {
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (Arc::clone(&written), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            let open = |p: &Path| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap()
            };
            let mut f = open(&plan.path);
            let t0 = Instant::now();
            let mut seq = 0;
            let mut buf = Vec::new();
            let mut rotations = 0;
            while seq < plan.lines && !s.load(Ordering::Relaxed) {
                let due = (t0.elapsed().as_secs_f64() * plan.per_sec as f64) as u64;
                let due = due.clamp(seq + 1, plan.lines);
                buf.clear();
                while seq < due {
                    if plan.rotate_at.contains(&seq) {
                        // Whole lines only, then rename + create, as logrotate does.
                        f.write_all(&buf).unwrap();
                        buf.clear();
                        rotations += 1;
                        let mut rotated = plan.path.clone().into_os_string();
                        rotated.push(format!(".{rotations}"));
                        std::fs::rename(&plan.path, rotated).unwrap();
                        f = open(&plan.path);
                    }
                    buf.extend_from_slice(seq_line(seq, plan.line_len).as_bytes());
                    buf.push(b'\n');
                    seq += 1;
                }
                f.write_all(&buf).unwrap();
                w.store(seq, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        SeqWriter {
            written,
            stop,
            handle: Some(handle),
        }
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Waits until every planned line is written; how many were.
    pub fn join(mut self) -> u64 {
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread panicked");
        }
        self.written()
    }
}

impl Drop for SeqWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Reads `out.jsonl` incrementally (only complete lines) and keeps counts.
#[derive(Debug)]
pub struct OutReader {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// How often each sequence number arrived.
    pub counts: Vec<u32>,
    /// Contents that are not `seq=` lines, in order.
    pub others: Vec<String>,
    /// Lines that are not JSON objects with a string `content`.
    pub bad: Vec<String>,
    /// `seq=` lines whose content differs from what was written.
    pub corrupt: u64,
    /// Expected line length for the corruption check (0: no check).
    pub line_len: usize,
    /// Keep every JSON object seen in [`OutReader::json`].
    pub keep_json: bool,
    /// Every JSON object seen (only if `keep_json`).
    pub json: Vec<serde_json::Value>,
}

impl OutReader {
    /// A reader of `path` (it need not exist yet) whose `seq=` lines are
    /// `line_len` bytes long (0: not checked).
    pub fn new(path: &Path, line_len: usize) -> OutReader {
        OutReader {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            counts: Vec::new(),
            others: Vec::new(),
            bad: Vec::new(),
            corrupt: 0,
            line_len,
            keep_json: false,
            json: Vec::new(),
        }
    }

    /// Reads what was appended since the last call.
    pub fn update(&mut self) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        self.offset += data.len() as u64;
        self.partial.extend_from_slice(&data);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|&b| b == b'\n') {
            if !line.is_empty() {
                self.take(line);
            }
        }
    }

    fn take(&mut self, line: &[u8]) {
        let v: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => {
                self.bad
                    .push(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
                return;
            }
        };
        let Some(content) = v.get("content").and_then(|c| c.as_str()) else {
            self.bad
                .push(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
            return;
        };
        match parse_seq(content) {
            Some(seq) => {
                let i = seq as usize;
                if self.counts.len() <= i {
                    self.counts.resize(i + 1, 0);
                }
                self.counts[i] += 1;
                if self.line_len > 0 && content != seq_line(seq, self.line_len) {
                    self.corrupt += 1;
                }
            }
            None => self.others.push(content.to_string()),
        }
        if self.keep_json {
            self.json.push(v);
        }
    }

    /// Sequence numbers below `n` that arrived at least once.
    pub fn distinct_below(&self, n: u64) -> u64 {
        self.counts
            .iter()
            .take(n as usize)
            .filter(|&&c| c > 0)
            .count() as u64
    }

    /// What arrived of sequence numbers `0..n`.
    pub fn report(&self, n: u64) -> SeqReport {
        let mut r = SeqReport::default();
        for seq in 0..n as usize {
            match self.counts.get(seq).copied().unwrap_or(0) {
                0 => {
                    r.lost += 1;
                    if r.first_lost.len() < 10 {
                        r.first_lost.push(seq as u64);
                    }
                }
                c => r.duplicated += u64::from(c - 1),
            }
        }
        r.unexpected = self
            .counts
            .iter()
            .skip(n as usize)
            .filter(|&&c| c > 0)
            .count() as u64;
        r.bad = self.bad.len() as u64;
        r.corrupt = self.corrupt;
        r
    }
}

/// What arrived compared with what was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqReport {
    /// Sequence numbers that never arrived.
    pub lost: u64,
    /// The first ten of them.
    pub first_lost: Vec<u64>,
    /// Extra copies (a line that arrived 3 times counts 2).
    pub duplicated: u64,
    /// Sequence numbers that were never written.
    pub unexpected: u64,
    /// Output lines that are not valid events.
    pub bad: u64,
    /// `seq=` lines with the wrong content.
    pub corrupt: u64,
}

/// Waits until every seq below `n` arrived (or `timeout`); returns the report.
pub fn wait_all_arrived(out: &mut OutReader, n: u64, timeout: Duration) -> SeqReport {
    wait_until(timeout, || {
        out.update();
        out.distinct_below(n) == n
    });
    // Let stragglers (duplicates) land before counting.
    std::thread::sleep(Duration::from_millis(300));
    out.update();
    out.report(n)
}

/// The acknowledged offset of `file` in the agent's checkpoint for the
/// pipeline `name` (none before the first write).
pub fn checkpoint_offset(data_dir: &Path, name: &str, file: &Path) -> Option<u64> {
    let text =
        std::fs::read_to_string(data_dir.join("checkpoints").join(format!("{name}.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let want = file.to_string_lossy();
    v["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"].as_str() == Some(&want))
        .and_then(|f| f["offset"].as_u64())
}

/// A running config server process; killed when dropped.
#[derive(Debug)]
pub struct ConfigServerProc {
    /// The process.
    pub child: Child,
    /// `http://ADDR`, from its `listening on http://ADDR` line.
    pub url: String,
    /// The admin token [`ConfigServerProc::call`] sends, if any.
    pub token: Option<String>,
}

impl ConfigServerProc {
    /// Starts the `logtail-config-server` binary `bin` on `listen`
    /// (`127.0.0.1:0` picks a port) with `data_dir` and a 5 s heartbeat
    /// timeout.
    pub fn spawn(bin: impl AsRef<Path>, data_dir: &Path, listen: &str) -> ConfigServerProc {
        let mut cmd = Command::new(bin.as_ref());
        cmd.args(["--listen", listen, "--heartbeat-timeout", "5", "--data-dir"])
            .arg(data_dir);
        Self::start(cmd)
    }

    /// Starts `cmd`, a process that serves the config server and prints
    /// `listening on http://ADDR` on stdout (lines before it are skipped).
    pub fn start(mut cmd: Command) -> ConfigServerProc {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the config server");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the config server ended before it listened");
            }
            // (A test harness may print the test's name before it, on the same line.)
            if let Some((_, url)) = line.trim().split_once("listening on ") {
                break url.to_string();
            }
        };
        ConfigServerProc {
            child,
            url,
            token: None,
        }
    }

    /// The admin API: (status, JSON answer).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = ureq::request(method, &format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for ConfigServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
