//! NATS names of Olincloud. Every subject, stream, consumer, KV bucket and
//! header name is built here and nowhere else, so the contract has one home.
//!
//! Function names are DNS labels (`[a-z0-9-]`, 1..=63, no leading or trailing
//! `-`): they are then safe as a subject token, a KV key and a host name.

use thiserror::Error;

/// Stream holding pending invocations (work-queue retention).
pub const STREAM_INVOCATIONS: &str = "OLIN_INVOCATIONS";
/// Stream holding execution events (limits retention).
pub const STREAM_EVENTS: &str = "OLIN_EVENTS";
/// Stream holding dead-lettered invocations, with the reason in a header.
pub const STREAM_DEAD: &str = "OLIN_DEAD";
/// The durable pull consumer shared by every worker.
pub const CONSUMER_WORKERS: &str = "workers";
/// The durable pull consumer on `OLIN_EVENTS` shared by control's replicas.
pub const CONSUMER_CONTROL: &str = "control";
/// KV bucket: function name -> `RouteRecord`.
pub const KV_ROUTES: &str = "OLIN_ROUTES";
/// KV bucket: worker id -> heartbeat (TTL).
pub const KV_WORKERS: &str = "OLIN_WORKERS";
/// KV bucket: invocation id -> `InvocationResponse` of async calls (TTL).
pub const KV_RESULTS: &str = "OLIN_RESULTS";
/// KV bucket: per-function admission state shared by the gateways
/// ([`rate_key`], [`concurrency_key`]).
pub const KV_LIMITS: &str = "OLIN_LIMITS";

/// JetStream de-duplication header; carries the invocation id.
pub const HDR_MSG_ID: &str = "Nats-Msg-Id";
/// Where the worker publishes the `InvocationResponse` (core NATS).
pub const HDR_REPLY_TO: &str = "Olin-Reply-To";
/// Unix milliseconds after which the caller no longer waits.
pub const HDR_DEADLINE: &str = "Olin-Deadline";
/// W3C trace context.
pub const HDR_TRACEPARENT: &str = "traceparent";
/// Why a message was dead-lettered.
pub const HDR_DEAD_REASON: &str = "Olin-Dead-Reason";
/// On a call queued again after its deliveries ran out while its caller
/// still waited: how many deliveries the first message had.
pub const HDR_REQUEUED: &str = "Olin-Requeued";

/// On a direct call: how often, in ms, the worker says it is running. On a
/// message to a direct call's reply subject that is not its answer:
/// [`DIRECT_NOT_TAKEN`] or [`DIRECT_RUNNING`].
pub const HDR_DIRECT: &str = "Olin-Direct";
/// The worker a direct call reached has no free slot (or cannot load the
/// module now): the gateway queues the call instead.
pub const DIRECT_NOT_TAKEN: &str = "not-taken";
/// A direct call is still running (sent while it runs, so the gateway can
/// tell a live worker from a lost one).
pub const DIRECT_RUNNING: &str = "running";
/// The queue group of the workers' direct-call subscription: each direct
/// call reaches one worker.
pub const DIRECT_QUEUE_GROUP: &str = "workers";

/// HTTP response header naming the invocation.
pub const HTTP_INVOCATION_ID: &str = "olin-invocation-id";
/// HTTP response header naming the outcome (`OK`, `GUEST_ERROR`, ...).
pub const HTTP_OUTCOME: &str = "olin-outcome";
/// HTTP response header set when the platform, not the function, failed.
pub const HTTP_ERROR: &str = "olin-error";
/// HTTP request header naming a client's idempotency key: retries with the
/// same key get the first call's answer instead of running again.
pub const HTTP_IDEMPOTENCY_KEY: &str = "idempotency-key";
/// HTTP request header carrying the invoke key of a private function.
pub const HTTP_INVOKE_KEY: &str = "olin-invoke-key";
/// HTTP response header marking an answer given again for a repeated
/// idempotency key.
pub const HTTP_IDEMPOTENT_REPLAY: &str = "olin-idempotent-replay";
/// HTTP request header naming where an async call's result is POSTed.
pub const HTTP_CALLBACK_URL: &str = "olin-callback-url";
/// HTTP response header of an async result: how its callback went.
pub const HTTP_CALLBACK: &str = "olin-callback";
/// HTTP response header of an async result: how many times it ran.
pub const HTTP_ATTEMPTS: &str = "olin-attempts";

/// The queue group of the workers' dead-letter advisory subscription: one
/// worker handles each advisory.
pub const QUEUE_DEAD_LETTER: &str = "olin-dead-letter";

