//! Storage: the node's implementation of the actors' [`Store`] port over Diesel.
//!
//! Reads run on tokio's blocking pool; chat writes go through the group-commit
//! [`writer`]. Nothing here ever runs on an actor's event loop.

pub mod blobs;
pub mod connection;
pub mod disk;
pub mod schema;
pub mod shares;
pub mod uploads;
pub mod writer;

use crate::token;
use connection::{with_conn, DatabaseUrl, DbConnection, Pool, SqliteSync};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use peerlink_actors::metrics::METRICS;
use peerlink_actors::now_ms;
use peerlink_actors::protocol::{FileAttachment, RoomName, User, UserId};
use peerlink_actors::store::{
    DirectMessage, Fence, NewIdentity, OwnedKind, RoomSnapshot, Store, StoreError, StoreFuture,
    StoredMessage, TransferRecord,
};
use schema::{messages, nodes, owners, rooms, tokens, users};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use writer::{to_db, WriteJob, Writer};

/// A token is marked used again once a tenth of its lifetime has passed since the last
/// mark, not on every request: expiry stays exact to within that tenth.
const TOKEN_TOUCH_FRACTION: i64 = 10;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(String),
}

impl From<DieselError> for StorageError {
    fn from(e: DieselError) -> Self {
        StorageError::Query(e.to_string())
    }
}

impl From<r2d2::Error> for StorageError {
    fn from(e: r2d2::Error) -> Self {
        StorageError::Connect(e.to_string())
    }
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// A failed insert: a row naming a user that does not exist is the caller's mistake, the
/// rest is the database's.
pub(crate) fn map_write_error(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::UnknownUser
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Stored transfers: all of them, or the one with `id`.
fn load_transfer_rows(
    conn: &mut DbConnection,
    id: Option<uuid::Uuid>,
) -> Result<Vec<TransferRecord>, StoreError> {
    use schema::transfers;
    let columns = (
        transfers::id,
        transfers::sender_id,
        transfers::sender_name,
        transfers::room,
        transfers::name,
        transfers::size,
        transfers::mime,
        transfers::sha256,
        transfers::receivers,
        transfers::acked,
        transfers::digest,
    );
    let rows: Vec<TransferRow> = match id {
        Some(id) => with_conn!(conn, |c| transfers::table
            .filter(transfers::id.eq(id.to_string()))
            .select(columns)
            .load(c)),
        None => with_conn!(conn, |c| transfers::table.select(columns).load(c)),
    }
    .map_err(unavailable)?;
    rows.into_iter().map(transfer_from_row).collect()
}

/// A room as `GET /api/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoomSummary {
    pub name: String,
    pub last_seq: u64,
}

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: DatabaseUrl,
    pub sqlite_sync: SqliteSync,
    pub pool_size: u32,
    /// Tokens unused for longer than this are refused.
    pub session_ttl: Duration,
}

pub struct DbStore {
    pool: Pool,
    writer: Writer,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    session_ttl_ms: i64,
}

impl DbStore {
    /// Connects, applies pending migrations and starts the writer thread.
    pub fn open(config: &StoreConfig) -> Result<Arc<DbStore>, StorageError> {
        let pool = connection::open_pool(&config.url, config.sqlite_sync, config.pool_size)?;
        let applied = connection::run_migrations(&mut *pool.get()?)?;
        for version in applied {
            log::info!("applied migration {version}");
        }
        let (writer, thread) = Writer::start(pool.clone())?;
        Ok(Arc::new(DbStore {
            pool,
            writer,
            writer_thread: Mutex::new(Some(thread)),
            session_ttl_ms: i64::try_from(config.session_ttl.as_millis()).unwrap_or(i64::MAX),
        }))
    }

    /// Records that node `id` starts again and returns its new incarnation (1 on its first
    /// start): what it held before this start is told apart from what it holds now.
    pub fn register_node(&self, id: &str) -> Result<u64, StorageError> {
        let mut conn = self.pool.get()?;
        let row = (
            nodes::id.eq(id),
            nodes::incarnation.eq(1),
            nodes::started_ms.eq(now_ms()),
        );
        let again = (
            nodes::incarnation.eq(nodes::incarnation + 1),
            nodes::started_ms.eq(now_ms()),
        );
        let incarnation: i64 = with_conn!(&mut *conn, |c| diesel::insert_into(nodes::table)
            .values(row)
            .on_conflict(nodes::id)
            .do_update()
            .set(again)
            .returning(nodes::incarnation)
            .get_result(c))?;
        Ok(to_seq(incarnation))
    }

