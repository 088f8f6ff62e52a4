//! The Go "extended" plugins of LoongCollector this version accepts:
//! `processor_json`, `processor_strptime`, `processor_add_fields`,
//! `processor_grok` and `input_command`.
//!
//! Their options are matched case-insensitively, as LoongCollector's Go
//! config decoder does (`TimeoutMilliseconds` is `TimeoutMilliSeconds`).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use logtail_core::process::add_fields::AddFieldsOptions;
use logtail_core::process::grok::GrokOptions;
use logtail_core::process::json_expand::JsonExpandOptions;
use logtail_core::process::strptime::StrptimeOptions;

use super::{kind, ConfigError, Ctx, InputConfig, Obj, ProcessorConfig};
use crate::command::{self, CommandOptions, ScriptType, MAX_SCRIPT_BYTES};

const PROCESSOR_KEYS: &[(&str, &[&str])] = &[
    (
        "processor_json",
        &[
            "SourceKey",
            "NoKeyError",
            "ExpandDepth",
            "ExpandConnector",
            "Prefix",
            "KeepSource",
            "KeepSourceIfParseError",
            "UseSourceKeyAsPrefix",
            "IgnoreFirstConnector",
            "ExpandArray",
        ],
    ),
    (
        "processor_strptime",
        &[
            "SourceKey",
            "Format",
            "KeepSource",
            "AdjustUTCOffset",
            "UTCOffset",
            "AlarmIfFail",
            "EnablePreciseTimestamp",
            "PreciseTimestampKey",
            "PreciseTimestampUnit",
            "AlignTimestamp",
        ],
    ),
    ("processor_add_fields", &["Fields", "IgnoreIfExist"]),
    (
        "processor_grok",
        &[
            "SourceKey",
            "Match",
            "CustomPatterns",
            "CustomPatternDir",
            "TimeoutMilliSeconds",
            "IgnoreParseFailure",
            "KeepSource",
            "NoKeyError",
            "NoMatchError",
            "TimeoutError",
        ],
    ),
    (
        "input_command",
        &[
            "ScriptType",
            "ScriptContent",
            "User",
            "ContentEncoding",
            "LineSplitSep",
            "CmdPath",
            "TimeoutMilliSeconds",
            "IntervalMs",
            "Environments",
            "IgnoreError",
        ],
    ),
];

/// The options of the Go processors of the regex family (read in
/// `regex_family`), for the same case-insensitive matching.
/// (`processor_regex_accelerate` is C++, whose option names are
/// case-sensitive.)
const GO_REGEX_KEYS: &[(&str, &[&str])] = &[
    (
        "processor_regex",
        &[
            "Regex",
            "Keys",
            "SourceKey",
            "FullMatch",
            "KeepSource",
            "KeepSourceIfParseError",
            "NoKeyError",
            "NoMatchError",
        ],
    ),
    ("processor_filter_regex", &["Include", "Exclude"]),
    (
        "processor_split_char",
        &[
            "SourceKey",
            "SplitSep",
            "SplitKeys",
            "QuoteFlag",
            "Quote",
            "PreserveOthers",
            "KeepSource",
            "KeepSourceIfParseError",
            "NoKeyError",
            "NoMatchError",
        ],
    ),
    (
        "processor_split_log_regex",
        &["SplitRegex", "SplitKey", "PreserveOthers", "NoKeyError"],
    ),
];

/// `v` (a Go processor of the regex family) with its option names in their
/// canonical spelling, matched case-insensitively as LoongCollector's Go
/// decoder matches them; `None` for any other plugin.
pub(super) fn canonical_go_regex(v: &Value) -> Option<Value> {
    canonical_in(v, GO_REGEX_KEYS).map(|(_, v)| v)
}

/// `v` with its keys renamed to the canonical spelling of `ty`'s options
/// (case-insensitively); `None` when `ty` is not one of these plugins.
fn canonical(v: &Value) -> Option<(String, Value)> {
    canonical_in(v, PROCESSOR_KEYS)
}

fn canonical_in(v: &Value, table: &[(&str, &[&str])]) -> Option<(String, Value)> {
    let Value::Object(m) = v else { return None };
    let ty = m.get("Type")?.as_str()?;
    let (_, keys) = table.iter().find(|(t, _)| *t == ty)?;
    let mut out = Map::new();
    for (k, val) in m {
        let name = keys
            .iter()
            .find(|c| c.eq_ignore_ascii_case(k))
            .map_or(k.as_str(), |c| c);
        out.insert(name.to_string(), val.clone());
    }
    Some((ty.to_string(), Value::Object(out)))
}

