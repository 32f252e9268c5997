//! The 16-lane SHA-256 kernel on AVX-512.
//!
//! Lane `i` of every `__m512i` belongs to stream `i`: the eight working variables are
//! eight vectors of 16 lanes, and word `t` of the message schedule is one vector holding
//! word `t` of all 16 streams' current blocks. AVX-512F gives the rotates (`vprord`) and
//! the three-input logic (`vpternlogd`: Σ's double XOR, Ch and Maj each in one
//! instruction); AVX-512BW gives the byte shuffle that turns the big-endian words around.
//!
//! This module owns only arithmetic over whole blocks; which stream sits in which lane is
//! [`super::lanes`]'s business. It must only ever run after `avx512f` and `avx512bw` were
//! detected.

use super::portable::{BLOCK, K};
use std::arch::x86_64::*;

/// Streams hashed at once: 16 lanes of u32 in a 512-bit register.
pub(super) const LANES: usize = 16;

/// Folds `blocks` blocks of each lane's input into its chaining value (see
/// [`super::lanes::SegmentFn`]); the chaining values stay in registers throughout.
///
/// # Safety
///
/// The CPU must support `avx512f` and `avx512bw`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn segment(state: &mut [[u32; LANES]; 8], input: &[&[u8]; LANES], blocks: usize) {
    // Never read past a lane, whatever the caller asked for.
    let blocks = input
        .iter()
        .fold(blocks, |fewest, lane| fewest.min(lane.len() / BLOCK));
    let lanes: [*const u8; LANES] = std::array::from_fn(|lane| input[lane].as_ptr());

    let mut h = [_mm512_setzero_si512(); 8];
    for (vector, words) in h.iter_mut().zip(state.iter()) {
        // SAFETY: `words` is 16 u32 = 64 readable bytes; the load is unaligned.
        *vector = unsafe { _mm512_loadu_si512(words.as_ptr().cast()) };
    }
    for block in 0..blocks {
        // SAFETY: every lane holds at least `blocks` whole blocks (clamped above), so the
        // 64 bytes at `block * 64` are inside it.
        let w = unsafe { load_block(&lanes, block * BLOCK) };
        h = compress(h, w);
    }
    for (words, vector) in state.iter_mut().zip(h) {
        // SAFETY: `words` is 16 u32 = 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), vector) };
    }
}

/// Loads one 64-byte block from each lane at `offset` and returns the 16 message words,
/// word `t` of all lanes in vector `t`, in host order.
///
/// # Safety
///
/// `lanes[i] + offset .. + 64` must be readable for every lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load_block(lanes: &[*const u8; LANES], offset: usize) -> [__m512i; 16] {
    // Reverses the bytes of each u32: the message words are big-endian.
    let byte_swap = _mm512_broadcast_i32x4(_mm_set_epi8(
        12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
    ));
    let mut rows = [_mm512_setzero_si512(); 16];
    for (row, lane) in rows.iter_mut().zip(lanes) {
        // SAFETY: the caller guarantees these 64 bytes are readable; the load is unaligned.
        let raw = unsafe { _mm512_loadu_si512(lane.add(offset).cast()) };
        *row = _mm512_shuffle_epi8(raw, byte_swap);
    }
    transpose(rows)
}

/// Transposes a 16 × 16 matrix of u32: row `i` (lane `i`'s block) becomes column `i`.
/// Four rounds of 16 two-source shuffles: 32-bit, 64-bit, then 128-bit interleaves.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
    let mut t = [_mm512_setzero_si512(); 16];
    for pair in 0..8 {
        t[2 * pair] = _mm512_unpacklo_epi32(r[2 * pair], r[2 * pair + 1]);
        t[2 * pair + 1] = _mm512_unpackhi_epi32(r[2 * pair], r[2 * pair + 1]);
    }
    // u[4g + m]: in 128-bit lane q, word 4q + m of rows 4g..4g+3.
    let mut u = [_mm512_setzero_si512(); 16];
    for g in 0..4 {
        let q = 4 * g;
        u[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);
        u[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);
        u[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]);
        u[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    // Word 4q + m of all rows: 128-bit lane q of u[m], u[4 + m], u[8 + m], u[12 + m].
    let mut out = [_mm512_setzero_si512(); 16];
    for m in 0..4 {
        let low01 = _mm512_shuffle_i32x4::<0x44>(u[m], u[4 + m]);
        let high01 = _mm512_shuffle_i32x4::<0xEE>(u[m], u[4 + m]);
        let low23 = _mm512_shuffle_i32x4::<0x44>(u[8 + m], u[12 + m]);
        let high23 = _mm512_shuffle_i32x4::<0xEE>(u[8 + m], u[12 + m]);
        out[m] = _mm512_shuffle_i32x4::<0x88>(low01, low23);
        out[4 + m] = _mm512_shuffle_i32x4::<0xDD>(low01, low23);
        out[8 + m] = _mm512_shuffle_i32x4::<0x88>(high01, high23);
        out[12 + m] = _mm512_shuffle_i32x4::<0xDD>(high01, high23);
    }
    out
}

