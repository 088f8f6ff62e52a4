//! Chunk processing: frames, decodes and assembles the bytes read from a
//! stream's offset into events, sans-I/O.

use std::ops::Range;

use bytes::Bytes;

use super::decode::{Decoder, FileEncoding, Utf16Order};
use super::framing::{Framer, LineUnit};
use super::multiline::{is_contiguous, join_lines, Multiline, MultilineStats};
use super::stream::Stream;
use crate::event::{Event, Timestamp};

/// What [`process_chunk`] made of a chunk.
pub(super) struct ChunkOut {
    pub(super) events: Vec<Event>,
    /// Bytes of the chunk done with: complete lines, or complete events.
    pub(super) consumed: usize,
    /// An incomplete last line was emitted (flush).
    pub(super) partial: bool,
    pub(super) replacements: u64,
    pub(super) ml: MultilineStats,
}

impl ChunkOut {
    /// Appends the result of processing the same chunk again.
    pub(super) fn merge(&mut self, more: ChunkOut) {
        self.events.extend(more.events);
        self.consumed = more.consumed;
        self.partial |= more.partial;
        self.replacements += more.replacements;
        let m = &mut self.ml;
        m.events += more.ml.events;
        m.unmatched_lines += more.ml.unmatched_lines;
        m.discarded_lines += more.ml.discarded_lines;
        m.discarded_bytes += more.ml.discarded_bytes;
        m.cut_events += more.ml.cut_events;
        m.flushes += more.ml.flushes;
        m.json_invalid += more.ml.json_invalid;
    }
}

/// Builds events out of line ranges of one chunk: slices of the chunk when
/// the bytes can be used as they are, else copies into one buffer per chunk
/// (decoded lines, or lines joined around dropped bytes).
struct Emitter<'a> {
    chunk: &'a Bytes,
    base: u64,
    time: Timestamp,
    decoder: Option<Decoder>,
    events: Vec<Event>,
    copied: Vec<u8>,
    /// (event index, range in `copied`) for the events made of copies.
    fixups: Vec<(usize, Range<usize>)>,
    replacements: u64,
}

impl Emitter<'_> {
    fn emit(&mut self, lines: &[Range<usize>]) {
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return;
        };
        let offset = self.base + first.start as u64;
        let content = match self.decoder {
            None if lines.len() == 1 || is_contiguous(self.chunk, lines) => {
                self.chunk.slice(first.start..last.end)
            }
            None => {
                let at = self.copied.len();
                join_lines(self.chunk, lines, &mut self.copied);
                self.fixups.push((self.events.len(), at..self.copied.len()));
                Bytes::new()
            }
            Some(d) => {
                let at = self.copied.len();
                self.replacements +=
                    d.decode_lines(self.chunk, lines, self.base == 0, &mut self.copied);
                self.fixups.push((self.events.len(), at..self.copied.len()));
                Bytes::new()
            }
        };
        self.events.push(Event::line(content, offset, self.time));
    }

    fn finish(mut self) -> (Vec<Event>, u64) {
        if !self.fixups.is_empty() {
            let copied = Bytes::from(self.copied);
            for (i, r) in self.fixups {
                if let Some(e) = self.events.get_mut(i) {
                    e.content = copied.slice(r);
                }
            }
        }
        (self.events, self.replacements)
    }
}

/// What to force out at the end of a chunk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flush {
    /// An incomplete last line (the chunk reaches the end of the file and
    /// the flush timeout passed).
    pub(super) line: bool,
    /// A pending multi-line event (the same, or the file is being closed).
    pub(super) event: bool,
}

/// Frames, decodes and assembles one chunk (the bytes from the stream's
/// read offset on), forcing out what `flush` says.
#[allow(clippy::too_many_arguments)]
pub(super) fn process_chunk(
    s: &mut Stream,
    chunk: &Bytes,
    base: u64,
    time: Timestamp,
    flush: Flush,
    encoding: FileEncoding,
    lines: &mut Vec<Range<usize>>,
    scratch: &mut Vec<u8>,
) -> ChunkOut {
    if encoding == FileEncoding::Utf16 && s.framer.unit() == LineUnit::Byte {
        // Reading has started, so the head holds the byte-order mark if
        // there is one.
        let order = Utf16Order::detect(&s.head);
        s.framer = Framer::utf16(*s.framer.options(), order);
        s.decoder = Some(Decoder::new(FileEncoding::Utf16, order));
    }
    let mut from = s.multiline.as_ref().map_or(0, Multiline::fed);
    if from > chunk.len() {
        // What was framed is no longer there (cannot happen with files
        // that only grow): start over from the read offset.
        tracing::warn!(
            offset = base,
            "re-presented bytes shorter than before: reassembling"
        );
        if let Some(m) = s.multiline.as_mut() {
            m.reset();
        }
        s.framer = Framer::with_unit(*s.framer.options(), s.framer.unit());
        from = 0;
    }
    lines.clear();
    let mut push = |r: Range<usize>| lines.push(r.start + from..r.end + from);
    let mut framed = from + s.framer.frame(&chunk[from..], &mut push);
    let mut partial = false;
    if flush.line && framed < chunk.len() {
        let at = framed;
        let mut push = |r: Range<usize>| lines.push(r.start + at..r.end + at);
        let tail = &chunk[at..];
        framed += s.framer.flush_partial(tail, &mut push);
        partial = true;
    }
    let mut em = Emitter {
        chunk,
        base,
        time,
        decoder: s.decoder,
        events: Vec::with_capacity(lines.len()),
        copied: Vec::new(),
        fixups: Vec::new(),
        replacements: 0,
    };
    let (consumed, ml) = match s.multiline.as_mut() {
        None => {
            for l in lines.iter() {
                em.emit(std::slice::from_ref(l));
            }
            (framed, MultilineStats::default())
        }
        Some(m) => {
            let before = m.stats();
            let decoder = s.decoder;
            for l in lines.iter() {
                let raw = &chunk[l.clone()];
                // Patterns see the decoded line.
                let text: &[u8] = match decoder {
                    Some(d) => {
                        scratch.clear();
                        d.decode_into(raw, base == 0 && l.start == 0, scratch);
                        scratch
                    }
                    None => raw,
                };
                m.push(l.clone(), text, &mut |a| em.emit(a.lines));
            }
            if flush.event {
                m.flush(&mut |a| em.emit(a.lines));
            }
            (m.finish(framed), m.stats().since(&before))
        }
    };
    let (events, replacements) = em.finish();
    ChunkOut {
        events,
        consumed,
        partial,
        replacements,
        ml,
    }
}
