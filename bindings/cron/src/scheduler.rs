//! The scheduler: one task per node that sleeps until the next slot of any app's schedule,
//! records the slot, then runs the app's `scheduled` handler through the node's host.
//!
//! A slot is recorded in the [`FireLog`] before its handler runs, so a restart never fires it
//! again. When a schedule is first seen, its latest past slot is recorded without firing
//! (nothing was missed: nothing was scheduled); when a known schedule has slots that passed
//! while the node was down, the latest of them fires once at start-up, not once per slot. A
//! slot whose record cannot be written is not fired (and the error is logged).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_binding::{Host, HostEvent};
use tokio::sync::watch;

use crate::log::FireLog;
use crate::schedule::Schedule;

/// The longest sleep: the scheduler looks at the wall clock at least this often, so a clock
/// step (NTP, a suspended machine) delays a slot by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// One schedule of one app.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Job {
    pub(crate) app: String,
    pub(crate) schedule: Schedule,
}

impl Job {
    fn key(&self) -> (String, String) {
        (self.app.clone(), self.schedule.expr().to_string())
    }
}

/// Runs the schedules `jobs` holds (replaced whole when the node's apps change) until the
/// sender goes.
pub(crate) async fn run(
    mut jobs: watch::Receiver<Vec<Job>>,
    log: Arc<dyn FireLog>,
    host: Arc<dyn Host>,
) {
    let mut current: Vec<Job> = Vec::new();
    let mut due: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    let mut changed = true;
    loop {
        if changed {
            current = jobs.borrow_and_update().clone();
            plan(&current, &mut due, &log, &host).await;
        }
        let now = Utc::now();
        let wait = due
            .values()
            .min()
            .map_or(MAX_SLEEP, |at| {
                (*at - now).to_std().unwrap_or(Duration::ZERO)
            })
            .min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(wait) => changed = false,
            change = jobs.changed() => {
                if change.is_err() {
                    return;
                }
                changed = true;
                continue;
            }
        }
        let now = Utc::now();
        for job in &current {
            let key = job.key();
            if due.get(&key).is_none_or(|at| *at > now) {
                continue;
            }
            // The latest slot due: one fire even if the clock jumped over several.
            if let Some(slot) = job.schedule.latest_at_or_before(now) {
                fire(job, slot, &log, &host);
            }
            match job.schedule.next_after(now) {
                Some(next) => due.insert(key, next),
                None => due.remove(&key),
            };
        }
    }
}

/// Brings `due` in line with `jobs`: new schedules get their next slot (and a catch-up fire
/// if slots passed while the node was down); gone ones are dropped.
async fn plan(
    jobs: &[Job],
    due: &mut HashMap<(String, String), DateTime<Utc>>,
    log: &Arc<dyn FireLog>,
    host: &Arc<dyn Host>,
) {
    due.retain(|key, _| jobs.iter().any(|j| j.key() == *key));
    let now = Utc::now();
    for job in jobs {
        let key = job.key();
        if due.contains_key(&key) {
            continue;
        }
        if let Some(prev) = job.schedule.latest_at_or_before(now) {
            match log.last(&job.app, &key.1).await {
                Ok(None) => {
                    // First seen: remember since when, so later downtime can be caught up.
                    let slot = prev.timestamp_millis();
                    if let Err(e) = log.record(&job.app, &key.1, slot).await {
                        tracing::error!(tenant = %job.app, cron = %key.1, "{e}");
                    }
                }
                Ok(Some(last)) if last < prev.timestamp_millis() => {
                    tracing::info!(tenant = %job.app, cron = %key.1, slot = %prev, "catching up a slot missed while the node was down");
                    fire(job, prev, log, host);
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::error!(tenant = %job.app, cron = %key.1, "{e}"),
            }
        }
        if let Some(next) = job.schedule.next_after(now) {
            due.insert(key, next);
        }
    }
}

/// Records `slot` of `job`, then (if it was not recorded before) runs the app's handler.
fn fire(job: &Job, slot: DateTime<Utc>, log: &Arc<dyn FireLog>, host: &Arc<dyn Host>) {
    let (log, host) = (log.clone(), host.clone());
    let (app, expr) = (job.app.clone(), job.schedule.expr().to_string());
    let ms = slot.timestamp_millis();
    tokio::spawn(async move {
        match log.record(&app, &expr, ms).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(tenant = %app, cron = %expr, "slot not fired: {e}");
                return;
            }
        }
        let event = HostEvent::Scheduled {
            cron: expr.clone(),
            scheduled_time: ms as f64,
        };
        match host.dispatch(&app, event).await {
            Ok(_) => tracing::debug!(tenant = %app, cron = %expr, "scheduled handler done"),
            Err(e) => {
                tracing::warn!(tenant = %app, cron = %expr, code = %e.code, "scheduled handler failed: {}", e.message);
            }
        }
    });
}
