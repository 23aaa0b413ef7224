//! The two floors the gateway benchmark compares against, as HTTP servers
//! that `wrk` drives like the gateway:
//!
//! - `floor inprocess <addr>`: runs the same sandbox code directly for
//!   `/f/echo` and `/f/hello` (the committed examples), with no NATS in
//!   between: what Olincloud would cost without its queue.
//! - `floor jetstream <addr> <nats-url>`: the bare JetStream work-queue round
//!   trip with no wasm: publish to a work-queue stream, a pull consumer
//!   takes it, replies on core NATS, acks; the HTTP handler answers with the
//!   reply. What the queue alone costs.
//! - `floor direct <addr> <nats-url>`: the bare direct path with no wasm:
//!   the handler publishes on core NATS to a subject a "worker" listens to
//!   in a queue group, which replies to the handler's reply subject. What
//!   the gateway's direct path costs in messaging alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use olin::{Limits, RunContext, Runtime};
use olin_proto::v1::{InvocationRequest, Outcome};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use warp::Filter;

const HELLO: &[u8] = include_bytes!("../../../examples/hello/hello.wasm");
const ECHO: &[u8] = include_bytes!("../../../examples/echo/echo.wasm");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("inprocess") => inprocess(args.get(2).context("address")?.parse()?).await,
        Some("jetstream") => {
            jetstream_floor(args.get(2).context("address")?.parse()?, args.get(3).context("nats url")?).await
        }
        Some("direct") => {
            direct_floor(args.get(2).context("address")?.parse()?, args.get(3).context("nats url")?).await
        }
        _ => anyhow::bail!(
            "usage: floor inprocess <addr> | floor jetstream <addr> <nats-url> | floor direct <addr> <nats-url>"
        ),
    }
}

async fn inprocess(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let rt = Runtime::new(Limits::MAXIMUM.memory_pages());
    let modules: Arc<HashMap<&'static str, olin::Module>> =
        Arc::new([("echo", rt.compile(ECHO)?.0), ("hello", rt.compile(HELLO)?.0)].into_iter().collect());
    let route = warp::path!("f" / String)
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(move |name: String, method: warp::http::Method, headers: warp::http::HeaderMap, body: Bytes| {
            let (rt, modules) = (rt.clone(), modules.clone());
            async move {
                let Some(module) = modules.get(name.as_str()).cloned() else {
                    return warp::http::Response::builder().status(404).body(Bytes::new()).unwrap_or_default();
                };
                let req = InvocationRequest {
                    invocation_id: uuid::Uuid::now_v7().to_string(),
                    function: name,
                    method: method.to_string(),
                    headers: headers
                        .iter()
                        .map(|(n, v)| olin_proto::v1::Header {
                            name: n.to_string(),
                            value: Bytes::copy_from_slice(v.as_bytes()),
                        })
                        .collect(),
                    body,
                    ..Default::default()
                };
                let resp = tokio::task::spawn_blocking(move || {
                    let ctx = RunContext {
                        worker_id: "floor",
                        defaults: &Limits::DEFAULT,
                        maxima: &Limits::MAXIMUM,
                        egress: None,
                    };
                    rt.run(&module, &req, &ctx)
                })
                .await
                .unwrap_or_default();
                let mut b = warp::http::Response::builder().status(if resp.outcome() == Outcome::Ok {
                    resp.status as u16
                } else {
                    502
                });
                for h in &resp.headers {
                    b = b.header(h.name.as_str(), h.value.as_ref());
                }
                b.body(resp.body).unwrap_or_default()
            }
        });
    println!("in-process floor on {addr}");
    warp::serve(route).run(addr).await;
    Ok(())
}

