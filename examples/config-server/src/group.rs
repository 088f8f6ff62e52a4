//! Machine groups: which hosts a set of pipeline configs goes to.
//!
//! A group is named (3–128 characters of lowercase letters, digits, `-` and
//! `_`, beginning and ending with a letter or digit) and identifies its
//! hosts either by IP or by user-defined identity. A host is a member when
//! its IP (type `ip`) or one of its identities (type `userdefined`) is
//! listed. A group holds hosts of one operating system: Linux and Windows
//! hosts are not mixed.
//!
//! ```
//! use logtail_config_server::group::{HostFacts, Identification, MachineGroup};
//! let g = MachineGroup::new("web-prod", Identification::UserDefined(vec!["web".into()])).unwrap();
//! let host = HostFacts { ip: Some("10.0.0.7".parse().unwrap()), identities: vec!["web".into()], os: None };
//! assert!(g.contains(&host));
//! assert!(MachineGroup::new("Web", Identification::Ip(vec![])).is_err());
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A group definition rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The name breaks the naming rules.
    #[error("machine group name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        why: String,
    },
    /// An IP list entry is not an IP address.
    #[error("machine group {group:?}: {entry:?} is not an IP address")]
    InvalidIp {
        /// The group.
        group: String,
        /// The entry.
        entry: String,
    },
    /// A user-defined identity is empty or has surrounding spaces or commas.
    #[error("machine group {group:?}: identity {entry:?}: {why}")]
    InvalidIdentity {
        /// The group.
        group: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
}

/// Checks a machine group name: 3–128 characters of lowercase letters,
/// digits, `-` and `_`, beginning and ending with a lowercase letter or
/// digit. The error says which rule is broken.
pub fn validate_group_name(name: &str) -> Result<(), GroupError> {
    let err = |why: String| GroupError::InvalidName {
        name: name.to_string(),
        why,
    };
    let len = name.chars().count();
    if len < 3 {
        return Err(err(format!(
            "too short ({len} characters; at least 3 are required)"
        )));
    }
    if len > 128 {
        return Err(err(format!("too long ({len} characters; at most 128)")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (uppercase letters are not allowed)"
        } else {
            ""
        };
        return Err(err(format!(
            "character {c:?} is not allowed{hint}; use lowercase letters, digits, '-' and '_'"
        )));
    }
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.starts_with(edge) {
        return Err(err("must begin with a lowercase letter or digit".into()));
    }
    if !name.ends_with(edge) {
        return Err(err("must end with a lowercase letter or digit".into()));
    }
    Ok(())
}

/// An operating system family, as hosts report it in the attribute extra
/// `os`: values starting with `windows` (any case) are Windows, everything
/// else Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Linux (and other Unix-likes).
    Linux,
    /// Windows.
    Windows,
}

impl Os {
    /// Classifies a reported `os` value; `None` for an empty one.
    pub fn from_reported(value: &str) -> Option<Os> {
        let v = value.trim();
        if v.is_empty() {
            None
        } else if v.to_ascii_lowercase().starts_with("windows") {
            Some(Os::Windows)
        } else {
            Some(Os::Linux)
        }
    }

    /// `linux` or `windows`.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }
}

/// How a group recognises its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identification {
    /// Type `ip`: the hosts' IP addresses.
    Ip(Vec<IpAddr>),
    /// Type `userdefined`: user-defined identities.
    UserDefined(Vec<String>),
}

