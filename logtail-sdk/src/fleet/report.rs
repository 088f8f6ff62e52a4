//! What an agent tells the config server about itself in each heartbeat:
//! its status, CPU, memory, version and the alarms of the last period.
//!
//! The ConfigServer v2 protocol has no message for this, so the report
//! travels in the heartbeat's `attributes.extras` (`map<string, bytes>`),
//! under these keys (values are UTF-8 text):
//!
//! | key | value |
//! |---|---|
//! | [`EXTRA_STATUS`] `logtail.status` | `ok`, `busy`, `many_log_files`, `process_block`, `send_block` or `send_error` (Logtail's status names) |
//! | [`EXTRA_CPU`] `logtail.cpu` | CPU used, in cores, as a decimal number (`0.125`): the provider's latest measurement — `logtail-agent`'s status monitor samples it over 1 s, once a second, and reports the last sample; [`ReportProvider::self_sampled`] measures it since the previous heartbeat |
//! | [`EXTRA_MEM`] `logtail.mem` | resident memory in bytes, as a decimal integer |
//! | [`EXTRA_ALARMS`] `logtail.alarms` | the alarms since the last successful heartbeat: a JSON array of [`AlarmReport`]s; absent when there are none |
//!
//! The version is the attributes' own `version` field. A server that knows
//! nothing of these keys ignores them (LoongCollector's keeps extras as
//! opaque attributes).
//!
//! An alarm is written as LoongCollector names an alarm event's fields:
//!
//! ```json
//! {"alarm_type":"PARSE_LOG_FAIL_ALARM","alarm_level":1,"alarm_message":"…",
//!  "alarm_count":12,"config":"nginx","first_seen":1767225600}
//! ```
//!
//! Levels are 1 (warning), 2 (error) and 3 (critical); `config` is absent
//! for an alarm of the whole agent; `first_seen` is in Unix seconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Extras key of the agent status.
pub const EXTRA_STATUS: &str = "logtail.status";
/// Extras key of the CPU used, in cores.
pub const EXTRA_CPU: &str = "logtail.cpu";
/// Extras key of the resident memory, in bytes.
pub const EXTRA_MEM: &str = "logtail.mem";
/// Extras key of the alarms (a JSON array).
pub const EXTRA_ALARMS: &str = "logtail.alarms";

/// The status names, as Logtail's status report classifies an agent.
pub const STATUSES: [&str; 6] = [
    "ok",
    "busy",
    "many_log_files",
    "process_block",
    "send_block",
    "send_error",
];

/// Longest status, alarm type or config name kept from a decoded report
/// (longer ones are cut).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest alarm message kept from a decoded report (longer ones are cut).
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Most alarms taken from one decoded report (the rest are dropped and
/// counted as an error).
pub const MAX_ALARMS: usize = 1000;

/// An agent's state, as one heartbeat reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentReport {
    /// One of [`STATUSES`] (`ok` when nothing is wrong).
    pub status: String,
    /// CPU used, in cores, as the provider last measured it (over the
    /// last 1 s sample for `logtail-agent`; since the previous report for
    /// [`ReportProvider::self_sampled`]).
    pub cpu_cores: f64,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
    /// Agent version (empty: the fleet client's own).
    pub version: String,
    /// The alarms of the period since the previous report. A provider
    /// hands each alarm once; the fleet client keeps it until a heartbeat
    /// carrying it is answered.
    pub alarms: Vec<AlarmReport>,
}

/// One alarm, aggregated over a period by type, config and level: the
/// first message and how many times it was raised.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlarmReport {
    /// LoongCollector's alarm name (`PARSE_LOG_FAIL_ALARM`, …).
    #[serde(rename = "alarm_type")]
    pub alarm_type: String,
    /// 1 warning, 2 error, 3 critical.
    #[serde(rename = "alarm_level")]
    pub level: u8,
    /// The first message of the period.
    #[serde(rename = "alarm_message", default)]
    pub message: String,
    /// How many times it was raised in the period (at least 1).
    #[serde(rename = "alarm_count")]
    pub count: u64,
    /// The pipeline config it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// When it was first raised in the period, Unix seconds.
    #[serde(rename = "first_seen", default)]
    pub first_seen_unix: u64,
}

