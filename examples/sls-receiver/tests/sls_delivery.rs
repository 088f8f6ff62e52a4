//! flusher_sls against the loopback SLS receiver (real sockets, requests
//! checked with code independent of logtail-core and decoded with the
//! official protobuf crate): formats, signatures, retries by error class,
//! the disk buffer and its 24-hour TTL.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::Receiver as AckRx;
use logtail_core::ack::{Ack, AckToken, AckTracker, BatchId};
use logtail_core::sls::{CompressType, Credentials};
use logtail_core::spill::ManualClock;
use logtail_core::{Event, EventBatch, Sink, SourceTags, Timestamp};
use logtail_sdk::sinks::sls::{CredentialSource, Endpoint, HostInfo, SlsOptions, SlsSink};
use logtail_sls_receiver::{Fault, Receiver, ReceiverOptions, StoredLog};

const KEY_ID: &str = "test-key-id";
const SECRET: &str = "test-key-secret";

fn receiver() -> Receiver {
    Receiver::start(ReceiverOptions {
        access_key_id: KEY_ID.into(),
        access_key_secret: SECRET.into(),
        // SLS finds the project in `Host`; only `proj` exists here.
        project: Some("proj".into()),
        ..ReceiverOptions::default()
    })
    .expect("receiver")
}

fn options(r: &Receiver) -> SlsOptions {
    let mut o = SlsOptions::new(
        "proj",
        "store",
        "cn-hangzhou",
        Endpoint::parse(&r.endpoint()).unwrap(),
    );
    o.concurrency = 4;
    o.retry_timeout = Duration::from_secs(20);
    o.request_timeout = Duration::from_secs(5);
    o.batch.max_age = Duration::from_millis(200);
    o
}

fn creds() -> CredentialSource {
    CredentialSource::Static(Credentials::new(KEY_ID, SECRET, None))
}

fn host() -> HostInfo {
    HostInfo {
        ip: "10.1.2.3".into(),
        hostname: "test-host".into(),
    }
}

fn start(opts: SlsOptions, dir: &Path, clock: Option<Arc<ManualClock>>) -> SlsSink {
    SlsSink::start(
        "test",
        opts,
        creds(),
        host(),
        dir,
        clock.map(|c| c as Arc<dyn logtail_core::spill::Clock>),
    )
    .expect("sink starts")
}

/// Sends `n` events `seq=…` in batches of `per_batch`; returns the ack receiver.
fn send_seq(sink: &mut SlsSink, from: u64, n: u64, per_batch: u64) -> AckRx<Ack> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let source = Arc::new(SourceTags {
        path: "/var/log/app.log".into(),
        dev: 1,
        inode: 2,
        config: "c".into(),
    });
    let mut seq = from;
    let mut batch_no = 0;
    while seq < from + n {
        let end = (seq + per_batch).min(from + n);
        let events: Vec<Event> = (seq..end)
            .map(|s| {
                let mut e = Event::line(
                    Bytes::from(format!(
                        "seq={s:08} payload {}",
                        "x".repeat((s % 50) as usize)
                    )),
                    s * 100,
                    Timestamp {
                        secs: 1_700_000_000 + s as i64,
                        nanos: (s % 1000) as u32 * 1000,
                    },
                );
                if s % 3 == 0 {
                    e.set_field("level", Bytes::from_static(b"INFO"));
                    e.content = Bytes::new();
                    e.set_field("msg", Bytes::from(format!("seq={s:08}")));
                }
                e
            })
            .collect();
        let batch = EventBatch {
            source: Arc::clone(&source),
            bytes: 0,
            ack: AckToken::new(
                BatchId {
                    source: 1,
                    seq: batch_no,
                },
                tx.clone(),
            ),
            events,
        };
        batch_no += 1;
        sink.send(batch).expect("send never refuses");
        seq = end;
    }
    rx
}

fn seq_of(log: &StoredLog) -> u64 {
    let text = log
        .get("content")
        .or_else(|| log.get("msg"))
        .expect("content or msg");
    text[4..12].parse().expect("seq")
}

