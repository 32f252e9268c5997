//! `NodeSupervisor`: starts the node's actor runtime, restarts rooms that crash, and stops
//! restarting on shutdown.
//!
//! A crashed room is restarted after a delay that doubles with each crash of that room
//! within a minute (100 ms up to 10 s), so a room that crashes on every start cannot spin
//! the node.

use crate::messages::RoomCrashed;
use crate::metrics::METRICS;
use crate::protocol::RoomName;
use crate::NodeContext;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);
/// Crashes further apart than this do not escalate the delay.
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// The node is stopping: restart nothing from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ShutDown;

pub struct NodeSupervisor {
    node: Arc<NodeContext>,
    /// Recent crashes per room: how many, and when the first of them was.
    crashes: HashMap<RoomName, (u32, Instant)>,
    /// The thread rooms and peers run on; kept so it lives as long as the node.
    _core: Arbiter,
}

impl NodeSupervisor {
    pub fn new(node: Arc<NodeContext>, core: Arbiter) -> Self {
        NodeSupervisor {
            node,
            crashes: HashMap::new(),
            _core: core,
        }
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
            supervisor.node.host.passivate_idle(idle_for)
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
            supervisor.node.host.restart_room(crash)
        });
    }
}

impl Handler<ShutDown> for NodeSupervisor {
    type Result = ();

    fn handle(&mut self, _: ShutDown, _: &mut Context<Self>) {
        self.node.host.shut_down();
    }
}
