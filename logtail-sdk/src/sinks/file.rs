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
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Io {
                what: format!("flusher_file: cannot open {}", path.display()),
                source,
            })?;
        end_torn_line(path, &mut file).map_err(|source| SinkError::Io {
            what: format!("flusher_file: cannot repair {}", path.display()),
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
        // Written bytes leave the buffer at once: after a short write (disk
        // full) the retry goes on from there instead of repeating them.
        while !self.buffer.is_empty() {
            match self.file.write(&self.buffer) {
                Ok(0) => return Err(self.io_error(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.buffer.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        for token in self.pending.drain(..) {
            token.delivered();
        }
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            what: format!("flusher_file: cannot write {}", self.path.display()),
            source,
        }
    }
}

/// A crash (SIGKILL, OOM) during a write can leave the file ending in part
/// of a line. Its batch was not acknowledged and is sent again; end the torn
/// line so the next event starts a line of its own instead of being glued
/// onto it (which would make that event unreadable too).
fn end_torn_line(path: &Path, file: &mut File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(()); // a FIFO, /dev/null, or nothing written yet
    }
    // Write-only files cannot be checked; leave them as they are.
    let Ok(reader) = File::open(path) else {
        return Ok(());
    };
    let mut last = [0u8; 1];
    if reader.read_at(&mut last, meta.len() - 1)? == 1 && last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        "flusher_file"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        // A full buffer means the last write failed (disk full): refuse more
        // until it is out, so the pipeline backs off and the input waits,
        // instead of this buffer growing by every batch read meanwhile.
        if self.buffer.len() >= BUFFER_BYTES {
            if let Err(error) = self.write_out() {
                return Err(Box::new(Rejected { batch, error }));
            }
        }
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
                // Stays buffered (and unacknowledged); the next send retries.
                tracing::warn!("{error}");
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }
}
