//! Rotation matrix: every rotation style × a slow and a fast writer, on
//! real files. Every line must reach the sink exactly once.
//!
//! `LOGTAIL_ROTATION_STORM=1` rotates 39 times per run instead of 4 (a
//! stress run, too slow for CI).

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use logtail_core::file::FileInput;
use logtail_core::{Input, MemoryCheckpoint, Progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rotation {
    /// Rename to `app.log.1` (shifting older generations), create a new `app.log`.
    RenameCreate,
    /// Copy to `app.log.1`, truncate `app.log`; the copy must be adopted.
    CopyTruncate,
    /// Truncate to 0 once everything written so far was collected.
    Truncate,
    /// Rename, delete the renamed file at once, create a new `app.log`.
    Delete,
    /// Three rename+create rotations within one second.
    ThreeInOneSecond,
    /// Rename to a name or directory that the pattern does not match.
    MovedOut,
}

fn lines_for(pace: Pace) -> u64 {
    match pace {
        Pace::Slow => 1_000,
        Pace::Fast => 200_000,
    }
}

fn run(rot: Rotation, pace: Pace) {
    run_with(rot, pace, true)
}

fn run_with(rot: Rotation, pace: Pace, inotify: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = dir.join("app.log");
    std::fs::File::create(&app).unwrap();
    let pattern = if rot == Rotation::MovedOut {
        std::fs::create_dir(dir.join("archive")).unwrap();
        app.clone()
    } else {
        dir.join("app.log*")
    };
    let mut o = opts(&pattern);
    o.inotify = inotify;
    let c = Collector::start(o);
    assert!(
        c.wait_stats(Duration::from_secs(5), |s| s.files_opened >= 1),
        "app.log never opened"
    );

    let n = lines_for(pace);
    // When (in lines written) each rotation happens.
    let at: Vec<u64> = match rot {
        Rotation::ThreeInOneSecond => vec![n * 3 / 10, n / 2, n * 7 / 10],
        _ if std::env::var_os("LOGTAIL_ROTATION_STORM").is_some() => {
            (1..40).map(|i| n * i / 40).collect()
        }
        _ => (1..=4).map(|i| n * i / 5).collect(),
    };
    let rotations = at.len() as u32;
    let ctl = Arc::new(WriterCtl::default());
    let writer = spawn_writer(app.clone(), n, pace, ctl.clone());

    let mut last = 0;
    let mut done = 0;
    let mut first_at = None;
    for (i, &when) in at.iter().enumerate() {
        let i = i as u32 + 1;
        // At least one write between two rotations, or a rotation could
        // find an empty file: nothing to rotate, nothing to check.
        let when = when.max(last + 1);
        if when > n {
            break; // the writer is done: nothing left to rotate
        }
        assert!(
            wait_for(Duration::from_secs(30), || ctl
                .written
                .load(Ordering::Acquire)
                >= when),
            "writer stalled"
        );
        if rot == Rotation::CopyTruncate {
            // Have the input read into this generation first, so that its
            // stream has an offset that the copy must continue from.
            assert!(
                c.wait_count(last + 1, Duration::from_secs(10)),
                "generation {i} never read"
            );
        }
        last = rotate(rot, &app, i, rotations, &ctl, &c);
        first_at.get_or_insert_with(Instant::now);
        done = i;
    }
    let span = first_at.map(|t| t.elapsed());
    let rotations = done;
    if rot == Rotation::ThreeInOneSecond {
        assert_eq!(rotations, 3);
        assert!(
            span < Some(Duration::from_secs(1)),
            "rotations took {span:?}"
        );
    }
    writer.join().unwrap();

    let complete = c.wait_count(n, Duration::from_secs(30));
    // Late duplicates (a held copy opened from 0, a retired stream read
    // twice) would come within copy_wait and the retired-stream wait.
    std::thread::sleep(Duration::from_millis(if complete { 700 } else { 0 }));
    if matches!(rot, Rotation::Delete | Rotation::MovedOut) {
        // Rotated-away files are drained, then closed after close_rotated_after.
        let closed = c.wait_stats(Duration::from_secs(5), |s| s.files_open == 1);
        let stats = c.stats();
        assert!(
            closed,
            "{rot:?}/{pace:?}: rotated files still open: {stats:?}"
        );
        let held = deleted_fds_under(dir);
        assert!(held.is_empty(), "deleted files still held open: {held:?}");
    }
    let got = c.stop();
    let what = format!("{rot:?}/{pace:?}/inotify {inotify} (stats {:?})", got.stats);
    assert_exactly_once(&got.lines, n, &what);

    let s = got.stats;
    match rot {
        Rotation::CopyTruncate => {
            assert_eq!(s.copies_adopted, u64::from(rotations), "{what}");
        }
        Rotation::Truncate => {
            assert!(s.truncations >= u64::from(rotations), "{what}");
            assert_eq!(s.truncated_unread_bytes, 0, "{what}");
        }
        Rotation::RenameCreate | Rotation::ThreeInOneSecond => {
            assert!(s.renames >= 1, "{what}");
            assert_eq!(s.truncations, 0, "{what}");
        }
        Rotation::Delete | Rotation::MovedOut => {
            assert_eq!(s.files_closed, u64::from(rotations), "{what}");
            assert_eq!(s.truncations, 0, "{what}");
        }
    }
}

/// Rotates once; returns how many lines were written when it happened.
fn rotate(
    rot: Rotation,
    app: &Path,
    i: u32,
    rotations: u32,
    ctl: &WriterCtl,
    c: &Collector,
) -> u64 {
    let keep = rotations + 1;
    let written = || ctl.written.load(Ordering::Acquire);
    let reopen = || {
        append(app);
        ctl.generation.fetch_add(1, Ordering::AcqRel);
    };
    // A file renamed out of sight (or deleted) before the input ever
    // opened it cannot be collected by anyone; make sure it was.
    let wait_opened = || {
        assert!(
            c.wait_stats(Duration::from_secs(5), |s| s.files_opened >= u64::from(i)),
            "generation {i} never opened"
        )
    };
    match rot {
        Rotation::RenameCreate | Rotation::ThreeInOneSecond => {
            let w = written();
            shift(app, keep);
            std::fs::rename(app, numbered(app, 1)).unwrap();
            reopen();
            w
        }
        Rotation::CopyTruncate => {
            // No write may fall between the copy and the truncation: it
            // would be lost by the rotation itself, not by the collector.
            let _g = ctl.lock.lock().unwrap();
            shift(app, keep);
            std::fs::copy(app, numbered(app, 1)).unwrap();
            OpenOptions::new()
                .write(true)
                .open(app)
                .unwrap()
                .set_len(0)
                .unwrap();
            written()
        }
        Rotation::Truncate => {
            // Unread data is gone after a plain truncation, so truncate only
            // once everything written so far was collected.
            let _g = ctl.lock.lock().unwrap();
            let w = written();
            assert!(
                c.wait_count(w, Duration::from_secs(10)),
                "collector never caught up before truncation {i}: {} of {w}",
                c.count()
            );
            OpenOptions::new()
                .write(true)
                .open(app)
                .unwrap()
                .set_len(0)
                .unwrap();
            w
        }
        Rotation::Delete => {
            wait_opened();
            let w = written();
            let rotated = numbered(app, 1);
            std::fs::rename(app, &rotated).unwrap();
            std::fs::remove_file(&rotated).unwrap();
            reopen();
            w
        }
        Rotation::MovedOut => {
            wait_opened();
            let dir = app.parent().unwrap();
            // Alternately into a subdirectory and to a name that does not match.
            let to = match i % 2 {
                0 => dir.join("archive").join(format!("app.log.{i}")),
                _ => dir.join(format!("app-{i}.log.old")),
            };
            let w = written();
            std::fs::rename(app, to).unwrap();
            reopen();
            w
        }
    }
}

macro_rules! matrix {
    ($($name:ident: $rot:ident, $pace:ident;)*) => {$(
        #[test]
        fn $name() {
            run(Rotation::$rot, Pace::$pace);
        }
    )*};
}

matrix! {
    rename_create_slow: RenameCreate, Slow;
    rename_create_fast: RenameCreate, Fast;
    copytruncate_slow: CopyTruncate, Slow;
    copytruncate_fast: CopyTruncate, Fast;
    truncate_slow: Truncate, Slow;
    truncate_fast: Truncate, Fast;
    delete_slow: Delete, Slow;
    delete_fast: Delete, Fast;
    three_rotations_in_one_second_slow: ThreeInOneSecond, Slow;
    three_rotations_in_one_second_fast: ThreeInOneSecond, Fast;
    moved_out_of_pattern_slow: MovedOut, Slow;
    moved_out_of_pattern_fast: MovedOut, Fast;
}

// Without inotify (NFS, FUSE, a full watch table) polling alone must
// still find every new file, rename and truncation.

#[test]
fn without_inotify_rename_create_fast() {
    run_with(Rotation::RenameCreate, Pace::Fast, false);
}

#[test]
fn without_inotify_copytruncate_slow() {
    run_with(Rotation::CopyTruncate, Pace::Slow, false);
}

#[test]
fn without_inotify_delete_slow() {
    run_with(Rotation::Delete, Pace::Slow, false);
}

// ---- a copy caught while it is being written --------------------------------
//
// logrotate's copytruncate creates the copy, fills it, then truncates the
// original. Discovery may see the copy at any point of that: empty, with
// part of its head, or shorter than the offset read in the original.

/// app.log holding lines 0..2000, all read; returns its content.
fn read_app(app: &Path) -> (FileInput, Vec<bytes::Bytes>, Vec<u8>) {
    let mut input = FileInput::new(
        opts(&app.with_file_name("app.log*")),
        Box::new(MemoryCheckpoint::default()),
    )
    .unwrap();
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(30));
    write_lines(app, 0, 2_000);
    assert!(drive(&mut input, &mut got, Duration::from_secs(5), |l| l
        .len()
        >= 2_000));
    let content = std::fs::read(app).unwrap();
    (input, got, content)
}

fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Finishes the copy and the truncation, writes 2000..2100 to app.log and
/// checks that every line came exactly once and the copy was adopted.
fn finish(app: &Path, mut input: FileInput, mut got: Vec<bytes::Bytes>, what: &str) {
    write_lines(app, 2_000, 2_100);
    drive(&mut input, &mut got, Duration::from_secs(5), |l| {
        l.len() >= 2_100
    });
    // A copy opened as a new file would be read again from 0 once
    // copy_wait (200 ms) is over.
    drive_for(&mut input, &mut got, Duration::from_millis(400));
    let s = input.stats();
    assert_exactly_once(&got, 2_100, &format!("{what} ({s:?})"));
    assert_eq!(s.copies_adopted, 1, "{what}");
}

#[test]
fn copy_seen_empty_is_adopted_once_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    let (mut input, mut got, content) = read_app(&app);
    let copy = numbered(&app, 1);
    let mut f = std::fs::File::create(&copy).unwrap();
    drive_for(&mut input, &mut got, Duration::from_millis(60));
    f.write_all(&content).unwrap();
    truncate(&app);
    finish(&app, input, got, "copy seen empty");
}

#[test]
fn copy_seen_with_part_of_its_head_is_adopted_once_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    let (mut input, mut got, content) = read_app(&app);
    let copy = numbered(&app, 1);
    let mut f = std::fs::File::create(&copy).unwrap();
    f.write_all(&content[..300]).unwrap();
    drive_for(&mut input, &mut got, Duration::from_millis(60));
    f.write_all(&content[300..]).unwrap();
    truncate(&app);
    finish(&app, input, got, "copy seen with 300 bytes");
}

