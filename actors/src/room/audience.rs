//! A room's audience: its member sessions, wherever they are connected, grouped the way
//! the room sends to them. Sessions on this node get frames straight into their queues;
//! the sessions of every other node get one [`Delivery`] per node, which that node writes
//! to its own sessions. It never decides who may join: the room does.

use crate::messages::{Delivery, RoomMember};
use crate::protocol::{NodeTag, Outbound, RoomName, SessionId, User, UserId};
use crate::registry::{Router, SessionRef};
use std::collections::HashMap;

pub struct Member {
    pub user: User,
    /// The session's queue when it is connected to this node; `None` on another node.
    pub sink: Option<SessionRef>,
}

/// What adding a session changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Already a member.
    Again,
    /// A new member; `first_of_user` when the user had no other session in the room.
    New { first_of_user: bool },
}

#[derive(Default)]
pub struct Audience {
    members: HashMap<SessionId, Member>,
    /// Sessions on other nodes, per node: a fan-out is one delivery per entry.
    remote: HashMap<NodeTag, Vec<SessionId>>,
    /// Sessions per user; presence changes when a count moves between 0 and 1.
    per_user: HashMap<UserId, usize>,
}

impl Audience {
    pub fn add(&mut self, session: SessionId, member: Member) -> Added {
        let user = member.user.id;
        let remote = member.sink.is_none();
        if self.members.insert(session, member).is_some() {
            return Added::Again;
        }
        if remote {
            self.remote.entry(session.node).or_default().push(session);
        }
        let count = self.per_user.entry(user).or_default();
        *count += 1;
        Added::New {
            first_of_user: *count == 1,
        }
    }

    /// Removes a session; also says whether it was its user's last one here.
    pub fn remove(&mut self, session: SessionId) -> Option<(Member, bool)> {
        let member = self.members.remove(&session)?;
        if member.sink.is_none() {
            if let Some(sessions) = self.remote.get_mut(&session.node) {
                sessions.retain(|s| *s != session);
                if sessions.is_empty() {
                    self.remote.remove(&session.node);
                }
            }
        }
        let remaining = self.per_user.get_mut(&member.user.id).map(|count| {
            *count -= 1;
            *count
        });
        if remaining == Some(0) {
            self.per_user.remove(&member.user.id);
        }
        Some((member, remaining == Some(0)))
    }

    pub fn get(&self, session: &SessionId) -> Option<&Member> {
        self.members.get(session)
    }

    pub fn contains(&self, session: &SessionId) -> bool {
        self.members.contains_key(session)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SessionId, &Member)> {
        self.members.iter()
    }

    /// Every member as the supervisor or a new owner needs it.
    pub fn to_members(&self) -> Vec<RoomMember> {
        self.members
            .iter()
            .map(|(session, m)| RoomMember {
                session: *session,
                user: m.user.clone(),
            })
            .collect()
    }

    /// The users in the room, once each, in a stable order.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = Vec::with_capacity(self.per_user.len());
        for member in self.members.values() {
            if !users.iter().any(|u| u.id == member.user.id) {
                users.push(member.user.clone());
            }
        }
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.0.cmp(&b.id.0)));
        users
    }

    /// Sends `out` to every member but `except`: into local queues directly, and one
    /// delivery per other node. `room_seq` tags a message's fan-out so that a node can
    /// tell a gap from a duplicate.
    pub fn broadcast(
        &self,
        router: &dyn Router,
        out: &Outbound,
        except: Option<SessionId>,
        room_seq: Option<(&RoomName, u64)>,
    ) {
        for (id, member) in &self.members {
            if let (Some(sink), false) = (&member.sink, Some(*id) == except) {
                sink.deliver(out.clone());
            }
        }
        for (node, sessions) in &self.remote {
            let sessions: Vec<SessionId> = sessions
                .iter()
                .filter(|s| Some(**s) != except)
                .copied()
                .collect();
            let delivery = Delivery {
                sessions,
                out: out.clone(),
                room_seq: room_seq.map(|(room, seq)| (room.clone(), seq)),
                personal: None,
            };
            router.deliver(*node, delivery);
        }
    }

    /// A message's fan-out: `out` to every member, except that its sender gets `ack` (its
    /// own copy, with `re`) in the same delivery as its node's other members, so that one
    /// lost envelope loses both or neither. The sender need not be a member any more.
    pub fn fan_out(
        &self,
        router: &dyn Router,
        out: &Outbound,
        (sender, ack): (SessionId, Outbound),
        room_seq: (&RoomName, u64),
    ) {
        let local_sender = self.members.get(&sender).and_then(|m| m.sink.as_ref());
        for (id, member) in &self.members {
            if let (Some(sink), false) = (&member.sink, *id == sender) {
                sink.deliver(out.clone());
            }
        }
        let mut ack = Some(ack);
        for (node, sessions) in &self.remote {
            let sessions: Vec<SessionId> =
                sessions.iter().filter(|s| **s != sender).copied().collect();
            let personal = if *node == sender.node {
                ack.take().map(|a| (sender, a))
            } else {
                None
            };
            let delivery = Delivery {
                sessions,
                out: out.clone(),
                room_seq: Some((room_seq.0.clone(), room_seq.1)),
                personal,
            };
            router.deliver(*node, delivery);
        }
        if let Some(ack) = ack {
            match local_sender {
                Some(sink) => {
                    sink.deliver(ack);
                }
                None => {
                    router.send_session(sender, ack);
                }
            }
        }
    }

    /// Sends `out` to these members only (a replay after a rejoin), tagged like a fan-out.
    pub fn send_to(
        &self,
        router: &dyn Router,
        sessions: &[SessionId],
        out: &Outbound,
        room_seq: Option<(&RoomName, u64)>,
    ) {
        let mut per_node: HashMap<NodeTag, Vec<SessionId>> = HashMap::new();
        for session in sessions {
            match self.members.get(session).map(|m| &m.sink) {
                Some(Some(sink)) => {
                    sink.deliver(out.clone());
                }
                Some(None) => per_node.entry(session.node).or_default().push(*session),
                None => {}
            }
        }
        for (node, sessions) in per_node {
            let delivery = Delivery {
                sessions,
                out: out.clone(),
                room_seq: room_seq.map(|(room, seq)| (room.clone(), seq)),
                personal: None,
            };
            router.deliver(node, delivery);
        }
    }
}
