//! The cluster registry: the same [`Router`], [`Host`] and [`ClusterView`] as a single node,
//! over a [`ClusterPort`] (the node's Redis directory, presence and node-to-node links).
//!
//! - **Placement.** A room lives on the node the directory names. The first command for a
//!   room this node has not placed waits (with any that follow, in order) while the port
//!   finds the owner, claiming the room for this node when nobody alive holds it; then they
//!   go to the local actor or, in one envelope each, to the owner.
//! - **Hosting.** Actors that live here are hosted by a [`LocalRegistry`], exactly as on a
//!   single node; a passivated room gives its directory entry back.
//! - **Following.** For every room with sessions of this node, the registry knows which
//!   of its sessions are members and the last `seq` the room fanned out to them. A gap in
//!   that order (envelopes lost on a broken link), the owner's death or a takeover makes it
//!   hand those members to whoever owns the room now ([`RoomCommand::Rejoin`]), which sends
//!   them everything after that `seq`, from the database when needed. Nothing acknowledged
//!   depends on an envelope arriving.
//!
//! It never blocks a caller: lookups in Redis run on the core arbiter.

use crate::envelope::{Envelope, MAX_HOPS};
use crate::local_registry::LocalRegistry;
use crate::messages::{
    Delivery, PeerCommand, RoomCommand, RoomCrash, RoomMember, TransferCommand, TransferInfo,
    TransferStart,
};
use crate::protocol::{
    ErrorCode, NodeTag, Outbound, ProtocolError, RequestId, RoomName, ServerFrame, SessionId, User,
    UserId,
};
use crate::registry::{
    ClusterView, Host, RegistryError, RoomStatus, Router, SessionInfo, SessionRef,
};
use crate::store::{OwnedKind, Store, TransferRecord};
use actix::ArbiterHandle;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use uuid::Uuid;

/// How long commands wait before a room whose owner could not be reached is looked up
/// again: long enough not to spin while a dead owner is being declared dead, short next to
/// the failover a client notices.
const RETRY_PLACEMENT: std::time::Duration = std::time::Duration::from_millis(200);

/// What the cluster registry needs from the node's cluster layer.
pub trait ClusterPort: Send + Sync + 'static {
    /// The node that owns `kind`/`key`, claiming it for this node when no live node does.
    fn place(
        &self,
        kind: OwnedKind,
        key: String,
    ) -> BoxFuture<'static, Result<NodeTag, RegistryError>>;
    /// The live node that owns `kind`/`key`, if any; claims nothing.
    fn locate(
        &self,
        kind: OwnedKind,
        key: String,
    ) -> BoxFuture<'static, Result<Option<NodeTag>, RegistryError>>;
    /// A cached placement of `kind`/`key` is wrong: look it up again next time.
    fn invalidate(&self, kind: OwnedKind, key: &str);
    /// This node no longer hosts `kind`/`key` (passivated): free its directory entry.
    fn release(&self, kind: OwnedKind, key: String);
    /// Queues an envelope for another node; when that node cannot be reached, the error
    /// and the envelope back (nothing was queued).
    fn send(&self, to: NodeTag, envelope: Envelope) -> Result<(), (RegistryError, Box<Envelope>)>;
    /// The nodes where `user` has sessions now.
    fn user_nodes(&self, user: UserId) -> BoxFuture<'static, Result<Vec<NodeTag>, RegistryError>>;
    /// Every live node, this one included.
    fn live_nodes(&self) -> Vec<NodeTag>;
    /// How many sessions `user` has on this node now (0: none).
    fn set_sessions(&self, user: UserId, count: usize);
}

/// Where commands for a room go.
enum Placement {
    Here,
    There(NodeTag),
    /// The owner is being looked up; these wait, in order.
    Finding(Vec<(RoomCommand, u8)>),
}

/// This node's sessions in one room, and how far the room's fan-out has reached them.
#[derive(Default)]
struct Followed {
    members: HashMap<SessionId, RoomMember>,
    /// The last `seq` fanned out to them (0: none seen yet).
    delivered: u64,
    /// A rejoin has been asked for and its replay has not started yet: fan-out past the
    /// gap is dropped meanwhile (the replay brings it).
    healing: bool,
}

