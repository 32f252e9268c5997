//! Who is asking: a user by the token of their identity, sent as `Authorization: Bearer`.

use super::{ApiError, AppState};
use actix_web::{http::header, HttpRequest};
use peerlink_actors::protocol::{ErrorCode, User};

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
