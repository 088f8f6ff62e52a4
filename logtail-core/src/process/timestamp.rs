//! `processor_parse_timestamp_native`: reads the log's own time from a field
//! with a strftime-style format and sets [`Event::time`] (with nanoseconds).
//!
//! Supported directives (C locale, names matched case-insensitively):
//!
//! | directive | meaning |
//! |---|---|
//! | `%Y` `%y` `%C` | year (up to 4 digits), 2-digit year (69–99 → 19xx, 00–68 → 20xx), century |
//! | `%m` `%b` `%B` `%h` | month number; month name, abbreviated or full (all three accept both) |
//! | `%d` `%e` | day of month (`%e` allows leading spaces) |
//! | `%j` | day of year (used when the format has neither month nor day) |
//! | `%H` `%I` `%p` | hour 0–23; hour 1–12 with `AM`/`PM` |
//! | `%M` `%S` | minute; second (0–60) |
//! | `%f` | fraction of a second: any number of digits (at least one); nanosecond precision, digits beyond the ninth are read and ignored |
//! | `%s` | seconds since the epoch (absolute: no time zone applies) |
//! | `%z` | offset: `+0800`, `+08:00`, `+08`, `Z` |
//! | `%a` `%A` `%u` `%w` `%U` `%V` `%W` | weekday and week numbers: read and checked, not used to compute the date |
//! | `%n` `%t`, whitespace | zero or more whitespace characters |
//! | `%c` `%x` `%X` `%r` `%R` (and `%T` `%D` `%F` `%%`) | `%a %b %e %H:%M:%S %Y`, `%m/%d/%y`, `%H:%M:%S`, `%I:%M:%S %p`, `%H:%M` (`%H:%M:%S`, `%m/%d/%y`, `%Y-%m-%d`, `%`) |
//!
//! Like LoongCollector's (strptime-based) parser, the format must match a
//! prefix of the value: text after it is ignored.
//!
//! Differences from LoongCollector, on purpose:
//! - Without `SourceTimezone` (and without `%z` in the format) times are
//!   read as **UTC**, not in the machine's local zone, so that results do
//!   not depend on the environment. Set `SourceTimezone: GMT+08:00` for
//!   local times.
//! - Without a year in the format and without `SourceYear`, the year is the
//!   one of the reference time (see below) in the source's zone; a result
//!   more than a day after the reference time is taken from the year before
//!   (a `Dec 31 23:59:59` line read on January 1st).
//!
//! A value that does not parse leaves the event's time as it was, counts as
//! `failed` and the event is kept. An event without the source field is left
//! alone and not counted as a failure.
//!
//! Time window (`DiscardOlderThanSecs`, default 300, 0 = off): an event whose
//! parsed time is older than *reference time − window* is dropped and
//! counted (`dropped`). The reference time is the event's time before this
//! processor set it, which is the time the input read the line; a fixed
//! clock can be set instead ([`TimestampParser::set_clock`]) for tests and
//! replays. Events whose time this processor did not set are never dropped.
//!
//! Speed: the parser remembers the last value's text up to the fraction (for
//! `%Y-%m-%d %H:%M:%S.%f`, `2026-11-23 13:20:53.`) with the seconds it gave;
//! a value starting with the same text only has its fraction (and `%z`)
//! read. The cache is used only when that prefix's parse provably did not
//! look at the bytes after it, so a hit always gives what a full parse gives.

use std::sync::Arc;

use crate::event::Event;
use crate::process::{DropReason, ParserStats, CONTENT};
use crate::{EventBatch, Parser, Timestamp};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_parse_timestamp_native";

/// The default of `DiscardOlderThanSecs`.
pub const DEFAULT_DISCARD_OLDER_THAN_SECS: u64 = 300;

/// A year-less time more than this far after the reference time is taken
/// from the previous year.
const YEAR_ROLLBACK_SECS: i64 = 86_400;

/// Options of `processor_parse_timestamp_native`.
///
/// Non-exhaustive: build it with [`TimestampOptions::new`] and set the other
/// fields. ([`TimestampOptions::default`] has an empty `SourceFormat`,
/// which [`TimestampParser::new`] rejects until one is set.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimestampOptions {
    /// `SourceKey`: the field holding the time (default `content`).
    pub source_key: Arc<str>,
    /// `SourceFormat`: the strftime-style format (required).
    pub source_format: String,
    /// `SourceTimezone`: `GMT+08:00`, `GMT-03:30` (also `GMT`, `UTC`,
    /// `UTC+0800`); used when the format has no `%z`. Default: UTC.
    pub source_timezone: Option<String>,
    /// `SourceYear`: the year of formats without one (0–9999).
    pub source_year: Option<i32>,
    /// `DiscardOlderThanSecs` (ours): the time window in seconds; 0 turns it off.
    pub discard_older_than_secs: u64,
}

impl Default for TimestampOptions {
    fn default() -> Self {
        TimestampOptions {
            source_key: Arc::from(CONTENT),
            source_format: String::new(),
            source_timezone: None,
            source_year: None,
            discard_older_than_secs: DEFAULT_DISCARD_OLDER_THAN_SECS,
        }
    }
}

impl TimestampOptions {
    /// Options for the required `SourceFormat`, with the defaults for the
    /// rest: `SourceKey` `content`, UTC, no `SourceYear`, and
    /// `DiscardOlderThanSecs` [`DEFAULT_DISCARD_OLDER_THAN_SECS`].
    ///
    /// ```
    /// use logtail_core::process::timestamp::{TimestampOptions, TimestampParser};
    ///
    /// let mut o = TimestampOptions::new("%Y-%m-%d %H:%M:%S");
    /// o.source_key = "time".into();
    /// o.source_timezone = Some("GMT+08:00".to_owned());
    /// let parser = TimestampParser::new(o).unwrap();
    /// ```
    pub fn new(source_format: impl Into<String>) -> Self {
        TimestampOptions {
            source_format: source_format.into(),
            ..TimestampOptions::default()
        }
    }
}

/// A configuration error of `processor_parse_timestamp_native`; the message
/// names the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// `SourceKey` is empty.
    #[error("SourceKey: must not be empty")]
    EmptySourceKey,
    /// `SourceFormat` is missing or empty.
    #[error("SourceFormat: must not be empty")]
    EmptyFormat,
    /// `SourceFormat` uses a directive this parser does not know.
    #[error("SourceFormat: unsupported directive %{directive} at offset {offset}")]
    UnsupportedDirective {
        /// The character after `%`.
        directive: char,
        /// Byte offset of the `%` in the format.
        offset: usize,
    },
    /// `SourceFormat` ends with a lone `%`.
    #[error("SourceFormat: incomplete directive % at offset {offset}")]
    IncompleteDirective {
        /// Byte offset of the `%` in the format.
        offset: usize,
    },
    /// `SourceTimezone` is not `GMT±HH:MM`.
    #[error("SourceTimezone: expected GMT+HH:MM or GMT-HH:MM, got {0:?}")]
    BadTimezone(String),
    /// `SourceYear` is outside 0–9999.
    #[error("SourceYear: {0} is outside 0..=9999")]
    BadYear(i32),
}

