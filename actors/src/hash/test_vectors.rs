//! The SHA-256 examples of FIPS 180-4 / NIST CSRC and their digests, shared by the tests
//! of the single-stream state and of the kernels.

/// One message and its known digest.
pub(super) struct Vector {
    pub name: &'static str,
    pub message: Vec<u8>,
    pub digest: &'static str,
}

/// The empty message, "abc", the 448-bit and 896-bit messages, and one million 'a'.
pub(super) fn standard() -> Vec<Vector> {
    vec![
        Vector {
            name: "empty",
            message: Vec::new(),
            digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        },
        Vector {
            name: "abc",
            message: b"abc".to_vec(),
            digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        },
        Vector {
            name: "448 bits",
            message: b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
            digest: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        },
        Vector {
            name: "896 bits",
            message: b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno\
                       ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
                .to_vec(),
            digest: "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
        },
        Vector {
            name: "one million 'a'",
            message: vec![b'a'; 1_000_000],
            digest: "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
        },
    ]
}
