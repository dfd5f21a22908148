//! When a burst of file changes has settled, so a reload reads whole files. Editors save in
//! odd ways (write in place, truncate then write, write a temporary file and rename it over,
//! several events per save) and tools write large files (a `.wasm` component) in many calls:
//! a reload waits until the watched files have been quiet for a moment and, where the watcher
//! reports closes (inotify), until every file opened for writing has been closed again.
//!
//! This is only the bookkeeping, fed the watcher's events with their times; `watch` runs it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};

/// How long the files must be quiet after a change before a reload reads them.
pub(super) const QUIET: Duration = Duration::from_millis(15);

/// How long a file may stay open for writing before a reload reads it anyway (a writer that
/// keeps a file open, such as a log, must not hold reloads off for good).
pub(super) const OPEN_AT_MOST: Duration = Duration::from_secs(2);

/// Changes seen since the last reload.
#[derive(Debug, Default)]
pub(super) struct Settle {
    /// A change the node has not reloaded for yet, and when the last one came.
    last_change: Option<Instant>,
    /// Files written to and not yet closed, with when they were first written.
    open: HashMap<PathBuf, Instant>,
    /// Whether the watcher reports closes; without them, only quiet time counts.
    closes_reported: bool,
}

impl Settle {
    /// Bookkeeping for a watcher that reports closes of written files (`closes_reported`:
    /// inotify does; FSEvents and kqueue do not).
    pub(super) fn new(closes_reported: bool) -> Self {
        Self {
            closes_reported,
            ..Self::default()
        }
    }

    /// Takes in one event of the watcher, at `now`, about `paths` (those the node reads: the
    /// caller leaves out hidden files).
    pub(super) fn observe(&mut self, kind: &EventKind, paths: &[&Path], now: Instant) {
        match kind {
            // Reads (edge's own, when it loads an app) change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for p in paths {
                    self.open.remove(*p);
                }
            }
            EventKind::Access(_) => return,
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_))
                if self.closes_reported =>
            {
                for p in paths {
                    self.open.entry(p.to_path_buf()).or_insert(now);
                }
            }
            // A rename moves a whole file (the usual atomic save); a removed file is done.
            EventKind::Modify(ModifyKind::Name(RenameMode::From))
            | EventKind::Remove(RemoveKind::File | RemoveKind::Any) => {
                for p in paths {
                    self.open.remove(*p);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(from) = paths.first() {
                    self.open.remove(*from);
                }
            }
            _ => {}
        }
        self.last_change = Some(now);
    }

    /// When the changes seen will have settled (quiet for [`QUIET`], every written file closed
    /// or open past [`OPEN_AT_MOST`]); `None` if there is nothing to reload for.
    pub(super) fn settles_at(&self) -> Option<Instant> {
        let last = self.last_change?;
        let quiet = last + QUIET;
        let open = self.open.values().map(|since| *since + OPEN_AT_MOST).max();
        Some(open.map_or(quiet, |o| o.max(quiet)))
    }

    /// Whether the changes have settled at `now`; if so, starts over (the caller reloads).
    pub(super) fn take_if_settled(&mut self, now: Instant) -> bool {
        match self.settles_at() {
            Some(at) if at <= now => {
                self.last_change = None;
                self.open.clear();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::DataChange;

    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    const CLOSE: EventKind = EventKind::Access(AccessKind::Close(AccessMode::Write));

    #[test]
    fn nothing_to_do_until_a_change() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        assert_eq!(s.settles_at(), None);
        s.observe(
            &EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &[Path::new("a.js")],
            t,
        );
        assert_eq!(s.settles_at(), None, "a read is not a change");
        assert!(!s.take_if_settled(t + Duration::from_secs(10)));
    }

    #[test]
    fn a_closed_write_settles_after_the_quiet_time() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        let a = [Path::new("a.js")];
        s.observe(&WRITE, &a, t);
        s.observe(&CLOSE, &a, t + Duration::from_millis(1));
        let at = s.settles_at().unwrap();
        assert_eq!(at, t + Duration::from_millis(1) + QUIET);
        assert!(!s.take_if_settled(at - Duration::from_millis(1)));
        assert!(s.take_if_settled(at));
        assert_eq!(s.settles_at(), None, "taken");
    }

    #[test]
    fn a_file_still_open_for_writing_holds_the_reload() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        let wasm = [Path::new("app.wasm")];
        s.observe(&EventKind::Create(CreateKind::File), &wasm, t);
        s.observe(&WRITE, &wasm, t + Duration::from_millis(1));
        // Quiet for longer than QUIET, but the writer has not closed the file.
        assert!(!s.take_if_settled(t + QUIET * 10));
        s.observe(&CLOSE, &wasm, t + QUIET * 20);
        assert!(s.take_if_settled(t + QUIET * 21));
    }

    #[test]
    fn a_file_left_open_is_read_after_a_while() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        s.observe(&WRITE, &[Path::new("log.txt")], t);
        assert!(!s.take_if_settled(t + OPEN_AT_MOST - Duration::from_millis(1)));
        assert!(s.take_if_settled(t + OPEN_AT_MOST));
    }

    #[test]
    fn without_closes_only_quiet_time_counts() {
        let mut s = Settle::new(false);
        let t = Instant::now();
        s.observe(&WRITE, &[Path::new("a.js")], t);
        assert!(s.take_if_settled(t + QUIET));
    }

    #[test]
    fn a_rename_over_the_file_is_whole() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        let tmp = Path::new("a.js.tmp");
        s.observe(&WRITE, &[tmp], t);
        s.observe(
            &EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[tmp, Path::new("a.js")],
            t,
        );
        assert!(s.take_if_settled(t + QUIET));
    }

    #[test]
    fn every_event_of_a_burst_restarts_the_quiet_time() {
        let mut s = Settle::new(true);
        let t = Instant::now();
        let a = [Path::new("a.js")];
        for i in 0..10 {
            let at = t + Duration::from_millis(i * 5);
            s.observe(&WRITE, &a, at);
            s.observe(&CLOSE, &a, at);
        }
        let last = t + Duration::from_millis(45);
        assert!(!s.take_if_settled(last + QUIET - Duration::from_millis(1)));
        assert!(s.take_if_settled(last + QUIET));
    }
}
