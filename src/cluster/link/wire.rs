//! Frames on the wire after the handshake: `u32` header length, `u32` body length (both
//! big-endian), the header bytes, the body bytes.
//!
//! Owns the limits and the buffers. It must never allocate for a frame before its lengths
//! are checked against [`MAX_HEADER_LEN`] and [`MAX_BODY_LEN`], and never copies a received
//! body: bodies are split out of the read buffer.

use super::{Frame, LinkError};
use bytes::{Buf, BufMut, BytesMut};
use std::io::{self, IoSlice};
use std::ops::Range;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame header: headers are small serialised envelopes; 64 KiB leaves room for
/// long room lists without letting a header stand in for a body.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Largest frame body: 64 file chunks of 256 KiB. A peer that announces more is broken or
/// hostile, and the receiver would have to buffer all of it before delivering.
pub const MAX_BODY_LEN: usize = 16 * 1024 * 1024;

/// The two `u32` lengths before each frame.
const PREFIX_LEN: usize = 8;

/// How much the reader asks the socket for at once: one file chunk, so a stream of chunks
/// costs about one `read` each.
const READ_CHUNK: usize = 256 * 1024;

/// Frames over this size are read up to their end and no further (see
/// [`FrameReader::make_room`]): a quarter of a read, so reading to the end of one costs at
/// most one short extra read, and smaller frames are batched many to a read.
const LARGE_FRAME: usize = READ_CHUNK / 4;

/// A batch stops growing at this many bytes (it always holds at least one frame), so that
/// the queue's byte count, and with it backpressure, drops while a long queue drains.
pub(super) const BATCH_MAX_BYTES: usize = 1024 * 1024;

/// A batch stops growing at this many frames: each may need two `iovec`s and Linux takes
/// at most 1024 per `writev`.
pub(super) const BATCH_MAX_FRAMES: usize = 256;

/// Bodies up to this size are copied into the batch buffer next to their prefix and header;
/// larger ones are written from where they are. Copying a few KiB costs less than the extra
/// `iovec` entry, and keeps a batch of small frames to a handful of entries.
const COPY_BODY_MAX: usize = 4 * 1024;

/// Bytes a frame takes on the wire.
pub(super) fn wire_len(frame: &Frame) -> usize {
    PREFIX_LEN + frame.header.len() + frame.body.len()
}

/// Refuses at the sender what a receiver would close the connection for.
pub(super) fn check_limits(frame: &Frame) -> Result<(), LinkError> {
    if frame.header.len() > MAX_HEADER_LEN || frame.body.len() > MAX_BODY_LEN {
        return Err(LinkError::FrameTooLarge {
            header: frame.header.len(),
            body: frame.body.len(),
        });
    }
    Ok(())
}

fn prefix(frame: &Frame) -> [u8; PREFIX_LEN] {
    // Both lengths fit in a u32: `check_limits` ran in `Links::send`.
    let header_len = u32::try_from(frame.header.len()).unwrap_or(u32::MAX);
    let body_len = u32::try_from(frame.body.len()).unwrap_or(u32::MAX);
    let mut prefix = [0; PREFIX_LEN];
    prefix[..4].copy_from_slice(&header_len.to_be_bytes());
    prefix[4..].copy_from_slice(&body_len.to_be_bytes());
    prefix
}

/// Why reading frames from a connection stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error(
        "the peer announced a frame of {header} header and {body} body bytes, over the limits"
    )]
    Oversize { header: usize, body: usize },
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    #[error("reading the connection: {0}")]
    Io(#[from] io::Error),
}

/// What the read buffer holds.
#[derive(Debug)]
pub(super) enum Decoded {
    Frame(Frame),
    /// Not a whole frame yet; the frame (or its prefix) needs `frame_len` bytes in all.
    Incomplete {
        frame_len: usize,
    },
}

