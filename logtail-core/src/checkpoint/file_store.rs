//! [`FileCheckpoint`]: positions kept in a versioned JSON file, written
//! atomically and durably, with one previous generation kept as a backup.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Checkpoint, CheckpointError, FilePosition};
use crate::file::FileId;

/// The format version this code writes and reads.
const VERSION: u64 = 1;

/// How [`FileCheckpoint::open`] found the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Neither the main file nor its backup exists: a first start.
    Fresh,
    /// The main file was read without problems.
    Loaded,
    /// The main file was missing or corrupt and the previous generation
    /// (`.bak`) was used: more duplicates are possible, nothing is lost.
    FromBackup {
        /// Which file was unusable and why.
        reason: String,
    },
    /// Both the main file and the backup were unusable: the store starts
    /// empty (files are then read from their configured tail size).
    Reset {
        /// Which files were unusable and why.
        reason: String,
    },
}

/// A [`Checkpoint`] kept in a versioned JSON file, written atomically and
/// durably, with one previous generation kept as a backup.
///
/// Changes live in memory until [`Checkpoint::persist`], which writes only
/// if something changed since the last successful persist.
///
/// # File format
///
/// ```text
/// {"version":1,"files":[
/// {"id":{"dev":2049,"inode":42},"signature":{"len":1024,"hash":123},"offset":10,"path":"/var/log/app.log","updated":1700000000},
/// ...
/// ]}
/// ```
///
/// One entry per line, sorted by [`FileId`], so the file diffs well, reads
/// well, and a decode error's line number points at the bad entry.
///
/// # Files on disk
///
/// For a store at `<path>`:
/// - `<path>`: the current generation;
/// - `<path>.bak`: the previous generation (used if `<path>` is missing or
///   corrupt: a few lines may be delivered twice, none are lost);
/// - `<path>.tmp`: the generation being written;
/// - `<path>.corrupt`: a corrupt main file, moved aside for inspection.
///
/// A persist writes and fsyncs `<path>.tmp`, renames `<path>` to
/// `<path>.bak`, renames `<path>.tmp` to `<path>` and fsyncs the directory
/// ([`crate::fs::write_atomic_keeping_backup`]). A crash at any point
/// leaves either `<path>` or `<path>.bak` complete.
pub struct FileCheckpoint {
    path: PathBuf,
    bak: PathBuf,
    corrupt: PathBuf,
    entries: BTreeMap<FileId, FilePosition>,
    /// Whether memory differs from what is durably on disk.
    dirty: bool,
}

impl fmt::Debug for FileCheckpoint {
    // Entries are left out: there may be thousands.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCheckpoint")
            .field("path", &self.path)
            .field("entries", &self.entries.len())
            .field("dirty", &self.dirty)
            .finish()
    }
}

