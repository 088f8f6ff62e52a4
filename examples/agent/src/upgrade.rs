//! `logtail-agent upgrade`: the control socket between the command and a
//! running supervisor.
//!
//! The protocol is lines of text over the unix socket
//! `DATA_DIR/logtail-agent.sock`: the client sends `upgrade PATH`; the
//! supervisor answers with progress lines and ends with one line that
//! starts with `ok ` (the new binary runs) or `error ` (refused or rolled
//! back), then closes the connection.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The control socket of the agent running on `data_dir`.
pub(crate) fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("logtail-agent.sock")
}

/// What a client asks.
#[derive(Debug)]
pub(crate) enum Request {
    /// Switch to this binary.
    Upgrade(PathBuf),
}

/// The connection a request came on: progress lines, then the outcome.
#[derive(Debug)]
pub(crate) struct Reply(Option<UnixStream>);

impl Reply {
    /// A progress line (a client that went away is ignored).
    pub(crate) fn say(&self, line: &str) {
        if let Some(mut s) = self.0.as_ref() {
            let _ = writeln!(s, "{}", line.replace('\n', " "));
        }
    }

    /// The last line: `ok …` or `error …`.
    pub(crate) fn finish(self, ok: bool, line: &str) {
        self.say(&format!("{} {line}", if ok { "ok" } else { "error" }));
    }
}

/// A request waiting on `listener`, if any (never blocks for long: the
/// request line must arrive within a second).
pub(crate) fn accept(listener: &UnixListener) -> Option<(Request, Reply)> {
    let (stream, _) = listener.accept().ok()?;
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    reader.read_line(&mut line).ok()?;
    let reply = Reply(Some(stream));
    match line.trim_end().split_once(' ') {
        Some(("upgrade", path)) if !path.is_empty() => {
            Some((Request::Upgrade(PathBuf::from(path)), reply))
        }
        _ => {
            reply.finish(
                false,
                &format!(
                    "unknown request {:?} (expected: upgrade PATH)",
                    line.trim_end()
                ),
            );
            None
        }
    }
}

/// Checks that `binary --version` runs and names a logtail-agent, within
/// 10 s; its answer on success.
pub(crate) fn check_binary(binary: &Path) -> Result<String, String> {
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {} --version: {e}", binary.display()))?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if t0.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --version did not answer within 10 s",
                    binary.display()
                ));
            }
            Err(e) => return Err(format!("{} --version: {e}", binary.display())),
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    let out = out.trim().to_string();
    if !status.success() {
        return Err(format!(
            "{} --version exited with {status}",
            binary.display()
        ));
    }
    if !out.starts_with("logtail-agent") {
        return Err(format!(
            "{} --version answered {out:?}, not a logtail-agent",
            binary.display()
        ));
    }
    Ok(out)
}

/// The `upgrade` subcommand: sends the request, prints the supervisor's
/// lines; 0 when the new binary was kept.
pub(crate) fn client(data_dir: &Path, binary: &Path) -> ExitCode {
    let binary = match std::fs::canonicalize(binary) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("logtail-agent upgrade: {}: {e}", binary.display());
            return ExitCode::from(2);
        }
    };
    let sock = socket_path(data_dir);
    let mut stream = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "logtail-agent upgrade: no supervisor answers on {} ({e}); is the agent running with --data-dir {} and without --no-supervisor?",
                sock.display(),
                data_dir.display()
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = writeln!(stream, "upgrade {}", binary.display()) {
        eprintln!("logtail-agent upgrade: {}: {e}", sock.display());
        return ExitCode::from(1);
    }
    let mut ok = false;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        println!("{line}");
        if line.starts_with("ok ") {
            ok = true;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
