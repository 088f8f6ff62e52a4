//! `tcp-lines`: a pipeline whose input and sink are the program's own,
//! built with nothing but logtail-core's and logtail-sdk's public API.
//!
//! - [`TcpLinesInput`] implements [`Input`]: it accepts connections on a
//!   TCP address and turns each line into an event, one batch per read, with
//!   an acknowledgement token per batch so that a stop waits for delivery.
//! - [`CountingStdoutSink`] implements [`Sink`]: it prints each event and
//!   acknowledges the batch once it is written.
//! - One of the SDK's own processors sits between them, built from a
//!   LoongCollector processor config.
//!
//! ```text
//! tcp-lines --listen 127.0.0.1:9000 [--exit-after N]
//! ```
//! prints `listening on ADDR` first, then `[peer] field=value …` per event.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use logtail_core::file::{Framer, FramerOptions};
use logtail_core::input::InputError;
use logtail_core::{
    Ack, AckToken, BatchId, Emit, Event, EventBatch, Input, Progress, Rejected, Sink, SourceTags,
    Timestamp,
};
use logtail_sdk::config::PipelineConfig;
use logtail_sdk::pipeline::Pipeline;

/// One accepted connection: its socket, its framer and the bytes of an
/// incomplete last line.
struct Conn {
    stream: TcpStream,
    tags: Arc<SourceTags>,
    framer: Framer,
    pending: Vec<u8>,
    seq: u64,
    source: u64,
}

/// Lines from TCP connections. A connection's lines are events in arrival
/// order; nothing is persisted (a socket cannot be re-read), so a batch's
/// acknowledgement only tells [`Input::settle`] that it was delivered.
struct TcpLinesInput {
    listener: TcpListener,
    conns: Vec<Conn>,
    next_source: u64,
    acks_tx: Sender<Ack>,
    acks_rx: Receiver<Ack>,
    in_flight: usize,
}

impl TcpLinesInput {
    fn bind(addr: &str) -> io::Result<TcpLinesInput> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let (acks_tx, acks_rx) = crossbeam_channel::unbounded();
        Ok(TcpLinesInput {
            listener,
            conns: Vec::new(),
            next_source: 1,
            acks_tx,
            acks_rx,
            in_flight: 0,
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn accept(&mut self) -> Result<(), InputError> {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    stream.set_nonblocking(true).map_err(source)?;
                    self.conns.push(Conn {
                        stream,
                        tags: Arc::new(SourceTags {
                            path: format!("tcp://{peer}").into(),
                            dev: 0,
                            inode: 0,
                            config: Arc::from("tcp-lines"),
                        }),
                        framer: Framer::new(FramerOptions::default()),
                        pending: Vec::new(),
                        seq: 0,
                        source: self.next_source,
                    });
                    self.next_source += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(source(e)),
            }
        }
    }

    fn drain_acks(&mut self) {
        while let Ok(ack) = self.acks_rx.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            if !ack.delivered {
                eprintln!("a batch was not delivered: {:?}", ack.id);
            }
        }
    }
}

fn source(e: io::Error) -> InputError {
    InputError::Source {
        input: "tcp-lines",
        source: Box::new(e),
    }
}

impl Input for TcpLinesInput {
    fn poll(&mut self, emit: &mut dyn Emit) -> Result<Progress, InputError> {
        self.drain_acks();
        self.accept()?;
        let mut busy = false;
        let mut buf = vec![0u8; 64 * 1024];
        let mut closed = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            let n = match c.stream.read(&mut buf) {
                Ok(0) => {
                    closed.push(i);
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(_) => {
                    closed.push(i);
                    continue;
                }
            };
            busy = true;
            c.pending.extend_from_slice(&buf[..n]);
            let chunk = Bytes::from(std::mem::take(&mut c.pending));
            let time = Timestamp::now();
            let mut events = Vec::new();
            let used = c.framer.frame(&chunk, |r| {
                events.push(Event::line(chunk.slice(r), 0, time));
            });
            c.pending = chunk[used..].to_vec();
            if events.is_empty() {
                continue;
            }
            let ack = AckToken::new(
                BatchId {
                    source: c.source,
                    seq: c.seq,
                },
                self.acks_tx.clone(),
            );
            c.seq += 1;
            self.in_flight += 1;
            emit.emit(EventBatch {
                source: Arc::clone(&c.tags),
                events,
                bytes: used as u64,
                ack,
            })?;
        }
        for i in closed.into_iter().rev() {
            self.conns.swap_remove(i);
        }
        Ok(if busy { Progress::Busy } else { Progress::Idle })
    }

