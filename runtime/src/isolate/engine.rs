//! Setting up the JavaScript engine, once per process, before the first isolate is made.
//!
//! The engine is set up in the mode of whichever runtime comes first. A snapshotting runtime
//! would set it up for reproducible builds (on V8: `--predictable`, which turns off concurrent
//! compilation and GC, and one fixed random seed for every isolate's `Math.random`), for the
//! life of a process that goes on to serve requests. So the engine is always set up for serving
//! first; the snapshot does not need the reproducible mode.

use std::sync::Once;

/// Engine flags of ours, on top of deno_core's.
///
/// `--no-memory-pool-share-memory-on-teardown`: by default V8 moves the pages of a torn-down
/// isolate's heap into a process-wide pool for other isolates to reuse, and gives them back to
/// the OS only from a delayed task, seconds later at best. With isolates discarded after a limit
/// breach, the pool held up to a whole heap limit of RSS after every breach (measured: +66 MiB
/// after one 64 MiB memory-limit breach, still there 12 s later). With the flag, an isolate's
/// pages go back to the OS when the isolate goes. (The quickjs backend ignores V8 flags.)
const FLAGS: &str = "--no-memory-pool-share-memory-on-teardown";

/// Sets up the engine for serving. Cheap after the first call.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        deno_core::v8::V8::set_flags_from_string(FLAGS);
        deno_core::JsRuntime::init_platform(None);
    });
}
