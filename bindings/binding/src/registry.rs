//! [`Registry`]: the bindings a node hosts, their types erased, and what an app gets of them.

use std::any::Any;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::admin::{AdminFuture, AdminRequest};
use crate::binding::{AppInfo, Binding, Claim};
use crate::config::{ConfigIssue, Section};
use crate::host::Host;
use crate::store::{NodeStore, StoreError};

/// What a binding must implement to be registered: [`Binding`], with the `js` feature
/// [`crate::js::JsBinding`] too, and with the `wasm` feature [`crate::wasm::WasmBinding`].
pub trait Registrable: Binding + MaybeJs + MaybeWasm {}
impl<B: Binding + MaybeJs + MaybeWasm> Registrable for B {}

/// [`crate::js::JsBinding`] when the `js` feature is on; anything otherwise.
#[cfg(feature = "js")]
pub trait MaybeJs: crate::js::JsBinding {}
#[cfg(feature = "js")]
impl<B: crate::js::JsBinding> MaybeJs for B {}
/// [`crate::js::JsBinding`] when the `js` feature is on; anything otherwise.
#[cfg(not(feature = "js"))]
pub trait MaybeJs {}
#[cfg(not(feature = "js"))]
impl<B> MaybeJs for B {}

/// [`crate::wasm::WasmBinding`] when the `wasm` feature is on; anything otherwise.
#[cfg(feature = "wasm")]
pub trait MaybeWasm: crate::wasm::WasmBinding {}
#[cfg(feature = "wasm")]
impl<B: crate::wasm::WasmBinding> MaybeWasm for B {}
/// [`crate::wasm::WasmBinding`] when the `wasm` feature is on; anything otherwise.
#[cfg(not(feature = "wasm"))]
pub trait MaybeWasm {}
#[cfg(not(feature = "wasm"))]
impl<B> MaybeWasm for B {}

trait AnyEntry: Any + Debug + Send + Sync {}
impl<T: Any + Debug + Send + Sync> AnyEntry for T {}

/// One binding an app's `edge.toml` declares: a name on `env` and the entry behind it.
#[derive(Clone, Debug)]
pub struct DeclaredBinding {
    /// The binding's kind (`"kv"`).
    pub kind: &'static str,
    /// The name on `env`, if the entry puts one there.
    pub name: Option<String>,
    /// Where the entry is, for errors (`"kv_namespaces[0].binding"`).
    pub name_key: String,
    /// The node-wide resource the entry claims, if any.
    pub claim: Option<Claim>,
    entry: Arc<dyn AnyEntry>,
}

