//! The rotation detector's decisions, without I/O.
//!
//! [`decide`] says what a file that no reader has is, from what the input
//! observed: its size and head, the streams being read, the streams retired
//! by a truncation, the checkpoint and what another config handed over.
//! [`FileInput`](super::FileInput) gathers those observations, applies the
//! decision and does the I/O; the rules themselves are here, tested without
//! a file system. The README's rotation table lists the cases.

use std::time::{Duration, Instant};

use super::claims::Handover;
use super::fingerprint::{FileId, Signature, SIGNATURE_BYTES};

/// A file no reader has, as just opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Newcomer<'a> {
    /// Its size now.
    pub(crate) size: u64,
    /// Its first (up to [`SIGNATURE_BYTES`]) bytes.
    pub(crate) head: &'a [u8],
    /// [`prefix_hashes`](super::fingerprint::prefix_hashes) of `head`.
    pub(crate) hashes: &'a [u64],
    /// A FIFO or device: no size, no copies.
    pub(crate) is_stream: bool,
}

/// A stream being read, as the decisions see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live<'a> {
    /// The file it is read from.
    pub(crate) id: FileId,
    /// The signature of the head it started with.
    pub(crate) signature: Signature,
    /// Those bytes.
    pub(crate) head: &'a [u8],
    /// How far it was read.
    pub(crate) read_offset: u64,
    /// A copy outside the patterns, read only for a truncated file's rest:
    /// never the original of anything.
    pub(crate) recovery: bool,
}

/// What the file system says of a live file now; asked only for the live
/// files whose full head a newcomer shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveFile {
    /// Its size.
    pub(crate) size: u64,
    /// Shorter than the read offset, or its head rewritten: truncated,
    /// though its reader has not seen it yet.
    pub(crate) truncated: bool,
}

/// A stream retired by a truncation, waiting for its copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetiredView<'a> {
    /// Its source number.
    pub(crate) source: u64,
    /// The signature of its head.
    pub(crate) signature: Signature,
    /// Its head bytes (empty for a stream retired from a checkpoint).
    pub(crate) head: &'a [u8],
    /// How far it was read.
    pub(crate) read_offset: u64,
}

/// The checkpoint entry of the newcomer's (device, inode).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointView {
    /// The head's signature when it was written.
    pub(crate) signature: Signature,
    /// The acknowledged offset.
    pub(crate) offset: u64,
    /// Whether it was written for the newcomer's path.
    pub(crate) same_path: bool,
}

/// What else the decisions depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Now, from the input's clock.
    pub(crate) now: Instant,
    /// `copy_wait`: how long a possible copy must stay unchanged.
    pub(crate) copy_wait: Duration,
    /// The streams being read.
    pub(crate) live: &'a [Live<'a>],
    /// The streams retired by a truncation.
    pub(crate) retired: &'a [RetiredView<'a>],
    /// Our checkpoint of the newcomer's inode.
    pub(crate) checkpoint: Option<CheckpointView>,
    /// What another config says of it.
    pub(crate) handover: Handover,
    /// Present at start-up (first scan): a first sight starts `TailSizeKB`
    /// before the end rather than at 0.
    pub(crate) present_at_start: bool,
}

/// The state of a newcomer held back as a possible copy, kept between
/// scans by the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    /// When it was first held.
    pub(crate) first: Instant,
    /// Its size when last looked at.
    pub(crate) size: u64,
    /// When `size` last changed.
    pub(crate) changed: Instant,
    /// Since when the original's reader has read at least `size` bytes.
    pub(crate) caught_up: Option<Instant>,
}

/// Where a file is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At this offset.
    At(u64),
    /// At its end: everything in it was read already.
    End,
    /// `TailSizeKB` before its end, at a line start (the caller looks).
    Tail,
    /// From its first byte.
    Zero,
}

