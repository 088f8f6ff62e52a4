//! SLS request signing: v1 (HMAC-SHA1) and v4 (`SLS4-HMAC-SHA256`), and the
//! [`Credentials`] they use.
//!
//! Both signers are pure: they take the request's parts and give the
//! `Authorization` header value. [`put_logs`](super::put_logs) calls them
//! with the headers it built.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A secret string (AccessKey secret, STS token) whose `Debug` and
/// `Display` print `***`, never the value.
///
/// ```
/// use logtail_core::sls::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "*** ***");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for signing or for the header that must carry it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// An AccessKey pair, with an STS security token when the key is temporary.
///
/// `Debug` shows the key id only:
///
/// ```
/// use logtail_core::sls::Credentials;
/// let c = Credentials::new("LTAIid", "s3cr3t", Some("tok3n".into()));
/// let dbg = format!("{c:?}");
/// assert!(dbg.contains("LTAIid"));
/// assert!(!dbg.contains("s3cr3t") && !dbg.contains("tok3n"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret: Secret,
    security_token: Option<Secret>,
}

impl Credentials {
    /// Credentials from an AccessKey id, its secret and, for STS, a token.
    pub fn new(
        access_key_id: impl Into<String>,
        secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret: Secret(secret.into()),
            security_token: security_token.map(Secret),
        }
    }

    /// The AccessKey id (not secret: it is sent in `Authorization`).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The STS security token, sent as `x-acs-security-token`.
    pub fn security_token(&self) -> Option<&Secret> {
        self.security_token.as_ref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &self.secret)
            .field("security_token", &self.security_token)
            .finish()
    }
}

/// Which signature a request carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// HMAC-SHA1 over method, MD5, type, date and `x-log-*`/`x-acs-*`
    /// headers; what LoongCollector sends by default.
    #[default]
    V1,
    /// `SLS4-HMAC-SHA256`, scoped to a region (`cn-hangzhou`, …).
    V4 {
        /// The endpoint's region id.
        region: String,
    },
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v)
}