pub struct ClusterRegistry {
    me: NodeTag,
    local: Arc<LocalRegistry>,
    port: Arc<dyn ClusterPort>,
    /// Where a transfer taken over is read from.
    store: Arc<dyn Store>,
    /// Where lookups run.
    arbiter: ArbiterHandle,
    this: Weak<ClusterRegistry>,
    rooms: Mutex<HashMap<RoomName, Placement>>,
    followed: Mutex<HashMap<RoomName, Followed>>,
    /// Transfers hosted elsewhere, where this node found them (a transfer lives where its
    /// sender offered it), or the commands waiting while it looks.
    transfers: Mutex<HashMap<Uuid, TransferPlace>>,
    /// What the node exports to Prometheus.
    pub stats: RegistryStats,
}

/// Counters of the cluster registry (the node exports them as metrics).
#[derive(Debug, Default)]
pub struct RegistryStats {
    /// Times this node handed its members of a room to its owner again (a gap, a death,
    /// a link that came back, a takeover).
    pub rooms_healed: std::sync::atomic::AtomicU64,
    /// Transfers this node took over from the store after their node died.
    pub transfers_taken_over: std::sync::atomic::AtomicU64,
}

enum TransferPlace {
    There(NodeTag),
    Finding(Vec<TransferCommand>),
}

