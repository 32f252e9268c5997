//! Group commit: one thread writes chat messages for the whole node.
//!
//! Callers queue a write and await its reply. The thread takes everything queued (up to
//! [`MAX_BATCH`]), writes it in one transaction, and replies to each only after the commit:
//! under load many messages share one commit (one fsync), and nothing is acknowledged
//! before it is durable. If a batch fails, its writes are retried one by one so that one
//! bad row cannot fail its neighbours.
//!
//! Writes that commit a room's `seq` or move a transfer's offset may carry a [`Fence`]: the
//! transaction first reads the current epoch of each fenced thing (in PostgreSQL with
//! `FOR SHARE`, so that a takeover waits for this commit and this commit sees a takeover
//! that committed first) and leaves out every write whose epoch is no longer current. Those
//! get [`StoreError::Fenced`]; their neighbours commit.

use super::connection::{with_conn, DbConnection, Pool};
use super::schema::{direct_messages, messages, owners, rooms, tokens, transfers};
use super::{map_write_error, StorageError};
use diesel::prelude::*;
use peerlink_actors::metrics::METRICS;
use peerlink_actors::protocol::RoomName;
use peerlink_actors::store::{DirectMessage, Fence, StoreError, StoredMessage, TransferRecord};
use std::collections::HashSet;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Most writes one transaction takes.
pub const MAX_BATCH: usize = 512;

pub type Reply = oneshot::Sender<Result<(), StoreError>>;

pub enum WriteJob {
    /// A room comes into being; queued before its first message, so the order holds.
    Room(RoomName, Reply),
    Message(StoredMessage, Option<Fence>, Reply),
    Direct(DirectMessage, Reply),
    /// A transfer as it is now (insert or replace).
    SaveTransfer(TransferRecord, Reply),
    /// How far a transfer is hashed, and its digest state there.
    TransferProgress {
        id: Uuid,
        acked: u64,
        digest: Vec<u8>,
        fence: Option<Fence>,
        reply: Reply,
    },
    /// A finished transfer; nobody waits for it.
    ForgetTransfer(Uuid),
    /// Marks a token (by hash) used at a time; nobody waits for it.
    Touch {
        hash: String,
        at_ms: i64,
    },
}

/// The queue into the writer thread. Dropping every clone stops the thread after it has
/// written what was queued.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteJob>,
}

impl Writer {
    pub fn start(pool: Pool) -> Result<(Writer, JoinHandle<()>), StorageError> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("peerlink-writer".into())
            .spawn(move || run(pool, rx))
            .map_err(|e| StorageError::Connect(format!("cannot start the writer thread: {e}")))?;
        Ok((Writer { tx }, handle))
    }

    pub fn submit(&self, job: WriteJob) {
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            reply(
                job,
                Err(StoreError::Unavailable("the node is shutting down".into())),
            );
        }
    }
}

fn run(pool: Pool, rx: mpsc::Receiver<WriteJob>) {
    while let Some(batch) = peerlink_actors::batch::next_batch(&rx, MAX_BATCH) {
        commit(&pool, batch);
    }
}

fn commit(pool: &Pool, batch: Vec<WriteJob>) {
    let started = Instant::now();
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            let error = StoreError::Unavailable(format!("no database connection: {e}"));
            return batch
                .into_iter()
                .for_each(|job| reply(job, Err(error.clone())));
        }
    };
    let together = conn.transaction(|c| write_unfenced(c, &batch));
    METRICS
        .db_seconds
        .with_label_values(&["commit"])
        .observe(started.elapsed().as_secs_f64());
    METRICS.commit_batch.observe(batch.len() as f64);
    match together {
        Ok(refused) => {
            for job in batch {
                let result = match fence_of(&job) {
                    Some(fence) if refused.contains(fence) => Err(fence.refused()),
                    _ => Ok(()),
                };
                reply(job, result);
            }
        }
        Err(e) if batch.len() == 1 => {
            let error = map_write_error(e);
            batch
                .into_iter()
                .for_each(|job| reply(job, Err(error.clone())));
        }
        Err(e) => {
            log::warn!(
                "a commit of {} writes failed ({e}); retrying them one by one",
                batch.len()
            );
            for job in batch {
                let alone = conn.transaction(|c| write_unfenced(c, std::slice::from_ref(&job)));
                let result = match (alone, fence_of(&job)) {
                    (Ok(refused), Some(fence)) if refused.contains(fence) => Err(fence.refused()),
                    (Ok(_), _) => Ok(()),
                    (Err(e), _) => Err(map_write_error(e)),
                };
                reply(job, result);
            }
        }
    }
}

/// Writes every job of `batch` whose fence (if any) is current; returns the fences refused.
fn write_unfenced(
    conn: &mut DbConnection,
    batch: &[WriteJob],
) -> Result<HashSet<Fence>, diesel::result::Error> {
    let mut checked: HashSet<&Fence> = HashSet::new();
    let mut refused: HashSet<Fence> = HashSet::new();
    for fence in batch.iter().filter_map(fence_of) {
        if checked.insert(fence) && !fence_holds(conn, fence)? {
            refused.insert(fence.clone());
        }
    }
    for job in batch {
        if fence_of(job).is_none_or(|fence| !refused.contains(fence)) {
            write(conn, job)?;
        }
    }
    Ok(refused)
}

fn fence_of(job: &WriteJob) -> Option<&Fence> {
    match job {
        WriteJob::Message(_, fence, _) | WriteJob::TransferProgress { fence, .. } => fence.as_ref(),
        _ => None,
    }
}

