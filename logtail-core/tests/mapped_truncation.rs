//! A big file read through the memory map while another thread keeps
//! truncating it: without the SIGBUS guard, touching a mapped page past
//! the new end of file kills the process.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use logtail_core::file::FileInput;
use logtail_core::{EventBatch, Input, MemoryCheckpoint, Progress};

const MIB: u64 = 1024 * 1024;

#[test]
fn truncating_a_mapped_file_under_the_reader_is_survived_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("big.log");
    let size = 200 * MIB;
    // 200 MiB of 1 KiB lines.
    let mut block = Vec::with_capacity(MIB as usize);
    for i in 0..1024u32 {
        let mut l = format!("line {i:06} ").into_bytes();
        l.resize(1023, b'x');
        l.push(b'\n');
        block.extend_from_slice(&l);
    }
    let mut f = append(&app);
    for _ in 0..size / MIB {
        f.write_all(&block).unwrap();
    }
    drop(f);

    let mut o = opts(&app);
    // Read it all from the start.
    o.tail_size_kb = size / 1024;
    // Big chunks: each copy out of the map takes long enough for the
    // truncations to land in the middle of it.
    o.chunk_bytes = 32 * MIB as usize;
    o.read_budget = 64 * MIB as usize;
    let mut input = FileInput::new(o, Box::new(MemoryCheckpoint::default())).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let truncator = {
        let (stop, app) = (stop.clone(), app.clone());
        std::thread::spawn(move || {
            let f = OpenOptions::new().write(true).open(&app).unwrap();
            let mut rounds = 0u32;
            while !stop.load(Ordering::Acquire) {
                // Shrink, then grow back (a sparse hole): the reader keeps
                // finding mapped pages beyond a shrinking end of file.
                let shrunk = (size >> (1 + rounds % 4)).max(MIB);
                f.set_len(shrunk).unwrap();
                std::thread::sleep(Duration::from_millis(8));
                f.set_len(size).unwrap();
                std::thread::sleep(Duration::from_millis(8));
                rounds += 1;
            }
            rounds
        })
    };

    let mut batches: Vec<EventBatch> = Vec::new();
    let mut largest = 0u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if input.poll(&mut batches).unwrap() == Progress::Idle {
            input.wait(Duration::from_millis(5));
        }
        for b in batches.drain(..) {
            largest = largest.max(b.bytes);
            b.delivered();
        }
        if input.stats().truncations >= 10 {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    let rounds = truncator.join().unwrap();
    let stats = input.stats();
    assert!(rounds > 0);
    // Reads of 64 KiB and more go through the map.
    assert!(
        largest >= MIB,
        "the map path was not exercised: largest batch {largest} bytes"
    );
    assert!(
        stats.truncations >= 3,
        "truncations not reported: {stats:?} after {rounds} rounds"
    );
}
