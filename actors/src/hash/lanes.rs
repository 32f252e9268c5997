//! Assignment of streams to the lanes of a multi-buffer kernel.
//!
//! A SIMD kernel compresses one block of each of its N lanes at a time; this module keeps
//! every lane busy with some stream's whole blocks for as long as there are any. It runs
//! the kernel for as many blocks as the shortest busy lane still has (a *segment*), so the
//! chaining values stay in vector registers across those blocks; then it retires the
//! lanes that ran dry, writing their chaining value back, and refills them with the next
//! streams. A lane with nothing to do reads another lane's blocks and its result is
//! dropped: that is the mask.
//!
//! This module never sees partial blocks or lengths: [`super::state`] splits every update
//! into whole blocks first.

/// Whole blocks of one stream, and the chaining value to fold them into.
pub(super) struct Stream<'a> {
    /// The stream's chaining value; written once its last block is folded in.
    pub h: &'a mut [u32; 8],
    /// Whole 64-byte blocks, in stream order.
    pub blocks: &'a [u8],
}

/// A kernel's segment function: folds `blocks` blocks of each lane into that lane's
/// chaining value. `state[w][lane]` is word `w` of the lane's chaining value, so that a
/// kernel loads word `w` of all lanes with one vector load. Block `b` of a lane is
/// `input[lane][64 * b..64 * (b + 1)]`.
///
/// # Safety
///
/// The caller must have checked that the CPU has the target features the kernel is
/// compiled for. The kernel itself checks that every `input[lane]` holds `blocks` blocks.
pub(super) type SegmentFn<const N: usize> = unsafe fn(&mut [[u32; N]; 8], &[&[u8]; N], usize);

/// Folds all `streams` in through `segment`, N lanes at a time.
///
/// # Safety
///
/// The CPU must have the target features `segment` is compiled for.
pub(super) unsafe fn drive<'a, const N: usize>(
    streams: impl Iterator<Item = Stream<'a>>,
    segment: SegmentFn<N>,
) {
    let mut waiting = streams.filter(|stream| stream.blocks.len() >= super::portable::BLOCK);
    let mut lanes: [Option<Stream<'a>>; N] = std::array::from_fn(|_| None);
    let mut state = [[0u32; N]; 8];
    loop {
        refill(&mut lanes, &mut state, &mut waiting);
        let busy = lanes.iter().flatten();
        let Some(blocks) = busy.map(|s| s.blocks.len() / super::portable::BLOCK).min() else {
            return;
        };
        let input = lane_input(&lanes);
        // SAFETY: the caller vouches for the CPU features; `blocks` is at most what the
        // shortest busy lane holds, and idle lanes read a busy lane's blocks.
        unsafe { segment(&mut state, &input, blocks) };
        retire(&mut lanes, &state, blocks * super::portable::BLOCK);
    }
}

/// Puts the next waiting streams into idle lanes and loads their chaining values.
fn refill<'a, const N: usize>(
    lanes: &mut [Option<Stream<'a>>; N],
    state: &mut [[u32; N]; 8],
    waiting: &mut impl Iterator<Item = Stream<'a>>,
) {
    for (lane, slot) in lanes.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        let Some(stream) = waiting.next() else {
            return;
        };
        for (word, value) in state.iter_mut().zip(stream.h.iter()) {
            word[lane] = *value;
        }
        *slot = Some(stream);
    }
}

/// The blocks each lane reads in this segment; idle lanes read the first busy lane's.
fn lane_input<'a, const N: usize>(lanes: &[Option<Stream<'a>>; N]) -> [&'a [u8]; N] {
    let filler = lanes
        .iter()
        .flatten()
        .map(|s| s.blocks)
        .next()
        .unwrap_or(&[]);
    std::array::from_fn(|lane| lanes[lane].as_ref().map_or(filler, |s| s.blocks))
}

/// Advances busy lanes past `done` bytes; a lane with none left gets its chaining value
/// written back and becomes idle.
fn retire<const N: usize>(lanes: &mut [Option<Stream<'_>>; N], state: &[[u32; N]; 8], done: usize) {
    for (lane, slot) in lanes.iter_mut().enumerate() {
        let Some(stream) = slot else { continue };
        stream.blocks = stream.blocks.get(done..).unwrap_or(&[]);
        if stream.blocks.len() < super::portable::BLOCK {
            for (value, word) in stream.h.iter_mut().zip(state.iter()) {
                *value = word[lane];
            }
            *slot = None;
        }
    }
}
