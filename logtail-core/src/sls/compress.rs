//! Body compression for PutLogs: `lz4` (a raw LZ4 block, no size prefix;
//! the reader sizes its buffer from `x-log-bodyrawsize`) and `zstd` (one
//! frame).

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

/// The zstd level used by [`compress`]. On a 512 KiB group of nginx-like
/// lines (the `sls` bench, `sls_zstd_level`) levels 1 to 3 all ran at
/// 1.2–1.5 GiB/s (within noise on a shared machine) and level 3's output
/// was 2% smaller; level 1 is zstd's fastest standard level.
pub const ZSTD_LEVEL: i32 = 1;

/// How a PutLogs body is compressed (`x-log-compresstype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompressType {
    /// Sent as is; no `x-log-compresstype` header.
    None,
    /// A raw LZ4 block (what LoongCollector sends by default).
    #[default]
    Lz4,
    /// One zstd frame.
    Zstd,
}

impl CompressType {
    /// The `x-log-compresstype` header value, `None` for no compression.
    pub fn header_value(&self) -> Option<&'static str> {
        match self {
            CompressType::None => None,
            CompressType::Lz4 => Some("lz4"),
            CompressType::Zstd => Some("zstd"),
        }
    }
}

impl fmt::Display for CompressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_value().unwrap_or("none"))
    }
}

/// A config string that names no [`CompressType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?}: expected \"lz4\", \"zstd\" or \"none\"")]
pub struct UnknownCompressType(pub String);

impl FromStr for CompressType {
    type Err = UnknownCompressType;

    /// `"lz4"`, `"zstd"`, and `"none"` or `""` for none, in any case.
    ///
    /// ```
    /// use logtail_core::sls::CompressType;
    /// assert_eq!("LZ4".parse(), Ok(CompressType::Lz4));
    /// assert_eq!("".parse(), Ok(CompressType::None));
    /// assert!("gzip".parse::<CompressType>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lz4" => Ok(CompressType::Lz4),
            "zstd" => Ok(CompressType::Zstd),
            "" | "none" => Ok(CompressType::None),
            _ => Err(UnknownCompressType(s.to_owned())),
        }
    }
}

