//! Cluster membership: which node incarnations are alive, and the one rule by which an
//! incarnation is declared dead.
//!
//! A node joins with a [`NodeRecord`] whose `incarnation` is new on every start. It keeps
//! an alive key (`alive:{id}:{incarnation}`, TTL [`Timings::dead_after`]) fresh from a
//! heartbeat task, and every beat it sweeps the registered nodes: an incarnation whose
//! alive key is gone has been silent past the bound and is declared dead.
//!
//! Declaring death is atomic and leaves a tombstone (`dead:{id}:{incarnation}`). Whoever
//! acts on "incarnation I of node X is dead" (the sweep, a directory takeover, a leave)
//! does so inside a Lua script that starts with `DECLARE_DEAD_LUA`: it checks that the
//! alive key is absent and, in the same script, writes the tombstone and purges
//! everything tagged with that incarnation (node set, record, presence, owned directory
//! entries). A node that finds its own tombstone stops heartbeating and reports
//! [`MembershipEvent::Evicted`]: it must leave, and may only come back as a new
//! incarnation (Orleans' rule). A node whose alive key merely lapsed, with no tombstone,
//! registers again silently, because nobody acted on its silence.
//!
//! This module must never declare an incarnation dead outside that script, and never
//! resurrect one that has a tombstone.

use super::redis_conn::{ClusterError, Link};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant, MissedTickBehavior};

/// How often a node refreshes its alive key and sweeps the others.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(500);

/// How long a node may be silent before it is declared dead: five missed beats. That
/// keeps failover well under 5 s (death is noticed within `dead_after` plus one sweep),
/// while a loaded machine's Redis latency spikes of a few hundred milliseconds cost a
/// beat or two, never a healthy node's life.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_millis(2500);

/// How long a tombstone outlives the death it records. An evicted node that was paused
/// (a stop signal, a VM migration, a swap storm) for up to an hour still finds it on its
/// next beat and leaves; after that the key goes, so restarts do not pile up keys.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);

/// Besides after every reconnect, the server's `run_id` is compared every this many
/// beats (5 s by default): a proxy or a failover behind one address can swap the server
/// without our connection ever breaking.
const RUN_ID_CHECK_EVERY: u32 = 10;

/// An incarnation's presence entries expire this many `dead_after`s after its last
/// beat. They are purged at once when it is declared dead; the TTL is only a backstop
/// for when nobody is left to declare it, so it is long enough that a node which comes
/// back from a lapse on its own (re-registered silently) still has them.
const SESSIONS_TTL_FACTOR: u32 = 4;

/// How a node joins and how fast the cluster gives up on a silent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Interval between two refreshes of the alive key (and two sweeps).
    pub heartbeat: Duration,
    /// TTL of the alive key: silence longer than this is death.
    pub dead_after: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            heartbeat: DEFAULT_HEARTBEAT,
            dead_after: DEFAULT_DEAD_AFTER,
        }
    }
}

impl Timings {
    fn check(&self) -> Result<(), ClusterError> {
        if self.heartbeat.is_zero() {
            return Err(ClusterError::Timings("heartbeat must be above zero".into()));
        }
        if self.dead_after < self.heartbeat * 2 {
            return Err(ClusterError::Timings(format!(
                "dead_after ({:?}) must be at least two heartbeats ({:?}), or one late beat kills a node",
                self.dead_after, self.heartbeat
            )));
        }
        Ok(())
    }

    /// A reply slower than half the death bound means our alive key cannot be trusted
    /// to stay fresh: the link is treated as broken and replaced.
    pub(crate) fn reply_timeout(&self) -> Duration {
        self.dead_after / 2
    }

    /// TTL of an incarnation's presence hash, refreshed by every beat.
    pub(crate) fn sessions_ttl(&self) -> Duration {
        self.dead_after * SESSIONS_TTL_FACTOR
    }

    /// A node that vanished from the node set without a tombstone (Redis lost its keys)
    /// is given this long to register again before it is declared dead: its own alive
    /// key would have lapsed by then, plus one longest reconnect backoff.
    fn vanished_grace(&self) -> Duration {
        self.dead_after * 2
    }
}

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// New on every start, so that a restarted node is never mistaken for its previous
    /// life, whose entries may already have been purged.
    pub incarnation: u64,
    /// Where clients reach this node.
    pub http: SocketAddr,
    /// Where other nodes reach this node's node-to-node link.
    pub link: SocketAddr,
    pub started_ms: i64,
    /// Set while the node shuts down gracefully: it keeps what it owns but should not
    /// be given anything new.
    pub draining: bool,
}

