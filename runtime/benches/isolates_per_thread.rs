//! Thread-per-isolate (edge's design) against several isolates per thread, on V8: the resident
//! memory each blank isolate costs, the time to make them, and the threads it takes, both
//! ways, in one run.
//!
//! `cargo bench -p edge-runtime --bench isolates_per_thread [-- N]` (default 200 isolates).
//! Each isolate is what the warm pool makes: restored from edge's startup snapshot with edge's
//! extensions and a 128 MiB heap limit, then one small script run in it. "one thread each"
//! gives every isolate its own thread with its own event loop, as edge does; "shared" makes
//! them all on as many threads as there are cores, as workerd and Deno Deploy do, each thread
//! holding its isolates for the whole run (V8 wants isolates on one thread dropped in reverse
//! order of creation, so they are). On the quickjs engine it only says why it does not apply:
//! a QuickJS thread can host only about 50 runtimes in its life.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::sync::{Arc, Barrier};
use std::time::Instant;

fn main() {
    if cfg!(feature = "quickjs") {
        println!(
            "isolates_per_thread: not run on the quickjs engine (one thread per isolate is required there)"
        );
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let snapshot: &'static [u8] = Box::leak(
        edge_runtime::isolate::snapshot::create(&Default::default())
            .expect("build the startup snapshot")
            .into_boxed_slice(),
    );
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "{n} blank isolates restored from edge's snapshot ({} KiB)",
        snapshot.len() >> 10
    );
    println!(
        "{:<28} {:>8} {:>12} {:>11} {:>12} {:>12}",
        "layout", "threads", "KiB/isolate", "ms to make", "KiB left", "after trim"
    );
    for (name, threads) in [("one thread each (edge)", n), ("shared", cores.min(n))] {
        let base = rss_kib();
        let started = Instant::now();
        let made = Arc::new(Barrier::new(threads + 1));
        let done = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = n / threads + usize::from(t < n % threads);
                let (made, done) = (made.clone(), done.clone());
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn(move || host(snapshot, count, &made, &done))
                    .expect("spawn a thread")
            })
            .collect();
        made.wait();
        let elapsed = started.elapsed();
        let full = rss_kib();
        done.wait();
        for h in handles {
            h.join().expect("an isolate thread panicked");
        }
        // What the process still holds once every isolate is dropped, and after handing the
        // allocator's free memory back to the OS (as edge does when an isolate goes).
        let after = rss_kib();
        edge_runtime::limits::thread_clock::release_free_memory();
        let trimmed = rss_kib();
        println!(
            "{name:<28} {threads:>8} {:>12.0} {:>11.1} {:>12} {:>12}",
            (full - base) as f64 / n as f64,
            elapsed.as_secs_f64() * 1000.0,
            after - base,
            trimmed - base
        );
    }
}

/// Makes `count` isolates on this thread, runs a script in each, waits at `made` until every
/// thread has made its own, then at `done`, and drops them newest first.
fn host(snapshot: &'static [u8], count: usize, made: &Barrier, done: &Barrier) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("an event loop");
    let _context = rt.enter();
    let mut isolates = Vec::with_capacity(count);
    for i in 0..count {
        let mut runtime = deno_core::JsRuntime::new(deno_core::RuntimeOptions {
            extensions: edge_runtime::isolate::snapshot::extensions(&Default::default()),
            startup_snapshot: Some(snapshot),
            create_params: Some(deno_core::v8::CreateParams::default().heap_limits(0, 128 << 20)),
            ..Default::default()
        });
        runtime
            .execute_script("bench.js", format!("globalThis.n = {i} + 1"))
            .expect("run a script");
        isolates.push(runtime);
    }
    made.wait();
    done.wait();
    while let Some(runtime) = isolates.pop() {
        drop(runtime);
    }
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}
