//! The life of one isolate on its own thread: restore from the snapshot, load the app, serve
//! until retired, then hand back whatever is still queued.

use std::cell::RefCell;

use std::rc::Rc;
use std::sync::Arc;

use std::time::Duration;

use deno_core::{JsRuntime, ModuleSpecifier, RuntimeOptions, v8};
use edge_web::{ConsoleLabel, NetPolicy, WebOptions};
use futures::FutureExt;
use tokio::sync::mpsc;

use super::incoming::Queue;
use super::loader::AppModuleLoader;
use super::local_tasks::{LocalTask, LocalTasks};
use super::ops::{HostState, abandon_inflight, inflight_summary, limit_error};
use super::turn::{Stop, drive, observe_heap, turn};
use super::{Invocation, IsolateSpec, LoadError, Supervisor};
use crate::config::NodeModules;
use crate::error::{ErrorCode, InvokeError};
use crate::limits::LimitKind;
use crate::limits::blocking::BlockingCpu;
use crate::limits::memory::IsolateMemory;
use crate::limits::meter::Meter;
use crate::limits::watchdog::Watched;

/// Stack for an isolate thread. QuickJS checks its own stack limit well inside this, so deep
/// recursion ends in a catchable RangeError rather than a crash.
const ISOLATE_STACK_BYTES: usize = 8 << 20;

/// The `User-Agent` of outbound `fetch`.
pub(crate) const USER_AGENT: &str = concat!("edge/", env!("CARGO_PKG_VERSION"));

/// What every isolate is made from before it knows its app.
#[derive(Clone)]
pub(crate) struct Blank {
    /// The startup snapshot to restore.
    pub(crate) snapshot: &'static [u8],
    /// The heap limit; fixed when the engine's heap is made.
    pub(crate) memory_bytes: usize,
    /// The bindings whose extensions every isolate has (the snapshot was made with them).
    pub(crate) bindings: edge_binding::Registry,
}

/// What makes a blank isolate an app's. Sent to its thread once.
pub(crate) struct Assignment {
    pub(crate) spec: IsolateSpec,
    pub(crate) rx: mpsc::UnboundedReceiver<Invocation>,
    pub(crate) tasks: mpsc::UnboundedReceiver<LocalTask>,
    pub(crate) supervisor: Arc<dyn Supervisor>,
}

/// Called on a pre-started isolate's thread once it is made and waiting for its app.
pub(crate) type OnReady = Box<dyn FnOnce() + Send>;

/// Starts a thread that makes a blank isolate, then waits on `assignments` for its app.
/// With `on_ready` (a pre-started isolate), a failure to make it is logged and the thread ends;
/// without, the failure is reported to the assignment's supervisor.
pub(super) fn spawn(
    name: String,
    blank: Blank,
    assignments: std::sync::mpsc::Receiver<Assignment>,
    on_ready: Option<OnReady>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(ISOLATE_STACK_BYTES)
        .spawn(move || run(blank, assignments, on_ready))?;
    Ok(())
}

/// A blank isolate: restored from the snapshot, its CPU clock and memory watched, no app yet.
struct Made {
    rt: tokio::runtime::Runtime,
    runtime: JsRuntime,
    guard: Guard,
    loader: Rc<AppModuleLoader>,
}

/// What keeps an isolate within its limits from outside the script: the watchdog's view of it
/// (CPU, wall clock, termination) and its memory count.
pub(super) struct Guard {
    pub(super) watched: Arc<Watched>,
    pub(super) memory: Arc<IsolateMemory>,
    /// CPU used on the isolate's blocking-pool threads.
    pub(super) blocking: Arc<BlockingCpu>,
    /// The CPU clock when memory was last counted in full (`turn::check_memory`).
    pub(super) memory_checked: std::cell::Cell<Duration>,
}

