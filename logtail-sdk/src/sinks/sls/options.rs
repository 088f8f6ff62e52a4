//! `flusher_sls` options as LoongCollector names them, and the endpoint.

use std::net::IpAddr;
use std::time::Duration;

use logtail_core::sls::CompressType;

/// When an open LogGroup is sealed and sent (LoongCollector's values by
/// default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Seal once the encoded group reaches this many bytes (512 KiB).
    pub max_bytes: usize,
    /// Seal once it holds this many events (4 000).
    pub max_events: usize,
    /// Seal once its first event waited this long (3 s).
    pub max_age: Duration,
    /// Never let a group grow above this (8 MiB; SLS takes about 10 MiB).
    pub hard_max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_bytes: 512 << 10,
            max_events: 4000,
            max_age: Duration::from_secs(3),
            hard_max_bytes: 8 << 20,
        }
    }
}

/// Where requests go.
///
/// The `Host` header always names the project, `{project}.{host}[:port]`,
/// as the official SDKs and LoongCollector send it: SLS finds the project
/// there. A host name endpoint is also connected to under that name (SLS
/// resolves `{project}.{endpoint}`); an IP address (or `localhost`) is
/// connected to as it is, with the project still in `Host`.
///
/// ```
/// use logtail_sdk::sinks::sls::Endpoint;
/// let e = Endpoint::parse("cn-hangzhou.log.aliyuncs.com").unwrap();
/// assert_eq!(e.url_base("proj"), "https://proj.cn-hangzhou.log.aliyuncs.com");
/// assert_eq!(e.host_header("proj"), "proj.cn-hangzhou.log.aliyuncs.com");
/// let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
/// assert_eq!(e.url_base("proj"), "http://127.0.0.1:8080");
/// assert_eq!(e.host_header("proj"), "proj.127.0.0.1:8080");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// HTTPS (the default for a bare host) or plain HTTP.
    pub https: bool,
    /// Host name or address, without port.
    pub host: String,
    /// Explicit port.
    pub port: Option<u16>,
    /// Whether requests connect to `{project}.{host}` (host names), or to
    /// `host` itself (IP addresses and `localhost`, which have no
    /// per-project names). The `Host` header names the project either way.
    pub project_in_url: bool,
}

impl Endpoint {
    /// Parses `host`, `http://host[:port]` or `https://host[:port]`.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let s = s.trim();
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if s.contains("://") {
            return Err(format!(
                "unsupported scheme in {s:?} (use a host, http://host:port or https://host:port)"
            ));
        } else {
            (true, s)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
            return Err(format!(
                "{s:?} is not an endpoint (expected e.g. cn-hangzhou.log.aliyuncs.com)"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("bad port {p:?} in endpoint {s:?}"))?;
                (h.to_string(), Some(port))
            }
            _ => (rest.to_string(), None),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let is_addr = bare.parse::<IpAddr>().is_ok() || bare == "localhost";
        Ok(Endpoint {
            https,
            host,
            port,
            project_in_url: !is_addr,
        })
    }

    /// `host[:port]`, the port only when the endpoint names one.
    fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The `Host` header for `project`: `{project}.{host}[:port]` for
    /// every endpoint, addresses included (LoongCollector's
    /// `SetCommonHeader` and the Python SDK's `LogClient._send` do the
    /// same). Signature v4 signs this value.
    pub fn host_header(&self, project: &str) -> String {
        format!("{project}.{}", self.authority())
    }

    /// `scheme://…`, to which the request path is appended: the host name
    /// with the project in front (`https://proj.cn-hangzhou…`), or the
    /// address itself (`http://10.0.0.5:8080`).
    pub fn url_base(&self, project: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.project_in_url {
            format!("{scheme}://{}", self.host_header(project))
        } else {
            format!("{scheme}://{}", self.authority())
        }
    }
}