/// Counts per sequence number.
fn counts(r: &Receiver) -> BTreeMap<u64, u32> {
    let mut m = BTreeMap::new();
    for l in r.logs() {
        *m.entry(seq_of(&l)).or_insert(0) += 1;
    }
    m
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Waits for `batches` acknowledgements, flushing the sink as the
/// pipeline does when idle (that seals groups older than MaxBatchDelay).
fn all_acked(sink: &mut SlsSink, rx: &AckRx<Ack>, batches: usize, timeout: Duration) -> Vec<Ack> {
    let mut acks = Vec::new();
    let deadline = Instant::now() + timeout;
    while acks.len() < batches && Instant::now() < deadline {
        sink.flush().expect("flush");
        if let Ok(a) = rx.recv_timeout(Duration::from_millis(50)) {
            acks.push(a);
        }
    }
    acks
}

#[test]
fn every_format_and_signature_arrives_exactly_once_and_intact() {
    for (compress, v4) in [
        (CompressType::Lz4, false),
        (CompressType::Zstd, false),
        (CompressType::None, false),
        (CompressType::Lz4, true),
        (CompressType::Zstd, true),
    ] {
        let r = receiver();
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(&r);
        o.compress = compress;
        o.signature_v4 = v4;
        o.topic = Some("topic-a".into());
        o.batch.max_events = 700;
        let mut sink = start(o, dir.path(), None);
        let rx = send_seq(&mut sink, 0, 5000, 97);
        let acks = all_acked(&mut sink, &rx, 52, Duration::from_secs(20));
        assert_eq!(
            acks.len(),
            52,
            "{compress:?} v4={v4}: every batch acknowledged"
        );
        assert!(acks.iter().all(|a| a.delivered));
        let c = counts(&r);
        assert_eq!(c.len(), 5000, "{compress:?} v4={v4}: all arrived");
        assert!(c.values().all(|&n| n == 1), "no duplicates");
        assert!(r.violations().is_empty(), "{:?}", r.violations());
        let logs = r.logs();
        let l = logs.iter().find(|l| seq_of(l) == 3).unwrap();
        assert_eq!(l.time, 1_700_000_003);
        assert_eq!(l.time_ns, Some(3000));
        assert_eq!(
            l.contents,
            vec![
                ("level".to_string(), "INFO".to_string()),
                ("msg".into(), "seq=00000003".into())
            ]
        );
        assert_eq!(l.topic.as_deref(), Some("topic-a"));
        assert_eq!(l.source.as_deref(), Some("10.1.2.3"));
        assert_eq!(l.tags["__path__"], "/var/log/app.log");
        assert_eq!(l.tags["__hostname__"], "test-host");
        let l1 = logs.iter().find(|l| seq_of(l) == 1).unwrap();
        assert!(l1
            .get("content")
            .unwrap()
            .starts_with("seq=00000001 payload"));
        // Groups respect MaxBatchEvents; pack ids: one prefix, rising sequence.
        let mut packs: BTreeMap<String, usize> = BTreeMap::new();
        for l in &logs {
            *packs.entry(l.tags["__pack_id__"].clone()).or_default() += 1;
        }
        assert!(packs.values().all(|&n| n <= 700), "{packs:?}");
        let prefixes: std::collections::BTreeSet<_> = packs
            .keys()
            .map(|p| p.split('-').next().unwrap().to_string())
            .collect();
        assert_eq!(prefixes.len(), 1, "{packs:?}");
        assert!(packs.len() >= 8, "{} groups", packs.len());
        drop(sink);
    }
}

#[test]
fn shard_hash_keys_route_each_group() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.shard_hash_keys = vec!["level".into()];
    let mut sink = start(o, dir.path(), None);
    let rx = send_seq(&mut sink, 0, 300, 50);
    assert_eq!(
        all_acked(&mut sink, &rx, 6, Duration::from_secs(10)).len(),
        6
    );
    let logs = r.logs();
    assert_eq!(logs.len(), 300);
    // level=INFO for seq%3==0, absent otherwise: two routes, md5 hex.
    let keys: std::collections::BTreeSet<_> =
        logs.iter().map(|l| l.hash_key.clone().unwrap()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.len() == 32));
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}

