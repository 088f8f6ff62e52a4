//! The options of LoongCollector's Go "extended" regex processors and of
//! `processor_regex_accelerate`, read into the core's options; and the
//! multi-line rules those processors need from the file input.

use logtail_core::file::multiline::{
    MultilineMode, MultilineOptions, MultilineRules, UnmatchedContentTreatment,
};
use logtail_core::process::filter::FilterOptions;
use logtail_core::process::filter_go::GoFilterOptions;
use logtail_core::process::regex::RegexOptions;
use logtail_core::process::regex_accelerate::{self, PreciseUnit, RegexAccelerateOptions};
use logtail_core::process::regex_go::GoRegexOptions;
use logtail_core::process::split_char::SplitCharOptions;
use logtail_core::process::split_log_regex::SplitLogRegexOptions;
use logtail_core::process::timestamp::TimestampOptions;
use logtail_core::process::CONTENT;

use super::{
    regex_map, required_str, required_strings, ConfigError, Ctx, InputConfig, Obj, ProcessorConfig,
};

/// Reads the options of processor `ty` (one of the extended regex family).
pub(super) fn parse_extended(
    ty: &str,
    o: &mut Obj,
    cx: &mut Ctx,
) -> Result<ProcessorConfig, ConfigError> {
    Ok(match ty {
        "processor_regex" => {
            let regex = required_str(o, "Regex", cx)?;
            let mut r = GoRegexOptions::new(regex, required_strings(o, "Keys", cx)?);
            if let Some(k) = o.str("SourceKey", cx)?.filter(|k| !k.is_empty()) {
                r.source_key = k;
            }
            r.full_match = o.bool("FullMatch", r.full_match, cx)?;
            r.keep_source = o.bool("KeepSource", r.keep_source, cx)?;
            r.keep_source_if_parse_error =
                o.bool("KeepSourceIfParseError", r.keep_source_if_parse_error, cx)?;
            r.no_key_error = o.bool("NoKeyError", r.no_key_error, cx)?;
            r.no_match_error = o.bool("NoMatchError", r.no_match_error, cx)?;
            ProcessorConfig::GoRegex(r)
        }
        "processor_filter_regex" => {
            let mut f = GoFilterOptions::default();
            f.include = regex_map(o, "Include", cx)?;
            f.exclude = regex_map(o, "Exclude", cx)?;
            ProcessorConfig::GoFilter(f)
        }
        "processor_split_char" => {
            let mut s = SplitCharOptions::default();
            if let Some(k) = o.str("SourceKey", cx)?.filter(|k| !k.is_empty()) {
                s.source_key = k;
            }
            if let Some(sep) = o.str("SplitSep", cx)? {
                s.split_sep = sep;
            }
            s.split_keys = o.strings("SplitKeys", cx)?.unwrap_or_default();
            s.quote_flag = o.bool("QuoteFlag", s.quote_flag, cx)?;
            if let Some(q) = o.str("Quote", cx)? {
                s.quote = q;
            }
            s.preserve_others = o.bool("PreserveOthers", s.preserve_others, cx)?;
            s.keep_source = o.bool("KeepSource", s.keep_source, cx)?;
            s.keep_source_if_parse_error =
                o.bool("KeepSourceIfParseError", s.keep_source_if_parse_error, cx)?;
            s.no_key_error = o.bool("NoKeyError", s.no_key_error, cx)?;
            s.no_match_error = o.bool("NoMatchError", s.no_match_error, cx)?;
            ProcessorConfig::SplitChar(s)
        }
        "processor_split_log_regex" => {
            let mut s = SplitLogRegexOptions::default();
            if let Some(r) = o.str("SplitRegex", cx)? {
                s.split_regex = r;
            }
            if let Some(k) = o.str("SplitKey", cx)? {
                s.split_key = k;
            }
            s.preserve_others = o.bool("PreserveOthers", s.preserve_others, cx)?;
            s.no_key_error = o.bool("NoKeyError", s.no_key_error, cx)?;
            ProcessorConfig::SplitLogRegex(s)
        }
        _ => regex_accelerate(o, cx)?,
    })
}

