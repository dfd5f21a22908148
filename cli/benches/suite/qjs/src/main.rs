//! Times the suite's CPU workload under plain QuickJS-NG (through `rquickjs`), the baseline that
//! edge's per-request CPU cost is compared with.
//!
//! Usage: `edge-bench-qjs WORKLOAD.js CALLS`. Evaluates the file as a global script, calls
//! `workload()` once to warm up, then times `CALLS` calls. Prints `engine quickjs-ng X.Y.Z`,
//! `checksum N` (the warm-up call's result) and one `call_ms T` line per timed call.

use std::time::Instant;

use rquickjs::{Context, Function, Runtime, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(calls)) = (args.next(), args.next()) else {
        eprintln!("usage: edge-bench-qjs WORKLOAD.js CALLS");
        std::process::exit(2);
    };
    let calls: u32 = calls.parse().expect("CALLS is a number");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    println!("engine quickjs-ng {}", engine_version());

    let runtime = Runtime::new().expect("create a QuickJS runtime");
    let context = Context::full(&runtime).expect("create a QuickJS context");
    context.with(|ctx| {
        ctx.eval::<(), _>(source.as_str())
            .unwrap_or_else(|e| panic!("evaluate {path}: {e}"));
        let workload: Function = ctx
            .globals()
            .get("workload")
            .expect("the file defines function workload()");
        let checksum = text(&workload.call::<_, Value>(()).expect("workload() warm-up"));
        println!("checksum {checksum}");
        for _ in 0..calls {
            let start = Instant::now();
            let value = workload.call::<_, Value>(()).expect("workload()");
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(text(&value), checksum, "workload() is not deterministic");
            println!("call_ms {ms:.3}");
        }
    });
}

/// The checksum as JavaScript's `String(value)` would print an integer.
fn text(value: &Value) -> String {
    if let Some(n) = value.as_int() {
        n.to_string()
    } else if let Some(f) = value.as_float() {
        format!("{f}")
    } else if let Some(s) = value.as_string() {
        s.to_string().unwrap_or_default()
    } else {
        format!("{value:?}")
    }
}

/// The version of the QuickJS-NG library linked in, as it reports itself.
fn engine_version() -> String {
    // SAFETY: JS_GetVersion returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(rquickjs::qjs::JS_GetVersion()) }
        .to_string_lossy()
        .into_owned()
}
