//! Deployments: which version (or two, split by percentage during a canary)
//! serves a function. Deploying writes the row, publishes the function's
//! `RouteRecord` to `OLIN_ROUTES` and asks workers to prewarm the module;
//! rollback re-points to an earlier version in one call. The history is
//! every deployment row, newest first.

use olin_api::{Deployment, DeploymentKind, DeploymentList, NewDeployment, Rollback};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::json;
use warp::reply::Response;

use super::{Api, Request, audit_fn, created, new_id, ok, owned_from};
use crate::entity::{deployments, function_env, functions, invoke_keys, versions};
use crate::error::ApiError;
use olin_proto::v1::{Abi, EnvVar, Limits, RouteRecord, RouteTarget, Visibility};

async fn version_numbered(api: &Api, function_id: &str, number: i32) -> Result<versions::Model, ApiError> {
    versions::Entity::find()
        .filter(versions::Column::FunctionId.eq(function_id))
        .filter(versions::Column::Number.eq(number))
        .one(&api.db)
        .await?
        .ok_or_else(|| {
            // 409: the function exists; the request conflicts with what it holds.
            ApiError::conflict(format!("this function has no version {number}; upload one first"))
        })
}

fn deployment_json(d: &deployments::Model, version: i32, canary_version: Option<i32>) -> Deployment {
    Deployment {
        id: d.id.clone(),
        version,
        canary_version,
        canary_percent: d.canary_percent,
        active: d.active,
        kind: DeploymentKind::from_stored(&d.kind),
        created_at: d.created_at,
    }
}

/// Makes `new` the function's one active deployment (in one transaction),
/// then publishes the route and asks workers to prewarm.
async fn activate(
    api: &Api,
    f: &functions::Model,
    user_id: &str,
    kind: DeploymentKind,
    version: &versions::Model,
    canary: Option<(&versions::Model, i32)>,
) -> Result<deployments::Model, ApiError> {
    let txn = api.db.begin().await?;
    deployments::Entity::update_many()
        .col_expr(deployments::Column::Active, sea_orm::sea_query::Expr::value(false))
        .filter(deployments::Column::FunctionId.eq(&f.id))
        .filter(deployments::Column::Active.eq(true))
        .exec(&txn)
        .await?;
    let row = deployments::ActiveModel {
        id: Set(new_id()),
        function_id: Set(f.id.clone()),
        version_id: Set(version.id.clone()),
        canary_version_id: Set(canary.map(|(v, _)| v.id.clone())),
        canary_percent: Set(canary.map_or(0, |(_, p)| p)),
        active: Set(true),
        kind: Set(kind.as_str().to_owned()),
        created_by: Set(Some(user_id.to_owned())),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let shas: Vec<&str> =
        std::iter::once(&version.sha256).chain(canary.map(|(v, _)| &v.sha256)).map(String::as_str).collect();
    futures::future::join_all(shas.into_iter().map(|sha| prewarm(api, sha))).await;
    publish_route(api, f).await?;
    Ok(row)
}

/// Asks the workers to fetch and compile module `sha`, and waits until the
/// first has it ready (at most `CONTROL_PREWARM_WAIT_MS`; at once when no
/// worker listens), so that the route published next points at a module a
/// worker runs without compiling: the deploy takes the compile, not its
/// first call. A worker that cannot load it, or none in time, only means
/// the first call loads it.
async fn prewarm(api: &Api, sha: &str) {
    use futures::StreamExt as _;
    let broadcast = |why: &str| {
        tracing::warn!(why, module = sha, "not waiting for a worker to prewarm the module");
    };
    let Ok(reply) = olin_proto::subject::warm_reply(&new_id()) else { return };
    let mut answers = match api.nats.subscribe(reply.clone()).await {
        Ok(sub) => sub,
        Err(err) => {
            broadcast(&err.to_string());
            let _ = api.nats.publish(olin_proto::subject::ctl_prewarm(), sha.to_owned().into()).await;
            return;
        }
    };
    if let Err(err) =
        api.nats.publish_with_reply(olin_proto::subject::ctl_prewarm(), reply, sha.to_owned().into()).await
    {
        broadcast(&err.to_string());
        return;
    }
    match tokio::time::timeout(api.prewarm_wait, answers.next()).await {
        // No worker listens: nothing to wait for.
        Ok(Some(m)) if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {}
        Ok(Some(m)) if &m.payload[..] == b"ok" => tracing::debug!(module = sha, "a worker has the module ready"),
        Ok(Some(m)) => {
            tracing::warn!(module = sha, answer = %String::from_utf8_lossy(&m.payload), "prewarm failed on a worker");
        }
        Ok(None) => {}
        Err(_) => tracing::warn!(module = sha, wait = ?api.prewarm_wait, "no worker had the module ready in time"),
    }
    let _ = answers.unsubscribe().await;
}

/// Rebuilds function `f`'s `RouteRecord` from the database and publishes it
/// (or removes the route when nothing is deployed). Called after every
/// change that a route carries: deploys, keys, environment, limits.
pub(crate) async fn publish_route(api: &Api, f: &functions::Model) -> Result<(), ApiError> {
    let refusal = crate::quota::refusal_of(&api.db, &f.owner_id).await?;
    publish_route_with(api, f, refusal).await
}

/// [`publish_route`] with the owner's refusal already known (one lookup
/// for all of a user's functions).
pub(crate) async fn publish_route_with(
    api: &Api,
    f: &functions::Model,
    refusal: Option<olin_proto::v1::Refusal>,
) -> Result<(), ApiError> {
    let Some(record) = route_record(&api.db, api.secrets.as_ref(), &api.call_limits, f, refusal).await? else {
        return match api.routes.delete(&f.name).await {
            Ok(()) => Ok(()),
            Err(e) => Err(ApiError::unavailable("the route table (NATS)", &e)),
        };
    };
    olin_nats::topology::put_route(&api.routes, &record)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::unavailable("the route table (NATS)", &e))
}

