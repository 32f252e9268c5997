//! The single-node registry: in-process maps from ids to actors on this node.
//!
//! Rooms and peers are activated on first use on the node's core arbiter. A room whose
//! actor died keeps its slot in `Restarting` state until the supervisor has started its
//! successor; commands sent meanwhile wait there and are handed over, so a crash loses
//! only the command that caused it.
//!
//! Rooms and peers nobody has used for a while are passivated: the registry sends
//! `Passivate` and, from then on, keeps their commands in a `Passivating` slot. Every
//! command reaches an actor through this registry under one lock, so `Passivate` is the
//! last message the actor gets; it answers whether it is idle. An idle actor with nothing
//! waiting stops and loses its slot (the next command activates a fresh one, which loads
//! from the store); otherwise it gets the waiting commands and goes on.

use crate::messages::{
    Delivery, PeerCommand, RoomCommand, RoomCrash, RoomCrashed, TransferCommand, TransferInfo,
    TransferStart,
};
use crate::metrics::METRICS;
use crate::peer::PeerActor;
use crate::protocol::{NodeTag, Outbound, RoomName, SessionId, User, UserId};
use crate::registry::{
    ClusterView, Host, RegistryError, RoomStatus, Router, SessionInfo, SessionRef,
};
use crate::room::RoomActor;
use crate::transfer::TransferActor;
use crate::NodeContext;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A welcomed session: its handle and what the admin console shows of it.
struct SessionEntry {
    sink: SessionRef,
    user: User,
    since_ms: i64,
    rooms: Vec<RoomName>,
}

enum RoomSlot {
    Live {
        addr: Addr<RoomActor>,
        sessions: usize,
        last_used: Instant,
    },
    /// The actor died; these commands wait for its successor.
    Restarting(Vec<RoomCommand>),
    /// Asked to stop for want of use; these commands wait for its answer.
    Passivating {
        addr: Addr<RoomActor>,
        waiting: Vec<RoomCommand>,
    },
}

enum PeerSlot {
    Live {
        addr: Addr<PeerActor>,
        last_used: Instant,
    },
    Passivating {
        addr: Addr<PeerActor>,
        waiting: Vec<PeerCommand>,
    },
}

pub struct LocalRegistry {
    /// Where rooms and peers run.
    arbiter: ArbiterHandle,
    /// Set once at start; actors started here get a strong reference.
    node: OnceLock<Weak<NodeContext>>,
    /// Where crashed rooms are reported (the supervisor).
    crashes: OnceLock<Recipient<RoomCrashed>>,
    rooms: Mutex<HashMap<RoomName, RoomSlot>>,
    peers: Mutex<HashMap<UserId, PeerSlot>>,
    /// Welcomed sessions, and whose they are.
    sessions: RwLock<HashMap<SessionId, SessionEntry>>,
    /// Welcomed sessions per user.
    online: Mutex<HashMap<UserId, usize>>,
    transfers: Mutex<HashMap<Uuid, Addr<TransferActor>>>,
    /// Set on shutdown: dying actors are not restarted any more.
    shutting_down: AtomicBool,
}

impl LocalRegistry {
    pub fn new(arbiter: ArbiterHandle) -> Self {
        LocalRegistry {
            arbiter,
            node: OnceLock::new(),
            crashes: OnceLock::new(),
            rooms: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            sessions: RwLock::new(HashMap::new()),
            online: Mutex::new(HashMap::new()),
            transfers: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Completes the wiring: the node context the actors get, and the supervisor that
    /// restarts them.
    pub fn attach(&self, node: &Arc<NodeContext>, crashes: Recipient<RoomCrashed>) {
        let _ = self.node.set(Arc::downgrade(node));
        let _ = self.crashes.set(crashes);
    }

    fn node(&self) -> Result<Arc<NodeContext>, RegistryError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(RegistryError::ShuttingDown);
        }
        self.node
            .get()
            .and_then(Weak::upgrade)
            .ok_or(RegistryError::ShuttingDown)
    }

    fn start_room(
        &self,
        room: RoomName,
        node: Arc<NodeContext>,
        inherited: Option<RoomCrash>,
    ) -> Addr<RoomActor> {
        RoomActor::start_in_arbiter(&self.arbiter, move |_| {
            RoomActor::new(room, node, inherited)
        })
    }

