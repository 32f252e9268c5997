//! Cluster-wide presence: on which node incarnations each user has sessions.
//!
//! Each incarnation keeps one hash `sessions:{id}:{incarnation}` (user → session count),
//! whose TTL every heartbeat refreshes, and each user has a set `presence:{user}` of the
//! incarnations that hold sessions of theirs. Because entries are tagged by incarnation
//! and indexed per incarnation, the declare-dead script purges a dead incarnation's
//! entries in the same step that declares it (no ghosts), and [`Presence::nodes_of`]
//! names only incarnations whose alive key exists. The hash TTL is a backstop for an
//! incarnation that nobody is left to declare dead; a user set that still names an
//! expired hash is cleaned the next time that user is looked up.
//!
//! This module never counts sessions itself: the caller says how many this node has.

use super::membership::{millis, Membership, Owner, Shared};
use super::redis_conn::ClusterError;
use std::sync::{Arc, LazyLock};
use uuid::Uuid;

/// Users per republish script: enough to republish a busy node in a few round trips,
/// few enough that no single script holds Redis for more than about a millisecond.
const REPUBLISH_BATCH: usize = 500;

/// KEYS: my tombstone, my sessions hash. ARGV: prefix, my member, sessions TTL ms, then
/// user/count pairs (count 0 removes the user).
static SET_SESSIONS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 'evicted' end
local p, me = ARGV[1], ARGV[2]
for i = 4, #ARGV, 2 do
  local user, count = ARGV[i], ARGV[i + 1]
  if tonumber(count) == 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('SREM', p .. 'presence:' .. user, me)
  else
    redis.call('HSET', KEYS[2], user, count)
    redis.call('SADD', p .. 'presence:' .. user, me)
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'ok'
"#,
    )
});

/// KEYS: the user's presence set. ARGV: prefix, user.
/// Members whose sessions hash no longer has the user are dropped from the set; those
/// whose alive key exists are returned.
static NODES_OF: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local p, user = ARGV[1], ARGV[2]
local found = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HEXISTS', p .. 'sessions:' .. m, user) == 0 then
    redis.call('SREM', KEYS[1], m)
  elseif redis.call('EXISTS', p .. 'alive:' .. m) == 1 then
    table.insert(found, m)
  end
end
return found
"#,
    )
});

/// This node's handle on cluster presence.
pub struct Presence {
    shared: Arc<Shared>,
}

impl Presence {
    pub fn new(membership: &Membership) -> Presence {
        Presence {
            shared: membership.shared(),
        }
    }

    /// Publishes how many sessions `user` has on this incarnation; 0 removes the entry.
    pub async fn set_sessions(&self, user: Uuid, count: u32) -> Result<(), ClusterError> {
        self.publish(&[(user, count)]).await
    }

    /// The live incarnations where `user` has at least one session.
    pub async fn nodes_of(&self, user: Uuid) -> Result<Vec<Owner>, ClusterError> {
        let user = user.to_string();
        let keys = &self.shared.keys;
        let mut invocation = NODES_OF.prepare_invoke();
        invocation
            .key(keys.presence(&user))
            .arg(keys.prefix())
            .arg(&user);
        let members: Vec<String> = self.shared.link.invoke(&invocation).await?;
        members.iter().map(|m| Owner::from_member(m)).collect()
    }

    /// After a `RedisReset`: publishes every user's count again. Users not listed are
    /// left as they are (after a reset there are none).
    pub async fn republish(&self, all: Vec<(Uuid, u32)>) -> Result<(), ClusterError> {
        for batch in all.chunks(REPUBLISH_BATCH) {
            self.publish(batch).await?;
        }
        Ok(())
    }

    async fn publish(&self, counts: &[(Uuid, u32)]) -> Result<(), ClusterError> {
        let keys = &self.shared.keys;
        let me = &self.shared.member;
        let mut invocation = SET_SESSIONS.prepare_invoke();
        invocation
            .key(keys.dead(me))
            .key(keys.sessions(me))
            .arg(keys.prefix())
            .arg(me)
            .arg(millis(self.shared.timings.sessions_ttl()));
        for (user, count) in counts {
            invocation.arg(user.to_string()).arg(count);
        }
        let answer: String = self.shared.link.invoke(&invocation).await?;
        match answer.as_str() {
            "ok" => Ok(()),
            _ => Err(ClusterError::Evicted),
        }
    }
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
