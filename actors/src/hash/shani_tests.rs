use super::*;

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
    crate::hash::segment_check::segment_matches_portable::<LANES>(|state, input, blocks| {
        // SAFETY: SHA-NI, SSSE3 and SSE4.1 detected above.
        unsafe { segment(state, input, blocks) }
    });
}
