//! The JavaScript worker: an app's isolate, started on the first invocation, kept warm while
//! used, retired after an idle time or when the app is replaced; a failed load is answered
//! `503 load-error` and tried again with backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{IsolateHandle, IsolateSpec, LocalTask, Supervisor};
use edge_binding::AppBindings;

use crate::config::AppConfig;
use crate::error::{ErrorCode, InvokeError};
use crate::limits::{Limits, TenantStats};
use crate::tenant::TenantShared;
use crate::worker::{Invocation, LoadError, LoadResult, Worker};

enum State {
    /// No isolate; the next request starts one.
    Idle,
    /// An isolate is loading or serving.
    Running(IsolateHandle),
    /// The app failed to load; requests get 503 `load-error` until `retry_at`, when the next
    /// request loads it again (a file fixed or restored since, or a transient failure such as
    /// running out of file descriptors, then loads).
    Failed { error: LoadError, retry_at: Instant },
}

/// The wait before loading a failed app again: it doubles with each failure in a row, from
/// [`FIRST_RETRY`] up to [`LAST_RETRY`], so a broken app costs little however often it is
/// asked for.
fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(LAST_RETRY)
}

/// The wait after a first failure to load.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two loads of an app that keeps failing.
const LAST_RETRY: Duration = Duration::from_secs(300);

/// The JavaScript worker of one app: its isolate (if any), started on the first invocation,
/// warm while used, retired after an idle time; a failed load is answered `503 load-error`
/// and tried again with backoff.
pub struct JsWorker {
    app: Arc<AppConfig>,
    limits: Limits,
    stats: Arc<TenantStats>,
    bindings: AppBindings,
    shared: Arc<TenantShared>,
    state: Mutex<State>,
    /// Loads that failed in a row (0 once one succeeds).
    failures: AtomicU32,
    /// The id of the last isolate that loaded the app (0: none yet).
    loaded: AtomicU64,
    load_waiters: Mutex<Vec<oneshot::Sender<LoadResult>>>,
    /// The files this version loaded (every isolate of it runs the same code).
    sources: Arc<super::sources::Sources>,
    me: Weak<JsWorker>,
}

