//! Fuzzes the two readers of a client's binary input: `DataFrame::parse` (the 24-byte
//! header of a file-data frame) and `InboundFrames` (WebSocket frames read from the raw
//! connection body, cut into chunks at points the fuzzer picks). Checks that the header
//! reads back the bytes it was given, and that the frame reader never yields a message
//! over its limits nor anything after its first error.
#![no_main]

use actix_ws::AggregatedMessage;
use bytes::Bytes;
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use peerlink_actors::protocol::binary::HEADER_LEN;
use peerlink_actors::protocol::DataFrame;
use peerlink_actors::session::{FrameLimits, InboundFrames};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: FrameLimits = FrameLimits {
    max_text: 64,
    max_binary: 512,
};
/// RFC 6455: control frames carry at most 125 bytes.
const MAX_CONTROL: usize = 125;

fn check_data_frame(data: &[u8]) {
    let parsed = DataFrame::parse(Bytes::copy_from_slice(data));
    assert_eq!(
        parsed.is_ok(),
        data.len() >= HEADER_LEN,
        "Ok iff a whole header"
    );
    match parsed {
        Ok(frame) => {
            assert_eq!(frame.transfer.as_bytes()[..], data[..16]);
            let mut offset = [0u8; 8];
            offset.copy_from_slice(&data[16..24]);
            assert_eq!(frame.offset, u64::from_be_bytes(offset));
            assert_eq!(&frame.frame[..], data, "the frame is relayed unchanged");
            assert_eq!(&frame.data()[..], &data[HEADER_LEN..]);
            assert_eq!(frame.len(), (data.len() - HEADER_LEN) as u64);
            assert!(frame.end() >= frame.offset);
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
}

/// Input layout: byte 0 = number of cuts (low 3 bits) and whether the body ends in a
/// transport error (bit 7); then one byte per cut, the length of that chunk (0 allowed);
/// the rest of the input is the body, its remainder being the last chunk.
fn chunks(data: &[u8]) -> Option<(Vec<Result<Bytes, String>>, usize)> {
    let (&control, rest) = data.split_first()?;
    let cuts = usize::from(control & 0x07);
    let (sizes, mut body) = rest.split_at_checked(cuts)?;
    let total = body.len();
    let mut items = Vec::new();
    for &size in sizes {
        let (chunk, tail) = body.split_at(usize::from(size).min(body.len()));
        items.push(Ok(Bytes::copy_from_slice(chunk)));
        body = tail;
    }
    items.push(Ok(Bytes::copy_from_slice(body)));
    if control & 0x80 != 0 {
        items.push(Err("connection reset".to_owned()));
    }
    Some((items, total))
}

fn check_inbound(data: &[u8]) {
    let Some((items, total)) = chunks(data) else {
        return;
    };
    let stream = InboundFrames::new(futures_util::stream::iter(items), LIMITS);
    let out: Vec<_> = futures_executor::block_on(stream.collect());
    let mut failed = false;
    let mut payload = 0usize;
    for item in &out {
        assert!(!failed, "an item after the first error: {out:?}");
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                assert!(
                    text.len() <= LIMITS.max_text,
                    "text of {} bytes",
                    text.len()
                );
                payload += text.len();
            }
            Ok(AggregatedMessage::Binary(bytes)) => {
                assert!(
                    bytes.len() <= LIMITS.max_binary,
                    "binary of {} bytes",
                    bytes.len()
                );
                payload += bytes.len();
            }
            Ok(AggregatedMessage::Ping(bytes) | AggregatedMessage::Pong(bytes)) => {
                assert!(
                    bytes.len() <= MAX_CONTROL,
                    "control frame of {} bytes",
                    bytes.len()
                );
                payload += bytes.len();
            }
            Ok(AggregatedMessage::Close(_)) => {}
            Err(_) => failed = true,
        }
    }
    // Every byte of a message came from the body (frames only shrink when decoded).
    assert!(
        payload <= total,
        "{payload} payload bytes from a {total}-byte body"
    );
}

fuzz_target!(|data: &[u8]| {
    check_data_frame(data);
    check_inbound(data);
});
