//! The single-node registry: in-process maps from ids to actors on this node.
//!
//! Rooms and peers are activated on first use on the node's core arbiter. A room whose
//! actor died keeps its slot in `Restarting` state until the supervisor has started its
//! successor; commands sent meanwhile wait there and are handed over, so a crash loses
//! only the command that caused it.

use crate::peer::{PeerActor, PeerCommand};
use crate::protocol::{RoomName, SessionId, UserId};
use crate::registry::{Registry, RegistryError, RoomCrash, RoomStatus, SessionRef};
use crate::room::{RoomActor, RoomCommand};
use crate::supervisor::{NodeSupervisor, RoomCrashed};
use crate::NodeContext;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

enum RoomSlot {
    Live {
        addr: Addr<RoomActor>,
        sessions: usize,
    },
    /// The actor died; these commands wait for its successor.
    Restarting(Vec<RoomCommand>),
}

pub struct LocalRegistry {
    /// Where rooms and peers run.
    arbiter: ArbiterHandle,
    /// Set once at start; actors started here get a strong reference.
    node: OnceLock<Weak<NodeContext>>,
    supervisor: OnceLock<Addr<NodeSupervisor>>,
    rooms: Mutex<HashMap<RoomName, RoomSlot>>,
    peers: Mutex<HashMap<UserId, Addr<PeerActor>>>,
    sessions: RwLock<HashMap<SessionId, SessionRef>>,
    /// Set on shutdown: dying actors are not restarted any more.
    shutting_down: AtomicBool,
}

impl LocalRegistry {
    pub fn new(arbiter: ArbiterHandle) -> Self {
        LocalRegistry {
            arbiter,
            node: OnceLock::new(),
            supervisor: OnceLock::new(),
            rooms: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            sessions: RwLock::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Completes the wiring: the node context the actors get, and the supervisor that
    /// restarts them.
    pub fn attach(&self, node: &Arc<NodeContext>, supervisor: Addr<NodeSupervisor>) {
        let _ = self.node.set(Arc::downgrade(node));
        let _ = self.supervisor.set(supervisor);
    }

    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
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

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, RoomSlot>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Registry for LocalRegistry {
    fn send_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), RegistryError> {
        let mut rooms = self.rooms();
        match rooms.get_mut(room) {
            Some(RoomSlot::Live { addr, .. }) if addr.connected() => addr.do_send(command),
            Some(RoomSlot::Restarting(waiting)) => waiting.push(command),
            Some(slot) => *slot = RoomSlot::Restarting(vec![command]),
            None => {
                let addr = self.start_room(room.clone(), self.node()?, None);
                addr.do_send(command);
                rooms.insert(room.clone(), RoomSlot::Live { addr, sessions: 0 });
            }
        }
        Ok(())
    }

    fn send_user(&self, user: UserId, command: PeerCommand) -> Result<(), RegistryError> {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match peers.get(&user) {
            Some(addr) if addr.connected() => addr.do_send(command),
            _ => {
                let node = self.node()?;
                let addr =
                    PeerActor::start_in_arbiter(&self.arbiter, move |_| PeerActor::new(user, node));
                addr.do_send(command);
                peers.insert(user, addr);
            }
        }
        Ok(())
    }

    fn session(&self, id: SessionId) -> Option<SessionRef> {
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
    }

    fn register_session(&self, session: SessionRef) {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(session.id, session);
    }

    fn unregister_session(&self, id: SessionId) {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&id);
    }

    fn rooms(&self) -> Vec<RoomStatus> {
        let mut list: Vec<RoomStatus> = LocalRegistry::rooms(self)
            .iter()
            .map(|(room, slot)| RoomStatus {
                room: room.clone(),
                sessions: match slot {
                    RoomSlot::Live { sessions, .. } => *sessions,
                    RoomSlot::Restarting(_) => 0,
                },
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        list
    }

    fn session_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    fn report_room_crash(&self, crash: RoomCrash) {
        if self.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let mut rooms = self.rooms();
        if let Some(slot) = rooms.get_mut(&crash.room) {
            if let RoomSlot::Live { .. } = slot {
                *slot = RoomSlot::Restarting(Vec::new());
            }
        }
        drop(rooms);
        match self.supervisor.get() {
            Some(supervisor) => supervisor.do_send(RoomCrashed(crash)),
            None => log::error!("room {} crashed and no supervisor is attached", crash.room),
        }
    }

    fn restart_room(&self, crash: RoomCrash) {
        let Ok(node) = self.node() else { return };
        let mut rooms = self.rooms();
        let waiting = match rooms.remove(&crash.room) {
            Some(RoomSlot::Restarting(waiting)) => waiting,
            Some(live @ RoomSlot::Live { .. }) => {
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
        rooms.insert(room, RoomSlot::Live { addr, sessions });
    }

    fn room_size_changed(&self, room: &RoomName, size: usize) {
        if let Some(RoomSlot::Live { sessions, .. }) = self.rooms().get_mut(room) {
            *sessions = size;
        }
    }
}
