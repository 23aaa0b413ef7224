//! Namespace `log`: guest log lines go to the call's stderr, never stdout.

use wasmer::FunctionEnvMut;

use crate::memory::{self, Fault};
use crate::process::{Process, with_guest};

/// Longest log message kept; the rest of a longer one is cut, not copied.
pub(crate) const MAX_MESSAGE: u64 = 8 << 10;

/// The first [`MAX_MESSAGE`] bytes of the message at `[ptr, ptr + len)`,
/// marked when cut; the whole range must be in bounds.
pub(crate) fn read_message(mem: Option<&wasmer::MemoryView<'_>>, ptr: i32, len: i32) -> Result<Vec<u8>, Fault> {
    let (at, n) = (memory::u(ptr), memory::u(len));
    memory::ranges(mem, &[(at, n)])?;
    let mut msg = Vec::new();
    memory::read_append(mem, at, n.min(MAX_MESSAGE), &mut msg)?;
    if n > MAX_MESSAGE {
        msg.extend_from_slice(b" [cut]");
    }
    Ok(msg)
}

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

/// `log_write(level, ptr, len)`: an out-of-bounds message is dropped, a long
/// one cut at [`MAX_MESSAGE`] bytes, bad UTF-8 is replaced, and nothing traps.
pub(crate) fn write(mut env: FunctionEnvMut<'_, Process>, level: i32, ptr: i32, len: i32) {
    with_guest(&mut env, "log_write", |p, mem| {
        if let Ok(msg) = read_message(mem, ptr, len) {
            line(p, level_name(level), None, &msg);
        }
    });
}
