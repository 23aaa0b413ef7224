//! Queue semantics on a real JetStream: poison messages are dead-lettered,
//! a repeated invocation id runs once, and a call whose workers keep dying
//! is dead-lettered and answered instead of waiting for its deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use olin_nats::topology::{self, TopologyConfig};
use olin_proto::Message as _;
use olin_proto::subject;
use olin_proto::v1::{AsyncResult, InvocationRequest, InvocationResponse, Outcome};
use olin_test_support::{
    GatewayBuilder, NatsServer, S3Server, SyncPath, WorkerBuilder, WorkerHandle, deploy, fixtures, test_topology, wait,
};

async fn dead_letters(
    js: &async_nats::jetstream::Context,
    n: usize,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let stream = js.get_stream(subject::STREAM_DEAD).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..100 {
        out.clear();
        let mut seq = 1;
        while let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m);
            seq += 1;
        }
        if out.len() >= n {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

fn request(function: &str, sha256: &str, id: &str) -> InvocationRequest {
    InvocationRequest {
        invocation_id: id.into(),
        function: function.into(),
        module_sha256: sha256.into(),
        method: "GET".into(),
        path: "/".into(),
        ..Default::default()
    }
}

/// Publishes `req` to its function's invocation subject and waits for the
/// stream's acknowledgement.
async fn enqueue(
    js: &async_nats::jetstream::Context,
    headers: HeaderMap,
    req: &InvocationRequest,
) -> async_nats::jetstream::publish::PublishAck {
    js.publish_with_headers(subject::invoke_subject(&req.function).unwrap(), headers, req.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap()
}

/// NATS, S3 and a worker with two slots, the `hello` module deployed.
struct Hello {
    _nats: NatsServer,
    _s3: S3Server,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    sha: String,
    worker: WorkerHandle,
}

impl Hello {
    async fn start() -> Hello {
        let nats = NatsServer::start();
        let s3 = S3Server::start().await;
        let client = nats.client().await;
        let sha = deploy(&client, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
        let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
        let js = async_nats::jetstream::new(client.clone());
        Hello { _nats: nats, _s3: s3, client, js, sha, worker }
    }
}

/// The next reply on `replies`, decoded; fails the test if none comes
/// `within`.
async fn next_reply(replies: &mut async_nats::Subscriber, within: Duration) -> InvocationResponse {
    let reply = tokio::time::timeout(within, replies.next()).await.expect("no reply in time").unwrap();
    InvocationResponse::decode(reply.payload).unwrap()
}

fn headers(reply_to: &str, id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(subject::HDR_REPLY_TO, reply_to);
    h.insert(subject::HDR_MSG_ID, id);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_dead_lettered_once() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    js.publish(subject::invoke_subject("hello").unwrap(), "\u{ff}garbage, not protobuf".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let dead = dead_letters(&js, 1).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].headers.get(subject::HDR_DEAD_REASON).unwrap().as_str().to_owned();
    assert!(reason.contains("undecodable"), "{reason}");
    assert_eq!(dead[0].subject.as_str(), "olin.dead._undecodable");
    // Removed from the queue (so never redelivered).
    wait::until_true("the queue is empty", Duration::from_secs(5), || async {
        let mut invocations = js.get_stream(subject::STREAM_INVOCATIONS).await.unwrap();
        invocations.info().await.unwrap().state.messages == 0
    })
    .await;
    assert_eq!(worker.stats.dead_lettered.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(worker.executions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_invocation_id_runs_once() {
    let Hello { _nats, _s3, client, js, sha, worker } = Hello::start().await;
    let mut replies = client.subscribe("olin.reply.test.>").await.unwrap();
    let req = request("hello", &sha, "dup-1");
    for _ in 0..2 {
        let ack = enqueue(&js, headers("olin.reply.test.dup-1", "dup-1"), &req).await;
        assert_eq!(ack.sequence, 1, "the second publish is a duplicate of the first");
    }
    let resp = next_reply(&mut replies, Duration::from_secs(10)).await;
    assert_eq!(resp.outcome(), Outcome::Ok, "{}", resp.error);
    assert!(tokio::time::timeout(Duration::from_millis(700), replies.next()).await.is_err(), "one reply only");
    assert_eq!(worker.executions(), 1);
}

/// `hello` deployed, and the topology made with a short ack wait and two
/// deliveries, so that a test can exhaust a call by pulling it twice.
struct Exhaustible {
    nats: NatsServer,
    s3: S3Server,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    sha: String,
    topo: TopologyConfig,
    consumer: async_nats::jetstream::consumer::PullConsumer,
}

impl Exhaustible {
    async fn start(ack_wait_ms: u64) -> Exhaustible {
        let nats = NatsServer::start();
        let s3 = S3Server::start().await;
        let client = nats.client().await;
        let sha = deploy(&client, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
        let topo = TopologyConfig { ack_wait: Duration::from_millis(ack_wait_ms), max_deliver: 2, ..test_topology() };
        let js = async_nats::jetstream::new(client.clone());
        let t = topology::ensure(&js, &topo).await.unwrap();
        let consumer = topology::ensure_workers_consumer(&t.invocations, &topo).await.unwrap();
        Exhaustible { nats, s3, client, js, sha, topo, consumer }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exhausted_deliveries_are_dead_lettered_and_answered() {
    let Exhaustible { nats, s3, client, js, sha, topo, consumer } = Exhaustible::start(400).await;
    let mut replies = client.subscribe("olin.reply.test.>").await.unwrap();
    // A synchronous call (its caller waits on a reply subject) and an async one.
    enqueue(&js, headers("olin.reply.test.lost-1", "lost-1"), &request("hello", &sha, "lost-1")).await;
    let mut async_req = request("hello", &sha, "lost-2");
    async_req.r#async = true;
    let mut async_headers = HeaderMap::new();
    async_headers.insert(subject::HDR_MSG_ID, "lost-2");
    enqueue(&js, async_headers, &async_req).await;

    // Workers take the calls and die before acking them, twice.
    for delivery in 1..=2 {
        let mut batch = consumer.batch().max_messages(2).expires(Duration::from_secs(3)).messages().await.unwrap();
        for _ in 0..2 {
            let msg = batch.next().await.unwrap().unwrap();
            assert_eq!(msg.info().unwrap().delivered, delivery);
        }
    }
    // A live worker picks up JetStream's max-deliveries advisories.
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(topo).start().await;
    let resp = next_reply(&mut replies, Duration::from_secs(10)).await;
    assert_eq!(resp.invocation_id, "lost-1");
    assert_eq!(resp.outcome(), Outcome::Internal);
    assert!(resp.error.contains("delivered 2 times"), "{}", resp.error);
    let dead = dead_letters(&js, 2).await;
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.subject.as_str() == "olin.dead.hello"));
    assert!(dead[0].headers.get(subject::HDR_DEAD_REASON).unwrap().as_str().contains("2 times"));
    let results = js.get_key_value(subject::KV_RESULTS).await.unwrap();
    let mut stored = None;
    for _ in 0..100 {
        stored = results.get("lost-2").await.unwrap();
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = AsyncResult::decode(stored.expect("the async caller's result is recorded")).unwrap();
    assert_eq!(result.response.unwrap().outcome(), Outcome::Internal);
    let mut invocations = js.get_stream(subject::STREAM_INVOCATIONS).await.unwrap();
    assert_eq!(invocations.info().await.unwrap().state.messages, 0);
    assert_eq!(worker.executions(), 0, "exhausted calls are not run again");
}

/// Deliveries can be spent without reaching a worker (a clustered stream
/// electing a leader): a synchronous call whose caller still waits gets a
/// second round, once; a call already queued again is dead-lettered with the
/// deliveries of both rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_call_whose_caller_waits_is_queued_again_once() {
    let Exhaustible { nats, s3, client, js, sha, topo, consumer } = Exhaustible::start(400).await;
    let mut replies = client.subscribe("olin.reply.test.>").await.unwrap();
    let deadline = (olin_proto::unix_ms() + 30_000).to_string();
    for (id, requeued) in [("again-1", None), ("again-2", Some("2"))] {
        let mut h = headers(&format!("olin.reply.test.{id}"), id);
        h.insert(subject::HDR_DEADLINE, deadline.as_str());
        if let Some(n) = requeued {
            h.insert(subject::HDR_REQUEUED, n);
        }
        enqueue(&js, h, &request("hello", &sha, id)).await;
    }
    // Both calls' deliveries are spent without a worker seeing them.
    for delivery in 1..=2 {
        let mut batch = consumer.batch().max_messages(2).expires(Duration::from_secs(3)).messages().await.unwrap();
        for _ in 0..2 {
            assert_eq!(batch.next().await.unwrap().unwrap().info().unwrap().delivered, delivery);
        }
    }
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(topo).start().await;
    let mut answers = std::collections::HashMap::new();
    for _ in 0..2 {
        let resp = next_reply(&mut replies, Duration::from_secs(10)).await;
        answers.insert(resp.invocation_id.clone(), resp);
    }
    let first = &answers["again-1"];
    assert_eq!(first.outcome(), Outcome::Ok, "queued again and run: {}", first.error);
    let second = &answers["again-2"];
    assert_eq!(second.outcome(), Outcome::Internal);
    assert!(second.error.contains("delivered 4 times"), "both rounds counted: {}", second.error);
    assert_eq!(worker.executions(), 1);
    assert_eq!(worker.stats.requeued.load(std::sync::atomic::Ordering::Relaxed), 1);
    let dead = dead_letters(&js, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers.get(subject::HDR_MSG_ID).unwrap().as_str(), "again-2");
    assert!(tokio::time::timeout(Duration::from_millis(700), replies.next()).await.is_err(), "one answer each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_longer_than_the_ack_wait_keeps_its_message() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let sha = deploy(&client, &s3.store_args(), "doze", &fixtures::wat("doze.wat")).await;
    // The run takes 2.5 s; without progress acks JetStream would hand the
    // message to a free slot again after 1 s.
    let topo = TopologyConfig { ack_wait: Duration::from_secs(1), ..test_topology() };
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(topo).start().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut replies = client.subscribe("olin.reply.test.>").await.unwrap();
    enqueue(&js, headers("olin.reply.test.doze-1", "doze-1"), &request("doze", &sha, "doze-1")).await;

    let resp = next_reply(&mut replies, Duration::from_secs(10)).await;
    assert_eq!(resp.outcome(), Outcome::Ok, "{}", resp.error);
    assert_eq!(resp.body.as_ref(), b"awake");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(subject::STREAM_INVOCATIONS)
        .await
        .unwrap()
        .get_consumer(subject::CONSUMER_WORKERS)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_redelivered, 0, "the message was redelivered during the run");
    assert_eq!(info.num_ack_pending, 0, "acked after the run");
    // A redelivered copy would have started by 1.5 s and finished by now.
    assert!(tokio::time::timeout(Duration::from_millis(2000), replies.next()).await.is_err(), "one reply only");
    assert_eq!(worker.executions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_that_reached_no_one_is_sent_again_once_the_caller_listens() {
    // After a NATS restart a worker may be back before the caller's gateway
    // has resubscribed: its reply then reaches no one, and the call is acked.
    // The server says so (no responders) and the worker sends it again.
    let Hello { _nats, _s3, client, js, sha, worker } = Hello::start().await;
    let mut req = request("hello", &sha, "late-1");
    req.deadline_unix_ms = olin_proto::unix_ms() + 20_000;
    enqueue(&js, headers("olin.reply.late.late-1", "late-1"), &req).await;
    for _ in 0..200 {
        if worker.executions() == 1 && worker.replies_resent() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(worker.executions(), 1, "the call ran");
    assert!(worker.replies_resent() >= 1, "the unheard reply was sent again");

    // The caller subscribes late and still gets its answer, from that one run.
    let mut replies = client.subscribe("olin.reply.late.>").await.unwrap();
    let resp = next_reply(&mut replies, Duration::from_secs(5)).await;
    assert_eq!(resp.outcome(), Outcome::Ok, "{}", resp.error);
    assert_eq!(resp.invocation_id, "late-1");
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), replies.next()).await.is_err(),
        "sent until heard, then no more"
    );
    assert_eq!(worker.executions(), 1, "answered again without running again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_back_from_a_reconnect_gets_its_recent_replies_again() {
    // A reply on its way through a server that died is lost without a
    // trace; the gateway, once reconnected, asks for its replies again and
    // the worker sends those it keeps for that gateway, without running
    // the call again.
    let Hello { _nats, _s3, client, js, sha, worker } = Hello::start().await;
    let mut replies = client.subscribe("olin.reply.gwx.>").await.unwrap();
    let mut req = request("hello", &sha, "kept-1");
    req.deadline_unix_ms = olin_proto::unix_ms() + 20_000;
    enqueue(&js, headers("olin.reply.gwx.kept-1", "kept-1"), &req).await;
    let first = next_reply(&mut replies, Duration::from_secs(10)).await;
    assert_eq!((first.invocation_id.as_str(), first.outcome()), ("kept-1", Outcome::Ok), "{}", first.error);

    // Another gateway's request sends nothing of this one's.
    client.publish(subject::replay_request("gwy").unwrap(), Bytes::new()).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), replies.next()).await.is_err());
    client.publish(subject::replay_request("gwx").unwrap(), Bytes::new()).await.unwrap();
    let again = next_reply(&mut replies, Duration::from_secs(5)).await;
    assert_eq!(again, first, "the same answer, sent again");
    assert_eq!(worker.executions(), 1, "answered again without running again");
    assert_eq!(worker.replies_replayed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_in_flight_across_a_nats_restart_gets_its_own_answer_direct() {
    a_call_in_flight_across_a_nats_restart_gets_its_own_answer(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_in_flight_across_a_nats_restart_gets_its_own_answer_queued() {
    a_call_in_flight_across_a_nats_restart_gets_its_own_answer(SyncPath::Queue).await;
}

async fn a_call_in_flight_across_a_nats_restart_gets_its_own_answer(path: SyncPath) {
    // The guest sleeps 200 ms; NATS restarts meanwhile. The worker's reply
    // may have been written to the dying server or heard by no one: the
    // worker sends its kept replies again once reconnected, the gateway
    // asks for its replies again once it is back with a call waiting, and
    // an unheard reply is sent until heard.
    let mut nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).sync_path(path).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "nap").await;
    let call = tokio::spawn(http.get(gateway.function_url("nap", "/?across-1")).send());
    wait::until_true("the guest is running", Duration::from_secs(10), || async { worker.in_flight() == 1 }).await;
    nats.restart();
    let r = call.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "across-1", "its own answer");
    // Which repair answered it depends on timing (the reply sent before
    // or after each side reconnected); the mechanisms have tests of their
    // own above. Here: the call's own answer. (It may run twice: an ack
    // written to the dying server is lost, and the call is redelivered.)
    let asked = wait::metric(&gateway.admin_url("/metrics"), "olin_gateway_replay_requests_total", &[]).await;
    println!(
        "gateway replay requests {asked:?}, worker replies replayed {}, runs {}",
        worker.replies_replayed(),
        worker.executions()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_applies_its_ack_wait_and_deliveries_to_the_consumer() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    let settings = |ack_wait_ms: u64, max_deliver: i64| TopologyConfig {
        ack_wait: Duration::from_millis(ack_wait_ms),
        max_deliver,
        ..test_topology()
    };
    let consumer_config = || async {
        let stream = js.get_stream(subject::STREAM_INVOCATIONS).await.unwrap();
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(subject::CONSUMER_WORKERS).await.unwrap();
        let info = c.info().await.unwrap();
        (info.config.ack_wait, info.config.max_deliver)
    };
    let first = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(settings(30_000, 3)).start().await;
    assert_eq!(consumer_config().await, (Duration::from_secs(30), 3));
    first.stop().await;
    // Restarted with other settings: the consumer follows.
    let second = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(settings(5_000, 5)).start().await;
    assert_eq!(consumer_config().await, (Duration::from_secs(5), 5));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_call_whose_advisory_was_missed_is_swept_to_dead_letters() {
    let Exhaustible { nats, s3, js, sha, topo, consumer, .. } = Exhaustible::start(300).await;
    let mut h = headers("olin.reply.test.stuck-1", "stuck-1");
    h.insert(subject::HDR_DEADLINE, (olin_proto::unix_ms() + 500).to_string().as_str());
    enqueue(&js, h, &request("hello", &sha, "stuck-1")).await;
    // Taken twice and never acked; the third pull finds nothing: JetStream
    // gave up, and its advisory fired while no worker listened.
    for delivery in 1..=2 {
        let mut batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages().await.unwrap();
        assert_eq!(batch.next().await.unwrap().unwrap().info().unwrap().delivered, delivery);
    }
    let mut third = consumer.fetch().max_messages(1).expires(Duration::from_secs(1)).messages().await.unwrap();
    assert!(third.next().await.is_none(), "no third delivery");
    let mut invocations = js.get_stream(subject::STREAM_INVOCATIONS).await.unwrap();
    assert_eq!(invocations.info().await.unwrap().state.messages, 1, "the exhausted call is stuck in the queue");

    // A worker started now hears no advisory: its sweeper finds the call
    // once it is past its deadline and every ack wait.
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args())
        .topology(topo)
        .config(|c| c.sweep_interval_ms = 200)
        .start()
        .await;
    let dead = dead_letters(&js, 1).await;
    assert_eq!(dead.len(), 1, "the stuck call reached OLIN_DEAD");
    let reason = dead[0].headers.get(subject::HDR_DEAD_REASON).unwrap().as_str().to_owned();
    assert!(reason.contains("after its deadline"), "{reason}");
    assert_eq!(invocations.info().await.unwrap().state.messages, 0);
    assert_eq!(worker.executions(), 0, "a stuck call is not run");
    worker.stop().await;
}
