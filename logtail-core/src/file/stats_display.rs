//! [`FileInputStats`] as one readable line, for the log line at stop:
//! `1234 events, 5.2 MiB read in 12 batches, 3 files opened, 1 truncation`.
//!
//! Events and bytes are always shown; every other counter only when it is
//! not zero, each spelled out in words. A counter added to the struct
//! before it was given words here still shows, as `N its field name`.

/// The counters [`FileInputStats`]'s `Display` has words for, by field name.
const SHOWN: [&str; 26] = [
    "files_opened",
    "files_closed",
    "files_open",
    "lines",
    "bytes",
    "batches",
    "renames",
    "truncations",
    "copies_adopted",
    "copies_recovered",
    "bytes_recovered",
    "duplicates_skipped",
    "duplicate_bytes_skipped",
    "truncated_unread_bytes",
    "inode_reuse",
    "partial_flushes",
    "long_line_pieces",
    "long_lines_truncated",
    "io_errors",
    "deferred_opens",
    "sigbus_faults",
    "multiline_unmatched_lines",
    "multiline_discarded_lines",
    "multiline_cut_events",
    "multiline_flushes",
    "decode_replacements",
];

use std::fmt;

use super::input::FileInputStats;

/// Writes `n` followed by the singular or plural noun.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `n` bytes as `512 bytes`, `1.5 KiB`, `5.2 MiB`, `1.0 GiB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return count(n, "byte", "bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

impl fmt::Display for FileInputStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FileInputStats {
            files_opened,
            files_closed,
            files_open,
            lines,
            bytes,
            batches,
            renames,
            truncations,
            copies_adopted,
            copies_recovered,
            bytes_recovered,
            duplicates_skipped,
            duplicate_bytes_skipped,
            truncated_unread_bytes,
            inode_reuse,
            partial_flushes,
            long_line_pieces,
            long_lines_truncated,
            io_errors,
            deferred_opens,
            sigbus_faults,
            multiline_unmatched_lines,
            multiline_discarded_lines,
            multiline_cut_events,
            multiline_flushes,
            decode_replacements,
            // Counters added later are shown by `other_counters`.
            ..
        } = *self;
        let mut parts = vec![
            count(lines, "event", "events"),
            if batches > 0 {
                format!(
                    "{} read in {}",
                    bytes_text(bytes),
                    count(batches, "batch", "batches")
                )
            } else {
                format!("{} read", bytes_text(bytes))
            },
        ];
        let mut add = |n: u64, text: String| {
            if n > 0 {
                parts.push(text);
            }
        };
        add(
            files_opened,
            format!("{} opened", count(files_opened, "file", "files")),
        );
        add(files_closed, format!("{files_closed} closed"));
        add(files_open, format!("{files_open} still open"));
        add(renames, count(renames, "rename", "renames"));
        add(truncations, count(truncations, "truncation", "truncations"));
        add(
            copies_adopted,
            format!(
                "{} continued in a rotated copy",
                count(copies_adopted, "truncated file", "truncated files")
            ),
        );
        add(
            copies_recovered,
            format!(
                "{} read from {} outside the patterns",
                bytes_text(bytes_recovered),
                count(
                    copies_recovered,
                    "truncated file's copy",
                    "truncated files' copies"
                )
            ),
        );
        add(
            duplicates_skipped,
            format!(
                "{} opened at the end ({} already collected from the original)",
                count(
                    duplicates_skipped,
                    "copy of a live file",
                    "copies of live files"
                ),
                bytes_text(duplicate_bytes_skipped)
            ),
        );
        add(
            truncated_unread_bytes,
            format!(
                "{} lost to truncation (the copy was not found)",
                bytes_text(truncated_unread_bytes)
            ),
        );
        add(
            inode_reuse,
            count(inode_reuse, "inode reused", "inodes reused"),
        );
        add(
            partial_flushes,
            format!(
                "{} emitted after the flush timeout",
                count(
                    partial_flushes,
                    "incomplete last line",
                    "incomplete last lines"
                )
            ),
        );
        add(
            long_line_pieces,
            format!(
                "{} cut from long lines",
                count(long_line_pieces, "piece", "pieces")
            ),
        );
        add(
            long_lines_truncated,
            format!(
                "{} truncated",
                count(long_lines_truncated, "long line", "long lines")
            ),
        );
        add(io_errors, count(io_errors, "I/O error", "I/O errors"));
        add(
            deferred_opens,
            format!(
                "{} put off (descriptor limit)",
                count(deferred_opens, "open", "opens")
            ),
        );
        add(
            sigbus_faults,
            format!(
                "{} of a file shrinking under its map (process-wide)",
                count(sigbus_faults, "SIGBUS", "SIGBUSes")
            ),
        );
        add(
            multiline_unmatched_lines,
            format!(
                "{} emitted alone",
                count(
                    multiline_unmatched_lines,
                    "unmatched multiline line",
                    "unmatched multiline lines"
                )
            ),
        );
        add(
            multiline_discarded_lines,
            format!(
                "{} discarded",
                count(
                    multiline_discarded_lines,
                    "unmatched multiline line",
                    "unmatched multiline lines"
                )
            ),
        );
        add(
            multiline_cut_events,
            format!(
                "{} cut at the chunk size",
                count(multiline_cut_events, "multiline event", "multiline events")
            ),
        );
        add(
            multiline_flushes,
            format!(
                "{} flushed incomplete",
                count(multiline_flushes, "multiline event", "multiline events")
            ),
        );
        add(
            decode_replacements,
            format!(
                "{} replaced by U+FFFD",
                count(
                    decode_replacements,
                    "undecodable sequence",
                    "undecodable sequences"
                )
            ),
        );
        parts.extend(other_counters(&format!("{self:?}"), &SHOWN));
        f.write_str(&parts.join(", "))
    }
}

