//! Sinks that ship with the SDK: `flusher_stdout`, `flusher_file`,
//! `flusher_blackhole`.

mod blackhole;
mod file;
mod stdout;

pub use blackhole::BlackholeSink;
pub use file::FileSink;
pub use stdout::StdoutSink;
