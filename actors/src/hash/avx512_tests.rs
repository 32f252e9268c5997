use super::*;
use crate::hash::portable;

/// Whether this CPU can run the kernel; tests of a kernel the CPU lacks pass vacuously
/// (the kernel tests in `kernel_tests.rs` report which kernels ran).
fn cpu_has_avx512() -> bool {
    crate::hash::Kernel::Avx512.is_available()
}

#[test]
fn transpose_turns_lane_rows_into_word_columns() {
    if !cpu_has_avx512() {
        return;
    }
    let matrix: [[u32; 16]; 16] =
        std::array::from_fn(|row| std::array::from_fn(|col| (row * 16 + col) as u32));
    let mut out = [[0u32; 16]; 16];
    // SAFETY: AVX-512F/BW detected above; every load and store covers one 64-byte row.
    unsafe {
        let rows: [__m512i; 16] =
            std::array::from_fn(|i| _mm512_loadu_si512(matrix[i].as_ptr().cast()));
        for (vector, row) in transpose(rows).into_iter().zip(out.iter_mut()) {
            _mm512_storeu_si512(row.as_mut_ptr().cast(), vector);
        }
    }
    for (word, column) in out.iter().enumerate() {
        for (lane, value) in column.iter().enumerate() {
            assert_eq!(*value, matrix[lane][word], "word {word} of lane {lane}");
        }
    }
}

#[test]
fn segment_matches_the_portable_compression_in_every_lane() {
    if !cpu_has_avx512() {
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
    // SAFETY: AVX-512F/BW detected above.
    unsafe { segment(&mut state, &input, blocks) };
    for (lane, h) in expected.iter().enumerate() {
        let got: [u32; 8] = std::array::from_fn(|w| state[w][lane]);
        assert_eq!(&got, h, "lane {lane}");
    }
}
