//! Embedding logtail-rs in another program: tail files with the core's
//! `FileInput` and a sink of your own, on your own thread, no runtime.
//!
//! ```text
//! cargo run -p logtail-embed-example -- '/var/log/*.log'
//! ```
//! Prints, every two seconds, how many lines each file produced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logtail_core::file::{FileInput, FileInputOptions, PathsSpec};
use logtail_core::{EventBatch, Input, MemoryCheckpoint, Progress};

fn main() {
    let pattern = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/var/log/*.log".into());
    let mut opts = FileInputOptions::default();
    opts.paths = PathsSpec::new(vec![pattern.clone()]);
    opts.tail_size_kb = 0; // only what is written from now on
    let mut input = match FileInput::new(opts, Box::new(MemoryCheckpoint::default())) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("embed-count-lines: {e}");
            std::process::exit(2);
        }
    };
    eprintln!("counting lines written to {pattern} (Ctrl-C stops)");
    let mut counts: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let mut batches: Vec<EventBatch> = Vec::new();
    let mut last_print = Instant::now();
    loop {
        // `Vec<EventBatch>` is the simplest `Emit`: poll pushes, we drain.
        let progress = match input.poll(&mut batches) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("embed-count-lines: {e}");
                Progress::Idle
            }
        };
        for batch in batches.drain(..) {
            *counts.entry(batch.source.path.clone()).or_default() += batch.events.len() as u64;
            // Acknowledge: the checkpoint may advance past these lines.
            batch.delivered();
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            for (path, n) in &counts {
                println!("{n:>10}  {}", path.display());
            }
            last_print = Instant::now();
        }
        if progress == Progress::Idle {
            input.wait(Duration::from_millis(500));
        }
    }
}
