//! The 4-stream SHA-256 kernel on the SHA extensions (SHA-NI), streams interleaved.
//!
//! `sha256rnds2` does two rounds of one stream, but the next two rounds must wait for its
//! result: on the Zen 4 this was measured on, one stream leaves the unit idle three cycles
//! out of four (4-cycle latency, one issue per cycle). Four independent streams, one per
//! lane, fill those cycles. Each lane keeps its state in the instruction's own packing:
//! `abef` holds A, B, E, F and `cdgh` holds C, D, G, H (A and C in the top dword).
//!
//! This module owns only arithmetic over whole blocks; which stream sits in which lane is
//! [`super::lanes`]'s business. It must only ever run after `sha`, `ssse3` and `sse4.1`
//! were detected.

use super::portable::{BLOCK, K};
use std::arch::x86_64::*;

/// Streams hashed at once: enough to cover `sha256rnds2`'s latency.
pub(super) const LANES: usize = 4;

/// Folds `blocks` blocks of each lane's input into its chaining value (see
/// [`super::lanes::SegmentFn`]); the chaining values stay in registers throughout.
///
/// # Safety
///
/// The CPU must support `sha`, `sse2`, `ssse3` and `sse4.1`.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn segment(state: &mut [[u32; LANES]; 8], input: &[&[u8]; LANES], blocks: usize) {
    // Never read past a lane, whatever the caller asked for.
    let blocks = input
        .iter()
        .fold(blocks, |fewest, lane| fewest.min(lane.len() / BLOCK));
    let lanes: [*const u8; LANES] = std::array::from_fn(|lane| input[lane].as_ptr());

    let mut abef = [_mm_setzero_si128(); LANES];
    let mut cdgh = [_mm_setzero_si128(); LANES];
    for lane in 0..LANES {
        let h: [u32; 8] = std::array::from_fn(|word| state[word][lane]);
        (abef[lane], cdgh[lane]) = pack(&h);
    }
    for block in 0..blocks {
        // SAFETY: every lane holds at least `blocks` whole blocks (clamped above), so the
        // 64 bytes at `block * 64` are inside it.
        let w = unsafe { load_block(&lanes, block * BLOCK) };
        compress(&mut abef, &mut cdgh, w);
    }
    for lane in 0..LANES {
        let h = unpack(abef[lane], cdgh[lane]);
        for (word, value) in state.iter_mut().zip(h) {
            word[lane] = value;
        }
    }
}

/// A chaining value A..H as the two registers `sha256rnds2` works on: dwords, low to
/// high, F E B A and H G D C.
#[inline]
#[target_feature(enable = "sse2")]
fn pack(h: &[u32; 8]) -> (__m128i, __m128i) {
    let dcba = _mm_setr_epi32(h[3] as i32, h[2] as i32, h[1] as i32, h[0] as i32);
    let hgfe = _mm_setr_epi32(h[7] as i32, h[6] as i32, h[5] as i32, h[4] as i32);
    (
        _mm_unpackhi_epi64(hgfe, dcba),
        _mm_unpacklo_epi64(hgfe, dcba),
    )
}

/// The inverse of [`pack`].
#[inline]
#[target_feature(enable = "sse2")]
fn unpack(abef: __m128i, cdgh: __m128i) -> [u32; 8] {
    // Low to high: D C B A and H G F E; reversed, A B C D and E F G H.
    let abcd = _mm_shuffle_epi32::<0x1B>(_mm_unpackhi_epi64(cdgh, abef));
    let efgh = _mm_shuffle_epi32::<0x1B>(_mm_unpacklo_epi64(cdgh, abef));
    let mut h = [0u32; 8];
    // SAFETY: `h` is 32 writable bytes, two unaligned 16-byte stores.
    unsafe {
        _mm_storeu_si128(h.as_mut_ptr().cast(), abcd);
        _mm_storeu_si128(h.as_mut_ptr().add(4).cast(), efgh);
    }
    h
}