/// How often, and how far apart, a node asks the directory about a transfer while Redis
/// does not answer, before it answers that the transfer is unavailable.
const LOCATE_TRIES: u32 = 10;
const LOCATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ClusterRegistry {
    pub fn new(
        me: NodeTag,
        local: Arc<LocalRegistry>,
        port: Arc<dyn ClusterPort>,
        store: Arc<dyn Store>,
        arbiter: ArbiterHandle,
    ) -> Arc<ClusterRegistry> {
        Arc::new_cyclic(|this| ClusterRegistry {
            me,
            local,
            port,
            store,
            arbiter,
            this: this.clone(),
            rooms: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashMap::new()),
            transfers: Mutex::new(HashMap::new()),
            stats: RegistryStats::default(),
        })
    }

    /// An envelope from another node.
    pub fn receive(&self, envelope: Envelope) {
        match envelope {
            Envelope::Room {
                room,
                command,
                hops,
            } => self.receive_room(room, command, hops),
            Envelope::Deliver(delivery) => self.receive_delivery(delivery),
            Envelope::User { user, command } => {
                if let Err(e) = self.local.send_user(user, command) {
                    log::debug!("user {user}: a command from another node was dropped: {e}");
                }
            }
            Envelope::Transfer { id, command, .. } => self.to_local_transfer(id, command),
        }
    }

    /// A command for a transfer hosted here; one for a transfer that is gone is answered.
    fn to_local_transfer(&self, id: Uuid, command: TransferCommand) {
        let requester = command.requester();
        if self.local.send_transfer(id, command).is_err() {
            self.no_such_transfer(id, requester);
        }
    }

    fn no_such_transfer(
        &self,
        id: Uuid,
        requester: Option<(SessionId, Option<RequestId>, Option<u64>)>,
    ) {
        if let Some((session, re, offset)) = requester {
            let error = ProtocolError::new(
                ErrorCode::NotFound,
                format!("there is no transfer {id} (it may have finished)"),
            );
            let out = ServerFrame::transfer_error(re.as_deref(), id, offset, &error).to_outbound();
            self.send_session(session, out);
        }
    }

    /// Sends a transfer command where the transfer lives, finding it first if needed;
    /// commands keep their order while it looks.
    fn route_transfer(&self, id: Uuid, command: TransferCommand) {
        let mut transfers = lock(&self.transfers);
        match transfers.get_mut(&id) {
            Some(TransferPlace::There(node)) => {
                let node = *node;
                let envelope = Envelope::Transfer {
                    id,
                    command,
                    hops: 0,
                };
                if let Err((e, envelope)) = self.port.send(node, envelope) {
                    log::debug!("transfer {id}: node {node} unreachable ({e}); looking again");
                    transfers.remove(&id);
                    drop(transfers);
                    if let Envelope::Transfer { command, .. } = *envelope {
                        self.route_transfer(id, command);
                    }
                }
            }
            Some(TransferPlace::Finding(waiting)) => waiting.push(command),
            None => {
                transfers.insert(id, TransferPlace::Finding(vec![command]));
                drop(transfers);
                self.locate_transfer(id, 0);
            }
        }
    }

    fn locate_transfer(&self, id: Uuid, tries: u32) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let lookup = self.port.locate(OwnedKind::Transfer, id.to_string());
        self.arbiter.spawn(async move {
            match lookup.await {
                Ok(Some(node)) => this.transfer_found(id, Some(node)),
                // Nobody hosts it: its owner died (or it finished). Whoever needs it next
                // takes it over from the store.
                Ok(None) => this.take_over_transfer(id).await,
                Err(_) if tries + 1 < LOCATE_TRIES => {
                    tokio::time::sleep(LOCATE_PAUSE).await;
                    this.locate_transfer(id, tries + 1);
                }
                Err(_) => this.transfer_found(id, None),
            }
        });
    }

    /// Claims a transfer nobody hosts and starts it here from its stored state (paused at
    /// its acknowledged offset); `None` when the store has no such transfer.
    async fn take_over_transfer(&self, id: Uuid) {
        let owner = match self.port.place(OwnedKind::Transfer, id.to_string()).await {
            Ok(owner) => owner,
            Err(e) => {
                log::warn!("transfer {id}: cannot claim it: {e}");
                return self.transfer_found(id, None);
            }
        };
        if owner != self.me || self.local.has_transfer(id) {
            return self.transfer_found(id, Some(owner));
        }
        match self.store.load_transfer(id).await {
            Ok(Some(record)) => {
                log::info!("transfer {id}: taken over at {} bytes", record.acked);
                let taken = &self.stats.transfers_taken_over;
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = self.local.restore_transfer(record) {
                    log::warn!("transfer {id}: cannot take it over: {e}");
                    return self.transfer_found(id, None);
                }
                self.transfer_found(id, Some(self.me));
            }
            Ok(None) => {
                self.port.release(OwnedKind::Transfer, id.to_string());
                self.transfer_found(id, None);
            }
            Err(e) => {
                log::warn!("transfer {id}: cannot read it to take it over: {e}");
                self.port.release(OwnedKind::Transfer, id.to_string());
                self.transfer_found(id, None);
            }
        }
    }

    fn transfer_found(&self, id: Uuid, node: Option<NodeTag>) {
        let waiting = match lock(&self.transfers).remove(&id) {
            Some(TransferPlace::Finding(waiting)) => waiting,
            _ => Vec::new(),
        };
        match node {
            Some(node) if node == self.me => {
                for command in waiting {
                    self.to_local_transfer(id, command);
                }
            }
            Some(node) => {
                lock(&self.transfers).insert(id, TransferPlace::There(node));
                for command in waiting {
                    self.route_transfer(id, command);
                }
            }
            None => {
                for command in waiting {
                    self.no_such_transfer(id, command.requester());
                }
            }
        }
    }

    /// A node is gone (declared dead): rooms it owned are placed again, and this node's
    /// sessions in them rejoin wherever they land.
    pub fn node_down(&self, node: NodeTag) {
        self.rehome(|placement| matches!(placement, Placement::There(n) if *n == node));
        // Transfers hosted here lose the sides that were connected there (they pause and
        // wait for them to come back elsewhere); transfers hosted there are found again.
        for id in self.local.transfer_ids() {
            let _ = self
                .local
                .send_transfer(id, TransferCommand::NodeGone(node));
        }
        lock(&self.transfers)
            .retain(|_, place| !matches!(place, TransferPlace::There(n) if *n == node));
    }

    /// An envelope that never left for a node that died: commands for its actors go to
    /// whoever owns them now; frames for its sessions are dropped (they are gone).
    pub fn reroute(&self, envelope: Envelope) {
        match envelope {
            Envelope::Room {
                room,
                command,
                hops,
            } => self.route_room(room, command, hops),
            Envelope::Transfer { id, command, .. } => {
                // Its placement named the dead node: look again (a lookup already under
                // way keeps its place, and this command waits behind it).
                let mut transfers = lock(&self.transfers);
                if matches!(transfers.get(&id), Some(TransferPlace::There(_))) {
                    transfers.remove(&id);
                }
                drop(transfers);
                self.route_transfer(id, command);
            }
            Envelope::Deliver(_) | Envelope::User { .. } => {}
        }
    }

    /// The link to `node` broke and came back: envelopes may have been lost, so this
    /// node's sessions in the rooms it owns rejoin them from what they have seen.
    pub fn link_restored(&self, node: NodeTag) {
        let rooms: Vec<RoomName> = lock(&self.rooms)
            .iter()
            .filter(|(_, p)| matches!(p, Placement::There(n) if *n == node))
            .map(|(room, _)| room.clone())
            .collect();
        for room in rooms {
            self.heal(&room);
        }
    }

    /// Redis lost its data: this node claims the rooms it hosts again (they go on where
    /// they are; other nodes keep sending to them). A room some other node claimed first
    /// meanwhile stays fenced by the database: its next commit here is refused, and its
    /// members move (see [`Host::room_moved`]).
    pub fn directory_reset(&self) {
        let hosted: Vec<RoomName> = lock(&self.rooms)
            .iter()
            .filter(|(_, p)| matches!(p, Placement::Here))
            .map(|(room, _)| room.clone())
            .collect();
        for room in hosted {
            let claim = self.port.place(OwnedKind::Room, room.to_string());
            let me = self.me;
            self.arbiter.spawn(async move {
                match claim.await {
                    Ok(owner) if owner == me => {}
                    Ok(owner) => {
                        log::warn!("room {room}: node {owner} claimed it during the Redis reset")
                    }
                    Err(e) => log::warn!("room {room}: could not claim it again: {e}"),
                }
            });
        }
    }

    fn rehome(&self, which: impl Fn(&Placement) -> bool) {
        let moved: Vec<RoomName> = {
            let mut rooms = lock(&self.rooms);
            let moved: Vec<RoomName> = rooms
                .iter()
                .filter(|(_, p)| which(p) && !matches!(p, Placement::Here))
                .map(|(room, _)| room.clone())
                .collect();
            for room in &moved {
                rooms.remove(room);
            }
            moved
        };
        for room in moved {
            self.port.invalidate(OwnedKind::Room, room.as_str());
            self.heal(&room);
        }
    }

    /// Hands this node's members of `room` to its owner, with the last `seq` they saw.
    fn heal(&self, room: &RoomName) {
        let rejoin = {
            let mut followed = lock(&self.followed);
            let Some(f) = followed.get_mut(room) else {
                return;
            };
            if f.members.is_empty() {
                return;
            }
            f.healing = true;
            let healed = &self.stats.rooms_healed;
            healed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            RoomCommand::Rejoin {
                members: f.members.values().cloned().collect(),
                since: f.delivered,
            }
        };
        self.route_room(room.clone(), rejoin, 0);
    }

    fn receive_room(&self, room: RoomName, command: RoomCommand, hops: u8) {
        let here = matches!(lock(&self.rooms).get(&room), Some(Placement::Here));
        if here {
            return self.to_local_room(&room, command);
        }
        if hops >= MAX_HOPS {
            log::warn!("room {room}: a command went round {hops} nodes; giving it up");
            return self.refuse(&command, "the room is moving between nodes; try again");
        }
        // The sender thought this node owns the room; whatever this node thought, look
        // again (the directory decides, and may give the room to this node).
        {
            let mut rooms = lock(&self.rooms);
            if matches!(rooms.get(&room), Some(Placement::There(_))) {
                rooms.remove(&room);
            }
        }
        self.port.invalidate(OwnedKind::Room, room.as_str());
        self.route_room(room, command, hops + 1);
    }

    fn to_local_room(&self, room: &RoomName, command: RoomCommand) {
        if let Err(e) = self.local.send_room(room, command) {
            log::debug!("room {room}: dropped a command: {e}");
        }
    }

    /// Sends a command the way the room's placement says, finding it first if needed.
    fn route_room(&self, room: RoomName, command: RoomCommand, hops: u8) {
        let mut rooms = lock(&self.rooms);
        match rooms.get_mut(&room) {
            Some(Placement::Here) => {
                drop(rooms);
                self.to_local_room(&room, command);
            }
            Some(Placement::There(node)) => {
                let node = *node;
                let envelope = Envelope::Room {
                    room: room.clone(),
                    command,
                    hops,
                };
                if let Err((e, envelope)) = self.port.send(node, envelope) {
                    // Nothing was queued: the owner is gone or its link is full. The
                    // command waits while the room is looked up again, a moment later.
                    log::debug!("room {room}: owner {node} unreachable ({e}); looking again");
                    let Envelope::Room { command, hops, .. } = *envelope else {
                        return;
                    };
                    rooms.insert(room.clone(), Placement::Finding(vec![(command, hops)]));
                    drop(rooms);
                    self.port.invalidate(OwnedKind::Room, room.as_str());
                    self.find_later(room);
                }
            }
            Some(Placement::Finding(waiting)) => waiting.push((command, hops)),
            None => {
                rooms.insert(room.clone(), Placement::Finding(vec![(command, hops)]));
                drop(rooms);
                self.find(room);
            }
        }
    }

    fn find(&self, room: RoomName) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let lookup = self.port.place(OwnedKind::Room, room.to_string());
        self.arbiter.spawn(async move {
            let found = lookup.await;
            this.placed(room, found);
        });
    }

    /// Looks the room up again after [`RETRY_PLACEMENT`].
    fn find_later(&self, room: RoomName) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        self.arbiter.spawn(async move {
            tokio::time::sleep(RETRY_PLACEMENT).await;
            this.find(room);
        });
    }

    fn placed(&self, room: RoomName, found: Result<NodeTag, RegistryError>) {
        let waiting = {
            let mut rooms = lock(&self.rooms);
            let waiting = match rooms.remove(&room) {
                Some(Placement::Finding(waiting)) => waiting,
                Some(other) => {
                    rooms.insert(room.clone(), other);
                    Vec::new()
                }
                None => Vec::new(),
            };
            match &found {
                Ok(node) if *node == self.me => {
                    rooms.insert(room.clone(), Placement::Here);
                }
                Ok(node) => {
                    rooms.insert(room.clone(), Placement::There(*node));
                }
                Err(_) => {}
            }
            waiting
        };
        match found {
            Ok(_) => {
                for (command, hops) in waiting {
                    self.route_room(room.clone(), command, hops);
                }
            }
            Err(e) => {
                log::warn!("room {room}: cannot find its owner: {e}");
                for (command, _) in waiting {
                    self.refuse(&command, "the cluster directory is unavailable; try again");
                }
            }
        }
    }

    /// Answers the command's requester with `unavailable`.
    fn refuse(&self, command: &RoomCommand, why: &str) {
        if let Some((session, re)) = command.requester() {
            let error = ProtocolError::new(ErrorCode::Unavailable, why);
            let out = ServerFrame::error(re.as_deref(), &error).to_outbound();
            self.send_session(session, out);
        }
    }

    /// Keeps track of this node's sessions joining and leaving rooms.
    fn follow(&self, room: &RoomName, command: &RoomCommand) {
        let mut followed = lock(&self.followed);
        match command {
            RoomCommand::Join { member, .. } if member.session.node == self.me => {
                let f = followed.entry(room.clone()).or_default();
                f.members.insert(member.session, member.clone());
            }
            RoomCommand::Leave { session, .. } | RoomCommand::SessionGone { session, .. } => {
                if let Some(f) = followed.get_mut(room) {
                    f.members.remove(session);
                    if f.members.is_empty() {
                        followed.remove(room);
                    }
                }
            }
            _ => {}
        }
    }

    fn receive_delivery(&self, delivery: Delivery) {
        if let Some((room, seq)) = &delivery.room_seq {
            if !self.in_order(room, *seq) {
                return;
            }
        }
        self.local.deliver(self.me, delivery);
    }

    /// Whether a room's fan-out of `seq` goes out now: duplicates are dropped, and a gap
    /// makes this node's members rejoin from the last `seq` they had.
    fn in_order(&self, room: &RoomName, seq: u64) -> bool {
        let gap = {
            let mut followed = lock(&self.followed);
            let Some(f) = followed.get_mut(room) else {
                return true;
            };
            if f.delivered == 0 || seq == f.delivered + 1 {
                f.delivered = seq;
                f.healing = false;
                return true;
            }
            if seq <= f.delivered {
                return false;
            }
            !std::mem::replace(&mut f.healing, true)
        };
        if gap {
            log::info!("room {room}: a gap before seq {seq}; rejoining its owner");
            self.heal(room);
        }
        false
    }

    /// Every user with sessions on this node, and how many.
    pub fn users_here(&self) -> Vec<(UserId, usize)> {
        self.local.users_here()
    }

    fn presence_changed(&self, user: UserId) {
        self.port.set_sessions(user, self.local.sessions_of(user));
    }
}

