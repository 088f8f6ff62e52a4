//! processor_regex (Go) on arbitrary lines, with fixed and arbitrary
//! patterns and both FullMatch settings: it never panics, a parse gives at
//! most one field per key, each a span of the line, and with FullMatch a
//! parse means the pattern matched the whole line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::regex_go::{GoRegexOptions, GoRegexParser};
use logtail_core::process::Outcome;

const PATTERNS: &[&str] = &[
    r#"([\d\.:]+) - (\S+) \[(\S+) \S+\] \"(\S+) (\S+) ([^\\"]+)\" (\d+) (\d+)"#,
    r"^(\w+\s+\d+\s+\d+:\d+:\d+)\s+([\w-]+)\s+(\w+)\[(\d+)\]:\s+(.*)",
    r"([^[]*)\[([^]]*)\] (.*)",
    r"(a|ab)(c|bcd)?(.*)",
    r"(\w+)$",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (pattern, line) = if mode < 192 {
        (PATTERNS[mode as usize % PATTERNS.len()].to_owned(), rest)
    } else {
        let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let pat = String::from_utf8_lossy(&rest[..cut.min(48)]).into_owned();
        (pat, rest.get(cut + 1..).unwrap_or(&[]))
    };
    let keys: Vec<String> = (0..(mode as usize % 7) + 1)
        .map(|i| format!("k{i}"))
        .collect();
    let n = keys.len();
    let mut o = GoRegexOptions::new(pattern, keys);
    o.full_match = mode & 1 != 0;
    let Ok(mut p) = GoRegexParser::new(o) else {
        return;
    };
    if let Outcome::Parsed(fields) = p.parse(line) {
        assert!(fields.len() <= n);
        for f in &fields {
            if let Some(span) = f.value.as_span() {
                assert!(span.start <= span.end && span.end <= line.len());
            }
        }
    }
});
