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
            return self.ask_where(self.sender().id);
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
        let user = receiver.user.id;
        if receiver.standing != Standing::Active {
            return;
        }
        if room_offer {
            // One receiver leaving does not hold up the others.
            receiver.standing = Standing::Gone;
            self.resave(ctx);
            self.unless_anyone_left("every recipient left", ctx);
            self.advance(ctx);
        } else {
            if self.phase == Phase::Streaming {
                self.pause();
            }
            self.ask_where(user);
        }
    }

    /// A side's session ended, but the user may have signed in again before that was
    /// known (a page reload, or a node whose death was not known yet): the new session
    /// came while the old one was still bound, so it was not bound in its place. Their
    /// peers, on whichever node, answer with a session they have now.
    fn ask_where(&self, user: UserId) {
        let _ = self
            .node
            .router
            .send_user(user, PeerCommand::Report(self.id));
    }

    /// A node died: its sessions are gone.
    pub(super) fn node_gone(&mut self, node: crate::protocol::NodeTag, ctx: &mut Context<Self>) {
        let gone: Vec<SessionId> = self
            .sender_session
            .into_iter()
            .chain(self.receivers.iter().filter_map(|r| r.session))
            .filter(|session| session.node == node)
            .collect();
        for session in gone {
            self.session_gone(session, ctx);
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
