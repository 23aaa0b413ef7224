//! Wall-clock deadlines: one watchdog thread per process interrupts any store
//! that runs past its deadline, through Wasmer's `store.interrupter()`.
//!
//! An interrupt can be missed (Wasmer says so: a thread about to enter wasm
//! may not see it), so the watchdog fires again every few milliseconds until
//! the run deregisters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmer::Interrupter;

const REFIRE: Duration = Duration::from_millis(5);

struct Entry {
    interrupter: Interrupter,
    fired: Arc<AtomicBool>,
    in_host: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    by_deadline: BTreeMap<(Instant, u64), Entry>,
    /// When the watchdog will next wake by itself (`None`: not before notified).
    next_wake: Option<Instant>,
}

struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog { state: Mutex::default(), wake: Condvar::new() }));
        let spawned = std::thread::Builder::new().name("olin-watchdog".into()).spawn(move || w.run());
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the wall-clock watchdog; runs are bounded by fuel only");
        }
        w
    })
}

impl Watchdog {
    fn run(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        loop {
            let now = Instant::now();
            let due: Vec<(Instant, u64)> = state.by_deadline.range(..=(now, u64::MAX)).map(|(k, _)| *k).collect();
            for key in due {
                if let Some(entry) = state.by_deadline.remove(&key) {
                    entry.fired.store(true, Ordering::SeqCst);
                    // Inside a host function the run is stopped by the host
                    // itself (every blocking call is bounded by the deadline);
                    // a signal there is not safe. Try again shortly.
                    if !entry.in_host.load(Ordering::SeqCst) {
                        entry.interrupter.interrupt();
                    }
                    state.by_deadline.insert((now + REFIRE, key.1), entry);
                }
            }
            let next = state.by_deadline.keys().next().map(|(at, _)| *at);
            state.next_wake = next;
            let wait = next.map(|at| at.saturating_duration_since(Instant::now()));
            state = match wait {
                Some(d) => match self.wake.wait_timeout(state, d) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                },
                None => match self.wake.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
        }
    }
}

/// A registered deadline; dropping it deregisters.
pub(crate) struct Deadline {
    id: u64,
    at: Instant,
    fired: Arc<AtomicBool>,
}

impl Deadline {
    /// Interrupts the store of `interrupter` at `at`, and again until dropped.
    /// `in_host` is set while the guest is inside a host function.
    pub(crate) fn arm(interrupter: Interrupter, at: Instant, in_host: Arc<AtomicBool>) -> Deadline {
        let w = watchdog();
        let fired = Arc::new(AtomicBool::new(false));
        let mut id = 0;
        let mut earliest = false;
        if let Ok(mut state) = w.state.lock() {
            state.next_id += 1;
            id = state.next_id;
            earliest = state.next_wake.is_none_or(|wake| at < wake);
            if earliest {
                state.next_wake = Some(at);
            }
            state.by_deadline.insert((at, id), Entry { interrupter, fired: fired.clone(), in_host });
        }
        // The watchdog sleeps until the earliest deadline it knows; it needs
        // waking only when this one comes sooner. Under steady load that is
        // about once per wall-clock limit, not once per call (which cost two
        // context switches per call).
        if earliest {
            w.wake.notify_one();
        }
        Deadline { id, at, fired }
    }

    /// Whether the deadline passed and the store was interrupted.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Ok(mut state) = watchdog().state.lock()
            && state.by_deadline.remove(&(self.at, self.id)).is_none()
        {
            // It fired and was re-armed under a later key: find it by id.
            let key = state.by_deadline.keys().find(|k| k.1 == self.id).copied();
            if let Some(key) = key {
                state.by_deadline.remove(&key);
            }
        }
    }
}
