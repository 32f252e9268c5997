//! The node-to-node link: authenticated TCP connections that carry [`Frame`]s between the
//! nodes of a cluster.
//!
//! It owns the sockets, the per-peer send queues, the handshake and the framing. It must never
//! interpret a frame (header and body are opaque bytes to it), decide who is in the cluster
//! (membership names the peers through [`PeerNode`] and [`Links::forget`]), or block a
//! caller's thread.
//!
//! # How it runs
//!
//! [`Links::start`] binds the listener and starts one dedicated thread with a tokio
//! current-thread runtime. Every socket, every task and every call of the `events` callback
//! run on that thread. [`Links::send`] may be called from any thread: it appends to the
//! peer's queue under a short lock and wakes the peer's task.
//!
//! # Connections and ordering
//!
//! Node A dials B for A→B traffic; a connection B accepted from A only receives. So there is
//! at most one writer per peer incarnation, and frames sent to one peer are delivered in the
//! order they were sent. A gap can only follow a [`LinkEvent::Down`]: when a connection
//! breaks, the batch being written is lost, frames still queued stay queued and go out on the
//! next connection. On the receiving side a new connection from a node supersedes the one it
//! had (Down for the old one is reported first), so frames of two connections never
//! interleave.
//!
//! Every connection, outbound or inbound, gets one [`LinkEvent::Up`] once it has
//! authenticated and then exactly one [`LinkEvent::Down`], also when it is closed by
//! [`Links::forget`] or by a new incarnation; after [`Links::shutdown`] no event is reported.
//! Two nodes that both send to each other hold two connections, so each sees two `Up`s.
//!
//! # What the link does not do
//!
//! The handshake proves both ends hold the cluster secret; the frames after it are neither
//! encrypted nor authenticated one by one. Run the cluster on a private network (or under
//! WireGuard or IPsec). There is no heartbeat: a peer that vanishes without closing its
//! socket is noticed by membership, which then calls [`Links::forget`].

mod handshake;
mod inbound;
mod outbound;
mod wire;

use bytes::Bytes;
use outbound::PeerQueue;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;
use tokio::task;
use tokio_util::sync::CancellationToken;

pub use handshake::NODE_ID_MAX_LEN;
pub use wire::{MAX_BODY_LEN, MAX_HEADER_LEN};

/// Outbound bytes a peer may have queued before [`Links::send`] refuses: a few hundred file
/// chunks of 256 KiB, enough to cover a round trip on a busy link without letting one slow
/// peer hold a large share of a node's memory.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// The shortest cluster secret [`Links::start`] accepts: 256 bits, the HMAC-SHA256 key
/// strength.
pub const MIN_SECRET_LEN: usize = 32;

/// Longest handshake, either side: a peer that has not proved itself by then is closed.
/// Three round trips take milliseconds even between regions; 5 s leaves room for a host
/// that is briefly overloaded, and is short enough that silent strangers do not pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How this node takes part in the link.
#[derive(Clone)]
pub struct LinkConfig {
    /// This node's stable id, the name other nodes give it (1 to [`NODE_ID_MAX_LEN`] bytes).
    pub node_id: String,
    /// New on every start of the node, so that a peer can tell a restarted node from the old
    /// one and never delivers the new process's frames as the old one's.
    pub incarnation: u64,
    /// The cluster secret, at least [`MIN_SECRET_LEN`] bytes; only its holders can connect.
    pub secret: Arc<[u8]>,
    /// Where to listen for other nodes, e.g. `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Per peer, outbound bytes not yet written beyond which [`Links::send`] answers
    /// [`LinkError::Backpressure`].
    pub max_queued_bytes: usize,
}

impl LinkConfig {
    /// A configuration with the default queue limit ([`DEFAULT_MAX_QUEUED_BYTES`]).
    pub fn new(
        node_id: impl Into<String>,
        incarnation: u64,
        secret: Arc<[u8]>,
        listen: SocketAddr,
    ) -> Self {
        LinkConfig {
            node_id: node_id.into(),
            incarnation,
            secret,
            listen,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

impl fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkConfig")
            .field("node_id", &self.node_id)
            .field("incarnation", &self.incarnation)
            .field("secret", &"(hidden)")
            .field("listen", &self.listen)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .finish()
    }
}

/// A peer node as membership names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerNode {
    pub id: String,
    pub incarnation: u64,
    pub addr: SocketAddr,
}

