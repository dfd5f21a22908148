//! The limits policy of one isolate, for any engine: how the CPU of a turn (a stretch of the
//! tenant's code running, read from the thread's CPU clock) is charged to the invocations in
//! flight, what the next turn may use, what counts as work no invocation asked for, and the
//! subrequest count. The engine side keeps a [`Usage`] per invocation and calls in here; the
//! watchdog ([`super::watchdog`]) enforces the budgets this hands out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::watchdog::Watched;
use super::{LimitKind, Limits, TenantStats};

/// CPU a turn may use while the app loads (evaluating its module). Generous, but an endless
/// loop at load is still stopped.
pub const LOAD_TURN_BUDGET: Duration = Duration::from_secs(2);

/// What one invocation has used so far.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// CPU time charged.
    pub cpu: Duration,
    /// When it started (its wall-clock limit runs from here).
    pub started: Instant,
    /// Outbound fetches made.
    pub subrequests: u32,
}

impl Usage {
    /// An invocation starting now.
    pub fn starting() -> Self {
        Self {
            cpu: Duration::ZERO,
            started: Instant::now(),
            subrequests: 0,
        }
    }
}

/// What a subrequest is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subrequest {
    /// Within the limit.
    Allowed,
    /// Past the invocation's limit: refused, and the invocation answers `subrequest-limit`.
    OverInvocation,
    /// Past the allowance of work no invocation in flight asked for: refused (logged once).
    OverOrphan {
        /// This is the first one past it.
        first: bool,
    },
}

/// Who shares the CPU of the current turn. CPU is read per turn, not per invocation, so a
/// turn's CPU is split evenly between every invocation that was in flight at any point of it —
/// including those that started and finished within the turn, which are no longer in flight
/// when it is charged.
#[derive(Clone, Copy, Debug, Default)]
struct TurnShare {
    /// Invocations in flight when the turn began, plus those started during it.
    sharers: u32,
    /// The turn began with nothing in flight, and its budget already holds one invocation's
    /// limit for the first one to start in it.
    reserved: bool,
}

/// The limits accounting of one isolate.
pub struct Meter {
    limits: Limits,
    stats: Arc<TenantStats>,
    /// The isolate as the watchdog sees it: a turn's budget grows as invocations start in it.
    watched: Arc<Watched>,
    /// The app has loaded: turns run on its limits, not the load budget.
    serving: bool,
    turn: TurnShare,
    /// CPU used in turns that no invocation shared (timers or promises a handler left running
    /// after its response) since the last invocation started. Past one invocation's CPU
    /// limit, the isolate is stopped: such work is the tenant's too.
    orphan_cpu: Duration,
    /// Outbound fetches made by no invocation in flight since the last invocation started;
    /// bounded by one invocation's subrequest limit.
    orphan_subrequests: u32,
}

impl Meter {
    /// The accounting of an isolate under `limits`, watched as `watched`.
    pub fn new(limits: Limits, stats: Arc<TenantStats>, watched: Arc<Watched>) -> Self {
        Self {
            limits,
            stats,
            watched,
            serving: false,
            turn: TurnShare::default(),
            orphan_cpu: Duration::ZERO,
            orphan_subrequests: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The app has loaded; from now on turns run on its limits.
    pub fn serving(&mut self) {
        self.serving = true;
    }

    /// Whether the app has loaded.
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// A turn begins with `in_flight`: returns what it may use (see [`Meter::turn_budget`]) and
    /// starts counting who shares it.
    pub fn begin_turn<'a>(
        &mut self,
        in_flight: impl ExactSizeIterator<Item = &'a Usage> + Clone,
    ) -> (Duration, Option<Instant>) {
        let n = in_flight.len();
        self.turn = TurnShare {
            sharers: n as u32,
            reserved: self.serving && n == 0,
        };
        self.turn_budget(in_flight)
    }

    /// An invocation started within the current turn: it shares the turn's CPU, and the turn
    /// may use one more invocation's limit (the first start in a turn that began idle uses the
    /// share already reserved for it). Work left by earlier invocations has a new owner.
    pub fn started_in_turn(&mut self) {
        self.turn.sharers += 1;
        self.orphan_cpu = Duration::ZERO;
        self.orphan_subrequests = 0;
        if self.turn.reserved {
            self.turn.reserved = false;
        } else {
            self.watched.extend_turn(self.limits.cpu);
        }
    }

    /// Charges `used` CPU, split evenly between everything that shared the turn, to the
    /// invocations still in flight, and returns the limit one of them broke.
    pub fn charge<'a>(
        &mut self,
        used: Duration,
        in_flight: impl ExactSizeIterator<Item = &'a mut Usage>,
    ) -> Option<LimitKind> {
        self.stats.add_cpu(used);
        let n = in_flight.len() as u32;
        if n == 0 {
            if self.serving && self.turn.sharers == 0 {
                // Work nobody asked for: charged to the isolate, bounded by one invocation's
                // limit, so a tenant gets no more CPU than its limit times the requests it
                // was sent.
                self.orphan_cpu += used;
                if self.orphan_cpu > self.limits.cpu {
                    return Some(LimitKind::Cpu);
                }
            }
            return None;
        }
        let share = used / self.turn.sharers.max(n);
        let mut breach = None;
        for usage in in_flight {
            usage.cpu += share;
            if usage.cpu > self.limits.cpu {
                breach = Some(LimitKind::Cpu);
            }
        }
        breach
    }

