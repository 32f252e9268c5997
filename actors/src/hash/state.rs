//! The resumable SHA-256 state of one stream, and its saved form.
//!
//! A [`Sha256State`] is everything needed to go on hashing a file where it stopped: the
//! chaining value, the bytes of an unfinished block and the length so far. Its saved form
//! ([`Sha256State::to_bytes`]) is what a transfer keeps in the database, so that after a
//! node restart the transfer resumes and still ends with the digest of the whole file.
//! That layout is a contract with data already stored: never change what version 1 means;
//! add a version instead.
//!
//! This module owns the single-stream path (whole blocks go to `sha2::compress256`, which
//! uses SHA-NI where the CPU has it) and the split of each update into "complete the
//! buffered block", "whole blocks" and "tail", which the multi-buffer kernels share so
//! that every kernel buffers exactly like [`Sha256State::update`].

use super::lanes::Stream;
use super::portable::{BLOCK, H0};
use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use std::fmt::Write as _;

/// Version byte of the saved layout written by this code.
const STATE_VERSION: u8 = 1;
/// Saved layout, version 1: version byte, 8 chaining words (u32 big-endian), total length
/// in bytes (u64 big-endian), then the `length % 64` buffered bytes.
const FIXED_LEN: usize = 1 + 8 * 4 + 8;
/// SHA-256 counts the message length in bits in a 64-bit field (FIPS 180-4, 5.1.1), so a
/// stream can never reach 2^61 bytes; a saved length at or above it is corrupt.
const MAX_LEN: u64 = 1 << 61;

/// The state of one SHA-256 stream that can be fed further, finalised any number of
/// times, and saved and restored.
#[derive(Clone)]
pub struct Sha256State {
    /// Chaining value after the last whole block.
    pub(super) h: [u32; 8],
    /// The first `len % 64` bytes are input not yet folded into `h`; the rest is stale.
    pub(super) buf: [u8; BLOCK],
    /// Bytes fed so far; its remainder modulo 64 is how much of `buf` is live.
    pub(super) len: u64,
}

/// Why saved state bytes were refused. The bytes come from the database, so a refusal
/// means the stored transfer cannot resume and must start over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Fewer bytes than the fixed part of the layout.
    #[error("saved hash state is {got} bytes, shorter than the {FIXED_LEN}-byte header")]
    TooShort {
        /// Bytes received.
        got: usize,
    },
    /// Written by a newer (or unknown) layout.
    #[error("saved hash state has layout version {0}; this node reads version {STATE_VERSION}")]
    UnknownVersion(u8),
    /// The length field is beyond what SHA-256 can count.
    #[error("saved hash state claims {0} bytes hashed, more than SHA-256 allows")]
    LengthOutOfRange(u64),
    /// The buffered bytes do not match what the length field implies.
    #[error("saved hash state holds {got} buffered bytes, but its length implies {expected}")]
    BufferMismatch {
        /// `length % 64`.
        expected: usize,
        /// Bytes after the fixed part.
        got: usize,
    },
}

/// How one update's input divides between the block being buffered and the rest.
pub(super) struct Split<'d> {
    /// Bytes that complete the buffered block (empty when nothing was buffered or the
    /// input is too short to complete it).
    pub head: &'d [u8],
    /// Whole blocks that follow, to be compressed straight from the input.
    pub body: &'d [u8],
    /// Bytes left over, stored in the buffer at `tail_at`.
    pub tail: &'d [u8],
    /// Where in the buffer the tail goes.
    pub tail_at: usize,
}

impl Sha256State {
    /// The state of an empty stream.
    pub fn new() -> Self {
        Self {
            h: H0,
            buf: [0; BLOCK],
            len: 0,
        }
    }

    /// Bytes hashed so far: where a resumed transfer continues.
    pub fn offset(&self) -> u64 {
        self.len
    }

