//! The real agent shipping to the loopback SLS receiver: the backend is
//! down for a minute while 100 000 lines are written, the agent is
//! SIGKILLed and restarted meanwhile; after recovery every line arrived.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use logtail_testkit::sls_receiver::{Fault, Receiver, ReceiverOptions};

const LINES: u64 = 100_000;
const LINE_LEN: usize = 100;
/// One LogGroup at most (LoongCollector's 4 000 events).
const MAX_DUPLICATES: u64 = 4000;

fn write_sls_config(env: &Env, endpoint: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "inputs:\n  - Type: input_file\n    FilePaths:\n      - {}\n    TailSizeKB: {TAIL_ALL_KB}\nflushers:\n  - Type: flusher_sls\n    Project: proj\n    Logstore: store\n    Region: cn-hangzhou\n    Endpoint: {endpoint}\n{extra}",
        env.logs.join("app.log*").display()
    );
    std::fs::write(&env.config, text).unwrap();
    let creds = env.root().join("credentials.yaml");
    std::fs::write(
        &creds,
        "AccessKeyId: test-key-id\nAccessKeySecret: test-key-secret\n",
    )
    .unwrap();
    creds
}

fn spawn(env: &Env, creds: &Path) -> Agent {
    Agent::spawn(
        AGENT,
        &[&env.config],
        &env.data,
        &["--credentials-file", creds.to_str().unwrap()],
    )
}

fn seq_counts(r: &Receiver) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for l in r.logs() {
        let seq = l.get("content").and_then(parse_seq).expect("seq line");
        *m.entry(seq).or_insert(0) += 1;
    }
    m
}

#[test]
fn backend_down_for_a_minute_with_a_sigkill_loses_nothing() {
    let env = Env::new();
    let r = Receiver::start(ReceiverOptions::default()).unwrap();
    let creds = write_sls_config(&env, &r.endpoint(), "    RetryTimeoutSecs: 2\n");
    r.set_fault(
        Fault::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
        },
        None,
    );
    let down_since = Instant::now();
    let mut agent = spawn(&env, &creds);
    agent.wait_started();
    let writer = SeqWriter::start(WriterPlan {
        path: env.logs.join("app.log"),
        lines: LINES,
        line_len: LINE_LEN,
        per_sec: 2_500,
        rotate_at: vec![50_000],
    });
    assert!(wait_until(Duration::from_secs(60), || writer.written() >= 45_000));
    agent.assert_alive("before SIGKILL");
    agent.kill();
    println!("SIGKILL at {} lines written", writer.written());
    std::thread::sleep(Duration::from_millis(300));
    agent = spawn(&env, &creds);
    agent.wait_started();
    assert_eq!(writer.join(), LINES);
    // The backend stays down for a minute in all.
    let left = Duration::from_secs(60).saturating_sub(down_since.elapsed());
    std::thread::sleep(left);
    assert_eq!(r.log_count(), 0, "nothing got through while SLS was down");
    let buffer = env.data.join("sls").join("app-0").join("buffer");
    assert!(buffer.is_dir(), "the disk buffer exists");
    r.set_fault(Fault::None, None);
    let t0 = Instant::now();
    let ok = wait_until(Duration::from_secs(120), || {
        seq_counts(&r).len() as u64 == LINES
    });
    let counts = seq_counts(&r);
    println!(
        "{} of {LINES} distinct lines {:?} after recovery",
        counts.len(),
        t0.elapsed()
    );
    agent.terminate();
    assert!(
        ok,
        "lost {} lines; stderr:\n{}",
        LINES - counts.len() as u64,
        agent.stderr()
    );
    assert!(counts.keys().all(|&s| s < LINES));
    let dups: u64 = counts.values().map(|n| n - 1).sum();
    println!("{dups} duplicated lines after one SIGKILL");
    assert!(dups <= MAX_DUPLICATES, "{dups} duplicates");
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}