    fn sessions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SessionId, SessionEntry>> {
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sessions_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SessionId, SessionEntry>> {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn online(&self) -> MutexGuard<'_, HashMap<UserId, usize>> {
        self.online
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn transfers(&self) -> MutexGuard<'_, HashMap<Uuid, Addr<TransferActor>>> {
        self.transfers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, RoomSlot>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<UserId, PeerSlot>> {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many welcomed sessions `user` has on this node.
    pub fn sessions_of(&self, user: UserId) -> usize {
        self.online().get(&user).copied().unwrap_or(0)
    }

    /// The transfers whose actors run here.
    pub fn transfer_ids(&self) -> Vec<Uuid> {
        LocalRegistry::transfers(self).keys().copied().collect()
    }

    /// Whether a transfer's actor runs here.
    pub fn has_transfer(&self, id: Uuid) -> bool {
        LocalRegistry::transfers(self).contains_key(&id)
    }

    /// Every user with welcomed sessions here, and how many.
    pub fn users_here(&self) -> Vec<(UserId, usize)> {
        self.online().iter().map(|(user, n)| (*user, *n)).collect()
    }

    /// Whose a welcomed session is.
    pub fn user_of(&self, session: SessionId) -> Option<UserId> {
        LocalRegistry::sessions(self)
            .get(&session)
            .map(|entry| entry.user.id)
    }

    /// Drops a room's slot without restarting it: its instance stopped because another
    /// node owns the room now.
    pub fn forget_room(&self, room: &RoomName) {
        let mut rooms = self.rooms();
        if rooms.remove(room).is_some() {
            METRICS.rooms_live.set(rooms.len() as i64);
        }
    }

    fn start_peer(&self, user: UserId) -> Result<Addr<PeerActor>, RegistryError> {
        let node = self.node()?;
        Ok(PeerActor::start_in_arbiter(&self.arbiter, move |_| {
            PeerActor::new(user, node)
        }))
    }
}

/// The end of a passivation, for rooms and peers alike: `None` when the actor must stop
/// (it is idle and nothing waits for it); otherwise its address, the waiting commands sent.
fn settle<A, C>(addr: Addr<A>, waiting: Vec<C>, idle: bool) -> Option<Addr<A>>
where
    A: Actor + Handler<C>,
    A::Context: actix::dev::ToEnvelope<A, C>,
    C: Message + Send + 'static,
    C::Result: Send,
{
    if idle && waiting.is_empty() {
        return None;
    }
    for command in waiting {
        addr.do_send(command);
    }
    Some(addr)
}

impl Router for LocalRegistry {
    fn send_session(&self, id: SessionId, out: Outbound) -> bool {
        Host::session(self, id).is_some_and(|s| s.deliver(out))
    }

    fn deliver(&self, _node: NodeTag, delivery: Delivery) {
        let sessions = LocalRegistry::sessions(self);
        for id in &delivery.sessions {
            if let Some(entry) = sessions.get(id) {
                entry.sink.deliver(delivery.out.clone());
            }
        }
        if let Some((id, out)) = delivery.personal {
            if let Some(entry) = sessions.get(&id) {
                entry.sink.deliver(out);
            }
        }
    }

    fn send_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), RegistryError> {
        let mut rooms = self.rooms();
        match rooms.get_mut(room) {
            Some(RoomSlot::Live {
                addr, last_used, ..
            }) if addr.connected() => {
                *last_used = Instant::now();
                addr.do_send(command);
            }
            Some(RoomSlot::Restarting(waiting)) | Some(RoomSlot::Passivating { waiting, .. }) => {
                waiting.push(command)
            }
            Some(slot) => *slot = RoomSlot::Restarting(vec![command]),
            None => {
                let addr = self.start_room(room.clone(), self.node()?, None);
                addr.do_send(command);
                let slot = RoomSlot::Live {
                    addr,
                    sessions: 0,
                    last_used: Instant::now(),
                };
                rooms.insert(room.clone(), slot);
                METRICS.rooms_live.set(rooms.len() as i64);
            }
        }
        Ok(())
    }

    fn send_user(&self, user: UserId, command: PeerCommand) -> Result<(), RegistryError> {
        let mut peers = self.peers();
        match peers.get_mut(&user) {
            Some(PeerSlot::Live { addr, last_used }) if addr.connected() => {
                *last_used = Instant::now();
                addr.do_send(command);
            }
            Some(PeerSlot::Passivating { waiting, .. }) => waiting.push(command),
            _ => {
                let addr = self.start_peer(user)?;
                addr.do_send(command);
                let slot = PeerSlot::Live {
                    addr,
                    last_used: Instant::now(),
                };
                peers.insert(user, slot);
                METRICS.peers_live.set(peers.len() as i64);
            }
        }
        Ok(())
    }

    fn send_transfer(&self, id: Uuid, command: TransferCommand) -> Result<(), RegistryError> {
        match self.transfers().get(&id) {
            Some(addr) if addr.connected() => {
                addr.do_send(command);
                Ok(())
            }
            _ => Err(RegistryError::NotFound(format!("transfer {id}"))),
        }
    }

    fn create_transfer(&self, id: Uuid, start: TransferStart) -> Result<(), RegistryError> {
        let node = self.node()?;
        // Hold the map while the actor starts: it announces itself at once, and answers to
        // that announcement must find it here.
        let mut transfers = self.transfers();
        let addr = TransferActor::start_in_arbiter(&self.arbiter, move |_| {
            TransferActor::new(id, node, start)
        });
        transfers.insert(id, addr);
        Ok(())
    }

    fn user_online(&self, user: UserId) -> bool {
        self.online().contains_key(&user)
    }

    fn user_nodes(&self, user: UserId) -> futures_util::future::BoxFuture<'static, Vec<NodeTag>> {
        let here = match (self.user_online(user), self.node()) {
            (true, Ok(node)) => vec![node.node_tag],
            _ => Vec::new(),
        };
        Box::pin(std::future::ready(here))
    }
}

impl Host for LocalRegistry {
    fn session(&self, id: SessionId) -> Option<SessionRef> {
        self.sessions().get(&id).map(|entry| entry.sink.clone())
    }