#[test]
fn copy_shorter_than_the_offset_waits_until_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    let (mut input, mut got, content) = read_app(&app);
    // The truncation is noticed first, then a copy with a full head but
    // only half of the data shows up.
    truncate(&app);
    drive_for(&mut input, &mut got, Duration::from_millis(60));
    assert_eq!(input.stats().truncations, 1);
    let copy = numbered(&app, 1);
    let mut f = std::fs::File::create(&copy).unwrap();
    f.write_all(&content[..content.len() / 2]).unwrap();
    drive_for(&mut input, &mut got, Duration::from_millis(60));
    f.write_all(&content[content.len() / 2..]).unwrap();
    finish(&app, input, got, "copy shorter than the offset");
}

#[test]
fn empty_new_file_held_as_a_possible_copy_does_not_make_poll_spin() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    let (mut input, mut got, _) = read_app(&app);
    std::fs::rename(&app, numbered(&app, 1)).unwrap();
    std::fs::File::create(&app).unwrap();
    // For copy_wait (200 ms) the empty file may be the start of a copy.
    let mut busy = 0;
    let until = Instant::now() + Duration::from_millis(150);
    while Instant::now() < until {
        if poll_once(&mut input, &mut got) == Progress::Busy {
            busy += 1;
        } else {
            input.wait(Duration::from_millis(10));
        }
    }
    assert!(busy < 20, "{busy} busy polls while nothing was ready");
    write_lines(&app, 2_000, 2_010);
    assert!(drive(&mut input, &mut got, Duration::from_secs(2), |l| l
        .len()
        >= 2_010));
    drive_for(&mut input, &mut got, Duration::from_millis(300));
    assert_exactly_once(&got, 2_010, "rename, then an empty new file");
}

