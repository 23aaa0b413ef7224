//! Worker-wide memory admission: a call runs only once the worker can hold
//! all it may use (its memory cap, its host budget and its stdout cap,
//! `Limits::reservation_bytes`), so no mix of tenants' calls can take more
//! than the worker's budget and get the process killed with everyone's
//! calls on it.
//!
//! A slot thread reserves before it runs the guest and gives the bytes back
//! when the call ends. A call that does not fit waits, first come first
//! served (a large call is not starved by small ones behind it), until its
//! deadline; while any call waits, the pull loop asks for no more work, and
//! otherwise for no more than the free memory admits at the default
//! reservation, so the queue keeps what this worker could not start.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

/// The memory budget of one worker's calls.
pub(crate) struct Admission {
    budget: u64,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    reserved: u64,
    /// Highest `reserved` seen.
    peak: u64,
    /// Tickets of the calls waiting, in arrival order.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

/// Bytes held for one running call; given back on drop.
pub(crate) struct Reservation<'a> {
    admission: &'a Admission,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.reserved = state.reserved.saturating_sub(self.bytes);
        drop(state);
        self.admission.changed.notify_all();
    }
}

impl Admission {
    pub(crate) fn new(budget: u64) -> Self {
        Admission { budget, state: Mutex::default(), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Waits (blocking this thread) until `bytes` fit and every call that
    /// asked earlier has been admitted; `None` if `until` passes first.
    /// A request larger than the whole budget is clipped to it: the worker
    /// clamps its maxima so that one call of the largest kind fits.
    pub(crate) fn reserve(&self, bytes: u64, until: Option<Instant>) -> Option<Reservation<'_>> {
        let bytes = bytes.min(self.budget);
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(ticket);
        loop {
            if state.queue.front() == Some(&ticket) && state.reserved + bytes <= self.budget {
                state.queue.pop_front();
                state.reserved += bytes;
                state.peak = state.peak.max(state.reserved);
                drop(state);
                // The next in line may fit too.
                self.changed.notify_all();
                return Some(Reservation { admission: self, bytes });
            }
            match until {
                None => self.changed.wait(&mut state),
                Some(until) => {
                    if Instant::now() >= until {
                        state.queue.retain(|t| *t != ticket);
                        drop(state);
                        self.changed.notify_all();
                        return None;
                    }
                    self.changed.wait_until(&mut state, until);
                }
            }
        }
    }

    /// How many calls of `typical` bytes the free memory admits now: zero
    /// while any call waits.
    pub(crate) fn admits(&self, typical: u64) -> usize {
        let state = self.lock();
        if !state.queue.is_empty() {
            return 0;
        }
        let free = self.budget.saturating_sub(state.reserved);
        usize::try_from(free / typical.max(1)).unwrap_or(usize::MAX)
    }

    /// The budget, the bytes reserved now, the most ever reserved, and the
    /// calls waiting.
    pub(crate) fn snapshot(&self) -> (u64, u64, u64, usize) {
        let state = self.lock();
        (self.budget, state.reserved, state.peak, state.queue.len())
    }
}

/// Bytes a worker keeps for itself besides its calls and its module cache:
/// code, runtime, NATS buffers, the reply outbox.
pub const PROCESS_OVERHEAD: u64 = 256 << 20;

/// The memory the worker may use: its cgroup's limit if it has one, else
/// the machine's memory.
pub fn detect_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    read("/sys/fs/cgroup/memory.max")
        .and_then(|s| cgroup_limit(&s))
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes").and_then(|s| cgroup_limit(&s)))
        .or_else(|| read("/proc/meminfo").and_then(|s| mem_total(&s)))
}

/// A cgroup memory limit file: `max` (v2) or a value near `i64::MAX` (v1)
/// is no limit.
fn cgroup_limit(text: &str) -> Option<u64> {
    let v = text.trim().parse::<u64>().ok()?;
    (v < 1 << 60).then_some(v)
}

/// `MemTotal:  24576000 kB` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib = line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn limits_are_read_from_cgroups_and_meminfo() {
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("4294967296\n"), Some(4 << 30));
        assert_eq!(cgroup_limit("9223372036854771712\n"), None, "cgroup v1 without a limit");
        assert_eq!(mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24_576_000 * 1024));
        assert_eq!(mem_total("nothing"), None);
        assert!(detect_memory().is_some_and(|m| m > 0));
    }

    #[test]
    fn calls_wait_in_order_and_never_pass_the_budget() {
        let a = Arc::new(Admission::new(100));
        let running = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let (a, running, peak) = (a.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    let bytes = if i % 3 == 0 { 60 } else { 30 };
                    let r = a.reserve(bytes, None).unwrap();
                    let now = running.fetch_add(bytes, Ordering::SeqCst) + bytes;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(bytes, Ordering::SeqCst);
                    drop(r);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 100);
        let (budget, reserved, most, waiting) = a.snapshot();
        assert_eq!((budget, reserved, waiting), (100, 0, 0));
        assert!((60..=100).contains(&most), "{most}");
    }

    #[test]
    fn a_call_that_cannot_fit_before_its_deadline_gives_up_and_the_line_moves() {
        let a = Admission::new(100);
        let held = a.reserve(80, None).unwrap();
        assert_eq!(a.admits(10), 2);
        let started = Instant::now();
        assert!(a.reserve(50, Some(Instant::now() + Duration::from_millis(50))).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(a.admits(10), 2, "the one that gave up no longer blocks the line");
        let small = a.reserve(20, Some(Instant::now())).unwrap();
        assert_eq!(a.admits(10), 0);
        drop((held, small));
        assert_eq!(a.admits(10), 10);
        assert!(a.reserve(1_000, None).is_some(), "clipped to the budget: one call always fits alone");
    }
}
