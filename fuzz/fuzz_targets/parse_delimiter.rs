//! The delimiter parser on arbitrary lines and options: it never panics,
//! a parse respects the overflow treatment, and on lines without quote
//! bytes (and with `extend`) joining the fields with the separator gives
//! back the trimmed line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::delimiter::{DelimiterOptions, DelimiterParser, Overflow};
use logtail_core::process::Outcome;

const SEPARATORS: &[&str] = &[",", "\t", "|", "@@", "丨", "\"", "\\t", "ab"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (a, b, line) = (data[0], data[1], &data[2..]);
    let separator = SEPARATORS[a as usize % SEPARATORS.len()];
    let n_keys = 1 + (a as usize / 8) % 6;
    let mut o = DelimiterOptions::new(
        separator,
        (0..n_keys)
            .map(|i| {
                if b & 64 != 0 && i == 1 {
                    "_".to_owned()
                } else {
                    format!("k{i}")
                }
            })
            .collect(),
    );
    o.quote = ["\"", "'", ""][b as usize % 3].to_owned();
    o.allowing_shortened_fields = b & 4 != 0;
    o.overflowed_fields_treatment =
        [Overflow::Extend, Overflow::Keep, Overflow::Discard][(b as usize / 8) % 3];
    let mut p = DelimiterParser::new(o.clone()).expect("valid options");
    let Outcome::Parsed(fields) = p.parse(line) else {
        return;
    };
    assert!(!fields.is_empty() || o.overflowed_fields_treatment == Overflow::Discard);
    if o.overflowed_fields_treatment != Overflow::Extend {
        assert!(fields.len() <= n_keys + 1);
    }
    if !o.allowing_shortened_fields && o.overflowed_fields_treatment != Overflow::Discard {
        assert!(fields.len() >= n_keys);
    }
    let sep: &[u8] = if separator == "\\t" {
        b"\t"
    } else {
        separator.as_bytes()
    };
    let quote_free = !line.contains(&b'"') && !line.contains(&b'\'');
    if quote_free && o.overflowed_fields_treatment == Overflow::Extend && b & 64 == 0 {
        let joined = fields
            .iter()
            .map(|f| f.value.resolve(line).to_vec())
            .collect::<Vec<_>>()
            .join(sep);
        let end = line.len()
            - line
                .iter()
                .rev()
                .take_while(|&&c| c == b' ' || c == b'\r')
                .count();
        let begin = line[..end].iter().take_while(|&&c| c == b' ').count();
        assert_eq!(joined, &line[begin..end]);
    }
});
