//! [`Kv`]: the KV binding as a node hosts it: `[[kv_namespaces]]` in `edge.toml`, one
//! `kv.redb` per node, each app handed the namespaces it names.

use std::sync::Arc;

use edge_binding::{
    AppInfo, Binding, Claim, ConfigIssue, Declared, NodeStore, Section, StoreError,
};
use serde::Deserialize;

use crate::app::KvBindings;
use crate::backend::KvBackend;
use crate::clock::ManualClock;
use crate::memory::MemoryBackend;
use crate::namespace::Namespace;
use crate::redb::{RedbBackend, RedbOptions};

/// The KV binding, with the operator's settings for it.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    /// Most bytes one namespace may store; `None` for no quota.
    pub namespace_quota: Option<u64>,
    /// Measure expirations against this clock instead of the system's (tests); the admin
    /// endpoint can then move it (`POST /v1/clock/advance?secs=N`).
    pub clock: Option<ManualClock>,
    /// Namespace ids more than one app may bind. Any other id belongs to the first app (in
    /// folder name order) that binds it.
    pub shared: Vec<String>,
}

/// One `[[kv_namespaces]]` entry: the namespace its binding names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvEntry {
    /// The namespace id; apps binding the same id share data.
    pub id: String,
}

/// A node's KV storage.
pub struct KvNode {
    backend: Arc<dyn KvBackend>,
    clock: Option<ManualClock>,
    /// Operations made on each namespace since the node started.
    ops: std::sync::Mutex<std::collections::BTreeMap<String, Arc<crate::namespace::OpCounts>>>,
}

impl KvNode {
    /// The namespace `id` on the node's storage, under the same rules as in scripts; its
    /// operations are counted for the node's metrics.
    pub fn namespace(&self, id: impl Into<Arc<str>>) -> Namespace {
        let id: Arc<str> = id.into();
        let ops = self
            .ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone();
        Namespace::counted(self.backend.clone(), id, ops)
    }

    /// The clock the admin endpoint may move, if the node runs on one.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.clock.as_ref()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKvNamespace {
    binding: Option<String>,
    id: Option<String>,
    #[allow(
        dead_code,
        reason = "accepted for wrangler compatibility; edge dev uses `id` locally too"
    )]
    preview_id: Option<String>,
}

impl Binding for Kv {
    type Entry = KvEntry;
    type Node = KvNode;
    type App = KvBindings;