/// One incarnation of one node, as named by the directory and presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub node: String,
    pub incarnation: u64,
}

impl Owner {
    /// The `{id}:{incarnation}` form used in keys and sets; the incarnation is numeric,
    /// so splitting at the last `:` is unambiguous even if the id contains one.
    pub(crate) fn member(&self) -> String {
        member(&self.node, self.incarnation)
    }

    pub(crate) fn from_member(member: &str) -> Result<Owner, ClusterError> {
        member
            .rsplit_once(':')
            .and_then(|(node, incarnation)| {
                Some(Owner {
                    node: node.to_owned(),
                    incarnation: incarnation.parse().ok()?,
                })
            })
            .ok_or_else(|| ClusterError::Protocol(format!("not a node incarnation: {member}")))
    }
}

fn member(id: &str, incarnation: u64) -> String {
    format!("{id}:{incarnation}")
}

/// What the caller learns from the membership task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// Another node's incarnation is registered and alive (never sent for this node).
    NodeUp(NodeRecord),
    /// An incarnation was declared dead (by this node or another); its presence and
    /// directory entries are already purged. It may be one this node never saw up.
    NodeDown { id: String, incarnation: u64 },
    /// This incarnation was declared dead: heartbeating has stopped; leave.
    Evicted,
    /// Redis lost its data (restarted empty, or our registration vanished). This node
    /// is registered again; re-claim what it owns and re-publish presence.
    RedisReset,
    /// Redis became unreachable; the task keeps reconnecting with backoff.
    RedisDown,
    /// Redis is reachable again (a `RedisReset` follows if its data was lost).
    RedisUp,
}

/// Key names under the configured prefix. The declare-dead Lua builds the same names
/// from the prefix; the two must stay in step (the purge tests check it).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
    /// Set of registered incarnations (`{id}:{incarnation}`).
    pub(crate) fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    /// JSON [`NodeRecord`] of one incarnation.
    pub(crate) fn record(&self, member: &str) -> String {
        format!("{}node:{member}", self.prefix)
    }
    pub(crate) fn alive(&self, member: &str) -> String {
        format!("{}alive:{member}", self.prefix)
    }
    pub(crate) fn dead(&self, member: &str) -> String {
        format!("{}dead:{member}", self.prefix)
    }
    /// Hash user → session count of one incarnation.
    pub(crate) fn sessions(&self, member: &str) -> String {
        format!("{}sessions:{member}", self.prefix)
    }
    /// Set of incarnations that have sessions of one user.
    pub(crate) fn presence(&self, user: &str) -> String {
        format!("{}presence:{user}", self.prefix)
    }
    /// Set of directory entries (`{kind}:{key}`) one incarnation owns.
    pub(crate) fn owned(&self, member: &str) -> String {
        format!("{}owned:{member}", self.prefix)
    }
    /// Owner (`{id}:{incarnation}`) of one directory entry.
    pub(crate) fn dir(&self, entry: &str) -> String {
        format!("{}dir:{entry}", self.prefix)
    }
}

/// Lua prelude for every script that may declare an incarnation dead.
///
/// `declare_dead(p, member, tomb_ms)`: if `alive:{member}` exists, does nothing and
/// returns false. Otherwise writes the tombstone and removes the incarnation from the
/// node set, its record, its presence (the per-user sets and its sessions hash) and
/// the directory entries that still name it; returns true. Idempotent.
pub(crate) const DECLARE_DEAD_LUA: &str = r#"
local function declare_dead(p, member, tomb_ms)
  if redis.call('EXISTS', p .. 'alive:' .. member) == 1 then return false end
  redis.call('SET', p .. 'dead:' .. member, '1', 'PX', tomb_ms)
  redis.call('SREM', p .. 'nodes', member)
  redis.call('DEL', p .. 'node:' .. member)
  local sessions = p .. 'sessions:' .. member
  for _, user in ipairs(redis.call('HKEYS', sessions)) do
    redis.call('SREM', p .. 'presence:' .. user, member)
  end
  redis.call('DEL', sessions)
  local owned = p .. 'owned:' .. member
  for _, entry in ipairs(redis.call('SMEMBERS', owned)) do
    local dir = p .. 'dir:' .. entry
    if redis.call('GET', dir) == member then redis.call('DEL', dir) end
  end
  redis.call('DEL', owned)
  return true
