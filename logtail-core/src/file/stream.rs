//! A stream: the logical position in a sequence of bytes, which stays
//! with its file for the file's life except across a truncation (see
//! [`super::input`]).

use super::decode::Decoder;
use super::fingerprint::Signature;
use super::framing::Framer;
use super::multiline::Multiline;
use crate::ack::AckTracker;

/// The logical position in a sequence of bytes; see the module docs.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) source: u64,
    pub(super) tracker: AckTracker,
    pub(super) read_offset: u64,
    pub(super) signature: Signature,
    /// The bytes `signature` was made of: a copy still being written
    /// shows up with a head that is a proper prefix of them.
    pub(super) head: Vec<u8>,
    /// A byte framer; for UTF-16 files replaced by a UTF-16 one once the
    /// byte-order mark can be seen.
    pub(super) framer: Framer,
    /// Converts lines of files that are not UTF-8.
    pub(super) decoder: Option<Decoder>,
    /// The event being assembled, with `Multiline`.
    pub(super) multiline: Option<Multiline>,
}
