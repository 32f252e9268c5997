//! # peerlink-actors
//!
//! The actor system of a PeerLink node and the wire protocol it speaks. This crate owns
//! behaviour; it never opens a socket listener, never declares an HTTP route and never
//! writes SQL. The node crate (`peerlink`) supplies those through two ports:
//!
//! - [`store::Store`]: durable storage (identities, room messages). Every call returns a
//!   future that completes off the actors' event loops.
//! - [`registry`]: the directory through which every message to a user, room, transfer or
//!   session is addressed ([`registry::Router`]), the host of this node's actors
//!   ([`registry::Host`]) and what the HTTP side sees ([`registry::ClusterView`]).
//!   [`local_registry::LocalRegistry`] is the single-node version; the cluster implements
//!   the same traits over Redis and node-to-node links.
//!
//! The commands actors send each other are data, in the leaf module [`messages`].
//!
//! ## How the pieces fit
//!
//! ```text
//!  WebSocket ──► SessionActor ───router───► RoomActor ──store (group commit)──► DB
//!                    ▲   │                     │
//!                    │   └───router───► PeerActor (one per user: all its sessions)
//!                    └──────── SessionRef ◄────┘  (fan-out of pre-serialised frames)
//! ```
//!
//! ## Runtime semantics
//!
//! - Actors talk only through messages; an actor's mailbox is FIFO for a single sender.
//! - A panic inside a handler ends that actor's task only (tokio catches it); other actors
//!   on the same thread go on. A [`room::RoomActor`] that dies this way reports to the
//!   [`supervisor::NodeSupervisor`] from its `Drop`, which starts a fresh instance with the
//!   same members; the new instance reloads `last_seq` and recent messages from the store.
//! - A `message` reaches anyone only after the store has committed it.

pub mod batch;
pub mod cluster_registry;
pub mod envelope;
pub mod hash;
pub mod hash_actor;
pub mod limits;
pub mod local_registry;
pub mod messages;
pub mod metrics;
pub mod peer;
pub mod protocol;
pub mod registry;
pub mod room;
pub mod runtime;
pub mod session;
pub mod store;
pub mod supervisor;
pub mod transfer;

use std::sync::Arc;

/// Everything an actor of this node needs to reach the rest of the node.
pub struct NodeContext {
    /// This node's id, sent to clients in `welcome`.
    pub node_id: String,
    /// The same id, interned: sessions of this node carry it (see [`protocol::SessionId`]).
    pub node_tag: protocol::NodeTag,
    /// In a cluster: this start of the node (see [`store::Store::claim_ownership`]). Rooms,
    /// conversations and transfers it hosts then take a fence epoch from the database
    /// before they load, and every commit is checked against it. `None` on a single node,
    /// which owns everything and fences nothing.
    pub incarnation: Option<u64>,
    /// Where every user, room, transfer and session is addressed.
    pub router: Arc<dyn registry::Router>,
    /// Hosts this node's actors: sessions, passivation, restarts.
    pub host: Arc<dyn registry::Host>,
    /// What the admin console and `/api` see.
    pub view: Arc<dyn registry::ClusterView>,
    /// Durable storage; every call completes off the event loop.
    pub store: Arc<dyn store::Store>,
    /// Sizes, rates and timings, validated at start.
    pub limits: limits::Limits,
    /// Per-user frame budget, shared by all sessions of a user on this node.
    pub rate: limits::UserRateLimiter,
    /// Uploads and share links each user creates (over HTTP, or by a `say` with an upload).
    pub creations: limits::UserRateLimiter,
    /// New identities per client address, so one client cannot fill the database with names.
    pub signups: limits::SignupLimiter,
    /// Open WebSocket connections per client address, so one client cannot hold them all.
    pub addresses: Arc<limits::AddressCounter>,
    /// Transfers in progress, per user and in all, and recent offers.
    pub transfers: transfer::book::TransferBook,
    /// Bytes that streaming transfers may hold unacknowledged, node-wide.
    pub transfer_memory: limits::ByteBudget,
    /// Set while the data volume is full: messages are refused at once rather than tried
    /// against a store that cannot take them.
    pub storage_full: std::sync::atomic::AtomicBool,
    /// Hashes every relayed byte, off the network threads.
    pub hasher: hash_actor::HashActor,
    /// Test-only fault injection (`debug_panic` frames); off unless the node is started with
    /// `PEERLINK_FAULTS=1`.
    pub faults: bool,
}

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
