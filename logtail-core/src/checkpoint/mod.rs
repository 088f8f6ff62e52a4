//! The [`Checkpoint`] trait: a store of acknowledged file positions.
//!
//! Positions only ever hold offsets that every sink acknowledged, so a
//! restart resumes exactly after the last delivered line. Two stores ship
//! with the core: [`MemoryCheckpoint`] (embedding, tests) and
//! [`FileCheckpoint`] (the agent's default: a versioned JSON file written
//! atomically under the data directory).

mod file_store;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::file::{FileId, Signature};

// The file format's codec is public for the fuzz targets only.
#[doc(hidden)]
pub use file_store::{decode, encode};
pub use file_store::{FileCheckpoint, Recovery};

/// The acknowledged position of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Device and inode.
    pub id: FileId,
    /// Signature of the file's head when the position was taken; a file at
    /// the same inode with another head is a different file (inode reuse).
    pub signature: Signature,
    /// Offset up to which every line was delivered.
    pub offset: u64,
    /// Last known path, for people reading the file and for logs.
    pub path: String,
    /// Unix seconds of the last update; old entries expire.
    pub updated: u64,
}

/// Errors of checkpoint stores. Each names the file and what went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the store failed.
    #[error("checkpoint file {path}: {what}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operation.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store's content is not a valid checkpoint.
    #[error("checkpoint file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong, with the byte offset or line where known.
        reason: String,
    },
}

/// A store of positions, keyed by file identity.
///
/// ```
/// use logtail_core::checkpoint::{Checkpoint, FilePosition, MemoryCheckpoint};
/// use logtail_core::file::{FileId, Signature};
/// let mut store = MemoryCheckpoint::default();
/// let id = FileId { dev: 1, inode: 42 };
/// store.update(FilePosition { id, signature: Signature::of(b"head"), offset: 10,
///     path: "/var/log/app.log".into(), updated: 0 });
/// assert_eq!(store.get(id).unwrap().offset, 10);
/// ```
pub trait Checkpoint: Send {
    /// The position stored for a file, if any.
    fn get(&self, id: FileId) -> Option<&FilePosition>;

    /// Stores (or replaces) a position.
    fn update(&mut self, position: FilePosition);

    /// Forgets a file (it was deleted and drained).
    fn forget(&mut self, id: FileId);

    /// Drops entries last updated before `cutoff` (Unix seconds); returns how many.
    fn expire(&mut self, cutoff: u64) -> usize;

    /// Writes pending changes durably. Cheap when nothing changed.
    fn persist(&mut self) -> Result<(), CheckpointError>;

    /// All positions (for inspection and tests).
    fn positions(&self) -> Vec<FilePosition>;
}

/// A checkpoint store that lives in memory only.
#[derive(Debug, Default, Clone)]
pub struct MemoryCheckpoint {
    entries: HashMap<FileId, FilePosition>,
}

impl Checkpoint for MemoryCheckpoint {
    fn get(&self, id: FileId) -> Option<&FilePosition> {
        self.entries.get(&id)
    }
    fn update(&mut self, position: FilePosition) {
        self.entries.insert(position.id, position);
    }
    fn forget(&mut self, id: FileId) {
        self.entries.remove(&id);
    }
    fn expire(&mut self, cutoff: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, p| p.updated >= cutoff);
        before - self.entries.len()
    }
    fn persist(&mut self) -> Result<(), CheckpointError> {
        Ok(())
    }
    fn positions(&self) -> Vec<FilePosition> {
        let mut v: Vec<_> = self.entries.values().cloned().collect();
        v.sort_by_key(|p| p.id);
        v
    }
}
