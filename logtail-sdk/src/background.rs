//! Stopping threads, the one way the SDK does it: a channel that
//! disconnects. The owner holds a [`Stopper`] (a sender that never sends);
//! dropping it disconnects the channel, which wakes every thread blocked
//! on the matching [`StopSignal`] at once (no flag polled in a sleep loop).
//!
//! [`Background`] is a named thread run that way: what [`Fleet`]'s
//! heartbeat and [`IdentityWatcher`]'s refresh both are. The pipeline's
//! stages and `flusher_sls`'s senders and replayer stop through
//! [`StopSignal`]s, and [`Exits`] tells when a group of threads has ended.
//!
//! [`Fleet`]: crate::fleet::client::Fleet
//! [`IdentityWatcher`]: crate::host::IdentityWatcher

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

/// A stop signal's sending half: dropping it tells every [`StopSignal`] of
/// the pair to stop (it never sends).
#[derive(Debug)]
pub(crate) struct Stopper {
    _tx: Sender<()>,
}

/// A stop signal's watching half (cloneable: one per thread).
#[derive(Debug, Clone)]
pub(crate) struct StopSignal(Receiver<()>);

/// A new stop signal: the [`Stopper`] and the first [`StopSignal`].
pub(crate) fn stop_signal() -> (Stopper, StopSignal) {
    let (tx, rx) = crossbeam_channel::bounded(0);
    (Stopper { _tx: tx }, StopSignal(rx))
}

impl StopSignal {
    /// Whether the stop was given.
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self.0.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Sleeps `d`, waking at once when the stop is given: `true` if the
    /// whole time passed, `false` if stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        !matches!(self.0.recv_timeout(d), Err(RecvTimeoutError::Disconnected))
    }

    /// The channel, for `select!`: it never delivers, it disconnects.
    pub(crate) fn receiver(&self) -> &Receiver<()> {
        &self.0
    }
}

/// Tells when a group of threads has ended: each holds an [`ExitToken`]
/// and drops it when it ends (a panic drops it too).
#[derive(Debug)]
pub(crate) struct Exits(Receiver<()>);

/// Held by a thread of an [`Exits`] group for as long as it runs.
#[derive(Debug, Clone)]
pub(crate) struct ExitToken {
    _alive: Sender<()>,
}

/// A new group: the [`Exits`] and the token to clone into each thread.
pub(crate) fn exits() -> (ExitToken, Exits) {
    let (tx, rx) = crossbeam_channel::bounded(0);
    (ExitToken { _alive: tx }, Exits(rx))
}

impl Exits {
    /// Waits until every thread of the group ended (`true`), or until
    /// `deadline` (`false`).
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        loop {
            match self
                .0
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
                // Tokens never send; should one, keep waiting.
                Ok(()) => {}
            }
        }
    }
}

/// The thread and the sender whose drop tells it to stop. Stopping (or
/// dropping) closes the channel, so the thread's `recv_timeout` on the
/// receiver returns at once, then waits for the thread to end.
/// (Its closure gets the bare receiver; [`StopSignal`] wraps the same.)
#[derive(Debug)]
pub(crate) struct Background {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Spawns `run` on a thread called `name`; `run` gets the receiver
    /// that disconnects when it is to stop.
    pub(crate) fn spawn(
        name: &str,
        run: impl FnOnce(Receiver<()>) + Send + 'static,
    ) -> std::io::Result<Background> {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(stopped))?;
        Ok(Background {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Tells the thread to stop and waits for it (a panic in it is not
    /// passed on: it already ended the thread's work).
    pub(crate) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_stop_signal_wakes_sleepers_at_once() {
        let (stopper, signal) = stop_signal();
        assert!(!signal.is_stopped());
        assert!(signal.sleep(Duration::from_millis(1)), "not stopped");
        let watcher = signal.clone();
        let t = std::thread::spawn(move || watcher.sleep(Duration::from_secs(60)));
        let start = Instant::now();
        drop(stopper);
        assert!(!t.join().unwrap(), "woken by the stop");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(signal.is_stopped());
        assert!(!signal.sleep(Duration::from_secs(60)));
    }

    #[test]
    fn exits_tell_when_every_thread_ended() {
        let (token, exits) = exits();
        let soon = Instant::now() + Duration::from_millis(20);
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let t = {
            let token = token.clone();
            std::thread::spawn(move || {
                let _token = token;
                let _ = wait.recv();
            })
        };
        drop(token);
        assert!(!exits.wait_until(soon), "one thread still runs");
        drop(go);
        t.join().unwrap();
        assert!(exits.wait_until(Instant::now() + Duration::from_secs(10)));
    }

    #[test]
    fn stop_wakes_a_waiting_thread_and_joins_it() {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ended);
        let mut bg = Background::spawn("bg-test", move |stopped| {
            // Waits "forever" unless the channel disconnects.
            let _ = stopped.recv_timeout(Duration::from_secs(60));
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
        let t = Instant::now();
        bg.stop();
        assert!(ended.load(Ordering::SeqCst));
        assert!(t.elapsed() < Duration::from_secs(10));
        // Stopping again (and the drop) is a no-op.
        bg.stop();
    }
}
