//! Shared helpers for the tailer's integration tests: a collector thread
//! that drives a [`FileInput`] like a pipeline does, a line writer with
//! sequence numbers, and the exactly-once check.
// Each test binary uses a different subset; `pub` is for the test files.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logtail_core::file::{FileInput, FileInputOptions, FileInputStats, PathsSpec};
use logtail_core::{Checkpoint, EventBatch, Input, MemoryCheckpoint, Progress};

/// Options with timings short enough for tests.
pub fn opts(pattern: &Path) -> FileInputOptions {
    let mut o = FileInputOptions::default();
    o.paths = PathsSpec::new(vec![pattern.to_string_lossy().into_owned()]);
    o.poll_interval = Duration::from_millis(20);
    o.discovery_interval = Duration::from_millis(50);
    o.close_rotated_after = Duration::from_millis(400);
    o.copy_wait = Duration::from_millis(200);
    o.flush_timeout = Duration::from_millis(300);
    o.checkpoint_interval = Duration::from_millis(20);
    o
}

/// Polls `input` once, acknowledging every batch, and appends the lines to
/// `out`.
pub fn poll_once(input: &mut FileInput, out: &mut Vec<Bytes>) -> Progress {
    let mut batches: Vec<EventBatch> = Vec::new();
    let p = input.poll(&mut batches).expect("poll");
    for b in batches {
        out.extend(b.events.iter().map(|e| e.content.clone()));
        b.delivered();
    }
    p
}

/// Polls on this thread (acknowledging everything) until `done(lines)` or
/// the timeout; returns whether `done` was reached.
pub fn drive(
    input: &mut FileInput,
    out: &mut Vec<Bytes>,
    timeout: Duration,
    done: impl FnMut(&[Bytes]) -> bool,
) -> bool {
    let mut done = done;
    drive_with(input, out, poll_once, timeout, |o: &Vec<Bytes>| done(o))
}

/// [`drive`] with any collector: `poll` polls once into `out`.
pub fn drive_with<T>(
    input: &mut FileInput,
    out: &mut T,
    poll: impl Fn(&mut FileInput, &mut T) -> Progress,
    timeout: Duration,
    mut done: impl FnMut(&T) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let idle = poll(input, out) == Progress::Idle;
        if idle && done(out) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if idle {
            input.wait(Duration::from_millis(10));
        }
    }
}

/// Polls for `d`, collecting whatever comes.
pub fn drive_for(input: &mut FileInput, out: &mut Vec<Bytes>, d: Duration) {
    drive(input, out, d, |_| false);
}

pub fn write_lines(path: &Path, from: u64, to: u64) {
    let mut buf = Vec::new();
    lines_into(&mut buf, from, to);
    append(path).write_all(&buf).unwrap();
}

#[derive(Default)]
struct Shared {
    lines: Vec<Bytes>,
    stats: FileInputStats,
}

/// A thread that runs the poll/ack loop of one [`FileInput`] and keeps
/// every line it emits.
pub struct Collector {
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    count: Arc<AtomicU64>,
    /// Whether to keep line contents (the big tests only count).
    keep: bool,
    handle: Option<JoinHandle<FileInput>>,
}

/// What a stopped collector saw.
pub struct Collected {
    pub lines: Vec<Bytes>,
    pub stats: FileInputStats,
    pub input: FileInput,
}

impl Collector {
    pub fn start(opts: FileInputOptions) -> Collector {
        Self::start_with(opts, Box::new(MemoryCheckpoint::default()), true)
    }

    pub fn start_with(opts: FileInputOptions, cp: Box<dyn Checkpoint>, keep: bool) -> Collector {
        let mut input = FileInput::new(opts, cp).expect("valid options");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let count = Arc::new(AtomicU64::new(0));
        let (s, sh, c) = (stop.clone(), shared.clone(), count.clone());
        let handle = std::thread::spawn(move || {
            let mut batches: Vec<EventBatch> = Vec::new();
            while !s.load(Ordering::Acquire) {
                let p = input.poll(&mut batches).expect("poll");
                let mut n = 0;
                {
                    let mut g = sh.lock().unwrap();
                    for b in batches.drain(..) {
                        n += b.events.len() as u64;
                        if keep {
                            g.lines.extend(b.events.iter().map(|e| e.content.clone()));
                        }
                        b.delivered();
                    }
                    g.stats = input.stats();
                }
                c.fetch_add(n, Ordering::AcqRel);
                if p == Progress::Idle {
                    input.wait(Duration::from_millis(10));
                }
            }
            input
        });
        Collector {
            stop,
            shared,
            count,
            keep,
            handle: Some(handle),
        }
    }

    /// Lines emitted so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// The input's stats after its latest poll.
    pub fn stats(&self) -> FileInputStats {
        self.shared.lock().unwrap().stats
    }

    /// Waits until at least `n` lines were emitted; false on timeout.
    pub fn wait_count(&self, n: u64, timeout: Duration) -> bool {
        wait_for(timeout, || self.count() >= n)
    }