#[test]
fn retryable_errors_and_quota_are_retried_until_delivered() {
    use std::sync::atomic::Ordering::Relaxed;
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.concurrency = 1;
    let mut sink = start(o, dir.path(), None);
    let stats = sink.stats_handle();
    // Quota: back off, halve the concurrency, retry; nothing buffered.
    r.set_fault(
        Fault::Error {
            status: 403,
            code: "WriteQuotaExceed".into(),
        },
        Some(3),
    );
    let rx = send_seq(&mut sink, 0, 1000, 100);
    assert_eq!(
        all_acked(&mut sink, &rx, 10, Duration::from_secs(20)).len(),
        10
    );
    assert_eq!(stats.stats().quota_errors.load(Relaxed), 3);
    // A blip (fewer failures than DOWN_AFTER): retried live.
    for code in ["ServerBusy", "InternalServerError"] {
        r.set_fault(
            Fault::Error {
                status: 500,
                code: code.into(),
            },
            Some(1),
        );
        let rx = send_seq(
            &mut sink,
            1000 + if code == "ServerBusy" { 0 } else { 500 },
            500,
            100,
        );
        assert_eq!(
            all_acked(&mut sink, &rx, 5, Duration::from_secs(20)).len(),
            5
        );
    }
    assert_eq!(stats.stats().spilled_groups.load(Relaxed), 0);
    assert_eq!(counts(&r).len(), 2000);
    // Down (503 many times in a row, and a proxy's 502 without a body):
    // buffered on disk, replayed when SLS answers again.
    r.set_fault(
        Fault::Error {
            status: 502,
            code: "".into(),
        },
        Some(6),
    );
    let rx = send_seq(&mut sink, 2000, 1000, 100);
    assert_eq!(
        all_acked(&mut sink, &rx, 10, Duration::from_secs(20)).len(),
        10
    );
    assert!(wait_until(Duration::from_secs(30), || counts(&r).len() == 3000));
    let c = counts(&r);
    assert!(c.values().all(|&n| n == 1), "no duplicates");
    assert!(stats.stats().retries.load(Relaxed) >= 6);
    assert!(stats.stats().spilled_groups.load(Relaxed) >= 1);
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}

#[test]
fn reset_after_store_duplicates_at_most_the_reset_group() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.batch.max_events = 200;
    let mut sink = start(o, dir.path(), None);
    r.set_fault(Fault::ResetAfterStore, Some(1));
    let rx = send_seq(&mut sink, 0, 1000, 100);
    assert_eq!(
        all_acked(&mut sink, &rx, 10, Duration::from_secs(20)).len(),
        10
    );
    let c = counts(&r);
    assert_eq!(c.len(), 1000, "nothing lost");
    let dups: u32 = c.values().map(|&n| n - 1).sum();
    assert!(dups <= 200, "{dups} duplicates: at most the one group");
    assert!(dups > 0, "the reset group was sent again");
}

#[test]
fn clock_skew_is_corrected_from_the_server_time() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = start(options(&r), dir.path(), None);
    // The receiver's clock is two hours ahead.
    r.set_fault(Fault::ClockAhead(7200), None);
    let rx = send_seq(&mut sink, 0, 100, 100);
    assert_eq!(
        all_acked(&mut sink, &rx, 1, Duration::from_secs(10)).len(),
        1
    );
    assert_eq!(counts(&r).len(), 100);
    for v4 in [false, true] {
        let r = receiver();
        r.set_fault(Fault::ClockAhead(-3600), None);
        let mut o = options(&r);
        o.signature_v4 = v4;
        let dir = tempfile::tempdir().unwrap();
        let mut sink = start(o, dir.path(), None);
        let rx = send_seq(&mut sink, 0, 10, 10);
        assert_eq!(
            all_acked(&mut sink, &rx, 1, Duration::from_secs(10)).len(),
            1
        );
        assert_eq!(counts(&r).len(), 10, "v4={v4}");
    }
}

