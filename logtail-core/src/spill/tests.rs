//! SpillQueue on real files in temporary directories.

use super::*;
use std::io::Write;

const HOUR: Duration = Duration::from_secs(3600);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::default())
}

fn open_with(dir: &Path, options: SpillOptions, clock: &Arc<ManualClock>) -> SpillQueue {
    SpillQueue::open(dir, options, clock.clone()).unwrap()
}

fn small_segments() -> SpillOptions {
    SpillOptions {
        segment_bytes: 200,
        ..SpillOptions::default()
    }
}

fn payload(i: u32) -> Vec<u8> {
    format!("payload {i:04} ").repeat(4).into_bytes()
}

/// Reads and removes everything, oldest first.
fn drain(q: &mut SpillQueue) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(r) = q.oldest().unwrap() {
        out.push(r.payload);
        q.remove(r.id).unwrap();
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spill"))
        .collect();
    v.sort();
    v
}

#[test]
fn order_across_rotation_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let mut q = open_with(dir.path(), small_segments(), &c);
    assert!(q.is_empty());
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(q.push(&payload(i)).unwrap());
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids order oldest first"
    );
    assert_eq!(q.len(), 20);
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 5, "{segments:?}");
    let on_disk: u64 = segments
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(q.bytes(), on_disk);

    for i in 0..7 {
        let r = q.oldest().unwrap().unwrap();
        assert_eq!(r.payload, payload(i));
        assert_eq!(r.id, ids[i as usize]);
        assert_eq!(r.created, c.now());
        q.remove(r.id).unwrap();
    }
    assert!(
        segment_files(dir.path()).len() < segments.len(),
        "consumed segments deleted"
    );
    drop(q);

    let mut q = open_with(dir.path(), small_segments(), &c);
    assert_eq!(q.len(), 13, "no replay of removed records");
    q.push(&payload(20)).unwrap();
    let expected: Vec<Vec<u8>> = (7..=20).map(payload).collect();
    assert_eq!(drain(&mut q), expected);
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
    assert!(
        segment_files(dir.path()).is_empty(),
        "an empty queue holds no segments"
    );
    assert_eq!(q.stats().pushed_records, 1);
    assert_eq!(q.stats().corrupt_records, 0);

    // Ids keep growing after everything was consumed.
    let id = q.push(b"again").unwrap();
    assert!(id > ids[19]);
    drop(q);
    let mut q = open_with(dir.path(), small_segments(), &c);
    assert_eq!(drain(&mut q), vec![b"again".to_vec()]);
}