impl Router for ClusterRegistry {
    fn send_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), RegistryError> {
        self.follow(room, &command);
        self.route_room(room.clone(), command, 0);
        Ok(())
    }

    fn send_user(&self, user: UserId, command: PeerCommand) -> Result<(), RegistryError> {
        if !matches!(
            command,
            PeerCommand::Deliver { .. }
                | PeerCommand::Track(_)
                | PeerCommand::Untrack(_)
                | PeerCommand::Report(_)
        ) {
            // Everything else concerns this node's sessions of the user.
            return self.local.send_user(user, command);
        }
        let Some(this) = self.this.upgrade() else {
            return Err(RegistryError::ShuttingDown);
        };
        let nodes = self.port.user_nodes(user);
        self.arbiter.spawn(async move {
            // Without presence (Redis away, or just restarted empty) every live node is
            // asked: each delivers to the user's sessions it has, if any.
            let mut nodes = match nodes.await {
                Ok(nodes) if !nodes.is_empty() => nodes,
                Ok(_) | Err(_) => this.port.live_nodes(),
            };
            if !nodes.contains(&this.me) {
                nodes.push(this.me); // its sessions may not be published yet
            }
            for node in nodes {
                let command = command.clone();
                if node == this.me {
                    let _ = this.local.send_user(user, command);
                } else if let Err((e, _)) = this.port.send(node, Envelope::User { user, command }) {
                    log::debug!("user {user}: node {node} unreachable: {e}");
                }
            }
        });
        Ok(())
    }

    fn send_transfer(&self, id: Uuid, command: TransferCommand) -> Result<(), RegistryError> {
        if self.local.has_transfer(id) {
            return self.local.send_transfer(id, command);
        }
        self.route_transfer(id, command);
        Ok(())
    }

    fn send_session(&self, id: SessionId, out: Outbound) -> bool {
        if id.node == self.me {
            return self.local.send_session(id, out);
        }
        let delivery = Delivery {
            sessions: vec![id],
            out,
            room_seq: None,
            personal: None,
        };
        self.port.send(id.node, Envelope::Deliver(delivery)).is_ok()
    }

    fn deliver(&self, node: NodeTag, delivery: Delivery) {
        if node == self.me {
            return self.local.deliver(node, delivery);
        }
        if let Err((e, _)) = self.port.send(node, Envelope::Deliver(delivery)) {
            log::debug!("node {node} unreachable for a delivery: {e}");
        }
    }

    fn create_transfer(&self, id: Uuid, start: TransferStart) -> Result<(), RegistryError> {
        // Other nodes find it through the directory, so the entry is written before the
        // actor starts (and before anyone can hear of the offer): a node that finds no
        // entry may take the transfer over as one whose owner died.
        let Some(this) = self.this.upgrade() else {
            return Err(RegistryError::ShuttingDown);
        };
        let claim = self.port.place(OwnedKind::Transfer, id.to_string());
        self.arbiter.spawn(async move {
            if let Err(e) = claim.await {
                log::warn!("transfer {id}: could not record where it lives ({e}); other nodes cannot reach it");
            }
            if let Err(e) = this.local.create_transfer(id, start) {
                log::warn!("transfer {id}: could not start: {e}");
            }
        });
        Ok(())
    }

    fn user_online(&self, user: UserId) -> bool {
        self.local.user_online(user)
    }

    fn user_nodes(&self, user: UserId) -> BoxFuture<'static, Vec<NodeTag>> {
        let nodes = self.port.user_nodes(user);
        let local = self.local.user_online(user).then_some(self.me);
        Box::pin(async move {
            let mut nodes = nodes.await.unwrap_or_default();
            nodes.extend(local.filter(|me| !nodes.contains(me)));
            nodes
        })
    }
}

