//! Issue 3 end to end: multiline + regex + timestamp over a generated
//! Java-style log with stack traces gives exactly the expected events.

mod common;

use std::time::Duration;

use common::*;

/// Midnight UTC of the day the generated log is dated.
const DAY: u64 = 1_795_392_000; // 2026-11-23T00:00:00Z

struct Expected {
    secs: u64,
    level: &'static str,
    thread: String,
    message: String,
}

/// The log text and the events it must give.
fn generate(n: u64) -> (String, Vec<Expected>) {
    let mut text = String::from("garbage before the first event\n");
    let mut want = Vec::new();
    for i in 0..n {
        let secs_of_day = 36_000 + i * 7;
        let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
        let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
        let thread = format!("worker-{}", i % 4);
        let mut message = format!("request {i} handled");
        text.push_str(&format!(
            "2026-11-23 {h:02}:{m:02}:{s:02}.{:03} {level} [{thread}] com.example.Service - {message}\r\n",
            i % 1000
        ));
        // The \r of CRLF stays in the content (StripCarriageReturn is off).
        message.push('\r');
        if i % 3 == 0 {
            let trace = [
                format!("java.lang.IllegalStateException: boom {i}"),
                format!("\tat com.example.Service.handle(Service.java:{i})"),
                "\tat com.example.Main.main(Main.java:10)".to_string(),
                format!("Caused by: java.io.IOException: disk {i}"),
                "\t... 2 more".to_string(),
            ];
            for l in &trace {
                text.push_str(l);
                text.push_str("\r\n");
                message.push('\n');
                message.push_str(l);
                message.push('\r');
            }
        }
        want.push(Expected {
            secs: DAY + secs_of_day,
            level,
            thread,
            message,
        });
    }
    (text, want)
}

#[test]
fn multiline_regex_timestamp_pipeline_gives_the_exact_events() {
    let env = Env::new();
    let log = env.logs.join("app.log");
    let config = format!(
        r#"inputs:
  - Type: input_file
    FilePaths: [{log}]
    FlushTimeoutSecs: 1
    Multiline:
      Mode: custom
      StartPattern: '\d{{4}}-\d{{2}}-\d{{2}} .*'
processors:
  - Type: processor_parse_regex_native
    SourceKey: content
    Regex: '(\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}\.\d{{3}}) (\w+) \[([^\]]+)\] (\S+) - ([\s\S]*)'
    Keys: [time, level, thread, class, message]
  - Type: processor_parse_timestamp_native
    SourceKey: time
    SourceFormat: '%Y-%m-%d %H:%M:%S.%f'
    SourceTimezone: 'GMT+00:00'
    DiscardOlderThanSecs: 0
flushers:
  - Type: flusher_file
    FilePath: {out}
"#,
        log = log.display(),
        out = env.out.display()
    );
    std::fs::write(&env.config, config).unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let (text, want) = generate(300);
    // Written in two halves, the cut inside a stack trace: the event being
    // assembled must wait for its continuation, not be split.
    let cut = text.find("\tat com.example.Main.main").unwrap() + 3;
    std::fs::write(&log, &text[..cut]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, &text.as_bytes()[cut..]).unwrap();
    drop(f);

    let expected_events = want.len() + 1; // + the garbage line
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&env.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // The last event is complete only when the flush timeout passes.
    assert!(
        wait_until(Duration::from_secs(20), || read().len() >= expected_events),
        "got {} of {expected_events} events; stderr:\n{}",
        read().len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    agent.terminate();
    let got = read();
    assert_eq!(got.len(), expected_events, "no extra events");

    // Unmatched line before the first start: its own event, kept raw
    // (it does not parse: the default keeps the source).
    assert_eq!(got[0]["content"], "garbage before the first event");
    assert!(got[0].get("level").is_none());

    for (i, (g, w)) in got[1..].iter().zip(&want).enumerate() {
        assert_eq!(g["level"], w.level, "event {i}: {g}");
        assert_eq!(g["thread"], w.thread.as_str(), "event {i}");
        assert_eq!(g["class"], "com.example.Service", "event {i}");
        assert_eq!(g["message"], w.message.as_str(), "event {i}");
        assert_eq!(
            g["__time__"],
            w.secs.to_string().as_str(),
            "event {i}: time from the log, not read time"
        );
        assert!(
            g.get("content").is_none(),
            "event {i}: source removed after a successful parse"
        );
    }
}
