//! Who this host is: user-defined identities, authorised accounts, the
//! host IP and name.
//!
//! As Logtail reads them: identities from the file
//! `/etc/ilogtail/user_defined_id` (one per line) and the environment
//! variable `ALIYUN_LOGTAIL_USER_DEFINED_ID` (comma-separated); accounts from
//! the *file names* in `/etc/ilogtail/users/` and `ALIYUN_LOGTAIL_USER_ID`
//! (comma-separated). [`IdentityWatcher`] re-reads them periodically, so an
//! edit takes effect without a restart.
//!
//! Used by the pipelines (the IP and host name in every SLS LogGroup, the
//! accounts a `flusher_sls` with `AliUid` needs) and by the fleet client
//! (the identities and IP it reports in heartbeats).

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::background::Background;

/// Where identities and accounts come from. Paths and variable names are
/// configurable (tests point them at temp files and unique variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySources {
    /// File of user-defined identities, one per line.
    pub user_defined_id_file: PathBuf,
    /// Environment variable of comma-separated identities.
    pub user_defined_id_env: String,
    /// Directory whose file names are the authorised accounts.
    pub users_dir: PathBuf,
    /// Environment variable of comma-separated accounts.
    pub user_id_env: String,
}

impl Default for IdentitySources {
    /// Logtail's locations: `/etc/ilogtail/user_defined_id`,
    /// `ALIYUN_LOGTAIL_USER_DEFINED_ID`, `/etc/ilogtail/users/`,
    /// `ALIYUN_LOGTAIL_USER_ID`.
    fn default() -> Self {
        IdentitySources {
            user_defined_id_file: PathBuf::from("/etc/ilogtail/user_defined_id"),
            user_defined_id_env: "ALIYUN_LOGTAIL_USER_DEFINED_ID".into(),
            users_dir: PathBuf::from("/etc/ilogtail/users"),
            user_id_env: "ALIYUN_LOGTAIL_USER_ID".into(),
        }
    }
}

/// The host's identities and authorised accounts at one moment. Each list
/// is deduplicated and keeps first-seen order (file before environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    /// User-defined identities (machine groups of type `userdefined`
    /// match them).
    pub user_defined_ids: Vec<String>,
    /// Authorised accounts (e.g. Alibaba Cloud account ids for AliUid checks).
    pub accounts: Vec<String>,
}

impl HostIdentity {
    /// Whether `account` is authorised on this host.
    pub fn authorises(&self, account: &str) -> bool {
        self.accounts.iter().any(|a| a == account)
    }
}

impl IdentitySources {
    /// Reads everything now. A missing file or directory contributes
    /// nothing; other read errors are logged and contribute nothing.
    pub fn read(&self) -> HostIdentity {
        let mut ids = Vec::new();
        match std::fs::read(&self.user_defined_id_file) {
            Ok(bytes) => ids.extend(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                path = %self.user_defined_id_file.display(),
                "cannot read user-defined identities: {e}"
            ),
        }
        ids.extend(env_list(&self.user_defined_id_env));

        let mut accounts = Vec::new();
        match std::fs::read_dir(&self.users_dir) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect();
                names.sort();
                accounts.extend(names);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                path = %self.users_dir.display(),
                "cannot list authorised accounts: {e}"
            ),
        }
        accounts.extend(env_list(&self.user_id_env));
        HostIdentity {
            user_defined_ids: dedup(ids),
            accounts: dedup(accounts),
        }
    }
}