#[test]
fn invalid_requests_are_set_aside_after_a_few_tries_and_counted() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = start(options(&r), dir.path(), None);
    let stats = sink.stats_handle();
    r.set_fault(
        Fault::Error {
            status: 400,
            code: "PostBodyInvalid".into(),
        },
        None,
    );
    let rx = send_seq(&mut sink, 0, 100, 100);
    let acks = all_acked(&mut sink, &rx, 1, Duration::from_secs(20));
    assert_eq!(
        acks.len(),
        1,
        "set aside counts as done, never retried forever"
    );
    let requests = r.requests();
    assert!((3..=4).contains(&requests), "{requests} tries");
    assert_eq!(
        stats
            .stats()
            .rejected_groups
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Kept on disk, not lost silently.
    assert!(dir.path().join("rejected").read_dir().unwrap().count() > 0);
    r.set_fault(Fault::None, None);
    let rx = send_seq(&mut sink, 100, 10, 10);
    assert_eq!(
        all_acked(&mut sink, &rx, 1, Duration::from_secs(10)).len(),
        1
    );
    assert_eq!(counts(&r).len(), 10);
}

#[test]
fn backend_down_spills_to_disk_then_replays_everything() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.retry_timeout = Duration::from_millis(800);
    let mut sink = start(o, dir.path(), None);
    let stats = sink.stats_handle();
    r.set_fault(
        Fault::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
        },
        None,
    );
    let rx = send_seq(&mut sink, 0, 4000, 100);
    // Acknowledged once on disk, while SLS is still down.
    let acks = all_acked(&mut sink, &rx, 40, Duration::from_secs(30));
    assert_eq!(acks.len(), 40);
    assert!(acks.iter().all(|a| a.delivered));
    assert_eq!(r.log_count(), 0);
    assert!(stats.buffered() > 0);
    r.set_fault(Fault::None, None);
    assert!(
        wait_until(Duration::from_secs(30), || counts(&r).len() == 4000),
        "replayed {} of 4000",
        counts(&r).len()
    );
    let c = counts(&r);
    assert!(c.values().all(|&n| n == 1));
    assert!(wait_until(Duration::from_secs(5), || stats.buffered() == 0));
    assert!(
        stats
            .stats()
            .replayed_groups
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[test]
fn buffered_data_survives_a_restart_and_expires_after_24_hours() {
    for (age, expect_replayed) in [
        (Duration::from_secs(24 * 3600 - 60), true),
        (Duration::from_secs(24 * 3600 + 60), false),
    ] {
        let r = receiver();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let mut o = options(&r);
        o.retry_timeout = Duration::from_millis(300);
        r.set_fault(
            Fault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
            None,
        );
        {
            let mut sink = start(o.clone(), dir.path(), Some(Arc::clone(&clock)));
            let rx = send_seq(&mut sink, 0, 500, 100);
            assert_eq!(
                all_acked(&mut sink, &rx, 5, Duration::from_secs(20)).len(),
                5
            );
            drop(sink); // stops with everything in the buffer
        }
        assert_eq!(r.log_count(), 0);
        clock.advance(age);
        r.set_fault(Fault::None, None);
        let sink = start(o, dir.path(), Some(Arc::clone(&clock)));
        if expect_replayed {
            assert!(
                wait_until(Duration::from_secs(20), || counts(&r).len() == 500),
                "replayed {} of 500 after a restart",
                r.log_count()
            );
        } else {
            std::thread::sleep(Duration::from_secs(2));
            assert_eq!(r.log_count(), 0, "older than 24 h: dropped, not sent");
            assert_eq!(sink.stats_handle().buffered(), 0);
        }
    }
}

#[test]
fn max_send_rate_paces_the_wire() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.compress = CompressType::None;
    o.max_send_rate = 200_000;
    o.batch.max_events = 500;
    let mut sink = start(o, dir.path(), None);
    let stats = sink.stats_handle();
    let t0 = Instant::now();
    let rx = send_seq(&mut sink, 0, 10_000, 500);
    assert_eq!(
        all_acked(&mut sink, &rx, 20, Duration::from_secs(60)).len(),
        20
    );
    let elapsed = t0.elapsed();
    let wire = stats
        .stats()
        .sent_wire_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    // One second of burst, then at most 200 kB/s.
    let min = Duration::from_secs_f64((wire as f64 - 200_000.0) / 200_000.0);
    println!("{wire} bytes in {elapsed:?} (at least {min:?})");
    assert!(wire > 400_000, "{wire}");
    assert!(
        elapsed >= min,
        "{wire} bytes in {elapsed:?}, faster than the limit"
    );
}

