//! The registry: the one way to reach a user, a room or a session.
//!
//! Code that sends never holds another user's or room's actor address; it names the
//! target by id and the registry delivers. On a single node [`crate::local_registry`]
//! keeps in-process maps; in a cluster the same trait is implemented over Redis, and a
//! target may live on another node.

use crate::peer::PeerCommand;
use crate::protocol::{Outbound, RoomName, SessionId, UserId};
use crate::room::{RoomCommand, RoomMember};
use std::fmt;
use std::sync::Arc;

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
}

/// A live room as the admin and `/api/rooms` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomStatus {
    pub room: RoomName,
    /// Sessions in the room right now, on this node's instance.
    pub sessions: usize,
}

/// A room that died, as reported to the supervisor.
#[derive(Debug, Clone)]
pub struct RoomCrash {
    pub room: RoomName,
    pub members: Vec<RoomMember>,
    /// Highest `seq` that had been fanned out before the crash.
    pub delivered_seq: u64,
}

pub trait Registry: Send + Sync + 'static {
    /// Sends to a room, activating it on first use.
    fn send_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), RegistryError>;
    /// Sends to a user's peer actor, activating it on first use.
    fn send_user(&self, user: UserId, command: PeerCommand) -> Result<(), RegistryError>;
    /// A handle on a session, if it is connected.
    fn session(&self, id: SessionId) -> Option<SessionRef>;
    /// Sends a frame to a session, if it is connected.
    fn send_session(&self, id: SessionId, out: Outbound) -> bool {
        self.session(id).is_some_and(|s| s.deliver(out))
    }
    fn register_session(&self, session: SessionRef);
    fn unregister_session(&self, id: SessionId);
    /// The rooms active on this node.
    fn rooms(&self) -> Vec<RoomStatus>;
    /// Sessions connected to this node.
    fn session_count(&self) -> usize;
    /// Called from a dying room's `Drop`: hands the room's state to the supervisor.
    fn report_room_crash(&self, crash: RoomCrash);
    /// Replaces a dead room with a fresh instance that starts with `crash.members`.
    fn restart_room(&self, crash: RoomCrash);
    /// Tells a room's counters how many sessions it has (for [`Registry::rooms`]).
    fn room_size_changed(&self, room: &RoomName, sessions: usize);
}
