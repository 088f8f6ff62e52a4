//! Any bytes decode to a `LogGroup` (or `LogGroupList`) or to an error:
//! never a panic. What decodes re-encodes, through the builder, to bytes
//! that decode to the same logs and group fields.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::sls::{decode_log_group, decode_log_group_list, GroupMeta, LogGroupBuilder};

fuzz_target!(|data: &[u8]| {
    let _ = decode_log_group_list(data);
    let Ok(group) = decode_log_group(data) else {
        return;
    };
    let mut b = LogGroupBuilder::new();
    for log in &group.logs {
        b.push_log(log);
    }
    let tags: Vec<(&str, &str)> = group
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let meta = GroupMeta {
        topic: group.topic.as_deref(),
        source: group.source.as_deref(),
        machine_uuid: group.machine_uuid.as_deref(),
        tags: &tags,
    };
    assert_eq!(b.encoded_len() + meta.encoded_len(), {
        let mut probe = b.clone();
        probe.finish_in_place(&meta).len()
    });
    let again = decode_log_group(&b.finish(&meta)).expect("our own encoding decodes");
    assert_eq!(again.logs, group.logs);
    assert_eq!(again.topic, group.topic);
    assert_eq!(again.source, group.source);
    assert_eq!(again.machine_uuid, group.machine_uuid);
    assert_eq!(again.tags, group.tags);
});
