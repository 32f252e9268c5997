//! Share links: a token (stored as its hash) that lets anyone download one complete upload
//! until it expires, is revoked, or has been downloaded `max_downloads` times.

use super::connection::with_conn;
use super::schema::{shares, uploads};
use super::DbStore;
use crate::token;
use diesel::prelude::*;
use peerlink_actors::now_ms;
use peerlink_actors::protocol::FileAttachment;
use peerlink_actors::protocol::UserId;
use peerlink_actors::store::{StoreError, StoreFuture};
use uuid::Uuid;

/// How long the link of a file posted in a conversation works: 30 days.
pub const ATTACHMENT_LINK_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub upload: Uuid,
    pub owner: UserId,
    pub expires_ms: i64,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
    pub revoked: bool,
}

impl Share {
    /// Why the link no longer works at all, if it does not. A used-up link may still serve
    /// the rest of a download that broke off: that is decided by its byte budget.
    pub fn gone_because(&self, now_ms: i64) -> Option<&'static str> {
        if self.revoked {
            Some("the link was revoked")
        } else if self.expires_ms <= now_ms {
            Some("the link has expired")
        } else {
            None
        }
    }
}

fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

type ShareRow = (String, String, i64, Option<i64>, i64, Option<i64>);

impl DbStore {
    pub fn create_share(
        &self,
        hash: String,
        upload: Uuid,
        owner: UserId,
        expires_ms: i64,
        max_downloads: Option<u64>,
    ) -> StoreFuture<()> {
        self.blocking("create_share", move |conn| {
            let row = (
                shares::hash.eq(hash),
                shares::upload_id.eq(upload.to_string()),
                shares::owner_id.eq(owner.to_string()),
                shares::created_ms.eq(now_ms()),
                shares::expires_ms.eq(expires_ms),
                shares::max_downloads
                    .eq(max_downloads.map(|m| i64::try_from(m).unwrap_or(i64::MAX))),
                shares::downloads.eq(0i64),
                shares::revoked_ms.eq(None::<i64>),
            );
            with_conn!(conn, |c| diesel::insert_into(shares::table)
                .values(row)
                .execute(c))
            .map_err(unavailable)?;
            Ok(())
        })
    }

    pub fn find_share(&self, hash: String) -> StoreFuture<Option<Share>> {
        self.blocking("find_share", move |conn| {
            let row: Option<ShareRow> = with_conn!(conn, |c| shares::table
                .filter(shares::hash.eq(&hash))
                .select((
                    shares::upload_id,
                    shares::owner_id,
                    shares::expires_ms,
                    shares::max_downloads,
                    shares::downloads,
                    shares::revoked_ms,
                ))
                .first(c)
                .optional())
            .map_err(unavailable)?;
            let Some((upload, owner, expires_ms, max_downloads, downloads, revoked_ms)) = row
            else {
                return Ok(None);
            };
            let corrupt = || StoreError::Unavailable("a stored share link is malformed".into());
            Ok(Some(Share {
                upload: Uuid::parse_str(&upload).map_err(|_| corrupt())?,
                owner: UserId::parse(&owner).map_err(|_| corrupt())?,
                expires_ms,
                max_downloads: max_downloads.map(|m| u64::try_from(m).unwrap_or(0)),
                downloads: u64::try_from(downloads).unwrap_or(0),
                revoked: revoked_ms.is_some(),
            }))
        })
    }

