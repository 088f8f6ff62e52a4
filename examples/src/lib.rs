//! Support code of the example programs: an SLS-compatible receiver
//! ([`sls_receiver`]) used by the tests and by `logtail-sls-receiver`, and
//! the programs' shared start-up.
#![deny(missing_docs)]

pub mod sls_receiver;

/// Sends the program's own log to stderr, filtered by `RUST_LOG` or else
/// `level` (`info`, `debug`…); colours only on a terminal.
pub fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
