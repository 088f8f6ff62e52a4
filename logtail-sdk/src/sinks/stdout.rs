use std::io::Write;

use logtail_core::{EventBatch, Rejected, Sink, SinkError};

use crate::json::write_event;

/// `flusher_stdout`: prints one JSON object per event per line on stdout.
#[derive(Debug)]
pub struct StdoutSink {
    buffer: Vec<u8>,
    tags: bool,
}

impl StdoutSink {
    /// A stdout sink; `tags` adds `__tag__:__path__` (LoongCollector's `Tags`).
    pub fn new(tags: bool) -> Self {
        StdoutSink {
            buffer: Vec::new(),
            tags,
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "flusher_stdout"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        self.buffer.clear();
        for e in &batch.events {
            write_event(&mut self.buffer, &batch.source, e, self.tags);
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(&self.buffer).and_then(|_| out.flush()) {
            Ok(()) => {
                batch.delivered();
                Ok(())
            }
            Err(source) => Err(Box::new(Rejected {
                batch,
                error: SinkError::Io {
                    what: "flusher_stdout: cannot write to stdout".into(),
                    source,
                },
            })),
        }
    }
}