#[test]
fn remove_is_persisted_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    let ids: Vec<RecordId> = (0..5).map(|i| q.push(&payload(i)).unwrap()).collect();
    // Not the oldest: refused, nothing removed.
    let err = q.remove(ids[2]).unwrap_err();
    assert!(matches!(err, SpillError::NotOldest { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the oldest record is segment 1 offset 16"),
        "{err}"
    );
    assert_eq!(q.len(), 5);
    // Removing the oldest without reading it first works too.
    q.remove(ids[0]).unwrap();
    let r = q.oldest().unwrap().unwrap();
    assert_eq!(r.id, ids[1]);
    q.remove(r.id).unwrap();
    // Already gone: a no-op.
    q.remove(ids[0]).unwrap();
    q.remove(r.id).unwrap();
    assert_eq!(q.len(), 3);
    drop(q);

    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    assert_eq!(q.len(), 3);
    assert_eq!(q.oldest().unwrap().unwrap().id, ids[2]);
    assert_eq!(drain(&mut q), (2..5).map(payload).collect::<Vec<_>>());
}

#[test]
fn crash_between_delivery_and_remove_replays_that_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    for i in 0..3 {
        q.push(&payload(i)).unwrap();
    }
    let r = q.oldest().unwrap().unwrap();
    // "Delivered", then the process dies before remove.
    drop(q);
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    assert_eq!(q.oldest().unwrap().unwrap(), r);
    assert_eq!(drain(&mut q).len(), 3);
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn torn_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    for i in 0..3 {
        q.push(&payload(i)).unwrap();
    }
    drop(q);
    let seg = segment_files(dir.path()).remove(0);
    let good_len = fs::metadata(&seg).unwrap().len();

    for cut in [1, 10, RECORD_HEADER_LEN, RECORD_HEADER_LEN + 30] {
        let mut rec = Vec::new();
        record::encode_record(1, &[7; 100], &mut rec);
        append_raw(&seg, &rec[..cut]);
        let mut q = open_with(dir.path(), SpillOptions::default(), &c);
        assert_eq!(q.stats().torn_truncated_bytes, cut as u64, "cut {cut}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), good_len, "cut {cut}");
        assert_eq!(q.len(), 3);
        assert_eq!(q.oldest().unwrap().unwrap().payload, payload(0));
    }

    // A whole record whose payload never reached the disk (zeros).
    let mut rec = Vec::new();
    record::encode_record(1, &[7; 100], &mut rec);
    rec[RECORD_HEADER_LEN..].fill(0);
    append_raw(&seg, &rec);
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    assert_eq!(q.stats().torn_truncated_bytes, rec.len() as u64);
    assert_eq!(q.len(), 3);
    // The next push works and lands after the intact records.
    q.push(b"next").unwrap();
    drop(q);
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    assert_eq!(q.stats().torn_truncated_bytes, 0);
    let mut expected: Vec<Vec<u8>> = (0..3).map(payload).collect();
    expected.push(b"next".to_vec());
    assert_eq!(drain(&mut q), expected);
}

/// Offsets of the records of a single-segment queue.
fn record_offsets(seg: &Path) -> Vec<usize> {
    let bytes = fs::read(seg).unwrap();
    let all = record::decode_all(&bytes[SEGMENT_HEADER_LEN..]);
    all.records
        .iter()
        .map(|(_, r)| SEGMENT_HEADER_LEN + r.start - RECORD_HEADER_LEN)
        .collect()
}

#[test]
fn corrupt_middle_records_are_skipped_and_counted() {
    // (byte within the second record to damage, what it hits)
    for (delta, what) in [
        (0, "magic"),
        (5, "length"),
        (12, "time"),
        (RECORD_HEADER_LEN + 3, "payload"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let c = clock();
        let mut q = open_with(dir.path(), SpillOptions::default(), &c);
        for i in 0..4 {
            q.push(&payload(i)).unwrap();
        }
        drop(q);
        let seg = segment_files(dir.path()).remove(0);
        let offsets = record_offsets(&seg);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[offsets[1] + delta] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();

        let mut q = open_with(dir.path(), SpillOptions::default(), &c);
        assert_eq!(q.stats().torn_truncated_bytes, 0, "{what}");
        let got = drain(&mut q);
        assert_eq!(got, vec![payload(0), payload(2), payload(3)], "{what}");
        assert_eq!(q.stats().corrupt_records, 1, "{what}");
        assert_eq!(q.len(), 0, "{what}");
        drop(q);
        // Skipping was durable: nothing comes back, nothing counted twice.
        let mut q = open_with(dir.path(), SpillOptions::default(), &c);
        assert!(q.oldest().unwrap().is_none(), "{what}");
        assert_eq!(q.stats().corrupt_records, 0, "{what}");
    }
}

#[test]
fn garbage_files_and_damaged_head() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let mut q = open_with(dir.path(), small_segments(), &c);
    for i in 0..6 {
        q.push(&payload(i)).unwrap();
    }
    let r = q.oldest().unwrap().unwrap();
    q.remove(r.id).unwrap();
    drop(q);
    let d = dir.path();
    fs::write(d.join("notes.txt"), b"not ours").unwrap();
    fs::write(d.join("12.spill"), b"not a segment name").unwrap();
    fs::write(d.join("00000000000000000050.spill"), vec![0xab; 300]).unwrap();
    fs::write(d.join("00000000000000000051.spill"), b"LTSP").unwrap();

    let mut q = open_with(d, small_segments(), &c);
    let s = q.stats();
    assert_eq!(s.corrupt_records, 1, "{s:?}");
    assert_eq!(s.torn_truncated_bytes, 4, "{s:?}");
    assert!(d.join("00000000000000000050.spill.corrupt").exists());
    assert!(!d.join("00000000000000000051.spill").exists());
    assert!(d.join("notes.txt").exists() && d.join("12.spill").exists());
    assert_eq!(q.len(), 5);
    // New segments are numbered after everything seen.
    assert_eq!(q.next_id, 52);
    q.push(b"new").unwrap();
    let oldest = q.oldest().unwrap().unwrap().id;
    q.remove(oldest).unwrap();
    drop(q);

    // A truncated head file: replay from the first segment (duplicates,
    // never loss), the file moved aside.
    let head = fs::read(d.join(HEAD_FILE)).unwrap();
    fs::write(d.join(HEAD_FILE), &head[..head.len() / 2]).unwrap();
    let mut q = open_with(d, small_segments(), &c);
    assert!(d.join("head.json.corrupt").exists());
    let got = drain(&mut q);
    assert_eq!(
        got.first(),
        Some(&payload(2)),
        "replayed from the oldest segment kept"
    );
    assert_eq!(got.last(), Some(&b"new".to_vec()));
    drop(q);

    // A head file of a newer version is refused and left alone.
    fs::write(
        d.join(HEAD_FILE),
        br#"{"version":9,"segment":1,"offset":16}"#,
    )
    .unwrap();
    let err = SpillQueue::open(d, small_segments(), c.clone()).unwrap_err();
    assert!(
        matches!(err, SpillError::NewerVersion { version: 9, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("head.json"), "{err}");
}

#[test]
fn newer_segment_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = record::SEGMENT_MAGIC.to_vec();
    seg.extend_from_slice(&2u32.to_le_bytes());
    let crc = crc32fast::hash(&seg);
    seg.extend_from_slice(&crc.to_le_bytes());
    seg.extend_from_slice(b"future records");
    let path = dir.path().join("00000000000000000003.spill");
    fs::write(&path, &seg).unwrap();
    let err = SpillQueue::open(dir.path(), SpillOptions::default(), clock()).unwrap_err();
    assert!(
        matches!(err, SpillError::NewerVersion { version: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("00000000000000000003.spill"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), seg);
}

#[test]
fn eviction_keeps_within_max_bytes_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let options = SpillOptions {
        max_bytes: 4000,
        ..SpillOptions::default()
    };
    let mut q = open_with(dir.path(), options.clone(), &c);
    let p = vec![5u8; 100];
    for i in 0..100u32 {
        let mut p = p.clone();
        p[..4].copy_from_slice(&i.to_le_bytes());
        q.push(&p).unwrap();
        assert!(q.bytes() <= 4000, "{:?}", q.stats());
        let on_disk: u64 = segment_files(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(on_disk, q.bytes());
    }
    let s = q.stats();
    assert_eq!(s.records + s.evicted_records, 100, "{s:?}");
    assert!(s.evicted_records > 60, "{s:?}");
    assert_eq!(s.evicted_bytes, s.evicted_records * 124);
    // What is left is the newest records, in order.
    let got: Vec<u32> = drain(&mut q)
        .iter()
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
        .collect();
    let first = 100 - got.len() as u32;
    assert_eq!(got, (first..100).collect::<Vec<_>>());

    // Too large for the queue: refused, with the numbers.
    let err = q.push(&vec![0; 4000]).unwrap_err();
    assert!(
        matches!(
            err,
            SpillError::TooLarge {
                len: 4000,
                max_bytes: 4000
            }
        ),
        "{err:?}"
    );
    // The largest that fits goes in (evicting everything else).
    q.push(b"x").unwrap();
    q.push(&vec![1; 4000 - 16 - 24]).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.bytes(), 4000);
}

#[test]
fn eviction_of_a_record_being_delivered_makes_remove_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let options = SpillOptions {
        max_bytes: 1000,
        ..SpillOptions::default()
    };
    let mut q = open_with(dir.path(), options, &c);
    q.push(&[1; 200]).unwrap();
    let r = q.oldest().unwrap().unwrap();
    for _ in 0..10 {
        q.push(&[2; 200]).unwrap();
    }
    assert!(q.stats().evicted_records >= 1);
    q.remove(r.id).unwrap();
    assert!(q.oldest().unwrap().unwrap().payload == vec![2; 200]);
}

#[test]
fn ttl_of_24_hours_with_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let t = c.now();
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    q.push(b"at T").unwrap();
    c.set(t + 24 * HOUR - Duration::from_secs(1));
    let r = q.oldest().unwrap().expect("younger than 24 h is returned");
    assert_eq!(r.created, t);
    c.set(t + 24 * HOUR);
    assert!(
        q.oldest().unwrap().is_some(),
        "exactly 24 h old is returned"
    );
    c.set(t + 24 * HOUR + Duration::from_secs(1));
    assert!(q.oldest().unwrap().is_none(), "older than 24 h is dropped");
    let s = q.stats();
    assert_eq!((s.expired_records, s.records, s.bytes), (1, 0, 0));

    // push_at keeps an older creation time: it expires by that.
    let now = c.now();
    q.push_at(b"old", now - 23 * HOUR).unwrap();
    q.push(b"fresh").unwrap();
    c.advance(2 * HOUR);
    let r = q.oldest().unwrap().unwrap();
    assert_eq!(r.payload, b"fresh");
    assert_eq!(q.stats().expired_records, 2);
    assert_eq!(q.len(), 1);
    drop(q);
    // The drop was durable.
    let mut q = open_with(dir.path(), SpillOptions::default(), &c);
    assert_eq!(q.len(), 1);
    assert_eq!(drain(&mut q), vec![b"fresh".to_vec()]);
}

#[test]
fn a_second_open_of_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = SpillQueue::open(dir.path(), SpillOptions::default(), Arc::new(SystemClock)).unwrap();
    let err =
        SpillQueue::open(dir.path(), SpillOptions::default(), Arc::new(SystemClock)).unwrap_err();
    assert!(matches!(err, SpillError::Locked { .. }), "{err:?}");
    drop(q);
    SpillQueue::open(dir.path(), SpillOptions::default(), Arc::new(SystemClock)).unwrap();
}

