//! NATS as the platform runs it: TLS, one credential per role, no anonymous
//! access, and each credential allowed only what its service does
//! (`olin_proto::access`). Every other e2e test already runs each service on
//! its own credential; these tests try what a stolen one could do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt as _;
use olin_nats::topology;
use olin_proto::access::Role;
use olin_proto::subject;
use olin_test_support::{NatsServer, test_topology};

/// A JetStream context that gives up quickly: a refused request is never
/// answered, so it ends at the timeout.
fn js(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_millis(700)).build(client)
}

/// Whether a message published on `subject` by `publisher` reaches a
/// subscriber with every right.
async fn delivered(nats: &NatsServer, publisher: &async_nats::Client, subject: &str) -> bool {
    let operator = nats.client().await;
    let mut sub = operator.subscribe(subject.to_owned()).await.unwrap();
    subscribed(&operator).await;
    publisher.publish(subject.to_owned(), "x".into()).await.unwrap();
    let _ = publisher.flush().await;
    tokio::time::timeout(Duration::from_millis(500), sub.next()).await.is_ok()
}

/// Returns once the server has taken every subscription `operator` made
/// before: a client's `flush` only empties its own buffer, and the server
/// handles one connection's commands in order, so a message the operator
/// sends itself comes back only after them.
async fn subscribed(operator: &async_nats::Client) {
    let probe = operator.new_inbox();
    let mut echo = operator.subscribe(probe.clone()).await.unwrap();
    operator.publish(probe, "probe".into()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), echo.next()).await.unwrap();
}

#[tokio::test]
async fn anonymous_and_wrong_credentials_and_unverified_servers_are_refused() {
    let nats = NatsServer::start();
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let anonymous =
        async_nats::ConnectOptions::new().require_tls(true).add_root_certificates(nats.ca()).connect(nats.url()).await;
    let err = anonymous.expect_err("an anonymous client is refused").to_string();
    assert!(err.to_lowercase().contains("authorization"), "{err}");

    let wrong = nats.args(Role::Gateway).with_user("olin-gateway", "not-the-password").connect(Role::Gateway).await;
    assert!(wrong.is_err(), "a wrong password is refused");

    // Without the CA the server's certificate is not trusted.
    let err = async_nats::ConnectOptions::new()
        .user_and_password("olin-gateway".into(), nats.args(Role::Gateway).password.unwrap())
        .require_tls(true)
        .connect(nats.url())
        .await
        .expect_err("an unverified server is refused")
        .to_string();
    assert!(!err.is_empty());

    // Every role's own credential works.
    for role in Role::ALL {
        nats.client_as(role).await.flush().await.unwrap();
    }
}

#[tokio::test]
async fn a_gateway_credential_cannot_touch_streams_results_or_replies() {
    let nats = NatsServer::start();
    let operator = js(nats.client().await);
    let topo = topology::ensure(&operator, &test_topology()).await.unwrap();
    operator.publish(subject::invoke_subject("hello").unwrap(), "queued".into()).await.unwrap().await.unwrap();
    topo.results.put("0190-secret-call", "the result".into()).await.unwrap();

    let client = nats.client_as(Role::Gateway).await;
    let gateway = js(client.clone());
    let mine = topology::gateway(&gateway, &test_topology()).await.expect("the gateway binds its topology");

    // Streams: no delete, no purge; the queued call is still there.
    assert!(gateway.delete_stream(subject::STREAM_INVOCATIONS).await.is_err(), "deletes a stream");
    assert!(mine.invocations.purge().await.is_err(), "purges a stream");
    assert!(gateway.delete_stream("KV_OLIN_RESULTS").await.is_err(), "deletes the results bucket");
    let mut invocations = operator.get_stream(subject::STREAM_INVOCATIONS).await.unwrap();
    assert_eq!(invocations.info().await.unwrap().state.messages, 1);

    // Results: one by its id (what `GET /async/results/{id}` serves), but no
    // listing, no watch, no read by sequence, no subscription to the writes.
    assert_eq!(mine.results.get("0190-secret-call").await.unwrap().as_deref(), Some(&b"the result"[..]));
    assert!(mine.results.keys().await.is_err(), "lists the results");
    assert!(mine.results.watch_all().await.is_err(), "watches the results");
    let results_stream = gateway.get_stream("KV_OLIN_RESULTS").await.unwrap();
    assert!(results_stream.direct_get(1).await.is_err(), "reads a result by sequence");
    assert!(results_stream.get_raw_message(1).await.is_err(), "reads a result by sequence");
    assert!(!delivered_to(&nats, &client, "$KV.OLIN_RESULTS.0190-other").await, "hears results being written");

    // Replies: a gateway cannot answer a call as a worker would.
    let reply = subject::reply_subject("gw1", "0190-call").unwrap();
    assert!(!delivered(&nats, &client, &reply).await, "a gateway published a worker's reply");
    // ... nor write routes.
    assert!(!delivered(&nats, &client, "$KV.OLIN_ROUTES.hello").await, "a gateway wrote a route");
}

