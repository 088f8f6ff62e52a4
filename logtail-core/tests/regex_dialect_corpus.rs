//! Issue 14: real-world patterns as LoongCollector users write them (from
//! iLogtail's published examples and docs, and the common nginx, apache,
//! java, python, syslog shapes) load in both the boost processor
//! (`processor_parse_regex_native`) and the Go one (`processor_regex`), and
//! extract what they are written for from a sample line.

use logtail_core::process::dialect::{translate, Dialect};
use logtail_core::process::regex::{RegexOptions, RegexParser};
use logtail_core::process::regex_go::{GoRegexOptions, GoRegexParser};
use logtail_core::process::Outcome;

/// (pattern, a line it matches whole, the value of its first group).
const CORPUS: &[(&str, &str, &str)] = &[
    // iLogtail example_config/data_pipelines/nginx-regex.yaml
    (
        r#"([\d\.:]+) - (\S+) \[(\S+) \S+\] \"(\S+) (\S+) ([^\\"]+)\" (\d+) (\d+) \"([^\\"]*)\" \"([^\\"]*)\" \"([^\\"]*)\""#,
        r#"::1 - - [18/Jul/2022:07:28:01 +0000] "GET /hello/ilogtail HTTP/1.1" 404 153 "-" "curl/7.74.0" "-""#,
        "::1",
    ),
    // docs processor-regex.md / regex-accelerate.md
    (
        r#"([\d\.]+) \S+ \S+ \[(\S+) \S+\] \"(\w+) ([^\\"]*)\" ([\d\.]+) (\d+) (\d+) (\d+|-) \"([^\\"]*)\" \"([^\\"]*)\""#,
        r#"127.0.0.1 - - [10/Aug/2017:14:57:51 +0800] "POST /PutData?Category=YunOsAccountOpLog" 0.024 18204 200 37 "-" "aliyun-sdk-java""#,
        "127.0.0.1",
    ),
    // user_contrib/linux-secure-log.md
    (
        r"^(\w+\s+\d+\s+\d+:\d+:\d+)\s+([\w-]+)\s+(\w+)\[(\d+)\]:\s+(.*)",
        "Jul 13 18:55:11 VM-4-4-centos sshd[17022]: pam_unix(sshd:auth): check pass; user unknown",
        "Jul 13 18:55:11",
    ),
    // user_contrib/linux-kern-log.md
    (
        r"^(\w+\s+\d+\s\d+:\d+:\d+)\sprintSomething\skernel:\s\[\s+(\d+\.\d+)\]\s(.+)",
        "Jul 16 17:24:45 printSomething kernel: [    5.638951] misc dxg: Ioctl failed: -2",
        "Jul 16 17:24:45",
    ),
    // user_contrib/c++-glog.md
    (
        r"([IWEF])(\d{8}) (\d{2}:\d{2}:\d{2}\.\d+) (\d+) (.+):(\d+)] (.+)",
        "I20220926 21:37:44.070065 3276269 main.cpp:25] print function stack:",
        "I",
    ),
    // regex-accelerate.md multi-line rules and regexes
    (
        r"(\[\d+-\d+-\w+:\d+:\d+.\d+].*Exception.*)",
        "[2022-07-07T10:43:27.360266763] [ERROR] java.lang.Exception: exception happened",
        "[2022-07-07T10:43:27.360266763] [ERROR] java.lang.Exception: exception happened",
    ),
    (r"(.*)\.\.\. \d+ more", "\t... 23 more", "\t"),
    (
        r"(\[(\S+)].*)",
        "[2022-07-07T10:43:27.360266763] Some user custom log",
        "[2022-07-07T10:43:27.360266763] Some user custom log",
    ),
    (
        r"\[(\S+)]\s\[(\S+)]\s(.*)",
        "[2022-07-07T10:43:27.360266763] [INFO] java.lang.Exception: exception happened",
        "2022-07-07T10:43:27.360266763",
    ),
    // split-log-regex examples
    (
        r"(\d+-\d+-\d+)\s\d+:\d+:\d+\s\[.*",
        "2022-08-09 14:47:17 [ main:1 ] - [ ERROR ] Param Error",
        "2022-08-09",
    ),
    (r"\[(\d+-\d+-\d+)\s\d+:\d+:\d+]\s.*", "[2022-03-03 18:00:00] xxx1", "2022-03-03"),
    // The Go/boost class forms regex-syntax reads differently.
    (r"([^[]*)\[([^]]*)\] (.*)", "host a[pid 7] started", "host a"),
    (
        r"\[([^]]+)\] \[([^:]+):([^\]]+)\] \[pid (\d+)(?::tid (\d+))?\] (?:\[client ([^\]]+)\] )?(.*)",
        "[Thu Feb 14 09:18:47.234230 2012] [core:error] [pid 2333:tid 2347952345] [client ::1:89793] Directory does not exist",
        "Thu Feb 14 09:18:47.234230 2012",
    ),
    (r"([\w.-]+@[\w.-]+) (\S+)", "ops@example.com ok", "ops@example.com"),
    (r"([+--]+)(\d+)", "+-,7", "+-,"),
    (r"([a&&b]+)(\w*)", "a&&b&x", "a&&b&"),
    // Literal braces (JSON-ish lines).
    (
        r#"{"time":"([^"]+)","level":"(\w+)"(.*)}"#,
        r#"{"time":"2024-01-01T00:00:00Z","level":"INFO","msg":"x"}"#,
        "2024-01-01T00:00:00Z",
    ),
    (r#"\{"msg":"(.*)"\}"#, r#"{"msg":"hello"}"#, "hello"),
    (r"(\S+) \{(\d+),(\d+)\}", "span {3,4}", "span"),
    (r"(a{2,3}) x{,2}", "aa x{,2}", "aa"),
    // Common application formats.
    (
        r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3})\s+(\w+)\s+\[([^\]]+)\]\s+(\S+)\s+-\s+(.*)",
        "2024-01-01 10:00:00.123  INFO [main] com.example.App - started",
        "2024-01-01 10:00:00.123",
    ),
    (
        r"^<(\d+)>(\w{3}\s+\d+\s\d+:\d+:\d+)\s(\S+)\s([^:\[]+)(?:\[(\d+)\])?:\s(.*)$",
        "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed",
        "34",
    ),
    (
        r"^<(\d+)>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*\]) ?(.*)$",
        "<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 - message",
        "165",
    ),
    (
        r#"^(\d+\.\d+\.\d+\.\d+) (\S+) (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(\w+) ([^ ]+) ([^"]+)" (\d{3}) (\d+|-)"#,
        r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
        "10.0.0.1",
    ),
    (
        r"(\d{2}-\w{3}-\d{4} \d{2}:\d{2}:\d{2}\.\d{3}) (\w+) \[([^]]+)\] (\S+) (.*)",
        "01-Jan-2024 10:00:00.000 INFO [main] org.apache.catalina.startup.Catalina.start Server startup",
        "01-Jan-2024 10:00:00.000",
    ),
    (
        r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) - (\S+) - (\w+) - (.*)",
        "2024-01-01 10:00:00,123 - app.module - WARNING - disk low",
        "2024-01-01 10:00:00,123",
    ),
    (
        r#"\[(\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2})\] "(\w+) (\S+) (\S+)" (\d+) (\d+)"#,
        r#"[01/Jan/2024 10:00:00] "GET /api/ HTTP/1.1" 200 512"#,
        "01/Jan/2024 10:00:00",
    ),
    (
        r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \| (\w+)\s+\| ([^:]+):([^:]+):(\d+) - (.*)",
        "2024-01-01 10:00:00.123 | INFO     | __main__:main:10 - hello",
        "2024-01-01 10:00:00.123",
    ),
    (
        r#"(\d+\.\d+) \[(\d+) ([\d\.:]+)\] "(\w+)"(.*)"#,
        r#"1339518083.107412 [0 127.0.0.1:60866] "keys" "*""#,
        "1339518083.107412",
    ),
    (r"#(\d+)\n(.*)", "#1690000000\nls -la", "1690000000"),
    (
        r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(\d+)\] (.*)",
        "2024/01/01 10:00:00 [1234] building file list",
        "2024/01/01 10:00:00",
    ),
    (
        r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}), (\w+)\s+(\w+)\s+(.*)",
        "2024-01-01 10:00:00, Info                  CBS    Loaded Servicing Stack",
        "2024-01-01 10:00:00",
    ),
    (r"(?i)(error|warn)\b.*", "ERROR: boom", "ERROR"),
    (r"\Q[INFO]\E (.*)", "[INFO] started", "started"),
    (r"[[:alpha:]]+ (\d+)", "abc 42", "42"),
];