fn regex_accelerate(o: &mut Obj, cx: &mut Ctx) -> Result<ProcessorConfig, ConfigError> {
    if o.get("SensitiveKeys").is_some() {
        // Ignoring it would ship what it was meant to mask.
        return Err(cx.err(
            o.key("SensitiveKeys"),
            "masking inside processor_regex_accelerate is not supported; \
             add a processor_desensitize_native after it instead",
        ));
    }
    let regex = o.str("Regex", cx)?.unwrap_or_else(|| "(.*)".to_owned());
    let keys = o
        .strings("Keys", cx)?
        .unwrap_or_else(|| vec![CONTENT.to_owned()]);
    let discard = o.bool("DiscardUnmatch", true, cx)?;
    let mut r = RegexOptions::new(regex, keys.clone());
    r.source.keep_source_on_fail = !discard;
    if o.bool("EnableRawLog", false, cx)? {
        r.source.keep_source_on_success = true;
        r.source.renamed_source_key = Some(
            o.str("RawLogTag", cx)?
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "__raw__".to_owned())
                .into(),
        );
    }
    let mut a = RegexAccelerateOptions::new(r);

    // Multi-line rules: validated here, run by the input.
    let begin = o.str("LogBeginRegex", cx)?.filter(|p| !p.is_empty());
    let cont = o.str("LogContinueRegex", cx)?.filter(|p| !p.is_empty());
    let end = o.str("LogEndRegex", cx)?.filter(|p| !p.is_empty());
    if begin.is_some() || cont.is_some() || end.is_some() {
        let mut m = MultilineOptions::default();
        m.mode = MultilineMode::Custom;
        m.start_pattern = begin;
        m.continue_pattern = cont;
        m.end_pattern = end;
        m.unmatched = if discard {
            UnmatchedContentTreatment::Discard
        } else {
            UnmatchedContentTreatment::SingleLine
        };
        if let Err(e) = MultilineRules::compile(&m) {
            let key = match e.key {
                "StartPattern" => "LogBeginRegex",
                "ContinuePattern" => "LogContinueRegex",
                _ => "LogEndRegex",
            };
            return Err(cx.err(
                o.key(key),
                format!("invalid pattern {:?}: {}", e.pattern, e.reason),
            ));
        }
        a.multiline = Some(m);
    }

    let filter_keys = o.strings("FilterKey", cx)?.unwrap_or_default();
    let filter_regex = o.strings("FilterRegex", cx)?.unwrap_or_default();
    if filter_keys.len() != filter_regex.len() {
        return Err(cx.err(
            o.key("FilterRegex"),
            format!(
                "FilterKey has {} entries but FilterRegex has {}; they pair up",
                filter_keys.len(),
                filter_regex.len()
            ),
        ));
    }
    if !filter_keys.is_empty() {
        let mut f = FilterOptions::default();
        f.include = filter_keys.into_iter().zip(filter_regex).collect();
        a.filter = Some(f);
    }

    let time_key = o.str("TimeKey", cx)?.unwrap_or_else(|| "time".to_owned());
    let format = o.str("TimeFormat", cx)?.filter(|f| !f.is_empty());
    let adjust = o.bool("AdjustTimezone", false, cx)?;
    let zone = o.str("LogTimezone", cx)?.filter(|z| !z.is_empty());
    let precise = o.bool("EnablePreciseTimestamp", false, cx)?;
    let precise_key = o
        .str("PreciseTimestampKey", cx)?
        .unwrap_or_else(|| "precise_timestamp".to_owned());
    let unit = precise_unit(o.str("PreciseTimestampUnit", cx)?.as_deref(), o, cx)?;
    // LoongCollector's window is the agent-wide ilogtail_discard_interval;
    // ours is per processor, as for processor_parse_timestamp_native.
    let window = o.uint(
        "DiscardOlderThanSecs",
        regex_accelerate::DEFAULT_DISCARD_OLDER_THAN_SECS,
        u64::MAX,
        cx,
    )?;
    // Nanosecond times are always kept (SLS Time_ns); nothing to turn on.
    o.bool("EnableTimestampNanosecond", false, cx)?;
    if let Some(format) = format {
        if keys.contains(&time_key) {
            let mut t = TimestampOptions::new(format);
            t.source_key = time_key.as_str().into();
            t.discard_older_than_secs = window;
            if adjust {
                t.source_timezone = zone;
            }
            if t.source_timezone.is_none() {
                note_utc(&t.source_format, &o.key("TimeFormat"), cx);
            }
            a.time = Some(t);
            if precise {
                a.precise = Some((precise_key, unit));
            }
        } else {
            cx.warnings.push(format!(
                "{}: ignored: Keys has no {time_key:?} key to parse",
                o.key("TimeFormat")
            ));
        }
    }
    o.get("MergeType"); // Batching by topic or logstore: the sinks' concern.
    Ok(ProcessorConfig::RegexAccelerate(Box::new(a)))
}

