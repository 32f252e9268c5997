//! `RoomActor`: one chat room. It assigns `seq`, has the store commit each message, and
//! fans a message out only after its commit, in `seq` order, to every session in the room.
//!
//! Invariants:
//! - `seq` is assigned here and nowhere else; there is exactly one live instance per room.
//! - Members see messages strictly in `seq` order with no gaps: commits may complete in
//!   any order, so committed messages wait in the [`Sequencer`] until every lower `seq` is out.
//! - The room keeps its most recent messages (`Limits::room_backlog`) in memory, already
//!   serialised, to answer `join` with `since` and most `history` requests without the store.
//! - It never blocks: every store call is a future spawned into the actor's context.

use crate::messages::{PeerCommand, RoomCommand, RoomCrash, RoomMember, TransferCommand};
use crate::metrics::METRICS;
use crate::protocol::{
    format_time, history_outbound, newest_within, ErrorCode, FileAttachment, MessageFrame,
    Outbound, PresenceStatus, ProtocolError, RequestId, RoomName, ServerFrame, SessionId, User,
    UserId,
};
use crate::registry::SessionRef;
use crate::store::{Fence, OwnedKind, RoomSnapshot, StoreError, StoredMessage};
use crate::{now_ms, NodeContext};
use actix::prelude::*;
use audience::{Added, Audience, Member};
use sequence::Sequencer;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

mod audience;
mod replay;
mod sequence;

/// Messages a `join` without `since` replays, so a newcomer sees the conversation.
pub const DEFAULT_JOIN_BACKLOG: u64 = 50;
/// How often an unavailable room (its store failed) tries to load again.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// A commit the store could not take is tried again this many times, after 100 ms,
/// 200 ms, … 3.2 s (6.3 s in all): a database that comes back within that keeps the order
/// gapless, and the sender gets its acknowledgement late rather than an error.
const COMMIT_RETRIES: u32 = 6;
const FIRST_COMMIT_RETRY: Duration = Duration::from_millis(100);
/// Most messages a rejoin replays from the store (beyond what the room keeps): a node
/// that missed more than this has been cut off so long that its clients re-sync with
/// `join` and `history` anyway.
const REJOIN_FROM_STORE: u64 = 1000;

/// A message on its way to the store, then committed and waiting for lower `seq`s to go
/// out first.
struct Committed {
    message: StoredMessage,
    sender: SessionId,
    re: Option<RequestId>,
    /// Commits of it that failed so far.
    failures: u32,
}

/// A recent message, serialised once without `re`.
struct Cached {
    seq: u64,
    json: Arc<str>,
}

pub struct RoomActor {
    name: RoomName,
    node: Arc<NodeContext>,
    /// Member sessions, on this node and others.
    members: Audience,
    /// Hands out `seq` and releases committed messages in order.
    sequence: Sequencer<Committed>,
    recent: VecDeque<Cached>,
    /// False until the store has answered; commands are refused with `unavailable` then.
    loaded: bool,
    /// Set when the room was restarted after a crash: who was in it, what they had seen.
    inherited: Option<RoomCrash>,
    /// Whether this instance has recorded the room in the store (on its first join).
    recorded: bool,
    /// Stopped on purpose for want of use: its going away is not a crash.
    passivated: bool,
    /// Its crash is already reported (a failed commit reports before it stops).
    crash_reported: bool,
    /// Test-only: commits still to fail (`RoomCommand::FailCommits`).
    failing_commits: u32,
    /// In a cluster: the ownership epoch every commit of this instance is checked against.
    fence: Option<Fence>,
    /// A direct conversation's two users: it has no members; each message goes to every
    /// session of both.
    conversation: Option<(UserId, UserId)>,
    /// For a conversation: whether both users exist (checked at load).
    users_exist: bool,
}

impl RoomActor {
    pub fn new(name: RoomName, node: Arc<NodeContext>, inherited: Option<RoomCrash>) -> Self {
        RoomActor {
            node,
            members: Audience::default(),
            sequence: Sequencer::starting_after(0),
            recent: VecDeque::new(),
            loaded: false,
            inherited,
            recorded: false,
            passivated: false,
            crash_reported: false,
            failing_commits: 0,
            fence: None,
            conversation: name.conversation_users(),
            users_exist: true,
            name,
        }
    }

