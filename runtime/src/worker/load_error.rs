//! Why an app failed to load: its isolate never served. The message of each says what and
//! where (file and line, from the engine), as the log and `edge check` show it.

use crate::limits::LimitKind;

/// Why an app failed to load.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No isolate could be made for it (a thread, the engine's set-up).
    #[error("cannot start an isolate: {0}")]
    Isolate(String),
    /// The main module, or one it imports, could not be found, read or compiled.
    #[error("{0}")]
    Compile(String),
    /// The module's top level threw.
    #[error("{0}")]
    Evaluate(String),
    /// The module exports no handler edge can call.
    #[error("{0}")]
    NoHandler(String),
    /// Loading broke a limit (the start-up CPU budget, memory, the wall clock).
    #[error("{message} while loading the app")]
    Limit {
        /// Which limit.
        kind: LimitKind,
        /// Which limit, in words.
        message: String,
    },
    /// The isolate went away before the app loaded.
    #[error("the isolate stopped while loading")]
    Stopped,
}

impl LoadError {
    /// What an invocation of the app named `app` answers while it cannot load: a `503
    /// load-error`, with this error's text only when `expose` (`edge dev`), else pointing at
    /// the node's log.
    pub fn reply(&self, app: &str, expose: bool) -> crate::error::InvokeError {
        let message = if expose {
            format!("the app {app:?} failed to load: {self}")
        } else {
            format!("the app {app:?} failed to load; see the node's log")
        };
        crate::error::InvokeError::new(crate::error::ErrorCode::LoadError, message)
    }
}
