//! Per-call host state: what one guest instance sees and what the host learns
//! from it. A fresh [`Process`] is built for every call and lives in the
//! Wasmer `FunctionEnv` of that call's `Store`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use thiserror::Error;
use wasmer::{FunctionEnvMut, Memory, MemoryView, RuntimeError};

use crate::egress::Egress;
use crate::fd::Resources;
use crate::memory::{self, Fault};

/// Why the host stopped a guest from inside a host function. Kept in
/// [`Process::stop`] while the guest unwinds with [`Halted`], and read back
/// after the call.
#[derive(Debug, Error)]
pub(crate) enum Stop {
    /// The guest called `runtime_exit` or `proc_exit`.
    #[error("the guest exited with code {0}")]
    Exit(i32),
    /// The call's wall-clock deadline passed while the guest was in the host.
    #[error("the guest ran past its wall-clock limit")]
    Timeout,
    /// The guest wrote more than the stdout cap.
    #[error("the guest wrote more than {cap} bytes to stdout")]
    OutputTooLarge {
        /// The cap in bytes.
        cap: usize,
    },
    /// The host would have kept more for the guest than its host budget.
    #[error("the call used up its host budget of {limit} bytes ({what})")]
    HostBudget {
        /// The budget in bytes.
        limit: usize,
        /// What the host was asked to keep.
        what: &'static str,
    },
}

/// The error every host function that stops its guest returns: the reason
/// is left in [`Process::stop`].
///
/// Wasmer captures a native backtrace whenever it wraps a host error into a
/// `RuntimeError` (some 5 µs, a tenth of a small call, seen with `perf` in
/// `bench/runtime`), but passes a `RuntimeError` through untouched. So each
/// thread makes one, once, and every stop returns a clone of it (an `Arc`).
#[derive(Debug, Error)]
#[error("the host stopped the guest")]
pub(crate) struct Halted;

thread_local! {
    static HALTED: RuntimeError = RuntimeError::user(Box::new(Halted));
}

/// Bytes the host keeps for one call outside the guest's linear memory
/// (`Limits::host_budget_bytes`): whatever the guest can make the host hold
/// is charged here first, so no guest-sized allocation is ever made blind.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget { limit, used: 0 }
    }

    /// Charges `n` more bytes kept for `what`, or stops the guest.
    pub(crate) fn charge(&mut self, n: usize, what: &'static str) -> Result<(), Stop> {
        match self.used.checked_add(n) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            _ => Err(self.exhausted(what)),
        }
    }

    /// The stop for a call that needed more than the budget for `what`.
    pub(crate) fn exhausted(&self, what: &'static str) -> Stop {
        Stop::HostBudget { limit: self.limit, what }
    }

    /// Gives back `n` bytes no longer kept.
    pub(crate) fn release(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }

    /// Bytes still free.
    pub(crate) fn left(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }
}

/// Most URLs kept for accounting per call, and their most bytes in total;
/// opens past either are counted (host calls) but not listed.
const MAX_KEPT_URLS: usize = 64;
const MAX_KEPT_URL_BYTES: usize = 16 << 10;

/// The URLs a guest passed to `resource_open`, within a count and byte cap.
#[derive(Debug, Default)]
pub(crate) struct UrlLog {
    pub(crate) urls: Vec<String>,
    bytes: usize,
    /// Set once a URL was not kept.
    pub(crate) truncated: bool,
}

impl UrlLog {
    /// Keeps `url` if the caps and the budget allow, else marks the list truncated.
    pub(crate) fn record(&mut self, url: &str, budget: &mut Budget) {
        let cost = url.len() + std::mem::size_of::<String>();
        if self.urls.len() >= MAX_KEPT_URLS
            || self.bytes + url.len() > MAX_KEPT_URL_BYTES
            || budget.charge(cost, "resource URLs").is_err()
        {
            self.truncated = true;
            return;
        }
        self.bytes += url.len();
        self.urls.push(url.to_owned());
    }
}

/// Keeps the last `cap` bytes written, and counts all of them.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    buf: Vec<u8>,
    cap: usize,
    /// Every byte ever written, kept or not.
    pub(crate) total: u64,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Self {
        Self { buf: Vec::new(), cap, total: 0 }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if self.cap == 0 {
            return;
        }
        let data = data.get(data.len().saturating_sub(self.cap)..).unwrap_or(data);
        self.buf.extend_from_slice(data);
        self.trim();
    }

    /// Appends guest memory `[ptr, ptr + len)`, copying only the bytes that
    /// can be kept (the last `cap`), never the whole range.
    pub(crate) fn push_guest(&mut self, mem: Option<&MemoryView<'_>>, ptr: u64, len: u64) -> Result<(), Fault> {
        let keep = len.min(self.cap as u64);
        memory::read_append(mem, ptr + (len - keep), keep, &mut self.buf)?;
        self.total += len;
        self.trim();
        Ok(())
    }

    /// Trims at twice the cap, so trimming is amortised.
    fn trim(&mut self) {
        if self.buf.len() > 2 * self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
    }

    pub(crate) fn into_bytes(mut self) -> Bytes {
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
        Bytes::from(self.buf)
    }
}

