//! Identity tokens: 256 random bits, shown to the client once, stored only as a hash.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes in a token (256 bits; the protocol asks for at least 128).
pub const TOKEN_BYTES: usize = 32;

/// A new token: URL-safe base64 of [`TOKEN_BYTES`] bytes from the OS-seeded CSPRNG.
pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token: its SHA-256, in hex. A token has 256 bits of
/// entropy, so an unsalted fast hash is enough: there is nothing to guess.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a string could be a token at all; anything else is rejected without a lookup.
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let tokens: HashSet<String> = (0..1000).map(|_| generate()).collect();
        assert_eq!(tokens.len(), 1000, "tokens repeat");
        for token in &tokens {
            assert!(looks_valid(token), "{token}");
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .unwrap();
            assert_eq!(decoded.len() * 8, 256);
        }
    }

    #[test]
    fn only_the_hash_is_kept_and_it_is_stable() {
        let token = generate();
        assert_eq!(hash(&token), hash(&token));
        assert_eq!(hash(&token).len(), 64);
        assert!(!hash(&token).contains(&token));
        assert_ne!(hash(&token), hash(&generate()));
        // sha256("abc"), the FIPS 180-2 example.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        assert!(!looks_valid(""));
        assert!(!looks_valid("short"));
        assert!(!looks_valid(&"a".repeat(42)));
        assert!(!looks_valid(&format!("{}=", "a".repeat(42))));
    }
}
