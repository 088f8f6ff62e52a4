//! The regex dialects of LoongCollector, translated to the syntax of the
//! `regex-syntax` crate.
//!
//! LoongCollector compiles user patterns with two engines: boost's Perl
//! syntax (the C++ `*_native` processors, multiline rules) and Go's RE2
//! (`processor_regex`, `processor_filter_regex`, `processor_split_log_regex`
//! and the other Go processors). Both accept constructs that
//! `regex-syntax` reads differently or refuses:
//!
//! | written            | meaning in boost / Go         | translated to             |
//! |--------------------|-------------------------------|---------------------------|
//! | `[^[]`, `[[]`      | `[` is a literal in a class   | `[^\[]`                   |
//! | `[a&&b]`, `[~~]`   | `&`, `~` are literals         | `[a\&\&b]`                |
//! | `[+--]`            | a range ending in `-`         | `[+-\-]`                  |
//! | `{`, `x{a}`, `{,3}`| a literal `{` (not a count)   | `\{`                      |
//! | `\Q...\E`          | a quoted literal              | the literal, escaped      |
//! | `\h`, `\H` (boost) | horizontal space (not)        | `[\t ]`, `[^\t ]`         |
//! | `` \` ``, `\'` (boost) | start, end of the text    | `\A`, `\z`                |
//! | `\Z` (boost)       | end, or before a final `\n`   | `(?:\n?\z)`               |
//! | `\e` (boost)       | escape (0x1B)                 | `\x1B`                    |
//! | `\0`, `\0NN`       | octal byte                    | `\x{NN}`                  |
//! | `\é` (escaped non-ASCII) | the character           | `é`                       |
//! | `(?#...)`          | a comment                     | nothing                   |
//! | `(?'n'...)` (boost)| a named group                 | `(?P<n>...)`              |
//!
//! Constructs a finite automaton cannot run are refused, the message naming
//! the construct and what to write instead ([`DialectError`]): look-around
//! (`(?=`, `(?!`, `(?<=`, `(?<!`), back-references (`\1`, `\k<name>`),
//! atomic groups (`(?>`), possessive quantifiers (`a*+`), `\G`, and boost's
//! collating elements (`[[.a.]]`, `[[=a=]]`).
//!
//! Everything else is passed through unchanged: a pattern already in Rust
//! syntax comes out the same (see [`translate`]).

use std::borrow::Cow;

/// Which engine's syntax a pattern was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// boost's Perl syntax: the C++ `*_native` processors and multiline rules.
    Boost,
    /// Go's `regexp` (RE2): the Go processors (`processor_regex`…).
    Go,
}

/// A construct of the pattern that has no translation: what, where, and
/// what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{construct} at offset {offset} is not supported ({fix})")]
#[non_exhaustive]
pub struct DialectError {
    /// Byte offset of the construct in the pattern.
    pub offset: usize,
    /// The construct, e.g. `look-ahead (?=...)`.
    pub construct: String,
    /// What to write instead.
    pub fix: &'static str,
}

/// Translates `pattern` from `dialect` to `regex-syntax`'s syntax. Returns
/// the pattern itself when nothing needs a change.
///
/// ```
/// use logtail_core::process::dialect::{translate, Dialect};
///
/// assert_eq!(translate(r"([^[]*) (\S+)", Dialect::Go).unwrap(), r"([^\[]*) (\S+)");
/// assert_eq!(translate(r"(\w+) (\d+)", Dialect::Boost).unwrap(), r"(\w+) (\d+)");
/// assert!(translate(r"(?<=a)b", Dialect::Boost).is_err());
/// ```
///
/// # Errors
///
/// A construct with no equivalent (look-around, back-references, atomic
/// groups, possessive quantifiers…).
pub fn translate(pattern: &str, dialect: Dialect) -> Result<Cow<'_, str>, DialectError> {
    let out = Translator {
        src: pattern,
        chars: pattern.char_indices().collect(),
        i: 0,
        out: String::with_capacity(pattern.len() + 8),
        dialect,
    }
    .run()?;
    Ok(if out == pattern {
        Cow::Borrowed(pattern)
    } else {
        Cow::Owned(out)
    })
}

struct Translator<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: String,
    dialect: Dialect,
}

fn refuse(offset: usize, construct: impl Into<String>, fix: &'static str) -> DialectError {
    DialectError {
        offset,
        construct: construct.into(),
        fix,
    }
}