/// Whether `listener` hears a message the operator publishes on `subject`.
async fn delivered_to(nats: &NatsServer, listener: &async_nats::Client, subject: &str) -> bool {
    let Ok(mut sub) = listener.subscribe(subject.to_owned()).await else { return false };
    // A request answered means the server has taken the subscription before it.
    let _ = listener.request(format!("$JS.API.STREAM.INFO.{}", subject::STREAM_INVOCATIONS), "".into()).await;
    let operator = nats.client().await;
    operator.publish(subject.to_owned(), "x".into()).await.unwrap();
    operator.flush().await.unwrap();
    tokio::time::timeout(Duration::from_millis(500), sub.next()).await.ok().flatten().is_some()
}

#[tokio::test]
async fn a_worker_credential_cannot_write_routes() {
    let nats = NatsServer::start();
    let operator = js(nats.client().await);
    let routes = topology::ensure_routes(&operator, &test_topology()).await.unwrap();
    topology::ensure(&operator, &test_topology()).await.unwrap();

    let client = nats.client_as(Role::Worker).await;
    let worker = js(client.clone());
    topology::worker(&worker, &test_topology()).await.expect("the worker binds its topology");
    let theirs = worker.get_key_value(subject::KV_ROUTES).await;
    if let Ok(kv) = theirs {
        assert!(kv.put("hello", "forged route".into()).await.is_err(), "a worker wrote a route");
    }
    assert!(!delivered(&nats, &client, "$KV.OLIN_ROUTES.hello").await, "a worker wrote a route");
    assert_eq!(routes.get("hello").await.unwrap(), None);
    // Nor change the bucket's settings.
    let mut config = operator.get_stream("KV_OLIN_ROUTES").await.unwrap().info().await.unwrap().config.clone();
    config.max_age = Duration::from_secs(1);
    assert!(worker.update_stream(config).await.is_err(), "a worker changed the route bucket");
    // It answers callers, and queues an exhausted call again once
    // (`Olin-Requeued`): no more than running and answering it already is.
    assert!(delivered(&nats, &client, &subject::invoke_subject("hello").unwrap()).await);
    assert!(delivered(&nats, &client, &subject::reply_subject("gw1", "0190-call").unwrap()).await);
}

#[tokio::test]
async fn control_writes_routes_but_cannot_queue_calls_or_read_results() {
    let nats = NatsServer::start();
    let operator = js(nats.client().await);
    topology::ensure(&operator, &test_topology()).await.unwrap();
    let client = nats.client_as(Role::Control).await;
    let control = js(client.clone());
    let routes = topology::control(&control, &test_topology()).await.expect("control binds its topology").routes;
    routes.put("hello", "a route".into()).await.expect("control writes routes");
    assert!(!delivered(&nats, &client, &subject::invoke_subject("hello").unwrap()).await, "control queued a call");
    assert!(control.get_key_value(subject::KV_RESULTS).await.is_err(), "control reads async results");
}

/// What callers leave behind in JetStream is bounded in bytes: async results
/// (up to 10 MiB each) past the cap push the oldest out instead of filling
/// the server, and events and dead letters are capped the same way.
#[tokio::test]
async fn results_events_and_dead_letters_are_bounded_in_bytes() {
    let nats = NatsServer::start();
    let operator = js(nats.client().await);
    let cfg = topology::TopologyConfig {
        results_max_bytes: 256 << 10,
        events_max_bytes: 128 << 10,
        dead_max_bytes: 128 << 10,
        ..test_topology()
    };
    topology::ensure(&operator, &cfg).await.unwrap();
    // The worker owns these objects: its settings are the ones applied.
    let worker = js(nats.client_as(Role::Worker).await);
    let t = topology::worker(&worker, &cfg).await.unwrap();
    let result = vec![b'r'; 64 << 10];
    for i in 0..12 {
        t.results.put(format!("call-{i}"), result.clone().into()).await.unwrap();
    }
    let mut stream = operator.get_stream("KV_OLIN_RESULTS").await.unwrap();
    let info = stream.info().await.unwrap();
    assert!(info.state.bytes <= 256 << 10, "results hold {} bytes", info.state.bytes);
    // Read back as the gateway serves them (a worker only writes results).
    let results = operator.get_key_value(subject::KV_RESULTS).await.unwrap();
    assert_eq!(results.get("call-11").await.unwrap().map(|b| b.len()), Some(64 << 10), "the newest is kept");
    assert_eq!(results.get("call-0").await.unwrap(), None, "the oldest expired early");
    for (name, subject) in [
        (subject::STREAM_EVENTS, subject::event_subject("hello").unwrap()),
        (subject::STREAM_DEAD, subject::dead_subject(Some("hello"))),
    ] {
        for _ in 0..8 {
            worker.publish(subject.clone(), vec![b'e'; 32 << 10].into()).await.unwrap().await.unwrap();
        }
        let mut s = operator.get_stream(name).await.unwrap();
        let info = s.info().await.unwrap();
        assert!(info.state.bytes <= 128 << 10, "{name} holds {} bytes", info.state.bytes);
        assert!(info.state.messages >= 2, "{name} keeps the newest");
    }
}
