//! The life of one isolate on its own thread: restore from the snapshot, load the app, serve
//! until retired, then hand back whatever is still queued.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use deno_core::{JsRuntime, ModuleSpecifier, PollEventLoopOptions, RuntimeOptions};
use edge_web::{ConsoleLabel, NetPolicy, WebOptions};
use futures::FutureExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::loader::AppModuleLoader;
use super::ops::{HostState, abandon_inflight, edge_host};
use super::{Invocation, IsolateSpec, Supervisor};
use crate::error::{ErrorCode, InvokeError};

/// Stack for an isolate thread. QuickJS checks its own stack limit well inside this, so deep
/// recursion ends in a catchable RangeError rather than a crash.
const ISOLATE_STACK_BYTES: usize = 8 << 20;

/// How long `waitUntil` work may run after an isolate stops taking requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The `User-Agent` of outbound `fetch`.
const USER_AGENT: &str = concat!("edge/", env!("CARGO_PKG_VERSION"));

pub(super) fn spawn(
    spec: IsolateSpec,
    rx: mpsc::UnboundedReceiver<Invocation>,
    supervisor: Arc<dyn Supervisor>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("isolate-{}", spec.app.name))
        .stack_size(ISOLATE_STACK_BYTES)
        .spawn(move || run(spec, rx, supervisor))?;
    Ok(())
}

fn run(
    spec: IsolateSpec,
    rx: mpsc::UnboundedReceiver<Invocation>,
    supervisor: Arc<dyn Supervisor>,
) {
    let rx = Rc::new(tokio::sync::Mutex::new(rx));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            supervisor.load_failed(
                spec.id,
                format!("cannot start the isolate's event loop: {e}"),
            );
            finish(&spec, rx, supervisor);
            return;
        }
    };
    let span = tracing::info_span!("isolate", tenant = %spec.app.name, isolate = spec.id);
    rt.block_on(serve(&spec, rx.clone(), supervisor.clone()).instrument(span));
    drop(rt);
    finish(&spec, rx, supervisor);
}

/// Closes the queue and hands back what is still in it.
fn finish(
    spec: &IsolateSpec,
    rx: Rc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    supervisor: Arc<dyn Supervisor>,
) {
    let mut leftover = Vec::new();
    if let Ok(mut rx) = rx.try_lock() {
        rx.close();
        while let Ok(inv) = rx.try_recv() {
            leftover.push(inv);
        }
    }
    supervisor.exited(spec.id, leftover);
}

async fn serve(
    spec: &IsolateSpec,
    rx: Rc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    supervisor: Arc<dyn Supervisor>,
) {
    let app = &spec.app;
    let tenant: Arc<str> = app.name.as_str().into();
    let web = WebOptions {
        net: NetPolicy {
            allow_private: app.allow_private_network,
        },
        console: ConsoleLabel {
            tenant: app.name.clone(),
        },
        user_agent: USER_AGENT.to_string(),
    };
    let mut extensions = match edge_web::extensions(web) {
        Ok(e) => e,
        Err(e) => {
            supervisor.load_failed(spec.id, e.to_string());
            return;
        }
    };
    extensions.push(edge_host::init(Some(HostState {
        tenant: tenant.clone(),
        isolate_id: spec.id,
        rx,
        supervisor: supervisor.clone(),
        idle_timeout: spec.idle_timeout,
        env: serde_json::Value::Object(app.vars.clone()),
        next_id: 0,
        inflight: Default::default(),
        wait_until: 0,
        ready: false,
    })));
    let mut runtime = JsRuntime::new(RuntimeOptions {
        extensions,
        startup_snapshot: Some(spec.snapshot),
        module_loader: Some(Rc::new(AppModuleLoader::new(app.root.clone()))),
        ..Default::default()
    });

    let main = match ModuleSpecifier::from_file_path(&app.main) {
        Ok(url) => url,
        Err(()) => {
            supervisor.load_failed(
                spec.id,
                format!("{}: not an absolute path", app.main.display()),
            );
            return;
        }
    };
    if let Err(e) = load_main(&mut runtime, &main).await {
        supervisor.load_failed(spec.id, e);
        return;
    }

    let outcome = run_serve_loop(&mut runtime, &main).await;
    let ready = runtime.op_state().borrow().borrow::<HostState>().ready;
    match outcome {
        Err(e) if !ready => {
            supervisor.load_failed(spec.id, e);
            return;
        }
        Err(e) => {
            tracing::error!(
                tenant = &*tenant,
                "isolate stopped on an uncaught error: {e}"
            );
        }
        Ok(()) => {
            // Retired: let `waitUntil` work finish, within bounds.
            let drain = runtime.run_event_loop(PollEventLoopOptions::default());
            if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
                tracing::warn!(
                    tenant = &*tenant,
                    "waitUntil work still pending after {DRAIN_TIMEOUT:?}; dropped"
                );
            }
        }
    }
    let state = runtime.op_state();
    abandon_inflight(
        &mut state.borrow_mut(),
        &InvokeError::new(
            ErrorCode::Unavailable,
            "the app's isolate stopped before answering",
        ),
    );
}

async fn load_main(runtime: &mut JsRuntime, main: &ModuleSpecifier) -> Result<(), String> {
    let id = runtime
        .load_main_es_module(main)
        .await
        .map_err(|e| e.to_string())?;
    let eval = runtime.mod_evaluate(id).boxed_local();
    runtime
        .with_event_loop_future(eval, PollEventLoopOptions::default())
        .await
        .map_err(|e| e.to_string())
}

async fn run_serve_loop(runtime: &mut JsRuntime, main: &ModuleSpecifier) -> Result<(), String> {
    let url = serde_json::to_string(main.as_str()).map_err(|e| e.to_string())?;
    let script = format!(
        "(() => {{ const k = Symbol.for('edge.serve'); const serve = globalThis[k]; delete globalThis[k]; return serve({url}); }})()"
    );
    let promise = runtime
        .execute_script("ext:edge_host/start.js", script)
        .map_err(|e| e.to_string())?;
    let resolved = runtime.resolve(promise);
    runtime
        .with_event_loop_promise(resolved, PollEventLoopOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
