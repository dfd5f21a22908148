//! Turns: every stretch of the tenant's JavaScript runs as one turn under the watchdog, its CPU
//! charged to the invocations in flight (`limits::meter`), its memory counted after it; between
//! turns the wall-clock deadline and blocking-pool work are watched.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use deno_core::{JsRuntime, PollEventLoopOptions};

use super::LoadError;
use super::ops::{HostState, expire_overdue};
use super::thread::Guard;
use crate::limits::LimitKind;
use crate::limits::memory::IsolateMemory;

/// Why an isolate stopped early.
pub(super) enum Stop {
    /// A limit was breached; the isolate must be discarded.
    Breach(LimitKind),
    /// The app's module could not be compiled or evaluated.
    Load(LoadError),
    /// Loading failed, or the host loop died on an uncaught error.
    Error(String),
}

pub(super) fn observe_heap(
    runtime: &mut JsRuntime,
    memory: &IsolateMemory,
    stats: &crate::limits::TenantStats,
) {
    let heap = runtime.v8_isolate().get_heap_statistics();
    stats.observe_heap((heap.used_heap_size() + memory.buffers()) as u64);
}

/// How much CPU an isolate may use between two full counts of its memory (reading the
/// engine's heap statistics walks every heap space: too slow for every turn of a busy isolate).
const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(10);

/// After a turn: heap plus buffers against the memory limit (see [`IsolateMemory`]), when
/// [`MEMORY_CHECK_EVERY`] of CPU has passed since the last count or the buffers counted by the
/// allocator are a noticeable share of the limit. `last` is the CPU clock at the last count.
fn check_memory(
    runtime: &mut JsRuntime,
    memory: &IsolateMemory,
    now: Duration,
    last: &mut Duration,
) {
    if now.saturating_sub(*last) < MEMORY_CHECK_EVERY && !memory.buffers_noticeable() {
        return;
    }
    *last = now;
    let heap = runtime.v8_isolate().get_heap_statistics();
    if !memory.exceeds(heap.used_heap_size(), heap.external_memory()) {
        return;
    }
    // Over, perhaps only because of garbage: V8 counts buffers no longer reachable until it
    // collects them (a handler streaming through a large upload leaves one per chunk). Collect
    // once, then judge.
    #[cfg(feature = "v8")]
    let heap = {
        runtime.v8_isolate().low_memory_notification();
        runtime.v8_isolate().get_heap_statistics()
    };
    memory.check(heap.used_heap_size(), heap.external_memory());
}

/// The outcome once the host's future or the event loop has finished, if either has.
fn settle<T, E: std::fmt::Display>(
    done: Poll<Result<T, E>>,
    event_loop: Poll<Result<(), deno_core::error::CoreError>>,
) -> Poll<Result<T, Stop>> {
    match (done, event_loop) {
        (Poll::Ready(r), _) => Poll::Ready(r.map_err(|e| Stop::Error(e.to_string()))),
        (Poll::Pending, Poll::Ready(Err(e))) => Poll::Ready(Err(Stop::Error(e.to_string()))),
        (Poll::Pending, Poll::Ready(Ok(()))) => Poll::Ready(Err(Stop::Error(
            "the event loop finished with the host's promise still pending".into(),
        ))),
        (Poll::Pending, Poll::Pending) => Poll::Pending,
    }
}

