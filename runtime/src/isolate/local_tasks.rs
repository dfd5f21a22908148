//! Work the front door runs on an isolate's own thread, beside the isolate: serving a
//! connection whose requests go to that isolate, so they reach it and their responses come back
//! without crossing threads (no channel wake-ups, no context switches on the hot path).
//!
//! The isolate's thread spawns every [`LocalTask`] it is handed on its event loop (outside the
//! isolate's turns, so the tenant is not charged for it and the watchdog never stops it). When
//! the isolate stops, every task is told so through its [`Stopping`] signal and the thread
//! keeps running them, without an isolate, until they have all finished (a task must end in
//! its own time once told); a task that arrives after that is handed back to the sender. A
//! thread never hosts a second isolate.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// A task for an isolate's thread: given the signal that the isolate stopped, it returns the
/// future to run there.
pub type LocalTask =
    Box<dyn FnOnce(Stopping) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static>;

/// Fires once the isolate a [`LocalTask`] runs beside has stopped: the task should wind down
/// and end in its own time (a connection: once it has been idle for a moment).
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// A signal that never fires (for tasks run where no isolate can stop under them).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive for the life of the process: a dropped sender would read as a
        // stop.
        std::mem::forget(tx);
        Self(rx)
    }

    /// Resolves when the isolate has stopped.
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which only happens once the isolate has stopped.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

/// The isolate thread's side: spawns tasks as they arrive, then stops and drains them. Runs as
/// a task of its own on the isolate thread's event loop, apart from the isolate's, so taking
/// many connections at once never spends the isolate's cooperative budget (a spent budget makes
/// the isolate's channels look empty for the rest of its turn).
pub(crate) struct LocalTasks {
    rx: mpsc::UnboundedReceiver<LocalTask>,
    stop: watch::Sender<bool>,
    running: JoinSet<()>,
}

impl LocalTasks {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<LocalTask>) -> Self {
        Self {
            rx,
            stop: watch::channel(false).0,
            running: JoinSet::new(),
        }
    }

    /// Spawns every task that arrives until `stop` fires (or is dropped), then [drains](Self::drain).
    /// Must run on the isolate thread's event loop.
    pub(crate) async fn run(mut self, stop: tokio::sync::oneshot::Receiver<()>) {
        tokio::select! {
            never = self.accept() => match never {},
            _ = stop => {}
        }
        self.drain().await;
    }

    /// Spawns every task that arrives, until the future is dropped (it never completes).
    async fn accept(&mut self) -> std::convert::Infallible {
        while let Some(task) = self.rx.recv().await {
            self.spawn(task);
            // Reap finished tasks as we go, so a long-lived isolate does not keep their results.
            while self.running.try_join_next().is_some() {}
        }
        // Every sender is gone (the tenant dropped its handle): nothing more will arrive.
        std::future::pending().await
    }

    fn spawn(&mut self, task: LocalTask) {
        let stopping = Stopping(self.stop.subscribe());
        self.running.spawn(task(stopping));
    }

    /// The isolate stopped: take no more tasks, tell every task, and run them until they end.
    async fn drain(mut self) {
        self.rx.close();
        while let Ok(task) = self.rx.try_recv() {
            self.spawn(task);
        }
        let _ = self.stop.send(true);
        while self.running.join_next().await.is_some() {}
    }
}
