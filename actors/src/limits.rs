//! Limits on sizes, rates and time, and the token bucket that enforces rates.
//!
//! Every number a client can push against lives in [`Limits`], validated by the node at
//! start. The per-user rate limit is shared by all of a user's sessions on this node; the
//! limit on new identities is per client address.

use crate::protocol::UserId;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sizes, rates and timings of one node. Defaults are the protocol's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame in bytes; a larger one closes the connection with 1009.
    pub max_text_frame: usize,
    /// Longest chat text, in characters.
    pub max_text_chars: usize,
    /// Largest file data per binary frame (plus a 24-byte header).
    pub chunk_size: u64,
    /// Bytes a sender may have in flight, unacknowledged.
    pub window: u64,
    /// Largest file a transfer or upload may carry.
    pub max_file_size: u64,
    /// Sustained frames per second per user.
    pub rate_per_sec: f64,
    /// Frames a user may send in a burst above the sustained rate.
    pub rate_burst: f64,
    /// Messages each room keeps in memory for `join` with `since`.
    pub room_backlog: usize,
    /// Largest `limit` a `history` request may ask for.
    pub max_history: usize,
    /// Bytes queued for a slow client before the node drops the connection.
    pub max_outbound_queue: usize,
    /// The node pings a connection this often.
    pub heartbeat_interval: Duration,
    /// A connection silent this long is closed.
    pub client_timeout: Duration,
    /// A token stays valid this long after its user's last activity.
    pub session_ttl: Duration,
    /// Rooms a single session may be in at once.
    pub max_rooms_per_session: usize,
    /// An offer nobody answers is withdrawn after this long.
    pub offer_ttl: Duration,
    /// A paused transfer is kept this long for its sides to come back.
    pub transfer_ttl: Duration,
    /// Transfers one user may have in progress at once.
    pub transfers_per_user: usize,
    /// Transfers the node runs at once.
    pub transfers_per_node: usize,
    /// Offers one user may make per minute.
    pub offers_per_minute: usize,
    /// New identities (`hello` with a name, `POST /api/sessions`) one client address may
    /// create per minute, and at once: names cost a database row each, forever.
    pub signups_per_minute: usize,
    /// A room with no session, or a user with no session and no transfer, that nothing
    /// has used for this long is taken out of memory; the next use loads it again.
    pub idle_actor_ttl: Duration,
    /// WebSocket connections one client address may hold open at once.
    pub connections_per_address: usize,
    /// Uploads and share links (a `say` with an upload makes one) each user may create per
    /// minute, and at once.
    pub creations_per_minute: u32,
    /// A streaming transfer whose receivers acknowledge nothing for this long, while data
    /// waits for them, pauses and frees what it holds.
    pub transfer_stall: Duration,
    /// Bytes all streaming transfers of the node may hold unacknowledged together; each
    /// streaming transfer reserves a full window of it.
    pub transfer_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_frame: 64 * 1024,
            max_text_chars: 4000,
            chunk_size: 256 * 1024,
            window: 4 * 1024 * 1024,
            max_file_size: 1024 * 1024 * 1024,
            rate_per_sec: 20.0,
            rate_burst: 40.0,
            room_backlog: 1000,
            max_history: 200,
            // A full transfer window plus room for chat.
            max_outbound_queue: 8 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(45),
            session_ttl: Duration::from_secs(3600),
            max_rooms_per_session: 100,
            offer_ttl: Duration::from_secs(600),
            transfer_ttl: Duration::from_secs(2 * 3600),
            transfers_per_user: 5,
            transfers_per_node: 1000,
            offers_per_minute: 20,
            signups_per_minute: 60,
            idle_actor_ttl: Duration::from_secs(300),
            connections_per_address: 256,
            creations_per_minute: 60,
            transfer_stall: Duration::from_secs(30),
            transfer_memory: 512 * 1024 * 1024,
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn full(burst: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / rate))
        }
    }
}

/// One token bucket per key (a user, a client address), shared by the whole node.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

/// Frames per user, over all of the user's sessions.
pub type UserRateLimiter = RateLimiter<UserId>;

/// New identities per client address.
pub type SignupLimiter = RateLimiter<IpAddr>;

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Charges one unit to `key`; `Err` carries the wait until the next would pass.
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget full buckets now and then so the map does not grow with every user ever seen.
        if buckets.len() > 10_000 {
            let idle = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < idle);
        }
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(self.burst, now))
            .take(self.rate, self.burst, now)
    }

    /// A bucket for a connection that has no user yet (frames before `welcome`).
    pub fn anonymous_bucket(&self, now: Instant) -> TokenBucket {
        TokenBucket::full(self.burst, now)
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }
}

/// Open connections per client address, with a ceiling.
#[derive(Debug)]
pub struct AddressCounter {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; dropping it gives the place back.
#[derive(Debug)]
pub struct AddressSlot {
    counter: std::sync::Arc<AddressCounter>,
    address: IpAddr,
}

impl AddressCounter {
    pub fn new(max: usize) -> Self {
        AddressCounter {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection from `address`, or `None` at the ceiling.
    pub fn open(self: &std::sync::Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counter: self.clone(),
            address,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// The node-wide budget of bytes that streaming transfers may hold unacknowledged.
#[derive(Debug)]
pub struct ByteBudget {
    total: u64,
    reserved: std::sync::atomic::AtomicU64,
}

impl ByteBudget {
    pub fn new(total: u64) -> Self {
        ByteBudget {
            total,
            reserved: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Takes `bytes` if they are left; `false` (and nothing taken) if not.
    pub fn reserve(&self, bytes: u64) -> bool {
        use std::sync::atomic::Ordering;
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                reserved
                    .checked_add(bytes)
                    .filter(|&after| after <= self.total)
            })
            .is_ok()
    }

    pub fn release(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                Some(reserved.saturating_sub(bytes))
            });
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
