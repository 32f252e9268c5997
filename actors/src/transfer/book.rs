//! The node's ledger of transfers in progress: how many each user runs, how many the node
//! runs, and how many offers each user made in the last minute. Shared by every session.

use crate::protocol::{ErrorCode, ProtocolError, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const OFFER_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct TransferLimits {
    pub per_user: usize,
    pub per_node: usize,
    pub offers_per_minute: usize,
}

#[derive(Default)]
struct Ledger {
    active: HashMap<UserId, usize>,
    total: usize,
    /// Offers nobody has accepted yet: at most half the node's transfers, so that offers
    /// nobody answers can never keep accepted transfers out.
    unanswered: usize,
    recent_offers: HashMap<UserId, VecDeque<Instant>>,
}

pub struct TransferBook {
    limits: TransferLimits,
    ledger: Mutex<Ledger>,
}

impl TransferBook {
    pub fn new(limits: TransferLimits) -> Self {
        TransferBook {
            limits,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// Counts a new offer by `user`, or says which limit it would break.
    pub fn open(&self, user: UserId, now: Instant) -> Result<(), ProtocolError> {
        let mut ledger = self
            .ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = ledger.recent_offers.entry(user).or_default();
        while recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= OFFER_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.limits.offers_per_minute {
            let wait = recent.front().map_or(OFFER_WINDOW, |t| {
                OFFER_WINDOW.saturating_sub(now.saturating_duration_since(*t))
            });
            let mut error = ProtocolError::rate_limited(
                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            );
            error.message = format!(
                "at most {} offers a minute; wait before offering again",
                self.limits.offers_per_minute
            );
            return Err(error);
        }
        if ledger.active.get(&user).copied().unwrap_or(0) >= self.limits.per_user {
            return Err(ProtocolError::new(
                ErrorCode::Conflict,
                format!(
                    "you already have {} transfers in progress; finish or cancel one first",
                    self.limits.per_user
                ),
            ));
        }
        if ledger.total >= self.limits.per_node {
            return Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "the node is at its limit of transfers; try again later",
            ));
        }
        if ledger.unanswered >= self.limits.per_node.div_ceil(2) {
            return Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "too many offers wait for an answer on this node; try again later",
            ));
        }
        ledger.recent_offers.entry(user).or_default().push_back(now);
        *ledger.active.entry(user).or_default() += 1;
        ledger.total += 1;
        ledger.unanswered += 1;
        Ok(())
    }

    /// Counts a transfer read back after a restart, whatever the limits say.
    pub fn restore(&self, user: UserId, unanswered: bool) {
        let mut ledger = self.lock();
        *ledger.active.entry(user).or_default() += 1;
        ledger.total += 1;
        ledger.unanswered += usize::from(unanswered);
    }

    /// An offer was accepted: it no longer counts among the unanswered.
    pub fn answered(&self) {
        let mut ledger = self.lock();
        ledger.unanswered = ledger.unanswered.saturating_sub(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A transfer of `user` ended, however it ended; `unanswered` if nobody had accepted.
    pub fn close(&self, user: UserId, unanswered: bool) {
        let mut ledger = self.lock();
        if unanswered {
            ledger.unanswered = ledger.unanswered.saturating_sub(1);
        }
        if let Some(count) = ledger.active.get_mut(&user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                ledger.active.remove(&user);
            }
            ledger.total = ledger.total.saturating_sub(1);
        }
    }

    pub fn active(&self) -> usize {
        self.ledger.lock().map(|l| l.total).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(per_user: usize, per_node: usize, offers_per_minute: usize) -> TransferBook {
        TransferBook::new(TransferLimits {
            per_user,
            per_node,
            offers_per_minute,
        })
    }

    #[test]
    fn a_user_runs_at_most_per_user_transfers_at_once() {
        let book = book(2, 100, 100);
        let (alice, now) = (UserId::new_random(), Instant::now());
        assert!(book.open(alice, now).is_ok());
        assert!(book.open(alice, now).is_ok());
        assert_eq!(book.open(alice, now).unwrap_err().code, ErrorCode::Conflict);
        assert!(
            book.open(UserId::new_random(), now).is_ok(),
            "other users are not affected"
        );
        book.close(alice, true);
        assert!(book.open(alice, now).is_ok());
    }

    #[test]
    fn unanswered_offers_take_at_most_half_the_node() {
        let book = book(100, 4, 100);
        let now = Instant::now();
        let (alice, bob) = (UserId::new_random(), UserId::new_random());
        assert!(book.open(alice, now).is_ok());
        assert!(book.open(alice, now).is_ok());
        let refused = book.open(bob, now).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert!(
            refused.message.contains("wait for an answer"),
            "{refused:?}"
        );
        // Once one is accepted, another offer fits.
        book.answered();
        assert!(book.open(bob, now).is_ok());
        book.close(alice, false);
        book.close(alice, true);
        assert!(book.open(alice, now).is_ok());
    }

    #[test]
    fn the_node_has_a_ceiling() {
        let book = book(10, 2, 100);
        let now = Instant::now();
        // Accepted transfers fill the node (unanswered offers may take only half of it).
        assert!(book.open(UserId::new_random(), now).is_ok());
        book.answered();
        assert!(book.open(UserId::new_random(), now).is_ok());
        book.answered();
        assert_eq!(
            book.open(UserId::new_random(), now).unwrap_err().code,
            ErrorCode::Unavailable
        );
        assert_eq!(book.active(), 2);
    }

    #[test]
    fn offers_per_minute_are_limited_with_a_retry_hint() {
        let book = book(100, 100, 3);
        let (alice, start) = (UserId::new_random(), Instant::now());
        for _ in 0..3 {
            book.open(alice, start).unwrap();
            book.close(alice, true);
        }
        let error = book
            .open(alice, start + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::RateLimited);
        assert_eq!(error.retry_after_ms, Some(40_000));
        assert!(book.open(alice, start + Duration::from_secs(60)).is_ok());
    }
}
