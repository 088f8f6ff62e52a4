//! The sans-I/O half of the SLS (Alibaba Cloud Log Service) PutLogs
//! flusher: encoding events into a `LogGroup`, compressing it, building and
//! signing the request, and classifying error responses. Nothing here
//! opens a socket; a sink feeds these functions and sends what they give.
//!
//! One request, end to end:
//!
//! ```
//! use std::time::SystemTime;
//! use bytes::Bytes;
//! use logtail_core::sls::*;
//! use logtail_core::{Event, Timestamp};
//!
//! let mut group = LogGroupBuilder::new();
//! group.push(&Event::line(Bytes::from_static(b"GET / 200"), 0, Timestamp::now()));
//! let raw = group.finish(&GroupMeta { source: Some("10.0.0.1"), ..GroupMeta::default() });
//!
//! let mut body = Vec::new();
//! compress(CompressType::Lz4, &raw, &mut body).unwrap();
//!
//! let creds = Credentials::new("id", "secret", None);
//! let req = put_logs(&PutLogs {
//!     project: "proj",
//!     logstore: "app",
//!     host: "proj.cn-hangzhou.log.aliyuncs.com",
//!     hash_key: None,
//!     compress: CompressType::Lz4,
//!     raw_size: raw.len(),
//!     body: &body,
//!     body_md5: None,
//!     date: SystemTime::now(),
//!     signature: &SignatureVersion::V1,
//! }, &creds);
//! assert_eq!(req.header("x-log-bodyrawsize"), Some(raw.len().to_string().as_str()));
//! ```

pub mod compress;
pub mod md5_lanes;
pub mod proto;
pub mod request;
pub mod response;
pub mod sign;

pub use compress::{compress, decompress, CompressError, CompressType, UnknownCompressType};
pub use proto::{
    decode_log_group, decode_log_group_list, encoded_log_len, DecodeError, DecodeErrorKind,
    GroupMeta, Log, LogGroup, LogGroupBuilder,
};
pub use request::{
    content_md5, http_date, iso8601_basic, parse_http_date, put_logs, HttpRequest, PutLogs,
};
pub use response::{classify, parse_error, ErrorClass, ServerError};
pub use sign::{content_sha256, sign_v1, sign_v4, Credentials, Secret, SignatureVersion};