/// Publishes the route of every deployed function the route bucket lacks
/// (a fresh or rebuilt NATS, the `olinctl dev` restart); returns how many.
/// Routes present are left alone: they were written by a deploy.
///
/// # Errors
/// A database or NATS failure.
pub(crate) async fn restore_routes(api: &Api) -> Result<usize, ApiError> {
    let active: Vec<String> = deployments::Entity::find()
        .filter(deployments::Column::Active.eq(true))
        .all(&api.db)
        .await?
        .into_iter()
        .map(|d| d.function_id)
        .collect();
    let mut restored = 0;
    // Each owner's refusal is looked up once, whatever their number of functions.
    let mut refusals = std::collections::HashMap::new();
    for chunk in active.chunks(500) {
        let fs = functions::Entity::find().filter(functions::Column::Id.is_in(chunk.to_vec())).all(&api.db).await?;
        for f in fs {
            let present =
                api.routes.get(&f.name).await.map_err(|e| ApiError::unavailable("the route table (NATS)", &e))?;
            if present.is_none() {
                let refusal = match refusals.get(&f.owner_id) {
                    Some(r) => Clone::clone(r),
                    None => {
                        let r = crate::quota::refusal_of(&api.db, &f.owner_id).await?;
                        refusals.insert(f.owner_id.clone(), r.clone());
                        r
                    }
                };
                publish_route_with(api, &f, refusal).await?;
                restored += 1;
            }
        }
    }
    Ok(restored)
}

/// One environment value as a route carries it: a secret stays sealed (one
/// stored in clear before keys were configured is sealed on the way out).
fn route_env(
    ring: Option<&olin_proto::sealed::Keyring>,
    function: &str,
    e: function_env::Model,
) -> Result<EnvVar, ApiError> {
    match (e.secret, e.key_id, ring) {
        (true, Some(key_id), _) => Ok(EnvVar { name: e.name, value: e.value, key_id }),
        (true, None, Some(ring)) => {
            let (key_id, value) = ring
                .seal(function, &e.name, &e.value)
                .map_err(|err| ApiError::unavailable("sealing a secret", &err))?;
            Ok(EnvVar { name: e.name, value, key_id })
        }
        _ => Ok(EnvVar::plain(e.name, e.value)),
    }
}

/// The route of `f` as the gateway and workers need it, if it is deployed,
/// with its owner's `refusal` (a spent quota).
pub(crate) async fn route_record(
    db: &impl ConnectionTrait,
    ring: Option<&olin_proto::sealed::Keyring>,
    call_limits: &crate::quota::CallLimitMaxima,
    f: &functions::Model,
    refusal: Option<olin_proto::v1::Refusal>,
) -> Result<Option<RouteRecord>, ApiError> {
    let Some(d) = deployments::Entity::find()
        .filter(deployments::Column::FunctionId.eq(&f.id))
        .filter(deployments::Column::Active.eq(true))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let main = versions::Entity::find_by_id(d.version_id.clone()).one(db).await?;
    let Some(main) = main else { return Ok(None) };
    let canary = match &d.canary_version_id {
        Some(id) => versions::Entity::find_by_id(id.clone()).one(db).await?,
        None => None,
    };
    let mut targets = vec![RouteTarget {
        module_sha256: main.sha256.clone(),
        weight: u32::try_from(100 - d.canary_percent).unwrap_or(100),
        version_id: main.id.clone(),
    }];
    if let Some(c) = &canary {
        targets.push(RouteTarget {
            module_sha256: c.sha256.clone(),
            weight: u32::try_from(d.canary_percent).unwrap_or(0),
            version_id: c.id.clone(),
        });
    }
    let env = function_env::Entity::find()
        .filter(function_env::Column::FunctionId.eq(&f.id))
        .order_by_asc(function_env::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|e| route_env(ring, &f.name, e))
        .collect::<Result<_, _>>()?;
    let keys = invoke_keys::Entity::find()
        .filter(invoke_keys::Column::FunctionId.eq(&f.id))
        .filter(invoke_keys::Column::RevokedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|k| k.key_hash)
        .collect();
    let as_u64 = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    Ok(Some(RouteRecord {
        function: f.name.clone(),
        deployment_id: d.id.clone(),
        targets,
        abi: if main.abi == "wasi_p1" { Abi::WasiP1 } else { Abi::Olin } as i32,
        limits: Some(Limits {
            fuel: as_u64(f.fuel),
            memory_bytes: as_u64(f.memory_bytes),
            wall_ms: as_u64(f.wall_ms),
            max_output_bytes: as_u64(f.max_output_bytes),
            host_budget_bytes: as_u64(f.host_budget_bytes),
        }),
        env,
        visibility: if f.visibility == "private" { Visibility::Private } else { Visibility::Public } as i32,
        invoke_key_sha256: keys,
        updated_unix_ms: olin_proto::unix_ms(),
        egress_allow: serde_json::from_str(&f.egress_allow).unwrap_or_default(),
        async_max_attempts: f.async_max_attempts.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        rate_limit: call_limits.rate(f),
        max_concurrency: call_limits.concurrency(f),
        refusal,
    }))
}

