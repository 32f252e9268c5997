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
            // A direct message: the conversation of the two users numbers and stores it
            // like a room of two, then sends it to every session of both.
            SayTarget::User(to) => self.to_room(
                &RoomName::conversation(member.user.id, to),
                RoomCommand::Say {
                    member,
                    text,
                    file,
                    re,
                },
            ),
        }
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
