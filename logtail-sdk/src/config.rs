//! LoongCollector pipeline configurations (YAML or JSON).
//!
//! ```yaml
//! enable: true
//! inputs:
//!   - Type: input_file
//!     FilePaths: [/var/log/app/**/*.log]
//!     MaxDirSearchDepth: 3
//! flushers:
//!   - Type: flusher_file
//!     FilePath: /tmp/out.jsonl
//! ```
//!
//! Every error names the file and the key at fault, e.g.
//! `app.yaml: inputs[0].FilePaths: missing (required)`. Options this
//! version does not know are reported as warnings, not errors, so that
//! existing LoongCollector configs load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use logtail_core::file::decode::FileEncoding;
use logtail_core::file::multiline::{
    MultilineMode, MultilineOptions, MultilineRules, UnmatchedContentTreatment,
};
use logtail_core::file::{FileInputOptions, LongLinePolicy, PathMatcher, PathsSpec};
use logtail_core::process::delimiter::{
    DelimiterError, DelimiterOptions, DelimiterParser, Overflow,
};
use logtail_core::process::desensitize::{
    DesensitizeError, DesensitizeOptions, DesensitizeParser, Method,
};
use logtail_core::process::filter::{FilterError, FilterOptions, FilterParser};
use logtail_core::process::json::{JsonError, JsonOptions, JsonParser};
use logtail_core::process::regex::{RegexError, RegexOptions, RegexParser};
use logtail_core::process::timestamp::{TimestampError, TimestampOptions, TimestampParser};
use logtail_core::process::SourceOptions;
use logtail_core::process::{add_fields, grok, json_expand, strptime};
use logtail_core::process::{
    filter_go::{GoFilterError, GoFilterOptions, GoFilterParser},
    regex_accelerate::{RegexAccelerateError, RegexAccelerateOptions, RegexAccelerateParser},
    regex_go::{GoRegexError, GoRegexOptions, GoRegexParser},
    split_char::{SplitCharError, SplitCharOptions, SplitCharParser},
    split_log_regex::{SplitLogRegexError, SplitLogRegexOptions, SplitLogRegexParser},
};
use logtail_core::Parser;

use crate::sinks::sls::{Endpoint, SlsOptions};

/// The Go processors and `processor_regex_accelerate` (issue 14).
mod extended;
mod regex_family;

/// A configuration error: where, and what is wrong. Displays as
/// `origin: key: message`, or `origin: message` when no key is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file (or a name for a config given as text).
    pub origin: String,
    /// The key path, e.g. `inputs[0].FilePaths`; empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// One pipeline configuration.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Name (the file name without extension); names the checkpoint file.
    pub name: String,
    /// Where it came from.
    pub origin: String,
    /// `enable`: a disabled config is loaded but not run.
    pub enable: bool,
    /// The inputs.
    pub inputs: Vec<InputConfig>,
    /// The processors, in order.
    pub processors: Vec<ProcessorConfig>,
    /// The flushers.
    pub flushers: Vec<FlusherConfig>,
    /// Options that were ignored, as `key: reason` (logged as warnings).
    pub warnings: Vec<String>,
    /// `AllowingIncludedByMultiConfigs` of the input: collect matched files
    /// even when another config collects them too.
    pub allow_multi_configs: bool,
}

/// An input.
#[derive(Debug, Clone)]
// One per pipeline config: the size of the file input's options is no cost.
#[allow(clippy::large_enum_variant)]
pub enum InputConfig {
    /// `input_file`.
    File(FileInputOptions),
    /// `input_internal_metrics`: the agent's counters as events.
    InternalMetrics(crate::internal::InternalMetricsOptions),
    /// `input_internal_alarms`: the agent's alarms as events.
    InternalAlarms,
    /// `input_command`.
    Command(crate::command::CommandOptions),
}

/// A processor (validated when the config is loaded).
#[derive(Debug, Clone)]
pub enum ProcessorConfig {
    /// `processor_parse_regex_native`.
    Regex(RegexOptions),
    /// `processor_parse_delimiter_native`.
    Delimiter(DelimiterOptions),
    /// `processor_parse_json_native`.
    Json(JsonOptions),
    /// `processor_parse_timestamp_native`.
    Timestamp(TimestampOptions),
    /// `processor_filter_regex_native`.
    Filter(FilterOptions),
    /// `processor_desensitize_native`.
    Desensitize(DesensitizeOptions),
    /// `processor_regex` (Go).
    GoRegex(GoRegexOptions),
    /// `processor_filter_regex` (Go).
    GoFilter(GoFilterOptions),
    /// `processor_split_char` (Go).
    SplitChar(SplitCharOptions),
    /// `processor_split_log_regex` (Go).
    SplitLogRegex(SplitLogRegexOptions),
    /// `processor_regex_accelerate` (its multi-line rules go to the input).
    RegexAccelerate(Box<RegexAccelerateOptions>),
    /// `processor_json`.
    JsonExpand(json_expand::JsonExpandOptions),
    /// `processor_strptime`.
    Strptime(strptime::StrptimeOptions),
    /// `processor_add_fields`.
    AddFields(add_fields::AddFieldsOptions),
    /// `processor_grok`.
    Grok(grok::GrokOptions),
}

