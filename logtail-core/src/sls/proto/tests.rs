use super::*;
use crate::event::{Field, Timestamp};
use bytes::Bytes;
use proptest::prelude::*;
use std::sync::Arc;

fn line(s: &[u8], secs: i64, nanos: u32) -> Event {
    Event::line(Bytes::copy_from_slice(s), 0, Timestamp { secs, nanos })
}

fn parsed(pairs: &[(&str, &[u8])], secs: i64) -> Event {
    let mut ev = line(b"", secs, 7);
    ev.fields = pairs
        .iter()
        .map(|(k, v)| Field {
            key: Arc::<str>::from(*k).into(),
            value: Bytes::copy_from_slice(v).into(),
        })
        .collect();
    ev
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn encodes_the_exact_wire_bytes() {
    let mut b = LogGroupBuilder::new();
    b.push(&line(b"hi", 1, 2));
    let bytes = b.finish(&GroupMeta {
        topic: Some("t"),
        tags: &[("k", "v")],
        ..GroupMeta::default()
    });
    #[rustfmt::skip]
    let want = [
        0x0a, 22,                 // Logs, len
          0x08, 1,                //   Time = 1
          0x12, 13,               //   Contents, len
            0x0a, 7, b'c', b'o', b'n', b't', b'e', b'n', b't',
            0x12, 2, b'h', b'i',
          0x25, 2, 0, 0, 0,       //   Time_ns = 2 (fixed32)
        0x1a, 1, b't',            // Topic
        0x32, 6,                  // LogTags
          0x0a, 1, b'k', 0x12, 1, b'v',
    ];
    assert_eq!(bytes, want);
}

#[test]
fn round_trips_lines_fields_and_meta() {
    let events = [
        line(b"first line", 1_700_000_000, 123_456_789),
        line(b"", 1_700_000_001, 0),
        parsed(&[("ip", b"10.0.0.1"), ("status", b"200")], 1_700_000_002),
    ];
    let mut b = LogGroupBuilder::new();
    let mut expected_len = 0;
    for ev in &events {
        expected_len += encoded_log_len(ev);
        b.push(ev);
        assert_eq!(b.encoded_len(), expected_len);
    }
    assert_eq!(b.len(), 3);
    let meta = GroupMeta {
        topic: Some("topic"),
        source: Some("10.1.1.1"),
        machine_uuid: Some("uuid-1"),
        tags: &[("__pack_id__", "ABC-1"), ("__path__", "/var/log/a.log")],
    };
    let bytes = b.finish(&meta);
    assert_eq!(bytes.len(), expected_len + meta.encoded_len());
    let g = decode_log_group(&bytes).unwrap();
    assert_eq!(g.topic.as_deref(), Some("topic"));
    assert_eq!(g.source.as_deref(), Some("10.1.1.1"));
    assert_eq!(g.machine_uuid.as_deref(), Some("uuid-1"));
    assert_eq!(g.category, None);
    assert_eq!(
        g.tags,
        kv(&[("__pack_id__", "ABC-1"), ("__path__", "/var/log/a.log")])
    );
    assert_eq!(
        g.logs,
        vec![
            Log {
                time: 1_700_000_000,
                time_ns: Some(123_456_789),
                contents: kv(&[("content", "first line")]),
            },
            Log {
                time: 1_700_000_001,
                time_ns: Some(0),
                contents: kv(&[("content", "")]),
            },
            Log {
                time: 1_700_000_002,
                time_ns: Some(7),
                contents: kv(&[("ip", "10.0.0.1"), ("status", "200")]),
            },
        ]
    );
}

#[test]
fn empty_group_encodes_to_meta_only() {
    let b = LogGroupBuilder::new();
    assert!(b.is_empty());
    assert_eq!(b.finish(&GroupMeta::default()), Vec::<u8>::new());
    assert_eq!(decode_log_group(&[]).unwrap(), LogGroup::default());
}

#[test]
fn times_are_clamped_to_u32() {
    let mut b = LogGroupBuilder::new();
    b.push(&line(b"a", -5, 0));
    b.push(&line(b"b", i64::MAX, 2_000_000_000));
    let g = decode_log_group(&b.finish(&GroupMeta::default())).unwrap();
    assert_eq!(g.logs[0].time, 0);
    assert_eq!(g.logs[1].time, u32::MAX);
    assert_eq!(g.logs[1].time_ns, Some(999_999_999));
}

#[test]
fn invalid_utf8_is_sent_as_is_and_decoded_lossily() {
    let mut b = LogGroupBuilder::new();
    b.push(&line(b"bad \xff\xfe end", 1, 0));
    let bytes = b.finish(&GroupMeta::default());
    assert!(bytes.windows(2).any(|w| w == b"\xff\xfe"));
    let g = decode_log_group(&bytes).unwrap();
    assert_eq!(g.logs[0].contents[0].1, "bad \u{fffd}\u{fffd} end");
}

#[test]
fn finish_in_place_can_be_repeated_pushed_after_and_cleared() {
    let mut b = LogGroupBuilder::with_capacity(1024);
    b.push(&line(b"one", 1, 0));
    let first = b.finish_in_place(&GroupMeta {
        topic: Some("a"),
        ..GroupMeta::default()
    });
    let first = decode_log_group(first).unwrap();
    assert_eq!(first.topic.as_deref(), Some("a"));
    // Finishing again replaces the meta, not adds to it.
    let again = decode_log_group(b.finish_in_place(&GroupMeta::default())).unwrap();
    assert_eq!(again.topic, None);
    assert_eq!(again.logs, first.logs);
    // Pushing after a finish drops the old meta.
    b.push(&line(b"two", 2, 0));
    let bytes = b.finish_in_place(&GroupMeta {
        source: Some("s"),
        ..GroupMeta::default()
    });
    let g = decode_log_group(bytes).unwrap();
    assert_eq!(
        (g.logs.len(), g.topic, g.source.as_deref()),
        (2, None, Some("s"))
    );
    b.clear();
    assert!(b.is_empty());
    assert_eq!(b.encoded_len(), 0);
    assert!(b.finish_in_place(&GroupMeta::default()).is_empty());
}

#[test]
fn large_values_use_multibyte_lengths() {
    let big = vec![b'x'; 300_000];
    let ev = line(&big, 1, 0);
    let mut b = LogGroupBuilder::new();
    b.push(&ev);
    assert_eq!(b.encoded_len(), encoded_log_len(&ev));
    let g = decode_log_group(&b.finish(&GroupMeta::default())).unwrap();
    assert_eq!(g.logs[0].contents[0].1.len(), 300_000);
}

#[test]
fn varint_len_matches_put_varint() {
    for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert_eq!(buf.len(), varint_len(v), "{v}");
        let mut r = Reader::new(&buf, 0, "t");
        assert_eq!(r.varint().unwrap(), v);
    }
}