/// Boost-only spellings and meanings: they load in the native processor
/// (in Go `\h` does not parse, and `$` is the end of the text only).
const BOOST_ONLY: &[(&str, &str, &str)] = &[
    // user_contrib/mysql-slow-log.md (multi-line, `$` at line ends)
    (
        "# Time: (\\S+)$\n# User@Host: [\\S ]*\\[([\\S ]+)\\] @ ([\\S]*)\\s*\\[([\\S ]+)\\] Id: (\\d+)$\n([\\S\\s]+)",
        "# Time: 2023-08-02T16:48:16.725524Z\n# User@Host: db_user[db_user] @ [10.10.10.10] Id: 58839292\nuse crm;",
        "2023-08-02T16:48:16.725524Z",
    ),
    (r"^(\S+)\h+(\S+)$", "a \t b", "a"),
    (r"(\w+)\Z", "abc\n", "abc"),
    (r"\`(\w+)\'", "abc", "abc"),
];

fn first_group_boost(pattern: &str, line: &str) -> Result<String, String> {
    let groups = groups(pattern, Dialect::Boost)?;
    let keys = (0..groups).map(|i| format!("k{i}")).collect();
    let mut p = RegexParser::new(RegexOptions::new(pattern, keys)).map_err(|e| e.to_string())?;
    match p.parse(line.as_bytes()) {
        Outcome::Parsed(f) => {
            Ok(String::from_utf8_lossy(f[0].value.resolve(line.as_bytes())).into_owned())
        }
        other => Err(format!("no whole match: {other:?}")),
    }
}

