//! The 8-lane SHA-256 kernel on AVX2.
//!
//! Lane `i` of every `__m256i` belongs to stream `i`: the eight working variables are
//! eight vectors of 8 lanes, and word `t` of the message schedule is one vector holding
//! word `t` of all 8 streams' current blocks. AVX2 has no vector rotate and no
//! three-input logic, so a rotate is two shifts and an OR, and Maj reuses the previous
//! round's `a ^ b` (which is this round's `b ^ c`).
//!
//! This module owns only arithmetic over whole blocks; which stream sits in which lane is
//! [`super::lanes`]'s business. It must only ever run after `avx2` was detected.

use super::portable::{BLOCK, K};
use std::arch::x86_64::*;

/// Streams hashed at once: 8 lanes of u32 in a 256-bit register.
pub(super) const LANES: usize = 8;

/// Folds `blocks` blocks of each lane's input into its chaining value (see
/// [`super::lanes::SegmentFn`]); the chaining values stay in registers throughout.
///
/// # Safety
///
/// The CPU must support `avx2`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn segment(state: &mut [[u32; LANES]; 8], input: &[&[u8]; LANES], blocks: usize) {
    // Never read past a lane, whatever the caller asked for.
    let blocks = input
        .iter()
        .fold(blocks, |fewest, lane| fewest.min(lane.len() / BLOCK));
    let lanes: [*const u8; LANES] = std::array::from_fn(|lane| input[lane].as_ptr());

    let mut h = [_mm256_setzero_si256(); 8];
    for (vector, words) in h.iter_mut().zip(state.iter()) {
        // SAFETY: `words` is 8 u32 = 32 readable bytes; the load is unaligned.
        *vector = unsafe { _mm256_loadu_si256(words.as_ptr().cast()) };
    }
    for block in 0..blocks {
        // SAFETY: every lane holds at least `blocks` whole blocks (clamped above), so the
        // 64 bytes at `block * 64` are inside it.
        let w = unsafe { load_block(&lanes, block * BLOCK) };
        h = compress(h, w);
    }
    for (words, vector) in state.iter_mut().zip(h) {
        // SAFETY: `words` is 8 u32 = 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(words.as_mut_ptr().cast(), vector) };
    }
}

/// Loads one 64-byte block from each lane at `offset` and returns the 16 message words,
/// word `t` of all lanes in vector `t`, in host order.
///
/// # Safety
///
/// `lanes[i] + offset .. + 64` must be readable for every lane.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_block(lanes: &[*const u8; LANES], offset: usize) -> [__m256i; 16] {
    // Reverses the bytes of each u32: the message words are big-endian.
    let byte_swap = _mm256_setr_epi8(
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8,
        15, 14, 13, 12,
    );
    let mut w = [_mm256_setzero_si256(); 16];
    for (half, words) in w.chunks_exact_mut(8).enumerate() {
        let mut rows = [_mm256_setzero_si256(); 8];
        for (row, lane) in rows.iter_mut().zip(lanes) {
            // SAFETY: the caller guarantees the 64 bytes at `offset` are readable, and
            // this reads the 32 at `offset + 32 * half`, `half` < 2; unaligned load.
            let raw = unsafe { _mm256_loadu_si256(lane.add(offset + 32 * half).cast()) };
            *row = _mm256_shuffle_epi8(raw, byte_swap);
        }
        words.copy_from_slice(&transpose(rows));
    }
    w
}

/// Transposes an 8 × 8 matrix of u32: row `i` (lane `i`'s half block) becomes column
/// `i`. Three rounds of 8 two-source shuffles: 32-bit, 64-bit, then 128-bit interleaves.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose(r: [__m256i; 8]) -> [__m256i; 8] {
    let mut t = [_mm256_setzero_si256(); 8];
    for pair in 0..4 {
        t[2 * pair] = _mm256_unpacklo_epi32(r[2 * pair], r[2 * pair + 1]);
        t[2 * pair + 1] = _mm256_unpackhi_epi32(r[2 * pair], r[2 * pair + 1]);
    }
    // u[4g + m]: in 128-bit lane q, word 4q + m of rows 4g..4g+3.
    let mut u = [_mm256_setzero_si256(); 8];
    for g in 0..2 {
        let q = 4 * g;
        u[q] = _mm256_unpacklo_epi64(t[q], t[q + 2]);
        u[q + 1] = _mm256_unpackhi_epi64(t[q], t[q + 2]);
        u[q + 2] = _mm256_unpacklo_epi64(t[q + 1], t[q + 3]);
        u[q + 3] = _mm256_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    let mut out = [_mm256_setzero_si256(); 8];
    for m in 0..4 {
        out[m] = _mm256_permute2x128_si256::<0x20>(u[m], u[4 + m]);
        out[4 + m] = _mm256_permute2x128_si256::<0x31>(u[m], u[4 + m]);
    }
    out
}

/// Rotates each u32 lane right by `$n` bits.
macro_rules! ror {
    ($x:expr, $n:literal) => {
        _mm256_or_si256(
            _mm256_srli_epi32::<$n>($x),
            _mm256_slli_epi32::<{ 32 - $n }>($x),
        )
    };
}

