//! KV for WebAssembly guests (feature `wasm`): the `wasi:keyvalue` 0.2.0-draft interfaces
//! (`store`, `atomics`, `batch`) served from the same namespaces, rules and write backlog as
//! the JavaScript binding, so a JavaScript app and a wasm app binding the same namespace id
//! see each other's data.
//!
//! - `store.open(name)` opens the app's binding called `name` (its `binding` in
//!   `[[kv_namespaces]]`); any other name is `no-such-store`, so a guest reaches only what
//!   its `edge.toml` binds.
//! - `list-keys` pages through the namespace 1000 keys at a time; its `u64` cursor stands for
//!   KV's string cursor and is valid for the bucket handle that returned it.
//! - `atomics.increment` keeps the number as decimal text (what `env.KV.get` shows in
//!   JavaScript); increments of one namespace are serialised on the node, so concurrent
//!   increments never lose a count (a plain `set` racing with one is last-write-wins, as KV).
//! - Workers' rules hold: key and value sizes, the namespace quota, the app's write backlog;
//!   a breach is the `other` error with KV's message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use edge_binding::wasm::{Slots, StoreData, WasmBinding};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::binding::Kv;
use crate::error::KvError;
use crate::namespace::{ListOptions, Namespace, PutOptions};
use crate::{KvBindings, Reserved};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: one of the app's namespaces, by its index.
pub struct Bucket {
    index: u32,
    /// KV cursors handed out by `list-keys`, by the number the guest was given (1-based).
    cursors: Vec<String>,
}

/// What an app's wasm guests may reach of KV: the app's namespaces, by binding name.
pub struct KvSlot {
    bindings: KvBindings,
    names: HashMap<String, u32>,
}

/// The host side, over a store's table and the invocation's slot.
pub struct KvHost<'a> {
    table: &'a mut ResourceTable,
    slot: Option<&'a KvSlot>,
}

struct KvData;

impl HasData for KvData {
    type Data<'a> = KvHost<'a>;
}

fn host(data: &mut StoreData) -> KvHost<'_> {
    KvHost {
        table: &mut data.table,
        slot: data.slots.get::<KvSlot>(),
    }
}

impl WasmBinding for Kv {
    fn add_to_linker(&self, linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
        store::add_to_linker::<StoreData, KvData>(linker, host)?;
        atomics::add_to_linker::<StoreData, KvData>(linker, host)?;
        batch::add_to_linker::<StoreData, KvData>(linker, host)?;
        Ok(())
    }

    fn install(&self, app: &KvBindings, named: &[(&str, u32)], slots: &mut Slots) {
        slots.insert(KvSlot {
            bindings: app.clone(),
            names: edge_binding::wasm::names(named),
        });
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

fn other(e: KvError) -> store::Error {
    store::Error::Other(e.to_string())
}

impl KvHost<'_> {
    fn bindings(&self) -> Result<&KvBindings, store::Error> {
        self.slot
            .map(|s| &s.bindings)
            .ok_or(store::Error::NoSuchStore)
    }

    fn namespace(
        &self,
        bucket: &Resource<Bucket>,
    ) -> wasmtime::Result<Result<Namespace, store::Error>> {
        let index = self.table.get(bucket)?.index;
        Ok(self
            .bindings()
            .and_then(|b| b.namespace(index).cloned().map_err(other)))
    }

    fn for_write(
        &self,
        bucket: &Resource<Bucket>,
        bytes: usize,
    ) -> wasmtime::Result<Result<(Namespace, Reserved), store::Error>> {
        let index = self.table.get(bucket)?.index;
        Ok(self
            .bindings()
            .and_then(|b| b.for_write(index, bytes as u64).map_err(other)))
    }
}

impl store::Host for KvHost<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let Some(index) = self.slot.and_then(|s| s.names.get(&identifier).copied()) else {
            return Ok(Err(store::Error::NoSuchStore));
        };
        let bucket = self.table.push(Bucket {
            index,
            cursors: Vec::new(),
        })?;
        Ok(Ok(bucket))
    }
}