#[test]
fn stop_with_groups_in_flight_buffers_them_and_acknowledges() {
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.batch.max_age = Duration::from_secs(60);
    r.set_fault(Fault::Slow(Duration::from_secs(30)), None);
    let mut sink = start(o.clone(), dir.path(), None);
    let rx = send_seq(&mut sink, 0, 1000, 100);
    let t0 = Instant::now();
    drop(sink);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    let acks: Vec<Ack> = rx.try_iter().collect();
    assert_eq!(acks.len(), 10);
    assert!(
        acks.iter().all(|a| a.delivered),
        "buffered on disk counts as delivered"
    );
    // Restart against a healthy receiver: everything arrives (the slow
    // request may have stored a copy already: that group can be doubled).
    let r2 = receiver();
    o.endpoint = Endpoint::parse(&r2.endpoint()).unwrap();
    let _sink = start(o, dir.path(), None);
    assert!(wait_until(Duration::from_secs(20), || counts(&r2).len() == 1000));
}

/// An IP endpoint (`http://127.0.0.1:PORT`, the receiver's) sends
/// `Host: proj.127.0.0.1:PORT`, as the official clients do: the receiver,
/// which like SLS finds the project there, accepts every group (v1, and v4
/// which signs the Host).
#[test]
fn ip_endpoint_sends_the_project_in_host_and_every_group_is_accepted() {
    for v4 in [false, true] {
        let r = receiver();
        assert!(r.endpoint().starts_with("http://127.0.0.1:"));
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(&r);
        o.signature_v4 = v4;
        o.batch.max_events = 500;
        let mut sink = start(o, dir.path(), None);
        let rx = send_seq(&mut sink, 0, 3000, 100);
        let acks = all_acked(&mut sink, &rx, 30, Duration::from_secs(20));
        assert_eq!(acks.len(), 30, "v4={v4}");
        assert!(acks.iter().all(|a| a.delivered), "v4={v4}");
        assert_eq!(counts(&r).len(), 3000, "v4={v4}");
        assert!(r.violations().is_empty(), "v4={v4}: {:?}", r.violations());
        assert_eq!(r.requests(), r.accepted(), "v4={v4}: none refused");
        assert!(r.logs().iter().all(|l| l.project == "proj"));
        let s = sink.stats();
        assert_eq!(
            logtail_sdk::sinks::sls::SlsStats::get(&s.rejected_groups),
            0
        );
        assert!(logtail_sdk::sinks::sls::SlsStats::get(&s.sent_groups) >= 6);
    }
}