/// A flusher_sls sender thread panics mid-request (after signing, before
/// the body is sent: test hook `__TestPanicInRequest`): the agent keeps
/// running, the group's lines never reach SLS, and its acknowledgement
/// counts as failed, so the checkpoint stays before them. After a SIGKILL
/// and a restart (without the hook) every line has arrived.
#[test]
fn a_sender_panic_mid_request_then_sigkill_loses_nothing() {
    const N: u64 = 20_000;
    const LEN: usize = 80;
    let env = Env::new();
    let r = Receiver::start(ReceiverOptions {
        project: Some("proj".into()),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let batching = "    MaxBatchEvents: 1000\n    MaxBatchDelayMs: 200\n";
    let creds = write_sls_config(
        &env,
        &r.endpoint(),
        &format!("{batching}    __TestPanicInRequest: 3\n"),
    );
    let mut agent = spawn(&env, &creds);
    agent.wait_started();
    let file = env.logs.join("app.log");
    let writer = SeqWriter::start(WriterPlan {
        path: file.clone(),
        lines: N,
        line_len: LEN,
        per_sec: 10_000,
        rotate_at: Vec::new(),
    });
    assert_eq!(writer.join(), N);
    // Everything else is delivered; then nothing more comes.
    let mut last = (0, Instant::now());
    let quiet = wait_until(Duration::from_secs(30), || {
        let n = r.log_count();
        if n != last.0 {
            last = (n, Instant::now());
        }
        n > 0 && last.1.elapsed() > Duration::from_millis(1500)
    });
    assert!(
        quiet,
        "delivery did not settle; stderr:\n{}",
        agent.stderr()
    );
    agent.assert_alive("after a sender panicked");
    let err = agent.stderr();
    assert!(err.contains("injected panic in request 3"), "{err}");
    assert!(err.contains("a sender panicked"), "{err}");
    let got = seq_counts(&r);
    let missing: Vec<u64> = (0..N).filter(|s| !got.contains_key(s)).collect();
    assert!(
        !missing.is_empty() && missing.len() <= 1000,
        "one group of at most 1000 lines never reached SLS: {} missing",
        missing.len()
    );
    // Checkpoints are written every 100 ms: let the last one land.
    std::thread::sleep(Duration::from_millis(500));
    let checkpoint = checkpoint_offset(&env.data, "app", &file).unwrap_or(0);
    let first_missing_at = missing[0] * (LEN as u64 + 1);
    println!(
        "{} lines missing from seq {}; checkpoint at byte {checkpoint} (line {})",
        missing.len(),
        missing[0],
        checkpoint / (LEN as u64 + 1)
    );
    assert!(
        checkpoint <= first_missing_at,
        "checkpoint {checkpoint} moved past the undelivered line at byte {first_missing_at}"
    );
    agent.kill();
    write_sls_config(&env, &r.endpoint(), batching);
    agent = spawn(&env, &creds);
    agent.wait_started();
    let all = wait_until(Duration::from_secs(60), || seq_counts(&r).len() as u64 == N);
    agent.terminate();
    let got = seq_counts(&r);
    assert!(
        all,
        "lost {} lines after the restart; stderr:\n{}",
        N - got.len() as u64,
        agent.stderr()
    );
    assert!(got.keys().all(|&s| s < N));
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}

#[test]
fn live_delivery_reaches_sls_within_the_batch_delay() {
    let env = Env::new();
    let r = Receiver::start(ReceiverOptions::default()).unwrap();
    let creds = write_sls_config(
        &env,
        &r.endpoint(),
        "    CompressType: zstd\n    SignatureVersion: v4\n",
    );
    let mut agent = spawn(&env, &creds);
    agent.wait_started();
    std::fs::write(env.logs.join("app.log"), format!("{}\n", seq_line(0, 40))).unwrap();
    let t0 = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || r.log_count() == 1));
    let took = t0.elapsed();
    println!("first line at SLS after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let log = &r.logs()[0];
    assert_eq!(
        log.tags["__path__"],
        env.logs.join("app.log").display().to_string()
    );
    assert!(log.tags.contains_key("__hostname__"));
    agent.terminate();
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}

#[test]
fn missing_credentials_are_a_clear_startup_error() {
    let env = Env::new();
    write_sls_config(&env, "http://127.0.0.1:9", "");
    let mut agent = Agent::spawn(AGENT, &[&env.config], &env.data, &[]);
    let st = agent
        .wait_exit(Duration::from_secs(10))
        .expect("agent exits");
    assert_eq!(st.code(), Some(2), "{}", agent.stderr());
    let err = agent.stderr();
    assert!(err.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{err}");
    assert!(err.contains("app.yaml"), "{err}");
    // A secret given only half is named, the value never shown.
    let creds = env.root().join("bad.yaml");
    std::fs::write(&creds, "AccessKeySecret: sup3rs3cret\n").unwrap();
    let mut agent = spawn(&env, &creds);
    let st = agent.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(st.code(), Some(2));
    let err = agent.stderr();
    assert!(err.contains("AccessKeyId: missing"), "{err}");
    assert!(!err.contains("sup3rs3cret"), "{err}");
}