/// Takes one frame off the front of `buf` if it is all there.
pub(super) fn decode(buf: &mut BytesMut) -> Result<Decoded, ReadError> {
    if buf.len() < PREFIX_LEN {
        return Ok(Decoded::Incomplete {
            frame_len: PREFIX_LEN,
        });
    }
    let length_at = |at: usize| {
        let mut word = [0; 4];
        word.copy_from_slice(&buf[at..at + 4]);
        u32::from_be_bytes(word) as usize
    };
    let (header_len, body_len) = (length_at(0), length_at(4));
    if header_len > MAX_HEADER_LEN || body_len > MAX_BODY_LEN {
        return Err(ReadError::Oversize {
            header: header_len,
            body: body_len,
        });
    }
    let frame_len = PREFIX_LEN + header_len + body_len;
    if buf.len() < frame_len {
        return Ok(Decoded::Incomplete { frame_len });
    }
    buf.advance(PREFIX_LEN);
    let header = buf.split_to(header_len).freeze();
    let body = buf.split_to(body_len).freeze();
    Ok(Decoded::Frame(Frame { header, body }))
}

/// Reads frames from one connection. Bodies are split out of the read buffer; a body's
/// bytes move again only when a large frame starts in the middle of a read and does not
/// fit the room left behind it.
pub(super) struct FrameReader<R> {
    io: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(io: R) -> Self {
        FrameReader {
            io,
            buf: BytesMut::new(),
        }
    }

    /// The next frame; `None` when the peer closed between frames.
    pub(super) async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            let frame_len = match decode(&mut self.buf)? {
                Decoded::Frame(frame) => return Ok(Some(frame)),
                Decoded::Incomplete { frame_len } => frame_len,
            };
            let most = self.make_room(frame_len);
            if self.io.read_buf(&mut (&mut self.buf).limit(most)).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
        }
    }

    /// Reserves room for the next read (lengths are checked by now) and says how much to
    /// read. A large frame is read to its last byte and no further, so the frame after it
    /// starts in an empty buffer, which takes new room without moving a byte; small frames
    /// are read greedily, many per read.
    fn make_room(&mut self, frame_len: usize) -> usize {
        let missing = frame_len - self.buf.len();
        if self.buf.is_empty() {
            // One chunk, with as much again behind it for the rest of a frame it starts.
            self.buf.reserve(2 * READ_CHUNK);
            READ_CHUNK
        } else if frame_len > LARGE_FRAME {
            self.buf.reserve(missing);
            missing
        } else {
            self.buf.reserve(READ_CHUNK.max(missing));
            self.buf.capacity() - self.buf.len()
        }
    }
}

/// A piece of a batch: bytes of the writer's buffer, or the body of one frame.
enum Segment {
    Copied(Range<usize>),
    Body(usize),
}

/// Writes a batch of frames with as few `writev` calls as the socket allows.
#[derive(Default)]
pub(super) struct BatchWriter {
    /// Prefixes, headers and small bodies of the batch, back to back; reused across batches.
    copied: Vec<u8>,
    segments: Vec<Segment>,
}

impl BatchWriter {
    /// Writes every frame of `frames`, in order, or fails.
    pub(super) async fn write_all<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        frames: &[Frame],
    ) -> io::Result<()> {
        self.lay_out(frames);
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let bytes = match segment {
                Segment::Copied(range) => &self.copied[range.clone()],
                Segment::Body(index) => &frames[*index].body[..],
            };
            slices.push(IoSlice::new(bytes));
        }
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let written = io.write_vectored(rest).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, written);
        }
        Ok(())
    }

    fn lay_out(&mut self, frames: &[Frame]) {
        self.copied.clear();
        self.segments.clear();
        let mut run_start = 0;
        for (index, frame) in frames.iter().enumerate() {
            self.copied.extend_from_slice(&prefix(frame));
            self.copied.extend_from_slice(&frame.header);
            if frame.body.len() <= COPY_BODY_MAX {
                self.copied.extend_from_slice(&frame.body);
            } else {
                self.segments
                    .push(Segment::Copied(run_start..self.copied.len()));
                self.segments.push(Segment::Body(index));
                run_start = self.copied.len();
            }
        }
        if run_start < self.copied.len() {
            self.segments
                .push(Segment::Copied(run_start..self.copied.len()));
        }
    }
}
