//! A lean WASI preview1 host for CGI-style programs, over plain Wasmer
//! imports: stdin, stdout and stderr in memory, args, environment, clocks,
//! random and `proc_exit`. No preopened directories and no sockets: those
//! calls, and any other preview1 function, fail cleanly with `ENOSYS`/`EBADF`.
//!
//! Why not `wasmer-wasix`: on these 2-core machines (DESIGN.md section 8) a fresh
//! wasmer-wasix instance + `_start` of a C CGI program costs about 0.36 ms
//! (it builds a virtual file system, a thread model and a runtime per
//! instance), while this host runs the same program, CGI environment and
//! output parse included, in about 45 µs mean (`bench/results/runtime.md`,
//! `cargo run --release -p olin-bench --bin runtime`). A wasi-libc CGI program
//! imports about eight preview1 functions; the rest answer `ENOSYS`. It also
//! keeps the build lighter and the attack surface small.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use wasmer::{Function, FunctionEnv, FunctionEnvMut, RuntimeError, Store, Type, Value};

use crate::errno::{Errno, wasi};
use crate::memory::{self, Fault};
use crate::process::{Process, Stop, with_guest, with_guest_or_stop};
use crate::signature::Sig;
use crate::signature::short::*;

/// Import namespace of WASI preview1.
pub(crate) const NAMESPACE: &str = "wasi_snapshot_preview1";

/// At most this many iovecs per `fd_read`/`fd_write` (POSIX `IOV_MAX`).
const IOV_MAX: u32 = 1024;

const FILETYPE_UNKNOWN: u8 = 0;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

macro_rules! host_functions {
    ($($name:literal => $f:path),* $(,)?) => {
        /// Every implemented preview1 function.
        #[cfg(test)]
        pub(crate) const NAMES: &[&str] = &[$($name),*];

        /// Builds `name` for one call's store; any other preview1 function
        /// becomes a stub of its type answering `ENOSYS`. `None` for a name
        /// that is not preview1.
        pub(crate) fn function(store: &mut Store, env: &FunctionEnv<Process>, name: &str) -> Option<Function> {
            match name {
                $($name => Some(Function::new_typed_with_env(store, env, $f)),)*
                _ => signature(name).map(|sig| unsupported(store, env, &sig)),
            }
        }
    };
}

host_functions! {
    "args_get" => args_get,
    "args_sizes_get" => args_sizes_get,
    "environ_get" => environ_get,
    "environ_sizes_get" => environ_sizes_get,
    "fd_write" => fd_write,
    "fd_read" => fd_read,
    "fd_close" => fd_close,
    "fd_seek" => fd_seek,
    "fd_fdstat_get" => fd_fdstat_get,
    "fd_prestat_get" => fd_prestat_get,
    "fd_prestat_dir_name" => fd_prestat_dir_name,
    "proc_exit" => proc_exit,
    "clock_time_get" => clock_time_get,
    "clock_res_get" => clock_res_get,
    "random_get" => random_get,
    "sched_yield" => sched_yield,
}

fn unsupported(store: &mut Store, env: &FunctionEnv<Process>, sig: &Sig) -> Function {
    let ty = sig.wasmer();
    let results: Vec<Value> = ty
        .results()
        .iter()
        .map(|t| match t {
            Type::I32 => Value::I32(Errno::Nosys.code()),
            Type::I64 => Value::I64(0),
            Type::F32 => Value::F32(0.0),
            Type::F64 => Value::F64(0.0),
            _ => Value::I32(0),
        })
        .collect();
    Function::new_with_env(store, env, ty.clone(), move |mut env, _args| {
        env.data_mut().count("wasi_unsupported");
        Ok(results.clone())
    })
}

fn fault(_: Fault) -> Errno {
    Errno::Fault
}