impl Identification {
    /// Builds it from the admin form: `type` (`ip` or `userdefined`) and the
    /// member list; entries are checked.
    pub fn parse(group: &str, kind: &str, members: &[String]) -> Result<Self, String> {
        match kind {
            "ip" => members
                .iter()
                .map(|m| {
                    m.trim().parse::<IpAddr>().map_err(|_| {
                        GroupError::InvalidIp {
                            group: group.to_string(),
                            entry: m.clone(),
                        }
                        .to_string()
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Identification::Ip),
            "userdefined" => {
                for m in members {
                    let why = if m.is_empty() {
                        Some("empty")
                    } else if m.trim() != m {
                        Some("has surrounding spaces")
                    } else if m.contains(',') || m.contains('\n') {
                        Some("contains ',' or a line break, which the identity sources use as separators")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        return Err(GroupError::InvalidIdentity {
                            group: group.to_string(),
                            entry: m.clone(),
                            why: why.into(),
                        }
                        .to_string());
                    }
                }
                Ok(Identification::UserDefined(members.to_vec()))
            }
            other => Err(format!(
                "machine group {group:?}: type {other:?} is unknown; use \"ip\" or \"userdefined\""
            )),
        }
    }

    /// `ip` or `userdefined`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identification::Ip(_) => "ip",
            Identification::UserDefined(_) => "userdefined",
        }
    }

    /// The members as text.
    pub fn members(&self) -> Vec<String> {
        match self {
            Identification::Ip(ips) => ips.iter().map(IpAddr::to_string).collect(),
            Identification::UserDefined(ids) => ids.clone(),
        }
    }
}

/// What a host tells about itself that membership depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The host's IP.
    pub ip: Option<IpAddr>,
    /// Its user-defined identities.
    pub identities: Vec<String>,
    /// Its operating system, if reported.
    pub os: Option<Os>,
}

/// Whether a host belongs to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// A member: the group's configs apply.
    Member,
    /// Not listed.
    NotMember,
    /// Listed, but of the other OS than the group's hosts: rejected, no
    /// configs apply.
    OsMismatch {
        /// The group's OS.
        group_os: Os,
        /// The host's OS.
        host_os: Os,
    },
}

/// A machine group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineGroup {
    /// The name (validated).
    pub name: String,
    /// How hosts are recognised.
    pub identification: Identification,
    /// Optional topic attached to the group's data.
    pub topic: Option<String>,
    /// The OS of the group's hosts: set explicitly, or fixed by the first
    /// member host that reports one.
    pub os: Option<Os>,
    /// Names of the pipeline configs applied to it.
    pub configs: BTreeSet<String>,
}

impl MachineGroup {
    /// A group with no topic, OS or configs; the name is validated.
    pub fn new(name: &str, identification: Identification) -> Result<MachineGroup, GroupError> {
        validate_group_name(name)?;
        Ok(MachineGroup {
            name: name.to_string(),
            identification,
            topic: None,
            os: None,
            configs: BTreeSet::new(),
        })
    }

    /// Whether the host is listed (by IP or identity), regardless of OS.
    pub fn contains(&self, host: &HostFacts) -> bool {
        match &self.identification {
            Identification::Ip(ips) => host.ip.is_some_and(|ip| ips.contains(&ip)),
            Identification::UserDefined(ids) => host.identities.iter().any(|i| ids.contains(i)),
        }
    }

    /// Membership, including the OS rule: a listed host whose OS differs
    /// from the group's is [`Membership::OsMismatch`].
    pub fn membership(&self, host: &HostFacts) -> Membership {
        if !self.contains(host) {
            return Membership::NotMember;
        }
        match (self.os, host.os) {
            (Some(group_os), Some(host_os)) if group_os != host_os => {
                Membership::OsMismatch { group_os, host_os }
            }
            _ => Membership::Member,
        }
    }
}

/// A host's heartbeat status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostStatus {
    /// Heartbeats arrive.
    #[serde(rename = "OK")]
    Ok,
    /// None arrived for longer than the timeout.
    #[serde(rename = "FAIL")]
    Fail,
}

impl HostStatus {
    /// `OK` if the last heartbeat is at most `timeout` before `now` (both in
    /// milliseconds since the epoch), else `FAIL`.
    pub fn at(last_heartbeat_ms: u64, now_ms: u64, timeout: Duration) -> HostStatus {
        if now_ms.saturating_sub(last_heartbeat_ms) <= timeout.as_millis() as u64 {
            HostStatus::Ok
        } else {
            HostStatus::Fail
        }
    }