/// Host state of one call.
pub(crate) struct Process {
    /// The guest's exported memory, set right after instantiation.
    pub(crate) memory: Option<Memory>,
    /// The request body.
    pub(crate) stdin: Bytes,
    /// How much of stdin the guest has read.
    pub(crate) stdin_pos: usize,
    /// What the guest printed: the CGI response.
    pub(crate) stdout: Vec<u8>,
    /// Most bytes stdout may hold.
    pub(crate) stdout_cap: usize,
    /// The tail of stderr, where logs go too.
    pub(crate) stderr: Tail,
    /// The CGI environment plus the function's configuration.
    pub(crate) env: crate::cgi::Environment,
    /// argv; argv[0] is the function name.
    pub(crate) args: Vec<String>,
    /// Host calls by name, in first-call order.
    pub(crate) calls: Vec<(&'static str, u64)>,
    /// Open olin resources.
    pub(crate) resources: Resources,
    /// The URLs passed to `resource_open`, allowed or not (capped).
    pub(crate) resource_urls: UrlLog,
    /// What the host keeps for this call outside linear memory.
    pub(crate) budget: Budget,
    /// When the call started: the origin of the guest's monotonic and CPU
    /// clocks, so they tell nothing of the worker's uptime.
    pub(crate) started: Instant,
    /// When the wall-clock budget runs out (caps `runtime_msleep`).
    pub(crate) deadline: Instant,
    /// Performs outbound HTTP for `http(s)` resources, if the embedder allows any.
    pub(crate) egress: Option<Arc<dyn Egress>>,
    /// Hosts the function may reach.
    pub(crate) egress_allow: Vec<String>,
    /// Why a host function stopped the guest (see [`Halted`]).
    pub(crate) stop: Option<Stop>,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            memory: None,
            stdin: Bytes::new(),
            stdin_pos: 0,
            stdout: Vec::new(),
            stdout_cap: 0,
            stderr: Tail::new(0),
            env: crate::cgi::Environment::default(),
            args: Vec::new(),
            calls: Vec::new(),
            resources: Resources::new(0),
            resource_urls: UrlLog::default(),
            budget: Budget::new(0),
            started: Instant::now(),
            deadline: Instant::now(),
            egress: None,
            egress_allow: Vec::new(),
            stop: None,
        }
    }
}

impl Process {
    pub(crate) fn count(&mut self, name: &'static str) {
        match self.calls.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.calls.push((name, 1)),
        }
    }

    /// Appends guest memory ranges to stdout, or stops the guest if the
    /// whole write would pass the cap (or its deadline has passed): the cap
    /// is checked before a byte is copied. `ranges` must be in bounds
    /// ([`memory::ranges`]); `total` is their summed length.
    pub(crate) fn write_stdout(
        &mut self,
        mem: Option<&MemoryView<'_>>,
        ranges: &[(u64, u64)],
        total: u64,
    ) -> Result<Result<(), Fault>, Stop> {
        if Instant::now() >= self.deadline {
            return Err(Stop::Timeout);
        }
        if (self.stdout.len() as u64).saturating_add(total) > self.stdout_cap as u64 {
            return Err(Stop::OutputTooLarge { cap: self.stdout_cap });
        }
        for &(ptr, len) in ranges {
            if let Err(fault) = memory::read_append(mem, ptr, len, &mut self.stdout) {
                return Ok(Err(fault));
            }
        }
        Ok(Ok(()))
    }

    /// Appends guest memory ranges to the stderr tail (only what is kept is copied).
    pub(crate) fn write_stderr(&mut self, mem: Option<&MemoryView<'_>>, ranges: &[(u64, u64)]) -> Result<(), Fault> {
        ranges.iter().try_for_each(|&(ptr, len)| self.stderr.push_guest(mem, ptr, len))
    }

    /// Copies up to `max` unread bytes of stdin.
    pub(crate) fn read_stdin(&mut self, max: usize) -> &[u8] {
        let start = self.stdin_pos.min(self.stdin.len());
        let end = start.saturating_add(max).min(self.stdin.len());
        self.stdin_pos = end;
        self.stdin.get(start..end).unwrap_or_default()
    }
}

/// Runs `f` with the process state and a view of guest memory, counting the
/// call under `name`. Every host function enters through here.
pub(crate) fn with_guest<R>(
    env: &mut FunctionEnvMut<'_, Process>,
    name: &'static str,
    f: impl FnOnce(&mut Process, Option<&MemoryView<'_>>) -> R,
) -> R {
    let (p, store) = env.data_and_store_mut();
    p.count(name);
    let mem = p.memory.clone();
    let view = mem.as_ref().map(|m| m.view(&store));
    f(p, view.as_ref())
}

/// [`with_guest`] for host functions that may stop the guest: a [`Stop`]
/// is kept in the process and the guest unwinds with [`Halted`].
pub(crate) fn with_guest_or_stop<R>(
    env: &mut FunctionEnvMut<'_, Process>,
    name: &'static str,
    f: impl FnOnce(&mut Process, Option<&MemoryView<'_>>) -> Result<R, Stop>,
) -> Result<R, RuntimeError> {
    with_guest(env, name, |p, mem| {
        f(p, mem).map_err(|stop| {
            p.stop = Some(stop);
            HALTED.with(RuntimeError::clone)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::new(4);
        t.push(b"ab");
        t.push(b"cdef");
        t.push(b"g");
        assert_eq!(t.total, 7);
        assert_eq!(&t.into_bytes()[..], b"defg");
        let mut t = Tail::new(3);
        t.push(&[b'x'; 1000]);
        t.push(b"yz");
        assert_eq!(&t.into_bytes()[..], b"xyz");
        let mut t = Tail::new(0);
        t.push(b"abc");
        assert_eq!(t.total, 3);
        assert!(t.into_bytes().is_empty());
    }
}