/// A processor's options were refused when it was built. Displays as the
/// processor's own error (the caller adds where: the config, the index).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessorError {
    /// `processor_parse_regex_native`.
    #[error(transparent)]
    Regex(#[from] RegexError),
    /// `processor_parse_delimiter_native`.
    #[error(transparent)]
    Delimiter(#[from] DelimiterError),
    /// `processor_parse_json_native`.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// `processor_parse_timestamp_native`.
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    /// `processor_filter_regex_native`.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `processor_desensitize_native`.
    #[error(transparent)]
    Desensitize(#[from] DesensitizeError),
    /// `processor_regex`.
    #[error(transparent)]
    GoRegex(#[from] GoRegexError),
    /// `processor_filter_regex` (boxed: keeps this error small).
    #[error(transparent)]
    GoFilter(#[from] Box<GoFilterError>),
    /// `processor_split_char`.
    #[error(transparent)]
    SplitChar(#[from] SplitCharError),
    /// `processor_split_log_regex`.
    #[error(transparent)]
    SplitLogRegex(#[from] SplitLogRegexError),
    /// `processor_regex_accelerate` (boxed: keeps this error small).
    #[error(transparent)]
    RegexAccelerate(#[from] Box<RegexAccelerateError>),
    /// `processor_json`.
    #[error(transparent)]
    JsonExpand(#[from] json_expand::JsonExpandError),
    /// `processor_strptime`.
    #[error(transparent)]
    Strptime(#[from] strptime::StrptimeError),
    /// `processor_add_fields`.
    #[error(transparent)]
    AddFields(#[from] add_fields::AddFieldsError),
    /// `processor_grok` (boxed: its errors carry several names).
    #[error(transparent)]
    Grok(Box<grok::GrokError>),
}

impl From<grok::GrokError> for ProcessorError {
    fn from(e: grok::GrokError) -> Self {
        ProcessorError::Grok(Box::new(e))
    }
}

impl ProcessorConfig {
    /// Builds the processor.
    ///
    /// # Errors
    ///
    /// The processor refused its options (a bad pattern or format); the
    /// config loader already built it once, so a loaded config builds.
    pub fn build(&self) -> Result<Box<dyn Parser>, ProcessorError> {
        fn boxed<P: Parser + 'static, E: Into<ProcessorError>>(
            r: Result<P, E>,
        ) -> Result<Box<dyn Parser>, ProcessorError> {
            r.map(|p| Box::new(p) as Box<dyn Parser>)
                .map_err(Into::into)
        }
        match self {
            ProcessorConfig::Regex(o) => boxed(RegexParser::new(o.clone())),
            ProcessorConfig::Delimiter(o) => boxed(DelimiterParser::new(o.clone())),
            ProcessorConfig::Json(o) => boxed(JsonParser::new(o.clone())),
            ProcessorConfig::Timestamp(o) => boxed(TimestampParser::new(o.clone())),
            ProcessorConfig::Filter(o) => boxed(FilterParser::new(o.clone())),
            ProcessorConfig::Desensitize(o) => boxed(DesensitizeParser::new(o.clone())),
            ProcessorConfig::GoRegex(o) => boxed(GoRegexParser::new(o.clone())),
            ProcessorConfig::GoFilter(o) => boxed(GoFilterParser::new(o.clone()).map_err(Box::new)),
            ProcessorConfig::SplitChar(o) => boxed(SplitCharParser::new(o.clone())),
            ProcessorConfig::SplitLogRegex(o) => boxed(SplitLogRegexParser::new(o.clone())),
            ProcessorConfig::RegexAccelerate(o) => {
                boxed(RegexAccelerateParser::new(o.as_ref().clone()).map_err(Box::new))
            }
            ProcessorConfig::JsonExpand(o) => boxed(json_expand::JsonExpandParser::new(o.clone())),
            ProcessorConfig::Strptime(o) => boxed(strptime::StrptimeParser::new(o.clone())),
            ProcessorConfig::AddFields(o) => boxed(add_fields::AddFieldsParser::new(o.clone())),
            ProcessorConfig::Grok(o) => boxed(grok::GrokParser::new(o.clone())),
        }
    }
}

/// A flusher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlusherConfig {
    /// `flusher_stdout`; `tags` adds `__tag__:__path__`.
    Stdout {
        /// Whether to print tags.
        tags: bool,
    },
    /// `flusher_file`.
    File {
        /// `FilePath`.
        path: PathBuf,
    },
    /// `flusher_blackhole`.
    Blackhole,
    /// `flusher_sls`.
    Sls(Box<SlsOptions>),
}

struct Ctx<'a> {
    origin: &'a str,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A JSON object being read, remembering which keys were used so the rest
/// can be reported.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    used: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: String, cx: &Ctx) -> Result<Self, ConfigError> {
        match v {
            Value::Object(map) => Ok(Obj {
                map,
                path,
                used: Vec::new(),
            }),
            other => Err(cx.err(path, format!("expected an object, found {}", kind(other)))),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.used.push(k);
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn str(&mut self, k: &'static str, cx: &Ctx) -> Result<Option<String>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(cx.err(
                self.key(k),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    fn bool(&mut self, k: &'static str, default: bool, cx: &Ctx) -> Result<bool, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(cx.err(
                self.key(k),
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    fn uint(
        &mut self,
        k: &'static str,
        default: u64,
        max: u64,
        cx: &Ctx,
    ) -> Result<u64, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v <= max => Ok(v),
                _ => Err(cx.err(
                    self.key(k),
                    format!("expected a whole number from 0 to {max}, found {n}"),
                )),
            },
            Some(other) => Err(cx.err(
                self.key(k),
                format!("expected a whole number, found {}", kind(other)),
            )),
        }
    }

    fn strings(&mut self, k: &'static str, cx: &Ctx) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(cx.err(
                        format!("{}[{i}]", self.key(k)),
                        format!("expected a string, found {}", kind(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(cx.err(
                self.key(k),
                format!("expected a list of strings, found {}", kind(other)),
            )),
        }
    }

    /// Reports keys nobody asked for.
    fn finish(self, cx: &mut Ctx, ignored: &[&str]) {
        for k in self.map.keys() {
            if self.used.contains(&k.as_str()) {
                continue;
            }
            let why = if ignored.contains(&k.as_str()) {
                "accepted but not implemented in this version; ignored"
            } else {
                "unknown option; ignored"
            };
            cx.warnings.push(format!("{}: {why}", self.key(k)));
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A whole-file error (unreadable, syntax) has no key: no ": : ".
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// What an empty config file is told.
const EMPTY_FILE: &str =
    "the file is empty: a pipeline config needs at least `inputs` and `flushers`";
/// What an empty config text (from a config server) is told.
const EMPTY_CONFIG: &str =
    "the config is empty: a pipeline config needs at least `inputs` and `flushers`";

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl PipelineConfig {
    /// Loads a config file; its name is the file name without extension.
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
        Self::load_with_text(path).map(|(c, _)| c)
    }

    /// [`PipelineConfig::load`], also returning the text it parsed (so a
    /// caller can tell whether the file changed without reading it again).
    pub fn load_with_text(path: &Path) -> Result<(PipelineConfig, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: path.display().to_string(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse_file(path, &text).map(|c| (c, text))
    }

    /// The pipeline name a config file gives: its name without the
    /// extension (`/etc/conf.d/nginx.yaml` → `nginx`).
    pub fn name_of(path: &Path) -> String {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into())
    }

    /// Parses `text`, read from the config file `path`: the name comes from
    /// the file name ([`PipelineConfig::name_of`]), a `.json` file is JSON,
    /// and errors name the file.
    pub fn parse_file(path: &Path, text: &str) -> Result<PipelineConfig, ConfigError> {
        let origin = path.display().to_string();
        let json = path.extension().is_some_and(|e| e == "json");
        match Self::parse(&Self::name_of(path), &origin, text, json) {
            Err(e) if e.key.is_empty() && e.message == EMPTY_CONFIG => Err(ConfigError {
                message: EMPTY_FILE.into(),
                ..e
            }),
            other => other,
        }
    }

    /// Parses config text. `json` forces JSON; otherwise text starting with
    /// `{` is JSON and the rest YAML.
    pub fn parse(
        name: &str,
        origin: &str,
        text: &str,
        json: bool,
    ) -> Result<PipelineConfig, ConfigError> {
        let mut cx = Ctx {
            origin,
            warnings: Vec::new(),
        };
        if text.trim().is_empty() {
            return Err(cx.err("", EMPTY_CONFIG));
        }
        let root: Value = if json || text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| cx.err("", format!("invalid JSON: {e}")))?
        } else {
            serde_yaml::from_str(text).map_err(|e| cx.err("", format!("invalid YAML: {e}")))?
        };
        // Only comments (or `---`): as empty as no text at all.
        if root.is_null() {
            return Err(cx.err("", EMPTY_CONFIG));
        }
        let mut top = Obj::new(&root, String::new(), &cx)?;
        let enable = top.bool("enable", true, &cx)?;
        let inputs_v = top.get("inputs");
        let processors_v = top.get("processors");
        let flushers_v = top.get("flushers");
        top.finish(&mut cx, &["global", "aggregators", "extensions"]);

        let parsed = list(inputs_v, "inputs", &cx)?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_input(v, format!("inputs[{i}]"), name, &mut cx))
            .collect::<Result<Vec<_>, _>>()?;
        let allow_multi_configs = parsed.iter().any(|(_, allow)| *allow);
        let mut inputs: Vec<InputConfig> = parsed.into_iter().map(|(i, _)| i).collect();
        if inputs.is_empty() {
            return Err(cx.err("inputs", "at least one input is required"));
        }
        let processors = list(processors_v, "processors", &cx)?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_processor(v, format!("processors[{i}]"), &mut cx))
            .collect::<Result<Vec<_>, _>>()?;
        regex_family::bridge_multiline(&mut inputs, &processors, &mut cx);
        let flushers = list(flushers_v, "flushers", &cx)?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_flusher(v, format!("flushers[{i}]"), &mut cx))
            .collect::<Result<Vec<_>, _>>()?;
        if flushers.is_empty() {
            return Err(cx.err("flushers", "at least one flusher is required"));
        }
        Ok(PipelineConfig {
            name: name.to_string(),
            origin: origin.to_string(),
            enable,
            inputs,
            processors,
            flushers,
            warnings: cx.warnings,
            allow_multi_configs,
        })
    }
}

fn list<'a>(v: Option<&'a Value>, key: &str, cx: &Ctx) -> Result<&'a [Value], ConfigError> {
    match v {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(cx.err(key, format!("expected a list, found {}", kind(other)))),
    }
}

fn type_of(o: &mut Obj, cx: &Ctx) -> Result<String, ConfigError> {
    o.str("Type", cx)?
        .ok_or_else(|| cx.err(o.key("Type"), "missing (required)"))
}

fn parse_input(
    v: &Value,
    path: String,
    name: &str,
    cx: &mut Ctx,
) -> Result<(InputConfig, bool), ConfigError> {
    if let Some(i) = extended::parse_input(v, &path, name, cx)? {
        return Ok((i, false));
    }
    let mut o = Obj::new(v, path, cx)?;
    let ty = type_of(&mut o, cx)?;
    match ty.as_str() {
        "input_file" => {}
        "input_internal_alarms" => {
            o.finish(cx, &[]);
            return Ok((InputConfig::InternalAlarms, false));
        }
        "input_internal_metrics" => {
            return Ok((InputConfig::InternalMetrics(parse_internal_metrics(o, cx)?), false));
        }
        _ => {
            return Err(cx.err(
                o.key("Type"),
                format!("unknown input type {ty:?} (supported: input_file, input_command, input_internal_metrics, input_internal_alarms)"),
            ))
        }
    }
    let file_paths = o
        .strings("FilePaths", cx)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            cx.err(
                o.key("FilePaths"),
                "missing (required): the files to collect, e.g. [/var/log/app/*.log]",
            )
        })?;
    let mut paths = PathsSpec::new(file_paths);
    paths.max_dir_search_depth = o.uint("MaxDirSearchDepth", 0, 1000, cx)? as u32;
    paths.exclude_file_paths = o.strings("ExcludeFilePaths", cx)?.unwrap_or_default();
    paths.exclude_files = o.strings("ExcludeFiles", cx)?.unwrap_or_default();
    paths.exclude_dirs = o.strings("ExcludeDirs", cx)?.unwrap_or_default();
    // The pattern errors name the pattern; prefix the key.
    PathMatcher::new(&paths).map_err(|e| cx.err(o.key("FilePaths"), e.to_string()))?;
    let d = FileInputOptions::default();
    let tail_size_kb = o.uint("TailSizeKB", d.tail_size_kb, 10_485_760, cx)?;
    let flush_timeout = Duration::from_secs(o.uint("FlushTimeoutSecs", 5, 86_400, cx)?);
    let max_line_bytes = o.uint(
        "MaxLineBytes",
        d.framing.max_line_bytes as u64,
        64 << 20,
        cx,
    )? as usize;
    let long_lines = match o.str("LongLinePolicy", cx)?.as_deref() {
        None | Some("split") => LongLinePolicy::Split,
        Some("truncate") => LongLinePolicy::Truncate,
        Some(other) => {
            return Err(cx.err(
                o.key("LongLinePolicy"),
                format!("expected split or truncate, found {other:?}"),
            ))
        }
    };
    let strip_cr = o.bool("StripCarriageReturn", false, cx)?;
    let encoding = match o.str("FileEncoding", cx)? {
        None => FileEncoding::Utf8,
        Some(e) => FileEncoding::parse(&e).ok_or_else(|| {
            cx.err(
                o.key("FileEncoding"),
                format!("expected utf8, gbk or utf16, found {e:?}"),
            )
        })?,
    };
    let allow_multi = o.bool("AllowingIncludedByMultiConfigs", false, cx)?;
    let copy_truncate_dirs = o
        .strings("CopyTruncateDirs", cx)?
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let multiline = match o.get("Multiline") {
        None => None,
        Some(v) => Some(parse_multiline(v, o.key("Multiline"), cx)?),
    };
    o.finish(
        cx,
        &[
            "AppendingLogPositionMeta",
            "Tags",
            "EnableContainerDiscovery",
        ],
    );
    let mut file = d;
    file.config_name = Arc::from(name);
    file.paths = paths;
    file.tail_size_kb = tail_size_kb;
    file.flush_timeout = flush_timeout;
    file.framing.max_line_bytes = max_line_bytes.max(1);
    file.framing.long_lines = long_lines;
    file.framing.strip_cr = strip_cr;
    file.multiline = multiline;
    file.encoding = encoding;
    file.copy_truncate_dirs = copy_truncate_dirs;
    Ok((InputConfig::File(file), allow_multi))
}

fn parse_flusher(v: &Value, path: String, cx: &mut Ctx) -> Result<FlusherConfig, ConfigError> {
    let mut o = Obj::new(v, path, cx)?;
    let ty = type_of(&mut o, cx)?;
    let f = match ty.as_str() {
        "flusher_stdout" => {
            let _ = o.bool("OnlyStdout", true, cx)?;
            FlusherConfig::Stdout {
                tags: o.bool("Tags", true, cx)?,
            }
        }
        "flusher_file" => {
            let p = o
                .str("FilePath", cx)?
                .filter(|p| !p.is_empty())
                .ok_or_else(|| cx.err(o.key("FilePath"), "missing (required): the output file"))?;
            FlusherConfig::File { path: PathBuf::from(p) }
        }
        "flusher_blackhole" => FlusherConfig::Blackhole,
        "flusher_sls" => FlusherConfig::Sls(Box::new(parse_sls(&mut o, cx)?)),
        other => {
            return Err(cx.err(
                o.key("Type"),
                format!("unknown flusher type {other:?} (supported: flusher_sls, flusher_stdout, flusher_file, flusher_blackhole)"),
            ))
        }
    };
    o.finish(cx, &["Match", "MaxFileSize", "MaxFiles"]);
    Ok(f)
}

fn parse_sls(o: &mut Obj, cx: &mut Ctx) -> Result<SlsOptions, ConfigError> {
    let mut required = |k: &'static str, what: &str| -> Result<String, ConfigError> {
        o.str(k, cx)?
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
            .ok_or_else(|| cx.err(o.key(k), format!("missing (required): {what}")))
    };
    let project = required("Project", "the SLS project")?;
    let logstore = required("Logstore", "the logstore in the project")?;
    let endpoint_text = required(
        "Endpoint",
        "e.g. cn-hangzhou.log.aliyuncs.com, or http://host:port",
    )?;
    let endpoint = Endpoint::parse(&endpoint_text).map_err(|m| cx.err(o.key("Endpoint"), m))?;
    let region = o.str("Region", cx)?.unwrap_or_default();
    let mut opts = SlsOptions::new(&project, &logstore, region.trim(), endpoint);
    if let Some(c) = o.str("CompressType", cx)? {
        opts.compress = c
            .parse()
            .map_err(|e: logtail_core::sls::UnknownCompressType| {
                cx.err(o.key("CompressType"), e.to_string())
            })?;
    }
    opts.signature_v4 = match o.str("SignatureVersion", cx)?.as_deref().map(str::trim) {
        None | Some("") | Some("v1") | Some("V1") => false,
        Some("v4") | Some("V4") => true,
        Some(other) => {
            return Err(cx.err(
                o.key("SignatureVersion"),
                format!("expected v1 or v4, found {other:?}"),
            ))
        }
    };
    if opts.signature_v4 && opts.region.is_empty() {
        return Err(cx.err(
            o.key("Region"),
            "missing (required with SignatureVersion v4), e.g. cn-hangzhou",
        ));
    }
    opts.shard_hash_keys = o.strings("ShardHashKeys", cx)?.unwrap_or_default();
    opts.topic = o.str("Topic", cx)?.filter(|t| !t.is_empty());
    opts.max_send_rate = o.uint("MaxSendRate", 0, u64::MAX, cx)?;
    opts.concurrency = o
        .uint("MaxConcurrency", opts.concurrency as u64, 256, cx)?
        .max(1) as usize;
    opts.retry_timeout = Duration::from_secs(o.uint("RetryTimeoutSecs", 30, 86_400, cx)?);
    opts.request_timeout = Duration::from_secs(o.uint("RequestTimeoutSecs", 30, 3600, cx)?.max(1));
    opts.replay_rate = o.uint("ReplayMaxBytesPerSec", opts.replay_rate, u64::MAX, cx)?;
    opts.disk_buffer_max_bytes = o.uint(
        "DiskBufferMaxBytes",
        opts.disk_buffer_max_bytes,
        u64::MAX,
        cx,
    )?;
    opts.disk_buffer_ttl = Duration::from_secs(
        o.uint(
            "DiskBufferTTLSecs",
            opts.disk_buffer_ttl.as_secs(),
            30 * 86_400,
            cx,
        )?
        .max(1),
    );
    opts.batch.max_bytes = o
        .uint(
            "MaxBatchBytes",
            opts.batch.max_bytes as u64,
            opts.batch.hard_max_bytes as u64,
            cx,
        )?
        .max(1) as usize;
    opts.batch.max_events = o
        .uint(
            "MaxBatchEvents",
            opts.batch.max_events as u64,
            1_000_000,
            cx,
        )?
        .max(1) as usize;
    opts.batch.max_age = Duration::from_millis(o.uint("MaxBatchDelayMs", 3000, 600_000, cx)?);
    opts.ali_uid = o.str("AliUid", cx)?.filter(|t| !t.is_empty());
    // Fault injection for the agent-level tests only (see
    // SlsOptions::panic_in_request); deliberately undocumented.
    opts.panic_in_request =
        Some(o.uint("__TestPanicInRequest", 0, u64::MAX, cx)?).filter(|&n| n > 0);
    Ok(opts)
}