const INVOKE_PREFIX: &str = "olin.invoke";
const DIRECT_PREFIX: &str = "olin.direct";
const EVENT_PREFIX: &str = "olin.event";
const DEAD_PREFIX: &str = "olin.dead";
const REPLY_PREFIX: &str = "olin.reply";
const CTL_PREFIX: &str = "olin.ctl";
const WARM_PREFIX: &str = "olin.warm";
const REPLAY_PREFIX: &str = "olin.replay";

/// A name that cannot be used as a NATS subject token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The function name is not a DNS label.
    #[error("invalid function name {name:?}: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'")]
    Function {
        /// The rejected name.
        name: String,
    },
    /// An id (gateway, invocation, worker) holds a character that would split a subject.
    #[error("invalid id {id:?}: use only a-z, A-Z, 0-9, '-' and '_'")]
    Id {
        /// The rejected id.
        id: String,
    },
}

/// Whether `name` is a valid function name (a lower-case DNS label).
pub fn is_valid_function_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
}

fn function_token(name: &str) -> Result<&str, NameError> {
    if is_valid_function_name(name) { Ok(name) } else { Err(NameError::Function { name: name.to_owned() }) }
}

fn id_token(id: &str) -> Result<&str, NameError> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if ok { Ok(id) } else { Err(NameError::Id { id: id.to_owned() }) }
}

/// Subject an invocation of `function` is published to.
///
/// # Errors
/// [`NameError::Function`] if `function` is not a DNS label.
pub fn invoke_subject(function: &str) -> Result<String, NameError> {
    Ok(format!("{INVOKE_PREFIX}.{}", function_token(function)?))
}

/// Subjects of the invocation stream (all functions).
pub fn invoke_subjects() -> String {
    format!("{INVOKE_PREFIX}.>")
}

/// Subject a synchronous call of `function` is sent to directly (core NATS,
/// one worker of the queue group [`DIRECT_QUEUE_GROUP`], no stream).
///
/// # Errors
/// [`NameError::Function`] if `function` is not a DNS label.
pub fn direct_subject(function: &str) -> Result<String, NameError> {
    Ok(format!("{DIRECT_PREFIX}.{}", function_token(function)?))
}

/// Direct-call subjects of all functions.
pub fn direct_subjects() -> String {
    format!("{DIRECT_PREFIX}.*")
}

/// Subject an execution event of `function` is published to.
///
/// # Errors
/// [`NameError::Function`] if `function` is not a DNS label.
pub fn event_subject(function: &str) -> Result<String, NameError> {
    Ok(format!("{EVENT_PREFIX}.{}", function_token(function)?))
}

/// Subjects of the event stream.
pub fn event_subjects() -> String {
    format!("{EVENT_PREFIX}.>")
}

/// Subject a dead-lettered invocation is stored under. Undecodable messages,
/// whose function is unknown, go to `olin.dead._undecodable`.
pub fn dead_subject(function: Option<&str>) -> String {
    match function.filter(|f| is_valid_function_name(f)) {
        Some(f) => format!("{DEAD_PREFIX}.{f}"),
        None => format!("{DEAD_PREFIX}._undecodable"),
    }
}

/// Subjects of the dead-letter stream.
pub fn dead_subjects() -> String {
    format!("{DEAD_PREFIX}.>")
}

/// The reply subject for one invocation answered to one gateway.
///
/// # Errors
/// [`NameError::Id`] if either id holds a character outside `[A-Za-z0-9_-]`.
pub fn reply_subject(gateway_id: &str, invocation_id: &str) -> Result<String, NameError> {
    Ok(format!("{REPLY_PREFIX}.{}.{}", id_token(gateway_id)?, id_token(invocation_id)?))
}

/// The wildcard a gateway subscribes to once, receiving every reply sent to it.
///
/// # Errors
/// [`NameError::Id`] if `gateway_id` holds a character outside `[A-Za-z0-9_-]`.
pub fn reply_subscription(gateway_id: &str) -> Result<String, NameError> {
    Ok(format!("{REPLY_PREFIX}.{}.*", id_token(gateway_id)?))
}

/// Every reply subject of every gateway.
pub fn reply_subscriptions() -> String {
    format!("{REPLY_PREFIX}.>")
}

/// The invocation id at the end of a reply subject, if it is one.
pub fn invocation_id_of_reply(subject: &str) -> Option<&str> {
    reply_parts(subject).map(|(_gateway, id)| id)
}

/// The gateway id in a reply subject, if it is one.
pub fn gateway_of_reply(subject: &str) -> Option<&str> {
    reply_parts(subject).map(|(gateway, _id)| gateway)
}

fn reply_parts(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix(REPLY_PREFIX)?.strip_prefix('.')?;
    let (gateway, id) = rest.split_once('.')?;
    Some((id_token(gateway).ok()?, id_token(id).ok()?))
}

