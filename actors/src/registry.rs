//! The registry: the one way to reach a user, a room, a transfer or a session, split by
//! who asks.
//!
//! - [`Router`]: what actors call to send. Code that sends never holds another actor's
//!   address; it names the target by id and the router delivers, on this node or another.
//! - [`Host`]: what hosts actors on this node: sessions coming and going, rooms and peers
//!   passivated or restarted after a crash, transfers started from the store.
//! - [`ClusterView`]: what the HTTP side (admin console, `/api`) asks about the node.
//!
//! On a single node [`crate::local_registry::LocalRegistry`] implements all three with
//! in-process maps; the cluster implements them over Redis and the node-to-node links.

use crate::messages::{
    Delivery, PeerCommand, RoomCommand, RoomCrash, TransferCommand, TransferInfo, TransferStart,
};
use crate::protocol::{NodeTag, Outbound, RoomName, SessionId, User, UserId};
use crate::store::TransferRecord;
use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Where a session's outgoing frames go. Local sessions push into their socket's queue;
/// remote ones would forward to their node.
pub trait SessionSink: Send + Sync {
    /// Queues a frame for the session. Returns `false` when the session is gone.
    fn deliver(&self, out: Outbound) -> bool;
}

/// A handle on one session, handed out by the registry. Rooms keep these for fan-out.
#[derive(Clone)]
pub struct SessionRef {
    pub id: SessionId,
    sink: Arc<dyn SessionSink>,
}

impl SessionRef {
    pub fn new(id: SessionId, sink: Arc<dyn SessionSink>) -> Self {
        SessionRef { id, sink }
    }

    pub fn deliver(&self, out: Outbound) -> bool {
        self.sink.deliver(out)
    }
}

impl fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionRef({})", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("{0} is unavailable")]
    Unavailable(String),
    #[error("{0} does not exist")]
    NotFound(String),
}

/// A live room as the admin and `/api/rooms` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomStatus {
    pub room: RoomName,
    /// Sessions in the room right now, on this node's instance.
    pub sessions: usize,
}

/// A session as the admin console sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub user: User,
    /// When it said hello, in milliseconds since the epoch.
    pub since_ms: i64,
    pub rooms: Vec<RoomName>,
}

/// What actors call to reach each other.
pub trait Router: Send + Sync + 'static {
    /// Sends to a room, activating it on first use.
    fn send_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), RegistryError>;
    /// Sends to a user's peer actor, activating it on first use.
    fn send_user(&self, user: UserId, command: PeerCommand) -> Result<(), RegistryError>;
    /// Sends to a transfer; `NotFound` when it does not exist (any more).
    fn send_transfer(&self, id: Uuid, command: TransferCommand) -> Result<(), RegistryError>;
    /// Sends a frame to a session, on this node or another. False when it is known to be
    /// gone (a session on another node counts as there until its node says otherwise).
    fn send_session(&self, id: SessionId, out: Outbound) -> bool;
    /// Frames for sessions of one node: on this node they go straight to their queues.
    fn deliver(&self, node: NodeTag, delivery: Delivery);
    /// Starts the actor of a new transfer.
    fn create_transfer(&self, id: Uuid, start: TransferStart) -> Result<(), RegistryError>;
    /// Whether `user` has a welcomed session on this node.
    fn user_online(&self, user: UserId) -> bool;
    /// The nodes where `user` has welcomed sessions now.
    fn user_nodes(&self, user: UserId) -> BoxFuture<'static, Vec<NodeTag>>;
}

/// What hosts actors on this node.
pub trait Host: Send + Sync + 'static {
    /// A handle on a session connected to this node.
    fn session(&self, id: SessionId) -> Option<SessionRef>;
    /// A welcomed session of `user`.
    fn register_session(&self, session: SessionRef, user: User);
    fn unregister_session(&self, id: SessionId);
    /// The rooms a session is in now (for the admin console).
    fn note_session_rooms(&self, id: SessionId, rooms: Vec<RoomName>);
    /// Starts the actor of a transfer read back from the store after a restart.
    fn restore_transfer(&self, record: TransferRecord) -> Result<(), RegistryError>;
    /// Called by a transfer's actor when it stops.
    fn transfer_ended(&self, id: Uuid);
    /// Called from a dying room's `Drop`: hands the room's state to the supervisor.
    fn report_room_crash(&self, crash: RoomCrash);
    /// Called by a room whose commit was fenced: another node owns it now. Its members are
    /// handed to that owner (on a single node, where this cannot happen, it restarts).
    fn room_moved(&self, moved: RoomCrash);
    /// Replaces a dead room with a fresh instance that starts with `crash.members`.
    fn restart_room(&self, crash: RoomCrash);
    /// Asks rooms and peers that nothing has used for `idle_for` to stop (see
    /// `RoomCommand::Passivate`); commands for them wait until each has answered.
    fn passivate_idle(&self, idle_for: std::time::Duration);
    /// A room's answer to `Passivate`: `idle` if it has no member and nothing in flight.
    /// True means the room must stop now (nothing is waiting for it); false means it goes
    /// on, with the commands that arrived meanwhile, and `sessions` members.
    fn finish_room_passivation(&self, room: &RoomName, idle: bool, sessions: usize) -> bool;
    /// A peer's answer to `Passivate`, as for rooms.
    fn finish_peer_passivation(&self, user: UserId, idle: bool) -> bool;
    /// Tells a room's counters how many sessions it has (for [`ClusterView::rooms`]).
    fn room_size_changed(&self, room: &RoomName, sessions: usize);
    /// The node is stopping: dying actors are not restarted any more.
    fn shut_down(&self);
}

/// What the HTTP side asks about the node.
pub trait ClusterView: Send + Sync + 'static {
    /// Every welcomed session on this node.
    fn sessions(&self) -> Vec<SessionInfo>;
    /// The rooms active on this node.
    fn rooms(&self) -> Vec<RoomStatus>;
    /// Sessions connected to this node.
    fn session_count(&self) -> usize;
    /// Transfers in progress on this node.
    fn transfer_count(&self) -> usize;
    /// How every transfer on this node stands.
    fn transfers(&self) -> BoxFuture<'static, Vec<TransferInfo>>;
}