    fn kind(&self) -> &'static str {
        "kv"
    }

    fn config_key(&self) -> Option<&'static str> {
        Some("kv_namespaces")
    }

    fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<KvEntry>>, ConfigIssue> {
        let raw: Vec<RawKvNamespace> = section.deserialize()?;
        raw.into_iter()
            .enumerate()
            .map(|(i, ns)| {
                let key = |field: &str| format!("kv_namespaces[{i}].{field}");
                let name = ns.binding.ok_or_else(|| {
                    ConfigIssue::invalid(
                        key("binding"),
                        "missing: the name on `env`, e.g. binding = \"MY_KV\"",
                    )
                })?;
                let id = ns.id.ok_or_else(|| {
                    ConfigIssue::invalid(
                        key("id"),
                        "missing: the namespace id, e.g. id = \"0f2ac74b498b48028cb68387c421e279\"",
                    )
                })?;
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(ConfigIssue::invalid(
                        key("id"),
                        format!("{id:?} is not valid: use 1 to 64 letters, digits, `-` or `_`"),
                    ));
                }
                Ok(Declared {
                    name: Some(name),
                    name_key: key("binding"),
                    entry: KvEntry { id },
                })
            })
            .collect()
    }

    fn claim(&self, entry: &KvEntry) -> Option<Claim> {
        Some(Claim {
            resource: entry.id.clone(),
            shared: self.shared.contains(&entry.id),
        })
    }

    fn claimed(&self, id: &str, owner: &str) -> String {
        format!(
            "namespace {id:?} belongs to app {owner:?}; a node lets apps share a namespace only when its operator says so (edge serve --share-kv {id})"
        )
    }

    fn open(&self, store: &NodeStore) -> Result<KvNode, StoreError> {
        let clock: Arc<dyn crate::Clock> = match &self.clock {
            Some(clock) => Arc::new(clock.clone()),
            None => Arc::new(crate::SystemClock),
        };
        let backend: Arc<dyn KvBackend> = match store.dir() {
            Some(dir) => {
                let path = RedbBackend::file_in(dir);
                let options = RedbOptions {
                    namespace_quota: self.namespace_quota,
                    clock,
                    ..Default::default()
                };
                let backend = RedbBackend::open(&path, options)?;
                tracing::info!(path = %path.display(), "kv store open");
                Arc::new(backend)
            }
            None => Arc::new(MemoryBackend::with_clock(clock)),
        };
        Ok(KvNode {
            backend,
            clock: self.clock.clone(),
            ops: Default::default(),
        })
    }

    fn configure(&self, node: &Arc<KvNode>, app: &AppInfo<'_>, entries: &[&KvEntry]) -> KvBindings {
        KvBindings::new(
            entries
                .iter()
                .map(|e| node.namespace(e.id.as_str()))
                .collect(),
        )
        // Values awaiting commit live outside the heap: at most one memory limit of them.
        .with_backlog_limit(app.memory_limit)
    }

    fn admin(
        &self,
        node: &Arc<KvNode>,
        request: &mut edge_binding::admin::AdminRequest,
    ) -> Option<edge_binding::admin::AdminFuture> {
        crate::admin::route(node.clone(), request)
    }

    fn metrics(&self, node: &Arc<KvNode>) -> Vec<edge_binding::MetricSample> {
        let ops = node.ops.lock().unwrap_or_else(|p| p.into_inner());
        let mut samples = Vec::new();
        for (namespace, counts) in ops.iter() {
            for (op, n) in crate::namespace::OpCounts::KINDS
                .iter()
                .zip(counts.snapshot())
            {
                samples.push(edge_binding::MetricSample {
                    name: "edge_kv_operations",
                    help: "KV operations on a namespace, by kind (get, get_bulk, put, delete, list).",
                    kind: edge_binding::MetricKind::Counter,
                    labels: vec![("namespace", namespace.clone()), ("op", op.to_string())],
                    value: n as f64,
                });
            }
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Declared<KvEntry>>, String> {
        let section = Section::of_document(text, "kv_namespaces")
            .map_err(|e| e.to_string())?
            .expect("the text has kv_namespaces");
        Kv::default().parse(&section).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_in_order_with_their_names() {
        let entries = parse(
            "kv_namespaces = [{ binding = \"CACHE\", id = \"cache-1\", preview_id = \"x\" }, { binding = \"B\", id = \"b\" }]",
        )
        .unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|d| {
                (
                    d.name.as_deref().unwrap(),
                    d.name_key.as_str(),
                    d.entry.id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("CACHE", "kv_namespaces[0].binding", "cache-1"),
                ("B", "kv_namespaces[1].binding", "b")
            ]
        );
    }

    #[test]
    fn bad_entries_name_the_key() {
        let e = parse("[[kv_namespaces]]\nbinding = \"KV\"").unwrap_err();
        assert!(
            e.contains("`kv_namespaces[0].id`") && e.contains("missing"),
            "{e}"
        );
        let e = parse("[[kv_namespaces]]\nid = \"a\"").unwrap_err();
        assert!(
            e.contains("`kv_namespaces[0].binding`") && e.contains("missing"),
            "{e}"
        );
        let e = parse("kv_namespaces = [{binding = \"KV\", id = \"a b\"}]").unwrap_err();
        assert!(e.contains("`kv_namespaces[0].id`"), "{e}");
        let e = parse("\n[[kv_namespaces]]\nbinding = \"KV\"\nid = 7\n").unwrap_err();
        assert!(e.contains("line 4") && e.contains("kv_namespaces"), "{e}");
        let e = parse("[[kv_namespaces]]\nbinding = \"KV\"\nid = \"a\"\nttl = 1\n").unwrap_err();
        assert!(
            e.contains("unknown field `ttl`") && e.contains("line 4"),
            "{e}"
        );
    }

    #[test]
    fn a_namespace_is_claimed_unless_the_operator_shares_it() {
        let kv = Kv {
            shared: vec!["common".into()],
            ..Kv::default()
        };
        let claim = |id: &str| kv.claim(&KvEntry { id: id.into() }).unwrap();
        assert!(!claim("mine").shared);
        assert!(claim("common").shared);
        assert!(kv.claimed("mine", "other").contains("--share-kv mine"));
    }
}
