//! The deno_core adapter: the global `caches` in JavaScript. The ops only convert and call
//! [`AppCache`]; `js/01_cache.js` gives them Workers' `CacheStorage` and `Cache` shape and
//! checks what Workers checks before a call reaches the cache.
//!
//! An isolate reaches only its own app's entries: the [`AppCache`] it is given carries the
//! app's name, which is part of every key, and scripts name only a cache and a URL.
//!
//! `put` streams: the script's response body is handed over chunk by chunk
//! (`op_cache_put_chunk`), counted (with the key and headers) against the app's bound on bytes
//! waiting outside the heap, so a large body never sits in the heap whole. `match` parks the
//! body it found and the script copies it into a buffer of its own (`op_cache_take_body`), so
//! what a script holds of the cache is in its heap and counts against its memory limit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use deno_core::{OpState, op2};
use serde::{Deserialize, Serialize};

use crate::answer::Conditions;
use crate::app::{AppCache, Pending};
use crate::backend::EntryKey;
use crate::error::CacheError;
use crate::policy::Storable;

/// Most puts one isolate may have reading their bodies at once; past it a put stores nothing.
const MAX_OPEN_PUTS: usize = 1024;
/// Most bytes of a key (URL or `cf.cacheKey`): a longer one is never stored or found.
pub const MAX_KEY_BYTES: usize = 16 << 10;
/// Most bytes of a stored response's headers: past it the response is not stored.
pub const MAX_HEADER_BYTES: usize = 128 << 10;

deno_core::extension!(
    edge_cache,
    deps = [edge_web, edge_binding],
    ops = [
        op_cache_match,
        op_cache_take_body,
        op_cache_put_begin,
        op_cache_put_chunk,
        op_cache_put_end,
        op_cache_put_abort,
        op_cache_delete,
    ],
    esm_entry_point = "ext:edge_cache/01_cache.js",
    esm = [dir "js", "01_cache.js"],
    state = |state| {
        state.put(Installed(None));
        state.put(OpenPuts::default());
        state.put(Found::default());
    },
);

/// The app's cache in an isolate's op state, once installed.
struct Installed(Option<AppCache>);

impl edge_binding::js::JsBinding for crate::Cache {
    fn extension(&self) -> Option<deno_core::Extension> {
        Some(edge_cache::init())
    }

    fn install(&self, app: &AppCache, state: &mut OpState) {
        state.put(Installed(Some(app.clone())));
    }
}

/// Puts reading their bodies, by id.
#[derive(Default)]
struct OpenPuts {
    next: u32,
    open: HashMap<u32, OpenPut>,
}

struct OpenPut {
    key: EntryKey,
    status: u16,
    storable: Storable,
    body: Vec<u8>,
    /// Its key, headers and body so far, counted as waiting outside the heap.
    pending: Pending,
}

fn app(state: &OpState) -> Result<AppCache, CacheError> {
    state
        .borrow::<Installed>()
        .0
        .clone()
        .ok_or(CacheError::Closed)
}

/// What `match` asks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchQuery {
    cache: Option<String>,
    key: String,
    #[serde(flatten)]
    conditions: Conditions,
}

/// What `match` answers: the head, and the length of the body parked under `body` (0: none).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchReply {
    status: u16,
    status_text: String,
    headers: Vec<(String, String)>,
    /// The parked body's id, 0 when the answer has no body.
    body: u32,
    length: usize,
}

/// Bodies `match` found, waiting for the script to copy them (at once: in the continuation of
/// the same promise).
#[derive(Default)]
struct Found {
    next: u32,
    parked: HashMap<u32, Vec<u8>>,
}

/// `cache.match(request)`: the stored answer, or `null`.
#[op2]
#[serde]
async fn op_cache_match(
    state: Rc<RefCell<OpState>>,
    #[serde] query: MatchQuery,
) -> Result<Option<MatchReply>, CacheError> {
    if query.key.len() > MAX_KEY_BYTES {
        return Ok(None);
    }
    let app = app(&state.borrow())?;
    let key = app.key(query.cache.as_deref(), query.key);
    let Some(answer) = app.lookup(&key, &query.conditions).await? else {
        return Ok(None);
    };
    let (body, length) = match answer.body {
        Some(bytes) => {
            let mut state = state.borrow_mut();
            let found = state.borrow_mut::<Found>();
            found.next = found.next.wrapping_add(1).max(1);
            while found.parked.contains_key(&found.next) {
                found.next = found.next.wrapping_add(1).max(1);
            }
            let length = bytes.len();
            found.parked.insert(found.next, bytes);
            (found.next, length)
        }
        None => (0, 0),
    };
    Ok(Some(MatchReply {
        status: answer.status,
        status_text: answer.status_text,
        headers: answer.headers,
        body,
        length,
    }))
}

