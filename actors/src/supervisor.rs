//! `NodeSupervisor`: starts the node's actor runtime, restarts rooms that crash, and stops
//! restarting on shutdown.
//!
//! A crashed room is restarted after a delay that doubles with each crash of that room
//! within a minute (100 ms up to 10 s), so a room that crashes on every start cannot spin
//! the node.

use crate::limits::{AddressCounter, ByteBudget, Limits, SignupLimiter, UserRateLimiter};
use crate::local_registry::LocalRegistry;
use crate::metrics::METRICS;
use crate::protocol::RoomName;
use crate::registry::RoomCrash;
use crate::store::Store;
use crate::NodeContext;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);
/// Crashes further apart than this do not escalate the delay.
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// A room died; its state is in the report.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RoomCrashed(pub RoomCrash);

/// The node is stopping: restart nothing from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ShutDown;

pub struct NodeSupervisor {
    node: Arc<NodeContext>,
    registry: Arc<LocalRegistry>,
    /// Recent crashes per room: how many, and when the first of them was.
    crashes: HashMap<RoomName, (u32, Instant)>,
    /// The thread rooms and peers run on; kept so it lives as long as the node.
    _core: Arbiter,
}

/// What starting the runtime gives the node.
pub struct Runtime {
    pub node: Arc<NodeContext>,
    pub supervisor: Addr<NodeSupervisor>,
}

/// How to build a node's runtime.
pub struct RuntimeConfig {
    pub node_id: String,
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    pub faults: bool,
}

impl NodeSupervisor {
    /// Starts the core arbiter, the registry and the supervisor. Call inside a running
    /// actix system.
    pub fn launch(config: RuntimeConfig) -> Result<Runtime, String> {
        let core = Arbiter::new();
        let registry = Arc::new(LocalRegistry::new(core.handle()));
        let hasher = crate::hash_actor::HashActor::start()
            .map_err(|e| format!("cannot start the hash actor: {e}"))?;
        let transfers =
            crate::transfer::book::TransferBook::new(crate::transfer::book::TransferLimits {
                per_user: config.limits.transfers_per_user,
                per_node: config.limits.transfers_per_node,
                offers_per_minute: config.limits.offers_per_minute,
            });
        let node = Arc::new(NodeContext {
            node_id: config.node_id,
            registry: registry.clone(),
            store: config.store,
            rate: UserRateLimiter::new(config.limits.rate_per_sec, config.limits.rate_burst),
            addresses: Arc::new(AddressCounter::new(config.limits.connections_per_address)),
            creations: UserRateLimiter::new(
                f64::from(config.limits.creations_per_minute) / 60.0,
                f64::from(config.limits.creations_per_minute),
            ),
            signups: SignupLimiter::new(
                config.limits.signups_per_minute as f64 / 60.0,
                config.limits.signups_per_minute as f64,
            ),
            transfers,
            transfer_memory: ByteBudget::new(config.limits.transfer_memory),
            storage_full: Default::default(),
            hasher,
            limits: config.limits,
            faults: config.faults,
        });
        let supervisor = NodeSupervisor {
            node: node.clone(),
            registry: registry.clone(),
            crashes: HashMap::new(),
            _core: core,
        }
        .start();
        registry.attach(&node, supervisor.clone());
        Ok(Runtime { node, supervisor })
    }

    fn restart_delay(&mut self, room: &RoomName) -> Duration {
        let now = Instant::now();
        let entry = self.crashes.entry(room.clone()).or_insert((0, now));
        if now.duration_since(entry.1) > CRASH_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        let doublings = entry.0.saturating_sub(1).min(10);
        (FIRST_RESTART_DELAY * 2u32.pow(doublings)).min(MAX_RESTART_DELAY)
    }
}

impl Actor for NodeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Take rooms and users nobody has used for `idle_actor_ttl` out of memory.
        let idle_for = self.node.limits.idle_actor_ttl;
        let every = (idle_for / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        ctx.run_interval(every, move |supervisor, _| {
            supervisor.node.registry.passivate_idle(idle_for)
        });
    }
}

impl Handler<RoomCrashed> for NodeSupervisor {
    type Result = ();

    fn handle(&mut self, RoomCrashed(crash): RoomCrashed, ctx: &mut Context<Self>) {
        METRICS.room_restarts.inc();
        let delay = self.restart_delay(&crash.room);
        log::warn!(
            "room {} crashed with {} sessions; restarting in {} ms",
            crash.room,
            crash.members.len(),
            delay.as_millis()
        );
        ctx.run_later(delay, move |supervisor, _| {
            supervisor.node.registry.restart_room(crash)
        });
    }
}

impl Handler<ShutDown> for NodeSupervisor {
    type Result = ();

    fn handle(&mut self, _: ShutDown, _: &mut Context<Self>) {
        self.registry.shut_down();
    }
}
