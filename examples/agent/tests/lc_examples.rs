//! Issue 14: published LoongCollector example pipelines (tests/lc_examples/,
//! their processors unchanged) run through the agent binary, every
//! documented field compared with the documented output.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Map, Value};

/// One published example.
struct Example {
    /// The files' stem in tests/lc_examples/.
    name: &'static str,
    /// Events the agent gives after the documented ones (the page shows a
    /// moment of the run; see the example's check).
    extra: usize,
    /// Deliberate differences applied to the documented records before the
    /// comparison (each explained where the example is listed).
    adjust: fn(&mut Vec<Map<String, Value>>),
    /// Options added to the published processors (each explained where the
    /// example is listed); the YAML file stays as published.
    tweak: fn(String) -> String,
}

fn none(_: &mut Vec<Map<String, Value>>) {}

fn as_published(config: String) -> String {
    config
}

/// The page was made when its 2023 lines were fresh; LoongCollector's
/// 12-hour window (`ilogtail_discard_interval`) would drop them today, as
/// ours does: the window is turned off (`DiscardOlderThanSecs`, ours).
fn no_time_window(config: String) -> String {
    config.replace(
        "    EnablePreciseTimestamp: true\n",
        "    EnablePreciseTimestamp: true\n    DiscardOlderThanSecs: 0\n",
    )
}

/// The page's config sets `RawLogTag` without `EnableRawLog`, which
/// LoongCollector's parser needs (`mUploadRawLog`) to add the raw record,
/// so its documented `messages` field cannot come from that config.
fn no_raw_log(records: &mut Vec<Map<String, Value>>) {
    for r in records {
        r.remove("messages");
    }
}

/// LoongCollector hands processor_split_log_regex whole read chunks, and
/// every piece but the last keeps its final `\n`; our input frames the
/// records with Multiline first, so no piece ends in `\n` (README,
/// "processor_split_log_regex").
fn no_trailing_newline(records: &mut Vec<Map<String, Value>>) {
    for r in records {
        if let Some(Value::String(s)) = r.get_mut("content") {
            if s.ends_with('\n') {
                s.pop();
            }
        }
    }
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "nginx_regex",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "processor_regex_doc",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "linux_secure_log",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "split_char_doc",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "split_log_regex_doc",
        extra: 0,
        adjust: no_trailing_newline,
        tweak: as_published,
    },
    Example {
        name: "mysql_slow_log",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "django_access",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    // The page shows the first three debug records; its input has a
    // fourth ("Ending Devzone application"), which comes out too.
    Example {
        name: "django_debug",
        extra: 1,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "hpc_thunderbird",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "python_loguru",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "redis_monitor",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    Example {
        name: "regex_accelerate_single",
        extra: 0,
        adjust: none,
        tweak: as_published,
    },
    // The last line starts a record that never gets its end line: the page
    // stops before it is flushed; here it comes out at the flush timeout
    // as an unmatched line kept whole (DiscardUnmatch: false). Checked below.
    Example {
        name: "regex_accelerate_begin_end",
        extra: 1,
        adjust: none,
        tweak: as_published,
    },
    // precise_timestamp from the fraction after `%S` (LoongCollector's
    // GetPreciseTimestamp); see no_time_window and no_raw_log.
    Example {
        name: "high_resolution_time",
        extra: 0,
        adjust: no_raw_log,
        tweak: no_time_window,
    },
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lc_examples")
}

fn read_jsonl(path: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect()
}

/// The record without the keys that are not compared (`__time__`,
/// `__tag__:…`, `__path__`: the read time and the author's path).
fn compared(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn published_examples_give_their_documented_records() {
    let env = Env::new();
    let mut configs = Vec::new();
    for ex in EXAMPLES {
        let text = std::fs::read_to_string(dir().join(format!("{}.yaml", ex.name))).unwrap();
        let log = env.logs.join(format!("{}.log", ex.name));
        let out = env.root().join(format!("{}.out.jsonl", ex.name));
        let text = (ex.tweak)(text)
            .replace("@LOG@", &log.display().to_string())
            .replace("@OUT@", &out.display().to_string());
        let config = env.root().join(format!("{}.yaml", ex.name));
        std::fs::write(&config, text).unwrap();
        configs.push(config);
    }
    let paths: Vec<&Path> = configs.iter().map(PathBuf::as_path).collect();
    let mut agent = Agent::spawn(AGENT, &paths, &env.data, &[]);
    agent.wait_started();
    for ex in EXAMPLES {
        let input = std::fs::read(dir().join(format!("{}.input", ex.name))).unwrap();
        std::fs::write(env.logs.join(format!("{}.log", ex.name)), input).unwrap();
    }
    let want: Vec<Vec<Map<String, Value>>> = EXAMPLES
        .iter()
        .map(|ex| {
            let mut w = read_jsonl(&dir().join(format!("{}.expected.jsonl", ex.name)));
            assert!(!w.is_empty(), "{}: no documented records", ex.name);
            (ex.adjust)(&mut w);
            w
        })
        .collect();
    let out = |ex: &Example| read_jsonl(&env.root().join(format!("{}.out.jsonl", ex.name)));
    // Multi-line records end at the input's flush timeout (5 s).
    let all_arrived = || {
        EXAMPLES
            .iter()
            .zip(&want)
            .all(|(ex, w)| out(ex).len() >= w.len() + ex.extra)
    };
    let arrived = wait_until(Duration::from_secs(30), all_arrived);
    std::thread::sleep(Duration::from_millis(300));
    agent.terminate();
    let stderr = agent.stderr();
    assert!(
        arrived,
        "not every example gave its records; stderr:\n{stderr}"
    );

    for (ex, want) in EXAMPLES.iter().zip(&want) {
        let got = out(ex);
        assert_eq!(
            got.len(),
            want.len() + ex.extra,
            "{}: {} records, documented {} (+{} explained); got {got:#?}",
            ex.name,
            got.len(),
            want.len(),
            ex.extra
        );
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(compared(g), compared(w), "{}: record {i}", ex.name);
        }
    }

    // django_debug: the fourth record, the one the page leaves out.
    let i = EXAMPLES
        .iter()
        .position(|e| e.name == "django_debug")
        .unwrap();
    let last = out(&EXAMPLES[i]).pop().unwrap();
    assert_eq!(last["message"], "Ending Devzone application");
    assert_eq!(last["level"], "INFO");

    // regex_accelerate_begin_end: the pending record, flushed, parsed.
    let i = EXAMPLES
        .iter()
        .position(|e| e.name == "regex_accelerate_begin_end")
        .unwrap();
    let last = out(&EXAMPLES[i]).pop().unwrap();
    assert_eq!(
        last["msg"],
        "[2022-07-07T10:43:27.360266763] [ERROR] java.lang.Exception: exception happened"
    );
    assert_eq!(last["time"], "2022-07-07T10:43:27.360266763");
}
