//! The `/status` document as tables, for people (`logtail-agent status`).

use serde_json::Value;

use crate::status::{bytes_text, duration_text};

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

/// The tables of a `/status` document (as `logtail-agent status` prints
/// them): the agent line, then pipelines, files, sinks and the 20 newest
/// alarms. Any JSON is accepted: what is missing shows as empty or 0.
pub fn render_table(addr: &str, doc: &Value) -> String {
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
            // Dropped events only: an older agent's `decode` (sequences
            // replaced, no event dropped) is left out.
            let discarded: u64 = p["discarded"].as_object().map_or(0, |m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "decode")
                    .filter_map(|(_, v)| v.as_u64())
                    .sum()
            });
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
                u(k, "send_errors").to_string(),
                u(k, "groups_retried").to_string(),
                u(k, "groups_spilled").to_string(),
                u(k, "groups_replayed").to_string(),
                u(k, "groups_rejected").to_string(),
            ]);
        }
    }
    out.push_str("\nSINKS\n");
    out.push_str(&table(
        &[
            "PIPELINE", "SINK", "EVENTS", "GROUPS", "ERRORS", "RETRIED", "SPILLED", "REPLAYED",
            "REJECTED",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_document_reads_as_tables() {
        let doc = json!({
            "agent": {"version": "0.1.0", "status": "ok", "cpu_cores": 0.25, "memory_bytes": 10485760, "open_files": 12, "uptime_secs": 75},
            "pipelines": [{
                "name": "app",
                "input": {"lines": 1000, "read_bytes": 2048, "behind_bytes": 1048576, "files_open": 1},
                "events_out": 990, "parse_failures": 3, "discarded": {"filter": 7, "decode": 5},
                "files": [{"path": "/var/log/app.log", "size": 2097152, "percent_read": 50.0, "behind_bytes": 1048576, "rate_bytes_per_sec": 524288.0, "eta_secs": 2.0}],
                "sinks": [{"name": "flusher_sls", "events": 990, "groups_sent": 4, "send_errors": 1, "groups_retried": 2}],
            }],
            "alarms": [{"alarm_type": "PARSE_LOG_FAIL_ALARM", "level": 1, "config": "app", "count": 3, "first_seen_unix": 0, "message": "not JSON"}],
        });
        let t = render_table("127.0.0.1:18689", &doc);
        assert!(t.starts_with("logtail-agent 0.1.0 at 127.0.0.1:18689: status ok, CPU 0.25 cores, memory 10.0 MiB, 12 open files, up 75 s\n"), "{t}");
        let row = |first: &str| -> Vec<String> {
            t.lines()
                .find(|l| l.starts_with(first))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            row("app  "),
            ["app", "1000", "2.0", "KiB", "990", "1.0", "MiB", "3", "7", "1"]
        );
        assert_eq!(
            row("app       /var"),
            [
                "app",
                "/var/log/app.log",
                "2.0",
                "MiB",
                "50.0%",
                "1.0",
                "MiB",
                "512.0",
                "KiB/s",
                "2",
                "s"
            ]
        );
        assert!(t.contains("app       flusher_sls  990"), "{t}");
        assert!(t.contains("PARSE_LOG_FAIL_ALARM  1      app     3"), "{t}");
        // Anything else still renders.
        let t = render_table("x", &json!([1, "two"]));
        assert!(t.contains("PIPELINES\n") && t.contains("(none)"), "{t}");
    }
}
