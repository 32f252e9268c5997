//! Share links: `POST /api/shares` makes one for a complete upload, `GET /s/<token>`
//! downloads it (with `Range`, an `ETag` that is the file's SHA-256 and a safe
//! `Content-Disposition`), `DELETE /api/shares/<token>` revokes it. A link that expired,
//! was revoked or is used up answers 410.

use super::auth::bearer_user;
use super::connection::{AckProbe, Connection};
use super::{ApiError, AppState};
use crate::token;
use actix_files::NamedFile;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{
    self, ContentDisposition, DispositionParam, DispositionType, ExtendedValue, HeaderValue,
};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use peerlink_actors::now_ms;
use peerlink_actors::protocol::{format_time, ErrorCode};
use serde::Deserialize;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    // What will be sent, decided from the parsed ranges exactly as the file responder will
    // (it serves the first); `None` when it answers 400 or 416 and sends no byte.
    let served = served_range(&req, upload.length);
    if let Some((start, length)) = served {
        let counts = start == 0;
        // A link allows `max_downloads × size` bytes in all, however they are asked for.
        let budget = share
            .max_downloads
            .map(|max| max.saturating_mul(upload.length));
        // A resume often arrives before the node has noticed that the download it resumes
        // broke off, and so before that one's unsent bytes are back: give it a moment.
        let mut tries = if counts { 1 } else { RESUME_TRIES };
        while !state
            .store
            .charge_download(hash.clone(), counts, length, budget)
            .await?
        {
            tries -= 1;
            if tries == 0 {
                return Err(gone("the link has been used up"));
            }
            actix_web::rt::time::sleep(RESUME_RETRY).await;
        }
    }
    let blobs = state.blobs.clone();
    let file = web::block(move || {
        blobs
            .open(upload.id)
            .and_then(|f| NamedFile::from_file(f, "download"))
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot read the file: {e}")))?
    .map_err(|_| gone("the file's bytes are gone"))?;
    let response = if upload.length == 0 {
        // An empty file is always the whole of it: actix-files would compute the
        // Content-Range of an empty range as `0-(0-1)` (an overflow), so no Range is served.
        HttpResponse::Ok()
            .insert_header(disposition(&upload.name))
            .finish()
    } else {
        file.use_etag(false)
            .use_last_modified(false)
            .set_content_disposition(disposition(&upload.name))
            .into_response(&req)
    };
    // Bytes the client never got go back to the link's budget.
    let mut response = match served {
        Some((_, length)) if length > 0 => {
            let store = state.store.clone();
            let acks = req
                .conn_data::<Connection>()
                .and_then(Connection::ack_probe);
            response
                .map_body(|_, body| {
                    SentBytes::new(body, length, acks, move |unsent| {
                        actix_web::rt::spawn(async move {
                            if let Err(e) = store.refund_download(hash, unsent).await {
                                log::warn!("could not give back {unsent} unsent bytes: {e}");
                            }
                        });
                    })
                })
                .map_into_boxed_body()
        }
        _ => response,
    };
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

/// A resume refused for want of budget is tried again this many times, this far apart.
const RESUME_TRIES: u32 = 10;
const RESUME_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The (start, length) the file responder will send for this request's `Range`: the whole
/// file without one, the first parsed range with one, `None` when it will send nothing.
fn served_range(req: &HttpRequest, size: u64) -> Option<(u64, u64)> {
    served_range_of(
        req.headers().get(header::RANGE).map(HeaderValue::as_bytes),
        size,
    )
}

/// [`served_range`] from the raw `Range` header value (`None`: no header), for tests and
/// the fuzz target. A value that is not UTF-8 sends nothing, as the file responder does.
pub fn served_range_of(range_header: Option<&[u8]>, size: u64) -> Option<(u64, u64)> {
    let Some(range) = range_header else {
        return Some((0, size));
    };
    let range = std::str::from_utf8(range).ok()?;
    let ranges = actix_files::HttpRange::parse(range, size).ok()?;
    ranges.first().map(|range| (range.start, range.length))
}

/// What a download that broke off is assumed to have lost on its way, beyond what the
/// client's side acknowledged: bytes a client's kernel took but the client never read.
const TRANSIT_ALLOWANCE: u64 = 64 * 1024;

/// A response body that tells, when it goes before its end, how many of its bytes the
/// client did not get (by what the client's TCP acknowledged, less a small allowance).
struct SentBytes<B, F: FnOnce(u64)> {
    body: B,
    length: u64,
    yielded: u64,
    finished: bool,
    acks: Option<AckProbe>,
    on_break: Option<F>,
}

impl<B, F: FnOnce(u64)> SentBytes<B, F> {
    fn new(body: B, length: u64, acks: Option<AckProbe>, on_break: F) -> Self {
        SentBytes {
            body,
            length,
            yielded: 0,
            finished: false,
            acks,
            on_break: Some(on_break),
        }
    }
}

impl<B, F> MessageBody for SentBytes<B, F>
where
    B: MessageBody + Unpin,
    F: FnOnce(u64) + Unpin,
{
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = Pin::new(&mut this.body).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => this.yielded += bytes.len() as u64,
            Poll::Ready(None) => this.finished = true,
            _ => {}
        }
        next
    }
}

impl<B, F: FnOnce(u64)> Drop for SentBytes<B, F> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let reached = self
            .acks
            .as_ref()
            .and_then(AckProbe::acked_since)
            .unwrap_or(self.yielded)
            .min(self.yielded)
            .saturating_sub(TRANSIT_ALLOWANCE);
        let missed = self.length.saturating_sub(reached);
        if let Some(on_break) = self.on_break.take().filter(|_| missed > 0) {
            on_break(missed);
        }
    }
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
