//! End-to-end acknowledgements.
//!
//! Every [`crate::EventBatch`] carries an [`AckToken`]. A sink that has
//! durably handed the batch on calls [`AckToken::delivered`]; a token that
//! is dropped without that counts as a failure, so a forgotten path costs a
//! duplicate after restart, never a lost line. When the last token of a batch
//! is finished, one [`Ack`] goes back to the input, which advances its
//! checkpoint only over a contiguous run of delivered batches
//! ([`AckTracker`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;

/// Identifies one batch of one source of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchId {
    /// Source (file reader) number inside the input that emitted the batch.
    pub source: u64,
    /// Sequence number of the batch within the source, from 0.
    pub seq: u64,
}

/// The outcome of one batch, sent back to the input that emitted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Which batch.
    pub id: BatchId,
    /// `true` when every holder delivered it.
    pub delivered: bool,
}

#[derive(Debug)]
struct Shared {
    id: BatchId,
    pending: AtomicUsize,
    failed: AtomicBool,
    tx: Option<Sender<Ack>>,
}

impl Shared {
    fn finish(&self, ok: bool) {
        if !ok {
            self.failed.store(true, Ordering::SeqCst);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(tx) = &self.tx {
                // The input may be gone (shutdown); then nobody needs the ack.
                let _ = tx.send(Ack {
                    id: self.id,
                    delivered: !self.failed.load(Ordering::SeqCst),
                });
            }
        }
    }
}

/// One holder's share of a batch's acknowledgement.
///
/// ```
/// use logtail_core::ack::{AckToken, BatchId};
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let token = AckToken::new(BatchId { source: 1, seq: 0 }, tx);
/// let mut parts = token.split(2);
/// parts.pop().unwrap().delivered();
/// assert!(rx.try_recv().is_err()); // one holder still pending
/// parts.pop().unwrap().delivered();
/// assert!(rx.try_recv().unwrap().delivered);
/// ```
#[derive(Debug)]
pub struct AckToken {
    shared: Arc<Shared>,
    done: bool,
}

impl AckToken {
    /// A token whose outcome is sent on `tx`.
    pub fn new(id: BatchId, tx: Sender<Ack>) -> Self {
        AckToken {
            shared: Arc::new(Shared {
                id,
                pending: AtomicUsize::new(1),
                failed: AtomicBool::new(false),
                tx: Some(tx),
            }),
            done: false,
        }
    }

    /// A token nobody listens to (for tests and one-off use).
    pub fn detached() -> Self {
        AckToken {
            shared: Arc::new(Shared {
                id: BatchId { source: 0, seq: 0 },
                pending: AtomicUsize::new(1),
                failed: AtomicBool::new(false),
                tx: None,
            }),
            done: false,
        }
    }

    /// The batch this token acknowledges.
    pub fn id(&self) -> BatchId {
        self.shared.id
    }

    /// Splits this token into `n` tokens (one per sink of a fan-out); the
    /// batch is acknowledged when all `n` are finished. `n == 0` finishes it
    /// as delivered at once.
    pub fn split(mut self, n: usize) -> Vec<AckToken> {
        self.done = true;
        if n == 0 {
            self.shared.finish(true);
            return Vec::new();
        }
        // This token's one share becomes n shares.
        self.shared.pending.fetch_add(n - 1, Ordering::AcqRel);
        (0..n)
            .map(|_| AckToken {
                shared: Arc::clone(&self.shared),
                done: false,
            })
            .collect()
    }

    /// One more holder of this token's batch, for a sink that spreads a
    /// batch over several requests as it goes (when [`split`](Self::split)
    /// cannot know the count up front). The batch is acknowledged once this
    /// token and every share are finished; delivered only if all of them
    /// were, and a share that is dropped counts as failed.
    ///
    /// ```
    /// use logtail_core::ack::{AckToken, BatchId};
    /// let (tx, rx) = crossbeam_channel::unbounded();
    /// let token = AckToken::new(BatchId { source: 1, seq: 0 }, tx);
    /// let part = token.share();
    /// token.delivered(); // the spreading holder is done
    /// assert!(rx.try_recv().is_err()); // the share is still pending
    /// drop(part); // lost without being delivered
    /// assert!(!rx.try_recv().unwrap().delivered);
    /// ```
    pub fn share(&self) -> AckToken {
        // `self` is unfinished, so the count is at least 1 and the batch
        // cannot have been acknowledged yet.
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        AckToken {
            shared: Arc::clone(&self.shared),
            done: false,
        }
    }

    /// This holder delivered the batch.
    pub fn delivered(mut self) {
        self.done = true;
        self.shared.finish(true);
    }

    /// This holder gives the batch up: it will not advance checkpoints, so
    /// the data is read again after a restart.
    pub fn failed(mut self) {
        self.done = true;
        self.shared.finish(false);
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.done {
            self.shared.finish(false);
        }
    }
}

/// Tracks the batches of one source in order and tells how far the
/// checkpoint may advance: to the end of the longest delivered prefix.
///
/// ```
/// use logtail_core::ack::AckTracker;
/// let mut t = AckTracker::new(0);
/// let a = t.push(100);
/// let b = t.push(250);
/// assert_eq!(t.ack(b, true), None); // b is delivered but a is not yet
/// assert_eq!(t.ack(a, true), Some(250));
/// ```
#[derive(Debug, Clone)]
pub struct AckTracker {
    next_seq: u64,
    /// Offset acknowledged so far.
    committed: u64,
    /// (seq, end offset, state) of batches in flight, in order.
    pending: VecDeque<(u64, u64, State)>,
    /// A batch failed: the checkpoint stops before it for the rest of the run.
    stuck: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Delivered,
    Failed,
}

