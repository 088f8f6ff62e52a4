//! Where reading starts (TailSizeKB, files created later, checkpoints
//! across restarts) and what a line is (partial last lines, long lines,
//! arbitrary bytes).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use logtail_core::checkpoint::{FileCheckpoint, Recovery};
use logtail_core::file::{FileInput, FileInputOptions, FramerOptions, LongLinePolicy};
use logtail_core::{Checkpoint, EventBatch, Input, MemoryCheckpoint, Progress};

/// Byte offset at which line `seq` starts in a file holding lines `0..`.
fn offset_of(seq: u64) -> u64 {
    (0..seq).map(|s| line(s).len() as u64 + 1).sum()
}

fn new_input(opts: FileInputOptions) -> FileInput {
    FileInput::new(opts, Box::new(MemoryCheckpoint::default())).unwrap()
}

#[test]
fn tail_size_start_and_files_created_later() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tail = 16 * 1024;
    // mid.log: the TailSizeKB boundary falls inside a line, which is skipped.
    // exact.log: the boundary is exactly a line start, which is kept.
    let n = 3_000;
    let size = offset_of(n);
    write_lines(&dir.join("mid.log"), 0, n);
    let first_inside = (0..n).find(|&s| offset_of(s) >= size - tail).unwrap();
    assert_ne!(offset_of(first_inside), size - tail, "pick another n");
    // exact.log: lines 0..10, then a filler line sized so that the filler
    // starts exactly `tail` bytes before the end, then lines first_inside..n.
    let numbered = size - offset_of(first_inside);
    let filler = tail - numbered;
    let mut content = Vec::new();
    lines_into(&mut content, 0, 10);
    content.extend(std::iter::repeat_n(b'#', filler as usize - 1));
    content.push(b'\n');
    lines_into(&mut content, first_inside, n);
    assert_eq!(content.len() as u64 - tail, offset_of(10));
    std::fs::write(dir.join("exact.log"), &content).unwrap();

    let mut o = opts(&dir.join("*.log"));
    o.tail_size_kb = tail / 1024;
    let mut input = new_input(o);
    let mut got = Vec::new();
    // The filler line is the first full line within the tail of exact.log.
    let want = 2 * (n - first_inside) + 1;
    assert!(
        drive(&mut input, &mut got, Duration::from_secs(5), |l| l.len()
            as u64
            >= want),
        "pre-existing files: {} of {want} lines",
        got.len()
    );

    // Created after the first poll: read from 0 however big it is.
    let later = 2_000;
    write_lines(&dir.join("later.log"), n, n + later);
    assert!(
        drive(&mut input, &mut got, Duration::from_secs(5), |l| l.len()
            as u64
            >= want + later),
        "later.log: {} of {} lines",
        got.len(),
        want + later
    );
    drive_for(&mut input, &mut got, Duration::from_millis(100));

    let filler_line = vec![b'#'; filler as usize - 1];
    let fillers = got.iter().filter(|l| l[..] == filler_line[..]).count();
    assert_eq!(fillers, 1, "exact.log's boundary line");
    let mut seqs: Vec<u64> = got.iter().filter_map(|l| seq_of(l)).collect();
    seqs.sort_unstable();
    let mut expect: Vec<u64> = (first_inside..n)
        .chain(first_inside..n)
        .chain(n..n + later)
        .collect();
    expect.sort_unstable();
    assert!(
        seqs == expect,
        "{} lines, want {}; first seq seen {:?}, want {first_inside}",
        seqs.len(),
        expect.len(),
        seqs.first()
    );
}

