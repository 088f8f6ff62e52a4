//! Multi-line events and file encodings through a real [`FileInput`]: a
//! generated Java log with stack traces gives exactly its events, also
//! while it is being written in arbitrary pieces; an event being assembled
//! survives a rotation and a restart without being split, lost or
//! doubled; GBK and UTF-16 files come out as UTF-8 with counted
//! replacements.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use encoding_rs::GBK;
use logtail_core::checkpoint::FileCheckpoint;
use logtail_core::file::{
    FileEncoding, FileInput, FileInputOptions, MultilineMode, MultilineOptions,
    UnmatchedContentTreatment,
};
use logtail_core::{EventBatch, Input, MemoryCheckpoint, Progress};

const START: &str = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.*";

fn java_multiline() -> Option<MultilineOptions> {
    let mut m = MultilineOptions::default();
    m.mode = MultilineMode::Custom;
    m.start_pattern = Some(START.to_string());
    Some(m)
}

/// Event `i` of a generated Java application log: mostly single lines,
/// every fifth a stack trace (with a cause and `... n more`) of varying
/// depth, every 97th a very deep one.
fn java_event(i: u64) -> String {
    let ts = format!(
        "2024-05-{:02} {:02}:{:02}:{:02}.{:03}",
        1 + i % 28,
        i / 3600 % 24,
        i / 60 % 60,
        i % 60,
        i % 1000
    );
    match i % 5 {
        3 => {
            let mut s = format!(
                "{ts} ERROR [http-nio-8080-exec-{}] c.e.OrderController - request {i} failed\n\
                 java.lang.IllegalStateException: order {i} is in state CLOSED",
                i % 16
            );
            let frames = if i % 97 < 1 { 600 } else { 3 + i * 7919 % 40 };
            for f in 0..frames {
                s.push_str(&format!(
                    "\n\tat com.example.shop.Service{}.call(Service{}.java:{})",
                    f % 13,
                    f % 13,
                    10 + f * 31 % 400
                ));
            }
            s.push_str(&format!(
                "\nCaused by: java.io.IOException: disk {i} full\n\tat java.base/java.io.FileOutputStream.write(FileOutputStream.java:349)\n\t... {} more",
                frames
            ));
            s
        }
        4 => format!(
            "{ts} WARN  [main] c.e.Config - deprecated keys:\n  shop.legacy={i}\n  shop.old=true"
        ),
        _ => format!(
            "{ts} INFO  [main] c.e.Service - handled request {i} in {} ms",
            i * 31 % 97
        ),
    }
}

fn java_log(n: u64) -> (Vec<u8>, Vec<String>) {
    let events: Vec<String> = (0..n).map(java_event).collect();
    let mut data = Vec::new();
    for e in &events {
        data.extend_from_slice(e.as_bytes());
        data.push(b'\n');
    }
    (data, events)
}

/// The common test options, reading files found at start-up from 0.
fn mopts(path: &Path) -> FileInputOptions {
    let mut o = opts(path);
    o.tail_size_kb = u64::MAX / 1024;
    o
}

fn new_input(o: FileInputOptions) -> FileInput {
    FileInput::new(o, Box::new(MemoryCheckpoint::default())).unwrap()
}

/// (content, offset) of every event.
type Got = Vec<(String, u64)>;

fn poll_events(input: &mut FileInput, out: &mut Got) -> Progress {
    let mut batches: Vec<EventBatch> = Vec::new();
    let p = input.poll(&mut batches).expect("poll");
    for b in batches {
        out.extend(
            b.events
                .iter()
                .map(|e| (String::from_utf8_lossy(&e.content).into_owned(), e.offset)),
        );
        b.delivered();
    }
    p
}

fn drive_events(
    input: &mut FileInput,
    out: &mut Got,
    timeout: Duration,
    done: impl FnMut(&Got) -> bool,
) -> bool {
    common::drive_with(input, out, poll_events, timeout, done)
}

fn contents(got: &Got) -> Vec<String> {
    got.iter().map(|(c, _)| c.clone()).collect()
}

fn assert_events(got: &Got, want: &[String], what: &str) {
    let got = contents(got);
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} events, {} expected; first difference at {first}:\n got: {:?}\nwant: {:?}",
            got.len(),
            want.len(),
            got.get(first).map(|s| &s[..s.len().min(200)]),
            want.get(first).map(|s| &s[..s.len().min(200)]),
        );
    }
}

