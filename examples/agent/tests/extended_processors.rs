//! Issue 14: LoongCollector's published example pipelines with the Go
//! "extended" processors (processor_grok, processor_json +
//! processor_strptime) run through the agent unchanged (only the input path
//! and the flusher are this test's), compared field by field with the
//! output they document.

mod common;

use std::time::Duration;

use common::*;

/// Runs `processors` (YAML, as published) over `lines` and returns the
/// records the agent wrote.
fn run(processors: &str, lines: &[&str], want: usize) -> Vec<serde_json::Value> {
    let env = Env::new();
    let log = env.logs.join("app.log");
    let config = format!(
        "enable: true\ninputs:\n  - Type: input_file\n    FilePaths: [{}]\n    FlushTimeoutSecs: 1\n{processors}flushers:\n  - Type: flusher_file\n    FilePath: {}\n",
        log.display(),
        env.out.display()
    );
    std::fs::write(&env.config, config).unwrap();
    let mut agent = env.spawn(AGENT);
    agent.wait_started();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&log, text).unwrap();
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&env.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(20), || read().len() >= want),
        "got {} of {want} records; stderr:\n{}",
        read().len(),
        agent.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    agent.terminate();
    read()
}

/// The record's fields other than the agent's own (`__time__`, tags).
fn fields(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = v
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn published_file_grok_pipeline_gives_the_documented_record() {
    // example_config/data_pipelines/file-grok.yaml, processors unchanged.
    let processors = r#"processors:
  - Type: processor_grok
    SourceKey: content
    KeepSource: false
    CustomPatterns:
      HTTP: '%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes} %{NUMBER:duration}'
    Match: 
      - '%{HTTP}'
    IgnoreParseFailure: false
"#;
    // Its documented sample, a line that does not match (IgnoreParseFailure
    // false: its content goes, nothing is left, so it is not shipped), and
    // the sample again.
    let got = run(
        processors,
        &[
            "10.0.0.0 GET /index.html 15824 0.043",
            "WRONG LOG",
            "192.168.1.20 POST /api/v1/items?id=7 512 1.5",
        ],
        2,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    let mut f = fields(&got[0]);
    f.sort();
    assert_eq!(
        f,
        owned(&[
            ("client", "10.0.0.0"),
            ("method", "GET"),
            ("request", "/index.html"),
            ("bytes", "15824"),
            ("duration", "0.043"),
        ])
    );
    let mut f = fields(&got[1]);
    f.sort();
    assert_eq!(
        f,
        owned(&[
            ("client", "192.168.1.20"),
            ("method", "POST"),
            ("request", "/api/v1/items?id=7"),
            ("bytes", "512"),
            ("duration", "1.5"),
        ])
    );
}

#[test]
fn published_nginx_json_access_log_pipeline_gives_the_documented_record() {
    // example_config/user_contrib/nginx-json-access-log.md, processors
    // unchanged. Its documented time assumes a UTC+8 machine (the format
    // has no %z, so the local offset applies): the agent gets that zone.
    std::env::set_var("TZ", "CST-8");
    let processors = r#"processors:
  - Type: processor_json
    SourceKey: content
    KeepSource: false
    ExpandDepth: 1
    ExpandConnector: ""
  - Type: processor_json
    SourceKey: data
    KeepSource: false
    UseSourceKeyAsPrefix: true
    ExpandDepth: 1
    ExpandConnector: "."
  - Type: processor_strptime
    SourceKey: "@timestamp"
    Format: "%Y-%m-%dT%H:%M:%S+08:00"
"#;
    let line = r#"{"@timestamp":"2023-08-24T21:31:52+08:00","server_addr":"172.0.0.10","remote_addr":"111.111.111.111","scheme":"https","request_method":"POST","request_uri": "/x.gif","request_length": "1024","uri": "/x.gif", "request_time":0.003,"body_bytes_sent":11,"bytes_sent":443,"status":"200","upstream_time":"","upstream_host":"","upstream_status":"","host":"api.lemonttt.com","http_referer":"https://xxx.com/","http_user_agent":"Mozilla/5.0 (Linux; U; Android 12; zh-cn) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58","data": "{\"url\":\"https://xxx.com/\",\"token\":\"xxx\",\"font_list\":[\"Calibri\",\"Century\",\"Century Gothic\"],\"contrast_preference\":\"no-preference\",\"colors_inverted\":null}"}"#;
    let got = run(processors, &[line], 1);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    // The documented output (compared as a set: the JSON reader sorts keys).
    let want = [
        ("@timestamp", "2023-08-24T21:31:52+08:00"),
        ("server_addr", "172.0.0.10"),
        ("remote_addr", "111.111.111.111"),
        ("scheme", "https"),
        ("request_method", "POST"),
        ("request_uri", "/x.gif"),
        ("request_length", "1024"),
        ("uri", "/x.gif"),
        ("request_time", "0.003"),
        ("body_bytes_sent", "11"),
        ("bytes_sent", "443"),
        ("status", "200"),
        ("upstream_time", ""),
        ("upstream_host", ""),
        ("upstream_status", ""),
        ("host", "api.lemonttt.com"),
        ("http_referer", "https://xxx.com/"),
        (
            "http_user_agent",
            "Mozilla/5.0 (Linux; U; Android 12; zh-cn) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58",
        ),
        ("data.url", "https://xxx.com/"),
        ("data.token", "xxx"),
        ("data.font_list", r#"["Calibri","Century","Century Gothic"]"#),
        ("data.contrast_preference", "no-preference"),
        ("data.colors_inverted", "null"),
    ];
    let mut got_fields = fields(r);
    got_fields.sort();
    assert_eq!(got_fields, owned(&want), "{r}");
    assert_eq!(r["__time__"], "1692883912", "{r}");
}