    fn register_session(&self, session: SessionRef, user: User) {
        let user_id = user.id;
        let entry = SessionEntry {
            sink: session.clone(),
            user,
            since_ms: crate::now_ms(),
            rooms: Vec::new(),
        };
        let previous = self.sessions_mut().insert(session.id, entry);
        if previous.is_none() {
            *self.online().entry(user_id).or_default() += 1;
        }
    }

    fn unregister_session(&self, id: SessionId) {
        let Some(entry) = self.sessions_mut().remove(&id) else {
            return;
        };
        let mut online = self.online();
        if let Some(count) = online.get_mut(&entry.user.id) {
            *count -= 1;
            if *count == 0 {
                online.remove(&entry.user.id);
            }
        }
    }

    fn note_session_rooms(&self, id: SessionId, rooms: Vec<RoomName>) {
        if let Some(entry) = self.sessions_mut().get_mut(&id) {
            entry.rooms = rooms;
        }
    }

    fn restore_transfer(&self, record: crate::store::TransferRecord) -> Result<(), RegistryError> {
        let digest = crate::hash::Sha256State::from_bytes(&record.digest).map_err(|e| {
            RegistryError::Unavailable(format!("transfer {}: stored digest state: {e}", record.id))
        })?;
        let node = self.node()?;
        let id = record.id;
        let mut transfers = self.transfers();
        if transfers.get(&id).is_some_and(|addr| addr.connected()) {
            return Ok(()); // already running here: two takeovers raced, the first won
        }
        let unanswered = !record.receivers.iter().any(|r| r.active);
        node.transfers.restore(record.sender.id, unanswered);
        let addr = TransferActor::start_in_arbiter(&self.arbiter, move |_| {
            TransferActor::restored(node, record, digest)
        });
        transfers.insert(id, addr);
        Ok(())
    }

    fn transfer_ended(&self, id: Uuid) {
        self.transfers().remove(&id);
    }

    fn report_room_crash(&self, crash: RoomCrash) {
        if self.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let mut rooms = self.rooms();
        if let Some(slot) = rooms.get_mut(&crash.room) {
            match slot {
                RoomSlot::Live { .. } => *slot = RoomSlot::Restarting(Vec::new()),
                RoomSlot::Passivating { waiting, .. } => {
                    *slot = RoomSlot::Restarting(std::mem::take(waiting))
                }
                RoomSlot::Restarting(_) => {}
            }
        }
        drop(rooms);
        match self.crashes.get() {
            Some(supervisor) => supervisor.do_send(RoomCrashed(crash)),
            None => log::error!("room {} crashed and no supervisor is attached", crash.room),
        }
    }

    fn room_moved(&self, moved: RoomCrash) {
        // A single node owns every room and fences nothing, so this is not expected; if it
        // happens, a fresh instance (which loads what the store holds) is the safe answer.
        Host::report_room_crash(self, moved)
    }

