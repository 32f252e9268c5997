use super::*;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}

/// A length for a job: often empty, under a block or exactly whole blocks, where the
/// buffering has edges; otherwise anything up to `max`.
fn job_length(rng: &mut StdRng, max: usize) -> usize {
    match rng.random_range(0..6) {
        0 => 0,
        1 => rng.random_range(1..64),
        2 => 64 * rng.random_range(1..=max / 64),
        _ => rng.random_range(0..=max),
    }
}

/// Feeds every stream in rounds of `update_many` calls, each round a random-length piece
/// of every unfinished stream (finished ones still join with empty pieces).
fn hash_in_rounds(kernel: Kernel, rng: &mut StdRng, streams: &[Vec<u8>]) -> Vec<Sha256State> {
    let mut states = vec![Sha256State::new(); streams.len()];
    let mut fed = vec![0usize; streams.len()];
    while fed
        .iter()
        .zip(streams)
        .any(|(done, data)| *done < data.len())
    {
        let mut jobs = Vec::new();
        for ((state, done), data) in states.iter_mut().zip(fed.iter_mut()).zip(streams) {
            let take = job_length(rng, 3_000).min(data.len() - *done);
            jobs.push(Job {
                state,
                data: &data[*done..*done + take],
            });
            *done += take;
        }
        update_many(kernel, &mut jobs);
    }
    states
}

#[test]
fn kernel_lists_agree_with_each_other() {
    let available = Kernel::available();
    assert_eq!(available.last(), Some(&Kernel::Portable));
    assert_eq!(available.first(), Some(&Kernel::detect()));
    assert!(available.iter().all(|kernel| kernel.is_available()));
    assert_eq!(Kernel::ShaNi.lanes(), 4);
    assert_eq!(Kernel::Avx512.lanes(), 16);
    assert_eq!(Kernel::Avx2.lanes(), 8);
    assert_eq!(Kernel::Portable.lanes(), 1);
    // Which kernels this run covered, for whoever reads the test log.
    eprintln!("kernels available: {available:?}");
}

#[test]
fn portable_compression_matches_sha2() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0101);
    for _ in 0..200 {
        let mut h: [u32; 8] = std::array::from_fn(|_| rng.random());
        let mut block = [0u8; 64];
        rng.fill_bytes(&mut block);
        let mut expected = h;
        sha2::compress256(&mut expected, &[GenericArray::clone_from_slice(&block)]);
        portable::compress(&mut h, &block);
        assert_eq!(h, expected);
    }
}

#[test]
fn standard_vectors_through_every_kernel() {
    let vectors = test_vectors::standard();
    for kernel in Kernel::available() {
        let mut states = vec![Sha256State::new(); vectors.len()];
        let mut jobs: Vec<Job<'_>> = states
            .iter_mut()
            .zip(&vectors)
            .map(|(state, vector)| Job {
                state,
                data: &vector.message,
            })
            .collect();
        update_many(kernel, &mut jobs);
        for (state, vector) in states.iter().zip(&vectors) {
            assert_eq!(
                hex(&state.finalize()),
                vector.digest,
                "{kernel}: {}",
                vector.name
            );
        }
    }
}

#[test]
fn random_streams_in_many_calls_match_sha2_on_every_kernel() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0102);
    let cases = if cfg!(debug_assertions) { 4 } else { 40 };
    for kernel in Kernel::available() {
        for case in 0..cases {
            let count = rng.random_range(1..=40);
            let streams: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let len = job_length(&mut rng, 12_000);
                    random_bytes(&mut rng, len)
                })
                .collect();
            let states = hash_in_rounds(kernel, &mut rng, &streams);
            for (i, (state, data)) in states.iter().zip(&streams).enumerate() {
                assert_eq!(state.offset(), data.len() as u64);
                assert_eq!(
                    state.finalize(),
                    sha2_digest(data),
                    "{kernel}, case {case}, stream {i} of {count}, {} bytes",
                    data.len()
                );
            }
        }
    }
}

