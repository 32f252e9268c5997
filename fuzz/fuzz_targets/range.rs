//! Fuzzes the share-link range decision, `peerlink::http::served_range_of`: the bytes a
//! download will send for a `Range` header and a file size. Whatever it decides lies
//! inside the file, and a plain "bytes=A-B" is served exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlink::http::served_range_of;

/// Input layout: the first 8 bytes are the file size (little-endian; a short input pads
/// with zeros), byte 8 picks the size's scale so that small sizes are common, the rest is
/// the header value, or no header at all when it is empty.
fn split(data: &[u8]) -> (u64, Option<&[u8]>) {
    let mut size = [0u8; 8];
    let n = data.len().min(8);
    size[..n].copy_from_slice(&data[..n]);
    let size = u64::from_le_bytes(size);
    let size = match data.get(8).copied().unwrap_or(0) % 4 {
        0 => size % 256,
        1 => size % 65_536,
        2 => size,
        _ => u64::MAX - size % 256,
    };
    let header = data.get(9..).filter(|h| !h.is_empty());
    (size, header)
}

/// `bytes=A-B` with both numbers plain decimal, when the header is exactly that.
fn simple_range(header: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(header).ok()?;
    let (a, b) = text.strip_prefix("bytes=")?.split_once('-')?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !plain(a) || !plain(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fuzz_target!(|data: &[u8]| {
    let (size, header) = split(data);
    let served = served_range_of(header, size);
    if header.is_none() {
        assert_eq!(served, Some((0, size)), "no Range: the whole file");
    }
    if header.is_some_and(|h| std::str::from_utf8(h).is_err()) {
        assert_eq!(served, None, "a header that is not UTF-8 sends nothing");
    }
    if let Some((start, len)) = served {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= size),
            "({start}, {len}) is past a {size}-byte file"
        );
        // HttpRange never yields an empty range of a non-empty file; an empty file is
        // served as (0, 0), with no header or with a suffix range ("bytes=-N").
        if size > 0 {
            assert!(len >= 1, "empty range ({start}, 0) of a {size}-byte file");
        } else {
            assert_eq!((start, len), (0, 0));
        }
    }
    if let Some((a, b)) = header.and_then(simple_range) {
        if a <= b && b < size {
            assert_eq!(served, Some((a, b - a + 1)), "bytes={a}-{b} of {size}");
        }
    }
});