#[test]
fn checkpoint_survives_restart_and_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = dir.join("app.log");
    let store = dir.join("state").join("checkpoint.json");
    let o = opts(&dir.join("app.log*"));
    write_lines(&app, 0, 1_000);

    let (cp, rec) = FileCheckpoint::open(&store).unwrap();
    assert_eq!(rec, Recovery::Fresh);
    let mut input = FileInput::new(o.clone(), Box::new(cp)).unwrap();
    let mut first = Vec::new();
    drive(&mut input, &mut first, Duration::from_secs(5), |l| {
        l.len() >= 1_000
    });
    assert_eq!(input.settle(Duration::from_secs(1)).unwrap(), 0);
    drop(input);

    // While nothing runs: more lines, a rotation, lines in the new file.
    write_lines(&app, 1_000, 1_500);
    std::fs::rename(&app, numbered(&app, 1)).unwrap();
    write_lines(&app, 1_500, 2_000);

    let (cp, rec) = FileCheckpoint::open(&store).unwrap();
    assert_eq!(rec, Recovery::Loaded);
    assert_eq!(cp.positions().len(), 1);
    let mut input = FileInput::new(o, Box::new(cp)).unwrap();
    let mut second = Vec::new();
    drive(&mut input, &mut second, Duration::from_secs(5), |l| {
        l.len() >= 1_000
    });
    drive_for(&mut input, &mut second, Duration::from_millis(200));
    assert_eq!(
        second.iter().filter_map(|l| seq_of(l)).min(),
        Some(1_000),
        "second run starts after the checkpoint"
    );
    let all: Vec<Bytes> = first.into_iter().chain(second).collect();
    assert_exactly_once(&all, 2_000, "across a restart");
}

#[test]
fn unacknowledged_batches_are_read_again_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = dir.join("app.log");
    let store = dir.join("checkpoint.json");
    let mut o = opts(&app);
    // Small chunks (a chunk holds at least one maximal line): several
    // batches, some of which are not delivered.
    o.chunk_bytes = 4096;
    o.framing.max_line_bytes = 1024;
    write_lines(&app, 0, 1_000);

    let mut input =
        FileInput::new(o.clone(), Box::new(FileCheckpoint::open(&store).unwrap().0)).unwrap();
    let mut delivered = Vec::new();
    let mut batches: Vec<EventBatch> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while batches.iter().map(|b| b.events.len()).sum::<usize>() < 1_000 {
        assert!(Instant::now() < deadline, "file not read");
        if input.poll(&mut batches).unwrap() == Progress::Idle {
            input.wait(Duration::from_millis(10));
        }
    }
    assert!(batches.len() >= 4, "{} batches", batches.len());
    // Deliver the first half of the batches, fail one, deliver the rest:
    // the checkpoint may only move to the end of the delivered prefix.
    let half = batches.len() / 2;
    let mut resume_at = None;
    for (i, b) in batches.into_iter().enumerate() {
        if i < half {
            delivered.extend(b.events.iter().map(|e| e.content.clone()));
            b.delivered();
        } else if i == half {
            resume_at = seq_of(&b.events[0].content);
            b.ack.failed();
        } else {
            b.delivered();
        }
    }
    input.settle(Duration::from_secs(1)).unwrap();
    drop(input);

    let mut input = FileInput::new(o, Box::new(FileCheckpoint::open(&store).unwrap().0)).unwrap();
    let mut again = Vec::new();
    let want = 1_000 - delivered.len();
    drive(&mut input, &mut again, Duration::from_secs(5), |l| {
        l.len() >= want
    });
    drive_for(&mut input, &mut again, Duration::from_millis(100));
    assert_eq!(again.first().and_then(|l| seq_of(l)), resume_at);
    let all: Vec<Bytes> = delivered.into_iter().chain(again).collect();
    assert_exactly_once(&all, 1_000, "failed batch re-read after restart");
}

#[test]
fn prefilled_memory_checkpoint_wins_over_tail_size() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    write_lines(&app, 0, 2_000);
    // A first instance reads everything; its checkpoint seeds the second.
    let mut o = opts(&app);
    o.tail_size_kb = 1; // would skip nearly all of it without a checkpoint
    let mut input = FileInput::new(o.clone(), Box::new(MemoryCheckpoint::default())).unwrap();
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(200));
    assert!(got.len() < 100, "tail start: {} lines", got.len());
    let mut pos = input.checkpoint().positions();
    assert_eq!(pos.len(), 1);
    pos[0].offset = offset_of(500);
    drop(input);

    let mut cp = MemoryCheckpoint::default();
    cp.update(pos.remove(0));
    let mut input = FileInput::new(o, Box::new(cp)).unwrap();
    let mut got = Vec::new();
    drive(&mut input, &mut got, Duration::from_secs(5), |l| {
        l.len() >= 1_500
    });
    drive_for(&mut input, &mut got, Duration::from_millis(100));
    let seqs: Vec<u64> = got.iter().filter_map(|l| seq_of(l)).collect();
    assert_eq!(seqs, (500..2_000).collect::<Vec<_>>());
}