/// The rules of `input_internal_metrics` (`Agent`, `Pipeline`…: `Enable`,
/// `IntervalSeconds` or `Interval` in minutes).
fn parse_internal_metrics(
    mut o: Obj,
    cx: &mut Ctx,
) -> Result<crate::internal::InternalMetricsOptions, ConfigError> {
    use crate::internal::{InternalMetricsOptions, MetricRule, MIN_METRICS_INTERVAL};
    let mut opts = InternalMetricsOptions::default();
    let rule = |key: &'static str, o: &mut Obj, cx: &mut Ctx| -> Result<MetricRule, ConfigError> {
        let mut r = MetricRule::default();
        let Some(v) = o.get(key) else {
            return Ok(r);
        };
        let mut ro = Obj::new(v, o.key(key), cx)?;
        r.enable = ro.bool("Enable", true, cx)?;
        let minutes = ro.uint("Interval", 10, 10_080, cx)?;
        r.interval = match ro.get("IntervalSeconds") {
            None => Duration::from_secs(minutes * 60),
            Some(_) => {
                let secs = ro.uint("IntervalSeconds", 15, 604_800, cx)?;
                if secs < MIN_METRICS_INTERVAL.as_secs() {
                    return Err(cx.err(
                        ro.key("IntervalSeconds"),
                        format!(
                            "at least {} seconds, found {secs}",
                            MIN_METRICS_INTERVAL.as_secs()
                        ),
                    ));
                }
                Duration::from_secs(secs)
            }
        };
        ro.finish(cx, &[]);
        Ok(r)
    };
    opts.agent = rule("Agent", &mut o, cx)?;
    opts.pipeline = rule("Pipeline", &mut o, cx)?;
    opts.plugin_source = rule("PluginSource", &mut o, cx)?;
    opts.plugin = rule("Plugin", &mut o, cx)?;
    o.finish(cx, &["Runner", "Component"]);
    Ok(opts)
}

