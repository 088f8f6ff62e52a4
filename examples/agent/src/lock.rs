//! One agent per data dir: an exclusive `flock` on
//! `DATA_DIR/logtail-agent.lock`.
//!
//! Two agents on one data dir would both write its checkpoints, so lines
//! would be lost or sent twice. The first process of an agent (the
//! supervisor, or the worker under `--no-supervisor`) takes the lock; the
//! descriptor is inherited by the workers it starts and survives the
//! supervisor's re-execution at an upgrade, so the lock is held until the
//! last process of the agent has gone. A new agent waits for it (a worker
//! left by a killed supervisor still delivers and checkpoints), then gives
//! up with a message naming the holder.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that tells a worker which descriptor is the
/// lock, so that it keeps it from the programs it runs (`input_command`).
pub(crate) const FD_ENV: &str = "LOGTAIL_LOCK_FD";

/// The lock file of `data_dir`.
pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("logtail-agent.lock")
}

/// The held lock (never closed: it goes with the process).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    file: File,
}

impl DataDirLock {
    /// The descriptor, for [`FD_ENV`].
    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Keeps the lock from the programs this process runs (a worker alone
    /// under `--no-supervisor` runs `input_command` scripts).
    pub(crate) fn keep_from_children(&self) {
        set_cloexec(self.fd(), true);
    }
}

/// Takes the lock, waiting up to `wait` for another agent to let it go.
/// The descriptor is left inheritable (see the module docs).
pub(crate) fn acquire(data_dir: &Path, wait: Duration) -> Result<DataDirLock, String> {
    let path = path(data_dir);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
        let holder = holder(&mut file);
        if Instant::now() >= deadline {
            return Err(format!(
                "another logtail-agent{holder} uses the data dir {} (it holds {}); two agents on one data dir would lose or duplicate lines: stop it, or give this one another --data-dir",
                data_dir.display(),
                path.display()
            ));
        }
        if !told {
            tracing::info!(
                "waiting up to {:.0} s for the logtail-agent{holder} that uses {} to stop",
                wait.as_secs_f64(),
                data_dir.display()
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Who holds it, for the message another agent gives.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    // Inherited by the workers and kept across the re-execution.
    set_cloexec(file.as_raw_fd(), false);
    if told {
        tracing::info!("the data dir {} is free now", data_dir.display());
    }
    Ok(DataDirLock { file })
}

/// ` (pid N)` from the lock file, or nothing.
fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut s);
    match s.trim().parse::<u32>() {
        Ok(pid) => format!(" (pid {pid})"),
        Err(_) => String::new(),
    }
}

/// The lock this process inherited: a re-executed supervisor finds it
/// among its descriptors. `None` if it has none (an older supervisor
/// upgraded to this one), and then it takes it.
pub(crate) fn inherited(data_dir: &Path) -> Option<DataDirLock> {
    let want = std::fs::canonicalize(path(data_dir)).ok()?;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        if std::fs::read_link(entry.path()).ok().as_deref() == Some(want.as_path()) {
            // SAFETY: the descriptor is open (just listed) and nothing else
            // in this process owns it: it came across exec, unknown to std.
            let file = unsafe { File::from_raw_fd(fd) };
            return Some(DataDirLock { file });
        }
    }
    None
}

/// In a worker: keep the inherited lock from the programs it runs.
pub(crate) fn keep_from_children() {
    if let Some(fd) = std::env::var(FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    {
        set_cloexec(fd, true);
    }
}

fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: fcntl on a descriptor number; a closed one fails harmlessly.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            let flags = if on {
                flags | libc::FD_CLOEXEC
            } else {
                flags & !libc::FD_CLOEXEC
            };
            libc::fcntl(fd, libc::F_SETFD, flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), Duration::ZERO).unwrap();
        // flock locks belong to the open file: a second open conflicts
        // even within one process.
        let e = acquire(dir.path(), Duration::from_millis(200)).unwrap_err();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("--data-dir"),
            "{e}"
        );
        drop(first);
        acquire(dir.path(), Duration::ZERO).unwrap();
    }
}