    /// Runs `work` with a pooled connection on the blocking pool, timing it as `op`.
    pub(crate) fn blocking<T, F>(&self, op: &'static str, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let mut conn = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))?;
                let result = work(&mut conn);
                METRICS
                    .db_seconds
                    .with_label_values(&[op])
                    .observe(started.elapsed().as_secs_f64());
                result
            });
            task.await
                .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
        })
    }

    fn commit(&self, job: impl FnOnce(writer::Reply) -> WriteJob) -> StoreFuture<()> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.writer.submit(job(reply));
        Box::pin(async move {
            done.await
                .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
        })
    }

    /// Whether the database answers (for `/readyz`).
    pub fn ping(&self) -> StoreFuture<()> {
        self.blocking("ping", |conn| {
            diesel::connection::SimpleConnection::batch_execute(conn, "SELECT 1")
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
    }

    /// Every room with its last `seq`, by name.
    pub fn list_rooms(&self) -> StoreFuture<Vec<RoomSummary>> {
        self.blocking("list_rooms", |conn| {
            // Direct conversations are stored as rooms too; they are nobody else's business.
            let names: Vec<String> = with_conn!(conn, |c| rooms::table
                .select(rooms::name)
                .filter(rooms::name.not_like("dm.%"))
                .order(rooms::name)
                .load(c))
            .map_err(unavailable)?;
            let last: Vec<(String, Option<i64>)> = with_conn!(conn, |c| messages::table
                .group_by(messages::room)
                .select((messages::room, diesel::dsl::max(messages::seq)))
                .load(c))
            .map_err(unavailable)?;
            let last: std::collections::HashMap<String, i64> =
                last.into_iter().map(|(r, s)| (r, s.unwrap_or(0))).collect();
            Ok(names
                .into_iter()
                .map(|name| RoomSummary {
                    last_seq: last.get(&name).copied().map_or(0, to_seq),
                    name,
                })
                .collect())
        })
    }

    /// Waits for the writer to finish what is queued. Call after every sender is gone.
    pub fn close(self: Arc<Self>) {
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        drop(self);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn unavailable(e: DieselError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn to_seq(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

fn user_from_row(id: &str, name: String) -> Result<User, StoreError> {
    let id = UserId::parse(id)
        .map_err(|_| StoreError::Unavailable(format!("stored user id {id:?} is not a UUID")))?;
    Ok(User {
        id,
        name: name.into(),
    })
}

type MessageRow = (String, i64, String, String, String, i64, Option<String>);

type TransferRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    String,
    Option<String>,
    String,
    i64,
    Vec<u8>,
);

fn transfer_from_row(row: TransferRow) -> Result<TransferRecord, StoreError> {
    let (id, sender_id, sender_name, room, name, size, mime, sha256, receivers, acked, digest) =
        row;
    let corrupt =
        |what: &str| StoreError::Unavailable(format!("stored transfer {id} has a bad {what}"));
    Ok(TransferRecord {
        id: uuid::Uuid::parse_str(&id).map_err(|_| corrupt("id"))?,
        sender: user_from_row(&sender_id, sender_name)?,
        room: room
            .map(|r| RoomName::parse(&r))
            .transpose()
            .map_err(|_| corrupt("room"))?,
        name,
        size: to_seq(size),
        mime,
        sha256,
        receivers: serde_json::from_str(&receivers).map_err(|_| corrupt("receiver list"))?,
        acked: to_seq(acked),
        digest,
    })
}

fn message_from_row(room: &RoomName, row: MessageRow) -> Result<StoredMessage, StoreError> {
    let (_, seq, user_id, user_name, body, at_ms, attachment) = row;
    let file = attachment
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "message {seq} of {room} has a malformed attachment"
            ))
        })?;
    Ok(StoredMessage {
        room: room.clone(),
        seq: to_seq(seq),
        from: user_from_row(&user_id, user_name)?,
        text: body.into(),
        at_ms,
        file,
    })
}

