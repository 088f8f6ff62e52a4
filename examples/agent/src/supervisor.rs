//! The supervisor: a small process that runs the worker (this same
//! binary with `--worker`) and keeps it running, as Logtail's daemon
//! process does.
//!
//! - A worker that crashes, is killed by a signal, or stops for a restart
//!   (over a resource limit, exit code 3) is started again after a
//!   backoff: 1 s, doubling up to 60 s, back to 1 s once a worker has run
//!   for 10 minutes. Each restart is logged with its cause, and the cause
//!   is handed to the new worker (`LOGTAIL_RESTART_CAUSE`) so that it
//!   raises the `LOGTAIL_CRASH_ALARM`.
//! - SIGTERM, SIGINT and SIGHUP are passed on to the worker. After a stop
//!   on request the supervisor exits 0; a worker that refuses its config
//!   at start (exit code 2) stops the supervisor with code 2, since
//!   restarting would not help.
//! - `logtail-agent upgrade` talks to it over the unix socket
//!   `DATA_DIR/logtail-agent.sock` ([`crate::upgrade`]): the worker is
//!   stopped gracefully and the new binary started on the same data dir;
//!   if it exits within the probation time the old one is started again.
//!   A kept upgrade re-executes the supervisor itself as the new binary,
//!   which adopts the running worker (the same pid keeps its child).
//!
//! Everything here runs on the main thread: the worker's parent-death
//! signal is tied to the thread that started it, and `execv` must come
//! from that same thread for the worker to survive the supervisor's own
//! upgrade.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::RunArgs;
use crate::upgrade::{self, Request};
use crate::worker::RESTART_EXIT;

/// First wait before a restart.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait before a restart.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A worker that ran this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(600);
/// How often the loop looks at the worker, the signals and the socket.
const TICK: Duration = Duration::from_millis(20);

/// Why a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Exit code 0: it stopped on request.
    Stopped,
    /// Exit code 2: its config or command line is unusable.
    Refused,
    /// Exit code 3: it stopped itself over a resource limit.
    OverLimit,
    /// Another exit code.
    Failed(i32),
    /// Killed by a signal.
    Signaled(i32),
}

impl Ended {
    fn from_wait_status(status: i32) -> Ended {
        if libc::WIFSIGNALED(status) {
            Ended::Signaled(libc::WTERMSIG(status))
        } else {
            match libc::WEXITSTATUS(status) {
                0 => Ended::Stopped,
                2 => Ended::Refused,
                c if c == i32::from(RESTART_EXIT) => Ended::OverLimit,
                c => Ended::Failed(c),
            }
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Stopped => write!(f, "stopped (exit code 0)"),
            Ended::Refused => write!(f, "refused its config or command line (exit code 2)"),
            Ended::OverLimit => write!(f, "stopped over a resource limit (exit code 3)"),
            Ended::Failed(c) => write!(f, "crashed (exit code {c})"),
            Ended::Signaled(s) => write!(f, "was killed by signal {s}"),
        }
    }
}

/// The restart backoff: 1 s doubling to 60 s; reset after a healthy run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The wait before restarting a worker that ran for `ran`.
    pub(crate) fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= HEALTHY_AFTER {
            self.next = BACKOFF_MIN;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }
}

/// An upgrade in progress.
#[derive(Debug)]
enum Upgrade {
    /// `NEW --version` runs on a thread of its own (up to 10 s), so that
    /// supervision goes on meanwhile.
    Checking {
        new: PathBuf,
        reply: upgrade::Reply,
        result: crossbeam_channel::Receiver<Result<String, String>>,
    },
    /// The old worker was asked to stop; the new one starts when it has.
    Stopping {
        new: PathBuf,
        old: PathBuf,
        reply: upgrade::Reply,
    },
    /// The new worker runs; kept once the probation ends.
    Probation {
        old: PathBuf,
        until: Instant,
        reply: upgrade::Reply,
    },
}

/// What a re-executed supervisor takes over: `PID:BACKOFF_MS:RAN_MS`.
fn adopt_state(pid: i32, backoff: Backoff, ran: Duration) -> String {
    format!("{pid}:{}:{}", backoff.next.as_millis(), ran.as_millis())
}

fn parse_adopt(s: &str) -> Option<(i32, Backoff, Duration)> {
    let mut it = s.split(':');
    let pid = it.next()?.parse().ok()?;
    let next = Duration::from_millis(it.next()?.parse().ok()?);
    let ran = Duration::from_millis(it.next()?.parse().ok()?);
    Some((pid, Backoff { next }, ran))
}

