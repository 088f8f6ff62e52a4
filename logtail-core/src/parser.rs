//! The [`Parser`] trait: a step that turns raw lines into records.
//!
//! Parsers are sans-I/O: they get a batch and change it in place (split
//! `content` into fields, set the time, drop or merge events). A parser must
//! never lose an event silently: a line it cannot parse is kept as it was and
//! counted.

use crate::process::{DropReason, ParserStats};
use crate::EventBatch;

/// One processing step of a pipeline.
pub trait Parser: Send {
    /// The step's name, for logs and metrics (`processor_parse_regex_native`…).
    fn name(&self) -> &str;

    /// Processes a batch in place.
    fn process(&mut self, batch: &mut EventBatch);

    /// What the step did so far.
    fn stats(&self) -> ParserStats {
        ParserStats::default()
    }

    /// Why this step drops events (counted in [`ParserStats::dropped`]),
    /// for the warning the pipeline logs when it does. `None` for a step
    /// that never drops.
    fn drop_reason(&self) -> Option<DropReason> {
        None
    }
}
