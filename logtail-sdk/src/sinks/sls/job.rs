//! A sealed LogGroup on its way to SLS, and its spill-queue encoding.
//!
//! The spill queue stores opaque payloads; this is the payload: what is
//! needed to send the request again (the compressed body and its raw size,
//! the compression and the shard hash key). Date and signature are made
//! anew at replay, so a replayed request is never rejected as expired.

use bytes::Bytes;
use logtail_core::sls::CompressType;

/// Magic and version at the start of a spilled job.
const MAGIC: &[u8; 4] = b"LTJ1";

/// A request body ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The compressed LogGroup.
    pub body: Bytes,
    /// Size of the LogGroup before compression (`x-log-bodyrawsize`).
    pub raw_size: u32,
    /// How `body` is compressed.
    pub compress: CompressType,
    /// Events in the group (for counters).
    pub events: u32,
    /// `ShardHashKeys` route: `/shards/route?key=…`.
    pub hash_key: Option<String>,
    /// MD5 of `body` when computed ahead (several at once); not spilled,
    /// `None` after a replay (computed when sent).
    pub md5: Option<[u8; 16]>,
}

/// A spilled job could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobDecodeError {
    /// Shorter than its fixed header or than the lengths it declares.
    #[error("spilled job truncated: {len} bytes, needed {needed}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header declares.
        needed: usize,
    },
    /// Not a job of this version.
    #[error("spilled job has unknown magic {0:02x?}")]
    Magic([u8; 4]),
    /// Unknown compression code.
    #[error("spilled job has unknown compression code {0}")]
    Compress(u8),
    /// The hash key is not UTF-8.
    #[error("spilled job has a hash key that is not UTF-8")]
    HashKey,
}

fn compress_code(c: CompressType) -> u8 {
    match c {
        CompressType::None => 0,
        CompressType::Lz4 => 1,
        CompressType::Zstd => 2,
    }
}

impl Job {
    /// Appends the spill encoding: magic, compression, raw size, events,
    /// hash-key length and bytes, then the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let key = self.hash_key.as_deref().unwrap_or("").as_bytes();
        out.reserve(16 + key.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.push(compress_code(self.compress));
        out.push(u8::from(self.hash_key.is_some()));
        out.extend_from_slice(&self.raw_size.to_le_bytes());
        out.extend_from_slice(&self.events.to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&self.body);
    }

    /// Decodes [`Job::encode`]'s output.
    pub fn decode(buf: &[u8]) -> Result<Job, JobDecodeError> {
        const HEAD: usize = 4 + 1 + 1 + 4 + 4 + 4;
        let truncated = |needed| JobDecodeError::Truncated {
            len: buf.len(),
            needed,
        };
        if buf.len() < HEAD {
            return Err(truncated(HEAD));
        }
        let u32_at = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        if &buf[..4] != MAGIC {
            return Err(JobDecodeError::Magic([buf[0], buf[1], buf[2], buf[3]]));
        }
        let compress = match buf[4] {
            0 => CompressType::None,
            1 => CompressType::Lz4,
            2 => CompressType::Zstd,
            other => return Err(JobDecodeError::Compress(other)),
        };
        let has_key = buf[5] != 0;
        let raw_size = u32_at(6);
        let events = u32_at(10);
        let key_len = u32_at(14) as usize;
        let body_at = HEAD.saturating_add(key_len);
        if buf.len() < body_at {
            return Err(truncated(body_at));
        }
        let hash_key = if has_key {
            Some(
                std::str::from_utf8(&buf[HEAD..body_at])
                    .map_err(|_| JobDecodeError::HashKey)?
                    .to_string(),
            )
        } else {
            None
        };
        Ok(Job {
            body: Bytes::copy_from_slice(&buf[body_at..]),
            raw_size,
            compress,
            events,
            hash_key,
            md5: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_and_errors() {
        let job = Job {
            body: Bytes::from_static(b"\x01\x02body"),
            raw_size: 77,
            compress: CompressType::Lz4,
            events: 3,
            hash_key: Some("abc".into()),
            md5: None,
        };
        let mut buf = Vec::new();
        job.encode(&mut buf);
        assert_eq!(Job::decode(&buf).unwrap(), job);
        assert!(matches!(
            Job::decode(&buf[..10]),
            Err(JobDecodeError::Truncated { .. })
        ));
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert!(matches!(Job::decode(&bad), Err(JobDecodeError::Magic(_))));
        let mut bad = buf.clone();
        bad[4] = 9;
        assert_eq!(Job::decode(&bad), Err(JobDecodeError::Compress(9)));
        let mut bad = buf;
        bad[14] = 0xff;
        bad[17] = 0xff;
        assert!(matches!(
            Job::decode(&bad),
            Err(JobDecodeError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Job::decode(&buf);
        }

        #[test]
        fn any_job_roundtrips(body in proptest::collection::vec(any::<u8>(), 0..256),
                              raw in any::<u32>(), events in any::<u32>(),
                              key in proptest::option::of("[a-z0-9]{0,40}")) {
            let job = Job { body: body.into(), raw_size: raw, compress: CompressType::Zstd, events, hash_key: key, md5: None };
            let mut buf = Vec::new();
            job.encode(&mut buf);
            prop_assert_eq!(Job::decode(&buf).unwrap(), job);
        }
    }
}
