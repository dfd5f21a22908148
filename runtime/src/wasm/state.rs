//! The node's part of a wasm invocation's store (`edge_binding::wasm::StoreData`): the
//! memory limiter, and the record of which limit the invocation broke.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::limits::LimitKind;
use tokio::sync::Notify;

/// The first limit an invocation broke, and a signal for whoever waits on its reply.
#[derive(Default)]
pub(super) struct Breach {
    kind: AtomicU8,
    notify: Notify,
}

impl Breach {
    /// Records `kind` (only the first breach counts) and wakes the waiter.
    pub(super) fn set(&self, kind: LimitKind) {
        let _ = self
            .kind
            .compare_exchange(0, kind.as_u8(), Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// The limit broken, if any.
    pub(super) fn get(&self) -> Option<LimitKind> {
        LimitKind::from_u8(self.kind.load(Ordering::Acquire))
    }

    /// Resolves once a limit is broken.
    pub(super) async fn wait(&self) -> LimitKind {
        loop {
            let notified = self.notify.notified();
            if let Some(kind) = self.get() {
                return kind;
            }
            notified.await;
        }
    }
}

/// Linear memories and tables may not grow past the app's `memory_mb`; past it the guest
/// traps and the invocation answers `503 memory-limit`.
pub(super) struct Limiter {
    pub(super) memory_bytes: usize,
    pub(super) breach: Arc<Breach>,
}

/// Table elements an instance may have (function tables of real programs hold thousands).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.breach.set(LimitKind::Memory);
            wasmtime::bail!(
                "linear memory of {desired} bytes is past the app's memory limit of {} bytes",
                self.memory_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.breach.set(LimitKind::Memory);
            wasmtime::bail!(
                "a table of {desired} elements is past the limit of {MAX_TABLE_ELEMENTS}"
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