fn parse_multiline(v: &Value, path: String, cx: &mut Ctx) -> Result<MultilineOptions, ConfigError> {
    let mut o = Obj::new(v, path, cx)?;
    let mode = match o.str("Mode", cx)?.as_deref() {
        None | Some("custom") => MultilineMode::Custom,
        Some("JSON") | Some("json") => MultilineMode::Json,
        Some(other) => {
            return Err(cx.err(
                o.key("Mode"),
                format!("expected custom or JSON, found {other:?}"),
            ))
        }
    };
    let unmatched = match o.str("UnmatchedContentTreatment", cx)?.as_deref() {
        None | Some("single_line") => UnmatchedContentTreatment::SingleLine,
        Some("discard") => UnmatchedContentTreatment::Discard,
        Some(other) => {
            return Err(cx.err(
                o.key("UnmatchedContentTreatment"),
                format!("expected single_line or discard, found {other:?}"),
            ))
        }
    };
    let mut m = MultilineOptions::default();
    m.mode = mode;
    m.start_pattern = o.str("StartPattern", cx)?;
    m.continue_pattern = o.str("ContinuePattern", cx)?;
    m.end_pattern = o.str("EndPattern", cx)?;
    m.unmatched = unmatched;
    if let Err(e) = MultilineRules::compile(&m) {
        return Err(cx.err(
            o.key(e.key),
            format!("invalid pattern {:?}: {}", e.pattern, e.reason),
        ));
    }
    for w in MultilineRules::warnings_for(&m) {
        cx.warnings.push(format!("{}: {w}", o.path));
    }
    o.finish(cx, &[]);
    Ok(m)
}

