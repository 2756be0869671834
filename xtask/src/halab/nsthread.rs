//! A thread that lives in one lab namespace: it enters the namespace, opens what it needs there (sockets
//! opened by a thread belong to that thread's namespace), reports whether that worked, then runs until
//! it is told to stop. Every observer, the echo server and the client are one of these.

use super::sys;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A running namespace thread; stopped and joined by [`NsThread::finish`] or on drop.
#[derive(Debug)]
pub struct NsThread {
    what: &'static str,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl NsThread {
    /// Starts `what` in namespace `ns`: `setup` runs there first (its error is returned here), then
    /// `run` with the setup's result and the stop flag. The thread gets a low real-time priority, so
    /// what it stamps with the clock is stamped when it happens even on a loaded machine.
    pub fn spawn<S: 'static>(
        what: &'static str,
        ns: &str,
        setup: impl FnOnce() -> Result<S> + Send + 'static,
        run: impl FnOnce(S, &AtomicBool) -> Result<()> + Send + 'static,
    ) -> Result<NsThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let name = ns.to_string();
        let ns = ns.to_string();
        let handle = std::thread::spawn(move || -> Result<()> {
            sys::realtime_thread();
            match sys::enter_netns(&ns).and_then(|()| setup()) {
                Ok(state) => {
                    let _ = tx.send(Ok(()));
                    run(state, &flag)
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    Ok(())
                }
            }
        });
        rx.recv()
            .map_err(|_| anyhow!("the {what} thread died while starting"))?
            .with_context(|| format!("starting the {what} in {name}"))?;
        Ok(NsThread {
            what,
            stop,
            handle: Some(handle),
        })
    }

    /// Tells the thread to stop and waits for it; returns its error, if it had one.
    pub fn finish(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow!("the {} thread panicked", self.what))?,
            None => Ok(()),
        }
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
