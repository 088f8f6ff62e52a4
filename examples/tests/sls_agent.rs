//! The real agent shipping to the loopback SLS receiver: the backend is
//! down for a minute while 100 000 lines are written, the agent is
//! SIGKILLed and restarted meanwhile; after recovery every line arrived.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use logtail_examples::sls_receiver::{Fault, Receiver, ReceiverOptions};

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
    let mut agent = Agent::spawn(&[&env.config], &env.data, &[]);
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