#[test]
fn java_log_gives_exactly_its_events() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.log");
    let (data, want) = java_log(3_000);
    std::fs::write(&path, &data).unwrap();
    let mut o = mopts(&path);
    o.multiline = java_multiline();
    // Small chunks: events straddle chunk ends all the time, and the
    // deepest stack traces are larger than a chunk.
    o.chunk_bytes = 16 * 1024;
    let mut input = new_input(o.clone());
    let mut got = Vec::new();
    let big = want.iter().filter(|e| e.len() > o.chunk_bytes).count();
    assert!(big > 0, "some events must exceed the chunk size");
    // The last event waits for the flush timeout.
    let last = want.last().cloned();
    drive_events(&mut input, &mut got, Duration::from_secs(20), |g| {
        g.last().map(|l| &l.0) == last.as_ref()
    });
    drive_for_events(&mut input, &mut got, Duration::from_millis(100));
    let stats = input.stats();
    assert!(stats.multiline_cut_events > 0);
    // Events larger than a chunk come in pieces of at most a chunk whose
    // concatenation (with the newlines between) is the event.
    let mut merged: Vec<String> = Vec::new();
    let mut offsets = Vec::new();
    for (c, off) in &got {
        assert!(c.len() <= o.chunk_bytes, "a piece bigger than a chunk");
        match merged.last_mut() {
            Some(prev) if !c.starts_with("2024-") => {
                prev.push('\n');
                prev.push_str(c);
            }
            _ => {
                merged.push(c.clone());
                offsets.push(*off);
            }
        }
    }
    let merged: Got = merged.into_iter().map(|m| (m, 0)).collect();
    assert_events(&merged, &want, "events (pieces merged)");
    assert_eq!(stats.multiline_unmatched_lines, 0);
    assert_eq!(
        stats.multiline_flushes, 1,
        "only the last event waits for the timeout"
    );
    // Offsets are where each event starts in the file.
    let mut at = 0u64;
    for (i, e) in want.iter().enumerate() {
        assert_eq!(offsets[i], at, "offset of event {i}");
        at += e.len() as u64 + 1;
    }

    // With the default chunk size, no event is cut at all.
    let mut o = mopts(&path);
    o.multiline = java_multiline();
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_events(&mut input, &mut got, Duration::from_secs(20), |g| {
        g.len() >= want.len()
    });
    assert_events(&got, &want, "default chunk size");
    assert_eq!(input.stats().multiline_cut_events, 0);
}

fn drive_for_events(input: &mut FileInput, out: &mut Got, d: Duration) {
    drive_events(input, out, d, |_| false);
}

#[test]
fn java_log_written_in_arbitrary_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.log");
    let (mut data, want) = java_log(2_000);
    // A last start line ends the last event; it stays pending itself.
    data.extend_from_slice(b"2024-06-01 00:00:00 INFO end\n");
    std::fs::write(&path, b"").unwrap();
    let mut o = mopts(&path);
    o.multiline = java_multiline();
    // Long enough that a writer preempted mid-event does not trigger it.
    o.flush_timeout = Duration::from_secs(30);
    let mut input = new_input(o);
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut f = append(&path);
            let mut pos = 0;
            let mut seed = 12345u64;
            while pos < data.len() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let n = 1 + (seed >> 33) as usize % 3000;
                let end = (pos + n).min(data.len());
                f.write_all(&data[pos..end]).unwrap();
                pos = end;
                if seed % 7 < 1 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        })
    };
    let mut got = Vec::new();
    let ok = drive_events(&mut input, &mut got, Duration::from_secs(30), |g| {
        g.len() >= want.len()
    });
    writer.join().unwrap();
    drive_for_events(&mut input, &mut got, Duration::from_millis(200));
    assert!(ok, "{} of {} events", got.len(), want.len());
    assert_events(&got, &want, "written in pieces");
}

