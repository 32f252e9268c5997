//! The transfer frames of a session: offers, the answers to them, acknowledgements and
//! binary data. The session validates what it can know alone (sizes, names, ids, who the
//! user is) and leaves the rest to the `TransferActor`, which it reaches through the registry.

use super::SessionActor;
use crate::messages::{TransferCommand, TransferStart};
use crate::protocol::values::{truncate_for_message, validate_file_name, validate_mime};
use crate::protocol::{
    DataFrame, ErrorCode, OfferFrame, ProtocolError, RequestId, RoomName, ServerFrame, User, UserId,
};
use crate::registry::RegistryError;
use bytes::Bytes;
use std::time::Instant;
use uuid::Uuid;

/// The fields of an `offer` frame, as sent.
pub struct OfferRequest {
    pub to: Option<String>,
    pub room: Option<String>,
    pub name: String,
    pub size: u64,
    pub mime: Option<String>,
    pub sha256: Option<String>,
}

impl SessionActor {
    pub(super) fn offer(
        &mut self,
        from: User,
        request: OfferRequest,
        re: Option<RequestId>,
        online_elsewhere: bool,
    ) -> Result<(), ProtocolError> {
        let max = self.node.limits.max_file_size;
        if request.size > max {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "the file is {} bytes; at most {max} may be sent",
                    request.size
                ),
            ));
        }
        let name = validate_file_name(&request.name)?;
        let mime = validate_mime(request.mime.as_deref())?;
        let sha256 = request.sha256.as_deref().map(check_sha256).transpose()?;
        let (recipient, room) = match (request.to, request.room) {
            (Some(to), None) => {
                let to = UserId::parse(&to)?;
                if to == from.id {
                    return Err(ProtocolError::bad_request(
                        "you cannot offer a file to yourself",
                    ));
                }
                if !online_elsewhere && !self.node.router.user_online(to) {
                    return Err(ProtocolError::new(
                        ErrorCode::Unavailable,
                        format!("user {to} is offline; offer the file when they are online"),
                    ));
                }
                (Some(to), None)
            }
            (None, Some(room)) => {
                let room = RoomName::parse(&room)?;
                if !self.rooms.contains(&room) {
                    return Err(ProtocolError::new(
                        ErrorCode::Forbidden,
                        format!("join room {room} before offering it a file"),
                    ));
                }
                (None, Some(room))
            }
            _ => {
                return Err(ProtocolError::bad_request(
                    "offer takes either \"to\" or \"room\", not both and not neither",
                ))
            }
        };
        self.node.transfers.open(from.id, Instant::now())?;
        let id = Uuid::new_v4();
        let offer = OfferFrame {
            transfer: id,
            from: from.clone(),
            room,
            name,
            size: request.size,
            mime,
            sha256,
        };
        let start = TransferStart {
            offer,
            sender_session: self.id,
            recipient,
            re,
        };
        self.node.router.create_transfer(id, start).map_err(|e| {
            self.node.transfers.close(from.id, true);
            ProtocolError::new(
                ErrorCode::Unavailable,
                format!("cannot start the transfer: {e}"),
            )
        })
    }

    /// `accept`, `decline`, `ack`, `end` and `cancel`: all name a transfer and go to it.
    pub(super) fn to_transfer(
        &self,
        transfer: &str,
        command: impl FnOnce(Uuid) -> TransferCommand,
    ) -> Result<(), ProtocolError> {
        let id = parse_transfer_id(transfer)?;
        self.node
            .router
            .send_transfer(id, command(id))
            .map_err(|e| transfer_unavailable(id, e))
    }

    /// A binary frame: file data for a transfer this connection sends.
    pub(super) fn binary(&mut self, frame: Bytes) {
        let user = match &self.phase {
            super::Phase::Ready { user, .. } => user.id,
            _ => {
                return self.send_error(
                    None,
                    &ProtocolError::new(ErrorCode::Unauthorized, "send hello first"),
                )
            }
        };
        let frame = match DataFrame::parse(frame) {
            Ok(frame) => frame,
            Err(error) => return self.send_error(None, &error),
        };
        let (id, offset) = (frame.transfer, frame.offset);
        let command = TransferCommand::Data {
            session: self.id,
            user,
            frame,
        };
        if let Err(e) = self.node.router.send_transfer(id, command) {
            let error = transfer_unavailable(id, e);
            crate::metrics::METRICS.error(error.code);
            self.sink
                .deliver(ServerFrame::transfer_error(None, id, Some(offset), &error).to_outbound());
        }
    }
}

fn parse_transfer_id(raw: &str) -> Result<Uuid, ProtocolError> {
    Uuid::parse_str(raw).map_err(|_| {
        ProtocolError::bad_request(format!(
            "{:?} is not a transfer id (a UUID)",
            truncate_for_message(raw)
        ))
    })
}

fn transfer_unavailable(id: Uuid, error: RegistryError) -> ProtocolError {
    match error {
        RegistryError::NotFound(_) => ProtocolError::new(
            ErrorCode::NotFound,
            format!("there is no transfer {id} (it may have finished)"),
        ),
        other => ProtocolError::new(
            ErrorCode::Unavailable,
            format!("transfer {id} is unavailable: {other}"),
        ),
    }
}

fn check_sha256(raw: &str) -> Result<String, ProtocolError> {
    if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ProtocolError::bad_request(
            "sha256 must be 64 hexadecimal digits",
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::values::DEFAULT_MIME;

    #[test]
    fn file_names_are_bounded_and_printable() {
        assert_eq!(validate_file_name("  report.pdf ").unwrap(), "report.pdf");
        assert_eq!(
            validate_file_name("../../etc/passwd").unwrap(),
            "../../etc/passwd",
            "shown, never used as a path"
        );
        assert!(validate_file_name("").is_err());
        assert!(validate_file_name("a\nb").is_err());
        assert!(validate_file_name(&"n".repeat(256)).is_err());
    }

    #[test]
    fn mime_types_default_and_are_checked() {
        assert_eq!(validate_mime(None).unwrap(), DEFAULT_MIME);
        assert_eq!(validate_mime(Some("Image/PNG")).unwrap(), "image/png");
        assert!(validate_mime(Some("nonsense")).is_err());
        assert!(validate_mime(Some("text/plain\u{7}")).is_err());
    }

    #[test]
    fn declared_digests_are_64_hex_digits() {
        let digest = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(check_sha256(digest).unwrap(), digest.to_lowercase());
        assert!(check_sha256(&digest[..63]).is_err());
        assert!(check_sha256(&format!("{}g", &digest[..63])).is_err());
    }
}
