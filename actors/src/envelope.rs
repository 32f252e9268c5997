//! Envelopes: what one node sends another. A command for an actor that lives there, or
//! frames for sessions connected there.
//!
//! An envelope is encoded as a small JSON header and a body. Bulk bytes inside it (a file
//! chunk, a relayed binary frame) are not written into the JSON: fields marked
//! `#[serde(with = "crate::envelope::payload")]` put their bytes into the body and write
//! only where they are, so a 256 KiB chunk is never escaped, and decoding slices the body
//! without copying it.

use crate::messages::{Delivery, PeerCommand, RoomCommand, TransferCommand};
use crate::protocol::{RoomName, UserId};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use uuid::Uuid;

/// How many times an envelope for an owned actor may be passed on (its sender's view of
/// the directory was stale) before it is given up: enough for a takeover in progress, and
/// a bound on a loop between two nodes that disagree.
pub const MAX_HOPS: u8 = 3;

#[derive(Debug, Serialize, Deserialize)]
pub enum Envelope {
    /// A command for a room the receiver is believed to own.
    Room {
        room: RoomName,
        command: RoomCommand,
        hops: u8,
    },
    /// A command for a transfer the receiver is believed to own.
    Transfer {
        id: Uuid,
        command: TransferCommand,
        hops: u8,
    },
    /// Frames for sessions connected to the receiver.
    Deliver(Delivery),
    /// A command for the user's peer on the receiver (its sessions there).
    User { user: UserId, command: PeerCommand },
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope header: {0}")]
    Header(#[from] serde_json::Error),
}

impl Envelope {
    /// The JSON header and the body with every payload.
    pub fn encode(&self) -> Result<(Bytes, Bytes), EnvelopeError> {
        ENCODING.with(|parts| *parts.borrow_mut() = Some(Vec::new()));
        let header = serde_json::to_vec(self);
        let parts = ENCODING.with(|parts| parts.borrow_mut().take().unwrap_or_default());
        let body = match parts.len() {
            0 => Bytes::new(),
            1 => parts.into_iter().next().unwrap_or_default(),
            _ => {
                let mut body = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                parts.iter().for_each(|part| body.extend_from_slice(part));
                body.freeze()
            }
        };
        Ok((Bytes::from(header?), body))
    }

    pub fn decode(header: &[u8], body: Bytes) -> Result<Envelope, EnvelopeError> {
        DECODING.with(|slot| *slot.borrow_mut() = Some(body));
        let envelope = serde_json::from_slice(header);
        DECODING.with(|slot| slot.borrow_mut().take());
        Ok(envelope?)
    }
}

thread_local! {
    /// While encoding: the payloads written so far, in body order.
    static ENCODING: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    /// While decoding: the body the payloads are sliced from.
    static DECODING: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// `#[serde(with = "crate::envelope::payload")]` for a `Bytes` field: in an envelope the
/// bytes go to the body and the header says where (`[start, length]`).
pub mod payload {
    use super::{DECODING, ENCODING};
    use bytes::Bytes;
    use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        let place = ENCODING.with(|parts| {
            let mut parts = parts.borrow_mut();
            let parts = parts.as_mut()?;
            let start: usize = parts.iter().map(Bytes::len).sum();
            parts.push(bytes.clone());
            Some((start as u64, bytes.len() as u64))
        });
        match place {
            Some(place) => serde::Serialize::serialize(&place, serializer),
            None => Err(S::Error::custom("payload bytes outside an envelope")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let (start, length) = <(u64, u64)>::deserialize(deserializer)?;
        let (start, length) = (start as usize, length as usize);
        DECODING.with(|body| {
            let body = body.borrow();
            let body = body
                .as_ref()
                .ok_or_else(|| D::Error::custom("payload bytes outside an envelope"))?;
            match start.checked_add(length) {
                Some(end) if end <= body.len() => Ok(body.slice(start..end)),
                _ => Err(D::Error::custom("payload outside the envelope's body")),
            }
        })
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