/// A stack trace whose first lines were read before the file was renamed
/// (and a new one created), and whose last lines were written to the
/// renamed file afterwards: one event, once.
#[test]
fn event_spanning_a_rotation_is_not_split() {
    for (pattern, flush_timeout) in [
        // The renamed file still matches; the last event goes at the flush timeout.
        ("app.log*", Duration::from_millis(300)),
        // The renamed file leaves the pattern; its last event goes when
        // it is closed, long before the flush timeout.
        ("app.log", Duration::from_secs(60)),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let app = dir.join("app.log");
        let mut o = mopts(&dir.join(pattern));
        o.multiline = java_multiline();
        o.flush_timeout = flush_timeout;
        let mut input = new_input(o);
        let mut got = Vec::new();

        let e3 = java_event(3); // a stack trace
        let e3_lines: Vec<&str> = e3.split('\n').collect();
        assert!(e3_lines.len() > 4);
        let mut w = append(&app);
        let head = format!(
            "{}\n{}\n{}\n{}\n",
            java_event(0),
            java_event(1),
            java_event(2),
            e3_lines[..3].join("\n")
        );
        w.write_all(head.as_bytes()).unwrap();
        assert!(drive_events(
            &mut input,
            &mut got,
            Duration::from_secs(5),
            |g| g.len() >= 3
        ));
        drive_for_events(&mut input, &mut got, Duration::from_millis(100));
        assert_eq!(
            got.len(),
            3,
            "{pattern}: the stack trace is still being assembled"
        );

        // The writer finishes the trace in the file it has open; then the
        // file is rotated and the writer goes on in a new one.
        w.write_all(format!("{}\n", e3_lines[3..].join("\n")).as_bytes())
            .unwrap();
        std::fs::rename(&app, numbered(&app, 1)).unwrap();
        let mut w = append(&app);
        w.write_all(format!("{}\n{}\n", java_event(4), java_event(5)).as_bytes())
            .unwrap();

        let want: Vec<String> = (0..5).map(java_event).collect();
        let ok = drive_events(&mut input, &mut got, Duration::from_secs(10), |g| {
            g.len() >= 5
        });
        assert!(ok, "{pattern}: {} events", got.len());
        if flush_timeout < Duration::from_secs(10) {
            // The new file's last event goes at the flush timeout.
            drive_events(&mut input, &mut got, Duration::from_secs(5), |g| {
                g.len() >= 6
            });
            assert_eq!(got.len(), 6, "{pattern}");
            assert_eq!(got.iter().filter(|(c, _)| *c == java_event(5)).count(), 1);
            got.retain(|(c, _)| *c != java_event(5));
        }
        let mut sorted = contents(&got);
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_events(
            &got.iter()
                .cloned()
                .enumerate()
                .map(|(i, (_, o))| (sorted[i].clone(), o))
                .collect(),
            &want_sorted,
            pattern,
        );
        // Event 5 is the new file's last: it waits for the flush timeout.
        if flush_timeout > Duration::from_secs(10) {
            drive_for_events(&mut input, &mut got, Duration::from_millis(600));
            assert_eq!(got.len(), 5, "{pattern}: event 5 still pending");
            assert!(
                input.stats().files_closed >= 1,
                "{pattern}: rotated file closed"
            );
        }
    }
}

/// Stopping while an event is being assembled, then restarting from the
/// checkpoint: the event is read again from its first line and emitted
/// once, whole.
#[test]
fn restart_does_not_split_lose_or_double_an_event() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = dir.join("app.log");
    let store = dir.join("state").join("checkpoint.json");
    let mut o = mopts(&app);
    o.multiline = java_multiline();
    o.flush_timeout = Duration::from_secs(60);

    let all: Vec<String> = (0..400).map(java_event).collect();
    // Stop in the middle of event 398 (a stack trace), and of a line.
    let cut_event = 398;
    assert_eq!(cut_event % 5, 3);
    let mut data = Vec::new();
    for e in &all[..cut_event] {
        data.extend_from_slice(e.as_bytes());
        data.push(b'\n');
    }
    let trace = all[cut_event].as_bytes();
    let half = trace.len() / 2;
    data.extend_from_slice(&trace[..half]);
    std::fs::write(&app, &data).unwrap();

    let (cp, _) = FileCheckpoint::open(&store).unwrap();
    let mut input = FileInput::new(o.clone(), Box::new(cp)).unwrap();
    let mut first = Vec::new();
    assert!(drive_events(
        &mut input,
        &mut first,
        Duration::from_secs(10),
        |g| { g.len() >= cut_event }
    ));
    drive_for_events(&mut input, &mut first, Duration::from_millis(100));
    assert_eq!(first.len(), cut_event);
    assert_eq!(input.settle(Duration::from_secs(1)).unwrap(), 0);
    let committed: u64 = all[..cut_event].iter().map(|e| e.len() as u64 + 1).sum();
    assert_eq!(
        input
            .checkpoint()
            .positions()
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>(),
        vec![committed],
        "the checkpoint is at the start of the event being assembled"
    );
    drop(input);

    // While nothing runs, the trace is finished and more events follow.
    let mut f = append(&app);
    f.write_all(&trace[half..]).unwrap();
    f.write_all(b"\n").unwrap();
    for e in &all[cut_event + 1..] {
        f.write_all(e.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);

    let (cp, _) = FileCheckpoint::open(&store).unwrap();
    let mut o2 = o;
    o2.flush_timeout = Duration::from_millis(300);
    let mut input = FileInput::new(o2, Box::new(cp)).unwrap();
    let mut second = Vec::new();
    let ok = drive_events(&mut input, &mut second, Duration::from_secs(10), |g| {
        g.len() >= all.len() - cut_event
    });
    assert!(
        ok,
        "second run: {:?} {:?} {:?}",
        contents(&second)
            .iter()
            .map(|c| c.len())
            .collect::<Vec<_>>(),
        input.stats(),
        input.open_files()
    );
    drive_for_events(&mut input, &mut second, Duration::from_millis(100));
    let mut both = first;
    both.extend(second);
    assert_events(&both, &all, "across the restart");
}

