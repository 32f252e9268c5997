//! The test every multi-buffer kernel passes: one `segment` call over N lanes, each lane
//! starting from its own state, must leave each lane exactly as the portable compression
//! of that lane's blocks would.

use super::portable::{self, BLOCK};

/// Runs `segment` (a kernel's N-lane block function) on three blocks per lane and compares
/// every lane with [`portable::compress_blocks`].
pub(super) fn segment_matches_portable<const N: usize>(
    segment: impl FnOnce(&mut [[u32; N]; 8], &[&[u8]; N], usize),
) {
    let blocks = 3;
    let data: Vec<Vec<u8>> = (0..N)
        .map(|lane| {
            (0..blocks * BLOCK)
                .map(|i| (i * 7 + lane * 131) as u8)
                .collect()
        })
        .collect();
    let mut state = [[0u32; N]; 8];
    let mut expected = [[0u32; 8]; N];
    for (lane, h) in expected.iter_mut().enumerate() {
        *h = std::array::from_fn(|w| portable::H0[w] ^ (lane as u32) << w);
        for (w, word) in h.iter().enumerate() {
            state[w][lane] = *word;
        }
        portable::compress_blocks(h, &data[lane]);
    }
    let input: [&[u8]; N] = std::array::from_fn(|lane| data[lane].as_slice());
    segment(&mut state, &input, blocks);
    for (lane, h) in expected.iter().enumerate() {
        let got: [u32; 8] = std::array::from_fn(|w| state[w][lane]);
        assert_eq!(&got, h, "lane {lane}");
    }
}
