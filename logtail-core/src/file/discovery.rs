//! File discovery for the `input_file` input: which files on disk match the
//! configured `FilePaths` patterns and are not excluded.
//!
//! Patterns are absolute paths whose components may contain `*` (any run of
//! bytes except `/`) and `?` (exactly one byte except `/`). A single `**`
//! directory component, directly before the file name, matches
//! `0..=MaxDirSearchDepth` levels of directories. Matching works on raw
//! bytes, so non-UTF-8 file names are fine.
//!
//! [`PathMatcher::matches`] is pure; [`PathMatcher::scan`] walks the file
//! system starting at the longest wildcard-free prefix of each pattern and
//! descends only where the pattern allows.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Largest accepted `MaxDirSearchDepth`.
pub const MAX_DIR_SEARCH_DEPTH_LIMIT: u32 = 1000;

/// Config field names, used in error messages.
const FILE_PATHS: &str = "FilePaths";
const EXCLUDE_FILE_PATHS: &str = "ExcludeFilePaths";
const EXCLUDE_FILES: &str = "ExcludeFiles";
const EXCLUDE_DIRS: &str = "ExcludeDirs";

/// Options as they come from the config.
///
/// Non-exhaustive: build it with [`PathsSpec::new`] (or from
/// [`PathsSpec::default`]) and set the other fields.
///
/// ```
/// use logtail_core::file::PathsSpec;
///
/// let mut spec = PathsSpec::new(vec!["/var/log/**/*.log".to_owned()]);
/// spec.max_dir_search_depth = 3;
/// spec.exclude_files = vec!["*.gz".to_owned()];
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathsSpec {
    /// `FilePaths`: absolute path patterns of the files to collect.
    pub file_paths: Vec<String>,
    /// `MaxDirSearchDepth`: how many directory levels `**` may match (0..=1000).
    pub max_dir_search_depth: u32,
    /// `ExcludeFilePaths`: absolute path patterns; `*` also matches `/`.
    pub exclude_file_paths: Vec<String>,
    /// `ExcludeFiles`: patterns matched against the file name only.
    pub exclude_files: Vec<String>,
    /// `ExcludeDirs`: absolute directory patterns; `*` also matches `/`.
    /// Files below a matching directory are excluded.
    pub exclude_dirs: Vec<String>,
}

impl PathsSpec {
    /// `FilePaths` alone: no exclusions and a `MaxDirSearchDepth` of 0
    /// (`**` matches no directory level), as with [`PathsSpec::default`].
    /// The patterns are checked when a [`PathMatcher`] is built.
    pub fn new(file_paths: Vec<String>) -> Self {
        PathsSpec {
            file_paths,
            ..PathsSpec::default()
        }
    }
}

/// An invalid pattern or option in a [`PathsSpec`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The pattern is the empty string.
    #[error("{field} pattern \"\": pattern is empty")]
    Empty {
        /// Config field holding the pattern.
        field: &'static str,
    },
    /// The pattern does not start with `/`.
    #[error("{field} pattern {pattern:?}: must be an absolute path (start with '/')")]
    Relative {
        /// Config field holding the pattern.
        field: &'static str,
        /// The offending pattern.
        pattern: String,
    },
    /// The pattern contains a NUL byte, which no path can contain.
    #[error("{field} pattern {pattern:?}: contains a NUL byte")]
    NulByte {
        /// Config field holding the pattern.
        field: &'static str,
        /// The offending pattern.
        pattern: String,
    },
    /// The pattern ends with `/`, so it names no file.
    #[error("{field} pattern {pattern:?}: ends with '/', there is no file name")]
    NoFileName {
        /// Config field holding the pattern.
        field: &'static str,
        /// The offending pattern.
        pattern: String,
    },
    /// `**` appears more than once.
    #[error("FilePaths pattern {pattern:?}: '**' may appear only once")]
    MultipleRecursive {
        /// The offending pattern.
        pattern: String,
    },
    /// `**` is part of a component (`/a/b**/c.log`) instead of a whole one.
    #[error("FilePaths pattern {pattern:?}: '**' must be a whole path component")]
    RecursiveNotWholeComponent {
        /// The offending pattern.
        pattern: String,
    },
    /// `**` is not the last directory component.
    #[error(
        "FilePaths pattern {pattern:?}: '**' must be the last directory component, \
         directly before the file name"
    )]
    RecursiveNotLast {
        /// The offending pattern.
        pattern: String,
    },
    /// An `ExcludeFiles` pattern contains `/`; it can never match a file name.
    #[error("ExcludeFiles pattern {pattern:?}: a file-name pattern must not contain '/'")]
    SlashInFileName {
        /// The offending pattern.
        pattern: String,
    },
    /// `MaxDirSearchDepth` is above [`MAX_DIR_SEARCH_DEPTH_LIMIT`].
    #[error("MaxDirSearchDepth {depth}: must be at most 1000")]
    DepthTooLarge {
        /// The configured depth.
        depth: u32,
    },
}

/// One compiled `FilePaths` pattern.
#[derive(Debug, Clone)]
struct FilePattern {
    /// Directory components, without the `**`.
    dirs: Vec<Vec<u8>>,
    /// How many leading `dirs` are free of wildcards (the scan starts there).
    literal_prefix: usize,
    /// Whether `**` follows `dirs`.
    recursive: bool,
    /// File-name component.
    file: Vec<u8>,
}

