//! Wall-clock deadlines without signals: one watchdog thread per process
//! sets the interrupt flag (`interrupt`) of every instance that runs past
//! its deadline, and the guest traps at its next function entry or loop
//! header: a safe point of its own code.
//!
//! Why not Wasmer's signal-based interrupt (`experimental-host-interrupt`):
//! its SIGUSR1 handler traps wherever the thread is while its stack pointer
//! is on the guest's stack, and host functions run there too. A signal that
//! landed while a host function (or Wasmer's own wrapper around it, which
//! takes a lock) was inside `malloc` made the handler's backtrace capture
//! call `malloc` again and deadlocked the thread for good, holding the
//! allocator's lock; the generated-module robustness run (`olin_bench::smith`)
//! found it within 1 000 modules. Writing the flag touches nothing but one
//! integer the guest only reads.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use wasmer::{AsStoreMut, Extern, Instance};

use crate::interrupt::INTERRUPT_EXPORT;

/// The interrupt flag of one instance, as the address its code reads.
pub(crate) struct Flag(NonNull<i32>);

// SAFETY: the pointer is only written through an atomic store, and only
// while the instance it belongs to is alive (see `Deadline`).
unsafe impl Send for Flag {}

impl Flag {
    /// The interrupt flag of an instance compiled with the `interrupt`
    /// middleware (`None` without one).
    pub(crate) fn of(store: &mut impl AsStoreMut, instance: &Instance) -> Option<Flag> {
        let global = instance.exports.get_global(INTERRUPT_EXPORT).ok()?.clone();
        let wasmer::sys::vm::VMExtern::Global(handle) = Extern::Global(global).to_vm_extern().unwrap_sys() else {
            return None;
        };
        let definition = handle.get(store.objects_mut().as_sys()).vmglobal();
        // The global is an i32 at the start of its definition (a `RawValue` union).
        Some(Flag(definition.cast::<i32>()))
    }

    fn raise(&self) {
        // SAFETY: the pointer is valid and aligned for an i32 while the
        // instance lives, which `Deadline` guarantees by deregistering
        // (under the watchdog's lock) before the store can be dropped.
        unsafe { AtomicI32::from_ptr(self.0.as_ptr()) }.store(1, Ordering::SeqCst);
    }
}

struct Entry {
    flag: Flag,
    fired: Arc<AtomicBool>,
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
                // Nothing in the guest clears the flag: once is enough.
                // `fired` first: a guest that sees the flag traps at once,
                // and its thread must then find `fired` set, or the stop
                // reads as a plain trap (seen as FUEL_EXHAUSTED under load).
                if let Some(entry) = state.by_deadline.remove(&key) {
                    entry.fired.store(true, Ordering::SeqCst);
                    entry.flag.raise();
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
/// the instance whose flag it holds.
pub(crate) struct Deadline {
    id: u64,
    at: Instant,
    fired: Arc<AtomicBool>,
}

impl Deadline {
    /// Raises `flag` at `at`. Without a flag (cannot happen for modules this
    /// crate compiled) nothing stops the guest but fuel and its host calls'
    /// own deadline checks.
    pub(crate) fn arm(flag: Option<Flag>, at: Instant) -> Deadline {
        let fired = Arc::new(AtomicBool::new(false));
        let mut deadline = Deadline { id: 0, at, fired: fired.clone() };
        let Some(flag) = flag else { return deadline };
        let w = watchdog();
        let mut earliest = false;
        if let Ok(mut state) = w.state.lock() {
            state.next_id += 1;
            deadline.id = state.next_id;
            earliest = state.next_wake.is_none_or(|wake| at < wake);
            if earliest {
                state.next_wake = Some(at);
            }
            state.by_deadline.insert((at, deadline.id), Entry { flag, fired });
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

    /// Whether the deadline passed and the guest was told to stop.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        // Under the lock: once this returns, the watchdog holds no pointer
        // into the instance (a fired entry was already removed).
        if let Ok(mut state) = watchdog().state.lock() {
            state.by_deadline.remove(&(self.at, self.id));
        }
    }
}