impl Store for DbStore {
    fn create_identity(&self, name: String) -> StoreFuture<NewIdentity> {
        self.blocking("create_identity", move |conn| {
            let user = User {
                id: UserId::new_random(),
                name: name.into(),
            };
            let token = token::generate();
            let now = now_ms();
            let user_row = (
                users::id.eq(user.id.to_string()),
                users::name.eq(user.name.as_ref()),
                users::created_ms.eq(now),
            );
            let token_row = (
                tokens::hash.eq(token::hash(&token)),
                tokens::user_id.eq(user.id.to_string()),
                tokens::created_ms.eq(now),
                tokens::last_used_ms.eq(now),
            );
            conn.transaction(|conn| {
                with_conn!(conn, |c| diesel::insert_into(users::table)
                    .values(user_row)
                    .execute(c))?;
                with_conn!(conn, |c| diesel::insert_into(tokens::table)
                    .values(token_row)
                    .execute(c))
            })
            .map_err(unavailable)?;
            Ok(NewIdentity { user, token })
        })
    }

    fn authenticate(&self, token: String) -> StoreFuture<User> {
        let ttl_ms = self.session_ttl_ms;
        if !token::looks_valid(&token) {
            return Box::pin(async { Err(StoreError::UnknownToken) });
        }
        self.blocking("authenticate", move |conn| {
            let hash = token::hash(&token);
            let now = now_ms();
            let found: Option<(String, String, i64)> = with_conn!(conn, |c| tokens::table
                .inner_join(users::table)
                .filter(tokens::hash.eq(&hash))
                .select((users::id, users::name, tokens::last_used_ms))
                .first(c)
                .optional())
            .map_err(unavailable)?;
            let Some((id, name, last_used_ms)) = found else {
                return Err(StoreError::UnknownToken);
            };
            if now.saturating_sub(last_used_ms) > ttl_ms {
                return Err(StoreError::UnknownToken);
            }
            // Marking the token used is bookkeeping: a failed write (a full disk, say) must not
            // lock the user out, and a token used a moment ago needs no new write.
            if now.saturating_sub(last_used_ms) >= ttl_ms / TOKEN_TOUCH_FRACTION {
                let target = tokens::table.filter(tokens::hash.eq(&hash));
                if let Err(e) = with_conn!(conn, |c| diesel::update(target)
                    .set(tokens::last_used_ms.eq(now))
                    .execute(c))
                {
                    log::warn!("could not mark a token used: {e}");
                }
            }
            user_from_row(&id, name)
        })
    }

    fn touch_token(&self, token: String) {
        self.writer.submit(WriteJob::Touch {
            hash: token::hash(&token),
            at_ms: now_ms(),
        });
    }

    fn find_user(&self, id: UserId) -> StoreFuture<Option<User>> {
        self.blocking("find_user", move |conn| {
            let name: Option<String> = with_conn!(conn, |c| users::table
                .filter(users::id.eq(id.to_string()))
                .select(users::name)
                .first(c)
                .optional())
            .map_err(unavailable)?;
            Ok(name.map(|name| User {
                id,
                name: name.into(),
            }))
        })
    }

    fn load_room(&self, room: RoomName, keep: usize) -> StoreFuture<RoomSnapshot> {
        self.blocking("load_room", move |conn| {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let mut rows: Vec<MessageRow> = with_conn!(conn, |c| messages::table
                .filter(messages::room.eq(room.as_str()))
                .order(messages::seq.desc())
                .limit(keep)
                .load(c))
            .map_err(unavailable)?;
            rows.reverse();
            let recent = rows
                .into_iter()
                .map(|row| message_from_row(&room, row))
                .collect::<Result<Vec<_>, _>>()?;
            let last_seq = match recent.last() {
                Some(last) => last.seq,
                None => {
                    let max: Option<i64> = with_conn!(conn, |c| messages::table
                        .filter(messages::room.eq(room.as_str()))
                        .select(diesel::dsl::max(messages::seq))
                        .first(c))
                    .map_err(unavailable)?;
                    max.map_or(0, to_seq)
                }
            };
            Ok(RoomSnapshot { last_seq, recent })
        })
    }

