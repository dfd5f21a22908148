//! [`Host`]: how a trigger (cron, a queue consumer) runs an app's handler, through the same
//! tenant, worker and limits as a request.

use std::future::Future;
use std::pin::Pin;

/// An event a binding asks the node to run on an app.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HostEvent {
    /// The app's `scheduled` handler, for `cron` due at `scheduled_time` (ms since the epoch).
    Scheduled {
        /// The expression, as the app's config gives it.
        cron: String,
        /// When the slot was due, in milliseconds since the Unix epoch.
        scheduled_time: f64,
    },
}

/// Why an event did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DispatchError {
    /// The `edge-error` code (`script-error`, `cpu-limit`, `no-such-app`, …).
    pub code: String,
    /// What happened.
    pub message: String,
}

/// The outcome of an event: `Ok` once the handler's promise settled.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<(), DispatchError>> + Send>>;

/// The node, as a binding's triggers see it.
pub trait Host: Send + Sync + 'static {
    /// Runs `event` on the app named `app` (starting its worker if needed) under the app's
    /// limits; resolves when the handler finished, threw, or broke a limit.
    fn dispatch(&self, app: &str, event: HostEvent) -> DispatchFuture;
}
