//! [`Cron`]: cron triggers as a node hosts them: `[triggers] crons` in `edge.toml`, one
//! `cron.redb` per node, one scheduler following the apps the node serves.

use std::sync::{Arc, Mutex};

use edge_binding::{AppInfo, Binding, ConfigIssue, Declared, Host, NodeStore, Section, StoreError};
use serde::Deserialize;
use tokio::sync::watch;

use crate::log::{FireLog, MemoryFireLog, RedbFireLog};
use crate::schedule::Schedule;
use crate::scheduler::{self, Job};

/// Most expressions one app may have: each runs its handler on its own schedule (a seconds
/// schedule up to once a second), so the work one app can cause is bounded.
pub const MAX_CRONS: usize = 10;

/// The cron binding. It puts nothing on `env`: it runs apps' `scheduled` handlers.
#[derive(Clone, Debug, Default)]
pub struct Cron;

/// One expression of an app's `[triggers] crons`.
#[derive(Clone, Debug, PartialEq)]
pub struct CronEntry {
    /// The schedule.
    pub schedule: Schedule,
}

/// A node's cron state: the record of fired slots and its scheduler.
pub struct CronNode {
    log: Arc<dyn FireLog>,
    jobs: watch::Sender<Vec<Job>>,
    host: Mutex<Option<Arc<dyn Host>>>,
}

impl CronNode {
    /// The host the scheduler runs handlers through, once the node serves.
    pub(crate) fn host(&self) -> Option<Arc<dyn Host>> {
        self.host.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first expression `app` has, if any.
    pub(crate) fn first_cron(&self, app: &str) -> Option<String> {
        self.jobs
            .borrow()
            .iter()
            .find(|j| j.app == app)
            .map(|j| j.schedule.expr().to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    crons: Vec<String>,
}

impl Binding for Cron {
    type Entry = CronEntry;
    type Node = CronNode;
    type App = ();

    fn kind(&self) -> &'static str {
        "cron"
    }

    fn config_key(&self) -> Option<&'static str> {
        Some("triggers")
    }

    fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<CronEntry>>, ConfigIssue> {
        let raw: RawTriggers = section.deserialize()?;
        if raw.crons.len() > MAX_CRONS {
            return Err(ConfigIssue::invalid(
                "triggers.crons",
                format!(
                    "{} expressions; an app may have at most {MAX_CRONS}",
                    raw.crons.len()
                ),
            ));
        }
        let mut out: Vec<Declared<CronEntry>> = Vec::new();
        for (i, expr) in raw.crons.into_iter().enumerate() {
            let key = format!("triggers.crons[{i}]");
            let schedule: Schedule = expr.parse().map_err(|why| {
                ConfigIssue::invalid(&key, format!("{expr:?} is not a cron expression: {why}"))
            })?;
            if out.iter().any(|d| d.entry.schedule.same_as(&schedule)) {
                return Err(ConfigIssue::invalid(
                    &key,
                    format!("{expr:?} is listed twice"),
                ));
            }
            out.push(Declared {
                name: None,
                name_key: key,
                entry: CronEntry { schedule },
            });
        }
        Ok(out)
    }

    fn open(&self, store: &NodeStore) -> Result<CronNode, StoreError> {
        let log: Arc<dyn FireLog> = match store.dir() {
            Some(dir) => {
                let path = RedbFireLog::file_in(dir);
                let log = RedbFireLog::open(&path)?;
                tracing::info!(path = %path.display(), "cron log open");
                Arc::new(log)
            }
            None => Arc::new(MemoryFireLog::default()),
        };
        Ok(CronNode {
            log,
            jobs: watch::Sender::new(Vec::new()),
            host: Mutex::new(None),
        })
    }

    fn configure(&self, _node: &Arc<CronNode>, _app: &AppInfo<'_>, _entries: &[&CronEntry]) {}

    fn attach(&self, node: &Arc<CronNode>, apps: &[(&str, Vec<&CronEntry>)], host: &Arc<dyn Host>) {
        let jobs: Vec<Job> = apps
            .iter()
            .flat_map(|(app, entries)| {
                entries.iter().map(|e| Job {
                    app: app.to_string(),
                    schedule: e.schedule.clone(),
                })
            })
            .collect();
        node.jobs.send_replace(jobs);
        let mut started = node.host.lock().unwrap_or_else(|p| p.into_inner());
        if started.is_none() {
            *started = Some(host.clone());
            tokio::spawn(scheduler::run(
                node.jobs.subscribe(),
                node.log.clone(),
                host.clone(),
            ));
        }
    }

    fn admin(
        &self,
        node: &Arc<CronNode>,
        request: &mut edge_binding::admin::AdminRequest,
    ) -> Option<edge_binding::admin::AdminFuture> {
        crate::admin::route(node.clone(), request)
    }
}

#[cfg(feature = "js")]
impl edge_binding::js::JsBinding for Cron {
    fn extension(&self) -> Option<deno_core::Extension> {
        None
    }

    fn install(&self, _app: &(), _state: &mut deno_core::OpState) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Declared<CronEntry>>, String> {
        let section = Section::of_document(text, "triggers")
            .map_err(|e| e.to_string())?
            .expect("the text has triggers");
        Cron.parse(&section).map_err(|e| e.to_string())
    }

    #[test]
    fn crons_are_read_in_order() {
        let got = parse("[triggers]\ncrons = [\"*/5 * * * *\", \"0 9 * * MON-FRI\"]\n").unwrap();
        let exprs: Vec<_> = got.iter().map(|d| d.entry.schedule.expr()).collect();
        assert_eq!(exprs, ["*/5 * * * *", "0 9 * * MON-FRI"]);
        assert!(got.iter().all(|d| d.name.is_none()));
    }

    #[test]
    fn a_bad_cron_names_the_key_and_the_expression() {
        let e = parse("[triggers]\ncrons = [\"* * * * *\", \"99 * * * *\"]\n").unwrap_err();
        assert!(
            e.contains("`triggers.crons[1]`") && e.contains("99 * * * *"),
            "{e}"
        );
        let e = parse("[triggers]\ncrons = [\"* * * * *\", \"*  * * * *\"]\n").unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let many = ["\"* * * * *\""; MAX_CRONS + 1].join(", ");
        let e = parse(&format!("[triggers]\ncrons = [{many}]\n")).unwrap_err();
        assert!(e.contains("at most 10"), "{e}");
        let e = parse("[triggers]\ncron = [\"* * * * *\"]\n").unwrap_err();
        assert!(
            e.contains("unknown field `cron`") && e.contains("line 2"),
            "{e}"
        );
    }
}
