//! The example program over a real socket on 127.0.0.1: lines sent on two
//! connections come out once each, split by the SDK's processor, and the
//! program stops by itself after the expected count.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn lines_from_two_connections_arrive_once_each_and_parsed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcp-lines"))
        .args(["--listen", "127.0.0.1:0", "--exit-after", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcp-lines");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    let mut a = TcpStream::connect(&addr).unwrap();
    let mut b = TcpStream::connect(&addr).unwrap();
    for i in 0..100 {
        writeln!(a, "INFO,a{i}").unwrap();
        // A line split across two writes is one event.
        write!(b, "WARN,b").unwrap();
        b.flush().unwrap();
        writeln!(b, "{i}").unwrap();
    }
    drop((a, b));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    for line in out.lines() {
        lines.push(line.unwrap());
        if lines.len() == 200 || Instant::now() > deadline {
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut a_seen = vec![0; 100];
    let mut b_seen = vec![0; 100];
    for l in &lines {
        let (_, fields) = l.split_once("] ").unwrap_or_else(|| panic!("{l:?}"));
        match fields.split_once(" message=") {
            Some(("level=INFO", m)) => a_seen[m[1..].parse::<usize>().unwrap()] += 1,
            Some(("level=WARN", m)) => b_seen[m[1..].parse::<usize>().unwrap()] += 1,
            _ => panic!("unexpected event {l:?}"),
        }
    }
    assert!(a_seen.iter().all(|&n| n == 1), "{a_seen:?}");
    assert!(b_seen.iter().all(|&n| n == 1), "{b_seen:?}");
}
