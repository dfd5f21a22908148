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
