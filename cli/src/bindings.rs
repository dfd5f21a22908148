//! The bindings this binary hosts, with the operator's settings for them from the command
//! line. A new binding is its crate plus one `register` line here.

use edge_runtime::Registry;
use edge_runtime::edge_binding::NodeStore;

/// What the command line says about the bindings.
#[derive(Default)]
pub struct Settings {
    /// `--kv-quota-mb`, in bytes.
    pub kv_namespace_quota: Option<u64>,
    /// `--share-kv`: namespace ids more than one app may bind.
    pub shared_kv: Vec<String>,
    /// `--queue-quota-mb`, in bytes.
    pub queue_quota: Option<u64>,
    /// `--cache-mb` and `--cache-app-mb`.
    pub cache: edge_cache::Bounds,
}

/// The bindings of a node keeping their data in `store`.
pub fn registry(store: NodeStore, settings: Settings) -> anyhow::Result<Registry> {
    Ok(Registry::new(store)
        .register(edge_kv::Kv {
            namespace_quota: settings.kv_namespace_quota,
            clock: kv_clock()?,
            shared: settings.shared_kv,
        })
        .register(edge_cron::Cron)
        .register(edge_queue::Queues {
            queue_quota: settings.queue_quota,
        })
        .register(edge_cache::Cache {
            bounds: settings.cache,
        }))
}

/// `EDGE_KV_CLOCK=manual`: KV expirations run on a clock the admin endpoint can move forward
/// (for tests of expiry; Workers' shortest TTL is 60 s).
fn kv_clock() -> anyhow::Result<Option<edge_kv::ManualClock>> {
    match std::env::var("EDGE_KV_CLOCK").as_deref() {
        Err(_) | Ok("" | "system") => Ok(None),
        Ok("manual") => Ok(Some(edge_kv::ManualClock::new())),
        Ok(other) => anyhow::bail!("EDGE_KV_CLOCK={other:?}: expected `system` or `manual`"),
    }
}
