//! Namespace `random`: values from the operating system's CSPRNG.

use rand::RngCore;
use wasmer::FunctionEnvMut;

use crate::process::{Process, with_guest};

/// `random_i32() -> i32`.
pub(crate) fn i32(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "random_i32", |_, _| rand::rngs::OsRng.next_u32() as i32)
}

/// `random_u32() -> i32` (the bits of a u32).
pub(crate) fn u32(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "random_u32", |_, _| rand::rngs::OsRng.next_u32() as i32)
}

/// `random_i64() -> i64`.
pub(crate) fn i64(mut env: FunctionEnvMut<'_, Process>) -> i64 {
    with_guest(&mut env, "random_i64", |_, _| rand::rngs::OsRng.next_u64() as i64)
}

/// `random_u64() -> i64` (the bits of a u64).
pub(crate) fn u64(mut env: FunctionEnvMut<'_, Process>) -> i64 {
    with_guest(&mut env, "random_u64", |_, _| rand::rngs::OsRng.next_u64() as i64)
}
