//! Resumable uploads at `/files/`: tus 1.0.0 with the creation, creation-with-upload,
//! expiration, checksum (sha256) and termination extensions, behind a user's Bearer token.
//!
//! Bytes go to the blob store under the upload's id as they arrive; the `HashActor` keeps
//! the upload's SHA-256 as they arrive too, so a complete upload's digest is known without
//! reading the file again. A PATCH whose `Upload-Checksum` fails is cut back: the offset
//! and the digest stay where they were.
//!
//! Any node of a cluster serves any upload (the blobs are in one shared directory). A
//! PATCH writes only under a claim the database granted at the offset it named (see
//! `DbStore::claim_upload`), renewed while it writes, so two PATCHes on two nodes never
//! both write; `HEAD` and `DELETE` wait, a bounded time, for a live claim to end, so that
//! what they tell or remove is what is stored.

use super::{tus_headers, ApiError, AppState};
use crate::storage::uploads::{Claim, QuotaCheck, Upload};
use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use futures_util::StreamExt;
use peerlink_actors::hash::{hex, Sha256State};
use peerlink_actors::protocol::{ErrorCode, ProtocolError, User};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,expiration,checksum,termination";
const OFFSET_CONTENT_TYPE: &str = "application/offset+octet-stream";
/// Bytes collected from a PATCH body before they are written and hashed together.
const WRITE_BATCH: usize = 1024 * 1024;
/// tus's status for a failed `Upload-Checksum`.
const CHECKSUM_MISMATCH: u16 = 460;
/// How long `HEAD` and `DELETE` wait for a `PATCH` of the same upload to end. An
/// interrupted `PATCH` needs a few milliseconds to store what it got.
const WRITER_PATIENCE: Duration = Duration::from_secs(5);
/// How often they look again meanwhile.
const WRITER_POLL: Duration = Duration::from_millis(15);
/// A writer's claim lasts this long unless renewed: a node that dies mid-`PATCH` holds
/// its upload no longer than this.
const CLAIM_LEASE: Duration = Duration::from_secs(20);
/// A writer renews its claim this often while its body arrives.
const CLAIM_RENEWAL: Duration = Duration::from_secs(4);

/// An error of the tus routes: the status tus names, and the usual JSON body.
#[derive(Debug)]
pub struct TusError {
    status: u16,
    code: ErrorCode,
    message: String,
    /// Sent as `Retry-After` (seconds, rounded up).
    retry_after_ms: Option<u64>,
}

fn tus_error(status: u16, code: ErrorCode, message: impl Into<String>) -> TusError {
    TusError {
        status,
        code,
        message: message.into(),
        retry_after_ms: None,
    }
}

impl fmt::Display for TusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl ResponseError for TusError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(("Tus-Resumable", TUS_VERSION));
        if self.status == 412 {
            response.insert_header(("Tus-Version", TUS_VERSION));
        }
        if let Some(ms) = self.retry_after_ms {
            response.insert_header((header::RETRY_AFTER, ms.div_ceil(1000).to_string()));
        }
        response.json(serde_json::json!({ "error": self.code, "message": self.message }))
    }
}

