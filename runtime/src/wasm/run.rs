//! What every invocation of one app version shares ([`AppRun`]), and running one guest call
//! in a fresh store under the app's limits: the store, the task that runs the call (CPU
//! metered, wall-clock bounded), and how its end becomes a reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use edge_binding::wasm::{Slots, StoreData};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use super::cpu::{CpuMeter, Metered};
use super::exports::Exports;
use super::outbound::Outbound;
use super::state::{Breach, Limiter};
use super::stdio::ConsoleStream;
use crate::error::{ErrorCode, InvokeError};
use crate::limits::{LimitKind, Limits, TenantStats};

/// Resources (requests, bodies, fields, buckets, …) one invocation may hold at once: host
/// memory the guest's memory limit does not count, so bounded here (wasmtime's default is a
/// million).
const MAX_RESOURCES: usize = 10_000;

/// What every invocation of one app version shares.
pub(super) struct AppRun {
    pub(super) engine: wasmtime::Engine,
    pub(super) exports: Exports,
    pub(super) tenant: Arc<str>,
    pub(super) limits: Limits,
    pub(super) enforce_limits: bool,
    pub(super) allow_private: bool,
    pub(super) expose_errors: bool,
    pub(super) stats: Arc<TenantStats>,
    pub(super) console: Arc<Mutex<edge_web::ConsoleBudget>>,
    /// The app's `[vars]`, as the guest's environment (strings as they are, other values
    /// as JSON).
    pub(super) env: Vec<(String, String)>,
    /// What the app's bindings hand its guests (every store shares it).
    pub(super) slots: Arc<Slots>,
}

/// How a guest's call ended.
pub(super) enum Ended<T> {
    /// The call returned.
    Returned(T),
    /// It trapped (or failed to instantiate).
    Trapped(wasmtime::Error),
    /// The wall-clock limit passed first.
    Overdue,
}

/// One call into a fresh instance: instantiates and calls an export.
pub(super) trait GuestCall<T>: Send + 'static {
    /// Runs the call in `store`.
    fn call(
        self,
        store: &mut Store<StoreData>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + '_>>;
}

/// A guest call running in its task.
pub(super) struct Running<T> {
    /// The task; it ends when the call does, or at the wall-clock deadline.
    pub(super) task: JoinHandle<Ended<T>>,
    /// The first limit the call broke.
    pub(super) breach: Arc<Breach>,
    /// Whether the call ended cleanly (`Some(true)`), set before its store is dropped.
    pub(super) done: watch::Receiver<Option<bool>>,
}