async fn jetstream_floor(addr: std::net::SocketAddr, nats_url: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats_url).await?;
    let js = jetstream::new(client.clone());
    let s = js
        .create_or_update_stream(stream::Config {
            name: "BENCH_FLOOR".into(),
            subjects: vec!["bench.floor".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await?;
    let _ = s;
    let stream = js.get_stream("BENCH_FLOOR").await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            "floor",
            consumer::pull::Config {
                durable_name: Some("floor".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    // The "worker": pull, reply on core NATS, ack. Two slots, as the worker
    // has on this machine.
    for _ in 0..2 {
        let (consumer, client) = (consumer.clone(), client.clone());
        tokio::spawn(async move {
            loop {
                let Ok(mut batch) = consumer.batch().max_messages(1).expires(Duration::from_secs(2)).messages().await
                else {
                    continue;
                };
                while let Some(Ok(msg)) = batch.next().await {
                    if let Some(reply) = msg.headers.as_ref().and_then(|h| h.get("Olin-Reply-To")) {
                        let _ = client.publish(reply.as_str().to_owned(), msg.payload.clone()).await;
                    }
                    let _ = msg.ack().await;
                }
            }
        });
    }
    let pending = replies(&client).await?;
    let route = warp::any().and(warp::body::bytes()).then(move |body: Bytes| {
        let (js, pending) = (js.clone(), pending.clone());
        async move {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let (tx, rx) = oneshot::channel();
            pending.lock().insert(id.clone(), tx);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Olin-Reply-To", format!("bench.reply.{id}").as_str());
            let published = match js.publish_with_headers("bench.floor", headers, body).await {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            answer(published, rx, &pending, &id).await
        }
    });
    println!("JetStream floor on {addr}");
    warp::serve(route).run(addr).await;
    Ok(())
}

/// Calls waiting for their reply, by id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Bytes>>>>;

/// The "gateway"'s side of both messaging floors: one reply subscription
/// (`bench.reply.*`) routing replies to their pending calls.
async fn replies(client: &async_nats::Client) -> anyhow::Result<Pending> {
    let pending: Pending = Arc::default();
    let mut sub = client.subscribe("bench.reply.*").await?;
    let p = pending.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let id = m.subject.as_str().rsplit('.').next().unwrap_or("").to_owned();
            if let Some(tx) = p.lock().remove(&id) {
                let _ = tx.send(m.payload);
            }
        }
    });
    Ok(pending)
}

/// The HTTP answer of a call that was `sent`: its reply (200), or 503 if
/// it was not sent or no reply came within 10 s.
async fn answer(sent: bool, rx: oneshot::Receiver<Bytes>, pending: &Pending, id: &str) -> warp::http::Response<Bytes> {
    let reply = if sent { tokio::time::timeout(Duration::from_secs(10), rx).await.ok() } else { None };
    match reply {
        Some(Ok(b)) => warp::http::Response::builder().status(200).body(b).unwrap_or_default(),
        _ => {
            pending.lock().remove(id);
            warp::http::Response::builder().status(503).body(Bytes::new()).unwrap_or_default()
        }
    }
}

async fn direct_floor(addr: std::net::SocketAddr, nats_url: &str) -> anyhow::Result<()> {
    // The "worker": a queue-group subscription on its own connection, as a
    // worker process has, replying to each call's reply subject.
    let worker = async_nats::connect(nats_url).await?;
    let mut calls = worker.queue_subscribe("bench.direct", "workers".into()).await?;
    tokio::spawn(async move {
        while let Some(msg) = calls.next().await {
            if let Some(reply) = msg.reply {
                let _ = worker.publish(reply, msg.payload).await;
            }
        }
    });
    let client = async_nats::connect(nats_url).await?;
    let pending = replies(&client).await?;
    let route = warp::any().and(warp::body::bytes()).then(move |body: Bytes| {
        let (client, pending) = (client.clone(), pending.clone());
        async move {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let (tx, rx) = oneshot::channel();
            pending.lock().insert(id.clone(), tx);
            let sent = client.publish_with_reply("bench.direct", format!("bench.reply.{id}"), body).await.is_ok();
            answer(sent, rx, &pending, &id).await
        }
    });
    println!("direct floor on {addr}");
    warp::serve(route).run(addr).await;
    Ok(())
}