    /// Feeds `data` as the next bytes of the stream.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(head) = self.complete_head(data) {
            sha2::compress256(head.h, as_generic_blocks(head.blocks));
        }
        let split = self.split(data);
        sha2::compress256(&mut self.h, as_generic_blocks(split.body));
        self.finish_update(data);
    }

    /// The digest of the bytes fed so far. The state is left as it was, so the stream can
    /// go on (padding is applied to a copy).
    pub fn finalize(&self) -> [u8; 32] {
        let mut h = self.h;
        let mut block = [0u8; BLOCK];
        let live = self.buffered();
        block[..live].copy_from_slice(&self.buf[..live]);
        block[live] = 0x80;
        // The 8-byte bit length must fit after the 0x80 marker; if it does not, the
        // padding spills into one more block.
        if live + 1 > BLOCK - 8 {
            sha2::compress256(&mut h, as_generic_blocks(&block));
            block = [0; BLOCK];
        }
        block[BLOCK - 8..].copy_from_slice(&self.len.wrapping_mul(8).to_be_bytes());
        sha2::compress256(&mut h, as_generic_blocks(&block));

        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(h) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// The saved form (layout version 1): version byte, 8 × u32 big-endian chaining
    /// value, u64 big-endian length, then the `length % 64` buffered bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let live = self.buffered();
        let mut out = Vec::with_capacity(FIXED_LEN + live);
        out.push(STATE_VERSION);
        for word in self.h {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.buf[..live]);
        out
    }

    /// Restores a state saved by [`Sha256State::to_bytes`], refusing bytes that are not
    /// exactly one well-formed saved state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let Some((fixed, buffered)) = bytes.split_first_chunk::<FIXED_LEN>() else {
            return Err(StateError::TooShort { got: bytes.len() });
        };
        if fixed[0] != STATE_VERSION {
            return Err(StateError::UnknownVersion(fixed[0]));
        }
        let mut h = [0u32; 8];
        for (word, bytes) in h.iter_mut().zip(fixed[1..33].chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let mut len_be = [0u8; 8];
        len_be.copy_from_slice(&fixed[33..]);
        let len = u64::from_be_bytes(len_be);
        if len >= MAX_LEN {
            return Err(StateError::LengthOutOfRange(len));
        }
        let expected = (len % BLOCK as u64) as usize;
        if buffered.len() != expected {
            return Err(StateError::BufferMismatch {
                expected,
                got: buffered.len(),
            });
        }
        let mut buf = [0u8; BLOCK];
        buf[..expected].copy_from_slice(buffered);
        Ok(Self { h, buf, len })
    }

    /// How many bytes of `buf` are live.
    pub(super) fn buffered(&self) -> usize {
        (self.len % BLOCK as u64) as usize
    }

    /// How `data` divides, given what is buffered now. Depends only on `len`, which
    /// changes only in [`Self::finish_update`], so every step of one update sees the same
    /// split.
    pub(super) fn split<'d>(&self, data: &'d [u8]) -> Split<'d> {
        let live = self.buffered();
        if live > 0 && live + data.len() < BLOCK {
            // Not enough to complete the buffered block: everything joins the buffer.
            return Split {
                head: &[],
                body: &[],
                tail: data,
                tail_at: live,
            };
        }
        let (head, rest) = data.split_at(if live > 0 { BLOCK - live } else { 0 });
        let (body, tail) = rest.split_at(rest.len() - rest.len() % BLOCK);
        Split {
            head,
            body,
            tail,
            tail_at: 0,
        }
    }

    /// Step 1 of an update: if `data` completes the buffered block, copies the missing
    /// bytes into the buffer and returns that block with the chaining value to fold it in.
    pub(super) fn complete_head(&mut self, data: &[u8]) -> Option<Stream<'_>> {
        let live = self.buffered();
        let split = self.split(data);
        if split.head.is_empty() {
            return None;
        }
        let Self { h, buf, .. } = self;
        buf[live..].copy_from_slice(split.head);
        Some(Stream {
            h,
            blocks: &buf[..],
        })
    }

    /// Step 2 of an update: the whole blocks that follow the completed head, with the
    /// chaining value to fold them into. `None` when there are none.
    pub(super) fn body<'s>(&'s mut self, data: &'s [u8]) -> Option<Stream<'s>> {
        let body = self.split(data).body;
        (!body.is_empty()).then_some(Stream {
            h: &mut self.h,
            blocks: body,
        })
    }

    /// Step 3 of an update, after the head and body are folded in: buffers the tail and
    /// counts the bytes.
    pub(super) fn finish_update(&mut self, data: &[u8]) {
        let split = self.split(data);
        self.buf[split.tail_at..split.tail_at + split.tail.len()].copy_from_slice(split.tail);
        self.len = self.len.wrapping_add(data.len() as u64);
    }
}

impl Default for Sha256State {
    fn default() -> Self {
        Self::new()
    }
}

/// Two states are equal when they would produce the same digests for any further input;
/// stale bytes past the live part of the buffer do not count.
impl PartialEq for Sha256State {
    fn eq(&self, other: &Self) -> bool {
        self.h == other.h
            && self.len == other.len
            && self.buf[..self.buffered()] == other.buf[..other.buffered()]
    }
}

impl Eq for Sha256State {}

impl std::fmt::Debug for Sha256State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sha256State")
            .field("h", &format_args!("{:08x?}", self.h))
            .field("len", &self.len)
            .field("buffered", &self.buffered())
            .finish()
    }
}

/// A digest as 64 lowercase hex digits, the form the protocol and logs use.
pub fn hex(digest: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Views whole 64-byte blocks as the block type `sha2::compress256` takes, without
/// copying; a remainder shorter than a block is left out.
fn as_generic_blocks(bytes: &[u8]) -> &[GenericArray<u8, U64>] {
    let count = bytes.len() / BLOCK;
    // SAFETY: `GenericArray<u8, U64>` is `#[repr(transparent)]` over `[u8; 64]`: size 64,
    // alignment 1, any bit pattern valid. `count * 64 <= bytes.len()`, so the new slice
    // covers only bytes of `bytes`, and it borrows `bytes` for its whole lifetime.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<GenericArray<u8, U64>>(), count) }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