/// A compiled [`PathsSpec`].
#[derive(Debug, Clone)]
pub struct PathMatcher {
    patterns: Vec<FilePattern>,
    max_depth: u32,
    exclude_file_paths: Vec<Vec<u8>>,
    exclude_files: Vec<Vec<u8>>,
    exclude_dirs: Vec<Vec<u8>>,
}

/// Result of [`PathMatcher::scan`].
#[derive(Debug, Default)]
pub struct Scan {
    /// Matched files (anything but directories; symlinks are reported by
    /// their link path), sorted and deduplicated.
    pub files: Vec<PathBuf>,
    /// Every directory that was read, sorted and deduplicated; the caller
    /// watches them for new files.
    pub dirs: Vec<PathBuf>,
    /// Unreadable directories and similar problems; not fatal.
    pub errors: Vec<(PathBuf, io::Error)>,
}

/// Where the file input gets its candidate files from: a seam (Vector's
/// paths provider), so that an embedder can list files its own way and
/// tests can feed a fixed list. [`PathMatcher`] is the glob walker.
pub trait PathsProvider: Send + fmt::Debug {
    /// The files that match now, and the directories to watch.
    fn scan(&self) -> Scan;
}

impl PathsProvider for PathMatcher {
    fn scan(&self) -> Scan {
        PathMatcher::scan(self)
    }
}