end
"#;

/// A script whose body may call `declare_dead`.
pub(crate) fn script_with_declare_dead(body: &str) -> redis::Script {
    redis::Script::new(&format!("{DECLARE_DEAD_LUA}\n{body}"))
}

/// The beat. KEYS: alive, dead, record, nodes, sessions.
/// ARGV: member, record JSON, alive TTL ms, sessions TTL ms.
/// `evicted` if the tombstone exists; `refreshed` if the alive key was there;
/// otherwise registers again: `reregistered` if only the alive key had lapsed,
/// `restored` if the record was gone too (Redis lost our keys).
static BEAT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 'evicted' end
redis.call('PEXPIRE', KEYS[5], ARGV[4])
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[3], 'XX') then return 'refreshed' end
local had_record = redis.call('EXISTS', KEYS[3])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
if had_record == 1 then return 'reregistered' end
return 'restored'
"#,
    )
});

/// The sweep. KEYS: nodes. ARGV: prefix, my member, tombstone ms, number of known
/// members, the known members (our current view), then the members to declare dead
/// (vanished past their grace).
/// Returns {live: flat member/record pairs, dead: members, vanished: known members that
/// left the node set with neither tombstone nor alive key}.
static SWEEP: LazyLock<redis::Script> = LazyLock::new(|| {
    script_with_declare_dead(
        r#"
local p, me, tomb = ARGV[1], ARGV[2], ARGV[3]
local known_count = tonumber(ARGV[4])
local live, dead, vanished = {}, {}, {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if m ~= me then
    if redis.call('EXISTS', p .. 'alive:' .. m) == 1 then
      local record = redis.call('GET', p .. 'node:' .. m)
      if record then table.insert(live, m); table.insert(live, record) end
    elseif declare_dead(p, m, tomb) then
      table.insert(dead, m)
    end
  end
end
for i = 5, 4 + known_count do
  local m = ARGV[i]
  if redis.call('SISMEMBER', KEYS[1], m) == 0 then
    if redis.call('EXISTS', p .. 'dead:' .. m) == 1 then
      table.insert(dead, m)
    elseif redis.call('EXISTS', p .. 'alive:' .. m) == 0 then
      table.insert(vanished, m)
    end
  end
end
for i = 5 + known_count, #ARGV do
  if declare_dead(p, ARGV[i], tomb) then table.insert(dead, ARGV[i]) end
end
return {live, dead, vanished}
"#,
    )
});

/// Rewrites the record unless this incarnation has a tombstone.
/// KEYS: dead, record. ARGV: record JSON.
static PUBLISH_RECORD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 'evicted' end
redis.call('SET', KEYS[2], ARGV[1])
return 'ok'
"#,
    )
});

/// Clean shutdown: drop the alive key, then declare this incarnation dead so that the
/// others see `NodeDown` on their next sweep instead of after a timeout.
/// KEYS: alive. ARGV: prefix, member, tombstone ms.
static LEAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    script_with_declare_dead(
        r#"
redis.call('DEL', KEYS[1])
declare_dead(ARGV[1], ARGV[2], ARGV[3])
return 'ok'
"#,
    )
});

/// What a beat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beat {
    Refreshed,
    Reregistered,
    Restored,
    Evicted,
}

/// This node's view of the others.
#[derive(Default)]
struct View {
    /// Live incarnations other than this one, by member.
    live: BTreeMap<String, NodeRecord>,
    /// Known incarnations that left the node set without a tombstone, and since when.
    vanished: HashMap<String, Instant>,
}

/// State shared by [`Membership`], its task, the directory and presence.
pub(crate) struct Shared {
    pub(crate) link: Link,
    pub(crate) keys: Keys,
    pub(crate) timings: Timings,
    /// This incarnation as `{id}:{incarnation}`.
    pub(crate) member: String,
    me: Mutex<NodeRecord>,
    view: Mutex<View>,
    evicted: AtomicBool,
    /// How many times Redis lost its data while we were joined; caches built before a
    /// reset are not trusted after it.
    resets: AtomicU64,
    events: UnboundedSender<MembershipEvent>,
    #[cfg(test)]
    pub(crate) hooks: TestHooks,
}

