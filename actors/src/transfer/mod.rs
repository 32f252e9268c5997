//! `TransferActor`: one file on its way from a sender to one user, or to the members of a
//! room who accept it. It relays data frames unchanged, enforces flow control, has the
//! `HashActor` hash every acknowledged byte, and pauses and resumes when sides come and go.
//!
//! Phases: `Offered` → `Streaming` (someone accepted) ⇄ `Paused` (a needed session left)
//! → finished (`complete`, `failed`, `cancelled`), after which the actor stops.
//!
//! Each side is bound to one session: the sender's is the offering session, a receiver's
//! the accepting one. When a bound session ends the transfer pauses at the acknowledged
//! offset; the next session of that user binds in its place (automatically when it says
//! `hello`, or explicitly with `accept` / a data frame at the resume offset), and both sides
//! get `resume`. In a room offer, a receiver that leaves is dropped and the others go on.

pub mod book;
pub mod flow;
mod record;
mod sides;

use crate::hash::{hex, Sha256State};
use crate::messages::{PeerCommand, Snapshot, TransferCommand, TransferInfo, TransferStart};
use crate::metrics::METRICS;
use crate::protocol::{
    DataFrame, ErrorCode, OfferFrame, Outbound, ProtocolError, RequestId, ServerFrame, SessionId,
    User, UserId,
};
use crate::store::{Fence, OwnedKind, ReceiverRecord, StoreError, TransferRecord};
use crate::NodeContext;
use actix::prelude::*;
use bytes::Bytes;
use flow::Flow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often a transfer looks at its progress (a quarter of the stall time, within these).
const STALL_CHECK_MIN: Duration = Duration::from_millis(250);
const STALL_CHECK_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Offered,
    Streaming,
    Paused,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Invited,
    Active,
    Gone,
}

struct Receiver {
    user: User,
    session: Option<SessionId>,
    acked: u64,
    standing: Standing,
}

pub struct TransferActor {
    id: Uuid,
    node: Arc<NodeContext>,
    offer: OfferFrame,
    sender_session: Option<SessionId>,
    room_offer: bool,
    receivers: Vec<Receiver>,
    phase: Phase,
    flow: Flow,
    /// The sender said every byte is sent.
    ended: bool,
    /// Digest of `[0, hashed)`; `None` while the hash actor has it.
    digest: Option<Sha256State>,
    hashed: u64,
    /// Acknowledged bytes waiting for the hash actor.
    to_hash: VecDeque<Bytes>,
    /// Offset up to which the acknowledged, hashed state is stored.
    secured: u64,
    /// Whether the transfer has a stored record (it was accepted).
    saved: bool,
    /// In a cluster: the ownership epoch its progress writes are checked against.
    fence: Option<Fence>,
    /// Another node took the transfer over (a progress write was refused): this instance
    /// stops without touching what the new owner now keeps.
    fenced: bool,
    start: Option<TransferStart>,
    /// The `id` of the client frame being handled, so that an error about it carries `re`.
    answering: Option<RequestId>,
    /// A window of the node's transfer memory is held while streaming.
    reserved: bool,
    /// Someone accepted: the offer no longer counts among the node's unanswered ones.
    answered: bool,
    /// Paused only because the node's transfer memory was all taken: resumes when some is
    /// free.
    waiting_for_memory: bool,
    /// When the acknowledged offset last moved, or data last started waiting for it.
    last_progress: Instant,
    /// Since when the transfer has been paused, as the progress watch last saw it.
    paused_since: Option<Instant>,
}

