//! `PeerActor`: one user, however many sessions (devices) they have on this node. It is
//! the address for "send this to user U" and tells rooms when a session of U has gone.

use crate::protocol::{Outbound, RoomName, SessionId, UserId};
use crate::registry::SessionRef;
use crate::room::RoomCommand;
use crate::transfer::TransferCommand;
use crate::NodeContext;
use actix::prelude::*;
use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// Every command a peer takes.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum PeerCommand {
    /// A session of this user said `hello` and got `welcome`.
    Attach(SessionRef),
    /// A session of this user ended; it was in `rooms`.
    Detach {
        session: SessionId,
        rooms: Vec<RoomName>,
    },
    /// A frame for every session of the user, except `except` (the one that caused it).
    Deliver {
        out: Outbound,
        except: Option<SessionId>,
    },
    /// A transfer this user is part of: it hears of the user's sessions coming and going.
    Track(Uuid),
    Untrack(Uuid),
    /// From the registry: nobody has used this peer for a while; stop if the user has no
    /// session and no transfer (see `Registry::finish_peer_passivation`).
    Passivate,
}

pub struct PeerActor {
    user: UserId,
    node: Arc<NodeContext>,
    sessions: HashMap<SessionId, SessionRef>,
    /// Transfers this user sends or may receive.
    transfers: HashSet<Uuid>,
}

impl PeerActor {
    pub fn new(user: UserId, node: Arc<NodeContext>) -> Self {
        PeerActor {
            user,
            node,
            sessions: HashMap::new(),
            transfers: HashSet::new(),
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
                if self.node.registry.finish_peer_passivation(self.user, idle) {
                    ctx.stop();
                }
            }
            PeerCommand::Attach(session) => {
                for transfer in &self.transfers {
                    let back = TransferCommand::UserBack {
                        user: self.user,
                        session: session.id,
                    };
                    let _ = self.node.registry.send_transfer(*transfer, back);
                }
                self.sessions.insert(session.id, session);
            }
            PeerCommand::Track(transfer) => {
                self.transfers.insert(transfer);
            }
            PeerCommand::Untrack(transfer) => {
                self.transfers.remove(&transfer);
            }
            PeerCommand::Detach { session, rooms } => {
                self.sessions.remove(&session);
                let user_offline = self.sessions.is_empty();
                for transfer in &self.transfers {
                    let gone = TransferCommand::SessionGone {
                        session,
                        user: self.user,
                        user_offline,
                    };
                    let _ = self.node.registry.send_transfer(*transfer, gone);
                }
                for room in rooms {
                    if let Err(e) = self.node.registry.send_room(
                        &room,
                        RoomCommand::SessionGone {
                            session,
                            user_offline,
                        },
                    ) {
                        log::debug!(
                            "user {}: could not tell room {room} that a session ended: {e}",
                            self.user
                        );
                    }
                }
            }
            PeerCommand::Deliver { out, except } => {
                for (id, session) in &self.sessions {
                    if Some(*id) != except {
                        session.deliver(out.clone());
                    }
                }
            }
        }
    }
}