/// `ror(x, r0) ^ ror(x, r1) ^ ror(x, r2)`: the Σ functions.
macro_rules! big_sigma {
    ($x:expr, $r0:literal, $r1:literal, $r2:literal) => {
        _mm256_xor_si256(
            _mm256_xor_si256(ror!($x, $r0), ror!($x, $r1)),
            ror!($x, $r2),
        )
    };
}

/// `ror(x, r0) ^ ror(x, r1) ^ (x >> s)`: the σ functions.
macro_rules! small_sigma {
    ($x:expr, $r0:literal, $r1:literal, $s:literal) => {
        _mm256_xor_si256(
            _mm256_xor_si256(ror!($x, $r0), ror!($x, $r1)),
            _mm256_srli_epi32::<$s>($x),
        )
    };
}

/// Schedule step for round `$t` < 48 (FIPS 180-4, 6.2.2 step 1): replaces word `$t` of
/// the 16-word window, just used by round `$t`, with word `$t + 16`. Done inside the
/// rounds so that the shift-heavy schedule spreads over the round arithmetic.
macro_rules! next_word {
    ($w:ident, $t:expr) => {
        let small_s0 = small_sigma!($w[($t + 1) % 16], 7, 18, 3);
        let small_s1 = small_sigma!($w[($t + 14) % 16], 17, 19, 10);
        $w[$t % 16] = _mm256_add_epi32(
            _mm256_add_epi32($w[$t % 16], small_s0),
            _mm256_add_epi32($w[($t + 9) % 16], small_s1),
        );
    };
}

/// The last 16 rounds need no further schedule words.
macro_rules! no_next_word {
    ($w:ident, $t:expr) => {};
}

/// Round `$t` (FIPS 180-4, 6.2.2 step 3) with the working variables renamed instead of
/// moved: only `d` and `h` are written. `$bc` holds `b ^ c` on entry; `$ab` receives
/// `a ^ b`, which is the next round's `b ^ c`. `$schedule` prepares a later schedule word.
macro_rules! round {
    (
        $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident,
        $ab:ident, $bc:ident, $w:ident, $t:expr, $schedule:ident
    ) => {
        let kw = _mm256_add_epi32($w[$t % 16], _mm256_set1_epi32(K[$t] as i32));
        $schedule!($w, $t);
        let ch = _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256($f, $g), $e), $g);
        let t1 = _mm256_add_epi32(
            _mm256_add_epi32($h, kw),
            _mm256_add_epi32(big_sigma!($e, 6, 11, 25), ch),
        );
        $ab = _mm256_xor_si256($a, $b);
        let maj = _mm256_xor_si256(_mm256_and_si256($ab, $bc), $b);
        $d = _mm256_add_epi32($d, t1);
        $h = _mm256_add_epi32(t1, _mm256_add_epi32(big_sigma!($a, 2, 13, 22), maj));
    };
}

/// Rounds `$t`..`$t + 8`; eight renamings bring every variable back to its own name, and
/// an even number of rounds leaves `b ^ c` in `$bc` again.
macro_rules! eight_rounds {
    ($v:ident, $bc:ident, $w:ident, $t:literal, $schedule:ident) => {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = $v;
        let mut ab;
        round!(a, b, c, d, e, f, g, h, ab, $bc, $w, $t, $schedule);
        round!(h, a, b, c, d, e, f, g, $bc, ab, $w, $t + 1, $schedule);
        round!(g, h, a, b, c, d, e, f, ab, $bc, $w, $t + 2, $schedule);
        round!(f, g, h, a, b, c, d, e, $bc, ab, $w, $t + 3, $schedule);
        round!(e, f, g, h, a, b, c, d, ab, $bc, $w, $t + 4, $schedule);
        round!(d, e, f, g, h, a, b, c, $bc, ab, $w, $t + 5, $schedule);
        round!(c, d, e, f, g, h, a, b, ab, $bc, $w, $t + 6, $schedule);
        round!(b, c, d, e, f, g, h, a, $bc, ab, $w, $t + 7, $schedule);
        $v = [a, b, c, d, e, f, g, h];
    };
}

/// Folds one block of every lane (message words `w`) into the chaining values `h`. Fully
/// unrolled: every round constant and schedule index is known at compile time.
#[inline]
#[target_feature(enable = "avx2")]
fn compress(h: [__m256i; 8], mut w: [__m256i; 16]) -> [__m256i; 8] {
    let mut v = h;
    let mut bc = _mm256_xor_si256(h[1], h[2]);
    eight_rounds!(v, bc, w, 0, next_word);
    eight_rounds!(v, bc, w, 8, next_word);
    eight_rounds!(v, bc, w, 16, next_word);
    eight_rounds!(v, bc, w, 24, next_word);
    eight_rounds!(v, bc, w, 32, next_word);
    eight_rounds!(v, bc, w, 40, next_word);
    eight_rounds!(v, bc, w, 48, no_next_word);
    eight_rounds!(v, bc, w, 56, no_next_word);
    let mut out = h;
    for (sum, add) in out.iter_mut().zip(v) {
        *sum = _mm256_add_epi32(*sum, add);
    }
    out
}

#[cfg(test)]
#[path = "avx2_tests.rs"]
mod tests;
