//! The watchdog: one thread that terminates isolate turns running past their CPU budget or
//! wall-clock deadline. An endless loop never yields to its own event loop, so only another
//! thread can stop it; `terminate_execution` is the engine's thread-safe way to do so.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How the watchdog stops what it watches, from its own thread: for a JavaScript isolate the
/// engine's `terminate_execution`; for WebAssembly, an epoch deadline. Engine-specific; the
/// policy (budgets, breaches) is the watchdog's.
pub trait Interrupt: Send + Sync + 'static {
    /// Stops the code running now, as soon as the engine can.
    fn terminate(&self);
    /// Called on every tick while terminated code goes on running: whatever helps the engine
    /// stop it (see `isolate/nudge.rs`).
    fn nudge(&self) {}
}

use super::LimitKind;
use super::thread_clock::ThreadClock;

/// How often the watchdog looks. Bounds how far past its budget a turn can run.
const TICK: Duration = Duration::from_millis(1);

/// One isolate as the watchdog sees it. Shared with the isolate's own thread, which marks the
/// start and end of each event-loop turn.
pub struct Watched {
    clock: ThreadClock,
    interrupt: Box<dyn Interrupt>,
    /// Thread CPU time (ns) when the current turn started; 0 when not in a turn.
    turn_started_ns: AtomicU64,
    /// CPU (ns) the current turn may use.
    turn_budget_ns: AtomicU64,
    /// Wall-clock deadline of the most urgent invocation, as ns since `EPOCH`; 0 for none.
    wall_deadline_ns: AtomicU64,
    /// The limit that was breached (a [`LimitKind`] as u8), 0 for none.
    breach: AtomicU8,
    /// Watchdog ticks the turn has gone on running since the breach.
    ticks_since_breach: AtomicU32,
}

impl Watched {
    /// Registers an isolate (on its own thread) with the watchdog. It stays watched until the
    /// returned `Arc` is dropped; `interrupt` stops it.
    pub fn register(interrupt: Box<dyn Interrupt>) -> std::io::Result<Arc<Self>> {
        let watched = Arc::new(Self {
            clock: ThreadClock::current()?,
            interrupt,
            turn_started_ns: AtomicU64::new(0),
            turn_budget_ns: AtomicU64::new(u64::MAX),
            wall_deadline_ns: AtomicU64::new(0),
            breach: AtomicU8::new(0),
            ticks_since_breach: AtomicU32::new(0),
        });
        watchdog().add(&watched);
        Ok(watched)
    }

    /// The isolate thread's CPU time now.
    pub fn cpu_now(&self) -> Duration {
        self.clock.now().unwrap_or_default()
    }

    /// A turn starts at CPU time `now` and may use `budget`; `wall_deadline` is the most
    /// urgent invocation's deadline, if any.
    pub fn begin_turn(&self, now: Duration, budget: Duration, wall_deadline: Option<Instant>) {
        self.turn_budget_ns.store(
            budget.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        self.wall_deadline_ns
            .store(wall_deadline.map_or(0, since_epoch), Ordering::Relaxed);
        self.turn_started_ns
            .store((now.as_nanos() as u64).max(1), Ordering::Release);
    }

    /// The current turn may use `extra` more CPU (an invocation started within it).
    pub fn extend_turn(&self, extra: Duration) {
        let extra = extra.as_nanos().min(u64::MAX as u128) as u64;
        let _ = self
            .turn_budget_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_add(extra))
            });
    }

    /// The turn ended.
    pub fn end_turn(&self) {
        self.turn_started_ns.store(0, Ordering::Release);
    }

    /// Records a breach and stops whatever JavaScript is running. The first breach wins.
    pub fn terminate(&self, kind: LimitKind) {
        let _ = self
            .breach
            .compare_exchange(0, kind.as_u8(), Ordering::AcqRel, Ordering::Acquire);
        self.interrupt.terminate();
    }

    /// The limit that was breached, if any.
    pub fn breach(&self) -> Option<LimitKind> {
        LimitKind::from_u8(self.breach.load(Ordering::Acquire))
    }

    fn check(&self, now: Instant) {
        let started = self.turn_started_ns.load(Ordering::Acquire);
        if started == 0 {
            return;
        }
        if self.breach.load(Ordering::Relaxed) != 0 {
            // Breached and still running: terminate again. Code inside the turn may have
            // cancelled the termination (deno_core does, to turn an exception into an error),
            // and a microtask chain then runs on; the turn must end.
            self.interrupt.terminate();
            let ticks = self.ticks_since_breach.fetch_add(1, Ordering::Relaxed);
            if ticks >= NUDGE_AFTER_TICKS {
                self.interrupt.nudge();
            }
            return;
        }
        let Some(cpu) = self.clock.now() else { return };
        let used = (cpu.as_nanos() as u64).saturating_sub(started);
        if used > self.turn_budget_ns.load(Ordering::Relaxed) {
            self.terminate(LimitKind::Cpu);
            return;
        }
        let deadline = self.wall_deadline_ns.load(Ordering::Relaxed);
        if deadline != 0 && since_epoch(now) > deadline {
            self.terminate(LimitKind::Wall);
        }
    }
}

/// Watchdog ticks a breached turn may go on running before it is nudged (see
/// [`Interrupt::nudge`]).
const NUDGE_AFTER_TICKS: u32 = 2;

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn since_epoch(t: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    t.saturating_duration_since(epoch).as_nanos() as u64 + 1
}

struct Watchdog {
    watched: Mutex<Vec<Weak<Watched>>>,
}

impl Watchdog {
    fn add(&self, w: &Arc<Watched>) {
        self.watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(w));
    }

    fn run(&self) {
        loop {
            std::thread::sleep(TICK);
            let now = Instant::now();
            let mut list = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|w| match w.upgrade() {
                Some(w) => {
                    w.check(now);
                    true
                }
                None => false,
            });
        }
    }
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let _ = EPOCH.get_or_init(Instant::now);
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            watched: Mutex::new(Vec::new()),
        }));
        std::thread::Builder::new()
            .name("edge-watchdog".into())
            .spawn(move || dog.run())
            .expect("cannot start the watchdog thread");
        dog
    })
}