/// Loads one 64-byte block from each lane at `offset`: four registers per lane, each
/// holding four consecutive message words in host order.
///
/// # Safety
///
/// `lanes[i] + offset .. + 64` must be readable for every lane.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
unsafe fn load_block(lanes: &[*const u8; LANES], offset: usize) -> [[__m128i; 4]; LANES] {
    // Reverses the bytes of each u32: the message words are big-endian.
    let byte_swap = _mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
    let mut w = [[_mm_setzero_si128(); 4]; LANES];
    for (words, lane) in w.iter_mut().zip(lanes) {
        for (i, word) in words.iter_mut().enumerate() {
            // SAFETY: the caller guarantees the 64 bytes at `offset` are readable; this
            // reads the 16 at `offset + 16 * i`, `i` < 4; unaligned load.
            let raw = unsafe { _mm_loadu_si128(lane.add(offset + 16 * i).cast()) };
            *word = _mm_shuffle_epi8(raw, byte_swap);
        }
    }
    w
}

/// Four rounds `4 * $g`.. of every lane on schedule words `$w[lane][$g % 4]`; then, for
/// `$g` in 3..15, the schedule words of group `$g + 1` replace those of group `$g - 3`.
macro_rules! four_rounds {
    ($abef:ident, $cdgh:ident, $w:ident, $g:expr, $schedule:tt) => {
        let k = _mm_setr_epi32(
            K[4 * $g] as i32,
            K[4 * $g + 1] as i32,
            K[4 * $g + 2] as i32,
            K[4 * $g + 3] as i32,
        );
        for lane in 0..LANES {
            let wk = _mm_add_epi32($w[lane][$g % 4], k);
            // Two rounds leave the new A, B, E, F in the first operand's register, and
            // the old ones are now C, D, G, H: the two registers swap roles.
            $cdgh[lane] = _mm_sha256rnds2_epu32($cdgh[lane], $abef[lane], wk);
            let wk_high = _mm_shuffle_epi32::<0x0E>(wk);
            $abef[lane] = _mm_sha256rnds2_epu32($abef[lane], $cdgh[lane], wk_high);
            four_rounds!(@schedule $schedule, $w, lane, $g);
        }
    };
    (@schedule next, $w:ident, $lane:ident, $g:expr) => {
        // W[t..t+4] from W[t-16..], W[t-12..], W[t-8..], W[t-4..] with t = 4 * ($g + 1).
        let w = &mut $w[$lane];
        let sigma0_part = _mm_sha256msg1_epu32(w[($g + 1) % 4], w[($g + 2) % 4]);
        let w7 = _mm_alignr_epi8::<4>(w[$g % 4], w[($g + 3) % 4]);
        w[($g + 1) % 4] = _mm_sha256msg2_epu32(_mm_add_epi32(sigma0_part, w7), w[$g % 4]);
    };
    (@schedule last, $w:ident, $lane:ident, $g:expr) => {};
}

/// Folds one block of every lane (message words `w`) into its packed state.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn compress(
    abef: &mut [__m128i; LANES],
    cdgh: &mut [__m128i; LANES],
    mut w: [[__m128i; 4]; LANES],
) {
    let (abef_in, cdgh_in) = (*abef, *cdgh);
    four_rounds!(abef, cdgh, w, 0, last);
    four_rounds!(abef, cdgh, w, 1, last);
    four_rounds!(abef, cdgh, w, 2, last);
    four_rounds!(abef, cdgh, w, 3, next);
    four_rounds!(abef, cdgh, w, 4, next);
    four_rounds!(abef, cdgh, w, 5, next);
    four_rounds!(abef, cdgh, w, 6, next);
    four_rounds!(abef, cdgh, w, 7, next);
    four_rounds!(abef, cdgh, w, 8, next);
    four_rounds!(abef, cdgh, w, 9, next);
    four_rounds!(abef, cdgh, w, 10, next);
    four_rounds!(abef, cdgh, w, 11, next);
    four_rounds!(abef, cdgh, w, 12, next);
    four_rounds!(abef, cdgh, w, 13, next);
    four_rounds!(abef, cdgh, w, 14, next);
    four_rounds!(abef, cdgh, w, 15, last);
    for lane in 0..LANES {
        abef[lane] = _mm_add_epi32(abef[lane], abef_in[lane]);
        cdgh[lane] = _mm_add_epi32(cdgh[lane], cdgh_in[lane]);
    }
}

#[cfg(test)]
#[path = "shani_tests.rs"]
mod tests;