impl FileCheckpoint {
    /// Opens the store at `path`, creating its parent directories. The file
    /// itself is created by the first [`persist`](Checkpoint::persist).
    ///
    /// A missing or corrupt main file falls back to the backup (a corrupt
    /// one is first renamed to `<path>.corrupt`), and to an empty store if
    /// the backup is unusable too; the returned [`Recovery`] says which.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`] for I/O errors other than "not found" (e.g.
    /// permission denied), and [`CheckpointError::Corrupt`] if a file was
    /// written by a newer version of the format: it is left untouched rather
    /// than overwritten.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, Recovery), CheckpointError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, "create directory", e))?;
        }
        let mut store = FileCheckpoint {
            bak: with_suffix(&path, ".bak"),
            corrupt: with_suffix(&path, ".corrupt"),
            path,
            entries: BTreeMap::new(),
            dirty: false,
        };
        let (positions, recovery) = store.load()?;
        // Duplicate ids cannot come from `encode`; should they appear, the
        // last one wins.
        store.entries = positions.into_iter().map(|p| (p.id, p)).collect();
        // Anything but a clean load rewrites the main file on the next
        // persist (and a fresh store creates it).
        store.dirty = recovery != Recovery::Loaded;
        Ok((store, recovery))
    }

    /// The main file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<(Vec<FilePosition>, Recovery), CheckpointError> {
        let main = self.path.display();
        let bak = self.bak.display();
        let main_problem = match read_store(&self.path)? {
            Loaded::Ok(positions) => return Ok((positions, Recovery::Loaded)),
            Loaded::Missing => None,
            Loaded::Invalid(error) => {
                // Kept for inspection, and so it is never mistaken for a
                // good generation again.
                fs::rename(&self.path, &self.corrupt)
                    .map_err(|e| io_error(&self.path, "move corrupt file aside", e))?;
                tracing::warn!(
                    path = %main,
                    moved_to = %self.corrupt.display(),
                    %error,
                    "corrupt checkpoint file moved aside"
                );
                Some(format!(
                    "main file {main} is corrupt ({error}), moved to {}",
                    self.corrupt.display()
                ))
            }
        };
        let backup = read_store(&self.bak)?;
        let main_problem = match (main_problem, &backup) {
            (None, Loaded::Missing) => return Ok((Vec::new(), Recovery::Fresh)),
            (None, _) => format!("main file {main} is missing"),
            (Some(problem), _) => problem,
        };
        Ok(match backup {
            Loaded::Ok(positions) => (
                positions,
                Recovery::FromBackup {
                    reason: format!("{main_problem}; loaded backup {bak}"),
                },
            ),
            Loaded::Missing => (
                Vec::new(),
                Recovery::Reset {
                    reason: format!("{main_problem}; backup file {bak} is missing"),
                },
            ),
            Loaded::Invalid(error) => (
                Vec::new(),
                Recovery::Reset {
                    reason: format!("{main_problem}; backup file {bak} is corrupt ({error})"),
                },
            ),
        })
    }

    fn write_generation(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        crate::fs::write_atomic_keeping_backup(&self.path, bytes, &self.bak)
            .map_err(|e| io_error(&e.path, e.step, e.source))
    }
}

impl Checkpoint for FileCheckpoint {
    fn get(&self, id: FileId) -> Option<&FilePosition> {
        self.entries.get(&id)
    }

    fn update(&mut self, position: FilePosition) {
        if self.entries.get(&position.id) != Some(&position) {
            self.entries.insert(position.id, position);
            self.dirty = true;
        }
    }

    fn forget(&mut self, id: FileId) {
        if self.entries.remove(&id).is_some() {
            self.dirty = true;
        }
    }

    fn expire(&mut self, cutoff: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, p| p.updated >= cutoff);
        let removed = before - self.entries.len();
        if removed > 0 {
            self.dirty = true;
        }
        removed
    }

    fn persist(&mut self) -> Result<(), CheckpointError> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = encode_sorted(self.entries.values());
        // On error the store stays dirty, so the next persist retries.
        self.write_generation(&bytes)?;
        self.dirty = false;
        tracing::debug!(path = %self.path.display(), entries = self.entries.len(), "checkpoint persisted");
        Ok(())
    }

    fn positions(&self) -> Vec<FilePosition> {
        // BTreeMap order is FileId order.
        self.entries.values().cloned().collect()
    }
}

/// Decodes a store file. Never panics, whatever the bytes.
///
/// # Errors
///
/// A message saying what is wrong and, where known, at which line and
/// column; for a file of a newer format version, "written by a newer
/// version (N); refusing to overwrite".
pub fn decode(bytes: &[u8]) -> Result<Vec<FilePosition>, String> {
    decode_checked(bytes).map_err(|e| e.to_string())
}

/// Encodes positions as a store file, sorted by [`FileId`] (so the output
/// depends only on the set of positions, not on their order).
pub fn encode(positions: &[FilePosition]) -> Vec<u8> {
    let mut sorted: Vec<&FilePosition> = positions.iter().collect();
    // Stable: equal ids keep their relative order.
    sorted.sort_by_key(|p| p.id);
    encode_sorted(sorted)
}

