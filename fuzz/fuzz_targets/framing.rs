//! The framer on arbitrary bytes, options and chunk cuts: consumed bytes
//! never exceed the input, line ranges are in bounds, ordered, free of
//! newlines and no longer than the maximum.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::file::{Framer, FramerOptions, LongLinePolicy};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = 1 + data[0] as usize % 64;
    let mut opts = FramerOptions::default();
    opts.max_line_bytes = max;
    opts.long_lines = if data[1] & 1 == 0 {
        LongLinePolicy::Split
    } else {
        LongLinePolicy::Truncate
    };
    opts.strip_cr = data[1] & 2 != 0;
    let cut = data[2] as usize;
    let body = &data[3..];
    let mut f = Framer::new(opts);
    let mut pos = 0;
    for end in [cut.min(body.len()), body.len()] {
        if end < pos {
            continue;
        }
        let buf = &body[pos..end];
        let mut last_end = 0;
        let n = f.frame(buf, |r| {
            assert!(r.start >= last_end && r.end <= buf.len() && r.start <= r.end);
            assert!(r.len() <= max);
            assert!(!buf[r.clone()].contains(&b'\n'));
            last_end = r.end;
        });
        assert!(n <= buf.len());
        pos += n;
    }
    let rest = &body[pos..];
    let n = f.flush_partial(rest, |r| assert!(r.end <= rest.len()));
    assert_eq!(n, rest.len());
});
