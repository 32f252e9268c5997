//! The one error type of the HTTP API: every failure answers
//! `{"error":"<code>","message":"…"}` with the status that matches the code.

use actix_web::{
    error::JsonPayloadError, error::QueryPayloadError, http::header::RETRY_AFTER, http::StatusCode,
    HttpRequest, HttpResponse, ResponseError,
};
use peerlink_actors::protocol::{ErrorCode, ProtocolError};
use peerlink_actors::store::StoreError;
use std::fmt;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// A status other than the code's usual one (410 for a link that is gone).
    pub status: Option<u16>,
    /// With `rate_limited`: sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status: None,
            retry_after_ms: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status.unwrap_or(self.code.http_status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(ms) = self.retry_after_ms {
            response.insert_header((RETRY_AFTER, ms.div_ceil(1000).to_string()));
        }
        response.json(serde_json::json!({ "error": self.code, "message": self.message }))
    }
}

impl From<ProtocolError> for ApiError {
    #[track_caller]
    fn from(e: ProtocolError) -> Self {
        ApiError {
            retry_after_ms: e.retry_after_ms,
            ..ApiError::new(e.code, e.message)
        }
    }
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(e: StoreError) -> Self {
        let location = std::panic::Location::caller();
        // A bad token or a missing row is the client's doing, and anyone can send a
        // thousand: only the database's own failures are worth a warning.
        if matches!(e, StoreError::Unavailable(_)) {
            log::warn!("store error at {location}: {e}");
        } else {
            log::debug!("store error at {location}: {e}");
        }
        match e {
            StoreError::UnknownToken => ApiError::new(
                ErrorCode::Unauthorized,
                "the token is unknown or has expired",
            ),
            StoreError::UnknownUser => ApiError::new(ErrorCode::NotFound, "there is no such user"),
            StoreError::NotFound(message) => ApiError::new(ErrorCode::NotFound, message),
            StoreError::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Unavailable(_) => ApiError::new(
                ErrorCode::Unavailable,
                "the database is unavailable; try again shortly",
            ),
            StoreError::Fenced(what) => ApiError::new(
                ErrorCode::Unavailable,
                format!("{what} moved to another node; try again"),
            ),
        }
    }
}

pub fn json_error(e: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let error = match &e {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "the JSON body is larger than {} bytes",
                    super::MAX_JSON_BODY
                ),
            )
        }
        JsonPayloadError::Payload(payload) if super::slow_bodies::is_too_slow(payload) => {
            super::slow_bodies::too_slow()
        }
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::BadRequest,
            "send the body as Content-Type: application/json",
        ),
        other => ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {other}")),
    };
    error.into()
}

pub fn query_error(e: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(ErrorCode::BadRequest, format!("invalid query string: {e}")).into()
}

/// 405 for a known path asked with a method it does not take.
pub async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let error = ApiError::new(
        ErrorCode::BadRequest,
        format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.path()
        ),
    )
    .with_status(405);
    let mut response = error.error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Gives error responses that actix-web produces itself (a wrong method, a plain GET on
/// `/ws`) the same JSON body as every other error. Responses that have a body keep it.
pub fn json_for_empty_errors<B: actix_web::body::MessageBody + 'static>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::body::BodySize;
    use actix_web::middleware::ErrorHandlerResponse;
    if !matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    ) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = serde_json::json!({ "error": code, "message": format!("{reason} ({} {})", res.request().method(), res.request().path()) });
    let (req, res) = res.into_parts();
    let mut res = res.set_body(body.to_string());
    res.headers_mut().insert(
        actix_web::http::header::CONTENT_TYPE,
        actix_web::http::header::HeaderValue::from_static("application/json"),
    );
    let res = actix_web::dev::ServiceResponse::new(req, res)
        .map_into_boxed_body()
        .map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