/// `PreciseTimestampUnit` of `processor_regex_accelerate` and
/// `processor_strptime`: `ms` when absent, `us` or `ns`; anything else is
/// an error naming the key.
pub(super) fn precise_unit(
    name: Option<&str>,
    o: &Obj,
    cx: &Ctx,
) -> Result<PreciseUnit, ConfigError> {
    match name {
        None => Ok(PreciseUnit::Millis),
        Some(n) => PreciseUnit::from_name(n).ok_or_else(|| {
            cx.err(
                o.key("PreciseTimestampUnit"),
                format!("expected ms, us or ns, found {n:?}"),
            )
        }),
    }
}

/// LoongCollector's file input hands `processor_regex_accelerate` (with
/// `LogBeginRegex`…) and `processor_split_log_regex` whole multi-line
/// records; ours frames lines, so their rules become the input's
/// `Multiline` when the input has none (and the processor comes first).
pub(super) fn bridge_multiline(
    inputs: &mut [InputConfig],
    processors: &[ProcessorConfig],
    cx: &mut Ctx,
) {
    for (i, p) in processors.iter().enumerate().skip(1) {
        let moved = match p {
            ProcessorConfig::RegexAccelerate(a) => a.multiline.is_some(),
            ProcessorConfig::SplitLogRegex(s) => s.split_regex != ".*",
            _ => false,
        };
        if moved {
            cx.warnings.push(format!(
                "processors[{i}]: multi-line rules frame the input only from the first \
                 processor (LoongCollector requires it first too); here they apply to \
                 whatever the earlier processors give"
            ));
        }
    }
    let (m, what) = match processors.first() {
        Some(ProcessorConfig::RegexAccelerate(a)) => match &a.multiline {
            Some(m) => (m.clone(), "LogBeginRegex/LogContinueRegex/LogEndRegex"),
            None => return,
        },
        Some(ProcessorConfig::SplitLogRegex(s))
            if (s.split_key.is_empty() || s.split_key == CONTENT) && s.split_regex != ".*" =>
        {
            let mut m = MultilineOptions::default();
            m.mode = MultilineMode::Custom;
            m.start_pattern = Some(format!("(?:{})$", s.split_regex));
            (m, "SplitRegex")
        }
        _ => return,
    };
    for (i, input) in inputs.iter_mut().enumerate() {
        let InputConfig::File(f) = input else {
            continue;
        };
        if f.multiline.is_some() {
            cx.warnings.push(format!(
                "processors[0].{what}: inputs[{i}] has its own Multiline, which frames the records instead"
            ));
        } else {
            f.multiline = Some(m.clone());
        }
    }
}