impl Host for ClusterRegistry {
    fn session(&self, id: SessionId) -> Option<SessionRef> {
        self.local.session(id)
    }

    fn register_session(&self, session: SessionRef, user: User) {
        let id = user.id;
        self.local.register_session(session, user);
        self.presence_changed(id);
    }

    fn unregister_session(&self, id: SessionId) {
        let user = self.local.user_of(id);
        self.local.unregister_session(id);
        if let Some(user) = user {
            self.presence_changed(user);
        }
    }

    fn note_session_rooms(&self, id: SessionId, rooms: Vec<RoomName>) {
        self.local.note_session_rooms(id, rooms)
    }

    fn restore_transfer(&self, record: TransferRecord) -> Result<(), RegistryError> {
        self.local.restore_transfer(record)
    }

    fn transfer_ended(&self, id: Uuid) {
        self.local.transfer_ended(id);
        self.port.release(OwnedKind::Transfer, id.to_string());
    }

    fn report_room_crash(&self, crash: RoomCrash) {
        self.local.report_room_crash(crash)
    }

    fn room_moved(&self, moved: RoomCrash) {
        // Another node took the room over: everything this instance had goes there.
        let room = moved.room.clone();
        self.local.forget_room(&room);
        lock(&self.rooms).remove(&room);
        self.port.invalidate(OwnedKind::Room, room.as_str());
        if !moved.members.is_empty() {
            let rejoin = RoomCommand::Rejoin {
                members: moved.members,
                since: moved.delivered_seq,
            };
            self.route_room(room, rejoin, 0);
        }
    }

