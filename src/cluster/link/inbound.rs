//! The receiving side of the link: the listener, the acceptor's handshake, and one task per
//! authenticated connection that reads frames and reports them.
//!
//! It must never report a frame from a connection that has not authenticated, nor from one
//! that a newer connection of the same node has superseded: that is what keeps a node's
//! frames in order across reconnections.

use super::handshake::{self, Identity};
use super::wire::{self, FrameReader, ReadError};
use super::{bump, lock, LinkEvent, Shared, HANDSHAKE_TIMEOUT};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;

/// Connections allowed in the handshake at once. A cluster has tens of nodes, each dialing
/// once; 64 absorbs a whole cluster restarting while strangers holding sockets open until
/// the handshake timeout cannot exhaust the node's memory or descriptors.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Pause after `accept` fails (descriptors exhausted, usually): retrying at once would
/// spin on the same error; 100 ms lets connections close meanwhile.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Pending connections the kernel holds for the listener: room for a whole cluster dialing
/// at once.
const LISTEN_BACKLOG: u32 = 1024;

/// The connection whose frames are delivered for a node id.
pub(super) struct InboundConn {
    conn_id: u64,
    incarnation: u64,
    /// Cancelled when a newer connection of the node supersedes it, on forget, on shutdown.
    pub(super) cancel: CancellationToken,
}

/// Binds the listener; must run inside the link's runtime. `SO_REUSEADDR`, so that a node
/// restarting on its port is not refused while connections of the old process linger in
/// TIME_WAIT.
pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            _ = shared.root.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, from)) => {
                let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                    log::warn!(
                        "cluster link: {MAX_PENDING_HANDSHAKES} handshakes pending; closed {from}"
                    );
                    continue;
                };
                tokio::spawn(serve(Arc::clone(&shared), stream, from, permit));
            }
            Err(error) => {
                log::warn!("cluster link cannot accept: {error}");
                sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// One inbound connection, from the handshake to its end.
async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    from: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let config = &shared.config;
    let me = Identity {
        id: config.node_id.clone(),
        incarnation: config.incarnation,
    };
    let outcome = tokio::select! {
        _ = shared.root.cancelled() => return,
        outcome = timeout(HANDSHAKE_TIMEOUT, async {
            stream.set_nodelay(true)?;
            handshake::accept(&mut stream, &config.secret, &me).await
        }) => outcome,
    };
    drop(permit);
    let peer = match outcome {
        Ok(Ok(peer)) => peer,
        Ok(Err(error)) => return refused(&shared, from, &error.to_string()),
        Err(_) => return refused(&shared, from, "the handshake timed out"),
    };
    let (conn_id, cancel) = register(&shared, &peer);
    let ended = deliver(&shared, &peer, FrameReader::new(stream), &cancel).await;
    if let Err(error) = ended {
        if matches!(error, ReadError::Oversize { .. }) {
            bump(&shared.stats.protocol_errors, 1);
        }
        log::info!("cluster link from {} ({from}) closed: {error}", peer.id);
    }
    unregister(&shared, &peer, conn_id);
}

fn refused(shared: &Shared, from: SocketAddr, why: &str) {
    bump(&shared.stats.auth_failures, 1);
    log::warn!("cluster link refused a connection from {from}: {why}");
}

/// Makes `peer`'s new connection the one whose frames are delivered; reports Down for the
/// one it supersedes, then Up.
fn register(shared: &Shared, peer: &Identity) -> (u64, CancellationToken) {
    let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let cancel = shared.root.child_token();
    let conn = InboundConn {
        conn_id,
        incarnation: peer.incarnation,
        cancel: cancel.clone(),
    };
    let superseded = lock(&shared.inbound).insert(peer.id.clone(), conn);
    bump(&shared.stats.connections_accepted, 1);
    if let Some(old) = superseded {
        // Same thread as the old connection's task: it reports nothing after this.
        old.cancel.cancel();
        shared.emit(LinkEvent::Down {
            node: peer.id.clone(),
            incarnation: old.incarnation,
        });
    }
    shared.emit(LinkEvent::Up {
        node: peer.id.clone(),
        incarnation: peer.incarnation,
    });
    (conn_id, cancel)
}

/// Reports Down for the connection unless a newer one superseded it (which reported it).
fn unregister(shared: &Shared, peer: &Identity, conn_id: u64) {
    let current = {
        let mut inbound = lock(&shared.inbound);
        let current = inbound
            .get(&peer.id)
            .is_some_and(|conn| conn.conn_id == conn_id);
        if current {
            inbound.remove(&peer.id);
        }
        current
    };
    if current {
        shared.emit(LinkEvent::Down {
            node: peer.id.clone(),
            incarnation: peer.incarnation,
        });
    }
}

/// Reports frames until the peer closes, the connection fails, or it is cancelled.
async fn deliver(
    shared: &Shared,
    peer: &Identity,
    mut reader: FrameReader<TcpStream>,
    cancel: &CancellationToken,
) -> Result<(), ReadError> {
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            next = reader.next() => next?,
        };
        let Some(frame) = next else { return Ok(()) };
        // `forget` may cancel from another thread while this task was reading.
        if cancel.is_cancelled() {
            return Ok(());
        }
        bump(&shared.stats.frames_received, 1);
        bump(&shared.stats.bytes_received, wire::wire_len(&frame));
        shared.emit(LinkEvent::Frame {
            from: peer.id.clone(),
            incarnation: peer.incarnation,
            frame,
        });
    }
}
