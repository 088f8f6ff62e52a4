//! # logtail-config-server
//!
//! A small reference ConfigServer for fleets of logtail-rs (or
//! LoongCollector) agents: machine groups, pipeline configs and host status
//! behind LoongCollector's ConfigServer v2 agent protocol, plus a JSON
//! admin API. Larger fleets point their agents at a LoongCollector
//! ConfigServer, which speaks the same protocol.
//!
//! - [`console`]: the web console at `/` and the admin token.
//! - [`group`]: machine groups, their naming rules, membership and the
//!   OK/FAIL heartbeat status.
//! - [`server`]: the server logic ([`server::ConfigServer`], free of HTTP)
//!   and its HTTP edge ([`server::HttpServer`]).
//!
//! The protocol messages are the SDK's ([`logtail_sdk::fleet::proto`]),
//! shared with the agent side ([`logtail_sdk::fleet::client`]); the state
//! file is written with [`logtail_sdk::fleet::store`].
#![deny(missing_docs)]

pub mod console;
pub mod group;
pub mod server;
