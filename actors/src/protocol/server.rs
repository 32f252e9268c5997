//! Frames the node sends. A frame is serialised once into an [`Outbound`] and the same
//! bytes are handed to every session that receives it (fan-out never re-serialises).

use super::error::{ErrorCode, ProtocolError};
use super::values::{RequestId, RoomName, User, UserId};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// What a session writes to its socket: a serialised frame, or a close.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Outbound {
    Frame {
        kind: ServerKind,
        json: Arc<str>,
    },
    /// A binary frame (file data), relayed exactly as the sender sent it.
    Binary(#[serde(with = "crate::envelope::payload")] bytes::Bytes),
    /// A WebSocket ping (heartbeat).
    Ping,
    /// A WebSocket pong answering a client's ping.
    Pong(Vec<u8>),
    /// Close the connection with this WebSocket close code and reason.
    Close {
        code: u16,
        reason: String,
    },
}

/// The `type` of a server frame, for metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerKind {
    Welcome,
    Joined,
    Message,
    Presence,
    History,
    Left,
    Pong,
    Error,
    Offered,
    Offer,
    Accepted,
    Declined,
    Progress,
    Complete,
    Failed,
    Cancelled,
    Paused,
    Resume,
    /// A binary frame of file data.
    Data,
}

impl ServerKind {
    pub const ALL: [ServerKind; 19] = [
        ServerKind::Welcome,
        ServerKind::Joined,
        ServerKind::Message,
        ServerKind::Presence,
        ServerKind::History,
        ServerKind::Left,
        ServerKind::Pong,
        ServerKind::Error,
        ServerKind::Offered,
        ServerKind::Offer,
        ServerKind::Accepted,
        ServerKind::Declined,
        ServerKind::Progress,
        ServerKind::Complete,
        ServerKind::Failed,
        ServerKind::Cancelled,
        ServerKind::Paused,
        ServerKind::Resume,
        ServerKind::Data,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Welcome => "welcome",
            ServerKind::Joined => "joined",
            ServerKind::Message => "message",
            ServerKind::Presence => "presence",
            ServerKind::History => "history",
            ServerKind::Left => "left",
            ServerKind::Pong => "pong",
            ServerKind::Error => "error",
            ServerKind::Offered => "offered",
            ServerKind::Offer => "offer",
            ServerKind::Accepted => "accepted",
            ServerKind::Declined => "declined",
            ServerKind::Progress => "progress",
            ServerKind::Complete => "complete",
            ServerKind::Failed => "failed",
            ServerKind::Cancelled => "cancelled",
            ServerKind::Paused => "paused",
            ServerKind::Resume => "resume",
            ServerKind::Data => "data",
        }
    }
}

/// Sizes a client must respect, sent in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeLimits {
    pub chunk_size: u64,
    pub window: u64,
    pub max_file_size: u64,
    /// Longest chat text, in characters.
    pub max_text_chars: usize,
    /// Largest text frame, in bytes.
    pub max_frame_bytes: usize,
}

/// A chat message as clients see it, live or in history.
#[derive(Debug, Clone, Serialize)]
pub struct MessageFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub from: User,
    pub text: Arc<str>,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// A file posted with the message (`say` with `upload`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileAttachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub re: Option<RequestId>,
}

/// A complete upload posted into a conversation: what it is and where to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileAttachment {
    pub upload: Uuid,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// A share link (`/s/<token>`), relative to the node.
    pub url: String,
}

/// Presence of a user in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Joined,
    Left,
    /// The user's last session on the node ended.
    Offline,
}

