//! Namespace `env`: the function's environment (CGI variables and config).

use wasmer::FunctionEnvMut;

use crate::errno::{OlinError, olin};
use crate::memory;
use crate::process::{Process, with_guest};

/// `env_get(key_ptr, key_len, val_ptr, val_len) -> i32`: a missing key is -4;
/// otherwise the value's length, written only if it fits in `val_len`.
pub(crate) fn get(mut env: FunctionEnvMut<'_, Process>, key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32) -> i32 {
    with_guest(&mut env, "env_get", |p, mem| {
        olin((|| {
            memory::check(mem, key_ptr, key_len).map_err(|_| OlinError::InvalidArgument)?;
            // A key longer than every key is missing: never read a guest-sized key.
            if (p.env.max_key_len() as u64) < memory::u(key_len) {
                return Err(OlinError::NotFound);
            }
            let key = memory::read_str(mem, key_ptr, key_len).map_err(|_| OlinError::InvalidArgument)?;
            let value = p.env.get(&key).ok_or(OlinError::NotFound)?;
            let n = i32::try_from(value.len()).map_err(|_| OlinError::Unknown)?;
            if memory::u(val_len) >= value.len() as u64 {
                memory::check(mem, val_ptr, n).map_err(|_| OlinError::InvalidArgument)?;
                memory::write(mem, memory::u(val_ptr), value.as_bytes()).map_err(|_| OlinError::InvalidArgument)?;
            }
            Ok(n)
        })())
    })
}
