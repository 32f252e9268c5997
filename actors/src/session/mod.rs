//! `SessionActor`: one WebSocket connection. It parses and validates frames, enforces
//! frame sizes and the per-user rate limit, keeps the heartbeat, and turns frames into
//! commands for rooms and peers. It owns nothing that must outlive the connection.
//!
//! Outgoing frames do not pass through this actor's mailbox: rooms and peers push them
//! into the connection's queue ([`LocalSink`]), and a writer task drains the queue into the
//! socket. A client that reads too slowly fills its queue and is disconnected rather than
//! holding the node's memory hostage.

use crate::limits::{AddressSlot, TokenBucket};
use crate::messages::PeerCommand;
use crate::messages::TransferCommand;
use crate::messages::{RoomCommand, RoomMember};
use crate::metrics::METRICS;
use crate::protocol::client::FrameError;
use crate::protocol::values::{validate_text, validate_user_name};
use crate::protocol::{
    parse_client_frame, ClientFrame, ErrorCode, FileAttachment, Outbound, ProtocolError, RequestId,
    RoomName, ServerFrame, SessionId, User, UserId, WelcomeLimits,
};
use crate::registry::{SessionRef, SessionSink};
use crate::store::{NewIdentity, StoreError};
use crate::NodeContext;
use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError as WsError};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use transfer_frames::OfferRequest;

mod chat;
mod hello;
mod inbound;
mod transfer_frames;

pub use inbound::{FrameLimits, InboundFrames};

/// A connection must say `hello` within this time.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Close code for a frame over the size limit (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a client the node gives up on (policy violation).
pub const CLOSE_POLICY: u16 = 1008;
/// Frames a client may send in a row while its rate budget is spent (each answered with
/// `rate_limited`) before the node closes the connection.
pub const REFUSALS_BEFORE_CLOSE: u32 = 100;
/// A connected session counts as activity: its token is marked used this often (or four
/// times per token lifetime, if that is shorter), so that the user's other devices are not
/// refused while this one is in use.
pub const TOKEN_TOUCH_INTERVAL: Duration = Duration::from_secs(300);

/// The outgoing queue of one local connection.
pub struct LocalSink {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Bytes of frames queued but not yet written to the socket.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    overflowed: AtomicBool,
}

/// What one queued frame costs besides its payload (the queue entry, the frame header):
/// counted so that a flood of empty pings cannot grow the queue for free.
const QUEUED_FRAME_OVERHEAD: usize = 64;
/// How long after its last frame a finished connection may stay open.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// A frame that the socket does not take within this time ends the writer: the client has
/// stopped reading, and its queue is freed.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// The bytes an outgoing frame holds while it waits in the queue; `None` for a close,
/// which always goes through.
fn queued_cost(out: &Outbound) -> Option<usize> {
    let payload = match out {
        Outbound::Frame { json, .. } => json.len(),
        Outbound::Binary(frame) => frame.len(),
        Outbound::Pong(payload) => payload.len(),
        Outbound::Ping => 0,
        Outbound::Close { .. } => return None,
    };
    Some(payload + QUEUED_FRAME_OVERHEAD)
}

impl SessionSink for LocalSink {
    fn deliver(&self, out: Outbound) -> bool {
        if let Some(len) = queued_cost(&out) {
            if self.queued.fetch_add(len, Ordering::Relaxed) + len > self.max_queued {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                if !self.overflowed.swap(true, Ordering::Relaxed) {
                    METRICS.slow_clients_dropped.inc();
                    let reason = "the client reads too slowly: outbound queue full".to_owned();
                    let _ = self.tx.send(Outbound::Close {
                        code: CLOSE_POLICY,
                        reason,
                    });
                }
                return false;
            }
        }
        self.tx.send(out).is_ok()
    }
}

