//! inotify as a wake-up hint.
//!
//! Directory watches tell the file input *that* something changed so it can
//! look at once instead of at the next poll. They are only a hint: the input
//! still polls, so a file system without inotify (NFS, FUSE) or a full watch
//! table costs latency, never data.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use inotify::{Inotify, WatchDescriptor, WatchMask};

/// What the watches reported since the last call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Names appeared, disappeared or moved: look for new files.
    pub names: bool,
    /// Files were written or truncated: read.
    pub data: bool,
    /// The kernel dropped events (queue overflow): do both.
    pub overflow: bool,
}

/// A set of directory watches.
pub struct Watcher {
    inotify: Inotify,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
    dirs: HashSet<PathBuf>,
    buffer: Vec<u8>,
    failed_adds: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("dirs", &self.dirs.len())
            .finish()
    }
}

impl Watcher {
    /// A watcher; `None` when inotify is not available here.
    pub fn new() -> Option<Watcher> {
        match Inotify::init() {
            Ok(inotify) => Some(Watcher {
                inotify,
                by_wd: HashMap::new(),
                dirs: HashSet::new(),
                buffer: vec![0u8; 64 * 1024],
                failed_adds: 0,
            }),
            Err(e) => {
                tracing::warn!("inotify unavailable, polling only: {e}");
                None
            }
        }
    }

    /// Watches exactly `dirs` (adds new ones, drops ones no longer listed).
    pub fn sync(&mut self, dirs: &[PathBuf]) {
        let wanted: HashSet<&PathBuf> = dirs.iter().collect();
        let stale: Vec<WatchDescriptor> = self
            .by_wd
            .iter()
            .filter(|(_, d)| !wanted.contains(d))
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in stale {
            if let Some(d) = self.by_wd.remove(&wd) {
                self.dirs.remove(&d);
            }
            // The directory may be gone already; its watch is then gone too.
            let _ = self.inotify.watches().remove(wd);
        }
        let mask = WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::MODIFY
            | WatchMask::CLOSE_WRITE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        for d in dirs {
            if self.dirs.contains(d) {
                continue;
            }
            match self.inotify.watches().add(d, mask) {
                Ok(wd) => {
                    self.by_wd.insert(wd, d.clone());
                    self.dirs.insert(d.clone());
                }
                Err(e) => {
                    self.failed_adds += 1;
                    // Polling covers this directory; say so once in a while.
                    if self.failed_adds.is_power_of_two() {
                        tracing::warn!("cannot watch {}: {e}; polling it", d.display());
                    }
                }
            }
        }
    }

    /// Number of directories watched.
    pub fn watched(&self) -> usize {
        self.dirs.len()
    }

    /// Waits up to `timeout` for events and returns what they said.
    pub fn wait(&mut self, timeout: Duration) -> Changes {
        let mut pfd = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready <= 0 {
            return Changes::default();
        }
        self.drain()
    }

    /// Reads pending events without blocking.
    pub fn drain(&mut self) -> Changes {
        let mut changes = Changes::default();
        loop {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(_) => break, // WouldBlock: nothing more
            };
            let mut any = false;
            for ev in events {
                any = true;
                let m = ev.mask;
                if m.contains(inotify::EventMask::Q_OVERFLOW) {
                    changes.overflow = true;
                }
                if m.intersects(
                    inotify::EventMask::CREATE
                        | inotify::EventMask::MOVED_TO
                        | inotify::EventMask::MOVED_FROM
                        | inotify::EventMask::DELETE
                        | inotify::EventMask::DELETE_SELF
                        | inotify::EventMask::MOVE_SELF
                        | inotify::EventMask::IGNORED,
                ) {
                    changes.names = true;
                }
                if m.intersects(inotify::EventMask::MODIFY | inotify::EventMask::CLOSE_WRITE) {
                    changes.data = true;
                }
            }
            if !any {
                break;
            }
        }
        changes
    }
}