/// This process's arguments without the internal ones (`--adopt …`,
/// `--worker`), to start workers and re-execute with.
fn user_args() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        if a == "--adopt" {
            it.next();
        } else if a.as_bytes().starts_with(b"--adopt=") || a == "--worker" {
        } else {
            out.push(a);
        }
    }
    out
}

struct Worker {
    pid: i32,
    started: Instant,
}

/// Runs the supervisor until the worker stopped on request.
pub(crate) fn run(args: &RunArgs, lock_fd: std::os::fd::RawFd) -> ExitCode {
    let signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("supervisor: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut signals = signals;
    let data_dir = args.data_dir.clone();
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        tracing::error!(
            "supervisor: cannot create the data dir {}: {e}",
            data_dir.display()
        );
        return ExitCode::from(2);
    }
    let socket_path = upgrade::socket_path(&data_dir);
    let mut listener = bind_or_warn(&socket_path);
    let probation = Duration::from_secs_f64(args.upgrade_probation_secs);
    let mut binary = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("supervisor: cannot find its own binary: {e}");
            return ExitCode::from(1);
        }
    };
    let user_args = user_args();
    let mut backoff = Backoff::default();
    let mut worker: Option<Worker> = None;
    let mut start_at = Some(Instant::now());
    let mut cause: Option<String> = None;
    if let Some((pid, b, ran)) = args.adopt.as_deref().and_then(parse_adopt) {
        tracing::info!(
            pid,
            "supervisor upgraded to {}; watching the running worker",
            binary.display()
        );
        backoff = b;
        worker = Some(Worker {
            pid,
            started: Instant::now().checked_sub(ran).unwrap_or_else(Instant::now),
        });
        start_at = None;
    }
    tracing::info!(pid = std::process::id(), "logtail-agent supervisor started");
    let mut stopping = false;
    let mut upgrading: Option<Upgrade> = None;

    loop {
        for sig in signals.pending() {
            if sig == SIGHUP {
                tracing::info!("supervisor: SIGHUP passed on to the worker");
            } else {
                tracing::info!(signal = sig, "supervisor: stopping the worker");
                stopping = true;
            }
            if let Some(w) = &worker {
                // SAFETY: kill(2) on our own child.
                unsafe { libc::kill(w.pid, sig) };
            }
        }

        if let Some(w) = &worker {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(w.pid, &mut status, libc::WNOHANG) };
            if r == w.pid
                || (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
            {
                let ended = if r == w.pid {
                    Ended::from_wait_status(status)
                } else {
                    Ended::Failed(-1)
                };
                let ran = w.started.elapsed();
                worker = None;
                match upgrading.take() {
                    Some(Upgrade::Stopping { new, old, reply }) if !stopping => {
                        tracing::info!(
                            "upgrade: the old worker {ended}; starting {}",
                            new.display()
                        );
                        reply.say(&format!("old worker {ended}; starting {}", new.display()));
                        binary = new;
                        upgrading = Some(Upgrade::Probation {
                            old,
                            until: Instant::now() + probation,
                            reply,
                        });
                        start_at = Some(Instant::now());
                        continue;
                    }
                    Some(Upgrade::Probation { old, reply, .. }) if !stopping => {
                        let msg = format!(
                            "rolled back: the new worker {} {ended} after {:.1} s; starting {} again",
                            binary.display(),
                            ran.as_secs_f64(),
                            old.display()
                        );
                        tracing::error!("upgrade {msg}");
                        reply.finish(false, &msg);
                        binary = old;
                        cause = Some(format!("upgrade rolled back: the new worker {ended}"));
                        start_at = Some(Instant::now());
                        continue;
                    }
                    // A worker ending while NEW is checked: restarted as
                    // usual; the check goes on.
                    Some(c @ Upgrade::Checking { .. }) if !stopping => upgrading = Some(c),
                    Some(u) => u.abandon("the agent is stopping"),
                    None => {}
                }
                if stopping || ended == Ended::Stopped {
                    tracing::info!("supervisor: the worker {ended}; supervisor exits");
                    return if matches!(ended, Ended::Stopped | Ended::Signaled(_)) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    };
                }
                if ended == Ended::Refused {
                    tracing::error!("supervisor: the worker {ended}; not restarting it");
                    return ExitCode::from(2);
                }
                let wait = backoff.after_run(ran);
                // Over a limit: which one, as the worker wrote it.
                let why = match (&ended, take_exit_cause(&data_dir)) {
                    (Ended::OverLimit, Some(detail)) => format!("{ended}: {detail}"),
                    _ => ended.to_string(),
                };
                tracing::warn!(
                    "supervisor: the worker {why} after {:.1} s; restarting it in {:.0} s",
                    ran.as_secs_f64(),
                    wait.as_secs_f64()
                );
                cause = Some(format!("the worker {why}"));
                start_at = Some(Instant::now() + wait);
            }
        }

        if worker.is_none() && stopping {
            tracing::info!("supervisor: stopped");
            return ExitCode::SUCCESS;
        }

        if worker.is_none() && start_at.is_some_and(|t| Instant::now() >= t) {
            start_at = None;
            match spawn_worker(&binary, &user_args, cause.take(), lock_fd) {
                Ok(pid) => {
                    tracing::info!(pid, binary = %binary.display(), "supervisor: worker started");
                    worker = Some(Worker {
                        pid,
                        started: Instant::now(),
                    });
                }
                Err(e) => {
                    let wait = backoff.after_run(Duration::ZERO);
                    tracing::error!(
                        "supervisor: cannot start the worker {}: {e}; trying again in {:.0} s",
                        binary.display(),
                        wait.as_secs_f64()
                    );
                    if let Some(Upgrade::Probation { old, reply, .. }) = upgrading.take() {
                        reply.finish(
                            false,
                            &format!("rolled back: cannot start {}: {e}", binary.display()),
                        );
                        binary = old;
                        start_at = Some(Instant::now());
                    } else {
                        start_at = Some(Instant::now() + wait);
                    }
                }
            }
        }

        if let Some(Upgrade::Probation { until, .. }) = &upgrading {
            if Instant::now() >= *until && worker.is_some() {
                let Some(Upgrade::Probation { reply, .. }) = upgrading.take() else {
                    continue;
                };
                reply.finish(
                    true,
                    &format!(
                        "upgraded: {} has run for {:.0} s; the supervisor re-executes it too",
                        binary.display(),
                        probation.as_secs_f64()
                    ),
                );
                if let Some(w) = &worker {
                    let state = adopt_state(w.pid, backoff, w.started.elapsed());
                    drop(listener);
                    let _ = std::fs::remove_file(&socket_path);
                    let e = reexec(&binary, &user_args, &state);
                    // Still here: the exec failed; this supervisor goes on
                    // (its workers are the new binary's).
                    tracing::error!(
                        "supervisor: cannot re-execute as {}: {e}; the old supervisor goes on",
                        binary.display()
                    );
                    listener = bind_or_warn(&socket_path);
                }
            }
        }

        if upgrading.is_none() && !stopping {
            if let Some(l) = &listener {
                if let Some((Request::Upgrade(new), reply)) = upgrade::accept(l) {
                    let (tx, result) = crossbeam_channel::bounded(1);
                    let check = new.clone();
                    let spawned = std::thread::Builder::new()
                        .name("upgrade-check".into())
                        .spawn(move || {
                            let _ = tx.send(upgrade::check_binary(&check));
                        });
                    match spawned {
                        Ok(_) => upgrading = Some(Upgrade::Checking { new, reply, result }),
                        Err(e) => reply.finish(false, &format!("refused: cannot check it: {e}")),
                    }
                }
            }
        }

        if let Some(Upgrade::Checking { result, .. }) = &upgrading {
            let checked = match result.try_recv() {
                Ok(r) => Some(r),
                Err(crossbeam_channel::TryRecvError::Empty) => None,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    Some(Err("the check ended without an answer".to_string()))
                }
            };
            // Taken only once answered: until then the state stays.
            if let Some((checked, Some(Upgrade::Checking { new, reply, .. }))) =
                checked.map(|c| (c, upgrading.take()))
            {
                match checked {
                    Err(e) => reply.finish(false, &format!("refused: {e}")),
                    Ok(version) => {
                        reply.say(&format!(
                            "{} answers {version:?}; stopping the worker",
                            new.display()
                        ));
                        tracing::info!("upgrade to {} ({version}) requested", new.display());
                        let old = binary.clone();
                        match &worker {
                            Some(w) => {
                                // SAFETY: kill(2) on our own child.
                                unsafe { libc::kill(w.pid, libc::SIGTERM) };
                                upgrading = Some(Upgrade::Stopping { new, old, reply });
                            }
                            None => {
                                binary = new;
                                upgrading = Some(Upgrade::Probation {
                                    old,
                                    until: Instant::now() + probation,
                                    reply,
                                });
                                start_at = Some(Instant::now());
                            }
                        }
                    }
                }
            }
        }

        std::thread::sleep(TICK);
    }
}