/// Lines of a stack trace that precede any start line are unmatched:
/// emitted alone, or dropped and counted.
#[test]
fn unmatched_lines_follow_the_treatment() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.log");
    let body = format!(
        "\tat orphan.A(A.java:1)\n\tat orphan.B(B.java:2)\n{}\n{}\n",
        java_event(3),
        java_event(0)
    );
    std::fs::write(&path, &body).unwrap();
    for (treatment, want_events) in [
        (UnmatchedContentTreatment::SingleLine, 4),
        (UnmatchedContentTreatment::Discard, 2),
    ] {
        let mut o = mopts(&path);
        let mut m = java_multiline().unwrap();
        m.unmatched = treatment;
        o.multiline = Some(m);
        let mut input = new_input(o);
        let mut got = Vec::new();
        assert!(drive_events(
            &mut input,
            &mut got,
            Duration::from_secs(5),
            |g| { g.len() >= want_events }
        ));
        drive_for_events(&mut input, &mut got, Duration::from_millis(100));
        assert_eq!(got.len(), want_events, "{treatment:?}");
        assert_eq!(got[want_events - 2].0, java_event(3));
        let s = input.stats();
        match treatment {
            UnmatchedContentTreatment::SingleLine => assert_eq!(s.multiline_unmatched_lines, 2),
            UnmatchedContentTreatment::Discard => assert_eq!(s.multiline_discarded_lines, 2),
        }
    }
}

#[test]
fn invalid_pattern_is_rejected() {
    let mut o = mopts(Path::new("/tmp/x.log"));
    let mut m = MultilineOptions::default();
    m.start_pattern = Some("(".into());
    o.multiline = Some(m);
    let e = FileInput::new(o, Box::new(MemoryCheckpoint::default())).unwrap_err();
    assert!(e.to_string().contains("StartPattern"), "{e}");
}

fn utf16_bytes(s: &str, be: bool, bom: bool) -> Vec<u8> {
    let mut v = Vec::new();
    if bom {
        v.extend_from_slice(if be { &[0xFE, 0xFF] } else { &[0xFF, 0xFE] });
    }
    for u in s.encode_utf16() {
        v.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
    }
    v
}

fn read_all(o: FileInputOptions, n: usize) -> (Got, logtail_core::file::FileInputStats) {
    let mut input = new_input(o);
    let mut got = Vec::new();
    let ok = drive_events(&mut input, &mut got, Duration::from_secs(10), |g| {
        g.len() >= n
    });
    drive_for_events(&mut input, &mut got, Duration::from_millis(100));
    assert!(ok, "{} of {n} events", got.len());
    (got, input.stats())
}

#[test]
fn gbk_file_becomes_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("gbk.log");
    let lines: Vec<String> = (0..500)
        .map(|i| format!("第{i}行 日志：用户登录成功 ok"))
        .collect();
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for l in &lines {
        offsets.push(data.len() as u64);
        data.extend_from_slice(&GBK.encode(l).0);
        data.push(b'\n');
    }
    // A lone lead byte before a space, and a byte GBK never uses.
    offsets.push(data.len() as u64);
    data.extend_from_slice(b"bad \x81 x \xff end\n");
    std::fs::write(&path, &data).unwrap();
    let mut o = mopts(&path);
    o.encoding = FileEncoding::Gbk;
    o.chunk_bytes = 1000; // lines straddle chunks
    let (got, stats) = read_all(o, lines.len() + 1);
    let mut want = lines.clone();
    want.push("bad \u{fffd} x \u{fffd} end".to_string());
    assert_events(&got, &want, "gbk");
    assert_eq!(
        got.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        offsets,
        "offsets in source bytes"
    );
    assert_eq!(stats.decode_replacements, 2);
    assert_eq!(stats.bytes, data.len() as u64);
}

