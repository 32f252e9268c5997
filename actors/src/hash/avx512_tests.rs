use super::*;

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
    crate::hash::segment_check::segment_matches_portable::<LANES>(|state, input, blocks| {
        // SAFETY: AVX-512F/BW detected above.
        unsafe { segment(state, input, blocks) }
    });
}