impl TransferActor {
    /// A transfer read back from the store after a restart: paused until its sides return.
    pub fn restored(node: Arc<NodeContext>, record: TransferRecord, digest: Sha256State) -> Self {
        let limits = &node.limits;
        let flow = Flow::new(record.size, limits.window, limits.chunk_size, record.acked);
        let receivers = record
            .receivers
            .iter()
            .map(|r| Receiver {
                user: User {
                    id: r.id,
                    name: r.name.as_str().into(),
                },
                session: None,
                acked: record.acked,
                standing: if r.active {
                    Standing::Active
                } else if r.invited {
                    Standing::Invited
                } else {
                    Standing::Gone
                },
            })
            .collect::<Vec<_>>();
        // Nobody accepted before the restart: it is still an offer, waiting for answers.
        let phase = if receivers.iter().any(|r| r.standing == Standing::Active) {
            Phase::Paused
        } else {
            Phase::Offered
        };
        TransferActor {
            id: record.id,
            offer: OfferFrame {
                transfer: record.id,
                from: record.sender,
                room: record.room.clone(),
                name: record.name,
                size: record.size,
                mime: record.mime,
                sha256: record.sha256,
            },
            sender_session: None,
            room_offer: record.room.is_some(),
            receivers,
            phase,
            flow,
            ended: false,
            digest: Some(digest),
            hashed: record.acked,
            to_hash: VecDeque::new(),
            secured: record.acked,
            saved: true,
            fence: None,
            fenced: false,
            start: None,
            answered: phase != Phase::Offered,
            answering: None,
            reserved: false,
            waiting_for_memory: false,
            last_progress: Instant::now(),
            paused_since: None,
            node,
        }
    }

    pub fn new(id: Uuid, node: Arc<NodeContext>, start: TransferStart) -> Self {
        let limits = &node.limits;
        let flow = Flow::new(start.offer.size, limits.window, limits.chunk_size, 0);
        let receivers = start
            .recipient
            .iter()
            // The recipient's name is learnt when they answer.
            .map(|id| Receiver {
                user: User {
                    id: *id,
                    name: "".into(),
                },
                session: None,
                acked: 0,
                standing: Standing::Invited,
            })
            .collect();
        TransferActor {
            id,
            offer: start.offer.clone(),
            sender_session: Some(start.sender_session),
            room_offer: start.recipient.is_none(),
            receivers,
            phase: Phase::Offered,
            flow,
            ended: false,
            digest: Some(Sha256State::new()),
            hashed: 0,
            to_hash: VecDeque::new(),
            secured: 0,
            saved: false,
            fence: None,
            fenced: false,
            start: Some(start),
            answered: false,
            answering: None,
            reserved: false,
            waiting_for_memory: false,
            last_progress: Instant::now(),
            paused_since: None,
            node,
        }
    }

    fn sender(&self) -> &User {
        &self.offer.from
    }

    fn to_session(&self, session: Option<SessionId>, frame: ServerFrame<'_>) {
        if let Some(session) = session {
            self.node.router.send_session(session, frame.to_outbound());
        }
    }

    fn to_user(&self, user: UserId, out: Outbound) {
        let _ = self
            .node
            .router
            .send_user(user, PeerCommand::Deliver { out, except: None });
    }

    /// Tells the sender and every receiver still involved, on all their sessions.
    fn to_everyone(&self, frame: ServerFrame<'_>) {
        let out = frame.to_outbound();
        self.to_user(self.sender().id, out.clone());
        for receiver in self
            .receivers
            .iter()
            .filter(|r| r.standing != Standing::Gone)
        {
            if receiver.user.id != self.sender().id {
                self.to_user(receiver.user.id, out.clone());
            }
        }
    }

    fn refuse(&self, session: SessionId, offset: Option<u64>, error: ProtocolError) {
        METRICS.error(error.code);
        self.node.router.send_session(
            session,
            ServerFrame::transfer_error(self.answering.as_deref(), self.id, offset, &error)
                .to_outbound(),
        );
    }

    fn receiver_by_user(&mut self, user: UserId) -> Option<&mut Receiver> {
        self.receivers.iter_mut().find(|r| r.user.id == user)
    }

    fn active_receivers(&self) -> impl Iterator<Item = &Receiver> {
        self.receivers
            .iter()
            .filter(|r| r.standing == Standing::Active)
    }

