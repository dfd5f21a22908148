//! Hot reload: a node watches where its apps come from (`notify`) and reloads when files
//! change, once the change has settled ([`super::settle`]). Hidden files and folders (`.edge/`
//! where `edge dev` keeps state, `.git/`, editors' swap files) are not watched for; neither
//! are reads, so loading an app never triggers another reload. Reloads run one at a time;
//! changes made during one lead to one more.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::settle::Settle;
use super::{Node, NodeError, Reloaded, Source};

/// A reload the watcher made after files changed.
#[derive(Debug)]
#[non_exhaustive]
pub struct WatchReload {
    /// What it changed, or why the node could not read its apps.
    pub result: Result<Reloaded, NodeError>,
    /// From the change settling to the new versions serving (reading, compiling and loading
    /// them included).
    pub took: Duration,
}

/// Why a node cannot watch its apps.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path} for changes: {source}")]
pub struct WatchError {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    pub source: notify::Error,
}

/// A node's watch on its apps; dropping it stops watching.
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A change as the watcher reports it: its kind (`None`: the watcher lost track, so anything
/// may have changed) and the paths it is about.
type Change = (Option<EventKind>, Vec<PathBuf>);

impl Node {
    /// Watches the node's app folder (`edge dev`) or apps directory (`edge serve`) and reloads
    /// the node when files in it change; `report` hears of every reload that did something or
    /// failed. Must be called inside a tokio runtime.
    pub fn watch(
        self: &Arc<Self>,
        report: impl Fn(WatchReload) + Send + 'static,
    ) -> Result<Watcher, WatchError> {
        let root = match &self.source {
            Source::Single(dir) | Source::Apps(dir) => dir.clone(),
        };
        // Events compare against absolute paths.
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let error = |source| WatchError {
            path: root.clone(),
            source,
        };
        let (tx, rx) = mpsc::unbounded_channel::<Change>();
        let filter_root = root.clone();
        // Hidden files are left out, but for `edge dev`'s local secrets.
        let local_vars = self.options.local_vars.clone();
        let shown = move |p: &PathBuf| {
            !is_hidden(&filter_root, p) || local_vars.as_ref().is_some_and(|l| l.is_candidate(p))
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let change = match event {
                    Ok(event) => {
                        let paths: Vec<PathBuf> = event.paths.into_iter().filter(&shown).collect();
                        if paths.is_empty() {
                            return;
                        }
                        (Some(event.kind), paths)
                    }
                    Err(e) => {
                        tracing::warn!("watching for changes: {e}; reloading to be sure");
                        (None, Vec::new())
                    }
                };
                let _ = tx.send(change);
            })
            .map_err(error)?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(error)?;
        tracing::debug!(root = %root.display(), "watching for changes");
        let task = tokio::spawn(run(Arc::downgrade(self), rx, report));
        Ok(Watcher {
            _watcher: watcher,
            task,
        })
    }
}

/// Takes in changes and reloads the node each time they settle, until the node or the watcher
/// goes.
async fn run(
    node: std::sync::Weak<Node>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    report: impl Fn(WatchReload),
) {
    let mut settle = Settle::new(cfg!(any(target_os = "linux", target_os = "android")));
    loop {
        let next = match settle.settles_at() {
            Some(at) => tokio::select! {
                change = changes.recv() => change,
                () = tokio::time::sleep_until(at.into()) => {
                    if settle.take_if_settled(Instant::now()) {
                        let Some(node) = node.upgrade() else { return };
                        let started = Instant::now();
                        let result = node.reload().await;
                        let changed = result.as_ref().map_or(true, |r| !r.is_nothing());
                        if changed {
                            report(WatchReload {
                                result,
                                took: started.elapsed(),
                            });
                        }
                    }
                    continue;
                }
            },
            None => changes.recv().await,
        };
        let Some((kind, paths)) = next else { return };
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        // A lost track counts as a change of everything.
        let kind = kind.unwrap_or(EventKind::Any);
        settle.observe(&kind, &paths, Instant::now());
    }
}

/// Whether `path` is, or is inside, a hidden file or folder below `root`.
fn is_hidden(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_is_below_the_root_only() {
        let root = Path::new("/home/me/.config/apps");
        assert!(!is_hidden(
            root,
            Path::new("/home/me/.config/apps/a/index.js")
        ));
        assert!(is_hidden(
            root,
            Path::new("/home/me/.config/apps/a/.edge/kv.redb")
        ));
        assert!(is_hidden(
            root,
            Path::new("/home/me/.config/apps/.git/HEAD")
        ));
        assert!(is_hidden(
            root,
            Path::new("/home/me/.config/apps/a/.index.js.swp")
        ));
    }
}
