//! Model-based property test: random writes and rotations applied to a
//! real file and to a model of the lines that must come out.
//!
//! The flush timeout is effectively infinite here, so what happens to an
//! incomplete line does not depend on timing: a partial line left behind
//! in a rotated file is never emitted, and the rest of it, written to the
//! new file, is a line of its own. Plain truncation only follows a full
//! drain (its unread data would be genuinely gone otherwise).

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use logtail_core::file::FileInput;
use logtail_core::{Input, MemoryCheckpoint, Progress};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Complete a pending partial line, then write this many lines.
    WriteLines(u8),
    /// Write the first `cut` bytes of the next line, without its newline.
    WritePartial(u8),
    /// Rename app.log to a new numbered name, create a new app.log.
    RotateRename,
    /// Copy app.log to a new numbered name, truncate app.log.
    CopyTruncate,
    /// Complete a pending line, drain, truncate app.log to 0.
    Truncate,
    /// Delete app.log (open in the input) and create a new one.
    DeleteRecreate,
    /// Let the input run until it is idle.
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..30).prop_map(Op::WriteLines),
        1 => (1u8..40).prop_map(Op::WritePartial),
        1 => Just(Op::RotateRename),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Truncate),
        1 => Just(Op::DeleteRecreate),
        3 => Just(Op::Poll),
    ]
}

struct Harness {
    dir: PathBuf,
    app: PathBuf,
    input: FileInput,
    got: Vec<Bytes>,
    /// The lines that must come out, in no particular order across files.
    want: Vec<Vec<u8>>,
    writer: File,
    next: u64,
    /// (line, bytes of it written) of an incomplete line, and whether its
    /// beginning was rotated away from app.log since.
    pending: Option<(u64, usize, bool)>,
    generation: u32,
}

impl Harness {
    fn new() -> (tempfile::TempDir, Harness) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let app = dir.join("app.log");
        let writer = append(&app);
        let mut o = opts(&dir.join("app.log*"));
        o.flush_timeout = Duration::from_secs(3600);
        o.copy_wait = Duration::from_millis(100);
        let input = FileInput::new(o, Box::new(MemoryCheckpoint::default())).unwrap();
        let mut h = Harness {
            dir,
            app,
            input,
            got: Vec::new(),
            want: Vec::new(),
            writer,
            next: 0,
            pending: None,
            generation: 0,
        };
        h.poll_idle();
        (tmp, h)
    }

    fn poll_idle(&mut self) {
        for _ in 0..20 {
            if poll_once(&mut self.input, &mut self.got) == Progress::Idle {
                break;
            }
        }
    }

    /// Polls until every line the model expects so far was emitted.
    fn drain(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll_idle();
            if self.got.len() >= self.want.len() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.input.wait(Duration::from_millis(5));
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn complete_pending(&mut self) {
        if let Some((seq, cut, rotated)) = self.pending.take() {
            let l = line(seq);
            self.write(&l[cut..]);
            self.write(b"\n");
            // Rotated: the beginning stays behind as a never-completed line.
            self.want.push(if rotated { l[cut..].to_vec() } else { l });
        }
    }

    fn rotated_name(&mut self) -> PathBuf {
        self.generation += 1;
        numbered(&self.app, self.generation)
    }

    fn mark_rotated(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.2 = true;
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::WriteLines(n) => {
                self.complete_pending();
                let mut buf = Vec::new();
                for _ in 0..n {
                    let l = line(self.next);
                    self.next += 1;
                    buf.extend_from_slice(&l);
                    buf.push(b'\n');
                    self.want.push(l);
                }
                self.write(&buf);
            }
            Op::WritePartial(cut) => {
                if self.pending.is_none() {
                    let l = line(self.next);
                    let cut = usize::from(cut).min(l.len() - 1);
                    self.write(&l[..cut]);
                    self.pending = Some((self.next, cut, false));
                    self.next += 1;
                }
            }
            Op::RotateRename => {
                let to = self.rotated_name();
                std::fs::rename(&self.app, to).unwrap();
                self.writer = append(&self.app);
                self.mark_rotated();
            }
            Op::CopyTruncate => {
                let to = self.rotated_name();
                std::fs::copy(&self.app, to).unwrap();
                truncate(&self.app);
                self.mark_rotated();
            }
            Op::Truncate => {
                self.complete_pending();
                assert!(self.drain(Duration::from_secs(5)), "drain before truncate");
                truncate(&self.app);
            }
            Op::DeleteRecreate => {
                // Data of a file deleted before anyone opened it is gone for
                // any collector: make sure it was opened.
                let inode = std::fs::metadata(&self.app).unwrap().ino();
                let deadline = Instant::now() + Duration::from_secs(2);
                let known = |h: &Harness| {
                    let ids = h.input.checkpoint().positions();
                    ids.iter().any(|p| p.id.inode == inode)
                };
                while !known(self) {
                    assert!(Instant::now() < deadline, "app.log never opened");
                    self.poll_idle();
                    self.input.wait(Duration::from_millis(5));
                }
                std::fs::remove_file(&self.app).unwrap();
                self.writer = append(&self.app);
                self.mark_rotated();
            }
            Op::Poll => self.poll_idle(),
        }
    }
}

fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let (_tmp, mut h) = Harness::new();
    for op in ops {
        h.apply(op);
    }
    let drained = h.drain(Duration::from_secs(5));
    // Late duplicates (a held copy opened from 0) would show up within
    // copy_wait; give them the time.
    let until = Instant::now() + Duration::from_millis(250);
    while Instant::now() < until {
        h.poll_idle();
        h.input.wait(Duration::from_millis(10));
    }
    let mut got: Vec<Vec<u8>> = h.got.iter().map(|b| b.to_vec()).collect();
    let mut want = h.want.clone();
    got.sort();
    want.sort();
    if got != want {
        let missing: Vec<String> = want
            .iter()
            .filter(|w| !got.contains(w))
            .take(5)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let extra = got.len() as i64 - want.len() as i64;
        return Err(TestCaseError::fail(format!(
            "drained {drained}: {} lines out, {} expected ({extra:+}); missing e.g. {missing:?}; \
             stats {:?}; dir {:?}",
            got.len(),
            want.len(),
            h.input.stats(),
            std::fs::read_dir(&h.dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect::<Vec<_>>(),
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        max_shrink_iters: 32,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tailer_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        check(&ops)?;
    }
}

/// Every op in one fixed sequence, so each runs whatever the random cases are
/// (including a partial line whose start is rotated away, then completed).
#[test]
fn every_op_in_one_sequence() {
    check(&[
        Op::WriteLines(5),
        Op::Poll,
        Op::WritePartial(7),
        Op::RotateRename,
        Op::WriteLines(3),
        Op::CopyTruncate,
        Op::WriteLines(2),
        Op::Poll,
        Op::Truncate,
        Op::WriteLines(1),
        Op::DeleteRecreate,
        Op::WriteLines(4),
    ])
    .unwrap();
}
