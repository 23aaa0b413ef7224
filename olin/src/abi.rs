//! The olin ABI (CommonWA dialect) host: OLIN_ABI.md section 1, with the bugs
//! of older hosts fixed. Each function is linked under both `env` and `cwa`.
//!
//! # Layout
//! One module per olin namespace: [`env`], [`io`], [`log`], [`random`],
//! [`resource`], [`runtime`], [`startup`], [`time`].

pub(crate) mod env;
pub(crate) mod io;
pub(crate) mod log;
pub(crate) mod random;
pub(crate) mod resource;
pub(crate) mod runtime;
pub(crate) mod startup;
pub(crate) mod time;

use wasmer::{Function, FunctionEnv, Store};

use crate::process::Process;
use crate::signature::Sig;
use crate::signature::short::*;

/// Import namespaces of the olin ABI.
pub(crate) const NAMESPACES: [&str; 2] = ["env", "cwa"];

macro_rules! host_functions {
    ($($name:literal => $f:path),* $(,)?) => {
        /// Every olin host function name.
        #[cfg(test)]
        pub(crate) const NAMES: &[&str] = &[$($name),*];

        /// Builds host function `name` for one call's store.
        pub(crate) fn function(store: &mut Store, env: &FunctionEnv<Process>, name: &str) -> Option<Function> {
            match name {
                $($name => Some(Function::new_typed_with_env(store, env, $f)),)*
                _ => None,
            }
        }
    };
}

host_functions! {
    "env_get" => env::get,
    "io_get_stdin" => io::get_stdin,
    "io_get_stdout" => io::get_stdout,
    "io_get_stderr" => io::get_stderr,
    "log_write" => log::write,
    "random_i32" => random::i32,
    "random_u32" => random::u32,
    "random_i64" => random::i64,
    "random_u64" => random::u64,
    "resource_open" => resource::open,
    "resource_read" => resource::read,
    "resource_write" => resource::write,
    "resource_flush" => resource::flush,
    "resource_close" => resource::close,
    "runtime_exit" => runtime::exit,
    "runtime_name" => runtime::name,
    "runtime_spec_major" => runtime::spec_major,
    "runtime_spec_minor" => runtime::spec_minor,
    "runtime_msleep" => runtime::msleep,
    "startup_arg_len" => startup::arg_len,
    "startup_arg_at" => startup::arg_at,
    "time_now" => time::now,
}

/// The type of olin host function `name` (`None`: not an olin function).
pub(crate) fn signature(name: &str) -> Option<Sig> {
    SIGNATURES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every olin host function and its type (OLIN_ABI.md section 1).
pub(crate) const SIGNATURES: &[(&str, Sig)] = &[
    ("env_get", sig(P4, R32)),
    ("io_get_stdin", sig(NONE, R32)),
    ("io_get_stdout", sig(NONE, R32)),
    ("io_get_stderr", sig(NONE, R32)),
    ("log_write", sig(P3, NONE)),
    ("random_i32", sig(NONE, R32)),
    ("random_u32", sig(NONE, R32)),
    ("random_i64", sig(NONE, R64)),
    ("random_u64", sig(NONE, R64)),
    ("resource_open", sig(P2, R32)),
    ("resource_read", sig(P3, R32)),
    ("resource_write", sig(P3, R32)),
    ("resource_flush", sig(P1, R32)),
    ("resource_close", sig(P1, NONE)),
    ("runtime_exit", sig(P1, NONE)),
    ("runtime_name", sig(P2, R32)),
    ("runtime_spec_major", sig(NONE, R32)),
    ("runtime_spec_minor", sig(NONE, R32)),
    ("runtime_msleep", sig(P1, NONE)),
    ("startup_arg_len", sig(NONE, R32)),
    ("startup_arg_at", sig(P3, R32)),
    ("time_now", sig(NONE, R64)),
];
