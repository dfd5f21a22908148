//! A request body as a deno_core resource, read by `ReadableStream`s in the isolate.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use deno_core::{AsyncRefCell, AsyncResult, BufView, RcRef, Resource};
use deno_error::JsErrorBox;
use http_body_util::BodyExt;

use super::RequestBody;

/// The body of an incoming request. Chunks are pulled from hyper only when the script reads,
/// so an upload is never buffered whole.
pub(crate) struct RequestBodyResource {
    body: AsyncRefCell<RequestBody>,
    leftover: RefCell<Option<Bytes>>,
}

impl RequestBodyResource {
    pub(crate) fn new(body: RequestBody) -> Self {
        Self {
            body: AsyncRefCell::new(body),
            leftover: RefCell::new(None),
        }
    }

    fn split(&self, mut chunk: Bytes, limit: usize) -> BufView {
        if chunk.len() > limit {
            let rest = chunk.split_off(limit);
            *self.leftover.borrow_mut() = Some(rest);
        }
        BufView::from(chunk)
    }
}

impl Resource for RequestBodyResource {
    fn name(&self) -> std::borrow::Cow<'_, str> {
        "requestBody".into()
    }

    fn read(self: Rc<Self>, limit: usize) -> AsyncResult<BufView> {
        Box::pin(async move {
            let limit = limit.max(1);
            let leftover = self.leftover.borrow_mut().take();
            if let Some(chunk) = leftover {
                return Ok(self.split(chunk, limit));
            }
            let mut body = RcRef::map(&self, |r| &r.body).borrow_mut().await;
            loop {
                match body.frame().await {
                    None => return Ok(BufView::empty()),
                    Some(Err(e)) => {
                        return Err(JsErrorBox::generic(format!("request body failed: {e}")));
                    }
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            return Ok(self.split(data, limit));
                        }
                    }
                }
            }
        })
    }
}