/// Writes a vector of strings as C strings (`argv`/`environ` layout).
fn write_strings(
    mem: Option<&wasmer::MemoryView<'_>>,
    strings: impl Iterator<Item = Vec<u8>>,
    ptrs: i32,
    buf: i32,
) -> Result<(), Errno> {
    let (mut ptr_at, mut buf_at) = (memory::u(ptrs), memory::u(buf));
    for mut s in strings {
        s.push(0);
        memory::write_u32(mem, ptr_at, buf_at as u32).map_err(fault)?;
        memory::write(mem, buf_at, &s).map_err(fault)?;
        ptr_at += 4;
        buf_at += s.len() as u64;
    }
    Ok(())
}

fn args_get(mut env: FunctionEnvMut<'_, Process>, argv: i32, argv_buf: i32) -> i32 {
    with_guest(&mut env, "args_get", |p, mem| {
        wasi(write_strings(mem, p.args.iter().map(|a| a.clone().into_bytes()), argv, argv_buf))
    })
}

fn args_sizes_get(mut env: FunctionEnvMut<'_, Process>, argc: i32, size: i32) -> i32 {
    with_guest(&mut env, "args_sizes_get", |p, mem| {
        let total: usize = p.args.iter().map(|a| a.len() + 1).sum();
        wasi((|| {
            memory::write_u32(mem, memory::u(argc), p.args.len() as u32).map_err(fault)?;
            memory::write_u32(mem, memory::u(size), total as u32).map_err(fault)
        })())
    })
}

fn environ_get(mut env: FunctionEnvMut<'_, Process>, environ: i32, environ_buf: i32) -> i32 {
    with_guest(&mut env, "environ_get", |p, mem| {
        // The block is already laid out as C strings: one copy, then the
        // pointers, also in one write.
        let buf = memory::u(environ_buf);
        let ptrs: Vec<u8> = p.env.offsets().flat_map(|at| (buf as u32).wrapping_add(at).to_le_bytes()).collect();
        wasi((|| {
            memory::write(mem, buf, p.env.block()).map_err(fault)?;
            memory::write(mem, memory::u(environ), &ptrs).map_err(fault)
        })())
    })
}

fn environ_sizes_get(mut env: FunctionEnvMut<'_, Process>, count: i32, size: i32) -> i32 {
    with_guest(&mut env, "environ_sizes_get", |p, mem| {
        let total = p.env.block().len();
        wasi((|| {
            memory::write_u32(mem, memory::u(count), p.env.len() as u32).map_err(fault)?;
            memory::write_u32(mem, memory::u(size), total as u32).map_err(fault)
        })())
    })
}

/// Reads the iovec array `(buf, len)*n`.
fn iovecs(mem: Option<&wasmer::MemoryView<'_>>, iovs: i32, n: i32) -> Result<Vec<(u64, u64)>, Errno> {
    let n = n as u32;
    if n > IOV_MAX {
        return Err(Errno::Inval);
    }
    let raw = memory::read(mem, iovs, (n * 8) as i32).map_err(fault)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| {
            let word = |i: usize| u64::from(u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]));
            (word(0), word(4))
        })
        .collect())
}

/// `fd_write`: the fd is checked first, then every iovec's bounds, then the
/// stdout cap for the whole write; only then are bytes copied, straight into
/// stdout or (only the kept tail) into stderr. Nothing guest-sized is
/// buffered on the way.
fn fd_write(
    mut env: FunctionEnvMut<'_, Process>,
    fd: i32,
    iovs: i32,
    n: i32,
    nwritten: i32,
) -> Result<i32, RuntimeError> {
    with_guest_or_stop(&mut env, "fd_write", |p, mem| {
        if fd != 1 && fd != 2 {
            return Ok(Errno::Badf.code());
        }
        let vecs = match iovecs(mem, iovs, n) {
            Ok(v) => v,
            Err(e) => return Ok(e.code()),
        };
        let Ok(total) = memory::ranges(mem, &vecs) else {
            return Ok(Errno::Fault.code());
        };
        let Ok(written) = u32::try_from(total) else {
            return Ok(Errno::Inval.code());
        };
        let copied = if fd == 1 { p.write_stdout(mem, &vecs, total)? } else { p.write_stderr(mem, &vecs) };
        Ok(wasi(copied.and_then(|()| memory::write_u32(mem, memory::u(nwritten), written)).map_err(fault)))
    })
}

