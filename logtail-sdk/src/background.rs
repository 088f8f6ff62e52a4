//! A named thread that runs until it is told to stop: what [`Fleet`]'s
//! heartbeat and [`IdentityWatcher`]'s refresh both are.
//!
//! [`Fleet`]: crate::fleet::client::Fleet
//! [`IdentityWatcher`]: crate::host::IdentityWatcher

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

/// The thread and the sender whose drop tells it to stop. Stopping (or
/// dropping) closes the channel, so the thread's `recv_timeout` on the
/// receiver returns at once, then waits for the thread to end.
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
    use std::time::{Duration, Instant};

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