/// The offset (seconds east of UTC) a format states literally, as in
/// `%Y-%m-%dT%H:%M:%S+08:00` or `%H%M%S-0330`: a `+`/`-` outside a
/// directive followed by `HH:MM` or `HHMM` digits.
pub fn literal_offset(format: &str) -> Option<i32> {
    let b = format.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => i += 2,
            sign @ (b'+' | b'-') => {
                let digits = |r: std::ops::Range<usize>| {
                    b.get(r.clone())
                        .filter(|d| d.iter().all(u8::is_ascii_digit))
                        .map(|d| d.iter().fold(0i32, |a, &c| a * 10 + i32::from(c - b'0')))
                };
                let hh = digits(i + 1..i + 3);
                let mm = if b.get(i + 3) == Some(&b':') {
                    digits(i + 4..i + 6)
                } else {
                    digits(i + 3..i + 5)
                };
                if let (Some(h), Some(m)) = (hh, mm) {
                    if h <= 23 && m <= 59 {
                        let off = h * 3600 + m * 60;
                        return Some(if sign == b'-' { -off } else { off });
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Parses a `SourceTimezone` value into seconds east of UTC.
pub fn parse_timezone(tz: &str) -> Result<i32, TimestampError> {
    let bad = || TimestampError::BadTimezone(tz.to_string());
    let t = tz.trim();
    let rest = t
        .strip_prefix("GMT")
        .or_else(|| t.strip_prefix("UTC"))
        .ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(0);
    }
    let (off, used) = parse_offset(rest.as_bytes(), 0).ok_or_else(bad)?;
    if used.0 != rest.len() {
        return Err(bad());
    }
    Ok(off)
}

/// What a format is compiled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// This exact byte.
    Lit(u8),
    /// Zero or more ASCII whitespace bytes.
    Space,
    /// A number of at most `width` digits in `lo..=hi`.
    Num {
        field: NumField,
        width: u8,
        lo: u32,
        hi: u32,
        spaces: bool,
    },
    WeekdayName,
    MonthName,
    AmPm,
    Frac,
    Zone,
    Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Year,
    Year2,
    Century,
    Month,
    Day,
    YDay,
    Hour,
    Hour12,
    Minute,
    Second,
    /// Weekday and week numbers: checked, not used.
    Ignored,
}

const fn num(field: NumField, width: u8, lo: u32, hi: u32) -> Item {
    Item::Num {
        field,
        width,
        lo,
        hi,
        spaces: false,
    }
}

/// The fields read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parts {
    year: Option<i32>,
    year2: Option<u32>,
    century: Option<u32>,
    /// 1–12, 0 = not read.
    month: u32,
    /// 1–31, 0 = not read.
    day: u32,
    /// 1–366, 0 = not read.
    yday: u32,
    hour: u32,
    hour12: Option<u32>,
    pm: bool,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: Option<i32>,
    epoch: Option<i64>,
}

/// A compiled `SourceFormat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TimeFormat {
    items: Vec<Item>,
    /// `items[..split]` is the cached prefix (everything before the first `%f`).
    split: usize,
    /// The items after the prefix only touch the fraction and offset, so the
    /// prefix's seconds can be cached.
    rest_simple: bool,
    /// The format gives the year itself (`%Y`, `%y`, `%C`, `%s`).
    has_year: bool,
}

impl TimeFormat {
    fn compile(fmt: &str) -> Result<Self, TimestampError> {
        if fmt.is_empty() {
            return Err(TimestampError::EmptyFormat);
        }
        let mut items = Vec::new();
        let b = fmt.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c != b'%' {
                items.push(if c.is_ascii_whitespace() {
                    Item::Space
                } else {
                    Item::Lit(c)
                });
                i += 1;
                continue;
            }
            let Some(d) = fmt[i + 1..].chars().next() else {
                return Err(TimestampError::IncompleteDirective { offset: i });
            };
            let expand = |s: &str| TimeFormat::compile(s).map(|f| f.items);
            use NumField::*;
            match d {
                'Y' => items.push(num(Year, 4, 0, 9999)),
                'y' => items.push(num(Year2, 2, 0, 99)),
                'C' => items.push(num(Century, 2, 0, 99)),
                'm' => items.push(num(Month, 2, 1, 12)),
                'd' => items.push(num(Day, 2, 1, 31)),
                'e' => items.push(Item::Num {
                    field: Day,
                    width: 2,
                    lo: 1,
                    hi: 31,
                    spaces: true,
                }),
                'j' => items.push(num(YDay, 3, 1, 366)),
                'H' => items.push(num(Hour, 2, 0, 23)),
                'I' => items.push(num(Hour12, 2, 1, 12)),
                'M' => items.push(num(Minute, 2, 0, 59)),
                'S' => items.push(num(Second, 2, 0, 60)),
                'u' => items.push(num(Ignored, 1, 1, 7)),
                'w' => items.push(num(Ignored, 1, 0, 6)),
                'U' | 'V' | 'W' => items.push(num(Ignored, 2, 0, 53)),
                'a' | 'A' => items.push(Item::WeekdayName),
                'b' | 'B' | 'h' => items.push(Item::MonthName),
                'p' => items.push(Item::AmPm),
                'f' => items.push(Item::Frac),
                'z' => items.push(Item::Zone),
                's' => items.push(Item::Epoch),
                'n' | 't' => items.push(Item::Space),
                '%' => items.push(Item::Lit(b'%')),
                'c' => items.extend(expand("%a %b %e %H:%M:%S %Y")?),
                'x' | 'D' => items.extend(expand("%m/%d/%y")?),
                'X' | 'T' => items.extend(expand("%H:%M:%S")?),
                'r' => items.extend(expand("%I:%M:%S %p")?),
                'R' => items.extend(expand("%H:%M")?),
                'F' => items.extend(expand("%Y-%m-%d")?),
                _ => {
                    return Err(TimestampError::UnsupportedDirective {
                        directive: d,
                        offset: i,
                    })
                }
            }
            i += 1 + d.len_utf8();
        }
        let split = items
            .iter()
            .position(|it| *it == Item::Frac)
            .unwrap_or(items.len());
        let rest_simple = items[split..]
            .iter()
            .all(|it| matches!(it, Item::Lit(_) | Item::Space | Item::Frac | Item::Zone));
        let has_year = items.iter().any(|it| {
            matches!(
                it,
                Item::Epoch
                    | Item::Num {
                        field: NumField::Year | NumField::Year2 | NumField::Century,
                        ..
                    }
            )
        });
        Ok(TimeFormat {
            items,
            split,
            rest_simple,
            has_year,
        })
    }
}

/// Reads `items` from `text` at `pos` into `parts`. Returns the end
/// position and how far the parse looked (`reach`): the bytes in
/// `pos..reach` decided the result, so another text that shares them parses
/// the same.
fn run(items: &[Item], text: &[u8], mut pos: usize, parts: &mut Parts) -> Option<(usize, usize)> {
    let mut reach = pos;
    for &it in items {
        let (end, peeked) = step(it, text, pos, parts)?;
        pos = end;
        reach = reach.max(end.saturating_add(peeked));
    }
    Some((pos, reach))
}

/// Reads `n` digits at most; returns (value, digits read). Never more than 19
/// digits, so the value cannot overflow.
#[inline(always)]
fn digits(text: &[u8], pos: usize, max: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut n = 0;
    while n < max {
        match text.get(pos + n) {
            Some(&c @ b'0'..=b'9') => v = v * 10 + (c - b'0') as u64,
            _ => break,
        }
        n += 1;
    }
    (v, n)
}

const MONTHS: [&[u8]; 12] = [
    b"january",
    b"february",
    b"march",
    b"april",
    b"may",
    b"june",
    b"july",
    b"august",
    b"september",
    b"october",
    b"november",
    b"december",
];

const WEEKDAYS: [&[u8]; 7] = [
    b"sunday",
    b"monday",
    b"tuesday",
    b"wednesday",
    b"thursday",
    b"friday",
    b"saturday",
];

/// Matches a full name or its 3-letter abbreviation; returns (index, end,
/// bytes peeked past the end).
fn name(text: &[u8], pos: usize, names: &[&[u8]]) -> Option<(usize, usize, usize)> {
    let abbr = text.get(pos..pos + 3)?;
    for (i, full) in names.iter().enumerate() {
        if abbr.eq_ignore_ascii_case(&full[..3]) {
            let rest = &full[3..];
            let end = pos + 3;
            return match text.get(end..end + rest.len()) {
                Some(t) if !rest.is_empty() && t.eq_ignore_ascii_case(rest) => {
                    Some((i, end + rest.len(), 0))
                }
                // Deciding "abbreviation only" looked at up to rest.len() bytes.
                _ => Some((i, end, rest.len())),
            };
        }
    }
    None
}

