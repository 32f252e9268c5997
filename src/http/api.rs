//! The JSON API: identities, rooms, the node list, and admin statistics.

use super::client_address::{client_address, client_facing_host};
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
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rooms": rooms_with_sessions(&state).await? })))
}

/// Every room the store knows, and those just opened whose record is still on its way to
/// the store (they have no message yet), with the sessions in each on this node; by name.
pub async fn rooms_with_sessions(state: &AppState) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut live: HashMap<String, usize> = state
        .node
        .view
        .rooms()
        .into_iter()
        .map(|r| (r.room.to_string(), r.sessions))
        .collect();
    let mut rooms: Vec<(String, u64, usize)> = state
        .store
        .list_rooms()
        .await?
        .into_iter()
        .map(|r| {
            let sessions = live.remove(&r.name).unwrap_or(0);
            (r.name, r.last_seq, sessions)
        })
        .collect();
    rooms.extend(
        live.into_iter()
            .filter(|(_, s)| *s > 0)
            .map(|(name, s)| (name, 0, s)),
    );
    rooms.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(rooms
        .into_iter()
        .map(|(name, last_seq, sessions)| serde_json::json!({ "name": name, "last_seq": last_seq, "sessions": sessions }))
        .collect())
}

/// `GET /api/cluster/nodes`: where clients may connect. A single node lists itself; a
/// cluster node lists every live node (not draining) at the HTTP address it is bound to.
pub async fn cluster_nodes(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (scheme, host) = client_facing_host(&req, &state.trusted_proxies);
    let Some(cluster) = &state.cluster else {
        let node = serde_json::json!({
            "id": state.node.node_id,
            "url": format!("{scheme}://{host}"),
            "connections": state.node.view.session_count(),
        });
        return HttpResponse::Ok()
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .json(serde_json::json!({ "nodes": [node] }));
    };
    let nodes: Vec<serde_json::Value> = cluster
        .live()
        .into_iter()
        .filter(|record| !record.draining)
        .map(|record| {
            let here = record.id == state.node.node_id;
            let mut node = serde_json::json!({
                "id": record.id,
                "url": if here { format!("{scheme}://{host}") } else { format!("{scheme}://{}", record.http) },
            });
            if here {
                node["connections"] = state.node.view.session_count().into();
            }
            node
        })
        .collect();
    // Public and harmless: a page served by one node reads it from another.
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(serde_json::json!({ "nodes": nodes }))
}
