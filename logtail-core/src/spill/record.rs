//! The spill file format as pure functions over bytes: segment headers,
//! record framing, and resynchronisation after damage. No I/O here.
//!
//! # Segment header (16 bytes)
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `LTSPILL\n` |
//! | 8..12 | format version, u32 little-endian ([`FORMAT_VERSION`]) |
//! | 12..16 | CRC-32 of bytes 0..12, little-endian |
//!
//! # Record (24-byte header, then the payload)
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | record magic [`RECORD_MAGIC`] |
//! | 4..8 | payload length, u32 little-endian |
//! | 8..16 | creation time, nanoseconds since the Unix epoch, u64 little-endian |
//! | 16..20 | CRC-32 of the payload |
//! | 20..24 | CRC-32 of bytes 0..20 (the header CRC) |
//! | 24.. | payload |
//!
//! The header CRC covers the length, so a length is only trusted once its
//! header checks out: a damaged length can never send the reader past good
//! records. After a damaged header the reader *resynchronises*: it scans
//! forward byte by byte for the next position holding the record magic
//! followed by a header whose CRC matches ([`find_header`]). Payloads are
//! opaque and may contain the magic, but a false match also needs a 32-bit
//! CRC to agree (about one chance in 2³² per magic occurrence).

use std::ops::Range;

use crc32fast::Hasher;

/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LTSPILL\n";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Magic at the start of every record: not ASCII, not a common binary
/// pattern (zeros, 0xff), so torn or zero-filled regions never match it.
pub const RECORD_MAGIC: [u8; 4] = [0xd3, 0x5b, 0x1a, 0xc7];
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 24;
/// Largest payload a record can hold (the length field is 32 bits).
pub const MAX_PAYLOAD_LEN: u64 = u32::MAX as u64;

/// Why a segment header is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentHeaderError {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes: a segment torn while it was
    /// being created.
    Truncated,
    /// Not a spill segment, or a damaged header.
    Invalid,
    /// A valid header of a newer format version.
    Newer(u32),
}

/// Appends a segment header to `out`.
pub fn encode_segment_header(out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&SEGMENT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks the segment header at the start of `buf`.
///
/// # Errors
///
/// [`SegmentHeaderError`] saying whether the header is short, damaged (or
/// not ours), or of a newer version.
pub fn decode_segment_header(buf: &[u8]) -> Result<(), SegmentHeaderError> {
    let Some(header) = buf.get(..SEGMENT_HEADER_LEN) else {
        return Err(SegmentHeaderError::Truncated);
    };
    if header[..8] != SEGMENT_MAGIC || crc32fast::hash(&header[..12]) != le32(&header[12..16]) {
        return Err(SegmentHeaderError::Invalid);
    }
    match le32(&header[8..12]) {
        FORMAT_VERSION => Ok(()),
        v if v > FORMAT_VERSION => Err(SegmentHeaderError::Newer(v)),
        _ => Err(SegmentHeaderError::Invalid),
    }
}

/// A record header whose CRC checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_nanos: u64,
    /// CRC-32 of the payload.
    pub payload_crc: u32,
}

impl RecordHeader {
    /// Header plus payload.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// Whether `payload` is the payload this header describes.
    pub fn payload_matches(&self, payload: &[u8]) -> bool {
        payload.len() as u64 == u64::from(self.payload_len)
            && crc32fast::hash(payload) == self.payload_crc
    }
}

/// Result of [`decode_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderDecoded {
    /// A valid header.
    Valid(RecordHeader),
    /// Fewer than [`RECORD_HEADER_LEN`] bytes.
    Short,
    /// Wrong magic or header CRC.
    Invalid,
}