    /// Loads `last_seq` and the recent messages, holding the mailbox until done.
    /// In a cluster the room first takes its fence epoch, so that what it loads includes
    /// every message a previous owner committed: a commit of that owner after this point
    /// is refused by the database.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let store = self.node.store.clone();
        let (room, keep) = (self.name.clone(), self.node.limits.room_backlog);
        let claim = self
            .node
            .incarnation
            .filter(|_| self.fence.is_none())
            .map(|incarnation| {
                let (kind, node) = (OwnedKind::Room, self.node.node_id.clone());
                store.claim_ownership(kind, room.to_string(), node, incarnation)
            });
        let conversation = self.conversation;
        let load = async move {
            let epoch = match claim {
                Some(claim) => Some(claim.await?),
                None => None,
            };
            // A conversation exists only between two users who do.
            let users_exist = match conversation {
                Some((a, b)) => {
                    store.find_user(a).await?.is_some() && store.find_user(b).await?.is_some()
                }
                None => true,
            };
            let snapshot = store.load_room(room, keep).await?;
            Ok::<_, StoreError>((epoch, snapshot, users_exist))
        };
        ctx.wait(load.into_actor(self).map(|result, room, ctx| match result {
            Ok((epoch, snapshot, users_exist)) => {
                room.users_exist = users_exist;
                room.fence = epoch.map(|epoch| Fence {
                    kind: OwnedKind::Room,
                    key: room.name.to_string(),
                    epoch,
                });
                room.on_loaded(snapshot)
            }
            Err(e) => {
                log::error!(
                    "room {} could not load ({e}); retrying in {RELOAD_INTERVAL:?}",
                    room.name
                );
                ctx.run_later(RELOAD_INTERVAL, |room, ctx| room.load(ctx));
            }
        }));
    }

    fn on_loaded(&mut self, snapshot: RoomSnapshot) {
        self.sequence = Sequencer::starting_after(snapshot.last_seq);
        self.recent = snapshot.recent.iter().map(cache_entry).collect();
        self.loaded = true;
        if let Some(crash) = self.inherited.take() {
            self.adopt(crash, &snapshot);
        }
    }

    /// Takes over the members of a crashed instance and sends them what it committed but
    /// never fanned out.
    fn adopt(&mut self, crash: RoomCrash, snapshot: &RoomSnapshot) {
        for member in crash.members {
            if let Some(sink) = self.sink_of(member.session) {
                let session = member.session;
                let member = Member {
                    user: member.user,
                    sink,
                };
                self.members.add(session, member);
            }
        }
        let missed: Vec<(u64, Arc<str>)> = self
            .recent
            .iter()
            .filter(|m| m.seq > crash.delivered_seq)
            .map(|m| (m.seq, m.json.clone()))
            .collect();
        for (seq, json) in missed {
            let out = Outbound::Frame {
                kind: crate::protocol::ServerKind::Message,
                json,
            };
            let room_seq = Some((&self.name, seq));
            self.members
                .broadcast(&*self.node.router, &out, None, room_seq);
        }
        log::info!(
            "room {} restarted with {} sessions at seq {}",
            self.name,
            self.members.len(),
            snapshot.last_seq
        );
        self.size_changed();
    }

    fn size_changed(&self) {
        self.node
            .host
            .room_size_changed(&self.name, self.members.len());
    }

    /// The queue of a session connected to this node (`Some(None)` for a session on
    /// another node); `None` when a local session has already ended.
    fn sink_of(&self, session: SessionId) -> Option<Option<SessionRef>> {
        if session.node != self.node.node_tag {
            return Some(None);
        }
        self.node.host.session(session).map(Some)
    }

    fn broadcast(&self, out: &Outbound, except: Option<SessionId>) {
        self.members
            .broadcast(&*self.node.router, out, except, None);
    }

    fn reply(&self, session: SessionId, out: Outbound) {
        match self.members.get(&session).and_then(|m| m.sink.as_ref()) {
            Some(sink) => {
                sink.deliver(out);
            }
            None => {
                self.node.router.send_session(session, out);
            }
        }
    }

    fn reply_error(&self, session: SessionId, re: Option<&str>, error: ProtocolError) {
        METRICS.error(error.code);
        self.reply(session, ServerFrame::error(re, &error).to_outbound());
    }

    fn presence(&self, user: &User, status: PresenceStatus, except: Option<SessionId>) {
        let out = ServerFrame::Presence {
            room: &self.name,
            user,
            status,
        }
        .to_outbound();
        self.broadcast(&out, except);
    }

    /// Records that the room exists (once per instance): queued before any of its
    /// messages, so it is stored first.
    fn record(&mut self, ctx: &mut Context<Self>) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let record = self.node.store.create_room(self.name.clone());
        ctx.spawn(record.into_actor(self).map(|result, room, _| {
            if let Err(e) = result {
                room.recorded = false;
                log::warn!("room {} could not be recorded: {e}", room.name);
            }
        }));
    }

    fn join(
        &mut self,
        member: RoomMember,
        since: Option<u64>,
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(sink) = self.sink_of(member.session) else {
            return; // the session ended before its join arrived
        };
        self.record(ctx);
        let added = self.members.add(
            member.session,
            Member {
                user: member.user.clone(),
                sink,
            },
        );
        if let Added::New { first_of_user } = added {
            if first_of_user {
                self.presence(&member.user, PresenceStatus::Joined, Some(member.session));
            }
            self.size_changed();
        }
        self.send_joined(member.session, since, re.as_deref());
    }

    /// Removes a session; announces the user as `status` when it was their last one here.
    fn remove(&mut self, session: SessionId, status: PresenceStatus) -> bool {
        let Some((member, last_of_user)) = self.members.remove(session) else {
            return false;
        };
        if last_of_user {
            self.presence(&member.user, status, None);
        }
        self.size_changed();
        true
    }

    fn say(
        &mut self,
        member: RoomMember,
        (text, file): (Arc<str>, Option<FileAttachment>),
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        if let Some((a, b)) = self.conversation {
            let other = if member.user.id == a { b } else { a };
            let refusal = if member.user.id != a && member.user.id != b {
                Some(ProtocolError::new(
                    ErrorCode::Forbidden,
                    "not your conversation",
                ))
            } else if !self.users_exist {
                let message = format!("there is no user {other}");
                Some(ProtocolError::new(ErrorCode::NotFound, message))
            } else {
                None
            };
            if let Some(error) = refusal {
                return self.reply_error(member.session, re.as_deref(), error);
            }
            self.record(ctx);
        } else if !self.members.contains(&member.session) {
            let error = ProtocolError::new(
                ErrorCode::Forbidden,
                format!("join room {} before saying anything in it", self.name),
            );
            return self.reply_error(member.session, re.as_deref(), error);
        }
        let seq = self.sequence.assign();
        let message = StoredMessage {
            room: self.name.clone(),
            seq,
            from: member.user,
            text,
            at_ms: now_ms(),
            file,
        };
        let pending = Committed {
            message,
            sender: member.session,
            re,
            failures: 0,
        };
        self.commit(pending, ctx);
    }

    fn commit(&mut self, pending: Committed, ctx: &mut Context<Self>) {
        let commit = if self.failing_commits > 0 {
            self.failing_commits -= 1;
            let fault = StoreError::Unavailable("fault injection: the commit fails".into());
            Box::pin(std::future::ready(Err(fault)))
        } else {
            self.node
                .store
                .append_message(pending.message.clone(), self.fence.clone())
        };
        ctx.spawn(
            commit
                .into_actor(self)
                .map(move |result, room, ctx| room.on_commit(pending, result, ctx)),
        );
    }

    fn on_commit(
        &mut self,
        mut pending: Committed,
        result: Result<(), StoreError>,
        ctx: &mut Context<Self>,
    ) {
        if let (Err(StoreError::Unavailable(e)), true) =
            (&result, pending.failures < COMMIT_RETRIES)
        {
            // Later messages wait in the sequencer meanwhile, so the order stays gapless.
            let delay = FIRST_COMMIT_RETRY * 2u32.pow(pending.failures);
            log::warn!(
                "room {}: commit of seq {} failed ({e}); trying again in {} ms",
                self.name,
                pending.message.seq,
                delay.as_millis()
            );
            pending.failures += 1;
            ctx.run_later(delay, move |room, ctx| room.commit(pending, ctx));
            return;
        }
        if let Err(StoreError::Fenced(_)) = &result {
            // Another node has taken the room over (this one was cut off or paused past its
            // lease). Its commits are refused from now on: stop, and let the host hand the
            // members to the new owner. The sender sends again, which reaches that owner.
            log::warn!(
                "room {}: another node has taken it over; this instance stops",
                self.name
            );
            let error = ProtocolError::new(
                ErrorCode::Unavailable,
                "the room moved to another node; send the message again",
            );
            self.crash_reported = true;
            self.node.host.room_moved(self.crash_report());
            self.reply_error(pending.sender, pending.re.as_deref(), error);
            ctx.stop();
            return;
        }
        if let Err(e) = result {
            // The seq is burnt; carrying on would leave a gap. Fail the sender and let the
            // supervisor restart the room from what the store really holds.
            log::error!(
                "room {}: commit of seq {} failed: {e}",
                self.name,
                pending.message.seq
            );
            let error = ProtocolError::new(
                ErrorCode::Unavailable,
                "the message could not be stored; send it again",
            );
            // The registry must hold this room's commands before the sender can answer the
            // error: a `say` sent back at once would otherwise reach this stopping instance
            // and never be answered.
            self.crash_reported = true;
            self.node.host.report_room_crash(self.crash_report());
            self.reply_error(pending.sender, pending.re.as_deref(), error);
            ctx.stop();
            return;
        }
        METRICS.messages_stored.inc();
        for ready in self.sequence.committed(pending.message.seq, pending) {
            self.fan_out(ready);
        }
    }

    fn fan_out(&mut self, committed: Committed) {
        let Committed {
            message,
            sender,
            re,
            ..
        } = committed;
        let mut frame = message_frame(&message);
        let out = Outbound::Frame {
            kind: crate::protocol::ServerKind::Message,
            json: frame.to_json().into(),
        };
        frame.re = re;
        let ack = (sender, frame.to_outbound());
        match self.conversation {
            Some(users) => self.to_both(users, &message, &out, ack),
            None => {
                let room_seq = (&self.name, message.seq);
                self.members
                    .fan_out(&*self.node.router, &out, ack, room_seq);
            }
        }
        if let Outbound::Frame { json, .. } = out {
            self.remember(Cached {
                seq: message.seq,
                json,
            });
        }
    }

    /// A conversation's message: to every session of both users (wherever they are
    /// connected), the sender's own session getting its copy with `re`.
    fn to_both(
        &self,
        (a, b): (UserId, UserId),
        message: &StoredMessage,
        out: &Outbound,
        (sender, ack): (SessionId, Outbound),
    ) {
        let router = &self.node.router;
        let from = message.from.id;
        let other = if from == a { b } else { a };
        let copies = PeerCommand::Deliver {
            out: out.clone(),
            except: Some(sender),
        };
        let _ = router.send_user(from, copies);
        if other != from {
            let copies = PeerCommand::Deliver {
                out: out.clone(),
                except: None,
            };
            let _ = router.send_user(other, copies);
        }
        router.send_session(sender, ack);
    }

    fn remember(&mut self, cached: Cached) {
        if self.recent.len() >= self.node.limits.room_backlog {
            self.recent.pop_front();
        }
        self.recent.push_back(cached);
    }

    /// The transfer learns who may accept before anyone can: the recipients go to it first,
    /// and only then the offer to them.
    fn offer(&self, transfer: uuid::Uuid, from: UserId, out: Outbound) {
        let others: Vec<SessionId> = self
            .members
            .iter()
            .filter(|(_, m)| m.user.id != from)
            .map(|(session, _)| *session)
            .collect();
        let recipients: Vec<User> = self
            .members
            .users()
            .into_iter()
            .filter(|u| u.id != from)
            .collect();
        let command = TransferCommand::Recipients(recipients);
        if let Err(e) = self.node.router.send_transfer(transfer, command) {
            return log::debug!("room {}: offer {transfer} is gone: {e}", self.name);
        }
        self.members
            .send_to(&*self.node.router, &others, &out, None);
    }

    fn crash_report(&self) -> RoomCrash {
        RoomCrash {
            room: self.name.clone(),
            members: self.members.to_members(),
            delivered_seq: self.sequence.released(),
        }
    }
}

