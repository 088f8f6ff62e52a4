//! Which config collects a file that several configs match, and how a
//! file's position is handed from one config's input to another's.

use std::path::Path;

use super::fingerprint::{FileId, Signature};

/// Decides which config collects a file that several configs match
/// (LoongCollector collects a file with one config only, unless a config
/// sets `AllowingIncludedByMultiConfigs`). Consulted at every scan, so
/// adding or removing a config moves files between inputs.
///
/// When a file changes hands, the inputs hand its position over through
/// the claims. The old owner reads on, like a file rotated out of its
/// patterns, until the new owner asks for the file ([`Handover::Wait`],
/// then [`FileClaims::wanted`]); it then stops reading, waits until what
/// it read is acknowledged and reports where it stopped
/// ([`FileClaims::closed`]); the new owner starts there
/// ([`Handover::From`]). No line is read twice or skipped. Every input
/// reports the position of every file it closes, so a file that comes back
/// to an earlier owner continues where the last reader stopped. The default
/// methods keep no state: a new owner then starts as with a file it has
/// never seen, and the old one drains the file as a rotated one.
pub trait FileClaims: Send + Sync + std::fmt::Debug {
    /// Whether the input of config `config` may collect `path`.
    fn allows(&self, config: &str, path: &Path) -> bool;

    /// Where the input of `config` starts a file it has no reader for.
    fn handover(&self, config: &str, file: FileId) -> Handover {
        let _ = (config, file);
        Handover::None
    }

    /// Whether a config other than `config` waits for `file`
    /// ([`Handover::Wait`]): the input of `config` should give it up.
    fn wanted(&self, config: &str, file: FileId) -> bool {
        let _ = (config, file);
        false
    }

    /// The input of `config` opened `file`.
    fn opened(&self, config: &str, file: FileId) {
        let _ = (config, file);
    }

    /// The input of `config` closed `file` (not deleted) at `released_at`:
    /// everything before that offset was read and acknowledged (at least
    /// once: batches still unacknowledged when a stop gave up waiting lie
    /// after it). The signature of the file's head tells a reused inode from
    /// the file. `None`: closed because it was deleted.
    fn closed(&self, config: &str, file: FileId, released_at: Option<(u64, Signature)>) {
        let _ = (config, file, released_at);
    }
}

/// Where a file that changes hands starts; see [`FileClaims`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// No other config had it: the usual rules (checkpoint, `TailSizeKB`).
    None,
    /// Another config still reads it: look again at the next scan.
    Wait,
    /// Another config gave it up at `offset`; `signature` is the head it
    /// had (a file whose head differs is a new file on a reused inode).
    From {
        /// Everything before it was read and acknowledged.
        offset: u64,
        /// The head's signature when it was given up.
        signature: Signature,
    },
}
