//! Copying out of a memory map without dying of SIGBUS.
//!
//! Touching a mapped page that lies beyond the end of a file that was
//! truncated after it was mapped raises SIGBUS, which kills the process by
//! default. Every copy out of a map therefore goes through
//! [`guarded_copy`]: it registers the source range in a lock-free table,
//! and a process-wide SIGBUS handler that finds the faulting address in
//! that table maps a zero page over it and lets the copy finish. The copy
//! then reports [`Faulted`] and the caller throws the bytes away (the file
//! was truncated: the rotation detector takes over). Faults at addresses we
//! did not register are passed to the previous handler, or kill the process
//! as they would have without us.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// The copy touched pages that no longer existed in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mapped file shrank while it was being read")]
pub struct Faulted;

const SLOTS: usize = 64;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    faults: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static FAULTS: AtomicUsize = AtomicUsize::new(0);

/// How many faults the handler has turned into errors in this process.
pub fn faults_handled() -> u64 {
    FAULTS.load(Ordering::Relaxed) as u64
}
static INSTALL: Once = Once::new();
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// The page size, looked up by [`install`] before the handler can run: the
/// handler itself only reads it (sysconf is not async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// Copies `len` bytes from `src` (inside a live memory map) to `dst`.
///
/// # Safety
/// `src..src+len` must lie inside a mapping that stays mapped for the whole
/// call, and `dst` must be valid for `len` bytes of writes.
pub unsafe fn guarded_copy(src: *const u8, dst: *mut u8, len: usize) -> Result<(), Faulted> {
    install();
    let slot = claim(src as usize, len);
    // SAFETY: the caller guarantees both ranges; a fault in `src` is turned
    // into zeros by the handler while the slot is registered.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
    let faults = match slot {
        Some(i) => release(i),
        None => 0,
    };
    if faults > 0 {
        Err(Faulted)
    } else {
        Ok(())
    }
}

/// Registers a range; `None` when every slot is busy (then the copy runs
/// unguarded, which only matters if the file shrinks at that very moment).
fn claim(start: usize, len: usize) -> Option<usize> {
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.faults.store(0, Ordering::Release);
            slot.len.store(len, Ordering::Release);
            return Some(i);
        }
    }
    tracing::warn!("all {SLOTS} SIGBUS guard slots busy; copying unguarded");
    None
}

fn release(i: usize) -> usize {
    let slot = &TABLE[i];
    let faults = slot.faults.load(Ordering::Acquire);
    slot.len.store(0, Ordering::Release);
    slot.start.store(0, Ordering::Release);
    faults
}

/// Installs the handler (once per process) after looking up the page size
/// it needs. [`guarded_copy`] calls it; calling it earlier is harmless.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf outside any signal handler, for a constant.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE.store(
            usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096),
            Ordering::Release,
        );
        // SAFETY: plain sigaction setup; the handler only uses atomics and
        // the async-signal-safe syscalls mmap and sigaction.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut old) == 0 {
                let _ = PREVIOUS.set(old);
            } else {
                tracing::error!(
                    "cannot install the SIGBUS handler: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    });
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in TABLE.iter() {
        let start = slot.start.load(Ordering::Acquire);
        let len = slot.len.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr < start.saturating_add(len) {
            slot.faults.fetch_add(1, Ordering::AcqRel);
            FAULTS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: replaces the one faulting page of our own mapping with
            // an anonymous zero page, so the interrupted copy can go on.
            unsafe {
                let page = page_size();
                let base = addr & !(page - 1);
                let p = libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                );
                if p != libc::MAP_FAILED {
                    return;
                }
            }
        }
    }
    // Not ours: behave as if we had never been installed.
    // SAFETY: reinstalling the previous disposition and re-raising (or
    // calling the previous handler) is what a chaining handler does.
    unsafe {
        match PREVIOUS.get().copied() {
            Some(prev)
                if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN =>
            {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(prev.sa_sigaction);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                    f(sig);
                }
            }
            _ => {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
                // Returning re-executes the faulting access, which now kills
                // the process with SIGBUS as it would have without us.
            }
        }
    }
}

/// The page size [`install`] looked up; only an atomic load, so the
/// handler may call it. (The handler runs only once `install` stored it;
/// 4096 is a fallback that cannot be reached.)
fn page_size() -> usize {
    match PAGE.load(Ordering::Acquire) {
        0 => 4096,
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_page_size_is_known_once_the_handler_is_installed() {
        install();
        // SAFETY: sysconf for a constant.
        let expected = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert_eq!(PAGE.load(Ordering::Acquire), expected);
        assert_eq!(page_size(), expected);
    }

    #[test]
    fn copy_from_truncated_map_reports_fault_instead_of_crashing() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![b'x'; 64 * 1024]).unwrap();
        // SAFETY: test-owned file; the point is to truncate it under the map.
        let map = unsafe { memmap2::Mmap::map(&f).unwrap() };
        let mut dst = vec![0u8; map.len()];
        // SAFETY: both ranges are map.len() bytes long, map's readable.
        unsafe { guarded_copy(map.as_ptr(), dst.as_mut_ptr(), map.len()) }.unwrap();
        assert!(dst.iter().all(|&b| b == b'x'));
        f.set_len(100).unwrap();
        // SAFETY: as above; the truncated pages fault, which is the test.
        let r = unsafe { guarded_copy(map.as_ptr(), dst.as_mut_ptr(), map.len()) };
        assert_eq!(r, Err(Faulted));
        // The head that still exists was copied.
        assert!(dst[..100].iter().all(|&b| b == b'x'));
    }
}