    /// Waits until `f(stats)` holds; false on timeout.
    pub fn wait_stats(&self, timeout: Duration, f: impl Fn(&FileInputStats) -> bool) -> bool {
        wait_for(timeout, || f(&self.stats()))
    }

    /// Stops the loop and hands back everything it saw.
    pub fn stop(mut self) -> Collected {
        self.stop.store(true, Ordering::Release);
        let input = self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("collector panicked");
        let shared = std::mem::take(&mut *self.shared.lock().unwrap());
        Collected {
            lines: shared.lines,
            stats: input.stats(),
            input,
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---- lines ------------------------------------------------------------------

/// The line with sequence number `seq`, without its newline. Its length
/// varies with `seq` so that lines straddle chunk and page boundaries.
pub fn line(seq: u64) -> Vec<u8> {
    let mut l = format!("seq={seq:08} ").into_bytes();
    let pad = 20 + (seq * 7919 % 97) as usize;
    l.extend((0..pad).map(|i| b'a' + ((seq as usize + i) % 26) as u8));
    l
}

/// Appends lines `from..to`, each with its newline, to `buf`.
pub fn lines_into(buf: &mut Vec<u8>, from: u64, to: u64) {
    for s in from..to {
        buf.extend_from_slice(&line(s));
        buf.push(b'\n');
    }
}

pub fn seq_of(l: &[u8]) -> Option<u64> {
    let digits = l.strip_prefix(b"seq=")?.get(..8)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Asserts that `lines` hold every line `0..n` exactly once and nothing
/// else; the message counts lost, duplicated and foreign lines.
pub fn assert_exactly_once(lines: &[Bytes], n: u64, what: &str) {
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut foreign = Vec::new();
    for l in lines {
        match seq_of(l) {
            Some(s) if s < n && l[..] == line(s)[..] => *seen.entry(s).or_default() += 1,
            _ => foreign.push(String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned()),
        }
    }
    let lost: Vec<u64> = (0..n).filter(|s| !seen.contains_key(s)).collect();
    let dup: u64 = seen.values().map(|&c| u64::from(c - 1)).sum();
    assert!(
        lost.is_empty() && dup == 0 && foreign.is_empty(),
        "{what}: {} lines expected, {} received: lost {} (first {:?}), duplicated {}, \
         foreign {} (first {:?})",
        n,
        lines.len(),
        lost.len(),
        &lost[..lost.len().min(10)],
        dup,
        foreign.len(),
        &foreign[..foreign.len().min(3)],
    );
}

// ---- the writer -------------------------------------------------------------

/// How fast the writer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One line, then ~1 ms of sleep.
    Slow,
    /// Batches of whole lines, no sleep.
    Fast,
}

/// Shared between the writer and whoever rotates its file.
#[derive(Default)]
pub struct WriterCtl {
    /// Lines completely written so far.
    pub written: AtomicU64,
    /// Bumped by the rotator to make the writer reopen its path
    /// (what logrotate's postrotate signal does).
    pub generation: AtomicU64,
    /// Taken by the writer around every write, and by a rotator that must
    /// not let a write fall between two of its steps.
    pub lock: Mutex<()>,
}

pub fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Writes lines `0..n` to `path` (O_APPEND), reopening it whenever the
/// generation changes. Every write(2) holds whole lines only.
pub fn spawn_writer(path: PathBuf, n: u64, pace: Pace, ctl: Arc<WriterCtl>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = append(&path);
        let mut gen = ctl.generation.load(Ordering::Acquire);
        let per_write = match pace {
            Pace::Slow => 1,
            Pace::Fast => 64,
        };
        let mut buf = Vec::new();
        let mut seq = 0;
        while seq < n {
            let to = (seq + per_write).min(n);
            buf.clear();
            lines_into(&mut buf, seq, to);
            {
                let _g = ctl.lock.lock().unwrap();
                let now = ctl.generation.load(Ordering::Acquire);
                if now != gen {
                    gen = now;
                    f = append(&path);
                }
                f.write_all(&buf).unwrap();
                ctl.written.store(to, Ordering::Release);
            }
            seq = to;
            if pace == Pace::Slow {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// `path.k`, logrotate's name of the k-th generation.
pub fn numbered(path: &Path, k: u32) -> PathBuf {
    PathBuf::from(format!("{}.{k}", path.display()))
}

/// logrotate's numbered shift, `path.k` → `path.(k+1)` for k = keep-1..1,
/// making room for a new `path.1`. Nothing is deleted while `keep` is
/// larger than the number of rotations.
pub fn shift(path: &Path, keep: u32) {
    for k in (1..keep).rev() {
        let from = numbered(path, k);
        if from.exists() {
            std::fs::rename(&from, numbered(path, k + 1)).unwrap();
        }
    }
}

/// Paths under `dir` that this process holds open although they were deleted.
pub fn deleted_fds_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            let t = target.to_string_lossy().into_owned();
            if t.starts_with(&prefix) && t.ends_with(" (deleted)") {
                out.push(t);
            }
        }
    }
    out
}