fn int(o: &mut Obj, k: &'static str, default: i64, cx: &Ctx) -> Result<i64, ConfigError> {
    match o.get(k) {
        None => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| cx.err(o.key(k), format!("expected a whole number, found {n}"))),
        Some(other) => Err(cx.err(
            o.key(k),
            format!("expected a whole number, found {}", kind(other)),
        )),
    }
}

/// A map of name to text (`Fields`, `CustomPatterns`); numbers and
/// booleans are taken as their text.
fn text_map(o: &mut Obj, k: &'static str, cx: &Ctx) -> Result<Vec<(String, String)>, ConfigError> {
    match o.get(k) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(name, v)| match v {
                Value::String(s) => Ok((name.clone(), s.clone())),
                Value::Number(n) => Ok((name.clone(), n.to_string())),
                Value::Bool(b) => Ok((name.clone(), b.to_string())),
                other => Err(cx.err(
                    format!("{}.{name}", o.key(k)),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(cx.err(
            o.key(k),
            format!("expected a map of name to value, found {}", kind(other)),
        )),
    }
}

/// Parses one of these processors; `Ok(None)` for any other type.
pub(super) fn parse_processor(
    v: &Value,
    path: &str,
    cx: &mut Ctx,
) -> Result<Option<ProcessorConfig>, ConfigError> {
    let Some((ty, v)) = canonical(v) else {
        return Ok(None);
    };
    let mut o = Obj::new(&v, path.to_string(), cx)?;
    let _ = o.get("Type");
    let mut ignored: &[&str] = &[];
    let p = match ty.as_str() {
        "processor_json" => {
            let key = super::required_str(&mut o, "SourceKey", cx)?;
            let mut j = JsonExpandOptions::new(key);
            j.no_key_error = o.bool("NoKeyError", j.no_key_error, cx)?;
            j.expand_depth = o.uint("ExpandDepth", 0, 1_000_000, cx)? as u32;
            if let Some(c) = o.str("ExpandConnector", cx)? {
                j.expand_connector = c;
            }
            j.prefix = o.str("Prefix", cx)?.unwrap_or_default();
            j.keep_source = o.bool("KeepSource", j.keep_source, cx)?;
            j.keep_source_if_parse_error =
                o.bool("KeepSourceIfParseError", j.keep_source_if_parse_error, cx)?;
            j.use_source_key_as_prefix = o.bool("UseSourceKeyAsPrefix", false, cx)?;
            j.ignore_first_connector = o.bool("IgnoreFirstConnector", false, cx)?;
            j.expand_array = o.bool("ExpandArray", false, cx)?;
            ProcessorConfig::JsonExpand(j)
        }
        "processor_strptime" => {
            let format = super::required_str(&mut o, "Format", cx)?;
            let mut s = StrptimeOptions::new(format);
            if let Some(k) = o.str("SourceKey", cx)?.filter(|k| !k.is_empty()) {
                s.source_key = k;
            }
            s.keep_source = o.bool("KeepSource", s.keep_source, cx)?;
            s.adjust_utc_offset = o.bool("AdjustUTCOffset", false, cx)?;
            if o.get("UTCOffset").is_some() {
                let off = int(&mut o, "UTCOffset", 0, cx)?;
                s.utc_offset = Some(i32::try_from(off).unwrap_or(i32::MAX));
            }
            let _ = o.bool("AlarmIfFail", true, cx)?;
            s.enable_precise_timestamp = o.bool("EnablePreciseTimestamp", false, cx)?;
            if let Some(k) = o.str("PreciseTimestampKey", cx)?.filter(|k| !k.is_empty()) {
                s.precise_timestamp_key = k;
            }
            let unit = o.str("PreciseTimestampUnit", cx)?;
            s.precise_timestamp_unit = super::regex_family::precise_unit(
                unit.as_deref().filter(|u| !u.is_empty()),
                &o,
                cx,
            )?;
            ignored = &["AlignTimestamp"];
            ProcessorConfig::Strptime(s)
        }
        "processor_add_fields" => {
            let mut a = AddFieldsOptions::default();
            a.fields = text_map(&mut o, "Fields", cx)?;
            if a.fields.is_empty() {
                return Err(cx.err(
                    o.key("Fields"),
                    "missing (required): the fields to add, e.g. {service: A}",
                ));
            }
            a.ignore_if_exist = o.bool("IgnoreIfExist", false, cx)?;
            ProcessorConfig::AddFields(a)
        }
        "processor_grok" => {
            let matches = o.strings("Match", cx)?.unwrap_or_default();
            if matches.is_empty() {
                return Err(cx.err(
                    o.key("Match"),
                    "missing (required): the grok expressions, e.g. ['%{IP:client} %{WORD:method}']",
                ));
            }
            let mut g = GrokOptions::new(matches);
            if let Some(k) = o.str("SourceKey", cx)?.filter(|k| !k.is_empty()) {
                g.source_key = k;
            }
            g.custom_patterns = text_map(&mut o, "CustomPatterns", cx)?;
            g.custom_pattern_dirs = o
                .strings("CustomPatternDir", cx)?
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect();
            g.timeout_ms = o.uint("TimeoutMilliSeconds", 0, 86_400_000, cx)?;
            g.ignore_parse_failure = o.bool("IgnoreParseFailure", true, cx)?;
            g.keep_source = o.bool("KeepSource", true, cx)?;
            g.no_key_error = o.bool("NoKeyError", false, cx)?;
            let _ = o.bool("NoMatchError", true, cx)?;
            let _ = o.bool("TimeoutError", true, cx)?;
            ProcessorConfig::Grok(g)
        }
        _ => return Ok(None),
    };
    if let Err(e) = p.build() {
        return Err(cx.err(o.path.clone(), e.to_string()));
    }
    o.finish(cx, ignored);
    Ok(Some(p))
}

/// Parses `input_command`; `Ok(None)` for any other type.
pub(super) fn parse_input(
    v: &Value,
    path: &str,
    name: &str,
    cx: &mut Ctx,
) -> Result<Option<InputConfig>, ConfigError> {
    let Some((ty, v)) = canonical(v) else {
        return Ok(None);
    };
    if ty != command::NAME {
        return Ok(None);
    }
    let mut o = Obj::new(&v, path.to_string(), cx)?;
    let _ = o.get("Type");
    let st = super::required_str(&mut o, "ScriptType", cx)?;
    let script_type = ScriptType::parse(&st).ok_or_else(|| {
        cx.err(
            o.key("ScriptType"),
            format!("expected bash, shell, python2 or python3, found {st:?}"),
        )
    })?;
    let content = super::required_str(&mut o, "ScriptContent", cx)?;
    let script = match o.str("ContentEncoding", cx)?.as_deref() {
        None | Some("") | Some("PlainText") => content,
        Some("Base64") => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content.trim())
                .map_err(|e| cx.err(o.key("ScriptContent"), format!("invalid Base64: {e}")))?;
            String::from_utf8(bytes).map_err(|_| {
                cx.err(
                    o.key("ScriptContent"),
                    "the decoded script is not UTF-8 text",
                )
            })?
        }
        Some(other) => {
            return Err(cx.err(
                o.key("ContentEncoding"),
                format!("expected PlainText or Base64, found {other:?}"),
            ))
        }
    };
    if script.trim().is_empty() {
        return Err(cx.err(o.key("ScriptContent"), "must not be empty"));
    }
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(cx.err(
            o.key("ScriptContent"),
            format!(
                "{} bytes; at most {MAX_SCRIPT_BYTES} (512 KiB) are accepted",
                script.len()
            ),
        ));
    }
    let mut c = CommandOptions::new(name, script_type, script);
    if let Some(u) = o.str("User", cx)?.filter(|u| !u.is_empty()) {
        c.user = u;
    }
    command::check_user(&c.user).map_err(|e| {
        let msg = e.to_string();
        cx.err(
            o.key("User"),
            msg.strip_prefix("User: ").unwrap_or(&msg).to_string(),
        )
    })?;
    c.line_split_sep = o.str("LineSplitSep", cx)?.unwrap_or_default();
    if let Some(p) = o.str("CmdPath", cx)?.filter(|p| !p.is_empty()) {
        c.cmd_path = PathBuf::from(p);
    }
    if let Err(e) = std::fs::metadata(&c.cmd_path) {
        return Err(cx.err(o.key("CmdPath"), format!("{}: {e}", c.cmd_path.display())));
    }
    let interval = o.uint("IntervalMs", 5000, 86_400_000, cx)?.max(1);
    let timeout = o.uint("TimeoutMilliSeconds", 3000, 86_400_000, cx)?.max(1);
    if timeout > interval {
        cx.warnings.push(format!(
            "{}: TimeoutMilliSeconds {timeout} > IntervalMs {interval}; the timeout is {interval} ms",
            o.path
        ));
    }
    c.interval = Duration::from_millis(interval);
    c.timeout = Duration::from_millis(timeout.min(interval));
    for (i, e) in o
        .strings("Environments", cx)?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some((k, v)) = e.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(cx.err(
                format!("{}[{i}]", o.key("Environments")),
                "expected NAME=value",
            ));
        };
        c.environments.push((k.to_string(), v.to_string()));
    }
    c.ignore_error = o.bool("IgnoreError", false, cx)?;
    o.finish(cx, &[]);
    Ok(Some(InputConfig::Command(c)))
}