fn encode_sorted<'a>(positions: impl IntoIterator<Item = &'a FilePosition>) -> Vec<u8> {
    let mut out = format!("{{\"version\":{VERSION},\"files\":[\n").into_bytes();
    for (i, position) in positions.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        // Invariant, not external data: a struct of integers and strings
        // always serializes, and writing to a Vec cannot fail.
        #[allow(clippy::expect_used)]
        serde_json::to_writer(&mut out, position).expect("FilePosition serializes to JSON");
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

/// Why bytes are not a usable store.
#[derive(Debug)]
enum DecodeError {
    /// A newer format: must not be overwritten, so not recoverable.
    Newer(u64),
    /// Anything else: recoverable from the backup.
    Invalid(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Newer(v) => {
                write!(f, "written by a newer version ({v}); refusing to overwrite")
            }
            DecodeError::Invalid(m) => f.write_str(m),
        }
    }
}

/// First pass: only the version, so a newer format is recognised even if
/// its entries would not parse as ours.
#[derive(Deserialize)]
struct Header {
    version: u64,
}

#[derive(Deserialize)]
struct Document {
    // `version` was checked by the first pass.
    files: Vec<FilePosition>,
}

fn decode_checked(bytes: &[u8]) -> Result<Vec<FilePosition>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Invalid(
            "empty file (0 bytes; torn write?)".into(),
        ));
    }
    // serde would also accept `[1, [...]]` for a struct; only objects are ours.
    match bytes.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) if bytes[i] == b'{' => {}
        Some(i) => {
            let (line, column) = line_column(bytes, i);
            return Err(DecodeError::Invalid(format!(
                "expected a JSON object at line {line} column {column}"
            )));
        }
        None => return Err(DecodeError::Invalid("file holds only whitespace".into())),
    }
    let header: Header = serde_json::from_slice(bytes).map_err(json_error)?;
    match header.version {
        VERSION => {}
        v if v > VERSION => return Err(DecodeError::Newer(v)),
        v => {
            return Err(DecodeError::Invalid(format!(
                "unsupported format version {v}"
            )))
        }
    }
    let document: Document = serde_json::from_slice(bytes).map_err(json_error)?;
    Ok(document.files)
}

fn json_error(e: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    // serde_json's message already ends with "at line L column C".
    let what = match e.classify() {
        Category::Eof => "truncated",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected content",
        Category::Io => "read error",
    };
    DecodeError::Invalid(format!("{what}: {e}"))
}

/// 1-based line and column of byte `index`, as serde_json counts them.
fn line_column(bytes: &[u8], index: usize) -> (usize, usize) {
    let before = &bytes[..index];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, index - line_start + 1)
}

enum Loaded {
    Missing,
    Ok(Vec<FilePosition>),
    Invalid(String),
}

/// Reads one generation; only a newer format and I/O errors other than
/// "not found" are errors.
fn read_store(path: &Path) -> Result<Loaded, CheckpointError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(io_error(path, "read", e)),
    };
    match decode_checked(&bytes) {
        Ok(positions) => Ok(Loaded::Ok(positions)),
        Err(DecodeError::Invalid(reason)) => Ok(Loaded::Invalid(reason)),
        Err(newer @ DecodeError::Newer(_)) => Err(CheckpointError::Corrupt {
            path: path.display().to_string(),
            reason: newer.to_string(),
        }),
    }
}

/// `<path><suffix>`: appended, so `a.json` gives `a.json.bak`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