fn fd_read(mut env: FunctionEnvMut<'_, Process>, fd: i32, iovs: i32, n: i32, nread: i32) -> i32 {
    with_guest(&mut env, "fd_read", |p, mem| {
        wasi((|| {
            if fd != 0 {
                return Err(Errno::Badf);
            }
            let mut total = 0u32;
            for (ptr, len) in iovecs(mem, iovs, n)? {
                let len = usize::try_from(len).map_err(|_| Errno::Inval)?;
                let chunk = p.read_stdin(len);
                let got = chunk.len();
                memory::write(mem, ptr, chunk).map_err(fault)?;
                total += got as u32;
                if got < len {
                    break;
                }
            }
            memory::write_u32(mem, memory::u(nread), total).map_err(fault)
        })())
    })
}

fn fd_close(mut env: FunctionEnvMut<'_, Process>, fd: i32) -> i32 {
    with_guest(&mut env, "fd_close", |_, _| wasi(if (0..=2).contains(&fd) { Ok(()) } else { Err(Errno::Badf) }))
}

fn fd_seek(mut env: FunctionEnvMut<'_, Process>, fd: i32, _offset: i64, _whence: i32, _new: i32) -> i32 {
    with_guest(&mut env, "fd_seek", |_, _| wasi(Err(if (0..=2).contains(&fd) { Errno::Spipe } else { Errno::Badf })))
}

fn fd_fdstat_get(mut env: FunctionEnvMut<'_, Process>, fd: i32, buf: i32) -> i32 {
    with_guest(&mut env, "fd_fdstat_get", |_, mem| {
        wasi((|| {
            let rights = match fd {
                0 => RIGHT_FD_READ,
                1 | 2 => RIGHT_FD_WRITE,
                _ => return Err(Errno::Badf),
            };
            // struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting } = 24 bytes.
            // Not a character device: wasi-libc then buffers stdout fully, as CGI wants.
            let mut st = [0u8; 24];
            st[0] = FILETYPE_UNKNOWN;
            st[8..16].copy_from_slice(&rights.to_le_bytes());
            memory::write(mem, memory::u(buf), &st).map_err(fault)
        })())
    })
}

fn fd_prestat_get(mut env: FunctionEnvMut<'_, Process>, _fd: i32, _buf: i32) -> i32 {
    // No preopened directories: EBADF ends wasi-libc's preopen scan at fd 3.
    with_guest(&mut env, "fd_prestat_get", |_, _| wasi(Err(Errno::Badf)))
}

fn fd_prestat_dir_name(mut env: FunctionEnvMut<'_, Process>, _fd: i32, _path: i32, _len: i32) -> i32 {
    with_guest(&mut env, "fd_prestat_dir_name", |_, _| wasi(Err(Errno::Badf)))
}

fn proc_exit(mut env: FunctionEnvMut<'_, Process>, code: i32) -> Result<(), RuntimeError> {
    with_guest_or_stop(&mut env, "proc_exit", |_, _| Err(Stop::Exit(code)))
}

/// `clock_time_get`: realtime is the wall clock; the monotonic, process
/// and thread clocks count from the call's start, so a guest learns nothing
/// of the worker's uptime or of other calls.
fn clock_time_get(mut env: FunctionEnvMut<'_, Process>, id: i32, _precision: i64, out: i32) -> i32 {
    with_guest(&mut env, "clock_time_get", |p, mem| {
        wasi((|| {
            let ns = match id {
                0 => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
                1..=3 => p.started.elapsed().as_nanos() as u64,
                _ => return Err(Errno::Inval),
            };
            memory::write_u64(mem, memory::u(out), ns).map_err(fault)
        })())
    })
}