/// Decodes the record header at the start of `buf`.
pub fn decode_header(buf: &[u8]) -> HeaderDecoded {
    let Some(h) = buf.get(..RECORD_HEADER_LEN) else {
        return HeaderDecoded::Short;
    };
    if h[..4] != RECORD_MAGIC || crc32fast::hash(&h[..20]) != le32(&h[20..24]) {
        return HeaderDecoded::Invalid;
    }
    HeaderDecoded::Valid(RecordHeader {
        payload_len: le32(&h[4..8]),
        created_nanos: le64(&h[8..16]),
        payload_crc: le32(&h[16..20]),
    })
}

/// Appends one record to `out`.
///
/// # Panics
///
/// If `payload` is longer than [`MAX_PAYLOAD_LEN`]; callers check first
/// (the queue refuses such payloads with an error).
pub fn encode_record(created_nanos: u64, payload: &[u8], out: &mut Vec<u8>) {
    // Invariant of the callers, not outside data.
    #[allow(clippy::expect_used)]
    let len = u32::try_from(payload.len()).expect("payload length checked by the caller");
    let start = out.len();
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&created_nanos.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let mut hasher = Hasher::new();
    hasher.update(&out[start..]);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// The first position in `buf` where a complete, valid record header
/// starts (the resynchronisation scan). Positions whose header would run
/// past the end of `buf` are not considered: a caller scanning a file in
/// chunks overlaps them by `RECORD_HEADER_LEN - 1` bytes.
pub fn find_header(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(buf, &RECORD_MAGIC)
        .take_while(|&i| i + RECORD_HEADER_LEN <= buf.len())
        .find(|&i| matches!(decode_header(&buf[i..]), HeaderDecoded::Valid(_)))
}

/// Result of [`decode_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record of `len` bytes at the start of the buffer.
    Record {
        /// Its header.
        header: RecordHeader,
        /// Where its payload is in the buffer.
        payload: Range<usize>,
        /// Header plus payload.
        len: usize,
    },
    /// The buffer ends inside a record (or is empty): more bytes could
    /// complete it. At the end of a file this is a torn write.
    Incomplete,
    /// The bytes up to `skip_to` are not a valid record: a damaged header
    /// (then `skip_to` is the next valid header, or the buffer's end if
    /// there is none) or a valid header with a damaged payload (then
    /// `skip_to` is the record's end, as its header says).
    Corrupt {
        /// Where decoding can go on.
        skip_to: usize,
        /// Whether the header was valid and only the payload damaged.
        payload_only: bool,
    },
}

/// Decodes the record at the start of `buf`. Never panics.
pub fn decode_record(buf: &[u8]) -> Decoded {
    match decode_header(buf) {
        HeaderDecoded::Short => {
            // A short tail is torn if it could still become a record;
            // bytes that cannot start one are corrupt.
            let n = buf.len().min(RECORD_MAGIC.len());
            if buf[..n] == RECORD_MAGIC[..n] {
                Decoded::Incomplete
            } else {
                Decoded::Corrupt {
                    skip_to: buf.len(),
                    payload_only: false,
                }
            }
        }
        HeaderDecoded::Invalid => Decoded::Corrupt {
            skip_to: resync(buf),
            payload_only: false,
        },
        HeaderDecoded::Valid(header) => {
            let len = header.record_len();
            if len > buf.len() as u64 {
                return Decoded::Incomplete;
            }
            // Fits in buf, so in usize.
            let len = len as usize;
            let payload = RECORD_HEADER_LEN..len;
            if header.payload_matches(&buf[payload.clone()]) {
                Decoded::Record {
                    header,
                    payload,
                    len,
                }
            } else {
                Decoded::Corrupt {
                    skip_to: len,
                    payload_only: true,
                }
            }
        }
    }
}

/// Where decoding goes on after a damaged header at the start of `buf`.
fn resync(buf: &[u8]) -> usize {
    let rest = buf.get(1..).unwrap_or_default();
    find_header(rest).map_or(buf.len(), |i| i + 1)
}

