//! No silent drops: nginx lines older than the timestamp processor's
//! window (`DiscardOlderThanSecs`, 300 s by default) are dropped, and the
//! agent says so at the first drop, naming the config, the processor, the
//! count and the option; at stop each processor's counters are one
//! readable line.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

#[test]
fn old_lines_dropped_by_the_time_window_are_reported_and_counted_at_stop() {
    let env = Env::new();
    let log = env.logs.join("access.log");
    // The nginx `main` format, as in the shipped sample: from 2019, so
    // every line is far older than the window.
    let n = 200;
    let mut f = std::fs::File::create(&log).unwrap();
    for i in 0..n {
        writeln!(
            f,
            r#"54.36.149.{} - - [22/Jan/2019:03:56:{:02} +0330] "GET /filter/{i} HTTP/1.1" 200 30577 "-" "Mozilla/5.0""#,
            i % 250,
            i % 60
        )
        .unwrap();
    }
    drop(f);
    std::fs::write(
        &env.config,
        format!(
            r#"inputs:
  - Type: input_file
    FilePaths: [{}]
    TailSizeKB: {TAIL_ALL_KB}
processors:
  - Type: processor_parse_regex_native
    SourceKey: content
    Regex: '(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)"'
    Keys: [remote_addr, remote_user, time_local, request, status, body_bytes_sent, http_referer, http_user_agent]
  - Type: processor_parse_timestamp_native
    SourceKey: time_local
    SourceFormat: '%d/%b/%Y:%H:%M:%S %z'
flushers:
  - Type: flusher_file
    FilePath: {}
"#,
            log.display(),
            env.out.display()
        ),
    )
    .unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let warning = "pipeline app: processors[1] processor_parse_timestamp_native dropped";
    assert!(
        wait_until(Duration::from_secs(10), || agent.stderr().contains(warning)),
        "no warning about the dropped lines:\n{}",
        agent.stderr()
    );
    let stderr = agent.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains(warning))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("is more than 300 s before the time they were read")
            && line.contains("controlled by DiscardOlderThanSecs (0 keeps them all"),
        "the warning gives neither the reason nor the option:\n{line}"
    );
    // The rest of the lines is counted at stop, not warned about again
    // within the minute.
    agent.terminate();
    let stderr = agent.stderr();
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&env.out).unwrap_or_default(),
        "",
        "every line is outside the window"
    );
    assert!(
        stderr.contains(&format!(
            "pipeline app: processors[1] processor_parse_timestamp_native: {n} events, {n} dropped: their time (from field \"time_local\") is more than 300 s before the time they were read; controlled by DiscardOlderThanSecs"
        )),
        "no readable counters of the timestamp processor at stop:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "pipeline app: processors[0] processor_parse_regex_native: {n} events\n"
        )) || stderr.contains(&format!(
            "pipeline app: processors[0] processor_parse_regex_native: {n} events\r\n"
        )),
        "no readable counters of the regex processor at stop:\n{stderr}"
    );
    assert!(!stderr.contains("ParserStats {"), "a Debug dump:\n{stderr}");
}

#[test]
fn with_the_window_off_nothing_is_dropped_or_warned_about() {
    let env = Env::new();
    let log = env.logs.join("old.log");
    std::fs::write(&log, "2019-01-22 03:56:14 old\n".repeat(20)).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "inputs:\n  - Type: input_file\n    FilePaths: [{}]\nprocessors:\n  - Type: processor_parse_timestamp_native\n    SourceFormat: '%Y-%m-%d %H:%M:%S'\n    DiscardOlderThanSecs: 0\nflushers:\n  - Type: flusher_file\n    FilePath: {}\n",
            log.display(),
            env.out.display()
        ),
    )
    .unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&env.out)
            .unwrap_or_default()
            .matches('\n')
            .count()
            == 20
    }));
    agent.terminate();
    let stderr = agent.stderr();
    assert!(!stderr.contains("dropped"), "{stderr}");
    assert!(
        stderr.contains("pipeline app: processors[0] processor_parse_timestamp_native: 20 events"),
        "{stderr}"
    );
}
