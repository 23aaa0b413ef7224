//! `olinctl`, the Olincloud command-line tool.
//!
//! # Layout
//! - [`dev`]: `olinctl dev`, the whole stack on one machine.
//! - [`dead_letters`]: `olinctl dead-letters list|redrive`.
//! - [`nats_process`]: a `nats-server` child process on a random port.

pub mod dead_letters;
pub mod dev;
pub mod nats_process;
