//! Deploys a module for the benchmarks, as control would: stores it in a
//! local-directory module store and publishes its route.
//!
//! `deploy <nats-url> <store-dir> <function> <module.wasm>`; the route
//! bucket gets `OLIN_JS_REPLICAS` replicas (default 1), as the services'.

use anyhow::Context as _;
use olin_nats::topology::{self, TopologyConfig};
use olin_proto::v1::RouteRecord;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, nats_url, dir, function, wasm] = args.as_slice() else {
        anyhow::bail!("usage: deploy <nats-url> <store-dir> <function> <module.wasm>");
    };
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {wasm}"))?;
    let store = olin_module_store::ModuleStoreArgs::local(std::path::Path::new(dir)).open()?;
    let sha = olin_module_store::put_module(store.as_ref(), bytes.into()).await?;
    let servers: Vec<&str> = nats_url.split(',').collect();
    let js = async_nats::jetstream::new(async_nats::connect(servers.as_slice()).await?);
    let replicas = match std::env::var("OLIN_JS_REPLICAS") {
        Ok(n) => n.parse().with_context(|| format!("OLIN_JS_REPLICAS={n:?} is not a number"))?,
        Err(_) => 1,
    };
    let routes = topology::ensure_routes(&js, &TopologyConfig { replicas, ..TopologyConfig::default() }).await?;
    topology::put_route(&routes, &RouteRecord::single(function, &sha, &uuid::Uuid::now_v7().to_string())).await?;
    println!("deployed {function} = {sha}");
    Ok(())
}
