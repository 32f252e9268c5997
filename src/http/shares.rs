//! Share links: `POST /api/shares` makes one for a complete upload, `GET /s/<token>`
//! downloads it (with `Range`, an `ETag` that is the file's SHA-256 and a safe
//! `Content-Disposition`), `DELETE /api/shares/<token>` revokes it. A link that expired,
//! was revoked or is used up answers 410.

use super::auth::bearer_user;
use super::{ApiError, AppState};
use crate::token;
use actix_files::NamedFile;
use actix_web::http::header::{
    self, ContentDisposition, DispositionParam, DispositionType, ExtendedValue, HeaderValue,
};
use actix_web::{web, HttpRequest, HttpResponse};
use peerlink_actors::now_ms;
use peerlink_actors::protocol::{format_time, ErrorCode};
use serde::Deserialize;

/// Longest a link may live: 30 days.
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
const DEFAULT_TTL_SECS: u64 = 24 * 3600;

#[derive(Deserialize)]
pub struct NewShare {
    upload: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    max_downloads: Option<u64>,
}

fn gone(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, message).with_status(410)
}

/// `POST /api/shares {"upload":"<id>","ttl_secs":86400,"max_downloads":10}`.
pub async fn create(
    req: HttpRequest,
    body: web::Json<NewShare>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = bearer_user(&req, &state).await?;
    super::auth::charge_creation(&state, &user, "share links")?;
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("ttl_secs must be 1-{MAX_TTL_SECS}"),
        ));
    }
    if body.max_downloads == Some(0) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "max_downloads must be at least 1 (or left out for no limit)",
        ));
    }
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such upload of yours");
    let id = uuid::Uuid::parse_str(&body.upload).map_err(|_| not_found())?;
    let upload = state
        .store
        .find_upload(id)
        .await?
        .filter(|u| u.owner == user.id)
        .ok_or_else(not_found)?;
    if upload.sha256.is_none() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the upload is not complete yet",
        ));
    }
    let secret = token::generate();
    let expires_ms = now_ms() + i64::try_from(ttl * 1000).unwrap_or(i64::MAX);
    state
        .store
        .create_share(
            token::hash(&secret),
            upload.id,
            user.id,
            expires_ms,
            body.max_downloads,
        )
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "token": secret,
        "url": format!("/s/{secret}"),
        "expires_at": format_time(expires_ms),
        "max_downloads": body.max_downloads,
    })))
}

/// `GET /s/<token>`: the file, streamed from disk.
pub async fn download(
    req: HttpRequest,
    secret: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let hash = token::hash(&secret);
    let share = state
        .store
        .find_share(hash.clone())
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such link"))?;
    if let Some(reason) = share.gone_because(now_ms()) {
        return Err(gone(reason));
    }
    let upload = state
        .store
        .find_upload(share.upload)
        .await?
        .ok_or_else(|| gone("the file was deleted"))?;
    let sha256 = upload
        .sha256
        .clone()
        .ok_or_else(|| gone("the file is not complete"))?;
    // A download that starts at the first byte counts; a Range that resumes one does not.
    let from_start = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|range| range.trim().starts_with("bytes=0-"));
    if from_start && !state.store.count_download(hash).await? {
        return Err(gone("the link has been used up"));
    }
    let path = state.blobs.path(upload.id);
    let file = web::block(move || {
        std::fs::File::open(&path).and_then(|f| NamedFile::from_file(f, "download"))
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot read the file: {e}")))?
    .map_err(|_| gone("the file's bytes are gone"))?;
    let mut response = file
        .use_etag(false)
        .use_last_modified(false)
        .set_content_disposition(disposition(&upload.name))
        .into_response(&req);
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(mime) = HeaderValue::from_str(&upload.mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// RFC 6266: an ASCII fallback name and the exact name as `filename*` (UTF-8), always as
/// an attachment so that a browser never renders an uploaded file as a page.
fn disposition(name: &str) -> ContentDisposition {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(fallback),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    }
}

/// `DELETE /api/shares/<token>`: only the link's maker may revoke it.
pub async fn revoke(
    req: HttpRequest,
    secret: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = bearer_user(&req, &state).await?;
    if state
        .store
        .revoke_share(token::hash(&secret), user.id)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such link of yours"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_carry_a_safe_fallback_and_the_exact_name() {
        let value = disposition("naïve \"plan\"; rm -rf.pdf").to_string();
        assert!(value.starts_with("attachment"), "{value}");
        assert!(
            value.contains("filename=\"na_ve _plan__ rm -rf.pdf\""),
            "{value}"
        );
        assert!(
            value.contains("filename*=UTF-8''na%C3%AFve%20%22plan%22%3B%20rm%20%2Drf.pdf"),
            "{value}"
        );
    }
}
