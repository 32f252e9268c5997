//! The admin API (Bearer admin token): what the node runs, and the actions an operator
//! takes on it: kick a session, cancel a transfer, drain the node.

use super::{ApiError, AppState};
use crate::token;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use peerlink_actors::messages::TransferCommand;
use peerlink_actors::metrics::METRICS;
use peerlink_actors::protocol::{format_time, ErrorCode, Outbound, SessionId};
use std::sync::atomic::Ordering;

/// Close code a kicked session gets (application range: "kicked by an administrator").
const CLOSE_KICKED: u16 = 4001;
/// Close code of a draining node: "service restart", reconnect elsewhere.
const CLOSE_DRAINING: u16 = 1012;

/// Checks `Authorization: Bearer <admin token>`.
pub fn require_admin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if token::hash(token) == state.admin_token_hash => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the admin token is wrong",
        )),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <admin token>",
        )),
    }
}

/// `GET /api/admin/stats`: the node's live figures.
pub async fn admin_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "node": state.node.node_id,
        "uptime_secs": state.started.elapsed().as_secs(),
        "connections": METRICS.connections.get(),
        "sessions": state.node.view.session_count(),
        "rooms": state.node.view.rooms().len(),
        "messages_stored": METRICS.messages_stored.get(),
        "transfers_active": state.node.view.transfer_count(),
        "transfer_bytes": METRICS.transfer_bytes.get(),
        "room_restarts": METRICS.room_restarts.get(),
    })))
}

/// The node's 1-minute load average, from `/proc/loadavg`.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `GET /api/admin/nodes`.
pub async fn nodes(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "nodes": [{
        "id": state.node.node_id,
        "address": state.bind.get(),
        "role": "single",
        "uptime_secs": state.started.elapsed().as_secs(),
        "connections": METRICS.connections.get(),
        "sessions": state.node.view.session_count(),
        "transfers": state.node.view.transfer_count(),
        "load": load_average(),
        "draining": state.draining.load(Ordering::SeqCst),
    }]})))
}

/// `GET /api/admin/sessions`.
pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let sessions: Vec<serde_json::Value> = state
        .node
        .view
        .sessions()
        .into_iter()
        .map(|s| serde_json::json!({ "id": s.id.id, "user": s.user, "node": state.node.node_id, "since": format_time(s.since_ms), "rooms": s.rooms }))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions": sessions })))
}

/// `POST /api/admin/sessions/<id>/kick`: closes that connection (code 4001).
pub async fn kick(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such session on this node");
    let id = uuid::Uuid::parse_str(&id)
        .map(|id| SessionId {
            node: state.node.node_tag,
            id,
        })
        .map_err(|_| not_found())?;
    let close = Outbound::Close {
        code: CLOSE_KICKED,
        reason: "disconnected by an administrator".into(),
    };
    if state.node.router.send_session(id, close) {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}

/// `GET /api/admin/rooms`: every room, its last `seq` and the sessions in it now.
pub async fn rooms(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let rooms = super::api::rooms_with_sessions(&state).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rooms": rooms })))
}

/// `GET /api/admin/transfers`: every transfer in progress and how far it is.
pub async fn transfers(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let transfers = state.node.view.transfers().await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "transfers": transfers })))
}

/// `POST /api/admin/transfers/<id>/cancel`: both sides get `cancelled`.
pub async fn cancel_transfer(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such transfer on this node");
    let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    state
        .node
        .router
        .send_transfer(id, TransferCommand::AdminCancel)
        .map_err(|_| not_found())?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/admin/nodes/<id>/drain`: the node takes no new connections, reports not
/// ready, and asks every connected client to reconnect elsewhere (close code 1012).
pub async fn drain(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    if *id != state.node.node_id {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no node {:?} here; this is {}",
                id.as_str(),
                state.node.node_id
            ),
        ));
    }
    let closed = drain_sessions(&state);
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "node": state.node.node_id, "draining": true, "sessions_closed": closed })))
}

/// Stops taking connections and asks every connected client to reconnect elsewhere (close
/// 1012); returns how many were asked. Used by an administrator's drain and by SIGTERM.
pub fn drain_sessions(state: &AppState) -> usize {
    state.draining.store(true, Ordering::SeqCst);
    let sessions = state.node.view.sessions();
    for session in &sessions {
        let close = Outbound::Close {
            code: CLOSE_DRAINING,
            reason: "the node is draining; reconnect to another node".into(),
        };
        state.node.router.send_session(session.id, close);
    }
    log::warn!(
        "draining: {} sessions asked to reconnect elsewhere",
        sessions.len()
    );
    sessions.len()
}