/// Core NATS subject on which a gateway that has just (re)connected asks
/// every worker to send again the replies it recently sent to it: a reply
/// in flight through a server that died is lost without a trace.
///
/// # Errors
/// [`NameError::Id`] if `gateway_id` holds a character outside `[A-Za-z0-9_-]`.
pub fn replay_request(gateway_id: &str) -> Result<String, NameError> {
    Ok(format!("{REPLAY_PREFIX}.{}", id_token(gateway_id)?))
}

/// Every gateway's [`replay_request`] subject.
pub fn replay_requests() -> String {
    format!("{REPLAY_PREFIX}.*")
}

/// The gateway id of a [`replay_request`] subject, if it is one.
pub fn gateway_of_replay_request(subject: &str) -> Option<&str> {
    id_token(subject.strip_prefix(REPLAY_PREFIX)?.strip_prefix('.')?).ok()
}

/// The reply subject a worker gives its reply number `seq`, under its own
/// inbox (`Client::new_inbox`): where the server says so if nobody heard it.
pub fn reply_status_subject(inbox: &str, seq: u64) -> String {
    format!("{inbox}.{seq}")
}

/// The wildcard a worker subscribes to once, for the statuses of all its
/// replies.
pub fn reply_status_subscription(inbox: &str) -> String {
    format!("{inbox}.*")
}

/// The reply number at the end of a reply status subject, if it is one.
pub fn reply_status_seq(subject: &str) -> Option<u64> {
    subject.rsplit_once('.')?.1.parse().ok()
}

/// JetStream's advisory for an invocation that exhausted its deliveries on
/// the `workers` consumer.
pub fn max_deliveries_advisory() -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM_INVOCATIONS}.{CONSUMER_WORKERS}")
}

/// Every control-plane broadcast subject.
pub fn ctl_subjects() -> String {
    format!("{CTL_PREFIX}.>")
}

/// Core NATS subject on which control asks workers to prewarm a module.
pub fn ctl_prewarm() -> String {
    format!("{CTL_PREFIX}.prewarm")
}

/// Where a worker answers a prewarm request: the module is ready (`ok`)
/// or could not be made so (`error: ...`). `token` is control's own
/// (a fresh id per request), so replies never cross.
///
/// # Errors
/// A token that is not one subject token.
pub fn warm_reply(token: &str) -> Result<String, NameError> {
    Ok(format!("{WARM_PREFIX}.{}", id_token(token)?))
}

/// Every prewarm reply subject (workers publish, control subscribes).
pub fn warm_replies() -> String {
    format!("{WARM_PREFIX}.>")
}

/// Core NATS subject on which control asks workers to evict a module.
pub fn ctl_evict() -> String {
    format!("{CTL_PREFIX}.evict")
}

/// The `OLIN_LIMITS` key of a function's rate-limit token bucket:
/// `rate_<function>` (`_` is not in function names, so keys cannot clash).
///
/// # Errors
/// [`NameError::Function`] if `function` is not a valid name.
pub fn rate_key(function: &str) -> Result<String, NameError> {
    Ok(format!("rate_{}", function_token(function)?))
}

/// The `OLIN_LIMITS` key of a function's concurrency leases: `conc_<function>`.
///
/// # Errors
/// [`NameError::Function`] if `function` is not a valid name.
pub fn concurrency_key(function: &str) -> Result<String, NameError> {
    Ok(format!("conc_{}", function_token(function)?))
}

/// The message id of a call queued again (see [`HDR_REQUEUED`]), from its
/// first message's id: a second requeue of the same call is a duplicate.
pub fn requeued_msg_id(msg_id: &str) -> String {
    format!("{msg_id}.requeued")
}

/// The `OLIN_RESULTS` key of a call made with an idempotency key, from the
/// hex sha256 of the key and its scope (function, invoke key): `idem_<hex>`
/// (`_` is never in an invocation id, so the two kinds of keys cannot clash).
pub fn idempotency_result_key(scoped_sha256_hex: &str) -> String {
    format!("idem_{scoped_sha256_hex}")
}

/// The on-store key of a module: `modules/<sha256>.wasm`.
pub fn module_object_key(sha256_hex: &str) -> String {
    format!("modules/{sha256_hex}.wasm")
}