    fn restart_room(&self, crash: RoomCrash) {
        let Ok(node) = self.node() else { return };
        let mut rooms = self.rooms();
        let waiting = match rooms.remove(&crash.room) {
            Some(RoomSlot::Restarting(waiting)) => waiting,
            Some(live @ (RoomSlot::Live { .. } | RoomSlot::Passivating { .. })) => {
                // Someone already started a successor; keep it.
                rooms.insert(crash.room.clone(), live);
                return;
            }
            None => Vec::new(),
        };
        let room = crash.room.clone();
        let sessions = crash.members.len();
        let addr = self.start_room(room.clone(), node, Some(crash));
        for command in waiting {
            addr.do_send(command);
        }
        let slot = RoomSlot::Live {
            addr,
            sessions,
            last_used: Instant::now(),
        };
        rooms.insert(room, slot);
    }

    fn passivate_idle(&self, idle_for: Duration) {
        let now = Instant::now();
        let idle = |last_used: &Instant| now.saturating_duration_since(*last_used) >= idle_for;
        for slot in self.rooms().values_mut() {
            if let RoomSlot::Live {
                addr,
                sessions: 0,
                last_used,
            } = slot
            {
                if idle(last_used) {
                    addr.do_send(RoomCommand::Passivate);
                    let addr = addr.clone();
                    *slot = RoomSlot::Passivating {
                        addr,
                        waiting: Vec::new(),
                    };
                }
            }
        }
        let online: HashSet<UserId> = self.online().keys().copied().collect();
        for (user, slot) in self.peers().iter_mut() {
            if let PeerSlot::Live { addr, last_used } = slot {
                if idle(last_used) && !online.contains(user) {
                    addr.do_send(PeerCommand::Passivate);
                    let addr = addr.clone();
                    *slot = PeerSlot::Passivating {
                        addr,
                        waiting: Vec::new(),
                    };
                }
            }
        }
    }

    fn finish_room_passivation(&self, room: &RoomName, idle: bool, sessions: usize) -> bool {
        let mut rooms = self.rooms();
        let Some(RoomSlot::Passivating { addr, waiting }) = rooms.remove(room) else {
            return false; // not asked, or crashed and restarted meanwhile: nothing to do
        };
        let Some(addr) = settle(addr, waiting, idle) else {
            METRICS.rooms_live.set(rooms.len() as i64);
            return true;
        };
        let slot = RoomSlot::Live {
            addr,
            sessions,
            last_used: Instant::now(),
        };
        rooms.insert(room.clone(), slot);
        false
    }

    fn finish_peer_passivation(&self, user: UserId, idle: bool) -> bool {
        let mut peers = self.peers();
        let Some(PeerSlot::Passivating { addr, waiting }) = peers.remove(&user) else {
            return false;
        };
        let Some(addr) = settle(addr, waiting, idle) else {
            METRICS.peers_live.set(peers.len() as i64);
            return true;
        };
        let slot = PeerSlot::Live {
            addr,
            last_used: Instant::now(),
        };
        peers.insert(user, slot);
        false
    }

    fn room_size_changed(&self, room: &RoomName, size: usize) {
        if let Some(RoomSlot::Live { sessions, .. }) = self.rooms().get_mut(room) {
            *sessions = size;
        }
    }

    fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

impl ClusterView for LocalRegistry {
    fn sessions(&self) -> Vec<SessionInfo> {
        let mut list: Vec<SessionInfo> = LocalRegistry::sessions(self)
            .iter()
            .map(|(id, entry)| SessionInfo {
                id: *id,
                user: entry.user.clone(),
                since_ms: entry.since_ms,
                rooms: entry.rooms.clone(),
            })
            .collect();
        list.sort_by_key(|s| s.since_ms);
        list
    }

    fn rooms(&self) -> Vec<RoomStatus> {
        let mut list: Vec<RoomStatus> = LocalRegistry::rooms(self)
            .iter()
            .map(|(room, slot)| RoomStatus {
                room: room.clone(),
                sessions: match slot {
                    RoomSlot::Live { sessions, .. } => *sessions,
                    RoomSlot::Restarting(_) | RoomSlot::Passivating { .. } => 0,
                },
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        list
    }

    fn session_count(&self) -> usize {
        self.sessions().len()
    }

    fn transfer_count(&self) -> usize {
        self.transfers().len()
    }

    fn transfers(&self) -> futures_util::future::BoxFuture<'static, Vec<TransferInfo>> {
        let addrs: Vec<Addr<TransferActor>> =
            LocalRegistry::transfers(self).values().cloned().collect();
        Box::pin(async move {
            let answers = futures_util::future::join_all(
                addrs
                    .iter()
                    .map(|addr| addr.send(crate::messages::Snapshot)),
            )
            .await;
            answers
                .into_iter()
                .filter_map(|answer| answer.ok().flatten())
                .collect()
        })
    }
}