/// Why a file is read from where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The copy of the truncated stream `retired`, ending before what was
    /// read of it: nothing in it is unread. The stream is done with.
    CopyAlreadyRead {
        /// The retired stream's source.
        retired: u64,
    },
    /// It starts and ends like a file being read that was never
    /// truncated: a duplicate (`cp app.log backup.log`) whose bytes were
    /// collected from the original.
    Duplicate,
    /// Another config gave it up there.
    HandedOver,
    /// Another config gave it up, but it is shorter now: truncated.
    HandedOverTruncated,
    /// Our checkpoint.
    Checkpoint,
    /// Checkpointed at this path, but truncated or rewritten since: the
    /// checkpointed stream is retired, for its copy to continue.
    Rewritten,
    /// Checkpointed at another path with another head: a new file on a
    /// reused inode (the checkpointed stream is retired too).
    InodeReused,
    /// Nothing is known of it.
    New,
}

/// What a newcomer is; see [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The copy of the truncated stream `retired`: continue it here.
    Adopt {
        /// The retired stream's source.
        retired: u64,
    },
    /// Maybe a copy, or another config still reads it: look again at a
    /// later scan (`rescan`: at the next poll, not the next periodic scan).
    Hold {
        /// Look again soon.
        rescan: bool,
    },
    /// Read it from `start`.
    Open {
        /// Where.
        start: Start,
        /// Why there.
        why: Why,
    },
}

/// Whether a file with head `hashes` and `size` bytes continues a stream
/// with signature `sig` read up to `offset`: it starts with the stream's
/// head and holds everything that was read.
pub(crate) fn continues(sig: Signature, offset: u64, hashes: &[u64], size: u64) -> bool {
    sig.len > 0 && sig.is_prefix_of_hashed(hashes) && size >= offset
}

/// What the newcomer `n` is, in this order:
///
/// 1. the copy of a truncated stream that holds everything read of it:
///    [`Decision::Adopt`];
/// 2. unless a checkpoint of it matches its head, a possible copy of a live
///    or truncated file ([`copy_verdict`]): held, or opened at its end;
/// 3. handed over by another config: from where it stopped (or held while
///    the other config reads it);
/// 4. our checkpoint, if the head still matches and the file is not
///    shorter; else truncated since (same path: from 0) or a reused inode;
/// 5. first sight: `TailSizeKB` before the end if present at start-up,
///    else from 0.
///
/// `held` is the newcomer's hold state (created, updated or cleared here),
/// `probe` asks the file system about a live file, `same_tail` whether the
/// newcomer's last bytes equal a live file's at the same offsets.
pub(crate) fn decide(
    n: &Newcomer<'_>,
    cx: &Context<'_>,
    held: &mut Option<Held>,
    probe: &mut dyn FnMut(FileId) -> LiveFile,
    same_tail: &mut dyn FnMut(FileId) -> bool,
) -> Decision {
    // 1.
    if let Some(r) = cx
        .retired
        .iter()
        .find(|r| continues(r.signature, r.read_offset, n.hashes, n.size))
    {
        *held = None;
        return Decision::Adopt { retired: r.source };
    }
    // 2.
    let known = cx
        .checkpoint
        .is_some_and(|p| p.signature.is_prefix_of(n.head));
    let mut already = None;
    if !known {
        match copy_verdict(n, cx, held, probe, same_tail) {
            Verdict::Hold { rescan } => return Decision::Hold { rescan },
            Verdict::NotACopy => {}
            Verdict::AlreadyRead(why) => already = Some(why),
        }
    }
    *held = None;
    // 3.
    match cx.handover {
        Handover::Wait => return Decision::Hold { rescan: false },
        Handover::From { offset, signature } if signature.is_prefix_of(n.head) => {
            return Decision::Open {
                start: if offset <= n.size {
                    Start::At(offset)
                } else {
                    Start::Zero
                },
                why: if offset <= n.size {
                    Why::HandedOver
                } else {
                    Why::HandedOverTruncated
                },
            };
        }
        Handover::From { .. } | Handover::None => {}
    }
    // 4.
    let mut reused = false;
    if let Some(p) = cx.checkpoint {
        if p.signature.is_prefix_of(n.head) && n.size >= p.offset {
            return Decision::Open {
                start: Start::At(p.offset),
                why: Why::Checkpoint,
            };
        }
        if p.same_path {
            return Decision::Open {
                start: Start::Zero,
                why: Why::Rewritten,
            };
        }
        reused = true;
    }
    // 5.
    if let Some(why) = already {
        return Decision::Open {
            start: Start::End,
            why,
        };
    }
    Decision::Open {
        start: if cx.present_at_start && !n.is_stream {
            Start::Tail
        } else {
            Start::Zero
        },
        why: if reused { Why::InodeReused } else { Why::New },
    }
}