/// Posts one signed PutLogs (v4, which signs `Host`) to the receiver with
/// `host` as the Host header; returns the status and the JSON answer.
fn post_with_host(r: &Receiver, host: &str) -> (u16, serde_json::Value) {
    use logtail_core::sls::{put_logs, PutLogs, SignatureVersion};
    // A LogGroup with only a topic (field 3): valid, no logs.
    let body = b"\x1a\x01t";
    let req = put_logs(
        &PutLogs {
            project: "proj",
            logstore: "store",
            host,
            hash_key: None,
            compress: CompressType::None,
            raw_size: body.len(),
            body,
            body_md5: None,
            date: SystemTime::now(),
            signature: &SignatureVersion::V4 {
                region: "cn-hangzhou".into(),
            },
        },
        &Credentials::new(KEY_ID, SECRET, None),
    );
    let mut call = ureq::post(&format!("{}{}", r.endpoint(), req.path_and_query));
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("content-length") {
            call = call.set(k, v);
        }
    }
    let resp = match call.send_bytes(body) {
        Ok(resp) => resp,
        Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("{host}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// What our flusher used to send for an IP endpoint, `Host: 127.0.0.1:PORT`
/// (with `x-log-project`), names no project: the receiver, like SLS,
/// answers 404 `ProjectNotExist` with an SLS error body, as it does for a
/// project that does not exist. Only `proj.127.0.0.1:PORT` is accepted.
#[test]
fn receiver_refuses_a_host_without_the_project() {
    let r = receiver();
    let addr = r.addr().to_string();
    let port = r.addr().port();
    for host in [
        addr.clone(),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        format!("other.{addr}"),
    ] {
        let (status, answer) = post_with_host(&r, &host);
        assert_eq!(status, 404, "{host}: {answer}");
        assert_eq!(answer["errorCode"], "ProjectNotExist", "{host}: {answer}");
        assert!(answer["errorMessage"].is_string(), "{host}: {answer}");
    }
    assert_eq!(r.accepted(), 0);
    assert_eq!(r.violations().len(), 4, "{:?}", r.violations());
    let (status, answer) = post_with_host(&r, &format!("proj.{addr}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(r.accepted(), 1);
    // Any project name is taken when the receiver serves any.
    let any = Receiver::start(ReceiverOptions::default()).unwrap();
    let (status, _) = post_with_host(&any, &format!("proj.{}", any.addr()));
    assert_eq!(status, 200);
    let (status, answer) = post_with_host(&any, &any.addr().to_string());
    assert_eq!(status, 404);
    assert_eq!(answer["errorCode"], "ProjectNotExist");
}

/// A sender that panics mid-request (signed, body not yet sent) loses
/// nothing: its group's batches are acknowledged as failed, so the
/// checkpoint (here core's AckTracker, as the file input keeps it) stays
/// before them while the other groups are delivered; reading again from
/// that checkpoint, as a restarted agent does, brings every line.
#[test]
fn a_sender_panic_mid_request_fails_its_batches_and_a_restart_delivers_them() {
    const LINES: u64 = 2000;
    const PER_BATCH: u64 = 50;
    let r = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&r);
    o.batch.max_events = 200;
    o.concurrency = 2;
    o.panic_in_request = Some(3);
    let mut sink = start(o.clone(), dir.path(), None);
    let batches = (LINES / PER_BATCH) as usize;
    let rx = send_seq(&mut sink, 0, LINES, PER_BATCH);
    let acks = all_acked(&mut sink, &rx, batches, Duration::from_secs(20));
    assert_eq!(acks.len(), batches, "every batch has an outcome");
    let stats = sink.stats_handle();
    drop(sink);
    let s = stats.stats();
    assert_eq!(logtail_sdk::sinks::sls::SlsStats::get(&s.panics), 1);
    assert_eq!(logtail_sdk::sinks::sls::SlsStats::get(&s.failed_groups), 1);
    // The group of 200 events (4 batches) whose sender panicked failed.
    let failed: Vec<u64> = acks
        .iter()
        .filter(|a| !a.delivered)
        .map(|a| a.id.seq)
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    let got = counts(&r);
    let missing: Vec<u64> = (0..LINES).filter(|s| !got.contains_key(s)).collect();
    assert_eq!(missing.len(), 200, "the panicked body never went out");
    // The checkpoint: batch i ends at line (i + 1) * PER_BATCH.
    let mut tracker = AckTracker::new(0);
    for i in 0..batches as u64 {
        assert_eq!(tracker.push((i + 1) * PER_BATCH), i);
    }
    for a in &acks {
        tracker.ack(a.id.seq, a.delivered);
    }
    let checkpoint = tracker.committed();
    assert!(
        checkpoint <= missing[0],
        "checkpoint {checkpoint} moved past the undelivered line {}",
        missing[0]
    );
    assert_eq!(checkpoint, failed.iter().min().unwrap() * PER_BATCH);
    // Restart from the checkpoint (no panic this time): every line arrives.
    o.panic_in_request = None;
    let mut sink = start(o, dir.path(), None);
    let again = (LINES - checkpoint).div_ceil(PER_BATCH) as usize;
    let rx = send_seq(&mut sink, checkpoint, LINES - checkpoint, PER_BATCH);
    let acks = all_acked(&mut sink, &rx, again, Duration::from_secs(20));
    assert!(acks.len() == again && acks.iter().all(|a| a.delivered));
    let got = counts(&r);
    assert_eq!(got.len() as u64, LINES, "lost after the restart");
    assert!(r.violations().is_empty(), "{:?}", r.violations());
}
