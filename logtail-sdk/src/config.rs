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

use logtail_core::file::{FileInputOptions, FramerOptions, LongLinePolicy, PathMatcher, PathsSpec};

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
    /// The flushers.
    pub flushers: Vec<FlusherConfig>,
    /// Options that were ignored, as `key: reason` (logged as warnings).
    pub warnings: Vec<String>,
}

/// An input.
#[derive(Debug, Clone)]
pub enum InputConfig {
    /// `input_file`.
    File(FileInputOptions),
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
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&name, &origin, &text, json)
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
        let root: Value = if json || text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| cx.err("", format!("invalid JSON: {e}")))?
        } else {
            serde_yaml::from_str(text).map_err(|e| cx.err("", format!("invalid YAML: {e}")))?
        };
        let mut top = Obj::new(&root, String::new(), &cx)?;
        let enable = top.bool("enable", true, &cx)?;
        let inputs_v = top.get("inputs");
        let processors_v = top.get("processors");
        let flushers_v = top.get("flushers");
        top.finish(&mut cx, &["global", "aggregators", "extensions"]);

        let inputs = list(inputs_v, "inputs", &cx)?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_input(v, format!("inputs[{i}]"), name, &mut cx))
            .collect::<Result<Vec<_>, _>>()?;
        if inputs.is_empty() {
            return Err(cx.err("inputs", "at least one input is required"));
        }
        if let Some((i, p)) = list(processors_v, "processors", &cx)?
            .iter()
            .enumerate()
            .next()
        {
            let ty = p.get("Type").and_then(Value::as_str).unwrap_or("?");
            return Err(cx.err(
                format!("processors[{i}].Type"),
                format!("processor {ty:?} is not supported yet (processing arrives in a later version); remove it to collect raw lines"),
            ));
        }
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
            flushers,
            warnings: cx.warnings,
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
) -> Result<InputConfig, ConfigError> {
    let mut o = Obj::new(v, path, cx)?;
    let ty = type_of(&mut o, cx)?;
    if ty != "input_file" {
        return Err(cx.err(
            o.key("Type"),
            format!("unknown input type {ty:?} (supported: input_file)"),
        ));
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
    let paths = PathsSpec {
        file_paths,
        max_dir_search_depth: o.uint("MaxDirSearchDepth", 0, 1000, cx)? as u32,
        exclude_file_paths: o.strings("ExcludeFilePaths", cx)?.unwrap_or_default(),
        exclude_files: o.strings("ExcludeFiles", cx)?.unwrap_or_default(),
        exclude_dirs: o.strings("ExcludeDirs", cx)?.unwrap_or_default(),
    };
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
    match o.str("FileEncoding", cx)?.as_deref() {
        None | Some("utf8") | Some("UTF8") | Some("utf-8") => {}
        Some(other) => {
            return Err(cx.err(
                o.key("FileEncoding"),
                format!("encoding {other:?} is not supported yet (utf8 only)"),
            ))
        }
    }
    if o.get("Multiline").is_some() {
        return Err(cx.err(
            o.key("Multiline"),
            "multiline is not supported yet; remove it to collect single lines",
        ));
    }
    o.finish(
        cx,
        &[
            "AllowingIncludedByMultiConfigs",
            "AppendingLogPositionMeta",
            "Tags",
            "EnableContainerDiscovery",
        ],
    );
    Ok(InputConfig::File(FileInputOptions {
        config_name: Arc::from(name),
        paths,
        tail_size_kb,
        flush_timeout,
        framing: FramerOptions {
            max_line_bytes: max_line_bytes.max(1),
            long_lines,
            strip_cr,
        },
        ..d
    }))
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
        "flusher_sls" => {
            return Err(cx.err(o.key("Type"), "flusher_sls is not supported yet (delivery to SLS arrives in a later version)"))
        }
        other => {
            return Err(cx.err(
                o.key("Type"),
                format!("unknown flusher type {other:?} (supported: flusher_stdout, flusher_file, flusher_blackhole)"),
            ))
        }
    };
    o.finish(cx, &["Match", "MaxFileSize", "MaxFiles"]);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::parse("t", "t.yaml", text, false)
    }

    #[test]
    fn loongcollector_example_loads() {
        let c = parse(
            "enable: true\ninputs:\n  - Type: input_file\n    FilePaths:\n      - /home/test-log/**/*.log\n    MaxDirSearchDepth: 10\nflushers:\n  - Type: flusher_stdout\n    OnlyStdout: true\n    Tags: true\n",
        )
        .unwrap();
        assert!(c.enable);
        let InputConfig::File(f) = &c.inputs[0];
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
        let InputConfig::File(f) = &c.inputs[0];
        assert_eq!(f.tail_size_kb, 0);
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
}
