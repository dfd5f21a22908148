//! The deno_core adapter: `env.MY_KV` in JavaScript. The ops only convert arguments and call
//! [`Namespace`]; `js/01_kv.js` gives them the Workers `KVNamespace` shape.
//!
//! An isolate can reach only the namespaces in its [`KvBindings`], which [`crate::Kv`] builds
//! from the app's own `edge.toml` when the app loads: a binding is an index into that list, so
//! a script has no way to name another app's namespace.

use std::cell::RefCell;
use std::rc::Rc;

use deno_core::{JsBuffer, OpState, ToJsBuffer, op2};
use serde::{Deserialize, Serialize};

use crate::app::{KvBindings, Reserved};
use crate::error::KvError;
use crate::namespace::{ListOptions, Namespace, PutOptions};
use crate::rules;

deno_core::extension!(
    edge_kv,
    deps = [deno_web, edge_binding],
    ops = [
        op_kv_check_cache_ttl,
        op_kv_check_value_len,
        op_kv_immediate_reads,
        op_kv_get_text_now,
        op_kv_get_bytes_now,
        op_kv_get_text,
        op_kv_get_bytes,
        op_kv_get_with_metadata,
        op_kv_get_many,
        op_kv_put_text,
        op_kv_put_bytes,
        op_kv_delete,
        op_kv_list,
    ],
    esm_entry_point = "ext:edge_kv/01_kv.js",
    esm = [dir "js", "01_kv.js"],
    state = |state| {
        state.put(KvBindings::default());
    },
);

impl edge_binding::js::JsBinding for crate::Kv {
    fn extension(&self) -> Option<deno_core::Extension> {
        Some(edge_kv::init())
    }

    fn install(&self, app: &KvBindings, state: &mut OpState) {
        state.put(app.clone());
    }
}

/// The namespace at `index` and the app's write backlog, counting `bytes` more.
fn namespace_for_write(
    state: &Rc<RefCell<OpState>>,
    index: u32,
    bytes: usize,
) -> Result<(Namespace, Reserved), KvError> {
    state
        .borrow()
        .borrow::<KvBindings>()
        .for_write(index, bytes as u64)
}

fn namespace(state: &Rc<RefCell<OpState>>, index: u32) -> Result<Namespace, KvError> {
    state
        .borrow()
        .borrow::<KvBindings>()
        .namespace(index)
        .cloned()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `get`'s `cacheTtl` option.
#[op2(fast)]
fn op_kv_check_cache_ttl(ttl: f64) -> Result<(), KvError> {
    rules::check_cache_ttl(ttl)
}

/// A streamed `put` value that has grown past the limit.
#[op2(fast)]
fn op_kv_check_value_len(#[number] len: usize) -> Result<(), KvError> {
    rules::check_value(len)
}

fn namespace_now(state: &OpState, index: u32) -> Result<&Namespace, KvError> {
    state.borrow::<KvBindings>().namespace(index)
}

/// Whether the binding's backend answers reads at once (then `01_kv.js` uses the `_now` ops).
#[op2(fast)]
fn op_kv_immediate_reads(state: &mut OpState, #[smi] ns: u32) -> Result<bool, KvError> {
    Ok(namespace_now(state, ns)?.immediate_reads())
}

fn now(ns: &Namespace, key: &str) -> Result<Option<crate::Entry>, KvError> {
    ns.get_now(key).unwrap_or(Err(KvError::Storage {
        op: crate::KvOp::Get,
        message: "the backend cannot answer reads at once".into(),
    }))
}

/// `get(key)` as text, synchronously (immediate-read backends).
#[op2]
#[string]
fn op_kv_get_text_now(
    state: &mut OpState,
    #[smi] ns: u32,
    #[string] key: &str,
) -> Result<Option<String>, KvError> {
    Ok(now(namespace_now(state, ns)?, key)?.map(|e| text(e.value)))
}

/// `get(key, "arrayBuffer" | "stream")`, synchronously (immediate-read backends).
#[op2]
#[serde]
fn op_kv_get_bytes_now(
    state: &mut OpState,
    #[smi] ns: u32,
    #[string] key: &str,
) -> Result<Option<ToJsBuffer>, KvError> {
    Ok(now(namespace_now(state, ns)?, key)?.map(|e| e.value.into()))
}

/// `get(key)` as text (invalid UTF-8 is replaced, as `TextDecoder` does).
#[op2]
#[string]
async fn op_kv_get_text(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
) -> Result<Option<String>, KvError> {
    let ns = namespace(&state, ns)?;
    Ok(ns.get(&key).await?.map(|e| text(e.value)))
}

/// `get(key, "arrayBuffer" | "stream")`.
#[op2]
#[serde]
async fn op_kv_get_bytes(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
) -> Result<Option<ToJsBuffer>, KvError> {
    let ns = namespace(&state, ns)?;
    Ok(ns.get(&key).await?.map(|e| e.value.into()))
}

/// A value with its metadata, for `getWithMetadata`.
#[derive(Serialize)]
struct WithMetadata {
    text: Option<String>,
    bytes: Option<ToJsBuffer>,
    metadata: Option<String>,
}

/// `getWithMetadata(key, type)`; `bytes` asks for the value as bytes rather than text.
#[op2]
#[serde]
async fn op_kv_get_with_metadata(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
    bytes: bool,
) -> Result<Option<WithMetadata>, KvError> {
    let ns = namespace(&state, ns)?;
    Ok(ns.get(&key).await?.map(|e| {
        let (text, bytes) = if bytes {
            (None, Some(e.value.into()))
        } else {
            (Some(text(e.value)), None)
        };
        WithMetadata {
            text,
            bytes,
            metadata: e.metadata,
        }
    }))
}

/// `get([keys])` / `getWithMetadata([keys])`: `[text, metadata]` or null per key, in order.
#[op2]
#[serde]
async fn op_kv_get_many(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[serde] keys: Vec<String>,
    with_metadata: bool,
) -> Result<Vec<Option<(String, Option<String>)>>, KvError> {
    let ns = namespace(&state, ns)?;
    let found = ns.get_many(&keys).await?;
    Ok(found
        .into_iter()
        .map(|e| {
            e.map(|e| {
                let meta = if with_metadata { e.metadata } else { None };
                (text(e.value), meta)
            })
        })
        .collect())
}

/// `put`'s options as `01_kv.js` passes them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PutArgs {
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
    metadata: Option<String>,
}