impl Upgrade {
    fn abandon(self, why: &str) {
        let reply = match self {
            Upgrade::Checking { reply, .. }
            | Upgrade::Stopping { reply, .. }
            | Upgrade::Probation { reply, .. } => reply,
        };
        reply.finish(false, &format!("abandoned: {why}"));
    }
}

/// Where a worker stopping over a limit says which limit, for the
/// supervisor's log line and the crash alarm of the next worker.
fn exit_cause_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("logtail-agent.exit-cause")
}

/// Called by the worker before it exits with [`RESTART_EXIT`].
pub(crate) fn write_exit_cause(data_dir: &Path, cause: &str) {
    let _ = std::fs::write(exit_cause_path(data_dir), cause);
}

/// The cause the worker wrote (removed once read).
fn take_exit_cause(data_dir: &Path) -> Option<String> {
    let path = exit_cause_path(data_dir);
    let s = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(300).collect())
}

/// The control socket, or none (said in the log: the agent runs on,
/// only `logtail-agent upgrade` cannot reach it).
fn bind_or_warn(path: &Path) -> Option<UnixListener> {
    match bind(path) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(
                "supervisor: no control socket at {} ({e}); `logtail-agent upgrade` will not reach this agent",
                path.display()
            );
            None
        }
    }
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // A socket left by a supervisor that was killed: nobody answers on it.
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path)?;
    // Whoever can connect can make the supervisor run a binary: only our
    // user (and root).
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn spawn_worker(
    binary: &Path,
    args: &[OsString],
    cause: Option<String>,
    lock_fd: std::os::fd::RawFd,
) -> std::io::Result<i32> {
    let mut cmd = Command::new(binary);
    cmd.args(args).arg("--worker");
    // The worker inherits the data dir's lock (not close-on-exec) and
    // keeps it from its own children.
    cmd.env(crate::lock::FD_ENV, lock_fd.to_string());
    cmd.env("LOGTAIL_SUPERVISOR_PID", std::process::id().to_string());
    match cause {
        Some(c) => cmd.env("LOGTAIL_RESTART_CAUSE", c),
        None => cmd.env_remove("LOGTAIL_RESTART_CAUSE"),
    };
    let child = cmd.spawn()?;
    // The pid is waited for with waitpid (an adopted worker has no Child).
    Ok(child.id() as i32)
}

