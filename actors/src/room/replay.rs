//! What a member gets of the messages before now: the replay after `joined`, the replay
//! after a node hands its members (back) to this instance, and `history` pages, from the
//! room's cache or from the store.

use super::*;

impl RoomActor {
    /// Members a node hands (back) to this instance: they are added quietly, and get every
    /// message after `since`, older ones from the store first, before anything newer (the
    /// mailbox waits for the store).
    pub(super) fn rejoin(&mut self, members: Vec<RoomMember>, since: u64, ctx: &mut Context<Self>) {
        let mut sessions = Vec::with_capacity(members.len());
        for member in members {
            let Some(sink) = self.sink_of(member.session) else {
                continue;
            };
            sessions.push(member.session);
            let user = member.user.clone();
            let added = self.members.add(member.session, Member { user, sink });
            if added
                == (Added::New {
                    first_of_user: true,
                })
            {
                self.presence(&member.user, PresenceStatus::Joined, Some(member.session));
            }
        }
        self.size_changed();
        let oldest_kept = self
            .recent
            .front()
            .map_or(self.sequence.released() + 1, |m| m.seq);
        let missing = oldest_kept.saturating_sub(since.saturating_add(1));
        if missing == 0 || since >= self.sequence.released() {
            return self.replay_kept(&sessions, since);
        }
        let limit = missing.min(REJOIN_FROM_STORE) as usize;
        let lookup = self
            .node
            .store
            .history(self.name.clone(), oldest_kept, limit);
        ctx.wait(lookup.into_actor(self).map(move |result, room, _| {
            match result {
                Ok(older) => {
                    for message in older.iter().filter(|m| m.seq > since) {
                        let out = Outbound::Frame {
                            kind: crate::protocol::ServerKind::Message,
                            json: message_frame(message).to_json().into(),
                        };
                        let room_seq = Some((&room.name, message.seq));
                        room.members
                            .send_to(&*room.node.router, &sessions, &out, room_seq);
                    }
                }
                Err(e) => log::warn!(
                    "room {}: rejoin replay from the store failed: {e}",
                    room.name
                ),
            }
            room.replay_kept(&sessions, since);
        }));
    }

    /// The kept messages after `since`, to `sessions`.
    pub(super) fn replay_kept(&self, sessions: &[SessionId], since: u64) {
        for cached in self.recent.iter().filter(|m| m.seq > since) {
            let out = Outbound::Frame {
                kind: crate::protocol::ServerKind::Message,
                json: cached.json.clone(),
            };
            let room_seq = Some((&self.name, cached.seq));
            self.members
                .send_to(&*self.node.router, sessions, &out, room_seq);
        }
    }

    /// `joined`, then every kept message after `since`.
    pub(super) fn send_joined(&self, session: SessionId, since: Option<u64>, re: Option<&str>) {
        let oldest_kept = self
            .recent
            .front()
            .map_or(self.sequence.released() + 1, |m| m.seq);
        // Truncated: the client asked for more than the room keeps. Without `since` it asked
        // only for the recent messages, so nothing it wanted is missing.
        let mut truncated = since.is_some_and(|since| since.saturating_add(1) < oldest_kept);
        let since = since.unwrap_or(
            self.sequence
                .released()
                .saturating_sub(DEFAULT_JOIN_BACKLOG),
        );
        // The replay must fit well inside the joiner's outbound queue, or the node would
        // close the connection it is answering: only the newest that fit are replayed, and
        // the client fetches the rest with `history`.
        let wanted: Vec<&Cached> = self.recent.iter().filter(|m| m.seq > since).collect();
        let budget = self.node.limits.max_outbound_queue / 2;
        let keep = newest_within(wanted.iter().map(|m| m.json.len()), budget);
        if keep < wanted.len() {
            truncated = true;
        }
        let replay = &wanted[wanted.len() - keep..];
        let members = self.members.users();
        let joined = ServerFrame::Joined {
            room: &self.name,
            members: &members,
            last_seq: self.sequence.released(),
            truncated,
            re,
        };
        self.reply(session, joined.to_outbound());
        for cached in replay {
            self.reply(
                session,
                Outbound::Frame {
                    kind: crate::protocol::ServerKind::Message,
                    json: cached.json.clone(),
                },
            );
        }
    }

    pub(super) fn history(
        &mut self,
        session: SessionId,
        (before, limit): (Option<u64>, usize),
        (re, with): (Option<RequestId>, Option<UserId>),
        ctx: &mut Context<Self>,
    ) {
        let before = before
            .unwrap_or(self.sequence.released() + 1)
            .min(self.sequence.released() + 1);
        let from = before.saturating_sub(limit as u64).max(1);
        let oldest_kept = self
            .recent
            .front()
            .map_or(self.sequence.released() + 1, |m| m.seq);
        if from >= oldest_kept || before <= 1 {
            let kept = self
                .recent
                .iter()
                .filter(|m| m.seq >= from && m.seq < before)
                .map(|m| m.json.as_ref());
            let out = history_outbound(re.as_deref(), &self.name, with, kept);
            return self.reply(session, out);
        }
        let lookup = self.node.store.history(self.name.clone(), before, limit);
        ctx.spawn(
            lookup
                .into_actor(self)
                .map(move |result, room, _| match result {
                    Ok(messages) => {
                        let json: Vec<String> = messages
                            .iter()
                            .map(|m| message_frame(m).to_json())
                            .collect();
                        let out = history_outbound(
                            re.as_deref(),
                            &room.name,
                            with,
                            json.iter().map(String::as_str),
                        );
                        room.reply(session, out);
                    }
                    Err(e) => {
                        log::warn!("room {}: history lookup failed: {e}", room.name);
                        let error = ProtocolError::new(
                            ErrorCode::Unavailable,
                            "history is unavailable right now; try again",
                        );
                        room.reply_error(session, re.as_deref(), error);
                    }
                }),
        );
    }
}