/// The bindings a node hosts, on one [`NodeStore`]. Cheap to clone; clones share the open
/// storage.
#[derive(Clone)]
pub struct Registry {
    store: NodeStore,
    bindings: Arc<Vec<Arc<dyn Erased>>>,
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.store)
            .field("kinds", &self.kinds().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Registry {
    /// No bindings, in memory.
    fn default() -> Self {
        Self::new(NodeStore::Memory)
    }
}

impl Registry {
    /// No bindings yet, keeping their data in `store`.
    pub fn new(store: NodeStore) -> Self {
        Self {
            store,
            bindings: Arc::default(),
        }
    }

    /// Adds `binding`. Its kind and config key must be new to the registry.
    ///
    /// # Panics
    /// If another binding has the same kind or config key (a mistake in the binary, not input).
    pub fn register<B: Registrable>(mut self, binding: B) -> Self {
        assert!(
            self.find_kind(binding.kind()).is_none()
                && binding
                    .config_key()
                    .is_none_or(|key| self.find_key(key).is_none()),
            "binding kind {:?} or key {:?} registered twice",
            binding.kind(),
            binding.config_key()
        );
        Arc::make_mut(&mut self.bindings).push(Arc::new(Typed {
            binding,
            node: Mutex::new(None),
        }));
        self
    }

    /// The registered kinds, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.bindings.iter().map(|b| b.kind())
    }

    /// Whether `key` is a binding's top-level `edge.toml` key.
    pub fn is_config_key(&self, key: &str) -> bool {
        self.find_key(key).is_some()
    }

    /// Reads a binding's section of an app's config; `None` if no binding has the key.
    pub fn parse(
        &self,
        section: &Section<'_>,
    ) -> Option<Result<Vec<DeclaredBinding>, ConfigIssue>> {
        Some(self.find_key(section.key())?.parse(section))
    }

    /// The error an app gets for claiming `resource` of `kind`, which `owner` has.
    pub fn claimed(&self, kind: &str, resource: &str, owner: &str) -> String {
        match self.find_kind(kind) {
            Some(b) => b.claimed(resource, owner),
            None => format!("{resource:?} belongs to app {owner:?}"),
        }
    }

    /// The config key of `kind`'s entries (`None` for an unknown kind or one no app declares).
    pub fn config_key(&self, kind: &str) -> Option<&'static str> {
        self.find_kind(kind).and_then(|b| b.config_key())
    }

    /// Opens the storage of every binding of `kinds` not yet open (at node start: the kinds
    /// some app declares). The error names the binding's file.
    pub fn open<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) -> Result<(), StoreError> {
        for kind in kinds {
            if let Some(b) = self.find_kind(kind) {
                b.open(&self.store)?;
            }
        }
        Ok(())
    }

    /// Whether any declared binding's storage is open (an ambient one, the Cache API's, is
    /// every app's and opens its file on first use; it needs no admin endpoint for the CLI).
    pub fn any_open(&self) -> bool {
        self.bindings
            .iter()
            .any(|b| b.config_key().is_some() && b.is_open())
    }

    /// What `app` gets for its `declared` bindings, opening storage as needed. The error
    /// names the kind whose storage could not be opened.
    pub fn configure(
        &self,
        app: &AppInfo<'_>,
        declared: &[DeclaredBinding],
    ) -> Result<AppBindings, (&'static str, StoreError)> {
        let mut out = AppBindings::default();
        let mut list = Vec::new();
        for b in self.bindings.iter() {
            let mine: Vec<&DeclaredBinding> =
                declared.iter().filter(|d| d.kind == b.kind()).collect();
            // An ambient binding (no config key: the Cache API) is every app's.
            if mine.is_empty() && b.config_key().is_some() {
                continue;
            }
            let state = b
                .configure(&self.store, app, &mine)
                .map_err(|e| (b.config_key().unwrap_or(b.kind()), e))?;
            for (index, d) in mine.iter().enumerate() {
                if let Some(name) = &d.name {
                    list.push((name.clone(), b.kind(), index as u32));
                }
            }
            out.apps.push((b.clone(), state));
        }
        out.list = Arc::new(list);
        Ok(out)
    }

    /// Tells every binding which apps are served now and what each declares (at start, and
    /// after every change of what the node serves), with the `host` that runs their handlers:
    /// triggers (cron, queue consumers) start, follow or stop accordingly. A binding no app
    /// declares is told too (with no apps) if its storage is open; an ambient one is told of
    /// every app.
    pub fn attach(&self, apps: &[(&str, &[DeclaredBinding])], host: &Arc<dyn Host>) {
        for b in self.bindings.iter() {
            let mine: Vec<(&str, Vec<&DeclaredBinding>)> = apps
                .iter()
                .map(|(app, declared)| {
                    let of_kind = declared.iter().filter(|d| d.kind == b.kind()).collect();
                    (*app, of_kind)
                })
                // An ambient binding is every app's: it is told of every app served.
                .filter(|(_, d): &(&str, Vec<_>)| !d.is_empty() || b.config_key().is_none())
                .collect();
            if mine.is_empty() && !b.is_open() {
                continue;
            }
            if let Err(e) = b.attach(&self.store, &mine, host) {
                tracing::error!(kind = b.kind(), "cannot open the binding's storage: {e}");
            }
        }
    }

    /// Every open binding's samples for the node's metrics, in registration order.
    pub fn metrics(&self) -> Vec<crate::MetricSample> {
        self.bindings.iter().flat_map(|b| b.metrics()).collect()
    }

    /// Hands an admin request to the first open binding that answers its path.
    pub fn admin(&self, request: &mut AdminRequest) -> Option<AdminFuture> {
        self.bindings.iter().find_map(|b| b.admin(request))
    }

    /// The deno_core extensions of the registered bindings, after the registry's own
    /// (`edge_binding`), in registration order. Every isolate gets these, in this order.
    #[cfg(feature = "js")]
    pub fn extensions(&self) -> Vec<deno_core::Extension> {
        let mut exts = vec![crate::js::edge_binding::init()];
        exts.extend(self.bindings.iter().filter_map(|b| b.extension()));
        exts
    }

    /// Adds every registered binding's host interfaces for wasm guests to `linker`.
    #[cfg(feature = "wasm")]
    pub fn add_to_linker(
        &self,
        linker: &mut wasmtime::component::Linker<crate::wasm::StoreData>,
    ) -> wasmtime::Result<()> {
        for b in self.bindings.iter() {
            b.add_to_linker(linker)?;
        }
        Ok(())
    }

    fn find_kind(&self, kind: &str) -> Option<&Arc<dyn Erased>> {
        self.bindings.iter().find(|b| b.kind() == kind)
    }

    fn find_key(&self, key: &str) -> Option<&Arc<dyn Erased>> {
        self.bindings.iter().find(|b| b.config_key() == Some(key))
    }
}

