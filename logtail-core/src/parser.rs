//! The [`Parser`] trait: a step that turns raw lines into records.
//!
//! Parsers are sans-I/O: they get a batch and change it in place (split
//! `content` into fields, set the time, drop or merge events). A parser must
//! never lose an event silently: a line it cannot parse is kept as it was and
//! counted.

use crate::process::{DropKind, DropReason, FailureKind, ParserStats, StatsPart};
use crate::EventBatch;

/// One processing step of a pipeline.
///
/// A step that upper-cases each line in place:
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};
///
/// struct Upper;
///
/// impl Parser for Upper {
///     fn name(&self) -> &str {
///         "upper"
///     }
///
///     fn process(&mut self, batch: &mut EventBatch) {
///         for e in &mut batch.events {
///             e.content = Bytes::from(e.content.to_ascii_uppercase());
///         }
///     }
/// }
///
/// let mut batch = EventBatch {
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
/// Upper.process(&mut batch);
/// assert_eq!(&batch.events[0].content[..], b"HELLO");
/// ```
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

    /// What the events counted in [`ParserStats::failed`] are, for the
    /// alarm the agent raises: a parse failure unless the step says
    /// otherwise (a regex that did not match, a time that did not parse).
    fn failure_kind(&self) -> FailureKind {
        FailureKind::ParseLog
    }

    /// Why the events counted in [`ParserStats::dropped`] were dropped:
    /// discarded parse failures unless the step says otherwise.
    fn drop_kind(&self) -> DropKind {
        DropKind::ParseFail
    }

    /// [`Parser::stats`] split by kind of failure and drop; the parts'
    /// failed and dropped counts add up to it. One part with [`Parser::failure_kind`] and
    /// [`Parser::drop_kind`] unless the step is made of several.
    fn stats_parts(&self) -> Vec<StatsPart> {
        vec![StatsPart::new(
            self.failure_kind(),
            self.drop_kind(),
            self.stats(),
        )]
    }
}
