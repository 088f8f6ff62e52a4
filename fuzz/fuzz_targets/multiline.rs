//! The multi-line assembler on arbitrary bytes, modes, patterns, limits and
//! chunk cuts: feeding the input in pieces (re-presenting what was not
//! consumed, as the reader does) gives exactly the events of feeding it at
//! once; events are in bounds, in order, within the size limit, and every
//! byte is consumed once the pending event is flushed.
#![no_main]
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use logtail_core::file::{
    Framer, FramerOptions, LongLinePolicy, Multiline, MultilineMode, MultilineOptions,
    MultilineRules, UnmatchedContentTreatment,
};

const PATTERNS: [&str; 6] = ["S", "C", "E", r"\d+-", ".*x$", "[ab]{2}"];

/// Compiling the patterns costs far more than a run: compile each
/// combination once.
fn rules(o: &MultilineOptions) -> Option<Arc<MultilineRules>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<MultilineRules>>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(format!("{o:?}"))
        .or_insert_with(|| MultilineRules::compile(o).ok().flatten())
        .clone()
}

fn run(
    o: &MultilineOptions,
    fo: FramerOptions,
    max: usize,
    data: &[u8],
    cuts: &[usize],
) -> Vec<(Vec<u8>, u64)> {
    let Some(rules) = rules(o) else {
        return Vec::new();
    };
    let mut ml = Multiline::new(rules, max);
    let mut framer = Framer::new(fo);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    ends.push(data.len());
    ends.sort_unstable();
    let check = |buf: &[u8],
                 base: usize,
                 lines: &[std::ops::Range<usize>],
                 out: &mut Vec<(Vec<u8>, u64)>| {
        assert!(!lines.is_empty());
        let mut last = 0;
        for l in lines {
            assert!(l.start >= last && l.start <= l.end && l.end <= buf.len());
            last = l.end;
        }
        let span = lines[0].start..lines[lines.len() - 1].end;
        assert!(
            lines.len() == 1 || span.len() <= max,
            "event over the limit"
        );
        let mut v = Vec::new();
        logtail_core::file::multiline::join_lines(buf, lines, &mut v);
        out.push((v, (base + span.start) as u64));
    };
    for end in ends {
        let end = end.max(pos + ml.fed());
        let buf = &data[pos..end];
        let from = ml.fed();
        lines.clear();
        let n = framer.frame(&buf[from..], |r| lines.push(r.start + from..r.end + from));
        for l in lines.drain(..) {
            ml.push(l.clone(), &buf[l], &mut |a| {
                check(buf, pos, a.lines, &mut out)
            });
        }
        let consumed = ml.finish(from + n);
        assert!(consumed <= from + n);
        pos += consumed;
    }
    let buf = &data[pos..];
    let from = ml.fed();
    let mut tail = Vec::new();
    framer.flush_partial(&buf[from..], |r| tail.push(r.start + from..r.end + from));
    for l in tail {
        ml.push(l.clone(), &buf[l], &mut |a| {
            check(buf, pos, a.lines, &mut out)
        });
    }
    ml.flush(&mut |a| check(buf, pos, a.lines, &mut out));
    assert_eq!(ml.finish(buf.len()), buf.len());
    assert!(!ml.has_pending());
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let pick =
        |b: u8| (!b.is_multiple_of(7)).then(|| PATTERNS[b as usize % PATTERNS.len()].to_string());
    let mut o = MultilineOptions::default();
    o.mode = if data[0] & 1 == 0 {
        MultilineMode::Custom
    } else {
        MultilineMode::Json
    };
    o.start_pattern = pick(data[1]);
    o.continue_pattern = pick(data[2]);
    o.end_pattern = pick(data[3]);
    o.unmatched = if data[0] & 2 == 0 {
        UnmatchedContentTreatment::SingleLine
    } else {
        UnmatchedContentTreatment::Discard
    };
    let mut fo = FramerOptions::default();
    fo.max_line_bytes = 1 + data[4] as usize % 64;
    fo.long_lines = if data[0] & 4 == 0 {
        LongLinePolicy::Split
    } else {
        LongLinePolicy::Truncate
    };
    fo.strip_cr = data[0] & 8 != 0;
    let max = 1 + data[5] as usize * 3;
    let body = &data[6..];
    let cuts: Vec<usize> = body.iter().take(8).map(|&b| b as usize * 7).collect();
    let whole = run(&o, fo, max, body, &[]);
    let pieces = run(&o, fo, max, body, &cuts);
    assert_eq!(whole, pieces);
});