#[test]
fn skips_unknown_fields_like_loongcollectors_values() {
    // A Log with field 3 (`repeated string values`), a varint field 9, a
    // fixed64 field 10 and a fixed32 field 11; a group with field 7.
    let mut log = vec![0x08, 5]; // Time = 5
    log.extend([0x1a, 3, b'a', b'b', b'c']); // values = "abc"
    log.extend([0x48, 0x96, 0x01]); // field 9 varint
    log.extend([0x51, 1, 2, 3, 4, 5, 6, 7, 8]); // field 10 fixed64
    log.extend([0x5d, 1, 2, 3, 4]); // field 11 fixed32
    log.extend([0x12, 6, 0x0a, 1, b'k', 0x12, 1, b'v']); // Contents
    let mut group = vec![0x0a, log.len() as u8];
    group.extend(&log);
    group.extend([0x3a, 2, b'z', b'z']); // field 7
    group.extend([0x12, 3, b'c', b'a', b't']); // Category
    let g = decode_log_group(&group).unwrap();
    assert_eq!(g.category.as_deref(), Some("cat"));
    assert_eq!(
        g.logs,
        vec![Log {
            time: 5,
            time_ns: None,
            contents: kv(&[("k", "v")]),
        }]
    );
}

#[test]
fn decodes_log_group_lists() {
    let mut list = Vec::new();
    for topic in ["a", "b"] {
        let mut b = LogGroupBuilder::new();
        b.push(&line(topic.as_bytes(), 1, 0));
        let g = b.finish(&GroupMeta {
            topic: Some(topic),
            ..GroupMeta::default()
        });
        list.push(0x0a);
        put_varint(&mut list, g.len() as u64);
        list.extend(g);
    }
    let groups = decode_log_group_list(&list).unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].topic.as_deref(), Some("b"));
    assert_eq!(groups[1].logs[0].contents, kv(&[("content", "b")]));
}