/// Copies the body `match` parked under `id` into `into` (the script's buffer of its length)
/// and lets it go; given an empty buffer (the script could not allocate one), only lets it go.
#[op2(fast)]
fn op_cache_take_body(state: &mut OpState, id: u32, #[buffer] into: &mut [u8]) {
    if let Some(bytes) = state.borrow_mut::<Found>().parked.remove(&id)
        && bytes.len() == into.len()
    {
        into.copy_from_slice(&bytes);
    }
}

/// The response `put` is given, before its body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutHead {
    cache: Option<String>,
    key: String,
    status: u16,
    headers: Vec<(String, String)>,
    /// The request carried `Authorization`.
    authorized: bool,
    /// Seconds to keep it whatever its headers say (a fetch's `cf.cacheTtl`).
    forced_ttl: Option<f64>,
}

/// Starts a `put`: the id its body chunks go to, or 0 if the response is not stored (the
/// script still reads its body, as Workers does).
#[op2]
fn op_cache_put_begin(state: &mut OpState, #[serde] head: PutHead) -> Result<u32, CacheError> {
    let app = app(state)?;
    let header_bytes: usize = head.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if head.key.len() > MAX_KEY_BYTES || header_bytes > MAX_HEADER_BYTES {
        app.skipped();
        return Ok(0);
    }
    // A negative or fractional TTL from the script: negative stores nothing, the rest is whole
    // seconds (`as` saturates).
    let forced_ttl = head.forced_ttl.map(|t| {
        if t.is_finite() && t > 0.0 {
            t as u64
        } else {
            0
        }
    });
    let Ok(storable) = app.admit(head.status, &head.headers, head.authorized, forced_ttl) else {
        return Ok(0);
    };
    let puts = state.borrow_mut::<OpenPuts>();
    if puts.open.len() >= MAX_OPEN_PUTS {
        app.skipped();
        return Ok(0);
    }
    // The key and headers wait outside the heap too.
    let Some(pending) = app.reserve((head.key.len() + header_bytes) as u64) else {
        app.skipped();
        return Ok(0);
    };
    puts.next = puts.next.wrapping_add(1).max(1);
    while puts.open.contains_key(&puts.next) {
        puts.next = puts.next.wrapping_add(1).max(1);
    }
    let id = puts.next;
    puts.open.insert(
        id,
        OpenPut {
            key: app.key(head.cache.as_deref(), head.key),
            status: head.status,
            storable,
            body: Vec::new(),
            pending,
        },
    );
    Ok(id)
}

/// Adds a chunk to the body of put `id`; false once the body went past a bound (nothing will
/// be stored; the script may stop sending).
#[op2(fast)]
fn op_cache_put_chunk(state: &mut OpState, id: u32, #[buffer] chunk: &[u8]) -> bool {
    let Ok(app) = app(state) else {
        return false;
    };
    let puts = state.borrow_mut::<OpenPuts>();
    let Some(put) = puts.open.get_mut(&id) else {
        return false;
    };
    if app.grow(&mut put.pending, chunk.len() as u64) {
        put.body.extend_from_slice(chunk);
        return true;
    }
    // Nothing will be stored: the slot goes now (the script stops sending).
    puts.open.remove(&id);
    app.skipped();
    false
}

/// Ends put `id`: stores the entry (resolving once the cache has it); whether it was stored.
#[op2]
async fn op_cache_put_end(state: Rc<RefCell<OpState>>, id: u32) -> Result<bool, CacheError> {
    let (app, put) = {
        let mut state = state.borrow_mut();
        let app = app(&state)?;
        let put = state.borrow_mut::<OpenPuts>().open.remove(&id);
        (app, put)
    };
    let Some(put) = put else {
        return Ok(false);
    };
    // Counted as waiting until the cache has the bytes.
    let _pending = put.pending;
    app.store(put.key, put.status, put.storable, put.body).await
}

/// Drops put `id` (its body errored).
#[op2(fast)]
fn op_cache_put_abort(state: &mut OpState, id: u32) {
    state.borrow_mut::<OpenPuts>().open.remove(&id);
}

/// `cache.delete(request)`: whether a fresh entry was removed.
#[op2]
async fn op_cache_delete(
    state: Rc<RefCell<OpState>>,
    #[string] cache: Option<String>,
    #[string] key: String,
) -> Result<bool, CacheError> {
    if key.len() > MAX_KEY_BYTES {
        return Ok(false);
    }
    let app = app(&state.borrow())?;
    // The key waits outside the heap until the writer has it; past the app's bound the delete
    // fails (deletes not awaited in a loop cannot queue without end).
    let Some(_pending) = app.reserve(key.len() as u64) else {
        return Err(CacheError::Busy);
    };
    let key = app.key(cache.as_deref(), key);
    app.delete(&key).await
}
