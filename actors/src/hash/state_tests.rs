use super::*;
use crate::hash::test_vectors;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}

fn hashed(data: &[u8]) -> Sha256State {
    let mut state = Sha256State::new();
    state.update(data);
    state
}

#[test]
fn standard_vectors_in_one_update() {
    for vector in test_vectors::standard() {
        assert_eq!(
            hex(&hashed(&vector.message).finalize()),
            vector.digest,
            "{}",
            vector.name
        );
    }
}

#[test]
fn standard_vectors_in_small_uneven_pieces() {
    for vector in test_vectors::standard() {
        let mut state = Sha256State::new();
        // Piece sizes 1, 2, …, 70, 1, …: every buffer fill level meets every piece size.
        let mut rest = vector.message.as_slice();
        for size in (1..=70).cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(size.min(rest.len()));
            state.update(piece);
            rest = after;
        }
        assert_eq!(hex(&state.finalize()), vector.digest, "{}", vector.name);
    }
}

#[test]
fn every_length_up_to_10000_matches_sha2() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let data = random_bytes(&mut rng, 10_000);
    // The reference grows one byte at a time, so each length costs one finalisation.
    let mut reference = Sha256::new();
    for len in 0..=data.len() {
        let expected: [u8; 32] = reference.clone().finalize().into();
        let state = hashed(&data[..len]);
        assert_eq!(state.finalize(), expected, "length {len}");
        assert_eq!(state.offset(), len as u64);
        if let Some(&byte) = data.get(len) {
            reference.update([byte]);
        }
    }
}

#[test]
fn random_splits_match_sha2() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let cases = if cfg!(debug_assertions) { 60 } else { 600 };
    for case in 0..cases {
        let len = rng.random_range(0..20_000);
        let data = random_bytes(&mut rng, len);
        let mut state = Sha256State::new();
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            // Mostly short pieces (around the block size), sometimes long ones.
            let cap = if rng.random_bool(0.2) { 5_000 } else { 130 };
            let take = rng.random_range(0..=cap).min(rest.len());
            let (piece, after) = rest.split_at(take);
            state.update(piece);
            rest = after;
        }
        assert_eq!(
            state.finalize(),
            sha2_digest(&data),
            "case {case}, length {len}"
        );
    }
}

#[test]
fn finalize_leaves_the_stream_open() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut state = hashed(&data[..500]);
    let before = state.clone();
    assert_eq!(state.finalize(), sha2_digest(&data[..500]));
    assert_eq!(state.finalize(), sha2_digest(&data[..500]));
    assert_eq!(state, before);
    state.update(&data[500..]);
    assert_eq!(state.finalize(), sha2_digest(&data));
    assert_eq!(state.offset(), 1000);
}

#[test]
fn hex_spells_the_digest_in_lowercase() {
    let mut digest = [0u8; 32];
    digest[0] = 0xAB;
    digest[31] = 0x0F;
    let text = hex(&digest);
    assert_eq!(text.len(), 64);
    assert!(text.starts_with("ab00"));
    assert!(text.ends_with("000f"));
}

#[test]
fn saved_layout_is_version_words_length_and_buffered_bytes() {
    let state = hashed(b"abc");
    let mut expected = vec![1u8];
    for word in super::H0 {
        expected.extend_from_slice(&word.to_be_bytes());
    }
    expected.extend_from_slice(&3u64.to_be_bytes());
    expected.extend_from_slice(b"abc");
    assert_eq!(state.to_bytes(), expected);

    let whole_blocks = hashed(&[7u8; 128]);
    assert_eq!(whole_blocks.to_bytes().len(), FIXED_LEN);
    assert_eq!(whole_blocks.to_bytes()[33..41], 128u64.to_be_bytes());
}

#[test]
fn saved_state_resumes_to_the_whole_file_digest() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let data = random_bytes(&mut rng, 5_000);
    let mut cuts = vec![0, 1, 55, 56, 63, 64, 65, 127, 128, 4_999, 5_000];
    cuts.extend((0..40).map(|_| rng.random_range(0..=5_000)));
    for cut in cuts {
        let saved = hashed(&data[..cut]).to_bytes();
        // The database hands back a copy of the bytes, nothing else.
        let mut resumed = Sha256State::from_bytes(&saved.clone()).unwrap();
        assert_eq!(resumed.offset(), cut as u64);
        assert_eq!(resumed, hashed(&data[..cut]), "cut at {cut}");
        resumed.update(&data[cut..]);
        assert_eq!(resumed.finalize(), sha2_digest(&data), "cut at {cut}");
    }
}

#[test]
fn truncated_saved_state_is_refused() {
    let saved = hashed(&[9u8; 100]).to_bytes();
    assert_eq!(saved.len(), FIXED_LEN + 36);
    for len in 0..saved.len() {
        let refused = Sha256State::from_bytes(&saved[..len]).unwrap_err();
        let expected = if len < FIXED_LEN {
            StateError::TooShort { got: len }
        } else {
            StateError::BufferMismatch {
                expected: 36,
                got: len - FIXED_LEN,
            }
        };
        assert_eq!(refused, expected, "prefix of {len} bytes");
    }
}

#[test]
fn corrupt_saved_state_is_refused() {
    let saved = hashed(&[9u8; 100]).to_bytes();

    for version in [0u8, 2, 255] {
        let mut bytes = saved.clone();
        bytes[0] = version;
        assert_eq!(
            Sha256State::from_bytes(&bytes),
            Err(StateError::UnknownVersion(version))
        );
    }

    let mut longer = saved.clone();
    longer.push(0);
    assert_eq!(
        Sha256State::from_bytes(&longer),
        Err(StateError::BufferMismatch {
            expected: 36,
            got: 37
        })
    );

    // A length whose remainder disagrees with the buffered bytes.
    let mut bytes = saved.clone();
    bytes[33..41].copy_from_slice(&101u64.to_be_bytes());
    assert_eq!(
        Sha256State::from_bytes(&bytes),
        Err(StateError::BufferMismatch {
            expected: 37,
            got: 36
        })
    );

    // A length SHA-256 cannot count, with a remainder that would otherwise fit.
    let mut bytes = saved.clone();
    bytes[33] = 0x20;
    let len = u64::from_be_bytes(bytes[33..41].try_into().unwrap());
    assert_eq!(
        Sha256State::from_bytes(&bytes),
        Err(StateError::LengthOutOfRange(len))
    );
}

#[test]
fn refusals_say_what_is_wrong() {
    let message = Sha256State::from_bytes(&[1, 2, 3]).unwrap_err().to_string();
    assert!(message.contains("3 bytes"), "{message}");
    let message = StateError::UnknownVersion(9).to_string();
    assert!(message.contains("version 9"), "{message}");
}