/// `POST /v1/functions/{name}/deployments`: deploy a version (optionally
/// with a canary share for a second one).
#[utoipa::path(post, path = "/v1/functions/{name}/deployments",
    summary = "Deploy a version, optionally with a canary share for a second",
    request_body = NewDeployment, responses((status = 201, body = Deployment)))]
pub(super) async fn create(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let new: NewDeployment = req.json()?;
    let version = version_numbered(api, &f.id, new.version).await?;
    let canary = match &new.canary {
        Some(c) => {
            if !(1..=99).contains(&c.percent) {
                return Err(ApiError::unprocessable("canary.percent must be between 1 and 99"));
            }
            if c.version == new.version {
                return Err(ApiError::unprocessable("the canary must be another version"));
            }
            Some((version_numbered(api, &f.id, c.version).await?, c.percent))
        }
        None => None,
    };
    let d = activate(api, &f, &caller.user.id, DeploymentKind::Deploy, &version, canary.as_ref().map(|(v, p)| (v, *p)))
        .await?;
    audit_fn(
        api,
        &req,
        &caller,
        &f,
        "deploy",
        json!({"deployment": d.id, "version": version.number, "canary": new.canary}),
    )
    .await;
    created(&deployment_json(&d, version.number, canary.map(|(v, _)| v.number)))
}

/// `GET /v1/functions/{name}/deployments`: the history, newest first.
#[utoipa::path(get, path = "/v1/functions/{name}/deployments", summary = "Deployment history, newest first",
    responses((status = 200, body = DeploymentList)))]
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let rows = deployments::Entity::find()
        .filter(deployments::Column::FunctionId.eq(&f.id))
        .order_by_desc(deployments::Column::CreatedAt)
        .order_by_desc(deployments::Column::Id)
        .all(&api.db)
        .await?;
    let numbers: std::collections::HashMap<String, i32> = versions::Entity::find()
        .filter(versions::Column::FunctionId.eq(&f.id))
        .all(&api.db)
        .await?
        .into_iter()
        .map(|v| (v.id, v.number))
        .collect();
    let items = rows
        .iter()
        .map(|d| {
            let n = numbers.get(&d.version_id).copied().unwrap_or(0);
            deployment_json(d, n, d.canary_version_id.as_ref().and_then(|c| numbers.get(c).copied()))
        })
        .collect();
    ok(&DeploymentList::all(items))
}

/// `POST /v1/functions/{name}/rollback`: back to `version`, or to the
/// version deployed before the current one.
#[utoipa::path(post, path = "/v1/functions/{name}/rollback",
    summary = "Re-point to an earlier version (default: the previous one)",
    request_body(content = Option<Rollback>), responses((status = 201, body = Deployment)))]
pub(super) async fn rollback(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let body: Rollback = if req.body.is_empty() { Rollback::default() } else { req.json()? };
    let history = deployments::Entity::find()
        .filter(deployments::Column::FunctionId.eq(&f.id))
        .order_by_desc(deployments::Column::CreatedAt)
        .order_by_desc(deployments::Column::Id)
        .all(&api.db)
        .await?;
    let current = history.iter().find(|d| d.active).ok_or_else(|| ApiError::conflict("nothing is deployed yet"))?;
    let target = match body.version {
        Some(n) => version_numbered(api, &f.id, n).await?,
        None => {
            let previous = history
                .iter()
                .find(|d| d.version_id != current.version_id && d.created_at <= current.created_at)
                .ok_or_else(|| ApiError::conflict("there is no earlier version to roll back to"))?;
            versions::Entity::find_by_id(previous.version_id.clone())
                .one(&api.db)
                .await?
                .ok_or_else(|| ApiError::conflict("the earlier version is gone"))?
        }
    };
    let d = activate(api, &f, &caller.user.id, DeploymentKind::Rollback, &target, None).await?;
    audit_fn(api, &req, &caller, &f, "rollback", json!({"deployment": d.id, "version": target.number})).await;
    created(&deployment_json(&d, target.number, None))
}
