use logtail_core::{EventBatch, Rejected, Sink};

/// `flusher_blackhole`: acknowledges and discards every batch (benchmarks,
/// dry runs).
#[derive(Debug, Default)]
pub struct BlackholeSink {
    events: u64,
}

impl BlackholeSink {
    /// Events discarded so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}

impl Sink for BlackholeSink {
    fn name(&self) -> &str {
        "flusher_blackhole"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        self.events += batch.events.len() as u64;
        batch.delivered();
        Ok(())
    }
}
