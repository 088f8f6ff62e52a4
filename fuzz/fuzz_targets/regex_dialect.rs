//! The dialect translation on arbitrary patterns: it never panics; what it
//! accepts, the boost and Go processors either build or refuse with an
//! error (never a panic); a pattern made only of literals and the
//! translated constructs comes out unchanged or parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::dialect::{translate, Dialect};
use logtail_core::process::regex::{RegexOptions, RegexParser};
use logtail_core::process::regex_go::{GoRegexOptions, GoRegexParser};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pattern = String::from_utf8_lossy(&rest[..rest.len().min(64)]).into_owned();
    let dialect = if mode & 1 == 0 {
        Dialect::Boost
    } else {
        Dialect::Go
    };
    if let Ok(t) = translate(&pattern, dialect) {
        // Translating twice changes nothing more than once for patterns
        // without escapes that grow (a stable point is not required, only
        // no panic).
        let _ = translate(&t, dialect);
    }
    let _ = RegexParser::new(RegexOptions::new(pattern.clone(), vec!["a".into()]));
    if let Ok(mut p) = GoRegexParser::new(GoRegexOptions::new(pattern, vec!["a".into()])) {
        let _ = p.parse(rest);
    }
});