/// One unit on the wire. `header` is small (serialised by the caller), `body` may be large
/// (file chunks). Limits: [`MAX_HEADER_LEN`] and [`MAX_BODY_LEN`].
///
/// A received frame's bytes share the read buffer they arrived in (about 512 KiB, or the frame's
/// size if larger) and keep it allocated while they live: copy out a small part kept for
/// long, such as a header held in a room's history.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub header: Bytes,
    pub body: Bytes,
}

impl fmt::Debug for Frame {
    // Lengths only: a body can be megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("header_len", &self.header.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What the link reports through the `events` callback of [`Links::start`].
#[derive(Debug)]
pub enum LinkEvent {
    /// A frame from `from`, running as `incarnation`.
    Frame {
        from: String,
        incarnation: u64,
        frame: Frame,
    },
    /// The connection to/from this peer incarnation broke; frames queued or in flight may be
    /// lost.
    Down { node: String, incarnation: u64 },
    /// A connection to/from this peer incarnation authenticated.
    Up { node: String, incarnation: u64 },
}

/// Why [`Links::send`] did not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// More than `max_queued_bytes` would be queued for the peer: slow down, drop or fail.
    #[error("too many bytes are queued for this peer; wait until its queue drains")]
    Backpressure,
    /// [`Links::shutdown`] was called.
    #[error("the cluster link has shut down")]
    Closed,
    /// The frame is over [`MAX_HEADER_LEN`] or [`MAX_BODY_LEN`]; a peer would close the
    /// connection on it.
    #[error("frame too large ({header} header bytes, {body} body bytes); split it")]
    FrameTooLarge { header: usize, body: usize },
}

/// Counters of the link, plain atomics for the caller to export. Bytes are wire bytes of
/// frames (with their 8-byte length prefix), after the handshake.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub bytes_sent: AtomicU64,
    pub frames_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub frames_received: AtomicU64,
    /// Outbound connections that authenticated.
    pub connections_dialed: AtomicU64,
    /// Inbound connections that authenticated.
    pub connections_accepted: AtomicU64,
    /// Outbound dials that did not reach a listener (refused, unreachable, timed out).
    pub dial_failures: AtomicU64,
    /// Connections closed during the handshake, either side: a bad MAC, the wrong peer
    /// incarnation, a stranger's bytes, silence past the handshake timeout.
    pub auth_failures: AtomicU64,
    /// Authenticated connections closed for a malformed or oversize frame.
    pub protocol_errors: AtomicU64,
}

fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The running link of this node. Cheap to clone; the last clone dropped shuts it down as
/// [`Links::shutdown`] would, without waiting for its thread.
#[derive(Clone)]
pub struct Links {
    owner: Arc<Owner>,
}

/// Shuts the link down when the last [`Links`] goes (tasks hold [`Shared`], not this).
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// State used by [`Links`] and by the tasks on the link thread.
struct Shared {
    config: LinkConfig,
    events: Box<dyn Fn(LinkEvent) + Send + Sync>,
    stats: LinkStats,
    /// Spawns peer tasks onto the link thread from any thread.
    runtime: tokio::runtime::Handle,
    /// Parent of every task's token: cancelled once, by shutdown.
    root: CancellationToken,
    /// Set before `root` is cancelled; no event is reported once it is.
    closed: AtomicBool,
    /// The sending side, by peer id: one queue and one task per peer incarnation.
    outbound: Mutex<HashMap<String, outbound::Outbound>>,
    /// The receiving side, by peer id: the one connection whose frames are delivered.
    inbound: Mutex<HashMap<String, inbound::InboundConn>>,
    next_conn_id: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: OnceLock<ThreadId>,
}

