//! The agent's own log: `DATA_DIR/logtail-agent.LOG` (or `--log-file`),
//! rotated by size to `.1` … `.N`, and stderr when asked (by default when
//! it is a terminal).
//!
//! The supervisor and its worker append to the same file. Each write
//! appends whole lines (`O_APPEND`); rotation takes an `flock` on a
//! `.lock` file beside the log and renames only if the file is still the
//! one that grew too big, so two processes never rotate twice, and a
//! process whose file was rotated by the other reopens the new one.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::cli::{LogStderr, RunArgs};

/// A log file rotated by size.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Mutex<Option<(File, u64)>>,
}

impl RotatingFile {
    /// Opens (creating) `path` for appending.
    pub(crate) fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = RotatingFile {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(4096),
            keep: keep.max(1),
            file: Mutex::new(None),
        };
        *f.file.lock().unwrap_or_else(PoisonError::into_inner) = Some(f.reopen()?);
        Ok(f)
    }

    fn reopen(&self) -> io::Result<(File, u64)> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let ino = f.metadata()?.ino();
        Ok((f, ino))
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Renames the file away if it is still ours and too big (under the
    /// lock, so that the other process does not rotate it again).
    fn rotate_if_needed(&self, ino: u64) -> io::Result<()> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(lock_path))?;
        // SAFETY: flock on a descriptor we own; released when `lock` closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() == ino && m.len() >= self.max_bytes => {
                for n in (1..self.keep).rev() {
                    let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
                }
                std::fs::rename(&self.path, self.rotated(1))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn write_line(&self, buf: &[u8]) -> io::Result<()> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // Rotated by the other process (or removed): continue in the new file.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if slot.as_ref().map(|(_, ino)| Some(*ino)) != Some(current) {
            *slot = Some(self.reopen()?);
        }
        let Some((f, ino)) = slot.as_mut() else {
            return Ok(());
        };
        f.write_all(buf)?;
        if f.metadata()?.len() >= self.max_bytes {
            let ino = *ino;
            self.rotate_if_needed(ino)?;
            *slot = Some(self.reopen()?);
        }
        Ok(())
    }
}

/// One formatted event, written to the file when dropped (tracing's fmt
/// layer writes an event in pieces; the file gets it as one append).
pub(crate) struct LineWriter {
    file: Arc<RotatingFile>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // A log that cannot be written must not stop the agent.
            let _ = self.file.write_line(&self.buf);
        }
    }
}

/// The `MakeWriter` of the file layer.
#[derive(Clone)]
pub(crate) struct FileWriter(pub Arc<RotatingFile>);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            file: self.0.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

/// Where the log file goes for these arguments.
pub(crate) fn log_path(args: &RunArgs) -> PathBuf {
    args.log_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("logtail-agent.LOG"))
}

/// Installs the agent's logging: the rotated file, and stderr as
/// `--log-stderr` says; `RUST_LOG` or `--log-level` filters. Panics are
/// logged too, so that a crash leaves its reason in the file. If the file
/// cannot be opened, the log goes to stderr and the reason is said there.
pub(crate) fn init(args: &RunArgs, who: &'static str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    let terminal = io::stderr().is_terminal();
    let path = log_path(args);
    let file = RotatingFile::open(
        &path,
        args.log_file_mib.saturating_mul(1 << 20),
        args.log_file_keep,
    )
    .map(Arc::new);
    let to_stderr = match args.log_stderr {
        LogStderr::Always => true,
        LogStderr::Never => false,
        LogStderr::Auto => terminal,
    } || file.is_err();
    let file_layer = file.as_ref().ok().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(FileWriter(f.clone()))
            .boxed()
    });
    let stderr_layer = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(terminal)
            .with_writer(io::stderr)
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .init();
    if let Err(e) = file {
        tracing::warn!(
            "cannot write the log file {}: {e}; logging to stderr only",
            path.display()
        );
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("{who} panicked: {info}");
        default_hook(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.LOG");
        let f = RotatingFile::open(&path, 4096, 3).unwrap();
        let line = [b'x'; 1023];
        for i in 0..40u32 {
            let mut l = line.to_vec();
            l[0] = b'0' + (i % 10) as u8;
            l.push(b'\n');
            f.write_line(&l).unwrap();
        }
        // 40 KiB in 4 KiB files: the live file and .1 … .3, nothing more.
        assert!(path.exists());
        for n in 1..=3 {
            let p = f.rotated(n);
            let len = std::fs::metadata(&p).unwrap().len();
            assert_eq!(len, 4096, "{}", p.display());
        }
        assert!(!f.rotated(4).exists());
        assert!(std::fs::metadata(&path).unwrap().len() < 4096);
    }

    #[test]
    fn two_writers_share_one_file_and_rotate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.LOG");
        let a = RotatingFile::open(&path, 8192, 5).unwrap();
        let b = RotatingFile::open(&path, 8192, 5).unwrap();
        let mut n = 0u32;
        for i in 0..40u32 {
            let w = if i % 2 == 0 { &a } else { &b };
            w.write_line(format!("{i:0>1023}\n").as_bytes()).unwrap();
            n += 1;
        }
        // Every line is in exactly one of the files, none is lost.
        let mut seen = Vec::new();
        for p in [
            path.clone(),
            a.rotated(1),
            a.rotated(2),
            a.rotated(3),
            a.rotated(4),
            a.rotated(5),
        ] {
            if let Ok(t) = std::fs::read_to_string(&p) {
                for l in t.lines() {
                    seen.push(l.trim_start_matches('0').parse::<u32>().unwrap_or(0));
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }
}
