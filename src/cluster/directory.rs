//! The ownership directory: which node incarnation owns each room, direct conversation
//! and transfer, so that the cluster runs at most one actor for each.
//!
//! An entry `dir:{kind}:{key}` names its owner as `{id}:{incarnation}`. [`Directory::claim`]
//! is one compare-and-set script (Orleans' Redis grain directory): it takes the entry
//! only if it is absent, already ours, or names an incarnation whose alive key is gone,
//! and in that last case it declares that incarnation dead in the same script (tombstone
//! and purge, see [`super::membership`]). Each incarnation also lists what it owns in
//! `owned:{id}:{incarnation}`, so that its death removes its entries at once.
//!
//! The directory is not a fence: an owner that was paused or cut off may still believe
//! it owns something after a takeover. Writes that must not happen twice are fenced in
//! PostgreSQL by the owner's epoch, not here.
//!
//! # Lookup cache
//!
//! Lookups are cached in process (at most [`CACHE_CAPACITY`] entries). A cached owner is
//! used only while membership still lists its incarnation as live, so an owner's
//! `NodeDown` invalidates every entry that names it without any bookkeeping; a
//! `RedisReset` invalidates the whole cache. Anything else (an owner that released an
//! entry it still lives on, a takeover this node has not heard of) is corrected by the
//! caller: a node that receives work for something it does not own answers so, and the
//! sender calls [`Directory::invalidate`] and looks again. Claims never read the cache.

use super::membership::{
    lock, millis, script_with_declare_dead, Membership, Shared, TOMBSTONE_TTL,
};
use super::redis_conn::ClusterError;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

pub use super::membership::Owner;

/// Enough for the rooms and transfers a busy node routes to at once; past it the
/// cache is emptied rather than managed, since a miss costs only one Redis round trip.
pub const CACHE_CAPACITY: usize = 4096;

/// The kinds of things that have exactly one owner in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Room,
    Dm,
    Transfer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Room => "room",
            Kind::Dm => "dm",
            Kind::Transfer => "transfer",
        }
    }
}

/// KEYS: entry, my alive, my tombstone, my owned set.
/// ARGV: prefix, my member, entry name (`{kind}:{key}`), tombstone ms.
/// Returns {'owner', member}, {'evicted'} or {'unregistered'}.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    script_with_declare_dead(
        r#"
local p, me, entry, tomb = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[3]) == 1 then return {'evicted'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'unregistered'} end
local current = redis.call('GET', KEYS[1])
if current and current ~= me then
  if not declare_dead(p, current, tomb) then return {'owner', current} end
end
redis.call('SET', KEYS[1], me)
redis.call('SADD', KEYS[4], entry)
return {'owner', me}
"#,
    )
});

/// KEYS: entry. ARGV: prefix. The owner if its alive key exists, else nil.
static LOOKUP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current and redis.call('EXISTS', ARGV[1] .. 'alive:' .. current) == 1 then return current end
return false
"#,
    )
});

/// KEYS: entry, my owned set. ARGV: my member, entry name. 1 if it was ours.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"#,
    )
});

/// A cached lookup, valid while its owner is live and Redis has not been reset since.
struct Cached {
    owner: Owner,
    resets: u64,
}

/// This node's handle on the directory.
pub struct Directory {
    shared: Arc<Shared>,
    cache: Mutex<HashMap<(Kind, String), Cached>>,
}

impl Directory {
    pub fn new(membership: &Membership) -> Directory {
        Directory {
            shared: membership.shared(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `key` for this node unless a live incarnation owns it; returns the owner
    /// either way.
    pub async fn claim(&self, kind: Kind, key: &str) -> Result<Owner, ClusterError> {
        let keys = &self.shared.keys;
        let me = &self.shared.member;
        let entry = entry_name(kind, key);
        let mut invocation = CLAIM.prepare_invoke();
        invocation
            .key(keys.dir(&entry))
            .key(keys.alive(me))
            .key(keys.dead(me))
            .key(keys.owned(me))
            .arg(keys.prefix())
            .arg(me)
            .arg(&entry)
            .arg(millis(TOMBSTONE_TTL));
        let answer: Vec<String> = self.shared.link.invoke(&invocation).await?;
        let owner = match answer.as_slice() {
            [status, member] if status == "owner" => Owner::from_member(member)?,
            [status] if status == "evicted" => return Err(ClusterError::Evicted),
            [status] if status == "unregistered" => return Err(ClusterError::NotRegistered),
            other => return Err(ClusterError::Protocol(format!("claim answered {other:?}"))),
        };
        self.remember(kind, key, &owner);
        Ok(owner)
    }

    /// The live owner of `key`, if any: from the cache when it can be trusted, else
    /// from Redis. An entry naming an incarnation whose alive key is gone reads as
    /// unowned (claiming it will take it over).
    pub async fn lookup(&self, kind: Kind, key: &str) -> Result<Option<Owner>, ClusterError> {
        if let Some(owner) = self.cached(kind, key) {
            return Ok(Some(owner));
        }
        let keys = &self.shared.keys;
        let mut invocation = LOOKUP.prepare_invoke();
        invocation
            .key(keys.dir(&entry_name(kind, key)))
            .arg(keys.prefix());
        let answer: Option<String> = self.shared.link.invoke(&invocation).await?;
        let Some(member) = answer else {
            self.invalidate(kind, key);
            return Ok(None);
        };
        let owner = Owner::from_member(&member)?;
        self.remember(kind, key, &owner);
        Ok(Some(owner))
    }

    /// Gives up `key` if this incarnation owns it; true if it did.
    pub async fn release(&self, kind: Kind, key: &str) -> Result<bool, ClusterError> {
        self.invalidate(kind, key);
        let keys = &self.shared.keys;
        let me = &self.shared.member;
        let entry = entry_name(kind, key);
        let mut invocation = RELEASE.prepare_invoke();
        invocation
            .key(keys.dir(&entry))
            .key(keys.owned(me))
            .arg(me)
            .arg(&entry);
        let released: i64 = self.shared.link.invoke(&invocation).await?;
        Ok(released == 1)
    }

    /// After a `RedisReset`: claims each entry again and returns those that another
    /// node claimed first, with their owner. The caller stops its actors for those.
    pub async fn reclaim(
        &self,
        entries: &[(Kind, String)],
    ) -> Result<Vec<(Kind, String, Owner)>, ClusterError> {
        let mut lost = Vec::new();
        for (kind, key) in entries {
            let owner = self.claim(*kind, key).await?;
            if owner.member() != self.shared.member {
                lost.push((*kind, key.clone(), owner));
            }
        }
        Ok(lost)
    }

    /// Forgets the cached owner of `key` (for example after its supposed owner said it
    /// does not own it).
    pub fn invalidate(&self, kind: Kind, key: &str) {
        lock(&self.cache).remove(&(kind, key.to_owned()));
    }

    fn cached(&self, kind: Kind, key: &str) -> Option<Owner> {
        let cache = lock(&self.cache);
        let cached = cache.get(&(kind, key.to_owned()))?;
        let trusted =
            cached.resets == self.shared.resets() && self.shared.is_live(&cached.owner.member());
        trusted.then(|| cached.owner.clone())
    }

    fn remember(&self, kind: Kind, key: &str, owner: &Owner) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(
            (kind, key.to_owned()),
            Cached {
                owner: owner.clone(),
                resets: self.shared.resets(),
            },
        );
    }
}

fn entry_name(kind: Kind, key: &str) -> String {
    format!("{}:{key}", kind.as_str())
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