/// Replaces this process with `binary` as the supervisor adopting `state`;
/// returns only on failure.
fn reexec(binary: &Path, args: &[OsString], state: &str) -> std::io::Error {
    let mut argv: Vec<CString> = Vec::with_capacity(args.len() + 3);
    let to_c = |b: &[u8]| CString::new(b.to_vec());
    let Ok(prog) = to_c(binary.as_os_str().as_bytes()) else {
        return std::io::Error::new(std::io::ErrorKind::InvalidInput, "binary path has a NUL");
    };
    argv.push(prog.clone());
    for a in args {
        match to_c(a.as_bytes()) {
            Ok(c) => argv.push(c),
            Err(_) => {
                return std::io::Error::new(std::io::ErrorKind::InvalidInput, "argument has a NUL")
            }
        }
    }
    argv.push(c"--adopt".to_owned());
    match to_c(state.as_bytes()) {
        Ok(c) => argv.push(c),
        Err(_) => return std::io::Error::new(std::io::ErrorKind::InvalidInput, "state has a NUL"),
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: prog and every argv entry are NUL-terminated strings that
    // outlive the call; the array ends with a null pointer.
    unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_ten_healthy_minutes() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| b.after_run(Duration::from_secs(1)).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.after_run(Duration::from_secs(599)).as_secs(), 60);
        assert_eq!(b.after_run(Duration::from_secs(600)).as_secs(), 1);
        assert_eq!(b.after_run(Duration::from_secs(3)).as_secs(), 2);
    }

    #[test]
    fn adopt_state_round_trips() {
        let mut b = Backoff::default();
        b.after_run(Duration::ZERO);
        let s = adopt_state(4242, b, Duration::from_millis(1500));
        assert_eq!(
            parse_adopt(&s),
            Some((4242, b, Duration::from_millis(1500)))
        );
        assert_eq!(parse_adopt("x:1:2"), None);
        assert_eq!(parse_adopt("1:2"), None);
    }
}
