//! # logtail-core
//!
//! The runtime-agnostic core of logtail-rs: the event model, the trait
//! seams ([`Input`], [`Parser`], [`Checkpoint`], [`Sink`]), and the file
//! collection engine (discovery, mmap tailing, line framing, rotation
//! detection) in [`file`](mod@file).
//!
//! The default feature `sls` adds the SLS PutLogs wire format (`sls`) and
//! the durable disk queue of undeliverable batches (`spill`); without it
//! (`default-features = false`) the crate is the tailer and the processors
//! only, and builds no C code.
//!
//! Nothing here needs an async runtime: inputs are polled, sinks are pushed
//! to, and acknowledgements travel back over a channel.
#![deny(missing_docs)]
// Library code never unwraps outside data; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod ack;
pub mod checkpoint;
pub mod clock;
pub mod event;
pub mod file;
pub mod fs;
pub mod hash;
pub mod input;
pub mod parser;
pub mod process;
pub mod sink;
#[cfg(feature = "sls")]
pub mod sls;
#[cfg(feature = "sls")]
pub mod spill;

pub use ack::{Ack, AckToken, AckTracker, BatchId};
pub use checkpoint::{Checkpoint, CheckpointError, FilePosition, MemoryCheckpoint};
pub use event::{Event, EventBatch, Field, FieldKey, FieldValue, SourceTags, Timestamp};
pub use input::{Closed, Emit, Input, Progress};
pub use parser::Parser;
pub use sink::{Rejected, Sink, SinkError};