/// Everything [`decode_all`] found in a buffer of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedAll {
    /// The intact records, in order: header and payload range.
    pub records: Vec<(RecordHeader, Range<usize>)>,
    /// Damaged regions followed by more data, each skipped as one corrupt
    /// record (a region may have held several).
    pub corrupt: Vec<Range<usize>>,
    /// Where a damaged or incomplete tail starts that no valid record
    /// follows: at the end of a file, a torn write.
    pub torn_from: Option<usize>,
}

/// Decodes a whole buffer of records (no segment header), the way the
/// queue treats a segment's content. Never panics.
pub fn decode_all(buf: &[u8]) -> DecodedAll {
    let mut out = DecodedAll::default();
    let mut pos = 0;
    while pos < buf.len() {
        match decode_record(&buf[pos..]) {
            Decoded::Record {
                header,
                payload,
                len,
            } => {
                out.records
                    .push((header, pos + payload.start..pos + payload.end));
                pos += len;
            }
            Decoded::Incomplete => {
                out.torn_from = Some(pos);
                break;
            }
            Decoded::Corrupt {
                skip_to,
                payload_only,
            } => {
                let end = pos + skip_to;
                if end >= buf.len() && !payload_only {
                    out.torn_from = Some(pos);
                    break;
                }
                out.corrupt.push(pos..end);
                pos = end;
            }
        }
    }
    out
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(records: &[(u64, Vec<u8>)]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        for (created, payload) in records {
            let start = out.len();
            encode_record(*created, payload, &mut out);
            spans.push(start..out.len());
        }
        (out, spans)
    }

    fn payloads(buf: &[u8], all: &DecodedAll) -> Vec<(u64, Vec<u8>)> {
        all.records
            .iter()
            .map(|(h, r)| (h.created_nanos, buf[r.clone()].to_vec()))
            .collect()
    }

    #[test]
    fn round_trip_and_layout() {
        let mut out = Vec::new();
        encode_record(7, b"hello", &mut out);
        assert_eq!(out.len(), RECORD_HEADER_LEN + 5);
        assert_eq!(out[..4], RECORD_MAGIC);
        assert_eq!(out[4..8], 5u32.to_le_bytes());
        assert_eq!(out[8..16], 7u64.to_le_bytes());
        match decode_record(&out) {
            Decoded::Record {
                header,
                payload,
                len,
            } => {
                assert_eq!(header.created_nanos, 7);
                assert_eq!(&out[payload], b"hello");
                assert_eq!(len, out.len());
            }
            other => panic!("{other:?}"),
        }
        // An empty payload is a valid record.
        let mut empty = Vec::new();
        encode_record(0, b"", &mut empty);
        assert!(matches!(
            decode_record(&empty),
            Decoded::Record { len: 24, .. }
        ));
    }

    #[test]
    fn segment_header() {
        let mut h = Vec::new();
        encode_segment_header(&mut h);
        assert_eq!(h.len(), SEGMENT_HEADER_LEN);
        assert_eq!(decode_segment_header(&h), Ok(()));
        assert_eq!(
            decode_segment_header(&h[..10]),
            Err(SegmentHeaderError::Truncated)
        );
        let mut bad = h.clone();
        bad[3] ^= 1;
        assert_eq!(
            decode_segment_header(&bad),
            Err(SegmentHeaderError::Invalid)
        );
        let mut newer = SEGMENT_MAGIC.to_vec();
        newer.extend_from_slice(&2u32.to_le_bytes());
        let crc = crc32fast::hash(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_segment_header(&newer),
            Err(SegmentHeaderError::Newer(2))
        );
    }

    #[test]
    fn damaged_length_resyncs_to_next_record() {
        let (mut buf, spans) = encode_all(&[(1, vec![1; 40]), (2, vec![2; 40]), (3, vec![3; 40])]);
        // A length claiming 4 GiB: the header CRC rejects it.
        buf[spans[1].start + 4..spans[1].start + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        match decode_record(&buf[spans[1].start..]) {
            Decoded::Corrupt {
                skip_to,
                payload_only: false,
            } => assert_eq!(skip_to, spans[1].len()),
            other => panic!("{other:?}"),
        }
        let all = decode_all(&buf);
        assert_eq!(
            payloads(&buf, &all),
            vec![(1, vec![1; 40]), (3, vec![3; 40])]
        );
        assert_eq!(all.corrupt, vec![spans[1].clone()]);
        assert_eq!(all.torn_from, None);
    }

    #[test]
    fn damaged_payload_skips_by_its_valid_header() {
        let (mut buf, spans) = encode_all(&[(1, vec![1; 40]), (2, vec![2; 40])]);
        buf[spans[0].start + 30] ^= 0x80;
        let all = decode_all(&buf);
        assert_eq!(payloads(&buf, &all), vec![(2, vec![2; 40])]);
        assert_eq!(all.corrupt, vec![spans[0].clone()]);
    }

    #[test]
    fn torn_tails() {
        let (buf, spans) = encode_all(&[(1, vec![1; 40]), (2, vec![2; 40])]);
        for cut in spans[1].start + 1..spans[1].end {
            let all = decode_all(&buf[..cut]);
            assert_eq!(all.records.len(), 1, "cut at {cut}");
            assert_eq!(all.torn_from, Some(spans[1].start), "cut at {cut}");
            assert!(all.corrupt.is_empty());
        }
        // Zeros after the last record (a file extended but not written).
        let mut zeros = buf.clone();
        zeros.extend_from_slice(&[0; 100]);
        let all = decode_all(&zeros);
        assert_eq!(all.records.len(), 2);
        assert_eq!(all.torn_from, Some(buf.len()));
        assert_eq!(decode_all(&[]), DecodedAll::default());
    }

    #[test]
    fn magic_inside_a_payload_is_not_a_record() {
        let mut payload = RECORD_MAGIC.to_vec();
        payload.extend_from_slice(&[0; 30]);
        let (mut buf, spans) = encode_all(&[(1, vec![9; 8]), (2, payload), (3, vec![7; 8])]);
        buf[spans[0].start] ^= 1;
        let all = decode_all(&buf);
        assert_eq!(all.records.len(), 2);
        assert_eq!(all.corrupt, vec![spans[0].clone()]);
    }

    fn arb_records() -> impl Strategy<Value = Vec<(u64, Vec<u8>)>> {
        proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..100)),
            1..8,
        )
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let all = decode_all(&bytes);
            for (h, r) in &all.records {
                prop_assert!(h.payload_matches(&bytes[r.clone()]));
            }
        }

        #[test]
        fn truncation_keeps_every_complete_record(records in arb_records(), at in any::<prop::sample::Index>()) {
            let (buf, spans) = encode_all(&records);
            let cut = at.index(buf.len() + 1);
            let all = decode_all(&buf[..cut]);
            let complete = spans.iter().filter(|s| s.end <= cut).count();
            prop_assert_eq!(payloads(&buf, &all), records[..complete].to_vec());
            prop_assert!(all.corrupt.is_empty());
            if cut == 0 || spans.iter().any(|s| s.end == cut) {
                prop_assert_eq!(all.torn_from, None);
            } else {
                prop_assert_eq!(all.torn_from, Some(spans[complete].start));
            }
        }

        #[test]
        fn flipped_byte_loses_only_its_record(
            records in arb_records(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mut buf, spans) = encode_all(&records);
            let i = at.index(buf.len());
            buf[i] ^= flip;
            let hit = spans.iter().position(|s| s.contains(&i)).unwrap();
            let all = decode_all(&buf);
            let mut expected = records.clone();
            expected.remove(hit);
            prop_assert_eq!(payloads(&buf, &all), expected);
            if hit + 1 < records.len() {
                prop_assert_eq!(all.corrupt.len(), 1);
                prop_assert_eq!(all.torn_from, None);
            } else {
                // The last record damaged: a corrupt payload, or a torn tail.
                prop_assert_eq!(all.corrupt.len() + usize::from(all.torn_from.is_some()), 1);
            }
        }
    }
}
