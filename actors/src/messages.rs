//! The messages that travel between actors: every command a room, a peer (user) or a
//! transfer takes, and what the supervisor hears of a crash.
//!
//! This module is a leaf: it imports the wire protocol's value types and nothing else of
//! the crate, and no actor imports another actor's module to talk to it. Sessions are
//! named by id (and, in a room, by the node they are connected to), never by an
//! in-process handle, so that a command can be carried to another node as data.

use crate::protocol::{
    DataFrame, FileAttachment, NodeTag, OfferFrame, Outbound, RequestId, RoomName, SessionId, User,
    UserId,
};
use actix::Message;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// A session in a room, and the user it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomMember {
    pub session: SessionId,
    pub user: User,
}

/// Every command a room takes. Replies go to the session named in the command.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum RoomCommand {
    Join {
        member: RoomMember,
        since: Option<u64>,
        re: Option<RequestId>,
    },
    Leave {
        session: SessionId,
        re: Option<RequestId>,
    },
    Say {
        member: RoomMember,
        text: Arc<str>,
        file: Option<FileAttachment>,
        re: Option<RequestId>,
    },
    History {
        session: SessionId,
        before: Option<u64>,
        limit: usize,
        re: Option<RequestId>,
        /// For a direct conversation: the other person, whom the answer names.
        with: Option<UserId>,
    },
    /// The session ended; `user_offline` when it was the user's last session on the node.
    SessionGone {
        session: SessionId,
        user_offline: bool,
    },
    /// A file offered to the room: the offer goes to every member session of other users,
    /// and the transfer learns who they are.
    Offer {
        transfer: Uuid,
        from: UserId,
        out: Outbound,
    },
    /// From a node with sessions in the room, after the room changed owner or the node
    /// missed part of its fan-out: these sessions are members, and have had every message
    /// up to `since`. The room adds them (no `joined` again) and sends them what follows.
    Rejoin {
        members: Vec<RoomMember>,
        since: u64,
    },
    /// Test-only fault injection: the room panics.
    Panic,
    /// Test-only fault injection: the next `n` commits fail as if the store were down.
    FailCommits(u32),
    /// From the registry: nobody has used the room for a while; stop if idle (see
    /// `Registry::finish_room_passivation`). Always the last command before an answer.
    Passivate,
}

impl RoomCommand {
    /// The session that expects an answer to this command, and its request id.
    pub fn requester(&self) -> Option<(SessionId, Option<RequestId>)> {
        match self {
            RoomCommand::Join { member, re, .. } | RoomCommand::Say { member, re, .. } => {
                Some((member.session, re.clone()))
            }
            RoomCommand::Leave { session, re } | RoomCommand::History { session, re, .. } => {
                Some((*session, re.clone()))
            }
            RoomCommand::SessionGone { .. }
            | RoomCommand::Rejoin { .. }
            | RoomCommand::Offer { .. }
            | RoomCommand::Panic
            | RoomCommand::FailCommits(_)
            | RoomCommand::Passivate => None,
        }
    }
}

impl TransferCommand {
    /// The session that expects an answer, its request id, and the offset a data frame
    /// carried (error frames about data name it).
    pub fn requester(&self) -> Option<(SessionId, Option<RequestId>, Option<u64>)> {
        match self {
            TransferCommand::Accept { session, re, .. }
            | TransferCommand::Decline { session, re, .. }
            | TransferCommand::Ack { session, re, .. }
            | TransferCommand::End { session, re }
            | TransferCommand::Cancel { session, re, .. } => Some((*session, re.clone(), None)),
            TransferCommand::Data { session, frame, .. } => {
                Some((*session, None, Some(frame.offset)))
            }
            TransferCommand::Recipients(_)
            | TransferCommand::SessionGone { .. }
            | TransferCommand::UserBack { .. }
            | TransferCommand::NodeGone(_)
            | TransferCommand::AdminCancel => None,
        }
    }
}

/// Every command a peer takes.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum PeerCommand {
    /// A session of this user said `hello` and got `welcome`.
    Attach(SessionId),
    /// A session of this user ended; it was in `rooms`.
    Detach {
        session: SessionId,
        rooms: Vec<RoomName>,
    },
    /// A frame for every session of the user, except `except` (the one that caused it).
    Deliver {
        out: Outbound,
        except: Option<SessionId>,
    },
    /// A transfer this user is part of: it hears of the user's sessions coming and going.
    Track(Uuid),
    Untrack(Uuid),
    /// A transfer taken over by another node asks where the user's sessions are: the peer
    /// answers with `UserBack` for one of them.
    Report(Uuid),
    /// From the registry: nobody has used this peer for a while; stop if the user has no
    /// session and no transfer (see `Registry::finish_peer_passivation`).
    Passivate,
}

/// What a transfer starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferStart {
    pub offer: OfferFrame,
    pub sender_session: SessionId,
    /// For an offer to one user: that user. For a room offer: `None` (the room names them).
    pub recipient: Option<UserId>,
    pub re: Option<RequestId>,
}

/// Every command a transfer takes.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum TransferCommand {
    /// The users a room offer went to.
    Recipients(Vec<User>),
    Accept {
        user: User,
        session: SessionId,
        offset: u64,
        re: Option<RequestId>,
    },
    Decline {
        user: User,
        session: SessionId,
        re: Option<RequestId>,
    },
    Data {
        session: SessionId,
        user: UserId,
        frame: DataFrame,
    },
    Ack {
        session: SessionId,
        offset: u64,
        re: Option<RequestId>,
    },
    End {
        session: SessionId,
        re: Option<RequestId>,
    },
    Cancel {
        user: UserId,
        session: SessionId,
        re: Option<RequestId>,
    },
    /// A session of `user` ended; `user_offline` when it was their last on the node.
    SessionGone {
        session: SessionId,
        user: UserId,
        user_offline: bool,
    },
    /// A new session of `user` said hello.
    UserBack { user: UserId, session: SessionId },
    /// A node died: every session connected to it is gone.
    NodeGone(NodeTag),
    /// An administrator stops the transfer.
    AdminCancel,
}

/// A room that died, as reported to the supervisor.
#[derive(Debug, Clone)]
pub struct RoomCrash {
    pub room: RoomName,
    pub members: Vec<RoomMember>,
    /// Highest `seq` that had been fanned out before the crash.
    pub delivered_seq: u64,
}

/// A room died; its state is in the report.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RoomCrashed(pub RoomCrash);

/// A transfer as the admin console sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferInfo {
    pub id: Uuid,
    pub from: User,
    /// Recipients still taking part (or invited).
    pub to: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    pub name: String,
    pub size: u64,
    /// Bytes every active receiver has acknowledged.
    pub acked: u64,
    /// Bytes the sender has sent.
    pub sent: u64,
    /// `offered`, `streaming` or `paused`.
    pub state: &'static str,
}

/// Asks a transfer how it stands.
#[derive(Debug, Message)]
#[rtype(result = "Option<TransferInfo>")]
pub struct Snapshot;

/// Frames for some of the sessions connected to one node: a room sends one of these per
/// node that has members, and that node writes to its own sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub sessions: Vec<SessionId>,
    pub out: Outbound,
    /// For a room's fan-out of a message: the room and the message's `seq`, so that the
    /// receiving node can tell a gap (and heal it) from a duplicate.
    pub room_seq: Option<(RoomName, u64)>,
    /// One session that gets its own frame instead (a message's sender, its copy with
    /// `re`): in the same delivery, so that it arrives exactly when the others do.
    pub personal: Option<(SessionId, Outbound)>,
}
