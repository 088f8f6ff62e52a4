//! Fleet management: central configuration of many agents over the
//! ConfigServer v2 protocol that LoongCollector speaks.
//!
//! - [`proto`]: the protocol messages (`prost`).
//! - [`client`]: the agent side ([`client::Fleet`]): heartbeats, config
//!   changes on a channel, status reports, configs kept across restarts.
//!   Who the host is (its identities, IP and name) is [`crate::host`]'s.
//! - [`report`]: what the agent reports about itself in each heartbeat
//!   ([`AgentReport`], [`AlarmReport`]) and how it is encoded.
//! - [`store`]: atomic JSON files the client (and the reference server)
//!   keep their state in.
//!
//! The reference server is a program of its own, `logtail-config-server`
//! (`examples/config-server`), built on [`proto`] and [`store`]; larger
//! fleets point the agent at a LoongCollector ConfigServer.

pub mod client;
pub mod proto;
pub mod report;
pub mod store;

pub use report::{AgentReport, AlarmReport, ReportProvider};

/// Checks a pipeline config name as delivered by a server: 1–128
/// characters of ASCII letters, digits, `-` and `_` (the name becomes a
/// pipeline and checkpoint file name, so no separators or dots).
pub fn valid_config_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err(format!(
            "config name {name:?}: must be 1–128 characters long (is {})",
            name.chars().count()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        Some(c) => Err(format!(
            "config name {name:?}: character {c:?} is not allowed; use letters, digits, '-' and '_'"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_config_name;

    #[test]
    fn config_names() {
        for ok in ["a", "nginx-access_2", &"x".repeat(128)] {
            assert_eq!(valid_config_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "1–128"),
            ("../etc", "'.' is not allowed"),
            ("a/b", "'/' is not allowed"),
            (&"x".repeat(129), "is 129"),
        ] {
            let e = valid_config_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