    /// `OK` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "OK",
            HostStatus::Fail => "FAIL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        let valid = ["abc", "web-prod", "db_01", "0ab", "a-b_c9", long.as_str()];
        for n in valid {
            assert_eq!(validate_group_name(n), Ok(()), "{n}");
        }
        let invalid: &[(&str, &str)] = &[
            ("", "too short (0"),
            ("ab", "too short (2"),
            (too_long.as_str(), "too long (129"),
            ("Web", "uppercase letters are not allowed"),
            ("web.prod", "character '.' is not allowed"),
            ("web prod", "character ' ' is not allowed"),
            ("wéb", "character 'é' is not allowed"),
            ("-web", "must begin with a lowercase letter or digit"),
            ("_web", "must begin"),
            ("web-", "must end with a lowercase letter or digit"),
            ("web_", "must end"),
        ];
        for (n, why) in invalid {
            let e = validate_group_name(n).unwrap_err().to_string();
            assert!(e.contains(why), "{n:?}: {e}");
        }
        assert!(MachineGroup::new("ab", Identification::Ip(vec![])).is_err());
    }

    #[test]
    fn identification_parse() {
        let ips = Identification::parse("g", "ip", &["10.0.0.1".into(), "::1".into()]).unwrap();
        assert_eq!(ips.members(), vec!["10.0.0.1", "::1"]);
        assert!(Identification::parse("g", "ip", &["10.0.0.300".into()])
            .unwrap_err()
            .contains("\"10.0.0.300\" is not an IP address"));
        assert!(Identification::parse("g", "userdefined", &[" x".into()])
            .unwrap_err()
            .contains("surrounding spaces"));
        assert!(Identification::parse("g", "userdefined", &["".into()])
            .unwrap_err()
            .contains("empty"));
        assert!(Identification::parse("g", "hostname", &[])
            .unwrap_err()
            .contains("use \"ip\" or \"userdefined\""));
    }

    fn host(ip: &str, ids: &[&str], os: Option<Os>) -> HostFacts {
        HostFacts {
            ip: Some(ip.parse().unwrap()),
            identities: ids.iter().map(|s| s.to_string()).collect(),
            os,
        }
    }

    #[test]
    fn membership_by_ip_and_identity() {
        let by_ip = MachineGroup::new(
            "by-ip",
            Identification::Ip(vec!["10.0.0.1".parse().unwrap()]),
        )
        .unwrap();
        let by_id =
            MachineGroup::new("by-id", Identification::UserDefined(vec!["web".into()])).unwrap();
        let a = host("10.0.0.1", &["db"], None);
        let b = host("10.0.0.2", &["x", "web"], None);
        assert_eq!(by_ip.membership(&a), Membership::Member);
        assert_eq!(by_ip.membership(&b), Membership::NotMember);
        assert_eq!(by_id.membership(&a), Membership::NotMember);
        assert_eq!(by_id.membership(&b), Membership::Member);
        let no_ip = HostFacts {
            ip: None,
            ..a.clone()
        };
        assert!(!by_ip.contains(&no_ip));
    }

    #[test]
    fn os_is_not_mixed() {
        let mut g =
            MachineGroup::new("win-or-lin", Identification::UserDefined(vec!["x".into()])).unwrap();
        let win = host("10.0.0.1", &["x"], Os::from_reported("Windows Server 2019"));
        let lin = host("10.0.0.2", &["x"], Os::from_reported("linux"));
        let unknown = host("10.0.0.3", &["x"], Os::from_reported(""));
        assert_eq!(g.membership(&win), Membership::Member);
        g.os = Some(Os::Linux);
        assert_eq!(
            g.membership(&win),
            Membership::OsMismatch {
                group_os: Os::Linux,
                host_os: Os::Windows
            }
        );
        assert_eq!(g.membership(&lin), Membership::Member);
        assert_eq!(g.membership(&unknown), Membership::Member);
    }

    #[test]
    fn status_ok_then_fail() {
        let t = Duration::from_secs(30);
        assert_eq!(HostStatus::at(1_000, 1_000, t), HostStatus::Ok);
        assert_eq!(HostStatus::at(1_000, 31_000, t), HostStatus::Ok);
        assert_eq!(HostStatus::at(1_000, 31_001, t), HostStatus::Fail);
        // A clock that went backwards does not fail a host.
        assert_eq!(HostStatus::at(5_000, 1_000, t), HostStatus::Ok);
    }
}
