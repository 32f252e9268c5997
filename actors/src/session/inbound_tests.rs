use super::*;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const LIMITS: FrameLimits = FrameLimits {
    max_text: 100,
    max_binary: 1000,
};

/// A client frame header with a zero mask key (so the payload goes as it is).
fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![if fin { 0x80 } else { 0 } | opcode];
    if len < 126 {
        header.push(0x80 | len as u8);
    } else if len <= 0xffff {
        header.push(0x80 | 126);
        header.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        header.push(0x80 | 127);
        header.extend_from_slice(&len.to_be_bytes());
    }
    header.extend_from_slice(&[0; 4]);
    header
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(fin, opcode, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// The body as chunks, counting how many were read.
fn body(
    chunks: Vec<Vec<u8>>,
) -> (
    impl Stream<Item = Result<Bytes, String>> + Unpin,
    Arc<AtomicUsize>,
) {
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let stream = futures_util::stream::iter(chunks).map(move |chunk| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(chunk))
    });
    (stream, read)
}

async fn collect(chunks: Vec<Vec<u8>>) -> Vec<Result<AggregatedMessage, ProtocolError>> {
    let (body, _) = body(chunks);
    InboundFrames::new(body, LIMITS).collect().await
}

fn text(message: &Result<AggregatedMessage, ProtocolError>) -> Option<&str> {
    match message {
        Ok(AggregatedMessage::Text(text)) => Some(text),
        _ => None,
    }
}

#[tokio::test]
async fn a_huge_declared_frame_is_refused_from_its_header() {
    for opcode in [0x1, 0x2] {
        let mut first = header(true, opcode, 1 << 40);
        first.extend_from_slice(&[0; 64]);
        let (body, read) = body(vec![first, vec![0; 4096], vec![0; 4096]]);
        let mut frames = InboundFrames::new(body, LIMITS);
        assert!(matches!(
            frames.next().await,
            Some(Err(ProtocolError::Overflow))
        ));
        assert!(frames.next().await.is_none(), "nothing after the refusal");
        assert_eq!(read.load(Ordering::SeqCst), 1, "no payload was read");
    }
}

#[tokio::test]
async fn text_has_its_own_tighter_limit() {
    let ok = collect(vec![frame(true, 0x1, &[b'a'; 100])]).await;
    assert_eq!(text(&ok[0]).map(str::len), Some(100));
    let refused = collect(vec![header(true, 0x1, 101)]).await;
    assert!(matches!(refused[0], Err(ProtocolError::Overflow)));
    let binary = collect(vec![frame(true, 0x2, &[0; 1000])]).await;
    assert!(matches!(&binary[0], Ok(AggregatedMessage::Binary(b)) if b.len() == 1000));
}

#[tokio::test]
async fn continuations_are_joined_and_bounded_in_total() {
    let joined = collect(vec![
        frame(false, 0x1, b"hel"),
        frame(true, 0x9, b"ping in between"),
        frame(false, 0x0, b"lo "),
        frame(true, 0x0, b"there"),
    ])
    .await;
    assert!(matches!(&joined[0], Ok(AggregatedMessage::Ping(p)) if &p[..] == b"ping in between"));
    assert_eq!(text(&joined[1]), Some("hello there"));
    // 60 + 60 text bytes pass the 100-byte limit: refused at the second header.
    let refused = collect(vec![frame(false, 0x1, &[b'a'; 60]), header(true, 0x0, 60)]).await;
    assert!(matches!(refused[0], Err(ProtocolError::Overflow)));
}

#[tokio::test]
async fn frames_split_across_reads_arrive_whole_and_in_order() {
    let mut bytes = frame(true, 0x1, b"first");
    bytes.extend(frame(true, 0x2, &[9; 300]));
    bytes.extend(frame(true, 0x1, b"third"));
    let chunks = bytes.chunks(7).map(<[u8]>::to_vec).collect();
    let messages = collect(chunks).await;
    assert_eq!(messages.len(), 3);
    assert_eq!(text(&messages[0]), Some("first"));
    assert!(matches!(&messages[1], Ok(AggregatedMessage::Binary(b)) if b.len() == 300));
    assert_eq!(text(&messages[2]), Some("third"));
}

#[tokio::test]
async fn reading_ahead_stops_at_the_largest_frame_and_a_bit() {
    // 400 frames of 1000 bytes, about 400 KB, arriving in reads of 16 KiB.
    let bytes: Vec<u8> = (0..400)
        .flat_map(|_| frame(true, 0x2, &[1; 1000]))
        .collect();
    let chunks: Vec<Vec<u8>> = bytes.chunks(16 * 1024).map(<[u8]>::to_vec).collect();
    let total = chunks.len();
    let (body, read) = body(chunks);
    let mut frames = InboundFrames::new(body, LIMITS);
    assert!(frames.next().await.is_some_and(|m| m.is_ok()));
    let bound = (LIMITS.max_binary + READ_AHEAD_SLACK).div_ceil(16 * 1024) + 1;
    let taken = read.load(Ordering::SeqCst);
    assert!(
        taken <= bound && taken < total,
        "read {taken} of {total} chunks"
    );
    assert_eq!(frames.count().await, 399, "and every frame still comes");
}

#[tokio::test]
async fn unmasked_and_broken_frames_are_protocol_errors() {
    let unmasked = collect(vec![vec![0x81, 0x02, b'h', b'i']]).await;
    assert!(matches!(unmasked[0], Err(ProtocolError::UnmaskedFrame)));
    let stray = collect(vec![frame(true, 0x0, b"x")]).await;
    assert!(stray[0].is_err());
    let bad_utf8 = collect(vec![frame(true, 0x1, &[0xff, 0xfe])]).await;
    assert!(matches!(bad_utf8[0], Err(ProtocolError::Io(_))));
}