#[test]
fn utf16_files_become_utf8() {
    for be in [false, true] {
        for bom in [true, false] {
            if be && !bom {
                continue; // without a mark, little-endian is assumed
            }
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("u16.log");
            let lines: Vec<String> = (0..300)
                .map(|i| format!("line {i}: 日志 ünïcödé 😀\r"))
                .collect();
            let mut text = String::new();
            for l in &lines {
                text.push_str(l);
                text.push('\n');
            }
            let mut data = utf16_bytes(&text, be, bom);
            // A lone surrogate, then a last line without newline and with an odd byte.
            let bad = if be { [0xD8, 0x00] } else { [0x00, 0xD8] };
            data.extend_from_slice(&bad);
            data.extend_from_slice(&utf16_bytes("x\n", be, false));
            data.extend_from_slice(&utf16_bytes("tail", be, false));
            data.push(b'!');
            std::fs::write(&path, &data).unwrap();
            let mut o = mopts(&path);
            o.encoding = FileEncoding::Utf16;
            o.framing.strip_cr = true;
            o.chunk_bytes = 999; // odd on purpose: chunks end mid-unit
            let (got, stats) = read_all(o, lines.len() + 2);
            let mut want: Vec<String> = lines
                .iter()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect();
            want.push("\u{fffd}x".to_string());
            want.push("tail\u{fffd}".to_string());
            assert_events(&got, &want, &format!("utf16 be={be} bom={bom}"));
            assert_eq!(stats.decode_replacements, 2);
            // Offsets are source bytes: line 1 starts after the mark and line 0.
            let first_len = utf16_bytes(&format!("{}\n", lines[0]), be, false).len() as u64;
            let bom_len = if bom { 2 } else { 0 };
            assert_eq!(got[0].1, 0);
            assert_eq!(got[1].1, bom_len + first_len);
        }
    }
}

#[test]
fn utf16_stack_traces_and_tail_start() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("u16.log");
    let (text, want) = java_log(400);
    let data = utf16_bytes(std::str::from_utf8(&text).unwrap(), false, true);
    std::fs::write(&path, &data).unwrap();
    let mut o = mopts(&path);
    o.encoding = FileEncoding::Utf16;
    o.multiline = java_multiline();
    let (got, stats) = read_all(o.clone(), want.len());
    assert_events(&got, &want, "utf16 multiline");
    assert_eq!(stats.decode_replacements, 0);

    // Found at start-up, read from TailSizeKB before the end: the first
    // event starts on a unit boundary, at a line start.
    o.tail_size_kb = 4;
    let mut input = new_input(o);
    let mut got = Vec::new();
    drive_events(&mut input, &mut got, Duration::from_secs(5), |g| {
        !g.is_empty() && g.last().map(|l| &l.0) == want.last()
    });
    assert_eq!(input.stats().decode_replacements, 0);
    assert!(got.len() > 1);
    assert!(
        data.len() as u64 - got[0].1 <= 4096 + 400,
        "starts near the tail"
    );
    assert_eq!(got[0].1 % 2, 0);
    // The first event may be the rest of a stack trace (unmatched lines);
    // the others are whole events, ending with the log's last ones.
    let tail: Vec<String> = contents(&got)
        .into_iter()
        .skip_while(|c| !c.starts_with("2024-"))
        .collect();
    assert!(!tail.is_empty());
    assert_eq!(&want[want.len() - tail.len()..], &tail[..]);
}

#[test]
fn json_mode_joins_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("j.log");
    let body = "{\"a\": 1}\n{\n  \"msg\": \"brace } in a string\",\n  \"n\": {\"k\": [1, 2]}\n}\nplain line\n{\"b\":\n 2}\n";
    std::fs::write(&path, body).unwrap();
    let mut o = mopts(&path);
    let mut m = MultilineOptions::default();
    m.mode = MultilineMode::Json;
    o.multiline = Some(m);
    let (got, _) = read_all(o, 4);
    assert_eq!(
        contents(&got),
        [
            "{\"a\": 1}",
            "{\n  \"msg\": \"brace } in a string\",\n  \"n\": {\"k\": [1, 2]}\n}",
            "plain line",
            "{\"b\":\n 2}"
        ]
    );
}