fn run(
    blank: Blank,
    assignments: std::sync::mpsc::Receiver<Assignment>,
    on_ready: Option<OnReady>,
) {
    let made = make(blank);
    match (&made, on_ready) {
        (Ok(_), Some(ready)) => ready(),
        (Err(e), Some(_)) => {
            tracing::warn!("cannot pre-start an isolate: {e}");
            return;
        }
        (_, None) => {}
    }
    // Blocks until the app is assigned; fails when the warm pool is gone.
    let Ok(Assignment {
        spec,
        rx,
        tasks,
        supervisor,
    }) = assignments.recv()
    else {
        return;
    };
    drop(assignments);
    let _live = spec.live.begin();
    let queue = Rc::new(RefCell::new(Queue { rx, next: None }));
    let made = match made {
        Ok(made) => made,
        Err(e) => {
            supervisor.load_failed(spec.id, LoadError::Isolate(e));
            finish(&spec, &queue, supervisor);
            return;
        }
    };
    let Made {
        rt,
        runtime,
        guard,
        loader,
    } = made;
    // Everything this thread logs while the isolate lives is in its span: entered once for
    // the isolate's life (the thread runs nothing else), not on every poll.
    let span = tracing::info_span!("isolate", tenant = %spec.app.name, isolate = spec.id);
    let in_span = span.enter();
    // The front door's tasks for this thread (connections) run beside the isolate, in a task of
    // their own; the isolate is dropped when `serve` returns.
    let (stop_local, stop) = tokio::sync::oneshot::channel();
    let local = rt.spawn(LocalTasks::new(tasks).run(stop));
    // A panic on this thread (the engine failing on the script's input) ends this isolate
    // only: the tenant hears why, its queued requests go to another isolate, the node lives.
    let loaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching: Arc<dyn Supervisor> = Arc::new(Watching {
        inner: supervisor.clone(),
        loaded: loaded.clone(),
    });
    let serving = serve(runtime, guard, loader, &spec, queue.clone(), watching);
    if let Err(panic) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(serving)))
    {
        let message = format!("the isolate's thread panicked: {}", panic_message(&*panic));
        tracing::error!(tenant = spec.app.name.as_str(), "{message}");
        if !loaded.load(std::sync::atomic::Ordering::Acquire) {
            supervisor.load_failed(spec.id, LoadError::Isolate(message));
        }
    }
    drop(in_span);
    // The isolate is gone (retired, or terminated holding up to its memory limit): give its
    // memory back to the OS now. glibc keeps freed memory in its arenas otherwise; measured
    // with `cargo bench -p edge-runtime --bench isolates_per_thread`, 200 dropped isolates left
    // 206 MiB resident, 13 MiB once trimmed.
    crate::limits::thread_clock::release_free_memory();
    // Queued requests go back to the tenant (which starts another isolate for them), then the
    // connections on this thread finish what they were doing, their next requests going to
    // that isolate.
    finish(&spec, &queue, supervisor);
    let _ = stop_local.send(());
    let _ = rt.block_on(local);
}

/// The tenant's supervisor, noting whether the app loaded (what a panic on the thread then
/// reports depends on it).
struct Watching {
    inner: Arc<dyn Supervisor>,
    loaded: Arc<std::sync::atomic::AtomicBool>,
}

