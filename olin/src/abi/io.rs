//! Namespace `io`: the call's own stdio streams. Each returns a stable fd
//! (0, 1, 2) instead of a new table entry per call, as pa'i did.

use wasmer::FunctionEnvMut;

use crate::abi::resource::{STDERR, STDIN, STDOUT};
use crate::process::{Process, with_guest};

/// `io_get_stdin() -> fd`.
pub(crate) fn get_stdin(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "io_get_stdin", |_, _| STDIN)
}

/// `io_get_stdout() -> fd`.
pub(crate) fn get_stdout(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "io_get_stdout", |_, _| STDOUT)
}

/// `io_get_stderr() -> fd`.
pub(crate) fn get_stderr(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "io_get_stderr", |_, _| STDERR)
}
