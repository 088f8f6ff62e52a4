//! `FileInput::file_progress`: where each open file stands — its size, how
//! far it was read and acknowledged, what was read from it — for the
//! agent's `/status` and its `behind_bytes`.

use std::io::Write;
use std::time::{Duration, Instant};

use logtail_core::file::{FileInput, FileInputOptions};
use logtail_core::{EventBatch, Input, MemoryCheckpoint};

#[test]
fn progress_follows_reading_and_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let mut opts = FileInputOptions::default();
    opts.paths.file_paths = vec![format!("{}/*.log", dir.path().display())];
    let mut input = FileInput::new(opts, Box::new(MemoryCheckpoint::default())).unwrap();
    assert!(
        input.file_progress().is_empty(),
        "nothing open before a poll"
    );

    let mut batches: Vec<EventBatch> = Vec::new();
    input.poll(&mut batches).unwrap();
    let p = input.file_progress();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, path);
    assert_eq!(
        (p[0].size, p[0].read_offset, p[0].acked_offset),
        (14, 14, 0)
    );
    assert_eq!((p[0].read_bytes, p[0].read_events), (14, 3));
    assert_eq!(p[0].behind_bytes(), 14, "read but not delivered is behind");

    batches.drain(..).for_each(EventBatch::delivered);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"four\n").unwrap();
    drop(f);
    // The acknowledgement is taken, and the growth seen, by later polls.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        input.poll(&mut batches).unwrap();
        batches.drain(..).for_each(EventBatch::delivered);
        let p = input.file_progress();
        if p[0].acked_offset == 19 && p[0].size == 19 {
            assert_eq!(p[0].behind_bytes(), 0);
            assert_eq!((p[0].read_bytes, p[0].read_events), (19, 4));
            break;
        }
        assert!(Instant::now() < deadline, "{p:?}");
        input.wait(Duration::from_millis(50));
    }
}
