//! The [`Input`] trait: a source of event batches driven by its caller.
//!
//! An input never spawns threads or needs a runtime: the caller calls
//! [`Input::poll`] to read what is ready, and [`Input::wait`] to block until
//! more may be (a plain thread does both in a loop; an async service calls
//! `poll` from `spawn_blocking` or on a timer). Batches are pushed into an
//! [`Emit`], the push-model seam where back-pressure is applied.

use std::time::Duration;

use crate::{CheckpointError, EventBatch};

/// The receiver was closed: the pipeline is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is stopping")]
pub struct Closed;

/// Why [`Input::poll`] or [`Input::settle`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The pipeline stopped taking batches ([`Emit`] returned [`Closed`]):
    /// stop polling; this is how a stop looks, not a failure.
    #[error("the pipeline is stopping")]
    Closed,
    /// Positions could not be persisted (e.g. disk full). Reading may go
    /// on: the write is retried at the next poll.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The source itself failed.
    #[error("{input}: {source}")]
    Source {
        /// The input's kind (`input_file`…).
        input: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<Closed> for InputError {
    fn from(Closed: Closed) -> Self {
        InputError::Closed
    }
}

impl From<crate::file::InputError> for InputError {
    fn from(e: crate::file::InputError) -> Self {
        use crate::file::InputError as File;
        match e {
            File::Closed => InputError::Closed,
            File::Checkpoint(e) => InputError::Checkpoint(e),
            other => InputError::Source {
                input: "input_file",
                source: Box::new(other),
            },
        }
    }
}

/// Where an input pushes its batches. `emit` may block (back-pressure).
pub trait Emit {
    /// Takes one batch. `Err(Closed)` means stop reading: the batch was not
    /// taken (its ack token counts as failed, so nothing is checkpointed past it).
    fn emit(&mut self, batch: EventBatch) -> Result<(), Closed>;
}

impl Emit for Vec<EventBatch> {
    fn emit(&mut self, batch: EventBatch) -> Result<(), Closed> {
        self.push(batch);
        Ok(())
    }
}

/// What a call to [`Input::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More data is ready now: call `poll` again without waiting.
    Busy,
    /// Nothing more right now: call [`Input::wait`].
    Idle,
}

/// A source of events with acknowledged, persistent positions.
///
/// A minimal input that hands out lines it holds in memory, one batch per
/// poll, and knows how many batches are still unacknowledged:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use crossbeam_channel::{unbounded, Receiver, Sender};
/// use logtail_core::input::InputError;
/// use logtail_core::{
///     Ack, AckToken, BatchId, Emit, Event, EventBatch, Input, Progress, SourceTags, Timestamp,
/// };
///
/// struct Lines {
///     left: Vec<&'static str>,
///     seq: u64,
///     acks: (Sender<Ack>, Receiver<Ack>),
///     in_flight: usize,
/// }
///
/// impl Input for Lines {
///     fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
///         while self.acks.1.try_recv().is_ok() {
///             self.in_flight -= 1;
///         }
///         let Some(line) = self.left.pop() else {
///             return Ok(Progress::Idle);
///         };
///         let ack = AckToken::new(BatchId { source: 1, seq: self.seq }, self.acks.0.clone());
///         self.seq += 1;
///         self.in_flight += 1;
///         emit.emit(EventBatch {
///             source: Arc::new(SourceTags {
///                 path: "memory".into(),
///                 dev: 0,
///                 inode: 0,
///                 config: Arc::from("example"),
///             }),
///             events: vec![Event::line(Bytes::from_static(line.as_bytes()), 0, Timestamp::now())],
///             bytes: line.len() as u64,
///             ack,
///         })?;
///         Ok(Progress::Busy)
///     }
///
///     fn wait(&mut self, timeout: Duration) {
///         std::thread::sleep(timeout.min(Duration::from_millis(10)));
///     }
///
///     fn settle(&mut self, timeout: Duration) -> Result<usize, InputError> {
///         while self.in_flight > 0 && self.acks.1.recv_timeout(timeout).is_ok() {
///             self.in_flight -= 1;
///         }
///         Ok(self.in_flight)
///     }
/// }
///
/// let mut input = Lines { left: vec!["b", "a"], seq: 0, acks: unbounded(), in_flight: 0 };
/// let mut out: Vec<EventBatch> = Vec::new();
/// while input.poll(&mut out)? == Progress::Busy {}
/// assert_eq!(out.len(), 2);
/// out.into_iter().for_each(EventBatch::delivered);
/// assert_eq!(input.settle(Duration::from_secs(1))?, 0);
/// # Ok::<(), InputError>(())
/// ```
pub trait Input: Send {
    /// Reads what is ready, pushes batches into `emit`, handles the
    /// acknowledgements that came back, and persists positions when due.
    ///
    /// # Errors
    ///
    /// [`InputError::Closed`] when `emit` was closed (stop polling);
    /// others are reported, and polling may go on.
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError>;

    /// Blocks up to `timeout` or until the input may have more data.
    fn wait(&mut self, timeout: Duration);

    /// Waits up to `timeout` for the batches in flight to be acknowledged,
    /// then persists positions. Returns how many batches are still in flight.
    ///
    /// # Errors
    ///
    /// The final persist failed ([`InputError::Checkpoint`]).
    fn settle(&mut self, timeout: Duration) -> Result<usize, InputError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_input_errors_keep_their_meaning() {
        assert!(matches!(
            InputError::from(crate::file::InputError::Closed),
            InputError::Closed
        ));
        assert!(matches!(InputError::from(Closed), InputError::Closed));
        let corrupt = || CheckpointError::Corrupt {
            path: "/d/cp.json".into(),
            reason: "line 3".into(),
        };
        let e = InputError::from(crate::file::InputError::Checkpoint(corrupt()));
        assert!(matches!(e, InputError::Checkpoint(_)));
        assert_eq!(e.to_string(), corrupt().to_string());
    }
}