impl AckTracker {
    /// A tracker whose checkpoint starts at `offset`.
    pub fn new(offset: u64) -> Self {
        AckTracker {
            next_seq: 0,
            committed: offset,
            pending: VecDeque::new(),
            stuck: false,
        }
    }

    /// Registers a batch ending at `end_offset`; returns its sequence number.
    pub fn push(&mut self, end_offset: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back((seq, end_offset, State::InFlight));
        seq
    }

    /// Records an outcome. Returns the new committed offset when it moved.
    ///
    /// A failed batch stops the checkpoint at its start for the rest of the
    /// run (its data is read again after a restart); batches before it
    /// still commit when their acknowledgements arrive later.
    pub fn ack(&mut self, seq: u64, delivered: bool) -> Option<u64> {
        if let Some(entry) = self.pending.iter_mut().find(|e| e.0 == seq) {
            entry.2 = if delivered {
                State::Delivered
            } else {
                State::Failed
            };
        }
        if !delivered {
            self.stuck = true;
        }
        let before = self.committed;
        while let Some(&(_, end, State::Delivered)) = self.pending.front() {
            self.committed = end;
            self.pending.pop_front();
        }
        (self.committed != before).then_some(self.committed)
    }

    /// Offset up to which everything was delivered.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Batches still waiting for their outcome.
    pub fn in_flight(&self) -> usize {
        self.pending
            .iter()
            .filter(|e| e.2 == State::InFlight)
            .count()
    }

    /// Bytes of the batches still waiting for their outcome (what the
    /// pipeline holds in memory for this file).
    pub fn in_flight_bytes(&self) -> u64 {
        let mut start = self.committed;
        let mut sum = 0;
        for &(_, end, state) in &self.pending {
            if state == State::InFlight {
                sum += end.saturating_sub(start);
            }
            start = end;
        }
        sum
    }

    /// Whether a batch failed, pinning the checkpoint for this run.
    pub fn is_stuck(&self) -> bool {
        self.stuck
    }

    /// Forgets batches in flight and restarts at `offset` (the file was
    /// truncated and its old content is gone).
    pub fn reset(&mut self, offset: u64) {
        self.pending.clear();
        self.committed = offset;
        self.stuck = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_bytes_count_only_batches_without_an_outcome() {
        let mut t = AckTracker::new(100);
        let a = t.push(150);
        let b = t.push(400);
        let c = t.push(1000);
        assert_eq!(t.in_flight_bytes(), 900);
        t.ack(b, true);
        assert_eq!(t.in_flight_bytes(), 50 + 600);
        t.ack(c, false);
        assert_eq!(t.in_flight_bytes(), 50);
        t.ack(a, true);
        assert_eq!(t.in_flight_bytes(), 0);
    }

    #[test]
    fn dropped_token_is_a_failure() {
        let (tx, rx) = crossbeam_channel::unbounded();
        drop(AckToken::new(BatchId { source: 3, seq: 9 }, tx));
        let ack = rx.try_recv().unwrap();
        assert_eq!(ack.id, BatchId { source: 3, seq: 9 });
        assert!(!ack.delivered);
    }

    #[test]
    fn one_failed_share_fails_the_batch() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut parts = AckToken::new(BatchId { source: 1, seq: 1 }, tx).split(3);
        parts.pop().unwrap().delivered();
        parts.pop().unwrap().failed();
        assert!(rx.try_recv().is_err());
        parts.pop().unwrap().delivered();
        assert!(!rx.try_recv().unwrap().delivered);
    }

    #[test]
    fn shares_deliver_only_together() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let token = AckToken::new(BatchId { source: 2, seq: 5 }, tx);
        let a = token.share();
        let b = token.share();
        token.delivered();
        a.delivered();
        assert!(rx.try_recv().is_err());
        b.delivered();
        let ack = rx.try_recv().unwrap();
        assert_eq!(ack.id, BatchId { source: 2, seq: 5 });
        assert!(ack.delivered);
        assert!(rx.try_recv().is_err(), "one ack per batch");
    }

    #[test]
    fn a_dropped_share_fails_the_batch() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let token = AckToken::new(BatchId { source: 2, seq: 6 }, tx);
        let a = token.share();
        drop(token);
        a.delivered();
        assert!(!rx.try_recv().unwrap().delivered);
    }

    #[test]
    fn split_zero_acknowledges() {
        let (tx, rx) = crossbeam_channel::unbounded();
        assert!(AckToken::new(BatchId { source: 1, seq: 1 }, tx)
            .split(0)
            .is_empty());
        assert!(rx.try_recv().unwrap().delivered);
    }

    #[test]
    fn tracker_commits_only_contiguous_prefix() {
        let mut t = AckTracker::new(10);
        let a = t.push(20);
        let b = t.push(30);
        let c = t.push(40);
        assert_eq!(t.ack(c, true), None);
        assert_eq!(t.ack(a, true), Some(20));
        assert_eq!(t.ack(b, true), Some(40));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn tracker_failure_pins_the_checkpoint() {
        let mut t = AckTracker::new(0);
        let a = t.push(5);
        let b = t.push(9);
        assert_eq!(t.ack(a, false), None);
        assert_eq!(t.ack(b, true), None);
        assert_eq!(t.committed(), 0);
        assert!(t.is_stuck());
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn earlier_batches_commit_after_a_later_failure() {
        // At stop the newest batch is dropped first; older ones are still
        // being delivered and must advance the checkpoint up to it.
        let mut t = AckTracker::new(0);
        let a = t.push(5);
        let b = t.push(9);
        let c = t.push(12);
        assert_eq!(t.ack(c, false), None);
        assert_eq!(t.ack(a, true), Some(5));
        assert_eq!(t.ack(b, true), Some(9));
        assert_eq!(t.committed(), 9);
    }
}
