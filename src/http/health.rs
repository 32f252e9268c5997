//! Liveness, readiness and Prometheus metrics.

use super::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use peerlink_actors::metrics::METRICS;
use peerlink_actors::protocol::ErrorCode;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The node can do its work: the database answers and its volume has room to write.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the node is draining",
        ));
    }
    state
        .volume
        .ready()
        .map_err(|reason| ApiError::new(ErrorCode::Unavailable, reason))?;
    match state.store.ping().await {
        Ok(()) => Ok(HttpResponse::Ok()
            .json(serde_json::json!({ "status": "ready", "node": state.node.node_id }))),
        Err(e) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("the database is unreachable: {e}"),
        )),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(cluster) = &state.cluster {
        cluster.export_metrics();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(METRICS.render())
}
