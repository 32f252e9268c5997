use super::*;
use crate::hash::portable;

/// Whether this CPU can run the kernel; tests of a kernel the CPU lacks pass vacuously
/// (`kernel_lists_agree_with_each_other` logs which kernels ran).
fn cpu_has_sha_ni() -> bool {
    crate::hash::Kernel::ShaNi.is_available()
}

#[test]
fn packing_round_trips_the_chaining_value() {
    if !cpu_has_sha_ni() {
        return;
    }
    let h: [u32; 8] = std::array::from_fn(|i| 0x0101_0101 * (i as u32 + 1));
    // SAFETY: SHA-NI (and with it SSE2) detected above.
    let back = unsafe {
        let (abef, cdgh) = pack(&h);
        unpack(abef, cdgh)
    };
    assert_eq!(back, h);
}

#[test]
fn segment_matches_the_portable_compression_in_every_lane() {
    if !cpu_has_sha_ni() {
        return;
    }
    let blocks = 3;
    let data: Vec<Vec<u8>> = (0..LANES)
        .map(|lane| {
            (0..blocks * BLOCK)
                .map(|i| (i * 7 + lane * 131) as u8)
                .collect()
        })
        .collect();
    let mut state = [[0u32; LANES]; 8];
    let mut expected = [[0u32; 8]; LANES];
    for (lane, h) in expected.iter_mut().enumerate() {
        *h = std::array::from_fn(|w| portable::H0[w] ^ (lane as u32) << w);
        for (w, word) in h.iter().enumerate() {
            state[w][lane] = *word;
        }
        portable::compress_blocks(h, &data[lane]);
    }
    let input: [&[u8]; LANES] = std::array::from_fn(|lane| data[lane].as_slice());
    // SAFETY: SHA-NI, SSSE3 and SSE4.1 detected above.
    unsafe { segment(&mut state, &input, blocks) };
    for (lane, h) in expected.iter().enumerate() {
        let got: [u32; 8] = std::array::from_fn(|w| state[w][lane]);
        assert_eq!(&got, h, "lane {lane}");
    }
}
