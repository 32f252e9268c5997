//! One writer at a time per upload. A `PATCH` claims its upload for as long as it writes;
//! a second `PATCH` is refused at once (409), while `HEAD` and `DELETE` wait a bounded time
//! for the writer to finish, so that what they read or remove is what is stored.
//!
//! The map lock is only ever held for a lookup: no claim is created or dropped under it
//! (a claim's `Drop` takes it, and `std::sync::Mutex` is not re-entrant).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

/// The per-upload locks of requests in progress; an entry lives while anyone holds or
/// waits for it.
#[derive(Default)]
pub struct UploadClaims {
    locks: Mutex<HashMap<Uuid, Arc<AsyncMutex<()>>>>,
}

/// One request's hold on an upload; dropping it lets the next one in.
pub struct UploadClaim<'a> {
    claims: &'a UploadClaims,
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
}

impl UploadClaims {
    fn lock_of(&self, id: Uuid) -> Arc<AsyncMutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Claims `id` now, or `None` while another request holds it.
    pub fn try_claim(&self, id: Uuid) -> Option<UploadClaim<'_>> {
        let guard = self.lock_of(id).try_lock_owned().ok();
        let claim = UploadClaim {
            claims: self,
            id,
            guard,
        };
        claim.guard.is_some().then_some(claim)
    }

    /// Claims `id` once its current holder lets go, or `None` if that takes over `patience`.
    pub async fn claim_within(&self, id: Uuid, patience: Duration) -> Option<UploadClaim<'_>> {
        let lock = self.lock_of(id);
        let guard = tokio::time::timeout(patience, lock.lock_owned()).await.ok();
        let claim = UploadClaim {
            claims: self,
            id,
            guard,
        };
        claim.guard.is_some().then_some(claim)
    }

    /// How many uploads have a request in progress or waiting (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for UploadClaim<'_> {
    fn drop(&mut self) {
        // Let go first, then forget the lock if nobody else holds or awaits it.
        self.guard.take();
        let mut locks = self.claims.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks
            .get(&self.id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_and_the_first_is_given_back() {
        let claims = UploadClaims::default();
        let id = Uuid::new_v4();
        let first = claims.try_claim(id);
        assert!(first.is_some());
        // This used to deadlock: the refused claim was dropped under the map lock.
        assert!(claims.try_claim(id).is_none());
        assert!(claims.try_claim(Uuid::new_v4()).is_some());
        drop(first);
        assert_eq!(claims.len(), 0, "no lock is left behind");
        assert!(claims.try_claim(id).is_some());
    }

    #[tokio::test]
    async fn a_waiting_claim_gets_in_when_the_holder_lets_go() {
        let claims = Arc::new(UploadClaims::default());
        let id = Uuid::new_v4();
        let first = claims.try_claim(id);
        assert!(claims
            .claim_within(id, Duration::from_millis(20))
            .await
            .is_none());
        let waiter = {
            let claims = claims.clone();
            tokio::spawn(async move {
                claims
                    .claim_within(id, Duration::from_secs(10))
                    .await
                    .is_some()
            })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert!(waiter.await.unwrap_or(false));
        assert_eq!(claims.len(), 0);
    }
}
