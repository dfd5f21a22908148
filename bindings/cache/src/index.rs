//! What a backend holds, in memory: each entry's size, when it expires and when it was last
//! used, so the backend can keep each app and the node within their byte bounds by evicting
//! the least recently used, and drop expired entries, without reading its storage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::backend::{EntryKey, Usage};

/// Bytes an entry costs beyond its body, headers and key: the index's own records, the file's
/// row overhead, the key stored twice. Charged so that many tiny entries cannot hold far more
/// memory and disk than the bounds say.
pub const ENTRY_OVERHEAD: u64 = 512;
/// Most expired entries one insert removes (the writer sweeps the rest when idle), so no put
/// pays for a large backlog of others' expiries.
pub(crate) const EXPIRED_PER_INSERT: usize = 256;
/// Most entries one insert may evict; an entry that would need more is not stored.
pub(crate) const MAX_EVICTIONS_PER_INSERT: usize = 4096;

/// What an entry of `entry_bytes` (body and headers) under `key` is charged.
pub fn charge(key: &EntryKey, entry_bytes: u64) -> u64 {
    entry_bytes
        .saturating_add(2 * key.size())
        .saturating_add(ENTRY_OVERHEAD)
}

/// What an insert did: whether the entry went in, and what left to make room (expired or
/// evicted), to be removed from storage either way.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    pub(crate) stored: bool,
    pub(crate) gone: Vec<EntryKey>,
}

/// The bytes a backend may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// For every app's entries together (the node's disk).
    pub node_bytes: u64,
    /// For one app's entries, over all its caches: one app filling its share evicts only its
    /// own entries.
    pub app_bytes: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            node_bytes: 1 << 30,
            app_bytes: 256 << 20,
        }
    }
}

struct Slot {
    size: u64,
    seq: u64,
    expires_at: u64,
}

#[derive(Default)]
struct AppUse {
    bytes: u64,
    lru: BTreeMap<u64, Arc<EntryKey>>,
}

/// Entries by key, by last use (node-wide and per app) and by expiry.
pub(crate) struct Index {
    bounds: Bounds,
    entries: HashMap<Arc<EntryKey>, Slot>,
    lru: BTreeMap<u64, Arc<EntryKey>>,
    apps: HashMap<Arc<str>, AppUse>,
    expiry: BTreeSet<(u64, u64)>,
    total: u64,
    seq: u64,
    evicted: u64,
}