/// The v1 string to sign (exposed for tests and debugging; it holds no
/// secret).
pub fn string_to_sign_v1(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> String {
    let mut s = String::with_capacity(256);
    for part in [
        method,
        header(headers, "content-md5"),
        header(headers, "content-type"),
        header(headers, "date"),
    ] {
        s.push_str(part);
        s.push('\n');
    }
    let mut log_headers: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .filter(|(k, _)| k.starts_with("x-log-") || k.starts_with("x-acs-"))
        .collect();
    log_headers.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in &log_headers {
        s.push_str(k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(path);
    if !query.is_empty() {
        let mut q = query.to_vec();
        q.sort_by(|a, b| a.0.cmp(b.0));
        for (i, (k, v)) in q.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// The v1 `Authorization` value, `LOG <AccessKeyId>:<base64 HMAC-SHA1>`.
///
/// `headers` are all the request's headers (any case); the ones signed are
/// `Content-MD5`, `Content-Type`, `Date` and every `x-log-*` / `x-acs-*`
/// (so an STS token header must already be among them). `query` values are
/// signed as they are, not URL-encoded.
///
/// ```
/// use logtail_core::sls::{sign_v1, Credentials};
/// let creds = Credentials::new("mockAccessKeyID", "mockAccessKeySecret", None);
/// let auth = sign_v1(&creds, "GET", "/logstores", &[], &[
///     ("x-log-apiversion", "0.6.0"),
///     ("x-log-bodyrawsize", "0"),
///     ("x-log-signaturemethod", "hmac-sha1"),
///     ("Date", "Mon, 3 Jan 2010 08:33:47 GMT"),
/// ]);
/// assert_eq!(auth, "LOG mockAccessKeyID:Rwm6cTKzoti4HWoe+GKcb6Kv07E=");
/// ```
pub fn sign_v1(
    creds: &Credentials,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> String {
    let message = string_to_sign_v1(method, path, query, headers);
    // HMAC accepts keys of any length: this cannot fail.
    let sig = match Hmac::<Sha1>::new_from_slice(creds.secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("LOG {}:{sig}", creds.access_key_id)
}

/// SHA-256 of an empty payload, lowercase hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Lowercase hex SHA-256 of a body (the `x-log-content-sha256` header).
pub fn content_sha256(body: &[u8]) -> String {
    hex(&Sha256::digest(body), false)
}

/// Hex of `bytes`, two digits a byte, in lower or upper case (SHA-256
/// and hash keys are written in lower case, `Content-MD5` in upper case).
///
/// ```
/// assert_eq!(logtail_core::sls::sign::hex(&[0x0a, 0xff], false), "0aff");
/// assert_eq!(logtail_core::sls::sign::hex(&[0x0a, 0xff], true), "0AFF");
/// ```
pub fn hex(bytes: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(digits[usize::from(b >> 4)] as char);
        s.push(digits[usize::from(b & 15)] as char);
    }
    s
}

/// Percent-encodes all but the RFC 3986 unreserved characters (and `/`
/// when `keep_slash`), space as `%20`.
fn uri_encode(s: &str, keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// The v4 canonical request (exposed for tests and debugging; it holds no
/// secret).
pub fn canonical_request_v4(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> String {
    let mut s = String::with_capacity(512);
    s.push_str(method);
    s.push('\n');
    uri_encode(path, true, &mut s);
    s.push('\n');
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| {
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(k, false, &mut ek);
            uri_encode(v, false, &mut ev);
            (ek, ev)
        })
        .collect();
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        if !v.is_empty() {
            s.push('=');
            s.push_str(v);
        }
    }
    s.push('\n');
    let signed = signed_headers(headers);
    for (k, v) in &signed {
        s.push_str(k);
        s.push(':');
        s.push_str(v.trim());
        s.push('\n');
    }
    s.push('\n');
    for (i, (k, _)) in signed.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(k);
    }
    s.push('\n');
    s.push_str(payload_sha256);
    s
}

/// `content-type`, `host` and `x-log-*` / `x-acs-*` headers, lower-cased
/// and sorted (a repeated name keeps its last value).
fn signed_headers<'a>(headers: &[(&str, &'a str)]) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &str)> = Vec::with_capacity(headers.len());
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k == "content-type" || k == "host" || k.starts_with("x-log-") || k.starts_with("x-acs-")
        {
            match out.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// The v4 `Authorization` value:
/// `SLS4-HMAC-SHA256 Credential=<id>/<date>/<region>/sls/aliyun_v4_request,Signature=<hex>`.
///
/// `headers` must hold `x-log-date` (`YYYYMMDDTHHMMSSZ`, which also dates
/// the scope) and `x-log-content-sha256` = `payload_sha256` (lowercase hex
/// SHA-256 of the body as sent, [`EMPTY_SHA256`] for none). Signed are
/// `content-type`, `host` and every `x-log-*` / `x-acs-*` header (values
/// trimmed). `path` is signed percent-encoded (slashes kept); query keys
/// and values are percent-encoded and sorted, an empty value leaving the
/// key alone.
///
/// ```
/// use logtail_core::sls::{content_sha256, sign_v4, Credentials};
/// let creds = Credentials::new("acsddda21dsd", "zxasdasdasw2", None);
/// let body = b"adasd= -asd zcas";
/// let sha = content_sha256(body);
/// let auth = sign_v4(&creds, "cn-shanghai", "POST", "/logstores", &[], &[
///     ("x-log-date", "20220808T032330Z"),
///     ("x-log-content-sha256", &sha),
/// ], &sha);
/// assert!(auth.ends_with("Signature=8a10a5e723cb2e75964816de660b2c16a58af8bc0261f7f0722d832468c76ce8"));
/// ```
pub fn sign_v4(
    creds: &Credentials,
    region: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> String {
    let date_time = header(headers, "x-log-date");
    let date = date_time.get(..8).unwrap_or(date_time);
    let scope = format!("{date}/{region}/sls/aliyun_v4_request");
    let canonical = canonical_request_v4(method, path, query, headers, payload_sha256);
    let string_to_sign = format!(
        "SLS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()), false)
    );
    let mut key = hmac_sha256(
        format!("aliyun_v4{}", creds.secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, "sls", "aliyun_v4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let sig = hex(&hmac_sha256(&key, string_to_sign.as_bytes()), false);
    format!(
        "SLS4-HMAC-SHA256 Credential={}/{scope},Signature={sig}",
        creds.access_key_id
    )
}

#[cfg(test)]
mod tests;
