//! The JSON API: identities, rooms, the node list, and admin statistics.

use super::client_address::client_address;
use super::{ApiError, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use peerlink_actors::protocol::values::validate_user_name;
use peerlink_actors::protocol::ProtocolError;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Deserialize)]
pub struct NewSession {
    name: String,
}

/// `POST /api/sessions {"name":"alice"}` → `{"user":{…},"token":"…"}`: a new identity for an
/// HTTP client, the same as a WebSocket `hello` with a name.
pub async fn create_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let name = validate_user_name(&body.name)?;
    if let Some(address) = client_address(&req, &state.trusted_proxies) {
        state
            .node
            .signups
            .check(address, Instant::now())
            .map_err(ProtocolError::too_many_signups)?;
    }
    let identity = state.node.store.create_identity(name).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "user": identity.user, "token": identity.token })))
}

/// `GET /api/rooms`: every room, its last `seq`, and the sessions in it on this node.
pub async fn list_rooms(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rooms = state.store.list_rooms().await?;
    let live: HashMap<String, usize> = state
        .node
        .registry
        .rooms()
        .into_iter()
        .map(|r| (r.room.to_string(), r.sessions))
        .collect();
    let rooms: Vec<serde_json::Value> = rooms
        .into_iter()
        .map(|r| serde_json::json!({ "name": r.name, "last_seq": r.last_seq, "sessions": live.get(&r.name).copied().unwrap_or(0) }))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rooms": rooms })))
}

/// `GET /api/cluster/nodes`: where clients may connect. A single node lists itself.
pub async fn cluster_nodes(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let info = req.connection_info();
    let node = serde_json::json!({
        "id": state.node.node_id,
        "url": format!("{}://{}", info.scheme(), info.host()),
        "connections": state.node.registry.session_count(),
    });
    HttpResponse::Ok().json(serde_json::json!({ "nodes": [node] }))
}
