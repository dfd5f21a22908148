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
mod unread;
mod uploads;
