//! Namespace `startup`: the argument vector (argv[0] is the function name).

use wasmer::FunctionEnvMut;

use crate::errno::{OlinError, olin};
use crate::memory;
use crate::process::{Process, with_guest};

/// `startup_arg_len() -> argc`.
pub(crate) fn arg_len(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "startup_arg_len", |p, _| i32::try_from(p.args.len()).unwrap_or(i32::MAX))
}

/// `startup_arg_at(i, ptr, len) -> i32`: -2 for `i >= argc` (the Go host
/// panicked at `i == argc`); the argument's length, written if it fits.
pub(crate) fn arg_at(mut env: FunctionEnvMut<'_, Process>, i: i32, ptr: i32, len: i32) -> i32 {
    with_guest(&mut env, "startup_arg_at", |p, mem| {
        olin((|| {
            let idx = usize::try_from(i).map_err(|_| OlinError::InvalidArgument)?;
            let arg = p.args.get(idx).ok_or(OlinError::InvalidArgument)?;
            let n = i32::try_from(arg.len()).map_err(|_| OlinError::Unknown)?;
            if memory::u(len) >= arg.len() as u64 {
                memory::check(mem, ptr, n).map_err(|_| OlinError::InvalidArgument)?;
                memory::write(mem, memory::u(ptr), arg.as_bytes()).map_err(|_| OlinError::InvalidArgument)?;
            }
            Ok(n)
        })())
    })
}
