//! Building a signed PutLogs request: method, path and headers; the body is
//! the caller's (already compressed) bytes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use super::compress::CompressType;
use super::sign::{self, Credentials, SignatureVersion};

/// One PutLogs call to describe.
#[derive(Debug, Clone, Copy)]
pub struct PutLogs<'a> {
    /// The project.
    pub project: &'a str,
    /// The logstore.
    pub logstore: &'a str,
    /// The `Host` header value exactly as sent (signature v4 signs it),
    /// port included when the endpoint names one:
    /// `{project}.{endpoint}`, also for an IP endpoint
    /// (`proj.10.0.0.5:8080`), since SLS finds the project there, as the
    /// official SDKs send it. A host without the `{project}.` prefix gets
    /// `x-log-project` as well (as LoongCollector adds it), but SLS answers
    /// such a request `ProjectNotExist`.
    pub host: &'a str,
    /// `Some(key)`: `/shards/route?key=KEY` (the shard owning that hash);
    /// `None`: `/shards/lb` (the server picks).
    pub hash_key: Option<&'a str>,
    /// How `body` is compressed.
    pub compress: CompressType,
    /// Size of the uncompressed `LogGroup` (`x-log-bodyrawsize`).
    pub raw_size: usize,
    /// The body as sent (compressed).
    pub body: &'a [u8],
    /// The body's MD5 when already known (several bodies hash about four
    /// times faster together: [`md5_many`](super::md5_lanes::md5_many));
    /// `None`: computed here.
    pub body_md5: Option<[u8; 16]>,
    /// The request time (`Date`, `x-log-date`); correct it for clock skew
    /// with [`parse_http_date`] on the server's `Date`.
    pub date: SystemTime,
    /// Which signature to add.
    pub signature: &'a SignatureVersion,
}

/// A request to send: method, path with query, and headers (names in
/// lower case). The body is the [`PutLogs::body`] it was built from.
///
/// `Debug` prints `Authorization` and `x-acs-security-token` as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST`.
    pub method: &'static str,
    /// The request target, e.g. `/logstores/app/shards/lb`.
    pub path_and_query: String,
    /// Every header, in a fixed order.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_sensitive(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("x-acs-security-token")
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(k, v)| {
                        let v = if is_sensitive(k) { "***" } else { v.as_str() };
                        (k.as_str(), v)
                    }))
                    .finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query)
            .field("headers", &Headers(&self.headers))
            .finish()
    }
}

/// Uppercase hex MD5 of a body (`Content-MD5` as SLS wants it).
pub fn content_md5(body: &[u8]) -> String {
    super::sign::hex(&Md5::digest(body), true)
}

