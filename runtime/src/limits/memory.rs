//! An isolate's memory as its limit counts it: the engine's heap plus, on V8, the contents of
//! ArrayBuffers, which V8 keeps outside its heap (QuickJS counts them in its heap).
//!
//! The heap is bounded by the engine's heap limit and the near-heap-limit callback. Buffer
//! contents are bounded here: every backing store the engine allocates for a script goes through
//! [`IsolateMemory::reserve`] (on V8, through an array-buffer allocator of ours), which refuses
//! an allocation that would take buffers plus the last heap figure past the limit. A refused
//! allocation is not yet a breach: the engine collects garbage and asks again (V8 asks three
//! times, with a full collection before each retry). Only [`REFUSALS_TO_BREACH`] refusals in a
//! row, with no allocation granted in between, terminate the isolate for memory. After each
//! event-loop turn the host refreshes the heap figure and checks the sum again (buffers made
//! outside the allocator, e.g. handed over by ops, count there).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::LimitKind;
use super::watchdog::Watched;

/// Refusals in a row (garbage collected between them, nothing granted) that make a breach: V8
/// retries a failed backing-store allocation twice, after a full collection each time.
pub const REFUSALS_TO_BREACH: u32 = 3;

/// The memory one isolate holds, against its limit. Shared between the isolate's thread and
/// the engine's allocator.
pub struct IsolateMemory {
    limit: usize,
    /// Bytes of buffer contents allocated and not yet freed.
    buffers: AtomicUsize,
    /// The heap's used size when it was last read.
    heap: AtomicUsize,
    /// Allocations refused since the last one granted.
    refusals: AtomicU32,
    /// Set once the isolate is made: how a refused allocation stops it.
    watched: OnceLock<Arc<Watched>>,
}

impl IsolateMemory {
    /// Memory for an isolate allowed `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            buffers: AtomicUsize::new(0),
            heap: AtomicUsize::new(0),
            refusals: AtomicU32::new(0),
            watched: OnceLock::new(),
        })
    }

    /// The isolate exists: a breach terminates it through `watched`.
    pub fn watch(&self, watched: Arc<Watched>) {
        let _ = self.watched.set(watched);
    }

    /// Counts `len` more bytes of buffer contents. False when that would take the isolate past
    /// its limit; the [`REFUSALS_TO_BREACH`]th refusal in a row also terminates the isolate for
    /// memory.
    pub fn reserve(&self, len: usize) -> bool {
        let heap = self.heap.load(Ordering::Relaxed);
        let room = self.limit.saturating_sub(heap);
        let reserved = self
            .buffers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(len).filter(|total| *total <= room)
            })
            .is_ok();
        if reserved {
            self.refusals.store(0, Ordering::Relaxed);
        } else if self.refusals.fetch_add(1, Ordering::Relaxed) + 1 >= REFUSALS_TO_BREACH {
            self.breach();
        }
        reserved
    }

    /// Counts `len` more bytes held for the isolate outside the engine (a WebSocket message
    /// waiting for the script, a send waiting for the peer), if they fit under its limit.
    /// Unlike [`Self::reserve`], a refusal is the caller's to handle (the socket closes, the
    /// send throws), never a step towards terminating the isolate.
    pub fn try_reserve(&self, len: usize) -> bool {
        let heap = self.heap.load(Ordering::Relaxed);
        let room = self.limit.saturating_sub(heap);
        self.buffers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(len).filter(|total| *total <= room)
            })
            .is_ok()
    }

    /// `len` bytes of buffer contents were freed.
    pub fn release(&self, len: usize) {
        let _ = self
            .buffers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(len))
            });
    }

    /// Bytes of buffer contents held now.
    pub fn buffers(&self) -> usize {
        self.buffers.load(Ordering::Relaxed)
    }

    /// Whether the buffers granted here are a noticeable share of the limit (a sixteenth), so
    /// that heap plus buffers could pass it before the heap alone nears its own limit (which
    /// the engine's callback catches): then every turn counts again.
    pub fn buffers_noticeable(&self) -> bool {
        self.buffers() > self.limit / 16
    }

    /// Records the heap's used size and says whether heap and buffers together are past the
    /// limit, without acting on it (the caller may collect garbage and [`Self::check`] again).
    pub fn exceeds(&self, heap: usize, external: usize) -> bool {
        self.heap.store(heap, Ordering::Relaxed);
        heap.saturating_add(self.buffers().max(external)) > self.limit
    }

    /// Records the heap's used size and the engine's count of buffer contents (which includes
    /// those granted here and those made elsewhere, e.g. by ops); terminates the isolate for
    /// memory and returns true if heap and buffers together are past the limit.
    pub fn check(&self, heap: usize, external: usize) -> bool {
        if self.exceeds(heap, external) {
            self.breach();
            return true;
        }
        false
    }

    fn breach(&self) {
        if let Some(watched) = self.watched.get() {
            watched.terminate(LimitKind::Memory);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_and_heap_share_one_limit() {
        let memory = IsolateMemory::new(1000);
        assert!(memory.reserve(600));
        assert!(!memory.reserve(401), "past the limit");
        assert!(memory.reserve(400));
        memory.release(400);
        assert_eq!(memory.buffers(), 600);
        assert!(!memory.check(300, 0));
        assert!(
            !memory.reserve(101),
            "the heap's share is taken into account"
        );
        assert!(memory.reserve(100));
        assert!(!memory.check(300, 700), "buffers are not counted twice");
        assert!(memory.check(300, 701), "buffers made elsewhere count");
        memory.release(usize::MAX);
        assert_eq!(memory.buffers(), 0);
    }

    #[test]
    fn only_refusals_in_a_row_make_a_breach() {
        let memory = IsolateMemory::new(100);
        for _ in 0..5 {
            assert!(!memory.reserve(101));
            assert!(!memory.reserve(101));
            assert!(memory.reserve(1), "a grant in between resets the count");
            memory.release(1);
        }
        assert_eq!(memory.refusals.load(Ordering::Relaxed), 0);
        for n in 1..=REFUSALS_TO_BREACH {
            assert!(!memory.reserve(101));
            assert_eq!(memory.refusals.load(Ordering::Relaxed), n);
        }
    }
}