/// Every frame the node sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        user: &'a User,
        token: &'a str,
        session: uuid::Uuid,
        node: &'a str,
        limits: &'a WelcomeLimits,
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
    },
    Joined {
        room: &'a RoomName,
        members: &'a [User],
        last_seq: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
    },
    Message(&'a MessageFrame),
    Presence {
        room: &'a RoomName,
        user: &'a User,
        status: PresenceStatus,
    },
    Left {
        room: &'a RoomName,
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// The transfer a refused binary frame or transfer command was about.
        #[serde(skip_serializing_if = "Option::is_none")]
        transfer: Option<Uuid>,
        /// The offset of a refused binary frame.
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// To the sender: the offer exists and has this id.
    Offered {
        #[serde(skip_serializing_if = "Option::is_none")]
        re: Option<&'a str>,
        transfer: Uuid,
    },
    /// To recipients: someone offers a file.
    Offer(&'a OfferFrame),
    /// To the sender: a recipient accepted, from `offset`.
    Accepted {
        transfer: Uuid,
        by: &'a User,
        offset: u64,
    },
    /// To the sender: a recipient declined.
    Declined {
        transfer: Uuid,
        by: &'a User,
    },
    /// To the sender: every active recipient holds bytes `[0, offset)`.
    Progress {
        transfer: Uuid,
        offset: u64,
    },
    Complete {
        transfer: Uuid,
        size: u64,
        sha256: &'a str,
    },
    Failed {
        transfer: Uuid,
        reason: &'a str,
        message: &'a str,
    },
    Cancelled {
        transfer: Uuid,
        reason: &'a str,
    },
    /// The other side went away; the transfer waits at `offset`.
    Paused {
        transfer: Uuid,
        offset: u64,
    },
    /// Both sides are back: the sender continues from `offset`.
    Resume {
        transfer: Uuid,
        offset: u64,
    },
}

/// An offer as its recipients see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OfferFrame {
    pub transfer: Uuid,
    pub from: User,
    /// Set when the file is offered to a whole room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    pub name: String,
    pub size: u64,
    pub mime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl<'a> ServerFrame<'a> {
    pub fn kind(&self) -> ServerKind {
        match self {
            ServerFrame::Welcome { .. } => ServerKind::Welcome,
            ServerFrame::Joined { .. } => ServerKind::Joined,
            ServerFrame::Message(_) => ServerKind::Message,
            ServerFrame::Presence { .. } => ServerKind::Presence,
            ServerFrame::Left { .. } => ServerKind::Left,
            ServerFrame::Pong { .. } => ServerKind::Pong,
            ServerFrame::Error { .. } => ServerKind::Error,
            ServerFrame::Offered { .. } => ServerKind::Offered,
            ServerFrame::Offer(_) => ServerKind::Offer,
            ServerFrame::Accepted { .. } => ServerKind::Accepted,
            ServerFrame::Declined { .. } => ServerKind::Declined,
            ServerFrame::Progress { .. } => ServerKind::Progress,
            ServerFrame::Complete { .. } => ServerKind::Complete,
            ServerFrame::Failed { .. } => ServerKind::Failed,
            ServerFrame::Cancelled { .. } => ServerKind::Cancelled,
            ServerFrame::Paused { .. } => ServerKind::Paused,
            ServerFrame::Resume { .. } => ServerKind::Resume,
        }
    }

    /// Serialises the frame once, for any number of receivers.
    pub fn to_outbound(&self) -> Outbound {
        Outbound::Frame {
            kind: self.kind(),
            json: to_json(self).into(),
        }
    }

    pub fn error(re: Option<&'a str>, error: &'a ProtocolError) -> ServerFrame<'a> {
        ServerFrame::Error {
            re,
            code: error.code,
            message: &error.message,
            retry_after_ms: error.retry_after_ms,
            transfer: None,
            offset: None,
        }
    }

    /// An error about a transfer, or about one binary frame of it.
    /// An error about a transfer; `re` when it answers a frame that carried an `id`.
    pub fn transfer_error(
        re: Option<&'a str>,
        transfer: Uuid,
        offset: Option<u64>,
        error: &'a ProtocolError,
    ) -> ServerFrame<'a> {
        ServerFrame::Error {
            re,
            code: error.code,
            message: &error.message,
            retry_after_ms: error.retry_after_ms,
            transfer: Some(transfer),
            offset,
        }
    }
}

/// A `history` reply. `messages` are `message` frames this node serialised itself (from
/// [`MessageFrame::to_json`]), spliced in verbatim so history never re-serialises them.
/// The most bytes of messages one `history` reply carries; a page that would be larger
/// is cut from its oldest end (the client pages on with `before`).
pub const HISTORY_MAX_BYTES: usize = 1024 * 1024;

/// How many of `sizes` (ascending `seq`), counted from the newest, fit in `budget` bytes;
/// at least one, so that paging always moves.
pub fn newest_within(sizes: impl DoubleEndedIterator<Item = usize>, budget: usize) -> usize {
    let mut total = 0usize;
    let mut count = 0;
    for size in sizes.rev() {
        total = total.saturating_add(size);
        if total > budget && count > 0 {
            break;
        }
        count += 1;
    }
    count
}

/// A `history` reply: the newest of `messages` (ascending) that fit in
/// [`HISTORY_MAX_BYTES`].
pub fn history_outbound<'m>(
    re: Option<&str>,
    room: &RoomName,
    with: Option<UserId>,
    messages: impl Iterator<Item = &'m str>,
) -> Outbound {
    let messages: Vec<&str> = messages.collect();
    let keep = newest_within(messages.iter().map(|m| m.len()), HISTORY_MAX_BYTES);
    let messages = messages[messages.len() - keep..].iter().copied();
    let mut json = String::with_capacity(256);
    json.push_str(r#"{"type":"history","#);
    if let Some(re) = re {
        json.push_str(r#""re":"#);
        json.push_str(&to_json(&re));
        json.push(',');
    }
    // A direct conversation's history names the other person, not a room.
    match with {
        Some(user) => {
            json.push_str(r#""with":"#);
            json.push_str(&to_json(&user));
        }
        None => {
            json.push_str(r#""room":"#);
            json.push_str(&to_json(room));
        }
    }
    json.push_str(r#","messages":["#);
    for (i, message) in messages.enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(message);
    }
    json.push_str("]}");
    Outbound::Frame {
        kind: ServerKind::History,
        json: json.into(),
    }
}

impl MessageFrame {
    /// The `message` frame, serialised.
    pub fn to_outbound(&self) -> Outbound {
        Outbound::Frame {
            kind: ServerKind::Message,
            json: self.to_json().into(),
        }
    }

    /// The `message` frame as JSON text.
    pub fn to_json(&self) -> String {
        to_json(&ServerFrame::Message(self))
    }
}

/// Serialises a frame. Every frame type here serialises infallibly (string keys only); the
/// fallback exists so that a bug becomes an `internal` error frame rather than a panic.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        log::error!("failed to serialise a server frame: {e}");
        r#"{"type":"error","code":"internal","message":"the node failed to encode a frame"}"#
            .to_owned()
    })
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