#[test]
fn invalid_options_and_io_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = SpillOptions {
        max_bytes: 10,
        ..SpillOptions::default()
    };
    let err = SpillQueue::open(dir.path(), tiny, clock()).unwrap_err();
    assert!(err.to_string().contains("max_bytes (10)"), "{err}");
    // A file where the directory should be.
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = SpillQueue::open(&file, SpillOptions::default(), clock()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("spill file {}: create directory", file.display())),
        "{err}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever bytes a segment holds, open and drain never panic, and
    /// drain returns only payloads with intact CRCs.
    #[test]
    fn open_never_panics_on_any_segment(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), keep_header in proptest::prelude::any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        if keep_header {
            record::encode_segment_header(&mut bytes);
        }
        bytes.extend_from_slice(&body);
        fs::write(dir.path().join("00000000000000000001.spill"), &bytes).unwrap();
        if let Ok(mut q) = SpillQueue::open(dir.path(), SpillOptions::default(), clock()) {
            let _ = drain(&mut q);
            q.push(b"after").unwrap();
            proptest::prop_assert_eq!(drain(&mut q), vec![b"after".to_vec()]);
        }
    }
}

/// Push+fsync and replay throughput on 512 KiB payloads:
/// `cargo test -p logtail-core --release spill_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn spill_throughput() {
    use std::time::Instant;
    let dir = tempfile::tempdir_in(std::env::var("SPILL_BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .unwrap();
    let mut q =
        SpillQueue::open(dir.path(), SpillOptions::default(), Arc::new(SystemClock)).unwrap();
    let n = 256;
    let payload: Vec<u8> = (0..512 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let start = Instant::now();
    for _ in 0..n {
        q.push(&payload).unwrap();
    }
    let push = start.elapsed();
    drop(q);
    let start = Instant::now();
    let mut q =
        SpillQueue::open(dir.path(), SpillOptions::default(), Arc::new(SystemClock)).unwrap();
    let open = start.elapsed();
    let start = Instant::now();
    let mut count = 0;
    while let Some(r) = q.oldest().unwrap() {
        q.remove(r.id).unwrap();
        count += 1;
    }
    let replay = start.elapsed();
    assert_eq!(count, n);
    let mib = n as f64 * 0.5;
    println!(
        "spill 512 KiB x {n}: push+fsync {:.1} rec/s {:.1} MiB/s; open {:?}; replay (oldest+remove) {:.1} rec/s {:.1} MiB/s",
        n as f64 / push.as_secs_f64(),
        mib / push.as_secs_f64(),
        open,
        n as f64 / replay.as_secs_f64(),
        mib / replay.as_secs_f64(),
    );
}
