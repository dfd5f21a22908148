//! Helping the engine stop a turn it was told to terminate and that goes on running.
//!
//! The quickjs engine (the `quickjs` feature) checks for termination only every 10,000 calls,
//! and throws its uncatchable termination error at that call. A promise chain whose round
//! trip is a divisor of that count (`const loop = () => Promise.resolve().then(loop)`) is then
//! hit at the same place in every round; when that place is past the point where the next
//! link was queued (the engine's promise jobs turn the error into a rejection there), the
//! chain never ends and the isolate's thread is lost. Seen: about one start in three under
//! load. The watchdog therefore requests [`nudge`] as an interrupt while a terminated turn
//! keeps running: it queues one no-op microtask, and the calls that takes shift where the
//! next check lands, so within a few rounds it lands where the chain breaks. V8 checks for
//! termination everywhere and stops such a turn at once; there the nudge never runs or is a
//! harmless no-op microtask.
#![allow(
    unsafe_code,
    reason = "an interrupt callback is a C function handed a raw isolate pointer"
)]

use deno_core::JsRuntime;
use deno_core::v8;

/// The no-op function [`nudge`] queues, kept in an isolate slot.
struct NoOp(v8::Global<v8::Function>);

/// Makes the no-op function for [`nudge`] in `runtime`'s main context.
pub(super) fn install(runtime: &mut JsRuntime) {
    fn noop(_: &mut v8::PinScope, _: v8::FunctionCallbackArguments, _: v8::ReturnValue) {}
    let f = {
        deno_core::scope!(scope, runtime);
        v8::Function::new(scope, noop).map(|f| v8::Global::new(scope, f))
    };
    if let Some(f) = f {
        runtime.v8_isolate().set_slot(NoOp(f));
    }
}

/// How the watchdog stops a JavaScript isolate: `terminate_execution`, and the nudge.
pub(super) struct JsInterrupt(pub(super) v8::IsolateHandle);

impl crate::limits::watchdog::Interrupt for JsInterrupt {
    fn terminate(&self) {
        self.0.terminate_execution();
    }

    fn nudge(&self) {
        self.0.request_interrupt(nudge, std::ptr::null_mut());
    }
}

/// The interrupt: queues the no-op microtask (see the module documentation).
///
/// # Safety
/// Called by the engine on the isolate's own thread, with that live isolate.
unsafe extern "C" fn nudge(isolate: v8::UnsafeRawIsolatePtr, _data: *mut std::ffi::c_void) {
    // SAFETY: the engine passes the isolate the interrupt was requested on, on its thread.
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr_unchecked(isolate) };
    let Some(NoOp(f)) = isolate.get_slot::<NoOp>() else {
        return;
    };
    let f = f.clone();
    v8::scope!(let scope, &mut isolate);
    let f = v8::Local::new(scope, f);
    scope.enqueue_microtask(f);
}
