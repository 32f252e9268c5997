//! What lives exactly as long as one TCP connection. When a connection opens, the node
//! records its socket and takes a place for it in its address's count of plain HTTP
//! connections; the places come back only when the connection is really closed, not when
//! a handler or a session ends while the socket stays open.
//!
//! A connection past its address's ceiling is still accepted (the listener cannot refuse
//! it by address), but every request on it gets 429 and the connection is closed.

use super::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use peerlink_actors::limits::{AddressCounter, AddressSlot};
use peerlink_actors::protocol::ErrorCode;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;

/// Per-connection state, in the connection's extensions (`HttpRequest::conn_data`).
pub struct Connection {
    /// The socket, to ask the kernel how many bytes the client has acknowledged. Only read
    /// while the connection lives (its responses are dropped before its socket).
    socket: RawFd,
    /// This connection's place in its address's count: of plain HTTP connections at first,
    /// of WebSocket connections once upgraded. `None` for a trusted proxy (uncounted), or
    /// when the address is at its ceiling.
    slot: RefCell<Option<AddressSlot>>,
    /// The address had no place left when this connection opened.
    pub over_limit: bool,
    /// False once the connection is gone (and its descriptor may be another's).
    alive: Rc<Cell<bool>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.alive.set(false);
    }
}

/// The ceiling on plain HTTP connections per client address, and who is exempt.
pub struct ConnectionLimits {
    pub http: Arc<AddressCounter>,
    /// Reverse proxies carry many clients on their connections: not counted here.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ConnectionLimits {
    /// The server's `on_connect` hook.
    pub fn on_connect(&self, io: &dyn Any, extensions: &mut Extensions) {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let peer = stream.peer_addr().ok().map(|addr| addr.ip());
        let slot = peer
            .filter(|ip| !self.trusted_proxies.contains(ip))
            .map(|ip| self.http.open(ip));
        let over_limit = matches!(slot, Some(None));
        if over_limit {
            log::info!("{peer:?} holds too many HTTP connections; refusing this one's requests");
        }
        extensions.insert(Connection {
            socket: stream.as_raw_fd(),
            slot: RefCell::new(slot.flatten()),
            over_limit,
            alive: Rc::new(Cell::new(true)),
        });
    }
}

impl Connection {
    /// Moves this connection's place to another count (its upgrade to a WebSocket).
    pub fn hold(&self, slot: Option<AddressSlot>) {
        *self.slot.borrow_mut() = slot;
    }

    /// Ends this connection from the node's side (both directions), if it is still open.
    /// To be called on the connection's own worker thread, as everything it owns runs.
    pub fn hang_up(&self) -> impl FnOnce() + 'static {
        let (socket, alive) = (self.socket, self.alive.clone());
        move || {
            if alive.get() {
                // SAFETY: the descriptor is this connection's while `alive` says so, and
                // both live on this thread; shutdown changes no memory.
                unsafe {
                    libc::shutdown(socket, libc::SHUT_RDWR);
                }
            }
        }
    }

    /// Starts counting what the client acknowledges from now on (a response's bytes).
    pub fn ack_probe(&self) -> Option<AckProbe> {
        Some(AckProbe {
            socket: self.socket,
            start: bytes_acked(self.socket)?,
        })
    }
}

/// Counts the bytes a client acknowledged since the probe was made.
pub struct AckProbe {
    socket: RawFd,
    start: u64,
}

impl AckProbe {
    pub fn acked_since(&self) -> Option<u64> {
        Some(bytes_acked(self.socket)?.saturating_sub(self.start))
    }
}

fn bytes_acked(socket: RawFd) -> Option<u64> {
    // SAFETY: `tcp_info` is plain data; getsockopt writes at most `len` bytes into it and
    // reads nothing else. A closed descriptor makes it fail, which is answered with None.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
        let result = libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (result == 0).then_some(info.tcpi_bytes_acked)
    }
}

/// Middleware: a connection over its address's ceiling gets 429 for each request, and is
/// closed after the answer.
pub async fn refuse_over_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !req.conn_data::<Connection>().is_some_and(|c| c.over_limit) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let mut response = ApiError::new(
        ErrorCode::RateLimited,
        "too many connections from your address; close some first",
    )
    .error_response();
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(req.into_response(response).map_into_right_body())
}
