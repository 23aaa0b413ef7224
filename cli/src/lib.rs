//! `olinctl`, the Olincloud command-line tool.
//!
//! # Layout
//! - [`dev`]: `olinctl dev`, the whole stack on one machine.
//! - [`nats_process`]: a `nats-server` child process on a random port.

pub mod dev;
pub mod nats_process;
