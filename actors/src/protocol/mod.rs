//! The wire protocol, version 1: frames a client may send ([`client`]), frames the node
//! sends ([`server`]), the error codes ([`error`]) and the validated value types
//! ([`values`]). Nothing here knows about actors or sockets, so every rule is unit-tested.

pub mod binary;
pub mod client;
pub mod error;
pub mod server;
pub mod values;

pub use binary::DataFrame;
pub use client::{parse_client_frame, ClientFrame, ParsedFrame};
pub use error::{ErrorCode, ProtocolError};
pub use server::{
    format_time, history_outbound, newest_within, FileAttachment, MessageFrame, OfferFrame,
    Outbound, PresenceStatus, ServerFrame, ServerKind, WelcomeLimits,
};
pub use values::{NodeTag, RequestId, RoomName, SessionId, User, UserId};