/// Builds the signed PutLogs request.
///
/// Headers: `content-type`, `content-length`, `content-md5` (when the body
/// is not empty), `date` (v1) or `x-log-date` + `x-log-content-sha256`
/// (v4), `host`, `x-log-apiversion: 0.6.0`, `x-log-signaturemethod:
/// hmac-sha1` (v1), `x-log-bodyrawsize`, `x-log-compresstype` (unless
/// uncompressed), `x-log-project` (when `host` lacks the project prefix),
/// `x-acs-security-token` (STS), and `authorization`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use logtail_core::sls::{put_logs, CompressType, Credentials, PutLogs, SignatureVersion};
/// let creds = Credentials::new("id", "secret", None);
/// let req = put_logs(&PutLogs {
///     project: "proj",
///     logstore: "app",
///     host: "proj.cn-hangzhou.log.aliyuncs.com",
///     hash_key: None,
///     compress: CompressType::Lz4,
///     raw_size: 100,
///     body: b"compressed",
///     body_md5: None,
///     date: UNIX_EPOCH + Duration::from_secs(1_262_507_627),
///     signature: &SignatureVersion::V1,
/// }, &creds);
/// assert_eq!(req.method, "POST");
/// assert_eq!(req.path_and_query, "/logstores/app/shards/lb");
/// assert_eq!(req.header("Date"), Some("Sun, 03 Jan 2010 08:33:47 GMT"));
/// assert!(req.header("authorization").unwrap().starts_with("LOG id:"));
/// ```
pub fn put_logs(req: &PutLogs<'_>, creds: &Credentials) -> HttpRequest {
    let path = format!(
        "/logstores/{}/shards/{}",
        req.logstore,
        match req.hash_key {
            Some(_) => "route",
            None => "lb",
        }
    );
    let query: Vec<(&str, &str)> = req.hash_key.map(|k| ("key", k)).into_iter().collect();
    let mut path_and_query = String::with_capacity(path.len() + 48);
    path_and_query.push_str(&path);
    if let Some(key) = req.hash_key {
        path_and_query.push_str("?key=");
        query_encode(key, &mut path_and_query);
    }

    let mut headers: Vec<(&str, String)> = Vec::with_capacity(14);
    headers.push(("content-type", "application/x-protobuf".to_owned()));
    headers.push(("content-length", req.body.len().to_string()));
    if !req.body.is_empty() {
        let md5 = match req.body_md5 {
            Some(d) => {
                // A wrong digest would have SLS refuse the group as invalid.
                debug_assert_eq!(d, super::md5_lanes::md5_one(req.body), "body_md5");
                super::sign::hex(&d, true)
            }
            None => content_md5(req.body),
        };
        headers.push(("content-md5", md5));
    }
    headers.push(("host", req.host.to_owned()));
    headers.push(("x-log-apiversion", "0.6.0".to_owned()));
    headers.push(("x-log-bodyrawsize", req.raw_size.to_string()));
    if let Some(c) = req.compress.header_value() {
        headers.push(("x-log-compresstype", c.to_owned()));
    }
    let prefixed = req
        .host
        .strip_prefix(req.project)
        .is_some_and(|rest| rest.starts_with('.'));
    if !prefixed {
        headers.push(("x-log-project", req.project.to_owned()));
    }
    if let Some(token) = creds.security_token() {
        headers.push(("x-acs-security-token", token.expose().to_owned()));
    }
    let payload_sha = match req.signature {
        SignatureVersion::V1 => {
            headers.push(("date", http_date(req.date)));
            headers.push(("x-log-signaturemethod", "hmac-sha1".to_owned()));
            None
        }
        SignatureVersion::V4 { .. } => {
            let sha = if req.body.is_empty() {
                sign::EMPTY_SHA256.to_owned()
            } else {
                sign::content_sha256(req.body)
            };
            headers.push(("x-log-date", iso8601_basic(req.date)));
            headers.push(("x-log-content-sha256", sha.clone()));
            Some(sha)
        }
    };
    let auth = {
        let view: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match (req.signature, &payload_sha) {
            (SignatureVersion::V4 { region }, Some(sha)) => {
                sign::sign_v4(creds, region, "POST", &path, &query, &view, sha)
            }
            _ => sign::sign_v1(creds, "POST", &path, &query, &view),
        }
    };
    headers.push(("authorization", auth));
    HttpRequest {
        method: "POST",
        path_and_query,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

fn query_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hms: (u64, u64, u64),
}

fn civil(t: SystemTime) -> Civil {
    // Times before 1970 are not request times: clamp to the epoch.
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    Civil {
        year,
        month,
        day,
        weekday: (days % 7) as usize,
        hms: (rem / 3600, rem / 60 % 60, rem % 60),
    }
}

/// RFC 1123 date in GMT, as the `Date` header wants it:
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use logtail_core::sls::http_date;
/// assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn http_date(t: SystemTime) -> String {
    let c = civil(t);
    let (h, m, s) = c.hms;
    format!(
        "{}, {:02} {} {:04} {h:02}:{m:02}:{s:02} GMT",
        DAYS[c.weekday],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year
    )
}

/// `YYYYMMDDTHHMMSSZ` (the v4 `x-log-date`).
pub fn iso8601_basic(t: SystemTime) -> String {
    let c = civil(t);
    let (h, m, s) = c.hms;
    format!(
        "{:04}{:02}{:02}T{h:02}{m:02}{s:02}Z",
        c.year, c.month, c.day
    )
}

/// Parses an RFC 1123 `Date` header (`Sun, 06 Nov 1994 08:49:37 GMT`; a
/// one-digit day and `UTC` are accepted), for clock-skew correction.
/// `None` for anything else.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use logtail_core::sls::parse_http_date;
/// assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
///            Some(UNIX_EPOCH + Duration::from_secs(784_111_777)));
/// assert_eq!(parse_http_date("yesterday"), None);
/// ```
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (wd, rest) = s.split_once(", ")?;
    if !DAYS.contains(&wd) {
        return None;
    }
    let mut parts = rest.split(' ');
    let day: u32 = parse_digits(parts.next()?, 1, 2)?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let year: u32 = parse_digits(parts.next()?, 4, 4)?;
    let mut hms = parts.next()?.split(':');
    let h: u32 = parse_digits(hms.next()?, 2, 2)?;
    let mi: u32 = parse_digits(hms.next()?, 2, 2)?;
    let se: u32 = parse_digits(hms.next()?, 2, 2)?;
    if hms.next().is_some() || !matches!(parts.next()?, "GMT" | "UTC") || parts.next().is_some() {
        return None;
    }
    if year < 1970 || day == 0 || day > 31 || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    // Reject 31 Feb and friends: they would not round-trip.
    if civil_from_days(days) != (i64::from(year), month, day) {
        return None;
    }
    let secs = days as u64 * 86_400 + u64::from(h * 3600 + mi * 60 + se);
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn parse_digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