// ---- time moved by hand: no sleeps ------------------------------------------

/// Polls until idle (at most 50 polls), acknowledging every batch.
fn settle_now(input: &mut FileInput, got: &mut Vec<bytes::Bytes>) {
    for _ in 0..50 {
        if poll_once(input, got) == Progress::Idle {
            break;
        }
    }
}

/// An input of `app.log*` in a new temp dir, on a manual clock, without
/// inotify (nothing wakes it but the test).
fn manual_input(
    tweak: impl FnOnce(&mut logtail_core::file::FileInputOptions),
) -> (
    tempfile::TempDir,
    logtail_core::clock::ManualClock,
    FileInput,
) {
    let tmp = tempfile::tempdir().unwrap();
    let clock = logtail_core::clock::ManualClock::new();
    let mut o = opts(&tmp.path().join("app.log*"));
    o.clock = Arc::new(clock.clone());
    o.inotify = false;
    tweak(&mut o);
    let input = FileInput::new(o, Box::new(MemoryCheckpoint::default())).unwrap();
    (tmp, clock, input)
}

/// A duplicate (`cp app.log app.log.bak`, never followed by a truncation)
/// is held for `copy_wait` of the input's clock, then opened at its end;
/// with a manual clock the test never sleeps.
#[test]
fn duplicate_is_judged_after_copy_wait_of_manual_time() {
    let (tmp, clock, mut input) = manual_input(|o| o.copy_wait = Duration::from_secs(10));
    let app = tmp.path().join("app.log");
    let mut got = Vec::new();
    settle_now(&mut input, &mut got);
    write_lines(&app, 0, 2_000);
    clock.advance(Duration::from_secs(1));
    settle_now(&mut input, &mut got);
    assert_eq!(got.len(), 2_000);

    std::fs::copy(&app, tmp.path().join("app.log.bak")).unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(3));
        settle_now(&mut input, &mut got);
    }
    // 15 s in: held (caught up at the first look, stable since; the
    // verdict needs copy_wait after both).
    let s = input.stats();
    assert_eq!(s.duplicates_skipped, 1, "{s:?}");
    assert_eq!(got.len(), 2_000, "the duplicate was read again: {s:?}");
    // What is appended to it later is its own.
    write_lines(&tmp.path().join("app.log.bak"), 2_000, 2_010);
    clock.advance(Duration::from_secs(2));
    settle_now(&mut input, &mut got);
    assert_exactly_once(&got, 2_010, "duplicate plus its own lines");
}

/// The same copy followed by the truncation, with the manual clock far past
/// `copy_wait` while the reader is behind: adopted, nothing twice.
#[test]
fn copy_held_while_the_reader_is_behind_whatever_the_clock_says() {
    // Small reads: the reader needs many polls to get through the file.
    let (tmp, clock, mut input) = manual_input(|o| {
        o.read_budget = 4096;
        o.chunk_bytes = 4096;
        o.framing.max_line_bytes = 1024;
    });
    let app = tmp.path().join("app.log");
    let mut got = Vec::new();
    poll_once(&mut input, &mut got);
    write_lines(&app, 0, 20_000);
    clock.advance(Duration::from_secs(1));
    poll_once(&mut input, &mut got);
    assert!(got.len() < 20_000);
    std::fs::copy(&app, tmp.path().join("app.log.1")).unwrap();
    // An hour of manual time with the reader still behind: held.
    for _ in 0..10 {
        clock.advance(Duration::from_secs(360));
        poll_once(&mut input, &mut got);
    }
    assert!(
        got.len() < 20_000,
        "the reader caught up; the test proves nothing"
    );
    assert_eq!(input.stats().files_opened, 1, "the copy was opened early");
    truncate(&app);
    write_lines(&app, 20_000, 20_100);
    for _ in 0..200 {
        clock.advance(Duration::from_millis(100));
        settle_now(&mut input, &mut got);
        if got.len() >= 20_100 {
            break;
        }
    }
    let s = input.stats();
    assert_exactly_once(&got, 20_100, &format!("{s:?}"));
    assert_eq!(s.copies_adopted, 1);
}
