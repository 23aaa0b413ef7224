//! Wall-clock deadlines without signals: one watchdog thread per process
//! sets the fuel of every store that runs past its deadline to zero, and the
//! guest traps at the next metering check, which the metering middleware
//! puts in every basic block: a safe point of the guest's own code.
//!
//! Why not Wasmer's signal-based interrupt (`experimental-host-interrupt`):
//! its SIGUSR1 handler traps wherever the thread is while its stack pointer
//! is on the guest's stack, and host functions run there too. A signal that
//! landed while a host function (or Wasmer's own wrapper around it, which
//! takes a lock) was inside `malloc` made the handler's backtrace capture
//! call `malloc` again and deadlocked the thread for good, holding the
//! allocator's lock; the generated-module robustness run (`olin_bench::smith`)
//! found it within 1 000 modules. Writing the fuel counter instead touches
//! nothing but one integer the guest reads.
//!
//! The guest reads, decrements and writes the counter in every block, so a
//! write of zero can be overwritten by a write of the value it read just
//! before: the watchdog writes again every [`REFIRE`] until the run ends.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmer::{AsStoreMut, Extern, Instance};

const REFIRE: Duration = Duration::from_millis(2);

/// The metering middleware's fuel counter of one instance, as the address
/// its code reads and writes.
pub(crate) struct FuelCell(NonNull<i64>);

// SAFETY: the pointer is only written through atomic operations, and only
// while the instance it belongs to is alive (see `Deadline`).
unsafe impl Send for FuelCell {}

impl FuelCell {
    /// The fuel counter of a metered instance (`None` for an unmetered one).
    pub(crate) fn of(store: &mut impl AsStoreMut, instance: &Instance) -> Option<FuelCell> {
        let global = instance.exports.get_global("wasmer_metering_remaining_points").ok()?.clone();
        let wasmer::sys::vm::VMExtern::Global(handle) = Extern::Global(global).to_vm_extern().unwrap_sys() else {
            return None;
        };
        let definition = handle.get(store.objects_mut().as_sys()).vmglobal();
        // The global is an i64 at the start of its definition (a `RawValue` union).
        Some(FuelCell(definition.cast::<i64>()))
    }

    /// Sets the counter to zero; returns what it held.
    fn drain(&self) -> i64 {
        // SAFETY: the pointer is valid and aligned for an i64 while the
        // instance lives, which `Deadline` guarantees by deregistering
        // (under the watchdog's lock) before the store can be dropped.
        unsafe { AtomicI64::from_ptr(self.0.as_ptr()) }.swap(0, Ordering::SeqCst)
    }
}

struct Entry {
    fuel: FuelCell,
    fired: Arc<AtomicBool>,
    /// The fuel the guest had left when it was first stopped.
    left: Arc<AtomicU64>,
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
                    let held = entry.fuel.drain();
                    if !entry.fired.swap(true, Ordering::SeqCst) {
                        entry.left.store(u64::try_from(held).unwrap_or(0), Ordering::SeqCst);
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

/// A registered deadline; dropping it deregisters. Must be dropped before
/// the instance whose fuel it holds.
pub(crate) struct Deadline {
    id: u64,
    at: Instant,
    fired: Arc<AtomicBool>,
    left: Arc<AtomicU64>,
}

impl Deadline {
    /// Drains `fuel` at `at`, and again until dropped. Without a fuel
    /// counter (an unmetered module, benchmarks only) nothing can stop the
    /// guest but its host calls' own deadline checks.
    pub(crate) fn arm(fuel: Option<FuelCell>, at: Instant) -> Deadline {
        let fired = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicU64::new(0));
        let mut deadline = Deadline { id: 0, at, fired: fired.clone(), left: left.clone() };
        let Some(fuel) = fuel else { return deadline };
        let w = watchdog();
        let mut earliest = false;
        if let Ok(mut state) = w.state.lock() {
            state.next_id += 1;
            deadline.id = state.next_id;
            earliest = state.next_wake.is_none_or(|wake| at < wake);
            if earliest {
                state.next_wake = Some(at);
            }
            state.by_deadline.insert((at, deadline.id), Entry { fuel, fired, left });
        }
        // The watchdog sleeps until the earliest deadline it knows; it needs
        // waking only when this one comes sooner. Under steady load that is
        // about once per wall-clock limit, not once per call (which cost two
        // context switches per call).
        if earliest {
            w.wake.notify_one();
        }
        deadline
    }

    /// Whether the deadline passed and the guest's fuel was taken.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// The fuel the guest had left when the deadline took it.
    pub(crate) fn fuel_left(&self) -> u64 {
        self.left.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
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
