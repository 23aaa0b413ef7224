//! Namespace `time`.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmer::FunctionEnvMut;

use crate::process::{Process, with_guest};

/// `time_now() -> i64`: Unix time in seconds, UTC.
pub(crate) fn now(mut env: FunctionEnvMut<'_, Process>) -> i64 {
    with_guest(&mut env, "time_now", |_, _| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    })
}
