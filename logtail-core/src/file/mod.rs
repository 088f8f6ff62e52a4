//! Collecting text logs from files.
//!
//! The pieces, each behind its own seam: [`discovery`] (which paths match),
//! [`fingerprint`] (file identity), [`reader`] (bytes after an offset,
//! through a guarded memory map), [`framing`] (lines, sans-I/O),
//! [`decode`] (file encodings, sans-I/O), [`multiline`] (multi-line
//! events, sans-I/O), [`watch`] (inotify wake-ups) and [`input`] (rotation
//! detection and acknowledged checkpoints, tying them together as
//! [`FileInput`]).

mod chunk;
mod claims;
pub mod decode;
pub mod discovery;
pub mod fingerprint;
pub mod framing;
pub mod input;
pub mod multiline;
pub mod reader;
mod rotation;
pub mod sigbus;
mod stats_display;
mod stream;
pub mod watch;

pub use claims::{FileClaims, Handover};
pub use decode::{Decoder, FileEncoding, Utf16Order};
pub use discovery::{GlobError, PathMatcher, PathsProvider, PathsSpec, Scan};
pub use fingerprint::{prefix_hashes, FileId, Signature, SIGNATURE_BYTES};
pub use framing::{Framer, FramerOptions, FramerStats, LineUnit, LongLinePolicy};
pub use input::{FileInput, FileInputOptions, FileInputStats, FileProgress, InputError};
pub use multiline::{
    Assembled, AssembledKind, Multiline, MultilineError, MultilineMode, MultilineOptions,
    MultilineRules, MultilineStats, UnmatchedContentTreatment,
};
pub use reader::{OpenFile, ReadOutcome};
