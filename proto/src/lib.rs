//! The Olincloud contract: the protobuf messages that travel over NATS and the
//! names (subjects, streams, consumers, KV buckets, headers) they travel under.
//!
//! # Layout
//! - [`authority`]: a host with an optional port (`Host`, egress entries).
//! - [`backoff`]: the exponential backoff of every retry loop.
//! - [`access`]: the NATS user of each platform role and what it may
//!   publish and subscribe to, rendered as `nats-server` configuration.
//! - [`v1`]: prost types generated from `proto/olin/v1/*.proto` by `build.rs`.
//! - [`header_policy`]: which HTTP headers cross between the platform and a
//!   function.
//! - [`net_policy`]: which addresses a function's outbound traffic may reach.
//! - [`sealed`] (feature `sealed`): secret environment values sealed under
//!   the platform's keys (control seals, the worker opens).
//! - [`subject`]: every NATS subject, stream, consumer, bucket and header name.
//!   No other crate builds a subject with `format!`.
//!
//! Pure: no I/O happens here. Connecting, the JetStream objects and the
//! shared limits are `olin-nats`; module storage is `olin-module-store`.
#![warn(missing_docs)]

pub mod access;
pub mod authority;
pub mod backoff;
pub mod header_policy;
pub mod net_policy;
#[cfg(feature = "sealed")]
pub mod sealed;
pub mod subject;

/// Generated protobuf types of package `olin.v1`. Never edit: see `build.rs`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/olin.v1.rs"));
}

pub use prost::Message;

/// Milliseconds since the Unix epoch: the unit of every deadline and
/// timestamp in the contract.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl v1::Outcome {
    /// The `Olin-Outcome` header value for this outcome, e.g. `GUEST_ERROR`.
    pub fn header_value(self) -> &'static str {
        self.as_str_name().trim_start_matches("OUTCOME_")
    }
}

impl v1::Outcome {
    /// The HTTP status a caller sees for a non-OK outcome (an OK outcome
    /// carries the function's own status). 502 for faults of the function,
    /// 504 for timeouts, 503 when the module cannot be had, 500 for ours.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Timeout => 504,
            Self::ModuleUnavailable => 503,
            Self::Internal | Self::Unspecified => 500,
            Self::GuestError
            | Self::FuelExhausted
            | Self::MemoryExceeded
            | Self::OutputTooLarge
            | Self::BadCgiOutput => 502,
        }
    }
}

impl v1::RouteRecord {
    /// A route that sends every call of `function` to one module, under a
    /// fresh deployment id: what a plain deploy publishes.
    pub fn single(function: &str, module_sha256: &str, deployment_id: &str) -> Self {
        v1::RouteRecord {
            function: function.to_owned(),
            deployment_id: deployment_id.to_owned(),
            targets: vec![v1::RouteTarget {
                module_sha256: module_sha256.to_owned(),
                weight: 100,
                version_id: String::new(),
            }],
            ..Default::default()
        }
    }
}

impl v1::ExecutionEventBatch {
    /// The execution events an `OLIN_EVENTS` message holds: those of a
    /// batch, or the one bare `ExecutionEvent` a worker sends. Events
    /// without an invocation id are left out (they cannot be recorded).
    ///
    /// # Errors
    /// If the payload is neither message.
    pub fn events_in(payload: &[u8]) -> Result<Vec<v1::ExecutionEvent>, prost::DecodeError> {
        let batch = v1::ExecutionEventBatch::decode(payload)?;
        let events = if batch.events.is_empty() { vec![v1::ExecutionEvent::decode(payload)?] } else { batch.events };
        Ok(events.into_iter().filter(|e| !e.invocation_id.is_empty()).collect())
    }
}

impl v1::EnvVar {
    /// A plain (not secret) value.
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> v1::EnvVar {
        v1::EnvVar { name: name.into(), value: value.into(), key_id: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::Message as _;
    use super::v1::{ExecutionEvent, ExecutionEventBatch, Outcome};

    fn event(id: &str) -> ExecutionEvent {
        ExecutionEvent { invocation_id: id.into(), function: "f".into(), path: "/p".into(), ..Default::default() }
    }

    #[test]
    fn a_batch_and_a_bare_event_are_told_apart() {
        let batch = ExecutionEventBatch { events: vec![event("a"), event("b"), event("")] };
        let ids = |events: Vec<ExecutionEvent>| events.into_iter().map(|e| e.invocation_id).collect::<Vec<_>>();
        assert_eq!(ids(ExecutionEventBatch::events_in(&batch.encode_to_vec()).unwrap()), ["a", "b"]);
        assert_eq!(ids(ExecutionEventBatch::events_in(&event("c").encode_to_vec()).unwrap()), ["c"]);
        // Neither reader sees the other's fields.
        assert_eq!(ExecutionEvent::decode(batch.encode_to_vec().as_slice()).unwrap(), ExecutionEvent::default());
        assert!(ExecutionEventBatch::decode(event("c").encode_to_vec().as_slice()).unwrap().events.is_empty());
        assert!(ExecutionEventBatch::events_in(b"").unwrap().is_empty());
        assert!(ExecutionEventBatch::events_in(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn outcome_statuses_and_names() {
        assert_eq!(Outcome::GuestError.http_status(), 502);
        assert_eq!(Outcome::BadCgiOutput.http_status(), 502);
        assert_eq!(Outcome::Timeout.http_status(), 504);
        assert_eq!(Outcome::ModuleUnavailable.http_status(), 503);
        assert_eq!(Outcome::Internal.http_status(), 500);
        assert_eq!(Outcome::FuelExhausted.header_value(), "FUEL_EXHAUSTED");
        assert_eq!(Outcome::Ok.header_value(), "OK");
    }
}