impl Index {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            apps: HashMap::new(),
            expiry: BTreeSet::new(),
            total: 0,
            seq: 0,
            evicted: 0,
        }
    }

    /// Forgets everything (the bounds stay).
    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.bounds);
    }

    /// Whether an entry of `size` bytes can be held at all.
    pub(crate) fn fits(&self, size: u64) -> bool {
        size <= self.bounds.app_bytes && size <= self.bounds.node_bytes
    }

    /// Marks `key` as just used.
    pub(crate) fn touch(&mut self, key: &EntryKey) {
        let Some((key, slot)) = self.entries.get_key_value(key) else {
            return;
        };
        let (key, old) = (key.clone(), slot.seq);
        self.seq += 1;
        let seq = self.seq;
        self.lru.remove(&old);
        self.lru.insert(seq, key.clone());
        if let Some(app) = self.apps.get_mut(&key.app) {
            app.lru.remove(&old);
            app.lru.insert(seq, key.clone());
        }
        let slot = self.entries.get_mut(&key).expect("present");
        self.expiry.remove(&(slot.expires_at, old));
        self.expiry.insert((slot.expires_at, seq));
        slot.seq = seq;
    }

    /// Adds `key` (replacing it if held), removing what must go to stay within the bounds:
    /// some entries expired at `now`, then the app's least recently used, then, past the
    /// node's bound, the least recently used of the app holding the most. If that would take
    /// more than [`MAX_EVICTIONS_PER_INSERT`] evictions the entry is not added (what was
    /// evicted stays evicted). The caller has checked [`Index::fits`].
    pub(crate) fn insert(
        &mut self,
        key: EntryKey,
        size: u64,
        expires_at: u64,
        now: u64,
    ) -> Inserted {
        self.remove(&key);
        let mut gone = self.expired(now, EXPIRED_PER_INSERT);
        self.seq += 1;
        let seq = self.seq;
        let key = Arc::new(key);
        let app = self.apps.entry(key.app.clone()).or_default();
        app.bytes += size;
        app.lru.insert(seq, key.clone());
        self.lru.insert(seq, key.clone());
        self.expiry.insert((expires_at, seq));
        self.entries.insert(
            key.clone(),
            Slot {
                size,
                seq,
                expires_at,
            },
        );
        self.total += size;
        let mut evictions = 0;
        while self.apps[&key.app].bytes > self.bounds.app_bytes {
            let oldest = self.apps[&key.app].lru.values().next().cloned();
            match oldest {
                Some(old) if *old != *key && evictions < MAX_EVICTIONS_PER_INSERT => {
                    gone.push(self.evict(&old));
                    evictions += 1;
                }
                _ => break,
            }
        }
        while self.total > self.bounds.node_bytes && evictions < MAX_EVICTIONS_PER_INSERT {
            // The app holding the most gives way first: filling the node evicts the filler.
            let Some(largest) = self
                .apps
                .iter()
                .max_by_key(|(_, a)| a.bytes)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            let oldest = self.apps[&largest]
                .lru
                .values()
                .find(|k| ***k != *key)
                .cloned();
            match oldest {
                Some(old) => {
                    gone.push(self.evict(&old));
                    evictions += 1;
                }
                None => break,
            }
        }
        let over = self.apps[&key.app].bytes > self.bounds.app_bytes
            || self.total > self.bounds.node_bytes;
        if over {
            self.remove(&key);
        }
        Inserted {
            stored: !over,
            gone,
        }
    }

    /// Every key of an app not in `apps` (apps the node no longer serves).
    pub(crate) fn others(&self, apps: &[Arc<str>]) -> Vec<EntryKey> {
        self.apps
            .iter()
            .filter(|(name, _)| !apps.contains(name))
            .flat_map(|(_, a)| a.lru.values().map(|k| (**k).clone()))
            .collect()
    }

    fn evict(&mut self, key: &EntryKey) -> EntryKey {
        self.remove(key);
        self.evicted += 1;
        key.clone()
    }

    /// Forgets `key`; whether it was held.
    pub(crate) fn remove(&mut self, key: &EntryKey) -> bool {
        let Some(slot) = self.entries.remove(key) else {
            return false;
        };
        self.lru.remove(&slot.seq);
        self.expiry.remove(&(slot.expires_at, slot.seq));
        self.total -= slot.size;
        if let Some(app) = self.apps.get_mut(&key.app) {
            app.bytes -= slot.size;
            app.lru.remove(&slot.seq);
            if app.lru.is_empty() {
                self.apps.remove(&key.app);
            }
        }
        true
    }

    /// Forgets up to `max` entries expired at `now` and returns them.
    pub(crate) fn expired(&mut self, now: u64, max: usize) -> Vec<EntryKey> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&(at, seq)) = self.expiry.first() else {
                break;
            };
            if at > now {
                break;
            }
            let key = self.lru.get(&seq).cloned().expect("indexed");
            self.remove(&key);
            out.push((*key).clone());
        }
        out
    }

    /// What is held.
    pub(crate) fn usage(&self) -> Usage {
        Usage {
            entries: self.entries.len() as u64,
            bytes: self.total,
            evicted: self.evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, url: &str) -> EntryKey {
        EntryKey {
            app: app.into(),
            cache: "".into(),
            url: url.into(),
        }
    }

    #[test]
    fn an_app_past_its_share_evicts_its_own_least_recently_used() {
        let mut index = Index::new(Bounds {
            node_bytes: 1000,
            app_bytes: 300,
        });
        assert!(index.insert(key("b", "1"), 200, 10_000, 0).gone.is_empty());
        assert!(index.insert(key("a", "1"), 100, 10_000, 0).gone.is_empty());
        assert!(index.insert(key("a", "2"), 100, 10_000, 0).gone.is_empty());
        index.touch(&key("a", "1"));
        // a/2 is a's least recently used; b's entry is not a's to evict.
        assert_eq!(
            index.insert(key("a", "3"), 150, 10_000, 0),
            Inserted {
                stored: true,
                gone: vec![key("a", "2")]
            }
        );
        assert_eq!(index.usage().bytes, 450);
        assert_eq!(index.usage().evicted, 1);
    }

    #[test]
    fn the_node_past_its_bound_evicts_from_the_app_holding_the_most() {
        let mut index = Index::new(Bounds {
            node_bytes: 300,
            app_bytes: 300,
        });
        index.insert(key("a", "1"), 100, 10_000, 0);
        index.insert(key("b", "1"), 100, 10_000, 0);
        index.insert(key("b", "2"), 100, 10_000, 0);
        // a's entry is the oldest, but b holds the most.
        assert_eq!(
            index.insert(key("c", "1"), 100, 10_000, 0).gone,
            [key("b", "1")]
        );
        assert!(!index.fits(301));
        assert_eq!(index.others(&["a".into(), "c".into()]), [key("b", "2")]);
    }

    #[test]
    fn an_insert_that_would_evict_without_end_stores_nothing() {
        let mut index = Index::new(Bounds {
            node_bytes: u64::MAX,
            app_bytes: MAX_EVICTIONS_PER_INSERT as u64 + 10,
        });
        for i in 0..MAX_EVICTIONS_PER_INSERT + 10 {
            index.insert(key("a", &i.to_string()), 1, 10_000, 0);
        }
        let big = index.insert(
            key("a", "big"),
            MAX_EVICTIONS_PER_INSERT as u64 + 10,
            10_000,
            0,
        );
        assert!(!big.stored);
        assert_eq!(big.gone.len(), MAX_EVICTIONS_PER_INSERT);
        assert_eq!(index.usage().entries, 10);
    }

    #[test]
    fn expired_entries_go_first_and_a_replaced_key_is_counted_once() {
        let mut index = Index::new(Bounds::default());
        index.insert(key("a", "old"), 10, 5, 0);
        index.insert(key("a", "x"), 10, 100, 0);
        index.insert(key("a", "x"), 30, 100, 0);
        assert_eq!(index.usage().bytes, 40);
        assert_eq!(
            index.insert(key("a", "y"), 1, 100, 6).gone,
            [key("a", "old")]
        );
        assert_eq!(index.usage().entries, 2);
        assert!(index.remove(&key("a", "x")));
        assert!(!index.remove(&key("a", "x")));
        assert_eq!(index.usage().bytes, 1);
    }
}
