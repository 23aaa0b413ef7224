//! Namespace `runtime`: identity, sleep and exit.

use std::time::{Duration, Instant};

use wasmer::{FunctionEnvMut, RuntimeError};

use crate::errno::{OlinError, olin};
use crate::memory;
use crate::process::{Process, Stop, with_guest, with_guest_or_stop};

/// The name `runtime_name` reports.
pub(crate) const NAME: &str = "olincloud";

/// Longest single `runtime_msleep`, whatever the guest asks.
const MAX_SLEEP: Duration = Duration::from_secs(10);

/// `runtime_exit(code)`: never returns; the host recovers the code.
pub(crate) fn exit(mut env: FunctionEnvMut<'_, Process>, code: i32) -> Result<(), RuntimeError> {
    with_guest_or_stop(&mut env, "runtime_exit", |_, _| Err(Stop::Exit(code)))
}

/// `runtime_name(ptr, len) -> i32`: the name's length; written only if it fits.
pub(crate) fn name(mut env: FunctionEnvMut<'_, Process>, ptr: i32, len: i32) -> i32 {
    with_guest(&mut env, "runtime_name", |_, mem| {
        olin((|| {
            if memory::u(len) >= NAME.len() as u64 {
                memory::check(mem, ptr, NAME.len() as i32).map_err(|_| OlinError::InvalidArgument)?;
                memory::write(mem, memory::u(ptr), NAME.as_bytes()).map_err(|_| OlinError::InvalidArgument)?;
            }
            Ok(NAME.len() as i32)
        })())
    })
}

/// `runtime_spec_major() -> 0`.
pub(crate) fn spec_major(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "runtime_spec_major", |_, _| 0)
}

/// `runtime_spec_minor() -> 2`, as pa'i.
pub(crate) fn spec_minor(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "runtime_spec_minor", |_, _| 2)
}

/// `runtime_msleep(ms)`: negative is zero; never past the call's deadline
/// nor longer than ten seconds at once. A sleep that reaches the deadline
/// ends the run (TIMEOUT) from inside the host, so a guest that sleeps in a
/// loop is stopped without interrupting it.
pub(crate) fn msleep(mut env: FunctionEnvMut<'_, Process>, ms: i32) -> Result<(), RuntimeError> {
    with_guest_or_stop(&mut env, "runtime_msleep", |p, _| {
        let wanted = Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_SLEEP);
        let left = p.deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(wanted.min(left));
        if Instant::now() >= p.deadline { Err(Stop::Timeout) } else { Ok(()) }
    })
}
