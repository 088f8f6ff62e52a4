//! Sinks that ship with the SDK: `flusher_sls`, `flusher_stdout`,
//! `flusher_file`, `flusher_blackhole`.

mod blackhole;
mod file;
pub mod sls;
mod stdout;

pub use blackhole::BlackholeSink;
pub use file::FileSink;
pub use stdout::StdoutSink;