fn err(bytes: &[u8]) -> DecodeError {
    decode_log_group(bytes).unwrap_err()
}

#[test]
fn truncated_varint_names_its_offset() {
    // Logs{ Time = <truncated varint> }
    let e = err(&[0x0a, 2, 0x08, 0x80]);
    assert_eq!((e.offset, &e.kind), (3, &DecodeErrorKind::TruncatedVarint));
    assert_eq!(e.message, "Log");
    assert!(e.to_string().contains("at byte 3"), "{e}");
    // A truncated key at the top.
    let e = err(&[0x8a]);
    assert_eq!((e.offset, &e.kind), (0, &DecodeErrorKind::TruncatedVarint));
}

#[test]
fn overlong_varint_is_refused() {
    let mut b = vec![0x38]; // field 7, varint: skipped
    b.extend([0xff; 11]);
    let e = err(&b);
    assert_eq!((e.offset, &e.kind), (1, &DecodeErrorKind::VarintTooLong));
}

#[test]
fn length_past_end_names_its_offset() {
    let e = err(&[0x1a, 0x05, b'a', b'b']);
    assert_eq!(e.offset, 1);
    assert_eq!(
        e.kind,
        DecodeErrorKind::LengthPastEnd {
            declared: 5,
            remaining: 2
        }
    );
    // Nested: a Content that claims more than its Log holds.
    let e = err(&[0x0a, 6, 0x08, 1, 0x12, 9, 0x0a, 0]);
    assert_eq!((e.offset, e.message), (5, "Log"));
}

#[test]
fn huge_declared_length_is_an_error_not_an_allocation() {
    let mut b = vec![0x0a];
    put_varint(&mut b, u64::MAX);
    let e = err(&b);
    assert_eq!(e.offset, 1);
    assert!(matches!(
        e.kind,
        DecodeErrorKind::LengthPastEnd {
            declared: u64::MAX,
            ..
        }
    ));
    let mut b = vec![0x1a];
    put_varint(&mut b, 1 << 40);
    assert!(matches!(
        err(&b).kind,
        DecodeErrorKind::LengthPastEnd { .. }
    ));
}

#[test]
fn wrong_wire_type_names_field_and_offset() {
    // Topic (3) as a varint.
    let e = err(&[0x0a, 2, 0x08, 1, 0x18, 1]);
    assert_eq!(e.offset, 4);
    assert_eq!(
        e.kind,
        DecodeErrorKind::WrongWireType {
            field: 3,
            wire_type: 0
        }
    );
    // Log.Time as length-delimited.
    let e = err(&[0x0a, 3, 0x0a, 1, b'x']);
    assert_eq!(
        (e.offset, e.kind),
        (
            2,
            DecodeErrorKind::WrongWireType {
                field: 1,
                wire_type: 2
            }
        )
    );
    // Time_ns as a varint.
    let e = err(&[0x0a, 4, 0x08, 1, 0x20, 1]);
    assert_eq!(e.offset, 4);
}

