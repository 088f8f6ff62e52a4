//! `logtail-agent status`: fetches `/status` from a running agent's
//! `--status-listen` address and prints it as tables.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use logtail_sdk::status_table::render_table;
use serde_json::Value;

/// Prints the status of the agent at `addr`; exit code 1 when it cannot
/// be reached or answers something else than a status.
pub(crate) fn run(addr: &str) -> ExitCode {
    match fetch(addr, "/status").and_then(|body| {
        serde_json::from_str::<Value>(&body)
            .map_err(|e| format!("the answer is not a status document: {e}"))
    }) {
        Ok(doc) => {
            print!("{}", render_table(addr, &doc));
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