impl Translator<'_> {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(o, _)| o)
    }

    /// The source text from char index `from` up to (not including) `to`.
    fn slice(&self, from: usize, to: usize) -> &str {
        let start = self.chars.get(from).map_or(self.src.len(), |&(o, _)| o);
        let end = self.chars.get(to).map_or(self.src.len(), |&(o, _)| o);
        self.src.get(start..end).unwrap_or("")
    }

    fn run(mut self) -> Result<String, DialectError> {
        while let Some(c) = self.peek(0) {
            match c {
                '\\' => self.escape(false)?,
                '[' => self.class()?,
                '(' => self.group()?,
                '{' => self.brace()?,
                '*' | '+' | '?' => {
                    self.out.push(c);
                    self.i += 1;
                    self.possessive(c)?;
                }
                _ => {
                    self.out.push(c);
                    self.i += 1;
                }
            }
        }
        Ok(self.out)
    }

    /// After a quantifier `q`: a `+` makes it possessive (boost).
    fn possessive(&mut self, q: char) -> Result<(), DialectError> {
        if q == '?' {
            // `??` is lazy; `?+` possessive. (`x??` then `+` is not valid in
            // any dialect, left to the parser.)
            if self.peek(0) == Some('+') && self.quantifier_before(self.i - 1) {
                return Err(refuse(
                    self.offset(),
                    "possessive quantifier ?+",
                    "drop the trailing + (a plain ? matches the same lines here)",
                ));
            }
            return Ok(());
        }
        if self.peek(0) == Some('+') {
            return Err(refuse(
                self.offset(),
                format!("possessive quantifier {q}+"),
                "drop the trailing + (the automaton never backtracks, so the plain quantifier matches the same lines)",
            ));
        }
        Ok(())
    }

    /// Whether the `?` at char index `at` is a quantifier (not the `?` of
    /// `(?`).
    fn quantifier_before(&self, at: usize) -> bool {
        at > 0 && self.chars.get(at - 1).is_some_and(|&(_, c)| c != '(')
    }

    /// `{` outside a class: a counted repetition `{n}`, `{n,}`, `{n,m}`, or
    /// else a literal brace (Go and boost read it so; `regex-syntax` errs).
    fn brace(&mut self) -> Result<(), DialectError> {
        let mut j = self.i + 1;
        let digits = |j: &mut usize, s: &Self| {
            let start = *j;
            while s.chars.get(*j).is_some_and(|&(_, c)| c.is_ascii_digit()) {
                *j += 1;
            }
            *j > start
        };
        let mut valid = digits(&mut j, self);
        if valid && self.chars.get(j).is_some_and(|&(_, c)| c == ',') {
            j += 1;
            digits(&mut j, self);
        }
        valid = valid && self.chars.get(j).is_some_and(|&(_, c)| c == '}');
        // A count needs something before it to repeat.
        let repeatable = !self.out.is_empty() && !self.out.ends_with(['(', '|']);
        if valid && repeatable {
            let text = self.slice(self.i, j + 1).to_owned();
            self.out.push_str(&text);
            self.i = j + 1;
            // A possessive `{n}+`.
            self.possessive('}')
        } else {
            self.out.push_str(r"\{");
            self.i += 1;
            Ok(())
        }
    }

    fn group(&mut self) -> Result<(), DialectError> {
        let at = self.offset();
        if self.peek(1) != Some('?') {
            self.out.push('(');
            self.i += 1;
            return Ok(());
        }
        let look = match (self.peek(2), self.peek(3)) {
            (Some('='), _) => Some("look-ahead (?=...)"),
            (Some('!'), _) => Some("negative look-ahead (?!...)"),
            (Some('<'), Some('=')) => Some("look-behind (?<=...)"),
            (Some('<'), Some('!')) => Some("negative look-behind (?<!...)"),
            _ => None,
        };
        if let Some(what) = look {
            return Err(refuse(
                at,
                what,
                "look-around needs a backtracking engine: match the text itself, e.g. capture it in a group and ignore that key, or filter with a second processor",
            ));
        }
        match self.peek(2) {
            Some('>') => Err(refuse(
                at,
                "atomic group (?>...)",
                "write a plain group (?:...); the automaton never backtracks",
            )),
            Some('#') => {
                // A comment: skip to the closing parenthesis.
                let mut j = self.i + 3;
                while self.chars.get(j).is_some_and(|&(_, c)| c != ')') {
                    j += 1;
                }
                self.i = j + 1;
                Ok(())
            }
            Some('|') => Err(refuse(
                at,
                "branch reset group (?|...)",
                "use a plain group (?:...) with one capture group per alternative",
            )),
            Some('\'') if self.dialect == Dialect::Boost => {
                // boost's (?'name'...): a named group, as (?P<name>...).
                let mut j = self.i + 3;
                while self.chars.get(j).is_some_and(|&(_, c)| c != '\'') {
                    j += 1;
                }
                let name = self.slice(self.i + 3, j).to_owned();
                self.out.push_str(&format!("(?P<{name}>"));
                self.i = j + 1;
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || c == 'R' || c == '&' => Err(refuse(
                at,
                "recursion (?R) / subroutine call",
                "write the repeated part out",
            )),
            _ => {
                self.out.push_str("(?");
                self.i += 2;
                Ok(())
            }
        }
    }

    /// A backslash escape at `self.i` (inside a class when `in_class`).
    fn escape(&mut self, in_class: bool) -> Result<(), DialectError> {
        let at = self.offset();
        let Some(c) = self.peek(1) else {
            // A trailing backslash: left for the parser to report.
            self.out.push('\\');
            self.i += 1;
            return Ok(());
        };
        let boost = self.dialect == Dialect::Boost;
        match c {
            'Q' => {
                // \Q...\E: a literal (up to \E or the end).
                let mut j = self.i + 2;
                let mut lit = String::new();
                while let Some(&(_, d)) = self.chars.get(j) {
                    if d == '\\' && self.chars.get(j + 1).is_some_and(|&(_, e)| e == 'E') {
                        j += 2;
                        break;
                    }
                    lit.push(d);
                    j += 1;
                }
                for ch in lit.chars() {
                    if regex_syntax::is_meta_character(ch) {
                        self.out.push('\\');
                    }
                    self.out.push(ch);
                }
                self.i = j;
                return Ok(());
            }
            'E' => {
                // A stray \E: nothing (Go and boost ignore it).
                self.i += 2;
                return Ok(());
            }
            '1'..='9' => {
                return Err(refuse(
                    at,
                    format!("back-reference \\{c}"),
                    "a finite automaton cannot compare with earlier text: capture both parts and compare them downstream",
                ))
            }
            'k' | 'g' if boost && !in_class => {
                return Err(refuse(
                    at,
                    format!("back-reference \\{c}"),
                    "a finite automaton cannot compare with earlier text: capture both parts and compare them downstream",
                ))
            }
            'G' => {
                return Err(refuse(
                    at,
                    "\\G (end of the previous match)",
                    "anchor with ^ instead",
                ))
            }
            'h' if boost => self.out.push_str(if in_class { r"\t " } else { r"[\t ]" }),
            'H' if boost && !in_class => self.out.push_str(r"[^\t ]"),
            '`' if boost && !in_class => self.out.push_str(r"\A"),
            '\'' if boost && !in_class => self.out.push_str(r"\z"),
            'Z' if !in_class => self.out.push_str(r"(?:\n?\z)"),
            'e' => self.out.push_str(r"\x1B"),
            '0' => {
                // Octal: \0, \0N, \0NN.
                let mut j = self.i + 2;
                let mut v: u32 = 0;
                while j < self.i + 4 && self.chars.get(j).is_some_and(|&(_, d)| ('0'..='7').contains(&d)) {
                    v = v * 8 + self.chars[j].1.to_digit(8).unwrap_or(0);
                    j += 1;
                }
                self.out.push_str(&format!(r"\x{{{v:X}}}"));
                self.i = j;
                return Ok(());
            }
            'x' | 'p' | 'P' if self.peek(2) == Some('{') => {
                // \x{...}, \p{...}: copied whole, so that the braces are
                // not taken for a repetition.
                let mut j = self.i + 3;
                while self.chars.get(j).is_some_and(|&(_, d)| d != '}') {
                    j += 1;
                }
                let text = self.slice(self.i, j + 1).to_owned();
                self.out.push_str(&text);
                self.i = j + 1;
                return Ok(());
            }
            c if !c.is_ascii() => self.out.push(c),
            c => {
                self.out.push('\\');
                self.out.push(c);
            }
        }
        self.i += 2;
        Ok(())
    }

    /// A bracket class starting at `self.i`.
    fn class(&mut self) -> Result<(), DialectError> {
        self.out.push('[');
        self.i += 1;
        if self.peek(0) == Some('^') {
            self.out.push('^');
            self.i += 1;
        }
        // A `]` first is a literal.
        if self.peek(0) == Some(']') {
            self.out.push_str(r"\]");
            self.i += 1;
        }
        loop {
            let Some(c) = self.peek(0) else {
                // Unclosed: left for the parser to report.
                return Ok(());
            };
            match c {
                ']' => {
                    self.out.push(']');
                    self.i += 1;
                    return Ok(());
                }
                '\\' => self.escape(true)?,
                '[' => match self.peek(1) {
                    Some(':') => {
                        // A POSIX class [:alpha:]: copied whole.
                        let mut j = self.i + 2;
                        while j + 1 < self.chars.len()
                            && !(self.chars[j].1 == ':' && self.chars[j + 1].1 == ']')
                        {
                            j += 1;
                        }
                        let text = self.slice(self.i, j + 2).to_owned();
                        self.out.push_str(&text);
                        self.i = j + 2;
                    }
                    Some(d @ ('.' | '=')) if self.dialect == Dialect::Boost => {
                        return Err(refuse(
                            self.offset(),
                            format!("collating element [{d}...{d}]"),
                            "write the characters themselves",
                        ))
                    }
                    _ => {
                        self.out.push_str(r"\[");
                        self.i += 1;
                    }
                },
                '&' | '~' => {
                    self.out.push('\\');
                    self.out.push(c);
                    self.i += 1;
                }
                '-' if self.peek(1) == Some('-') => {
                    self.out.push_str(r"-\-");
                    self.i += 2;
                }
                _ => {
                    self.out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> String {
        translate(p, Dialect::Boost).unwrap().into_owned()
    }

    #[test]
    fn rust_syntax_passes_unchanged() {
        for p in [
            r"(\S+) - \[([^\]]+)\] (.*)",
            r"(?i)(GET|POST) (\d{1,3})",
            r"\x{41}\p{Han}+[[:alpha:]]",
            r"(?P<a>x)(?<b>y)",
            r"a{2,}b{3}c{1,4}",
        ] {
            assert!(
                matches!(translate(p, Dialect::Go).unwrap(), Cow::Borrowed(_)),
                "{p}"
            );
            assert_eq!(t(p), p);
        }
    }

    #[test]
    fn class_literals() {
        assert_eq!(t(r"([^[]*)"), r"([^\[]*)");
        assert_eq!(t(r"[[]"), r"[\[]");
        assert_eq!(t(r"[]a]"), r"[\]a]");
        assert_eq!(t(r"[^]a]"), r"[^\]a]");
        assert_eq!(t(r"[a&&b~~c]"), r"[a\&\&b\~\~c]");
        assert_eq!(t(r"[+--]"), r"[+-\-]");
        assert_eq!(t(r"[[:digit:]x]"), r"[[:digit:]x]");
    }

    #[test]
    fn braces_that_are_not_counts() {
        assert_eq!(t(r#"{"a":(\d+)}"#), r#"\{"a":(\d+)}"#);
        assert_eq!(t(r"x{a}"), r"x\{a}");
        assert_eq!(t(r"x{,3}"), r"x\{,3}");
        assert_eq!(t(r"(x{2})"), r"(x{2})");
        assert_eq!(t(r"({2})"), r"(\{2})");
    }

    #[test]
    fn escapes() {
        assert_eq!(t(r"\Qa.b*\E(\d)"), r"a\.b\*(\d)");
        assert_eq!(t(r"a\hb[\h]"), r"a[\t ]b[\t ]");
        assert_eq!(t(r"\`x\'"), r"\Ax\z");
        assert_eq!(t(r"(\w+)\Z"), r"(\w+)(?:\n?\z)");
        assert_eq!(t(r"\0\012"), r"\x{0}\x{A}");
        assert_eq!(t(r"\中"), "中");
        assert_eq!(t(r"a(?#note)b"), "ab");
        assert_eq!(t(r"(?'level'\w+)"), r"(?P<level>\w+)");
        assert_eq!(t(r#"\"\/\-"#), r#"\"\/\-"#);
    }

    #[test]
    fn refusals_name_the_construct_and_the_fix() {
        for (p, what) in [
            (r"(?=a)b", "look-ahead"),
            (r"a(?!b)", "negative look-ahead"),
            (r"(?<=a)b", "look-behind"),
            (r"(?<!a)b", "negative look-behind"),
            (r"(a)\1", "back-reference \\1"),
            (r"(?>ab)", "atomic group"),
            (r"a*+", "possessive quantifier *+"),
            (r"a++", "possessive quantifier ++"),
            (r"a{2}+", "possessive quantifier }+"),
            (r"\Ga", "\\G"),
            (r"[[.a.]]", "collating element"),
        ] {
            let e = translate(p, Dialect::Boost).unwrap_err();
            assert!(e.to_string().contains(what), "{p}: {e}");
            assert!(!e.fix.is_empty());
        }
        // A lazy `??` and a `(?` group are not possessive.
        assert_eq!(t(r"a??b"), r"a??b");
        assert_eq!(t(r"(?:a)+"), r"(?:a)+");
        assert_eq!(t(r"a+?"), r"a+?");
    }

    #[test]
    fn go_leaves_boost_only_escapes_to_the_parser() {
        assert_eq!(translate(r"\h", Dialect::Go).unwrap(), r"\h");
        assert_eq!(translate(r"([^[]+)", Dialect::Go).unwrap(), r"([^\[]+)");
    }
}
