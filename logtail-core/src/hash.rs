//! FNV-1a (64-bit), the one non-cryptographic hash of logtail-rs.
//!
//! It names file heads in checkpoints ([`crate::file::Signature`]), so its
//! values are persisted: they must stay bit-identical across versions (the
//! tests pin them to the published FNV-1a test vectors). It is neither
//! keyed nor collision resistant; use it only where an accidental collision
//! costs little and nobody chooses the input to cause one.
//!
//! ```
//! use logtail_core::hash::{fnv1a64, Fnv1a64};
//! let mut h = Fnv1a64::new();
//! h.write(b"foo");
//! h.write(b"bar");
//! assert_eq!(h.finish(), fnv1a64(b"foobar"));
//! assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
//! ```

/// The FNV-1a 64-bit offset basis: the hash of no bytes.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV-1a 64-bit prime.
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The FNV-1a 64 hash of `data`.
#[inline]
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(data);
    h.finish()
}

/// An FNV-1a 64 hash fed piece by piece: writing `a` then `b` gives the
/// hash of `a` followed by `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// A hasher that has seen no bytes.
    #[inline]
    pub const fn new() -> Self {
        Fnv1a64(FNV1A64_OFFSET)
    }

    /// Feeds `data`.
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.write_u8(b);
        }
    }

    /// Feeds one byte.
    #[inline]
    pub fn write_u8(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV1A64_PRIME);
    }

    /// The hash of the bytes fed so far (feeding may go on).
    #[inline]
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors (Fowler, Noll, Vo).
    #[test]
    fn published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Checkpoints persist file head signatures: these values must never
    /// change, or every file would look new after an upgrade.
    #[test]
    fn persisted_signatures_stay_bit_identical() {
        let head = b"2024-01-01 12:00:00 first line\n";
        let sig = crate::file::Signature::of(head);
        assert_eq!(sig.len, 31);
        assert_eq!(sig.hash, 0xdb01_64d1_6f86_44e6);
        assert_eq!(sig.hash, fnv1a64(head));
        let hashes = crate::file::prefix_hashes(head);
        assert_eq!(hashes.first(), Some(&FNV1A64_OFFSET));
        assert_eq!(hashes.last(), Some(&sig.hash));
        // Only the first 1024 bytes count.
        let long: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let sig = crate::file::Signature::of(&long);
        assert_eq!((sig.len, sig.hash), (1024, fnv1a64(&long[..1024])));
        assert_eq!(sig.hash, 0x2233_e5fe_ed8d_a91d);
    }

    #[test]
    fn pieces_hash_as_the_whole() {
        let mut h = Fnv1a64::default();
        h.write(b"foo");
        h.write_u8(b'b');
        h.write(b"");
        h.write(b"ar");
        assert_eq!(h.finish(), fnv1a64(b"foobar"));
    }
}
