//! `GET /ws`: the WebSocket upgrade. Checks the handshake's `Origin` against the allow-list
//! (by default the node's own origin) and hands the connection to a `SessionActor`.

use super::client_address::{client_address, client_facing_host};
use super::connection::Connection;
use super::{ApiError, AppState};
use actix_web::FromRequest;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use peerlink_actors::protocol::ErrorCode;
use peerlink_actors::session::{FrameLimits, InboundFrames, SessionActor};

/// Bytes of header in front of file data in a binary frame (16-byte id, 8-byte offset).
const BINARY_HEADER: usize = 24;

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        if !origin_allowed(&origin, &req, &state) {
            log::info!("refused a WebSocket from origin {origin:?}");
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("origin {origin:?} may not open a WebSocket here"),
            )
            .into());
        }
    }
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "this node is draining; connect to another node",
        )
        .into());
    }
    // One place per open connection of the client's address, given back when it ends.
    let client = client_address(&req, &state.trusted_proxies);
    let address_slot = match client {
        Some(address) => Some(state.node.addresses.open(address).ok_or_else(|| {
            ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many connections from your address (at most {}); close some first",
                    state.node.addresses.max()
                ),
            )
        })?),
        None => None,
    };
    // The place is the connection's until its socket really closes, whenever the session
    // ends: a client that stops reading keeps paying for its open socket.
    let (address_slot, hang_up) = match req.conn_data::<Connection>() {
        Some(connection) => {
            connection.hold(address_slot);
            let hang_up: Box<dyn FnOnce()> = Box::new(connection.hang_up());
            (None, Some(hang_up))
        }
        None => (address_slot, None),
    };
    // actix-ws answers the handshake and writes; the session reads the body itself, a
    // frame at a time (`InboundFrames`), so that a huge declared frame is refused from its
    // header instead of buffered.
    let unread = web::Payload::from_request(&req, &mut actix_web::dev::Payload::None).await?;
    let (response, session, _) = actix_ws::handle(&req, unread)?;
    let limits = &state.node.limits;
    let frame_limits = FrameLimits {
        max_text: limits.max_text_frame,
        max_binary: BINARY_HEADER + usize::try_from(limits.chunk_size).unwrap_or(usize::MAX),
    };
    let stream = InboundFrames::new(body, frame_limits);
    SessionActor::launch(
        state.node.clone(),
        session,
        stream,
        client,
        address_slot,
        hang_up,
    );
    Ok(response)
}

/// The node's own origin (the Origin's host and port equal the Host header), a listed
/// one, or in a cluster the origin of a node of the cluster. Browsers always send `Origin`; other clients, which carry no ambient credentials a
/// foreign page could abuse, may leave it out.
fn origin_allowed(origin: &str, req: &HttpRequest, state: &AppState) -> bool {
    let (trusted, allowed) = (&state.trusted_proxies, &state.allowed_origins);
    let host = client_facing_host(req, trusted).1.to_ascii_lowercase();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority == Some(host.as_str())
        || allowed.iter().any(|a| a == origin)
        || state.cluster.as_ref().is_some_and(|cluster| {
            // A page served by another node of this cluster (it moves its WebSocket here
            // when its own node goes away, so that node may be dead by now).
            authority.is_some_and(|authority| cluster.is_node_address(authority))
        })
}
