//! The [`Input`] trait: a source of event batches driven by its caller.
//!
//! An input never spawns threads or needs a runtime: the caller calls
//! [`Input::poll`] to read what is ready, and [`Input::wait`] to block until
//! more may be (a plain thread does both in a loop; an async service calls
//! `poll` from `spawn_blocking` or on a timer). Batches are pushed into an
//! [`Emit`], the push-model seam where back-pressure is applied.

use std::time::Duration;

use crate::EventBatch;

/// The receiver was closed: the pipeline is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is stopping")]
pub struct Closed;

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
pub trait Input: Send {
    /// Reads what is ready, pushes batches into `emit`, handles the
    /// acknowledgements that came back, and persists positions when due.
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, crate::file::InputError>;

    /// Blocks up to `timeout` or until the input may have more data.
    fn wait(&mut self, timeout: Duration);

    /// Waits up to `timeout` for the batches in flight to be acknowledged,
    /// then persists positions. Returns how many batches are still in flight.
    fn settle(&mut self, timeout: Duration) -> Result<usize, crate::file::InputError>;
}
