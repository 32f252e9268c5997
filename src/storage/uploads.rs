//! Uploads: their rows, the owner's quota, and the claim of the one request that may
//! write an upload's bytes (the bytes themselves are in [`super::blobs`]).
//!
//! Every rule here holds across a cluster, because the database decides: the quota check
//! and the insert are one transaction that holds the owner's lock, and a PATCH writes only
//! under a claim that a conditional update granted at the offset it named.

use super::connection::with_conn;
use super::schema::uploads;
use super::DbStore;
use diesel::prelude::*;
use peerlink_actors::now_ms;
use peerlink_actors::protocol::UserId;
use peerlink_actors::store::{StoreError, StoreFuture};
use std::time::Duration;
use uuid::Uuid;

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: Uuid,
    pub owner: UserId,
    pub name: String,
    pub mime: String,
    /// The `Upload-Metadata` header as the client sent it, echoed on `HEAD`.
    pub metadata: String,
    pub length: u64,
    pub received: u64,
    /// SHA-256 state after `received` bytes.
    pub digest: Vec<u8>,
    /// Set once every byte is in.
    pub sha256: Option<String>,
    pub expires_ms: i64,
    /// A request on some node holds a live claim to write it.
    pub writing: bool,
}

type UploadRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Vec<u8>,
    Option<String>,
    i64,
    Option<String>,
    i64,
    i64,
);

fn from_row(row: UploadRow) -> Result<Upload, StoreError> {
    let (
        id,
        owner,
        name,
        mime,
        metadata,
        length,
        received,
        digest,
        sha256,
        expires_ms,
        writer,
        writer_until_ms,
        _settled_us,
    ) = row;
    let corrupt = || StoreError::Unavailable(format!("stored upload {id} is malformed"));
    Ok(Upload {
        id: Uuid::parse_str(&id).map_err(|_| corrupt())?,
        owner: UserId::parse(&owner).map_err(|_| corrupt())?,
        name,
        mime,
        metadata,
        length: u64::try_from(length).map_err(|_| corrupt())?,
        received: u64::try_from(received).map_err(|_| corrupt())?,
        digest,
        sha256,
        expires_ms,
        writing: writer.is_some() && writer_until_ms > now_ms(),
    })
}

fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Creating an upload checks its owner's quota first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaCheck {
    Created,
    /// Refused: the owner's uploads already take `used` bytes.
    OverQuota {
        used: u64,
    },
}

/// What a request that wants to write an upload's bytes was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It is the upload's writer until it lets go or its lease runs out.
    Granted,
    /// Another request, on this node or another, is writing it.
    Busy,
    /// A HEAD told the upload's offset after this request began: the client has moved on
    /// (it dropped this request and asked where to go on).
    Overtaken,
    /// The upload is at this offset, not at the one the request named.
    OffsetIs(u64),
    /// There is no such upload any more.
    Gone,
}