    fn announce(&mut self, ctx: &mut Context<Self>) {
        let Some(start) = self.start.take() else {
            return;
        };
        let (router, id) = (self.node.router.clone(), self.id);
        let track = move |user: UserId| {
            let _ = router.send_user(user, PeerCommand::Track(id));
        };
        track(self.sender().id);
        // `offered` is a promise that the offer survives a restart: it follows the write.
        // The recipients hear of the offer only after that, so that the sender always has
        // `offered` (and the transfer id) before anyone can accept.
        let re = start.re.clone();
        let sender_session = start.sender_session;
        let recipient = start.recipient;
        let write = self.record_write();
        ctx.spawn(write.into_actor(self).map(move |result, transfer, ctx| {
            if let Err(e) = result {
                log::warn!(
                    "offer {} not stored ({e}); a restart withdraws it",
                    transfer.id
                );
            }
            transfer.to_session(
                Some(sender_session),
                ServerFrame::Offered {
                    re: re.as_deref(),
                    transfer: transfer.id,
                },
            );
            if transfer.phase == Phase::Offered {
                transfer.deliver_offer(recipient, ctx);
            }
        }));
        self.expire_offer_later(ctx);
    }

    /// Sends the offer to its user, or through its room to the members.
    fn deliver_offer(&mut self, recipient: Option<UserId>, ctx: &mut Context<Self>) {
        let offer = ServerFrame::Offer(&self.offer).to_outbound();
        match (recipient, &self.offer.room) {
            (Some(user), _) => {
                let _ = self
                    .node
                    .router
                    .send_user(user, PeerCommand::Track(self.id));
                self.to_user(user, offer);
            }
            (None, Some(room)) => {
                let command = crate::messages::RoomCommand::Offer {
                    transfer: self.id,
                    from: self.sender().id,
                    out: offer,
                };
                if self.node.router.send_room(room, command).is_err() {
                    self.cancel_all("the room is unavailable", ctx);
                }
            }
            (None, None) => self.cancel_all("the offer names no recipient", ctx),
        }
    }

    /// Withdraws the offer if nobody has accepted it within `offer_ttl` from now.
    fn expire_offer_later(&self, ctx: &mut Context<Self>) {
        ctx.run_later(self.node.limits.offer_ttl, |transfer, ctx| {
            if transfer.phase == Phase::Offered {
                transfer.cancel_all("expired", ctx);
            }
        });
    }

    fn accept(
        &mut self,
        user: User,
        session: SessionId,
        offset: u64,
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let resuming = self.phase == Phase::Paused;
        let started = self.flow.sent() > 0 || self.ended;
        let expected = self.flow.acked();
        let Some(receiver) = self.receiver_by_user(user.id) else {
            return self.refuse(
                session,
                None,
                ProtocolError::new(ErrorCode::Forbidden, "this file was not offered to you"),
            );
        };
        let fresh = receiver.standing == Standing::Invited;
        if receiver.standing == Standing::Gone || (fresh && started) {
            let error = ProtocolError::new(
                ErrorCode::Conflict,
                "the transfer has already started without you; ask the sender to offer it again",
            );
            return self.refuse(session, None, error);
        }
        if offset != expected {
            let error = ProtocolError::new(
                ErrorCode::Conflict,
                format!(
                    "accept from offset {expected}: the node holds the digest of exactly that much"
                ),
            );
            return self.refuse(session, None, error);
        }
        receiver.standing = Standing::Active;
        receiver.user = user.clone();
        receiver.session = Some(session);
        receiver.acked = offset;
        let _ = re;
        if fresh {
            let frame = ServerFrame::Accepted {
                transfer: self.id,
                by: &user,
                offset,
            };
            self.to_session(self.sender_session, frame);
            self.save(ctx);
        }
        if self.phase == Phase::Offered {
            self.phase = Phase::Streaming;
            self.answered = true;
            self.node.transfers.answered();
            if self.sender_session.is_none() {
                // The sender is away (a reload, or a restart of the node): wait for them.
                self.pause();
            } else if !self.reserve_memory() {
                // The node holds all the unacknowledged data it may: wait for room.
                self.pause();
                self.waiting_for_memory = true;
            }
        }
        if resuming {
            self.try_resume();
        }
    }

