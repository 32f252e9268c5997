//! Binary frames: file data. 16 bytes of transfer id (the UUID's bytes), 8 bytes of offset
//! (unsigned, big-endian), then the data. The node relays a frame unchanged, so parsing
//! only reads the header and slices the payload without copying it.

use super::error::ProtocolError;
use bytes::Bytes;
use uuid::Uuid;

/// Bytes in front of the data.
pub const HEADER_LEN: usize = 24;

/// One binary frame, as received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFrame {
    pub transfer: Uuid,
    pub offset: u64,
    /// The whole frame, header included, ready to relay as it came.
    #[serde(with = "crate::envelope::payload")]
    pub frame: Bytes,
}

impl DataFrame {
    /// Reads the header of a binary frame.
    pub fn parse(frame: Bytes) -> Result<DataFrame, ProtocolError> {
        if frame.len() < HEADER_LEN {
            return Err(ProtocolError::bad_request(format!(
                "a binary frame starts with a {HEADER_LEN}-byte header (16-byte transfer id, 8-byte offset); this one has {} bytes",
                frame.len()
            )));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&frame[..16]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&frame[16..HEADER_LEN]);
        Ok(DataFrame {
            transfer: Uuid::from_bytes(id),
            offset: u64::from_be_bytes(offset),
            frame,
        })
    }

    /// Builds a frame (for clients and tests).
    pub fn build(transfer: Uuid, offset: u64, data: &[u8]) -> Bytes {
        let mut frame = Vec::with_capacity(HEADER_LEN + data.len());
        frame.extend_from_slice(transfer.as_bytes());
        frame.extend_from_slice(&offset.to_be_bytes());
        frame.extend_from_slice(data);
        frame.into()
    }

    /// The file data, without copying.
    pub fn data(&self) -> Bytes {
        self.frame.slice(HEADER_LEN..)
    }

    pub fn len(&self) -> u64 {
        (self.frame.len() - HEADER_LEN) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.frame.len() == HEADER_LEN
    }

    /// The offset just past this frame's data.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_data_is_not_copied() {
        let id = Uuid::new_v4();
        let frame = DataFrame::build(id, 0x0102_0304_0506_0708, b"hello");
        let parsed = DataFrame::parse(frame.clone()).unwrap();
        assert_eq!(
            (parsed.transfer, parsed.offset, parsed.len(), parsed.end()),
            (id, 0x0102_0304_0506_0708, 5, 0x0102_0304_0506_070d)
        );
        assert_eq!(&parsed.data()[..], b"hello");
        assert_eq!(
            parsed.data().as_ptr(),
            frame[HEADER_LEN..].as_ptr(),
            "the payload is a view, not a copy"
        );
        assert_eq!(
            &frame[16..24],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            "offset is big-endian"
        );
    }

    #[test]
    fn short_frames_are_refused_and_empty_data_is_allowed() {
        assert!(DataFrame::parse(Bytes::from_static(&[0u8; 23])).is_err());
        let empty = DataFrame::parse(Bytes::from_static(&[0u8; 24])).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn the_end_offset_never_overflows() {
        let frame = DataFrame::build(Uuid::nil(), u64::MAX, b"xy");
        assert_eq!(DataFrame::parse(frame).unwrap().end(), u64::MAX);
    }
}