/// A body that cannot be compressed or decompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// zstd failed to compress (out of memory).
    #[error("zstd compression failed: {0}")]
    ZstdCompress(#[source] std::io::Error),
    /// lz4 did not fit its output (cannot happen with the bound we size
    /// the output to; reported rather than sending an empty body).
    #[error("lz4 compression failed: {0}")]
    Lz4Compress(#[source] lz4_flex::block::CompressError),
    /// The declared raw size is above the caller's limit.
    #[error("declared raw size {raw_size} exceeds the limit of {max_raw} bytes")]
    RawSizeTooLarge {
        /// `x-log-bodyrawsize`.
        raw_size: usize,
        /// The limit.
        max_raw: usize,
    },
    /// The LZ4 block is malformed or does not fit `raw_size`.
    #[error("lz4 body does not decompress to {raw_size} bytes: {source}")]
    Lz4 {
        /// The declared raw size.
        raw_size: usize,
        /// What lz4 said.
        #[source]
        source: lz4_flex::block::DecompressError,
    },
    /// The zstd frame is malformed or larger than `raw_size`.
    #[error("zstd body does not decompress to {raw_size} bytes: {source}")]
    Zstd {
        /// The declared raw size.
        raw_size: usize,
        /// What zstd said.
        #[source]
        source: std::io::Error,
    },
    /// The body decompressed to another size than declared.
    #[error("{kind} body decompressed to {actual} bytes, {expected} declared")]
    SizeMismatch {
        /// The compression.
        kind: CompressType,
        /// The declared raw size.
        expected: usize,
        /// What came out.
        actual: usize,
    },
}

thread_local! {
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `raw` into `out`, replacing its contents (its capacity is
/// reused).
///
/// ```
/// use logtail_core::sls::{compress, decompress, CompressType};
/// let raw = b"hello hello hello hello".repeat(10);
/// let mut body = Vec::new();
/// compress(CompressType::Lz4, &raw, &mut body).unwrap();
/// assert!(body.len() < raw.len());
/// assert_eq!(decompress(CompressType::Lz4, &body, raw.len(), 1 << 20).unwrap(), raw);
/// ```
pub fn compress(kind: CompressType, raw: &[u8], out: &mut Vec<u8>) -> Result<(), CompressError> {
    out.clear();
    match kind {
        CompressType::None => out.extend_from_slice(raw),
        // Into a new buffer without zeroing it first (the usual case: each
        // body moves on with its request).
        CompressType::Lz4 if out.capacity() == 0 => *out = lz4_flex::block::compress(raw),
        CompressType::Lz4 => {
            out.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
            // Cannot fail: `out` has the maximum output size.
            match lz4_flex::block::compress_into(raw, out) {
                Ok(n) => out.truncate(n),
                Err(e) => {
                    out.clear();
                    return Err(CompressError::Lz4Compress(e));
                }
            }
        }
        CompressType::Zstd => {
            out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
            ZSTD.with(|cell| {
                let mut slot = cell.borrow_mut();
                let compressor = match &mut *slot {
                    Some(c) => c,
                    none => none.insert(
                        zstd::bulk::Compressor::new(ZSTD_LEVEL)
                            .map_err(CompressError::ZstdCompress)?,
                    ),
                };
                compressor
                    .compress_to_buffer(raw, out)
                    .map_err(CompressError::ZstdCompress)
            })?;
        }
    }
    Ok(())
}

/// Decompresses a body that declares `raw_size` bytes (`x-log-bodyrawsize`),
/// refusing more than `max_raw`; the result must be exactly `raw_size`
/// bytes long. Never allocates more than `raw_size`.
pub fn decompress(
    kind: CompressType,
    body: &[u8],
    raw_size: usize,
    max_raw: usize,
) -> Result<Vec<u8>, CompressError> {
    if raw_size > max_raw {
        return Err(CompressError::RawSizeTooLarge { raw_size, max_raw });
    }
    let out = match kind {
        CompressType::None => body.to_vec(),
        CompressType::Lz4 => {
            let mut out = vec![0u8; raw_size];
            let n = lz4_flex::block::decompress_into(body, &mut out)
                .map_err(|source| CompressError::Lz4 { raw_size, source })?;
            out.truncate(n);
            out
        }
        CompressType::Zstd => {
            let mut out = vec![0u8; raw_size];
            let n = zstd::bulk::decompress_to_buffer(body, &mut out)
                .map_err(|source| CompressError::Zstd { raw_size, source })?;
            out.truncate(n);
            out
        }
    };
    if out.len() != raw_size {
        return Err(CompressError::SizeMismatch {
            kind,
            expected: raw_size,
            actual: out.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..2000u32)
            .flat_map(|i| format!("line {i} GET /api/items/{} 200\n", i % 17).into_bytes())
            .collect()
    }

    #[test]
    fn parses_config_strings() {
        for (s, want) in [
            ("lz4", CompressType::Lz4),
            ("LZ4", CompressType::Lz4),
            ("Zstd", CompressType::Zstd),
            ("none", CompressType::None),
            ("NONE", CompressType::None),
            ("", CompressType::None),
        ] {
            assert_eq!(s.parse::<CompressType>(), Ok(want), "{s}");
        }
        let err = "deflate".parse::<CompressType>().unwrap_err();
        assert!(err.to_string().contains("\"deflate\""), "{err}");
        assert!(err.to_string().contains("lz4"), "{err}");
    }

    #[test]
    fn header_values() {
        assert_eq!(CompressType::None.header_value(), None);
        assert_eq!(CompressType::Lz4.header_value(), Some("lz4"));
        assert_eq!(CompressType::Zstd.header_value(), Some("zstd"));
    }

    #[test]
    fn round_trips_every_kind_and_replaces_out() {
        let raw = sample();
        for kind in [CompressType::None, CompressType::Lz4, CompressType::Zstd] {
            let mut out = b"stale".to_vec();
            compress(kind, &raw, &mut out).unwrap();
            if kind != CompressType::None {
                assert!(out.len() < raw.len() / 3, "{kind}: {}", out.len());
            }
            let back = decompress(kind, &out, raw.len(), raw.len()).unwrap();
            assert_eq!(back, raw, "{kind}");
        }
    }

    #[test]
    fn empty_input_round_trips() {
        for kind in [CompressType::None, CompressType::Lz4, CompressType::Zstd] {
            let mut out = Vec::new();
            compress(kind, b"", &mut out).unwrap();
            assert_eq!(decompress(kind, &out, 0, 0).unwrap(), b"", "{kind}");
        }
    }

    #[test]
    fn lz4_is_a_raw_block_the_c_library_reads() {
        let raw = sample();
        let mut out = Vec::new();
        compress(CompressType::Lz4, &raw, &mut out).unwrap();
        let back = lz4::block::decompress(&out, Some(raw.len() as i32)).unwrap();
        assert_eq!(back, raw);
        // And the other way: a block from the C library decodes here.
        let c = lz4::block::compress(&raw, None, false).unwrap();
        assert_eq!(
            decompress(CompressType::Lz4, &c, raw.len(), raw.len()).unwrap(),
            raw
        );
    }

    #[test]
    fn zstd_is_one_standard_frame() {
        let raw = sample();
        let mut out = Vec::new();
        compress(CompressType::Zstd, &raw, &mut out).unwrap();
        assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), raw);
    }

    #[test]
    fn raw_size_above_limit_is_refused_before_allocating() {
        let err = decompress(CompressType::Lz4, b"\x00", usize::MAX, 10 << 20).unwrap_err();
        assert!(
            matches!(err, CompressError::RawSizeTooLarge { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn wrong_raw_size_is_an_error() {
        let raw = sample();
        for kind in [CompressType::None, CompressType::Lz4, CompressType::Zstd] {
            let mut out = Vec::new();
            compress(kind, &raw, &mut out).unwrap();
            // Declared too small: the output does not fit.
            assert!(
                decompress(kind, &out, raw.len() - 1, usize::MAX).is_err(),
                "{kind}"
            );
            // Declared too large: the output falls short.
            let err = decompress(kind, &out, raw.len() + 1, usize::MAX).unwrap_err();
            assert!(
                matches!(
                    err,
                    CompressError::SizeMismatch { .. } | CompressError::Lz4 { .. }
                ),
                "{kind}: {err}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for kind in [CompressType::Lz4, CompressType::Zstd] {
            for body in [
                &b""[..],
                b"\xff\xff\xff\xff",
                b"\x28\xb5\x2f\xfd\x00",
                b"\x1f",
            ] {
                assert!(decompress(kind, body, 64, 64).is_err(), "{kind} {body:?}");
            }
        }
    }
}