    fn decline(&mut self, user: User, session: SessionId, ctx: &mut Context<Self>) {
        let Some(receiver) = self.receiver_by_user(user.id) else {
            return self.refuse(
                session,
                None,
                ProtocolError::new(ErrorCode::Forbidden, "this file was not offered to you"),
            );
        };
        if receiver.standing != Standing::Invited {
            return self.refuse(
                session,
                None,
                ProtocolError::new(
                    ErrorCode::Conflict,
                    "you have already accepted this transfer; cancel it instead",
                ),
            );
        }
        receiver.standing = Standing::Gone;
        self.resave(ctx);
        self.to_session(
            self.sender_session,
            ServerFrame::Declined {
                transfer: self.id,
                by: &user,
            },
        );
        self.unless_anyone_left("declined", ctx);
    }

    /// Ends the transfer when no receiver is left to take it.
    fn unless_anyone_left(&mut self, reason: &str, ctx: &mut Context<Self>) {
        let anyone = self.receivers.iter().any(|r| r.standing != Standing::Gone);
        let waiting_for_room =
            self.room_offer && self.receivers.is_empty() && self.phase == Phase::Offered;
        if !anyone && !waiting_for_room {
            self.cancel_all(reason, ctx);
        }
    }

    fn data(&mut self, session: SessionId, user: UserId, frame: DataFrame) {
        let offset = Some(frame.offset);
        if user != self.sender().id {
            return self.refuse(
                session,
                offset,
                ProtocolError::new(
                    ErrorCode::Forbidden,
                    "only the sender sends data for this transfer",
                ),
            );
        }
        if self.phase == Phase::Paused
            && self.sender_session.is_none()
            && frame.offset == self.flow.acked()
        {
            // Another session of the sender picks the transfer up where it paused.
            self.sender_session = Some(session);
            self.try_resume();
        }
        if self.sender_session != Some(session) {
            return self.refuse(
                session,
                offset,
                ProtocolError::new(
                    ErrorCode::Forbidden,
                    "this connection is not the one sending this transfer",
                ),
            );
        }
        match self.phase {
            Phase::Streaming => {}
            Phase::Offered => {
                return self.refuse(
                    session,
                    offset,
                    ProtocolError::new(ErrorCode::Conflict, "nobody has accepted yet"),
                )
            }
            Phase::Paused | Phase::Finished => {
                return self.refuse(
                    session,
                    offset,
                    ProtocolError::new(
                        ErrorCode::Conflict,
                        "the transfer is paused; wait for resume",
                    ),
                )
            }
        }
        let was_idle = self.flow.sent() == self.flow.acked();
        if let Err(error) = self.flow.data(&frame) {
            return self.refuse(session, offset, error);
        }
        if was_idle {
            self.last_progress = Instant::now();
        }
        let len = frame.len();
        let out = Outbound::Binary(frame.frame);
        for receiver in self.active_receivers() {
            if let Some(session) = receiver.session {
                self.node.router.send_session(session, out.clone());
                METRICS.transfer_bytes.inc_by(len);
            }
        }
    }

    fn ack(&mut self, session: SessionId, offset: u64, ctx: &mut Context<Self>) {
        let sent = self.flow.sent();
        let Some(receiver) = self
            .receivers
            .iter_mut()
            .find(|r| r.session == Some(session) && r.standing == Standing::Active)
        else {
            return self.refuse(
                session,
                Some(offset),
                ProtocolError::new(
                    ErrorCode::Forbidden,
                    "this connection is not receiving this transfer",
                ),
            );
        };
        if offset > sent {
            let error = ProtocolError::bad_request(format!(
                "cannot acknowledge offset {offset}: only {sent} bytes were sent"
            ));
            return self.refuse(session, Some(offset), error);
        }
        receiver.acked = receiver.acked.max(offset);
        self.advance(ctx);
    }

