//! One open file: its identity and the bytes after a position.
//!
//! Regular files are read through a memory map (large reads) or `pread`
//! (small reads, where setting up a mapping costs more than the copy);
//! copies out of the map go through [`super::sigbus::guarded_copy`], so a
//! file truncated under the map is reported, not fatal. Files that cannot be
//! mapped (FIFOs, character devices) are read as streams.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use memmap2::{Mmap, MmapOptions};

use super::fingerprint::{FileId, Signature, SIGNATURE_BYTES};
use super::sigbus::guarded_copy;

/// Reads smaller than this use `pread` instead of the map.
const MAP_MIN: usize = 64 * 1024;

/// What `fstat` says about an open file right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Current size (for streams: bytes read so far plus what is buffered).
    pub size: u64,
    /// Hard links left; 0 once the file was deleted.
    pub nlink: u64,
}

/// The result of a read.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Bytes starting at the requested offset (possibly empty: nothing new).
    Data(Bytes),
    /// The file is shorter than the requested offset, or shrank while it was
    /// being read: it was truncated.
    Truncated,
}

enum Kind {
    Regular {
        map: Option<(u64, Mmap)>,
    },
    /// `buf` holds the stream's bytes from offset `base` on: what the
    /// caller has not consumed yet, so it can be presented again.
    Stream {
        base: u64,
        buf: Vec<u8>,
    },
}

/// An open file being tailed.
pub struct OpenFile {
    file: File,
    id: FileId,
    kind: Kind,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile").field("id", &self.id).finish()
    }
}

/// Opening a file failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {path}: {source}")]
pub struct OpenError {
    /// The path.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl OpenFile {
    /// Opens `path` (following symlinks) for reading, without blocking on FIFOs.
    pub fn open(path: &Path) -> Result<OpenFile, OpenError> {
        let err = |source| OpenError {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        let id = FileId {
            dev: meta.dev(),
            inode: meta.ino(),
        };
        let kind = if meta.file_type().is_file() {
            Kind::Regular { map: None }
        } else {
            Kind::Stream {
                base: 0,
                buf: Vec::new(),
            }
        };
        Ok(OpenFile { file, id, kind })
    }

    /// The underlying file.
    pub fn raw(&self) -> &File {
        &self.file
    }

    /// Device and inode.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Whether this is a stream (pipe, device) rather than a regular file.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }

    /// Size and link count now.
    pub fn state(&self) -> io::Result<FileState> {
        let meta = self.file.metadata()?;
        let size = match self.kind {
            Kind::Regular { .. } => meta.len(),
            // A stream has no size: pretend one more byte may always be
            // there, so the caller keeps trying to read (a FIFO that hit EOF
            // gets data again when a writer reopens it).
            Kind::Stream { base, ref buf } => base + buf.len() as u64 + 1,
        };
        Ok(FileState {
            size,
            nlink: meta.nlink(),
        })
    }

    /// The file's first (up to) [`SIGNATURE_BYTES`] bytes as they are now
    /// (streams: none).
    pub fn head(&self) -> io::Result<Vec<u8>> {
        let mut head = vec![0u8; SIGNATURE_BYTES];
        if self.is_stream() {
            head.clear();
            return Ok(head);
        }
        let mut n = 0;
        while n < head.len() {
            match self.file.read_at(&mut head[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        head.truncate(n);
        Ok(head)
    }

    /// The signature of the file's head as it is now.
    pub fn signature(&self) -> io::Result<Signature> {
        Ok(Signature::of(&self.head()?))
    }

    /// Reads up to `max` bytes starting at `offset`, given the size seen by
    /// [`OpenFile::state`].
    pub fn read(&mut self, offset: u64, size: u64, max: usize) -> io::Result<ReadOutcome> {
        match &mut self.kind {
            Kind::Stream { base, buf } => {
                // Forget what the caller consumed, then top up.
                let drop = usize::try_from(offset.saturating_sub(*base))
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                buf.drain(..drop);
                *base += drop as u64;
                let want = max.min(1 << 20);
                if buf.len() < want {
                    let old = buf.len();
                    buf.resize(want, 0);
                    let got = match (&self.file).read(&mut buf[old..]) {
                        Ok(n) => n,
                        // No writer has data for us now (or none is connected).
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                        Err(e) => {
                            buf.truncate(old);
                            return Err(e);
                        }
                    };
                    buf.truncate(old + got);
                }
                Ok(ReadOutcome::Data(Bytes::copy_from_slice(
                    &buf[..buf.len().min(max)],
                )))
            }
            Kind::Regular { map } => {
                if size < offset {
                    return Ok(ReadOutcome::Truncated);
                }
                let len = usize::try_from(size - offset)
                    .unwrap_or(usize::MAX)
                    .min(max);
                if len == 0 {
                    return Ok(ReadOutcome::Data(Bytes::new()));
                }
                if len < MAP_MIN {
                    *map = None;
                    return pread_exact(&self.file, offset, len);
                }
                copy_from_map(&self.file, map, offset, len)
            }
        }
    }
}

fn pread_exact(file: &File, offset: u64, len: usize) -> io::Result<ReadOutcome> {
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            // Shorter than fstat said a moment ago: truncated meanwhile.
            Ok(0) => return Ok(ReadOutcome::Truncated),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ReadOutcome::Data(Bytes::from(buf)))
}

/// Copies `[offset, offset+len)` out of a map of the file, (re)mapping a
/// window that starts at `offset`'s page when the current one does not
/// cover the range.
fn copy_from_map(
    file: &File,
    map: &mut Option<(u64, Mmap)>,
    offset: u64,
    len: usize,
) -> io::Result<ReadOutcome> {
    let end = offset + len as u64;
    let covered =
        matches!(map, Some((start, m)) if *start <= offset && *start + m.len() as u64 >= end);
    if !covered {
        *map = None;
        let page = page_size();
        let start = offset - offset % page;
        let map_len = usize::try_from(end - start)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "window too large"))?;
        // SAFETY: the map is only read through `guarded_copy`, which turns
        // a truncation under the map into an error instead of SIGBUS.
        let m = unsafe { MmapOptions::new().offset(start).len(map_len).map(file)? };
        let _ = m.advise(memmap2::Advice::Sequential);
        *map = Some((start, m));
    }
    let Some((start, m)) = map.as_ref() else {
        return Err(io::Error::other("map missing after mapping"));
    };
    let at = (offset - start) as usize;
    let mut buf = BytesMut::with_capacity(len);
    // SAFETY: `at + len <= m.len()` by construction of the window, `buf` has
    // `len` bytes of capacity, and the map lives for the whole call.
    let copied = unsafe { guarded_copy(m.as_ptr().add(at), buf.as_mut_ptr(), len) };
    match copied {
        Ok(()) => {
            // SAFETY: `guarded_copy` initialised `len` bytes.
            unsafe { buf.set_len(len) };
            Ok(ReadOutcome::Data(buf.freeze()))
        }
        Err(_) => {
            // Pages of the map were replaced by zeros: never use it again.
            *map = None;
            Ok(ReadOutcome::Truncated)
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: constant query.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}
