//! Batching events into LogGroups: one open group per source file (and
//! shard hash key), sealed at LoongCollector's limits.
//!
//! No I/O here: [`Batcher::push`] and [`Batcher::due`] return sealed
//! groups; the sink compresses and sends them. Each group holds a share
//! ([`AckToken::share`]) of the acknowledgement of every batch it has events
//! of, so a batch split over two groups is acknowledged when both are
//! delivered. Shares fail safe: one that is dropped without
//! [`Acks::delivered`] (a panic, a forgotten path) fails its batch, so the
//! checkpoint never moves past lines that reached neither SLS nor the disk
//! buffer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use logtail_core::sls::{encoded_log_len, GroupMeta, LogGroupBuilder};
use logtail_core::{AckToken, Event, EventBatch, SourceTags};

use super::options::BatchLimits;

/// The acknowledgements a sealed group carries: one share of each batch
/// it has events of.
///
/// Only [`Acks::delivered`] reports the batches delivered; dropping the
/// value (or [`Acks::failed`]) fails them, and they are read again after a
/// restart.
#[derive(Debug, Default)]
pub struct Acks(pub(crate) Vec<AckToken>);

impl Acks {
    /// The group reached its destination (SLS, or the disk buffer).
    pub fn delivered(self) {
        for t in self.0 {
            t.delivered();
        }
    }

    /// The group is given up: its batches will be read again.
    pub fn failed(self) {
        for t in self.0 {
            t.failed();
        }
    }

    /// Number of batches involved.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no batch is involved.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A finished LogGroup (uncompressed protobuf) with its acknowledgements.
#[derive(Debug)]
pub struct SealedGroup {
    /// The encoded LogGroup.
    pub raw: Vec<u8>,
    /// Events in it.
    pub events: u32,
    /// `ShardHashKeys` route, when configured.
    pub hash_key: Option<String>,
    /// When its first event was added.
    pub created: SystemTime,
    /// What to acknowledge once it is safe.
    pub acks: Acks,
}

/// Host facts put into every group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// `Source` of the LogGroup: the host's IP.
    pub ip: String,
    /// `__hostname__` tag.
    pub hostname: String,
}

impl HostInfo {
    /// This host: its name and IP as [`crate::host`] finds them (the
    /// address the host name resolves to, else the first non-loopback
    /// interface), else 127.0.0.1.
    pub fn detect() -> Self {
        use crate::host;
        HostInfo {
            ip: host::host_ip(None)
                .map(|a| a.to_string())
                .unwrap_or_else(|| "127.0.0.1".into()),
            hostname: host::hostname().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    path: PathBuf,
    hash_key: Option<String>,
}

struct OpenGroup {
    builder: LogGroupBuilder,
    acks: Vec<AckToken>,
    /// The [`Batcher::pushes`] number of the last batch whose share is in
    /// `acks` (0: none yet).
    last_push: u64,
    opened: Instant,
    created: SystemTime,
    source: Arc<SourceTags>,
}

impl OpenGroup {
    fn new(now: Instant, source: &Arc<SourceTags>, buf: Option<Vec<u8>>) -> Self {
        OpenGroup {
            builder: buf.map_or_else(LogGroupBuilder::new, LogGroupBuilder::with_buffer),
            acks: Vec::new(),
            last_push: 0,
            opened: now,
            created: SystemTime::now(),
            source: Arc::clone(source),
        }
    }
}

/// Open groups, keyed by source and hash key.
pub struct Batcher {
    limits: BatchLimits,
    topic: Option<String>,
    host: HostInfo,
    hash_keys: Vec<String>,
    open: HashMap<GroupKey, OpenGroup>,
    /// Per source: the `__pack_id__` prefix and the next sequence number.
    packs: HashMap<PathBuf, (u64, u64, Instant)>,
    /// Buffers of sent groups, for the next groups (see [`Batcher::recycle`]).
    pool: Vec<Vec<u8>>,
    /// Batches pushed so far (numbers each push, from 1).
    pushes: u64,
}

/// Buffers kept for reuse: a file read from behind fills one group after
/// another; many files each keep a small open group.
const POOL_MAX: usize = 4;

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("open", &self.open.len())
            .finish()
    }
}

/// FNV-1a of the parts, each followed by a 0xff byte, for `__pack_id__`
/// prefixes (stable, no need for strength).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h = logtail_core::hash::Fnv1a64::new();
    for p in parts {
        h.write(p);
        h.write_u8(0xff);
    }
    h.finish()
}

impl Batcher {
    /// A batcher with these limits, topic, host facts and shard hash keys.
    pub fn new(
        limits: BatchLimits,
        topic: Option<String>,
        host: HostInfo,
        hash_keys: Vec<String>,
    ) -> Self {
        Batcher {
            limits,
            topic,
            host,
            hash_keys,
            open: HashMap::new(),
            packs: HashMap::new(),
            pool: Vec::new(),
            pushes: 0,
        }
    }