    /// Moves the acknowledged offset to the slowest active receiver's.
    fn advance(&mut self, ctx: &mut Context<Self>) {
        let Some(slowest) = self.active_receivers().map(|r| r.acked).min() else {
            return;
        };
        if slowest <= self.flow.acked() {
            return;
        }
        self.last_progress = Instant::now();
        match self.flow.ack(slowest) {
            Ok(ready) => self.to_hash.extend(ready),
            Err(e) => return log::error!("transfer {}: inconsistent ack: {e}", self.id),
        }
        self.pump_hash(ctx);
    }

    fn pump_hash(&mut self, ctx: &mut Context<Self>) {
        if self.to_hash.is_empty() {
            return self.maybe_complete(ctx);
        }
        let Some(state) = self.digest.take() else {
            return;
        };
        let data: Vec<Bytes> = self.to_hash.drain(..).collect();
        let len: u64 = data.iter().map(|d| d.len() as u64).sum();
        let hasher = self.node.hasher.clone();
        let work = async move { hasher.hash(state, data).await };
        ctx.spawn(
            work.into_actor(self)
                .map(move |result, transfer, ctx| match result {
                    Ok(state) => {
                        transfer.hashed += len;
                        transfer.secure(transfer.hashed, state.to_bytes(), ctx);
                        transfer.digest = Some(state);
                        transfer.pump_hash(ctx);
                    }
                    Err(e) => {
                        transfer.finish_failed("internal", &format!("hashing failed: {e}"), ctx)
                    }
                }),
        );
    }

    fn end(&mut self, session: SessionId, ctx: &mut Context<Self>) {
        if self.sender_session != Some(session) {
            return self.refuse(
                session,
                None,
                ProtocolError::new(
                    ErrorCode::Forbidden,
                    "only the sending connection ends a transfer",
                ),
            );
        }
        if self.phase == Phase::Offered {
            return self.refuse(
                session,
                None,
                ProtocolError::new(ErrorCode::Conflict, "nobody has accepted yet"),
            );
        }
        if self.flow.sent() != self.offer.size {
            let error = ProtocolError::bad_request(format!(
                "end after {} of {} bytes; send the rest first",
                self.flow.sent(),
                self.offer.size
            ));
            return self.refuse(session, None, error);
        }
        self.ended = true;
        self.maybe_complete(ctx);
    }

    fn maybe_complete(&mut self, ctx: &mut Context<Self>) {
        let hashed_all = self.hashed == self.offer.size && self.to_hash.is_empty();
        if !(self.ended && self.flow.is_done() && hashed_all && self.phase == Phase::Streaming) {
            return;
        }
        let Some(state) = &self.digest else { return };
        let digest = hex(&state.finalize());
        match &self.offer.sha256 {
            Some(declared) if *declared != digest => {
                let message =
                    format!("the bytes relayed hash to {digest}, not the declared {declared}");
                self.finish_failed("checksum_mismatch", &message, ctx);
            }
            _ => {
                // Counted before anyone hears of it, so the figures never lag the frames.
                self.stop("complete", ctx);
                self.to_everyone(ServerFrame::Complete {
                    transfer: self.id,
                    size: self.offer.size,
                    sha256: &digest,
                });
            }
        }
    }