/// What one app gets of its bindings: the state each kind made for it, and the list its
/// isolates' JavaScript builds `env` from. Cheap to clone.
#[derive(Clone, Default)]
pub struct AppBindings {
    list: Arc<Vec<(String, &'static str, u32)>>,
    apps: Vec<(Arc<dyn Erased>, Arc<dyn Any + Send + Sync>)>,
}

impl AppBindings {
    /// `[name, kind, index]` for each binding: `index` is the entry's position among the
    /// app's bindings of that kind.
    pub fn list(&self) -> &[(String, &'static str, u32)] {
        &self.list
    }

    /// Puts the app's bindings into an isolate's op state (each kind's state, and the list
    /// for `ext:edge_binding/registry.js`).
    #[cfg(feature = "js")]
    pub fn install(&self, state: &mut deno_core::OpState) {
        state.put(crate::js::BindingList(self.list.clone()));
        for (binding, app) in &self.apps {
            binding.install(app.as_ref(), state);
        }
    }
}

impl AppBindings {
    /// Puts the app's bindings into the slots its wasm guests get.
    #[cfg(feature = "wasm")]
    pub fn install_wasm(&self, slots: &mut crate::wasm::Slots) {
        for (binding, app) in &self.apps {
            let named: Vec<(&str, u32)> = self
                .list
                .iter()
                .filter(|(_, kind, _)| *kind == binding.kind())
                .map(|(name, _, index)| (name.as_str(), *index))
                .collect();
            binding.install_wasm(app.as_ref(), &named, slots);
        }
    }
}

/// A binding with its type erased, and its storage once open.
trait Erased: Any + Send + Sync {
    fn kind(&self) -> &'static str;
    fn config_key(&self) -> Option<&'static str>;
    fn parse(&self, section: &Section<'_>) -> Result<Vec<DeclaredBinding>, ConfigIssue>;
    fn claimed(&self, resource: &str, owner: &str) -> String;
    fn open(&self, store: &NodeStore) -> Result<(), StoreError>;
    fn is_open(&self) -> bool;
    fn configure(
        &self,
        store: &NodeStore,
        app: &AppInfo<'_>,
        entries: &[&DeclaredBinding],
    ) -> Result<Arc<dyn Any + Send + Sync>, StoreError>;
    fn attach(
        &self,
        store: &NodeStore,
        apps: &[(&str, Vec<&DeclaredBinding>)],
        host: &Arc<dyn Host>,
    ) -> Result<(), StoreError>;
    fn admin(&self, request: &mut AdminRequest) -> Option<AdminFuture>;
    fn metrics(&self) -> Vec<crate::MetricSample>;
    #[cfg(feature = "js")]
    fn extension(&self) -> Option<deno_core::Extension>;
    #[cfg(feature = "js")]
    fn install(&self, app: &(dyn Any + Send + Sync), state: &mut deno_core::OpState);
    #[cfg(feature = "wasm")]
    fn add_to_linker(
        &self,
        linker: &mut wasmtime::component::Linker<crate::wasm::StoreData>,
    ) -> wasmtime::Result<()>;
    #[cfg(feature = "wasm")]
    fn install_wasm(
        &self,
        app: &(dyn Any + Send + Sync),
        named: &[(&str, u32)],
        slots: &mut crate::wasm::Slots,
    );
}

/// The entry behind `declared`, if it is `B`'s.
fn entry<B: Binding>(declared: &DeclaredBinding) -> Option<&B::Entry> {
    (declared.entry.as_ref() as &dyn Any).downcast_ref::<B::Entry>()
}

struct Typed<B: Binding> {
    binding: B,
    node: Mutex<Option<Arc<B::Node>>>,
}

impl<B: Binding> Typed<B> {
    fn node(&self) -> MutexGuard<'_, Option<Arc<B::Node>>> {
        self.node.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn opened(&self, store: &NodeStore) -> Result<Arc<B::Node>, StoreError> {
        let mut node = self.node();
        if let Some(node) = &*node {
            return Ok(node.clone());
        }
        let opened = Arc::new(self.binding.open(store)?);
        *node = Some(opened.clone());
        Ok(opened)
    }
}

impl<B: Registrable> Erased for Typed<B> {
    fn kind(&self) -> &'static str {
        self.binding.kind()
    }

