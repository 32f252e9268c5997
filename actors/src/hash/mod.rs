//! SHA-256 for file transfers: a resumable per-stream state and multi-buffer kernels.
//!
//! A node hashes every transfer it relays or stores, and many transfers are in flight at
//! once. One stream at a time runs on SHA-NI through `sha2` ([`Sha256State::update`]);
//! many streams at once run on a multi-buffer [`Kernel`] ([`update_many`]): 4 streams
//! interleaved on SHA-NI, or 16 (AVX-512) or 8 (AVX2) streams in the lanes of one vector
//! register, or one after another in plain Rust. Every path buffers partial blocks the
//! same way, so a stream can move between them at any chunk boundary and a saved
//! [`Sha256State`] resumes on any of them.
//!
//! This module owns the arithmetic and the state format; it never does I/O and never
//! decides which transfer is hashed when (the hash actor batches chunks into
//! [`update_many`] calls).
//!
//! ```text
//!  update_many(jobs) ─► state: split each job into   buffered block │ whole blocks │ tail
//!                                                          │               │          │
//!                       lanes::drive (streams → lanes) ◄───┴───────────────┘   into the buffer
//!                          │  one segment = the shortest busy lane's blocks,
//!                          │  chaining values in registers throughout
//!                 shani / avx512 / avx2 ::segment        portable::compress
//! ```

// Off x86-64 only the portable kernel exists, and nothing drives lanes.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod lanes;
mod portable;
mod state;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod shani;
// The AVX-512 intrinsics are stable since Rust 1.89, later than the workspace's
// `rust-version` (1.86): this module needs 1.89, and so does the crate with it.
#[cfg(target_arch = "x86_64")]
#[clippy::msrv = "1.89"]
mod avx512;

pub use state::{hex, Sha256State, StateError};

/// A multi-buffer implementation of the SHA-256 compression function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// 4 streams interleaved on the SHA extensions; needs SHA-NI and SSE4.1.
    ShaNi,
    /// 16 streams in the 16 u32 lanes of a 512-bit register; needs AVX-512F and BW.
    Avx512,
    /// 8 streams in the 8 u32 lanes of a 256-bit register; needs AVX2.
    Avx2,
    /// One stream after another in plain Rust; runs everywhere.
    Portable,
}

impl Kernel {
    /// Every kernel, in order of preference.
    ///
    /// SHA-NI comes first: it reaches its full rate with only 4 streams, where the
    /// AVX-512 kernel needs 16 to fill its lanes, and with 16 streams the two were equal
    /// on the AMD Zen 4 this was measured on (docs/benchmarks.md). On a CPU with
    /// full-width AVX-512 units the order may deserve a fresh measurement.
    const PREFERENCE: [Kernel; 4] = [
        Kernel::ShaNi,
        Kernel::Avx512,
        Kernel::Avx2,
        Kernel::Portable,
    ];

    /// The best multi-buffer kernel this CPU can run.
    pub fn detect() -> Kernel {
        Self::PREFERENCE
            .into_iter()
            .find(|kernel| kernel.is_available())
            .unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU can run, best first; [`Kernel::Portable`] is always last.
    pub fn available() -> Vec<Kernel> {
        Self::PREFERENCE
            .into_iter()
            .filter(|kernel| kernel.is_available())
            .collect()
    }

    /// Whether this CPU (and this build's target) can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::ShaNi => {
                std::arch::is_x86_feature_detected!("sha")
                    && std::arch::is_x86_feature_detected!("ssse3")
                    && std::arch::is_x86_feature_detected!("sse4.1")
            }
            Kernel::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 | Kernel::Avx2 | Kernel::ShaNi => false,
        }
    }

    /// Streams the kernel hashes at once.
    pub fn lanes(self) -> usize {
        match self {
            Kernel::ShaNi => 4,
            Kernel::Avx512 => 16,
            Kernel::Avx2 => 8,
            Kernel::Portable => 1,
        }
    }

    /// Short lowercase name, for logs and benchmark labels.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::ShaNi => "shani",
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The next bytes of one stream, for [`update_many`].
pub struct Job<'a> {
    /// The stream's state; [`update_many`] leaves it as `state.update(data)` would.
    pub state: &'a mut Sha256State,
    /// Bytes that follow what the state has already hashed; any length, including 0.
    pub data: &'a [u8],
}

/// Feeds each job's `data` into its `state`, hashing the streams side by side on
/// `kernel`. The states end exactly as if [`Sha256State::update`] had been called on each
/// job in turn. Jobs may have any lengths and start mid-block; there may be more jobs
/// than lanes.
///
/// A kernel this CPU cannot run is never run: the call falls back to
/// [`Kernel::Portable`] (pick kernels with [`Kernel::detect`] or [`Kernel::available`]).
pub fn update_many(kernel: Kernel, jobs: &mut [Job<'_>]) {
    // Each stream's buffered block comes before its whole blocks, so all buffered blocks
    // are folded in first, then all whole blocks; the tails go to the buffers last.
    let heads = jobs
        .iter_mut()
        .filter_map(|job| job.state.complete_head(job.data));
    compress_streams(kernel, heads);
    let bodies = jobs.iter_mut().filter_map(|job| job.state.body(job.data));
    compress_streams(kernel, bodies);
    for job in jobs.iter_mut() {
        job.state.finish_update(job.data);
    }
}

/// Folds each stream's whole blocks into its chaining value on `kernel`.
fn compress_streams<'a>(kernel: Kernel, streams: impl Iterator<Item = lanes::Stream<'a>>) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 if kernel.is_available() => {
            // SAFETY: `is_available` detected avx512f and avx512bw, the features
            // `avx512::segment` is compiled for.
            unsafe { lanes::drive::<{ avx512::LANES }>(streams, avx512::segment) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if kernel.is_available() => {
            // SAFETY: `is_available` detected avx2, the feature `avx2::segment` is
            // compiled for.
            unsafe { lanes::drive::<{ avx2::LANES }>(streams, avx2::segment) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::ShaNi if kernel.is_available() => {
            // SAFETY: `is_available` detected sha, ssse3 and sse4.1 (and x86_64 implies
            // sse2), the features `shani::segment` is compiled for.
            unsafe { lanes::drive::<{ shani::LANES }>(streams, shani::segment) }
        }
        _ => {
            for stream in streams {
                portable::compress_blocks(stream.h, stream.blocks);
            }
        }
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "test_vectors.rs"]
mod test_vectors;

#[cfg(test)]
mod segment_check;
