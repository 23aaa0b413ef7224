//! Deploying without control: a module stored and its route published,
//! as control does on deploy.

use bytes::Bytes;
use olin_module_store::ModuleStoreArgs;
use olin_nats::topology;
use olin_proto::v1::RouteRecord;

use crate::test_topology;

/// Stores `wasm` in the module store and publishes a route for `function`
/// to `OLIN_ROUTES`, as control does on deploy. Returns the module's sha256.
pub async fn deploy(nats: &async_nats::Client, store: &ModuleStoreArgs, function: &str, wasm: &[u8]) -> String {
    deploy_route(nats, store, function, wasm, |_| {}).await
}

/// As [`deploy`], with the route record adjusted by `edit` (limits, env,
/// egress allow-list) before it is published.
pub async fn deploy_route(
    nats: &async_nats::Client,
    store: &ModuleStoreArgs,
    function: &str,
    wasm: &[u8],
    edit: impl FnOnce(&mut RouteRecord),
) -> String {
    let objects = store.open().expect("open module store");
    let sha256 =
        olin_module_store::put_module(objects.as_ref(), Bytes::copy_from_slice(wasm)).await.expect("store module");
    let js = async_nats::jetstream::new(nats.clone());
    // A bucket set up by the test (its replicas, say) is used as it is.
    let routes = match js.get_key_value(olin_proto::subject::KV_ROUTES).await {
        Ok(routes) => routes,
        Err(_) => topology::ensure_routes(&js, &test_topology()).await.expect("routes bucket"),
    };
    let mut record = RouteRecord::single(function, &sha256, &uuid::Uuid::now_v7().to_string());
    edit(&mut record);
    topology::put_route(&routes, &record).await.expect("publish route");
    sha256
}