    /// A share link for a complete upload of `owner`, to post it in a conversation: the
    /// check and the new link in one transaction.
    pub fn share_upload(&self, owner: UserId, upload: Uuid) -> StoreFuture<FileAttachment> {
        self.blocking("share_upload", move |conn| {
            conn.transaction(|conn| {
                let found: Option<(String, i64, Option<String>)> =
                    with_conn!(conn, |c| uploads::table
                        .filter(uploads::id.eq(upload.to_string()))
                        .filter(uploads::owner_id.eq(owner.to_string()))
                        .select((uploads::name, uploads::length, uploads::sha256))
                        .first(c)
                        .optional())?;
                let Some((name, length, sha256)) = found else {
                    return Ok(Err(StoreError::NotFound(format!(
                        "there is no upload {upload} of yours"
                    ))));
                };
                let Some(sha256) = sha256 else {
                    return Ok(Err(StoreError::Conflict(
                        "the upload is not complete yet".into(),
                    )));
                };
                let secret = token::generate();
                let row = (
                    shares::hash.eq(token::hash(&secret)),
                    shares::upload_id.eq(upload.to_string()),
                    shares::owner_id.eq(owner.to_string()),
                    shares::created_ms.eq(now_ms()),
                    shares::expires_ms.eq(now_ms() + ATTACHMENT_LINK_TTL_MS),
                    shares::max_downloads.eq(None::<i64>),
                    shares::downloads.eq(0i64),
                    shares::revoked_ms.eq(None::<i64>),
                );
                with_conn!(conn, |c| diesel::insert_into(shares::table)
                    .values(row)
                    .execute(c))?;
                let size = u64::try_from(length).unwrap_or(0);
                Ok(Ok(FileAttachment {
                    upload,
                    name,
                    size,
                    sha256,
                    url: format!("/s/{secret}"),
                }))
            })
            .map_err(unavailable)?
        })
    }

    /// Takes `bytes` from the link's byte budget and, for a download that starts at the
    /// first byte, one of its downloads; `false` when the link does not allow it. `budget`
    /// is `None` for a link without a download limit. The check and the charge are one
    /// statement, so two requests cannot both take what is left.
    pub fn charge_download(
        &self,
        hash: String,
        counts: bool,
        bytes: u64,
        budget: Option<u64>,
    ) -> StoreFuture<bool> {
        self.blocking("charge_download", move |conn| {
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            let budget = budget.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let open = shares::table
                .filter(shares::hash.eq(&hash))
                .filter(shares::revoked_ms.is_null())
                .filter(shares::expires_ms.gt(now_ms()))
                .filter(shares::bytes_served.le(budget.saturating_sub(bytes)));
            let counted = if counts {
                let open = open.filter(
                    shares::max_downloads
                        .is_null()
                        .or(shares::downloads.lt(shares::max_downloads.assume_not_null())),
                );
                with_conn!(conn, |c| diesel::update(open)
                    .set((
                        shares::downloads.eq(shares::downloads + 1),
                        shares::bytes_served.eq(shares::bytes_served + bytes),
                    ))
                    .execute(c))
            } else {
                with_conn!(conn, |c| diesel::update(open)
                    .set(shares::bytes_served.eq(shares::bytes_served + bytes))
                    .execute(c))
            };
            Ok(counted.map_err(unavailable)? == 1)
        })
    }

    /// Gives back the bytes of a download that broke off before they were sent.
    pub fn refund_download(&self, hash: String, bytes: u64) -> StoreFuture<()> {
        self.blocking("refund_download", move |conn| {
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            let link = shares::table.filter(shares::hash.eq(&hash));
            with_conn!(conn, |c| diesel::update(link)
                .set(shares::bytes_served.eq(shares::bytes_served - bytes))
                .execute(c))
            .map_err(unavailable)?;
            Ok(())
        })
    }

    /// Revokes the link if `owner` made it; `false` when there is no such link of theirs.
    pub fn revoke_share(&self, hash: String, owner: UserId) -> StoreFuture<bool> {
        self.blocking("revoke_share", move |conn| {
            let mine = shares::table
                .filter(shares::hash.eq(&hash))
                .filter(shares::owner_id.eq(owner.to_string()));
            let revoked = with_conn!(conn, |c| diesel::update(mine)
                .set(shares::revoked_ms.eq(Some(now_ms())))
                .execute(c))
            .map_err(unavailable)?;
            Ok(revoked == 1)
        })
    }
}
