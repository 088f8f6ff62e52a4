//! The [`Sink`] trait: where batches leave the pipeline.
//!
//! A sink takes ownership of each batch. Once the data is safe (written,
//! or accepted by the backend) it calls [`crate::EventBatch::delivered`];
//! it may do so later and from another thread, which lets a sink keep
//! several requests in flight. A batch it cannot take is handed back in
//! [`Rejected`] so the caller can retry it.

use std::fmt;

use crate::EventBatch;

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What the sink was doing (names the file or address).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure, described.
    #[error("{0}")]
    Other(String),
}

/// A batch the sink did not take, with the reason.
pub struct Rejected {
    /// The batch, untouched, for a retry.
    pub batch: EventBatch,
    /// Why.
    pub error: SinkError,
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("events", &self.batch.events.len())
            .field("error", &self.error)
            .finish()
    }
}

/// A destination for batches.
///
/// A sink that counts lines and acknowledges each batch at once (a real
/// sink acknowledges once the data is safe, possibly from another thread):
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use logtail_core::{AckToken, Event, EventBatch, Rejected, Sink, SourceTags, Timestamp};
///
/// #[derive(Default)]
/// struct CountingSink {
///     lines: u64,
/// }
///
/// impl Sink for CountingSink {
///     fn name(&self) -> &str {
///         "counting"
///     }
///
///     fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
///         self.lines += batch.events.len() as u64;
///         batch.delivered();
///         Ok(())
///     }
/// }
///
/// let mut sink = CountingSink::default();
/// let batch = EventBatch {
///     source: Arc::new(SourceTags {
///         path: "/var/log/app.log".into(),
///         dev: 0,
///         inode: 0,
///         config: Arc::from("app"),
///     }),
///     events: vec![Event::line(Bytes::from_static(b"hello"), 0, Timestamp::default())],
///     bytes: 6,
///     ack: AckToken::detached(),
/// };
/// sink.send(batch).unwrap();
/// assert_eq!(sink.lines, 1);
/// ```
pub trait Sink: Send {
    /// The sink's name, for logs and metrics (`flusher_file`…).
    fn name(&self) -> &str;

    /// Takes a batch; see the module documentation for the contract.
    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>>;

    /// Pushes buffered data out; called when the pipeline goes idle and
    /// before it stops.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