/// Says at load time that times in `format` that state no zone are read as
/// UTC, where LoongCollector reads them in the machine's local zone.
pub(super) fn note_utc(format: &str, key: &str, cx: &mut Ctx) {
    let zoned = format.contains("%z")
        || format.contains("%s")
        || logtail_core::process::timestamp::literal_offset(format).is_some();
    if !zoned {
        cx.warnings.push(format!(
            "{key}: note: times in {format:?} carry no zone and are read as UTC \
             (LoongCollector reads them in the machine's local zone); set \
             SourceTimezone (processor_regex_accelerate: AdjustTimezone + LogTimezone) \
             to say which"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::PipelineConfig;
    use super::*;

    const BASE: &str = "inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n";
    const OUT: &str = "flushers:\n  - Type: flusher_blackhole\n";

    fn parse(processors: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::parse(
            "t",
            "t.yaml",
            &format!("{BASE}processors:\n{processors}{OUT}"),
            false,
        )
    }

    fn multiline(c: &PipelineConfig) -> Option<MultilineOptions> {
        let InputConfig::File(f) = &c.inputs[0] else {
            panic!("not a file input")
        };
        f.multiline.clone()
    }

    #[test]
    fn processor_regex_options_and_defaults() {
        let c = parse("  - Type: processor_regex\n    Regex: '(\\w+)'\n    Keys: [a]\n").unwrap();
        let ProcessorConfig::GoRegex(r) = &c.processors[0] else {
            panic!("{:?}", c.processors)
        };
        assert_eq!(r, &GoRegexOptions::new("(\\w+)", vec!["a".into()]));
        let c = parse("  - Type: processor_regex\n    Regex: '(\\w+)'\n    Keys: [a]\n    SourceKey: msg\n    FullMatch: true\n    KeepSource: true\n    KeepSourceIfParseError: false\n    NoKeyError: true\n    NoMatchError: false\n").unwrap();
        let ProcessorConfig::GoRegex(r) = &c.processors[0] else {
            panic!()
        };
        assert_eq!(
            (
                r.source_key.as_str(),
                r.full_match,
                r.keep_source,
                r.keep_source_if_parse_error,
                r.no_key_error,
                r.no_match_error
            ),
            ("msg", true, true, false, true, false)
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let e =
            parse("  - Type: processor_regex\n    Regex: '(?=x)(a)'\n    Keys: [a]\n").unwrap_err();
        assert_eq!(e.key, "processors[0]");
        assert!(e.message.contains("look-ahead"), "{e}");
    }

    #[test]
    fn go_option_names_match_case_insensitively() {
        let c = parse(
            "  - Type: processor_regex\n    regex: '(\\w+)'\n    keys: [a]\n    sourcekey: msg\n",
        )
        .unwrap();
        let ProcessorConfig::GoRegex(r) = &c.processors[0] else {
            panic!("{:?}", c.processors)
        };
        assert_eq!(
            (r.keys.clone(), r.source_key.as_str()),
            (vec!["a".to_owned()], "msg")
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = parse("  - Type: processor_split_char\n    splitsep: '|'\n    SPLITKEYS: [a, b]\n  - Type: processor_filter_regex\n    include:\n      a: x.*\n  - Type: processor_split_log_regex\n    splitregex: 'x.*'\n").unwrap();
        // Only the note that the (read) SplitRegex does not frame the input.
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("processors[2]: multi-line rules"));
        let ProcessorConfig::SplitChar(s) = &c.processors[0] else {
            panic!()
        };
        assert_eq!((s.split_sep.as_str(), s.split_keys.len()), ("|", 2));
        let ProcessorConfig::GoFilter(f) = &c.processors[1] else {
            panic!()
        };
        assert_eq!(f.include.len(), 1);
        // The C++ processor_regex_accelerate stays case-sensitive.
        let c = parse("  - Type: processor_regex_accelerate\n    keys: [a]\n").unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("keys")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn filter_split_char_errors_name_what_is_wrong() {
        let e = parse("  - Type: processor_filter_regex\n    Include:\n      level: '(?<=a)b'\n")
            .unwrap_err();
        assert!(
            e.message.starts_with("Include: level: invalid pattern"),
            "{e}"
        );
        let e = parse("  - Type: processor_split_char\n    SplitSep: '||'\n    SplitKeys: [a]\n")
            .unwrap_err();
        assert!(e.message.contains("SplitSep"), "{e}");
        let c = parse("  - Type: processor_split_char\n    SplitSep: '|'\n    SplitKeys: [a, b]\n    QuoteFlag: true\n    Quote: '\"'\n").unwrap();
        let ProcessorConfig::SplitChar(s) = &c.processors[0] else {
            panic!()
        };
        assert!(s.quote_flag && s.preserve_others && s.keep_source_if_parse_error);
    }

    #[test]
    fn a_first_split_log_regex_frames_the_input() {
        let c = parse("  - Type: processor_split_log_regex\n    SplitRegex: '\\d+-.*'\n    SplitKey: content\n").unwrap();
        let m = multiline(&c).unwrap();
        assert_eq!(m.start_pattern.as_deref(), Some("(?:\\d+-.*)$"));
        // Not first, or the default `.*`: the input is left alone.
        let c = parse("  - Type: processor_regex\n    Regex: '(.*)'\n    Keys: [a]\n  - Type: processor_split_log_regex\n    SplitRegex: 'x.*'\n").unwrap();
        assert!(multiline(&c).is_none());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("processors[1]: multi-line rules")),
            "{:?}",
            c.warnings
        );
        let c = parse("  - Type: processor_split_log_regex\n").unwrap();
        assert!(multiline(&c).is_none());
        // The input's own Multiline wins, with a warning.
        let c = PipelineConfig::parse(
            "t",
            "t.yaml",
            &format!("{BASE}    Multiline:\n      StartPattern: 'a.*'\nprocessors:\n  - Type: processor_split_log_regex\n    SplitRegex: 'x.*'\n{OUT}"),
            false,
        )
        .unwrap();
        assert_eq!(multiline(&c).unwrap().start_pattern.as_deref(), Some("a.*"));
        assert!(
            c.warnings.iter().any(|w| w.contains("its own Multiline")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn regex_accelerate_moves_line_rules_to_the_input() {
        let c = parse("  - Type: processor_regex_accelerate\n    LogBeginRegex: '# Time:.*'\n    Keys: [t, rest]\n    Regex: '# Time: (\\S+)$\\n([\\s\\S]*)'\n    DiscardUnmatch: false\n    MergeType: topic\n").unwrap();
        let m = multiline(&c).unwrap();
        assert_eq!(m.start_pattern.as_deref(), Some("# Time:.*"));
        assert_eq!(m.unmatched, UnmatchedContentTreatment::SingleLine);
        let ProcessorConfig::RegexAccelerate(a) = &c.processors[0] else {
            panic!()
        };
        assert!(a.regex.source.keep_source_on_fail);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Defaults: (.*) into content; discard unmatched.
        let c = parse("  - Type: processor_regex_accelerate\n").unwrap();
        let ProcessorConfig::RegexAccelerate(a) = &c.processors[0] else {
            panic!()
        };
        assert_eq!(
            (a.regex.regex.as_str(), a.regex.keys.clone()),
            ("(.*)", vec![CONTENT.to_owned()])
        );
        assert!(!a.regex.source.keep_source_on_fail);
        // Errors name the key.
        let e = parse("  - Type: processor_regex_accelerate\n    LogEndRegex: '(x'\n").unwrap_err();
        assert_eq!(e.key, "processors[0].LogEndRegex");
        let e = parse("  - Type: processor_regex_accelerate\n    SensitiveKeys: {}\n").unwrap_err();
        assert_eq!(e.key, "processors[0].SensitiveKeys");
        assert!(e.message.contains("processor_desensitize_native"), "{e}");
        // A zoneless TimeFormat is parsed as UTC, with a load-time note.
        let c = parse("  - Type: processor_regex_accelerate\n    Regex: '(\\S+) (.*)'\n    Keys: [time, msg]\n    TimeFormat: '%Y-%m-%dT%H:%M:%S'\n    EnablePreciseTimestamp: true\n").unwrap();
        let ProcessorConfig::RegexAccelerate(a) = &c.processors[0] else {
            panic!()
        };
        assert!(a.time.is_some() && a.precise.is_some());
        // LoongCollector's window: ilogtail_discard_interval, 12 hours.
        assert_eq!(a.time.as_ref().unwrap().discard_older_than_secs, 43_200);
        assert!(
            c.warnings.iter().any(|w| w.contains("read as UTC")),
            "{:?}",
            c.warnings
        );
        let c = parse("  - Type: processor_regex_accelerate\n    Regex: '(\\S+) (.*)'\n    Keys: [time, msg]\n    TimeFormat: '%Y-%m-%dT%H:%M:%S+08:00'\n    DiscardOlderThanSecs: 0\n").unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let ProcessorConfig::RegexAccelerate(a) = &c.processors[0] else {
            panic!()
        };
        assert_eq!(a.time.as_ref().unwrap().discard_older_than_secs, 0);
    }
}
