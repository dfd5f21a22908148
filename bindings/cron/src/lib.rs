//! Cron triggers, as Workers has them: `[triggers] crons = ["*/5 * * * *"]` in an app's
//! `edge.toml` runs its `scheduled(controller, env, ctx)` handler at every matching minute,
//! in UTC.
//!
//! - [`Schedule`] parses and evaluates an expression (with `croner`: names, ranges, steps,
//!   `L`, `W`, `#`, and an optional leading seconds field, an edge extension).
//! - [`FireLog`] records the last slot fired per app and expression, durably, before the
//!   handler runs ([`RedbFireLog`] in the node's `cron.redb`; [`MemoryFireLog`]), so a restart
//!   never fires a slot twice, and slots missed while the node was down fire once at start.
//! - [`Cron`] is the binding a node registers; its scheduler follows the apps the node serves
//!   and runs their handlers through the node's `Host`. Its admin route runs a handler by
//!   hand (`edge trigger cron APP`).

mod admin;
mod binding;
mod log;
mod schedule;
mod scheduler;
#[cfg(feature = "wasm")]
mod wasm;

pub use binding::{Cron, CronEntry, CronNode};
pub use log::{FireLog, LogError, LogFuture, MemoryFireLog, RedbFireLog};
pub use schedule::Schedule;