impl AppRun {
    /// A fresh store for one invocation, under the app's limits.
    pub(super) fn store(&self, breach: &Arc<Breach>, meter: &Arc<CpuMeter>) -> Store<StoreData> {
        let wasi = WasiCtx::builder()
            .stdout(ConsoleStream::new(
                self.tenant.clone(),
                1,
                self.console.clone(),
            ))
            .stderr(ConsoleStream::new(
                self.tenant.clone(),
                3,
                self.console.clone(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .envs(&self.env)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = StoreData {
            wasi,
            http: WasiHttpCtx::new(),
            table,
            limiter: Box::new(Limiter {
                memory_bytes: self.limits.memory_bytes,
                breach: breach.clone(),
            }),
            hooks: Box::new(Outbound {
                tenant: self.tenant.clone(),
                allow_private: self.allow_private,
                remaining: self.limits.subrequests,
                breach: breach.clone(),
            }),
            slots: self.slots.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s.limiter.as_mut());
        store.set_epoch_deadline(1);
        let (cpu, enforce) = (self.limits.cpu, self.enforce_limits);
        let (breach, meter) = (breach.clone(), meter.clone());
        store.epoch_deadline_callback(move |_| {
            if enforce && meter.used() > cpu {
                breach.set(LimitKind::Cpu);
                wasmtime::bail!(
                    "the invocation used more than its {} ms of CPU",
                    cpu.as_millis()
                );
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// Runs `call` in a fresh store on the front door's runtime.
    pub(super) fn spawn<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl GuestCall<T>,
    ) -> Running<T> {
        let breach = Arc::<Breach>::default();
        let meter = Arc::<CpuMeter>::default();
        let store = self.store(&breach, &meter);
        self.spawn_in(store, breach, meter, call)
    }

    /// Runs `call` in `store` (made by [`AppRun::store`] with `breach` and `meter`).
    pub(super) fn spawn_in<T: Send + 'static>(
        self: &Arc<Self>,
        mut store: Store<StoreData>,
        breach: Arc<Breach>,
        meter: Arc<CpuMeter>,
        call: impl GuestCall<T>,
    ) -> Running<T> {
        self.stats.invoked();
        let wall = self.limits.wall;
        let enforce = self.enforce_limits;
        // Set before the store (and with it a body the guest never finished) is dropped: a
        // body forwarder tells a finished body from a cut one by it.
        let (done_tx, done) = watch::channel(None::<bool>);
        let guest = async move {
            let run = call.call(&mut store);
            let ended = if enforce {
                match tokio::time::timeout(wall, run).await {
                    Ok(Ok(v)) => Ended::Returned(v),
                    Ok(Err(trap)) => Ended::Trapped(trap),
                    Err(_) => Ended::Overdue,
                }
            } else {
                run.await.map_or_else(Ended::Trapped, Ended::Returned)
            };
            let _ = done_tx.send(Some(matches!(ended, Ended::Returned(_))));
            drop(store);
            ended
        };
        let this = self.clone();
        let task_breach = breach.clone();
        let task = tokio::spawn(async move {
            let ended = Metered {
                inner: guest,
                meter: meter.clone(),
            }
            .await;
            if matches!(ended, Ended::Overdue) {
                task_breach.set(LimitKind::Wall);
            }
            this.stats.add_cpu(meter.used());
            ended
        });
        Running { task, breach, done }
    }

    /// Waits for a call to its end (or its first broken limit) and makes it a result.
    pub(super) async fn finish<T>(
        &self,
        mut running: Running<T>,
        request_id: &str,
    ) -> Result<T, InvokeError> {
        let ended = tokio::select! {
            ended = &mut running.task => ended,
            _ = running.breach.wait() => {
                running.task.abort();
                (&mut running.task).await
            }
        };
        self.outcome(running.breach.get(), ended, request_id)
    }

    /// What a call's end means: its value, or the error it answers with (logged).
    pub(super) fn outcome<T>(
        &self,
        broke: Option<LimitKind>,
        ended: Result<Ended<T>, tokio::task::JoinError>,
        request_id: &str,
    ) -> Result<T, InvokeError> {
        let error = match (broke, ended) {
            (Some(kind), _) => self.broke(kind, request_id),
            (None, Ok(Ended::Returned(v))) => return Ok(v),
            (None, Ok(Ended::Trapped(trap))) => self.trapped(&trap, request_id),
            (None, Ok(Ended::Overdue)) => self.broke(LimitKind::Wall, request_id),
            (None, Err(e)) => InvokeError::new(
                ErrorCode::Internal,
                format!("the component's task failed: {e}"),
            ),
        };
        tracing::warn!(tenant = &*self.tenant, %request_id, "{}", error.message);
        Err(error)
    }

    fn broke(&self, kind: LimitKind, request_id: &str) -> InvokeError {
        self.stats.terminated(kind);
        let message = match kind {
            LimitKind::Cpu => format!(
                "exceeded the CPU limit of {} ms",
                self.limits.cpu.as_millis()
            ),
            LimitKind::Memory => format!(
                "exceeded the memory limit of {} MiB",
                self.limits.memory_bytes >> 20
            ),
            LimitKind::Wall => format!(
                "exceeded the wall-clock limit of {} ms",
                self.limits.wall.as_millis()
            ),
            LimitKind::Subrequests => format!(
                "exceeded the limit of {} subrequests",
                self.limits.subrequests
            ),
        };
        tracing::debug!(tenant = &*self.tenant, request_id, "{message}");
        InvokeError::new(kind.error_code(), message)
    }

    fn trapped(&self, trap: &wasmtime::Error, request_id: &str) -> InvokeError {
        if trap
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return InvokeError::new(
                ErrorCode::Unavailable,
                "the node runs as many wasm instances as it allows; try again",
            );
        }
        tracing::error!(target: "edge::script", tenant = &*self.tenant, request_id, "the component trapped: {trap:#}");
        let message = if self.expose_errors {
            format!("the component trapped: {trap:#}")
        } else {
            "the component trapped; see the node's log".to_string()
        };
        InvokeError::new(ErrorCode::ScriptError, message)
    }
}