impl Supervisor for Watching {
    fn loaded(&self, isolate: u64) {
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.loaded(isolate);
    }
    fn load_failed(&self, isolate: u64, error: LoadError) {
        // Reported once: a panic after this is not a second load failure.
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.load_failed(isolate, error);
    }
    fn try_retire(&self, isolate: u64) -> bool {
        self.inner.try_retire(isolate)
    }
    fn exited(&self, isolate: u64, leftover: Vec<super::Invocation>) {
        self.inner.exited(isolate, leftover);
    }
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// Makes a blank isolate on this thread.
fn make(blank: Blank) -> Result<Made, String> {
    // Blocking-pool work (Web Crypto, DNS) runs on threads of this isolate's own, small pool,
    // whose CPU is charged like the isolate thread's.
    let blocking = Arc::new(BlockingCpu::default());
    let (on_start, on_stop) = (blocking.clone(), blocking.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(crate::limits::blocking::MAX_THREADS)
        .thread_keep_alive(crate::limits::blocking::KEEP_ALIVE)
        .on_thread_start(move || on_start.thread_started())
        .on_thread_stop(move || on_stop.thread_stopped())
        .build()
        .map_err(|e| format!("cannot start the isolate's event loop: {e}"))?;
    let _context = rt.enter();
    super::engine::init();
    let extensions = super::snapshot::extensions(&blank.bindings);
    let loader = Rc::new(AppModuleLoader::new());
    let memory = IsolateMemory::new(blank.memory_bytes);
    let params = v8::CreateParams::default().heap_limits(0, blank.memory_bytes);
    // V8 keeps ArrayBuffer contents outside its heap: count them with an allocator of ours.
    #[cfg(feature = "v8")]
    let params = params.array_buffer_allocator(super::array_buffers::allocator(memory.clone()));
    let mut runtime = JsRuntime::new(RuntimeOptions {
        extensions,
        startup_snapshot: Some(blank.snapshot),
        module_loader: Some(loader.clone()),
        create_params: Some(params),
        ..Default::default()
    });
    super::nudge::install(&mut runtime);
    let watched = Watched::register(Box::new(super::nudge::JsInterrupt(
        runtime.v8_isolate().thread_safe_handle(),
    )))
    .map_err(|e| format!("cannot watch the isolate's CPU clock: {e}"))?;
    memory.watch(watched.clone());
    {
        // Near the heap limit: stop the script and grant headroom so the engine does not abort
        // the process while the termination unwinds.
        let watched = watched.clone();
        runtime.add_near_heap_limit_callback(move |current, _initial| {
            watched.terminate(LimitKind::Memory);
            current.saturating_mul(2)
        });
    }
    drop(_context);
    Ok(Made {
        rt,
        runtime,
        guard: Guard {
            watched,
            memory,
            blocking,
            memory_checked: Default::default(),
        },
        loader,
    })
}

/// Closes the queue and hands back what is still in it.
fn finish(spec: &IsolateSpec, queue: &RefCell<Queue>, supervisor: Arc<dyn Supervisor>) {
    let leftover = queue
        .try_borrow_mut()
        .map(|mut q| q.close())
        .unwrap_or_default();
    supervisor.exited(spec.id, leftover);
}

/// Gives a blank isolate its app, loads the app and serves until retired or stopped.
async fn serve(
    mut runtime: JsRuntime,
    guard: Guard,
    loader: Rc<AppModuleLoader>,
    spec: &IsolateSpec,
    queue: Rc<RefCell<Queue>>,
    supervisor: Arc<dyn Supervisor>,
) {
    if let Err(e) = install_host(&mut runtime, &guard, spec, queue, &supervisor) {
        supervisor.load_failed(spec.id, e);
        return;
    }
    loader.set_app(&spec.app, spec.sources.clone());
    // Let the connections already handed to this thread read their first requests before the
    // app loads, so those requests are queued when the host loop starts, not a turn later.
    tokio::task::yield_now().await;
    let outcome = run_app(&mut runtime, &guard, spec).await;
    observe_heap(&mut runtime, &guard.memory, &spec.stats);
    stopped(&runtime.op_state(), spec, &supervisor, outcome);
}

/// Gives the isolate's ops their state: the web APIs' options, the app's bindings, and the
/// host's own ([`HostState`]).
fn install_host(
    runtime: &mut JsRuntime,
    guard: &Guard,
    spec: &IsolateSpec,
    queue: Rc<RefCell<Queue>>,
    supervisor: &Arc<dyn Supervisor>,
) -> Result<(), LoadError> {
    let app = &spec.app;
    let web = WebOptions {
        net: NetPolicy {
            allow_private: app.allow_private_network,
        },
        console: ConsoleLabel {
            tenant: app.name.clone(),
        },
        user_agent: USER_AGENT.to_string(),
    };
    let state = runtime.op_state();
    let mut state = state.borrow_mut();
    edge_web::configure(&mut state, web).map_err(|e| LoadError::Isolate(e.to_string()))?;
    spec.bindings.install(&mut state);
    state.put(HostState {
        tenant: app.name.as_str().into(),
        isolate_id: spec.id,
        queue,
        supervisor: supervisor.clone(),
        idle_timeout: spec.idle_timeout,
        env: serde_json::Value::Object(app.vars.clone()),
        next_id: 0,
        inflight: Default::default(),
        ready: false,
        evaluated: false,
        stats: spec.stats.clone(),
        enforce_limits: spec.enforce_limits,
        meter: Meter::new(spec.limits, spec.stats.clone(), guard.watched.clone()),
        memory: guard.memory.clone(),
        sockets: Default::default(),
        websocket_compat: super::websocket::compat_bits(app.compatibility_date.as_deref()),
        allow_private: app.allow_private_network,
    });
    Ok(())
}

/// Loads the app and serves its invocations until the isolate stops.
async fn run_app(runtime: &mut JsRuntime, guard: &Guard, spec: &IsolateSpec) -> Result<(), Stop> {
    let main = ModuleSpecifier::from_file_path(&spec.app.main).map_err(|()| {
        Stop::Load(LoadError::Compile(format!(
            "{}: not an absolute path",
            spec.app.main.display()
        )))
    })?;
    prepare_globals(runtime, guard, spec)?;
    load_main(runtime, &main, guard).await?;
    runtime
        .op_state()
        .borrow_mut()
        .borrow_mut::<HostState>()
        .meter
        .serving();
    run_serve_loop(runtime, &main, guard).await
}

/// After the isolate stopped: tells the tenant why if it never loaded, logs a breach, and
/// answers what is still in flight.
fn stopped(
    state: &Rc<RefCell<deno_core::OpState>>,
    spec: &IsolateSpec,
    supervisor: &Arc<dyn Supervisor>,
    outcome: Result<(), Stop>,
) {
    let (ready, evaluated) = {
        let state = state.borrow();
        let host = state.borrow::<HostState>();
        (host.ready, host.evaluated)
    };
    let error = match outcome {
        // Retired with nothing in flight: every invocation and its `waitUntil` work is done.
        Ok(()) => return,
        Err(Stop::Breach(kind)) => {
            let error = breached(&state.borrow(), spec, kind, ready);
            if !ready {
                let why = match kind {
                    // Until the app is loaded, turns run on the start-up budget, not the app's.
                    LimitKind::Cpu => format!(
                        "start-up CPU time budget of {} ms exceeded",
                        crate::limits::meter::LOAD_TURN_BUDGET.as_millis()
                    ),
                    _ => error.message.clone(),
                };
                supervisor.load_failed(spec.id, LoadError::Limit { kind, message: why });
            }
            error
        }
        Err(Stop::Load(e)) => {
            supervisor.load_failed(spec.id, e);
            return;
        }
        // Failing before it was ready: the module's top level threw, or it has no handler.
        Err(Stop::Error(e)) if !ready => {
            let error = if evaluated {
                LoadError::NoHandler(e)
            } else {
                LoadError::Evaluate(e)
            };
            supervisor.load_failed(spec.id, error);
            return;
        }
        Err(Stop::Error(e)) => {
            tracing::error!(
                tenant = spec.app.name.as_str(),
                "isolate stopped on an uncaught error: {e}"
            );
            InvokeError::new(
                ErrorCode::Unavailable,
                "the app's isolate stopped before answering",
            )
        }
    };
    abandon_inflight(&mut state.borrow_mut(), &error);
}

/// Counts and logs a breach of `kind` (with the tenant, the requests in flight, the CPU used
/// and the limits), and returns the error the invocations in flight answer with.
fn breached(
    state: &deno_core::OpState,
    spec: &IsolateSpec,
    kind: LimitKind,
    ready: bool,
) -> InvokeError {
    spec.stats.terminated(kind);
    let limits = spec.limits;
    let error = limit_error(kind, &limits);
    let (request_ids, cpu_used) = inflight_summary(state);
    let orphan = if request_ids.is_empty() && ready {
        " by work with no request in flight (timers or promises left running after a response)"
    } else {
        ""
    };
    tracing::warn!(
        tenant = spec.app.name.as_str(),
        limit = kind.key(),
        request_ids,
        cpu_used_ms = cpu_used.as_secs_f64() * 1000.0,
        cpu_limit_ms = limits.cpu.as_millis() as u64,
        memory_limit_mb = (limits.memory_bytes >> 20) as u64,
        wall_limit_ms = limits.wall.as_millis() as u64,
        "isolate terminated: {}{orphan}",
        error.message,
    );
    error
}

/// Gives the global scope what the app's config asks for before its code runs (host.js
/// `prepare`): Node.js's `Buffer` and `process` under `nodejs_compat`.
fn prepare_globals(runtime: &mut JsRuntime, guard: &Guard, spec: &IsolateSpec) -> Result<(), Stop> {
    let node = spec.app.node_compat();
    let nodejs = matches!(node.modules, NodeModules::Prefixed | NodeModules::All).then(|| {
        // `process.env`: the app's vars as text (a number or an object as JSON, as on
        // Workers), when its flags ask for them.
        let env: serde_json::Map<String, serde_json::Value> = spec
            .app
            .vars
            .iter()
            .filter(|_| node.process_env)
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (name.clone(), serde_json::Value::String(text))
            })
            .collect();
        // What `process.getBuiltinModule` may return: what an import may (bare names too, as
        // Node takes them there).
        let builtins: serde_json::Map<String, serde_json::Value> = edge_nodejs::provided()
            .flat_map(|(name, specifier)| {
                [name.to_string(), specifier.to_string()]
                    .map(|id| (id, serde_json::Value::String(specifier.to_string())))
            })
            .collect();
        serde_json::json!({ "env": env, "globals": node.globals, "builtins": builtins })
    });
    let script = format!(
        "(() => {{ const k = Symbol.for('edge.prepare'); const prepare = globalThis[k]; delete globalThis[k]; prepare({}); }})()",
        nodejs.unwrap_or(serde_json::Value::Null)
    );
    turn(runtime, guard, |runtime| {
        runtime.execute_script("ext:edge_host/prepare.js", script)
    })?
    .map(|_| ())
    .map_err(|e| Stop::Load(LoadError::Evaluate(e.to_string())))
}

