//! Fuzzes the tus header parsers (`peerlink::http::tus_headers`): `Upload-Metadata`,
//! `Upload-Checksum` and the `Upload-Offset`/`Upload-Length` numbers. They never panic,
//! and what they accept keeps the promises the upload code relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlink::http::tus_headers::{parse_checksum, parse_metadata, parse_u64};
use peerlink_actors::protocol::values::{MAX_FILE_NAME, MAX_MIME};
use peerlink_actors::protocol::ErrorCode;

fn check_metadata(raw: &str) {
    match parse_metadata(raw) {
        Ok((name, mime)) => {
            // validate_file_name: 1-255 characters, trimmed, no control characters. It does
            // not promise anything about '/' or '\\' (the name is never a path: blobs are
            // stored by upload id, and downloads send it in Content-Disposition only).
            let chars = name.chars().count();
            assert!(
                (1..=MAX_FILE_NAME).contains(&chars),
                "name of {chars} chars"
            );
            assert_eq!(name.trim(), name, "the name is trimmed");
            assert!(
                !name.chars().any(char::is_control),
                "control char in {name:?}"
            );
            // validate_mime: printable ASCII with a '/', lower-case, at most 127 bytes.
            assert!(
                mime.len() <= MAX_MIME && mime.contains('/'),
                "mime {mime:?}"
            );
            assert!(mime.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            assert_eq!(mime.to_ascii_lowercase(), mime);
            assert_eq!(mime.trim(), mime);
        }
        Err(e) => assert!(e.code == ErrorCode::BadRequest && !e.message.is_empty()),
    }
}

fn check_checksum(raw: &str) {
    match parse_checksum(raw) {
        Ok(digest) => {
            assert_eq!(digest.len(), 32);
            assert!(raw.starts_with("sha256 "), "accepted {raw:?}");
        }
        Err(e) => assert!(e.code == ErrorCode::BadRequest && !e.message.is_empty()),
    }
}

/// The rule `u64::from_str` implements, written out: an optional '+', then one or more
/// ASCII digits, the value at most `u64::MAX` (leading zeros allowed).
fn is_u64(raw: &str) -> bool {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.trim_start_matches('0').len() < 20
            || (digits.trim_start_matches('0').len() == 20
                && digits.trim_start_matches('0') <= "18446744073709551615"))
}

fn check_u64(raw: &str) {
    let parsed = parse_u64("Upload-Offset", raw);
    assert_eq!(parsed.is_ok(), is_u64(raw), "{raw:?} gave {parsed:?}");
    match parsed {
        Ok(n) => {
            let digits = raw.strip_prefix('+').unwrap_or(raw).trim_start_matches('0');
            let expected = if digits.is_empty() { "0" } else { digits };
            assert_eq!(n.to_string(), expected, "{raw:?}");
        }
        Err(e) => assert!(e.message.contains("Upload-Offset"), "{}", e.message),
    }
}

fuzz_target!(|raw: &str| {
    check_metadata(raw);
    check_checksum(raw);
    check_u64(raw);
});
