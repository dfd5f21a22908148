//! Defects found by probing the node as a hostile tenant and a hostile client would: each test
//! failed before its fix. Fixture apps are in `tests/fixtures/hardening/`.

mod claims;
mod cpu;
mod front_door;
mod host_files;
mod kv_writes;
mod load_retry;
mod logs;
#[cfg(feature = "v8")]
mod memory;
mod responses;
mod shutdown;
mod slow_readers;
// V8 only, as `memory`: the RSS they measure is the front door's, but on the quickjs engine
// every response with a large string body leaks a copy of it in the engine facade (README).
#[cfg(feature = "v8")]
mod unread;
mod uploads;
