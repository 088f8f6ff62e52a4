use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use logtail_core::{AckToken, EventBatch, Rejected, Sink, SinkError};

use crate::json::write_event;

/// Encoded bytes held before they are written.
const BUFFER_BYTES: usize = 1 << 20;

/// `flusher_file`: appends one JSON object per event per line to a file.
///
/// Batches are acknowledged only once their bytes were written to the file
/// (so a crash of the agent never loses them; `fsync` is not waited for, as
/// the kernel keeps written data when a process dies).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    pending: Vec<AckToken>,
    tags: bool,
}

impl FileSink {
    /// Opens (creating it and its directory) the output file for appending.
    pub fn open(path: &Path) -> Result<FileSink, SinkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
                what: format!("flusher_file: cannot create directory {}", dir.display()),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Io {
                what: format!("flusher_file: cannot open {}", path.display()),
                source,
            })?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            buffer: Vec::with_capacity(BUFFER_BYTES + 64 * 1024),
            pending: Vec::new(),
            tags: true,
        })
    }

    fn write_out(&mut self) -> Result<(), SinkError> {
        if !self.buffer.is_empty() {
            self.file
                .write_all(&self.buffer)
                .map_err(|source| SinkError::Io {
                    what: format!("flusher_file: cannot write {}", self.path.display()),
                    source,
                })?;
            self.buffer.clear();
        }
        for token in self.pending.drain(..) {
            token.delivered();
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        "flusher_file"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        let EventBatch {
            source,
            events,
            ack,
            ..
        } = batch;
        for e in &events {
            write_event(&mut self.buffer, &source, e, self.tags);
        }
        self.pending.push(ack);
        if self.buffer.len() >= BUFFER_BYTES {
            if let Err(error) = self.write_out() {
                // What was buffered stays buffered (and unacknowledged) for the retry.
                tracing::warn!("{error}");
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }
}
