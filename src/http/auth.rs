//! Who is asking: a user by the token of their identity, sent as `Authorization: Bearer`.

use super::{ApiError, AppState};
use actix_web::{http::header, HttpRequest};
use peerlink_actors::protocol::{ErrorCode, User};
use std::time::Instant;

/// Charges one creation (an upload, a share link) to `user`, so that no one fills the
/// database with rows: `PEERLINK_CREATIONS_PER_MINUTE`, then 429 with `Retry-After`.
pub fn charge_creation(state: &AppState, user: &User, what: &str) -> Result<(), ApiError> {
    state
        .node
        .creations
        .check(user.id, Instant::now())
        .map_err(|wait| {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            ApiError {
                retry_after_ms: Some(ms),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many new {what} in a minute; wait {} s",
                        ms.div_ceil(1000)
                    ),
                )
            }
        })
}

/// The user behind `Authorization: Bearer <token>` (a token from `welcome` or
/// `POST /api/sessions`).
pub async fn bearer_user(req: &HttpRequest, state: &AppState) -> Result<User, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send Authorization: Bearer <token>",
            )
        })?;
    Ok(state
        .node
        .store
        .authenticate(token.trim().to_owned())
        .await?)
}