    /// What the next turn may use: the CPU the most constrained invocation has left (times the
    /// number sharing the turn), and the earliest wall-clock deadline. With nothing in flight,
    /// one invocation's budget (a request may start within the turn); while the app is still
    /// loading, [`LOAD_TURN_BUDGET`].
    pub fn turn_budget<'a>(
        &self,
        in_flight: impl ExactSizeIterator<Item = &'a Usage> + Clone,
    ) -> (Duration, Option<Instant>) {
        if !self.serving {
            return (LOAD_TURN_BUDGET, None);
        }
        let n = in_flight.len() as u32;
        if n == 0 {
            // A request may arrive and start within this very turn: hold the turn to one
            // invocation's budget.
            return (self.limits.cpu, None);
        }
        let left = in_flight
            .clone()
            .map(|u| self.limits.cpu.saturating_sub(u.cpu))
            .min()
            .unwrap_or_default();
        let deadline = in_flight.map(|u| u.started + self.limits.wall).min();
        (left.saturating_mul(n), deadline)
    }

    /// Counts an outbound fetch of `invocation`, or, with none (work left running after a
    /// response, or a context the script reset), against the orphan allowance.
    pub fn subrequest(&mut self, invocation: Option<&mut Usage>) -> Subrequest {
        let limit = self.limits.subrequests;
        match invocation {
            Some(usage) => {
                usage.subrequests += 1;
                if usage.subrequests <= limit {
                    Subrequest::Allowed
                } else {
                    Subrequest::OverInvocation
                }
            }
            None => {
                self.orphan_subrequests = self.orphan_subrequests.saturating_add(1);
                if self.orphan_subrequests <= limit {
                    Subrequest::Allowed
                } else {
                    Subrequest::OverOrphan {
                        first: self.orphan_subrequests == limit + 1,
                    }
                }
            }
        }
    }

    /// Whether `usage` is past its wall-clock limit at `now`.
    pub fn overdue(&self, usage: &Usage, now: Instant) -> bool {
        usage.started + self.limits.wall <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::watchdog::Interrupt;

    struct Nothing;
    impl Interrupt for Nothing {
        fn terminate(&self) {}
    }

    fn meter(cpu_ms: u64, subrequests: u32) -> Meter {
        let limits = Limits {
            cpu: Duration::from_millis(cpu_ms),
            subrequests,
            ..Limits::default()
        };
        let watched = Watched::register(Box::new(Nothing)).unwrap();
        let mut m = Meter::new(limits, Arc::default(), watched);
        m.serving();
        m
    }

    #[test]
    fn a_turn_is_shared_by_everything_in_it() {
        let mut m = meter(50, 50);
        let mut a = Usage::starting();
        m.begin_turn([&a].into_iter());
        // A second invocation started and finished within the turn: it shares the CPU.
        m.started_in_turn();
        let breach = m.charge(Duration::from_millis(40), [&mut a].into_iter());
        assert_eq!(breach, None);
        assert_eq!(a.cpu, Duration::from_millis(20));
        let breach = m.charge(Duration::from_millis(62), [&mut a].into_iter());
        assert_eq!(breach, Some(LimitKind::Cpu), "{:?}", a.cpu);
    }

    #[test]
    fn work_nobody_asked_for_is_bounded_and_resets_with_a_request() {
        let mut m = meter(50, 2);
        m.begin_turn(std::iter::empty());
        assert_eq!(
            m.charge(Duration::from_millis(30), std::iter::empty()),
            None
        );
        m.begin_turn(std::iter::empty());
        assert_eq!(
            m.charge(Duration::from_millis(30), std::iter::empty()),
            Some(LimitKind::Cpu)
        );
        assert_eq!(m.subrequest(None), Subrequest::Allowed);
        assert_eq!(m.subrequest(None), Subrequest::Allowed);
        assert_eq!(m.subrequest(None), Subrequest::OverOrphan { first: true });
        assert_eq!(m.subrequest(None), Subrequest::OverOrphan { first: false });
        m.begin_turn(std::iter::empty());
        m.started_in_turn();
        assert_eq!(m.subrequest(None), Subrequest::Allowed);
        let mut u = Usage::starting();
        assert_eq!(m.subrequest(Some(&mut u)), Subrequest::Allowed);
        assert_eq!(m.subrequest(Some(&mut u)), Subrequest::Allowed);
        assert_eq!(m.subrequest(Some(&mut u)), Subrequest::OverInvocation);
    }

    #[test]
    fn loading_runs_on_the_load_budget() {
        let limits = Limits::default();
        let watched = Watched::register(Box::new(Nothing)).unwrap();
        let mut m = Meter::new(limits, Arc::default(), watched);
        assert_eq!(m.begin_turn(std::iter::empty()).0, LOAD_TURN_BUDGET);
        m.serving();
        assert_eq!(m.begin_turn(std::iter::empty()).0, limits.cpu);
    }
}
