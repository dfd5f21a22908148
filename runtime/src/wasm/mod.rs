//! WebAssembly workers: an app whose `main` is a `.wasm` component of the standard
//! `wasi:http/proxy` world (WASI 0.2, as `wasmtime serve`, Spin and Fastly run) runs on
//! wasmtime behind the same [`Worker`] interface, router and limits as JavaScript.
//!
//! - The node has one engine ([`WasmEngine`]); an app's component is compiled once per
//!   version (shared by content, cached on disk) off the request path, and linked once.
//! - Each request gets a fresh store and instance (the pooling allocator makes that cheap)
//!   on the front door's runtime: no thread per app.
//! - Limits: CPU by epoch interruption against the polling thread's CPU clock ([`cpu`]),
//!   memory by a resource limiter, wall-clock time as a deadline, outbound requests by count
//!   and the same address policy as `fetch` ([`outbound`]). A breach answers `503` with the
//!   limit's `edge-error`; a trap answers `500 script-error` and logs the wasm backtrace.
//! - Guest stdout and stderr are the app's console lines ([`stdio`]).

mod cpu;
mod engine;
mod events;
mod exports;
mod fetch;
pub(crate) mod outbound;
mod run;
mod state;
mod stdio;

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use edge_binding::wasm::StoreData;
use tokio::sync::OnceCell;
use wasmtime::component::Linker;

pub use engine::{CompileError, MAX_COMPONENT_BYTES, WasmEngine, WasmSettings};

use crate::config::AppConfig;
use crate::isolate::LocalTask;
use crate::limits::{Limits, TenantStats};
use crate::tenant::TenantShared;
use crate::worker::{Event, Invocation, LoadError, LoadResult, Worker};
use exports::Exports;
use run::AppRun;

/// The wasm worker of one app version.
pub struct WasmWorker(Arc<Inner>);

struct Inner {
    app: Arc<AppConfig>,
    limits: Limits,
    stats: Arc<TenantStats>,
    shared: Arc<TenantShared>,
    console: Arc<Mutex<edge_web::ConsoleBudget>>,
    bindings: edge_binding::AppBindings,
    run: OnceCell<Result<Arc<AppRun>, LoadError>>,
}

impl WasmWorker {
    /// A worker for `app` with its `bindings`; its component is compiled and linked on first
    /// use.
    pub fn new(
        app: Arc<AppConfig>,
        limits: Limits,
        stats: Arc<TenantStats>,
        shared: Arc<TenantShared>,
        bindings: edge_binding::AppBindings,
    ) -> Arc<Self> {
        Arc::new(Self(Arc::new(Inner {
            app,
            limits,
            stats,
            shared,
            bindings,
            console: Default::default(),
            run: OnceCell::new(),
        })))
    }
}

impl Inner {
    /// The app ready to run, compiling and linking it on the blocking pool the first time.
    async fn ready(&self) -> &Result<Arc<AppRun>, LoadError> {
        self.run
            .get_or_init(|| async {
                let engine = self.shared.wasm.clone();
                let main = self.app.main.clone();
                let registry = self.shared.bindings.clone();
                let linked = tokio::task::spawn_blocking(move || link(&engine, &registry, &main))
                    .await
                    .unwrap_or_else(|e| Err(format!("compiling the component failed: {e}")));
                match linked {
                    Ok(exports) => Ok(Arc::new(AppRun {
                        engine: self.shared.wasm.engine().clone(),
                        exports,
                        tenant: self.app.name.as_str().into(),
                        limits: self.limits,
                        enforce_limits: self.shared.enforce_limits,
                        allow_private: self.app.allow_private_network,
                        expose_errors: self.shared.expose_errors,
                        stats: self.stats.clone(),
                        console: self.console.clone(),
                        slots: {
                            let mut slots = edge_binding::wasm::Slots::default();
                            self.bindings.install_wasm(&mut slots);
                            Arc::new(slots)
                        },
                        env: self
                            .app
                            .vars
                            .iter()
                            .map(|(k, v)| match v {
                                serde_json::Value::String(s) => (k.clone(), s.clone()),
                                other => (k.clone(), other.to_string()),
                            })
                            .collect(),
                    })),
                    Err(message) => {
                        tracing::error!(tenant = %self.app.name, "{message}");
                        Err(LoadError::Compile(message))
                    }
                }
            })
            .await
    }

