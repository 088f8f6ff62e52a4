//! Durable, atomic replacement of small files: the one way logtail-rs
//! writes state (checkpoints, the spill queue's head, the fleet client's
//! files).
//!
//! [`write_atomic`] writes `<path>.tmp`, fsyncs it, renames it over
//! `<path>` and fsyncs the directory, so after a crash at any point `path`
//! holds either the old content or the new one, never a mix, and once it
//! returns `Ok` the new content survives a power loss.
//! [`write_atomic_keeping_backup`] also keeps the previous generation.
//!
//! ```
//! # fn main() -> Result<(), logtail_core::fs::WriteAtomicError> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! logtail_core::fs::write_atomic(&path, b"{\"v\":1}")?;
//! logtail_core::fs::write_atomic(&path, b"{\"v\":2}")?;
//! assert_eq!(std::fs::read(&path).unwrap(), b"{\"v\":2}");
//! # Ok(()) }
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A step of an atomic write failed. Displays as `PATH: STEP: cause`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {step}: {source}", path.display())]
pub struct WriteAtomicError {
    /// The file or directory the failed step worked on (the temporary
    /// file, the target, or its directory).
    pub path: PathBuf,
    /// The step: `create temporary file`, `write temporary file`, `fsync
    /// temporary file`, `rename to backup`, `rename temporary file into
    /// place` or `fsync directory`.
    pub step: &'static str,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl From<WriteAtomicError> for io::Error {
    /// Keeps the cause's kind; the message names the path and the step.
    fn from(e: WriteAtomicError) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// The temporary file [`write_atomic`] writes for `path`: `<path>.tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Replaces the content of `path` with `bytes`, atomically and durably:
/// `<path>.tmp` is created (truncated if a crash left one), written and
/// fsynced, renamed over `path`, and the directory fsynced. A crash at any
/// point leaves `path` with its old content or the new one.
///
/// The parent directory must exist. A failed write leaves `path`
/// untouched (and perhaps a stale `<path>.tmp`, replaced by the next
/// write).
///
/// # Errors
///
/// [`WriteAtomicError`] naming the step and the path it failed on.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteAtomicError> {
    write_temp(path, bytes).and_then(|tmp| replace(&tmp, path, None))
}

/// As [`write_atomic`], and the previous content of `path` (if any) is
/// kept in `backup`: after the temporary file is durable, `path` is
/// renamed to `backup`, the temporary file to `path`, and the directory
/// fsynced (making both renames durable). A crash at any point leaves
/// `path` or `backup` complete (between the two renames only `backup`
/// and `<path>.tmp` exist). `backup` must be in the same directory.
///
/// # Errors
///
/// [`WriteAtomicError`] naming the step and the path it failed on.
pub fn write_atomic_keeping_backup(
    path: &Path,
    bytes: &[u8],
    backup: &Path,
) -> Result<(), WriteAtomicError> {
    write_temp(path, bytes).and_then(|tmp| replace(&tmp, path, Some(backup)))
}

/// Fsyncs the directory `dir` (`""`, the parent of a bare file name, is
/// `.`), making the creation, removal or renaming of its entries durable.
///
/// # Errors
///
/// Opening or fsyncing the directory failed.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir).and_then(|d| d.sync_all())
}

fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, WriteAtomicError> {
    let tmp = temp_path(path);
    let err = |step, source| WriteAtomicError {
        path: tmp.clone(),
        step,
        source,
    };
    let mut file = File::create(&tmp).map_err(|e| err("create temporary file", e))?;
    file.write_all(bytes)
        .map_err(|e| err("write temporary file", e))?;
    // The data must be on disk before a rename can make it current.
    file.sync_all()
        .map_err(|e| err("fsync temporary file", e))?;
    Ok(tmp)
}

fn replace(tmp: &Path, path: &Path, backup: Option<&Path>) -> Result<(), WriteAtomicError> {
    let err = |path: &Path, step, source| WriteAtomicError {
        path: path.to_path_buf(),
        step,
        source,
    };
    if let Some(backup) = backup {
        match fs::rename(path, backup) {
            // No current generation: a first write, or a crash left none.
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(err(path, "rename to backup", e));
            }
            _ => {}
        }
    }
    fs::rename(tmp, path).map_err(|e| err(tmp, "rename temporary file into place", e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    sync_dir(dir).map_err(|e| err(dir, "fsync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        // A stale temporary file from a crash is replaced.
        fs::write(temp_path(&path), b"garbage from a crash").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn keeps_the_previous_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let bak = dir.path().join("cp.json.bak");
        write_atomic_keeping_backup(&path, b"1", &bak).unwrap();
        assert!(!bak.exists(), "nothing to keep on the first write");
        write_atomic_keeping_backup(&path, b"2", &bak).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"2");
        assert_eq!(fs::read(&bak).unwrap(), b"1");
    }

    #[test]
    fn a_bare_file_name_syncs_the_current_directory() {
        assert_eq!(temp_path(Path::new("cp.json")), Path::new("cp.json.tmp"));
        // `Path::parent` of a bare name is "": it means ".".
        sync_dir(Path::new("")).unwrap();
    }

    #[test]
    fn errors_name_the_step_and_the_path_and_keep_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("a.json");
        let e = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(e.step, "create temporary file");
        assert_eq!(e.path, temp_path(&path));
        assert!(
            e.to_string()
                .starts_with(&format!("{}: create temporary file: ", e.path.display())),
            "{e}"
        );
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().contains("create temporary file"), "{io}");
    }
}