fn message_frame(message: &StoredMessage) -> MessageFrame {
    // A conversation's message names its recipient (`to`), not a room.
    let to = message
        .room
        .conversation_users()
        .map(|(a, b)| if message.from.id == a { b } else { a });
    MessageFrame {
        room: to.is_none().then(|| message.room.clone()),
        to,
        seq: Some(message.seq),
        from: message.from.clone(),
        text: message.text.clone(),
        at: format_time(message.at_ms),
        file: message.file.clone(),
        re: None,
    }
}

fn cache_entry(message: &StoredMessage) -> Cached {
    Cached {
        seq: message.seq,
        json: message_frame(message).to_json().into(),
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.load(ctx);
    }
}

impl Handler<RoomCommand> for RoomActor {
    type Result = ();

    fn handle(&mut self, command: RoomCommand, ctx: &mut Context<Self>) {
        if let RoomCommand::Passivate = command {
            // Idle: no member, and every assigned `seq` committed and released, so that a
            // fresh instance loading from the store continues exactly where this one ends.
            let idle = self.members.is_empty() && self.sequence.settled();
            let host = &self.node.host;
            if host.finish_room_passivation(&self.name, idle, self.members.len()) {
                self.passivated = true;
                ctx.stop();
            }
            return;
        }
        if !self.loaded {
            if let Some((session, re)) = command.requester() {
                let error = ProtocolError::new(
                    ErrorCode::Unavailable,
                    "the room's storage is unavailable; try again shortly",
                );
                self.reply_error(session, re.as_deref(), error);
            }
            return;
        }
        match command {
            RoomCommand::Join { member, since, re } => self.join(member, since, re, ctx),
            RoomCommand::Leave { session, re } => {
                if self.remove(session, PresenceStatus::Left) {
                    self.node.router.send_session(
                        session,
                        ServerFrame::Left {
                            room: &self.name,
                            re: re.as_deref(),
                        }
                        .to_outbound(),
                    );
                } else {
                    let error = ProtocolError::new(
                        ErrorCode::NotFound,
                        format!("you are not in room {}", self.name),
                    );
                    self.reply_error(session, re.as_deref(), error);
                }
            }
            RoomCommand::Say {
                member,
                text,
                file,
                re,
            } => self.say(member, (text, file), re, ctx),
            RoomCommand::History {
                session,
                before,
                limit,
                re,
                with,
            } => self.history(session, (before, limit), (re, with), ctx),
            RoomCommand::SessionGone {
                session,
                user_offline,
            } => {
                let status = if user_offline {
                    PresenceStatus::Offline
                } else {
                    PresenceStatus::Left
                };
                self.remove(session, status);
            }
            RoomCommand::Offer {
                transfer,
                from,
                out,
            } => self.offer(transfer, from, out),
            RoomCommand::Rejoin { members, since } => self.rejoin(members, since, ctx),
            RoomCommand::Panic => panic!("fault injection: room {} panics on request", self.name),
            RoomCommand::FailCommits(n) => self.failing_commits = n,
            RoomCommand::Passivate => {} // handled above
        }
    }
}

impl Drop for RoomActor {
    /// Apart from passivation, rooms are never stopped on purpose (only at node shutdown,
    /// when the registry ignores this), so any other room that goes away has crashed (a
    /// panic, or a failed commit): hand its members to the supervisor so that a fresh
    /// instance takes over.
    fn drop(&mut self) {
        if !self.passivated && !self.crash_reported {
            self.node.host.report_room_crash(self.crash_report());
        }
    }
}