/// Runs `f` — anything that can run the tenant's JavaScript: a turn of the event loop, the
/// module's top level, a script — as one turn under the watchdog: it stops a turn that runs
/// past its CPU budget or wall-clock deadline, and the CPU the turn used is charged to the
/// invocations in flight. JavaScript never runs outside such a turn.
pub(super) fn turn<R>(
    runtime: &mut JsRuntime,
    guard: &Guard,
    f: impl FnOnce(&mut JsRuntime) -> R,
) -> Result<R, Stop> {
    let state = runtime.op_state();
    if !state.borrow().borrow::<HostState>().enforce_limits {
        return Ok(f(runtime));
    }
    let watched = &*guard.watched;
    // Invocations already past their deadline stop here, before any script runs: a turn must
    // never start under a deadline that has passed (the watchdog would stop it, and with it
    // the isolate and every other invocation on it).
    let now = Instant::now();
    expire_overdue(&mut state.borrow_mut(), now);
    let (budget, deadline) = state.borrow_mut().borrow_mut::<HostState>().begin_turn();
    // A turn that crosses a deadline may be another invocation's work: stop it only once it
    // has overrun by a margin (a turn using CPU meets its CPU budget first; this catches one
    // that blocks), so a busy machine pausing the thread does not discard the isolate.
    let deadline = deadline.map(|at| at.max(now + TURN_WALL_GRACE));
    // Read the clock at both ends of the turn: between turns the thread runs the front door's
    // tasks for this isolate (its connections), which are not the tenant's CPU.
    let started = watched.cpu_now();
    watched.begin_turn(started, budget, deadline);
    let out = f(runtime);
    let script_ended = watched.cpu_now();
    watched.end_turn();
    let mut checked = guard.memory_checked.get();
    check_memory(runtime, &guard.memory, script_ended, &mut checked);
    guard.memory_checked.set(checked);
    // Read again: counting memory may have collected the isolate's garbage, which is its work.
    let ended = watched.cpu_now();
    // CPU the isolate's blocking-pool threads used since the last turn is the tenant's too.
    let used = ended.saturating_sub(started) + guard.blocking.take_new();
    let over = state.borrow_mut().borrow_mut::<HostState>().charge(used);
    if let Some(kind) = watched.breach() {
        return Err(Stop::Breach(kind));
    }
    if let Some(kind) = over {
        watched.terminate(kind);
        return Err(Stop::Breach(kind));
    }
    Ok(out)
}

/// How far past the most urgent wall-clock deadline a running turn may go before the watchdog
/// stops it (and discards the isolate); see [`turn`].
const TURN_WALL_GRACE: Duration = Duration::from_millis(100);

/// How often an isolate waiting on blocking-pool work charges the CPU that work used.
const BLOCKING_CHARGE_EVERY: Duration = Duration::from_millis(5);

/// Runs the event loop until `fut` resolves, every poll a [`turn`]. Between turns, a timer
/// enforces the wall-clock deadline.
pub(super) async fn drive<T, E: std::fmt::Display>(
    runtime: &mut JsRuntime,
    guard: &Guard,
    mut fut: impl Future<Output = Result<T, E>> + Unpin,
) -> Result<T, Stop> {
    let state = runtime.op_state();
    let mut wall_timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)> = None;
    let mut blocking_tick: Option<tokio::time::Interval> = None;
    poll_fn(|cx| {
        let polled = turn(runtime, guard, |runtime| {
            let event_loop = runtime.poll_event_loop(cx, PollEventLoopOptions::default());
            (Pin::new(&mut fut).poll(cx), event_loop)
        });
        let (done, event_loop) = match polled {
            Ok(polled) => polled,
            Err(stop) => return Poll::Ready(Err(stop)),
        };
        if let Poll::Ready(outcome) = settle(done, event_loop) {
            return Poll::Ready(outcome);
        }
        // Waiting on I/O or timers: the wall-clock deadline still runs. (Read it again: the
        // turn may have started invocations.)
        let (_, deadline) = state.borrow().borrow::<HostState>().turn_budget();
        // While blocking-pool work runs, wake up every few ms to charge its CPU, so that a
        // long one is stopped near the CPU limit rather than when it ends.
        if !guard.blocking.busy() {
            // A thread started after the check wakes this loop (and the check is made again).
            guard.blocking.wake_on_start(cx.waker());
        }
        if guard.blocking.busy() {
            let tick = blocking_tick.get_or_insert_with(|| {
                let mut t = tokio::time::interval(BLOCKING_CHARGE_EVERY);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            while tick.poll_tick(cx).is_ready() {}
        } else {
            blocking_tick = None;
        }
        let mut deadline = deadline;
        while let Some(at) = deadline {
            if wall_timer.as_ref().is_none_or(|(armed, _)| *armed != at) {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(at));
                wall_timer = Some((at, Box::pin(sleep)));
            }
            let Some((_, timer)) = &mut wall_timer else {
                break;
            };
            if timer.as_mut().poll(cx).is_pending() {
                break;
            }
            // Overdue with no script running: only those invocations stop; the isolate and
            // everything else in flight on it carry on.
            expire_overdue(&mut state.borrow_mut(), Instant::now());
            wall_timer = None;
            deadline = state.borrow().borrow::<HostState>().turn_budget().1;
        }
        if deadline.is_none() {
            wall_timer = None;
        }
        Poll::Pending
    })
    .await
}