/// Switches that let tests simulate a stalled node.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct TestHooks {
    /// The task does nothing at all (a paused process).
    pub(crate) stalled: AtomicBool,
    /// The task beats but does not sweep (nobody acts on others' silence).
    pub(crate) sweep_off: AtomicBool,
}

/// This node's membership in the cluster. Dropping it without [`Membership::leave`]
/// stops the heartbeat, which the others treat as a crash.
pub struct Membership {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Membership {
    /// Registers `me`, sweeps once (so `NodeUp` arrives for every node already there
    /// and [`Membership::live`] is filled), then keeps beating in a spawned task.
    pub async fn join(
        client: redis::Client,
        prefix: impl Into<String>,
        me: NodeRecord,
        timings: Timings,
    ) -> Result<(Membership, UnboundedReceiver<MembershipEvent>), ClusterError> {
        timings.check()?;
        let link = Link::open(client, timings.reply_timeout()).await?;
        let run_id = link.run_id().await?;
        let (events, receiver) = unbounded_channel();
        let shared = Arc::new(Shared {
            link,
            keys: Keys {
                prefix: prefix.into(),
            },
            timings,
            member: member(&me.id, me.incarnation),
            me: Mutex::new(me),
            view: Mutex::new(View::default()),
            evicted: AtomicBool::new(false),
            resets: AtomicU64::new(0),
            events,
            #[cfg(test)]
            hooks: TestHooks::default(),
        });
        if shared.beat().await? == Beat::Evicted {
            return Err(ClusterError::Evicted);
        }
        shared.sweep().await?;
        let task = tokio::spawn(keep_alive(Arc::clone(&shared), run_id));
        Ok((Membership { shared, task }, receiver))
    }

    /// Live nodes as of the last sweep, this one included (unless evicted).
    pub fn live(&self) -> Vec<NodeRecord> {
        let mut nodes: Vec<NodeRecord> = lock(&self.shared.view).live.values().cloned().collect();
        if !self.shared.is_evicted() {
            nodes.push(lock(&self.shared.me).clone());
        }
        nodes
    }

    /// Whether `id`'s `incarnation` was live at the last sweep.
    pub fn is_live(&self, id: &str, incarnation: u64) -> bool {
        self.shared.is_live(&member(id, incarnation))
    }

    /// Marks this node as draining (or not) in its published record.
    pub async fn set_draining(&self, draining: bool) -> Result<(), ClusterError> {
        let json = {
            let mut me = lock(&self.shared.me);
            me.draining = draining;
            record_json(&me)?
        };
        let keys = &self.shared.keys;
        let member = &self.shared.member;
        let mut invocation = PUBLISH_RECORD.prepare_invoke();
        invocation
            .key(keys.dead(member))
            .key(keys.record(member))
            .arg(json);
        let answer: String = self.shared.link.invoke(&invocation).await?;
        match answer.as_str() {
            "ok" => Ok(()),
            _ => Err(ClusterError::Evicted),
        }
    }

