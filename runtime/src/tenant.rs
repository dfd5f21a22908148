//! A tenant: one app, its limits and counters, and the [`Worker`] its code runs behind: the
//! JavaScript one (`isolate::JsWorker`), or the WebAssembly one (`wasm::WasmWorker`) when the
//! app's `main` is a `.wasm` component.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::AppConfig;
use crate::error::{ErrorCode, InvokeError};
use crate::isolate::{JsWorker, LocalTask};
use crate::limits::{Limits, StatsSnapshot, TenantStats};
use crate::worker::{Event, Invocation, LoadResult, Reply, Worker};

/// What every tenant of a node shares.
pub struct TenantShared {
    /// The startup snapshot isolates restore from.
    pub snapshot: &'static [u8],
    /// How long an idle isolate stays warm.
    pub idle_timeout: Duration,
    /// Put load errors in response bodies (for `edge dev`).
    pub expose_errors: bool,
    /// Enforce CPU and wall-clock limits (off only to measure their cost).
    pub enforce_limits: bool,
    /// The bindings the node hosts: what an app's declared bindings become.
    pub bindings: edge_binding::Registry,
    /// Pre-started isolates, if the node keeps any.
    pub pool: Option<crate::isolate::WarmPool>,
    /// The engine wasm apps run on.
    pub wasm: Arc<crate::wasm::WasmEngine>,
    pub(crate) next_isolate: AtomicU64,
    /// Isolates running an app now (a stopping node waits for them).
    pub isolates: Arc<crate::server::InFlight>,
    /// Each app's counters, by name: kept across its versions for as long as the node runs.
    pub(crate) app_stats: std::sync::Mutex<std::collections::HashMap<String, Arc<TenantStats>>>,
}

impl TenantShared {
    /// Settings shared by a node's tenants, with errors kept out of responses, limits
    /// enforced and no warm pool.
    pub fn new(
        snapshot: &'static [u8],
        idle_timeout: Duration,
        bindings: edge_binding::Registry,
    ) -> Self {
        install_tls_provider();
        Self {
            snapshot,
            idle_timeout,
            expose_errors: false,
            enforce_limits: true,
            bindings,
            pool: None,
            wasm: crate::wasm::WasmEngine::new(Default::default()),
            next_isolate: AtomicU64::new(1),
            isolates: Default::default(),
            app_stats: Default::default(),
        }
    }

    /// The counters of the app named `name` (made on first use).
    fn stats_for(&self, name: &str) -> Arc<TenantStats> {
        let mut all = self.app_stats.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(name.to_string()).or_default().clone()
    }
}

/// Makes ring the process's TLS crypto provider, once. Both of rustls's providers are compiled
/// in (Deno's crates and wasmtime's each ask for one), and then rustls will not pick one for
/// code that asks for "the default" (`fetch` does, and so may an HTTP client of the CLI's):
/// without this, the first outbound `https` request would panic. A node calls it when it
/// starts; a process that makes TLS clients without a node calls it first.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One app on a node.
pub struct Tenant {
    app: Arc<AppConfig>,
    limits: Limits,
    stats: Arc<TenantStats>,
    worker: Arc<dyn Worker>,
    gate: crate::server::overload::Gate,
}

impl Tenant {
    /// A tenant for `app` under `limits`, with nothing running yet. Fails if the storage of a
    /// binding the app declares cannot be opened.
    pub fn new(
        app: AppConfig,
        limits: Limits,
        shared: Arc<TenantShared>,
    ) -> Result<Arc<Self>, crate::config::ConfigError> {
        let app = Arc::new(app);
        let stats = shared.stats_for(&app.name);
        let info = edge_binding::AppInfo {
            name: &app.name,
            memory_limit: limits.memory_bytes as u64,
        };
        let bindings = shared
            .bindings
            .configure(&info, &app.bindings)
            .map_err(|(key, e)| crate::config::ConfigError::Invalid {
                path: app.file.clone(),
                key: key.into(),
                reason: e.to_string(),
            })?;
        let is_wasm = app.main.extension().is_some_and(|e| e == "wasm");
        let worker: Arc<dyn Worker> = if is_wasm {
            crate::wasm::WasmWorker::new(app.clone(), limits, stats.clone(), shared, bindings)
        } else {
            JsWorker::new(app.clone(), limits, stats.clone(), shared, bindings)
        };
        let gate = crate::server::overload::Gate::new(
            limits.concurrent_requests as usize,
            format!("the app {:?}", app.name),
        );
        Ok(Arc::new(Self {
            app,
            limits,
            stats,
            worker,
            gate,
        }))
    }

    /// The app's configuration.
    pub fn app(&self) -> &AppConfig {
        &self.app
    }

    /// The limits the app runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The app's bound on requests served at once (this version's).
    pub fn gate(&self) -> &crate::server::overload::Gate {
        &self.gate
    }

    /// The app's counters now (across its versions).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The app's counters, to add to (the front door records responses).
    pub fn counters(&self) -> &TenantStats {
        &self.stats
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.app.name
    }

    /// Hands an invocation to the app's worker, starting it if needed. The reply arrives on the
    /// invocation's oneshot, whatever happens.
    pub fn invoke(&self, inv: Invocation) {
        self.worker.invoke(inv);
    }

    /// Runs `event` on the tenant (starting its worker if needed) and waits for its outcome:
    /// the entry point of events that come with no connection (a cron trigger, by hand or on
    /// schedule). For an event other than a request, the reply is an empty `200` once the
    /// handler's promise settled, or the error it threw or the limit it broke.
    pub async fn dispatch(&self, request_id: crate::RequestId, event: Event) -> Reply {
        let (reply, rx) = oneshot::channel();
        let started = std::time::Instant::now();
        self.invoke(Invocation {
            request_id,
            event,
            reply,
        });
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(InvokeError::new(
                ErrorCode::Unavailable,
                "the app's isolate stopped before answering",
            ))
        });
        self.stats.ran(started.elapsed(), self.limits.memory_bytes);
        outcome
    }

    /// Runs `task` beside the app's code (see [`Worker::adopt`]); gives it back when it cannot.
    pub fn adopt(&self, task: LocalTask) -> Result<(), LocalTask> {
        self.worker.adopt(task)
    }

    /// Loads the app (starting its worker if needed) and waits until it loaded or failed; the
    /// error says what and where.
    pub async fn load(&self) -> LoadResult {
        self.worker.load().await
    }

    /// Stops taking invocations; what is in flight finishes (see [`Worker::retire`]).
    pub fn retire(&self) {
        self.worker.retire();
    }

    /// Whether the app is loaded or loading.
    pub fn is_running(&self) -> bool {
        self.worker.is_running()
    }
}
