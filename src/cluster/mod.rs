//! The cluster: which nodes are alive ([`membership`]), which node owns each room,
//! conversation and transfer ([`directory`]), and where each user is connected
//! ([`presence`]), all kept in Redis over one reconnecting connection ([`redis_conn`]);
//! the authenticated node-to-node TCP links that carry envelopes ([`link`]); and this
//! node's port for the actors' cluster registry, which ties them together ([`node`]).
//!
//! Every decision that two nodes could race on is one Lua script, so Redis serialises
//! it. Membership owns the rule that ties the three together: an incarnation whose alive
//! key is gone is declared dead inside a script that leaves a tombstone and purges its
//! presence and directory entries in the same step.
//!
//! # Keys (all under a configurable prefix `P`, e.g. `peerlink:`)
//!
//! | key | type | holds | lifetime |
//! | --- | --- | --- | --- |
//! | `P nodes` | set | registered incarnations, `{id}:{incarnation}` | removed at death |
//! | `P node:{id}:{inc}` | string | JSON `NodeRecord` | removed at death |
//! | `P alive:{id}:{inc}` | string | `1` | PX `dead_after`, refreshed every beat |
//! | `P dead:{id}:{inc}` | string | tombstone | PX 1 h |
//! | `P dir:{kind}:{key}` | string | owner `{id}:{inc}` | until released or taken over |
//! | `P owned:{id}:{inc}` | set | `{kind}:{key}` entries it owns | removed at death |
//! | `P sessions:{id}:{inc}` | hash | user → session count | PX 4 × `dead_after`, refreshed every beat |
//! | `P presence:{user}` | set | incarnations with sessions of the user | cleaned at death and on lookup |
//!
//! The scripts touch keys they compute from the prefix, so this layout works on one
//! Redis (or a primary with replicas), not on Redis Cluster.

pub mod directory;
pub mod link;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod redis_conn;

#[cfg(test)]
mod test_redis;
