//! The platform's side of NATS, built on the names and messages of the
//! contract (`olin-proto`): how a service connects, the JetStream objects it
//! needs, and the shared state kept in them. Every subject, stream and
//! bucket name used here comes from `olin_proto::subject`.
//!
//! # Layout
//! - [`connect`]: the NATS connection flags every binary takes (URL,
//!   credentials, TLS) and the connection a role makes with them.
//! - [`topology`]: idempotent creation of the streams, the shared `workers`
//!   consumer and the KV buckets; writing a route record.
//! - [`admission`]: per-function rate and concurrency limits shared by every
//!   gateway through the `OLIN_LIMITS` bucket.
//! - [`dead_letters`]: listing and re-driving `OLIN_DEAD`.
#![warn(missing_docs)]

pub mod admission;
pub mod connect;
pub mod dead_letters;
pub mod topology;