/// `vpternlogd` truth tables (operands A, B, C = 0xF0, 0xCC, 0xAA).
const XOR3: i32 = 0x96;
/// `A ? B : C`: SHA-256's Ch.
const CHOOSE: i32 = 0xCA;
/// Majority of A, B, C: SHA-256's Maj.
const MAJORITY: i32 = 0xE8;

/// Schedule step for round `$t` < 48 (FIPS 180-4, 6.2.2 step 1): replaces word `$t` of
/// the 16-word window, just used by round `$t`, with word `$t + 16`. Done inside the
/// rounds so that the rotate-heavy schedule spreads over the round arithmetic.
macro_rules! next_word {
    ($w:ident, $t:expr) => {
        let w15 = $w[($t + 1) % 16];
        let w2 = $w[($t + 14) % 16];
        let small_s0 = _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<7>(w15),
            _mm512_ror_epi32::<18>(w15),
            _mm512_srli_epi32::<3>(w15),
        );
        let small_s1 = _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<17>(w2),
            _mm512_ror_epi32::<19>(w2),
            _mm512_srli_epi32::<10>(w2),
        );
        $w[$t % 16] = _mm512_add_epi32(
            _mm512_add_epi32($w[$t % 16], small_s0),
            _mm512_add_epi32($w[($t + 9) % 16], small_s1),
        );
    };
}

/// The last 16 rounds need no further schedule words.
macro_rules! no_next_word {
    ($w:ident, $t:expr) => {};
}

/// Round `$t` (FIPS 180-4, 6.2.2 step 3) with the working variables renamed instead of
/// moved: only `d` and `h` are written. `$schedule` prepares a later schedule word.
macro_rules! round {
    (
        $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident,
        $w:ident, $t:expr, $schedule:ident
    ) => {
        let kw = _mm512_add_epi32($w[$t % 16], _mm512_set1_epi32(K[$t] as i32));
        $schedule!($w, $t);
        let big_s1 = _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<6>($e),
            _mm512_ror_epi32::<11>($e),
            _mm512_ror_epi32::<25>($e),
        );
        let ch = _mm512_ternarylogic_epi32::<CHOOSE>($e, $f, $g);
        let t1 = _mm512_add_epi32(_mm512_add_epi32($h, kw), _mm512_add_epi32(big_s1, ch));
        let big_s0 = _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<2>($a),
            _mm512_ror_epi32::<13>($a),
            _mm512_ror_epi32::<22>($a),
        );
        let maj = _mm512_ternarylogic_epi32::<MAJORITY>($a, $b, $c);
        $d = _mm512_add_epi32($d, t1);
        $h = _mm512_add_epi32(t1, _mm512_add_epi32(big_s0, maj));
    };
}

/// Rounds `$t`..`$t + 8`; eight renamings bring every variable back to its own name.
macro_rules! eight_rounds {
    ($v:ident, $w:ident, $t:literal, $schedule:ident) => {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = $v;
        round!(a, b, c, d, e, f, g, h, $w, $t, $schedule);
        round!(h, a, b, c, d, e, f, g, $w, $t + 1, $schedule);
        round!(g, h, a, b, c, d, e, f, $w, $t + 2, $schedule);
        round!(f, g, h, a, b, c, d, e, $w, $t + 3, $schedule);
        round!(e, f, g, h, a, b, c, d, $w, $t + 4, $schedule);
        round!(d, e, f, g, h, a, b, c, $w, $t + 5, $schedule);
        round!(c, d, e, f, g, h, a, b, $w, $t + 6, $schedule);
        round!(b, c, d, e, f, g, h, a, $w, $t + 7, $schedule);
        $v = [a, b, c, d, e, f, g, h];
    };
}

/// Folds one block of every lane (message words `w`) into the chaining values `h`. Fully
/// unrolled: every round constant and schedule index is known at compile time, so the
/// constants come from memory with the add and the window stays in registers.
#[inline]
#[target_feature(enable = "avx512f")]
fn compress(h: [__m512i; 8], mut w: [__m512i; 16]) -> [__m512i; 8] {
    let mut v = h;
    eight_rounds!(v, w, 0, next_word);
    eight_rounds!(v, w, 8, next_word);
    eight_rounds!(v, w, 16, next_word);
    eight_rounds!(v, w, 24, next_word);
    eight_rounds!(v, w, 32, next_word);
    eight_rounds!(v, w, 40, next_word);
    eight_rounds!(v, w, 48, no_next_word);
    eight_rounds!(v, w, 56, no_next_word);
    let mut out = h;
    for (sum, add) in out.iter_mut().zip(v) {
        *sum = _mm512_add_epi32(*sum, add);
    }
    out
}

#[cfg(test)]
#[path = "avx512_tests.rs"]
mod tests;
