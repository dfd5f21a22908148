//! WebAssembly workers (work in progress, #14): an app whose `main` is a `.wasm` component
//! of the standard `wasi:http/proxy` world runs on wasmtime, behind the same [`Worker`]
//! interface as JavaScript. Each request gets a fresh store from a pre-instantiated
//! component; instances run on the front door's runtime (no thread per app).
//!
//! Not yet: CPU (epoch) and memory limits, the outbound-fetch permission check, the disk
//! cache of compiled components, bindings (KV, queues), `scheduled`/`queue` handlers.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::body::ResponseBody;
use crate::config::AppConfig;
use crate::error::{ErrorCode, InvokeError};
use crate::isolate::LocalTask;
use crate::worker::{
    Event, FetchRequest, Invocation, InvocationBody, LoadError, LoadResult, Worker,
};

/// The node's one wasmtime engine.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = Config::new();
        Engine::new(&config).expect("the default wasmtime configuration is valid")
    })
}

/// What one request's store holds.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

/// The wasm worker of one app: its component, compiled and pre-instantiated once.
pub struct WasmWorker {
    app: Arc<AppConfig>,
    pre: Result<ProxyPre<State>, String>,
}

impl WasmWorker {
    /// Compiles `app.main` and links it against `wasi:http/proxy`. A component that does not
    /// compile or link is reported by [`Worker::load`] and answers `503 load-error`.
    pub fn new(app: Arc<AppConfig>) -> Arc<Self> {
        let pre = prepare(&app);
        if let Err(e) = &pre {
            tracing::error!(tenant = %app.name, "{e}");
        }
        Arc::new(Self { app, pre })
    }
}

fn prepare(app: &AppConfig) -> Result<ProxyPre<State>, String> {
    let where_ = app.main.display();
    let component = Component::from_file(engine(), &app.main)
        .map_err(|e| format!("{where_}: not a WebAssembly component: {e}"))?;
    let mut linker = Linker::<State>::new(engine());
    // All of WASI 0.2 (a Rust guest's std imports wasi:cli/environment, which the proxy world
    // lacks), then wasi:http, as `wasmtime serve` does.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| format!("cannot link WASI: {e}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| format!("cannot link wasi:http: {e}"))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| format!("{where_}: imports what edge does not provide: {e}"))?;
    ProxyPre::new(pre).map_err(|e| format!("{where_}: not a wasi:http/proxy component: {e}"))
}

impl Worker for WasmWorker {
    fn invoke(&self, inv: Invocation) {
        let pre = match &self.pre {
            Ok(pre) => pre.clone(),
            Err(e) => {
                let _ = inv
                    .reply
                    .send(Err(InvokeError::new(ErrorCode::LoadError, e.clone())));
                return;
            }
        };
        let tenant = self.app.name.clone();
        tokio::spawn(async move {
            let reply = match inv.event {
                Event::Fetch(request) => handle(pre, request).await,
                _ => Err(InvokeError::new(
                    ErrorCode::ScriptError,
                    "wasm apps take only HTTP requests so far",
                )),
            };
            if let Err(e) = &reply {
                tracing::warn!(%tenant, request_id = %inv.request_id, "{}", e.message);
            }
            let _ = inv.reply.send(reply);
        });
    }

    fn adopt(&self, task: LocalTask) -> Result<(), LocalTask> {
        Err(task)
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = LoadResult> + Send + '_>> {
        let result = self
            .pre
            .as_ref()
            .map(drop)
            .map_err(|e| LoadError::Compile(e.clone()));
        Box::pin(async move { result })
    }

    fn retire(&self) {}

    fn is_running(&self) -> bool {
        self.pre.is_ok()
    }
}

/// Runs one request through a fresh instance.
async fn handle(
    pre: ProxyPre<State>,
    request: FetchRequest,
) -> Result<http::Response<ResponseBody>, InvokeError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        InvokeError::new(ErrorCode::ScriptError, format!("{what}: {e}"))
    };
    let body = match request.body {
        InvocationBody::Empty => http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
        InvocationBody::Full(bytes) => http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
        InvocationBody::Stream(stream) => stream
            .map_err(|_| wasmtime_wasi_http::Error::ConnectionTerminated)
            .boxed_unsync(),
    };
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(request.url.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = request.headers;
    }
    let hyper_request = builder
        .body(body)
        .map_err(|e| failed("the request cannot be handed to wasm", &e))?;
    let mut store = Store::new(
        pre.engine(),
        State {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        },
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, hyper_request)
        .map_err(|e| failed("the request cannot be handed to wasm", &e))?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(|e| failed("the request cannot be handed to wasm", &e))?;
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await
    });
    match rx.await {
        Ok(Ok(response)) => Ok(response.map(forward_body)),
        Ok(Err(code)) => Err(InvokeError::new(
            ErrorCode::ScriptError,
            format!("the component answered with an error: {code:?}"),
        )),
        Err(_) => {
            let why = match task.await {
                Ok(Ok(())) => "the component did not set a response".to_string(),
                Ok(Err(trap)) => format!("the component trapped: {trap:?}"),
                Err(e) => format!("the component's task failed: {e}"),
            };
            Err(InvokeError::new(ErrorCode::ScriptError, why))
        }
    }
}

/// The component's response body, fed into the front door's body channel.
fn forward_body(body: wasmtime_wasi_http::p2::body::HyperOutgoingBody) -> ResponseBody {
    let (tx, end, out) = crate::body::body_channel(8);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data()
                        && tx.send(Ok(data)).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(crate::body::BodyError(e.to_string()))).await;
                    return;
                }
            }
        }
        end.complete();
    });
    out
}
