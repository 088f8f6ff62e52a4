//! MD5 of up to eight messages at once, one per 32-bit lane of AVX2
//! registers (multi-buffer MD5).
//!
//! MD5 is one long chain of dependent steps, so a single message cannot go
//! faster than about 5.7 cycles a byte on the machines we measured; eight
//! independent messages in the lanes of one register share each step's
//! instructions. The sink computes the Content-MD5 of several PutLogs
//! bodies at once this way when several LogGroups are ready together (a
//! file read from behind). Without AVX2 (or off x86-64) each message is
//! hashed on its own with the `md-5` crate.
//!
//! ```
//! use logtail_core::sls::md5_lanes::md5_many;
//! use md5::Digest;
//! let bodies: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 1000 + i]).collect();
//! let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
//! let digests = md5_many(&refs);
//! for (b, d) in bodies.iter().zip(&digests) {
//!     assert_eq!(&md5::Md5::digest(b)[..], &d[..]);
//! }
//! ```

/// The MD5 digest of each message, in order.
///
/// Messages of similar lengths share lanes (the lanes run as long as the
/// longest message); a group whose longest message would keep the lanes
/// mostly idle is hashed one message at a time instead.
pub fn md5_many(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; messages.len()];
    // Longest first, so each group of eight has similar lengths.
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(messages[i].len()));
    for group in order.chunks(8) {
        let lanes: Vec<&[u8]> = group.iter().map(|&i| messages[i]).collect();
        #[cfg(target_arch = "x86_64")]
        {
            let longest = lanes.first().map_or(0, |m| m.len());
            let total: usize = lanes.iter().map(|m| m.len()).sum();
            // Eight lanes cost about 8 × longest at 1/4 of the single-message
            // cost a byte: worth it when total > 2 × longest (3 to be safe).
            if total >= 3 * longest && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present (checked just above).
                let digests = unsafe { avx2::md5x8(&lanes) };
                for (&i, d) in group.iter().zip(digests) {
                    out[i] = d;
                }
                continue;
            }
        }
        for (&i, m) in group.iter().zip(&lanes) {
            out[i] = md5_one(m);
        }
    }
    out
}

/// The MD5 digest of one message (the `md-5` crate).
pub fn md5_one(message: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(message).into()
}