/// SourceKey and the Keeping… options of the `processor_parse_*` processors.
fn source_options(o: &mut Obj, cx: &Ctx) -> Result<SourceOptions, ConfigError> {
    let mut s = SourceOptions::default();
    if let Some(k) = o.str("SourceKey", cx)? {
        s.source_key = Arc::from(k);
    }
    s.keep_source_on_fail = o.bool("KeepingSourceWhenParseFail", s.keep_source_on_fail, cx)?;
    s.keep_source_on_success = o.bool(
        "KeepingSourceWhenParseSucceed",
        s.keep_source_on_success,
        cx,
    )?;
    s.renamed_source_key = o
        .str("RenamedSourceKey", cx)?
        .filter(|k| !k.is_empty())
        .map(Arc::from);
    s.copying_raw_log = o.bool("CopingRawLog", s.copying_raw_log, cx)?;
    Ok(s)
}

fn required_str(o: &mut Obj, k: &'static str, cx: &Ctx) -> Result<String, ConfigError> {
    o.str(k, cx)?
        .ok_or_else(|| cx.err(o.key(k), "missing (required)"))
}

fn required_strings(o: &mut Obj, k: &'static str, cx: &Ctx) -> Result<Vec<String>, ConfigError> {
    o.strings(k, cx)?
        .ok_or_else(|| cx.err(o.key(k), "missing (required)"))
}