    /// Clean shutdown: stops beating, deletes this incarnation's keys and leaves its
    /// tombstone, so the others see `NodeDown` on their next sweep.
    pub async fn leave(self) -> Result<(), ClusterError> {
        self.task.abort();
        let keys = &self.shared.keys;
        let member = &self.shared.member;
        let mut invocation = LEAVE.prepare_invoke();
        invocation
            .key(keys.alive(member))
            .arg(keys.prefix())
            .arg(member)
            .arg(millis(TOMBSTONE_TTL));
        let _: String = self.shared.link.invoke(&invocation).await?;
        Ok(())
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    pub(crate) fn is_live(&self, member: &str) -> bool {
        if member == self.member {
            return !self.is_evicted();
        }
        lock(&self.view).live.contains_key(member)
    }

    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    /// Bumped on every [`MembershipEvent::RedisReset`].
    pub(crate) fn resets(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
    }

    fn emit(&self, event: MembershipEvent) {
        // A caller that dropped the receiver has stopped listening; nothing to do.
        let _ = self.events.send(event);
    }

    async fn beat(&self) -> Result<Beat, ClusterError> {
        let json = record_json(&lock(&self.me))?;
        let keys = &self.keys;
        let member = &self.member;
        let mut invocation = BEAT.prepare_invoke();
        invocation
            .key(keys.alive(member))
            .key(keys.dead(member))
            .key(keys.record(member))
            .key(keys.nodes())
            .key(keys.sessions(member))
            .arg(member)
            .arg(json)
            .arg(millis(self.timings.dead_after))
            .arg(millis(self.timings.sessions_ttl()));
        let answer: String = self.link.invoke(&invocation).await?;
        match answer.as_str() {
            "refreshed" => Ok(Beat::Refreshed),
            "reregistered" => Ok(Beat::Reregistered),
            "restored" => Ok(Beat::Restored),
            "evicted" => Ok(Beat::Evicted),
            other => Err(ClusterError::Protocol(format!(
                "heartbeat answered {other}"
            ))),
        }
    }

    async fn sweep(&self) -> Result<(), ClusterError> {
        let (known, overdue) = {
            let view = lock(&self.view);
            let grace = self.timings.vanished_grace();
            let known: Vec<String> = view.live.keys().cloned().collect();
            let overdue: Vec<String> = view
                .vanished
                .iter()
                .filter(|(_, since)| since.elapsed() >= grace)
                .map(|(member, _)| member.clone())
                .collect();
            (known, overdue)
        };
        let mut invocation = SWEEP.prepare_invoke();
        invocation
            .key(self.keys.nodes())
            .arg(self.keys.prefix())
            .arg(&self.member)
            .arg(millis(TOMBSTONE_TTL))
            .arg(known.len())
            .arg(&known)
            .arg(&overdue);
        let (live, dead, vanished): (Vec<String>, Vec<String>, Vec<String>) =
            self.link.invoke(&invocation).await?;
        self.apply_sweep(&live, dead, vanished);
        Ok(())
    }

    /// Replaces the view with what the sweep found and reports the differences.
    fn apply_sweep(&self, live: &[String], dead: Vec<String>, vanished: Vec<String>) {
        let mut events = Vec::new();
        let mut view = lock(&self.view);
        let mut fresh = BTreeMap::new();
        for pair in live.chunks_exact(2) {
            let (member, json) = (&pair[0], &pair[1]);
            let Ok(record) = serde_json::from_str::<NodeRecord>(json) else {
                log::warn!("cluster: unreadable record for {member}; ignoring that node");
                continue;
            };
            if !view.live.contains_key(member) {
                events.push(MembershipEvent::NodeUp(record.clone()));
            }
            view.vanished.remove(member);
            fresh.insert(member.clone(), record);
        }
        let now = Instant::now();
        for member in vanished {
            if let Some(record) = view.live.get(&member) {
                fresh.insert(member.clone(), record.clone());
            }
            view.vanished.entry(member).or_insert(now);
        }
        for member in dead.into_iter().collect::<BTreeSet<_>>() {
            view.vanished.remove(&member);
            fresh.remove(&member);
            if let Ok(owner) = Owner::from_member(&member) {
                events.push(MembershipEvent::NodeDown {
                    id: owner.node,
                    incarnation: owner.incarnation,
                });
            }
        }
        view.live = fresh;
        drop(view);
        for event in events {
            self.emit(event);
        }
    }

    /// Records that Redis lost its data. The beat that noticed has already registered
    /// this node again, so the caller can re-claim as soon as it hears of it.
    fn note_reset(&self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
        self.emit(MembershipEvent::RedisReset);
    }
}

/// Reconnect backoff state of the membership task.
struct LinkHealth {
    up: bool,
    backoff: Duration,
    next_attempt: Instant,
}

impl LinkHealth {
    /// Starts at one beat (retrying faster is pointless: the beat is what must get
    /// through) and doubles up to `dead_after` (waiting longer between attempts would
    /// let our own alive key lapse without even trying).
    fn reset(&mut self, timings: &Timings) {
        self.backoff = timings.heartbeat;
        self.next_attempt = Instant::now();
    }