/// Drains a connection's queue into its socket until the queue closes, a close is sent, or
/// the socket stops taking frames for [`WRITE_DEADLINE`].
async fn write_loop(
    mut ws: actix_ws::Session,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(out) = rx.recv().await {
        if let Some(len) = queued_cost(&out) {
            queued.fetch_sub(len, Ordering::Relaxed);
        }
        let write = async {
            match out {
                Outbound::Frame { kind, json } => {
                    METRICS.frame_out(kind);
                    ws.text(&*json).await
                }
                Outbound::Binary(frame) => {
                    METRICS.frame_out(crate::protocol::ServerKind::Data);
                    ws.binary(frame).await
                }
                Outbound::Ping => ws.ping(b"").await,
                Outbound::Pong(payload) => ws.pong(&payload).await,
                Outbound::Close { code, reason } => {
                    let reason = CloseReason {
                        code: CloseCode::from(code),
                        description: Some(reason),
                    };
                    let _ = ws.clone().close(Some(reason)).await;
                    Err(actix_ws::Closed)
                }
            }
        };
        // Most writes complete at once; only one that waits gets a timer.
        let mut write = std::pin::pin!(write);
        let written = match futures_util::FutureExt::now_or_never(&mut write) {
            Some(done) => Ok(done),
            None => tokio::time::timeout(WRITE_DEADLINE, write).await,
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                METRICS.slow_clients_dropped.inc();
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Where a `say` goes.
enum SayTarget {
    Room(RoomName),
    User(UserId),
}

enum Phase {
    /// Only `hello` is accepted. Frames are rate-limited per connection.
    AwaitingHello(TokenBucket),
    /// `hello` is with the store; nothing else is accepted until `welcome`.
    Authenticating(TokenBucket),
    Ready {
        user: User,
        token: String,
    },
}

pub struct SessionActor {
    id: SessionId,
    node: Arc<NodeContext>,
    sink: SessionRef,
    phase: Phase,
    /// Rooms this session joined, so that its end can be announced to each.
    rooms: HashSet<RoomName>,
    last_heard: Instant,
    /// The client's address (behind a trusted proxy, the one it names): for logs, and for
    /// the limit on new identities per address.
    client: Option<IpAddr>,
    /// This connection's place in its address's count; given back when the actor goes.
    _address_slot: Option<AddressSlot>,
    closing: bool,
    /// Frames refused in a row for want of rate budget; past [`REFUSALS_BEFORE_CLOSE`] the
    /// client is not listening to `rate_limited` and is let go.
    refused_in_a_row: u32,
}

impl SessionActor {
    /// Starts the actor for an upgraded connection on the current arbiter.
    pub fn launch(
        node: Arc<NodeContext>,
        ws: actix_ws::Session,
        stream: impl futures_util::Stream<Item = Result<AggregatedMessage, WsError>> + Unpin + 'static,
        client: Option<IpAddr>,
        address_slot: Option<AddressSlot>,
        hang_up: Option<Box<dyn FnOnce()>>,
    ) -> Addr<SessionActor> {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let id = SessionId::new_random(node.node_tag);
        let sink = LocalSink {
            tx,
            queued: queued.clone(),
            max_queued: node.limits.max_outbound_queue,
            overflowed: AtomicBool::new(false),
        };
        let sink = SessionRef::new(id, Arc::new(sink));
        actix::spawn(async move {
            write_loop(ws, rx, queued).await;
            // The close is written (or the client stopped reading): give the client a
            // moment to close its side, then end the connection from ours, so that a
            // client that neither reads nor closes does not hold the socket.
            if let Some(hang_up) = hang_up {
                actix::clock::sleep(CLOSE_LINGER).await;
                hang_up();
            }
        });
        METRICS.connections.inc();
        SessionActor::create(move |ctx| {
            ctx.add_stream(stream);
            let bucket = node.rate.anonymous_bucket(Instant::now());
            SessionActor {
                id,
                node,
                sink,
                phase: Phase::AwaitingHello(bucket),
                rooms: HashSet::new(),
                last_heard: Instant::now(),
                client,
                _address_slot: address_slot,
                closing: false,
                refused_in_a_row: 0,
            }
        })
    }

    fn send(&self, frame: ServerFrame<'_>) {
        self.sink.deliver(frame.to_outbound());
    }

    fn send_error(&self, re: Option<&str>, error: &ProtocolError) {
        METRICS.error(error.code);
        self.send(ServerFrame::error(re, error));
    }

    fn close(&mut self, code: u16, reason: impl Into<String>, ctx: &mut Context<Self>) {
        if !self.closing {
            let reason = reason.into();
            log::debug!("session {} closes with {code}: {reason}", self.id);
            self.closing = true;
            self.sink.deliver(Outbound::Close { code, reason });
        }
        ctx.stop();
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let limits = &self.node.limits;
        ctx.run_later(HELLO_TIMEOUT, |session, ctx| {
            if !matches!(session.phase, Phase::Ready { .. }) {
                session.close(CLOSE_POLICY, "no hello within 10 s", ctx);
            }
        });
        let touch_every = TOKEN_TOUCH_INTERVAL.min(limits.session_ttl / 4);
        ctx.run_interval(touch_every, |session, _| {
            if let Phase::Ready { token, .. } = &session.phase {
                session.node.store.touch_token(token.clone());
            }
        });
        let timeout = limits.client_timeout;
        ctx.run_interval(limits.heartbeat_interval, move |session, ctx| {
            if session.last_heard.elapsed() > timeout {
                log::debug!("session {} ({:?}) timed out", session.id, session.client);
                session.close(1000, format!("no frame for {} s", timeout.as_secs()), ctx);
            } else {
                session.sink.deliver(Outbound::Ping);
            }
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        if text.len() > self.node.limits.max_text_frame {
            METRICS.frame_in_invalid();
            let reason = format!(
                "text frame larger than {} bytes",
                self.node.limits.max_text_frame
            );
            return self.close(CLOSE_TOO_BIG, reason, ctx);
        }
        let parsed = match parse_client_frame(text) {
            Ok(parsed) => parsed,
            Err(FrameError { id, error }) => {
                METRICS.frame_in_invalid();
                // Frames the node cannot use cost budget like any other.
                if let Err(refusal) = self.charge_rate(ctx) {
                    return self.send_error(id.as_deref(), &refusal);
                }
                return self.send_error(id.as_deref(), &error);
            }
        };
        METRICS.frame_in(parsed.frame.kind());
        // Acknowledgements pace file data (several per megabyte), so they are bounded by
        // the data received rather than by the chat rate.
        if !matches!(parsed.frame, ClientFrame::Ack { .. }) {
            if let Err(refusal) = self.charge_rate(ctx) {
                return self.send_error(parsed.id.as_deref(), &refusal);
            }
        }
        let re = parsed.id;
        let result = match (&self.phase, parsed.frame) {
            (Phase::AwaitingHello(_), ClientFrame::Hello { name, token, .. }) => {
                self.hello(name, token, re.clone(), ctx)
            }
            (Phase::AwaitingHello(_), _) => Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "send hello first",
            )),
            (Phase::Authenticating(_), _) => Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "wait for welcome before sending more frames",
            )),
            (Phase::Ready { user, .. }, frame) => {
                let user = user.clone();
                self.dispatch(user, frame, re.clone(), ctx)
            }
        };
        if let Err(error) = result {
            self.send_error(re.as_deref(), &error);
        }
    }

    /// Takes one frame from the rate budget. A client that keeps sending through its
    /// refusals is closed (1008): answering it would cost the node more than it allows.
    fn charge_rate(&mut self, ctx: &mut Context<Self>) -> Result<(), ProtocolError> {
        let now = Instant::now();
        let (rate, burst) = (self.node.rate.rate(), self.node.rate.burst());
        let charged = match &mut self.phase {
            Phase::AwaitingHello(bucket) | Phase::Authenticating(bucket) => {
                bucket.take(rate, burst, now)
            }
            Phase::Ready { user, .. } => self.node.rate.check(user.id, now),
        };
        let Err(wait) = charged else {
            self.refused_in_a_row = 0;
            return Ok(());
        };
        self.refused_in_a_row += 1;
        log::debug!(
            "session {} refused {} in a row",
            self.id,
            self.refused_in_a_row
        );
        if self.refused_in_a_row > REFUSALS_BEFORE_CLOSE {
            self.close(CLOSE_POLICY, "frames sent far faster than allowed", ctx);
        }
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        Err(ProtocolError::rate_limited(millis))
    }

    fn dispatch(
        &mut self,
        user: User,
        frame: ClientFrame,
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ProtocolError> {
        let member = RoomMember {
            session: self.id,
            user,
        };
        match frame {
            ClientFrame::Hello { .. } => Err(ProtocolError::new(
                ErrorCode::Conflict,
                "this connection has already said hello",
            )),
            ClientFrame::Join { room, since, .. } => {
                let room = RoomName::parse(&room)?;
                if !self.rooms.contains(&room)
                    && self.rooms.len() >= self.node.limits.max_rooms_per_session
                {
                    let max = self.node.limits.max_rooms_per_session;
                    return Err(ProtocolError::new(
                        ErrorCode::Forbidden,
                        format!("a connection may be in at most {max} rooms; leave one first"),
                    ));
                }
                self.rooms.insert(room.clone());
                self.note_rooms();
                self.to_room(&room, RoomCommand::Join { member, since, re })
            }
            ClientFrame::Leave { room, .. } => {
                let room = RoomName::parse(&room)?;
                let was_in = self.rooms.remove(&room);
                self.note_rooms();
                if !was_in {
                    return Err(ProtocolError::new(
                        ErrorCode::NotFound,
                        format!("you are not in room {room}"),
                    ));
                }
                self.to_room(
                    &room,
                    RoomCommand::Leave {
                        session: self.id,
                        re,
                    },
                )
            }
            ClientFrame::Say {
                room,
                to,
                text,
                upload,
                ..
            } => {
                // Refused before anything is done for it (a share link for an upload).
                if self.node.storage_full.load(Ordering::Relaxed) {
                    return Err(ProtocolError::new(
                        ErrorCode::Unavailable,
                        "the node's disk is full, so messages cannot be stored; send it again later",
                    ));
                }
                let max = self.node.limits.max_text_chars;
                if upload.is_none() || !text.trim().is_empty() {
                    validate_text(&text, max)?;
                }
                let target = match (room, to) {
                    (Some(room), None) => {
                        let room = RoomName::parse(&room)?;
                        if !self.rooms.contains(&room) {
                            return Err(ProtocolError::new(
                                ErrorCode::Forbidden,
                                format!("join room {room} before saying anything in it"),
                            ));
                        }
                        SayTarget::Room(room)
                    }
                    (None, Some(to)) => SayTarget::User(UserId::parse(&to)?),
                    _ => {
                        return Err(ProtocolError::bad_request(
                            "say takes either \"room\" or \"to\", not both and not neither",
                        ))
                    }
                };
                let Some(upload) = upload else {
                    return self.say(member, target, (text.into(), None), re);
                };
                let upload = uuid::Uuid::parse_str(&upload).map_err(|_| {
                    ProtocolError::bad_request("\"upload\" must be an upload id (a UUID)")
                })?;
                // Posting makes a share link: it counts as a creation, as over HTTP.
                if let Err(wait) = self.node.creations.check(member.user.id, Instant::now()) {
                    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                    let mut refusal = ProtocolError::rate_limited(millis);
                    refusal.message = format!(
                        "too many uploads and share links in a minute; wait {} s",
                        millis.div_ceil(1000)
                    );
                    return Err(refusal);
                }
                // The upload is checked (and given a share link) first; the message follows.
                // `wait`: the session reads its next frame only after this one is posted, so
                // a plain `say` right behind it cannot overtake it.
                let attach = self.node.store.attach_upload(member.user.id, upload);
                ctx.wait(attach.into_actor(self).map(move |result, session, _| {
                    let posted = match result {
                        Ok(file) => {
                            session.say(member, target, (text.into(), Some(file)), re.clone())
                        }
                        Err(StoreError::NotFound(message)) => {
                            Err(ProtocolError::new(ErrorCode::NotFound, message))
                        }
                        Err(StoreError::Conflict(message)) => {
                            Err(ProtocolError::new(ErrorCode::Conflict, message))
                        }
                        Err(other) => Err(ProtocolError::new(
                            ErrorCode::Unavailable,
                            format!("cannot post the upload: {other}"),
                        )),
                    };
                    if let Err(error) = posted {
                        session.send_error(re.as_deref(), &error);
                    }
                }));
                Ok(())
            }
            ClientFrame::History {
                room,
                with,
                before,
                limit,
                ..
            } => {
                let (room, with) = match (room, with) {
                    (Some(room), None) => (RoomName::parse(&room)?, None),
                    (None, Some(with)) => {
                        let with = UserId::parse(&with)?;
                        (RoomName::conversation(member.user.id, with), Some(with))
                    }
                    _ => {
                        return Err(ProtocolError::bad_request(
                            "history takes either \"room\" or \"with\" (a user id)",
                        ))
                    }
                };
                let max = self.node.limits.max_history;
                let limit = match limit {
                    None => 50.min(max),
                    Some(0) => {
                        return Err(ProtocolError::bad_request(
                            "history limit must be at least 1",
                        ))
                    }
                    Some(n) => (n as usize).min(max),
                };
                self.to_room(
                    &room,
                    RoomCommand::History {
                        session: self.id,
                        before,
                        limit,
                        re,
                        with,
                    },
                )
            }
            ClientFrame::Ping { .. } => {
                self.send(ServerFrame::Pong { re: re.as_deref() });
                Ok(())
            }
            ClientFrame::Offer {
                to,
                room,
                name,
                size,
                mime,
                sha256,
                ..
            } => {
                let recipient = to.as_deref().and_then(|to| UserId::parse(to).ok());
                let request = OfferRequest {
                    to,
                    room,
                    name,
                    size,
                    mime,
                    sha256,
                };
                let elsewhere = recipient.filter(|to| {
                    self.node.incarnation.is_some() && !self.node.router.user_online(*to)
                });
                let Some(to) = elsewhere else {
                    return self.offer(member.user, request, re, false);
                };
                // In a cluster the recipient may be connected to another node: ask, and
                // read the next frame only once the offer is made (its order holds).
                let nodes = self.node.router.user_nodes(to);
                ctx.wait(nodes.into_actor(self).map(move |nodes, session, _| {
                    let online = !nodes.is_empty();
                    if let Err(error) = session.offer(member.user, request, re.clone(), online) {
                        session.send_error(re.as_deref(), &error);
                    }
                }));
                Ok(())
            }
            ClientFrame::Accept {
                transfer, offset, ..
            } => {
                let (user, session) = (member.user, self.id);
                self.to_transfer(&transfer, |_| TransferCommand::Accept {
                    user,
                    session,
                    offset,
                    re,
                })
            }
            ClientFrame::Decline { transfer, .. } => {
                let (user, session) = (member.user, self.id);
                self.to_transfer(&transfer, |_| TransferCommand::Decline {
                    user,
                    session,
                    re,
                })
            }
            ClientFrame::Ack {
                transfer, offset, ..
            } => self.to_transfer(&transfer, |_| TransferCommand::Ack {
                session: self.id,
                offset,
                re,
            }),
            ClientFrame::End { transfer, .. } => {
                self.to_transfer(&transfer, |_| TransferCommand::End {
                    session: self.id,
                    re,
                })
            }
            ClientFrame::Cancel { transfer, .. } => {
                let (user, session) = (member.user.id, self.id);
                self.to_transfer(&transfer, |_| TransferCommand::Cancel { user, session, re })
            }
            ClientFrame::DebugPanic {
                target,
                room,
                count,
                ..
            } => self.fault(&target, room, count, ctx),
        }
    }

    /// Tells the registry which rooms this session is in, for the admin console.
    fn note_rooms(&self) {
        let mut rooms: Vec<RoomName> = self.rooms.iter().cloned().collect();
        rooms.sort();
        self.node.host.note_session_rooms(self.id, rooms);
    }

    fn to_room(&self, room: &RoomName, command: RoomCommand) -> Result<(), ProtocolError> {
        self.node.router.send_room(room, command).map_err(|e| {
            ProtocolError::new(
                ErrorCode::Unavailable,
                format!("room {room} is unavailable: {e}"),
            )
        })
    }

    /// Tells the rest of the node this session is gone. Runs from `Drop`, so it also runs
    /// when the actor dies in a panic.
    fn announce_end(&mut self) {
        self.node.host.unregister_session(self.id);
        if let Phase::Ready { user, token } = &self.phase {
            let rooms: Vec<RoomName> = self.rooms.drain().collect();
            if let Err(e) = self.node.router.send_user(
                user.id,
                PeerCommand::Detach {
                    session: self.id,
                    rooms,
                },
            ) {
                log::debug!("session {}: could not announce its end: {e}", self.id);
            }
            self.node.store.touch_token(token.clone());
        }
        if !self.closing {
            self.closing = true;
            self.sink.deliver(Outbound::Close {
                code: 1011,
                reason: "the session ended unexpectedly".into(),
            });
        }
        METRICS.connections.dec();
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.heartbeat(ctx);
    }
}

impl Drop for SessionActor {
    fn drop(&mut self) {
        self.announce_end();
    }
}

impl StreamHandler<Result<AggregatedMessage, WsError>> for SessionActor {
    fn handle(&mut self, item: Result<AggregatedMessage, WsError>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => self.on_text(&text, ctx),
            Ok(AggregatedMessage::Binary(frame)) => self.binary(frame),
            Ok(AggregatedMessage::Ping(payload)) => {
                // Pongs count in the outbound cap: a client that pings without reading
                // fills it and is let go, and its socket is no longer read.
                if !self.sink.deliver(Outbound::Pong(payload.to_vec())) {
                    self.close(CLOSE_POLICY, "the client reads too slowly", ctx);
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => self.close(1000, "bye", ctx),
            Err(WsError::Overflow) => {
                METRICS.frame_in_invalid();
                self.close(CLOSE_TOO_BIG, "frame larger than the node accepts", ctx);
            }
            Err(e) => {
                log::debug!("session {}: protocol error: {e}", self.id);
                self.close(1002, "WebSocket protocol error", ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
