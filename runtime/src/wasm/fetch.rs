//! A request through a fresh instance: handed over as `wasi:http/incoming-request`, the
//! response streamed back through the front door's body channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use edge_binding::wasm::StoreData;
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime::component::Resource;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use super::cpu::CpuMeter;
use super::run::{AppRun, GuestCall};
use super::state::Breach;
use crate::body::ResponseBody;
use crate::error::{ErrorCode, InvokeError};
use crate::worker::{FetchRequest, InvocationBody, Reply};

/// `wasi:http/incoming-handler.handle(request, response-out)`.
struct Handle {
    pre: ProxyPre<StoreData>,
    request: Resource<HostIncomingRequest>,
    out: Resource<HostResponseOutparam>,
}

impl GuestCall<()> for Handle {
    fn call(
        self,
        store: &mut Store<StoreData>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<()>> + Send + '_>> {
        Box::pin(async move {
            let proxy = self.pre.instantiate_async(&mut *store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, self.request, self.out)
                .await
        })
    }
}

impl AppRun {
    /// Answers `request` with a fresh instance.
    pub(super) async fn fetch(
        self: &Arc<Self>,
        request: FetchRequest,
        request_id: String,
    ) -> Reply {
        let Some(pre) = self.exports.proxy.clone() else {
            return Err(InvokeError::new(
                ErrorCode::ScriptError,
                "the component has no fetch handler (it does not export wasi:http/incoming-handler)",
            ));
        };
        let hyper_request = to_hyper(request).map_err(|e| {
            InvokeError::new(
                ErrorCode::BadRequest,
                format!("the request cannot be handed to the component: {e}"),
            )
        })?;
        let breach = Arc::<Breach>::default();
        let meter = Arc::<CpuMeter>::default();
        let mut store = self.store(&breach, &meter);
        let internal =
            |e: wasmtime::Error| InvokeError::new(ErrorCode::Internal, format!("wasi:http: {e}"));
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, hyper_request)
            .map_err(internal)?;
        let (tx, mut rx) = oneshot::channel();
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(internal)?;
        let call = Handle {
            pre,
            request: incoming,
            out,
        };
        let mut running = self.spawn_in(store, breach, meter, call);
        // A limit broken before the response came wins (a refused subrequest and the guest's
        // answer to it may both be ready by the time this looks).
        let answered = tokio::select! {
            biased;
            _ = running.breach.wait() => None,
            response = &mut rx => response.ok(),
        };
        let answered = match answered {
            Some(Ok(_)) if running.breach.get().is_some() => None,
            other => other,
        };
        match answered {
            Some(Ok(response)) => {
                let done = running.done.clone();
                Ok(response.map(|body| forward_body(body, done)))
            }
            Some(Err(code)) => {
                let e = InvokeError::new(
                    ErrorCode::ScriptError,
                    format!("the component answered with an error: {code:?}"),
                );
                tracing::warn!(tenant = &*self.tenant, %request_id, "{}", e.message);
                Err(e)
            }
            None => {
                // No response: the call ended (or broke a limit) without setting one.
                if running.breach.get().is_some() {
                    running.task.abort();
                }
                let ended = (&mut running.task).await;
                match self.outcome(running.breach.get(), ended, &request_id) {
                    Ok(()) => {
                        let e = InvokeError::new(
                            ErrorCode::ScriptError,
                            "the component returned without setting a response",
                        );
                        tracing::warn!(tenant = &*self.tenant, %request_id, "{}", e.message);
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

fn to_hyper(
    request: FetchRequest,
) -> Result<hyper::Request<wasmtime_wasi_http::WasiBody>, http::Error> {
    use wasmtime_wasi_http::Error;
    let body = match request.body {
        InvocationBody::Empty => http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
        InvocationBody::Full(bytes) => http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
        InvocationBody::Stream(stream) => stream
            .map_err(|_| Error::ConnectionTerminated)
            .boxed_unsync(),
    };
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(request.url.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = request.headers;
    }
    builder.body(body)
}

/// The component's response body, fed into the front door's body channel.
///
/// A body that ends because the guest trapped (or broke a limit) ends with an error, so the
/// client sees it cut rather than complete.
fn forward_body(
    body: wasmtime_wasi_http::p2::body::HyperOutgoingBody,
    done: tokio::sync::watch::Receiver<Option<bool>>,
) -> ResponseBody {
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
        if *done.borrow() == Some(false) {
            let cut =
                crate::body::BodyError("the component stopped before finishing the body".into());
            let _ = tx.send(Err(cut)).await;
            return;
        }
        end.complete();
    });
    out
}