impl AlarmReport {
    /// An alarm raised once, now, for no config in particular.
    pub fn new(alarm_type: impl Into<String>, level: u8, message: impl Into<String>) -> Self {
        AlarmReport {
            alarm_type: alarm_type.into(),
            level,
            message: message.into(),
            count: 1,
            config: None,
            first_seen_unix: unix_now(),
        }
    }

    /// `warning`, `error` or `critical` (`unknown` for another level).
    pub fn level_name(&self) -> &'static str {
        match self.level {
            1 => "warning",
            2 => "error",
            3 => "critical",
            _ => "unknown",
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A part of a report that did not decode, and why; the rest is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("heartbeat extra {key}: {why}")]
#[non_exhaustive]
pub struct ReportError {
    /// The extras key at fault.
    pub key: &'static str,
    /// What is wrong (never the whole value).
    pub why: String,
}

fn report_error(key: &'static str, why: impl Into<String>) -> ReportError {
    ReportError {
        key,
        why: why.into(),
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

impl AgentReport {
    /// A report of status `ok` and nothing else.
    pub fn ok() -> Self {
        AgentReport {
            status: "ok".into(),
            ..Default::default()
        }
    }

    /// Writes the report's keys into `extras` (see the
    /// [module](self)); the version is not among them.
    pub fn write_extras(&self, extras: &mut BTreeMap<String, Vec<u8>>) {
        if !self.status.is_empty() {
            extras.insert(EXTRA_STATUS.into(), self.status.clone().into_bytes());
        }
        if self.cpu_cores.is_finite() && self.cpu_cores >= 0.0 {
            extras.insert(
                EXTRA_CPU.into(),
                format!("{:.3}", self.cpu_cores).into_bytes(),
            );
        }
        extras.insert(EXTRA_MEM.into(), self.memory_bytes.to_string().into_bytes());
        if !self.alarms.is_empty() {
            if let Ok(json) = serde_json::to_vec(&self.alarms) {
                extras.insert(EXTRA_ALARMS.into(), json);
            }
        }
    }

    /// Reads a report from a heartbeat's `extras` and `version` (untrusted
    /// input): `None` when none of the keys is there. A value that does
    /// not decode is left at its default and listed among the errors; an
    /// alarm without a type, with a level other than 1–3 or a count of 0
    /// is dropped with an error; text is cut to [`MAX_NAME_CHARS`] and
    /// [`MAX_MESSAGE_CHARS`], alarms to [`MAX_ALARMS`].
    pub fn from_extras(
        extras: &BTreeMap<String, Vec<u8>>,
        version: &[u8],
    ) -> (Option<AgentReport>, Vec<ReportError>) {
        let keys = [EXTRA_STATUS, EXTRA_CPU, EXTRA_MEM, EXTRA_ALARMS];
        if !keys.iter().any(|k| extras.contains_key(*k)) {
            return (None, Vec::new());
        }
        let mut errors = Vec::new();
        let mut report = AgentReport {
            version: cut(&String::from_utf8_lossy(version), MAX_NAME_CHARS),
            ..Default::default()
        };
        let text = |key: &'static str, errors: &mut Vec<ReportError>| -> Option<&str> {
            let v = extras.get(key)?;
            match std::str::from_utf8(v) {
                Ok(s) => Some(s.trim()),
                Err(_) => {
                    errors.push(report_error(key, "not UTF-8"));
                    None
                }
            }
        };
        if let Some(s) = text(EXTRA_STATUS, &mut errors) {
            report.status = cut(s, MAX_NAME_CHARS).trim_end().to_string();
        }
        if let Some(s) = text(EXTRA_CPU, &mut errors) {
            match s.parse::<f64>() {
                Ok(c) if c.is_finite() && c >= 0.0 => report.cpu_cores = c,
                _ => errors.push(report_error(
                    EXTRA_CPU,
                    format!(
                        "{:?} is not a number of cores",
                        cut(s, MAX_NAME_CHARS.min(32))
                    ),
                )),
            }
        }
        if let Some(s) = text(EXTRA_MEM, &mut errors) {
            match s.parse::<u64>() {
                Ok(m) => report.memory_bytes = m,
                Err(_) => errors.push(report_error(
                    EXTRA_MEM,
                    format!("{:?} is not a number of bytes", cut(s, 32)),
                )),
            }
        }
        if let Some(v) = extras.get(EXTRA_ALARMS) {
            match serde_json::from_slice::<Vec<serde_json::Value>>(v) {
                Err(e) => errors.push(report_error(
                    EXTRA_ALARMS,
                    format!("not a JSON array of alarms: {e}"),
                )),
                Ok(list) => {
                    if list.len() > MAX_ALARMS {
                        errors.push(report_error(
                            EXTRA_ALARMS,
                            format!("{} alarms; the first {MAX_ALARMS} are kept", list.len()),
                        ));
                    }
                    for (i, item) in list.into_iter().take(MAX_ALARMS).enumerate() {
                        match alarm_from_json(item) {
                            Ok(a) => report.alarms.push(a),
                            Err(why) => {
                                errors.push(report_error(EXTRA_ALARMS, format!("alarm {i}: {why}")))
                            }
                        }
                    }
                }
            }
        }
        (Some(report), errors)
    }
}

fn alarm_from_json(item: serde_json::Value) -> Result<AlarmReport, String> {
    let mut a: AlarmReport = serde_json::from_value(item).map_err(|e| e.to_string())?;
    if a.alarm_type.trim().is_empty() {
        return Err("alarm_type is empty".into());
    }
    if !(1..=3).contains(&a.level) {
        return Err(format!(
            "alarm_level {} is not 1 (warning), 2 (error) or 3 (critical)",
            a.level
        ));
    }
    if a.count == 0 {
        return Err("alarm_count is 0".into());
    }
    a.alarm_type = cut(a.alarm_type.trim(), MAX_NAME_CHARS)
        .trim_end()
        .to_string();
    a.message = cut(&a.message, MAX_MESSAGE_CHARS);
    a.config = a.config.map(|c| cut(&c, MAX_NAME_CHARS));
    Ok(a)
}

/// Gives the fleet client an [`AgentReport`] at each heartbeat (see
/// [`FleetOptions::report`](crate::fleet::client::FleetOptions::report)).
/// It is called on the heartbeat thread, so it must be quick; alarms it
/// returns are handed over (drained from wherever they were kept).
#[derive(Clone)]
pub struct ReportProvider(Arc<dyn Fn() -> AgentReport + Send + Sync>);

impl ReportProvider {
    /// A provider calling `f`.
    pub fn new(f: impl Fn() -> AgentReport + Send + Sync + 'static) -> Self {
        ReportProvider(Arc::new(f))
    }

    /// The report now.
    pub fn report(&self) -> AgentReport {
        (self.0)()
    }

    /// The default of an agent with nothing better to say: status `ok`,
    /// this process's CPU since the previous call and its resident memory
    /// (from `/proc/self`, see [`SelfSampler`](crate::resources::SelfSampler);
    /// 0 where it cannot be read), no alarms.
    pub fn self_sampled() -> Self {
        let sampler = Mutex::new(crate::resources::SelfSampler::new());
        ReportProvider::new(move || {
            let mut report = AgentReport::ok();
            let mut s = match sampler.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Ok(sample) = s.sample(Instant::now()) {
                report.cpu_cores = sample.cpu_cores;
                report.memory_bytes = sample.rss_bytes;
            }
            report
        })
    }
}

impl From<Arc<dyn Fn() -> AgentReport + Send + Sync>> for ReportProvider {
    fn from(f: Arc<dyn Fn() -> AgentReport + Send + Sync>) -> Self {
        ReportProvider(f)
    }
}

impl std::fmt::Debug for ReportProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportProvider(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_goes_through_the_extras_and_back() {
        let mut alarm = AlarmReport::new("PARSE_LOG_FAIL_ALARM", 2, "line 7: no match");
        alarm.count = 12;
        alarm.config = Some("nginx".into());
        let report = AgentReport {
            status: "send_error".into(),
            cpu_cores: 0.25,
            memory_bytes: 31 << 20,
            version: "1.2.3".into(),
            alarms: vec![
                alarm.clone(),
                AlarmReport::new("LOGTAIL_CRASH_ALARM", 3, ""),
            ],
        };
        let mut extras = BTreeMap::new();
        extras.insert("os".to_string(), b"linux".to_vec());
        report.write_extras(&mut extras);
        assert_eq!(extras[EXTRA_CPU], b"0.250");
        let json: serde_json::Value = serde_json::from_slice(&extras[EXTRA_ALARMS]).unwrap();
        assert_eq!(json[0]["alarm_type"], "PARSE_LOG_FAIL_ALARM");
        assert_eq!(json[0]["alarm_level"], 2);
        assert_eq!(json[0]["alarm_count"], 12);
        assert_eq!(json[0]["config"], "nginx");
        assert!(json[1].get("config").is_none());
        let (back, errors) = AgentReport::from_extras(&extras, b"1.2.3");
        assert_eq!(errors, []);
        assert_eq!(back, Some(report));
    }

    #[test]
    fn no_keys_no_report() {
        let extras = [("os".to_string(), b"linux".to_vec())].into();
        assert_eq!(AgentReport::from_extras(&extras, b"1"), (None, vec![]));
    }

    #[test]
    fn bad_parts_are_errors_and_the_rest_is_kept() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        let alarms = serde_json::json!([
            {"alarm_type": "A", "alarm_level": 1, "alarm_message": long, "alarm_count": 3},
            {"alarm_type": "", "alarm_level": 1, "alarm_count": 1},
            {"alarm_type": "B", "alarm_level": 9, "alarm_count": 1},
            {"alarm_type": "C", "alarm_level": 2, "alarm_count": 0},
            {"alarm_type": "D", "alarm_level": "two"},
            7
        ]);
        let extras: BTreeMap<String, Vec<u8>> = [
            (EXTRA_STATUS.to_string(), b"busy".to_vec()),
            (EXTRA_CPU.to_string(), b"NaN".to_vec()),
            (EXTRA_MEM.to_string(), b"-1".to_vec()),
            (EXTRA_ALARMS.to_string(), alarms.to_string().into_bytes()),
        ]
        .into();
        let (r, errors) = AgentReport::from_extras(&extras, b"v");
        let r = r.unwrap();
        assert_eq!(r.status, "busy");
        assert_eq!((r.cpu_cores, r.memory_bytes), (0.0, 0));
        assert_eq!(r.alarms.len(), 1);
        assert_eq!(r.alarms[0].message.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(r.alarms[0].count, 3);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 7, "{text:?}");
        assert!(text[0].contains("logtail.cpu") && text[0].contains("NaN"));
        assert!(text[1].contains("logtail.mem"));
        assert!(text[2].contains("alarm 1: alarm_type is empty"));
        assert!(text[3].contains("alarm 2: alarm_level 9"));
        assert!(text[4].contains("alarm 3: alarm_count is 0"));
        assert!(text[5].contains("alarm 4"));
        assert!(text[6].contains("alarm 5"));

        let extras: BTreeMap<String, Vec<u8>> =
            [(EXTRA_ALARMS.to_string(), vec![0xff, b'['])].into();
        let (r, errors) = AgentReport::from_extras(&extras, b"");
        assert!(r.is_some_and(|r| r.alarms.is_empty()));
        assert!(errors[0].to_string().contains("not a JSON array"));
    }

    #[test]
    fn the_self_sampled_provider_measures_this_process() {
        let p = ReportProvider::self_sampled();
        let first = p.report();
        assert_eq!(first.status, "ok");
        assert!(first.memory_bytes > 1 << 20, "{first:?}");
        // Burn some CPU: the next report sees it.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let second = p.report();
        assert!(second.cpu_cores > 0.3, "{second:?}");
        assert!(second.alarms.is_empty());
    }
}