impl From<ApiError> for TusError {
    fn from(e: ApiError) -> Self {
        TusError {
            status: e.status.unwrap_or(e.code.http_status()),
            code: e.code,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

impl From<peerlink_actors::store::StoreError> for TusError {
    #[track_caller]
    fn from(e: peerlink_actors::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

fn io_error(e: impl fmt::Display) -> TusError {
    log::error!("upload storage failed: {e}");
    tus_error(500, ErrorCode::Internal, "the upload could not be stored")
}

fn tus_response(status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response
        .insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

fn header_str<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Every tus request but `OPTIONS` names the protocol version it speaks.
fn check_version(req: &HttpRequest) -> Result<(), TusError> {
    match header_str(req, "Tus-Resumable") {
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(tus_error(
            412,
            ErrorCode::BadRequest,
            format!("tus version {other:?} is not supported; use {TUS_VERSION}"),
        )),
        None => Err(tus_error(
            412,
            ErrorCode::BadRequest,
            "send Tus-Resumable: 1.0.0",
        )),
    }
}

async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<User, TusError> {
    Ok(super::auth::bearer_user(req, state).await?)
}

fn parse_u64(req: &HttpRequest, name: &str) -> Result<Option<u64>, TusError> {
    header_str(req, name)
        .map(|v| tus_headers::parse_u64(name, v).map_err(bad_header))
        .transpose()
}

/// `Upload-Checksum`, when the request has one.
fn parse_checksum(req: &HttpRequest) -> Result<Option<[u8; 32]>, TusError> {
    header_str(req, "Upload-Checksum")
        .map(|raw| tus_headers::parse_checksum(raw).map_err(bad_header))
        .transpose()
}

/// A header that `tus_headers` refused: tus answers 400, whatever the error's code.
fn bad_header(e: ProtocolError) -> TusError {
    tus_error(400, e.code, e.message)
}

/// Microseconds since the Unix epoch, UTC: when a request began (see `settle_upload`).
fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn http_date(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// `OPTIONS /files/`: what this server supports.
pub async fn options(state: web::Data<AppState>) -> HttpResponse {
    tus_response(StatusCode::NO_CONTENT)
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", EXTENSIONS))
        .insert_header(("Tus-Max-Size", state.node.limits.max_file_size.to_string()))
        .insert_header(("Tus-Checksum-Algorithm", "sha256"))
        .finish()
}

/// `POST /files/`: a new upload, with its first bytes if the body carries some.
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TusError> {
    check_version(&req)?;
    let user = authenticate(&req, &state).await?;
    super::auth::charge_creation(&state, &user, "uploads")?;
    if header_str(&req, "Upload-Defer-Length").is_some() {
        return Err(tus_error(
            400,
            ErrorCode::BadRequest,
            "Upload-Defer-Length is not supported; send Upload-Length",
        ));
    }
    let length = parse_u64(&req, "Upload-Length")?
        .ok_or_else(|| tus_error(400, ErrorCode::BadRequest, "send Upload-Length"))?;
    let max = state.node.limits.max_file_size;
    if length > max {
        return Err(tus_error(
            413,
            ErrorCode::TooLarge,
            format!("the upload is {length} bytes; at most {max} are accepted"),
        ));
    }
    let metadata = header_str(&req, "Upload-Metadata")
        .unwrap_or_default()
        .to_owned();
    let (name, mime) = tus_headers::parse_metadata(&metadata).map_err(bad_header)?;
    let upload = Upload {
        id: Uuid::new_v4(),
        owner: user.id,
        name,
        mime,
        metadata,
        length,
        received: 0,
        digest: Sha256State::new().to_bytes(),
        sha256: (length == 0).then(|| hex(&Sha256State::new().finalize())),
        expires_ms: peerlink_actors::now_ms()
            + i64::try_from(state.upload_ttl.as_millis()).unwrap_or(i64::MAX),
        writing: false,
    };
    state.volume.room_for_upload(length).map_err(disk_full)?;
    let blobs = state.blobs.clone();
    let id = upload.id;
    web::block(move || blobs.create(id))
        .await
        .map_err(io_error)?
        .map_err(io_error)?;
    let quota = state.upload_quota;
    if let QuotaCheck::OverQuota { used } = state.store.create_upload(upload.clone(), quota).await?
    {
        let blobs = state.blobs.clone();
        let _ = web::block(move || blobs.remove(id)).await;
        return Err(tus_error(
            413,
            ErrorCode::TooLarge,
            format!(
                "your uploads take {used} bytes; with these {length} they would pass your quota of {quota} bytes; delete some (DELETE /files/<id>) first"
            ),
        ));
    }
    let mut received = 0;
    if header_str(&req, header::CONTENT_TYPE.as_str()) == Some(OFFSET_CONTENT_TYPE) {
        let checksum = parse_checksum(&req)?;
        received = append(&state, now_us(), &upload, body, checksum).await?;
    }
    Ok(tus_response(StatusCode::CREATED)
        .insert_header((header::LOCATION, format!("/files/{id}")))
        .insert_header(("Upload-Offset", received.to_string()))
        .insert_header(("Upload-Expires", http_date(upload.expires_ms)))
        .finish())
}

/// The upload `id` if it exists, is this user's and has not expired.
async fn owned_upload(state: &AppState, user: &User, id: &str) -> Result<Upload, TusError> {
    let id = parse_id(id)?;
    owned(state.store.find_upload(id).await?, user)
}

fn parse_id(id: &str) -> Result<Uuid, TusError> {
    Uuid::parse_str(id).map_err(|_| no_such_upload())
}

fn no_such_upload() -> TusError {
    tus_error(404, ErrorCode::NotFound, "no such upload")
}

/// What was found, if it is `user`'s and has not expired.
fn owned(found: Option<Upload>, user: &User) -> Result<Upload, TusError> {
    let upload = found
        .filter(|u| u.owner == user.id)
        .ok_or_else(no_such_upload)?;
    if upload.sha256.is_none() && upload.expires_ms < peerlink_actors::now_ms() {
        return Err(tus_error(
            410,
            ErrorCode::NotFound,
            "the upload expired before it was complete",
        ));
    }
    Ok(upload)
}

/// `HEAD /files/<id>`: how far the upload is.
pub async fn head(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TusError> {
    check_version(&req)?;
    let user = authenticate(&req, &state).await?;
    // Tell the offset the bytes really have: a PATCH that was just interrupted, on this
    // node or another, is still storing its last piece, so wait for it (a live PATCH past
    // the patience is reported as far as it has committed).
    let upload = settled_upload(&state, &user, &id).await?;
    let mut response = tus_response(StatusCode::OK);
    response
        .insert_header(("Upload-Offset", upload.received.to_string()))
        .insert_header(("Upload-Length", upload.length.to_string()));
    if !upload.metadata.is_empty() {
        response.insert_header(("Upload-Metadata", upload.metadata.clone()));
    }
    if upload.sha256.is_none() {
        response.insert_header(("Upload-Expires", http_date(upload.expires_ms)));
    }
    Ok(response.finish())
}

/// `PATCH /files/<id>`: more bytes, at the offset the upload has reached.
pub async fn patch(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TusError> {
    check_version(&req)?;
    let began_us = now_us();
    let user = authenticate(&req, &state).await?;
    if header_str(&req, header::CONTENT_TYPE.as_str()) != Some(OFFSET_CONTENT_TYPE) {
        return Err(tus_error(
            415,
            ErrorCode::BadRequest,
            format!("send the bytes as Content-Type: {OFFSET_CONTENT_TYPE}"),
        ));
    }
    let offset = parse_u64(&req, "Upload-Offset")?
        .ok_or_else(|| tus_error(400, ErrorCode::BadRequest, "send Upload-Offset"))?;
    let checksum = parse_checksum(&req)?;
    let upload = owned_upload(&state, &user, &id).await?;
    if offset != upload.received {
        return Err(offset_conflict(offset, upload.received));
    }
    let received = append(&state, began_us, &upload, body, checksum).await?;
    let mut response = tus_response(StatusCode::NO_CONTENT);
    response.insert_header(("Upload-Offset", received.to_string()));
    if received < upload.length {
        response.insert_header(("Upload-Expires", http_date(upload.expires_ms)));
    }
    Ok(response.finish())
}

/// `DELETE /files/<id>`: the upload and its bytes go.
pub async fn terminate(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TusError> {
    check_version(&req)?;
    let user = authenticate(&req, &state).await?;
    // A PATCH that was just interrupted is still storing what it got: let it finish.
    let upload = settled_upload(&state, &user, &id).await?;
    if upload.writing {
        return Err(busy());
    }
    state.store.delete_upload(upload.id).await?;
    let blobs = state.blobs.clone();
    let _ = web::block(move || blobs.remove(upload.id)).await;
    Ok(tus_response(StatusCode::NO_CONTENT).finish())
}

/// The upload once no request holds a claim to write it, or as far as it has committed
/// if one still does after [`WRITER_PATIENCE`].
///
/// A PATCH the client dropped may not have claimed the upload yet: the upload is settled
/// first (the moment is recorded), so that such a PATCH can no longer write, and what is
/// told stays true.
async fn settled_upload(state: &AppState, user: &User, id: &str) -> Result<Upload, TusError> {
    let deadline = tokio::time::Instant::now() + WRITER_PATIENCE;
    loop {
        let upload = owned_upload(state, user, id).await?;
        if tokio::time::Instant::now() >= deadline {
            return Ok(upload);
        }
        if !upload.writing && state.store.settle_upload(upload.id, now_us()).await? {
            return owned_upload(state, user, id).await;
        }
        tokio::time::sleep(WRITER_POLL).await;
    }
}

/// `GET /api/uploads/<id>`: the upload as JSON, with its SHA-256 once complete.
pub async fn describe(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TusError> {
    let user = authenticate(&req, &state).await?;
    let upload = owned_upload(&state, &user, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": upload.id,
        "name": upload.name,
        "mime": upload.mime,
        "size": upload.length,
        "received": upload.received,
        "complete": upload.sha256.is_some(),
        "sha256": upload.sha256,
        "expires_at": upload.sha256.is_none().then(|| peerlink_actors::protocol::format_time(upload.expires_ms)),
    })))
}

/// 507: the upload would take the disk space the node keeps for chat.
fn disk_full(e: crate::storage::disk::DiskError) -> TusError {
    tus_error(507, ErrorCode::Unavailable, e.to_string())
}

fn offset_conflict(offset: u64, received: u64) -> TusError {
    tus_error(
        409,
        ErrorCode::Conflict,
        format!("Upload-Offset is {offset}, but the upload is at {received}"),
    )
}

fn busy() -> TusError {
    tus_error(
        409,
        ErrorCode::Conflict,
        "another request is writing this upload; try again when it ends",
    )
}

/// Appends a request body at the upload's offset, hashing as it goes. Returns the new
/// offset. With a checksum, the bytes count only if the body's digest matches.
async fn append(
    state: &AppState,
    began_us: i64,
    upload: &Upload,
    mut body: web::Payload,
    checksum: Option<[u8; 32]>,
) -> Result<u64, TusError> {
    let writer = WriterClaim::take(state, upload, began_us).await?;
    let start = upload.received;
    let mut renewals =
        tokio::time::interval_at(tokio::time::Instant::now() + CLAIM_RENEWAL, CLAIM_RENEWAL);
    let mut digest = Sha256State::from_bytes(&upload.digest).map_err(io_error)?;
    let mut body_digest = checksum.map(|_| Sha256State::new());
    let mut received = start;
    let mut pending: Vec<Bytes> = Vec::new();
    let mut pending_len = 0usize;
    let mut interrupted = false;
    loop {
        let next = tokio::select! {
            next = body.next() => next,
            _ = renewals.tick() => {
                writer.renew(state).await?;
                continue;
            }
        };
        let done = match next {
            Some(Ok(chunk)) => {
                if received + (pending_len + chunk.len()) as u64 > upload.length {
                    truncate(state, upload.id, start).await;
                    return Err(tus_error(
                        400,
                        ErrorCode::BadRequest,
                        format!("the body goes past Upload-Length ({} bytes)", upload.length),
                    ));
                }
                pending_len += chunk.len();
                pending.push(chunk);
                false
            }
            Some(Err(e)) => {
                log::info!("upload {}: the body ended early: {e}", upload.id);
                interrupted = true;
                true
            }
            None => true,
        };
        if pending_len >= WRITE_BATCH || (done && pending_len > 0) {
            if let Err(full) = state.volume.room_for_upload(pending_len as u64) {
                // As for an interrupted PATCH: what was stored stays, unless a checksum
                // covers the whole body.
                if checksum.is_some() {
                    truncate(state, upload.id, start).await;
                } else {
                    store_progress(state, &writer, upload, received, &digest).await?;
                }
                return Err(disk_full(full));
            }
            let chunks = std::mem::take(&mut pending);
            let at = received;
            received += pending_len as u64;
            pending_len = 0;
            (digest, body_digest) =
                write_and_hash(state, upload.id, at, chunks, digest, body_digest).await?;
        }
        if done {
            break;
        }
    }
    if let (Some(expected), Some(got)) = (checksum, &body_digest) {
        if interrupted || got.finalize() != expected {
            truncate(state, upload.id, start).await;
            let message = if interrupted {
                "the body ended before its checksum could be checked"
            } else {
                "Upload-Checksum does not match the body"
            };
            return Err(tus_error(CHECKSUM_MISMATCH, ErrorCode::BadRequest, message));
        }
    }
    store_progress(state, &writer, upload, received, &digest).await?;
    Ok(received)
}

/// A request's claim to write one upload, granted by the database; let go when dropped
/// (however the request ends), and kept alive by [`WriterClaim::renew`].
struct WriterClaim {
    store: std::sync::Arc<crate::storage::DbStore>,
    upload: Uuid,
    writer: String,
}

impl WriterClaim {
    async fn take(
        state: &AppState,
        upload: &Upload,
        began_us: i64,
    ) -> Result<WriterClaim, TusError> {
        let writer = format!("{}/{}", state.node.node_id, Uuid::new_v4());
        let claim = state
            .store
            .claim_upload(
                upload.id,
                upload.received,
                began_us,
                writer.clone(),
                CLAIM_LEASE,
            )
            .await?;
        match claim {
            Claim::Granted => Ok(WriterClaim {
                store: state.store.clone(),
                upload: upload.id,
                writer,
            }),
            Claim::Busy => Err(busy()),
            Claim::Overtaken => Err(tus_error(
                409,
                ErrorCode::Conflict,
                "the upload's offset was asked for (HEAD) after this request began; send it again from that offset",
            )),
            Claim::OffsetIs(received) => Err(offset_conflict(upload.received, received)),
            Claim::Gone => Err(tus_error(404, ErrorCode::NotFound, "no such upload")),
        }
    }

    async fn renew(&self, state: &AppState) -> Result<(), TusError> {
        let held = state
            .store
            .renew_upload_claim(self.upload, self.writer.clone(), CLAIM_LEASE)
            .await?;
        if held {
            Ok(())
        } else {
            Err(lost_claim())
        }
    }
}

impl Drop for WriterClaim {
    fn drop(&mut self) {
        // A no-op when the progress was stored: that let go already.
        let release = self
            .store
            .release_upload_claim(self.upload, self.writer.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = release.await {
                log::warn!("could not let go of an upload: {e}; its claim runs out by itself");
            }
        });
    }
}

/// This request's claim ran out and another took the upload over: what it wrote after
/// the stored offset is not counted (the other request writes from there).
fn lost_claim() -> TusError {
    tus_error(
        409,
        ErrorCode::Conflict,
        "another request took this upload over; ask HEAD where it is",
    )
}

/// Makes the bytes up to `received` durable and records how far the upload is.
async fn store_progress(
    state: &AppState,
    writer: &WriterClaim,
    upload: &Upload,
    received: u64,
    digest: &Sha256State,
) -> Result<(), TusError> {
    let blobs = state.blobs.clone();
    let id = upload.id;
    web::block(move || blobs.sync(id))
        .await
        .map_err(io_error)?
        .map_err(io_error)?;
    let sha256 = (received == upload.length).then(|| hex(&digest.finalize()));
    let stored = state
        .store
        .update_upload(
            upload.id,
            writer.writer.clone(),
            received,
            digest.to_bytes(),
            sha256,
        )
        .await?;
    if stored {
        Ok(())
    } else {
        Err(lost_claim())
    }
}

async fn write_and_hash(
    state: &AppState,
    id: Uuid,
    at: u64,
    chunks: Vec<Bytes>,
    digest: Sha256State,
    body_digest: Option<Sha256State>,
) -> Result<(Sha256State, Option<Sha256State>), TusError> {
    let blobs = state.blobs.clone();
    let to_write = chunks.clone();
    let write = web::block(move || {
        let mut offset = at;
        for chunk in &to_write {
            blobs.write_at(id, offset, chunk)?;
            offset += chunk.len() as u64;
        }
        Ok::<_, std::io::Error>(())
    });
    let hasher = &state.node.hasher;
    let hash_upload = hasher.hash(digest, chunks.clone());
    let hash_body = async {
        match body_digest {
            Some(state) => hasher.hash(state, chunks).await.map(Some),
            None => Ok(None),
        }
    };
    // The two digests of one batch go to the hash actor together, so they share a pass.
    let (written, upload_digest, body_digest) = futures_util::join!(write, hash_upload, hash_body);
    written.map_err(io_error)?.map_err(io_error)?;
    Ok((
        upload_digest.map_err(io_error)?,
        body_digest.map_err(io_error)?,
    ))
}

async fn truncate(state: &AppState, id: Uuid, len: u64) {
    let blobs = state.blobs.clone();
    if let Ok(Err(e)) | Err(e) = web::block(move || blobs.truncate(id, len))
        .await
        .map_err(std::io::Error::other)
    {
        log::error!("upload {id}: could not cut the bytes back to {len}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