#[test]
fn unequal_jobs_in_one_call_end_as_separate_updates() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0103);
    let rounds = if cfg!(debug_assertions) { 1 } else { 5 };
    for kernel in Kernel::available() {
        for _ in 0..rounds {
            for count in 1..=40 {
                // States start mid-block, with 0..=63 bytes buffered (or more blocks).
                let before: Vec<Sha256State> = (0..count)
                    .map(|_| {
                        let len = rng.random_range(0..200);
                        let mut state = Sha256State::new();
                        state.update(&random_bytes(&mut rng, len));
                        state
                    })
                    .collect();
                let data: Vec<Vec<u8>> = (0..count)
                    .map(|_| {
                        let len = job_length(&mut rng, 2_000);
                        random_bytes(&mut rng, len)
                    })
                    .collect();

                let mut states = before.clone();
                let mut jobs: Vec<Job<'_>> = states
                    .iter_mut()
                    .zip(&data)
                    .map(|(state, data)| Job { state, data })
                    .collect();
                update_many(kernel, &mut jobs);

                for (i, ((state, start), data)) in states.iter().zip(&before).zip(&data).enumerate()
                {
                    let mut expected = start.clone();
                    expected.update(data);
                    assert_eq!(
                        state,
                        &expected,
                        "{kernel}: job {i} of {count}, {} bytes after {}",
                        data.len(),
                        start.offset()
                    );
                    assert_eq!(state.to_bytes(), expected.to_bytes());
                }
            }
        }
    }
}

#[test]
fn one_long_stream_among_short_ones_keeps_its_lane() {
    // One stream runs long after the others ran dry; the others are refilled and retire
    // at different blocks. Covers a lane that hashes alone for many segments.
    let mut rng = StdRng::seed_from_u64(0x5eed_0104);
    let long = random_bytes(&mut rng, 64 * 300 + 17);
    let short: Vec<Vec<u8>> = (1..=33)
        .map(|blocks| random_bytes(&mut rng, 64 * blocks))
        .collect();
    for kernel in Kernel::available() {
        let mut long_state = Sha256State::new();
        let mut short_states = vec![Sha256State::new(); short.len()];
        let mut jobs = vec![Job {
            state: &mut long_state,
            data: &long,
        }];
        jobs.extend(
            short_states
                .iter_mut()
                .zip(&short)
                .map(|(state, data)| Job { state, data }),
        );
        update_many(kernel, &mut jobs);
        assert_eq!(long_state.finalize(), sha2_digest(&long), "{kernel}");
        for (state, data) in short_states.iter().zip(&short) {
            assert_eq!(state.finalize(), sha2_digest(data), "{kernel}");
        }
    }
}

#[test]
fn no_jobs_is_a_no_op() {
    for kernel in Kernel::available() {
        update_many(kernel, &mut []);
    }
}

#[test]
fn a_kernel_the_cpu_lacks_still_hashes_correctly() {
    // Whatever this CPU has, asking for any kernel must never give a wrong digest (one it
    // cannot run falls back to the portable kernel).
    let data: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
    for kernel in Kernel::PREFERENCE {
        let mut state = Sha256State::new();
        update_many(
            kernel,
            &mut [Job {
                state: &mut state,
                data: &data,
            }],
        );
        assert_eq!(state.finalize(), sha2_digest(&data), "{kernel}");
    }
}

#[test]
fn resumed_state_continues_on_a_kernel() {
    // A transfer saved after a restart continues on the multi-buffer path.
    let mut rng = StdRng::seed_from_u64(0x5eed_0105);
    let data = random_bytes(&mut rng, 10_000);
    for kernel in Kernel::available() {
        let mut first = Sha256State::new();
        first.update(&data[..3_333]);
        let mut resumed = Sha256State::from_bytes(&first.to_bytes()).unwrap();
        update_many(
            kernel,
            &mut [Job {
                state: &mut resumed,
                data: &data[3_333..],
            }],
        );
        assert_eq!(resumed.finalize(), sha2_digest(&data), "{kernel}");
    }
}