/// The MD5 padding of a message of `len` bytes after its last whole
/// block: the remaining bytes, `0x80`, zeros and the bit length; one or two
/// blocks. Returns the buffer and how many blocks of it are used.
fn tail_blocks(message: &[u8]) -> ([u8; 128], usize) {
    let rest = &message[message.len() / 64 * 64..];
    let mut buf = [0u8; 128];
    buf[..rest.len()].copy_from_slice(rest);
    buf[rest.len()] = 0x80;
    let blocks = if rest.len() < 56 { 1 } else { 2 };
    let bits = (message.len() as u64).wrapping_mul(8);
    buf[blocks * 64 - 8..blocks * 64].copy_from_slice(&bits.to_le_bytes());
    (buf, blocks)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::tail_blocks;

    /// The 16 message words of one block in each lane: lane `l` of word `i`
    /// is word `i` of the block at `blocks[l]`. Eight 32-byte rows are
    /// transposed twice.
    ///
    /// # Safety
    /// Each pointer must point at 64 readable bytes; AVX2 must be present.
    #[target_feature(enable = "avx2")]
    unsafe fn load_words(blocks: &[*const u8; 8]) -> [__m256i; 16] {
        let mut w = [_mm256_setzero_si256(); 16];
        for half in 0..2 {
            let row = |l: usize| {
                // SAFETY: 64 readable bytes at each pointer (the caller's
                // promise); unaligned loads.
                unsafe { _mm256_loadu_si256(blocks[l].add(half * 32) as *const __m256i) }
            };
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
            // 8x8 transpose of 32-bit elements.
            let t0 = _mm256_unpacklo_epi32(r0, r1);
            let t1 = _mm256_unpackhi_epi32(r0, r1);
            let t2 = _mm256_unpacklo_epi32(r2, r3);
            let t3 = _mm256_unpackhi_epi32(r2, r3);
            let t4 = _mm256_unpacklo_epi32(r4, r5);
            let t5 = _mm256_unpackhi_epi32(r4, r5);
            let t6 = _mm256_unpacklo_epi32(r6, r7);
            let t7 = _mm256_unpackhi_epi32(r6, r7);
            let u0 = _mm256_unpacklo_epi64(t0, t2);
            let u1 = _mm256_unpackhi_epi64(t0, t2);
            let u2 = _mm256_unpacklo_epi64(t1, t3);
            let u3 = _mm256_unpackhi_epi64(t1, t3);
            let u4 = _mm256_unpacklo_epi64(t4, t6);
            let u5 = _mm256_unpackhi_epi64(t4, t6);
            let u6 = _mm256_unpacklo_epi64(t5, t7);
            let u7 = _mm256_unpackhi_epi64(t5, t7);
            let o = half * 8;
            w[o] = _mm256_permute2x128_si256::<0x20>(u0, u4);
            w[o + 1] = _mm256_permute2x128_si256::<0x20>(u1, u5);
            w[o + 2] = _mm256_permute2x128_si256::<0x20>(u2, u6);
            w[o + 3] = _mm256_permute2x128_si256::<0x20>(u3, u7);
            w[o + 4] = _mm256_permute2x128_si256::<0x31>(u0, u4);
            w[o + 5] = _mm256_permute2x128_si256::<0x31>(u1, u5);
            w[o + 6] = _mm256_permute2x128_si256::<0x31>(u2, u6);
            w[o + 7] = _mm256_permute2x128_si256::<0x31>(u3, u7);
        }
        w
    }

    /// MD5 of up to eight messages (`messages.len()` in 1..=8); unused
    /// lanes hash nothing and their digests are to be ignored.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn md5x8(messages: &[&[u8]]) -> [[u8; 16]; 8] {
        // A static, so pointers to it stay valid (a const would be a temporary).
        static EMPTY: [u8; 64] = [0; 64];
        let mut tails = [([0u8; 128], 0usize); 8];
        let mut full = [0usize; 8];
        let mut total = [0usize; 8];
        for (l, m) in messages.iter().enumerate().take(8) {
            tails[l] = tail_blocks(m);
            full[l] = m.len() / 64;
            total[l] = full[l] + tails[l].1;
        }
        let lanes = messages.len().min(8);
        let rounds = total.iter().copied().max().unwrap_or(0);
        // Rounds in which every lane in use reads a whole block of its
        // message, and in which every lane is still hashing.
        let all_full = full[..lanes].iter().copied().min().unwrap_or(0);
        let all_live = total[..lanes].iter().copied().min().unwrap_or(0);
        let mut a = _mm256_set1_epi32(0x6745_2301_u32 as i32);
        let mut b = _mm256_set1_epi32(0xefcd_ab89_u32 as i32);
        let mut c = _mm256_set1_epi32(0x98ba_dcfe_u32 as i32);
        let mut d = _mm256_set1_epi32(0x1032_5476_u32 as i32);
        let mut live = [0i32; 8];
        for n in 0..rounds {
            let mut blocks = [EMPTY.as_ptr(); 8];
            if n < all_full {
                // The bulk: straight from the messages.
                for (l, m) in messages.iter().enumerate().take(lanes) {
                    // SAFETY: n < full[l], so bytes n*64 .. n*64+64 are in `m`.
                    blocks[l] = unsafe { m.as_ptr().add(n * 64) };
                }
            } else {
                for l in 0..lanes {
                    if n < full[l] {
                        blocks[l] = messages[l][n * 64..n * 64 + 64].as_ptr();
                    } else if n < total[l] {
                        let at = (n - full[l]) * 64;
                        blocks[l] = tails[l].0[at..at + 64].as_ptr();
                    }
                    live[l] = if n < total[l] { -1 } else { 0 };
                }
            }
            // SAFETY: every pointer is at 64 readable bytes (a message's
            // full block, a padded tail, or EMPTY); AVX2 is enabled here.
            let w = unsafe { load_words(&blocks) };
            let (a0, b0, c0, d0) = (a, b, c, d);
            macro_rules! f {
                ($x:expr, $y:expr, $z:expr) => {
                    _mm256_or_si256(_mm256_and_si256($x, $y), _mm256_andnot_si256($x, $z))
                };
            }
            macro_rules! g {
                ($x:expr, $y:expr, $z:expr) => {
                    _mm256_or_si256(_mm256_and_si256($x, $z), _mm256_andnot_si256($z, $y))
                };
            }
            macro_rules! h {
                ($x:expr, $y:expr, $z:expr) => {
                    _mm256_xor_si256(_mm256_xor_si256($x, $y), $z)
                };
            }
            macro_rules! i {
                ($x:expr, $y:expr, $z:expr) => {
                    _mm256_xor_si256(
                        $y,
                        _mm256_or_si256($x, _mm256_xor_si256($z, _mm256_set1_epi32(-1))),
                    )
                };
            }
            macro_rules! step {
                ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $s:literal, $w:literal) => {
                    let t = _mm256_add_epi32(
                        _mm256_add_epi32($a, $fun!($b, $c, $d)),
                        _mm256_add_epi32(_mm256_set1_epi32($k as i32), w[$w]),
                    );
                    let r = _mm256_or_si256(
                        _mm256_slli_epi32::<$s>(t),
                        _mm256_srli_epi32::<{ 32 - $s }>(t),
                    );
                    $a = _mm256_add_epi32($b, r);
                };
            }
            step!(f, a, b, c, d, 0xd76aa478_u32, 7, 0);
            step!(f, d, a, b, c, 0xe8c7b756_u32, 12, 1);
            step!(f, c, d, a, b, 0x242070db_u32, 17, 2);
            step!(f, b, c, d, a, 0xc1bdceee_u32, 22, 3);
            step!(f, a, b, c, d, 0xf57c0faf_u32, 7, 4);
            step!(f, d, a, b, c, 0x4787c62a_u32, 12, 5);
            step!(f, c, d, a, b, 0xa8304613_u32, 17, 6);
            step!(f, b, c, d, a, 0xfd469501_u32, 22, 7);
            step!(f, a, b, c, d, 0x698098d8_u32, 7, 8);
            step!(f, d, a, b, c, 0x8b44f7af_u32, 12, 9);
            step!(f, c, d, a, b, 0xffff5bb1_u32, 17, 10);
            step!(f, b, c, d, a, 0x895cd7be_u32, 22, 11);
            step!(f, a, b, c, d, 0x6b901122_u32, 7, 12);
            step!(f, d, a, b, c, 0xfd987193_u32, 12, 13);
            step!(f, c, d, a, b, 0xa679438e_u32, 17, 14);
            step!(f, b, c, d, a, 0x49b40821_u32, 22, 15);
            step!(g, a, b, c, d, 0xf61e2562_u32, 5, 1);
            step!(g, d, a, b, c, 0xc040b340_u32, 9, 6);
            step!(g, c, d, a, b, 0x265e5a51_u32, 14, 11);
            step!(g, b, c, d, a, 0xe9b6c7aa_u32, 20, 0);
            step!(g, a, b, c, d, 0xd62f105d_u32, 5, 5);
            step!(g, d, a, b, c, 0x02441453_u32, 9, 10);
            step!(g, c, d, a, b, 0xd8a1e681_u32, 14, 15);
            step!(g, b, c, d, a, 0xe7d3fbc8_u32, 20, 4);
            step!(g, a, b, c, d, 0x21e1cde6_u32, 5, 9);
            step!(g, d, a, b, c, 0xc33707d6_u32, 9, 14);
            step!(g, c, d, a, b, 0xf4d50d87_u32, 14, 3);
            step!(g, b, c, d, a, 0x455a14ed_u32, 20, 8);
            step!(g, a, b, c, d, 0xa9e3e905_u32, 5, 13);
            step!(g, d, a, b, c, 0xfcefa3f8_u32, 9, 2);
            step!(g, c, d, a, b, 0x676f02d9_u32, 14, 7);
            step!(g, b, c, d, a, 0x8d2a4c8a_u32, 20, 12);
            step!(h, a, b, c, d, 0xfffa3942_u32, 4, 5);
            step!(h, d, a, b, c, 0x8771f681_u32, 11, 8);
            step!(h, c, d, a, b, 0x6d9d6122_u32, 16, 11);
            step!(h, b, c, d, a, 0xfde5380c_u32, 23, 14);
            step!(h, a, b, c, d, 0xa4beea44_u32, 4, 1);
            step!(h, d, a, b, c, 0x4bdecfa9_u32, 11, 4);
            step!(h, c, d, a, b, 0xf6bb4b60_u32, 16, 7);
            step!(h, b, c, d, a, 0xbebfbc70_u32, 23, 10);
            step!(h, a, b, c, d, 0x289b7ec6_u32, 4, 13);
            step!(h, d, a, b, c, 0xeaa127fa_u32, 11, 0);
            step!(h, c, d, a, b, 0xd4ef3085_u32, 16, 3);
            step!(h, b, c, d, a, 0x04881d05_u32, 23, 6);
            step!(h, a, b, c, d, 0xd9d4d039_u32, 4, 9);
            step!(h, d, a, b, c, 0xe6db99e5_u32, 11, 12);
            step!(h, c, d, a, b, 0x1fa27cf8_u32, 16, 15);
            step!(h, b, c, d, a, 0xc4ac5665_u32, 23, 2);
            step!(i, a, b, c, d, 0xf4292244_u32, 6, 0);
            step!(i, d, a, b, c, 0x432aff97_u32, 10, 7);
            step!(i, c, d, a, b, 0xab9423a7_u32, 15, 14);
            step!(i, b, c, d, a, 0xfc93a039_u32, 21, 5);
            step!(i, a, b, c, d, 0x655b59c3_u32, 6, 12);
            step!(i, d, a, b, c, 0x8f0ccc92_u32, 10, 3);
            step!(i, c, d, a, b, 0xffeff47d_u32, 15, 10);
            step!(i, b, c, d, a, 0x85845dd1_u32, 21, 1);
            step!(i, a, b, c, d, 0x6fa87e4f_u32, 6, 8);
            step!(i, d, a, b, c, 0xfe2ce6e0_u32, 10, 15);
            step!(i, c, d, a, b, 0xa3014314_u32, 15, 6);
            step!(i, b, c, d, a, 0x4e0811a1_u32, 21, 13);
            step!(i, a, b, c, d, 0xf7537e82_u32, 6, 4);
            step!(i, d, a, b, c, 0xbd3af235_u32, 10, 11);
            step!(i, c, d, a, b, 0x2ad7d2bb_u32, 15, 2);
            step!(i, b, c, d, a, 0xeb86d391_u32, 21, 9);
            if n < all_live {
                a = _mm256_add_epi32(a, a0);
                b = _mm256_add_epi32(b, b0);
                c = _mm256_add_epi32(c, c0);
                d = _mm256_add_epi32(d, d0);
                continue;
            }
            // Lanes whose message ended keep their digest.
            // SAFETY: `live` is 8 i32s = 32 readable bytes; unaligned load.
            let mask = unsafe { _mm256_loadu_si256(live.as_ptr() as *const __m256i) };
            a = _mm256_blendv_epi8(a0, _mm256_add_epi32(a, a0), mask);
            b = _mm256_blendv_epi8(b0, _mm256_add_epi32(b, b0), mask);
            c = _mm256_blendv_epi8(c0, _mm256_add_epi32(c, c0), mask);
            d = _mm256_blendv_epi8(d0, _mm256_add_epi32(d, d0), mask);
        }
        let mut words = [[0u32; 8]; 4];
        for (v, out) in [a, b, c, d].iter().zip(words.iter_mut()) {
            // SAFETY: `out` is 8 u32s = 32 writable bytes; unaligned store.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, *v) };
        }
        let mut digests = [[0u8; 16]; 8];
        for (l, digest) in digests.iter_mut().enumerate() {
            for (j, word) in words.iter().enumerate() {
                digest[j * 4..j * 4 + 4].copy_from_slice(&word[l].to_le_bytes());
            }
        }
        digests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_digests() {
        let d = md5_many(&[b"", b"abc", b"message digest"]);
        assert_eq!(
            crate::sls::sign::hex(&d[0], false),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            crate::sls::sign::hex(&d[1], false),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            crate::sls::sign::hex(&d[2], false),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
    }

    #[test]
    fn every_length_around_the_padding_edges() {
        // Lengths where the padding takes one block or two, in every lane.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for base in [0usize, 50, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128] {
            let msgs: Vec<&[u8]> = (0..8).map(|l| &data[..base + l]).collect();
            let got = md5_many(&msgs);
            for (m, d) in msgs.iter().zip(&got) {
                assert_eq!(*d, md5_one(m), "length {}", m.len());
            }
        }
    }

    #[test]
    fn uneven_lengths_in_any_order() {
        let long = vec![7u8; 100_000];
        let short: Vec<Vec<u8>> = (0..11).map(|i| vec![i as u8; 100 + i * 50]).collect();
        let mut msgs: Vec<&[u8]> = short.iter().map(|m| m.as_slice()).collect();
        msgs.insert(5, &long);
        let got = md5_many(&msgs);
        for (m, d) in msgs.iter().zip(&got) {
            assert_eq!(*d, md5_one(m), "length {}", m.len());
        }
    }

    proptest! {
        #[test]
        fn equals_one_at_a_time(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 0..20)) {
            let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            let got = md5_many(&refs);
            prop_assert_eq!(got.len(), msgs.len());
            for (m, d) in msgs.iter().zip(&got) {
                prop_assert_eq!(*d, md5_one(m));
            }
        }
    }
}