/// Whether a path component `name` matches `pattern`: `*` matches any run of
/// bytes except `/`, `?` exactly one byte except `/`, anything else itself.
#[doc(hidden)] // public for the fuzz targets only; not part of the API
pub fn component_matches(pattern: &[u8], name: &[u8]) -> bool {
    // `/` is matched only literally, so split both sides on it and match the
    // pieces pairwise; names normally have no `/` and this is one piece.
    let mut pats = pattern.split(|&b| b == b'/');
    let mut names = name.split(|&b| b == b'/');
    loop {
        match (pats.next(), names.next()) {
            (Some(p), Some(n)) if wildcard_match(p, n) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// fnmatch without FNM_PATHNAME: `*` and `?` match `/` too.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Last `*` seen: (pattern index after it, text index it extends to).
    // Extending only the last star is enough: earlier stars can never help
    // more than the latest one (classic linear-backtracking glob).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp;
                    t = st + 1;
                    star = Some((sp, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn has_wildcard(component: &[u8]) -> bool {
    component.iter().any(|&b| b == b'*' || b == b'?')
}

/// Checks shared by all absolute patterns.
fn check_absolute(field: &'static str, pattern: &str) -> Result<(), GlobError> {
    check_non_empty(field, pattern)?;
    if !pattern.starts_with('/') {
        return Err(GlobError::Relative {
            field,
            pattern: pattern.to_owned(),
        });
    }
    Ok(())
}

fn check_non_empty(field: &'static str, pattern: &str) -> Result<(), GlobError> {
    if pattern.is_empty() {
        return Err(GlobError::Empty { field });
    }
    if pattern.contains('\0') {
        return Err(GlobError::NulByte {
            field,
            pattern: pattern.to_owned(),
        });
    }
    Ok(())
}

fn check_has_file_name(field: &'static str, pattern: &str) -> Result<(), GlobError> {
    if pattern.ends_with('/') {
        return Err(GlobError::NoFileName {
            field,
            pattern: pattern.to_owned(),
        });
    }
    Ok(())
}

impl FilePattern {
    fn compile(pattern: &str) -> Result<Self, GlobError> {
        check_absolute(FILE_PATHS, pattern)?;
        check_has_file_name(FILE_PATHS, pattern)?;
        // Empty and `.` pieces mean nothing in a path (`Path::components`
        // drops them too), so drop them here.
        let comps: Vec<&[u8]> = pattern
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        let owned = || pattern.to_owned();
        let mut recursive_at = None;
        for (i, comp) in comps.iter().enumerate() {
            if comp.windows(2).any(|w| w == b"**") {
                if *comp != b"**" {
                    return Err(GlobError::RecursiveNotWholeComponent { pattern: owned() });
                }
                if recursive_at.is_some() {
                    return Err(GlobError::MultipleRecursive { pattern: owned() });
                }
                recursive_at = Some(i);
            }
        }
        // The trailing-'/' check guarantees a last component exists.
        let Some((file, dirs)) = comps.split_last() else {
            return Err(GlobError::NoFileName {
                field: FILE_PATHS,
                pattern: owned(),
            });
        };
        let recursive = match recursive_at {
            Some(i) if i + 2 != comps.len() => {
                return Err(GlobError::RecursiveNotLast { pattern: owned() })
            }
            Some(_) => true,
            None => false,
        };
        let dirs: Vec<Vec<u8>> = dirs
            .iter()
            .take(dirs.len() - usize::from(recursive))
            .map(|c| c.to_vec())
            .collect();
        let literal_prefix = dirs.iter().take_while(|c| !has_wildcard(c)).count();
        Ok(Self {
            dirs,
            literal_prefix,
            recursive,
            file: file.to_vec(),
        })
    }

    /// Directory where scanning starts: the wildcard-free prefix.
    fn base(&self) -> PathBuf {
        let mut base = PathBuf::from("/");
        for comp in &self.dirs[..self.literal_prefix] {
            base.push(std::ffi::OsStr::from_bytes(comp));
        }
        base
    }

    /// Whether `dirs` (the file's directory components) and `name` match.
    fn matches(&self, dirs: &[&[u8]], name: &[u8], max_depth: u32) -> bool {
        let Some(extra) = dirs.len().checked_sub(self.dirs.len()) else {
            return false;
        };
        if extra > 0 && !(self.recursive && extra <= max_depth as usize) {
            return false;
        }
        component_matches(&self.file, name) && self.dirs_match(dirs)
    }

    /// Whether a file directly in or below `dirs` could match.
    fn may_contain(&self, dirs: &[&[u8]], max_depth: u32) -> bool {
        let extra = dirs.len().saturating_sub(self.dirs.len());
        if extra > 0 && !(self.recursive && extra <= max_depth as usize) {
            return false;
        }
        self.dirs_match(dirs)
    }

    /// Pairwise match of the leading components (zip stops at the shorter).
    fn dirs_match(&self, dirs: &[&[u8]]) -> bool {
        self.dirs
            .iter()
            .zip(dirs)
            .all(|(p, d)| component_matches(p, d))
    }
}

/// Components of an absolute path as bytes; `None` for relative paths.
fn components(path: &Path) -> Option<Vec<&[u8]>> {
    if !path.has_root() {
        return None;
    }
    let comps = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.as_bytes()),
            Component::ParentDir => Some(&b".."[..]),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    Some(comps)
}

/// A directory waiting to be read by the scan.
struct Pending {
    path: PathBuf,
    /// Index into `FilePattern::dirs` that this directory's children match;
    /// equal to `dirs.len()` when children are files (or `**` levels).
    level: usize,
    /// `**` levels already used to get here.
    depth: u32,
    /// Device of this directory, inherited by real subdirectories.
    dev: u64,
}

/// A vanished path or a file where a directory was expected: a normal race
/// or a pattern that does not apply, not worth reporting.
fn is_absent(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ENOTDIR)
}

fn record_error(out: &mut Scan, path: PathBuf, err: io::Error) {
    if is_absent(&err) {
        return;
    }
    tracing::debug!(path = %path.display(), error = %err, "file discovery: cannot read");
    out.errors.push((path, err));
}

impl PathMatcher {
    /// Compiles and validates `spec`.
    pub fn new(spec: &PathsSpec) -> Result<Self, GlobError> {
        if spec.max_dir_search_depth > MAX_DIR_SEARCH_DEPTH_LIMIT {
            return Err(GlobError::DepthTooLarge {
                depth: spec.max_dir_search_depth,
            });
        }
        let patterns = spec
            .file_paths
            .iter()
            .map(|p| FilePattern::compile(p))
            .collect::<Result<_, _>>()?;
        let exclude_file_paths = spec
            .exclude_file_paths
            .iter()
            .map(|p| {
                check_absolute(EXCLUDE_FILE_PATHS, p)?;
                check_has_file_name(EXCLUDE_FILE_PATHS, p)?;
                Ok(p.as_bytes().to_vec())
            })
            .collect::<Result<_, _>>()?;
        let exclude_files = spec
            .exclude_files
            .iter()
            .map(|p| {
                check_non_empty(EXCLUDE_FILES, p)?;
                if p.contains('/') {
                    return Err(GlobError::SlashInFileName { pattern: p.clone() });
                }
                Ok(p.as_bytes().to_vec())
            })
            .collect::<Result<_, _>>()?;
        let exclude_dirs = spec
            .exclude_dirs
            .iter()
            .map(|p| {
                check_absolute(EXCLUDE_DIRS, p)?;
                // Directories are compared without a trailing '/'.
                let trimmed = p.trim_end_matches('/');
                Ok(if trimmed.is_empty() { "/" } else { trimmed }
                    .as_bytes()
                    .to_vec())
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            patterns,
            max_depth: spec.max_dir_search_depth,
            exclude_file_paths,
            exclude_files,
            exclude_dirs,
        })
    }

    /// Pure, no I/O: whether this absolute file path is matched by a pattern
    /// and not excluded. Relative paths never match.
    pub fn matches(&self, path: &Path) -> bool {
        let Some(comps) = components(path) else {
            return false;
        };
        let Some((name, dirs)) = comps.split_last() else {
            return false;
        };
        self.patterns
            .iter()
            .any(|p| p.matches(dirs, name, self.max_depth))
            && !self.path_excluded(dirs, name)
    }

    /// Pure: whether files directly in `dir` or in directories below it
    /// could match (used to decide which directories to descend into or
    /// watch). `/` may contain matches as soon as there is a pattern.
    pub fn may_contain_matches(&self, dir: &Path) -> bool {
        let Some(dirs) = components(dir) else {
            return false;
        };
        self.patterns
            .iter()
            .any(|p| p.may_contain(&dirs, self.max_depth))
            && !self.dirs_excluded(&dirs)
    }

    /// Walks the file system. Each pattern is walked breadth-first from its
    /// wildcard-free prefix; a directory reached twice (through symlinks) at
    /// the same pattern level is read only once, which also breaks loops.
    pub fn scan(&self) -> Scan {
        let mut out = Scan::default();
        for pattern in &self.patterns {
            self.scan_pattern(pattern, &mut out);
        }
        out.files.sort_unstable();
        out.files.dedup();
        out.dirs.sort_unstable();
        out.dirs.dedup();
        out
    }

    fn scan_pattern(&self, pattern: &FilePattern, out: &mut Scan) {
        let base = pattern.base();
        let Some(base_dirs) = components(&base) else {
            return;
        };
        if self.dirs_excluded(&base_dirs) {
            return;
        }
        let meta = match fs::metadata(&base) {
            Ok(meta) if meta.is_dir() => meta,
            Ok(_) => return,
            Err(err) => return record_error(out, base, err),
        };
        // Key (dev, inode, level): the same directory at the same pattern
        // level always yields the same matches, so reading it again is
        // redundant (and infinite for symlink loops). BFS makes the first
        // visit the shallowest, i.e. the one with the most `**` depth left.
        let mut visited = HashSet::new();
        visited.insert((meta.dev(), meta.ino(), pattern.literal_prefix));
        let mut queue = VecDeque::new();
        queue.push_back(Pending {
            path: base,
            level: pattern.literal_prefix,
            depth: 0,
            dev: meta.dev(),
        });
        while let Some(dir) = queue.pop_front() {
            self.read_dir(pattern, dir, &mut visited, &mut queue, out);
        }
    }

    /// Reads one directory: collects matching files, queues matching subdirs.
    fn read_dir(
        &self,
        pattern: &FilePattern,
        dir: Pending,
        visited: &mut HashSet<(u64, u64, usize)>,
        queue: &mut VecDeque<Pending>,
        out: &mut Scan,
    ) {
        let entries = match fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            Err(err) => return record_error(out, dir.path, err),
        };
        out.dirs.push(dir.path.clone());
        let dir_pattern = pattern.dirs.get(dir.level);
        let at_files = dir_pattern.is_none();
        let (next_level, next_depth, descend) = match dir_pattern {
            Some(_) => (dir.level + 1, 0, true),
            None => (
                dir.level,
                dir.depth + 1,
                pattern.recursive && dir.depth < self.max_depth,
            ),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    record_error(out, dir.path.clone(), err);
                    continue;
                }
            };
            let name = entry.file_name();
            let name = name.as_bytes();
            let want_file = at_files && component_matches(&pattern.file, name);
            let want_dir = descend && dir_pattern.is_none_or(|p| component_matches(p, name));
            if !want_file && !want_dir {
                continue;
            }
            let path = entry.path();
            // file_type() comes from the dirent; only symlinks cost a stat.
            let (is_dir, dev, ino) = match entry.file_type() {
                Ok(ft) if ft.is_symlink() => match fs::metadata(&path) {
                    Ok(meta) => (meta.is_dir(), meta.dev(), meta.ino()),
                    Err(err) => {
                        record_error(out, path, err);
                        continue;
                    }
                },
                Ok(ft) => (ft.is_dir(), dir.dev, entry.ino()),
                Err(err) => {
                    record_error(out, path, err);
                    continue;
                }
            };
            let path_bytes = path.as_os_str().as_bytes();
            if is_dir {
                if want_dir
                    && !self.dir_excluded(path_bytes)
                    && visited.insert((dev, ino, next_level))
                {
                    queue.push_back(Pending {
                        path,
                        level: next_level,
                        depth: next_depth,
                        dev,
                    });
                }
            } else if want_file && !self.file_excluded(path_bytes, name) {
                out.files.push(path);
            }
        }
    }

    /// Exclusion check for a file given as components.
    fn path_excluded(&self, dirs: &[&[u8]], name: &[u8]) -> bool {
        if self.dirs_excluded(dirs) {
            return true;
        }
        let mut full = Vec::new();
        for comp in dirs.iter().chain(std::iter::once(&name)) {
            full.push(b'/');
            full.extend_from_slice(comp);
        }
        self.file_excluded(&full, name)
    }

    /// Whether the directory given as components, or any ancestor below `/`,
    /// matches `ExcludeDirs`.
    fn dirs_excluded(&self, dirs: &[&[u8]]) -> bool {
        if self.exclude_dirs.is_empty() {
            return false;
        }
        let mut prefix = Vec::new();
        dirs.iter().any(|comp| {
            prefix.push(b'/');
            prefix.extend_from_slice(comp);
            self.dir_excluded(&prefix)
        })
    }

    /// `ExcludeDirs` check of one directory path (ancestors not included).
    fn dir_excluded(&self, dir: &[u8]) -> bool {
        self.exclude_dirs.iter().any(|p| wildcard_match(p, dir))
    }

    /// `ExcludeFiles` and `ExcludeFilePaths` checks.
    fn file_excluded(&self, path: &[u8], name: &[u8]) -> bool {
        self.exclude_files
            .iter()
            .any(|p| component_matches(p, name))
            || self
                .exclude_file_paths
                .iter()
                .any(|p| wildcard_match(p, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

    fn touch(path: &Path) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, b"x").unwrap();
    }

    fn root_str(tmp: &TempDir) -> String {
        tmp.path().to_str().unwrap().to_owned()
    }

    fn matcher(paths: &[String], depth: u32) -> PathMatcher {
        PathMatcher::new(&PathsSpec {
            file_paths: paths.to_vec(),
            max_dir_search_depth: depth,
            ..PathsSpec::default()
        })
        .unwrap()
    }

    /// Scanned files relative to the temp root, as strings.
    fn found(m: &PathMatcher, tmp: &TempDir) -> Vec<String> {
        let scan = m.scan();
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
        rel(&scan.files, tmp)
    }

    fn rel(paths: &[PathBuf], tmp: &TempDir) -> Vec<String> {
        paths
            .iter()
            .map(|f| {
                let r = f.strip_prefix(tmp.path()).unwrap();
                r.to_string_lossy().into_owned()
            })
            .collect()
    }

    fn tree(files: &[&str]) -> TempDir {
        let tmp = TempDir::new().unwrap();
        for f in files {
            touch(&tmp.path().join(f));
        }
        tmp
    }

    fn err(spec: PathsSpec) -> String {
        PathMatcher::new(&spec).unwrap_err().to_string()
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    // ---- component matcher -------------------------------------------

    #[test]
    fn component_matcher_basics() {
        assert!(component_matches(b"*.log", b"a.log"));
        assert!(component_matches(b"*.log", b".log"));
        assert!(!component_matches(b"*.log", b"a.log.1"));
        assert!(component_matches(b"a?c", b"abc"));
        assert!(!component_matches(b"a?c", b"ac"));
        assert!(component_matches(b"*", b""));
        assert!(!component_matches(b"", b"a"));
        assert!(component_matches(b"a*b*c", b"aXbYbZc"));
        assert!(!component_matches(b"*", b"a/b"));
        assert!(component_matches(b"*/*", b"a/b"));
        assert!(!component_matches(b"?", b"/"));
        assert!(component_matches(b"caf\xe9*", b"caf\xe9.log"));
        assert!(wildcard_match(b"/a/*.log", b"/a/b/c.log"));
    }

    fn naive(p: &[u8], n: &[u8], slash_special: bool) -> bool {
        let one = |n: &[u8]| n.first().is_some_and(|&c| !slash_special || c != b'/');
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => {
                naive(rest, n, slash_special) || (one(n) && naive(p, &n[1..], slash_special))
            }
            Some((b'?', rest)) => one(n) && naive(rest, &n[1..], slash_special),
            Some((c, rest)) => n.first() == Some(c) && naive(rest, &n[1..], slash_special),
        }
    }

    fn bytes_of(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
    }

    proptest! {
        #[test]
        fn component_matcher_agrees_with_naive(
            p in bytes_of(b"ab*?", 9),
            n in bytes_of(b"ab", 9),
        ) {
            prop_assert_eq!(component_matches(&p, &n), naive(&p, &n, true));
        }

        #[test]
        fn component_matcher_with_slashes_agrees_with_naive(
            p in bytes_of(b"ab*?/", 9),
            n in bytes_of(b"ab/", 9),
        ) {
            prop_assert_eq!(component_matches(&p, &n), naive(&p, &n, true));
        }

        #[test]
        fn exclude_matcher_agrees_with_naive(
            p in bytes_of(b"ab*?/", 9),
            n in bytes_of(b"ab/", 9),
        ) {
            prop_assert_eq!(wildcard_match(&p, &n), naive(&p, &n, false));
        }

        #[test]
        fn arbitrary_specs_and_paths_never_panic(
            pat in "[/a*?.]{0,12}",
            ex in "[/a*?.]{0,6}",
            path in proptest::collection::vec(any::<u8>(), 0..24),
            depth in 0u32..1200,
        ) {
            let spec = PathsSpec {
                file_paths: vec![pat],
                max_dir_search_depth: depth,
                exclude_dirs: vec![ex.clone()],
                exclude_file_paths: vec![ex.clone()],
                exclude_files: vec![ex],
            };
            if let Ok(m) = PathMatcher::new(&spec) {
                let path = Path::new(OsStr::from_bytes(&path));
                m.matches(path);
                m.may_contain_matches(path);
            }
        }
    }

    // ---- wildcards -----------------------------------------------------

    #[test]
    fn literal_pattern() {
        let tmp = tree(&["app/a.log", "app/b.log"]);
        let m = matcher(&[format!("{}/app/a.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["app/a.log"]);
    }

    #[test]
    fn star_in_file_name() {
        let tmp = tree(&["app/a.log", "app/bb.log", "app/c.txt", "app/sub/d.log"]);
        let m = matcher(&[format!("{}/app/*.log", root_str(&tmp))], 5);
        assert_eq!(found(&m, &tmp), ["app/a.log", "app/bb.log"]);
        assert!(m.matches(&tmp.path().join("app/new.log")));
        assert!(!m.matches(&tmp.path().join("app/sub/d.log")));
    }

    #[test]
    fn question_mark() {
        let tmp = tree(&["app/a1.log", "app/a22.log", "app/a.log"]);
        let m = matcher(&[format!("{}/app/a?.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["app/a1.log"]);
    }

    #[test]
    fn wildcards_in_directories() {
        let tmp = tree(&[
            "x1/app/a.log",
            "x2/app/b.log",
            "x2/other/c.log",
            "y/app/d.log",
            "x3/app/deep/e.log",
        ]);
        let m = matcher(&[format!("{}/x?/app/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["x1/app/a.log", "x2/app/b.log"]);
        let scan = m.scan();
        // `y` and `x2/other` are never read.
        assert_eq!(
            rel(&scan.dirs, &tmp),
            ["", "x1", "x1/app", "x2", "x2/app", "x3", "x3/app"]
        );
    }

    #[test]
    fn several_patterns_are_deduplicated() {
        let tmp = tree(&["a/x.log", "a/y.txt"]);
        let r = root_str(&tmp);
        let m = matcher(
            &[
                format!("{r}/a/*.log"),
                format!("{r}/a/x.*"),
                format!("{r}/*/y.txt"),
            ],
            0,
        );
        assert_eq!(found(&m, &tmp), ["a/x.log", "a/y.txt"]);
    }

    #[test]
    fn missing_base_is_empty_not_error() {
        let tmp = tree(&[]);
        let m = matcher(&[format!("{}/nope/*/x/*.log", root_str(&tmp))], 3);
        let scan = m.scan();
        assert!(scan.files.is_empty() && scan.dirs.is_empty() && scan.errors.is_empty());
    }

    #[test]
    fn base_that_is_a_file_is_empty() {
        let tmp = tree(&["f"]);
        let m = matcher(&[format!("{}/f/*.log", root_str(&tmp))], 0);
        let scan = m.scan();
        assert!(scan.files.is_empty() && scan.errors.is_empty());
    }

    #[test]
    fn directories_are_never_files() {
        let tmp = tree(&["a/real.log"]);
        fs::create_dir(tmp.path().join("a/dir.log")).unwrap();
        let m = matcher(&[format!("{}/a/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["a/real.log"]);
    }

    // ---- `**` ----------------------------------------------------------

    fn deep_tree() -> TempDir {
        tree(&[
            "r/0.log",
            "r/a/1.log",
            "r/a/b/2.log",
            "r/a/b/c/3.log",
            "r/a/b/c/d/4.log",
        ])
    }

    #[test]
    fn recursive_depth_0() {
        let tmp = deep_tree();
        let m = matcher(&[format!("{}/r/**/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["r/0.log"]);
        assert_eq!(rel(&m.scan().dirs, &tmp), ["r"]);
    }

    #[test]
    fn recursive_depth_1() {
        let tmp = deep_tree();
        let m = matcher(&[format!("{}/r/**/*.log", root_str(&tmp))], 1);
        assert_eq!(found(&m, &tmp), ["r/0.log", "r/a/1.log"]);
    }

    #[test]
    fn recursive_depth_3() {
        let tmp = deep_tree();
        let m = matcher(&[format!("{}/r/**/*.log", root_str(&tmp))], 3);
        assert_eq!(
            found(&m, &tmp),
            ["r/0.log", "r/a/1.log", "r/a/b/2.log", "r/a/b/c/3.log"]
        );
        assert!(m.matches(&tmp.path().join("r/x/y/z/new.log")));
        assert!(!m.matches(&tmp.path().join("r/x/y/z/w/new.log")));
        // The directory holding depth-3 files is read, nothing below it.
        assert_eq!(rel(&m.scan().dirs, &tmp), ["r", "r/a", "r/a/b", "r/a/b/c"]);
    }

    #[test]
    fn recursive_after_wildcard_directory() {
        let tmp = tree(&["s1/app/a.log", "s2/app/x/b.log", "s2/other/c.log"]);
        let m = matcher(&[format!("{}/*/app/**/*.log", root_str(&tmp))], 2);
        assert_eq!(found(&m, &tmp), ["s1/app/a.log", "s2/app/x/b.log"]);
    }

    #[test]
    fn depth_without_recursive_has_no_effect() {
        let tmp = deep_tree();
        let m = matcher(&[format!("{}/r/*.log", root_str(&tmp))], 10);
        assert_eq!(found(&m, &tmp), ["r/0.log"]);
        assert!(!m.matches(&tmp.path().join("r/a/1.log")));
    }

    #[test]
    fn recursive_depth_limit() {
        let tmp = tree(&[]);
        let limit = MAX_DIR_SEARCH_DEPTH_LIMIT as usize;
        let at_limit = tmp.path().join("d/".repeat(limit)).join("in.log");
        let beyond = tmp.path().join("d/".repeat(limit + 1)).join("out.log");
        touch(&at_limit);
        touch(&beyond);
        let m = matcher(&[format!("{}/**/*.log", root_str(&tmp))], 1000);
        assert_eq!(m.scan().files, std::slice::from_ref(&at_limit));
        assert!(m.matches(&at_limit));
        assert!(!m.matches(&beyond));
    }

    // ---- excludes ------------------------------------------------------

    fn spec_with(tmp: &TempDir, f: impl FnOnce(&mut PathsSpec, &str)) -> PathMatcher {
        let r = root_str(tmp);
        let mut spec = PathsSpec {
            file_paths: vec![format!("{r}/**/*.log")],
            max_dir_search_depth: 5,
            ..PathsSpec::default()
        };
        f(&mut spec, &r);
        PathMatcher::new(&spec).unwrap()
    }

    #[test]
    fn exclude_file_paths_star_crosses_slash() {
        let tmp = tree(&["a.log", "x/b.log", "x/y/c.log", "z/d.log"]);
        let m = spec_with(&tmp, |s, r| {
            s.exclude_file_paths = vec![format!("{r}/x/*.log")]
        });
        assert_eq!(found(&m, &tmp), ["a.log", "z/d.log"]);
        assert!(!m.matches(&tmp.path().join("x/y/c.log")));
    }

    #[test]
    fn exclude_files_by_name() {
        let tmp = tree(&["a.log", "x/tmp_b.log", "x/c.log"]);
        let m = spec_with(&tmp, |s, _| s.exclude_files = vec!["tmp_*".into()]);
        assert_eq!(found(&m, &tmp), ["a.log", "x/c.log"]);
        assert!(!m.matches(&tmp.path().join("q/tmp_z.log")));
    }

    #[test]
    fn exclude_dirs_prunes_walk() {
        let tmp = tree(&[
            "a.log",
            "keep/b.log",
            "skip/c.log",
            "skip/deep/d.log",
            "k2/cache/e.log",
        ]);
        let m = spec_with(&tmp, |s, r| {
            s.exclude_dirs = vec![format!("{r}/skip/"), format!("{r}/*/cache")]
        });
        assert_eq!(found(&m, &tmp), ["a.log", "keep/b.log"]);
        let dirs = rel(&m.scan().dirs, &tmp);
        assert!(!dirs
            .iter()
            .any(|d| d.starts_with("skip") || d.ends_with("cache")));
        assert!(!m.matches(&tmp.path().join("skip/deep/d.log")));
        assert!(!m.may_contain_matches(&tmp.path().join("skip/deep")));
        assert!(m.may_contain_matches(&tmp.path().join("keep")));
    }

    #[test]
    fn excluded_base_dir_is_not_read() {
        let tmp = tree(&["app/a.log"]);
        let r = root_str(&tmp);
        let m = PathMatcher::new(&PathsSpec {
            file_paths: vec![format!("{r}/app/*.log")],
            exclude_dirs: vec![r],
            ..PathsSpec::default()
        })
        .unwrap();
        let scan = m.scan();
        assert!(scan.files.is_empty() && scan.dirs.is_empty());
    }

    // ---- symlinks and special files ------------------------------------

    #[test]
    fn symlinked_file_is_reported_by_link_path() {
        let tmp = tree(&["target/real.txt", "logs/plain.log"]);
        symlink(
            tmp.path().join("target/real.txt"),
            tmp.path().join("logs/link.log"),
        )
        .unwrap();
        symlink(
            tmp.path().join("nowhere"),
            tmp.path().join("logs/dangling.log"),
        )
        .unwrap();
        let m = matcher(&[format!("{}/logs/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["logs/link.log", "logs/plain.log"]);
    }

    #[test]
    fn symlinked_directory_is_followed() {
        let tmp = tree(&["real/x.log"]);
        fs::create_dir(tmp.path().join("logs")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("logs/linked")).unwrap();
        let m = matcher(&[format!("{}/logs/*/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["logs/linked/x.log"]);
    }

    #[test]
    fn symlink_loop_terminates() {
        let tmp = tree(&["logs/a.log", "logs/sub/b.log"]);
        symlink(tmp.path().join("logs"), tmp.path().join("logs/sub/loop")).unwrap();
        symlink("self.log", tmp.path().join("logs/self.log")).unwrap();
        let m = matcher(&[format!("{}/logs/**/*.log", root_str(&tmp))], 1000);
        let scan = m.scan();
        assert_eq!(rel(&scan.files, &tmp), ["logs/a.log", "logs/sub/b.log"]);
        assert_eq!(rel(&scan.dirs, &tmp), ["logs", "logs/sub"]);
        // The self-referencing link cannot be resolved; reported, not fatal.
        assert_eq!(scan.errors.len(), 1);
        assert_eq!(scan.errors[0].1.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn non_utf8_file_name() {
        let tmp = tree(&[]);
        let dir = tmp.path().join("app");
        fs::create_dir(&dir).unwrap();
        let name = OsStr::from_bytes(b"caf\xe9.log");
        touch(&dir.join(name));
        let m = matcher(&[format!("{}/app/caf?.log", root_str(&tmp))], 0);
        assert_eq!(m.scan().files, [dir.join(name)]);
        assert!(m.matches(&dir.join(name)));
    }

    #[test]
    fn fifo_is_included() {
        let tmp = tree(&["app/a.log"]);
        let fifo = tmp.path().join("app/pipe.log");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated string.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let m = matcher(&[format!("{}/app/*.log", root_str(&tmp))], 0);
        assert_eq!(found(&m, &tmp), ["app/a.log", "app/pipe.log"]);
    }

    #[test]
    fn unreadable_dir_is_reported() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return; // root reads everything
        }
        let tmp = tree(&["app/a.log", "app/locked/b.log"]);
        let locked = tmp.path().join("app/locked");
        fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        let m = matcher(&[format!("{}/app/**/*.log", root_str(&tmp))], 2);
        let scan = m.scan();
        fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(rel(&scan.files, &tmp), ["app/a.log"]);
        assert_eq!(scan.errors.len(), 1);
        assert_eq!(scan.errors[0].0, locked);
    }

    // ---- pure helpers ----------------------------------------------------

    #[test]
    fn matches_is_pure_and_normalizes() {
        let m = matcher(&paths(&["/var/log/*/app.log"]), 0);
        assert!(m.matches(Path::new("/var/log/x/app.log")));
        assert!(m.matches(Path::new("/var//log/./x/app.log")));
        assert!(!m.matches(Path::new("var/log/x/app.log")));
        assert!(!m.matches(Path::new("/var/log/app.log")));
        assert!(!m.matches(Path::new("/")));
        assert!(!m.matches(Path::new("")));
    }

    #[test]
    fn may_contain_matches_follows_pattern() {
        let m = matcher(&paths(&["/var/log/*/app/**/*.log"]), 2);
        for yes in [
            "/",
            "/var",
            "/var/log/x",
            "/var/log/x/app",
            "/var/log/x/app/a/b",
        ] {
            assert!(m.may_contain_matches(Path::new(yes)), "{yes}");
        }
        for no in [
            "/etc",
            "/var/log/x/other",
            "/var/log/x/app/a/b/c",
            "relative",
        ] {
            assert!(!m.may_contain_matches(Path::new(no)), "{no}");
        }
    }

    // ---- errors ----------------------------------------------------------

    fn fp(p: &str) -> PathsSpec {
        PathsSpec {
            file_paths: vec![p.into()],
            ..PathsSpec::default()
        }
    }

    #[test]
    fn glob_errors_name_pattern_and_reason() {
        assert_eq!(err(fp("")), r#"FilePaths pattern "": pattern is empty"#);
        assert_eq!(
            err(fp("a/*.log")),
            r#"FilePaths pattern "a/*.log": must be an absolute path (start with '/')"#
        );
        assert_eq!(
            err(fp("/a/**/b/**/c.log")),
            r#"FilePaths pattern "/a/**/b/**/c.log": '**' may appear only once"#
        );
        assert_eq!(
            err(fp("/a/b**/c.log")),
            r#"FilePaths pattern "/a/b**/c.log": '**' must be a whole path component"#
        );
        assert_eq!(
            err(fp("/a/**.log")),
            r#"FilePaths pattern "/a/**.log": '**' must be a whole path component"#
        );
        let not_last = "'**' must be the last directory component, directly before the file name";
        assert_eq!(
            err(fp("/a/**/b/c.log")),
            format!(r#"FilePaths pattern "/a/**/b/c.log": {not_last}"#)
        );
        assert_eq!(
            err(fp("/a/**")),
            format!(r#"FilePaths pattern "/a/**": {not_last}"#)
        );
        assert_eq!(
            err(fp("/a/b/")),
            r#"FilePaths pattern "/a/b/": ends with '/', there is no file name"#
        );
        assert_eq!(
            err(fp("/")),
            r#"FilePaths pattern "/": ends with '/', there is no file name"#
        );
        assert_eq!(
            err(fp("/a/\0.log")),
            r#"FilePaths pattern "/a/\0.log": contains a NUL byte"#
        );
        let mut deep = fp("/a/**/*.log");
        deep.max_dir_search_depth = 1001;
        assert_eq!(err(deep), "MaxDirSearchDepth 1001: must be at most 1000");
        let mut ok = fp("/a/**/*.log");
        ok.max_dir_search_depth = 1000;
        assert!(PathMatcher::new(&ok).is_ok());
    }

    #[test]
    fn exclude_errors_name_field() {
        let spec = |f: fn(&mut PathsSpec)| {
            let mut s = fp("/a/*.log");
            f(&mut s);
            err(s)
        };
        assert_eq!(
            spec(|s| s.exclude_file_paths = vec!["x.log".into()]),
            r#"ExcludeFilePaths pattern "x.log": must be an absolute path (start with '/')"#
        );
        assert_eq!(
            spec(|s| s.exclude_file_paths = vec!["/x/".into()]),
            r#"ExcludeFilePaths pattern "/x/": ends with '/', there is no file name"#
        );
        assert_eq!(
            spec(|s| s.exclude_files = vec!["a/b".into()]),
            r#"ExcludeFiles pattern "a/b": a file-name pattern must not contain '/'"#
        );
        assert_eq!(
            spec(|s| s.exclude_files = vec![String::new()]),
            r#"ExcludeFiles pattern "": pattern is empty"#
        );
        assert_eq!(
            spec(|s| s.exclude_dirs = vec!["tmp".into()]),
            r#"ExcludeDirs pattern "tmp": must be an absolute path (start with '/')"#
        );
        assert_eq!(
            spec(|s| s.exclude_dirs = vec!["/t\0".into()]),
            r#"ExcludeDirs pattern "/t\0": contains a NUL byte"#
        );
    }

    // ---- scale -----------------------------------------------------------

    #[test]
    fn ten_thousand_files_in_one_dir() {
        let tmp = tree(&[]);
        let dir = tmp.path().join("many");
        fs::create_dir(&dir).unwrap();
        for i in 0..10_000 {
            fs::write(dir.join(format!("f{i:05}.log")), b"").unwrap();
        }
        fs::write(dir.join("other.txt"), b"").unwrap();
        let m = matcher(&[format!("{}/many/*.log", root_str(&tmp))], 0);
        let start = std::time::Instant::now();
        let scan = m.scan();
        let elapsed = start.elapsed();
        assert_eq!(scan.files.len(), 10_000);
        assert!(scan.files.windows(2).all(|w| w[0] < w[1]));
        assert!(scan.files.iter().all(|f| m.matches(f)));
        eprintln!("scan of 10 000 files took {elapsed:?}");
    }
}