    fn cancel(&mut self, user: UserId, session: SessionId, ctx: &mut Context<Self>) {
        if user == self.sender().id {
            return self.cancel_all("cancelled by the sender", ctx);
        }
        let room_offer = self.room_offer;
        let Some(receiver) = self.receiver_by_user(user) else {
            return self.refuse(
                session,
                None,
                ProtocolError::new(ErrorCode::Forbidden, "you are not part of this transfer"),
            );
        };
        if !room_offer {
            return self.cancel_all("cancelled by the recipient", ctx);
        }
        receiver.standing = Standing::Gone;
        self.resave(ctx);
        let frame = ServerFrame::Cancelled {
            transfer: self.id,
            reason: "cancelled by you",
        };
        self.to_session(Some(session), frame);
        self.unless_anyone_left("every recipient cancelled", ctx);
        self.advance(ctx);
    }

    /// Ends the transfer as `cancelled`, telling everyone involved why.
    fn cancel_all(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.stop("cancelled", ctx);
        self.to_everyone(ServerFrame::Cancelled {
            transfer: self.id,
            reason,
        });
    }

    fn finish_failed(&mut self, reason: &str, message: &str, ctx: &mut Context<Self>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.stop("failed", ctx);
        self.to_everyone(ServerFrame::Failed {
            transfer: self.id,
            reason,
            message,
        });
    }

    /// Takes a window of the node's transfer memory for streaming; `false` if none is left.
    fn reserve_memory(&mut self) -> bool {
        if !self.reserved {
            self.reserved = self.node.transfer_memory.reserve(self.node.limits.window);
            self.report_memory();
        }
        self.reserved
    }

    fn release_memory(&mut self) {
        if std::mem::take(&mut self.reserved) {
            self.node.transfer_memory.release(self.node.limits.window);
            self.report_memory();
        }
    }

    fn report_memory(&self) {
        let reserved = self.node.transfer_memory.reserved();
        METRICS
            .transfer_memory_reserved
            .set(i64::try_from(reserved).unwrap_or(i64::MAX));
    }

    /// Pauses a transfer whose receivers have acknowledged nothing for too long while data
    /// waits for them, freeing that data; and resumes one that waits for transfer memory.
    fn watch_progress(&mut self, ctx: &mut Context<Self>) {
        // A paused transfer is kept for `transfer_ttl` from the moment it paused.
        if self.phase != Phase::Paused {
            self.paused_since = None;
        } else if self.paused_since.get_or_insert_with(Instant::now).elapsed()
            >= self.node.limits.transfer_ttl
        {
            return self.cancel_all("expired while paused", ctx);
        }
        let stalled = self.phase == Phase::Streaming
            && self.flow.sent() > self.flow.acked()
            && self.last_progress.elapsed() >= self.node.limits.transfer_stall;
        if stalled {
            log::info!(
                "transfer {}: nothing acknowledged for {} s; paused at {}",
                self.id,
                self.node.limits.transfer_stall.as_secs(),
                self.flow.acked()
            );
            METRICS.transfers_stalled.inc();
            self.pause();
        } else if self.phase == Phase::Paused && self.waiting_for_memory {
            self.try_resume();
        }
    }

    fn stop(&mut self, outcome: &str, ctx: &mut Context<Self>) {
        METRICS.transfer_finished(outcome);
        self.release_memory();
        self.phase = Phase::Finished;
        ctx.stop();
    }
}

impl Actor for TransferActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        METRICS.transfers_active.inc();
        self.claim(ctx);
        if self.start.is_some() {
            self.announce(ctx);
        } else {
            // Restored after a restart: hear of the sides when they come back.
            let users =
                std::iter::once(self.sender().id).chain(self.receivers.iter().map(|r| r.user.id));
            for user in users.collect::<Vec<_>>() {
                let router = &self.node.router;
                let _ = router.send_user(user, PeerCommand::Track(self.id));
                // Sides still connected (this node took the transfer over from a node
                // that died) say where they are.
                let _ = router.send_user(user, PeerCommand::Report(self.id));
            }
            if self.phase == Phase::Offered {
                self.expire_offer_later(ctx);
            }
        }
        let watch = (self.node.limits.transfer_stall / 4).clamp(STALL_CHECK_MIN, STALL_CHECK_MAX);
        ctx.run_interval(watch, |transfer, ctx| transfer.watch_progress(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        METRICS.transfers_active.dec();
        self.node.transfers.close(self.sender().id, !self.answered);
        if self.fenced {
            // The new owner keeps the record and the users' tracking.
            return self.node.host.transfer_ended(self.id);
        }
        if self.saved {
            self.node.store.forget_transfer(self.id);
        }
        let untrack = |user: UserId| {
            let _ = self
                .node
                .router
                .send_user(user, PeerCommand::Untrack(self.id));
        };
        untrack(self.sender().id);
        for receiver in &self.receivers {
            untrack(receiver.user.id);
        }
        self.node.host.transfer_ended(self.id);
    }
}