    fn restart_room(&self, crash: RoomCrash) {
        self.local.restart_room(crash)
    }

    fn passivate_idle(&self, idle_for: std::time::Duration) {
        self.local.passivate_idle(idle_for)
    }

    fn finish_room_passivation(&self, room: &RoomName, idle: bool, sessions: usize) -> bool {
        let stopped = self.local.finish_room_passivation(room, idle, sessions);
        if stopped {
            let mut rooms = lock(&self.rooms);
            if matches!(rooms.get(room), Some(Placement::Here)) {
                rooms.remove(room);
            }
            drop(rooms);
            self.port.release(OwnedKind::Room, room.to_string());
        }
        stopped
    }

    fn finish_peer_passivation(&self, user: UserId, idle: bool) -> bool {
        self.local.finish_peer_passivation(user, idle)
    }

    fn room_size_changed(&self, room: &RoomName, sessions: usize) {
        self.local.room_size_changed(room, sessions)
    }

    fn shut_down(&self) {
        self.local.shut_down()
    }
}

impl ClusterView for ClusterRegistry {
    fn sessions(&self) -> Vec<SessionInfo> {
        ClusterView::sessions(&*self.local)
    }

    fn rooms(&self) -> Vec<RoomStatus> {
        ClusterView::rooms(&*self.local)
    }

    fn session_count(&self) -> usize {
        self.local.session_count()
    }

    fn transfer_count(&self) -> usize {
        self.local.transfer_count()
    }

    fn transfers(&self) -> BoxFuture<'static, Vec<TransferInfo>> {
        ClusterView::transfers(&*self.local)
    }
}
