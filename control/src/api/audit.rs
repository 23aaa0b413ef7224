//! `GET /v1/audit`: the audit log, read. Admins read every entry; a user
//! reads their own actions and what was done to their functions and
//! account (entries whose owner they are).

use olin_api::{AuditEntry, AuditFilter, AuditList};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use warp::reply::Response;

use super::executions::instant;
use super::{Api, Request, next_cursor, ok};
use crate::entity::audit_log;
use crate::error::ApiError;

/// `GET /v1/audit`.
#[utoipa::path(get, path = "/v1/audit",
    summary = "The audit log, newest first: everything (admins), or your actions and those on your functions and account",
    params(AuditFilter), responses((status = 200, body = AuditList)))]
pub(super) async fn list(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let q: AuditFilter = req.query()?;
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let mut find = audit_log::Entity::find().order_by_desc(audit_log::Column::Id);
    if !caller.is_admin() {
        let mine = Condition::any()
            .add(audit_log::Column::UserId.eq(&caller.user.id))
            .add(audit_log::Column::OwnerId.eq(&caller.user.id));
        find = find.filter(mine);
    }
    if let Some(actor) = &q.actor {
        find = find.filter(audit_log::Column::Actor.eq(actor));
    }
    if let Some(action) = &q.action {
        find = find.filter(audit_log::Column::Action.eq(action));
    }
    if let Some(target) = &q.target {
        find = find.filter(audit_log::Column::Target.eq(target));
    }
    if let Some(t) = instant("since", q.since.as_deref())? {
        find = find.filter(audit_log::Column::CreatedAt.gte(t));
    }
    if let Some(t) = instant("until", q.until.as_deref())? {
        find = find.filter(audit_log::Column::CreatedAt.lt(t));
    }
    if let Some(after) = &q.after {
        find = find.filter(audit_log::Column::Id.lt(after));
    }
    let rows = find.limit(q.limit).all(&api.db).await?;
    let next = next_cursor(rows.len(), q.limit, rows.last().map(|e| e.id.clone()));
    let items = rows
        .into_iter()
        .map(|r| AuditEntry {
            detail: serde_json::from_str::<serde_json::Map<_, _>>(&r.detail).unwrap_or_default().into(),
            id: r.id,
            at: r.created_at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            source: r.source,
        })
        .collect();
    ok(&AuditList { items, next })
}
