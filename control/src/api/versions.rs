//! Versions: an uploaded module, validated by `olin::validate` (the same
//! rules the worker compiles by), stored once as `modules/<sha256>.wasm`,
//! numbered per function.

use bytes::Bytes;
use olin_api::{Abi, Version, VersionList};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;
use warp::reply::Response;

use super::{Api, Request, audit_fn, created, new_id, ok, owned_from};
use crate::entity::versions;
use crate::error::{ApiError, Code};

fn version_json(v: versions::Model) -> Version {
    Version {
        imports: serde_json::from_str(&v.imports).unwrap_or_default(),
        abi: Abi::from_stored(&v.abi),
        id: v.id,
        number: v.number,
        sha256: v.sha256,
        size_bytes: v.size_bytes,
        created_at: v.created_at,
    }
}

/// The module bytes of an upload: the raw body (`application/wasm` or
/// `application/octet-stream`), or the `module` part of a multipart form.
async fn module_bytes(req: &Request) -> Result<Bytes, ApiError> {
    let content_type = req.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/wasm");
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/wasm" | "application/octet-stream" => Ok(req.body.clone()),
        "multipart/form-data" => multipart_part(content_type, req.body.clone(), "module").await,
        other => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("upload the module as application/wasm or multipart/form-data (field `module`), not {other}"),
        )),
    }
}

/// The body of form field `field` in a `multipart/form-data` body, parsed
/// by `multer` (the body is already read, within the upload cap).
async fn multipart_part(content_type: &str, body: Bytes, field: &str) -> Result<Bytes, ApiError> {
    let bad = |e: multer::Error| ApiError::bad_request(format!("the multipart form is malformed: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Some(part) = form.next_field().await.map_err(bad)? {
        if part.name() == Some(field) {
            return part.bytes().await.map_err(bad);
        }
    }
    Err(ApiError::bad_request(format!("the multipart form has no `{field}` field")))
}

/// `POST /v1/functions/{name}/versions`: upload, validate, store, record.
#[utoipa::path(post, path = "/v1/functions/{name}/versions",
    summary = "Upload a module (application/wasm, or multipart field `module`); validated, stored by sha256",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Version)))]
pub(super) async fn upload(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let wasm = module_bytes(&req).await?;
    if wasm.len() as u64 > api.max_module_bytes {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!("modules may be at most {} bytes", api.max_module_bytes),
        ));
    }
    let max_pages = api.max_memory_pages;
    let check = wasm.clone();
    let info = tokio::task::spawn_blocking(move || olin::validate::validate(&check, max_pages))
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let sha256 = olin_module_store::put_module(api.store.as_ref(), wasm.clone())
        .await
        .map_err(|e| ApiError::unavailable("the module store", &e))?;
    let last = versions::Entity::find()
        .filter(versions::Column::FunctionId.eq(&f.id))
        .order_by_desc(versions::Column::Number)
        .limit(1)
        .one(&api.db)
        .await?;
    let row = versions::ActiveModel {
        id: Set(new_id()),
        function_id: Set(f.id.clone()),
        number: Set(last.map_or(1, |v| v.number + 1)),
        sha256: Set(sha256),
        size_bytes: Set(i64::try_from(wasm.len()).unwrap_or(i64::MAX)),
        abi: Set(if info.abi == olin::Abi::WasiP1 { Abi::WasiP1 } else { Abi::Olin }.as_str().to_owned()),
        imports: Set(serde_json::to_string(&info.imports).unwrap_or_else(|_| "[]".to_owned())),
        created_by: Set(Some(caller.user.id.clone())),
        ..Default::default()
    };
    let v = row.insert(&api.db).await.map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::conflict("another upload to this function finished first; retry")
        }
        _ => e.into(),
    })?;
    audit_fn(api, &req, &caller, &f, "version_uploaded", json!({"version": v.number, "sha256": v.sha256})).await;
    created(&version_json(v))
}

/// `GET /v1/functions/{name}/versions`: newest first.
#[utoipa::path(get, path = "/v1/functions/{name}/versions", summary = "List versions, newest first",
    responses((status = 200, body = VersionList)))]
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let rows = versions::Entity::find()
        .filter(versions::Column::FunctionId.eq(&f.id))
        .order_by_desc(versions::Column::Number)
        .all(&api.db)
        .await?;
    ok(&VersionList::all(rows.into_iter().map(version_json).collect()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn multipart_field_is_found() {
        let body = Bytes::from_static(b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"module\"; filename=\"a.wasm\"\r\nContent-Type: application/wasm\r\n\r\n\0asm\x01\0\0\0\r\n--XyZ--\r\n");
        let ct = "multipart/form-data; boundary=XyZ";
        let got = multipart_part(ct, body.clone(), "module").await.unwrap();
        assert_eq!(&got[..], b"\0asm\x01\0\0\0");
        assert!(multipart_part(ct, body.clone(), "other").await.is_err());
        assert!(multipart_part("multipart/form-data", body.clone(), "module").await.is_err());
        // A form cut off before its closing boundary is refused, not read as a part.
        let cut = body.slice(..body.len() - 12);
        assert!(multipart_part(ct, cut, "module").await.is_err());
    }
}
