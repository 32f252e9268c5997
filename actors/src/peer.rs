//! `PeerActor`: one user, however many sessions (devices) they have on this node. It is
//! the address for "send this to user U" and tells rooms when a session of U has gone.

use crate::messages::{PeerCommand, RoomCommand, TransferCommand};
use crate::protocol::{RoomName, SessionId, UserId};
use crate::NodeContext;
use actix::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

pub struct PeerActor {
    user: UserId,
    node: Arc<NodeContext>,
    /// This user's sessions on this node.
    sessions: HashSet<SessionId>,
    /// Transfers this user sends or may receive.
    transfers: HashSet<Uuid>,
}

impl PeerActor {
    pub fn new(user: UserId, node: Arc<NodeContext>) -> Self {
        PeerActor {
            user,
            node,
            sessions: HashSet::new(),
            transfers: HashSet::new(),
        }
    }
}

impl PeerActor {
    /// Tells the user's transfers and rooms that `session` ended; `user_offline` when the
    /// user has no session left (anywhere in the cluster).
    fn session_gone(&self, session: SessionId, rooms: Vec<RoomName>, user_offline: bool) {
        for transfer in &self.transfers {
            let gone = TransferCommand::SessionGone {
                session,
                user: self.user,
                user_offline,
            };
            let _ = self.node.router.send_transfer(*transfer, gone);
        }
        for room in rooms {
            let gone = RoomCommand::SessionGone {
                session,
                user_offline,
            };
            if let Err(e) = self.node.router.send_room(&room, gone) {
                log::debug!(
                    "user {}: could not tell room {room} that a session ended: {e}",
                    self.user
                );
            }
        }
    }
}

impl Actor for PeerActor {
    type Context = Context<Self>;
}

impl Handler<PeerCommand> for PeerActor {
    type Result = ();

    fn handle(&mut self, command: PeerCommand, ctx: &mut Context<Self>) {
        match command {
            PeerCommand::Passivate => {
                let idle = self.sessions.is_empty() && self.transfers.is_empty();
                if self.node.host.finish_peer_passivation(self.user, idle) {
                    ctx.stop();
                }
            }
            PeerCommand::Attach(session) if self.node.incarnation.is_some() => {
                // In a cluster the user's transfers may live on other nodes and this node
                // may never have heard of them: the store knows which they are.
                self.sessions.insert(session);
                let lookup = self.node.store.transfers_of(self.user);
                ctx.spawn(lookup.into_actor(self).map(move |found, peer, _| {
                    let found = found.unwrap_or_else(|e| {
                        log::warn!("user {}: cannot look up their transfers: {e}", peer.user);
                        Vec::new()
                    });
                    peer.transfers.extend(found);
                    for transfer in &peer.transfers {
                        let back = TransferCommand::UserBack {
                            user: peer.user,
                            session,
                        };
                        let _ = peer.node.router.send_transfer(*transfer, back);
                    }
                }));
            }
            PeerCommand::Attach(session) => {
                for transfer in &self.transfers {
                    let back = TransferCommand::UserBack {
                        user: self.user,
                        session,
                    };
                    let _ = self.node.router.send_transfer(*transfer, back);
                }
                self.sessions.insert(session);
            }
            PeerCommand::Track(transfer) => {
                self.transfers.insert(transfer);
            }
            PeerCommand::Report(transfer) => {
                if let Some(session) = self.sessions.iter().next().copied() {
                    let back = TransferCommand::UserBack {
                        user: self.user,
                        session,
                    };
                    let _ = self.node.router.send_transfer(transfer, back);
                }
            }
            PeerCommand::Untrack(transfer) => {
                self.transfers.remove(&transfer);
            }
            PeerCommand::Detach { session, rooms } => {
                self.sessions.remove(&session);
                let offline_here = self.sessions.is_empty();
                if !offline_here || self.node.incarnation.is_none() {
                    return self.session_gone(session, rooms, offline_here);
                }
                // In a cluster the user may still be connected to another node: ask.
                let me = self.node.node_tag;
                let nodes = self.node.router.user_nodes(self.user);
                ctx.spawn(nodes.into_actor(self).map(move |nodes, peer, _| {
                    let offline = nodes.iter().all(|node| *node == me);
                    peer.session_gone(session, rooms, offline);
                }));
            }
            PeerCommand::Deliver { out, except } => {
                for id in &self.sessions {
                    if Some(*id) != except {
                        self.node.router.send_session(*id, out.clone());
                    }
                }
            }
        }
    }
}