fn env_list(name: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    std::env::var_os(name)
        .map(|v| {
            v.to_string_lossy()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// Keeps a [`HostIdentity`] current: re-reads the [`IdentitySources`] every
/// `refresh` on a thread of its own. Cheap to query from any thread.
#[derive(Debug)]
pub struct IdentityWatcher {
    current: Arc<RwLock<(u64, HostIdentity)>>,
    refresh: Background,
}

impl IdentityWatcher {
    /// Reads the sources once, then starts the refresh thread.
    pub fn start(sources: IdentitySources, refresh: Duration) -> std::io::Result<IdentityWatcher> {
        let current = Arc::new(RwLock::new((0, sources.read())));
        let shared = Arc::clone(&current);
        let refresh = Background::spawn("fleet-identity", move |stopped| {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(refresh)
            {
                let now = sources.read();
                let mut guard = match shared.write() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if guard.1 != now {
                    tracing::info!(
                        ids = ?now.user_defined_ids,
                        accounts = now.accounts.len(),
                        "host identity changed"
                    );
                    guard.0 += 1;
                    guard.1 = now;
                }
            }
        })?;
        Ok(IdentityWatcher { current, refresh })
    }

    /// The identity as last read.
    pub fn current(&self) -> HostIdentity {
        self.snapshot().1
    }

    /// The identity with a generation number that grows on every change.
    pub fn snapshot(&self) -> (u64, HostIdentity) {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stops the refresh thread (also done on drop).
    pub fn stop(mut self) {
        self.refresh.stop();
    }
}

/// Interfaces never taken as the host's address.
pub const IGNORED_INTERFACES: [&str; 3] = ["docker0", "kube-ipvs0", "nodelocaldns"];

/// The host IP: `configured` if given, else the address the host name
/// resolves to (when not loopback), else the first non-loopback address of
/// an interface other than [`IGNORED_INTERFACES`] (IPv4 preferred).
pub fn host_ip(configured: Option<IpAddr>) -> Option<IpAddr> {
    configured
        .or_else(|| hostname().and_then(|h| resolve(&h)))
        .or_else(interface_ip)
}

/// The host name (`gethostname`).
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The first non-loopback address `name` resolves to (`getaddrinfo`),
/// IPv4 preferred.
pub fn resolve(name: &str) -> Option<IpAddr> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; fields set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer.
    let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    let mut found = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, freed below.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr points at a sockaddr of ai_family.
        if let Some(ip) = unsafe { sockaddr_ip(ai.ai_addr) } {
            found.push(ip);
        }
        p = ai.ai_next;
    }
    // SAFETY: res came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    pick(found)
}

/// The first non-loopback interface address, skipping
/// [`IGNORED_INTERFACES`] (`getifaddrs`), IPv4 preferred.
pub fn interface_ip() -> Option<IpAddr> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: out pointer to a local.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut found = Vec::new();
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned, freed below.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy();
        if IGNORED_INTERFACES.contains(&name.as_ref()) {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr.
        if let Some(ip) = unsafe { sockaddr_ip(ifa.ifa_addr) } {
            found.push(ip);
        }
    }
    // SAFETY: ifap came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(ifap) };
    pick(found)
}

fn pick(found: Vec<IpAddr>) -> Option<IpAddr> {
    let usable = |ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip);
    found
        .iter()
        .find(|ip| ip.is_ipv4() && usable(ip))
        .or_else(|| found.iter().find(|ip| usable(ip)))
        .copied()
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// # Safety
/// `sa` must be null or point at a valid sockaddr whose size fits its family.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: non-null and valid (the caller's promise).
    let family = unsafe { (*sa).sa_family };
    match i32::from(family) {
        libc::AF_INET => {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_ip_wins() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(host_ip(Some(ip)), Some(ip));
    }

    #[test]
    fn detected_ip_is_not_loopback() {
        // A machine with only loopback has no answer; any answer is usable.
        if let Some(ip) = host_ip(None) {
            assert!(!ip.is_loopback(), "{ip}");
        }
        assert!(hostname().is_some());
    }

    #[test]
    fn pick_prefers_ipv4_and_skips_loopback() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let v4: IpAddr = "192.168.1.5".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ll: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(pick(vec![lo, ll, v6, v4]), Some(v4));
        assert_eq!(pick(vec![lo, ll, v6]), Some(v6));
        assert_eq!(pick(vec![lo]), None);
    }

    #[test]
    fn resolves_localhost_to_nothing_usable() {
        assert_eq!(resolve("localhost"), None);
        assert_eq!(resolve("bad\0name"), None);
    }
}
