//! The shared helpers of the agent-level tests (logtail-testkit), and the
//! agent binary Cargo built for this test run.
#![allow(unreachable_pub)] // shared by the test files, not an API

pub use logtail_testkit::*;

/// The `logtail-agent` binary of this package.
pub const AGENT: &str = env!("CARGO_BIN_EXE_logtail-agent");