#[test]
fn partial_last_line_is_flushed_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    std::fs::write(&app, b"").unwrap();
    let mut o = opts(&app);
    o.flush_timeout = Duration::from_millis(400);
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(50));
    append(&app).write_all(b"complete\npartial").unwrap();
    let written = Instant::now();
    // The poll that emits the partial line must have started after the
    // flush timeout (the input takes `now` at the start of a poll).
    let mut emitted_by_poll_at = None;
    while got.len() < 2 && written.elapsed() < Duration::from_secs(3) {
        let start = Instant::now();
        if poll_once(&mut input, &mut got) == Progress::Idle {
            input.wait(Duration::from_millis(10));
        }
        if got.len() >= 2 && emitted_by_poll_at.is_none() {
            emitted_by_poll_at = Some(start.duration_since(written));
        }
    }
    assert_eq!(got, [&b"complete"[..], b"partial"]);
    let at = emitted_by_poll_at.unwrap();
    assert!(at >= Duration::from_millis(400), "flushed after {at:?}");
    assert_eq!(input.stats().partial_flushes, 1);
    // The line goes on after the flush: the rest is a line of its own.
    append(&app).write_all(b" rest\nnext\n").unwrap();
    assert!(drive(&mut input, &mut got, Duration::from_secs(2), |l| l
        .len()
        >= 4));
    assert_eq!(
        &got[2..],
        &[Bytes::from_static(b" rest"), Bytes::from_static(b"next")]
    );
}

#[test]
fn long_line_is_split_into_pieces_that_concatenate_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    std::fs::write(&app, b"").unwrap();
    let mut o = opts(&app);
    let max = 512 * 1024;
    o.framing = FramerOptions::default();
    o.framing.max_line_bytes = max;
    o.framing.long_lines = LongLinePolicy::Split;
    o.framing.strip_cr = false;
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(50));

    let long: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| b'A' + (i % 26) as u8)
        .collect();
    let mut f = append(&app);
    // Written in uneven pieces, as a real writer might.
    for piece in long.chunks(700_001) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
    }
    f.write_all(b"\nafter\n").unwrap();
    drop(f);
    assert!(drive(&mut input, &mut got, Duration::from_secs(5), |l| l
        .last()
        .is_some_and(|l| &l[..] == b"after")));
    let pieces = &got[..got.len() - 1];
    assert!(
        pieces.iter().all(|p| p.len() <= max),
        "piece over the maximum"
    );
    assert_eq!(pieces.len(), 6, "3 MiB in 512 KiB pieces");
    assert!(
        pieces.concat() == long,
        "pieces do not concatenate to the line"
    );
    assert_eq!(input.stats().long_line_pieces, 5);
}

#[test]
fn nul_bytes_and_invalid_utf8_pass_through() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    std::fs::write(&app, b"").unwrap();
    let mut input = new_input(opts(&app));
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(50));
    let lines: Vec<&[u8]> = vec![
        b"\0\0\0",
        b"a\0b",
        b"\xff\xfe\xfd",
        b"\xc3\x28 truncated sequence",
        b"\xe2\x82",
        b"crlf kept\r",
        b"",
        b"\xf0\x9f\x92\x96 valid emoji",
    ];
    let mut data = Vec::new();
    for l in &lines {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    append(&app).write_all(&data).unwrap();
    assert!(drive(&mut input, &mut got, Duration::from_secs(2), |l| l
        .len()
        >= lines.len()));
    drive_for(&mut input, &mut got, Duration::from_millis(50));
    let got: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
    assert_eq!(got, lines);
}

#[test]
fn partial_line_left_in_a_rotated_file_is_flushed_then_the_file_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    std::fs::write(&app, b"").unwrap();
    let mut o = opts(&app); // app.log.1 does not match
    o.flush_timeout = Duration::from_millis(300);
    o.close_rotated_after = Duration::from_millis(300);
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(50));
    append(&app).write_all(b"a\nunfinished").unwrap();
    assert!(drive(&mut input, &mut got, Duration::from_secs(2), |l| !l
        .is_empty()));
    std::fs::rename(&app, numbered(&app, 1)).unwrap();
    append(&app).write_all(b"b\n").unwrap();
    assert!(drive(&mut input, &mut got, Duration::from_secs(3), |l| l
        .len()
        >= 3));
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, [&b"a"[..], b"b", b"unfinished"]);
    // Drained, flushed and idle: the rotated file is closed.
    let deadline = Instant::now() + Duration::from_secs(3);
    while input.stats().files_open > 1 && Instant::now() < deadline {
        drive_for(&mut input, &mut got, Duration::from_millis(20));
    }
    let open: Vec<_> = input.open_files().into_iter().map(|(p, _)| p).collect();
    assert_eq!(open, vec![app.clone()]);
    assert_eq!(got.len(), 3);
    assert_eq!(input.stats().partial_flushes, 1);
}

