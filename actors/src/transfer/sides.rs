//! The sides of a transfer coming and going: a bound session that ends (or its whole
//! node) pauses the transfer at the acknowledged offset; the user's next session binds in
//! its place, and both sides get `resume`.

use super::*;

impl TransferActor {
    pub(super) fn session_gone(&mut self, session: SessionId, ctx: &mut Context<Self>) {
        if self.sender_session == Some(session) {
            self.sender_session = None;
            if self.phase == Phase::Streaming {
                self.pause();
            }
            return;
        }
        let room_offer = self.room_offer;
        let Some(receiver) = self
            .receivers
            .iter_mut()
            .find(|r| r.session == Some(session))
        else {
            return;
        };
        receiver.session = None;
        if receiver.standing != Standing::Active {
            return;
        }
        if room_offer {
            // One receiver leaving does not hold up the others.
            receiver.standing = Standing::Gone;
            self.resave(ctx);
            self.unless_anyone_left("every recipient left", ctx);
            self.advance(ctx);
        } else if self.phase == Phase::Streaming {
            self.pause();
        }
    }

    /// A node died: its sessions are gone. Their users may already be back on another
    /// node (they said hello before the death was known): their peers are asked where.
    pub(super) fn node_gone(&mut self, node: crate::protocol::NodeTag, ctx: &mut Context<Self>) {
        let sender = (self.sender_session, self.sender().id);
        let gone: Vec<(SessionId, UserId)> = std::iter::once(sender)
            .filter_map(|(session, user)| session.map(|s| (s, user)))
            .chain(
                self.receivers
                    .iter()
                    .filter_map(|r| r.session.map(|s| (s, r.user.id))),
            )
            .filter(|(session, _)| session.node == node)
            .collect();
        for (session, user) in gone {
            self.session_gone(session, ctx);
            let _ = self
                .node
                .router
                .send_user(user, PeerCommand::Report(self.id));
        }
    }

    pub(super) fn pause(&mut self) {
        self.phase = Phase::Paused;
        self.flow.rewind();
        self.release_memory();
        let frame = ServerFrame::Paused {
            transfer: self.id,
            offset: self.flow.acked(),
        };
        let out = frame.to_outbound();
        if let Some(session) = self.sender_session {
            self.node.router.send_session(session, out.clone());
        }
        for receiver in self.active_receivers() {
            if let Some(session) = receiver.session {
                self.node.router.send_session(session, out.clone());
            }
        }
    }

    pub(super) fn user_back(&mut self, user: UserId, session: SessionId) {
        if self.phase == Phase::Offered && user == self.sender().id {
            // The sender's new connection hears that its offer still waits for an answer.
            if self.sender_session.is_none() {
                self.sender_session = Some(session);
                let frame = ServerFrame::Offered {
                    re: None,
                    transfer: self.id,
                };
                self.to_session(Some(session), frame);
            }
            return;
        }
        if self.phase == Phase::Offered {
            // A recipient's new session sees the offers still waiting for an answer.
            if self
                .receivers
                .iter()
                .any(|r| r.user.id == user && r.standing == Standing::Invited)
            {
                self.to_session(Some(session), ServerFrame::Offer(&self.offer));
            }
            return;
        }
        if self.phase != Phase::Paused {
            return;
        }
        if user == self.sender().id && self.sender_session.is_none() {
            self.sender_session = Some(session);
        }
        for receiver in self
            .receivers
            .iter_mut()
            .filter(|r| r.user.id == user && r.standing == Standing::Active)
        {
            if receiver.session.is_none() {
                receiver.session = Some(session);
            }
        }
        self.try_resume();
        if self.phase == Phase::Paused {
            // Back first: say where the transfer waits, and that the other side is missing.
            let frame = ServerFrame::Paused {
                transfer: self.id,
                offset: self.flow.acked(),
            };
            self.to_session(Some(session), frame);
        }
    }

    /// Resumes when the sender and every active receiver have a session again.
    pub(super) fn try_resume(&mut self) {
        let everyone_here =
            self.sender_session.is_some() && self.active_receivers().all(|r| r.session.is_some());
        if self.phase != Phase::Paused || !everyone_here || self.active_receivers().next().is_none()
        {
            return;
        }
        self.waiting_for_memory = !self.reserve_memory();
        if self.waiting_for_memory {
            return;
        }
        self.phase = Phase::Streaming;
        self.last_progress = Instant::now();
        let out = ServerFrame::Resume {
            transfer: self.id,
            offset: self.flow.acked(),
        }
        .to_outbound();
        if let Some(session) = self.sender_session {
            self.node.router.send_session(session, out.clone());
        }
        for receiver in self.active_receivers() {
            if let Some(session) = receiver.session {
                self.node.router.send_session(session, out.clone());
            }
        }
    }
}