/// The on-store key of a module's compiled artifact, shared by the workers
/// of one engine fingerprint: `artifacts/<fingerprint>/<sha256>.art`.
pub fn artifact_object_key(fingerprint: &str, sha256_hex: &str) -> String {
    format!("artifacts/{fingerprint}/{sha256_hex}.art")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_status_subjects_round_trip() {
        let subject = reply_status_subject("_INBOX.abc", 42);
        assert_eq!(subject, "_INBOX.abc.42");
        assert_eq!(reply_status_seq(&subject), Some(42));
        assert_eq!(reply_status_subscription("_INBOX.abc"), "_INBOX.abc.*");
        assert_eq!(reply_status_seq("_INBOX.abc.x"), None);
        assert_eq!(reply_status_seq("_INBOX"), None);
    }

    #[test]
    fn function_names_are_dns_labels() {
        for ok in ["a", "hello", "hello-world", "x1", &"a".repeat(63)] {
            assert!(is_valid_function_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Hello", "a.b", "a*", "a>", "a b", "é", &"a".repeat(64)] {
            assert!(!is_valid_function_name(bad), "{bad}");
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(invoke_subject("hello").unwrap(), "olin.invoke.hello");
        assert_eq!(event_subject("hello").unwrap(), "olin.event.hello");
        assert_eq!(invoke_subjects(), "olin.invoke.>");
        assert_eq!(event_subjects(), "olin.event.>");
        assert_eq!(dead_subjects(), "olin.dead.>");
        assert_eq!(dead_subject(Some("hello")), "olin.dead.hello");
        assert_eq!(dead_subject(Some("bad.name")), "olin.dead._undecodable");
        assert_eq!(dead_subject(None), "olin.dead._undecodable");
        assert!(matches!(invoke_subject("a.>"), Err(NameError::Function { .. })));
        assert!(event_subject("*").is_err());
        assert_eq!(ctl_prewarm(), "olin.ctl.prewarm");
        assert_eq!(warm_reply("0193-ab").unwrap(), "olin.warm.0193-ab");
        assert!(warm_reply("a.b").is_err() && warm_reply("*").is_err());
        assert_eq!(warm_replies(), "olin.warm.>");
        assert_eq!(max_deliveries_advisory(), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.OLIN_INVOCATIONS.workers");
        assert_eq!(ctl_evict(), "olin.ctl.evict");
        assert_eq!(module_object_key("ab12"), "modules/ab12.wasm");
        assert_eq!(artifact_object_key("wasmer-7-x86_64", "ab12"), "artifacts/wasmer-7-x86_64/ab12.art");
        assert_eq!(rate_key("hello").unwrap(), "rate_hello");
        assert_eq!(idempotency_result_key("ab12"), "idem_ab12");
        assert_eq!(requeued_msg_id("0193-ab"), "0193-ab.requeued");
        assert_eq!(direct_subject("hello").unwrap(), "olin.direct.hello");
        assert!(direct_subject("a.b").is_err());
        assert_eq!(direct_subjects(), "olin.direct.*");
        assert_eq!(concurrency_key("123").unwrap(), "conc_123");
        assert!(rate_key("a.b").is_err() && concurrency_key("a_b").is_err());
    }

    #[test]
    fn reply_subjects_round_trip() {
        let s = reply_subject("gw-1", "0190-abc").unwrap();
        assert_eq!(s, "olin.reply.gw-1.0190-abc");
        assert_eq!(reply_subscription("gw-1").unwrap(), "olin.reply.gw-1.*");
        assert_eq!(invocation_id_of_reply(&s), Some("0190-abc"));
        assert_eq!(invocation_id_of_reply("olin.reply.gw"), None);
        assert_eq!(invocation_id_of_reply("other.gw.id"), None);
        assert!(reply_subject("gw.1", "x").is_err());
        assert!(reply_subject("gw", "").is_err());
        assert!(reply_subscription("*").is_err());
        assert_eq!(gateway_of_reply(&s), Some("gw-1"));
        assert_eq!(gateway_of_reply("olin.reply.gw.a.b"), None);
        let r = replay_request("gw-1").unwrap();
        assert_eq!(r, "olin.replay.gw-1");
        assert_eq!(gateway_of_replay_request(&r), Some("gw-1"));
        assert_eq!(gateway_of_replay_request("olin.replay.a.b"), None);
        assert_eq!(replay_requests(), "olin.replay.*");
        assert!(replay_request("gw.1").is_err());
    }

    #[test]
    fn names_are_stable() {
        // These names are the public contract: changing one breaks deployed clients.
        assert_eq!(STREAM_INVOCATIONS, "OLIN_INVOCATIONS");
        assert_eq!(STREAM_EVENTS, "OLIN_EVENTS");
        assert_eq!(STREAM_DEAD, "OLIN_DEAD");
        assert_eq!(CONSUMER_WORKERS, "workers");
        assert_eq!(KV_ROUTES, "OLIN_ROUTES");
        assert_eq!(KV_WORKERS, "OLIN_WORKERS");
        assert_eq!(KV_RESULTS, "OLIN_RESULTS");
        assert_eq!(HDR_REPLY_TO, "Olin-Reply-To");
        assert_eq!(HDR_DEADLINE, "Olin-Deadline");
        assert_eq!(HDR_MSG_ID, "Nats-Msg-Id");
    }
}