impl From<Option<PutArgs>> for PutOptions {
    fn from(args: Option<PutArgs>) -> Self {
        let args = args.unwrap_or_default();
        PutOptions {
            expiration: args.expiration,
            expiration_ttl: args.expiration_ttl,
            metadata: args.metadata,
        }
    }
}

/// `put(key, string)`.
#[op2]
async fn op_kv_put_text(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
    #[string] value: String,
    #[serde] options: Option<PutArgs>,
) -> Result<(), KvError> {
    rules::check_value(value.len())?;
    let (ns, _waiting) = namespace_for_write(&state, ns, value.len())?;
    ns.put(&key, value.into_bytes(), options.into()).await
}

/// `put(key, bytes)` for ArrayBuffer, views and (collected) streams.
#[op2]
async fn op_kv_put_bytes(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
    #[buffer] value: JsBuffer,
    #[serde] options: Option<PutArgs>,
) -> Result<(), KvError> {
    rules::check_value(value.len())?;
    let (ns, _waiting) = namespace_for_write(&state, ns, value.len())?;
    ns.put(&key, value.to_vec(), options.into()).await
}

/// `delete(key)`.
#[op2]
async fn op_kv_delete(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[string] key: String,
) -> Result<(), KvError> {
    let ns = namespace(&state, ns)?;
    ns.delete(&key).await
}

/// `list`'s options as `01_kv.js` passes them.
#[derive(Deserialize, Default)]
struct ListArgs {
    prefix: Option<String>,
    limit: Option<f64>,
    cursor: Option<String>,
}

/// One key of a listing, as JavaScript sees it (metadata still JSON text).
#[derive(Serialize)]
struct KeyOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
}

/// A page of `list`.
#[derive(Serialize)]
struct ListOut {
    keys: Vec<KeyOut>,
    list_complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// `list({prefix, limit, cursor})`.
#[op2]
#[serde]
async fn op_kv_list(
    state: Rc<RefCell<OpState>>,
    #[smi] ns: u32,
    #[serde] args: ListArgs,
) -> Result<ListOut, KvError> {
    let ns = namespace(&state, ns)?;
    let page = ns
        .list(ListOptions {
            prefix: args.prefix,
            limit: args.limit,
            cursor: args.cursor,
        })
        .await?;
    Ok(ListOut {
        keys: page
            .keys
            .into_iter()
            .map(|k| KeyOut {
                name: k.name,
                expiration: k.expiration,
                metadata: k.metadata,
            })
            .collect(),
        list_complete: page.list_complete,
        cursor: page.cursor,
    })
}
