//! Request bodies must keep coming. A body that trickles (a few bytes every few seconds, to
//! hold a connection and a handler for ever) fails with 408 once it falls behind
//! [`MIN_BODY_RATE`] after a [`BODY_GRACE`], or sends nothing for [`BODY_IDLE`]. WebSocket
//! upgrades are left alone: their body is the session, which has its own heartbeat.

use super::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;
use peerlink_actors::protocol::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Time every body gets before its rate is held against it.
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// The slowest average a body may arrive at after the grace (bytes per second).
pub const MIN_BODY_RATE: u64 = 1024;
/// The longest a body may send nothing.
pub const BODY_IDLE: Duration = Duration::from_secs(30);

/// The message of the error a late body ends with; handlers answer it with 408.
pub const TOO_SLOW: &str = "the request body arrives too slowly";

/// Middleware: puts a deadline on every request body but a WebSocket's.
pub async fn limit_body_time(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !req.headers().contains_key(header::UPGRADE) {
        let body = req.take_payload();
        req.set_payload(Payload::Stream {
            payload: Box::pin(BodyDeadline::new(body)),
        });
    }
    next.call(req).await
}

/// Whether a payload error is this module's deadline.
pub fn is_too_slow(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// The 408 for a body that came too slowly.
pub fn too_slow() -> ApiError {
    ApiError::new(ErrorCode::BadRequest, TOO_SLOW).with_status(408)
}

struct BodyDeadline {
    body: Payload,
    start: Instant,
    received: u64,
    last_byte: Instant,
    timer: Pin<Box<Sleep>>,
    expired: bool,
}

impl BodyDeadline {
    fn new(body: Payload) -> Self {
        let now = Instant::now();
        BodyDeadline {
            body,
            start: now,
            received: 0,
            last_byte: now,
            timer: Box::pin(tokio::time::sleep_until(now + BODY_GRACE)),
            expired: false,
        }
    }

    /// When the body is too late unless more comes.
    fn due(&self) -> Instant {
        let earned = Duration::from_secs(self.received / MIN_BODY_RATE);
        (self.start + BODY_GRACE + earned).min(self.last_byte + BODY_IDLE)
    }
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.received += bytes.len() as u64;
                this.last_byte = Instant::now();
                return Poll::Ready(Some(Ok(bytes)));
            }
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {}
        }
        let due = this.due();
        this.timer.as_mut().reset(due);
        if this.timer.as_mut().poll(cx).is_ready() {
            this.expired = true;
            let late = std::io::Error::new(std::io::ErrorKind::TimedOut, TOO_SLOW);
            return Poll::Ready(Some(Err(PayloadError::Io(late))));
        }
        Poll::Pending
    }
}
