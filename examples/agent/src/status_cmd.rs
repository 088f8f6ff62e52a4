//! `logtail-agent status`: fetches `/status` from a running agent's
//! `--status-listen` address and prints it as tables.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use logtail_sdk::status::{bytes_text, duration_text};
use serde_json::Value;

/// Prints the status of the agent at `addr`; exit code 1 when it cannot
/// be reached or answers something else than a status.
pub(crate) fn run(addr: &str) -> ExitCode {
    match fetch(addr, "/status").and_then(|body| {
        serde_json::from_str::<Value>(&body)
            .map_err(|e| format!("the answer is not a status document: {e}"))
    }) {
        Ok(doc) => {
            print!("{}", render(addr, &doc));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("logtail-agent status: {addr}: {e} (is the agent running with --status-listen {addr}?)");
            ExitCode::from(1)
        }
    }
}

/// `GET path` over HTTP/1.0; the body of a 200 answer.
fn fetch(addr: &str, path: &str) -> Result<String, String> {
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("bad address: {e}"))?
        .next()
        .ok_or_else(|| "the address resolves to nothing".to_string())?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "not an HTTP answer".to_string())?;
    let status_line = head.lines().next().unwrap_or("");
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status_line:?}"));
    }
    Ok(body.to_string())
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Rows padded to their columns' widths, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// The tables of a `/status` document.
pub(crate) fn render(addr: &str, doc: &Value) -> String {
    let agent = &doc["agent"];
    let mut out = format!(
        "logtail-agent {} at {addr}: status {}, CPU {:.2} cores, memory {}, {} open files, up {}\n",
        s(agent, "version"),
        s(agent, "status"),
        agent["cpu_cores"].as_f64().unwrap_or(0.0),
        bytes_text(u(agent, "memory_bytes")),
        u(agent, "open_files"),
        duration_text(u(agent, "uptime_secs") as f64),
    );
    let pipelines = list(doc, "pipelines");
    let rows: Vec<Vec<String>> = pipelines
        .iter()
        .map(|p| {
            let input = &p["input"];
            let discarded: u64 = p["discarded"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
            vec![
                s(p, "name").to_string(),
                u(input, "lines").to_string(),
                bytes_text(u(input, "read_bytes")),
                u(p, "events_out").to_string(),
                bytes_text(u(input, "behind_bytes")),
                u(p, "parse_failures").to_string(),
                discarded.to_string(),
                u(input, "files_open").to_string(),
            ]
        })
        .collect();
    out.push_str("\nPIPELINES\n");
    out.push_str(&table(
        &[
            "PIPELINE",
            "LINES",
            "READ",
            "OUT",
            "BEHIND",
            "PARSE-FAIL",
            "DISCARDED",
            "FILES",
        ],
        &rows,
    ));
    let mut rows = Vec::new();
    for p in pipelines {
        for f in list(p, "files") {
            let rate = f["rate_bytes_per_sec"].as_f64().unwrap_or(0.0);
            let eta = match f["eta_secs"].as_f64() {
                Some(e) => duration_text(e),
                None => "-".into(),
            };
            rows.push(vec![
                s(p, "name").to_string(),
                s(f, "path").to_string(),
                bytes_text(u(f, "size")),
                format!("{:.1}%", f["percent_read"].as_f64().unwrap_or(0.0)),
                bytes_text(u(f, "behind_bytes")),
                format!("{}/s", bytes_text(rate as u64)),
                eta,
            ]);
        }
    }
    out.push_str("\nFILES\n");
    out.push_str(&table(
        &["PIPELINE", "PATH", "SIZE", "READ", "BEHIND", "RATE", "ETA"],
        &rows,
    ));
    let mut rows = Vec::new();
    for p in pipelines {
        for k in list(p, "sinks") {
            rows.push(vec![
                s(p, "name").to_string(),
                s(k, "name").to_string(),
                u(k, "events").to_string(),
                u(k, "groups_sent").to_string(),
                (u(k, "send_errors") + u(k, "groups_retried")).to_string(),
                u(k, "groups_spilled").to_string(),
                u(k, "groups_replayed").to_string(),
                u(k, "groups_rejected").to_string(),
            ]);
        }
    }
    out.push_str("\nSINKS\n");
    out.push_str(&table(
        &[
            "PIPELINE", "SINK", "EVENTS", "GROUPS", "ERRORS", "SPILLED", "REPLAYED", "REJECTED",
        ],
        &rows,
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows: Vec<Vec<String>> = list(doc, "alarms")
        .iter()
        .rev()
        .take(20)
        .map(|a| {
            vec![
                s(a, "alarm_type").to_string(),
                u(a, "level").to_string(),
                s(a, "config").to_string(),
                u(a, "count").to_string(),
                format!(
                    "{} ago",
                    duration_text(now.saturating_sub(u(a, "first_seen_unix")) as f64)
                ),
                s(a, "message").to_string(),
            ]
        })
        .collect();
    out.push_str("\nALARMS (newest first)\n");
    out.push_str(&table(
        &["TYPE", "LEVEL", "CONFIG", "COUNT", "FIRST-SEEN", "MESSAGE"],
        &rows,
    ));
    out
}