    fn config_key(&self) -> Option<&'static str> {
        self.binding.config_key()
    }

    fn parse(&self, section: &Section<'_>) -> Result<Vec<DeclaredBinding>, ConfigIssue> {
        Ok(self
            .binding
            .parse(section)?
            .into_iter()
            .map(|d| DeclaredBinding {
                kind: self.binding.kind(),
                claim: self.binding.claim(&d.entry),
                name: d.name,
                name_key: d.name_key,
                entry: Arc::new(d.entry),
            })
            .collect())
    }

    fn claimed(&self, resource: &str, owner: &str) -> String {
        self.binding.claimed(resource, owner)
    }

    fn open(&self, store: &NodeStore) -> Result<(), StoreError> {
        self.opened(store).map(drop)
    }

    fn is_open(&self) -> bool {
        self.node().is_some()
    }

    fn configure(
        &self,
        store: &NodeStore,
        app: &AppInfo<'_>,
        entries: &[&DeclaredBinding],
    ) -> Result<Arc<dyn Any + Send + Sync>, StoreError> {
        let node = self.opened(store)?;
        let entries: Vec<&B::Entry> = entries.iter().filter_map(|d| entry::<B>(d)).collect();
        Ok(Arc::new(self.binding.configure(&node, app, &entries)))
    }

    fn attach(
        &self,
        store: &NodeStore,
        apps: &[(&str, Vec<&DeclaredBinding>)],
        host: &Arc<dyn Host>,
    ) -> Result<(), StoreError> {
        let node = self.opened(store)?;
        let apps: Vec<(&str, Vec<&B::Entry>)> = apps
            .iter()
            .map(|(app, declared)| {
                (
                    *app,
                    declared.iter().filter_map(|d| entry::<B>(d)).collect(),
                )
            })
            .collect();
        self.binding.attach(&node, &apps, host);
        Ok(())
    }

    fn admin(&self, request: &mut AdminRequest) -> Option<AdminFuture> {
        let node = self.node().clone()?;
        self.binding.admin(&node, request)
    }

    fn metrics(&self) -> Vec<crate::MetricSample> {
        match self.node().clone() {
            Some(node) => self.binding.metrics(&node),
            None => Vec::new(),
        }
    }

    #[cfg(feature = "js")]
    fn extension(&self) -> Option<deno_core::Extension> {
        crate::js::JsBinding::extension(&self.binding)
    }

    #[cfg(feature = "js")]
    fn install(&self, app: &(dyn Any + Send + Sync), state: &mut deno_core::OpState) {
        if let Some(app) = app.downcast_ref::<B::App>() {
            crate::js::JsBinding::install(&self.binding, app, state);
        }
    }

    #[cfg(feature = "wasm")]
    fn add_to_linker(
        &self,
        linker: &mut wasmtime::component::Linker<crate::wasm::StoreData>,
    ) -> wasmtime::Result<()> {
        crate::wasm::WasmBinding::add_to_linker(&self.binding, linker)
    }

