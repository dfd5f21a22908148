//! V8's array-buffer allocator, made to count: V8 keeps ArrayBuffer contents outside its heap,
//! so its heap limit alone would let a script hold any amount of memory in buffers. Every
//! backing store V8 allocates for the isolate goes through [`IsolateMemory::reserve`]; past the
//! limit the allocation fails (V8 throws a `RangeError`) and the isolate is terminated for
//! memory. (QuickJS counts buffers in its own heap and needs none of this.)
#![allow(
    unsafe_code,
    reason = "V8 calls the allocator through a C vtable; each function below documents its contract"
)]

use std::ffi::c_void;
use std::sync::Arc;

use deno_core::v8;

use crate::limits::memory::IsolateMemory;

static VTABLE: v8::RustAllocatorVtable<IsolateMemory> = v8::RustAllocatorVtable {
    allocate,
    allocate_uninitialized,
    free,
    drop: drop_handle,
};

/// An allocator that charges every buffer to `memory`. It holds a reference to `memory` until
/// V8 drops it (after the isolate).
pub(crate) fn allocator(memory: Arc<IsolateMemory>) -> v8::SharedRef<v8::Allocator> {
    let handle = Arc::into_raw(memory);
    // SAFETY: `handle` is a live `Arc` given to V8, which passes it to every vtable function
    // and calls `drop_handle` once when the allocator goes, which gives the reference back.
    unsafe { v8::new_rust_allocator(handle, &VTABLE) }.make_shared()
}

/// Zeroed memory for `len` bytes, or null when the isolate may not have it.
unsafe extern "C" fn allocate(memory: &IsolateMemory, len: usize) -> *mut c_void {
    if !memory.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: plain C allocation; a zero size is made one byte so that success is never null.
    let data = unsafe { libc::calloc(len.max(1), 1) };
    if data.is_null() {
        memory.release(len);
    }
    data
}

/// Memory for `len` bytes that V8 will fill, or null when the isolate may not have it.
unsafe extern "C" fn allocate_uninitialized(memory: &IsolateMemory, len: usize) -> *mut c_void {
    if !memory.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: as in `allocate`.
    let data = unsafe { libc::malloc(len.max(1)) };
    if data.is_null() {
        memory.release(len);
    }
    data
}

/// Frees what `allocate` or `allocate_uninitialized` returned; V8 passes the same `len`.
unsafe extern "C" fn free(memory: &IsolateMemory, data: *mut c_void, len: usize) {
    // SAFETY: `data` came from calloc/malloc above (or is null, which free accepts).
    unsafe { libc::free(data) };
    memory.release(len);
}

/// The allocator is gone: give back its reference to the memory count.
unsafe extern "C" fn drop_handle(memory: *const IsolateMemory) {
    // SAFETY: `memory` is the pointer `Arc::into_raw` made in `allocator`; V8 calls this once.
    drop(unsafe { Arc::from_raw(memory) });
}
