//! File identity: (device, inode) plus a signature of the file's head.
//!
//! The signature is a hash of the first `min(size, 1024)` bytes together
//! with that length. It grows as a small file grows, so "is this the same
//! file?" is asked as "does the other file start with the bytes I hashed?".
//! NUL bytes are ordinary bytes here.

use serde::{Deserialize, Serialize};

use crate::hash::{fnv1a64 as fnv1a, Fnv1a64};

/// Bytes of the head that make up a full signature.
pub const SIGNATURE_BYTES: usize = 1024;

/// (device, inode) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub inode: u64,
}

/// Hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Signature {
    /// How many head bytes were hashed (0..=1024).
    pub len: u32,
    /// FNV-1a 64 of those bytes (stable across versions: it is persisted).
    pub hash: u64,
}

impl Signature {
    /// The signature of `head` (only its first [`SIGNATURE_BYTES`] count).
    ///
    /// ```
    /// use logtail_core::file::Signature;
    /// let a = Signature::of(b"2024-01-01 first line\n");
    /// let b = Signature::of(b"2024-01-01 first line\nsecond\n");
    /// assert!(a.is_prefix_of(b"2024-01-01 first line\nsecond\n"));
    /// assert_ne!(a, b);
    /// ```
    pub fn of(head: &[u8]) -> Self {
        let head = &head[..head.len().min(SIGNATURE_BYTES)];
        Signature {
            len: head.len() as u32,
            hash: fnv1a(head),
        }
    }

    /// Whether `data` starts with the bytes this signature was made of.
    pub fn is_prefix_of(&self, data: &[u8]) -> bool {
        let n = self.len as usize;
        data.len() >= n && fnv1a(&data[..n]) == self.hash
    }

    /// Whether `data` starts with this signature's bytes, given
    /// [`prefix_hashes`] of `data`: O(1), for checking one new file against
    /// many signatures.
    pub fn is_prefix_of_hashed(&self, prefix_hashes: &[u64]) -> bool {
        prefix_hashes.get(self.len as usize) == Some(&self.hash)
    }

    /// Whether the signature covers the full [`SIGNATURE_BYTES`].
    pub fn is_complete(&self) -> bool {
        self.len as usize >= SIGNATURE_BYTES
    }
}

/// The signature hash of every prefix of `data[..min(len, 1024)]`:
/// element `i` is the hash of the first `i` bytes.
pub fn prefix_hashes(data: &[u8]) -> Vec<u64> {
    let data = &data[..data.len().min(SIGNATURE_BYTES)];
    let mut out = Vec::with_capacity(data.len() + 1);
    let mut h = Fnv1a64::new();
    out.push(h.finish());
    for &b in data {
        h.write_u8(b);
        out.push(h.finish());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_count() {
        assert_ne!(Signature::of(b"a\0b"), Signature::of(b"a\0c"));
        assert_eq!(Signature::of(b"a\0b").len, 3);
    }

    #[test]
    fn caps_at_1024() {
        let long = vec![b'x'; 5000];
        let s = Signature::of(&long);
        assert_eq!(s.len, 1024);
        assert!(s.is_complete());
        assert!(s.is_prefix_of(&long[..1024]));
        assert!(!s.is_prefix_of(&long[..1023]));
    }

    #[test]
    fn hashed_prefix_check_agrees_with_the_direct_one() {
        let data: Vec<u8> = (0..1500u32).map(|i| (i * 7 % 251) as u8).collect();
        let hashes = prefix_hashes(&data);
        for len in [0usize, 1, 17, 1023, 1024] {
            let sig = Signature::of(&data[..len]);
            assert!(sig.is_prefix_of_hashed(&hashes));
            assert!(sig.is_prefix_of(&data));
        }
        let other = Signature::of(b"not a prefix");
        assert!(!other.is_prefix_of_hashed(&hashes));
        // Longer than the data: never a prefix.
        assert!(!Signature::of(&[0u8; 10]).is_prefix_of_hashed(&prefix_hashes(&[0u8; 5])));
    }

    #[test]
    fn empty_is_prefix_of_everything() {
        assert!(Signature::of(b"").is_prefix_of(b"anything"));
    }
}
