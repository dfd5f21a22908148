//! A refused request body is read to its end before the connection is let go (a "lingering
//! close", as nginx does): answered `413` and closed at once, a client still uploading gets a
//! broken pipe on its next write and never reads the answer. Only bodies up to
//! [`LINGER_BYTES`] are drained, for at most [`LINGER_TIME`]; past either the connection closes,
//! so a refused upload costs the node little.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};

/// The largest refused body read through to its end.
const LINGER_BYTES: u64 = 16 << 20;

/// How long a refused body may take to arrive.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// Reads and discards a refused `body` in the background (see the module's docs). A body
/// declared larger than [`LINGER_BYTES`] is dropped at once.
pub(super) fn discard(body: Incoming) {
    if body.size_hint().lower() > LINGER_BYTES {
        return;
    }
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0u64;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                if seen > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}