/// What [`copy_verdict`] found.
enum Verdict {
    NotACopy,
    Hold { rescan: bool },
    AlreadyRead(Why),
}

/// Whether the newcomer may be a copy.
///
/// A copytruncate copy appears before its original is truncated, and the
/// truncation is only seen when the original's reader gets there, however
/// far behind it is. So a newcomer whose full head equals a live file's,
/// and which is not larger than it, is held until either the truncation
/// comes (then it is adopted), or the original's reader has read past the
/// newcomer's length and neither moved for `copy_wait`: then it is a
/// duplicate whose bytes were collected from the original, read from its
/// end, if its last bytes equal the original's; otherwise a file of its own.
///
/// Shorter heads cannot tell: a newcomer that is a proper prefix of a
/// stream's head (a copy being written) is held while it grows. A copy of
/// a truncated stream that is shorter than what was read is held until it
/// stops growing, then opened at its end.
fn copy_verdict(
    n: &Newcomer<'_>,
    cx: &Context<'_>,
    held: &mut Option<Held>,
    probe: &mut dyn FnMut(FileId) -> LiveFile,
    same_tail: &mut dyn FnMut(FileId) -> bool,
) -> Verdict {
    if n.is_stream {
        return Verdict::NotACopy;
    }
    let proper_prefix = |head: &[u8]| n.head.len() < head.len() && head.starts_with(n.head);
    let same_head = |s: Signature| s.len > 0 && s.is_prefix_of_hashed(n.hashes);
    // The live file this may be a copy of (the least read, if several).
    let mut original: Option<(FileId, u64)> = None;
    let mut partial_match = false;
    for l in cx.live.iter().filter(|l| !l.recovery) {
        let full = l.signature.is_complete() && same_head(l.signature);
        if !full {
            partial_match |= l.read_offset > 0 && (same_head(l.signature) || proper_prefix(l.head));
            continue;
        }
        let f = probe(l.id);
        // A copy is never larger than its original before the truncation.
        if n.size > f.size && !f.truncated {
            continue;
        }
        // Truncated before anything of it was read: a copy holds only
        // unread bytes, and the reader will never read them.
        if f.truncated && l.read_offset == 0 {
            continue;
        }
        if original.is_none_or(|(_, o)| l.read_offset < o) {
            original = Some((l.id, l.read_offset));
        }
    }
    let short_copy_of = cx
        .retired
        .iter()
        .find(|r| same_head(r.signature) && n.size < r.read_offset)
        .map(|r| r.source);
    partial_match |= cx.retired.iter().any(|r| proper_prefix(r.head));
    if original.is_none() && short_copy_of.is_none() && !partial_match {
        *held = None;
        return Verdict::NotACopy;
    }
    let now = cx.now;
    let h = held.get_or_insert(Held {
        first: now,
        size: n.size,
        changed: now,
        caught_up: None,
    });
    if h.size != n.size {
        h.size = n.size;
        h.changed = now;
        h.caught_up = None;
    }
    let wait = cx.copy_wait;
    let stable = now.duration_since(h.changed) >= wait;
    let hold = Verdict::Hold {
        rescan: now.duration_since(h.first) < wait,
    };
    if let Some((orig, offset)) = original {
        if offset >= n.size {
            h.caught_up.get_or_insert(now);
        } else {
            h.caught_up = None;
        }
        let settled = stable && h.caught_up.is_some_and(|t| now.duration_since(t) >= wait);
        if !settled {
            return hold;
        }
        // Never truncated. A duplicate only if it ends like the original
        // at the same offset (and is long enough to tell).
        return if n.head.len() >= SIGNATURE_BYTES && same_tail(orig) {
            Verdict::AlreadyRead(Why::Duplicate)
        } else {
            Verdict::NotACopy
        };
    }
    if let Some(source) = short_copy_of {
        return if stable {
            Verdict::AlreadyRead(Why::CopyAlreadyRead { retired: source })
        } else {
            hold
        };
    }
    // A copy being written grows; one that stopped is a file of its own.
    if stable {
        Verdict::NotACopy
    } else {
        hold
    }
}