/// The non-zero counters of a derived `Debug` text (`Name { a: 1, b: 0 }`)
/// that are not in `known`, as `1 a` with `_` read as spaces.
fn other_counters(debug: &str, known: &[&str]) -> Vec<String> {
    let inner = debug
        .split_once('{')
        .map_or("", |(_, rest)| rest.trim_end().trim_end_matches('}'));
    inner
        .split(',')
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            let (name, value) = (name.trim(), value.trim().parse::<u64>().ok()?);
            (value > 0 && !known.contains(&name))
                .then(|| format!("{value} {}", name.replace('_', " ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_counters_are_left_out_and_the_rest_are_words() {
        let s = FileInputStats {
            lines: 1234,
            bytes: 5 * 1024 * 1024 + 200 * 1024,
            batches: 7,
            files_opened: 2,
            files_closed: 1,
            truncations: 1,
            ..FileInputStats::default()
        };
        assert_eq!(
            s.to_string(),
            "1234 events, 5.2 MiB read in 7 batches, 2 files opened, 1 closed, 1 truncation"
        );
    }

    #[test]
    fn nothing_read_still_says_so() {
        assert_eq!(
            FileInputStats::default().to_string(),
            "0 events, 0 bytes read"
        );
    }

    #[test]
    // The update keeps the test compiling while counters are added.
    #[allow(clippy::needless_update)]
    fn every_counter_is_shown_when_set() {
        let s = FileInputStats {
            files_opened: 1,
            files_closed: 1,
            files_open: 1,
            lines: 1,
            bytes: 1,
            batches: 1,
            renames: 1,
            truncations: 1,
            copies_adopted: 1,
            copies_recovered: 1,
            bytes_recovered: 1,
            duplicates_skipped: 1,
            duplicate_bytes_skipped: 1,
            truncated_unread_bytes: 1,
            inode_reuse: 1,
            partial_flushes: 1,
            long_line_pieces: 1,
            long_lines_truncated: 1,
            io_errors: 1,
            deferred_opens: 1,
            sigbus_faults: 1,
            multiline_unmatched_lines: 1,
            multiline_discarded_lines: 1,
            multiline_cut_events: 1,
            multiline_flushes: 1,
            decode_replacements: 1,
            ..FileInputStats::default()
        };
        let text = s.to_string();
        // One comma-separated part per counter; bytes and batches share
        // one, and so do each pair of copies and their bytes.
        assert_eq!(text.split(", ").count(), 23, "{text}");
        assert!(!text.contains('{') && !text.contains('_'), "{text}");
    }

    #[test]
    fn counters_without_words_yet_still_show() {
        let debug =
            "FileInputStats { lines: 5, copies_recovered: 2, bytes_recovered: 0, io_errors: 1 }";
        assert_eq!(
            other_counters(debug, &["lines", "io_errors"]),
            ["2 copies recovered"]
        );
        assert!(other_counters("FileInputStats", &[]).is_empty());
        // Through Display: the struct's own counters with words are not
        // shown twice.
        let s = FileInputStats {
            lines: 3,
            io_errors: 2,
            ..FileInputStats::default()
        };
        assert_eq!(s.to_string(), "3 events, 0 bytes read, 2 I/O errors");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes_text(1), "1 byte");
        assert_eq!(bytes_text(1023), "1023 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 << 30), "3.0 GiB");
        assert_eq!(bytes_text(u64::MAX), "16777216.0 TiB");
    }
}