async fn load_main(
    runtime: &mut JsRuntime,
    main: &ModuleSpecifier,
    guard: &Guard,
) -> Result<(), Stop> {
    // The engine may fail in ways it does not report as an exception (the QuickJS facade's
    // linking has panicked on valid code): that is this app's load error, not a dead thread.
    let started = std::time::Instant::now();
    super::loader::take_load_stats();
    let loaded = std::panic::AssertUnwindSafe(runtime.load_main_es_module(main))
        .catch_unwind()
        .await
        .map_err(|panic| {
            Stop::Load(LoadError::Compile(format!(
                "{}: the JavaScript engine failed while loading the module and its imports ({})",
                main.to_file_path()
                    .map_or_else(|()| main.to_string(), |p| p.display().to_string()),
                panic_message(&*panic)
            )))
        })?;
    let id = loaded.map_err(|e| Stop::Load(LoadError::Compile(e.to_string())))?;
    let (modules, preparing) = super::loader::take_load_stats();
    tracing::info!(
        modules,
        prepare_ms = preparing.as_secs_f64() * 1e3,
        load_ms = started.elapsed().as_secs_f64() * 1e3,
        "app modules loaded"
    );
    // Evaluating starts the module's top level at once: that is the tenant's code too.
    let eval = turn(runtime, guard, |runtime| {
        runtime.mod_evaluate(id).boxed_local()
    })?;
    drive(runtime, guard, eval)
        .await
        .map_err(|stop| match stop {
            Stop::Error(e) => Stop::Load(LoadError::Evaluate(e)),
            other => other,
        })
}

async fn run_serve_loop(
    runtime: &mut JsRuntime,
    main: &ModuleSpecifier,
    guard: &Guard,
) -> Result<(), Stop> {
    let url = serde_json::to_string(main.as_str()).map_err(|e| Stop::Error(e.to_string()))?;
    let script = format!(
        "(() => {{ const k = Symbol.for('edge.serve'); const serve = globalThis[k]; delete globalThis[k]; return serve({url}); }})()"
    );
    // The host loop may take and run queued requests before this returns.
    let promise = turn(runtime, guard, |runtime| {
        runtime.execute_script("ext:edge_host/start.js", script)
    })?
    .map_err(|e| Stop::Error(e.to_string()))?;
    let resolved = runtime.resolve(promise);
    drive(runtime, guard, resolved).await.map(|_| ())
}