#[cfg(test)]
mod tests {
    //! One test per row of the README's rotation table (and the cases
    //! around them), on observations alone.
    use super::*;
    use crate::file::fingerprint::prefix_hashes;

    const WAIT: Duration = Duration::from_secs(1);

    fn id(inode: u64) -> FileId {
        FileId { dev: 1, inode }
    }

    /// `n` bytes of a log whose lines are numbered from `first`.
    fn log(first: u64, n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = first;
        while v.len() < n {
            v.extend_from_slice(format!("{i:06} some log line text\n").as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn head_of(data: &[u8]) -> &[u8] {
        &data[..data.len().min(SIGNATURE_BYTES)]
    }

    struct World {
        t0: Instant,
        now: Instant,
        live: Vec<(FileId, Vec<u8>, u64, LiveFile)>,
        retired: Vec<(u64, Vec<u8>, u64)>,
        checkpoint: Option<CheckpointView>,
        handover: Handover,
        present_at_start: bool,
        same_tail: bool,
        held: Option<Held>,
    }

    impl World {
        fn new() -> World {
            let t0 = Instant::now();
            World {
                t0,
                now: t0,
                live: Vec::new(),
                retired: Vec::new(),
                checkpoint: None,
                handover: Handover::None,
                present_at_start: false,
                same_tail: true,
                held: None,
            }
        }

        /// A live stream on `inode` that started with `data`'s head,
        /// read to `offset`, its file now `size` bytes.
        fn live(&mut self, inode: u64, data: &[u8], offset: u64, size: u64) {
            let f = LiveFile {
                size,
                truncated: size < offset,
            };
            self.live
                .push((id(inode), head_of(data).to_vec(), offset, f));
        }

        fn retired(&mut self, source: u64, data: &[u8], offset: u64) {
            self.retired.push((source, head_of(data).to_vec(), offset));
        }

        fn at(&mut self, secs: f64) {
            self.now = self.t0 + Duration::from_secs_f64(secs);
        }

        fn decide(&mut self, data: &[u8]) -> Decision {
            let head = head_of(data);
            let hashes = prefix_hashes(head);
            let n = Newcomer {
                size: data.len() as u64,
                head,
                hashes: &hashes,
                is_stream: false,
            };
            let live: Vec<Live<'_>> = self
                .live
                .iter()
                .map(|(id, h, off, _)| Live {
                    id: *id,
                    signature: Signature::of(h),
                    head: h,
                    read_offset: *off,
                    recovery: false,
                })
                .collect();
            let retired: Vec<RetiredView<'_>> = self
                .retired
                .iter()
                .map(|(s, h, off)| RetiredView {
                    source: *s,
                    signature: Signature::of(h),
                    head: h,
                    read_offset: *off,
                })
                .collect();
            let cx = Context {
                now: self.now,
                copy_wait: WAIT,
                live: &live,
                retired: &retired,
                checkpoint: self.checkpoint,
                handover: self.handover,
                present_at_start: self.present_at_start,
            };
            let files: Vec<(FileId, LiveFile)> =
                self.live.iter().map(|(i, _, _, f)| (*i, *f)).collect();
            let mut probe = |i: FileId| {
                files
                    .iter()
                    .find(|(x, _)| *x == i)
                    .map(|(_, f)| *f)
                    .unwrap_or(LiveFile {
                        size: 0,
                        truncated: true,
                    })
            };
            let tail = self.same_tail;
            let mut same_tail = |_: FileId| tail;
            decide(&n, &cx, &mut self.held, &mut probe, &mut same_tail)
        }
    }

    fn open(start: Start, why: Why) -> Decision {
        Decision::Open { start, why }
    }

    #[test]
    fn rename_create_the_new_file_is_read_from_zero() {
        // The renamed file keeps its reader (same inode); the new one at
        // the old path is a newcomer with its own head.
        let mut w = World::new();
        w.live(1, &log(0, 5000), 5000, 5000);
        assert_eq!(w.decide(&log(100, 300)), open(Start::Zero, Why::New));
    }

    #[test]
    fn copytruncate_the_copy_continues_the_truncated_stream() {
        let mut w = World::new();
        let data = log(0, 8000);
        w.retired(7, &data, 5000);
        assert_eq!(w.decide(&data), Decision::Adopt { retired: 7 });
    }

    #[test]
    fn copytruncate_copy_seen_before_the_truncation_is_held_however_far_behind() {
        // A 40 MB burst the reader is far behind on, copied at full size.
        let mut w = World::new();
        let data = log(0, 40 << 20);
        w.live(1, &data, 1 << 20, 40 << 20);
        for secs in [0.0, 0.5, 5.0, 60.0, 600.0] {
            w.at(secs);
            assert_eq!(
                w.decide(&data),
                Decision::Hold { rescan: secs < 1.0 },
                "at {secs} s"
            );
        }
        // Then the truncation comes: the stream is retired, the copy adopted.
        w.live.clear();
        w.retired(3, &data, 30 << 20);
        w.at(601.0);
        assert_eq!(w.decide(&data), Decision::Adopt { retired: 3 });
        assert!(w.held.is_none());
    }

    #[test]
    fn truncated_original_not_yet_seen_by_its_reader_holds_the_copy() {
        let mut w = World::new();
        let data = log(0, 9000);
        // The original is already empty; its reader is at 4000.
        w.live(1, &data, 4000, 0);
        assert_eq!(w.decide(&data), Decision::Hold { rescan: true });
    }

    #[test]
    fn truncated_before_anything_was_read_the_copy_is_new() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 0, 0);
        assert_eq!(w.decide(&data), open(Start::Zero, Why::New));
    }

    #[test]
    fn deliberate_duplicate_is_opened_at_its_end_once_the_reader_passed_it() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 2000, 12_000);
        assert_eq!(w.decide(&data), Decision::Hold { rescan: true });
        // The reader passes the copy's length; copy_wait later it is
        // judged.
        w.live[0].2 = 12_000;
        w.at(2.0);
        assert_eq!(w.decide(&data), Decision::Hold { rescan: false });
        w.at(3.1);
        assert_eq!(w.decide(&data), open(Start::End, Why::Duplicate));
    }

    #[test]
    fn same_head_but_other_tail_is_a_file_of_its_own() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 12_000, 12_000);
        w.same_tail = false;
        assert!(matches!(w.decide(&data), Decision::Hold { .. }));
        w.at(1.5);
        assert_eq!(w.decide(&data), open(Start::Zero, Why::New));
    }

    #[test]
    fn a_file_larger_than_the_live_one_is_not_its_copy() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 100, 5000);
        assert_eq!(w.decide(&data), open(Start::Zero, Why::New));
    }

    #[test]
    fn copy_being_written_is_held_while_it_grows() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.retired(4, &data, 6000);
        // 300 bytes so far: a proper prefix of the retired head.
        assert!(matches!(w.decide(&data[..300]), Decision::Hold { .. }));
        w.at(0.8);
        assert!(matches!(w.decide(&data[..700]), Decision::Hold { .. }));
        // Complete: adopted.
        w.at(1.0);
        assert_eq!(w.decide(&data), Decision::Adopt { retired: 4 });
    }

    #[test]
    fn a_prefix_that_stops_growing_is_a_file_of_its_own() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.retired(4, &data, 6000);
        assert!(matches!(w.decide(&data[..300]), Decision::Hold { .. }));
        w.at(1.0);
        assert_eq!(w.decide(&data[..300]), open(Start::Zero, Why::New));
    }

    #[test]
    fn copy_shorter_than_what_was_read_waits_then_opens_at_its_end() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.retired(5, &data, 9000);
        let copy = &data[..7000];
        assert!(matches!(w.decide(copy), Decision::Hold { .. }));
        w.at(1.0);
        assert_eq!(
            w.decide(copy),
            open(Start::End, Why::CopyAlreadyRead { retired: 5 })
        );
    }

    #[test]
    fn checkpoint_resumes_where_it_was_acknowledged() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.checkpoint = Some(CheckpointView {
            signature: Signature::of(head_of(&data)),
            offset: 4000,
            same_path: true,
        });
        assert_eq!(w.decide(&data), open(Start::At(4000), Why::Checkpoint));
    }

    #[test]
    fn truncated_while_down_reads_from_zero_and_retires_the_checkpoint() {
        // copytruncate while the agent was not running: same path, new
        // head. The caller retires the checkpointed stream; its copy is
        // then adopted like any other.
        let mut w = World::new();
        let old = log(0, 9000);
        w.checkpoint = Some(CheckpointView {
            signature: Signature::of(head_of(&old)),
            offset: 4000,
            same_path: true,
        });
        assert_eq!(w.decide(&log(500, 100)), open(Start::Zero, Why::Rewritten));
        // Shorter than the checkpoint, same head: truncated too.
        assert_eq!(w.decide(&old[..3000]), open(Start::Zero, Why::Rewritten));
        w.checkpoint = None;
        w.retired(9, &old, 4000);
        assert_eq!(w.decide(&old), Decision::Adopt { retired: 9 });
    }

    #[test]
    fn inode_reuse_is_a_new_file() {
        let mut w = World::new();
        w.checkpoint = Some(CheckpointView {
            signature: Signature::of(head_of(&log(0, 2000))),
            offset: 2000,
            same_path: false,
        });
        w.present_at_start = true;
        assert_eq!(
            w.decide(&log(900, 5000)),
            open(Start::Tail, Why::InodeReused)
        );
    }

    #[test]
    fn first_sight_at_start_tails_later_reads_from_zero() {
        let mut w = World::new();
        w.present_at_start = true;
        assert_eq!(w.decide(&log(0, 5000)), open(Start::Tail, Why::New));
        w.present_at_start = false;
        assert_eq!(w.decide(&log(0, 5000)), open(Start::Zero, Why::New));
    }

    #[test]
    fn handed_over_by_another_config() {
        let mut w = World::new();
        let data = log(0, 9000);
        let signature = Signature::of(head_of(&data));
        w.handover = Handover::Wait;
        assert_eq!(w.decide(&data), Decision::Hold { rescan: false });
        w.handover = Handover::From {
            offset: 3000,
            signature,
        };
        assert_eq!(w.decide(&data), open(Start::At(3000), Why::HandedOver));
        w.handover = Handover::From {
            offset: 30_000,
            signature,
        };
        assert_eq!(w.decide(&data), open(Start::Zero, Why::HandedOverTruncated));
        // Another head: a new file on the inode; the usual rules.
        w.handover = Handover::From {
            offset: 3000,
            signature: Signature::of(b"something else"),
        };
        assert_eq!(w.decide(&data), open(Start::Zero, Why::New));
    }

    #[test]
    fn a_checkpointed_file_is_never_held_as_a_copy() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 100, 20_000);
        w.checkpoint = Some(CheckpointView {
            signature: Signature::of(head_of(&data)),
            offset: 9000,
            same_path: true,
        });
        assert_eq!(w.decide(&data), open(Start::At(9000), Why::Checkpoint));
    }

    #[test]
    fn streams_are_never_copies() {
        let mut w = World::new();
        let data = log(0, 9000);
        w.live(1, &data, 100, 20_000);
        let head = head_of(&data);
        let hashes = prefix_hashes(head);
        let n = Newcomer {
            size: 9000,
            head,
            hashes: &hashes,
            is_stream: true,
        };
        let live = [Live {
            id: id(1),
            signature: Signature::of(head),
            head,
            read_offset: 100,
            recovery: false,
        }];
        let cx = Context {
            now: w.now,
            copy_wait: WAIT,
            live: &live,
            retired: &[],
            checkpoint: None,
            handover: Handover::None,
            present_at_start: true,
        };
        let d = decide(
            &n,
            &cx,
            &mut None,
            &mut |_| LiveFile {
                size: 20_000,
                truncated: false,
            },
            &mut |_| true,
        );
        assert_eq!(d, open(Start::Zero, Why::New));
    }

    #[test]
    fn continues_needs_the_head_and_everything_read() {
        let data = log(0, 5000);
        let hashes = prefix_hashes(head_of(&data));
        let sig = Signature::of(head_of(&data));
        assert!(continues(sig, 5000, &hashes, 5000));
        assert!(!continues(sig, 5001, &hashes, 5000));
        assert!(!continues(Signature::of(b"other"), 10, &hashes, 5000));
        assert!(!continues(Signature::default(), 0, &hashes, 5000));
    }
}
