//! The inbound side of a WebSocket: frames read from the connection's body with bounded
//! memory. It reads ahead at most the largest frame's size, and it refuses a frame from
//! its header alone: a client that declares a frame (or a run of continuation
//! frames) larger than the limit gets `Overflow` (close 1009) before a byte of its payload is
//! buffered. The decoding itself (masks, opcodes, control frames) is actix-http's codec.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item};
use actix_ws::{AggregatedMessage, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bytes read ahead past the largest frame (a frame header and the start of the next).
const READ_AHEAD_SLACK: usize = 64 * 1024;

/// The largest text and binary messages a connection may send.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_text: usize,
    pub max_binary: usize,
}

/// A message being put together from continuation frames.
struct Partial {
    text: bool,
    bytes: BytesMut,
}

/// Frames from a connection body `S`, continuations put together.
pub struct InboundFrames<S> {
    body: S,
    buf: BytesMut,
    codec: Codec,
    limits: FrameLimits,
    partial: Option<Partial>,
    /// How much may be read ahead of the frames decoded: the largest frame and a bit.
    read_ahead: usize,
    /// The body has ended; what is buffered is still decoded.
    ended: bool,
    /// Nothing more is returned: the body ended and its frames are out, or an error was.
    done: bool,
}

/// Opcode and declared payload length of the frame at the start of `buf`, once its
/// header is in.
fn declared(buf: &[u8]) -> Option<(u8, u64)> {
    let opcode = buf.first()? & 0x0f;
    let length = match buf.get(1)? & 0x7f {
        126 => u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        127 => u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?),
        short => u64::from(short),
    };
    Some((opcode, length))
}

impl<S, E> InboundFrames<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(body: S, limits: FrameLimits) -> Self {
        InboundFrames {
            body,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(limits.max_text.max(limits.max_binary)),
            limits,
            partial: None,
            read_ahead: limits.max_text.max(limits.max_binary) + READ_AHEAD_SLACK,
            ended: false,
            done: false,
        }
    }

    /// Whether the frame whose header starts the buffer may be read at all.
    fn header_allowed(&self) -> bool {
        let Some((opcode, length)) = declared(&self.buf) else {
            return true;
        };
        let limit = |text: bool| {
            if text {
                self.limits.max_text
            } else {
                self.limits.max_binary
            }
        };
        let allowed = match opcode {
            0x1 => limit(true),
            0x2 => limit(false),
            0x0 => match &self.partial {
                Some(partial) => limit(partial.text).saturating_sub(partial.bytes.len()),
                None => return true, // the codec refuses a stray continuation
            },
            _ => return true, // control frames: the codec allows 125 bytes at most
        };
        usize::try_from(length).is_ok_and(|length| length <= allowed)
    }

    /// Turns one decoded frame into a message, or `None` while a message is incomplete.
    fn message(&mut self, frame: Frame) -> Result<Option<AggregatedMessage>, ProtocolError> {
        let whole = |text: bool, bytes: Bytes| -> Result<AggregatedMessage, ProtocolError> {
            if text {
                ByteString::try_from(bytes)
                    .map(AggregatedMessage::Text)
                    .map_err(|e| {
                        ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                    })
            } else {
                Ok(AggregatedMessage::Binary(bytes))
            }
        };
        let message = match frame {
            Frame::Text(bytes) => whole(true, bytes)?,
            Frame::Binary(bytes) => whole(false, bytes)?,
            Frame::Ping(bytes) => AggregatedMessage::Ping(bytes),
            Frame::Pong(bytes) => AggregatedMessage::Pong(bytes),
            Frame::Close(reason) => AggregatedMessage::Close(reason),
            Frame::Continuation(item) => {
                let (first, bytes, last) = match item {
                    Item::FirstText(bytes) => (Some(true), bytes, false),
                    Item::FirstBinary(bytes) => (Some(false), bytes, false),
                    Item::Continue(bytes) => (None, bytes, false),
                    Item::Last(bytes) => (None, bytes, true),
                };
                if let Some(text) = first {
                    self.partial = Some(Partial {
                        text,
                        bytes: BytesMut::new(),
                    });
                }
                let Some(partial) = self.partial.as_mut() else {
                    return Err(ProtocolError::ContinuationNotStarted);
                };
                partial.bytes.extend_from_slice(&bytes);
                if !last {
                    return Ok(None);
                }
                let Some(partial) = self.partial.take() else {
                    return Err(ProtocolError::ContinuationNotStarted);
                };
                whole(partial.text, partial.bytes.freeze())?
            }
        };
        Ok(Some(message))
    }

    fn next_message(&mut self) -> Result<Option<AggregatedMessage>, ProtocolError> {
        loop {
            if !self.header_allowed() {
                return Err(ProtocolError::Overflow);
            }
            match self.codec.decode(&mut self.buf)? {
                Some(frame) => {
                    if let Some(message) = self.message(frame)? {
                        return Ok(Some(message));
                    }
                }
                None => return Ok(None),
            }
        }
    }
}

impl<S, E> Stream for InboundFrames<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<AggregatedMessage, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            // Keep the connection's own buffer drained, up to a bound: actix-http's reader
            // then always has room and a waker, and a frame is never read past its limit.
            let mut waiting = false;
            while this.buf.len() < this.read_ahead {
                match Pin::new(&mut this.body).poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => this.buf.extend_from_slice(&bytes),
                    Poll::Ready(Some(Err(e))) => {
                        this.done = true;
                        let e = std::io::Error::other(e.to_string());
                        return Poll::Ready(Some(Err(ProtocolError::Io(e))));
                    }
                    Poll::Ready(None) => {
                        this.ended = true;
                        break;
                    }
                    Poll::Pending => {
                        waiting = true;
                        break;
                    }
                }
                if !this.header_allowed() {
                    break;
                }
            }
            match this.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) if this.ended => this.done = true,
                Ok(None) if waiting => return Poll::Pending,
                // The read-ahead is full without a whole frame in it: only a frame larger
                // than its limit could do that, and its header was refused. Never spin.
                Ok(None) if this.buf.len() >= this.read_ahead => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ProtocolError::Overflow)));
                }
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    this.buf = BytesMut::new();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
