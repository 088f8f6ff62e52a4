//! Reading a failed PutLogs response and deciding what to do about it.

use std::fmt;

/// What a sender should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient (5xx, `ServerBusy`, `InternalServerError`,
    /// `RequestTimeout`, a proxy's 502/504 page, and network errors and
    /// timeouts, which never reach [`classify`]): retry with backoff.
    Retry,
    /// Write quota exceeded (`WriteQuotaExceed`, `ShardWriteQuotaExceed`):
    /// back off and lower concurrency.
    Quota,
    /// Credentials wrong or expired (401 `Unauthorized`,
    /// `InvalidAccessKeyId`, expired or invalid STS token): refresh the
    /// credentials, retry slowly.
    Unauthorized,
    /// `RequestTimeExpired`: the local clock is off; correct it from the
    /// server's `Date` / `x-log-time` and retry.
    ClockSkew,
    /// The request itself is wrong (`SignatureNotMatch`, `PostBodyInvalid`,
    /// `PostBodyTooLarge`, `InvalidCompressType`, `InvalidBodyRawSize`,
    /// `ProjectNotExist`, `LogStoreNotExist`, `ParameterInvalid`, any other
    /// 4xx): retrying the same bytes will not help.
    Invalid,
}

/// An error response from SLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// HTTP status.
    pub status: u16,
    /// `errorCode` from the JSON body; empty when the body was not SLS JSON
    /// (a proxy's page).
    pub code: String,
    /// `errorMessage`, or the start of a non-JSON body (lossy UTF-8, at
    /// most [`MAX_MESSAGE`] bytes).
    pub message: String,
    /// `x-log-requestid`, to quote to support.
    pub request_id: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SLS returned HTTP {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// The longest message kept from a non-JSON body.
pub const MAX_MESSAGE: usize = 256;

#[derive(serde::Deserialize)]
struct Body {
    #[serde(rename = "errorCode", default)]
    code: Option<String>,
    #[serde(rename = "errorMessage", default)]
    message: Option<String>,
}

/// Reads an error response: the JSON body `{"errorCode", "errorMessage"}`,
/// or, when the body is not that (a proxy's HTML page), code `""` and the
/// body's start as the message.
///
/// ```
/// use logtail_core::sls::{classify, parse_error, ErrorClass};
/// let e = parse_error(403, Some("5F3A"), br#"{"errorCode":"WriteQuotaExceed","errorMessage":"quota"}"#);
/// assert_eq!(e.code, "WriteQuotaExceed");
/// assert_eq!(classify(&e), ErrorClass::Quota);
/// let e = parse_error(502, None, b"<html>Bad Gateway</html>");
/// assert_eq!((e.code.as_str(), classify(&e)), ("", ErrorClass::Retry));
/// ```
pub fn parse_error(status: u16, request_id: Option<&str>, body: &[u8]) -> ServerError {
    let (code, message) = match serde_json::from_slice::<Body>(body) {
        Ok(Body {
            code: Some(code),
            message,
        }) => (code, message.unwrap_or_default()),
        _ => (String::new(), truncated(body)),
    };
    ServerError {
        status,
        code,
        message,
        request_id: request_id.map(str::to_owned),
    }
}

fn truncated(body: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(&body[..body.len().min(MAX_MESSAGE)]);
    // U+FFFD takes 3 bytes where a bad byte took 1: cut again.
    let mut end = lossy.len().min(MAX_MESSAGE);
    while !lossy.is_char_boundary(end) {
        end -= 1;
    }
    let cut = body.len() > MAX_MESSAGE || end < lossy.len();
    let s = lossy[..end].trim();
    if cut {
        format!("{s}…")
    } else {
        s.to_owned()
    }
}

/// Decides what to do about an error response: by its code first, then
/// by its status (5xx and 408/429 retry, 401 unauthorized, other 4xx
/// invalid).
pub fn classify(err: &ServerError) -> ErrorClass {
    match err.code.as_str() {
        "WriteQuotaExceed" | "ShardWriteQuotaExceed" => ErrorClass::Quota,
        "ServerBusy" | "InternalServerError" | "RequestTimeout" => ErrorClass::Retry,
        "Unauthorized" | "InvalidAccessKeyId" | "SecurityTokenExpired" | "InvalidSecurityToken" => {
            ErrorClass::Unauthorized
        }
        "RequestTimeExpired" => ErrorClass::ClockSkew,
        "SignatureNotMatch"
        | "PostBodyInvalid"
        | "PostBodyTooLarge"
        | "InvalidCompressType"
        | "InvalidBodyRawSize"
        | "ProjectNotExist"
        | "LogStoreNotExist"
        | "ParameterInvalid" => ErrorClass::Invalid,
        _ => match err.status {
            401 => ErrorClass::Unauthorized,
            408 | 429 => ErrorClass::Retry,
            400..=499 => ErrorClass::Invalid,
            _ => ErrorClass::Retry,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(code: &str) -> Vec<u8> {
        format!(r#"{{"errorCode":"{code}","errorMessage":"m"}}"#).into_bytes()
    }

    #[test]
    fn classifies_the_documented_codes() {
        let cases = [
            (500, "InternalServerError", ErrorClass::Retry),
            (503, "ServerBusy", ErrorClass::Retry),
            (500, "RequestTimeout", ErrorClass::Retry),
            (403, "WriteQuotaExceed", ErrorClass::Quota),
            (403, "ShardWriteQuotaExceed", ErrorClass::Quota),
            (401, "Unauthorized", ErrorClass::Unauthorized),
            (401, "InvalidAccessKeyId", ErrorClass::Unauthorized),
            (401, "SecurityTokenExpired", ErrorClass::Unauthorized),
            (400, "RequestTimeExpired", ErrorClass::ClockSkew),
            (401, "SignatureNotMatch", ErrorClass::Invalid),
            (400, "PostBodyInvalid", ErrorClass::Invalid),
            (413, "PostBodyTooLarge", ErrorClass::Invalid),
            (400, "InvalidCompressType", ErrorClass::Invalid),
            (400, "InvalidBodyRawSize", ErrorClass::Invalid),
            (404, "ProjectNotExist", ErrorClass::Invalid),
            (404, "LogStoreNotExist", ErrorClass::Invalid),
            (400, "ParameterInvalid", ErrorClass::Invalid),
            (400, "SomethingNew", ErrorClass::Invalid),
            (503, "SomethingNew", ErrorClass::Retry),
        ];
        for (status, code, want) in cases {
            let e = parse_error(status, Some("rid"), &json(code));
            assert_eq!(e.code, code);
            assert_eq!(e.message, "m");
            assert_eq!(classify(&e), want, "{status} {code}");
        }
    }

    #[test]
    fn proxy_pages_have_no_code_and_classify_by_status() {
        for (status, want) in [
            (502, ErrorClass::Retry),
            (504, ErrorClass::Retry),
            (401, ErrorClass::Unauthorized),
            (429, ErrorClass::Retry),
            (404, ErrorClass::Invalid),
        ] {
            let e = parse_error(status, None, b"<html><body>Bad Gateway</body></html>");
            assert_eq!(e.code, "");
            assert_eq!(e.message, "<html><body>Bad Gateway</body></html>");
            assert_eq!(e.request_id, None);
            assert_eq!(classify(&e), want, "{status}");
        }
    }

    #[test]
    fn long_or_binary_bodies_are_truncated_lossily() {
        let mut body = vec![0xffu8; 3];
        body.extend(std::iter::repeat_n(b'x', 10_000));
        let e = parse_error(502, None, &body);
        assert!(
            e.message.len() <= MAX_MESSAGE + '…'.len_utf8(),
            "{}",
            e.message.len()
        );
        assert!(e.message.starts_with('\u{fffd}'));
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn json_without_error_code_is_treated_as_no_code() {
        let e = parse_error(500, None, br#"{"hello":"world"}"#);
        assert_eq!(e.code, "");
        assert_eq!(classify(&e), ErrorClass::Retry);
        let e = parse_error(400, None, br#"{"errorCode":"ParameterInvalid"}"#);
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("ParameterInvalid", "")
        );
    }

    #[test]
    fn display_names_status_code_message_and_request_id() {
        let e = parse_error(403, Some("ABC"), &json("WriteQuotaExceed"));
        assert_eq!(
            e.to_string(),
            "SLS returned HTTP 403 WriteQuotaExceed: m (request id ABC)"
        );
    }
}