fn clock_res_get(mut env: FunctionEnvMut<'_, Process>, id: i32, out: i32) -> i32 {
    with_guest(&mut env, "clock_res_get", |_, mem| {
        wasi((|| {
            if !(0..=3).contains(&id) {
                return Err(Errno::Inval);
            }
            memory::write_u64(mem, memory::u(out), 1_000).map_err(fault)
        })())
    })
}

fn random_get(mut env: FunctionEnvMut<'_, Process>, buf: i32, len: i32) -> i32 {
    with_guest(&mut env, "random_get", |_, mem| {
        let filled = memory::fill(mem, memory::u(buf), memory::u(len), |chunk| rand::rngs::OsRng.fill_bytes(chunk));
        wasi(filled.map_err(fault))
    })
}

fn sched_yield(mut env: FunctionEnvMut<'_, Process>) -> i32 {
    with_guest(&mut env, "sched_yield", |_, _| wasi(Ok(())))
}

/// The type of preview1 function `name` (`None`: not preview1).
pub(crate) fn signature(name: &str) -> Option<Sig> {
    SIGNATURES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every preview1 function and its type (the `wasi_snapshot_preview1`
/// witx); those without a host function above answer `ENOSYS`.
pub(crate) const SIGNATURES: &[(&str, Sig)] = {
    use crate::signature::Ty::{I32, I64};
    &[
        ("args_get", sig(P2, R32)),
        ("args_sizes_get", sig(P2, R32)),
        ("environ_get", sig(P2, R32)),
        ("environ_sizes_get", sig(P2, R32)),
        ("clock_res_get", sig(P2, R32)),
        ("clock_time_get", sig(&[I32, I64, I32], R32)),
        ("fd_advise", sig(&[I32, I64, I64, I32], R32)),
        ("fd_allocate", sig(&[I32, I64, I64], R32)),
        ("fd_close", sig(P1, R32)),
        ("fd_datasync", sig(P1, R32)),
        ("fd_fdstat_get", sig(P2, R32)),
        ("fd_fdstat_set_flags", sig(P2, R32)),
        ("fd_fdstat_set_rights", sig(&[I32, I64, I64], R32)),
        ("fd_filestat_get", sig(P2, R32)),
        ("fd_filestat_set_size", sig(&[I32, I64], R32)),
        ("fd_filestat_set_times", sig(&[I32, I64, I64, I32], R32)),
        ("fd_pread", sig(&[I32, I32, I32, I64, I32], R32)),
        ("fd_prestat_get", sig(P2, R32)),
        ("fd_prestat_dir_name", sig(P3, R32)),
        ("fd_pwrite", sig(&[I32, I32, I32, I64, I32], R32)),
        ("fd_read", sig(P4, R32)),
        ("fd_readdir", sig(&[I32, I32, I32, I64, I32], R32)),
        ("fd_renumber", sig(P2, R32)),
        ("fd_seek", sig(&[I32, I64, I32, I32], R32)),
        ("fd_sync", sig(P1, R32)),
        ("fd_tell", sig(P2, R32)),
        ("fd_write", sig(P4, R32)),
        ("path_create_directory", sig(P3, R32)),
        ("path_filestat_get", sig(P5, R32)),
        ("path_filestat_set_times", sig(&[I32, I32, I32, I32, I64, I64, I32], R32)),
        ("path_link", sig(P7, R32)),
        ("path_open", sig(&[I32, I32, I32, I32, I32, I64, I64, I32, I32], R32)),
        ("path_readlink", sig(P6, R32)),
        ("path_remove_directory", sig(P3, R32)),
        ("path_rename", sig(P6, R32)),
        ("path_symlink", sig(P5, R32)),
        ("path_unlink_file", sig(P3, R32)),
        ("poll_oneoff", sig(P4, R32)),
        ("proc_exit", sig(P1, NONE)),
        ("proc_raise", sig(P1, R32)),
        ("random_get", sig(P2, R32)),
        ("sched_yield", sig(NONE, R32)),
        ("sock_accept", sig(P3, R32)),
        ("sock_recv", sig(P6, R32)),
        ("sock_send", sig(P5, R32)),
        ("sock_shutdown", sig(P2, R32)),
    ]
};