    fn wait(&mut self, timeout: Duration) {
        // A real input would use epoll; a short sleep keeps the example small.
        std::thread::sleep(timeout.min(Duration::from_millis(20)));
    }

    fn settle(&mut self, timeout: Duration) -> Result<usize, InputError> {
        let deadline = Instant::now() + timeout;
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks_rx.recv_timeout(left) {
                Ok(_) => self.in_flight -= 1,
                Err(_) => break,
            }
        }
        Ok(self.in_flight)
    }
}

/// Prints each event as `[source] key=value …` and counts them.
struct CountingStdoutSink {
    out: io::Stdout,
    events: Arc<AtomicU64>,
}

impl Sink for CountingStdoutSink {
    fn name(&self) -> &str {
        "counting-stdout"
    }

    fn send(&mut self, batch: EventBatch) -> Result<(), Box<Rejected>> {
        let mut text = Vec::new();
        for e in &batch.events {
            text.extend_from_slice(format!("[{}]", batch.source.path.display()).as_bytes());
            for (k, v) in e.contents() {
                text.extend_from_slice(format!(" {k}={}", String::from_utf8_lossy(v)).as_bytes());
            }
            text.push(b'\n');
        }
        let mut out = self.out.lock();
        if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
            return Err(Box::new(Rejected {
                batch,
                error: logtail_core::SinkError::Io {
                    what: "stdout".into(),
                    source: e,
                },
            }));
        }
        self.events
            .fetch_add(batch.events.len() as u64, Ordering::SeqCst);
        // Written: the batch is delivered.
        batch.delivered();
        Ok(())
    }
}

/// `key=value` lines split by the SDK's delimiter processor, as a
/// LoongCollector config would configure it.
const PROCESSORS: &str = r#"
inputs:
  - Type: input_file
    FilePaths: [/nonexistent/unused.log]
processors:
  - Type: processor_parse_delimiter_native
    SourceKey: content
    Separator: ","
    Keys: [level, message]
    AllowingShortenedFields: true
flushers:
  - Type: flusher_blackhole
"#;

fn main() {
    if let Err(e) = run() {
        eprintln!("tcp-lines: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:9000".to_string();
    let mut exit_after: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--exit-after" => {
                exit_after = Some(args.next().ok_or("--exit-after needs a count")?.parse()?)
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let input = TcpLinesInput::bind(&listen)?;
    println!("listening on {}", input.local_addr()?);
    io::stdout().flush()?;

    // Only the processors of this config are used: the input and the sink
    // are ours.
    let cfg = PipelineConfig::parse("tcp-lines", "inline", PROCESSORS, false)?;
    let parsers = cfg
        .processors
        .iter()
        .map(|p| p.build())
        .collect::<Result<Vec<_>, _>>()?;
    let events = Arc::new(AtomicU64::new(0));
    let sink = CountingStdoutSink {
        out: io::stdout(),
        events: Arc::clone(&events),
    };
    let running =
        Pipeline::new("tcp-lines", Box::new(input), parsers, vec![Box::new(sink)]).start()?;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if exit_after.is_some_and(|n| events.load(Ordering::SeqCst) >= n) {
            break;
        }
    }
    let report = running.stop(Duration::from_secs(5));
    eprintln!(
        "tcp-lines: {} events, {} batches still in flight",
        events.load(Ordering::SeqCst),
        report.in_flight
    );
    Ok(())
}