impl store::HostBucket for KvHost<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let ns = match self.namespace(&bucket)? {
            Ok(ns) => ns,
            Err(e) => return Ok(Err(e)),
        };
        Ok(ns
            .get(&key)
            .await
            .map(|e| e.map(|e| e.value))
            .map_err(other))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let (ns, _waiting) = match self.for_write(&bucket, value.len())? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        Ok(ns
            .put(&key, value, PutOptions::default())
            .await
            .map_err(other))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let (ns, _waiting) = match self.for_write(&bucket, 0)? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        Ok(ns.delete(&key).await.map_err(other))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let ns = match self.namespace(&bucket)? {
            Ok(ns) => ns,
            Err(e) => return Ok(Err(e)),
        };
        Ok(ns.get(&key).await.map(|e| e.is_some()).map_err(other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        let ns = match self.namespace(&bucket)? {
            Ok(ns) => ns,
            Err(e) => return Ok(Err(e)),
        };
        let kv_cursor = match cursor {
            None | Some(0) => None,
            Some(n) => match self.table.get(&bucket)?.cursors.get(n as usize - 1) {
                Some(c) => Some(c.clone()),
                None => {
                    return Ok(Err(store::Error::Other(format!(
                        "cursor {n} was not returned by this bucket"
                    ))));
                }
            },
        };
        let page = match ns
            .list(ListOptions {
                cursor: kv_cursor,
                ..Default::default()
            })
            .await
        {
            Ok(page) => page,
            Err(e) => return Ok(Err(other(e))),
        };
        let next = match page.cursor {
            Some(c) => {
                let cursors = &mut self.table.get_mut(&bucket)?.cursors;
                cursors.push(c);
                Some(cursors.len() as u64)
            }
            None => None,
        };
        Ok(Ok(store::KeyResponse {
            keys: page.keys.into_iter().map(|k| k.name).collect(),
            cursor: next,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

/// One lock per namespace id, for `increment`'s read-modify-write.
fn increment_lock(ns: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: Mutex<Option<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> = Mutex::new(None);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let locks = locks.get_or_insert_with(HashMap::new);
    if let Some(lock) = locks.get(ns).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, l| l.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(ns.to_string(), Arc::downgrade(&lock));
    lock
}

impl atomics::Host for KvHost<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let (ns, _waiting) = match self.for_write(&bucket, 20)? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        let lock = increment_lock(ns.id());
        let _held = lock.lock().await;
        let current = match ns.get(&key).await {
            Ok(None) => 0,
            Ok(Some(entry)) => match std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(n) => n,
                None => {
                    return Ok(Err(store::Error::Other(format!(
                        "the value of {key:?} is not a decimal number"
                    ))));
                }
            },
            Err(e) => return Ok(Err(other(e))),
        };
        let Some(next) = current.checked_add(delta) else {
            return Ok(Err(store::Error::Other(format!(
                "incrementing {key:?} by {delta} overflows"
            ))));
        };
        Ok(ns
            .put(&key, next.to_string().into_bytes(), PutOptions::default())
            .await
            .map(|()| next)
            .map_err(other))
    }
}

impl batch::Host for KvHost<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let ns = match self.namespace(&bucket)? {
            Ok(ns) => ns,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Vec::with_capacity(keys.len());
        // KV's bulk get takes at most 100 keys at a time.
        for chunk in keys.chunks(100) {
            match ns.get_many(chunk).await {
                Ok(entries) => out.extend(
                    chunk
                        .iter()
                        .zip(entries)
                        .map(|(k, e)| e.map(|e| (k.clone(), e.value))),
                ),
                Err(e) => return Ok(Err(other(e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let bytes = key_values.iter().map(|(_, v)| v.len()).sum();
        let (ns, _waiting) = match self.for_write(&bucket, bytes)? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        for (key, value) in key_values {
            if let Err(e) = ns.put(&key, value, PutOptions::default()).await {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let (ns, _waiting) = match self.for_write(&bucket, 0)? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        for key in keys {
            if let Err(e) = ns.delete(&key).await {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }
}