/// The options of one `flusher_sls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlsOptions {
    /// `Project`.
    pub project: String,
    /// `Logstore`.
    pub logstore: String,
    /// `Region` (needed by signature v4).
    pub region: String,
    /// `Endpoint`.
    pub endpoint: Endpoint,
    /// `CompressType`: lz4 (default), zstd or none.
    pub compress: CompressType,
    /// `SignatureVersion`: v1 (default) or v4.
    pub signature_v4: bool,
    /// `ShardHashKeys`: route each event by the hash of these fields.
    pub shard_hash_keys: Vec<String>,
    /// `Topic` of every LogGroup.
    pub topic: Option<String>,
    /// Batching.
    pub batch: BatchLimits,
    /// `MaxConcurrency`: requests in flight at most (8).
    pub concurrency: usize,
    /// `RetryTimeoutSecs`: how long a group is retried before it goes to
    /// the disk buffer (30 s).
    pub retry_timeout: Duration,
    /// `RequestTimeoutSecs`: one request's time limit (30 s).
    pub request_timeout: Duration,
    /// `MaxSendRate`: bytes per second on the wire, 0 for no limit.
    pub max_send_rate: u64,
    /// `ReplayMaxBytesPerSec`: pace of replaying the disk buffer (5 MiB/s).
    pub replay_rate: u64,
    /// `DiskBufferMaxBytes`: size of the disk buffer (1 GiB).
    pub disk_buffer_max_bytes: u64,
    /// `DiskBufferTTLSecs`: age after which buffered data is dropped (24 h).
    pub disk_buffer_ttl: Duration,
    /// `AliUid`: the account the logstore belongs to; the host must
    /// authorise it.
    pub ali_uid: Option<String>,
    /// Test hook, not a feature: the `n`-th PutLogs request of this sink
    /// (from 1) panics after it is signed and before its body is sent, as a
    /// sender thread dying mid-request would. Set by the config key
    /// `__TestPanicInRequest`; `None` in every real config.
    #[doc(hidden)]
    pub panic_in_request: Option<u64>,
}

impl SlsOptions {
    /// Options with defaults for everything but the destination.
    pub fn new(project: &str, logstore: &str, region: &str, endpoint: Endpoint) -> Self {
        SlsOptions {
            project: project.into(),
            logstore: logstore.into(),
            region: region.into(),
            endpoint,
            compress: CompressType::Lz4,
            signature_v4: false,
            shard_hash_keys: Vec::new(),
            topic: None,
            batch: BatchLimits::default(),
            concurrency: 8,
            retry_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_send_rate: 0,
            replay_rate: 5 << 20,
            disk_buffer_max_bytes: 1 << 30,
            disk_buffer_ttl: Duration::from_secs(24 * 3600),
            ali_uid: None,
            panic_in_request: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SLS finds the project in `Host`: every endpoint form sends
    /// `{project}.{host}[:port]`; only host names are connected to under
    /// the project's name.
    #[test]
    fn host_header_names_the_project_for_every_endpoint() {
        for (endpoint, host, url) in [
            ("http://10.0.0.5", "proj.10.0.0.5", "http://10.0.0.5"),
            ("10.0.0.5", "proj.10.0.0.5", "https://10.0.0.5"),
            (
                "http://127.0.0.1:8080",
                "proj.127.0.0.1:8080",
                "http://127.0.0.1:8080",
            ),
            (
                "https://10.0.0.5:443",
                "proj.10.0.0.5:443",
                "https://10.0.0.5:443",
            ),
            ("http://[::1]:80", "proj.[::1]:80", "http://[::1]:80"),
            (
                "http://localhost:9000",
                "proj.localhost:9000",
                "http://localhost:9000",
            ),
            (
                "cn-hangzhou.log.aliyuncs.com",
                "proj.cn-hangzhou.log.aliyuncs.com",
                "https://proj.cn-hangzhou.log.aliyuncs.com",
            ),
            (
                "http://cn-hangzhou-intranet.log.aliyuncs.com/",
                "proj.cn-hangzhou-intranet.log.aliyuncs.com",
                "http://proj.cn-hangzhou-intranet.log.aliyuncs.com",
            ),
            (
                "https://sls.example.com:8443",
                "proj.sls.example.com:8443",
                "https://proj.sls.example.com:8443",
            ),
        ] {
            let e = Endpoint::parse(endpoint).unwrap();
            assert_eq!(e.host_header("proj"), host, "{endpoint}");
            assert_eq!(e.url_base("proj"), url, "{endpoint}");
        }
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for bad in ["", "ftp://x", "http://a/b", "http://h:port", "a b"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