/// A poisoned lock only means another thread panicked while holding it; the maps and queues
/// it guards stay consistent between statements, so go on with them.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Reports an event unless the link is shutting down. Never called with a lock held: the
    /// callback may call back into [`Links`].
    fn emit(&self, event: LinkEvent) {
        if !self.closed.load(Ordering::Acquire) {
            (self.events)(event);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.root.cancel();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The queue for `to`, starting its task if `to` is new. A different incarnation (or
    /// address) of a known id replaces the old one: its task is cancelled, its queue dropped.
    fn queue_for(self: &Arc<Self>, to: &PeerNode) -> Arc<PeerQueue> {
        let mut outbound = lock(&self.outbound);
        if let Some(current) = outbound.get(&to.id) {
            if current.peer == *to {
                return Arc::clone(&current.queue);
            }
        }
        let previous = outbound.remove(&to.id).map(|old| {
            old.cancel.cancel();
            old.task
        });
        let entry = outbound::Outbound::spawn(self, to.clone(), previous);
        let queue = Arc::clone(&entry.queue);
        outbound.insert(to.id.clone(), entry);
        queue
    }
}

impl Links {
    /// Binds, starts accepting on a dedicated thread (its own tokio current-thread runtime),
    /// and returns the links and the bound address. If `listen` was a wildcard address,
    /// advertise a routable one with this port instead.
    ///
    /// `events` runs on the link thread, for every connection: it must be quick (forward to
    /// an actor or a channel), must not block, and must not panic (the connection it was
    /// called for would end without its Down). It may call back into [`Links`].
    pub fn start(
        config: LinkConfig,
        events: impl Fn(LinkEvent) + Send + Sync + 'static,
    ) -> io::Result<(Links, SocketAddr)> {
        validate(&config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            inbound::bind(config.listen)?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            events: Box::new(events),
            stats: LinkStats::default(),
            runtime: runtime.handle().clone(),
            root: CancellationToken::new(),
            closed: AtomicBool::new(false),
            outbound: Mutex::new(HashMap::new()),
            inbound: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(0),
            thread: Mutex::new(None),
            thread_id: OnceLock::new(),
        });
        let on_thread = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("peerlink-link".to_owned())
            .spawn(move || {
                // Before any task runs, so that `shutdown` from the events callback never joins.
                let _ = on_thread.thread_id.set(thread::current().id());
                let root = on_thread.root.clone();
                runtime.block_on(async move {
                    task::spawn(inbound::accept_loop(on_thread, listener));
                    root.cancelled().await;
                });
                // Dropping the runtime drops every task, and with them every socket.
                drop(runtime);
            })?;
        *lock(&shared.thread) = Some(thread);
        log::info!(
            "cluster link of {} listening on {addr}",
            shared.config.node_id
        );
        Ok((
            Links {
                owner: Arc::new(Owner { shared }),
            },
            addr,
        ))
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// Queues a frame for a peer; never blocks, callable from any thread. Connects lazily;
    /// FIFO per peer (frames sent to one peer arrive in the order sent, or the connection is
    /// reported Down). `Err(Backpressure)` when the frame would take the peer's queue over
    /// `max_queued_bytes`; `Err(Closed)` after shutdown.
    pub fn send(&self, to: &PeerNode, frame: Frame) -> Result<(), LinkError> {
        let shared = self.shared();
        if shared.is_closed() {
            return Err(LinkError::Closed);
        }
        wire::check_limits(&frame)?;
        shared
            .queue_for(to)
            .push(frame, shared.config.max_queued_bytes)
    }

    /// Bytes queued for a peer and not yet written, the batch being written included.
    pub fn queued_bytes(&self, node: &str) -> usize {
        lock(&self.shared().outbound)
            .get(node)
            .map_or(0, |entry| entry.queue.queued_bytes())
    }

    /// Forgets a peer (it was declared dead): closes its connections, both ways (each that
    /// was up reports Down), and returns the frames still queued for it, never handed to a
    /// connection, so that the caller can send them elsewhere. A frame being delivered from it on the link
    /// thread at this moment may still arrive. If the node dials in again it is accepted: the
    /// link does not keep a list of the dead.
    pub fn forget(&self, node: &str) -> Vec<Frame> {
        let shared = self.shared();
        let mut unsent = Vec::new();
        if let Some(old) = lock(&shared.outbound).remove(node) {
            old.cancel.cancel();
            unsent = old.queue.drain();
        }
        if let Some(conn) = lock(&shared.inbound).get(node) {
            conn.cancel.cancel();
        }
        unsent
    }

    /// Closes every connection and stops the link thread; waits for it unless called on it
    /// (from the `events` callback). Queued frames are dropped; no event is reported after.
    pub fn shutdown(&self) {
        let shared = self.shared();
        shared.close();
        let on_link_thread = shared.thread_id.get() == Some(&thread::current().id());
        if on_link_thread {
            return;
        }
        let thread = lock(&shared.thread).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                log::error!("the cluster link thread panicked");
            }
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &LinkStats {
        &self.shared().stats
    }
}

fn validate(config: &LinkConfig) -> io::Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if config.node_id.is_empty() || config.node_id.len() > NODE_ID_MAX_LEN {
        return invalid(format!(
            "the node id must be 1 to {NODE_ID_MAX_LEN} bytes long"
        ));
    }
    if config.secret.len() < MIN_SECRET_LEN {
        return invalid(format!(
            "the cluster secret must be at least {MIN_SECRET_LEN} bytes long"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
