//! Namespace `log`: guest log lines go to the call's stderr, never stdout.

use wasmer::FunctionEnvMut;

use crate::memory;
use crate::process::{Process, with_guest};

/// The text of an olin log level; unknown levels are info (pa'i panicked).
pub(crate) fn level_name(level: i32) -> &'static str {
    match level {
        1 => "ERROR",
        3 => "WARN",
        _ => "INFO",
    }
}

/// Appends one `LEVEL: message` line to stderr.
pub(crate) fn line(p: &mut Process, level: &str, prefix: Option<&str>, msg: &[u8]) {
    let msg = String::from_utf8_lossy(msg);
    let line = match prefix {
        Some(prefix) => format!("{level}: {prefix}: {}\n", msg.trim_end_matches('\n')),
        None => format!("{level}: {}\n", msg.trim_end_matches('\n')),
    };
    p.stderr.push(line.as_bytes());
}

/// `log_write(level, ptr, len)`: an out-of-bounds message is dropped, bad
/// UTF-8 is replaced, and nothing traps.
pub(crate) fn write(mut env: FunctionEnvMut<'_, Process>, level: i32, ptr: i32, len: i32) {
    with_guest(&mut env, "log_write", |p, mem| {
        if let Ok(msg) = memory::read(mem, ptr, len) {
            line(p, level_name(level), None, &msg);
        }
    });
}