#[test]
fn groups_field_zero_and_truncated_fixed_are_errors() {
    assert_eq!(err(&[0x3b]).kind, DecodeErrorKind::UnsupportedWireType(3));
    assert_eq!(err(&[0x00]).kind, DecodeErrorKind::FieldZero);
    let e = err(&[0x0a, 4, 0x08, 1, 0x25, 1]);
    assert_eq!((e.offset, e.kind), (5, DecodeErrorKind::TruncatedFixed));
}

#[test]
fn missing_required_fields_are_errors() {
    // A Log without Time.
    let e = err(&[0x0a, 0]);
    assert_eq!(
        (e.offset, e.kind),
        (2, DecodeErrorKind::MissingField("Time"))
    );
    // A Content without Value.
    let e = err(&[0x0a, 7, 0x08, 1, 0x12, 3, 0x0a, 1, b'k']);
    assert_eq!(e.kind, DecodeErrorKind::MissingField("Value"));
    assert_eq!(e.offset, 6);
}

#[test]
fn every_truncation_of_a_valid_group_is_an_error_or_a_prefix() {
    let mut b = LogGroupBuilder::new();
    for i in 0..5 {
        b.push(&line(format!("line {i}").as_bytes(), 1_700_000_000 + i, 9));
    }
    let bytes = b.finish(&GroupMeta {
        topic: Some("t"),
        tags: &[("a", "b")],
        ..GroupMeta::default()
    });
    let full = decode_log_group(&bytes).unwrap();
    for cut in 0..bytes.len() {
        if let Ok(g) = decode_log_group(&bytes[..cut]) {
            // Cuts on a field boundary decode to a prefix.
            assert!(g.logs.len() <= full.logs.len());
            assert_eq!(g.logs[..], full.logs[..g.logs.len()]);
        }
    }
}

// --- Cross-checks with the official crate --------------------------------

use aliyun_log_sdk_protobuf as official;

#[test]
fn official_crate_decodes_our_bytes() {
    let mut b = LogGroupBuilder::new();
    b.push(&line(b"hello world", 1_690_254_376, 123_456_789));
    b.push(&parsed(&[("k1", b"v1"), ("k2", b"")], 1_690_254_377));
    let bytes = b.finish(&GroupMeta {
        topic: Some("mytopic"),
        source: Some("127.0.0.1"),
        machine_uuid: None,
        tags: &[("tagKey", "tagValue")],
    });
    // The official crate decodes lists only: wrap as LogGroupList{1: group}.
    let mut list = vec![0x0a];
    put_varint(&mut list, bytes.len() as u64);
    list.extend(&bytes);
    let theirs = official::LogGroupList::decode(&list).unwrap();
    let g = &theirs.log_groups()[0];
    assert_eq!(g.topic().as_deref(), Some("mytopic"));
    assert_eq!(g.source().as_deref(), Some("127.0.0.1"));
    assert_eq!(g.log_tags()[0].key(), "tagKey");
    assert_eq!(g.log_tags()[0].value(), "tagValue");
    assert_eq!(g.logs().len(), 2);
    let l0 = &g.logs()[0];
    assert_eq!(
        (*l0.time(), *l0.time_ns()),
        (1_690_254_376, Some(123_456_789))
    );
    assert_eq!(l0.contents()[0].key(), "content");
    assert_eq!(l0.contents()[0].value(), "hello world");
    let l1 = &g.logs()[1];
    let pairs: Vec<_> = l1
        .contents()
        .iter()
        .map(|c| (c.key().as_str(), c.value().as_str()))
        .collect();
    assert_eq!(pairs, [("k1", "v1"), ("k2", "")]);
}