    fn create_room(&self, room: RoomName) -> StoreFuture<()> {
        self.commit(|reply| WriteJob::Room(room, reply))
    }

    fn save_transfer(&self, record: TransferRecord) -> StoreFuture<()> {
        self.commit(|reply| WriteJob::SaveTransfer(record, reply))
    }

    fn transfer_progress(
        &self,
        id: uuid::Uuid,
        acked: u64,
        digest: Vec<u8>,
        fence: Option<Fence>,
    ) -> StoreFuture<()> {
        self.commit(|reply| WriteJob::TransferProgress {
            id,
            acked,
            digest,
            fence,
            reply,
        })
    }

    fn forget_transfer(&self, id: uuid::Uuid) {
        self.writer.submit(WriteJob::ForgetTransfer(id));
    }

    fn load_transfers(&self) -> StoreFuture<Vec<TransferRecord>> {
        self.blocking("load_transfers", |conn| load_transfer_rows(conn, None))
    }

    fn load_transfer(&self, id: uuid::Uuid) -> StoreFuture<Option<TransferRecord>> {
        self.blocking("load_transfer", move |conn| {
            Ok(load_transfer_rows(conn, Some(id))?.into_iter().next())
        })
    }

    fn transfers_of(&self, user: UserId) -> StoreFuture<Vec<uuid::Uuid>> {
        self.blocking("transfers_of", move |conn| {
            use schema::transfers;
            let id = user.to_string();
            // Receivers are a JSON list; a user id (a UUID) appears in it only as that user.
            let ids: Vec<String> = with_conn!(conn, |c| transfers::table
                .filter(
                    transfers::sender_id
                        .eq(&id)
                        .or(transfers::receivers.like(format!("%{id}%"))),
                )
                .select(transfers::id)
                .load(c))
            .map_err(unavailable)?;
            Ok(ids
                .iter()
                .filter_map(|id| uuid::Uuid::parse_str(id).ok())
                .collect())
        })
    }

    fn attach_upload(&self, owner: UserId, upload: uuid::Uuid) -> StoreFuture<FileAttachment> {
        self.share_upload(owner, upload)
    }

    fn claim_ownership(
        &self,
        kind: OwnedKind,
        key: String,
        node: String,
        incarnation: u64,
    ) -> StoreFuture<u64> {
        self.blocking("claim_ownership", move |conn| {
            let row = (
                owners::kind.eq(kind.as_str()),
                owners::key.eq(&key),
                owners::epoch.eq(1),
                owners::node.eq(&node),
                owners::incarnation.eq(to_db(incarnation)),
                owners::claimed_ms.eq(now_ms()),
            );
            let taken_over = (
                owners::epoch.eq(owners::epoch + 1),
                owners::node.eq(&node),
                owners::incarnation.eq(to_db(incarnation)),
                owners::claimed_ms.eq(now_ms()),
            );
            let epoch: i64 = with_conn!(conn, |c| diesel::insert_into(owners::table)
                .values(row)
                .on_conflict((owners::kind, owners::key))
                .do_update()
                .set(taken_over)
                .returning(owners::epoch)
                .get_result(c))
            .map_err(unavailable)?;
            Ok(to_seq(epoch))
        })
    }

    fn append_message(&self, message: StoredMessage, fence: Option<Fence>) -> StoreFuture<()> {
        self.commit(|reply| WriteJob::Message(message, fence, reply))
    }

    fn append_direct(&self, message: DirectMessage) -> StoreFuture<()> {
        self.commit(|reply| WriteJob::Direct(message, reply))
    }

    fn history(
        &self,
        room: RoomName,
        before: u64,
        limit: usize,
    ) -> StoreFuture<Vec<StoredMessage>> {
        self.blocking("history", move |conn| {
            let before = i64::try_from(before).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows: Vec<MessageRow> = with_conn!(conn, |c| messages::table
                .filter(messages::room.eq(room.as_str()))
                .filter(messages::seq.lt(before))
                .order(messages::seq.desc())
                .limit(limit)
                .load(c))
            .map_err(unavailable)?;
            rows.reverse();
            rows.into_iter()
                .map(|row| message_from_row(&room, row))
                .collect()
        })
    }
}