    #[cfg(feature = "wasm")]
    fn install_wasm(
        &self,
        app: &(dyn Any + Send + Sync),
        named: &[(&str, u32)],
        slots: &mut crate::wasm::Slots,
    ) {
        if let Some(app) = app.downcast_ref::<B::App>() {
            crate::wasm::WasmBinding::install(&self.binding, app, named, slots);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Declared;

    /// A binding of kind `"thing"` under `[[things]]`: `{ binding = "NAME", id = "…" }`, or
    /// `{ id = "…" }` for an entry with no name on `env`.
    struct Things;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        binding: Option<String>,
        id: String,
    }

    impl Binding for Things {
        type Entry = String;
        type Node = Mutex<Vec<Vec<String>>>;
        type App = Vec<String>;

        fn kind(&self) -> &'static str {
            "thing"
        }
        fn config_key(&self) -> Option<&'static str> {
            Some("things")
        }
        fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<String>>, ConfigIssue> {
            let raw: Vec<Raw> = section.deserialize()?;
            Ok(raw
                .into_iter()
                .enumerate()
                .map(|(i, r)| Declared {
                    name: r.binding,
                    name_key: format!("things[{i}]"),
                    entry: r.id,
                })
                .collect())
        }
        fn claim(&self, id: &String) -> Option<Claim> {
            Some(Claim {
                resource: id.clone(),
                shared: id == "common",
            })
        }
        fn open(&self, _: &NodeStore) -> Result<Self::Node, StoreError> {
            Ok(Mutex::default())
        }
        fn configure(&self, _: &Arc<Self::Node>, _: &AppInfo<'_>, ids: &[&String]) -> Vec<String> {
            ids.iter().map(|s| s.to_string()).collect()
        }
        fn attach(&self, node: &Arc<Self::Node>, apps: &[(&str, Vec<&String>)], _: &Arc<dyn Host>) {
            let seen = apps
                .iter()
                .map(|(app, ids)| format!("{app}:{}", ids.len()))
                .collect();
            node.lock().unwrap().push(seen);
        }
    }

    #[cfg(feature = "js")]
    impl crate::js::JsBinding for Things {
        fn extension(&self) -> Option<deno_core::Extension> {
            None
        }
        fn install(&self, _: &Vec<String>, _: &mut deno_core::OpState) {}
    }

    #[cfg(feature = "wasm")]
    impl crate::wasm::WasmBinding for Things {
        fn add_to_linker(
            &self,
            _: &mut wasmtime::component::Linker<crate::wasm::StoreData>,
        ) -> wasmtime::Result<()> {
            Ok(())
        }
        fn install(&self, _: &Vec<String>, _: &[(&str, u32)], _: &mut crate::wasm::Slots) {}
    }

    struct NoHost;
    impl Host for NoHost {
        fn dispatch(&self, _: &str, _: crate::HostEvent) -> crate::DispatchFuture {
            unreachable!("the test binding runs no handlers")
        }
    }

    fn declared(registry: &Registry, text: &str) -> Vec<DeclaredBinding> {
        let section = Section::of_document(text, "things").unwrap().unwrap();
        registry.parse(&section).unwrap().unwrap()
    }

    #[test]
    fn an_apps_bindings_reach_javascript_as_name_kind_index() {
        let registry = Registry::default().register(Things);
        let d = declared(
            &registry,
            "things = [{ binding = \"A\", id = \"x\" }, { id = \"y\" }, { binding = \"B\", id = \"z\" }]",
        );
        assert_eq!(
            d[0].claim,
            Some(Claim {
                resource: "x".into(),
                shared: false
            })
        );
        let info = AppInfo {
            name: "app",
            memory_limit: 1,
        };
        let app = registry.configure(&info, &d).unwrap();
        // The index is the entry's position among the app's entries of its kind, named or not.
        assert_eq!(
            app.list(),
            [("A".to_string(), "thing", 0), ("B".to_string(), "thing", 2)]
        );
        assert!(registry.any_open());
        assert!(registry.is_config_key("things") && !registry.is_config_key("kv_namespaces"));
    }

    #[test]
    fn attach_tells_a_binding_the_apps_that_declare_it() {
        let registry = Registry::default().register(Things);
        let host: Arc<dyn Host> = Arc::new(NoHost);
        // Not open and declared by nobody: not told.
        registry.attach(&[("plain", &[])], &host);
        assert!(!registry.any_open());
        let d = declared(&registry, "things = [{ id = \"x\" }, { id = \"y\" }]");
        registry.attach(&[("a", &d), ("plain", &[])], &host);
        registry.attach(&[("plain", &[])], &host);
        let b = registry.find_kind("thing").unwrap();
        let Some(typed) = (b.as_ref() as &dyn Any).downcast_ref::<Typed<Things>>() else {
            panic!("the registered binding is Things");
        };
        let node = typed.node().clone().unwrap();
        assert_eq!(*node.lock().unwrap(), [vec!["a:2".to_string()], vec![]]);
    }
}
