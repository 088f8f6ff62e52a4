//! Collecting text logs from files.
//!
//! The pieces, each behind its own seam: [`discovery`] (which paths match),
//! [`fingerprint`] (file identity), [`reader`] (bytes after an offset,
//! through a guarded memory map), [`framing`] (lines, sans-I/O),
//! [`watch`] (inotify wake-ups) and [`input`] (rotation detection and
//! acknowledged checkpoints, tying them together as [`FileInput`]).

pub mod discovery;
pub mod fingerprint;
pub mod framing;
pub mod input;
pub mod reader;
pub mod sigbus;
pub mod watch;

pub use discovery::{GlobError, PathMatcher, PathsSpec, Scan};
pub use fingerprint::{prefix_hashes, FileId, Signature, SIGNATURE_BYTES};
pub use framing::{Framer, FramerOptions, FramerStats, LongLinePolicy};
pub use input::{FileInput, FileInputOptions, FileInputStats, InputError};
pub use reader::{OpenFile, ReadOutcome};
