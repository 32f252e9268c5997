//! Flow control of one transfer: which data frame may come next, how far the sender may
//! run ahead of the slowest active receiver, and which bytes are ready to hash.
//!
//! The node hashes a byte only once every active receiver has acknowledged it. So the
//! digest state always belongs to an acknowledged offset, and resuming from that offset
//! needs no rewinding of the digest. Bytes sent but not yet acknowledged are kept as views
//! of the frames already in memory for relaying (no copy), at most `window` of them.

use crate::protocol::{DataFrame, ErrorCode, ProtocolError};
use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug)]
pub struct Flow {
    size: u64,
    window: u64,
    chunk_size: u64,
    /// The offset the next data frame must start at.
    sent: u64,
    /// Every active receiver holds `[0, acked)`.
    acked: u64,
    /// Data in `[acked, sent)`, in order, waiting for acknowledgement before hashing.
    unacked: VecDeque<Bytes>,
}

impl Flow {
    /// A transfer of `size` bytes whose first `start` bytes are already acknowledged.
    pub fn new(size: u64, window: u64, chunk_size: u64, start: u64) -> Flow {
        Flow {
            size,
            window,
            chunk_size,
            sent: start,
            acked: start,
            unacked: VecDeque::new(),
        }
    }

    /// Checks a data frame against the flow and takes its payload. The caller relays the
    /// frame only if this succeeds.
    pub fn data(&mut self, frame: &DataFrame) -> Result<(), ProtocolError> {
        let len = frame.len();
        if len > self.chunk_size {
            return Err(refusal(
                ErrorCode::TooLarge,
                format!(
                    "a data frame carries at most {} bytes; this one {len}",
                    self.chunk_size
                ),
            ));
        }
        if frame.offset != self.sent {
            return Err(refusal(
                ErrorCode::Conflict,
                format!(
                    "data out of order: expected offset {}, got {}",
                    self.sent, frame.offset
                ),
            ));
        }
        if frame.end() > self.size {
            return Err(refusal(
                ErrorCode::BadRequest,
                format!("data past the end: the file has {} bytes", self.size),
            ));
        }
        if frame.end() - self.acked > self.window {
            return Err(refusal(
                ErrorCode::Conflict,
                format!("data past the window: at most {} bytes may be unacknowledged (acknowledged: {})", self.window, self.acked),
            ));
        }
        if len > 0 {
            self.unacked.push_back(frame.data());
            self.sent = frame.end();
        }
        Ok(())
    }

    /// The slowest active receiver now holds `[0, offset)`. Returns the newly acknowledged
    /// bytes, in order, for hashing. An offset at or below the current one changes nothing.
    pub fn ack(&mut self, offset: u64) -> Result<Vec<Bytes>, ProtocolError> {
        if offset > self.sent {
            return Err(refusal(
                ErrorCode::BadRequest,
                format!(
                    "cannot acknowledge offset {offset}: only {} bytes were sent",
                    self.sent
                ),
            ));
        }
        let mut ready = Vec::new();
        while self.acked < offset {
            let Some(mut chunk) = self.unacked.pop_front() else {
                break;
            };
            let wanted = offset - self.acked;
            if (chunk.len() as u64) > wanted {
                // Acknowledged in the middle of a frame: hash the front, keep the rest.
                let rest = chunk.split_off(wanted as usize);
                self.unacked.push_front(rest);
            }
            self.acked += chunk.len() as u64;
            ready.push(chunk);
        }
        Ok(ready)
    }

    /// A side went away: forget what was sent but not acknowledged; the sender starts
    /// again from the acknowledged offset.
    pub fn rewind(&mut self) {
        self.unacked.clear();
        self.sent = self.acked;
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Every byte is acknowledged.
    pub fn is_done(&self) -> bool {
        self.acked == self.size
    }
}

fn refusal(code: ErrorCode, message: String) -> ProtocolError {
    ProtocolError::new(code, message)
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