/// `+HH`, `+HHMM`, `+HH:MM` (or `-`) at `pos`: (seconds east, (end, peeked)).
fn parse_offset(text: &[u8], pos: usize) -> Option<(i32, (usize, usize))> {
    let sign = match text.get(pos)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, n) = digits(text, pos + 1, 2);
    if n != 2 || h > 23 {
        return None;
    }
    let mut end = pos + 3;
    let mut m = 0;
    let colon = text.get(end) == Some(&b':');
    let at = if colon { end + 1 } else { end };
    let (mm, n) = digits(text, at, 2);
    let peeked = match n {
        2 => {
            m = mm;
            end = at + 2;
            0
        }
        // `+08:` needs minutes; `+08` alone is whole hours.
        _ if colon => return None,
        _ => 2,
    };
    if m > 59 {
        return None;
    }
    Some((sign * (h * 3600 + m * 60) as i32, (end, peeked)))
}

/// Reads one item; returns (end, bytes peeked past the end).
#[inline]
fn step(it: Item, text: &[u8], pos: usize, p: &mut Parts) -> Option<(usize, usize)> {
    match it {
        Item::Lit(c) => (text.get(pos) == Some(&c)).then_some((pos + 1, 0)),
        Item::Space => {
            let mut end = pos;
            while text.get(end).is_some_and(u8::is_ascii_whitespace) {
                end += 1;
            }
            Some((end, 1))
        }
        Item::Num {
            field,
            width,
            lo,
            hi,
            spaces,
        } => {
            let mut start = pos;
            if spaces {
                while text.get(start) == Some(&b' ') {
                    start += 1;
                }
            }
            let (v, n) = digits(text, start, width as usize);
            if n == 0 || v < lo as u64 || v > hi as u64 {
                return None;
            }
            let v = v as u32;
            match field {
                NumField::Year => p.year = Some(v as i32),
                NumField::Year2 => p.year2 = Some(v),
                NumField::Century => p.century = Some(v),
                NumField::Month => p.month = v,
                NumField::Day => p.day = v,
                NumField::YDay => p.yday = v,
                NumField::Hour => p.hour = v,
                NumField::Hour12 => p.hour12 = Some(v),
                NumField::Minute => p.minute = v,
                NumField::Second => p.second = v,
                NumField::Ignored => {}
            }
            Some((start + n, usize::from(n < width as usize)))
        }
        Item::WeekdayName => name(text, pos, &WEEKDAYS).map(|(_, e, k)| (e, k)),
        Item::MonthName => name(text, pos, &MONTHS).map(|(i, e, k)| {
            p.month = i as u32 + 1;
            (e, k)
        }),
        Item::AmPm => {
            let t = text.get(pos..pos + 2)?;
            p.pm = if t.eq_ignore_ascii_case(b"pm") {
                true
            } else if t.eq_ignore_ascii_case(b"am") {
                false
            } else {
                return None;
            };
            Some((pos + 2, 0))
        }
        Item::Frac => {
            let (v, n) = digits(text, pos, 9);
            if n == 0 {
                return None;
            }
            p.nanos = (v * POW10[9 - n]) as u32;
            let mut end = pos + n;
            while text.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            Some((end, 1))
        }
        Item::Zone => {
            if let Some(b'Z' | b'z') = text.get(pos) {
                p.offset = Some(0);
                return Some((pos + 1, 0));
            }
            let (off, r) = parse_offset(text, pos)?;
            p.offset = Some(off);
            Some(r)
        }
        Item::Epoch => {
            let neg = text.get(pos) == Some(&b'-');
            let start = pos + usize::from(neg);
            let (v, n) = digits(text, start, 18);
            if n == 0 || text.get(start + n).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            p.epoch = Some(if neg { -(v as i64) } else { v as i64 });
            Some((start + n, 1))
        }
    }
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Days from 1970-01-01 to the given proleptic Gregorian date
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day count from 1970-01-01 (inverse of [`days_from_civil`]).
fn year_of_days(z: i64) -> i64 {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    yoe + era * 400 + i64::from(mp >= 10)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The seconds the date and time fields give (not the fraction), and
/// whether they are absolute (`%s`) rather than local to an offset.
fn base_secs(p: &Parts, default_year: i32) -> Option<(i64, bool)> {
    if let Some(e) = p.epoch {
        return Some((e, true));
    }
    let year = match (p.year, p.century, p.year2) {
        (Some(y), _, _) => y as i64,
        (None, Some(c), Some(y)) => c as i64 * 100 + y as i64,
        (None, Some(c), None) => c as i64 * 100,
        (None, None, Some(y)) if y < 69 => 2000 + y as i64,
        (None, None, Some(y)) => 1900 + y as i64,
        (None, None, None) => default_year as i64,
    };
    let days = if p.yday != 0 && p.month == 0 && p.day == 0 {
        if p.yday > 365 + u32::from(is_leap(year)) {
            return None;
        }
        days_from_civil(year, 1, 1) + p.yday as i64 - 1
    } else {
        let month = p.month.max(1);
        let day = p.day.max(1);
        if day > days_in_month(year, month) {
            return None;
        }
        days_from_civil(year, month, day)
    };
    let hour = match p.hour12 {
        Some(h) => h % 12 + if p.pm { 12 } else { 0 },
        None => p.hour,
    };
    let secs = days * 86_400 + (hour * 3600 + p.minute * 60 + p.second) as i64;
    Some((secs, false))
}

/// The cached prefix parse.
#[derive(Debug, Default)]
struct Cache {
    valid: bool,
    /// The prefix text.
    key: Vec<u8>,
    /// The default year it was computed with.
    year: i32,
    parts: Parts,
    /// `base_secs` of `parts` (only with a simple rest).
    base: Option<(i64, bool)>,
}

/// The `processor_parse_timestamp_native` step.
#[derive(Debug)]
pub struct TimestampParser {
    source_key: Arc<str>,
    format: TimeFormat,
    tz: i32,
    source_year: Option<i32>,
    window: i64,
    clock: Option<Timestamp>,
    cache: Cache,
    /// The last reference year: `[start, end)` in zone-local seconds.
    year_span: (i64, i64, i32),
    stats: ParserStats,
}

impl TimestampParser {
    /// Checks the options, compiles the format and builds the step.
    pub fn new(opts: TimestampOptions) -> Result<Self, TimestampError> {
        if opts.source_key.is_empty() {
            return Err(TimestampError::EmptySourceKey);
        }
        let format = TimeFormat::compile(&opts.source_format)?;
        let tz = match &opts.source_timezone {
            Some(tz) => parse_timezone(tz)?,
            None => 0,
        };
        // A literal offset written in the format (`%H:%M:%S+08:00`) is the
        // zone of every value: it wins over SourceTimezone and UTC.
        let tz = literal_offset(&opts.source_format).unwrap_or(tz);
        if let Some(y) = opts.source_year {
            if !(0..=9999).contains(&y) {
                return Err(TimestampError::BadYear(y));
            }
        }
        Ok(TimestampParser {
            source_key: opts.source_key,
            format,
            tz,
            source_year: opts.source_year,
            window: i64::try_from(opts.discard_older_than_secs).unwrap_or(i64::MAX),
            clock: None,
            cache: Cache::default(),
            year_span: (0, 0, 0),
            stats: ParserStats::default(),
        })
    }

    /// Uses `now` as the reference time of every event (`None`: each event's
    /// read time, the default).
    pub fn set_clock(&mut self, now: Option<Timestamp>) {
        self.clock = now;
    }

    /// The year used for formats without one; `None` when the format has one.
    #[inline]
    fn default_year(&mut self, now: Timestamp) -> Option<i32> {
        if self.format.has_year {
            return None;
        }
        if let Some(y) = self.source_year {
            return Some(y);
        }
        let local = now.secs.saturating_add(self.tz as i64);
        let (start, end, year) = self.year_span;
        if local >= start && local < end {
            return Some(year);
        }
        let y = year_of_days(local.div_euclid(86_400)).clamp(0, 9999);
        let start = days_from_civil(y, 1, 1) * 86_400;
        let end = days_from_civil(y + 1, 1, 1) * 86_400;
        self.year_span = (start, end, y as i32);
        Some(y as i32)
    }

    fn resolve(&self, base: (i64, bool), p: &Parts) -> Timestamp {
        let (secs, absolute) = base;
        let secs = if absolute {
            secs
        } else {
            secs - p.offset.unwrap_or(self.tz) as i64
        };
        Timestamp {
            secs,
            nanos: p.nanos,
        }
    }

    /// Takes a year-less time that lies well after `now` from the year before.
    fn roll_back(&self, ts: Timestamp, p: &Parts, year: Option<i32>, now: Timestamp) -> Timestamp {
        match year {
            Some(y)
                if self.source_year.is_none()
                    && ts.secs > now.secs.saturating_add(YEAR_ROLLBACK_SECS) =>
            {
                base_secs(p, y - 1).map_or(ts, |b| self.resolve(b, p))
            }
            _ => ts,
        }
    }

    /// Parses one value without the cache: the reference the cached path is
    /// checked against. `now` is the reference time (for the default year).
    pub fn parse_uncached(&mut self, text: &[u8], now: Timestamp) -> Option<Timestamp> {
        let year = self.default_year(now);
        let mut p = Parts::default();
        run(&self.format.items, text, 0, &mut p)?;
        let ts = self.resolve(base_secs(&p, year.unwrap_or(0))?, &p);
        Some(self.roll_back(ts, &p, year, now))
    }

    /// Parses one value (using and updating the prefix cache). `now` is the
    /// reference time (for the default year). Never panics.
    pub fn parse_value(&mut self, text: &[u8], now: Timestamp) -> Option<Timestamp> {
        self.parse_value_end(text, now).map(|(ts, _)| ts)
    }

    /// [`TimestampParser::parse_value`], also giving where the format's
    /// match ended in `text` (the text after it is ignored, as strptime
    /// ignores it). Never panics.
    pub fn parse_value_end(&mut self, text: &[u8], now: Timestamp) -> Option<(Timestamp, usize)> {
        let year = self.default_year(now);
        let y = year.unwrap_or(0);
        let split = self.format.split;
        let c = &mut self.cache;
        let (mut p, pos, base) = if c.valid
            && c.year == y
            && text.len() >= c.key.len()
            && text[..c.key.len()] == c.key[..]
        {
            (c.parts, c.key.len(), c.base)
        } else {
            let mut p = Parts::default();
            let (pos, reach) = run(&self.format.items[..split], text, 0, &mut p)?;
            let base = if self.format.rest_simple {
                Some(base_secs(&p, y)?)
            } else {
                None
            };
            // Cache only a prefix whose parse looked at nothing after it.
            c.valid = reach <= pos;
            if c.valid {
                c.key.clear();
                c.key.extend_from_slice(&text[..pos]);
                c.year = y;
                c.parts = p;
                c.base = base;
            }
            (p, pos, base)
        };
        let (end, _) = run(&self.format.items[split..], text, pos, &mut p)?;
        let base = match base {
            Some(b) => b,
            None => base_secs(&p, y)?,
        };
        let ts = self.resolve(base, &p);
        Some((self.roll_back(ts, &p, year, now), end))
    }

    /// `SourceKey`: the field the time is read from.
    pub fn source_key(&self) -> &str {
        &self.source_key
    }

    /// Whether the format reads a fraction of a second (`%f`).
    pub fn has_fraction(&self) -> bool {
        self.format.items.contains(&Item::Frac)
    }

    /// Whether `ts` lies outside the time window ending at `now`
    /// (`DiscardOlderThanSecs`; never when the window is 0).
    pub fn outside_window(&self, ts: Timestamp, now: Timestamp) -> bool {
        self.window > 0
            && ts
                < Timestamp {
                    secs: now.secs.saturating_sub(self.window),
                    nanos: now.nanos,
                }
    }

    /// Processes one event with reference time `now`: sets its time if the
    /// source parses. Returns `false` when the event falls outside the time
    /// window and is to be dropped. Never panics.
    pub fn process_event(&mut self, event: &mut Event, now: Timestamp) -> bool {
        self.stats.processed += 1;
        let Some(src) = event.field(&self.source_key) else {
            return true;
        };
        let Some(ts) = self.parse_value(src, now) else {
            self.stats.failed += 1;
            return true;
        };
        event.time = ts;
        if self.outside_window(ts, now) {
            self.stats.dropped += 1;
            return false;
        }
        true
    }
}

impl Parser for TimestampParser {
    fn name(&self) -> &str {
        NAME
    }

    fn failure_kind(&self) -> crate::process::FailureKind {
        crate::process::FailureKind::ParseTime
    }

    fn drop_kind(&self) -> crate::process::DropKind {
        crate::process::DropKind::TimeWindow
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| {
            let now = self.clock.unwrap_or(e.time);
            self.process_event(e, now)
        });
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        (self.window > 0).then(|| DropReason {
            reason: format!(
                "their time (from field {:?}) is more than {} s before {}",
                &*self.source_key,
                self.window,
                if self.clock.is_some() {
                    "the reference time"
                } else {
                    "the time they were read"
                }
            ),
            option: "DiscardOlderThanSecs",
            remedy: "0 keeps them all, a larger value keeps older ones".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::test_batch;
    use crate::{Field, FieldKey};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// 2026-11-23 13:20:53 UTC, a Monday.
    const T0: i64 = 1_795_440_053;
    const NOW: Timestamp = Timestamp {
        secs: T0 + 10,
        nanos: 0,
    };

    fn parser(fmt: &str) -> TimestampParser {
        TimestampParser::new(TimestampOptions {
            source_format: fmt.into(),
            ..Default::default()
        })
        .unwrap()
    }

    fn parse(fmt: &str, text: &str) -> Option<Timestamp> {
        let mut p = parser(fmt);
        let a = p.parse_uncached(text.as_bytes(), NOW);
        let b = p.parse_value(text.as_bytes(), NOW);
        assert_eq!(a, b, "{fmt} {text}");
        // And again with a warm cache.
        assert_eq!(p.parse_value(text.as_bytes(), NOW), a);
        a
    }

    fn ts(secs: i64, nanos: u32) -> Option<Timestamp> {
        Some(Timestamp { secs, nanos })
    }

    fn ev(s: &[u8], read: i64) -> Event {
        Event::line(
            Bytes::copy_from_slice(s),
            0,
            Timestamp {
                secs: read,
                nanos: 0,
            },
        )
    }

    #[test]
    fn civil_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        for d in [-719_528, -1, 0, 59, 365, 11_016, 11_017, 20_780, 2_932_896] {
            let y = year_of_days(d);
            assert!(days_from_civil(y, 1, 1) <= d && d < days_from_civil(y + 1, 1, 1));
        }
    }

    #[test]
    fn numeric_directives() {
        assert_eq!(parse("%Y-%m-%d %H:%M:%S", "2026-11-23 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%Y%m%d%H%M%S", "20261123132053"), ts(T0, 0));
        assert_eq!(parse("%y-%m-%d %H:%M:%S", "26-11-23 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%y", "69"), ts(-365 * 86_400, 0));
        assert_eq!(parse("%C%y-%m-%d %T", "2026-11-23 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%C", "20"), ts(946_684_800, 0));
        assert_eq!(parse("%Y-%j %T", "2026-327 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%Y-%j", "2024-366"), ts(1_735_603_200, 0));
        assert_eq!(parse("%Y-%j", "2026-366"), None);
        assert_eq!(
            parse("%Y-%m-%d %e", "2026-11-23 1"),
            ts(T0 - 13 * 3600 - 20 * 60 - 53, 0).map(|t| Timestamp {
                secs: t.secs - 22 * 86_400,
                ..t
            })
        );
        assert_eq!(parse("%Y/%m/%e %R:%S", "2026/11/ 23 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%Y/%m/%e %R:%S", "2026/11/23 13:20:53"), ts(T0, 0));
        assert_eq!(
            parse("%Y-%m-%d %I:%M:%S %p", "2026-11-23 01:20:53 PM"),
            ts(T0, 0)
        );
        assert_eq!(parse("%Y-%m-%d %r", "2026-11-23 01:20:53 pm"), ts(T0, 0));
        assert_eq!(
            parse("%Y-%m-%d %r", "2026-11-24 12:20:53 am"),
            ts(T0 + 11 * 3600, 0)
        );
        assert_eq!(
            parse("%Y-%m-%d %r", "2026-11-23 12:20:53 PM"),
            ts(T0 - 3600, 0)
        );
        assert_eq!(
            parse("%Y-%m-%d %I:%M:%S", "2026-11-23 01:20:53"),
            ts(T0 - 12 * 3600, 0)
        );
        // %p without %I does not move %H.
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S %p", "2026-11-23 13:20:53 PM"),
            ts(T0, 0)
        );
        assert_eq!(parse("%x %X", "11/23/26 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%D %T", "11/23/26 13:20:53"), ts(T0, 0));
        assert_eq!(parse("%F %T", "2026-11-23 13:20:53"), ts(T0, 0));
        // Leap second 60 is accepted and lands on the next minute.
        assert_eq!(parse("%F %T", "2026-11-23 13:20:60"), ts(T0 + 7, 0));
        // Ranges.
        for bad in [
            "2026-13-01 00:00:00",
            "2026-00-01 00:00:00",
            "2026-02-29 00:00:00",
            "2026-11-31 00:00:00",
            "2026-11-23 24:00:00",
            "2026-11-23 13:60:00",
            "2026-11-23 13:20:61",
            "2026-11-23 13:20",
            "x2026-11-23 13:20:53",
            "",
        ] {
            assert_eq!(parse("%F %T", bad), None, "{bad}");
        }
        assert_eq!(parse("%F", "2024-02-29"), ts(1_709_164_800, 0));
    }

    #[test]
    fn ignored_week_directives_are_checked() {
        let f = "%u %w %U %V %W %F %T";
        assert_eq!(parse(f, "1 1 47 48 47 2026-11-23 13:20:53"), ts(T0, 0));
        assert_eq!(parse(f, "8 1 47 48 47 2026-11-23 13:20:53"), None);
        assert_eq!(parse(f, "1 7 47 48 47 2026-11-23 13:20:53"), None);
        assert_eq!(parse(f, "1 1 54 48 47 2026-11-23 13:20:53"), None);
    }

    #[test]
    fn names() {
        let want = ts(T0, 0);
        assert_eq!(
            parse("%a %b %d %H:%M:%S %Y", "Mon Nov 23 13:20:53 2026"),
            want
        );
        assert_eq!(
            parse("%A %B %d %H:%M:%S %Y", "monday NOVEMBER 23 13:20:53 2026"),
            want
        );
        // Both accept either form.
        assert_eq!(
            parse("%a %h %d %H:%M:%S %Y", "Monday November 23 13:20:53 2026"),
            want
        );
        assert_eq!(
            parse("%A %B %d %H:%M:%S %Y", "Mon Nov 23 13:20:53 2026"),
            want
        );
        assert_eq!(parse("%c", "Mon Nov 23 13:20:53 2026"), want);
        assert_eq!(
            parse("%c", "Sun Mar  1 00:00:00 2026"),
            ts(1_772_323_200, 0)
        );
        assert_eq!(parse("%d/%b/%Y:%T %z", "23/Nov/2026:13:20:53 +0000"), want);
        assert_eq!(parse("%b/%Y", "Xyz/2026"), None);
        assert_eq!(parse("%a %Y", "Mo 2026"), None);
        assert_eq!(parse("%Y %p", "2026 XM"), None);
        for (i, m) in [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .enumerate()
        {
            let got = parse("%b %Y", &format!("{m} 2026")).unwrap();
            assert_eq!(got.secs, days_from_civil(2026, i as u32 + 1, 1) * 86_400);
        }
    }

    #[test]
    fn fraction_keeps_nanoseconds() {
        let f = "%Y-%m-%d %H:%M:%S.%f";
        assert_eq!(parse(f, "2026-11-23 13:20:53.1"), ts(T0, 100_000_000));
        assert_eq!(parse(f, "2026-11-23 13:20:53.123"), ts(T0, 123_000_000));
        assert_eq!(parse(f, "2026-11-23 13:20:53.123456"), ts(T0, 123_456_000));
        assert_eq!(
            parse(f, "2026-11-23 13:20:53.123456789"),
            ts(T0, 123_456_789)
        );
        assert_eq!(
            parse(f, "2026-11-23 13:20:53.1234567891234"),
            ts(T0, 123_456_789)
        );
        assert_eq!(parse(f, "2026-11-23 13:20:53.000000001"), ts(T0, 1));
        assert_eq!(parse(f, "2026-11-23 13:20:53."), None);
        assert_eq!(parse(f, "2026-11-23 13:20:53"), None);
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S,%f", "2026-11-23 13:20:53,5"),
            ts(T0, 500_000_000)
        );
        assert_eq!(
            parse("%Y%m%d%H%M%S%f", "20261123132053042"),
            ts(T0, 42_000_000)
        );
        assert_eq!(parse("%s.%f", "1795440053.25"), ts(T0, 250_000_000));
    }

    #[test]
    fn epoch_seconds() {
        assert_eq!(parse("%s", "1795440053"), ts(T0, 0));
        assert_eq!(parse("%s", "0"), ts(0, 0));
        assert_eq!(parse("%s", "-86400"), ts(-86_400, 0));
        assert_eq!(
            parse("%s", "999999999999999999"),
            ts(999_999_999_999_999_999, 0)
        );
        assert_eq!(parse("%s", "9999999999999999999"), None);
        assert_eq!(parse("%s", "x"), None);
        // %s is absolute: neither %z nor SourceTimezone moves it.
        assert_eq!(parse("%s %z", "1795440053 +0800"), ts(T0, 0));
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: "%s".into(),
            source_timezone: Some("GMT+08:00".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.parse_value(b"1795440053", NOW), ts(T0, 0));
    }

    #[test]
    fn zone_directive() {
        let f = "%Y-%m-%dT%H:%M:%S%z";
        assert_eq!(parse(f, "2026-11-23T21:20:53+0800"), ts(T0, 0));
        assert_eq!(parse(f, "2026-11-23T21:20:53+08:00"), ts(T0, 0));
        assert_eq!(parse(f, "2026-11-23T21:20:53+08"), ts(T0, 0));
        assert_eq!(parse(f, "2026-11-23T09:50:53-03:30"), ts(T0, 0));
        assert_eq!(parse(f, "2026-11-23T13:20:53Z"), ts(T0, 0));
        assert_eq!(parse(f, "2026-11-23T13:20:53z"), ts(T0, 0));
        for bad in ["+8", "+08:", "+08:0", "+2400", "+0860", "UTC", ""] {
            assert_eq!(
                parse(f, &format!("2026-11-23T13:20:53{bad}")),
                None,
                "{bad}"
            );
        }
        let f = "%Y-%m-%dT%H:%M:%S.%f%z";
        assert_eq!(parse(f, "2026-11-23T21:20:53.5+08:00"), ts(T0, 500_000_000));
    }

    #[test]
    fn whitespace_directives_and_literals() {
        assert_eq!(
            parse("%Y-%m-%d%n%H:%M:%S", "2026-11-23 \t 13:20:53"),
            ts(T0, 0)
        );
        assert_eq!(parse("%Y-%m-%d%t%H:%M:%S", "2026-11-2313:20:53"), ts(T0, 0));
        assert_eq!(parse("%Y-%m-%d %H:%M:%S", "2026-11-2313:20:53"), ts(T0, 0));
        assert_eq!(
            parse("[%Y-%m-%d %H:%M:%S]", "[2026-11-23 13:20:53]"),
            ts(T0, 0)
        );
        assert_eq!(parse("[%Y-%m-%d %H:%M:%S]", "(2026-11-23 13:20:53]"), None);
        assert_eq!(parse("%%%Y", "%2026"), ts(1_767_225_600, 0));
        assert_eq!(parse("年%Y", "年2026"), ts(1_767_225_600, 0));
    }

    #[test]
    fn trailing_text_crlf_unicode_invalid_utf8_and_big_values() {
        let f = "%Y-%m-%d %H:%M:%S";
        assert_eq!(parse(f, "2026-11-23 13:20:53\r"), ts(T0, 0));
        assert_eq!(
            parse(f, "2026-11-23 13:20:53 INFO 日本語 message"),
            ts(T0, 0)
        );
        assert_eq!(parse(f, "日本 2026-11-23 13:20:53"), None);
        assert_eq!(parse(f, ""), None);
        let mut p = parser(f);
        assert_eq!(
            p.parse_value(b"2026-11-23 13:20:53\xff\xfe", NOW),
            ts(T0, 0)
        );
        assert_eq!(p.parse_value(b"\xff2026-11-23 13:20:53", NOW), None);
        let big = format!("2026-11-23 13:20:53 {}", "x".repeat(1 << 20));
        assert_eq!(p.parse_value(big.as_bytes(), NOW), ts(T0, 0));
        let digits = format!("2026-11-23 13:20:53.{}", "7".repeat(1 << 20));
        let mut p = parser("%Y-%m-%d %H:%M:%S.%f");
        assert_eq!(p.parse_value(digits.as_bytes(), NOW), ts(T0, 777_777_777));
        assert_eq!(p.parse_value(&[b'9'; 1 << 20], NOW), None);
    }

    #[test]
    fn a_literal_offset_in_the_format_is_the_zone() {
        assert_eq!(literal_offset("%Y-%m-%dT%H:%M:%S+08:00"), Some(8 * 3600));
        assert_eq!(literal_offset("%H%M%S-0330"), Some(-(3 * 3600 + 1800)));
        assert_eq!(literal_offset("%Y-%m-%d %H:%M:%S"), None);
        assert_eq!(literal_offset("%Y-%m-%d"), None);
        for (format, tz) in [
            ("%Y-%m-%dT%H:%M:%S+08:00", None),
            ("%Y-%m-%dT%H:%M:%S+08:00", Some("GMT-03:00")),
        ] {
            let mut o = TimestampOptions::new(format);
            o.source_timezone = tz.map(str::to_owned);
            o.discard_older_than_secs = 0;
            let mut p = TimestampParser::new(o).unwrap();
            let got = p.parse_value(b"2024-01-01T08:00:00+08:00", NOW);
            assert_eq!(got.map(|t| t.secs), Some(1_704_067_200), "{format} {tz:?}");
        }
    }

    #[test]
    fn timezone_option() {
        assert_eq!(parse_timezone("GMT+08:00"), Ok(8 * 3600));
        assert_eq!(parse_timezone("GMT-03:30"), Ok(-(3 * 3600 + 1800)));
        assert_eq!(parse_timezone("UTC+0545"), Ok(5 * 3600 + 45 * 60));
        assert_eq!(parse_timezone("GMT"), Ok(0));
        for bad in [
            "",
            "+08:00",
            "GMT+8",
            "GMT+08:00x",
            "Asia/Shanghai",
            "GMT+25:00",
        ] {
            assert_eq!(
                parse_timezone(bad),
                Err(TimestampError::BadTimezone(bad.into())),
                "{bad}"
            );
        }
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: "%Y-%m-%d %H:%M:%S %z".into(),
            source_timezone: Some("GMT+08:00".into()),
            ..Default::default()
        })
        .unwrap();
        // %z in the value wins over SourceTimezone.
        assert_eq!(p.parse_value(b"2026-11-23 13:20:53 +0000", NOW), ts(T0, 0));
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: "%Y-%m-%d %H:%M:%S".into(),
            source_timezone: Some("GMT+08:00".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.parse_value(b"2026-11-23 21:20:53", NOW), ts(T0, 0));
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: "%Y-%m-%d %H:%M:%S".into(),
            source_timezone: Some("GMT-03:30".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.parse_value(b"2026-11-23 09:50:53", NOW), ts(T0, 0));
        // Default: UTC.
        assert_eq!(parse("%Y-%m-%d %H:%M:%S", "2026-11-23 13:20:53"), ts(T0, 0));
    }

    #[test]
    fn year_option_and_default_year() {
        let opts = |year| TimestampOptions {
            source_format: "%b %d %H:%M:%S".into(),
            source_year: year,
            ..Default::default()
        };
        let mut p = TimestampParser::new(opts(Some(2020))).unwrap();
        assert_eq!(
            p.parse_value(b"Nov 23 13:20:53", NOW).unwrap().secs,
            days_from_civil(2020, 11, 23) * 86_400 + 48_053
        );
        // No year: the reference time's year.
        let mut p = TimestampParser::new(opts(None)).unwrap();
        assert_eq!(p.parse_value(b"Nov 23 13:20:53", NOW), ts(T0, 0));
        // A Dec 31 line read on Jan 1 is from the year before.
        let jan1 = Timestamp {
            secs: days_from_civil(2027, 1, 1) * 86_400 + 5,
            nanos: 0,
        };
        let want = days_from_civil(2026, 12, 31) * 86_400 + 86_399;
        assert_eq!(p.parse_value(b"Dec 31 23:59:59", jan1), ts(want, 0));
        assert_eq!(p.parse_uncached(b"Dec 31 23:59:59", jan1), ts(want, 0));
        // The cache notices the year change.
        assert_eq!(
            p.parse_value(b"Jan 01 00:00:01", jan1).unwrap().secs,
            jan1.secs - 4
        );
        assert_eq!(
            p.parse_value(b"Jan 01 00:00:01", NOW).unwrap().secs,
            days_from_civil(2026, 1, 1) * 86_400 + 1
        );
        // The year is taken in the source's zone.
        let mut p = TimestampParser::new(TimestampOptions {
            source_timezone: Some("GMT+08:00".into()),
            ..opts(None)
        })
        .unwrap();
        let dec31_20h_utc = Timestamp {
            secs: days_from_civil(2026, 12, 31) * 86_400 + 20 * 3600,
            nanos: 0,
        };
        assert_eq!(
            p.parse_value(b"Jan 01 04:00:00", dec31_20h_utc),
            ts(dec31_20h_utc.secs, 0)
        );
        assert_eq!(
            TimestampParser::new(opts(Some(10_000)))
                .unwrap_err()
                .to_string(),
            "SourceYear: 10000 is outside 0..=9999"
        );
        assert!(TimestampParser::new(opts(Some(-1))).is_err());
    }

    #[test]
    fn build_errors_name_the_option() {
        let err = |fmt: &str| {
            TimestampParser::new(TimestampOptions {
                source_format: fmt.into(),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(err(""), "SourceFormat: must not be empty");
        assert_eq!(
            err("%Y%Q"),
            "SourceFormat: unsupported directive %Q at offset 2"
        );
        assert_eq!(
            err("%Y %é"),
            "SourceFormat: unsupported directive %é at offset 3"
        );
        assert_eq!(
            err("%Y%"),
            "SourceFormat: incomplete directive % at offset 2"
        );
        assert_eq!(
            err("%E"),
            "SourceFormat: unsupported directive %E at offset 0"
        );
        let e = TimestampParser::new(TimestampOptions {
            source_key: Arc::from(""),
            source_format: "%s".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "SourceKey: must not be empty");
        let e = TimestampParser::new(TimestampOptions {
            source_format: "%s".into(),
            source_timezone: Some("CST".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SourceTimezone: expected GMT+HH:MM or GMT-HH:MM, got \"CST\""
        );
    }

    #[test]
    fn processor_sets_time_counts_failures_and_keeps_events() {
        let mut p = parser("%Y-%m-%d %H:%M:%S.%f");
        assert_eq!(p.name(), NAME);
        let mut b = test_batch(vec![
            ev(b"2026-11-23 13:20:53.5 INFO a", T0 + 1),
            ev(b"garbage", T0 + 1),
            ev(b"", T0 + 1),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 3);
        assert_eq!(
            b.events[0].time,
            Timestamp {
                secs: T0,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            b.events[0].field(CONTENT).unwrap(),
            b"2026-11-23 13:20:53.5 INFO a"
        );
        assert_eq!(b.events[1].time.secs, T0 + 1);
        assert_eq!(b.events[2].time.secs, T0 + 1);
        assert_eq!(
            p.stats(),
            ParserStats {
                processed: 3,
                failed: 2,
                dropped: 0,
            }
        );
    }

    #[test]
    fn source_key_option() {
        let mut p = TimestampParser::new(TimestampOptions {
            source_key: Arc::from("time"),
            source_format: "%s".into(),
            ..Default::default()
        })
        .unwrap();
        let mut e = ev(b"not a time", T0);
        e.fields.push(Field {
            key: FieldKey::from_static(&"time"),
            value: Bytes::from_static(b"1795440000").into(),
        });
        let mut b = test_batch(vec![e, ev(b"1795440000", T0)]);
        p.process(&mut b);
        assert_eq!(b.events[0].time.secs, 1_795_440_000);
        // No such field: untouched, not a failure.
        assert_eq!(b.events[1].time.secs, T0);
        assert_eq!(p.stats().failed, 0);
        assert_eq!(p.stats().processed, 2);
    }

    #[test]
    fn time_window() {
        let f = "%Y-%m-%d %H:%M:%S";
        let mut p = parser(f);
        let read = T0 + 300;
        let mut b = test_batch(vec![
            ev(b"2026-11-23 13:20:53", read), // exactly at the edge: kept
            ev(b"2026-11-23 13:20:52", read), // one second older: dropped
            ev(b"2020-01-01 00:00:00", read), // old: dropped
            ev(b"2030-01-01 00:00:00", read), // future: kept
            ev(b"not a time", read),          // not set by us: kept
        ]);
        p.process(&mut b);
        let kept: Vec<_> = b.events.iter().map(|e| e.content.clone()).collect();
        assert_eq!(
            kept,
            ["2026-11-23 13:20:53", "2030-01-01 00:00:00", "not a time"]
        );
        assert_eq!(
            p.stats(),
            ParserStats {
                processed: 5,
                failed: 1,
                dropped: 2,
            }
        );
        let why = p.drop_reason().expect("the window drops");
        assert_eq!(why.option, "DiscardOlderThanSecs");
        assert!(
            why.reason.contains("300 s before the time they were read"),
            "{why}"
        );

        // 0 turns the window off.
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: f.into(),
            discard_older_than_secs: 0,
            ..Default::default()
        })
        .unwrap();
        let mut b = test_batch(vec![ev(b"2000-01-01 00:00:00", read)]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(p.stats().dropped, 0);
        assert_eq!(p.drop_reason(), None, "a parser that cannot drop says so");

        // A fixed clock replaces the read time; custom window.
        let mut p = TimestampParser::new(TimestampOptions {
            source_format: f.into(),
            discard_older_than_secs: 10,
            ..Default::default()
        })
        .unwrap();
        p.set_clock(Some(Timestamp {
            secs: T0 + 11,
            nanos: 0,
        }));
        let mut b = test_batch(vec![
            ev(b"2026-11-23 13:20:53", 0),
            ev(b"2026-11-23 13:20:54", 0),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].time.secs, T0 + 1);
        p.set_clock(None);
        let mut b = test_batch(vec![ev(b"2026-11-23 13:20:53", T0)]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
    }

    #[test]
    fn cache_hits_only_when_safe() {
        let mut p = parser("%Y-%m-%d %H:%M:%S.%f");
        p.parse_value(b"2026-11-23 13:20:53.1", NOW).unwrap();
        assert!(p.cache.valid);
        assert_eq!(p.cache.key, b"2026-11-23 13:20:53.");
        assert_eq!(
            p.parse_value(b"2026-11-23 13:20:53.2", NOW),
            ts(T0, 200_000_000)
        );
        assert_eq!(
            p.parse_value(b"2026-11-23 13:20:54.2", NOW),
            ts(T0 + 1, 200_000_000)
        );
        assert_eq!(p.parse_value(b"2026-11-23 13:20:54.", NOW), None);
        assert_eq!(p.parse_value(b"2026-11-23 13:20:54", NOW), None);

        // %s stops at a non-digit: cached only when that byte is in the key.
        let mut p = parser("%Y %s");
        assert_eq!(p.parse_value(b"2026 1795440053", NOW), ts(T0, 0));
        assert!(!p.cache.valid);
        assert_eq!(
            p.parse_value(b"2026 17954400531", NOW),
            ts(17_954_400_531, 0)
        );
        let mut p = parser("%s.%f");
        assert_eq!(p.parse_value(b"1795440053.5", NOW), ts(T0, 500_000_000));
        assert!(p.cache.valid);
        assert_eq!(
            p.parse_value(b"17954400531.5", NOW),
            ts(17_954_400_531, 500_000_000)
        );
        // An abbreviated month looked further: no caching.
        let mut p = parser("%Y %b%f");
        assert_eq!(
            p.parse_value(b"2026 Mar1", NOW).unwrap().secs,
            days_from_civil(2026, 3, 1) * 86_400
        );
        assert!(!p.cache.valid);
        // Single-digit seconds stop at the next byte: no caching.
        let mut p = parser("%Y-%m-%d %H:%M:%S");
        p.parse_value(b"2026-11-23 13:20:5 x", NOW).unwrap();
        assert!(!p.cache.valid);
        assert_eq!(p.parse_value(b"2026-11-23 13:20:53", NOW), ts(T0, 0));
        assert!(p.cache.valid);
        assert_eq!(
            p.parse_value(b"2026-11-23 13:20:53 anything", NOW),
            ts(T0, 0)
        );
        // A rest with date fields is cached as fields, not seconds.
        let mut p = parser("%H:%M:%S.%f %Y-%m-%d");
        assert_eq!(
            p.parse_value(b"13:20:53.5 2026-11-23", NOW),
            ts(T0, 500_000_000)
        );
        assert_eq!(
            p.parse_value(b"13:20:53.5 2026-11-24", NOW),
            ts(T0 + 86_400, 500_000_000)
        );
        assert_eq!(p.parse_value(b"13:20:53.5 2026-02-30", NOW), None);
    }

    // ---- references for the property tests ----

    /// A broken-down UTC time plus what the formatter needs.
    #[derive(Debug, Clone, Copy)]
    struct Dt {
        y: i64,
        mo: u32,
        d: u32,
        h: u32,
        mi: u32,
        s: u32,
        nanos: u32,
        /// Fraction digits written for %f (1..=12).
        frac: usize,
        /// Offset in seconds east written for %z.
        off: i32,
        /// %z style: 0 `+HHMM`, 1 `+HH:MM`, 2 `Z` (only for offset 0).
        zstyle: u8,
    }

    /// Days since 1970 the slow way: count years and months.
    fn naive_days(y: i64, mo: u32, d: u32) -> i64 {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = 0i64;
        if y >= 1970 {
            for yy in 1970..y {
                days += if leap(yy) { 366 } else { 365 };
            }
        } else {
            for yy in y..1970 {
                days -= if leap(yy) { 366 } else { 365 };
            }
        }
        let ml = [
            31,
            if leap(y) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        for m in 1..mo {
            days += ml[m as usize - 1];
        }
        days + d as i64 - 1
    }

    fn naive_epoch(t: &Dt) -> i64 {
        naive_days(t.y, t.mo, t.d) * 86_400 + (t.h * 3600 + t.mi * 60 + t.s) as i64
    }

    const MON: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAY: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];

    /// A small strftime for the directives we parse (local fields of `t`).
    fn format(fmt: &str, t: &Dt) -> String {
        let days = naive_days(t.y, t.mo, t.d);
        let wday = (days + 4).rem_euclid(7) as usize;
        let yday = (days - naive_days(t.y, 1, 1) + 1) as u32;
        let h12 = match t.h % 12 {
            0 => 12,
            h => h,
        };
        let mut out = String::new();
        let mut it = fmt.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let d = it.next().unwrap();
            let s = match d {
                'Y' => format!("{:04}", t.y),
                'y' => format!("{:02}", t.y % 100),
                'C' => format!("{:02}", t.y / 100),
                'm' => format!("{:02}", t.mo),
                'd' => format!("{:02}", t.d),
                'e' => format!("{:2}", t.d),
                'j' => format!("{yday:03}"),
                'H' => format!("{:02}", t.h),
                'I' => format!("{h12:02}"),
                'M' => format!("{:02}", t.mi),
                'S' => format!("{:02}", t.s),
                'p' => (if t.h >= 12 { "PM" } else { "AM" }).into(),
                'a' => DAY[wday][..3].into(),
                'A' => DAY[wday].into(),
                'b' | 'h' => MON[t.mo as usize - 1][..3].into(),
                'B' => MON[t.mo as usize - 1].into(),
                'u' => format!("{}", if wday == 0 { 7 } else { wday }),
                'w' => format!("{wday}"),
                'U' => format!("{:02}", (yday + 6 - wday as u32) / 7),
                'W' | 'V' => format!("{:02}", (yday + 6 - (wday as u32 + 6) % 7) / 7),
                's' => format!("{}", naive_epoch(t) - t.off as i64),
                'f' => {
                    let mut f = format!("{:09}", t.nanos);
                    f.truncate(t.frac);
                    while f.len() < t.frac {
                        f.push('0');
                    }
                    f
                }
                'z' => {
                    let (sign, a) = if t.off < 0 {
                        ('-', -t.off)
                    } else {
                        ('+', t.off)
                    };
                    match t.zstyle {
                        2 if t.off == 0 => "Z".into(),
                        1 => format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60),
                        _ => format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60),
                    }
                }
                'n' => "\n".into(),
                't' => "\t".into(),
                'c' => format("%a %b %e %H:%M:%S %Y", t),
                'x' | 'D' => format("%m/%d/%y", t),
                'X' | 'T' => format("%H:%M:%S", t),
                'r' => format("%I:%M:%S %p", t),
                'R' => format("%H:%M", t),
                'F' => format("%Y-%m-%d", t),
                '%' => "%".into(),
                other => panic!("formatter lacks %{other}"),
            };
            out.push_str(&s);
        }
        out
    }

    /// (format, has a full year, has %y, has %z)
    const FORMATS: &[&str] = &[
        "%Y-%m-%d %H:%M:%S.%f",
        "%Y-%m-%dT%H:%M:%S.%f%z",
        "%Y-%m-%d %H:%M:%S,%f %z",
        "%d/%b/%Y:%H:%M:%S %z",
        "%c",
        "%a %b %e %H:%M:%S %Y",
        "%A, %d %B %Y %I:%M:%S %p",
        "%Y%m%d%H%M%S%f",
        "%s.%f",
        "%s",
        "%Y-%j %H:%M:%S",
        "%C%y-%m-%d %T",
        "%x %X",
        "%D %r.%f",
        "%F %R:%S",
        "%u %w %U %W %V %h %e%n%t%H:%M:%S %Y-%m-%d",
        "[%Y-%m-%d %H:%M:%S.%f] %z",
        "%H:%M:%S.%f %Y/%m/%d",
        "%b %d %H:%M:%S",
        "%y%m%d %H%M%S",
    ];

    fn arb_dt() -> impl Strategy<Value = Dt> {
        (
            0i64..=9999,
            1u32..=12,
            1u32..=31,
            0u32..24,
            0u32..60,
            0u32..60,
            0u32..1_000_000_000,
            1usize..=12,
            (-23i32..=23, 0i32..4),
            0u8..3,
        )
            .prop_map(|(y, mo, d, h, mi, s, nanos, frac, (oh, om), zstyle)| Dt {
                y,
                mo,
                d: d.min(days_in_month(y, mo)),
                h,
                mi,
                s,
                nanos,
                frac,
                off: oh * 3600 + oh.signum() * om * 900,
                zstyle,
            })
    }

    fn expected(fmt: &str, t: &Dt, tz: i32) -> Timestamp {
        let nanos = if fmt.contains("%f") {
            let mut n = t.nanos;
            if t.frac < 9 {
                n = n / POW10[9 - t.frac] as u32 * POW10[9 - t.frac] as u32;
            }
            n
        } else {
            0
        };
        let off = if fmt.contains("%z") || fmt.contains("%s") {
            t.off
        } else {
            tz
        };
        Timestamp {
            secs: naive_epoch(t) - off as i64,
            nanos,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Formatting a time and parsing it back gives the naive epoch.
        #[test]
        fn round_trips_against_naive_reference(
            t in arb_dt(),
            fi in 0..FORMATS.len(),
            tzq in -48i32..=48,
        ) {
            let fmt = FORMATS[fi];
            let mut t = t;
            if fmt.contains("%y") && !fmt.contains("%C") {
                t.y = 1969 + t.y % 100;
            }
            if fmt.contains("%x") || fmt.contains("%D") {
                t.y = 1969 + t.y % 100;
            }
            t.d = t.d.min(days_in_month(t.y, t.mo));
            let tz = tzq * 900;
            let year = (!fmt.contains('Y') && !fmt.contains('y') && !fmt.contains("%s") && !fmt.contains("%c") && !fmt.contains('D') && !fmt.contains('x')).then_some(t.y as i32);
            let mut p = TimestampParser::new(TimestampOptions {
                source_format: fmt.into(),
                source_timezone: Some(format!(
                    "GMT{}{:02}:{:02}",
                    if tz < 0 { '-' } else { '+' },
                    tz.abs() / 3600,
                    tz.abs() % 3600 / 60
                )),
                source_year: year,
                ..Default::default()
            })
            .unwrap();
            let text = format(fmt, &t);
            let want = expected(fmt, &t, tz);
            prop_assert_eq!(p.parse_value(text.as_bytes(), NOW), Some(want), "{} {:?}", &text, t);
            prop_assert_eq!(p.parse_uncached(text.as_bytes(), NOW), Some(want));
            // Second parse through the cache, with another fraction.
            let t2 = Dt { nanos: (t.nanos + 1) % 1_000_000_000, frac: 9, ..t };
            let text2 = format(fmt, &t2);
            prop_assert_eq!(p.parse_value(text2.as_bytes(), NOW), Some(expected(fmt, &t2, tz)), "{}", &text2);
        }

        /// The cached path agrees with the uncached one on any sequence of
        /// values, including near misses of the cached prefix.
        #[test]
        fn cache_agrees_with_uncached(
            fi in 0..FORMATS.len(),
            base in arb_dt(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), "[0-9 .:+\\-ZA-Za-z]{0,3}", 0u64..5_000_000_000), 1..20),
        ) {
            let fmt = FORMATS[fi];
            let mut p = parser(fmt);
            let text = format(fmt, &base);
            for (idx, ins, now) in edits {
                let mut v = text.clone().into_bytes();
                let at = idx.index(v.len() + 1);
                v.truncate(at);
                v.extend_from_slice(ins.as_bytes());
                let now = Timestamp { secs: now as i64, nanos: 0 };
                let a = p.parse_value(&v, now);
                let b = p.parse_uncached(&v, now);
                prop_assert_eq!(a, b, "{:?}", String::from_utf8_lossy(&v));
                let full = p.parse_value(text.as_bytes(), now);
                prop_assert_eq!(full, p.parse_uncached(text.as_bytes(), now));
            }
        }

        /// Arbitrary formats and values never panic, and both paths agree.
        #[test]
        fn arbitrary_input_never_panics(fmt in "(%[a-zA-Z%]|[ .:0-9a-z-])", vals in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 1..6)) {
            if let Ok(mut p) = TimestampParser::new(TimestampOptions { source_format: fmt, ..Default::default() }) {
                for v in vals {
                    let a = p.parse_value(&v, NOW);
                    prop_assert_eq!(a, p.parse_uncached(&v, NOW));
                }
            }
        }
    }
}