#[test]
fn we_decode_the_official_crates_bytes() {
    let mut g = official::LogGroup::new();
    g.set_topic("mytopic").set_source("127.0.0.1");
    for i in 0..3u32 {
        let mut log = official::Log::from_unixtime(1_690_254_376 + i);
        log.add_content_kv("key", format!("value {i}"))
            .add_content_kv("hello", "world");
        if i == 1 {
            log.set_time_ns(42);
        }
        g.add_log(log);
    }
    g.add_log_tag_kv("tagKey", "tagValue");
    let ours = decode_log_group(&g.encode().unwrap()).unwrap();
    assert_eq!(ours.topic.as_deref(), Some("mytopic"));
    assert_eq!(ours.source.as_deref(), Some("127.0.0.1"));
    assert_eq!(ours.tags, kv(&[("tagKey", "tagValue")]));
    assert_eq!(ours.logs.len(), 3);
    assert_eq!(ours.logs[1].time, 1_690_254_377);
    assert_eq!(ours.logs[1].time_ns, Some(42));
    assert_eq!(ours.logs[0].time_ns, None);
    assert_eq!(
        ours.logs[2].contents,
        kv(&[("key", "value 2"), ("hello", "world")])
    );
}

fn arb_log() -> impl Strategy<Value = Log> {
    (
        any::<u32>(),
        proptest::option::of(0u32..1_000_000_000),
        proptest::collection::vec((".{0,8}", ".{0,40}"), 0..4),
    )
        .prop_map(|(time, time_ns, contents)| Log {
            time,
            time_ns,
            contents,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Ours → official → compare, and official → ours → compare.
    #[test]
    fn agrees_with_the_official_crate_both_ways(
        logs in proptest::collection::vec(arb_log(), 0..6),
        topic in proptest::option::of(".{0,10}"),
        tags in proptest::collection::vec((".{0,6}", ".{0,6}"), 0..3),
    ) {
        let mut b = LogGroupBuilder::new();
        for l in &logs {
            b.push_log(l);
        }
        let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let bytes = b.finish(&GroupMeta { topic: topic.as_deref(), tags: &tag_refs, ..GroupMeta::default() });

        let mut list = vec![0x0a];
        put_varint(&mut list, bytes.len() as u64);
        list.extend(&bytes);
        let theirs = official::LogGroupList::decode(&list).unwrap();
        let tg = &theirs.log_groups()[0];
        prop_assert_eq!(tg.topic(), &topic);
        let their_logs: Vec<Log> = tg.logs().iter().map(|l| Log {
            time: *l.time(),
            time_ns: *l.time_ns(),
            contents: l.contents().iter().map(|c| (c.key().clone(), c.value().clone())).collect(),
        }).collect();
        prop_assert_eq!(&their_logs, &logs);

        // Their encoding of the same group decodes to the same with ours.
        let mut og = official::LogGroup::new();
        if let Some(t) = &topic { og.set_topic(t.clone()); }
        for l in &logs {
            let mut ol = official::Log::from_unixtime(l.time);
            for (k, v) in &l.contents { ol.add_content_kv(k.clone(), v.clone()); }
            if let Some(ns) = l.time_ns { ol.set_time_ns(ns); }
            og.add_log(ol);
        }
        for (k, v) in &tags { og.add_log_tag_kv(k.clone(), v.clone()); }
        let ours = decode_log_group(&og.encode().unwrap()).unwrap();
        prop_assert_eq!(&ours.logs, &logs);
        prop_assert_eq!(&ours.topic, &topic);
        prop_assert_eq!(&ours.tags, &tags);
    }

    /// Arbitrary bytes never panic, and what decodes re-encodes to the same.
    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(g) = decode_log_group(&bytes) {
            let mut b = LogGroupBuilder::new();
            for l in &g.logs { b.push_log(l); }
            let again = decode_log_group(&b.finish(&GroupMeta::default())).unwrap();
            prop_assert_eq!(again.logs, g.logs);
        }
        let _ = decode_log_group_list(&bytes);
    }
}
