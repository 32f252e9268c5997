//! Uploads: their rows, and the blob store that holds their bytes.
//!
//! A blob's file name is the upload's id, made by the node; no name a user chose ever
//! reaches the disk. Blob writes run on the blocking pool.

use super::connection::with_conn;
use super::schema::uploads;
use super::DbStore;
use diesel::prelude::*;
use peerlink_actors::now_ms;
use peerlink_actors::protocol::UserId;
use peerlink_actors::store::{StoreError, StoreFuture};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
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
);

fn from_row(row: UploadRow) -> Result<Upload, StoreError> {
    let (id, owner, name, mime, metadata, length, received, digest, sha256, expires_ms) = row;
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

/// Quota checks and inserts run one at a time, so two uploads started together cannot both
/// slip under the quota (one node; a cluster would need the check in the database).
static QUOTA_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl DbStore {
    /// Stores a new upload unless its owner's uploads would then take more than `quota`
    /// bytes (counting every upload of theirs still stored, finished or not).
    pub fn create_upload(&self, upload: Upload, quota: u64) -> StoreFuture<QuotaCheck> {
        self.blocking("create_upload", move |conn| {
            let _one_at_a_time = QUOTA_LOCK
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let lengths: Vec<i64> = with_conn!(conn, |c| uploads::table
                .filter(uploads::owner_id.eq(upload.owner.to_string()))
                .select(uploads::length)
                .load(c))
            .map_err(unavailable)?;
            let used = lengths
                .into_iter()
                .map(|l| u64::try_from(l).unwrap_or(0))
                .fold(0u64, u64::saturating_add);
            if used.saturating_add(upload.length) > quota {
                return Ok(QuotaCheck::OverQuota { used });
            }
            let row = (
                uploads::id.eq(upload.id.to_string()),
                uploads::owner_id.eq(upload.owner.to_string()),
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
            with_conn!(conn, |c| diesel::insert_into(uploads::table)
                .values(row)
                .execute(c))
            .map_err(unavailable)?;
            Ok(QuotaCheck::Created)
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
                ))
                .first(c)
                .optional())
            .map_err(unavailable)?;
            row.map(from_row).transpose()
        })
    }

    /// Records the bytes received so far, their digest state and, when complete, the digest.
    pub fn update_upload(
        &self,
        id: Uuid,
        received: u64,
        digest: Vec<u8>,
        sha256: Option<String>,
    ) -> StoreFuture<()> {
        self.blocking("update_upload", move |conn| {
            let target = uploads::table.filter(uploads::id.eq(id.to_string()));
            let changes = (
                uploads::received.eq(to_db(received)),
                uploads::digest.eq(digest),
                uploads::sha256.eq(sha256),
            );
            with_conn!(conn, |c| diesel::update(target).set(changes).execute(c))
                .map_err(unavailable)?;
            Ok(())
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

/// Upload bytes on disk, one file per upload, named by its id.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn open(dir: &Path) -> std::io::Result<BlobStore> {
        std::fs::create_dir_all(dir)?;
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.simple().to_string())
    }

    pub fn create(&self, id: Uuid) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(id))
            .map(drop)
    }

    /// Writes `data` at `offset` (the end of what is there).
    pub fn write_at(&self, id: Uuid, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(id))?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }

    /// Cuts the blob back to `len` bytes (a PATCH whose checksum failed).
    pub fn truncate(&self, id: Uuid, len: u64) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(id))?
            .set_len(len)
    }

    /// Makes the bytes durable before the offset that covers them is recorded.
    pub fn sync(&self, id: Uuid) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(id))?
            .sync_data()
    }

    pub fn remove(&self, id: Uuid) {
        if let Err(e) = std::fs::remove_file(self.path(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("could not remove the bytes of upload {id}: {e}");
            }
        }
    }
}
