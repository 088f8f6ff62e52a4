//! # logtail-sdk
//!
//! Composes [`logtail_core`] pieces into running pipelines: LoongCollector
//! pipeline configs ([`config`]), the threaded pipeline with back-pressure
//! and end-to-end acknowledgements ([`pipeline`]), and the sinks that ship
//! with it ([`sinks`]), the host's identity, IP and name ([`host`]),
//! fleet management over LoongCollector's ConfigServer v2 protocol
//! ([`fleet`]), and the agent that keeps pipelines in step with config
//! files, a config directory and a config server ([`agent`]).
//!
//! ```no_run
//! use logtail_sdk::{config::PipelineConfig, pipeline::Pipeline};
//! let cfg = PipelineConfig::parse("app", "inline", r#"
//! inputs:
//!   - Type: input_file
//!     FilePaths: [/var/log/app/*.log]
//! flushers:
//!   - Type: flusher_stdout
//! "#, false).unwrap();
//! let running = Pipeline::from_config(&cfg, std::path::Path::new("/var/lib/logtail")).unwrap().start().unwrap();
//! // ... later
//! running.stop(std::time::Duration::from_secs(5));
//! ```
#![deny(missing_docs)]
// Library code never unwraps outside data; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod alarms;
mod background;
pub mod command;
pub mod config;
pub mod fleet;
pub mod host;
pub mod internal;
pub mod json;
pub mod manager;
pub mod metrics;
pub mod pipeline;
pub mod resources;
pub mod sinks;
pub mod status;
pub mod status_table;
