//! Changing what a node serves while it runs: read the apps again, load the new versions off
//! the request path, and replace the table whole. Unchanged apps keep their tenants (and warm
//! isolates); a new version that fails to load, or an `edge.toml` that no longer reads, leaves
//! the old version serving; requests in flight finish on the version they started on.

use std::path::PathBuf;
use std::sync::Arc;

use super::table::{self, Scanned, Table};
use super::{Node, NodeError, Source};
use crate::config::{AppConfig, ConfigError};

/// What a reload changed, by app name.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Reloaded {
    /// Apps served now that were not before.
    pub added: Vec<String>,
    /// Apps served in a new version.
    pub replaced: Vec<String>,
    /// Apps no longer served (their folder is gone, or they are left out now).
    pub removed: Vec<String>,
    /// Apps served as before.
    pub unchanged: usize,
    /// Apps whose config is invalid or claims what another app has: left out, or kept at
    /// the version already serving.
    pub errors: Vec<ConfigError>,
    /// Apps whose new version failed to load, with why: the old version keeps serving.
    pub failed: Vec<(String, crate::isolate::LoadError)>,
}

impl Reloaded {
    /// Whether the reload changed nothing and found nothing wrong.
    pub fn is_nothing(&self) -> bool {
        self.added.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.errors.is_empty()
            && self.failed.is_empty()
    }

    /// What a request should be shown about this reload's failures (the first), if any.
    fn error_to_show(&self) -> Option<crate::error::InvokeError> {
        use crate::error::{ErrorCode, InvokeError};
        if let Some((app, e)) = self.failed.first() {
            return Some(e.reply(app, true));
        }
        self.errors.first().map(|e| {
            InvokeError::new(
                ErrorCode::ConfigError,
                format!("the change was not loaded: {e}"),
            )
        })
    }
}

impl Node {
    /// Reads the node's apps again and serves what changed (see the module documentation).
    /// One reload runs at a time; a second waits for the first.
    pub async fn reload(&self) -> Result<Reloaded, NodeError> {
        let _one = self.reloading.lock().await;
        let previous = self.current.load_full();
        let mut report = Reloaded::default();
        let mut keep: Vec<PathBuf> = Vec::new();
        let next = loop {
            let (next, errors) = self.read(&previous, &keep)?;
            // New versions of apps already served load before they serve.
            let mut retry = false;
            for served in next.served() {
                let folder = &served.tenant.app().root;
                let replaces = previous
                    .serving_folder(folder)
                    .is_some_and(|old| !Arc::ptr_eq(&old.tenant, &served.tenant));
                if !replaces {
                    continue;
                }
                if let Err(e) = served.tenant.load().await {
                    tracing::error!(
                        tenant = served.tenant.name(),
                        "the new version failed to load; the old one keeps serving: {e}"
                    );
                    served.tenant.retire();
                    report.failed.push((served.tenant.name().to_string(), e));
                    keep.push(folder.clone());
                    retry = true;
                }
            }
            if !retry {
                report.errors = errors;
                break next;
            }
        };
        // Apps served in a new version, or no longer, forget their errors (by name and folder).
        let mut settled: Vec<String> = Vec::new();
        for served in next.served() {
            let (name, folder) = (served.tenant.name(), &served.tenant.app().root);
            match previous.serving_folder(folder) {
                Some(old) if Arc::ptr_eq(&old.tenant, &served.tenant) => {
                    report.unchanged += 1;
                    continue;
                }
                None => report.added.push(name.to_string()),
                Some(_) => report.replaced.push(name.to_string()),
            }
            settled.extend([name.to_string(), folder.display().to_string()]);
        }
        self.current.store(Arc::new(next));
        self.attach_table();
        // Tenants no longer served stop taking requests; their isolates finish what is in
        // flight and stop.
        let now = self.current.load();
        for old in previous.served() {
            let kept = now
                .served()
                .iter()
                .any(|s| Arc::ptr_eq(&s.tenant, &old.tenant));
            if !kept {
                old.tenant.retire();
                if now.serving_folder(&old.tenant.app().root).is_none() {
                    report.removed.push(old.tenant.name().to_string());
                    settled.push(old.tenant.name().to_string());
                }
            }
        }
        self.record_errors(&settled, &report.failed, &report.errors);
        if self.options.expose_errors {
            let mut shown = self.error_to_show.lock().unwrap_or_else(|p| p.into_inner());
            match report.error_to_show() {
                Some(e) => *shown = Some(e),
                None if !report.is_nothing() => *shown = None,
                None => {}
            }
        }
        Ok(report)
    }

    /// The table the node's apps make now, given what it serves (`previous`) and the folders
    /// whose new version failed to load (`keep`).
    fn read(
        &self,
        previous: &Table,
        keep: &[PathBuf],
    ) -> Result<(Table, Vec<ConfigError>), NodeError> {
        match &self.source {
            Source::Apps(dir) => {
                let built = table::build(
                    table::scan(dir, &self.options.bindings, self.options.env.as_deref())?,
                    Some(previous),
                    keep,
                    &self.options,
                    &self.shared,
                );
                Ok((built.table, built.errors))
            }
            Source::Single(dir) => {
                let scanned = Scanned {
                    folder: dir.clone(),
                    config: AppConfig::load_env(
                        dir,
                        &self.options.bindings,
                        self.options.env.as_deref(),
                    ),
                    fingerprint: super::single_fingerprint(dir, &self.options),
                };
                Ok(self.read_single(scanned, previous, keep))
            }
        }
    }

    /// [`Node::read`] for the one app of `edge dev`: it is never left out, only kept.
    fn read_single(
        &self,
        scanned: Scanned,
        previous: &Table,
        keep: &[PathBuf],
    ) -> (Table, Vec<ConfigError>) {
        let old = &previous.served()[0];
        let keep_old = |errors| (Table::single(old.tenant.clone(), old.fingerprint), errors);
        if keep.contains(&scanned.folder) || scanned.fingerprint == old.fingerprint {
            return keep_old(Vec::new());
        }
        let config = match scanned.config {
            Ok(config) => config,
            Err(e) => return keep_old(vec![e]),
        };
        match super::new_tenant(config, &self.options, self.shared.clone()) {
            Ok(tenant) => (Table::single(tenant, scanned.fingerprint), Vec::new()),
            Err(e) => keep_old(vec![e]),
        }
    }
}