/// `Include`/`Exclude` of the regex filter: a map of field name to regex.
fn regex_map(o: &mut Obj, k: &'static str, cx: &Ctx) -> Result<Vec<(String, String)>, ConfigError> {
    match o.get(k) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(field, re)| match re {
                Value::String(re) => Ok((field.clone(), re.clone())),
                other => Err(cx.err(
                    format!("{}.{field}", o.key(k)),
                    format!("expected a regex string, found {}", kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(cx.err(
            o.key(k),
            format!("expected a map of field to regex, found {}", kind(other)),
        )),
    }
}

fn parse_processor(v: &Value, path: String, cx: &mut Ctx) -> Result<ProcessorConfig, ConfigError> {
    if let Some(p) = extended::parse_processor(v, &path, cx)? {
        return Ok(p);
    }
    let go = extended::canonical_go_regex(v);
    let mut o = Obj::new(go.as_ref().unwrap_or(v), path, cx)?;
    let ty = type_of(&mut o, cx)?;
    let p = match ty.as_str() {
        "processor_parse_regex_native" => {
            let source = source_options(&mut o, cx)?;
            let regex = required_str(&mut o, "Regex", cx)?;
            let mut r = RegexOptions::new(regex, required_strings(&mut o, "Keys", cx)?);
            r.source = source;
            ProcessorConfig::Regex(r)
        }
        "processor_parse_delimiter_native" => {
            let source = source_options(&mut o, cx)?;
            let separator = required_str(&mut o, "Separator", cx)?;
            let mut d = DelimiterOptions::new(separator, required_strings(&mut o, "Keys", cx)?);
            d.source = source;
            if let Some(q) = o.str("Quote", cx)? {
                d.quote = q;
            }
            d.allowing_shortened_fields =
                o.bool("AllowingShortenedFields", d.allowing_shortened_fields, cx)?;
            d.overflowed_fields_treatment = match o.str("OverflowedFieldsTreatment", cx)?.as_deref()
            {
                None | Some("extend") => Overflow::Extend,
                Some("keep") => Overflow::Keep,
                Some("discard") => Overflow::Discard,
                Some(other) => {
                    return Err(cx.err(
                        o.key("OverflowedFieldsTreatment"),
                        format!("expected extend, keep or discard, found {other:?}"),
                    ))
                }
            };
            ProcessorConfig::Delimiter(d)
        }
        "processor_parse_json_native" => {
            let mut j = JsonOptions::default();
            j.source = source_options(&mut o, cx)?;
            ProcessorConfig::Json(j)
        }
        "processor_parse_timestamp_native" => {
            let year = o.uint("SourceYear", 0, 9999, cx)?;
            let source_key = o.str("SourceKey", cx)?;
            let mut ts = TimestampOptions::new(required_str(&mut o, "SourceFormat", cx)?);
            if let Some(k) = source_key {
                ts.source_key = Arc::from(k);
            }
            ts.source_timezone = o.str("SourceTimezone", cx)?.filter(|z| !z.is_empty());
            if ts.source_timezone.is_none() {
                regex_family::note_utc(&ts.source_format, &o.key("SourceFormat"), cx);
            }
            ts.source_year = (year > 0).then_some(year as i32);
            ts.discard_older_than_secs = o.uint(
                "DiscardOlderThanSecs",
                ts.discard_older_than_secs,
                u64::MAX,
                cx,
            )?;
            ProcessorConfig::Timestamp(ts)
        }
        "processor_filter_regex_native" => {
            let mut include = regex_map(&mut o, "Include", cx)?;
            let keys = o.strings("FilterKey", cx)?.unwrap_or_default();
            let regexes = o.strings("FilterRegex", cx)?.unwrap_or_default();
            if keys.len() != regexes.len() {
                return Err(cx.err(
                    o.key("FilterRegex"),
                    format!(
                        "FilterKey has {} entries but FilterRegex has {}; they pair up",
                        keys.len(),
                        regexes.len()
                    ),
                ));
            }
            include.extend(keys.into_iter().zip(regexes));
            let exclude = regex_map(&mut o, "Exclude", cx)?;
            let mut f = FilterOptions::default();
            f.include = include;
            f.exclude = exclude;
            ProcessorConfig::Filter(f)
        }
        "processor_desensitize_native" => {
            let method = match o.str("Method", cx)?.as_deref() {
                None | Some("const") => Method::Const,
                Some("md5") => Method::Md5,
                Some(other) => {
                    return Err(cx.err(
                        o.key("Method"),
                        format!("expected const or md5, found {other:?}"),
                    ))
                }
            };
            let source_key = required_str(&mut o, "SourceKey", cx)?;
            let before = o
                .str("ContentPatternBeforeReplacedString", cx)?
                .unwrap_or_default();
            let pattern = required_str(&mut o, "ReplacedContentPattern", cx)?;
            let mut d = DesensitizeOptions::new(source_key, method, before, pattern);
            d.replacing_string = o.str("ReplacingString", cx)?;
            d.replacing_all = o.bool("ReplacingAll", d.replacing_all, cx)?;
            ProcessorConfig::Desensitize(d)
        }
        "processor_regex"
        | "processor_filter_regex"
        | "processor_split_char"
        | "processor_split_log_regex"
        | "processor_regex_accelerate" => regex_family::parse_extended(&ty, &mut o, cx)?,
        other => {
            return Err(cx.err(
                o.key("Type"),
                format!(
                    "unknown processor type {other:?} (supported: processor_parse_regex_native, \
                     processor_parse_delimiter_native, processor_parse_json_native, \
                     processor_parse_timestamp_native, processor_filter_regex_native, \
                     processor_desensitize_native, processor_regex, processor_filter_regex, \
                     processor_split_char, processor_split_log_regex, \
                     processor_regex_accelerate, processor_json, processor_strptime, \
                     processor_add_fields, processor_grok)"
                ),
            ))
        }
    };
    // Build once now: a bad pattern or format is a config error naming the
    // processor, not a failure later when the pipeline starts.
    if let Err(e) = p.build() {
        return Err(cx.err(o.path.clone(), e.to_string()));
    }
    o.finish(cx, &[]);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::parse("t", "t.yaml", text, false)
    }

    #[test]
    fn a_processor_that_refuses_its_options_says_which_and_why() {
        let p = ProcessorConfig::Regex(RegexOptions::new("(unclosed", vec!["a".into()]));
        let e = p.build().err().expect("a bad pattern is refused");
        assert!(matches!(e, ProcessorError::Regex(_)), "{e:?}");
        // Displays as the processor's own error.
        let ProcessorError::Regex(inner) = &e else {
            unreachable!()
        };
        assert_eq!(e.to_string(), inner.to_string());
    }

    #[test]
    fn loongcollector_example_loads() {
        let c = parse(
            "enable: true\ninputs:\n  - Type: input_file\n    FilePaths:\n      - /home/test-log/**/*.log\n    MaxDirSearchDepth: 10\nflushers:\n  - Type: flusher_stdout\n    OnlyStdout: true\n    Tags: true\n",
        )
        .unwrap();
        assert!(c.enable);
        let InputConfig::File(f) = &c.inputs[0] else {
            panic!("{:?}", c.inputs)
        };
        assert_eq!(
            f.paths.file_paths,
            vec!["/home/test-log/**/*.log".to_string()]
        );
        assert_eq!(f.paths.max_dir_search_depth, 10);
        assert_eq!(c.flushers, vec![FlusherConfig::Stdout { tags: true }]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn json_config_loads() {
        let c = PipelineConfig::parse(
            "j",
            "j.json",
            r#"{"inputs":[{"Type":"input_file","FilePaths":["/a/*.log"],"TailSizeKB":0}],"flushers":[{"Type":"flusher_file","FilePath":"/tmp/o"}]}"#,
            true,
        )
        .unwrap();
        let InputConfig::File(f) = &c.inputs[0] else {
            panic!("{:?}", c.inputs)
        };
        assert_eq!(f.tail_size_kb, 0);
    }

    #[test]
    fn an_empty_config_says_so() {
        for text in ["", "  \n\n", "# only a comment\n", "---\n"] {
            let e = PipelineConfig::parse("a", "a.yaml", text, false).unwrap_err();
            assert_eq!(e.message, EMPTY_CONFIG, "{text:?}");
            assert_eq!(e.to_string(), format!("a.yaml: {EMPTY_CONFIG}"));
        }
        let e = PipelineConfig::parse("a", "a.json", " ", true).unwrap_err();
        assert_eq!(e.message, EMPTY_CONFIG);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.yaml");
        std::fs::write(&path, "").unwrap();
        let e = PipelineConfig::load(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the file is empty: a pipeline config needs at least `inputs` and `flushers`",
                path.display()
            )
        );
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("inputs:\n  - Type: input_file\nflushers:\n  - Type: flusher_stdout\n")
            .unwrap_err();
        assert_eq!(e.origin, "t.yaml");
        assert_eq!(e.key, "inputs[0].FilePaths");
        assert!(
            e.to_string()
                .starts_with("t.yaml: inputs[0].FilePaths: missing"),
            "{e}"
        );

        let e = parse("inputs:\n  - Type: input_nope\n    FilePaths: [/a]\nflushers:\n  - Type: flusher_stdout\n").unwrap_err();
        assert_eq!(e.key, "inputs[0].Type");
        assert!(e.message.contains("input_nope"));

        let e = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a/**/b/**/c.log]\nflushers:\n  - Type: flusher_stdout\n").unwrap_err();
        assert_eq!(e.key, "inputs[0].FilePaths");
        assert!(e.message.contains("only once"), "{e}");

        let e = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n    MaxDirSearchDepth: 1001\nflushers:\n  - Type: flusher_stdout\n").unwrap_err();
        assert_eq!(e.key, "inputs[0].MaxDirSearchDepth");

        let e = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\nflushers:\n  - Type: flusher_kafka\n").unwrap_err();
        assert_eq!(e.key, "flushers[0].Type");

        let e = parse("inputs: [").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e}");

        let e = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n").unwrap_err();
        assert_eq!(e.key, "flushers");
    }

    #[test]
    fn unknown_options_warn() {
        let c = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n    Colour: red\n    Tags: {}\nflushers:\n  - Type: flusher_blackhole\n").unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.starts_with("inputs[0].Colour: unknown option")));
    }

    #[test]
    fn internal_inputs_load_with_loongcollector_options() {
        let c = parse(
            "inputs:\n  - Type: input_internal_alarms\nflushers:\n  - Type: flusher_blackhole\n",
        )
        .unwrap();
        assert!(matches!(c.inputs[0], InputConfig::InternalAlarms));
        let c = parse("inputs:\n  - Type: input_internal_metrics\n    Agent:\n      IntervalSeconds: 15\n    Pipeline:\n      Enable: false\n    Plugin:\n      Interval: 2\n    Runner:\n      Enable: true\nflushers:\n  - Type: flusher_blackhole\n").unwrap();
        let InputConfig::InternalMetrics(m) = &c.inputs[0] else {
            panic!("{:?}", c.inputs[0])
        };
        assert_eq!(m.agent.interval, Duration::from_secs(15));
        assert!(!m.pipeline.enable);
        assert_eq!(m.plugin.interval, Duration::from_secs(120));
        assert_eq!(m.plugin_source.interval, Duration::from_secs(600));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("inputs[0].Runner: accepted but not implemented")),
            "{:?}",
            c.warnings
        );
        let e = parse("inputs:\n  - Type: input_internal_metrics\n    Agent:\n      IntervalSeconds: 5\nflushers:\n  - Type: flusher_blackhole\n").unwrap_err();
        assert_eq!(e.key, "inputs[0].Agent.IntervalSeconds");
        assert!(e.message.contains("at least 15"), "{e}");
        let e = parse("inputs:\n  - Type: input_syslog\nflushers:\n  - Type: flusher_blackhole\n")
            .unwrap_err();
        assert!(e.message.contains("input_internal_alarms"), "{e}");
    }

    #[test]
    fn processors_and_multiline_load_and_errors_name_their_key() {
        let base = "inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\n";
        let out = "flushers:\n  - Type: flusher_blackhole\n";
        let c = parse(&format!(
            "{base}    FileEncoding: gbk\n    Multiline:\n      StartPattern: '\\d+'\nprocessors:\n  - Type: processor_parse_regex_native\n    Regex: '(\\w+) (.*)'\n    Keys: [a, b]\n  - Type: processor_parse_json_native\n    SourceKey: b\n  - Type: processor_filter_regex_native\n    FilterKey: [a]\n    FilterRegex: ['x.*']\n{out}"
        ))
        .unwrap();
        assert_eq!(c.processors.len(), 3);
        let InputConfig::File(f) = &c.inputs[0] else {
            panic!("{:?}", c.inputs)
        };
        assert_eq!(f.encoding, FileEncoding::Gbk);
        assert!(f.multiline.is_some());

        let e = parse(&format!("{base}processors:\n  - Type: processor_parse_regex_native\n    Regex: '(unclosed'\n    Keys: [a]\n{out}")).unwrap_err();
        assert_eq!(e.key, "processors[0]");
        assert!(e.message.contains("Regex"), "{e}");

        let e = parse(&format!(
            "{base}processors:\n  - Type: processor_parse_regex_native\n    Keys: [a]\n{out}"
        ))
        .unwrap_err();
        assert_eq!(e.key, "processors[0].Regex");

        let e = parse(&format!(
            "{base}processors:\n  - Type: processor_nope\n{out}"
        ))
        .unwrap_err();
        assert_eq!(e.key, "processors[0].Type");

        let e = parse(&format!("{base}processors:\n  - Type: processor_filter_regex_native\n    FilterKey: [a, b]\n    FilterRegex: [x]\n{out}")).unwrap_err();
        assert_eq!(e.key, "processors[0].FilterRegex");

        let e = parse(&format!("{base}processors:\n  - Type: processor_parse_timestamp_native\n    SourceFormat: '%Q'\n{out}")).unwrap_err();
        assert!(e.message.contains("SourceFormat"), "{e}");

        let e = parse(&format!(
            "{base}    Multiline:\n      StartPattern: '(bad'\n{out}"
        ))
        .unwrap_err();
        assert_eq!(e.key, "inputs[0].Multiline.StartPattern");

        let e = parse(&format!("{base}    FileEncoding: latin9\n{out}")).unwrap_err();
        assert_eq!(e.key, "inputs[0].FileEncoding");
    }

    #[test]
    fn flusher_sls_loads_with_loongcollector_names_and_errors_name_their_key() {
        use logtail_core::sls::CompressType;
        let base = "inputs:\n  - Type: input_file\n    FilePaths: [/a.log]\nflushers:\n  - Type: flusher_sls\n";
        let c = parse(&format!(
            "{base}    Project: p\n    Logstore: s\n    Region: cn-shanghai\n    Endpoint: cn-shanghai.log.aliyuncs.com\n    CompressType: zstd\n    SignatureVersion: v4\n    ShardHashKeys: [a, b]\n    Topic: t\n    MaxSendRate: 1048576\n    AliUid: \"123\"\n"
        ))
        .unwrap();
        let FlusherConfig::Sls(o) = &c.flushers[0] else {
            panic!("{:?}", c.flushers)
        };
        assert_eq!((o.project.as_str(), o.logstore.as_str()), ("p", "s"));
        assert_eq!(o.compress, CompressType::Zstd);
        assert!(o.signature_v4);
        assert_eq!(o.shard_hash_keys, vec!["a", "b"]);
        assert_eq!(o.topic.as_deref(), Some("t"));
        assert_eq!(o.max_send_rate, 1 << 20);
        assert_eq!(o.ali_uid.as_deref(), Some("123"));
        assert!(o.endpoint.https && o.endpoint.project_in_url);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        let ok = "    Project: p\n    Logstore: s\n    Endpoint: http://127.0.0.1:9\n";
        let c = parse(&format!("{base}{ok}")).unwrap();
        let FlusherConfig::Sls(o) = &c.flushers[0] else {
            panic!()
        };
        assert_eq!(o.compress, CompressType::Lz4, "lz4 by default");
        assert!(!o.signature_v4 && !o.endpoint.https && !o.endpoint.project_in_url);

        for (extra, key, needle) in [
            (
                "    Logstore: s\n    Endpoint: e.com\n",
                "flushers[0].Project",
                "missing",
            ),
            (
                "    Project: p\n    Logstore: s\n    Endpoint: ftp://x\n",
                "flushers[0].Endpoint",
                "scheme",
            ),
            (
                "    Project: p\n    Logstore: s\n    Endpoint: e.com\n    CompressType: gzip\n",
                "flushers[0].CompressType",
                "gzip",
            ),
            (
                "    Project: p\n    Logstore: s\n    Endpoint: e.com\n    SignatureVersion: v4\n",
                "flushers[0].Region",
                "v4",
            ),
            (
                "    Project: p\n    Logstore: s\n    Endpoint: e.com\n    SignatureVersion: v2\n",
                "flushers[0].SignatureVersion",
                "v2",
            ),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}