#[test]
fn inactive_file_is_closed_and_reopened_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.log");
    std::fs::write(&app, b"").unwrap();
    let mut o = opts(&app);
    o.close_inactive_after = Duration::from_millis(200);
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_for(&mut input, &mut got, Duration::from_millis(50));
    write_lines(&app, 0, 500);
    assert!(drive(&mut input, &mut got, Duration::from_secs(5), |l| l
        .len()
        >= 500));
    let deadline = Instant::now() + Duration::from_secs(3);
    while input.stats().files_open > 0 && Instant::now() < deadline {
        drive_for(&mut input, &mut got, Duration::from_millis(20));
    }
    assert_eq!(input.stats().files_closed, 1, "idle file not closed");
    write_lines(&app, 500, 1_000);
    assert!(drive(&mut input, &mut got, Duration::from_secs(5), |l| l
        .len()
        >= 1_000));
    drive_for(&mut input, &mut got, Duration::from_millis(100));
    assert_exactly_once(&got, 1_000, "closed while idle, reopened");
    assert_eq!(input.stats().files_opened, 2);
}

#[test]
fn fifo_is_read_as_a_stream_across_writers() {
    // Pipes cannot be mapped: they are read with plain reads, an incomplete
    // line is held like in a file, and a FIFO whose writer went away is read
    // again when the next writer comes.
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut input = new_input(opts(&tmp.path().join("*.log")));
    let mut out = Vec::new();
    drive_for(&mut input, &mut out, Duration::from_millis(100));
    assert_eq!(input.open_files().len(), 1, "the FIFO is opened");

    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"one\ntwo\nthr").unwrap();
    assert!(drive(&mut input, &mut out, Duration::from_secs(5), |o| o
        .len()
        >= 2));
    w.write_all(b"ee\n").unwrap();
    drop(w); // the writer goes away: the reader sees EOF
    assert!(drive(&mut input, &mut out, Duration::from_secs(5), |o| o
        .len()
        >= 3));

    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"four\n").unwrap();
    drop(w);
    assert!(drive(&mut input, &mut out, Duration::from_secs(5), |o| o
        .len()
        >= 4));
    let got: Vec<&[u8]> = out.iter().map(|b| b.as_ref()).collect();
    assert_eq!(got, vec![&b"one"[..], b"two", b"three", b"four"]);
}

#[test]
fn more_files_than_the_open_file_cap_are_all_collected_once() {
    // With room for 8 descriptors, 40 files written in turns are still
    // collected exactly once: drained files are closed to make room and
    // reopened from their checkpoint when they grow.
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&tmp.path().join("*.log"));
    o.max_open_files = 8;
    let mut input = new_input(o);
    let mut out = Vec::new();
    let files: Vec<_> = (0..40)
        .map(|i| tmp.path().join(format!("f{i:02}.log")))
        .collect();
    let mut want = Vec::new();
    for round in 0..3u64 {
        for (i, f) in files.iter().enumerate() {
            let seq = round * 1000 + i as u64;
            write_lines(f, seq, seq + 1);
            want.push(seq);
        }
        let n = want.len();
        assert!(
            drive(&mut input, &mut out, Duration::from_secs(10), |o| o.len()
                >= n),
            "round {round}: {} of {n} lines; stats {:?}; open {:?}",
            out.len(),
            input.stats(),
            input.open_files()
        );
        assert!(
            input.open_files().len() <= 8,
            "cap respected: {}",
            input.open_files().len()
        );
    }
    drive_for(&mut input, &mut out, Duration::from_millis(200));
    let mut got: Vec<u64> = out.iter().filter_map(|l| seq_of(l)).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "every line once");
    let s = input.stats();
    assert!(s.deferred_opens > 0 && s.files_closed > 0, "{s:?}");
}
