//! Operating on `OLIN_DEAD`: listing dead-lettered invocations with their
//! reasons, and re-driving one (publishing it again, to the function's
//! current deployment, with a fresh deadline).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use olin_proto::Message as _;
use thiserror::Error;

use olin_proto::subject;
use olin_proto::v1::{InvocationRequest, RouteRecord};

/// One dead-lettered invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence in `OLIN_DEAD`: what `redrive` takes.
    pub seq: u64,
    /// The function, if the message could be decoded.
    pub function: String,
    /// The invocation id, if the message could be decoded.
    pub invocation_id: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Whether it was an async call.
    pub is_async: bool,
}

/// Listing or re-driving failed.
#[derive(Debug, Error)]
pub enum DeadLetterError {
    /// NATS refused an operation.
    #[error("{what}: {source}")]
    Nats {
        /// What was being done.
        what: &'static str,
        /// The NATS error.
        #[source]
        source: async_nats::Error,
    },
    /// No dead letter with that sequence.
    #[error("no dead letter {0} in {stream}", stream = subject::STREAM_DEAD)]
    NotFound(u64),
    /// The stored message is not an invocation and cannot be re-driven.
    #[error("dead letter {0} is not a decodable invocation; it can only be inspected")]
    Undecodable(u64),
}

fn nats<E: Into<async_nats::Error>>(what: &'static str) -> impl FnOnce(E) -> DeadLetterError {
    move |e| DeadLetterError::Nats { what, source: e.into() }
}

/// Lists up to `limit` dead letters, oldest first.
///
/// # Errors
/// [`DeadLetterError::Nats`] if the stream cannot be read.
pub async fn list(js: &jetstream::Context, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let mut stream = js.get_stream(subject::STREAM_DEAD).await.map_err(nats("opening OLIN_DEAD"))?;
    let state = stream.info().await.map_err(nats("reading OLIN_DEAD"))?.state.clone();
    let mut out = Vec::new();
    let mut seq = state.first_sequence;
    while seq <= state.last_sequence && out.len() < limit && state.messages > 0 {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let req = InvocationRequest::decode(m.payload.clone()).ok();
            out.push(DeadLetter {
                seq,
                function: req.as_ref().map(|r| r.function.clone()).unwrap_or_default(),
                invocation_id: req.as_ref().map(|r| r.invocation_id.clone()).unwrap_or_default(),
                reason: m.headers.get(subject::HDR_DEAD_REASON).map(|v| v.as_str().to_owned()).unwrap_or_default(),
                is_async: req.as_ref().is_some_and(|r| r.r#async),
            });
        }
        seq += 1;
    }
    Ok(out)
}

/// Publishes dead letter `seq` again and removes it from `OLIN_DEAD`. The
/// call goes to the function's current deployment (so a fixed function gets
/// the retried call) with a deadline `deadline` from now. Returns the
/// invocation id.
///
/// # Errors
/// [`DeadLetterError`] if it does not exist, is not an invocation, or NATS fails.
pub async fn redrive(js: &jetstream::Context, seq: u64, deadline: Duration) -> Result<String, DeadLetterError> {
    let stream = js.get_stream(subject::STREAM_DEAD).await.map_err(nats("opening OLIN_DEAD"))?;
    let stored = stream.get_raw_message(seq).await.map_err(|_| DeadLetterError::NotFound(seq))?;
    let mut req = InvocationRequest::decode(stored.payload.clone()).map_err(|_| DeadLetterError::Undecodable(seq))?;
    let invoke = subject::invoke_subject(&req.function).map_err(|_| DeadLetterError::Undecodable(seq))?;
    if let Ok(routes) = js.get_key_value(subject::KV_ROUTES).await
        && let Ok(Some(bytes)) = routes.get(&req.function).await
        && let Ok(route) = RouteRecord::decode(bytes)
        && let Some(target) = route.targets.iter().max_by_key(|t| t.weight)
    {
        req.module_sha256 = target.module_sha256.clone();
        req.deployment_id = route.deployment_id.clone();
        req.limits = route.limits;
        req.env = route.env.clone();
        req.egress_allow = route.egress_allow.clone();
    }
    req.deadline_unix_ms = olin_proto::unix_ms() + deadline.as_millis() as u64;
    let mut headers = HeaderMap::new();
    headers.insert(subject::HDR_DEADLINE, req.deadline_unix_ms.to_string().as_str());
    if let Some(reply_to) = stored.headers.get(subject::HDR_REPLY_TO) {
        headers.insert(subject::HDR_REPLY_TO, reply_to.as_str());
    }
    let publish = PublishMessage::build()
        .payload(req.encode_to_vec().into())
        .headers(headers)
        .message_id(format!("{}-redrive-{seq}", req.invocation_id));
    js.send_publish(invoke, publish)
        .await
        .map_err(nats("publishing the call"))?
        .await
        .map_err(nats("publishing the call"))?;
    stream.delete_message(seq).await.map_err(nats("removing the dead letter"))?;
    Ok(req.invocation_id)
}
