//! The storage port: what the actors need from durable storage, and nothing about how.
//!
//! The node implements [`Store`] over Diesel (SQLite or PostgreSQL). Every method returns a
//! future that completes without blocking the caller's event loop; writes of chat messages
//! are group-committed, and their future completes only once the transaction is durable.

use crate::protocol::{FileAttachment, RoomName, User, UserId};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// The future every store call returns.
pub type StoreFuture<T> = BoxFuture<'static, Result<T, StoreError>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The token is unknown, or its user has been inactive longer than `session_ttl`.
    #[error("the token is unknown or has expired")]
    UnknownToken,
    /// A message names a user that does not exist.
    #[error("there is no such user")]
    UnknownUser,
    /// The request names something that does not exist (or is not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state of what it names.
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached or failed; the caller may retry later.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// The write carried an ownership epoch that is no longer current: another node has
    /// taken the thing over. Never retried: the writer stops serving it.
    #[error("{0} is owned by another node now")]
    Fenced(String),
}

/// What a node can own in a cluster: one active actor each, fenced by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedKind {
    Room,
    Conversation,
    Transfer,
}

impl OwnedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedKind::Room => "room",
            OwnedKind::Conversation => "conversation",
            OwnedKind::Transfer => "transfer",
        }
    }
}

/// The proof of ownership a write carries: the epoch the database gave the owner when it
/// took the thing over. The write commits only while that epoch is still the current one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub kind: OwnedKind,
    pub key: String,
    pub epoch: u64,
}

impl Fence {
    /// The error a refused write gets.
    pub fn refused(&self) -> StoreError {
        StoreError::Fenced(format!("{} {}", self.kind.as_str(), self.key))
    }
}

/// A new identity: its user and the token, in plain text, which is shown exactly once.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub user: User,
    pub token: String,
}

/// A room message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub room: RoomName,
    pub seq: u64,
    pub from: User,
    pub text: Arc<str>,
    pub at_ms: i64,
    pub file: Option<FileAttachment>,
}

/// A direct message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectMessage {
    pub id: uuid::Uuid,
    pub from: User,
    pub to: UserId,
    pub text: Arc<str>,
    pub at_ms: i64,
    pub file: Option<FileAttachment>,
}

/// What a room needs to come alive: its last `seq` and its most recent messages.
#[derive(Debug, Clone, Default)]
pub struct RoomSnapshot {
    pub last_seq: u64,
    /// Ascending by `seq`, at most the number asked for.
    pub recent: Vec<StoredMessage>,
}

/// A receiver of a transfer, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiverRecord {
    pub id: UserId,
    pub name: String,
    pub acked: u64,
    /// Accepted and still taking part (not declined, left or cancelled).
    pub active: bool,
    /// Offered the file and has not answered yet (neither `active` nor `invited`: gone).
    #[serde(default)]
    pub invited: bool,
}

/// A transfer, as stored from its offer on so that it survives a restart of the node.
/// With no active receiver it is still an offer waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: uuid::Uuid,
    pub sender: User,
    pub room: Option<RoomName>,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub sha256: Option<String>,
    pub receivers: Vec<ReceiverRecord>,
    /// Bytes every active receiver acknowledged and the node hashed.
    pub acked: u64,
    /// The SHA-256 state after `acked` bytes (`Sha256State::to_bytes`).
    pub digest: Vec<u8>,
}

/// Durable storage as the actors see it.
pub trait Store: Send + Sync + 'static {
    /// Creates a user named `name` and a token for it.
    fn create_identity(&self, name: String) -> StoreFuture<NewIdentity>;
    /// Finds the user a token belongs to and marks the token used now.
    fn authenticate(&self, token: String) -> StoreFuture<User>;
    /// Marks a token used now (its user was active), extending its validity. Fire and
    /// forget: callable from `Drop`, outside any runtime.
    fn touch_token(&self, token: String);
    fn find_user(&self, id: UserId) -> StoreFuture<Option<User>>;
    /// Records that the room exists (someone joined it); ordered before any of its messages.
    fn create_room(&self, room: RoomName) -> StoreFuture<()>;
    /// The room's last `seq` and up to `keep` recent messages (nothing for a new room).
    fn load_room(&self, room: RoomName, keep: usize) -> StoreFuture<RoomSnapshot>;
    /// Takes `kind`/`key` over for this node incarnation: the fence epoch goes up by one and
    /// the new one is returned. Every later write fenced with an older epoch is refused.
    fn claim_ownership(
        &self,
        kind: OwnedKind,
        key: String,
        node: String,
        incarnation: u64,
    ) -> StoreFuture<u64>;
    /// Stores a room message; completes once its transaction has committed. With a fence,
    /// the transaction commits it only if the fence's epoch is still current
    /// ([`StoreError::Fenced`] otherwise).
    fn append_message(&self, message: StoredMessage, fence: Option<Fence>) -> StoreFuture<()>;
    /// Stores a direct message; completes once its transaction has committed.
    fn append_direct(&self, message: DirectMessage) -> StoreFuture<()>;
    /// Stores a transfer as it is now (insert or replace); ordered with the other writes.
    fn save_transfer(&self, record: TransferRecord) -> StoreFuture<()>;
    /// Records that `acked` bytes of a transfer are hashed, and the digest state there.
    /// Fenced like [`Store::append_message`].
    fn transfer_progress(
        &self,
        id: uuid::Uuid,
        acked: u64,
        digest: Vec<u8>,
        fence: Option<Fence>,
    ) -> StoreFuture<()>;
    /// Forgets a finished transfer. Fire and forget.
    fn forget_transfer(&self, id: uuid::Uuid);
    /// Every stored transfer, for a node that starts.
    fn load_transfers(&self) -> StoreFuture<Vec<TransferRecord>>;
    /// One stored transfer (`None` when it finished or never was).
    fn load_transfer(&self, id: uuid::Uuid) -> StoreFuture<Option<TransferRecord>>;
    /// The stored transfers `user` sends or receives (or was offered), by id.
    fn transfers_of(&self, user: UserId) -> StoreFuture<Vec<uuid::Uuid>>;
    /// Makes a complete upload of `owner` postable: a share link and what to show of it.
    fn attach_upload(&self, owner: UserId, upload: uuid::Uuid) -> StoreFuture<FileAttachment>;
    /// Up to `limit` messages of `room` with `seq < before`, ascending.
    fn history(&self, room: RoomName, before: u64, limit: usize)
        -> StoreFuture<Vec<StoredMessage>>;
}
