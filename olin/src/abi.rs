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

/// Import namespaces of the olin ABI.
pub(crate) const NAMESPACES: [&str; 2] = ["env", "cwa"];

macro_rules! host_functions {
    ($($name:literal => $f:path),* $(,)?) => {
        /// Every olin host function name.
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

/// Whether `name` is an olin host function.
pub(crate) fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}