fn first_group_go(pattern: &str, line: &str) -> Result<String, String> {
    let groups = groups(pattern, Dialect::Go)?;
    let keys = (0..groups).map(|i| format!("k{i}")).collect();
    let mut o = GoRegexOptions::new(pattern, keys);
    o.full_match = true;
    let mut p = GoRegexParser::new(o).map_err(|e| e.to_string())?;
    match p.parse(line.as_bytes()) {
        Outcome::Parsed(f) => {
            Ok(String::from_utf8_lossy(f[0].value.resolve(line.as_bytes())).into_owned())
        }
        other => Err(format!("no full match: {other:?}")),
    }
}

/// Capture groups of `pattern` (counted on its translation).
fn groups(pattern: &str, d: Dialect) -> Result<usize, String> {
    let t = translate(pattern, d).map_err(|e| e.to_string())?;
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(&t)
        .map_err(|e| e.to_string())?;
    Ok(hir.properties().explicit_captures_len())
}

#[test]
fn the_corpus_loads_and_extracts_in_both_dialects() {
    assert!(CORPUS.len() >= 30, "{} patterns", CORPUS.len());
    let mut failures = Vec::new();
    for &(pattern, line, first) in CORPUS {
        for (dialect, got) in [
            ("boost", first_group_boost(pattern, line)),
            ("go", first_group_go(pattern, line)),
        ] {
            match got {
                Ok(v) if v == first => {}
                other => failures.push(format!("{dialect} {pattern:?} on {line:?}: {other:?}")),
            }
        }
    }
    for &(pattern, line, first) in BOOST_ONLY {
        match first_group_boost(pattern, line) {
            Ok(v) if v == first => {}
            other => failures.push(format!("boost {pattern:?} on {line:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_cannot_run_is_refused_with_the_construct_and_a_fix() {
    for (pattern, construct) in [
        (r"(\w+)(?=:)", "look-ahead"),
        (r"(?<!x)(\w+)", "negative look-behind"),
        (r"(\w)\1", "back-reference"),
        (r"(?>\w+)", "atomic group"),
        (r"(\w++)", "possessive"),
    ] {
        let e = RegexParser::new(RegexOptions::new(pattern, vec!["a".into()])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(construct), "{pattern}: {msg}");
        assert!(msg.contains('(') && msg.contains("not supported"), "{msg}");
    }
}