    fn failed(&mut self, timings: &Timings) {
        self.backoff = (self.backoff * 2).min(timings.dead_after);
        // Up to a quarter of jitter, so nodes that lost Redis together do not all
        // reconnect in the same instant when it returns.
        let jitter_ms = rand::random_range(0..=millis(self.backoff) / 4);
        self.next_attempt = Instant::now() + self.backoff + Duration::from_millis(jitter_ms);
    }
}

/// The heartbeat task's state between beats.
struct Heartbeat {
    shared: Arc<Shared>,
    health: LinkHealth,
    /// The server we registered with; a different one means its data is not ours.
    run_id: String,
    beats_since_check: u32,
    /// The server must be compared with `run_id` at the next chance (set on reconnect,
    /// every [`RUN_ID_CHECK_EVERY`] beats and when our registration had vanished;
    /// kept until a check succeeds).
    check_due: bool,
    /// Our registration had vanished without a tombstone: Redis lost our keys even if
    /// the server is the same one (a flush, eviction under `maxmemory`).
    data_lost: bool,
}

/// The heartbeat task: keep the link, beat, check the server, sweep; until evicted.
async fn keep_alive(shared: Arc<Shared>, run_id: String) {
    let mut ticks = interval(shared.timings.heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = Heartbeat {
        health: LinkHealth {
            up: true,
            backoff: shared.timings.heartbeat,
            next_attempt: Instant::now(),
        },
        shared,
        run_id,
        beats_since_check: 0,
        check_due: false,
        data_lost: false,
    };
    loop {
        ticks.tick().await;
        #[cfg(test)]
        if heartbeat.shared.hooks.stalled.load(Ordering::SeqCst) {
            continue;
        }
        if !heartbeat.step().await {
            return;
        }
    }
}

impl Heartbeat {
    /// One beat; false when this incarnation was evicted and the task must stop.
    async fn step(&mut self) -> bool {
        let shared = Arc::clone(&self.shared);
        if !shared.link.is_up() {
            if !restore_link(&shared, &mut self.health).await {
                return true;
            }
            self.check_due = true;
        }
        let beat = match shared.beat().await {
            Ok(beat) => beat,
            Err(error) => {
                log::warn!("cluster: heartbeat failed: {error}");
                return true;
            }
        };
        match beat {
            Beat::Evicted => {
                shared.evicted.store(true, Ordering::SeqCst);
                shared.emit(MembershipEvent::Evicted);
                return false;
            }
            Beat::Restored => (self.check_due, self.data_lost) = (true, true),
            Beat::Refreshed | Beat::Reregistered => {}
        }
        self.beats_since_check += 1;
        if self.check_due || self.beats_since_check >= RUN_ID_CHECK_EVERY {
            self.check_server().await;
        }
        #[cfg(test)]
        if shared.hooks.sweep_off.load(Ordering::SeqCst) {
            return true;
        }
        if let Err(error) = shared.sweep().await {
            log::warn!("cluster: sweep failed: {error}");
        }
        true
    }

    /// Compares the server with the one we registered with; reports a reset if it
    /// changed or if our keys were lost. The beat before it has registered us again.
    async fn check_server(&mut self) {
        match self.shared.link.run_id().await {
            Ok(current) => {
                self.beats_since_check = 0;
                self.check_due = false;
                if current != self.run_id || self.data_lost {
                    self.run_id = current;
                    self.data_lost = false;
                    self.shared.note_reset();
                }
            }
            Err(error) => log::warn!("cluster: cannot read redis run_id: {error}"),
        }
    }
}

/// Reports the link down once, then reconnects when the backoff allows. True when
/// the link is back.
async fn restore_link(shared: &Shared, health: &mut LinkHealth) -> bool {
    if health.up {
        health.up = false;
        health.reset(&shared.timings);
        shared.emit(MembershipEvent::RedisDown);
    }
    if Instant::now() < health.next_attempt {
        return false;
    }
    match shared.link.reconnect().await {
        Ok(()) => {
            health.up = true;
            shared.emit(MembershipEvent::RedisUp);
            true
        }
        Err(_) => {
            health.failed(&shared.timings);
            false
        }
    }
}

fn record_json(record: &NodeRecord) -> Result<String, ClusterError> {
    serde_json::to_string(record).map_err(|e| ClusterError::Protocol(e.to_string()))
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these locks is replaced whole, never left half-updated, so a
    // panic elsewhere does not make it unsafe to read.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