/// The lock key of an owner's quota in PostgreSQL (`pg_advisory_xact_lock`): the first
/// eight bytes of their id. Two owners sharing a key only wait for each other.
fn quota_lock_key(owner: UserId) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(owner.to_string().as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

fn lease_end(lease: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

impl DbStore {
    /// Stores a new upload unless its owner's uploads would then take more than `quota`
    /// bytes (counting every upload of theirs still stored, finished or not).
    ///
    /// The insert comes first and the sum after it, in one transaction that holds the
    /// owner's lock (PostgreSQL: an advisory lock on the owner; SQLite: the insert takes
    /// the database's write lock), so two uploads started together on two nodes cannot
    /// both slip under the quota.
    pub fn create_upload(&self, upload: Upload, quota: u64) -> StoreFuture<QuotaCheck> {
        self.blocking("create_upload", move |conn| {
            let owner = upload.owner.to_string();
            let row = (
                uploads::id.eq(upload.id.to_string()),
                uploads::owner_id.eq(owner.clone()),
                uploads::name.eq(&upload.name),
                uploads::mime.eq(&upload.mime),
                uploads::metadata.eq(&upload.metadata),
                uploads::length.eq(to_db(upload.length)),
                uploads::received.eq(to_db(upload.received)),
                uploads::digest.eq(&upload.digest),
                uploads::sha256.eq(upload.sha256.as_deref()),
                uploads::created_ms.eq(now_ms()),
                uploads::expires_ms.eq(upload.expires_ms),
            );
            let outcome = conn.transaction(|conn| {
                if let super::connection::DbConnection::Postgres(c) = conn {
                    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                        .bind::<diesel::sql_types::BigInt, _>(quota_lock_key(upload.owner))
                        .execute(c)?;
                }
                with_conn!(conn, |c| diesel::insert_into(uploads::table)
                    .values(row)
                    .execute(c))?;
                let lengths: Vec<i64> = with_conn!(conn, |c| uploads::table
                    .filter(uploads::owner_id.eq(&owner))
                    .filter(uploads::id.ne(upload.id.to_string()))
                    .select(uploads::length)
                    .load(c))?;
                let used = lengths
                    .into_iter()
                    .map(|l| u64::try_from(l).unwrap_or(0))
                    .fold(0u64, u64::saturating_add);
                if used.saturating_add(upload.length) > quota {
                    // Undoes the insert.
                    return Err(QuotaRefusal(used).into_diesel());
                }
                Ok(())
            });
            match outcome {
                Ok(()) => Ok(QuotaCheck::Created),
                Err(e) => match QuotaRefusal::from_diesel(&e) {
                    Some(used) => Ok(QuotaCheck::OverQuota { used }),
                    None => Err(unavailable(e)),
                },
            }
        })
    }

    /// Makes the request `writer`, which began at `began_us` (microseconds since the epoch),
    /// the upload's only writer until `lease` from now, if the upload is at `offset`, no
    /// HEAD told its offset after the request began, and nobody holds a live claim on it.
    /// One conditional update: two requests on two nodes cannot both be granted.
    pub fn claim_upload(
        &self,
        id: Uuid,
        offset: u64,
        began_us: i64,
        writer: String,
        lease: Duration,
    ) -> StoreFuture<Claim> {
        self.blocking("claim_upload", move |conn| {
            let now = now_ms();
            let free = uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .filter(uploads::received.eq(to_db(offset)))
                .filter(uploads::settled_us.lt(began_us))
                .filter(
                    uploads::writer
                        .is_null()
                        .or(uploads::writer_until_ms.lt(now)),
                );
            let changes = (
                uploads::writer.eq(Some(writer)),
                uploads::writer_until_ms.eq(lease_end(lease)),
            );
            let granted = with_conn!(conn, |c| diesel::update(free).set(changes).execute(c))
                .map_err(unavailable)?;
            if granted == 1 {
                return Ok(Claim::Granted);
            }
            let found: Option<(i64, i64)> = with_conn!(conn, |c| uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .select((uploads::received, uploads::settled_us))
                .first(c)
                .optional())
            .map_err(unavailable)?;
            Ok(match found {
                None => Claim::Gone,
                Some((received, _)) if received != to_db(offset) => {
                    Claim::OffsetIs(u64::try_from(received).unwrap_or(0))
                }
                Some((_, settled_us)) if settled_us >= began_us => Claim::Overtaken,
                Some(_) => Claim::Busy,
            })
        })
    }

    /// A HEAD is about to tell the upload's offset: unless a request holds a live claim
    /// (then `false`: wait for it), the moment `now_us` is recorded, so that no PATCH that
    /// began before it can claim the upload after it (the nodes' clocks are assumed to
    /// agree to well within a client's round trip, as NTP keeps them).
    pub fn settle_upload(&self, id: Uuid, now_us: i64) -> StoreFuture<bool> {
        self.blocking("settle_upload", move |conn| {
            let unclaimed = uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .filter(
                    uploads::writer
                        .is_null()
                        .or(uploads::writer_until_ms.lt(now_ms())),
                );
            let settled = with_conn!(conn, |c| diesel::update(unclaimed)
                .set(uploads::settled_us.eq(now_us))
                .execute(c))
            .map_err(unavailable)?;
            Ok(settled == 1)
        })
    }

    /// Extends `writer`'s claim; `false` if it no longer holds it.
    pub fn renew_upload_claim(
        &self,
        id: Uuid,
        writer: String,
        lease: Duration,
    ) -> StoreFuture<bool> {
        self.blocking("renew_upload_claim", move |conn| {
            let held = uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .filter(uploads::writer.eq(writer));
            let renewed = with_conn!(conn, |c| diesel::update(held)
                .set(uploads::writer_until_ms.eq(lease_end(lease)))
                .execute(c))
            .map_err(unavailable)?;
            Ok(renewed == 1)
        })
    }

    /// Lets go of `writer`'s claim, if it still holds it; the offset stays.
    pub fn release_upload_claim(&self, id: Uuid, writer: String) -> StoreFuture<()> {
        self.blocking("release_upload_claim", move |conn| {
            let held = uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .filter(uploads::writer.eq(writer));
            with_conn!(conn, |c| diesel::update(held)
                .set((
                    uploads::writer.eq(None::<String>),
                    uploads::writer_until_ms.eq(0),
                ))
                .execute(c))
            .map_err(unavailable)?;
            Ok(())
        })
    }

    pub fn find_upload(&self, id: Uuid) -> StoreFuture<Option<Upload>> {
        self.blocking("find_upload", move |conn| {
            let row: Option<UploadRow> = with_conn!(conn, |c| uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .select((
                    uploads::id,
                    uploads::owner_id,
                    uploads::name,
                    uploads::mime,
                    uploads::metadata,
                    uploads::length,
                    uploads::received,
                    uploads::digest,
                    uploads::sha256,
                    uploads::expires_ms,
                    uploads::writer,
                    uploads::writer_until_ms,
                    uploads::settled_us,
                ))
                .first(c)
                .optional())
            .map_err(unavailable)?;
            row.map(from_row).transpose()
        })
    }

    /// Records the bytes received so far, their digest state and, when complete, the
    /// digest, and lets go of the claim: only while `writer` still holds it. `false` when
    /// it did not (its lease ran out and another request took the upload over).
    pub fn update_upload(
        &self,
        id: Uuid,
        writer: String,
        received: u64,
        digest: Vec<u8>,
        sha256: Option<String>,
    ) -> StoreFuture<bool> {
        self.blocking("update_upload", move |conn| {
            let held = uploads::table
                .filter(uploads::id.eq(id.to_string()))
                .filter(uploads::writer.eq(writer));
            let changes = (
                uploads::received.eq(to_db(received)),
                uploads::digest.eq(digest),
                uploads::sha256.eq(sha256),
                uploads::writer.eq(None::<String>),
                uploads::writer_until_ms.eq(0),
            );
            let updated = with_conn!(conn, |c| diesel::update(held).set(changes).execute(c))
                .map_err(unavailable)?;
            Ok(updated == 1)
        })
    }

    pub fn delete_upload(&self, id: Uuid) -> StoreFuture<()> {
        self.blocking("delete_upload", move |conn| {
            let target = uploads::table.filter(uploads::id.eq(id.to_string()));
            with_conn!(conn, |c| diesel::delete(target).execute(c)).map_err(unavailable)?;
            Ok(())
        })
    }

    /// Removes incomplete uploads whose time is up; returns their ids (to remove the bytes).
    pub fn expire_uploads(&self) -> StoreFuture<Vec<Uuid>> {
        self.blocking("expire_uploads", move |conn| {
            let expired = uploads::table
                .filter(uploads::sha256.is_null())
                .filter(uploads::expires_ms.lt(now_ms()));
            let ids: Vec<String> =
                with_conn!(conn, |c| expired.select(uploads::id).load(c)).map_err(unavailable)?;
            let doomed = uploads::table.filter(uploads::id.eq_any(&ids));
            with_conn!(conn, |c| diesel::delete(doomed).execute(c)).map_err(unavailable)?;
            Ok(ids
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect())
        })
    }
}

/// The quota refusal, carried out of the transaction as the error that rolls it back.
struct QuotaRefusal(u64);

impl QuotaRefusal {
    const TAG: &'static str = "peerlink: over quota, ";

    fn into_diesel(self) -> diesel::result::Error {
        diesel::result::Error::QueryBuilderError(format!("{}{}", Self::TAG, self.0).into())
    }

    fn from_diesel(e: &diesel::result::Error) -> Option<u64> {
        match e {
            diesel::result::Error::QueryBuilderError(inner) => inner
                .to_string()
                .strip_prefix(Self::TAG)
                .and_then(|used| used.parse().ok()),
            _ => None,
        }
    }
}
