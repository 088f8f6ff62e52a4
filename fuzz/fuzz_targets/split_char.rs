//! processor_split_char's splitter on arbitrary values and options: it
//! never panics, spans lie inside the value, keys are used in order, and
//! without a quote the pieces and separators give back the value's prefix.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::split_char::{split, Piece};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (a, b, value) = (data[0], data[1], &data[2..]);
    let sep = [b',', b'|', b'\t', b'"'][a as usize % 4];
    let quote = (b & 1 != 0).then_some([b'"', b'\'', b','][b as usize / 2 % 3]);
    let nkeys = (a as usize / 4) % 6;
    let preserve = b & 128 != 0;
    let s = split(value, sep, quote, nkeys, preserve);
    let mut next_key = 0;
    for (k, p) in &s.pieces {
        if let Piece::Span(x, y) = p {
            assert!(x <= y && *y <= value.len());
        }
        if let Some(k) = k {
            assert!(*k < nkeys && *k >= next_key);
            next_key = *k + 1;
        }
    }
    assert!(s.filled <= nkeys);
    if quote.is_none() && s.ok && nkeys > 0 {
        let mut joined = Vec::new();
        for (i, (_, p)) in s.pieces.iter().enumerate() {
            if i > 0 {
                joined.push(sep);
            }
            if let Piece::Span(x, y) = p {
                joined.extend_from_slice(&value[*x..*y]);
            }
        }
        assert!(value.starts_with(&joined));
    }
});