impl JsWorker {
    /// The worker of `app` under `limits`, with its `bindings`, and no isolate yet.
    pub fn new(
        app: Arc<AppConfig>,
        limits: Limits,
        stats: Arc<TenantStats>,
        shared: Arc<TenantShared>,
        bindings: AppBindings,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            app,
            limits,
            stats,
            bindings,
            shared,
            state: Mutex::new(State::Idle),
            failures: AtomicU32::new(0),
            loaded: AtomicU64::new(0),
            load_waiters: Mutex::new(Vec::new()),
            sources: Arc::default(),
            me: me.clone(),
        })
    }

    /// The state, with a failed app whose retry is due turned back to `Idle` (so the caller
    /// loads it again).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(&*state, State::Failed { retry_at, .. } if Instant::now() >= *retry_at) {
            tracing::info!(tenant = %self.app.name, "loading the app again after it failed");
            *state = State::Idle;
        }
        state
    }

    /// Hands a request to the tenant's isolate, starting one if needed. The reply arrives on
    /// the invocation's oneshot, whatever happens.
    fn invoke_now(&self, inv: Invocation) {
        let mut state = self.lock();
        let inv = match &*state {
            State::Failed { error, .. } => {
                let reply = error.reply(&self.app.name, self.shared.expose_errors);
                drop(state);
                let _ = inv.reply.send(Err(reply));
                return;
            }
            State::Running(handle) => match handle.send(inv) {
                Ok(()) => return,
                Err(inv) => inv,
            },
            State::Idle => inv,
        };
        match self.start(&mut state, None) {
            Ok(handle) => {
                // A fresh isolate takes every message until it stops, and it cannot stop before
                // reading its queue, so this send only fails if the thread died at birth, in
                // which case `exited` re-dispatches nothing and the reply reports it.
                let _ = handle.send(inv);
            }
            Err(e) => {
                drop(state);
                tracing::error!(tenant = %self.app.name, "cannot start an isolate thread: {}", e.error);
                let _ = inv.reply.send(Err(InvokeError::new(
                    ErrorCode::Unavailable,
                    "the node cannot start an isolate right now",
                )));
            }
        }
    }

    /// Runs `task` on the thread of the tenant's isolate, starting one if none is running, so
    /// that what the task asks of this tenant stays on that thread (the front door hands over
    /// the connections whose first request is for this tenant). Gives the task back when the
    /// tenant has no isolate to run it beside: the app failed to load, or no thread could be
    /// started.
    fn adopt_now(&self, task: LocalTask) -> Result<(), LocalTask> {
        let mut state = self.lock();
        let task = match &*state {
            State::Failed { .. } => return Err(task),
            State::Running(handle) => match handle.run(task) {
                Ok(()) => return Ok(()),
                Err(task) => task,
            },
            State::Idle => task,
        };
        // The task goes in first, so the new isolate's thread runs it before loading the app.
        match self.start(&mut state, Some(task)) {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(tenant = %self.app.name, "cannot start an isolate thread: {}", e.error);
                match e.task {
                    Some(task) => Err(task),
                    // The thread never started, so the task is still in its queue: unreachable.
                    None => Ok(()),
                }
            }
        }
    }

    /// Starts an isolate (the state must not be `Running`), `first_task` queued on its thread.
    fn start<'s>(
        &self,
        state: &'s mut State,
        first_task: Option<LocalTask>,
    ) -> Result<&'s IsolateHandle, super::SpawnError> {
        let Some(me) = self.me.upgrade() else {
            return Err(super::SpawnError {
                error: std::io::Error::other("tenant is shutting down"),
                task: first_task,
            });
        };
        let spec = IsolateSpec {
            id: self.shared.next_isolate.fetch_add(1, Ordering::Relaxed),
            app: self.app.clone(),
            snapshot: self.shared.snapshot,
            idle_timeout: self.shared.idle_timeout,
            limits: self.limits,
            stats: self.stats.clone(),
            enforce_limits: self.shared.enforce_limits,
            registry: self.shared.bindings.clone(),
            bindings: self.bindings.clone(),
            live: self.shared.isolates.clone(),
            sources: self.sources.clone(),
        };
        let handle = super::spawn(spec, me, self.shared.pool.as_ref(), first_task)?;
        *state = State::Running(handle);
        match state {
            State::Running(h) => Ok(h),
            _ => unreachable!("just set"),
        }
    }

    /// Loads the app (starting an isolate if none is running) and waits until its main module
    /// has evaluated and a handler was found, or it failed; the error names file and line.
    async fn load_now(&self) -> LoadResult {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            match &*state {
                State::Failed { error, .. } => return Err(error.clone()),
                State::Running(h) if self.loaded.load(Ordering::Acquire) == h.id => {
                    return Ok(());
                }
                _ => {}
            }
            // Waiting before the isolate starts: it may load before this thread goes on.
            self.load_waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(tx);
            if matches!(&*state, State::Idle) {
                self.start(&mut state, None)
                    .map_err(|e| LoadError::Isolate(e.error.to_string()))?;
            }
        }
        rx.await.unwrap_or(Err(LoadError::Stopped))
    }

    fn notify_loaded(&self, result: LoadResult) {
        let waiters =
            std::mem::take(&mut *self.load_waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    /// Stops taking requests for this tenant's isolate: it finishes what is in flight (and
    /// its `waitUntil` work) and stops. A later request starts a new isolate.
    fn retire_now(&self) {
        let mut state = self.lock();
        if matches!(&*state, State::Running(_)) {
            // Dropping the handle closes the isolate's queue; its host loop sees that and
            // stops once nothing is in flight.
            *state = State::Idle;
        }
    }

    /// Whether an isolate is loaded or loading.
    fn running(&self) -> bool {
        matches!(*self.lock(), State::Running(_))
    }
}

impl Supervisor for JsWorker {
    fn loaded(&self, isolate: u64) {
        tracing::debug!(tenant = %self.app.name, isolate, "app loaded");
        self.failures.store(0, Ordering::Relaxed);
        self.loaded.store(isolate, Ordering::Release);
        self.notify_loaded(Ok(()));
    }

    fn load_failed(&self, isolate: u64, error: LoadError) {
        // The retry reads the files again (they may have been fixed).
        self.sources.clear();
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let retry_in = retry_delay(failures);
        tracing::error!(
            tenant = %self.app.name,
            isolate,
            retry_in_secs = retry_in.as_secs(),
            "app failed to load: {error}"
        );
        {
            let mut state = self.lock();
            if matches!(&*state, State::Running(h) if h.id == isolate) {
                *state = State::Failed {
                    error: error.clone(),
                    retry_at: Instant::now() + retry_in,
                };
            }
        }
        self.notify_loaded(Err(error));
    }

    fn try_retire(&self, isolate: u64) -> bool {
        let mut state = self.lock();
        if matches!(&*state, State::Running(h) if h.id == isolate) {
            *state = State::Idle;
            tracing::debug!(tenant = %self.app.name, isolate, "idle isolate retired");
        }
        true
    }

    fn exited(&self, isolate: u64, leftover: Vec<Invocation>) {
        {
            let mut state = self.lock();
            if matches!(&*state, State::Running(h) if h.id == isolate) {
                *state = State::Idle;
            }
        }
        self.notify_loaded(Err(LoadError::Stopped));
        for inv in leftover {
            self.invoke_now(inv);
        }
    }
}

impl Worker for JsWorker {
    fn invoke(&self, inv: Invocation) {
        self.invoke_now(inv);
    }

    fn adopt(&self, task: LocalTask) -> Result<(), LocalTask> {
        self.adopt_now(task)
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = LoadResult> + Send + '_>> {
        Box::pin(self.load_now())
    }

    fn retire(&self) {
        self.retire_now();
    }

    fn is_running(&self) -> bool {
        self.running()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(5), Duration::from_secs(16));
        assert_eq!(retry_delay(9), Duration::from_secs(256));
        assert_eq!(retry_delay(10), LAST_RETRY);
        assert_eq!(retry_delay(u32::MAX), LAST_RETRY);
    }
}
