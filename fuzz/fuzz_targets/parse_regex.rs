//! The regex parser on arbitrary lines, with fixed patterns (one-pass and
//! not) and with arbitrary patterns: building never panics, parsing never
//! panics, and a parse gives one field per key, each a span of the line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::regex::{RegexError, RegexOptions, RegexParser};
use logtail_core::process::Outcome;

const PATTERNS: &[&str] = &[
    r#"(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)""#,
    r#"(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d+) (\d+) "([^"]*)" "([^"]*)""#,
    r"\[(\S+)]\s\[(\S+)]\s(.*)",
    r"(a|ab)(c|bcd)?(.*)",
    r"(?i)([^,]*),(\w*)(?:,(.*))?",
    r"([中文]+):(.*)",
];

fn build(pattern: &str) -> Option<RegexParser> {
    // Learn the group count from the error, then build with that many keys.
    let groups = match RegexParser::new(RegexOptions::new(pattern, Vec::new())) {
        Ok(p) => return Some(p),
        Err(RegexError::KeyCount { groups, .. }) => groups,
        Err(_) => return None,
    };
    let keys = (0..groups).map(|i| format!("k{i}")).collect();
    RegexParser::new(RegexOptions::new(pattern, keys)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (pattern, line) = if mode < 192 {
        (PATTERNS[mode as usize % PATTERNS.len()].to_owned(), rest)
    } else {
        // Arbitrary pattern (up to the first NUL, at most 48 bytes).
        let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let pat = String::from_utf8_lossy(&rest[..cut.min(48)]).into_owned();
        (pat, rest.get(cut + 1..).unwrap_or(&[]))
    };
    let Some(mut p) = build(&pattern) else {
        return;
    };
    if let Outcome::Parsed(fields) = p.parse(line) {
        for f in &fields {
            if !f.value.is_empty() {
                let span = f.value.as_span().expect("a span, not a copy");
                assert!(span.start <= span.end && span.end <= line.len());
            }
        }
    }
});