#[cfg(test)]
mod tests {
    use super::super::PipelineConfig;
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::parse("t", "t.yaml", text, false)
    }

    const FILE: &str = "inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n";
    const OUT: &str = "flushers:\n  - Type: flusher_stdout\n    OnlyStdout: true\n";

    #[test]
    fn documented_processor_configs_load() {
        let c = parse(&format!(
            "{FILE}processors:\n  - Type: processor_json\n    SourceKey: content\n    KeepSource: false\n    ExpandDepth: 1\n    ExpandConnector: \"\"\n  - Type: processor_strptime\n    SourceKey: log_time\n    Format: \"%Y/%m/%d %H:%M:%S\"\n    AdjustUTCOffset: true\n    UTCOffset: 25200\n  - Type: processor_add_fields\n    Fields:\n      service: A\n    IgnoreIfExist: false\n  - Type: processor_grok\n    SourceKey: content\n    KeepSource: false\n    CustomPatterns:\n      HTTP: '%{{IP:client}} %{{WORD:method}} %{{URIPATHPARAM:request}} %{{NUMBER:bytes}} %{{NUMBER:duration}}'\n    Match:\n      - '%{{HTTP}}'\n      - '%{{WORD:word1}} %{{NUMBER:request_time}} %{{WORD:word2}}'\n    IgnoreParseFailure: false\n{OUT}"
        ))
        .unwrap();
        assert_eq!(c.processors.len(), 4);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let ProcessorConfig::JsonExpand(j) = &c.processors[0] else {
            panic!()
        };
        assert_eq!(
            (j.expand_depth, j.expand_connector.as_str(), j.keep_source),
            (1, "", false)
        );
        let ProcessorConfig::Strptime(s) = &c.processors[1] else {
            panic!()
        };
        assert_eq!((s.adjust_utc_offset, s.utc_offset), (true, Some(25200)));
        let ProcessorConfig::Grok(g) = &c.processors[3] else {
            panic!()
        };
        assert_eq!(g.matches.len(), 2);
        assert!(!g.ignore_parse_failure && !g.keep_source);
        // AdjustUTCOffset without UTCOffset: unset, as in Go (the local offset).
        let c = parse(&format!(
            "{FILE}processors:\n  - Type: processor_strptime\n    Format: \"%Y\"\n    AdjustUTCOffset: true\n{OUT}"
        ))
        .unwrap();
        let ProcessorConfig::Strptime(s) = &c.processors[0] else {
            panic!()
        };
        assert_eq!((s.adjust_utc_offset, s.utc_offset), (true, None));
    }

    #[test]
    fn option_names_match_case_insensitively_and_align_timestamp_warns() {
        let c = parse(&format!(
            "{FILE}processors:\n  - Type: processor_grok\n    match: ['%{{WORD:w}}']\n    timeoutmilliseconds: 5\n  - Type: processor_strptime\n    Format: '%s'\n    AlignTimestamp: true\n{OUT}"
        ))
        .unwrap();
        let ProcessorConfig::Grok(g) = &c.processors[0] else {
            panic!()
        };
        assert_eq!(g.timeout_ms, 5);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].starts_with("processors[1].AlignTimestamp: accepted but not implemented")
        );
    }

    #[test]
    fn processor_errors_name_their_key() {
        for (body, key, needle) in [
            ("  - Type: processor_json\n", "processors[0].SourceKey", "missing"),
            ("  - Type: processor_strptime\n    SourceKey: t\n", "processors[0].Format", "missing"),
            ("  - Type: processor_strptime\n    Format: '%Y'\n    AdjustUTCOffset: true\n    UTCOffset: 90000\n", "processors[0]", "UTCOffset: 90000"),
            ("  - Type: processor_strptime\n    Format: '%Y'\n    PreciseTimestampUnit: s\n", "processors[0].PreciseTimestampUnit", "ms, us or ns"),
            ("  - Type: processor_add_fields\n", "processors[0].Fields", "missing"),
            ("  - Type: processor_add_fields\n    Fields: {a: [1]}\n", "processors[0].Fields.a", "a string"),
            ("  - Type: processor_grok\n", "processors[0].Match", "missing"),
            ("  - Type: processor_grok\n    Match: ['%{NOPE:x}']\n", "processors[0]", "Match[0]: no pattern named \"NOPE\""),
            ("  - Type: processor_grok\n    CustomPatterns: {N: '(?<=a)b'}\n    Match: ['%{N:x}']\n", "processors[0]", "look-behind"),
        ] {
            let e = parse(&format!("{FILE}processors:\n{body}{OUT}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
    }

    #[test]
    fn documented_input_command_config_loads_with_the_default_user() {
        // input-command.md, config 1 (User `test` does not exist here: the
        // default, nobody, is used instead).
        let c = parse(&format!(
            "enable: true\ninputs:\n  - Type: input_command\n    ScriptType: shell\n    ScriptContent:\n      echo -e \"test metric commond\"\n    Environments:\n      - \"DEBUG=true\"\n    TimeoutMilliseconds: 1005\n{OUT}"
        ))
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let InputConfig::Command(o) = &c.inputs[0] else {
            panic!()
        };
        assert_eq!(o.user, "nobody");
        assert_eq!(o.script, "echo -e \"test metric commond\"");
        assert_eq!(o.timeout, Duration::from_millis(1005));
        assert_eq!(o.interval, Duration::from_millis(5000));
        assert_eq!(o.environments, vec![("DEBUG".into(), "true".into())]);
        assert_eq!(o.cmd_path, PathBuf::from("/usr/bin/sh"));

        let c = parse(&format!(
            "inputs:\n  - Type: input_command\n    ScriptType: bash\n    ContentEncoding: Base64\n    ScriptContent: ZWNobyBoaQ==\n    IntervalMs: 100\n{OUT}"
        ))
        .unwrap();
        let InputConfig::Command(o) = &c.inputs[0] else {
            panic!()
        };
        assert_eq!(o.script, "echo hi");
        assert_eq!(
            o.timeout,
            Duration::from_millis(100),
            "at most the interval"
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn input_command_errors_name_their_key() {
        let base = "inputs:\n  - Type: input_command\n";
        for (body, key, needle) in [
            (
                "    ScriptType: perl\n    ScriptContent: x\n",
                "inputs[0].ScriptType",
                "perl",
            ),
            (
                "    ScriptType: bash\n",
                "inputs[0].ScriptContent",
                "missing",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: id\n    User: root\n",
                "inputs[0].User",
                "never runs scripts as root",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: id\n    User: no-such-user-q\n",
                "inputs[0].User",
                "no such user",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: '!!'\n    ContentEncoding: Base64\n",
                "inputs[0].ScriptContent",
                "Base64",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: id\n    ContentEncoding: gzip\n",
                "inputs[0].ContentEncoding",
                "PlainText or Base64",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: id\n    CmdPath: /no/bash\n",
                "inputs[0].CmdPath",
                "/no/bash",
            ),
            (
                "    ScriptType: bash\n    ScriptContent: id\n    Environments: [NOEQUALS]\n",
                "inputs[0].Environments[0]",
                "NAME=value",
            ),
        ] {
            let e = parse(&format!("{base}{body}{OUT}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
        let big = "x".repeat(MAX_SCRIPT_BYTES + 1);
        let e = parse(&format!(
            "{base}    ScriptType: bash\n    ScriptContent: {big}\n{OUT}"
        ))
        .unwrap_err();
        assert_eq!(e.key, "inputs[0].ScriptContent");
    }
}