    /// Handles one invocation to its reply.
    async fn handle(&self, inv: Invocation) {
        let run = match self.ready().await {
            Ok(run) => run.clone(),
            Err(error) => {
                let _ = inv
                    .reply
                    .send(Err(error.reply(&self.app.name, self.shared.expose_errors)));
                return;
            }
        };
        let request_id = inv.request_id.to_string();
        let reply = match inv.event {
            Event::Fetch(request) => run.fetch(request, request_id).await,
            Event::Scheduled(event) => run.scheduled(event, request_id).await,
            Event::Queue(batch) => run.queue(batch, request_id).await,
        };
        let _ = inv.reply.send(reply);
    }
}

/// Compiles the component at `main`, links it against WASI 0.2, `wasi:http` and the node's
/// bindings, and finds its handlers.
fn link(
    engine: &WasmEngine,
    registry: &edge_binding::Registry,
    main: &std::path::Path,
) -> Result<Exports, String> {
    let component = engine.component(main).map_err(|e| e.to_string())?;
    let mut linker = Linker::<StoreData>::new(engine.engine());
    // All of WASI 0.2 (a Rust guest's std imports wasi:cli/environment, which the proxy world
    // lacks), then wasi:http, as `wasmtime serve` does.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| format!("cannot link WASI: {e}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| format!("cannot link wasi:http: {e}"))?;
    registry
        .add_to_linker(&mut linker)
        .map_err(|e| format!("cannot link the bindings: {e}"))?;
    let where_ = main.display();
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| format!("{where_}: imports what edge does not provide: {e:#}"))?;
    Exports::of(pre).map_err(|e| format!("{where_}: {e}"))
}

impl Worker for WasmWorker {
    fn invoke(&self, inv: Invocation) {
        let inner = self.0.clone();
        tokio::spawn(async move { inner.handle(inv).await });
    }

    fn adopt(&self, task: LocalTask) -> Result<(), LocalTask> {
        Err(task)
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = LoadResult> + Send + '_>> {
        Box::pin(async move {
            self.0
                .ready()
                .await
                .as_ref()
                .map(drop)
                .map_err(Clone::clone)
        })
    }

    fn retire(&self) {}

    fn is_running(&self) -> bool {
        matches!(self.0.run.get(), Some(Ok(_)))
    }
}

/// Times what each request costs before the guest runs, the way the worker does it: a fresh
/// store (under the default limits, through [`AppRun::store`]) and the instantiation of the
/// linked component from `engine`'s pooling allocator, `n` times one after another; the store
/// is dropped outside the timing. For the benchmark suite's `wasm` scenario.
pub async fn measure_instantiate(
    engine: &Arc<WasmEngine>,
    registry: &edge_binding::Registry,
    main: &std::path::Path,
    n: usize,
) -> Result<Vec<std::time::Duration>, String> {
    let exports = {
        let (engine, registry, main) = (engine.clone(), registry.clone(), main.to_path_buf());
        tokio::task::spawn_blocking(move || link(&engine, &registry, &main))
            .await
            .map_err(|e| e.to_string())??
    };
    let proxy = exports
        .proxy
        .clone()
        .ok_or("the component has no fetch handler")?;
    let run = AppRun {
        engine: engine.engine().clone(),
        exports,
        tenant: "bench".into(),
        limits: Limits::default(),
        enforce_limits: true,
        allow_private: false,
        expose_errors: false,
        stats: Arc::default(),
        console: Arc::default(),
        env: Vec::new(),
        slots: Arc::default(),
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let breach = Arc::<state::Breach>::default();
        let meter = Arc::<cpu::CpuMeter>::default();
        let started = std::time::Instant::now();
        let mut store = run.store(&breach, &meter);
        proxy
            .instantiate_async(&mut store)
            .await
            .map_err(|e| format!("{e:#}"))?;
        times.push(started.elapsed());
        drop(store);
    }
    Ok(times)
}