fn io_error(path: &Path, what: &'static str, source: io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        what,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::Signature;
    use proptest::prelude::*;
    use std::os::unix::fs::MetadataExt;

    fn pos(inode: u64, offset: u64, updated: u64) -> FilePosition {
        FilePosition {
            id: FileId { dev: 7, inode },
            signature: Signature::of(format!("head of {inode}").as_bytes()),
            offset,
            path: format!("/var/log/app-{inode}.log"),
            updated,
        }
    }

    fn store_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("state").join("checkpoint.json")
    }

    fn open(path: &Path) -> (FileCheckpoint, Recovery) {
        FileCheckpoint::open(path).expect("open")
    }

    fn invalid(bytes: &[u8]) -> String {
        match decode(bytes) {
            Ok(v) => panic!("decoded {v:?} from {:?}", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    /// Main holds `main_gen`, .bak holds `bak_gen`.
    fn two_generations(path: &Path, bak_gen: &[FilePosition], main_gen: &[FilePosition]) {
        let (mut store, _) = open(path);
        for p in bak_gen {
            store.update(p.clone());
        }
        store.persist().unwrap();
        for p in store.positions() {
            store.forget(p.id);
        }
        for p in main_gen {
            store.update(p.clone());
        }
        store.persist().unwrap();
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let (mut store, recovery) = open(&path);
        assert_eq!(recovery, Recovery::Fresh);
        assert_eq!(store.path(), path);
        store.update(pos(3, 300, 30));
        store.update(pos(1, 100, 10));
        store.update(pos(2, 200, 20));
        store.update(pos(2, 250, 25));
        store.forget(FileId { dev: 7, inode: 3 });
        store.persist().unwrap();

        let (reopened, recovery) = open(&path);
        assert_eq!(recovery, Recovery::Loaded);
        assert_eq!(reopened.positions(), vec![pos(1, 100, 10), pos(2, 250, 25)]);
        assert_eq!(
            reopened.get(FileId { dev: 7, inode: 2 }).unwrap().offset,
            250
        );
        assert!(!dir.path().join("state/checkpoint.json.tmp").exists());
        assert!(format!("{reopened:?}").contains("entries: 2"));
    }

    #[test]
    fn file_format_is_one_entry_per_line_sorted() {
        let bytes = encode(&[pos(2, 5, 6), pos(1, 3, 4)]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], r#"{"version":1,"files":["#);
        assert!(lines[1].contains(r#""inode":1"#) && lines[1].ends_with(','));
        assert!(lines[2].contains(r#""inode":2"#));
        assert_eq!(lines[3], "]}");
        assert_eq!(bytes, encode(&[pos(1, 3, 4), pos(2, 5, 6)]));
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn fresh_store_creates_the_file_on_first_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let (mut store, _) = open(&path);
        assert!(
            path.parent().unwrap().is_dir(),
            "parent dirs are created by open"
        );
        assert!(!path.exists());
        store.persist().unwrap();
        assert_eq!(fs::read(&path).unwrap(), encode(&[]));
    }

    #[test]
    fn persist_is_a_noop_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let bak = with_suffix(&path, ".bak");
        two_generations(&path, &[pos(1, 1, 1)], &[pos(1, 2, 2)]);
        let (mut store, _) = open(&path);
        let main_inode = fs::metadata(&path).unwrap().ino();
        let bak_before = fs::read(&bak).unwrap();

        store.persist().unwrap();
        store.update(pos(1, 2, 2)); // identical: not a change
        store.forget(FileId { dev: 9, inode: 9 }); // absent: not a change
        assert_eq!(store.expire(0), 0);
        store.persist().unwrap();
        // A write would have renamed a new file into place.
        assert_eq!(fs::metadata(&path).unwrap().ino(), main_inode);
        assert_eq!(fs::read(&bak).unwrap(), bak_before);
        assert!(!with_suffix(&path, ".tmp").exists());

        store.update(pos(1, 3, 3));
        store.persist().unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), main_inode);
        assert_eq!(
            decode(&fs::read(&bak).unwrap()).unwrap(),
            vec![pos(1, 2, 2)]
        );
    }

    #[test]
    fn truncated_main_falls_back_to_backup_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let old = vec![pos(1, 10, 1), pos(2, 20, 1)];
        let new = vec![pos(1, 15, 2), pos(2, 25, 2), pos(3, 35, 2)];
        two_generations(&path, &old, &new);
        let full = fs::read(&path).unwrap();
        let bak = fs::read(with_suffix(&path, ".bak")).unwrap();
        for len in 0..full.len() {
            fs::write(&path, &full[..len]).unwrap();
            fs::write(with_suffix(&path, ".bak"), &bak).unwrap();
            let (store, recovery) = open(&path);
            match recovery {
                // Only dropping trailing whitespace keeps a valid file.
                Recovery::Loaded => {
                    assert!(full[len..].iter().all(u8::is_ascii_whitespace), "len {len}");
                    assert_eq!(store.positions(), new);
                }
                Recovery::FromBackup { reason } => {
                    assert!(reason.contains("is corrupt"), "{reason}");
                    assert_eq!(store.positions(), old, "len {len}");
                    let corrupt = fs::read(with_suffix(&path, ".corrupt")).unwrap();
                    assert_eq!(corrupt, &full[..len]);
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_main_without_backup_resets_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let full = encode(&[pos(1, 10, 1), pos(2, 20, 1)]);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        for len in 0..full.len() {
            fs::write(&path, &full[..len]).unwrap();
            let (store, recovery) = open(&path);
            match recovery {
                Recovery::Loaded => assert_eq!(store.positions().len(), 2),
                Recovery::Reset { reason } => {
                    assert!(reason.contains("checkpoint.json is corrupt"), "{reason}");
                    assert!(
                        reason.contains("checkpoint.json.bak is missing"),
                        "{reason}"
                    );
                    assert!(store.positions().is_empty());
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_file_is_corrupt() {
        assert!(invalid(b"").contains("empty file"));
        assert!(invalid(b" \n").contains("whitespace"));
    }

    #[test]
    fn decode_errors_say_what_and_where() {
        let garbage = invalid(b"{\"version\":1,\"files\":[\n@@@");
        assert!(garbage.contains("line 2 column 1"), "{garbage}");
        assert!(garbage.starts_with("invalid JSON"), "{garbage}");

        let not_object = invalid(b"\n  [1, []]");
        assert_eq!(not_object, "expected a JSON object at line 2 column 3");

        let utf8 = invalid(b"{\"version\":1,\"files\":[{\"path\":\"\xff\xfe\"}]}");
        assert!(utf8.contains("line 1 column"), "{utf8}");

        let empty_object = invalid(b"{}");
        assert!(
            empty_object.contains("missing field `version`"),
            "{empty_object}"
        );
        assert!(empty_object.contains("line 1 column 2"), "{empty_object}");

        let no_files = invalid(br#"{"version":1}"#);
        assert!(no_files.contains("missing field `files`"), "{no_files}");

        let version_type = invalid(br#"{"version":"1","files":[]}"#);
        assert!(
            version_type.contains("invalid type: string"),
            "{version_type}"
        );
        assert!(version_type.contains("line 1 column 14"), "{version_type}");

        let mut text = String::from_utf8(encode(&[pos(1, 2, 3)])).unwrap();
        text = text.replace(r#""offset":2"#, r#""offset":"two""#);
        let offset_type = invalid(text.as_bytes());
        assert!(
            offset_type.starts_with(
                "unexpected content: invalid type: string \"two\", expected u64 at line 2 column"
            ),
            "{offset_type}"
        );

        let negative = invalid(br#"{"version":1,"files":[{"id":{"dev":-1,"inode":1}}]}"#);
        assert!(negative.contains("line 1 column"), "{negative}");

        let trailing = invalid(br#"{"version":1,"files":[]} x"#);
        assert!(trailing.contains("trailing characters"), "{trailing}");

        assert_eq!(
            invalid(br#"{"version":0,"files":[]}"#),
            "unsupported format version 0"
        );
    }

    #[test]
    fn newer_version_is_refused_not_overwritten() {
        // Entries of a newer format need not parse as ours.
        let v2 = br#"{"version":2,"files":[{"whatever":true}],"extra":1}"#;
        assert_eq!(
            invalid(v2),
            "written by a newer version (2); refusing to overwrite"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, v2).unwrap();
        match FileCheckpoint::open(&path) {
            Err(CheckpointError::Corrupt { path: p, reason }) => {
                assert_eq!(p, path.display().to_string());
                assert_eq!(
                    reason,
                    "written by a newer version (2); refusing to overwrite"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), v2, "left untouched");
        assert!(!with_suffix(&path, ".corrupt").exists());

        // Also when it is the backup that is newer.
        fs::rename(&path, with_suffix(&path, ".bak")).unwrap();
        assert!(matches!(
            FileCheckpoint::open(&path),
            Err(CheckpointError::Corrupt { .. })
        ));
    }

    #[test]
    fn corrupt_main_is_moved_aside_and_backup_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        two_generations(&path, &[pos(1, 10, 1)], &[pos(1, 20, 2)]);
        fs::write(&path, b"\x00\x01garbage").unwrap();

        let (mut store, recovery) = open(&path);
        let Recovery::FromBackup { reason } = recovery else {
            panic!("{recovery:?}");
        };
        assert!(
            reason.contains(&format!("main file {} is corrupt", path.display())),
            "{reason}"
        );
        assert!(reason.contains("line 1 column 1"), "{reason}");
        assert!(reason.contains("checkpoint.json.corrupt"), "{reason}");
        assert_eq!(store.positions(), vec![pos(1, 10, 1)]);
        assert_eq!(
            fs::read(with_suffix(&path, ".corrupt")).unwrap(),
            b"\x00\x01garbage"
        );
        assert!(!path.exists());

        // The next persist rewrites the main file even without changes.
        store.persist().unwrap();
        let (store, recovery) = open(&path);
        assert_eq!(recovery, Recovery::Loaded);
        assert_eq!(store.positions(), vec![pos(1, 10, 1)]);
    }

    #[test]
    fn missing_main_with_backup_uses_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        two_generations(&path, &[pos(1, 10, 1)], &[pos(1, 20, 2)]);
        fs::remove_file(&path).unwrap();
        let (store, recovery) = open(&path);
        assert_eq!(
            recovery,
            Recovery::FromBackup {
                reason: format!(
                    "main file {} is missing; loaded backup {}.bak",
                    path.display(),
                    path.display()
                )
            }
        );
        assert_eq!(store.positions(), vec![pos(1, 10, 1)]);
        assert!(!with_suffix(&path, ".corrupt").exists());
    }

    #[test]
    fn both_unusable_resets_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        two_generations(&path, &[pos(1, 10, 1)], &[pos(1, 20, 2)]);
        fs::write(&path, b"{").unwrap();
        fs::write(with_suffix(&path, ".bak"), b"").unwrap();
        let (mut store, recovery) = open(&path);
        let Recovery::Reset { reason } = recovery else {
            panic!("{recovery:?}");
        };
        assert!(
            reason.contains("checkpoint.json is corrupt (truncated"),
            "{reason}"
        );
        assert!(
            reason.contains("checkpoint.json.bak is corrupt (empty file"),
            "{reason}"
        );
        assert!(store.positions().is_empty());
        store.persist().unwrap();
        assert_eq!(open(&path).1, Recovery::Loaded);

        // Main missing, backup corrupt.
        fs::remove_file(&path).unwrap();
        fs::write(with_suffix(&path, ".bak"), b"[]").unwrap();
        let Recovery::Reset { reason } = open(&path).1 else {
            panic!()
        };
        assert!(
            reason.contains("checkpoint.json is missing; backup file"),
            "{reason}"
        );
    }

    #[test]
    fn crash_between_the_two_renames_loads_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        two_generations(&path, &[pos(1, 10, 1)], &[pos(1, 20, 2)]);
        // The state a crash after "main -> .bak" and before ".tmp -> main"
        // leaves: the newest generation only in .tmp.
        fs::rename(&path, with_suffix(&path, ".bak")).unwrap();
        fs::write(with_suffix(&path, ".tmp"), encode(&[pos(1, 30, 3)])).unwrap();

        let (mut store, recovery) = open(&path);
        assert!(
            matches!(recovery, Recovery::FromBackup { .. }),
            "{recovery:?}"
        );
        assert_eq!(store.positions(), vec![pos(1, 20, 2)]);

        // Recovery completes with the next persist; the stale .tmp goes.
        store.update(pos(1, 40, 4));
        store.persist().unwrap();
        assert!(!with_suffix(&path, ".tmp").exists());
        let (store, recovery) = open(&path);
        assert_eq!(recovery, Recovery::Loaded);
        assert_eq!(store.positions(), vec![pos(1, 40, 4)]);
        let bak = decode(&fs::read(with_suffix(&path, ".bak")).unwrap()).unwrap();
        assert_eq!(bak, vec![pos(1, 20, 2)]);
    }

    #[test]
    fn crash_while_writing_tmp_keeps_main() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        two_generations(&path, &[pos(1, 10, 1)], &[pos(1, 20, 2)]);
        fs::write(with_suffix(&path, ".tmp"), b"{\"version\":1,\"fi").unwrap();
        let (store, recovery) = open(&path);
        assert_eq!(recovery, Recovery::Loaded);
        assert_eq!(store.positions(), vec![pos(1, 20, 2)]);
    }

    #[test]
    fn expire_drops_old_entries_and_marks_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        let (mut store, _) = open(&path);
        store.update(pos(1, 1, 100));
        store.update(pos(2, 1, 200));
        store.update(pos(3, 1, 300));
        store.persist().unwrap();
        assert!(!store.dirty);

        assert_eq!(store.expire(100), 0, "updated == cutoff is kept");
        assert!(!store.dirty);
        assert_eq!(store.expire(250), 2);
        assert!(store.dirty);
        store.persist().unwrap();
        assert_eq!(open(&path).0.positions(), vec![pos(3, 1, 300)]);
    }

    #[test]
    fn io_errors_name_path_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        // A directory where the file should be: EISDIR, not "not found",
        // and independent of running as root.
        fs::create_dir_all(&path).unwrap();
        match FileCheckpoint::open(&path) {
            Err(e @ CheckpointError::Io { what: "read", .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("checkpoint file {}: read: ", path.display())),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        fs::remove_dir(&path).unwrap();

        let (mut store, _) = open(&path);
        fs::create_dir(with_suffix(&path, ".tmp")).unwrap();
        store.update(pos(1, 1, 1));
        let err = store.persist().unwrap_err();
        assert!(
            matches!(
                err,
                CheckpointError::Io {
                    what: "create temporary file",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(store.dirty, "a failed persist is retried");
        fs::remove_dir(with_suffix(&path, ".tmp")).unwrap();
        store.persist().unwrap();
        assert_eq!(open(&path).0.positions(), vec![pos(1, 1, 1)]);
    }

    #[test]
    fn relative_path_without_parent() {
        // `Path::parent` of a bare name is "": fsync must use ".".
        assert_eq!(
            with_suffix(Path::new("cp.json"), ".bak"),
            Path::new("cp.json.bak")
        );
        let dir = tempfile::tempdir().unwrap();
        let store = FileCheckpoint {
            path: dir.path().join("x"),
            bak: dir.path().join("x.bak"),
            corrupt: dir.path().join("x.corrupt"),
            entries: BTreeMap::new(),
            dirty: true,
        };
        store.write_generation(b"{}").unwrap();
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"{}");
    }

    fn arb_position() -> impl Strategy<Value = FilePosition> {
        (
            any::<u64>(),
            any::<u64>(),
            0u32..=1024,
            any::<u64>(),
            any::<u64>(),
            any::<String>(),
            any::<u64>(),
        )
            .prop_map(
                |(dev, inode, len, hash, offset, path, updated)| FilePosition {
                    id: FileId { dev, inode },
                    signature: Signature { len, hash },
                    offset,
                    path,
                    updated,
                },
            )
    }

    proptest! {
        #[test]
        fn encode_decode_is_identity(positions in proptest::collection::vec(arb_position(), 0..20)) {
            let mut sorted = positions.clone();
            sorted.sort_by_key(|p| p.id);
            prop_assert_eq!(decode(&encode(&positions)).unwrap(), sorted);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_damaged_encodings(
            positions in proptest::collection::vec(arb_position(), 0..4),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&positions);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = decode(&bytes);
        }
    }
}