/// Whether `fence.epoch` is still the owner's epoch. In PostgreSQL the row stays locked
/// (shared) until the transaction ends, so a takeover cannot slip in between.
fn fence_holds(conn: &mut DbConnection, fence: &Fence) -> Result<bool, diesel::result::Error> {
    let row = owners::table
        .filter(owners::kind.eq(fence.kind.as_str()))
        .filter(owners::key.eq(&fence.key))
        .select(owners::epoch);
    let epoch: Option<i64> = match conn {
        DbConnection::Postgres(c) => row.for_share().first(c).optional()?,
        DbConnection::Sqlite(c) => row.first(c).optional()?,
    };
    Ok(epoch == Some(to_db(fence.epoch)))
}

fn write(conn: &mut DbConnection, job: &WriteJob) -> Result<(), diesel::result::Error> {
    match job {
        WriteJob::Room(room, _) => {
            let row = (
                rooms::name.eq(room.as_str()),
                rooms::created_ms.eq(peerlink_actors::now_ms()),
            );
            with_conn!(conn, |c| diesel::insert_into(rooms::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        WriteJob::Message(m, _, _) => {
            let row = (
                messages::room.eq(m.room.as_str()),
                messages::seq.eq(i64::try_from(m.seq).unwrap_or(i64::MAX)),
                messages::user_id.eq(m.from.id.to_string()),
                messages::user_name.eq(m.from.name.as_ref()),
                messages::body.eq(m.text.as_ref()),
                messages::at_ms.eq(m.at_ms),
                messages::attachment.eq(attachment_json(m.file.as_ref())?),
            );
            with_conn!(conn, |c| diesel::insert_into(messages::table)
                .values(row)
                .execute(c))?;
        }
        WriteJob::Direct(m, _) => {
            let row = (
                direct_messages::id.eq(m.id.to_string()),
                direct_messages::from_id.eq(m.from.id.to_string()),
                direct_messages::from_name.eq(m.from.name.as_ref()),
                direct_messages::to_id.eq(m.to.to_string()),
                direct_messages::body.eq(m.text.as_ref()),
                direct_messages::at_ms.eq(m.at_ms),
                direct_messages::attachment.eq(attachment_json(m.file.as_ref())?),
            );
            with_conn!(conn, |c| diesel::insert_into(direct_messages::table)
                .values(row)
                .execute(c))?;
        }
        WriteJob::SaveTransfer(record, _) => save_transfer(conn, record)?,
        WriteJob::TransferProgress {
            id, acked, digest, ..
        } => {
            let target = transfers::table.filter(transfers::id.eq(id.to_string()));
            let changes = (
                transfers::acked.eq(to_db(*acked)),
                transfers::digest.eq(digest),
                transfers::updated_ms.eq(peerlink_actors::now_ms()),
            );
            with_conn!(conn, |c| diesel::update(target).set(changes).execute(c))?;
        }
        WriteJob::ForgetTransfer(id) => {
            let target = transfers::table.filter(transfers::id.eq(id.to_string()));
            with_conn!(conn, |c| diesel::delete(target).execute(c))?;
        }
        WriteJob::Touch { hash, at_ms } => {
            let target = tokens::table.filter(tokens::hash.eq(hash));
            with_conn!(conn, |c| diesel::update(target)
                .set(tokens::last_used_ms.eq(at_ms))
                .execute(c))?;
        }
    }
    Ok(())
}

fn reply(job: WriteJob, result: Result<(), StoreError>) {
    match job {
        WriteJob::Room(_, reply)
        | WriteJob::Message(_, _, reply)
        | WriteJob::Direct(_, reply)
        | WriteJob::SaveTransfer(_, reply)
        | WriteJob::TransferProgress { reply, .. } => {
            let _ = reply.send(result);
        }
        WriteJob::ForgetTransfer(id) => {
            if let Err(e) = result {
                log::warn!("could not forget transfer {id}: {e}");
            }
        }
        WriteJob::Touch { .. } => {
            if let Err(e) = result {
                log::warn!("could not record token use: {e}");
            }
        }
    }
}

/// A posted file, as the JSON the message row keeps.
fn attachment_json(
    file: Option<&peerlink_actors::protocol::FileAttachment>,
) -> Result<Option<String>, diesel::result::Error> {
    file.map(serde_json::to_string)
        .transpose()
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

pub(crate) fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn save_transfer(
    conn: &mut DbConnection,
    record: &TransferRecord,
) -> Result<(), diesel::result::Error> {
    let receivers = serde_json::to_string(&record.receivers)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let now = peerlink_actors::now_ms();
    let row = (
        transfers::id.eq(record.id.to_string()),
        transfers::sender_id.eq(record.sender.id.to_string()),
        transfers::sender_name.eq(record.sender.name.as_ref()),
        transfers::room.eq(record.room.as_ref().map(|r| r.as_str())),
        transfers::name.eq(&record.name),
        transfers::size.eq(to_db(record.size)),
        transfers::mime.eq(&record.mime),
        transfers::sha256.eq(record.sha256.as_deref()),
        transfers::receivers.eq(&receivers),
        transfers::acked.eq(to_db(record.acked)),
        transfers::digest.eq(&record.digest),
        transfers::created_ms.eq(now),
        transfers::updated_ms.eq(now),
    );
    // A stored transfer only ever moves forward through `TransferProgress`; saving again
    // updates who receives it.
    let changes = (
        transfers::receivers.eq(&receivers),
        transfers::updated_ms.eq(now),
    );
    with_conn!(conn, |c| diesel::insert_into(transfers::table)
        .values(row)
        .on_conflict(transfers::id)
        .do_update()
        .set(changes)
        .execute(c))?;
    Ok(())
}