    /// Gives back the buffer of a group that was sent (compressed): the
    /// next group is built in it.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        // Not the rare giant (up to the 8 MiB hard limit) for ever.
        if self.pool.len() < POOL_MAX && buf.capacity() <= 2 * self.limits.max_bytes.max(1 << 20) {
            self.pool.push(buf);
        }
    }

    /// Events waiting in open groups.
    pub fn pending_events(&self) -> usize {
        self.open.values().map(|g| g.builder.len()).sum()
    }

    /// The route of an event: MD5 (hex) of the `ShardHashKeys` values
    /// joined by `_`, as LoongCollector computes it.
    fn hash_key(&self, event: &Event) -> Option<String> {
        use md5::Digest;
        if self.hash_keys.is_empty() {
            return None;
        }
        let mut h = md5::Md5::new();
        for (i, k) in self.hash_keys.iter().enumerate() {
            if i > 0 {
                h.update(b"_");
            }
            if let Some((_, v)) = event.contents().find(|(key, _)| key == k) {
                h.update(v);
            }
        }
        Some(logtail_core::sls::sign::hex(&h.finalize(), false))
    }

    /// Adds a batch's events; returns the groups that filled up.
    ///
    /// The open group of a key is taken out of the map for a run of events
    /// with that key (the whole batch without `ShardHashKeys`), so the map
    /// is touched per run, not per event.
    pub fn push(&mut self, batch: EventBatch, now: Instant) -> Vec<SealedGroup> {
        let EventBatch {
            source,
            events,
            ack,
            ..
        } = batch;
        self.pushes += 1;
        let push = self.pushes;
        let mut sealed = Vec::new();
        let mut current: Option<(GroupKey, OpenGroup)> = None;
        for ev in &events {
            let hash_key = self.hash_key(ev);
            if current.as_ref().is_none_or(|(k, _)| k.hash_key != hash_key) {
                if let Some((k, g)) = current.take() {
                    self.open.insert(k, g);
                }
                let key = GroupKey {
                    path: source.path.clone(),
                    hash_key,
                };
                let g = match self.open.remove(&key) {
                    Some(g) => g,
                    None => OpenGroup::new(now, &source, self.pool.pop()),
                };
                current = Some((key, g));
            }
            let Some((key, g)) = current.as_mut() else {
                continue;
            };
            // Never above the hard limit: seal first if this would cross it.
            if !g.builder.is_empty()
                && g.builder.encoded_len() + encoded_log_len(ev) > self.limits.hard_max_bytes
            {
                let full = std::mem::replace(g, OpenGroup::new(now, &source, self.pool.pop()));
                let key = key.clone();
                sealed.extend(self.finish(&key, full));
            }
            let Some((key, g)) = current.as_mut() else {
                continue;
            };
            g.builder.push(ev);
            if g.last_push != push {
                g.last_push = push;
                g.acks.push(ack.share());
            }
            if g.builder.encoded_len() >= self.limits.max_bytes
                || g.builder.len() >= self.limits.max_events
            {
                let full = std::mem::replace(g, OpenGroup::new(now, &source, self.pool.pop()));
                let key = key.clone();
                sealed.extend(self.finish(&key, full));
            }
        }
        if let Some((k, g)) = current {
            if !g.builder.is_empty() {
                self.open.insert(k, g);
            }
        }
        // Every event is in a group holding a share of the batch: this
        // holder is done (an empty batch is delivered at once). A panic
        // before here drops `ack`, failing the batch.
        ack.delivered();
        sealed
    }

    /// Groups whose first event waited `max_age` (or all with `all`).
    pub fn due(&mut self, now: Instant, all: bool) -> Vec<SealedGroup> {
        let keys: Vec<GroupKey> = self
            .open
            .iter()
            .filter(|(_, g)| all || now.saturating_duration_since(g.opened) >= self.limits.max_age)
            .map(|(k, _)| k.clone())
            .collect();
        let out = keys.iter().filter_map(|k| self.seal(k)).collect();
        // Forget pack sequences of sources idle for an hour (rotated away).
        if self.packs.len() > 1024 {
            self.packs.retain(|_, (_, _, used)| {
                now.saturating_duration_since(*used) < std::time::Duration::from_secs(3600)
            });
        }
        out
    }

    fn seal(&mut self, key: &GroupKey) -> Option<SealedGroup> {
        let g = self.open.remove(key)?;
        self.finish(key, g)
    }

    fn finish(&mut self, key: &GroupKey, g: OpenGroup) -> Option<SealedGroup> {
        if g.builder.is_empty() {
            return None;
        }
        let now = Instant::now();
        let host = &self.host;
        let (prefix, seq, used) = self.packs.entry(key.path.clone()).or_insert_with(|| {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let prefix = fnv(&[
                host.hostname.as_bytes(),
                g.source.path.as_os_str().as_encoded_bytes(),
                &nanos.to_le_bytes(),
            ]);
            (prefix, 0, now)
        });
        let pack_id = format!("{:016X}-{:X}", prefix, seq);
        *seq += 1;
        *used = now;
        let path = g.source.path.to_string_lossy();
        let tags: [(&str, &str); 3] = [
            ("__hostname__", &host.hostname),
            ("__path__", &path),
            ("__pack_id__", &pack_id),
        ];
        let events = g.builder.len() as u32;
        let raw = g.builder.finish(&GroupMeta {
            topic: self.topic.as_deref(),
            source: Some(&host.ip),
            machine_uuid: None,
            tags: &tags,
        });
        Some(SealedGroup {
            raw,
            events,
            hash_key: key.hash_key.clone(),
            created: g.created,
            acks: Acks(g.acks),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use crossbeam_channel::Receiver;
    use logtail_core::ack::{Ack, BatchId};
    use logtail_core::Timestamp;

    /// A batch of `events` lines of one file, acknowledged on `tx` (also
    /// used by the sink's tests).
    pub(crate) fn batch(
        seq: u64,
        events: usize,
        tx: &crossbeam_channel::Sender<Ack>,
    ) -> EventBatch {
        EventBatch {
            source: Arc::new(SourceTags {
                path: "/var/log/a.log".into(),
                dev: 1,
                inode: 2,
                config: "c".into(),
            }),
            bytes: 0,
            ack: AckToken::new(BatchId { source: 1, seq }, tx.clone()),
            events: (0..events)
                .map(|i| {
                    Event::line(
                        Bytes::from(format!("line {i}")),
                        i as u64 * 10,
                        Timestamp {
                            secs: 1_700_000_000,
                            nanos: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    fn batcher(max_events: usize) -> Batcher {
        Batcher::new(
            BatchLimits {
                max_events,
                ..BatchLimits::default()
            },
            None,
            HostInfo::default(),
            Vec::new(),
        )
    }

    fn acks(rx: &Receiver<Ack>) -> Vec<(u64, bool)> {
        rx.try_iter().map(|a| (a.id.seq, a.delivered)).collect()
    }

    #[test]
    fn a_batch_over_two_groups_is_delivered_when_both_are() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut b = batcher(4);
        // 6 events: one full group of 4, 2 left open.
        let mut sealed = b.push(batch(0, 6, &tx), Instant::now());
        assert_eq!(sealed.len(), 1);
        let first = sealed.remove(0);
        assert_eq!((first.events, first.acks.len()), (4, 1));
        first.acks.delivered();
        assert!(acks(&rx).is_empty(), "the open group still holds the batch");
        let rest = b.due(Instant::now(), true);
        assert_eq!(rest.len(), 1);
        for g in rest {
            g.acks.delivered();
        }
        assert_eq!(acks(&rx), vec![(0, true)]);
    }

    #[test]
    fn a_dropped_group_fails_its_batches() {
        // The old AckShare reported a dropped group's batches delivered.
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut b = batcher(100);
        assert!(b.push(batch(0, 3, &tx), Instant::now()).is_empty());
        assert!(b.push(batch(1, 3, &tx), Instant::now()).is_empty());
        let groups = b.due(Instant::now(), true);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].acks.len(), 2);
        drop(groups);
        let mut got = acks(&rx);
        got.sort();
        assert_eq!(got, vec![(0, false), (1, false)]);
    }

    #[test]
    fn one_failed_group_fails_a_batch_the_other_delivered() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut b = batcher(2);
        let sealed = b.push(batch(7, 4, &tx), Instant::now());
        assert_eq!(sealed.len(), 2);
        let [a, b]: [SealedGroup; 2] = sealed.try_into().unwrap();
        a.acks.delivered();
        assert!(acks(&rx).is_empty());
        b.acks.failed();
        assert_eq!(acks(&rx), vec![(7, false)]);
    }

    #[test]
    fn a_dropped_batcher_fails_what_it_holds_and_empty_batches_deliver() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut b = batcher(100);
        assert!(b.push(batch(0, 0, &tx), Instant::now()).is_empty());
        assert_eq!(acks(&rx), vec![(0, true)], "nothing to send: delivered");
        assert!(b.push(batch(1, 2, &tx), Instant::now()).is_empty());
        drop(b);
        assert_eq!(acks(&rx), vec![(1, false)]);
    }

    #[test]
    fn pack_id_prefix_hash_is_unchanged() {
        // FNV-1a 64 of "10.0.0.1\xff1700000000\xff".
        assert_eq!(fnv(&[b"10.0.0.1", b"1700000000"]), 0x1cc4_30e4_fd9f_0ceb);
        assert_eq!(fnv(&[]), logtail_core::hash::FNV1A64_OFFSET);
    }
}
