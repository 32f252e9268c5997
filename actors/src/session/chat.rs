//! Chat frames of a welcomed session: `say` to a room or to a user (a direct message,
//! stored before anyone sees it), and the test-only fault injection.

use super::*;

impl SessionActor {
    /// Posts chat text (and maybe a file) to a room or a user.
    pub(super) fn say(
        &mut self,
        member: RoomMember,
        target: SayTarget,
        (text, file): (Arc<str>, Option<FileAttachment>),
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ProtocolError> {
        match target {
            SayTarget::Room(room) => self.to_room(
                &room,
                RoomCommand::Say {
                    member,
                    text,
                    file,
                    re,
                },
            ),
            SayTarget::User(to) => {
                self.direct(member.user, to, (text, file), re, ctx);
                Ok(())
            }
        }
    }

    /// A direct message: stored first, then delivered to every session of both users.
    pub(super) fn direct(
        &mut self,
        from: User,
        to: UserId,
        (text, file): (Arc<str>, Option<FileAttachment>),
        re: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let message = DirectMessage {
            id: uuid::Uuid::new_v4(),
            from,
            to,
            text,
            at_ms: now_ms(),
            file,
        };
        let commit = self.node.store.append_direct(message.clone());
        ctx.spawn(commit.into_actor(self).map(move |result, session, _| {
            if let Err(e) = result {
                let error = match e {
                    StoreError::UnknownUser => {
                        ProtocolError::new(ErrorCode::NotFound, format!("there is no user {to}"))
                    }
                    other => ProtocolError::new(
                        ErrorCode::Unavailable,
                        format!("the message could not be stored ({other}); send it again"),
                    ),
                };
                return session.send_error(re.as_deref(), &error);
            }
            let mut frame = MessageFrame {
                room: None,
                to: Some(to),
                seq: None,
                from: message.from.clone(),
                text: message.text.clone(),
                at: format_time(message.at_ms),
                file: message.file.clone(),
                re: None,
            };
            let plain = frame.to_outbound();
            let router = &session.node.router;
            let _ = router.send_user(
                message.from.id,
                PeerCommand::Deliver {
                    out: plain.clone(),
                    except: Some(session.id),
                },
            );
            if to != message.from.id {
                let _ = router.send_user(
                    to,
                    PeerCommand::Deliver {
                        out: plain,
                        except: None,
                    },
                );
            }
            frame.re = re;
            session.sink.deliver(frame.to_outbound());
        }));
    }

    pub(super) fn fault(
        &mut self,
        target: &str,
        room: Option<String>,
        count: Option<u32>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ProtocolError> {
        if !self.node.faults {
            return Err(ProtocolError::bad_request(
                "unknown frame type \"debug_panic\"",
            ));
        }
        match (target, room) {
            ("session", _) => panic!("fault injection: session {} panics on request", self.id),
            ("room", Some(room)) => {
                let room = RoomName::parse(&room)?;
                self.to_room(&room, RoomCommand::Panic)
            }
            ("commits", Some(room)) => {
                let room = RoomName::parse(&room)?;
                self.to_room(&room, RoomCommand::FailCommits(count.unwrap_or(1)))
            }
            _ => {
                let _ = ctx;
                Err(ProtocolError::bad_request(
                    "debug_panic takes target \"session\", or \"room\" or \"commits\" with a room",
                ))
            }
        }
    }
}