impl Handler<Snapshot> for TransferActor {
    type Result = Option<TransferInfo>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Option<TransferInfo> {
        let state = match self.phase {
            Phase::Offered => "offered",
            Phase::Streaming => "streaming",
            Phase::Paused => "paused",
            Phase::Finished => return None,
        };
        Some(TransferInfo {
            id: self.id,
            from: self.offer.from.clone(),
            to: self
                .receivers
                .iter()
                .filter(|r| r.standing != Standing::Gone)
                .map(|r| r.user.clone())
                .collect(),
            room: self.offer.room.clone(),
            name: self.offer.name.clone(),
            size: self.offer.size,
            acked: self.flow.acked(),
            sent: self.flow.sent(),
            state,
        })
    }
}

impl Handler<TransferCommand> for TransferActor {
    type Result = ();

    fn handle(&mut self, command: TransferCommand, ctx: &mut Context<Self>) {
        if self.phase == Phase::Finished {
            return;
        }
        self.answering = command.request_id();
        self.handle_command(command, ctx);
        self.answering = None;
    }
}

impl TransferCommand {
    /// The `id` of the client frame this command carries, if any.
    fn request_id(&self) -> Option<RequestId> {
        match self {
            TransferCommand::Accept { re, .. }
            | TransferCommand::Decline { re, .. }
            | TransferCommand::Ack { re, .. }
            | TransferCommand::End { re, .. }
            | TransferCommand::Cancel { re, .. } => re.clone(),
            _ => None,
        }
    }
}

impl TransferActor {
    fn handle_command(&mut self, command: TransferCommand, ctx: &mut Context<Self>) {
        match command {
            TransferCommand::Recipients(users) => {
                for user in users.into_iter().filter(|u| u.id != self.offer.from.id) {
                    let _ = self
                        .node
                        .router
                        .send_user(user.id, PeerCommand::Track(self.id));
                    self.receivers.push(Receiver {
                        user,
                        session: None,
                        acked: 0,
                        standing: Standing::Invited,
                    });
                }
                if self.receivers.is_empty() {
                    self.cancel_all("nobody else is in the room", ctx);
                } else {
                    self.resave(ctx);
                }
            }
            TransferCommand::Accept {
                user,
                session,
                offset,
                re,
            } => self.accept(user, session, offset, re, ctx),
            TransferCommand::Decline { user, session, .. } => self.decline(user, session, ctx),
            TransferCommand::Data {
                session,
                user,
                frame,
            } => self.data(session, user, frame),
            TransferCommand::Ack {
                session, offset, ..
            } => self.ack(session, offset, ctx),
            TransferCommand::End { session, .. } => self.end(session, ctx),
            TransferCommand::Cancel { user, session, .. } => self.cancel(user, session, ctx),
            TransferCommand::SessionGone { session, .. } => self.session_gone(session, ctx),
            TransferCommand::UserBack { user, session } => self.user_back(user, session),
            TransferCommand::NodeGone(node) => self.node_gone(node, ctx),
            TransferCommand::AdminCancel => self.cancel_all("cancelled by an administrator", ctx),
        }
    }
}
